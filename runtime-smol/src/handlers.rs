//! [`Handlers`]: the methods one side serves, and the dispatch of inbound requests to handler
//! tasks. (Layer 6: imports `ctx`, `peer`, `stream`, `conn`, `deadline`, `spawner`.)
//!
//! Unknown modules and methods, undecodable requests and unencodable responses are answered
//! with their status (UNKNOWN_MODULE, UNKNOWN_METHOD, BAD_PAYLOAD, ENCODE_FAILED): a bad
//! request never costs the connection.

use core::future::Future;
use core::panic::AssertUnwindSafe;
use core::pin::Pin;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_lite::future::{self, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::typed::{encode_vec, Notification, Streaming, Unary};
use tandem_core::{Instant, MethodId, RequestKind, Status};

use crate::conn::{CancelToken, Handle, Inner, Shared, StreamEntry};
use crate::ctx::{Ctx, InlineCtx};
use crate::deadline::Scoped;
use crate::peer::Peer;
use crate::spawner::Task;
use crate::stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type UnaryFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<(Status, Vec<u8>)> + Send + Sync;
type NotifyFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<Status> + Send + Sync;
type StreamFn = dyn Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Boxed<Status> + Send + Sync;
type InlineFn = dyn Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync;

#[derive(Clone)]
enum Handler {
    Unary(Arc<UnaryFn>),
    Notify(Arc<NotifyFn>),
    Stream(Arc<StreamFn>),
    Inline(Arc<InlineFn>),
}

/// The methods this side serves, by [`MethodId`]. Both ends of a connection may have some.
/// Cheap to clone.
///
/// Handlers are async functions; each inbound exchange runs in its own task on the
/// [`Spawner`](crate::Spawner), except for quick unary handlers registered with
/// [`raw_unary_inline`](Handlers::raw_unary_inline), which run in the connection's driver. At
/// most `Config::max_concurrent_calls` calls and notifications and
/// `Config::max_concurrent_streams` streams run at once per connection (the core enforces the
/// limits it announces), and at most `max_concurrent_calls` signal handlers.
///
/// When the exchange is cancelled (the caller cancelled, its deadline passed, or the connection
/// ended) [`Ctx::is_cancelled`] becomes true and [`Ctx::cancelled`] completes; the handler is
/// polled once more so that it can notice, then dropped at its next await, and its outcome is
/// replaced by the cancellation. Calls a handler makes inherit its request's deadline
/// ([`Deadline::Inherit`](crate::Deadline::Inherit)).
#[derive(Clone, Default)]
pub struct Handlers {
    methods: Arc<HashMap<MethodId, Handler>>,
    modules: Arc<HashSet<u32>>,
}

impl core::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut ids: Vec<_> = self.methods.keys().collect();
        ids.sort();
        f.debug_struct("Handlers").field("methods", &ids).finish()
    }
}

fn encode_reply<T: Serialize>(r: Result<T, Status>) -> (Status, Vec<u8>) {
    match r {
        Ok(v) => match encode_vec(&v) {
            Ok(b) => (Status::OK, b),
            Err(_) => (Status::ENCODE_FAILED, Vec::new()),
        },
        Err(s) => (s, Vec::new()),
    }
}

fn status_of(r: Result<(), Status>) -> Status {
    r.err().unwrap_or(Status::OK)
}

impl Handlers {
    /// No handlers: every request is answered UNKNOWN_MODULE.
    pub fn new() -> Self {
        Handlers::default()
    }

    fn insert(mut self, id: MethodId, h: Handler) -> Self {
        Arc::make_mut(&mut self.modules).insert(id.module);
        Arc::make_mut(&mut self.methods).insert(id, h);
        self
    }

