//! `api-bench`: start-up time, request throughput/latency and memory of a real
//! `k8rs server` process, driven by kube-rs clients over HTTPS.
//!
//! 1. Spawns `k8rs server` on a free port with a temporary data dir and times it until
//!    `admin.kubeconfig` appears and until `GET /readyz` answers 200 (admin credentials).
//! 2. For each transport (HTTP/1.1 with one connection per client, as kube-rs does, and
//!    one HTTP/2 connection multiplexed by all clients, as client-go does by default) and
//!    for 1, 10 and 100 concurrent clients, runs each phase for a fixed time, every
//!    client issuing its next request as soon as the previous one answered:
//!    creates of ~1 KiB ConfigMaps, gets of existing ones, lists of a namespace holding
//!    `--list-size` of them; and watches: N watchers, one writer creating ConfigMaps (at
//!    `--watch-write-rate` per second, then as fast as it can), measuring the time from
//!    sending a write until each watcher sees its ADDED event, and events/s delivered.
//! 3. Reads the server's VmRSS after start-up and after the load, and VmHWM (peak).
//! 4. Restarts the server on the now populated data dir and times that start too.
//!
//! Usage: `api-bench [--k8rs PATH] [--seconds N] [--clients 1,10,100]
//!                   [--transport http1|http2|both] [--list-size N] [--watch-write-rate N]`

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::StreamExt;
use k8rs_bench::api_client::{self, Transport};
use k8rs_bench::server_process::{free_port, process_cpu_time, Memory, ServerProcess, StartTimes};
use k8rs_bench::{millis, Percentiles};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::Client;
use tokio::sync::Barrier;

/// Size of the `payload` value of every ConfigMap the benchmark writes.
const PAYLOAD_SIZE: usize = 1024;
const LIST_NAMESPACE: &str = "bench-list";
const WATCH_NAMESPACE: &str = "bench-watch";
const CREATE_NAMESPACE: &str = "default";
/// The data key holding a watch write's send time (nanoseconds since the bench started).
const SENT_KEY: &str = "sent-ns";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long watchers may lag behind the writer's last write before events count as lost.
const WATCH_DRAIN: Duration = Duration::from_secs(10);

// Targets from DESIGN.md ("Targets"); the idle-memory figure comes from the bench brief.
const TARGET_P99: Duration = Duration::from_millis(50);
const TARGET_P99_CLIENTS: usize = 100;
const TARGET_READY: Duration = Duration::from_secs(1);
const TARGET_IDLE_RSS: u64 = 50_000_000;

#[derive(Parser, Debug)]
#[command(
    name = "api-bench",
    about = "Start-up, request throughput/latency and memory of a real k8rs server"
)]
struct Args {
    /// The k8rs binary [default: `k8rs` next to this binary].
    #[arg(long)]
    k8rs: Option<PathBuf>,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent client counts, comma separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100])]
    clients: Vec<usize>,
    /// Which transports to measure.
    #[arg(long, value_enum, default_value_t = TransportChoice::Both)]
    transport: TransportChoice,
    /// ConfigMaps in the namespace the list phase lists.
    #[arg(long, default_value_t = 100)]
    list_size: usize,
    /// Writes per second of the paced watch phase (the unpaced one follows it).
    #[arg(long, default_value_t = 100)]
    watch_write_rate: u32,
    /// Seconds the server is left idle before its memory is read.
    #[arg(long, default_value_t = 2)]
    settle_seconds: u64,
    /// Where the temporary data dir is created [default: the system temp dir].
    #[arg(long)]
    data_dir_parent: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportChoice {
    Http1,
    Http2,
    Both,
}

impl TransportChoice {
    fn transports(self) -> Vec<Transport> {
        match self {
            TransportChoice::Http1 => vec![Transport::Http1PerClient],
            TransportChoice::Http2 => vec![Transport::Http2Shared],
            TransportChoice::Both => vec![Transport::Http1PerClient, Transport::Http2Shared],
        }
    }
}

/// CPU time the server and the bench process used during a phase.
#[derive(Default, Clone, Copy)]
struct CpuUse {
    server: Duration,
    bench: Duration,
}

