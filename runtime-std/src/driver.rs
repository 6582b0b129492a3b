//! The driver: one thread per connection running the core's loop (SPEC: read → feed → events
//! → transmit → sleep until input or the next timeout). It never blocks on a write: when the
//! socket is full it waits for writability in the same `poll(2)` as for input.

use crate::clock;
use crate::conn::{Redial, Shared, IO_MIN};
use crate::peer::Peer;
use crate::transport::{self, Socket};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tandem_core::{Instant, Role, State, Status};

/// How long a connection that closed may take to write its last bytes, its CLOSE included
/// (SPEC.md §7.8.1): a peer that reads nothing for that long is cut off without it.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Once the CLOSE is written and the sending direction shut, how long the driver still reads
/// (and drops) what the peer sends, waiting for it to close too: closing a socket with unread
/// input makes the kernel reset the connection, which can destroy the CLOSE before the peer
/// has read it.
pub const CLOSE_DRAIN: Duration = Duration::from_millis(200);
/// Most bytes read and dropped during [`CLOSE_DRAIN`]: a peer that floods is not waited for.
const CLOSE_DRAIN_BYTES: usize = 1 << 20;
/// Reads per wake-up before other work gets a turn.
const READS_PER_WAKE: usize = 16;
/// A connection with no socket activity for this long gives its buffers back
/// (`Connection::release_memory` and the runtime's spare buffers); they grow again on demand.
const IDLE_RELEASE: Duration = Duration::from_millis(250);

type Hook = Box<dyn FnOnce(&Peer) + Send>;

/// What the owner wants to hear about the connection.
#[derive(Default)]
pub(crate) struct Hooks {
    /// The handshake completed (runs before the driver transmits anything more).
    pub(crate) on_connected: Option<Hook>,
    /// The connection ended and its socket is shut.
    pub(crate) on_finished: Option<Hook>,
}

/// Starts the driver thread.
pub(crate) fn spawn(shared: Arc<Shared>, hooks: Hooks) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(format!("tandem-conn-{}", shared.id)).spawn(move || drive(shared, hooks))
}

fn drive(shared: Arc<Shared>, mut hooks: Hooks) {
    let peer = Peer::from_shared(Arc::clone(&shared));
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&shared, &peer, &mut hooks)));
    if run.is_err() {
        // A bug, not an input: the core never panics on input. Fail everything rather than
        // leave callers waiting for a driver that is gone.
        tracing::error!(conn = shared.id, "connection driver panicked; abandoning the connection");
        shared.abandon();
    }
    if let Some(s) = shared.lock().socket.take() {
        s.shutdown();
    }
    // The writer's reference too: the descriptor closes now, not when the last `Peer` handle
    // of this connection is dropped.
    shared.release_socket();
    // The owner forgets the connection before anyone waiting for its end wakes up.
    if let Some(h) = hooks.on_finished.take() {
        h(&peer);
    }
    {
        let mut g = shared.lock();
        g.finished = true;
        shared.cond.notify_all();
    }
    tracing::debug!(conn = shared.id, peer = shared.name(), "driver finished");
}

/// The dialer's reconnection schedule while its session is suspended.
struct Redialing {
    /// When the next attempt may start.
    next: std::time::Instant,
    /// The delay before the attempt after the next failure (before jitter).
    delay: Duration,
    attempts: u32,
}

