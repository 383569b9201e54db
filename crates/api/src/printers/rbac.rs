//! `rbac.authorization.k8s.io/v1` bindings (roles use the default table, as upstream).

use serde_json::Value;

use super::{age_cell, arr_at, col, name, str_at, Printer, AGE, NAME};

/// Upstream `rbac.SubjectsStrings`: users, groups, `namespace/name` service accounts.
fn subjects(obj: &Value) -> (String, String, String) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr_at(obj, "/subjects") {
        match str_at(s, "/kind") {
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                str_at(s, "/namespace"),
                str_at(s, "/name")
            )),
            "User" => users.push(str_at(s, "/name").to_string()),
            "Group" => groups.push(str_at(s, "/name").to_string()),
            _ => {}
        }
    }
    (users.join(", "), groups.join(", "), sas.join(", "))
}

fn binding_row(obj: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    let (users, groups, sas) = subjects(obj);
    vec![
        name(obj).into(),
        format!(
            "{}/{}",
            str_at(obj, "/roleRef/kind"),
            str_at(obj, "/roleRef/name")
        )
        .into(),
        age_cell(obj, now),
        users.into(),
        groups.into(),
        sas.into(),
    ]
}

/// RoleBindings.
pub static ROLE_BINDING: Printer = Printer {
    columns: &[
        NAME,
        col("Role", "string", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.", 0),
        AGE,
        col("Users", "string", "Users in the roleBinding", 1),
        col("Groups", "string", "Groups in the roleBinding", 1),
        col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding", 1),
    ],
    row: binding_row,
};

/// ClusterRoleBindings.
pub static CLUSTER_ROLE_BINDING: Printer = Printer {
    columns: &[
        NAME,
        col("Role", "string", "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.", 0),
        AGE,
        col("Users", "string", "Users in the clusterRoleBinding", 1),
        col("Groups", "string", "Groups in the clusterRoleBinding", 1),
        col("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding", 1),
    ],
    row: binding_row,
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn binding_cells() {
        let rb = json!({"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [
            {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"}, {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"}]});
        let row = binding_row(&rb, chrono::Utc::now());
        assert_eq!(row[1], "ClusterRole/view");
        assert_eq!(&row[3..], &[json!("alice, bob"), json!(""), json!("ns/sa")]);
    }
}
