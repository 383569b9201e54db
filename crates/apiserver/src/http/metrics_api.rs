//! `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics, served by the API server itself
//! as k3s's bundled metrics-server would serve them: each node's usage comes from its
//! kubelet's `/stats/summary` (CPU `usageNanoCores`, memory `workingSetBytes`), read on
//! demand. This is what `kubectl top nodes` and `kubectl top pods` read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{header, Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};

use super::node_proxy::{kubelet_address, KubeletAddress};
use super::request_info::RequestInfo;
use super::{responses, AppState};
use crate::registry::ListOptions;
use crate::status::{ApiError, ApiResult};

/// The group.
pub const GROUP: &str = "metrics.k8s.io";
/// The version.
pub const VERSION: &str = "v1beta1";
/// Served resources: `(plural, kind, namespaced)`.
pub const RESOURCES: &[(&str, &str, bool)] = &[
    ("nodes", "NodeMetrics", false),
    ("pods", "PodMetrics", true),
];
/// How long one kubelet may take to answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The window reported with every sample (metrics-server's default resolution).
const WINDOW: &str = "10s";

/// Whether a request addresses `metrics.k8s.io`.
pub fn is_metrics(info: &RequestInfo) -> bool {
    info.group == GROUP
        && info.version == VERSION
        && RESOURCES.iter().any(|(p, _, _)| *p == info.resource)
}

/// CPU in nanocores as a canonical quantity (`250m`, `12345n`, `2`).
pub fn cpu_quantity(nanocores: u64) -> String {
    if nanocores == 0 {
        return "0".into();
    }
    for (div, suffix) in [(1_000_000_000, ""), (1_000_000, "m"), (1_000, "u")] {
        if nanocores.is_multiple_of(div) {
            return format!("{}{suffix}", nanocores / div);
        }
    }
    format!("{nanocores}n")
}

/// Bytes as a canonical binary quantity (`1Ki`, `3Mi`, `1000`).
pub fn memory_quantity(bytes: u64) -> String {
    if bytes == 0 {
        return "0".into();
    }
    for (div, suffix) in [
        (1u64 << 40, "Ti"),
        (1 << 30, "Gi"),
        (1 << 20, "Mi"),
        (1 << 10, "Ki"),
    ] {
        if bytes.is_multiple_of(div) {
            return format!("{}{suffix}", bytes / div);
        }
    }
    bytes.to_string()
}

/// Read a kubelet's summary.
async fn summary(state: &AppState, kubelet: &KubeletAddress) -> ApiResult<Value> {
    let req = http::Request::get("/stats/summary")
        .header(header::HOST, format!("{}:{}", kubelet.ip, kubelet.port))
        .body(Body::empty())
        .map_err(ApiError::internal)?;
    let resp = tokio::time::timeout(SCRAPE_TIMEOUT, state.kubelet.send(kubelet, req))
        .await
        .map_err(|_| ApiError::internal("timed out reading the kubelet's summary"))??;
    if !resp.status().is_success() {
        return Err(ApiError::internal(format!(
            "kubelet summary answered {}",
            resp.status()
        )));
    }
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(ApiError::internal)?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

/// Summaries of the named nodes, fetched in parallel; nodes that do not answer are left
/// out (metrics-server skips them too).
async fn summaries(state: &Arc<AppState>, nodes: &[Arc<Value>]) -> HashMap<String, Value> {
    let fetches = nodes.iter().filter_map(|n| {
        let name = n.pointer("/metadata/name")?.as_str()?.to_string();
        let addr = kubelet_address(n).ok()?;
        let state = state.clone();
        Some(async move {
            match summary(&state, &addr).await {
                Ok(s) => Some((name, s)),
                Err(e) => {
                    tracing::debug!(node = %name, error = %e.message, "no metrics from node");
                    None
                }
            }
        })
    });
    futures::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect()
}

fn labels_of(obj: &Value) -> Value {
    obj.pointer("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| json!({}))
}

fn node_metrics(node: &Value, summary: &Value) -> Option<Value> {
    let n = &summary["node"];
    let cpu = n["cpu"]["usageNanoCores"].as_u64()?;
    let mem = n["memory"]["workingSetBytes"].as_u64()?;
    let ts = n["cpu"]["time"].as_str().unwrap_or_default();
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": node.pointer("/metadata/name"), "creationTimestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "labels": labels_of(node)},
        "timestamp": ts,
        "window": WINDOW,
        "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)},
    }))
}

fn pod_metrics(pod: &Value, summary: &Value) -> Option<Value> {
    let ns = pod.pointer("/metadata/namespace")?.as_str()?;
    let name = pod.pointer("/metadata/name")?.as_str()?;
    let uid = pod.pointer("/metadata/uid").and_then(Value::as_str);
    let stats = summary["pods"].as_array()?.iter().find(|p| {
        p["podRef"]["namespace"] == ns
            && p["podRef"]["name"] == name
            && uid.is_none_or(|u| {
                p["podRef"]["uid"]
                    .as_str()
                    .is_none_or(|x| x.is_empty() || x == u)
            })
    })?;
    let mut containers = Vec::new();
    let mut ts = String::new();
    for c in stats["containers"].as_array()? {
        // A container without a CPU rate yet makes the pod's metrics incomplete.
        let cpu = c["cpu"]["usageNanoCores"].as_u64()?;
        let mem = c["memory"]["workingSetBytes"].as_u64().unwrap_or(0);
        ts = c["cpu"]["time"].as_str().unwrap_or_default().to_string();
        containers.push(json!({"name": c["name"], "usage": {"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)}}));
    }
    if containers.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "labels": labels_of(pod)},
        "timestamp": ts,
        "window": WINDOW,
        "containers": containers,
    }))
}

