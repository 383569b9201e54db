//! Server-side apply and `metadata.managedFields` tracking, as upstream's field manager
//! (`apimachinery/pkg/util/managedfields/internal`) over structured-merge-diff's `Updater`.
//!
//! Each managedFields entry is one manager identity — (manager, operation, apiVersion for
//! updates, subresource) — owning a field set. Apply merges the applied configuration, prunes
//! what the applier stopped applying and nobody else owns, and reports conflicts with other
//! owners of changed fields unless forced. Other writes give the changed fields to the writer.

use serde_json::{json, Map, Value};

use super::fieldpath::{FieldSet, PathElement};
use super::typed::{compare, ensure_named_fields_are_members, merge, remove_items, to_field_set};
use super::{PatchError, PatchMeta, StatusCause};
use k8rs_api::schema::Schema;

/// At most this many `Update` entries are kept; older ones merge into `ancient-changes`.
const MAX_UPDATE_MANAGERS: usize = 10;
/// Upstream `validation.FieldManagerMaxLength`.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// A field owned by another manager that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name, e.g. `kubectl-client-side-apply`.
    pub manager: String,
    /// Its operation: `Apply` or `Update`.
    pub operation: String,
    /// Its API version (shown for `Update` owners).
    pub api_version: String,
    /// Its subresource, empty for the main resource.
    pub subresource: String,
    /// The field, e.g. `.spec.replicas`.
    pub field: String,
}

impl Conflict {
    /// Upstream's `printManager`: `"name"`, ` with subresource "status"`, ` using apps/v1`.
    fn describe_manager(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (HTTP 409).
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration is not acceptable (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The objects do not fit the schema, e.g. a map-list item without its keys (HTTP 500).
    #[error("{0}")]
    Internal(String),
}

/// Upstream `getConflictMessage`.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [conflict] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            conflict.describe_manager(),
            conflict.field
        );
    }
    let mut managers: Vec<String> = conflicts.iter().map(Conflict::describe_manager).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for manager in managers {
        lines.push(format!("conflicts with {manager}:"));
        for conflict in conflicts.iter().filter(|c| c.describe_manager() == manager) {
            lines.push(format!("- {}", conflict.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

impl From<ApplyError> for PatchError {
    fn from(err: ApplyError) -> PatchError {
        match &err {
            ApplyError::Conflicts(conflicts) => PatchError {
                code: 409,
                reason: "Conflict",
                message: err.to_string(),
                causes: conflicts
                    .iter()
                    .map(|conflict| StatusCause {
                        reason: "FieldManagerConflict".into(),
                        message: format!("conflict with {}", conflict.describe_manager()),
                        field: conflict.field.clone(),
                    })
                    .collect(),
            },
            ApplyError::BadRequest(message) => PatchError::bad_request(message.clone()),
            ApplyError::Internal(message) => PatchError::internal(message.clone()),
        }
    }
}

/// Parses a server-side apply body (YAML or JSON) into an object; 400 `error decoding YAML`
/// otherwise, as upstream.
pub fn parse_apply_body(body: &[u8]) -> Result<Value, PatchError> {
    let text = std::str::from_utf8(body)
        .map_err(|err| PatchError::bad_request(format!("error decoding YAML: {err}")))?;
    match serde_saphyr::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        Ok(_) => Err(PatchError::bad_request(
            "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot \
             unmarshal array into Go value of type map[string]interface {}",
        )),
        Err(err) => Err(PatchError::bad_request(format!(
            "error decoding YAML: {err}"
        ))),
    }
}

/// The field manager upstream derives from a `User-Agent` when `?fieldManager=` is absent:
/// the part before the first `/`, printable characters only, at most 128 bytes.
pub fn default_manager(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Server-side apply of `applied` onto `live` (`None` creates) by `manager` on the main
/// resource. Returns the new object with its `managedFields`; `now` is the RFC 3339 time
/// recorded for the manager.
pub fn apply(
    schema: Option<Schema>,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_with_subresource(schema, live, applied, manager, "", force, now)
}

/// [`apply`] to a subresource (e.g. `status`), recorded as such in `managedFields`.
pub fn apply_with_subresource(
    schema: Option<Schema>,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    apply_with_meta(
        schema.as_ref(),
        live,
        applied,
        manager,
        subresource,
        force,
        now,
    )
}

/// Records the field ownership of a non-apply write (create, update, patch) by `manager`:
/// the fields that changed from `old` (`None` on create) to `new` move to `manager` with
/// operation `Update`. `new.metadata.managedFields` is rewritten; managedFields sent by the
/// client are honoured on the main resource (an empty list resets them), as upstream.
pub fn update_managed_fields(
    schema: Option<Schema>,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    now: &str,
) {
    update_managed_fields_with_meta(schema.as_ref(), old, new, manager, subresource, now)
}

/// One managedFields entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
    time: Option<String>,
    set: FieldSet,
}

impl Entry {
    /// Upstream's manager identifier: apply entries are one per manager whatever the version.
    fn same_identity(&self, other: &Identity) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == "Apply" || self.api_version == other.api_version)
    }

    fn identity(&self) -> Identity {
        Identity {
            manager: self.manager.clone(),
            operation: self.operation.clone(),
            api_version: self.api_version.clone(),
            subresource: self.subresource.clone(),
        }
    }

    fn time_seconds(&self) -> i64 {
        self.time
            .as_deref()
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(time).ok())
            .map(|time| time.timestamp())
            .unwrap_or(0)
    }

    fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("manager".into(), self.manager.clone().into());
        entry.insert("operation".into(), self.operation.clone().into());
        entry.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(time) = &self.time {
            entry.insert("time".into(), time.clone().into());
        }
        entry.insert("fieldsType".into(), "FieldsV1".into());
        entry.insert("fieldsV1".into(), self.set.to_fields_v1());
        if !self.subresource.is_empty() {
            entry.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(entry)
    }

    fn from_json(index: usize, entry: &Value) -> Result<Entry, String> {
        let text = |name: &str| {
            entry
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let operation = text("operation");
        if operation != "Apply" && operation != "Update" {
            return Err("operation must be `Apply` or `Update`".into());
        }
        let api_version = text("apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match text("fieldsType").as_str() {
            "FieldsV1" => {}
            "" => {
                return Err(format!(
                    "missing fieldsType in managed fields entry {index}"
                ))
            }
            other => {
                return Err(format!(
                    "invalid fieldsType {other:?} in managed fields entry {index}"
                ))
            }
        }
        let set = match entry.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(fields) => FieldSet::from_fields_v1(fields)
                .map_err(|err| format!("error decoding set: {err}"))?,
        };
        Ok(Entry {
            manager: text("manager"),
            operation,
            api_version,
            subresource: text("subresource"),
            time: entry
                .get("time")
                .and_then(Value::as_str)
                .map(str::to_string),
            set,
        })
    }
}

