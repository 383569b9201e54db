//! Upstream validation (`pkg/apis/<group>/validation` and apimachinery's ObjectMeta and
//! string-format checks), with upstream's messages and field paths.
//!
//! Objects arrive decoded and defaulted; each kind is decoded again into its `k8s-openapi`
//! type, its metadata checked ([`meta`]), then its own rules (one module per API group).
//! Kinds not listed here (custom resources, review objects) are not validated here.

mod apps;
mod autoscaling;
mod batch;
mod core;
mod cron;
mod go_format;
mod ingress;
pub mod meta;
pub mod names;
pub mod path;
mod pod;
mod pod_scheduling;
mod rbac;
mod security_context;
mod small_groups;

use k8s_openapi::api;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde_json::Value;

use self::meta::{
    name_is_dns1035_label, name_is_dns_label, name_is_dns_subdomain, name_is_path_segment,
    validate_object_meta, validate_object_meta_update, NameFn,
};
use self::path::FieldPath;
use crate::{FieldError, FieldErrorType, ResourceInfo};

/// Validate `obj` (and, on update, its transition from `old`) for `info`'s kind.
pub fn validate(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    if (info.group, info.kind) == ("autoscaling", "HorizontalPodAutoscaler") {
        return validate_hpa(info, obj, old);
    }
    let subdomain: NameFn = name_is_dns_subdomain;
    macro_rules! kinds {
        ($( ($g:literal, $k:literal) => $ty:ty, $name:expr, $check:expr; )*) => {
            match (info.group, info.kind) {
                $( ($g, $k) => typed::<$ty>(obj, old, $name, $check), )*
                _ => Vec::new(),
            }
        };
    }
    kinds! {
        ("", "Pod") => api::core::v1::Pod, subdomain, pod::validate_pod;
        ("", "PodTemplate") => api::core::v1::PodTemplate, subdomain, core::validate_pod_template;
        ("", "ReplicationController") => api::core::v1::ReplicationController, subdomain, core::validate_replication_controller;
        ("", "Service") => api::core::v1::Service, name_is_dns1035_label, core::validate_service;
        ("", "Endpoints") => api::core::v1::Endpoints, subdomain, core::validate_endpoints;
        ("", "Namespace") => api::core::v1::Namespace, name_is_dns_label, core::validate_namespace;
        ("", "Node") => api::core::v1::Node, subdomain, core::validate_node;
        ("", "ConfigMap") => api::core::v1::ConfigMap, subdomain, core::validate_config_map;
        ("", "Secret") => api::core::v1::Secret, subdomain, core::validate_secret;
        ("", "ServiceAccount") => api::core::v1::ServiceAccount, subdomain, core::validate_service_account;
        ("", "Event") => api::core::v1::Event, subdomain, core::validate_event;
        ("", "PersistentVolume") => api::core::v1::PersistentVolume, subdomain, core::validate_pv;
        ("", "PersistentVolumeClaim") => api::core::v1::PersistentVolumeClaim, subdomain, core::validate_pvc;
        ("", "ResourceQuota") => api::core::v1::ResourceQuota, subdomain, core::validate_resource_quota;
        ("", "LimitRange") => api::core::v1::LimitRange, subdomain, core::validate_limit_range;
        ("apps", "Deployment") => api::apps::v1::Deployment, subdomain, apps::validate_deployment;
        ("apps", "ReplicaSet") => api::apps::v1::ReplicaSet, subdomain, apps::validate_replica_set;
        ("apps", "StatefulSet") => api::apps::v1::StatefulSet, subdomain, apps::validate_stateful_set;
        ("apps", "DaemonSet") => api::apps::v1::DaemonSet, subdomain, apps::validate_daemon_set;
        ("apps", "ControllerRevision") => api::apps::v1::ControllerRevision, subdomain, apps::validate_controller_revision;
        ("batch", "Job") => api::batch::v1::Job, subdomain, batch::validate_job;
        ("batch", "CronJob") => api::batch::v1::CronJob, subdomain, batch::validate_cron_job;
        ("policy", "PodDisruptionBudget") => api::policy::v1::PodDisruptionBudget, subdomain, small_groups::validate_pdb;
        ("rbac.authorization.k8s.io", "Role") => api::rbac::v1::Role, name_is_path_segment, rbac::validate_role;
        ("rbac.authorization.k8s.io", "ClusterRole") => api::rbac::v1::ClusterRole, name_is_path_segment, rbac::validate_cluster_role;
        ("rbac.authorization.k8s.io", "RoleBinding") => api::rbac::v1::RoleBinding, name_is_path_segment, rbac::validate_role_binding;
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => api::rbac::v1::ClusterRoleBinding, name_is_path_segment, rbac::validate_cluster_role_binding;
        ("networking.k8s.io", "NetworkPolicy") => api::networking::v1::NetworkPolicy, subdomain, small_groups::validate_network_policy;
        ("networking.k8s.io", "Ingress") => api::networking::v1::Ingress, subdomain, ingress::validate_ingress;
        ("networking.k8s.io", "IngressClass") => api::networking::v1::IngressClass, subdomain, no_rules;
        ("storage.k8s.io", "StorageClass") => api::storage::v1::StorageClass, subdomain, small_groups::validate_storage_class;
        ("storage.k8s.io", "CSIDriver") => api::storage::v1::CSIDriver, subdomain, no_rules;
        ("storage.k8s.io", "CSINode") => api::storage::v1::CSINode, subdomain, no_rules;
        ("storage.k8s.io", "VolumeAttachment") => api::storage::v1::VolumeAttachment, subdomain, no_rules;
        ("coordination.k8s.io", "Lease") => api::coordination::v1::Lease, subdomain, small_groups::validate_lease;
        ("discovery.k8s.io", "EndpointSlice") => api::discovery::v1::EndpointSlice, subdomain, small_groups::validate_endpoint_slice;
        ("scheduling.k8s.io", "PriorityClass") => api::scheduling::v1::PriorityClass, subdomain, small_groups::validate_priority_class;
        ("events.k8s.io", "Event") => api::events::v1::Event, subdomain, no_rules;
        ("node.k8s.io", "RuntimeClass") => api::node::v1::RuntimeClass, subdomain, no_rules;
    }
}

