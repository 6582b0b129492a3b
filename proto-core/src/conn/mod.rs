//! The connection state machine.
//!
//! [`Connection`] is one end of one transport connection. Its methods fall in four groups, and a
//! driver uses them in one loop (see the crate docs for a complete example):
//!
//! 1. **Inputs** — [`recv_buffer`](Connection::recv_buffer) + [`recv_commit`](Connection::recv_commit)
//!    (or [`handle_input`](Connection::handle_input)) for bytes from the transport,
//!    [`handle_eof`](Connection::handle_eof) when it ends, [`handle_timeout`](Connection::handle_timeout)
//!    when the instant from `poll_timeout` is reached.
//! 2. **Actions** — [`call`](Connection::call), [`notify`](Connection::notify),
//!    [`signal`](Connection::signal), [`open_stream`](Connection::open_stream),
//!    [`respond`](Connection::respond), [`cancel`](Connection::cancel), the `stream_*` methods,
//!    [`ping`](Connection::ping), [`go_away`](Connection::go_away), [`close`](Connection::close).
//!    They queue frames and never block; back-pressure comes back as an [`ApiError`].
//! 3. **Outputs**, drained in this order after every input or action:
//!    [`poll_event`](Connection::poll_event) until `None`,
//!    [`poll_transmit`](Connection::poll_transmit) until it returns 0,
//!    then [`poll_timeout`](Connection::poll_timeout) to learn when to call back.
//! 4. **Getters** — [`state`](Connection::state), [`peer`](Connection::peer),
//!    [`stats`](Connection::stats), [`is_finished`](Connection::is_finished), …
//!
//! Time is the caller's: every input that depends on it takes `now`, which must not go
//! backwards. The connection never reads a clock, blocks, allocates beyond its configured
//! bounds, or panics on any input.

pub(crate) mod datagram;
mod recv;
#[cfg(feature = "alloc")]
mod resume;
mod send;
#[cfg(feature = "alloc")]
pub(crate) mod session;
mod timers;

use crate::config::{Config, ConfigError, PeerLimits, Role, Transport, MIN_FRAME_SIZE};
use crate::error::ConnectionError;
use crate::event::{Event, MethodId, RequestKind};
use crate::frame::{self, MAX_AUTH_LEN, MAX_NAME_LEN, MAX_SESSION_LEN};
use crate::stats::Stats;
use crate::status::Status;
use crate::storage::{ByteQueue, Store, Table};
use crate::time::Instant;

/// The application's identity, announced in HELLO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    /// This peer's name (≤ 255 bytes); a server tracks its peers by it.
    pub name: &'a [u8],
    /// Opaque authentication blob for the peer's application (≤ 1024 bytes).
    pub auth: &'a [u8],
    /// Dialer: session token to resume (empty for a new session). Acceptor: the token of this
    /// session (≤ 64 bytes).
    pub session: &'a [u8],
}

/// Memory a connection holds for exactly-once delivery
/// ([`Connection::session_memory`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionMemory {
    /// Bytes held in all: reply cache, retained requests, unconfirmed stream items, spare
    /// buffers.
    pub held: usize,
    /// Of those, bytes [`Connection::shed_session_memory`] can free (cached answers and spare
    /// buffers).
    pub sheddable: usize,
}

/// Fixed-capacity inline byte string.
#[derive(Clone)]
struct Inline<const N: usize> {
    len: usize,
    buf: [u8; N],
}

impl<const N: usize> Inline<N> {
    const fn new() -> Self {
        Inline { len: 0, buf: [0; N] }
    }
    /// Stores `b`, truncating to `N` bytes.
    fn set(&mut self, b: &[u8]) {
        let n = b.len().min(N);
        self.buf[..n].copy_from_slice(&b[..n]);
        self.len = n;
    }
    fn get(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting for the peer's HELLO.
    Handshake,
    /// Connected: both sides may open exchanges.
    Open,
    /// GOAWAY was sent or received: existing exchanges finish, no new ones open.
    Draining,
    /// A resumable session lost its transport (SPEC.md §13.2): exchanges stay open for
    /// `Config::session_grace`, new calls are queued, and the dialer reconnects with
    /// [`Connection::reconnect`]; the acceptor waits for [`Connection::resume_from`].
    Suspended,
    /// Closed; [`Event::Closed`] says why.
    Closed,
}

/// What the peer announced in its HELLO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer<'a> {
    /// Negotiated protocol version.
    pub version: u32,
    /// The peer's name.
    pub name: &'a [u8],
    /// The peer's authentication blob.
    pub auth: &'a [u8],
    /// The session token (dialer: the acceptor's token for this session; acceptor: the token the
    /// dialer asked to resume, empty for a new session).
    pub session: &'a [u8],
    /// Whether the dialer asked to resume / the acceptor confirmed resumption.
    pub resume: bool,
    /// The limits it announced.
    pub limits: PeerLimits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Call,
    Notify,
    Stream,
}

/// An event owed to the application for one exchange, delivered by `poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    Failed(Status),
    Cancelled(Status),
    Reset(Status),
    Writable,
}

// Resumption state is read only with `alloc`.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
#[derive(Clone, Copy, Debug, Default)]
struct StreamState {
    /// Credit we have to send.
    send_msgs: u32,
    send_bytes: u32,
    /// Credit the peer still has toward us.
    recv_msgs: u32,
    recv_bytes: u32,
    /// Delivered to the application, not yet consumed.
    unconsumed_msgs: u32,
    unconsumed_bytes: u32,
    /// Consumed, not yet granted back.
    grant_msgs: u32,
    grant_bytes: u32,
    /// We sent FIN or RESET (or FIN on OPEN).
    sent_terminal: bool,
    /// We received FIN or RESET (or FIN on OPEN).
    recv_terminal: bool,
    /// The peer reset the stream: we may send nothing more.
    peer_reset: bool,
    /// We reset the stream: discard what still arrives.
    we_reset: bool,
    /// An item was refused for lack of credit: report when credit returns.
    blocked: bool,
    /// The application already has a terminal event for this stream (or reset it itself).
    reported: bool,
    // ---- resumption (SPEC.md §13.7)
    /// Items sent in our direction (numbered from 0).
    sent_items: u64,
    /// Items of ours known received (credit came back for them, or the peer's STREAM_RESUME).
    confirmed: u64,
    /// Items of the peer's direction fully received.
    recv_items: u64,
    /// Our terminal: (reset, status), its number, and whether it still has to be sent.
    term: Option<(bool, Status)>,
    term_no: u64,
    term_pending: bool,
    /// A terminal of our direction went out on some transport (the peer may count it).
    term_sent: bool,
    /// Our direction ended with the FIN flag of STREAM_OPEN (never resent on its own).
    open_fin: bool,
    /// Opener: STREAM_OPEN went out on a transport (so the stream is carried over if it is lost).
    on_wire: bool,
    /// After a resumption: no items or terminal may be sent before the peer's STREAM_RESUME.
    await_resume: bool,
    /// Carried over by the last resumption (SPEC.md §13.7): we owe the peer a STREAM_RESUME.
    carried: bool,
    /// STREAM_RESUME sent / received on the current transport.
    resume_sent: bool,
    resume_recv: bool,
    /// Items sent before the resumption (only those are ever retransmitted).
    items_at_resume: u64,
    /// After the peer's STREAM_RESUME(k): retransmitting items from `resend_next`; `resume_k`
    /// is the k received.
    resending: bool,
    resend_next: u64,
    resume_k: u64,
    /// Delivered before a resumption: consuming these returns no credit.
    no_grant_msgs: u32,
    no_grant_bytes: u32,
}