/// The loop proper; returns once the connection is finished.
fn run(shared: &Arc<Shared>, peer: &Peer, hooks: &mut Hooks) {
    // Byte streams: small until reads fill it (see `conn::IO_MIN`); packets: one whole datagram.
    let mut buf = vec![0u8; if shared.packet { shared.read_size } else { IO_MIN.min(shared.read_size) }];
    let mut eof = false;
    let mut gen = 0u64;
    let mut closed_at: Option<std::time::Instant> = None;
    // Once the CLOSE is out and our sending direction shut: until when we drain the peer's
    // input, and how much of it we have read since.
    let mut drain_until: Option<std::time::Instant> = None;
    let mut drained = 0usize;
    // Last socket activity, or `None` once idle memory was released.
    let mut active_at = Some(std::time::Instant::now());
    let mut suspended = false;
    // This session counts against the server's suspended-session bound.
    let mut counted = false;
    let mut redialing: Option<Redialing> = None;
    loop {
        let now = clock::now();
        let (timeout, connected, closed, finished, retry_soon, sock, needs, is_suspended) = {
            let mut g = shared.lock();
            if g.sock_gen != gen {
                gen = g.sock_gen;
                eof = g.socket.is_none();
                closed_at = None;
                drain_until = None;
            }
            if shared.take_broken() && !eof {
                eof = true;
                g.conn.handle_eof(now);
            }
            if g.conn.poll_timeout().is_some_and(|t| t <= now) {
                g.conn.handle_timeout(now);
            }
            shared.pump(&mut g, now);
            if !g.refusals.is_empty() {
                shared.retry_refusals(&mut g);
            }
            let needs = g.conn.needs_transport();
            if needs {
                if let Some(s) = g.socket.take() {
                    // The session outlives this transport (SPEC.md §13.2).
                    s.shutdown();
                    g.sock_gen += 1;
                    gen = g.sock_gen;
                }
                eof = true;
                if shared.redial.is_none() && g.conn.role() == Role::Dialer {
                    // Resumption turned off on this client: the session ends with the transport.
                    g.conn.close(now, Status::UNAVAILABLE, b"connection lost (resumption is off)");
                    shared.pump(&mut g, now);
                }
            }
            let is_suspended = g.conn.state() == State::Suspended;
            let t = g.conn.poll_timeout();
            g.sleep_until = t.unwrap_or(Instant::MAX);
            let retry_soon = !g.refusals.is_empty();
            (
                t,
                core::mem::take(&mut g.just_connected),
                g.closed.is_some(),
                g.conn.is_finished(),
                retry_soon,
                g.socket.clone(),
                needs,
                is_suspended,
            )
        };
        if is_suspended != suspended {
            suspended = is_suspended;
            counted = on_suspension_change(shared, suspended, counted);
            if !suspended {
                redialing = None;
            }
        }
        if connected {
            if let Some(h) = hooks.on_connected.take() {
                h(peer);
            }
        }
        shared.flush_out();
        if finished && (sock.is_none() || shared.datagram) {
            break;
        }

        let mut wait_ms = timeout.map(|t| clock::millis_until(clock::now(), t));
        if needs {
            if let Some(redial) = &shared.redial {
                let r = redialing.get_or_insert_with(|| Redialing {
                    next: std::time::Instant::now(),
                    delay: redial.initial,
                    attempts: 0,
                });
                if std::time::Instant::now() >= r.next {
                    attempt_redial(shared, redial, r);
                    continue;
                }
                let left = r.next.saturating_duration_since(std::time::Instant::now()).as_millis() as u64 + 1;
                wait_ms = Some(wait_ms.map_or(left, |m| m.min(left)));
            }
        }
        if retry_soon {
            // Refusals wait for transmit room that another thread may free.
            wait_ms = Some(wait_ms.map_or(5, |m| m.min(5)));
        }
        if closed && !shared.datagram {
            if let Some(s) = &sock {
                // Say why before going (SPEC.md §7.8.1): write everything up to the CLOSE
                // (within CLOSE_LINGER), shut our sending direction, then drain the peer's input
                // until it closes too (within CLOSE_DRAIN and CLOSE_DRAIN_BYTES).
                let now = std::time::Instant::now();
                let at = *closed_at.get_or_insert(now);
                if drain_until.is_none() && finished && shared.writer_idle() {
                    s.shutdown_write();
                    drain_until = Some(now + CLOSE_DRAIN);
                    drained = 0;
                }
                let until = match drain_until {
                    Some(until) => {
                        if eof || now >= until || drained >= CLOSE_DRAIN_BYTES {
                            break;
                        }
                        until
                    }
                    None if now >= at + CLOSE_LINGER => {
                        tracing::debug!(
                            conn = shared.id,
                            "peer does not take our last bytes (CLOSE); closing the socket"
                        );
                        shared.discard_transmit();
                        break;
                    }
                    None => at + CLOSE_LINGER,
                };
                let ms = until.saturating_duration_since(now).as_millis() as u64 + 1;
                wait_ms = Some(wait_ms.map_or(ms, |m| m.min(ms)));
            }
        }
        if let Some(at) = active_at {
            let left = IDLE_RELEASE.saturating_sub(at.elapsed()).as_millis() as u64 + 1;
            wait_ms = Some(wait_ms.map_or(left, |m| m.min(left)));
        }
        let timeout = wait_ms.map_or(PollTimeout::NONE, |ms| {
            PollTimeout::try_from(ms.min(i32::MAX as u64)).unwrap_or(PollTimeout::MAX)
        });
        let mut events = PollFlags::empty();
        if !eof && sock.as_ref().is_some_and(|s| s.is_readable()) {
            events |= PollFlags::POLLIN;
        }
        if shared.wants_out() && drain_until.is_none() {
            events |= PollFlags::POLLOUT;
        }
        let (sock_ready, wake) = {
            let waker = PollFd::new(shared.waker_rx.as_fd(), PollFlags::POLLIN);
            match (&sock, events.is_empty()) {
                (Some(s), false) => {
                    let mut fds = [PollFd::new(s.as_fd(), events), waker];
                    let _ = nix::poll::poll(&mut fds, timeout);
                    (fds[0].revents().unwrap_or(PollFlags::empty()), fds[1].any().unwrap_or(false))
                }
                _ => {
                    let mut fds = [waker];
                    let _ = nix::poll::poll(&mut fds, timeout);
                    (PollFlags::empty(), fds[0].any().unwrap_or(false))
                }
            }
        };
        if wake {
            shared.drain_waker();
        }
        if wake || !sock_ready.is_empty() {
            active_at = Some(std::time::Instant::now());
        } else if active_at.is_some_and(|at| at.elapsed() >= IDLE_RELEASE) {
            // No traffic for a while: the I/O buffers go back to their small size in any case
            // (a suspended session or one with slow exchanges keeps few bytes), the rest only
            // once nothing is open.
            if !shared.packet && buf.len() > IO_MIN {
                buf = vec![0u8; IO_MIN];
            }
            shared.shrink_writer();
            let mut g = shared.lock();
            if g.calls.is_empty() && g.streams.is_empty() && g.inbound.is_empty() {
                g.release_memory();
                active_at = None;
            } else {
                active_at = Some(std::time::Instant::now());
            }
        }
        if let Some(s) = &sock {
            if !eof && sock_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                let mut filled = false;
                eof |= read_some(shared, s, gen, &mut buf, &mut drained, &mut filled);
                if filled && !shared.packet && buf.len() < shared.read_size {
                    // A read filled the buffer: more is coming, read in larger pieces.
                    buf.resize(shared.read_size, 0);
                }
            }
        }
    }
}

