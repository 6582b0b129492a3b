//! The handler registry's bookkeeping and the dispatch of inbound requests, for any handler
//! signature: a runtime stores its own handler functions ([`HandlerFns`]) in a [`Registry`],
//! and the driver hands it back each request to run as a [`Started`] job (a task, a pool job),
//! with a [`Done`] that delivers the outcome. (Layer 5: imports `ctx`, `peer`, `stream`, `conn`.)
//!
//! Decided here, for every runtime: unknown modules and methods are answered UNKNOWN_MODULE /
//! UNKNOWN_METHOD, a request of the wrong kind for its method (a call to a notification, a
//! stream to a unary method) UNIMPLEMENTED, a signal for a method without a notification
//! handler (or beyond `max_concurrent_calls` running signal handlers) is dropped; inline
//! handlers run at once under the connection's lock (a panic answers INTERNAL). The typed
//! helpers ([`encode_reply`], [`status_of`]) turn a handler's result into the answer: an
//! unencodable response is ENCODE_FAILED. A bad request never costs the connection.

use core::panic::AssertUnwindSafe;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use tandem_core::typed::encode_vec;
use tandem_core::{ApiError, Instant, MethodId, RequestKind, Status};

use crate::conn::{CancelToken, Handle, Inner, Shared, StreamEntry};
use crate::ctx::{Ctx, InlineCtx};
use crate::peer::Peer;
use crate::stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};

/// An inline unary handler: runs in the driver under the connection's lock, writes its response
/// into the (empty) buffer it is given.
pub type InlineFn = dyn Fn(&InlineCtx<'_>, &[u8], &mut Vec<u8>) -> Result<(), Status> + Send + Sync;

/// A runtime's handler functions, one type per kind of method (async functions returning
/// futures in tandem-smol, blocking functions in tandem-std). Usually `Arc<dyn Fn…>`s.
pub trait HandlerFns: 'static {
    /// Serves a unary method.
    type Unary: Clone + Send + Sync + 'static;
    /// Serves a notification (reliable or signal).
    type Notify: Clone + Send + Sync + 'static;
    /// Serves a stream.
    type Stream: Clone + Send + Sync + 'static;
}

enum Entry<F: HandlerFns> {
    Unary(F::Unary),
    Notify(F::Notify),
    Stream(F::Stream),
    Inline(Arc<InlineFn>),
}

impl<F: HandlerFns> Clone for Entry<F> {
    fn clone(&self) -> Self {
        match self {
            Entry::Unary(f) => Entry::Unary(f.clone()),
            Entry::Notify(f) => Entry::Notify(f.clone()),
            Entry::Stream(f) => Entry::Stream(f.clone()),
            Entry::Inline(f) => Entry::Inline(f.clone()),
        }
    }
}

/// The methods one side serves, by [`MethodId`]. Cheap to clone (shared tables).
pub struct Registry<F: HandlerFns> {
    methods: Arc<HashMap<MethodId, Entry<F>>>,
    modules: Arc<HashSet<u32>>,
}

impl<F: HandlerFns> Clone for Registry<F> {
    fn clone(&self) -> Self {
        Registry { methods: self.methods.clone(), modules: self.modules.clone() }
    }
}

impl<F: HandlerFns> Default for Registry<F> {
    fn default() -> Self {
        Registry { methods: Arc::default(), modules: Arc::default() }
    }
}

impl<F: HandlerFns> core::fmt::Debug for Registry<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut ids: Vec<_> = self.methods.keys().collect();
        ids.sort();
        f.debug_struct("Handlers").field("methods", &ids).finish()
    }
}

impl<F: HandlerFns> Registry<F> {
    fn insert(mut self, id: MethodId, e: Entry<F>) -> Self {
        if self.methods.contains_key(&id) {
            panic!(
                "a handler for method {id:?} is already registered: every method of a side needs its own \
                 MethodId (is the same id declared for two methods?)"
            );
        }
        Arc::make_mut(&mut self.modules).insert(id.module);
        Arc::make_mut(&mut self.methods).insert(id, e);
        self
    }

    /// Adds a unary handler. Panics if `id` already has a handler.
    pub fn unary(self, id: MethodId, f: F::Unary) -> Self {
        self.insert(id, Entry::Unary(f))
    }

    /// Adds a notification handler. Panics if `id` already has a handler.
    pub fn notification(self, id: MethodId, f: F::Notify) -> Self {
        self.insert(id, Entry::Notify(f))
    }

    /// Adds a stream handler. Panics if `id` already has a handler.
    pub fn streaming(self, id: MethodId, f: F::Stream) -> Self {
        self.insert(id, Entry::Stream(f))
    }

    /// Adds an inline unary handler. Panics if `id` already has a handler.
    pub fn inline(self, id: MethodId, f: Arc<InlineFn>) -> Self {
        self.insert(id, Entry::Inline(f))
    }