/// Reads both processes' CPU time at the start of a phase.
struct CpuMeter {
    server_pid: String,
    server_start: Duration,
    bench_start: Duration,
}

impl CpuMeter {
    fn start(server_pid: u32) -> CpuMeter {
        let server_pid = server_pid.to_string();
        CpuMeter {
            server_start: process_cpu_time(&server_pid).unwrap_or_default(),
            bench_start: process_cpu_time("self").unwrap_or_default(),
            server_pid,
        }
    }

    fn finish(self) -> CpuUse {
        let now = |pid: &str| process_cpu_time(pid).unwrap_or_default();
        CpuUse {
            server: now(&self.server_pid).saturating_sub(self.server_start),
            bench: now("self").saturating_sub(self.bench_start),
        }
    }
}

impl CpuUse {
    /// Microseconds of (server, bench) CPU per operation.
    fn per_op(self, ops: usize) -> (String, String) {
        let micros = |cpu: Duration| {
            if ops == 0 {
                "-".to_string()
            } else {
                format!("{:.0}", cpu.as_secs_f64() * 1e6 / ops as f64)
            }
        };
        (micros(self.server), micros(self.bench))
    }
}

/// What a closed-loop phase measured.
struct Outcome {
    cpu: CpuUse,
    completed: usize,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    latency: Option<Percentiles>,
}

/// What a watch phase measured.
struct WatchOutcome {
    cpu: CpuUse,
    writes: usize,
    write_elapsed: Duration,
    delivered: usize,
    expected: usize,
    errors: usize,
    first_error: Option<String>,
    /// From the first write to the last event any watcher received.
    delivery_elapsed: Duration,
    latency: Option<Percentiles>,
}

