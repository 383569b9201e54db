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
            .generation(),
    ]
}
