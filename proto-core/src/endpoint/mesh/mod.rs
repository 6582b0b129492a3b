//! A mesh of peers, sans-IO (SPEC.md §16): every node knows its own name and address and those of
//! the other members, and the mesh keeps **exactly one connection per pair** of members, as
//! MinIO's grid does. [`Mesh`] makes every decision; the runtime dials, accepts, closes, keeps one
//! timer and publishes states.
//!
//! # The rules
//!
//! * **Who dials** ([`dials`]): of two members `a` and `b`, `a` dials when
//!   `(fnv1a64(a ‖ b), a) < (fnv1a64(b ‖ a), b)` (the names' bytes concatenated; on a tie of the
//!   hashes the smaller name dials). Both nodes compute the same answer from the two names alone,
//!   so simultaneous starts converge, a restarted node makes the same choice, and each node dials
//!   about half of its peers (MinIO's grid balances its connections the same way, with xxh3).
//! * **Only the designated dialer dials; the other side only accepts.** A node refuses an inbound
//!   connection from a member it dials itself with CLOSE(FAILED_PRECONDITION) and from a
//!   non-member (or its own name) with CLOSE(PERMISSION_DENIED), in both cases instead of its HELLO
//!   ([`Verdict`]).
//! * **The newest connection from the dialer wins.** A dialer dials only when it holds no
//!   connection, so an inbound connection from a member that already has one means that member
//!   lost the old one (it restarted, or its end timed out first): the old one is closed with
//!   CLOSE(UNAVAILABLE) and the newcomer kept. Never two, never none.
//! * **Reconnection** with capped exponential backoff and jitter ([`MeshConfig`]), from a seed
//!   the caller supplies (the core has no random source). A connection that ends sooner than
//!   [`MeshConfig::stable_after`] counts as a failed attempt, so a peer that accepts and at once
//!   closes cannot make a node spin.
//! * **Membership** changes at run time ([`Mesh::add_member`], [`Mesh::remove_member`]); a
//!   removed member's connection is closed with CLOSE(OK).
//!
//! # Identity
//!
//! The name the mesh is told about ([`Mesh::inbound`], [`Mesh::dial_succeeded`]) is the one in
//! the peer's HELLO. The mesh trusts it: a runtime that runs a mesh over an untrusted network
//! must install an authenticator that proves it (SPEC.md §5.6, §16.4: a certificate or a
//! credential bound to the name, checked before the acceptor's HELLO), and pass only an
//! authenticated name. Without one, anyone who can reach a node can take a member's place.
//!
//! # The runtime's loop
//!
//! ```
//! use tandem_core::endpoint::mesh::{dials, Action, Mesh, MeshConfig, MemberState, Verdict};
//! use tandem_core::endpoint::ConnId;
//! use tandem_core::Instant;
//!
//! let now = Instant::ZERO;
//! let members = [(b"a".to_vec(), "10.0.0.1:7000"), (b"b".to_vec(), "10.0.0.2:7000")];
//! let mut a = Mesh::new(b"a", "10.0.0.1:7000", members.clone(), MeshConfig::default(), 1).unwrap();
//! let mut b = Mesh::new(b"b", "10.0.0.2:7000", members, MeshConfig::default(), 2).unwrap();
//! // Exactly one of the two dials the other.
//! assert!(dials(b"a", b"b") != dials(b"b", b"a"));
//! let (dialer, acceptor) = if dials(b"a", b"b") { (&mut a, &mut b) } else { (&mut b, &mut a) };
//! // Its actions: publish the member's state (Dialing), dial its address.
//! let Some(Action::State { state: MemberState::Dialing { attempt: 1 }, .. }) = dialer.poll_action() else { panic!() };
//! let Some(Action::Dial { dial, name, .. }) = dialer.poll_action() else { panic!() };
//! // The acceptor decides on the dialer's HELLO, before its own.
//! assert_eq!(acceptor.inbound(now, ConnId(7), dialer.name()), Verdict::Accept);
//! dialer.dial_succeeded(now, dial, ConnId(1), acceptor.name());
//! assert!(matches!(dialer.state(&name), Some(MemberState::Connected { .. })));
//! assert_eq!(acceptor.connection(dialer.name()), Some(ConnId(7)));
//! ```
//!
//! Connection ids are the runtime's (an accepted one may be the [`Endpoint`](super::Endpoint)'s
//! session id: a transport that resumes a session is the same connection to the mesh); they must
//! be distinct among the connections one mesh is told about.

