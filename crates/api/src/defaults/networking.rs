//! `networking.k8s.io/v1` defaults.

use k8s_openapi::api::networking::v1::{IngressClass, NetworkPolicy};

use super::default_str;

/// Ports default to TCP; policy types default to `Ingress`, plus `Egress` when egress rules
/// are present.
pub(super) fn network_policy(np: &mut NetworkPolicy) {
    let spec = np.spec.get_or_insert_with(Default::default);
    let ingress_ports = spec
        .ingress
        .iter_mut()
        .flatten()
        .flat_map(|r| r.ports.iter_mut().flatten());
    let egress_ports = spec
        .egress
        .iter_mut()
        .flatten()
        .flat_map(|r| r.ports.iter_mut().flatten());
    for p in ingress_ports.chain(egress_ports) {
        default_str(&mut p.protocol, "TCP");
    }
    if spec.policy_types.as_ref().is_none_or(|t| t.is_empty()) {
        let mut types = vec!["Ingress".to_string()];
        if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
            types.push("Egress".into());
        }
        spec.policy_types = Some(types);
    }
}

/// Ingress class parameters are cluster-scoped unless said otherwise.
pub(super) fn ingress_class(ic: &mut IngressClass) {
    if let Some(p) = ic.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
        p.scope.get_or_insert_with(|| "Cluster".into());
    }
}
