//! Patch engines: JSON patch (RFC 6902), merge patch (RFC 7386), strategic merge patch and
//! server-side apply with `managedFields` tracking.
//!
//! Everything here is a pure function over `serde_json::Value`; the registry decides when to
//! call what. Schema metadata (patch strategies, list types) comes through [`PatchMeta`], which
//! is implemented for `k8rs_api::schema::Schema` (built-in kinds) and for OpenAPI v3 schema JSON
//! ([`OpenApiMeta`], e.g. a CRD's `openAPIV3Schema`).

#[cfg(test)]
mod builtin_kinds_tests;
mod error;
pub mod fieldpath;
mod json_patch;
pub mod managed_fields;
mod merge_patch;
mod meta;
mod strategic;
#[cfg(test)]
mod test_schemas;
mod typed;

pub use error::{PatchError, StatusCause};
pub use json_patch::apply_json_patch;
pub use managed_fields::{
    apply, apply_with_meta, apply_with_subresource, default_manager, parse_apply_body,
    update_managed_fields, update_managed_fields_with_meta, ApplyError, Conflict,
};
pub use merge_patch::apply_merge_patch;
pub use meta::{OpenApiMeta, PatchMeta};
pub use strategic::{apply_strategic_merge_patch, strategic_merge};

use k8rs_api::schema::Schema;
use serde_json::Value;

/// The patch formats a PATCH request may carry, told apart by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type for a request's `Content-Type` (parameters such as `; charset=utf-8` are
    /// ignored); `None` for anything else.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        match media_type.to_ascii_lowercase().as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    /// The media type of this patch format.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Applies a JSON, merge or strategic merge patch `body` to `original` and returns the patched
/// object. `schema` is the kind's schema; without one (custom resources) strategic merge patch
/// is refused with 415 as upstream does. Server-side apply goes through [`apply`] instead, since
/// it needs the field manager; asking for it here is a 415 too.
pub fn patch(
    schema: Option<Schema>,
    original: &Value,
    body: &[u8],
    kind: PatchType,
) -> Result<Value, PatchError> {
    match kind {
        PatchType::Json => apply_json_patch(original, body),
        PatchType::Merge => apply_merge_patch(original, body),
        PatchType::StrategicMerge => match schema {
            Some(schema) => apply_strategic_merge_patch(original, body, Some(schema)),
            None => Err(PatchError::unsupported_media_type(&[
                PatchType::Json,
                PatchType::Merge,
                PatchType::Apply,
            ])),
        },
        PatchType::Apply => Err(PatchError::internal(
            "server-side apply needs a field manager: use patch::apply",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_map_to_patch_types() {
        assert_eq!(
            PatchType::from_content_type("application/json-patch+json"),
            Some(PatchType::Json)
        );
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(
            PatchType::from_content_type("application/strategic-merge-patch+json"),
            Some(PatchType::StrategicMerge)
        );
        assert_eq!(
            PatchType::from_content_type("application/apply-patch+yaml"),
            Some(PatchType::Apply)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
        for kind in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::StrategicMerge,
            PatchType::Apply,
        ] {
            assert_eq!(
                PatchType::from_content_type(kind.content_type()),
                Some(kind)
            );
        }
    }

    #[test]
    fn strategic_merge_without_schema_is_unsupported_media_type() {
        let err = patch(None, &json!({}), b"{}", PatchType::StrategicMerge).unwrap_err();
        assert_eq!(err.code, 415);
        assert_eq!(
            err.message,
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
        );
    }

    #[test]
    fn dispatches_json_and_merge_patches() {
        let original = json!({"metadata": {"name": "a"}, "spec": {"replicas": 1}});
        let patched = patch(
            None,
            &original,
            br#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(patched["spec"]["replicas"], 3);
        let patched = patch(
            None,
            &original,
            br#"{"spec":{"replicas":null}}"#,
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(patched["spec"], json!({}));
    }
}
