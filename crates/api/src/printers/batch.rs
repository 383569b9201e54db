//! `batch/v1` kinds.

use serde_json::Value;

use super::{
    age, age_cell, arr_at, bool_ptr, col, container_cells, int_at, name, since, str_at, timestamp,
    Printer, AGE, CONTAINERS, IMAGES, NAME,
};
use crate::selectors::labels::format_label_selector;

const SELECTOR: crate::Column = col("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors", 1);

/// The status of a job condition type, if that condition is present.
fn job_condition(job: &Value, type_: &str) -> bool {
    arr_at(job, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == type_)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

/// Jobs.
pub static JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "Status of the job.", 0),
        col("Completions", "string", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.", 0),
        col("Duration", "string", "Time required to complete the job.", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    row: |job, now| {
        let succeeded = int_at(job, "/status/succeeded");
        let completions = match job.pointer("/spec/completions").and_then(Value::as_i64) {
            Some(c) => format!("{succeeded}/{c}"),
            None => {
                let parallelism = int_at(job, "/spec/parallelism");
                if parallelism > 1 {
                    format!("{succeeded}/1 of {parallelism}")
                } else {
                    format!("{succeeded}/1")
                }
            }
        };
        let duration = match (timestamp(job, "/status/startTime"), timestamp(job, "/status/completionTime")) {
            (None, _) => String::new(),
            (Some(_), None) => since(job, "/status/startTime", now),
            (Some(start), Some(end)) => age(end - start),
        };
        let status = if job_condition(job, "Complete") {
            "Complete"
        } else if job_condition(job, "Failed") {
            "Failed"
        } else if job.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
            "Terminating"
        } else if job_condition(job, "Suspended") {
            "Suspended"
        } else if job_condition(job, "FailureTarget") {
            "FailureTarget"
        } else {
            "Running"
        };
        let (names, images) = container_cells(arr_at(job, "/spec/template/spec/containers"));
        vec![
            name(job).into(),
            status.into(),
            completions.into(),
            duration.into(),
            age_cell(job, now),
            names.into(),
            images.into(),
            format_label_selector(job.pointer("/spec/selector")).into(),
        ]
    },
};

/// CronJobs.
pub static CRON_JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.", 0),
        col("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones", 0),
        col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.", 0),
        col("Active", "integer", "A list of pointers to currently running jobs.", 0),
        col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled.", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    row: |cj, now| {
        let last = if timestamp(cj, "/status/lastScheduleTime").is_some() {
            since(cj, "/status/lastScheduleTime", now)
        } else {
            "<none>".into()
        };
        let tz = cj.pointer("/spec/timeZone").and_then(Value::as_str).unwrap_or("<none>");
        let template = cj.pointer("/spec/jobTemplate/spec").unwrap_or(&Value::Null);
        let (names, images) = container_cells(arr_at(template, "/template/spec/containers"));
        vec![
            name(cj).into(),
            str_at(cj, "/spec/schedule").into(),
            tz.into(),
            bool_ptr(cj.pointer("/spec/suspend")).into(),
            (arr_at(cj, "/status/active").len() as i64).into(),
            last.into(),
            age_cell(cj, now),
            names.into(),
            images.into(),
            format_label_selector(template.get("selector")).into(),
        ]
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    #[test]
    fn job_rows() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let job = json!({"spec": {"completions": 3}, "status": {"succeeded": 3, "startTime": "2024-05-01T11:00:00Z",
            "completionTime": "2024-05-01T11:00:42Z", "conditions": [{"type": "Complete", "status": "True"}]}});
        let row = (JOB.row)(&job, now);
        assert_eq!(&row[1..4], &[json!("Complete"), json!("3/3"), json!("42s")]);
        let job =
            json!({"spec": {"parallelism": 2}, "status": {"startTime": "2024-05-01T11:55:00Z"}});
        let row = (JOB.row)(&job, now);
        assert_eq!(
            &row[1..4],
            &[json!("Running"), json!("0/1 of 2"), json!("5m")]
        );
        let cj = json!({"spec": {"schedule": "*/1 * * * *", "suspend": false}});
        let row = (CRON_JOB.row)(&cj, now);
        assert_eq!(
            &row[1..6],
            &[
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(0),
                json!("<none>")
            ]
        );
    }
}
