//! [`Server`]: listens, hands every accepted transport (or UDP association) to the endpoint and
//! a driver, and calls one or all of its peers. (Layer 9: imports `driver`, `hub`, `session`,
//! `handlers`, `peer`, `config`, `transport`, `conn`, `clock`, `deadline`, `error`, `spawner`.)

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Poll;
use core::time::Duration;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use async_io::{Async, Timer};
use event_listener::Event;
use futures_lite::future::{poll_fn, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use smol::channel::{Receiver, Sender};
use tandem_core::addr::Address;
use tandem_core::endpoint::{ConnId, EndpointStats, Route, TOKEN_LEN};
use tandem_core::typed::Unary;
use tandem_core::{Config, Connection, Identity, Role, Status};

use crate::clock::now;
use crate::config::{self, ServerConfig};
use crate::conn::Shared;
use crate::deadline::Deadline;
use crate::driver::{self, Start};
use crate::error::{CallError, Error};
use crate::handlers::Handlers;
use crate::hub::Hub;
use crate::peer::Peer;
use crate::session::Link;
use crate::spawner::Spawner;
use crate::transport::{Assoc, Inbox, Listener, PathGuard, Socket, HELLO};

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

/// Stops the accept loop.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    event: Event,
}

impl Stop {
    fn set(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    async fn wait(&self) {
        loop {
            if self.flag.load(Ordering::SeqCst) {
                return;
            }
            let l = self.event.listen();
            if self.flag.load(Ordering::SeqCst) {
                return;
            }
            l.await;
        }
    }
}

/// What starting a server-side connection takes.
struct Serve {
    hub: Arc<Hub>,
    handlers: Handlers,
    spawner: Arc<dyn Spawner>,
    name: String,
    connection: Config,
    stop: Arc<Stop>,
}

impl Serve {
    /// Creates the connection of an admitted transport and spawns its driver.
    fn start(&self, socket: Socket, id: ConnId, token: Option<[u8; TOKEN_LEN]>, udp: Option<UdpLink>) {
        let session = token.as_ref().map_or(&[][..], |t| &t[..]);
        let me = Identity { name: self.name.as_bytes(), session, ..Identity::default() };
        let conn = match Connection::new(Role::Acceptor, self.connection.clone(), me, now()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a connection");
                crate::hub::apply(self.hub.closed(id, udp.as_ref().map(|u| u.addr)));
                return;
            }
        };
        let shared = Shared::new(conn, socket.remote_addr(), socket.credentials(), id.0);
        tracing::debug!(conn = id.0, remote = ?shared.lock().remote, "transport accepted");
        let (udp, inbox) = match udp {
            Some(u) => (Some((u.addr, u.ctl)), Some(u.inbox)),
            None => (None, None),
        };
        self.hub.register(id, shared.clone(), inbox);
        let link = Link::Acceptor { hub: self.hub.clone(), id, udp };
        driver::spawn(Start {
            socket,
            shared,
            link,
            handlers: self.handlers.clone(),
            spawner: self.spawner.clone(),
        });
    }
}

struct UdpLink {
    addr: SocketAddr,
    ctl: Sender<(SocketAddr, Vec<u8>)>,
    inbox: Arc<Mutex<Inbox>>,
}

/// A listening server. Every accepted connection is served by its [`Handlers`] and is equal to
/// the client once connected: the server may call it too.
///
/// Dropping the server stops accepting and closes every connection; prefer
/// [`shutdown`](Self::shutdown), which lets in-flight calls finish.
pub struct Server {
    hub: Arc<Hub>,
    stop: Arc<Stop>,
    local: Address,
    path: Option<PathGuard>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("local", &self.local).field("stats", &self.stats()).finish()
    }
}

