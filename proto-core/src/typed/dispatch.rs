//! Serving a declared service with the core alone, without an allocator: [`Dispatcher`] reads
//! the connection's events, answers the requests for one service's module with the handlers of
//! its generated `CoreServer` trait (SPEC.md §7.9 dispatch, §7.10 schema keys, §8.7 status
//! bodies) and hands every other event to the application. Requests are copied into a buffer
//! the caller provides, responses are encoded into another: firmware places both in `static`
//! memory.
//!
//! Served kinds: unary methods, notifications (NOTIFY and SIGNAL) and server-streaming methods
//! (the handler sends items within the credit the opener granted, [`ItemSink`], and its result
//! ends the stream). Client-streaming and bidirectional methods need the handler to wait for
//! items, which a single-threaded sans-IO loop cannot do inside one call: the dispatcher refuses
//! them with UNIMPLEMENTED, and firmware that needs them drives those streams with the core's
//! stream API.

use core::fmt::{self, Write as _};
use core::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{decode, encode, MethodDef, MethodKind, NoError, Notification, ServiceDef, Streaming, Unary};
use crate::config::Features;
use crate::conn::Connection;
use crate::error::ApiError;
use crate::event::{Event, MethodId, RequestKind, SchemaKey};
use crate::status::Status;
use crate::time::Instant;

/// What a core handler is told about the request.
#[derive(Clone, Copy, Debug)]
pub struct CoreCtx {
    /// The method being served.
    pub method: &'static MethodDef,
    /// The exchange id (0 for a signal).
    pub id: u64,
    /// When the caller's budget runs out, on the connection's clock.
    pub deadline: Option<Instant>,
    /// The time the request is served at.
    pub now: Instant,
}

/// A core handler's failure: the method's application error (sent as APPLICATION_ERROR with the
/// error encoded as details), or a status with a message (SPEC.md §8.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreError<E = NoError> {
    /// The typed application error the method declares.
    App(E),
    /// A status (not OK) and a message for the caller.
    Status {
        /// The status.
        status: Status,
        /// A human-readable message (sent only when the peer understands status bodies).
        message: &'static str,
    },
}

impl<E> From<Status> for CoreError<E> {
    fn from(status: Status) -> Self {
        CoreError::Status { status, message: "" }
    }
}

/// A declared service with a no-allocator handler (the generated `Serve<S>` implements it when
/// `S` implements the service's `CoreServer`).
pub trait CoreService {
    /// The service's declaration.
    const DEF: &'static ServiceDef;
    /// Runs the handler of the method the request addresses.
    fn serve(&mut self, req: &mut Dispatched<'_, '_, '_>);
}

/// Serves one declared service on a [`Connection`] with caller-provided buffers: in the driver
/// loop, after feeding input, call [`drive`](Self::drive) instead of draining
/// [`Connection::poll_event`] yourself. `benches/firmware-size/src/bin/with_service.rs` is a
/// complete firmware image built this way (no allocator, static buffers).
pub struct Dispatcher<'b> {
    request: &'b mut [u8],
    reply: &'b mut [u8],
}

impl fmt::Debug for Dispatcher<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("request_buffer", &self.request.len())
            .field("reply_buffer", &self.reply.len())
            .finish()
    }
}

/// One request being served: what the generated `Serve::serve` matches on and hands to the
/// handler.
pub struct Dispatched<'c, 'a, 'b> {
    conn: &'c mut Connection<'a>,
    ctx: CoreCtx,
    kind: RequestKind,
    payload: &'b [u8],
    reply: &'b mut [u8],
    signal: bool,
    served: bool,
}

impl fmt::Debug for Dispatched<'_, '_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatched").field("ctx", &self.ctx).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// Sends the items of a server-streaming method from a core handler.
pub struct ItemSink<'s, 'a, T> {
    conn: &'s mut Connection<'a>,
    id: u64,
    buf: &'s mut [u8],
    sent: u32,
    _item: PhantomData<fn(&T)>,
}

