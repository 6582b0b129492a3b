//! Frames: the wire representation (SPEC.md §3–§4).
//!
//! A frame is `Type (1 byte) | Length (varint) | Body (Length bytes)`. [`Frame`] is the validated,
//! borrowed view of one frame: payloads point into the input buffer, nothing is copied or
//! allocated. [`Frame::decode`] checks the length prefix against a limit *before* the body is
//! needed, so a hostile length never makes a reader buffer more than it announced.
//! [`Frame::encode`] writes the canonical encoding; `decode(encode(f)) == f` and, for any input
//! that decodes, `encode(decode(b)) == b`.

mod error;
mod lists;

use crate::event::SchemaKey;
use crate::status::Status;
use crate::varint;

pub use error::DecodeError;
use lists::ack_range_ok;
pub use lists::{Ack, ParamIter, Params};

/// Frame type codes (SPEC.md §4). Codes `0x80..=0xFF` are extensions that receivers skip.
pub mod ty {
    /// Handshake.
    pub const HELLO: u8 = 0x01;
    /// Connection close with status.
    pub const CLOSE: u8 = 0x02;
    /// Graceful shutdown notice.
    pub const GOAWAY: u8 = 0x03;
    /// Keepalive probe.
    pub const PING: u8 = 0x04;
    /// Keepalive answer.
    pub const PONG: u8 = 0x05;
    /// Acknowledgement of received responses (resumption, datagram mode).
    pub const ACK: u8 = 0x06;
    /// Unary call.
    pub const CALL: u8 = 0x10;
    /// Reliable notification.
    pub const NOTIFY: u8 = 0x11;
    /// Unreliable notification.
    pub const SIGNAL: u8 = 0x12;
    /// Response to a call or reliable notification.
    pub const RESPONSE: u8 = 0x13;
    /// Cancellation of a call or reliable notification by its caller.
    pub const CANCEL: u8 = 0x14;
    /// Unreliable notification carrying the method's schema key (SPEC.md §4.21).
    pub const SIGNAL_KEYED: u8 = 0x15;
    /// Open a stream with an initial payload.
    pub const STREAM_OPEN: u8 = 0x18;
    /// One stream item.
    pub const STREAM_DATA: u8 = 0x19;
    /// Graceful end of the sender's direction of a stream.
    pub const STREAM_FIN: u8 = 0x1A;
    /// Abrupt end of a stream.
    pub const STREAM_RESET: u8 = 0x1B;
    /// Per-stream credit grant.
    pub const STREAM_CREDIT: u8 = 0x1C;
    /// Connection-wide stream byte credit grant.
    pub const CONN_CREDIT: u8 = 0x1D;
    /// Resumption: how many items of a stream were received.
    pub const STREAM_RESUME: u8 = 0x1E;
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x20;
    /// First extension type; `0x80..=0xFF` are skipped when unknown.
    pub const EXTENSION_MIN: u8 = 0x80;
}

/// Flag bits of message frames (SPEC.md §4).
pub mod flags {
    /// The message continues in CONTINUATION frames.
    pub const MORE: u8 = 0x01;
    /// STREAM_OPEN only: the opener sends nothing beyond the initial payload.
    pub const FIN: u8 = 0x02;
    /// CALL, NOTIFY and STREAM_OPEN: the frame carries the method's schema key after `method`
    /// (SPEC.md §4.7, §7.10). Only when both peers announced `schema_keys` (§5.8).
    ///
    /// In [`Frame`](super::Frame) a keyed opening frame is [`Frame::Keyed`](super::Frame::Keyed):
    /// the flags of its [`Request`](super::Request) never contain this bit.
    pub const KEY: u8 = 0x04;
}

