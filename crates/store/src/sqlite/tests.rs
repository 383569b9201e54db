//! Tests of the sqlite backend, each on a fresh database in a temporary directory: the
//! behaviour suite every backend passes, then what is particular to sqlite.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use super::{SqliteOptions, SqliteStore};
use crate::testing::{conformance, take, value};
use crate::{Error, Event, Revision, Store};

fn options() -> SqliteOptions {
    SqliteOptions {
        compaction_interval: None,
        lease_check_interval: Duration::from_millis(50),
        ..SqliteOptions::default()
    }
}

fn open(dir: &tempfile::TempDir, options: SqliteOptions) -> Arc<SqliteStore> {
    SqliteStore::open_with(&dir.path().join("data/state.db"), options).expect("open store")
}

fn assert_contiguous(events: &[Event], after: Revision) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event.revision(),
            after + 1 + i as i64,
            "gap or duplicate at {i}"
        );
    }
}

/// Rows physically stored, to check compaction.
fn stored_rows(dir: &tempfile::TempDir) -> i64 {
    let conn = rusqlite::Connection::open(dir.path().join("data/state.db")).unwrap();
    conn.query_row("SELECT COUNT(*) FROM kine", [], |row| row.get(0))
        .unwrap()
}

/// A fresh store in `dir` as the behaviour suite takes it.
fn fresh(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    open(dir, options())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_update_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(&dir);
    // A fresh sqlite store starts at revision 0.
    assert_eq!(store.current_revision().await.unwrap(), 0);
    conformance::create_get_list_update_delete(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    conformance::conflicts_and_missing_keys(fresh(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_lets_exactly_one_win() {
    let dir = tempfile::tempdir().unwrap();
    conformance::concurrent_cas_lets_exactly_one_win(fresh(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_at_older_revision_and_future() {
    let dir = tempfile::tempdir().unwrap();
    conformance::list_at_older_revision_and_future(fresh(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_reports_compacted_and_keeps_current_values() {
    let dir = tempfile::tempdir().unwrap();
    conformance::compaction_reports_compacted_and_keeps_current_values(fresh(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_removes_history_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    let mut rev = store.create("/p/a", value("0"), None).await.unwrap();
    for i in 1..10 {
        rev = store
            .update("/p/a", value(&i.to_string()), rev)
            .await
            .unwrap();
    }
    store.create("/p/gone", value("x"), None).await.unwrap();
    store.delete("/p/gone", None).await.unwrap();
    store.create("/p/b", value("b"), None).await.unwrap(); // 13
    store.update("/p/a", value("after"), rev).await.unwrap(); // 14
    assert_eq!(stored_rows(&dir), 14);

    store.compact(13).await.unwrap();
    // Left: /p/a at 10 (latest at 13) and 14, /p/b at 13.
    assert_eq!(stored_rows(&dir), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_past_revision_has_order_and_prev_values() {
    let dir = tempfile::tempdir().unwrap();
    conformance::watch_from_past_revision_has_order_and_prev_values(fresh(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_has_no_gaps_under_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    conformance::watch_has_no_gaps_under_concurrent_writers(fresh(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_resynchronises_from_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        SqliteOptions {
            watch_buffer: 2,
            ..options()
        },
    );
    let mut watch = store.watch("/", 0).await.unwrap();
    // Sequential writes are separate batches: far more than the buffer holds.
    for i in 0..50 {
        store
            .create(&format!("/k{i}"), value("v"), None)
            .await
            .unwrap();
    }
    let events = take(&mut watch, 50).await;
    assert_contiguous(&events, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_past_compaction_gets_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        SqliteOptions {
            watch_buffer: 2,
            ..options()
        },
    );
    let mut watch = store.watch("/", 0).await.unwrap();
    let mut rev = store.create("/k", value("0"), None).await.unwrap();
    for i in 1..20 {
        rev = store
            .update("/k", value(&i.to_string()), rev)
            .await
            .unwrap();
    }
    store.compact(rev).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap();
    assert!(
        matches!(next, Some(Err(Error::Compacted { requested: 0, .. }))),
        "{next:?}"
    );
    assert!(watch.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_deletes_with_an_event() {
    let dir = tempfile::tempdir().unwrap();
    conformance::ttl_expiry_deletes_with_an_event(fresh(&dir), Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_restarts_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    conformance::an_update_restarts_the_ttl(fresh(&dir), Duration::from_millis(600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        SqliteOptions {
            lease_check_interval: Duration::from_secs(3600),
            ..options()
        },
    );
    store
        .create("/e", value("1"), Some(Duration::from_millis(200)))
        .await
        .unwrap();
    drop(store);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The reopened store expires it right away, with a watch event.
    let store = open(&dir, options());
    let mut watch = store.watch("/", 0).await.unwrap();
    let events = take(&mut watch, 2).await;
    assert!(
        matches!(events[1], Event::Delete { revision: 2, .. }),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    store.create("/a", value("a"), None).await.unwrap();
    store.create("/b", value("b"), None).await.unwrap();
    let (_, r3) = store.delete("/b", None).await.unwrap();
    store.compact(r3).await.unwrap();
    drop(store);

    let store = open(&dir, options());
    assert_eq!(store.current_revision().await.unwrap(), r3);
    assert_eq!(store.compacted_revision().await.unwrap(), r3);
    assert_eq!(store.get("/a").await.unwrap().unwrap().value, value("a"));
    // The compacted tombstone was the highest row; its revision is still never reused.
    assert_eq!(store.create("/b", value("b2"), None).await.unwrap(), r3 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    let before = store.stats();
    let creates: Vec<_> = (0..1000)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.create(&format!("/g/{i}"), value("v"), None).await })
        })
        .collect();
    let mut revisions = Vec::new();
    for create in creates {
        revisions.push(create.await.unwrap().unwrap());
    }
    revisions.sort();
    assert_eq!(revisions, (1..=1000).collect::<Vec<_>>());
    let after = store.stats();
    assert_eq!(after.writes - before.writes, 1000);
    let transactions = after.transactions - before.transactions;
    assert!(
        transactions < 200,
        "1000 concurrent creates took {transactions} transactions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_keeps_the_configured_window() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        compaction_interval: Some(Duration::from_millis(50)),
        compaction_retain: 10,
        compaction_batch: 7,
        ..options()
    };
    let store = open(&dir, options);
    let mut rev = store.create("/k", value("0"), None).await.unwrap();
    for i in 1..100 {
        rev = store
            .update("/k", value(&i.to_string()), rev)
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.compacted_revision().await.unwrap() < rev - 10 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "background compaction did not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.compacted_revision().await.unwrap(), rev - 10);
    assert_eq!(stored_rows(&dir), 11);
    assert_eq!(store.get("/k").await.unwrap().unwrap().mod_revision, rev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_as_dyn_store() {
    let dir = tempfile::tempdir().unwrap();
    conformance::usable_as_dyn_store(fresh(&dir)).await;
}

/// Environment variable that turns [`killed_writer_leaves_a_consistent_store`] into its own
/// child process and tells it where its database is.
const CRASH_DIR_ENV: &str = "K8RS_STORE_CRASH_DIR";

/// The child half of [`killed_writer_leaves_a_consistent_store`]: writes until killed,
/// printing `key revision` for every acknowledged create.
fn crash_child(dir: std::ffi::OsString) {
    use std::io::Write as _;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open_with(&std::path::Path::new(&dir).join("state.db"), options())
            .unwrap();
        let writers: Vec<_> = (0..16)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for i in 0.. {
                        let key = format!("/crash/{w}/{i}");
                        let rev = store.create(&key, value("v"), None).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "{key} {rev}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

#[test]
fn killed_writer_leaves_a_consistent_store() {
    if let Some(dir) = std::env::var_os(CRASH_DIR_ENV) {
        return crash_child(dir);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(killed_writer_parent());
}

async fn killed_writer_parent() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::tests::killed_writer_leaves_a_consistent_store",
            "--nocapture",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while acknowledged.len() < 2000 {
        let line = lines.next().expect("child stopped early").unwrap();
        if let Some((key, rev)) = line.split_once(' ') {
            if let Ok(rev) = rev.parse::<Revision>() {
                acknowledged.push((key.to_owned(), rev));
            }
        }
    }
    child.kill().unwrap(); // SIGKILL, mid-write
    child.wait().unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(conn);
    let store = SqliteStore::open_with(&dir.path().join("state.db"), options()).unwrap();
    for (key, rev) in &acknowledged {
        let kv = store.get(key).await.unwrap();
        assert_eq!(kv.map(|kv| kv.mod_revision), Some(*rev), "{key} lost");
    }
    let current = store.current_revision().await.unwrap();
    let (all, _) = store.list("/crash/", 0).await.unwrap();
    assert_eq!(all.len() as i64, current, "every revision is one create");
    assert!(store.create("/after", value("x"), None).await.unwrap() > current);
}
