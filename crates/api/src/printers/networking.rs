//! `networking.k8s.io/v1` kinds.

use serde_json::Value;

use super::{age_cell, arr_at, col, name, str_at, Printer, AGE, NAME};
use crate::printers::core::load_balancer_ingress;
use crate::selectors::labels::format_label_selector;

/// NetworkPolicies.
pub static NETWORK_POLICY: Printer = Printer {
    columns: &[
        NAME,
        col("Pod-Selector", "string", "Selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.", 0),
        AGE,
    ],
    row: |obj, now| {
        // podSelector is a non-pointer struct upstream: absent means empty, i.e. `<none>`.
        let sel = obj.pointer("/spec/podSelector").cloned().unwrap_or_else(|| serde_json::json!({}));
        vec![name(obj).into(), format_label_selector(Some(&sel)).into(), age_cell(obj, now)]
    },
};

/// Upstream `formatHosts`: up to three hosts, `*` when none.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - MAX)
    } else {
        ret
    }
}

/// Ingresses.
pub static INGRESS: Printer = Printer {
    columns: &[
        NAME,
        col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration", 0),
        col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule", 0),
        col("Address", "string", "Address is a list containing ingress points for the load-balancer", 0),
        col("Ports", "string", "Ports of TLS configurations that open", 0),
        AGE,
    ],
    row: |obj, now| {
        let class = obj.pointer("/spec/ingressClassName").and_then(Value::as_str).unwrap_or("<none>");
        let ports = if arr_at(obj, "/spec/tls").is_empty() { "80" } else { "80, 443" };
        vec![
            name(obj).into(),
            class.into(),
            format_hosts(arr_at(obj, "/spec/rules")).into(),
            load_balancer_ingress(obj.pointer("/status/loadBalancer"), true).into(),
            ports.into(),
            age_cell(obj, now),
        ]
    },
};

/// IngressClasses.
pub static INGRESS_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Controller",
            "string",
            "Controller that is responsible for handling this class",
            0,
        ),
        col(
            "Parameters",
            "string",
            "A reference to a resource with additional parameters",
            0,
        ),
        AGE,
    ],
    row: |obj, now| {
        let parameters = match obj.pointer("/spec/parameters") {
            Some(p) if p.is_object() => {
                let mut s = str_at(p, "/kind").to_string();
                if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                    s = format!("{s}.{g}");
                }
                format!("{s}/{}", str_at(p, "/name"))
            }
            _ => "<none>".into(),
        };
        vec![
            name(obj).into(),
            str_at(obj, "/spec/controller").into(),
            parameters.into(),
            age_cell(obj, now),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ingress_cells() {
        let ing = json!({"spec": {"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}], "tls": [{}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}});
        let row = (INGRESS.row)(&ing, chrono::Utc::now());
        assert_eq!(
            &row[1..5],
            &[
                json!("<none>"),
                json!("a,b,c + 2 more..."),
                json!("1.1.1.1"),
                json!("80, 443")
            ]
        );
        assert_eq!(format_hosts(&[]), "*");
    }
}
