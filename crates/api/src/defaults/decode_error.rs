//! Decode errors in the wording of upstream's JSON decoder, e.g.
//! `Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal
//! string into Go struct field DeploymentSpec.spec.replicas of type int32`.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ResourceInfo;

/// One step of the path serde reports for a decode error.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Upstream's message for a body that does not decode as `T` (the kind of `info`).
pub fn decode_error_message<T: DeserializeOwned>(
    info: &ResourceInfo,
    obj: &Value,
    err: &serde_path_to_error::Error<serde_json::Error>,
) -> String {
    let prefix = format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: ",
        kind = info.kind,
        version = info.version
    );
    let steps: Vec<Step> = err
        .path()
        .iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
            _ => None,
        })
        .collect();
    let inner = err.inner().to_string();
    let Some((got, expected)) = type_mismatch(&inner) else {
        return format!("{prefix}{inner}");
    };
    let Some((struct_name, go_path)) = struct_field::<T>(info, obj, &steps) else {
        return format!(
            "{prefix}json: cannot unmarshal {} into Go value of type {}",
            go_json_kind(got, expected),
            go_type(expected)
        );
    };
    let target_type = match expected {
        "a sequence" => format!(
            "[]{}",
            probe_element_type::<T>(obj, &steps, Value::Array(vec![Value::Bool(true)]))
        ),
        "a map" => {
            let probe = Value::Object([("k".to_string(), Value::Bool(true))].into_iter().collect());
            format!("map[string]{}", probe_element_type::<T>(obj, &steps, probe))
        }
        other => go_type(other),
    };
    format!(
        "{prefix}json: cannot unmarshal {} into Go struct field {struct_name}.{go_path} of type {target_type}",
        go_json_kind(got, expected)
    )
}

/// Split serde's `invalid type: string "x", expected i32` into its two halves.
fn type_mismatch(msg: &str) -> Option<(&str, &str)> {
    let rest = msg.strip_prefix("invalid type: ")?;
    let (got, expected) = rest.rsplit_once(", expected ")?;
    Some((got, expected))
}

/// Go's name for the JSON value that did not fit (`string`, `number`, `bool`, `array`, `object`).
fn go_json_kind(got: &str, expected: &str) -> String {
    let integer_target = matches!(expected, "i32" | "i64" | "u32" | "u64");
    if got.starts_with("string") {
        "string".into()
    } else if let Some(n) = got
        .strip_prefix("integer `")
        .or_else(|| got.strip_prefix("floating point `"))
    {
        // Go prints the literal when a number does not fit an integer field.
        if integer_target && got.starts_with("floating") {
            format!("number {}", n.trim_end_matches('`'))
        } else {
            "number".into()
        }
    } else if got.starts_with("boolean") {
        "bool".into()
    } else if got == "sequence" {
        "array".into()
    } else if got == "map" {
        "object".into()
    } else {
        got.to_string()
    }
}

/// Go's type name for what serde expected.
fn go_type(expected: &str) -> String {
    match expected {
        "i32" => "int32".into(),
        "i64" => "int64".into(),
        "u32" => "uint32".into(),
        "f64" => "float64".into(),
        "a string" | "a base64-encoded string" => "string".into(),
        "a boolean" => "bool".into(),
        "a sequence" => "[]interface {}".into(),
        "a map" => "map[string]interface {}".into(),
        "Quantity" => "resource.Quantity".into(),
        "IntOrString" => "intstr.IntOrString".into(),
        other if other.starts_with(|c: char| c.is_ascii_uppercase()) => format!("v1.{other}"),
        other => other.to_string(),
    }
}

/// The Go struct holding the failing field and the field's dotted JSON path (array indices
/// and map keys left out, as Go reports it). Found by decoding again with the candidate
/// parent replaced by `true`: serde then names the type it expected there.
fn struct_field<T: DeserializeOwned>(
    info: &ResourceInfo,
    obj: &Value,
    steps: &[Step],
) -> Option<(String, String)> {
    let mut end = steps.len();
    loop {
        let k = steps[..end]
            .iter()
            .rposition(|s| matches!(s, Step::Key(_)))?;
        let parent = if k == 0 {
            Some(info.kind.to_string())
        } else {
            expected_at::<T>(obj, &steps[..k], Value::Bool(true))
        };
        match parent {
            Some(name) if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
                let path: Vec<&str> = steps[..=k]
                    .iter()
                    .filter_map(|s| match s {
                        Step::Key(k) => Some(k.as_str()),
                        Step::Index(_) => None,
                    })
                    .collect();
                return Some((name, path.join(".")));
            }
            // The step was a map key (e.g. `metadata.labels.foo`): Go names the map field.
            _ => end = k,
        }
    }
}

/// The Go type of the elements of the list or map at `steps`.
fn probe_element_type<T: DeserializeOwned>(obj: &Value, steps: &[Step], probe: Value) -> String {
    let mut inner = steps.to_vec();
    inner.push(match &probe {
        Value::Array(_) => Step::Index(0),
        _ => Step::Key("k".into()),
    });
    let mut copy = obj.clone();
    if let Some(slot) = slot_at(&mut copy, steps) {
        *slot = probe;
    }
    match serde_path_to_error::deserialize::<_, T>(&copy) {
        Err(e) => type_mismatch(&e.inner().to_string())
            .map(|(_, exp)| go_type(exp))
            .unwrap_or_default(),
        Ok(_) => String::new(),
    }
}

/// What serde expects at `steps`, found by putting `probe` there and decoding again.
fn expected_at<T: DeserializeOwned>(obj: &Value, steps: &[Step], probe: Value) -> Option<String> {
    let mut copy = obj.clone();
    *slot_at(&mut copy, steps)? = probe;
    let err = serde_path_to_error::deserialize::<_, T>(&copy).err()?;
    type_mismatch(&err.inner().to_string()).map(|(_, exp)| exp.to_string())
}

fn slot_at<'a>(v: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps.iter().try_fold(v, |v, s| match s {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}
