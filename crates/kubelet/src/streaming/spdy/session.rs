//! A SPDY/3.1 session over any byte stream: multiplexed streams with half-close, both
//! roles (the kubelet serves kubectl's port-forward and older exec clients, and is a client
//! of the container runtime's streaming server).
//!
//! Flow control is not enforced in either direction: Go's spdystream, the only peer, never
//! sends WINDOW_UPDATE frames and ignores the ones it receives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::frame::{Frame, HeaderDecoder, HeaderEncoder, Headers, RST_CANCEL};

/// Largest DATA frame written; keeps one stream from starving the others.
const MAX_DATA_FRAME: usize = 32 * 1024;
/// How long [`Session::open`] waits for the peer's SYN_REPLY (client-go waits as long).
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Which side of the session this is: clients open odd-numbered streams, servers even.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that sent the upgrade request.
    Client,
    /// The side that accepted it.
    Server,
}

enum WriterMsg {
    Frame(Frame),
    Shutdown,
}

#[derive(Default)]
struct Slot {
    data: Option<mpsc::UnboundedSender<Bytes>>,
    reply: Option<oneshot::Sender<Headers>>,
}

#[derive(Default)]
struct Streams {
    slots: HashMap<u32, Slot>,
    /// The connection ended: no more streams.
    ended: bool,
}

struct Inner {
    out: mpsc::Sender<WriterMsg>,
    streams: Mutex<Streams>,
    next_id: AtomicU32,
}

/// A running session. Cloning shares it.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

/// One stream: its headers, what the peer sends, and a handle to send on it.
pub struct Stream {
    /// Stream id.
    pub id: u32,
    /// The headers it was opened with (the peer's SYN_STREAM, or our own for streams we
    /// opened).
    pub headers: Headers,
    /// Data from the peer.
    pub reader: StreamReader,
    /// Sending side.
    pub writer: StreamWriter,
}

/// Data the peer sends on a stream; ends at the peer's FIN, a reset, or session end.
pub struct StreamReader {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl StreamReader {
    /// The next chunk, `None` once the peer finished.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }
}

/// Writes to a stream. Cloneable; [`StreamWriter::close`] half-closes.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<WriterMsg>,
}

fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "spdy session closed")
}

impl StreamWriter {
    /// Send data (split into frames of at most 32 KiB).
    pub async fn write(&self, data: Bytes) -> std::io::Result<()> {
        let mut data = data;
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(MAX_DATA_FRAME));
            self.out
                .send(WriterMsg::Frame(Frame::Data {
                    stream_id: self.id,
                    fin: false,
                    data: chunk,
                }))
                .await
                .map_err(|_| closed())?;
        }
        Ok(())
    }

    /// Half-close: the peer reads end-of-stream.
    pub async fn close(&self) -> std::io::Result<()> {
        self.out
            .send(WriterMsg::Frame(Frame::Data {
                stream_id: self.id,
                fin: true,
                data: Bytes::new(),
            }))
            .await
            .map_err(|_| closed())
    }

    /// Abort the stream in both directions.
    pub async fn reset(&self) {
        let _ = self
            .out
            .send(WriterMsg::Frame(Frame::RstStream {
                stream_id: self.id,
                status: RST_CANCEL,
            }))
            .await;
    }
}

