//! Exec and attach sessions (upstream's `remotecommand` protocols, version 4 and 5).
//!
//! A session has a kubectl-facing end, served over WebSocket channels
//! ([`super::websocket::serve_exec`]) or SPDY streams ([`serve_spdy`]), and a backend that
//! runs the command: on real nodes the container runtime's streaming server, dialled with
//! [`dial_runtime`]. Both ends meet in two plain structs: the server end produces an
//! [`Input`] (stdin, terminal resizes) and consumes an [`Output`] (stdout, stderr, and the
//! final `Status`), so any backend is `FnOnce(Input) -> Output`.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::spdy::{self, header, Headers, Role, Session};

/// `X-Stream-Protocol-Version` / WebSocket subprotocol names.
pub const V5: &str = "v5.channel.k8s.io";
/// Version 4: `Status` on the error stream, resize stream.
pub const V4: &str = "v4.channel.k8s.io";

/// How long the server waits for a SPDY client to open its streams (as upstream).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Channel depth between the two ends; output is pumped as it comes.
const DEPTH: usize = 16;

/// What the client asked for (upstream's `input`, `output`, `error`, `tty` parameters,
/// or `stdin`, `stdout`, `stderr`, `tty` on the API server's side).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Attach stdin.
    pub stdin: bool,
    /// Stream stdout.
    pub stdout: bool,
    /// Stream stderr (never with a TTY: the terminal merges it into stdout).
    pub stderr: bool,
    /// Allocate a TTY.
    pub tty: bool,
}

impl ExecOptions {
    /// From the kubelet's query (`input=1&output=1&error=1&tty=1`), as upstream's
    /// `NewOptions`: stderr is dropped with a TTY, and one stream at least is required.
    pub fn from_kubelet_query(query: &[(String, String)]) -> Result<ExecOptions, String> {
        let on = |k: &str| {
            query
                .iter()
                .any(|(n, v)| n == k && (v == "1" || v == "true"))
        };
        let tty = on("tty");
        let opts = ExecOptions {
            stdin: on("input"),
            stdout: on("output"),
            stderr: on("error") && !tty,
            tty,
        };
        if !opts.stdin && !opts.stdout && !opts.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".into());
        }
        Ok(opts)
    }
}

/// What flows from the client into the command.
#[derive(Default)]
pub struct Input {
    /// Stdin bytes; the channel ends when the client closes stdin.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal sizes, each a JSON `{"Width":…,"Height":…}`.
    pub resize: Option<mpsc::Receiver<Bytes>>,
}

/// What flows from the command back to the client.
pub struct Output {
    /// Stdout bytes until the command's stdout ends.
    pub stdout: Option<mpsc::Receiver<Bytes>>,
    /// Stderr bytes.
    pub stderr: Option<mpsc::Receiver<Bytes>>,
    /// The final `Status` JSON, sent once the command has finished.
    pub status: oneshot::Receiver<Bytes>,
}

impl Output {
    /// An output that carries only a failure (the command could not be started).
    pub fn failed(message: &str) -> Output {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(failure_status(message));
        Output {
            stdout: None,
            stderr: None,
            status: rx,
        }
    }
}

/// The `Status` reported when the command succeeded.
pub fn success_status() -> Bytes {
    Bytes::from(json!({"metadata": {}, "status": "Success"}).to_string())
}

/// The `Status` reported when the command exited with `code` (upstream's wording; kubectl
/// exits with the code from the `ExitCode` cause).
pub fn exit_status(cmd: &[String], code: i32) -> Bytes {
    if code == 0 {
        return success_status();
    }
    Bytes::from(
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", cmd.join(" ")),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
        .to_string(),
    )
}

/// The `Status` reported when the session failed for another reason.
pub fn failure_status(message: &str) -> Bytes {
    Bytes::from(
        json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "code": 500,
        })
        .to_string(),
    )
}

/// The exit code carried by a `Status` (0 for `Success`), as kubectl reads it.
pub fn status_exit_code(status: &[u8]) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_slice(status).ok()?;
    if v["status"] == "Success" {
        return Some(0);
    }
    v["details"]["causes"]
        .as_array()?
        .iter()
        .find(|c| c["reason"] == "ExitCode")?["message"]
        .as_str()?
        .parse()
        .ok()
}

fn stream_type(headers: &Headers) -> &str {
    header(headers, "streamtype").unwrap_or("")
}

/// Pump a SPDY stream's incoming data into a channel.
fn reader_to_channel(mut reader: spdy::StreamReader) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        while let Some(chunk) = reader.recv().await {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    rx
}

