//! Handlers registered per method, and the dispatch of inbound requests to handler tasks.
//!
//! Unknown modules and methods, undecodable requests and unencodable responses are answered
//! with their status (UNKNOWN_MODULE, UNKNOWN_METHOD, BAD_PAYLOAD, ENCODE_FAILED): a bad
//! request never costs the connection.

use core::future::Future;
use core::panic::AssertUnwindSafe;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_lite::future::{self, Boxed, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::typed::{encode_vec, Notification, Streaming, Unary};
use tandem_core::{Instant, MethodId, RequestKind, Status};

use crate::ctx::Ctx;
use crate::peer::Peer;
use crate::shared::{CancelToken, Inner, Shared, StreamEntry};
use crate::stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};

type UnaryFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<(Status, Vec<u8>)> + Send + Sync;
type NotifyFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<Status> + Send + Sync;
type StreamFn = dyn Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Boxed<Status> + Send + Sync;
type InlineFn = dyn Fn(&[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync;

#[derive(Clone)]
enum Handler {
    Unary(Arc<UnaryFn>),
    Notify(Arc<NotifyFn>),
    Stream(Arc<StreamFn>),
    Inline(Arc<InlineFn>),
}

/// The methods this side serves, by [`MethodId`]. Both ends of a connection may have one.
///
/// Handlers are async functions; each inbound exchange runs in its own task on the `smol`
/// executor, except for quick unary handlers registered with
/// [`raw_unary_inline`](Router::raw_unary_inline), which run in the connection's driver task. At most `Config::max_concurrent_calls` calls and notifications and
/// `Config::max_concurrent_streams` streams run at once per connection (the core enforces the
/// limits it announces), and at most `max_concurrent_calls` signal handlers.
///
/// When the caller cancels (or its deadline passes, or the connection is lost) the handler's
/// [`Ctx::is_cancelled`] becomes true and [`Ctx::cancelled`] completes; the handler is polled
/// once more so that it can notice, then dropped at its next await point.
#[derive(Clone, Default)]
pub struct Router {
    // Shared by every connection the router serves; copied only while it is being built.
    methods: Arc<HashMap<MethodId, Handler>>,
    modules: Arc<HashSet<u32>>,
}

impl core::fmt::Debug for Router {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut ids: Vec<_> = self.methods.keys().collect();
        ids.sort();
        f.debug_struct("Router").field("methods", &ids).finish()
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

impl Router {
    /// An empty router: every request is answered UNKNOWN_MODULE.
    pub fn new() -> Self {
        Router::default()
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
            Box::pin(async move {
                match fut.await {
                    Ok(b) => (Status::OK, b),
                    Err(s) => (s, Vec::new()),
                }
            })
        };
        self.insert(method, Handler::Unary(Arc::new(h)))
    }

    /// Serves a unary method on raw bytes **inline**: `f` runs in the connection's driver task
    /// as soon as the request is read, and writes its response into the (empty) buffer it is
    /// given. No task is spawned and no thread is crossed, so this is the fast path for quick
    /// handlers; but while `f` runs the connection does nothing else (its lock is held), so
    /// `f` must not block. A panic in `f` is answered INTERNAL.
    pub fn raw_unary_inline<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        self.insert(method, Handler::Inline(Arc::new(f)))
    }

    /// Serves a notification, reliable (the returned status is the acknowledgement) or
    /// unreliable (a signal: the result is dropped).
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
                    Box::pin(async move { fut.await.err().unwrap_or(Status::OK) })
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
            Box::pin(async move { fut.await.err().unwrap_or(Status::OK) })
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
                    Box::pin(async move { fut.await.err().unwrap_or(Status::OK) })
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
            Box::pin(async move { fut.await.err().unwrap_or(Status::OK) })
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

/// Runs the handler `start` returns until it completes or the exchange is cancelled; a panic
/// (while starting or running) becomes `panicked`.
async fn guarded<T>(start: impl FnOnce() -> Boxed<T>, token: &CancelToken, cancelled: T, panicked: T) -> T {
    let run = async {
        let fut = async move { start().await };
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(v) => v,
            Err(_) => {
                tracing::error!("handler panicked: answering INTERNAL");
                panicked
            }
        }
    };
    run.or(async {
        token.cancelled().await;
        cancelled
    })
    .await
}

/// Starts the handler for an inbound request (called by the driver, lock held).
pub(crate) fn dispatch(
    shared: &Arc<Shared>,
    inner: &mut Inner,
    id: u64,
    kind: RequestKind,
    method: MethodId,
    deadline: Option<Instant>,
    payload: Vec<u8>,
) {
    let handler = match shared.router.lookup(method) {
        Ok(h) => h.clone(),
        Err(status) => return refuse(inner, id, kind, method, status),
    };
    if let (Handler::Inline(f), RequestKind::Call) = (&handler, kind) {
        // Runs here, in the driver task: no task, no cancellation token, no thread crossing.
        let mut out = Vec::new();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(&payload, &mut out))).unwrap_or_else(|_| {
            tracing::error!("handler panicked: answering INTERNAL");
            Err(Status::INTERNAL)
        });
        match r {
            Ok(()) => inner.respond(id, Status::OK, out),
            Err(status) => inner.respond(id, status, Vec::new()),
        }
        return;
    }
    // Handles (`Peer`s) are created here but only dropped inside the tasks: dropping the last
    // handle closes the connection, which takes the lock this function runs under.
    let token = Arc::new(CancelToken::default());
    let sh = shared.clone();
    let ctx = || Ctx::new(Peer::from_shared(shared.clone()), method, deadline, token.clone());
    match (handler, kind) {
        (Handler::Unary(f), RequestKind::Call) => {
            inner.inbound.insert(id, token.clone());
            let ctx = ctx();
            smol::spawn(async move {
                let cancelled = (Status::CANCELLED, Vec::new());
                let panicked = (Status::INTERNAL, Vec::new());
                let (status, body) = guarded(|| f(ctx, payload), &token, cancelled, panicked).await;
                let mut inner = sh.lock();
                inner.inbound.remove(&id);
                inner.respond(id, status, body);
            })
            .detach();
        }
        (Handler::Notify(f), RequestKind::Notify) => {
            inner.inbound.insert(id, token.clone());
            let ctx = ctx();
            smol::spawn(async move {
                let status = guarded(|| f(ctx, payload), &token, Status::CANCELLED, Status::INTERNAL).await;
                let mut inner = sh.lock();
                inner.inbound.remove(&id);
                inner.respond(id, status, Vec::new());
            })
            .detach();
        }
        (Handler::Stream(f), RequestKind::Stream { half_closed }) => {
            inner.inbound.insert(id, token.clone());
            let mut entry = StreamEntry::new(true);
            if half_closed {
                entry.fin = Some(Status::OK);
            }
            inner.streams.insert(id, entry);
            let ctx = ctx();
            let rx = RawReceiver::new(Peer::from_shared(shared.clone()), id);
            let tx = RawSender::new(Peer::from_shared(shared.clone()), id);
            smol::spawn(async move {
                let run = || f(ctx, payload, rx, tx);
                let status = guarded(run, &token, Status::CANCELLED, Status::INTERNAL).await;
                let mut inner = sh.lock();
                inner.inbound.remove(&id);
                inner.discard_items(id);
                match inner.streams.remove(&id) {
                    Some(e) if e.reset.is_some() => inner.reset_stream(id, Status::CANCELLED),
                    Some(e) if e.sent_fin => {}
                    _ => inner.finish_stream(id, status),
                }
            })
            .detach();
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

/// Starts the handler for a signal (unreliable notification); drops it when too many run.
pub(crate) fn dispatch_signal(shared: &Arc<Shared>, inner: &mut Inner, method: MethodId, payload: Vec<u8>) {
    let f = match shared.router.lookup(method) {
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
    let ctx = Ctx::new(Peer::from_shared(shared.clone()), method, None, token.clone());
    let sh = shared.clone();
    smol::spawn(async move {
        let _ = guarded(|| f(ctx, payload), &token, Status::CANCELLED, Status::INTERNAL).await;
        sh.lock().signal_tasks -= 1;
    })
    .detach();
}
