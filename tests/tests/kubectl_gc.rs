//! The garbage collector: `kubectl delete --cascade=background|foreground|orphan` on an
//! owner whose dependents carry hand-written ownerReferences.

mod common;

use std::time::Duration;

use common::jsonpath;
use k8rs_e2e::{assert_contains, eventually, kubectl_tests, Kubectl};

const WAIT: Duration = Duration::from_secs(30);

/// A ReplicaSet with no replicas (so a ReplicaSet controller leaves it alone); returns
/// its uid.
fn create_owner(k: &Kubectl<'_>, name: &str) -> String {
    let manifest = format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\nspec:\n  replicas: 0\n  \
         selector:\n    matchLabels:\n      owner: {name}\n  template:\n    metadata:\n      labels:\n        \
         owner: {name}\n    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n"
    );
    k.ok_stdin(["create", "-f", "-"], &manifest);
    jsonpath(k, "rs", name, "{.metadata.uid}")
}

/// An ownerReferences block naming the ReplicaSet `owner` (not as controller, so a
/// ReplicaSet controller never adopts or releases the dependent).
fn owner_refs(owner: &str, uid: &str, block: bool) -> String {
    format!(
        "  ownerReferences:\n  - apiVersion: apps/v1\n    kind: ReplicaSet\n    name: {owner}\n    uid: {uid}\n    \
         blockOwnerDeletion: {block}\n"
    )
}

/// A ConfigMap owned by `owner`, with optional finalizers.
fn create_owned_configmap(
    k: &Kubectl<'_>,
    name: &str,
    owner: &str,
    uid: &str,
    block: bool,
    finalizers: &[&str],
) {
    let finalizers: String = if finalizers.is_empty() {
        String::new()
    } else {
        format!(
            "  finalizers:\n{}",
            finalizers
                .iter()
                .map(|f| format!("  - {f}\n"))
                .collect::<String>()
        )
    };
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{}{finalizers}data:\n  k: v\n",
        owner_refs(owner, uid, block)
    );
    k.ok_stdin(["create", "-f", "-"], &manifest);
}

/// A pod owned by `owner`.
fn create_owned_pod(k: &Kubectl<'_>, name: &str, owner: &str, uid: &str) {
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n{}spec:\n  containers:\n  - name: main\n    image: nginx:1.27\n",
        owner_refs(owner, uid, true)
    );
    k.ok_stdin(["create", "-f", "-"], &manifest);
}

/// Waits until `kubectl get RESOURCE NAME` says NotFound.
fn wait_gone(k: &Kubectl<'_>, resource: &str, name: &str) {
    eventually(WAIT, &format!("{resource}/{name} to be deleted"), || {
        let out = k.cmd(["get", resource, name, "-o", "name"]).output();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() && stderr.contains("NotFound") {
            Ok(())
        } else {
            Err(format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)))
        }
    });
}

