//! Requests the API server passes on to a node's kubelet, as upstream's pod and node
//! REST "connecters" (`pkg/registry/core/pod/rest/log.go`, `subresources.go`,
//! `pkg/registry/core/node/rest/proxy.go`):
//!
//! - `GET pods/{name}/log`: streamed from the kubelet's `/containerLogs`
//! - `pods/{name}/exec`, `attach`, `portforward`: the client's upgrade request (WebSocket or
//!   SPDY) is replayed to the kubelet's `/exec`, `/attach`, `/portForward`, and after its
//!   `101 Switching Protocols` bytes are copied both ways
//! - `nodes/{name}/proxy/{path}`: any request to the kubelet's `{path}`
//!
//! The kubelet is reached at the node's InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port` over TLS, verified against the cluster CA,
//! with the API server's kubelet client certificate.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderName, Method, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;

use super::AppState;
use crate::status::{ApiError, ApiResult};

/// Where a kubelet listens when the node does not say.
const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long connecting to a kubelet may take.
const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Dials kubelets.
pub struct KubeletClient {
    tls: Arc<rustls::ClientConfig>,
}

/// A kubelet's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletAddress {
    /// The node's InternalIP (or another address when it has none).
    pub ip: IpAddr,
    /// The kubelet port.
    pub port: u16,
}

/// A kubelet's address from its Node object, preferring InternalIP, then ExternalIP,
/// then a Hostname that is an IP (upstream's default preferred address types).
pub fn kubelet_address(node: &Value) -> ApiResult<KubeletAddress> {
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let of = |kind: &str| {
        addresses
            .iter()
            .filter(|a| a["type"] == kind)
            .filter_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
            .next()
    };
    let ip = of("InternalIP")
        .or_else(|| of("ExternalIP"))
        .or_else(|| of("Hostname"))
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|a| {
                    format!(
                        "{{{} {}}}",
                        a["type"].as_str().unwrap_or(""),
                        a["address"].as_str().unwrap_or("")
                    )
                })
                .collect();
            ApiError::internal(format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            ))
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u16::MAX as u64)
        .map(|p| p as u16)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Ok(KubeletAddress { ip, port })
}

