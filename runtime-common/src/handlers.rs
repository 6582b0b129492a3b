//! The handler registry's bookkeeping and the dispatch of inbound requests, for any handler
//! signature: a runtime stores its own handler functions ([`HandlerFns`]) in a [`Registry`],
//! and the driver hands it back each request to run as a [`Started`] job (a task, a pool job),
//! with a [`Done`] that delivers the outcome. (Layer 5: imports `ctx`, `peer`, `stream`, `conn`, `outcome`, `introspect`.)
//!
//! Decided here, for every runtime: unknown modules and methods are answered UNKNOWN_MODULE /
//! UNKNOWN_METHOD, a request of the wrong kind for its method (a call to a notification, a
//! stream to a unary method) UNIMPLEMENTED, a signal for a method without a notification
//! handler (or beyond `max_concurrent_calls` running signal handlers) is dropped; inline
//! handlers run at once under the connection's lock (a panic answers INTERNAL). The typed
//! helpers ([`encode_reply`], [`status_of`]) turn a handler's result into the answer: an
//! unencodable response is ENCODE_FAILED. A bad request never costs the connection.

use core::fmt;
use core::panic::AssertUnwindSafe;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use tandem_core::typed::{encode_vec, MethodDef, MethodLabel, ServiceDef};
use tandem_core::{ApiError, Instant, MethodId, RequestKind, SchemaKey, Status};

use crate::clock::now;
use crate::conn::{CancelToken, Handle, Inner, Opened, Shared, StreamEntry};
use crate::ctx::{Ctx, InlineCtx};
use crate::observe::{self, ExchangeKind, Finished, Side};
pub use crate::outcome::{bad_payload, Outcome};
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

/// How a registered method is declared: the name errors and logs give it, and its schema key
/// (checked against every keyed request before its payload is decoded, SPEC.md §7.10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// `service.method`, or the ids of a method registered without a declaration.
    pub label: MethodLabel,
    /// The method's schema key; `None` for raw methods (nothing is checked).
    pub key: Option<SchemaKey>,
}

impl Meta {
    /// A method registered on raw bytes, without a declaration.
    pub fn raw(id: MethodId) -> Self {
        Meta { label: MethodLabel::id(id), key: None }
    }

    /// The declaration of a service method.
    pub fn of(m: &MethodDef) -> Self {
        Meta { label: MethodLabel { id: m.id, path: m.path }, key: Some(m.key) }
    }
}

/// Two registrations collide: the handler set refuses the second, naming both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistrationError {
    /// Two handlers for one method id.
    Method {
        /// The method id.
        id: MethodId,
        /// What was registered first.
        first: String,
        /// What was registered second.
        second: String,
    },
    /// Two services on one module id.
    Module {
        /// The module id.
        module: u32,
        /// The service registered first.
        first: &'static str,
        /// The service registered second.
        second: &'static str,
    },
}

impl fmt::Display for RegistrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistrationError::Method { id, first, second } => write!(
                f,
                "method {}/{} is registered twice: {first} and {second}; every method of a side needs its own id \
                 (are two methods declared with the same id?)",
                id.module, id.method
            ),
            RegistrationError::Module { module, first, second } => write!(
                f,
                "module {module} is served by two services: {first} and {second}; give each service its own module id"
            ),
        }
    }
}

impl std::error::Error for RegistrationError {}

fn describe(meta: &Meta, raw: &str) -> String {
    if meta.label.path.is_empty() {
        format!("a {raw} handler")
    } else {
        format!("`{}`", meta.label.path)
    }
}

/// The table of methods, looked up on every request. Its keys come from the peer, but the
/// table holds only the methods this side registered and a lookup never adds one, so a peer
/// cannot grow or crowd it whatever ids it sends: hashed with foldhash, not SipHash, whose
/// resistance to chosen keys would buy nothing here (see `conn::OwnIds`).
type MethodTable<F> = HashMap<MethodId, (Entry<F>, Meta), foldhash::fast::FixedState>;

/// The methods one side serves, by [`MethodId`]. Cheap to clone (shared tables).
pub struct Registry<F: HandlerFns> {
    methods: Arc<MethodTable<F>>,
    /// Every module with a handler, and the service that declares it, if any.
    modules: Arc<HashMap<u32, Option<&'static str>>>,
    /// The declared services, for introspection (SPEC.md Appendix B).
    services: Arc<Vec<&'static ServiceDef>>,
    introspection: bool,
}

