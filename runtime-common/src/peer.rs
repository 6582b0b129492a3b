//! [`Peer`]: the handle to one connection, for calling, notifying and streaming toward the other
//! side; [`PendingCall`], a call in flight. (Layer 3: imports `conn`, `stream`, `deadline`,
//! `clock`, `error`, `state`, `watch`, `relay`.)
//!
//! Every operation that waits is a future that waits through wakers only; a time limit (the
//! exchange's deadline, a shutdown's grace period) is the runtime's [`Sleep`](crate::clock::Sleep).
//! For runtimes: [`from_shared`], [`shared`], [`connected`] and [`shutdown`].

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_lite::future::{poll_fn, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::typed::{
    self, encode_vec, CodecError, MethodLabel, NoError, Notification, Streaming, Unary,
};
use tandem_core::{
    ApiError, ConnectionError, MethodId, PeerLimits, RequestKind, SchemaKey, Stats, Status, StatusBody,
};

use crate::auth::PeerIdentity;
use crate::clock::{now, to_std};
use crate::conn::{wait_on, CallResult, CallSlot, Handle, Inner, Opened, Shared, StreamEntry};
use crate::deadline::Deadline;
use crate::error::{CallError, Error, ErrorKind};
use crate::observe::{ExchangeKind, InFlight};
use crate::relay;
use crate::state::{LinkState, PeerCredentials, TransportFailure};
use crate::stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};
pub use crate::watch::StateWatch;

/// A handle on the connection `shared` (counted: it keeps the connection open).
pub fn from_shared(shared: Arc<Shared>) -> Peer {
    Peer::new(shared)
}

/// The connection behind a handle.
pub fn shared(peer: &Peer) -> &Arc<Shared> {
    peer.shared()
}

/// Waits for the handshake with `addr`; fails with the reason if the connection closes first
/// ([`Error::Refused`] with the server's message when it refused this client, SPEC.md §5.6;
/// [`Error::Tls`] when the TLS session failed; [`Error::PeerSpeaksTls`] when a plaintext
/// connection met a TLS server; [`Error::PeerSpeaksHttp`] when it was answered in HTTP;
/// [`Error::WebSocket`] when the WebSocket upgrade failed).
pub async fn connected(peer: &Peer, addr: &tandem_core::addr::Address) -> Result<(), Error> {
    let result = peer.connected().await;
    if result.is_err() {
        let failure = peer.shared().lock().transport_failure.clone();
        match failure {
            Some(TransportFailure::Tls(reason)) => return Err(Error::Tls { addr: addr.to_string(), reason }),
            Some(TransportFailure::PeerSpeaksTls) => {
                return Err(Error::PeerSpeaksTls { addr: addr.to_string() })
            }
            Some(TransportFailure::PeerSpeaksHttp) => {
                return Err(Error::PeerSpeaksHttp { addr: addr.to_string() })
            }
            Some(TransportFailure::WebSocket(reason)) => {
                return Err(Error::WebSocket { addr: addr.to_string(), reason })
            }
            None => {}
        }
    }
    match result {
        Ok(()) => Ok(()),
        Err(ConnectionError::PeerClosed { status })
            if status == Status::UNAUTHENTICATED || status == Status::PERMISSION_DENIED =>
        {
            let message = String::from_utf8_lossy(peer.shared().lock().conn.close_message()).into_owned();
            Err(Error::Refused { status, message })
        }
        Err(e) => Err(Error::Handshake(e)),
    }
}

/// Graceful shutdown of one connection: GOAWAY, then waits up to `grace` for the exchanges in
/// flight, then closes what remains (those fail with UNAVAILABLE). A suspended session has
/// nothing to drain: it ends at once.
pub async fn shutdown(peer: &Peer, grace: Duration) {
    peer.shutdown(grace).await
}

/// A handle to one connection. Cheap to clone.
///
/// Both sides are equal once connected: either may call, notify and open streams toward the
/// other. The connection lives while any handle to it exists — `Peer`s (including those held
/// by running handlers' [`Ctx`](crate::Ctx)), the runtime's `Client`s, open stream handles,
/// [`PendingCall`]s — or while a server tracks it. Dropping the last handle of a client
/// connection shuts it down gracefully (GOAWAY, exchanges in flight finish, CLOSE(OK));
/// [`close`](Self::close) ends it at once.
#[derive(Clone)]
pub struct Peer {
    h: Handle,
}

