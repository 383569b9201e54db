//! Writing slices, and knowing when the cache has caught up with our writes (upstream's
//! `EndpointSliceTracker`): slices are created with `generateName`, so acting on a cache
//! that has not seen our last creation yet would create a duplicate.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, PostParams};

use super::reconciler::Write;
use crate::endpoint::util::LAST_CHANGE_TRIGGER_TIME;
use k8rs_client::ObjectKey;

/// Applies reconciler writes and remembers them until the cache shows them.
pub struct SliceWriter {
    client: kube::Client,
    /// Per owner key, the slices we wrote (name → resourceVersion, `None` when deleted)
    /// that the cache has not shown yet.
    expected: Mutex<HashMap<ObjectKey, HashMap<String, Option<u64>>>>,
}

impl SliceWriter {
    /// A writer using `client`.
    pub fn new(client: kube::Client) -> Self {
        SliceWriter {
            client,
            expected: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `existing` (the cached slices of `key`) reflects every write we made.
    pub fn caught_up(&self, key: &ObjectKey, existing: &[EndpointSlice]) -> bool {
        let mut expected = self.expected.lock().unwrap();
        let Some(writes) = expected.get(key) else {
            return true;
        };
        let caught_up = writes.iter().all(|(name, rv)| {
            let cached = existing
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
            match (rv, cached) {
                (None, None) => true,
                (None, Some(_)) | (Some(_), None) => false,
                (Some(rv), Some(s)) => resource_version(s).is_some_and(|c| c >= *rv),
            }
        });
        if caught_up {
            expected.remove(key);
        }
        caught_up
    }

    /// Makes the writes in `key`'s namespace, setting (or clearing) the last-change
    /// trigger time on the slices written.
    pub async fn apply(
        &self,
        key: &ObjectKey,
        writes: Vec<Write>,
        trigger: Option<String>,
    ) -> anyhow::Result<()> {
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &key.namespace);
        for write in writes {
            let (name, rv) = match write {
                Write::Create(mut slice) => {
                    set_trigger(&mut slice, trigger.as_deref());
                    match api.create(&PostParams::default(), &slice).await {
                        Ok(created) => (
                            created.metadata.name.clone().unwrap_or_default(),
                            resource_version(&created),
                        ),
                        // The namespace is going away: nothing to keep up to date.
                        Err(kube::Error::Api(e))
                            if e.code == 403 && e.message.contains("being terminated") =>
                        {
                            return Ok(())
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Write::Update(mut slice) => {
                    set_trigger(&mut slice, trigger.as_deref());
                    let name = slice.metadata.name.clone().unwrap_or_default();
                    let updated = api.replace(&name, &PostParams::default(), &slice).await?;
                    (name, resource_version(&updated))
                }
                Write::Delete(name) => {
                    match api.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                    (name, None)
                }
            };
            self.expected
                .lock()
                .unwrap()
                .entry(key.clone())
                .or_default()
                .insert(name, rv);
        }
        Ok(())
    }
}

fn set_trigger(slice: &mut EndpointSlice, trigger: Option<&str>) {
    let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(t) => {
            annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), t.to_string());
        }
        None => {
            annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if annotations.is_empty() {
        slice.metadata.annotations = None;
    }
}

fn resource_version(slice: &EndpointSlice) -> Option<u64> {
    slice.metadata.resource_version.as_deref()?.parse().ok()
}
