//! `events.k8s.io/v1` Events (same storage as `v1` Events upstream; new field names).

use serde_json::Value;

use super::ResourceStrategy;
use crate::printers::events as p;
use crate::selectors::fields::{common_field, str_at};

/// The events.k8s.io resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![ResourceStrategy::new(
        ("events.k8s.io", "v1"),
        "Event",
        "events",
        true,
        &p::EVENTS_V1,
    )
    .short(&["ev"])
    .fields(event_field)]
}

/// Upstream's `events.k8s.io/v1` field label conversion maps new names onto the `v1`
/// selectable fields; values are read from the new-shape object.
pub fn event_field(ev: &Value, path: &str) -> Option<String> {
    let pointer = match path {
        "reason" => "/reason",
        "type" => "/type",
        "reportingController" => "/reportingController",
        "regarding.kind" => "/regarding/kind",
        "regarding.namespace" => "/regarding/namespace",
        "regarding.name" => "/regarding/name",
        "regarding.uid" => "/regarding/uid",
        "regarding.apiVersion" => "/regarding/apiVersion",
        "regarding.resourceVersion" => "/regarding/resourceVersion",
        "regarding.fieldPath" => "/regarding/fieldPath",
        _ => return common_field(ev, path),
    };
    Some(str_at(ev, pointer))
}
