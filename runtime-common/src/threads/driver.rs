//! A connection's driver: the task an I/O thread runs for it. Each turn runs the shared
//! [`Engine`]'s sequence around the socket's non-blocking reads and writes (through the
//! `Transport` trait), hands the started handlers to the connection's [`Dispatch`], dials
//! reconnection attempts (non-blocking connects on the same I/O thread), and says which
//! readiness and which instant it waits for next. When the connection has ended it closes the
//! socket so that the peer still reads the CLOSE. (Layer 2 of [`threads`](super): imports
//! `io`, `transport`, `Dispatch`.)

use core::task::Poll;
use core::time::Duration;
use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::time::Instant;

use tandem_core::addr::Address;

use super::io::{self as iot, noop_waker, Cx, Next, Registered, Source, Task};
use super::transport::{self, Connecting, Interest, Socket, Transport};
use super::ws::WsTransport;
use super::Dispatch;
use crate::conn::{Inner, Transport as Handed};
use crate::engine::Engine;
use crate::handlers::{HandlerFns, Registry};
use crate::open::NewConnection;
use crate::pump::Pump;
use crate::session::{Redialing, Track};
use crate::tls::{TlsConnector, TlsSession};

/// Rounds of timers → input → events → output per turn before other tasks get theirs.
const ROUNDS: usize = 16;
/// How long a closed connection waits for the peer to close its side once its final frames
/// are written, reading and dropping what the peer still sends: closing a socket with unread
/// input resets it, which may destroy our CLOSE before the peer has read it (SPEC.md §7.8.1).
const DRAIN_ON_CLOSE: Duration = Duration::from_millis(200);
/// Most bytes read and dropped during [`DRAIN_ON_CLOSE`]: a peer that floods is not waited for.
const DRAIN_BYTES: usize = 1 << 20;
/// Socket reads per turn while draining.
const DRAIN_READS: usize = 8;

pub(crate) type Conn = Box<dyn Transport>;

/// What a resumed session's socket travels with from one driver to another.
type Handover = (Conn, Option<Box<TlsSession>>);

impl Source for Conn {
    fn source_fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd()
    }
}

impl Source for Connecting {
    fn source_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.fd())
    }
}

/// A client's reconnection attempts: where to, and the attempt under way.
pub struct Dialing {
    addr: Address,
    /// What the address resolved to when the client connected (TCP and UDP): attempts go
    /// there, in order, without resolving again on an I/O thread.
    addrs: Vec<SocketAddr>,
    connect_timeout: Duration,
    /// `tls://` and `wss://`: each new transport gets a new TLS session.
    tls: Option<TlsConnector>,
    /// `ws://` and `wss://`: the URL each new transport upgrades to (its TLS session goes
    /// inside the WebSocket transport, not to the pump).
    ws: Option<String>,
    /// The non-blocking connect under way, its deadline, and the index of its address.
    attempt: Option<(Registered<Connecting>, Instant, usize)>,
}

impl Dialing {
    /// Redials `addr` at `addrs` (what it resolved to when the client connected; none for Unix
    /// sockets), each attempt within `connect_timeout`, with a new TLS session of `tls` on
    /// `tls://`.
    pub fn new(
        addr: Address,
        addrs: Vec<SocketAddr>,
        connect_timeout: Duration,
        tls: Option<TlsConnector>,
    ) -> Self {
        let ws = matches!(addr, Address::WebSocket { .. }).then(|| addr.to_string());
        Dialing { addr, addrs, connect_timeout, tls, ws, attempt: None }
    }
}

struct Driver<F: HandlerFns, D: Dispatch<F>> {
    engine: Option<Engine<F>>,
    pump: Pump,
    socket: Option<Registered<Conn>>,
    /// The first socket (and its TLS session), registered on the first turn (on the I/O
    /// thread).
    fresh: Option<Handover>,
    dialing: Option<Dialing>,
    /// Where started handlers run.
    dispatch: D,
    /// Closing: until when to drain the peer's input, and how many bytes more at most.
    closing: Option<(Instant, usize)>,
    /// The socket's input is known to be drained: its last read was short or would block, and
    /// no readiness event arrived since (plain TCP and Unix stream only, see
    /// `Transport::short_read_drains`). Turns skip the read then — a caller's helping turn
    /// that only writes its request, the round after a turn's short read — which saves a
    /// `recv` that would fail with `EAGAIN` (four of them per unary call before).
    drained: bool,
}

