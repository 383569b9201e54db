//! Label selectors, node selector terms and taint tolerations, compiled once per pod so
//! that matching against thousands of nodes and pods is a few map look-ups.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Label map as stored in object metadata.
pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Clone, Debug)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    fn new(key: &str, op: &str, values: &[String]) -> Option<Requirement> {
        let op = match op {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        };
        Some(Requirement {
            key: key.to_string(),
            op,
            values: values.to_vec(),
        })
    }

    fn matches(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => !value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

/// A compiled `metav1.LabelSelector`.
#[derive(Clone, Debug)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// A missing selector (or an invalid one) selects nothing.
    nothing: bool,
}

impl Selector {
    /// Selects every object.
    pub fn everything() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    /// Selects no object.
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// `None` selects nothing, `{}` everything (upstream's `LabelSelectorAsSelector`).
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else {
            return Selector::nothing();
        };
        let mut s = Selector::from_map(sel.match_labels.as_ref());
        for e in sel.match_expressions.iter().flatten() {
            match Requirement::new(&e.key, &e.operator, e.values.as_deref().unwrap_or(&[])) {
                Some(r) if !matches!(r.op, Op::Gt | Op::Lt) => s.requirements.push(r),
                _ => return Selector::nothing(),
            }
        }
        s
    }

    /// Equality on every given label (`spec.selector` of a Service, `nodeSelector`).
    pub fn from_map(map: Option<&Labels>) -> Selector {
        Selector {
            requirements: map
                .into_iter()
                .flatten()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                })
                .collect(),
            nothing: false,
        }
    }

    /// Adds `key in (value)` (used for `matchLabelKeys`).
    pub fn require(&mut self, key: &str, value: &str) {
        self.requirements.push(Requirement {
            key: key.to_string(),
            op: Op::In,
            values: vec![value.to_string()],
        });
    }

    /// Adds `key notin (value)` (used for `mismatchLabelKeys`).
    pub fn require_not(&mut self, key: &str, value: &str) {
        self.requirements.push(Requirement {
            key: key.to_string(),
            op: Op::NotIn,
            values: vec![value.to_string()],
        });
    }

    /// Whether the selector selects nothing at all.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether the selector has no requirement (and so selects everything).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&Labels>) -> bool {
        if self.nothing {
            return false;
        }
        self.requirements
            .iter()
            .all(|r| r.matches(labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
    }
}

#[derive(Clone, Debug)]
struct CompiledTerm {
    expressions: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl CompiledTerm {
    fn new(term: &NodeSelectorTerm) -> Option<CompiledTerm> {
        let compile = |reqs: Option<&Vec<NodeSelectorRequirement>>| -> Option<Vec<Requirement>> {
            reqs.into_iter()
                .flatten()
                .map(|r| Requirement::new(&r.key, &r.operator, r.values.as_deref().unwrap_or(&[])))
                .collect()
        };
        let t = CompiledTerm {
            expressions: compile(term.match_expressions.as_ref())?,
            fields: compile(term.match_fields.as_ref())?,
        };
        // An empty term matches no node (upstream's nodeaffinity helper).
        (!t.expressions.is_empty() || !t.fields.is_empty()).then_some(t)
    }

    fn matches(&self, node: &Node) -> bool {
        let labels = node.metadata.labels.as_ref();
        self.expressions
            .iter()
            .all(|r| r.matches(labels.and_then(|l| l.get(&r.key)).map(String::as_str)))
            && self
                .fields
                .iter()
                .all(|r| r.key == "metadata.name" && r.matches(node.metadata.name.as_deref()))
    }
}

/// A compiled `v1.NodeSelector`: its terms are ORed, each term's requirements ANDed.
#[derive(Clone, Debug)]
pub struct NodeSelectorMatcher {
    terms: Vec<CompiledTerm>,
}

impl NodeSelectorMatcher {
    /// Compiles `sel`; terms that cannot match (empty or invalid) are dropped.
    pub fn new(sel: &NodeSelector) -> NodeSelectorMatcher {
        NodeSelectorMatcher {
            terms: sel
                .node_selector_terms
                .iter()
                .filter_map(CompiledTerm::new)
                .collect(),
        }
    }

    /// Whether `node` satisfies any term.
    pub fn matches(&self, node: &Node) -> bool {
        self.terms.iter().any(|t| t.matches(node))
    }

    /// One preferred term (its weight is the caller's).
    pub fn term(term: &NodeSelectorTerm) -> Option<NodeSelectorMatcher> {
        CompiledTerm::new(term).map(|t| NodeSelectorMatcher { terms: vec![t] })
    }
}

/// Upstream's `Toleration.ToleratesTaint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// The first taint passing `considered` that no toleration tolerates.
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    considered: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| considered(t))
        .find(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_follow_upstream_semantics() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
        }))
        .unwrap();
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(Some(&labels(&[("app", "web")]))));
        assert!(!s.matches(Some(&labels(&[("app", "web"), ("tier", "db")]))));
        assert!(!s.matches(None));
        assert!(!Selector::from_label_selector(None).matches(Some(&labels(&[]))));
        assert!(Selector::from_label_selector(Some(&LabelSelector::default())).matches(None));
    }

    #[test]
    fn node_selector_terms_or_and_gt() {
        let sel: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]},
        ]}))
        .unwrap();
        let m = NodeSelectorMatcher::new(&sel);
        let node = |name: &str, l: Labels| Node {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                labels: Some(l),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(m.matches(&node("n1", labels(&[("cores", "8")]))));
        assert!(!m.matches(&node("n1", labels(&[("cores", "4")]))));
        assert!(m.matches(&node("n9", labels(&[]))));
    }

    #[test]
    fn tolerations() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = |v: serde_json::Value| -> Toleration { serde_json::from_value(v).unwrap() };
        assert!(tolerates(&t(json!({"key": "k", "value": "v"})), &taint));
        assert!(!tolerates(&t(json!({"key": "k", "value": "w"})), &taint));
        assert!(tolerates(&t(json!({"operator": "Exists"})), &taint));
        assert!(!tolerates(
            &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
            &taint
        ));
    }
}
