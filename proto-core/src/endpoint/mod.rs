//! The many-connection half of the protocol, sans-IO (needs `alloc`): what a server or client
//! decides about *connections* rather than about exchanges on one connection.
//!
//! A [`Connection`](crate::Connection) knows one transport. A runtime serving many of them needs
//! more decisions that are protocol-adjacent and must be the same in every runtime: which
//! connections to admit, which session a resuming HELLO names and whether to resume it, which
//! connection answers to a peer's name and when a newcomer replaces it, which UDP association a
//! datagram belongs to, when a suspended session must give way to the memory budget, and when a
//! dialer tries again after losing its transport. [`Endpoint`] (server side) and [`Dialer`]
//! (client side) make those decisions; the runtime only moves bytes, keeps timers and spawns
//! work, as `quinn-proto`'s `Endpoint` does for QUIC. [`mesh::Mesh`] decides for a mesh of peers
//! (SPEC.md §16): who dials whom, which connection to keep, when to redial.
//!
//! # The server loop
//!
//! 1. A transport is accepted: [`Endpoint::accept`] admits it (or refuses: too many connections
//!    or handshakes) and returns its [`ConnId`] and the session token to announce.
//! 2. The connection reports what happens to it: [`Endpoint::connected`] once its HELLO
//!    exchange completed (registers the peer's name), [`Endpoint::resume_requested`] for a
//!    resuming HELLO (the answer says which session to resume, or to decline),
//!    [`Endpoint::suspended`] / [`Endpoint::unsuspended`], [`Endpoint::session_memory`] after
//!    each turn, [`Endpoint::closed`] when it is gone.
//! 3. The runtime drains [`Endpoint::poll_action`]: actions aimed at *other* connections (close
//!    the one a newcomer replaced, evict the oldest suspended session, shed cached answers).
//!
//! ```
//! use tandem_core::endpoint::{Action, Endpoint, EndpointConfig, Resume};
//! use tandem_core::Instant;
//!
//! let mut ep = Endpoint::new(EndpointConfig::default());
//! let now = Instant::ZERO;
//! let a = ep.accept(now, [7; 16]).unwrap();
//! assert_eq!(a.token, Some([7; 16]), "resumption offered: announce this token");
//! ep.connected(a.id, b"sensor-1", None);
//! assert_eq!(ep.peer(b"sensor-1"), Some(a.id));
//! // Its transport is lost: the session is suspended; a new transport asks to resume it.
//! ep.suspended(a.id, now);
//! let b = ep.accept(now, [9; 16]).unwrap();
//! assert_eq!(ep.resume_requested(b.id, &[7; 16], None), Resume::Into(a.id));
//! ep.resumed(a.id, b.id);
//! assert_eq!(ep.peer(b"sensor-1"), Some(a.id));
//! assert_eq!(ep.poll_action(), None);
//! ```

mod assoc;
mod dialer;
pub mod mesh;
mod registry;

#[cfg(test)]
mod tests;

pub use assoc::{PeerAddr, Route};
pub use dialer::{Dialer, LinkState, ReconnectPolicy};

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use crate::budget::{MemoryBudget, Shed, DEFAULT_SESSION_MEMORY_BUDGET};
use crate::conn::SessionMemory;
use crate::status::Status;
use crate::time::Instant;
use registry::Names;

/// One connection of an [`Endpoint`]. Never reused within an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Length of the session tokens an endpoint hands out: 128 bits, from the caller's randomness.
pub const TOKEN_LEN: usize = 16;

/// Default [`EndpointConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Default [`EndpointConfig::max_handshaking`].
pub const DEFAULT_MAX_HANDSHAKING: usize = 1024;
/// Default [`EndpointConfig::max_suspended_sessions`].
pub const DEFAULT_MAX_SUSPENDED_SESSIONS: usize = 1024;
/// Default [`EndpointConfig::max_associations`].
pub const DEFAULT_MAX_ASSOCIATIONS: usize = 1024;

