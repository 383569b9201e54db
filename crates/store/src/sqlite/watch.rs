//! Watch streams: history from the table, then the writer's live broadcast, joined
//! without gaps or duplicates.
//!
//! A watcher subscribes to the broadcast *before* reading history. Every event the
//! history read misses was committed after the read began, hence broadcast after the
//! subscription, hence received; events seen twice are dropped by revision. A watcher
//! that falls behind the broadcast buffer re-subscribes and re-reads the table from its
//! last delivered revision; only if that history was compacted does its stream end, with
//! `Err(Compacted)`.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError};

use super::reader::{self, ReadPool};
use super::rows::KeyRange;
use super::writer::EventBatch;
use crate::{Error, Event, Result, Revision, WatchStream};

/// Events read from the table per query while catching up.
const HISTORY_CHUNK: usize = 512;

/// The state of one watch stream.
pub(crate) struct Watcher {
    range: Arc<KeyRange>,
    /// Revision of the last event delivered (or the start revision).
    last: Revision,
    live: broadcast::Receiver<EventBatch>,
    readers: Arc<ReadPool>,
    /// Events fetched but not yet delivered, all newer than `last`.
    pending: VecDeque<Event>,
    /// The table may hold events after `last` that are not in `pending`.
    catching_up: bool,
    finished: bool,
}

impl Watcher {
    /// Starts a watch of `prefix` after revision `after`. `live` must be subscribed
    /// already; the first history read happens here so `Compacted` is reported at once.
    pub async fn start(
        prefix: &str,
        after: Revision,
        live: broadcast::Receiver<EventBatch>,
        readers: Arc<ReadPool>,
    ) -> Result<Watcher> {
        let mut watcher = Watcher {
            range: Arc::new(KeyRange::prefix(prefix)),
            last: after,
            live,
            readers,
            pending: VecDeque::new(),
            catching_up: true,
            finished: false,
        };
        watcher.read_history().await?;
        Ok(watcher)
    }

    /// Turns the watcher into the trait's stream.
    pub fn into_stream(self) -> WatchStream {
        Box::pin(futures::stream::unfold(self, |mut watcher| async move {
            watcher.next().await.map(|item| (item, watcher))
        }))
    }

    async fn read_history(&mut self) -> Result<()> {
        let range = Arc::clone(&self.range);
        let after = self.last;
        let (events, complete) = self
            .readers
            .run(move |conn| reader::history(conn, &range, after, HISTORY_CHUNK))
            .await?;
        self.pending.extend(events);
        self.catching_up = !complete;
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.last = event.revision();
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            if self.catching_up {
                if let Err(err) = self.read_history().await {
                    self.finished = true;
                    return Some(Err(err));
                }
                continue;
            }
            match self.live.recv().await {
                Ok(batch) => {
                    let last = self.last;
                    self.pending.extend(
                        batch
                            .iter()
                            .filter(|e| e.revision() > last && self.range.contains(e.key()))
                            .cloned(),
                    );
                }
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, last = self.last, "watcher lagged; re-reading");
                    // Subscribe again before reading, as at the start.
                    self.live = self.live.resubscribe();
                    self.catching_up = true;
                }
                Err(RecvError::Closed) => {
                    self.finished = true;
                    return Some(Err(Error::Internal("store closed".into())));
                }
            }
        }
    }
}
