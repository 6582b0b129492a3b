//! [`Server`]: listens, accepts connections, and tracks connected peers by name.

use crate::client::DEFAULT_MAX_DATAGRAM;
use crate::clock;
use crate::conn::{lock, SessionHooks, Shared};
use crate::driver::{self, Hooks};
use crate::error::{CallError, Error};
use crate::handlers::Handlers;
use crate::peer::{Peer, PendingCall};
use crate::pool::{self, Pool, PoolStats};
use crate::transport::{self, Listener, Socket};
use core::time::Duration;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::{self, JoinHandle};
use tandem_core::addr::Address;
use tandem_core::typed::Unary;
use tandem_core::{Config, ConnectionError, Role, Status};

/// Default number of handler threads of a server.
pub const DEFAULT_SERVER_WORKERS: usize = 16;

/// How a server listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The name announced in HELLO.
    pub name: String,
    /// Protocol limits and timers for every connection (keepalive, idle timeout, …). The
    /// transport field is set from the address.
    pub connection: Config,
    /// Handlers running at once, shared by all connections (at least 1): about the number of
    /// cores the handlers may keep busy. A handler waiting inside the runtime (stream credit
    /// or items, the answer to a call it made, [`Ctx::wait_cancelled`](crate::Ctx::wait_cancelled),
    /// [`Ctx::blocking`](crate::Ctx::blocking)) is *parked* and does not count: the pool runs
    /// another handler meanwhile, on another thread (up to [`max_handler_threads`](Self::max_handler_threads)).
    /// Requests beyond it wait in per-connection queues served round-robin, and a connection
    /// with no handler running is served at once even when all `workers` are busy, so no peer
    /// can make another wait for its handlers. Default 16.
    pub workers: usize,
    /// Hard cap on the threads of the handler pool: `workers` plus those running in place of
    /// parked handlers. At the cap, new requests wait (round-robin) until a handler finishes;
    /// the first time a warning is logged, and every time is counted
    /// ([`Server::handler_pool`]). The pool can serve every peer holding all its announced
    /// slots (`max_concurrent_calls + max_concurrent_streams`) with parked handlers for
    /// `(max_handler_threads − workers) / slots` peers at once; if not even one peer's slots
    /// fit, the server announces less (logged). Default 1024.
    pub max_handler_threads: usize,
    /// Signals (unreliable notifications) queued per connection while its handlers are busy;
    /// beyond it further signals are dropped, as a lost datagram would be (logged once,
    /// counted in [`Server::handler_pool`]). Default 256.
    pub max_queued_signals: usize,
    /// Most connections in the handshake at once (accepted, HELLO not yet completed; each
    /// holds a thread). At the limit the server stops accepting until a handshake completes
    /// or times out (`connection.handshake_timeout`): new clients wait in the listen backlog
    /// (logged, counted by [`Server::accept_pauses`]). UDP associations are bounded by
    /// [`max_associations`](Self::max_associations) instead. Default 256.
    pub max_handshaking: usize,
    /// A Unix listener whose socket path exists refuses to start; with this set, a stale
    /// socket there (one nobody listens on) is removed first. Default false.
    pub unlink_stale_socket: bool,
    /// Largest packet on a SEQPACKET socket. Default 64 KiB.
    pub max_datagram: u32,
    /// Offer session resumption (SPEC.md §13) to every client: a connection whose transport
    /// is lost stays open for `connection.session_grace` (default 30 s), its handlers keep
    /// running, and a client that reconnects in time resumes it with exactly-once execution.
    /// Default true.
    pub resume: bool,
    /// Most sessions kept suspended (waiting for their client to come back) at once; a
    /// session that would exceed it is closed at once with RESOURCE_EXHAUSTED (logged as a
    /// warning, counted by [`Server::dropped_sessions`]). Default 1024.
    pub max_suspended_sessions: usize,
    /// UDP (`udp://`): largest datagram (SPEC.md §14). Default 1200.
    pub udp_max_datagram: u32,
    /// UDP: most associations (one per client address) at once; HELLOs from new addresses
    /// beyond it are dropped (logged, counted by [`Server::dropped_hellos`]) and those clients
    /// see a handshake timeout. Default 1024.
    pub max_associations: usize,
}

/// Default [`ServerConfig::max_associations`].
pub const DEFAULT_MAX_ASSOCIATIONS: usize = 1024;
/// Default largest UDP datagram ([`ServerConfig::udp_max_datagram`],
/// [`ClientConfig::udp_max_datagram`](crate::ClientConfig::udp_max_datagram)): 1200 bytes,
/// which no IPv4 or IPv6 path fragments.
pub const DEFAULT_UDP_MAX_DATAGRAM: u32 = 1200;