/// One watcher's share of a watch phase.
#[derive(Default)]
struct WatcherReport {
    latencies: Vec<Duration>,
    last_event: Option<Instant>,
    error: Option<String>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("api-bench: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), BoxError> {
    let binary = k8rs_bench::server_process::k8rs_binary(args.k8rs.as_deref())?;
    let work_dir = match &args.data_dir_parent {
        Some(parent) => tempfile::Builder::new()
            .prefix("k8rs-api-bench-")
            .tempdir_in(parent)?,
        None => tempfile::Builder::new()
            .prefix("k8rs-api-bench-")
            .tempdir()?,
    };
    let data_dir = work_dir.path().join("data");
    let phase = Duration::from_secs(args.seconds);
    let settle = Duration::from_secs(args.settle_seconds);
    print_header(&args, &binary, &data_dir);

    // Start-up on an empty data dir (includes generating the CA and certificates).
    let (server, first_start) = start_server(&binary, &data_dir, work_dir.path(), "first").await?;
    print_start("start, empty data dir", first_start);
    tokio::time::sleep(settle).await;
    let idle = server.memory()?;
    println!(
        "idle RSS after start-up:  {}   target < {}  ({})",
        mb(idle.rss),
        mb(TARGET_IDLE_RSS),
        verdict(idle.rss < TARGET_IDLE_RSS)
    );

    let config = api_client::load_config(&server.kubeconfig()).await?;
    let setup = api_client::http1_client(&config)?;
    let list_names = populate(&setup, args.list_size).await?;
    let base = Instant::now();
    let mut p99_at_target: BTreeMap<&str, Duration> = BTreeMap::new();

    for transport in args.transport.transports() {
        let pool_size = args.clients.iter().copied().max().unwrap_or(1);
        let pool = api_client::clients(&config, transport, pool_size)?;
        let mut versions = Vec::new();
        for client in &pool {
            versions.push(api_client::negotiated_version(client).await?);
        }
        versions.dedup();
        println!();
        println!("transport: {transport}; negotiated {versions:?}");
        println!(
            "{:<14} {:>7} {:>10} {:>9} {:>9} {:>7} {:>8} {:>8}  notes",
            "phase", "clients", "per s", "p50 ms", "p99 ms", "errors", "srv µs", "cli µs"
        );
        let tag = match transport {
            Transport::Http1PerClient => "h1",
            Transport::Http2Shared => "h2",
        };
        for &n in &args.clients {
            let clients = &pool[..n];
            let prefix = format!("create-{tag}-{n}");
            let outcome = closed_loop(clients, phase, server.pid(), move |client, c, i| {
                let name = format!("{prefix}-{c}-{i}");
                async move {
                    let api: Api<ConfigMap> = Api::namespaced(client, CREATE_NAMESPACE);
                    api.create(&PostParams::default(), &config_map(&name, BTreeMap::new()))
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            print_outcome("create", n, &outcome, &mut p99_at_target);
        }
        for &n in &args.clients {
            let names = Arc::new(list_names.clone());
            let outcome = closed_loop(&pool[..n], phase, server.pid(), move |client, c, i| {
                let names = Arc::clone(&names);
                async move {
                    let name = &names[(c * 31 + i) % names.len()];
                    let api: Api<ConfigMap> = Api::namespaced(client, LIST_NAMESPACE);
                    api.get(name).await.map(drop).map_err(|e| e.to_string())
                }
            })
            .await;
            print_outcome("get", n, &outcome, &mut p99_at_target);
        }
        for &n in &args.clients {
            let expected = args.list_size;
            let outcome = closed_loop(
                &pool[..n],
                phase,
                server.pid(),
                move |client, _, _| async move {
                    let api: Api<ConfigMap> = Api::namespaced(client, LIST_NAMESPACE);
                    let list = api
                        .list(&ListParams::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    if list.items.len() == expected {
                        Ok(())
                    } else {
                        Err(format!(
                            "the list had {} items, not {expected}",
                            list.items.len()
                        ))
                    }
                },
            )
            .await;
            print_outcome(
                &format!("list ({})", args.list_size),
                n,
                &outcome,
                &mut p99_at_target,
            );
        }
        for rate in [Some(args.watch_write_rate), None] {
            for &n in &args.clients {
                let writer = api_client::clients(&config, transport, 1)?.remove(0);
                let (pace, label) = match rate {
                    Some(per_second) => (per_second.to_string(), format!("{per_second}/s")),
                    None => ("max".to_string(), "max".to_string()),
                };
                let tag = format!("watch-{tag}-{pace}-{n}");
                let outcome =
                    watch_phase(&pool[..n], writer, phase, rate, base, &tag, server.pid()).await?;
                print_watch_outcome(&format!("watch ({label})"), n, &outcome);
            }
        }
    }

    tokio::time::sleep(settle).await;
    let loaded = server.memory()?;
    let objects = count_config_maps(&setup).await?;
    println!();
    println!(
        "RSS after the load ({objects} ConfigMaps stored), {} s idle: {}; peak (VmHWM): {}",
        args.settle_seconds,
        mb(loaded.rss),
        mb(loaded.peak_rss)
    );
    drop(setup);
    let stopped_in = server.stop(STOP_GRACE)?;
    println!("stop (SIGTERM until exit): {} ms", millis(stopped_in));

    // Start-up again, now with the populated store to load.
    let (server, times) = start_server(&binary, &data_dir, work_dir.path(), "restart").await?;
    print_start(&format!("restart, {objects} ConfigMaps"), times);
    tokio::time::sleep(settle).await;
    let restarted = server.memory()?;
    println!("idle RSS after restart:   {}", mb(restarted.rss));
    server.stop(STOP_GRACE)?;

    print_summary(&p99_at_target, first_start, idle);
    Ok(())
}

/// Spawns the server on a free port and waits for it; `label` names its log file.
async fn start_server(
    binary: &Path,
    data_dir: &Path,
    work_dir: &Path,
    label: &str,
) -> Result<(ServerProcess, StartTimes), BoxError> {
    let log = work_dir.join(format!("server-{label}.log"));
    let mut server = ServerProcess::spawn(binary, data_dir, free_port()?, &log)?;
    let times = server.wait_ready(READY_TIMEOUT).await?;
    Ok((server, times))
}

/// Creates the benchmark namespaces and `list_size` ConfigMaps to get and list.
async fn populate(client: &Client, list_size: usize) -> Result<Vec<String>, BoxError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in [LIST_NAMESPACE, WATCH_NAMESPACE] {
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        namespaces
            .create(&PostParams::default(), &namespace)
            .await?;
    }
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), LIST_NAMESPACE);
    let mut names = Vec::with_capacity(list_size);
    for i in 0..list_size {
        let name = format!("item-{i}");
        api.create(&PostParams::default(), &config_map(&name, BTreeMap::new()))
            .await?;
        names.push(name);
    }
    Ok(names)
}

async fn count_config_maps(client: &Client) -> Result<usize, kube::Error> {
    let api: Api<ConfigMap> = Api::all(client.clone());
    Ok(api.list_metadata(&ListParams::default()).await?.items.len())
}

/// A ConfigMap with a [`PAYLOAD_SIZE`]-byte `payload` plus `extra` data.
fn config_map(name: &str, extra: BTreeMap<String, String>) -> ConfigMap {
    let mut data = extra;
    let payload: String = (0..PAYLOAD_SIZE)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    data.insert("payload".to_string(), payload);
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                "app".to_string(),
                "api-bench".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..ConfigMap::default()
    }
}

/// Every client runs `op(client, client_index, iteration)` back to back for `duration`.
async fn closed_loop<F, Fut>(
    clients: &[Client],
    duration: Duration,
    server_pid: u32,
    op: F,
) -> Outcome
where
    F: Fn(Client, usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let cpu = CpuMeter::start(server_pid);
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(c, client)| {
            let client = client.clone();
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    let begun = Instant::now();
                    match op(client.clone(), c, i).await {
                        Ok(()) => latencies.push(begun.elapsed()),
                        Err(e) => errors.push(e),
                    }
                    i += 1;
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok((task_latencies, task_errors)) => {
                latencies.extend(task_latencies);
                errors += task_errors.len();
                first_error = first_error.or(task_errors.into_iter().next());
            }
            Err(e) => {
                errors += 1;
                first_error = first_error.or(Some(format!("client task failed: {e}")));
            }
        }
    }
    Outcome {
        cpu: cpu.finish(),
        completed: latencies.len(),
        errors,
        first_error,
        elapsed: started.elapsed(),
        latency: Percentiles::of(&mut latencies),
    }
}

