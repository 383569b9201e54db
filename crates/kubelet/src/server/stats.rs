//! `GET /stats/summary`: upstream's Summary API (`kubelet/pkg/apis/stats/v1alpha1`) with
//! what `kubectl top` and metrics consumers read: the node's CPU and memory (from
//! `/proc`), and per pod and container CPU (`usageNanoCores`, `usageCoreNanoSeconds`) and
//! memory (`workingSetBytes`) from the runtime's container stats.
//!
//! CPU rates need two samples: a background task samples every [`SAMPLE_INTERVAL`], and
//! a request takes a fresh sample when the last one is older than a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use super::{text_error, Kubelet};
use crate::runtime::{ContainerState, Runtime, SandboxState};

/// How often CPU counters are sampled in the background.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// A sample younger than this is reused rather than taken again.
const FRESH: Duration = Duration::from_secs(1);
/// The key node-level samples are kept under.
const NODE: &str = "";

/// One cumulative CPU reading.
#[derive(Clone, Copy, Debug)]
struct Reading {
    /// Nanoseconds since the epoch.
    at: i64,
    /// Cumulative CPU time in nanoseconds.
    cpu: u64,
}

/// The last two readings per container (and the node), for rates.
pub struct Sampler {
    runtime: Arc<dyn Runtime>,
    readings: Mutex<HashMap<String, (Option<Reading>, Reading)>>,
}

/// CPU usage as rate and total.
fn cpu_rate(prev: Option<Reading>, cur: Reading) -> Option<u64> {
    let prev = prev?;
    let dt = cur.at - prev.at;
    if dt <= 0 {
        return None;
    }
    Some(((cur.cpu.saturating_sub(prev.cpu)) as u128 * 1_000_000_000 / dt as u128) as u64)
}

fn now_ns() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn rfc3339(ns: i64) -> String {
    Utc.timestamp_nanos(ns)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The node's cumulative busy CPU time in nanoseconds (`/proc/stat`, USER_HZ = 100).
fn node_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = v.first()?
        + v.get(1)?
        + v.get(2)?
        + v.get(5).unwrap_or(&0)
        + v.get(6).unwrap_or(&0)
        + v.get(7).unwrap_or(&0);
    Some(busy * 10_000_000)
}

/// Boot time, seconds since the epoch.
fn boot_time() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// `(total, available, free)` memory in bytes from `/proc/meminfo`.
fn node_memory() -> Option<(u64, u64, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let get = |key: &str| -> Option<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    };
    Some((get("MemTotal:")?, get("MemAvailable:")?, get("MemFree:")?))
}

impl Sampler {
    /// A sampler over `runtime`.
    pub fn new(runtime: Arc<dyn Runtime>) -> Sampler {
        Sampler {
            runtime,
            readings: Mutex::new(HashMap::new()),
        }
    }

    /// Sample forever (the server aborts it on shutdown).
    pub async fn run(kubelet: Arc<Kubelet>) {
        loop {
            kubelet.stats.sample().await;
            tokio::time::sleep(SAMPLE_INTERVAL).await;
        }
    }

    /// Record a reading of the node and of every running container.
    async fn sample(&self) {
        let stats = self.runtime.container_stats().await.unwrap_or_default();
        let node = node_cpu_ns();
        let at = now_ns();
        let mut readings = self.readings.lock().unwrap();
        let mut push = |key: &str, r: Reading| {
            let entry = readings.entry(key.to_string()).or_insert((None, r));
            if entry.1.at != r.at {
                *entry = (Some(entry.1), r);
            }
        };
        if let Some(cpu) = node {
            push(NODE, Reading { at, cpu });
        }
        for s in &stats {
            let at = if s.timestamp > 0 { s.timestamp } else { at };
            push(
                &s.id,
                Reading {
                    at,
                    cpu: s.cpu_usage_core_nanoseconds,
                },
            );
        }
        // Forget containers that are gone.
        let live: std::collections::HashSet<&str> = stats.iter().map(|s| s.id.as_str()).collect();
        readings.retain(|k, _| k.is_empty() || live.contains(k.as_str()));
    }

    /// Make sure there are two readings no older than a second or so.
    async fn refresh(&self) {
        let (stale, single) = {
            let r = self.readings.lock().unwrap();
            match r.get(NODE) {
                Some((prev, cur)) => (now_ns() - cur.at > FRESH.as_nanos() as i64, prev.is_none()),
                None => (true, true),
            }
        };
        if stale {
            self.sample().await;
        }
        if single {
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.sample().await;
        }
    }

