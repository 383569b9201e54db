//! The on-disk layout (kine's single MVCC table) and how connections are opened.
//!
//! Every write appends one row to `kine`; its `id` is the global revision. A key's
//! current state is its row with the highest id; `deleted = 1` marks a tombstone, which
//! also carries the value the key had so watch history can report it. `prev_revision`
//! links a row to the key's previous row (0 for the first), so compaction can delete
//! exactly the rows a newer write superseded.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::options::Synchronous;
use crate::{Error, Result, Revision};

/// Bumped when the layout changes incompatibly.
const SCHEMA_VERSION: i64 = 1;

/// Key of the compaction revision in `kine_meta`.
const COMPACT_REVISION_KEY: &str = "compact_revision";

const DDL: &str = "
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    lease INTEGER NOT NULL,
    value BLOB NOT NULL
);
-- latest row of a key, prefix lists (covers a plain index on name)
CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id);
-- two writes can never both succeed a key's same row: the CAS invariant, enforced
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision);
CREATE INDEX IF NOT EXISTS kine_lease_index ON kine (lease) WHERE lease > 0;

CREATE TABLE IF NOT EXISTS kine_meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

-- wall-clock expiry so leases survive restarts
CREATE TABLE IF NOT EXISTS kine_lease (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ttl_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS kine_lease_expires_index ON kine_lease (expires_at_ms);
";

/// Wraps a sqlite error as [`Error::Internal`].
pub(crate) fn internal(err: rusqlite::Error) -> Error {
    Error::Internal(err.to_string())
}

/// Opens the writer's connection: creates the file and parent directories, switches to
/// WAL, applies `synchronous` and creates the schema.
pub(crate) fn open_writer(path: &Path, synchronous: Synchronous) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path).map_err(internal)?;
    configure_writer(&conn, synchronous)?;
    Ok(conn)
}

fn configure_writer(conn: &Connection, synchronous: Synchronous) -> Result<()> {
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(internal)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(internal)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Internal(format!(
            "sqlite refused WAL mode (journal_mode={mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", synchronous.pragma_value())
        .map_err(internal)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(internal)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(internal)?;
    if version > SCHEMA_VERSION {
        return Err(Error::Internal(format!(
            "database schema version {version} is newer than this binary's ({SCHEMA_VERSION})"
        )));
    }
    conn.execute_batch(DDL).map_err(internal)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(internal)?;
    Ok(())
}

/// Opens a read-only connection; the writer must have created the database already.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(internal)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(internal)?;
    Ok(conn)
}

/// The latest revision ever assigned (survives compaction: AUTOINCREMENT's sequence).
pub(crate) fn current_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    conn.prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'kine'")?
        .query_row([], |row| row.get(0))
        .optional()
        .map(|rev| rev.unwrap_or(0))
}

/// The revision history was compacted to (0 = never).
pub(crate) fn compacted_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    conn.prepare_cached("SELECT value FROM kine_meta WHERE name = ?1")?
        .query_row([COMPACT_REVISION_KEY], |row| row.get(0))
        .optional()
        .map(|rev| rev.unwrap_or(0))
}

/// Records the compaction revision (inside the compaction's transaction).
pub(crate) fn set_compacted_revision(
    conn: &Connection,
    revision: Revision,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO kine_meta (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![COMPACT_REVISION_KEY, revision])?;
    Ok(())
}
