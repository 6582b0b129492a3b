//! A mesh of peers (SPEC.md §16), the part both runtimes share: [`MeshCore`] drives the sans-IO
//! [`tandem_core::endpoint::mesh::Mesh`], which makes every decision (who dials, which
//! connection a member keeps, when to redial), around connections made the ordinary way — the
//! server's accepted connections, judged by the core as the hub's [`Gate`] after the
//! authenticator and before the server's HELLO, and client connections the runtime dials when
//! the core asks ([`DialFn`]). Its loop is a task on the shared I/O threads (`task.rs`): it ticks the
//! mesh's timer, notices closed connections, closes those the mesh drops, starts dials and
//! publishes member states to the [`MemberWatch`]es. A runtime's `Mesh` is a `Server` built with
//! the core as its gate, plus the core. (Layer 9: imports `threads`, `hub`, `peer`, `conn`,
//! `auth`, `clock`, `error`, `deadline`.)
//!
//! Lock order: a connection's lock may be held while taking the core's (the gate runs in the
//! connection's driver), never the reverse: the core never locks a connection, closes one or
//! drops a handle while it holds its own lock.

mod task;

use core::fmt;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use event_listener::Event;
use futures_lite::future::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::addr::Address;
use tandem_core::endpoint::mesh::{DialId, Mesh, Verdict};
use tandem_core::endpoint::ConnId;
use tandem_core::typed::Unary;
use tandem_core::{MethodId, Status};

pub use tandem_core::endpoint::mesh::{
    dials, MemberState, MeshConfig, MeshError as MembershipError, MeshStats, REASON_NOT_MEMBER,
    REASON_REMOVED, REASON_REPLACED, REASON_WRONG_DIALER, REASON_WRONG_NAME,
};

use crate::auth::{AuthRefusal, PeerIdentity};
use crate::clock::{self, now, SleepUntil};
use crate::conn::Shared;
use crate::deadline::Deadline;
use crate::error::{CallError, Error, ErrorKind};
use crate::hub::{join_all, Gate};
use crate::peer::{self, Peer};

/// The CLOSE reason when an authenticated peer's HELLO name is not the identity its
/// authenticator proved (PERMISSION_DENIED; SPEC.md §16.4).
pub const REASON_NAME_NOT_PROVEN: &str = "mesh: the HELLO name is not the identity the authenticator proved";
/// The CLOSE reason of a node that is shutting down: to a peer connecting meanwhile
/// (UNAVAILABLE), on its dialed connections when it is dropped (UNAVAILABLE), and on a dial
/// that completes after it stopped (OK).
pub const REASON_STOPPING: &str = "mesh: this node is shutting down";

/// Most member state changes a [`MemberWatch`] can lag behind before it skips to the current
/// state.
const LOG_LEN: usize = 1024;

/// Dialed connections' ids in the mesh: the runtime's connection id with this bit set, so that
/// they never equal an accepted connection's (the server endpoint's ids).
const DIALED: u64 = 1 << 63;

/// What a mesh node is: its name, where it listens, the other members, and the configurations
/// of the connections it accepts (`S`: the runtime's `ServerConfig`) and dials (`C`: its
/// `ClientConfig`). The node's name replaces the `name` of both configurations; everything
/// else in them (authentication, TLS, resumption, limits) applies to mesh connections as to any
/// other.
#[derive(Clone, Debug)]
pub struct MeshOptions<S, C> {
    /// This node's name: unique in the mesh, 1 to 255 bytes, sent in every HELLO (SPEC.md §16.1).
    pub name: String,
    /// Where this node listens (`tcp://host:port`, `tls://host:port`, `unix:///path`, …).
    pub listen: String,
    /// The other members, name and address (this node's own entry, if present, is skipped).
    pub members: Vec<(String, String)>,
    /// The server side: connections from the members this node does not dial.
    pub server: S,
    /// The client side: connections to the members this node dials (dialing a member takes
    /// up to its `connect_timeout`; a transport it loses is resumed per its `resume` and
    /// `reconnect`).
    pub client: C,
    /// Backoff and limits of the mesh ([`MeshConfig`]).
    pub mesh: MeshConfig,
}