    fn cpu(&self, key: &str) -> Option<Value> {
        let r = self.readings.lock().unwrap();
        let (prev, cur) = r.get(key)?;
        let mut v = json!({"time": rfc3339(cur.at), "usageCoreNanoSeconds": cur.cpu});
        if let Some(rate) = cpu_rate(*prev, *cur) {
            v["usageNanoCores"] = json!(rate);
        }
        Some(v)
    }
}

/// The handler.
pub async fn summary(State(k): State<Arc<Kubelet>>) -> Response {
    match build(&k).await {
        Ok(v) => (
            [(http::header::CONTENT_TYPE, "application/json")],
            v.to_string(),
        )
            .into_response(),
        Err(e) => text_error(http::StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn build(k: &Kubelet) -> Result<Value, String> {
    k.stats.refresh().await;
    let runtime = &k.config.runtime;
    let sandboxes = runtime
        .list_pod_sandboxes()
        .await
        .map_err(|e| e.to_string())?;
    let containers = runtime
        .list_containers(None)
        .await
        .map_err(|e| e.to_string())?;
    let stats = runtime.container_stats().await.map_err(|e| e.to_string())?;
    let now = now_ns();

    let mut node = json!({
        "nodeName": k.config.node_name,
        "systemContainers": [],
    });
    if let Some(boot) = boot_time() {
        node["startTime"] = json!(DateTime::<Utc>::from_timestamp(boot, 0)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }
    if let Some(cpu) = k.stats.cpu(NODE) {
        node["cpu"] = cpu;
    }
    if let Some((total, available, free)) = node_memory() {
        node["memory"] = json!({
            "time": rfc3339(now),
            "availableBytes": available,
            "usageBytes": total - free,
            "workingSetBytes": total - available,
            "rssBytes": total - available,
            "pageFaults": 0,
            "majorPageFaults": 0,
        });
    }

    let by_id: HashMap<&str, &crate::runtime::ContainerStats> =
        stats.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut pods = Vec::new();
    for sb in sandboxes.iter().filter(|s| s.state == SandboxState::Ready) {
        let mut items = Vec::new();
        let (mut pod_cpu_rate, mut pod_cpu_total, mut pod_mem) = (Some(0u64), 0u64, 0u64);
        for c in containers
            .iter()
            .filter(|c| c.sandbox_id == sb.id && c.state == ContainerState::Running)
        {
            let Some(s) = by_id.get(c.id.as_str()) else {
                continue;
            };
            let cpu = k.stats.cpu(&c.id).unwrap_or_else(|| {
                json!({"time": rfc3339(now), "usageCoreNanoSeconds": s.cpu_usage_core_nanoseconds})
            });
            pod_cpu_rate = match (pod_cpu_rate, cpu["usageNanoCores"].as_u64()) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
            pod_cpu_total += s.cpu_usage_core_nanoseconds;
            pod_mem += s.memory_working_set_bytes;
            items.push(json!({
                "name": c.name,
                "startTime": rfc3339(if c.started_at > 0 { c.started_at } else { c.created_at }),
                "cpu": cpu,
                "memory": {"time": rfc3339(now), "workingSetBytes": s.memory_working_set_bytes},
            }));
        }
        let mut cpu = json!({"time": rfc3339(now), "usageCoreNanoSeconds": pod_cpu_total});
        if let (Some(rate), false) = (pod_cpu_rate, items.is_empty()) {
            cpu["usageNanoCores"] = json!(rate);
        }
        pods.push(json!({
            "podRef": {"name": sb.identity.name, "namespace": sb.identity.namespace, "uid": sb.identity.uid},
            "startTime": rfc3339(sb.created_at),
            "containers": items,
            "cpu": cpu,
            "memory": {"time": rfc3339(now), "workingSetBytes": pod_mem},
        }));
    }
    Ok(json!({"node": node, "pods": pods}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_from_two_readings() {
        let a = Reading { at: 0, cpu: 0 };
        let b = Reading {
            at: 2_000_000_000,
            cpu: 1_000_000_000,
        };
        // One CPU-second over two seconds: half a core.
        assert_eq!(cpu_rate(Some(a), b), Some(500_000_000));
        assert_eq!(cpu_rate(None, b), None);
        assert_eq!(cpu_rate(Some(b), b), None);
    }

    #[test]
    fn proc_readers_work_here() {
        assert!(node_cpu_ns().unwrap() > 0);
        let (total, available, _) = node_memory().unwrap();
        assert!(total >= available && available > 0);
        assert!(boot_time().unwrap() > 1_000_000_000);
    }
}
