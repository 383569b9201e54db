//! Upstream OpenAPI schemas (generated, committed) and what is derived from them: OpenAPI v3
//! documents, unknown-field detection, strategic-merge and server-side-apply list metadata.
