//! [`Handlers`]: the methods one side serves, as blocking functions; [`Ctx`], what a handler
//! knows about its exchange; and how a started handler runs as a pool job. The registry's
//! bookkeeping and the dispatch decisions are `tandem_runtime::handlers`'. (Layer 3: imports
//! `api`, `block`, `pool`.)

use core::panic::AssertUnwindSafe;
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::handlers::{encode_reply, status_of, typed_stream, HandlerFns, Job, Registry, Started};
use tandem_runtime::tandem_core::typed::{Notification, Streaming, Unary};
use tandem_runtime::tandem_core::{MethodId, Status};
use tandem_runtime::{deadline, InlineCtx, PeerCredentials, PeerIdentity};

use crate::api::{Peer, RawReceiver, RawSender, StreamReceiver, StreamSender};
use crate::block::block_on;
use crate::pool;

type UnaryFn = dyn Fn(Ctx, Vec<u8>) -> (Status, Vec<u8>) + Send + Sync;
type NotifyFn = dyn Fn(Ctx, Vec<u8>) -> Status + Send + Sync;
type StreamFn = dyn Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Status + Send + Sync;
/// A started handler, ready to run on its context and request.
type Run = Box<dyn FnOnce(Ctx, Vec<u8>) -> (Status, Vec<u8>)>;

/// This runtime's handler signatures: blocking functions.
pub(crate) struct SyncFns;

impl HandlerFns for SyncFns {
    type Unary = Arc<UnaryFn>;
    type Notify = Arc<NotifyFn>;
    type Stream = Arc<StreamFn>;
}

/// The context of one inbound exchange, handed (owned) to its handler.
///
/// A blocking handler cannot be interrupted: when its exchange is cancelled (the caller
/// cancelled, its deadline passed, or the connection ended) [`is_cancelled`](Self::is_cancelled)
/// becomes true and [`cancelled`](Self::cancelled) and [`wait_cancelled`](Self::wait_cancelled)
/// return; a handler that never checks runs to its end and its answer is discarded.
pub struct Ctx {
    inner: tandem_runtime::Ctx,
    peer: Peer,
}

impl core::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Ctx {
    fn new(inner: tandem_runtime::Ctx) -> Self {
        Ctx { peer: Peer(inner.peer().clone()), inner }
    }

    /// The connection the request came from: the handler may call the peer back over it.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The peer's name from its HELLO.
    pub fn peer_name(&self) -> &str {
        self.inner.peer_name()
    }

    /// The identity the server's authenticator gave the peer; `None` without an authenticator
    /// (the peer is unauthenticated) and on the client side.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.inner.identity()
    }

    /// The peer process's credentials, on Unix sockets.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.inner.credentials()
    }

    /// The peer's IP address and port (TCP and UDP).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    /// The method being served.
    pub fn method(&self) -> MethodId {
        self.inner.method()
    }

    /// When the caller stops waiting, if it set a deadline. Calls this handler makes carry the
    /// remaining budget by default ([`Deadline::Inherit`](crate::Deadline::Inherit)).
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.inner.deadline()
    }

    /// Whether the exchange was cancelled: stop working, the result will not be delivered.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// Blocks until the exchange is cancelled (the handler is parked meanwhile).
    pub fn cancelled(&self) {
        block_on(self.inner.cancelled())
    }

    /// Why the exchange was cancelled, once it is: CANCELLED (the caller cancelled),
    /// DEADLINE_EXCEEDED (its deadline passed) or UNAVAILABLE (the connection ended).
    pub fn cancel_reason(&self) -> Option<Status> {
        self.inner.cancel_reason()
    }

    /// Blocks until the exchange is cancelled or `timeout` has passed, and returns whether it
    /// was cancelled. This is how a handler sleeps or holds a request open: unlike
    /// `thread::sleep` it returns at once on cancellation, and meanwhile the handler is parked:
    /// its pool worker serves other requests.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tandem_std::{Handlers, Unary};
    /// const SLEEP: Unary<u64, bool> = Unary::new(1, 1);
    /// let handlers = Handlers::new().unary(&SLEEP, |ctx, ms| {
    ///     // Sleep `ms` unless the caller cancels first; answer whether it did.
    ///     Ok(ctx.wait_cancelled(Duration::from_millis(ms)))
    /// });
    /// ```
    pub fn wait_cancelled(&self, timeout: Duration) -> bool {
        block_on(self.inner.wait_cancelled(timeout))
    }

    /// Runs `f`, which blocks outside the runtime (file or database I/O, `thread::sleep`, a
    /// lock held by a slow thread, another library that waits), with the handler parked
    /// meanwhile: the pool runs other handlers on other threads while `f` waits, so one slow
    /// dependency does not stall every request. Waits inside the runtime park by themselves;
    /// do not wrap CPU-bound work (a parked handler no longer counts against
    /// [`ServerConfig::workers`](crate::ServerConfig::workers)). tandem-std only: an async
    /// handler hands blocking work to its executor's blocking pool instead.
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        let _parked = pool::parked();
        f()
    }
}

