//! `batch/v1` kinds (`pkg/apis/batch/validation/validation.go`).

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};

use super::cron;
use super::go_format;
use super::meta::{
    selector_matches, validate_label_selector, validate_labels, validate_nonnegative, IMMUTABLE,
};
use super::path::FieldPath;
use super::pod::validate_pod_template_spec;
use crate::FieldError;

/// Longest CronJob name: job names get an 11-character suffix and must stay DNS-1035 labels.
const MAX_CRON_JOB_NAME: usize = 52;

pub fn validate_job(job: &Job, old: Option<&Job>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let empty = JobSpec::default();
    let spec = job.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_job_spec(spec, &sp);
    match &spec.selector {
        None => errs.push(FieldError::required(sp.child("selector"), "")),
        Some(sel) => {
            errs.extend(validate_label_selector(sel, &sp.child("selector")));
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref());
            if !selector_matches(sel, labels) {
                errs.push(FieldError::invalid_repr(
                    sp.child("template").child("metadata").child("labels"),
                    go_format::string_map(labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    if let Some(old) = old.and_then(|o| o.spec.as_ref()) {
        errs.extend(validate_job_spec_update(spec, old, &sp));
    }
    errs
}

/// Fields of a job spec that may not change after creation.
fn validate_job_spec_update(new: &JobSpec, old: &JobSpec, sp: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // Completions may change only for elastic indexed jobs (completions == parallelism).
    let elastic =
        new.completion_mode.as_deref() == Some("Indexed") && new.completions == new.parallelism;
    if new.completions != old.completions && !elastic {
        let shown = new
            .completions
            .map(|c| c.to_string())
            .unwrap_or_else(|| "null".into());
        errs.push(FieldError::invalid_repr(
            sp.child("completions"),
            shown,
            IMMUTABLE,
        ));
    }
    if new.selector != old.selector {
        let shown = new
            .selector
            .as_ref()
            .map(go_format::label_selector)
            .unwrap_or_else(|| "null".into());
        errs.push(FieldError::invalid_repr(
            sp.child("selector"),
            shown,
            IMMUTABLE,
        ));
    }
    // Suspended jobs that never started may change scheduling directives; the rest is fixed.
    let mut template = new.template.clone();
    if new.suspend == Some(true) {
        if let (Some(t), Some(o)) = (template.spec.as_mut(), old.template.spec.as_ref()) {
            t.node_selector.clone_from(&o.node_selector);
            t.affinity.clone_from(&o.affinity);
            t.tolerations.clone_from(&o.tolerations);
            t.scheduling_gates.clone_from(&o.scheduling_gates);
        }
        if let (Some(m), Some(o)) = (template.metadata.as_mut(), old.template.metadata.as_ref()) {
            m.labels.clone_from(&o.labels);
            m.annotations.clone_from(&o.annotations);
        }
    }
    if template != old.template {
        errs.push(FieldError::invalid_repr(
            sp.child("template"),
            "core.PodTemplateSpec{…}",
            IMMUTABLE,
        ));
    }
    for (field, n, o) in [
        ("completionMode", &new.completion_mode, &old.completion_mode),
        ("managedBy", &new.managed_by, &old.managed_by),
    ] {
        if n != o {
            errs.push(FieldError::invalid(
                sp.child(field),
                n.clone().unwrap_or_default(),
                IMMUTABLE,
            ));
        }
    }
    if new.pod_failure_policy != old.pod_failure_policy {
        errs.push(FieldError::invalid_repr(
            sp.child("podFailurePolicy"),
            "&batch.PodFailurePolicy{…}",
            IMMUTABLE,
        ));
    }
    if new.backoff_limit_per_index != old.backoff_limit_per_index {
        let shown = new
            .backoff_limit_per_index
            .map(|c| c.to_string())
            .unwrap_or_else(|| "null".into());
        errs.push(FieldError::invalid_repr(
            sp.child("backoffLimitPerIndex"),
            shown,
            IMMUTABLE,
        ));
    }
    errs
}

/// `validateJobSpec`: counts, modes and a pod template that does not restart always.
fn validate_job_spec(spec: &JobSpec, sp: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (field, v) in [
        ("parallelism", spec.parallelism.map(i64::from)),
        ("completions", spec.completions.map(i64::from)),
        ("activeDeadlineSeconds", spec.active_deadline_seconds),
        ("backoffLimit", spec.backoff_limit.map(i64::from)),
        (
            "ttlSecondsAfterFinished",
            spec.ttl_seconds_after_finished.map(i64::from),
        ),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(v, &sp.child(field)));
        }
    }
    match spec.completion_mode.as_deref() {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    sp.child("completions"),
                    "when completion mode is Indexed",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            sp.child("completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
    if let Some(p) = spec.pod_replacement_policy.as_deref() {
        if p != "TerminatingOrFailed" && p != "Failed" {
            errs.push(FieldError::not_supported(
                sp.child("podReplacementPolicy"),
                p,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tp = sp.child("template");
    errs.extend(validate_pod_template_spec(&spec.template, &tp));
    let restart = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("");
    match restart {
        "" | "Always" => errs.push(FieldError::required(
            tp.child("spec").child("restartPolicy"),
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {}
        other => errs.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            other,
            &["OnFailure", "Never"],
        )),
    }
    errs
}

pub fn validate_cron_job(cj: &CronJob, old: Option<&CronJob>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(name) = cj.metadata.name.as_deref() {
        if name.len() > MAX_CRON_JOB_NAME {
            errs.push(FieldError::invalid(
                FieldPath::new("metadata").child("name"),
                name,
                format!("must be no more than {MAX_CRON_JOB_NAME} characters"),
            ));
        }
    }
    let sp = FieldPath::new("spec");
    let empty = Default::default();
    let spec = cj.spec.as_ref().unwrap_or(&empty);
    let old_spec = old.and_then(|o| o.spec.as_ref());
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(sp.child("schedule"), ""));
    } else {
        let schedule = spec.schedule.as_str();
        if let Err(e) = cron::parse_standard(schedule) {
            errs.push(FieldError::invalid(sp.child("schedule"), schedule, e));
        }
        let allow_tz = old_spec.is_some_and(|o| o.schedule.contains("TZ"));
        if allow_tz && schedule.contains("TZ") && spec.time_zone.is_some() {
            errs.push(FieldError::invalid(
                sp.child("schedule"),
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                sp.child("schedule"),
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(d) = spec.starting_deadline_seconds {
        errs.extend(validate_nonnegative(
            d,
            &sp.child("startingDeadlineSeconds"),
        ));
    }
    match spec.concurrency_policy.as_deref().unwrap_or("") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required(sp.child("concurrencyPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            sp.child("concurrencyPolicy"),
            other,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    let jtp = sp.child("jobTemplate");
    if let Some(m) = &spec.job_template.metadata {
        errs.extend(validate_labels(
            m.labels.as_ref(),
            &jtp.child("metadata").child("labels"),
        ));
    }
    let job_spec = spec.job_template.spec.clone().unwrap_or_default();
    errs.extend(validate_job_spec(&job_spec, &jtp.child("spec")));
    if job_spec.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            jtp.child("spec").child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    for (field, v) in [
        (
            "successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit,
        ),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(v.into(), &sp.child(field)));
        }
    }
    errs
}
