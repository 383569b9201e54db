//! Field errors in upstream's wording (`k8s.io/apimachinery/pkg/util/validation/field`).

use serde_json::Value;

/// The kind of a field error; its `reason()` is the `StatusCause.reason` upstream sends.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldErrorType {
    /// `Required value`
    Required,
    /// `Invalid value: <bad value>`
    Invalid(Value),
    /// `Invalid value: <bad value>` with the bad value already in upstream's printed form
    /// (Go's `%#v` of a struct or map, e.g. `map[string]string{"app":"web"}`).
    InvalidRepr(String),
    /// `Unsupported value: <bad value>: supported values: "a", "b"`
    NotSupported(Value, Vec<String>),
    /// `Forbidden`
    Forbidden,
    /// `Duplicate value: <bad value>`
    Duplicate(Value),
    /// `Not found: <bad value>`
    NotFound(Value),
    /// `Too long: may not be more than N bytes` (upstream: `must have at most N bytes`)
    TooLong(Value, usize),
    /// `Too many: N: must have at most M items`
    TooMany(usize, usize),
    /// `Internal error`
    Internal,
}

/// One validation error on one field path, e.g. `spec.replicas: Invalid value: -1: must be
/// greater than or equal to 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Field path, e.g. `spec.template.spec.containers[0].name`.
    pub field: String,
    /// What is wrong, with the bad value where upstream prints one.
    pub type_: FieldErrorType,
    /// Extra detail, may be empty.
    pub detail: String,
}

impl FieldError {
    /// `Required value` (with optional detail).
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::Required,
            detail: detail.into(),
        }
    }
    /// `Invalid value: <value>: detail`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::Invalid(value.into()),
            detail: detail.into(),
        }
    }
    /// `Invalid value: <repr>: detail`, the value already printed as upstream prints it.
    pub fn invalid_repr(
        field: impl Into<String>,
        repr: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::InvalidRepr(repr.into()),
            detail: detail.into(),
        }
    }
    /// `Unsupported value: <value>: supported values: …`.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        valid: &[&str],
    ) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::NotSupported(
                value.into(),
                valid.iter().map(|s| s.to_string()).collect(),
            ),
            detail: String::new(),
        }
    }
    /// `Forbidden: detail`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::Forbidden,
            detail: detail.into(),
        }
    }
    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::Duplicate(value.into()),
            detail: String::new(),
        }
    }
    /// `Not found: <value>`.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::NotFound(value.into()),
            detail: String::new(),
        }
    }
    /// `Too long: may not be more than N bytes`.
    pub fn too_long(field: impl Into<String>, value: impl Into<Value>, max: usize) -> Self {
        Self {
            field: field.into(),
            type_: FieldErrorType::TooLong(value.into(), max),
            detail: String::new(),
        }
    }

    /// The `StatusCause.reason` upstream uses for this error type.
    pub fn reason(&self) -> &'static str {
        match self.type_ {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid(_) | FieldErrorType::InvalidRepr(_) => "FieldValueInvalid",
            FieldErrorType::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorType::NotFound(_) => "FieldValueNotFound",
            FieldErrorType::TooLong(..) => "FieldValueTooLong",
            FieldErrorType::TooMany(..) => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
        }
    }

    /// The message without the field path (`StatusCause.message`), e.g.
    /// `Invalid value: "Foo": a lowercase RFC 1123 …`.
    pub fn message(&self) -> String {
        let with_detail = |s: String| {
            if self.detail.is_empty() {
                s
            } else {
                format!("{s}: {}", self.detail)
            }
        };
        match &self.type_ {
            FieldErrorType::Required => with_detail("Required value".into()),
            FieldErrorType::Invalid(v) => with_detail(format!("Invalid value: {}", bad_value(v))),
            FieldErrorType::InvalidRepr(repr) => with_detail(format!("Invalid value: {repr}")),
            FieldErrorType::NotSupported(v, valid) => {
                let mut s = format!("Unsupported value: {}", bad_value(v));
                if !valid.is_empty() {
                    let q: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
                    s.push_str(&format!(": supported values: {}", q.join(", ")));
                }
                s
            }
            FieldErrorType::Forbidden => with_detail("Forbidden".into()),
            FieldErrorType::Duplicate(v) => {
                with_detail(format!("Duplicate value: {}", bad_value(v)))
            }
            FieldErrorType::NotFound(v) => with_detail(format!("Not found: {}", bad_value(v))),
            FieldErrorType::TooLong(_, max) => {
                with_detail(format!("Too long: may not be more than {max} bytes"))
            }
            FieldErrorType::TooMany(n, max) => {
                with_detail(format!("Too many: {n}: must have at most {max} items"))
            }
            FieldErrorType::Internal => with_detail("Internal error".into()),
        }
    }
}

impl std::fmt::Display for FieldError {
    /// `field: message`, as upstream's `(*field.Error).Error()`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Upstream prints strings quoted and numbers/bools bare.
fn bad_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// The aggregate message for a `422 Invalid`: `Kind.group "name" is invalid: <errors>`,
/// with `[a, b]` brackets when there is more than one error, as upstream's
/// `NewInvalid` + `ToAggregate` do (`ToAggregate` drops repeated messages; the causes keep them).
pub fn invalid_message(qualified_kind: &str, name: &str, errors: &[FieldError]) -> String {
    let mut seen = std::collections::HashSet::new();
    let list: Vec<String> = errors
        .iter()
        .map(|e| e.to_string())
        .filter(|m| seen.insert(m.clone()))
        .collect();
    let joined = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    format!("{qualified_kind} {name:?} is invalid: {joined}")
}
