//! `meta.k8s.io/v1 Table` responses (what `kubectl get` asks for), and the other
//! representations a client may request through `Accept`.

use k8rs_api::Strategy;
use serde_json::{json, Value};

/// What a client asked the response to be, from its `Accept` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The object (or list) itself.
    Object,
    /// `as=Table;g=meta.k8s.io;v=v1`.
    Table,
    /// `as=PartialObjectMetadata(List)`: metadata only.
    Metadata,
}

/// `?includeObject=` for tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No `object` in rows.
    None,
    /// `PartialObjectMetadata` in rows (default).
    #[default]
    Metadata,
    /// The full object in rows.
    Object,
}

impl IncludeObject {
    /// Parse the query value (default `Metadata`).
    pub fn parse(s: Option<&str>) -> IncludeObject {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// Pick the representation from an `Accept` header: the first acceptable media type wins.
pub fn negotiate(accept: &str) -> Representation {
    for media in accept.split(',') {
        let params: Vec<(&str, &str)> = media
            .split(';')
            .skip(1)
            .filter_map(|p| p.trim().split_once('='))
            .collect();
        let get = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        match (get("as"), get("g")) {
            (Some("Table"), Some("meta.k8s.io")) => return Representation::Table,
            (
                Some("PartialObjectMetadata") | Some("PartialObjectMetadataList"),
                Some("meta.k8s.io"),
            ) => return Representation::Metadata,
            (None, _) => {
                let base = media.split(';').next().unwrap_or("").trim();
                if base.is_empty()
                    || base.contains("json")
                    || base == "*/*"
                    || base.contains("yaml")
                    || base.contains("protobuf")
                {
                    return Representation::Object;
                }
            }
            _ => {}
        }
    }
    Representation::Object
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A Table of `objects`, with column definitions unless `with_columns` is false (watch
/// events after the first).
pub fn to_table<'a>(
    strategy: &dyn Strategy,
    objects: impl IntoIterator<Item = &'a Value>,
    list_meta: Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let columns: Vec<Value> = if with_columns {
        strategy
            .columns()
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.type_,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|obj| {
            let mut row = json!({ "cells": strategy.row(obj) });
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_metadata(obj),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_accept_header_selects_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(accept), Representation::Table);
        assert_eq!(negotiate("application/json"), Representation::Object);
        assert_eq!(
            negotiate("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Representation::Metadata
        );
    }
}
