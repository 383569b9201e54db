//! Streaming against real containers (`k8rs up`, containerd): `kubectl logs -f`,
//! `exec` exit codes, `exec -it` with a TTY, `port-forward` to busybox `httpd`, `cp` in
//! and out, and `top`. Needs root and the host packages; prints `SKIP: …` otherwise.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use k8rs_e2e::{assert_contains, node, Kubectl, KubectlVersion, TestServer};

const NODE: &str = "k8rs-e2e-stream";

fn wait_running(k: &Kubectl<'_>, pod: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while k.ok(["get", "pod", pod, "-o=jsonpath={.status.phase}"]) != "Running" {
        assert!(
            Instant::now() < deadline,
            "{pod} not Running: {}",
            k.ok(["get", "pod", pod, "-o", "yaml"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run_pod(k: &Kubectl<'_>, name: &str, cmd: &[&str]) {
    let mut args = vec![
        "run".to_string(),
        name.to_string(),
        "--image=busybox".to_string(),
        format!(
            r#"--overrides={{"apiVersion":"v1","spec":{{"nodeName":"{NODE}","terminationGracePeriodSeconds":1}}}}"#
        ),
        "--".to_string(),
    ];
    args.extend(cmd.iter().map(|s| s.to_string()));
    k.ok(args);
    wait_running(k, name);
}

#[test]
fn logs_exec_port_forward_cp_and_top_on_real_containers() {
    if let Some(reason) = node::skip_reason() {
        println!("SKIP: {reason}");
        return;
    }
    let server = TestServer::start_up(&["--node-name", NODE]);
    server.wait_node_ready(NODE, Duration::from_secs(60));
    for version in KubectlVersion::ALL {
        let k = server.with_version(version);
        let suffix = version.as_str().replace('.', "");
        let counter = format!("counter{suffix}");
        let web = format!("web{suffix}");

        // logs -f follows a counting container.
        run_pod(
            &k,
            &counter,
            &[
                "sh",
                "-c",
                "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done",
            ],
        );
        let mut follow = k.spawn(["logs", "-f", &counter]);
        follow.wait_for_stdout(Duration::from_secs(20), |o| {
            o.contains("line 0\n") && o.contains("line 5\n")
        });
        drop(follow);
        let tail = k.ok(["logs", &counter, "--tail=1", "--timestamps"]);
        assert!(
            tail.lines().count() == 1 && tail.contains(" line "),
            "{tail}"
        );

        // exec: exit codes and stdin.
        let out = k
            .cmd(["exec", &counter, "--", "sh", "-c", "echo hi; exit 3"])
            .output();
        assert_eq!(out.status.code(), Some(3), "{}", k8rs_e2e::render(&out));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        let upper = k
            .cmd(["exec", "-i", &counter, "--", "tr", "a-z", "A-Z"])
            .stdin("shout\n")
            .ok();
        assert_eq!(upper, "SHOUT\n");

        // exec -it with a TTY: `script` gives kubectl a terminal.
        let kubectl = version.binary();
        let tty = std::process::Command::new("script")
            .args([
                "-qec",
                &format!(
                    "{} --kubeconfig {} exec -it {counter} -- sh -c 'tty; stty size'",
                    kubectl.display(),
                    server.kubeconfig().display()
                ),
                "/dev/null",
            ])
            .output()
            .expect("script(1)");
        let tty_out = String::from_utf8_lossy(&tty.stdout);
        assert!(
            tty_out.contains("/dev/pts/"),
            "a TTY in the container: {tty_out}"
        );

        // cp in and out.
        let local = k.write_file(&format!("cp{suffix}.txt"), b"through tar\n");
        k.ok([
            "cp",
            local.to_str().unwrap(),
            &format!("{counter}:/tmp/in.txt"),
        ]);
        assert_eq!(
            k.ok(["exec", &counter, "--", "cat", "/tmp/in.txt"]),
            "through tar\n"
        );
        let back = server.scratch_dir().join(format!("back{suffix}.txt"));
        k.ok([
            "cp",
            &format!("{counter}:/tmp/in.txt"),
            back.to_str().unwrap(),
        ]);
        assert_eq!(std::fs::read_to_string(&back).unwrap(), "through tar\n");

        // port-forward to busybox httpd.
        run_pod(&k, &web, &["httpd", "-f", "-p", "8080", "-h", "/var/www"]);
        let mut pf = k.spawn(["port-forward", &format!("pod/{web}"), ":8080"]);
        let out = pf.wait_for_stdout(Duration::from_secs(20), |o| {
            o.contains("Forwarding from 127.0.0.1:")
        });
        let local: u16 = out
            .split("Forwarding from 127.0.0.1:")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .expect("local port");
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut page = String::new();
        conn.read_to_string(&mut page).unwrap();
        assert!(
            page.starts_with("HTTP/1.") && page.contains(" 200 OK"),
            "{page}"
        );
        assert_contains(&page, "hello from busybox");
        drop(pf);

        // top reads metrics.k8s.io from the kubelet's summary.
        let deadline = Instant::now() + Duration::from_secs(30);
        let top = loop {
            let out = k.cmd(["top", "pod", &counter]).output();
            if out.status.success() {
                break String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "kubectl top pod: {}",
                k8rs_e2e::render(&out)
            );
            std::thread::sleep(Duration::from_secs(1));
        };
        assert_contains(&top, &counter);
        assert_contains(&k.ok(["top", "node"]), NODE);

        k.ok(["delete", "pod", &counter, &web, "--grace-period=1"]);
    }
}