    /// Serves a unary method: `f(ctx, request)` returns the response or an error status.
    pub fn unary<Req, Resp, F, Fut>(self, method: &Unary<Req, Resp>, f: F) -> Self
    where
        Req: Serialize + DeserializeOwned + Send + 'static,
        Resp: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let m = *method;
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<(Status, Vec<u8>)> {
            match m.decode_request(&bytes) {
                Ok(req) => {
                    let fut = f(ctx, req);
                    Box::pin(async move { encode_reply(fut.await) })
                }
                Err(e) => Box::pin(future::ready((e.status(), Vec::new()))),
            }
        };
        self.insert(m.id(), Handler::Unary(Arc::new(h)))
    }

    /// Serves a unary method on raw bytes.
    pub fn raw_unary<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, Status>> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<(Status, Vec<u8>)> {
            let fut = f(ctx, bytes);
            Box::pin(async move { fut.await.map_or_else(|s| (s, Vec::new()), |b| (Status::OK, b)) })
        };
        self.insert(method, Handler::Unary(Arc::new(h)))
    }

    /// Serves a unary method on raw bytes **inline**: `f` runs in the connection's driver as
    /// soon as the request is read, and writes its response into the (empty) buffer it is
    /// given. No task is spawned, so this is the fast path for quick handlers; but while `f`
    /// runs the connection does nothing else (its lock is held), so `f` must not block. It gets
    /// an [`InlineCtx`] (no [`Peer`] to call back on). A panic in `f` is answered INTERNAL.
    pub fn raw_unary_inline<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.insert(method, Handler::Inline(Arc::new(f)))
    }

    /// Serves a notification, reliable ([`Peer::notify`]: the returned status is the
    /// acknowledgement) or unreliable ([`Peer::signal`]: the result is dropped).
    pub fn notification<T, F, Fut>(self, method: &Notification<T>, f: F) -> Self
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Ctx, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let m = *method;
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Status> {
            match m.decode(&bytes) {
                Ok(v) => {
                    let fut = f(ctx, v);
                    Box::pin(async move { status_of(fut.await) })
                }
                Err(e) => Box::pin(future::ready(e.status())),
            }
        };
        self.insert(m.id(), Handler::Notify(Arc::new(h)))
    }

    /// Serves a notification on raw bytes.
    pub fn raw_notification<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Status> {
            let fut = f(ctx, bytes);
            Box::pin(async move { status_of(fut.await) })
        };
        self.insert(method, Handler::Notify(Arc::new(h)))
    }

    /// Serves a streaming method: `f(ctx, init, items_from_opener, sender_to_opener)`. When it
    /// returns, this direction of the stream ends with OK or the returned status.
    pub fn streaming<Init, Up, Down, F, Fut>(self, method: &Streaming<Init, Up, Down>, f: F) -> Self
    where
        Init: Serialize + DeserializeOwned + Send + 'static,
        Up: Serialize + DeserializeOwned + Send + 'static,
        Down: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Ctx, Init, StreamReceiver<Up>, StreamSender<Down>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let m = *method;
        let h = move |ctx: Ctx, bytes: Vec<u8>, rx: RawReceiver, tx: RawSender| -> Boxed<Status> {
            match m.decode_init(&bytes) {
                Ok(init) => {
                    let fut = f(ctx, init, StreamReceiver::new(rx), StreamSender::new(tx));
                    Box::pin(async move { status_of(fut.await) })
                }
                Err(e) => Box::pin(future::ready(e.status())),
            }
        };
        self.insert(m.id(), Handler::Stream(Arc::new(h)))
    }

    /// Serves a streaming method on raw bytes.
    pub fn raw_streaming<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>, rx: RawReceiver, tx: RawSender| -> Boxed<Status> {
            let fut = f(ctx, bytes, rx, tx);
            Box::pin(async move { status_of(fut.await) })
        };
        self.insert(method, Handler::Stream(Arc::new(h)))
    }

    fn lookup(&self, m: MethodId) -> Result<&Handler, Status> {
        match self.methods.get(&m) {
            Some(h) => Ok(h),
            None if self.modules.contains(&m.module) => Err(Status::UNKNOWN_METHOD),
            None => Err(Status::UNKNOWN_MODULE),
        }
    }
}

/// Runs the handler `start` returns, with its request's deadline current while it is polled,
/// until it completes or the exchange is cancelled; a panic (starting or running) becomes
/// `panicked`.
async fn guarded<T: Send + 'static>(
    start: impl FnOnce() -> Boxed<T> + Send + 'static,
    token: &CancelToken,
    deadline: Option<Instant>,
    cancelled: T,
    panicked: T,
) -> T {
    let run = Scoped::new(deadline, Box::pin(AssertUnwindSafe(async move { start().await }).catch_unwind()));
    let run = async {
        run.await.unwrap_or_else(|_| {
            tracing::error!("handler panicked: answering INTERNAL");
            panicked
        })
    };
    run.or(async {
        token.cancelled().await;
        cancelled
    })
    .await
}

/// An inbound request, as the core reported it.
pub(crate) struct Request {
    pub(crate) id: u64,
    pub(crate) kind: RequestKind,
    pub(crate) method: MethodId,
    pub(crate) deadline: Option<Instant>,
    pub(crate) payload: Vec<u8>,
}

