//! The etcd backend against a real `etcd` (Debian package `etcd-server`), one fresh
//! single-member cluster per test on free loopback ports.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use k8rs_store::etcd::EtcdStore;
use k8rs_store::{Error, Event, Revision, Store, WatchStream};

/// A running `etcd` that is killed (and its data removed) when dropped.
struct Etcd {
    child: Child,
    client_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

fn etcd_binary() -> String {
    let binary = std::env::var("K8RS_ETCD").unwrap_or_else(|_| "etcd".into());
    let found = Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "`{binary}` is not installed: install the Debian package etcd-server \
         (apt-get install -y etcd-server), or set K8RS_ETCD to an etcd binary"
    );
    binary
}

fn start_etcd() -> Etcd {
    let binary = etcd_binary();
    let dir = tempfile::tempdir().unwrap();
    let client_url = format!("http://127.0.0.1:{}", free_port());
    let peer_url = format!("http://127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
    let child = Command::new(binary)
        .arg("--name=test")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=test={peer_url}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd");
    Etcd {
        child,
        client_url,
        _dir: dir,
    }
}

fn etcd_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("etcd.log")).unwrap_or_default()
}

/// A store on a fresh etcd; retries until etcd is up.
async fn store() -> (Etcd, Arc<EtcdStore>) {
    let etcd = start_etcd();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match EtcdStore::connect(std::slice::from_ref(&etcd.client_url)).await {
            Ok(store) => return (etcd, store),
            Err(error) if Instant::now() > deadline => panic!(
                "etcd did not start: {error}\n{}",
                etcd_log(etcd._dir.path())
            ),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn value(text: &str) -> Bytes {
    Bytes::from(text.to_owned())
}

/// Takes `count` events or fails after a generous timeout.
async fn take(stream: &mut WatchStream, count: usize) -> Vec<Event> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(15), stream.next())
            .await
            .unwrap_or_else(|_| panic!("timed out after {} of {count} events", events.len()));
        match next {
            Some(Ok(event)) => events.push(event),
            other => panic!("stream ended after {} events: {other:?}", events.len()),
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_update_delete() {
    let (_etcd, store) = store().await;
    // A fresh etcd starts at revision 1.
    let base = store.current_revision().await.unwrap();
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
    assert_eq!((r1, r2), (base + 1, base + 2));

    let a = store
        .get("/registry/pods/default/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.value, value("a1"));
    assert_eq!((a.create_revision, a.mod_revision, a.lease), (r1, r1, 0));
    assert_eq!(store.get("/registry/pods/default/zz").await.unwrap(), None);

    let r4 = store
        .update("/registry/pods/default/a", value("a2"), r1)
        .await
        .unwrap();
    assert_eq!(r4, base + 4);
    let a = store
        .get("/registry/pods/default/a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.value.clone(), a.create_revision, a.mod_revision),
        (value("a2"), r1, r4)
    );

    let (pods, rev) = store.list("/registry/pods/", 0).await.unwrap();
    assert_eq!(rev, r4);
    let keys: Vec<_> = pods.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["/registry/pods/default/a", "/registry/pods/default/b"]
    );

    let (prev, r5) = store
        .delete("/registry/pods/default/b", Some(r2))
        .await
        .unwrap();
    assert_eq!(
        (prev.value, prev.mod_revision, r5),
        (value("b1"), r2, base + 5)
    );
    assert_eq!(store.get("/registry/pods/default/b").await.unwrap(), None);
    let (pods, _) = store.list("/registry/pods/", 0).await.unwrap();
    assert_eq!(pods.len(), 1);
    let (all, _) = store.list("", 0).await.unwrap();
    assert_eq!(all.len(), 2);

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
    assert_eq!(store.current_revision().await.unwrap(), base + 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_and_missing_keys() {
    let (_etcd, store) = store().await;
    let r1 = store.create("/k", value("1"), None).await.unwrap();
    assert_eq!(
        store.create("/k", value("again"), None).await,
        Err(Error::AlreadyExists("/k".into()))
    );
    let r2 = store.update("/k", value("2"), r1).await.unwrap();
    let conflict = Error::Conflict {
        key: "/k".into(),
        current: r2,
    };
    assert_eq!(
        store.update("/k", value("stale"), r1).await,
        Err(conflict.clone())
    );
    assert_eq!(store.delete("/k", Some(r1)).await, Err(conflict));
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
    assert_eq!(store.current_revision().await.unwrap(), r2 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cas_lets_exactly_one_win() {
    let (_etcd, store) = store().await;
    let r1 = store.create("/k", value("0"), None).await.unwrap();
    let attempts: Vec<_> = (0..20)
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
async fn list_at_older_revision_compaction_and_future() {
    let (_etcd, store) = store().await;
    let r1 = store.create("/p/a", value("1"), None).await.unwrap();
    let r2 = store.update("/p/a", value("2"), r1).await.unwrap();
    let r3 = store.create("/p/b", value("b"), None).await.unwrap();

    let (old, at) = store.list("/p/", r1).await.unwrap();
    assert_eq!(at, r1);
    assert_eq!(
        old.iter().map(|kv| kv.value.clone()).collect::<Vec<_>>(),
        [value("1")]
    );
    assert_eq!(
        store.list("/p/", r3 + 100).await,
        Err(Error::FutureRevision(r3 + 100))
    );
    assert_eq!(store.compacted_revision().await.unwrap(), 0);

    store.compact(r2).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), r2);
    assert_eq!(
        store.list("/p/", r1).await,
        Err(Error::Compacted {
            requested: r1,
            compacted: r2
        })
    );
    // Current values and the compaction revision itself stay readable.
    let (at_compaction, _) = store.list("/p/", r2).await.unwrap();
    assert_eq!(at_compaction[0].value, value("2"));
    let (now, _) = store.list("/p/", 0).await.unwrap();
    assert_eq!(now.len(), 2);
    // Compacting again at or below is a no-op.
    store.compact(r1).await.unwrap();

    // Watching from before the compaction fails at once.
    assert!(matches!(
        store.watch("/p/", r1).await.err(),
        Some(Error::Compacted { requested, compacted }) if requested == r1 && compacted == r2
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_seen_by_another_store_is_reported() {
    let (etcd, store) = store().await;
    let r1 = store.create("/k", value("1"), None).await.unwrap();
    let r2 = store.update("/k", value("2"), r1).await.unwrap();
    store.compact(r2).await.unwrap();
    // A second API server never compacted itself but learns the revision from etcd.
    let other = EtcdStore::connect(std::slice::from_ref(&etcd.client_url))
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
    let base = store.current_revision().await.unwrap();
    let r1 = store.create("/w/a", value("1"), None).await.unwrap();
    let r2 = store.update("/w/a", value("2"), r1).await.unwrap();
    store.create("/other", value("x"), None).await.unwrap();

    let mut stream = store.watch("/w/", base).await.unwrap();
    let (_, r4) = store.delete("/w/a", None).await.unwrap();
    let r5 = store.create("/w/b", value("b"), None).await.unwrap();
    let events = take(&mut stream, 4).await;
    let revisions: Vec<Revision> = events.iter().map(Event::revision).collect();
    assert_eq!(revisions, [r1, r2, r4, r5]);
    match &events[0] {
        Event::Put { kv, prev } => {
            assert_eq!((kv.value.clone(), kv.create_revision), (value("1"), r1));
            assert_eq!(*prev, None);
        }
        other => panic!("expected a create, got {other:?}"),
    }
    match &events[1] {
        Event::Put { kv, prev } => {
            assert_eq!(kv.value, value("2"));
            assert_eq!(prev.as_ref().map(|p| p.value.clone()), Some(value("1")));
        }
        other => panic!("expected an update, got {other:?}"),
    }
    match &events[2] {
        Event::Delete { prev, revision } => {
            assert_eq!(
                (prev.key.as_str(), prev.value.clone()),
                ("/w/a", value("2"))
            );
            assert_eq!(*revision, r4);
        }
        other => panic!("expected a delete, got {other:?}"),
    }

    // A watch from "now" sees only later writes.
    let mut later = store.watch("/w/", r5).await.unwrap();
    let r6 = store.update("/w/b", value("b2"), r5).await.unwrap();
    assert_eq!(take(&mut later, 1).await[0].revision(), r6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expiry_deletes_with_an_event() {
    let (_etcd, store) = store().await;
    let start = store.current_revision().await.unwrap();
    let created = store
        .create("/events/e", value("e"), Some(Duration::from_secs(2)))
        .await
        .unwrap();
    let kv = store.get("/events/e").await.unwrap().unwrap();
    assert_ne!(kv.lease, 0);
    let mut stream = store.watch("/events/", start).await.unwrap();
    let events = take(&mut stream, 2).await;
    assert_eq!(events[0].revision(), created);
    match &events[1] {
        Event::Delete { prev, revision } => {
            assert_eq!(prev.key, "/events/e");
            assert!(*revision > created);
        }
        other => panic!("expected the expiry's delete, got {other:?}"),
    }
    assert_eq!(store.get("/events/e").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_restarts_the_ttl() {
    let (_etcd, store) = store().await;
    let ttl = Duration::from_secs(4);
    let r1 = store
        .create("/events/e", value("1"), Some(ttl))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r2 = store.update("/events/e", value("2"), r1).await.unwrap();
    let kv = store.get("/events/e").await.unwrap().unwrap();
    assert_ne!(kv.lease, 0, "the update kept a lease");
    // Past the first lease's expiry, the key lives on thanks to the update.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kv = store.get("/events/e").await.unwrap();
    assert_eq!(kv.map(|kv| kv.mod_revision), Some(r2));
    // And it still expires, a TTL after the update.
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.get("/events/e").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the key never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usable_as_dyn_store() {
    let (_etcd, store) = store().await;
    let store: Arc<dyn Store> = store;
    let revision = store.create("/d", value("v"), None).await.unwrap();
    assert_eq!(
        store.get("/d").await.unwrap().unwrap().mod_revision,
        revision
    );
}
