//! Configuration: every limit the connection enforces or announces, with its default.
//!
//! The "announced" limits travel in HELLO (SPEC.md §5.4) and bind the *peer*; the "local" ones
//! bound this side's own memory and timers. Defaults are the `DEFAULT_*` constants.

use core::time::Duration;

/// Which side of the transport this connection is (SPEC.md §5, §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Opened the transport; sends HELLO first; uses even exchange ids.
    Dialer,
    /// Accepted the transport; answers HELLO; uses odd exchange ids.
    Acceptor,
}

/// How the transport delimits bytes (SPEC.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A byte stream (TCP, Unix stream socket): frames back to back.
    Stream,
    /// A reliable, ordered packet transport (Unix SEQPACKET): whole frames per packet, at most
    /// `max_datagram` bytes each.
    Packet {
        /// Largest packet this side sends and accepts.
        max_datagram: u32,
    },
    /// Datagram mode (SPEC.md §14): an unreliable, unordered datagram service such as UDP, one
    /// association per `Connection`. Needs the `datagram` feature (implied by `alloc` and
    /// `serial`); without `alloc`, build the connection with
    /// [`Connection::with_datagram_storage`](crate::Connection::with_datagram_storage), which
    /// takes the reply cache and the retained requests in caller buffers.
    Datagram {
        /// Largest datagram this side accepts (announced as parameter 10); at least
        /// [`DEFAULT_MAX_DATAGRAM`] (1200).
        max_datagram: u32,
    },
}

/// Default and smallest `max_datagram` in datagram mode (SPEC.md §14.2): 1200 bytes.
pub const DEFAULT_MAX_DATAGRAM: u32 = 1200;

/// Whether this build of the core has streams (its `streams` feature, on by default). Without
/// them the peer announces `max_concurrent_streams` = 0, refuses every STREAM_OPEN with
/// STREAM_RESET(UNIMPLEMENTED) and `open_stream` returns
/// [`ApiError::Unsupported`](crate::ApiError::Unsupported) (SPEC.md §7.4.7).
pub const STREAMS: bool = cfg!(feature = "streams");

/// Whether this build of the core fragments and reassembles messages larger than a frame (its
/// `fragmentation` feature, on by default; SPEC.md §9). Without it every message must fit one
/// frame: on a byte-stream or packet transport [`Config::validate`] requires
/// `max_message_size` + [`UNFRAGMENTED_HEADROOM`] ≤ the frame limit, and a fragmented message
/// received is LIMIT_EXCEEDED (SPEC.md §9.7).
pub const FRAGMENTATION: bool = cfg!(feature = "fragmentation");

/// The headroom (bytes) between `max_message_size` and the frame limit that a peer without
/// fragmentation announces, so that every message it accepts fits one frame with the largest
/// message header (41 bytes: a keyed CALL with an 8-byte id, module, method and deadline).
/// A sender never fragments toward such a peer (SPEC.md §9.7).
pub const UNFRAGMENTED_HEADROOM: u32 = 64;

/// HELLO parameter ids (SPEC.md §5.4).
pub mod param {
    /// Largest frame body accepted.
    pub const MAX_FRAME_SIZE: u64 = 1;
    /// Largest message accepted (after reassembly).
    pub const MAX_MESSAGE_SIZE: u64 = 2;
    /// Inbound calls and reliable notifications open at once.
    pub const MAX_CONCURRENT_CALLS: u64 = 3;
    /// Inbound streams open at once.
    pub const MAX_CONCURRENT_STREAMS: u64 = 4;
    /// Initial per-stream message credit granted to the peer.
    pub const STREAM_CREDIT_MSGS: u64 = 5;
    /// Initial per-stream byte credit granted to the peer.
    pub const STREAM_CREDIT_BYTES: u64 = 6;
    /// Initial connection-wide stream byte credit granted to the peer.
    pub const CONN_CREDIT_BYTES: u64 = 7;
    /// Keepalive interval in milliseconds (0 = none).
    pub const KEEPALIVE_INTERVAL_MS: u64 = 8;
    /// Idle timeout in milliseconds (0 = none).
    pub const IDLE_TIMEOUT_MS: u64 = 9;
    /// Largest datagram accepted (0 = byte stream).
    pub const MAX_DATAGRAM_SIZE: u64 = 10;
    /// Resumption: reply cache entries kept for the peer.
    pub const REPLY_CACHE_ENTRIES: u64 = 11;
    /// Resumption: reply cache bytes kept for the peer.
    pub const REPLY_CACHE_BYTES: u64 = 12;
    /// Optional features the sender supports (a bit mask, [`Features`](super::Features)).
    pub const FEATURES: u64 = 13;
}

