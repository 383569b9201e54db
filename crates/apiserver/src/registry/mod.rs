//! The generic registry: create, get, list, watch, update, patch and delete implemented
//! once for every resource, each resource contributing only its `k8rs_api::Strategy`
//! (upstream: `apiserver/pkg/registry/generic/registry/store.go`).
//!
//! Writes go to the store with compare-and-swap on the previous revision; reads come from
//! the watch cache once it has caught up with the store (consistent reads from cache).

mod admission;
mod apply;
mod binding;
pub mod conversion;
mod create;
mod delete;
mod eviction;
pub mod meta;
mod read;
mod serviceaccount;
mod subresources;
mod update;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8rs_api::schema::Schema;
use k8rs_api::{ResourceInfo, Strategy};
use k8rs_store::{Revision, Store};
use serde_json::Value;

use crate::status::{ApiError, ApiResult};
use crate::watch_cache::{CachedObject, ResourceCache, WatchCache};

pub use admission::kubernetes_service_ip;
pub use delete::DeleteOptions;
pub use read::{ListOptions, ListResult, WatchEvent, WatchOptions};
pub use serviceaccount::{DEFAULT_SERVICE_ACCOUNT, TOKEN_MOUNT_PATH};
pub use subresources::{to_scale, ScaleChange};
pub use update::Part;

/// One served resource version: its strategy, schema and storage location.
pub struct Resource {
    /// The strategy (discovery facts, defaulting, validation, printing).
    pub strategy: Arc<dyn Strategy>,
    /// Storage prefix, e.g. `/registry/deployments/` (shared by the versions of a group).
    pub storage_prefix: String,
    /// Upstream schema (for patches, apply and unknown-field detection).
    pub schema: Option<Schema>,
    /// The `apiVersion` objects are stored in; differs from this resource's own version
    /// when another version owns the storage (see [`conversion`]).
    pub storage_api_version: String,
}

impl Resource {
    /// Discovery facts.
    pub fn info(&self) -> &ResourceInfo {
        self.strategy.info()
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.info().namespaced => format!("{}{ns}/{name}", self.storage_prefix),
            _ => format!("{}{name}", self.storage_prefix),
        }
    }

    /// Whether objects are converted between the stored and the served version.
    pub fn converts(&self) -> bool {
        self.storage_api_version != self.info().api_version()
    }

    /// A cached object as this resource version serves it (converted ones are parsed,
    /// converted and encoded again; the rest are shared).
    pub fn external(&self, obj: &Arc<CachedObject>) -> Arc<CachedObject> {
        if self.converts() {
            Arc::new(CachedObject::from_value(&conversion::convert(
                &obj.value(),
                &self.info().api_version(),
            )))
        } else {
            obj.clone()
        }
    }

    /// A store value as this resource version serves it, with its resourceVersion.
    pub fn decode_stored(&self, kv: &k8rs_store::KeyValue) -> ApiResult<Value> {
        let obj = crate::watch_cache::decode_with_rv(&kv.value, kv.mod_revision)
            .ok_or_else(|| ApiError::internal(format!("stored object {} is not JSON", kv.key)))?;
        Ok(if self.converts() {
            conversion::convert(&obj, &self.info().api_version())
        } else {
            obj
        })
    }

    /// A served object in the stored version.
    pub fn to_storage(&self, obj: &Value) -> Value {
        if self.converts() {
            conversion::convert(obj, &self.storage_api_version)
        } else {
            obj.clone()
        }
    }

    /// The key prefix of a namespace (or the whole resource).
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.info().namespaced => format!("{}{ns}/", self.storage_prefix),
            _ => self.storage_prefix.clone(),
        }
    }
}

/// How unknown or duplicate fields in a request body are treated (`?fieldValidation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and return a `Warning` header per field (the server default).
    #[default]
    Warn,
    /// Reject the request (`400 BadRequest`).
    Strict,
}

/// Per-request options that apply to every write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `?dryRun=All`: run everything but the store write.
    pub dry_run: bool,
    /// `?fieldManager=` (or derived from the user agent).
    pub field_manager: String,
    /// `?fieldValidation=`.
    pub field_validation: FieldValidation,
    /// `?force=true` (server-side apply).
    pub force: bool,
}

/// The result of a write: the object and warnings to send as `Warning` headers.
#[derive(Debug, Clone)]
pub struct WriteResult {
    /// The object as stored (or as it would be, on dry run).
    pub object: Value,
    /// Warnings, e.g. unknown fields under `fieldValidation=Warn`.
    pub warnings: Vec<String>,
    /// Whether a new object was created (`201` instead of `200`).
    pub created: bool,
}

