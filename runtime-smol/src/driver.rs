//! The per-connection driver task: the only owner of the socket. Each wake-up it runs one turn
//! of the connection's [`Engine`] (the shared, I/O-free half of a driver) around the socket's
//! reads and writes, dials reconnection attempts when the engine says so, and sleeps until the
//! socket, an API call (which wakes it) or the engine's next timeout. (Layer 2: imports
//! `handlers`, `transport`, `spawner`.)

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use async_io::Timer;
use futures_lite::future::{poll_fn, FutureExt};
use tandem_runtime::conn::{Inner, Transport};
use tandem_runtime::engine::Engine;
use tandem_runtime::open::NewConnection;
use tandem_runtime::pump::Pump;
use tandem_runtime::session::{Redialing, Track};
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::tls::{TlsConnector, TlsSession};
use tandem_runtime::Error;

use crate::alarm::Alarm;
use crate::handlers::{self, AsyncFns, Handlers};
use crate::spawner::Spawner;
use crate::transport::{self, Socket};

/// Rounds of timers → inbound → events → transmit per wake-up before yielding.
const ROUNDS: usize = 16;
/// How long a closed connection waits for the peer to close its side once its final frames are
/// written, reading and dropping what the peer still sends: closing a socket with unread input
/// resets it, which may destroy our CLOSE before the peer has read it.
const DRAIN_ON_CLOSE: Duration = Duration::from_millis(200);
/// Most bytes read and dropped during [`DRAIN_ON_CLOSE`]: a peer that floods is not waited for.
const DRAIN_BYTES: usize = 1 << 20;
/// Socket reads per poll while draining.
const DRAIN_READS: usize = 8;

/// A reconnection attempt in progress: the transport, within the connect timeout.
type Attempt = Pin<Box<dyn Future<Output = Result<Socket, Error>> + Send>>;

/// A client's dialing: where to, and the attempt or the wait for it under way.
pub(crate) struct Dialing {
    pub(crate) addr: Address,
    pub(crate) connect_timeout: Duration,
    /// `tls://`: each new transport gets a new TLS session.
    tls: Option<TlsConnector>,
    attempt: Option<Attempt>,
    timer: Option<(std::time::Instant, Timer)>,
}

impl Dialing {
    pub(crate) fn new(addr: Address, connect_timeout: Duration, tls: Option<TlsConnector>) -> Self {
        Dialing { addr, connect_timeout, tls, attempt: None, timer: None }
    }
}

/// What a resumed session's socket travels with from one driver to another.
type Handover = (Socket, Option<Box<TlsSession>>);

/// Spawns the driver of a new connection on `spawner`; its handlers run there too.
pub(crate) fn spawn(
    conn: NewConnection,
    socket: Socket,
    tls: Option<Box<TlsSession>>,
    dialing: Option<Dialing>,
    handlers: &Handlers,
    spawner: Arc<dyn Spawner>,
) {
    let mut pump = Pump::new(conn.shared.id, &conn.shared.lock());
    pump.install(Vec::new(), tls);
    let driver = Driver {
        engine: Engine::new(conn, handlers.registry().clone()),
        pump,
        socket: Some(socket),
        alarm: Alarm::new(),
        dialing,
        spawner: spawner.clone(),
    };
    spawner.spawn(Box::pin(driver.run()));
}

struct Driver {
    engine: Engine<AsyncFns>,
    pump: Pump,
    /// `None` while a suspended session waits for a transport (SPEC.md §13), and once the
    /// socket was handed to the session it resumed.
    socket: Option<Socket>,
    /// Rings at the engine's next timeout (see [`Alarm`] for why not an async-io timer).
    alarm: Arc<Alarm>,
    dialing: Option<Dialing>,
    spawner: Arc<dyn Spawner>,
}

