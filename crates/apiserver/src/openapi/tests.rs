use super::*;
use k8rs_api::{Column, Subresources};

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct TestResource(ResourceInfo);

impl Strategy for TestResource {
    fn info(&self) -> &ResourceInfo {
        &self.0
    }
    fn columns(&self) -> &'static [Column] {
        &[]
    }
    fn row(&self, _obj: &Value) -> Vec<Value> {
        Vec::new()
    }
}

fn resource(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    verbs: &'static [&'static str],
    subresources: Subresources,
) -> Arc<dyn Strategy> {
    Arc::new(TestResource(ResourceInfo {
        group,
        version: "v1",
        kind,
        plural,
        singular: "",
        namespaced,
        short_names: &[],
        categories: &[],
        verbs,
        subresources,
    }))
}

fn resources() -> Vec<Arc<dyn Strategy>> {
    vec![
        resource(
            "",
            "Pod",
            "pods",
            true,
            ALL_VERBS,
            Subresources {
                status: true,
                scale: false,
                extra: &["log", "exec", "eviction", "binding"],
            },
        ),
        resource(
            "",
            "Namespace",
            "namespaces",
            false,
            ALL_VERBS,
            Subresources {
                status: true,
                ..Default::default()
            },
        ),
        resource(
            "apps",
            "Deployment",
            "deployments",
            true,
            ALL_VERBS,
            Subresources {
                status: true,
                scale: true,
                extra: &[],
            },
        ),
        resource(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "clusterroles",
            false,
            ALL_VERBS,
            Subresources::default(),
        ),
        resource(
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            false,
            &["create"],
            Subresources::default(),
        ),
    ]
}

fn docs() -> Documents {
    Documents::new(&resources())
}

fn parse(doc: &Document) -> Value {
    serde_json::from_slice(&doc.json).unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method != "parameters" {
                ops.push((path.clone(), method.clone(), op));
            }
        }
    }
    ops
}

#[test]
fn index_lists_every_document_with_its_hash() {
    let docs = docs();
    let index: Value = serde_json::from_slice(docs.index()).unwrap();
    let paths = index["paths"].as_object().unwrap();
    let mut keys: Vec<&str> = paths.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api",
            "api/v1",
            "apis",
            "apis/apps",
            "apis/apps/v1",
            "apis/authorization.k8s.io",
            "apis/authorization.k8s.io/v1",
            "apis/rbac.authorization.k8s.io",
            "apis/rbac.authorization.k8s.io/v1",
            "version",
        ]
    );
    let hash = &docs.get("apis/apps/v1").unwrap().hash;
    assert_eq!(
        paths["apis/apps/v1"]["serverRelativeURL"],
        format!("/openapi/v3/apis/apps/v1?hash={hash}")
    );
    assert_eq!(hash.len(), 32);
    assert!(docs.get("/openapi/v3/apis/apps/v1").is_some());
    assert!(docs.get("apis/batch/v1").is_none());
    assert_eq!(index, super::index(&resources()));
}

#[test]
fn hashes_are_stable_and_follow_content() {
    let a = docs();
    let b = docs();
    assert_eq!(a.get("api/v1").unwrap().hash, b.get("api/v1").unwrap().hash);
    let fewer: Vec<_> = resources().into_iter().skip(1).collect();
    let c = Documents::new(&fewer);
    assert_ne!(a.get("api/v1").unwrap().hash, c.get("api/v1").unwrap().hash);
    assert_eq!(
        etag("api/v1", &resources()),
        Some(a.get("api/v1").unwrap().hash.clone())
    );
}

