//! The command line (see DESIGN.md's command-line contract).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use k8rs_apiserver::config::Component;

/// Kubernetes in one small, fast binary.
#[derive(Debug, Parser)]
#[command(name = "k8rs", version, about, propagate_version = true)]
pub struct Cli {
    /// Log line format (verbosity comes from RUST_LOG, default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server with its store (sqlite embedded, or etcd).
    Server(ServerArgs),
    /// Run a whole single-node cluster: API server, controllers, scheduler, containerd and
    /// the kubelet (needs root, containerd, runc and the CNI plugins).
    Up(UpArgs),
    /// Run a node that joins an existing server: containerd and the kubelet, with
    /// credentials from `k8rs node-credentials` (needs root, containerd, runc and the CNI
    /// plugins).
    Agent(AgentArgs),
    /// Issue a node's kubelet credentials from the cluster CA, for `k8rs agent`: run it
    /// where the server's data dir is and copy the files to the node.
    NodeCredentials(NodeCredentialsArgs),
    /// Run N simulated (hollow) nodes in one process: real node agents over an in-memory
    /// container runtime, for scale tests.
    Hollow(HollowArgs),
    /// Run the scheduler alone, against any API server.
    Scheduler(SchedulerArgs),
    /// Run the controller manager alone (Deployments, ReplicaSets, garbage collection,
    /// namespaces, ServiceAccounts, endpoints, node lifecycle), against any API server.
    ControllerManager(ControllerManagerArgs),
}

/// `k8rs up` flags.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the store, certificates, admin.kubeconfig and the node's files (containerd,
    /// CNI, offline images in agent/images/) live [default: /var/lib/k8rs].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// HTTPS port to serve the Kubernetes API on.
    #[arg(long, value_name = "PORT", default_value_t = 6443, value_parser = clap::value_parser!(u16).range(1..))]
    pub secure_port: u16,

    /// The node's flags.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The kubelet's flags, shared by `k8rs up` and `k8rs agent`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's address (`k8rs up`: the API server listens on it and pods reach the
    /// API there) [default: the address of the interface with the default route].
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<IpAddr>,

    /// The node's name [default: the host name].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,

    /// The pods' subnet on this node, registered as its `spec.podCIDR` (upstream's
    /// kubelet `--pod-cidr`) [default: assigned by node IPAM from 10.42.0.0/16].
    #[arg(long, value_name = "CIDR")]
    pub pod_cidr: Option<String>,

    /// The Linux bridge the pods are attached to; two clusters on one host need
    /// different bridges and pod CIDRs.
    #[arg(long, value_name = "NAME", default_value = "cni0")]
    pub cni_bridge: String,

    /// Directory of static pod manifests (YAML or JSON, one pod per file) the kubelet
    /// runs without the API server [default: DATA/agent/pod-manifests].
    #[arg(long, value_name = "DIR")]
    pub pod_manifest_path: Option<PathBuf>,

    /// Hard eviction thresholds, comma-separated `signal<quantity` or `signal<percent%`
    /// (signals: memory.available, allocatableMemory.available, nodefs.available,
    /// nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available)
    /// [default: memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%].
    #[arg(long, value_name = "SIGNAL<VALUE,…", value_parser = parse_eviction_hard)]
    pub eviction_hard: Option<EvictionHard>,
}

/// `k8rs agent` flags.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Where the node's files live (containerd, CNI, offline images in agent/images/,
    /// credentials in agent/) [default: /var/lib/k8rs].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The kubelet's kubeconfig: the API server and the node's client certificate
    /// (`k8rs node-credentials` writes it) [default: DATA/agent/kubelet.kubeconfig].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// The kubelet API's serving certificate, signed by the cluster CA
    /// [default: DATA/agent/serving-kubelet.crt].
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// Its private key [default: DATA/agent/serving-kubelet.key].
    #[arg(long, value_name = "FILE")]
    pub tls_private_key_file: Option<PathBuf>,

    /// The node's flags.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `k8rs node-credentials` flags.
#[derive(Debug, Args)]
pub struct NodeCredentialsArgs {
    /// The server's data dir, holding the cluster CA (pki/ca.crt, pki/ca.key)
    /// [default: /var/lib/k8rs].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The node to issue credentials for.
    #[arg(long, value_name = "NAME")]
    pub node_name: String,