/// Optional protocol features, announced as a bit mask in HELLO parameter 13 (SPEC.md §5.8). A
/// peer uses a feature toward the other only when both announced it
/// ([`Connection::features`](crate::Connection::features)); unknown bits are ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Features(pub u64);

impl Features {
    /// No optional feature: exactly the behaviour of a peer that does not know parameter 13.
    pub const NONE: Features = Features(0);
    /// Bit 0: opening frames may carry the method's schema key (SPEC.md §7.10).
    pub const SCHEMA_KEYS: Features = Features(1);
    /// Bit 1: a non-OK RESPONSE may carry a status body: a message and details (SPEC.md §8.7).
    pub const ERROR_DETAILS: Features = Features(2);
    /// Every feature this build implements.
    pub const ALL: Features = Features(Self::SCHEMA_KEYS.0 | Self::ERROR_DETAILS.0);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Features) -> bool {
        self.0 & other.0 == other.0
    }

    /// The features both sets have.
    pub const fn intersect(self, other: Features) -> Features {
        Features(self.0 & other.0)
    }
}

impl core::ops::BitOr for Features {
    type Output = Features;
    fn bitor(self, rhs: Features) -> Features {
        Features(self.0 | rhs.0)
    }
}

impl core::fmt::Debug for Features {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut l = f.debug_set();
        if self.contains(Features::SCHEMA_KEYS) {
            l.entry(&"schema_keys");
        }
        if self.contains(Features::ERROR_DETAILS) {
            l.entry(&"error_details");
        }
        let other = self.0 & !Features::ALL.0;
        if other != 0 {
            l.entry(&format_args!("{other:#x}"));
        }
        l.finish()
    }
}

/// Smallest legal `max_frame_size` (also the limit before the handshake completes).
pub const MIN_FRAME_SIZE: u32 = 4096;
/// Largest legal `max_frame_size`: 16 MiB.
pub const MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;
/// Smallest legal `max_message_size`.
pub const MIN_MESSAGE_SIZE: u32 = 4096;
/// Largest credit window (messages or bytes): 2^32 - 1.
pub const MAX_CREDIT: u64 = u32::MAX as u64;
/// The protocol version this implementation speaks.
pub const VERSION: u32 = 1;

/// Default `max_frame_size`: 64 KiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 64 * 1024;
/// Default `max_message_size`: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 4 * 1024 * 1024;
/// Default `max_concurrent_calls` (inbound).
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 100;
/// Default `max_concurrent_streams` (inbound).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Default initial per-stream message credit.
pub const DEFAULT_STREAM_CREDIT_MSGS: u32 = 64;
/// Default initial per-stream byte credit: 256 KiB.
pub const DEFAULT_STREAM_CREDIT_BYTES: u32 = 256 * 1024;
/// Default initial connection-wide byte credit: 1 MiB.
pub const DEFAULT_CONN_CREDIT_BYTES: u32 = 1024 * 1024;
/// Default keepalive interval: 10 s.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// Default idle timeout: 30 s (quinn uses 30 s; hyper/tonic keepalive timeout 20 s).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default handshake timeout: 10 s.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default drain timeout after GOAWAY: 30 s.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on our own outbound calls open at once (also bounded by the peer's limit).
pub const DEFAULT_MAX_OUTBOUND_CALLS: u32 = 256;
/// Default cap on our own outbound streams open at once (also bounded by the peer's limit).
pub const DEFAULT_MAX_OUTBOUND_STREAMS: u32 = 100;
/// Default cap on bytes queued for transmission: 8 MiB.
pub const DEFAULT_MAX_TX_BUFFER: u32 = 8 * 1024 * 1024;
/// Default `max_unproductive_frames`: 10,000 per second (a burst of as many is allowed).
pub const DEFAULT_MAX_UNPRODUCTIVE_FRAMES: u32 = 10_000;
/// Default `suspended_call_timeout`: 10 s.
pub const DEFAULT_SUSPENDED_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `reply_cache_entries`: 1024 answers kept for the peer (resumption, datagram mode).
pub const DEFAULT_REPLY_CACHE_ENTRIES: u32 = 1024;
/// Default `reply_cache_bytes`: 4 MiB of answers kept for the peer.
pub const DEFAULT_REPLY_CACHE_BYTES: u32 = 4 * 1024 * 1024;
/// Default grace period of a session whose transport was lost: 30 s.
pub const DEFAULT_SESSION_GRACE: Duration = Duration::from_secs(30);
/// Default cap on request bytes kept for retransmission (resumption, datagram mode): 8 MiB.
pub const DEFAULT_MAX_RETAINED_BYTES: u32 = 8 * 1024 * 1024;

