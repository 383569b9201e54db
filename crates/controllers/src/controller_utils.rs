//! What the workload controllers share, after upstream's `pkg/controller/controller_utils.go`
//! and `controller_ref_manager.go`: label-selector matching, pod readiness, creation and
//! deletion expectations, slow-start batches, the ranking of pods for deletion, pods built
//! from templates, and adoption/release of objects through controller references.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8rs_client::ObjectKey;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde::de::DeserializeOwned;

/// How long expectations wait for the informer before a controller acts anyway
/// (upstream's `ExpectationsTimeout`).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The first batch size of [`slow_start_batch`] (upstream's `SlowStartInitialBatchSize`).
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;

/// Annotation whose integer value ranks pods for scale-down (lower goes first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

// ---------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------

/// Whether `labels` satisfy `selector` (matchLabels and matchExpressions, as
/// `metav1.LabelSelectorAsSelector`). An empty selector matches everything; callers that
/// must not select everything check [`selector_is_empty`] first, as upstream does.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if let Some(want) = &selector.match_labels {
        if want.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return false;
        }
    }
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.as_deref().unwrap_or_default();
        let have = labels.get(&req.key);
        let ok = match req.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            // An invalid operator selects nothing (upstream fails the conversion).
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether a selector has no requirement at all (it would select every object).
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

// ---------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------

/// A pod that still counts towards its controller: not succeeded, not failed and not
/// being deleted (upstream's `IsPodActive`).
pub fn is_pod_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded") | Some("Failed"))
        && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod's Ready condition turned true, if it is true.
pub fn pod_ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| cond.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether the pod's Ready condition is true.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod_ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's `IsPodAvailable`).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match pod_ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(Some(since)) => since.as_second() + i64::from(min_ready_seconds) <= now.as_second(),
        Some(None) => false,
    }
}

/// The controller reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (`metav1.NewControllerRef`): `controller: true` and
/// `blockOwnerDeletion: true`, so foreground deletion of the owner waits for its objects.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod for `template`, named `<owner>-<random suffix>` by the API server
/// (upstream's `GetPodFromTemplate`).
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner_name: &str,
    owner: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{owner_name}-")),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i64 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse::<i32>().ok())
        .map(i64::from)
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// `floor(log2(now - t))` in nanoseconds, `-1` for times not in the past: pods within the
/// same power-of-two age bucket count as equally old (upstream's LogarithmicScaleDown).
fn log_bucket(t: Timestamp, now: Timestamp) -> i64 {
    let d = now.as_nanosecond() - t.as_nanosecond();
    if d > 0 {
        (d as f64).log2() as i64
    } else {
        -1
    }
}

/// The age bucket of an optional time for deletion ranking: `floor(log2(age in ns))`, so
/// pods within the same power-of-two age count as equally old (upstream's
/// LogarithmicScaleDown); an unset time sorts first.
fn age_bucket(t: Option<Timestamp>, now: Timestamp) -> i64 {
    t.map_or(-2, |t| log_bucket(t, now))
}

