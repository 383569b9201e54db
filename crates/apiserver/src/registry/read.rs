//! Get, list and watch, served from the watch cache.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use k8rs_api::selectors::fields::FieldSelector;
use k8rs_api::selectors::labels::LabelSelector;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc};

use super::{Registry, Resource};
use crate::status::{ApiError, ApiResult};
use crate::watch_cache::{CacheEvent, CachedObject, EventType};

/// Query options of a LIST.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub label_selector: Option<String>,
    /// `fieldSelector`.
    pub field_selector: Option<String>,
    /// `limit` (0 = no limit).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: `NotOlderThan` or `Exact`.
    pub resource_version_match: Option<String>,
}

/// Query options of a WATCH.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Selectors (limit and continue are ignored for watches).
    pub list: ListOptions,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
}

/// A LIST response: `<Kind>List` whose items are shared with the cache and written out
/// as the JSON the cache holds.
#[derive(Debug, Clone)]
pub struct ListResult {
    /// `<Kind>List`.
    pub kind: String,
    /// The resource's group version.
    pub api_version: String,
    /// `resourceVersion`, `continue`, `remainingItemCount`.
    pub metadata: Value,
    /// The objects.
    pub items: Vec<Arc<CachedObject>>,
}

impl ListResult {
    /// The list's JSON: the items' cached encodings copied, nothing re-serialised.
    pub fn to_json(&self) -> Vec<u8> {
        let head =
            json!({"kind": self.kind, "apiVersion": self.api_version, "metadata": self.metadata});
        let mut out = serde_json::to_vec(&head).unwrap_or_default();
        out.pop(); // the closing brace
        let size: usize = self.items.iter().map(|i| i.json().len() + 1).sum();
        out.reserve(size + 12);
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item.json());
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The list as `PartialObjectMetadataList`, the items' metadata cut from their JSON.
    pub fn to_partial_metadata_json(&self) -> Vec<u8> {
        let head = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": self.metadata});
        let mut out = serde_json::to_vec(&head).unwrap_or_default();
        out.pop(); // the closing brace
        out.extend_from_slice(b",\"items\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&item.partial_metadata_json());
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// The items parsed (tables, metadata-only lists).
    pub fn values(&self) -> Vec<Value> {
        self.items.iter().map(|i| i.value()).collect()
    }
}

/// One event sent to a watcher.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    /// `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`.
    pub type_: &'static str,
    /// The object (a `Status` for `ERROR`); shared with the cache, so every watcher sends
    /// the same encoding.
    pub object: Arc<CachedObject>,
}

impl WatchEvent {
    /// An event whose object is built here (bookmarks, errors).
    fn of_value(type_: &'static str, object: &Value) -> WatchEvent {
        WatchEvent {
            type_,
            object: Arc::new(CachedObject::from_value(object)),
        }
    }

    /// The object's JSON.
    pub fn encoded_object(&self) -> bytes::Bytes {
        self.object.json().clone()
    }
}

/// Label and field selectors of one request, checked against this resource.
pub(crate) struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    pub(crate) fn new(res: &Resource, opts: &ListOptions) -> ApiResult<Filter> {
        let labels = match opts
            .label_selector
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            Some(s) => Some(LabelSelector::parse(s).map_err(ApiError::bad_request)?),
            None => None,
        };
        let fields = match opts
            .field_selector
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            Some(s) => {
                let sel = FieldSelector::parse(s).map_err(ApiError::bad_request)?;
                let probe = json!({"metadata": {}});
                sel.validate(|field| res.strategy.field(&probe, field).is_some())
                    .map_err(ApiError::bad_request)?;
                Some(sel)
            }
            None => None,
        };
        Ok(Filter { labels, fields })
    }

    fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// Whether a cached object matches; fields are read from a parse of the object, only
    /// when the request has a field selector.
    pub(crate) fn matches(&self, res: &Resource, obj: &CachedObject) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches_with(|k| obj.label(k)) {
                return false;
            }
        }
        if self.fields.is_some() {
            return self.matches_value(res, &obj.value());
        }
        true
    }

    /// Whether a parsed object matches.
    pub(crate) fn matches_value(&self, res: &Resource, obj: &Value) -> bool {
        if let Some(l) = &self.labels {
            if !l.matches_object(obj) {
                return false;
            }
        }
        if let Some(f) = &self.fields {
            if !f
                .matches(|field| res.strategy.field(obj, field))
                .unwrap_or(false)
            {
                return false;
            }
        }
        true
    }
}

