//! Upstream validation (`pkg/apis/<group>/validation`), with upstream's messages.

use serde_json::Value;

use crate::{FieldError, ResourceInfo};

/// Validate `obj` (and, on update, its transition from `old`) for `info`'s kind.
pub fn validate(info: &ResourceInfo, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    // SKELETON: filled in per kind by the validation work (issue 4).
    let _ = (info, obj, old);
    Vec::new()
}
