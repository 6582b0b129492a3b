//! The connection state machine.
//!
//! [`Connection`] is one end of one transport connection. Its methods fall in four groups, and a
//! driver uses them in one loop (see the crate docs for a complete example):
//!
//! 1. **Inputs** — [`recv_buffer`](Connection::recv_buffer) + [`recv_commit`](Connection::recv_commit)
//!    (or [`handle_input`](Connection::handle_input)) for bytes from the transport,
//!    [`handle_eof`](Connection::handle_eof) when it ends, [`handle_timeout`](Connection::handle_timeout)
//!    when the instant from `poll_timeout` is reached. On a byte stream, a large stream item's
//!    payload may instead be read straight into its own buffer
//!    ([`direct_offer`](Connection::direct_offer), `direct_begin`, `direct_read`).
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

mod control;
pub(crate) mod datagram;
#[cfg(feature = "datagram")]
mod datagram_parts;
#[cfg(feature = "datagram")]
mod digest;
mod direct;
mod fragments;
mod getters;
mod new;
mod plumbing;
mod recv;
mod recv_streams;
#[cfg(feature = "resume")]
mod resume;
#[cfg(feature = "resume")]
mod resume_streams;
mod send;
#[cfg(feature = "alloc")]
pub(crate) mod session;
// Without an allocator: the same interface over caller buffers (datagram mode).
#[cfg(all(feature = "datagram", not(feature = "alloc")))]
#[path = "session_fixed.rs"]
pub(crate) mod session;
// Its unit tests also run in the ordinary test build (which has `alloc`, from the dev-dependency).
#[cfg(all(test, feature = "alloc"))]
#[allow(dead_code)]
mod session_fixed;
mod sizing;
#[cfg(feature = "alloc")]
mod splice;
mod streams;

/// Acknowledged ids a caller remembers per transport and acknowledges again after a resumption
/// (SPEC.md §13.6), in both builds. Fixed, not configured: a re-acknowledgement only frees the
/// peer's cache sooner (a lost ACK delays eviction, nothing else), and the responder evicts
/// oldest first, so the entries a lost older ACK leaves behind are the first to go anyway. The
/// ACKs that die with a transport are the last few (ACKs go out every 16 ids or 100 ms); 32
/// covers two full ACK batches, 256 bytes of a firmware connection.
#[cfg(any(feature = "alloc", feature = "resume"))]
pub(crate) const RECENT_ACKS: usize = 32;
mod timers;

pub use direct::{DirectOffer, DirectRead};
pub use sizing::{DatagramStorage, SessionStorage, StorageBuffer, StorageError};

/// Where the exactly-once state lives: on the heap (it grows on demand, bounded by `Config`),
/// or inline with buffers borrowed from the caller's [`DatagramStorage`].
#[cfg(feature = "alloc")]
type SessBox<'a> = alloc::boxed::Box<session::SessionState>;
#[cfg(all(feature = "datagram", not(feature = "alloc")))]
type SessBox<'a> = session::SessionState<'a>;
#[cfg(feature = "alloc")]
type DgramBox = alloc::boxed::Box<datagram::DgramState>;
#[cfg(all(feature = "datagram", not(feature = "alloc")))]
type DgramBox = datagram::DgramState;

use crate::config::{Config, PeerLimits, Role, Transport};
use crate::error::ConnectionError;
use crate::event::{Event, MethodId, RequestKind, SchemaKey};
use crate::frame::{self, MAX_AUTH_LEN, MAX_NAME_LEN, MAX_SESSION_LEN};
use crate::stats::Stats;
use crate::status::Status;
use crate::storage::{ByteQueue, Table};
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

// Resumption state is read only with `resume`.
#[cfg_attr(not(feature = "resume"), allow(dead_code))]
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
// Resumption state is read only with `resume`.
#[cfg_attr(not(feature = "resume"), allow(dead_code))]
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
    /// Outbound call: no longer counted against the peer's `max_concurrent_calls` (the first
    /// frame of its RESPONSE arrived, SPEC.md §7.1.1); stays so if that RESPONSE is cut by a
    /// transport loss and retransmitted (§13.4).
    uncounted: bool,
    /// Inbound, in a session: digest of the request, to recognise its retransmissions.
    digest: [u8; 16],
    /// Outbound: `deadline` is the bound on waiting while suspended (SPEC.md §13.2,
    /// `suspended_call_timeout`), so its expiry resolves UNAVAILABLE; undone at resumption.
    suspend_wait: bool,
    /// Datagram mode, our exchange: its retransmission timer (SPEC.md §14.4), until answered.
    #[cfg(feature = "datagram")]
    retx: Option<datagram::Retx>,
    s: StreamState,
}

