//! One connection's shared state: the core [`Connection`] behind a mutex, the waiting callers'
//! tables, and the two things any thread may do with it: dispatch events ([`Shared::pump`])
//! and write queued bytes ([`Shared::flush`]).
//!
//! Locking: `writer` may be held while taking `inner`, never the reverse; nothing blocks while
//! holding `inner` except on its own condition variable.

use crate::cancel::Cancel;
use crate::clock;
use crate::handlers::{Handler, Handlers};
use crate::pool::{self, Lane, Pool};
use crate::transport::{PeerCredentials, Socket};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tandem_core::{Config, Connection, ConnectionError, Event, Identity, Instant};
use tandem_core::{RequestKind, Role, Status, Transport};

/// Largest read and write buffer on a byte-stream socket.
const STREAM_READ: usize = 64 * 1024;
/// The read and write buffers of a byte-stream connection start at this size and grow to
/// [`STREAM_READ`] only while traffic needs it (a read or a write fills them); an idle
/// connection shrinks them back. So a connection in the handshake, idle or suspended holds a
/// few KiB of buffers, not 128 KiB.
pub(crate) const IO_MIN: usize = 4096;
/// Response and stream-item buffers kept for reuse ([`Inner::spare`]): at most this many
/// bytes of capacity in all ...
const SPARE_BYTES: usize = 256 * 1024;
/// ... and at most this capacity each; larger ones go back to the allocator. The inline
/// handlers' request and response buffers are bounded the same way.
pub(crate) const SPARE_CAPACITY: usize = 64 * 1024;

/// An outbound stream's or an inbound stream's receive side, as the handles see it.
#[derive(Debug, Default)]
pub(crate) struct StreamSlot {
    /// Items received and not yet taken.
    pub(crate) items: VecDeque<Vec<u8>>,
    /// The peer finished its direction with this status.
    pub(crate) fin: Option<Status>,
    /// The stream was reset (by the peer, a deadline, or connection loss).
    pub(crate) reset: Option<Status>,
    /// This side finished or reset its direction.
    pub(crate) sent_end: bool,
    /// Nobody will take items any more: return their credit at once.
    pub(crate) discard: bool,
    /// Handles alive (opener: sender + receiver).
    pub(crate) handles: u8,
    /// Responder: the handler's cancellation flag.
    pub(crate) cancel: Option<Arc<Cancel>>,
}

/// One of our calls or reliable notifications, until its caller takes the outcome.
#[derive(Debug, Default)]
pub(crate) struct CallSlot {
    /// The outcome, once it arrived.
    pub(crate) result: Option<(Status, Vec<u8>)>,
    /// The caller parked waiting for it: woken alone, not with every other waiter.
    pub(crate) waiter: Option<std::thread::Thread>,
}

impl CallSlot {
    fn resolve(&mut self, status: Status, payload: Vec<u8>) {
        self.result = Some((status, payload));
        if let Some(t) = self.waiter.take() {
            t.unpark();
        }
    }
}

