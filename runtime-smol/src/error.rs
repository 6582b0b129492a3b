//! Errors: [`Error`] for setting up servers and connections, [`CallError`] for one exchange.
//! (Layer 0: imports no other file of the crate.)

use core::fmt;
use std::io;
use std::path::PathBuf;

use tandem_core::addr::AddressError;
use tandem_core::typed::CodecError;
use tandem_core::{ApiError, ConfigError, ConnectionError, Status};

/// Starting a server or connecting failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The address string does not parse.
    Address(AddressError),
    /// A Unix listener's socket path already exists, so listening on it was refused.
    PathInUse {
        /// The socket path.
        path: PathBuf,
        /// Whether a server answers on it (so it is not stale and was not removed).
        live: bool,
    },
    /// A socket operation failed; `context` says which and on what address.
    Io {
        /// What was being done, e.g. `cannot connect to tcp://127.0.0.1:7400`.
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The connection configuration is invalid.
    Config(ConfigError),
    /// The connection ended before the handshake completed.
    Handshake(ConnectionError),
    /// Connecting (transport and handshake) took longer than
    /// [`ClientConfig::connect_timeout`](crate::ClientConfig::connect_timeout).
    Timeout {
        /// The address being connected to.
        addr: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Address(e) => e.fmt(f),
            Error::PathInUse { path, live: true } => write!(
                f,
                "cannot listen on {}: a server is already listening on this socket path; stop it or choose another path",
                path.display()
            ),
            Error::PathInUse { path, live: false } => write!(
                f,
                "cannot listen on {}: the path already exists (a server may be running, or a crashed one left a stale socket); \
                 delete the file, or set ServerConfig::unlink_stale_socket to remove a stale socket first",
                path.display()
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Config(e) => e.fmt(f),
            Error::Handshake(e) => write!(f, "connection closed during the handshake: {e}"),
            Error::Timeout { addr } => write!(
                f,
                "connecting to {addr} timed out (ClientConfig::connect_timeout): is a tandem server listening there?"
            ),
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

impl From<AddressError> for Error {
    fn from(e: AddressError) -> Self {
        Error::Address(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

/// A call, notification or stream did not succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// The exchange ended with this status: set by the remote handler, or by the protocol
    /// (DEADLINE_EXCEEDED, CANCELLED, UNAVAILABLE when the connection is lost, closed or going
    /// away — safe to retry elsewhere —, UNKNOWN_MODULE / UNKNOWN_METHOD / BAD_PAYLOAD from the
    /// remote dispatcher, …).
    Status(Status),
    /// The request (or stream item) could not be encoded.
    Encode(CodecError),
    /// The response (or stream item) does not decode as the method's declared type.
    Decode(CodecError),
    /// The connection refused to start the exchange and nothing was sent: too large, a stream
    /// over UDP, the peer allows no exchange of this kind at all (limit 0), wrong stream state, …
    Refused(ApiError),
}

impl CallError {
    /// The status that best describes the failure (UNAVAILABLE for a lost connection, TOO_LARGE
    /// for a refused oversized request, BAD_PAYLOAD for an undecodable response, …).
    pub fn status(&self) -> Status {
        match self {
            CallError::Status(s) => *s,
            CallError::Refused(e) => e.status(),
            CallError::Encode(e) | CallError::Decode(e) => e.status(),
        }
    }

    /// Maps a refusal of the core: a closed or draining connection is UNAVAILABLE.
    pub(crate) fn api(e: ApiError) -> Self {
        match e {
            ApiError::Closed | ApiError::GoingAway | ApiError::NotConnected => {
                CallError::Status(Status::UNAVAILABLE)
            }
            e => CallError::Refused(e),
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status(s) => write!(f, "call failed with status {s}"),
            CallError::Refused(e) => write!(f, "call not sent: {e}"),
            CallError::Encode(e) => write!(f, "the request could not be encoded: {e}"),
            CallError::Decode(e) => write!(
                f,
                "the response could not be decoded: {e} (do both sides use the same method declaration?)"
            ),
        }
    }
}

impl std::error::Error for CallError {}
