//! Defaults of the small groups: `discovery.k8s.io/v1` and `scheduling.k8s.io/v1`.

use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::scheduling::v1::PriorityClass;

pub(super) fn endpoint_slice(es: &mut EndpointSlice) {
    for p in es.ports.iter_mut().flatten() {
        p.name.get_or_insert_with(String::new);
        p.protocol.get_or_insert_with(|| "TCP".into());
    }
}

pub(super) fn priority_class(pc: &mut PriorityClass) {
    pc.preemption_policy
        .get_or_insert_with(|| "PreemptLowerPriority".into());
}