/// The limits and choices of an [`Endpoint`]. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Offer session resumption (SPEC.md §13) to accepted connections: [`Endpoint::accept`]
    /// returns a token to announce. Default true. (Datagram mode never offers it, §14.1: pass
    /// `false` to [`Endpoint::accept_with`] there.)
    pub resume: bool,
    /// Most connections at once, in any state (handshaking, open, suspended). Beyond it
    /// [`Endpoint::accept`] refuses with [`Refusal::TooManyConnections`]. Default 16,384.
    pub max_connections: usize,
    /// Most connections in the handshake at once (a flood of stuck handshakes is bounded by
    /// it and by the handshake timeout). Beyond it [`Refusal::TooManyHandshakes`]. Default 1,024.
    pub max_handshaking: usize,
    /// Most suspended sessions kept at once; when a suspension would exceed it, the session
    /// suspended first is evicted ([`Action::Evict`]). Default 1,024.
    pub max_suspended_sessions: usize,
    /// Bytes of session state (reply caches, retained requests, unconfirmed stream items) of all
    /// sessions together (SPEC.md §13.6; [`MemoryBudget`]). Default 64 MiB.
    pub session_memory_budget: usize,
    /// UDP: most associations at once; HELLOs from new addresses beyond it are dropped
    /// ([`Route::Drop`]). Default 1,024.
    pub max_associations: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            resume: true,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_handshaking: DEFAULT_MAX_HANDSHAKING,
            max_suspended_sessions: DEFAULT_MAX_SUSPENDED_SESSIONS,
            session_memory_budget: DEFAULT_SESSION_MEMORY_BUDGET,
            max_associations: DEFAULT_MAX_ASSOCIATIONS,
        }
    }
}

/// Why [`Endpoint::accept`] refused a transport (the runtime closes it at once, logs, counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// [`EndpointConfig::max_connections`] connections are open.
    TooManyConnections {
        /// The limit.
        limit: usize,
    },
    /// [`EndpointConfig::max_handshaking`] connections are in their handshake.
    TooManyHandshakes {
        /// The limit.
        limit: usize,
    },
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::TooManyConnections { limit } => write!(
                f,
                "{limit} connections are open (the server's max_connections): connection refused; raise it if the machine can hold more"
            ),
            Refusal::TooManyHandshakes { limit } => write!(
                f,
                "{limit} connections are in their handshake (the server's max_handshaking): connection refused; a flood of stuck handshakes, or raise the limit"
            ),
        }
    }
}

/// An admitted transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its id.
    pub id: ConnId,
    /// The session token to announce in the acceptor's HELLO (`None`: no resumption).
    pub token: Option<[u8; TOKEN_LEN]>,
}

/// What to do with a resuming HELLO ([`Endpoint::resume_requested`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Move this transport into that session
    /// ([`Connection::resume_from`](crate::Connection::resume_from)), then report
    /// [`Endpoint::resumed`].
    Into(ConnId),
    /// Answer with a new session
    /// ([`Connection::decline_resume`](crate::Connection::decline_resume)): the token names no
    /// live session, or another identity's.
    Decline,
}

/// Why an endpoint ends a suspended session early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictReason {
    /// [`EndpointConfig::max_suspended_sessions`] would be exceeded: the oldest goes.
    TooManySuspended,
    /// The session memory budget is exceeded: the oldest suspended session goes (SPEC.md §13.6).
    MemoryBudget,
}

/// Work an [`Endpoint`] asks of the runtime, aimed at one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Close this connection with CLOSE(`status`, `reason`) (its peer reconnected under the
    /// same name and identity).
    Close {
        /// The connection.
        id: ConnId,
        /// CLOSE status.
        status: Status,
        /// CLOSE message.
        reason: &'static str,
    },
    /// End this suspended session now
    /// ([`Connection::evict_suspended_session`](crate::Connection::evict_suspended_session)).
    Evict {
        /// The session.
        id: ConnId,
        /// Why.
        reason: EvictReason,
    },
    /// Free `bytes` of this session's cached answers
    /// ([`Connection::shed_session_memory`](crate::Connection::shed_session_memory)), then
    /// report its [`Endpoint::session_memory`] again.
    Shed {
        /// The session.
        id: ConnId,
        /// Bytes to free.
        bytes: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Handshake,
    Open,
    Suspended(Instant),
}

#[derive(Clone, Debug)]
struct Entry {
    phase: Phase,
    token: Option<[u8; TOKEN_LEN]>,
    /// The peer's name, once connected (empty: anonymous, not registered).
    name: Vec<u8>,
    /// Who the peer authenticated as (`None`: unauthenticated).
    identity: Option<Vec<u8>>,
}