impl<F: HandlerFns> Clone for Registry<F> {
    fn clone(&self) -> Self {
        Registry {
            methods: self.methods.clone(),
            modules: self.modules.clone(),
            services: self.services.clone(),
            introspection: self.introspection,
        }
    }
}

impl<F: HandlerFns> Default for Registry<F> {
    fn default() -> Self {
        Registry {
            methods: Arc::default(),
            modules: Arc::default(),
            services: Arc::default(),
            introspection: true,
        }
    }
}

impl<F: HandlerFns> core::fmt::Debug for Registry<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut ids: Vec<_> = self.methods.keys().collect();
        ids.sort();
        let services: Vec<_> = self.services.iter().map(|s| s.name).collect();
        f.debug_struct("Handlers").field("methods", &ids).field("services", &services).finish()
    }
}

/// A handler of one of the kinds a [`Registry`] holds.
pub enum Handler<F: HandlerFns> {
    /// A unary method.
    Unary(F::Unary),
    /// A notification (reliable or signal).
    Notify(F::Notify),
    /// A stream.
    Stream(F::Stream),
}

impl<F: HandlerFns> Registry<F> {
    fn try_insert(mut self, id: MethodId, e: Entry<F>, meta: Meta) -> Result<Self, RegistrationError> {
        if let Some((old, first)) = self.methods.get(&id) {
            let kind = |e: &Entry<F>| match e {
                Entry::Unary(_) | Entry::Inline(_) => "unary",
                Entry::Notify(_) => "notification",
                Entry::Stream(_) => "stream",
            };
            return Err(RegistrationError::Method {
                id,
                first: describe(first, kind(old)),
                second: describe(&meta, kind(&e)),
            });
        }
        Arc::make_mut(&mut self.modules).entry(id.module).or_insert(None);
        Arc::make_mut(&mut self.methods).insert(id, (e, meta));
        Ok(self)
    }

