//! `batch/v1` defaults (`pkg/apis/batch/v1/defaults.go`). The job controller's selector and
//! `batch.kubernetes.io/controller-uid` labels are added by the jobs strategy, not here.

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};

use super::core::pod_template_spec;
use super::default_str;

pub(super) fn job(job: &mut Job) {
    let spec = job.spec.get_or_insert_with(Default::default);
    job_spec(spec);
    // The job's labels default to its template's labels.
    if let Some(labels) = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
    {
        if job.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
            job.metadata.labels = Some(labels);
        }
    }
}

fn job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        // With a per-index limit the global one is effectively off.
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    spec.completion_mode
        .get_or_insert_with(|| "NonIndexed".into());
    spec.suspend.get_or_insert(false);
    if let Some(policy) = spec.pod_failure_policy.as_mut() {
        for rule in policy.rules.iter_mut() {
            for pattern in rule.on_pod_conditions.iter_mut().flatten() {
                if pattern.status.is_empty() {
                    pattern.status = "True".into();
                }
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        let policy = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(policy.into());
    }
    pod_template_spec(&mut spec.template);
}

/// CronJob defaults; the job template's spec only gets pod template defaults (upstream does
/// not run `SetDefaults_Job` on it).
pub(super) fn cron_job(cj: &mut CronJob) {
    let spec = cj.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.concurrency_policy, "Allow");
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    if let Some(js) = spec.job_template.spec.as_mut() {
        pod_template_spec(&mut js.template);
    }
}
