//! Upstream defaulting (`pkg/apis/<group>/<version>/defaults.go` and the generated
//! `zz_generated.defaults.go` that applies them to nested pod templates), applied while
//! decoding.
//!
//! Decoding goes through the `k8s-openapi` type of the kind, which drops unknown fields as
//! upstream's decoder does; one module per API group holds that group's defaulting functions.

mod apps;
mod autoscaling;
mod batch;
mod core;
mod decode_error;
mod networking;
mod other_groups;
mod quantities;
mod rbac;
mod storage;

use k8s_openapi::api;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::schema::Schema;
use crate::ResourceInfo;

pub use decode_error::decode_error_message;

/// Decode `obj` as the typed form of `info`'s kind (unknown fields dropped), apply the
/// kind's defaults, and encode it back. `Err` carries a decode error in upstream's wording.
/// Kinds this table does not know pass through unchanged.
pub fn decode_and_default(info: &ResourceInfo, obj: Value) -> Result<Value, String> {
    let key = (info.group, info.version, info.kind);
    macro_rules! kinds {
        ($( ($g:literal, $v:literal, $k:literal) => $ty:ty, $apply:expr; )*) => {
            match key {
                $( ($g, $v, $k) => typed::<$ty>(info, obj, $apply), )*
                _ => Ok(obj),
            }
        };
    }
    kinds! {
        ("", "v1", "Pod") => api::core::v1::Pod, core::pod;
        ("", "v1", "PodTemplate") => api::core::v1::PodTemplate, core::pod_template;
        ("", "v1", "ReplicationController") => api::core::v1::ReplicationController, core::replication_controller;
        ("", "v1", "Service") => api::core::v1::Service, core::service;
        ("", "v1", "Endpoints") => api::core::v1::Endpoints, core::endpoints;
        ("", "v1", "Namespace") => api::core::v1::Namespace, core::namespace;
        ("", "v1", "Node") => api::core::v1::Node, core::node;
        ("", "v1", "ConfigMap") => api::core::v1::ConfigMap, nothing;
        ("", "v1", "Secret") => api::core::v1::Secret, core::secret;
        ("", "v1", "ServiceAccount") => api::core::v1::ServiceAccount, nothing;
        ("", "v1", "Event") => api::core::v1::Event, nothing;
        ("", "v1", "PersistentVolume") => api::core::v1::PersistentVolume, core::persistent_volume;
        ("", "v1", "PersistentVolumeClaim") => api::core::v1::PersistentVolumeClaim, core::persistent_volume_claim;
        ("", "v1", "ResourceQuota") => api::core::v1::ResourceQuota, nothing;
        ("", "v1", "LimitRange") => api::core::v1::LimitRange, core::limit_range;
        ("", "v1", "Binding") => api::core::v1::Binding, nothing;
        ("apps", "v1", "Deployment") => api::apps::v1::Deployment, apps::deployment;
        ("apps", "v1", "ReplicaSet") => api::apps::v1::ReplicaSet, apps::replica_set;
        ("apps", "v1", "StatefulSet") => api::apps::v1::StatefulSet, apps::stateful_set;
        ("apps", "v1", "DaemonSet") => api::apps::v1::DaemonSet, apps::daemon_set;
        ("apps", "v1", "ControllerRevision") => api::apps::v1::ControllerRevision, nothing;
        ("batch", "v1", "Job") => api::batch::v1::Job, batch::job;
        ("batch", "v1", "CronJob") => api::batch::v1::CronJob, batch::cron_job;
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => api::autoscaling::v1::HorizontalPodAutoscaler, autoscaling::hpa_v1;
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => api::autoscaling::v2::HorizontalPodAutoscaler, autoscaling::hpa_v2;
        ("autoscaling", "v1", "Scale") => api::autoscaling::v1::Scale, nothing;
        ("policy", "v1", "PodDisruptionBudget") => api::policy::v1::PodDisruptionBudget, nothing;
        ("policy", "v1", "Eviction") => api::policy::v1::Eviction, nothing;
        ("rbac.authorization.k8s.io", "v1", "Role") => api::rbac::v1::Role, nothing;
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => api::rbac::v1::ClusterRole, nothing;
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => api::rbac::v1::RoleBinding, rbac::role_binding;
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => api::rbac::v1::ClusterRoleBinding, rbac::cluster_role_binding;
        ("networking.k8s.io", "v1", "NetworkPolicy") => api::networking::v1::NetworkPolicy, networking::network_policy;
        ("networking.k8s.io", "v1", "Ingress") => api::networking::v1::Ingress, nothing;
        ("networking.k8s.io", "v1", "IngressClass") => api::networking::v1::IngressClass, networking::ingress_class;
        ("networking.k8s.io", "v1", "IPAddress") => api::networking::v1::IPAddress, nothing;
        ("networking.k8s.io", "v1", "ServiceCIDR") => api::networking::v1::ServiceCIDR, nothing;
        ("storage.k8s.io", "v1", "StorageClass") => api::storage::v1::StorageClass, storage::storage_class;
        ("storage.k8s.io", "v1", "CSIDriver") => api::storage::v1::CSIDriver, storage::csi_driver;
        ("storage.k8s.io", "v1", "CSINode") => api::storage::v1::CSINode, nothing;
        ("storage.k8s.io", "v1", "CSIStorageCapacity") => api::storage::v1::CSIStorageCapacity, nothing;
        ("storage.k8s.io", "v1", "VolumeAttachment") => api::storage::v1::VolumeAttachment, storage::volume_attachment;
        ("coordination.k8s.io", "v1", "Lease") => api::coordination::v1::Lease, nothing;
        ("discovery.k8s.io", "v1", "EndpointSlice") => api::discovery::v1::EndpointSlice, other_groups::endpoint_slice;
        ("scheduling.k8s.io", "v1", "PriorityClass") => api::scheduling::v1::PriorityClass, other_groups::priority_class;
        ("events.k8s.io", "v1", "Event") => api::events::v1::Event, nothing;
        ("node.k8s.io", "v1", "RuntimeClass") => api::node::v1::RuntimeClass, nothing;
        ("certificates.k8s.io", "v1", "CertificateSigningRequest") => api::certificates::v1::CertificateSigningRequest, nothing;
        ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration") => api::admissionregistration::v1::ValidatingWebhookConfiguration, nothing;
        ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration") => api::admissionregistration::v1::MutatingWebhookConfiguration, nothing;
    }
}