    fn insert(self, id: MethodId, e: Entry<F>, meta: Meta) -> Self {
        self.try_insert(id, e, meta).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Adds a handler for `id`, declared by `meta`.
    pub fn try_add(self, id: MethodId, h: Handler<F>, meta: Meta) -> Result<Self, RegistrationError> {
        let e = match h {
            Handler::Unary(f) => Entry::Unary(f),
            Handler::Notify(f) => Entry::Notify(f),
            Handler::Stream(f) => Entry::Stream(f),
        };
        self.try_insert(id, e, meta)
    }

    /// Adds every method of a declared service, with the handler `handler` gives for each;
    /// refuses a module another service already serves, or a method id already registered.
    pub fn try_service(
        mut self,
        def: &'static ServiceDef,
        mut handler: impl FnMut(&'static MethodDef) -> Handler<F>,
    ) -> Result<Self, RegistrationError> {
        if let Some(Some(first)) = self.modules.get(&def.module) {
            return Err(RegistrationError::Module { module: def.module, first, second: def.name });
        }
        for m in def.methods {
            self = self.try_add(m.id, handler(m), Meta::of(m))?;
        }
        Arc::make_mut(&mut self.modules).insert(def.module, Some(def.name));
        let services = Arc::make_mut(&mut self.services);
        services.push(def);
        services.sort_by_key(|s| s.module);
        Ok(self)
    }

    /// Serves the introspection service (SPEC.md Appendix B) or not. On by default.
    pub fn introspection(mut self, on: bool) -> Self {
        self.introspection = on;
        self
    }

    /// The declared services registered, in module order.
    pub fn services(&self) -> &[&'static ServiceDef] {
        &self.services
    }

    /// Adds a unary handler. Panics if `id` already has a handler.
    pub fn unary(self, id: MethodId, f: F::Unary) -> Self {
        self.insert(id, Entry::Unary(f), Meta::raw(id))
    }

    /// Adds a unary handler declared by `meta`. Panics if `id` already has a handler.
    pub fn unary_declared(self, id: MethodId, f: F::Unary, meta: Meta) -> Self {
        self.insert(id, Entry::Unary(f), meta)
    }

    /// Adds a notification handler. Panics if `id` already has a handler.
    pub fn notification(self, id: MethodId, f: F::Notify) -> Self {
        self.insert(id, Entry::Notify(f), Meta::raw(id))
    }

    /// Adds a notification handler declared by `meta`. Panics if `id` already has a handler.
    pub fn notification_declared(self, id: MethodId, f: F::Notify, meta: Meta) -> Self {
        self.insert(id, Entry::Notify(f), meta)
    }

    /// Adds a stream handler. Panics if `id` already has a handler.
    pub fn streaming(self, id: MethodId, f: F::Stream) -> Self {
        self.insert(id, Entry::Stream(f), Meta::raw(id))
    }

    /// Adds a stream handler declared by `meta`. Panics if `id` already has a handler.
    pub fn streaming_declared(self, id: MethodId, f: F::Stream, meta: Meta) -> Self {
        self.insert(id, Entry::Stream(f), meta)
    }

    /// Adds an inline unary handler. Panics if `id` already has a handler.
    pub fn inline(self, id: MethodId, f: Arc<InlineFn>) -> Self {
        self.insert(id, Entry::Inline(f), Meta::raw(id))
    }

    /// Gives the raw method `id` a schema key: keyed requests with another key are refused
    /// with SCHEMA_MISMATCH (SPEC.md §7.10.2). Panics if `id` has no handler.
    pub fn with_key(mut self, id: MethodId, key: SchemaKey) -> Self {
        match Arc::make_mut(&mut self.methods).get_mut(&id) {
            Some((_, meta)) => meta.key = Some(key),
            None => panic!("with_key: method {}/{} has no handler to give a key to", id.module, id.method),
        }
        self
    }

    fn lookup(&self, m: MethodId) -> Result<&(Entry<F>, Meta), (Status, String)> {
        match self.methods.get(&m) {
            Some(h) => Ok(h),
            None => match self.modules.get(&m.module) {
                Some(service) => {
                    let name = service.map_or_else(|| format!("module {}", m.module), str::to_owned);
                    Err((Status::UNKNOWN_METHOD, format!("{name} has no method {}", m.method)))
                }
                None => Err((Status::UNKNOWN_MODULE, format!("no module {} is served here", m.module))),
            },
        }
    }

    /// The inline handler of `method`, if it has one and declares no schema key: a keyed
    /// method's calls take the slow path ([`dispatch`](Self::dispatch)), which checks the key.
    pub(crate) fn inline_handler(&self, method: MethodId) -> Option<Arc<InlineFn>> {
        match self.methods.get(&method) {
            Some((Entry::Inline(f), meta)) if meta.key.is_none() => Some(f.clone()),
            _ => None,
        }
    }

    /// Runs an inline handler on a call (driver, lock held), on the request the driver copied
    /// into `inner.inline_req`, writing its response into the reused `inner.inline_resp`: no
    /// job, no cancellation token, and no allocation once the buffers have grown. A panic
    /// answers INTERNAL. `arrived`: the clock's reading when the request was taken; returns the
    /// driver's clock from then on: a new reading when someone wants the handler's duration (an
    /// observer, or the `tandem::exchange` log at debug level), otherwise `arrived` — inline
    /// handlers must be quick (they hold the I/O thread), and one reading of the clock per call
    /// was ~1.7 % of a pipelined call's CPU.
    pub(crate) fn run_inline(
        f: &InlineFn,
        shared: &Shared,
        inner: &mut Inner,
        id: u64,
        method: MethodId,
        deadline: Option<Instant>,
        arrived: Instant,
    ) -> Instant {
        let req = core::mem::take(&mut inner.inline_req);
        let mut out = core::mem::take(&mut inner.inline_resp);
        out.clear();
        let cx = InlineCtx { shared, remote: inner.remote, method, deadline };
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(&cx, &req, &mut out))).unwrap_or_else(|_| {
            tracing::error!(
                conn = shared.id,
                peer = shared.name(),
                module = method.module,
                method = method.method,
                "inline handler panicked: answering INTERNAL"
            );
            Err(Status::INTERNAL)
        });
        let (status, body) = match r {
            Ok(()) => (Status::OK, &out[..]),
            Err(status) => (status, &[][..]),
        };
        let mut done = arrived;
        if observe::wanted(shared.observer()) {
            done = crate::clock::fresh();
            observe::finished(
                shared.observer(),
                &Finished {
                    conn: shared.id,
                    peer: shared.name(),
                    id,
                    method: MethodLabel::id(method),
                    side: Side::Served,
                    kind: ExchangeKind::Call,
                    status,
                    duration: done.saturating_duration_since(arrived),
                },
            );
        }
        match inner.conn.respond(id, status, body) {
            Ok(()) => inner.wake_driver(),
            // Kept for later (allocates: rare), or answered TOO_LARGE (logged there).
            Err(ApiError::TxFull | ApiError::TooLarge { .. }) => inner.respond(id, status, body.to_vec()),
            Err(e) => tracing::debug!(id, error = %e, "inline response not sent"),
        }
        inner.inline_req = req;
        inner.inline_resp = out;
        done
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
        let Request { id, kind, method, deadline, key, payload } = req;
        if method.module == crate::introspect::MODULE
            && self.introspection
            && !self.methods.contains_key(&method)
        {
            let o = crate::introspect::answer(&self.services, method, kind, key, &payload);
            return refuse_or_answer(inner, id, kind, method, o);
        }
        let (entry, meta) = match self.lookup(method) {
            Ok((e, m)) => (e.clone(), *m),
            Err((status, msg)) => return refuse(inner, id, kind, method, status, msg),
        };
        let fits = matches!(
            (&entry, kind),
            (Entry::Unary(_) | Entry::Inline(_), RequestKind::Call)
                | (Entry::Notify(_), RequestKind::Notify)
                | (Entry::Stream(_), RequestKind::Stream { .. })
        );
        if !fits {
            let served = match entry {
                Entry::Unary(_) | Entry::Inline(_) => "a unary method",
                Entry::Notify(_) => "a notification",
                Entry::Stream(_) => "a stream",
            };
            let msg = format!("{} is served here as {served}", meta.label);
            return refuse(inner, id, kind, method, Status::UNIMPLEMENTED, msg);
        }
        if let Some(msg) = key_mismatch(&meta, key) {
            tracing::warn!(id, %msg, "request refused");
            return refuse(inner, id, kind, method, Status::SCHEMA_MISMATCH, msg);
        }
        if let Entry::Inline(f) = &entry {
            // Calls to inline handlers normally take the driver's fast path; this one did not.
            inner.inline_req = payload;
            Registry::<F>::run_inline(&**f, shared, inner, id, method, deadline, now());
            return;
        }
        // Handles are created here but only dropped by the jobs: dropping the last handle takes
        // the connection's lock, which this function runs under.
        let observed = match kind {
            RequestKind::Call => ExchangeKind::Call,
            RequestKind::Notify => ExchangeKind::Notify,
            RequestKind::Stream { .. } => ExchangeKind::Stream,
        };
        let opened = Opened::now(meta.label, observed, deadline);
        let token = Arc::new(CancelToken::serving(opened));
        let job = |what| Job {
            ctx: Ctx::new(Peer::new(shared.clone()), method, deadline, token.clone()),
            payload,
            done: Done {
                shared: shared.clone(),
                id,
                what,
                token: token.clone(),
                deadline,
                label: meta.label,
                opened,
            },
        };
        inner.inbound.insert(id, token.clone());
        match (entry, kind) {
            (Entry::Unary(f), _) => out.push(Started::Unary(f, job(What::Call))),
            (Entry::Notify(f), _) => out.push(Started::Notify(f, job(What::Notify))),
            (Entry::Stream(f), RequestKind::Stream { half_closed }) => {
                let mut entry = StreamEntry::new(true);
                if half_closed {
                    entry.fin = Some(Status::OK);
                }
                inner.streams.insert(id, entry);
                let rx = RawReceiver::new(Handle::new(shared.clone()), id, meta.label);
                let tx = RawSender::new(Handle::new(shared.clone()), id, meta.label);
                out.push(Started::Stream(f, job(What::Stream), rx, tx));
            }
            // `fits` above rules the other pairs out.
            (Entry::Stream(_) | Entry::Inline(_), _) => {
                inner.inbound.remove(&id);
            }
        }
    }

