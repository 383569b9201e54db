//! The API's vocabulary, with no I/O: which resources exist ([`resources`]), how each one is
//! defaulted ([`defaults`]), validated ([`validation`]), printed as a table ([`printers`]) and
//! filtered ([`selectors`]), and the upstream schemas ([`schema`]) that drive OpenAPI,
//! unknown-field detection and strategic-merge/apply metadata.
//!
//! Objects are handled as `serde_json::Value` at this crate's boundary (like upstream's
//! unstructured objects); per-kind code decodes into `k8s-openapi` types where it helps.

pub mod defaults;
pub mod field_error;
pub mod printers;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod strategy;
pub mod validation;

pub use field_error::{FieldError, FieldErrorType};
pub use strategy::{Column, ResourceInfo, Strategy, Subresources};
