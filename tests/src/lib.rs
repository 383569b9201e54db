//! Harness for the end-to-end suites: starts a real `k8rs server` process on a free port
//! with a temporary data dir, and drives it with the real kubectl binaries.
//!
//! The harness never builds anything: run `cargo build -p k8rs` first (`tests/run` does).
//! Every kubectl test runs once per supported kubectl version; see [`kubectl_tests!`].

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod node;

/// Where the versioned kubectl binaries live on these machines (`kubectl.1.32`, …).
const DEFAULT_KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";
/// How long a server may take to write its kubeconfig and answer `/readyz`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a server start is retried when the picked port was taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// A kubectl minor version the suites run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubectlVersion {
    /// kubectl 1.32.
    V1_32,
    /// kubectl 1.33.
    V1_33,
}

impl KubectlVersion {
    /// Every version each kubectl test runs against.
    pub const ALL: [KubectlVersion; 2] = [KubectlVersion::V1_32, KubectlVersion::V1_33];

    /// The `1.NN` suffix of the binary name.
    pub fn as_str(self) -> &'static str {
        match self {
            KubectlVersion::V1_32 => "1.32",
            KubectlVersion::V1_33 => "1.33",
        }
    }

    /// Path of this version's kubectl binary (`$K8RS_KUBECTL_DIR` overrides the directory);
    /// panics with the reason when it is missing, so no test is skipped silently.
    pub fn binary(self) -> PathBuf {
        let dir = std::env::var_os("K8RS_KUBECTL_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_KUBECTL_DIR));
        let path = dir.join(format!("kubectl.{}", self.as_str()));
        assert!(
            path.is_file(),
            "kubectl {} is needed by this test but {} does not exist \
             (set K8RS_KUBECTL_DIR to the directory holding kubectl.{})",
            self.as_str(),
            path.display(),
            self.as_str()
        );
        path
    }
}

/// Locates the `k8rs` binary: `$K8RS_BIN`, else `k8rs` next to this test's build
/// profile directory, else `$CARGO_TARGET_DIR/debug/k8rs`, else the workspace `target/`.
pub fn k8rs_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("K8RS_BIN") {
        let bin = PathBuf::from(bin);
        assert!(bin.is_file(), "K8RS_BIN={} is not a file", bin.display());
        return bin;
    }
    let mut candidates = Vec::new();
    // Test binaries live in <target>/<profile>/deps/; the server binary in <target>/<profile>/.
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join("k8rs"));
        }
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(target).join("debug/k8rs"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/k8rs"));
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return found.clone();
    }
    panic!(
        "the k8rs binary was not found (looked at {}); run `cargo build -p k8rs` first, \
         or set K8RS_BIN",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// A running `k8rs server` with its own data dir; killed when dropped. If the test is
/// failing (panicking) at that moment, the server's log is printed.
pub struct TestServer {
    child: Child,
    port: u16,
    data_dir: TempDir,
    /// Holds the kubectl discovery cache (`--cache-dir`) and kubectl's `$HOME`.
    client_dir: TempDir,
    log_path: PathBuf,
    /// Extra `k8rs server` flags, kept for [`restart`](TestServer::restart).
    extra: Vec<String>,
    /// Extra environment of the server process, kept for restarts.
    env: Vec<(String, String)>,
    /// `k8rs server` or `k8rs up`.
    kind: Kind,
}

/// Which subcommand a [`TestServer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `k8rs server --bind-address 127.0.0.1`.
    Server,
    /// `k8rs up` (a whole node; needs root and containerd, see [`node::skip_reason`]).
    Up,
}

impl Kind {
    /// The subcommand and its fixed flags, before `--data-dir`.
    fn args(self, data_dir: &Path, port: u16) -> Vec<String> {
        let mut args = vec![
            match self {
                Kind::Server => "server".to_string(),
                Kind::Up => "up".to_string(),
            },
            "--data-dir".into(),
            data_dir.to_string_lossy().into_owned(),
        ];
        if self == Kind::Server {
            args.extend(["--bind-address".into(), "127.0.0.1".into()]);
        }
        args.extend(["--secure-port".into(), port.to_string()]);
        args
    }
}

