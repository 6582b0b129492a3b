//! [`Client`]: dials a server, completes the handshake and hands back the connection's
//! [`Peer`]; its driver, on one of the shared I/O threads (`tandem_runtime::threads`), then
//! reconnects by itself as the dialer decides. (Layer 7: imports `config`, `handlers`, `pool`,
//! `api`, `block`.)

use core::time::Duration;
use std::time::Instant;

use tandem_runtime::config::connection_config;
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::threads::driver::{self, Dialing};
use tandem_runtime::threads::transport;
use tandem_runtime::{open, peer, Error};

use crate::api::Peer;
use crate::block::{block_on, sleep_until};
use crate::config::ClientConfig;
use crate::handlers::{Handlers, PoolDispatch};
use crate::pool::{fit_announced, Pool, PoolLimits, PoolStats};

/// Most threads of a client's handler pool.
const CLIENT_MAX_THREADS: usize = 1024;

/// A connection to a server. Dereferences to [`Peer`], the handle to call the server with; the
/// server can call back into the client's [`Handlers`], which run on the client's own handler
/// pool ([`ClientConfig::workers`]).
///
/// A `Client` is one handle of the connection: it stays open while any handle exists (see
/// [`Peer`]); dropping the last one shuts it down gracefully. [`Client::shutdown`] waits for
/// that, [`Peer::close`] ends it at once.
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
    /// Connects to `addr` (`tcp://host:port`, `tls://host:port` (trusting what `config.tls`
    /// says), `unix:///path`, `unix+seqpacket:///path`, `udp://host:port`, `ws://host:port/path`
    /// or `wss://host:port/path`) and completes the handshake (TLS's, the WebSocket upgrade,
    /// then tandem's) within `config.connect_timeout`, blocking. A failure of this first attempt is returned at once (it is not retried).
    ///
    /// When the server offers session resumption (TCP, Unix stream and SEQPACKET by default)
    /// and the transport is lost later, the client reconnects by itself as `config.reconnect`
    /// says (to the addresses the host name resolved to now); calls in flight complete exactly
    /// once after the resumption, and calls waiting on the suspended session fail UNAVAILABLE
    /// after `Config::suspended_call_timeout`. A session the server cannot resume continues as
    /// a fresh one (old exchanges fail UNAVAILABLE) or closes, per
    /// `ReconnectPolicy::fresh_session`. [`Peer::watch_state`] shows every step.
    pub fn connect(addr: &str, config: ClientConfig, handlers: Handlers) -> Result<Client, Error> {
        let address: Address = addr.parse()?;
        let deadline = Instant::now() + config.connect_timeout;
        let limits = PoolLimits { workers: config.workers, max_threads: CLIENT_MAX_THREADS };
        let mut connection =
            connection_config(&config.connection, &address, config.max_datagram, config.udp_max_datagram)?;
        fit_announced(&mut connection, limits, "ClientConfig");
        let tls = config.tls.connector(&address)?;
        let session = tls.as_ref().map(|c| c.session()).transpose()?.map(Box::new);
        let (socket, addrs) = transport::connect(&address, deadline)?;
        let (conn, peer) = open::dial(
            &config.name,
            &config.auth.bytes(),
            connection,
            socket.info(),
            config.resume,
            config.reconnect,
            sleep_until,
        )?;
        tracing::debug!(conn = conn.shared.id, addr = %address, "dialed");
        conn.shared.set_observer(config.observer.clone());
        let pool = Pool::new(limits, "tandem-client");
        let dialing = Dialing::new(address.clone(), addrs, config.connect_timeout, tls);
        let dispatch = PoolDispatch { lane: pool.lane(), pool: Some(pool.clone()) };
        driver::spawn(conn, socket, session, Some(dialing), handlers.registry(), dispatch);
        let connected = async {
            let handshake = async { Some(peer::connected(&peer, &address).await) };
            futures_lite::future::or(handshake, async {
                sleep_until(deadline).await;
                None
            })
            .await
        };
        match block_on(connected) {
            Some(Ok(())) => Ok(Client { peer: Peer(peer), pool }),
            Some(Err(e)) => Err(e),
            None => Err(Error::Timeout { addr: address.to_string() }),
        }
    }

    /// The handle on the connection (also reachable through `Deref`).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The counters of this client's handler pool.
    pub fn handler_pool(&self) -> PoolStats {
        self.pool.stats()
    }

    /// Graceful shutdown: GOAWAY, lets exchanges in flight finish for up to `grace`, then
    /// closes what remains (those fail with UNAVAILABLE). Blocks until done.
    pub fn shutdown(self, grace: Duration) {
        self.peer.shutdown(grace);
    }
}

impl core::ops::Deref for Client {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}
