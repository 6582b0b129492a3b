//! The blocking twins of `tandem-runtime`'s async-first API types: [`Peer`], [`PendingCall`],
//! [`StateWatch`] and the stream handles. Each wraps the shared type; its waiting methods
//! `block_on` the shared future (same names, same semantics, see `RUNTIMES.md`), the others
//! delegate. (Layer 2: imports `block`.)

use core::time::Duration;
use std::net::SocketAddr;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::tandem_core::typed::{NoError, Notification, Streaming, Unary};
use tandem_runtime::tandem_core::{ConnectionError, MethodId, PeerLimits, SchemaKey, Stats, Status};
use tandem_runtime::{peer, CallError, Deadline, InFlight, LinkState, PeerCredentials, PeerIdentity};

use crate::block::block_on;

/// A handle to one connection. Cheap to clone.
///
/// Both sides are equal once connected: either may call, notify and open streams toward the
/// other. The connection lives while any handle to it exists — `Peer`s (including those held
/// by running handlers' [`Ctx`](crate::Ctx)), [`Client`](crate::Client)s, open stream handles,
/// [`PendingCall`]s — or while a server tracks it. Dropping the last handle of a client
/// connection shuts it down gracefully (GOAWAY, exchanges in flight finish, CLOSE(OK));
/// [`close`](Self::close) ends it at once. Operations that wait block the calling thread; in
/// a handler, the handler is parked meanwhile (its pool worker serves other requests).
#[derive(Clone, Debug)]
pub struct Peer(pub(crate) tandem_runtime::Peer);

