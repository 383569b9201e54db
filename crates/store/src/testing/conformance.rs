//! The behaviours of the [`Store`] contract every backend must show. Each function takes
//! a fresh, empty store (revisions are counted from its current revision, since etcd
//! starts at 1 and sqlite at 0) and panics on the first broken assertion; each backend's
//! tests call every one from its own test, so a failure names the behaviour.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{take, value};
use crate::{Error, Event, Revision, Store};

/// Creates, reads, lists, updates with CAS, deletes and re-creates keys; revisions count
/// up by one per write.
pub async fn create_get_list_update_delete(store: Arc<dyn Store>) {
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
    assert_eq!(store.current_revision().await.unwrap(), base + 6);
}

/// `AlreadyExists`, `Conflict` and `NotFound` for the writes that earn them, and failed
/// writes consume no revision.
pub async fn conflicts_and_missing_keys(store: Arc<dyn Store>) {
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
    // Failed writes consume no revision: the only write after r2 is the delete.
    assert_eq!(store.current_revision().await.unwrap(), r2 + 1);
}

/// Of many concurrent updates expecting the same revision exactly one wins; the others
/// get `Conflict` with a newer revision.
pub async fn concurrent_cas_lets_exactly_one_win(store: Arc<dyn Store>) {
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

/// A list at an older revision sees the values of then (deleted keys included); a list
/// at a revision not yet written is `FutureRevision`.
pub async fn list_at_older_revision_and_future(store: Arc<dyn Store>) {
    let r1 = store.create("/p/a", value("a1"), None).await.unwrap();
    let r2 = store.create("/p/b", value("b1"), None).await.unwrap();
    store.update("/p/a", value("a2"), r1).await.unwrap();
    let (_, r4) = store.delete("/p/b", None).await.unwrap();

    let (at_r1, rev) = store.list("/p/", r1).await.unwrap();
    assert_eq!(rev, r1);
    assert_eq!(
        at_r1.iter().map(|kv| kv.value.clone()).collect::<Vec<_>>(),
        [value("a1")]
    );
    let (at_r2, rev) = store.list("/p/", r2).await.unwrap();
    assert_eq!(rev, r2);
    let pairs: Vec<_> = at_r2
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(pairs, [("/p/a", value("a1")), ("/p/b", value("b1"))]);

    let (now, rev) = store.list("/p/", 0).await.unwrap();
    assert_eq!(rev, r4);
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].value, value("a2"));

    assert_eq!(
        store.list("/p/", r4 + 1).await,
        Err(Error::FutureRevision(r4 + 1))
    );
    assert_eq!(
        store.list("/p/", r4 + 100).await,
        Err(Error::FutureRevision(r4 + 100))
    );
}

/// Compaction makes lists and watches before it `Compacted`, keeps current values and the
/// compaction revision itself readable and watchable, ignores older revisions and
/// refuses future ones.
pub async fn compaction_reports_compacted_and_keeps_current_values(store: Arc<dyn Store>) {
    assert_eq!(store.compacted_revision().await.unwrap(), 0);
    let r1 = store.create("/p/a", value("1"), None).await.unwrap();
    let r2 = store.update("/p/a", value("2"), r1).await.unwrap();
    store.create("/p/gone", value("x"), None).await.unwrap();
    store.delete("/p/gone", None).await.unwrap();
    let kept = store.create("/p/b", value("b"), None).await.unwrap();
    let after = store.update("/p/a", value("after"), r2).await.unwrap();

    store.compact(kept).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), kept);
    let compacted = Error::Compacted {
        requested: r1,
        compacted: kept,
    };
    assert_eq!(store.list("/p/", r1).await, Err(compacted.clone()));
    // Watching from before the compaction fails at once.
    assert_eq!(store.watch("/p/", r1).await.err(), Some(compacted));

    // The compaction revision itself stays readable, deleted keys gone.
    let (at_compaction, rev) = store.list("/p/", kept).await.unwrap();
    assert_eq!(rev, kept);
    let pairs: Vec<_> = at_compaction
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone(), kv.mod_revision))
        .collect();
    assert_eq!(
        pairs,
        [("/p/a", value("2"), r2), ("/p/b", value("b"), kept)]
    );
    let (now, _) = store.list("/p/", 0).await.unwrap();
    assert_eq!(now.len(), 2);

    // Watching from the compaction revision still yields the later update with its prev.
    let mut watch = store.watch("/p/", kept).await.unwrap();
    match &take(&mut watch, 1).await[0] {
        Event::Put {
            kv,
            prev: Some(prev),
        } => assert_eq!((kv.mod_revision, prev.mod_revision), (after, r2)),
        other => panic!("expected the update, got {other:?}"),
    }

    // Compacting to an older revision is a no-op; to a future one an error.
    store.compact(r1).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), kept);
    assert_eq!(
        store.compact(after + 100).await,
        Err(Error::FutureRevision(after + 100))
    );
}

