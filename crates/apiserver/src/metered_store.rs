//! A [`Store`] decorator that records every operation's latency in
//! `etcd_request_duration_seconds{operation,type}`, as upstream does for etcd.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use k8rs_store::{KeyValue, Result, Revision, Store, WatchStream};

use crate::metrics::Metrics;

/// The store, measured.
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Metrics,
}

impl MeteredStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Store>, metrics: Metrics) -> MeteredStore {
        MeteredStore { inner, metrics }
    }

    fn observe(&self, operation: &str, key: &str, start: Instant) {
        self.metrics
            .observe_store(operation, object_type(key), start.elapsed());
    }
}

/// The resource segment of a key: `/registry/pods/default/x` → `pods`.
fn object_type(key: &str) -> &str {
    key.strip_prefix("/registry/")
        .and_then(|k| k.split('/').next())
        .unwrap_or("")
}

#[async_trait]
impl Store for MeteredStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let t = Instant::now();
        let r = self.inner.get(key).await;
        self.observe("get", key, t);
        r
    }
    async fn list(&self, prefix: &str, revision: Revision) -> Result<(Vec<KeyValue>, Revision)> {
        let t = Instant::now();
        let r = self.inner.list(prefix, revision).await;
        self.observe("list", prefix, t);
        r
    }
    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision> {
        let t = Instant::now();
        let r = self.inner.create(key, value, ttl).await;
        self.observe("create", key, t);
        r
    }
    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        let t = Instant::now();
        let r = self.inner.update(key, value, expected).await;
        self.observe("update", key, t);
        r
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let t = Instant::now();
        let r = self.inner.delete(key, expected).await;
        self.observe("delete", key, t);
        r
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> Result<()> {
        let t = Instant::now();
        let r = self.inner.compact(revision).await;
        self.metrics.observe_store("compact", "", t.elapsed());
        r
    }
    async fn current_revision(&self) -> Result<Revision> {
        self.inner.current_revision().await
    }
    async fn compacted_revision(&self) -> Result<Revision> {
        self.inner.compacted_revision().await
    }
}