impl<S, C> MeshOptions<S, C> {
    /// A node named `name` listening on `listen`, with no members yet (see
    /// [`member`](Self::member)) and the default [`MeshConfig`].
    pub fn new(name: impl Into<String>, listen: impl Into<String>, server: S, client: C) -> Self {
        MeshOptions {
            name: name.into(),
            listen: listen.into(),
            members: Vec::new(),
            server,
            client,
            mesh: MeshConfig::default(),
        }
    }

    /// Adds a member.
    pub fn member(mut self, name: impl Into<String>, addr: impl Into<String>) -> Self {
        self.members.push((name.into(), addr.into()));
        self
    }
}

/// A member as this node sees it ([`MeshCore::members`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its name.
    pub name: String,
    /// Its address.
    pub addr: String,
    /// Whether this node dials it (SPEC.md §16.2); otherwise it dials this node.
    pub dialer: bool,
    /// Where it is.
    pub state: MemberState,
    /// The connection this node holds with it (the mesh's id), if any.
    pub connection: Option<u64>,
}

/// Why [`MeshCore::peer`] has no connection to hand out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotConnected {
    /// The member asked for.
    pub member: String,
    /// Its state (`None`: not a member).
    pub state: Option<MemberState>,
    /// The last failed dial's error, if this node dials it.
    pub last_error: Option<String>,
}

impl fmt::Display for NotConnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.member;
        match self.state {
            None | Some(MemberState::Removed) => {
                write!(f, "{m:?} is not a member of this mesh: add it with Mesh::add_member")
            }
            Some(MemberState::Awaiting) => {
                write!(f, "mesh member {m:?} is not connected: it dials this node, which waits for it")
            }
            Some(MemberState::Dialing { attempt }) => {
                write!(f, "mesh member {m:?} is not connected yet: dialing it (attempt {attempt})")?;
                self.last(f)
            }
            Some(MemberState::Backoff { failures, .. }) => {
                write!(
                    f,
                    "mesh member {m:?} is not connected: redialing it soon ({failures} failed attempts)"
                )?;
                self.last(f)
            }
            Some(MemberState::Connected { .. }) => {
                write!(f, "mesh member {m:?} was just connected: try again")
            }
        }
    }
}

impl NotConnected {
    fn last(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.last_error {
            Some(e) => write!(f, "; last error: {e}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for NotConnected {}

/// Reports the result of a dial the core asked for ([`finish`](Self::finish)). Dropped
/// unfinished (a dial task its executor dropped), it reports the dial as failed, so that the
/// member is redialed rather than left dialing forever.
pub struct DialDone(Option<Report>);

/// What [`DialDone`] calls.
type Report = Box<dyn FnOnce(Result<Peer, Error>) + Send>;

impl DialDone {
    /// Reports the dial's result: its connection, handshake completed, or why it failed.
    pub fn finish(mut self, result: Result<Peer, Error>) {
        if let Some(f) = self.0.take() {
            f(result);
        }
    }
}

impl Drop for DialDone {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let abandoned = std::io::Error::other("the dial was dropped before it finished");
            f(Err(crate::error::io_error("mesh dial", abandoned)));
        }
    }
}

impl fmt::Debug for DialDone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DialDone")
    }
}
/// The runtime's dialer: connects to the address (a client connection of the mesh's client
/// configuration, serving the mesh's handlers) without blocking the caller, and calls the
/// [`DialDone`] with the connection once its handshake completed or the error.
pub type DialFn = Box<dyn Fn(Address, DialDone) + Send + Sync>;

/// One connection the mesh holds.
struct Conn {
    peer: Peer,
    dialed: bool,
}

struct State {
    mesh: Mesh<Address>,
    /// The connections the mesh holds: at most one per member.
    conns: HashMap<ConnId, Conn>,
    /// Connections replaced by a newer one from the same member, until the loop closes them.
    retired: HashMap<ConnId, Conn>,
    /// Dials in progress: their member.
    dialing: HashMap<DialId, String>,
    /// The last failed dial's error per member.
    errors: HashMap<String, String>,
    /// Member state changes, numbered: what the watches read.
    log: VecDeque<(u64, String, MemberState)>,
    seq: u64,
    /// The loop's waker.
    waker: Option<core::task::Waker>,
    stopped: bool,
}

