//! Status codes: the closed, documented set every response, stream end, go-away and close carries.
//!
//! [`Status`] is a newtype over the wire value so that a code this build does not know survives a
//! round trip unchanged (applications treat it as [`Status::UNKNOWN`]). The table is declared
//! once, in the `status_table!` macro; SPEC.md §8 mirrors it and a test checks that they agree.

use core::fmt;

/// A status code as carried on the wire (a varint).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(pub u32);

/// Where a status may appear and what it does to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Ends one call, notification or stream; the connection carries on.
    Exchange,
    /// Ends the whole connection (carried by CLOSE, or GOAWAY's reason).
    Connection,
}

macro_rules! status_table {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $scope:ident, $text:literal; )*) => {
        impl Status {
            $( $(#[$doc])* pub const $name: Status = Status($value); )*

            /// Every status this build knows, in numeric order: `(status, NAME, scope, meaning)`.
            pub const ALL: &'static [(Status, &'static str, Scope, &'static str)] = &[
                $( (Status($value), stringify!($name), Scope::$scope, $text), )*
            ];
        }
    };
}

status_table! {
    /// Success.
    OK = 0, Exchange, "success";
    /// Accepted for later processing (DAOS dRPC `SUBMITTED`).
    ACCEPTED = 1, Exchange, "accepted for later processing";
    /// The handler ran and failed (DAOS dRPC `FAILURE`).
    FAILED = 2, Exchange, "the handler failed";
    /// No module with this ID is registered at the responder.
    UNKNOWN_MODULE = 3, Exchange, "unknown module";
    /// The module exists but has no method with this ID.
    UNKNOWN_METHOD = 4, Exchange, "unknown method";
    /// The call envelope could not be decoded (DAOS `FAILED_UNMARSHAL_CALL`).
    BAD_REQUEST = 5, Exchange, "cannot decode call";
    /// The request payload could not be decoded into the method's type (`FAILED_UNMARSHAL_PAYLOAD`).
    BAD_PAYLOAD = 6, Exchange, "cannot decode payload";
    /// The handler's reply could not be encoded (DAOS `FAILED_MARSHAL`).
    ENCODE_FAILED = 7, Exchange, "cannot encode reply";
    /// The exchange was cancelled by either side.
    CANCELLED = 8, Exchange, "cancelled";
    /// The exchange's deadline passed before it completed.
    DEADLINE_EXCEEDED = 9, Exchange, "deadline exceeded";
    /// A resource (concurrency, memory, queue) is exhausted at the responder.
    RESOURCE_EXHAUSTED = 10, Exchange, "resource exhausted";
    /// A message exceeds a size limit.
    TOO_LARGE = 11, Exchange, "message too large";
    /// The peer is not available (connection lost, going away); safe to retry elsewhere.
    UNAVAILABLE = 12, Exchange, "unavailable";
    /// The request was well-formed but its arguments are invalid.
    INVALID_ARGUMENT = 13, Exchange, "invalid argument";
    /// A named entity was not found.
    NOT_FOUND = 14, Exchange, "not found";
    /// The entity to create already exists.
    ALREADY_EXISTS = 15, Exchange, "already exists";
    /// The caller is known but not allowed to do this.
    PERMISSION_DENIED = 16, Exchange, "permission denied";
    /// The caller could not be authenticated.
    UNAUTHENTICATED = 17, Exchange, "unauthenticated";
    /// The system is not in a state that allows this operation.
    FAILED_PRECONDITION = 18, Exchange, "failed precondition";
    /// The operation was aborted (concurrency conflict, for example).
    ABORTED = 19, Exchange, "aborted";
    /// An argument is outside the valid range.
    OUT_OF_RANGE = 20, Exchange, "out of range";
    /// The responder does not implement this operation or exchange type.
    UNIMPLEMENTED = 21, Exchange, "unimplemented";
    /// An internal error at the responder.
    INTERNAL = 22, Exchange, "internal error";
    /// Unrecoverable data loss or corruption.
    DATA_LOSS = 23, Exchange, "data loss";
    /// An error that fits no other code; also how unknown codes are treated.
    UNKNOWN = 24, Exchange, "unknown error";
    /// Resumption: the reply was evicted from the reply cache before it was acknowledged; the
    /// handler is not run again, so the outcome is lost.
    REPLY_EVICTED = 25, Exchange, "reply evicted from the reply cache";
    /// The request's schema key differs from the key of the responder's declaration of the
    /// method: the two ends disagree on its types (SPEC.md §7.10). Nothing was decoded.
    SCHEMA_MISMATCH = 26, Exchange, "schema key mismatch";
    /// The handler failed with the method's typed application error, carried as the status
    /// body's details (SPEC.md §8.7).
    APPLICATION_ERROR = 27, Exchange, "application error";
    /// The peer violated the protocol (a state rule, a bad ID, a bad handshake).
    PROTOCOL_ERROR = 64, Connection, "protocol error";
    /// The peer sent bytes that do not decode as a frame.
    FRAME_ENCODING_ERROR = 65, Connection, "frame encoding error";
    /// A frame's length prefix exceeds the receiver's max_frame_size.
    FRAME_TOO_LARGE = 66, Connection, "frame too large";
    /// The peer sent more stream data than its credit allowed, or overflowed a credit window.
    FLOW_CONTROL_ERROR = 67, Connection, "flow control error";
    /// The peer exceeded a limit announced in the handshake (concurrent calls/streams, message size).
    LIMIT_EXCEEDED = 68, Connection, "announced limit exceeded";
    /// No protocol version both sides support.
    INCOMPATIBLE_VERSION = 69, Connection, "incompatible protocol version";
    /// Nothing was received for the idle timeout.
    IDLE_TIMEOUT = 70, Connection, "idle timeout";
    /// The handshake did not complete in time.
    HANDSHAKE_TIMEOUT = 71, Connection, "handshake timeout";
    /// The peer generates excessive load (ping flood, rapid reset, tiny-frame flood).
    ENHANCE_YOUR_CALM = 72, Connection, "excessive load from peer";
    /// Resumption: the session is unknown or expired.
    SESSION_EXPIRED = 73, Connection, "session unknown or expired";
}