impl crate::storage::Keyed for Slot {
    fn key(&self) -> u64 {
        self.id
    }
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
            uncounted: false,
            digest: [0; 16],
            suspend_wait: false,
            #[cfg(feature = "datagram")]
            retx: None,
            s: StreamState::default(),
        }
    }
}

/// Storage for a connection without an allocator: every buffer and table the connection uses,
/// handed in by the caller (typically `static` arrays on firmware).
///
/// Each buffer must be at least as large as the [`Config`] needs, computed by `const fn`s:
/// `rx` holds one frame ([`Storage::rx_len`]: `max_frame_size + 9`, at least `max_datagram` on
/// packet transports), `tx` what may be queued for sending ([`Storage::tx_len`]:
/// `max_tx_buffer`), `reassembly` the largest message received ([`Storage::reassembly_len`]:
/// `max_message_size`, none in datagram mode), and `slots` one entry per exchange open at once
/// in either direction ([`Storage::slots_len`]: the four concurrency limits added up).
/// [`Connection::with_storage`] refuses smaller buffers with a [`StorageError`] that names the
/// buffer and the size it needs.
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
// Resumption state is read only with `resume`; most fields only by reassembly (`fragmentation`).
#[cfg_attr(not(all(feature = "resume", feature = "fragmentation")), allow(dead_code))]
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
    /// A request's schema key, delivered with it.
    key: Option<SchemaKey>,
}

/// Where an event's payload lives.
#[derive(Clone, Copy, Debug)]
enum Src {
    Empty,
    Rx(usize, usize),
    /// The reassembly buffer (SPEC.md §9).
    #[cfg(feature = "fragmentation")]
    Reasm,
}

/// An event before its payload is borrowed.
// Resumption state is read only with `resume`.
#[cfg_attr(not(feature = "resume"), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
enum Raw {
    Connected,
    Request {
        id: u64,
        kind: RequestKind,
        method: MethodId,
        deadline: Option<Instant>,
        key: Option<SchemaKey>,
        src: Src,
    },
    Signal {
        method: MethodId,
        key: Option<SchemaKey>,
        src: Src,
    },
    Response {
        id: u64,
        status: Status,
        src: Src,
    },
    Failed {
        id: u64,
        status: Status,
    },
    Cancelled {
        id: u64,
        status: Status,
    },
    // Stream events exist only with `streams` (SPEC.md §7.4.7).
    #[cfg_attr(not(feature = "streams"), allow(dead_code))]
    StreamData {
        id: u64,
        src: Src,
    },
    #[cfg_attr(not(feature = "streams"), allow(dead_code))]
    StreamFin {
        id: u64,
        status: Status,
    },
    StreamReset {
        id: u64,
        status: Status,
    },
    StreamWritable {
        id: u64,
    },
    GoAway {
        bound: u64,
        status: Status,
    },
    ResumeRequested,
    AuthRequested,
    Closed(ConnectionError),
}

/// One end of a tandem connection: a sans-IO state machine.
///
/// Inputs (`recv_buffer` + `recv_commit` or `handle_input`, `handle_eof`, `handle_timeout`),
/// actions (`call`, `notify`, `signal`, `open_stream`, `respond`, `cancel`, `stream_*`, `ping`,
/// `go_away`, `close`), outputs drained in order after every input or action (`poll_event` until
/// `None`, `poll_transmit` until 0, then `poll_timeout`), and getters. See the crate docs for a
/// complete driver loop.
#[cfg_attr(not(feature = "resume"), allow(dead_code))]
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
    /// A STREAM_DATA payload being received directly (byte streams; `direct.rs`).
    direct: Option<direct::Direct>,
    reasm: ByteQueue<'a>,
    reasm_max: usize,
    partial: Option<Partial>,
    reasm_delivered: bool,
    tx: ByteQueue<'a>,
    /// Bytes of the frame at the head of `tx` still to be handed to the transport when the
    /// transport has taken only part of it (0: the head is at a frame boundary). A queue given
    /// up for a CLOSE keeps them, so that the CLOSE does not land inside a half-sent frame.
    tx_head_left: usize,
    /// Stream items queued by reference to their retained copy, at frame boundaries of `tx`.
    #[cfg(feature = "alloc")]
    spliced: splice::Spliced,
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
    #[cfg(feature = "datagram")]
    sess: Option<SessBox<'a>>,
    /// Without `alloc`: the caller's session buffers (`with_session_storage`) while no
    /// resumable session uses them (before the handshake, or the acceptor gave no token).
    #[cfg(all(feature = "resume", not(feature = "alloc")))]
    sess_spare: Option<SessBox<'a>>,
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
    /// Acceptor with `Config::authenticate`: the dialer's HELLO waits for the application.
    auth_request: bool,
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
    /// The schema key of the request or signal last returned by `poll_event`.
    event_key: Option<SchemaKey>,
    /// Datagram mode (SPEC.md §14): window, RTO, retransmission timers; `None` otherwise.
    #[cfg(feature = "datagram")]
    dgram: Option<DgramBox>,
}

