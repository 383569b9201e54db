//! Field selectors (`?fieldSelector=`), parsed as upstream's `fields.ParseSelector`.
//!
//! How the API server uses this module:
//! 1. `let sel = FieldSelector::parse(query)?` — a parse error is a `400 BadRequest` with the
//!    returned message (e.g. `invalid selector: 'a'; can't understand 'a'`).
//! 2. `sel.validate(|f| strategy.field(&Value::Null, f).is_some())?` — rejects fields the
//!    resource does not support with upstream's `field label not supported: <name>` (400),
//!    even when there is no object to filter.
//! 3. per object: `sel.matches(|f| strategy.field(obj, f))?` — `Ok(true)` when every term
//!    holds. [`crate::Strategy::field`] returns `Some(value)` (possibly `""`) for every
//!    supported field, so an absent value compares as the empty string, as upstream does.

use std::fmt;

use serde_json::Value;

/// `metadata.name` and `metadata.namespace`, selectable on every resource (upstream
/// `DefaultMetaV1FieldSelectorConversion`); absent values read as `""`.
pub fn common_field(obj: &Value, path: &str) -> Option<String> {
    match path {
        "metadata.name" => Some(str_at(obj, "/metadata/name")),
        "metadata.namespace" => Some(str_at(obj, "/metadata/namespace")),
        _ => None,
    }
}

/// `metadata.name` only: for kinds whose upstream conversion rejects `metadata.namespace`
/// (namespaces, nodes).
pub fn name_field(obj: &Value, path: &str) -> Option<String> {
    (path == "metadata.name").then(|| str_at(obj, "/metadata/name"))
}

/// The string at a JSON pointer, `""` when absent; numbers and booleans as Go prints them.
pub fn str_at(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A field selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    /// `a=b`
    Equals,
    /// `a==b`
    DoubleEquals,
    /// `a!=b`
    NotEquals,
}

/// One `field op value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    /// Field path, e.g. `spec.nodeName`.
    pub field: String,
    /// Operator.
    pub op: FieldOp,
    /// Unescaped value.
    pub value: String,
}

/// A parsed field selector: the AND of its terms (empty = everything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parse as upstream's `fields.ParseSelector`: terms split on unescaped `,` and sorted;
    /// operators `!=`, `==`, `=`; values may escape `\`, `,` and `=` with a backslash.
    pub fn parse(selector: &str) -> Result<Self, String> {
        let mut parts = split_terms(selector);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, op, rhs)) = split_term(part) else {
                return Err(format!(
                    "invalid selector: '{selector}'; can't understand '{part}'"
                ));
            };
            terms.push(FieldTerm {
                field: field.to_string(),
                op,
                value: unescape_value(rhs)?,
            });
        }
        Ok(Self { terms })
    }

    /// The terms, in sorted order.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Check every term's field is supported; `Err` is `field label not supported: <name>`.
    pub fn validate(&self, supported: impl Fn(&str) -> bool) -> Result<(), String> {
        match self.terms.iter().find(|t| !supported(&t.field)) {
            Some(t) => Err(format!("field label not supported: {}", t.field)),
            None => Ok(()),
        }
    }

    /// Whether an object whose fields are read through `field` satisfies every term.
    /// `field` returns `None` for an unsupported field, which is an error in upstream wording.
    pub fn matches(&self, field: impl Fn(&str) -> Option<String>) -> Result<bool, String> {
        for t in &self.terms {
            let Some(actual) = field(&t.field) else {
                return Err(format!("field label not supported: {}", t.field));
            };
            let equal = actual == t.value;
            if equal == (t.op == FieldOp::NotEquals) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// If the selector pins `field` to one value with `=`/`==`, that value (e.g. a kubelet's
    /// `spec.nodeName=<node>` watch, which the watch cache can index).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.op != FieldOp::NotEquals)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// Upstream's `Selector.String()`, with values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| {
                let op = if t.op == FieldOp::NotEquals {
                    "!="
                } else {
                    "="
                };
                format!("{}{op}{}", t.field, escape_value(&t.value))
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Split on commas not preceded by a backslash escape (upstream `splitTerms`).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The first operator occurrence splits the term (upstream `splitTerm`).
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    const OPS: [(&str, FieldOp); 3] = [
        ("!=", FieldOp::NotEquals),
        ("==", FieldOp::DoubleEquals),
        ("=", FieldOp::Equals),
    ];
    for (i, _) in term.char_indices() {
        for (text, op) in OPS {
            if term[i..].starts_with(text) {
                return Some((&term[..i], op, &term[i + text.len()..]));
            }
        }
    }
    None
}

/// Upstream `fields.UnescapeValue`, with its error wording (a rune prints as its number).
fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if matches!(c, '\\' | ',' | '=') {
                out.push(c);
            } else {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(out)
}

fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_terms_sorted() {
        let sel = FieldSelector::parse("status.phase!=Running,metadata.name==a").unwrap();
        assert_eq!(sel.to_string(), "metadata.name=a,status.phase!=Running");
        assert_eq!(sel.terms()[0].op, FieldOp::DoubleEquals);
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert_eq!(
            FieldSelector::parse("a=b\\,c").unwrap().terms()[0].value,
            "b,c"
        );
        assert_eq!(FieldSelector::parse("a=").unwrap().terms()[0].value, "");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            FieldSelector::parse("abc").unwrap_err(),
            "invalid selector: 'abc'; can't understand 'abc'"
        );
        assert_eq!(
            FieldSelector::parse("a=b,c").unwrap_err(),
            "invalid selector: 'a=b,c'; can't understand 'c'"
        );
        assert_eq!(
            FieldSelector::parse("a=b\\x").unwrap_err(),
            "invalid field selector: invalid escape sequence: \\x"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn matches_and_rejects_unsupported_fields() {
        let obj = json!({"metadata": {"name": "web", "namespace": "default"}});
        let field = |f: &str| common_field(&obj, f);
        assert!(FieldSelector::parse("metadata.name=web")
            .unwrap()
            .matches(field)
            .unwrap());
        assert!(!FieldSelector::parse("metadata.name!=web")
            .unwrap()
            .matches(field)
            .unwrap());
        assert!(
            FieldSelector::parse("metadata.namespace=default,metadata.name!=x")
                .unwrap()
                .matches(field)
                .unwrap()
        );
        assert_eq!(
            FieldSelector::parse("spec.foo=1")
                .unwrap()
                .matches(field)
                .unwrap_err(),
            "field label not supported: spec.foo"
        );
        let sel = FieldSelector::parse("spec.foo=1").unwrap();
        assert_eq!(
            sel.validate(|f| common_field(&Value::Null, f).is_some())
                .unwrap_err(),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            FieldSelector::parse("spec.nodeName=n1")
                .unwrap()
                .requires_exact_match("spec.nodeName"),
            Some("n1")
        );
    }
}
