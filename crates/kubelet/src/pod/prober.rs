//! Liveness, readiness and startup probes of one container, as upstream's
//! `prober/worker.go`: each probe runs every `periodSeconds` after `initialDelaySeconds`,
//! with `timeoutSeconds`, and flips only after `successThreshold` successes or
//! `failureThreshold` failures in a row. Liveness and readiness wait for the startup
//! probe. Exec probes go through `Runtime::exec_sync`; httpGet, tcpSocket and grpc go to
//! the pod IP, or are simulated (always succeed) on hollow nodes, which have no network.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::runtime::Runtime;

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// Restarts the container when failing.
    Liveness,
    /// Gates the container's readiness.
    Readiness,
    /// Holds the other two until it passes once; restarts when failing.
    Startup,
}

#[derive(Debug)]
struct ProbeWorker {
    kind: ProbeKind,
    probe: Probe,
    next_at: Instant,
    successes: i32,
    failures: i32,
    /// The probe's current verdict (`None` before the first conclusive run).
    result: Option<bool>,
}

impl ProbeWorker {
    fn new(kind: ProbeKind, probe: &Probe, started: Instant) -> Self {
        let delay = probe.initial_delay_seconds.unwrap_or(0).max(0) as u64;
        ProbeWorker {
            kind,
            probe: probe.clone(),
            next_at: started + Duration::from_secs(delay),
            successes: 0,
            failures: 0,
            result: None,
        }
    }

    fn period(&self) -> Duration {
        Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64)
    }

    fn record(&mut self, ok: bool) {
        if ok {
            self.successes += 1;
            self.failures = 0;
            let threshold = self.probe.success_threshold.unwrap_or(1).max(1);
            if self.successes >= threshold {
                self.result = Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            let threshold = self.probe.failure_threshold.unwrap_or(3).max(1);
            if self.failures >= threshold {
                self.result = Some(false);
            }
        }
    }
}

/// Where probes go.
pub struct ProbeTarget<'a> {
    /// The runtime, for exec probes.
    pub runtime: &'a dyn Runtime,
    /// The container's runtime id.
    pub container_id: &'a str,
    /// The pod's IP (empty when unknown).
    pub pod_ip: &'a str,
    /// Whether network probes really connect (false on hollow nodes).
    pub network: bool,
    /// The container's spec, for named ports.
    pub container: Option<&'a Container>,
}

/// The probes of one running container (one instance per container id).
#[derive(Debug)]
pub struct ContainerProbes {
    /// The container instance these belong to; a restart gets fresh probes.
    pub container_id: String,
    workers: Vec<ProbeWorker>,
    has_startup: bool,
    has_readiness: bool,
    /// Failed runs since the last [`take_failures`](ContainerProbes::take_failures), as
    /// upstream's `Unhealthy` event messages.
    failures: Vec<String>,
}

impl ContainerProbes {
    /// Probes for a container that started running at `started`.
    pub fn new(container: &Container, container_id: &str, started: Instant) -> Self {
        let mut workers = vec![];
        for (kind, probe) in [
            (ProbeKind::Startup, &container.startup_probe),
            (ProbeKind::Liveness, &container.liveness_probe),
            (ProbeKind::Readiness, &container.readiness_probe),
        ] {
            if let Some(probe) = probe {
                workers.push(ProbeWorker::new(kind, probe, started));
            }
        }
        ContainerProbes {
            container_id: container_id.to_string(),
            has_startup: container.startup_probe.is_some(),
            has_readiness: container.readiness_probe.is_some(),
            workers,
            failures: Vec::new(),
        }
    }

    fn result(&self, kind: ProbeKind) -> Option<bool> {
        self.workers
            .iter()
            .find(|w| w.kind == kind)
            .and_then(|w| w.result)
    }

    /// Passed its startup probe (or has none).
    pub fn started(&self) -> bool {
        !self.has_startup || self.result(ProbeKind::Startup) == Some(true)
    }

    /// Ready: started, and the readiness probe passes (or there is none).
    pub fn ready(&self) -> bool {
        self.started() && (!self.has_readiness || self.result(ProbeKind::Readiness) == Some(true))
    }

    /// The liveness or startup probe has failed: the container must be restarted.
    pub fn unhealthy(&self) -> Option<String> {
        for w in &self.workers {
            if w.result == Some(false) && matches!(w.kind, ProbeKind::Liveness | ProbeKind::Startup)
            {
                let kind = if w.kind == ProbeKind::Liveness {
                    "liveness"
                } else {
                    "startup"
                };
                return Some(format!("Container failed {kind} probe, will be restarted"));
            }
        }
        None
    }