/// A manager identity (upstream `BuildManagerIdentifier`).
#[derive(Debug, Clone)]
struct Identity {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
}

fn managed_fields_of(object: &Value) -> Option<&Value> {
    object
        .get("metadata")?
        .get("managedFields")
        .filter(|fields| !fields.is_null())
}

fn decode(object: &Value) -> Result<Vec<Entry>, String> {
    let Some(fields) = managed_fields_of(object) else {
        return Ok(Vec::new());
    };
    let Value::Array(entries) = fields else {
        return Err("managedFields must be a list".into());
    };
    let mut decoded: Vec<Entry> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let entry = Entry::from_json(index, entry)?;
        // Later entries with the same identity replace earlier ones, as in upstream's map.
        decoded.retain(|existing| !existing.same_identity(&entry.identity()));
        decoded.push(entry);
    }
    Ok(decoded)
}

/// Writes `entries` as `metadata.managedFields`, sorted as upstream
/// (operation, time, manager, apiVersion, subresource); removes the field when empty.
fn encode(object: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|entry| !entry.set.is_empty());
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time_seconds().cmp(&b.time_seconds()))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        metadata.shift_remove("managedFields");
    } else {
        metadata.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

fn without_managed_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.shift_remove("managedFields");
    }
    copy
}

/// Fields never recorded in managedFields (upstream `stripMetaManager`).
fn strip_meta(set: &FieldSet) -> FieldSet {
    let field = |name: &str| PathElement::Field(name.into());
    let mut stripped = FieldSet::new();
    stripped.insert(&[field("apiVersion")]);
    stripped.insert(&[field("kind")]);
    stripped.insert(&[field("metadata")]);
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        stripped.insert(&[field("metadata"), field(name)]);
    }
    set.difference(&stripped)
}

