//! A throwaway single-member etcd (Debian package `etcd-server`) on free loopback ports.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh etcd may take to accept client connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `etcd` with its own temporary data directory; killed (and its data
/// removed) when dropped.
pub struct Etcd {
    child: Child,
    client_url: String,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// Starts an etcd and waits until its client port accepts connections. The binary is
    /// `etcd` on `PATH`, or the one `K8RS_ETCD` names; panics with install instructions
    /// when there is none.
    pub fn start() -> Etcd {
        let binary = etcd_binary();
        let dir = tempfile::tempdir().expect("a temporary directory for etcd");
        let client_url = format!("http://127.0.0.1:{}", free_port());
        let peer_url = format!("http://127.0.0.1:{}", free_port());
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd's log file");
        let child = Command::new(binary)
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let etcd = Etcd {
            child,
            client_url,
            dir,
        };
        etcd.wait_until_listening();
        etcd
    }

    /// The URL clients connect to, e.g. `http://127.0.0.1:40123`.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// What etcd wrote to stderr so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    fn wait_until_listening(&self) {
        let address = self.client_url.trim_start_matches("http://");
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(address).is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not listen on {address}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The etcd binary to run; fails the test clearly when it is not installed.
fn etcd_binary() -> String {
    let binary = std::env::var("K8RS_ETCD").unwrap_or_else(|_| "etcd".into());
    let found = Command::new(&binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "`{binary}` is not installed: install the Debian package etcd-server \
         (apt-get install -y etcd-server; tests/run does), or set K8RS_ETCD to an etcd binary"
    );
    binary
}
