//! Node IPAM (upstream `pkg/controller/nodeipam`, the range allocator): every node gets
//! a pod CIDR carved from the cluster CIDR — k3s's 10.42.0.0/16 in /24 blocks — written
//! to `spec.podCIDR`/`spec.podCIDRs`. The kubelet hands it to its runtime (CNI's
//! host-local range; the hollow runtime's address pool).
//!
//! A /16 of /24s holds 256 nodes, as in k3s; larger (e.g. hollow) clusters set
//! `K8RS_CLUSTER_CIDR` and `K8RS_NODE_CIDR_MASK_SIZE` in the controller manager's
//! environment (upstream's `--cluster-cidr`, `--node-cidr-mask-size`).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use k8rs_client::{Change, EventRecorder, EventType, ObjectKey, WorkQueue};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};

use crate::{Context, Controller};

/// k3s's default cluster CIDR.
pub const CLUSTER_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 42, 0, 0), 16);
/// k3s's default per-node mask.
pub const NODE_MASK: u8 = 24;

/// The cluster CIDR and node mask: the defaults, or the environment's.
pub fn config_from_env() -> ((Ipv4Addr, u8), u8) {
    let cluster = std::env::var("K8RS_CLUSTER_CIDR").ok().and_then(|v| {
        let (ip, len) = v.split_once('/')?;
        Some((ip.parse().ok()?, len.parse().ok()?))
    });
    let mask = std::env::var("K8RS_NODE_CIDR_MASK_SIZE")
        .ok()
        .and_then(|v| v.parse().ok());
    let (cluster, mask) = (cluster.unwrap_or(CLUSTER_CIDR), mask.unwrap_or(NODE_MASK));
    // At most 2^16 blocks, and a node block inside the cluster range.
    if cluster.1 > 30 || mask > 30 || mask < cluster.1 || mask - cluster.1 > 16 {
        tracing::warn!(cidr = %format!("{}/{}", cluster.0, cluster.1), mask, "invalid cluster CIDR settings; using 10.42.0.0/16 with /24");
        return (CLUSTER_CIDR, NODE_MASK);
    }
    (cluster, mask)
}

/// Hands out fixed-size blocks of a cluster range (upstream `cidrset.CidrSet`).
#[derive(Debug)]
pub struct CidrSet {
    base: u32,
    node_mask: u8,
    used: Vec<bool>,
    next: usize,
    /// Which node holds which block.
    owners: HashMap<String, usize>,
}

impl CidrSet {
    /// Blocks of `/node_mask` in `cluster`.
    pub fn new(cluster: (Ipv4Addr, u8), node_mask: u8) -> Self {
        let blocks = 1usize << (node_mask - cluster.1);
        CidrSet {
            base: u32::from(cluster.0) & (u32::MAX << (32 - cluster.1)),
            node_mask,
            used: vec![false; blocks],
            next: 0,
            owners: HashMap::new(),
        }
    }

    fn cidr(&self, index: usize) -> String {
        let ip = Ipv4Addr::from(self.base + ((index as u32) << (32 - self.node_mask)));
        format!("{ip}/{}", self.node_mask)
    }

    fn index(&self, cidr: &str) -> Option<usize> {
        let (ip, len) = cidr.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        if len.parse::<u8>().ok()? != self.node_mask {
            return None;
        }
        let offset = u32::from(ip).checked_sub(self.base)? >> (32 - self.node_mask);
        ((offset as usize) < self.used.len()).then_some(offset as usize)
    }

    /// Records a block a node already has (`occupy`); false if it is not ours.
    pub fn occupy(&mut self, node: &str, cidr: &str) -> bool {
        let Some(index) = self.index(cidr) else {
            return false;
        };
        self.used[index] = true;
        self.owners.insert(node.to_string(), index);
        true
    }

    /// The block of `node`, allocating the next free one; `None` when all are taken.
    pub fn allocate(&mut self, node: &str) -> Option<String> {
        if let Some(index) = self.owners.get(node) {
            return Some(self.cidr(*index));
        }
        let n = self.used.len();
        let index = (0..n)
            .map(|i| (self.next + i) % n)
            .find(|i| !self.used[*i])?;
        self.used[index] = true;
        self.next = (index + 1) % n;
        self.owners.insert(node.to_string(), index);
        Some(self.cidr(index))
    }