/// Starts the driver of a new connection (speaking on `socket`, through `tls` on `tls://`
/// and `wss://`, upgraded to a WebSocket on `ws://` and `wss://`; redialing as `dialing` says
/// on a client) on an I/O thread; its started handlers go to `dispatch`.
pub fn spawn<F: HandlerFns, D: Dispatch<F>>(
    conn: NewConnection,
    socket: Socket,
    tls: Option<Box<TlsSession>>,
    dialing: Option<Dialing>,
    handlers: &Registry<F>,
    dispatch: D,
) {
    let (first, tls) = match dialing.as_ref().and_then(|d| d.ws.as_deref()) {
        Some(url) => (websocket_client(socket, tls, url, &conn), None),
        None => (Box::new(socket) as Conn, tls),
    };
    spawn_conn(conn, first, tls, dialing, handlers, dispatch);
}

/// The largest packet of a connection (its WebSocket messages' limit).
pub(crate) fn max_packet(conn: &NewConnection) -> usize {
    match conn.shared.lock().conn.config().transport {
        tandem_core::Transport::Packet { max_datagram }
        | tandem_core::Transport::Datagram { max_datagram } => max_datagram as usize,
        tandem_core::Transport::Stream => crate::config::DEFAULT_MAX_DATAGRAM as usize,
    }
}

/// A client's WebSocket transport on a connected TCP socket (`tls`: its session on `wss://`).
fn websocket_client(socket: Socket, tls: Option<Box<TlsSession>>, url: &str, conn: &NewConnection) -> Conn {
    websocket_client_sized(socket, tls, url, max_packet(conn))
}

fn websocket_client_sized(socket: Socket, tls: Option<Box<TlsSession>>, url: &str, max: usize) -> Conn {
    match socket {
        Socket::Tcp(tcp) => Box::new(WsTransport::client(tcp, tls, url, max)),
        other => {
            tracing::error!("a WebSocket needs a TCP socket: speaking without one");
            Box::new(other)
        }
    }
}

/// [`spawn`] for a transport made already (a server's WebSocket).
pub(crate) fn spawn_conn<F: HandlerFns, D: Dispatch<F>>(
    conn: NewConnection,
    first: Conn,
    tls: Option<Box<TlsSession>>,
    dialing: Option<Dialing>,
    handlers: &Registry<F>,
    dispatch: D,
) {
    let pump = Pump::new(conn.shared.id, &conn.shared.lock());
    let driver = Driver {
        engine: Some(Engine::new(conn, handlers.clone())),
        pump,
        socket: None,
        fresh: Some((first, tls)),
        dialing,
        dispatch,
        closing: None,
        drained: false,
    };
    iot::spawn(Box::new(driver), D::CALLERS_HELP);
}

/// A socket call's result for the pump: `WouldBlock` is `Pending`, and notes the readiness
/// to wait for.
fn op(
    r: io::Result<usize>,
    t: &dyn Transport,
    reading: bool,
    want: &mut Interest,
) -> Poll<io::Result<usize>> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            *want |= t.blocked(reading);
            Poll::Pending
        }
        r => Poll::Ready(r),
    }
}