impl Status {
    /// The table entry for this status, if this build knows it.
    pub fn info(self) -> Option<(&'static str, Scope, &'static str)> {
        Self::ALL
            .binary_search_by_key(&self.0, |e| e.0 .0)
            .ok()
            .map(|i| (Self::ALL[i].1, Self::ALL[i].2, Self::ALL[i].3))
    }

    /// The constant's name (`"DEADLINE_EXCEEDED"`), or `"UNKNOWN"` for a code this build does not know.
    pub fn name(self) -> &'static str {
        self.info().map_or("UNKNOWN", |i| i.0)
    }

    /// Whether this is [`Status::OK`].
    pub fn is_ok(self) -> bool {
        self == Status::OK
    }

    /// Whether this status ends the connection when carried by CLOSE. Unknown codes are
    /// treated as exchange-level.
    pub fn is_connection_fatal(self) -> bool {
        matches!(self.info(), Some((_, Scope::Connection, _)))
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.info() {
            Some((name, _, text)) => write!(f, "{name} ({}): {text}", self.0),
            None => write!(f, "unknown status {}", self.0),
        }
    }
}

/// A status body (SPEC.md §8.7): what the payload of a RESPONSE with a status other than OK
/// carries when both peers announced `error_details` — a human-readable message and opaque
/// details (for APPLICATION_ERROR, the method's application error in its declared encoding).
///
/// Layout: `message bytes(≤1024)` then `details rest`. An empty payload is the empty body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusBody<'a> {
    /// The message, UTF-8 (≤ [`StatusBody::MAX_MESSAGE`] bytes).
    pub message: &'a [u8],
    /// The details.
    pub details: &'a [u8],
}

impl<'a> StatusBody<'a> {
    /// Longest message: 1024 bytes.
    pub const MAX_MESSAGE: usize = crate::frame::MAX_REASON_LEN;

