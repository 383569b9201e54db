//! WebSocket transports: the `channel.k8s.io` framing for exec/attach (every binary
//! message starts with its channel byte) and the byte tunnel kubectl ≥ 1.31 runs SPDY
//! through for port-forward (`SPDY/3.1+portforward.k8s.io`).

use std::future::Future;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use super::remotecommand::{failure_status, ExecOptions, Input, Output, V4, V5};

/// Channel of stdin.
pub const STDIN: u8 = 0;
/// Channel of stdout.
pub const STDOUT: u8 = 1;
/// Channel of stderr.
pub const STDERR: u8 = 2;
/// Channel of the final `Status` (v4+).
pub const ERROR: u8 = 3;
/// Channel of terminal resizes.
pub const RESIZE: u8 = 4;
/// v5: "this channel is closed" (payload: the channel).
pub const CLOSE: u8 = 255;

/// The subprotocol kubectl ≥ 1.31 tunnels port-forward's SPDY through.
pub const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// Exec/attach subprotocols served, most preferred first.
pub const EXEC_PROTOCOLS: [&str; 2] = [V5, V4];

/// One channel message: channel byte then payload.
pub fn encode(channel: u8, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(payload.len() + 1);
    b.put_u8(channel);
    b.extend_from_slice(payload);
    b.freeze()
}

/// Split a channel message; `None` for an empty message.
pub fn decode(msg: &Bytes) -> Option<(u8, Bytes)> {
    (!msg.is_empty()).then(|| (msg[0], msg.slice(1..)))
}

/// Serve one exec/attach session over an upgraded WebSocket whose negotiated subprotocol
/// is `protocol` (v5 or v4): stdin and resize messages go to `backend`'s input; its stdout
/// and stderr come back on channels 1 and 2, then the `Status` on channel 3, then a normal
/// close.
pub async fn serve_exec<F, Fut>(socket: WebSocket, protocol: &str, opts: ExecOptions, backend: F)
where
    F: FnOnce(Input) -> Fut,
    Fut: Future<Output = Output>,
{
    let v5 = protocol == V5;
    let (mut sink, mut stream) = socket.split();
    let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(16);
    let (resize_tx, resize_rx) = mpsc::channel::<Bytes>(4);
    let input = Input {
        stdin: opts.stdin.then_some(stdin_rx),
        resize: opts.tty.then_some(resize_rx),
    };
    // Client → command.
    let reader = tokio::spawn(async move {
        let mut stdin_tx = opts.stdin.then_some(stdin_tx);
        let mut resize_tx = opts.tty.then_some(resize_tx);
        while let Some(Ok(msg)) = stream.next().await {
            let data = match msg {
                Message::Binary(b) => b,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((channel, payload)) = decode(&data) else {
                continue;
            };
            match channel {
                STDIN => {
                    if let Some(tx) = &stdin_tx {
                        if !payload.is_empty() && tx.send(payload).await.is_err() {
                            stdin_tx = None;
                        }
                    }
                }
                RESIZE => {
                    if let Some(tx) = &resize_tx {
                        let _ = tx.send(payload).await;
                    }
                }
                CLOSE if v5 => match payload.first() {
                    Some(&STDIN) => stdin_tx = None,
                    Some(&RESIZE) => resize_tx = None,
                    _ => {}
                },
                _ => {}
            }
        }
    });
    let output = backend(input).await;

    // Command → client: stdout and stderr as they come, then the status.
    let mut stdout = output.stdout;
    let mut stderr = output.stderr;
    loop {
        let (channel, chunk) = tokio::select! {
            b = recv(&mut stdout), if stdout.is_some() => (STDOUT, b),
            b = recv(&mut stderr), if stderr.is_some() => (STDERR, b),
            else => break,
        };
        match chunk {
            Some(b) => {
                if sink
                    .send(Message::Binary(encode(channel, &b)))
                    .await
                    .is_err()
                {
                    reader.abort();
                    return;
                }
            }
            None if channel == STDOUT => stdout = None,
            None => stderr = None,
        }
    }
    let status = output
        .status
        .await
        .unwrap_or_else(|_| failure_status("the command's status was lost"));
    let _ = sink.send(Message::Binary(encode(ERROR, &status))).await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
    // Give the client a moment to answer the close, then drop the connection.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await;
}

async fn recv(rx: &mut Option<mpsc::Receiver<Bytes>>) -> Option<Bytes> {
    rx.as_mut()?.recv().await
}

/// Turn a WebSocket carrying a byte stream in binary messages (kubectl's
/// `TunnelingConnection`) into an ordinary duplex byte stream.
pub fn tunnel(socket: WebSocket) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (mut rd, mut wr) = tokio::io::split(ours);
    let (mut sink, mut stream) = socket.split();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            match msg {
                Message::Binary(b) if wr.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    });
    theirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_framing() {
        let m = encode(STDOUT, b"hi");
        assert_eq!(&m[..], b"\x01hi");
        assert_eq!(decode(&m), Some((STDOUT, Bytes::from_static(b"hi"))));
        assert_eq!(
            decode(&encode(CLOSE, &[STDIN])),
            Some((CLOSE, Bytes::from_static(&[0])))
        );
        assert_eq!(decode(&Bytes::new()), None);
    }
}
