//! Errors: [`Error`] for setting up servers and connections, [`CallError`] for one exchange.
//! (Layer 0: imports no other file of the crate.)
//!
//! For runtimes: [`io_error`] builds [`Error::Io`].

use core::fmt;
use std::io;
use std::path::PathBuf;

use tandem_core::addr::AddressError;
use tandem_core::typed::{CodecError, MethodLabel, NoError};
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
    /// The server refused this client during the handshake (SPEC.md §5.6): UNAUTHENTICATED
    /// (credentials missing or wrong: see `ClientConfig::auth`) or PERMISSION_DENIED (not
    /// allowed, or the name belongs to another identity), with the server's message.
    Refused {
        /// UNAUTHENTICATED or PERMISSION_DENIED.
        status: Status,
        /// What the server said.
        message: String,
    },
    /// Connecting (transport and handshake) took longer than `ClientConfig::connect_timeout`.
    Timeout {
        /// The address being connected to.
        addr: String,
    },
    /// The TLS settings are unusable (a PEM that does not parse, a key that does not match its
    /// certificate, no trusted CA, a `tls://` address without `ServerConfig::tls`, …).
    TlsConfig {
        /// What is wrong, and what to do.
        reason: String,
    },
    /// The TLS handshake with a `tls://` server failed (an untrusted, expired or misnamed
    /// certificate, a client certificate the server requires or refused, a server that does
    /// not speak TLS).
    Tls {
        /// The address being connected to.
        addr: String,
        /// rustls' reason, with a hint.
        reason: String,
    },
    /// A plaintext (`tcp://`) client reached a server that speaks TLS.
    PeerSpeaksTls {
        /// The address being connected to.
        addr: String,
    },
    /// A plaintext (`tcp://`, `unix://`) client was answered in HTTP: the server is an HTTP
    /// server, perhaps a tandem server on `ws://` (or behind a WebSocket proxy).
    PeerSpeaksHttp {
        /// The address being connected to.
        addr: String,
    },
    /// The WebSocket upgrade with a `ws://` or `wss://` server failed (an HTTP error such as
    /// 404 for a wrong path, a server that does not select the `tandem/1` subprotocol, a peer
    /// that does not speak WebSocket), or the WebSocket failed before the handshake.
    WebSocket {
        /// The address being connected to.
        addr: String,
        /// What happened, with a hint.
        reason: String,
    },
    /// A mesh's name or membership is invalid (an empty or too long name, too many members).
    Mesh(tandem_core::endpoint::mesh::MeshError),
}

