//! `hollow-bench`: memory of hollow nodes. Starts a `k8rs server` (with its embedded
//! controllers, which assign pod CIDRs), then `k8rs hollow --nodes N`, waits until all N
//! nodes are Ready (and, with pods, have a pod CIDR), optionally binds P pods per node (by `spec.nodeName`)
//! and waits until they run, lets Lease renewals and node status settle, and prints the
//! resident memory of the hollow process (total and per node) and of the server.
//!
//! Target (issue 7): 1,000 hollow nodes in one process under 200 MB RSS.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8rs_bench::api_client;
use k8rs_bench::server_process::{free_port, parse_memory, Memory, ServerProcess};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TARGET_RSS: u64 = 200 << 20;

/// Flags.
#[derive(Parser, Debug)]
#[command(about = "Memory of N hollow nodes in one process")]
struct Args {
    /// Hollow nodes to run.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Pods to bind to each node.
    #[arg(long, default_value_t = 0)]
    pods_per_node: usize,
    /// Seconds to let the nodes settle (Lease renewals, status) before measuring.
    #[arg(long, default_value_t = 30)]
    settle_seconds: u64,
    /// The k8rs binary [default: `k8rs` next to this benchmark].
    #[arg(long)]
    k8rs: Option<PathBuf>,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // k3s's 10.42.0.0/16 holds 256 nodes; give the server's node IPAM room for more
    // (10.64.0.0/10 does not overlap the 10.43.0.0/16 Service range). The server inherits it.
    std::env::set_var("K8RS_CLUSTER_CIDR", "10.64.0.0/10");
    if let Err(e) = run(args).await {
        eprintln!("hollow-bench: {e}");
        std::process::exit(1);
    }
}

fn memory_of(child: &Child) -> Result<Memory, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))?;
    parse_memory(&status).ok_or_else(|| "no VmRSS in /proc/<pid>/status".into())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
}

async fn wait<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<Duration, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(bool, String), BoxError>>,
{
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < timeout {
        let (done, state) = check().await?;
        if done {
            return Ok(start.elapsed());
        }
        last = state;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("{what}: not done after {}s ({last})", timeout.as_secs()).into())
}

async fn run(args: Args) -> Result<(), BoxError> {
    let binary = k8rs_bench::server_process::k8rs_binary(args.k8rs.as_deref())?;
    let work = tempfile::Builder::new()
        .prefix("k8rs-hollow-bench-")
        .tempdir()?;
    let data_dir = work.path().join("data");
    let mut server = ServerProcess::spawn(
        &binary,
        &data_dir,
        free_port()?,
        &work.path().join("server.log"),
    )?;
    server.wait_ready(Duration::from_secs(30)).await?;
    let config = api_client::load_config(&server.kubeconfig()).await?;
    let client = api_client::http1_client(&config)?;
    println!(
        "hollow-bench: {} nodes, {} pods per node, {}",
        args.nodes,
        args.pods_per_node,
        binary.display()
    );

    let log = File::create(work.path().join("hollow.log"))?;
    let mut hollow = KillOnDrop(
        Command::new(&binary)
            .args(["hollow", "--nodes", &args.nodes.to_string(), "--kubeconfig"])
            .arg(server.kubeconfig())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    );
    let nodes: Api<Node> = Api::all(client.clone());
    let want = args.nodes;
    let took = wait("nodes Ready", Duration::from_secs(600), || {
        let nodes = nodes.clone();
        async move {
            let list = nodes.list(&ListParams::default()).await?;
            let ready = list
                .items
                .iter()
                .filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            Ok((ready == want, format!("{ready}/{want} Ready")))
        }
    })
    .await?;
    println!(
        "{} nodes Ready after {:.1} s",
        args.nodes,
        took.as_secs_f64()
    );
    let with_cidr = |list: &kube::core::ObjectList<Node>| {
        list.items
            .iter()
            .filter(|n| n.spec.as_ref().is_some_and(|s| s.pod_cidr.is_some()))
            .count()
    };
    if args.pods_per_node > 0 {
        let want = args.nodes;
        wait("pod CIDRs assigned", Duration::from_secs(900), || {
            let nodes = nodes.clone();
            async move {
                let n = with_cidr(&nodes.list(&ListParams::default()).await?);
                Ok((n == want, format!("{n}/{want} with a pod CIDR")))
            }
        })
        .await?;
    }

    if args.pods_per_node > 0 {
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let total = args.nodes * args.pods_per_node;
        let started = Instant::now();
        let creates = (0..total).map(|i| {
            let pods = pods.clone();
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("p{i}")},
                "spec": {"nodeName": format!("hollow-{}", i % args.nodes),
                         "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}
            }))
            .expect("a valid pod");
            async move { pods.create(&PostParams::default(), &pod).await.map(|_| ()) }
        });
        futures::stream::iter(creates)
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()?;
        wait("pods Running", Duration::from_secs(900), || {
            let pods = pods.clone();
            async move {
                let list = pods.list(&ListParams::default()).await?;
                let running = list
                    .items
                    .iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .count();
                Ok((running == total, format!("{running}/{total} Running")))
            }
        })
        .await?;
        println!(
            "{total} pods Running after {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let memory = memory_of(&hollow.0)?;
    let server_memory = server.memory()?;
    println!(
        "hollow process RSS: {} (peak {}), {:.1} KB per node   target < {} for 1,000 nodes ({})",
        mb(memory.rss),
        mb(memory.peak_rss),
        memory.rss as f64 / 1024.0 / args.nodes as f64,
        mb(TARGET_RSS),
        if args.nodes >= 1000 && memory.rss < TARGET_RSS {
            "met"
        } else if args.nodes >= 1000 {
            "MISSED"
        } else {
            "n/a below 1,000 nodes"
        },
    );
    println!(
        "server RSS: {} (peak {})",
        mb(server_memory.rss),
        mb(server_memory.peak_rss)
    );
    let assigned = with_cidr(&nodes.list(&ListParams::default()).await?);
    println!(
        "nodes with a pod CIDR when measured: {assigned}/{}",
        args.nodes
    );
    let _ = hollow.0.kill();
    Ok(())
}

/// The hollow process, killed however the benchmark ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
