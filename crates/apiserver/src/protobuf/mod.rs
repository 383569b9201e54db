//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into JSON objects.
//!
//! kubectl ≥ 1.32 sends protobuf for its `create …` generators, `autoscale`, `auth can-i`,
//! `auth whoami` and `create token`. A body is the magic `k8s\0` followed by a
//! `runtime.Unknown` envelope whose `raw` holds the object in upstream's `generated.proto`
//! encoding; [`decode`] returns the object as the JSON upstream would have received.
//!
//! # Where the schema comes from
//! The decoder is generic: it walks a `prost_reflect::DynamicMessage` using a
//! `FileDescriptorSet` of every Kubernetes API group (`kubernetes.fds`), so every field of
//! every kind decodes and nothing is silently dropped. No hand-written per-kind code.
//! - `k8s-pb` (kube-rs) only has prost structs: no descriptors, no serde.
//! - `k8s-rs-pb` ships upstream's `generated.proto` files per Kubernetes minor, but its
//!   rust-protobuf bindings cannot be used (their reflection deadlocks on self-referencing
//!   file dependencies) and take minutes to compile. So `generate.py` compiles the
//!   `.proto` files of that crate (v1_33) into `kubernetes.fds` at development time.
//! - The `.proto` files cannot say which Go fields are pointers, inlined or renamed in JSON;
//!   `generate.py` reads that from upstream's Go struct tags into `field_notes.txt`
//!   (see [`field_notes`]). Go writes non-pointer scalars even when zero, so without it an
//!   unset `minReadySeconds` and an explicit `replicas: 0` look alike on the wire.
//!
//! Messages are named as in `k8s-rs-pb`: `api.apps.v1.Deployment`,
//! `apimachinery.pkg.apis.meta.v1.DeleteOptions`.
//!
//! Known gaps: apiextensions' `JSONSchemaPropsOr*` unions and the kube-aggregator / metrics
//! groups have no field notes (their zero scalars are dropped). Responses are JSON.

pub mod field_notes;
mod json;

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value as PbValue};
use serde_json::Value;

use field_notes::FieldNotes;

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf body starts with these four bytes.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Kinds that upstream registers in every group version (`metav1.AddToGroupVersion`).
const OPTION_KINDS: &[&str] = &[
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
];

const META_V1: &str = "apimachinery.pkg.apis.meta.v1";

/// The descriptors and field notes, loaded once.
struct Schema {
    pool: DescriptorPool,
    notes: FieldNotes,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| Schema {
    pool: DescriptorPool::decode(&include_bytes!("kubernetes.fds")[..])
        .expect("embedded kubernetes.fds is a valid descriptor set"),
    notes: FieldNotes::parse(include_str!("field_notes.txt"))
        .expect("embedded field_notes.txt is well formed"),
});

/// Decodes a protobuf request body into the object's JSON (`kind`, `apiVersion`, then the
/// fields in upstream's order). Errors carry upstream's wording where it has one; callers
/// answer them with 400 Bad Request.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        format!("provided data does not appear to be a protobuf message, expected prefix {MAGIC:?}")
    })?;
    let schema = &*SCHEMA;
    let unknown = decode_message(schema, "apimachinery.pkg.runtime.Unknown", envelope)?;
    let type_meta = match unknown.get_field_by_name("typeMeta").as_deref() {
        Some(PbValue::Message(m)) => m.clone(),
        _ => DynamicMessage::new(message(schema, "apimachinery.pkg.runtime.TypeMeta")?),
    };
    let api_version = string_field(&type_meta, "apiVersion");
    let kind = string_field(&type_meta, "kind");
    if kind.is_empty() {
        return Err("Object 'Kind' is missing in protobuf body".to_string());
    }
    let encoding = string_field(&unknown, "contentEncoding");
    if !encoding.is_empty() {
        return Err(format!(
            "unsupported protobuf content encoding {encoding:?}"
        ));
    }
    let content_type = string_field(&unknown, "contentType");
    if !content_type.is_empty() && content_type != CONTENT_TYPE {
        return Err(format!(
            "unsupported protobuf content type {content_type:?}"
        ));
    }
    let desc = kind_descriptor(schema, &api_version, &kind)?;
    let raw = match unknown.get_field_by_name("raw").as_deref() {
        Some(PbValue::Bytes(raw)) => raw.clone(),
        _ => Default::default(),
    };
    let object = DynamicMessage::decode(desc, raw)
        .map_err(|e| format!("unable to decode {kind} from protobuf: {e}"))?;
    let mut json = serde_json::Map::new();
    json.insert("kind".to_string(), Value::String(kind));
    json.insert("apiVersion".to_string(), Value::String(api_version));
    if let Value::Object(fields) = json::message_to_json(&object, &schema.notes)? {
        json.extend(fields);
    }
    Ok(Value::Object(json))
}

/// The message for a kind: the group's package (named as in k8s-rs-pb) plus the kind.
fn kind_descriptor(
    schema: &Schema,
    api_version: &str,
    kind: &str,
) -> Result<MessageDescriptor, String> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let not_registered = || {
        format!(
            "no kind {kind:?} is registered for version {api_version:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )
    };
    let valid_segment = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid_segment(version) || !valid_segment(kind) {
        return Err(not_registered());
    }
    if OPTION_KINDS.contains(&kind) {
        return schema
            .pool
            .get_message_by_name(&format!("{META_V1}.{kind}"))
            .ok_or_else(not_registered);
    }
    let package = match group {
        "" => format!("api.core.{version}"),
        "meta.k8s.io" => format!("apimachinery.pkg.apis.meta.{version}"),
        "apiextensions.k8s.io" => {
            format!("apiextensions_apiserver.pkg.apis.apiextensions.{version}")
        }
        "apiregistration.k8s.io" => {
            format!("kube_aggregator.pkg.apis.apiregistration.{version}")
        }
        "metrics.k8s.io" => format!("metrics.pkg.apis.metrics.{version}"),
        "custom.metrics.k8s.io" => format!("metrics.pkg.apis.custom_metrics.{version}"),
        "external.metrics.k8s.io" => format!("metrics.pkg.apis.external_metrics.{version}"),
        "internal.apiserver.k8s.io" => format!("api.apiserverinternal.{version}"),
        // apps, batch, rbac.authorization.k8s.io, networking.k8s.io, …: the first label.
        _ => format!("api.{}.{version}", group.split('.').next().unwrap_or(group)),
    };
    let desc = schema
        .pool
        .get_message_by_name(&format!("{package}.{kind}"))
        .ok_or_else(not_registered)?;
    // Only top-level objects are kinds; `PodSpec` and friends have no metadata.
    if desc.get_field_by_name("metadata").is_none() {
        return Err(not_registered());
    }
    Ok(desc)
}

fn decode_message(schema: &Schema, name: &str, bytes: &[u8]) -> Result<DynamicMessage, String> {
    DynamicMessage::decode(message(schema, name)?, bytes)
        .map_err(|e| format!("unable to decode protobuf envelope: {e}"))
}

fn message(schema: &Schema, name: &str) -> Result<MessageDescriptor, String> {
    schema
        .pool
        .get_message_by_name(name)
        .ok_or_else(|| format!("protobuf descriptor {name} is missing"))
}

fn string_field(msg: &DynamicMessage, name: &str) -> String {
    msg.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