impl<T> fmt::Debug for ItemSink<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ItemSink").field("stream", &self.id).field("sent", &self.sent).finish()
    }
}

impl<T: Serialize> ItemSink<'_, '_, T> {
    /// Sends one item. [`ApiError::NoCredit`] when the opener's window is full (a core handler
    /// cannot wait: send at most the credit the opener granted, or return and let the stream
    /// end), [`ApiError::TooLarge`] when it does not fit the reply buffer or the peer's limits.
    pub fn send(&mut self, item: &T) -> Result<(), ApiError> {
        let len = match encode(item, self.buf) {
            Ok(b) => b.len(),
            Err(_) => return Err(ApiError::TooLarge { size: self.buf.len() + 1, limit: self.buf.len() }),
        };
        self.conn.stream_send(self.id, &self.buf[..len])?;
        self.sent += 1;
        Ok(())
    }

    /// Items sent so far.
    pub fn sent(&self) -> u32 {
        self.sent
    }
}

impl<'b> Dispatcher<'b> {
    /// A dispatcher copying requests into `request` (the largest request it can serve) and
    /// encoding responses, stream items and status bodies into `reply`.
    pub fn new(request: &'b mut [u8], reply: &'b mut [u8]) -> Self {
        Dispatcher { request, reply }
    }

