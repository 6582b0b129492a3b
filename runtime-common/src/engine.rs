//! The I/O-free half of a connection's driver: everything a driver does under the connection's
//! lock besides reading and writing its socket — endpoint requests, the core's timers, events
//! (handlers, completions, lifecycle), resumption, the answers backlog, the session and the
//! reconnection schedule, memory reports and release, and when the driver is finished. The
//! runtime's driver is the loop around it. (Layer 7: imports `open`, `events`, `session`,
//! `handlers`, `hub`, `conn`, `clock`.)
//!
//! One turn of a driver, lock held (see the crate documentation for the whole loop):
//! [`begin`](Engine::begin), then up to a bounded number of rounds of
//! [`handle_timers`](Engine::handle_timers) → read ([`Pump::read`](crate::pump::Pump::read)) →
//! [`process`](Engine::process) → write, until a round makes no progress; then
//! [`track`](Engine::track) (and [`redial`](Engine::redial) on a client),
//! [`end_turn`](Engine::end_turn), [`finished`](Engine::finished) or
//! [`next_timeout`](Engine::next_timeout); then, lock released, start the
//! [`started`](Engine::started) handler jobs and [`apply_actions`](Engine::apply_actions)
//! (which also wakes the waiters the turn resolved: a waiter woken under the lock would only
//! block on it).

use core::time::Duration;
use std::net::SocketAddr;
use std::sync::Arc;

use tandem_core::{ConnectionError, State};

use crate::clock::{now, to_std};
use crate::conn::{Handle, Inner, Shared, Transport};
use crate::events::Turn;
use crate::handlers::{HandlerFns, Registry, Started};
use crate::hub::{self, Actions};
use crate::open::NewConnection;
use crate::session::{Link, Redialing, Session, Track};

/// How long a closed connection may take to hand its final frames (the CLOSE the core queued,
/// and what was queued before it) to the socket; a peer that reads nothing for this long does
/// not get them.
const LINGER: Duration = Duration::from_secs(1);
/// A connection with no socket activity for this long gives its buffers back
/// (`Connection::release_memory`); they grow again on demand.
const IDLE_RELEASE: Duration = Duration::from_millis(250);

/// A connection's driver state besides its socket.
pub struct Engine<F: HandlerFns> {
    shared: Arc<Shared>,
    handlers: Registry<F>,
    session: Session,
    /// A server's connection keeps a handle of its own: it lives until it ends, not until its
    /// handles are dropped.
    keep: Option<Handle>,
    started: Vec<Started<F>>,
    actions: Actions,
    /// Waiters this turn resolved, to wake once the lock is released.
    wakes: Vec<core::task::Waker>,
    linger: Option<std::time::Instant>,
    /// Last turn that did any work.
    active_at: std::time::Instant,
    /// When to check whether the connection has been idle for [`IDLE_RELEASE`] (`None`: its
    /// memory is released and it has been idle since). Moves lazily, not on every turn.
    idle_check: Option<std::time::Instant>,
}

impl<F: HandlerFns> core::fmt::Debug for Engine<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine").field("conn", &self.shared.id).finish_non_exhaustive()
    }
}

impl<F: HandlerFns> Engine<F> {
    /// The driver state of a new connection, serving `handlers`.
    pub fn new(conn: NewConnection, handlers: Registry<F>) -> Self {
        let NewConnection { shared, link } = conn;
        let keep = matches!(link, Link::Acceptor { .. }).then(|| Handle::new(shared.clone()));
        let now = std::time::Instant::now();
        Engine {
            shared,
            handlers,
            session: Session::new(link),
            keep,
            started: Vec::new(),
            actions: Vec::new(),
            wakes: Vec::new(),
            linger: None,
            active_at: now,
            idle_check: Some(now + IDLE_RELEASE),
        }
    }

    /// The connection.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Starts a turn: applies what the server's endpoint asked (close, evict). Returns a
    /// transport to switch to — this session was resumed on another connection's socket
    /// (server side) — after which the old socket is dropped.
    pub fn begin(&mut self, inner: &mut Inner) -> Option<Transport> {
        if let Some((status, reason)) = inner.requests.close.take() {
            inner.conn.close(now(), status, reason.as_bytes());
        }
        if core::mem::take(&mut inner.requests.evict) && !inner.conn.evict_suspended_session() {
            tracing::debug!(
                conn = self.shared.id,
                "eviction requested, but the session is no longer suspended"
            );
            self.session.report_again();
        }
        let t = inner.new_transport.take()?;
        self.installed();
        Some(t)
    }

