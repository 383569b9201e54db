//! Tests of the sqlite backend, each on a fresh database in a temporary directory.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::{SqliteOptions, SqliteStore};
use crate::{Error, Event, Revision, Store, WatchStream};

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

fn value(text: &str) -> Bytes {
    Bytes::from(text.to_owned())
}

/// Takes `count` events or fails after a generous timeout.
async fn take(stream: &mut WatchStream, count: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {count} events", events.len()));
        match next {
            Some(Ok(event)) => events.push(event),
            other => panic!("stream ended after {} events: {other:?}", events.len()),
        }
    }
    events
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_update_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    assert_eq!(store.current_revision().await.unwrap(), 0);

    let r1 = store
        .create("/registry/pods/default/a", value("a1"), None)
        .await
        .unwrap();
    let r2 = store
        .create("/registry/pods/default/b", value("b1"), None)
        .await
        .unwrap();
    store
        .create("/registry/services/default/a", value("s"), None)
        .await
        .unwrap();
    assert_eq!((r1, r2), (1, 2));

    let a = store
        .get("/registry/pods/default/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.value, value("a1"));
    assert_eq!((a.create_revision, a.mod_revision, a.lease), (1, 1, 0));
    assert_eq!(store.get("/registry/pods/default/zz").await.unwrap(), None);

    let r4 = store
        .update("/registry/pods/default/a", value("a2"), r1)
        .await
        .unwrap();
    assert_eq!(r4, 4);
    let a = store
        .get("/registry/pods/default/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.value.clone(), a.create_revision, a.mod_revision),
        (value("a2"), 1, 4)
    );

    let (pods, rev) = store.list("/registry/pods/", 0).await.unwrap();
    assert_eq!(rev, 4);
    let keys: Vec<_> = pods.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["/registry/pods/default/a", "/registry/pods/default/b"]
    );

    let (prev, r5) = store
        .delete("/registry/pods/default/b", Some(r2))
        .await
        .unwrap();
    assert_eq!((prev.value, prev.mod_revision, r5), (value("b1"), 2, 5));
    assert_eq!(store.get("/registry/pods/default/b").await.unwrap(), None);
    let (pods, _) = store.list("/registry/pods/", 0).await.unwrap();
    assert_eq!(pods.len(), 1);
    let (all, _) = store.list("", 0).await.unwrap();
    assert_eq!(all.len(), 2);

    // A key can be created again after deletion, with a new create revision.
    let r6 = store
        .create("/registry/pods/default/b", value("b2"), None)
        .await
        .unwrap();
    let b = store
        .get("/registry/pods/default/b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.create_revision, b.mod_revision), (r6, r6));
    assert_eq!(store.current_revision().await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_missing_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    let r1 = store.create("/k", value("1"), None).await.unwrap();
    assert_eq!(
        store.create("/k", value("again"), None).await,
        Err(Error::AlreadyExists("/k".into()))
    );
    let r2 = store.update("/k", value("2"), r1).await.unwrap();
    assert_eq!(
        store.update("/k", value("stale"), r1).await,
        Err(Error::Conflict {
            key: "/k".into(),
            current: r2
        })
    );
    assert_eq!(
        store.delete("/k", Some(r1)).await,
        Err(Error::Conflict {
            key: "/k".into(),
            current: r2
        })
    );
    assert_eq!(
        store.update("/missing", value("x"), 1).await,
        Err(Error::NotFound("/missing".into()))
    );
    assert_eq!(
        store.delete("/missing", None).await,
        Err(Error::NotFound("/missing".into()))
    );
    store.delete("/k", None).await.unwrap();
    assert_eq!(
        store.delete("/k", None).await,
        Err(Error::NotFound("/k".into()))
    );
    assert_eq!(
        store.update("/k", value("3"), r2).await,
        Err(Error::NotFound("/k".into()))
    );
    // Failed writes consume no revision.
    assert_eq!(store.current_revision().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_lets_exactly_one_win() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    let r1 = store.create("/k", value("0"), None).await.unwrap();
    let attempts: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.update("/k", value(&i.to_string()), r1).await })
        })
        .collect();
    let mut wins = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => wins += 1,
            Err(Error::Conflict { current, .. }) => assert!(current > r1),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_at_older_revision_and_future() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    let r1 = store.create("/p/a", value("a1"), None).await.unwrap();
    let r2 = store.create("/p/b", value("b1"), None).await.unwrap();
    store.update("/p/a", value("a2"), r1).await.unwrap();
    store.delete("/p/b", None).await.unwrap();

    let (at_r2, rev) = store.list("/p/", r2).await.unwrap();
    assert_eq!(rev, r2);
    let pairs: Vec<_> = at_r2
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(pairs, [("/p/a", value("a1")), ("/p/b", value("b1"))]);

    let (now, rev) = store.list("/p/", 0).await.unwrap();
    assert_eq!(rev, 4);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].value, value("a2"));

    assert_eq!(store.list("/p/", 5).await, Err(Error::FutureRevision(5)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_removes_history_but_keeps_current_values() {
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
    let kept = store.create("/p/b", value("b"), None).await.unwrap(); // 13
    store.update("/p/a", value("after"), rev).await.unwrap(); // 14
    assert_eq!(stored_rows(&dir), 14);

    store.compact(13).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 13);
    // Left: /p/a at 10 (latest at 13) and 14, /p/b at 13.
    assert_eq!(stored_rows(&dir), 3);

    assert!(matches!(
        store.list("/p/", 12).await,
        Err(Error::Compacted {
            requested: 12,
            compacted: 13
        })
    ));
    assert!(matches!(
        store.watch("/p/", 12).await.err(),
        Some(Error::Compacted {
            requested: 12,
            compacted: 13
        })
    ));
    let (at_13, _) = store.list("/p/", 13).await.unwrap();
    let pairs: Vec<_> = at_13
        .iter()
        .map(|kv| (kv.key.as_str(), kv.mod_revision))
        .collect();
    assert_eq!(pairs, [("/p/a", rev), ("/p/b", kept)]);

    // Watching from the compaction revision still yields the update with its prev.
    let mut watch = store.watch("/p/", 13).await.unwrap();
    match &take(&mut watch, 1).await[0] {
        Event::Put {
            kv,
            prev: Some(prev),
        } => {
            assert_eq!((kv.mod_revision, prev.mod_revision), (14, rev));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Compacting to an older revision is a no-op; to a future one an error.
    store.compact(5).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 13);
    assert_eq!(store.compact(99).await, Err(Error::FutureRevision(99)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_past_revision_fills_prev() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    store.create("/other", value("o"), None).await.unwrap();
    let r2 = store.create("/p/a", value("1"), None).await.unwrap();
    let r3 = store.update("/p/a", value("2"), r2).await.unwrap();
    let (_, r4) = store.delete("/p/a", Some(r3)).await.unwrap();
    let r5 = store.create("/p/a", value("3"), None).await.unwrap();

    let mut history = store.watch("/p/", 1).await.unwrap();
    let events = take(&mut history, 4).await;
    let a1 = store.list("/p/", r2).await.unwrap().0.remove(0);
    let a2 = store.list("/p/", r3).await.unwrap().0.remove(0);
    assert_eq!(
        events[0],
        Event::Put {
            kv: a1.clone(),
            prev: None
        }
    );
    assert_eq!(
        events[1],
        Event::Put {
            kv: a2.clone(),
            prev: Some(a1)
        }
    );
    assert_eq!(
        events[2],
        Event::Delete {
            prev: a2,
            revision: r4
        }
    );
    match &events[3] {
        Event::Put { kv, prev: None } => assert_eq!(kv.create_revision, r5),
        other => panic!("unexpected {other:?}"),
    }

    // The same events arrive live, identical to the ones read back from the table.
    let mut live = store.watch("/p/", r5).await.unwrap();
    let r6 = store.update("/p/a", value("4"), r5).await.unwrap();
    store.delete("/p/a", Some(r6)).await.unwrap();
    let live_events = take(&mut live, 2).await;
    let replayed = take(&mut store.watch("/p/", r5).await.unwrap(), 2).await;
    assert_eq!(live_events, replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_has_no_gaps_under_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    let early = store.watch("/w/", 0).await.unwrap();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("/w/{w}");
                let mut rev = store.create(&key, value("0"), None).await.unwrap();
                for i in 1..50 {
                    rev = store
                        .update(&key, value(&i.to_string()), rev)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // A watch started while the writers run joins history and live feed mid-stream.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut late = store.watch("/w/", 0).await.unwrap();
    let mut early = early;
    for writer in writers {
        writer.await.unwrap();
    }
    let early_events = take(&mut early, 400).await;
    let late_events = take(&mut late, 400).await;
    assert_contiguous(&early_events, 0);
    assert_eq!(early_events, late_events);
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
    let store = open(&dir, options());
    let mut watch = store.watch("/events/", 0).await.unwrap();
    let r1 = store
        .create("/events/e", value("1"), Some(Duration::from_millis(300)))
        .await
        .unwrap();
    store
        .create("/events/keep", value("k"), None)
        .await
        .unwrap();
    // An update keeps the lease.
    let r3 = store.update("/events/e", value("2"), r1).await.unwrap();
    let lease = store.get("/events/e").await.unwrap().unwrap().lease;
    assert!(lease > 0);

    let events = take(&mut watch, 4).await;
    match &events[3] {
        Event::Delete { prev, revision } => {
            assert_eq!(
                (prev.key.as_str(), prev.mod_revision, prev.lease),
                ("/events/e", r3, lease)
            );
            assert_eq!(*revision, 4);
        }
        other => panic!("expected the lease's delete, got {other:?}"),
    }
    assert_eq!(store.get("/events/e").await.unwrap(), None);
    assert!(store.get("/events/keep").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_restarts_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    let ttl = Duration::from_millis(600);
    let mut rev = store
        .create("/events/e", value("0"), Some(ttl))
        .await
        .unwrap();
    // Writes every 200 ms for 1.2 s: twice the TTL, yet never 600 ms without a write.
    for i in 1..=6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rev = store
            .update("/events/e", value(&i.to_string()), rev)
            .await
            .expect("the key must still exist while it is being written");
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        store.get("/events/e").await.unwrap(),
        None,
        "expires after the last write's TTL"
    );
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
    let store: Arc<dyn Store> = open(&dir, options());
    store.create("/x", value("x"), None).await.unwrap();
    assert_eq!(store.list("/", 0).await.unwrap().0.len(), 1);
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
