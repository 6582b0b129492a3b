//! The server's side of the many-connection logic: the core's sans-IO
//! [`Endpoint`] behind one mutex, with the connections it names. Every decision (admission,
//! the name registry and replacement, sessions and resumption, the session memory budget, UDP
//! associations) is the endpoint's; this file only maps its `ConnId`s to connections and
//! delivers its [`Action`]s. (Layer 3: imports `conn`, `transport`, `clock`.)
//!
//! Lock order: a connection's lock may be held while taking the hub's, never the reverse —
//! actions for other connections are applied ([`apply`]) once the caller holds no lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tandem_core::endpoint::{
    Accepted, Action, ConnId, Endpoint, EndpointConfig, EndpointStats, PeerAddr, Refusal, Resume, Route,
};
use tandem_core::Instant;
use tandem_core::SessionMemory;

use crate::clock::{self, now};
use crate::conn::Shared;
use crate::transport::Inbox;

/// Actions of the endpoint aimed at other connections, to apply with no lock held.
pub(crate) type Actions = Vec<(Arc<Shared>, Action)>;

struct State {
    ep: Endpoint,
    conns: HashMap<ConnId, Arc<Shared>>,
    /// UDP: each association's inbox.
    inboxes: HashMap<ConnId, Arc<Mutex<Inbox>>>,
}

/// A server's endpoint and connections.
pub(crate) struct Hub {
    state: Mutex<State>,
}

/// Gauges and counters of a hub.
pub(crate) struct Snapshot {
    pub(crate) connections: usize,
    pub(crate) handshaking: usize,
    pub(crate) suspended: usize,
    pub(crate) associations: usize,
    pub(crate) session_memory: usize,
    pub(crate) stats: EndpointStats,
}

impl Hub {
    pub(crate) fn new(config: EndpointConfig) -> Self {
        let state = State { ep: Endpoint::new(config), conns: HashMap::new(), inboxes: HashMap::new() };
        Hub { state: Mutex::new(state) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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

    pub(crate) fn connected(&self, id: ConnId, name: &[u8]) -> Actions {
        self.with(|ep| ep.connected(id, name, None)).1
    }

    /// A resuming HELLO on `fresh`: the session to resume it into, if any.
    pub(crate) fn resume_requested(&self, fresh: ConnId, token: &[u8]) -> Option<(ConnId, Arc<Shared>)> {
        let mut s = self.lock();
        match s.ep.resume_requested(fresh, token, None) {
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

    /// The connection is gone (`udp`: it was the association of that address).
    pub(crate) fn closed(&self, id: ConnId, udp: Option<SocketAddr>) -> Actions {
        let (_, actions) = self.with(|ep| match udp {
            Some(a) => ep.association_closed(&PeerAddr::from(a)),
            None => ep.closed(id),
        });
        let mut s = self.lock();
        s.conns.remove(&id);
        s.inboxes.remove(&id);
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

    pub(crate) fn peer(&self, name: &str) -> Option<Arc<Shared>> {
        let s = self.lock();
        s.ep.peer(name.as_bytes()).and_then(|id| s.conns.get(&id).cloned())
    }

    /// Every registered peer, in name order.
    pub(crate) fn peers(&self) -> Vec<Arc<Shared>> {
        let s = self.lock();
        s.ep.peers().filter_map(|(_, id)| s.conns.get(&id).cloned()).collect()
    }

    /// Every connection, whatever its state.
    pub(crate) fn live(&self) -> Vec<Arc<Shared>> {
        self.lock().conns.values().cloned().collect()
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            connections: s.ep.connections(),
            handshaking: s.ep.handshaking(),
            suspended: s.ep.suspended_sessions(),
            associations: s.ep.associations(),
            session_memory: s.ep.budget().used(),
            stats: s.ep.stats(),
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
