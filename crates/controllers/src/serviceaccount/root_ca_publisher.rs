//! The root CA publisher (upstream `pkg/controller/certificates/rootcacertpublisher`):
//! a `kube-root-ca.crt` ConfigMap with the cluster CA under `ca.crt` in every
//! namespace, so pods can verify the API server; restored if edited or deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};

use crate::controller::{run_workers, Context, Controller};
use k8rs_client::{Change, Informer, ObjectKey, WorkQueue};

/// The ConfigMap's name (upstream `RootCACertConfigMapName`).
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Keeps `kube-root-ca.crt` in every namespace.
pub struct Publisher {
    client: kube::Client,
    root_ca: String,
    namespaces: Informer<Namespace>,
    config_maps: Informer<ConfigMap>,
}

/// Starts the publisher, unless no CA is known. Keys are namespace names.
pub fn start(ctx: &Context) -> Option<tokio::task::JoinHandle<()>> {
    let root_ca = ctx.root_ca.clone()?;
    let queue: WorkQueue<ObjectKey> = WorkQueue::new();
    let namespaces = ctx.informers.get::<Namespace>();
    let config_maps = ctx.informers.get::<ConfigMap>();
    let q = queue.clone();
    namespaces.add_handler(move |change| {
        if let Change::Applied { new, .. } = change {
            if super::is_active(new) {
                q.add(ObjectKey::of(new.as_ref()));
            }
        }
    });
    let q = queue.clone();
    config_maps.add_handler(move |change| {
        let cm = change.object();
        if cm.metadata.name.as_deref() == Some(CONFIG_MAP) {
            // Deleted, or edited: put it back.
            q.add(ObjectKey::cluster(
                cm.metadata.namespace.clone().unwrap_or_default(),
            ));
        }
    });
    let controller = Arc::new(Publisher {
        client: ctx.client.clone(),
        root_ca,
        namespaces,
        config_maps,
    });
    Some(run_workers(controller, queue, 2))
}

#[async_trait::async_trait]
impl Controller for Publisher {
    fn name(&self) -> &'static str {
        "root-ca-cert-publisher"
    }

    /// Upstream `syncNamespace`.
    async fn sync(&self, key: &ObjectKey) -> anyhow::Result<()> {
        self.namespaces.wait_synced().await;
        self.config_maps.wait_synced().await;
        let ns = &key.name;
        if !self
            .namespaces
            .get(&ObjectKey::cluster(ns))
            .is_some_and(|n| super::is_active(&n))
        {
            return Ok(());
        }
        let data = BTreeMap::from([("ca.crt".to_string(), self.root_ca.clone())]);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let Some(cm) = self.config_maps.get(&ObjectKey::new(ns, CONFIG_MAP)) else {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(CONFIG_MAP.into()),
                    annotations: Some(BTreeMap::from([(
                        DESCRIPTION_ANNOTATION.to_string(),
                        DESCRIPTION.to_string(),
                    )])),
                    ..ObjectMeta::default()
                },
                data: Some(data),
                ..ConfigMap::default()
            };
            return match api.create(&PostParams::default(), &cm).await {
                Ok(_) => Ok(()),
                // Don't retry when the namespace is gone or terminating; a lagging
                // cache shows as AlreadyExists and the update event re-checks.
                Err(kube::Error::Api(e)) if matches!(e.code, 404 | 403 | 409) => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        let described = cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .is_some_and(|d| !d.is_empty());
        if cm.data.as_ref() == Some(&data) && described {
            return Ok(());
        }
        let mut cm = (*cm).clone();
        cm.data = Some(data);
        cm.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
        api.replace(CONFIG_MAP, &PostParams::default(), &cm).await?;
        Ok(())
    }
}