/// [`Error::Io`]: `context` says what was being done (e.g. `cannot connect to tcp://…`).
pub fn io_error(context: impl Into<String>, source: io::Error) -> Error {
    Error::Io { context: context.into(), source }
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
            Error::Refused { status, message } => write!(f, "the server refused this client ({status}): {message}"),
            Error::Timeout { addr } => write!(
                f,
                "connecting to {addr} timed out (ClientConfig::connect_timeout): is a tandem server listening there?"
            ),
            Error::TlsConfig { reason } => write!(f, "invalid TLS configuration: {reason}"),
            Error::Tls { addr, reason } => write!(f, "TLS handshake with {addr} failed: {reason}"),
            Error::WebSocket { addr, reason } => write!(f, "WebSocket connection to {addr} failed: {reason}"),
            Error::Mesh(e) => e.fmt(f),
            Error::PeerSpeaksHttp { addr } => write!(
                f,
                "the server at {addr} does not speak tandem: it answered in HTTP; if it is a tandem WebSocket endpoint (or a proxy in front of one), connect with ws://HOST:PORT/PATH"
            ),
            Error::PeerSpeaksTls { addr } => write!(
                f,
                "the server at {addr} speaks TLS (it answered with a TLS record): connect with tls:// and a ClientConfig::tls that trusts its certificate"
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

/// What went wrong in an exchange ([`CallError::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The exchange ended with this status: set by the remote handler (with a message and
    /// details when the peer sent a status body, SPEC.md §8.7; APPLICATION_ERROR with the
    /// method's application error), or by the protocol (DEADLINE_EXCEEDED, CANCELLED,
    /// UNAVAILABLE when the connection is lost, closed or going away — safe to retry
    /// elsewhere —, SCHEMA_MISMATCH when the two ends declared the method differently,
    /// UNKNOWN_MODULE / UNKNOWN_METHOD / BAD_PAYLOAD from the remote dispatcher, …).
    Status(Status),
    /// The request (or stream item) could not be encoded.
    Encode(CodecError),
    /// The response (or stream item) does not decode as the method's declared type.
    Decode(CodecError),
    /// The connection refused to start the exchange and nothing was sent: too large, a stream
    /// over UDP, the peer allows no exchange of this kind at all (limit 0), wrong stream state, …
    Refused(ApiError),
}

/// A call, notification or stream did not succeed: what went wrong ([`kind`](Self::kind),
/// [`status`](Self::status)), the remote handler's message and details if it sent any
/// (SPEC.md §8.7), the method's typed application error `E` if it failed with one
/// ([`app`](Self::app)), and which method on which peer. Its `Display` says all of it:
///
/// ```text
/// fleet.set_speed on "fleet-server": NOT_FOUND (14): not found: no vehicle 7
/// ```
///
/// Two errors are equal when their kind, application error, message and details are; the
/// method and peer they name are not compared.
#[derive(Clone)]
pub struct CallError<E = NoError> {
    kind: ErrorKind,
    app: Option<E>,
    info: Option<Box<Info>>,
}

#[derive(Clone, Debug, Default)]
struct Info {
    method: Option<MethodLabel>,
    peer: Option<String>,
    message: Option<String>,
    details: Vec<u8>,
}

impl<E> CallError<E> {
    /// An error of this kind, naming no method, peer or message.
    pub fn new(kind: ErrorKind) -> Self {
        CallError { kind, app: None, info: None }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The status that best describes the failure (UNAVAILABLE for a lost connection, TOO_LARGE
    /// for a refused oversized request, BAD_PAYLOAD for an undecodable response,
    /// APPLICATION_ERROR when [`app`](Self::app) is set, …).
    pub fn status(&self) -> Status {
        match self.kind {
            ErrorKind::Status(s) => s,
            ErrorKind::Refused(e) => e.status(),
            ErrorKind::Encode(e) | ErrorKind::Decode(e) => e.status(),
        }
    }

    /// The method's typed application error, when the handler failed with one.
    pub fn app(&self) -> Option<&E> {
        self.app.as_ref()
    }

    /// The method's typed application error, by value.
    pub fn into_app(self) -> Option<E> {
        self.app
    }

    /// The message of the peer's status body (or of this side, for local failures), if any.
    pub fn message(&self) -> Option<&str> {
        self.info.as_ref()?.message.as_deref()
    }

    /// The opaque details of the peer's status body (empty if none). For APPLICATION_ERROR they
    /// are the encoded application error.
    pub fn details(&self) -> &[u8] {
        self.info.as_ref().map_or(&[], |i| &i.details)
    }

    /// The method the exchange addressed (`fleet.set_speed`, or `42/1` for an undeclared one).
    pub fn method(&self) -> Option<MethodLabel> {
        self.info.as_ref()?.method
    }

    /// The name of the peer (from its HELLO).
    pub fn peer(&self) -> Option<&str> {
        self.info.as_ref()?.peer.as_deref()
    }

    fn info_mut(&mut self) -> &mut Info {
        self.info.get_or_insert_with(Box::default)
    }

    /// Names the method and the peer.
    pub fn with_context(mut self, method: MethodLabel, peer: &str) -> Self {
        let i = self.info_mut();
        i.method = Some(method);
        i.peer = Some(peer.to_owned());
        self
    }

    /// Adds a message and details.
    pub fn with_body(mut self, message: Option<String>, details: Vec<u8>) -> Self {
        if message.is_none() && details.is_empty() {
            return self;
        }
        let i = self.info_mut();
        i.message = message;
        i.details = details;
        self
    }

    /// The same error with another application error type (the application error, if any, is
    /// converted by `f`).
    pub fn map_app<F>(self, f: impl FnOnce(E) -> F) -> CallError<F> {
        CallError { kind: self.kind, app: self.app.map(f), info: self.info }
    }

    /// The same error as an untyped one (its application error becomes its details only).
    pub fn untyped(self) -> CallError {
        CallError { kind: self.kind, app: None, info: self.info }
    }

    pub(crate) fn with_app(mut self, app: Option<E>) -> Self {
        self.app = app;
        self
    }

    /// Maps a refusal of the core: a closed or draining connection is UNAVAILABLE.
    pub(crate) fn api(e: ApiError) -> Self {
        match e {
            ApiError::Closed | ApiError::GoingAway | ApiError::NotConnected => {
                CallError::new(ErrorKind::Status(Status::UNAVAILABLE))
            }
            e => CallError::new(ErrorKind::Refused(e)),
        }
    }
}

impl<E> From<Status> for CallError<E> {
    fn from(s: Status) -> Self {
        CallError::new(ErrorKind::Status(s))
    }
}

impl<E> From<ErrorKind> for CallError<E> {
    fn from(k: ErrorKind) -> Self {
        CallError::new(k)
    }
}

impl<E: PartialEq> PartialEq for CallError<E> {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.app == other.app
            && self.message() == other.message()
            && self.details() == other.details()
    }
}

impl<E: Eq> Eq for CallError<E> {}

impl<E: fmt::Debug> fmt::Debug for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("CallError");
        d.field("kind", &self.kind);
        if let Some(a) = &self.app {
            d.field("app", a);
        }
        if let Some(i) = &self.info {
            if let Some(m) = &i.method {
                d.field("method", &format_args!("{m}"));
            }
            if let Some(p) = &i.peer {
                d.field("peer", p);
            }
            if let Some(m) = &i.message {
                d.field("message", m);
            }
            if !i.details.is_empty() {
                d.field("details", &i.details);
            }
        }
        d.finish()
    }
}

