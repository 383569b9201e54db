//! Server configuration, as given on the command line (`k8rs server …`).

use std::net::IpAddr;
use std::path::PathBuf;

/// Which store backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// Embedded sqlite under the data dir (default).
    Sqlite,
    /// External etcd v3 servers.
    Etcd(Vec<String>),
}

/// Everything `k8rs server` needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Data directory: `db/`, `pki/`, `admin.kubeconfig`.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// HTTPS port.
    pub secure_port: u16,
    /// Store backend.
    pub store: StoreKind,
}