/// One writer creates ConfigMaps in [`WATCH_NAMESPACE`] for `duration` (`rate` per second,
/// or back to back) while every client in `watchers` watches the namespace.
async fn watch_phase(
    watchers: &[Client],
    writer: Client,
    duration: Duration,
    rate: Option<u32>,
    base: Instant,
    tag: &str,
    server_pid: u32,
) -> Result<WatchOutcome, BoxError> {
    let writes_api: Api<ConfigMap> = Api::namespaced(writer, WATCH_NAMESPACE);
    let from = writes_api
        .list_metadata(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .ok_or("the list had no resourceVersion")?;
    // Writes start once every watch is established (its response headers arrived).
    let established = Arc::new(Barrier::new(watchers.len() + 1));
    let (total_tx, total_rx) = tokio::sync::watch::channel(None::<usize>);
    let tasks: Vec<_> = watchers
        .iter()
        .map(|client| {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), WATCH_NAMESPACE);
            let established = Arc::clone(&established);
            let total_rx = total_rx.clone();
            let from = from.clone();
            let tag = tag.to_string();
            tokio::spawn(async move {
                let stream = api.watch(&WatchParams::default().timeout(290), &from).await;
                established.wait().await;
                match stream {
                    Ok(stream) => watch_until_done(stream.boxed(), total_rx, base, &tag).await,
                    Err(e) => WatcherReport {
                        error: Some(format!("watch: {e}")),
                        ..WatcherReport::default()
                    },
                }
            })
        })
        .collect();
    established.wait().await;

    let cpu = CpuMeter::start(server_pid);
    let started = Instant::now();
    let deadline = started + duration;
    let mut writes = 0;
    let mut write_errors = Vec::new();
    let mut i = 0u64;
    while Instant::now() < deadline {
        if let Some(per_second) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / f64::from(per_second.max(1)));
            tokio::time::sleep_until(due.into()).await;
        }
        let sent = base.elapsed().as_nanos().to_string();
        let object = config_map(
            &format!("{tag}-{i}"),
            BTreeMap::from([(SENT_KEY.to_string(), sent)]),
        );
        match writes_api.create(&PostParams::default(), &object).await {
            Ok(_) => writes += 1,
            Err(e) => write_errors.push(e.to_string()),
        }
        i += 1;
    }
    let write_elapsed = started.elapsed();
    total_tx.send_replace(Some(writes));

    let mut latencies = Vec::new();
    let mut errors = write_errors.len();
    let mut first_error = write_errors.into_iter().next();
    let mut last_event = started;
    for task in tasks {
        let report = task.await?;
        latencies.extend(report.latencies);
        last_event = last_event.max(report.last_event.unwrap_or(started));
        if let Some(e) = report.error {
            errors += 1;
            first_error = first_error.or(Some(e));
        }
    }
    let expected = writes * watchers.len();
    Ok(WatchOutcome {
        cpu: cpu.finish(),
        writes,
        write_elapsed,
        delivered: latencies.len(),
        expected,
        errors: errors + expected.saturating_sub(latencies.len()),
        first_error,
        delivery_elapsed: last_event - started,
        latency: Percentiles::of(&mut latencies),
    })
}