/// One open exchange. Public only so that no-alloc callers can size its storage; its fields are
/// private.
// Resumption state is read only with `alloc`.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
#[derive(Clone, Debug)]
pub struct Slot {
    id: u64,
    kind: Kind,
    outbound: bool,
    /// Local deadline; `Instant::MAX` when none or no longer relevant.
    deadline: Instant,
    /// The deadline as opened (reported with an inbound request even if it already passed).
    opened_deadline: Instant,
    pending: Pending,
    /// Remove the slot once `pending` has been delivered.
    free_after_event: bool,
    /// Outbound call: the application already has its outcome (cancelled or deadline).
    resolved: bool,
    /// Inbound call: cancelled or expired; the response is replaced by this status.
    cancelled: Option<Status>,
    /// Inbound: the request event has not been delivered yet (message still arriving).
    assembling: bool,
    /// Inbound, in a session: digest of the request, to recognise its retransmissions.
    digest: [u8; 16],
    /// Outbound: `deadline` is the bound on waiting while suspended (SPEC.md §13.2,
    /// `suspended_call_timeout`), so its expiry resolves UNAVAILABLE; undone at resumption.
    suspend_wait: bool,
    s: StreamState,
}

impl Slot {
    fn new(id: u64, kind: Kind, outbound: bool, deadline: Instant) -> Self {
        Slot {
            id,
            kind,
            outbound,
            deadline,
            opened_deadline: deadline,
            pending: Pending::None,
            free_after_event: false,
            resolved: false,
            cancelled: None,
            assembling: false,
            digest: [0; 16],
            suspend_wait: false,
            s: StreamState::default(),
        }
    }
}

/// Storage for a connection without an allocator: every buffer and table the connection uses,
/// handed in by the caller (typically `static` arrays on firmware).
///
/// Sizes bound what the connection can do: `rx` must hold one frame
/// (`config.max_frame_size + 9` bytes), `reassembly` bounds the largest message received
/// (messages larger than it or than `max_message_size` are refused), `tx` bounds what can be
/// queued for sending, and `slots` the number of exchanges open at once in both directions.
pub struct Storage<'a> {
    /// Receive buffer.
    pub rx: &'a mut [u8],
    /// Transmit queue.
    pub tx: &'a mut [u8],
    /// Reassembly buffer for messages that span several frames.
    pub reassembly: &'a mut [u8],
    /// Exchange table.
    pub slots: &'a mut [Option<Slot>],
}

/// Partial message being reassembled from CONTINUATION frames.
// Resumption state is read only with `alloc`.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
struct Partial {
    ty: u8,
    id: u64,
    total: usize,
    got: usize,
    /// Whether the completed message is reported (false: swallowed, e.g. for a closed exchange).
    deliver: bool,
    flags: u8,
    method: MethodId,
    status: Status,
    /// A retransmitted request (resumed session): answered when complete, never delivered.
    retx: bool,
}

/// Where an event's payload lives.
#[derive(Clone, Copy, Debug)]
enum Src {
    Empty,
    Rx(usize, usize),
    Reasm,
}

/// An event before its payload is borrowed.
// Resumption state is read only with `alloc`.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
enum Raw {
    Connected,
    Request { id: u64, kind: RequestKind, method: MethodId, deadline: Option<Instant>, src: Src },
    Signal { method: MethodId, src: Src },
    Response { id: u64, status: Status, src: Src },
    Failed { id: u64, status: Status },
    Cancelled { id: u64, status: Status },
    StreamData { id: u64, src: Src },
    StreamFin { id: u64, status: Status },
    StreamReset { id: u64, status: Status },
    StreamWritable { id: u64 },
    GoAway { bound: u64, status: Status },
    ResumeRequested,
    Closed(ConnectionError),
}

