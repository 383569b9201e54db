//! Prometheus metrics under upstream's names, served on `GET /metrics`.
//!
//! Dashboards and alerts written for kube-apiserver read these unchanged:
//! `apiserver_request_total`, `apiserver_request_duration_seconds`,
//! `etcd_request_duration_seconds` (store operations, whatever the backend),
//! `apiserver_registered_watchers`, `apiserver_longrunning_requests`,
//! `apiserver_storage_objects`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `Content-Type` of [`Metrics::render`]'s output (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upstream's latency buckets for both request and storage latencies (seconds).
const LATENCY_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// What a request was, as upstream labels it.
#[derive(Debug, Clone, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Upper-case verb as upstream reports it: GET, LIST, WATCH, POST, PUT, PATCH, APPLY,
    /// DELETE, DELETECOLLECTION, CONNECT, …
    pub verb: String,
    /// API group (`""` for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource (plural), empty for non-resource paths.
    pub resource: String,
    /// Subresource, or the path for non-resource requests.
    pub subresource: String,
    /// `namespace`, `cluster`, `resource` or empty.
    pub scope: String,
    /// `apiserver`.
    pub component: String,
}

impl RequestLabels {
    /// Labels of a request served by the API server (`component="apiserver"`).
    pub fn new(
        verb: &str,
        group: &str,
        version: &str,
        resource: &str,
        subresource: &str,
        scope: &str,
    ) -> RequestLabels {
        RequestLabels {
            verb: verb.to_string(),
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            scope: scope.to_string(),
            component: "apiserver".to_string(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestCodeLabels {
    #[prometheus(flatten)]
    request: RequestLabels,
    code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    operation: String,
    r#type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatcherLabels {
    group: String,
    version: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

struct Inner {
    registry: Registry,
    requests: Family<RequestCodeLabels, Counter>,
    request_duration: HistogramFamily<RequestLabels>,
    store_duration: HistogramFamily<StoreLabels>,
    registered_watchers: Family<WatcherLabels, Gauge>,
    longrunning: Family<RequestLabels, Gauge>,
    storage_objects: Family<ResourceLabels, Gauge>,
}

/// The API server's metrics; cheap to clone (all clones share one registry).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry holding every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestCodeLabels, Counter>::default();
        // prometheus-client appends `_total` to counter names and a full stop to help
        // texts itself, so neither is written here.
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component",
            request_duration.clone(),
        );
        let store_duration: HistogramFamily<StoreLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type",
            store_duration.clone(),
        );
        let registered_watchers = Family::<WatcherLabels, Gauge>::default();
        registry.register(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resources",
            registered_watchers.clone(),
        );
        let longrunning = Family::<RequestLabels, Gauge>::default();
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way",
            longrunning.clone(),
        );
        let storage_objects = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1",
            storage_objects.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                request_duration,
                store_duration,
                registered_watchers,
                longrunning,
                storage_objects,
            }),
        }
    }

    /// Count a finished request and record how long it took.
    pub fn observe_request(&self, labels: &RequestLabels, code: u16, elapsed: Duration) {
        self.inner
            .requests
            .get_or_create(&RequestCodeLabels {
                request: labels.clone(),
                code: code.to_string(),
            })
            .inc();
        self.inner
            .request_duration
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Record one store operation (`get`, `list`, `create`, `update`, `delete`, `watch`, …)
    /// on objects of `object_type` (e.g. `pods`).
    pub fn observe_store(&self, operation: &str, object_type: &str, elapsed: Duration) {
        self.inner
            .store_duration
            .get_or_create(&StoreLabels {
                operation: operation.to_string(),
                r#type: object_type.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Count a long-running request (watch, exec, log follow, …) until the guard drops.
    pub fn long_running(&self, labels: RequestLabels) -> LongRunningGuard {
        self.inner.longrunning.get_or_create(&labels).inc();
        LongRunningGuard {
            metrics: self.clone(),
            labels,
        }
    }

    /// Count a registered watcher of `group/version, Kind=kind` until the guard drops.
    pub fn watcher_registered(&self, group: &str, version: &str, kind: &str) -> WatcherGuard {
        let labels = WatcherLabels {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        };
        self.inner.registered_watchers.get_or_create(&labels).inc();
        WatcherGuard {
            metrics: self.clone(),
            labels,
        }
    }

    /// Set the number of stored objects of each `(resource, count)` (resource as
    /// `pods`, `deployments.apps`).
    pub fn set_storage_objects<R: AsRef<str>>(&self, counts: impl IntoIterator<Item = (R, usize)>) {
        for (resource, count) in counts {
            self.set_storage_object_count(
                resource.as_ref(),
                i64::try_from(count).unwrap_or(i64::MAX),
            );
        }
    }

    /// Set the number of stored objects of `resource`; -1 when it could not be counted.
    pub fn set_storage_object_count(&self, resource: &str, count: i64) {
        self.inner
            .storage_objects
            .get_or_create(&ResourceLabels {
                resource: resource.to_string(),
            })
            .set(count);
    }

    /// All metrics in the Prometheus text format 0.0.4 (see [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut open_metrics = String::new();
        prometheus_client::encoding::text::encode_registry(&mut open_metrics, &self.inner.registry)
            .expect("writing to a String cannot fail");
        open_metrics_to_text(&open_metrics)
    }

    /// The `GET /metrics` response.
    pub fn response(&self) -> axum::response::Response {
        use axum::response::IntoResponse;
        ([(http::header::CONTENT_TYPE, CONTENT_TYPE)], self.render()).into_response()
    }
}

/// Decrements `apiserver_longrunning_requests` when dropped.
#[must_use = "the request counts as running only while the guard lives"]
pub struct LongRunningGuard {
    metrics: Metrics,
    labels: RequestLabels,
}

impl Drop for LongRunningGuard {
    fn drop(&mut self) {
        self.metrics
            .inner
            .longrunning
            .get_or_create(&self.labels)
            .dec();
    }
}

/// Decrements `apiserver_registered_watchers` when dropped.
#[must_use = "the watcher counts as registered only while the guard lives"]
pub struct WatcherGuard {
    metrics: Metrics,
    labels: WatcherLabels,
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.metrics
            .inner
            .registered_watchers
            .get_or_create(&self.labels)
            .dec();
    }
}

/// Turn prometheus-client's OpenMetrics text into the classic 0.0.4 text format: there a
/// counter's HELP and TYPE lines name the sample (`x_total`, not `x`), and `# EOF` is absent.
/// Gauges and histograms read the same in both.
fn open_metrics_to_text(open_metrics: &str) -> String {
    let counters: Vec<&str> = open_metrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods_get() -> RequestLabels {
        RequestLabels::new("GET", "", "v1", "pods", "", "resource")
    }

    fn sample<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
    }

    #[test]
    fn requests_are_counted_and_timed_under_upstream_names() {
        let metrics = Metrics::new();
        metrics.observe_request(&pods_get(), 200, Duration::from_millis(3));
        metrics.observe_request(&pods_get(), 200, Duration::from_millis(30));
        metrics.observe_request(&pods_get(), 404, Duration::from_millis(1));
        let text = metrics.render();

        assert!(
            text.contains("# TYPE apiserver_request_total counter\n"),
            "{text}"
        );
        assert!(text.contains("# HELP apiserver_request_total Counter of apiserver requests"));
        assert!(
            text.contains("and HTTP response code.\n"),
            "one full stop: {text}"
        );
        assert!(!text.contains("# EOF"));
        let ok = r#"apiserver_request_total{verb="GET",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",code="200"}"#;
        assert_eq!(sample(&text, ok), Some("2"), "{text}");
        assert_eq!(sample(&text, &ok.replace("200", "404")), Some("1"));

        assert!(text.contains("# TYPE apiserver_request_duration_seconds histogram\n"));
        let bucket = |le: &str| {
            format!(r#"apiserver_request_duration_seconds_bucket{{le="{le}",verb="GET""#)
        };
        assert_eq!(sample(&text, &bucket("0.005")), Some("2"), "{text}");
        assert_eq!(sample(&text, &bucket("0.05")), Some("3"));
        assert_eq!(sample(&text, &bucket("+Inf")), Some("3"));
    }

    #[test]
    fn guards_count_watchers_and_long_running_requests_while_alive() {
        let metrics = Metrics::new();
        let watcher =
            r#"apiserver_registered_watchers{group="apps",version="v1",kind="Deployment"}"#;
        let watch = RequestLabels {
            verb: "WATCH".into(),
            ..pods_get()
        };
        let first = metrics.watcher_registered("apps", "v1", "Deployment");
        let second = metrics.watcher_registered("apps", "v1", "Deployment");
        let running = metrics.long_running(watch);
        let text = metrics.render();
        assert_eq!(sample(&text, watcher), Some("2"), "{text}");
        assert_eq!(
            sample(&text, r#"apiserver_longrunning_requests{verb="WATCH""#),
            Some("1")
        );
        drop((first, second, running));
        let text = metrics.render();
        assert_eq!(sample(&text, watcher), Some("0"));
        assert_eq!(
            sample(&text, r#"apiserver_longrunning_requests{verb="WATCH""#),
            Some("0")
        );
    }

    #[test]
    fn store_operations_and_object_counts() {
        let metrics = Metrics::new();
        metrics.observe_store("create", "pods", Duration::from_millis(2));
        metrics.set_storage_objects([("pods", 7), ("deployments.apps", 2)]);
        let text = metrics.render();
        assert_eq!(
            sample(
                &text,
                r#"etcd_request_duration_seconds_count{operation="create",type="pods"}"#
            ),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"apiserver_storage_objects{resource="pods"}"#),
            Some("7")
        );
        assert_eq!(
            sample(
                &text,
                r#"apiserver_storage_objects{resource="deployments.apps"}"#
            ),
            Some("2")
        );
    }

    #[test]
    fn response_has_the_text_format_content_type() {
        let resp = Metrics::new().response();
        assert_eq!(resp.headers()[http::header::CONTENT_TYPE], CONTENT_TYPE);
    }
}