/// Counters of an endpoint's decisions, for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Transports refused because of `max_connections`.
    pub refused_connections: u64,
    /// Transports refused because of `max_handshaking`.
    pub refused_handshakes: u64,
    /// Sessions resumed.
    pub resumptions: u64,
    /// Resumption requests declined (unknown, ended or foreign session).
    pub declined: u64,
    /// Suspended sessions evicted because of `max_suspended_sessions`.
    pub evicted_count: u64,
    /// Suspended sessions evicted because of the memory budget.
    pub evicted_memory: u64,
    /// Sheds of cached answers requested because of the memory budget.
    pub sheds: u64,
    /// Live connections closed because their peer came back under the same name.
    pub replaced: u64,
    /// UDP HELLOs dropped because of `max_associations`.
    pub dropped_hellos: u64,
    /// Connections refused because their name belongs to another identity's live or
    /// suspended connection ([`Endpoint::name_available`]).
    pub name_conflicts: u64,
}

/// The server side of the many-connection logic. See the [module docs](self).
#[derive(Debug)]
pub struct Endpoint {
    config: EndpointConfig,
    next_id: u64,
    conns: BTreeMap<ConnId, Entry>,
    handshaking: usize,
    /// Session tokens → the session's connection.
    tokens: BTreeMap<[u8; TOKEN_LEN], ConnId>,
    /// Suspended sessions, oldest first.
    suspended: BTreeMap<(Instant, ConnId), ()>,
    names: Names,
    budget: MemoryBudget,
    assocs: assoc::Assocs,
    actions: VecDeque<Action>,
    /// An eviction or shed already asked of a connection (not asked again until it reports).
    pending_shed: Option<ConnId>,
    stats: EndpointStats,
}

