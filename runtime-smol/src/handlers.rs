//! [`Handlers`]: the methods one side serves, as async functions, and how a started handler
//! runs as a task. The registry's bookkeeping and the dispatch decisions are
//! `tandem_runtime::handlers`'. (Layer 1: imports `spawner`.)

use core::future::Future;
use core::panic::AssertUnwindSafe;
use core::pin::Pin;
use std::sync::Arc;

use futures_lite::future::{self, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::deadline::Scoped;
use tandem_runtime::handlers::{
    encode_reply, status_of, typed_stream, Done, HandlerFns, Job, Registry, Started,
};
use tandem_runtime::tandem_core::typed::{Notification, Streaming, Unary};
use tandem_runtime::tandem_core::{MethodId, Status};
use tandem_runtime::{Ctx, InlineCtx, RawReceiver, RawSender, StreamReceiver, StreamSender};

use crate::spawner::Task;

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type UnaryFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<(Status, Vec<u8>)> + Send + Sync;
type NotifyFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<Status> + Send + Sync;
type StreamFn = dyn Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Boxed<Status> + Send + Sync;

/// This runtime's handler signatures: functions returning boxed futures.
pub(crate) struct AsyncFns;

impl HandlerFns for AsyncFns {
    type Unary = Arc<UnaryFn>;
    type Notify = Arc<NotifyFn>;
    type Stream = Arc<StreamFn>;
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
///
/// Each method may be registered once: registering a [`MethodId`] twice panics (two methods
/// declared with the same id).
#[derive(Clone, Default)]
pub struct Handlers {
    reg: Registry<AsyncFns>,
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

    pub(crate) fn registry(&self) -> &Registry<AsyncFns> {
        &self.reg
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
        Handlers { reg: self.reg.unary(m.id(), Arc::new(h)) }
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
        Handlers { reg: self.reg.unary(method, Arc::new(h)) }
    }

    /// Serves a unary method on raw bytes **inline**: `f` runs in the connection's driver as
    /// soon as the request is read, and writes its response into the (empty) buffer it is
    /// given. No task is spawned, so this is the fast path for quick handlers; but while `f`
    /// runs the connection does nothing else (its lock is held), so `f` must not block. It gets
    /// an [`InlineCtx`] (no [`Peer`](crate::Peer) to call back on). A panic in `f` is answered INTERNAL.
    pub fn raw_unary_inline<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        Handlers { reg: self.reg.inline(method, Arc::new(f)) }
    }

    /// Serves a notification, reliable ([`Peer::notify`](crate::Peer::notify): the returned status is the
    /// acknowledgement) or unreliable ([`Peer::signal`](crate::Peer::signal): the result is dropped).
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
        Handlers { reg: self.reg.notification(m.id(), Arc::new(h)) }
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
        Handlers { reg: self.reg.notification(method, Arc::new(h)) }
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
                    let (rx, tx) = typed_stream(rx, tx);
                    let fut = f(ctx, init, rx, tx);
                    Box::pin(async move { status_of(fut.await) })
                }
                Err(e) => Box::pin(future::ready(e.status())),
            }
        };
        Handlers { reg: self.reg.streaming(m.id(), Arc::new(h)) }
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
        Handlers { reg: self.reg.streaming(method, Arc::new(h)) }
    }
}

/// Runs the handler `start` returns, with its request's deadline current while it is polled,
/// until it completes or the exchange is cancelled; a panic (starting or running) becomes
/// INTERNAL. Then delivers the outcome.
async fn guarded<F, Fut>(start: F, done: Done)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = (Status, Vec<u8>)> + Send + 'static,
{
    let run =
        Scoped::new(done.deadline(), Box::pin(AssertUnwindSafe(async move { start().await }).catch_unwind()));
    let run = async {
        run.await.unwrap_or_else(|_| {
            tracing::error!("handler panicked: answering INTERNAL");
            (Status::INTERNAL, Vec::new())
        })
    };
    let (status, body) = run
        .or(async {
            done.cancelled().await;
            (Status::CANCELLED, Vec::new())
        })
        .await;
    done.complete(status, body);
}

/// The task of a started handler.
pub(crate) fn task(started: Started<AsyncFns>) -> Task {
    match started {
        Started::Unary(f, Job { ctx, payload, done }) => Box::pin(guarded(move || f(ctx, payload), done)),
        Started::Notify(f, Job { ctx, payload, done }) => {
            let start = move || {
                let fut = f(ctx, payload);
                async move { (fut.await, Vec::new()) }
            };
            Box::pin(guarded(start, done))
        }
        Started::Stream(f, Job { ctx, payload, done }, rx, tx) => {
            let start = move || {
                let fut = f(ctx, payload, rx, tx);
                async move { (fut.await, Vec::new()) }
            };
            Box::pin(guarded(start, done))
        }
    }
}
