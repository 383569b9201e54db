//! Resource requests: verb dispatch from method, path and query, onto the registry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{header, Method, StatusCode};
use serde_json::{json, Value};

use super::request_info::{self, ApiPath, RequestInfo};
use super::responses;
use super::{body, AppState};
use crate::authn::UserInfo;
use crate::patch::PatchType;
use crate::registry::{
    DeleteOptions, FieldValidation, ListOptions, Part, Resource, ScaleChange, WatchOptions,
    WriteOptions,
};
use crate::status::{ApiError, ApiResult};
use crate::table::{self, IncludeObject, Representation};

type Query = HashMap<String, String>;

fn query_of(req: &Request) -> Query {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn header_str(req: &Request, name: header::HeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn flag(q: &Query, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1"))
}

/// Measures every request for `/metrics`.
pub async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let watch = req
        .uri()
        .query()
        .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"));
    let info = match request_info::parse(req.uri().path()) {
        Some(ApiPath::Resource(info)) => Some(info),
        _ => None,
    };
    let verb = match (&method, info.as_ref().and_then(|i| i.name.as_ref()), watch) {
        (_, _, true) => "WATCH",
        (&Method::GET, Some(_), _) => "GET",
        (&Method::GET, None, _) => "LIST",
        (&Method::POST, _, _) => "POST",
        (&Method::PUT, _, _) => "PUT",
        (&Method::PATCH, _, _) => "PATCH",
        (&Method::DELETE, Some(_), _) => "DELETE",
        (&Method::DELETE, None, _) => "DELETECOLLECTION",
        _ => "OTHER",
    };
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let code = resp.status().as_u16();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    if code >= 500 {
        tracing::warn!(verb, path, code, elapsed_ms, "request failed");
    } else {
        tracing::debug!(verb, path, code, elapsed_ms, "request");
    }
    if let Some(info) = info {
        let scope = match (&info.namespace, &info.name) {
            (_, Some(_)) => "resource",
            (Some(_), None) => "namespace",
            (None, None) => "cluster",
        };
        let labels = crate::metrics::RequestLabels::new(
            verb,
            &info.group,
            &info.version,
            &info.resource,
            info.subresource.as_deref().unwrap_or(""),
            scope,
        );
        state
            .metrics
            .observe_request(&labels, resp.status().as_u16(), start.elapsed());
    }
    resp
}

/// Everything under `/api` and `/apis`.
pub async fn api(State(state): State<Arc<AppState>>, req: Request) -> Response {
    match serve(&state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve(state: &Arc<AppState>, req: Request) -> ApiResult<Response> {
    let path = request_info::parse(req.uri().path()).ok_or_else(ApiError::path_not_found)?;
    let accept = header_str(&req, header::ACCEPT).to_string();
    match path {
        ApiPath::Root { legacy } => {
            require_get(&req)?;
            Ok(state.discovery.root(legacy, &accept))
        }
        ApiPath::Group { group } => {
            require_get(&req)?;
            state
                .discovery
                .group(&group)
                .ok_or_else(ApiError::path_not_found)
        }
        ApiPath::GroupVersion { group, version } => {
            require_get(&req)?;
            state
                .discovery
                .resource_list(&group, &version)
                .ok_or_else(ApiError::path_not_found)
        }
        ApiPath::Resource(info) => {
            if let Some(res) = state
                .registry
                .resource(&info.group, &info.version, &info.resource)
                .cloned()
            {
                let mut resp = serve_resource(state, &res, &info, req)
                    .await
                    .unwrap_or_else(IntoResponse::into_response);
                if let Some(warning) = res.strategy.deprecation_warning() {
                    responses::add_warning(&mut resp, warning);
                }
                Ok(resp)
            } else if crate::discovery::is_review(&info) {
                serve_review(state, &info, req).await
            } else if super::metrics_api::is_metrics(&info) {
                super::metrics_api::serve(state, &info, req).await
            } else {
                Err(ApiError::path_not_found())
            }
        }
    }
}

fn require_get(req: &Request) -> ApiResult<()> {
    if req.method() == Method::GET {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ))
    }
}

fn write_options(
    q: &Query,
    req: &Request,
    patch_type: Option<PatchType>,
) -> ApiResult<WriteOptions> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun value: {other:?}: supported values: \"All\""
            )))
        }
    };
    let field_validation = match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )))
        }
    };
    let field_manager = match q.get("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) => m.clone(),
        None if patch_type == Some(PatchType::Apply) => String::new(),
        None => {
            // Upstream derives the manager from the user agent's product name.
            let ua = header_str(req, header::USER_AGENT);
            let name = ua.split('/').next().unwrap_or("").trim();
            let name: String = name.chars().take(128).collect();
            if name.is_empty() {
                "unknown".into()
            } else {
                name
            }
        }
    };
    if patch_type == Some(PatchType::Apply) && field_manager.is_empty() {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    Ok(WriteOptions {
        dry_run,
        field_manager,
        field_validation,
        force: flag(q, "force"),
    })
}