    fn lookup(&self, m: MethodId) -> Result<&Entry<F>, Status> {
        match self.methods.get(&m) {
            Some(h) => Ok(h),
            None if self.modules.contains(&m.module) => Err(Status::UNKNOWN_METHOD),
            None => Err(Status::UNKNOWN_MODULE),
        }
    }

    /// The inline handler of `method`, if it has one.
    pub(crate) fn inline_handler(&self, method: MethodId) -> Option<Arc<InlineFn>> {
        match self.methods.get(&method) {
            Some(Entry::Inline(f)) => Some(f.clone()),
            _ => None,
        }
    }

    /// Runs an inline handler on a call (driver, lock held), on the request the driver copied
    /// into `inner.inline_req`, writing its response into the reused `inner.inline_resp`: no
    /// job, no cancellation token, and no allocation once the buffers have grown. A panic
    /// answers INTERNAL.
    pub(crate) fn run_inline(
        f: &InlineFn,
        shared: &Shared,
        inner: &mut Inner,
        id: u64,
        method: MethodId,
        deadline: Option<Instant>,
    ) {
        let req = core::mem::take(&mut inner.inline_req);
        let mut out = core::mem::take(&mut inner.inline_resp);
        out.clear();
        let cx = InlineCtx { shared, remote: inner.remote, method, deadline };
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(&cx, &req, &mut out))).unwrap_or_else(|_| {
            tracing::error!("inline handler panicked: answering INTERNAL");
            Err(Status::INTERNAL)
        });
        let (status, body) = match r {
            Ok(()) => (Status::OK, &out[..]),
            Err(status) => (status, &[][..]),
        };
        match inner.conn.respond(id, status, body) {
            Ok(()) => inner.wake_driver(),
            // Kept for later (allocates: rare), or answered TOO_LARGE (logged there).
            Err(ApiError::TxFull | ApiError::TooLarge { .. }) => inner.respond(id, status, body.to_vec()),
            Err(e) => tracing::debug!(id, error = %e, "inline response not sent"),
        }
        inner.inline_req = req;
        inner.inline_resp = out;
    }

    /// Starts the handler for an inbound request (driver, lock held): it comes back as a job in
    /// `out`, which the runtime starts once the lock is released. (Calls to inline handlers
    /// take [`run_inline`](Self::run_inline) instead.)
    pub(crate) fn dispatch(
        &self,
        shared: &Arc<Shared>,
        inner: &mut Inner,
        req: Request,
        out: &mut Vec<Started<F>>,
    ) {
        let Request { id, kind, method, deadline, payload } = req;
        let entry = match self.lookup(method) {
            Ok(h) => h.clone(),
            Err(status) => return refuse(inner, id, kind, method, status),
        };
        // Handles are created here but only dropped by the jobs: dropping the last handle takes
        // the connection's lock, which this function runs under.
        let token = Arc::new(CancelToken::default());
        let job = |what| Job {
            ctx: Ctx::new(Peer::new(shared.clone()), method, deadline, token.clone()),
            payload,
            done: Done { shared: shared.clone(), id, what, token: token.clone(), deadline },
        };
        match (entry, kind) {
            (Entry::Unary(f), RequestKind::Call) => {
                inner.inbound.insert(id, token.clone());
                out.push(Started::Unary(f, job(What::Call)));
            }
            (Entry::Notify(f), RequestKind::Notify) => {
                inner.inbound.insert(id, token.clone());
                out.push(Started::Notify(f, job(What::Notify)));
            }
            (Entry::Stream(f), RequestKind::Stream { half_closed }) => {
                inner.inbound.insert(id, token.clone());
                let mut entry = StreamEntry::new(true);
                if half_closed {
                    entry.fin = Some(Status::OK);
                }
                inner.streams.insert(id, entry);
                let rx = RawReceiver::new(Handle::new(shared.clone()), id);
                let tx = RawSender::new(Handle::new(shared.clone()), id);
                out.push(Started::Stream(f, job(What::Stream), rx, tx));
            }
            (_, kind) => refuse(inner, id, kind, method, Status::UNIMPLEMENTED),
        }
    }

    /// Starts the handler for a signal (unreliable notification); drops the signal when
    /// `max_concurrent_calls` signal handlers already run.
    pub(crate) fn dispatch_signal(
        &self,
        shared: &Arc<Shared>,
        inner: &mut Inner,
        method: MethodId,
        payload: Vec<u8>,
        out: &mut Vec<Started<F>>,
    ) {
        let f = match self.lookup(method) {
            Ok(Entry::Notify(f)) => f.clone(),
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
        let job = Job {
            ctx: Ctx::new(Peer::new(shared.clone()), method, None, token.clone()),
            payload,
            done: Done { shared: shared.clone(), id: 0, what: What::Signal, token, deadline: None },
        };
        out.push(Started::Notify(f, job));
    }
}

