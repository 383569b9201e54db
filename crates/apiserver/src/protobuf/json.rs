//! Turns a decoded protobuf message into the JSON upstream's `encoding/json` would write for
//! the same Go object.
//!
//! The generic walk uses the descriptors; `field_notes` supplies the Go facts the `.proto`
//! files lack; a few apimachinery types have their own JSON form and are converted here:
//! Quantity (string), IntOrString (int or string), Time/MicroTime (RFC 3339), Duration
//! (Go duration string), RawExtension/FieldsV1/JSON (embedded JSON), and named string
//! slices such as `ExtraValue` (array).

use base64::Engine;
use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value as PbValue};
use serde_json::{Map, Value};

use super::field_notes::{FieldNote, FieldNotes};

/// Converts a whole message to a JSON object (or to the special form of a well-known type).
pub fn message_to_json(msg: &DynamicMessage, notes: &FieldNotes) -> Result<Value, String> {
    if let Some(special) = well_known_to_json(msg)? {
        return Ok(special);
    }
    let mut object = Map::new();
    write_fields(msg, notes, &mut object)?;
    Ok(Value::Object(object))
}

/// Writes the fields of `msg` into `object` in declaration order (Go's struct order),
/// following encoding/json: what `omitempty` drops is left out, nil pointers and slices
/// without it are `null`, structs are always written.
fn write_fields(
    msg: &DynamicMessage,
    notes: &FieldNotes,
    object: &mut Map<String, Value>,
) -> Result<(), String> {
    let desc = msg.descriptor();
    let fields: Vec<_> = match notes.field_order(desc.full_name()) {
        Some(names) => names
            .iter()
            .filter_map(|name| desc.get_field_by_name(name))
            .collect(),
        None => desc.fields().collect(),
    };
    for field in fields {
        let note = notes.get(field.full_name());
        // Absent fields read as their zero value, as in a Go struct after decoding.
        let value = msg.get_field(&field);
        if note.inline {
            if let PbValue::Message(inner) = value.as_ref() {
                write_fields(inner, notes, object)?;
            }
            continue;
        }
        let present = msg.has_field(&field);
        if let Some(json) = field_to_json(&value, present, note, notes)? {
            object.insert(note.json_name.unwrap_or(field.name()).to_string(), json);
        }
    }
    Ok(())
}

/// The JSON for one field, or `None` when encoding/json would leave it out.
fn field_to_json(
    value: &PbValue,
    present: bool,
    note: FieldNote,
    notes: &FieldNotes,
) -> Result<Option<Value>, String> {
    let nil = if note.always { Some(Value::Null) } else { None };
    match value {
        PbValue::List(items) if items.is_empty() => Ok(nil),
        PbValue::Map(entries) if entries.is_empty() => Ok(nil),
        PbValue::List(_) | PbValue::Map(_) => Ok(Some(value_to_json(value, notes)?)),
        _ if note.pointer => match present {
            true => Ok(Some(value_to_json(value, notes)?)),
            false => Ok(nil),
        },
        // omitempty never applies to structs.
        PbValue::Message(msg) => Ok(Some(message_to_json(msg, notes)?)),
        PbValue::Bytes(bytes) if bytes.is_empty() && !present => Ok(nil),
        scalar => {
            let json = value_to_json(scalar, notes)?;
            Ok((note.always || !is_zero(&json)).then_some(json))
        }
    }
}