/// Reads ADDED events of `tag`'s objects until the writer's total has been seen, or
/// [`WATCH_DRAIN`] after the writer finished.
async fn watch_until_done(
    mut stream: futures::stream::BoxStream<'static, kube::Result<WatchEvent<ConfigMap>>>,
    mut total_rx: tokio::sync::watch::Receiver<Option<usize>>,
    base: Instant,
    tag: &str,
) -> WatcherReport {
    let mut report = WatcherReport::default();
    let mut total = None;
    let mut drain_deadline = tokio::time::Instant::now() + Duration::from_secs(24 * 3600);
    loop {
        if total.is_some_and(|total| report.latencies.len() >= total) {
            return report;
        }
        tokio::select! {
            event = stream.next() => match event {
                Some(Ok(WatchEvent::Added(object))) => {
                    let sent = object
                        .data
                        .as_ref()
                        .and_then(|data| data.get(SENT_KEY))
                        .and_then(|sent| sent.parse::<u64>().ok());
                    let ours = object
                        .metadata
                        .name
                        .as_deref()
                        .and_then(|name| name.strip_prefix(tag))
                        .is_some_and(|rest| rest.starts_with('-'));
                    if let (Some(sent), true) = (sent, ours) {
                        let now = Instant::now();
                        report
                            .latencies
                            .push((now - base).saturating_sub(Duration::from_nanos(sent)));
                        report.last_event = Some(now);
                    }
                }
                Some(Ok(WatchEvent::Error(status))) => {
                    report.error = Some(format!("watch error event: {}", status.message));
                    return report;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    report.error = Some(format!("watch stream: {e}"));
                    return report;
                }
                None => {
                    report.error = Some("the watch stream ended early".to_string());
                    return report;
                }
            },
            changed = total_rx.changed(), if total.is_none() => {
                if changed.is_err() {
                    report.error = Some("the writer went away".to_string());
                    return report;
                }
                total = *total_rx.borrow();
                drain_deadline = tokio::time::Instant::now() + WATCH_DRAIN;
            }
            _ = tokio::time::sleep_until(drain_deadline) => return report,
        }
    }
}

fn print_header(args: &Args, binary: &Path, data_dir: &Path) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    println!("api-bench: {}", binary.display());
    println!(
        "machine: {cpu}, {cores} cores (shared by the server and the bench clients)\n\
         data dir: {}\n\
         each phase runs {} s; ConfigMaps carry a {PAYLOAD_SIZE}-byte value; \
         clients send their next request as soon as the previous one answered;\n\
         srv µs / cli µs: CPU time of the server / of this bench process per request \
         (watch: per event delivered)",
        data_dir.display(),
        args.seconds
    );
    println!();
}

