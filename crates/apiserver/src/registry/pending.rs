//! TEMPORARY integration shims while the patch engine's apply/managed-fields and the
//! protobuf decoder land in parallel; replaced by the real calls in the same session.

use k8rs_api::schema::Schema;
use serde_json::Value;

use crate::patch::PatchError;

pub(crate) fn apply(
    _s: Option<Schema>,
    _l: Option<&Value>,
    _a: &Value,
    _m: &str,
    _f: bool,
    _n: &str,
) -> Result<Value, PatchError> {
    Err(PatchError::bad_request(
        "server-side apply is not wired yet",
    ))
}

pub(crate) fn update_managed_fields(
    _s: Option<Schema>,
    _o: Option<&Value>,
    _n: &mut Value,
    _m: &str,
    _sub: &str,
    _now: &str,
) {
}

pub(crate) fn protobuf_decode(_b: &[u8]) -> Result<Value, String> {
    Err("protobuf bodies are not wired yet".into())
}