/// Ranks pods for deletion, first to go first (upstream's `ActivePodsWithRanks.Less`):
/// unassigned before assigned; Pending before Unknown before Running; not ready before ready;
/// lower deletion cost first; more pods of the same owner family on the node first; ready
/// for less time first; more restarts first; newer first; then by uid. `pods[i].1` is the
/// pod's rank. Upstream compares pairwise; a per-pod key gives the same order wherever
/// that comparison is consistent, and a total order (which Rust's sort requires) where it
/// is not (it skips the ready-time step for equal times but not for equal buckets).
pub fn sort_for_deletion(pods: &mut [(Arc<Pod>, usize)], now: Timestamp) {
    pods.sort_by_cached_key(|(pod, rank)| {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        let ready = pod_ready_since(pod);
        (
            !node.is_empty(),
            phase_ordinal(pod),
            ready.is_some(),
            deletion_cost(pod),
            std::cmp::Reverse(*rank),
            ready.map_or(-3, |since| age_bucket(since, now)),
            std::cmp::Reverse(max_restarts(pod)),
            age_bucket(pod.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
            pod.metadata.uid.clone().unwrap_or_default(),
        )
    });
}

/// For each pod, how many of `related` (active) pods share its node: pods doubled up on a
/// node are deleted first (upstream's `getPodsRankedByRelatedPodsOnSameNode`).
pub fn rank_by_related_on_same_node(
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
) -> Vec<(Arc<Pod>, usize)> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| is_pod_active(p)) {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        *on_node.entry(node).or_default() += 1;
    }
    pods.iter()
        .map(|pod| {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .unwrap_or("");
            (pod.clone(), on_node.get(node).copied().unwrap_or(0))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------

struct Expectation {
    add: i64,
    del: i64,
    /// Keys of pods whose deletion is expected: only their deletions lower `del`
    /// (upstream's `UIDTrackingControllerExpectations`).
    deleting: HashSet<String>,
    since: Instant,
}

/// Creations and deletions a controller has asked for but not yet seen in its informer, so
/// that a sync on a stale cache does not act twice (upstream's `ControllerExpectations`).
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<ObjectKey, Expectation>>,
}

impl Expectations {
    /// Whether the controller of `key` may act: nothing pending, or the wait timed out.
    pub fn satisfied(&self, key: &ObjectKey) -> bool {
        match self.inner.lock().unwrap().get(key) {
            None => true,
            Some(e) => (e.add <= 0 && e.del <= 0) || e.since.elapsed() > EXPECTATIONS_TIMEOUT,
        }
    }

    /// Expects `count` pod creations for `key`.
    pub fn expect_creations(&self, key: &ObjectKey, count: usize) {
        self.inner.lock().unwrap().insert(
            key.clone(),
            Expectation {
                add: count as i64,
                del: 0,
                deleting: HashSet::new(),
                since: Instant::now(),
            },
        );
    }

    /// Expects the deletion of the pods named by `pod_keys` for `key`.
    pub fn expect_deletions(&self, key: &ObjectKey, pod_keys: Vec<String>) {
        self.inner.lock().unwrap().insert(
            key.clone(),
            Expectation {
                add: 0,
                del: pod_keys.len() as i64,
                deleting: pod_keys.into_iter().collect(),
                since: Instant::now(),
            },
        );
    }

    /// One expected creation was seen (or will never happen).
    pub fn creation_observed(&self, key: &ObjectKey) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(key) {
            e.add -= 1;
        }
    }

    /// The deletion of `pod_key` was seen (or will never happen).
    pub fn deletion_observed(&self, key: &ObjectKey, pod_key: &str) {
        if let Some(e) = self.inner.lock().unwrap().get_mut(key) {
            if e.deleting.remove(pod_key) {
                e.del -= 1;
            }
        }
    }

    /// Forgets `key` (its owner was deleted).
    pub fn delete(&self, key: &ObjectKey) {
        self.inner.lock().unwrap().remove(key);
    }
}

// ---------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------

/// Runs `count` calls of `f` in batches of 1, 2, 4, … (each batch concurrently), stopping
/// after the first batch with an error, so a failing quota or webhook costs one call rather
/// than hundreds (upstream's `slowStartBatch`). Returns the successes and the first error.
pub async fn slow_start_batch<F, Fut>(
    count: usize,
    initial: usize,
    f: F,
) -> (usize, Option<anyhow::Error>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut batch = remaining.min(initial);
    while batch > 0 {
        let results = futures::future::join_all((0..batch).map(|_| f())).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => successes += 1,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
        remaining -= batch;
        batch = (2 * batch).min(remaining);
    }
    (successes, None)
}

// ---------------------------------------------------------------------------------------
// API errors
// ---------------------------------------------------------------------------------------

/// The HTTP code of an API error, if it is one.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Whether `e` is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}

/// The error as a Go client would print it: the server's message for API errors.
pub fn error_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        e => e.to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Adoption and release (controller_ref_manager.go)
// ---------------------------------------------------------------------------------------

/// Claims objects for a controller as upstream's `ControllerRefManager.ClaimObject`: keeps
/// those it controls that still match, releases those it controls that no longer match
/// (unless it is being deleted), and adopts matching orphans (after re-reading the owner
/// once from the API to make sure it is neither deleted nor replaced).
pub struct RefManager<'a, O> {
    client: &'a kube::Client,
    owner: &'a O,
    owner_ref: OwnerReference,
    selector: &'a LabelSelector,
    /// The result of the one fresh read of the owner (`RecheckDeletionTimestamp`).
    can_adopt: Option<Result<(), String>>,
}

