//! A connection's link to the many-connection logic: on a server, its [`Hub`] (the core's
//! `Endpoint`); on a client, the core's [`Dialer`]. This file turns what happens to the
//! connection (connected, suspended, resumed, memory used) into reports to them, and their
//! answers into actions: resuming a session onto a new transport, the steps of the
//! reconnection schedule, publishing the [`LinkState`]. The runtime only dials and waits.
//! (Layer 5: imports `hub`, `conn`, `state`, `clock`, `auth`.)

use std::net::SocketAddr;
use std::sync::Arc;

use tandem_core::endpoint::{ConnId, Dialer, LinkState as DialState};
use tandem_core::{ConnectionError, SessionMemory, State, Status};

use crate::auth::{AuthRefusal, AuthRequest, PeerIdentity};
use crate::clock::{now, to_std};
use crate::conn::{Inner, Shared, Transport};
use crate::hub::{Actions, Hub};
use crate::state::LinkState;

/// A client's reconnection state.
pub(crate) struct Redial {
    pub(crate) dialer: Dialer,
    /// Resume the session when the transport is lost (`ClientConfig::resume`; never on UDP).
    pub(crate) resume: bool,
    /// The runtime is dialing an attempt's transport.
    attempting: bool,
}

impl Redial {
    pub(crate) fn new(dialer: Dialer, resume: bool) -> Self {
        Redial { dialer, resume, attempting: false }
    }
}

/// Who decides about a connection beyond its own exchanges.
pub(crate) enum Link {
    /// Accepted by a server: its endpoint decides. `udp`: the association's address.
    Acceptor { hub: Arc<Hub>, id: ConnId, udp: Option<SocketAddr> },
    /// Dialed by a client: its dialer decides when to reconnect.
    Dialer(Box<Redial>),
}

/// What the connection's transport needs, after [`Engine::track`](crate::engine::Engine::track).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    /// The transport is fine (or there is none and nothing to do).
    Keep,
    /// The transport is lost: drop it. Nothing replaces it (a server waits for its client, or
    /// the connection is closing).
    Lost,
    /// The transport is lost (or an attempt's died) and the client reconnects: drop it and
    /// follow [`Engine::redial`](crate::engine::Engine::redial).
    Redial,
}

/// The next step of the reconnection schedule ([`Engine::redial`](crate::engine::Engine::redial)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redialing {
    /// Dial a transport now (within `ClientConfig::connect_timeout`), then report it with
    /// [`Engine::attempt_connected`](crate::engine::Engine::attempt_connected) or
    /// [`Engine::attempt_failed`](crate::engine::Engine::attempt_failed).
    Dial,
    /// Wait until this instant, then ask again.
    Wait(std::time::Instant),
    /// Nothing to do: an attempt is under way, or the dialer gave up (the connection closes).
    Idle,
}

/// The session bookkeeping of one connection's driver.
pub(crate) struct Session {
    pub(crate) link: Link,
    suspended: bool,
    resumptions: u64,
    reported: Option<SessionMemory>,
    force_report: bool,
}

impl Session {
    pub(crate) fn new(link: Link) -> Self {
        Session { link, suspended: false, resumptions: 0, reported: None, force_report: false }
    }

    /// Acceptor with an authenticator: the peer's HELLO arrived (`resuming`: it asks to resume a
    /// session). Runs the authenticator and, for a new session, checks that the name is free
    /// for the identity; stores the identity in `shared`. `Err(())`: the peer was refused, its
    /// CLOSE is queued (SPEC.md §5.6). `Ok(None)`: no authenticator.
    pub(crate) fn authenticate(
        &mut self,
        shared: &Arc<Shared>,
        inner: &mut Inner,
        resuming: bool,
    ) -> Result<Option<PeerIdentity>, ()> {
        let identity = self.run_authenticator(shared, inner, resuming)?;
        if !resuming {
            self.judge(shared, inner, identity.as_ref())?;
        }
        Ok(identity)
    }