/// Default [`ServerConfig::max_suspended_sessions`].
pub const DEFAULT_MAX_SUSPENDED_SESSIONS: usize = 1024;
/// Default [`ServerConfig::max_handler_threads`] (and
/// [`ClientConfig::max_handler_threads`](crate::ClientConfig::max_handler_threads)).
pub const DEFAULT_MAX_HANDLER_THREADS: usize = 1024;
/// Default [`ServerConfig::max_queued_signals`] (and
/// [`ClientConfig::max_queued_signals`](crate::ClientConfig::max_queued_signals)).
pub const DEFAULT_MAX_QUEUED_SIGNALS: usize = 256;
/// Default [`ServerConfig::max_handshaking`].
pub const DEFAULT_MAX_HANDSHAKING: usize = 256;

impl ServerConfig {
    /// Defaults, with the given name.
    pub fn new(name: impl Into<String>) -> Self {
        ServerConfig {
            name: name.into(),
            connection: Config::default(),
            workers: DEFAULT_SERVER_WORKERS,
            max_handler_threads: DEFAULT_MAX_HANDLER_THREADS,
            max_queued_signals: DEFAULT_MAX_QUEUED_SIGNALS,
            max_handshaking: DEFAULT_MAX_HANDSHAKING,
            unlink_stale_socket: false,
            max_datagram: DEFAULT_MAX_DATAGRAM,
            resume: true,
            max_suspended_sessions: DEFAULT_MAX_SUSPENDED_SESSIONS,
            udp_max_datagram: DEFAULT_UDP_MAX_DATAGRAM,
            max_associations: DEFAULT_MAX_ASSOCIATIONS,
        }
    }
}

struct State {
    config: ServerConfig,
    handlers: Arc<Handlers>,
    pool: Pool,
    /// Connected peers by the name from their HELLO.
    peers: Mutex<HashMap<String, Peer>>,
    /// Every live connection, handshaking or not.
    conns: Mutex<Vec<Peer>>,
    changed: Condvar,
    /// Resumable sessions by token (registered once connected).
    sessions: Mutex<HashMap<Vec<u8>, Weak<Shared>>>,
    /// Sessions suspended now.
    suspended: AtomicUsize,
    /// Sessions closed because `max_suspended_sessions` was reached.
    dropped: AtomicU64,
    /// UDP associations by client address.
    assocs: Mutex<HashMap<SocketAddr, Peer>>,
    /// UDP HELLOs dropped because `max_associations` was reached.
    dropped_hellos: AtomicU64,
    /// Connections accepted whose handshake has not completed (not UDP).
    handshaking: AtomicUsize,
    /// Times accepting paused because `max_handshaking` was reached.
    accept_pauses: AtomicU64,
    stop: AtomicBool,
    waker_tx: UnixStream,
}

/// A listening server. Handlers run on a shared worker pool; every connected peer can be
/// called back by name ([`Server::peer`]) or all at once ([`Server::call_all`]).
///
/// A peer that connects again under a name already connected replaces the old connection,
/// which is closed (its pending calls fail with UNAVAILABLE) unless it is a suspended session
/// (SPEC.md §13): that one stays until resumed (it then answers to the name again) or expired.
///
/// Dropping the server closes everything at once; [`Server::shutdown`] does it gracefully.
/// A Unix socket file is removed either way.
pub struct Server {
    state: Arc<State>,
    local: Address,
    socket_file: Option<(PathBuf, u64)>,
    accept: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Server").field("local", &self.local).finish()
    }
}

fn key_of(peer: &Peer) -> String {
    match peer.name() {
        "" => format!("#{}", peer.shared().id),
        n => n.to_string(),
    }
}

impl Server {
    /// Listens on `addr` (`tcp://HOST:PORT`, port 0 for any; `unix:///PATH`;
    /// `unix+seqpacket:///PATH`; `udp://HOST:PORT`) and starts accepting.
    ///
    /// Over UDP one socket serves every client: datagrams are demultiplexed by source address
    /// into associations, created only by a HELLO and bounded by
    /// [`ServerConfig::max_associations`].
    pub fn bind(addr: &str, config: ServerConfig, handlers: Handlers) -> Result<Server, Error> {
        Self::bind_to(&addr.parse::<Address>()?, config, handlers)
    }