/// The `continue` token: upstream's format (base64 JSON with the list revision and the
/// key to resume after).
fn encode_continue(rev: i64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": format!("{start}\u{0}")});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(i64, String)> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    Ok((rev, start))
}

fn parse_rv(rv: &str) -> ApiResult<i64> {
    rv.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

impl Registry {
    /// Wait until the cache has reached a client's `resourceVersion` (`504` after a bound).
    async fn wait_for_revision(&self, rv: i64) -> ApiResult<()> {
        if self
            .cache
            .wait_for(rv, super::CONSISTENT_READ_TIMEOUT)
            .await
        {
            Ok(())
        } else {
            Err(ApiError::too_large_resource_version(
                rv,
                self.cache.revision(),
            ))
        }
    }

    /// Get one object (consistent with every committed write), parsed.
    pub async fn get(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> ApiResult<Arc<Value>> {
        self.get_cached(res, namespace, name, resource_version)
            .await
            .map(|o| Arc::new(o.value()))
    }

    /// Get one object as the cache holds it (its JSON ready to send).
    pub async fn get_cached(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> ApiResult<Arc<CachedObject>> {
        let cache = self.resource_cache(res)?;
        match resource_version {
            Some("0") => {}
            Some(rv) if !rv.is_empty() => {
                let rv = parse_rv(rv)?;
                self.wait_for_revision(rv).await?;
            }
            _ => {
                // Upstream serves a GET without resourceVersion from storage; the cache
                // answers when it already holds every committed write.
                let current = self.store.current_revision().await?;
                if self.cache.revision() < current {
                    let key = res.key(namespace, name);
                    return match self.store.get(&key).await? {
                        Some(kv) => CachedObject::decode(&kv.value, kv.mod_revision)
                            .map(|o| res.external(&Arc::new(o)))
                            .ok_or_else(|| {
                                ApiError::internal(format!("stored object {key} is not JSON"))
                            }),
                        None => Err(ApiError::not_found(res.info(), name)),
                    };
                }
            }
        }
        cache
            .get(&res.key(namespace, name))
            .map(|o| res.external(&o))
            .ok_or_else(|| ApiError::not_found(res.info(), name))
    }

    /// Objects matching the options (no paging), for deletecollection and internal use.
    pub(crate) async fn list_objects(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<Vec<Arc<Value>>> {
        let filter = Filter::new(res, opts)?;
        self.consistent_revision().await?;
        let snapshot = self
            .resource_cache(res)?
            .list(&res.list_prefix(namespace), self.cache.revision());
        Ok(snapshot
            .objects
            .iter()
            .map(|o| res.external(o))
            .filter(|o| filter.matches(res, o))
            .map(|o| Arc::new(o.value()))
            .collect())
    }

    /// A LIST response (`<Kind>List` with `metadata.resourceVersion`, `continue`,
    /// `remainingItemCount`).
    pub async fn list(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<ListResult> {
        let filter = Filter::new(res, opts)?;
        let prefix = res.list_prefix(namespace);
        let (objects, revision): (Vec<Arc<CachedObject>>, i64) = if let Some(token) =
            opts.continue_token.as_deref().filter(|t| !t.is_empty())
        {
            // Later pages come from the store at the first page's revision.
            let (rev, start) = decode_continue(token)?;
            let (kvs, rev) = self.store.list(&prefix, rev).await.map_err(|e| match e {
                    k8rs_store::Error::Compacted { .. } => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue parameter from the 410 response.",
                    ),
                    other => other.into(),
                })?;
            let start_key = format!("{}{}", res.storage_prefix, start.trim_end_matches('\u{0}'));
            let objs = kvs
                .into_iter()
                .filter(|kv| kv.key > start_key)
                .filter_map(|kv| CachedObject::decode(&kv.value, kv.mod_revision).map(Arc::new))
                .collect();
            (objs, rev)
        } else {
            let exact = opts.resource_version_match.as_deref() == Some("Exact");
            match opts.resource_version.as_deref() {
                Some("0") if !exact => {}
                Some(rv) if !rv.is_empty() => {
                    let rv = parse_rv(rv)?;
                    if exact {
                        let (kvs, rev) = self.store.list(&prefix, rv).await?;
                        let objs = kvs
                            .into_iter()
                            .filter_map(|kv| {
                                CachedObject::decode(&kv.value, kv.mod_revision).map(Arc::new)
                            })
                            .collect();
                        return Ok(self.list_response(res, objs, rev, opts, &filter));
                    }
                    self.wait_for_revision(rv).await?;
                }
                _ => {
                    if self.consistent_revision().await.is_err() {
                        // The cache lags too far behind: as upstream's cacher, answer
                        // this consistent list from storage instead of failing it.
                        let (kvs, rev) = self.store.list(&prefix, 0).await?;
                        let objs = kvs
                            .into_iter()
                            .filter_map(|kv| {
                                CachedObject::decode(&kv.value, kv.mod_revision).map(Arc::new)
                            })
                            .collect();
                        return Ok(self.list_response(res, objs, rev, opts, &filter));
                    }
                }
            }
            let snap = self
                .resource_cache(res)?
                .list(&prefix, self.cache.revision());
            (snap.objects, snap.revision)
        };
        Ok(self.list_response(res, objects, revision, opts, &filter))
    }

    fn list_response(
        &self,
        res: &Resource,
        objects: Vec<Arc<CachedObject>>,
        revision: i64,
        opts: &ListOptions,
        filter: &Filter,
    ) -> ListResult {
        let info = res.info();
        let mut items = Vec::new();
        let mut iter = objects
            .iter()
            .map(|o| res.external(o))
            .filter(|o| filter.matches(res, o));
        let mut more = false;
        for obj in iter.by_ref() {
            if opts.limit > 0 && items.len() == opts.limit {
                more = true;
                break;
            }
            items.push(obj);
        }
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if more {
            // The key to resume after: the last item's namespace and name.
            let last = items.last().map(|o| o.value()).unwrap_or_default();
            let last_key = res.key(
                Some(super::meta::namespace(&last)).filter(|n| !n.is_empty()),
                super::meta::name(&last),
            );
            let start = last_key
                .strip_prefix(&res.storage_prefix)
                .unwrap_or(&last_key)
                .to_string();
            metadata["continue"] = json!(encode_continue(revision, &start));
            if filter.is_empty() {
                let remaining = 1 + iter.count();
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
        ListResult {
            kind: format!("{}List", info.kind),
            api_version: info.api_version(),
            metadata,
            items,
        }
    }

    /// Start a WATCH: returns a channel of events that ends on timeout, when the watcher
    /// falls too far behind, or when the receiver is dropped.
    pub async fn watch(
        self: &Arc<Self>,
        res: &Arc<Resource>,
        namespace: Option<&str>,
        opts: WatchOptions,
    ) -> ApiResult<mpsc::Receiver<WatchEvent>> {
        let filter = Filter::new(res, &opts.list)?;
        let cache = self.resource_cache(res)?.clone();
        let prefix = res.list_prefix(namespace);
        let rv = opts.list.resource_version.clone().unwrap_or_default();
        let initial = opts
            .send_initial_events
            .unwrap_or(rv.is_empty() || rv == "0");
        let after = if rv.is_empty() || rv == "0" {
            if rv.is_empty() {
                self.consistent_revision().await?;
            }
            None
        } else {
            let rv = parse_rv(&rv)?;
            self.wait_for_revision(rv).await?;
            if initial {
                None
            } else {
                Some(rv)
            }
        };
        let start_rev = self.cache.revision();
        let (tx, rx) = mpsc::channel(1024);
        let sub = match cache.subscribe(&prefix, after) {
            Ok(sub) => sub,
            Err(oldest) => {
                // As upstream's cacher: once the request is accepted, a too-old revision is
                // a watch ERROR event (410 Expired), not an HTTP error.
                let status =
                    ApiError::expired(format!("too old resource version: {rv} ({oldest})"));
                let _ = tx
                    .send(WatchEvent::of_value("ERROR", &status.to_status()))
                    .await;
                return Ok(rx);
            }
        };
        let res = res.clone();
        let registry = self.clone();
        let timeout = opts.timeout.unwrap_or_else(|| {
            // Upstream spreads watch lifetimes between 30 and 60 minutes.
            Duration::from_secs(1800 + rand::random::<u64>() % 1800)
        });
        let bookmark_every = Duration::from_secs(60);
        let send_end_marker = opts.send_initial_events == Some(true);
        tokio::spawn(async move {
            let info = res.info();
            let bookmark = |rev: i64, end: bool| {
                let mut meta = json!({"resourceVersion": rev.to_string()});
                if end {
                    meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                }
                WatchEvent::of_value(
                    "BOOKMARK",
                    &json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta}),
                )
            };
            let mut last_rev = start_rev;
            for ev in &sub.replay {
                if let Some(out) = translate(&res, &filter, ev) {
                    if ev.revision > 0 {
                        last_rev = last_rev.max(ev.revision);
                    }
                    if tx.send(out).await.is_err() {
                        return;
                    }
                }
            }
            if send_end_marker && tx.send(bookmark(last_rev, true)).await.is_err() {
                return;
            }
            let mut live = sub.live;
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let mut ticker = tokio::time::interval(bookmark_every);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = &mut deadline => return,
                    _ = tx.closed() => return,
                    _ = ticker.tick(), if opts.allow_bookmarks => {
                        let rev = registry.cache.revision().max(last_rev);
                        if tx.send(bookmark(rev, false)).await.is_err() { return; }
                    }
                    msg = live.recv() => match msg {
                        Ok(ev) => {
                            last_rev = last_rev.max(ev.revision);
                            if let Some(out) = translate(&res, &filter, &ev) {
                                if tx.send(out).await.is_err() { return; }
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Too slow: end the watch; the client re-lists.
                            let status = ApiError::expired("the watcher fell too far behind; restart the watch").to_status();
                            let _ = tx.send(WatchEvent::of_value("ERROR", &status)).await;
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// Map a cache event to what a filtered watcher sees: an object that stops matching is
/// DELETED for it, one that starts matching is ADDED (upstream's `watchCacheEvent` rules).
fn translate(res: &Resource, filter: &Filter, ev: &Arc<CacheEvent>) -> Option<WatchEvent> {
    let object = res.external(&ev.object);
    let now = filter.matches(res, &object);
    let before = ev
        .prev
        .as_ref()
        .map(|p| filter.matches(res, &res.external(p)))
        .unwrap_or(false);
    let type_ = match ev.type_ {
        EventType::Added => now.then_some("ADDED")?,
        EventType::Modified => match (before, now) {
            (true, true) => "MODIFIED",
            (false, true) => "ADDED",
            (true, false) => "DELETED",
            (false, false) => return None,
        },
        EventType::Deleted => (before || now).then_some("DELETED")?,
    };
    Some(WatchEvent { type_, object })
}
