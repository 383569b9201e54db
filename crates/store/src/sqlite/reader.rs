//! Reads: a small pool of read-only connections. WAL lets them read committed snapshots
//! while the writer commits; each call runs on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::rows::{row_columns, KeyRange, Row};
use super::schema::{self, internal};
use crate::{Error, Event, KeyValue, Result, Revision};

/// Read-only connections, opened lazily, at most `size` in use at once.
pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub fn new(path: PathBuf, size: usize) -> ReadPool {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// Runs `read` on a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(self: &Arc<Self>, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = match pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                Some(conn) => conn,
                None => schema::open_reader(&pool.path)?,
            };
            let result = read(&mut conn);
            pool.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }
}

/// The latest row of `key` (live or tombstone).
pub(crate) fn latest_row(conn: &Connection, key: &str) -> rusqlite::Result<Option<Row>> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached(concat!(
        "SELECT ",
        row_columns!(),
        " FROM kine WHERE name = ?1 ORDER BY id DESC LIMIT 1"
    ))?
    .query_row([key], |row| Row::from_sql(row, 0))
    .optional()
}

/// The current value of `key`.
pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    let row = latest_row(conn, key).map_err(internal)?;
    Ok(row.filter(|r| !r.deleted).map(|r| r.key_value()))
}

/// Keys in `range` as of `revision` (0 = latest), with the revision read at.
pub(crate) fn list(
    conn: &mut Connection,
    range: &KeyRange,
    revision: Revision,
) -> Result<(Vec<KeyValue>, Revision)> {
    // One transaction: the revision checks and the rows come from the same snapshot.
    let tx = conn.transaction().map_err(internal)?;
    let current = schema::current_revision(&tx).map_err(internal)?;
    let compacted = schema::compacted_revision(&tx).map_err(internal)?;
    let read_at = if revision == 0 { current } else { revision };
    if read_at > current {
        return Err(Error::FutureRevision(revision));
    }
    if read_at < compacted {
        return Err(Error::Compacted {
            requested: revision,
            compacted,
        });
    }
    let (start, end) = range.sql_bounds();
    let mut stmt = tx
        .prepare_cached(concat!(
            "SELECT ",
            row_columns!(),
            " FROM kine JOIN (
                 SELECT MAX(id) AS latest FROM kine
                 WHERE name >= ?1 AND name < ?2 AND id <= ?3
                 GROUP BY name
             ) ON id = latest
             WHERE deleted = 0
             ORDER BY name"
        ))
        .map_err(internal)?;
    let rows = stmt
        .query_map(rusqlite::params![start, end, read_at], |row| {
            Row::from_sql(row, 0)
        })
        .map_err(internal)?
        .map(|row| row.map(|r| r.key_value()))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(internal)?;
    Ok((rows, read_at))
}

/// Up to `limit` events in `range` with revision > `after`, oldest first, and whether
/// that was all of the stored history. `Err(Compacted)` if events after `after` may
/// already have been removed.
pub(crate) fn history(
    conn: &mut Connection,
    range: &KeyRange,
    after: Revision,
    limit: usize,
) -> Result<(Vec<Event>, bool)> {
    let tx = conn.transaction().map_err(internal)?;
    let compacted = schema::compacted_revision(&tx).map_err(internal)?;
    if after < compacted {
        return Err(Error::Compacted {
            requested: after,
            compacted,
        });
    }
    let (start, end) = range.sql_bounds();
    // Scans revisions after `after` (`+name` keeps sqlite off the name index, which
    // would read a prefix's whole history and sort it). The previous row is joined for
    // updates' `prev`; compaction only removes rows superseded at or before the
    // compaction revision, so it is still there.
    let mut stmt = tx
        .prepare_cached("SELECT k.id, k.name, k.created, k.deleted, k.create_revision, k.prev_revision,\n                    k.lease, k.value,\n                    p.id, p.name, p.created, p.deleted, p.create_revision, p.prev_revision,\n                    p.lease, p.value\n             FROM kine AS k LEFT JOIN kine AS p ON p.id = k.prev_revision\n             WHERE k.id > ?1 AND +k.name >= ?2 AND +k.name < ?3\n             ORDER BY k.id\n             LIMIT ?4")
        .map_err(internal)?;
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let events = stmt
        .query_map(rusqlite::params![after, start, end, limit_sql], |row| {
            let current = Row::from_sql(row, 0)?;
            let prev = match row.get::<_, Option<Revision>>(8)? {
                Some(_) => Some(Row::from_sql(row, 8)?),
                None => None,
            };
            Ok(current.event(prev.as_ref()))
        })
        .map_err(internal)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(internal)?;
    let complete = events.len() < limit;
    Ok((events, complete))
}