/// One end of a tandem connection: a sans-IO state machine.
///
/// Inputs (`recv_buffer` + `recv_commit` or `handle_input`, `handle_eof`, `handle_timeout`),
/// actions (`call`, `notify`, `signal`, `open_stream`, `respond`, `cancel`, `stream_*`, `ping`,
/// `go_away`, `close`), outputs drained in order after every input or action (`poll_event` until
/// `None`, `poll_transmit` until 0, then `poll_timeout`), and getters. See the crate docs for a
/// complete driver loop.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
pub struct Connection<'a> {
    role: Role,
    config: Config,
    state: State,
    me: (Inline<MAX_NAME_LEN>, Inline<MAX_AUTH_LEN>, Inline<MAX_SESSION_LEN>),
    peer_name: Inline<MAX_NAME_LEN>,
    peer_auth: Inline<MAX_AUTH_LEN>,
    peer_session: Inline<MAX_SESSION_LEN>,
    peer_resume: bool,
    version: u32,
    peer: PeerLimits,

    rx: ByteQueue<'a>,
    /// Bytes of `rx` holding the frame behind the last event; released at the next call.
    rx_release: usize,
    eof: bool,
    /// A malformed datagram's error, raised once the frames before it are processed.
    rx_error: Option<ConnectionError>,
    reasm: ByteQueue<'a>,
    reasm_max: usize,
    partial: Option<Partial>,
    reasm_delivered: bool,
    tx: ByteQueue<'a>,
    /// Bytes of the frame at the head of `tx` still to be handed to the transport when the
    /// transport has taken only part of it (0: the head is at a frame boundary). A queue given
    /// up for a CLOSE keeps them, so that the CLOSE does not land inside a half-sent frame.
    tx_head_left: usize,
    slots: Table<'a, Slot>,
    pending_slots: usize,

    next_id: u64,
    /// Highest id the peer has opened, if any.
    peer_high: Option<u64>,
    out_calls: u32,
    in_calls: u32,
    out_streams: u32,
    in_streams: u32,
    /// Connection-level stream byte credit: ours to send, the peer's toward us, consumed and
    /// not yet granted.
    conn_send: u64,
    conn_recv: u64,
    conn_grant: u64,
    /// Stream bytes delivered to the application and not yet consumed, all streams together.
    conn_unconsumed: u64,

    started: Instant,
    last_recv: Instant,
    ping_out: Option<(u64, Instant)>,
    /// Last time a keepalive PING could not be queued (transmit queue full): retry an interval later.
    ping_blocked: Instant,
    /// A credit grant could not be queued (transmit queue full): retry after transmitting.
    grant_retry: bool,
    ping_seq: u64,
    /// Unproductive-frame budget (SPEC.md §12.5): tokens in millionths of a frame, and when
    /// they were last refilled.
    flood_tokens: u64,
    flood_at: Instant,
    /// Total bytes ever queued for transmission.
    tx_queued: u64,
    drain_deadline: Instant,
    goaway_sent: bool,
    goaway_recv: Option<u64>,

    connected_event: bool,
    goaway_event: Option<(u64, Status)>,
    closed_event: Option<ConnectionError>,
    closed_delivered: bool,
    close_msg: Inline<256>,
    stats: Stats,
    /// Reply cache, retained requests and pending ACKs: present in a resumable session and in
    /// datagram mode (SPEC.md §13, §14).
    #[cfg(feature = "alloc")]
    sess: Option<alloc::boxed::Box<session::SessionState>>,
    /// GOAWAY was sent or received: the session ends with this connection (SPEC.md §13.2).
    session_ending: bool,
    /// Suspended: when the session is dropped if not resumed.
    grace_deadline: Instant,
    /// Suspended: when the grace period started (the first loss).
    suspended_at: Instant,
    /// Dialer: a resuming HELLO was sent on a new transport; waiting for the acceptor's.
    resuming: bool,
    /// Acceptor: the dialer asked to resume; waiting for the application's decision.
    resume_request: bool,
    /// This transport resumed a session: opening frames with old ids are retransmissions.
    resumed: bool,
    /// After a resumption: the next id of ours to retransmit (SPEC.md §13.5).
    resend_from: Option<u64>,
    /// An inbound request whose reassembly the transport loss cut: its retransmission is new.
    cut_request: Option<u64>,
    /// Stream bytes delivered before a resumption: consuming them returns no credit (§13.4).
    conn_no_grant: u64,
    /// Some stream is retransmitting after STREAM_RESUME, or answers to retransmissions wait
    /// for room in the transmit queue.
    resend_streams: bool,
    /// Datagram mode (SPEC.md §14): window, RTO, retransmission timers; `None` otherwise.
    #[cfg(feature = "alloc")]
    dgram: Option<alloc::boxed::Box<datagram::DgramState>>,
}

/// `Store` for owned memory, or the borrowed slice.
#[cfg(feature = "alloc")]
fn owned<T>() -> Store<'static, T> {
    Store::Owned(alloc::vec::Vec::new())
}