    /// Drains the connection's events: requests and signals are served by `service` (or refused
    /// as SPEC.md §7.9 and §7.10 say), every other event goes to `other`.
    pub fn drive<S: CoreService>(
        &mut self,
        conn: &mut Connection<'_>,
        now: Instant,
        service: &mut S,
        mut other: impl FnMut(Event<'_>),
    ) {
        while let Some(ev) = conn.poll_event(now) {
            let (id, kind, method, deadline, len) = match ev {
                Event::Request { id, kind, method, deadline, payload } => {
                    (id, Some(kind), method, deadline, self.take(payload))
                }
                Event::Signal { method, payload } => (0, None, method, None, self.take(payload)),
                ev => {
                    other(ev);
                    continue;
                }
            };
            let key = conn.request_key();
            self.serve_one(conn, now, service, (id, kind, method, deadline, key, len));
        }
    }

    /// Copies a payload into the request buffer; `None` when it does not fit.
    fn take(&mut self, payload: &[u8]) -> Option<usize> {
        let buf = self.request.get_mut(..payload.len())?;
        buf.copy_from_slice(payload);
        Some(payload.len())
    }

    #[allow(clippy::type_complexity)]
    fn serve_one<S: CoreService>(
        &mut self,
        conn: &mut Connection<'_>,
        now: Instant,
        service: &mut S,
        (id, kind, method, deadline, key, len): (
            u64,
            Option<RequestKind>,
            MethodId,
            Option<Instant>,
            Option<SchemaKey>,
            Option<usize>,
        ),
    ) {
        let def = S::DEF;
        let refuse =
            |conn: &mut Connection<'_>, reply: &mut [u8], status: Status, msg: fmt::Arguments<'_>| {
                refuse(conn, reply, id, kind, status, msg)
            };
        if method.module != def.module {
            return refuse(
                conn,
                self.reply,
                Status::UNKNOWN_MODULE,
                format_args!("no module {}", method.module),
            );
        }
        let Some(m) = def.method(method.method) else {
            return refuse(
                conn,
                self.reply,
                Status::UNKNOWN_METHOD,
                format_args!("{} has no method {}", def.name, method.method),
            );
        };
        let fits = match (m.kind, kind) {
            (k, Some(RequestKind::Call)) => k == MethodKind::Unary,
            (k, Some(RequestKind::Notify) | None) => k.is_notification(),
            (MethodKind::ServerStream, Some(RequestKind::Stream { .. })) => true,
            _ => false,
        };
        if !fits {
            return refuse(
                conn,
                self.reply,
                Status::UNIMPLEMENTED,
                format_args!("{} is served here as a {} method", m.path, m.kind.name()),
            );
        }
        if let Some(k) = key.filter(|k| *k != m.key) {
            return refuse(
                conn,
                self.reply,
                Status::SCHEMA_MISMATCH,
                format_args!(
                    "schema mismatch for {}: the caller's key is {k}, this side's is {}; both ends must use the same declaration",
                    m.path, m.key
                ),
            );
        }
        let Some(len) = len else {
            return refuse(
                conn,
                self.reply,
                Status::RESOURCE_EXHAUSTED,
                format_args!("request of {} larger than this side's request buffer", m.path),
            );
        };
        let ctx = CoreCtx { method: m, id, deadline, now };
        let (signal, kind) = (kind.is_none(), kind.unwrap_or(RequestKind::Notify));
        let payload = &self.request[..len];
        let mut d = Dispatched { conn, ctx, kind, payload, reply: self.reply, signal, served: false };
        service.serve(&mut d);
        if !d.served {
            d.unimplemented();
        }
    }
}

/// Answers a refused request: a call or notification with RESPONSE(status, status body), a
/// stream with STREAM_RESET(status); a signal is dropped.
fn refuse(
    conn: &mut Connection<'_>,
    reply: &mut [u8],
    id: u64,
    kind: Option<RequestKind>,
    status: Status,
    msg: fmt::Arguments<'_>,
) {
    match kind {
        None => {}
        Some(RequestKind::Stream { .. }) => {
            let _ = conn.stream_reset(id, status);
        }
        Some(_) => {
            let n = status_body(conn, reply, msg, &[]);
            let _ = conn.respond(id, status, &reply[..n]);
        }
    }
}

/// Writes the status body (SPEC.md §8.7) of `message` and `details` into `out` if the peer
/// understands status bodies; returns its length (0: none).
fn status_body(conn: &Connection<'_>, out: &mut [u8], message: fmt::Arguments<'_>, details: &[u8]) -> usize {
    if !conn.features().contains(Features::ERROR_DETAILS) {
        return 0;
    }
    // The message goes at offset 2 (a two-byte length covers every message up to 1024 bytes),
    // then the length is written in its canonical form.
    let mut w = SliceWriter { buf: out.get_mut(2..).unwrap_or(&mut []), len: 0 };
    let _ = w.write_fmt(message);
    let mlen = w.len.min(crate::frame::MAX_REASON_LEN);
    let mlen = floor_char_boundary(&out[2..2 + mlen], mlen);
    let hdr = crate::varint::len(mlen as u64);
    if hdr == 1 {
        out.copy_within(2..2 + mlen, 1);
    }
    crate::varint::encode(mlen as u64, &mut out[..hdr]);
    let end = hdr + mlen;
    if out.len() < end + details.len() {
        return end;
    }
    out[end..end + details.len()].copy_from_slice(details);
    end + details.len()
}

/// The longest prefix of `b` (at most `n` bytes) that ends on a UTF-8 character boundary.
fn floor_char_boundary(b: &[u8], n: usize) -> usize {
    let mut n = n.min(b.len());
    while n > 0 && n < b.len() && (b[n] & 0xC0) == 0x80 {
        n -= 1;
    }
    n
}

struct SliceWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl fmt::Write for SliceWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len().saturating_sub(self.len);
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl<'c, 'a, 'b> Dispatched<'c, 'a, 'b> {
    /// The method id the request addresses.
    pub fn method(&self) -> u32 {
        self.ctx.method.id.method
    }

    /// Answers with `status` and the first `body` bytes of the reply buffer.
    fn finish(&mut self, status: Status, body: usize) {
        self.served = true;
        let id = self.ctx.id;
        match self.kind {
            _ if self.signal => {}
            // The handler's result ends the responder's direction (SPEC.md §7.4.4).
            RequestKind::Stream { .. } => {
                let _ = self.conn.stream_finish(id, status);
            }
            _ => {
                let _ = self.conn.respond(id, status, &self.reply[..body]);
            }
        }
    }

    fn fail<E: Serialize>(&mut self, e: CoreError<E>) {
        let (status, n) = match e {
            CoreError::App(e) => {
                // A status body with an empty message and the error as details (SPEC.md §8.7).
                let n = match self.reply.split_first_mut() {
                    Some((first, rest)) if self.conn.features().contains(Features::ERROR_DETAILS) => {
                        *first = 0;
                        encode(&e, rest).map_or(0, |b| b.len() + 1)
                    }
                    _ => 0,
                };
                (Status::APPLICATION_ERROR, n)
            }
            CoreError::Status { status, message } => {
                (status, status_body(self.conn, self.reply, format_args!("{message}"), &[]))
            }
        };
        self.finish(status, n);
    }

    /// Serves a unary method with `f`.
    pub fn unary<Req, Resp, E, F>(&mut self, method: &'static Unary<Req, Resp, E>, f: F)
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        E: Serialize,
        F: FnOnce(&CoreCtx, Req) -> Result<Resp, CoreError<E>>,
    {
        let Ok(req) = decode::<Req>(self.payload) else { return self.bad_payload(method.path()) };
        match f(&self.ctx, req) {
            Ok(resp) => match encode(&resp, self.reply) {
                Ok(b) => {
                    let n = b.len();
                    self.finish(Status::OK, n);
                }
                Err(_) => self.fail::<NoError>(CoreError::Status {
                    status: Status::ENCODE_FAILED,
                    message: "the response does not fit this side's reply buffer",
                }),
            },
            Err(e) => self.fail(e),
        }
    }

    /// Serves a notification (NOTIFY or SIGNAL) with `f`.
    pub fn notify<T, F>(&mut self, method: &'static Notification<T>, f: F)
    where
        T: DeserializeOwned,
        F: FnOnce(&CoreCtx, T) -> Result<(), CoreError<NoError>>,
    {
        let Ok(v) = decode::<T>(self.payload) else { return self.bad_payload(method.path()) };
        match f(&self.ctx, v) {
            Ok(()) => self.finish(Status::OK, 0),
            Err(e) => self.fail(e),
        }
    }

    /// Serves a server-streaming method with `f`, which sends items through the [`ItemSink`];
    /// its result ends the stream (STREAM_FIN with OK or the error's status).
    pub fn server_stream<Init, Down, F>(&mut self, method: &'static Streaming<Init, (), Down>, f: F)
    where
        Init: DeserializeOwned,
        Down: Serialize,
        F: for<'s> FnOnce(&CoreCtx, Init, &mut ItemSink<'s, 'a, Down>) -> Result<(), CoreError<NoError>>,
    {
        let Ok(init) = decode::<Init>(self.payload) else { return self.bad_payload(method.path()) };
        let ctx = self.ctx;
        let mut sink = ItemSink {
            conn: &mut *self.conn,
            id: ctx.id,
            buf: &mut *self.reply,
            sent: 0,
            _item: PhantomData,
        };
        let status = match f(&ctx, init, &mut sink) {
            Ok(()) => Status::OK,
            Err(CoreError::Status { status, .. }) => status,
            Err(CoreError::App(e)) => match e {},
        };
        self.finish(status, 0);
    }

    /// Refuses the request as a kind this side does not serve with the core alone.
    pub fn unimplemented(&mut self) {
        self.finish(Status::UNIMPLEMENTED, 0);
    }

    fn bad_payload(&mut self, path: &str) {
        let n = status_body(
            self.conn,
            self.reply,
            format_args!("the request does not decode as the declared type of {path}"),
            &[],
        );
        self.finish(Status::BAD_PAYLOAD, n);
    }
}
