//! [`Handlers`]: the methods one side serves, as async functions, and how a started handler
//! runs as a task, spawned on the [`Spawner`](crate::Spawner) by [`SpawnDispatch`] from the
//! shared I/O threads (`tandem_runtime::threads`). The registry's bookkeeping and the dispatch
//! decisions are `tandem_runtime::handlers`'. (Layer 1: imports `spawner`.)

use core::future::Future;
use core::panic::AssertUnwindSafe;
use core::pin::Pin;
use core::task::Poll;
use std::sync::Arc;

use futures_lite::future::{self, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::deadline::Scoped;
use tandem_runtime::handlers::{
    bad_payload, encode_reply, status_of, typed_stream, Done, Handler, HandlerFns, Job, Meta, Outcome,
    Registry, Started,
};
use tandem_runtime::service::Incoming;
use tandem_runtime::tandem_core::typed::rt::AsyncService;
use tandem_runtime::tandem_core::typed::{MethodKind, Notification, Streaming, Unary};
use tandem_runtime::tandem_core::{MethodId, SchemaKey, Status};
use tandem_runtime::threads::Dispatch;
use tandem_runtime::{
    Async, Ctx, InlineCtx, RawReceiver, RawSender, RegistrationError, StreamReceiver, StreamSender,
};

use crate::spawner::{Spawner, Task};

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type UnaryFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<Outcome> + Send + Sync;
type NotifyFn = dyn Fn(Ctx, Vec<u8>) -> Boxed<Outcome> + Send + Sync;
type StreamFn = dyn Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Boxed<Outcome> + Send + Sync;

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
/// [`raw_unary_inline`](Handlers::raw_unary_inline), which run in the connection's driver (on
/// an I/O thread). At
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
/// Each method may be registered once: registering a [`MethodId`] twice panics, and so does
/// serving two services on one module; the message names both ([`try_serve`](Self::try_serve)
/// returns the error instead).
///
/// A declared service (`tandem_core::service!`) is registered in one call,
/// [`serve`](Self::serve), with an implementation of its async `Server<Async>` trait; its
/// requests are checked against the methods' schema keys before they are decoded (SPEC.md
/// §7.10), and the service is listed by the introspection service (SPEC.md Appendix B), which
/// [`introspection`](Self::introspection) turns off.
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

    /// Serves a declared service: `service` is its `Serve` wrapper around an implementation of
    /// its `Server<Async>` trait. Panics, naming both, if one of its methods or its module is
    /// already served.
    ///
    /// ```
    /// use tandem_smol::{Async, Ctx, Handlers, HandlerError};
    ///
    /// tandem_smol::service! {
    ///     /// Arithmetic.
    ///     pub service calc = 9 {
    ///         /// Doubles.
    ///         unary double(i64) -> i64 = 1;
    ///     }
    /// }
    ///
    /// struct Calc;
    /// impl calc::Server<Async> for Calc {
    ///     async fn double(&self, _ctx: Ctx, x: i64) -> Result<i64, HandlerError> {
    ///         x.checked_mul(2).ok_or(HandlerError::new(tandem_smol::Status::OUT_OF_RANGE, "overflow"))
    ///     }
    /// }
    ///
    /// let handlers = Handlers::new().serve(calc::Serve(Calc));
    /// ```
    pub fn serve<S: AsyncService<Async>>(self, service: S) -> Self {
        self.try_serve(service).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`serve`](Self::serve), returning the collision instead of panicking.
    pub fn try_serve<S: AsyncService<Async>>(self, service: S) -> Result<Self, RegistrationError> {
        let svc = Arc::new(service);
        let reg = self.reg.try_service(S::DEF, |m| {
            let (svc, method) = (svc.clone(), m.id.method);
            match m.kind {
                MethodKind::Unary => {
                    let f: Arc<UnaryFn> = Arc::new(move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> {
                        let svc = svc.clone();
                        Box::pin(async move { svc.serve(Incoming::new(method, ctx, bytes, None)).await })
                    });
                    Handler::Unary(f)
                }
                MethodKind::Notify | MethodKind::Signal => {
                    let f: Arc<NotifyFn> = Arc::new(move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> {
                        let svc = svc.clone();
                        Box::pin(async move { svc.serve(Incoming::new(method, ctx, bytes, None)).await })
                    });
                    Handler::Notify(f)
                }
                _ => {
                    let f: Arc<StreamFn> = Arc::new(
                        move |ctx: Ctx, bytes: Vec<u8>, rx: RawReceiver, tx: RawSender| -> Boxed<Outcome> {
                            let svc = svc.clone();
                            let incoming = Incoming::new(method, ctx, bytes, Some((rx, tx)));
                            Box::pin(async move { svc.serve(incoming).await })
                        },
                    );
                    Handler::Stream(f)
                }
            }
        })?;
        Ok(Handlers { reg })
    }

    /// Serves the introspection service (SPEC.md Appendix B: the declared services, their
    /// methods, keys, doc strings and schemas) or not. On by default.
    pub fn introspection(self, on: bool) -> Self {
        Handlers { reg: self.reg.introspection(on) }
    }

    /// Gives the raw method `method` a schema key (SPEC.md §7.10): keyed requests with another
    /// key are refused with SCHEMA_MISMATCH. Panics if `method` has no handler.
    pub fn with_key(self, method: MethodId, key: SchemaKey) -> Self {
        Handlers { reg: self.reg.with_key(method, key) }
    }

    /// Serves a unary method: `f(ctx, request)` returns the response or an error status. The
    /// declaration's schema key, if it has one, is checked on every keyed request.
    pub fn unary<Req, Resp, E: 'static, F, Fut>(self, method: &Unary<Req, Resp, E>, f: F) -> Self
    where
        Req: Serialize + DeserializeOwned + Send + 'static,
        Resp: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(Ctx, Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let m = *method;
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> {
            match m.decode_request(&bytes) {
                Ok(req) => {
                    let fut = f(ctx, req);
                    Box::pin(async move {
                        let (status, body) = encode_reply(fut.await);
                        Outcome::status(status, body)
                    })
                }
                Err(_) => Box::pin(future::ready(bad_payload(m.label(), core::any::type_name::<Req>()))),
            }
        };
        Handlers {
            reg: self.reg.unary_declared(m.id(), Arc::new(h), Meta { label: m.label(), key: m.key() }),
        }
    }

    /// Serves a unary method on raw bytes.
    pub fn raw_unary<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, Status>> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> {
            let fut = f(ctx, bytes);
            Box::pin(async move { fut.await.map_or_else(|s| Outcome::status(s, Vec::new()), Outcome::ok) })
        };
        Handlers { reg: self.reg.unary(method, Arc::new(h)) }
    }

    /// Serves a unary method on raw bytes, answering with a full [`Outcome`]: a failure may
    /// carry a message and details (a status body, SPEC.md §8.7, sent when the peer negotiated
    /// `error_details`).
    pub fn raw_unary_outcome<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> { Box::pin(f(ctx, bytes)) };
        Handlers { reg: self.reg.unary(method, Arc::new(h)) }
    }

    /// Serves a notification on raw bytes, answering with a full [`Outcome`] (see
    /// [`raw_unary_outcome`](Self::raw_unary_outcome); its body is dropped).
    pub fn raw_notification_outcome<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> { Box::pin(f(ctx, bytes)) };
        Handlers { reg: self.reg.notification(method, Arc::new(h)) }
    }

    /// Serves a unary method on raw bytes **inline**: `f` runs in the connection's driver, on
    /// its I/O thread, as soon as the request is read, and writes its response into the (empty)
    /// buffer it is given. No task is spawned and nothing is allocated per call (buffers are
    /// reused), so this is the fast path for quick handlers; but while `f` runs its I/O thread
    /// serves no other connection (and the connection's lock is held), so `f` must be quick
    /// and must not block. It gets
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
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> {
            match m.decode(&bytes) {
                Ok(v) => {
                    let fut = f(ctx, v);
                    Box::pin(async move { Outcome::status(status_of(fut.await), Vec::new()) })
                }
                Err(_) => Box::pin(future::ready(bad_payload(m.label(), core::any::type_name::<T>()))),
            }
        };
        let meta = Meta { label: m.label(), key: m.key() };
        Handlers { reg: self.reg.notification_declared(m.id(), Arc::new(h), meta) }
    }

    /// Serves a notification on raw bytes.
    pub fn raw_notification<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>| -> Boxed<Outcome> {
            let fut = f(ctx, bytes);
            Box::pin(async move { Outcome::status(status_of(fut.await), Vec::new()) })
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
        let h = move |ctx: Ctx, bytes: Vec<u8>, rx: RawReceiver, tx: RawSender| -> Boxed<Outcome> {
            match m.decode_init(&bytes) {
                Ok(init) => {
                    let (rx, tx) = typed_stream(rx, tx);
                    let fut = f(ctx, init, rx, tx);
                    Box::pin(async move { Outcome::status(status_of(fut.await), Vec::new()) })
                }
                Err(_) => Box::pin(future::ready(bad_payload(m.label(), core::any::type_name::<Init>()))),
            }
        };
        let meta = Meta { label: m.label(), key: m.key() };
        Handlers { reg: self.reg.streaming_declared(m.id(), Arc::new(h), meta) }
    }

    /// Serves a streaming method on raw bytes.
    pub fn raw_streaming<F, Fut>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), Status>> + Send + 'static,
    {
        let h = move |ctx: Ctx, bytes: Vec<u8>, rx: RawReceiver, tx: RawSender| -> Boxed<Outcome> {
            let fut = f(ctx, bytes, rx, tx);
            Box::pin(async move { Outcome::status(status_of(fut.await), Vec::new()) })
        };
        Handlers { reg: self.reg.streaming(method, Arc::new(h)) }
    }
}

