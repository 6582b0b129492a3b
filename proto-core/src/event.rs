//! What the connection tells the application: [`Event`]s returned by
//! [`Connection::poll_event`](crate::Connection::poll_event).

use crate::error::ConnectionError;
use crate::status::Status;
use crate::time::Instant;

/// A method address: module (service) id and method id (SPEC.md §4.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MethodId {
    /// Module (service) id.
    pub module: u32,
    /// Method id within the module.
    pub method: u32,
}

impl MethodId {
    /// A method address.
    pub const fn new(module: u32, method: u32) -> Self {
        MethodId { module, method }
    }
}

/// A method's schema key (SPEC.md §7.10): 8 bytes computed from the method's path and the
/// schemas of its types, carried by keyed opening frames ([`Frame::Keyed`](crate::frame::Frame::Keyed),
/// [`Frame::SignalKeyed`](crate::frame::Frame::SignalKeyed)) so that the responder can refuse a
/// request whose declaration differs from its own before decoding it. Displayed as 16 hex
/// digits, in wire order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaKey(pub [u8; 8]);

impl SchemaKey {
    /// Bytes of a key on the wire.
    pub const LEN: usize = 8;
}

impl core::fmt::Display for SchemaKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl core::fmt::Debug for SchemaKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SchemaKey({self})")
    }
}

/// What kind of exchange the peer opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// A unary call: answer with [`respond`](crate::Connection::respond) (status and payload).
    Call,
    /// A reliable notification: acknowledge with [`respond`](crate::Connection::respond)
    /// (status, empty payload).
    Notify,
    /// A stream: send items with [`stream_send`](crate::Connection::stream_send), end with
    /// [`stream_finish`](crate::Connection::stream_finish) or
    /// [`stream_reset`](crate::Connection::stream_reset).
    Stream {
        /// The opener sends no items beyond the initial payload (its direction is already closed).
        half_closed: bool,
    },
}

/// Something happened on the connection.
///
/// Payload slices borrow the connection's receive buffer and stay valid until the next call on
/// the connection; copy what you need to keep.
///
/// Every exchange this side opens resolves exactly once: a call or notification by
/// [`Event::Response`] or [`Event::Failed`] (or synchronously by
/// [`cancel`](crate::Connection::cancel)); a stream by the pair of its directions ending
/// ([`Event::StreamFin`] / [`Event::StreamReset`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The handshake completed; [`peer`](crate::Connection::peer) describes the peer. The
    /// application may check its name and auth blob and [`close`](crate::Connection::close)
    /// with UNAUTHENTICATED to reject it.
    Connected,
    /// The peer opened an exchange toward us.
    Request {
        /// Exchange id, for `respond` / `stream_*`.
        id: u64,
        /// Call, reliable notification or stream.
        kind: RequestKind,
        /// The addressed method.
        method: MethodId,
        /// When the peer's budget runs out, on our clock (`None`: no deadline).
        deadline: Option<Instant>,
        /// Request payload (or the stream's initial payload).
        payload: &'a [u8],
    },
    /// The peer sent an unreliable notification (SIGNAL).
    Signal {
        /// The addressed method.
        method: MethodId,
        /// Payload.
        payload: &'a [u8],
    },
    /// The peer answered one of our calls or reliable notifications.
    Response {
        /// Our exchange id.
        id: u64,
        /// The outcome.
        status: Status,
        /// Response payload (empty for notifications).
        payload: &'a [u8],
    },
    /// One of our calls or reliable notifications ended without a response: DEADLINE_EXCEEDED,
    /// or UNAVAILABLE when the connection ended or the peer's GOAWAY excluded it (safe to retry
    /// elsewhere).
    Failed {
        /// Our exchange id.
        id: u64,
        /// Why.
        status: Status,
    },
    /// A call or reliable notification the peer opened was cancelled (CANCELLED), ran out of
    /// deadline (DEADLINE_EXCEEDED), or the connection ended (UNAVAILABLE). Stop working on it;
    /// `respond` is still expected (its payload is dropped) and releases the slot.
    Cancelled {
        /// The peer's exchange id.
        id: u64,
        /// Why.
        status: Status,
    },
    /// One stream item from the peer. Call
    /// [`stream_consumed`](crate::Connection::stream_consumed) once the application has taken it,
    /// to return its flow-control credit.
    StreamData {
        /// Stream id.
        id: u64,
        /// The item.
        payload: &'a [u8],
    },
    /// The peer finished its direction of the stream; for the opener, `status` is the stream's
    /// result.
    StreamFin {
        /// Stream id.
        id: u64,
        /// The peer's final status.
        status: Status,
    },
    /// The stream ended abruptly: the peer reset it, its deadline passed, or the connection
    /// ended. Stop sending; a responder still calls `stream_reset` or `stream_finish` to release
    /// it (an opener's side is released automatically).
    StreamReset {
        /// Stream id.
        id: u64,
        /// Why.
        status: Status,
    },
    /// A stream that refused an item with [`ApiError::NoCredit`](crate::ApiError::NoCredit) has
    /// credit again.
    StreamWritable {
        /// Stream id.
        id: u64,
    },
    /// The peer will accept no new exchanges; those we opened with an id at or above `bound`
    /// have failed with UNAVAILABLE (safe to retry elsewhere). The others finish normally.
    GoAway {
        /// Our exchanges with lower ids are still processed by the peer.
        bound: u64,
        /// The peer's reason.
        status: Status,
    },
    /// Acceptor only, when it offers resumption: the dialer asks to resume the session named
    /// by `token` (SPEC.md §13.3). The handshake waits for the application's answer:
    /// [`Connection::resume_from`](crate::Connection::resume_from) on the connection that holds
    /// that session, or [`Connection::decline_resume`](crate::Connection::decline_resume) for a
    /// new session.
    ResumeRequested {
        /// The session token the dialer presented.
        token: &'a [u8],
    },
    /// Acceptor with [`Config::authenticate`](crate::Config::authenticate): the dialer's HELLO
    /// arrived and our HELLO waits for the application's decision on its credentials —
    /// [`Connection::accept_peer`](crate::Connection::accept_peer), or
    /// [`Connection::close`](crate::Connection::close) with UNAUTHENTICATED or PERMISSION_DENIED
    /// (SPEC.md §5.6). [`Connection::peer`](crate::Connection::peer) has everything the HELLO said.
    AuthRequested {
        /// The name the peer claims.
        name: &'a [u8],
        /// Its `auth` bytes.
        auth: &'a [u8],
    },
    /// The connection ended. This is the last event; all exchanges were resolved before it.
    Closed(ConnectionError),
}

