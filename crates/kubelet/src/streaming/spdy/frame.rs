//! SPDY/3.1 frames as Kubernetes uses them (moby/spdystream on the Go side): the 8-byte
//! frame header, the control frames, and name/value header blocks compressed with one
//! zlib stream per direction primed with the SPDY/3 dictionary.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1), exactly the bytes
/// Go's spdystream primes zlib with: zlib checks the dictionary's Adler-32, so one byte off
/// and the peer rejects every header block.
pub const DICTIONARY: &[u8] = b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\rcache-control\x00\x00\x00\nconnection\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md5\x00\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type\x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\x00\x00\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\rlast-modified\x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\nuser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\nset-cookie\x00\x00\x00\nkeep-alive\x00\x00\x00\x06origin100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// SPDY version carried in every control frame.
const VERSION: u16 = 3;
/// FLAG_FIN on SYN_STREAM, SYN_REPLY, HEADERS and DATA frames.
pub const FLAG_FIN: u8 = 0x01;
/// Largest frame payload this implementation accepts (spdystream writes at most 16 MiB;
/// Kubernetes peers send far smaller frames).
const MAX_FRAME: usize = 1 << 24;

/// RST_STREAM status: the stream was cancelled.
pub const RST_CANCEL: u32 = 5;
/// RST_STREAM status: protocol error.
pub const RST_PROTOCOL_ERROR: u32 = 1;

/// Header name/value pairs. Names are lowercase on the wire; several values of one name
/// travel NUL-separated in one value, as SPDY/3 requires.
pub type Headers = Vec<(String, String)>;

/// The value of header `name` (case-insensitive), if present.
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One SPDY/3 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opens a stream.
    SynStream {
        /// Stream id (odd from the client, even from the server).
        stream_id: u32,
        /// Associated stream id (0 here).
        associated: u32,
        /// Priority, 0 (highest) to 7.
        priority: u8,
        /// The opener sends nothing more.
        fin: bool,
        /// The receiver must not send on this stream.
        unidirectional: bool,
        /// Headers.
        headers: Headers,
    },
    /// Accepts a stream.
    SynReply {
        /// Stream id.
        stream_id: u32,
        /// The replier sends nothing more.
        fin: bool,
        /// Headers.
        headers: Headers,
    },
    /// Aborts a stream.
    RstStream {
        /// Stream id.
        stream_id: u32,
        /// Status code.
        status: u32,
    },
    /// Session settings `(flags, id, value)`.
    Settings {
        /// Entries.
        entries: Vec<(u8, u32, u32)>,
    },
    /// Liveness check; the receiver echoes it.
    Ping {
        /// Ping id.
        id: u32,
    },
    /// The sender closes the session.
    GoAway {
        /// Last stream the sender accepted.
        last_good_stream_id: u32,
        /// Status code.
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        /// Stream id.
        stream_id: u32,
        /// The sender sends nothing more.
        fin: bool,
        /// Headers.
        headers: Headers,
    },
    /// Flow-control credit (spdystream neither sends nor honours it; accepted and ignored).
    WindowUpdate {
        /// Stream id.
        stream_id: u32,
        /// Added window.
        delta: u32,
    },
    /// Stream payload.
    Data {
        /// Stream id.
        stream_id: u32,
        /// Last frame from the sender on this stream.
        fin: bool,
        /// Payload.
        data: Bytes,
    },
}

/// A malformed frame or header block.
#[derive(Debug, thiserror::Error)]
#[error("spdy: {0}")]
pub struct FrameError(pub String);

fn err(msg: impl Into<String>) -> FrameError {
    FrameError(msg.into())
}