#[test]
fn every_mutating_operation_declares_field_validation_dry_run_and_field_manager() {
    let docs = docs();
    let mut checked = 0;
    for path in docs.paths() {
        let doc = parse(docs.get(path).unwrap());
        for (p, method, op) in operations(&doc) {
            if !matches!(method.as_str(), "post" | "put" | "patch") || p.ends_with("/exec") {
                continue;
            }
            let names: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {p} has no parameters"))
                .iter()
                .map(|q| q["name"].as_str().unwrap())
                .collect();
            for required in ["fieldValidation", "dryRun", "fieldManager"] {
                assert!(names.contains(&required), "{method} {p} lacks {required}");
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} mutating operations");
}

/// What kubectl's query-parameter verifier does: find a PATCH operation whose
/// `x-kubernetes-group-version-kind` is the kind, and look for `fieldValidation` in it.
#[test]
fn kubectl_finds_field_validation_on_the_kinds_patch_operation() {
    let docs = docs();
    for (path, group, kind) in [
        ("apis/apps/v1", "apps", "Deployment"),
        ("api/v1", "", "Pod"),
        ("api/v1", "", "Namespace"),
    ] {
        let doc = parse(docs.get(path).unwrap());
        let patch = operations(&doc)
            .into_iter()
            .find(|(_, method, op)| {
                method == "patch"
                    && op["x-kubernetes-group-version-kind"]
                        == json!({"group": group, "kind": kind, "version": "v1"})
            })
            .unwrap_or_else(|| panic!("no PATCH for {kind}"));
        let params = patch.2["parameters"].as_array().unwrap();
        assert!(params
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
    }
}

#[test]
fn refs_resolve_within_each_document() {
    let docs = docs();
    for path in docs.paths() {
        let doc = parse(docs.get(path).unwrap());
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty(), "{path} references nothing");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for name in refs {
            assert!(schemas.contains_key(&name), "{path}: dangling $ref {name}");
        }
    }
}

#[test]
fn operations_are_named_like_upstream() {
    let docs = docs();
    let mut ids = BTreeSet::new();
    for path in docs.paths() {
        let doc = parse(docs.get(path).unwrap());
        for (_, _, op) in operations(&doc) {
            ids.insert(op["operationId"].as_str().unwrap().to_string());
        }
    }
    for id in [
        "listCoreV1NamespacedPod",
        "listCoreV1PodForAllNamespaces",
        "createCoreV1NamespacedPod",
        "readCoreV1NamespacedPodStatus",
        "readCoreV1NamespacedPodLog",
        "createCoreV1NamespacedPodEviction",
        "connectCoreV1PostNamespacedPodExec",
        "watchCoreV1NamespacedPodList",
        "watchCoreV1PodListForAllNamespaces",
        "deleteCoreV1CollectionNamespacedPod",
        "deleteCoreV1Namespace",
        "patchAppsV1NamespacedDeploymentScale",
        "listRbacAuthorizationV1ClusterRole",
        "createAuthorizationV1SelfSubjectAccessReview",
        "getAppsAPIGroup",
        "getAppsV1APIResources",
        "getCoreAPIVersions",
        "getCodeVersion",
    ] {
        assert!(ids.contains(id), "missing {id}");
    }
    // Create-only kinds get no read/list/watch operations.
    assert!(!ids.contains("listAuthorizationV1SelfSubjectAccessReview"));
}

/// Walk a schema as `kubectl explain` does: through `properties`, `items` and single `allOf`
/// or `$ref` indirections within `components.schemas`.
fn explain<'a>(doc: &'a Value, group: &str, kind: &str, fields: &[&str]) -> &'a Value {
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let resolve = |mut node: &'a Value| loop {
        if let Some(r) = node["$ref"].as_str() {
            node = &schemas[r.strip_prefix(REF_PREFIX).unwrap()];
        } else if node["allOf"].as_array().map(Vec::len) == Some(1) {
            node = &node["allOf"][0];
        } else if node["items"].is_object() {
            node = &node["items"];
        } else {
            return node;
        }
    };
    let (_, mut node) = schemas
        .iter()
        .find(|(_, s)| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| l.iter().any(|g| g["group"] == group && g["kind"] == kind))
        })
        .expect("kind schema");
    for field in fields {
        node = resolve(&resolve(node)["properties"][*field]);
    }
    node
}

#[test]
fn explain_finds_fields_with_descriptions() {
    let docs = docs();
    let doc = parse(docs.get("apis/apps/v1").unwrap());
    let spec = &explain(&doc, "apps", "Deployment", &["spec", "template", "spec"])["properties"];
    let containers = &spec["containers"];
    assert!(containers["description"]
        .as_str()
        .unwrap()
        .starts_with("List of containers belonging to the pod."));
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    let container = explain(
        &doc,
        "apps",
        "Deployment",
        &["spec", "template", "spec", "containers"],
    );
    assert!(container["description"]
        .as_str()
        .unwrap()
        .contains("container"));
    assert!(container["properties"]["image"]["description"]
        .as_str()
        .unwrap()
        .contains("Container image name"));
    assert_eq!(container["required"], json!(["name"]));
}