    /// The node's addresses (the API server dials the kubelet there), comma-separated.
    #[arg(long, value_name = "IP,…", value_delimiter = ',', required = true)]
    pub node_ip: Vec<IpAddr>,

    /// The API server URL the node uses [default: the one in DATA/admin.kubeconfig].
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// Directory to write kubelet.kubeconfig, serving-kubelet.crt and
    /// serving-kubelet.key into (an agent's DATA/agent).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Parsed `--eviction-hard` thresholds.
#[derive(Clone, Debug)]
pub struct EvictionHard(pub Vec<k8rs_kubelet::eviction::thresholds::Threshold>);

/// `--eviction-hard` through the kubelet's parser (upstream's messages).
fn parse_eviction_hard(flag: &str) -> Result<EvictionHard, String> {
    k8rs_kubelet::eviction::thresholds::parse_hard(flag).map(EvictionHard)
}

/// `k8rs hollow` flags.
#[derive(Debug, Args)]
pub struct HollowArgs {
    /// Kubeconfig of the cluster to join.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,

    /// How many nodes to run.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub nodes: usize,

    /// Node names are PREFIX0, PREFIX1, …
    #[arg(long, value_name = "PREFIX", default_value = "hollow-")]
    pub prefix: String,

    /// Extra node labels, comma-separated key=value (e.g. topology.kubernetes.io/zone=a).
    #[arg(long, value_name = "K=V,…", value_delimiter = ',')]
    pub node_labels: Vec<String>,

    /// Time a simulated container takes from start to Running (e.g. 500ms, 2s).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::hollow_cmd::parse_duration)]
    pub start_delay: std::time::Duration,

    /// Time a simulated container takes to exit after SIGTERM; a deletion waits for it up
    /// to the pod's grace period (e.g. 1h: containers only stop when killed at the end of
    /// the grace period).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = crate::hollow_cmd::parse_duration)]
    pub stop_delay: std::time::Duration,
}

/// `k8rs scheduler` flags.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Kubeconfig with the API server's address and credentials.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,

    /// KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1): profiles,
    /// plugins and their weights [default: one default-scheduler profile].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
}

/// `k8rs controller-manager` flags.
#[derive(Debug, Args)]
pub struct ControllerManagerArgs {
    /// Kubeconfig with the API server's address and credentials; its cluster CA is
    /// published to every namespace as `kube-root-ca.crt`.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: PathBuf,

    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
}

/// Leader election flags of the standalone scheduler and controller manager
/// (upstream's `--leader-elect*`).
#[derive(Debug, Args)]
pub struct LeaderElectionArgs {
    /// Act only while holding the component's Lease in kube-system (kube-scheduler,
    /// kube-controller-manager), so that one of several replicas acts.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
        num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub leader_elect: bool,

    /// How long a leader's lease is valid without renewal, for the other candidates.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = crate::hollow_cmd::parse_duration)]
    pub leader_elect_lease_duration: std::time::Duration,

    /// How long the leader keeps retrying to renew before it stops leading (and exits).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = crate::hollow_cmd::parse_duration)]
    pub leader_elect_renew_deadline: std::time::Duration,

    /// The time between attempts to acquire or renew the lease.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::hollow_cmd::parse_duration)]
    pub leader_elect_retry_period: std::time::Duration,
}

impl LeaderElectionArgs {
    /// Runs `component` under the Lease `kube-system/<lease>` when electing (exiting when
    /// the lease is lost), else directly; either way until `shutdown`.
    pub async fn run(
        &self,
        kubeconfig: &std::path::Path,
        lease: &str,
        component: impl std::future::Future<Output = anyhow::Result<()>>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        if !self.leader_elect {
            return tokio::select! {
                result = component => result,
                _ = shutdown => Ok(()),
            };
        }
        let mut config = k8rs_client::leaderelection::LeaderElectionConfig::new(lease);
        config.lease_duration = self.leader_elect_lease_duration;
        config.renew_deadline = self.leader_elect_renew_deadline;
        config.retry_period = self.leader_elect_retry_period;
        // Its own connection, as upstream's separate leader-election client: renewals do
        // not queue behind the component's own requests.
        let election = k8rs_client::client_from_kubeconfig(kubeconfig).await?;
        k8rs_client::leaderelection::run_or_exit(election, config, component, shutdown).await
    }
}

