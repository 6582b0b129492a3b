//! A connection's link to the many-connection logic: on a server, its [`Hub`] (the core's
//! `Endpoint`); on a client, the core's [`Dialer`]. This file turns what happens to the
//! connection (connected, suspended, resumed, memory used) into reports to them, and their
//! answers into actions: resuming a session onto a new transport, redialing when the dialer
//! says so, publishing the [`LinkState`]. (Layer 4: imports `hub`, `conn`, `transport`,
//! `clock`, `error`.)

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use async_io::Timer;
use futures_lite::FutureExt;
use smol::channel::Sender;
use tandem_core::addr::Address;
use tandem_core::endpoint::{ConnId, Dialer, LinkState as DialState};
use tandem_core::{ConnectionError, Instant, SessionMemory, State, Status};

use crate::clock::{now, to_std};
use crate::conn::{Inner, LinkState};
use crate::error::Error;
use crate::hub::{Actions, Hub};
use crate::transport::{self, Socket};

/// A reconnection attempt in progress: the transport, within the connect timeout.
type Attempt = Pin<Box<dyn Future<Output = Result<Socket, Error>> + Send>>;

/// A client's reconnection state.
pub(crate) struct Redial {
    pub(crate) dialer: Dialer,
    pub(crate) addr: Address,
    /// Resume the session when the transport is lost (`ClientConfig::resume`).
    pub(crate) resume: bool,
    pub(crate) connect_timeout: Duration,
    attempt: Option<Attempt>,
    /// The wait for the next attempt, and when it ends.
    timer: Option<(Instant, Timer)>,
}

impl Redial {
    pub(crate) fn new(dialer: Dialer, addr: Address, resume: bool, connect_timeout: Duration) -> Self {
        Redial { dialer, addr, resume, connect_timeout, attempt: None, timer: None }
    }
}

/// Where a UDP association hands a HELLO that superseded it (to start the next association).
pub(crate) type Resubmit = Sender<(SocketAddr, Vec<u8>)>;

/// Who decides about this connection beyond its own exchanges.
pub(crate) enum Link {
    /// Accepted by a server: its endpoint decides. `udp`: the association's address, and where
    /// to hand a superseding HELLO.
    Acceptor { hub: Arc<Hub>, id: ConnId, udp: Option<(SocketAddr, Resubmit)> },
    /// Dialed by a client: its dialer decides when to reconnect.
    Dialer(Box<Redial>),
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