impl Driver {
    /// Runs the connection until it is finished.
    async fn run(mut self) {
        poll_fn(|cx| self.poll(cx)).await;
        if let Some(socket) = self.socket.take() {
            poll_fn(|cx| {
                self.pump.finish(|data| socket.poll_write(cx, data));
                Poll::Ready(())
            })
            .await;
            if !self.pump.broken() {
                close_socket(socket, self.pump.eof()).await;
            }
        }
        self.engine.end();
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let shared = self.engine.shared().clone();
        let mut inner = shared.lock();
        inner.set_driver(cx.waker());
        if let Some(t) = self.engine.begin(&mut inner) {
            // This session was resumed on a new connection (server side): speak on its socket;
            // the old one, if any, is dropped (closed) here.
            self.install(t);
        }
        let (mut busy, mut worked) = (true, false);
        for _ in 0..ROUNDS {
            let mut progress = self.engine.handle_timers(&mut inner);
            if let Some(s) = &self.socket {
                progress |= self.pump.read(&mut inner, |buf| s.poll_read(cx, buf));
            }
            let (socket, pump) = (&mut self.socket, &mut self.pump);
            progress |= self.engine.process(&mut inner, || {
                let s = socket.take()?;
                let remote = s.remote_addr();
                let handover: Handover = (s, pump.take_tls());
                Some(Transport { remote, io: Box::new(handover), pending: pump.take_pending() })
            });
            if let Some(s) = &self.socket {
                progress |= self.pump.write(&mut inner, |data| s.poll_write(cx, data));
            }
            if !progress {
                busy = false;
                break;
            }
            worked = true;
        }
        match self.engine.track(&mut inner) {
            Track::Keep => {}
            Track::Lost => self.drop_socket(cx),
            Track::Redial => {
                self.drop_socket(cx);
                if let Some((socket, tls)) = self.redial(cx, &mut inner) {
                    self.socket = Some(socket);
                    self.pump.install(Vec::new(), tls);
                    busy = true;
                }
            }
        }
        self.engine.end_turn(&mut inner, worked);
        if busy {
            // Work remains: yield to other tasks, then come back.
            cx.waker().wake_by_ref();
        }
        let gone = self.pump.broken() || self.socket.is_none();
        let finished = self.engine.finished(&mut inner, gone);
        if !finished {
            self.arm_timer(cx, &inner);
        }
        drop(inner);
        for s in self.engine.started() {
            self.spawner.spawn(handlers::task(s));
        }
        self.engine.apply_actions();
        if finished {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn install(&mut self, t: Transport) {
        match t.io.downcast::<Handover>() {
            Ok(handover) => {
                if self.socket.is_some() {
                    tracing::debug!(conn = self.engine.shared().id, "closing the session's previous socket");
                }
                let (socket, tls) = *handover;
                self.socket = Some(socket);
                self.pump.install(t.pending, tls);
            }
            // Only this runtime's drivers hand transports to its connections.
            Err(_) => tracing::error!("a transport of another runtime was handed over: ignored"),
        }
    }

    /// Closes the lost transport (the session is suspended, or redials); on TLS with
    /// close_notify first (RFC 8446 §6.1; one non-blocking attempt, as on close).
    fn drop_socket(&mut self, cx: &mut Context<'_>) {
        if let Some(socket) = self.socket.take() {
            tracing::debug!(conn = self.engine.shared().id, "dropping the lost transport");
            self.pump.finish(|data| socket.poll_write(cx, data));
        }
    }

    /// Follows the reconnection schedule: waits for the next attempt, dials, and returns the
    /// new transport once one is connected (the resuming handshake then runs on it), with its
    /// TLS session on `tls://`.
    fn redial(&mut self, cx: &mut Context<'_>, inner: &mut Inner) -> Option<Handover> {
        let d = self.dialing.as_mut()?;
        for _ in 0..16 {
            if let Some(attempt) = d.attempt.as_mut() {
                let Poll::Ready(result) = attempt.as_mut().poll(cx) else { return None };
                d.attempt = None;
                let tls = match (&result, &d.tls) {
                    (Ok(_), Some(c)) => match c.session() {
                        Ok(s) => Some(Box::new(s)),
                        Err(e) => {
                            self.engine.attempt_failed(&e);
                            continue;
                        }
                    },
                    _ => None,
                };
                match result {
                    Ok(socket) if self.engine.attempt_connected(inner, socket.remote_addr()) => {
                        tracing::info!(addr = %d.addr, "transport reconnected");
                        return Some((socket, tls));
                    }
                    Ok(_) => {}
                    Err(e) => self.engine.attempt_failed(&e),
                }
            }
            match self.engine.redial(inner) {
                Redialing::Idle => return None,
                Redialing::Dial => {
                    d.timer = None;
                    let (addr, timeout) = (d.addr.clone(), d.connect_timeout);
                    d.attempt = Some(Box::pin(async move {
                        let label = addr.to_string();
                        transport::connect(&addr)
                            .or(async move {
                                Timer::after(timeout).await;
                                Err(Error::Timeout { addr: label })
                            })
                            .await
                    }));
                }
                Redialing::Wait(at) => {
                    if !matches!(d.timer, Some((t, _)) if t == at) {
                        d.timer = Some((at, Timer::at(at)));
                    }
                    let (_, timer) = d.timer.as_mut()?;
                    if Pin::new(timer).poll(cx).is_pending() {
                        return None;
                    }
                    // The wait is over: the attempt starts on the next round.
                    d.timer = None;
                }
            }
        }
        // Not settled after many rounds (attempts failing at once): come back after other tasks.
        cx.waker().wake_by_ref();
        None
    }

    fn arm_timer(&mut self, cx: &mut Context<'_>, inner: &Inner) {
        if let Some(at) = self.engine.next_timeout(inner) {
            self.alarm.arm(at);
        }
        if self.alarm.poll(cx.waker()) {
            cx.waker().wake_by_ref();
        }
    }
}

/// Closes the socket so that the peer still receives our final frames: a socket closed with
/// unread input is reset, which may discard what we wrote last (our CLOSE).
async fn close_socket(socket: Socket, eof: bool) {
    if socket.is_udp() {
        return;
    }
    socket.shutdown_write();
    if eof {
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
        for _ in 0..DRAIN_READS {
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
