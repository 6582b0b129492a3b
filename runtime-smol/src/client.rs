//! [`Client`]: dials a server, completes the handshake and hands back the connection's
//! [`Peer`]; its driver, on one of the shared I/O threads (`tandem_runtime::threads`), then
//! reconnects by itself as the dialer decides. (Layer 2: imports `config`, `handlers`,
//! `spawner`.)

use core::time::Duration;
use std::time::Instant;

use futures_lite::FutureExt;
use tandem_runtime::config::connection_config;
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::threads::driver::{self, Dialing};
use tandem_runtime::threads::transport;
use tandem_runtime::{open, peer, Error, Peer};

use crate::config::ClientConfig;
use crate::handlers::{Handlers, SpawnDispatch};
use crate::spawner::sleep_until;

/// A connection to a server. Dereferences to [`Peer`], the handle to call the server with; the
/// server can call back into the client's [`Handlers`].
///
/// A `Client` is one handle of the connection: it stays open while any handle exists (see
/// [`Peer`]); dropping the last one shuts it down gracefully. [`Client::shutdown`] waits for
/// that, [`Peer::close`] ends it at once.
pub struct Client {
    peer: Peer,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client").field("peer", &self.peer).finish()
    }
}

impl Client {
    /// Connects to `addr` (`tcp://host:port`, `tls://host:port` (trusting what `config.tls`
    /// says), `unix:///path`, `unix+seqpacket:///path`, `udp://host:port`, `ws://host:port/path`
    /// or `wss://host:port/path`) and completes the handshake (TLS's, the WebSocket upgrade, then
    /// tandem's) within `config.connect_timeout`. A failure of this
    /// first attempt is returned at once (it is not retried).
    ///
    /// When the server offers session resumption (TCP, Unix stream and SEQPACKET by default)
    /// and the transport is lost later, the client reconnects by itself as
    /// `config.reconnect` says; calls in flight complete exactly once after the resumption,
    /// and calls waiting on the suspended session fail UNAVAILABLE after
    /// `Config::suspended_call_timeout`. A session the server cannot resume continues as a
    /// fresh one (old exchanges fail UNAVAILABLE) or closes, per
    /// `ReconnectPolicy::fresh_session`. [`Peer::watch_state`] shows every step.
    pub async fn connect(addr: &str, config: ClientConfig, handlers: Handlers) -> Result<Client, Error> {
        let address: Address = addr.parse()?;
        let label = address.to_string();
        let deadline = Instant::now() + config.connect_timeout;
        connect(address, config, handlers)
            .or(async {
                sleep_until(deadline).await;
                Err(Error::Timeout { addr: label })
            })
            .await
    }

    /// The handle on the connection (also reachable through `Deref`).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Graceful shutdown: GOAWAY, lets exchanges in flight finish for up to `grace`, then
    /// closes what remains (those fail with UNAVAILABLE).
    pub async fn shutdown(self, grace: Duration) {
        peer::shutdown(&self.peer, grace).await;
    }
}

impl core::ops::Deref for Client {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}

async fn connect(address: Address, config: ClientConfig, handlers: Handlers) -> Result<Client, Error> {
    let deadline = Instant::now() + config.connect_timeout;
    let connection =
        connection_config(&config.connection, &address, config.max_datagram, config.udp_max_datagram)?;
    let tls = config.tls.connector(&address)?;
    let session = tls.as_ref().map(|c| c.session()).transpose()?.map(Box::new);
    let (socket, addrs) = match &address {
        // A local socket's connect does not wait: done here, without blocking.
        Address::Unix(_) | Address::UnixSeqpacket(_) => (transport::connect_local(&address)?, Vec::new()),
        // Name resolution and a TCP connect may take long: on smol's blocking pool (bounded by
        // the deadline), not on the executor's thread.
        _ => {
            let a = address.clone();
            smol::unblock(move || transport::connect(&a, deadline)).await?
        }
    };
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
    let dialing = Dialing::new(address.clone(), addrs, config.connect_timeout, tls);
    let dispatch = SpawnDispatch(config.spawner);
    driver::spawn(conn, socket, session, Some(dialing), handlers.registry(), dispatch);
    peer::connected(&peer, &address).await?;
    Ok(Client { peer })
}
