//! Errors: [`Error`] for setting up servers and connections, [`CallError`] for one exchange.

use core::fmt;
use std::io;
use std::path::PathBuf;
use tandem_core::typed::CodecError;
use tandem_core::{ApiError, ConfigError, ConnectionError, Status};

/// Starting a server or connecting failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address string does not parse.
    Address(tandem_core::addr::AddressError),
    /// A socket operation failed; `context` says which and on what address.
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// A Unix listener's socket path already exists.
    PathInUse {
        /// The path.
        path: PathBuf,
        /// Whether it is a socket (a stale one can be removed with
        /// [`ServerConfig::unlink_stale_socket`](crate::ServerConfig::unlink_stale_socket)).
        is_socket: bool,
    },
    /// The transport or feature is not implemented.
    Unsupported(&'static str),
    /// The connection configuration is invalid.
    Config(ConfigError),
    /// The connection ended before the handshake completed.
    Handshake(ConnectionError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Address(e) => e.fmt(f),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::PathInUse { path, is_socket: true } => write!(
                f,
                "socket path {} already exists: another server may be running; if it is a stale socket \
                 left by a crashed server, set ServerConfig::unlink_stale_socket to remove it first",
                path.display()
            ),
            Error::PathInUse { path, is_socket: false } => write!(
                f,
                "socket path {} already exists and is not a socket: choose another path \
                 (ServerConfig::unlink_stale_socket only removes stale sockets)",
                path.display()
            ),
            Error::Unsupported(what) => f.write_str(what),
            Error::Config(e) => e.fmt(f),
            Error::Handshake(e) => write!(f, "connection ended during the handshake: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Address(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            Error::Config(e) => Some(e),
            Error::Handshake(e) => Some(e),
            _ => None,
        }
    }
}

impl From<tandem_core::addr::AddressError> for Error {
    fn from(e: tandem_core::addr::AddressError) -> Self {
        Error::Address(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// One call, notification or stream did not succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The exchange ended with this status: the peer's handler returned it (or the peer's
    /// runtime: UNKNOWN_METHOD, BAD_PAYLOAD, …), or it ended locally: DEADLINE_EXCEEDED,
    /// CANCELLED, UNAVAILABLE (connection lost or going away; safe to retry elsewhere).
    Status(Status),
    /// The request could not be encoded with postcard.
    Encode(CodecError),
    /// The response does not decode as the method's declared type (the peers disagree on it).
    Decode(CodecError),
    /// The connection refused to start the exchange (nothing was sent).
    Refused(ApiError),
}

impl CallError {
    /// The status that best describes the error (UNAVAILABLE when the connection is closed or
    /// going away, TOO_LARGE for oversized messages, …).
    pub fn status(&self) -> Status {
        match self {
            CallError::Status(s) => *s,
            CallError::Encode(_) => Status::ENCODE_FAILED,
            CallError::Decode(_) => Status::BAD_PAYLOAD,
            CallError::Refused(e) => e.status(),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status(s) => write!(f, "call failed: {s}"),
            CallError::Encode(e) => write!(f, "cannot encode the request: {e}"),
            CallError::Decode(e) => {
                write!(f, "cannot decode the response: {e} (do both sides use the same method declaration?)")
            }
            CallError::Refused(e) => write!(f, "call not sent: {e}"),
        }
    }
}

impl std::error::Error for CallError {}
