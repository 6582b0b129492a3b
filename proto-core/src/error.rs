//! Errors, split by scope and blame (SPEC.md §12).
//!
//! * [`ConnectionError`]: the connection is over. [`ConnectionError::blame`] says whose fault:
//!   the peer sent invalid bytes, broke a rule, is incompatible, the transport or a timer ended
//!   it, or the local application closed it.
//! * [`ApiError`]: a local API call was refused; nothing was sent and the connection is intact.
//!   Some are back-pressure (retry later), the rest are misuse.
//! * Exchange-level outcomes (a call failed, a stream was reset) are not errors of the API: they
//!   arrive as events carrying a [`Status`].

use crate::frame::DecodeError;
use crate::status::Status;
use core::fmt;

/// Who caused a connection error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// The peer sent bytes that do not decode as frames.
    PeerInvalidBytes,
    /// The peer sent valid frames that break a protocol rule or an announced limit.
    PeerBrokeRule,
    /// The peer speaks no common protocol version or announced impossible limits.
    PeerIncompatible,
    /// The peer closed the connection (its CLOSE frame says why).
    PeerClosed,
    /// The transport ended or a liveness timer fired.
    Transport,
    /// The local application closed the connection.
    Local,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionError {
    /// The peer sent bytes that are not a valid frame.
    Malformed(DecodeError),
    /// The peer broke a protocol rule; `status` is what we sent in CLOSE.
    Violation {
        /// The CLOSE status (PROTOCOL_ERROR, FLOW_CONTROL_ERROR, LIMIT_EXCEEDED, ENHANCE_YOUR_CALM).
        status: Status,
        /// Which rule.
        reason: &'static str,
    },
    /// No protocol version both sides support, or the peer's HELLO announced impossible limits.
    Incompatible {
        /// What did not match.
        reason: &'static str,
    },
    /// The peer sent CLOSE with this status ([`Connection::close_message`](crate::Connection::close_message) holds its text).
    PeerClosed {
        /// The peer's status; OK for a graceful close.
        status: Status,
    },
    /// The transport reached end of file without a CLOSE frame.
    TransportClosed,
    /// Nothing arrived for the idle timeout.
    IdleTimeout,
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimeout,
    /// In-flight work did not finish within the drain timeout after GOAWAY.
    DrainTimeout,
    /// The session's transport was lost and it was not resumed within
    /// `Config::session_grace` (or the acceptor no longer knew it): its exchanges ended with
    /// UNAVAILABLE.
    SessionExpired,
    /// A suspended session was ended before its grace period because the local memory budget
    /// for session state was full and it was the oldest suspended session (SPEC.md §13.6): its
    /// exchanges ended with UNAVAILABLE; to its peer it looks expired.
    SessionEvicted,
    /// The local application called [`close`](crate::Connection::close), or a GOAWAY drain completed.
    LocallyClosed {
        /// The status we sent in CLOSE.
        status: Status,
    },
    /// Datagram mode: a *different* HELLO arrived from the peer's address (SPEC.md §14.3). This
    /// association is over (its exchanges resolved UNAVAILABLE, no CLOSE sent); the runtime
    /// creates a new acceptor association and feeds it the datagram that caused this.
    Superseded,
}

impl ConnectionError {
    /// Whose fault it was.
    pub fn blame(&self) -> Blame {
        match self {
            ConnectionError::Malformed(_) => Blame::PeerInvalidBytes,
            ConnectionError::Violation { .. } => Blame::PeerBrokeRule,
            ConnectionError::Incompatible { .. } => Blame::PeerIncompatible,
            ConnectionError::PeerClosed { .. } => Blame::PeerClosed,
            ConnectionError::TransportClosed
            | ConnectionError::IdleTimeout
            | ConnectionError::HandshakeTimeout
            | ConnectionError::SessionExpired
            | ConnectionError::DrainTimeout
            | ConnectionError::Superseded => Blame::Transport,
            ConnectionError::LocallyClosed { .. } | ConnectionError::SessionEvicted => Blame::Local,
        }
    }

