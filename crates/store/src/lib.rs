//! Storage for the API server: a key-value store with MVCC revisions in etcd's model.
//!
//! Keys follow etcd's layout (`/registry/<resource>/<namespace>/<name>`); values are the
//! objects' JSON bytes. One global revision counter orders every write and becomes
//! `metadata.resourceVersion`. Backends: [`sqlite`] (embedded, kine-style) and [`etcd`].

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub mod etcd;
pub mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// A global, monotonically increasing write revision (etcd's `mod_revision`).
pub type Revision = i64;

/// One stored key at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Full key, e.g. `/registry/pods/default/web`.
    pub key: String,
    /// The object's bytes (JSON).
    pub value: Bytes,
    /// Revision that created this key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
    /// Lease id (0 = none); a key with a lease is deleted when the lease expires.
    pub lease: i64,
}

/// A change to one key, delivered by [`Store::watch`] in revision order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Key created (`kv.create_revision == kv.mod_revision`) or updated.
    Put {
        /// The new value.
        kv: KeyValue,
        /// The previous value, for updates.
        prev: Option<KeyValue>,
    },
    /// Key deleted at `revision`; `prev` is the value it had.
    Delete {
        /// The last value before deletion.
        prev: KeyValue,
        /// The deletion's revision.
        revision: Revision,
    },
}

impl Event {
    /// The revision at which this event happened.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }
    /// The key this event is about.
    pub fn key(&self) -> &str {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// Store errors. The API server maps them to upstream's HTTP statuses.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// Create of a key that exists (`409 AlreadyExists`).
    #[error("key already exists: {0}")]
    AlreadyExists(String),
    /// Get/update/delete of a missing key (`404 NotFound`).
    #[error("key not found: {0}")]
    NotFound(String),
    /// Compare-and-swap failed: the key is now at `current` (`409 Conflict`).
    #[error("revision conflict on {key}: current revision {current}")]
    Conflict {
        /// The key.
        key: String,
        /// The key's current `mod_revision`.
        current: Revision,
    },
    /// The requested revision was compacted (`410 Gone`, reason `Expired`).
    #[error("required revision {requested} has been compacted (oldest available {compacted})")]
    Compacted {
        /// Revision asked for.
        requested: Revision,
        /// The compaction revision.
        compacted: Revision,
    },
    /// A revision newer than the store's current one was asked for.
    #[error("revision {0} is in the future")]
    FutureRevision(Revision),
    /// Anything else (I/O, corruption): `500`.
    #[error("storage error: {0}")]
    Internal(String),
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, Error>;

/// A watch: events after the start revision, in order. Ends with `Err(Compacted)` if the
/// watcher falls so far behind that events it has not seen were compacted.
pub type WatchStream = BoxStream<'static, Result<Event>>;

/// The storage interface of the API server (an etcd v3 subset).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current value of `key`.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// All keys starting with `prefix`, sorted by key, as of `revision` (`0` = latest).
    /// Returns the values and the revision they were read at.
    /// `Err(Compacted)` if `revision` was compacted.
    async fn list(&self, prefix: &str, revision: Revision) -> Result<(Vec<KeyValue>, Revision)>;

    /// Create `key`; fails with `AlreadyExists`. `ttl` attaches a lease: the key is
    /// deleted (with a watch event) once it expires. Returns the new revision.
    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision>;

    /// Replace `key`'s value if its `mod_revision` is still `expected`; fails with
    /// `NotFound` or `Conflict`. Keeps an existing lease and restarts its TTL (an Event
    /// expires an hour after its last write). Returns the new revision.
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision>;

    /// Delete `key`, if `expected` is given only when its `mod_revision` still matches.
    /// Returns the deleted value and the deletion revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)>;

    /// Events for keys under `prefix` with revision > `after`. `Err(Compacted)` when
    /// `after` is older than the compaction revision.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Drop history older than `revision` (current values are always kept).
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// The latest revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// The revision below which history has been compacted.
    async fn compacted_revision(&self) -> Result<Revision>;
}
