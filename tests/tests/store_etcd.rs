//! `k8rs server --store etcd` against a real etcd (Debian package `etcd-server`), driven by
//! real kubectl: writes, reads, watches, and a server restart that finds its objects in etcd.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8rs_e2e::{assert_contains, KubectlVersion, TestServer};

/// A single-member etcd on free loopback ports, killed when dropped.
struct Etcd {
    child: Child,
    client_url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn start_etcd() -> Etcd {
    let binary = std::env::var("K8RS_ETCD").unwrap_or_else(|_| "etcd".into());
    let installed = Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed,
        "`{binary}` is not installed: install the Debian package etcd-server \
         (apt-get install -y etcd-server; tests/run does), or set K8RS_ETCD"
    );
    let dir = tempfile::tempdir().expect("etcd dir");
    let client_url = format!("http://127.0.0.1:{}", free_port());
    let peer_url = format!("http://127.0.0.1:{}", free_port());
    let child = Command::new(binary)
        .arg("--name=e2e")
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=e2e={peer_url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd");
    // Ready once its client port accepts connections.
    let addr = client_url.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "etcd did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Etcd {
        child,
        client_url,
        _dir: dir,
    }
}

fn on_etcd(version: KubectlVersion) {
    let etcd = start_etcd();
    let args = [
        "--store",
        "etcd",
        "--etcd-servers",
        etcd.client_url.as_str(),
    ];
    let server = TestServer::start_with_args(&args);
    let k = server.with_version(version);
    assert_contains(&k.ok(["get", "namespaces"]), "kube-system");
    assert_contains(
        &k.ok(["create", "namespace", "team"]),
        "namespace/team created",
    );
    assert_contains(
        &k.ok([
            "-n",
            "team",
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=2",
        ]),
        "deployment.apps/web created",
    );
    let mut watch = k.spawn([
        "-n",
        "team",
        "get",
        "deployments",
        "-w",
        "--output-watch-events",
    ]);
    watch.wait_for_stdout(Duration::from_secs(15), |out| out.contains("ADDED"));
    assert_contains(
        &k.ok(["-n", "team", "scale", "deployment", "web", "--replicas=3"]),
        "scaled",
    );
    watch.wait_for_stdout(Duration::from_secs(15), |out| out.contains("MODIFIED"));
    let replicas = k.ok([
        "-n",
        "team",
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas.trim(), "3");
    drop(watch);
    drop(server);

    // A new server on the same etcd (fresh data dir: only the objects live in etcd).
    let server = TestServer::start_with_args(&args);
    let k = server.with_version(version);
    let replicas = k.ok([
        "-n",
        "team",
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(
        replicas.trim(),
        "3",
        "objects survive in etcd across API servers"
    );
    assert_contains(
        &k.ok(["-n", "team", "delete", "deployment", "web"]),
        "deleted",
    );
}

#[test]
fn store_etcd_kubectl_1_32() {
    on_etcd(KubectlVersion::V1_32);
}

#[test]
fn store_etcd_kubectl_1_33() {
    on_etcd(KubectlVersion::V1_33);
}
