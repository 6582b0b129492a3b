//! [`Server`]: listens, accepts connections, and tracks connected peers by name.

use crate::client::DEFAULT_MAX_DATAGRAM;
use crate::conn::{lock, Shared};
use crate::driver::{self, Hooks};
use crate::error::{CallError, Error};
use crate::handlers::Handlers;
use crate::peer::{Peer, PendingCall};
use crate::pool::Pool;
use crate::transport::Listener;
use core::time::Duration;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::{self, JoinHandle};
use tandem_core::addr::Address;
use tandem_core::typed::Unary;
use tandem_core::{Config, Role, Status};

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
    /// Threads that run handlers, shared by all connections (at least 1). Requests beyond
    /// them wait in a queue bounded by the connections' concurrency limits. A streaming
    /// handler holds its thread for the stream's life, and a handler that calls its peer and
    /// waits holds it until the answer comes: size the pool for both. Default 16.
    pub workers: usize,
    /// A Unix listener whose socket path exists refuses to start; with this set, a stale
    /// socket there (one nobody listens on) is removed first. Default false.
    pub unlink_stale_socket: bool,
    /// Largest packet on a SEQPACKET socket. Default 64 KiB.
    pub max_datagram: u32,
}

impl ServerConfig {
    /// Defaults, with the given name.
    pub fn new(name: impl Into<String>) -> Self {
        ServerConfig {
            name: name.into(),
            connection: Config::default(),
            workers: DEFAULT_SERVER_WORKERS,
            unlink_stale_socket: false,
            max_datagram: DEFAULT_MAX_DATAGRAM,
        }
    }
}

struct State {
    config: ServerConfig,
    handlers: Arc<Handlers>,
    pool: Arc<Pool>,
    /// Connected peers by the name from their HELLO.
    peers: Mutex<HashMap<String, Peer>>,
    /// Every live connection, handshaking or not.
    conns: Mutex<Vec<Peer>>,
    changed: Condvar,
    stop: AtomicBool,
    waker_tx: UnixStream,
}

/// A listening server. Handlers run on a shared worker pool; every connected peer can be
/// called back by name ([`Server::peer`]) or all at once ([`Server::call_all`]).
///
/// A peer that connects again under a name already connected replaces the old connection,
/// which is closed (its pending calls fail with UNAVAILABLE).
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
    /// `unix+seqpacket:///PATH`) and starts accepting.
    pub fn bind(addr: &str, config: ServerConfig, handlers: Handlers) -> Result<Server, Error> {
        Self::bind_to(&addr.parse::<Address>()?, config, handlers)
    }

    /// Listens on a parsed address.
    pub fn bind_to(addr: &Address, config: ServerConfig, handlers: Handlers) -> Result<Server, Error> {
        config.connection.validate()?;
        let listener = Listener::bind(addr, config.unlink_stale_socket)?;
        let local = listener.local_addr();
        let socket_file = listener.path().and_then(|p| {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(p).ok().map(|m| (p.to_path_buf(), m.ino()))
        });
        let io_err = |source| Error::Io { context: format!("cannot start the server on {addr}"), source };
        let (waker_tx, waker_rx) = UnixStream::pair().map_err(io_err)?;
        waker_tx.set_nonblocking(true).map_err(io_err)?;
        waker_rx.set_nonblocking(true).map_err(io_err)?;
        let pool = Pool::new(config.workers, "tandem-server");
        let state = Arc::new(State {
            config,
            handlers: Arc::new(handlers),
            pool,
            peers: Mutex::new(HashMap::new()),
            conns: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            waker_tx,
        });
        let weak = Arc::downgrade(&state);
        let accept = thread::Builder::new()
            .name("tandem-accept".into())
            .spawn(move || accept_loop(listener, waker_rx, weak))
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
    loop {
        {
            let mut fds = [
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(waker.as_fd(), PollFlags::POLLIN),
            ];
            let _ = nix::poll::poll(&mut fds, PollTimeout::NONE);
        }
        let mut b = [0u8; 16];
        while matches!((&waker).read(&mut b), Ok(n) if n > 0) {}
        let Some(state) = state.upgrade() else { return };
        if state.stop.load(Ordering::Acquire) {
            return;
        }
        loop {
            match listener.accept() {
                Ok(socket) => start_connection(&state, socket),
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

fn start_connection(state: &Arc<State>, socket: crate::transport::Socket) {
    let c = &state.config;
    let shared = match Shared::new(
        socket,
        Role::Acceptor,
        c.connection.clone(),
        &c.name,
        c.max_datagram,
        Arc::clone(&state.handlers),
        Arc::clone(&state.pool),
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot set up an accepted connection: {e}");
            return;
        }
    };
    tracing::debug!(conn = shared.id, "accepted");
    let peer = Peer::from_shared(Arc::clone(&shared));
    lock(&state.conns).push(peer);
    let (w1, w2) = (Arc::downgrade(state), Arc::downgrade(state));
    let hooks = Hooks {
        on_connected: Some(Box::new(move |p: &Peer| {
            if let Some(s) = w1.upgrade() {
                register(&s, p);
            }
        })),
        on_finished: Some(Box::new(move |p: &Peer| {
            if let Some(s) = w2.upgrade() {
                unregister(&s, p);
            }
        })),
    };
    if let Err(e) = driver::spawn(shared, hooks) {
        tracing::warn!("cannot start a connection thread: {e}");
    }
}

fn register(state: &State, peer: &Peer) {
    let key = key_of(peer);
    let old = lock(&state.peers).insert(key.clone(), peer.clone());
    state.changed.notify_all();
    if let Some(old) = old {
        tracing::info!(peer = %key, "peer connected again; closing its stale connection");
        old.close_with(Status::UNAVAILABLE, "replaced by a newer connection with the same name");
    }
}

fn unregister(state: &State, peer: &Peer) {
    {
        let mut peers = lock(&state.peers);
        let key = key_of(peer);
        if peers.get(&key).is_some_and(|p| p.same_connection(peer)) {
            peers.remove(&key);
        }
    }
    lock(&state.conns).retain(|p| !p.same_connection(peer));
    state.changed.notify_all();
}
