//! The generic registry.
