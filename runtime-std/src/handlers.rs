//! The handler registry ([`Handlers`]), the context a handler receives ([`Ctx`]), and running a
//! handler on a worker.

use crate::cancel::Cancel;
use crate::clock;
use crate::conn::Shared;
use crate::peer::Peer;
use crate::stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};
use crate::transport::PeerCredentials;
use serde::{de::DeserializeOwned, Serialize};
use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;
use tandem_core::typed::{self, Notification, Streaming, Unary};
use tandem_core::{Instant, MethodId, Status};

type UnaryFn = dyn Fn(&Ctx, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync;
type NotifyFn = dyn Fn(&Ctx, &[u8]) -> Result<(), Status> + Send + Sync;
type StreamFn = dyn Fn(&Ctx, &[u8], RawReceiver, RawSender) -> Result<(), Status> + Send + Sync;
type InlineFn = dyn Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync;

/// A registered handler.
pub(crate) enum Handler {
    Unary(Box<UnaryFn>),
    Notify(Box<NotifyFn>),
    Stream(Box<StreamFn>),
    /// A unary handler run on the connection's driver thread (see [`Handlers::raw_unary_inline`]).
    Inline(Box<InlineFn>),
}

/// What a handler knows about the request it serves.
pub struct Ctx {
    peer: Peer,
    method: MethodId,
    deadline: Option<Instant>,
    cancelled: Arc<Cancel>,
}

impl Ctx {
    /// The connection the request came from: call back over it (both sides are equal).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The name the peer gave in its HELLO.
    pub fn peer_name(&self) -> &str {
        self.peer.name()
    }

    /// The peer process's credentials (uid, gid, pid), on Unix sockets.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.peer.credentials()
    }

    /// The method being served.
    pub fn method(&self) -> MethodId {
        self.method
    }

    /// When the caller's deadline passes, if it sent one.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline.map(clock::to_std)
    }

    /// Whether the caller cancelled, its deadline passed, or the connection was lost: stop
    /// working; whatever the handler returns now is replaced by the cancellation status.
    /// Notifications sent unreliably cannot be cancelled.
    pub fn is_cancelled(&self) -> bool {
        // The core reports a passed deadline as a cancellation (it owns the timers).
        self.cancelled.is_set()
    }

    /// Waits until the request is cancelled (as [`is_cancelled`](Self::is_cancelled) says) or
    /// `timeout` has passed, and returns whether it was cancelled. This is how a handler
    /// sleeps or holds a request open: unlike `thread::sleep`, it wakes at once on
    /// cancellation, and meanwhile its worker is released to run other handlers (the handler
    /// is *parked*, see [`ServerConfig::workers`](crate::ServerConfig::workers)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tandem_std::{Handlers, Status, Unary};
    /// const SLEEP: Unary<u64, bool> = Unary::new(1, 1);
    /// let handlers = Handlers::new().unary(&SLEEP, |ctx, ms| {
    ///     // Sleep `ms` unless the caller cancels first; answer whether it did.
    ///     Ok(ctx.wait_cancelled(Duration::from_millis(ms)))
    /// });
    /// ```
    pub fn wait_cancelled(&self, timeout: Duration) -> bool {
        self.cancelled.wait(timeout)
    }

    /// Runs `f`, which blocks outside the runtime (file or database I/O, `thread::sleep`, a
    /// lock held by a slow thread, a call into another library that waits), with the handler
    /// parked meanwhile: the pool runs other handlers on other threads while `f` waits, so
    /// one slow dependency does not stall every request. Waits inside the runtime (stream
    /// `send`/`recv`, calls on a [`Peer`], [`wait_cancelled`](Self::wait_cancelled)) park by
    /// themselves; `blocking` is for everything else. Do not use it around CPU-bound work:
    /// a parked handler no longer counts against [`ServerConfig::workers`](crate::ServerConfig::workers).
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        let _parked = crate::pool::parked();
        f()
    }
}

/// What an inline unary handler ([`Handlers::raw_unary_inline`]) knows about the request.
///
/// Unlike [`Ctx`] it offers no [`Peer`]: an inline handler runs on the connection's driver
/// thread while that thread holds the connection, so it cannot make calls over it.
pub struct InlineCtx<'a> {
    shared: &'a Shared,
    method: MethodId,
    deadline: Option<Instant>,
}