impl Peer {
    /// The peer's name from its HELLO (a server tracks peers by it).
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The identity the server's authenticator gave this peer; `None` without an authenticator
    /// and on the client side.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.0.identity()
    }

    /// The exchanges in flight on this connection, by id: calls and reliable notifications
    /// this end sent and still waits for, and the calls, notifications and streams its
    /// handlers are serving, each with its method, age and time left before its deadline.
    /// (Streams this end opened are not listed.)
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.0.in_flight()
    }

    /// The peer process's credentials (uid, gid, pid) on Unix sockets; `None` on TCP and UDP.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.0.credentials()
    }

    /// The peer's IP address and port (TCP and UDP); it changes when a session is resumed over
    /// a new transport.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.remote_addr()
    }

    /// The connection's counters.
    pub fn stats(&self) -> Stats {
        self.0.stats()
    }

    /// What the peer announced in its HELLO (SPEC.md §5.4): its limits, timers and optional
    /// features, with defaults for the parameters it left out; `None` before its HELLO has
    /// arrived (never, once connected).
    pub fn peer_limits(&self) -> Option<PeerLimits> {
        self.0.peer_limits()
    }

    /// Where the link is now.
    pub fn state(&self) -> LinkState {
        self.0.state()
    }

    /// A watch of the link state (connecting, connected, suspended, every failed reconnection
    /// attempt, resumed, closed with reason).
    pub fn watch_state(&self) -> StateWatch {
        StateWatch(self.0.watch_state())
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.0.close_reason()
    }

    /// Blocks until the connection has ended and returns why.
    pub fn closed(&self) -> ConnectionError {
        block_on(self.0.closed())
    }

    /// Whether the two handles refer to the same connection.
    pub fn same_connection(&self, other: &Peer) -> bool {
        self.0.same_connection(&other.0)
    }

    /// Starts a graceful shutdown (GOAWAY) without waiting: the peer may open nothing new,
    /// exchanges in flight finish, then the connection closes.
    pub fn go_away(&self) {
        self.0.go_away()
    }

    /// Closes the connection at once with CLOSE(OK): exchanges in flight fail with UNAVAILABLE.
    pub fn close(&self) {
        self.0.close()
    }

    /// Closes the connection at once with CLOSE(`status`, `message`).
    pub fn close_with(&self, status: Status, message: &str) {
        self.0.close_with(status, message)
    }

    /// Calls a unary method and waits for its response. The deadline travels with the request;
    /// when it passes, the call fails with DEADLINE_EXCEEDED and the remote handler is
    /// cancelled. The method's schema key goes with the request (SPEC.md §7.10); a failure
    /// names the method and this peer, carries the handler's message and details, and its
    /// application error `E` if it failed with one.
    pub fn call<Req, Resp, E>(
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
        block_on(self.0.call(method, req, deadline))
    }

    /// Sends a call and returns once it is sent (after waiting for a slot if the peer's limit
    /// is reached); [`wait`](PendingCall::wait) for the response, or cancel it.
    pub fn start_call<Req, Resp, E>(
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
        block_on(self.0.start_call(method, req, deadline)).map(PendingCall)
    }

    /// [`call`](Self::call) on raw bytes.
    pub fn call_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<Vec<u8>, CallError> {
        block_on(self.0.call_raw(method, payload, deadline))
    }

    /// [`call_raw`](Self::call_raw) with the response written into `out` (its buffer goes
    /// back to the connection for a later response: reusing `out` makes steady-state calls
    /// allocation-free).
    pub fn call_raw_into(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
        out: &mut Vec<u8>,
    ) -> Result<(), CallError> {
        block_on(self.0.call_raw_into(method, payload, deadline, out))
    }

    /// [`call_raw`](Self::call_raw) carrying a schema key (SPEC.md §7.10): for a tool that
    /// learned the method's key and schema from introspection (SPEC.md Appendix B) and encodes
    /// the request itself ([`dynamic`](crate::dynamic)).
    pub fn call_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<Vec<u8>, CallError> {
        block_on(self.0.call_raw_keyed(method, key, payload, deadline))
    }

    /// [`start_call`](Self::start_call) on raw bytes.
    pub fn start_call_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<PendingCall<Vec<u8>>, CallError> {
        block_on(self.0.start_call_raw(method, payload, deadline)).map(PendingCall)
    }

    /// Sends a reliable notification and waits for the peer's acknowledgement: `Ok(())` when
    /// its handler accepted it, otherwise the status it (or the protocol) answered.
    pub fn notify<T>(
        &self,
        method: &Notification<T>,
        value: &T,
        deadline: impl Into<Deadline>,
    ) -> Result<(), CallError>
    where
        T: Serialize,
    {
        block_on(self.0.notify(method, value, deadline))
    }

    /// [`notify`](Self::notify) on raw bytes.
    pub fn notify_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(), CallError> {
        block_on(self.0.notify_raw(method, payload, deadline))
    }

    /// [`notify_raw`](Self::notify_raw) carrying a schema key (SPEC.md §7.10), as
    /// [`call_raw_keyed`](Self::call_raw_keyed).
    pub fn notify_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(), CallError> {
        block_on(self.0.notify_raw_keyed(method, key, payload, deadline))
    }

    /// Sends an unreliable notification (SIGNAL): queued once (waiting for room in the
    /// transmit queue), never acknowledged, never retransmitted.
    pub fn signal<T>(&self, method: &Notification<T>, value: &T) -> Result<(), CallError>
    where
        T: Serialize,
    {
        block_on(self.0.signal(method, value))
    }

    /// [`signal`](Self::signal) on raw bytes.
    pub fn signal_raw(&self, method: MethodId, payload: &[u8]) -> Result<(), CallError> {
        block_on(self.0.signal_raw(method, payload))
    }

    /// [`signal_raw`](Self::signal_raw) carrying a schema key (a SIGNAL_KEYED frame, SPEC.md
    /// §4.21), as [`call_raw_keyed`](Self::call_raw_keyed).
    pub fn signal_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        payload: &[u8],
    ) -> Result<(), CallError> {
        block_on(self.0.signal_raw_keyed(method, key, payload))
    }

    /// Opens a stream with its initial value. Returns the sender of `Up` items (dropping it or
    /// calling [`finish`](StreamSender::finish) ends this direction) and the receiver of
    /// `Down` items, which ends with the responder's status. Dropping both resets the stream.
    /// The deadline bounds the whole stream.
    #[allow(clippy::type_complexity)]
    pub fn open_stream<Init, Up, Down>(
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
        block_on(self.0.open_stream(method, init, deadline))
            .map(|(tx, rx)| (StreamSender(tx), StreamReceiver(rx)))
    }

    /// [`open_stream`](Self::open_stream) on raw bytes.
    pub fn open_stream_raw(
        &self,
        method: MethodId,
        init: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(RawSender, RawReceiver), CallError> {
        block_on(self.0.open_stream_raw(method, init, deadline))
            .map(|(tx, rx)| (RawSender(tx), RawReceiver(rx)))
    }

    /// [`open_stream_raw`](Self::open_stream_raw) carrying a schema key (SPEC.md §7.10), as
    /// [`call_raw_keyed`](Self::call_raw_keyed).
    pub fn open_stream_raw_keyed(
        &self,
        method: MethodId,
        key: SchemaKey,
        init: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Result<(RawSender, RawReceiver), CallError> {
        block_on(self.0.open_stream_raw_keyed(method, key, init, deadline))
            .map(|(tx, rx)| (RawSender(tx), RawReceiver(rx)))
    }

    /// Opens a stream on which this side sends nothing but `init` (server streaming); returns
    /// the receiver of `Down` items.
    pub fn subscribe<Init, Up, Down>(
        &self,
        method: &Streaming<Init, Up, Down>,
        init: &Init,
        deadline: impl Into<Deadline>,
    ) -> Result<StreamReceiver<Down>, CallError>
    where
        Init: Serialize,
        Down: DeserializeOwned,
    {
        block_on(self.0.subscribe(method, init, deadline)).map(StreamReceiver)
    }

    /// Graceful shutdown of this connection (GOAWAY, up to `grace` for the exchanges in
    /// flight, then close).
    pub(crate) fn shutdown(&self, grace: Duration) {
        block_on(peer::shutdown(&self.0, grace))
    }
}

/// A call in flight: [`wait`](Self::wait) for its outcome, or [`cancel`](Self::cancel) it;
/// dropping it cancels it too (the peer's handler sees the cancellation). Keeps the connection
/// open.
#[derive(Debug)]
pub struct PendingCall<R, E = NoError>(pub(crate) tandem_runtime::PendingCall<R, E>);

impl<R, E> PendingCall<R, E> {
    /// The exchange's id on this connection.
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Blocks until the outcome: the decoded response, or why the call failed.
    pub fn wait(self) -> Result<R, CallError<E>> {
        block_on(self.0)
    }

    /// Cancels the call: CANCEL goes to the peer, whose handler sees it.
    pub fn cancel(self) {
        self.0.cancel()
    }
}

impl<E> PendingCall<Vec<u8>, E> {
    /// [`wait`](Self::wait), writing the response into `out` (see [`Peer::call_raw_into`]).
    pub fn wait_into(self, out: &mut Vec<u8>) -> Result<(), CallError<E>> {
        block_on(self.0.wait_into(out))
    }
}

/// The link state of a connection as it changes ([`Peer::watch_state`]); also an
/// `Iterator` of the changes, ending after `Closed`. A watch, not a log: a reader that falls
/// behind sees the latest state. It does not keep the connection open.
#[derive(Debug)]
pub struct StateWatch(tandem_runtime::StateWatch);

impl StateWatch {
    /// The state now.
    pub fn current(&self) -> LinkState {
        self.0.current()
    }

    /// Blocks until the next change and returns the new state; `None` once `Closed` was
    /// returned.
    pub fn changed(&mut self) -> Option<LinkState> {
        block_on(self.0.changed())
    }
}

impl Iterator for StateWatch {
    type Item = LinkState;
    fn next(&mut self) -> Option<LinkState> {
        self.changed()
    }
}

/// Sends raw items on one stream (see [`StreamSender`]).
#[derive(Debug)]
pub struct RawSender(pub(crate) tandem_runtime::RawSender);

impl RawSender {
    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Sends one item, blocking while the peer has granted no credit for it. Fails with the
    /// stream's status once it was reset.
    pub fn send(&mut self, item: &[u8]) -> Result<(), CallError> {
        block_on(self.0.send(item))
    }

    /// Sends one item the caller shares instead of lends, blocking as [`send`](Self::send):
    /// on byte streams (TCP and Unix stream sockets, with or without TLS) it is written from
    /// `item` itself and, in a resumable
    /// session, kept as the retained copy until the peer confirms it — no copy of the payload
    /// in tandem, and the same buffer can be sent again (to many peers, say). The connection
    /// holds a reference until then. Elsewhere it is copied, as by `send`. (tandem-smol:
    /// `RawSender::send_shared`, the same, awaited.)
    pub fn send_shared(&mut self, item: &std::sync::Arc<Vec<u8>>) -> Result<(), CallError> {
        block_on(self.0.send_shared(item))
    }

    /// Ends this direction with OK (done too when the opener's sender is dropped; a
    /// responder's direction ends with the handler's result). Idempotent; a stream already
    /// reset reports its status.
    pub fn finish(&mut self) -> Result<(), CallError> {
        self.0.finish()
    }

    /// Ends the whole stream abruptly with `status`.
    pub fn reset(&mut self, status: Status) {
        self.0.reset(status)
    }
}

/// Receives raw items from one stream; also an `Iterator` of `Result<Vec<u8>, CallError>`.
#[derive(Debug)]
pub struct RawReceiver(pub(crate) tandem_runtime::RawReceiver);

impl RawReceiver {
    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Blocks for the next item: `Ok(Some(item))`, `Ok(None)` at the end (the sender
    /// finished with OK), an error once if it ended otherwise (`Ok(None)` after that).
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        block_on(self.0.recv())
    }

    /// [`recv`](Self::recv) into `out`: `Ok(true)` with an item, `Ok(false)` at the end (its
    /// buffer goes back to the connection: reusing `out` makes a flow of items
    /// allocation-free).
    pub fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<bool, CallError> {
        block_on(self.0.recv_into(out))
    }

    /// Stops receiving: the stream is reset (CANCELLED); the peer's handler is cancelled.
    pub fn cancel(self) {
        self.0.cancel()
    }
}

impl Iterator for RawReceiver {
    type Item = Result<Vec<u8>, CallError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.recv().transpose()
    }
}

