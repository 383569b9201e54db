//! Discovery: `/api`, `/apis` (legacy and aggregated `apidiscovery.k8s.io/v2`), group and
//! group-version resource lists, and the OpenAPI v3 documents. Built once at start-up.

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use k8rs_api::{ResourceInfo, Strategy, Subresources};
use serde_json::{json, Value};

use crate::http::request_info::RequestInfo;
use crate::http::AppState;
use crate::registry::Resource;

/// Review resources computed per request (not stored): `(group, version, plural, kind)`.
const REVIEWS: &[(&str, &str, &str, &str, bool)] = &[
    (
        "authentication.k8s.io",
        "v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "TokenReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "localsubjectaccessreviews",
        "LocalSubjectAccessReview",
        true,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        false,
    ),
    (
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
    ),
];

/// Whether a request addresses a review resource.
pub fn is_review(info: &RequestInfo) -> bool {
    REVIEWS
        .iter()
        .any(|(g, v, p, _, _)| *g == info.group && *v == info.version && *p == info.resource)
}

/// One resource as discovery describes it.
struct Entry {
    info: ResourceInfo,
}

/// A group's versions (preferred first), each with its resources.
type Versions = Vec<(String, Vec<Entry>)>;

/// Discovery documents.
pub struct Discovery {
    /// group → versions (preferred first) → resources.
    groups: Vec<(String, Versions)>,
    strategies: Vec<Arc<dyn Strategy>>,
    server_address: String,
    openapi_cache: OnceLock<crate::openapi::Documents>,
}

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Kubernetes version priority: GA > beta > alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, i64, i64) {
    let rest = v.trim_start_matches('v');
    let (major, tail) = rest.split_at(
        rest.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len()),
    );
    let major: i64 = major.parse().unwrap_or(0);
    let (level, minor) = if let Some(b) = tail.strip_prefix("beta") {
        (1, b.parse().unwrap_or(0))
    } else if let Some(a) = tail.strip_prefix("alpha") {
        (0, a.parse().unwrap_or(0))
    } else {
        (2, 0)
    };
    (level, major, minor)
}

