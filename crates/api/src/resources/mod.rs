//! The resource catalogue: every built-in resource served, each with its strategy.

use std::sync::Arc;

use crate::Strategy;

/// Every built-in resource, in discovery order.
pub fn all() -> Vec<Arc<dyn Strategy>> {
    // SKELETON: filled in by the catalogue work (issue 4).
    Vec::new()
}
