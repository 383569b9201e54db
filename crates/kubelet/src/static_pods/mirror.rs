//! Mirror pods (upstream `pkg/kubelet/pod/mirror_client.go`): a copy of a static pod in
//! the API server, marked `kubernetes.io/config.mirror: <hash>` and owned by the Node,
//! so the pod shows in `kubectl get pods` and is garbage-collected with its node.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use tokio::sync::Mutex;

use super::{CONFIG_HASH, CONFIG_MIRROR};

/// Creates and deletes one node's mirror pods.
pub struct MirrorClient {
    client: kube::Client,
    node_name: String,
    node_uid: Mutex<Option<String>>,
}

impl MirrorClient {
    /// A client for node `node_name`'s mirror pods.
    pub fn new(client: kube::Client, node_name: &str) -> Self {
        MirrorClient {
            client,
            node_name: node_name.to_string(),
            node_uid: Mutex::new(None),
        }
    }

    /// The Node's uid, for the owner reference; `None` until the node is registered.
    async fn node_uid(&self) -> Option<String> {
        let mut uid = self.node_uid.lock().await;
        if uid.is_none() {
            let nodes: Api<Node> = Api::all(self.client.clone());
            *uid = nodes
                .get_opt(&self.node_name)
                .await
                .ok()
                .flatten()
                .and_then(|n| n.metadata.uid);
        }
        uid.clone()
    }

    /// The mirror pod of `pod` as it is sent to the API server.
    pub fn mirror_of(pod: &Pod, node_name: &str, node_uid: &str) -> Pod {
        let mut mirror = pod.clone();
        let hash = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIG_HASH))
            .cloned()
            .unwrap_or_default();
        mirror
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(CONFIG_MIRROR.into(), hash);
        mirror.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: node_name.to_string(),
            uid: node_uid.to_string(),
            controller: Some(true),
            ..Default::default()
        }]);
        // The API server assigns these.
        mirror.metadata.uid = None;
        mirror.metadata.resource_version = None;
        mirror.status = None;
        mirror
    }

    /// Creates the mirror pod of `pod`; returns it (or the existing mirror of the same
    /// hash). Failures are logged and retried on the next sync, as upstream.
    pub async fn create(&self, pod: &Pod) -> Option<Pod> {
        let node_uid = self.node_uid().await?;
        let mirror = Self::mirror_of(pod, &self.node_name, &node_uid);
        let namespace = mirror.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &mirror).await {
            Ok(created) => {
                tracing::info!(pod = %format!("{namespace}/{}", created.metadata.name.as_deref().unwrap_or("")), "created mirror pod");
                Some(created)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let name = mirror.metadata.name.as_deref().unwrap_or_default();
                let existing = api.get_opt(name).await.ok().flatten()?;
                let hash = |p: &Pod| {
                    p.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(CONFIG_MIRROR))
                        .cloned()
                };
                (hash(&existing) == hash(&mirror)).then_some(existing)
            }
            Err(e) => {
                tracing::warn!(pod = %format!("{namespace}/{}", mirror.metadata.name.as_deref().unwrap_or("")), error = %e, "failed creating a mirror pod");
                None
            }
        }
    }

    /// Deletes a mirror pod at once, guarded by its uid (upstream `DeleteMirrorPod`).
    pub async fn delete(&self, mirror: &Pod) {
        let namespace = mirror.metadata.namespace.clone().unwrap_or_default();
        let name = mirror.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: mirror.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => tracing::info!(pod = %format!("{namespace}/{name}"), "deleted mirror pod"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => {
                tracing::warn!(pod = %format!("{namespace}/{name}"), error = %e, "failed deleting a mirror pod")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn mirror_pods_carry_the_hash_and_belong_to_the_node() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";
        let pod = super::super::file::decode(yaml.as_bytes(), Path::new("/m/w"), "n1").unwrap();
        let mirror = MirrorClient::mirror_of(&pod.pod, "n1", "node-uid");
        let annotations = mirror.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations[CONFIG_MIRROR], pod.uid());
        assert_eq!(annotations[CONFIG_HASH], pod.uid());
        let owner = &mirror.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "n1", "node-uid")
        );
        assert_eq!(owner.controller, Some(true));
        assert!(mirror.metadata.uid.is_none() && mirror.status.is_none());
        assert_eq!(mirror.metadata.name.as_deref(), Some("web-n1"));
    }
}