impl InlineCtx<'_> {
    /// The name the peer gave in its HELLO.
    pub fn peer_name(&self) -> &str {
        self.shared.name()
    }

    /// The peer process's credentials (uid, gid, pid), on Unix sockets.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.shared.creds
    }

    /// The method being served.
    pub fn method(&self) -> MethodId {
        self.method
    }

    /// When the caller's deadline passes, if it sent one.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline.map(clock::to_std)
    }
}

/// The methods this side serves. Build it once and hand it to
/// [`Server::bind`](crate::Server::bind) or [`Client::connect`](crate::Client::connect).
///
/// A request for a module nothing is registered in is answered UNKNOWN_MODULE, for an
/// unregistered method of a known module UNKNOWN_METHOD, for a registered method with another
/// exchange type UNIMPLEMENTED; an undecodable request BAD_PAYLOAD, an unencodable response
/// ENCODE_FAILED, and a panicking handler INTERNAL. None of these closes the connection.
#[derive(Default)]
pub struct Handlers {
    map: HashMap<MethodId, Handler>,
    modules: HashSet<u32>,
}

impl core::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut ids: Vec<_> = self.map.keys().collect();
        ids.sort();
        f.debug_struct("Handlers").field("methods", &ids).finish()
    }
}

impl Handlers {
    /// No handlers: every request is answered UNKNOWN_MODULE.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, id: MethodId, h: Handler) -> Self {
        self.modules.insert(id.module);
        self.map.insert(id, h);
        self
    }

    pub(crate) fn lookup(&self, id: MethodId) -> Result<&Handler, Status> {
        match self.map.get(&id) {
            Some(h) => Ok(h),
            None if self.modules.contains(&id.module) => Err(Status::UNKNOWN_METHOD),
            None => Err(Status::UNKNOWN_MODULE),
        }
    }

    /// Serves a unary method: `f` gets the decoded request and returns the response or a status.
    pub fn unary<Req, Resp, F>(self, method: &Unary<Req, Resp>, f: F) -> Self
    where
        Req: Serialize + DeserializeOwned + 'static,
        Resp: Serialize + DeserializeOwned + 'static,
        F: Fn(&Ctx, Req) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        let m = *method;
        self.raw_unary(method.id(), move |ctx, bytes| {
            let req = m.decode_request(bytes).map_err(|e| e.status())?;
            let resp = f(ctx, req)?;
            typed::encode_vec(&resp).map_err(|e| e.status())
        })
    }

    /// Serves a notification, sent reliably ([`Peer::notify`]: the result is the
    /// acknowledgement) or unreliably ([`Peer::signal`]: the result is dropped).
    pub fn notification<T, F>(self, method: &Notification<T>, f: F) -> Self
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn(&Ctx, T) -> Result<(), Status> + Send + Sync + 'static,
    {
        let m = *method;
        self.raw_notification(method.id(), move |ctx, bytes| f(ctx, m.decode(bytes).map_err(|e| e.status())?))
    }

    /// Serves a streaming method: `f` gets the initial value, a receiver of the opener's items
    /// and a sender for its own; the stream ends (FIN with the returned status) when `f` returns.
    /// `f` runs on a thread of the handler pool for the stream's whole life, but while it
    /// waits for credit (`send`) or for an item (`recv`) it is parked and does not count
    /// against [`ServerConfig::workers`](crate::ServerConfig::workers).
    pub fn streaming<I, U, D, F>(self, method: &Streaming<I, U, D>, f: F) -> Self
    where
        I: Serialize + DeserializeOwned + 'static,
        U: Serialize + DeserializeOwned + 'static,
        D: Serialize + DeserializeOwned + 'static,
        F: Fn(&Ctx, I, &mut StreamReceiver<U>, &mut StreamSender<D>) -> Result<(), Status>
            + Send
            + Sync
            + 'static,
    {
        let m = *method;
        self.add(
            method.id(),
            Handler::Stream(Box::new(move |ctx, init, rx, tx| {
                let init = m.decode_init(init).map_err(|e| e.status())?;
                f(ctx, init, &mut StreamReceiver::from_raw(rx), &mut StreamSender::from_raw(tx))
            })),
        )
    }

    /// Serves a unary method on raw bytes.
    pub fn raw_unary<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&Ctx, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    {
        self.add(method, Handler::Unary(Box::new(f)))
    }

    /// Serves a unary method on raw bytes **inline**: `f` runs on the connection's driver
    /// thread as soon as the request has been read, and writes its response into the buffer
    /// it is given (empty, reused from call to call).
    ///
    /// This is the fast path: no hand-off to a worker thread, no allocation per call (the
    /// request and response buffers are reused; a response that does not fit the transmit
    /// queue at once is handed to a worker, which costs one allocation). The price: while `f`
    /// runs, that connection reads nothing else and the connection's lock is held, so `f`
    /// must be quick and must not block (no I/O, no waiting on locks held by other handlers).
    /// It gets an [`InlineCtx`] rather than a [`Ctx`], with no [`Peer`] to call back on.
    /// A panic in `f` is answered INTERNAL, as for other handlers.
    pub fn raw_unary_inline<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.add(method, Handler::Inline(Box::new(f)))
    }

    /// Serves a notification on raw bytes.
    pub fn raw_notification<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&Ctx, &[u8]) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.add(method, Handler::Notify(Box::new(f)))
    }

    /// Serves a streaming method on raw bytes.
    pub fn raw_streaming<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&Ctx, &[u8], &mut RawReceiver, &mut RawSender) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.add(
            method,
            Handler::Stream(Box::new(move |ctx, init, mut rx, mut tx| f(ctx, init, &mut rx, &mut tx))),
        )
    }
}