/// The magic bytes that open every HELLO body.
pub const MAGIC: [u8; 4] = *b"TNDM";
/// Longest peer name in HELLO, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Longest authentication blob in HELLO, in bytes.
pub const MAX_AUTH_LEN: usize = 1024;
/// Longest session token in HELLO, in bytes.
pub const MAX_SESSION_LEN: usize = 64;
/// Longest CLOSE/GOAWAY message, in bytes.
pub const MAX_REASON_LEN: usize = 1024;
/// Most handshake parameters in one HELLO.
pub const MAX_PARAMS: usize = 64;
/// Most ranges in one ACK frame.
pub const MAX_ACK_RANGES: usize = 64;
/// Longest possible frame header: type byte plus an 8-byte length varint.
pub const MAX_HEADER_LEN: usize = 9;

/// The HELLO frame (SPEC.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello<'a> {
    /// Lowest protocol version the sender supports (acceptor: the chosen version).
    pub min_version: u32,
    /// Highest protocol version the sender supports (acceptor: the chosen version).
    pub max_version: u32,
    /// Flag bits; only [`Hello::RESUME`] is defined.
    pub flags: u64,
    /// The sender's name (≤ 255 bytes).
    pub name: &'a [u8],
    /// Opaque authentication blob for the application (≤ 1024 bytes).
    pub auth: &'a [u8],
    /// Session token (≤ 64 bytes).
    pub session: &'a [u8],
    /// Announced limits.
    pub params: Params<'a>,
}

impl Hello<'_> {
    /// Flag: dialer asks to resume `session`; acceptor confirms it resumed.
    pub const RESUME: u64 = 0x01;
}

/// The common body of CALL, NOTIFY and STREAM_OPEN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Flag bits ([`flags::MORE`]; [`flags::FIN`] on STREAM_OPEN only). Never [`flags::KEY`]:
    /// a keyed opening frame is [`Frame::Keyed`].
    pub flags: u8,
    /// Exchange id.
    pub id: u64,
    /// Module (service) id.
    pub module: u32,
    /// Method id within the module.
    pub method: u32,
    /// Relative deadline budget in microseconds; 0 = none.
    pub budget_us: u64,
    /// Total message length when [`flags::MORE`] is set.
    pub total_len: Option<u64>,
    /// The payload (or its first chunk).
    pub payload: &'a [u8],
}

