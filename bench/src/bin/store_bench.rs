//! `store-bench`: write throughput and latency of the sqlite store with group commit, and
//! of the etcd backend against a real etcd on the same machine in the same run.
//!
//! For `create` and `update` at 1, 10 and 100 concurrent writers, each writer writes as
//! fast as it can for a fixed time against a fresh store (a temporary sqlite file, or a
//! fresh single-member etcd on loopback), and the table reports writes/s, p50/p99 latency
//! and, for sqlite, writes per transaction (the group commit's batch size). With etcd
//! installed (Debian `etcd-server`), the last column compares sqlite's rate to etcd's.
//!
//! Usage: `store-bench [--seconds N] [--synchronous full|normal] [--dir DIR] [--no-etcd]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use k8rs_bench::{millis, Percentiles};
use k8rs_store::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use k8rs_store::Store;

/// A value about the size of a small Kubernetes object's JSON.
const VALUE_SIZE: usize = 1024;
const CONCURRENCY: [usize; 3] = [1, 10, 100];

#[derive(Clone, Copy, Debug)]
enum Operation {
    Create,
    Update,
}

struct Config {
    seconds: u64,
    synchronous: Synchronous,
    dir: Option<PathBuf>,
    etcd: bool,
}

/// Which store a run measures.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Backend {
    Sqlite,
    Etcd,
}

struct Outcome {
    writes: usize,
    elapsed: Duration,
    latency: Percentiles,
    /// Store transactions (sqlite only).
    transactions: Option<u64>,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        seconds: 3,
        synchronous: Synchronous::Full,
        dir: None,
        etcd: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => {
                config.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--synchronous" => {
                config.synchronous = match value()?.to_ascii_lowercase().as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    other => return Err(format!("--synchronous: unknown level {other:?}")),
                }
            }
            "--dir" => config.dir = Some(PathBuf::from(value()?)),
            "--no-etcd" => config.etcd = false,
            "-h" | "--help" => {
                return Err(
                    "usage: store-bench [--seconds N] [--synchronous full|normal] [--dir DIR] [--no-etcd]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(config)
}

/// Runs `writers` concurrent writers doing `operation` for `duration` on a fresh store.
async fn run(
    config: &Config,
    backend: Backend,
    operation: Operation,
    writers: usize,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let dir = match &config.dir {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    // Kept alive for the run: the etcd process, or the sqlite store (for its statistics).
    let mut _etcd = None;
    let mut sqlite = None;
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => {
            let options = SqliteOptions {
                synchronous: config.synchronous,
                compaction_interval: None,
                ..SqliteOptions::default()
            };
            let store = SqliteStore::open_with(&dir.path().join("bench.db"), options)?;
            sqlite = Some(Arc::clone(&store));
            store
        }
        Backend::Etcd => {
            let etcd = k8rs_store::testing::etcd::Etcd::start();
            let store = connect_etcd(etcd.client_url()).await?;
            _etcd = Some(etcd);
            store
        }
    };
    let transactions = || sqlite.as_ref().map(|s| s.stats().transactions);
    let value = Bytes::from(vec![b'x'; VALUE_SIZE]);

    // Updates go to one key per writer, so CAS never conflicts.
    let mut start_revisions = Vec::with_capacity(writers);
    for w in 0..writers {
        let revision = match operation {
            Operation::Update => store.create(&key(w, 0), value.clone(), None).await?,
            Operation::Create => 0,
        };
        start_revisions.push(revision);
    }

    let transactions_before = transactions();
    let deadline = Instant::now() + Duration::from_secs(config.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = start_revisions
        .into_iter()
        .enumerate()
        .map(|(w, mut revision)| {
            let store = Arc::clone(&store);
            let value = value.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    i += 1;
                    let begun = Instant::now();
                    revision = match operation {
                        Operation::Create => store.create(&key(w, i), value.clone(), None).await?,
                        Operation::Update => {
                            store.update(&key(w, 0), value.clone(), revision).await?
                        }
                    };
                    latencies.push(begun.elapsed());
                }
                Ok::<_, k8rs_store::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    let transactions = transactions()
        .zip(transactions_before)
        .map(|(after, before)| after - before);
    let writes = latencies.len();
    let latency = Percentiles::of(&mut latencies).ok_or("no writes completed")?;
    Ok(Outcome {
        writes,
        elapsed,
        latency,
        transactions,
    })
}

/// Connect, retrying while a freshly started etcd comes up.
async fn connect_etcd(url: &str) -> Result<Arc<dyn Store>, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match k8rs_store::etcd::EtcdStore::connect(&[url.to_string()]).await {
            Ok(store) => return Ok(store),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn key(writer: usize, index: usize) -> String {
    format!("/registry/configmaps/bench/w{writer}-{index}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = match parse_args() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let etcd = config.etcd
        && std::process::Command::new(std::env::var("K8RS_ETCD").unwrap_or_else(|_| "etcd".into()))
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    println!(
        "sqlite store (synchronous={:?}){}, {VALUE_SIZE}-byte values, {} s per run, {cores} cores",
        config.synchronous,
        if etcd {
            " and etcd on loopback (its defaults: fsync per commit)"
        } else {
            "; etcd not measured (--no-etcd, or install etcd-server)"
        },
        config.seconds
    );
    println!(
        "{:<8} {:<7} {:>8} {:>10} {:>9} {:>9} {:>11} {:>14}",
        "op", "store", "writers", "writes/s", "p50 ms", "p99 ms", "writes/txn", "sqlite/etcd"
    );
    for operation in [Operation::Create, Operation::Update] {
        for writers in CONCURRENCY {
            let sqlite = run(&config, Backend::Sqlite, operation, writers).await?;
            let etcd = if etcd {
                Some(run(&config, Backend::Etcd, operation, writers).await?)
            } else {
                None
            };
            let rate = |o: &Outcome| o.writes as f64 / o.elapsed.as_secs_f64();
            for (backend, outcome) in [
                (Backend::Sqlite, Some(&sqlite)),
                (Backend::Etcd, etcd.as_ref()),
            ] {
                let Some(outcome) = outcome else { continue };
                let per_transaction = outcome.transactions.map_or("-".to_string(), |t| {
                    format!("{:.1}", outcome.writes as f64 / t.max(1) as f64)
                });
                let ratio = match (backend, &etcd) {
                    (Backend::Sqlite, Some(e)) => format!("{:.2}x", rate(&sqlite) / rate(e)),
                    _ => String::new(),
                };
                println!(
                    "{:<8} {:<7} {:>8} {:>10.0} {:>9} {:>9} {:>11} {:>14}",
                    format!("{operation:?}").to_lowercase(),
                    format!("{backend:?}").to_lowercase(),
                    writers,
                    rate(outcome),
                    millis(outcome.latency.p50),
                    millis(outcome.latency.p99),
                    per_transaction,
                    ratio
                );
            }
        }
    }
    Ok(())
}