impl<'a> Connection<'a> {
    /// A connection whose buffers grow on demand up to the bounds in `config`.
    ///
    /// A dialer queues its HELLO at once; drain it with `poll_transmit`.
    #[cfg(feature = "alloc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn new(
        role: Role,
        config: Config,
        me: Identity<'_>,
        now: Instant,
    ) -> Result<Connection<'static>, ConfigError> {
        config.validate()?;
        let rx_max = config.max_frame_size as usize + frame::MAX_HEADER_LEN;
        // On a packet transport the receive buffer must hold one whole datagram.
        let rx_max = match config.transport {
            Transport::Packet { max_datagram } => rx_max.max(max_datagram as usize),
            Transport::Datagram { max_datagram } => rx_max.max(max_datagram as usize),
            Transport::Stream => rx_max,
        };
        let tx_max = config.max_tx_buffer as usize;
        let reasm_max = config.max_message_size as usize;
        let slots = (config.max_concurrent_calls as usize)
            .saturating_add(config.max_concurrent_streams as usize)
            .saturating_add(config.max_outbound_calls as usize)
            .saturating_add(config.max_outbound_streams as usize);
        Connection::build(
            role,
            config,
            me,
            now,
            ByteQueue::new(owned(), rx_max),
            ByteQueue::new(owned(), tx_max),
            ByteQueue::new(owned(), reasm_max),
            reasm_max,
            Table::new(owned(), slots),
        )
    }

    /// A connection working only in the caller's `storage` (no allocator needed).
    ///
    /// Fails if `storage.rx` cannot hold one frame of `config.max_frame_size`.
    pub fn with_storage(
        role: Role,
        config: Config,
        me: Identity<'_>,
        storage: Storage<'a>,
        now: Instant,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let dgram = match config.transport {
            Transport::Packet { max_datagram } => max_datagram as usize,
            Transport::Datagram { max_datagram } => max_datagram as usize,
            Transport::Stream => 0,
        };
        if storage.rx.len() < (config.max_frame_size as usize + frame::MAX_HEADER_LEN).max(dgram) {
            return Err(ConfigError {
                field: "storage.rx",
                requirement: "at least max_frame_size + 9 bytes long (and max_datagram on packet transports)",
            });
        }
        if storage.reassembly.len() < crate::config::MIN_MESSAGE_SIZE as usize {
            return Err(ConfigError { field: "storage.reassembly", requirement: "at least 4096 bytes long" });
        }
        if storage.tx.len() < 2 * MIN_FRAME_SIZE as usize {
            return Err(ConfigError { field: "storage.tx", requirement: "at least 8192 bytes long" });
        }
        // Announce only what the reassembly buffer can hold.
        let mut config = config;
        config.max_message_size =
            config.max_message_size.min(u32::try_from(storage.reassembly.len()).unwrap_or(u32::MAX));
        let reasm_max = storage.reassembly.len().min(config.max_message_size as usize);
        let (rx_len, tx_len, re_len, n) =
            (storage.rx.len(), storage.tx.len(), storage.reassembly.len(), storage.slots.len());
        Connection::build(
            role,
            config,
            me,
            now,
            ByteQueue::new(Store::Borrowed(storage.rx), rx_len),
            ByteQueue::new(Store::Borrowed(storage.tx), tx_len),
            ByteQueue::new(Store::Borrowed(storage.reassembly), re_len),
            reasm_max,
            Table::new(Store::Borrowed(storage.slots), n),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        role: Role,
        config: Config,
        me: Identity<'_>,
        now: Instant,
        rx: ByteQueue<'a>,
        tx: ByteQueue<'a>,
        reasm: ByteQueue<'a>,
        reasm_max: usize,
        slots: Table<'a, Slot>,
    ) -> Result<Self, ConfigError> {
        if me.name.len() > MAX_NAME_LEN {
            return Err(ConfigError { field: "identity.name", requirement: "at most 255 bytes" });
        }
        if me.auth.len() > MAX_AUTH_LEN {
            return Err(ConfigError { field: "identity.auth", requirement: "at most 1024 bytes" });
        }
        if me.session.len() > MAX_SESSION_LEN {
            return Err(ConfigError { field: "identity.session", requirement: "at most 64 bytes" });
        }
        if let Transport::Packet { .. } | Transport::Datagram { .. } = config.transport {
            // SPEC.md §4.1: on packet transports HELLO must fit 1200 bytes.
            let mut pbuf = [0u8; 128];
            let (params, n) = config.hello_params();
            let params = frame::Params::encode_into(&params[..n], &mut pbuf).unwrap_or(frame::Params::EMPTY);
            let hello = frame::Frame::Hello(frame::Hello {
                min_version: crate::config::VERSION,
                max_version: crate::config::VERSION,
                flags: frame::Hello::RESUME,
                name: me.name,
                auth: me.auth,
                session: me.session,
                params,
            });
            if hello.encoded_len() > 1200 {
                return Err(ConfigError {
                    field: "identity",
                    requirement: "short enough for HELLO to fit 1200 bytes on a packet transport",
                });
            }
        }
        let mut ident = (Inline::new(), Inline::new(), Inline::new());
        ident.0.set(me.name);
        ident.1.set(me.auth);
        ident.2.set(me.session);
        let conn_recv = config.conn_credit_bytes.into();
        let flood = u64::from(config.max_unproductive_frames) * 1_000_000;
        let mut c = Connection {
            role,
            config,
            state: State::Handshake,
            me: ident,
            peer_name: Inline::new(),
            peer_auth: Inline::new(),
            peer_session: Inline::new(),
            peer_resume: false,
            version: 0,
            peer: PeerLimits::default(),
            rx,
            rx_release: 0,
            eof: false,
            rx_error: None,
            reasm,
            reasm_max,
            partial: None,
            reasm_delivered: false,
            tx,
            tx_head_left: 0,
            slots,
            pending_slots: 0,
            next_id: match role {
                Role::Dialer => 0,
                Role::Acceptor => 1,
            },
            peer_high: None,
            out_calls: 0,
            in_calls: 0,
            out_streams: 0,
            in_streams: 0,
            conn_send: 0,
            conn_recv,
            conn_grant: 0,
            conn_unconsumed: 0,
            started: now,
            last_recv: now,
            ping_out: None,
            ping_blocked: Instant::ZERO,
            grant_retry: false,
            ping_seq: 0,
            flood_tokens: flood,
            flood_at: now,
            tx_queued: 0,
            drain_deadline: Instant::MAX,
            goaway_sent: false,
            goaway_recv: None,
            connected_event: false,
            goaway_event: None,
            closed_event: None,
            closed_delivered: false,
            close_msg: Inline::new(),
            stats: Stats::default(),
            #[cfg(feature = "alloc")]
            sess: None,
            session_ending: false,
            grace_deadline: Instant::MAX,
            suspended_at: Instant::ZERO,
            resuming: false,
            resume_request: false,
            resumed: false,
            resend_from: None,
            cut_request: None,
            conn_no_grant: 0,
            resend_streams: false,
            #[cfg(feature = "alloc")]
            dgram: None,
        };
        if role == Role::Dialer {
            c.send_hello(crate::config::VERSION, crate::config::VERSION, !c.me.2.get().is_empty());
        }
        // --- datagram mode (SPEC.md §14)
        #[cfg(feature = "alloc")]
        c.dgram_init(now);
        Ok(c)
    }

    // ------------------------------------------------------------------ getters

    /// Which side of the transport this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the peer announced, once its HELLO has arrived.
    pub fn peer(&self) -> Option<Peer<'_>> {
        (self.version != 0).then(|| Peer {
            version: self.version,
            name: self.peer_name.get(),
            auth: self.peer_auth.get(),
            session: self.peer_session.get(),
            resume: self.peer_resume,
            limits: self.peer,
        })
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.calls_open_outbound = self.out_calls;
        s.calls_open_inbound = self.in_calls;
        s.streams_open_outbound = self.out_streams;
        s.streams_open_inbound = self.in_streams;
        #[cfg(feature = "alloc")]
        if let Some(sess) = &self.sess {
            s.replies_evicted = sess.cache.evicted;
        }
        s
    }

    /// The text of the peer's CLOSE frame (truncated to 256 bytes), if it sent one.
    pub fn close_message(&self) -> &[u8] {
        self.close_msg.get()
    }

    /// Whether the connection is closed and everything it had to say has been transmitted and
    /// reported: the driver may now close the transport and drop the connection.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed && self.tx.is_empty() && self.closed_delivered && !self.dgram_lingering()
    }

    /// Whether this connection's session can be resumed after a transport loss (SPEC.md §13):
    /// the acceptor offered a session token and both sides keep the state it needs.
    pub fn is_resumable(&self) -> bool {
        #[cfg(feature = "alloc")]
        return self.sess.is_some() && self.dgram.is_none(); // datagram mode: no sessions (§14.1)
        #[cfg(not(feature = "alloc"))]
        return false;
    }

    /// Test support: jump the id allocator (to test exhaustion without 2^61 calls).
    #[cfg(test)]
    pub(crate) fn test_set_next_id(&mut self, id: u64) {
        self.next_id = id;
    }

    /// The internal state of exchange `id`, for tests and debugging (its `Debug` output is not
    /// a stable format).
    #[doc(hidden)]
    pub fn debug_slot(&self, id: u64) -> Option<&Slot> {
        self.slots.find(id, |s| s.id == id).and_then(|i| self.slots.get(i))
    }

    /// Checks the connection's internal bookkeeping (counters against the exchange table), for
    /// test harnesses and fuzzers: `Err` names the broken invariant. A broken invariant is a
    /// bug in the core, never the peer's doing; the connection itself never panics on one.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let pending = (0..self.slots.capacity_hint())
            .filter_map(|i| self.slots.get(i))
            .filter(|s| s.pending != Pending::None)
            .count();
        if pending != self.pending_slots {
            return Err("pending_slots counter differs from the slots with a pending event");
        }
        let count = |k: Kind, out: bool| {
            (0..self.slots.capacity_hint())
                .filter_map(|i| self.slots.get(i))
                .filter(|s| (s.kind == Kind::Stream) == (k == Kind::Stream) && s.outbound == out)
                .count()
        };
        if self.out_streams as usize != count(Kind::Stream, true)
            || self.in_streams as usize != count(Kind::Stream, false)
        {
            return Err("stream counters differ from the exchange table");
        }
        if self.in_calls as usize > count(Kind::Call, false)
            || self.out_calls as usize > count(Kind::Call, true)
        {
            return Err("call counters above the exchange table");
        }
        Ok(())
    }

    /// Whether the session is suspended and waits for a transport: a dialer calls
    /// [`reconnect`](Self::reconnect) on a new one (after a backoff), an acceptor waits for the
    /// dialer to come back.
    pub fn needs_transport(&self) -> bool {
        self.state == State::Suspended && !self.resuming
    }

    /// Whether a HELLO from the peer is still expected on the current transport.
    fn awaiting_hello(&self) -> bool {
        self.state == State::Handshake || self.resuming
    }

    /// The session's token: the one the acceptor gave (empty when it offers no resumption, and
    /// before the handshake on the dialer's side).
    pub fn session_token(&self) -> &[u8] {
        match self.role {
            Role::Acceptor if cfg!(feature = "alloc") => self.me.2.get(),
            Role::Acceptor => &[],
            Role::Dialer => self.peer_session.get(),
        }
    }

    /// Answers kept in the reply cache for the peer's retransmissions: `(entries, payload bytes)`.
    pub fn reply_cache_len(&self) -> (usize, usize) {
        #[cfg(feature = "alloc")]
        if let Some(s) = &self.sess {
            return (s.cache.len(), s.cache.bytes());
        }
        (0, 0)
    }

    /// Requests kept for retransmission until answered: `(requests, payload bytes)`.
    pub fn retained_requests(&self) -> (usize, usize) {
        #[cfg(feature = "alloc")]
        if let Some(s) = &self.sess {
            return (s.outbox.len(), s.outbox.bytes());
        }
        (0, 0)
    }

    /// Bytes of memory held for exactly-once delivery (SPEC.md §13, §14): the reply cache, the
    /// retained requests, unconfirmed stream items and their spare buffers; 0 when the session is
    /// not resumable and not in datagram mode. What a server-wide session budget
    /// ([`MemoryBudget`](crate::budget::MemoryBudget)) counts.
    pub fn session_memory(&self) -> SessionMemory {
        #[cfg(feature = "alloc")]
        if let Some(s) = &self.sess {
            return SessionMemory {
                held: s.footprint() + core::mem::size_of::<session::SessionState>(),
                sheddable: s.sheddable(),
            };
        }
        SessionMemory::default()
    }

    /// Frees at least `want` bytes of session memory if it can without breaking a promise:
    /// spare buffers first, then the oldest answers of the reply cache, exactly as if its byte
    /// bound had been reached (a retransmission of an evicted request is answered
    /// REPLY_EVICTED, SPEC.md §13.6). Retained requests and unconfirmed stream items belong to
    /// open exchanges and are kept. Returns the bytes freed (possibly fewer than `want`).
    pub fn shed_session_memory(&mut self, want: usize) -> usize {
        #[cfg(feature = "alloc")]
        if let Some(s) = &mut self.sess {
            return s.shed(want);
        }
        let _ = want;
        0
    }

    /// Ends a suspended session before its grace period (the local memory budget needs its
    /// memory, SPEC.md §13.6): every exchange resolves UNAVAILABLE, [`Event::Closed`] reports
    /// [`ConnectionError::SessionEvicted`], nothing is sent (there is no transport). Returns
    /// false, and does nothing, unless the session is suspended.
    pub fn evict_suspended_session(&mut self) -> bool {
        if self.state != State::Suspended {
            return false;
        }
        self.session_ending = true;
        self.tx.clear();
        self.enter_closed(ConnectionError::SessionEvicted);
        true
    }

    /// When the session was suspended (its grace period started), if it is suspended now.
    pub fn suspended_since(&self) -> Option<Instant> {
        (self.state == State::Suspended).then_some(self.suspended_at)
    }

    /// Number of exchanges (calls, notifications, streams, both directions) still tracked.
    pub fn open_exchanges(&self) -> usize {
        self.slots.len()
    }

    /// Bytes waiting in the transmit queue.
    pub fn pending_transmit(&self) -> usize {
        self.tx.len()
    }

    /// Bytes of memory the connection's buffers and tables currently occupy (excluding the
    /// `Connection` struct itself).
    pub fn buffer_footprint(&self) -> usize {
        self.rx.footprint() + self.tx.footprint() + self.reasm.footprint() + self.slots.footprint()
    }

    /// Returns memory held by empty buffers and tables to the allocator (owned storage only).
    ///
    /// Buffers keep their capacity between messages so that steady-state traffic does not
    /// allocate; a runtime calls this when a connection goes idle to keep idle connections small.
    pub fn release_memory(&mut self) {
        self.release_rx();
        self.rx.release_memory();
        self.tx.release_memory();
        if self.partial.is_none() {
            self.reasm.clear();
            self.reasm.release_memory();
        }
        self.slots.release_memory();
        #[cfg(feature = "alloc")]
        if let Some(s) = &mut self.sess {
            // Spare buffers only: no cached answer is dropped.
            s.shed(0);
        }
    }

    /// Remaining send credit of one of our streams `(items, bytes)`, limited by the connection
    /// credit, or `None` if no such stream is open.
    pub fn stream_credit(&self, id: u64) -> Option<(u32, u32)> {
        let i = self.slots.find(id, |s| s.id == id && s.kind == Kind::Stream)?;
        let s = &self.slots.get(i)?.s;
        Some((s.send_msgs, (s.send_bytes as u64).min(self.conn_send) as u32))
    }

    // ------------------------------------------------------------------ inputs

    /// Free space to read transport bytes into; then call [`recv_commit`](Self::recv_commit)
    /// with the number of bytes read.
    ///
    /// Empty when the receive buffer is full of unprocessed frames: drain
    /// [`poll_event`](Self::poll_event) first. On a packet transport, read one datagram.
    pub fn recv_buffer(&mut self) -> &mut [u8] {
        self.release_rx();
        let want = match self.config.transport {
            // From 1 KiB, doubling with each call up to 16 KiB: a new or idle (released)
            // connection holds little, a busy one soon reads in large chunks.
            Transport::Stream => (2 * self.rx.footprint()).clamp(1024, 16 * 1024),
            Transport::Packet { max_datagram } | Transport::Datagram { max_datagram } => {
                max_datagram as usize
            }
        };
        self.rx.spare_any(want)
    }

    /// Accepts `n` bytes just written into [`recv_buffer`](Self::recv_buffer). On a packet
    /// transport the `n` bytes are one datagram, which must hold whole frames.
    pub fn recv_commit(&mut self, now: Instant, n: usize) {
        // --- datagram mode: a closed association answers with its CLOSE (SPEC.md §14.8)
        #[cfg(feature = "alloc")]
        if self.state == State::Closed && n > 0 {
            self.dgram_closed_input(now);
        }
        // A suspended session has no transport: late bytes of the old one are dropped.
        if self.state == State::Closed || n == 0 || self.needs_transport() {
            return;
        }
        let start = self.rx.len();
        self.rx.commit(n);
        // --- datagram mode: decode the datagram whole, drop it whole if invalid (SPEC.md §14.2)
        #[cfg(feature = "alloc")]
        if self.dgram.is_some() {
            self.dgram_commit(now, start, n);
            return;
        }
        self.stats.bytes_received += n as u64;
        self.last_recv = self.last_recv.max(now);
        if let Transport::Packet { .. } = self.config.transport {
            // Keep the whole frames in front of a bad one: they are processed first, in order
            // (SPEC.md §3.7); the error is raised once they are.
            let (valid, err) = self.check_datagram(start);
            if let Some(e) = err {
                self.rx.truncate(start + valid);
                self.rx_error = Some(e);
            }
        }
    }

    /// Copies transport bytes into the connection and returns how many were taken.
    ///
    /// Fewer than `data.len()` means the receive buffer is full: drain
    /// [`poll_event`](Self::poll_event), then offer the rest again. On a packet transport
    /// `data` is one whole datagram and is taken entirely or not at all.
    #[must_use = "bytes not taken must be offered again after draining events"]
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        if self.state == State::Closed {
            // --- datagram mode: a closed association answers with its CLOSE (SPEC.md §14.8)
            #[cfg(feature = "alloc")]
            if !data.is_empty() {
                self.dgram_closed_input(now);
            }
            return data.len();
        }
        let packet = match self.config.transport {
            Transport::Packet { max_datagram } => {
                if data.len() > max_datagram as usize {
                    self.fail(
                        now,
                        ConnectionError::Violation {
                            status: Status::LIMIT_EXCEEDED,
                            reason: "datagram larger than max_datagram_size",
                        },
                    );
                    return data.len();
                }
                true
            }
            // --- datagram mode: an oversize datagram is dropped whole (SPEC.md §14.2)
            Transport::Datagram { max_datagram } => {
                if data.len() > max_datagram as usize {
                    #[cfg(feature = "alloc")]
                    self.dgram_oversize();
                    return data.len();
                }
                true
            }
            Transport::Stream => false,
        };
        let buf = self.recv_buffer();
        if packet && buf.len() < data.len() {
            return 0;
        }
        let n = buf.len().min(data.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.recv_commit(now, n);
        n
    }

    /// The transport reached end of file (the peer closed its side).
    ///
    /// Frames already received are still delivered; then the connection closes (gracefully if
    /// the peer sent CLOSE, otherwise with [`ConnectionError::TransportClosed`]).
    pub fn handle_eof(&mut self, _now: Instant) {
        self.eof = true;
    }

    // ------------------------------------------------------------------ outputs

    /// The next event, or `None` when there is nothing to report until new input or an action.
    ///
    /// The event borrows the connection; payloads are valid until the next call on it.
    #[must_use = "events must be drained: they carry responses, requests and errors"]
    pub fn poll_event(&mut self, now: Instant) -> Option<Event<'_>> {
        self.release_rx();
        let raw = self.next_raw(now)?;
        Some(self.materialize(raw))
    }

    /// Copies queued outbound bytes into `buf` and returns how many; 0 when nothing is queued.
    ///
    /// On a byte stream, write all returned bytes in order. On a packet transport each call
    /// returns one datagram of whole frames (`buf` must hold the largest datagram).
    /// Fills `buf` with as many queued frames as fit, so one call feeds one system call.
    #[must_use = "the returned bytes must be written to the transport"]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        #[cfg(feature = "alloc")]
        if self.resend_from.is_some() {
            self.pump_resend(now);
        }
        #[cfg(feature = "alloc")]
        if self.resend_streams {
            self.pump_streams();
        }
        if !self.tx.is_empty() {
            self.flush_acks(now, true);
        }
        let data = self.tx.data();
        let n = match self.config.transport {
            Transport::Stream => data.len().min(buf.len()),
            Transport::Packet { max_datagram } => {
                let peer_max = if self.peer.max_datagram_size == 0 {
                    max_datagram
                } else {
                    self.peer.max_datagram_size.min(max_datagram)
                };
                let limit = buf.len().min(peer_max as usize);
                whole_frames(data, limit)
            }
            // --- datagram mode: one datagram of whole frames (SPEC.md §14.2)
            Transport::Datagram { .. } => self.dgram_datagram_len(data, buf.len()),
        };
        buf[..n].copy_from_slice(&data[..n]);
        self.consume_tx(n);
        self.stats.bytes_sent += n as u64;
        self.retry_grants();
        n
    }

    /// The queued outbound bytes, for drivers that write straight from the connection's buffer;
    /// follow with [`transmit_done`](Self::transmit_done). Byte streams only.
    pub fn transmit_data(&self) -> &[u8] {
        self.tx.data()
    }

    /// Marks `n` bytes of [`transmit_data`](Self::transmit_data) as written.
    pub fn transmit_done(&mut self, n: usize) {
        let n = n.min(self.tx.len());
        self.consume_tx(n);
        self.stats.bytes_sent += n as u64;
        self.retry_grants();
    }

    /// Drops `n` transmitted bytes from the head of `tx`, following frame boundaries through
    /// them (`tx_head_left`). The queue holds whole frames, so every header met is complete.
    fn consume_tx(&mut self, n: usize) {
        let data = self.tx.data();
        let mut pos = self.tx_head_left.min(n);
        let mut left = self.tx_head_left - pos;
        while pos < n {
            let len = match frame::Frame::peek_header(&data[pos..], usize::MAX) {
                Ok(Some((_, body, hlen))) => hlen.saturating_add(body),
                // Not a frame we queued: nothing to follow.
                _ => n - pos,
            };
            let take = len.min(n - pos);
            pos += take;
            left = len - take;
        }
        self.tx_head_left = left;
        self.tx.consume(n);
    }

    /// Drops every queued frame not yet begun on the transport; the rest of a frame the
    /// transport has taken part of stays, so that what is queued next still starts at a frame
    /// boundary on the wire.
    pub(super) fn clear_tx(&mut self) {
        self.tx.truncate(self.tx_head_left);
    }

    // ------------------------------------------------------------------ event plumbing

    fn release_rx(&mut self) {
        if self.rx_release > 0 {
            self.rx.consume(self.rx_release);
            self.rx_release = 0;
        }
        if self.reasm_delivered {
            self.reasm.clear();
            self.reasm_delivered = false;
        }
    }

    fn next_raw(&mut self, now: Instant) -> Option<Raw> {
        loop {
            if let Some(r) = self.take_pending() {
                return Some(r);
            }
            if self.state == State::Closed {
                return None;
            }
            let rx = core::mem::take(&mut self.rx);
            let out = self.parse_one(now, rx.data());
            self.rx = rx;
            match out {
                recv::Outcome::NeedMore => {
                    if let Some(e) = self.rx_error.take() {
                        self.fail(now, e);
                        continue;
                    }
                    if self.eof {
                        let e = if self.rx.is_empty() {
                            ConnectionError::TransportClosed
                        } else {
                            ConnectionError::Malformed(frame::DecodeError::Truncated)
                        };
                        self.fail(now, e);
                        continue;
                    }
                    return None;
                }
                // (A CLOSE that suspended the session already emptied the buffer.)
                recv::Outcome::Done(n) => self.rx.consume(n.min(self.rx.len())),
                recv::Outcome::Event(n, raw) => {
                    self.rx_release = n;
                    return Some(raw);
                }
            }
        }
    }

    fn take_pending(&mut self) -> Option<Raw> {
        if self.connected_event {
            self.connected_event = false;
            return Some(Raw::Connected);
        }
        if self.pending_slots > 0 {
            let Some(i) = self.slots.position(|s| s.pending != Pending::None) else {
                // The counter is out of sync with the table: a bug, never a reason to panic on
                // input. Recover; the fuzz and property harnesses catch the desync itself
                // through `check_invariants`.
                self.pending_slots = 0;
                return self.take_pending();
            };
            let slot = self.slots.get_mut(i)?;
            let p = core::mem::replace(&mut slot.pending, Pending::None);
            if let Pending::Reset(_) = p {
                slot.s.reported = true;
            }
            let id = slot.id;
            let free = slot.free_after_event;
            self.pending_slots = self.pending_slots.saturating_sub(1);
            if free {
                self.free_slot(i);
            } else {
                self.settle(i);
            }
            return Some(match p {
                Pending::Failed(status) => Raw::Failed { id, status },
                Pending::Cancelled(status) => Raw::Cancelled { id, status },
                Pending::Reset(status) => Raw::StreamReset { id, status },
                Pending::Writable | Pending::None => Raw::StreamWritable { id },
            });
        }
        if let Some((bound, status)) = self.goaway_event.take() {
            return Some(Raw::GoAway { bound, status });
        }
        if self.state == State::Closed && !self.closed_delivered {
            if let Some(e) = self.closed_event {
                self.closed_delivered = true;
                return Some(Raw::Closed(e));
            }
        }
        None
    }

    fn materialize(&self, raw: Raw) -> Event<'_> {
        let src = |s: Src| -> &[u8] {
            match s {
                Src::Empty => &[],
                Src::Rx(a, b) => &self.rx.data()[a..b],
                Src::Reasm => self.reasm.data(),
            }
        };
        match raw {
            Raw::Connected => Event::Connected,
            Raw::Request { id, kind, method, deadline, src: s } => {
                Event::Request { id, kind, method, deadline, payload: src(s) }
            }
            Raw::Signal { method, src: s } => Event::Signal { method, payload: src(s) },
            Raw::Response { id, status, src: s } => Event::Response { id, status, payload: src(s) },
            Raw::Failed { id, status } => Event::Failed { id, status },
            Raw::Cancelled { id, status } => Event::Cancelled { id, status },
            Raw::StreamData { id, src: s } => Event::StreamData { id, payload: src(s) },
            Raw::StreamFin { id, status } => Event::StreamFin { id, status },
            Raw::StreamReset { id, status } => Event::StreamReset { id, status },
            Raw::StreamWritable { id } => Event::StreamWritable { id },
            Raw::GoAway { bound, status } => Event::GoAway { bound, status },
            Raw::ResumeRequested => Event::ResumeRequested { token: self.peer_session.get() },
            Raw::Closed(e) => Event::Closed(e),
        }
    }

    /// Sets a pending event on slot `i`. Terminal events replace `Writable`.
    fn set_pending(&mut self, i: usize, p: Pending) {
        if let Some(s) = self.slots.get_mut(i) {
            if s.pending == Pending::None {
                self.pending_slots += 1;
            }
            if s.pending == Pending::None || s.pending == Pending::Writable {
                s.pending = p;
            }
        }
    }

    /// Frees slot `i` if its exchange is over (streams: both terminals; no event owed).
    fn settle(&mut self, i: usize) {
        let Some(s) = self.slots.get(i) else { return };
        // A terminal still waiting to be sent (suspended session) keeps the stream.
        // So does one still retransmitting, waiting to learn what to retransmit, or owing the
        // peer its STREAM_RESUME.
        let busy = s.s.term_pending || s.s.resending || s.s.await_resume || (s.s.carried && !s.s.resume_sent);
        if s.kind == Kind::Stream && s.s.sent_terminal && s.s.recv_terminal && !busy {
            if s.pending == Pending::None {
                self.free_slot(i);
            } else if let Some(s) = self.slots.get_mut(i) {
                s.free_after_event = true;
            }
        }
        self.check_drained();
    }

    fn free_slot(&mut self, i: usize) {
        let Some(s) = self.slots.remove(i) else { return };
        #[cfg(feature = "alloc")]
        if let Some(sess) = self.sess.as_mut() {
            if s.outbound {
                sess.outbox.remove(s.id);
            }
            if s.kind == Kind::Stream {
                sess.items.remove(&s.id);
            }
        }
        // --- datagram mode: the exchange is over, stop its retransmission timer
        #[cfg(feature = "alloc")]
        self.dgram_forget(s.id);
        if s.pending != Pending::None {
            self.pending_slots = self.pending_slots.saturating_sub(1);
        }
        match (s.kind, s.outbound) {
            (Kind::Stream, true) => self.out_streams = self.out_streams.saturating_sub(1),
            (Kind::Stream, false) => self.in_streams = self.in_streams.saturating_sub(1),
            // A call whose response is arriving was already uncounted at its first frame.
            (_, true) if !s.assembling => self.out_calls = self.out_calls.saturating_sub(1),
            (_, true) => {}
            (_, false) => self.in_calls = self.in_calls.saturating_sub(1),
        }
        if s.kind == Kind::Stream && s.s.unconsumed_bytes > 0 {
            // The application will not consume what it has not taken; return it to the
            // connection window.
            self.return_unconsumed(s.s.unconsumed_bytes, s.s.no_grant_bytes);
        }
        self.check_drained();
    }

    /// Returns a stream's delivered-but-unconsumed bytes to the connection window (the stream
    /// ended or was reset), except those delivered before a resumption: the window restart
    /// already paid for them (SPEC.md §13.4).
    fn return_unconsumed(&mut self, unconsumed: u32, no_grant: u32) {
        let unconsumed = u64::from(unconsumed);
        let old = unconsumed.min(u64::from(no_grant)).min(self.conn_no_grant);
        self.conn_no_grant -= old;
        self.conn_unconsumed = self.conn_unconsumed.saturating_sub(unconsumed);
        self.conn_grant += unconsumed - old;
        self.flush_conn_grant();
    }

    // ------------------------------------------------------------------ closing

    /// Ends the connection because of `e`: queues CLOSE when we are the one closing, resolves
    /// every exchange with an event, then reports [`Event::Closed`].
    fn fail(&mut self, now: Instant, e: ConnectionError) {
        if self.state == State::Closed {
            return;
        }
        #[cfg(feature = "alloc")]
        if self.try_suspend(now, &e) {
            return;
        }
        let _ = now;
        if matches!(e, ConnectionError::Malformed(_) | ConnectionError::Violation { .. }) {
            self.stats.protocol_errors += 1;
        }
        let send_close = !matches!(e, ConnectionError::PeerClosed { .. } | ConnectionError::TransportClosed);
        if send_close {
            let msg = e_message(&e);
            self.push_close(e.status(), msg);
        } else {
            self.tx.clear();
            self.tx_head_left = 0;
        }
        self.enter_closed(e);
    }

    fn enter_closed(&mut self, e: ConnectionError) {
        self.state = State::Closed;
        self.closed_event = Some(e);
        self.partial = None;
        self.connected_event = false;
        for i in 0..self.slots.capacity_hint() {
            self.abort_slot(i, Status::UNAVAILABLE);
        }
    }

    /// Ends slot `i` because the connection ended or the peer's GOAWAY excluded it: the
    /// application gets exactly one terminal event for the exchange (none if it already has
    /// one, or never saw the exchange), then the slot is freed.
    fn abort_slot(&mut self, i: usize, status: Status) {
        let Some(s) = self.slots.get_mut(i) else { return };
        if s.pending == Pending::Writable {
            s.pending = Pending::None;
            self.pending_slots = self.pending_slots.saturating_sub(1);
        }
        if s.pending != Pending::None {
            // An undelivered terminal event stays the one the application sees.
            s.free_after_event = true;
            return;
        }
        let p = match (s.kind, s.outbound) {
            // The application never saw this request: nothing to report.
            (_, false) if s.assembling => Pending::None,
            (Kind::Stream, _) if s.s.reported || s.s.we_reset => Pending::None,
            (Kind::Stream, _) => Pending::Reset(status),
            (_, true) if s.resolved => Pending::None,
            (_, true) => Pending::Failed(status),
            // Already told to stop (cancelled or expired).
            (_, false) if s.cancelled.is_some() => Pending::None,
            (_, false) => Pending::Cancelled(status),
        };
        if p == Pending::None {
            self.free_slot(i);
        } else {
            self.set_pending(i, p);
            if let Some(s) = self.slots.get_mut(i) {
                s.free_after_event = true;
            }
        }
    }

    /// After GOAWAY: once nothing is open, close gracefully.
    fn check_drained(&mut self) {
        if self.state == State::Draining && self.goaway_sent && self.slots.len() == 0 {
            self.push_close(Status::OK, b"");
            self.enter_closed(ConnectionError::LocallyClosed { status: Status::OK });
        }
    }
}

fn e_message(e: &ConnectionError) -> &'static [u8] {
    match e {
        ConnectionError::Violation { reason, .. } | ConnectionError::Incompatible { reason } => {
            reason.as_bytes()
        }
        ConnectionError::Malformed(_) => b"malformed frame",
        ConnectionError::IdleTimeout => b"idle timeout",
        ConnectionError::HandshakeTimeout => b"handshake timeout",
        ConnectionError::DrainTimeout => b"drain timeout",
        _ => b"",
    }
}

/// Length of the longest prefix of `data` made of whole frames and at most `limit` bytes.
fn whole_frames(data: &[u8], limit: usize) -> usize {
    let mut n = 0;
    while n < data.len() {
        let Ok(Some((_, body, hlen))) = frame::Frame::peek_header(&data[n..], usize::MAX) else { break };
        let f = hlen + body;
        if n + f > limit || n + f > data.len() {
            break;
        }
        n += f;
    }
    n
}
