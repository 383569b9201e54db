//! Server start-up: store, PKI, registry, watch cache, router, listener.

use crate::ServerConfig;

/// Run the API server until `shutdown` resolves.
pub async fn run(config: ServerConfig, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let _ = (config, shutdown);
    anyhow::bail!("not yet wired")
}
