//! `pod-startup`: pod startup latency on a real node, as issue 6's figure defines it —
//! from the create request being acknowledged to the pod reported `Running` — over a burst
//! of busybox pods with the image present, and the burst's pods started per second.
//!
//! Runs against a cluster started with `k8rs up` (or `scripts/up`): pods are bound to the
//! node with `spec.nodeName`, so the figure is the kubelet's and containerd's, not the
//! scheduler's. The pods are deleted afterwards.
//!
//! Usage: `pod-startup --kubeconfig DATA/admin.kubeconfig --node NODE [--pods 50]`

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8rs_bench::{api_client, millis, Percentiles};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};

const NAMESPACE: &str = "default";
const LABEL: &str = "k8rs-bench=pod-startup";
/// Upstream's SLO (p99 ≤ 5 s) and k8rs's target (< 1 s).
const TARGET_P99: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(
    name = "pod-startup",
    about = "Pod startup latency (created -> Running) on a k8rs up node"
)]
struct Args {
    /// The cluster's admin kubeconfig (`DATA/admin.kubeconfig`).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The node to bind the pods to.
    #[arg(long)]
    node: String,
    /// How many pods the burst creates.
    #[arg(long, default_value_t = 50)]
    pods: usize,
    /// How long to wait for every pod to be Running.
    #[arg(long, default_value_t = 120)]
    timeout_seconds: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = api_client::load_config(&args.kubeconfig).await?;
    let client = api_client::http1_client(&config)?;
    let pods: Api<Pod> = Api::namespaced(client, NAMESPACE);

    // Watch first, so no Running transition is missed.
    let running: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let list = pods.list(&ListParams::default().labels(LABEL)).await?;
    if !list.items.is_empty() {
        return Err(format!(
            "{} pods labelled {LABEL} exist already; delete them first",
            list.items.len()
        )
        .into());
    }
    let version = list.metadata.resource_version.unwrap_or_default();
    let mut events = pods
        .watch(&WatchParams::default().labels(LABEL).timeout(290), &version)
        .await?
        .boxed();
    let seen = running.clone();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(event)) = events.next().await {
            if let WatchEvent::Added(pod) | WatchEvent::Modified(pod) = event {
                let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
                if phase == Some("Running") {
                    let name = pod.metadata.name.unwrap_or_default();
                    seen.lock()
                        .unwrap()
                        .entry(name)
                        .or_insert_with(Instant::now);
                }
            }
        }
    });

    let started = Instant::now();
    let mut creates = Vec::new();
    for i in 0..args.pods {
        let pods = pods.clone();
        let node = args.node.clone();
        creates.push(tokio::spawn(async move {
            let name = format!("startup-{i}");
            let pod: Pod = serde_json::from_value(serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "labels": {"k8rs-bench": "pod-startup"}},
                "spec": {
                    "nodeName": node,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{
                        "name": "c",
                        "image": "busybox",
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", "3600"],
                    }],
                },
            }))
            .expect("a valid pod");
            pods.create(&PostParams::default(), &pod)
                .await
                .map(|_| (name, Instant::now()))
        }));
    }
    let mut created = HashMap::new();
    for create in creates {
        let (name, at) = create.await.map_err(|e| e.to_string())??;
        created.insert(name, at);
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    while running.lock().unwrap().len() < args.pods && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    let running = running.lock().unwrap().clone();

    let mut latencies: Vec<Duration> = created
        .iter()
        .filter_map(|(name, at)| running.get(name).map(|r| r.saturating_duration_since(*at)))
        .collect();
    let last = running.values().max().copied();
    println!(
        "pod-startup: {} pods bound to {} (busybox present, imagePullPolicy IfNotPresent)",
        args.pods, args.node
    );
    println!("  Running: {} of {}", latencies.len(), args.pods);
    if let Some(p) = Percentiles::of(&mut latencies) {
        println!(
            "  created -> Running: p50 {} ms, p99 {} ms (target p99 < {} ms; upstream SLO 5000 ms){}",
            millis(p.p50),
            millis(p.p99),
            TARGET_P99.as_millis(),
            if p.p99 <= TARGET_P99 { "" } else { "  MISSED" }
        );
    }
    if let Some(last) = last {
        let burst = last.duration_since(started);
        println!(
            "  burst: all {} Running {} ms after the first create: {:.1} pods/s",
            running.len(),
            millis(burst),
            running.len() as f64 / burst.as_secs_f64()
        );
    }

    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels(LABEL),
    )
    .await?;
    println!("  deleted the pods (the node removes their containers in the background)");
    Ok(())
}
