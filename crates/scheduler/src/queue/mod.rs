//! The scheduling queue (upstream's `internal/queue/scheduling_queue.go`).
//!
//! - *activeQ*: pods ready to be tried, highest priority first, then oldest first
//!   (the `PrioritySort` plugin's order);
//! - *backoffQ*: pods that failed recently, waiting out 1 s doubling per attempt to 10 s;
//! - *unschedulable*: pods no node fits; a cluster event that may help (a node added, a
//!   pod deleted, …) moves them back, and none stays longer than five minutes.
//!
//! Pods with `schedulingGates` wait among the unschedulable until the gates are removed
//! (the `SchedulingGates` pre-enqueue plugin). The queue also remembers which pods were
//! nominated to which node after preemption (upstream's nominator).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8rs_client::ObjectKey;
use tokio::sync::Notify;

use crate::framework::{Nominated, PodInfo};

/// First back-off after a failed attempt (`podInitialBackoffSeconds`).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest back-off (`podMaxBackoffSeconds`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Longest stay among the unschedulable without a retry.
pub const MAX_UNSCHEDULABLE_DURATION: Duration = Duration::from_secs(5 * 60);

/// A pod in the queue with its scheduling history.
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    /// The pod (latest version seen).
    pub pod: Arc<PodInfo>,
    /// When it (re)entered the active or unschedulable queue.
    pub timestamp: Instant,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When the first attempt began (for metrics and logs).
    pub initial_attempt: Option<Instant>,
    /// Plugins that rejected it last time.
    pub unschedulable_plugins: Vec<&'static str>,
    /// When the last attempt failed.
    pub last_failure: Option<Instant>,
    /// Held back by `spec.schedulingGates`.
    pub gated: bool,
}

type ActiveKey = (Reverse<i32>, Instant, u64);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    Active(ActiveKey),
    Backoff((Instant, u64)),
    Unschedulable,
    InFlight,
}

struct Entry {
    info: QueuedPodInfo,
    place: Place,
}

#[derive(Default)]
struct Inner {
    active: BTreeMap<ActiveKey, ObjectKey>,
    backoff: BTreeMap<(Instant, u64), ObjectKey>,
    /// Keys of the pods in `Place::Unschedulable` (events walk only these).
    unschedulable: HashSet<ObjectKey>,
    pods: HashMap<ObjectKey, Entry>,
    seq: u64,
    scheduling_cycle: u64,
    move_request_cycle: u64,
    nominated: Arc<Nominated>,
    nominated_node: HashMap<ObjectKey, String>,
}

/// Where a pod stands in the queue (tests, logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueName {
    /// activeQ.
    Active,
    /// backoffQ.
    Backoff,
    /// Unschedulable pods.
    Unschedulable,
    /// Being scheduled.
    InFlight,
}

/// The scheduling queue, shared by informer handlers and the scheduling loop.
#[derive(Default)]
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
}