impl<'a> Connection<'a> {
    // ------------------------------------------------------------------ inputs

    /// Free space to read transport bytes into; then call [`recv_commit`](Self::recv_commit)
    /// with the number of bytes read.
    ///
    /// Empty when the receive buffer is full of unprocessed frames: drain
    /// [`poll_event`](Self::poll_event) first. On a packet transport, read one datagram.
    pub fn recv_buffer(&mut self) -> &mut [u8] {
        self.release_rx();
        if self.direct.is_some() {
            // The payload being received directly comes first (`direct_read`).
            return &mut [];
        }
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
        #[cfg(feature = "datagram")]
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
        #[cfg(feature = "datagram")]
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
            #[cfg(feature = "datagram")]
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
                    #[cfg(feature = "datagram")]
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
        self.event_key = match raw {
            Raw::Request { key, .. } | Raw::Signal { key, .. } => key,
            _ => None,
        };
        Some(self.materialize(raw))
    }

    /// Copies queued outbound bytes into `buf` and returns how many; 0 when nothing is queued.
    ///
    /// On a byte stream, write all returned bytes in order. On a packet transport each call
    /// returns one datagram of whole frames (`buf` must hold the largest datagram).
    /// Fills `buf` with as many queued frames as fit, so one call feeds one system call.
    #[must_use = "the returned bytes must be written to the transport"]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        // Nothing follows a CLOSE: a connection closed while answers to retransmissions were
        // owed (ENHANCE_YOUR_CALM, SPEC.md §13.5) or retransmissions pending sends no more.
        #[cfg(feature = "resume")]
        if self.resend_from.is_some() && self.state != State::Closed {
            self.pump_resend(now);
        }
        #[cfg(feature = "resume")]
        if self.resend_streams && self.state != State::Closed {
            self.pump_streams();
        }
        if self.tx_total() > 0 {
            self.flush_acks(now, true);
        }
        if matches!(self.config.transport, Transport::Stream) {
            // What is queued may come in pieces (the queue's two regions, splices): copy them
            // in order as far as `buf` goes.
            let mut n = 0;
            while n < buf.len() {
                let data = self.tx_piece();
                if data.is_empty() {
                    break;
                }
                let k = data.len().min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&data[..k]);
                self.tx_advance(k);
                n += k;
            }
            self.stats.bytes_sent += n as u64;
            self.retry_grants();
            return n;
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

    /// The next queued outbound bytes, for drivers that write straight from the connection's
    /// buffers; follow with [`transmit_done`](Self::transmit_done), then call again: what is
    /// queued may come in several pieces (the transmit queue wraps around in its buffer, and
    /// in a resumable session a stream item is sent from its retained copy), so this is empty
    /// only when nothing is queued. [`transmit_pieces`](Self::transmit_pieces) returns them
    /// all, for a vectored write. Byte streams only.
    pub fn transmit_data(&self) -> &[u8] {
        self.tx_piece()
    }

    /// Marks the first `n` queued bytes as written: at most the total length of the pieces
    /// [`transmit_pieces`](Self::transmit_pieces) returns (what [`transmit_data`](Self::transmit_data)
    /// returns is the first of them).
    pub fn transmit_done(&mut self, mut n: usize) {
        let mut done = 0;
        while n > 0 {
            let k = self.tx_piece().len().min(n);
            if k == 0 {
                break;
            }
            self.tx_advance(k);
            n -= k;
            done += k;
        }
        self.stats.bytes_sent += done as u64;
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
        #[cfg(feature = "alloc")]
        self.clear_tx_spliced();
        #[cfg(not(feature = "alloc"))]
        self.tx.truncate(self.tx_head_left);
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