/// The registry of every served resource.
pub struct Registry {
    store: Arc<dyn Store>,
    cache: Arc<WatchCache>,
    resources: Vec<Arc<Resource>>,
    by_path: HashMap<(String, String, String), Arc<Resource>>,
    admission: admission::Admission,
    /// The ServiceAccount token signer (legacy token Secrets are signed on create).
    tokens: OnceLock<Arc<crate::satoken::TokenIssuer>>,
    /// The cluster CA (PEM), the `ca.crt` of legacy token Secrets.
    cluster_ca: OnceLock<String>,
}

/// How long a read waits for the cache to catch up with the store.
const CONSISTENT_READ_TIMEOUT: Duration = Duration::from_secs(3);

impl Registry {
    /// Build the registry over `store`, start the watch cache, and create the built-in
    /// objects every cluster has (namespaces `default`, `kube-system`, …).
    pub async fn start(
        store: Arc<dyn Store>,
        strategies: Vec<Arc<dyn Strategy>>,
    ) -> anyhow::Result<Arc<Registry>> {
        let mut resources = Vec::new();
        let mut by_path = HashMap::new();
        let mut prefix_owner: HashMap<String, ResourceInfo> = HashMap::new();
        for strategy in strategies {
            let info = strategy.info().clone();
            // The first resource with a plural owns `/registry/<plural>/` and its version is
            // the storage version; later ones that convert to it share the storage, others
            // (none today) get a group-qualified prefix.
            let plain = format!("/registry/{}/", info.plural);
            let (storage_prefix, storage_api_version) = match prefix_owner.get(&plain) {
                Some(owner) if conversion::convertible(owner, &info) => {
                    (plain, owner.api_version())
                }
                Some(_) => (
                    format!("/registry/{}/{}/", info.group, info.plural),
                    info.api_version(),
                ),
                None => {
                    prefix_owner.insert(plain.clone(), info.clone());
                    (plain, info.api_version())
                }
            };
            let schema = Schema::for_kind(info.group, info.version, info.kind);
            let res = Arc::new(Resource {
                strategy,
                storage_prefix,
                schema,
                storage_api_version,
            });
            by_path.insert(
                (
                    info.group.to_string(),
                    info.version.to_string(),
                    info.plural.to_string(),
                ),
                res.clone(),
            );
            resources.push(res);
        }
        let mut prefixes: Vec<String> =
            resources.iter().map(|r| r.storage_prefix.clone()).collect();
        prefixes.sort();
        prefixes.dedup();
        let cache = WatchCache::start(store.clone(), prefixes).await?;
        let registry = Arc::new(Registry {
            store,
            cache,
            resources,
            by_path,
            admission: admission::Admission::default(),
            tokens: OnceLock::new(),
            cluster_ca: OnceLock::new(),
        });
        registry.bootstrap().await?;
        Ok(registry)
    }

    /// Every served resource, in catalogue order.
    pub fn resources(&self) -> &[Arc<Resource>] {
        &self.resources
    }

