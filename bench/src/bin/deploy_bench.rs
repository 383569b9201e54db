//! `deploy-bench`: how fast the embedded controllers turn a Deployment into pods.
//!
//! 1. Spawns `k8rs server` (controllers embedded) on a free port with a temporary data dir.
//! 2. Creates a Deployment of `--replicas` (1,000) pods and times until every pod exists
//!    (seen by a watch): pods created per second. Nothing marks pods ready yet, so this is
//!    the ReplicaSet controller's creation rate alone.
//! 3. Starts a stand-in kubelet that marks each pod ready as soon as the watch sees it
//!    (status subresource: Running, Ready), and times until the Deployment is available.
//! 4. Changes the image and times the rolling update (default 25 % surge/unavailable)
//!    until the Deployment reports every replica updated and available.
//!
//! Usage: `deploy-bench [--k8rs PATH] [--replicas N] [--markers N]`

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use k8rs_bench::api_client;
use k8rs_bench::server_process::{free_port, ServerProcess};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::Client;
use tokio::sync::Semaphore;

const NAMESPACE: &str = "default";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// DESIGN.md / issue 5 target for pod creation.
const TARGET_PODS_PER_SECOND: f64 = 500.0;

#[derive(Parser)]
#[command(about = "Times Deployment pod creation and a rolling update against a real k8rs server")]
struct Args {
    /// The k8rs binary (default: `k8rs` next to this binary).
    #[arg(long)]
    k8rs: Option<PathBuf>,
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 1000)]
    replicas: i32,
    /// Concurrent status writes of the stand-in kubelet.
    #[arg(long, default_value_t = 32)]
    markers: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the pod watch has seen: live pods by name, with their image and readiness.
#[derive(Default)]
struct Pods {
    live: HashMap<String, (String, bool)>,
    /// Every pod name ever seen, for the creation count.
    created: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("deploy-bench: {e}");
        std::process::exit(1);
    }
    // The pod watch and the client's connection tasks would otherwise hold the runtime's
    // shutdown; everything worth keeping has been printed.
    std::process::exit(0);
}

fn deployment(replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bench", "namespace": NAMESPACE},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "bench"}},
            "template": {
                "metadata": {"labels": {"app": "bench"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }))
    .expect("a valid Deployment")
}

