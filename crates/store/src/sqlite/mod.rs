//! The embedded backend: sqlite in the style of kine (k3s's etcd shim).
//!
//! * **Layout** (`schema`): one append-only table; row id = global revision. A write
//!   appends a row, a delete appends a tombstone. Revisions survive restarts and
//!   compaction (`AUTOINCREMENT` never reuses ids).
//! * **Writes** (`writer`): one thread owns the only write connection and commits
//!   whatever is queued in one transaction (group commit), checking each write's
//!   compare-and-swap in arrival order.
//! * **Reads** (`reader`): a pool of read-only connections; WAL gives each read a
//!   consistent snapshot without blocking the writer.
//! * **Watch** (`watch`): table history joined to the writer's broadcast of committed
//!   events, with no gap and no duplicate.
//! * **Upkeep** (`maintenance`): TTL leases (expiry stored as wall-clock time) and
//!   periodic compaction, both as ordinary writes.
//!
//! Durability: WAL makes every transaction atomic, so a crash or kill at any moment
//! leaves a consistent database. [`Synchronous::Full`] (default) also makes every
//! acknowledged write survive power loss; [`Synchronous::Normal`] trades that for fewer
//! fsyncs (see its doc).
//!
//! Compaction at revision `r` keeps, for every key, its latest row at or below `r` (unless
//! that is a tombstone) and everything newer, so `list` at `r` or later and `watch` after
//! `r` or later still work, while anything older answers `Compacted`.

mod maintenance;
mod options;
mod reader;
mod rows;
mod schema;
mod watch;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{broadcast, oneshot};

pub use options::{SqliteOptions, Synchronous};

use reader::ReadPool;
use rows::KeyRange;
use writer::{EventBatch, Request, Shared, Write, Written};

use crate::{Error, KeyValue, Result, Revision, Store, WatchStream};

/// Counters of the writer, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Write transactions committed.
    pub transactions: u64,
    /// Key writes committed: creates, updates, deletes (including lease expiries).
    pub writes: u64,
}

/// The sqlite-backed [`Store`]. Open once and share as `Arc<dyn Store>`; dropping the last
/// handle finishes queued writes and stops the background threads.
pub struct SqliteStore {
    writes: Option<mpsc::Sender<Request>>,
    readers: Arc<ReadPool>,
    shared: Arc<Shared>,
    events: broadcast::Sender<EventBatch>,
    writer_thread: Option<JoinHandle<()>>,
    /// Dropping the sender stops the maintenance thread.
    maintenance: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl SqliteStore {
    /// Opens (or creates, with parent directories) the database at `path` with default
    /// [`SqliteOptions`].
    pub fn open(path: &Path) -> Result<Arc<SqliteStore>> {
        SqliteStore::open_with(path, SqliteOptions::default())
    }

    /// Opens (or creates) the database at `path`. Needs no async runtime; the methods of
    /// [`Store`] need a tokio runtime (they use its blocking pool for reads).
    pub fn open_with(path: &Path, options: SqliteOptions) -> Result<Arc<SqliteStore>> {
        let conn = schema::open_writer(path, options.synchronous)?;
        let shared = Arc::new(Shared::default());
        shared.current.store(
            schema::current_revision(&conn).map_err(schema::internal)?,
            Ordering::SeqCst,
        );
        shared.compacted.store(
            schema::compacted_revision(&conn).map_err(schema::internal)?,
            Ordering::SeqCst,
        );
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let (writes, requests) = mpsc::channel();
        let writer =
            writer::Writer::new(conn, Arc::clone(&shared), events.clone(), options.max_batch);
        let writer_thread = std::thread::Builder::new()
            .name("k8rs-store-writer".into())
            .spawn(move || writer.run(requests))
            .map_err(|e| Error::Internal(format!("starting store writer: {e}")))?;
        let (stop, stopped) = mpsc::channel();
        let maintenance_thread = {
            let writes = writes.clone();
            let shared = Arc::clone(&shared);
            let options = options.clone();
            std::thread::Builder::new()
                .name("k8rs-store-upkeep".into())
                .spawn(move || maintenance::run(writes, shared, options, stopped))
                .map_err(|e| Error::Internal(format!("starting store upkeep: {e}")))?
        };
        Ok(Arc::new(SqliteStore {
            writes: Some(writes),
            readers: Arc::new(ReadPool::new(path.to_owned(), options.read_connections)),
            shared,
            events,
            writer_thread: Some(writer_thread),
            maintenance: Some((stop, maintenance_thread)),
        }))
    }

    /// The writer's counters so far.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            writes: self.shared.writes.load(Ordering::Relaxed),
        }
    }

    async fn write(&self, write: Write) -> Result<Written> {
        let (reply, answer) = oneshot::channel();
        self.writes
            .as_ref()
            .ok_or_else(|| Error::Internal("store closed".into()))?
            .send(Request { write, reply })
            .map_err(|_| Error::Internal("store writer stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Internal("store writer stopped".into()))?
    }
}

fn unexpected(written: Written) -> Error {
    Error::Internal(format!("store writer answered unexpectedly: {written:?}"))
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.readers.run(move |conn| reader::get(conn, &key)).await
    }

    async fn list(&self, prefix: &str, revision: Revision) -> Result<(Vec<KeyValue>, Revision)> {
        let range = KeyRange::prefix(prefix);
        self.readers
            .run(move |conn| reader::list(conn, &range, revision))
            .await
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision> {
        let key = key.to_owned();
        match self.write(Write::Create { key, value, ttl }).await? {
            Written::Revision(revision) => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        let key = key.to_owned();
        match self
            .write(Write::Update {
                key,
                value,
                expected,
            })
            .await?
        {
            Written::Revision(revision) => Ok(revision),
            other => Err(unexpected(other)),
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let key = key.to_owned();
        match self.write(Write::Delete { key, expected }).await? {
            Written::Deleted(prev, revision) => Ok((prev, revision)),
            other => Err(unexpected(other)),
        }
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // Subscribe before reading history (see the watch module).
        let live = self.events.subscribe();
        let watcher = watch::Watcher::start(prefix, after, live, Arc::clone(&self.readers)).await?;
        Ok(watcher.into_stream())
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self.write(Write::Compact { revision }).await? {
            Written::Compacted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.current.load(Ordering::SeqCst))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compacted.load(Ordering::SeqCst))
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.maintenance.take() {
            drop(stop);
            let _ = thread.join();
        }
        // With the last sender gone the writer commits what is queued and exits.
        self.writes.take();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}
