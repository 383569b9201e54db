//! `scheduler-bench`: scheduling throughput of the scheduler embedded in a real
//! `k8rs server` (started with `--disable controllers`), measured as upstream's
//! scheduler_perf does: fake nodes are created through the API, then pods, and the
//! figure is pods / (time from the first pod create until the last pod is bound).
//!
//! Workloads (each on a fresh server), as upstream's
//! `test/integration/scheduler_perf/config/performance-config.yaml`:
//! - `basic` (SchedulingBasic): plain pods with CPU and memory requests;
//! - `spread` (TopologySpreading): pods with a `DoNotSchedule` zone spread constraint
//!   (`maxSkew: 5`, selector `color=blue`) over nodes in three zones;
//! - `preferred-spread` (PreferredTopologySpreading): the same constraint with
//!   `ScheduleAnyway`;
//! - `preemption` (PreemptionBasic): nodes filled with 4 low-priority pods each, then
//!   high-priority pods that must each preempt to fit.
//!
//! `--init-pods N` first schedules N plain pods (upstream's `initPods`), unmeasured.
//!
//! Usage: `scheduler-bench [--k8rs PATH] [--nodes 1000] [--pods 10000] [--init-pods 0]
//!                         [--workload basic,spread,preferred-spread,preemption]`

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use k8rs_bench::api_client;
use k8rs_bench::server_process::{free_port, ServerProcess};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Objects created at once.
const CREATE_CONCURRENCY: usize = 64;
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const ZONES: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    Basic,
    Spread,
    PreferredSpread,
    Preemption,
}

#[derive(Parser, Debug)]
#[command(
    name = "scheduler-bench",
    about = "Scheduling throughput of k8rs (scheduler_perf style)"
)]
struct Args {
    /// The k8rs binary [default: `k8rs` next to this program].
    #[arg(long)]
    k8rs: Option<PathBuf>,
    /// Fake nodes to create.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Pods to schedule (measured).
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// Plain pods scheduled before the measured ones (upstream's `initPods`).
    #[arg(long, default_value_t = 0)]
    init_pods: usize,
    /// Workloads to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Workload::Basic, Workload::Spread, Workload::PreferredSpread, Workload::Preemption])]
    workload: Vec<Workload>,
    /// Seconds to wait for all pods to be bound before giving up.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("scheduler-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let binary = k8rs_bench::server_process::k8rs_binary(args.k8rs.as_deref())?;
    println!(
        "scheduler-bench: {} nodes, {} pods; binary {}",
        args.nodes,
        args.pods,
        binary.display()
    );
    for workload in &args.workload {
        let work = tempfile::Builder::new()
            .prefix("k8rs-sched-bench-")
            .tempdir()?;
        let result = run_workload(&binary, work.path(), *workload, &args).await;
        if std::env::var_os("SCHEDULER_BENCH_KEEP").is_some() {
            println!("{workload:?}: kept {}", work.keep().display());
        }
        match result {
            Ok(()) => {}
            Err(e) => println!("{workload:?}: failed: {e}"),
        }
    }
    Ok(())
}

async fn run_workload(
    binary: &Path,
    work: &Path,
    workload: Workload,
    args: &Args,
) -> Result<(), BoxError> {
    let log = work.join("server.log");
    let mut server = ServerProcess::spawn_with_args(
        binary,
        &work.join("data"),
        free_port()?,
        &log,
        &["--disable", "controllers"],
    )?;
    server.wait_ready(READY_TIMEOUT).await?;
    let config = api_client::load_config(&server.kubeconfig()).await?;
    let client = api_client::http2_client(&config)?;

    let started = Instant::now();
    create_nodes(&client, args.nodes).await?;
    println!(
        "{workload:?}: {} nodes created in {:.1} s",
        args.nodes,
        started.elapsed().as_secs_f64()
    );

    let timeout = Duration::from_secs(args.timeout);
    if workload == Workload::Preemption {
        create_priority_classes(&client).await?;
        // Fill every node: 4 × 1 CPU low-priority pods on 4-CPU nodes.
        let fill = args.nodes * 4;
        let t = Instant::now();
        let waiter = tokio::spawn(wait_bound(client.clone(), "fill", fill, timeout));
        create_pods(&client, fill, "fill", low_pod).await?;
        waiter.await??;
        println!(
            "{workload:?}: {fill} low-priority pods bound in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    if args.init_pods > 0 && workload != Workload::Preemption {
        let t = Instant::now();
        let waiter = tokio::spawn(wait_bound(client.clone(), "init", args.init_pods, timeout));
        create_pods(&client, args.init_pods, "init", init_pod).await?;
        waiter.await??;
        println!(
            "{workload:?}: {} init pods bound in {:.1} s",
            args.init_pods,
            t.elapsed().as_secs_f64()
        );
    }

    let measured = match workload {
        Workload::Preemption => args.pods.min(args.nodes),
        _ => args.pods,
    };
    let waiter = tokio::spawn(wait_bound(client.clone(), "measure", measured, timeout));
    let t = Instant::now();
    match workload {
        Workload::Basic => create_pods(&client, measured, "measure", basic_pod).await?,
        Workload::Spread => create_pods(&client, measured, "measure", spread_pod).await?,
        Workload::PreferredSpread => {
            create_pods(&client, measured, "measure", preferred_spread_pod).await?
        }
        Workload::Preemption => create_pods(&client, measured, "measure", high_pod).await?,
    }
    let created = t.elapsed();
    let bound = waiter.await??;
    let total = bound.duration_since(t);
    let rate = measured as f64 / total.as_secs_f64();
    let target = match workload {
        Workload::Basic => Some(1000.0),
        Workload::Spread | Workload::PreferredSpread => Some(300.0),
        Workload::Preemption => None,
    };
    // Upstream's CI alert thresholds (scheduler_perf, 5,000 nodes; PreemptionBasic 500).
    let upstream = match workload {
        Workload::Basic => 270,
        Workload::Spread => 85,
        Workload::PreferredSpread => 125,
        Workload::Preemption => 18,
    };
    println!(
        "{workload:?}: {measured} pods created in {:.1} s, all bound after {:.1} s: {:.0} pods/s (upstream threshold {upstream}){}",
        created.as_secs_f64(),
        total.as_secs_f64(),
        rate,
        match target {
            Some(t) => format!(
                "   target ≥ {t:.0}  ({})",
                if rate >= t { "met" } else { "NOT met" }
            ),
            None => String::new(),
        }
    );
    if let Ok(mem) = server.memory() {
        println!(
            "{workload:?}: server RSS {} MB (peak {} MB)",
            mem.rss / 1_000_000,
            mem.peak_rss / 1_000_000
        );
    }
    server.stop(Duration::from_secs(10))?;
    Ok(())
}

async fn create_nodes(client: &Client, count: usize) -> Result<(), BoxError> {
    let api: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            async move {
                let name = format!("node-{i}");
                let resources = json!({"cpu": "4", "memory": "32Gi", "pods": "110"});
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {
                        "kubernetes.io/hostname": name,
                        "topology.kubernetes.io/zone": format!("zone-{}", i % ZONES),
                    }},
                    "status": {"capacity": resources, "allocatable": resources,
                        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
                }))?;
                let created = api.create(&PostParams::default(), &node).await?;
                if created.status.as_ref().and_then(|s| s.allocatable.as_ref()).is_none() {
                    // The API server dropped status on create: set it as a kubelet would.
                    let status = json!({"status": node.status});
                    api.patch_status(&name, &Default::default(), &kube::api::Patch::Merge(&status))
                        .await?;
                }
                Ok::<_, BoxError>(())
            }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn create_priority_classes(client: &Client) -> Result<(), BoxError> {
    let api: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(client.clone());
    for (name, value) in [("low", 10), ("high", 1000)] {
        let pc = serde_json::from_value(json!({"metadata": {"name": name}, "value": value}))?;
        api.create(&PostParams::default(), &pc).await?;
    }
    Ok(())
}