    /// Starts the handler for a signal (unreliable notification); drops the signal when
    /// `max_concurrent_calls` signal handlers already run.
    pub(crate) fn dispatch_signal(
        &self,
        shared: &Arc<Shared>,
        inner: &mut Inner,
        method: MethodId,
        key: Option<SchemaKey>,
        payload: Vec<u8>,
        out: &mut Vec<Started<F>>,
    ) {
        let (f, meta) = match self.lookup(method) {
            Ok((Entry::Notify(f), meta)) => (f.clone(), *meta),
            _ => {
                tracing::debug!(?method, "signal for a method without a notification handler dropped");
                return;
            }
        };
        if let Some(msg) = key_mismatch(&meta, key) {
            // SPEC.md §7.10.2: a signal cannot be answered; it is dropped, and said so here.
            tracing::warn!(%msg, "signal dropped");
            return;
        }
        if inner.signal_tasks >= inner.conn.config().max_concurrent_calls as usize {
            tracing::warn!(?method, "too many signal handlers running: signal dropped");
            return;
        }
        inner.signal_tasks += 1;
        let token = Arc::new(CancelToken::default());
        let job = Job {
            ctx: Ctx::new(Peer::new(shared.clone()), method, None, token.clone()),
            payload,
            done: Done {
                shared: shared.clone(),
                id: 0,
                what: What::Signal,
                token,
                deadline: None,
                label: meta.label,
                opened: Opened::now(meta.label, ExchangeKind::Signal, None),
            },
        };
        out.push(Started::Notify(f, job));
    }
}