/// Everything behind the connection mutex.
pub(crate) struct Inner {
    pub(crate) conn: Connection<'static>,
    /// Our calls and reliable notifications: `None` until their outcome arrives.
    pub(crate) calls: HashMap<u64, CallSlot>,
    /// Streams with live handles or a running handler.
    pub(crate) streams: HashMap<u64, StreamSlot>,
    /// The peer's calls and notifications being handled: their cancellation flags.
    pub(crate) inbound: HashMap<u64, Arc<Cancel>>,
    pub(crate) connected: bool,
    /// The peer's HELLO was processed and the on-connect hook has not run yet.
    pub(crate) just_connected: bool,
    pub(crate) closed: Option<ConnectionError>,
    /// The socket the connection currently speaks on: `None` while a resumable session waits
    /// for a new transport (SPEC.md §13), or once it was moved into a resumed session.
    pub(crate) socket: Option<Arc<Socket>>,
    /// Bumped whenever `socket` changes, so that the driver resets its per-socket state.
    pub(crate) sock_gen: u64,
    /// Acceptor: this fresh connection's transport was moved into that resumed session; input
    /// still in hand goes there.
    pub(crate) moved_to: Option<Arc<Shared>>,
    /// The driver has exited: the socket is shut.
    pub(crate) finished: bool,
    pub(crate) going_away: bool,
    /// When the driver will next wake up by itself.
    pub(crate) sleep_until: Instant,
    /// Requests refused while the transmit queue was full, to answer later.
    pub(crate) refusals: Vec<(u64, RequestKind, Status)>,
    /// Threads waiting for transmit-queue room.
    pub(crate) tx_waiters: usize,
    /// Threads waiting on the condition variable (events wake them only if there are any).
    pub(crate) cond_waiters: usize,
    /// Emptied response buffers given back by callers ([`PendingCall::wait_into`](crate::PendingCall::wait_into)),
    /// reused for the next responses so that steady-state calls do not allocate.
    pub(crate) spare: Vec<Vec<u8>>,
    /// Sum of the capacities in `spare`.
    spare_bytes: usize,
    /// Inline handlers: the request being served and the response being built (reused).
    pub(crate) inline_req: Vec<u8>,
    pub(crate) inline_resp: Vec<u8>,
}

impl Inner {
    /// Keeps a buffer for reuse, emptied (bounded in number and size).
    pub(crate) fn give_back(&mut self, mut v: Vec<u8>) {
        v.clear();
        let c = v.capacity();
        if c > 0 && c <= SPARE_CAPACITY && self.spare_bytes + c <= SPARE_BYTES {
            self.spare_bytes += c;
            self.spare.push(v);
        }
    }

    /// A buffer holding `payload`: a spare one if any (then no allocation).
    pub(crate) fn take_spare(spare: &mut Vec<Vec<u8>>, spare_bytes: &mut usize, payload: &[u8]) -> Vec<u8> {
        let mut v = spare.pop().unwrap_or_default();
        *spare_bytes -= v.capacity();
        v.extend_from_slice(payload);
        v
    }

    /// Returns idle memory: the core's buffers and tables and the runtime's spare buffers.
    pub(crate) fn release_memory(&mut self) {
        self.conn.release_memory();
        self.spare = Vec::new();
        self.spare_bytes = 0;
        self.inline_req = Vec::new();
        self.inline_resp = Vec::new();
    }
}

struct Writer {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// The socket the bytes in `buf` were produced for.
    sock: Option<Arc<Socket>>,
}

/// Finds the session that owns a session token.
pub(crate) type Lookup = Box<dyn Fn(&[u8]) -> Option<Arc<Shared>> + Send + Sync>;

/// Server-side hooks of a resumable connection (SPEC.md §13).
pub(crate) struct SessionHooks {
    /// Finds the session that owns a token a resuming dialer presented.
    pub(crate) lookup: Lookup,
    /// The session became suspended (`true`) or left suspension (`false`). Returns false when
    /// the session may not stay suspended (too many suspended sessions): it is then closed.
    pub(crate) suspended: Box<dyn Fn(bool) -> bool + Send + Sync>,
}

/// Client-side: how the driver reconnects a suspended session by itself.
#[derive(Clone, Debug)]
pub(crate) struct Redial {
    pub(crate) addr: tandem_core::addr::Address,
    pub(crate) connect_timeout: Duration,
    pub(crate) initial: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max: Duration,
    pub(crate) jitter: f64,
}

