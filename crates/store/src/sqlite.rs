//! sqlite backend (kine-style). Implemented by the store work (issue 4).
