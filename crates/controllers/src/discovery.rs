//! The API resources a controller can act on, found through discovery (upstream's
//! `discovery.ServerPreferredResources` filtered by verbs), for the controllers that work
//! on every resource: the garbage collector and namespace deletion.

use std::collections::HashMap;

use kube::core::gvk::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};

/// One served resource: how to address it and what it supports.
#[derive(Clone, Debug)]
pub struct ServedResource {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The verbs the server lists for it.
    pub verbs: Vec<String>,
}

impl ServedResource {
    /// Whether every one of `verbs` is supported.
    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs.iter().all(|v| self.verbs.iter().any(|s| s == v))
    }

    /// `plural.group` (`deployments.apps`, `pods`), as upstream names resources in messages.
    pub fn group_resource(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        }
    }
}

/// A snapshot of discovery: the preferred version of every resource, plus every served
/// version by group, version and kind (ownerReferences may name any served version).
#[derive(Clone, Debug, Default)]
pub struct Resources {
    preferred: Vec<ServedResource>,
    by_gvk: HashMap<(String, String, String), ServedResource>,
}

impl Resources {
    /// Runs discovery against the server.
    pub async fn discover(client: &kube::Client) -> anyhow::Result<Self> {
        let discovery = Discovery::new(client.clone()).run().await?;
        let mut resources = Resources::default();
        for group in discovery.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    let served = served(ar, &caps);
                    resources.by_gvk.insert(
                        (
                            served.resource.group.clone(),
                            served.resource.version.clone(),
                            served.resource.kind.clone(),
                        ),
                        served,
                    );
                }
            }
            for (ar, caps) in group.recommended_resources() {
                resources.preferred.push(served(ar, &caps));
            }
        }
        Ok(resources)
    }

    /// The preferred version of every resource that supports all of `verbs`.
    pub fn with_verbs<'a>(
        &'a self,
        verbs: &'a [&'a str],
    ) -> impl Iterator<Item = &'a ServedResource> + 'a {
        self.preferred.iter().filter(move |r| r.supports(verbs))
    }

    /// The resource serving `kind` at `api_version` (`apps/v1`, `v1`).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&ServedResource> {
        let gvk = parse_api_version(api_version, kind);
        self.by_gvk.get(&(gvk.group, gvk.version, gvk.kind))
    }
}

/// `apps/v1` + `Deployment` → group `apps`, version `v1`; `v1` → the core group.
pub fn parse_api_version(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

fn served(resource: ApiResource, caps: &ApiCapabilities) -> ServedResource {
    ServedResource {
        resource,
        namespaced: caps.scope == Scope::Namespaced,
        verbs: caps.operations.clone(),
    }
}
