//! Taint-based eviction (upstream `pkg/controller/tainteviction`, the NoExecute taint
//! manager): a pod on a node with NoExecute taints it does not tolerate is deleted at
//! once; one that tolerates them all for a limited `tolerationSeconds` is deleted when
//! the shortest of those runs out, counted from when the controller first saw it
//! tainted; a pod that tolerates them forever stays. Deleted pods first get the
//! `DisruptionTarget` condition (reason `DeletionByTaintManager`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8rs_client::{Change, EventRecorder, EventType, ObjectKey, WorkQueue};
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};

use crate::{Context, Controller};

/// `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// What to do about a pod given its node's NoExecute taints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing (no NoExecute taints, or tolerated forever).
    Keep,
    /// Delete after this long (zero: now).
    EvictAfter(Duration),
}

/// `processPodOnNode`: `GetMatchingTolerations` (the first toleration of each taint) and
/// `getMinTolerationTime`.
pub fn verdict(taints: &[Taint], tolerations: &[Toleration]) -> Verdict {
    let no_execute: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
    if no_execute.is_empty() {
        return Verdict::Keep;
    }
    let mut used = vec![];
    for taint in no_execute {
        match tolerations.iter().find(|t| tolerates(t, taint)) {
            Some(t) => used.push(t),
            None => return Verdict::EvictAfter(Duration::ZERO),
        }
    }
    let mut min: Option<i64> = None;
    for t in used {
        if let Some(secs) = t.toleration_seconds {
            if secs <= 0 {
                return Verdict::EvictAfter(Duration::ZERO);
            }
            min = Some(min.map_or(secs, |m| m.min(secs)));
        }
    }
    match min {
        Some(secs) => Verdict::EvictAfter(Duration::from_secs(secs as u64)),
        None => Verdict::Keep,
    }
}

/// The controller.
pub struct TaintEvictionController {
    ctx: Context,
    queue: WorkQueue<ObjectKey>,
    /// When each pod was first seen needing eviction (upstream's timed work `CreatedAt`).
    scheduled: Mutex<HashMap<ObjectKey, Instant>>,
    events: EventRecorder,
}

fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

fn no_execute(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.effect == "NoExecute")
        .collect()
}

/// Starts the taint eviction controller.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let queue = WorkQueue::new();
    let controller = Arc::new(TaintEvictionController {
        ctx: ctx.clone(),
        queue: queue.clone(),
        scheduled: Mutex::new(HashMap::new()),
        events: EventRecorder::new(ctx.client.clone(), "taint-eviction-controller"),
    });
    let pods = ctx.informers.get::<Pod>();
    let nodes = ctx.informers.get::<Node>();
    tokio::spawn(async move {
        pods.wait_synced().await;
        nodes.wait_synced().await;
        let pod_queue = queue.clone();
        pods.add_handler(move |change: &Change<Pod>| {
            if node_of(change.object()).is_some() {
                pod_queue.add(ObjectKey::of(change.object().as_ref()));
            }
        });
        let node_queue = queue.clone();
        let node_pods = pods.clone();
        nodes.add_handler(move |change: &Change<Node>| {
            let Change::Applied { old, new } = change else {
                return;
            };
            if old
                .as_ref()
                .is_some_and(|o| no_execute(o) == no_execute(new))
            {
                return;
            }
            let name = new.metadata.name.as_deref().unwrap_or("");
            for pod in node_pods.filter(|p| node_of(p) == Some(name)) {
                node_queue.add(ObjectKey::of(pod.as_ref()));
            }
        });
        crate::controller::run_workers(controller, queue, 2)
            .await
            .ok();
    })
}

