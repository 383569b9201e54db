//! Recording core/v1 Events as upstream components do (client-go's `record` package).
//!
//! `kubectl describe` and `kubectl get events` read these. Like client-go, a repeat of
//! the same event (same object, type, reason and message) bumps `count` and
//! `lastTimestamp` of the existing Event instead of creating another. Writes happen in
//! the background; a failed write is logged, never returned to the caller, because an
//! event must not fail the work it describes.
//!
//! Also like client-go (`EventSourceObjectSpamFilter`), each source may write 25 events
//! about one object in a burst, then one per five minutes: a ReplicaSet creating 1,000
//! pods records 25 `SuccessfulCreate` events, not 1,000 writes competing with the pods.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Resource;

/// `Normal` or `Warning`, the two event types upstream uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Expected progress (`SuccessfulCreate`, `ScalingReplicaSet`, …).
    Normal,
    /// Something a user should look at (`FailedCreate`, `FailedScheduling`, …).
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Bound on remembered events for aggregation; beyond it the memory starts afresh.
const MAX_REMEMBERED: usize = 4096;
/// Events one source may write about one object at once (client-go's `defaultSpamBurst`).
const SPAM_BURST: f64 = 25.0;
/// Then one more per this period (client-go's `defaultSpamQPS` = 1/300).
const SPAM_REFILL: Duration = Duration::from_secs(300);

/// A token bucket per involved object (client-go's `spamRecord`).
#[derive(Default)]
struct SpamFilter {
    buckets: HashMap<String, (f64, Instant)>,
}

impl SpamFilter {
    /// Whether another event about `object` may be written now (takes a token).
    fn allow(&mut self, object: String, now: Instant) -> bool {
        if self.buckets.len() >= MAX_REMEMBERED && !self.buckets.contains_key(&object) {
            self.buckets.clear();
        }
        let (tokens, last) = self.buckets.entry(object).or_insert((SPAM_BURST, now));
        let refilled =
            now.saturating_duration_since(*last).as_secs_f64() / SPAM_REFILL.as_secs_f64();
        *tokens = (*tokens + refilled).min(SPAM_BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct EventKey {
    uid: String,
    namespace: String,
    name: String,
    type_: EventType,
    reason: String,
    message: String,
}

impl std::hash::Hash for EventType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

/// Writes Events on behalf of one component (`deployment-controller`, `default-scheduler`).
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    host: Option<String>,
    seen: Arc<Mutex<HashMap<EventKey, (String, i32)>>>,
    spam: Arc<Mutex<SpamFilter>>,
}

impl EventRecorder {
    /// A recorder whose events name `component` as their source.
    pub fn new(client: kube::Client, component: impl Into<String>) -> Self {
        EventRecorder {
            client,
            component: component.into(),
            host: None,
            seen: Arc::new(Mutex::new(HashMap::new())),
            spam: Arc::default(),
        }
    }

    /// Sets `source.host` (the kubelet reports its node name there).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Records an event about `obj` in the background.
    pub fn record<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record_for(object_reference(obj), type_, reason, message.into());
    }

    /// Records an event about the object `involved` refers to, in the background.
    pub fn record_for(
        &self,
        involved: ObjectReference,
        type_: EventType,
        reason: &str,
        message: String,
    ) {
        let namespace = involved
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_string());
        // client-go's getSpamKey: source and involved object.
        let spam_key = format!(
            "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            self.component,
            self.host.as_deref().unwrap_or(""),
            involved.kind.as_deref().unwrap_or(""),
            involved.namespace.as_deref().unwrap_or(""),
            involved.name.as_deref().unwrap_or(""),
            involved.uid.as_deref().unwrap_or(""),
            involved.api_version.as_deref().unwrap_or(""),
        );
        if !self.spam.lock().unwrap().allow(spam_key, Instant::now()) {
            tracing::debug!(reason, %message, "event dropped by the spam filter");
            return;
        }
        let key = EventKey {
            uid: involved.uid.clone().unwrap_or_default(),
            namespace: namespace.clone(),
            name: involved.name.clone().unwrap_or_default(),
            type_,
            reason: reason.to_string(),
            message: message.clone(),
        };
        let repeat = {
            let mut seen = self.seen.lock().unwrap();
            if seen.len() >= MAX_REMEMBERED && !seen.contains_key(&key) {
                seen.clear();
            }
            match seen.get_mut(&key) {
                Some((name, count)) => {
                    *count += 1;
                    Some((name.clone(), *count))
                }
                None => {
                    let name = format!("{}.{:x}", key.name, Timestamp::now().as_nanosecond());
                    seen.insert(key.clone(), (name.clone(), 1));
                    None
                }
            }
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let now = Timestamp::now();
        match repeat {
            Some((name, count)) => {
                tokio::spawn(async move {
                    let patch = serde_json::json!({
                        "count": count,
                        "lastTimestamp": Time(now),
                    });
                    if let Err(e) = api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        tracing::debug!(error = %e, event = %name, "cannot update event");
                    }
                });
            }
            None => {
                let name = self
                    .seen
                    .lock()
                    .unwrap()
                    .get(&key)
                    .map(|(name, _)| name.clone())
                    .unwrap_or_default();
                let event = Event {
                    metadata: ObjectMeta {
                        name: Some(name),
                        namespace: Some(namespace),
                        ..Default::default()
                    },
                    involved_object: involved,
                    reason: Some(reason.to_string()),
                    message: Some(message),
                    type_: Some(type_.as_str().to_string()),
                    count: Some(1),
                    first_timestamp: Some(Time(now)),
                    last_timestamp: Some(Time(now)),
                    event_time: None::<MicroTime>,
                    source: Some(EventSource {
                        component: Some(self.component.clone()),
                        host: self.host.clone(),
                    }),
                    reporting_component: Some(self.component.clone()),
                    reporting_instance: Some(self.host.clone().unwrap_or_default()),
                    ..Default::default()
                };
                tokio::spawn(async move {
                    if let Err(e) = api.create(&PostParams::default(), &event).await {
                        tracing::debug!(error = %e, "cannot record event");
                    }
                });
            }
        }
    }
}

/// The `involvedObject` reference for `obj`.
pub fn object_reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    let meta = obj.meta();
    ObjectReference {
        api_version: Some(K::api_version(&()).to_string()),
        kind: Some(K::kind(&()).to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spam_filter_allows_a_burst_then_one_per_refill_period() {
        let mut filter = SpamFilter::default();
        let start = Instant::now();
        let allowed = (0..100)
            .filter(|_| filter.allow("rs".into(), start))
            .count();
        assert_eq!(allowed, 25);
        assert!(!filter.allow("rs".into(), start + Duration::from_secs(299)));
        assert!(filter.allow("rs".into(), start + Duration::from_secs(301)));
        assert!(!filter.allow("rs".into(), start + Duration::from_secs(302)));
        // Another object has its own bucket.
        assert!(filter.allow("other".into(), start));
    }
}