mod backoff;

#[cfg(test)]
mod tests;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::time::Duration;

use super::ConnId;
use crate::frame::MAX_NAME_LEN;
use crate::status::Status;
use crate::time::Instant;
use backoff::Jitter;
pub use backoff::{dials, fnv1a64};

/// The CLOSE reason sent to a dialer that is not a member.
pub const REASON_NOT_MEMBER: &str = "mesh: not a member of this mesh";
/// The CLOSE reason sent to a member that dialed although this node is the pair's dialer.
pub const REASON_WRONG_DIALER: &str = "mesh: this node dials the pair, not the peer";
/// The CLOSE reason on a connection replaced by a newer one from the same member.
pub const REASON_REPLACED: &str = "mesh: replaced by a newer connection from the same member";
/// The CLOSE reason on a connection to a member that was removed.
pub const REASON_REMOVED: &str = "mesh: no longer a member of this mesh";
/// The CLOSE reason when the node found at a member's address announced another name.
pub const REASON_WRONG_NAME: &str = "mesh: the node at this address is not the member dialed";
/// The CLOSE reason on a dialed connection nobody wants any more (superseded attempt).
pub const REASON_UNWANTED: &str = "mesh: this dial is no longer wanted";

/// Default [`MeshConfig::initial_backoff`].
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Default [`MeshConfig::max_backoff`].
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Default [`MeshConfig::stable_after`].
pub const DEFAULT_STABLE_AFTER: Duration = Duration::from_secs(1);
/// Default [`MeshConfig::max_members`].
pub const DEFAULT_MAX_MEMBERS: usize = 4096;

/// The choices of a [`Mesh`]. Every field has a documented default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeshConfig {
    /// Base delay before redialing a lost connection. Default 100 ms.
    pub initial_backoff: Duration,
    /// Largest base delay: the cap of the exponential growth. Default 5 s.
    pub max_backoff: Duration,
    /// Factor by which the base delay grows after each failed attempt (0 and 1 both mean: no
    /// growth). Default 2.
    pub multiplier: u32,
    /// Each delay is drawn uniformly from `[base × (100 − jitter_percent)/100, base]` (values
    /// above 100 count as 100), so that nodes do not redial in lockstep and a delay never
    /// exceeds `max_backoff`. Never under 1 ms. Default 50.
    pub jitter_percent: u8,
    /// A connection that ends sooner than this after it was established counts as a failed
    /// attempt (the backoff keeps growing); one that lived longer resets it. Default 1 s.
    pub stable_after: Duration,
    /// Most members ([`MeshError::TooManyMembers`] beyond). Default 4,096.
    pub max_members: usize,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            multiplier: 2,
            jitter_percent: 50,
            stable_after: DEFAULT_STABLE_AFTER,
            max_members: DEFAULT_MAX_MEMBERS,
        }
    }
}

/// A mistake in a mesh's configuration or membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MeshError {
    /// A node's name is empty: a HELLO with an empty name is anonymous, and a mesh addresses
    /// its members by name.
    EmptyName,
    /// A name is longer than a HELLO can carry.
    NameTooLong {
        /// Its length.
        len: usize,
    },
    /// More members than [`MeshConfig::max_members`].
    TooManyMembers {
        /// The limit.
        limit: usize,
    },
}

impl core::fmt::Display for MeshError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MeshError::EmptyName => {
                write!(f, "a mesh member's name is empty: give every node a unique, non-empty name")
            }
            MeshError::NameTooLong { len } => write!(
                f,
                "a mesh member's name is {len} bytes, more than the {MAX_NAME_LEN} a HELLO carries: shorten it"
            ),
            MeshError::TooManyMembers { limit } => write!(
                f,
                "more than {limit} mesh members (MeshConfig::max_members): raise the limit if the cluster is that large"
            ),
        }
    }
}