/// Connection configuration. Build with [`Config::default`] and adjust fields.
///
/// Validation happens in the connection constructor; an invalid value gives a
/// [`ConfigError`] naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Announced: largest frame body we accept (4 KiB ..= 16 MiB). Default 64 KiB.
    pub max_frame_size: u32,
    /// Announced: largest message (after reassembly) we accept. Default 4 MiB. Without the
    /// `fragmentation` feature at most the frame limit − [`UNFRAGMENTED_HEADROOM`] (SPEC.md §9.7).
    pub max_message_size: u32,
    /// Announced: calls + reliable notifications the peer may have open toward us. Default 100.
    pub max_concurrent_calls: u32,
    /// Announced: streams the peer may have open toward us. Default 100. Announced as 0 in
    /// datagram mode and without the `streams` feature, whatever its value.
    pub max_concurrent_streams: u32,
    /// Announced: initial per-stream message credit we grant (≥ 1). Default 64.
    pub stream_credit_msgs: u32,
    /// Announced: initial per-stream byte credit we grant (≥ 1). Default 256 KiB. Also the
    /// largest stream item the peer can send us.
    pub stream_credit_bytes: u32,
    /// Announced: initial connection-wide stream byte credit (≥ `stream_credit_bytes`). Default 1 MiB.
    pub conn_credit_bytes: u32,
    /// Announced and local: we send PING after this long without receiving anything
    /// (zero disables). Default 10 s.
    pub keepalive_interval: Duration,
    /// Announced and local: we close with IDLE_TIMEOUT after this long without receiving
    /// anything (zero disables). Default 30 s.
    pub idle_timeout: Duration,
    /// Local: the handshake must complete within this time. Default 10 s.
    pub handshake_timeout: Duration,
    /// Local: after GOAWAY, in-flight work must finish within this time. Default 30 s.
    pub drain_timeout: Duration,
    /// Acceptor, local: hold our HELLO until the application has decided on the dialer's
    /// credentials ([`Event::AuthRequested`](crate::Event::AuthRequested), then
    /// [`Connection::accept_peer`](crate::Connection::accept_peer) or
    /// [`Connection::close`](crate::Connection::close) with UNAUTHENTICATED or
    /// PERMISSION_DENIED), so that a refused peer gets nothing but CLOSE (SPEC.md §5.6). The
    /// handshake timeout keeps running meanwhile. A resuming HELLO already waits for the
    /// application ([`Event::ResumeRequested`](crate::Event::ResumeRequested)). Default false:
    /// the HELLO goes out at once and the peer is unauthenticated.
    pub authenticate: bool,
    /// Local: frames per second that do nothing for the application — PING, a PONG that answers
    /// nothing, extension frames, STREAM_CREDIT/CONN_CREDIT of zero, empty CONTINUATION — before
    /// the peer is closed with ENHANCE_YOUR_CALM (SPEC.md §12.5; a tiny-frame flood costs CPU
    /// and nothing else). A token bucket: bursts up to this many, refilled at this rate.
    /// Default 10,000; 0 disables the check.
    pub max_unproductive_frames: u32,
    /// Local: our own calls open at once. Default 256.
    pub max_outbound_calls: u32,
    /// Local: our own streams open at once. Default 100.
    pub max_outbound_streams: u32,
    /// Local: bytes queued for transmission before API calls return
    /// [`ApiError::TxFull`](crate::ApiError::TxFull). Default 8 MiB.
    pub max_tx_buffer: u32,
    /// Announced: answers we keep for the peer in a resumable session or datagram mode, so a
    /// retransmitted request is answered without running its handler again (SPEC.md §13.6).
    /// Default 1024; 0 keeps none.
    pub reply_cache_entries: u32,
    /// Announced: payload bytes of those answers. Default 4 MiB.
    pub reply_cache_bytes: u32,
    /// Local: how long a resumable session survives the loss of its transport, waiting for the
    /// dialer to resume it (SPEC.md §13.2). Default 30 s.
    pub session_grace: Duration,
    /// Local: how long one of our calls, notifications or streams may wait on a suspended
    /// session (SPEC.md §13.2) before it fails UNAVAILABLE, counted from the suspension (or from
    /// its opening, if opened while suspended). The session itself lives on for
    /// `session_grace`; a call given up this way is cancelled after the resumption and ran at
    /// most once (§13.5). Zero: wait for the whole grace period. Default 10 s.
    pub suspended_call_timeout: Duration,
    /// Local: request bytes we keep for retransmission until answered (resumable sessions and
    /// datagram mode); beyond it new requests are refused with
    /// [`ApiError::TxFull`](crate::ApiError::TxFull). Default 8 MiB.
    pub max_retained_bytes: u32,
    /// Announced: the optional features this side supports (HELLO parameter 13, SPEC.md §5.8):
    /// schema keys on opening frames (§7.10) and status bodies on failed responses (§8.7).
    /// Each is used only when both peers announce it. Default [`Features::ALL`];
    /// [`Features::NONE`] behaves exactly as a peer that predates them.
    pub features: Features,
    /// The transport's framing.
    pub transport: Transport,
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

