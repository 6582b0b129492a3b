//! [`Server`]: listens, hands every accepted transport (or UDP datagram) to the shared hub and
//! every admitted connection to a driver; everything else is the hub's. (Layer 3: imports
//! `driver`, `handlers`, `config`, `transport`, `spawner`.)

use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::sync::Arc;

use async_io::{Async, Timer};
use futures_lite::future::{poll_fn, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::config::connection_config;
use tandem_runtime::hub::Hub;
use tandem_runtime::open;
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::tandem_core::typed::Unary;
use tandem_runtime::tandem_core::Transport;
use tandem_runtime::tls::{self, TlsServerConfig, TlsSession};
use tandem_runtime::{CallError, Deadline, Error, Peer, ServerStats};

use crate::config::ServerConfig;
use crate::driver;
use crate::handlers::Handlers;
use crate::spawner::{sleep_until, Spawner};
use crate::transport::{Assoc, Listener, PathGuard, Socket};

/// A listening server. Every accepted connection is served by its [`Handlers`] and is equal to
/// the client once connected: the server may call it too.
///
/// Dropping the server stops accepting and closes every connection; prefer
/// [`shutdown`](Self::shutdown), which lets in-flight calls finish.
pub struct Server {
    hub: Arc<Hub>,
    local: Address,
    path: Option<PathGuard>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("local", &self.local).field("stats", &self.stats()).finish()
    }
}

/// What the accept loops need.
struct Serve {
    hub: Arc<Hub>,
    handlers: Handlers,
    spawner: Arc<dyn Spawner>,
    /// `tls://`: each accepted connection gets a TLS session of this configuration.
    tls: Option<TlsServerConfig>,
}

impl Server {
    /// Listens on `addr` (`tcp://host:port` — port 0 picks a free one —, `tls://host:port`
    /// (with `config.tls`), `unix:///path`, `unix+seqpacket:///path` or `udp://host:port`) and
    /// starts accepting on `config.spawner`. Not async: binding does not wait.
    ///
    /// On `udp://` one socket serves every client: the endpoint routes datagrams by source
    /// address into associations (SPEC.md §14), one per address whose first datagram is a
    /// HELLO, at most `config.endpoint.max_associations` at once. On the other transports every
    /// connection is offered session resumption unless `config.endpoint.resume` is off.
    ///
    /// A Unix socket path that already exists is refused ([`Error::PathInUse`]) unless
    /// `config.unlink_stale_socket` is set and nothing answers on it; the socket file is
    /// removed when the server stops.
    pub fn bind(addr: &str, config: ServerConfig, handlers: Handlers) -> Result<Server, Error> {
        let address: Address = addr.parse()?;
        let connection =
            connection_config(&config.connection, &address, config.max_datagram, config.udp_max_datagram)?;
        let tls = tls::server_tls(&address, config.tls.as_ref())?;
        let (listener, local, path) = Listener::bind(&address, config.unlink_stale_socket)?;
        tracing::info!(addr = %local, name = %config.name, "listening");
        let hub = Hub::new(config.name, connection, config.endpoint, sleep_until, config.authenticator);
        hub.set_observer(config.observer);
        let serve = Serve { hub: hub.clone(), handlers, spawner: config.spawner.clone(), tls };
        match listener {
            Listener::Udp(socket) => config.spawner.spawn(Box::pin(udp_loop(socket, serve))),
            listener => config.spawner.spawn(Box::pin(accept_loop(listener, serve))),
        }
        Ok(Server { hub, local, path })
    }

    /// The address actually listened on (with the real port for `tcp://…:0` and `udp://…:0`).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// The gauges and the endpoint's counters.
    pub fn stats(&self) -> ServerStats {
        self.hub.stats()
    }

    /// The connected peer with this HELLO name. Peers that announced an empty name are served
    /// but not tracked.
    pub fn peer(&self, name: &str) -> Option<Peer> {
        self.hub.peer(name)
    }

    /// Every connected (or suspended) peer with a name, sorted by name.
    pub fn peers(&self) -> Vec<Peer> {
        self.hub.peers()
    }

    /// Waits until a peer named `name` is connected, for at most `timeout`.
    pub async fn wait_for_peer(&self, name: &str, timeout: Duration) -> Option<Peer> {
        self.hub.wait_for_peer(name, timeout).await
    }

    /// Calls `method` on every peer at once; one result per peer, sorted by name.
    pub async fn call_all<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        deadline: impl Into<Deadline>,
    ) -> Vec<(Peer, Result<Resp, CallError>)>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        self.hub.call_all(method, req, deadline).await
    }

    /// Graceful shutdown: stops accepting, sends GOAWAY on every connection (suspended sessions
    /// end at once), lets in-flight exchanges finish for up to `grace`, then closes what
    /// remains (those fail with UNAVAILABLE).
    pub async fn shutdown(mut self, grace: Duration) {
        tracing::info!(addr = %self.local, "shutting down");
        self.hub.stop();
        self.path.take();
        self.hub.shutdown(grace).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.hub.close_all();
    }
}

impl Serve {
    fn start(&self, conn: open::NewConnection, socket: Socket, tls: Option<Box<TlsSession>>) {
        driver::spawn(conn, socket, tls, None, &self.handlers, self.spawner.clone());
    }
}

async fn accept_loop(listener: Listener, serve: Serve) {
    loop {
        let next = async { Some(listener.accept().await) }.or(async {
            serve.hub.stopped().await;
            None
        });
        match next.await {
            None => return,
            Some(Ok((socket, label))) => {
                let tls = match serve.tls.as_ref().map(|t| t.session()).transpose() {
                    Ok(tls) => tls.map(Box::new),
                    Err(e) => {
                        tracing::error!(remote = %label, error = %e, "cannot start a TLS session: connection dropped");
                        continue;
                    }
                };
                if let Some(conn) = open::accept(&serve.hub, socket.info(), &label) {
                    serve.start(conn, socket, tls);
                }
            }
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

/// UDP server: receives every datagram on the one socket and hands it to the hub, which
/// delivers it to its association or admits a new one (a HELLO from a new address).
async fn udp_loop(socket: Arc<Async<UdpSocket>>, serve: Serve) {
    enum In {
        Datagram(io::Result<(usize, std::net::SocketAddr)>),
        Resubmit(std::net::SocketAddr, Vec<u8>),
        Stop,
    }
    // Larger than any datagram we accept, so that oversized ones are seen whole and dropped.
    let size = match serve.hub.connection().transport {
        Transport::Datagram { max_datagram } => max_datagram as usize + 1,
        _ => 65536,
    };
    let mut buf = vec![0u8; size];
    loop {
        let input = async { In::Datagram(socket.recv_from(&mut buf).await) }
            .or(async {
                let (a, d) = poll_fn(|cx| serve.hub.poll_resubmitted(cx)).await;
                In::Resubmit(a, d)
            })
            .or(async {
                serve.hub.stopped().await;
                In::Stop
            })
            .await;
        let (from, data) = match input {
            In::Stop => return,
            In::Datagram(Ok((n, from))) => (from, buf[..n].to_vec()),
            In::Datagram(Err(e)) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) {
                    tracing::warn!(error = %e, "UDP receive failed");
                    Timer::after(Duration::from_millis(50)).await;
                }
                continue;
            }
            In::Resubmit(from, data) => (from, data),
        };
        if let Some((conn, inbox)) = open::datagram(&serve.hub, from, data) {
            serve.start(conn, Socket::Assoc(Assoc { socket: socket.clone(), peer: from, inbox }), None);
        }
    }
}
