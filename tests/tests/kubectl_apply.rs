//! Writing objects from manifests: create, apply (client- and server-side), replace,
//! edit, diff and server-side dry runs.

mod common;

use common::{deployment, jsonpath, WEB_STACK};
use k8rs_e2e::{assert_contains, kubectl_tests, render};

const STALE_CONFLICT: &str = "Operation cannot be fulfilled on deployments.apps \"web\": the \
    object has been modified; please apply your changes to the latest version and try again";

kubectl_tests! {
    /// `create -f` of a multi-document stream creates each object once.
    fn create_multi_document(k) {
        let out = k.ok_stdin(["create", "-f", "-"], WEB_STACK);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["configmap/web-config created", "deployment.apps/web created", "service/web created"]
        );
        assert_eq!(jsonpath(k, "configmap", "web-config", "{.data.greeting}"), "hello");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "1");

        let err = k.err_stdin(["create", "-f", "-"], WEB_STACK);
        assert_contains(
            &err,
            "Error from server (AlreadyExists): error when creating \"STDIN\": \
             configmaps \"web-config\" already exists",
        );
        assert_contains(&err, "deployments.apps \"web\" already exists");
    }

    /// Client-side apply: created, then unchanged, then configured when the manifest changes.
    fn apply_created_unchanged_configured(k) {
        let out = k.ok_stdin(["apply", "-f", "-"], WEB_STACK);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            ["configmap/web-config created", "deployment.apps/web created", "service/web created"]
        );
        let last_applied = jsonpath(
            k,
            "deployment",
            "web",
            "{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
        );
        assert_contains(&last_applied, "\"replicas\":1");

        let out = k.ok_stdin(["apply", "-f", "-"], WEB_STACK);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "configmap/web-config unchanged",
                "deployment.apps/web unchanged",
                "service/web unchanged"
            ]
        );

        let changed = WEB_STACK.replace("replicas: 1", "replicas: 3");
        let out = k.ok_stdin(["apply", "-f", "-"], &changed);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "configmap/web-config unchanged",
                "deployment.apps/web configured",
                "service/web unchanged"
            ]
        );
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "3");

        // A field dropped from the manifest is removed from the live object.
        let without_greeting = changed.replace("  greeting: hello\n", "  other: value\n");
        let out = k.ok_stdin(["apply", "-f", "-"], &without_greeting);
        assert_contains(&out, "configmap/web-config configured");
        let data = jsonpath(k, "configmap", "web-config", "{.data}");
        assert_eq!(data, r#"{"other":"value"}"#);
    }

    /// Server-side apply tracks field managers, reports conflicts and honours --force-conflicts.
    fn apply_server_side_conflicts(k) {
        let out = k.ok_stdin(
            ["apply", "--server-side", "--field-manager=alice", "-f", "-"],
            &deployment(1),
        );
        assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
        let managers = jsonpath(
            k,
            "deployment",
            "web",
            "{.metadata.managedFields[*].manager}",
        );
        assert!(managers.split(' ').any(|m| m == "alice"), "managers: {managers}");

        // The same manager re-applying the same manifest changes nothing.
        let out = k.ok_stdin(
            ["apply", "--server-side", "--field-manager=alice", "-f", "-"],
            &deployment(1),
        );
        assert_eq!(out.trim(), "deployment.apps/web serverside-applied");

        let err = k.err_stdin(
            ["apply", "--server-side", "--field-manager=bob", "-f", "-"],
            &deployment(2),
        );
        assert_contains(
            &err,
            "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas",
        );
        assert_contains(&err, "Please review the fields above--they currently have other managers.");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "1");

        let out = k.ok_stdin(
            ["apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-"],
            &deployment(2),
        );
        assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "2");
        let managers = jsonpath(
            k,
            "deployment",
            "web",
            "{.metadata.managedFields[*].manager}",
        );
        assert!(managers.split(' ').any(|m| m == "bob"), "managers: {managers}");
    }

    /// `replace` writes the whole object; a stale resourceVersion is a conflict.
    fn replace_and_stale_conflict(k) {
        k.ok_stdin(["create", "-f", "-"], &deployment(1));
        // The deployment controller writes the status and revision right after the create;
        // once it reports its one (never ready) pod it leaves the object alone.
        k8rs_e2e::eventually(std::time::Duration::from_secs(20), "the controller to settle", || {
            let state = jsonpath(k, "deployment", "web", "{.status.updatedReplicas} {.status.conditions[?(@.type==\"Progressing\")].reason}");
            (state == "1 ReplicaSetUpdated").then_some(())
        });
        let stale = k.ok(["get", "deployment", "web", "-o", "json"]);

        let fresh = stale.replace("\"replicas\": 1", "\"replicas\": 5");
        let out = k.ok_stdin(["replace", "-f", "-"], &fresh);
        assert_eq!(out.trim(), "deployment.apps/web replaced");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "5");

        // `stale` still carries the first resourceVersion.
        let err = k.err_stdin(["replace", "-f", "-"], &stale);
        assert_contains(
            &err,
            &format!("Error from server (Conflict): error when replacing \"STDIN\": {STALE_CONFLICT}"),
        );
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "5");

        let err = k.err_stdin(["replace", "-f", "-"], &common::pod("ghost", "busybox", &[]));
        assert_contains(&err, "Error from server (NotFound): error when replacing \"STDIN\": pods \"ghost\" not found");
    }

    /// `edit` runs $EDITOR on the object's YAML and writes back what it saved.
    fn edit_with_editor_script(k) {
        k.ok_stdin(["create", "-f", "-"], &deployment(1));
        let editor = k.write_script(
            "bump-replicas.sh",
            "sed -i 's/replicas: 1$/replicas: 4/' \"$1\"",
        );
        let out = k
            .cmd(["edit", "deployment", "web"])
            .env("EDITOR", &editor)
            .ok();
        assert_eq!(out.trim(), "deployment.apps/web edited");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "4");

        // An editor that changes nothing cancels the edit.
        let noop = k.write_script("noop.sh", "true");
        let out = k.cmd(["edit", "deployment", "web"]).env("EDITOR", &noop).output();
        assert!(out.status.success(), "{}", render(&out));
        assert_contains(&String::from_utf8_lossy(&out.stderr), "Edit cancelled, no changes made.");

        // An edit that breaks validation is refused and nothing changes. kubectl reopens
        // the editor with the server's reasons as comments; the script keeps what it saw.
        let seen = k.server().scratch_dir().join("seen.yaml");
        let breaker = k.write_script(
            "break.sh",
            &format!(
                "cp \"$1\" '{}'\nsed -i 's/replicas: 4$/replicas: -1/' \"$1\"",
                seen.display()
            ),
        );
        let out = k.cmd(["edit", "deployment", "web"]).env("EDITOR", &breaker).output();
        assert!(
            !out.status.success(),
            "an edit setting replicas to -1 must be refused\n{}",
            render(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_contains(&stderr, "deployments.apps \"web\" is invalid");
        let reasons = format!("{stderr}{}", std::fs::read_to_string(&seen).unwrap_or_default());
        assert_contains(
            &reasons,
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        );
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "4");
    }

    /// `diff` shows what apply would change (exit 1) and nothing when in sync (exit 0).
    fn diff_against_live(k) {
        k.ok_stdin(["apply", "-f", "-"], &deployment(1));

        let out = k.cmd(["diff", "-f", "-"]).stdin(deployment(1)).output();
        assert_eq!(out.status.code(), Some(0), "{}", render(&out));
        assert!(out.stdout.is_empty(), "{}", render(&out));

        let out = k.cmd(["diff", "-f", "-"]).stdin(deployment(3)).output();
        assert_eq!(out.status.code(), Some(1), "{}", render(&out));
        let diff = String::from_utf8_lossy(&out.stdout);
        assert_contains(&diff, "-  replicas: 1");
        assert_contains(&diff, "+  replicas: 3");
        // diff is a dry run: nothing changed.
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "1");
    }

    /// `--dry-run=server` runs the request through the server without persisting it.
    fn dry_run_server(k) {
        let out = k.ok_stdin(["create", "--dry-run=server", "-f", "-"], &deployment(1));
        assert_eq!(out.trim(), "deployment.apps/web created (server dry run)");
        let err = k.err(["get", "deployment", "web"]);
        assert_contains(&err, "Error from server (NotFound): deployments.apps \"web\" not found");

        // The dry-run answer is the object the server would have stored (defaults filled in).
        let out = k.ok_stdin(
            ["apply", "--dry-run=server", "-o", "jsonpath={.spec.strategy.type}", "-f", "-"],
            &deployment(1),
        );
        assert_eq!(out, "RollingUpdate");

        k.ok_stdin(["create", "-f", "-"], &deployment(1));
        let out = k.ok_stdin(["apply", "--dry-run=server", "-f", "-"], &deployment(7));
        assert_eq!(out.trim(), "deployment.apps/web configured (server dry run)");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "1");

        let out = k.ok(["scale", "deployment", "web", "--replicas=9", "--dry-run=server"]);
        assert_eq!(out.trim(), "deployment.apps/web scaled (server dry run)");
        assert_eq!(jsonpath(k, "deployment", "web", "{.spec.replicas}"), "1");

        let out = k.ok(["delete", "deployment", "web", "--dry-run=server"]);
        assert_eq!(out.trim(), "deployment.apps \"web\" deleted (server dry run)");
        assert_eq!(jsonpath(k, "deployment", "web", "{.metadata.name}"), "web");
    }
}
