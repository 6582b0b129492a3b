//! The per-connection driver task: the only owner of the socket. Each wake-up it loops
//! timers → inbound → events → transmit, a bounded number of rounds, then sleeps until the
//! socket, an API call (which wakes it) or the core's next timeout.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::io;
use std::sync::Arc;

use async_io::Timer;
use futures_lite::future::{poll_fn, FutureExt};
use tandem_core::{ConnectionError, Role, State, Status, Transport};

use crate::error::Error;
use crate::events::{self, Deferred};
use crate::shared::{now, random_unit, to_std, Inner, Shared};
use crate::transport::{self, Socket};

/// A reconnection attempt in progress: the backoff wait, then the transport.
type Attempt = Pin<Box<dyn Future<Output = Result<Socket, Error>> + Send>>;

/// Rounds of timers → inbound → events → transmit per wake-up before yielding.
const ROUNDS: usize = 16;
/// Socket reads per round.
const READS: usize = 8;
/// How long a closed connection may take to hand its final frames (the CLOSE the core queued,
/// and what was queued before it) to the socket; a peer that reads nothing for this long does
/// not get them. The same bound as tandem-std's.
const LINGER: Duration = Duration::from_secs(1);
/// How long a closed connection waits for the peer to close its side once its final frames are
/// written, reading and dropping what the peer still sends: closing a socket with unread input
/// resets it, which may destroy our CLOSE before the peer has read it.
const DRAIN_ON_CLOSE: Duration = Duration::from_millis(200);
/// Most bytes read and dropped during [`DRAIN_ON_CLOSE`]: a peer that floods is not waited for.
const DRAIN_BYTES: usize = 1 << 20;
/// A connection with no socket activity for this long gives its buffers back
/// (`Connection::release_memory`); they grow again on demand.
const IDLE_RELEASE: Duration = Duration::from_millis(250);
/// Each wake-up reads the socket into a stack buffer of this size first, so that waiting for
/// input reserves nothing in the core (an idle connection keeps no receive buffer); only when
/// that read fills it (more is coming) does the driver read straight into the core's buffer.
const SMALL_READ: usize = 1024;

