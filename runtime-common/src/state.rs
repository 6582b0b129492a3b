//! Plain data the API reports: [`LinkState`], [`PeerCredentials`], [`ServerStats`]; and why a
//! transport failed before the handshake (`TransportFailure`).
//! (Layer 0: imports no other file of the crate.)

use tandem_core::endpoint::EndpointStats;
use tandem_core::ConnectionError;

/// Where a connection's link is, as its application sees it (`Peer::state`,
/// `Peer::watch_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// Dialing and handshaking. `attempt` counts the attempts since the transport was lost
    /// (1 for the first connection).
    Connecting {
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Connected; `resumed` when the current transport resumed the session rather than
    /// starting it.
    Connected {
        /// Whether the session was resumed on this transport.
        resumed: bool,
    },
    /// The transport was lost at `since` and the session is suspended (SPEC.md §13): calls wait
    /// (at most `Config::suspended_call_timeout`). On the client, `failures` reconnection
    /// attempts have failed since and the next one starts at `next`; on the server, which waits
    /// for its client, `failures` is 0 and `next` is `None`.
    Suspended {
        /// When the transport was lost.
        since: std::time::Instant,
        /// Failed reconnection attempts since then.
        failures: u32,
        /// When the next reconnection attempt starts.
        next: Option<std::time::Instant>,
    },
    /// The connection ended, for this reason.
    Closed(ConnectionError),
}

/// Credentials of the process at the other end of a Unix socket (`SO_PEERCRED`), taken when
/// the connection was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerCredentials {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id.
    pub pid: i32,
}

/// A server's gauges and the counters of its endpoint's decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections tracked now: in their handshake, open or suspended (UDP associations too).
    pub connections: usize,
    /// Of those, in their handshake.
    pub handshaking: usize,
    /// Sessions suspended now, waiting for their client to come back.
    pub suspended_sessions: usize,
    /// UDP associations now.
    pub associations: usize,
    /// Bytes of session state (reply caches, retained requests, unconfirmed stream items) held
    /// over all sessions, as last reported against `EndpointConfig::session_memory_budget`.
    pub session_memory: usize,
    /// What the endpoint decided so far: refused connections and handshakes, resumptions,
    /// declined resumptions, sessions evicted (`evicted_count` for `max_suspended_sessions`,
    /// `evicted_memory` for the memory budget), sheds, replaced peers, dropped UDP HELLOs.
    pub endpoint: EndpointStats,
}

/// Why a connection's transport failed, when it is more than "closed": what
/// `peer::connected` reports instead of the handshake's error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TransportFailure {
    /// The TLS session failed (rustls' reason, with a hint).
    Tls(String),
    /// A plaintext connection received a TLS record: the peer expects TLS.
    PeerSpeaksTls,
    /// A plaintext connection was answered in HTTP: the peer is an HTTP server (perhaps a
    /// tandem WebSocket endpoint).
    PeerSpeaksHttp,
    /// The WebSocket upgrade or connection failed (`ws://`, `wss://`), with the reason.
    WebSocket(String),
}
