//! The [`Store`] over a real etcd v3 cluster, for highly available control planes
//! (several API servers sharing one etcd).
//!
//! Keys and values are stored as they are (`/registry/...`, JSON bytes), so etcd's
//! revisions are the store's revisions. Writes are etcd transactions: create compares
//! `create_revision == 0`, update and conditional delete compare `mod_revision`, and a
//! failed compare reads the key in the same transaction to tell `NotFound` from
//! `Conflict`. A TTL is a lease granted per key; an update moves the key to a fresh
//! lease of the old lease's granted TTL, which restarts the countdown the way upstream's
//! API server does for Events.
//!
//! The compaction revision: etcd does not report it on reads, so
//! [`Store::compacted_revision`] reads at revision 1 and, only when that is compacted,
//! asks with a short-lived watch, which etcd answers with its compaction revision. The
//! value is remembered (together with this store's own compactions and any compaction a
//! watch reported) and used for `Error::Compacted`.

mod convert;
mod watch;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcdv3client::pb;
use etcdv3client::pb::kv_client::KvClient;
use etcdv3client::pb::lease_client::LeaseClient;
use etcdv3client::pb::watch_client::WatchClient;
use tonic::transport::{Channel, Endpoint};

use crate::{Error, KeyValue, Result, Revision, Store, WatchStream};
use convert::{key_value, prefix_range, status_error};
use watch::EtcdWatch;

/// How long [`EtcdStore::connect`] waits for a first answer from the cluster.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the compaction probe waits for etcd's answer.
const COMPACTION_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] backed by an etcd v3 cluster.
pub struct EtcdStore {
    kv: KvClient<Channel>,
    watch: WatchClient<Channel>,
    lease: LeaseClient<Channel>,
    /// The highest compaction revision seen (see the module docs).
    compacted: Arc<AtomicI64>,
}

impl EtcdStore {
    /// Connects to the cluster behind `endpoints` (`http://host:port`; a bare
    /// `host:port` means plain HTTP) and checks that it answers.
    pub async fn connect(endpoints: &[String]) -> Result<Arc<EtcdStore>> {
        if endpoints.is_empty() {
            return Err(Error::Internal("no etcd endpoints given".into()));
        }
        let endpoints = endpoints
            .iter()
            .map(|endpoint| {
                let url = if endpoint.contains("://") {
                    endpoint.clone()
                } else {
                    format!("http://{endpoint}")
                };
                Endpoint::from_shared(url)
                    .map(|e| e.connect_timeout(CONNECT_TIMEOUT))
                    .map_err(|e| Error::Internal(format!("etcd endpoint {endpoint}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let channel = Channel::balance_list(endpoints.into_iter());
        let store = Arc::new(EtcdStore {
            kv: KvClient::new(channel.clone()),
            watch: WatchClient::new(channel.clone()),
            lease: LeaseClient::new(channel),
            compacted: Arc::new(AtomicI64::new(0)),
        });
        // The balanced channel connects lazily and waits for a reachable endpoint.
        tokio::time::timeout(CONNECT_TIMEOUT, store.current_revision())
            .await
            .map_err(|_| Error::Internal("etcd did not answer within 10s".into()))??;
        Ok(store)
    }

    fn known_compacted(&self) -> Revision {
        self.compacted.load(Ordering::SeqCst)
    }

    /// Maps a failed call; a compaction error learns the compaction revision first.
    async fn failed(&self, status: tonic::Status, requested: Revision) -> Error {
        match status_error(&status, requested, 0) {
            Error::Compacted { .. } => Error::Compacted {
                requested,
                compacted: self.probe_compaction().await,
            },
            other => other,
        }
    }

    async fn range(&self, request: pb::RangeRequest) -> Result<pb::RangeResponse> {
        let requested = request.revision;
        match self.kv.clone().range(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.failed(status, requested).await),
        }
    }

    async fn txn(&self, request: pb::TxnRequest) -> Result<pb::TxnResponse> {
        match self.kv.clone().txn(request).await {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => Err(self.failed(status, 0).await),
        }
    }

    /// Grants a lease of `ttl` seconds and returns its id.
    async fn grant(&self, ttl: i64) -> Result<i64> {
        let response = self
            .lease
            .clone()
            .lease_grant(pb::LeaseGrantRequest { ttl, id: 0 })
            .await
            .map_err(|status| status_error(&status, 0, 0))?
            .into_inner();
        if !response.error.is_empty() {
            return Err(Error::Internal(format!(
                "etcd lease grant: {}",
                response.error
            )));
        }
        Ok(response.id)
    }

    /// Revokes a lease nothing uses (after a failed write); failures only leave it to
    /// expire.
    async fn revoke_unused(&self, lease: i64) {
        if lease == 0 {
            return;
        }
        if let Err(status) = self
            .lease
            .clone()
            .lease_revoke(pb::LeaseRevokeRequest { id: lease })
            .await
        {
            tracing::debug!(lease, error = %status.message(), "revoking an unused etcd lease");
        }
    }

    /// The granted TTL of `lease`, or `None` when it has already expired.
    async fn granted_ttl(&self, lease: i64) -> Result<Option<i64>> {
        let response = self
            .lease
            .clone()
            .lease_time_to_live(pb::LeaseTimeToLiveRequest {
                id: lease,
                keys: false,
            })
            .await;
        match response {
            // `ttl` is the remaining time in whole seconds (0 in the last second);
            // etcd answers -1 for a lease that is gone.
            Ok(response) => {
                let response = response.into_inner();
                Ok((response.ttl >= 0).then_some(response.granted_ttl))
            }
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(status_error(&status, 0, 0)),
        }
    }

    /// Learns the cluster's compaction revision: a watch from revision 1 is answered
    /// with it once history was compacted. Falls back to the highest one seen.
    async fn probe_compaction(&self) -> Revision {
        let known = self.known_compacted();
        let probe = async {
            let mut watch = EtcdWatch::open(&self.watch, vec![0], vec![0], 1).await?;
            while let Some(response) = watch.next().await {
                let response = response?;
                if response.compact_revision != 0 {
                    return Ok(response.compact_revision);
                }
                if response.canceled {
                    break;
                }
            }
            Err(Error::Internal("etcd ended the compaction probe".into()))
        };
        match tokio::time::timeout(COMPACTION_PROBE_TIMEOUT, probe).await {
            Ok(Ok(revision)) => {
                self.compacted.fetch_max(revision, Ordering::SeqCst);
                revision.max(known)
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "etcd compaction probe failed");
                known
            }
            Err(_) => known,
        }
    }
}

/// A put of `key` in a transaction.
fn put(key: &str, value: Bytes, lease: i64) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
            lease,
            ..Default::default()
        })),
    }
}

