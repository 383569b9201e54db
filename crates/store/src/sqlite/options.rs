//! Tuning knobs of the sqlite backend, with defaults suitable for one API server.

use std::time::Duration;

/// How hard sqlite works to make a commit survive an operating-system crash or power loss.
///
/// Both levels keep the database consistent after a crash at any moment: in WAL mode a
/// transaction is either wholly in the log or not at all. They differ only in whether the
/// last acknowledged transactions can be lost when the *machine* (not the process) dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=FULL`: every commit fsyncs the WAL before callers are answered, like
    /// etcd. Group commit pays one fsync per batch, not per write.
    #[default]
    Full,
    /// `synchronous=NORMAL`: the WAL is fsynced only at checkpoints. A killed process loses
    /// nothing (the OS still holds the pages); a power loss may drop the last commits,
    /// never half of one.
    Normal,
}

impl Synchronous {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Options for [`super::SqliteStore::open_with`]. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Commit durability; default [`Synchronous::Full`].
    pub synchronous: Synchronous,
    /// How often the background compactor runs; `None` disables it. Default 5 minutes
    /// (the API server's own compaction interval upstream).
    pub compaction_interval: Option<Duration>,
    /// Revisions of history the background compactor keeps behind the current revision.
    /// Default 10,000: enough for watchers a few minutes behind under heavy load.
    pub compaction_retain: i64,
    /// Revisions compacted per write transaction, so compaction never stalls writers for
    /// long. Default 1,000.
    pub compaction_batch: i64,
    /// How often expired leases are looked for; TTL expiry is precise to this. Default 1 s.
    pub lease_check_interval: Duration,
    /// Most writes the writer thread commits in one transaction. Default 1,000.
    pub max_batch: usize,
    /// Read-only connections serving reads concurrently. Default 4.
    pub read_connections: usize,
    /// Committed batches buffered for live watchers; a watcher further behind re-reads
    /// the table. Default 1,024.
    pub watch_buffer: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            compaction_interval: Some(Duration::from_secs(300)),
            compaction_retain: 10_000,
            compaction_batch: 1_000,
            lease_check_interval: Duration::from_secs(1),
            max_batch: 1_000,
            read_connections: 4,
            watch_buffer: 1_024,
        }
    }
}
