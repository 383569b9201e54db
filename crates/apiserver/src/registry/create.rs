//! Create (POST), and the decoding of request bodies shared with update.

use serde_json::Value;

use super::meta::{self, meta_mut};
use super::{FieldValidation, Registry, Resource, WriteOptions, WriteResult};
use crate::status::{ApiError, ApiResult};

/// How often a colliding generated name is generated again, as upstream.
const GENERATE_NAME_ATTEMPTS: usize = 8;

impl Registry {
    /// Check a request body's type, apply `fieldValidation`, decode and default it.
    /// Returns the object and the warnings to send.
    pub(crate) fn decode_body(
        &self,
        res: &Resource,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Vec<String>)> {
        let info = res.info();
        if !body.is_object() {
            return Err(ApiError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: the body is not an object",
                info.kind, info.version, info.kind
            )));
        }
        let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
        let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if kind.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                truncate(&body.to_string())
            )));
        }
        if kind != info.kind || (!api_version.is_empty() && api_version != info.api_version()) {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): {api_version}, Kind={kind}",
                info.kind
            )));
        }
        let mut warnings = Vec::new();
        if opts.field_validation != FieldValidation::Ignore {
            let unknown =
                k8rs_api::schema::unknown_fields(info.group, info.version, info.kind, &body);
            if !unknown.is_empty() {
                let msgs: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field {f:?}"))
                    .collect();
                if opts.field_validation == FieldValidation::Strict {
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version {:?} cannot be handled as a {kind}: strict decoding error: {}",
                        info.version,
                        msgs.join(", "),
                        kind = info.kind,
                    )));
                }
                warnings.extend(msgs);
            }
        }
        let mut obj = res
            .strategy
            .decode_and_default(body)
            .map_err(ApiError::bad_request)?;
        // The typed round trip may drop these when empty; upstream always sends them.
        obj["apiVersion"] = Value::String(info.api_version());
        obj["kind"] = Value::String(info.kind.to_string());
        Ok((obj, warnings))
    }

    /// Set the object's namespace from the URL, refusing a contradicting one.
    pub(crate) fn check_namespace(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        obj: &mut Value,
    ) -> ApiResult<()> {
        if res.info().namespaced {
            let ns = namespace.unwrap_or("");
            let body_ns = meta::namespace(obj).to_string();
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta_mut(obj).insert("namespace".into(), Value::String(ns.to_string()));
        } else {
            meta_mut(obj).remove("namespace");
        }
        Ok(())
    }

    /// Create an object (POST to the collection).
    pub async fn create(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        let (mut obj, warnings) = self.decode_body(res, body, opts)?;
        self.create_decoded(res, namespace, &mut obj, opts).await?;
        Ok(WriteResult {
            object: obj,
            warnings,
            created: true,
        })
    }

    /// Create an already decoded object (also the create path of server-side apply).
    pub(crate) async fn create_decoded(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        obj: &mut Value,
        opts: &WriteOptions,
    ) -> ApiResult<()> {
        let info = res.info();
        self.check_namespace(res, namespace, obj)?;
        let name = meta::name(obj).to_string();
        let generated = name.is_empty();
        let name = if generated {
            let prefix = meta::meta_str(obj, "generateName").to_string();
            if prefix.is_empty() {
                return Err(ApiError::invalid(
                    info,
                    "",
                    &[k8rs_api::FieldError::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
            meta::generate_name(&prefix)
        } else {
            name
        };
        {
            let m = meta_mut(obj);
            m.insert("name".into(), Value::String(name.clone()));
            m.insert(
                "uid".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            m.insert("creationTimestamp".into(), Value::String(meta::now()));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(f);
            }
            if res.strategy.tracks_generation() {
                m.insert("generation".into(), Value::from(1));
            } else {
                m.remove("generation");
            }
        }
        res.strategy.prepare_for_create(obj);
        self.admission.admit_create(self, res, obj).await?;
        let errors = res.strategy.validate(obj);
        if !errors.is_empty() {
            return Err(ApiError::invalid(info, &name, &errors));
        }
        self.record_manager(res, None, obj, opts, "");
        if opts.dry_run {
            return Ok(());
        }
        let ttl = self.admission.ttl(res);
        let mut name = name;
        // A generated name that collides is generated again (upstream retries up to 7 times).
        let mut attempts = if generated { GENERATE_NAME_ATTEMPTS } else { 1 };
        let result = loop {
            let key = res.key(namespace, &name);
            let bytes = serde_json::to_vec(&res.to_storage(obj)).map_err(ApiError::internal)?;
            attempts -= 1;
            match self.store.create(&key, bytes.into(), ttl).await {
                Err(k8rs_store::Error::AlreadyExists(_)) if attempts > 0 && generated => {
                    name = meta::generate_name(meta::meta_str(obj, "generateName"));
                    meta_mut(obj).insert("name".into(), Value::String(name.clone()));
                }
                other => break other,
            }
        };
        match result {
            Ok(rev) => {
                crate::watch_cache::set_rv(obj, rev);
                if info.group.is_empty() && info.kind == "Namespace" {
                    self.ensure_default_service_account(&name).await?;
                }
                Ok(())
            }
            Err(k8rs_store::Error::AlreadyExists(_)) => Err(ApiError::already_exists(info, &name)),
            Err(e) => Err(e.into()),
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
