//! The per-connection driver task: the only owner of the socket. Each wake-up it applies what
//! the endpoint asked, then loops timers → inbound → events → transmit a bounded number of
//! rounds, follows the session (suspension, resumption, redialing), reports its session memory,
//! and sleeps until the socket, an API call (which wakes it) or the next timeout. (Layer 8:
//! imports `events`, `session`, `handlers`, `hub`, `conn`, `transport`, `clock`, `spawner`.)

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::io;
use std::sync::Arc;

use async_io::Timer;
use futures_lite::future::poll_fn;
use tandem_core::{ConnectionError, State, Transport};

use crate::clock::{now, to_std};
use crate::conn::{Handle, Inner, Shared};
use crate::events::Turn;
use crate::handlers::Handlers;
use crate::hub;
use crate::session::{Link, Session};
use crate::spawner::Spawner;
use crate::transport::Socket;

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

/// What a driver needs to start.
pub(crate) struct Start {
    pub(crate) socket: Socket,
    pub(crate) shared: Arc<Shared>,
    pub(crate) link: Link,
    pub(crate) handlers: Handlers,
    pub(crate) spawner: Arc<dyn Spawner>,
}

/// Spawns the driver of a new connection. A server's connection (`Link::Acceptor`) keeps a
/// handle of its own: it lives until it ends, not until its handles are dropped.
pub(crate) fn spawn(s: Start) {
    let max_datagram = match s.shared.lock().conn.config().transport {
        Transport::Stream => 0,
        Transport::Packet { max_datagram } | Transport::Datagram { max_datagram } => max_datagram as usize,
    };
    let keep = matches!(s.link, Link::Acceptor { .. }).then(|| Handle::new(s.shared.clone()));
    let driver = Driver {
        io: Io::new(s.shared.id, s.socket, max_datagram),
        shared: s.shared,
        handlers: s.handlers,
        spawner: s.spawner.clone(),
        session: Session::new(s.link),
        keep,
    };
    s.spawner.spawn(Box::pin(driver.run()));
}

struct Driver {
    shared: Arc<Shared>,
    handlers: Handlers,
    spawner: Arc<dyn Spawner>,
    session: Session,
    io: Io,
    keep: Option<Handle>,
}

impl Driver {
    /// Runs the connection until it is finished.
    async fn run(mut self) {
        poll_fn(|cx| self.poll(cx)).await;
        self.io.close_socket().await;
        let (reason, stats) = {
            let mut inner = self.shared.lock();
            if inner.closed.is_none() {
                inner.on_closed(ConnectionError::TransportClosed);
            }
            (inner.closed, inner.conn.stats())
        };
        if let Link::Acceptor { hub, id, udp } = &self.session.link {
            let addr = udp.as_ref().map(|(a, _)| *a);
            hub::apply(hub.closed(*id, addr));
            // Superseded: a new HELLO from the same address starts a new association.
            if let (Some((a, ctl)), Some(Socket::Assoc(assoc))) = (udp, &self.io.socket) {
                let hello = assoc.inbox.lock().unwrap_or_else(|e| e.into_inner()).last_hello.take();
                if let (Some(ConnectionError::Superseded), Some(h)) = (reason, hello) {
                    tracing::debug!(peer = %a, "association superseded by a new HELLO");
                    let _ = ctl.try_send((*a, h));
                }
            }
        }
        tracing::debug!(conn = self.shared.id, ?reason, ?stats, "driver finished");
        drop(self.keep.take());
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.shared.clone();
        let mut inner = shared.lock();
        match &inner.driver {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.driver = Some(cx.waker().clone()),
        }
        self.apply_requests(&mut inner);
        if let Some((socket, pending)) = inner.new_socket.take() {
            // This session was resumed on a new connection (server side): speak on its socket;
            // the old one, if any, is dropped (closed) here.
            self.io.install(socket, pending);
        }
        let mut turn = Turn {
            shared: &shared,
            handlers: &self.handlers,
            session: &mut self.session,
            spawn: Vec::new(),
            actions: Vec::new(),
            resume_token: None,
        };
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
            progress |= self.io.poll_inbound(cx, &mut inner);
            progress |= turn.drain(&mut inner);
            if let Some(token) = turn.resume_token.take() {
                let io = &mut self.io;
                turn.session.resume_requested(
                    &mut inner,
                    &token,
                    &mut io.socket,
                    &mut io.pending,
                    &mut turn.actions,
                );
                progress = true;
            }
            progress |= inner.retry_backlog();
            progress |= self.io.poll_outbound(cx, &mut inner);
            if !progress {
                busy = false;
                break;
            }
            worked = true;
        }
        if let Some(socket) = turn.session.track(cx, &mut inner, &mut self.io.socket, &mut turn.actions) {
            inner.remote = socket.remote_addr();
            self.io.install(socket, Vec::new());
            busy = true;
        }
        turn.session.report_memory(&mut inner, &mut turn.actions);
        self.io.release_when_idle(&mut inner, worked);
        if busy {
            // Work remains: yield to other tasks, then come back.
            cx.waker().wake_by_ref();
        }
        inner.wake_capacity();
        let finished = self.io.finished(&mut inner);
        if !finished {
            self.io.arm_timer(cx, &inner);
        }
        drop(inner);
        let (spawn, actions) = (turn.spawn, turn.actions);
        for task in spawn {
            self.spawner.spawn(task);
        }
        hub::apply(actions);
        if finished {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Applies what the server's endpoint asked of this connection.
    fn apply_requests(&mut self, inner: &mut Inner) {
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
    }
}

/// The socket and its I/O state.
struct Io {
    id: u64,
    /// `None` while a suspended session waits for a transport (SPEC.md §13), and once the
    /// socket was handed to the session it resumed.
    socket: Option<Socket>,
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

impl Io {
    fn new(id: u64, socket: Socket, max_datagram: usize) -> Self {
        Io {
            id,
            socket: Some(socket),
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
                tracing::debug!(conn = self.id, "final frames not flushed within the linger time");
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
                    tracing::debug!(conn = self.id, error = %e, "read failed: treating as end of stream");
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
                    tracing::debug!(conn = self.id, error = %e, "read failed: treating as end of stream");
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
                    tracing::debug!(conn = self.id, error = %e, "write failed: peer gone");
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
    /// Takes a new transport for this connection: a resumed session's new socket.
    fn install(&mut self, socket: Socket, pending: Vec<u8>) {
        if self.socket.is_some() {
            tracing::debug!(conn = self.id, "closing the session's previous socket");
        }
        self.socket = Some(socket);
        self.eof = false;
        self.broken = false;
        self.pending = pending;
        self.datagram_len = 0;
        self.linger = None;
        self.idle_check.get_or_insert(std::time::Instant::now() + IDLE_RELEASE);
    }
}
