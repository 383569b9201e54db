//! `rbac.authorization.k8s.io/v1` defaults: role references and subjects get their API group.

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn role_binding(rb: &mut RoleBinding) {
    role_ref(&mut rb.role_ref);
    rb.subjects.iter_mut().flatten().for_each(subject);
}

pub(super) fn cluster_role_binding(crb: &mut ClusterRoleBinding) {
    role_ref(&mut crb.role_ref);
    crb.subjects.iter_mut().flatten().for_each(subject);
}

fn role_ref(r: &mut RoleRef) {
    if r.api_group.is_empty() {
        r.api_group = RBAC_GROUP.into();
    }
}

/// Users and groups belong to the RBAC group; service accounts to the core group (`""`,
/// which upstream omits).
fn subject(s: &mut Subject) {
    if s.api_group.as_deref().unwrap_or("").is_empty()
        && matches!(s.kind.as_str(), "User" | "Group")
    {
        s.api_group = Some(RBAC_GROUP.into());
    }
}