    /// The handshake completed (`first`), or a resumption was answered with a new session.
    pub(crate) fn connected(&mut self, inner: &mut Inner, first: bool, name: &[u8], actions: &mut Actions) {
        match &mut self.link {
            Link::Acceptor { hub, id, .. } => {
                actions.extend(hub.connected(*id, name));
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
    /// Moves the transport into that session when the endpoint says so (returns true: this
    /// connection is over), otherwise answers with a new session.
    pub(crate) fn resume_requested(
        &mut self,
        inner: &mut Inner,
        token: &[u8],
        socket: &mut Option<Socket>,
        pending: &mut Vec<u8>,
        actions: &mut Actions,
    ) -> bool {
        let Link::Acceptor { hub, id, .. } = &self.link else { return false };
        if let Some((sid, session)) = hub.resume_requested(*id, token) {
            // Lock order: a fresh connection, then the session (a session never locks a fresh
            // connection).
            let mut si = session.lock();
            match si.conn.resume_from(now(), &mut inner.conn) {
                Ok(()) => {
                    if let Some(s) = socket.take() {
                        si.remote = s.remote_addr();
                        si.new_socket = Some((s, core::mem::take(pending)));
                    }
                    si.wake_driver();
                    drop(si);
                    tracing::info!(conn = id.0, session = sid.0, "session resumed on a new transport");
                    actions.extend(hub.resumed(sid, *id));
                    inner.closed = Some(ConnectionError::LocallyClosed { status: Status::OK });
                    return true;
                }
                Err(e) => {
                    tracing::info!(conn = id.0, session = sid.0, error = %e, "cannot resume: declining")
                }
            }
        } else {
            tracing::info!(conn = id.0, "unknown, ended or foreign session: declining resumption");
        }
        if let Err(e) = inner.conn.decline_resume(now()) {
            tracing::debug!(conn = id.0, error = %e, "decline_resume refused");
        }
        false
    }

    /// Follows suspensions and resumptions (SPEC.md §13) and, on a client, redials when the
    /// dialer says so. Returns a new transport to install.
    pub(crate) fn track(
        &mut self,
        cx: &mut Context<'_>,
        inner: &mut Inner,
        socket: &mut Option<Socket>,
        actions: &mut Actions,
    ) -> Option<Socket> {
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
            return None;
        }
        if socket.take().is_some() {
            tracing::debug!("dropping the lost transport");
        }
        let Link::Dialer(r) = &mut self.link else { return None };
        if !r.resume {
            tracing::info!("transport lost and resumption is off (ClientConfig::resume): closing");
            inner.conn.close(now(), Status::UNAVAILABLE, b"transport lost");
            return None;
        }
        match r.dialer.state() {
            DialState::Connected { .. } => {
                r.dialer.lost(now());
            }
            // The attempt's transport was connected, then died during its handshake.
            DialState::Connecting { .. } if r.attempt.is_none() => {
                r.dialer.attempt_failed(now());
            }
            _ => {}
        }
        redial(cx, inner, r)
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
            r.attempt = None;
            r.timer = None;
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

/// Runs the reconnection schedule: waits for the next attempt, dials, and returns the new
/// transport once one is connected (the resuming handshake then runs on it).
fn redial(cx: &mut Context<'_>, inner: &mut Inner, r: &mut Redial) -> Option<Socket> {
    for _ in 0..16 {
        publish(inner, r.dialer.state());
        if r.dialer.state() == DialState::Closed {
            tracing::info!("giving up reconnecting (ReconnectPolicy::max_attempts): closing");
            inner.conn.close(now(), Status::UNAVAILABLE, b"gave up reconnecting");
            return None;
        }
        if let Some(attempt) = r.attempt.as_mut() {
            let Poll::Ready(result) = attempt.as_mut().poll(cx) else { return None };
            r.attempt = None;
            let resumed = result.map_err(|e| e.to_string()).and_then(|s| {
                inner.conn.reconnect(now()).map(|()| s).map_err(|e| format!("cannot resume the session: {e}"))
            });
            match resumed {
                Ok(socket) => {
                    tracing::info!(addr = %r.addr, "transport reconnected: resuming the session");
                    return Some(socket);
                }
                Err(e) => {
                    tracing::info!(addr = %r.addr, error = %e, "reconnection attempt failed");
                    r.dialer.attempt_failed(now());
                    continue;
                }
            }
        }
        if r.dialer.attempt_due(now()) {
            r.timer = None;
            let (addr, timeout) = (r.addr.clone(), r.connect_timeout);
            tracing::info!(addr = %addr, state = ?r.dialer.state(), "reconnecting");
            r.attempt = Some(Box::pin(async move {
                let label = addr.to_string();
                transport::connect(&addr)
                    .or(async move {
                        Timer::after(timeout).await;
                        Err(Error::Timeout { addr: label })
                    })
                    .await
            }));
            continue;
        }
        let next = r.dialer.poll_timeout()?;
        if !matches!(r.timer, Some((at, _)) if at == next) {
            let at = to_std(next).unwrap_or_else(std::time::Instant::now);
            r.timer = Some((next, Timer::at(at)));
        }
        let (_, timer) = r.timer.as_mut()?;
        if Pin::new(timer).poll(cx).is_pending() {
            return None;
        }
        // The wait is over: the attempt starts on the next round.
        r.timer = None;
    }
    // Not settled after many rounds (attempts failing at once): come back after other tasks.
    cx.waker().wake_by_ref();
    None
}
