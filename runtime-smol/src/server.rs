//! [`Server`]: accepts connections, tracks connected peers by their HELLO name, and calls one
//! or all of them.

use core::future::Future;
use core::pin::Pin;
use core::task::Poll;
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_io::Timer;
use futures_lite::future::{poll_fn, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use smol::Task;
use tandem_core::addr::Address;
use tandem_core::typed::Unary;
use tandem_core::{Role, Status};

use crate::conn;
use crate::error::{CallError, Error};
use crate::options::Options;
use crate::peer::Peer;
use crate::shared::Shared;
use crate::transport::{Listener, PathGuard};

/// Server state shared with its connections.
pub(crate) struct ServerShared {
    /// Connected peers by name.
    peers: Mutex<HashMap<String, Peer>>,
    /// Every live connection, named or still in its handshake.
    conns: Mutex<HashMap<u64, Weak<Shared>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
        if let Some(old) = &old {
            tracing::info!(peer = %name, old = old.shared.id, new = shared.id, "peer reconnected: closing its stale connection");
        }
        old
    }

    /// A connection ended: forget it.
    pub(crate) fn on_closed(&self, shared: &Arc<Shared>) {
        lock(&self.conns).remove(&shared.id);
        let mut peers = lock(&self.peers);
        let name = shared.info.get().map(|i| i.name.clone());
        let ours = name.as_ref().and_then(|n| peers.get(n)).is_some_and(|p| Arc::ptr_eq(&p.shared, shared));
        let removed = match (ours, name) {
            (true, Some(n)) => peers.remove(&n),
            _ => None,
        };
        drop(peers);
        drop(removed);
    }

    /// Tracks a new connection (before its driver runs).
    pub(crate) fn register(&self, shared: &Arc<Shared>) {
        lock(&self.conns).insert(shared.id, Arc::downgrade(shared));
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
    /// Listens on `addr` (`tcp://host:port` — port 0 picks a free one —, `unix:///path` or
    /// `unix+seqpacket:///path`) and starts accepting. Must be called within a `smol` context
    /// or with the global executor available (the default).
    ///
    /// A Unix socket path that already exists is refused unless
    /// [`Options::remove_stale_socket`] is set; the socket file is removed when the server stops.
    pub fn bind(addr: &str, options: Options) -> Result<Server, Error> {
        let address: Address = addr.parse()?;
        options.config.validate()?;
        let (listener, local, path) = Listener::bind(&address, options.remove_stale_socket)?;
        tracing::info!(addr = %local, name = %options.name, "listening");
        let shared =
            Arc::new(ServerShared { peers: Mutex::new(HashMap::new()), conns: Mutex::new(HashMap::new()) });
        let accept = smol::spawn(accept_loop(listener, options, Arc::downgrade(&shared)));
        Ok(Server { shared, accept: Some(accept), local, path })
    }

    /// The address actually listened on (with the real port for `tcp://…:0`).
    pub fn local_addr(&self) -> &Address {
        &self.local
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
                match conn::start(socket, Role::Acceptor, &options, Some(srv.clone()), &label) {
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
