//! `k8rs server --store etcd` against a real etcd (Debian package `etcd-server`), driven by
//! real kubectl: writes, reads, watches, and a server restart that finds its objects in etcd.

use std::time::Duration;

use k8rs_e2e::{assert_contains, KubectlVersion, TestServer};
use k8rs_store::testing::etcd::Etcd;

fn on_etcd(version: KubectlVersion) {
    let etcd = Etcd::start();
    let args = ["--store", "etcd", "--etcd-servers", etcd.client_url()];
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