/// A mesh node's shared state and decisions (see the [module docs](self)); the runtimes'
/// `Mesh` wrap it.
pub struct MeshCore {
    name: String,
    state: Mutex<State>,
    dial: DialFn,
    sleep: SleepUntil,
    /// Notified on every member state change and when the node stops.
    changed: Event,
}

impl fmt::Debug for MeshCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshCore").field("name", &self.name).field("members", &self.members()).finish()
    }
}

impl MeshCore {
    /// The core of node `name` at `listen` with `members` and `config`; `dial` makes its
    /// connections, `sleep` is the runtime's timer. Nothing runs before [`start`](Self::start);
    /// install the core as its server's [`Gate`] in between.
    pub fn new(
        name: &str,
        listen: &str,
        members: &[(String, String)],
        config: MeshConfig,
        dial: DialFn,
        sleep: SleepUntil,
    ) -> Result<Arc<MeshCore>, Error> {
        let addr: Address = listen.parse()?;
        let mut parsed = Vec::with_capacity(members.len());
        for (n, a) in members {
            parsed.push((n.as_bytes().to_vec(), a.parse::<Address>()?));
        }
        let mesh = Mesh::new(name.as_bytes(), addr, parsed, config, clock::seed()).map_err(Error::Mesh)?;
        let state = State {
            mesh,
            conns: HashMap::new(),
            retired: HashMap::new(),
            dialing: HashMap::new(),
            errors: HashMap::new(),
            log: VecDeque::new(),
            seq: 0,
            waker: None,
            stopped: false,
        };
        Ok(Arc::new(MeshCore {
            name: name.to_owned(),
            state: Mutex::new(state),
            dial,
            sleep,
            changed: Event::new(),
        }))
    }