    /// The status that describes this error (the one sent or received in CLOSE).
    pub fn status(&self) -> Status {
        match self {
            ConnectionError::Malformed(e) => e.status(),
            ConnectionError::Violation { status, .. } => *status,
            ConnectionError::Incompatible { .. } => Status::INCOMPATIBLE_VERSION,
            ConnectionError::PeerClosed { status } | ConnectionError::LocallyClosed { status } => *status,
            ConnectionError::TransportClosed | ConnectionError::Superseded => Status::UNAVAILABLE,
            ConnectionError::IdleTimeout => Status::IDLE_TIMEOUT,
            ConnectionError::HandshakeTimeout => Status::HANDSHAKE_TIMEOUT,
            ConnectionError::DrainTimeout => Status::DEADLINE_EXCEEDED,
            ConnectionError::SessionExpired | ConnectionError::SessionEvicted => Status::SESSION_EXPIRED,
        }
    }

    /// Whether this is a normal, graceful end (a clean CLOSE with OK from either side).
    pub fn is_graceful(&self) -> bool {
        matches!(
            self,
            ConnectionError::PeerClosed { status: Status::OK }
                | ConnectionError::LocallyClosed { status: Status::OK }
        )
    }
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Malformed(e) => write!(f, "peer sent a malformed frame: {e}"),
            ConnectionError::Violation { status, reason } => {
                write!(f, "peer broke a protocol rule ({}): {reason}", status.name())
            }
            ConnectionError::Incompatible { reason } => write!(f, "peer is incompatible: {reason}"),
            ConnectionError::PeerClosed { status } => write!(f, "peer closed the connection: {status}"),
            ConnectionError::TransportClosed => {
                f.write_str("transport closed by the peer without a CLOSE frame (peer crashed or network failed)")
            }
            ConnectionError::IdleTimeout => f.write_str(
                "nothing received within the idle timeout: the peer is dead or unreachable (raise Config::idle_timeout if it is just slow)",
            ),
            ConnectionError::HandshakeTimeout => f.write_str(
                "handshake did not complete within Config::handshake_timeout: is the peer a tandem endpoint?",
            ),
            ConnectionError::DrainTimeout => {
                f.write_str("in-flight work did not finish within Config::drain_timeout after GOAWAY")
            }
            ConnectionError::SessionExpired => f.write_str(
                "the session's transport was lost and the session was not resumed within Config::session_grace",
            ),
            ConnectionError::SessionEvicted => f.write_str(
                "the suspended session was ended early to keep session memory within its budget (it was the oldest suspended one); raise the server's session memory budget or shorten Config::session_grace",
            ),
            ConnectionError::LocallyClosed { status } => write!(f, "connection closed locally: {status}"),
            ConnectionError::Superseded => f.write_str(
                "the peer started a new association from the same address (different HELLO): feed its datagram to a new connection",
            ),
        }
    }
}

