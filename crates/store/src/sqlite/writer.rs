//! The single writer: a thread owning the write connection that commits concurrent writes
//! together (group commit). It drains every queued operation, applies each with its own
//! compare-and-swap check in arrival order, commits once, publishes the batch's events
//! to watchers, then answers the callers.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{broadcast, oneshot};

use super::reader::latest_row;
use super::rows::Row;
use super::schema::{self, internal};
use crate::{Error, Event, KeyValue, Result, Revision};

/// A batch of committed events, in revision order, as broadcast to watchers.
pub(crate) type EventBatch = Arc<Vec<Event>>;

/// State the writer publishes for everyone else.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Latest committed revision.
    pub current: AtomicI64,
    /// Latest committed compaction revision.
    pub compacted: AtomicI64,
    /// Write transactions committed.
    pub transactions: AtomicU64,
    /// Key writes committed (creates, updates, deletes, lease expiries).
    pub writes: AtomicU64,
}

/// A write operation sent to the writer thread.
#[derive(Debug)]
pub(crate) enum Write {
    Create {
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
    /// Delete every key whose lease expired before `now_ms` (unix milliseconds).
    ExpireLeases {
        now_ms: i64,
    },
}

/// What a successful write returns.
#[derive(Debug)]
pub(crate) enum Written {
    Revision(Revision),
    Deleted(KeyValue, Revision),
    Compacted,
    Expired(usize),
}

/// A queued write and where to send its outcome.
pub(crate) struct Request {
    pub write: Write,
    pub reply: oneshot::Sender<Result<Written>>,
}

/// Milliseconds since the unix epoch (lease expiry is wall-clock so it survives restarts).
pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The writer thread's state.
pub(crate) struct Writer {
    conn: Connection,
    /// Revision the next row is expected to get.
    next_revision: Revision,
    shared: Arc<Shared>,
    events: broadcast::Sender<EventBatch>,
    max_batch: usize,
}

impl Writer {
    /// Takes over `conn`, whose committed revisions are already published in `shared`.
    pub fn new(
        conn: Connection,
        shared: Arc<Shared>,
        events: broadcast::Sender<EventBatch>,
        max_batch: usize,
    ) -> Writer {
        let next_revision = shared.current.load(Ordering::SeqCst) + 1;
        Writer {
            conn,
            next_revision,
            shared,
            events,
            max_batch: max_batch.max(1),
        }
    }

    /// Serves requests until every sender is gone.
    pub fn run(mut self, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    fn commit_batch(&mut self, batch: Vec<Request>) {
        let first_revision = self.next_revision;
        match self.apply_batch(&batch) {
            Ok((outcomes, events, compacted)) => {
                self.shared
                    .current
                    .store(self.next_revision - 1, Ordering::SeqCst);
                if let Some(revision) = compacted {
                    self.shared.compacted.store(revision, Ordering::SeqCst);
                }
                self.shared.transactions.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .writes
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                if !events.is_empty() {
                    // No receivers is fine: nobody watches.
                    let _ = self.events.send(Arc::new(events));
                }
                self.answer(batch, outcomes);
            }
            Err(err) => {
                tracing::error!(error = %err, "sqlite store: write transaction failed");
                self.next_revision = schema::current_revision(&self.conn)
                    .map(|rev| rev + 1)
                    .unwrap_or(first_revision);
                let err = internal(err);
                let outcomes = batch.iter().map(|_| Err(err.clone())).collect();
                self.answer(batch, outcomes);
            }
        }
    }

    fn answer(&self, batch: Vec<Request>, outcomes: Vec<Result<Written>>) {
        for (request, outcome) in batch.into_iter().zip(outcomes) {
            // The caller may have given up waiting; the write stands regardless.
            let _ = request.reply.send(outcome);
        }
    }

    /// Applies the batch in one transaction. Each write runs in a savepoint so a
    /// sqlite error in one write fails only that write.
    #[allow(clippy::type_complexity)]
    fn apply_batch(
        &mut self,
        batch: &[Request],
    ) -> rusqlite::Result<(Vec<Result<Written>>, Vec<Event>, Option<Revision>)> {
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        let mut compacted = None;
        for request in batch {
            let revision_before = self.next_revision;
            let events_before = events.len();
            let compacted_before = compacted;
            let savepoint = tx.savepoint()?;
            let mut op = Apply {
                conn: &savepoint,
                next_revision: &mut self.next_revision,
                events: &mut events,
                compacted: &mut compacted,
            };
            match op.apply(&request.write) {
                Ok(outcome) => {
                    savepoint.commit()?;
                    outcomes.push(outcome);
                }
                Err(err) => {
                    drop(savepoint); // rolls the write back
                    self.next_revision = revision_before;
                    events.truncate(events_before);
                    compacted = compacted_before;
                    outcomes.push(Err(internal(err)));
                }
            }
        }
        tx.commit()?;
        Ok((outcomes, events, compacted))
    }
}

/// One write applied inside the batch's transaction. The outer `Result` is a sqlite
/// failure; the inner one is the write's own outcome (a failed CAS writes nothing).
struct Apply<'a> {
    conn: &'a Connection,
    next_revision: &'a mut Revision,
    events: &'a mut Vec<Event>,
    /// Set when this batch compacts.
    compacted: &'a mut Option<Revision>,
}

impl Apply<'_> {
    fn apply(&mut self, write: &Write) -> rusqlite::Result<Result<Written>> {
        match write {
            Write::Create { key, value, ttl } => self.create(key, value, *ttl),
            Write::Update {
                key,
                value,
                expected,
            } => self.update(key, value, *expected),
            Write::Delete { key, expected } => self.delete(key, *expected),
            Write::Compact { revision } => self.compact(*revision),
            Write::ExpireLeases { now_ms } => self.expire_leases(*now_ms),
        }
    }