/// A read of `key` in a transaction (to learn why a compare failed).
fn read(key: &str) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        })),
    }
}

/// `target(key) <result> value` as a transaction guard.
fn compare(
    key: &str,
    result: pb::compare::CompareResult,
    target: pb::compare::TargetUnion,
) -> pb::Compare {
    let target_kind = match target {
        pb::compare::TargetUnion::Version(_) => pb::compare::CompareTarget::Version,
        pb::compare::TargetUnion::CreateRevision(_) => pb::compare::CompareTarget::Create,
        pb::compare::TargetUnion::ModRevision(_) => pb::compare::CompareTarget::Mod,
        pb::compare::TargetUnion::Value(_) => pb::compare::CompareTarget::Value,
        pb::compare::TargetUnion::Lease(_) => pb::compare::CompareTarget::Lease,
    };
    pb::Compare {
        result: result as i32,
        target: target_kind as i32,
        key: key.as_bytes().to_vec(),
        range_end: Vec::new(),
        target_union: Some(target),
    }
}

/// The key a failed transaction read with [`read`], if it exists.
fn read_back(response: pb::TxnResponse) -> Option<pb::KeyValue> {
    response
        .responses
        .into_iter()
        .find_map(|op| match op.response {
            Some(pb::response_op::Response::ResponseRange(range)) => range.kvs.into_iter().next(),
            _ => None,
        })
}

/// `NotFound` or `Conflict` for a compare on `key`'s `mod_revision` that failed.
fn cas_failure(key: &str, current: Option<pb::KeyValue>) -> Error {
    match current {
        None => Error::NotFound(key.to_owned()),
        Some(kv) => Error::Conflict {
            key: key.to_owned(),
            current: kv.mod_revision,
        },
    }
}

fn header_revision(header: Option<pb::ResponseHeader>) -> Result<Revision> {
    header
        .map(|header| header.revision)
        .ok_or_else(|| Error::Internal("etcd response without a header".into()))
}