#[async_trait::async_trait]
impl Controller for TaintEvictionController {
    fn name(&self) -> &'static str {
        "taint-eviction-controller"
    }

    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        let pod = self.ctx.informers.get::<Pod>().get(key);
        let node = pod
            .as_deref()
            .and_then(node_of)
            .and_then(|n| self.ctx.informers.get::<Node>().get(&ObjectKey::cluster(n)));
        let (Some(pod), Some(node)) = (pod, node) else {
            self.scheduled.lock().unwrap().remove(key);
            return Ok(());
        };
        if pod.metadata.deletion_timestamp.is_some() {
            self.scheduled.lock().unwrap().remove(key);
            return Ok(());
        }
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let wait = match verdict(&no_execute(&node), &tolerations) {
            Verdict::Keep => {
                self.scheduled.lock().unwrap().remove(key);
                return Ok(());
            }
            Verdict::EvictAfter(wait) => wait,
        };
        let now = Instant::now();
        let since = *self
            .scheduled
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_insert(now);
        let due = since + wait;
        if due > now {
            self.queue.add_after(key.clone(), due - now);
            return Ok(());
        }
        self.evict(&pod).await?;
        self.scheduled.lock().unwrap().remove(key);
        Ok(())
    }
}

impl TaintEvictionController {
    /// `addConditionAndDeletePod`.
    async fn evict(&self, pod: &Pod) -> anyhow::Result<()> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        self.events.record(
            pod,
            EventType::Normal,
            "TaintManagerEviction",
            format!("Marking for deletion Pod {ns}/{name}"),
        );
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), ns);
        let mut conditions = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        conditions.retain(|c| c.type_ != "DisruptionTarget");
        conditions.push(PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("DeletionByTaintManager".into()),
            message: Some("Taint manager: deleting due to NoExecute taint".into()),
            last_transition_time: Some(Time(Timestamp::now())),
            ..Default::default()
        });
        let patch = serde_json::json!({"status": {"conditions": conditions}});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn toleration(json: serde_json::Value) -> Toleration {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn untolerated_taints_evict_at_once_and_tolerated_ones_after_the_shortest_time() {
        let unreachable = taint("node.kubernetes.io/unreachable", "NoExecute");
        let not_ready = taint("node.kubernetes.io/not-ready", "NoExecute");
        assert_eq!(verdict(&[], &[]), Verdict::Keep);
        assert_eq!(verdict(&[taint("x", "NoSchedule")], &[]), Verdict::Keep);
        assert_eq!(
            verdict(std::slice::from_ref(&unreachable), &[]),
            Verdict::EvictAfter(Duration::ZERO)
        );
        let defaults = [
            toleration(
                serde_json::json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}),
            ),
            toleration(
                serde_json::json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}),
            ),
        ];
        assert_eq!(
            verdict(std::slice::from_ref(&unreachable), &defaults),
            Verdict::EvictAfter(Duration::from_secs(5))
        );
        assert_eq!(
            verdict(&[unreachable.clone(), not_ready.clone()], &defaults),
            Verdict::EvictAfter(Duration::from_secs(5))
        );
        assert_eq!(
            verdict(
                &[unreachable.clone(), taint("other", "NoExecute")],
                &defaults
            ),
            Verdict::EvictAfter(Duration::ZERO),
            "one untolerated taint is enough"
        );
        let forever = [toleration(serde_json::json!({"operator": "Exists"}))];
        assert_eq!(
            verdict(std::slice::from_ref(&unreachable), &forever),
            Verdict::Keep
        );
        let zero = [toleration(
            serde_json::json!({"operator": "Exists", "tolerationSeconds": 0}),
        )];
        assert_eq!(
            verdict(&[unreachable], &zero),
            Verdict::EvictAfter(Duration::ZERO)
        );
    }

    #[test]
    fn toleration_matching() {
        let t = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoExecute".into(),
            ..Default::default()
        };
        assert!(tolerates(
            &toleration(serde_json::json!({"key": "k", "value": "v"})),
            &t
        ));
        assert!(!tolerates(
            &toleration(serde_json::json!({"key": "k", "value": "w"})),
            &t
        ));
        assert!(tolerates(
            &toleration(
                serde_json::json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})
            ),
            &t
        ));
        assert!(!tolerates(
            &toleration(
                serde_json::json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"})
            ),
            &t
        ));
        assert!(!tolerates(
            &toleration(serde_json::json!({"key": "j", "operator": "Exists"})),
            &t
        ));
        assert!(tolerates(
            &toleration(serde_json::json!({"operator": "Exists"})),
            &t
        ));
    }
}