/// An [`Event`] with its payload copied out of the connection, for drivers that hand events to
/// other threads or tasks (`alloc` feature).
#[cfg(feature = "alloc")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Variants and fields mirror `Event`, where they are documented.
pub enum OwnedEvent {
    Connected,
    Request { id: u64, kind: RequestKind, method: MethodId, deadline: Option<Instant>, payload: Vec<u8> },
    Signal { method: MethodId, payload: Vec<u8> },
    Response { id: u64, status: Status, payload: Vec<u8> },
    Failed { id: u64, status: Status },
    Cancelled { id: u64, status: Status },
    StreamData { id: u64, payload: Vec<u8> },
    StreamFin { id: u64, status: Status },
    StreamReset { id: u64, status: Status },
    StreamWritable { id: u64 },
    GoAway { bound: u64, status: Status },
    ResumeRequested { token: Vec<u8> },
    AuthRequested { name: Vec<u8>, auth: Vec<u8> },
    Closed(ConnectionError),
}

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

#[cfg(feature = "alloc")]
impl From<Event<'_>> for OwnedEvent {
    fn from(e: Event<'_>) -> Self {
        match e {
            Event::Connected => OwnedEvent::Connected,
            Event::Request { id, kind, method, deadline, payload } => {
                OwnedEvent::Request { id, kind, method, deadline, payload: payload.to_vec() }
            }
            Event::Signal { method, payload } => OwnedEvent::Signal { method, payload: payload.to_vec() },
            Event::Response { id, status, payload } => {
                OwnedEvent::Response { id, status, payload: payload.to_vec() }
            }
            Event::Failed { id, status } => OwnedEvent::Failed { id, status },
            Event::Cancelled { id, status } => OwnedEvent::Cancelled { id, status },
            Event::StreamData { id, payload } => OwnedEvent::StreamData { id, payload: payload.to_vec() },
            Event::StreamFin { id, status } => OwnedEvent::StreamFin { id, status },
            Event::StreamReset { id, status } => OwnedEvent::StreamReset { id, status },
            Event::StreamWritable { id } => OwnedEvent::StreamWritable { id },
            Event::GoAway { bound, status } => OwnedEvent::GoAway { bound, status },
            Event::ResumeRequested { token } => OwnedEvent::ResumeRequested { token: token.to_vec() },
            Event::AuthRequested { name, auth } => {
                OwnedEvent::AuthRequested { name: name.to_vec(), auth: auth.to_vec() }
            }
            Event::Closed(e) => OwnedEvent::Closed(e),
        }
    }
}