/// A TTL in whole seconds, rounded up (etcd leases count seconds; at least 1).
fn ttl_seconds(ttl: Duration) -> i64 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(seconds.max(1)).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .range(pb::RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await?;
        Ok(response.kvs.into_iter().next().map(key_value))
    }

    async fn list(&self, prefix: &str, revision: Revision) -> Result<(Vec<KeyValue>, Revision)> {
        let (key, range_end) = prefix_range(prefix);
        let response = self
            .range(pb::RangeRequest {
                key,
                range_end,
                revision,
                ..Default::default()
            })
            .await?;
        // The header carries the latest revision; a read at an older one is "as of" it.
        let read_at = if revision > 0 {
            revision
        } else {
            header_revision(response.header)?
        };
        Ok((response.kvs.into_iter().map(key_value).collect(), read_at))
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision> {
        let lease = match ttl {
            Some(ttl) => self.grant(ttl_seconds(ttl)).await?,
            None => 0,
        };
        let response = self
            .txn(pb::TxnRequest {
                compare: vec![compare(
                    key,
                    pb::compare::CompareResult::Equal,
                    pb::compare::TargetUnion::CreateRevision(0),
                )],
                success: vec![put(key, value, lease)],
                failure: Vec::new(),
            })
            .await;
        match response {
            Ok(response) if response.succeeded => header_revision(response.header),
            Ok(_) => {
                self.revoke_unused(lease).await;
                Err(Error::AlreadyExists(key.to_owned()))
            }
            Err(error) => {
                self.revoke_unused(lease).await;
                Err(error)
            }
        }
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        // The key's lease decides whether the write needs a fresh lease; a stale
        // `expected` is answered without writing.
        let current = self
            .range(pb::RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await?
            .kvs
            .into_iter()
            .next();
        let old_lease = match &current {
            Some(kv) if kv.mod_revision == expected => kv.lease,
            _ => return Err(cas_failure(key, current)),
        };
        // A fresh lease of the same TTL restarts the countdown. The old lease is left
        // to expire: other keys may share it.
        let lease = match old_lease {
            0 => 0,
            old => match self.granted_ttl(old).await? {
                Some(ttl) => self.grant(ttl).await?,
                None => 0,
            },
        };
        let response = self
            .txn(pb::TxnRequest {
                compare: vec![compare(
                    key,
                    pb::compare::CompareResult::Equal,
                    pb::compare::TargetUnion::ModRevision(expected),
                )],
                success: vec![put(key, value, lease)],
                failure: vec![read(key)],
            })
            .await;
        match response {
            Ok(response) if response.succeeded => header_revision(response.header),
            Ok(response) => {
                self.revoke_unused(lease).await;
                Err(cas_failure(key, read_back(response)))
            }
            Err(error) => {
                self.revoke_unused(lease).await;
                Err(error)
            }
        }
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let guard = match expected {
            Some(expected) => compare(
                key,
                pb::compare::CompareResult::Equal,
                pb::compare::TargetUnion::ModRevision(expected),
            ),
            // Any existing key has a create revision above 0.
            None => compare(
                key,
                pb::compare::CompareResult::Greater,
                pb::compare::TargetUnion::CreateRevision(0),
            ),
        };
        let delete = pb::RequestOp {
            request: Some(pb::request_op::Request::RequestDeleteRange(
                pb::DeleteRangeRequest {
                    key: key.as_bytes().to_vec(),
                    prev_kv: true,
                    ..Default::default()
                },
            )),
        };
        let response = self
            .txn(pb::TxnRequest {
                compare: vec![guard],
                success: vec![delete],
                failure: vec![read(key)],
            })
            .await?;
        if !response.succeeded {
            return Err(cas_failure(key, read_back(response)));
        }
        let revision = header_revision(response.header)?;
        let prev = response
            .responses
            .into_iter()
            .find_map(|op| match op.response {
                Some(pb::response_op::Response::ResponseDeleteRange(deleted)) => {
                    deleted.prev_kvs.into_iter().next()
                }
                _ => None,
            })
            .ok_or_else(|| Error::Internal(format!("etcd deleted {key} without its value")))?;
        Ok((key_value(prev), revision))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // etcd reports a compacted start revision only asynchronously, on the stream;
        // a read at `after` answers it now.
        if after > 0 {
            self.range(pb::RangeRequest {
                key: vec![0],
                revision: after,
                count_only: true,
                ..Default::default()
            })
            .await?;
        }
        let (key, range_end) = prefix_range(prefix);
        let watch = EtcdWatch::open(&self.watch, key, range_end, after + 1).await?;
        Ok(watch.into_stream(after, Arc::clone(&self.compacted)))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        match self
            .kv
            .clone()
            .compact(pb::CompactionRequest {
                revision,
                physical: false,
            })
            .await
        {
            Ok(_) => {}
            // Already compacted at or past `revision`: nothing left to do.
            Err(status) => match status_error(&status, revision, 0) {
                Error::Compacted { .. } => return Ok(()),
                other => return Err(other),
            },
        }
        self.compacted.fetch_max(revision, Ordering::SeqCst);
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision> {
        let response = self
            .range(pb::RangeRequest {
                key: vec![0],
                count_only: true,
                ..Default::default()
            })
            .await?;
        header_revision(response.header)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        let at_first_revision = self
            .kv
            .clone()
            .range(pb::RangeRequest {
                key: vec![0],
                revision: 1,
                count_only: true,
                ..Default::default()
            })
            .await;
        match at_first_revision {
            Ok(_) => Ok(self.known_compacted()),
            Err(status) => match status_error(&status, 1, 0) {
                Error::Compacted { .. } => Ok(self.probe_compaction().await),
                // Revision 1 is in the future only in a store that was never written.
                Error::FutureRevision(_) => Ok(0),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_seconds(Duration::from_secs(3600)), 3600);
        assert_eq!(ttl_seconds(Duration::from_millis(1500)), 2);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn failed_compares_tell_missing_from_changed_keys() {
        assert_eq!(cas_failure("/k", None), Error::NotFound("/k".into()));
        let kv = pb::KeyValue {
            key: b"/k".to_vec(),
            mod_revision: 9,
            ..Default::default()
        };
        assert_eq!(
            cas_failure("/k", Some(kv)),
            Error::Conflict {
                key: "/k".into(),
                current: 9
            }
        );
    }
}
