//! [`ServerConfig`] and [`ClientConfig`]: who a side is and how its connections behave.
//! (Layer 1: imports `spawner`.)

use core::time::Duration;
use std::sync::Arc;

use tandem_core::addr::Address;
use tandem_core::endpoint::{EndpointConfig, ReconnectPolicy};
use tandem_core::{Config, Transport};

use crate::spawner::{SmolSpawner, Spawner};

/// Default largest packet on `unix+seqpacket://`: 64 KiB.
pub const DEFAULT_MAX_DATAGRAM: u32 = 64 * 1024;
/// Default largest datagram on `udp://`: 1200 bytes (no IPv4 or IPv6 path fragments it).
pub const DEFAULT_UDP_MAX_DATAGRAM: u32 = 1200;
/// Default time allowed for connecting (transport and handshake), and for each reconnection
/// attempt's transport: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server serves its connections. Build with [`ServerConfig::new`], then set fields.
#[derive(Clone)]
pub struct ServerConfig {
    /// The name announced in HELLO.
    pub name: String,
    /// Protocol limits and timers of every connection (keepalive, idle and handshake timeouts,
    /// `session_grace`, `suspended_call_timeout`, …). Its `transport` is set from the address.
    pub connection: Config,
    /// The many-connection decisions (the core's `Endpoint`): `resume` (offer session
    /// resumption, SPEC.md §13; default true, never over UDP), `max_connections`,
    /// `max_handshaking`, `max_suspended_sessions`, `session_memory_budget` (64 MiB of reply
    /// caches, retained requests and unconfirmed stream items over all sessions; beyond it the
    /// oldest suspended session is evicted, then cached answers shed), `max_associations` (UDP).
    pub endpoint: EndpointConfig,
    /// A Unix listener whose socket path exists refuses to start; with this set, a stale socket
    /// there (one nobody answers on) is removed first. Default false.
    pub unlink_stale_socket: bool,
    /// Largest packet on `unix+seqpacket://` (default [`DEFAULT_MAX_DATAGRAM`]).
    pub max_datagram: u32,
    /// Largest datagram on `udp://` (default [`DEFAULT_UDP_MAX_DATAGRAM`]; at least 1200).
    pub udp_max_datagram: u32,
    /// Where connection drivers, the accept loop and handlers run (default [`SmolSpawner`]).
    pub spawner: Arc<dyn Spawner>,
}

impl ServerConfig {
    /// Defaults, announcing `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ServerConfig {
            name: name.into(),
            connection: Config::default(),
            endpoint: EndpointConfig::default(),
            unlink_stale_socket: false,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            udp_max_datagram: DEFAULT_UDP_MAX_DATAGRAM,
            spawner: Arc::new(SmolSpawner),
        }
    }
}

impl core::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("name", &self.name)
            .field("connection", &self.connection)
            .field("endpoint", &self.endpoint)
            .field("unlink_stale_socket", &self.unlink_stale_socket)
            .field("max_datagram", &self.max_datagram)
            .field("udp_max_datagram", &self.udp_max_datagram)
            .finish_non_exhaustive()
    }
}

/// How a client connects and reconnects. Build with [`ClientConfig::new`], then set fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// The name announced in HELLO; a server tracks its peers by it.
    pub name: String,
    /// Protocol limits and timers (keepalive, idle and handshake timeouts, `session_grace`,
    /// `suspended_call_timeout`, …). Its `transport` is set from the address.
    pub connection: Config,
    /// Resume the session when the transport is lost (SPEC.md §13), if the server offers it:
    /// the client reconnects by itself ([`reconnect`](Self::reconnect)) and calls see only
    /// latency. Off: losing the transport closes the connection. Default true.
    pub resume: bool,
    /// When to reconnect (capped, jittered exponential backoff), whether to continue with a
    /// fresh session when the server cannot resume the old one (`fresh_session`, default
    /// true), and when to give up (`max_attempts`).
    pub reconnect: ReconnectPolicy,
    /// Time allowed for [`Client::connect`](crate::Client::connect) (transport and handshake)
    /// and for each reconnection attempt's transport. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Largest packet on `unix+seqpacket://` (default [`DEFAULT_MAX_DATAGRAM`]).
    pub max_datagram: u32,
    /// Largest datagram on `udp://` (default [`DEFAULT_UDP_MAX_DATAGRAM`]; at least 1200).
    pub udp_max_datagram: u32,
    /// Where the connection's driver and handlers run (default [`SmolSpawner`]).
    pub spawner: Arc<dyn Spawner>,
}

impl ClientConfig {
    /// Defaults, announcing `name`.
    pub fn new(name: impl Into<String>) -> Self {
        ClientConfig {
            name: name.into(),
            connection: Config::default(),
            resume: true,
            reconnect: ReconnectPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            udp_max_datagram: DEFAULT_UDP_MAX_DATAGRAM,
            spawner: Arc::new(SmolSpawner),
        }
    }
}

impl core::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("connection", &self.connection)
            .field("resume", &self.resume)
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_datagram", &self.max_datagram)
            .field("udp_max_datagram", &self.udp_max_datagram)
            .finish_non_exhaustive()
    }
}

/// `config` with the transport of `addr`.
pub(crate) fn for_address(
    config: &Config,
    addr: &Address,
    max_datagram: u32,
    udp_max_datagram: u32,
) -> Config {
    let mut c = config.clone();
    c.transport = match addr {
        Address::Udp(_) => Transport::Datagram { max_datagram: udp_max_datagram },
        Address::UnixSeqpacket(_) => Transport::Packet { max_datagram },
        _ => Transport::Stream,
    };
    c
}