impl Config {
    /// Every default, as a constant: what [`Config::default`] returns, usable in `const` items
    /// (`const CONFIG: Config = Config { max_frame_size: 4096, ..Config::DEFAULT };`), so that
    /// firmware can size its [`Storage`](crate::Storage) at compile time from the same
    /// configuration ([`Storage::rx_len`](crate::Storage::rx_len) and the others).
    pub const DEFAULT: Config = Config {
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
        max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
        stream_credit_msgs: DEFAULT_STREAM_CREDIT_MSGS,
        stream_credit_bytes: DEFAULT_STREAM_CREDIT_BYTES,
        conn_credit_bytes: DEFAULT_CONN_CREDIT_BYTES,
        keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        drain_timeout: DEFAULT_DRAIN_TIMEOUT,
        max_unproductive_frames: DEFAULT_MAX_UNPRODUCTIVE_FRAMES,
        authenticate: false,
        max_outbound_calls: DEFAULT_MAX_OUTBOUND_CALLS,
        max_outbound_streams: DEFAULT_MAX_OUTBOUND_STREAMS,
        max_tx_buffer: DEFAULT_MAX_TX_BUFFER,
        reply_cache_entries: DEFAULT_REPLY_CACHE_ENTRIES,
        reply_cache_bytes: DEFAULT_REPLY_CACHE_BYTES,
        session_grace: DEFAULT_SESSION_GRACE,
        suspended_call_timeout: DEFAULT_SUSPENDED_CALL_TIMEOUT,
        max_retained_bytes: DEFAULT_MAX_RETAINED_BYTES,
        features: Features::ALL,
        transport: Transport::Stream,
    };
}