fn ready_patch(pod: &Pod) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let containers: Vec<_> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| {
            serde_json::json!({
                "name": c.name, "image": c.image, "imageID": "", "ready": true, "started": true,
                "restartCount": 0, "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
    let cond =
        |t: &str| serde_json::json!({"type": t, "status": "True", "lastTransitionTime": now});
    serde_json::json!({"status": {
        "phase": "Running",
        "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
        "containerStatuses": containers,
    }})
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Watches the bench pods into `state`; while `mark` is set, marks new pods ready.
fn watch_pods(client: Client, state: Arc<Mutex<Pods>>, mark: Arc<AtomicBool>, markers: usize) {
    let api: Api<Pod> = Api::namespaced(client, NAMESPACE);
    let limit = Arc::new(Semaphore::new(markers));
    let marked: Arc<Mutex<std::collections::HashSet<String>>> = Default::default();
    tokio::spawn(async move {
        let mut events =
            watcher(api.clone(), watcher::Config::default().labels("app=bench")).boxed();
        let mut seen = std::collections::HashSet::new();
        while let Some(event) = events.next().await {
            let pods = match event {
                Ok(watcher::Event::Apply(pod)) | Ok(watcher::Event::InitApply(pod)) => {
                    vec![(pod, true)]
                }
                Ok(watcher::Event::Delete(pod)) => vec![(pod, false)],
                _ => continue,
            };
            for (pod, present) in pods {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let image = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default();
                let alive = present && pod.metadata.deletion_timestamp.is_none();
                {
                    let mut state = state.lock().unwrap();
                    if alive {
                        if seen.insert(name.clone()) {
                            state.created += 1;
                        }
                        state.live.insert(name.clone(), (image, is_ready(&pod)));
                    } else {
                        state.live.remove(&name);
                    }
                }
                if alive
                    && !is_ready(&pod)
                    && mark.load(Ordering::Relaxed)
                    && marked.lock().unwrap().insert(name.clone())
                {
                    let api = api.clone();
                    let limit = limit.clone();
                    let marked = marked.clone();
                    tokio::spawn(async move {
                        let _permit = limit.acquire().await;
                        let patch = ready_patch(&pod);
                        if api
                            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .is_err()
                        {
                            // Deleted meanwhile, or to be retried on its next event.
                            marked.lock().unwrap().remove(&name);
                        }
                    });
                }
            }
        }
    });
}

/// Marks every live pod not yet ready (for pods seen before marking was switched on).
async fn mark_existing(
    client: &Client,
    state: &Arc<Mutex<Pods>>,
    markers: usize,
) -> Result<(), BoxError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let names: Vec<String> = state
        .lock()
        .unwrap()
        .live
        .iter()
        .filter(|(_, (_, r))| !r)
        .map(|(n, _)| n.clone())
        .collect();
    let limit = Arc::new(Semaphore::new(markers));
    let tasks = names.into_iter().map(|name| {
        let api = api.clone();
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            if let Ok(pod) = api.get(&name).await {
                let _ = api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&ready_patch(&pod)),
                    )
                    .await;
            }
        }
    });
    futures::future::join_all(tasks).await;
    Ok(())
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<(), BoxError> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > PHASE_TIMEOUT {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn wait_rolled_out(api: &Api<Deployment>, replicas: i32) -> Result<(), BoxError> {
    let start = Instant::now();
    loop {
        let d = api.get("bench").await?;
        let s = d.status.clone().unwrap_or_default();
        if s.observed_generation >= d.metadata.generation
            && s.updated_replicas == Some(replicas)
            && s.replicas == Some(replicas)
            && s.available_replicas == Some(replicas)
        {
            return Ok(());
        }
        if start.elapsed() > PHASE_TIMEOUT {
            return Err(format!("rollout not finished: {s:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let binary = k8rs_bench::server_process::k8rs_binary(args.k8rs.as_deref())?;
    let work_dir = tempfile::Builder::new()
        .prefix("k8rs-deploy-bench-")
        .tempdir()?;
    let data_dir = work_dir.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    let mut server = ServerProcess::spawn(
        &binary,
        &data_dir,
        free_port()?,
        &work_dir.path().join("server.log"),
    )?;
    server.wait_ready(READY_TIMEOUT).await?;
    println!(
        "deploy-bench: {} replicas, server {}",
        args.replicas,
        binary.display()
    );

    let config = api_client::load_config(&server.kubeconfig()).await?;
    let client = api_client::http1_client(&config)?;
    let state = Arc::new(Mutex::new(Pods::default()));
    let mark = Arc::new(AtomicBool::new(false));
    watch_pods(
        api_client::http1_client(&config)?,
        state.clone(),
        mark.clone(),
        args.markers,
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    // Let the controllers' informers and the bench watch start.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let cpu_before = server.cpu_time()?;
    let start = Instant::now();
    deployments
        .create(
            &PostParams::default(),
            &deployment(args.replicas, "bench:v1"),
        )
        .await?;
    let n = args.replicas as usize;
    wait_for("all pods created", || state.lock().unwrap().live.len() >= n).await?;
    let created = start.elapsed();
    let cpu_created = server.cpu_time()? - cpu_before;
    let rate = n as f64 / created.as_secs_f64();
    println!(
        "create:   {n} pods in {:.2} s = {rate:.0} pods/s  (server CPU {:.2} s)  target >= {TARGET_PODS_PER_SECOND:.0}/s: {}",
        created.as_secs_f64(),
        cpu_created.as_secs_f64(),
        if rate >= TARGET_PODS_PER_SECOND { "met" } else { "NOT met" }
    );

    let start = Instant::now();
    mark.store(true, Ordering::Relaxed);
    mark_existing(&client, &state, args.markers).await?;
    wait_rolled_out(&deployments, args.replicas).await?;
    println!(
        "ready:    Deployment available {:.2} s after marking started",
        start.elapsed().as_secs_f64()
    );

    let cpu_before = server.cpu_time()?;
    let start = Instant::now();
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "bench:v2"}]}}}});
    deployments
        .patch("bench", &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    wait_rolled_out(&deployments, args.replicas).await?;
    let rolled = start.elapsed();
    let cpu_rolled = server.cpu_time()? - cpu_before;
    let (created_total, live_v2) = {
        let s = state.lock().unwrap();
        (
            s.created,
            s.live
                .values()
                .filter(|(image, _)| image == "bench:v2")
                .count(),
        )
    };
    println!(
        "rollout:  {n} pods replaced in {:.2} s = {:.0} pods/s  (server CPU {:.2} s; {live_v2} live v2 pods, {created_total} pods created in all)",
        rolled.as_secs_f64(),
        n as f64 / rolled.as_secs_f64(),
        cpu_rolled.as_secs_f64()
    );
    let memory = server.memory()?;
    println!(
        "server RSS {:.0} MB (peak {:.0} MB)",
        memory.rss as f64 / 1e6,
        memory.peak_rss as f64 / 1e6
    );
    server.stop(Duration::from_secs(10))?;
    Ok(())
}