impl Discovery {
    /// Build from the served resources; `server_address` is `host:port` for
    /// `serverAddressByClientCIDRs`.
    pub fn new(resources: &[Arc<Resource>], server_address: String) -> Discovery {
        let mut groups: Vec<(String, Versions)> = Vec::new();
        let mut add = |info: ResourceInfo| {
            let gi = match groups.iter().position(|(g, _)| g == info.group) {
                Some(i) => i,
                None => {
                    groups.push((info.group.to_string(), Vec::new()));
                    groups.len() - 1
                }
            };
            let versions = &mut groups[gi].1;
            let vi = match versions.iter().position(|(v, _)| v == info.version) {
                Some(i) => i,
                None => {
                    versions.push((info.version.to_string(), Vec::new()));
                    versions.len() - 1
                }
            };
            versions[vi].1.push(Entry { info });
        };
        for r in resources {
            add(r.info().clone());
        }
        for (group, version, plural, kind, namespaced) in REVIEWS {
            add(ResourceInfo {
                group,
                version,
                kind,
                plural,
                singular: "",
                namespaced: *namespaced,
                short_names: &[],
                categories: &[],
                verbs: &["create"],
                subresources: Subresources::default(),
            });
        }
        // metrics.k8s.io, served from the kubelets' summaries (as k3s's metrics-server).
        for (plural, kind, namespaced) in crate::http::metrics_api::RESOURCES {
            add(ResourceInfo {
                group: crate::http::metrics_api::GROUP,
                version: crate::http::metrics_api::VERSION,
                kind,
                plural,
                singular: "",
                namespaced: *namespaced,
                short_names: &[],
                categories: &[],
                verbs: &["get", "list"],
                subresources: Subresources::default(),
            });
        }
        for (_, versions) in &mut groups {
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(&v.0)));
            for (_, entries) in versions.iter_mut() {
                entries.sort_by(|a, b| a.info.plural.cmp(b.info.plural));
            }
        }
        Discovery {
            groups,
            strategies: resources.iter().map(|r| r.strategy.clone()).collect(),
            server_address,
            openapi_cache: OnceLock::new(),
        }
    }

    /// `host:port` clients reach this server at.
    pub fn server_address(&self) -> &str {
        &self.server_address
    }

    /// `/api` or `/apis`, aggregated when the client asks for it.
    pub fn root(&self, legacy: bool, accept: &str) -> Response {
        let aggregated =
            if accept.contains("v=v2;") || accept.contains("v=v2,") || accept.ends_with("v=v2") {
                accept
                    .contains("as=APIGroupDiscoveryList")
                    .then_some(("apidiscovery.k8s.io/v2", AGGREGATED_V2))
            } else if accept.contains("v=v2beta1") && accept.contains("as=APIGroupDiscoveryList") {
                Some(("apidiscovery.k8s.io/v2beta1", AGGREGATED_V2BETA1))
            } else {
                None
            };
        if let Some((api_version, content_type)) = aggregated {
            let items: Vec<Value> = self
                .groups
                .iter()
                .filter(|(g, _)| g.is_empty() == legacy)
                .map(|(g, versions)| {
                    let metadata = if g.is_empty() {
                        json!({"creationTimestamp": null})
                    } else {
                        json!({"name": g, "creationTimestamp": null})
                    };
                    json!({
                        "metadata": metadata,
                        "versions": versions.iter().map(|(v, entries)| json!({
                            "version": v,
                            "resources": entries.iter().map(|e| aggregated_resource(&e.info)).collect::<Vec<_>>(),
                            "freshness": "Current",
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items});
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            return (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type),
                    (header::VARY, "Accept"),
                ],
                bytes,
            )
                .into_response();
        }
        let body = if legacy {
            json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}],
            })
        } else {
            json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": self.groups.iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| self.api_group(g, v)).collect::<Vec<_>>(),
            })
        };
        json_response(&body)
    }

    fn api_group(&self, group: &str, versions: &[(String, Vec<Entry>)]) -> Value {
        let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
        json!({
            "name": group,
            "versions": versions.iter().map(|(v, _)| gv(v)).collect::<Vec<_>>(),
            "preferredVersion": gv(&versions[0].0),
        })
    }

    /// `/apis/<group>`.
    pub fn group(&self, group: &str) -> Option<Response> {
        let (_, versions) = self
            .groups
            .iter()
            .find(|(g, _)| g == group && !g.is_empty())?;
        let mut body = self.api_group(group, versions);
        body["kind"] = json!("APIGroup");
        body["apiVersion"] = json!("v1");
        Some(json_response(&body))
    }

    /// `/api/v1`, `/apis/<group>/<version>`: the legacy `APIResourceList`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Response> {
        let (_, versions) = self.groups.iter().find(|(g, _)| g == group)?;
        let (_, entries) = versions.iter().find(|(v, _)| v == version)?;
        let mut resources = Vec::new();
        for e in entries {
            let i = &e.info;
            let mut r = json!({
                "name": i.plural,
                "singularName": i.singular,
                "namespaced": i.namespaced,
                "kind": i.kind,
                "verbs": i.verbs,
            });
            if !i.short_names.is_empty() {
                r["shortNames"] = json!(i.short_names);
            }
            if !i.categories.is_empty() {
                r["categories"] = json!(i.categories);
            }
            resources.push(r);
            for sub in subresources(i) {
                let mut s = json!({
                    "name": format!("{}/{}", i.plural, sub.name),
                    "singularName": "",
                    "namespaced": i.namespaced,
                    "kind": sub.kind,
                    "verbs": sub.verbs,
                });
                if sub.group != i.group || sub.version != i.version {
                    s["group"] = json!(sub.group);
                    s["version"] = json!(sub.version);
                }
                resources.push(s);
            }
        }
        let gv = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        Some(json_response(
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        ))
    }

    /// The OpenAPI v3 documents, built on first use (a few hundred milliseconds of work
    /// that would otherwise delay readiness).
    async fn openapi(&self) -> &crate::openapi::Documents {
        if let Some(d) = self.openapi_cache.get() {
            return d;
        }
        let strategies = self.strategies.clone();
        let docs = tokio::task::spawn_blocking(move || crate::openapi::Documents::new(&strategies))
            .await
            .expect("building OpenAPI documents");
        let _ = self.openapi_cache.set(docs);
        self.openapi_cache.get().expect("just set")
    }
}

/// The generic subresources of a resource: (name, response kind's group, version, kind).
/// A served subresource as discovery lists it.
struct Subresource {
    name: &'static str,
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
}

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];

