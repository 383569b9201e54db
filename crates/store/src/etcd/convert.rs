//! Conversions between etcd's protobuf messages and the store's types.

use bytes::Bytes;
use etcdv3client::pb;

use crate::{Error, Event, KeyValue, Revision};

/// etcd's error texts (`mvcc.ErrCompacted`, `mvcc.ErrFutureRev`) as gRPC carries them.
const COMPACTED: &str = "required revision has been compacted";
const FUTURE: &str = "required revision is a future revision";

/// A stored key as the store's [`KeyValue`]. Keys are the API server's ASCII paths.
pub(super) fn key_value(kv: pb::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        value: Bytes::from(kv.value),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        lease: kv.lease,
    }
}

/// A watch event as the store's [`Event`]. Deletions need `prev_kv` (the watch asks for
/// it); etcd leaves it out only when that revision was compacted meanwhile.
pub(super) fn event(event: pb::Event) -> crate::Result<Event> {
    let kv = event
        .kv
        .ok_or_else(|| Error::Internal("etcd watch event without a key".into()))?;
    if event.r#type == pb::event::EventType::Delete as i32 {
        let revision = kv.mod_revision;
        let prev = event.prev_kv.ok_or_else(|| {
            Error::Internal(format!(
                "etcd delete event for {} without its previous value",
                String::from_utf8_lossy(&kv.key)
            ))
        })?;
        Ok(Event::Delete {
            prev: key_value(prev),
            revision,
        })
    } else {
        Ok(Event::Put {
            kv: key_value(kv),
            prev: event.prev_kv.map(key_value),
        })
    }
}

/// Maps a failed etcd call. `requested` is the revision the call asked for and
/// `compacted` the best known compaction revision, for `Error::Compacted`.
pub(super) fn status_error(
    status: &tonic::Status,
    requested: Revision,
    compacted: Revision,
) -> Error {
    let message = status.message();
    if message.contains(COMPACTED) {
        Error::Compacted {
            requested,
            compacted,
        }
    } else if message.contains(FUTURE) {
        Error::FutureRevision(requested)
    } else {
        Error::Internal(format!("etcd: {message}"))
    }
}

/// The exclusive end of the key range holding every key that starts with `prefix`
/// (etcd's `clientv3.GetPrefixRangeEnd`); `[0]` ("all keys") for the empty prefix.
pub(super) fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The `(key, range_end)` pair of a prefix read or watch. The empty prefix means all
/// keys, which etcd spells as key `[0]` with range end `[0]`.
pub(super) fn prefix_range(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        (vec![0], vec![0])
    } else {
        (
            prefix.as_bytes().to_vec(),
            prefix_range_end(prefix.as_bytes()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_range_end(b"/registry/pods/"), b"/registry/pods0");
        assert_eq!(prefix_range_end(b"a\xff\xff"), b"b");
        assert_eq!(prefix_range_end(b"\xff"), vec![0]);
        assert_eq!(prefix_range(""), (vec![0], vec![0]));
    }

    #[test]
    fn etcd_revision_errors_map_to_store_errors() {
        let compacted =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
        assert_eq!(
            status_error(&compacted, 3, 7),
            Error::Compacted {
                requested: 3,
                compacted: 7
            }
        );
        let future =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision is a future revision");
        assert_eq!(status_error(&future, 9, 0), Error::FutureRevision(9));
        let other = tonic::Status::unavailable("connection refused");
        assert_eq!(
            status_error(&other, 0, 0),
            Error::Internal("etcd: connection refused".into())
        );
    }
}
