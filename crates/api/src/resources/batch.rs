//! `batch/v1` resources (upstream `pkg/registry/batch/*`).

use serde_json::{json, Value};

use super::{CreateStatus, ResourceStrategy};
use crate::printers::batch as p;
use crate::selectors::fields::common_field;

const BATCH_V1: (&str, &str) = ("batch", "v1");

/// The batch resources.
pub fn resources() -> Vec<ResourceStrategy> {
    vec![
        ResourceStrategy::new(BATCH_V1, "CronJob", "cronjobs", true, &p::CRON_JOB)
            .short(&["cj"])
            .in_all()
            .status(CreateStatus::Reset(|_| json!({})))
            .generation(),
        ResourceStrategy::new(BATCH_V1, "Job", "jobs", true, &p::JOB)
            .in_all()
            .status(CreateStatus::Reset(|_| json!({})))
            .fields(|obj, path| match path {
                "status.successful" => Some(
                    obj.pointer("/status/succeeded")
                        .and_then(Value::as_i64)
                        .unwrap_or(0)
                        .to_string(),
                ),
                _ => common_field(obj, path),
            })
            .generation()
            .on_create(generate_job_selector),
    ]
}

/// Upstream's `generateSelector` (jobs strategy `PrepareForCreate`): unless the user chose
/// `manualSelector`, label the pod template with the job's name and uid and select on the
/// uid, so a job's pods belong to it alone.
fn generate_job_selector(job: &mut Value) {
    if job.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let name = job.pointer("/metadata/name").cloned().unwrap_or_default();
    let uid = job.pointer("/metadata/uid").cloned().unwrap_or_default();
    let Some(spec) = job.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if !template.get("metadata").is_some_and(Value::is_object) {
        template["metadata"] = json!({});
    }
    let labels = &mut template["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Some(labels) = labels.as_object_mut() {
        for key in ["job-name", "batch.kubernetes.io/job-name"] {
            labels.entry(key).or_insert_with(|| name.clone());
        }
        for key in ["controller-uid", "batch.kubernetes.io/controller-uid"] {
            labels.entry(key).or_insert_with(|| uid.clone());
        }
    }
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if !selector.get("matchLabels").is_some_and(Value::is_object) {
        selector["matchLabels"] = json!({});
    }
    if let Some(m) = selector["matchLabels"].as_object_mut() {
        m.entry("batch.kubernetes.io/controller-uid").or_insert(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_selector_is_generated_from_uid() {
        let mut job =
            json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {"spec": {}}}});
        generate_job_selector(&mut job);
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "pi"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["controller-uid"],
            "u1"
        );
    }

    #[test]
    fn manual_selector_is_left_alone() {
        let mut job = json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"manualSelector": true, "template": {}}});
        generate_job_selector(&mut job);
        assert!(job["spec"].get("selector").is_none());
    }
}