/// Compresses header blocks: one zlib stream for every frame a side writes.
pub struct HeaderEncoder {
    zlib: Compress,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderEncoder {
    /// A fresh compressor primed with [`DICTIONARY`].
    pub fn new() -> HeaderEncoder {
        let mut zlib = Compress::new(Compression::best(), true);
        zlib.set_dictionary(DICTIONARY)
            .expect("the zlib backend supports preset dictionaries");
        HeaderEncoder { zlib }
    }

    /// The compressed name/value block for `headers` (sync-flushed, so the peer can decode
    /// it without waiting for more).
    pub fn encode(&mut self, headers: &Headers) -> Vec<u8> {
        let mut raw = Vec::with_capacity(64);
        raw.put_u32(headers.len() as u32);
        for (name, value) in headers {
            raw.put_u32(name.len() as u32);
            raw.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            raw.put_u32(value.len() as u32);
            raw.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.zlib.total_in();
            self.zlib
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .expect("compressing into a growable buffer");
            consumed += (self.zlib.total_in() - before) as usize;
            // Done once all input is in and the flush left spare room in the buffer.
            if consumed == raw.len() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }
}

/// Decompresses header blocks of the peer's single zlib stream.
pub struct HeaderDecoder {
    zlib: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecoder {
    /// A fresh decompressor; the dictionary is supplied when zlib asks for it.
    pub fn new() -> HeaderDecoder {
        HeaderDecoder {
            zlib: Decompress::new(true),
        }
    }

    /// Decode one compressed name/value block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, FrameError> {
        let mut raw = Vec::with_capacity(block.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            if raw.capacity() - raw.len() < 256 {
                raw.reserve(1024);
            }
            let before = self.zlib.total_in();
            let status =
                match self
                    .zlib
                    .decompress_vec(&block[consumed..], &mut raw, FlushDecompress::Sync)
                {
                    Ok(s) => s,
                    Err(e) if e.needs_dictionary().is_some() => {
                        consumed += (self.zlib.total_in() - before) as usize;
                        self.zlib
                            .set_dictionary(DICTIONARY)
                            .map_err(|e| err(format!("header dictionary: {e}")))?;
                        continue;
                    }
                    Err(e) => return Err(err(format!("header block: {e}"))),
                };
            consumed += (self.zlib.total_in() - before) as usize;
            if status == Status::StreamEnd
                || (consumed == block.len() && raw.len() < raw.capacity())
            {
                break;
            }
            if self.zlib.total_in() == before
                && consumed < block.len()
                && raw.len() < raw.capacity()
            {
                return Err(err("header block: no progress"));
            }
        }
        parse_nv(&raw)
    }
}

fn parse_nv(mut raw: &[u8]) -> Result<Headers, FrameError> {
    let take = |raw: &mut &[u8]| -> Result<String, FrameError> {
        if raw.len() < 4 {
            return Err(err("truncated header block"));
        }
        let len = raw.get_u32() as usize;
        if raw.len() < len {
            return Err(err("truncated header block"));
        }
        let s = String::from_utf8_lossy(&raw[..len]).into_owned();
        raw.advance(len);
        Ok(s)
    };
    if raw.len() < 4 {
        return Err(err("truncated header block"));
    }
    let n = raw.get_u32() as usize;
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let name = take(&mut raw)?;
        let value = take(&mut raw)?;
        out.push((name, value));
    }
    Ok(out)
}

fn control_header(out: &mut Vec<u8>, kind: u16, flags: u8, len: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(((flags as u32) << 24) | (len as u32 & 0x00ff_ffff));
}

impl Frame {
    /// Append the wire form of the frame to `out`.
    pub fn encode(&self, enc: &mut HeaderEncoder, out: &mut Vec<u8>) {
        match self {
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                let block = enc.encode(headers);
                let flags = if *fin { FLAG_FIN } else { 0 } | if *unidirectional { 2 } else { 0 };
                control_header(out, 1, flags, 10 + block.len());
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(associated & 0x7fff_ffff);
                out.put_u8((priority & 7) << 5);
                out.put_u8(0);
                out.extend_from_slice(&block);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let kind = if matches!(self, Frame::SynReply { .. }) {
                    2
                } else {
                    8
                };
                let block = enc.encode(headers);
                control_header(out, kind, if *fin { FLAG_FIN } else { 0 }, 4 + block.len());
                out.put_u32(stream_id & 0x7fff_ffff);
                out.extend_from_slice(&block);
            }
            Frame::RstStream { stream_id, status } => {
                control_header(out, 3, 0, 8);
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(*status);
            }
            Frame::Settings { entries } => {
                control_header(out, 4, 0, 4 + 8 * entries.len());
                out.put_u32(entries.len() as u32);
                for (flags, id, value) in entries {
                    out.put_u32(((*flags as u32) << 24) | (id & 0x00ff_ffff));
                    out.put_u32(*value);
                }
            }
            Frame::Ping { id } => {
                control_header(out, 6, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control_header(out, 7, 0, 8);
                out.put_u32(last_good_stream_id & 0x7fff_ffff);
                out.put_u32(*status);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control_header(out, 9, 0, 8);
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(delta & 0x7fff_ffff);
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32(((if *fin { FLAG_FIN } else { 0 } as u32) << 24) | data.len() as u32);
                out.extend_from_slice(data);
            }
        }
    }