    fn installed(&mut self) {
        self.linger = None;
        self.idle_check.get_or_insert(std::time::Instant::now() + IDLE_RELEASE);
    }

    /// Fires the core's due timers. Returns whether that changed anything (a timer the core
    /// could not act on yet, e.g. a keepalive PING that does not fit a full transmit queue, is
    /// not progress).
    pub fn handle_timers(&mut self, inner: &mut Inner) -> bool {
        let t = now();
        match inner.conn.poll_timeout().filter(|d| *d <= t) {
            Some(due) => {
                inner.conn.handle_timeout(t);
                inner.conn.poll_timeout() != Some(due)
            }
            None => false,
        }
    }

    /// Acts on the core's events (a bounded number), a resumption request (moving the transport
    /// out with `take_transport` when the session is resumed elsewhere), and answers kept for
    /// lack of transmit room. Returns whether anything happened.
    pub fn process(&mut self, inner: &mut Inner, take_transport: impl FnOnce() -> Option<Transport>) -> bool {
        let mut turn = Turn {
            shared: &self.shared,
            handlers: &self.handlers,
            session: &mut self.session,
            started: &mut self.started,
            actions: &mut self.actions,
            resume_token: None,
        };
        let mut progress = turn.drain(inner);
        if let Some(token) = turn.resume_token.take() {
            self.session.resume_requested(&self.shared, inner, &token, take_transport, &mut self.actions);
            progress = true;
        }
        progress | inner.retry_backlog()
    }

    /// Follows the session (suspension, resumption) and says what the transport needs.
    pub fn track(&mut self, inner: &mut Inner) -> Track {
        self.session.track(inner, &mut self.actions)
    }

    /// Client, after [`Track::Redial`]: the next step of the reconnection schedule (publishing
    /// it as the link state).
    pub fn redial(&mut self, inner: &mut Inner) -> Redialing {
        self.session.redial(inner)
    }

    /// Client: the attempt's transport (remote address `remote`) is connected. True: install
    /// it, the resuming handshake runs on it; false: drop it (the session cannot resume; the
    /// attempt counts as failed) and ask [`redial`](Self::redial) again.
    pub fn attempt_connected(&mut self, inner: &mut Inner, remote: Option<SocketAddr>) -> bool {
        if !self.session.attempt_connected(inner) {
            return false;
        }
        inner.remote = remote;
        self.installed();
        true
    }

    /// Client: the attempt failed to connect its transport (or timed out); ask
    /// [`redial`](Self::redial) again.
    pub fn attempt_failed(&mut self, error: &dyn core::fmt::Display) {
        self.session.attempt_failed(error);
    }

    /// Ends a turn: applies a requested shed and reports the session memory, gives an idle
    /// connection's buffers back (`worked`: this turn moved anything), and takes the waiters
    /// the turn resolved and those waiting for room, for [`apply_actions`](Self::apply_actions)
    /// to wake once the lock is released.
    pub fn end_turn(&mut self, inner: &mut Inner, worked: bool) {
        self.session.report_memory(inner, &mut self.actions);
        self.release_when_idle(inner, worked);
        let (wakes, waiters) = (&mut inner.wakes, &mut inner.capacity_waiters);
        wakes.append(waiters);
        core::mem::swap(&mut self.wakes, &mut inner.wakes);
    }

    fn release_when_idle(&mut self, inner: &mut Inner, worked: bool) {
        let now = crate::clock::instant();
        if worked {
            self.active_at = now;
            self.idle_check.get_or_insert(now + IDLE_RELEASE);
            return;
        }
        let Some(check) = self.idle_check else { return };
        if now < check {
            return;
        }
        if now.duration_since(self.active_at) >= IDLE_RELEASE {
            inner.release_memory();
            self.release_memory();
            self.idle_check = None;
        } else {
            self.idle_check = Some(self.active_at + IDLE_RELEASE);
        }
    }