impl Server {
    /// Listens on `addr` (`tcp://host:port` — port 0 picks a free one —, `unix:///path`,
    /// `unix+seqpacket:///path` or `udp://host:port`) and starts accepting on
    /// `config.spawner`. Not async: binding does not wait.
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
            config::for_address(&config.connection, &address, config.max_datagram, config.udp_max_datagram);
        connection.validate()?;
        let (listener, local, path) = Listener::bind(&address, config.unlink_stale_socket)?;
        tracing::info!(addr = %local, name = %config.name, "listening");
        let hub = Arc::new(Hub::new(config.endpoint.clone()));
        let stop = Arc::new(Stop::default());
        let serve = Serve {
            hub: hub.clone(),
            handlers,
            spawner: config.spawner.clone(),
            name: config.name,
            connection,
            stop: stop.clone(),
        };
        match listener {
            Listener::Udp(socket) => config.spawner.spawn(Box::pin(udp_loop(socket, serve))),
            listener => config.spawner.spawn(Box::pin(accept_loop(listener, serve))),
        }
        Ok(Server { hub, stop, local, path })
    }

    /// The address actually listened on (with the real port for `tcp://…:0` and `udp://…:0`).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// The gauges and the endpoint's counters.
    pub fn stats(&self) -> ServerStats {
        let s = self.hub.snapshot();
        ServerStats {
            connections: s.connections,
            handshaking: s.handshaking,
            suspended_sessions: s.suspended,
            associations: s.associations,
            session_memory: s.session_memory,
            endpoint: s.stats,
        }
    }

    /// The connected peer with this HELLO name. Peers that announced an empty name are served
    /// but not tracked.
    pub fn peer(&self, name: &str) -> Option<Peer> {
        self.hub.peer(name).map(Peer::new)
    }

    /// Every connected (or suspended) peer with a name, sorted by name.
    pub fn peers(&self) -> Vec<Peer> {
        self.hub.peers().into_iter().map(Peer::new).collect()
    }

    /// Waits until a peer named `name` is connected, for at most `timeout`.
    pub async fn wait_for_peer(&self, name: &str, timeout: Duration) -> Option<Peer> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(p) = self.peer(name) {
                return Some(p);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            Timer::after(Duration::from_millis(5)).await;
        }
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
        let deadline = deadline.into();
        let calls = self.peers().into_iter().map(|p| async move {
            let r = p.call(method, req, deadline).await;
            (p, r)
        });
        join_all(calls.collect()).await
    }

    /// Graceful shutdown: stops accepting, sends GOAWAY on every connection (suspended sessions
    /// end at once), lets in-flight exchanges finish for up to `grace`, then closes what
    /// remains (those fail with UNAVAILABLE).
    pub async fn shutdown(mut self, grace: Duration) {
        tracing::info!(addr = %self.local, "shutting down");
        self.stop.set();
        self.path.take();
        let conns: Vec<Peer> = self.hub.live().into_iter().map(Peer::new).collect();
        join_all(conns.iter().map(|p| p.shutdown(grace)).collect()).await;
        drop(conns);
        // Let the drivers flush their final frames.
        let idle = async {
            while !self.hub.live().is_empty() {
                Timer::after(Duration::from_millis(5)).await;
            }
        };
        idle.or(async {
            Timer::after(Duration::from_millis(500)).await;
        })
        .await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.set();
        for s in self.hub.live() {
            let mut inner = s.lock();
            inner.conn.close(now(), Status::UNAVAILABLE, b"server stopped");
            inner.wake_driver();
        }
    }
}

async fn accept_loop(listener: Listener, serve: Serve) {
    loop {
        let next = async { Some(listener.accept().await) }.or(async {
            serve.stop.wait().await;
            None
        });
        match next.await {
            None => return,
            Some(Ok((socket, label))) => match serve.hub.accept() {
                Ok(a) => serve.start(socket, a.id, a.token, None),
                Err(refusal) => tracing::warn!(remote = %label, "{refusal}"),
            },
            Some(Err(e)) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

/// UDP server: receives every datagram on the one socket and hands it to the association the
/// endpoint routes it to, creating one for a HELLO from a new address.
async fn udp_loop(socket: Arc<Async<UdpSocket>>, serve: Serve) {
    enum In {
        Datagram(io::Result<(usize, SocketAddr)>),
        Resubmit(SocketAddr, Vec<u8>),
        Stop,
    }
    let (ctl, resubmitted): (Sender<_>, Receiver<_>) = smol::channel::unbounded();
    // Larger than any datagram we accept, so that oversized ones are seen whole and dropped.
    let size = match serve.connection.transport {
        tandem_core::Transport::Datagram { max_datagram } => max_datagram as usize + 1,
        _ => 65536,
    };
    let mut buf = vec![0u8; size];
    loop {
        let input = async { In::Datagram(socket.recv_from(&mut buf).await) }
            .or(async {
                match resubmitted.recv().await {
                    Ok((a, d)) => In::Resubmit(a, d),
                    Err(_) => core::future::pending().await,
                }
            })
            .or(async {
                serve.stop.wait().await;
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
        let is_hello = data.first() == Some(&HELLO);
        match serve.hub.route(from, is_hello) {
            (Route::Existing(_), Some(inbox)) => {
                inbox.lock().unwrap_or_else(|e| e.into_inner()).push(data);
            }
            (Route::Existing(_), None) => {}
            (Route::New(id), _) => {
                let inbox = Arc::new(Mutex::new(Inbox::default()));
                inbox.lock().unwrap_or_else(|e| e.into_inner()).push(data);
                let assoc = Socket::Assoc(Assoc { socket: socket.clone(), peer: from, inbox: inbox.clone() });
                serve.start(assoc, id, None, Some(UdpLink { addr: from, ctl: ctl.clone(), inbox }));
            }
            (Route::Drop, _) => {
                tracing::trace!(%from, "datagram from an unknown address is not a HELLO: dropped")
            }
            (Route::Full, _) => tracing::warn!(
                %from,
                "too many UDP associations (EndpointConfig::max_associations) or connections: HELLO dropped"
            ),
        }
    }
}

/// Polls all futures concurrently; outputs in input order.
async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
