//! [`Handlers`]: the methods one side serves, as blocking functions, and how a started
//! handler runs as a pool job. The registry's bookkeeping and the dispatch decisions are
//! `tandem_runtime::handlers`'; [`PoolDispatch`] hands them to the pool from the I/O threads
//! (`tandem_runtime::threads`). (Layer 5: imports `service`, `ctx`, `api`, `pool`.)

use core::panic::AssertUnwindSafe;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::handlers::{
    bad_payload, encode_reply, status_of, typed_stream, Handler, HandlerFns, Job, Meta, Outcome, Registry,
    Started,
};
use tandem_runtime::service::Incoming;
use tandem_runtime::tandem_core::typed::rt::BlockingService;
use tandem_runtime::tandem_core::typed::{MethodKind, Notification, Streaming, Unary};
use tandem_runtime::tandem_core::{MethodId, SchemaKey, Status};
use tandem_runtime::threads::Dispatch;
use tandem_runtime::{deadline, InlineCtx, RegistrationError};

use crate::api::{RawReceiver, RawSender, StreamReceiver, StreamSender};
use crate::ctx::Ctx;
use crate::pool::{self, Lane, Pool};
use crate::service::Blocking;

type UnaryFn = dyn Fn(Ctx, Vec<u8>) -> Outcome + Send + Sync;
type NotifyFn = dyn Fn(Ctx, Vec<u8>) -> Outcome + Send + Sync;
type StreamFn = dyn Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Outcome + Send + Sync;
/// A started handler, ready to run on its context and request.
type Run = Box<dyn FnOnce(Ctx, Vec<u8>) -> Outcome>;

/// This runtime's handler signatures: blocking functions.
pub(crate) struct SyncFns;

impl HandlerFns for SyncFns {
    type Unary = Arc<UnaryFn>;
    type Notify = Arc<NotifyFn>;
    type Stream = Arc<StreamFn>;
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
/// Each method may be registered once: registering a [`MethodId`] twice panics, and so does
/// serving two services on one module; the message names both ([`try_serve`](Self::try_serve)
/// returns the error instead).
///
/// A declared service (`tandem_core::service!`) is registered in one call,
/// [`serve`](Self::serve), with an implementation of its `BlockingServer<Blocking>` trait; its
/// requests are checked against the methods' schema keys before they are decoded (SPEC.md
/// §7.10), and the service is listed by the introspection service (SPEC.md Appendix B), which
/// [`introspection`](Self::introspection) turns off.
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