impl Endpoint {
    /// An endpoint with `config`.
    pub fn new(config: EndpointConfig) -> Self {
        Endpoint {
            budget: MemoryBudget::new(config.session_memory_budget),
            assocs: assoc::Assocs::new(config.max_associations),
            config,
            next_id: 0,
            conns: BTreeMap::new(),
            handshaking: 0,
            tokens: BTreeMap::new(),
            suspended: BTreeMap::new(),
            names: Names::default(),
            actions: VecDeque::new(),
            pending_shed: None,
            stats: EndpointStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Connections tracked (handshaking, open or suspended).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Connections in their handshake.
    pub fn handshaking(&self) -> usize {
        self.handshaking
    }

    /// Sessions suspended now.
    pub fn suspended_sessions(&self) -> usize {
        self.suspended.len()
    }

    /// The memory budget's bookkeeping.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    // ------------------------------------------------------------------ admission

    /// Admits a new transport (stream or packet socket): returns its id and, when resumption
    /// is offered, the session token to announce — `random` must come from a CSPRNG (the token
    /// is what lets a peer take its session over, SPEC.md §13.2).
    pub fn accept(&mut self, now: Instant, random: [u8; TOKEN_LEN]) -> Result<Accepted, Refusal> {
        let resume = self.config.resume;
        self.accept_with(now, resume.then_some(random))
    }

    /// [`accept`](Self::accept) with the token chosen by the caller (`None`: no resumption;
    /// datagram mode, for one).
    pub fn accept_with(
        &mut self,
        _now: Instant,
        token: Option<[u8; TOKEN_LEN]>,
    ) -> Result<Accepted, Refusal> {
        if self.conns.len() >= self.config.max_connections {
            self.stats.refused_connections += 1;
            return Err(Refusal::TooManyConnections { limit: self.config.max_connections });
        }
        if self.handshaking >= self.config.max_handshaking {
            self.stats.refused_handshakes += 1;
            return Err(Refusal::TooManyHandshakes { limit: self.config.max_handshaking });
        }
        let token = token.filter(|t| !self.tokens.contains_key(t));
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.handshaking += 1;
        self.conns.insert(id, Entry { phase: Phase::Handshake, token, name: Vec::new(), identity: None });
        Ok(Accepted { id, token })
    }

    /// The handshake of `id` completed: its peer announced `name` and authenticated as
    /// `identity` (`None`: no authenticator, the peer is unauthenticated). A non-empty name is
    /// registered: it now answers [`peer`](Self::peer). A live connection already under that
    /// name from the same identity is replaced ([`Action::Close`] for it); a suspended one is
    /// kept until it is resumed or expires (SPEC.md §13.3).
    ///
    /// When the name belongs to another identity's live or suspended connection
    /// ([`name_available`](Self::name_available) is false), the newcomer is not registered and
    /// is closed instead ([`Action::Close`] with PERMISSION_DENIED, SPEC.md §5.6); the other
    /// connection is untouched. A runtime checks `name_available` before accepting the peer,
    /// so that the refusal is the newcomer's only answer; this is the safety net.
    pub fn connected(&mut self, id: ConnId, name: &[u8], identity: Option<&[u8]>) {
        if !name.is_empty() && !self.name_available(name, identity, Some(id)) {
            self.stats.name_conflicts += 1;
            self.actions.push_back(Action::Close {
                id,
                status: Status::PERMISSION_DENIED,
                reason: "this name belongs to another identity's connection",
            });
            return;
        }
        let Some(e) = self.conns.get_mut(&id) else { return };
        if e.phase == Phase::Handshake {
            self.handshaking -= 1;
        }
        e.phase = Phase::Open;
        e.name = name.to_vec();
        e.identity = identity.map(<[u8]>::to_vec);
        if let Some(t) = e.token {
            self.tokens.insert(t, id);
        }
        if name.is_empty() {
            return;
        }
        self.names.insert(name, id);
        // Every live connection under the name from the same identity goes, not only the one
        // that answered to it: a resumed session may have taken the name back from another.
        for old in self.names.others(name, id) {
            let stale = self
                .conns
                .get(&old)
                .is_some_and(|o| o.phase == Phase::Open && o.identity.as_deref() == identity);
            if stale {
                self.names.remove(name, old);
                self.stats.replaced += 1;
                self.actions.push_back(Action::Close {
                    id: old,
                    status: Status::UNAVAILABLE,
                    reason: "replaced by a newer connection with the same name",
                });
            }
        }
    }

    /// Whether a peer authenticated as `identity` may take `name`: no live or suspended
    /// connection (other than `except`) holds it under another identity (SPEC.md §5.6: names
    /// belong to identities; without an authenticator every identity is `None`, so any peer
    /// may take any name and replaces its holder).
    pub fn name_available(&self, name: &[u8], identity: Option<&[u8]>, except: Option<ConnId>) -> bool {
        self.names.others(name, except.unwrap_or(ConnId(u64::MAX))).iter().all(|o| {
            self.conns
                .get(o)
                .map_or(true, |e| e.phase == Phase::Handshake || e.identity.as_deref() == identity)
        })
    }

    /// Counts a connection refused because of [`name_available`](Self::name_available).
    pub fn name_conflict(&mut self) {
        self.stats.name_conflicts += 1;
    }

    /// The connection registered under `name`, if any.
    pub fn peer(&self, name: &[u8]) -> Option<ConnId> {
        self.names.get(name)
    }

    /// Every registered name with its connection, in name order.
    pub fn peers(&self) -> impl Iterator<Item = (&[u8], ConnId)> {
        self.names.iter()
    }

    /// A resuming HELLO arrived on `fresh` naming session `token`, from a peer that
    /// authenticated as `identity`. Answers which session to resume, or to decline: unknown,
    /// ended, still handshaking, or another identity's session (SPEC.md §13.3). Token
    /// comparison does not depend on where the tokens differ (constant time).
    pub fn resume_requested(&mut self, fresh: ConnId, token: &[u8], identity: Option<&[u8]>) -> Resume {
        let found =
            self.tokens.iter().fold(None, |acc, (t, id)| if ct_eq(t, token) { Some(*id) } else { acc });
        let ok = found.filter(|&s| {
            s != fresh
                && self
                    .conns
                    .get(&s)
                    .is_some_and(|e| e.phase != Phase::Handshake && e.identity.as_deref() == identity)
        });
        match ok {
            Some(s) => Resume::Into(s),
            None => {
                self.stats.declined += 1;
                Resume::Decline
            }
        }
    }

    /// Session `session` took over the transport of `fresh` (after
    /// [`Resume::Into`]): `fresh` is retired; `session` is open again and answers to its name.
    pub fn resumed(&mut self, session: ConnId, fresh: ConnId) {
        self.closed(fresh);
        self.stats.resumptions += 1;
        self.unsuspended(session);
        let name = match self.conns.get(&session) {
            Some(e) if !e.name.is_empty() => e.name.clone(),
            _ => return,
        };
        // Whoever took the name meanwhile keeps running (and answers to it again when the
        // resumed session ends); the resumed session answers to it now.
        self.names.insert(&name, session);
    }

    /// `id`'s session was suspended at `since` (its transport was lost). May evict the oldest
    /// suspended session if there are now more than allowed.
    pub fn suspended(&mut self, id: ConnId, since: Instant) {
        let Some(e) = self.conns.get_mut(&id) else { return };
        if let Phase::Suspended(t) = e.phase {
            self.suspended.remove(&(t, id));
        }
        e.phase = Phase::Suspended(since);
        self.suspended.insert((since, id), ());
        while self.suspended.len() > self.config.max_suspended_sessions {
            let Some((&(t, oldest), _)) = self.suspended.iter().next() else { break };
            self.suspended.remove(&(t, oldest));
            self.stats.evicted_count += 1;
            self.actions.push_back(Action::Evict { id: oldest, reason: EvictReason::TooManySuspended });
        }
    }

    /// `id`'s session has a transport again.
    pub fn unsuspended(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(&id) else { return };
        if let Phase::Suspended(t) = e.phase {
            self.suspended.remove(&(t, id));
            e.phase = Phase::Open;
        }
    }

    /// `id`'s current session memory ([`Connection::session_memory`](crate::Connection::session_memory)),
    /// reported after every turn of its loop (cheap when unchanged). May queue evictions or
    /// sheds while the budget is exceeded.
    pub fn session_memory(&mut self, id: ConnId, mem: SessionMemory) {
        let since = match self.conns.get(&id).map(|e| &e.phase) {
            Some(Phase::Suspended(t)) => Some(*t),
            Some(_) => None,
            None => return,
        };
        self.budget.report(id.0, mem.held, mem.sheddable, since);
        if self.pending_shed == Some(id) {
            self.pending_shed = None;
        }
        self.enforce_budget();
    }

    fn enforce_budget(&mut self) {
        if self.pending_shed.is_some() {
            return;
        }
        let Some(shed) = self.budget.next_shed() else { return };
        self.budget.shed_done(shed);
        match shed {
            Shed::EndSession(k) => {
                let id = ConnId(k);
                // Until it reports Closed, do not count it twice.
                self.budget.forget(k);
                if let Some(Entry { phase: Phase::Suspended(t), .. }) = self.conns.get(&id) {
                    self.suspended.remove(&(*t, id));
                }
                self.stats.evicted_memory += 1;
                self.actions.push_back(Action::Evict { id, reason: EvictReason::MemoryBudget });
                self.enforce_budget();
            }
            Shed::Trim { key, bytes } => {
                self.stats.sheds += 1;
                self.pending_shed = Some(ConnId(key));
                self.actions.push_back(Action::Shed { id: ConnId(key), bytes });
            }
        }
    }

    /// `id` is gone (closed, expired, evicted, or retired by a resumption): forget it.
    pub fn closed(&mut self, id: ConnId) {
        let Some(e) = self.conns.remove(&id) else { return };
        match e.phase {
            Phase::Handshake => self.handshaking -= 1,
            Phase::Suspended(t) => {
                self.suspended.remove(&(t, id));
            }
            Phase::Open => {}
        }
        if let Some(t) = e.token {
            if self.tokens.get(&t) == Some(&id) {
                self.tokens.remove(&t);
            }
        }
        self.names.remove(&e.name, id);
        self.budget.forget(id.0);
        if self.pending_shed == Some(id) {
            self.pending_shed = None;
            self.enforce_budget();
        }
        self.actions.retain(|a| match a {
            Action::Close { id: x, .. } | Action::Evict { id: x, .. } | Action::Shed { id: x, .. } => {
                *x != id
            }
        });
    }

    /// The next action for the runtime, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    // ------------------------------------------------------------------ UDP associations

    /// Routes a datagram from `from` (SPEC.md §14.1): to its association, to a new one if it
    /// is a HELLO (`is_hello`: its first byte is the HELLO type), or nowhere. A new association
    /// is admitted like an accepted transport (no session token: datagram mode has none).
    pub fn route_datagram(&mut self, now: Instant, from: PeerAddr, is_hello: bool) -> Route {
        if let Some(id) = self.assocs.get(&from) {
            return Route::Existing(id);
        }
        if !is_hello {
            return Route::Drop;
        }
        if self.assocs.is_full() {
            self.stats.dropped_hellos += 1;
            return Route::Full;
        }
        match self.accept_with(now, None) {
            Ok(a) => {
                self.assocs.insert(from, a.id);
                Route::New(a.id)
            }
            Err(_) => Route::Full,
        }
    }

    /// The association at `from` is over (its connection closed or was superseded by a new
    /// HELLO): forget the address, and the connection.
    pub fn association_closed(&mut self, from: &PeerAddr) {
        if let Some(id) = self.assocs.remove(from) {
            self.closed(id);
        }
    }

    /// UDP associations now.
    pub fn associations(&self) -> usize {
        self.assocs.len()
    }
}

/// Compares two byte strings in time that depends only on their lengths.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    core::hint::black_box(diff) == 0
}
