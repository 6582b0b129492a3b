//! Failures, their exit codes and their one-line messages: every way a command can fail falls
//! in one [`Code`], printed as `tandem: <class>: <what happened>` on stderr.

use std::io::ErrorKind as Io;

use tandem_std::{CallError, Error, ErrorKind, Peer, Status};

/// The exit status of each class of failure (documented in `--help` and README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The server answered the exchange with an error status (its status and message shown).
    Remote = 1,
    /// A bad command line, address, option or file.
    Usage = 2,
    /// Nothing listens at the address (connection refused, no such socket).
    NoServer = 3,
    /// The other side is not a tandem peer (garbage or a broken handshake, TLS mismatch).
    NotTandem = 4,
    /// The server refused this client at the handshake (authentication).
    Refused = 5,
    /// The TLS handshake failed (certificate not trusted, expired, wrong name, client
    /// certificate missing or refused).
    Tls = 6,
    /// No such service or method.
    UnknownMethod = 7,
    /// The two ends disagree on the method's types or kind.
    SchemaMismatch = 8,
    /// Connecting or the exchange took longer than `--timeout`.
    Timeout = 9,
    /// The input (JSON, hex) does not fit the method's schema.
    InvalidInput = 10,
    /// The connection was lost during the exchange.
    ConnectionLost = 11,
}

impl Code {
    /// Its class, as printed.
    pub fn class(self) -> &'static str {
        match self {
            Code::Remote => "error",
            Code::Usage => "usage",
            Code::NoServer => "no server",
            Code::NotTandem => "not a tandem peer",
            Code::Refused => "refused",
            Code::Tls => "TLS",
            Code::UnknownMethod => "unknown method",
            Code::SchemaMismatch => "schema mismatch",
            Code::Timeout => "timeout",
            Code::InvalidInput => "invalid input",
            Code::ConnectionLost => "connection lost",
        }
    }
}

/// The exit codes, for `--help` and the README.
pub const EXIT_CODES: &str = "\
Exit status:
   0  success
   1  error: the server answered with an error status (shown with its message)
   2  usage: bad command line, address, option or file
   3  no server: nothing listens at the address (connection refused, no such socket)
   4  not a tandem peer: garbage or a broken handshake, TLS where plaintext was expected
   5  refused: the server refused this client at the handshake (its status and message)
   6  TLS: the TLS handshake failed (untrusted, expired or misnamed certificate, client
      certificate missing or refused)
   7  unknown method: no such service or method (UNKNOWN_MODULE, UNKNOWN_METHOD)
   8  schema mismatch: the ends disagree on the method's types or kind (SCHEMA_MISMATCH,
      UNIMPLEMENTED, BAD_PAYLOAD, an answer that does not decode)
   9  timeout: connecting or the exchange exceeded --timeout (DEADLINE_EXCEEDED)
  10  invalid input: the JSON (or hex) does not fit the method's schema (the field is named)
  11  connection lost: the connection ended during the exchange";

/// A failed command: its class and what happened.
#[derive(Debug)]
pub struct Failure {
    /// The class (and exit code).
    pub code: Code,
    /// What happened, one line.
    pub message: String,
}

impl Failure {
    /// A failure of class `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Failure { code, message: message.into() }
    }

    /// A usage failure.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(Code::Usage, message)
    }
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // One line whatever the message holds.
        let one_line = self.message.replace(['\n', '\r'], " ");
        write!(f, "{}: {}", self.code.class(), one_line.trim_end())
    }
}

/// What result a command returns.
pub type Outcome<T = ()> = Result<T, Failure>;

/// A failure to connect to `addr`, classified.
pub fn connect(addr: &str, e: Error) -> Failure {
    let code = match &e {
        Error::Address(_) | Error::Config(_) | Error::TlsConfig { .. } | Error::PathInUse { .. } => {
            Code::Usage
        }
        Error::Io { source, .. } => match source.kind() {
            Io::ConnectionRefused | Io::NotFound | Io::AddrNotAvailable => Code::NoServer,
            Io::TimedOut => Code::Timeout,
            Io::ConnectionReset | Io::ConnectionAborted | Io::UnexpectedEof | Io::InvalidData => {
                Code::NotTandem
            }
            _ => Code::NoServer,
        },
        Error::Handshake(_) | Error::PeerSpeaksTls { .. } | Error::PeerSpeaksHttp { .. } => Code::NotTandem,
        Error::Refused { .. } => Code::Refused,
        Error::Timeout { .. } => Code::Timeout,
        Error::Tls { .. } => Code::Tls,
        _ => Code::NotTandem,
    };
    let message = match (&e, code) {
        (Error::Handshake(c), _) => format!(
            "{addr} does not speak tandem: the connection ended during the handshake ({c}); is this the right address and transport?"
        ),
        (Error::Refused { status, message }, _) => format!(
            "{addr} refused this client: {} ({}){}; check --auth, --name or the client certificate",
            status.name(),
            status.0,
            if message.is_empty() { String::new() } else { format!(": {message}") }
        ),
        (Error::PeerSpeaksTls { .. }, _) => format!(
            "{addr} speaks TLS (it answered with a TLS record): use tls://HOST:PORT, with --ca FILE if a private CA signed its certificate"
        ),
        (Error::Tls { .. }, _) => format!(
            "{e} (tandem options: --ca FILE to trust a private CA, --cert FILE --key FILE for a client certificate)"
        ),
        (Error::Timeout { .. }, _) => {
            format!("no tandem handshake from {addr} within --timeout: is a tandem server listening there?")
        }
        (_, Code::NoServer) => format!("nothing answers at {addr}: {e}"),
        _ => e.to_string(),
    };
    Failure::new(code, message)
}

/// A failed exchange with `peer`, classified.
pub fn call(peer: &Peer, e: &CallError) -> Failure {
    let code = match e.kind() {
        ErrorKind::Status(s) => status_code(s, peer),
        ErrorKind::Encode(_) => Code::InvalidInput,
        ErrorKind::Decode(_) => Code::SchemaMismatch,
        ErrorKind::Refused(_) => Code::Usage,
        _ => Code::Remote,
    };
    Failure::new(code, e.to_string())
}

/// The class of an exchange's terminal status.
pub fn status_code(s: Status, peer: &Peer) -> Code {
    match s {
        Status::UNKNOWN_MODULE | Status::UNKNOWN_METHOD => Code::UnknownMethod,
        Status::SCHEMA_MISMATCH | Status::UNIMPLEMENTED | Status::BAD_PAYLOAD => Code::SchemaMismatch,
        Status::DEADLINE_EXCEEDED => Code::Timeout,
        Status::UNAVAILABLE if peer.is_closed() => Code::ConnectionLost,
        _ => Code::Remote,
    }
}
