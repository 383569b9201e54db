//! OpenAPI v3 documents (`GET /openapi/v3` and `/openapi/v3/<path>`), built from the served
//! resources and the upstream definitions in `k8rs_api::schema`, in the shape upstream's
//! kube-openapi produces: one document per group version (`api/v1`, `apis/apps/v1`), one per
//! group (`apis/apps`), plus `api`, `apis` and `version`.
//!
//! kubectl reads these for `explain` (the `components.schemas` of a group version, found by
//! `x-kubernetes-group-version-kind`), and before `create`/`apply`/`replace`/`edit` it checks
//! that the PATCH operation of the kind declares the `fieldValidation` query parameter.
//!
//! Pure functions, no I/O: [`Documents::new`] builds and serializes everything once; the HTTP
//! layer keeps it and serves the bytes, using the hash for `?hash=` URLs and caching.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8rs_api::schema::{self, REF_PREFIX};
use k8rs_api::{ResourceInfo, Strategy};
use serde_json::{json, Map, Value};

/// `info.version` of every document.
const DOCUMENT_VERSION: &str = concat!("v1.33.0+k8rs-", env!("CARGO_PKG_VERSION"));

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

/// One serialized document and its content hash.
#[derive(Clone)]
pub struct Document {
    /// The document as JSON bytes.
    pub json: Arc<[u8]>,
    /// Stable content hash (uppercase hex), used in `?hash=` URLs and as ETag.
    pub hash: String,
}

impl std::fmt::Debug for Document {
    // The bytes run to hundreds of kilobytes: show their size, not their content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("bytes", &self.json.len())
            .field("hash", &self.hash)
            .finish()
    }
}

/// Every OpenAPI v3 document for a set of resources, built once.
#[derive(Clone)]
pub struct Documents {
    index: Arc<[u8]>,
    documents: BTreeMap<String, Document>,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.documents.iter()).finish()
    }
}

impl Documents {
    /// Build and serialize the index and every document for `resources`.
    pub fn new(resources: &[Arc<dyn Strategy>]) -> Documents {
        let documents: BTreeMap<String, Document> = build_all(resources)
            .into_iter()
            .map(|(path, doc)| {
                let json: Arc<[u8]> = serde_json::to_vec(&doc)
                    .expect("OpenAPI documents serialize")
                    .into();
                let hash = content_hash(&json);
                (path, Document { json, hash })
            })
            .collect();
        let index = serde_json::to_vec(&index_of(&documents))
            .expect("OpenAPI index serializes")
            .into();
        Documents { index, documents }
    }

    /// The `GET /openapi/v3` body.
    pub fn index(&self) -> &Arc<[u8]> {
        &self.index
    }

    /// The document for `path` (`api/v1`, `apis/apps/v1`, `apis/apps`, `api`, `apis`,
    /// `version`; a leading `/` or `/openapi/v3/` is accepted).
    pub fn get(&self, path: &str) -> Option<&Document> {
        self.documents.get(normalize_path(path))
    }

    /// The paths of every document, e.g. `api/v1`.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.documents.keys().map(String::as_str)
    }
}

/// The `GET /openapi/v3` index: `{"paths": {"apis/apps/v1": {"serverRelativeURL":
/// "/openapi/v3/apis/apps/v1?hash=…"}, …}}`.
pub fn index(resources: &[Arc<dyn Strategy>]) -> Value {
    let documents = Documents::new(resources);
    serde_json::from_slice(documents.index()).expect("index is JSON")
}

/// The document for `path` (see [`Documents::get`]), or `None` if nothing is served there.
pub fn document(path: &str, resources: &[Arc<dyn Strategy>]) -> Option<Value> {
    build_all(resources).remove(normalize_path(path))
}

/// The content hash of the document for `path`, as used in the index.
pub fn etag(path: &str, resources: &[Arc<dyn Strategy>]) -> Option<String> {
    Documents::new(resources).get(path).map(|d| d.hash.clone())
}

fn normalize_path(path: &str) -> &str {
    let path = path.strip_prefix("/openapi/v3").unwrap_or(path);
    path.trim_matches('/')
}

