//! [`Server`]: listens, hands every accepted transport (or UDP datagram) to the shared hub and
//! every admitted connection to a driver; everything else is the hub's. The listening socket is
//! an I/O thread's task like any connection. (Layer 5: imports `driver`, `io`, `handlers`,
//! `pool`, `config`, `transport`, `api`, `block`.)

use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::io;
use std::net::UdpSocket;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::config::connection_config;
use tandem_runtime::handlers::Registry;
use tandem_runtime::hub::Hub;
use tandem_runtime::open;
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::tandem_core::typed::Unary;
use tandem_runtime::tandem_core::Transport as Framing;
use tandem_runtime::tls::{self, TlsServerConfig, TlsSession};
use tandem_runtime::unix::PathGuard;
use tandem_runtime::{CallError, Deadline, Error, ServerStats};

use crate::api::Peer;
use crate::block::{block_on, sleep_until};
use crate::config::ServerConfig;
use crate::driver;
use crate::handlers::{Handlers, SyncFns};
use crate::io::{self as iot, Cx, Next, Registered, Source, Task};
use crate::pool::{fit_announced, Pool, PoolLimits, PoolStats};
use crate::transport::{Assoc, Interest, Listener, Socket};

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
    /// The listening task's waker, to make it see that the hub stopped.
    listener: Arc<Mutex<Option<Waker>>>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("local", &self.local).field("stats", &self.stats()).finish()
    }
}

impl Source for Listener {
    fn source_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd())
    }
}

impl Server {
    /// Listens on `addr` (`tcp://host:port` — port 0 picks a free one —, `tls://host:port`
    /// (with `config.tls`), `unix:///path`, `unix+seqpacket:///path` or `udp://host:port`) and
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
        let address: Address = addr.parse()?;
        let limits = PoolLimits { workers: config.workers, max_threads: config.max_workers };
        let mut connection =
            connection_config(&config.connection, &address, config.max_datagram, config.udp_max_datagram)?;
        fit_announced(&mut connection, limits, "ServerConfig");
        let tls = tls::server_tls(&address, config.tls.as_ref())?;
        let (listener, local, path) = Listener::bind(&address, config.unlink_stale_socket)?;
        tracing::info!(addr = %local, name = %config.name, "listening");
        let hub = Hub::new(config.name, connection, config.endpoint, sleep_until, config.authenticator);
        hub.set_observer(config.observer);
        let pool = Pool::new(limits, "tandem-server");
        let waker = Arc::new(Mutex::new(None));
        let serve = Serve {
            hub: hub.clone(),
            handlers: handlers.registry().clone(),
            pool: pool.clone(),
            waker: waker.clone(),
            tls,
        };
        match listener {
            Listener::Udp(socket) => {
                iot::spawn(Box::new(UdpTask { socket: Arc::new(socket), reg: None, buf: Vec::new(), serve }))
            }
            listener => {
                iot::spawn(Box::new(AcceptTask { listener: Some(listener), reg: None, backoff: None, serve }))
            }
        }
        Ok(Server { hub, local, path, pool, listener: waker })
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
        self.hub.stop();
        if let Some(w) = self.listener.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.wake();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        self.hub.close_all();
        self.pool.shutdown();
    }
}

/// What the listening tasks need.
struct Serve {
    hub: Arc<Hub>,
    handlers: Registry<SyncFns>,
    pool: Pool,
    waker: Arc<Mutex<Option<Waker>>>,
    /// `tls://`: each accepted connection gets a TLS session of this configuration.
    tls: Option<TlsServerConfig>,
}

impl Serve {
    fn start(&self, conn: open::NewConnection, socket: Socket, tls: Option<Box<TlsSession>>) {
        driver::spawn(conn, socket, tls, None, &self.handlers, self.pool.lane(), None);
    }

    /// Keeps the task's waker for [`Server::stop`]; whether the server has stopped.
    fn stopped(&self, cx: &Cx<'_>) -> bool {
        let mut w = self.waker.lock().unwrap_or_else(|e| e.into_inner());
        if w.is_none() {
            *w = Some(cx.waker.clone());
        }
        self.hub.is_stopped()
    }
}

