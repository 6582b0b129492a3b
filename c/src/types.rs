//! The C-visible types: return codes, the configuration, events, and the constants C code
//! passes in (roles, transports, statuses).
//!
//! Values C passes *in* are plain integers (`uint32_t` with `#define`d constants) and are
//! checked, because a C enum can hold any integer and a Rust enum holding an undeclared value
//! would be undefined behaviour. Values the library passes *out* (return codes, event kinds) are
//! C enums.

use tandem_core::ApiError;

/// What a function of this library returned: `TANDEM_RESULT_OK`, or why it did nothing.
///
/// `tandem_result_message` gives a sentence for each code. A code from a refused action
/// (`TANDEM_RESULT_TX_FULL`, `TANDEM_RESULT_TOO_MANY_CALLS`, ...) left the connection intact: retry
/// later or give up that action; `tandem_result_status` says which protocol status describes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TandemResult {
    /// Success.
    Ok = 0,
    /// A pointer argument the function needs was NULL (or a payload pointer was NULL with a
    /// non-zero length).
    NullPointer = 1,
    /// The connection pointer does not point to a live connection made by `tandem_conn_init`
    /// (never initialised, freed, or misaligned).
    BadHandle = 2,
    /// An argument is out of range (an unknown role, transport or constant, a length above
    /// `PTRDIFF_MAX`, a commit larger than the buffer offered).
    InvalidArgument = 3,
    /// The configuration is invalid: `tandem_config_check` says which field and why.
    InvalidConfig = 4,
    /// The memory given to `tandem_conn_init` is smaller than `tandem_conn_memory_size` says.
    BufferTooSmall = 5,
    /// Not available in this build.
    Unsupported = 6,
    /// An internal error (a bug in the library) was caught in this call; the connection is now
    /// poisoned and every further call on it returns `TANDEM_RESULT_POISONED`. Free it.
    Panicked = 7,
    /// An earlier call on this connection hit an internal error; only `tandem_conn_free` works.
    Poisoned = 8,
    /// The handshake has not completed: wait for `TANDEM_EVENT_KIND_CONNECTED`.
    NotConnected = 9,
    /// The connection is closed.
    Closed = 10,
    /// GOAWAY was sent or received: no new exchanges on this connection.
    GoingAway = 11,
    /// As many calls are open as the peer allows (or `max_outbound_calls`): wait for one to end.
    TooManyCalls = 12,
    /// As many streams are open as the peer allows (or `max_outbound_streams`).
    TooManyStreams = 13,
    /// The message is larger than the peer accepts or than the transmit buffer.
    TooLarge = 14,
    /// The transmit buffer is full: send what `tandem_conn_poll_transmit` gives, then retry.
    TxFull = 15,
    /// The stream has no credit for this item: wait for `TANDEM_EVENT_KIND_STREAM_WRITABLE`.
    NoCredit = 16,
    /// No open exchange has this id (it finished, or was never opened).
    UnknownId = 17,
    /// The operation does not fit the exchange's state (responding to one of our own calls,
    /// sending on a stream after finishing it, ...).
    WrongState = 18,
    /// This side has used every exchange id: open a new connection.
    IdsExhausted = 19,
    /// A message (GOAWAY or CLOSE reason) is longer than 1024 bytes.
    FieldTooLong = 20,
    /// Requests kept for retransmission fill their limit (datagram mode, resumable sessions).
    RetainFull = 21,
    /// Datagram mode: the id window is full; wait for the oldest exchange to be answered.
    WindowFull = 22,
}