fn is_gated(pod: &PodInfo) -> bool {
    pod.pod
        .spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

/// Upstream's `calculateBackoffDuration`.
pub fn backoff_duration(attempts: u32) -> Duration {
    let mut d = INITIAL_BACKOFF;
    for _ in 1..attempts {
        if d > MAX_BACKOFF - d {
            return MAX_BACKOFF;
        }
        d += d;
    }
    d
}

impl Inner {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn unlink(&mut self, key: &ObjectKey) -> Option<Entry> {
        let entry = self.pods.remove(key)?;
        match entry.place {
            Place::Active(k) => {
                self.active.remove(&k);
            }
            Place::Backoff(k) => {
                self.backoff.remove(&k);
            }
            Place::Unschedulable => {
                self.unschedulable.remove(key);
            }
            Place::InFlight => {}
        }
        Some(entry)
    }

    fn push_active(&mut self, key: ObjectKey, mut info: QueuedPodInfo, now: Instant) {
        info.timestamp = now;
        let k = (Reverse(info.pod.priority), now, self.next_seq());
        self.active.insert(k, key.clone());
        self.pods.insert(
            key,
            Entry {
                info,
                place: Place::Active(k),
            },
        );
    }

    fn push_backoff(&mut self, key: ObjectKey, info: QueuedPodInfo, expiry: Instant) {
        let k = (expiry, self.next_seq());
        self.backoff.insert(k, key.clone());
        self.pods.insert(
            key,
            Entry {
                info,
                place: Place::Backoff(k),
            },
        );
    }

    fn push_unschedulable(&mut self, key: ObjectKey, mut info: QueuedPodInfo, now: Instant) {
        info.timestamp = now;
        self.unschedulable.insert(key.clone());
        self.pods.insert(
            key,
            Entry {
                info,
                place: Place::Unschedulable,
            },
        );
    }

    fn backoff_expiry(info: &QueuedPodInfo) -> Option<Instant> {
        info.last_failure
            .map(|t| t + backoff_duration(info.attempts))
    }

    /// Active, or backoff while the pod's back-off lasts; whether it became active.
    fn requeue(&mut self, key: ObjectKey, info: QueuedPodInfo, now: Instant) -> bool {
        match Inner::backoff_expiry(&info) {
            Some(expiry) if expiry > now => {
                self.push_backoff(key, info, expiry);
                false
            }
            _ => {
                self.push_active(key, info, now);
                true
            }
        }
    }
}

impl SchedulingQueue {
    /// An empty queue.
    pub fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    /// A new pending pod (or a changed one).
    pub fn add(&self, pod: Arc<PodInfo>) {
        self.update(pod, true)
    }

    /// A pending pod changed; `meaningful` when more than its status changed (only such
    /// changes retry an unschedulable pod at once).
    pub fn update(&self, pod: Arc<PodInfo>, meaningful: bool) {
        let key = pod.key.clone();
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        let gated = is_gated(&pod);
        let Some(entry) = inner.pods.get_mut(&key) else {
            let info = QueuedPodInfo {
                pod,
                timestamp: now,
                attempts: 0,
                initial_attempt: None,
                unschedulable_plugins: Vec::new(),
                last_failure: None,
                gated,
            };
            if gated {
                inner.push_unschedulable(key, info, now);
            } else {
                inner.push_active(key, info, now);
                drop(inner);
                self.notify.notify_one();
            }
            return;
        };
        let priority_changed = entry.info.pod.priority != pod.priority;
        entry.info.pod = pod;
        let was_gated = entry.info.gated;
        entry.info.gated = gated;
        match entry.place {
            Place::Active(_) if priority_changed => {
                let e = inner.unlink(&key).unwrap();
                inner.push_active(key, e.info, now);
            }
            Place::Unschedulable if !gated && (was_gated || meaningful) => {
                let e = inner.unlink(&key).unwrap();
                let active = if was_gated {
                    inner.push_active(key, e.info, now);
                    true
                } else {
                    inner.requeue(key, e.info, now)
                };
                drop(inner);
                if active {
                    self.notify.notify_one();
                }
            }
            _ => {}
        }
    }

    /// A pod was deleted or bound elsewhere: forget it.
    pub fn delete(&self, key: &ObjectKey) {
        let mut inner = self.inner.lock().unwrap();
        inner.unlink(key);
        Self::unnominate(&mut inner, key);
    }

    /// Waits for the next pod to schedule; returns it with the scheduling cycle number.
    pub async fn pop(&self) -> (QueuedPodInfo, u64) {
        loop {
            {
                let mut inner = self.inner.lock().unwrap();
                if let Some((_, key)) = inner.active.pop_first() {
                    inner.scheduling_cycle += 1;
                    let cycle = inner.scheduling_cycle;
                    let entry = inner.pods.get_mut(&key).expect("active pods have entries");
                    entry.place = Place::InFlight;
                    entry.info.attempts += 1;
                    entry.info.initial_attempt.get_or_insert_with(Instant::now);
                    return (entry.info.clone(), cycle);
                }
            }
            self.notify.notified().await;
        }
    }

    /// The in-flight pod was bound (or skipped): it leaves the queue.
    pub fn done(&self, key: &ObjectKey) {
        let mut inner = self.inner.lock().unwrap();
        if inner
            .pods
            .get(key)
            .is_some_and(|e| e.place == Place::InFlight)
        {
            inner.pods.remove(key);
        }
    }

    /// The in-flight pod could not be scheduled in cycle `cycle`. Errors back off; a
    /// rejection waits among the unschedulable unless a cluster event arrived during the
    /// attempt (then it backs off, since that event may have made room).
    pub fn failed(&self, key: &ObjectKey, plugins: Vec<&'static str>, cycle: u64, error: bool) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        let Some(entry) = inner.pods.get(key) else {
            return; // deleted meanwhile
        };
        if entry.place != Place::InFlight {
            return;
        }
        let mut info = inner.unlink(key).unwrap().info;
        info.unschedulable_plugins = plugins;
        info.last_failure = Some(now);
        if error || inner.move_request_cycle >= cycle {
            let expiry = now + backoff_duration(info.attempts);
            inner.push_backoff(key.clone(), info, expiry);
        } else {
            inner.push_unschedulable(key.clone(), info, now);
        }
    }

    /// A cluster event: unschedulable pods it may help (per `worth_retrying`, given the
    /// pod and the plugins that rejected it) go back to active or backoff.
    pub fn move_all(&self, worth_retrying: impl Fn(&PodInfo, &[&'static str]) -> bool) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        inner.move_request_cycle = inner.scheduling_cycle;
        if inner.unschedulable.is_empty() {
            return;
        }
        let keys: Vec<ObjectKey> = inner
            .unschedulable
            .iter()
            .filter(|k| {
                let e = &inner.pods[*k];
                !e.info.gated && worth_retrying(&e.info.pod, &e.info.unschedulable_plugins)
            })
            .cloned()
            .collect();
        let mut woke = false;
        for key in keys {
            let e = inner.unlink(&key).unwrap();
            woke |= inner.requeue(key, e.info, now);
        }
        drop(inner);
        if woke {
            self.notify.notify_one();
        }
    }

    /// Moves pods whose back-off has passed to active, and pods unschedulable for longer
    /// than [`MAX_UNSCHEDULABLE_DURATION`] back to be tried again (upstream runs these
    /// every second and every 30 seconds).
    pub fn flush(&self, now: Instant) {
        let mut inner = self.inner.lock().unwrap();
        let mut woke = false;
        while let Some(entry) = inner.backoff.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            let e = inner.pods.remove(&key).unwrap();
            inner.push_active(key, e.info, now);
            woke = true;
        }
        let stale: Vec<ObjectKey> = inner
            .unschedulable
            .iter()
            .filter(|k| {
                let e = &inner.pods[*k];
                !e.info.gated && now.duration_since(e.info.timestamp) > MAX_UNSCHEDULABLE_DURATION
            })
            .cloned()
            .collect();
        for key in stale {
            let e = inner.unlink(&key).unwrap();
            woke |= inner.requeue(key, e.info, now);
        }
        drop(inner);
        if woke {
            self.notify.notify_one();
        }
    }

    /// Where the pod is.
    pub fn position(&self, key: &ObjectKey) -> Option<QueueName> {
        let inner = self.inner.lock().unwrap();
        inner.pods.get(key).map(|e| match e.place {
            Place::Active(_) => QueueName::Active,
            Place::Backoff(_) => QueueName::Backoff,
            Place::Unschedulable => QueueName::Unschedulable,
            Place::InFlight => QueueName::InFlight,
        })
    }

    /// Number of pods waiting (any queue, including in flight).
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().pods.len()
    }

    /// Whether no pod waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records that `pod` was nominated to `node` (`None`: no longer nominated).
    pub fn nominate(&self, pod: Arc<PodInfo>, node: Option<&str>) {
        let mut inner = self.inner.lock().unwrap();
        let key = pod.key.clone();
        if inner.nominated_node.get(&key).map(String::as_str) == node {
            // Same node: refresh the pod.
            if let Some(node) = node {
                let list = Arc::make_mut(&mut inner.nominated)
                    .entry(node.to_string())
                    .or_default();
                if let Some(p) = list.iter_mut().find(|p| p.key == key) {
                    *p = pod;
                }
            }
            return;
        }
        Self::unnominate(&mut inner, &key);
        if let Some(node) = node {
            inner.nominated_node.insert(key, node.to_string());
            Arc::make_mut(&mut inner.nominated)
                .entry(node.to_string())
                .or_default()
                .push(pod);
        }
    }

    fn unnominate(inner: &mut Inner, key: &ObjectKey) {
        if let Some(node) = inner.nominated_node.remove(key) {
            let map = Arc::make_mut(&mut inner.nominated);
            if let Some(list) = map.get_mut(&node) {
                list.retain(|p| &p.key != key);
                if list.is_empty() {
                    map.remove(&node);
                }
            }
        }
    }

    /// Pods nominated per node (cheap to take every cycle).
    pub fn nominated(&self) -> Arc<Nominated> {
        self.inner.lock().unwrap().nominated.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(name: &str, priority: i32) -> Arc<PodInfo> {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns"},
            "spec": {"priority": priority, "containers": []}}))
        .unwrap();
        Arc::new(PodInfo::new(Arc::new(p)))
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("ns", name)
    }

    #[tokio::test]
    async fn pops_by_priority_then_age() {
        let q = SchedulingQueue::new();
        q.add(pod("low", 0));
        q.add(pod("high", 100));
        q.add(pod("low2", 0));
        let mut order = Vec::new();
        for _ in 0..3 {
            let (p, _) = q.pop().await;
            order.push(p.pod.key.name.clone());
        }
        assert_eq!(order, ["high", "low", "low2"]);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff_duration(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[tokio::test]
    async fn unschedulable_pods_wait_for_an_event_that_may_help() {
        let q = SchedulingQueue::new();
        q.add(pod("a", 0));
        let (p, cycle) = q.pop().await;
        q.failed(&p.pod.key, vec!["NodeResourcesFit"], cycle, false);
        assert_eq!(q.position(&key("a")), Some(QueueName::Unschedulable));

        // An event no rejecting plugin cares about leaves it there.
        q.move_all(|_, plugins| plugins.contains(&"TaintToleration"));
        assert_eq!(q.position(&key("a")), Some(QueueName::Unschedulable));

        // One that may help moves it; it failed just now, so it backs off first.
        q.move_all(|_, plugins| plugins.contains(&"NodeResourcesFit"));
        assert_eq!(q.position(&key("a")), Some(QueueName::Backoff));
        q.flush(Instant::now() + Duration::from_secs(2));
        assert_eq!(q.position(&key("a")), Some(QueueName::Active));
    }

    #[tokio::test]
    async fn an_event_during_the_attempt_means_backoff_not_unschedulable() {
        let q = SchedulingQueue::new();
        q.add(pod("a", 0));
        let (p, cycle) = q.pop().await;
        q.move_all(|_, _| true);
        q.failed(&p.pod.key, vec!["NodeResourcesFit"], cycle, false);
        assert_eq!(q.position(&key("a")), Some(QueueName::Backoff));
    }

    #[tokio::test]
    async fn unschedulable_pods_are_flushed_after_five_minutes() {
        let q = SchedulingQueue::new();
        q.add(pod("a", 0));
        let (p, cycle) = q.pop().await;
        q.failed(&p.pod.key, vec!["X"], cycle, false);
        q.flush(Instant::now() + Duration::from_secs(60));
        assert_eq!(q.position(&key("a")), Some(QueueName::Unschedulable));
        q.flush(Instant::now() + MAX_UNSCHEDULABLE_DURATION + Duration::from_secs(1));
        assert_eq!(q.position(&key("a")), Some(QueueName::Active));
    }

    #[tokio::test]
    async fn gated_pods_wait_until_their_gates_are_removed() {
        let q = SchedulingQueue::new();
        let gated: Pod =
            serde_json::from_value(json!({"metadata": {"name": "g", "namespace": "ns"},
            "spec": {"schedulingGates": [{"name": "x"}], "containers": []}}))
            .unwrap();
        q.add(Arc::new(PodInfo::new(Arc::new(gated))));
        q.move_all(|_, _| true);
        assert_eq!(q.position(&key("g")), Some(QueueName::Unschedulable));
        q.update(pod("g", 0), true);
        assert_eq!(q.position(&key("g")), Some(QueueName::Active));
        q.delete(&key("g"));
        assert!(q.is_empty());
    }
}
