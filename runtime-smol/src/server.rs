//! [`Server`]: accepts connections, tracks connected peers by their HELLO name, and calls one
//! or all of them.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use core::task::Poll;
use core::time::Duration;
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_io::Async;
use smol::channel::{Receiver, Sender};

use async_io::Timer;
use futures_lite::future::{poll_fn, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use smol::Task;
use tandem_core::addr::Address;
use tandem_core::typed::Unary;
use tandem_core::{Role, Status, Transport};

use crate::conn;
use crate::error::{CallError, Error};
use crate::options::Options;
use crate::peer::Peer;
use crate::shared::Shared;
use crate::transport::{Assoc, Inbox, Listener, PathGuard, Socket, HELLO};

/// Messages from UDP associations to the server's receive loop.
pub(crate) enum UdpCtl {
    /// A different HELLO superseded the association at this address: start a new one with it.
    Resubmit(SocketAddr, Vec<u8>),
    /// The association at this address has ended: forget it.
    Finished(SocketAddr),
}

/// Server state shared with its connections.
pub(crate) struct ServerShared {
    /// Connected peers by name.
    peers: Mutex<HashMap<String, Peer>>,
    /// Every live connection, named or still in its handshake.
    conns: Mutex<HashMap<u64, Weak<Shared>>>,
    /// Resumable sessions by token (SPEC.md §13).
    sessions: Mutex<HashMap<Vec<u8>, Weak<Shared>>>,
    /// Sessions suspended now.
    suspended: AtomicUsize,
    pub(crate) max_suspended: usize,
    sessions_dropped: AtomicU64,
    hellos_dropped: AtomicU64,
    /// UDP: the receive loop's control channel.
    udp_ctl: Option<Sender<UdpCtl>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Gives back most of a table's memory once it holds less than a quarter of what it has room
/// for: a `HashMap` never shrinks by itself, so one burst of connections (or of suspended
/// sessions) would otherwise size the server's tables for good. Halving only below a quarter
/// keeps the cost amortized (no shrink/grow flapping around one size).
fn shrink<K: Eq + core::hash::Hash, V>(m: &mut HashMap<K, V>) {
    const KEEP: usize = 64;
    if m.capacity() > KEEP && m.len() < m.capacity() / 4 {
        m.shrink_to((m.len() * 2).max(KEEP));
    }
}

impl ServerShared {
    /// A connection completed its handshake: track it by name. Called by its driver with the
    /// connection's lock held (so that the peer is findable before the handshake answer goes
    /// out); returns the stale connection from the same peer, which the caller closes once
    /// the lock is released.
    /// Peers with an empty name are served but not tracked (they would replace each other).
    pub(crate) fn on_connected(&self, shared: &Arc<Shared>) -> Option<Peer> {
        let name = shared.info.get().map(|i| i.name.clone()).unwrap_or_default();
        if name.is_empty() {
            tracing::debug!(conn = shared.id, "anonymous peer: not tracked by name");
            return None;
        }
        let peer = Peer::from_shared(shared.clone());
        let old = lock(&self.peers).insert(name.clone(), peer);
        // A suspended session is not stale: its client may still resume it (SPEC.md §13.3: a
        // new session does not end it). It stays reachable through its handles and ends by
        // itself when its grace period expires.
        let old = old.filter(|o| !Arc::ptr_eq(&o.shared, shared));
        if let Some(o) = &old {
            if o.shared.lock().conn.state() == tandem_core::State::Suspended {
                tracing::info!(peer = %name, old = o.shared.id, new = shared.id, "peer started a new session while its old one is suspended: keeping the old one until it expires");
                drop(old);
                return None;
            }
        }
        if let Some(old) = &old {
            tracing::info!(peer = %name, old = old.shared.id, new = shared.id, "peer reconnected: closing its stale connection");
        }
        old
    }

    /// A connection ended: forget it.
    pub(crate) fn on_closed(&self, shared: &Arc<Shared>) {
        {
            let mut conns = lock(&self.conns);
            conns.remove(&shared.id);
            shrink(&mut conns);
        }
        {
            let mut sessions = lock(&self.sessions);
            sessions.retain(|_, w| w.strong_count() > 0 && !core::ptr::eq(w.as_ptr(), Arc::as_ptr(shared)));
            shrink(&mut sessions);
        }
        let mut peers = lock(&self.peers);
        let name = shared.info.get().map(|i| i.name.clone());
        let ours = name.as_ref().and_then(|n| peers.get(n)).is_some_and(|p| Arc::ptr_eq(&p.shared, shared));
        let removed = match (ours, name) {
            (true, Some(n)) => peers.remove(&n),
            _ => None,
        };
        shrink(&mut peers);
        drop(peers);
        drop(removed);
    }

    /// Tracks a new connection (before its driver runs), and its session when resumable.
    pub(crate) fn register(&self, shared: &Arc<Shared>, token: &[u8]) {
        lock(&self.conns).insert(shared.id, Arc::downgrade(shared));
        if !token.is_empty() {
            lock(&self.sessions).insert(token.to_vec(), Arc::downgrade(shared));
        }
    }

    /// The live session with this token.
    pub(crate) fn session(&self, token: &[u8]) -> Option<Arc<Shared>> {
        lock(&self.sessions).get(token).and_then(Weak::upgrade)
    }

    /// A session was suspended. False (and counted as dropped) when that exceeds
    /// `Options::max_suspended_sessions`: the caller ends it.
    pub(crate) fn suspended(&self) -> bool {
        let n = self.suspended.fetch_add(1, Ordering::AcqRel) + 1;
        if n > self.max_suspended {
            self.sessions_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// A suspended session was resumed or ended.
    pub(crate) fn unsuspended(&self) {
        let _ = self.suspended.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// A UDP association ended; when superseded, its last HELLO starts the new association.
    pub(crate) fn assoc_finished(&self, a: &Assoc, superseded: bool) {
        let hello = {
            let mut inbox = lock(&a.inbox);
            inbox.closed = true;
            inbox.queue.clear();
            inbox.last_hello.take()
        };
        let Some(ctl) = &self.udp_ctl else { return };
        if let (true, Some(h)) = (superseded, hello) {
            tracing::debug!(peer = %a.peer, "association superseded by a new HELLO");
            let _ = ctl.try_send(UdpCtl::Resubmit(a.peer, h));
        }
        let _ = ctl.try_send(UdpCtl::Finished(a.peer));
    }

    fn live(&self) -> Vec<Arc<Shared>> {
        lock(&self.conns).values().filter_map(Weak::upgrade).collect()
    }
}

/// A listening endpoint. Every accepted connection is served by the [`Router`](crate::Router)
/// of its [`Options`], and is equal to the client once connected: the server may call it too.
///
/// Dropping the server stops accepting and closes every connection; prefer
/// [`shutdown`](Self::shutdown), which lets in-flight calls finish.
pub struct Server {
    shared: Arc<ServerShared>,
    accept: Option<Task<()>>,
    local: Address,
    path: Option<PathGuard>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("local", &self.local).field("peers", &self.peer_names()).finish()
    }
}

impl Server {
    /// Listens on `addr` (`tcp://host:port` — port 0 picks a free one —, `unix:///path`,
    /// `unix+seqpacket:///path` or `udp://host:port`) and starts accepting.
    ///
    /// On `udp://` one socket serves every client: datagrams are demultiplexed by source
    /// address into associations (SPEC.md §14), one created per address whose first datagram
    /// is a HELLO, at most [`Options::max_associations`] at once.
    ///
    /// On the other transports every connection is offered session resumption unless
    /// [`Options::resumption`] is off: a client that loses its transport may come back within
    /// `Config::session_grace` and its calls complete exactly once. Must be called within a `smol` context
    /// or with the global executor available (the default).
    ///
    /// A Unix socket path that already exists is refused unless
    /// [`Options::remove_stale_socket`] is set; the socket file is removed when the server stops.
    pub fn bind(addr: &str, options: Options) -> Result<Server, Error> {
        let address: Address = addr.parse()?;
        let mut config = options.config.clone();
        config.transport = match &address {
            Address::Udp(_) => Transport::Datagram { max_datagram: options.datagram_size(true) },
            Address::UnixSeqpacket(_) => Transport::Packet { max_datagram: options.datagram_size(false) },
            _ => Transport::Stream,
        };
        config.validate()?;
        let (listener, local, path) = Listener::bind(&address, options.remove_stale_socket)?;
        tracing::info!(addr = %local, name = %options.name, "listening");
        let (ctl_tx, ctl_rx) = smol::channel::unbounded();
        let udp = matches!(listener, Listener::Udp(_));
        let shared = Arc::new(ServerShared {
            peers: Mutex::new(HashMap::new()),
            conns: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            suspended: AtomicUsize::new(0),
            max_suspended: options.max_suspended_sessions,
            sessions_dropped: AtomicU64::new(0),
            hellos_dropped: AtomicU64::new(0),
            udp_ctl: udp.then_some(ctl_tx),
        });
        let accept = match listener {
            Listener::Udp(socket) => smol::spawn(udp_loop(socket, options, Arc::downgrade(&shared), ctl_rx)),
            listener => smol::spawn(accept_loop(listener, options, Arc::downgrade(&shared))),
        };
        Ok(Server { shared, accept: Some(accept), local, path })
    }

    /// The address actually listened on (with the real port for `tcp://…:0` and `udp://…:0`).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// Resumable sessions this server keeps now (connected or suspended).
    pub fn sessions(&self) -> usize {
        lock(&self.shared.sessions).values().filter(|w| w.strong_count() > 0).count()
    }

    /// Sessions suspended now, waiting for their client to reconnect.
    pub fn suspended_sessions(&self) -> usize {
        self.shared.suspended.load(Ordering::Acquire)
    }

    /// Sessions ended at once because suspending them would have exceeded
    /// [`Options::max_suspended_sessions`].
    pub fn sessions_dropped(&self) -> u64 {
        self.shared.sessions_dropped.load(Ordering::Relaxed)
    }

    /// `udp://`: HELLOs from new addresses dropped because [`Options::max_associations`]
    /// associations were already served.
    pub fn hellos_dropped(&self) -> u64 {
        self.shared.hellos_dropped.load(Ordering::Relaxed)
    }

    /// The connected peer with this HELLO name. Peers that announced an empty name are served
    /// but not tracked.
    pub fn peer(&self, name: &str) -> Option<Peer> {
        lock(&self.shared.peers).get(name).cloned()
    }

    /// Every connected peer, sorted by name.
    pub fn peers(&self) -> Vec<Peer> {
        let mut v: Vec<Peer> = lock(&self.shared.peers).values().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// Names of the connected peers, sorted.
    pub fn peer_names(&self) -> Vec<String> {
        self.peers().iter().map(|p| p.name().to_owned()).collect()
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

    /// Calls `method` on every connected peer at once; one result per peer, sorted by name.
    pub async fn call_all<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Vec<(String, Result<Resp, CallError>)>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        let peers = self.peers();
        let calls =
            peers.iter().map(|p| async move { (p.name().to_owned(), p.call(method, req, timeout).await) });
        join_all(calls.collect()).await
    }

    /// Graceful shutdown: stops accepting, sends GOAWAY on every connection, lets in-flight
    /// calls finish for up to `grace`, then closes what remains (those fail with UNAVAILABLE).
    pub async fn shutdown(mut self, grace: Duration) {
        tracing::info!(addr = %self.local, "shutting down");
        if let Some(t) = self.accept.take() {
            t.cancel().await;
        }
        self.path.take();
        let conns: Vec<Peer> = self.shared.live().into_iter().map(Peer::from_shared).collect();
        for p in &conns {
            // A suspended session has no transport to drain on: end it now.
            if p.shared.lock().conn.state() == tandem_core::State::Suspended {
                p.close_with(Status::UNAVAILABLE, "server shutting down");
            }
        }
        join_all(conns.iter().map(|p| p.shutdown(grace)).collect()).await;
        // Let the drivers flush their final frames.
        let idle = async {
            while !self.shared.live().is_empty() {
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
        self.accept.take();
        for s in self.shared.live() {
            Peer::from_shared(s).close_with(Status::UNAVAILABLE, "server stopped");
        }
        // Dropped outside the map's lock: dropping a handle may take its connection's lock.
        let peers = core::mem::take(&mut *lock(&self.shared.peers));
        drop(peers);
    }
}

async fn accept_loop(listener: Listener, options: Options, server: Weak<ServerShared>) {
    loop {
        match listener.accept().await {
            Ok((socket, label)) => {
                let Some(srv) = server.upgrade() else { return };
                match conn::start(socket, Role::Acceptor, &options, Some(srv.clone()), None, &label) {
                    Ok(peer) => drop(peer),
                    Err(e) => tracing::error!(error = %e, "cannot start connection"),
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

/// UDP server: receives every datagram on the one socket and hands it to the association of
/// its source address, creating one for a HELLO from a new address.
async fn udp_loop(
    socket: Arc<Async<UdpSocket>>,
    options: Options,
    server: Weak<ServerShared>,
    ctl: Receiver<UdpCtl>,
) {
    enum In {
        Datagram(io::Result<(usize, SocketAddr)>),
        Ctl(UdpCtl),
    }
    let mut table: HashMap<SocketAddr, Arc<Mutex<Inbox>>> = HashMap::new();
    // Larger than any datagram we accept, so that oversized ones are seen whole and dropped.
    let mut buf = vec![0u8; options.datagram_size(true) as usize + 1];
    loop {
        let input = async { In::Datagram(socket.recv_from(&mut buf).await) }
            .or(async {
                match ctl.recv().await {
                    Ok(c) => In::Ctl(c),
                    Err(_) => core::future::pending().await,
                }
            })
            .await;
        let (from, data) = match input {
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
            In::Ctl(UdpCtl::Finished(from)) => {
                if table.get(&from).is_some_and(|i| lock(i).closed) {
                    table.remove(&from);
                }
                continue;
            }
            In::Ctl(UdpCtl::Resubmit(from, data)) => (from, data),
        };
        if let Some(inbox) = table.get(&from) {
            let mut inbox = lock(inbox);
            if !inbox.closed {
                inbox.push(data);
                continue;
            }
        }
        table.remove(&from);
        if data.first() != Some(&HELLO) {
            tracing::trace!(%from, "datagram from an unknown address does not start with HELLO: dropped");
            continue;
        }
        let Some(srv) = server.upgrade() else { return };
        if table.len() >= options.max_associations {
            table.retain(|_, i| !lock(i).closed);
        }
        if table.len() >= options.max_associations {
            srv.hellos_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                %from,
                limit = options.max_associations,
                "too many UDP associations (Options::max_associations): HELLO dropped"
            );
            continue;
        }
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        lock(&inbox).push(data);
        table.insert(from, inbox.clone());
        let assoc = Socket::Assoc(Assoc { socket: socket.clone(), peer: from, inbox });
        match conn::start(assoc, Role::Acceptor, &options, Some(srv), None, &from.to_string()) {
            Ok(peer) => drop(peer),
            Err(e) => tracing::error!(error = %e, "cannot start association"),
        }
    }
}

/// Polls all futures concurrently; outputs in input order.
pub(crate) async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
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