    /// The failed runs' messages since the last call (`Liveness probe failed: …`).
    pub fn take_failures(&mut self) -> Vec<String> {
        std::mem::take(&mut self.failures)
    }

    /// Runs the probes that are due; returns when the next one is.
    pub async fn run_due(&mut self, target: &ProbeTarget<'_>, now: Instant) -> Option<Instant> {
        let started = self.started();
        for w in &mut self.workers {
            // Liveness and readiness wait for startup; startup stops once it passed.
            let active = match w.kind {
                ProbeKind::Startup => w.result != Some(true),
                _ => started,
            };
            if !active || w.next_at > now {
                continue;
            }
            let result = run_probe(&w.probe, target).await;
            w.record(result.is_ok());
            if let Err(output) = result {
                let kind = match w.kind {
                    ProbeKind::Liveness => "Liveness",
                    ProbeKind::Readiness => "Readiness",
                    ProbeKind::Startup => "Startup",
                };
                self.failures.push(format!("{kind} probe failed: {output}"));
            }
            w.next_at = now + w.period();
        }
        let started = self.started();
        self.workers
            .iter()
            .filter(|w| match w.kind {
                ProbeKind::Startup => w.result != Some(true),
                _ => started,
            })
            .map(|w| w.next_at)
            .min()
    }
}

fn port_number(port: &IntOrString, container: Option<&Container>) -> Option<u16> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).ok(),
        IntOrString::String(name) => container?
            .ports
            .as_ref()?
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// One probe run: `Ok`, or `Err(output)` with what upstream's prober reports in the
/// `Unhealthy` event (a timeout is a failure).
async fn run_probe(probe: &Probe, target: &ProbeTarget<'_>) -> Result<(), String> {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        return match target
            .runtime
            .exec_sync(target.container_id, &cmd, timeout)
            .await
        {
            Ok(r) if r.exit_code == 0 => Ok(()),
            Ok(r) => {
                let mut output = r.stdout;
                output.extend_from_slice(&r.stderr);
                Err(String::from_utf8_lossy(&output).into_owned())
            }
            Err(e) => Err(e.to_string()),
        };
    }
    if !target.network {
        // Hollow nodes: there is no process listening; network probes are simulated.
        return Ok(());
    }
    if target.pod_ip.is_empty() {
        return Err("the pod has no IP address yet".into());
    }
    let connect = |host: String, port: u16| async move {
        tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("dial tcp {host}:{port}: connect: {}", io_reason(&e)))
    };
    let attempt = async {
        if let Some(tcp) = &probe.tcp_socket {
            let port = port_number(&tcp.port, target.container)
                .ok_or_else(|| format!("invalid port {:?}", tcp.port))?;
            let host = tcp
                .host
                .clone()
                .unwrap_or_else(|| target.pod_ip.to_string());
            connect(host, port).await?;
            return Ok(());
        }
        if let Some(http) = &probe.http_get {
            let port = port_number(&http.port, target.container)
                .ok_or_else(|| format!("invalid port {:?}", http.port))?;
            let host = http
                .host
                .clone()
                .unwrap_or_else(|| target.pod_ip.to_string());
            let path = http.path.clone().unwrap_or_else(|| "/".into());
            if http.scheme.as_deref() == Some("HTTPS") {
                // Upstream skips certificate checks for HTTPS probes; without a TLS
                // client here, a completed TCP handshake is the signal.
                connect(host, port).await?;
                return Ok(());
            }
            let url = format!("http://{host}:{port}{path}");
            let mut stream = connect(host.clone(), port)
                .await
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            let mut request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
            );
            for h in http.http_headers.as_deref().unwrap_or_default() {
                request.push_str(&format!("{}: {}\r\n", h.name, h.value));
            }
            request.push_str("\r\n");
            let io = |e: std::io::Error| format!("Get \"{url}\": {e}");
            stream.write_all(request.as_bytes()).await.map_err(io)?;
            let mut head = [0u8; 64];
            let n = stream.read(&mut head).await.map_err(io)?;
            let line = String::from_utf8_lossy(&head[..n]);
            let code: u16 = line
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response"))?;
            if (200..400).contains(&code) {
                return Ok(());
            }
            return Err(format!("HTTP probe failed with statuscode: {code}"));
        }
        if let Some(grpc) = &probe.grpc {
            // The gRPC health protocol needs an HTTP/2 client; a connection that opens is
            // taken as serving (documented limitation).
            let port = u16::try_from(grpc.port).map_err(|e| e.to_string())?;
            connect(target.pod_ip.to_string(), port).await?;
            return Ok(());
        }
        Err("no probe handler".to_string())
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("probe timed out after {}s", timeout.as_secs())),
    }
}

