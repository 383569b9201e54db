//! The shutdown signal: SIGINT or SIGTERM starts a graceful stop; a second one exits now.

use tokio::signal::unix::{signal, SignalKind};

/// Resolves on the first SIGINT or SIGTERM. Signal handlers are installed when this is
/// called, so call it before start-up work.
pub fn on_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut interrupt = signal(SignalKind::interrupt());
    let mut terminate = signal(SignalKind::terminate());
    async move {
        let name = match (&mut interrupt, &mut terminate) {
            (Ok(interrupt), Ok(terminate)) => tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            },
            // Without signal handlers there is nothing to wait for; run until killed.
            _ => std::future::pending().await,
        };
        tracing::info!(
            signal = name,
            "shutting down (send it again to exit at once)"
        );
        tokio::spawn(async move {
            if let (Ok(interrupt), Ok(terminate)) = (&mut interrupt, &mut terminate) {
                tokio::select! {
                    _ = interrupt.recv() => {},
                    _ = terminate.recv() => {},
                }
                eprintln!("error: interrupted again; exiting without a graceful shutdown");
                std::process::exit(130);
            }
        });
    }
}