/// One connection, shared by its driver thread, its [`Peer`](crate::Peer) handles and the
/// handlers working on its requests.
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) cond: Condvar,
    writer: Mutex<Writer>,
    /// The driver could not write everything: it waits for writability.
    want_out: AtomicBool,
    /// A write failed: the transport is gone.
    broken: AtomicBool,
    /// The connection has closed (`Inner::closed` is set): the driver is writing its last
    /// bytes and must hear when another thread wrote them.
    closing: AtomicBool,
    /// Counts batches of events dispatched ([`Shared::pump`]): a caller about to park spins
    /// briefly on it instead (see `PendingCall::wait`).
    pub(crate) pumped: AtomicU64,
    /// Whether the transport is a packet socket (fixed for the connection's life).
    pub(crate) packet: bool,
    /// Whether the transport is UDP (datagram mode, SPEC.md §14).
    pub(crate) datagram: bool,
    /// Acceptor: the session hooks (set once by the server right after creation).
    pub(crate) session: OnceLock<SessionHooks>,
    /// Dialer: automatic reconnection of a suspended session (`None`: resumption off).
    pub(crate) redial: Option<Redial>,
    waker_tx: UnixStream,
    pub(crate) waker_rx: UnixStream,
    pub(crate) handlers: Arc<Handlers>,
    /// This connection's queue in the handler pool.
    pub(crate) lane: Lane,
    pub(crate) creds: Option<PeerCredentials>,
    pub(crate) peer_name: OnceLock<String>,
    /// Connection number, for logs.
    pub(crate) id: u64,
    pub(crate) read_size: usize,
    me: Weak<Shared>,
}