fn print_start(what: &str, times: StartTimes) {
    println!(
        "{what}: admin.kubeconfig after {} ms, GET /readyz 200 after {} ms   target < {} ms  ({})",
        millis(times.kubeconfig),
        millis(times.ready),
        TARGET_READY.as_millis(),
        verdict(times.ready < TARGET_READY)
    );
}

fn print_outcome(
    phase: &str,
    clients: usize,
    outcome: &Outcome,
    p99_at_target: &mut BTreeMap<&'static str, Duration>,
) {
    let rate = outcome.completed as f64 / outcome.elapsed.as_secs_f64();
    let (p50, p99) = outcome
        .latency
        .map_or(("-".into(), "-".into()), |l| (millis(l.p50), millis(l.p99)));
    let mut notes = Vec::new();
    let targeted = match phase {
        "create" => Some("create"),
        "get" => Some("get"),
        _ => None,
    };
    if let (Some(name), Some(latency), true) =
        (targeted, outcome.latency, clients == TARGET_P99_CLIENTS)
    {
        notes.push(format!(
            "target p99 < {} ms ({})",
            TARGET_P99.as_millis(),
            verdict(latency.p99 < TARGET_P99)
        ));
        // The summary reports the worst transport.
        let worst = p99_at_target.entry(name).or_insert(latency.p99);
        *worst = (*worst).max(latency.p99);
    }
    if let Some(e) = &outcome.first_error {
        notes.push(format!("first error: {e}"));
    }
    let (server_cpu, bench_cpu) = outcome.cpu.per_op(outcome.completed);
    println!(
        "{phase:<14} {clients:>7} {rate:>10.0} {p50:>9} {p99:>9} {:>7} {server_cpu:>8} {bench_cpu:>8}  {}",
        outcome.errors,
        notes.join("; ")
    );
}

fn print_watch_outcome(phase: &str, watchers: usize, outcome: &WatchOutcome) {
    let rate = outcome.delivered as f64 / outcome.delivery_elapsed.as_secs_f64().max(1e-9);
    let write_rate = outcome.writes as f64 / outcome.write_elapsed.as_secs_f64();
    let (p50, p99) = outcome
        .latency
        .map_or(("-".into(), "-".into()), |l| (millis(l.p50), millis(l.p99)));
    let mut notes = vec![format!(
        "events/s delivered; writer {write_rate:.0} writes/s; {}/{} events seen",
        outcome.delivered, outcome.expected
    )];
    if let Some(e) = &outcome.first_error {
        notes.push(format!("first error: {e}"));
    }
    let (server_cpu, bench_cpu) = outcome.cpu.per_op(outcome.delivered);
    println!(
        "{phase:<14} {watchers:>7} {rate:>10.0} {p50:>9} {p99:>9} {:>7} {server_cpu:>8} {bench_cpu:>8}  {}",
        outcome.errors,
        notes.join("; ")
    );
}

/// Measured figures next to their targets; `p99_at_target` holds the worst transport's p99
/// per targeted operation at [`TARGET_P99_CLIENTS`] clients.
fn print_summary(p99_at_target: &BTreeMap<&str, Duration>, first_start: StartTimes, idle: Memory) {
    println!();
    println!("targets, measured vs target:");
    println!(
        "  server ready after start (empty data dir): {} ms vs < {} ms ({})",
        millis(first_start.ready),
        TARGET_READY.as_millis(),
        verdict(first_start.ready < TARGET_READY)
    );
    for (name, p99) in p99_at_target {
        println!(
            "  {name} p99 at {TARGET_P99_CLIENTS} clients (worst transport): {} ms vs < {} ms ({})",
            millis(*p99),
            TARGET_P99.as_millis(),
            verdict(*p99 < TARGET_P99)
        );
    }
    println!(
        "  idle RSS after start-up: {} vs < {} ({})",
        mb(idle.rss),
        mb(TARGET_IDLE_RSS),
        verdict(idle.rss < TARGET_IDLE_RSS)
    );
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}

/// Bytes as decimal megabytes.
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