    /// Serves a declared service: `service` is its `Serve` wrapper around an implementation of
    /// its `BlockingServer<Blocking>` trait. Panics, naming both, if one of its methods or its
    /// module is already served.
    ///
    /// ```
    /// use tandem_std::{Blocking, Ctx, HandlerError, Handlers, Status};
    ///
    /// tandem_std::service! {
    ///     /// Arithmetic.
    ///     pub service calc = 9 {
    ///         /// Doubles.
    ///         unary double(i64) -> i64 = 1;
    ///     }
    /// }
    ///
    /// struct Calc;
    /// impl calc::BlockingServer<Blocking> for Calc {
    ///     fn double(&self, _ctx: Ctx, x: i64) -> Result<i64, HandlerError> {
    ///         x.checked_mul(2).ok_or(HandlerError::new(Status::OUT_OF_RANGE, "overflow"))
    ///     }
    /// }
    ///
    /// let handlers = Handlers::new().serve(calc::Serve(Calc));
    /// ```
    pub fn serve<S: BlockingService<Blocking>>(self, service: S) -> Self {
        self.try_serve(service).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`serve`](Self::serve), returning the collision instead of panicking.
    pub fn try_serve<S: BlockingService<Blocking>>(self, service: S) -> Result<Self, RegistrationError> {
        let svc = Arc::new(service);
        let reg = self.reg.try_service(S::DEF, |m| {
            let (svc, method) = (svc.clone(), m.id.method);
            match m.kind {
                MethodKind::Unary => {
                    let f: Arc<UnaryFn> = Arc::new(move |ctx: Ctx, bytes: Vec<u8>| {
                        svc.serve(Incoming::new(method, ctx.into_inner(), bytes, None))
                    });
                    Handler::Unary(f)
                }
                MethodKind::Notify | MethodKind::Signal => {
                    let f: Arc<NotifyFn> = Arc::new(move |ctx: Ctx, bytes: Vec<u8>| {
                        svc.serve(Incoming::new(method, ctx.into_inner(), bytes, None))
                    });
                    Handler::Notify(f)
                }
                _ => {
                    let f: Arc<StreamFn> =
                        Arc::new(move |ctx: Ctx, bytes: Vec<u8>, rx: RawReceiver, tx: RawSender| {
                            svc.serve(Incoming::new(method, ctx.into_inner(), bytes, Some((rx.0, tx.0))))
                        });
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
    pub fn unary<Req, Resp, E: 'static, F>(self, method: &Unary<Req, Resp, E>, f: F) -> Self
    where
        Req: Serialize + DeserializeOwned + 'static,
        Resp: Serialize + DeserializeOwned + 'static,
        F: Fn(Ctx, Req) -> Result<Resp, Status> + Send + Sync + 'static,
    {
        let m = *method;
        let h = move |ctx, bytes: Vec<u8>| match m.decode_request(&bytes) {
            Ok(req) => {
                let (status, body) = encode_reply(f(ctx, req));
                Outcome::status(status, body)
            }
            Err(_) => bad_payload(m.label(), core::any::type_name::<Req>()),
        };
        let meta = Meta { label: m.label(), key: m.key() };
        Handlers { reg: self.reg.unary_declared(m.id(), Arc::new(h), meta) }
    }

    /// Serves a unary method on raw bytes.
    pub fn raw_unary<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Result<Vec<u8>, Status> + Send + Sync + 'static,
    {
        let h = move |ctx, bytes| f(ctx, bytes).map_or_else(|s| Outcome::status(s, Vec::new()), Outcome::ok);
        Handlers { reg: self.reg.unary(method, Arc::new(h)) }
    }

    /// Serves a unary method on raw bytes, answering with a full [`Outcome`]: a failure may
    /// carry a message and details (a status body, SPEC.md §8.7, sent when the peer negotiated
    /// `error_details`).
    pub fn raw_unary_outcome<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Outcome + Send + Sync + 'static,
    {
        Handlers { reg: self.reg.unary(method, Arc::new(f)) }
    }

    /// Serves a notification on raw bytes, answering with a full [`Outcome`] (see
    /// [`raw_unary_outcome`](Self::raw_unary_outcome); its body is dropped).
    pub fn raw_notification_outcome<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Outcome + Send + Sync + 'static,
    {
        Handlers { reg: self.reg.notification(method, Arc::new(f)) }
    }

    /// Serves a unary method on raw bytes **inline**: `f` runs on the connection's I/O thread
    /// as soon as the request is read, and writes its response into the (empty) buffer it is
    /// given. No hand-off to the pool and no allocation per call (buffers are reused): the fast
    /// path for quick handlers. But while `f` runs, its I/O thread serves no other connection
    /// (and the connection's lock is held), so `f` must be quick and must not block. It gets an
    /// [`InlineCtx`] (no [`Peer`](crate::Peer) to call back on). A panic in `f` is answered
    /// INTERNAL.
    pub fn raw_unary_inline<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        Handlers { reg: self.reg.inline(method, Arc::new(f)) }
    }

    /// Serves a notification, reliable ([`Peer::notify`](crate::Peer::notify): the result is
    /// the acknowledgement) or unreliable ([`Peer::signal`](crate::Peer::signal): the result is
    /// dropped). The declaration's schema key, if it has one, is checked.
    pub fn notification<T, F>(self, method: &Notification<T>, f: F) -> Self
    where
        T: Serialize + DeserializeOwned + 'static,
        F: Fn(Ctx, T) -> Result<(), Status> + Send + Sync + 'static,
    {
        let m = *method;
        let h = move |ctx, bytes: Vec<u8>| match m.decode(&bytes) {
            Ok(v) => Outcome::status(status_of(f(ctx, v)), Vec::new()),
            Err(_) => bad_payload(m.label(), core::any::type_name::<T>()),
        };
        let meta = Meta { label: m.label(), key: m.key() };
        Handlers { reg: self.reg.notification_declared(m.id(), Arc::new(h), meta) }
    }

    /// Serves a notification on raw bytes.
    pub fn raw_notification<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>) -> Result<(), Status> + Send + Sync + 'static,
    {
        let h = move |ctx, bytes| Outcome::status(status_of(f(ctx, bytes)), Vec::new());
        Handlers { reg: self.reg.notification(method, Arc::new(h)) }
    }

    /// Serves a streaming method: `f(ctx, init, items_from_opener, sender_to_opener)`. When it
    /// returns, this direction of the stream ends with OK or the returned status. While it
    /// waits for credit (`send`) or an item (`recv`) it is parked: streams do not pin workers.
    /// The declaration's schema key, if it has one, is checked.
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
                Outcome::status(status_of(f(ctx, init, StreamReceiver(rx), StreamSender(tx))), Vec::new())
            }
            Err(_) => bad_payload(m.label(), core::any::type_name::<Init>()),
        };
        let meta = Meta { label: m.label(), key: m.key() };
        Handlers { reg: self.reg.streaming_declared(m.id(), Arc::new(h), meta) }
    }