/// GET or LIST NodeMetrics / PodMetrics.
pub async fn serve(state: &Arc<AppState>, info: &RequestInfo, req: Request) -> ApiResult<Response> {
    if req.method() != Method::GET {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let q: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let opts = ListOptions {
        label_selector: q.get("labelSelector").cloned(),
        field_selector: q.get("fieldSelector").cloned(),
        ..ListOptions::default()
    };
    let registry = &state.registry;
    let nodes_res = registry
        .resource("", "v1", "nodes")
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    let not_found = |plural: &str, name: &str| ApiError {
        details: Some(json!({"name": name, "group": GROUP, "kind": plural})),
        ..ApiError::new(
            404,
            "NotFound",
            format!("{plural}.{GROUP} {name:?} not found"),
        )
    };
    let list_meta = json!({});
    match info.resource.as_str() {
        "nodes" => {
            let nodes: Vec<Arc<Value>> = match &info.name {
                Some(n) => vec![registry
                    .get(&nodes_res, None, n, None)
                    .await
                    .map_err(|_| not_found("nodemetrics", n))?],
                None => registry.list_objects(&nodes_res, None, &opts).await?,
            };
            let sums = summaries(state, &nodes).await;
            let items: Vec<Value> = nodes
                .iter()
                .filter_map(|n| {
                    let name = n.pointer("/metadata/name")?.as_str()?;
                    node_metrics(n, sums.get(name)?)
                })
                .collect();
            if let Some(n) = &info.name {
                let item = items
                    .into_iter()
                    .next()
                    .ok_or_else(|| not_found("nodemetrics", n))?;
                return Ok(responses::json(StatusCode::OK, &item));
            }
            Ok(responses::json(
                StatusCode::OK,
                &json!({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": list_meta, "items": items}),
            ))
        }
        _ => {
            let pods_res = registry
                .resource("", "v1", "pods")
                .cloned()
                .ok_or_else(ApiError::path_not_found)?;
            let ns = info.namespace.as_deref();
            let pods: Vec<Arc<Value>> = match &info.name {
                Some(n) => vec![registry
                    .get(&pods_res, ns, n, None)
                    .await
                    .map_err(|_| not_found("podmetrics", n))?],
                None => registry.list_objects(&pods_res, ns, &opts).await?,
            };
            let mut wanted: Vec<String> = pods
                .iter()
                .filter_map(|p| p.pointer("/spec/nodeName")?.as_str().map(str::to_string))
                .filter(|n| !n.is_empty())
                .collect();
            wanted.sort();
            wanted.dedup();
            let mut nodes = Vec::new();
            for n in &wanted {
                if let Ok(node) = registry.get(&nodes_res, None, n, None).await {
                    nodes.push(node);
                }
            }
            let sums = summaries(state, &nodes).await;
            let items: Vec<Value> = pods
                .iter()
                .filter_map(|p| {
                    let node = p.pointer("/spec/nodeName")?.as_str()?;
                    pod_metrics(p, sums.get(node)?)
                })
                .collect();
            if let Some(n) = &info.name {
                let item = items
                    .into_iter()
                    .next()
                    .ok_or_else(|| not_found("podmetrics", n))?;
                return Ok(responses::json(StatusCode::OK, &item));
            }
            Ok(responses::json(
                StatusCode::OK,
                &json!({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": list_meta, "items": items}),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(cpu_quantity(250_000_000), "250m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(12_345), "12345n");
        assert_eq!(cpu_quantity(12_000), "12u");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(3 << 20), "3Mi");
        assert_eq!(memory_quantity(1536), "1536");
        assert_eq!(memory_quantity(2048), "2Ki");
    }

    #[test]
    fn metrics_come_from_the_summary() {
        let summary = json!({
            "node": {"cpu": {"time": "2024-01-01T00:00:00Z", "usageNanoCores": 500_000_000u64}, "memory": {"workingSetBytes": 1u64 << 30}},
            "pods": [{"podRef": {"namespace": "default", "name": "web", "uid": "u1"},
                      "containers": [{"name": "c", "cpu": {"time": "2024-01-01T00:00:00Z", "usageNanoCores": 1_000_000u64}, "memory": {"workingSetBytes": 4096u64}}]}],
        });
        let node = json!({"metadata": {"name": "n1", "labels": {"a": "b"}}});
        let m = node_metrics(&node, &summary).unwrap();
        assert_eq!(m["usage"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(m["metadata"]["labels"], json!({"a": "b"}));
        let pod = json!({"metadata": {"namespace": "default", "name": "web", "uid": "u1"}});
        let m = pod_metrics(&pod, &summary).unwrap();
        assert_eq!(
            m["containers"],
            json!([{"name": "c", "usage": {"cpu": "1m", "memory": "4Ki"}}])
        );
        // A recreated pod (other uid) has no metrics yet.
        let other = json!({"metadata": {"namespace": "default", "name": "web", "uid": "u2"}});
        assert!(pod_metrics(&other, &summary).is_none());
    }
}