/// The methods this side serves, by [`MethodId`]. Both ends of a connection may have some.
/// Cheap to clone.
///
/// Handlers are blocking functions run on the handler pool (see the crate documentation), except
/// quick unary handlers registered with [`raw_unary_inline`](Handlers::raw_unary_inline), which
/// run on the connection's I/O thread. At most `Config::max_concurrent_calls` calls and
/// notifications and `Config::max_concurrent_streams` streams run at once per connection (the
/// core enforces the limits it announces), and at most `max_concurrent_calls` signal handlers.
/// Calls a handler makes inherit its request's deadline
/// ([`Deadline::Inherit`](crate::Deadline::Inherit)). A panicking handler is answered INTERNAL.
///
/// Each method may be registered once: registering a [`MethodId`] twice panics.
#[derive(Clone, Default)]
pub struct Handlers {
    reg: Registry<SyncFns>,
}

impl core::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.reg.fmt(f)
    }
}

impl Handlers {
    /// No handlers: every request is answered UNKNOWN_MODULE.
    pub fn new() -> Self {
        Handlers::default()
    }

    pub(crate) fn registry(&self) -> &Registry<SyncFns> {
        &self.reg
    }

    /// Serves a unary method: `f(ctx, request)` returns the response or an error status.
    pub fn unary<Req, Resp, F>(self, method: &Unary<Req, Resp>, f: F) -> Self
    where
        Req: Serialize + DeserializeOwned + 'static,
        Resp: Serialize + DeserializeOwned + 'static,
        F: Fn(Ctx, Req) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        let m = *method;
        let h = move |ctx, bytes: Vec<u8>| match m.decode_request(&bytes) {
            Ok(req) => encode_reply(f(ctx, req)),
            Err(e) => (e.status(), Vec::new()),
        };
        Handlers { reg: self.reg.unary(m.id(), Arc::new(h)) }
    }

    /// Serves a unary method on raw bytes.
    pub fn raw_unary<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    {
        let h = move |ctx, bytes| f(ctx, bytes).map_or_else(|s| (s, Vec::new()), |b| (Status::OK, b));
        Handlers { reg: self.reg.unary(method, Arc::new(h)) }
    }

    /// Serves a unary method on raw bytes **inline**: `f` runs on the connection's I/O thread
    /// as soon as the request is read, and writes its response into the (empty) buffer it is
    /// given. No hand-off to the pool and no allocation per call (buffers are reused): the fast
    /// path for quick handlers. But while `f` runs, its I/O thread serves no other connection
    /// (and the connection's lock is held), so `f` must be quick and must not block. It gets an
    /// [`InlineCtx`] (no [`Peer`] to call back on). A panic in `f` is answered INTERNAL.
    pub fn raw_unary_inline<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        Handlers { reg: self.reg.inline(method, Arc::new(f)) }
    }

    /// Serves a notification, reliable ([`Peer::notify`]: the result is the acknowledgement)
    /// or unreliable ([`Peer::signal`]: the result is dropped).
    pub fn notification<T, F>(self, method: &Notification<T>, f: F) -> Self
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn(Ctx, T) -> Result<(), Status> + Send + Sync + 'static,
    {
        let m = *method;
        let h = move |ctx, bytes: Vec<u8>| match m.decode(&bytes) {
            Ok(v) => status_of(f(ctx, v)),
            Err(e) => e.status(),
        };
        Handlers { reg: self.reg.notification(m.id(), Arc::new(h)) }
    }

    /// Serves a notification on raw bytes.
    pub fn raw_notification<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        let h = move |ctx, bytes| status_of(f(ctx, bytes));
        Handlers { reg: self.reg.notification(method, Arc::new(h)) }
    }

    /// Serves a streaming method: `f(ctx, init, items_from_opener, sender_to_opener)`. When it
    /// returns, this direction of the stream ends with OK or the returned status. While it
    /// waits for credit (`send`) or an item (`recv`) it is parked: streams do not pin workers.
    pub fn streaming<Init, Up, Down, F>(self, method: &Streaming<Init, Up, Down>, f: F) -> Self
    where
        Init: Serialize + DeserializeOwned + 'static,
        Up: Serialize + DeserializeOwned + 'static,
        Down: Serialize + DeserializeOwned + 'static,
        F: Fn(Ctx, Init, StreamReceiver<Up>, StreamSender<Down>) -> Result<(), Status>
            + Send
            + Sync
            + 'static,
    {
        let m = *method;
        let h = move |ctx, bytes: Vec<u8>, rx: RawReceiver, tx: RawSender| match m.decode_init(&bytes) {
            Ok(init) => {
                let (rx, tx) = typed_stream(rx.0, tx.0);
                status_of(f(ctx, init, StreamReceiver(rx), StreamSender(tx)))
            }
            Err(e) => e.status(),
        };
        Handlers { reg: self.reg.streaming(m.id(), Arc::new(h)) }
    }

    /// Serves a streaming method on raw bytes.
    pub fn raw_streaming<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Result<(), Status> + Send + Sync + 'static,
    {
        let h = move |ctx, bytes, rx, tx| status_of(f(ctx, bytes, rx, tx));
        Handlers { reg: self.reg.streaming(method, Arc::new(h)) }
    }
}