impl<E: fmt::Debug> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.method(), self.peer()) {
            (Some(m), Some(p)) => write!(f, "{m} on {p:?}: ")?,
            (Some(m), None) => write!(f, "{m}: ")?,
            (None, Some(p)) => write!(f, "call to {p:?}: ")?,
            (None, None) => {}
        }
        match self.kind {
            ErrorKind::Status(s) => write!(f, "{s}")?,
            ErrorKind::Refused(e) => write!(f, "not sent: {e}")?,
            ErrorKind::Encode(e) => write!(f, "the request could not be encoded: {e}")?,
            ErrorKind::Decode(e) => write!(
                f,
                "the response could not be decoded: {e} (do both sides use the same method declaration?)"
            )?,
        }
        if let Some(a) = &self.app {
            write!(f, ": {a:?}")?;
        }
        if let Some(m) = self.message().filter(|m| !m.is_empty()) {
            write!(f, ": {m}")?;
        }
        if self.kind == ErrorKind::Status(Status::SCHEMA_MISMATCH) && self.message().is_none() {
            f.write_str(
                " (the two ends declare this method with different types; use the same declaration)",
            )?;
        }
        Ok(())
    }
}

impl<E: fmt::Debug> std::error::Error for CallError<E> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_or_draining_connection_is_unavailable_other_refusals_are_refused() {
        for e in [ApiError::Closed, ApiError::GoingAway, ApiError::NotConnected] {
            assert_eq!(CallError::<NoError>::api(e), CallError::from(Status::UNAVAILABLE));
        }
        let e = ApiError::TooManyCalls { limit: 0 };
        assert_eq!(CallError::<NoError>::api(e).kind(), ErrorKind::Refused(e));
        assert_eq!(CallError::<NoError>::api(e).status(), e.status());
    }

    #[test]
    fn call_errors_name_the_method_the_peer_and_the_message() {
        let m = MethodLabel { id: tandem_core::MethodId::new(42, 1), path: "fleet.set_speed" };
        let e = CallError::<NoError>::from(Status::NOT_FOUND)
            .with_context(m, "fleet-server")
            .with_body(Some("no vehicle 7".into()), vec![]);
        assert_eq!(
            e.to_string(),
            "fleet.set_speed on \"fleet-server\": NOT_FOUND (14): not found: no vehicle 7"
        );
        assert_eq!(e, CallError::from(Status::NOT_FOUND).with_body(Some("no vehicle 7".into()), vec![]));
        let raw = MethodLabel::id(tandem_core::MethodId::new(42, 1));
        let e = CallError::<NoError>::from(Status::UNAVAILABLE).with_context(raw, "p");
        assert!(e.to_string().starts_with("42/1 on \"p\": UNAVAILABLE"), "{e}");
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = Error::PathInUse { path: "/tmp/s".into(), live: false };
        assert!(e.to_string().contains("unlink_stale_socket"), "{e}");
        let e = Error::Timeout { addr: "tcp://h:1".into() };
        assert!(e.to_string().contains("connect_timeout"), "{e}");
        let e = io_error("cannot connect to tcp://h:1", io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(e.to_string().starts_with("cannot connect to tcp://h:1: "), "{e}");
    }
}