/// Locks ignoring poisoning: a panicking handler must not take the connection down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Wraps a freshly connected socket in a core connection.
    #[allow(clippy::too_many_arguments)] // crate-internal constructor, called from two places
    pub(crate) fn new(
        socket: Socket,
        role: Role,
        mut config: Config,
        name: &str,
        max_datagram: u32,
        session_token: &[u8],
        redial: Option<Redial>,
        handlers: Arc<Handlers>,
        pool: &Pool,
    ) -> Result<Arc<Shared>, crate::Error> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        config.transport = if socket.is_datagram() {
            Transport::Datagram { max_datagram }
        } else if socket.is_packet() {
            Transport::Packet { max_datagram }
        } else {
            Transport::Stream
        };
        // On a packet socket, reading one byte more than the largest legal datagram detects an
        // oversized one (the core refuses it with LIMIT_EXCEEDED) instead of truncating it.
        let (io_buf, read_size) = if socket.is_packet() {
            (max_datagram as usize, max_datagram as usize + 1)
        } else {
            (IO_MIN, STREAM_READ)
        };
        let me = Identity { name: name.as_bytes(), session: session_token, ..Identity::default() };
        let conn = Connection::new(role, config, me, clock::now())?;
        let (waker_tx, waker_rx) = UnixStream::pair()
            .and_then(|(a, b)| {
                a.set_nonblocking(true)?;
                b.set_nonblocking(true)?;
                Ok((a, b))
            })
            .map_err(|source| crate::Error::Io {
                context: "cannot create the driver's waker".into(),
                source,
            })?;
        let creds = socket.peer_credentials();
        let packet = socket.is_packet();
        let datagram = socket.is_datagram();
        Ok(Arc::new_cyclic(|me| Shared {
            inner: Mutex::new(Inner {
                conn,
                calls: HashMap::new(),
                streams: HashMap::new(),
                inbound: HashMap::new(),
                connected: false,
                just_connected: false,
                closed: None,
                socket: Some(Arc::new(socket)),
                sock_gen: 0,
                moved_to: None,
                finished: false,
                going_away: false,
                sleep_until: Instant::ZERO,
                refusals: Vec::new(),
                tx_waiters: 0,
                cond_waiters: 0,
                spare: Vec::new(),
                spare_bytes: 0,
                inline_req: Vec::new(),
                inline_resp: Vec::new(),
            }),
            cond: Condvar::new(),
            writer: Mutex::new(Writer { buf: vec![0; io_buf], pos: 0, len: 0, sock: None }),
            want_out: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            pumped: AtomicU64::new(0),
            packet,
            datagram,
            session: OnceLock::new(),
            redial,
            waker_tx,
            waker_rx,
            handlers,
            lane: pool.lane(),
            creds,
            peer_name: OnceLock::new(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            read_size,
            me: me.clone(),
        }))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// A strong reference to this connection (it is alive: `self` is borrowed from one).
    pub(crate) fn arc(&self) -> Option<Arc<Shared>> {
        self.me.upgrade()
    }

    /// The peer's name from its HELLO (empty before the handshake).
    pub(crate) fn name(&self) -> &str {
        self.peer_name.get().map_or("", String::as_str)
    }

    /// Wakes the driver out of `poll(2)`.
    pub(crate) fn wake_driver(&self) {
        let _ = (&self.waker_tx).write(&[1]);
    }

    /// Drains the waker.
    pub(crate) fn drain_waker(&self) {
        let mut b = [0u8; 64];
        while matches!((&self.waker_rx).read(&mut b), Ok(n) if n > 0) {}
    }

    /// Whether a write failed since the last call.
    pub(crate) fn take_broken(&self) -> bool {
        self.broken.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn wants_out(&self) -> bool {
        self.want_out.load(Ordering::Acquire)
    }

    /// After an action that may have set an earlier deadline: wake the driver if it sleeps
    /// past it.
    pub(crate) fn check_timer(&self, g: &Inner) {
        if g.conn.poll_timeout().is_some_and(|t| t < g.sleep_until) {
            self.wake_driver();
        }
    }

    // ------------------------------------------------------------------ output

    /// Writes what the socket takes now; if it is full, the driver writes the rest when the
    /// socket becomes writable (it is woken for that). Never blocks: a peer that does not read
    /// must not hold the thread of a caller or a handler.
    pub(crate) fn flush(&self) {
        // Closing: the driver waits for the last bytes (CLOSE) to leave; tell it when they did.
        if !self.flush_out() || self.closing.load(Ordering::Acquire) {
            self.wake_driver();
        }
    }

    /// Writes everything queued up to the first `WouldBlock`; false if bytes are left for the
    /// driver to write once the socket is writable (it then waits for `POLLOUT`).
    ///
    /// If another thread is writing, returns at once: that thread re-checks the queue after it
    /// lets go of the writer, so nothing queued before this call is left behind.
    pub(crate) fn flush_out(&self) -> bool {
        loop {
            let Ok(mut w) = self.writer.try_lock() else { return true };
            let complete = self.write_out(&mut w);
            drop(w);
            if !complete {
                return false;
            }
            if self.lock().conn.pending_transmit() == 0 {
                return true;
            }
        }
    }

    /// Whether nothing produced by the core waits in the writer (the last bytes reached the
    /// socket); false while another thread is writing.
    pub(crate) fn writer_idle(&self) -> bool {
        self.writer.try_lock().is_ok_and(|w| w.pos >= w.len)
    }

    fn write_out(&self, w: &mut Writer) -> bool {
        let packet = self.packet;
        loop {
            while w.pos < w.len {
                let Some(sock) = w.sock.as_ref() else {
                    // Produced while no transport was attached: nothing to write it to.
                    w.pos = w.len;
                    break;
                };
                if self.broken.load(Ordering::Acquire) {
                    w.pos = w.len;
                    break;
                }
                match sock.write(&w.buf[w.pos..w.len]) {
                    Ok(0) => self.write_failed(sock, io::ErrorKind::WriteZero.into()),
                    Ok(n) => w.pos = if packet { w.len } else { w.pos + n },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.want_out.store(true, Ordering::Release);
                        return false;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if self.datagram => {
                        // A lost datagram (ICMP unreachable, no buffer): the core retransmits.
                        tracing::trace!(conn = self.id, "datagram not sent: {e}");
                        w.pos = w.len;
                    }
                    Err(e) => {
                        let sock = Arc::clone(sock);
                        self.write_failed(&sock, e);
                        if !self.lock().socket.as_ref().is_some_and(|s| Arc::ptr_eq(s, &sock)) {
                            // The transport was replaced: these bytes belonged to the old one.
                            w.pos = w.len;
                        }
                    }
                }
            }
            let n = {
                let mut g = self.lock();
                if !self.packet && w.buf.len() < STREAM_READ && g.conn.pending_transmit() > w.buf.len() {
                    // More is queued than one write takes: write in larger pieces.
                    w.buf.resize(STREAM_READ, 0);
                }
                let same = match (&w.sock, &g.socket) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    w.sock = g.socket.clone();
                }
                let n = g.conn.poll_transmit(clock::now(), &mut w.buf);
                if g.tx_waiters > 0 {
                    self.cond.notify_all();
                }
                n
            };
            if n == 0 {
                self.want_out.store(false, Ordering::Release);
                return true;
            }
            w.pos = 0;
            w.len = n;
        }
    }

    fn write_failed(&self, sock: &Arc<Socket>, e: io::Error) {
        // Only a failure of the current transport counts (an old one may fail after a resume).
        let current = self.lock().socket.as_ref().is_some_and(|s| Arc::ptr_eq(s, sock));
        if !current {
            return;
        }
        tracing::debug!(conn = self.id, peer = self.name(), "write failed: {e}");
        self.broken.store(true, Ordering::Release);
        self.wake_driver();
    }

    /// An idle connection gives back the writer's grown buffer (byte streams).
    pub(crate) fn shrink_writer(&self) {
        if self.packet {
            return;
        }
        if let Ok(mut w) = self.writer.try_lock() {
            if w.pos >= w.len && w.buf.len() > IO_MIN {
                w.buf = vec![0; IO_MIN];
                (w.pos, w.len) = (0, 0);
            }
        }
    }

    /// The driver is done: the writer lets go of its socket (so that the descriptor closes).
    pub(crate) fn release_socket(&self) {
        let mut w = lock(&self.writer);
        w.sock = None;
        w.pos = w.len;
    }

    /// A new socket became current: forget that the old one broke.
    pub(crate) fn clear_broken(&self) {
        self.broken.store(false, Ordering::Release);
    }

    /// The driver died (a bug): resolve everything that waits on this connection.
    pub(crate) fn abandon(&self) {
        let mut g = self.lock();
        for slot in g.calls.values_mut() {
            if slot.result.is_none() {
                slot.resolve(Status::INTERNAL, Vec::new());
            }
        }
        for s in g.streams.values_mut() {
            s.reset.get_or_insert(Status::INTERNAL);
            if let Some(c) = &s.cancel {
                c.set();
            }
        }
        for c in g.inbound.values() {
            c.set();
        }
        g.closed.get_or_insert(ConnectionError::LocallyClosed { status: Status::INTERNAL });
        self.cond.notify_all();
    }

    /// The transport is gone: drop whatever is queued.
    pub(crate) fn discard_transmit(&self) {
        self.broken.store(true, Ordering::Release);
        self.flush_out();
    }

    /// Waits for room in the transmit queue after `ApiError::TxFull`.
    pub(crate) fn wait_tx<'a>(&'a self, mut g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        g.tx_waiters += 1;
        tracing::trace!(conn = self.id, "transmit queue full; waiting");
        drop(g);
        self.flush();
        let mut g = self.lock();
        if g.conn.pending_transmit() > 0 && g.closed.is_none() {
            g = self.wait_timeout(g, Duration::from_millis(5));
        }
        g.tx_waiters -= 1;
        g
    }

    /// Waits on the condition variable (any event, or transmit progress). A handler waiting
    /// here is parked: its worker runs other handlers meanwhile (see `pool`).
    pub(crate) fn wait<'a>(&'a self, mut g: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        g.cond_waiters += 1;
        let parked = pool::parked();
        let mut g = self.cond.wait(g).unwrap_or_else(|e| e.into_inner());
        drop(parked);
        g.cond_waiters -= 1;
        g
    }

    /// Waits on the condition variable for at most `d`.
    pub(crate) fn wait_timeout<'a>(
        &'a self,
        mut g: MutexGuard<'a, Inner>,
        d: Duration,
    ) -> MutexGuard<'a, Inner> {
        g.cond_waiters += 1;
        let parked = pool::parked();
        let mut g = self.cond.wait_timeout(g, d).unwrap_or_else(|e| e.into_inner()).0;
        drop(parked);
        g.cond_waiters -= 1;
        g
    }

    // ------------------------------------------------------------------ input

    /// Feeds bytes read from the socket (one datagram on a packet socket), dispatching events.
    ///
    /// Timers that are due are handled first: input read now arrived after them, so a call
    /// whose deadline passed fails with DEADLINE_EXCEEDED even if the peer's reaction to that
    /// deadline is already in the socket.
    pub(crate) fn feed(&self, g: &mut Inner, now: Instant, mut data: &[u8]) {
        if g.conn.poll_timeout().is_some_and(|t| t <= now) {
            g.conn.handle_timeout(now);
            self.pump(g, now);
        }
        let mut stuck = 0;
        while !data.is_empty() {
            let n = g.conn.handle_input(now, data);
            data = &data[n..];
            self.pump(g, now);
            if let Some(session) = g.moved_to.clone() {
                // The transport now belongs to a resumed session: so does the rest of the input.
                if !data.is_empty() {
                    let mut sg = session.lock();
                    session.feed(&mut sg, now, data);
                }
                session.wake_driver();
                return;
            }
            if n > 0 {
                stuck = 0;
                continue;
            }
            stuck += 1;
            if stuck > 2 {
                // Draining events always frees the receive buffer; if not, do not spin.
                tracing::error!(conn = self.id, "receive buffer does not drain; closing");
                g.conn.close(now, Status::INTERNAL, b"receive buffer does not drain");
                self.pump(g, now);
                return;
            }
        }
        if g.cond_waiters > 0 {
            // Input can free an exchange slot without an event (the peer's terminal for a
            // stream we already reset): an opener waiting for a slot must look again now.
            self.cond.notify_all();
        }
    }

    /// Drains the core's events and acts on each: wakes callers, starts handlers.
    pub(crate) fn pump(&self, g: &mut Inner, now: Instant) {
        let mut any = false;
        while let Some(ev) = g.conn.poll_event(now) {
            any = true;
            match ev {
                // This runtime does not set `Config::authenticate` (yet): never raised.
                Event::AuthRequested { .. } => {}
                Event::Connected if g.connected => {
                    tracing::warn!(
                        conn = self.id,
                        peer = self.name(),
                        "the server declined to resume the session (it expired or the server restarted): \
                         calls that were pending failed with UNAVAILABLE; continuing with a new session"
                    );
                }
                Event::Connected => {
                    let name = g.conn.peer().map(|p| String::from_utf8_lossy(p.name).into_owned());
                    let _ = self.peer_name.set(name.unwrap_or_default());
                    tracing::info!(conn = self.id, peer = self.name(), "connected");
                    g.connected = true;
                    g.just_connected = true;
                }
                Event::Request { id, kind, method, deadline, payload } => {
                    if kind == RequestKind::Call {
                        if let Ok(Handler::Inline(_)) = self.handlers.lookup(method) {
                            g.inline_req.clear();
                            g.inline_req.extend_from_slice(payload);
                            self.on_inline(g, id, method, deadline);
                            continue;
                        }
                    }
                    let payload = payload.to_vec();
                    self.on_request(g, id, kind, method, deadline, payload);
                }
                Event::Signal { method, payload } => {
                    let payload = payload.to_vec();
                    self.on_signal(method, payload);
                }
                Event::Response { id, status, payload } => {
                    tracing::trace!(conn = self.id, id, %status, "response");
                    if g.calls.contains_key(&id) {
                        // A spare buffer if any (no allocation); spares are kept empty.
                        let payload = Inner::take_spare(&mut g.spare, &mut g.spare_bytes, payload);
                        if let Some(slot) = g.calls.get_mut(&id) {
                            slot.resolve(status, payload);
                        }
                    }
                }
                Event::Failed { id, status } => {
                    tracing::debug!(conn = self.id, id, %status, "call failed");
                    if let Some(slot) = g.calls.get_mut(&id) {
                        slot.resolve(status, Vec::new());
                    }
                }
                Event::Cancelled { id, status } => {
                    tracing::debug!(conn = self.id, id, %status, "inbound call cancelled");
                    if let Some(c) = g.inbound.get(&id) {
                        c.set();
                    }
                }
                Event::StreamData { id, payload } => {
                    let len = payload.len() as u32;
                    let payload = match g.streams.get_mut(&id) {
                        Some(s) if !s.discard => {
                            s.items.push_back(Inner::take_spare(&mut g.spare, &mut g.spare_bytes, payload));
                            None
                        }
                        _ => Some(len),
                    };
                    if let Some(len) = payload {
                        let _ = g.conn.stream_consumed(id, 1, len);
                    }
                }
                Event::StreamFin { id, status } => {
                    if let Some(s) = g.streams.get_mut(&id) {
                        s.fin = Some(status);
                    }
                }
                Event::StreamReset { id, status } => self.on_stream_reset(g, id, status),
                Event::StreamWritable { .. } => {}
                Event::ResumeRequested { token } => {
                    let token = token.to_vec();
                    self.on_resume_request(g, now, &token);
                }
                Event::GoAway { bound, status } => {
                    tracing::info!(conn = self.id, peer = self.name(), bound, %status, "peer is going away");
                    g.going_away = true;
                }
                Event::Closed(e) => {
                    if e.is_graceful() {
                        tracing::info!(conn = self.id, peer = self.name(), "closed: {e}");
                    } else {
                        tracing::warn!(conn = self.id, peer = self.name(), "closed: {e}");
                    }
                    for c in g.inbound.values() {
                        c.set();
                    }
                    g.closed = Some(e);
                    self.closing.store(true, Ordering::Release);
                }
            }
        }
        if any {
            self.pumped.fetch_add(1, Ordering::Release);
            if g.cond_waiters > 0 {
                self.cond.notify_all();
            }
        }
    }

    /// Acceptor: the dialer on this fresh connection asks to resume a session. Moves this
    /// transport into the session if we know it, otherwise starts a new session.
    fn on_resume_request(&self, g: &mut Inner, now: Instant, token: &[u8]) {
        let session = self.session.get().and_then(|h| (h.lookup)(token));
        if let Some(s) = session.filter(|s| !std::ptr::eq(&**s, self)) {
            let mut sg = s.lock();
            match sg.conn.resume_from(now, &mut g.conn) {
                Ok(()) => {
                    let old = sg.socket.take();
                    sg.socket = g.socket.take();
                    sg.sock_gen += 1;
                    s.clear_broken();
                    drop(sg);
                    if let Some(old) = old {
                        old.shutdown();
                    }
                    g.sock_gen += 1;
                    tracing::info!(
                        conn = s.id,
                        via = self.id,
                        peer = s.name(),
                        "session resumed on a new connection"
                    );
                    s.wake_driver();
                    g.moved_to = Some(s);
                    return;
                }
                Err(e) => {
                    drop(sg);
                    tracing::info!(conn = self.id, "cannot resume the session ({e}); starting a new one");
                }
            }
        } else {
            tracing::info!(conn = self.id, "unknown or expired session token; starting a new session");
        }
        if g.conn.state() != tandem_core::State::Closed {
            let _ = g.conn.decline_resume(now);
        }
    }

    fn on_stream_reset(&self, g: &mut Inner, id: u64, status: Status) {
        tracing::debug!(conn = self.id, id, %status, "stream reset");
        let Some(s) = g.streams.get_mut(&id) else {
            // No handle or handler left: a stream the peer opened still needs releasing.
            if id % 2 != our_parity(g) {
                let _ = g.conn.stream_reset(id, Status::CANCELLED);
            }
            return;
        };
        s.reset = Some(status);
        if let Some(c) = &s.cancel {
            c.set();
        }
    }

    /// Dispatches events produced by a local action (e.g. a closed connection).
    pub(crate) fn pump_now(&self, g: &mut Inner) {
        self.pump(g, clock::now());
    }
}

/// The parity of the ids this side opens.
fn our_parity(g: &Inner) -> u64 {
    match g.conn.role() {
        Role::Dialer => 0,
        Role::Acceptor => 1,
    }
}