fn is_zero(json: &Value) -> bool {
    match json {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// A list element or map value: always written, zero or not.
fn value_to_json(value: &PbValue, notes: &FieldNotes) -> Result<Value, String> {
    Ok(match value {
        PbValue::Bool(b) => Value::Bool(*b),
        PbValue::I32(n) => Value::from(*n),
        PbValue::I64(n) => Value::from(*n),
        PbValue::U32(n) => Value::from(*n),
        PbValue::U64(n) => Value::from(*n),
        PbValue::F32(n) => Value::from(f64::from(*n)),
        PbValue::F64(n) => Value::from(*n),
        PbValue::String(s) => Value::String(s.clone()),
        // encoding/json writes []byte as standard base64.
        PbValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        PbValue::EnumNumber(n) => Value::from(*n),
        PbValue::Message(msg) => message_to_json(msg, notes)?,
        PbValue::List(items) => Value::Array(
            items
                .iter()
                .map(|item| value_to_json(item, notes))
                .collect::<Result<_, _>>()?,
        ),
        PbValue::Map(entries) => {
            let mut keyed: Vec<(String, Value)> = Vec::with_capacity(entries.len());
            for (key, item) in entries {
                keyed.push((map_key_string(key), value_to_json(item, notes)?));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(keyed.into_iter().collect())
        }
    })
}

fn map_key_string(key: &MapKey) -> String {
    match key {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

/// `Some(json)` for types with their own JSON form, `None` for ordinary messages.
fn well_known_to_json(msg: &DynamicMessage) -> Result<Option<Value>, String> {
    let desc = msg.descriptor();
    let json = match desc.full_name() {
        "apimachinery.pkg.api.resource.Quantity"
        | "apimachinery.pkg.api.resource.QuantityValue" => {
            // The zero Quantity marshals as "0".
            let quantity = string_field(msg, "string");
            Value::String(if quantity.is_empty() {
                "0".to_string()
            } else {
                quantity
            })
        }
        // type 1 is intstr.String; anything else is an integer.
        "apimachinery.pkg.util.intstr.IntOrString" => match int_field(msg, "type") {
            1 => Value::String(string_field(msg, "strVal")),
            _ => Value::from(int_field(msg, "intVal")),
        },
        "apimachinery.pkg.apis.meta.v1.Time" => time_to_json(msg, false),
        "apimachinery.pkg.apis.meta.v1.MicroTime" => time_to_json(msg, true),
        "apimachinery.pkg.apis.meta.v1.Duration" => {
            Value::String(go_duration(int_field(msg, "duration")))
        }
        "apimachinery.pkg.runtime.RawExtension"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON"
        | "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSON" => {
            embedded_json(msg, "raw")?
        }
        "apimachinery.pkg.apis.meta.v1.FieldsV1" => embedded_json(msg, "Raw")?,
        _ if is_named_string_slice(msg) => {
            let items = msg.get_field_by_name("items");
            let json = match items.as_deref() {
                Some(PbValue::List(items)) => Value::Array(
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(|s| Value::String(s.to_string())))
                        .collect(),
                ),
                _ => Value::Array(Vec::new()),
            };
            json
        }
        _ => return Ok(None),
    };
    Ok(Some(json))
}

/// Go named slices (`type ExtraValue []string`) become `message X { repeated string items = 1; }`.
fn is_named_string_slice(msg: &DynamicMessage) -> bool {
    let desc = msg.descriptor();
    let mut fields = desc.fields();
    match (fields.next(), fields.next()) {
        (Some(only), None) => {
            only.name() == "items" && only.is_list() && matches!(only.kind(), Kind::String)
        }
        _ => false,
    }
}

fn string_field(msg: &DynamicMessage, name: &str) -> String {
    msg.get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn int_field(msg: &DynamicMessage, name: &str) -> i64 {
    match msg.get_field_by_name(name).as_deref() {
        Some(PbValue::I64(n)) => *n,
        Some(PbValue::I32(n)) => i64::from(*n),
        _ => 0,
    }
}

/// Time marshals as an empty message when zero (JSON `null`); otherwise seconds since the
/// epoch, written in UTC with second (Time) or microsecond (MicroTime) precision.
fn time_to_json(msg: &DynamicMessage, micro: bool) -> Value {
    if !msg.has_field_by_name("seconds") && !msg.has_field_by_name("nanos") {
        return Value::Null;
    }
    let seconds = int_field(msg, "seconds");
    // Time drops nanoseconds on decode; MicroTime keeps microseconds.
    let nanos = if micro {
        (int_field(msg, "nanos") / 1000 * 1000) as u32
    } else {
        0
    };
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    match chrono::DateTime::from_timestamp(seconds, nanos) {
        Some(time) => Value::String(time.format(format).to_string()),
        // Beyond chrono's range (±262,000 years): no real object carries such a time.
        None => Value::Null,
    }
}

/// RawExtension and friends carry JSON text; an empty one is `null`.
fn embedded_json(msg: &DynamicMessage, field: &str) -> Result<Value, String> {
    let raw = match msg.get_field_by_name(field).as_deref() {
        Some(PbValue::Bytes(raw)) if !raw.is_empty() => raw.clone(),
        _ => return Ok(Value::Null),
    };
    serde_json::from_slice(&raw).map_err(|e| {
        format!(
            "{}: embedded object is not JSON: {e}",
            msg.descriptor().name()
        )
    })
}

/// Formats nanoseconds the way Go's `time.Duration.String` does (`1h2m3.5s`, `150ms`, `0s`).
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, digits) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        return format!("{sign}{}{unit}", with_fraction(u, digits));
    }
    let seconds = with_fraction(u % 60_000_000_000, 9);
    let minutes = u / 60_000_000_000 % 60;
    let hours = u / 3_600_000_000_000;
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `value / 10^digits` with the fraction's trailing zeros (and a bare point) removed.
fn with_fraction(value: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0width$}", width = digits as usize);
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_durations_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(1), "1ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(150_000_000), "150ms");
        assert_eq!(go_duration(1_000_000_000), "1s");
        assert_eq!(go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(-7_200_000_000_000 - 1_000_000_000), "-2h0m1s");
    }
}
