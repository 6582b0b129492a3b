//! The server's side of the many-connection logic: the core's sans-IO [`Endpoint`] behind one
//! mutex, with the connections it names, and what a server does with all of them (find a peer,
//! call every peer, stop, shut down). Every decision (admission, the name registry and
//! replacement, sessions and resumption, the session memory budget, UDP associations) is the
//! endpoint's; this file maps its `ConnId`s to connections and delivers its [`Action`]s.
//! (Layer 4: imports `peer`, `conn`, `udp`, `state`, `clock`, `deadline`, `error`.)
//!
//! Lock order: a connection's lock may be held while taking the hub's, never the reverse —
//! actions for other connections are applied (`apply`) once the caller holds no lock.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use event_listener::Event;
use futures_lite::future::{poll_fn, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::endpoint::{
    Accepted, Action, ConnId, Endpoint, EndpointConfig, PeerAddr, Refusal, Resume, Route,
};
use tandem_core::typed::Unary;
use tandem_core::{Config, Instant, SessionMemory, Status};

use crate::auth::{AuthRefusal, Authenticator, PeerIdentity};
use crate::clock::{self, now, SleepUntil};
use crate::conn::Shared;
use crate::deadline::Deadline;
use crate::error::CallError;
use crate::observe::Observer;
use crate::peer::{self, Peer};
use crate::state::ServerStats;
use crate::udp::Inbox;

/// Judges a new connection once its peer's HELLO arrived, after the server's authenticator
/// (if any) and before the server answers (SPEC.md §5.6): a mesh's membership rules
/// (SPEC.md §16.3). A refusal is the peer's CLOSE, instead of the server's HELLO. Not called for a
/// HELLO that resumes a session (that session was judged when it started), but called when such
/// a resumption is declined and a fresh session starts.
///
/// Called in the connection's driver with the connection's lock held: it must not lock a
/// connection, wait, or drop the last handle of one.
pub trait Gate: Send + Sync + 'static {
    /// Judges connection `id` (`shared`), whose HELLO announced `name`, authenticated as
    /// `identity` by the server's authenticator (`None` without one).
    fn judge(
        &self,
        id: ConnId,
        shared: &Arc<Shared>,
        name: &[u8],
        identity: Option<&PeerIdentity>,
    ) -> Result<(), AuthRefusal>;
}

/// Actions of the endpoint aimed at other connections, to apply with no lock held.
pub(crate) type Actions = Vec<(Arc<Shared>, Action)>;

struct State {
    ep: Endpoint,
    conns: HashMap<ConnId, Arc<Shared>>,
    /// UDP: each association's inbox.
    inboxes: HashMap<ConnId, Arc<Mutex<Inbox>>>,
    /// UDP: HELLOs of superseded associations, for the receive loop to route again.
    resubmit: VecDeque<(SocketAddr, Vec<u8>)>,
    resubmit_waker: Option<Waker>,
}

/// A server's endpoint and connections, shared by its accept (or UDP receive) loop, its
/// connections' drivers and the runtime's `Server` handle.
pub struct Hub {
    state: Mutex<State>,
    /// The name announced in HELLO.
    pub(crate) name: String,
    /// Every connection's configuration (transport set, validated).
    pub(crate) connection: Config,
    pub(crate) sleep: SleepUntil,
    /// Decides who may connect (`ServerConfig::authenticator`).
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    /// Judges every new connection after the authenticator (a mesh, [`Gate`]).
    pub(crate) gate: Option<Arc<dyn Gate>>,
    stopped: AtomicBool,
    stop_event: Event,
    /// Given to every connection (`ServerConfig::observer`).
    observer: std::sync::OnceLock<Arc<dyn Observer>>,
}

impl core::fmt::Debug for Hub {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Hub").field("name", &self.name).field("stats", &self.stats()).finish_non_exhaustive()
    }
}

