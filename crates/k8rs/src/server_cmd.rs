//! `k8rs server`: flags → `ServerConfig`, then run the API server until a signal.

use anyhow::bail;
use k8rs_apiserver::config::{Component, StoreKind};
use k8rs_apiserver::ServerConfig;

use crate::cli::{ServerArgs, StoreArg};
use crate::{data_dir, embedded, shutdown};

/// Run `k8rs server`.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let shutdown = shutdown::on_signal();
    let config = config_from(args)?;
    let _lock = data_dir::prepare(&config.data_dir)?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        address = %std::net::SocketAddr::new(config.bind_address, config.secure_port),
        "starting k8rs server"
    );
    let embedded = config.clone();
    let components = embedded::Stop::default();
    let handle = components.handle();
    // On a signal the embedded components stop first (handing back their leases) while
    // the API server still serves.
    let shutdown = async move {
        shutdown.await;
        components.stop().await;
    };
    k8rs_apiserver::run_notifying(config, shutdown, move |kubeconfig| {
        embedded::spawn(&embedded, kubeconfig, handle)
    })
    .await
}

/// Check the flags together and build the configuration.
fn config_from(args: ServerArgs) -> anyhow::Result<ServerConfig> {
    let store = match (args.store, args.etcd_servers.is_empty()) {
        (Some(StoreArg::Etcd), true) => {
            bail!("--store etcd needs --etcd-servers; pass --etcd-servers https://HOST:2379,…")
        }
        (Some(StoreArg::Sqlite), false) => {
            bail!("--etcd-servers is only used with --store etcd; drop it or pass --store etcd")
        }
        (Some(StoreArg::Sqlite) | None, true) => StoreKind::Sqlite,
        (Some(StoreArg::Etcd) | None, false) => StoreKind::Etcd(args.etcd_servers),
    };
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => data_dir::default_dir()?,
    };
    let mut config = ServerConfig::new(data_dir);
    config.bind_address = args.bind_address;
    config.secure_port = args.secure_port;
    config.store = store;
    config.disabled = args.disable.into_iter().map(Component::from).collect();
    config.tls_sans = args.tls_san;
    config.leader_elect = args.leader_elect;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(argv: &[&str]) -> anyhow::Result<ServerConfig> {
        let argv = ["k8rs", "server"].iter().chain(argv);
        let Command::Server(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("not server")
        };
        config_from(args)
    }

    #[test]
    fn flags_become_the_config() {
        let c = config(&[
            "--data-dir",
            "/d",
            "--secure-port",
            "7443",
            "--disable",
            "scheduler",
            "--tls-san",
            "api.example.com,10.0.0.1",
        ])
        .unwrap();
        assert_eq!(c.data_dir, std::path::PathBuf::from("/d"));
        assert_eq!(c.secure_port, 7443);
        assert_eq!(c.store, StoreKind::Sqlite);
        assert!(!c.runs(Component::Scheduler));
        assert!(c.runs(Component::Controllers));
        assert_eq!(c.tls_sans, ["api.example.com", "10.0.0.1"]);
    }

    #[test]
    fn etcd_store_needs_servers() {
        let err = config(&["--data-dir", "/d", "--store", "etcd"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--store etcd needs --etcd-servers; pass --etcd-servers https://HOST:2379,…"
        );
        let c = config(&["--data-dir", "/d", "--etcd-servers", "http://e:2379"]).unwrap();
        assert_eq!(c.store, StoreKind::Etcd(vec!["http://e:2379".into()]));
        assert!(config(&[
            "--data-dir",
            "/d",
            "--store",
            "sqlite",
            "--etcd-servers",
            "http://e:2379"
        ])
        .is_err());
    }
}