/// Pump a channel into a SPDY stream, half-closing it at the end.
async fn channel_to_writer(mut rx: mpsc::Receiver<Bytes>, writer: spdy::StreamWriter) {
    while let Some(chunk) = rx.recv().await {
        if writer.write(chunk).await.is_err() {
            return;
        }
    }
    let _ = writer.close().await;
}

/// Serve one exec/attach session to a SPDY client (client-go's SPDY executor): wait for
/// the streams the options call for (error, stdin, stdout, stderr unless TTY, resize with
/// TTY), run `backend`, copy its output, write the `Status` and close.
pub async fn serve_spdy<IO, F, Fut>(io: IO, opts: ExecOptions, backend: F)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    F: FnOnce(Input) -> Fut,
    Fut: Future<Output = Output>,
{
    let (session, mut incoming) = Session::start(io, Role::Server);
    let expected = 1
        + opts.stdin as usize
        + opts.stdout as usize
        + (opts.stderr && !opts.tty) as usize
        + opts.tty as usize;
    let mut streams: Vec<spdy::Stream> = Vec::new();
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while streams.len() < expected {
        tokio::select! {
            s = incoming.recv() => match s {
                Some(s) => streams.push(s),
                None => return,
            },
            _ = &mut deadline => {
                tracing::debug!("timed out waiting for client to create streams");
                session.close().await;
                return;
            }
        }
    }
    let mut take = |t: &str| {
        streams
            .iter()
            .position(|s| stream_type(&s.headers) == t)
            .map(|i| streams.swap_remove(i))
    };
    let error = take("error");
    let stdin = take("stdin");
    let stdout = take("stdout");
    let stderr = take("stderr");
    let resize = take("resize");
    let input = Input {
        stdin: stdin.map(|s| reader_to_channel(s.reader)),
        resize: resize.map(|s| reader_to_channel(s.reader)),
    };
    let output = backend(input).await;
    let mut pumps = Vec::new();
    if let (Some(rx), Some(s)) = (output.stdout, stdout) {
        pumps.push(tokio::spawn(channel_to_writer(rx, s.writer)));
    }
    if let (Some(rx), Some(s)) = (output.stderr, stderr) {
        pumps.push(tokio::spawn(channel_to_writer(rx, s.writer)));
    }
    for p in pumps {
        let _ = p.await;
    }
    let status = output
        .status
        .await
        .unwrap_or_else(|_| failure_status("the command's status was lost"));
    if let Some(e) = error {
        let _ = e.writer.write(status).await;
        let _ = e.writer.close().await;
    }
    session.close().await;
}

/// Run an exec/attach session on the runtime's streaming server at `url` (containerd's
/// speaks SPDY with `v4.channel.k8s.io`): open the streams, copy `input` in, and return
/// the command's output. Connection failures come back as a failure `Status`.
pub async fn dial_runtime(url: &str, opts: ExecOptions, input: Input) -> Output {
    match dial_runtime_inner(url, opts, input).await {
        Ok(o) => o,
        Err(e) => Output::failed(&e),
    }
}