impl From<ApiError> for TandemResult {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotConnected => TandemResult::NotConnected,
            ApiError::Closed => TandemResult::Closed,
            ApiError::GoingAway => TandemResult::GoingAway,
            ApiError::TooManyCalls { .. } => TandemResult::TooManyCalls,
            ApiError::TooManyStreams { .. } => TandemResult::TooManyStreams,
            ApiError::TooLarge { .. } => TandemResult::TooLarge,
            ApiError::TxFull => TandemResult::TxFull,
            ApiError::NoCredit => TandemResult::NoCredit,
            ApiError::UnknownId(_) => TandemResult::UnknownId,
            ApiError::WrongState(_) => TandemResult::WrongState,
            ApiError::IdsExhausted => TandemResult::IdsExhausted,
            ApiError::FieldTooLong(_) => TandemResult::FieldTooLong,
            ApiError::RetainFull { .. } => TandemResult::RetainFull,
            ApiError::Unsupported(_) => TandemResult::Unsupported,
            ApiError::WindowFull { .. } => TandemResult::WindowFull,
        }
    }
}

impl TandemResult {
    /// Every code, in numeric order (for tests).
    pub const ALL: [TandemResult; 23] = [
        TandemResult::Ok,
        TandemResult::NullPointer,
        TandemResult::BadHandle,
        TandemResult::InvalidArgument,
        TandemResult::InvalidConfig,
        TandemResult::BufferTooSmall,
        TandemResult::Unsupported,
        TandemResult::Panicked,
        TandemResult::Poisoned,
        TandemResult::NotConnected,
        TandemResult::Closed,
        TandemResult::GoingAway,
        TandemResult::TooManyCalls,
        TandemResult::TooManyStreams,
        TandemResult::TooLarge,
        TandemResult::TxFull,
        TandemResult::NoCredit,
        TandemResult::UnknownId,
        TandemResult::WrongState,
        TandemResult::IdsExhausted,
        TandemResult::FieldTooLong,
        TandemResult::RetainFull,
        TandemResult::WindowFull,
    ];

    /// A sentence saying what happened and what to do, NUL-terminated.
    pub(crate) fn message(self) -> &'static core::ffi::CStr {
        match self {
            TandemResult::Ok => c"success",
            TandemResult::NullPointer => c"a required pointer argument was NULL (or a payload pointer was NULL with a non-zero length)",
            TandemResult::BadHandle => c"not a live connection: pass the pointer tandem_conn_init returned, and do not use it after tandem_conn_free",
            TandemResult::InvalidArgument => c"an argument is out of range (unknown role, transport or constant, a length above PTRDIFF_MAX, or a commit larger than the buffer offered)",
            TandemResult::InvalidConfig => c"invalid configuration: tandem_config_check names the field and what it must be",
            TandemResult::BufferTooSmall => c"the memory is smaller than tandem_conn_memory_size says this configuration needs",
            TandemResult::Unsupported => c"not supported by this build",
            TandemResult::Panicked => c"internal error in the tandem library (a bug, please report it); the connection is poisoned: free it",
            TandemResult::Poisoned => c"the connection hit an internal error earlier and is unusable: free it with tandem_conn_free",
            TandemResult::NotConnected => c"the handshake has not completed: wait for TANDEM_EVENT_KIND_CONNECTED",
            TandemResult::Closed => c"the connection is closed",
            TandemResult::GoingAway => c"GOAWAY was sent or received: no new exchanges on this connection; open a new one",
            TandemResult::TooManyCalls => c"as many calls are open as the peer (or max_outbound_calls) allows: wait for one to finish",
            TandemResult::TooManyStreams => c"as many streams are open as the peer (or max_outbound_streams) allows: wait for one to finish",
            TandemResult::TooLarge => c"the message is larger than the peer's max_message_size, its stream credit, one frame for a signal, or the transmit buffer",
            TandemResult::TxFull => c"the transmit buffer is full: send what tandem_conn_poll_transmit returns, then retry",
            TandemResult::NoCredit => c"the stream has no credit for this item: wait for TANDEM_EVENT_KIND_STREAM_WRITABLE",
            TandemResult::UnknownId => c"no open exchange has this id (it finished, or was never opened)",
            TandemResult::WrongState => c"the operation does not fit the exchange's state (e.g. responding to our own call, sending after finishing)",
            TandemResult::IdsExhausted => c"this side has used every exchange id: open a new connection",
            TandemResult::FieldTooLong => c"a reason message is longer than 1024 bytes",
            TandemResult::RetainFull => c"requests kept for retransmission fill max_retained_bytes: wait for answers",
            TandemResult::WindowFull => c"datagram mode: the id window is full; wait for the oldest exchange to be answered",
        }
    }
}