    /// Take one complete frame off the front of `buf`; `Ok(None)` when more bytes are
    /// needed. Unknown control frame types are skipped, as SPDY/3 asks.
    pub fn decode(
        buf: &mut BytesMut,
        dec: &mut HeaderDecoder,
    ) -> Result<Option<Frame>, FrameError> {
        loop {
            if buf.len() < 8 {
                return Ok(None);
            }
            let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
            if len > MAX_FRAME {
                return Err(err(format!("frame of {len} bytes is too large")));
            }
            if buf.len() < 8 + len {
                return Ok(None);
            }
            let head = buf.split_to(8);
            let mut body = buf.split_to(len).freeze();
            let flags = head[4];
            let fin = flags & FLAG_FIN != 0;
            if head[0] & 0x80 == 0 {
                let stream_id =
                    u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
                return Ok(Some(Frame::Data {
                    stream_id,
                    fin,
                    data: body,
                }));
            }
            let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
            if version != VERSION {
                return Err(err(format!("unsupported SPDY version {version}")));
            }
            let kind = u16::from_be_bytes([head[2], head[3]]);
            let need = |n: usize| {
                if len < n {
                    Err(err(format!("control frame {kind} too short")))
                } else {
                    Ok(())
                }
            };
            let frame = match kind {
                1 => {
                    need(10)?;
                    let stream_id = body.get_u32() & 0x7fff_ffff;
                    let associated = body.get_u32() & 0x7fff_ffff;
                    let priority = body.get_u8() >> 5;
                    body.advance(1);
                    Frame::SynStream {
                        stream_id,
                        associated,
                        priority,
                        fin,
                        unidirectional: flags & 2 != 0,
                        headers: dec.decode(&body)?,
                    }
                }
                2 | 8 => {
                    need(4)?;
                    let stream_id = body.get_u32() & 0x7fff_ffff;
                    let headers = dec.decode(&body)?;
                    if kind == 2 {
                        Frame::SynReply {
                            stream_id,
                            fin,
                            headers,
                        }
                    } else {
                        Frame::Headers {
                            stream_id,
                            fin,
                            headers,
                        }
                    }
                }
                3 => {
                    need(8)?;
                    Frame::RstStream {
                        stream_id: body.get_u32() & 0x7fff_ffff,
                        status: body.get_u32(),
                    }
                }
                4 => {
                    need(4)?;
                    let n = body.get_u32() as usize;
                    if body.len() < n * 8 {
                        return Err(err("truncated SETTINGS"));
                    }
                    let entries = (0..n)
                        .map(|_| {
                            let fid = body.get_u32();
                            ((fid >> 24) as u8, fid & 0x00ff_ffff, body.get_u32())
                        })
                        .collect();
                    Frame::Settings { entries }
                }
                6 => {
                    need(4)?;
                    Frame::Ping { id: body.get_u32() }
                }
                7 => {
                    need(8)?;
                    Frame::GoAway {
                        last_good_stream_id: body.get_u32() & 0x7fff_ffff,
                        status: body.get_u32(),
                    }
                }
                9 => {
                    need(8)?;
                    Frame::WindowUpdate {
                        stream_id: body.get_u32() & 0x7fff_ffff,
                        delta: body.get_u32() & 0x7fff_ffff,
                    }
                }
                _ => continue,
            };
            return Ok(Some(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adler32(bytes: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for x in bytes {
            a = (a + *x as u32) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn dictionary_is_the_spdy3_one() {
        // Length and Adler-32 (the DICTID zlib puts in every stream header) as Go's
        // spdystream computes them.
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(adler32(DICTIONARY), 0xe3c6_a7c2);
    }

    #[test]
    fn decodes_a_go_spdystream_syn_stream() {
        // A SYN_STREAM (stream 1, `streamtype: stdout`) as written by Go's spdystream.
        let wire: &[u8] = b"\x80\x03\x00\x01\x00\x00\x00\x2b\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x78\xf9\xe3\xc6\xa7\xc2\x62\x60\x60\x60\x04\xa7\xb3\x92\xa2\xd4\xc4\x5c\x68\x51\xc2\x56\x5c\x92\x92\x5f\x5a\x02\x00\x00\x00\xff\xff";
        let mut buf = BytesMut::from(wire);
        let frame = Frame::decode(&mut buf, &mut HeaderDecoder::new())
            .unwrap()
            .unwrap();
        assert_eq!(
            frame,
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: vec![("streamtype".into(), "stdout".into())],
            }
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn every_frame_round_trips_through_one_compression_context() {
        let h = |pairs: &[(&str, &str)]| -> Headers {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 3,
                fin: false,
                unidirectional: false,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", "8080"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynStream {
                stream_id: 3,
                associated: 0,
                priority: 0,
                fin: true,
                unidirectional: true,
                headers: h(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::SynReply {
                stream_id: 3,
                fin: false,
                headers: vec![],
            },
            Frame::Headers {
                stream_id: 3,
                fin: true,
                headers: h(&[("x", "a\0b")]),
            },
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream_id: 5,
                status: RST_CANCEL,
            },
            Frame::Settings {
                entries: vec![(1, 7, 65536)],
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good_stream_id: 3,
                status: 0,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 1000,
            },
        ];
        let mut enc = HeaderEncoder::new();
        let mut wire = Vec::new();
        for f in &frames {
            f.encode(&mut enc, &mut wire);
        }
        // An unknown control frame type in between is skipped.
        let mut with_unknown = wire.clone();
        with_unknown.extend_from_slice(b"\x80\x03\x00\x0a\x00\x00\x00\x02ab");
        Frame::Ping { id: 9 }.encode(&mut enc, &mut with_unknown);

        // Decode byte by byte to exercise partial input.
        let mut dec = HeaderDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in with_unknown {
            buf.put_u8(b);
            while let Some(f) = Frame::decode(&mut buf, &mut dec).unwrap() {
                got.push(f);
            }
        }
        let mut want = frames.clone();
        want.push(Frame::Ping { id: 9 });
        assert_eq!(got, want);
    }

    #[test]
    fn large_header_blocks_round_trip() {
        let value = "v".repeat(100_000);
        let headers = vec![("big".to_string(), value)];
        let mut enc = HeaderEncoder::new();
        let mut dec = HeaderDecoder::new();
        for _ in 0..3 {
            let block = enc.encode(&headers);
            assert_eq!(dec.decode(&block).unwrap(), headers);
        }
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut buf = BytesMut::from(&b"\x80\x03\x00\x06\x00\xff\xff\xff"[..]);
        buf.put_bytes(0, 8);
        // 16 MiB - 1 is allowed; we only need more bytes.
        assert!(Frame::decode(&mut buf, &mut HeaderDecoder::new())
            .unwrap()
            .is_none());
        let mut short = BytesMut::from(&b"\x80\x03\x00\x06\x00\x00\x00\x02ab"[..]);
        assert!(Frame::decode(&mut short, &mut HeaderDecoder::new()).is_err());
        let mut bad_version = BytesMut::from(&b"\x80\x02\x00\x06\x00\x00\x00\x04abcd"[..]);
        assert!(Frame::decode(&mut bad_version, &mut HeaderDecoder::new()).is_err());
    }
}