    /// Gives back the memory of the engine's own per-turn lists (idle connection, see
    /// [`IDLE_RELEASE`]): they keep their capacity from turn to turn, so one turn that started
    /// many handlers at once (a burst of stream opens read in one go) would otherwise size them
    /// for the connection's whole life. Empty here: each turn's lists are handed out before the
    /// next turn.
    fn release_memory(&mut self) {
        if self.started.is_empty() {
            self.started = Vec::new();
        }
        if self.actions.is_empty() {
            self.actions = Vec::new();
        }
        if self.wakes.is_empty() {
            self.wakes = Vec::new();
        }
    }

    /// Whether the driver is done: the core finished, or it closed and its final frames were
    /// written, cannot be (`transport_gone`: no socket, or writing failed), or were not taken
    /// within the linger time (1 s).
    pub fn finished(&mut self, inner: &mut Inner, transport_gone: bool) -> bool {
        if inner.conn.is_finished() {
            return true;
        }
        if inner.conn.state() == State::Closed && inner.closed.is_some() {
            if transport_gone {
                return true;
            }
            let now = crate::clock::instant();
            let deadline = *self.linger.get_or_insert(now + LINGER);
            if now >= deadline {
                tracing::debug!(conn = self.shared.id, "final frames not flushed within the linger time");
                return true;
            }
        }
        false
    }

    /// When the driver must run again if nothing wakes it: the core's next timer (a deadline
    /// already past is retried after 1 ms rather than spun on), the linger time, the idle check.
    pub fn next_timeout(&self, inner: &Inner) -> Option<std::time::Instant> {
        let soon = crate::clock::instant() + Duration::from_millis(1);
        let mut when = inner.conn.poll_timeout().and_then(to_std).map(|w| w.max(soon));
        for l in [self.linger, self.idle_check].into_iter().flatten() {
            when = Some(when.map_or(l, |w| w.min(l)));
        }
        when
    }

    /// The handler jobs this turn started: run each (a task, a pool job) once the connection's
    /// lock is released.
    pub fn started(&mut self) -> std::vec::Drain<'_, Started<F>> {
        self.started.drain(..)
    }

    /// Wakes the waiters the turn resolved (completed calls, stream items, room to send) and
    /// delivers the endpoint's actions for other connections. Call with no lock held.
    ///
    /// With more than one waiter, it wakes the first and leaves the others in the connection's
    /// relay ([`Inner::take_relay`](crate::conn::Inner)) meanwhile: when that waiter runs at
    /// once (its thread was parked: on one CPU the wake-up switches to it before this returns),
    /// it wakes the others from its own thread — on a single-threaded executor, without a
    /// cross-thread wake-up each. Whatever is still in the relay afterwards is woken here, so
    /// every waiter is woken before this returns, by one thread or the other
    /// ([`apply_actions_with`](Self::apply_actions_with) may instead hand those to its caller,
    /// as the I/O threads do to wake them at the end of their batch of turns).
    pub fn apply_actions(&mut self) {
        self.apply_actions_with(core::task::Waker::wake);
    }

    /// [`apply_actions`](Self::apply_actions), handing each resolved waiter's waker that is not
    /// relayed to `wake` (the I/O threads defer them to the end of their batch of turns); the
    /// first of several is woken at once, for the relay to work.
    pub fn apply_actions_with(&mut self, mut wake: impl FnMut(core::task::Waker)) {
        if self.wakes.len() > 1 {
            let mut wakes = self.wakes.drain(..);
            let first = wakes.next();
            self.shared.lock().relay.extend(wakes);
            if let Some(w) = first {
                w.wake();
            }
            let mut inner = self.shared.lock();
            self.wakes.append(&mut inner.relay);
        }
        for w in self.wakes.drain(..) {
            wake(w);
        }
        if !self.actions.is_empty() {
            hub::apply(core::mem::take(&mut self.actions));
        }
    }

    /// The driver is done (its socket closed): resolves what still waits on the connection and
    /// tells the endpoint. Call with no lock held.
    pub fn end(mut self) {
        self.apply_actions();
        let (reason, stats) = {
            let mut inner = self.shared.lock();
            if inner.closed.is_none() {
                inner.on_closed(ConnectionError::TransportClosed);
            }
            (inner.closed, inner.conn.stats())
        };
        if let Link::Acceptor { hub, id, udp } = &self.session.link {
            let superseded = reason == Some(ConnectionError::Superseded);
            hub::apply(hub.closed(*id, *udp, superseded));
        }
        tracing::debug!(conn = self.shared.id, ?reason, ?stats, "driver finished");
        drop(self.keep.take());
    }
}