    /// Serves a streaming method on raw bytes.
    pub fn raw_streaming<F>(self, method: MethodId, f: F) -> Self
    where
        F: Fn(Ctx, Vec<u8>, RawReceiver, RawSender) -> Result<(), Status> + Send + Sync + 'static,
    {
        let h = move |ctx, bytes, rx, tx| Outcome::status(status_of(f(ctx, bytes, rx, tx)), Vec::new());
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
            Started::Notify(f, job) => (job, Box::new(move |c, p| f(c, p))),
            Started::Stream(f, job, rx, tx) => {
                (job, Box::new(move |c, p| f(c, p, RawReceiver(rx), RawSender(tx))))
            }
        };
        let Job { ctx, payload, done } = job;
        let outcome = if refused || done.is_cancelled() {
            // The context and stream handles go before the outcome is delivered.
            drop((run, ctx, payload));
            Outcome::status(if refused { Status::UNAVAILABLE } else { Status::CANCELLED }, Vec::new())
        } else {
            let _scope = deadline::enter(done.deadline());
            std::panic::catch_unwind(AssertUnwindSafe(|| run(Ctx::new(ctx), payload))).unwrap_or_else(|_| {
                tracing::error!(conn = done.conn(), peer = done.peer_name(), method = %done.method(), "handler panicked: answering INTERNAL");
                Outcome::failed(Status::INTERNAL, "the handler panicked", Vec::new())
            })
        };
        let outcome = if !refused && done.is_cancelled() {
            Outcome::status(Status::CANCELLED, Vec::new())
        } else {
            outcome
        };
        done.finish(outcome);
    })
}

/// Where a connection's started handlers run: its lane of the handler pool. A client's own pool
/// is shut down when its connection ends.
pub(crate) struct PoolDispatch {
    pub(crate) lane: Lane,
    pub(crate) pool: Option<Pool>,
}

impl Dispatch<SyncFns> for PoolDispatch {
    /// Callers block in `block_on`, which helps (`threads::io::help`) before it parks.
    const CALLERS_HELP: bool = true;

    fn dispatch(&mut self, started: Started<SyncFns>) {
        self.lane.submit(job(started));
    }

    fn ended(&mut self) {
        if let Some(p) = self.pool.take() {
            p.shutdown();
        }
    }
}
