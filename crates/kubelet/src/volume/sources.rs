//! The API objects volumes and environment variables read: ConfigMaps, Secrets and
//! Services, from shared informers (upstream's watch-based configmap/secret managers and
//! the kubelet's service lister). A missing object gives upstream's not-found message
//! (`configmap "x" not found`: the managers name the resource in the singular).

use std::sync::Arc;

use k8rs_client::{Informer, Informers, ObjectKey};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};

/// Where ConfigMaps, Secrets and Services are looked up.
pub trait ObjectSource: Send + Sync {
    /// A ConfigMap, or `configmap "name" not found`.
    fn config_map(&self, namespace: &str, name: &str) -> Result<Arc<ConfigMap>, NotFound>;
    /// A Secret, or `secret "name" not found`.
    fn secret(&self, namespace: &str, name: &str) -> Result<Arc<Secret>, NotFound>;
    /// Every Service.
    fn services(&self) -> Vec<Arc<Service>>;
}

/// The object does not exist (the only lookup failure a cache has).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl NotFound {
    /// Upstream's `NewNotFound(Resource(kind), name)` message.
    pub fn new(kind: &str, name: &str) -> Self {
        NotFound(format!("{kind} \"{name}\" not found"))
    }
}

/// [`ObjectSource`] on shared informers.
#[derive(Clone)]
pub struct InformerSource {
    /// ConfigMaps in every namespace.
    pub config_maps: Informer<ConfigMap>,
    /// Secrets in every namespace.
    pub secrets: Informer<Secret>,
    /// Services in every namespace.
    pub services: Informer<Service>,
}

impl InformerSource {
    /// Starts (or shares) the three informers.
    pub fn new(informers: &Informers) -> Self {
        InformerSource {
            config_maps: informers.get::<ConfigMap>(),
            secrets: informers.get::<Secret>(),
            services: informers.get::<Service>(),
        }
    }

    /// Waits until every informer has listed once, so that "not found" means not found.
    pub async fn wait_synced(&self) {
        self.config_maps.wait_synced().await;
        self.secrets.wait_synced().await;
        self.services.wait_synced().await;
    }
}

impl ObjectSource for InformerSource {
    fn config_map(&self, namespace: &str, name: &str) -> Result<Arc<ConfigMap>, NotFound> {
        self.config_maps
            .get(&ObjectKey::new(namespace, name))
            .ok_or_else(|| NotFound::new("configmap", name))
    }

    fn secret(&self, namespace: &str, name: &str) -> Result<Arc<Secret>, NotFound> {
        self.secrets
            .get(&ObjectKey::new(namespace, name))
            .ok_or_else(|| NotFound::new("secret", name))
    }

    fn services(&self) -> Vec<Arc<Service>> {
        self.services.list()
    }
}

/// A fixed set of objects (tests).
#[cfg(test)]
#[derive(Default)]
pub struct StaticSource {
    pub config_maps: Vec<ConfigMap>,
    pub secrets: Vec<Secret>,
    pub services: Vec<Service>,
}

#[cfg(test)]
impl ObjectSource for StaticSource {
    fn config_map(&self, namespace: &str, name: &str) -> Result<Arc<ConfigMap>, NotFound> {
        self.config_maps
            .iter()
            .find(|c| {
                c.metadata.namespace.as_deref() == Some(namespace)
                    && c.metadata.name.as_deref() == Some(name)
            })
            .map(|c| Arc::new(c.clone()))
            .ok_or_else(|| NotFound::new("configmap", name))
    }

    fn secret(&self, namespace: &str, name: &str) -> Result<Arc<Secret>, NotFound> {
        self.secrets
            .iter()
            .find(|c| {
                c.metadata.namespace.as_deref() == Some(namespace)
                    && c.metadata.name.as_deref() == Some(name)
            })
            .map(|c| Arc::new(c.clone()))
            .ok_or_else(|| NotFound::new("secret", name))
    }

    fn services(&self) -> Vec<Arc<Service>> {
        self.services.iter().cloned().map(Arc::new).collect()
    }
}