impl KubeletClient {
    /// A client presenting the API server's kubelet client certificate.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> KubeletClient {
        KubeletClient { tls }
    }

    /// Send `req` to the kubelet at `addr` on a new connection (upgrades allowed).
    pub async fn send(
        &self,
        addr: &KubeletAddress,
        req: http::Request<Body>,
    ) -> ApiResult<http::Response<hyper::body::Incoming>> {
        let unreachable = |e: &dyn std::fmt::Display| {
            ApiError::new(
                502,
                "InternalError",
                format!(
                    "error dialing backend: dial tcp {}: {e}",
                    std::net::SocketAddr::new(addr.ip, addr.port)
                ),
            )
        };
        let tcp = tokio::time::timeout(
            DIAL_TIMEOUT,
            tokio::net::TcpStream::connect((addr.ip, addr.port)),
        )
        .await
        .map_err(|_| unreachable(&"i/o timeout"))?
        .map_err(|e| unreachable(&e))?;
        let _ = tcp.set_nodelay(true);
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(ServerName::IpAddress(addr.ip.into()), tcp)
            .await
            .map_err(|e| unreachable(&format!("tls: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(conn.with_upgrades());
        sender.send_request(req).await.map_err(|e| unreachable(&e))
    }
}

/// The pod object and the kubelet of its node; `Ok(None)` for a pod not yet scheduled.
async fn pod_and_kubelet(
    state: &AppState,
    ns: &str,
    name: &str,
) -> ApiResult<(Arc<Value>, Option<KubeletAddress>)> {
    let pods = state
        .registry
        .resource("", "v1", "pods")
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    let pod = state.registry.get(&pods, Some(ns), name, None).await?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        return Ok((pod, None));
    }
    let addr = node_address(state, node_name).await?;
    Ok((pod, Some(addr)))
}

async fn node_address(state: &AppState, node: &str) -> ApiResult<KubeletAddress> {
    let nodes = state
        .registry
        .resource("", "v1", "nodes")
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    let node = state.registry.get(&nodes, None, node, None).await?;
    kubelet_address(&node)
}

fn names(pod: &Value, field: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's `validateContainer` (logs) and `streamLocation` (exec, attach): the
/// container named, or the only one, or a 400 naming the choices.
fn resolve_container(pod: &Value, requested: &str, for_logs: bool) -> ApiResult<String> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    let ephemeral = names(pod, "ephemeralContainers");
    if requested.is_empty() {
        return match containers.len() {
            1 => Ok(containers[0].clone()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                // Go's %s of a []string: `[a b]`.
                let list = |l: &[String]| format!("[{}]", l.join(" "));
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: {}",
                    list(&containers)
                );
                if !init.is_empty() {
                    msg += &format!(" or one of the init containers: {}", list(&init));
                }
                if for_logs && !ephemeral.is_empty() {
                    msg += &format!(" or one of the ephemeral containers: {}", list(&ephemeral));
                }
                Err(ApiError::bad_request(msg))
            }
        };
    }
    if containers
        .iter()
        .chain(&init)
        .chain(&ephemeral)
        .any(|c| c == requested)
    {
        Ok(requested.to_string())
    } else {
        Err(ApiError::bad_request(format!(
            "container {requested} is not valid for pod {name}"
        )))
    }
}

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn encode_query(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn flag(v: &str) -> bool {
    v == "true" || v == "1"
}

/// Turn a kubelet error answer into upstream's `Status` (the `pods/log` response checker):
/// 400 → BadRequest with the kubelet's text, 500 → InternalError, others generic.
async fn kubelet_error(
    resp: http::Response<hyper::body::Incoming>,
    resource: &str,
    name: &str,
) -> ApiError {
    let code = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
        .unwrap_or_default();
    match code {
        400 => ApiError::bad_request(body),
        500 => ApiError::internal(body),
        404 => ApiError {
            details: Some(serde_json::json!({"name": name, "kind": resource})),
            ..ApiError::new(
                404,
                "NotFound",
                format!("the server could not find the requested resource ( {resource} {name})"),
            )
        },
        _ => ApiError::new(code, "InternalError", body),
    }
}

/// `GET pods/{name}/log`.
pub async fn pod_log(state: &AppState, ns: &str, name: &str, req: Request) -> ApiResult<Response> {
    if req.method() != Method::GET {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let q = query_pairs(&req);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    for key in ["tailLines", "limitBytes", "sinceSeconds"] {
        if let Some(v) = get(key) {
            let n: i64 = v
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid {key}: {v:?}")))?;
            let min = if key == "tailLines" { 0 } else { 1 };
            if n < min {
                let what = if min == 0 {
                    "must be greater than or equal to 0"
                } else {
                    "must be greater than 0"
                };
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "PodLogOptions \"{name}\" is invalid: {key}: Invalid value: {n}: {what}"
                    ),
                ));
            }
        }
    }
    let (pod, kubelet) = pod_and_kubelet(state, ns, name).await?;
    let container = resolve_container(&pod, get("container").unwrap_or(""), true)?;
    let Some(kubelet) = kubelet else {
        // Upstream answers an unscheduled pod's logs with an empty body.
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response());
    };
    let mut params = Vec::new();
    for key in ["follow", "previous", "timestamps"] {
        if get(key).is_some_and(flag) {
            params.push((key.to_string(), "true".to_string()));
        }
    }
    for key in ["sinceSeconds", "sinceTime", "tailLines", "limitBytes"] {
        if let Some(v) = get(key).filter(|v| !v.is_empty()) {
            params.push((key.to_string(), v.to_string()));
        }
    }
    let uri = format!(
        "/containerLogs/{ns}/{name}/{container}?{}",
        encode_query(&params)
    );
    let upstream = http::Request::get(uri)
        .header(header::HOST, format!("{}:{}", kubelet.ip, kubelet.port))
        .body(Body::empty())
        .map_err(ApiError::internal)?;
    let resp = state.kubelet.send(&kubelet, upstream).await?;
    if !resp.status().is_success() {
        return Err(kubelet_error(resp, "pods/log", name).await);
    }
    // Streamed as it comes (chunked), so `logs -f` sees lines at once.
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::new(resp.into_body()))
        .unwrap_or_else(|_| ApiError::internal("log response").into_response()))
}

/// Request headers that make an upgrade and are replayed to the kubelet.
const UPGRADE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
    "user-agent",
];

fn is_upgrade(req: &Request) -> bool {
    req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("upgrade"))
}

/// `pods/{name}/exec`, `attach`, `portforward` (GET or POST with an upgrade).
pub async fn pod_stream(
    state: &AppState,
    subresource: &str,
    ns: &str,
    name: &str,
    req: Request,
) -> ApiResult<Response> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let q = query_pairs(&req);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (pod, kubelet) = pod_and_kubelet(state, ns, name).await?;
    let (path, params) = if subresource == "portforward" {
        let ports: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| k == "ports")
            .flat_map(|(_, v)| v.split(','))
            .map(|p| ("port".to_string(), p.trim().to_string()))
            .collect();
        (format!("/portForward/{ns}/{name}"), ports)
    } else {
        let container = resolve_container(&pod, get("container").unwrap_or(""), false)?;
        let mut params: Vec<(String, String)> = Vec::new();
        if subresource == "exec" {
            params.extend(
                q.iter()
                    .filter(|(k, _)| k == "command")
                    .map(|(_, v)| ("command".to_string(), v.clone())),
            );
        }
        for (ours, kubelets) in [
            ("stdin", "input"),
            ("stdout", "output"),
            ("stderr", "error"),
            ("tty", "tty"),
        ] {
            if get(ours).is_some_and(flag) {
                params.push((kubelets.to_string(), "1".to_string()));
            }
        }
        let verb = if subresource == "exec" {
            "exec"
        } else {
            "attach"
        };
        (format!("/{verb}/{ns}/{name}/{container}"), params)
    };
    let Some(kubelet) = kubelet else {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    };
    if !is_upgrade(&req) {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    proxy_upgrade(
        state,
        &kubelet,
        &format!("{path}?{}", encode_query(&params)),
        req,
    )
    .await
}