/// Runs the handler `start` returns, with its request's deadline current while it is polled,
/// until it completes or the exchange is cancelled; a panic (starting or running) becomes
/// INTERNAL. Then delivers the outcome.
///
/// Once the exchange is cancelled the handler is polled once more before it is dropped, so that
/// it notices (`Ctx::cancelled` completes): the cancellation may arrive from another thread (the
/// connection's I/O thread) while the handler is being polled, after the handler found it not
/// cancelled and before this wrapper looks.
async fn guarded<F, Fut>(start: F, done: Done)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let (method, conn, peer) = (done.method(), done.conn(), done.peer_name().to_string());
    // In a block: the handler (its context and stream handles) is dropped before the outcome is
    // delivered.
    let outcome = {
        let run = Scoped::new(
            done.deadline(),
            Box::pin(AssertUnwindSafe(async move { start().await }).catch_unwind()),
        );
        let mut run = core::pin::pin!(async {
            run.await.unwrap_or_else(|_| {
                tracing::error!(conn, peer = %peer, %method, "handler panicked: answering INTERNAL");
                Outcome::failed(Status::INTERNAL, "the handler panicked", Vec::new())
            })
        });
        let mut cancelled = core::pin::pin!(done.cancelled());
        future::poll_fn(|cx| {
            if let Poll::Ready(o) = run.as_mut().poll(cx) {
                return Poll::Ready(o);
            }
            if cancelled.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Cancelled: one more poll, in which the handler sees it; then it is dropped.
            match run.as_mut().poll(cx) {
                Poll::Ready(o) => Poll::Ready(o),
                Poll::Pending => Poll::Ready(Outcome::status(Status::CANCELLED, Vec::new())),
            }
        })
        .await
    };
    done.finish(outcome);
}

/// The task of a started handler.
pub(crate) fn task(started: Started<AsyncFns>) -> Task {
    match started {
        Started::Unary(f, Job { ctx, payload, done }) => Box::pin(guarded(move || f(ctx, payload), done)),
        Started::Notify(f, Job { ctx, payload, done }) => Box::pin(guarded(move || f(ctx, payload), done)),
        Started::Stream(f, Job { ctx, payload, done }, rx, tx) => {
            Box::pin(guarded(move || f(ctx, payload, rx, tx), done))
        }
    }
}

/// Where a connection's started handlers run: each is a task on the application's [`Spawner`].
pub(crate) struct SpawnDispatch(pub(crate) Arc<dyn Spawner>);

impl Dispatch<AsyncFns> for SpawnDispatch {
    /// Callers are tasks: their threads never run a connection's turn.
    const CALLERS_HELP: bool = false;

    fn dispatch(&mut self, started: Started<AsyncFns>) {
        self.0.spawn(task(started));
    }
}