/// One decoded frame, borrowing its payload from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// 0x01 handshake.
    Hello(Hello<'a>),
    /// 0x02 connection close.
    Close {
        /// Why.
        status: Status,
        /// Human-readable detail (≤ 1024 bytes).
        message: &'a [u8],
    },
    /// 0x03 graceful shutdown notice.
    GoAway {
        /// Exchanges the receiver opened with ids below `bound` are (or will be) processed;
        /// those at or above it are not.
        bound: u64,
        /// Why.
        status: Status,
        /// Human-readable detail (≤ 1024 bytes).
        message: &'a [u8],
    },
    /// 0x04 keepalive probe.
    Ping([u8; 8]),
    /// 0x05 keepalive answer.
    Pong([u8; 8]),
    /// 0x06 acknowledgement of received responses.
    Ack(Ack<'a>),
    /// 0x10 unary call.
    Call(Request<'a>),
    /// 0x11 reliable notification.
    Notify(Request<'a>),
    /// 0x12 unreliable notification.
    Signal {
        /// Module id.
        module: u32,
        /// Method id.
        method: u32,
        /// Payload.
        payload: &'a [u8],
    },
    /// 0x15 unreliable notification with the method's schema key (SPEC.md §4.21).
    SignalKeyed {
        /// Module id.
        module: u32,
        /// Method id.
        method: u32,
        /// The method's schema key, as the sender declared it.
        key: SchemaKey,
        /// Payload.
        payload: &'a [u8],
    },
    /// CALL (0x10), NOTIFY (0x11) or STREAM_OPEN (0x18), given by `ty`, with the
    /// [`flags::KEY`] flag: the opening frame carries the schema key of the method it addresses
    /// (SPEC.md §4.7). `req.flags` holds the other flag bits only.
    Keyed {
        /// [`ty::CALL`], [`ty::NOTIFY`] or [`ty::STREAM_OPEN`].
        ty: u8,
        /// The method's schema key, as the opener declared it.
        key: SchemaKey,
        /// The rest of the frame.
        req: Request<'a>,
    },
    /// 0x13 response.
    Response {
        /// Flag bits ([`flags::MORE`]).
        flags: u8,
        /// The call's id.
        id: u64,
        /// Outcome.
        status: Status,
        /// Total message length when MORE is set.
        total_len: Option<u64>,
        /// Payload (or its first chunk).
        payload: &'a [u8],
    },
    /// 0x14 caller cancels.
    Cancel {
        /// The call's id.
        id: u64,
    },
    /// 0x18 stream open.
    StreamOpen(Request<'a>),
    /// 0x19 stream item.
    StreamData {
        /// Flag bits ([`flags::MORE`]).
        flags: u8,
        /// Stream id.
        id: u64,
        /// Total item length when MORE is set.
        total_len: Option<u64>,
        /// Item (or its first chunk).
        payload: &'a [u8],
    },
    /// 0x1A graceful end of the sender's direction.
    StreamFin {
        /// Stream id.
        id: u64,
        /// Outcome (the opener sends OK).
        status: Status,
    },
    /// 0x1B abrupt end of the stream.
    StreamReset {
        /// Stream id.
        id: u64,
        /// Why.
        status: Status,
    },
    /// 0x1C per-stream credit.
    StreamCredit {
        /// Stream id.
        id: u64,
        /// Additional items.
        msgs: u32,
        /// Additional bytes.
        bytes: u32,
    },
    /// 0x1D connection-wide byte credit.
    ConnCredit {
        /// Additional bytes.
        bytes: u32,
    },
    /// 0x1E resumption: items received on a stream.
    StreamResume {
        /// Stream id.
        id: u64,
        /// Number of items of the peer's direction received so far.
        received: u64,
    },
    /// 0x20 continuation of a fragmented message.
    Continuation {
        /// Flag bits ([`flags::MORE`]).
        flags: u8,
        /// The message's exchange id.
        id: u64,
        /// This chunk.
        payload: &'a [u8],
    },
    /// An extension frame (type ≥ 0x80) this build does not know; skipped by receivers.
    Extension {
        /// The type code.
        ty: u8,
        /// The raw body.
        body: &'a [u8],
    },
}

/// Bounds-checked reader over a frame body.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let (v, n) = varint::decode(self.buf)?;
        self.buf = &self.buf[n..];
        Ok(v)
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError::ValueOutOfRange)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.buf.split_first().ok_or(DecodeError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn bytes(&mut self, cap: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        if n > cap as u64 {
            return Err(DecodeError::FieldTooLong);
        }
        self.take(n as usize)
    }
    fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }
    fn status(&mut self) -> Result<Status, DecodeError> {
        self.u32().map(Status)
    }
    fn flags(&mut self, allowed: u8) -> Result<u8, DecodeError> {
        let f = self.u8()?;
        if f & !allowed != 0 {
            return Err(DecodeError::InvalidFlags(f.into()));
        }
        Ok(f)
    }
    /// total_len (present iff MORE) followed by the payload.
    fn message(&mut self, flags: u8) -> Result<(Option<u64>, &'a [u8]), DecodeError> {
        let total = if flags & flags::MORE != 0 { Some(self.varint()?) } else { None };
        let payload = self.rest();
        if let Some(t) = total {
            if t <= payload.len() as u64 {
                return Err(DecodeError::InvalidLength);
            }
        }
        Ok((total, payload))
    }
    /// An opening frame (CALL, NOTIFY, STREAM_OPEN of type `t`), keyed or not.
    fn opening(&mut self, t: u8, allowed: u8) -> Result<Frame<'a>, DecodeError> {
        let fl = self.flags(allowed | flags::KEY)?;
        let id = self.varint()?;
        let module = self.u32()?;
        let method = self.u32()?;
        let key = if fl & flags::KEY != 0 { Some(self.key()?) } else { None };
        let budget_us = self.varint()?;
        let (total_len, payload) = self.message(fl)?;
        let req = Request { flags: fl & !flags::KEY, id, module, method, budget_us, total_len, payload };
        Ok(Frame::open(t, key, req))
    }
    fn key(&mut self) -> Result<SchemaKey, DecodeError> {
        let mut k = [0u8; SchemaKey::LEN];
        k.copy_from_slice(self.take(SchemaKey::LEN)?);
        Ok(SchemaKey(k))
    }
    fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// Bounds-checked writer; every frame's length is computed first, so writes never fail.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn varint(&mut self, v: u64) {
        self.pos += varint::encode(v, &mut self.buf[self.pos..]);
    }
    fn u8(&mut self, b: u8) {
        self.buf[self.pos] = b;
        self.pos += 1;
    }
    fn raw(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64);
        self.raw(b);
    }
    fn request(&mut self, r: &Request<'_>, key: Option<&SchemaKey>) {
        // The KEY bit comes from the variant (`Frame::Keyed`), never from `r.flags`.
        self.u8((r.flags & !flags::KEY) | if key.is_some() { flags::KEY } else { 0 });
        self.varint(r.id);
        self.varint(r.module.into());
        self.varint(r.method.into());
        if let Some(k) = key {
            self.raw(&k.0);
        }
        self.varint(r.budget_us);
        if let Some(t) = r.total_len {
            self.varint(t);
        }
        self.raw(r.payload);
    }
}