/// One dial attempt, so that a late answer to an abandoned attempt is recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DialId(pub u64);

/// Where a member is, as the node sees it (a runtime publishes every change as a watch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberState {
    /// This node dials the member and an attempt is in progress (`attempt` counts from 1 since
    /// the last established connection).
    Dialing {
        /// Attempt number.
        attempt: u32,
    },
    /// This node dials the member; the next attempt is due at `next`, after `failures` failed
    /// attempts (0: the connection was just lost).
    Backoff {
        /// Failed attempts since the last established connection.
        failures: u32,
        /// When the next attempt starts.
        next: Instant,
    },
    /// The member dials this node, and has no connection now.
    Awaiting,
    /// Connected over `conn` since `since` (`dialed`: this node dialed it).
    Connected {
        /// The connection.
        conn: ConnId,
        /// When it was established.
        since: Instant,
        /// Whether this node dialed it.
        dialed: bool,
    },
    /// Removed from the mesh (the last state published for it).
    Removed,
}

/// Work a [`Mesh`] asks of the runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<A> {
    /// Dial `addr`, expecting the member `name`; report [`Mesh::dial_succeeded`] once the HELLO
    /// exchange completed, or [`Mesh::dial_failed`].
    Dial {
        /// This attempt.
        dial: DialId,
        /// The member.
        name: Vec<u8>,
        /// Its address.
        addr: A,
    },
    /// Close this connection with CLOSE(`status`, `reason`). The mesh has already forgotten it
    /// (a later [`Mesh::closed`] for it is ignored).
    Close {
        /// The connection.
        conn: ConnId,
        /// CLOSE status.
        status: Status,
        /// CLOSE message.
        reason: &'static str,
    },
    /// A member's state changed (publish it).
    State {
        /// The member.
        name: Vec<u8>,
        /// Its new state.
        state: MemberState,
    },
}

/// The answer to an inbound connection ([`Mesh::inbound`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accept it (send the acceptor's HELLO): it is now the member's connection. A connection it
    /// replaces is closed by an [`Action::Close`].
    Accept,
    /// Refuse it: CLOSE(`status`, `reason`) instead of the acceptor's HELLO.
    Refuse {
        /// CLOSE status: PERMISSION_DENIED (not a member) or FAILED_PRECONDITION (this node
        /// dials the pair).
        status: Status,
        /// CLOSE message.
        reason: &'static str,
    },
}

/// Counters of a mesh's decisions, for monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// Dials started.
    pub dials: u64,
    /// Dials that failed.
    pub dial_failures: u64,
    /// Connections established (dialed or accepted).
    pub established: u64,
    /// Established connections lost.
    pub lost: u64,
    /// Inbound connections replaced by a newer one from the same member.
    pub replaced: u64,
    /// Inbound connections refused: not a member.
    pub refused_non_members: u64,
    /// Inbound connections refused: this node dials the pair.
    pub refused_wrong_dialer: u64,
    /// Dialed connections closed because the node there announced another name.
    pub wrong_names: u64,
}

#[derive(Clone, Debug)]
struct Member<A> {
    addr: A,
    /// Whether this node dials the member ([`dials`]).
    we_dial: bool,
    state: MemberState,
    /// The attempt in progress (when Dialing).
    dial: Option<DialId>,
    /// Base delay of the next backoff.
    delay: Duration,
}

/// A node's view of its mesh. See the [module docs](self).
#[derive(Debug)]
pub struct Mesh<A> {
    me: Vec<u8>,
    addr: A,
    config: MeshConfig,
    members: BTreeMap<Vec<u8>, Member<A>>,
    /// Established connections → their member.
    conns: BTreeMap<ConnId, Vec<u8>>,
    /// Members in backoff, by when their next attempt is due.
    timers: BTreeMap<(Instant, Vec<u8>), ()>,
    next_dial: u64,
    jitter: Jitter,
    actions: VecDeque<Action<A>>,
    stats: MeshStats,
}