kubectl_tests! {
    /// Background (kubectl's default): the owner goes at once, then the collector
    /// deletes its dependents; an object with another, living owner only loses the
    /// reference to the dead one.
    fn background_deletes_dependents_after_the_owner(k) {
        let uid = create_owner(k, "bg");
        let other = create_owner(k, "keeper");
        create_owned_configmap(k, "bg-cm", "bg", &uid, false, &[]);
        create_owned_pod(k, "bg-pod", "bg", &uid);
        let two_owners = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n{}  - apiVersion: apps/v1\n    kind: ReplicaSet\n    name: keeper\n    uid: {other}\ndata:\n  k: v\n",
            owner_refs("bg", &uid, false)
        );
        k.ok_stdin(["create", "-f", "-"], &two_owners);

        let out = k.ok(["delete", "rs", "bg", "--cascade=background"]);
        assert_contains(&out, "replicaset.apps \"bg\" deleted");
        wait_gone(k, "configmap", "bg-cm");
        wait_gone(k, "pod", "bg-pod");
        eventually(WAIT, "the dead owner's reference to be dropped", || {
            let owners = jsonpath(k, "configmap", "shared", "{.metadata.ownerReferences[*].name}");
            if owners == "keeper" { Ok(()) } else { Err(owners) }
        });
        // A dependent whose owner never existed is collected too.
        create_owned_configmap(k, "orphaned-at-birth", "ghost", "0b5e6a3c-0000-4000-8000-000000000000", false, &[]);
        wait_gone(k, "configmap", "orphaned-at-birth");
    }

    /// Foreground: the owner stays (deletionTimestamp, `foregroundDeletion`) until every
    /// dependent that blocks it is gone, then disappears.
    fn foreground_keeps_the_owner_until_dependents_are_gone(k) {
        let uid = create_owner(k, "fg");
        create_owned_configmap(k, "fg-held", "fg", &uid, true, &["example.com/hold"]);
        create_owned_pod(k, "fg-pod", "fg", &uid);

        k.ok(["delete", "rs", "fg", "--cascade=foreground", "--wait=false"]);
        wait_gone(k, "pod", "fg-pod");
        eventually(WAIT, "the held dependent to be marked for deletion", || {
            let ts = jsonpath(k, "configmap", "fg-held", "{.metadata.deletionTimestamp}");
            if ts.is_empty() { Err("no deletionTimestamp".into()) } else { Ok(()) }
        });
        let owner = k.get_json("rs", "fg", &[]);
        assert!(owner["metadata"]["deletionTimestamp"].is_string(), "{owner}");
        assert_eq!(owner["metadata"]["finalizers"], serde_json::json!(["foregroundDeletion"]));
        // Still there a little later: it waits for the blocking dependent.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(jsonpath(k, "rs", "fg", "{.metadata.finalizers[0]}"), "foregroundDeletion");

        k.ok(["patch", "configmap", "fg-held", "--type=merge", "-p", r#"{"metadata":{"finalizers":null}}"#]);
        wait_gone(k, "configmap", "fg-held");
        wait_gone(k, "rs", "fg");

        // kubectl waits for a foreground deletion to finish.
        let uid = create_owner(k, "fg2");
        create_owned_configmap(k, "fg2-cm", "fg2", &uid, true, &[]);
        let out = k.ok(["delete", "rs", "fg2", "--cascade=foreground", "--timeout=30s"]);
        assert_contains(&out, "replicaset.apps \"fg2\" deleted");
        wait_gone(k, "rs", "fg2");
        wait_gone(k, "configmap", "fg2-cm");
    }

    /// Orphan: the owner goes, dependents stay without the reference to it.
    fn orphan_leaves_dependents_without_the_reference(k) {
        let uid = create_owner(k, "or");
        create_owned_configmap(k, "or-cm", "or", &uid, true, &[]);
        create_owned_pod(k, "or-pod", "or", &uid);

        let out = k.ok(["delete", "rs", "or", "--cascade=orphan", "--timeout=30s"]);
        assert_contains(&out, "replicaset.apps \"or\" deleted");
        wait_gone(k, "rs", "or");
        for (resource, name) in [("configmap", "or-cm"), ("pod", "or-pod")] {
            let obj = k.get_json(resource, name, &[]);
            assert!(obj["metadata"]["deletionTimestamp"].is_null(), "{obj}");
            assert!(obj["metadata"]["ownerReferences"].is_null(), "{resource}/{name}: {obj}");
        }
        // And they stay.
        std::thread::sleep(Duration::from_secs(1));
        k.ok(["get", "configmap", "or-cm"]);
        k.ok(["get", "pod", "or-pod"]);
    }

    /// A cycle of owners deleted in the foreground does not deadlock: every member goes.
    fn foreground_deletion_unwinds_a_dependency_cycle(k) {
        for name in ["c1", "c2", "c3"] {
            k.ok(["create", "configmap", name, "--from-literal=k=v"]);
        }
        let uid = |name: &str| jsonpath(k, "configmap", name, "{.metadata.uid}");
        // c1 is owned by c3, c2 by c1, c3 by c2, all blocking their owner's deletion.
        for (dependent, owner) in [("c1", "c3"), ("c2", "c1"), ("c3", "c2")] {
            let patch = serde_json::json!({"metadata": {"ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid(owner),
                "blockOwnerDeletion": true,
            }]}});
            k.ok(["patch", "configmap", dependent, "--type=merge", "-p", &patch.to_string()]);
        }
        k.ok(["delete", "configmap", "c1", "--cascade=foreground", "--wait=false"]);
        for name in ["c1", "c2", "c3"] {
            wait_gone(k, "configmap", name);
        }
    }

    /// A Deployment with its ReplicaSet and pods (made by the workload controllers):
    /// `--cascade=orphan` leaves the ReplicaSet and pods ownerless; `--cascade=foreground`
    /// on a second one returns once its ReplicaSet and pods are gone.
    fn deployment_cascades(k) {
        let rs_of = |deploy: &str| -> String {
            eventually(WAIT, &format!("{deploy}'s ReplicaSet and pods"), || {
                let rs = k.ok(["get", "rs", "-l", &format!("app={deploy}"), "-o", "jsonpath={.items[*].metadata.name}"]);
                let pods = k.ok(["get", "pods", "-l", &format!("app={deploy}"), "-o", "name"]);
                if !rs.is_empty() && pods.lines().count() == 2 { Ok(rs) } else { Err(format!("{rs} / {pods}")) }
            })
        };
        k.ok(["create", "deployment", "kept", "--image=nginx:1.27", "--replicas=2"]);
        let rs = rs_of("kept");
        k.ok(["delete", "deployment", "kept", "--cascade=orphan", "--timeout=30s"]);
        wait_gone(k, "deployment", "kept");
        assert_eq!(jsonpath(k, "rs", &rs, "{.metadata.ownerReferences}"), "");
        assert_eq!(k.ok(["get", "pods", "-l", "app=kept", "-o", "name"]).lines().count(), 2);

        k.ok(["create", "deployment", "gone", "--image=nginx:1.27", "--replicas=2"]);
        let rs = rs_of("gone");
        let out = k.ok(["delete", "deployment", "gone", "--cascade=foreground", "--timeout=60s"]);
        assert_contains(&out, "deployment.apps \"gone\" deleted");
        wait_gone(k, "deployment", "gone");
        wait_gone(k, "rs", &rs);
        eventually(WAIT, "gone's pods to be deleted", || {
            let pods = k.ok(["get", "pods", "-l", "app=gone", "-o", "name"]);
            if pods.trim().is_empty() { Ok(()) } else { Err(pods) }
        });
    }
}
