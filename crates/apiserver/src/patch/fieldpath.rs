//! Field paths and field sets as structured-merge-diff defines them, with the `FieldsV1`
//! encoding used in `metadata.managedFields` (`f:spec`, `k:{"name":"web"}`, `v:"a"`, `i:0`,
//! `.` for the node itself).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a path: a field name, a list item by its key fields, a set item by its value,
/// or a list index.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// Object member (`f:name`, shown `.name`).
    Field(String),
    /// Item of a map list, identified by its key fields sorted by name
    /// (`k:{"name":"web"}`, shown `[name="web"]`).
    Key(Vec<(String, Value)>),
    /// Item of a set list (`v:"a"`, shown `[="a"]`).
    Value(Value),
    /// Item of a list by position (`i:0`, shown `[0]`).
    Index(usize),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element.
    pub fn serialize(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let object: Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", Value::Object(object))
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(index) => format!("i:{index}"),
        }
    }

    /// Parses a `FieldsV1` key (anything but `.`).
    pub fn deserialize(key: &str) -> Result<PathElement, String> {
        let Some((kind, rest)) = key.split_once(':') else {
            return Err(format!("missing colon: {key}"));
        };
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "v" => serde_json::from_str(rest)
                .map(PathElement::Value)
                .map_err(|err| err.to_string()),
            "k" => match serde_json::from_str::<Value>(rest).map_err(|err| err.to_string())? {
                Value::Object(fields) => {
                    let mut fields: Vec<(String, Value)> = fields.into_iter().collect();
                    fields.sort_by(|a, b| a.0.cmp(&b.0));
                    Ok(PathElement::Key(fields))
                }
                _ => Err(format!("key must be an object: {key}")),
            },
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|err: std::num::ParseIntError| err.to_string()),
            _ => Err("unknown path element type".into()),
        }
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for PathElement {}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => compare_field_lists(a, b),
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

