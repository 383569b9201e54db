//! One etcd watch stream per [`crate::Store::watch`] call.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use etcdv3client::pb;
use etcdv3client::pb::watch_client::WatchClient;
use futures::channel::mpsc;
use futures::StreamExt;
use tonic::transport::Channel;
use tonic::Streaming;

use super::convert;
use crate::{Error, Event, Result, Revision, WatchStream};

/// An open etcd watch on a key range. The request side (`_requests`) stays open for the
/// watch's lifetime: etcd ends the whole stream once the client half-closes it.
pub(super) struct EtcdWatch {
    responses: Streaming<pb::WatchResponse>,
    _requests: mpsc::UnboundedSender<pb::WatchRequest>,
}

impl EtcdWatch {
    /// Opens a watch on `[key, range_end)` from `start_revision`, with previous values.
    pub(super) async fn open(
        client: &WatchClient<Channel>,
        key: Vec<u8>,
        range_end: Vec<u8>,
        start_revision: Revision,
    ) -> Result<Self> {
        let (requests, outgoing) = mpsc::unbounded();
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key,
                    range_end,
                    start_revision,
                    prev_kv: true,
                    ..Default::default()
                },
            )),
        };
        requests
            .unbounded_send(create)
            .map_err(|e| Error::Internal(format!("etcd watch request: {e}")))?;
        let responses = client
            .clone()
            .watch(outgoing)
            .await
            .map_err(|status| convert::status_error(&status, start_revision, 0))?
            .into_inner();
        Ok(Self {
            responses,
            _requests: requests,
        })
    }

    /// The next response, or `None` when etcd closed the stream.
    pub(super) async fn next(&mut self) -> Option<Result<pb::WatchResponse>> {
        let next = self.responses.next().await?;
        Some(next.map_err(|status| Error::Internal(format!("etcd watch: {}", status.message()))))
    }

    /// The events after `after` as the store's watch stream. A compaction that overtook
    /// the watch ends it with `Err(Compacted)` (and is remembered in `compacted`).
    pub(super) fn into_stream(self, after: Revision, compacted: Arc<AtomicI64>) -> WatchStream {
        let state = Delivery {
            watch: self,
            pending: VecDeque::new(),
            after,
            compacted,
            failure: None,
            ended: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            let item = state.next_item().await?;
            Some((item, state))
        })
        .boxed()
    }
}

/// The state of a watch stream: events of the last response not yet handed out, and
/// the error that ends the stream once they are.
struct Delivery {
    watch: EtcdWatch,
    pending: VecDeque<Event>,
    after: Revision,
    compacted: Arc<AtomicI64>,
    failure: Option<Error>,
    ended: bool,
}

impl Delivery {
    async fn next_item(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if let Some(error) = self.failure.take() {
                self.ended = true;
                return Some(Err(error));
            }
            if self.ended {
                return None;
            }
            let response = self
                .watch
                .next()
                .await
                .unwrap_or_else(|| Err(Error::Internal("etcd closed the watch".into())));
            self.take(response);
        }
    }

    /// Queues a response's events, or the error it carries.
    fn take(&mut self, response: Response) {
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                self.failure = Some(error);
                return;
            }
        };
        if response.compact_revision != 0 {
            self.compacted
                .fetch_max(response.compact_revision, Ordering::SeqCst);
            self.failure = Some(Error::Compacted {
                requested: self.after,
                compacted: response.compact_revision,
            });
            return;
        }
        if response.canceled {
            let reason = format!("etcd canceled the watch: {}", response.cancel_reason);
            self.failure = Some(Error::Internal(reason));
            return;
        }
        for event in response.events {
            match convert::event(event) {
                Ok(event) => self.pending.push_back(event),
                Err(error) => {
                    // What came before the broken event is still delivered.
                    self.failure = Some(error);
                    return;
                }
            }
        }
    }
}

type Response = Result<pb::WatchResponse>;