fn refuse(inner: &mut Inner, id: u64, kind: RequestKind, method: MethodId, status: Status) {
    tracing::debug!(id, ?method, %status, "request refused");
    match kind {
        RequestKind::Stream { .. } => inner.reset_stream(id, status),
        RequestKind::Call | RequestKind::Notify => inner.respond(id, status, Vec::new()),
    }
}

/// An inbound request, as the core reported it.
pub(crate) struct Request {
    pub(crate) id: u64,
    pub(crate) kind: RequestKind,
    pub(crate) method: MethodId,
    pub(crate) deadline: Option<Instant>,
    pub(crate) payload: Vec<u8>,
}

/// A handler to run, with what it serves. Start it with no connection lock held.
pub enum Started<F: HandlerFns> {
    /// A call: answer with [`Done::complete`]`(status, response)`.
    Unary(F::Unary, Job),
    /// A reliable notification or a signal: [`Done::complete`]`(status, _)` acknowledges it
    /// (a signal's outcome is dropped).
    Notify(F::Notify, Job),
    /// A stream opened by the peer, with the handles on its two directions:
    /// [`Done::complete`]`(status, _)` ends this side's direction with the handler's result.
    Stream(F::Stream, Job, RawReceiver, RawSender),
}

impl<F: HandlerFns> core::fmt::Debug for Started<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (kind, job) = match self {
            Started::Unary(_, j) => ("unary", j),
            Started::Notify(_, j) => ("notification", j),
            Started::Stream(_, j, _, _) => ("stream", j),
        };
        f.debug_struct("Started").field("kind", &kind).field("ctx", &job.ctx).finish_non_exhaustive()
    }
}

/// What a handler is given: its context and request, and the [`Done`] to answer with.
#[derive(Debug)]
pub struct Job {
    /// The handler's context (owned by the handler).
    pub ctx: Ctx,
    /// The request's (or stream's initial value's) bytes.
    pub payload: Vec<u8>,
    /// Delivers the outcome.
    pub done: Done,
}

#[derive(Clone, Copy, Debug)]
enum What {
    Call,
    Notify,
    Stream,
    Signal,
}

/// Delivers a handler's outcome and releases its exchange. Keeps no handle (it does not keep
/// the connection open). A runtime calls [`complete`](Self::complete) exactly once, with
/// CANCELLED when it stopped the handler because of [`cancelled`](Self::cancelled) and
/// INTERNAL when the handler panicked.
#[derive(Debug)]
pub struct Done {
    shared: Arc<Shared>,
    id: u64,
    what: What,
    token: Arc<CancelToken>,
    deadline: Option<Instant>,
}

impl Done {
    /// The deadline of the request (on the core's clock), to make current while the handler
    /// runs ([`deadline::enter`](crate::deadline::enter), [`Scoped`](crate::deadline::Scoped)).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the exchange was cancelled (by the caller, its deadline, or the connection's end).
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once the exchange is cancelled.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Delivers the outcome (`body`: a unary handler's response; ignored otherwise). Call with
    /// no lock held, after the handler's context and stream handles were dropped.
    pub fn complete(self, status: Status, body: Vec<u8>) {
        let id = self.id;
        let mut inner = self.shared.lock();
        match self.what {
            What::Call | What::Notify => {
                inner.inbound.remove(&id);
                inner.respond(id, status, body);
            }
            What::Stream => {
                inner.inbound.remove(&id);
                inner.discard_items(id);
                match inner.streams.remove(&id) {
                    Some(e) if e.reset.is_some() => inner.reset_stream(id, Status::CANCELLED),
                    Some(e) if e.sent_fin => {}
                    _ => inner.finish_stream(id, status),
                }
            }
            What::Signal => inner.signal_tasks -= 1,
        }
    }
}

/// A typed handler's result as its answer: OK with the encoded response, ENCODE_FAILED if it
/// does not encode, or the handler's error status.
pub fn encode_reply<T: Serialize>(r: Result<T, Status>) -> (Status, Vec<u8>) {
    match r {
        Ok(v) => match encode_vec(&v) {
            Ok(b) => (Status::OK, b),
            Err(_) => (Status::ENCODE_FAILED, Vec::new()),
        },
        Err(s) => (s, Vec::new()),
    }
}

/// A stream's raw handles as typed ones (for a typed stream handler).
pub fn typed_stream<Up, Down>(rx: RawReceiver, tx: RawSender) -> (StreamReceiver<Up>, StreamSender<Down>)
where
    Up: serde::de::DeserializeOwned,
    Down: Serialize,
{
    (StreamReceiver::new(rx), StreamSender::new(tx))
}

/// A notification or stream handler's result as its status.
pub fn status_of(r: Result<(), Status>) -> Status {
    r.err().unwrap_or(Status::OK)
}
