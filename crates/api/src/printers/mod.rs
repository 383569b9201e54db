//! Table printers: upstream's column sets and cell formatting
//! (`pkg/printers/internalversion/printers.go`), written against `serde_json::Value`.
//!
//! Each kind has a [`Printer`]: its columns (priority 1 = `-o wide` only) and a row function.
//! Rows always carry every column, wide ones included, as upstream's server-side table
//! conversion does (`GenerateOptions{Wide: true}`); the client hides priority-1 columns.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::Column;

pub mod apps;
pub mod autoscaling;
pub mod batch;
pub mod cluster;
pub mod core;
pub mod events;
pub mod networking;
pub mod pod;
pub mod rbac;
pub mod storage;

/// A kind's table: column definitions and the function computing one row's cells.
#[derive(Debug)]
pub struct Printer {
    /// Column definitions, in cell order.
    pub columns: &'static [Column],
    /// Cells of one object's row at time `now` (ages are relative to it).
    pub row: fn(&Value, DateTime<Utc>) -> Vec<Value>,
}

/// `ObjectMeta.name`'s description, used by every `Name` column.
pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `ObjectMeta.creationTimestamp`'s description, used by every `Age` column.
pub const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The `Name` column.
pub const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};

/// The `Age` column.
pub const AGE: Column = col("Age", "string", AGE_DESCRIPTION, 0);

/// A column without a format.
pub const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
    priority: i32,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

/// Wide `Containers` column of workload kinds.
pub const CONTAINERS: Column = col(
    "Containers",
    "string",
    "Names of each container in the template.",
    1,
);
/// Wide `Images` column of workload kinds.
pub const IMAGES: Column = col(
    "Images",
    "string",
    "Images referenced by each container in the template.",
    1,
);

/// The table upstream serves for kinds without a printer (`Name`, `Created At`).
pub static DEFAULT: Printer = Printer {
    columns: &[
        NAME,
        Column {
            name: "Created At",
            type_: "date",
            format: "",
            description: AGE_DESCRIPTION,
            priority: 0,
        },
    ],
    row: default_row,
};

fn default_row(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let created = timestamp(obj, "/metadata/creationTimestamp")
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
    vec![name(obj).into(), created.into()]
}

/// Upstream `duration.HumanDuration`: `5s`, `2m3s`, `10m`, `3h5m`, `20h`, `2d3h`, `30d`, `2y5d`.
pub fn age(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Upstream `translateTimestampSince`: the age of the timestamp at `pointer`, `<unknown>`
/// when it is absent.
pub fn since(obj: &Value, pointer: &str, now: DateTime<Utc>) -> String {
    match timestamp(obj, pointer) {
        Some(t) => age(now - t),
        None => "<unknown>".into(),
    }
}

/// The `Age` cell: time since `metadata.creationTimestamp`.
pub fn age_cell(obj: &Value, now: DateTime<Utc>) -> Value {
    since(obj, "/metadata/creationTimestamp", now).into()
}

/// An RFC 3339 timestamp at `pointer`.
pub fn timestamp(obj: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let s = obj.pointer(pointer)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The string at `pointer`, `""` when absent.
pub fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The integer at `pointer`, `0` when absent.
pub fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The array at `pointer`, empty when absent.
pub fn arr_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The number of entries of the object or array at `pointer`.
pub fn len_at(obj: &Value, pointer: &str) -> i64 {
    match obj.pointer(pointer) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

/// `metadata.name`.
pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// A string, or the placeholder when it is empty (`<none>`, `<unset>`, `<unknown>`).
pub fn or(s: &str, placeholder: &str) -> String {
    if s.is_empty() {
        placeholder.into()
    } else {
        s.into()
    }
}

/// Go's `printBool` / `printBoolPtr`: `True`, `False`, or `<unset>`.
pub fn bool_ptr(v: Option<&Value>) -> String {
    match v.and_then(Value::as_bool) {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// Upstream `layoutContainerCells`: container names and images, comma-joined.
pub fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// A quantity's text as stored (`resource.Quantity.String()` of the canonical form); `0`
/// when absent, as upstream prints a zero quantity.
pub fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// An IntOrString's text (`intstr.String()`).
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `list + N more...` formatting of upstream's `listWithMoreString`.
pub fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        "<unset>".into()
    } else {
        ret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn human_duration_matches_upstream() {
        let cases = [
            (Duration::seconds(-2), "<invalid>"),
            (Duration::milliseconds(-1500), "0s"),
            (Duration::seconds(0), "0s"),
            (Duration::seconds(5), "5s"),
            (Duration::seconds(119), "119s"),
            (Duration::seconds(120), "2m"),
            (Duration::seconds(123), "2m3s"),
            (Duration::seconds(599), "9m59s"),
            (Duration::minutes(10), "10m"),
            (Duration::minutes(179), "179m"),
            (Duration::minutes(180), "3h"),
            (Duration::minutes(185), "3h5m"),
            (Duration::hours(8), "8h"),
            (Duration::hours(47), "47h"),
            (Duration::hours(48), "2d"),
            (Duration::hours(51), "2d3h"),
            (Duration::days(8), "8d"),
            (Duration::days(729), "729d"),
            (Duration::days(730), "2y"),
            (Duration::days(735), "2y5d"),
            (Duration::days(365 * 8), "8y"),
        ];
        for (d, want) in cases {
            assert_eq!(age(d), want, "{d:?}");
        }
    }

    #[test]
    fn default_table_prints_created_at() {
        let obj = serde_json::json!({"metadata": {"name": "r", "creationTimestamp": "2024-01-02T03:04:05Z"}});
        let row = (DEFAULT.row)(&obj, Utc::now());
        assert_eq!(
            row,
            vec![Value::from("r"), Value::from("2024-01-02T03:04:05Z")]
        );
    }
}