    /// Starts the mesh's loop on the I/O threads: the first dials go out.
    pub fn start(self: &Arc<Self>) {
        crate::threads::io::spawn(Box::new(task::MeshTask::new(self.clone())), false);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(st: &mut State) {
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection to member `name`, whichever side dialed it: call, notify and open
    /// streams on it. [`NotConnected`] says why there is none (not a member, being dialed and
    /// the last error, awaited).
    pub fn peer(&self, name: &str) -> Result<Peer, NotConnected> {
        let st = self.lock();
        let conn = st.mesh.connection(name.as_bytes()).and_then(|id| st.conns.get(&id));
        match conn {
            Some(c) => Ok(c.peer.clone()),
            None => Err(NotConnected {
                member: name.to_owned(),
                state: st.mesh.state(name.as_bytes()),
                last_error: st.errors.get(name).cloned(),
            }),
        }
    }

    /// Waits until member `name` is connected, for at most `timeout`.
    pub async fn wait_for_peer(&self, name: &str, timeout: Duration) -> Result<Peer, NotConnected> {
        let deadline = std::time::Instant::now() + timeout;
        let wait = async {
            loop {
                let listener = self.changed.listen();
                match self.peer(name) {
                    Ok(p) => return Ok(p),
                    Err(_) if self.lock().stopped => return self.peer(name),
                    Err(_) => listener.await,
                }
            }
        };
        wait.or(async {
            (self.sleep)(deadline).await;
            self.peer(name)
        })
        .await
    }

    /// Every member, in name order.
    pub fn members(&self) -> Vec<MemberInfo> {
        let st = self.lock();
        st.mesh
            .members()
            .map(|(n, state)| MemberInfo {
                name: String::from_utf8_lossy(n).into_owned(),
                addr: st.mesh.member_addr(n).map(|a| a.to_string()).unwrap_or_default(),
                dialer: dials(self.name.as_bytes(), n),
                state,
                connection: match state {
                    MemberState::Connected { conn, .. } => Some(conn.0),
                    _ => None,
                },
            })
            .collect()
    }

    /// The connections this node holds for the mesh: (dialed by this node, accepted). At most
    /// one per member; exactly one per member once the mesh has converged.
    pub fn connections(&self) -> (usize, usize) {
        let st = self.lock();
        let dialed = st.conns.values().filter(|c| c.dialed).count();
        (dialed, st.conns.len() - dialed)
    }

    /// The mesh's counters (dials, failures, connections established and lost, replaced,
    /// refusals).
    pub fn stats(&self) -> MeshStats {
        self.lock().mesh.stats()
    }

    /// Adds a member at `addr`, or changes a member's address (the next dial uses it; a live
    /// connection is kept). If this node dials it, it dials it at once.
    pub fn add_member(&self, name: &str, addr: &str) -> Result<(), Error> {
        let addr: Address = addr.parse()?;
        let mut st = self.lock();
        st.mesh.add_member(name.as_bytes(), addr).map_err(Error::Mesh)?;
        Self::wake(&mut st);
        Ok(())
    }

    /// Removes a member: its connection closes with CLOSE(OK), and it is refused from now on
    /// (SPEC.md §16.6). Returns whether it was a member.
    pub fn remove_member(&self, name: &str) -> bool {
        let mut st = self.lock();
        let removed = st.mesh.remove_member(name.as_bytes());
        st.errors.remove(name);
        Self::wake(&mut st);
        removed
    }

    /// A watch of member `name`'s state (it need not be a member yet).
    pub fn watch(self: &Arc<Self>, name: &str) -> MemberWatch {
        let seen = self.lock().seq;
        MemberWatch { core: self.clone(), name: name.to_owned(), seen }
    }

    /// Calls `method` on every member at once, each on its connection; one result per member,
    /// in name order. A member that is not connected gets UNAVAILABLE at once (with the
    /// reason); the others are bounded by `deadline`.
    pub async fn call_all<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        deadline: impl Into<Deadline>,
    ) -> Vec<(String, Result<Resp, CallError>)>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        let deadline = deadline.into();
        let calls = self.targets().into_iter().map(|(name, p)| async move {
            let r = match p {
                Ok(p) => p.call(method, req, deadline).await,
                Err(e) => Err(unreachable(&e)),
            };
            (name, r)
        });
        join_all(calls.collect()).await
    }

    /// [`call_all`](Self::call_all) on raw bytes.
    pub async fn call_all_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Vec<(String, Result<Vec<u8>, CallError>)> {
        let deadline = deadline.into();
        let calls = self.targets().into_iter().map(|(name, p)| async move {
            let r = match p {
                Ok(p) => p.call_raw(method, payload, deadline).await,
                Err(e) => Err(unreachable(&e)),
            };
            (name, r)
        });
        join_all(calls.collect()).await
    }

    fn targets(&self) -> Vec<(String, Result<Peer, NotConnected>)> {
        let names: Vec<String> = self.members().into_iter().map(|m| m.name).collect();
        names.into_iter().map(|n| (n.clone(), self.peer(&n))).collect()
    }

    /// Stops the node's mesh: no more dials, inbound connections refused (UNAVAILABLE), the loop
    /// ends. Returns the connections this node dialed, for the runtime to close or drain (the
    /// accepted ones are its server's).
    pub fn stop(&self) -> Vec<Peer> {
        let (dialed, rest) = {
            let mut st = self.lock();
            st.stopped = true;
            Self::wake(&mut st);
            let mut all: Vec<Conn> = st.conns.drain().map(|(_, c)| c).collect();
            all.extend(st.retired.drain().map(|(_, c)| c));
            all.into_iter().partition::<Vec<Conn>, _>(|c| c.dialed)
        };
        self.changed.notify(usize::MAX);
        drop(rest);
        dialed.into_iter().map(|c| c.peer).collect()
    }