/// A configuration value is out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What the field must satisfy.
    pub requirement: &'static str,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "invalid config: `{}` must be {}", self.field, self.requirement)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Config {
    /// Checks every field against its legal range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, requirement| Err(ConfigError { field, requirement });
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&self.max_frame_size) {
            return err("max_frame_size", "between 4096 and 16777216");
        }
        if self.max_message_size < MIN_MESSAGE_SIZE {
            return err("max_message_size", "at least 4096");
        }
        if self.stream_credit_msgs == 0 {
            return err("stream_credit_msgs", "at least 1");
        }
        if self.stream_credit_bytes == 0 {
            return err("stream_credit_bytes", "at least 1");
        }
        if self.conn_credit_bytes < self.stream_credit_bytes {
            return err("conn_credit_bytes", "at least stream_credit_bytes");
        }
        if self.max_tx_buffer < self.max_frame_size.min(MIN_FRAME_SIZE * 2) {
            return err("max_tx_buffer", "at least max_frame_size or 8192 bytes, whichever is smaller");
        }
        if let Transport::Packet { max_datagram } = self.transport {
            if max_datagram < 1200 {
                return err("transport.max_datagram", "at least 1200 bytes");
            }
        }
        // --- without fragmentation every message fits one frame (SPEC.md §9.7)
        if !FRAGMENTATION {
            let frame = match self.transport {
                Transport::Stream => Some(self.max_frame_size),
                Transport::Packet { max_datagram } => Some(
                    self.max_frame_size.min(max_datagram.saturating_sub(crate::frame::MAX_HEADER_LEN as u32)),
                ),
                // Datagram mode never fragments (SPEC.md §14.7).
                Transport::Datagram { .. } => None,
            };
            if frame.is_some_and(|f| {
                u64::from(self.max_message_size) + u64::from(UNFRAGMENTED_HEADROOM) > u64::from(f)
            }) {
                return err(
                    "max_message_size",
                    "at most max_frame_size - 64 (and max_datagram - 73 on a packet transport): tandem-core is built without its `fragmentation` feature, so every message must fit one frame; lower max_message_size, raise max_frame_size, or enable the feature",
                );
            }
        }
        // --- datagram mode (SPEC.md §14)
        if let Transport::Datagram { max_datagram } = self.transport {
            if !cfg!(feature = "datagram") {
                return err(
                    "transport",
                    "Transport::Datagram needs tandem-core's `datagram` feature (or `serial`, or `alloc`)",
                );
            }
            if max_datagram < DEFAULT_MAX_DATAGRAM {
                return err("transport.max_datagram", "at least 1200 bytes");
            }
        }
        Ok(())
    }

    /// The HELLO parameters this configuration announces, in id order.
    pub fn params(&self) -> [(u64, u64); 10] {
        let dgram = match self.transport {
            Transport::Stream => 0,
            Transport::Packet { max_datagram } | Transport::Datagram { max_datagram } => max_datagram.into(),
        };
        // SPEC.md §14.7: no streams over UDP; §7.4.7: none in a build without streams.
        let streams = match self.transport {
            Transport::Datagram { .. } => 0,
            _ if !STREAMS => 0,
            _ => self.max_concurrent_streams,
        };
        [
            (param::MAX_FRAME_SIZE, self.max_frame_size.into()),
            (param::MAX_MESSAGE_SIZE, self.max_message_size.into()),
            (param::MAX_CONCURRENT_CALLS, self.max_concurrent_calls.into()),
            (param::MAX_CONCURRENT_STREAMS, streams.into()),
            (param::STREAM_CREDIT_MSGS, self.stream_credit_msgs.into()),
            (param::STREAM_CREDIT_BYTES, self.stream_credit_bytes.into()),
            (param::CONN_CREDIT_BYTES, self.conn_credit_bytes.into()),
            (param::KEEPALIVE_INTERVAL_MS, ms(self.keepalive_interval)),
            (param::IDLE_TIMEOUT_MS, ms(self.idle_timeout)),
            (param::MAX_DATAGRAM_SIZE, dgram),
        ]
    }

    /// Every parameter this configuration announces in HELLO, in id order: 1–10 always, the
    /// reply-cache parameters 11–12 when they differ from their defaults, and `features` (13)
    /// when not empty. Returns the array and how many entries are used.
    pub fn hello_params(&self) -> ([(u64, u64); 13], usize) {
        let mut out = [(0, 0); 13];
        out[..10].copy_from_slice(&self.params());
        let mut n = 10;
        if self.reply_cache_entries != DEFAULT_REPLY_CACHE_ENTRIES
            || self.reply_cache_bytes != DEFAULT_REPLY_CACHE_BYTES
        {
            out[10] = (param::REPLY_CACHE_ENTRIES, self.reply_cache_entries.into());
            out[11] = (param::REPLY_CACHE_BYTES, self.reply_cache_bytes.into());
            n = 12;
        }
        if self.features != Features::NONE {
            out[n] = (param::FEATURES, self.features.0);
            n += 1;
        }
        (out, n)
    }
}