/// Logs a suspension or resumption and tells the owner (a server bounds suspended sessions).
/// Returns whether the session now counts against that bound.
fn on_suspension_change(shared: &Shared, suspended: bool, counted: bool) -> bool {
    if suspended {
        tracing::info!(
            conn = shared.id,
            peer = shared.name(),
            "transport lost; session suspended, waiting to resume"
        );
    } else {
        tracing::info!(conn = shared.id, peer = shared.name(), "session left suspension");
    }
    let Some(h) = shared.session.get() else { return false };
    if !suspended {
        if counted {
            (h.suspended)(false);
        }
        return false;
    }
    if (h.suspended)(true) {
        return true;
    }
    let mut g = shared.lock();
    g.conn.close(
        clock::now(),
        Status::RESOURCE_EXHAUSTED,
        b"too many suspended sessions (ServerConfig::max_suspended_sessions)",
    );
    shared.pump_now(&mut g);
    false
}

/// One reconnection attempt of a suspended dialer session, then schedules the next one.
fn attempt_redial(shared: &Shared, redial: &Redial, r: &mut Redialing) {
    r.attempts += 1;
    tracing::info!(conn = shared.id, attempt = r.attempts, addr = %redial.addr, "reconnecting to resume the session");
    let result = transport::connect_timeout(&redial.addr, redial.connect_timeout);
    // The next attempt (if this one fails, now or during the resuming handshake).
    let jitter = 1.0 + redial.jitter * (2.0 * random_unit() - 1.0);
    let wait = r.delay.mul_f64(jitter.max(0.0));
    r.next = std::time::Instant::now() + wait;
    r.delay = r.delay.mul_f64(redial.multiplier.max(1.0)).min(redial.max);
    match result {
        Ok(sock) => {
            let mut g = shared.lock();
            match g.conn.reconnect(clock::now()) {
                Ok(()) => {
                    g.socket = Some(Arc::new(sock));
                    g.sock_gen += 1;
                    shared.clear_broken();
                }
                Err(e) => {
                    tracing::debug!(conn = shared.id, "cannot resume: {e}");
                }
            }
        }
        Err(e) => {
            tracing::info!(
                conn = shared.id,
                attempt = r.attempts,
                "reconnection failed: {e}; next attempt in {wait:?}"
            );
        }
    }
}

/// A number in [0, 1) from the standard library's per-process random hash keys and the clock
/// (no RNG crate in the workspace; jitter needs no cryptographic quality).
pub(crate) fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// 64 random-ish bits: `RandomState` (randomly keyed SipHash) over a counter and the time.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Reads what the socket has (bounded), feeding the core. Returns true at end of file.
/// `read` counts the bytes read; `filled` is set when a read filled `buf`.
fn read_some(
    shared: &Shared,
    sock: &Socket,
    gen: u64,
    buf: &mut [u8],
    read: &mut usize,
    filled: &mut bool,
) -> bool {
    let packet = shared.packet;
    for _ in 0..READS_PER_WAKE {
        match sock.read(buf) {
            Ok(0) => {
                tracing::debug!(conn = shared.id, "end of file");
                let mut g = shared.lock();
                if g.sock_gen == gen {
                    g.conn.handle_eof(clock::now());
                    shared.pump_now(&mut g);
                }
                return true;
            }
            Ok(n) => {
                *read = read.saturating_add(n);
                *filled |= n == buf.len();
                let mut g = shared.lock();
                if g.sock_gen != gen {
                    return true;
                }
                shared.feed(&mut g, clock::now(), &buf[..n]);
                if g.sock_gen != gen || (!packet && n < buf.len()) {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // UDP: an ICMP error for an earlier datagram; the core's timers deal with loss.
            Err(e) if shared.datagram => tracing::trace!(conn = shared.id, "datagram receive error: {e}"),
            Err(e) => {
                tracing::debug!(conn = shared.id, "read failed: {e}");
                let mut g = shared.lock();
                if g.sock_gen == gen {
                    g.conn.handle_eof(clock::now());
                    shared.pump_now(&mut g);
                }
                return true;
            }
        }
    }
    false
}