fn list_options(q: &Query) -> ApiResult<ListOptions> {
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit: {l:?}")))?
            .max(0) as usize,
        None => 0,
    };
    Ok(ListOptions {
        label_selector: q.get("labelSelector").cloned(),
        field_selector: q.get("fieldSelector").cloned(),
        limit,
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q
            .get("resourceVersionMatch")
            .cloned()
            .filter(|s| !s.is_empty()),
    })
}

async fn serve_resource(
    state: &Arc<AppState>,
    res: &Arc<Resource>,
    ri: &RequestInfo,
    req: Request,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let info = res.info();
    let q = query_of(&req);
    let ns = if info.namespaced {
        ri.namespace.as_deref()
    } else {
        // Cluster-scoped resources are never under /namespaces/<ns>/ (but namespaces
        // themselves parse with their own name as namespace).
        if ri.namespace.is_some() && info.kind != "Namespace" {
            return Err(ApiError::path_not_found());
        }
        None
    };
    let accept = header_str(&req, header::ACCEPT).to_string();
    let repr = table::negotiate(&accept);
    let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let method = req.method().clone();
    let name = ri.name.as_deref();
    let sub = ri.subresource.as_deref();

    // Subresources this registry serves generically.
    let part = match sub {
        None => Part::Main,
        Some("status") if info.subresources.status || info.kind == "Namespace" => Part::Status,
        Some("finalize") if info.group.is_empty() && info.kind == "Namespace" => {
            if method != Method::PUT || name.is_none() {
                return Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ));
            }
            Part::Finalize
        }
        Some("scale") if info.subresources.scale => {
            return serve_scale(state, res, ns, name.unwrap_or(""), &q, req).await;
        }
        Some("binding") if info.group.is_empty() && info.kind == "Pod" && name.is_some() => {
            return serve_binding(state, ns.unwrap_or(""), name, &q, req).await;
        }
        Some("log") if info.group.is_empty() && info.kind == "Pod" && name.is_some() => {
            return super::node_proxy::pod_log(state, ns.unwrap_or(""), name.unwrap_or(""), req)
                .await;
        }
        Some(s @ ("exec" | "attach" | "portforward"))
            if info.group.is_empty() && info.kind == "Pod" && name.is_some() =>
        {
            return super::node_proxy::pod_stream(
                state,
                s,
                ns.unwrap_or(""),
                name.unwrap_or(""),
                req,
            )
            .await;
        }
        Some("token")
            if info.group.is_empty() && info.kind == "ServiceAccount" && name.is_some() =>
        {
            return serve_token_request(state, ns.unwrap_or(""), name.unwrap_or(""), &q, req).await;
        }
        Some("eviction") if info.group.is_empty() && info.kind == "Pod" => {
            return serve_eviction(state, res, ns.unwrap_or(""), name.unwrap_or(""), &q, req).await;
        }
        Some(_) => return Err(ApiError::path_not_found()),
    };
    // Verbs a resource does not support are refused as upstream does (e.g. GET bindings).
    if part == Part::Main {
        let verb = match (&method, name) {
            (&Method::GET, Some(_)) => "get",
            (&Method::GET, None) if flag(&q, "watch") => "watch",
            (&Method::GET, None) => "list",
            (&Method::POST, None) => "create",
            (&Method::PUT, Some(_)) => "update",
            (&Method::PATCH, Some(_)) => "patch",
            (&Method::DELETE, Some(_)) => "delete",
            (&Method::DELETE, None) => "deletecollection",
            _ => "",
        };
        if !info.verbs.contains(&verb) {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    }
    if info.group.is_empty() && info.kind == "Binding" {
        return serve_binding(state, ns.unwrap_or(""), None, &q, req).await;
    }

    match (method, name) {
        (Method::GET, Some(name)) => {
            let obj = registry
                .get_cached(res, ns, name, q.get("resourceVersion").map(String::as_str))
                .await?;
            Ok(responses::cached_object(res, &obj, repr, include))
        }
        (Method::GET, None) if flag(&q, "watch") => {
            if info.namespaced && ns.is_none() && ri.namespace.is_some() {
                return Err(ApiError::path_not_found());
            }
            let opts = WatchOptions {
                list: list_options(&q)?,
                allow_bookmarks: flag(&q, "allowWatchBookmarks"),
                send_initial_events: q.get("sendInitialEvents").map(|v| v == "true"),
                timeout: q
                    .get("timeoutSeconds")
                    .and_then(|s| s.parse().ok())
                    .map(Duration::from_secs),
            };
            let rx = registry.watch(res, ns, opts).await?;
            let guard = state
                .metrics
                .watcher_registered(info.group, info.version, info.kind);
            Ok(watch_response(res.clone(), rx, repr, include, guard))
        }
        (Method::GET, None) => {
            let list = registry.list(res, ns, &list_options(&q)?).await?;
            Ok(responses::list(res, &list, repr, include))
        }
        (Method::POST, None) => {
            let opts = write_options(&q, &req, None)?;
            let bytes = body::read(req.into_body()).await?;
            let obj = body::decode(&content_type, &bytes)?;
            let r = registry.create(res, ns, obj, &opts).await?;
            Ok(responses::json_with_warnings(
                StatusCode::CREATED,
                &r.object,
                &r.warnings,
            ))
        }
        (Method::PUT, Some(name)) => {
            let opts = write_options(&q, &req, None)?;
            let bytes = body::read(req.into_body()).await?;
            let obj = body::decode(&content_type, &bytes)?;
            let r = registry.update(res, ns, name, obj, part, &opts).await?;
            Ok(responses::json_with_warnings(
                StatusCode::OK,
                &r.object,
                &r.warnings,
            ))
        }
        (Method::PATCH, Some(name)) => {
            let patch_type = PatchType::from_content_type(&content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
            let opts = write_options(&q, &req, Some(patch_type))?;
            let bytes = body::read(req.into_body()).await?;
            let r = registry
                .patch(res, ns, name, (patch_type, &bytes), part, &opts)
                .await?;
            let code = if r.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(responses::json_with_warnings(code, &r.object, &r.warnings))
        }
        (Method::DELETE, Some(name)) => {
            let opts = write_options(&q, &req, None)?;
            let options = delete_options(&q, &content_type, req).await?;
            let dry = opts.dry_run || options.dry_run.iter().any(|d| d == "All");
            let opts = WriteOptions {
                dry_run: dry,
                ..opts
            };
            let r = registry.delete(res, ns, name, &options, &opts).await?;
            if super::super::registry::meta::is_deleting(&r.object) && !dry {
                Ok(responses::json(StatusCode::OK, &r.object))
            } else {
                // Deleted now: upstream answers with a Success status naming the object.
                let mut details = json!({"name": name, "kind": info.plural});
                if !info.group.is_empty() {
                    details["group"] = json!(info.group);
                }
                if let Some(uid) = r.object.pointer("/metadata/uid") {
                    details["uid"] = uid.clone();
                }
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
                Ok(responses::json(StatusCode::OK, &status))
            }
        }
        (Method::DELETE, None) => {
            let opts = write_options(&q, &req, None)?;
            let list = list_options(&q)?;
            let options = delete_options(&q, &content_type, req).await?;
            let dry = opts.dry_run || options.dry_run.iter().any(|d| d == "All");
            let opts = WriteOptions {
                dry_run: dry,
                ..opts
            };
            let r = registry
                .delete_collection(res, ns, &list, &options, &opts)
                .await?;
            Ok(responses::json(StatusCode::OK, &r))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

async fn delete_options(q: &Query, content_type: &str, req: Request) -> ApiResult<DeleteOptions> {
    let bytes = body::read(req.into_body()).await?;
    let mut options: DeleteOptions = if bytes.is_empty() {
        DeleteOptions::default()
    } else {
        let v = body::decode(content_type, &bytes)?;
        serde_json::from_value(v)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(g) = q.get("gracePeriodSeconds").and_then(|s| s.parse().ok()) {
        options.grace_period_seconds = Some(g);
    }
    if let Some(p) = q.get("propagationPolicy").filter(|s| !s.is_empty()) {
        options.propagation_policy = Some(p.clone());
    }
    if let Some(o) = q.get("orphanDependents") {
        options.orphan_dependents = Some(o == "true");
    }
    if q.get("dryRun").map(String::as_str) == Some("All") {
        options.dry_run = vec!["All".into()];
    }
    Ok(options)
}

async fn serve_scale(
    state: &Arc<AppState>,
    res: &Arc<Resource>,
    ns: Option<&str>,
    name: &str,
    q: &Query,
    req: Request,
) -> ApiResult<Response> {
    let registry = &state.registry;
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    match req.method().clone() {
        Method::GET => Ok(responses::json(
            StatusCode::OK,
            &registry.get_scale(res, ns, name).await?,
        )),
        Method::PUT => {
            let opts = write_options(q, &req, None)?;
            let bytes = body::read(req.into_body()).await?;
            let scale = body::decode(&content_type, &bytes)?;
            Ok(responses::json(
                StatusCode::OK,
                &registry
                    .write_scale(res, ns, name, ScaleChange::Replace(&scale), &opts)
                    .await?,
            ))
        }
        Method::PATCH => {
            let patch_type = PatchType::from_content_type(&content_type)
                .filter(|t| *t != PatchType::Apply)
                .ok_or_else(|| ApiError::unsupported_media_type(&content_type))?;
            let opts = write_options(q, &req, Some(patch_type))?;
            let bytes = body::read(req.into_body()).await?;
            Ok(responses::json(
                StatusCode::OK,
                &registry
                    .write_scale(res, ns, name, ScaleChange::Patch(&bytes, patch_type), &opts)
                    .await?,
            ))
        }
        _ => Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        )),
    }
}

/// `POST pods/<name>/binding` or `POST bindings` (the pod named by the Binding): assign a
/// pod to a node. Answers `201` with a `Success` status, as upstream.
async fn serve_binding(
    state: &Arc<AppState>,
    ns: &str,
    pod: Option<&str>,
    q: &Query,
    req: Request,
) -> ApiResult<Response> {
    let (opts, binding) = action_body(q, req).await?;
    let named = binding
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let pod = match pod {
        Some(pod) if !named.is_empty() && named != pod => {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Binding object",
            ))
        }
        Some(pod) => pod.to_string(),
        None => named.to_string(),
    };
    let pods = state
        .registry
        .resource("", "v1", "pods")
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    state
        .registry
        .bind(&pods, ns, &pod, &binding, opts.dry_run)
        .await?;
    Ok(action_done())
}

/// The options and decoded body of a POST to an action subresource (binding, eviction,
/// token).
async fn action_body(q: &Query, req: Request) -> ApiResult<(WriteOptions, Value)> {
    if req.method() != Method::POST {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let opts = write_options(q, &req, None)?;
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let bytes = body::read(req.into_body()).await?;
    Ok((opts, body::decode(&content_type, &bytes)?))
}

/// Upstream's answer to a completed action: `201` with a `Success` status.
fn action_done() -> Response {
    responses::json(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// `POST pods/<name>/eviction` with a `policy/v1 Eviction`: a delete that respects the
/// pod's disruption budget. Answers `201` with a `Success` status, as upstream.
async fn serve_eviction(
    state: &Arc<AppState>,
    pods: &Arc<Resource>,
    ns: &str,
    pod: &str,
    q: &Query,
    req: Request,
) -> ApiResult<Response> {
    let (opts, eviction) = action_body(q, req).await?;
    let named = eviction
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if named != pod {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let options: DeleteOptions = match eviction.get("deleteOptions") {
        Some(o) if !o.is_null() => serde_json::from_value(o.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?,
        _ => DeleteOptions::default(),
    };
    let dry_run = opts.dry_run || options.dry_run.iter().any(|d| d == "All");
    let opts = WriteOptions { dry_run, ..opts };
    state.registry.evict(pods, ns, pod, &options, &opts).await?;
    Ok(action_done())
}

/// `POST serviceaccounts/<name>/token` with an `authentication.k8s.io/v1 TokenRequest`:
/// answers `201` with the request, defaulted, and `status.token` (`kubectl create token`).
async fn serve_token_request(
    state: &Arc<AppState>,
    ns: &str,
    name: &str,
    q: &Query,
    req: Request,
) -> ApiResult<Response> {
    let (_opts, request) = action_body(q, req).await?;
    let answer = state.registry.request_token(ns, name, request).await?;
    Ok(responses::json(StatusCode::CREATED, &answer))
}

/// A streaming watch response: one JSON event per line.
fn watch_response(
    res: Arc<Resource>,
    rx: tokio::sync::mpsc::Receiver<crate::registry::WatchEvent>,
    repr: Representation,
    include: IncludeObject,
    guard: crate::metrics::WatcherGuard,
) -> Response {
    let mut first = true;
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(move |ev| {
        // The guard lives as long as the stream: the watcher count drops when it ends.
        let _ = &guard;
        let object = match (repr, ev.type_) {
            (_, "BOOKMARK") | (_, "ERROR") | (Representation::Object, _) => {
                // `{"type":"…","object":<shared serialisation>}`: no per-watcher encoding.
                let object = ev.encoded_object();
                let mut line = Vec::with_capacity(object.len() + 32);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(ev.type_.as_bytes());
                line.extend_from_slice(b"\",\"object\":");
                line.extend_from_slice(&object);
                line.extend_from_slice(b"}\n");
                return Ok(bytes::Bytes::from(line));
            }
            (Representation::Metadata, _) => {
                let object = ev.object.partial_metadata_json();
                let mut line = Vec::with_capacity(object.len() + 32);
                line.extend_from_slice(b"{\"type\":\"");
                line.extend_from_slice(ev.type_.as_bytes());
                line.extend_from_slice(b"\",\"object\":");
                line.extend_from_slice(&object);
                line.extend_from_slice(b"}\n");
                return Ok(bytes::Bytes::from(line));
            }
            (Representation::Table, _) => {
                let object = ev.object.value();
                let meta = json!({"resourceVersion": object.pointer("/metadata/resourceVersion").cloned().unwrap_or_default()});
                let t = table::to_table(res.strategy.as_ref(), [&object], meta, include, first);
                first = false;
                t
            }
        };
        let mut line = serde_json::to_vec(&json!({"type": ev.type_, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(line))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| ApiError::internal("watch response").into_response())
}

/// `SelfSubjectReview` (`kubectl auth whoami`) and access reviews (`kubectl auth can-i`):
/// computed per request, never stored.
async fn serve_review(
    state: &Arc<AppState>,
    info: &RequestInfo,
    req: Request,
) -> ApiResult<Response> {
    if req.method() != Method::POST || info.name.is_some() {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    let content_type = header_str(&req, header::CONTENT_TYPE).to_string();
    let bytes = body::read(req.into_body()).await?;
    let mut obj: Value = body::decode(&content_type, &bytes)?;
    match (info.group.as_str(), info.resource.as_str()) {
        ("authentication.k8s.io", "selfsubjectreviews") => {
            obj["status"] = json!({"userInfo": user});
        }
        ("authentication.k8s.io", "tokenreviews") => {
            // Cluster-scoped: upstream registers no namespaced route for it.
            if info.namespace.is_some() {
                return Err(ApiError::path_not_found());
            }
            let token = obj
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if token.is_empty() {
                return Err(ApiError::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            let mut audiences: Vec<String> = obj
                .pointer("/spec/audiences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if audiences.is_empty() {
                audiences = state.tokens.audiences().to_vec();
            }
            obj["status"] = match state.tokens.review(&token, &audiences).await {
                Ok((mut user, matched)) => {
                    // The review runs upstream's whole authenticator, which adds this group.
                    user.groups
                        .push(crate::authn::GROUP_AUTHENTICATED.to_string());
                    json!({"authenticated": true, "user": user, "audiences": matched})
                }
                Err(e) => json!({"user": {}, "error": e.0}),
            };
        }
        (
            "authorization.k8s.io",
            "selfsubjectaccessreviews" | "subjectaccessreviews" | "localsubjectaccessreviews",
        ) => {
            // No authorizer yet: every authenticated user may do everything.
            obj["status"] = json!({"allowed": !user.is_anonymous(), "reason": "k8rs: no authorizer configured; authenticated users are allowed"});
        }
        ("authorization.k8s.io", "selfsubjectrulesreviews") => {
            obj["status"] = json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            });
        }
        _ => return Err(ApiError::path_not_found()),
    }
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("creationTimestamp".into(), Value::Null);
    } else {
        obj["metadata"] = json!({"creationTimestamp": null});
    }
    Ok(responses::json(StatusCode::CREATED, &obj))
}