/// The limits a peer announced in its HELLO, with defaults filled in for absent parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// Largest frame body the peer accepts.
    pub max_frame_size: u32,
    /// Largest message the peer accepts.
    pub max_message_size: u32,
    /// Calls + reliable notifications we may have open toward the peer.
    pub max_concurrent_calls: u32,
    /// Streams we may have open toward the peer.
    pub max_concurrent_streams: u32,
    /// Initial per-stream message credit the peer grants us.
    pub stream_credit_msgs: u32,
    /// Initial per-stream byte credit the peer grants us.
    pub stream_credit_bytes: u32,
    /// Initial connection-wide byte credit the peer grants us.
    pub conn_credit_bytes: u32,
    /// The peer's keepalive interval in milliseconds (0 = none).
    pub keepalive_interval_ms: u64,
    /// The peer's idle timeout in milliseconds (0 = none).
    pub idle_timeout_ms: u64,
    /// The peer's largest datagram (0 = byte stream).
    pub max_datagram_size: u32,
    /// Answers the peer keeps for us (resumption, datagram mode).
    pub reply_cache_entries: u32,
    /// Payload bytes of those answers.
    pub reply_cache_bytes: u32,
    /// The optional features the peer announced (all bits, known or not; 0 when absent).
    pub features: Features,
}

impl Default for PeerLimits {
    fn default() -> Self {
        let c = Config::default();
        PeerLimits {
            max_frame_size: c.max_frame_size,
            max_message_size: c.max_message_size,
            max_concurrent_calls: c.max_concurrent_calls,
            max_concurrent_streams: c.max_concurrent_streams,
            stream_credit_msgs: c.stream_credit_msgs,
            stream_credit_bytes: c.stream_credit_bytes,
            conn_credit_bytes: c.conn_credit_bytes,
            keepalive_interval_ms: ms(c.keepalive_interval),
            idle_timeout_ms: ms(c.idle_timeout),
            max_datagram_size: 0,
            reply_cache_entries: c.reply_cache_entries,
            reply_cache_bytes: c.reply_cache_bytes,
            features: Features::NONE,
        }
    }
}

/// A HELLO parameter outside its legal range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter id.
    pub id: u64,
    /// Its value.
    pub value: u64,
}

impl PeerLimits {
    /// Reads announced limits from HELLO parameters. Unknown ids are ignored (SPEC.md §5.4).
    pub fn from_params(params: impl Iterator<Item = (u64, u64)>) -> Result<Self, ParamError> {
        let mut l = PeerLimits::default();
        for (id, value) in params {
            let bad = ParamError { id, value };
            let u32v = || u32::try_from(value).map_err(|_| bad);
            match id {
                param::MAX_FRAME_SIZE => {
                    l.max_frame_size = u32v()?;
                    if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&l.max_frame_size) {
                        return Err(bad);
                    }
                }
                param::MAX_MESSAGE_SIZE => {
                    l.max_message_size = u32v()?;
                    if l.max_message_size < MIN_MESSAGE_SIZE {
                        return Err(bad);
                    }
                }
                param::MAX_CONCURRENT_CALLS => l.max_concurrent_calls = u32v()?,
                param::MAX_CONCURRENT_STREAMS => l.max_concurrent_streams = u32v()?,
                param::STREAM_CREDIT_MSGS => {
                    l.stream_credit_msgs = u32v()?;
                    if value == 0 {
                        return Err(bad);
                    }
                }
                param::STREAM_CREDIT_BYTES => {
                    l.stream_credit_bytes = u32v()?;
                    if value == 0 {
                        return Err(bad);
                    }
                }
                param::CONN_CREDIT_BYTES => l.conn_credit_bytes = u32v()?,
                param::KEEPALIVE_INTERVAL_MS => l.keepalive_interval_ms = value,
                param::IDLE_TIMEOUT_MS => l.idle_timeout_ms = value,
                param::MAX_DATAGRAM_SIZE => {
                    l.max_datagram_size = u32v()?;
                    if value != 0 && value < 1200 {
                        return Err(bad);
                    }
                }
                param::REPLY_CACHE_ENTRIES => l.reply_cache_entries = u32v()?,
                param::REPLY_CACHE_BYTES => l.reply_cache_bytes = u32v()?,
                // Every value is legal: unknown bits are ignored (SPEC.md §5.8).
                param::FEATURES => l.features = Features(value),
                _ => {}
            }
        }
        if l.conn_credit_bytes < l.stream_credit_bytes {
            return Err(ParamError { id: param::CONN_CREDIT_BYTES, value: l.conn_credit_bytes.into() });
        }
        Ok(l)
    }
}