fn check_name(name: &[u8]) -> Result<(), MeshError> {
    if name.is_empty() {
        Err(MeshError::EmptyName)
    } else if name.len() > MAX_NAME_LEN {
        Err(MeshError::NameTooLong { len: name.len() })
    } else {
        Ok(())
    }
}

impl<A: Clone> Mesh<A> {
    /// The mesh of node `me` at `addr` with `members` (name → address; the set may include `me`
    /// itself, as MinIO's host list does: it is skipped). Dials to the members this node dials
    /// are queued at once. `seed` feeds the backoff jitter (any value; the runtime passes a
    /// random one so that nodes differ).
    pub fn new(
        me: &[u8],
        addr: A,
        members: impl IntoIterator<Item = (Vec<u8>, A)>,
        config: MeshConfig,
        seed: u64,
    ) -> Result<Self, MeshError> {
        check_name(me)?;
        let mut mesh = Mesh {
            me: me.to_vec(),
            addr,
            config,
            members: BTreeMap::new(),
            conns: BTreeMap::new(),
            timers: BTreeMap::new(),
            next_dial: 0,
            jitter: Jitter::new(seed),
            actions: VecDeque::new(),
            stats: MeshStats::default(),
        };
        for (name, addr) in members {
            mesh.add_member(&name, addr)?;
        }
        Ok(mesh)
    }

    /// This node's name.
    pub fn name(&self) -> &[u8] {
        &self.me
    }

    /// This node's address.
    pub fn addr(&self) -> &A {
        &self.addr
    }

    /// The configuration.
    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> MeshStats {
        self.stats
    }

    /// Whether `name` is a member (other than this node).
    pub fn is_member(&self, name: &[u8]) -> bool {
        self.members.contains_key(name)
    }

    /// A member's state.
    pub fn state(&self, name: &[u8]) -> Option<MemberState> {
        self.members.get(name).map(|m| m.state)
    }

    /// A member's address.
    pub fn member_addr(&self, name: &[u8]) -> Option<&A> {
        self.members.get(name).map(|m| &m.addr)
    }

    /// The connection to a member, if connected.
    pub fn connection(&self, name: &[u8]) -> Option<ConnId> {
        match self.members.get(name)?.state {
            MemberState::Connected { conn, .. } => Some(conn),
            _ => None,
        }
    }

    /// The member a connection belongs to.
    pub fn member_of(&self, conn: ConnId) -> Option<&[u8]> {
        self.conns.get(&conn).map(Vec::as_slice)
    }

    /// Every member with its state, in name order.
    pub fn members(&self) -> impl Iterator<Item = (&[u8], MemberState)> {
        self.members.iter().map(|(n, m)| (n.as_slice(), m.state))
    }

    /// Number of members (other than this node).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the mesh has no member other than this node.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Established connections the mesh tracks (at most one per member).
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Backoff timers pending (at most one per member).
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    /// Adds a member (or changes a member's address: the next dial uses it; a live connection is
    /// kept). If this node dials it, a dial is queued at once. Adding this node's own name does
    /// nothing.
    pub fn add_member(&mut self, name: &[u8], addr: A) -> Result<(), MeshError> {
        check_name(name)?;
        if name == self.me.as_slice() {
            return Ok(());
        }
        if let Some(m) = self.members.get_mut(name) {
            m.addr = addr;
            return Ok(());
        }
        if self.members.len() >= self.config.max_members {
            return Err(MeshError::TooManyMembers { limit: self.config.max_members });
        }
        let we_dial = dials(&self.me, name);
        let m = Member {
            addr,
            we_dial,
            state: MemberState::Awaiting,
            dial: None,
            delay: self.config.initial_backoff,
        };
        self.members.insert(name.to_vec(), m);
        if we_dial {
            self.start_dial(name, 1);
        } else {
            self.publish(name);
        }
        Ok(())
    }

