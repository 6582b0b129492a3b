//! Counters a runtime can export. Plain integers updated inline: always on, nothing to enable.

use core::time::Duration;

/// Per-connection counters (see [`Connection::stats`](crate::Connection::stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames queued for transmission.
    pub frames_sent: u64,
    /// Frames received and processed.
    pub frames_received: u64,
    /// Bytes handed to the transport by `poll_transmit`.
    pub bytes_sent: u64,
    /// Bytes accepted from the transport.
    pub bytes_received: u64,
    /// Calls and reliable notifications we opened, in total.
    pub calls_opened: u64,
    /// Calls and reliable notifications the peer opened, in total.
    pub calls_accepted: u64,
    /// Streams opened by either side, in total.
    pub streams_opened: u64,
    /// Our calls and reliable notifications open now.
    pub calls_open_outbound: u32,
    /// The peer's calls and reliable notifications open now.
    pub calls_open_inbound: u32,
    /// Our streams open now.
    pub streams_open_outbound: u32,
    /// The peer's streams open now.
    pub streams_open_inbound: u32,
    /// Times a stream item was refused for lack of credit.
    pub credit_stalls: u64,
    /// Protocol errors detected in the peer's input.
    pub protocol_errors: u64,
    /// PINGs sent.
    pub pings_sent: u64,
    /// Latest round-trip time measured by PING/PONG.
    pub rtt: Option<Duration>,
    /// Smoothed round-trip time (RFC 6298 weights).
    pub srtt: Option<Duration>,
    /// Times the session lost its transport and was suspended (SPEC.md §13.2).
    pub suspensions: u64,
    /// Times the session was resumed on a new transport.
    pub resumptions: u64,
    /// Frames retransmitted: openings after a resumption, stream items after STREAM_RESUME
    /// (SPEC.md §13.5, §13.7); in datagram mode HELLO, CALL, NOTIFY and CANCEL (§14.4).
    pub retransmissions: u64,
    /// Retransmitted openings received after a resumption (answered without running the
    /// handler again).
    pub retransmissions_received: u64,
    /// Datagram mode: datagrams dropped whole (decode error, oversize, or before the peer's
    /// HELLO; SPEC.md §14.2–§14.3).
    pub datagrams_dropped: u64,
    /// Answers dropped from the reply cache before the caller acknowledged them (its bounds, or
    /// the local session memory budget; SPEC.md §13.6): a retransmission of one is answered
    /// REPLY_EVICTED.
    pub replies_evicted: u64,
    /// Answers kept in the reply cache now, until the caller acknowledges them (SPEC.md §13.6).
    pub replies_cached: u32,
}