    /// Listens on a parsed address.
    pub fn bind_to(addr: &Address, mut config: ServerConfig, handlers: Handlers) -> Result<Server, Error> {
        config.connection.validate()?;
        let limits = pool::PoolLimits {
            workers: config.workers,
            max_threads: config.max_handler_threads,
            max_queued_signals: config.max_queued_signals,
        };
        pool::fit_announced(&mut config.connection, limits, "ServerConfig");
        let (listener, local) = if let Address::Udp(_) = addr {
            let udp = transport::bind_udp(addr)?;
            let local = Address::Udp(udp.local_addr().map(|a| a.to_string()).unwrap_or_default());
            (Err(Arc::new(udp)), local)
        } else {
            let l = Listener::bind(addr, config.unlink_stale_socket)?;
            let local = l.local_addr();
            (Ok(l), local)
        };
        let socket_file = listener.as_ref().ok().and_then(Listener::path).and_then(|p| {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(p).ok().map(|m| (p.to_path_buf(), m.ino()))
        });
        let io_err = |source| Error::Io { context: format!("cannot start the server on {addr}"), source };
        let (waker_tx, waker_rx) = UnixStream::pair().map_err(io_err)?;
        waker_tx.set_nonblocking(true).map_err(io_err)?;
        waker_rx.set_nonblocking(true).map_err(io_err)?;
        let pool = Pool::new(limits, "tandem-server");
        let state = Arc::new(State {
            config,
            handlers: Arc::new(handlers),
            pool,
            peers: Mutex::new(HashMap::new()),
            conns: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            sessions: Mutex::new(HashMap::new()),
            suspended: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            assocs: Mutex::new(HashMap::new()),
            dropped_hellos: AtomicU64::new(0),
            handshaking: AtomicUsize::new(0),
            accept_pauses: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            waker_tx,
        });
        let weak = Arc::downgrade(&state);
        let accept = match listener {
            Ok(listener) => thread::Builder::new()
                .name("tandem-accept".into())
                .spawn(move || accept_loop(listener, waker_rx, weak)),
            Err(udp) => {
                thread::Builder::new().name("tandem-udp".into()).spawn(move || udp_loop(udp, waker_rx, weak))
            }
        }
        .map_err(io_err)?;
        tracing::info!(%local, "listening");
        Ok(Server { state, local, socket_file, accept: Some(accept) })
    }

    /// The address actually listened on (with the real port for `tcp://…:0`).
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// The connected peer that announced `name`.
    pub fn peer(&self, name: &str) -> Option<Peer> {
        lock(&self.state.peers).get(name).cloned()
    }