    /// Removes a member: its connection is closed with CLOSE(OK), an attempt in progress is
    /// abandoned (its connection, if it completes, is closed), inbound connections from it are
    /// refused from now on. Returns whether it was a member.
    pub fn remove_member(&mut self, name: &[u8]) -> bool {
        let Some(m) = self.members.remove(name) else { return false };
        // A dial queued but not yet started is dropped rather than started and closed.
        self.actions.retain(|a| !matches!(a, Action::Dial { dial, .. } if Some(*dial) == m.dial));
        match m.state {
            MemberState::Connected { conn, .. } => {
                self.conns.remove(&conn);
                self.actions.push_back(Action::Close { conn, status: Status::OK, reason: REASON_REMOVED });
            }
            MemberState::Backoff { next, .. } => {
                self.timers.remove(&(next, name.to_vec()));
            }
            _ => {}
        }
        self.actions.push_back(Action::State { name: name.to_vec(), state: MemberState::Removed });
        true
    }

    /// When the runtime must call [`tick`](Self::tick) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.keys().next().map(|(t, _)| *t)
    }

    /// Time passes: starts the attempts that are due.
    pub fn tick(&mut self, now: Instant) {
        while let Some((t, name)) = self.timers.keys().next().cloned() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, name.clone()));
            let attempt = match self.members.get(&name).map(|m| m.state) {
                Some(MemberState::Backoff { failures, .. }) => failures + 1,
                _ => continue,
            };
            self.start_dial(&name, attempt);
        }
    }

    /// Dial `dial` completed its HELLO exchange on connection `conn`, and the node there
    /// announced `peer_name` (authenticated, if the runtime authenticates acceptors). The
    /// connection becomes the member's, unless the attempt was abandoned (the member was removed:
    /// [`Action::Close`] with OK) or the name is not the member's ([`Action::Close`] with
    /// PERMISSION_DENIED, and the attempt counts as failed).
    pub fn dial_succeeded(&mut self, now: Instant, dial: DialId, conn: ConnId, peer_name: &[u8]) {
        let Some(name) = self.dialing(dial) else {
            self.actions.push_back(Action::Close { conn, status: Status::OK, reason: REASON_UNWANTED });
            return;
        };
        if name != peer_name {
            self.stats.wrong_names += 1;
            self.actions.push_back(Action::Close {
                conn,
                status: Status::PERMISSION_DENIED,
                reason: REASON_WRONG_NAME,
            });
            self.fail(now, &name);
            return;
        }
        self.establish(now, &name, conn, true);
    }

    /// Dial `dial` failed (connect refused or timed out, handshake failed or refused). Schedules
    /// the next attempt. An answer to an abandoned attempt is ignored.
    pub fn dial_failed(&mut self, now: Instant, dial: DialId) {
        if let Some(name) = self.dialing(dial) {
            self.stats.dial_failures += 1;
            self.fail(now, &name);
        }
    }

    /// A peer connected and its HELLO announced `name` (authenticated, if the runtime
    /// authenticates: SPEC.md §5.6). Decide before sending the acceptor's HELLO.
    ///
    /// * Not a member (or this node's own name): refused with PERMISSION_DENIED.
    /// * A member this node dials itself: refused with FAILED_PRECONDITION (the peer disagrees
    ///   about the dialer rule, or knows this node under another name).
    /// * Otherwise accepted; a connection the member already had is closed with UNAVAILABLE
    ///   (the member dialed again, so it lost that one: it restarted, or its end timed out).
    pub fn inbound(&mut self, now: Instant, conn: ConnId, name: &[u8]) -> Verdict {
        let we_dial = match self.members.get(name) {
            None => {
                self.stats.refused_non_members += 1;
                return Verdict::Refuse { status: Status::PERMISSION_DENIED, reason: REASON_NOT_MEMBER };
            }
            Some(m) => m.we_dial,
        };
        if we_dial {
            self.stats.refused_wrong_dialer += 1;
            return Verdict::Refuse { status: Status::FAILED_PRECONDITION, reason: REASON_WRONG_DIALER };
        }
        if self.connection(name) == Some(conn) {
            return Verdict::Accept;
        }
        if let Some(old) = self.connection(name) {
            self.conns.remove(&old);
            self.stats.replaced += 1;
            self.actions.push_back(Action::Close {
                conn: old,
                status: Status::UNAVAILABLE,
                reason: REASON_REPLACED,
            });
        }
        self.establish(now, name, conn, false);
        Verdict::Accept
    }

    /// Connection `conn` is gone (closed by either side, lost, timed out). If it was a member's,
    /// the member is redialed after a backoff (this node dials it) or awaited.
    pub fn closed(&mut self, now: Instant, conn: ConnId) {
        let Some(name) = self.conns.remove(&conn) else { return };
        self.actions.retain(|a| !matches!(a, Action::Close { conn: c, .. } if *c == conn));
        let Some(m) = self.members.get_mut(&name) else { return };
        let MemberState::Connected { since, .. } = m.state else { return };
        self.stats.lost += 1;
        if !m.we_dial {
            m.state = MemberState::Awaiting;
            self.publish(&name);
            return;
        }
        if now.saturating_duration_since(since) < self.config.stable_after {
            // Short-lived: counts as a failed attempt, the backoff keeps growing.
            self.fail(now, &name);
        } else {
            m.delay = self.config.initial_backoff;
            self.schedule(now, &name, 0);
        }
    }

    /// The next action for the runtime, if any.
    pub fn poll_action(&mut self) -> Option<Action<A>> {
        self.actions.pop_front()
    }

    // ------------------------------------------------------------------ internals

    /// The member whose attempt in progress is `dial`.
    fn dialing(&self, dial: DialId) -> Option<Vec<u8>> {
        self.members.iter().find(|(_, m)| m.dial == Some(dial)).map(|(n, _)| n.clone())
    }

    fn start_dial(&mut self, name: &[u8], attempt: u32) {
        let Some(m) = self.members.get_mut(name) else { return };
        let dial = DialId(self.next_dial);
        self.next_dial += 1;
        m.dial = Some(dial);
        m.state = MemberState::Dialing { attempt };
        self.stats.dials += 1;
        let addr = m.addr.clone();
        self.publish(name);
        self.actions.push_back(Action::Dial { dial, name: name.to_vec(), addr });
    }

    fn establish(&mut self, now: Instant, name: &[u8], conn: ConnId, dialed: bool) {
        let Some(m) = self.members.get_mut(name) else { return };
        m.dial = None;
        m.state = MemberState::Connected { conn, since: now, dialed };
        self.conns.insert(conn, name.to_vec());
        self.stats.established += 1;
        self.publish(name);
    }

    /// An attempt (or a short-lived connection) of a member this node dials failed.
    fn fail(&mut self, now: Instant, name: &[u8]) {
        let failures = match self.members.get(name).map(|m| m.state) {
            Some(MemberState::Dialing { attempt }) => attempt,
            Some(MemberState::Connected { .. }) => 1,
            _ => return,
        };
        let (mult, max) = (self.config.multiplier.max(1), self.config.max_backoff);
        if let Some(m) = self.members.get_mut(name) {
            m.delay = m.delay.saturating_mul(mult).min(max);
        }
        self.schedule(now, name, failures);
    }

    /// Puts a member into backoff for its current base delay, jittered.
    fn schedule(&mut self, now: Instant, name: &[u8], failures: u32) {
        let Some(m) = self.members.get_mut(name) else { return };
        m.dial = None;
        let base = m.delay.min(self.config.max_backoff);
        let next = now.saturating_add(self.jitter.draw(base, self.config.jitter_percent));
        m.state = MemberState::Backoff { failures, next };
        self.timers.insert((next, name.to_vec()), ());
        self.publish(name);
    }

    fn publish(&mut self, name: &[u8]) {
        if let Some(m) = self.members.get(name) {
            self.actions.push_back(Action::State { name: name.to_vec(), state: m.state });
        }
    }
}