fn api_version_of(object: &Value) -> String {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn manager_name(manager: &str) -> String {
    if manager.is_empty() {
        "unknown".into()
    } else {
        manager.into()
    }
}

/// [`apply_with_subresource`] over any [`PatchMeta`] (e.g. a CRD's OpenAPI schema).
#[allow(clippy::too_many_arguments)]
pub fn apply_with_meta<M: PatchMeta>(
    meta: Option<&M>,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::BadRequest(
            "error decoding YAML: the applied configuration must be an object".into(),
        ));
    }
    if managed_fields_of(applied).is_some() {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let live = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = decode(&live)
        .map_err(|err| ApplyError::Internal(format!("failed to decode managed fields: {err}")))?;
    let live = without_managed_fields(&live);
    let api_version = match api_version_of(applied) {
        version if version.is_empty() => api_version_of(&live),
        version => version,
    };
    let identity = Identity {
        manager: manager_name(manager),
        operation: "Apply".into(),
        api_version: api_version.clone(),
        subresource: subresource.into(),
    };

    let merged = merge(&live, applied, meta)
        .map_err(|err| ApplyError::Internal(format!("failed to merge config: {err}")))?;
    let config_set = to_field_set(applied, meta)
        .map_err(|err| ApplyError::Internal(format!("failed to get field set: {err}")))?;
    let position = entries
        .iter()
        .position(|entry| entry.same_identity(&identity));
    let (last_set, previous_time) = match position {
        Some(index) => {
            let previous = entries.remove(index);
            (previous.set, previous.time)
        }
        None => (FieldSet::new(), None),
    };
    entries.push(Entry {
        manager: identity.manager.clone(),
        operation: identity.operation.clone(),
        api_version: api_version.clone(),
        subresource: identity.subresource.clone(),
        time: previous_time,
        set: config_set,
    });
    let applier = entries.len() - 1;

    let merged = prune(merged, &entries, &last_set, meta)
        .map_err(|err| ApplyError::Internal(format!("failed to prune fields: {err}")))?;
    let comparison = compare(&live, &merged, meta)
        .map_err(|err| ApplyError::Internal(format!("failed to compare objects: {err}")))?;
    let changed = comparison.modified.union(&comparison.added);

    let mut conflicts = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if index == applier {
            continue;
        }
        for path in entry.set.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: entry.manager.clone(),
                operation: entry.operation.clone(),
                api_version: entry.api_version.clone(),
                subresource: entry.subresource.clone(),
                field: path.to_string(),
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (index, entry) in entries.iter_mut().enumerate() {
        if index != applier {
            entry.set = entry
                .set
                .difference(&changed)
                .difference(&comparison.removed);
        }
    }
    entries[applier].set = strip_meta(&entries[applier].set);
    if merged != live || entries[applier].time.is_none() {
        entries[applier].time = Some(now.to_string());
    }
    let mut result = merged;
    if !result.is_object() {
        result = json!({});
    }
    encode(&mut result, entries);
    Ok(result)
}

/// Removes what the applier applied last time but no longer applies, unless another manager
/// owns it (upstream `Updater.prune`, `addBackOwnedItems`, `addBackDanglingItems`).
fn prune<M: PatchMeta>(
    merged: Value,
    entries: &[Entry],
    last_set: &FieldSet,
    meta: Option<&M>,
) -> Result<Value, String> {
    if last_set.is_empty() {
        return Ok(merged);
    }
    let ensure = |set: &FieldSet| ensure_named_fields_are_members(set, meta);
    let remove = |set: &FieldSet| -> Result<Value, String> {
        Ok(remove_items(&merged, set, meta)?.unwrap_or_else(|| json!({})))
    };
    let last = ensure(last_set);
    let pruned = remove(&last)?;

    // Add back what any manager (the applier's new configuration included) owns.
    let managed = entries
        .iter()
        .fold(FieldSet::new(), |all, entry| all.union(&entry.set));
    let merged_set = ensure(&to_field_set(&merged, meta)?);
    let pruned_set = ensure(&to_field_set(&pruned, meta)?);
    let pruned = remove(&merged_set.difference(&pruned_set.union(&ensure(&managed))))?;

    // Only remove what the applier owned before.
    let pruned_set = ensure(&to_field_set(&pruned, meta)?);
    remove(&merged_set.difference(&pruned_set).intersection(&last))
}

