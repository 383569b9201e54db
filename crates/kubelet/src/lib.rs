//! `k8rs-kubelet`: the node agent. Pod workers bring each pod bound to the node to its
//! spec through a [`runtime::Runtime`] — containerd over CRI on real nodes, an in-memory
//! simulation on hollow nodes — and report node and pod status to the API server.
//!
//! [`run`] runs one kubelet; [`run_nodes`] runs many node agents in one process (hollow
//! nodes) sharing one client, one pod informer and one node informer, so a thousand
//! nodes cost a thousand sets of small tasks, not a thousand watches.

// The CRI client is generated for tonic 0.14, which the workspace names `tonic14` (the etcd
// client is still on 0.12); generated code refers to `tonic::`.
extern crate tonic14 as tonic;

pub mod containerd;
pub mod cri;
pub mod eviction;
pub mod hollow;
pub mod node;
pub mod pod;
pub mod runtime;
pub mod server;
pub mod static_pods;
pub mod stats;
pub mod streaming;
pub mod volume;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use k8rs_client::{Change, Informers, ObjectKey};
use k8s_openapi::api::core::v1::{Node, Pod};
use tokio::sync::watch;

pub use node::{NodeConfig, NodeContext, Timings};
use pod::worker::{PodSource, PodUpdate};

/// The version the kubelet reports in `nodeInfo.kubeletVersion`.
pub const KUBELET_VERSION: &str = "v1.33.0-k8rs";

/// One node agent: its context and its pod workers by pod uid.
pub struct NodeAgent {
    ctx: Arc<NodeContext>,
    workers: Mutex<HashMap<String, (u64, watch::Sender<PodUpdate>)>>,
    stats: stats::StatsProvider,
    /// The static pod source, when the node has a manifest directory.
    static_pods: Option<Arc<static_pods::StaticPodSource>>,
}

impl NodeAgent {
    /// The node's name.
    pub fn name(&self) -> &str {
        &self.ctx.name
    }

    /// Number of pods with a worker.
    pub fn pod_count(&self) -> usize {
        self.workers.lock().unwrap().len()
    }

    /// The stats summary of the node's pods (`/stats/summary`).
    pub async fn summary(&self) -> runtime::Result<stats::Summary> {
        self.stats
            .summary(&self.ctx.name, self.ctx.runtime.as_ref())
            .await
    }
}

static WORKER_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Hands a pod change to its node's worker, starting one for a new pod. Mirror pods
/// only wake the static pod source: their static pods run from the manifest files.
fn dispatch_change(agent: &Arc<NodeAgent>, change: &Change<Pod>) {
    let pod = change.object().clone();
    if static_pods::is_mirror_pod(&pod) {
        if let Some(source) = &agent.static_pods {
            source.mirror_changed.notify_one();
        }
        return;
    }
    let deleted = matches!(change, Change::Deleted(_));
    dispatch(agent, pod, deleted, PodSource::Api);
}

/// Hands the latest version of a pod to its worker, starting one for a new pod.
fn dispatch(agent: &Arc<NodeAgent>, pod: Arc<Pod>, deleted: bool, source: PodSource) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let mut workers = agent.workers.lock().unwrap();
    if let Some((_, tx)) = workers.get(&uid) {
        let _ = tx.send(PodUpdate {
            pod,
            deleted,
            source,
        });
        return;
    }
    if deleted {
        return;
    }
    let generation = WORKER_GENERATION.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = watch::channel(PodUpdate {
        pod,
        deleted,
        source,
    });
    workers.insert(uid.clone(), (generation, tx));
    let agent = agent.clone();
    tokio::spawn(async move {
        pod::worker::run(agent.ctx.clone(), rx).await;
        let mut workers = agent.workers.lock().unwrap();
        if workers.get(&uid).is_some_and(|(g, _)| *g == generation) {
            workers.remove(&uid);
        }
    });
}

/// Handles on the node agents [`start_nodes`] started.
/// Dropping it stops the shared informers (the agents then stop seeing changes).
pub struct Nodes {
    /// The agents by node name.
    pub agents: HashMap<String, Arc<NodeAgent>>,
    _pods: k8rs_client::Informer<Pod>,
    _nodes: k8rs_client::Informer<Node>,
}