/// Connection configuration. Fill it with `tandem_config_default`, then change fields.
///
/// Every size here also sizes the memory `tandem_conn_memory_size` asks for: the receive buffer
/// holds one frame (`max_frame_size` + 9 bytes, at least `max_datagram` on a packet transport),
/// the reassembly buffer one message (`max_message_size`), the transmit queue
/// `max_tx_buffer` bytes, and the exchange table one slot per exchange that can
/// be open at once (the sum of the four concurrency limits).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TandemConfig {
    /// `TANDEM_TRANSPORT_STREAM` (TCP, Unix stream), `TANDEM_TRANSPORT_PACKET` (Unix SEQPACKET:
    /// one datagram per read and per `tandem_conn_poll_transmit`) or `TANDEM_TRANSPORT_DATAGRAM`
    /// (UDP, a serial line through `tandem_serial_*`).
    pub transport: u32,
    /// Packet and datagram transports: the largest datagram sent and accepted (at least 1200).
    /// Ignored on a byte stream. Default 8192.
    pub max_datagram: u32,
    /// Announced: the largest frame body accepted (4096 ..= 16777216). Default 4096.
    pub max_frame_size: u32,
    /// Announced: the largest message accepted after reassembly (at least 4096). Default 16384.
    pub max_message_size: u32,
    /// Announced: calls and reliable notifications the peer may have open toward us. Default 8.
    pub max_concurrent_calls: u32,
    /// Announced: streams the peer may have open toward us. Default 0 (none).
    pub max_concurrent_streams: u32,
    /// Local: our own calls and notifications open at once. Default 8.
    pub max_outbound_calls: u32,
    /// Local: our own streams open at once. Default 0 (none).
    pub max_outbound_streams: u32,
    /// Local: bytes queued for sending before actions return `TANDEM_RESULT_TX_FULL` (at least
    /// `max_frame_size` or 8192, whichever is smaller). Default 16384.
    pub max_tx_buffer: u32,
    /// Announced: initial per-stream message credit we grant (at least 1). Default 4.
    pub stream_credit_msgs: u32,
    /// Announced: initial per-stream byte credit we grant (at least 1); also the largest stream
    /// item the peer can send us. Default 4096.
    pub stream_credit_bytes: u32,
    /// Announced: connection-wide stream byte credit (at least `stream_credit_bytes`).
    /// Default 16384.
    pub conn_credit_bytes: u32,
    /// Announced and local: PING after this many milliseconds without input (0: never).
    /// Default 10000.
    pub keepalive_interval_ms: u32,
    /// Announced and local: close with IDLE_TIMEOUT after this many milliseconds without input
    /// (0: never). Default 30000.
    pub idle_timeout_ms: u32,
    /// Local: the handshake must complete within this many milliseconds. Default 10000.
    pub handshake_timeout_ms: u32,
    /// Local: after GOAWAY, exchanges in flight must finish within this many milliseconds.
    /// Default 30000.
    pub drain_timeout_ms: u32,
    /// Local: frames per second that do nothing for the application before the peer is closed
    /// with ENHANCE_YOUR_CALM (SPEC.md §12.5; 0 disables the check). Default 10000.
    pub max_unproductive_frames: u32,
    /// Datagram mode, announced: answers kept to resend to a retransmitted request (SPEC.md
    /// §14.5). Default 32.
    pub reply_cache_entries: u32,
    /// Datagram mode, announced: bytes of those answers. Default 8192.
    pub reply_cache_bytes: u32,
    /// Datagram mode, local: bytes of our own requests kept for retransmission until answered
    /// (beyond it calls return `TANDEM_RESULT_RETAIN_FULL`). Default 8192.
    pub max_retained_bytes: u32,
    /// Announced: optional features, a mask of `TANDEM_FEATURE_*`. Default both.
    pub features: u64,
    /// This peer's name, announced in HELLO (at most 255 bytes; may be NULL when `name_len` is
    /// 0). Copied by `tandem_conn_init`: it need not outlive that call.
    pub name: *const u8,
    /// Length of `name` in bytes.
    pub name_len: usize,
    /// Opaque authentication bytes for the peer (at most 1024; may be NULL when `auth_len` is
    /// 0). Copied by `tandem_conn_init`.
    pub auth: *const u8,
    /// Length of `auth` in bytes.
    pub auth_len: usize,
}