/// `k8rs server` flags.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Where the store, certificates and admin.kubeconfig live
    /// [default: /var/lib/k8rs as root, else $XDG_DATA_HOME/k8rs or ~/.local/share/k8rs].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address to listen on (0.0.0.0 for all IPv4 addresses).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind_address: IpAddr,

    /// HTTPS port to serve the Kubernetes API on.
    #[arg(long, value_name = "PORT", default_value_t = 6443, value_parser = clap::value_parser!(u16).range(1..))]
    pub secure_port: u16,

    /// Store backend [default: sqlite, or etcd when --etcd-servers is given].
    #[arg(long, value_enum)]
    pub store: Option<StoreArg>,

    /// etcd v3 endpoints for --store etcd, comma-separated.
    #[arg(long, value_name = "URL,…", value_delimiter = ',')]
    pub etcd_servers: Vec<String>,

    /// Components not to run beside the API server, comma-separated.
    #[arg(long, value_name = "COMPONENT,…", value_enum, value_delimiter = ',')]
    pub disable: Vec<ComponentArg>,

    /// Extra host names or IP addresses for the serving certificate, comma-separated.
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub tls_san: Vec<String>,

    /// Run the embedded controller manager and scheduler only while they hold their
    /// Lease in kube-system, as upstream's `--leader-elect` (`--leader-elect=false` to
    /// run them unconditionally).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
        num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub leader_elect: bool,
}

/// `--store` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreArg {
    /// Embedded sqlite database under the data dir.
    Sqlite,
    /// External etcd v3 cluster (--etcd-servers).
    Etcd,
}

/// `--disable` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ComponentArg {
    /// The controller manager.
    Controllers,
    /// The scheduler.
    Scheduler,
}

