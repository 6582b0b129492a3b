//! [`Client`]: dials a server and keeps one connection to it.

use crate::conn::{Redial, Shared};
use crate::driver::{self, Hooks};
use crate::error::Error;
use crate::handlers::Handlers;
use crate::peer::Peer;
use crate::pool::{self, Pool, PoolStats};
use crate::transport;
use core::time::Duration;
use std::sync::Arc;
use tandem_core::addr::Address;
use tandem_core::{Config, Role};

/// Default number of handler threads of a client.
pub const DEFAULT_CLIENT_WORKERS: usize = 4;
/// Default largest packet on a SEQPACKET socket: 64 KiB.
pub const DEFAULT_MAX_DATAGRAM: u32 = 64 * 1024;

/// How a client connects.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The name announced in HELLO; the server tracks its peers by it.
    pub name: String,
    /// Protocol limits and timers (keepalive, idle and handshake timeouts, …). The transport
    /// field is set from the address.
    pub connection: Config,
    /// Handlers running at once for requests the server sends (at least 1; parked handlers
    /// do not count: see [`ServerConfig::workers`](crate::ServerConfig::workers)). Default 4.
    pub workers: usize,
    /// Hard cap on the threads of the client's handler pool (see
    /// [`ServerConfig::max_handler_threads`](crate::ServerConfig::max_handler_threads)); if the
    /// server could hold more parked handlers than fit, the client announces less.
    /// Default 1024.
    pub max_handler_threads: usize,
    /// Signals from the server queued while the client's handlers are busy; beyond it further
    /// signals are dropped (see [`ServerConfig::max_queued_signals`](crate::ServerConfig::max_queued_signals)).
    /// Default 256.
    pub max_queued_signals: usize,
    /// Largest packet on a SEQPACKET socket. Default 64 KiB.
    pub max_datagram: u32,
    /// Resume the session when the transport is lost (SPEC.md §13), if the server offers it:
    /// the client reconnects by itself ([`ClientConfig::reconnect`]) and callers see only
    /// latency. When the session cannot be resumed (the server declined it, or
    /// `connection.session_grace` passed), pending calls fail with UNAVAILABLE. Off: losing
    /// the transport closes the connection. Default true.
    pub resume: bool,
    /// How a suspended session reconnects.
    pub reconnect: Reconnect,
    /// UDP (`udp://`): largest datagram (SPEC.md §14). Default 1200.
    pub udp_max_datagram: u32,
}

/// The reconnection schedule of a suspended session: attempt at once, then after `initial`,
/// multiplied by `multiplier` after each failure up to `max`, each delay varied by
/// ±`jitter` (a fraction) so that many clients do not reconnect in lockstep.
#[derive(Clone, Debug)]
pub struct Reconnect {
    /// First delay. Default 10 ms.
    pub initial: Duration,
    /// Growth factor per failed attempt (at least 1). Default 2.
    pub multiplier: f64,
    /// Largest delay. Default 2 s.
    pub max: Duration,
    /// Random variation of each delay, as a fraction (0.5 = ±50 %). Default 0.5.
    pub jitter: f64,
    /// Time limit of each connection attempt (TCP). Default 2 s.
    pub connect_timeout: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            initial: Duration::from_millis(10),
            multiplier: 2.0,
            max: Duration::from_secs(2),
            jitter: 0.5,
            connect_timeout: Duration::from_secs(2),
        }
    }
}

impl ClientConfig {
    /// Defaults, with the given name.
    pub fn new(name: impl Into<String>) -> Self {
        ClientConfig {
            name: name.into(),
            connection: Config::default(),
            workers: DEFAULT_CLIENT_WORKERS,
            max_handler_threads: crate::server::DEFAULT_MAX_HANDLER_THREADS,
            max_queued_signals: crate::server::DEFAULT_MAX_QUEUED_SIGNALS,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            resume: true,
            reconnect: Reconnect::default(),
            udp_max_datagram: crate::server::DEFAULT_UDP_MAX_DATAGRAM,
        }
    }
}