fn blen(b: &[u8]) -> usize {
    varint::len(b.len() as u64) + b.len()
}

fn msg_len(total: Option<u64>, payload: &[u8]) -> usize {
    total.map_or(0, varint::len) + payload.len()
}

fn req_len(r: &Request<'_>) -> usize {
    1 + varint::len(r.id)
        + varint::len(r.module.into())
        + varint::len(r.method.into())
        + varint::len(r.budget_us)
        + msg_len(r.total_len, r.payload)
}

/// What [`Frame::decode`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete frame and the number of bytes it occupied.
    Frame(Frame<'a>, usize),
    /// The buffer holds only the start of a frame; at least this many bytes in total are needed.
    Incomplete(usize),
}

impl<'a> Frame<'a> {
    /// The opening frame of type `ty` ([`ty::CALL`], [`ty::NOTIFY`] or [`ty::STREAM_OPEN`]),
    /// keyed ([`Frame::Keyed`]) when `key` is given.
    pub fn open(ty: u8, key: Option<SchemaKey>, req: Request<'a>) -> Frame<'a> {
        match (key, ty) {
            (Some(key), ty) => Frame::Keyed { ty, key, req },
            (None, ty::CALL) => Frame::Call(req),
            (None, ty::NOTIFY) => Frame::Notify(req),
            (None, _) => Frame::StreamOpen(req),
        }
    }

    /// For an opening frame (CALL, NOTIFY, STREAM_OPEN, keyed or not): its type, schema key and
    /// request.
    pub fn opening(&self) -> Option<(u8, Option<SchemaKey>, Request<'a>)> {
        match *self {
            Frame::Call(r) => Some((ty::CALL, None, r)),
            Frame::Notify(r) => Some((ty::NOTIFY, None, r)),
            Frame::StreamOpen(r) => Some((ty::STREAM_OPEN, None, r)),
            Frame::Keyed { ty, key, req } => Some((ty, Some(key), req)),
            _ => None,
        }
    }

    /// The type code of this frame.
    pub fn ty(&self) -> u8 {
        match self {
            Frame::Hello(_) => ty::HELLO,
            Frame::Close { .. } => ty::CLOSE,
            Frame::GoAway { .. } => ty::GOAWAY,
            Frame::Ping(_) => ty::PING,
            Frame::Pong(_) => ty::PONG,
            Frame::Ack(_) => ty::ACK,
            Frame::Call(_) => ty::CALL,
            Frame::Notify(_) => ty::NOTIFY,
            Frame::Signal { .. } => ty::SIGNAL,
            Frame::SignalKeyed { .. } => ty::SIGNAL_KEYED,
            Frame::Keyed { ty, .. } => *ty,
            Frame::Response { .. } => ty::RESPONSE,
            Frame::Cancel { .. } => ty::CANCEL,
            Frame::StreamOpen(_) => ty::STREAM_OPEN,
            Frame::StreamData { .. } => ty::STREAM_DATA,
            Frame::StreamFin { .. } => ty::STREAM_FIN,
            Frame::StreamReset { .. } => ty::STREAM_RESET,
            Frame::StreamCredit { .. } => ty::STREAM_CREDIT,
            Frame::ConnCredit { .. } => ty::CONN_CREDIT,
            Frame::StreamResume { .. } => ty::STREAM_RESUME,
            Frame::Continuation { .. } => ty::CONTINUATION,
            Frame::Extension { ty, .. } => *ty,
        }
    }

    /// Length of the body in bytes.
    pub fn body_len(&self) -> usize {
        match self {
            Frame::Hello(h) => {
                4 + varint::len(h.min_version.into())
                    + varint::len(h.max_version.into())
                    + varint::len(h.flags)
                    + blen(h.name)
                    + blen(h.auth)
                    + blen(h.session)
                    + varint::len(h.params.count as u64)
                    + h.params.raw.len()
            }
            Frame::Close { status, message } => varint::len(status.0.into()) + blen(message),
            Frame::GoAway { bound, status, message } => {
                varint::len(*bound) + varint::len(status.0.into()) + blen(message)
            }
            Frame::Ping(_) | Frame::Pong(_) => 8,
            Frame::Ack(a) => varint::len(a.count as u64) + a.raw.len(),
            Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => req_len(r),
            Frame::Signal { module, method, payload } => {
                varint::len((*module).into()) + varint::len((*method).into()) + payload.len()
            }
            Frame::SignalKeyed { module, method, payload, .. } => {
                varint::len((*module).into()) + varint::len((*method).into()) + SchemaKey::LEN + payload.len()
            }
            Frame::Keyed { req, .. } => req_len(req) + SchemaKey::LEN,
            Frame::Response { id, status, total_len, payload, .. } => {
                1 + varint::len(*id) + varint::len(status.0.into()) + msg_len(*total_len, payload)
            }
            Frame::Cancel { id } => varint::len(*id),
            Frame::StreamData { id, total_len, payload, .. } => {
                1 + varint::len(*id) + msg_len(*total_len, payload)
            }
            Frame::StreamFin { id, status } | Frame::StreamReset { id, status } => {
                varint::len(*id) + varint::len(status.0.into())
            }
            Frame::StreamCredit { id, msgs, bytes } => {
                varint::len(*id) + varint::len((*msgs).into()) + varint::len((*bytes).into())
            }
            Frame::ConnCredit { bytes } => varint::len((*bytes).into()),
            Frame::StreamResume { id, received } => varint::len(*id) + varint::len(*received),
            Frame::Continuation { id, payload, .. } => 1 + varint::len(*id) + payload.len(),
            Frame::Extension { body, .. } => body.len(),
        }
    }

    /// Total encoded length: header plus body.
    pub fn encoded_len(&self) -> usize {
        let b = self.body_len();
        1 + varint::len(b as u64) + b
    }

    /// Writes the frame at the start of `out` and returns its length, or `None` if `out` is
    /// shorter than [`Frame::encoded_len`] (nothing useful is written then).
    ///
    /// The frame must be valid as [`Frame::decode`] would return it (ids and lengths ≤ 2^62-1,
    /// fields within their caps); the core only encodes frames it built itself.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        self.encode_sized(self.body_len(), out)
    }