/// What `tandem_conn_poll_event` returned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TandemEventKind {
    /// Nothing to report until new input, a timeout, or an action.
    None = 0,
    /// The handshake completed; `tandem_conn_peer_name` names the peer.
    Connected = 1,
    /// The peer opened an exchange: `request_kind`, `id`, `module`, `method`, `deadline_ms`,
    /// `payload`. Answer a call or notification with `tandem_conn_respond` (exactly once).
    Request = 2,
    /// The peer sent an unreliable notification (SIGNAL): `module`, `method`, `payload`.
    Signal = 3,
    /// The peer answered our call or notification `id`: `status`, `payload`.
    Response = 4,
    /// Our call or notification `id` ended without an answer: `status` (DEADLINE_EXCEEDED, or
    /// UNAVAILABLE when the connection ended or the peer's GOAWAY excluded it).
    Failed = 5,
    /// The peer's exchange `id` was cancelled (`status`): stop working on it;
    /// `tandem_conn_respond` is still expected (its payload is dropped) and frees the slot.
    Cancelled = 6,
    /// One item of stream `id`: `payload`. Call `tandem_conn_stream_consumed` once taken.
    StreamData = 7,
    /// The peer finished its direction of stream `id` with `status`.
    StreamFin = 8,
    /// Stream `id` ended abruptly with `status`.
    StreamReset = 9,
    /// Stream `id`, which refused an item with `TANDEM_RESULT_NO_CREDIT`, has credit again.
    StreamWritable = 10,
    /// The peer accepts no new exchanges; ours with ids at or above `id` have failed.
    /// `status` is its reason.
    GoAway = 11,
    /// The connection ended (the last event): `status` and `blame` say why. Keep calling
    /// `tandem_conn_poll_transmit` until it returns 0 (a CLOSE frame may be queued), then
    /// `tandem_conn_is_finished` is true.
    Closed = 12,
    /// Acceptor, `resume` feature: a dialer asks to resume the session whose token is
    /// `payload` (`payload_len` bytes). Answer with `tandem_conn_resume_from` on the connection
    /// that holds that session (this one is then finished), or `tandem_conn_decline_resume` on
    /// this one for a new session (unknown or expired token).
    ResumeRequested = 13,
}

/// What kind of exchange a `TANDEM_EVENT_KIND_REQUEST` opened.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TandemRequestKind {
    /// Not a request event.
    NotARequest = 0,
    /// A unary call: answer with a status and a payload.
    Call = 1,
    /// A reliable notification: answer with a status (the payload is dropped).
    Notify = 2,
    /// A stream (both directions open).
    Stream = 3,
    /// A stream whose opener sends nothing beyond the initial payload.
    StreamHalfClosed = 4,
}

/// Who ended the connection (`TANDEM_EVENT_KIND_CLOSED`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TandemBlame {
    /// Not a closed event.
    None = 0,
    /// The peer sent bytes that do not decode as frames.
    PeerInvalidBytes = 1,
    /// The peer broke a protocol rule or an announced limit.
    PeerBrokeRule = 2,
    /// No common protocol version, or impossible limits.
    PeerIncompatible = 3,
    /// The peer closed the connection (its CLOSE says why: `status`).
    PeerClosed = 4,
    /// The transport ended (`tandem_conn_eof`) or a liveness timer fired.
    Transport = 5,
    /// This side closed it (`tandem_conn_close`).
    Local = 6,
}