/// SCHEMA_MISMATCH's message when the request's key is not the handler's (SPEC.md §7.10.2).
fn key_mismatch(meta: &Meta, key: Option<SchemaKey>) -> Option<String> {
    match (meta.key, key) {
        (Some(ours), Some(theirs)) if ours != theirs => Some(format!(
            "schema mismatch for {}: the caller's key is {theirs}, this side's is {ours}; both ends must use the \
             same declaration of the method",
            meta.label
        )),
        _ => None,
    }
}

fn refuse(inner: &mut Inner, id: u64, kind: RequestKind, method: MethodId, status: Status, message: String) {
    tracing::debug!(id, ?method, %status, %message, "request refused");
    refuse_or_answer(inner, id, kind, method, Outcome::failed(status, message, Vec::new()));
}

/// Answers a request the registry handles itself (a refusal, introspection).
fn refuse_or_answer(inner: &mut Inner, id: u64, kind: RequestKind, method: MethodId, o: Outcome) {
    let _ = method;
    match kind {
        RequestKind::Stream { .. } if o.status == Status::OK => inner.reset_stream(id, Status::UNIMPLEMENTED),
        RequestKind::Stream { .. } => inner.reset_stream(id, o.status),
        RequestKind::Call | RequestKind::Notify => {
            let status = o.status;
            let body = o.wire_body(inner.conn.features());
            inner.respond(id, status, body)
        }
    }
}

/// An inbound request, as the core reported it.
pub(crate) struct Request {
    pub(crate) id: u64,
    pub(crate) kind: RequestKind,
    pub(crate) method: MethodId,
    pub(crate) deadline: Option<Instant>,
    pub(crate) key: Option<SchemaKey>,
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
    label: MethodLabel,
    /// What it serves and when it arrived (for the observer).
    opened: Opened,
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

    /// The method being served.
    pub fn method(&self) -> MethodLabel {
        self.label
    }

    /// The name of the peer whose request this is (for logs).
    pub fn peer_name(&self) -> &str {
        self.shared.name()
    }

    /// The connection's number (for logs).
    pub fn conn(&self) -> u64 {
        self.shared.id
    }

    /// Delivers the outcome (`body`: a unary handler's response; ignored otherwise). Call with
    /// no lock held, after the handler's context and stream handles were dropped.
    pub fn complete(self, status: Status, body: Vec<u8>) {
        self.finish(Outcome::status(status, body))
    }

    /// Delivers the outcome, with its message and details when the handler failed (sent as a
    /// status body if the peer negotiated `error_details`, SPEC.md §8.7; a stream's terminal
    /// carries the status only, the message is logged). Call with no lock held, after the
    /// handler's context and stream handles were dropped.
    pub fn finish(self, outcome: Outcome) {
        let id = self.id;
        if outcome.status != Status::OK {
            if let Some(m) = &outcome.message {
                tracing::debug!(id, method = %self.label, status = %outcome.status, message = %m, "handler failed");
            }
        }
        let status = outcome.status;
        observe::finished(
            self.shared.observer(),
            &Finished {
                conn: self.shared.id,
                peer: self.shared.name(),
                id,
                method: self.opened.method,
                side: Side::Served,
                kind: self.opened.kind,
                status,
                duration: crate::clock::fresh().saturating_duration_since(self.opened.at),
            },
        );
        let mut inner = self.shared.lock();
        match self.what {
            What::Call | What::Notify => {
                inner.inbound.remove(&id);
                let body = outcome.wire_body(inner.conn.features());
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

/// A stream's raw receiving half as a typed one (a client-streaming handler sends its response
/// on the raw sending half).
pub fn typed_receiver<Up: serde::de::DeserializeOwned>(rx: RawReceiver) -> StreamReceiver<Up> {
    StreamReceiver::new(rx)
}

/// A notification or stream handler's result as its status.
pub fn status_of(r: Result<(), Status>) -> Status {
    r.err().unwrap_or(Status::OK)
}