/// Upstream's Pod defaulting on a typed pod: the kubelet applies it to static pods read
/// from manifest files, which never pass through the API server's decoder.
pub fn default_pod(pod: &mut api::core::v1::Pod) {
    core::pod(pod);
}

/// Kinds without defaulting functions still go through decoding (unknown fields dropped).
fn nothing<T>(_: &mut T) {}

fn typed<T: DeserializeOwned + Serialize>(
    info: &ResourceInfo,
    mut obj: Value,
    apply: fn(&mut T),
) -> Result<Value, String> {
    // apiVersion and kind are checked by the server (and written back by the typed form).
    if let Some(m) = obj.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    // Go's decoder treats `null` as "leave unset"; serde would reject it for required fields.
    strip_nulls(&mut obj);
    // Quantities are decoded (and so validated) and re-encoded as upstream's typed decode does.
    if let Some(schema) = Schema::for_kind(info.group, info.version, info.kind) {
        quantities::canonicalize(schema, &mut obj).map_err(|e| {
            format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: {e}",
                kind = info.kind,
                version = info.version
            )
        })?;
    }
    let mut typed: T = match serde_path_to_error::deserialize(&obj) {
        Ok(t) => t,
        Err(e) => return Err(decode_error_message::<T>(info, &obj, &e)),
    };
    apply(&mut typed);
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Remove `null` members of objects, recursively.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Set a string field Go treats as unset when empty.
fn default_str(field: &mut Option<String>, value: &str) {
    if field.as_deref().unwrap_or("").is_empty() {
        *field = Some(value.to_string());
    }
}

/// Set an integer field Go treats as unset when zero (a non-pointer `int32`).
fn default_i32(field: &mut Option<i32>, value: i32) {
    if field.unwrap_or(0) == 0 {
        *field = Some(value);
    }
}

#[cfg(test)]
mod tests;