/// The errno text Go prints (`connection refused`), without Rust's `(os error N)`.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hollow::{HollowOptions, HollowRuntime};

    fn container(json: serde_json::Value) -> Container {
        serde_json::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn probes_wait_for_the_initial_delay_and_startup() {
        let c = container(serde_json::json!({"name": "a",
            "startupProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
            "readinessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 5, "periodSeconds": 2}}));
        let rt = HollowRuntime::new(HollowOptions::default());
        let t0 = Instant::now();
        let mut probes = ContainerProbes::new(&c, "missing", t0);
        let target = ProbeTarget {
            runtime: &rt,
            container_id: "missing",
            pod_ip: "",
            network: false,
            container: None,
        };
        // The exec fails (no such container): not started, not ready.
        let next = probes.run_due(&target, t0).await.unwrap();
        assert_eq!(next, t0 + Duration::from_secs(1));
        assert!(!probes.started() && !probes.ready());
        assert_eq!(
            probes.unhealthy(),
            None,
            "one failure is below the threshold of 3"
        );
        probes.run_due(&target, t0 + Duration::from_secs(1)).await;
        probes.run_due(&target, t0 + Duration::from_secs(2)).await;
        assert_eq!(
            probes.unhealthy().as_deref(),
            Some("Container failed startup probe, will be restarted")
        );
    }

    #[tokio::test]
    async fn readiness_needs_its_threshold_and_hollow_network_probes_pass() {
        let c = container(serde_json::json!({"name": "a",
            "readinessProbe": {"httpGet": {"port": 8080, "path": "/healthz"}, "initialDelaySeconds": 5, "successThreshold": 2, "periodSeconds": 2}}));
        let rt = HollowRuntime::new(HollowOptions::default());
        let t0 = Instant::now();
        let mut probes = ContainerProbes::new(&c, "x", t0);
        let target = ProbeTarget {
            runtime: &rt,
            container_id: "x",
            pod_ip: "10.42.0.2",
            network: false,
            container: None,
        };
        assert_eq!(
            probes.run_due(&target, t0).await,
            Some(t0 + Duration::from_secs(5))
        );
        assert!(!probes.ready(), "not ready before the initial delay");
        probes.run_due(&target, t0 + Duration::from_secs(5)).await;
        assert!(!probes.ready(), "one success of two");
        probes.run_due(&target, t0 + Duration::from_secs(7)).await;
        assert!(probes.ready());
    }

    #[tokio::test]
    async fn real_tcp_and_http_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap();
                let ok = String::from_utf8_lossy(&buf[..n]).starts_with("GET /ok ");
                let reply = if ok {
                    "HTTP/1.1 200 OK\r\n\r\n"
                } else {
                    "HTTP/1.1 500 Oops\r\n\r\n"
                };
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        let rt = HollowRuntime::new(HollowOptions::default());
        let target = ProbeTarget {
            runtime: &rt,
            container_id: "x",
            pod_ip: "127.0.0.1",
            network: true,
            container: None,
        };
        let probe = |json| serde_json::from_value::<Probe>(json).unwrap();
        assert!(run_probe(
            &probe(serde_json::json!({"tcpSocket": {"port": port}})),
            &target
        )
        .await
        .is_ok());
        assert!(run_probe(
            &probe(serde_json::json!({"httpGet": {"port": port, "path": "/ok"}})),
            &target
        )
        .await
        .is_ok());
        assert_eq!(
            run_probe(
                &probe(serde_json::json!({"httpGet": {"port": port, "path": "/bad"}})),
                &target
            )
            .await,
            Err("HTTP probe failed with statuscode: 500".to_string())
        );
        assert_eq!(
            run_probe(
                &probe(serde_json::json!({"tcpSocket": {"port": 1}})),
                &target
            )
            .await,
            Err("dial tcp 127.0.0.1:1: connect: connection refused".to_string())
        );
    }
}