impl core::fmt::Debug for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Peer").field("conn", &self.shared().id).field("name", &self.name()).finish()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Call,
    Notify,
}

impl Peer {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Peer { h: Handle::new(shared) }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        self.h.shared()
    }

    /// The peer's name from its HELLO (a server tracks peers by it).
    pub fn name(&self) -> &str {
        self.shared().name()
    }

    /// The identity the server's authenticator gave this peer (SPEC.md §5.6); `None` without
    /// an authenticator and on the client side.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.shared().identity()
    }

    /// The exchanges in flight on this connection, by id: calls and reliable notifications
    /// this end sent and still waits for, and the calls, notifications and streams its
    /// handlers are serving, each with its method, age and time left before its deadline.
    /// (Streams this end opened are not listed.)
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.shared().in_flight()
    }

    /// The peer process's credentials (uid, gid, pid) on Unix sockets; `None` on TCP and UDP.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.shared().creds
    }

    /// The peer's IP address and port (TCP and UDP; `None` on Unix sockets). It changes when a
    /// session is resumed over a new transport.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.shared().lock().remote
    }

    /// The connection's counters.
    pub fn stats(&self) -> Stats {
        self.shared().lock().conn.stats()
    }

    /// What the peer announced in its HELLO (SPEC.md §5.4): its limits, timers and optional
    /// features, with defaults for the parameters it left out; `None` before its HELLO has
    /// arrived (never, once connected).
    pub fn peer_limits(&self) -> Option<PeerLimits> {
        self.shared().lock().conn.peer().map(|p| p.limits)
    }

    /// Where the link is now.
    pub fn state(&self) -> LinkState {
        self.shared().lock().link
    }

    /// A watch of the link state: [`StateWatch::changed`] reports each change (connecting,
    /// connected, suspended, every failed reconnection attempt, resumed, closed with reason).
    pub fn watch_state(&self) -> StateWatch {
        let seen = self.shared().lock().link_version;
        StateWatch::new(self.shared().clone(), seen)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.shared().lock().closed
    }

    /// Whether the two handles refer to the same connection.
    pub fn same_connection(&self, other: &Peer) -> bool {
        Arc::ptr_eq(self.shared(), other.shared())
    }

    /// Waits until the connection has ended and returns why.
    pub async fn closed(&self) -> ConnectionError {
        poll_fn(|cx| {
            let mut inner = self.shared().lock();
            match inner.closed {
                Some(e) => Poll::Ready(e),
                None => {
                    wait_on(&mut inner.state_waiters, cx);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Waits for the handshake; fails if the connection closes first.
    async fn connected(&self) -> Result<(), ConnectionError> {
        poll_fn(|cx| {
            let mut inner = self.shared().lock();
            if inner.connected {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = inner.closed {
                return Poll::Ready(Err(e));
            }
            wait_on(&mut inner.state_waiters, cx);
            Poll::Pending
        })
        .await
    }

    /// Closes the connection at once with CLOSE(OK): exchanges in flight fail with UNAVAILABLE
    /// on both sides.
    pub fn close(&self) {
        self.close_with(Status::OK, "closed by the application");
    }

    /// Closes the connection at once with CLOSE(`status`, `message`).
    pub fn close_with(&self, status: Status, message: &str) {
        let mut inner = self.shared().lock();
        inner.conn.close(now(), status, message.as_bytes());
        inner.wake_driver();
    }

    /// Starts a graceful shutdown (GOAWAY) without waiting: the peer may open nothing new,
    /// exchanges in flight finish, then the connection closes.
    pub fn go_away(&self) {
        let mut inner = self.shared().lock();
        if let Err(e) = inner.conn.go_away(now(), Status::OK, b"shutting down") {
            tracing::debug!(conn = self.shared().id, error = %e, "go_away not sent");
        }
        inner.wake_driver();
    }

    /// GOAWAY, then waits up to `grace` for the exchanges in flight, then closes what remains
    /// (those fail with UNAVAILABLE). A suspended session has nothing to drain: it ends at once.
    async fn shutdown(&self, grace: Duration) {
        if matches!(self.state(), LinkState::Suspended { .. }) {
            self.close_with(Status::UNAVAILABLE, "shutting down");
        }
        self.go_away();
        let sleep = (self.shared().sleep)(std::time::Instant::now() + grace);
        let finished = async {
            self.closed().await;
            true
        }
        .or(async {
            sleep.await;
            false
        })
        .await;
        if !finished {
            tracing::info!(conn = self.shared().id, "grace period over: closing");
            self.close_with(Status::UNAVAILABLE, "shutdown grace period over");
        }
    }

    /// Calls a unary method and waits for its response. The deadline travels with the request;
    /// when it passes, the call fails with DEADLINE_EXCEEDED and the remote handler is
    /// cancelled. Dropping the returned future cancels the call. The method's schema key goes
    /// with the request (SPEC.md §7.10); a failure names the method and this peer, carries the
    /// handler's message and details, and its application error `E` if it failed with one.
    pub async fn call<Req, Resp, E>(
        &self,
        method: &Unary<Req, Resp, E>,
        req: &Req,
        deadline: impl Into<Deadline>,
    ) -> Result<Resp, CallError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        self.start_call(method, req, deadline).await?.await
    }

    /// Sends a call and returns once it is sent (after waiting for a slot if the peer's limit
    /// is reached); await the [`PendingCall`] for the response, or cancel it.
    pub async fn start_call<Req, Resp, E>(
        &self,
        method: &Unary<Req, Resp, E>,
        req: &Req,
        deadline: impl Into<Deadline>,
    ) -> Result<PendingCall<Resp, E>, CallError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: DeserializeOwned,
    {
        let label = method.label();
        let payload = encode_vec(req).map_err(|e| self.error(label, ErrorKind::Encode(e)))?;
        let id = self.open(Kind::Call, method.id(), method.key(), label, &payload, deadline.into()).await?;
        Ok(PendingCall {
            h: self.h.clone(),
            id,
            label,
            done: false,
            decode: |b| typed::decode(&b),
            decode_app: |b| typed::decode(b).ok(),
        })
    }

    /// [`call`](Self::call) on raw bytes.
    pub async fn call_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<Vec<u8>, CallError> {
        self.start_call_raw(method, payload, deadline).await?.await
    }

    /// [`call_raw`](Self::call_raw) with the response written into `out` (replacing its
    /// contents; emptied on an error). The buffer `out` held goes back to the connection to
    /// receive a later response, so reusing `out` from call to call makes steady-state calls
    /// allocation-free (with an inline handler at the other end, on both sides).
    pub async fn call_raw_into(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
        out: &mut Vec<u8>,
    ) -> Result<(), CallError> {
        let label = MethodLabel::id(method);
        let id = self.open(Kind::Call, method, None, label, payload, deadline.into()).await?;
        // `start_call_raw(..).wait_into(out)` without the `PendingCall`'s own handle.
        let mut call = Borrowed { h: &self.h, id, done: false };
        let r = poll_fn(|cx| {
            poll_call(call.h, call.id, &mut call.done, cx, |inner, r| deliver_into(inner, r, out))
        })
        .await;
        r.map_err(|(status, body)| {
            out.clear();
            failure(&self.h, label, |_| None, status, &body)
        })
    }

    /// [`call_raw`](Self::call_raw) carrying a schema key (SPEC.md §7.10): for a tool that
    /// learned the method's key and schema from introspection (SPEC.md Appendix B) and encodes
    /// the request itself ([`dynamic`](crate::dynamic)).
    pub async fn call_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<Vec<u8>, CallError> {
        let label = MethodLabel::id(method);
        let id = self.open(Kind::Call, method, Some(key), label, payload, deadline.into()).await?;
        let pending =
            PendingCall { h: self.h.clone(), id, label, done: false, decode: Ok, decode_app: |_| None };
        pending.await
    }

    /// [`start_call`](Self::start_call) on raw bytes.
    pub async fn start_call_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<PendingCall<Vec<u8>>, CallError> {
        let label = MethodLabel::id(method);
        let id = self.open(Kind::Call, method, None, label, payload, deadline.into()).await?;
        Ok(PendingCall { h: self.h.clone(), id, label, done: false, decode: Ok, decode_app: |_| None })
    }

    /// Sends a reliable notification and waits for the peer's acknowledgement: `Ok(())` when its
    /// handler accepted it, otherwise the status it (or the protocol) answered.
    pub async fn notify<T>(
        &self,
        method: &Notification<T>,
        value: &T,
        deadline: impl Into<Deadline>,
    ) -> Result<(), CallError>
    where
        T: Serialize,
    {
        let label = method.label();
        let payload = encode_vec(value).map_err(|e| self.error(label, ErrorKind::Encode(e)))?;
        self.notify_keyed(method.id(), method.key(), label, &payload, deadline.into()).await
    }

    /// [`notify`](Self::notify) on raw bytes.
    pub async fn notify_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(), CallError> {
        self.notify_keyed(method, None, MethodLabel::id(method), payload, deadline.into()).await
    }

    /// [`notify_raw`](Self::notify_raw) carrying a schema key (SPEC.md §7.10), as
    /// [`call_raw_keyed`](Self::call_raw_keyed).
    pub async fn notify_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(), CallError> {
        self.notify_keyed(method, Some(key), MethodLabel::id(method), payload, deadline.into()).await
    }

    async fn notify_keyed(
        &self,
        method: MethodId,
        key: Option<SchemaKey>,
        label: MethodLabel,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<(), CallError> {
        let id = self.open(Kind::Notify, method, key, label, payload, deadline).await?;
        let pending: PendingCall<()> = PendingCall {
            h: self.h.clone(),
            id,
            label,
            done: false,
            decode: |_| Ok(()),
            decode_app: |_| None,
        };
        pending.await
    }

    /// Sends an unreliable notification (SIGNAL): queued once (waiting for room in the transmit
    /// queue), never acknowledged, never retransmitted. It must fit in one frame.
    pub async fn signal<T>(&self, method: &Notification<T>, value: &T) -> Result<(), CallError>
    where
        T: Serialize,
    {
        let label = method.label();
        let payload = encode_vec(value).map_err(|e| self.error(label, ErrorKind::Encode(e)))?;
        self.signal_keyed(method.id(), method.key(), label, &payload).await
    }

    /// [`signal`](Self::signal) on raw bytes.
    pub async fn signal_raw(&self, method: MethodId, payload: &[u8]) -> Result<(), CallError> {
        self.signal_keyed(method, None, MethodLabel::id(method), payload).await
    }

    /// [`signal_raw`](Self::signal_raw) carrying a schema key (a SIGNAL_KEYED frame, SPEC.md
    /// §4.21), as [`call_raw_keyed`](Self::call_raw_keyed).
    pub async fn signal_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        payload: &[u8],
    ) -> Result<(), CallError> {
        self.signal_keyed(method, Some(key), MethodLabel::id(method), payload).await
    }

    async fn signal_keyed(
        &self,
        method: MethodId,
        key: Option<SchemaKey>,
        label: MethodLabel,
        payload: &[u8],
    ) -> Result<(), CallError> {
        poll_fn(|cx| {
            let mut inner = self.shared().lock();
            match inner.conn.signal_keyed(method, key, payload) {
                Ok(()) => {
                    inner.wake_driver();
                    Poll::Ready(Ok(()))
                }
                Err(ApiError::TxFull) => {
                    wait_on(&mut inner.capacity_waiters, cx);
                    inner.wake_driver();
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(CallError::api(e).with_context(label, self.name()))),
            }
        })
        .await
    }

    /// Opens a stream with its initial value. Returns the sender of `Up` items (dropping it or
    /// calling [`StreamSender::finish`] ends this direction) and the receiver of `Down` items,
    /// which ends with the responder's status. Dropping both resets the stream. The deadline
    /// bounds the whole stream.
    #[allow(clippy::type_complexity)]
    pub async fn open_stream<Init, Up, Down>(
        &self,
        method: &Streaming<Init, Up, Down>,
        init: &Init,
        deadline: impl Into<Deadline>,
    ) -> Result<(StreamSender<Up>, StreamReceiver<Down>), CallError>
    where
        Init: Serialize,
        Up: Serialize,
        Down: DeserializeOwned,
    {
        let label = method.label();
        let payload = encode_vec(init).map_err(|e| self.error(label, ErrorKind::Encode(e)))?;
        let open = self.open_stream_id(method.id(), method.key(), label, &payload, false, deadline.into());
        let id = open.await?;
        let (tx, rx) =
            (RawSender::new(self.h.clone(), id, label), RawReceiver::new(self.h.clone(), id, label));
        Ok((StreamSender::new(tx), StreamReceiver::new(rx)))
    }

    /// Opens a stream on which this side sends nothing but `init` (server streaming): the
    /// stream opens with this direction already finished. Returns the receiver of `Down` items.
    pub async fn subscribe<Init, Up, Down>(
        &self,
        method: &Streaming<Init, Up, Down>,
        init: &Init,
        deadline: impl Into<Deadline>,
    ) -> Result<StreamReceiver<Down>, CallError>
    where
        Init: Serialize,
        Down: DeserializeOwned,
    {
        let label = method.label();
        let payload = encode_vec(init).map_err(|e| self.error(label, ErrorKind::Encode(e)))?;
        let id =
            self.open_stream_id(method.id(), method.key(), label, &payload, true, deadline.into()).await?;
        Ok(StreamReceiver::new(RawReceiver::new(self.h.clone(), id, label)))
    }

    /// [`open_stream`](Self::open_stream) on raw bytes.
    pub async fn open_stream_raw(
        &self,
        method: MethodId,
        init: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(RawSender, RawReceiver), CallError> {
        let label = MethodLabel::id(method);
        let id = self.open_stream_id(method, None, label, init, false, deadline.into()).await?;
        Ok((RawSender::new(self.h.clone(), id, label), RawReceiver::new(self.h.clone(), id, label)))
    }

    /// [`open_stream_raw`](Self::open_stream_raw) carrying a schema key (SPEC.md §7.10), as
    /// [`call_raw_keyed`](Self::call_raw_keyed).
    pub async fn open_stream_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        init: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(RawSender, RawReceiver), CallError> {
        let label = MethodLabel::id(method);
        let id = self.open_stream_id(method, Some(key), label, init, false, deadline.into()).await?;
        Ok((RawSender::new(self.h.clone(), id, label), RawReceiver::new(self.h.clone(), id, label)))
    }

    /// An error about `method` on this connection.
    fn error<E>(&self, method: MethodLabel, kind: ErrorKind) -> CallError<E> {
        CallError::new(kind).with_context(method, self.name())
    }

    async fn open_stream_id<E>(
        &self,
        method: MethodId,
        key: Option<SchemaKey>,
        label: MethodLabel,
        init: &[u8],
        half_close: bool,
        deadline: Deadline,
    ) -> Result<u64, CallError<E>> {
        let deadline = deadline.resolve();
        let kind = RequestKind::Stream { half_closed: half_close };
        let opened = self.when_room(deadline, |inner| {
            let id = inner.conn.open_keyed(now(), kind, method, key, init, deadline)?;
            let mut entry = StreamEntry::new(false);
            if half_close {
                entry.sent_fin = true;
                entry.tx_alive = false;
            }
            inner.streams.insert(id, entry);
            Ok(id)
        });
        opened.await.map_err(|e| e.with_context(label, self.name()))
    }

    async fn open<E>(
        &self,
        kind: Kind,
        method: MethodId,
        key: Option<SchemaKey>,
        label: MethodLabel,
        payload: &[u8],
        deadline: Deadline,
    ) -> Result<u64, CallError<E>> {
        let deadline = deadline.resolve();
        let (kind, observed) = match kind {
            Kind::Call => (RequestKind::Call, ExchangeKind::Call),
            Kind::Notify => (RequestKind::Notify, ExchangeKind::Notify),
        };
        let open = |inner: &mut Inner| {
            // One reading of the clock for the core and the observer's duration.
            let at = now();
            let id = inner.conn.open_keyed(at, kind, method, key, payload, deadline)?;
            inner.calls.insert(id, CallSlot::new(Opened { method: label, kind: observed, at, deadline }));
            Ok(id)
        };
        // The usual case, room at once, without making the waiting future.
        let r = match self.try_room(open) {
            Ok(r) => r,
            Err(open) => self.when_room(deadline, open).await,
        };
        r.map_err(|e| e.with_context(label, self.name()))
    }

    /// One attempt of [`when_room`](Self::when_room): `Err(open)` back when there is no room
    /// yet.
    fn try_room<E, O: FnMut(&mut Inner) -> Result<u64, ApiError>>(
        &self,
        mut open: O,
    ) -> Result<Result<u64, CallError<E>>, O> {
        let mut inner = self.shared().lock();
        match attempt(&mut inner, &mut open) {
            Some(r) => Ok(r),
            None => {
                drop(inner);
                Err(open)
            }
        }
    }

    /// Runs `open` once the connection has room for it (a slot under the peer's limit, space
    /// in the transmit queue), at the latest until `deadline`. A peer that allows no exchange
    /// of the kind at all (limit 0) is refused at once.
    async fn when_room<E>(
        &self,
        deadline: Option<tandem_core::Instant>,
        mut open: impl FnMut(&mut Inner) -> Result<u64, ApiError>,
    ) -> Result<u64, CallError<E>> {
        let attempt = poll_fn(|cx| {
            let mut inner = self.shared().lock();
            match attempt(&mut inner, &mut open) {
                Some(r) => Poll::Ready(r),
                None => {
                    wait_on(&mut inner.capacity_waiters, cx);
                    Poll::Pending
                }
            }
        });
        match deadline.and_then(to_std) {
            None => attempt.await,
            Some(at) => {
                // Made only if the first attempt finds no room (no timer on the fast path).
                let sleep = self.shared().sleep;
                attempt
                    .or(async move {
                        sleep(at).await;
                        Err(CallError::from(Status::DEADLINE_EXCEEDED))
                    })
                    .await
            }
        }
    }
}

/// Runs `open` on the connection: the exchange's id (its driver woken to send it), its
/// failure, or `None` when it must wait for room (a slot under the peer's limit, space in the
/// transmit queue). A peer that allows no exchange of the kind at all (limit 0) is refused.
fn attempt<E>(
    inner: &mut Inner,
    open: &mut impl FnMut(&mut Inner) -> Result<u64, ApiError>,
) -> Option<Result<u64, CallError<E>>> {
    match open(inner) {
        Ok(id) => {
            inner.wake_driver();
            Some(Ok(id))
        }
        Err(e @ (ApiError::TooManyCalls { limit: 0 } | ApiError::TooManyStreams { limit: 0 })) => {
            Some(Err(CallError::new(ErrorKind::Refused(e))))
        }
        Err(e) if e.is_backpressure() && e != ApiError::NoCredit => None,
        Err(e) => Some(Err(CallError::api(e))),
    }
}

/// An outbound call (or reliable notification) in flight: await it for the outcome. Dropping
/// it, or [`cancel`](Self::cancel), cancels the call at the peer. Keeps the connection open.
pub struct PendingCall<R, E = NoError> {
    h: Handle,
    id: u64,
    label: MethodLabel,
    done: bool,
    decode: fn(Vec<u8>) -> Result<R, CodecError>,
    decode_app: fn(&[u8]) -> Option<E>,
}

impl<R, E> core::fmt::Debug for PendingCall<R, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingCall")
            .field("conn", &self.h.shared().id)
            .field("id", &self.id)
            .field("method", &format_args!("{}", self.label))
            .finish()
    }
}

impl<R, E> PendingCall<R, E> {
    /// The exchange's id on this connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Cancels the call: CANCEL goes to the peer, whose handler sees it.
    pub fn cancel(self) {}

    /// The error for a failed exchange (see [`failure`]).
    fn failure(&self, status: Status, body: &[u8]) -> CallError<E> {
        failure(&self.h, self.label, self.decode_app, status, body)
    }
}

impl<R, E> PendingCall<R, E> {
    /// The outcome once it is there (`Pending`: the waker is kept); the call is over then.
    fn poll_outcome(&mut self, cx: &mut Context<'_>) -> Poll<CallResult> {
        self.poll_outcome_with(cx, |_, r| r)
    }

    /// [`poll_outcome`](Self::poll_outcome), handing the outcome to `on` under the connection's
    /// lock (one lock per poll, whatever `on` does with the connection).
    fn poll_outcome_with<T>(
        &mut self,
        cx: &mut Context<'_>,
        on: impl FnOnce(&mut Inner, CallResult) -> T,
    ) -> Poll<T> {
        poll_call(&self.h, self.id, &mut self.done, cx, on)
    }
}

/// The error for a failed exchange: its status, the status body's message and details, and
/// the application error they carry (APPLICATION_ERROR).
fn failure<E>(
    h: &Handle,
    label: MethodLabel,
    decode_app: fn(&[u8]) -> Option<E>,
    status: Status,
    body: &[u8],
) -> CallError<E> {
    let e = CallError::from(status).with_context(label, h.shared().name());
    let Some(b) = StatusBody::decode(body) else {
        if !body.is_empty() {
            tracing::debug!(method = %label, "status body does not parse: ignored (SPEC.md §8.7)");
        }
        return e;
    };
    let message = (!b.message.is_empty()).then(|| String::from_utf8_lossy(b.message).into_owned());
    let app = if status == Status::APPLICATION_ERROR { decode_app(b.details) } else { None };
    e.with_body(message, b.details.to_vec()).with_app(app)
}

/// Polls call `id` on `h` for its outcome, handing it to `on` under the connection's lock
/// (`Pending`: the waker is kept); `done` once it was handed over.
fn poll_call<T>(
    h: &Handle,
    id: u64,
    done: &mut bool,
    cx: &mut Context<'_>,
    on: impl FnOnce(&mut Inner, CallResult) -> T,
) -> Poll<T> {
    // First the waiters an I/O thread is still waking (see `relay`): from here, without a
    // cross-thread wake-up each.
    relay::take_over();
    let mut inner = h.shared().lock();
    if *done {
        return Poll::Ready(on(&mut inner, Err((Status::UNAVAILABLE, Vec::new()))));
    }
    let relayed = inner.take_relay();
    let out = match inner.calls.get_mut(&id) {
        Some(slot) => match slot.result.take() {
            Some(r) => r,
            None => {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                drop(inner);
                relayed.wake();
                return Poll::Pending;
            }
        },
        None => Err((Status::UNAVAILABLE, Vec::new())),
    };
    inner.calls.remove(&id);
    let t = on(&mut inner, out);
    drop(inner);
    relayed.wake();
    *done = true;
    Poll::Ready(t)
}

/// Moves a call's response into `out` (its old buffer goes back to the connection for a later
/// response); a failure is handed back.
fn deliver_into(inner: &mut Inner, r: CallResult, out: &mut Vec<u8>) -> Result<(), (Status, Vec<u8>)> {
    let mut body = r?;
    core::mem::swap(out, &mut body);
    inner.give_spare(body);
    Ok(())
}

/// Cancels call `id` on `h` unless it is `done` (a call in flight that is dropped).
fn cancel_call(h: &Handle, id: u64, done: bool) {
    if done {
        return;
    }
    let mut inner = h.shared().lock();
    inner.calls.remove(&id);
    if inner.conn.cancel(id).is_ok() {
        tracing::debug!(conn = h.shared().id, id, "call dropped: cancelled");
        inner.wake_driver();
    }
}

/// A call in flight borrowing its connection's handle (`Peer::call_raw_into`: no handle to
/// count up and down per call); cancelled if dropped before its outcome.
struct Borrowed<'a> {
    h: &'a Handle,
    id: u64,
    done: bool,
}

impl Drop for Borrowed<'_> {
    fn drop(&mut self) {
        cancel_call(self.h, self.id, self.done);
    }
}

impl<E> PendingCall<Vec<u8>, E> {
    /// Waits for the outcome like awaiting the call, but writes the response into `out`
    /// (replacing its contents; emptied on an error). The buffer `out` held goes back to the
    /// connection for a later response (see [`Peer::call_raw_into`]).
    pub async fn wait_into(mut self, out: &mut Vec<u8>) -> Result<(), CallError<E>> {
        poll_fn(|cx| self.poll_into(cx, out)).await
    }

    /// [`wait_into`](Self::wait_into) as a poll, for a runtime that waits on many calls at
    /// once (tandem-std's `Completions`): `Pending` keeps `cx`'s waker; once it returned
    /// `Ready`, the call is over and a later poll is `UNAVAILABLE`.
    pub fn poll_into(&mut self, cx: &mut Context<'_>, out: &mut Vec<u8>) -> Poll<Result<(), CallError<E>>> {
        let r = core::task::ready!(self.poll_outcome_with(cx, |inner, r| deliver_into(inner, r, out)));
        Poll::Ready(r.map_err(|(status, body)| {
            out.clear();
            self.failure(status, &body)
        }))
    }
}

impl<R, E> Unpin for PendingCall<R, E> {}

impl<R, E> Future for PendingCall<R, E> {
    type Output = Result<R, CallError<E>>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let out = core::task::ready!(self.poll_outcome(cx));
        Poll::Ready(match out {
            Ok(b) => (self.decode)(b).map_err(|e| {
                CallError::new(ErrorKind::Decode(e)).with_context(self.label, self.h.shared().name())
            }),
            Err((status, body)) => Err(self.failure(status, &body)),
        })
    }
}

impl<R, E> Drop for PendingCall<R, E> {
    fn drop(&mut self) {
        cancel_call(&self.h, self.id, self.done);
    }
}