    /// Parses a status body; `None` when it is malformed (its message length is not a canonical
    /// varint, exceeds 1024 or the payload): a receiver then reports the status alone (§8.7).
    pub fn decode(payload: &'a [u8]) -> Option<Self> {
        if payload.is_empty() {
            return Some(StatusBody::default());
        }
        let (len, n) = crate::varint::decode(payload).ok()?;
        if len > Self::MAX_MESSAGE as u64 {
            return None;
        }
        let rest = &payload[n..];
        let len = len as usize;
        if rest.len() < len {
            return None;
        }
        Some(StatusBody { message: &rest[..len], details: &rest[len..] })
    }

    /// Bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        crate::varint::len(self.message.len() as u64) + self.message.len() + self.details.len()
    }

    /// Writes the body at the start of `out`; `None` if it does not fit or the message is longer
    /// than 1024 bytes.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        if self.message.len() > Self::MAX_MESSAGE || out.len() < self.encoded_len() {
            return None;
        }
        let n = crate::varint::encode(self.message.len() as u64, out);
        out[n..n + self.message.len()].copy_from_slice(self.message);
        let m = n + self.message.len();
        out[m..m + self.details.len()].copy_from_slice(self.details);
        Some(m + self.details.len())
    }

    /// The longest prefix of `message` that fits a status body and ends on a character
    /// boundary.
    pub fn fit(message: &str) -> &str {
        let mut n = message.len().min(Self::MAX_MESSAGE);
        while !message.is_char_boundary(n) {
            n -= 1;
        }
        &message[..n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies() {
        let b = StatusBody { message: b"no vehicle 7", details: &[1, 2] };
        let mut out = [0u8; 32];
        let n = b.encode(&mut out).unwrap();
        assert_eq!(&out[..n], b"\x0cno vehicle 7\x01\x02");
        assert_eq!(StatusBody::decode(&out[..n]), Some(b));
        assert_eq!(StatusBody::decode(&[]), Some(StatusBody::default()));
        assert_eq!(StatusBody::decode(&[0x05, b'a']), None, "message past the end");
        assert_eq!(StatusBody::decode(&[0x40, 0x05, b'a']), None, "non-canonical length");
        let long = [b'x'; 1025];
        assert_eq!(StatusBody { message: &long, details: &[] }.encode(&mut [0; 2000]), None);
        let mut big = std::vec![0x44, 0x01];
        big.extend_from_slice(&[b'x'; 1025]);
        assert_eq!(StatusBody::decode(&big), None, "message above 1024 bytes");
        assert_eq!(StatusBody::fit(&"é".repeat(600)).len(), 1024);
    }

    #[test]
    fn table_sorted_and_unique() {
        for w in Status::ALL.windows(2) {
            assert!(w[0].0 .0 < w[1].0 .0, "{:?} before {:?}", w[0].1, w[1].1);
        }
    }

    #[test]
    fn unknown_survives() {
        let s = Status(4000);
        assert_eq!(s.name(), "UNKNOWN");
        assert!(!s.is_connection_fatal());
        assert_eq!(Status::DEADLINE_EXCEEDED.name(), "DEADLINE_EXCEEDED");
        assert!(Status::PROTOCOL_ERROR.is_connection_fatal());
    }
}

/// SPEC.md §8 and this table are one table: a change to either must change both.
#[cfg(test)]
mod spec_agreement {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn spec_status_table_matches_the_code() {
        let spec = include_str!("../../SPEC.md");
        let start = spec.find("| value | name | scope | meaning |").expect("SPEC.md status table header");
        let rows: Vec<(u32, String, String, String)> = spec[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                (cells[0].parse().expect("numeric value"), cells[1].into(), cells[2].into(), cells[3].into())
            })
            .collect();
        let code: Vec<(u32, String, String, String)> = Status::ALL
            .iter()
            .map(|(s, name, scope, text)| {
                let scope = if *scope == Scope::Connection { "connection" } else { "exchange" };
                (s.0, (*name).into(), scope.into(), (*text).into())
            })
            .collect();
        assert_eq!(rows, code);
    }
}