impl Session {
    /// Run a session over `io`. Returns the session and the streams the peer opens (each
    /// already accepted with an empty SYN_REPLY). The receiver ends with the connection.
    pub fn start<T>(io: T, role: Role) -> (Session, mpsc::UnboundedReceiver<Stream>)
    where
        T: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, wr) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(64);
        let inner = Arc::new(Inner {
            out: out_tx,
            streams: Mutex::new(Streams::default()),
            next_id: AtomicU32::new(match role {
                Role::Client => 1,
                Role::Server => 2,
            }),
        });
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(wr, out_rx));
        tokio::spawn(read_loop(rd, inner.clone(), incoming_tx));
        (Session { inner }, incoming_rx)
    }

    /// Open a stream with `headers` and wait for the peer to accept it.
    pub async fn open(&self, headers: Headers) -> std::io::Result<Stream> {
        let id = self.inner.next_id.fetch_add(2, Ordering::Relaxed);
        let (data_tx, data_rx) = mpsc::unbounded_channel();
        let (reply_tx, reply_rx) = oneshot::channel();
        {
            let mut streams = self.inner.streams.lock().unwrap();
            if streams.ended {
                return Err(closed());
            }
            streams.slots.insert(
                id,
                Slot {
                    data: Some(data_tx),
                    reply: Some(reply_tx),
                },
            );
        }
        self.inner
            .out
            .send(WriterMsg::Frame(Frame::SynStream {
                stream_id: id,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: headers.clone(),
            }))
            .await
            .map_err(|_| closed())?;
        match tokio::time::timeout(REPLY_TIMEOUT, reply_rx).await {
            Ok(Ok(_)) => Ok(Stream {
                id,
                headers,
                reader: StreamReader { rx: data_rx },
                writer: StreamWriter {
                    id,
                    out: self.inner.out.clone(),
                },
            }),
            Ok(Err(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "spdy stream refused",
            )),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out waiting for the spdy stream reply",
            )),
        }
    }

    /// Say goodbye (GOAWAY) and close the connection once queued frames are written.
    pub async fn close(&self) {
        let _ = self.inner.out.send(WriterMsg::Shutdown).await;
    }
}

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::Receiver<WriterMsg>) {
    tokio::pin!(wr);
    let mut enc = HeaderEncoder::new();
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut last_seen = 0u32;
    while let Some(msg) = rx.recv().await {
        let shutdown = match msg {
            WriterMsg::Frame(f) => {
                if let Frame::SynReply { stream_id, .. } = &f {
                    last_seen = last_seen.max(*stream_id);
                }
                f.encode(&mut enc, &mut buf);
                false
            }
            WriterMsg::Shutdown => {
                Frame::GoAway {
                    last_good_stream_id: last_seen,
                    status: 0,
                }
                .encode(&mut enc, &mut buf);
                true
            }
        };
        // Batch whatever else is queued into one write.
        let mut shutdown = shutdown;
        while !shutdown && buf.len() < 64 * 1024 {
            match rx.try_recv() {
                Ok(WriterMsg::Frame(f)) => f.encode(&mut enc, &mut buf),
                Ok(WriterMsg::Shutdown) => {
                    Frame::GoAway {
                        last_good_stream_id: last_seen,
                        status: 0,
                    }
                    .encode(&mut enc, &mut buf);
                    shutdown = true;
                }
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        buf.clear();
        if shutdown {
            let _ = wr.shutdown().await;
            return;
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_loop<R: AsyncRead>(
    rd: R,
    inner: Arc<Inner>,
    incoming: mpsc::UnboundedSender<Stream>,
) {
    tokio::pin!(rd);
    let mut dec = HeaderDecoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'outer: loop {
        loop {
            let frame = match Frame::decode(&mut buf, &mut dec) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "spdy session ends on a bad frame");
                    break 'outer;
                }
            };
            if !handle(&inner, &incoming, frame).await {
                break 'outer;
            }
        }
        buf.reserve(32 * 1024);
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // The connection is gone: every reader sees its end, pending opens fail.
    let mut streams = inner.streams.lock().unwrap();
    streams.ended = true;
    streams.slots.clear();
}

/// Apply one frame; `false` ends the session.
async fn handle(
    inner: &Arc<Inner>,
    incoming: &mpsc::UnboundedSender<Stream>,
    frame: Frame,
) -> bool {
    match frame {
        Frame::SynStream {
            stream_id,
            fin,
            headers,
            ..
        } => {
            let (tx, rx) = mpsc::unbounded_channel();
            inner.streams.lock().unwrap().slots.insert(
                stream_id,
                Slot {
                    data: (!fin).then_some(tx),
                    reply: None,
                },
            );
            // client-go waits for the reply before using a stream it opened.
            if inner
                .out
                .send(WriterMsg::Frame(Frame::SynReply {
                    stream_id,
                    fin: false,
                    headers: Vec::new(),
                }))
                .await
                .is_err()
            {
                return false;
            }
            let _ = incoming.send(Stream {
                id: stream_id,
                headers,
                reader: StreamReader { rx },
                writer: StreamWriter {
                    id: stream_id,
                    out: inner.out.clone(),
                },
            });
        }
        Frame::SynReply {
            stream_id,
            fin,
            headers,
        } => {
            let mut streams = inner.streams.lock().unwrap();
            if let Some(slot) = streams.slots.get_mut(&stream_id) {
                if let Some(reply) = slot.reply.take() {
                    let _ = reply.send(headers);
                }
                if fin {
                    slot.data = None;
                }
            }
        }
        Frame::Data {
            stream_id,
            fin,
            data,
        } => {
            let mut streams = inner.streams.lock().unwrap();
            if let Some(slot) = streams.slots.get_mut(&stream_id) {
                if let Some(tx) = &slot.data {
                    if !data.is_empty() {
                        let _ = tx.send(data);
                    }
                }
                if fin {
                    slot.data = None;
                }
            }
        }
        Frame::Headers {
            stream_id,
            fin: true,
            ..
        } => {
            if let Some(slot) = inner.streams.lock().unwrap().slots.get_mut(&stream_id) {
                slot.data = None;
            }
        }
        Frame::RstStream { stream_id, .. } => {
            inner.streams.lock().unwrap().slots.remove(&stream_id);
        }
        Frame::Ping { id } => {
            if inner
                .out
                .send(WriterMsg::Frame(Frame::Ping { id }))
                .await
                .is_err()
            {
                return false;
            }
        }
        Frame::GoAway { .. }
        | Frame::Settings { .. }
        | Frame::WindowUpdate { .. }
        | Frame::Headers { .. } => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::frame::header;
    use super::*;

    #[tokio::test]
    async fn streams_carry_data_both_ways_with_half_close() {
        let (a, b) = tokio::io::duplex(1024);
        let (client, _none) = Session::start(a, Role::Client);
        let (_server, mut incoming) = Session::start(b, Role::Server);

        let server_task = tokio::spawn(async move {
            let mut s = incoming.recv().await.unwrap();
            assert_eq!(header(&s.headers, "streamtype"), Some("data"));
            // Echo everything back in upper case, then close.
            let mut got = Vec::new();
            while let Some(chunk) = s.reader.recv().await {
                got.extend_from_slice(&chunk);
            }
            s.writer
                .write(Bytes::from(got.to_ascii_uppercase()))
                .await
                .unwrap();
            s.writer.close().await.unwrap();
        });

        let mut s = client
            .open(vec![("streamtype".into(), "data".into())])
            .await
            .unwrap();
        assert_eq!(s.id, 1);
        // Larger than one frame and than the duplex buffer.
        let big = "abc".repeat(40_000);
        s.writer.write(Bytes::from(big.clone())).await.unwrap();
        s.writer.close().await.unwrap();
        let mut back = Vec::new();
        while let Some(chunk) = s.reader.recv().await {
            back.extend_from_slice(&chunk);
        }
        assert_eq!(back, big.to_ascii_uppercase().into_bytes());
        server_task.await.unwrap();

        // A second stream gets the next odd id.
        let (a, b) = tokio::io::duplex(1024);
        let (client, _) = Session::start(a, Role::Client);
        let (_server, mut incoming) = Session::start(b, Role::Server);
        let s1 = client.open(vec![]).await.unwrap();
        let s2 = client.open(vec![]).await.unwrap();
        assert_eq!((s1.id, s2.id), (1, 3));
        assert_eq!(incoming.recv().await.unwrap().id, 1);
    }

    #[tokio::test]
    async fn session_end_ends_every_reader() {
        let (a, b) = tokio::io::duplex(1024);
        let (client, _) = Session::start(a, Role::Client);
        let (server, mut incoming) = Session::start(b, Role::Server);
        let mut s = client.open(vec![]).await.unwrap();
        let _peer = incoming.recv().await.unwrap();
        server.close().await;
        assert!(s.reader.recv().await.is_none());
        assert!(client.open(vec![]).await.is_err());
    }
}
