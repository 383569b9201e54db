//! Lease-based leader election, as client-go's `tools/leaderelection` with a
//! `LeaseLock`: replicas of a component (the scheduler, the controller manager) compete
//! for one `coordination.k8s.io/v1` Lease; the holder renews it every `retry_period`,
//! the others take it over once it has not been renewed for `lease_duration`.
//!
//! As upstream, candidates judge expiry by *when they observed* the lease change (a local
//! monotonic clock), never by the timestamps written in it, so clock skew between hosts
//! does not matter. A leader that cannot renew within `renew_deadline` stops leading;
//! components then exit (upstream's `OnStoppedLeading`: "leaderelection lost"), so a
//! replica that lost the lease never keeps acting beside the new leader.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// Upstream's defaults (`kube-scheduler` and `kube-controller-manager` flags
/// `--leader-elect-lease-duration`, `--leader-elect-renew-deadline`,
/// `--leader-elect-retry-period`).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// See [`DEFAULT_LEASE_DURATION`].
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// See [`DEFAULT_LEASE_DURATION`].
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// client-go's `JitterFactor`: candidates retry after `retry_period × (1 + rand × 1.2)`,
/// so they do not all hit the API server at once.
const JITTER_FACTOR: f64 = 1.2;

/// What to elect on and how.
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    /// The Lease's namespace (`kube-system` for the control plane).
    pub namespace: String,
    /// The Lease's name (`kube-scheduler`, `kube-controller-manager`).
    pub name: String,
    /// This candidate's `holderIdentity`, unique per process.
    pub identity: String,
    /// How long a lease stays valid without renewal, as seen by the other candidates.
    pub lease_duration: Duration,
    /// How long the leader keeps retrying a renewal before it gives up leading.
    pub renew_deadline: Duration,
    /// The time between attempts to acquire or renew.
    pub retry_period: Duration,
    /// Whether to hand the lease back (empty holder) when the component stops cleanly,
    /// so a standby takes over at once (upstream's `ReleaseOnCancel`, set by
    /// kube-scheduler and kube-controller-manager).
    pub release_on_cancel: bool,
}

impl LeaderElectionConfig {
    /// Upstream's defaults for the Lease `kube-system/<name>` with a fresh identity.
    pub fn new(name: &str) -> LeaderElectionConfig {
        LeaderElectionConfig {
            namespace: "kube-system".to_string(),
            name: name.to_string(),
            identity: default_identity(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            release_on_cancel: true,
        }
    }

    /// upstream's validation (`NewLeaderElector`): the lease must outlast the renew
    /// deadline, which must outlast the jittered retry period.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.lease_duration <= self.renew_deadline {
            return Err(anyhow!("leaseDuration must be greater than renewDeadline"));
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return Err(anyhow!(
                "renewDeadline must be greater than retryPeriod*JitterFactor"
            ));
        }
        if self.lease_duration.is_zero()
            || self.renew_deadline.is_zero()
            || self.retry_period.is_zero()
        {
            return Err(anyhow!(
                "leader election durations must be greater than zero"
            ));
        }
        if self.identity.is_empty() {
            return Err(anyhow!("Lock identity is empty"));
        }
        Ok(())
    }
}

/// `<hostname>_<uuid>`, the identity kube-scheduler and kube-controller-manager use.
pub fn default_identity() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// Leading ended: the lease could not be renewed within the renew deadline (or another
/// candidate holds it now). Upstream components exit on this.
#[derive(Debug)]
pub struct LeaderElectionLost;

impl std::fmt::Display for LeaderElectionLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("leaderelection lost")
    }
}

impl std::error::Error for LeaderElectionLost {}

/// Runs `component` only while this process holds the lease: waits to acquire it, then
/// runs `component` while renewing. Returns the component's own result if it ends,
/// `Ok` when `shutdown` completes first (the lease is then released if so configured),
/// or [`LeaderElectionLost`] (as an error) once the lease is lost; the component's
/// future is dropped at that point.
pub async fn run<F, S>(
    client: kube::Client,
    config: LeaderElectionConfig,
    component: F,
    shutdown: S,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
    S: std::future::Future<Output = ()>,
{
    config.validate()?;
    let mut elector = LeaderElector::new(client, config);
    tokio::pin!(shutdown);
    tokio::select! {
        () = elector.acquire() => {}
        () = &mut shutdown => return Ok(()),
    }
    // Renewals run in their own task: a component busy on its own task never delays them.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut renewing = tokio::spawn(async move {
        tokio::select! {
            () = elector.renew() => None,
            _ = stopped => Some(elector),
        }
    });
    let result = tokio::select! {
        r = component => r,
        _ = &mut renewing => return Err(LeaderElectionLost.into()),
        () = &mut shutdown => Ok(()),
    };
    let _ = stop.send(());
    match renewing.await {
        Ok(Some(mut elector)) => {
            if elector.config.release_on_cancel {
                elector.release().await;
            }
            result
        }
        // Lost just as the component ended.
        _ => Err(LeaderElectionLost.into()),
    }
}

/// Like [`run`], and ends the process when leadership is lost, as kube-scheduler and
/// kube-controller-manager do (`klog.FlushAndExit`, status 1): a stale leader must not
/// keep acting beside the new one.
pub async fn run_or_exit<F, S>(
    client: kube::Client,
    config: LeaderElectionConfig,
    component: F,
    shutdown: S,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>>,
    S: std::future::Future<Output = ()>,
{
    let name = format!("{}/{}", config.namespace, config.name);
    match run(client, config, component, shutdown).await {
        Err(e) if e.downcast_ref::<LeaderElectionLost>().is_some() => {
            tracing::error!(lease = %name, "leaderelection lost");
            std::process::exit(1);
        }
        other => other,
    }
}

/// The election state of one candidate (client-go's `LeaderElector`).
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    /// The lease as last read or written, and when this process saw it change.
    observed: Option<(Lease, Instant)>,
}

