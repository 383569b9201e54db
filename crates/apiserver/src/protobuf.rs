//! protobuf