/// Sends typed `T` items on a stream, blocking for flow-control credit.
#[derive(Debug)]
pub struct StreamSender<T>(pub(crate) tandem_runtime::StreamSender<T>);

impl<T: Serialize> StreamSender<T> {
    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Sends one item (see [`RawSender::send`]).
    pub fn send(&mut self, item: &T) -> Result<(), CallError> {
        block_on(self.0.send(item))
    }

    /// Ends this direction (see [`RawSender::finish`]).
    pub fn finish(&mut self) -> Result<(), CallError> {
        self.0.finish()
    }

    /// Resets the stream (see [`RawSender::reset`]).
    pub fn reset(&mut self, status: Status) {
        self.0.reset(status)
    }
}

/// Receives typed `T` items from a stream; also an `Iterator` of `Result<T, CallError>`.
#[derive(Debug)]
pub struct StreamReceiver<T>(pub(crate) tandem_runtime::StreamReceiver<T>);

impl<T: DeserializeOwned> StreamReceiver<T> {
    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.0.id()
    }

    /// Blocks for the next item (see [`RawReceiver::recv`]).
    pub fn recv(&mut self) -> Result<Option<T>, CallError> {
        block_on(self.0.recv())
    }

    /// Stops receiving (see [`RawReceiver::cancel`]).
    pub fn cancel(self) {
        self.0.cancel()
    }
}

impl<T: DeserializeOwned> Iterator for StreamReceiver<T> {
    type Item = Result<T, CallError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.recv().transpose()
    }
}
