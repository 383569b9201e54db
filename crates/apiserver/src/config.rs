//! Server configuration, as given on the command line (`k8rs server …`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Which store backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// Embedded sqlite under the data dir (default).
    Sqlite,
    /// External etcd v3 servers.
    Etcd(Vec<String>),
}

/// A component `k8rs server` runs beside the API server unless `--disable`d.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// The controller manager (deployment, replicaset, gc, namespace, … controllers).
    Controllers,
    /// The scheduler.
    Scheduler,
}

impl Component {
    /// Every component, in the order they are started.
    pub const ALL: [Component; 2] = [Component::Controllers, Component::Scheduler];

    /// The name used on the command line (`--disable controllers,scheduler`).
    pub fn name(self) -> &'static str {
        match self {
            Component::Controllers => "controllers",
            Component::Scheduler => "scheduler",
        }
    }

    /// The component called `name` on the command line.
    pub fn from_name(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.name() == name)
    }
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
    /// Components not to run beside the API server.
    pub disabled: BTreeSet<Component>,
    /// Extra host names or IP addresses for the serving certificate (`--tls-san`).
    pub tls_sans: Vec<String>,
    /// Whether the embedded controller manager and scheduler run only while they hold
    /// their Lease in `kube-system` (`--leader-elect`, default true as upstream).
    pub leader_elect: bool,
}

impl ServerConfig {
    /// The defaults of `k8rs server` with the given data directory: 127.0.0.1:6443, sqlite,
    /// every component enabled.
    pub fn new(data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            secure_port: 6443,
            store: StoreKind::Sqlite,
            disabled: BTreeSet::new(),
            tls_sans: Vec::new(),
            leader_elect: true,
        }
    }

    /// Whether `component` should run.
    pub fn runs(&self, component: Component) -> bool {
        !self.disabled.contains(&component)
    }
}
