//! [`Server`]: listens on the shared I/O threads (`tandem_runtime::threads::listen`), which hand
//! every accepted transport (or UDP datagram) to the shared hub and every admitted connection to
//! a driver whose handlers run on the server's pool; everything else is the hub's. (Layer 7:
//! imports `handlers`, `pool`, `config`, `api`, `block`.)

use core::time::Duration;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::config::connection_config;
use tandem_runtime::hub::{Gate, Hub};
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::tandem_core::typed::Unary;
use tandem_runtime::threads::listen::{self, Listening};
use tandem_runtime::threads::transport::Listener;
use tandem_runtime::tls;
use tandem_runtime::unix::PathGuard;
use tandem_runtime::{CallError, Deadline, Error, ServerStats};

use crate::api::Peer;
use crate::block::{block_on, sleep_until};
use crate::config::ServerConfig;
use crate::handlers::{Handlers, PoolDispatch};
use crate::pool::{fit_announced, Pool, PoolLimits, PoolStats};

/// A listening server. Every accepted connection is served by its [`Handlers`] on the server's
/// handler pool, and is equal to the client once connected: the server may call it too.
///
/// Dropping the server stops accepting and closes every connection; prefer
/// [`shutdown`](Self::shutdown), which lets in-flight calls finish.
pub struct Server {
    hub: Arc<Hub>,
    local: Address,
    path: Option<PathGuard>,
    pool: Pool,
    listening: Listening,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("local", &self.local).field("stats", &self.stats()).finish()
    }
}

impl Server {
    /// Listens on `addr` (`tcp://host:port` — port 0 picks a free one —, `tls://host:port`
    /// (with `config.tls`), `unix:///path`, `unix+seqpacket:///path`, `udp://host:port`,
    /// `ws://host:port/path` or `wss://host:port/path` (with `config.tls`)) and
    /// starts accepting on an I/O thread.
    ///
    /// On `udp://` one socket serves every client: the endpoint routes datagrams by source
    /// address into associations (SPEC.md §14), one per address whose first datagram is a
    /// HELLO, at most `config.endpoint.max_associations` at once. On the other transports every
    /// connection is offered session resumption unless `config.endpoint.resume` is off.
    ///
    /// A Unix socket path that already exists is refused ([`Error::PathInUse`]) unless
    /// `config.unlink_stale_socket` is set and it is a socket nothing answers on; the socket
    /// file is removed when the server stops. If one peer's announced slots
    /// (`max_concurrent_calls + max_concurrent_streams`) would not fit in the handler pool next
    /// to its `workers` (`max_workers`), the server announces less (logged).
    pub fn bind(addr: &str, config: ServerConfig, handlers: Handlers) -> Result<Server, Error> {
        Server::bind_gated(addr, config, handlers, None)
    }

    /// [`bind`](Self::bind) with a gate judging every new connection (a mesh).
    pub(crate) fn bind_gated(
        addr: &str,
        config: ServerConfig,
        handlers: Handlers,
        gate: Option<Arc<dyn Gate>>,
    ) -> Result<Server, Error> {
        let address: Address = addr.parse()?;
        let limits = PoolLimits { workers: config.workers, max_threads: config.max_workers };
        let mut connection =
            connection_config(&config.connection, &address, config.max_datagram, config.udp_max_datagram)?;
        fit_announced(&mut connection, limits, "ServerConfig");
        let tls = tls::server_tls(&address, config.tls.as_ref())?;
        let (listener, local, path) = Listener::bind(&address, config.unlink_stale_socket)?;
        tracing::info!(addr = %local, name = %config.name, "listening");
        let hub =
            Hub::with_gate(config.name, connection, config.endpoint, sleep_until, config.authenticator, gate);
        hub.set_observer(config.observer);
        let pool = Pool::new(limits, "tandem-server");
        let lanes = pool.clone();
        let listening = listen::start(listener, hub.clone(), handlers.registry().clone(), tls, move || {
            PoolDispatch { lane: lanes.lane(), pool: None }
        });
        Ok(Server { hub, local, path, pool, listening })
    }

    /// Serves a WebSocket connection that the application accepted itself, so that tandem
    /// shares a port with the application's HTTP server by path: the application reads the
    /// request head, sees the server's path (`/rpc` of `ws://…/rpc`) and hands the socket over
    /// with the bytes it read (`already_read`; empty if it read none). The upgrade, the path
    /// check (HTTP 404 otherwise), the subprotocol and, on `wss://`, TLS run as for a
    /// connection this server accepted (on an I/O thread; this call does not wait); the
    /// connection counts against the same limits. Fails if the server is not bound on `ws://`
    /// or `wss://` (bind on port 0 to serve adopted connections only).
    ///
    /// ```no_run
    /// # fn f(server: &tandem_std::Server, listener: std::net::TcpListener) -> Result<(), Box<dyn std::error::Error>> {
    /// use std::io::Read;
    /// let (mut stream, _) = listener.accept()?;
    /// let mut head = [0u8; 1024];
    /// let n = stream.read(&mut head)?;
    /// if head[..n].starts_with(b"GET /rpc ") {
    ///     server.serve_websocket(stream, &head[..n])?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn serve_websocket(&self, stream: std::net::TcpStream, already_read: &[u8]) -> Result<(), Error> {
        self.listening.serve_websocket(stream, already_read)
    }

    /// The address actually listened on (with the real port for `tcp://…:0` and `udp://…:0`).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// The gauges and the endpoint's counters.
    pub fn stats(&self) -> ServerStats {
        self.hub.stats()
    }

    /// The handler pool's counters (threads, running and parked handlers, queued requests).
    pub fn handler_pool(&self) -> PoolStats {
        self.pool.stats()
    }

    /// The connected peer with this HELLO name. Peers that announced an empty name are served
    /// but not tracked.
    pub fn peer(&self, name: &str) -> Option<Peer> {
        self.hub.peer(name).map(Peer)
    }

    /// Every connected (or suspended) peer with a name, sorted by name.
    pub fn peers(&self) -> Vec<Peer> {
        self.hub.peers().into_iter().map(Peer).collect()
    }

    /// The exchanges in flight with every connected peer, by peer name and id: calls and
    /// notifications this server sent and waits for, and the exchanges its handlers serve.
    pub fn in_flight(&self) -> Vec<tandem_runtime::InFlight> {
        self.hub.in_flight()
    }

    /// Blocks until a peer named `name` is connected, for at most `timeout`.
    pub fn wait_for_peer(&self, name: &str, timeout: Duration) -> Option<Peer> {
        block_on(self.hub.wait_for_peer(name, timeout)).map(Peer)
    }

    /// Calls `method` on every peer at once; one result per peer, sorted by name.
    pub fn call_all<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        deadline: impl Into<Deadline>,
    ) -> Vec<(Peer, Result<Resp, CallError>)>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        block_on(self.hub.call_all(method, req, deadline)).into_iter().map(|(p, r)| (Peer(p), r)).collect()
    }

    /// Graceful shutdown: stops accepting, sends GOAWAY on every connection (suspended sessions
    /// end at once), lets in-flight exchanges finish for up to `grace`, then closes what
    /// remains (those fail with UNAVAILABLE).
    pub fn shutdown(mut self, grace: Duration) {
        tracing::info!(addr = %self.local, "shutting down");
        self.stop();
        self.path.take();
        block_on(self.hub.shutdown(grace));
    }

    fn stop(&self) {
        self.listening.stop();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        self.hub.close_all();
        self.pool.shutdown();
    }
}
