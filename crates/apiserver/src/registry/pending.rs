//! TEMPORARY integration shims while the patch engine's apply/managed-fields and the
//! protobuf decoder land in parallel; replaced by the real calls in the same session.

use serde_json::Value;

pub(crate) fn protobuf_decode(_b: &[u8]) -> Result<Value, String> {
    Err("protobuf bodies are not wired yet".into())
}
