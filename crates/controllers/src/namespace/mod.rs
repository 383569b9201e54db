//! The namespace controller (upstream `pkg/controller/namespace`): a namespace marked
//! for deletion has all its content deleted, its deletion conditions reported, and then
//! its `kubernetes` finalizer removed through `namespaces/{name}/finalize`, upon which
//! the API server deletes it.

mod conditions;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};

use self::conditions::{ConditionUpdater, ContentTotals};
use crate::controller::{run_workers, Context, Controller};
use crate::discovery::{Resources, ServedResource};
use k8rs_client::{Change, ObjectKey, WorkQueue};

/// The finalizer this controller owns in `spec.finalizers`.
const KUBERNETES_FINALIZER: &str = "kubernetes";
/// Seconds to wait for content held by finalizers (upstream `finalizerEstimateSeconds`).
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;
/// Workers (upstream `--concurrent-namespace-syncs`, default 10).
const WORKERS: usize = 4;

/// Deletes the content of terminating namespaces.
pub struct NamespaceController {
    client: kube::Client,
    queue: WorkQueue<ObjectKey>,
}

/// Registers the namespace handlers and starts the workers.
pub fn start(ctx: &Context) -> tokio::task::JoinHandle<()> {
    let queue = WorkQueue::new();
    let handler_queue = queue.clone();
    ctx.informers.get::<Namespace>().add_handler(move |change| {
        if let Change::Applied { new, .. } = change {
            if new.metadata.deletion_timestamp.is_some() {
                handler_queue.add(ObjectKey::of(new.as_ref()));
            }
        }
    });
    let controller = Arc::new(NamespaceController {
        client: ctx.client.clone(),
        queue: queue.clone(),
    });
    run_workers(controller, queue, WORKERS)
}

#[async_trait::async_trait]
impl Controller for NamespaceController {
    fn name(&self) -> &'static str {
        "namespace-controller"
    }

    /// Upstream `namespacedResourcesDeleter.Delete`.
    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let Some(ns) = namespaces.get_opt(&key.name).await? else {
            return Ok(());
        };
        if ns.metadata.deletion_timestamp.is_none() || finalized(&ns) {
            return Ok(());
        }
        let (estimate, result) = self.delete_all_content(&ns).await;
        result?;
        if estimate > 0 {
            // Upstream `ResourcesRemainingError`: look again in half the estimate.
            let secs = (estimate / 2 + 1) as u64;
            tracing::debug!(namespace = %key, estimate, "content remains; checking again later");
            self.queue.add_after(key.clone(), Duration::from_secs(secs));
            return Ok(());
        }
        self.finalize(&namespaces, &key.name).await
    }
}

impl NamespaceController {
    /// Upstream `deleteAllContent`: every namespaced, deletable resource, then the
    /// deletion conditions. Returns the seconds to wait for what remains, and whether
    /// anything failed.
    async fn delete_all_content(&self, ns: &Namespace) -> (i64, anyhow::Result<()>) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let mut updater = ConditionUpdater::default();
        let mut errors: Vec<String> = Vec::new();
        let mut estimate = 0i64;
        let mut totals = ContentTotals::default();
        match Resources::discover(&self.client).await {
            Ok(resources) => {
                for served in resources.with_verbs(&["delete"]).filter(|r| r.namespaced) {
                    match self.delete_resource_content(served, &name, ns).await {
                        Ok(meta) => {
                            estimate = estimate.max(meta.estimate);
                            if meta.remaining > 0 {
                                totals
                                    .remaining
                                    .insert(group_resource_dot(served), meta.remaining);
                            }
                            for (finalizer, n) in meta.finalizers {
                                *totals.finalizers.entry(finalizer).or_default() += n;
                            }
                        }
                        Err((meta, e)) => {
                            estimate = estimate.max(meta.estimate);
                            if meta.remaining > 0 {
                                totals
                                    .remaining
                                    .insert(group_resource_dot(served), meta.remaining);
                            }
                            updater.delete_content_error(e.clone());
                            errors.push(e);
                        }
                    }
                }
            }
            Err(e) => {
                let e = format!("{e:#}");
                updater.discovery_error(e.clone());
                errors.push(e);
            }
        }
        updater.content_totals(&totals);

