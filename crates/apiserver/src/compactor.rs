//! Periodic compaction of an external store, as upstream's API server compacts etcd: every
//! interval, compact to the revision seen one interval earlier, so watchers always have at
//! least one interval of history to resume from. (The embedded sqlite store compacts
//! itself.)

use std::sync::Arc;
use std::time::Duration;

use k8rs_store::Store;

/// Upstream's `--etcd-compaction-interval` default.
pub const INTERVAL: Duration = Duration::from_secs(300);

/// Run the compaction loop until the task is dropped.
pub async fn run(store: Arc<dyn Store>, interval: Duration) {
    let mut previous = 0;
    let mut ticker = tokio::time::interval(interval);
    loop {
        ticker.tick().await;
        if previous > 0 {
            match store.compact(previous).await {
                Ok(()) => tracing::debug!(revision = previous, "compacted the store"),
                Err(e) => {
                    tracing::warn!(error = %e, revision = previous, "compacting the store failed")
                }
            }
        }
        match store.current_revision().await {
            Ok(rev) => previous = rev,
            Err(e) => tracing::warn!(error = %e, "reading the store revision failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compacts_to_the_previous_ticks_revision() {
        let dir = tempfile::tempdir().unwrap();
        let options = k8rs_store::sqlite::SqliteOptions {
            compaction_interval: None,
            ..Default::default()
        };
        let store: Arc<dyn Store> =
            k8rs_store::sqlite::SqliteStore::open_with(&dir.path().join("s.db"), options).unwrap();
        let r1 = store.create("/a", "1".into(), None).await.unwrap();
        store.update("/a", "2".into(), r1).await.unwrap();
        let task = tokio::spawn(run(store.clone(), Duration::from_millis(100)));
        tokio::time::sleep(Duration::from_millis(350)).await;
        task.abort();
        assert!(
            store.compacted_revision().await.unwrap() > r1,
            "history up to the first tick is compacted"
        );
        assert!(matches!(
            store.list("/", r1).await,
            Err(k8rs_store::Error::Compacted { .. })
        ));
    }
}