/// Runs an inline unary handler (driver thread, connection locked). `out` is cleared first.
pub(crate) fn run_inline(
    shared: &Shared,
    f: &InlineFn,
    method: MethodId,
    deadline: Option<Instant>,
    req: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Status> {
    out.clear();
    let ctx = InlineCtx { shared, method, deadline };
    guarded(|| f(&ctx, req, out))
}

pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, Status>) -> Result<T, Status> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        tracing::error!("handler panicked; answering INTERNAL");
        Err(Status::INTERNAL)
    })
}

/// Runs the handler for one request the peer opened, on a worker, and answers it.
pub(crate) fn run(
    shared: &Arc<Shared>,
    id: u64,
    method: MethodId,
    deadline: Option<Instant>,
    payload: Vec<u8>,
    cancelled: Arc<Cancel>,
) {
    let ctx = Ctx { peer: Peer::from_shared(Arc::clone(shared)), method, deadline, cancelled };
    let Ok(h) = shared.handlers.lookup(method) else { return };
    match h {
        Handler::Unary(f) => {
            let r = if ctx.is_cancelled() { Err(Status::CANCELLED) } else { guarded(|| f(&ctx, &payload)) };
            match r {
                Ok(body) => shared.respond(id, Status::OK, &body),
                Err(status) => shared.respond(id, status, &[]),
            }
        }
        Handler::Notify(f) => {
            let r = if ctx.is_cancelled() { Err(Status::CANCELLED) } else { guarded(|| f(&ctx, &payload)) };
            shared.respond(id, r.err().unwrap_or(Status::OK), &[]);
        }
        // Inline handlers never reach a worker (`Shared::on_request` runs them).
        Handler::Inline(_) => shared.respond(id, Status::INTERNAL, &[]),
        Handler::Stream(f) => {
            let rx = RawReceiver::new(Arc::clone(shared), id, false);
            let tx = RawSender::new(Arc::clone(shared), id, false);
            let r = guarded(|| f(&ctx, &payload, rx, tx));
            shared.end_stream(id, r.err().unwrap_or(Status::OK));
        }
    }
}

/// Runs the handler for an unreliable notification; there is nobody to answer.
pub(crate) fn run_signal(shared: &Arc<Shared>, method: MethodId, payload: Vec<u8>) {
    let ctx = Ctx {
        peer: Peer::from_shared(Arc::clone(shared)),
        method,
        deadline: None,
        cancelled: Arc::new(Cancel::default()),
    };
    if let Ok(Handler::Notify(f)) = shared.handlers.lookup(method) {
        if let Err(status) = guarded(|| f(&ctx, &payload)) {
            tracing::debug!(conn = shared.id, ?method, %status, "signal handler failed");
        }
    }
}
