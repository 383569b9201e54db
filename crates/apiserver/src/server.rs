//! Server start-up: listener, store, PKI, registry and watch cache, router; then serve
//! until shutdown. The admin kubeconfig is written only once the server can answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::config::StoreKind;
use crate::discovery::Discovery;
use crate::http::{router, AppState};
use crate::metrics::Metrics;
use crate::pki::Pki;
use crate::registry::Registry;
use crate::ServerConfig;

/// Run the API server until `shutdown` resolves.
pub async fn run(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_notifying(config, shutdown, |_| {}).await
}

/// Run the API server until `shutdown` resolves, calling `ready` with the admin
/// kubeconfig's path once the server answers (embedded components start from there).
pub async fn run_notifying(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(std::path::PathBuf) + Send,
) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::tls::install_crypto_provider();
    let addr = SocketAddr::new(config.bind_address, config.secure_port);
    // Bind first: a busy port is the most common start-up failure and should fail fast.
    let listener = crate::tls::bind(addr)?;

    // The binary has created, checked and locked the data dir already.
    let store: Arc<dyn k8rs_store::Store> = match &config.store {
        StoreKind::Sqlite => {
            let path = config.data_dir.join("db").join("state.db");
            k8rs_store::sqlite::SqliteStore::open(&path)
                .map_err(|e| anyhow::anyhow!("cannot open the store at {}: {e}", path.display()))?
        }
        StoreKind::Etcd(endpoints) => {
            let etcd: Arc<dyn k8rs_store::Store> = k8rs_store::etcd::EtcdStore::connect(endpoints)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot reach etcd at {}: {e}; start etcd or fix --etcd-servers",
                        endpoints.join(",")
                    )
                })?;
            tokio::spawn(crate::compactor::run(
                etcd.clone(),
                crate::compactor::INTERVAL,
            ));
            etcd
        }
    };
    let pki = Pki::load_or_create(&config.data_dir, config.bind_address, &config.tls_sans)?;
    let tls = pki.server_config()?;

    let metrics = Metrics::new();
    let store: Arc<dyn k8rs_store::Store> = Arc::new(crate::metered_store::MeteredStore::new(
        store,
        metrics.clone(),
    ));
    let registry = Registry::start(store, k8rs_api::resources::all()).await?;
    let tokens = Arc::new(crate::satoken::TokenIssuer::from_pem(
        pki.service_account_key_pem(),
    )?);
    registry.set_token_issuer(tokens.clone());
    registry.set_cluster_ca(pki.ca_pem().to_string());
    let token_authenticator = Arc::new(crate::satoken::ServiceAccountAuthenticator::new(
        tokens,
        registry.clone(),
    ));
    let authenticators =
        Arc::new(crate::authn::AuthenticatorChain::default().with(token_authenticator.clone()));
    let advertise = if config.bind_address.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        config.bind_address
    };
    registry
        .reconcile_kubernetes_service(advertise, config.secure_port)
        .await?;
    // `SocketAddr` brackets IPv6 addresses as URLs need.
    let server_address = SocketAddr::new(advertise, config.secure_port).to_string();
    let discovery = Discovery::new(registry.resources(), server_address.clone());
    let state = Arc::new(AppState {
        registry,
        discovery,
        metrics,
        authenticators,
        tokens: token_authenticator,
        kubelet: crate::http::node_proxy::KubeletClient::new(pki.kubelet_client_config()?),
    });
    let app = router(state);

    let kubeconfig =
        pki.write_admin_kubeconfig(&config.data_dir, &format!("https://{server_address}"))?;
    tracing::info!(address = %server_address, elapsed_ms = started.elapsed().as_millis() as u64, "k8rs API server ready");
    eprintln!(
        "k8rs API server ready on https://{server_address}\nexport KUBECONFIG={}",
        kubeconfig.display()
    );
    let serving = crate::tls::serve(listener, tls, app, shutdown);
    ready(kubeconfig);
    serving.await
}
