//! The driver: one thread per connection running the core's loop (SPEC: read → feed → events
//! → transmit → sleep until input or the next timeout). It never blocks on a write: when the
//! socket is full it waits for writability in the same `poll(2)` as for input.

use crate::clock;
use crate::conn::Shared;
use crate::peer::Peer;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;
use tandem_core::Instant;

/// How long a closed connection may take to write its last bytes (CLOSE) before the socket is
/// shut regardless.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
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
    shared.socket.shutdown();
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

/// The loop proper; returns once the connection is finished.
fn run(shared: &Arc<Shared>, peer: &Peer, hooks: &mut Hooks) {
    let mut buf = vec![0u8; shared.read_size];
    let mut eof = false;
    let mut closed_at: Option<std::time::Instant> = None;
    // Last socket activity, or `None` once idle memory was released.
    let mut active_at = Some(std::time::Instant::now());
    loop {
        let now = clock::now();
        let (timeout, connected, closed, finished, retry_soon) = {
            let mut g = shared.lock();
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
            let t = g.conn.poll_timeout();
            g.sleep_until = t.unwrap_or(Instant::MAX);
            let retry_soon = !g.refusals.is_empty();
            (t, core::mem::take(&mut g.just_connected), g.closed.is_some(), g.conn.is_finished(), retry_soon)
        };
        if connected {
            if let Some(h) = hooks.on_connected.take() {
                h(peer);
            }
        }
        if finished {
            break;
        }
        shared.flush(false);

        let mut wait_ms = timeout.map(|t| clock::millis_until(clock::now(), t));
        if retry_soon {
            // Refusals wait for transmit room that another thread may free.
            wait_ms = Some(wait_ms.map_or(5, |m| m.min(5)));
        }
        if closed {
            // Closed but the last bytes are not written yet: give them a moment.
            let at = *closed_at.get_or_insert_with(std::time::Instant::now);
            if at.elapsed() >= CLOSE_LINGER {
                tracing::debug!(conn = shared.id, "peer does not take the last bytes; shutting the socket");
                shared.socket.shutdown();
                eof = true;
                shared.discard_transmit();
                continue;
            }
            wait_ms = Some(wait_ms.map_or(10, |m| m.min(10)));
        }
        if let Some(at) = active_at {
            let left = IDLE_RELEASE.saturating_sub(at.elapsed()).as_millis() as u64 + 1;
            wait_ms = Some(wait_ms.map_or(left, |m| m.min(left)));
        }
        let timeout = wait_ms.map_or(PollTimeout::NONE, |ms| {
            PollTimeout::try_from(ms.min(i32::MAX as u64)).unwrap_or(PollTimeout::MAX)
        });
        let mut events = PollFlags::empty();
        if !eof {
            events |= PollFlags::POLLIN;
            if shared.wants_out() {
                events |= PollFlags::POLLOUT;
            }
        }
        let (sock_ready, wake) = {
            let waker = PollFd::new(shared.waker_rx.as_fd(), PollFlags::POLLIN);
            let r = if events.is_empty() {
                let mut fds = [waker];
                let _ = nix::poll::poll(&mut fds, timeout);
                (PollFlags::empty(), fds[0].any().unwrap_or(false))
            } else {
                let mut fds = [PollFd::new(shared.socket.as_fd(), events), waker];
                let _ = nix::poll::poll(&mut fds, timeout);
                (fds[0].revents().unwrap_or(PollFlags::empty()), fds[1].any().unwrap_or(false))
            };
            r
        };
        if wake {
            shared.drain_waker();
        }
        if wake || !sock_ready.is_empty() {
            active_at = Some(std::time::Instant::now());
        } else if active_at.is_some_and(|at| at.elapsed() >= IDLE_RELEASE) {
            let mut g = shared.lock();
            if g.calls.is_empty() && g.streams.is_empty() && g.inbound.is_empty() {
                g.release_memory();
                active_at = None;
            } else {
                active_at = Some(std::time::Instant::now());
            }
        }
        if sock_ready.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            eof |= read_some(shared, &mut buf);
        }
    }
}

/// Reads what the socket has (bounded), feeding the core. Returns true at end of file.
fn read_some(shared: &Shared, buf: &mut [u8]) -> bool {
    let packet = shared.socket.is_packet();
    for _ in 0..READS_PER_WAKE {
        match shared.socket.read(buf) {
            Ok(0) => {
                tracing::debug!(conn = shared.id, "end of file");
                let mut g = shared.lock();
                g.conn.handle_eof(clock::now());
                shared.pump_now(&mut g);
                return true;
            }
            Ok(n) => {
                let mut g = shared.lock();
                shared.feed(&mut g, clock::now(), &buf[..n]);
                if !packet && n < buf.len() {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!(conn = shared.id, "read failed: {e}");
                let mut g = shared.lock();
                g.conn.handle_eof(clock::now());
                shared.pump_now(&mut g);
                return true;
            }
        }
    }
    false
}