impl TestServer {
    /// Starts a server and waits until it is ready; panics (with its log) if it is not.
    pub fn start() -> TestServer {
        Self::start_with_args(&[])
    }

    /// Like [`start`](TestServer::start) with extra `k8rs server` flags (e.g. `--store etcd`).
    pub fn start_with_args(extra: &[&str]) -> TestServer {
        Self::start_with_env(extra, &[])
    }

    /// Like [`start_with_args`](TestServer::start_with_args) with extra environment
    /// variables for the server process (e.g. `K8RS_NODE_MONITOR_GRACE_PERIOD`).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        Self::start_kind(Kind::Server, extra, env)
    }

    /// Starts `k8rs up` (API server, controllers, containerd, kubelet) on a temporary data
    /// dir holding the busybox and pause images, and waits until the API answers (not
    /// for the node: see [`wait_node_ready`](TestServer::wait_node_ready)). Dropping it
    /// stops it with SIGTERM, as a user would.
    ///
    /// Each gets a pod CIDR and bridge of its own (`10.42.N.0/24` on `k8rsN`, N from the
    /// test process), so suites running `k8rs up` at the same time do not hand out the
    /// same addresses on one bridge; see [`pod_cidr`](TestServer::pod_cidr).
    pub fn start_up(extra: &[&str]) -> TestServer {
        let n = std::process::id() % 250 + 1;
        let cidr = format!("10.42.{n}.0/24");
        let bridge = format!("k8rs{n}");
        let mut args = vec!["--pod-cidr", &cidr, "--cni-bridge", &bridge];
        // Upstream's default disk thresholds (nodefs 10%, imagefs 15%) put a shared CI
        // box's busy disk under DiskPressure (tainting the node and evicting the suite's
        // pods); suites keep the memory threshold unless they set their own.
        if !extra.contains(&"--eviction-hard") {
            args.extend(["--eviction-hard", "memory.available<100Mi"]);
        }
        args.extend_from_slice(extra);
        Self::start_kind(Kind::Up, &args, &[])
    }

    /// The `--pod-cidr` a [`start_up`](TestServer::start_up) node was given.
    pub fn pod_cidr(&self) -> Option<&str> {
        self.flag("--pod-cidr")
    }

    /// The `--cni-bridge` a [`start_up`](TestServer::start_up) node was given.
    pub fn cni_bridge(&self) -> Option<&str> {
        self.flag("--cni-bridge")
    }

    fn flag(&self, name: &str) -> Option<&str> {
        let at = self.extra.iter().position(|a| a == name)?;
        self.extra.get(at + 1).map(String::as_str)
    }

    fn start_kind(kind: Kind, extra: &[&str], env: &[(&str, &str)]) -> TestServer {
        let binary = k8rs_binary();
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(&binary, extra, env, kind) {
                Ok(server) => return server,
                // Another process may grab the port between our probe and the server's
                // bind; that shows as an early exit. A server that hangs is not retried.
                Err(StartFailure::ExitedEarly(failure)) => last_failure = failure,
                Err(StartFailure::NotReady(failure)) => {
                    panic!("k8rs server did not become ready: {failure}")
                }
            }
        }
        panic!("k8rs server did not become ready: {last_failure}");
    }

    fn try_start(
        binary: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        kind: Kind,
    ) -> Result<TestServer, StartFailure> {
        let data_dir = tempfile::Builder::new()
            .prefix("k8rs-e2e-data-")
            .tempdir()
            .map_err(|e| StartFailure::NotReady(format!("cannot create a data dir: {e}")))?;
        let client_dir = tempfile::Builder::new()
            .prefix("k8rs-e2e-kubectl-")
            .tempdir()
            .map_err(|e| {
                StartFailure::NotReady(format!("cannot create a kubectl cache dir: {e}"))
            })?;
        let log_path = client_dir.path().join("server.log");
        let log = File::create(&log_path)
            .map_err(|e| StartFailure::NotReady(format!("cannot create the log: {e}")))?;
        let log_for_stdout = log
            .try_clone()
            .map_err(|e| StartFailure::NotReady(format!("cannot clone the log: {e}")))?;
        let port = free_port();
        if kind == Kind::Up {
            node::build_images(&data_dir.path().join("agent/images"));
        }
        let child = Command::new(binary)
            .args(kind.args(data_dir.path(), port))
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .map_err(|e| StartFailure::NotReady(format!("cannot run {}: {e}", binary.display())))?;
        let mut server = TestServer {
            child,
            port,
            data_dir,
            client_dir,
            log_path,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            kind,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        match server.wait_ready() {
            Ok(()) => Ok(server),
            Err(reason) => {
                let report = format!("{reason}\n--- server log ---\n{}", server.log());
                if server.is_running() {
                    Err(StartFailure::NotReady(report))
                } else {
                    Err(StartFailure::ExitedEarly(report))
                }
            }
        }
    }

    /// Waits for `admin.kubeconfig`, then for `GET /readyz` (through kubectl) to succeed.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error = String::from("admin.kubeconfig was never written");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the server exited early ({status})"));
            }
            if self.kubeconfig().is_file() {
                let out = self.kubectl(KubectlVersion::V1_33, ["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return Ok(());
                }
                last_error = format!(
                    "GET /readyz failed: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "not ready after {}s: {last_error}",
            READY_TIMEOUT.as_secs()
        ))
    }

    /// The port the server listens on (HTTPS, 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's `--data-dir`.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The admin kubeconfig the server writes into its data dir.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.path().join("admin.kubeconfig")
    }

    /// A scratch directory for files a test writes (manifests, editor scripts).
    pub fn scratch_dir(&self) -> &Path {
        self.client_dir.path()
    }

    /// Everything the server has printed so far (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Kills the server (SIGKILL: nothing is flushed on purpose) and starts it again on the
    /// same data dir and port; panics with its log if it does not come back.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .expect("reopen the server log");
        let log_for_stdout = log.try_clone().expect("clone the server log");
        self.child = Command::new(k8rs_binary())
            .args(self.kind.args(self.data_dir.path(), self.port))
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .expect("restart k8rs server");
        if let Err(reason) = self.wait_ready() {
            panic!(
                "k8rs server did not come back after a restart: {reason}\n--- server log ---\n{}",
                self.log()
            );
        }
    }

    /// Stops the process as a user would (SIGTERM), waits for it to exit (killing it after
    /// 30 s) and returns its exit status. [`restart`](TestServer::restart) starts it again.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait for the killed server");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until node `name` reports `Ready=True`; panics with the server log if it
    /// does not within `timeout`.
    pub fn wait_node_ready(&self, name: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let jsonpath = r#"-o=jsonpath={.status.conditions[?(@.type=="Ready")].status}"#;
        loop {
            let out = self.kubectl(KubectlVersion::V1_33, ["get", "node", name, jsonpath]);
            if String::from_utf8_lossy(&out.stdout).trim() == "True" {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "node {name} not Ready after {timeout:?}: {}{}\n--- server log ---\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts another `k8rs` command against this server in the background (e.g.
    /// `hollow --nodes 10`); `--kubeconfig` with the admin kubeconfig is appended. The
    /// process is killed when the handle is dropped; its output goes to a log file.
    pub fn spawn_k8rs(&self, args: &[&str]) -> K8rsProcess {
        let kubeconfig = self.kubeconfig();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--kubeconfig", kubeconfig.to_str().unwrap()]);
        self.spawn_process(&all, false)
    }

    /// Starts `k8rs agent` (or another command with credentials of its own) with exactly
    /// `args`. Dropping the handle stops it with SIGTERM, as a user would, so it stops
    /// its containerd (SIGKILL would leave containerd running).
    pub fn spawn_agent(&self, args: &[&str]) -> K8rsProcess {
        self.spawn_process(args, true)
    }

    fn spawn_process(&self, args: &[&str], graceful: bool) -> K8rsProcess {
        static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log_path = self
            .client_dir
            .path()
            .join(format!("k8rs-{}-{n}.log", args.first().unwrap_or(&"cmd")));
        let log = File::create(&log_path).expect("cannot create the process log");
        let log_for_stdout = log.try_clone().expect("cannot clone the process log");
        let child = Command::new(k8rs_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run k8rs {}: {e}", args.join(" ")));
        K8rsProcess {
            child,
            description: format!("k8rs {}", args.join(" ")),
            log_path,
            graceful,
        }
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A kubectl command of the given version, set up for this server only: its
    /// kubeconfig, a cache dir of its own and a `$HOME` that is not the user's.
    pub fn kubectl_command(&self, version: KubectlVersion) -> Command {
        let mut cmd = Command::new(version.binary());
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(self.client_dir.path().join("kube-cache"))
            .env_remove("KUBECONFIG")
            .env("HOME", self.client_dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs kubectl with `args` and returns its output whatever the exit code.
    pub fn kubectl<I, S>(&self, version: KubectlVersion, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.with_version(version).cmd(args).output()
    }

    /// Runs kubectl, asserts that it succeeded and returns its stdout.
    pub fn kubectl_ok<I, S>(&self, version: KubectlVersion, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.with_version(version).cmd(args).ok()
    }

    /// Runs kubectl, asserts that it failed and returns its stderr.
    pub fn kubectl_err<I, S>(&self, version: KubectlVersion, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.with_version(version).cmd(args).err()
    }

    /// A handle that runs one kubectl version against this server.
    pub fn with_version(&self, version: KubectlVersion) -> Kubectl<'_> {
        Kubectl {
            server: self,
            version,
        }
    }
}

extern "C" {
    fn kill(pid: i32, signal: i32) -> i32;
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.kind == Kind::Up {
            // SIGTERM: `k8rs up` stops containerd on its way out; SIGKILL would leave it.
            self.stop();
            // The bridge outlives `k8rs up` (as cni0 does on a real node); a test's own
            // bridge goes with the test.
            if let Some(bridge) = self.cni_bridge() {
                let _ = Command::new("ip").args(["link", "delete", bridge]).output();
            }
            // Memory-backed volumes (secrets, projected tokens) of pods left running.
            node::unmount_under(self.data_dir());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- k8rs server log (port {}) ---\n{}--- end of server log ---",
                self.port,
                self.log()
            );
        }
    }
}

/// A `k8rs` process started by [`TestServer::spawn_k8rs`]; killed when dropped, its
/// log printed if the test is failing.
pub struct K8rsProcess {
    child: Child,
    description: String,
    log_path: PathBuf,
    /// Stopped with SIGTERM (then SIGKILL after 30 s) when dropped.
    graceful: bool,
}

impl K8rsProcess {
    /// Everything it has printed so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// Kills it (SIGKILL, like a crashed node) and waits for it to end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops it with SIGTERM and waits (SIGKILL after 30 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait for the killed process");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for K8rsProcess {
    fn drop(&mut self) {
        if self.graceful {
            self.stop();
        } else {
            self.kill();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ---\n{}--- end of log ---",
                self.description,
                self.log()
            );
        }
    }
}

/// Polls `check` every 250 ms until it returns `Ok`, or panics after `timeout` naming
/// `what` and the last `Err` it gave.
pub fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!(
                    "timed out after {}s waiting for {what}; last seen: {last}",
                    timeout.as_secs()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Why a server start attempt failed.
enum StartFailure {
    /// The process ended before it was ready (e.g. its port was taken meanwhile).
    ExitedEarly(String),
    /// The process could not be started, or runs but never became ready.
    NotReady(String),
}

/// Asks the kernel for a port that is free right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot bind 127.0.0.1:0 to pick a free port")
}

/// One kubectl version bound to one server: what kubectl tests receive.
#[derive(Clone, Copy)]
pub struct Kubectl<'s> {
    server: &'s TestServer,
    version: KubectlVersion,
}

impl<'s> Kubectl<'s> {
    /// The server this handle talks to.
    pub fn server(&self) -> &'s TestServer {
        self.server
    }

    /// The kubectl version this handle runs.
    pub fn version(&self) -> KubectlVersion {
        self.version
    }

    /// Prepares `kubectl ARGS`; add stdin or environment before running it.
    pub fn cmd<I, S>(&self, args: I) -> Invocation<'s>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Invocation {
            server: self.server,
            version: self.version,
            args: args
                .into_iter()
                .map(|a| a.as_ref().to_string_lossy().into_owned())
                .collect(),
            stdin: None,
            env: Vec::new(),
        }
    }

    /// Runs `kubectl ARGS`, asserts success and returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).ok()
    }

    /// Runs `kubectl ARGS`, asserts failure and returns stderr.
    pub fn err<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).err()
    }

    /// Runs `kubectl ARGS -f -` with `manifest` on stdin, asserts success, returns stdout.
    pub fn ok_stdin<I, S>(&self, args: I, manifest: &str) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).stdin(manifest).ok()
    }

    /// Runs `kubectl ARGS` with `manifest` on stdin, asserts failure, returns stderr.
    pub fn err_stdin<I, S>(&self, args: I, manifest: &str) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd(args).stdin(manifest).err()
    }

    /// Reads one object as JSON (`kubectl get RESOURCE NAME -o json` plus `extra` args).
    pub fn get_json(&self, resource: &str, name: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["get", resource, name, "-o", "json"];
        args.extend_from_slice(extra);
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("`kubectl get {resource} {name} -o json`: {e}\n{out}"))
    }

    /// Asserts the server still answers (after bad input): `get --raw /readyz` is `ok`.
    pub fn assert_still_serving(&self) {
        let out = self.ok(["get", "--raw", "/readyz"]);
        assert_eq!(out.trim(), "ok", "/readyz after bad input");
    }

    /// Starts `kubectl ARGS` in the background with stdout and stderr going to files.
    pub fn spawn<I, S>(&self, args: I) -> Background
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let dir = tempfile::Builder::new()
            .prefix("k8rs-e2e-bg-")
            .tempdir_in(self.server.scratch_dir())
            .expect("cannot create a directory for a background kubectl");
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let args: Vec<String> = args
            .into_iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let child = self
            .server
            .kubectl_command(self.version)
            .args(&args)
            .stdout(File::create(&stdout_path).expect("cannot create stdout file"))
            .stderr(File::create(&stderr_path).expect("cannot create stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start kubectl {}: {e}", args.join(" ")));
        Background {
            child,
            description: format!("kubectl.{} {}", self.version.as_str(), args.join(" ")),
            stdout_path,
            stderr_path,
            _dir: dir,
        }
    }

    /// Writes `content` to a file in the scratch dir and returns its path.
    pub fn write_file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.server.scratch_dir().join(name);
        std::fs::write(&path, content)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Writes an executable shell script (`#!/bin/sh` + `body`) for use as `$EDITOR`.
    pub fn write_script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write_file(name, format!("#!/bin/sh\nset -e\n{body}\n").as_bytes());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("cannot make the script executable");
        path
    }
}