/// Replay an upgrade request to the kubelet and, once it switches protocols, splice the
/// two connections.
async fn proxy_upgrade(
    state: &AppState,
    kubelet: &KubeletAddress,
    path_and_query: &str,
    mut req: Request,
) -> ApiResult<Response> {
    let mut upstream = http::Request::builder()
        .method(req.method().clone())
        .uri(path_and_query)
        .header(header::HOST, format!("{}:{}", kubelet.ip, kubelet.port));
    for name in UPGRADE_HEADERS {
        for v in req.headers().get_all(*name) {
            upstream = upstream.header(*name, v.clone());
        }
    }
    let upstream = upstream.body(Body::empty()).map_err(ApiError::internal)?;
    let client_upgrade = hyper::upgrade::on(&mut req);
    let resp = state.kubelet.send(kubelet, upstream).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // As upstream's upgrade-aware proxy: the kubelet's answer goes back as it is.
        let (parts, body) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::new(body)));
    }
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in resp.headers() {
        answer = answer.header(name, value);
    }
    tokio::spawn(async move {
        let (kubelet_side, client_side) =
            match tokio::join!(hyper::upgrade::on(resp), client_upgrade) {
                (Ok(k), Ok(c)) => (k, c),
                _ => return,
            };
        let mut k = TokioIo::new(kubelet_side);
        let mut c = TokioIo::new(client_side);
        let _ = tokio::io::copy_bidirectional(&mut c, &mut k).await;
    });
    answer.body(Body::empty()).map_err(ApiError::internal)
}

/// Headers never forwarded by the node proxy (hop-by-hop, and the client's credentials).
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "host"
            | "authorization"
            | "content-length"
    )
}

/// `/api/v1/nodes/{name}/proxy` and `/api/v1/nodes/{name}/proxy/{*path}`.
pub async fn node_proxy(
    State(state): State<Arc<AppState>>,
    Path(params): Path<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (node, path) = (get("name"), get("path"));
    match node_proxy_inner(&state, &node, &path, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn node_proxy_inner(
    state: &AppState,
    node: &str,
    path: &str,
    req: Request,
) -> ApiResult<Response> {
    // `nodes/<name>:<port>/proxy` names a port explicitly.
    let (node, port) = match node.split_once(':') {
        Some((n, p)) => (n, p.parse::<u16>().ok()),
        None => (node, None),
    };
    let mut kubelet = node_address(state, node).await?;
    if let Some(p) = port {
        kubelet.port = p;
    }
    let mut uri = format!("/{}", path.trim_start_matches('/'));
    if let Some(q) = req.uri().query() {
        uri = format!("{uri}?{q}");
    }
    if is_upgrade(&req) {
        return proxy_upgrade(state, &kubelet, &uri, req).await;
    }
    let (parts, body) = req.into_parts();
    let mut upstream = http::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .header(header::HOST, format!("{}:{}", kubelet.ip, kubelet.port));
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = upstream.body(body).map_err(ApiError::internal)?;
    let resp = state.kubelet.send(&kubelet, upstream).await?;
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubelet_address_prefers_internal_ip_and_the_reported_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "ExternalIP", "address": "10.0.0.9"}, {"type": "InternalIP", "address": "192.168.1.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 11250}},
        }});
        assert_eq!(
            kubelet_address(&node).unwrap(),
            KubeletAddress {
                ip: "192.168.1.5".parse().unwrap(),
                port: 11250
            }
        );
        let bare =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.1.1.1"}]}});
        assert_eq!(kubelet_address(&bare).unwrap().port, 10250);
        let err = kubelet_address(
            &json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}}),
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("no preferred addresses found; known addresses: [{Hostname n1}]"),
            "{}",
            err.message
        );
    }

    #[test]
    fn containers_are_resolved_as_upstream() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}],
        }});
        assert_eq!(
            resolve_container(&pod, "", true).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert_eq!(resolve_container(&pod, "b", false).unwrap(), "b");
        assert_eq!(resolve_container(&pod, "i", true).unwrap(), "i");
        assert_eq!(
            resolve_container(&pod, "z", false).unwrap_err().message,
            "container z is not valid for pod p"
        );
        let single = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "only"}]}});
        assert_eq!(resolve_container(&single, "", false).unwrap(), "only");
    }
}