/// [`update_managed_fields`] over any [`PatchMeta`].
pub fn update_managed_fields_with_meta<M: PatchMeta>(
    meta: Option<&M>,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    now: &str,
) {
    let old = old.cloned().unwrap_or_else(|| json!({}));
    let live_entries = || decode(&old).unwrap_or_default();
    let mut entries = if !subresource.is_empty() {
        // Subresource requests cannot set managedFields.
        live_entries()
    } else {
        match managed_fields_of(new) {
            Some(Value::Array(list))
                if list.is_empty()
                    || (list.len() == 1 && list[0].as_object().is_some_and(Map::is_empty)) =>
            {
                Vec::new()
            }
            _ => match decode(new) {
                Ok(entries) if !entries.is_empty() => entries,
                _ => live_entries(),
            },
        }
    };
    let old_object = without_managed_fields(&old);
    let new_object = without_managed_fields(new);
    let comparison = match compare(&old_object, &new_object, meta) {
        Ok(comparison) => comparison,
        Err(_) => {
            // As upstream's UpdateNoErrors: keep the live object's managedFields.
            encode(new, live_entries());
            return;
        }
    };
    let changed = comparison.modified.union(&comparison.added);
    for entry in entries.iter_mut() {
        entry.set = entry
            .set
            .difference(&changed)
            .difference(&comparison.removed);
    }
    entries.retain(|entry| !entry.set.is_empty());

    let owned_now = strip_meta(&changed);
    if !owned_now.is_empty() {
        let identity = Identity {
            manager: manager_name(manager),
            operation: "Update".into(),
            api_version: api_version_of(&new_object),
            subresource: subresource.into(),
        };
        match entries
            .iter_mut()
            .find(|entry| entry.same_identity(&identity))
        {
            Some(entry) => {
                entry.set = entry.set.union(&owned_now);
                entry.time = Some(now.to_string());
            }
            None => entries.push(Entry {
                manager: identity.manager,
                operation: identity.operation,
                api_version: identity.api_version,
                subresource: identity.subresource,
                time: Some(now.to_string()),
                set: owned_now,
            }),
        }
    }
    cap_update_managers(&mut entries);
    encode(new, entries);
}

/// Merges the oldest `Update` entries into per-version `ancient-changes` entries until at most
/// ten remain (upstream `capManagersManager`).
fn cap_update_managers(entries: &mut Vec<Entry>) {
    let mut updaters: Vec<usize> = (0..entries.len())
        .filter(|&index| entries[index].operation == "Update")
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|&a, &b| {
        entries[a]
            .time_seconds()
            .cmp(&entries[b].time_seconds())
            .then_with(|| entries[a].manager.cmp(&entries[b].manager))
    });
    let mut remaining = updaters.len();
    let mut first_of_version: Vec<(String, usize)> = Vec::new();
    let mut merged_away = Vec::new();
    for &index in &updaters {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[index].api_version.clone();
        match first_of_version.iter().find(|(v, _)| *v == version) {
            Some(&(_, first)) => {
                let bucket = Identity {
                    manager: "ancient-changes".into(),
                    operation: "Update".into(),
                    api_version: version.clone(),
                    subresource: String::new(),
                };
                let bucket_index = match entries.iter().position(|e| e.same_identity(&bucket)) {
                    Some(position) => position,
                    None => {
                        let first_entry = &mut entries[first];
                        first_entry.manager = bucket.manager;
                        first_entry.subresource = String::new();
                        first
                    }
                };
                let set = entries[index].set.clone();
                let time = entries[index].time.clone();
                let bucket_entry = &mut entries[bucket_index];
                bucket_entry.set = bucket_entry.set.union(&set);
                bucket_entry.time = time;
                merged_away.push(index);
                remaining -= 1;
            }
            None => first_of_version.push((version, index)),
        }
    }
    merged_away.sort_unstable();
    for index in merged_away.into_iter().rev() {
        entries.remove(index);
    }
}

#[cfg(test)]
mod tests;