    /// Frees the block of a deleted node.
    pub fn release(&mut self, node: &str) {
        if let Some(index) = self.owners.remove(node) {
            self.used[index] = false;
        }
    }
}

/// The controller.
pub struct NodeIpamController {
    ctx: Context,
    cidrs: Mutex<CidrSet>,
    events: EventRecorder,
    /// Nodes already told there is no CIDR left (one event each, not one per retry).
    reported: Mutex<std::collections::HashSet<String>>,
}

/// Starts the node IPAM controller.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let controller = Arc::new(NodeIpamController {
        ctx: ctx.clone(),
        cidrs: {
            let (cluster, mask) = config_from_env();
            Mutex::new(CidrSet::new(cluster, mask))
        },
        events: EventRecorder::new(ctx.client.clone(), "node-controller"),
        reported: Default::default(),
    });
    let queue = WorkQueue::new();
    let nodes = ctx.informers.get::<Node>();
    let handler_queue = queue.clone();
    tokio::spawn(async move {
        nodes.wait_synced().await;
        // Existing assignments first, so no new node gets a block already in use.
        {
            let mut cidrs = controller.cidrs.lock().unwrap();
            for node in nodes.list() {
                if let (Some(name), Some(cidr)) = (
                    node.metadata.name.as_deref(),
                    node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()),
                ) {
                    cidrs.occupy(name, cidr);
                }
            }
        }
        nodes.add_handler(move |change: &Change<Node>| {
            handler_queue.add(ObjectKey::of(change.object().as_ref()));
        });
        // One worker: allocations are serialised.
        crate::controller::run_workers(controller, queue, 1)
            .await
            .ok();
    })
}

#[async_trait::async_trait]
impl Controller for NodeIpamController {
    fn name(&self) -> &'static str {
        "node-ipam-controller"
    }

    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        let nodes = self.ctx.informers.get::<Node>();
        let Some(node) = nodes.get(key) else {
            self.cidrs.lock().unwrap().release(&key.name);
            return Ok(());
        };
        if let Some(cidr) = node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) {
            self.cidrs.lock().unwrap().occupy(&key.name, cidr);
            return Ok(());
        }
        let Some(cidr) = self.cidrs.lock().unwrap().allocate(&key.name) else {
            if self.reported.lock().unwrap().insert(key.name.clone()) {
                self.events.record(
                    node.as_ref(),
                    EventType::Normal,
                    "CIDRNotAvailable",
                    format!("Node {} status is now: CIDRNotAvailable", key.name),
                );
            }
            anyhow::bail!("failed to allocate cidr: CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range");
        };
        let patch = serde_json::json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        let api: Api<Node> = Api::all(self.ctx.client.clone());
        if let Err(e) = api
            .patch(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            // Keep the block reserved only if the node got it.
            self.cidrs.lock().unwrap().release(&key.name);
            return Err(e.into());
        }
        tracing::debug!(node = %key.name, cidr = %cidr, "allocated pod CIDR");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_handed_out_once_and_reused_after_release() {
        let mut set = CidrSet::new(CLUSTER_CIDR, NODE_MASK);
        assert!(set.occupy("old", "10.42.0.0/24"));
        assert!(!set.occupy("foreign", "192.168.0.0/24"));
        assert!(!set.occupy("foreign", "10.42.1.0/25"));
        assert_eq!(set.allocate("a").as_deref(), Some("10.42.1.0/24"));
        assert_eq!(set.allocate("b").as_deref(), Some("10.42.2.0/24"));
        assert_eq!(
            set.allocate("a").as_deref(),
            Some("10.42.1.0/24"),
            "idempotent"
        );
        set.release("old");
        // The cursor moves on before reusing a freed block (as upstream's CidrSet).
        assert_eq!(set.allocate("c").as_deref(), Some("10.42.3.0/24"));
        for i in 4..256 {
            assert!(set.allocate(&format!("n{i}")).is_some());
        }
        assert_eq!(set.allocate("d").as_deref(), Some("10.42.0.0/24"));
        assert_eq!(set.allocate("e"), None, "256 blocks of /24 in a /16");
    }
}