    /// [`encode`](Self::encode) with the frame's [`body_len`](Self::body_len) already known
    /// (the transmit path computes it once per frame, not three times).
    pub(crate) fn encode_sized(&self, body: usize, out: &mut [u8]) -> Option<usize> {
        debug_assert_eq!(body, self.body_len());
        let total = 1 + varint::len(body as u64) + body;
        if out.len() < total {
            return None;
        }
        let mut w = Writer { buf: out, pos: 0 };
        w.u8(self.ty());
        w.varint(body as u64);
        match self {
            Frame::Hello(h) => {
                w.raw(&MAGIC);
                w.varint(h.min_version.into());
                w.varint(h.max_version.into());
                w.varint(h.flags);
                w.bytes(h.name);
                w.bytes(h.auth);
                w.bytes(h.session);
                w.varint(h.params.count as u64);
                w.raw(h.params.raw);
            }
            Frame::Close { status, message } => {
                w.varint(status.0.into());
                w.bytes(message);
            }
            Frame::GoAway { bound, status, message } => {
                w.varint(*bound);
                w.varint(status.0.into());
                w.bytes(message);
            }
            Frame::Ping(d) | Frame::Pong(d) => w.raw(d),
            Frame::Ack(a) => {
                w.varint(a.count as u64);
                w.raw(a.raw);
            }
            Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => w.request(r, None),
            Frame::Keyed { key, req, .. } => w.request(req, Some(key)),
            Frame::Signal { module, method, payload } => {
                w.varint((*module).into());
                w.varint((*method).into());
                w.raw(payload);
            }
            Frame::SignalKeyed { module, method, key, payload } => {
                w.varint((*module).into());
                w.varint((*method).into());
                w.raw(&key.0);
                w.raw(payload);
            }
            Frame::Response { flags, id, status, total_len, payload } => {
                w.u8(*flags);
                w.varint(*id);
                w.varint(status.0.into());
                if let Some(t) = total_len {
                    w.varint(*t);
                }
                w.raw(payload);
            }
            Frame::Cancel { id } => w.varint(*id),
            Frame::StreamData { flags, id, total_len, payload } => {
                w.u8(*flags);
                w.varint(*id);
                if let Some(t) = total_len {
                    w.varint(*t);
                }
                w.raw(payload);
            }
            Frame::StreamFin { id, status } | Frame::StreamReset { id, status } => {
                w.varint(*id);
                w.varint(status.0.into());
            }
            Frame::StreamCredit { id, msgs, bytes } => {
                w.varint(*id);
                w.varint((*msgs).into());
                w.varint((*bytes).into());
            }
            Frame::ConnCredit { bytes } => w.varint((*bytes).into()),
            Frame::StreamResume { id, received } => {
                w.varint(*id);
                w.varint(*received);
            }
            Frame::Continuation { flags, id, payload } => {
                w.u8(*flags);
                w.varint(*id);
                w.raw(payload);
            }
            Frame::Extension { body, .. } => w.raw(body),
        }
        debug_assert_eq!(w.pos, total);
        Some(total)
    }

