//! Rows of the `kine` table and their translation to [`KeyValue`]s and [`Event`]s.

use bytes::Bytes;
use rusqlite::types::Value;

use crate::{Event, KeyValue, Revision};

/// Columns selected wherever a full row is read, in [`Row::from_sql`]'s order (a macro so
/// queries can be built with `concat!` at compile time).
macro_rules! row_columns {
    () => {
        "id, name, created, deleted, create_revision, prev_revision, lease, value"
    };
}
pub(crate) use row_columns;

/// One row of `kine`: one write to one key.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// The write's revision.
    pub id: Revision,
    pub name: String,
    pub created: bool,
    pub deleted: bool,
    pub create_revision: Revision,
    /// The key's previous row, 0 if none.
    pub prev_revision: Revision,
    pub lease: i64,
    /// For a tombstone: the value the key had when deleted.
    pub value: Bytes,
}

impl Row {
    /// Reads a row selected as [`row_columns!`] starting at column `offset`.
    pub fn from_sql(row: &rusqlite::Row<'_>, offset: usize) -> rusqlite::Result<Row> {
        Ok(Row {
            id: row.get(offset)?,
            name: row.get(offset + 1)?,
            created: row.get(offset + 2)?,
            deleted: row.get(offset + 3)?,
            create_revision: row.get(offset + 4)?,
            prev_revision: row.get(offset + 5)?,
            lease: row.get(offset + 6)?,
            value: Bytes::from(row.get::<_, Vec<u8>>(offset + 7)?),
        })
    }

    /// The key's value as written by this (non-tombstone) row.
    pub fn key_value(&self) -> KeyValue {
        KeyValue {
            key: self.name.clone(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.id,
            lease: self.lease,
        }
    }

    /// The watch event this row records; `prev` is the key's previous row if it is still
    /// stored and was a live value.
    pub fn event(&self, prev: Option<&Row>) -> Event {
        if self.deleted {
            // The tombstone carries the deleted value; its mod revision is prev_revision.
            Event::Delete {
                prev: KeyValue {
                    key: self.name.clone(),
                    value: self.value.clone(),
                    create_revision: self.create_revision,
                    mod_revision: self.prev_revision,
                    lease: self.lease,
                },
                revision: self.id,
            }
        } else {
            Event::Put {
                kv: self.key_value(),
                prev: prev
                    .filter(|p| !self.created && !p.deleted)
                    .map(Row::key_value),
            }
        }
    }
}

/// The keys starting with a prefix, as a half-open range `[start, end)` usable by an index.
#[derive(Debug, Clone)]
pub(crate) struct KeyRange {
    prefix: String,
    /// Smallest string greater than every key with the prefix; `None` when unbounded.
    end: Option<String>,
}

impl KeyRange {
    pub fn prefix(prefix: &str) -> KeyRange {
        KeyRange {
            prefix: prefix.to_owned(),
            end: prefix_end(prefix),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }

    /// SQL bounds for `name >= ?start AND name < ?end`. With no upper bound the end is an
    /// empty BLOB: sqlite orders every TEXT value before any BLOB.
    pub fn sql_bounds(&self) -> (Value, Value) {
        let end = match &self.end {
            Some(end) => Value::Text(end.clone()),
            None => Value::Blob(Vec::new()),
        };
        (Value::Text(self.prefix.clone()), end)
    }
}

/// Increments the last character that can be incremented (UTF-8 orders like code
/// points, so the result bounds all strings with the prefix).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_char() {
        assert_eq!(
            prefix_end("/registry/pods/").as_deref(),
            Some("/registry/pods0")
        );
        assert_eq!(prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn range_contains_only_prefixed_keys() {
        let range = KeyRange::prefix("/registry/pods/");
        assert!(range.contains("/registry/pods/default/web"));
        assert!(!range.contains("/registry/podsx"));
    }
}