/// HorizontalPodAutoscalers are served in two versions with different types.
fn validate_hpa(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match info.version {
        "v1" => typed::<api::autoscaling::v1::HorizontalPodAutoscaler>(
            obj,
            old,
            name_is_dns_subdomain,
            autoscaling::validate_hpa_v1,
        ),
        "v2" => typed::<api::autoscaling::v2::HorizontalPodAutoscaler>(
            obj,
            old,
            name_is_dns_subdomain,
            autoscaling::validate_hpa_v2,
        ),
        _ => Vec::new(),
    }
}

/// Kinds whose only rules are the metadata ones.
fn no_rules<T>(_: &T, _: Option<&T>) -> Vec<FieldError> {
    Vec::new()
}

fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, String> {
    let mut v = v.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("apiVersion");
        m.remove("kind");
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// An object that does not decode (it was decoded once already) is an internal error.
fn internal(detail: String) -> Vec<FieldError> {
    vec![FieldError {
        field: String::new(),
        type_: FieldErrorType::Internal,
        detail,
    }]
}

fn typed<T>(
    obj: &Value,
    old: Option<&Value>,
    name_fn: NameFn,
    check: fn(&T, Option<&T>) -> Vec<FieldError>,
) -> Vec<FieldError>
where
    T: DeserializeOwned + k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    let new: T = match decode(obj) {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let old: Option<T> = match old.map(decode).transpose() {
        Ok(o) => o,
        Err(e) => return internal(e),
    };
    let meta_path = FieldPath::new("metadata");
    let mut errs = match &old {
        None => validate_object_meta(new.metadata(), name_fn, &meta_path),
        Some(o) => validate_object_meta_update(new.metadata(), o.metadata(), &meta_path),
    };
    errs.extend(check(&new, old.as_ref()));
    errs
}

#[cfg(test)]
mod tests;