/// Accepts connections on a TCP or Unix listener.
struct AcceptTask {
    listener: Option<Listener>,
    reg: Option<Registered<Listener>>,
    /// After a failed accept (out of file descriptors, …): not before then.
    backoff: Option<Instant>,
    serve: Serve,
}

impl Task for AcceptTask {
    fn turn(&mut self, cx: &Cx<'_>) -> Next {
        if self.serve.stopped(cx) {
            return Next::Done;
        }
        if let Some(l) = self.listener.take() {
            match Registered::new(l, cx) {
                Ok(r) => self.reg = Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "cannot wait on the listener: not accepting");
                    return Next::Done;
                }
            }
        }
        let Some(reg) = self.reg.as_mut() else { return Next::Done };
        if cx.fired {
            reg.fired();
        }
        if let Some(t) = self.backoff.filter(|t| Instant::now() < *t) {
            return Next::Wait(Some(t));
        }
        self.backoff = None;
        for _ in 0..64 {
            match reg.get().accept() {
                Ok((socket, label)) => {
                    let tls = match self.serve.tls.as_ref().map(|t| t.session()).transpose() {
                        Ok(tls) => tls.map(Box::new),
                        Err(e) => {
                            tracing::error!(remote = %label, error = %e, "cannot start a TLS session: connection dropped");
                            continue;
                        }
                    };
                    if let Some(conn) = open::accept(&self.serve.hub, socket.info(), &label) {
                        self.serve.start(conn, socket, tls);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    reg.arm(Interest { read: true, write: false });
                    return Next::Wait(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    let t = Instant::now() + Duration::from_millis(50);
                    self.backoff = Some(t);
                    return Next::Wait(Some(t));
                }
            }
        }
        Next::Again
    }
}

impl Source for Arc<UdpSocket> {
    fn source_fd(&self) -> Option<BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.as_fd())
    }
}

/// A UDP server: receives every datagram on the one socket and hands it to the hub, which
/// delivers it to its association or admits a new one (a HELLO from a new address).
struct UdpTask {
    socket: Arc<UdpSocket>,
    reg: Option<Registered<Arc<UdpSocket>>>,
    buf: Vec<u8>,
    serve: Serve,
}

impl Task for UdpTask {
    fn turn(&mut self, cx: &Cx<'_>) -> Next {
        if self.serve.stopped(cx) {
            return Next::Done;
        }
        if self.reg.is_none() {
            // Larger than any datagram we accept, so that oversized ones are seen whole and
            // dropped.
            let size = match self.serve.hub.connection().transport {
                Framing::Datagram { max_datagram } => max_datagram as usize + 1,
                _ => 65536,
            };
            self.buf = vec![0; size];
            match Registered::new(self.socket.clone(), cx) {
                Ok(r) => self.reg = Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "cannot wait on the UDP socket: not serving");
                    return Next::Done;
                }
            }
        }
        let Some(reg) = self.reg.as_mut() else { return Next::Done };
        if cx.fired {
            reg.fired();
        }
        let mut task_cx = Context::from_waker(cx.waker);
        for _ in 0..64 {
            let (from, data) = match self.serve.hub.poll_resubmitted(&mut task_cx) {
                Poll::Ready(d) => d,
                Poll::Pending => match reg.get().recv_from(&mut self.buf) {
                    Ok((n, from)) => (from, self.buf[..n].to_vec()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        reg.arm(Interest { read: true, write: false });
                        return Next::Wait(None);
                    }
                    Err(e) => {
                        if !tandem_runtime::unix::transient_udp(&e) {
                            tracing::warn!(error = %e, "UDP receive failed");
                        }
                        continue;
                    }
                },
            };
            if let Some((conn, inbox)) = open::datagram(&self.serve.hub, from, data) {
                let assoc = Assoc { socket: self.socket.clone(), peer: from, inbox, waker: None };
                self.serve.start(conn, Socket::Assoc(assoc), None);
            }
        }
        Next::Again
    }
}