    /// A dial the core asked for completed.
    fn dial_done(&self, dial: DialId, result: Result<Peer, Error>) {
        let mut st = self.lock();
        let member = st.dialing.remove(&dial).unwrap_or_default();
        match result {
            Ok(p) if st.stopped => {
                drop(st);
                p.close_with(Status::OK, REASON_STOPPING);
            }
            Ok(p) => {
                let id = ConnId(peer::shared(&p).id | DIALED);
                tracing::debug!(mesh = %self.name, member = %member, conn = id.0, "dialed");
                let named = p.name().as_bytes().to_vec();
                st.conns.insert(id, Conn { peer: p, dialed: true });
                st.errors.remove(&member);
                st.mesh.dial_succeeded(now(), dial, id, &named);
                Self::wake(&mut st);
            }
            Err(e) => {
                tracing::debug!(mesh = %self.name, member = %member, error = %e, "dial failed");
                if st.mesh.is_member(member.as_bytes()) {
                    st.errors.insert(member, e.to_string());
                }
                st.mesh.dial_failed(now(), dial);
                Self::wake(&mut st);
            }
        }
    }
}

impl Gate for MeshCore {
    fn judge(
        &self,
        id: ConnId,
        shared: &Arc<Shared>,
        name: &[u8],
        identity: Option<&PeerIdentity>,
    ) -> Result<(), AuthRefusal> {
        // With an authenticator, the name is what it proved: the identity must be the name.
        if identity.is_some_and(|i| i.as_str().as_bytes() != name) {
            return Err(AuthRefusal::permission_denied(REASON_NAME_NOT_PROVEN));
        }
        let mut st = self.lock();
        if st.stopped {
            return Err(AuthRefusal { status: Status::UNAVAILABLE, message: REASON_STOPPING.into() });
        }
        let older = st.mesh.connection(name).filter(|c| *c != id);
        match st.mesh.inbound(now(), id, name) {
            Verdict::Accept => {
                // Replaced: no longer the member's; the loop closes it (the mesh asked).
                if let Some(c) = older.and_then(|o| st.conns.remove(&o).map(|c| (o, c))) {
                    st.retired.insert(c.0, c.1);
                }
                st.conns
                    .entry(id)
                    .or_insert_with(|| Conn { peer: peer::from_shared(shared.clone()), dialed: false });
                Self::wake(&mut st);
                Ok(())
            }
            Verdict::Refuse { status, reason } => Err(AuthRefusal { status, message: reason.into() }),
        }
    }
}

/// The error of a member [`MeshCore::call_all`] could not call.
fn unreachable(e: &NotConnected) -> CallError {
    CallError::new(ErrorKind::Status(Status::UNAVAILABLE)).with_body(Some(e.to_string()), Vec::new())
}

/// A member's state changes ([`MeshCore::watch`]), in order.
pub struct MemberWatch {
    core: Arc<MeshCore>,
    name: String,
    seen: u64,
}

impl fmt::Debug for MemberWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemberWatch").field("member", &self.name).field("seen", &self.seen).finish()
    }
}

impl MemberWatch {
    /// The member's state now (`None`: not a member).
    pub fn current(&self) -> Option<MemberState> {
        self.core.lock().mesh.state(self.name.as_bytes())
    }

    /// The next state change, in order (dialing, backoff, connected, awaiting, removed). A
    /// watch that fell more than 1,024 changes (of all members) behind skips to the current
    /// state. `None` once the node has stopped.
    pub async fn changed(&mut self) -> Option<MemberState> {
        loop {
            let listener = self.core.changed.listen();
            {
                let st = self.core.lock();
                let oldest = st.log.front().map_or(st.seq + 1, |e| e.0);
                if oldest > self.seen + 1 && st.seq > self.seen {
                    // Lagged: the changes in between are gone.
                    self.seen = st.seq;
                    if let Some(s) = st.mesh.state(self.name.as_bytes()) {
                        return Some(s);
                    }
                }
                let next = st.log.iter().find(|(n, m, _)| *n > self.seen && *m == self.name);
                if let Some((n, _, s)) = next {
                    self.seen = *n;
                    return Some(*s);
                }
                self.seen = st.seq;
                if st.stopped {
                    return None;
                }
            }
            listener.await;
        }
    }
}
