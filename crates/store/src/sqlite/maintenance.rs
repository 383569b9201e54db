//! Background upkeep on its own thread: expiring leases and compacting history. Both go
//! through the writer like any other write, so they are ordinary transactions that
//! produce ordinary watch events.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::options::SqliteOptions;
use super::writer::{unix_millis, Request, Shared, Write, Written};
use crate::{Error, Result, Revision};

/// The maintenance loop; returns when `shutdown` is signalled or dropped.
pub(crate) fn run(
    writes: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    options: SqliteOptions,
    shutdown: mpsc::Receiver<()>,
) {
    let lease_interval = options.lease_check_interval.max(Duration::from_millis(1));
    // Leases that expired while the store was closed go at once.
    let mut next_lease_check = Instant::now();
    let mut next_compaction = options.compaction_interval.map(|i| Instant::now() + i);
    loop {
        let now = Instant::now();
        if now >= next_lease_check {
            let now_ms = unix_millis(SystemTime::now());
            match submit(&writes, Write::ExpireLeases { now_ms }) {
                Ok(Written::Expired(count)) if count > 0 => {
                    tracing::debug!(count, "sqlite store: deleted keys with expired leases");
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "sqlite store: expiring leases failed"),
            }
            next_lease_check = Instant::now() + lease_interval;
        }
        if let (Some(due), Some(interval)) = (next_compaction, options.compaction_interval) {
            if now >= due {
                let current = shared.current.load(Ordering::SeqCst);
                let target = current - options.compaction_retain;
                if let Err(err) = compact_in_steps(&writes, &shared, target, &options, &shutdown) {
                    tracing::warn!(error = %err, "sqlite store: compaction failed");
                }
                next_compaction = Some(Instant::now() + interval);
            }
        }
        let wake = next_compaction.map_or(next_lease_check, |c| c.min(next_lease_check));
        match shutdown.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// Compacts up to `target` in steps of `compaction_batch` revisions so writes interleave.
fn compact_in_steps(
    writes: &mpsc::Sender<Request>,
    shared: &Shared,
    target: Revision,
    options: &SqliteOptions,
    shutdown: &mpsc::Receiver<()>,
) -> Result<()> {
    let step = options.compaction_batch.max(1);
    let mut compacted = shared.compacted.load(Ordering::SeqCst);
    while compacted < target {
        if !matches!(shutdown.try_recv(), Err(mpsc::TryRecvError::Empty)) {
            return Ok(());
        }
        let revision = target.min(compacted.saturating_add(step));
        submit(writes, Write::Compact { revision })?;
        compacted = revision;
    }
    Ok(())
}

fn submit(writes: &mpsc::Sender<Request>, write: Write) -> Result<Written> {
    let (reply, answer) = oneshot::channel();
    writes
        .send(Request { write, reply })
        .map_err(|_| Error::Internal("store writer stopped".into()))?;
    answer
        .blocking_recv()
        .map_err(|_| Error::Internal("store writer stopped".into()))?
}
