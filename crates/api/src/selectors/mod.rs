//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`).

pub mod fields;
pub mod labels;
