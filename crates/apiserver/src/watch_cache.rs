//! watch_cache