/// A watch from a past revision replays the prefix's events in order with their `prev`
/// values (as a list at each revision shows them), then the live ones, identical to a
/// replay of the same revisions.
pub async fn watch_from_past_revision_has_order_and_prev_values(store: Arc<dyn Store>) {
    let base = store.current_revision().await.unwrap();
    store.create("/other", value("o"), None).await.unwrap();
    let r2 = store.create("/p/a", value("1"), None).await.unwrap();
    let r3 = store.update("/p/a", value("2"), r2).await.unwrap();
    let (_, r4) = store.delete("/p/a", Some(r3)).await.unwrap();
    let r5 = store.create("/p/a", value("3"), None).await.unwrap();

    let mut history = store.watch("/p/", base).await.unwrap();
    let events = take(&mut history, 4).await;
    let revisions: Vec<Revision> = events.iter().map(Event::revision).collect();
    assert_eq!(revisions, [r2, r3, r4, r5]);
    let a1 = store.list("/p/", r2).await.unwrap().0.remove(0);
    let a2 = store.list("/p/", r3).await.unwrap().0.remove(0);
    assert_eq!((a1.value.clone(), a1.create_revision), (value("1"), r2));
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
        other => panic!("expected a create, got {other:?}"),
    }

    // A watch from "now" sees only later writes, identical to a replay of them.
    let mut live = store.watch("/p/", r5).await.unwrap();
    let r6 = store.update("/p/a", value("4"), r5).await.unwrap();
    store.delete("/p/a", Some(r6)).await.unwrap();
    let live_events = take(&mut live, 2).await;
    assert_eq!(live_events[0].revision(), r6);
    let replayed = take(&mut store.watch("/p/", r5).await.unwrap(), 2).await;
    assert_eq!(live_events, replayed);
}

/// A watch sees every write of concurrent writers exactly once, in revision order, and a
/// watch started while they write sees the same events.
pub async fn watch_has_no_gaps_under_concurrent_writers(store: Arc<dyn Store>) {
    let base = store.current_revision().await.unwrap();
    let mut early = store.watch("/w/", base).await.unwrap();
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
    let mut late = store.watch("/w/", base).await.unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let early_events = take(&mut early, 400).await;
    let late_events = take(&mut late, 400).await;
    for (i, event) in early_events.iter().enumerate() {
        assert_eq!(
            event.revision(),
            base + 1 + i as i64,
            "gap or duplicate at {i}"
        );
    }
    assert_eq!(early_events, late_events);
}

/// A key created with `ttl` carries a lease (kept by an update) and is deleted, with a
/// watch event, once it expires; keys without a TTL stay.
pub async fn ttl_expiry_deletes_with_an_event(store: Arc<dyn Store>, ttl: Duration) {
    let start = store.current_revision().await.unwrap();
    let mut watch = store.watch("/events/", start).await.unwrap();
    let r1 = store
        .create("/events/e", value("1"), Some(ttl))
        .await
        .unwrap();
    store
        .create("/events/keep", value("k"), None)
        .await
        .unwrap();
    let r3 = store.update("/events/e", value("2"), r1).await.unwrap();
    let lease = store.get("/events/e").await.unwrap().unwrap().lease;
    assert_ne!(lease, 0, "the update kept a lease");

    let events = take(&mut watch, 4).await;
    assert_eq!(events[0].revision(), r1);
    match &events[3] {
        Event::Delete { prev, revision } => {
            assert_eq!(
                (prev.key.as_str(), prev.mod_revision, prev.lease),
                ("/events/e", r3, lease)
            );
            assert_eq!(*revision, r3 + 1);
        }
        other => panic!("expected the lease's delete, got {other:?}"),
    }
    assert_eq!(store.get("/events/e").await.unwrap(), None);
    assert!(store.get("/events/keep").await.unwrap().is_some());
}

/// Every update restarts a key's TTL: written every third of its TTL for twice its TTL,
/// the key lives on, and it expires within about a TTL of the last write.
pub async fn an_update_restarts_the_ttl(store: Arc<dyn Store>, ttl: Duration) {
    let mut rev = store
        .create("/events/e", value("0"), Some(ttl))
        .await
        .unwrap();
    for i in 1..=6 {
        tokio::time::sleep(ttl / 3).await;
        rev = store
            .update("/events/e", value(&i.to_string()), rev)
            .await
            .expect("the key must still exist while it is being written");
    }
    let kv = store.get("/events/e").await.unwrap().unwrap();
    assert_ne!(kv.lease, 0, "the updates kept a lease");
    assert_eq!(kv.mod_revision, rev);
    let deadline = Instant::now() + ttl * 2;
    while store.get("/events/e").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the key did not expire a TTL after the last write"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The backend works behind `Arc<dyn Store>`, the way the API server holds it.
pub async fn usable_as_dyn_store(store: Arc<dyn Store>) {
    let revision = store.create("/d", value("v"), None).await.unwrap();
    assert_eq!(
        store.get("/d").await.unwrap().unwrap().mod_revision,
        revision
    );
    assert_eq!(store.list("/", 0).await.unwrap().0.len(), 1);
}