pub(crate) struct Driver {
    shared: Arc<Shared>,
    /// `None` while a suspended session waits for a transport (SPEC.md §13), and once the
    /// socket was handed to the session it resumed.
    socket: Option<Socket>,
    /// The session is suspended (counted by the server while so).
    suspended: bool,
    /// Dialer: reconnection attempts made since the session was suspended.
    attempts: u32,
    /// Dialer: the reconnection attempt in progress.
    attempt: Option<Attempt>,
    timer: Timer,
    armed: Option<std::time::Instant>,
    /// Packet transports: the datagram being sent, and its length (0: none).
    datagram: Vec<u8>,
    datagram_len: usize,
    max_datagram: usize,
    eof: bool,
    /// Writing failed: the peer is gone; queued bytes are dropped.
    broken: bool,
    linger: Option<std::time::Instant>,
    /// Last wake-up that did any work.
    active_at: std::time::Instant,
    /// When to check whether the connection has been idle for [`IDLE_RELEASE`] (`None`: its
    /// memory is released and it has been idle since). Moves lazily, not on every wake-up.
    idle_check: Option<std::time::Instant>,
    /// Bytes read that the core's receive buffer had no room for yet (rare: it was full of
    /// unprocessed frames); offered again before anything else is read.
    pending: Vec<u8>,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, socket: Socket) -> Self {
        let max_datagram = match shared.lock().conn.config().transport {
            Transport::Stream => 0,
            Transport::Packet { max_datagram } | Transport::Datagram { max_datagram } => {
                max_datagram as usize
            }
        };
        Driver {
            shared,
            socket: Some(socket),
            suspended: false,
            attempts: 0,
            attempt: None,
            timer: Timer::never(),
            armed: None,
            datagram: vec![0; max_datagram],
            datagram_len: 0,
            max_datagram,
            eof: false,
            broken: false,
            linger: None,
            active_at: std::time::Instant::now(),
            idle_check: Some(std::time::Instant::now() + IDLE_RELEASE),
            pending: Vec::new(),
        }
    }

    /// Runs the connection until it is finished.
    pub(crate) async fn run(mut self) {
        let id = self.shared.id;
        poll_fn(|cx| self.poll(cx)).await;
        self.close_socket().await;
        if let (Some(Socket::Assoc(a)), Some(server)) = (&self.socket, &self.shared.server) {
            // Superseded: a new association from the same address; its HELLO starts it.
            let superseded = self.shared.lock().closed == Some(ConnectionError::Superseded);
            server.assoc_finished(a, superseded);
        }
        if self.suspended {
            if let Some(server) = &self.shared.server {
                server.unsuspended();
            }
        }
        let (reason, stats) = {
            let mut inner = self.shared.lock();
            if inner.closed.is_none() {
                events::on_closed(&mut inner, ConnectionError::TransportClosed);
            }
            (inner.closed, inner.conn.stats())
        };
        if let Some(server) = &self.shared.server {
            server.on_closed(&self.shared);
        }
        tracing::debug!(conn = id, ?reason, ?stats, "driver finished");
    }

    /// Closes the socket so that the peer still receives our final frames: a socket closed
    /// with unread input is reset, which may discard what we wrote last (our CLOSE).
    async fn close_socket(&mut self) {
        let Some(socket) = &self.socket else { return };
        if self.broken || socket.is_udp() {
            return;
        }
        socket.shutdown_write();
        if self.eof {
            return;
        }
        // On the heap, and only now: a buffer in the task's state would be kept for the
        // connection's whole life.
        let mut buf = vec![0u8; 4096];
        let mut timer = Timer::after(DRAIN_ON_CLOSE);
        let mut left = DRAIN_BYTES;
        poll_fn(|cx| {
            // A bounded number of reads per poll: a peer that never stops sending must not keep
            // this task from yielding, nor from seeing its deadline.
            for _ in 0..READS {
                match socket.poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Ready(Ok(n)) => {
                        left = left.saturating_sub(n);
                        if left == 0 {
                            return Poll::Ready(());
                        }
                    }
                    Poll::Pending => {
                        return if Pin::new(&mut timer).poll(cx).is_ready() {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        };
                    }
                }
            }
            if Pin::new(&mut timer).poll(cx).is_ready() {
                return Poll::Ready(());
            }
            // More is readable: come back after other tasks had their turn.
            cx.waker().wake_by_ref();
            Poll::Pending
        })
        .await;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared.clone();
        let mut deferred = Vec::new();
        let mut inner = shared.lock();
        match &inner.driver {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.driver = Some(cx.waker().clone()),
        }
        if let Some((socket, pending)) = inner.new_socket.take() {
            // This session was resumed on a new connection (server side): speak on its socket;
            // the old one, if any, is dropped (closed) here.
            self.install(socket, pending);
        }
        let mut busy = true;
        let mut worked = false;
        for _ in 0..ROUNDS {
            let mut progress = false;
            let t = now();
            if let Some(due) = inner.conn.poll_timeout().filter(|d| *d <= t) {
                inner.conn.handle_timeout(t);
                // A timer the core could not act on yet (e.g. a keepalive PING that does not
                // fit a full transmit queue) is not progress.
                progress |= inner.conn.poll_timeout() != Some(due);
            }
            progress |= self.poll_inbound(cx, &mut inner);
            progress |= events::drain(&shared, &mut inner, &mut deferred);
            progress |= self.resume_requested(&mut inner);
            progress |= inner.retry_backlog();
            progress |= self.poll_outbound(cx, &mut inner);
            if !progress {
                busy = false;
                break;
            }
            worked = true;
        }
        self.track_session(cx, &mut inner);
        self.release_when_idle(&mut inner, worked);
        if busy {
            // Work remains: yield to other tasks, then come back.
            cx.waker().wake_by_ref();
        }
        inner.wake_capacity();
        let finished = self.finished(&mut inner);
        if !finished {
            self.arm_timer(cx, &inner);
        }
        drop(inner);
        for d in deferred {
            d.run();
        }
        if finished {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn finished(&mut self, inner: &mut Inner) -> bool {
        if inner.conn.is_finished() {
            return true;
        }
        if inner.conn.state() == State::Closed && inner.closed.is_some() {
            if self.broken || self.socket.is_none() {
                return true;
            }
            let deadline = *self.linger.get_or_insert_with(|| std::time::Instant::now() + LINGER);
            if std::time::Instant::now() >= deadline {
                tracing::debug!(conn = self.shared.id, "final frames not flushed within the linger time");
                return true;
            }
        }
        false
    }

    fn arm_timer(&mut self, cx: &mut Context<'_>, inner: &Inner) {
        // A deadline already past was just handled without effect: retry it shortly rather
        // than spin.
        let soon = std::time::Instant::now() + Duration::from_millis(1);
        let mut when = inner.conn.poll_timeout().and_then(to_std).map(|w| w.max(soon));
        for l in [self.linger, self.idle_check].into_iter().flatten() {
            when = Some(when.map_or(l, |w| w.min(l)));
        }
        if when != self.armed {
            match when {
                Some(w) => self.timer.set_at(w),
                None => self.timer = Timer::never(),
            }
            self.armed = when;
        }
        if Pin::new(&mut self.timer).poll(cx).is_ready() {
            self.armed = None;
            cx.waker().wake_by_ref();
        }
    }

    /// Gives the connection's buffers back once it has done nothing for [`IDLE_RELEASE`].
    fn release_when_idle(&mut self, inner: &mut Inner, worked: bool) {
        let now = std::time::Instant::now();
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
            self.idle_check = None;
        } else {
            self.idle_check = Some(self.active_at + IDLE_RELEASE);
        }
    }

    /// Reads what the socket has into the core. Returns whether anything happened.
    fn poll_inbound(&mut self, cx: &mut Context<'_>, inner: &mut Inner) -> bool {
        if self.eof || inner.conn.state() == State::Closed || inner.conn.needs_transport() {
            return false;
        }
        let Some(socket) = &self.socket else { return false };
        let mut progress = false;
        if self.max_datagram == 0 {
            if !self.pending.is_empty() {
                let n = inner.conn.handle_input(now(), &self.pending);
                self.pending.drain(..n);
                if !self.pending.is_empty() {
                    // Still full: events must be drained first.
                    return n > 0;
                }
                self.pending = Vec::new();
            }
            let mut small = [0u8; SMALL_READ];
            match socket.poll_read(cx, &mut small) {
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    inner.conn.handle_eof(now());
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    let taken = inner.conn.handle_input(now(), &small[..n]);
                    if taken < n {
                        self.pending.extend_from_slice(&small[taken..n]);
                        return true;
                    }
                    if n < SMALL_READ {
                        return true;
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => return true,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = self.shared.id, error = %e, "read failed: treating as end of stream");
                    self.eof = true;
                    inner.conn.handle_eof(now());
                    return true;
                }
                Poll::Pending => return false,
            }
        }
        for _ in 0..READS {
            let buf = inner.conn.recv_buffer();
            // A packet must land whole; otherwise wait until events release the buffer.
            if buf.is_empty() || buf.len() < self.max_datagram {
                break;
            }
            match socket.poll_read(cx, buf) {
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    inner.conn.handle_eof(now());
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    inner.conn.recv_commit(now(), n);
                    progress = true;
                    if self.max_datagram > 0 {
                        // One datagram per round: its frames are drained before the next.
                        break;
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = self.shared.id, error = %e, "read failed: treating as end of stream");
                    self.eof = true;
                    inner.conn.handle_eof(now());
                    return true;
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Writes what the core has queued. Returns whether anything was written.
    fn poll_outbound(&mut self, cx: &mut Context<'_>, inner: &mut Inner) -> bool {
        let mut progress = false;
        // No transport (a suspended session): what is queued waits for the next one.
        let Some(socket) = &self.socket else { return false };
        loop {
            if self.broken {
                let n = inner.conn.transmit_data().len();
                inner.conn.transmit_done(n);
                self.datagram_len = 0;
                return progress;
            }
            let data = if self.max_datagram > 0 {
                if self.datagram_len == 0 {
                    self.datagram_len = inner.conn.poll_transmit(now(), &mut self.datagram);
                }
                &self.datagram[..self.datagram_len]
            } else {
                inner.conn.transmit_data()
            };
            if data.is_empty() {
                return progress;
            }
            match socket.poll_write(cx, data) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    progress = true;
                    if self.max_datagram > 0 {
                        self.datagram_len = 0;
                    } else {
                        inner.conn.transmit_done(n);
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(r) => {
                    let e = r.err().map(|e| e.to_string()).unwrap_or_else(|| "wrote 0 bytes".into());
                    tracing::debug!(conn = self.shared.id, error = %e, "write failed: peer gone");
                    self.broken = true;
                    if !self.eof {
                        self.eof = true;
                        inner.conn.handle_eof(now());
                    }
                    progress = true;
                }
                Poll::Pending => return progress,
            }
        }
    }
}

impl Driver {
    /// Takes a new transport for this connection: a resumed session's new socket.
    fn install(&mut self, socket: Socket, pending: Vec<u8>) {
        if self.socket.is_some() {
            tracing::debug!(conn = self.shared.id, "closing the session's previous socket");
        }
        self.socket = Some(socket);
        self.eof = false;
        self.broken = false;
        self.pending = pending;
        self.datagram_len = 0;
        self.linger = None;
        self.idle_check.get_or_insert(std::time::Instant::now() + IDLE_RELEASE);
    }

    /// Acceptor: this fresh connection's dialer asked to resume a session. Moves this socket
    /// into that session when the server knows it, otherwise declines (a new session).
    fn resume_requested(&mut self, inner: &mut Inner) -> bool {
        let Some(token) = inner.resume_token.take() else { return false };
        let id = self.shared.id;
        let session = self.shared.server.as_ref().and_then(|s| s.session(&token));
        if let Some(session) = session.filter(|s| !Arc::ptr_eq(s, &self.shared)) {
            // Lock order: a fresh connection, then the session (a session never locks a
            // fresh connection).
            let mut si = session.lock();
            match si.conn.resume_from(now(), &mut inner.conn) {
                Ok(()) => {
                    if let Some(socket) = self.socket.take() {
                        si.new_socket = Some((socket, core::mem::take(&mut self.pending)));
                    }
                    si.wake_driver();
                    drop(si);
                    tracing::info!(conn = id, session = session.id, "session resumed on a new transport");
                    // This connection is over without having been one: nothing to report.
                    inner.closed = Some(ConnectionError::LocallyClosed { status: Status::OK });
                    return true;
                }
                Err(e) => {
                    tracing::info!(conn = id, session = session.id, error = %e, "cannot resume the session: declining");
                }
            }
        } else {
            tracing::info!(
                conn = id,
                "unknown or expired session: declining resumption (the client's old calls fail UNAVAILABLE)"
            );
        }
        if let Err(e) = inner.conn.decline_resume(now()) {
            tracing::debug!(conn = id, error = %e, "decline_resume refused");
        }
        true
    }

    /// Follows the session's suspensions and resumptions (SPEC.md §13): drops a lost socket,
    /// counts suspended sessions at the server, and on the dialer reconnects with backoff.
    fn track_session(&mut self, cx: &mut Context<'_>, inner: &mut Inner) {
        let id = self.shared.id;
        let suspended = inner.conn.state() == State::Suspended;
        if suspended != self.suspended {
            self.suspended = suspended;
            if suspended {
                tracing::info!(conn = id, grace = ?inner.conn.config().session_grace, "transport lost: session suspended");
                if let Some(server) = &self.shared.server {
                    if !server.suspended() {
                        tracing::warn!(
                            conn = id,
                            limit = server.max_suspended,
                            "too many suspended sessions (Options::max_suspended_sessions): ending this one; its client will get a new session"
                        );
                        inner.conn.close(now(), Status::RESOURCE_EXHAUSTED, b"too many suspended sessions");
                    }
                }
            } else {
                if let Some(server) = &self.shared.server {
                    server.unsuspended();
                }
                if inner.conn.state() != State::Closed {
                    tracing::info!(conn = id, attempts = self.attempts, "session resumed");
                }
                self.attempts = 0;
                self.attempt = None;
            }
        }
        if !inner.conn.needs_transport() {
            return;
        }
        if self.socket.take().is_some() {
            tracing::debug!(conn = id, "dropping the lost transport");
        }
        if inner.conn.role() != Role::Dialer {
            return;
        }
        let Some(dial) = &self.shared.dial else { return };
        if !dial.resumption {
            tracing::info!(conn = id, "transport lost and resumption is off (Options::resumption): closing");
            inner.conn.close(now(), Status::UNAVAILABLE, b"transport lost");
            return;
        }
        loop {
            if self.attempt.is_none() {
                let delay = dial.backoff.delay(self.attempts, random_unit());
                self.attempts = self.attempts.saturating_add(1);
                tracing::info!(conn = id, attempt = self.attempts, ?delay, addr = %dial.addr, "reconnecting");
                let addr = dial.addr.clone();
                let timeout = dial.connect_timeout;
                self.attempt = Some(Box::pin(async move {
                    Timer::after(delay).await;
                    let label = addr.to_string();
                    transport::connect(&addr)
                        .or(async move {
                            Timer::after(timeout).await;
                            Err(Error::Timeout { addr: label })
                        })
                        .await
                }));
            }
            let Some(attempt) = self.attempt.as_mut() else { return };
            match attempt.as_mut().poll(cx) {
                Poll::Pending => return,
                Poll::Ready(Err(e)) => {
                    tracing::info!(conn = id, attempt = self.attempts, error = %e, "reconnection attempt failed");
                    self.attempt = None;
                }
                Poll::Ready(Ok(socket)) => {
                    self.attempt = None;
                    match inner.conn.reconnect(now()) {
                        Ok(()) => {
                            tracing::info!(
                                conn = id,
                                attempt = self.attempts,
                                "transport reconnected: resuming the session"
                            );
                            self.install(socket, Vec::new());
                            inner.wake_driver();
                            cx.waker().wake_by_ref();
                        }
                        Err(e) => tracing::info!(conn = id, error = %e, "cannot resume the session"),
                    }
                    return;
                }
            }
        }
    }
}

/// A deferred action is run after the connection's lock is released.
impl Deferred {
    fn run(self) {
        match self {
            Deferred::CloseStale(old) => {
                old.close_with(Status::UNAVAILABLE, "replaced by a newer connection from the same peer");
            }
        }
    }
}
