//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): creates the object when
//! it is absent, otherwise merges the applied configuration with field ownership tracking.

use serde_json::Value;

use super::meta;
use super::update::Part;
use super::{Registry, Resource, WriteOptions, WriteResult};
use crate::patch::PatchError;
use crate::status::{ApiError, ApiResult};

impl Registry {
    /// Apply a configuration for `opts.field_manager`.
    pub(crate) async fn apply(
        &self,
        res: &Resource,
        namespace: Option<&str>,
        name: &str,
        body: &[u8],
        part: Part,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        let info = res.info();
        let applied: Value = crate::patch::parse_apply_body(body).map_err(ApiError::from)?;
        if opts.field_manager.is_empty() {
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        let applied_name = meta::name(&applied);
        if applied_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({applied_name}) does not match the name on the URL ({name})"
            )));
        }
        let now = meta::now();
        let subresource = if part == Part::Status { "status" } else { "" };
        let key = res.key(namespace, name);
        if self.store.get(&key).await?.is_none() && part == Part::Main {
            let merged = crate::patch::apply(
                res.schema,
                None,
                &applied,
                &opts.field_manager,
                opts.force,
                &now,
            )
            .map_err(|e| ApiError::from(PatchError::from(e)))?;
            let (mut obj, warnings) = self.decode_body(res, merged, opts)?;
            // The apply engine already recorded ownership; an empty manager skips re-recording.
            let apply_opts = WriteOptions {
                field_manager: String::new(),
                ..opts.clone()
            };
            self.create_decoded(res, namespace, &mut obj, &apply_opts)
                .await
                .map_err(|e| {
                    if e.reason == "AlreadyExists" {
                        ApiError::conflict(info, name)
                    } else {
                        e
                    }
                })?;
            return Ok(WriteResult {
                object: obj,
                warnings,
                created: true,
            });
        }
        let mut warnings = Vec::new();
        let result = self
            .guaranteed_update(
                res,
                namespace,
                name,
                part,
                &WriteOptions {
                    field_manager: String::new(),
                    ..opts.clone()
                },
                |old| {
                    let merged = crate::patch::apply_with_subresource(
                        res.schema,
                        Some(old),
                        &applied,
                        &opts.field_manager,
                        subresource,
                        opts.force,
                        &now,
                    )
                    .map_err(|e| ApiError::from(PatchError::from(e)))?;
                    let (obj, w) = self.decode_body(res, merged, opts)?;
                    warnings = w;
                    Ok(obj)
                },
            )
            .await?;
        Ok(WriteResult { warnings, ..result })
    }
}
