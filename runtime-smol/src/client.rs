//! [`Client`]: dials a server, completes the handshake and hands back the connection's
//! [`Peer`]; its driver then reconnects by itself as the dialer decides. (Layer 9: imports
//! `driver`, `session`, `config`, `peer`, `conn`, `transport`, `clock`, `error`, `handlers`.)

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use async_io::Timer;
use futures_lite::FutureExt;
use tandem_core::addr::Address;
use tandem_core::endpoint::Dialer;
use tandem_core::{Connection, Identity, Role};

use crate::clock::{self, now};
use crate::config::{self, ClientConfig};
use crate::conn::Shared;
use crate::driver::{self, Start};
use crate::error::Error;
use crate::handlers::Handlers;
use crate::peer::Peer;
use crate::session::{Link, Redial};
use crate::transport;

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
    /// Connects to `addr` (`tcp://host:port`, `unix:///path`, `unix+seqpacket:///path` or
    /// `udp://host:port`) and completes the handshake within `config.connect_timeout`. A
    /// failure of this first attempt is returned at once (it is not retried).
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
        let timeout = config.connect_timeout;
        connect(address, config, handlers)
            .or(async {
                Timer::after(timeout).await;
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
        self.peer.shutdown(grace).await;
    }
}

impl core::ops::Deref for Client {
    type Target = Peer;
    fn deref(&self) -> &Peer {
        &self.peer
    }
}

async fn connect(address: Address, config: ClientConfig, handlers: Handlers) -> Result<Client, Error> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let connection =
        config::for_address(&config.connection, &address, config.max_datagram, config.udp_max_datagram);
    connection.validate()?;
    let socket = transport::connect(&address).await?;
    let udp = socket.is_udp();
    let me = Identity { name: config.name.as_bytes(), ..Identity::default() };
    let conn = Connection::new(Role::Dialer, connection, me, now())?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let shared = Shared::new(conn, socket.remote_addr(), socket.credentials(), id);
    tracing::debug!(conn = id, addr = %address, "transport connected");
    let dialer = Dialer::new(config.reconnect.clone(), clock::seed());
    // No resumption over UDP (SPEC.md §14.1).
    let redial = Redial::new(dialer, address, config.resume && !udp, config.connect_timeout);
    let peer = Peer::new(shared.clone());
    let link = Link::Dialer(Box::new(redial));
    driver::spawn(Start { socket, shared, link, handlers, spawner: config.spawner.clone() });
    peer.connected().await.map_err(Error::Handshake)?;
    Ok(Client { peer })
}