/// A prepared kubectl run (arguments, optional stdin and environment).
pub struct Invocation<'s> {
    server: &'s TestServer,
    version: KubectlVersion,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: Vec<(String, String)>,
}

impl Invocation<'_> {
    /// Feeds `input` to kubectl's stdin (for `-f -`).
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    /// Sets an environment variable for this run (e.g. `EDITOR`).
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Self {
        self.env.push((
            key.to_string(),
            value.as_ref().to_string_lossy().into_owned(),
        ));
        self
    }

    /// Runs kubectl and returns its output whatever the exit code.
    pub fn output(self) -> Output {
        let mut cmd = self.server.kubectl_command(self.version);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.describe()));
        if let Some(input) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // A writer thread so a large input cannot deadlock against kubectl's output.
            let input = input.clone();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.describe()))
    }

    /// Runs kubectl, asserts that it exited 0 and returns stdout.
    pub fn ok(self) -> String {
        let description = self.describe();
        let out = self.output();
        assert!(
            out.status.success(),
            "expected success: {description}\n{}",
            render(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts that it failed and returns stderr.
    pub fn err(self) -> String {
        let description = self.describe();
        let out = self.output();
        assert!(
            !out.status.success(),
            "expected failure: {description}\n{}",
            render(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn describe(&self) -> String {
        let env: String = self.env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        format!(
            "{env}kubectl.{} {}",
            self.version.as_str(),
            self.args.join(" ")
        )
    }
}

/// What an [`eventually`] check returns: `Some`/`Ok` when done; `None` or `Err(last
/// observation)` to keep polling.
pub trait Observation {
    /// The value a finished check yields.
    type Output;
    /// `Ok` when done, else the last observation for the timeout message.
    fn into_result(self) -> Result<Self::Output, String>;
}

impl<T> Observation for Option<T> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "not yet".to_string())
    }
}

impl<T> Observation for Result<T, String> {
    type Output = T;
    fn into_result(self) -> Result<T, String> {
        self
    }
}

/// Polls `check` every 100 ms until it returns `Some`/`Ok`, for what controllers do in
/// the background; panics naming `what` (and the last observation) after `timeout`.
#[track_caller]
pub fn eventually<O: Observation>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> O,
) -> O::Output {
    let deadline = Instant::now() + timeout;
    loop {
        match check().into_result() {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!(
                    "timed out after {}s waiting for {what}; last seen: {last}",
                    timeout.as_secs()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Exit status, stdout and stderr of a run, for assertion messages.
pub fn render(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A kubectl process running in the background (e.g. `get -w`); killed when dropped.
pub struct Background {
    child: Child,
    description: String,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    _dir: TempDir,
}

impl Background {
    /// What it has printed to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// What it has printed to stderr so far.
    pub fn stderr(&self) -> String {
        read_lossy(&self.stderr_path)
    }

    /// Waits (at most `timeout`) until stdout satisfies `done`; panics with the output if not.
    pub fn wait_for_stdout(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if done(&out) {
                return out;
            }
            let exited = matches!(self.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                // Re-read once: the process may have written its last lines just now.
                let out = self.stdout();
                if done(&out) {
                    return out;
                }
                panic!(
                    "{} did not print what was expected within {:?} (exited: {exited})\n\
                     --- stdout ---\n{out}--- stderr ---\n{}",
                    self.description,
                    timeout,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most `timeout`) for the process to exit by itself and returns its output.
    pub fn wait_exit(mut self, timeout: Duration) -> (std::process::ExitStatus, String, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.stdout(), self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "{} still runs after {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
                self.description,
                timeout,
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Marks every pod matching `selector` (a label selector, `app=web`) that is not yet ready
/// as a kubelet would report a started container: phase `Running`, conditions
/// `Ready`/`ContainersReady`/`PodScheduled` true, and a running, ready status per container.
/// Stands in for a node where the suite has none. Pods being deleted are left alone.
/// Returns the names of the pods it marked.
pub fn mark_pods_ready(k: &Kubectl<'_>, selector: &str) -> Vec<String> {
    let out = k.ok(["get", "pods", "-l", selector, "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("`kubectl get pods -l {selector} -o json`: {e}\n{out}"));
    // Pods with the same containers get the same patch: one kubectl run per group.
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for pod in list["items"].as_array().into_iter().flatten() {
        if !pod["metadata"]["deletionTimestamp"].is_null() {
            continue;
        }
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready {
            continue;
        }
        let now = rfc3339_now();
        let containers: Vec<serde_json::Value> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                serde_json::json!({
                    "name": c["name"], "image": c["image"], "imageID": "",
                    "ready": true, "started": true, "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                })
            })
            .collect();
        let condition =
            |t: &str| serde_json::json!({"type": t, "status": "True", "lastTransitionTime": now});
        let patch = serde_json::json!({"status": {
            "phase": "Running",
            "conditions": [condition("PodScheduled"), condition("Initialized"), condition("ContainersReady"), condition("Ready")],
            "containerStatuses": containers,
            "startTime": now,
        }});
        let name = pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        groups.entry(patch.to_string()).or_default().push(name);
    }
    let mut marked = Vec::new();
    for (patch, names) in groups {
        let mut args = vec!["patch".to_string(), "pod".to_string()];
        args.extend(names.iter().cloned());
        args.extend(["--subresource=status", "--type=merge", "-p"].map(String::from));
        args.push(patch);
        // A pod deleted meanwhile (a scale-down) makes kubectl fail for that pod only.
        let out = k.cmd(&args).output();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("NotFound") || stderr.contains("not found"),
            "marking pods ready failed\n{}",
            render(&out)
        );
        marked.extend(names);
    }
    marked
}

/// The current UTC time as RFC 3339 with whole seconds (`2026-01-02T03:04:05Z`).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Starts a fresh server and runs `test` with the given kubectl version against it.
pub fn run_with_kubectl(version: KubectlVersion, test: impl FnOnce(&Kubectl<'_>)) {
    // Fail (not skip) up front when this kubectl is missing.
    version.binary();
    let server = TestServer::start();
    test(&server.with_version(version));
}

/// Asserts that `haystack` contains `needle`, showing both on failure.
#[track_caller]
pub fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected output to contain:\n  {needle}\n--- actual output ---\n{haystack}"
    );
}

/// Asserts that `haystack` does not contain `needle`, showing both on failure.
#[track_caller]
pub fn assert_not_contains(haystack: &str, needle: &str) {
    assert!(
        !haystack.contains(needle),
        "expected output NOT to contain:\n  {needle}\n--- actual output ---\n{haystack}"
    );
}

/// Splits table output into rows of whitespace-separated cells (header first).
pub fn table_rows(output: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// The values of the first column of a table (header excluded).
pub fn first_column(output: &str) -> Vec<String> {
    table_rows(output)
        .into_iter()
        .skip(1)
        .filter_map(|row| row.into_iter().next())
        .collect()
}

/// Defines kubectl tests that each run against every [`KubectlVersion`], each version in
/// its own `#[test]` with a fresh server: `fn name(k) { … }` becomes `name::kubectl_1_32`
/// and `name::kubectl_1_33`, where `k: &Kubectl`.
#[macro_export]
macro_rules! kubectl_tests {
    ($( $(#[doc = $doc:expr])* fn $name:ident($k:ident) $body:block )*) => {
        $(
            $(#[doc = $doc])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                fn body($k: &$crate::Kubectl<'_>) $body

                #[test]
                fn kubectl_1_32() {
                    $crate::run_with_kubectl($crate::KubectlVersion::V1_32, body);
                }

                #[test]
                fn kubectl_1_33() {
                    $crate::run_with_kubectl($crate::KubectlVersion::V1_33, body);
                }
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_split_cells_and_skip_blank_lines() {
        let out = "NAME   READY\nweb    1/1\n\napi    0/1\n";
        assert_eq!(first_column(out), vec!["web", "api"]);
        assert_eq!(table_rows(out)[0], vec!["NAME", "READY"]);
    }

    #[test]
    fn rfc3339_now_has_the_right_shape() {
        let now = rfc3339_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(
            now.starts_with("20") && now.ends_with('Z') && &now[10..11] == "T",
            "{now}"
        );
    }

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert!(port > 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the picked port is free");
    }

    #[test]
    fn kubectl_binary_names_carry_the_minor_version() {
        assert_eq!(KubectlVersion::V1_32.as_str(), "1.32");
        assert_eq!(KubectlVersion::V1_33.as_str(), "1.33");
    }
}