/// A local API call was refused. Nothing was queued; the connection is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// The handshake has not completed: wait for [`Event::Connected`](crate::Event::Connected).
    NotConnected,
    /// The connection is closed.
    Closed,
    /// GOAWAY was sent or received: no new exchanges on this connection; open a new one.
    GoingAway,
    /// As many calls are open as the peer allows (or as `Config::max_outbound_calls`): wait for one
    /// to finish.
    TooManyCalls {
        /// The limit in force.
        limit: u32,
    },
    /// As many streams are open as the peer allows (or as `Config::max_outbound_streams`).
    TooManyStreams {
        /// The limit in force.
        limit: u32,
    },
    /// The message is larger than the limit: the peer's max_message_size, its stream byte
    /// credit for stream items, one frame for SIGNAL, or our transmit buffer.
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The transmit buffer is full: drain it with `poll_transmit`, write to the transport, retry.
    TxFull,
    /// The stream has no credit for this item: wait for
    /// [`Event::StreamWritable`](crate::Event::StreamWritable).
    NoCredit,
    /// No open exchange has this id (it finished, or was never opened).
    UnknownId(u64),
    /// The operation does not fit the exchange's state (e.g. responding to our own call, sending
    /// after FIN, releasing more stream data than was delivered).
    WrongState(&'static str),
    /// This side has used every exchange id: open a new connection.
    IdsExhausted,
    /// A field is too long for HELLO or CLOSE (name ≤ 255, auth ≤ 1024, session ≤ 64, reason ≤ 1024 bytes).
    FieldTooLong(&'static str),
    /// Requests kept for retransmission (resumable session, datagram mode) already fill
    /// `Config::max_retained_bytes`: wait for answers, or raise the limit. Without `alloc`, a
    /// resumable session's unconfirmed stream items share that bound and the caller's retained
    /// buffer, so `stream_send` may return it too (an `Event::StreamWritable` follows when the
    /// peer confirms items or requests are answered).
    RetainFull {
        /// The limit in force (bytes).
        limit: usize,
    },
    /// Not available on this transport (streams in datagram mode, SPEC.md §14.7) or in this build
    /// (streams without the `streams` feature, §7.4.7); status UNIMPLEMENTED.
    Unsupported(&'static str),
    /// Datagram mode: opening this id would put it more than 2·(1024−1) above the lowest of our
    /// unanswered exchanges (`lowest`), outside the peer's duplicate window (SPEC.md §14.5).
    /// Wait for that exchange to be answered.
    WindowFull {
        /// The lowest unanswered id.
        lowest: u64,
    },
}

impl ApiError {
    /// The status an exchange refused with this error is reported with, so that every runtime
    /// maps refusals alike: a closed or draining connection is UNAVAILABLE (retry elsewhere),
    /// back-pressure is RESOURCE_EXHAUSTED, a size limit TOO_LARGE, misuse FAILED_PRECONDITION.
    pub fn status(&self) -> Status {
        match self {
            ApiError::NotConnected | ApiError::Closed | ApiError::GoingAway | ApiError::IdsExhausted => {
                Status::UNAVAILABLE
            }
            ApiError::TooManyCalls { .. }
            | ApiError::TooManyStreams { .. }
            | ApiError::TxFull
            | ApiError::RetainFull { .. }
            | ApiError::WindowFull { .. }
            | ApiError::NoCredit => Status::RESOURCE_EXHAUSTED,
            ApiError::Unsupported(_) => Status::UNIMPLEMENTED,
            ApiError::TooLarge { .. } | ApiError::FieldTooLong(_) => Status::TOO_LARGE,
            ApiError::UnknownId(_) | ApiError::WrongState(_) => Status::FAILED_PRECONDITION,
        }
    }

    /// Whether retrying later can succeed (back-pressure rather than misuse).
    pub fn is_backpressure(&self) -> bool {
        matches!(
            self,
            ApiError::TooManyCalls { .. }
                | ApiError::TooManyStreams { .. }
                | ApiError::TxFull
                | ApiError::RetainFull { .. }
                | ApiError::WindowFull { .. }
                | ApiError::NoCredit
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::NotConnected => f.write_str("handshake not complete: wait for Event::Connected before calling"),
            ApiError::Closed => f.write_str("connection is closed: open a new one"),
            ApiError::GoingAway => {
                f.write_str("connection is going away (GOAWAY): no new calls or streams; open a new connection")
            }
            ApiError::TooManyCalls { limit } => {
                write!(f, "{limit} calls already open (the peer's or our limit): wait for one to finish")
            }
            ApiError::TooManyStreams { limit } => {
                write!(f, "{limit} streams already open (the peer's or our limit): wait for one to finish")
            }
            ApiError::TooLarge { size, limit } => write!(
                f,
                "message of {size} bytes exceeds the limit of {limit} bytes: split it, or raise the limit on the receiving side"
            ),
            ApiError::TxFull => f.write_str("transmit buffer full: call poll_transmit, write the bytes out, then retry"),
            ApiError::NoCredit => {
                f.write_str("stream has no flow-control credit: wait for Event::StreamWritable, then retry")
            }
            ApiError::UnknownId(id) => write!(f, "no open call or stream with id {id}"),
            ApiError::WrongState(s) => write!(f, "not allowed in this state: {s}"),
            ApiError::IdsExhausted => f.write_str("all exchange ids are used: open a new connection"),
            ApiError::FieldTooLong(field) => write!(f, "`{field}` is too long for the wire format"),
            ApiError::RetainFull { limit } => write!(
                f,
                "{limit} bytes of requests are already kept for retransmission: wait for answers, or raise Config::max_retained_bytes"
            ),
            ApiError::Unsupported(what) => write!(f, "not supported: {what}"),
            ApiError::WindowFull { lowest } => write!(
                f,
                "exchange {lowest} is still unanswered and the next id would fall outside the peer's duplicate window: wait for it"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConnectionError {}
#[cfg(feature = "std")]
impl std::error::Error for ApiError {}
#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}
#[cfg(feature = "std")]
impl std::error::Error for crate::config::ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_statuses_and_say_what_to_do() {
        let cases = [
            (ApiError::NotConnected, Status::UNAVAILABLE, "wait for Event::Connected"),
            (ApiError::Closed, Status::UNAVAILABLE, "open a new one"),
            (ApiError::GoingAway, Status::UNAVAILABLE, "open a new connection"),
            (ApiError::IdsExhausted, Status::UNAVAILABLE, "open a new connection"),
            (ApiError::TooManyCalls { limit: 3 }, Status::RESOURCE_EXHAUSTED, "wait for one to finish"),
            (ApiError::TooManyStreams { limit: 3 }, Status::RESOURCE_EXHAUSTED, "wait for one to finish"),
            (ApiError::TxFull, Status::RESOURCE_EXHAUSTED, "call poll_transmit"),
            (ApiError::RetainFull { limit: 5 }, Status::RESOURCE_EXHAUSTED, "max_retained_bytes"),
            (ApiError::NoCredit, Status::RESOURCE_EXHAUSTED, "StreamWritable"),
            (ApiError::TooLarge { size: 9, limit: 8 }, Status::TOO_LARGE, "raise the limit"),
            (ApiError::FieldTooLong("name"), Status::TOO_LARGE, "`name`"),
            (ApiError::UnknownId(7), Status::FAILED_PRECONDITION, "id 7"),
            (ApiError::WrongState("x"), Status::FAILED_PRECONDITION, "not allowed"),
        ];
        for (e, status, hint) in cases {
            assert_eq!(e.status(), status, "{e:?}");
            assert!(e.to_string().contains(hint), "{e}: should mention {hint:?}");
        }
        assert!(ApiError::TxFull.is_backpressure() && !ApiError::Closed.is_backpressure());
    }

    #[test]
    fn connection_errors_have_blame_and_status() {
        let e = ConnectionError::Violation { status: Status::LIMIT_EXCEEDED, reason: "too many" };
        assert_eq!((e.blame(), e.status()), (Blame::PeerBrokeRule, Status::LIMIT_EXCEEDED));
        assert_eq!(ConnectionError::Malformed(DecodeError::Truncated).blame(), Blame::PeerInvalidBytes);
        assert_eq!(ConnectionError::Incompatible { reason: "v" }.status(), Status::INCOMPATIBLE_VERSION);
        assert_eq!(ConnectionError::IdleTimeout.blame(), Blame::Transport);
        assert!(ConnectionError::PeerClosed { status: Status::OK }.is_graceful());
        assert!(ConnectionError::IdleTimeout.to_string().contains("idle_timeout"));
    }
}