impl<F: HandlerFns, D: Dispatch<F>> Task for Driver<F, D> {
    fn turn(&mut self, cx: &Cx<'_>) -> Next {
        // One reading of the clock for the whole turn (see `clock::hold`).
        let _clock = crate::clock::hold();
        if let Some((t, tls)) = self.fresh.take() {
            self.install(t, Vec::new(), tls, cx);
        }
        if cx.fired {
            self.drained = false;
            self.socket.as_mut().map(Registered::fired);
            if let Some((a, ..)) = self.dialing.as_mut().and_then(|d| d.attempt.as_mut()) {
                a.fired();
            }
        }
        if self.closing.is_some() {
            return self.drain();
        }
        let Some(engine) = self.engine.as_mut() else { return Next::Done };
        let shared = engine.shared().clone();
        let mut inner = shared.lock();
        // Wake-ups from this turn itself (answers queued under the lock) need no new turn.
        inner.set_driver(noop_waker());
        if let Some(t) = engine.begin(&mut inner) {
            // This session was resumed on another connection's socket (server side): speak on
            // it; the old one, if any, is dropped (closed) here.
            match t.io.downcast::<Handover>() {
                Ok(handover) => {
                    let (conn, tls) = *handover;
                    self.install(conn, t.pending, tls, cx)
                }
                Err(_) => tracing::error!("a transport of another runtime was handed over: ignored"),
            }
        }
        let Driver { engine, pump, socket, drained, .. } = self;
        let engine = engine.as_mut().expect("checked above");
        let mut want = Interest::default();
        let (mut busy, mut worked) = (true, false);
        for _ in 0..ROUNDS {
            let mut progress = engine.handle_timers(&mut inner);
            if let Some(s) = socket.as_mut() {
                let t = s.get_mut();
                let drains = t.short_read_drains() && !pump.has_tls();
                progress |= pump.read(&mut inner, |bufs| {
                    if drains && *drained {
                        want |= t.blocked(true);
                        return Poll::Pending;
                    }
                    let room: usize = bufs.iter().map(|b| b.len()).sum();
                    let r = t.read_vectored(bufs);
                    *drained = drains
                        && match &r {
                            Ok(n) => *n < room,
                            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
                        };
                    op(r, &**t, true, &mut want)
                });
                // Before the events: the authenticator must see a `wss://` peer's certificates.
                below_tandem(&mut **t, &mut inner);
            }
            progress |= engine.process(&mut inner, || {
                let s = socket.take()?;
                let remote = s.get().remote_addr();
                let handover: Handover = (s.into_inner(), pump.take_tls());
                Some(Handed { remote, io: Box::new(handover), pending: pump.take_pending() })
            });
            if let Some(s) = socket.as_mut() {
                let t = s.get_mut();
                progress |= pump.write_vectored(&mut inner, |bufs| {
                    let r = t.write_vectored(bufs);
                    op(r, &**t, false, &mut want)
                });
                if let Err(e) = t.flush() {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        want |= t.blocked(false);
                    }
                }
                below_tandem(&mut **t, &mut inner);
            }
            if !progress {
                busy = false;
                break;
            }
            worked = true;
        }
        let mut dial_at = None;
        match engine.track(&mut inner) {
            Track::Keep => {}
            Track::Lost => Self::drop_socket(socket, pump),
            Track::Redial => {
                Self::drop_socket(socket, pump);
                dial_at = self.redial(cx, &mut inner);
                busy |= self.socket.is_some();
            }
        }
        let Driver { engine, pump, socket, dispatch, .. } = self;
        let engine = engine.as_mut().expect("checked above");
        engine.end_turn(&mut inner, worked);
        let finished = engine.finished(&mut inner, pump.broken() || socket.is_none());
        let mut at = None;
        if !finished {
            inner.set_driver(cx.waker);
            at = engine.next_timeout(&inner);
        }
        drop(inner);
        for s in engine.started() {
            dispatch.dispatch(s);
        }
        engine.apply_actions_with(iot::wake_later);
        if finished {
            return self.close();
        }
        if let Some(s) = socket.as_mut() {
            s.arm(want);
            // Writability matters only after a write blocked, or while connecting.
            cx.write_idle(
                s.is_edge() && !want.write && !self.dialing.as_ref().is_some_and(|d| d.attempt.is_some()),
            );
        }
        match (at, dial_at) {
            _ if busy => Next::Again,
            (Some(a), Some(b)) => Next::Wait(Some(a.min(b))),
            (a, b) => Next::Wait(a.or(b)),
        }
    }
}

/// What the transport learned below tandem (WebSocket): a violation by the peer (the
/// connection closes with PROTOCOL_ERROR), why it failed, the peer's certificates (`wss://`).
fn below_tandem(t: &mut dyn Transport, inner: &mut Inner) {
    if let Some(v) = t.take_violation() {
        tracing::info!(remote = ?inner.remote, "{v}: closing with PROTOCOL_ERROR");
        if inner.transport_failure.is_none() {
            inner.transport_failure = Some(crate::state::TransportFailure::WebSocket(v.clone()));
        }
        inner.conn.close(crate::clock::now(), tandem_core::Status::PROTOCOL_ERROR, v.as_bytes());
    }
    if let Some(f) = t.take_failure() {
        if inner.transport_failure.is_none() {
            tracing::info!(remote = ?inner.remote, "transport failed: {f:?}");
            inner.transport_failure = Some(f);
        }
    }
    if let Some(certs) = t.take_peer_certificates() {
        inner.peer_certificates = Some(certs.into());
    }
}

impl<F: HandlerFns, D: Dispatch<F>> Driver<F, D> {
    /// Speaks on `conn` from now on (`pending`: bytes already read from it; `tls`: its TLS
    /// session on `tls://`).
    fn install(&mut self, mut conn: Conn, pending: Vec<u8>, tls: Option<Box<TlsSession>>, cx: &Cx<'_>) {
        conn.attach(cx.waker);
        self.drained = false;
        match Registered::new(conn, cx) {
            Ok(r) => {
                self.socket = Some(r);
                self.pump.install(pending, tls);
            }
            Err(e) => tracing::warn!(error = %e, "cannot wait on the connection's socket: dropping it"),
        }
    }

