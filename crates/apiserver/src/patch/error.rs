//! The error a patch produces: an HTTP status with upstream's reason and wording, ready to be
//! rendered as a `meta.k8s.io/v1` `Status`.

use serde_json::{json, Map, Value};

use super::PatchType;

/// One `details.causes` entry of a `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCause {
    /// `reason` of the cause, e.g. `FieldManagerConflict`; empty when upstream leaves it out.
    pub reason: String,
    /// Human-readable description.
    pub message: String,
    /// The field the cause is about, e.g. `.spec.replicas`; empty when none.
    pub field: String,
}

/// A failed patch: the HTTP status code, the `Status.reason` and the message upstream returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatchError {
    /// HTTP status code (400, 409, 413, 415, 422, 500).
    pub code: u16,
    /// `Status.reason`: `BadRequest`, `Invalid`, `Conflict`, …; empty for unknown errors.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details.causes`.
    pub causes: Vec<StatusCause>,
}

impl PatchError {
    /// 400 `BadRequest` (upstream `errors.NewBadRequest`).
    pub fn bad_request(message: impl Into<String>) -> PatchError {
        PatchError {
            code: 400,
            reason: "BadRequest",
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// 422 as upstream's `NewGenericServerResponse(422, …)`: a fixed message, the detail in the
    /// single cause. This is what JSON patch failures look like.
    pub fn unprocessable(detail: impl Into<String>) -> PatchError {
        PatchError {
            code: 422,
            reason: "Invalid",
            message: "the server rejected our request due to an error in our request".into(),
            causes: vec![StatusCause {
                reason: String::new(),
                message: detail.into(),
                field: String::new(),
            }],
        }
    }

    /// 413 `RequestEntityTooLarge`.
    pub fn too_large(detail: impl std::fmt::Display) -> PatchError {
        PatchError {
            code: 413,
            reason: "RequestEntityTooLarge",
            message: format!("Request entity too large: {detail}"),
            causes: Vec::new(),
        }
    }

    /// 415 `UnsupportedMediaType` listing the patch types the resource accepts.
    pub fn unsupported_media_type(accepted: &[PatchType]) -> PatchError {
        let accepted: Vec<&str> = accepted.iter().map(|kind| kind.content_type()).collect();
        PatchError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
            causes: Vec::new(),
        }
    }

    /// 500 with an empty reason: what upstream returns for errors that are not API statuses.
    pub fn internal(message: impl Into<String>) -> PatchError {
        PatchError {
            code: 500,
            reason: "",
            message: message.into(),
            causes: Vec::new(),
        }
    }

    /// The `meta.k8s.io/v1` `Status` object for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        });
        let object = status.as_object_mut().expect("literal object");
        if !self.reason.is_empty() {
            object.insert("reason".into(), self.reason.into());
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|cause| {
                    let mut entry = Map::new();
                    if !cause.reason.is_empty() {
                        entry.insert("reason".into(), cause.reason.clone().into());
                    }
                    entry.insert("message".into(), cause.message.clone().into());
                    if !cause.field.is_empty() {
                        entry.insert("field".into(), cause.field.clone().into());
                    }
                    Value::Object(entry)
                })
                .collect();
            object.insert("details".into(), json!({ "causes": causes }));
        }
        object.insert("code".into(), self.code.into());
        status
    }
}

/// The message Go's `encoding/json` gives for a body that is not valid JSON or not of the
/// expected shape; `target` is the Go type named in type errors.
pub(crate) fn go_json_error(body: &[u8], target: &str) -> String {
    match serde_json::from_slice::<Value>(body) {
        Err(err) if err.is_eof() => "unexpected end of JSON input".into(),
        Err(err) => {
            // Go reports the offending character; serde gives line/column.
            let offset = byte_offset(body, err.line(), err.column());
            match body.get(offset.saturating_sub(1)) {
                Some(&byte) => {
                    format!(
                        "invalid character '{}' looking for beginning of value",
                        byte as char
                    )
                }
                None => err.to_string(),
            }
        }
        Ok(value) => format!(
            "json: cannot unmarshal {} into Go value of type {target}",
            go_json_kind(&value)
        ),
    }
}

fn byte_offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut current_line = 1;
    for (index, &byte) in body.iter().enumerate() {
        if current_line == line {
            return index + column;
        }
        if byte == b'\n' {
            current_line += 1;
        }
    }
    body.len()
}

fn go_json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprocessable_status_carries_the_detail_as_cause() {
        let status = PatchError::unprocessable("doc is missing path").to_status();
        assert_eq!(status["code"], 422);
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            "the server rejected our request due to an error in our request"
        );
        assert_eq!(
            status["details"]["causes"][0]["message"],
            "doc is missing path"
        );
    }

    #[test]
    fn go_json_errors() {
        assert_eq!(
            go_json_error(b"{}", "jsonpatch.Patch"),
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        );
        assert_eq!(go_json_error(b"[", "x"), "unexpected end of JSON input");
        assert_eq!(
            go_json_error(b"xyz", "x"),
            "invalid character 'x' looking for beginning of value"
        );
    }
}
