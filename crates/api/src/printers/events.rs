//! Events (`v1` and `events.k8s.io/v1` share upstream's printer).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{col, int_at, name, since, str_at, timestamp, Printer, NAME_DESCRIPTION};
use crate::Column;

const COLUMNS: &[Column] = &[
    col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded.", 0),
    col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future", 0),
    col("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0),
    col("Object", "string", "The object that this event is about.", 0),
    col("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.", 1),
    col("Source", "string", "The component reporting this event. Should be a short machine understandable string.", 1),
    col("Message", "string", "A human-readable description of the status of this operation.", 0),
    col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
    col("Count", "string", "The number of times this event has occurred.", 1),
    Column { name: "Name", type_: "string", format: "name", description: NAME_DESCRIPTION, priority: 1 },
];

/// `v1` Events.
pub static EVENT: Printer = Printer {
    columns: COLUMNS,
    row: event_row,
};

/// `events.k8s.io/v1` Events: mapped onto the `v1` shape, then printed the same way.
pub static EVENTS_V1: Printer = Printer {
    columns: COLUMNS,
    row: |obj, now| event_row(&to_core_event(obj), now),
};

/// The `v1` view of an `events.k8s.io/v1` Event (upstream's conversion through the internal type).
pub fn to_core_event(ev: &Value) -> Value {
    json!({
        "metadata": ev.get("metadata").cloned().unwrap_or(Value::Null),
        "involvedObject": ev.get("regarding").cloned().unwrap_or(Value::Null),
        "reason": ev.get("reason").cloned().unwrap_or(Value::Null),
        "message": ev.get("note").cloned().unwrap_or(Value::Null),
        "source": ev.get("deprecatedSource").cloned().unwrap_or(Value::Null),
        "firstTimestamp": ev.get("deprecatedFirstTimestamp").cloned().unwrap_or(Value::Null),
        "lastTimestamp": ev.get("deprecatedLastTimestamp").cloned().unwrap_or(Value::Null),
        "count": ev.get("deprecatedCount").cloned().unwrap_or(Value::Null),
        "type": ev.get("type").cloned().unwrap_or(Value::Null),
        "eventTime": ev.get("eventTime").cloned().unwrap_or(Value::Null),
        "series": ev.get("series").cloned().unwrap_or(Value::Null),
        "action": ev.get("action").cloned().unwrap_or(Value::Null),
        "related": ev.get("related").cloned().unwrap_or(Value::Null),
        "reportingComponent": ev.get("reportingController").cloned().unwrap_or(Value::Null),
        "reportingInstance": ev.get("reportingInstance").cloned().unwrap_or(Value::Null),
    })
}

fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() {
        b
    } else {
        a
    }
}

/// Upstream `formatEventSource`: `component, host`, falling back to the reporting fields.
fn event_source(ev: &Value) -> String {
    let component = first_non_empty(
        str_at(ev, "/source/component"),
        str_at(ev, "/reportingComponent"),
    );
    let instance = first_non_empty(str_at(ev, "/source/host"), str_at(ev, "/reportingInstance"));
    if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    }
}

fn event_row(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = if timestamp(ev, "/firstTimestamp").is_some() {
        since(ev, "/firstTimestamp", now)
    } else {
        since(ev, "/eventTime", now)
    };
    let mut last = if timestamp(ev, "/lastTimestamp").is_some() {
        since(ev, "/lastTimestamp", now)
    } else {
        first.clone()
    };
    let mut count = int_at(ev, "/count");
    if ev.get("series").is_some_and(Value::is_object) {
        last = since(ev, "/series/lastObservedTime", now);
        count = int_at(ev, "/series/count");
    } else if count == 0 {
        // Singleton events of the new API carry no count.
        count = 1;
    }
    let kind = str_at(ev, "/involvedObject/kind").to_lowercase();
    let involved = str_at(ev, "/involvedObject/name");
    let target = if involved.is_empty() {
        kind
    } else {
        format!("{kind}/{involved}")
    };
    vec![
        last.into(),
        str_at(ev, "/type").into(),
        str_at(ev, "/reason").into(),
        target.into(),
        str_at(ev, "/involvedObject/fieldPath").into(),
        event_source(ev).into(),
        str_at(ev, "/message").trim().into(),
        first.into(),
        count.into(),
        name(ev).into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_event_row() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ev = json!({"metadata": {"name": "web.1"}, "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
            "reason": "Pulled", "message": " done \n", "type": "Normal", "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 3});
        assert_eq!(
            event_row(&ev, now),
            vec![
                json!("60s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web"),
                json!("spec.containers{a}"),
                json!("kubelet, n1"),
                json!("done"),
                json!("10m"),
                json!(3),
                json!("web.1")
            ]
        );

        let new = json!({"metadata": {"name": "e"}, "regarding": {"kind": "Node", "name": "n1"}, "note": "hi", "type": "Warning",
            "reason": "R", "eventTime": "2024-05-01T11:58:00.000000Z", "reportingController": "ctrl"});
        let row = (EVENTS_V1.row)(&new, now);
        assert_eq!(
            &row[..8],
            &[
                json!("2m"),
                json!("Warning"),
                json!("R"),
                json!("node/n1"),
                json!(""),
                json!("ctrl"),
                json!("hi"),
                json!("2m")
            ]
        );
        assert_eq!(row[8], json!(1));
    }
}
