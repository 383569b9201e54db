//! `store-bench`: write throughput and latency of the sqlite store with group commit.
//!
//! For `create` and `update` at 1, 10 and 100 concurrent writers, each writer writes as
//! fast as it can for a fixed time against a fresh store in a temporary directory, and
//! the table reports writes/s, p50/p99 latency and writes per transaction (the group
//! commit's batch size).
//!
//! Usage: `store-bench [--seconds N] [--synchronous full|normal] [--dir DIR]`

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
}

struct Outcome {
    writes: usize,
    elapsed: Duration,
    latency: Percentiles,
    transactions: u64,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        seconds: 3,
        synchronous: Synchronous::Full,
        dir: None,
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
            "-h" | "--help" => {
                return Err(
                    "usage: store-bench [--seconds N] [--synchronous full|normal] [--dir DIR]"
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
    operation: Operation,
    writers: usize,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    let dir = match &config.dir {
        Some(parent) => tempfile::tempdir_in(parent)?,
        None => tempfile::tempdir()?,
    };
    let options = SqliteOptions {
        synchronous: config.synchronous,
        compaction_interval: None,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("bench.db"), options)?;
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

    let transactions_before = store.stats().transactions;
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
    let transactions = store.stats().transactions - transactions_before;
    let writes = latencies.len();
    let latency = Percentiles::of(&mut latencies).ok_or("no writes completed")?;
    Ok(Outcome {
        writes,
        elapsed,
        latency,
        transactions,
    })
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
    println!(
        "sqlite store, synchronous={:?}, {VALUE_SIZE}-byte values, {} s per run, {cores} cores",
        config.synchronous, config.seconds
    );
    println!(
        "{:<8} {:>8} {:>10} {:>9} {:>9} {:>12}",
        "op", "writers", "writes/s", "p50 ms", "p99 ms", "writes/txn"
    );
    for operation in [Operation::Create, Operation::Update] {
        for writers in CONCURRENCY {
            let outcome = run(&config, operation, writers).await?;
            let rate = outcome.writes as f64 / outcome.elapsed.as_secs_f64();
            let per_transaction = outcome.writes as f64 / outcome.transactions.max(1) as f64;
            println!(
                "{:<8} {:>8} {:>10.0} {:>9} {:>9} {:>12.1}",
                format!("{operation:?}").to_lowercase(),
                writers,
                rate,
                millis(outcome.latency.p50),
                millis(outcome.latency.p99),
                per_transaction
            );
        }
    }
    Ok(())
}
