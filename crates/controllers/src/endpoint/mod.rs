pub fn start(_: &crate::Context) {}