    fn create(
        &mut self,
        key: &str,
        value: &Bytes,
        ttl: Option<Duration>,
    ) -> rusqlite::Result<Result<Written>> {
        let latest = latest_row(self.conn, key)?;
        if latest.as_ref().is_some_and(|row| !row.deleted) {
            return Ok(Err(Error::AlreadyExists(key.to_owned())));
        }
        let lease = match ttl {
            Some(ttl) => self.grant_lease(ttl)?,
            None => 0,
        };
        let row = self.insert(Row {
            id: *self.next_revision,
            name: key.to_owned(),
            created: true,
            deleted: false,
            create_revision: *self.next_revision,
            prev_revision: latest.map_or(0, |row| row.id),
            lease,
            value: value.clone(),
        })?;
        self.events.push(row.event(None));
        Ok(Ok(Written::Revision(row.id)))
    }

    fn update(
        &mut self,
        key: &str,
        value: &Bytes,
        expected: Revision,
    ) -> rusqlite::Result<Result<Written>> {
        let latest = match self.live_row(key, Some(expected))? {
            Ok(row) => row,
            Err(err) => return Ok(Err(err)),
        };
        let row = self.insert(Row {
            id: *self.next_revision,
            name: key.to_owned(),
            created: false,
            deleted: false,
            create_revision: latest.create_revision,
            prev_revision: latest.id,
            lease: latest.lease,
            value: value.clone(),
        })?;
        if latest.lease > 0 {
            // A write restarts the lease's TTL, as the API server re-attaches a fresh lease
            // to every Event write on etcd.
            self.conn
                .prepare_cached("UPDATE kine_lease SET expires_at_ms = ?1 + ttl_ms WHERE id = ?2")?
                .execute(params![unix_millis(SystemTime::now()), latest.lease])?;
        }
        self.events.push(row.event(Some(&latest)));
        Ok(Ok(Written::Revision(row.id)))
    }

    fn delete(
        &mut self,
        key: &str,
        expected: Option<Revision>,
    ) -> rusqlite::Result<Result<Written>> {
        let latest = match self.live_row(key, expected)? {
            Ok(row) => row,
            Err(err) => return Ok(Err(err)),
        };
        // The tombstone keeps the deleted value so watch history can report it.
        let tombstone = self.insert(Row {
            id: *self.next_revision,
            name: key.to_owned(),
            created: false,
            deleted: true,
            create_revision: latest.create_revision,
            prev_revision: latest.id,
            lease: latest.lease,
            value: latest.value.clone(),
        })?;
        if latest.lease > 0 {
            self.conn
                .prepare_cached("DELETE FROM kine_lease WHERE id = ?1")?
                .execute([latest.lease])?;
        }
        self.events.push(tombstone.event(Some(&latest)));
        Ok(Ok(Written::Deleted(latest.key_value(), tombstone.id)))
    }

