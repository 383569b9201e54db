//! Test support shared by every [`Store`](crate::Store) backend's tests and by the
//! end-to-end tests: the behaviour suite every backend must pass ([`conformance`]) and a
//! launcher for a throwaway real etcd ([`etcd`]). Built for this crate's own tests and,
//! for other crates, behind the `testing` feature.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Event, WatchStream};

pub mod conformance;
pub mod etcd;

/// How long [`take`] waits for the next event before failing the test.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// A value from text.
pub fn value(text: &str) -> Bytes {
    Bytes::from(text.to_owned())
}

/// Takes `count` events from `stream`, failing the test if the stream ends, yields an
/// error, or stalls for longer than a generous timeout.
pub async fn take(stream: &mut WatchStream, count: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let next = tokio::time::timeout(EVENT_TIMEOUT, stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {count} events", events.len()));
        match next {
            Some(Ok(event)) => events.push(event),
            other => panic!("stream ended after {} events: {other:?}", events.len()),
        }
    }
    events
}