    /// The hub's [`Gate`](crate::hub::Gate), if any, judges the connection (a mesh): `Err(())`
    /// when it refused it (its CLOSE is queued).
    fn judge(
        &self,
        shared: &Arc<Shared>,
        inner: &mut Inner,
        identity: Option<&PeerIdentity>,
    ) -> Result<(), ()> {
        let Link::Acceptor { hub, id, .. } = &self.link else { return Ok(()) };
        let Some(gate) = hub.gate.as_ref() else { return Ok(()) };
        let name = inner.conn.peer().map(|p| p.name.to_vec()).unwrap_or_default();
        let Err(refusal) = gate.judge(*id, shared, &name, identity) else { return Ok(()) };
        tracing::info!(conn = id.0, peer = %String::from_utf8_lossy(&name), status = %refusal.status, message = %refusal.message, "peer refused by the gate");
        let mut message = refusal.message.into_bytes();
        message.truncate(1024);
        inner.conn.close(now(), refusal.status, &message);
        Err(())
    }

    fn run_authenticator(
        &mut self,
        shared: &Shared,
        inner: &mut Inner,
        resuming: bool,
    ) -> Result<Option<PeerIdentity>, ()> {
        let Link::Acceptor { hub, id, .. } = &self.link else { return Ok(None) };
        let Some(authenticator) = hub.authenticator.clone() else { return Ok(None) };
        let (name, auth) = match inner.conn.peer() {
            Some(p) => (String::from_utf8_lossy(p.name).into_owned(), p.auth.to_vec()),
            None => return Ok(None),
        };
        let certificates = inner.peer_certificates.clone();
        let request = AuthRequest {
            name: &name,
            auth: &auth,
            credentials: shared.creds,
            remote_addr: inner.remote,
            resuming,
            peer_certificates: certificates.as_deref().unwrap_or(&[]),
        };
        let decision =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| authenticator.authenticate(&request)))
                .unwrap_or_else(|_| {
                    tracing::error!(conn = id.0, "the authenticator panicked: refusing the peer");
                    Err(AuthRefusal {
                        status: Status::INTERNAL,
                        message: "the server could not authenticate".into(),
                    })
                });
        let refusal = match decision {
            Ok(identity)
                if resuming || hub.claim_name(*id, name.as_bytes(), Some(identity.as_str().as_bytes())) =>
            {
                tracing::debug!(conn = id.0, peer = %name, %identity, "peer authenticated");
                let _ = shared.identity.set(identity.clone());
                return Ok(Some(identity));
            }
            Ok(identity) => AuthRefusal::permission_denied(format!(
                "the name {name:?} belongs to another identity's connection (this peer is {identity})"
            )),
            Err(r) => r,
        };
        tracing::info!(conn = id.0, peer = %name, status = %refusal.status, message = %refusal.message, "peer refused");
        let mut message = refusal.message.into_bytes();
        message.truncate(1024);
        inner.conn.close(now(), refusal.status, &message);
        Err(())
    }

    /// The handshake completed (`first`), or a resumption was answered with a new session.
    pub(crate) fn connected(
        &mut self,
        inner: &mut Inner,
        first: bool,
        name: &[u8],
        identity: Option<&PeerIdentity>,
        actions: &mut Actions,
    ) {
        match &mut self.link {
            Link::Acceptor { hub, id, .. } => {
                actions.extend(hub.connected(*id, name, identity.map(|i| i.as_str().as_bytes())));
                inner.set_link(LinkState::Connected { resumed: false });
            }
            Link::Dialer(r) if first => {
                r.dialer.connected(false);
                inner.set_link(LinkState::Connected { resumed: false });
            }
            Link::Dialer(r) => {
                if r.dialer.not_resumed() {
                    tracing::info!("the server did not resume the session: continuing with a new one (old exchanges failed UNAVAILABLE)");
                    r.dialer.connected(false);
                    inner.set_link(LinkState::Connected { resumed: false });
                } else {
                    tracing::info!("the server did not resume the session and ReconnectPolicy::fresh_session is off: closing");
                    inner.conn.close(
                        now(),
                        Status::UNAVAILABLE,
                        b"session not resumed and ReconnectPolicy::fresh_session is off",
                    );
                }
            }
        }
    }

    /// Acceptor: the dialer on this fresh connection asked to resume the session `token`.
    /// Moves the transport (`take_transport`) into that session when the endpoint says so
    /// (this connection is then over), otherwise answers with a new session.
    pub(crate) fn resume_requested(
        &mut self,
        shared: &Arc<Shared>,
        inner: &mut Inner,
        token: &[u8],
        take_transport: impl FnOnce() -> Option<Transport>,
        actions: &mut Actions,
    ) {
        // The resuming HELLO is authenticated again; only the session's identity resumes it.
        let Ok(identity) = self.authenticate(shared, inner, true) else { return };
        let Link::Acceptor { hub, id, .. } = &self.link else { return };
        let who = identity.as_ref().map(|i| i.as_str().as_bytes());
        if let Some((sid, session)) = hub.resume_requested(*id, token, who) {
            // Lock order: a fresh connection, then the session (a session never locks a fresh
            // connection).
            let mut si = session.lock();
            match si.conn.resume_from(now(), &mut inner.conn) {
                Ok(()) => {
                    if let Some(t) = take_transport() {
                        si.remote = t.remote;
                        si.new_transport = Some(t);
                    }
                    si.wake_driver();
                    drop(si);
                    tracing::info!(conn = id.0, session = sid.0, "session resumed on a new transport");
                    actions.extend(hub.resumed(sid, *id));
                    inner.closed = Some(ConnectionError::LocallyClosed { status: Status::OK });
                    return;
                }
                Err(e) => {
                    tracing::info!(conn = id.0, session = sid.0, error = %e, "cannot resume: declining")
                }
            }
        } else {
            tracing::info!(conn = id.0, "unknown, ended or foreign session: declining resumption");
        }
        // Declined, the peer continues with a fresh session under its name: refused if the name
        // belongs to another identity (SPEC.md §5.6), before it is answered.
        let name = inner.conn.peer().map(|p| p.name.to_vec()).unwrap_or_default();
        if identity.is_some() && !hub.claim_name(*id, &name, who) {
            tracing::info!(
                conn = id.0,
                "resumption declined and the name belongs to another identity: refused"
            );
            inner.conn.close(
                now(),
                Status::PERMISSION_DENIED,
                b"this name belongs to another identity's connection",
            );
            return;
        }
        // A fresh session is a new connection for a mesh: judged like one.
        if self.judge(shared, inner, identity.as_ref()).is_err() {
            return;
        }
        if let Err(e) = inner.conn.decline_resume(now()) {
            tracing::debug!(conn = id.0, error = %e, "decline_resume refused");
        }
    }

    /// Follows suspensions and resumptions (SPEC.md §13) and says what the transport needs.
    pub(crate) fn track(&mut self, inner: &mut Inner, actions: &mut Actions) -> Track {
        let state = inner.conn.state();
        let suspended = state == State::Suspended;
        if suspended != self.suspended {
            self.suspended = suspended;
            self.force_report = true;
            if suspended {
                let since = inner.conn.suspended_since().unwrap_or_else(now);
                tracing::info!(grace = ?inner.conn.config().session_grace, "transport lost: session suspended");
                if let Link::Acceptor { hub, id, .. } = &self.link {
                    actions.extend(hub.suspended(*id, since));
                    let since = to_std(since).unwrap_or_else(std::time::Instant::now);
                    inner.set_link(LinkState::Suspended { since, failures: 0, next: None });
                }
            } else if state != State::Closed {
                let resumptions = inner.conn.stats().resumptions;
                let resumed = resumptions > self.resumptions;
                self.resumptions = resumptions;
                match &mut self.link {
                    Link::Acceptor { hub, id, .. } => hub.unsuspended(*id),
                    Link::Dialer(r) if resumed => r.dialer.connected(true),
                    Link::Dialer(_) => {}
                }
                if resumed {
                    tracing::info!("session resumed");
                    inner.set_link(LinkState::Connected { resumed: true });
                }
            }
        }
        if !inner.conn.needs_transport() {
            return Track::Keep;
        }
        let Link::Dialer(r) = &mut self.link else { return Track::Lost };
        if !r.resume {
            tracing::info!("transport lost and resumption is off (ClientConfig::resume): closing");
            inner.conn.close(now(), Status::UNAVAILABLE, b"transport lost");
            return Track::Lost;
        }
        match r.dialer.state() {
            DialState::Connected { .. } => {
                r.dialer.lost(now());
            }
            // The attempt's transport was connected, then died during its handshake.
            DialState::Connecting { .. } if !r.attempting => {
                r.dialer.attempt_failed(now());
            }
            _ => {}
        }
        Track::Redial
    }

    /// Client: publishes the dialer's state and says what to do next.
    pub(crate) fn redial(&mut self, inner: &mut Inner) -> Redialing {
        let Link::Dialer(r) = &mut self.link else { return Redialing::Idle };
        publish(inner, r.dialer.state());
        if r.dialer.state() == DialState::Closed {
            if inner.closed.is_none() {
                tracing::info!("giving up reconnecting (ReconnectPolicy::max_attempts): closing");
                inner.conn.close(now(), Status::UNAVAILABLE, b"gave up reconnecting");
            }
            return Redialing::Idle;
        }
        if r.attempting {
            return Redialing::Idle;
        }
        if r.dialer.attempt_due(now()) {
            r.attempting = true;
            tracing::info!(state = ?r.dialer.state(), "reconnecting");
            publish(inner, r.dialer.state());
            return Redialing::Dial;
        }
        match r.dialer.poll_timeout() {
            Some(next) => Redialing::Wait(to_std(next).unwrap_or_else(std::time::Instant::now)),
            None => Redialing::Idle,
        }
    }

    /// Client: an attempt's transport is connected; the resuming handshake starts on it.
    /// False when the session cannot resume (the attempt counts as failed).
    pub(crate) fn attempt_connected(&mut self, inner: &mut Inner) -> bool {
        let Link::Dialer(r) = &mut self.link else { return false };
        r.attempting = false;
        match inner.conn.reconnect(now()) {
            Ok(()) => {
                tracing::info!("transport reconnected: resuming the session");
                true
            }
            Err(e) => {
                tracing::info!(error = %e, "reconnection attempt failed: cannot resume the session");
                r.dialer.attempt_failed(now());
                false
            }
        }
    }

    /// Client: an attempt failed to connect its transport.
    pub(crate) fn attempt_failed(&mut self, error: &dyn core::fmt::Display) {
        let Link::Dialer(r) = &mut self.link else { return };
        tracing::info!(error = %error, "reconnection attempt failed");
        r.attempting = false;
        r.dialer.attempt_failed(now());
    }

    /// Acceptor: applies a requested shed and reports the session memory when it changed.
    pub(crate) fn report_memory(&mut self, inner: &mut Inner, actions: &mut Actions) {
        let Link::Acceptor { hub, id, .. } = &self.link else { return };
        if let Some(bytes) = inner.requests.shed.take() {
            let freed = inner.conn.shed_session_memory(bytes);
            tracing::debug!(conn = id.0, bytes, freed, "shed session memory");
            self.force_report = true;
        }
        let mem = inner.conn.session_memory();
        if self.force_report || self.reported != Some(mem) {
            self.force_report = false;
            self.reported = Some(mem);
            actions.extend(hub.session_memory(*id, mem));
        }
    }

    /// An eviction found the session no longer suspended: report it again.
    pub(crate) fn report_again(&mut self) {
        self.force_report = true;
    }

    /// The connection ended.
    pub(crate) fn closed(&mut self) {
        if let Link::Dialer(r) = &mut self.link {
            r.dialer.closed();
            r.attempting = false;
        }
    }
}

/// Publishes the dialer's state as the connection's link state.
fn publish(inner: &mut Inner, s: DialState) {
    let s = match s {
        DialState::Connecting { attempt } => LinkState::Connecting { attempt },
        DialState::Connected { resumed } => LinkState::Connected { resumed },
        DialState::Suspended { since, failures, next } => LinkState::Suspended {
            since: to_std(since).unwrap_or_else(std::time::Instant::now),
            failures,
            next: to_std(next),
        },
        DialState::Closed => return,
    };
    inner.set_link(s);
}
