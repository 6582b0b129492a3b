//! Watching a runtime: peers that connect and leave, every exchange that finishes, and the
//! exchanges in flight. (Layer 0: imports `auth` only.)
//!
//! An [`Observer`] installed in a `ServerConfig` or `ClientConfig` is told of each peer's
//! arrival and departure (with its identity and remote address) and of every finished exchange
//! (method, side, kind, status, duration): the hook for metrics (the `metrics` feature's
//! [`MetricsObserver`](crate::MetricsObserver)), audit logs or dashboards. Every finished
//! exchange is also a `tracing` event (target `tandem::exchange`, level DEBUG) with the same
//! fields, whether or not an observer is installed. [`InFlight`] lists what a peer has open.

use core::time::Duration;
use std::net::SocketAddr;

use tandem_core::typed::MethodLabel;
use tandem_core::{ConnectionError, Status};

use crate::auth::PeerIdentity;

/// Told what happens on a server's or client's connections.
///
/// The runtime calls these methods on its own threads, some with the connection's lock held:
/// they must return quickly and must not call back into tandem (no calls, no `peers()`); hand
/// anything slow to another thread. Every method has an empty default.
pub trait Observer: Send + Sync + 'static {
    /// A peer completed its handshake (`resumed`: a suspended session continued on a new
    /// transport, SPEC.md §13).
    fn connected(&self, peer: &PeerEvent<'_>) {
        let _ = peer;
    }

    /// A peer's connection ended, for `reason`.
    fn disconnected(&self, peer: &PeerEvent<'_>, reason: &ConnectionError) {
        let _ = (peer, reason);
    }

    /// An exchange finished: a call answered, a notification acknowledged, a stream ended, a
    /// signal handled.
    fn finished(&self, exchange: &Finished<'_>) {
        let _ = exchange;
    }
}

/// A peer arriving or leaving.
#[derive(Clone, Copy, Debug)]
pub struct PeerEvent<'a> {
    /// The connection's number (as in the logs).
    pub conn: u64,
    /// The name the peer announced in HELLO.
    pub name: &'a str,
    /// The identity the server's authenticator gave it (`None`: unauthenticated, or the
    /// client's side).
    pub identity: Option<&'a PeerIdentity>,
    /// Its address (TCP, TLS and UDP).
    pub remote: Option<SocketAddr>,
    /// Whether this is a resumed session's new transport.
    pub resumed: bool,
}

/// Which side of an exchange this end is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The peer opened it; a handler here served it.
    Served,
    /// This end opened it.
    Called,
}

impl Side {
    /// `"served"` or `"called"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Served => "served",
            Side::Called => "called",
        }
    }
}

/// The kind of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExchangeKind {
    /// A unary call.
    Call,
    /// A reliable (acknowledged) notification.
    Notify,
    /// A stream.
    Stream,
    /// An unreliable notification (signal).
    Signal,
}

impl ExchangeKind {
    /// `"call"`, `"notify"`, `"stream"` or `"signal"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Call => "call",
            ExchangeKind::Notify => "notify",
            ExchangeKind::Stream => "stream",
            ExchangeKind::Signal => "signal",
        }
    }
}

/// A finished exchange.
#[derive(Clone, Copy, Debug)]
pub struct Finished<'a> {
    /// The connection's number.
    pub conn: u64,
    /// The peer's name.
    pub peer: &'a str,
    /// The exchange id (0 for a signal).
    pub id: u64,
    /// Its method: its path when declared (`service.method`), else `module/method`.
    pub method: MethodLabel,
    /// Which side this end was.
    pub side: Side,
    /// Its kind.
    pub kind: ExchangeKind,
    /// How it ended (OK, or the failure's status).
    pub status: Status,
    /// From its opening (sent, or received) to its end.
    pub duration: Duration,
}

/// An exchange in flight on a connection ([`Peer::in_flight`](crate::Peer::in_flight), and a
/// server's `in_flight()` over all its peers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// The peer it is exchanged with.
    pub peer: String,
    /// The exchange id.
    pub id: u64,
    /// Its method: its path when declared (`service.method`), else `module/method`.
    pub method: MethodLabel,
    /// Which side this end is.
    pub side: Side,
    /// Its kind.
    pub kind: ExchangeKind,
    /// Time since it was opened (sent, or received).
    pub age: Duration,
    /// Time left before its deadline (`None`: no deadline; zero: passed).
    pub deadline: Option<Duration>,
}

/// Whether anyone wants [`finished`]'s reports: an observer, or a tracing subscriber taking
/// target `tandem::exchange` at debug level. Lets a hot path skip the clock reading behind a
/// duration nobody reads.
pub(crate) fn wanted(observer: Option<&dyn Observer>) -> bool {
    observer.is_some() || tracing::enabled!(target: "tandem::exchange", tracing::Level::DEBUG)
}

/// Reports `f` to the tracing subscriber (target `tandem::exchange`) and to `observer`.
pub(crate) fn finished(observer: Option<&dyn Observer>, f: &Finished<'_>) {
    tracing::debug!(
        target: "tandem::exchange",
        conn = f.conn,
        peer = f.peer,
        id = f.id,
        method = %f.method,
        side = f.side.as_str(),
        kind = f.kind.as_str(),
        status = %f.status,
        duration_us = f.duration.as_micros() as u64,
        "exchange finished"
    );
    if let Some(o) = observer {
        o.finished(f);
    }
}
