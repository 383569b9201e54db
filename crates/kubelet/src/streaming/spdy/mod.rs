//! SPDY/3.1, written here because no Rust crate implements it: [`frame`] is the wire
//! format and header compression, [`session`] the multiplexed streams on top.

pub mod frame;
pub mod session;

pub use frame::{header, Frame, Headers};
pub use session::{Role, Session, Stream, StreamReader, StreamWriter};