impl<'a, O> RefManager<'a, O>
where
    O: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    /// A manager for `owner`'s objects selected by `selector`.
    pub fn new(client: &'a kube::Client, owner: &'a O, selector: &'a LabelSelector) -> Self {
        RefManager {
            client,
            owner,
            owner_ref: controller_ref(owner),
            selector,
            can_adopt: None,
        }
    }

    async fn can_adopt(&mut self) -> Result<(), String> {
        if let Some(result) = &self.can_adopt {
            return result.clone();
        }
        let meta = self.owner.meta();
        let ns = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let api: Api<O> = Api::namespaced(self.client.clone(), &ns);
        let result = match api.get(&name).await {
            Ok(fresh) if fresh.meta().uid != meta.uid => Err(format!(
                "original {ns}/{name} is gone: got uid {}, wanted {}",
                fresh.meta().uid.clone().unwrap_or_default(),
                meta.uid.clone().unwrap_or_default()
            )),
            Ok(fresh) if fresh.meta().deletion_timestamp.is_some() => Err(format!(
                "{ns}/{name} has just been deleted at {}",
                fresh
                    .meta()
                    .deletion_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .unwrap_or_default()
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(error_message(&e)),
        };
        self.can_adopt = Some(result.clone());
        result
    }

    /// The objects of `candidates` this controller owns after adoption and release.
    pub async fn claim<K>(&mut self, candidates: Vec<Arc<K>>) -> anyhow::Result<Vec<Arc<K>>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned
            + serde::Serialize,
    {
        let owner_uid = self.owner_ref.uid.clone();
        let owner_deleting = self.owner.meta().deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        let mut errors = Vec::new();
        for obj in candidates {
            let meta = obj.meta();
            let matches = selector_matches(self.selector, meta.labels.as_ref());
            let ns = meta.namespace.clone().unwrap_or_default();
            let name = meta.name.clone().unwrap_or_default();
            let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
            match controller_of(meta) {
                Some(r) if r.uid != owner_uid => continue,
                Some(_) if matches => claimed.push(obj),
                Some(_) => {
                    if owner_deleting {
                        continue;
                    }
                    let patch = serde_json::json!({"metadata": {
                        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
                        "uid": meta.uid,
                    }});
                    if let Err(e) = api
                        .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        if !is_not_found(&e) && api_code(&e) != Some(422) {
                            errors
                                .push(format!("cannot release {ns}/{name}: {}", error_message(&e)));
                        }
                    }
                }
                None => {
                    if owner_deleting || !matches || meta.deletion_timestamp.is_some() {
                        continue;
                    }
                    if self
                        .owner
                        .meta()
                        .namespace
                        .as_deref()
                        .is_some_and(|o| o != ns)
                    {
                        continue;
                    }
                    if let Err(e) = self.can_adopt().await {
                        errors.push(format!("can't adopt {ns}/{name}: {e}"));
                        continue;
                    }
                    let patch = serde_json::json!({"metadata": {
                        "ownerReferences": [self.owner_ref],
                        "uid": meta.uid,
                    }});
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                        .await
                    {
                        Ok(adopted) => claimed.push(Arc::new(adopted)),
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => {
                            errors.push(format!("cannot adopt {ns}/{name}: {}", error_message(&e)))
                        }
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(claimed)
        } else {
            Err(anyhow::anyhow!(errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert!(selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "b")]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "c")]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")]))
        ));
        assert!(!selector_matches(&sel, None));
        assert!(selector_is_empty(&LabelSelector::default()));
        assert!(!selector_is_empty(&sel));
    }

    fn pod(
        name: &str,
        node: &str,
        phase: &str,
        ready_secs_ago: Option<i64>,
        created_secs_ago: i64,
    ) -> Arc<Pod> {
        let now = Timestamp::now().as_second();
        let ts = |ago: i64| Time(Timestamp::from_second(now - ago).unwrap());
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                uid: Some(name.into()),
                creation_timestamp: Some(ts(created_secs_ago)),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_string()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_secs_ago.map(|ago| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(ts(ago)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        })
    }

    fn order(pods: Vec<Arc<Pod>>) -> Vec<String> {
        let mut ranked: Vec<_> = pods.into_iter().map(|p| (p, 0)).collect();
        sort_for_deletion(&mut ranked, Timestamp::now());
        ranked
            .into_iter()
            .map(|(p, _)| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn deletion_prefers_unscheduled_then_pending_then_not_ready_then_newer() {
        let pods = vec![
            pod("running-ready-old", "n1", "Running", Some(5000), 6000),
            pod("running-ready-new", "n1", "Running", Some(10), 20),
            pod("running-not-ready", "n1", "Running", None, 7000),
            pod("pending", "n1", "Pending", None, 8000),
            pod("unscheduled", "", "Pending", None, 9000),
        ];
        assert_eq!(
            order(pods),
            vec![
                "unscheduled",
                "pending",
                "running-not-ready",
                "running-ready-new",
                "running-ready-old"
            ]
        );
    }

    #[test]
    fn deletion_prefers_pods_doubled_up_on_a_node() {
        let a = pod("alone", "n1", "Running", Some(100), 100);
        let b = pod("crowded", "n2", "Running", Some(100), 100);
        let related = vec![a.clone(), b.clone(), pod("x", "n2", "Running", Some(1), 1)];
        let mut ranked = rank_by_related_on_same_node(&[a, b], &related);
        sort_for_deletion(&mut ranked, Timestamp::now());
        assert_eq!(ranked[0].0.metadata.name.as_deref(), Some("crowded"));
    }

    #[test]
    fn deletion_ranking_is_a_total_order_over_many_similar_pods() {
        // Equal and nearly equal ready times in the same age bucket broke a pairwise
        // comparison (Rust's sort panics on an inconsistent order).
        let pods: Vec<_> = (0..300)
            .map(|i| {
                (
                    pod(
                        &format!("p{i}"),
                        "n1",
                        "Running",
                        Some(100 + (i % 7)),
                        200 + (i % 3),
                    ),
                    (i % 2) as usize,
                )
            })
            .collect();
        let mut ranked = pods.clone();
        sort_for_deletion(&mut ranked, Timestamp::now());
        assert_eq!(ranked.len(), 300);
        assert!(ranked[0].1 == 1, "pods doubled up on a node go first");
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let p = pod("p", "n1", "Running", Some(5), 10);
        let now = Timestamp::now();
        assert!(is_pod_available(&p, 0, now));
        assert!(is_pod_available(&p, 5, now));
        assert!(!is_pod_available(&p, 30, now));
        assert!(!is_pod_available(
            &pod("q", "n1", "Running", None, 10),
            0,
            now
        ));
    }

    #[tokio::test]
    async fn slow_start_doubles_batches_and_stops_at_the_first_failing_batch() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(10, 1, || async {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .await;
        assert_eq!((ok, err.is_none()), (10, true));
        // Batches 1, 2, 4; the 4th call (first of batch 3) fails: batch 3 finishes, no more.
        let n = std::sync::atomic::AtomicUsize::new(0);
        let (ok, err) = slow_start_batch(20, 1, || async {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if i == 3 {
                anyhow::bail!("quota")
            }
            Ok(())
        })
        .await;
        assert_eq!(ok, 6);
        assert_eq!(n.load(std::sync::atomic::Ordering::SeqCst), 7);
        assert!(err.is_some());
    }

    #[test]
    fn expectations_track_creations_and_named_deletions() {
        let e = Expectations::default();
        let key = ObjectKey::new("default", "web");
        assert!(e.satisfied(&key));
        e.expect_creations(&key, 2);
        assert!(!e.satisfied(&key));
        e.creation_observed(&key);
        e.creation_observed(&key);
        assert!(e.satisfied(&key));
        e.expect_deletions(&key, vec!["default/a".into()]);
        e.deletion_observed(&key, "default/other");
        assert!(!e.satisfied(&key));
        e.deletion_observed(&key, "default/a");
        assert!(e.satisfied(&key));
    }
}