/// The pool job of a started handler: runs it with its request's deadline current, catches a
/// panic (INTERNAL), and delivers the outcome — CANCELLED if the exchange was cancelled
/// meanwhile, UNAVAILABLE without running it if the pool refused it (shut down).
pub(crate) fn job(started: Started<SyncFns>) -> pool::Job {
    Box::new(move |refused| {
        let (job, run): (Job, Run) = match started {
            Started::Unary(f, job) => (job, Box::new(move |c, p| f(c, p))),
            Started::Notify(f, job) => (job, Box::new(move |c, p| (f(c, p), Vec::new()))),
            Started::Stream(f, job, rx, tx) => {
                (job, Box::new(move |c, p| (f(c, p, RawReceiver(rx), RawSender(tx)), Vec::new())))
            }
        };
        let Job { ctx, payload, done } = job;
        let (status, body) = if refused || done.is_cancelled() {
            // The context and stream handles go before the outcome is delivered.
            drop((run, ctx, payload));
            (if refused { Status::UNAVAILABLE } else { Status::CANCELLED }, Vec::new())
        } else {
            let _scope = deadline::enter(done.deadline());
            std::panic::catch_unwind(AssertUnwindSafe(|| run(Ctx::new(ctx), payload))).unwrap_or_else(|_| {
                tracing::error!("handler panicked: answering INTERNAL");
                (Status::INTERNAL, Vec::new())
            })
        };
        let status = if !refused && done.is_cancelled() { Status::CANCELLED } else { status };
        done.complete(status, body);
    })
}
