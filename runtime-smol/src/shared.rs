//! State shared by a connection's driver task and its handles: the core connection behind a
//! `std::sync::Mutex` (held briefly, never across an await), plus the wakers of everything
//! waiting on it.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use core::task::Waker;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use event_listener::Event;
use tandem_core::{ApiError, Connection, ConnectionError, Instant, Status};

use crate::options::Backoff;
use crate::router::Router;
use crate::server::ServerShared;
use crate::transport::{Credentials, Socket};
use tandem_core::addr::Address;

/// The runtime's clock: microseconds since the first use, as the core's [`Instant`].
pub(crate) fn now() -> Instant {
    Instant::from_micros(u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX))
}

fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// 64 unpredictable bits. No RNG crate is in the workspace: this hashes a counter and the
/// clock with `std`'s `RandomState`, whose keys the standard library draws from the operating
/// system's random source (once per thread, then varied per instance).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    h.write_u128(epoch().elapsed().as_nanos());
    h.finish()
}

/// A random number in `0.0..1.0` (reconnection jitter).
pub(crate) fn random_unit() -> f64 {
    (random_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A new session token: 16 unpredictable bytes (SPEC.md §13.1).
pub(crate) fn session_token() -> Vec<u8> {
    let mut t = Vec::with_capacity(16);
    t.extend_from_slice(&random_u64().to_le_bytes());
    t.extend_from_slice(&random_u64().to_le_bytes());
    t
}

/// The core instant `t` on the std clock (`None`: too far away to represent).
pub(crate) fn to_std(t: Instant) -> Option<std::time::Instant> {
    epoch().checked_add(Duration::from_micros(t.as_micros()))
}

/// Registers the task of `cx` on a list of waiters, unless a waker for the same task is there
/// already. A task polls again whenever anything wakes it (a select loop re-creates its futures
/// each round), and the lists are emptied only when their event happens (`state_waiters` at the
/// handshake and at the end of the connection): pushing on every poll would keep one waker per
/// poll for the connection's whole life. So a list holds at most one entry per waiting task.
pub(crate) fn wait_on(list: &mut Vec<Waker>, cx: &core::task::Context<'_>) {
    let w = cx.waker();
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

/// Cancellation of one inbound exchange, observed by its handler.
#[derive(Debug, Default)]
pub(crate) struct CancelToken {
    flag: AtomicBool,
    event: Event,
}

impl CancelToken {
    pub(crate) fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub(crate) async fn cancelled(&self) {
        loop {
            if self.is_cancelled() {
                return;
            }
            let listener = self.event.listen();
            if self.is_cancelled() {
                return;
            }
            listener.await;
        }
    }
}

/// One outbound call or reliable notification waiting for its outcome.
#[derive(Default)]
pub(crate) struct CallSlot {
    pub(crate) result: Option<Result<Vec<u8>, Status>>,
    pub(crate) waker: Option<Waker>,
}

/// One stream, either direction of opening.
pub(crate) struct StreamEntry {
    /// The peer opened it (we are the responder).
    pub(crate) inbound: bool,
    /// Items received and not yet taken by the receiver.
    pub(crate) items: VecDeque<Vec<u8>>,
    /// The peer finished its direction with this status.
    pub(crate) fin: Option<Status>,
    /// The stream ended abruptly (peer reset, deadline, connection lost).
    pub(crate) reset: Option<Status>,
    pub(crate) rx_waker: Option<Waker>,
    pub(crate) tx_waker: Option<Waker>,
    pub(crate) rx_alive: bool,
    pub(crate) tx_alive: bool,
    /// This side ended its direction.
    pub(crate) sent_fin: bool,
    /// The receiver has reported the end.
    pub(crate) rx_done: bool,
}

impl StreamEntry {
    pub(crate) fn new(inbound: bool) -> Self {
        StreamEntry {
            inbound,
            items: VecDeque::new(),
            fin: None,
            reset: None,
            rx_waker: None,
            tx_waker: None,
            rx_alive: true,
            tx_alive: true,
            sent_fin: false,
            rx_done: false,
        }
    }

    pub(crate) fn wake(&mut self) {
        if let Some(w) = self.rx_waker.take() {
            w.wake();
        }
        if let Some(w) = self.tx_waker.take() {
            w.wake();
        }
    }
}

/// An answer that did not fit the transmit queue; the driver retries it after transmitting.
pub(crate) enum Backlog {
    Respond { id: u64, status: Status, payload: Vec<u8> },
    Finish { id: u64, status: Status },
    Reset { id: u64, status: Status },
}

/// Everything behind the connection's lock.
pub(crate) struct Inner {
    pub(crate) conn: Connection<'static>,
    pub(crate) driver: Option<Waker>,
    pub(crate) calls: HashMap<u64, CallSlot>,
    pub(crate) streams: HashMap<u64, StreamEntry>,
    /// Exchanges the peer opened whose handler is running.
    pub(crate) inbound: HashMap<u64, Arc<CancelToken>>,
    pub(crate) backlog: VecDeque<Backlog>,
    /// Waiting for room (transmit queue, call or stream slots); one entry per task
    /// ([`wait_on`]).
    pub(crate) capacity_waiters: Vec<Waker>,
    /// Waiting for the handshake or the end of the connection; one entry per task ([`wait_on`]).
    pub(crate) state_waiters: Vec<Waker>,
    pub(crate) connected: bool,
    pub(crate) closed: Option<ConnectionError>,
    /// Signal (unreliable notification) handlers running now.
    pub(crate) signal_tasks: usize,
    /// Acceptor: this fresh connection's dialer asked to resume the session with this token;
    /// the driver resumes or declines it.
    pub(crate) resume_token: Option<Vec<u8>>,
    /// Acceptor: the session was resumed on another connection's socket (and the bytes that
    /// connection had read past what its core took); the driver switches to it.
    pub(crate) new_socket: Option<(Socket, Vec<u8>)>,
}

impl Inner {
    /// Returns an idle connection's memory: the core's empty buffers and tables, and the
    /// capacity of the runtime's empty tables.
    pub(crate) fn release_memory(&mut self) {
        self.conn.release_memory();
        if self.calls.is_empty() {
            self.calls = HashMap::new();
        }
        if self.streams.is_empty() {
            self.streams = HashMap::new();
        }
        if self.inbound.is_empty() {
            self.inbound = HashMap::new();
        }
        if self.backlog.is_empty() {
            self.backlog = VecDeque::new();
        }
        if self.capacity_waiters.is_empty() {
            self.capacity_waiters = Vec::new();
        }
        if self.state_waiters.is_empty() {
            self.state_waiters = Vec::new();
        }
    }

    pub(crate) fn new(conn: Connection<'static>) -> Self {
        Inner {
            conn,
            driver: None,
            calls: HashMap::new(),
            streams: HashMap::new(),
            inbound: HashMap::new(),
            backlog: VecDeque::new(),
            capacity_waiters: Vec::new(),
            state_waiters: Vec::new(),
            connected: false,
            closed: None,
            signal_tasks: 0,
            resume_token: None,
            new_socket: None,
        }
    }

    /// Asks the driver to run: something was queued for transmission or must be processed.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = self.driver.take() {
            w.wake();
        }
    }

    pub(crate) fn wake_capacity(&mut self) {
        for w in self.capacity_waiters.drain(..) {
            w.wake();
        }
    }

    pub(crate) fn wake_state(&mut self) {
        for w in self.state_waiters.drain(..) {
            w.wake();
        }
    }

    /// Answers an inbound call; keeps it for later when the transmit queue is full.
    pub(crate) fn respond(&mut self, id: u64, status: Status, payload: Vec<u8>) {
        match self.conn.respond(id, status, &payload) {
            Ok(()) => {}
            Err(ApiError::TxFull) => self.backlog.push_back(Backlog::Respond { id, status, payload }),
            Err(ApiError::TooLarge { size, limit }) => {
                tracing::warn!(id, size, limit, "response too large for the peer: answering TOO_LARGE");
                self.respond(id, Status::TOO_LARGE, Vec::new());
            }
            Err(e) => tracing::debug!(id, error = %e, "response not sent"),
        }
        self.wake_driver();
    }

    /// Ends this side of an inbound stream (status = the stream's result).
    pub(crate) fn finish_stream(&mut self, id: u64, status: Status) {
        match self.conn.stream_finish(id, status) {
            Ok(()) => {}
            Err(ApiError::TxFull) => self.backlog.push_back(Backlog::Finish { id, status }),
            Err(e) => tracing::debug!(id, error = %e, "stream finish not sent"),
        }
        self.wake_driver();
    }

    pub(crate) fn reset_stream(&mut self, id: u64, status: Status) {
        match self.conn.stream_reset(id, status) {
            Ok(()) => {}
            Err(ApiError::TxFull) => self.backlog.push_back(Backlog::Reset { id, status }),
            Err(e) => tracing::debug!(id, error = %e, "stream reset not sent"),
        }
        self.wake_driver();
    }

    /// Retries answers kept for lack of transmit room. Returns whether any went out.
    pub(crate) fn retry_backlog(&mut self) -> bool {
        let mut progress = false;
        while let Some(b) = self.backlog.pop_front() {
            let r = match &b {
                Backlog::Respond { id, status, payload } => self.conn.respond(*id, *status, payload),
                Backlog::Finish { id, status } => self.conn.stream_finish(*id, *status),
                Backlog::Reset { id, status } => self.conn.stream_reset(*id, *status),
            };
            match r {
                Err(ApiError::TxFull) => {
                    self.backlog.push_front(b);
                    break;
                }
                _ => progress = true,
            }
        }
        progress
    }

    /// Hands the items a receiver will never take back to flow control.
    pub(crate) fn discard_items(&mut self, id: u64) {
        let Some(e) = self.streams.get_mut(&id) else { return };
        let items: Vec<Vec<u8>> = e.items.drain(..).collect();
        for it in items {
            let _ = self.conn.stream_consumed(id, 1, it.len() as u32);
        }
        self.wake_driver();
    }
}

/// What the peer announced in its HELLO, fixed once connected.
#[derive(Clone, Debug)]
pub(crate) struct PeerInfo {
    pub(crate) name: String,
}

/// One connection, shared by its driver, its handles and its running handlers.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) router: Router,
    /// User-visible handles ([`Peer`](crate::Peer)); the connection closes when the last goes.
    pub(crate) handles: AtomicUsize,
    pub(crate) info: OnceLock<PeerInfo>,
    pub(crate) creds: Option<Credentials>,
    /// Connection number, for logs.
    pub(crate) id: u64,
    /// The server that accepted this connection, if any.
    pub(crate) server: Option<Arc<ServerShared>>,
    /// Dialer: how to reconnect a suspended session.
    pub(crate) dial: Option<Dial>,
}

/// What a dialer needs to reconnect its suspended session.
pub(crate) struct Dial {
    pub(crate) addr: Address,
    pub(crate) resumption: bool,
    pub(crate) backoff: Backoff,
    pub(crate) connect_timeout: Duration,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