        let mut ns = ns.clone();
        let status = ns.status.get_or_insert_with(Default::default);
        let mut changed = updater.update(status);
        if status.phase.as_deref() != Some("Terminating") {
            status.phase = Some("Terminating".into());
            changed = true;
        }
        if changed {
            let namespaces: Api<Namespace> = Api::all(self.client.clone());
            if let Err(e) = namespaces
                .replace_status(&name, &PostParams::default(), &ns)
                .await
            {
                tracing::debug!(namespace = name, error = %e, "cannot update namespace deletion conditions");
            }
        }
        let result = if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(errors.join(", ")))
        };
        (estimate, result)
    }

    /// Upstream `deleteAllContentForGroupVersionResource`.
    async fn delete_resource_content(
        &self,
        served: &ServedResource,
        namespace: &str,
        ns: &Namespace,
    ) -> Result<ResourceDeletion, (ResourceDeletion, String)> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &served.resource);
        let mut meta = ResourceDeletion::default();
        if served.resource.group.is_empty() && served.resource.plural == "pods" {
            meta.estimate = self
                .pods_estimate(namespace, ns)
                .await
                .map_err(|e| (meta.clone(), e))?;
        }
        let params = DeleteParams::background();
        if served.supports(&["deletecollection"]) {
            api.delete_collection(&params, &ListParams::default())
                .await
                .map_err(|e| (meta.clone(), delete_error(served, namespace, &e)))?;
        } else if served.supports(&["list"]) {
            let items = api
                .list(&ListParams::default())
                .await
                .map_err(|e| (meta.clone(), delete_error(served, namespace, &e)))?;
            for item in items {
                let name = item.metadata.name.clone().unwrap_or_default();
                match api.delete(&name, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err((meta.clone(), delete_error(served, namespace, &e))),
                }
            }
        }
        if !served.supports(&["list"]) {
            return Ok(meta);
        }
        let remaining = api
            .list(&ListParams::default())
            .await
            .map_err(|e| (meta.clone(), delete_error(served, namespace, &e)))?;
        if remaining.items.is_empty() {
            meta.estimate = 0;
            return Ok(meta);
        }
        meta.remaining = remaining.items.len();
        for item in &remaining.items {
            for f in item.metadata.finalizers.iter().flatten() {
                *meta.finalizers.entry(f.clone()).or_default() += 1;
            }
        }
        if meta.estimate != 0 {
            return Ok(meta);
        }
        if !meta.finalizers.is_empty() {
            meta.estimate = FINALIZER_ESTIMATE_SECONDS;
            return Ok(meta);
        }
        // Objects without finalizers should be gone: something is wrong.
        let gvr = format!(
            "{}/{}, Resource={}",
            served.resource.group, served.resource.version, served.resource.plural
        );
        Err((
            meta,
            format!("unexpected items still remain in namespace: {namespace} for gvr: {gvr}"),
        ))
    }

    /// Upstream `estimateGracefulTerminationForPods`: the longest grace period of the
    /// pods that are not finished, less the time since the namespace was deleted.
    async fn pods_estimate(&self, namespace: &str, ns: &Namespace) -> Result<i64, String> {
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(self.client.clone(), namespace);
        let list = pods.list(&ListParams::default()).await.map_err(|e| {
            format!("unexpected error while estimating the graceful termination of pods: {e}")
        })?;
        let mut estimate = 0i64;
        for pod in list {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if matches!(phase, Some("Succeeded") | Some("Failed")) {
                continue;
            }
            if let Some(grace) = pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
            {
                estimate = estimate.max(grace);
            }
        }
        let since = ns
            .metadata
            .deletion_timestamp
            .as_ref()
            .map(|t| (k8s_openapi::jiff::Timestamp::now() - t.0).get_seconds())
            .unwrap_or(0);
        Ok((estimate - since).max(0))
    }

    /// Removes the `kubernetes` finalizer through `PUT namespaces/{name}/finalize`.
    async fn finalize(&self, namespaces: &Api<Namespace>, name: &str) -> anyhow::Result<()> {
        for _ in 0..5 {
            let Some(mut ns) = namespaces.get_opt(name).await? else {
                return Ok(());
            };
            if finalized(&ns) {
                return Ok(());
            }
            if let Some(spec) = ns.spec.as_mut() {
                if let Some(f) = spec.finalizers.as_mut() {
                    f.retain(|f| f != KUBERNETES_FINALIZER);
                }
            }
            match namespaces
                .replace_subresource("finalize", name, &PostParams::default(), &ns)
                .await
            {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("conflicts finalizing namespace {name}")
    }
}

/// What deleting one resource's content left behind.
#[derive(Clone, Debug, Default)]
struct ResourceDeletion {
    /// Seconds to wait for graceful termination or finalizers.
    estimate: i64,
    /// Remaining objects by finalizer.
    finalizers: std::collections::BTreeMap<String, usize>,
    /// Objects left.
    remaining: usize,
}

/// Whether the namespace no longer carries this controller's finalizer.
fn finalized(ns: &Namespace) -> bool {
    !ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == KUBERNETES_FINALIZER))
}

/// `plural.group` with the dot even for the core group, as upstream's remaining-content
/// message prints `gvr.Resource + "." + gvr.Group`.
fn group_resource_dot(served: &ServedResource) -> String {
    format!("{}.{}", served.resource.plural, served.resource.group)
}

fn delete_error(served: &ServedResource, namespace: &str, e: &kube::Error) -> String {
    format!(
        "failed to delete {} in namespace {namespace}: {e}",
        served.group_resource()
    )
}