impl From<ComponentArg> for Component {
    fn from(arg: ComponentArg) -> Component {
        match arg {
            ComponentArg::Controllers => Component::Controllers,
            ComponentArg::Scheduler => Component::Scheduler,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn server_flags_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "k8rs",
            "server",
            "--data-dir",
            "/tmp/d",
            "--bind-address",
            "0.0.0.0",
            "--secure-port",
            "7443",
            "--store",
            "etcd",
            "--etcd-servers",
            "http://a:2379,http://b:2379",
            "--disable",
            "controllers,scheduler",
        ])
        .unwrap();
        let Command::Server(args) = cli.command else {
            panic!("not server")
        };
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(args.bind_address.to_string(), "0.0.0.0");
        assert_eq!(args.secure_port, 7443);
        assert_eq!(args.store, Some(StoreArg::Etcd));
        assert_eq!(args.etcd_servers, ["http://a:2379", "http://b:2379"]);
        assert_eq!(
            args.disable,
            [ComponentArg::Controllers, ComponentArg::Scheduler]
        );
    }

    #[test]
    fn server_defaults() {
        let Command::Server(args) = Cli::try_parse_from(["k8rs", "server"]).unwrap().command else {
            panic!("not server")
        };
        assert_eq!(args.data_dir, None);
        assert_eq!(args.bind_address.to_string(), "127.0.0.1");
        assert_eq!(args.secure_port, 6443);
        assert_eq!(args.store, None);
        assert!(args.disable.is_empty());
        assert!(
            args.leader_elect,
            "leader election is on by default, as upstream"
        );
        for (flag, want) in [("--leader-elect=false", false), ("--leader-elect", true)] {
            let Command::Server(args) = Cli::try_parse_from(["k8rs", "server", flag])
                .unwrap()
                .command
            else {
                panic!("not server")
            };
            assert_eq!(args.leader_elect, want, "{flag}");
        }
    }

    #[test]
    fn up_flags_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "k8rs",
            "up",
            "--data-dir",
            "/tmp/d",
            "--secure-port",
            "7443",
            "--node-ip",
            "10.0.0.5",
        ])
        .unwrap();
        let Command::Up(args) = cli.command else {
            panic!("not up")
        };
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(args.secure_port, 7443);
        assert_eq!(args.node.node_ip.unwrap().to_string(), "10.0.0.5");
        let Command::Up(args) = Cli::try_parse_from(["k8rs", "up"]).unwrap().command else {
            panic!("not up")
        };
        assert_eq!(args.secure_port, 6443);
        assert_eq!(args.node.node_ip, None);
        assert_eq!(args.node.pod_cidr, None);
        assert_eq!(args.node.cni_bridge, "cni0");
        assert!(args.node.eviction_hard.is_none());
    }

    #[test]
    fn agent_and_node_credentials_flags() {
        let cli = Cli::try_parse_from([
            "k8rs",
            "agent",
            "--data-dir",
            "/a",
            "--node-name",
            "n2",
            "--eviction-hard",
            "memory.available<1Gi",
            "--kubeconfig",
            "/k",
        ])
        .unwrap();
        let Command::Agent(args) = cli.command else {
            panic!("not agent")
        };
        assert_eq!(args.node.node_name.as_deref(), Some("n2"));
        assert_eq!(args.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(args.node.eviction_hard.unwrap().0.len(), 1);
        let err = Cli::try_parse_from(["k8rs", "agent", "--eviction-hard", "memory.free<1"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unsupported eviction signal memory.free"),
            "{err}"
        );
        let cli = Cli::try_parse_from([
            "k8rs",
            "node-credentials",
            "--node-name",
            "n2",
            "--node-ip",
            "10.0.0.2,10.0.0.3",
            "--out",
            "/o",
        ])
        .unwrap();
        let Command::NodeCredentials(args) = cli.command else {
            panic!("not node-credentials")
        };
        assert_eq!(args.node_ip.len(), 2);
        assert!(
            Cli::try_parse_from([
                "k8rs",
                "node-credentials",
                "--node-name",
                "n",
                "--out",
                "/o"
            ])
            .is_err(),
            "--node-ip is required"
        );
    }

    #[test]
    fn hollow_flags() {
        let cli = Cli::try_parse_from([
            "k8rs",
            "hollow",
            "--kubeconfig",
            "/k",
            "--nodes",
            "10",
            "--prefix",
            "h-",
            "--node-labels",
            "topology.kubernetes.io/zone=a",
            "--stop-delay",
            "1h",
        ])
        .unwrap();
        let Command::Hollow(args) = cli.command else {
            panic!("not hollow")
        };
        assert_eq!((args.nodes, args.prefix.as_str()), (10, "h-"));
        assert_eq!(args.node_labels, ["topology.kubernetes.io/zone=a"]);
        assert_eq!(args.stop_delay, std::time::Duration::from_secs(3600));
        assert!(
            Cli::try_parse_from(["k8rs", "hollow", "--nodes", "3"]).is_err(),
            "kubeconfig is required"
        );
    }

    #[test]
    fn scheduler_flags() {
        let cli =
            Cli::try_parse_from(["k8rs", "scheduler", "--kubeconfig", "/k", "--config", "/c"])
                .unwrap();
        let Command::Scheduler(args) = cli.command else {
            panic!("not scheduler")
        };
        assert_eq!(args.kubeconfig, PathBuf::from("/k"));
        assert_eq!(args.config, Some(PathBuf::from("/c")));
        let election = &args.leader_election;
        assert!(election.leader_elect);
        assert_eq!(
            (
                election.leader_elect_lease_duration,
                election.leader_elect_renew_deadline,
                election.leader_elect_retry_period
            ),
            (
                std::time::Duration::from_secs(15),
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(2)
            )
        );
        assert!(Cli::try_parse_from(["k8rs", "scheduler"]).is_err());
    }

    #[test]
    fn controller_manager_flags() {
        let cli = Cli::try_parse_from([
            "k8rs",
            "controller-manager",
            "--kubeconfig",
            "/k",
            "--leader-elect=false",
        ])
        .unwrap();
        let Command::ControllerManager(args) = cli.command else {
            panic!("not controller-manager")
        };
        assert_eq!(args.kubeconfig, PathBuf::from("/k"));
        assert!(!args.leader_election.leader_elect);
    }

    #[test]
    fn bad_values_are_rejected() {
        for argv in [
            &["k8rs", "server", "--secure-port", "0"][..],
            &["k8rs", "server", "--secure-port", "70000"],
            &["k8rs", "server", "--bind-address", "localhost:1"],
            &["k8rs", "server", "--store", "mysql"],
            &["k8rs", "server", "--disable", "kubelet"],
            &["k8rs", "up", "--node-ip", "node1"],
            &["k8rs", "up", "--secure-port", "0"],
        ] {
            assert!(Cli::try_parse_from(argv).is_err(), "{argv:?}");
        }
    }
}