/// Starts the handler for an inbound request (called by the driver, lock held). The handler's
/// task goes to `spawn`, which the driver hands to the spawner once the lock is released.
pub(crate) fn dispatch(
    handlers: &Handlers,
    shared: &Arc<Shared>,
    inner: &mut Inner,
    req: Request,
    spawn: &mut Vec<Task>,
) {
    let Request { id, kind, method, deadline, payload } = req;
    let handler = match handlers.lookup(method) {
        Ok(h) => h.clone(),
        Err(status) => return refuse(inner, id, kind, method, status),
    };
    if let (Handler::Inline(f), RequestKind::Call) = (&handler, kind) {
        // Runs here, in the driver: no task, no cancellation token.
        let mut out = Vec::new();
        let cx = InlineCtx { shared, remote: inner.remote, method, deadline };
        let r =
            std::panic::catch_unwind(AssertUnwindSafe(|| f(&cx, &payload, &mut out))).unwrap_or_else(|_| {
                tracing::error!("inline handler panicked: answering INTERNAL");
                Err(Status::INTERNAL)
            });
        match r {
            Ok(()) => inner.respond(id, Status::OK, out),
            Err(status) => inner.respond(id, status, Vec::new()),
        }
        return;
    }
    // Handles are created here but only dropped inside the tasks: dropping the last handle
    // takes the connection's lock, which this function runs under.
    let token = Arc::new(CancelToken::default());
    let sh = shared.clone();
    let ctx = || Ctx::new(Peer::new(shared.clone()), method, deadline, token.clone());
    match (handler, kind) {
        (Handler::Unary(f), RequestKind::Call) => {
            inner.inbound.insert(id, token.clone());
            let ctx = ctx();
            spawn.push(Box::pin(async move {
                let (cancelled, panicked) = ((Status::CANCELLED, Vec::new()), (Status::INTERNAL, Vec::new()));
                let (status, body) =
                    guarded(move || f(ctx, payload), &token, deadline, cancelled, panicked).await;
                let mut inner = sh.lock();
                inner.inbound.remove(&id);
                inner.respond(id, status, body);
            }));
        }
        (Handler::Notify(f), RequestKind::Notify) => {
            inner.inbound.insert(id, token.clone());
            let ctx = ctx();
            spawn.push(Box::pin(async move {
                let run = move || f(ctx, payload);
                let status = guarded(run, &token, deadline, Status::CANCELLED, Status::INTERNAL).await;
                let mut inner = sh.lock();
                inner.inbound.remove(&id);
                inner.respond(id, status, Vec::new());
            }));
        }
        (Handler::Stream(f), RequestKind::Stream { half_closed }) => {
            inner.inbound.insert(id, token.clone());
            let mut entry = StreamEntry::new(true);
            if half_closed {
                entry.fin = Some(Status::OK);
            }
            inner.streams.insert(id, entry);
            let ctx = ctx();
            let rx = RawReceiver::new(Handle::new(shared.clone()), id);
            let tx = RawSender::new(Handle::new(shared.clone()), id);
            spawn.push(Box::pin(async move {
                let run = move || f(ctx, payload, rx, tx);
                let status = guarded(run, &token, deadline, Status::CANCELLED, Status::INTERNAL).await;
                let mut inner = sh.lock();
                inner.inbound.remove(&id);
                inner.discard_items(id);
                match inner.streams.remove(&id) {
                    Some(e) if e.reset.is_some() => inner.reset_stream(id, Status::CANCELLED),
                    Some(e) if e.sent_fin => {}
                    _ => inner.finish_stream(id, status),
                }
            }));
        }
        (_, kind) => refuse(inner, id, kind, method, Status::UNIMPLEMENTED),
    }
}

fn refuse(inner: &mut Inner, id: u64, kind: RequestKind, method: MethodId, status: Status) {
    tracing::debug!(id, ?method, %status, "request refused");
    match kind {
        RequestKind::Stream { .. } => inner.reset_stream(id, status),
        RequestKind::Call | RequestKind::Notify => inner.respond(id, status, Vec::new()),
    }
}

/// Starts the handler for a signal (unreliable notification); drops the signal when
/// `max_concurrent_calls` signal handlers already run.
pub(crate) fn dispatch_signal(
    handlers: &Handlers,
    shared: &Arc<Shared>,
    inner: &mut Inner,
    method: MethodId,
    payload: Vec<u8>,
    spawn: &mut Vec<Task>,
) {
    let f = match handlers.lookup(method) {
        Ok(Handler::Notify(f)) => f.clone(),
        _ => {
            tracing::debug!(?method, "signal for a method without a notification handler dropped");
            return;
        }
    };
    if inner.signal_tasks >= inner.conn.config().max_concurrent_calls as usize {
        tracing::warn!(?method, "too many signal handlers running: signal dropped");
        return;
    }
    inner.signal_tasks += 1;
    let token = Arc::new(CancelToken::default());
    let ctx = Ctx::new(Peer::new(shared.clone()), method, None, token.clone());
    let sh = shared.clone();
    spawn.push(Box::pin(async move {
        let _ = guarded(move || f(ctx, payload), &token, None, Status::CANCELLED, Status::INTERNAL).await;
        sh.lock().signal_tasks -= 1;
    }));
}