/// A connection to a server. Dereferences to [`Peer`], the handle to call the server with;
/// the server can call back into `handlers`.
///
/// Dropping the client closes the connection at once; [`Client::shutdown`] does it gracefully.
pub struct Client {
    peer: Peer,
    pool: Pool,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client").field("peer", &self.peer).finish()
    }
}

impl Client {
    /// Connects to `addr` (`tcp://HOST:PORT`, `unix:///PATH`, `unix+seqpacket:///PATH`,
    /// `udp://HOST:PORT`) and waits for the handshake to complete.
    ///
    /// Over TCP and Unix sockets the session is resumable when the server offers it (the
    /// default): if the transport is lost, the client's driver reconnects to the same address
    /// by itself ([`ClientConfig::reconnect`]); calls only see latency, or UNAVAILABLE once the
    /// session cannot be resumed. A reconnection attempt holds the driver for at most
    /// [`Reconnect::connect_timeout`]. Over UDP there is no resumption; streams are refused
    /// with UNIMPLEMENTED.
    pub fn connect(addr: &str, config: ClientConfig, handlers: Handlers) -> Result<Client, Error> {
        Self::connect_to(&addr.parse::<Address>()?, config, handlers)
    }

    /// Connects to a parsed address.
    pub fn connect_to(addr: &Address, mut config: ClientConfig, handlers: Handlers) -> Result<Client, Error> {
        // Connecting blocks: from a handler, let the pool run others meanwhile.
        let _parked = pool::parked();
        let socket = transport::connect(addr)?;
        let datagram = socket.is_datagram();
        let limits = pool::PoolLimits {
            workers: config.workers,
            max_threads: config.max_handler_threads,
            max_queued_signals: config.max_queued_signals,
        };
        pool::fit_announced(&mut config.connection, limits, "ClientConfig");
        let pool = Pool::new(limits, "tandem-client");
        let shared = Shared::new(
            socket,
            Role::Dialer,
            config.connection,
            &config.name,
            if datagram { config.udp_max_datagram } else { config.max_datagram },
            &[],
            // No resumption over UDP (SPEC.md §14).
            (config.resume && !datagram).then(|| Redial {
                addr: addr.clone(),
                connect_timeout: config.reconnect.connect_timeout,
                initial: config.reconnect.initial,
                multiplier: if config.reconnect.multiplier.is_finite() {
                    config.reconnect.multiplier
                } else {
                    2.0
                },
                max: config.reconnect.max,
                jitter: config.reconnect.jitter.clamp(0.0, 1.0),
            }),
            Arc::new(handlers),
            &pool,
        );
        let shared = match shared {
            Ok(s) => s,
            Err(e) => {
                pool.shutdown();
                return Err(e);
            }
        };
        tracing::debug!(conn = shared.id, %addr, "connecting");
        if let Err(source) = driver::spawn(Arc::clone(&shared), Hooks::default()) {
            pool.shutdown();
            return Err(Error::Io { context: "cannot start the connection thread".into(), source });
        }
        let peer = Peer::from_shared(shared);
        let client = Client { peer, pool };
        {
            let shared = client.peer.shared();
            let mut g = shared.lock();
            while !g.connected && g.closed.is_none() {
                g = shared.wait(g);
            }
            if let (false, Some(e)) = (g.connected, g.closed) {
                return Err(Error::Handshake(e));
            }
        }
        Ok(client)
    }

    /// The handle on the connection (also reachable through `Deref`).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The counters of the pool that runs this client's handlers.
    pub fn handler_pool(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Graceful shutdown: GOAWAY, let open exchanges finish for up to `grace`, then close.
    pub fn shutdown(self, grace: Duration) {
        self.peer.go_away();
        if !self.peer.wait_closed(grace) {
            self.peer.close_with(tandem_core::Status::UNAVAILABLE, "shutdown grace period elapsed");
            self.peer.wait_closed(Duration::from_secs(2));
        }
    }
}

impl core::ops::Deref for Client {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.peer.close();
        self.pool.shutdown();
    }
}