/// Starts node agents, one per `(config, runtime)`, sharing one client and one informer
/// per type (field-selected to the node when there is only one). Returns once started;
/// the agents run in the background.
pub fn start_nodes(
    client: kube::Client,
    nodes: Vec<(NodeConfig, Arc<dyn runtime::Runtime>)>,
    timings: Timings,
) -> Nodes {
    let informers = Informers::new(client.clone());
    let (pods, node_informer) = match nodes.as_slice() {
        [(only, _)] => (
            informers.get_selected::<Pod>(&format!("spec.nodeName={}", only.name)),
            informers.get_selected::<Node>(&format!("metadata.name={}", only.name)),
        ),
        _ => (informers.get::<Pod>(), informers.get::<Node>()),
    };
    // Upstream kubelets register at once; a thousand in one process take turns.
    let registration = Arc::new(tokio::sync::Semaphore::new(32));
    let mut agents = HashMap::new();
    for (config, runtime) in nodes {
        let volumes = config.root_dir.clone().map(|root| {
            let manager = volume::VolumeManager::new(
                root,
                &config.name,
                if config.allocatable.is_empty() {
                    config.capacity.clone()
                } else {
                    config.allocatable.clone()
                },
                &informers,
            );
            tokio::spawn(volume_housekeeping(
                manager.clone(),
                pods.clone(),
                runtime.clone(),
                config.name.clone(),
            ));
            manager
        });
        let ctx = Arc::new(NodeContext {
            name: config.name.clone(),
            host_ip: config.address.clone(),
            runtime_name: Default::default(),
            runtime,
            client: client.clone(),
            probe_network: config.probe_network,
            resync: timings.pod_resync,
            node_changed: tokio::sync::Notify::new(),
            volumes,
            memory_capacity: config
                .capacity
                .get("memory")
                .and_then(|q| k8rs_api::quantity::Quantity::parse(q).ok())
                .map(|q| q.value())
                .unwrap_or(0),
            events: k8rs_client::EventRecorder::new(client.clone(), "kubelet")
                .with_host(config.name.clone()),
            pressure: Default::default(),
        });
        let static_source = config
            .pod_manifest_path
            .clone()
            .map(|dir| Arc::new(static_pods::StaticPodSource::new(dir, &config.name)));
        let agent = Arc::new(NodeAgent {
            ctx: ctx.clone(),
            workers: Mutex::new(HashMap::new()),
            stats: Default::default(),
            static_pods: static_source.clone(),
        });
        if config.probe_network {
            // Real runtimes: containers exit on their own, so relist them (PLEG).
            // Hollow containers only change when the worker acts.
            let pleg_agent = agent.clone();
            tokio::spawn(pod::pleg::run(
                ctx.runtime.clone(),
                pod::pleg::RELIST_PERIOD,
                move |uid| {
                    if let Some((_, tx)) = pleg_agent.workers.lock().unwrap().get(uid) {
                        tx.send_modify(|_| {});
                    }
                },
            ));
        }
        if let Some(eviction) = config.eviction.clone() {
            let allocatable = if config.allocatable.is_empty() {
                &config.capacity
            } else {
                &config.allocatable
            };
            let memory = allocatable
                .get("memory")
                .and_then(|m| k8rs_api::quantity::Quantity::parse(m).ok())
                .map(|q| q.value());
            tokio::spawn(eviction::run(ctx.clone(), eviction, memory, pods.clone()));
        }
        if let Some(source) = static_source {
            let target = agent.clone();
            tokio::spawn(static_pods::run(
                source,
                client.clone(),
                pods.clone(),
                move |pod, deleted, source| dispatch(&target, pod, deleted, source),
            ));
        }
        agents.insert(config.name.clone(), agent);
        let key = ObjectKey::cluster(config.name.clone());
        let node_informer = node_informer.clone();
        let registration = registration.clone();
        tokio::spawn(async move {
            node::run_node(
                ctx,
                config,
                timings,
                move || node_informer.get(&key),
                registration,
            )
            .await;
        });
    }
    let by_name = Arc::new(agents.clone());
    let nodes_by_name = by_name.clone();
    node_informer.add_handler(move |change| {
        if let Change::Applied { old, new } = change {
            let cidr = |n: &Node| n.spec.as_ref().and_then(|s| s.pod_cidr.clone());
            if old.as_ref().map(|o| cidr(o)) != Some(cidr(new)) {
                if let Some(agent) = new
                    .metadata
                    .name
                    .as_ref()
                    .and_then(|n| nodes_by_name.get(n))
                {
                    agent.ctx.node_changed.notify_one();
                }
            }
        }
    });
    let pod_informer = pods.clone();
    pod_informer.add_handler(move |change| {
        let node = change
            .object()
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if let Some(agent) = by_name.get(node) {
            dispatch_change(agent, change);
        }
    });
    Nodes {
        agents,
        _pods: pods,
        _nodes: node_informer,
    }
}

/// Upstream's `cleanupOrphanedPodDirs` every two minutes: removes the volume directories
/// of pods neither bound to the node nor known to the runtime (deleted while the kubelet
/// was down).
async fn volume_housekeeping(
    manager: Arc<volume::VolumeManager>,
    pods: k8rs_client::Informer<Pod>,
    runtime: Arc<dyn runtime::Runtime>,
    node: String,
) {
    pods.wait_synced().await;
    loop {
        let Ok(sandboxes) = runtime.list_pod_sandboxes().await else {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            continue;
        };
        let mut active: std::collections::HashSet<String> =
            sandboxes.into_iter().map(|s| s.identity.uid).collect();
        active.extend(
            pods.filter(|p| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
            })
            .iter()
            .filter_map(|p| p.metadata.uid.clone()),
        );
        manager.clean_up_orphans(&active).await;
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    }
}

/// Runs one kubelet for `config` on `runtime` until the process ends
/// (`k8rs kubelet --kubeconfig F --node-name N`).
pub async fn run(
    client: kube::Client,
    config: NodeConfig,
    runtime: Arc<dyn runtime::Runtime>,
) -> anyhow::Result<()> {
    let _nodes = start_nodes(client, vec![(config, runtime)], Timings::default());
    std::future::pending::<()>().await;
    Ok(())
}