    /// The resource served at `/apis/<group>/<version>/<plural>`.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<Resource>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
    }

    /// The first served resource of a kind (any version), e.g. to look up namespaces.
    pub fn resource_by_kind(&self, group: &str, kind: &str) -> Option<&Arc<Resource>> {
        self.resources
            .iter()
            .find(|r| r.info().group == group && r.info().kind == kind)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The watch cache.
    pub fn cache(&self) -> &Arc<WatchCache> {
        &self.cache
    }

    fn resource_cache(&self, res: &Resource) -> ApiResult<&Arc<ResourceCache>> {
        self.cache
            .resource(&res.storage_prefix)
            .ok_or_else(|| ApiError::internal(format!("no cache for {}", res.storage_prefix)))
    }

    /// Wait until the cache reflects every write the store has committed.
    async fn consistent_revision(&self) -> ApiResult<Revision> {
        let rev = self.store.current_revision().await?;
        if !self.cache.wait_for(rev, CONSISTENT_READ_TIMEOUT).await {
            return Err(ApiError::too_large_resource_version(
                rev,
                self.cache.revision(),
            ));
        }
        Ok(rev.max(self.cache.revision()))
    }

    /// Record `manager` as owner of what this write changed (`metadata.managedFields`).
    /// An empty manager means the write already did (server-side apply).
    fn record_manager(
        &self,
        res: &Resource,
        old: Option<&Value>,
        new: &mut Value,
        opts: &WriteOptions,
        subresource: &str,
    ) {
        if opts.field_manager.is_empty() {
            return;
        }
        if subresource.is_empty() && res.info().subresources.status {
            // The main resource never owns `status` (upstream's reset fields): record
            // ownership on the objects without it.
            let without_status = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("status");
                }
                v
            };
            let old = old.map(without_status);
            let mut tracked = without_status(new);
            crate::patch::update_managed_fields(
                res.schema,
                old.as_ref(),
                &mut tracked,
                &opts.field_manager,
                subresource,
                &meta::now(),
            );
            if let Some(managed) = tracked.pointer("/metadata/managedFields").cloned() {
                meta::meta_mut(new).insert("managedFields".into(), managed);
            }
            return;
        }
        crate::patch::update_managed_fields(
            res.schema,
            old,
            new,
            &opts.field_manager,
            subresource,
            &meta::now(),
        );
    }

    /// The `default/kubernetes` Service and its Endpoints and EndpointSlice, pointing at this
    /// server (upstream's "master" reconciler). Kept in step with the address on every start.
    pub async fn reconcile_kubernetes_service(
        &self,
        ip: std::net::IpAddr,
        port: u16,
    ) -> anyhow::Result<()> {
        let opts = WriteOptions {
            field_manager: "kube-apiserver".into(),
            ..Default::default()
        };
        let labels = serde_json::json!({"component": "apiserver", "provider": "kubernetes"});
        let service = serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": kubernetes_service_ip().to_string(),
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                "sessionAffinity": "None",
            },
        });
        let endpoints = serde_json::json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        });
        let slice = serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": if ip.is_ipv4() { "IPv4" } else { "IPv6" },
            "endpoints": [{"addresses": [ip.to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        });
        for (group, kind, obj) in [
            ("", "Service", service),
            ("", "Endpoints", endpoints),
            ("discovery.k8s.io", "EndpointSlice", slice),
        ] {
            let Some(res) = self.resource_by_kind(group, kind).cloned() else {
                continue;
            };
            match self.create(&res, Some("default"), obj.clone(), &opts).await {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" && kind != "Service" => {
                    // The address may have changed since the last start.
                    self.update(&res, Some("default"), "kubernetes", obj, Part::Main, &opts)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                }
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => anyhow::bail!("creating default/kubernetes {kind}: {e}"),
            }
        }
        Ok(())
    }

    /// Create the objects every cluster has from its first start.
    async fn bootstrap(&self) -> anyhow::Result<()> {
        let Some(ns) = self.resource_by_kind("", "Namespace").cloned() else {
            return Ok(());
        };
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if self.store.get(&ns.key(None, name)).await?.is_some() {
                continue;
            }
            let obj = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            match self
                .create(
                    &ns,
                    None,
                    obj,
                    &WriteOptions {
                        field_manager: "k8rs".into(),
                        ..Default::default()
                    },
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => anyhow::bail!("creating namespace {name}: {e}"),
            }
        }
        // Every namespace has its `default` ServiceAccount, also in data dirs from before
        // the registry created them (the cache has caught up with the writes above).
        self.consistent_revision()
            .await
            .map_err(|e| anyhow::anyhow!("reading namespaces: {e}"))?;
        let namespaces: Vec<String> = self
            .resource_cache(&ns)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .list(&ns.storage_prefix, 0)
            .objects
            .iter()
            .map(|n| n.value())
            .filter(|n| !meta::is_deleting(n))
            .map(|n| meta::name(&n).to_string())
            .collect();
        for name in namespaces {
            self.ensure_default_service_account(&name)
                .await
                .map_err(|e| anyhow::anyhow!("creating {name}/default ServiceAccount: {e}"))?;
        }
        // Upstream's API server creates the two system priority classes at start-up.
        if let Some(pc) = self
            .resource_by_kind("scheduling.k8s.io", "PriorityClass")
            .cloned()
        {
            for (name, value, description) in [
                ("system-node-critical", 2_000_001_000, "Used for system critical pods that must not be moved from their current node."),
                ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
            ] {
                if self.store.get(&pc.key(None, name)).await?.is_some() {
                    continue;
                }
                let obj = serde_json::json!({
                    "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                    "metadata": {"name": name}, "value": value, "description": description,
                    "preemptionPolicy": "PreemptLowerPriority",
                });
                let opts = WriteOptions { field_manager: "k8rs".into(), ..Default::default() };
                match self.create(&pc, None, obj, &opts).await {
                    Ok(_) => {}
                    Err(e) if e.reason == "AlreadyExists" => {}
                    Err(e) => anyhow::bail!("creating priority class {name}: {e}"),
                }
            }
        }
        Ok(())
    }
}
