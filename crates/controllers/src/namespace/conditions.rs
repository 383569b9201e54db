//! The namespace deletion conditions (upstream `deletion/status_condition_utils.go`):
//! each type is reported `False` with an "ok" reason until something goes wrong.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The condition types this controller maintains, in upstream's order, with their "ok"
/// reason and message.
const CONDITION_TYPES: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
];

/// What is left after one pass over the namespace's content.
#[derive(Debug, Default)]
pub struct ContentTotals {
    /// `resource.group` → objects that remain without a finalizer to explain them.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer → objects it holds.
    pub finalizers: BTreeMap<String, usize>,
}

/// Collects failures during one pass, then writes the conditions.
#[derive(Debug, Default)]
pub struct ConditionUpdater {
    new_conditions: Vec<NamespaceCondition>,
    delete_content_errors: Vec<String>,
}

fn condition(type_: &str, status: &str, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
    }
}

impl ConditionUpdater {
    /// Discovery failed (upstream `ProcessDiscoverResourcesErr`).
    pub fn discovery_error(&mut self, message: String) {
        self.new_conditions.push(condition(
            "NamespaceDeletionDiscoveryFailure",
            "True",
            "DiscoveryFailed",
            message,
        ));
    }

    /// Deleting one resource's content failed (upstream `ProcessDeleteContentErr`).
    pub fn delete_content_error(&mut self, message: String) {
        self.delete_content_errors.push(message);
    }

    /// What remains (upstream `ProcessContentTotals`).
    pub fn content_totals(&mut self, totals: &ContentTotals) {
        let remaining: Vec<String> = totals
            .remaining
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect();
        if !totals.remaining.is_empty() {
            self.new_conditions.push(condition(
                "NamespaceContentRemaining",
                "True",
                "SomeResourcesRemain",
                format!(
                    "Some resources are remaining: {}",
                    sorted(remaining).join(", ")
                ),
            ));
        }
        let by_finalizer: Vec<String> = totals
            .finalizers
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        if !totals.finalizers.is_empty() {
            self.new_conditions.push(condition(
                "NamespaceFinalizersRemaining",
                "True",
                "SomeFinalizerRemain",
                format!(
                    "Some finalizers are remaining: {}",
                    sorted(by_finalizer).join(", ")
                ),
            ));
        }
    }

    /// Writes the conditions into `status`; whether anything changed.
    pub fn update(mut self, status: &mut NamespaceStatus) -> bool {
        if !self.delete_content_errors.is_empty()
            && !self
                .new_conditions
                .iter()
                .any(|c| c.type_ == "NamespaceDeletionContentFailure")
        {
            let n = self.delete_content_errors.len();
            let msgs = sorted(self.delete_content_errors.clone()).join(", ");
            self.new_conditions.push(condition(
                "NamespaceDeletionContentFailure",
                "True",
                "ContentDeletionFailed",
                format!("Failed to delete all resource types, {n} remaining: {msgs}"),
            ));
        }
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        let mut changed = false;
        for (type_, ok_reason, ok_message) in CONDITION_TYPES {
            let new = self
                .new_conditions
                .iter()
                .find(|c| c.type_ == type_)
                .cloned()
                .unwrap_or_else(|| condition(type_, "False", ok_reason, ok_message.into()));
            match conditions.iter_mut().find(|c| c.type_ == type_) {
                None => {
                    conditions.push(new);
                    changed = true;
                }
                Some(old) => {
                    if old.status != new.status
                        || old.message != new.message
                        || old.reason != new.reason
                    {
                        if old.status != new.status {
                            old.last_transition_time = new.last_transition_time;
                        }
                        old.status = new.status;
                        old.reason = new.reason;
                        old.message = new.message;
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ok_conditions_are_written_once() {
        let mut status = NamespaceStatus::default();
        assert!(ConditionUpdater::default().update(&mut status));
        let conditions = status.conditions.clone().unwrap();
        assert_eq!(conditions.len(), 5);
        assert!(conditions.iter().all(|c| c.status == "False"));
        assert_eq!(conditions[2].reason.as_deref(), Some("ContentDeleted"));
        assert!(
            !ConditionUpdater::default().update(&mut status),
            "no change the second time"
        );
    }

    #[test]
    fn remaining_finalizers_and_failures_are_reported() {
        let mut status = NamespaceStatus::default();
        let mut u = ConditionUpdater::default();
        let mut totals = ContentTotals::default();
        totals.finalizers.insert("example.com/hold".into(), 2);
        u.content_totals(&totals);
        u.delete_content_error("failed to delete pods in namespace x: boom".into());
        assert!(u.update(&mut status));
        let conditions = status.conditions.unwrap();
        let get = |t: &str| conditions.iter().find(|c| c.type_ == t).unwrap();
        let f = get("NamespaceFinalizersRemaining");
        assert_eq!(f.status, "True");
        assert_eq!(f.reason.as_deref(), Some("SomeFinalizerRemain"));
        assert_eq!(
            f.message.as_deref(),
            Some("Some finalizers are remaining: example.com/hold in 2 resource instances")
        );
        let c = get("NamespaceDeletionContentFailure");
        assert_eq!(
            c.message.as_deref(),
            Some("Failed to delete all resource types, 1 remaining: failed to delete pods in namespace x: boom")
        );
        assert_eq!(get("NamespaceContentRemaining").status, "False");
    }
}