fn pod_with(name: String, group: &str, cpu: &str, memory: &str, extra: serde_json::Value) -> Pod {
    let mut spec = json!({
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": cpu, "memory": memory}}}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench": group, "app": "bench"}},
        "spec": spec,
    }))
    .expect("a valid pod")
}

fn init_pod(i: usize) -> Pod {
    pod_with(format!("init-{i}"), "init", "100m", "500Mi", json!({}))
}

fn basic_pod(i: usize) -> Pod {
    pod_with(format!("basic-{i}"), "measure", "100m", "500Mi", json!({}))
}

fn spread_pod(i: usize) -> Pod {
    with_color(pod_with(
        format!("spread-{i}"),
        "measure",
        "100m",
        "500Mi",
        json!({"topologySpreadConstraints": [{"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"color": "blue"}}}]}),
    ))
}

fn preferred_spread_pod(i: usize) -> Pod {
    with_color(pod_with(
        format!("preferred-{i}"),
        "measure",
        "100m",
        "500Mi",
        json!({"topologySpreadConstraints": [{"maxSkew": 5, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"color": "blue"}}}]}),
    ))
}

/// Upstream's spreading pods carry `color: blue`, which their constraint selects.
fn with_color(mut pod: Pod) -> Pod {
    pod.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert("color".into(), "blue".into());
    pod
}

fn low_pod(i: usize) -> Pod {
    pod_with(
        format!("low-{i}"),
        "fill",
        "1",
        "1Gi",
        json!({"priorityClassName": "low"}),
    )
}

fn high_pod(i: usize) -> Pod {
    pod_with(
        format!("high-{i}"),
        "measure",
        "3",
        "1Gi",
        json!({"priorityClassName": "high"}),
    )
}

async fn create_pods(
    client: &Client,
    count: usize,
    group: &str,
    make: impl Fn(usize) -> Pod,
) -> Result<(), BoxError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    debug_assert!(
        ["fill", "init", "measure"].contains(&group),
        "pods are labelled by group in make"
    );
    futures::stream::iter((0..count).map(make))
        .map(|pod| {
            let api = api.clone();
            async move { api.create(&PostParams::default(), &pod).await.map(|_| ()) }
        })
        .buffer_unordered(CREATE_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Watches pods labelled `bench=group` until `count` of them are bound; returns when.
async fn wait_bound(
    client: Client,
    group: &'static str,
    count: usize,
    timeout: Duration,
) -> Result<Instant, BoxError> {
    let api: Api<Pod> = Api::namespaced(client, "default");
    let config = watcher::Config::default().labels(&format!("bench={group}"));
    let mut stream = watcher(api, config).boxed();
    let mut bound: HashSet<String> = HashSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| {
                format!(
                    "only {} of {count} pods bound after {timeout:?}",
                    bound.len()
                )
            })?;
        let Some(event) = event else {
            return Err("watch ended".into());
        };
        let pods = match event? {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => vec![p],
            _ => Vec::new(),
        };
        for p in pods {
            if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                bound.insert(p.metadata.name.clone().unwrap_or_default());
            }
        }
        if bound.len() >= count {
            return Ok(Instant::now());
        }
    }
}
