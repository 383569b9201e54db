//! Building responses: JSON bodies with warnings, and object/list/table representations.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::Value;

use crate::registry::{ListResult, Resource};
use crate::table::{self, IncludeObject, Representation};

/// A JSON response.
pub fn json(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// A JSON response with `Warning: 299 - "<text>"` headers, as upstream sends them.
pub fn json_with_warnings(status: StatusCode, body: &Value, warnings: &[String]) -> Response {
    let mut resp = json(status, body);
    for w in warnings {
        add_warning(&mut resp, w);
    }
    resp
}

/// Add a `Warning: 299 - "<text>"` header.
pub fn add_warning(resp: &mut Response, text: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("299 - {text:?}")) {
        resp.headers_mut().append(header::WARNING, v);
    }
}

/// One object in the representation the client asked for.
pub fn object(res: &Resource, obj: &Value, repr: Representation, include: IncludeObject) -> Value {
    match repr {
        Representation::Object => obj.clone(),
        Representation::Metadata => table::partial_metadata(obj),
        Representation::Table => {
            let meta = serde_json::json!({"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or_default()});
            table::to_table(res.strategy.as_ref(), [obj], meta, include, true)
        }
    }
}

/// One cached object in the representation the client asked for; the cached JSON is
/// sent as it is when no other representation is wanted.
pub fn cached_object(
    res: &Resource,
    obj: &crate::watch_cache::CachedObject,
    repr: Representation,
    include: IncludeObject,
) -> Response {
    match repr {
        Representation::Object => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            obj.json().clone(),
        )
            .into_response(),
        _ => json(StatusCode::OK, &object(res, &obj.value(), repr, include)),
    }
}

/// A list in the representation the client asked for.
pub fn list(
    res: &Resource,
    list: &ListResult,
    repr: Representation,
    include: IncludeObject,
) -> Response {
    match repr {
        Representation::Object => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            list.to_json(),
        )
            .into_response(),
        Representation::Metadata => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            list.to_partial_metadata_json(),
        )
            .into_response(),
        Representation::Table => json(
            StatusCode::OK,
            &table::to_table(
                res.strategy.as_ref(),
                list.values().iter(),
                list.metadata.clone(),
                include,
                true,
            ),
        ),
    }
}