fn compare_field_lists(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for (left, right) in a.iter().zip(b.iter()) {
        let ordering = left
            .0
            .cmp(&right.0)
            .then_with(|| compare_values(&left.1, &right.1));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// structured-merge-diff's total order on values: numbers < strings < booleans < lists < maps
/// < null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(value: &Value) -> u8 {
        match value {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (left, right) in x.iter().zip(y.iter()) {
                let ordering = compare_values(left, right);
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut x: Vec<(&String, &Value)> = x.iter().collect();
            let mut y: Vec<(&String, &Value)> = y.iter().collect();
            x.sort_by(|a, b| a.0.cmp(b.0));
            y.sort_by(|a, b| a.0.cmp(b.0));
            for (left, right) in x.iter().zip(y.iter()) {
                let ordering = left
                    .0
                    .cmp(right.0)
                    .then_with(|| compare_values(left.1, right.1));
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// structured-merge-diff's `value.ToString`, used in path strings.
fn value_to_string(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        // Go's %q; JSON string escaping matches it for printable text.
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(value_to_string).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(map) => map
            .iter()
            .map(|(key, value)| format!("{key}={}", value_to_string(value)))
            .collect(),
        other => other.to_string(),
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name}={}", value_to_string(value)))
                    .collect();
                write!(f, "[{}]", fields.join(","))
            }
            PathElement::Value(value) => write!(f, "[={}]", value_to_string(value)),
            PathElement::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from the object root, e.g. `.spec.containers[name="web"].image`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Path(pub Vec<PathElement>);

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for element in &self.0 {
            write!(f, "{element}")?;
        }
        Ok(())
    }
}

/// A set of paths, stored as a trie: `members` are paths ending here, `children` lead further.
/// A node can be both (a list item owned itself and through its fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// Whether no path is in the set.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds `path` (the empty path is ignored).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether `path` itself is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|child| child.has(rest)),
        }
    }

    /// The paths below `element`, with `element` stripped (upstream `WithPrefix`).
    pub fn with_prefix(&self, element: &PathElement) -> Option<&FieldSet> {
        self.children.get(element).filter(|child| !child.is_empty())
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut result = self.clone();
        result.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            let merged = match result.children.get(element) {
                Some(existing) => existing.union(child),
                None => child.clone(),
            };
            result.children.insert(element.clone(), merged);
        }
        result
    }

    /// Paths in `self` but not in `other` (exact paths: removing `a` keeps `a.b`).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            let remaining = match other.children.get(element) {
                Some(removed) => child.difference(removed),
                None => child.clone(),
            };
            if !remaining.is_empty() {
                children.insert(element.clone(), remaining);
            }
        }
        FieldSet { members, children }
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (element, child) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                let common = child.intersection(theirs);
                if !common.is_empty() {
                    children.insert(element.clone(), common);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Every path of the set: this level's members first, then each child's paths in order
    /// (upstream `Set.Iterate`).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for member in &self.members {
            let mut path = prefix.clone();
            path.push(member.clone());
            out.push(Path(path));
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Members and children of this level, for walks that follow the value's structure.
    pub(crate) fn members(&self) -> &BTreeSet<PathElement> {
        &self.members
    }

    pub(crate) fn children(&self) -> &BTreeMap<PathElement, FieldSet> {
        &self.children
    }

    pub(crate) fn insert_member(&mut self, element: PathElement) {
        self.members.insert(element);
    }

    /// The `FieldsV1` JSON of the set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        // Members and children interleave in path-element order; an element that is both is
        // written once, as a child holding `.`.
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for element in elements {
            let value = match self.children.get(element) {
                Some(child) => child.emit(self.members.contains(element)),
                None => Map::new(),
            };
            out.insert(element.serialize(), Value::Object(value));
        }
        out
    }

    /// Parses `FieldsV1` JSON.
    pub fn from_fields_v1(fields: &Value) -> Result<FieldSet, String> {
        let Value::Object(map) = fields else {
            return Err("FieldsV1 must be a JSON object".into());
        };
        Ok(Self::read(map).0.unwrap_or_default())
    }

    /// Returns the children set (if any) and whether the node itself is a member.
    fn read(map: &Map<String, Value>) -> (Option<FieldSet>, bool) {
        let mut children: Option<FieldSet> = None;
        let mut is_member = false;
        for (key, value) in map {
            if key == "." {
                is_member = true;
                continue;
            }
            let Ok(element) = PathElement::deserialize(key) else {
                continue;
            };
            let (grandchildren, child_is_member) = match value {
                Value::Object(inner) => Self::read(inner),
                _ => (None, true),
            };
            let set = children.get_or_insert_with(FieldSet::default);
            if child_is_member {
                set.members.insert(element.clone());
            }
            if let Some(grandchildren) = grandchildren {
                set.children.insert(element, grandchildren);
            }
        }
        if children.is_none() {
            is_member = true;
        }
        (children, is_member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    fn key(name: &str, value: Value) -> PathElement {
        PathElement::Key(vec![(name.into(), value)])
    }

    #[test]
    fn fields_v1_round_trip_keeps_upstream_layout() {
        let fields = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:ports": {
                    "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}
                },
                "f:replicas": {},
                "f:finalizers": {"v:\"a\"": {}}
            }
        });
        let set = FieldSet::from_fields_v1(&fields).unwrap();
        assert!(set.has(&[field("spec"), field("replicas")]));
        assert!(set.has(&[field("metadata"), field("labels")]));
        let port = PathElement::Key(vec![
            ("port".into(), json!(80)),
            ("protocol".into(), json!("TCP")),
        ]);
        assert!(set.has(&[field("spec"), field("ports"), port.clone()]));
        assert!(set.has(&[field("spec"), field("ports"), port, field("targetPort")]));
        assert!(!set.has(&[field("spec")]));
        // Serialization sorts members and children together by element order.
        let expected = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:finalizers": {"v:\"a\"": {}},
                "f:ports": {
                    "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}
                },
                "f:replicas": {}
            }
        });
        assert_eq!(
            set.to_fields_v1().to_string(),
            expected.to_string(),
            "key order matters on the wire"
        );
    }

    #[test]
    fn set_algebra() {
        let mut a = FieldSet::new();
        a.insert(&[field("spec"), field("replicas")]);
        a.insert(&[field("spec"), field("paused")]);
        let mut b = FieldSet::new();
        b.insert(&[field("spec"), field("replicas")]);
        b.insert(&[field("status")]);
        assert_eq!(
            a.intersection(&b).paths(),
            vec![Path(vec![field("spec"), field("replicas")])]
        );
        assert_eq!(
            a.difference(&b).paths(),
            vec![Path(vec![field("spec"), field("paused")])]
        );
        assert_eq!(a.union(&b).paths().len(), 3);
        assert!(a.difference(&a).is_empty());
    }

    #[test]
    fn path_strings_match_upstream() {
        let path = Path(vec![
            field("spec"),
            field("containers"),
            key("name", json!("web")),
            field("ports"),
            PathElement::Key(vec![
                ("containerPort".into(), json!(80)),
                ("protocol".into(), json!("TCP")),
            ]),
        ]);
        assert_eq!(
            path.to_string(),
            ".spec.containers[name=\"web\"].ports[containerPort=80,protocol=\"TCP\"]"
        );
        assert_eq!(
            Path(vec![field("finalizers"), PathElement::Value(json!("a"))]).to_string(),
            ".finalizers[=\"a\"]"
        );
        assert_eq!(
            Path(vec![field("args"), PathElement::Index(2)]).to_string(),
            ".args[2]"
        );
    }

    #[test]
    fn element_order_is_field_key_value_index() {
        let mut elements = vec![
            PathElement::Index(0),
            PathElement::Value(json!("x")),
            key("name", json!("a")),
            field("z"),
            field("a"),
        ];
        elements.sort();
        assert_eq!(
            elements,
            vec![
                field("a"),
                field("z"),
                key("name", json!("a")),
                PathElement::Value(json!("x")),
                PathElement::Index(0)
            ]
        );
        assert_eq!(compare_values(&json!(1), &json!("a")), Ordering::Less);
        assert_eq!(compare_values(&json!(2), &json!(1.5)), Ordering::Greater);
    }
}