    /// The key's live row, checked against `expected`.
    fn live_row(&self, key: &str, expected: Option<Revision>) -> rusqlite::Result<Result<Row>> {
        Ok(match latest_row(self.conn, key)? {
            None => Err(Error::NotFound(key.to_owned())),
            Some(row) if row.deleted => Err(Error::NotFound(key.to_owned())),
            Some(row) if expected.is_some_and(|rev| rev != row.id) => Err(Error::Conflict {
                key: key.to_owned(),
                current: row.id,
            }),
            Some(row) => Ok(row),
        })
    }

    fn grant_lease(&self, ttl: Duration) -> rusqlite::Result<i64> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let expires_at_ms = unix_millis(SystemTime::now()).saturating_add(ttl_ms);
        self.conn
            .prepare_cached("INSERT INTO kine_lease (ttl_ms, expires_at_ms) VALUES (?1, ?2)")?
            .execute(params![ttl_ms, expires_at_ms])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Appends `row`; sqlite assigns the revision. The expected id is only a guess from
    /// the single writer's counter, so the assigned one is taken and a create's
    /// create_revision fixed if they ever differ.
    fn insert(&mut self, mut row: Row) -> rusqlite::Result<Row> {
        self.conn
            .prepare_cached(
                "INSERT INTO kine (name, created, deleted, create_revision, prev_revision, lease, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                row.name,
                row.created,
                row.deleted,
                row.create_revision,
                row.prev_revision,
                row.lease,
                row.value.as_ref(),
            ])?;
        let id = self.conn.last_insert_rowid();
        if id != row.id && row.created {
            self.conn
                .prepare_cached("UPDATE kine SET create_revision = ?1 WHERE id = ?1")?
                .execute([id])?;
            row.create_revision = id;
        }
        row.id = id;
        *self.next_revision = id + 1;
        Ok(row)
    }

    /// Removes history superseded at or before `revision` (see [`super::SqliteStore`]).
    fn compact(&mut self, revision: Revision) -> rusqlite::Result<Result<Written>> {
        let current = *self.next_revision - 1;
        if revision > current {
            return Ok(Err(Error::FutureRevision(revision)));
        }
        let compacted = schema::compacted_revision(self.conn)?;
        if revision <= compacted {
            return Ok(Ok(Written::Compacted));
        }
        // Rows written in (compacted, revision] supersede their predecessors, which no
        // read at or after `revision` can see; tombstones in that range hide nothing
        // that is still stored. A key's latest row at `revision` is always kept.
        self.conn
            .prepare_cached(
                "DELETE FROM kine WHERE id IN (
                     SELECT prev_revision FROM kine
                     WHERE id > ?1 AND id <= ?2 AND prev_revision > 0)",
            )?
            .execute(params![compacted, revision])?;
        self.conn
            .prepare_cached("DELETE FROM kine WHERE deleted = 1 AND id > ?1 AND id <= ?2")?
            .execute(params![compacted, revision])?;
        schema::set_compacted_revision(self.conn, revision)?;
        *self.compacted = Some(revision);
        Ok(Ok(Written::Compacted))
    }

    fn expire_leases(&mut self, now_ms: i64) -> rusqlite::Result<Result<Written>> {
        let expired: Vec<String> = self
            .conn
            .prepare_cached(
                // Driven by the expiry index; `lease > 0` lets the partial index serve.
                "SELECT k.name FROM kine AS k
                 WHERE k.lease > 0
                   AND k.lease IN (SELECT id FROM kine_lease WHERE expires_at_ms <= ?1)
                   AND k.deleted = 0
                   AND k.id = (SELECT MAX(id) FROM kine WHERE name = k.name)
                 ORDER BY k.id",
            )?
            .query_map([now_ms], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut deleted = 0;
        for key in &expired {
            if self.delete(key, None)?.is_ok() {
                deleted += 1;
            }
        }
        // Leases whose keys are gone otherwise (none expected) would linger forever.
        self.conn
            .prepare_cached("DELETE FROM kine_lease WHERE expires_at_ms <= ?1")?
            .execute([now_ms])?;
        Ok(Ok(Written::Expired(deleted)))
    }
}
