//! The etcd backend against a real `etcd` (Debian package `etcd-server`), one fresh
//! single-member cluster per test on free loopback ports: the behaviour suite every
//! backend passes, then what is particular to etcd.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8rs_store::etcd::EtcdStore;
use k8rs_store::testing::etcd::Etcd;
use k8rs_store::testing::{conformance, value};
use k8rs_store::{Error, Store};

/// How long a fresh etcd may take to answer its first request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A store on a fresh etcd; retries until etcd answers.
async fn store() -> (Etcd, Arc<EtcdStore>) {
    let etcd = Etcd::start();
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match EtcdStore::connect(&[etcd.client_url().to_owned()]).await {
            Ok(store) => return (etcd, store),
            Err(error) if Instant::now() > deadline => {
                panic!("etcd did not start: {error}\n{}", etcd.log())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_update_delete() {
    let (_etcd, store) = store().await;
    conformance::create_get_list_update_delete(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_missing_keys() {
    let (_etcd, store) = store().await;
    conformance::conflicts_and_missing_keys(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_lets_exactly_one_win() {
    let (_etcd, store) = store().await;
    conformance::concurrent_cas_lets_exactly_one_win(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_at_older_revision_and_future() {
    let (_etcd, store) = store().await;
    conformance::list_at_older_revision_and_future(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_reports_compacted_and_keeps_current_values() {
    let (_etcd, store) = store().await;
    conformance::compaction_reports_compacted_and_keeps_current_values(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_seen_by_another_store_is_reported() {
    let (etcd, store) = store().await;
    let r1 = store.create("/k", value("1"), None).await.unwrap();
    let r2 = store.update("/k", value("2"), r1).await.unwrap();
    store.compact(r2).await.unwrap();
    // A second API server never compacted itself but learns the revision from etcd.
    let other = EtcdStore::connect(&[etcd.client_url().to_owned()])
        .await
        .unwrap();
    assert_eq!(other.compacted_revision().await.unwrap(), r2);
    assert_eq!(
        other.list("/", r1).await,
        Err(Error::Compacted {
            requested: r1,
            compacted: r2
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_past_revision_has_order_and_prev_values() {
    let (_etcd, store) = store().await;
    conformance::watch_from_past_revision_has_order_and_prev_values(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_has_no_gaps_under_concurrent_writers() {
    let (_etcd, store) = store().await;
    conformance::watch_has_no_gaps_under_concurrent_writers(store).await;
}

// etcd leases count whole seconds and expire on the leader's lease check, so the TTLs
// are seconds here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_deletes_with_an_event() {
    let (_etcd, store) = store().await;
    conformance::ttl_expiry_deletes_with_an_event(store, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_restarts_the_ttl() {
    let (_etcd, store) = store().await;
    conformance::an_update_restarts_the_ttl(store, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_as_dyn_store() {
    let (_etcd, store) = store().await;
    conformance::usable_as_dyn_store(store).await;
}
