//! Small kinds of the remaining groups: PodDisruptionBudgets (`policy`), Leases
//! (`coordination.k8s.io`), EndpointSlices (`discovery.k8s.io`), PriorityClasses
//! (`scheduling.k8s.io`) and RuntimeClasses (`node.k8s.io`).

use serde_json::Value;

use super::{
    age_cell, arr_at, col, int_at, int_or_string, list_with_more, name, str_at, Printer, AGE, NAME,
};

/// PodDisruptionBudgets.
pub static POD_DISRUPTION_BUDGET: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
            0,
        ),
        col(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
            0,
        ),
        col(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
            0,
        ),
        AGE,
    ],
    row: |pdb, now| {
        let field = |p: &str| {
            pdb.pointer(p)
                .filter(|v| !v.is_null())
                .map(int_or_string)
                .unwrap_or("N/A".into())
        };
        vec![
            name(pdb).into(),
            field("/spec/minAvailable").into(),
            field("/spec/maxUnavailable").into(),
            int_at(pdb, "/status/disruptionsAllowed").into(),
            age_cell(pdb, now),
        ]
    },
};

/// Leases.
pub static LEASE: Printer = Printer {
    columns: &[NAME, col("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.", 0), AGE],
    row: |l, now| vec![name(l).into(), str_at(l, "/spec/holderIdentity").into(), age_cell(l, now)],
};

/// EndpointSlices.
pub static ENDPOINT_SLICE: Printer = Printer {
    columns: &[
        NAME,
        col("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.", 0),
        col("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.", 0),
        col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.", 0),
        AGE,
    ],
    row: |s, now| vec![name(s).into(), str_at(s, "/addressType").into(), slice_ports(s).into(), slice_endpoints(s).into(), age_cell(s, now)],
};

const MAX_LISTED: usize = 3;

/// Upstream `formatDiscoveryPorts`: port numbers (or names, or `*`).
fn slice_ports(s: &Value) -> String {
    let ports = arr_at(s, "/ports");
    let mut list = Vec::new();
    let mut more = false;
    for p in ports {
        if list.len() < MAX_LISTED {
            let text = match p.get("port").and_then(Value::as_i64) {
                Some(n) => n.to_string(),
                None => p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("*")
                    .to_string(),
            };
            list.push(text);
        } else if list.len() == MAX_LISTED {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), MAX_LISTED)
}

/// Upstream `formatDiscoveryEndpoints`: addresses of all endpoints.
fn slice_endpoints(s: &Value) -> String {
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ep in arr_at(s, "/endpoints") {
        for a in arr_at(ep, "/addresses").iter().filter_map(Value::as_str) {
            if list.len() < MAX_LISTED {
                list.push(a.to_string());
            } else if list.len() == MAX_LISTED {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, MAX_LISTED)
}

/// PriorityClasses.
pub static PRIORITY_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col("Value", "integer", "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.", 0),
        col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.", 0),
        AGE,
        col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.", 0),
    ],
    row: |pc, now| {
        vec![
            name(pc).into(),
            int_at(pc, "/value").into(),
            pc.get("globalDefault").and_then(Value::as_bool).unwrap_or(false).into(),
            age_cell(pc, now),
            str_at(pc, "/preemptionPolicy").into(),
        ]
    },
};

/// RuntimeClasses.
pub static RUNTIME_CLASS: Printer = Printer {
    columns: &[NAME, col("Handler", "string", "", 0), AGE],
    row: |rc, now| {
        vec![
            name(rc).into(),
            str_at(rc, "/handler").into(),
            age_cell(rc, now),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pdb_and_slice_cells() {
        let pdb = json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
        let row = (POD_DISRUPTION_BUDGET.row)(&pdb, chrono::Utc::now());
        assert_eq!(&row[1..4], &[json!("50%"), json!("N/A"), json!(1)]);
        let s = json!({"addressType": "IPv4", "ports": [{"port": 80}, {"name": "x"}, {}, {"port": 1}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]});
        assert_eq!(slice_ports(&s), "80,x,* + 1 more...");
        assert_eq!(
            slice_endpoints(&s),
            "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."
        );
        assert_eq!(slice_ports(&json!({})), "<unset>");
    }
}