fn index_of(documents: &BTreeMap<String, Document>) -> Value {
    let paths: Map<String, Value> = documents
        .iter()
        .map(|(path, doc)| {
            let url = format!("/openapi/v3/{path}?hash={}", doc.hash);
            (path.clone(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    json!({ "paths": paths })
}

/// 64-bit FNV-1a, twice with different offsets for 128 bits: stable across builds and
/// platforms, which is all a cache key needs.
fn content_hash(bytes: &[u8]) -> String {
    fn fnv1a(bytes: &[u8], offset: u64) -> u64 {
        bytes.iter().fold(offset, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
    format!(
        "{:016X}{:016X}",
        fnv1a(bytes, 0xcbf2_9ce4_8422_2325),
        fnv1a(bytes, 0x6c62_272e_07bb_0142)
    )
}

/// Every document, by path.
fn build_all(resources: &[Arc<dyn Strategy>]) -> BTreeMap<String, Value> {
    let mut by_group_version: BTreeMap<(&str, &str), Vec<&ResourceInfo>> = BTreeMap::new();
    for r in resources {
        let info = r.info();
        by_group_version
            .entry((info.group, info.version))
            .or_default()
            .push(info);
    }
    let mut docs = BTreeMap::new();
    let mut groups = BTreeSet::new();
    for ((group, version), infos) in &by_group_version {
        let prefix = api_prefix(group, version);
        let mut paths = Map::new();
        paths.insert(
            format!("{prefix}/"),
            json!({"get": {
                "description": "get available resources",
                "operationId": format!("get{}APIResources", operation_prefix(group, version)),
                "responses": ok_responses(&format!("{META}APIResourceList"), JSON_YAML_PROTOBUF),
                "tags": [tag(group, version)],
            }}),
        );
        for info in infos {
            resource_paths(info, &mut paths);
        }
        docs.insert(prefix.trim_start_matches('/').to_string(), finish(paths));
        if !group.is_empty() {
            groups.insert(*group);
        }
    }
    for group in groups {
        let prefix = format!("/apis/{group}");
        let paths = json!({ format!("{prefix}/"): {"get": {
            "description": "get information of a group",
            "operationId": format!("get{}APIGroup", camel_group(group)),
            "responses": ok_responses(&format!("{META}APIGroup"), JSON_YAML_PROTOBUF),
            "tags": [lower_camel_group(group)],
        }}});
        docs.insert(format!("apis/{group}"), finish(as_map(paths)));
    }
    let api = json!({"/api/": {"get": {
        "description": "get available API versions",
        "operationId": "getCoreAPIVersions",
        "responses": ok_responses(&format!("{META}APIVersions"), JSON_YAML_PROTOBUF),
        "tags": ["core"],
    }}});
    docs.insert("api".into(), finish(as_map(api)));
    let apis = json!({"/apis/": {"get": {
        "description": "get available API versions",
        "operationId": "getAPIVersions",
        "responses": ok_responses(&format!("{META}APIGroupList"), JSON_YAML_PROTOBUF),
        "tags": ["apis"],
    }}});
    docs.insert("apis".into(), finish(as_map(apis)));
    let version = json!({"/version/": {"get": {
        "description": "get the version information for this server",
        "operationId": "getCodeVersion",
        "responses": ok_responses("io.k8s.apimachinery.pkg.version.Info", &["application/json"]),
        "tags": ["version"],
    }}});
    docs.insert("version".into(), finish(as_map(version)));
    docs
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Wrap `paths` into a document whose `components.schemas` is the closure of what they use.
fn finish(paths: Map<String, Value>) -> Value {
    let definitions = schema::definitions();
    let mut todo: Vec<String> = Vec::new();
    collect_refs(&Value::Object(paths.clone()), &mut todo);
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    while let Some(name) = todo.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        if let Some(def) = definitions.get(&name) {
            collect_refs(def, &mut todo);
            schemas.insert(name, def.clone());
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": DOCUMENT_VERSION},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"BearerToken": {
                "description": "Bearer Token authentication",
                "in": "header",
                "name": "authorization",
                "type": "apiKey",
            }},
        },
    })
}

/// Definition names referenced below `v`. Object keys under `properties` are field names
/// (JSONSchemaProps has a field called `$ref`), not keywords.
fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "$ref" {
                    if let Some(name) = child.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                        out.push(name.to_string());
                    }
                } else if k == "properties" {
                    if let Value::Object(props) = child {
                        props.values().for_each(|p| collect_refs(p, out));
                    }
                } else {
                    collect_refs(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

fn api_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// `rbac.authorization.k8s.io` → `RbacAuthorization`; the core group is `Core`.
fn camel_group(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn lower_camel_group(group: &str) -> String {
    let camel = camel_group(group);
    let mut chars = camel.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => camel,
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
fn operation_prefix(group: &str, version: &str) -> String {
    format!("{}{}", camel_group(group), capitalize(version))
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", lower_camel_group(group))
}

const JSON_YAML_PROTOBUF: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
const WATCHABLE: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json;stream=watch",
    "application/vnd.kubernetes.protobuf;stream=watch",
];
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

fn content(definition: &str, media_types: &[&str]) -> Value {
    let schema = json!({ "$ref": format!("{REF_PREFIX}{definition}") });
    let m: Map<String, Value> = media_types
        .iter()
        .map(|t| (t.to_string(), json!({ "schema": schema })))
        .collect();
    Value::Object(m)
}

fn ok_responses(definition: &str, media_types: &[&str]) -> Value {
    json!({"200": {"description": "OK", "content": content(definition, media_types)}})
}

fn responses(definition: &str, codes: &[&str]) -> Value {
    let m: Map<String, Value> = codes
        .iter()
        .map(|code| {
            let description = match *code {
                "201" => "Created",
                "202" => "Accepted",
                _ => "OK",
            };
            (
                code.to_string(),
                json!({"description": description, "content": content(definition, JSON_YAML_PROTOBUF)}),
            )
        })
        .collect();
    Value::Object(m)
}

fn request_body(definition: &str, media_types: &[&str]) -> Value {
    json!({"content": content(definition, media_types), "required": true})
}

fn query(name: &str, type_: &str, description: &str) -> Value {
    json!({
        "description": description,
        "in": "query",
        "name": name,
        "schema": {"type": type_, "uniqueItems": true},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "description": description,
        "in": "path",
        "name": name,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const FIELD_MANAGER_PATCH: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const FORCE: &str = "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.";
const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";
const LABEL_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their labels. Defaults to everything.";
const FIELD_SELECTOR: &str =
    "A selector to restrict the list of returned objects by their fields. Defaults to everything.";
const WATCH: &str = "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.";
const ALLOW_WATCH_BOOKMARKS: &str = "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.";
const RESOURCE_VERSION: &str = "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const RESOURCE_VERSION_MATCH: &str = "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset";
const SEND_INITIAL_EVENTS: &str = "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.";
const TIMEOUT_SECONDS: &str = "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.";
const LIMIT: &str = "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.";
const CONTINUE: &str = "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.";

/// List/watch query parameters, in upstream's (alphabetical) order.
fn list_params() -> Vec<Value> {
    vec![
        query("allowWatchBookmarks", "boolean", ALLOW_WATCH_BOOKMARKS),
        query("continue", "string", CONTINUE),
        query("fieldSelector", "string", FIELD_SELECTOR),
        query("labelSelector", "string", LABEL_SELECTOR),
        query("limit", "integer", LIMIT),
        query("resourceVersion", "string", RESOURCE_VERSION),
        query("resourceVersionMatch", "string", RESOURCE_VERSION_MATCH),
        query("sendInitialEvents", "boolean", SEND_INITIAL_EVENTS),
        query("timeoutSeconds", "integer", TIMEOUT_SECONDS),
        query("watch", "boolean", WATCH),
    ]
}

/// Delete options as query parameters; descriptions are DeleteOptions' field descriptions.
fn delete_params() -> Vec<Value> {
    let props = &schema::definitions()[&format!("{META}DeleteOptions")]["properties"];
    let describe = |field: &str| {
        props[field]["description"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let mut params = vec![query("dryRun", "string", DRY_RUN)];
    for (name, type_) in [
        ("gracePeriodSeconds", "integer"),
        (
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "boolean",
        ),
        ("orphanDependents", "boolean"),
        ("propagationPolicy", "string"),
    ] {
        params.push(query(name, type_, &describe(name)));
    }
    params
}

fn write_params(patch: bool) -> Vec<Value> {
    let mut params = vec![
        query("dryRun", "string", DRY_RUN),
        query(
            "fieldManager",
            "string",
            if patch {
                FIELD_MANAGER_PATCH
            } else {
                FIELD_MANAGER
            },
        ),
        query("fieldValidation", "string", FIELD_VALIDATION),
    ];
    if patch {
        params.push(query("force", "boolean", FORCE));
    }
    params
}

/// What an operation is about, for ids, descriptions and extensions.
struct Target<'a> {
    info: &'a ResourceInfo,
    /// `Namespaced` or empty.
    scope: &'static str,
}

impl Target<'_> {
    fn id(&self, verb: &str, suffix: &str) -> String {
        format!(
            "{verb}{}{}{}{suffix}",
            operation_prefix(self.info.group, self.info.version),
            self.scope,
            self.info.kind
        )
    }

    fn gvk(&self) -> Value {
        gvk(self.info.group, self.info.version, self.info.kind)
    }

    fn tag(&self) -> Value {
        json!([tag(self.info.group, self.info.version)])
    }
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "kind": kind, "version": version})
}

#[allow(clippy::too_many_arguments)]
fn operation(
    description: String,
    id: String,
    action: &str,
    gvk: Value,
    tag: Value,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
) -> Value {
    let mut op = Map::new();
    op.insert("description".into(), description.into());
    op.insert("operationId".into(), id.into());
    if !params.is_empty() {
        op.insert("parameters".into(), params.into());
    }
    if let Some(body) = body {
        op.insert("requestBody".into(), body);
    }
    op.insert("responses".into(), responses);
    op.insert("tags".into(), tag);
    op.insert("x-kubernetes-action".into(), action.into());
    op.insert("x-kubernetes-group-version-kind".into(), gvk);
    Value::Object(op)
}

fn has(info: &ResourceInfo, verb: &str) -> bool {
    info.verbs.contains(&verb)
}

/// All paths of one resource: collection, item, watch, for-all-namespaces and subresources.
fn resource_paths(info: &ResourceInfo, paths: &mut Map<String, Value>) {
    let Some(kind_def) = schema::definition_name(info.group, info.version, info.kind) else {
        return;
    };
    let list_def = schema::definition_name(info.group, info.version, &format!("{}List", info.kind));
    let prefix = api_prefix(info.group, info.version);
    let t = Target {
        info,
        scope: if info.namespaced { "Namespaced" } else { "" },
    };
    let kind = info.kind;
    let plural = info.plural;
    let ns_segment = if info.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let mut scope_params = Vec::new();
    if info.namespaced {
        scope_params.push(path_param("namespace", NAMESPACE));
    }
    let status = format!("{META}Status");

    // Collection: list, create, deletecollection.
    let mut collection = Map::new();
    if let (true, Some(list_def)) = (has(info, "list"), list_def) {
        collection.insert(
            "get".into(),
            operation(
                format!("list or watch objects of kind {kind}"),
                t.id("list", ""),
                "list",
                t.gvk(),
                t.tag(),
                list_params(),
                None,
                ok_responses(list_def, WATCHABLE),
            ),
        );
    }
    if has(info, "create") {
        collection.insert(
            "post".into(),
            operation(
                format!("create {} {kind}", article(kind)),
                t.id("create", ""),
                "post",
                t.gvk(),
                t.tag(),
                write_params(false),
                Some(request_body(kind_def, &["*/*"])),
                responses(kind_def, &["200", "201", "202"]),
            ),
        );
    }
    if has(info, "deletecollection") {
        let mut params = delete_params();
        params.extend(
            list_params()
                .into_iter()
                .filter(|p| !matches!(p["name"].as_str(), Some("allowWatchBookmarks" | "watch"))),
        );
        params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        collection.insert(
            "delete".into(),
            operation(
                format!("delete collection of {kind}"),
                format!(
                    "delete{}Collection{}{kind}",
                    operation_prefix(info.group, info.version),
                    t.scope
                ),
                "deletecollection",
                t.gvk(),
                t.tag(),
                params,
                Some(request_body(&format!("{META}DeleteOptions"), &["*/*"])),
                ok_responses(&status, JSON_YAML_PROTOBUF),
            ),
        );
    }
    if !collection.is_empty() {
        let mut params = scope_params.clone();
        params.push(query("pretty", "string", PRETTY));
        collection.insert("parameters".into(), params.into());
        paths.insert(
            format!("{prefix}{ns_segment}/{plural}"),
            Value::Object(collection),
        );
    }

    // Item: read, replace, patch, delete.
    let mut item_params = vec![path_param("name", &format!("name of the {kind}"))];
    item_params.extend(scope_params.iter().cloned());
    item_params.push(query("pretty", "string", PRETTY));
    let mut item = Map::new();
    if has(info, "get") {
        item.insert(
            "get".into(),
            operation(
                format!("read the specified {kind}"),
                t.id("read", ""),
                "get",
                t.gvk(),
                t.tag(),
                vec![],
                None,
                ok_responses(kind_def, JSON_YAML_PROTOBUF),
            ),
        );
    }
    if has(info, "update") {
        item.insert(
            "put".into(),
            operation(
                format!("replace the specified {kind}"),
                t.id("replace", ""),
                "put",
                t.gvk(),
                t.tag(),
                write_params(false),
                Some(request_body(kind_def, &["*/*"])),
                responses(kind_def, &["200", "201"]),
            ),
        );
    }
    if has(info, "patch") {
        item.insert(
            "patch".into(),
            operation(
                format!("partially update the specified {kind}"),
                t.id("patch", ""),
                "patch",
                t.gvk(),
                t.tag(),
                write_params(true),
                Some(request_body(&format!("{META}Patch"), PATCH_TYPES)),
                responses(kind_def, &["200", "201"]),
            ),
        );
    }
    if has(info, "delete") {
        item.insert(
            "delete".into(),
            operation(
                format!("delete {} {kind}", article(kind)),
                t.id("delete", ""),
                "delete",
                t.gvk(),
                t.tag(),
                delete_params(),
                Some(request_body(&format!("{META}DeleteOptions"), &["*/*"])),
                responses(&status, &["200", "202"]),
            ),
        );
    }
    if !item.is_empty() {
        item.insert("parameters".into(), item_params.clone().into());
        paths.insert(
            format!("{prefix}{ns_segment}/{plural}/{{name}}"),
            Value::Object(item),
        );
    }

    // Watch endpoints (deprecated upstream, still served and documented).
    if has(info, "watch") {
        let watch_event = format!("{META}WatchEvent");
        let mut list_watch_params = list_params();
        list_watch_params.extend(scope_params.iter().cloned());
        list_watch_params.push(query("pretty", "string", PRETTY));
        list_watch_params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        paths.insert(
            format!("{prefix}/watch{ns_segment}/{plural}"),
            json!({
                "get": operation(
                    format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
                    t.id("watch", "List"),
                    "watchlist",
                    t.gvk(),
                    t.tag(),
                    vec![],
                    None,
                    ok_responses(&watch_event, WATCHABLE),
                ),
                "parameters": list_watch_params,
            }),
        );
        let mut item_watch_params = list_params();
        item_watch_params.extend(item_params.iter().cloned());
        item_watch_params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        paths.insert(
            format!("{prefix}/watch{ns_segment}/{plural}/{{name}}"),
            json!({
                "get": operation(
                    format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
                    t.id("watch", ""),
                    "watch",
                    t.gvk(),
                    t.tag(),
                    vec![],
                    None,
                    ok_responses(&watch_event, WATCHABLE),
                ),
                "parameters": item_watch_params,
            }),
        );
        if info.namespaced {
            let mut all_params = list_params();
            all_params.push(query("pretty", "string", PRETTY));
            all_params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            let all = Target { info, scope: "" };
            paths.insert(
                format!("{prefix}/watch/{plural}"),
                json!({
                    "get": operation(
                        format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
                        all.id("watch", "ListForAllNamespaces"),
                        "watchlist",
                        all.gvk(),
                        all.tag(),
                        vec![],
                        None,
                        ok_responses(&watch_event, WATCHABLE),
                    ),
                    "parameters": all_params,
                }),
            );
        }
    }
    if info.namespaced && has(info, "list") {
        if let Some(list_def) = list_def {
            let mut all_params = list_params();
            all_params.push(query("pretty", "string", PRETTY));
            all_params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            let all = Target { info, scope: "" };
            paths.insert(
                format!("{prefix}/{plural}"),
                json!({
                    "get": operation(
                        format!("list or watch objects of kind {kind}"),
                        all.id("list", "ForAllNamespaces"),
                        "list",
                        all.gvk(),
                        all.tag(),
                        vec![],
                        None,
                        ok_responses(list_def, WATCHABLE),
                    ),
                    "parameters": all_params,
                }),
            );
        }
    }

    // Subresources.
    let item_path = format!("{prefix}{ns_segment}/{plural}/{{name}}");
    if info.subresources.status {
        get_put_patch(
            &t,
            &format!("{item_path}/status"),
            "Status",
            "status of",
            (info.group, info.version, kind),
            kind_def,
            &item_params,
            paths,
        );
    }
    if info.subresources.scale {
        get_put_patch(
            &t,
            &format!("{item_path}/scale"),
            "Scale",
            "scale of",
            ("autoscaling", "v1", "Scale"),
            "io.k8s.api.autoscaling.v1.Scale",
            &item_params,
            paths,
        );
    }
    for sub in info.subresources.extra {
        extra_subresource(&t, sub, &item_path, kind_def, &item_params, paths);
    }
}

/// `read`/`replace`/`patch` of a subresource carrying an object (status, scale,
/// ephemeralcontainers, resize).
#[allow(clippy::too_many_arguments)]
fn get_put_patch(
    t: &Target,
    path: &str,
    suffix: &str,
    what: &str,
    (group, version, kind): (&str, &str, &str),
    definition: &str,
    params: &[Value],
    paths: &mut Map<String, Value>,
) {
    let owner = t.info.kind;
    let gvk = gvk(group, version, kind);
    let mut ops = Map::new();
    ops.insert(
        "get".into(),
        operation(
            format!("read {what} the specified {owner}"),
            t.id("read", suffix),
            "get",
            gvk.clone(),
            t.tag(),
            vec![],
            None,
            ok_responses(definition, JSON_YAML_PROTOBUF),
        ),
    );
    ops.insert(
        "put".into(),
        operation(
            format!("replace {what} the specified {owner}"),
            t.id("replace", suffix),
            "put",
            gvk.clone(),
            t.tag(),
            write_params(false),
            Some(request_body(definition, &["*/*"])),
            responses(definition, &["200", "201"]),
        ),
    );
    ops.insert(
        "patch".into(),
        operation(
            format!("partially update {what} the specified {owner}"),
            t.id("patch", suffix),
            "patch",
            gvk,
            t.tag(),
            write_params(true),
            Some(request_body(&format!("{META}Patch"), PATCH_TYPES)),
            responses(definition, &["200", "201"]),
        ),
    );
    ops.insert("parameters".into(), params.to_vec().into());
    paths.insert(path.to_string(), Value::Object(ops));
}

/// Subresources served by dedicated handlers.
fn extra_subresource(
    t: &Target,
    sub: &str,
    item_path: &str,
    kind_def: &str,
    item_params: &[Value],
    paths: &mut Map<String, Value>,
) {
    let owner = t.info.kind;
    let path = format!("{item_path}/{sub}");
    // POST-only subresources carrying an object of another kind.
    let create = |body_def: &str, (group, version, kind): (&str, &str, &str), suffix: &str| {
        json!({
            "post": operation(
                format!("create {} of {} {owner}", sub, article(owner)),
                t.id("create", suffix),
                "post",
                gvk(group, version, kind),
                t.tag(),
                write_params(false),
                Some(request_body(body_def, &["*/*"])),
                responses(body_def, &["200", "201", "202"]),
            ),
            "parameters": item_params,
        })
    };
    let value = match sub {
        "eviction" => create(
            "io.k8s.api.policy.v1.Eviction",
            ("policy", "v1", "Eviction"),
            "Eviction",
        ),
        "binding" => create(
            "io.k8s.api.core.v1.Binding",
            ("", "v1", "Binding"),
            "Binding",
        ),
        "token" => create(
            "io.k8s.api.authentication.v1.TokenRequest",
            ("authentication.k8s.io", "v1", "TokenRequest"),
            "Token",
        ),
        "ephemeralcontainers" | "resize" => {
            let suffix = if sub == "resize" {
                "Resize"
            } else {
                "Ephemeralcontainers"
            };
            get_put_patch(
                t,
                &path,
                suffix,
                &format!("{sub} of"),
                (t.info.group, t.info.version, owner),
                kind_def,
                item_params,
                paths,
            );
            return;
        }
        "log" => {
            let mut params = item_params.to_vec();
            for (name, type_, description) in [
                ("container", "string", "The container for which to stream logs. Defaults to only container if there is one container in the pod."),
                ("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
                ("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to.  This will make the HTTPS connection between the apiserver and the backend insecure. This means the apiserver cannot verify the log data it is receiving came from the real kubelet.  If the kubelet is configured to verify the apiserver's TLS credentials, it does not mean the connection to the real kubelet is vulnerable to a man in the middle attack (e.g. an attacker could not intercept the actual log data coming from the real kubelet)."),
                ("limitBytes", "integer", "If set, the number of bytes to read from the server before terminating the log output. This may not display a complete final line of logging, and may return slightly more or slightly less than the specified limit."),
                ("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
                ("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs. If this value precedes the time a pod was started, only logs since the pod start will be returned. If this value is in the future, no logs will be returned. Only one of sinceSeconds or sinceTime may be specified."),
                ("stream", "string", "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\". If not specified, \"All\" is used, and both stdout and stderr are returned interleaved. Note that when \"TailLines\" is specified, \"Stream\" can only be set to nil or \"All\"."),
                ("tailLines", "integer", "If set, the number of lines from the end of the logs to show. If not specified, logs are shown from the creation of the container or sinceSeconds or sinceTime. Note that when \"TailLines\" is specified, \"Stream\" can only be set to nil or \"All\"."),
                ("timestamps", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
            ] {
                params.push(query(name, type_, description));
            }
            params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            let text = json!({"schema": {"type": "string"}});
            json!({
                "get": {
                    "description": format!("read log of the specified {owner}"),
                    "operationId": t.id("read", "Log"),
                    "responses": {"200": {"description": "OK", "content": {
                        "*/*": text, "application/json": text, "application/vnd.kubernetes.protobuf": text,
                        "application/yaml": text, "text/plain": text,
                    }}},
                    "tags": t.tag(),
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": t.gvk(),
                },
                "parameters": params,
            })
        }
        "exec" | "attach" | "portforward" | "proxy" => {
            let suffix = capitalize(sub);
            let connect = |method: &str, verb: &str| {
                json!({
                    "description": format!("connect {} requests to {sub} of {owner}", method.to_uppercase()),
                    "operationId": format!("connect{}{}{}{}{}", operation_prefix(t.info.group, t.info.version), verb, t.scope, owner, suffix),
                    "responses": {"200": {"description": "OK", "content": {"*/*": {"schema": {"type": "string"}}}}},
                    "tags": t.tag(),
                    "x-kubernetes-action": "connect",
                    "x-kubernetes-group-version-kind": gvk(t.info.group, t.info.version, &format!("{owner}{suffix}Options")),
                })
            };
            json!({
                "get": connect("get", "Get"),
                "post": connect("post", "Post"),
                "parameters": item_params,
            })
        }
        _ => return,
    };
    paths.insert(path, value);
}

/// `a` or `an`, as upstream's operation descriptions use ("create an Ingress").
fn article(kind: &str) -> &'static str {
    match kind.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests;