    /// Reads the frame header at the start of `buf`: `(type, body_len, header_len)`, or
    /// `Ok(None)` if `buf` is too short to hold the header. Rejects a body longer than
    /// `max_body` before the body itself arrives.
    pub fn peek_header(buf: &[u8], max_body: usize) -> Result<Option<(u8, usize, usize)>, DecodeError> {
        let Some(&t) = buf.first() else {
            return Ok(None);
        };
        let Some(n) = varint::peek_len(&buf[1..]) else {
            return Ok(None);
        };
        if buf.len() < 1 + n {
            return Ok(None);
        }
        let (len, _) = varint::decode(&buf[1..])?;
        if len > max_body as u64 {
            return Err(DecodeError::FrameTooLarge { len, max: max_body });
        }
        Ok(Some((t, len as usize, 1 + n)))
    }

    /// Decodes the frame at the start of `buf`, whose body may be at most `max_body` bytes.
    ///
    /// Returns [`Decoded::Incomplete`] when more bytes are needed (never for a length above
    /// `max_body`: that is [`DecodeError::FrameTooLarge`] as soon as the header is readable).
    pub fn decode(buf: &'a [u8], max_body: usize) -> Result<Decoded<'a>, DecodeError> {
        let Some((t, len, hlen)) = Self::peek_header(buf, max_body)? else {
            return Ok(Decoded::Incomplete(buf.len() + 1));
        };
        // Cannot overflow on 64-bit targets; on 32-bit ones a huge `max_body` could let it.
        let end =
            hlen.checked_add(len).ok_or(DecodeError::FrameTooLarge { len: len as u64, max: max_body })?;
        if buf.len() < end {
            return Ok(Decoded::Incomplete(end));
        }
        let f = Self::decode_body(t, &buf[hlen..end])?;
        Ok(Decoded::Frame(f, end))
    }

    /// Decodes a body of type `t` that must be consumed exactly.
    pub fn decode_body(t: u8, body: &'a [u8]) -> Result<Frame<'a>, DecodeError> {
        let mut r = Reader { buf: body };
        let f = match t {
            ty::HELLO => {
                if r.take(4)? != MAGIC {
                    return Err(DecodeError::BadMagic);
                }
                Frame::Hello(Hello {
                    min_version: r.u32()?,
                    max_version: r.u32()?,
                    flags: match r.varint()? {
                        f if f & !Hello::RESUME != 0 => return Err(DecodeError::InvalidFlags(f)),
                        f => f,
                    },
                    name: r.bytes(MAX_NAME_LEN)?,
                    auth: r.bytes(MAX_AUTH_LEN)?,
                    session: r.bytes(MAX_SESSION_LEN)?,
                    params: Params::parse(&mut r)?,
                })
            }
            ty::CLOSE => Frame::Close { status: r.status()?, message: r.bytes(MAX_REASON_LEN)? },
            ty::GOAWAY => {
                Frame::GoAway { bound: r.varint()?, status: r.status()?, message: r.bytes(MAX_REASON_LEN)? }
            }
            ty::PING | ty::PONG => {
                let mut d = [0u8; 8];
                d.copy_from_slice(r.take(8)?);
                if t == ty::PING {
                    Frame::Ping(d)
                } else {
                    Frame::Pong(d)
                }
            }
            ty::ACK => {
                let count = r.varint()?;
                if count > MAX_ACK_RANGES as u64 {
                    return Err(DecodeError::FieldTooLong);
                }
                let start = r.buf;
                for _ in 0..count {
                    let first = r.varint()?;
                    let n = r.varint()?;
                    if !ack_range_ok(first, n) {
                        return Err(DecodeError::InvalidLength);
                    }
                }
                let used = start.len() - r.buf.len();
                Frame::Ack(Ack { count: count as usize, raw: &start[..used] })
            }
            ty::CALL | ty::NOTIFY => r.opening(t, flags::MORE)?,
            ty::STREAM_OPEN => r.opening(t, flags::MORE | flags::FIN)?,
            ty::SIGNAL => Frame::Signal { module: r.u32()?, method: r.u32()?, payload: r.rest() },
            ty::SIGNAL_KEYED => {
                Frame::SignalKeyed { module: r.u32()?, method: r.u32()?, key: r.key()?, payload: r.rest() }
            }
            ty::RESPONSE => {
                let flags = r.flags(flags::MORE)?;
                let id = r.varint()?;
                let status = r.status()?;
                let (total_len, payload) = r.message(flags)?;
                Frame::Response { flags, id, status, total_len, payload }
            }
            ty::CANCEL => Frame::Cancel { id: r.varint()? },
            ty::STREAM_DATA => {
                let flags = r.flags(flags::MORE)?;
                let id = r.varint()?;
                let (total_len, payload) = r.message(flags)?;
                Frame::StreamData { flags, id, total_len, payload }
            }
            ty::STREAM_FIN => Frame::StreamFin { id: r.varint()?, status: r.status()? },
            ty::STREAM_RESET => Frame::StreamReset { id: r.varint()?, status: r.status()? },
            ty::STREAM_CREDIT => Frame::StreamCredit { id: r.varint()?, msgs: r.u32()?, bytes: r.u32()? },
            ty::CONN_CREDIT => Frame::ConnCredit { bytes: r.u32()? },
            ty::STREAM_RESUME => Frame::StreamResume { id: r.varint()?, received: r.varint()? },
            ty::CONTINUATION => {
                Frame::Continuation { flags: r.flags(flags::MORE)?, id: r.varint()?, payload: r.rest() }
            }
            t if t >= ty::EXTENSION_MIN => Frame::Extension { ty: t, body: r.rest() },
            t => return Err(DecodeError::UnknownFrameType(t)),
        };
        r.finish()?;
        Ok(f)
    }
}

#[cfg(test)]
pub(crate) mod tests;