impl LeaderElector {
    /// A candidate for `config`'s lease.
    pub fn new(client: kube::Client, config: LeaderElectionConfig) -> LeaderElector {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    fn description(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    /// Whether this candidate held the lease when it last looked.
    pub fn is_leader(&self) -> bool {
        self.observed.as_ref().is_some_and(|(l, _)| {
            holder(l.spec.as_ref()).is_some_and(|h| h == self.config.identity)
        })
    }

    /// Tries until the lease is ours.
    pub async fn acquire(&mut self) {
        tracing::info!(lease = %self.description(), identity = %self.config.identity,
            "attempting to acquire leader lease");
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(lease = %self.description(), "successfully acquired lease");
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::info!(lease = %self.description(), error = %format!("{e:#}"),
                        "error retrieving resource lock")
                }
            }
            let jitter = rand::random::<f64>() * JITTER_FACTOR;
            tokio::time::sleep(self.config.retry_period.mul_f64(1.0 + jitter)).await;
        }
    }

    /// Renews every retry period; returns when a renewal did not succeed within the
    /// renew deadline (leadership is lost).
    pub async fn renew(&mut self) {
        loop {
            let deadline = tokio::time::Instant::now() + self.config.renew_deadline;
            let renewed = loop {
                let attempt = Instant::now();
                let result = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await;
                if attempt.elapsed() > self.config.retry_period {
                    tracing::warn!(lease = %self.description(), took = ?attempt.elapsed(),
                        "slow lease renewal");
                }
                match result {
                    Ok(Ok(true)) => break true,
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::info!(lease = %self.description(), error = %format!("{e:#}"),
                            "error renewing lease")
                    }
                    Err(_) => break false,
                }
                if tokio::time::Instant::now() + self.config.retry_period >= deadline {
                    break false;
                }
                tokio::time::sleep(self.config.retry_period).await;
            };
            if !renewed {
                tracing::info!(lease = %self.description(),
                    "failed to renew lease: timed out waiting for the condition");
                return;
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Hands the lease back: empty holder, 1 s duration (client-go's `release`).
    pub async fn release(&mut self) {
        if !self.is_leader() {
            return;
        }
        let Some((mut lease, _)) = self.observed.clone() else {
            return;
        };
        let now = MicroTime(Timestamp::now());
        let old = lease.spec.take().unwrap_or_default();
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: old.lease_transitions,
            ..Default::default()
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.description(), "released leader lease"),
            Err(e) => {
                tracing::warn!(lease = %self.description(), error = %e, "failed to release lock")
            }
        }
    }

    /// One attempt: create the lease, renew ours, or take over an expired one.
    /// `Ok(false)`: someone else validly holds it (or won the race).
    pub async fn try_acquire_or_renew(&mut self) -> anyhow::Result<bool> {
        let now = Timestamp::now();
        let seconds = self.config.lease_duration.as_secs().max(1) as i32;
        let mut desired = LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..Default::default()
        };

        let current = match self.api.get_opt(&self.config.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        namespace: Some(self.config.namespace.clone()),
                        ..Default::default()
                    },
                    spec: Some(desired),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(created) => {
                        self.observed = Some((created, Instant::now()));
                        Ok(true)
                    }
                    // Another candidate created it first.
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e).context("creating the lease"),
                };
            }
        };

        // The lease changed since we last looked: restart its expiry clock.
        let changed = match &self.observed {
            Some((seen, _)) => seen.spec != current.spec,
            None => true,
        };
        if changed {
            self.observed = Some((current.clone(), Instant::now()));
        }
        let observed_at = self.observed.as_ref().map(|(_, t)| *t).unwrap();
        let old = current.spec.clone().unwrap_or_default();
        let held_by = holder(Some(&old));
        let ours = held_by == Some(self.config.identity.as_str());
        if let Some(other) = held_by.filter(|_| !ours) {
            let valid_for =
                Duration::from_secs(old.lease_duration_seconds.unwrap_or(0).max(0) as u64);
            if observed_at + valid_for > Instant::now() {
                tracing::trace!(lease = %self.description(), holder = other, "lock is held and has not yet expired");
                return Ok(false);
            }
        }

        if ours {
            desired.acquire_time = old.acquire_time.clone();
            desired.lease_transitions = old.lease_transitions;
        } else {
            desired.lease_transitions = Some(old.lease_transitions.unwrap_or(0) + 1);
        }
        let mut lease = current;
        lease.spec = Some(desired);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observed = Some((updated, Instant::now()));
                Ok(true)
            }
            // Someone else renewed or took it between our read and write.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e).context("updating the lease"),
        }
    }
}

fn holder(spec: Option<&LeaseSpec>) -> Option<&str> {
    spec.and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_hostname_underscore_uuid() {
        let id = default_identity();
        let (host, uuid) = id.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{id}");
        assert_ne!(default_identity(), id);
    }

    #[test]
    fn upstream_defaults_validate_and_bad_durations_do_not() {
        let c = LeaderElectionConfig::new("kube-scheduler");
        assert_eq!(c.namespace, "kube-system");
        assert_eq!(
            (c.lease_duration, c.renew_deadline, c.retry_period),
            (
                Duration::from_secs(15),
                Duration::from_secs(10),
                Duration::from_secs(2)
            )
        );
        c.validate().unwrap();
        let mut bad = c.clone();
        bad.renew_deadline = Duration::from_secs(15);
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "leaseDuration must be greater than renewDeadline"
        );
        let mut bad = c;
        bad.retry_period = Duration::from_secs(9);
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "renewDeadline must be greater than retryPeriod*JitterFactor"
        );
    }
}