    /// Follows the reconnection schedule: starts non-blocking connects and checks the one
    /// under way; installs the socket once connected (the resuming handshake then runs on it).
    /// Returns when to look again.
    fn redial(&mut self, cx: &Cx<'_>, inner: &mut Inner) -> Option<Instant> {
        let engine = self.engine.as_mut()?;
        let d = self.dialing.as_mut()?;
        for _ in 0..16 {
            if let Some((a, deadline, i)) = d.attempt.as_mut() {
                let done = if Instant::now() >= *deadline {
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "connect_timeout passed")))
                } else {
                    a.get().poll_done()
                };
                let i = *i;
                match done {
                    Poll::Pending => {
                        a.arm(Interest { read: false, write: true });
                        return Some(*deadline);
                    }
                    Poll::Ready(Ok(())) => {
                        let (a, ..) = d.attempt.take().expect("just matched");
                        let tls = match d.tls.as_ref().map(|c| c.session()).transpose() {
                            Ok(tls) => tls.map(Box::new),
                            Err(e) => {
                                engine.attempt_failed(&e);
                                continue;
                            }
                        };
                        match a.into_inner().into_socket() {
                            Ok(s) if engine.attempt_connected(inner, s.remote_addr()) => {
                                tracing::info!(addr = %d.addr, "transport reconnected");
                                let (t, tls) = match d.ws.as_deref() {
                                    Some(url) => {
                                        let max = self.pump.max_packet();
                                        (websocket_client_sized(s, tls, url, max), None)
                                    }
                                    None => (Box::new(s) as Conn, tls),
                                };
                                self.install(t, Vec::new(), tls, cx);
                                return None;
                            }
                            Ok(_) => {}
                            Err(e) => engine.attempt_failed(&e),
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        d.attempt = None;
                        if i + 1 < d.addrs.len() {
                            d.start(i + 1, cx, engine);
                            continue;
                        }
                        engine.attempt_failed(&e);
                    }
                }
            }
            match engine.redial(inner) {
                Redialing::Idle => return None,
                Redialing::Dial => d.start(0, cx, engine),
                Redialing::Wait(at) if at > Instant::now() => return Some(at),
                Redialing::Wait(_) => {}
            }
        }
        // Not settled after many rounds (attempts failing at once): look again soon.
        Some(Instant::now() + Duration::from_millis(1))
    }

    /// Closes the lost transport (the session is suspended, or redials); on TLS with
    /// close_notify first (RFC 8446 §6.1; one non-blocking attempt, as on close).
    fn drop_socket(socket: &mut Option<Registered<Conn>>, pump: &mut Pump) {
        if let Some(mut s) = socket.take() {
            let t = s.get_mut();
            pump.finish(|data| match t.write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                r => Poll::Ready(r),
            });
        }
    }

    /// The connection has ended: ends our direction so that the peer reads our last frames,
    /// then drains its input briefly before closing (not over UDP, nor after a failed write).
    fn close(&mut self) -> Next {
        if let Some(s) = self.socket.as_mut() {
            let t = s.get_mut();
            self.pump.finish(|data| match t.write(data) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
                r => Poll::Ready(r),
            });
            if !self.pump.broken() && !s.get().is_udp() {
                s.get_mut().shutdown_write();
                if !self.pump.eof() {
                    self.closing = Some((Instant::now() + DRAIN_ON_CLOSE, DRAIN_BYTES));
                    return self.drain();
                }
            }
        }
        self.end()
    }

    fn drain(&mut self) -> Next {
        let (Some((deadline, left)), Some(s)) = (self.closing.as_mut(), self.socket.as_mut()) else {
            return self.end();
        };
        let mut buf = [0u8; 4096];
        for _ in 0..DRAIN_READS {
            match s.get_mut().read(&mut buf) {
                Ok(n) if n > 0 && n < *left => *left -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < *deadline => {
                    s.arm(Interest { read: true, write: false });
                    return Next::Wait(Some(*deadline));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return self.end(),
            }
        }
        if Instant::now() >= *deadline {
            return self.end();
        }
        Next::Again
    }

    /// The driver is done: closes the socket, resolves what still waits on the connection,
    /// tells the endpoint.
    fn end(&mut self) -> Next {
        self.socket = None;
        if let Some(e) = self.engine.take() {
            e.end();
        }
        self.dispatch.ended();
        Next::Done
    }
}

impl Dialing {
    /// Starts the attempt on address `i`; an immediate failure is reported at once.
    fn start<F: HandlerFns>(&mut self, i: usize, cx: &Cx<'_>, engine: &mut Engine<F>) {
        let deadline = Instant::now() + self.connect_timeout;
        let started = transport::start_connect(&self.addr, self.addrs.get(i).copied())
            .and_then(|c| Registered::new(c, cx));
        match started {
            Ok(a) => self.attempt = Some((a, deadline, i)),
            Err(e) => engine.attempt_failed(&e),
        }
    }
}

impl<F: HandlerFns, D: Dispatch<F>> Drop for Driver<F, D> {
    fn drop(&mut self) {
        // Only when a turn panicked (a bug): fail what waits on the connection rather than
        // leave it waiting for a driver that is gone.
        if self.engine.is_some() {
            self.end();
        }
    }
}
