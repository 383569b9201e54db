//! API errors as upstream `metav1.Status` objects, with upstream's reasons and wording
//! (`k8s.io/apimachinery/pkg/api/errors`).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use k8rs_api::{FieldError, ResourceInfo};
use serde_json::{json, Value};

/// An error answered as a `Status` object.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `StatusReason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// Human-readable message in upstream's wording.
    pub message: String,
    /// `details`, when upstream sends them.
    pub details: Option<Value>,
}

/// Result alias for handlers and the registry.
pub type ApiResult<T> = Result<T, ApiError>;

fn details(info: &ResourceInfo, name: &str) -> Value {
    let mut d = json!({ "name": name });
    if !info.group.is_empty() {
        d["group"] = json!(info.group);
    }
    d["kind"] = json!(info.plural);
    d
}

impl ApiError {
    /// A bare error.
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    /// `404 NotFound`: `pods "x" not found`.
    pub fn not_found(info: &ResourceInfo, name: &str) -> Self {
        Self {
            details: Some(details(info, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{} {name:?} not found", info.qualified_resource()),
            )
        }
    }
    /// `404 NotFound` for a path that names no resource.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
    /// `409 AlreadyExists`: `pods "x" already exists`.
    pub fn already_exists(info: &ResourceInfo, name: &str) -> Self {
        Self {
            details: Some(details(info, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{} {name:?} already exists", info.qualified_resource()),
            )
        }
    }
    /// `409 Conflict` for a stale resourceVersion, in upstream's wording.
    pub fn conflict(info: &ResourceInfo, name: &str) -> Self {
        Self::conflict_with(
            info,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    /// `409 Conflict`: `Operation cannot be fulfilled on pods "x": <why>`.
    pub fn conflict_with(info: &ResourceInfo, name: &str, why: &str) -> Self {
        Self {
            details: Some(details(info, name)),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} {name:?}: {why}",
                    info.qualified_resource()
                ),
            )
        }
    }
    /// `422 Invalid` with one cause per field error.
    pub fn invalid(info: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({ "reason": e.reason(), "message": e.message(), "field": e.field }))
            .collect();
        let mut d = json!({ "name": name });
        if !info.group.is_empty() {
            d["group"] = json!(info.group);
        }
        d["kind"] = json!(info.kind);
        d["causes"] = json!(causes);
        Self {
            details: Some(d),
            ..Self::new(
                422,
                "Invalid",
                k8rs_api::field_error::invalid_message(&info.qualified_kind(), name, errors),
            )
        }
    }
    /// `400 BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    /// `403 Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }
    /// `405 MethodNotAllowed`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }
    /// `406 NotAcceptable`.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }
    /// `410 Gone` (`Expired`) for a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }
    /// `413 RequestEntityTooLarge`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }
    /// `415 UnsupportedMediaType`.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type}"))
    }
    /// `500 InternalError`.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }
    /// `504 Timeout`.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message)
    }

    /// `504 Timeout` for a read at a revision the cache has not reached within the wait
    /// (upstream's `NewTooLargeResourceVersionError`: the `ResourceVersionTooLarge` cause
    /// is what client-go's reflector looks for, and clients retry after a second).
    pub fn too_large_resource_version(requested: i64, current: i64) -> Self {
        Self {
            details: Some(json!({
                "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                "retryAfterSeconds": 1,
            })),
            ..Self::new(
                504,
                "Timeout",
                format!("Timeout: Too large resource version: {requested}, current: {current}"),
            )
        }
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl From<k8rs_store::Error> for ApiError {
    fn from(e: k8rs_store::Error) -> Self {
        match e {
            k8rs_store::Error::Compacted {
                requested,
                compacted,
            } => Self::expired(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            k8rs_store::Error::FutureRevision(rev) => {
                Self::timeout(format!("Too large resource version: {rev}"))
            }
            other => Self::internal(other),
        }
    }
}

impl From<crate::patch::PatchError> for ApiError {
    fn from(e: crate::patch::PatchError) -> Self {
        let details = (!e.causes.is_empty()).then(|| {
            let causes: Vec<Value> = e
                .causes
                .iter()
                .map(|c| {
                    let mut v = json!({"message": c.message});
                    if !c.reason.is_empty() {
                        v["reason"] = json!(c.reason);
                    }
                    if !c.field.is_empty() {
                        v["field"] = json!(c.field);
                    }
                    v
                })
                .collect();
            json!({ "causes": causes })
        });
        let reason = if e.reason.is_empty() {
            "Unknown"
        } else {
            e.reason
        };
        Self {
            code: e.code,
            reason,
            message: e.message,
            details,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        (
            code,
            [(http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