async fn dial_runtime_inner(url: &str, opts: ExecOptions, input: Input) -> Result<Output, String> {
    let (io, protocol) = super::upgrade::spdy(url, &[V4])
        .await
        .map_err(|e| e.to_string())?;
    if protocol != V4 {
        return Err(format!(
            "the runtime's streaming server chose protocol {protocol:?}; {V4} is required"
        ));
    }
    let (session, _incoming) = Session::start(io, Role::Client);
    let open = |t: &'static str| {
        let session = session.clone();
        async move {
            session
                .open(vec![("streamtype".to_string(), t.to_string())])
                .await
                .map_err(|e| format!("creating the {t} stream: {e}"))
        }
    };
    // client-go's order: error first, then stdin, stdout, stderr, resize.
    let error = open("error").await?;
    let stdin = if opts.stdin {
        Some(open("stdin").await?)
    } else {
        None
    };
    let stdout = if opts.stdout {
        Some(open("stdout").await?)
    } else {
        None
    };
    let stderr = if opts.stderr && !opts.tty {
        Some(open("stderr").await?)
    } else {
        None
    };
    let resize = if opts.tty {
        Some(open("resize").await?)
    } else {
        None
    };

    if let (Some(rx), Some(s)) = (input.stdin, stdin) {
        tokio::spawn(channel_to_writer(rx, s.writer));
    }
    if let (Some(rx), Some(s)) = (input.resize, resize) {
        tokio::spawn(channel_to_writer(rx, s.writer));
    }
    let (status_tx, status_rx) = oneshot::channel();
    tokio::spawn(async move {
        let mut reader = error.reader;
        let mut status = Vec::new();
        while let Some(chunk) = reader.recv().await {
            status.extend_from_slice(&chunk);
        }
        // v4: an empty error stream never happens (Success is written); treat it as one.
        let status = if status.is_empty() {
            success_status()
        } else {
            Bytes::from(status)
        };
        let _ = status_tx.send(status);
        // Keep the session alive until the runtime is done with it.
        drop(session);
    });
    Ok(Output {
        stdout: stdout.map(|s| reader_to_channel(s.reader)),
        stderr: stderr.map(|s| reader_to_channel(s.reader)),
        status: status_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_query_options_follow_upstream() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            ExecOptions::from_kubelet_query(&q(&[
                ("input", "1"),
                ("output", "1"),
                ("error", "1"),
                ("tty", "1")
            ])),
            Ok(ExecOptions {
                stdin: true,
                stdout: true,
                stderr: false,
                tty: true
            })
        );
        assert_eq!(
            ExecOptions::from_kubelet_query(&q(&[("tty", "1")])),
            Err("you must specify at least 1 of stdin, stdout, stderr".into())
        );
    }

    #[test]
    fn exit_codes_travel_in_the_status() {
        let cmd = vec!["sh".to_string(), "-c".into(), "exit 3".into()];
        let s = exit_status(&cmd, 3);
        let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(
            v["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        assert_eq!(status_exit_code(&s), Some(3));
        assert_eq!(status_exit_code(&exit_status(&cmd, 0)), Some(0));
        assert_eq!(status_exit_code(&failure_status("boom")), None);
    }

    /// A backend that echoes stdin to stdout, says "bye" on stderr and exits 7.
    async fn echo_backend(input: Input) -> Output {
        let (out_tx, out_rx) = mpsc::channel(4);
        let (err_tx, err_rx) = mpsc::channel(4);
        let (st_tx, st_rx) = oneshot::channel();
        let mut stdin = input.stdin.unwrap();
        tokio::spawn(async move {
            while let Some(b) = stdin.recv().await {
                out_tx.send(b).await.unwrap();
            }
            err_tx.send(Bytes::from_static(b"bye")).await.unwrap();
            drop((out_tx, err_tx));
            let _ = st_tx.send(exit_status(&["echo".into()], 7));
        });
        Output {
            stdout: Some(out_rx),
            stderr: Some(err_rx),
            status: st_rx,
        }
    }

    #[tokio::test]
    async fn spdy_server_and_runtime_client_talk_v4() {
        // A streaming server as the runtime's: HTTP upgrade, then serve_spdy.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = ExecOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let svc = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| async move {
                    assert_eq!(req.headers()["x-stream-protocol-version"], V4);
                    let on = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(on.await.unwrap());
                        serve_spdy(io, opts, echo_backend).await;
                    });
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .status(101)
                            .header("Connection", "Upgrade")
                            .header("Upgrade", "SPDY/3.1")
                            .header("X-Stream-Protocol-Version", V4)
                            .body(http_body_util::Empty::<Bytes>::new())
                            .unwrap(),
                    )
                },
            );
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                .with_upgrades()
                .await
                .unwrap();
        });

        let (stdin_tx, stdin_rx) = mpsc::channel(4);
        let mut out = dial_runtime(
            &format!("http://{addr}/exec/token"),
            opts,
            Input {
                stdin: Some(stdin_rx),
                resize: None,
            },
        )
        .await;
        stdin_tx.send(Bytes::from_static(b"hello ")).await.unwrap();
        stdin_tx.send(Bytes::from_static(b"world")).await.unwrap();
        drop(stdin_tx);
        let mut stdout = Vec::new();
        let mut rx = out.stdout.take().unwrap();
        while let Some(b) = rx.recv().await {
            stdout.extend_from_slice(&b);
        }
        let mut stderr = Vec::new();
        let mut rx = out.stderr.take().unwrap();
        while let Some(b) = rx.recv().await {
            stderr.extend_from_slice(&b);
        }
        assert_eq!(stdout, b"hello world");
        assert_eq!(stderr, b"bye");
        assert_eq!(status_exit_code(&out.status.await.unwrap()), Some(7));
    }

    #[tokio::test]
    async fn an_unreachable_runtime_is_a_failure_status() {
        let out = dial_runtime(
            "http://127.0.0.1:1/exec/x",
            ExecOptions::default(),
            Input::default(),
        )
        .await;
        let status = out.status.await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&status).unwrap();
        assert_eq!(v["status"], "Failure");
        assert!(
            v["message"].as_str().unwrap().contains("127.0.0.1:1"),
            "{v}"
        );
    }
}