/// Subresources served by dedicated handlers (the catalogue's `extra` names more; those are
/// listed once a handler serves them).
const SERVED_EXTRA: &[(&str, Subresource)] = &[
    (
        "namespaces",
        Subresource {
            name: "finalize",
            group: "",
            version: "v1",
            kind: "Namespace",
            verbs: &["update"],
        },
    ),
    (
        "pods",
        Subresource {
            name: "binding",
            group: "",
            version: "v1",
            kind: "Binding",
            verbs: &["create"],
        },
    ),
    (
        "serviceaccounts",
        Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: &["create"],
        },
    ),
    (
        "pods",
        Subresource {
            name: "attach",
            group: "",
            version: "v1",
            kind: "PodAttachOptions",
            verbs: &["create", "get"],
        },
    ),
    (
        "pods",
        Subresource {
            name: "exec",
            group: "",
            version: "v1",
            kind: "PodExecOptions",
            verbs: &["create", "get"],
        },
    ),
    (
        "pods",
        Subresource {
            name: "log",
            group: "",
            version: "v1",
            kind: "Pod",
            verbs: &["get"],
        },
    ),
    (
        "pods",
        Subresource {
            name: "portforward",
            group: "",
            version: "v1",
            kind: "PodPortForwardOptions",
            verbs: &["create", "get"],
        },
    ),
    (
        "nodes",
        Subresource {
            name: "proxy",
            group: "",
            version: "v1",
            kind: "NodeProxyOptions",
            verbs: &["create", "delete", "get", "patch", "update"],
        },
    ),
    (
        "pods",
        Subresource {
            name: "eviction",
            group: "policy",
            version: "v1",
            kind: "Eviction",
            verbs: &["create"],
        },
    ),
];

/// The subresources a resource serves.
fn subresources(i: &ResourceInfo) -> Vec<Subresource> {
    let mut out = Vec::new();
    if i.subresources.scale {
        out.push(Subresource {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: GET_PATCH_UPDATE,
        });
    }
    if i.subresources.status {
        out.push(Subresource {
            name: "status",
            group: i.group,
            version: i.version,
            kind: i.kind,
            verbs: GET_PATCH_UPDATE,
        });
    }
    for (plural, sub) in SERVED_EXTRA {
        if i.group.is_empty() && *plural == i.plural && i.subresources.extra.contains(&sub.name) {
            out.push(Subresource { ..*sub });
        }
    }
    out.sort_by_key(|s| s.name);
    out
}

fn aggregated_resource(i: &ResourceInfo) -> Value {
    let mut r = json!({
        "resource": i.plural,
        "responseKind": {"group": i.group, "version": i.version, "kind": i.kind},
        "scope": if i.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": i.singular,
        "verbs": i.verbs,
    });
    if !i.short_names.is_empty() {
        r["shortNames"] = json!(i.short_names);
    }
    if !i.categories.is_empty() {
        r["categories"] = json!(i.categories);
    }
    let subs: Vec<Value> = subresources(i)
        .into_iter()
        .map(|s| {
            json!({
                "subresource": s.name,
                "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    if !subs.is_empty() {
        r["subresources"] = json!(subs);
    }
    r
}

fn json_response(body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response()
}

/// `GET /openapi/v3`: the index of group-version documents.
pub async fn openapi_index(State(state): State<Arc<AppState>>) -> Response {
    let docs = state.discovery.openapi().await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes::Bytes::copy_from_slice(docs.index()),
    )
        .into_response()
}

/// `GET /openapi/v3/<path>`: one group-version document (immutable per hash).
pub async fn openapi_document(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Response {
    match state.discovery.openapi().await.get(&path) {
        Some(doc) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::ETAG, format!("\"{}\"", doc.hash)),
                (header::CACHE_CONTROL, "public, immutable".to_string()),
            ],
            bytes::Bytes::copy_from_slice(&doc.json),
        )
            .into_response(),
        None => crate::status::ApiError::path_not_found().into_response(),
    }
}

/// `GET /openapi/v2`. The v3 documents are the source of truth; v2 is served as a document
/// without definitions so that kubectl's validation fallback (which asks v2 about kinds v3
/// does not know, e.g. a misspelt kind) reaches its usual "no matches for kind" error
/// instead of failing to download. kubectl ≤ 1.28, which validates from v2, therefore skips
/// client-side schema validation; the server still validates.
pub async fn openapi_v2(headers: http::HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("protobuf") {
        // gnostic `openapi_v2.Document { swagger (1): "2.0", info (2) { title (1), version (2) },
        // paths (8) {} }`, encoded by hand: the document is constant.
        let info = [&[0x0a, 10][..], b"Kubernetes", &[0x12, 7][..], b"v1.33.0"].concat();
        let doc = [
            &[0x0a, 3][..],
            b"2.0",
            &[0x12, info.len() as u8][..],
            &info,
            &[0x42, 0][..],
        ]
        .concat();
        return (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            )],
            doc,
        )
            .into_response();
    }
    json_response(
        &json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {}}),
    )
}