impl Hub {
    /// A server named `name` whose connections use `connection` (see
    /// [`connection_config`](crate::config::connection_config)), deciding with an endpoint of
    /// `endpoint`; its waits use the runtime's `sleep`. With an `authenticator`, every peer's
    /// HELLO waits for its decision (SPEC.md §5.6).
    pub fn new(
        name: String,
        connection: Config,
        endpoint: EndpointConfig,
        sleep: SleepUntil,
        authenticator: Option<Arc<dyn Authenticator>>,
    ) -> Arc<Hub> {
        Hub::with_gate(name, connection, endpoint, sleep, authenticator, None)
    }

    /// As [`new`](Self::new), with a [`Gate`] that judges every new connection after the
    /// authenticator and before the server's HELLO (a mesh's membership rules, SPEC.md §16.3).
    pub fn with_gate(
        name: String,
        mut connection: Config,
        endpoint: EndpointConfig,
        sleep: SleepUntil,
        authenticator: Option<Arc<dyn Authenticator>>,
        gate: Option<Arc<dyn Gate>>,
    ) -> Arc<Hub> {
        connection.authenticate = authenticator.is_some() || gate.is_some();
        let state = State {
            ep: Endpoint::new(endpoint),
            conns: HashMap::new(),
            inboxes: HashMap::new(),
            resubmit: VecDeque::new(),
            resubmit_waker: None,
        };
        Arc::new(Hub {
            state: Mutex::new(state),
            name,
            connection,
            sleep,
            authenticator,
            gate,
            stopped: AtomicBool::new(false),
            stop_event: Event::new(),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Installs the observer every connection of this server reports to (the first set stays).
    pub fn set_observer(&self, observer: Option<Arc<dyn Observer>>) {
        if let Some(o) = observer {
            let _ = self.observer.set(o);
        }
    }

    /// The observer, if any.
    pub(crate) fn observer(&self) -> Option<Arc<dyn Observer>> {
        self.observer.get().cloned()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration of every connection (its `transport` says how large a datagram may be).
    pub fn connection(&self) -> &Config {
        &self.connection
    }

    /// Runs `f` on the endpoint and collects the actions it queued.
    fn with<R>(&self, f: impl FnOnce(&mut Endpoint) -> R) -> (R, Actions) {
        let mut s = self.lock();
        let r = f(&mut s.ep);
        let mut actions = Vec::new();
        while let Some(a) = s.ep.poll_action() {
            let id = match a {
                Action::Close { id, .. } | Action::Evict { id, .. } | Action::Shed { id, .. } => id,
            };
            match s.conns.get(&id) {
                Some(c) => actions.push((c.clone(), a)),
                None => tracing::debug!(?a, "action for a connection already gone"),
            }
        }
        (r, actions)
    }

    /// Admits a new transport (with a fresh session token when resumption is offered).
    pub(crate) fn accept(&self) -> Result<Accepted, Refusal> {
        let mut s = self.lock();
        let offer = s.ep.config().resume;
        let token = if offer { clock::token() } else { None };
        s.ep.accept_with(now(), token)
    }

    /// The connection of an admitted transport or association exists now.
    pub(crate) fn register(&self, id: ConnId, shared: Arc<Shared>, inbox: Option<Arc<Mutex<Inbox>>>) {
        let mut s = self.lock();
        s.conns.insert(id, shared);
        if let Some(i) = inbox {
            s.inboxes.insert(id, i);
        }
    }

    pub(crate) fn connected(&self, id: ConnId, name: &[u8], identity: Option<&[u8]>) -> Actions {
        self.with(|ep| ep.connected(id, name, identity)).1
    }

    /// Whether a peer of `identity` connecting on `id` may take `name` (SPEC.md §5.6); counts a
    /// refusal.
    pub(crate) fn claim_name(&self, id: ConnId, name: &[u8], identity: Option<&[u8]>) -> bool {
        let mut s = self.lock();
        let ok = name.is_empty() || s.ep.name_available(name, identity, Some(id));
        if !ok {
            s.ep.name_conflict();
        }
        ok
    }

    /// A resuming HELLO on `fresh` from a peer of `identity`: the session to resume it into, if
    /// any (only a session of the same identity).
    pub(crate) fn resume_requested(
        &self,
        fresh: ConnId,
        token: &[u8],
        identity: Option<&[u8]>,
    ) -> Option<(ConnId, Arc<Shared>)> {
        let mut s = self.lock();
        match s.ep.resume_requested(fresh, token, identity) {
            Resume::Into(id) => s.conns.get(&id).map(|c| (id, c.clone())),
            Resume::Decline => None,
        }
    }

    pub(crate) fn resumed(&self, session: ConnId, fresh: ConnId) -> Actions {
        let (_, actions) = self.with(|ep| ep.resumed(session, fresh));
        self.lock().conns.remove(&fresh);
        actions
    }

    pub(crate) fn suspended(&self, id: ConnId, since: Instant) -> Actions {
        self.with(|ep| ep.suspended(id, since)).1
    }

    pub(crate) fn unsuspended(&self, id: ConnId) {
        self.lock().ep.unsuspended(id);
    }

    pub(crate) fn session_memory(&self, id: ConnId, mem: SessionMemory) -> Actions {
        self.with(|ep| ep.session_memory(id, mem)).1
    }

    /// The connection is gone (`udp`: it was the association of that address; `superseded`: a
    /// new HELLO from that address ended it, which is routed again to start the next one).
    pub(crate) fn closed(&self, id: ConnId, udp: Option<SocketAddr>, superseded: bool) -> Actions {
        let (_, actions) = self.with(|ep| match udp {
            Some(a) => ep.association_closed(&PeerAddr::from(a)),
            None => ep.closed(id),
        });
        let mut s = self.lock();
        s.conns.remove(&id);
        let inbox = s.inboxes.remove(&id);
        if let (Some(addr), Some(inbox), true) = (udp, inbox, superseded) {
            let hello = inbox.lock().unwrap_or_else(|e| e.into_inner()).last_hello.take();
            if let Some(h) = hello {
                tracing::debug!(peer = %addr, "association superseded by a new HELLO");
                s.resubmit.push_back((addr, h));
                if let Some(w) = s.resubmit_waker.take() {
                    w.wake();
                }
            }
        }
        if s.conns.capacity() > 64 && s.conns.len() < s.conns.capacity() / 4 {
            // One burst of connections must not size the table for good.
            let keep = (s.conns.len() * 2).max(64);
            s.conns.shrink_to(keep);
            s.inboxes.shrink_to(keep);
        }
        actions
    }

    /// UDP: where a datagram from `from` goes, and the inbox of its association if it exists.
    pub(crate) fn route(&self, from: SocketAddr, is_hello: bool) -> (Route, Option<Arc<Mutex<Inbox>>>) {
        let mut s = self.lock();
        let r = s.ep.route_datagram(now(), PeerAddr::from(from), is_hello);
        let inbox = match r {
            Route::Existing(id) => s.inboxes.get(&id).cloned(),
            _ => None,
        };
        (r, inbox)
    }

    /// UDP: the next HELLO of a superseded association, to be handled by the receive loop like
    /// a datagram just received ([`datagram`](crate::open::datagram)).
    pub fn poll_resubmitted(&self, cx: &mut Context<'_>) -> Poll<(SocketAddr, Vec<u8>)> {
        let mut s = self.lock();
        match s.resubmit.pop_front() {
            Some(d) => Poll::Ready(d),
            None => {
                s.resubmit_waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Stops accepting: [`stopped`](Self::stopped) completes (the accept loop ends).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.stop_event.notify(usize::MAX);
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Completes once [`stop`](Self::stop) was called.
    pub async fn stopped(&self) {
        loop {
            if self.is_stopped() {
                return;
            }
            let l = self.stop_event.listen();
            if self.is_stopped() {
                return;
            }
            l.await;
        }
    }

    /// The connected peer with this HELLO name. Peers that announced an empty name are served
    /// but not tracked.
    pub fn peer(&self, name: &str) -> Option<Peer> {
        let s = self.lock();
        s.ep.peer(name.as_bytes()).and_then(|id| s.conns.get(&id).cloned()).map(peer::from_shared)
    }

    /// Every connected (or suspended) peer with a name, sorted by name.
    pub fn peers(&self) -> Vec<Peer> {
        let s = self.lock();
        let named: Vec<_> = s.ep.peers().filter_map(|(_, id)| s.conns.get(&id).cloned()).collect();
        drop(s);
        named.into_iter().map(peer::from_shared).collect()
    }

    /// The exchanges in flight with every named peer, by peer and id.
    pub fn in_flight(&self) -> Vec<crate::observe::InFlight> {
        let s = self.lock();
        let named: Vec<_> = s.ep.peers().filter_map(|(_, id)| s.conns.get(&id).cloned()).collect();
        drop(s);
        let mut v: Vec<_> = named.iter().flat_map(|c| c.in_flight()).collect();
        v.sort_by(|a, b| a.peer.cmp(&b.peer).then(a.id.cmp(&b.id)));
        v
    }

    /// Every connection, whatever its state.
    fn live(&self) -> Vec<Arc<Shared>> {
        self.lock().conns.values().cloned().collect()
    }

    /// The gauges and the endpoint's counters.
    pub fn stats(&self) -> ServerStats {
        let s = self.lock();
        ServerStats {
            connections: s.ep.connections(),
            handshaking: s.ep.handshaking(),
            suspended_sessions: s.ep.suspended_sessions(),
            associations: s.ep.associations(),
            session_memory: s.ep.budget().used(),
            endpoint: s.ep.stats(),
        }
    }

    /// Waits until a peer named `name` is connected, for at most `timeout`.
    pub async fn wait_for_peer(&self, name: &str, timeout: Duration) -> Option<Peer> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(p) = self.peer(name) {
                return Some(p);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            (self.sleep)((now + Duration::from_millis(5)).min(deadline)).await;
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
    /// remains (those fail with UNAVAILABLE); then gives the drivers up to 500 ms to flush
    /// their final frames.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop();
        let conns: Vec<Peer> = self.live().into_iter().map(peer::from_shared).collect();
        join_all(conns.iter().map(|p| peer::shutdown(p, grace)).collect()).await;
        drop(conns);
        let sleep = self.sleep;
        let idle = async {
            while !self.lock().conns.is_empty() {
                sleep(std::time::Instant::now() + Duration::from_millis(5)).await;
            }
        };
        idle.or(async {
            sleep(std::time::Instant::now() + Duration::from_millis(500)).await;
        })
        .await;
    }

    /// Stops accepting and closes every connection at once (UNAVAILABLE): a dropped server.
    pub fn close_all(&self) {
        self.stop();
        for s in self.live() {
            let mut inner = s.lock();
            inner.conn.close(now(), Status::UNAVAILABLE, b"server stopped");
            inner.wake_driver();
        }
    }
}

/// Delivers endpoint actions to their connections (flag + wake its driver). Call with no
/// connection's lock held.
pub(crate) fn apply(actions: Actions) {
    for (shared, action) in actions {
        let mut inner = shared.lock();
        match action {
            Action::Close { status, reason, .. } => {
                tracing::info!(conn = shared.id, %status, reason, "closing: the endpoint asked");
                inner.requests.close = Some((status, reason));
            }
            Action::Evict { reason, .. } => {
                tracing::warn!(conn = shared.id, ?reason, "evicting a suspended session");
                inner.requests.evict = true;
            }
            Action::Shed { bytes, .. } => {
                tracing::debug!(conn = shared.id, bytes, "shedding cached answers (session memory budget)");
                inner.requests.shed = Some(inner.requests.shed.unwrap_or(0).max(bytes));
            }
        }
        inner.wake_driver();
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