/// One event from `tandem_conn_poll_event`. Which fields mean something depends on `kind`
/// (see `tandem_event_kind`); the others are 0, NULL or `UINT64_MAX`.
///
/// `payload` points into the connection's memory. It stays valid until the next call of
/// `tandem_conn_poll_event`, `tandem_conn_input`, `tandem_conn_recv_buffer`,
/// `tandem_conn_recv_commit`, `tandem_conn_eof`, `tandem_conn_handle_timeout` or
/// `tandem_conn_free` on this connection. The actions (`tandem_conn_respond`,
/// `tandem_conn_call`, ...) and `tandem_conn_poll_transmit` leave it intact, so a payload may be
/// passed straight back to them (an echo responds with the request's own bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TandemEvent {
    /// What happened.
    pub kind: TandemEventKind,
    /// `TANDEM_EVENT_KIND_REQUEST`: call, notification or stream.
    pub request_kind: TandemRequestKind,
    /// `TANDEM_EVENT_KIND_CLOSED`: who ended the connection.
    pub blame: TandemBlame,
    /// The exchange id (`GOAWAY`: the bound).
    pub id: u64,
    /// The addressed module (requests and signals).
    pub module: u32,
    /// The addressed method within the module (requests and signals).
    pub method: u32,
    /// The status (`TANDEM_STATUS_*`; unknown codes pass through unchanged).
    pub status: u32,
    /// Requests: when the peer's budget runs out, in milliseconds on the caller's clock
    /// (`UINT64_MAX`: no deadline).
    pub deadline_ms: u64,
    /// The payload (NULL when empty); see the struct's documentation for how long it lives.
    pub payload: *const u8,
    /// Length of `payload` in bytes.
    pub payload_len: usize,
}

impl TandemEvent {
    pub(crate) const NONE: TandemEvent = TandemEvent {
        kind: TandemEventKind::None,
        request_kind: TandemRequestKind::NotARequest,
        blame: TandemBlame::None,
        id: 0,
        module: 0,
        method: 0,
        status: 0,
        deadline_ms: u64::MAX,
        payload: core::ptr::null(),
        payload_len: 0,
    };
}

/// The connection's state (`tandem_conn_state`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TandemState {
    /// Waiting for the peer's HELLO.
    Handshake = 0,
    /// Connected: both sides may open exchanges.
    Open = 1,
    /// GOAWAY was sent or received: exchanges in flight finish, no new ones open.
    Draining = 2,
    /// The transport was lost in a resumable session (`tandem_conn_init_session`): waiting for
    /// a resumption.
    Suspended = 3,
    /// Closed: `TANDEM_EVENT_KIND_CLOSED` says why.
    Closed = 4,
}

/// Role: the side that opened the transport (sends HELLO first, uses even exchange ids).
pub const TANDEM_ROLE_DIALER: u32 = 0;
/// Role: the side that accepted the transport (answers HELLO, uses odd exchange ids).
pub const TANDEM_ROLE_ACCEPTOR: u32 = 1;

/// Transport: a byte stream (TCP, Unix stream socket): frames back to back.
pub const TANDEM_TRANSPORT_STREAM: u32 = 0;
/// Transport: reliable ordered packets (Unix SEQPACKET): whole frames in each datagram.
pub const TANDEM_TRANSPORT_PACKET: u32 = 1;
/// Transport: datagram mode over an unreliable datagram service (UDP, SPEC.md §14; a serial line
/// with `tandem_serial_*`, §14.9). Its reply cache and retained requests are in the connection's
/// memory too (`reply_cache_*`, `max_retained_bytes`).
pub const TANDEM_TRANSPORT_DATAGRAM: u32 = 2;

/// Feature bit: opening frames may carry the method's schema key (SPEC.md §7.10).
pub const TANDEM_FEATURE_SCHEMA_KEYS: u64 = 1;
/// Feature bit: a non-OK response may carry a status body: a message and details (SPEC.md §8.7).
pub const TANDEM_FEATURE_ERROR_DETAILS: u64 = 2;

/// `deadline_ms` / `tandem_conn_poll_timeout`: no deadline.
pub const TANDEM_NO_DEADLINE: u64 = u64::MAX;