    /// Waits up to `timeout` for a peer named `name` to connect.
    pub fn wait_for_peer(&self, name: &str, timeout: Duration) -> Option<Peer> {
        let end = std::time::Instant::now() + timeout;
        let mut peers = lock(&self.state.peers);
        loop {
            if let Some(p) = peers.get(name) {
                return Some(p.clone());
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            peers = self.state.changed.wait_timeout(peers, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Every live connection (handshaking, open or suspended), including those of sessions
    /// waiting to be resumed: read their [`Peer::reply_cache_len`] or [`Peer::stats`].
    pub fn connections(&self) -> Vec<Peer> {
        lock(&self.state.conns).clone()
    }

    /// Sessions suspended now, waiting for their client to reconnect.
    pub fn suspended_sessions(&self) -> usize {
        self.state.suspended.load(Ordering::Acquire)
    }

    /// UDP HELLOs dropped because [`ServerConfig::max_associations`] was reached.
    pub fn dropped_hellos(&self) -> u64 {
        self.state.dropped_hellos.load(Ordering::Acquire)
    }

    /// Sessions closed because [`ServerConfig::max_suspended_sessions`] was reached.
    pub fn dropped_sessions(&self) -> u64 {
        self.state.dropped.load(Ordering::Acquire)
    }

    /// Connections in the handshake now (accepted, HELLO exchange not complete; not UDP).
    pub fn handshaking(&self) -> usize {
        self.state.handshaking.load(Ordering::Acquire)
    }

    /// Times the server stopped accepting because [`ServerConfig::max_handshaking`]
    /// handshakes were in progress.
    pub fn accept_pauses(&self) -> u64 {
        self.state.accept_pauses.load(Ordering::Acquire)
    }

    /// The handler pool's counters: threads, running and parked handlers, queued requests,
    /// thread-cap hits, dropped signals.
    pub fn handler_pool(&self) -> PoolStats {
        self.state.pool.stats()
    }

    /// Every connected peer, by name (unnamed peers appear as `#N`).
    pub fn peers(&self) -> Vec<(String, Peer)> {
        let mut v: Vec<_> = lock(&self.state.peers).iter().map(|(k, p)| (k.clone(), p.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Calls `method` on every connected peer at once and returns one result per peer, by name.
    pub fn call_all<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        timeout: impl Into<Option<Duration>>,
    ) -> Vec<(String, Result<Resp, CallError>)>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        let timeout = timeout.into();
        let started: Vec<(String, Result<PendingCall<Resp>, CallError>)> =
            self.peers().into_iter().map(|(name, p)| (name, p.start_call(method, req, timeout))).collect();
        started.into_iter().map(|(name, c)| (name, c.and_then(PendingCall::wait))).collect()
    }

    /// Graceful shutdown: stop accepting, send GOAWAY on every connection, let open exchanges
    /// finish for up to `grace`, then close what is left and remove the socket file.
    pub fn shutdown(mut self, grace: Duration) {
        self.stop(grace);
    }

    fn stop(&mut self, grace: Duration) {
        let Some(accept) = self.accept.take() else { return };
        self.state.stop.store(true, Ordering::Release);
        let _ = (&self.state.waker_tx).write(&[1]);
        let _ = accept.join();
        if let Some((path, ino)) = self.socket_file.take() {
            use std::os::unix::fs::MetadataExt;
            // Only remove the file we created (another server may own the path by now).
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == ino) {
                let _ = std::fs::remove_file(&path);
            }
        }
        let conns = lock(&self.state.conns).clone();
        tracing::info!(local = %self.local, connections = conns.len(), "shutting down");
        for c in &conns {
            if c.shared().lock().connected {
                c.go_away();
            } else {
                // Still in the handshake: nothing in flight to wait for.
                c.close_with(Status::UNAVAILABLE, "server shutting down");
            }
        }
        let end = std::time::Instant::now() + grace;
        for c in &conns {
            c.wait_closed(end.saturating_duration_since(std::time::Instant::now()));
        }
        for c in &conns {
            c.close_with(Status::UNAVAILABLE, "server shutdown: grace period elapsed");
        }
        for c in &conns {
            c.wait_closed(Duration::from_secs(2));
        }
        self.state.pool.shutdown();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}

fn accept_loop(listener: Listener, waker: UnixStream, state: Weak<State>) {
    let mut paused = false;
    loop {
        {
            let waker = PollFd::new(waker.as_fd(), PollFlags::POLLIN);
            if paused {
                // At `max_handshaking`: a finished handshake wakes us through the waker.
                let _ = nix::poll::poll(&mut [waker], PollTimeout::NONE);
            } else {
                let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN), waker];
                let _ = nix::poll::poll(&mut fds, PollTimeout::NONE);
            }
        }
        let mut b = [0u8; 16];
        while matches!((&waker).read(&mut b), Ok(n) if n > 0) {}
        let Some(state) = state.upgrade() else { return };
        if state.stop.load(Ordering::Acquire) {
            return;
        }
        loop {
            let max = state.config.max_handshaking.max(1);
            let n = state.handshaking.load(Ordering::Acquire);
            if n >= max {
                if !paused {
                    paused = true;
                    let pauses = state.accept_pauses.fetch_add(1, Ordering::AcqRel) + 1;
                    tracing::warn!(
                        handshaking = n,
                        max,
                        pauses,
                        "too many connections in the handshake: not accepting until one completes or times out \
                         (new clients wait in the listen backlog; raise ServerConfig::max_handshaking or \
                         shorten Config::handshake_timeout)"
                    );
                }
                break;
            }
            paused = false;
            match listener.accept() {
                Ok(socket) => {
                    start_connection(&state, socket);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
    }
}

fn start_connection(state: &Arc<State>, socket: crate::transport::Socket) -> Option<Arc<Shared>> {
    let c = &state.config;
    // No resumption over UDP (SPEC.md §14).
    let resume = c.resume && !socket.is_datagram();
    let max_datagram = if socket.is_datagram() { c.udp_max_datagram } else { c.max_datagram };
    let token = if resume { session_token() } else { [0u8; 16] };
    let token: &[u8] = if resume { &token } else { &[] };
    let shared = match Shared::new(
        socket,
        Role::Acceptor,
        c.connection.clone(),
        &c.name,
        max_datagram,
        token,
        None,
        Arc::clone(&state.handlers),
        &state.pool,
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot set up an accepted connection: {e}");
            return None;
        }
    };
    tracing::debug!(conn = shared.id, "accepted");
    if resume {
        let (w1, w2) = (Arc::downgrade(state), Arc::downgrade(state));
        let max = c.max_suspended_sessions;
        let id = shared.id;
        let me = Arc::downgrade(&shared);
        let _ = shared.session.set(SessionHooks {
            lookup: Box::new(move |token| {
                let s = w1.upgrade()?;
                let found = lock(&s.sessions).get(token).and_then(Weak::upgrade);
                found
            }),
            suspended: Box::new(move |now_suspended| {
                let Some(s) = w2.upgrade() else { return true };
                if !now_suspended {
                    let _ =
                        s.suspended.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
                    // Resumed: the session answers to its peer's name again.
                    if let Some(me) = me.upgrade() {
                        let p = Peer::from_shared(me);
                        if !p.is_closed() {
                            lock(&s.peers).insert(key_of(&p), p);
                            s.changed.notify_all();
                        }
                    }
                    return true;
                }
                let admitted = s
                    .suspended
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
                if admitted.is_err() {
                    s.dropped.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(
                        conn = id,
                        max,
                        "too many suspended sessions: closing this one instead of keeping it for its client \
                         (its calls fail with UNAVAILABLE); raise ServerConfig::max_suspended_sessions \
                         or shorten Config::session_grace"
                    );
                    return false;
                }
                true
            }),
        });
    }
    let peer = Peer::from_shared(Arc::clone(&shared));
    lock(&state.conns).push(peer);
    // Counts against `max_handshaking` until the handshake completes or the connection ends.
    let in_handshake = Arc::new(AtomicBool::new(!shared.datagram));
    if !shared.datagram {
        state.handshaking.fetch_add(1, Ordering::AcqRel);
    }
    let (w1, w2) = (Arc::downgrade(state), Arc::downgrade(state));
    let (hs, hs_failed) = (Arc::clone(&in_handshake), Arc::clone(&in_handshake));
    let hooks = Hooks {
        on_connected: Some(Box::new(move |p: &Peer| {
            if let Some(s) = w1.upgrade() {
                handshake_done(&s, &hs);
                register(&s, p);
            }
        })),
        on_finished: Some(Box::new(move |p: &Peer| {
            if let Some(s) = w2.upgrade() {
                handshake_done(&s, &in_handshake);
                unregister(&s, p);
            }
        })),
    };
    if let Err(e) = driver::spawn(Arc::clone(&shared), hooks) {
        tracing::warn!("cannot start a connection thread: {e}");
        handshake_done(state, &hs_failed);
        let p = Peer::from_shared(Arc::clone(&shared));
        lock(&state.conns).retain(|q| !q.same_connection(&p));
        return None;
    }
    Some(shared)
}

/// The UDP server's receive loop: one socket, datagrams demultiplexed by source address into
/// associations (SPEC.md §14.1).
fn udp_loop(sock: Arc<UdpSocket>, waker: UnixStream, state: Weak<State>) {
    let size = state.upgrade().map_or(DEFAULT_UDP_MAX_DATAGRAM, |s| s.config.udp_max_datagram) as usize;
    // One byte more than the largest legal datagram: an oversized one is seen, not truncated.
    let mut buf = vec![0u8; size + 1];
    loop {
        {
            let mut fds =
                [PollFd::new(sock.as_fd(), PollFlags::POLLIN), PollFd::new(waker.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, PollTimeout::NONE);
        }
        let mut b = [0u8; 16];
        while matches!((&waker).read(&mut b), Ok(n) if n > 0) {}
        let Some(state) = state.upgrade() else { return };
        if state.stop.load(Ordering::Acquire) {
            return;
        }
        for _ in 0..64 {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => on_datagram(&state, &sock, from, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("UDP receive failed: {e}");
                    break;
                }
            }
        }
    }
}

/// The HELLO frame type: the only first datagram that creates an association (SPEC.md §14.1).
const HELLO: u8 = 0x01;

fn on_datagram(state: &Arc<State>, sock: &Arc<UdpSocket>, from: SocketAddr, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let existing = lock(&state.assocs).get(&from).cloned();
    if let Some(p) = existing {
        let sh = p.shared();
        let replace = {
            let mut g = sh.lock();
            if g.closed.is_some() {
                // Over: a new HELLO from that address starts a new association.
                true
            } else {
                sh.feed(&mut g, clock::now(), data);
                g.closed == Some(ConnectionError::Superseded)
            }
        };
        sh.flush_out();
        sh.wake_driver();
        if !replace {
            return;
        }
        let mut a = lock(&state.assocs);
        if a.get(&from).is_some_and(|q| q.same_connection(&p)) {
            a.remove(&from);
        }
    }
    if data[0] != HELLO {
        tracing::trace!(%from, "datagram from an unknown address is not a HELLO; dropped");
        return;
    }
    let max = state.config.max_associations;
    if lock(&state.assocs).len() >= max {
        let n = state.dropped_hellos.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::warn!(
            %from,
            max,
            dropped = n,
            "too many UDP associations: HELLO dropped (raise ServerConfig::max_associations)"
        );
        return;
    }
    let Some(shared) = start_connection(state, Socket::UdpPeer(Arc::clone(sock), from)) else { return };
    lock(&state.assocs).insert(from, Peer::from_shared(Arc::clone(&shared)));
    {
        let mut g = shared.lock();
        shared.feed(&mut g, clock::now(), data);
    }
    shared.flush_out();
    shared.wake_driver();
}

/// A fresh session token: 16 bytes from the standard library's randomly keyed hashers (no RNG
/// crate in the workspace; see `driver::random_u64`).
fn session_token() -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&driver::random_u64().to_le_bytes());
    t[8..].copy_from_slice(&driver::random_u64().to_le_bytes());
    t
}

/// A connection left the handshake (completed it, or ended): it no longer counts against
/// `max_handshaking`; wake the accept loop if it paused at the limit.
fn handshake_done(state: &State, in_handshake: &AtomicBool) {
    if !in_handshake.swap(false, Ordering::AcqRel) {
        return;
    }
    let before = state.handshaking.fetch_sub(1, Ordering::AcqRel);
    if before >= state.config.max_handshaking.max(1) {
        let _ = (&state.waker_tx).write(&[1]);
    }
}

fn register(state: &State, peer: &Peer) {
    {
        let shared = peer.shared();
        let token = shared.lock().conn.session_token().to_vec();
        if !token.is_empty() {
            lock(&state.sessions).insert(token, Arc::downgrade(shared));
        }
    }
    let key = key_of(peer);
    let old = lock(&state.peers).insert(key.clone(), peer.clone());
    state.changed.notify_all();
    let Some(old) = old else { return };
    if old.same_connection(peer) {
        return;
    }
    if old.is_suspended() {
        // SPEC.md §13.3: a new session must not end a suspended one; it may still be resumed
        // (it then takes the name back) or it expires after `session_grace`.
        tracing::info!(peer = %key, "peer started a new session; its previous session stays resumable until it expires");
    } else {
        tracing::info!(peer = %key, "peer connected again; closing its stale connection");
        old.close_with(Status::UNAVAILABLE, "replaced by a newer connection with the same name");
    }
}

fn unregister(state: &State, peer: &Peer) {
    {
        let shared = peer.shared();
        let token = shared.lock().conn.session_token().to_vec();
        let mut sessions = lock(&state.sessions);
        if sessions.get(&token).is_some_and(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(shared))) {
            sessions.remove(&token);
        }
        // Dead entries (sessions already gone) do not accumulate.
        sessions.retain(|_, w| w.strong_count() > 0);
        shrink_map(&mut sessions);
    }
    {
        let mut peers = lock(&state.peers);
        let key = key_of(peer);
        if peers.get(&key).is_some_and(|p| p.same_connection(peer)) {
            peers.remove(&key);
        }
        shrink_map(&mut peers);
    }
    {
        let mut conns = lock(&state.conns);
        conns.retain(|p| !p.same_connection(peer));
        let n = conns.len();
        if conns.capacity() > 64 && n * 4 < conns.capacity() {
            conns.shrink_to(n * 2);
        }
    }
    if peer.shared().datagram {
        let mut assocs = lock(&state.assocs);
        assocs.retain(|_, p| !p.same_connection(peer));
        shrink_map(&mut assocs);
    }
    state.changed.notify_all();
}

/// Gives a table's memory back once it is mostly empty, so that a burst of connections does
/// not leave the server holding the tables' peak size for good.
fn shrink_map<K: Eq + std::hash::Hash, V>(m: &mut HashMap<K, V>) {
    let n = m.len();
    if m.capacity() > 64 && n * 4 < m.capacity() {
        m.shrink_to(n * 2);
    }
}
