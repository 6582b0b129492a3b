//! Every limit and every known attack, scripted frame by frame by a hostile raw peer.
//!
//! The peer is not a `Connection`: it builds frames with [`Frame::encode`], feeds them to one real
//! connection with `handle_input`, and decodes what comes back with [`Frame::decode`]. Each test
//! asserts the exact error (the `Closed` event), the exact CLOSE on the wire, and the size of the
//! connection's tables and buffers afterwards.

use super::pair::{ms, Ev, ECHO, SINK};
use crate::config::{param, MAX_FRAME_SIZE, MIN_FRAME_SIZE};
use crate::frame::{flags, ty, DecodeError, Decoded, Frame, Hello, Params, Request, MAGIC};
use crate::{
    ApiError, Config, Connection, ConnectionError, Identity, Instant, MethodId, RequestKind, Role, State,
    Status,
};
use std::vec::Vec;

pub(super) const T0: Instant = Instant::from_millis(1_000);

// ---------------------------------------------------------------------------- frame builders

/// One frame, encoded.
pub(super) fn enc(f: &Frame<'_>) -> Vec<u8> {
    let mut v = vec![0u8; f.encoded_len()];
    assert_eq!(f.encode(&mut v), Some(v.len()));
    v
}

/// Concatenation of encoded frames.
pub(super) fn cat(frames: &[Frame<'_>]) -> Vec<u8> {
    frames.iter().flat_map(enc).collect()
}

/// A HELLO with the given version range, flags and parameters.
pub(super) fn hello_full(min: u32, max: u32, fl: u64, params: &[(u64, u64)]) -> Vec<u8> {
    hello_session(min, max, fl, b"", params)
}

/// A HELLO with a session token.
pub(super) fn hello_session(min: u32, max: u32, fl: u64, session: &[u8], params: &[(u64, u64)]) -> Vec<u8> {
    let mut pbuf = [0u8; 1024];
    let params = Params::encode_into(params, &mut pbuf).expect("encodable params");
    enc(&Frame::Hello(Hello {
        min_version: min,
        max_version: max,
        flags: fl,
        name: b"mallory",
        auth: b"",
        session,
        params,
    }))
}

/// A v1 HELLO with `params`.
pub(super) fn hello(params: &[(u64, u64)]) -> Vec<u8> {
    hello_full(1, 1, 0, params)
}

pub(super) fn req(fl: u8, id: u64, total_len: Option<u64>, payload: &[u8]) -> Request<'_> {
    Request { flags: fl, id, module: ECHO.module, method: ECHO.method, budget_us: 0, total_len, payload }
}

pub(super) fn call(id: u64, payload: &[u8]) -> Frame<'_> {
    Frame::Call(req(0, id, None, payload))
}

fn notify(id: u64, payload: &[u8]) -> Frame<'_> {
    Frame::Notify(req(0, id, None, payload))
}

pub(super) fn open(id: u64, fin: bool) -> Frame<'static> {
    Frame::StreamOpen(req(if fin { flags::FIN } else { 0 }, id, None, b""))
}

pub(super) fn data(id: u64, payload: &[u8]) -> Frame<'_> {
    Frame::StreamData { flags: 0, id, total_len: None, payload }
}

fn response(id: u64, status: Status, payload: &[u8]) -> Frame<'_> {
    Frame::Response { flags: 0, id, status, total_len: None, payload }
}

fn cont(more: bool, id: u64, payload: &[u8]) -> Frame<'_> {
    Frame::Continuation { flags: if more { flags::MORE } else { 0 }, id, payload }
}

/// Decodes a byte stream the connection transmitted into frames; it must consist of whole,
/// valid frames.
pub(super) fn frames(mut bytes: &[u8]) -> Vec<Frame<'_>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match Frame::decode(bytes, MAX_FRAME_SIZE as usize) {
            Ok(Decoded::Frame(f, n)) => {
                out.push(f);
                bytes = &bytes[n..];
            }
            other => panic!("connection transmitted an invalid or partial frame: {other:?}"),
        }
    }
    out
}

// ---------------------------------------------------------------------------- the hostile peer

/// One real connection and a scripted peer.
pub(super) struct Hostile {
    pub(super) conn: Connection<'static>,
    pub(super) now: Instant,
    /// Events not yet taken.
    pub(super) events: Vec<Ev>,
}

impl Hostile {
    /// A fresh connection: nothing received yet. A dialer's HELLO is checked and discarded.
    pub(super) fn raw(role: Role, cfg: Config) -> Self {
        Self::raw_with_session(role, cfg, b"")
    }

    /// Like [`raw`](Self::raw), for a connection whose identity carries `session` (a dialer asking
    /// to resume it).
    pub(super) fn raw_with_session(role: Role, cfg: Config, session: &[u8]) -> Self {
        let id = Identity { name: b"victim", auth: b"", session };
        let conn = Connection::new(role, cfg, id, T0).expect("valid config");
        let mut h = Hostile { conn, now: T0, events: Vec::new() };
        let out = h.transmit();
        match role {
            Role::Dialer => {
                let f = frames(&out);
                assert!(
                    matches!(f[..], [Frame::Hello(Hello { min_version: 1, max_version: 1, .. })]),
                    "{f:?}"
                );
            }
            Role::Acceptor => assert!(out.is_empty(), "an acceptor speaks only after the dialer's HELLO"),
        }
        h
    }

    /// A connection past the handshake; the peer announced `params`.
    pub(super) fn connected_with(role: Role, cfg: Config, params: &[(u64, u64)]) -> Self {
        let mut h = Self::raw(role, cfg);
        h.feed(&hello(params));
        assert_eq!(h.take(), vec![Ev::Connected]);
        let out = h.transmit();
        match role {
            Role::Acceptor => {
                let f = frames(&out);
                assert!(
                    matches!(f[..], [Frame::Hello(Hello { min_version: 1, max_version: 1, .. })]),
                    "{f:?}"
                );
            }
            Role::Dialer => assert!(out.is_empty()),
        }
        assert_eq!(h.conn.state(), State::Open);
        h
    }

    /// An acceptor past the handshake with `cfg`; the peer announced defaults.
    pub(super) fn acceptor(cfg: Config) -> Self {
        Self::connected_with(Role::Acceptor, cfg, &[])
    }

    /// Feeds `bytes` (offering the rest again when the receive buffer is full) and collects the
    /// events they produce.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.conn.handle_input(self.now, rest);
            rest = &rest[n..];
            let polled = self.poll();
            assert!(n > 0 || polled > 0, "receive buffer full and no event to drain: stuck");
        }
        self.poll();
    }

    pub(super) fn feed_frames(&mut self, fs: &[Frame<'_>]) {
        self.feed(&cat(fs));
    }

    /// Drains events; returns how many.
    pub(super) fn poll(&mut self) -> usize {
        let mut n = 0;
        while let Some(e) = self.conn.poll_event(self.now) {
            self.events.push(Ev::from(e));
            n += 1;
        }
        n
    }

    pub(super) fn take(&mut self) -> Vec<Ev> {
        core::mem::take(&mut self.events)
    }

    /// Everything the connection has queued for the wire.
    pub(super) fn transmit(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.conn.poll_transmit(self.now, &mut buf);
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Asserts that the connection closed because of `status` (given by `is`), that the last
    /// event is that `Closed`, that CLOSE with that status is the last frame on the wire, and
    /// that no exchange is left in the table. Returns the error and the events before it.
    pub(super) fn assert_closed(&mut self, status: Status) -> (ConnectionError, Vec<Ev>) {
        self.poll();
        let mut evs = self.take();
        let Some(Ev::Closed(e)) = evs.pop() else { panic!("expected Closed as the last event, got {evs:?}") };
        assert!(!evs.iter().any(|e| matches!(e, Ev::Closed(_))), "two Closed events: {evs:?}");
        assert_eq!(e.status(), status, "{e:?}");
        assert_eq!(self.conn.state(), State::Closed);
        let out = self.transmit();
        let f = frames(&out);
        match f.last() {
            Some(Frame::Close { status: s, message }) => {
                assert_eq!(*s, status, "CLOSE status on the wire");
                if let ConnectionError::Violation { reason, .. } = e {
                    assert_eq!(*message, reason.as_bytes(), "CLOSE carries the reason");
                }
            }
            other => panic!("expected CLOSE as the last frame, got {other:?} in {f:?}"),
        }
        assert_eq!(self.conn.open_exchanges(), 0, "table empty once closed and drained");
        assert!(self.conn.is_finished());
        // Nothing more happens after the end, whatever arrives.
        let ping = enc(&Frame::Ping([0; 8]));
        assert_eq!(self.conn.handle_input(self.now, &ping), ping.len());
        assert_eq!(self.conn.poll_event(self.now), None);
        assert!(self.transmit().is_empty());
        (e, evs)
    }

    /// [`assert_closed`](Self::assert_closed) for a rule violation with `status`.
    pub(super) fn assert_violation(&mut self, status: Status) -> (&'static str, Vec<Ev>) {
        let (e, evs) = self.assert_closed(status);
        match e {
            ConnectionError::Violation { status: s, reason } => {
                assert_eq!(s, status);
                (reason, evs)
            }
            other => panic!("expected a Violation with {status:?}, got {other:?}"),
        }
    }

    /// [`assert_closed`](Self::assert_closed) for a decoding error.
    pub(super) fn assert_malformed(&mut self, err: DecodeError) -> Vec<Ev> {
        let (e, evs) = self.assert_closed(err.status());
        assert_eq!(e, ConnectionError::Malformed(err));
        evs
    }

    /// Asserts the connection is still open and produced no event and no output.
    pub(super) fn assert_silent(&mut self) {
        self.poll();
        assert_eq!(self.take(), vec![]);
        assert_eq!(self.conn.state(), State::Open);
        let out = self.transmit();
        assert!(out.is_empty(), "unexpected output {:?}", frames(&out));
    }

    /// Proves the connection is alive: a PING is answered with its PONG.
    pub(super) fn assert_alive(&mut self) {
        self.poll();
        let _ = self.transmit();
        self.feed(&enc(&Frame::Ping(*b"alive?!!")));
        assert_eq!(self.conn.state(), State::Open);
        let out = self.transmit();
        assert_eq!(frames(&out), vec![Frame::Pong(*b"alive?!!")]);
    }
}

fn cfg() -> Config {
    Config::default()
}

/// Upper bound of the memory a connection with `c` may hold.
pub(super) fn footprint_bound(c: &Config) -> usize {
    let slots =
        (c.max_concurrent_calls + c.max_concurrent_streams + c.max_outbound_calls + c.max_outbound_streams)
            as usize;
    c.max_frame_size as usize
        + crate::frame::MAX_HEADER_LEN
        + c.max_tx_buffer as usize
        + c.max_message_size as usize
        + slots * core::mem::size_of::<Option<crate::Slot>>()
}

// ============================================================================ framing limits

#[test]
fn oversized_length_prefix_is_rejected_from_the_header_alone() {
    let c = Config { max_frame_size: 1024 * 1024, ..cfg() };
    let mut h = Hostile::acceptor(c.clone());
    let before = h.conn.buffer_footprint();
    // Type byte only: nothing to decide yet.
    h.feed(&[ty::CALL]);
    assert_eq!(h.take(), vec![]);
    assert_eq!(h.conn.state(), State::Open);
    // 4-byte varint for max_frame_size + 1: rejected with nothing of the body present.
    let mut hdr = [0u8; 4];
    crate::varint::encode(u64::from(c.max_frame_size) + 1, &mut hdr);
    h.feed(&hdr[..3]);
    assert_eq!(h.take(), vec![], "an incomplete length prefix is not yet an error");
    h.feed(&hdr[3..]);
    assert!(h.conn.stats().bytes_received < 2000);
    let footprint = h.conn.buffer_footprint();
    h.assert_malformed(DecodeError::FrameTooLarge { len: u64::from(c.max_frame_size) + 1, max: 1024 * 1024 });
    // The receive buffer never grew toward the announced length (1 MiB), let alone past it.
    assert!(footprint < 64 * 1024, "footprint {footprint} (before {before})");
}

#[test]
fn length_prefix_of_2_pow_62_is_rejected() {
    let mut h = Hostile::acceptor(cfg());
    let mut hdr = [0u8; 9];
    hdr[0] = ty::STREAM_DATA;
    crate::varint::encode(crate::varint::MAX, &mut hdr[1..]);
    h.feed(&hdr);
    h.assert_malformed(DecodeError::FrameTooLarge { len: crate::varint::MAX, max: 65536 });
}

#[test]
fn frame_of_exactly_max_frame_size_is_accepted_and_one_more_byte_is_not() {
    let c = Config { max_frame_size: MIN_FRAME_SIZE, ..cfg() };
    let mut h = Hostile::acceptor(c);
    // CALL body: flags, id, module, method, budget = 5 bytes; payload fills the rest.
    let payload = vec![7u8; MIN_FRAME_SIZE as usize - 5];
    let f = call(0, &payload);
    assert_eq!(f.body_len(), MIN_FRAME_SIZE as usize);
    h.feed(&enc(&f));
    assert!(matches!(&h.take()[..], [Ev::Request { id: 0, payload: p, .. }] if *p == payload));
    let payload = vec![7u8; MIN_FRAME_SIZE as usize - 4];
    h.feed(&enc(&call(2, &payload)));
    h.assert_malformed(DecodeError::FrameTooLarge { len: u64::from(MIN_FRAME_SIZE) + 1, max: 4096 });
}

#[test]
fn before_the_handshake_the_frame_limit_is_the_protocol_minimum() {
    // The acceptor announces 64 KiB, but until HELLO arrived only 4096 bytes are accepted.
    let mut h = Hostile::raw(Role::Acceptor, cfg());
    h.feed(&[ty::HELLO, 0x50, 0x01]); // length 4097
    h.assert_malformed(DecodeError::FrameTooLarge { len: 4097, max: 4096 });
}

#[test]
fn non_canonical_length_prefix_is_malformed() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&[ty::PING, 0x40, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.assert_malformed(DecodeError::NonCanonicalVarint);
}

#[test]
fn trailing_bytes_in_a_fixed_size_frame_are_malformed() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&[ty::PING, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    h.assert_malformed(DecodeError::TrailingBytes);
}

#[test]
fn eof_inside_a_frame_is_truncated_and_clean_eof_is_transport_closed() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&call(0, b"abc"))[..4]);
    assert_eq!(h.take(), vec![]);
    h.conn.handle_eof(h.now);
    h.assert_malformed(DecodeError::Truncated);

    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&call(0, b"abc")));
    assert_eq!(h.take().len(), 1);
    h.conn.handle_eof(h.now);
    h.poll();
    assert_eq!(
        h.take(),
        vec![
            Ev::Cancelled { id: 0, status: Status::UNAVAILABLE },
            Ev::Closed(ConnectionError::TransportClosed)
        ]
    );
    assert!(h.transmit().is_empty(), "no CLOSE into a transport that is gone");
    assert_eq!(h.conn.open_exchanges(), 0);
}

#[test]
fn unknown_frame_type_0x7f_is_malformed() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&[0x7f, 0x00]);
    h.assert_malformed(DecodeError::UnknownFrameType(0x7f));
}

#[test]
fn every_undefined_core_type_is_malformed() {
    let defined = [
        ty::HELLO,
        ty::CLOSE,
        ty::GOAWAY,
        ty::PING,
        ty::PONG,
        ty::ACK,
        ty::CALL,
        ty::NOTIFY,
        ty::SIGNAL,
        ty::RESPONSE,
        ty::CANCEL,
        ty::SIGNAL_KEYED,
        ty::STREAM_OPEN,
        ty::STREAM_DATA,
        ty::STREAM_FIN,
        ty::STREAM_RESET,
        ty::STREAM_CREDIT,
        ty::CONN_CREDIT,
        ty::STREAM_RESUME,
        ty::CONTINUATION,
    ];
    for t in (0u8..0x80).filter(|t| !defined.contains(t)) {
        let mut h = Hostile::acceptor(cfg());
        h.feed(&[t, 1, 0]);
        h.assert_malformed(DecodeError::UnknownFrameType(t));
    }
}

#[test]
fn extension_frames_are_skipped_silently() {
    let mut h = Hostile::acceptor(cfg());
    for t in 0x80..=0xffu8 {
        let body = vec![t; usize::from(t - 0x80)];
        h.feed(&enc(&Frame::Extension { ty: t, body: &body }));
    }
    h.assert_silent();
    h.assert_alive();
    assert_eq!(h.conn.stats().protocol_errors, 0);
}

#[test]
fn flood_of_100k_tiny_valid_frames_leaves_nothing_behind() {
    let c = cfg();
    let mut h = Hostile::acceptor(c.clone());
    let ext = enc(&Frame::Extension { ty: 0xAB, body: b"" });
    let pong = enc(&Frame::Pong(*b"unasked!"));
    let mut ack_buf = [0u8; 16];
    let ack = enc(&Frame::Ack(crate::frame::Ack::encode_into(&[(0, 1)], &mut ack_buf).unwrap()));
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend_from_slice(match i % 3 {
            0 => &ext,
            1 => &pong,
            _ => &ack,
        });
    }
    let mut max_footprint = 0;
    for _ in 0..100 {
        h.feed(&batch);
        max_footprint = max_footprint.max(h.conn.buffer_footprint());
        assert_eq!(h.conn.open_exchanges(), 0);
        // 667 unproductive frames per 100 ms: within the default 10,000 per second.
        h.now = h.now + ms(100);
    }
    assert_eq!(h.conn.stats().frames_received, 1 + 100_000);
    h.assert_silent();
    assert!(max_footprint <= c.max_frame_size as usize + 9 + 4096, "footprint {max_footprint}");
}

/// A tiny-frame flood (SPEC.md §12.5): frames that do nothing for the application are allowed
/// in a burst of `max_unproductive_frames` and at that rate per second; one more at the same
/// instant is ENHANCE_YOUR_CALM.
#[test]
fn a_flood_of_frames_that_do_nothing_is_enhance_your_calm() {
    for (i, f) in
        [Frame::Extension { ty: 0xAB, body: b"" }, Frame::Pong(*b"unasked!"), Frame::ConnCredit { bytes: 0 }]
            .iter()
            .enumerate()
    {
        let c = Config { max_unproductive_frames: 1000, ..cfg() };
        let mut h = Hostile::acceptor(c);
        let one = enc(f);
        h.feed(&one.repeat(999));
        // The PING of this check is the 1000th frame that does nothing.
        h.assert_alive();
        h.feed(&one);
        let (reason, _) = h.assert_violation(Status::ENHANCE_YOUR_CALM);
        assert!(reason.starts_with("flood of frames that do nothing"), "case {i}: {reason}");
    }
}

#[test]
fn frames_that_do_nothing_at_the_allowed_rate_are_fine() {
    let c = Config { max_unproductive_frames: 1000, ..cfg() };
    let mut h = Hostile::acceptor(c);
    let ext = enc(&Frame::Extension { ty: 0xAB, body: b"" });
    // 900 per second for 20 seconds: the bucket refills faster than it drains.
    for _ in 0..200 {
        h.feed(&ext.repeat(90));
        h.now = h.now + ms(100);
    }
    h.assert_alive();
    // And 0 turns the check off.
    let mut h = Hostile::acceptor(Config { max_unproductive_frames: 0, ..cfg() });
    h.feed(&ext.repeat(50_000));
    h.assert_alive();
}

// ============================================================================ handshake

#[test]
fn first_frame_not_hello_is_a_protocol_error_for_both_roles() {
    for role in [Role::Acceptor, Role::Dialer] {
        for f in [Frame::Ping([1; 8]), call(0, b"x"), Frame::Extension { ty: 0x90, body: b"" }] {
            let mut h = Hostile::raw(role, cfg());
            h.feed(&enc(&f));
            let (reason, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
            assert_eq!(reason, "the first frame must be HELLO");
            assert_eq!(evs, vec![], "{role:?} {f:?}");
        }
    }
}

#[test]
fn hello_with_bad_magic_is_malformed() {
    let mut good = hello(&[]);
    assert_eq!(&good[2..6], &MAGIC);
    good[2..6].copy_from_slice(b"HTTP");
    let mut h = Hostile::raw(Role::Acceptor, cfg());
    h.feed(&good);
    h.assert_malformed(DecodeError::BadMagic);
}

#[test]
fn acceptor_refuses_version_ranges_without_1_with_incompatible_version() {
    for (min, max) in [(2, 3), (0, 0), (2, 1), (1, 0), (7, 7)] {
        let mut h = Hostile::raw(Role::Acceptor, cfg());
        h.feed(&hello_full(min, max, 0, &[]));
        h.poll();
        let evs = h.take();
        assert!(
            matches!(evs[..], [Ev::Closed(ConnectionError::Incompatible { .. })]),
            "{min}..{max}: {evs:?}"
        );
        let out = h.transmit();
        assert_eq!(
            frames(&out),
            vec![Frame::Close {
                status: Status::INCOMPATIBLE_VERSION,
                message: &b"supported protocol versions: 1..1"[..]
            }],
            "{min}..{max}: only CLOSE, no HELLO"
        );
        assert_eq!(h.conn.peer(), None);
    }
}

#[test]
fn acceptor_picks_1_from_a_wider_range() {
    let mut h = Hostile::raw(Role::Acceptor, cfg());
    h.feed(&hello_full(0, 9, 0, &[]));
    assert_eq!(h.take(), vec![Ev::Connected]);
    let out = h.transmit();
    assert!(matches!(frames(&out)[..], [Frame::Hello(Hello { min_version: 1, max_version: 1, .. })]));
    assert_eq!(h.conn.peer().unwrap().version, 1);
}

/// SPEC §5.3: the acceptor's HELLO must have min = max = v within the dialer's range, else the
/// dialer closes with PROTOCOL_ERROR.
#[test]
fn dialer_rejects_a_version_it_did_not_offer_with_protocol_error() {
    for (min, max) in [(2, 2), (1, 2), (0, 1), (0, 0)] {
        let mut h = Hostile::raw(Role::Dialer, cfg());
        h.feed(&hello_full(min, max, 0, &[]));
        let (reason, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
        assert_eq!(reason, "acceptor chose a protocol version the dialer did not offer", "{min}..{max}");
        assert_eq!(evs, vec![]);
        assert_eq!(h.conn.peer(), None);
    }
}

#[test]
fn hello_parameters_out_of_range_are_protocol_errors() {
    let bad: &[(u64, u64)] = &[
        (param::MAX_FRAME_SIZE, 100),
        (param::MAX_FRAME_SIZE, 4095),
        (param::MAX_FRAME_SIZE, u64::from(MAX_FRAME_SIZE) + 1),
        (param::MAX_MESSAGE_SIZE, 4095),
        (param::MAX_MESSAGE_SIZE, 1 << 32),
        (param::MAX_CONCURRENT_CALLS, 1 << 32),
        (param::MAX_CONCURRENT_STREAMS, 1 << 32),
        (param::STREAM_CREDIT_MSGS, 0),
        (param::STREAM_CREDIT_BYTES, 0),
        (param::CONN_CREDIT_BYTES, 1000), // below the default stream_credit_bytes
        (param::MAX_DATAGRAM_SIZE, 1199),
    ];
    for role in [Role::Acceptor, Role::Dialer] {
        for &p in bad {
            let mut h = Hostile::raw(role, cfg());
            h.feed(&hello(&[p]));
            let (reason, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
            assert_eq!(reason, "HELLO parameter out of its legal range", "{p:?}");
            assert_eq!(evs, vec![]);
        }
    }
}

#[test]
fn hello_parameters_at_their_bounds_and_unknown_ids_are_accepted() {
    let params = [
        (param::MAX_FRAME_SIZE, u64::from(MIN_FRAME_SIZE)),
        (param::MAX_MESSAGE_SIZE, 4096),
        (param::MAX_CONCURRENT_CALLS, 0),
        (param::MAX_CONCURRENT_STREAMS, u64::from(u32::MAX)),
        (param::STREAM_CREDIT_MSGS, 1),
        (param::STREAM_CREDIT_BYTES, 1),
        (param::CONN_CREDIT_BYTES, 1),
        (param::MAX_DATAGRAM_SIZE, 0),
        (63, crate::varint::MAX),
        (1000, 5),
    ];
    let mut h = Hostile::connected_with(Role::Acceptor, cfg(), &params);
    let l = h.conn.peer().unwrap().limits;
    assert_eq!((l.max_frame_size, l.max_concurrent_calls, l.stream_credit_bytes), (4096, 0, 1));
    assert_eq!(h.conn.call(h.now, ECHO, b"", None), Err(ApiError::TooManyCalls { limit: 0 }));
    h.assert_alive();
}

#[test]
fn duplicate_hello_parameter_is_rejected() {
    // Params::encode_into refuses duplicates: build the body by hand.
    let mut body = Vec::new();
    body.extend_from_slice(&MAGIC);
    body.extend_from_slice(&[1, 1, 0, 0, 0, 0]); // versions, flags, empty name/auth/session
    body.extend_from_slice(&[2, 3, 5, 3, 6]); // two params, both id 3
    let mut f = vec![ty::HELLO, body.len() as u8];
    f.extend_from_slice(&body);
    // SPEC §5.4: a duplicate id breaks the strictly increasing order: `ParamOrder`.
    let mut h = Hostile::raw(Role::Acceptor, cfg());
    h.feed(&f);
    assert_eq!(h.assert_malformed(DecodeError::ParamOrder), vec![]);
    assert_eq!(h.conn.peer(), None);
}

#[test]
fn hello_with_undefined_flags_is_malformed() {
    let mut h = Hostile::raw(Role::Acceptor, cfg());
    h.feed(&hello_full(1, 1, 0x02, &[]));
    h.assert_malformed(DecodeError::InvalidFlags(0x02));
}

#[test]
fn second_hello_is_a_protocol_error_for_both_roles() {
    for role in [Role::Acceptor, Role::Dialer] {
        let mut h = Hostile::connected_with(role, cfg(), &[]);
        h.feed(&hello(&[]));
        let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
        assert_eq!(reason, "second HELLO");
    }
}

#[test]
fn close_before_hello_ends_the_handshake() {
    let mut h = Hostile::raw(Role::Acceptor, cfg());
    h.feed(&enc(&Frame::Close { status: Status::UNAUTHENTICATED, message: b"go away" }));
    h.poll();
    assert_eq!(h.take(), vec![Ev::Closed(ConnectionError::PeerClosed { status: Status::UNAUTHENTICATED })]);
    assert_eq!(h.conn.close_message(), b"go away");
    assert!(h.transmit().is_empty(), "no answer to CLOSE");
}

#[test]
fn handshake_that_never_completes_times_out() {
    let c = Config { handshake_timeout: ms(2_500), ..cfg() };
    for role in [Role::Acceptor, Role::Dialer] {
        let mut h = Hostile::raw(role, c.clone());
        // Half a HELLO arrives; the rest never does.
        let hl = hello(&[]);
        h.feed(&hl[..hl.len() / 2]);
        assert_eq!(h.take(), vec![]);
        let deadline = T0 + ms(2_500);
        assert_eq!(h.conn.poll_timeout(), Some(deadline));
        h.now = Instant::from_micros(deadline.as_micros() - 1);
        h.conn.handle_timeout(h.now);
        assert_eq!(h.conn.state(), State::Handshake, "not yet");
        assert_eq!(h.conn.call(h.now, ECHO, b"", None), Err(ApiError::NotConnected));
        h.now = deadline;
        h.conn.handle_timeout(h.now);
        let (e, evs) = h.assert_closed(Status::HANDSHAKE_TIMEOUT);
        assert_eq!(e, ConnectionError::HandshakeTimeout);
        assert_eq!(evs, vec![]);
        assert_eq!(h.conn.poll_timeout(), None);
    }
}

#[test]
fn completed_handshake_stops_the_handshake_timer() {
    let c = Config { handshake_timeout: ms(1_000), keepalive_interval: ms(0), idle_timeout: ms(0), ..cfg() };
    let mut h = Hostile::acceptor(c);
    assert_eq!(h.conn.poll_timeout(), None);
    h.now = T0 + ms(60_000);
    h.conn.handle_timeout(h.now);
    h.assert_alive();
}

// ============================================================================ concurrency limits

#[test]
fn one_call_more_than_announced_is_limit_exceeded() {
    let c = Config { max_concurrent_calls: 3, ..cfg() };
    let mut h = Hostile::acceptor(c);
    // A call and two notifications share the limit; streams do not count.
    h.feed_frames(&[call(0, b"a"), notify(2, b"b"), call(4, b"c"), open(6, false)]);
    assert_eq!(h.take().len(), 4);
    assert_eq!(h.conn.open_exchanges(), 4);
    h.feed(&enc(&notify(8, b"d")));
    let (reason, evs) = h.assert_violation(Status::LIMIT_EXCEEDED);
    assert_eq!(reason, "more concurrent exchanges than announced");
    assert_eq!(evs.len(), 4, "every open exchange resolved: {evs:?}");
    assert!(evs.contains(&Ev::StreamReset { id: 6, status: Status::UNAVAILABLE }));
    for id in [0, 2, 4] {
        assert!(evs.contains(&Ev::Cancelled { id, status: Status::UNAVAILABLE }), "{evs:?}");
    }
}

#[test]
fn four_pipelined_calls_against_a_limit_of_three() {
    let c = Config { max_concurrent_calls: 3, ..cfg() };
    let mut h = Hostile::acceptor(c);
    h.feed_frames(&[call(0, b""), call(2, b""), call(4, b""), call(6, b"")]);
    let (_, evs) = h.assert_violation(Status::LIMIT_EXCEEDED);
    assert_eq!(evs.iter().filter(|e| matches!(e, Ev::Request { .. })).count(), 3, "{evs:?}");
}

#[test]
fn one_stream_more_than_announced_is_limit_exceeded() {
    let c = Config { max_concurrent_streams: 3, ..cfg() };
    let mut h = Hostile::acceptor(c);
    h.feed_frames(&[open(0, false), open(2, true), open(4, false), call(6, b"")]);
    assert_eq!(h.take().len(), 4);
    h.feed(&enc(&open(8, false)));
    let (reason, evs) = h.assert_violation(Status::LIMIT_EXCEEDED);
    assert_eq!(reason, "more concurrent exchanges than announced");
    assert_eq!(evs.len(), 4, "{evs:?}");
}

#[test]
fn answered_calls_free_their_slot_for_the_next() {
    let c = Config { max_concurrent_calls: 3, ..cfg() };
    let mut h = Hostile::acceptor(c);
    for i in 0..100u64 {
        h.feed(&enc(&call(2 * i, b"q")));
        let evs = h.take();
        assert!(matches!(evs[..], [Ev::Request { id, .. }] if id == 2 * i), "{evs:?}");
        if i >= 2 {
            // Keep three open: answer the oldest.
            h.conn.respond(2 * (i - 2), Status::OK, b"r").unwrap();
        }
        assert!(h.conn.open_exchanges() <= 3);
    }
    let out = h.transmit();
    assert_eq!(frames(&out).len(), 98);
}

#[test]
fn zero_concurrent_calls_refuses_the_first_call() {
    let c = Config { max_concurrent_calls: 0, max_concurrent_streams: 0, ..cfg() };
    let mut h = Hostile::acceptor(c.clone());
    h.feed(&enc(&call(0, b"")));
    h.assert_violation(Status::LIMIT_EXCEEDED);
    let mut h = Hostile::acceptor(c);
    h.feed(&enc(&open(0, true)));
    h.assert_violation(Status::LIMIT_EXCEEDED);
}

#[test]
fn rapid_reset_cancelled_calls_count_until_the_app_responds() {
    let c = Config { max_concurrent_calls: 20, ..cfg() };
    let mut h = Hostile::acceptor(c);
    for i in 0..50u64 {
        let id = 2 * i;
        h.feed_frames(&[call(id, b"expensive"), Frame::Cancel { id }]);
        if i < 20 {
            let evs = h.take();
            assert!(
                matches!(&evs[..], [Ev::Request { id: a, .. }, Ev::Cancelled { id: b, status: Status::CANCELLED }] if *a == id && *b == id),
                "{i}: {evs:?}"
            );
            assert_eq!(h.conn.open_exchanges(), i as usize + 1);
            assert!(h.conn.open_exchanges() <= 20);
            assert!(h.transmit().is_empty(), "the app has not answered: nothing to send");
            continue;
        }
        // The 21st open while 20 cancelled calls still await their handler.
        assert_eq!(i, 20);
        let (reason, evs) = h.assert_violation(Status::LIMIT_EXCEEDED);
        assert_eq!(reason, "more concurrent exchanges than announced");
        // Each handler was already told to stop (CANCELLED): closing does not tell it twice.
        assert!(evs.is_empty(), "no second cancellation for already-cancelled calls: {evs:?}");
        assert_eq!(h.conn.open_exchanges(), 0);
        return;
    }
    panic!("rapid reset never hit the limit");
}

#[test]
fn rapid_reset_with_a_responsive_app_runs_indefinitely() {
    let c = Config { max_concurrent_calls: 20, ..cfg() };
    let mut h = Hostile::acceptor(c);
    for i in 0..50u64 {
        let id = 2 * i;
        h.feed_frames(&[call(id, b"expensive"), Frame::Cancel { id }]);
        assert_eq!(
            h.take(),
            vec![
                Ev::Request {
                    id,
                    kind: RequestKind::Call,
                    method: ECHO,
                    deadline: None,
                    payload: b"expensive".to_vec()
                },
                Ev::Cancelled { id, status: Status::CANCELLED }
            ]
        );
        h.conn.respond(id, Status::OK, b"the real answer is dropped").unwrap();
        let out = h.transmit();
        assert_eq!(frames(&out), vec![response(id, Status::CANCELLED, b"")]);
        assert_eq!(h.conn.open_exchanges(), 0);
    }
    assert_eq!(h.conn.stats().calls_accepted, 50);
    h.assert_alive();
}

#[test]
fn rapid_stream_reset_counts_until_the_handler_releases() {
    let c = Config { max_concurrent_streams: 5, ..cfg() };
    let mut h = Hostile::acceptor(c.clone());
    for i in 0..5u64 {
        h.feed_frames(&[open(2 * i, false), Frame::StreamReset { id: 2 * i, status: Status::CANCELLED }]);
        assert_eq!(h.take().len(), 2);
    }
    assert_eq!(h.conn.open_exchanges(), 5);
    h.feed_frames(&[open(10, false), Frame::StreamReset { id: 10, status: Status::CANCELLED }]);
    h.assert_violation(Status::LIMIT_EXCEEDED);

    // Released each time: fine forever, and each release answers the reset.
    let mut h = Hostile::acceptor(c);
    for i in 0..50u64 {
        let id = 2 * i;
        h.feed_frames(&[open(id, false), Frame::StreamReset { id, status: Status::CANCELLED }]);
        assert_eq!(h.take().len(), 2);
        h.conn.stream_reset(id, Status::CANCELLED).unwrap();
        let out = h.transmit();
        assert_eq!(frames(&out), vec![Frame::StreamReset { id, status: Status::CANCELLED }]);
        assert_eq!(h.conn.open_exchanges(), 0);
    }
}

// ============================================================================ ping flood

/// 100 PINGs in one write are all answered (SPEC.md §7.6): whether the receiver flushes after
/// each PONG or after the batch cannot change the outcome.
#[test]
fn a_burst_of_pings_in_one_write_is_answered_in_full() {
    let mut h = Hostile::acceptor(cfg());
    let burst: Vec<u8> = (0..100u64).flat_map(|i| enc(&Frame::Ping(i.to_be_bytes()))).collect();
    h.feed(&burst);
    let out = h.transmit();
    let want: Vec<Frame<'_>> = (0..100u64).map(|i| Frame::Pong(i.to_be_bytes())).collect();
    assert_eq!(frames(&out), want);
    h.assert_alive();
}

/// A PING flood beyond the unproductive-frame budget is ENHANCE_YOUR_CALM, read or not.
#[test]
fn ping_flood_beyond_the_budget_is_enhance_your_calm() {
    let c = cfg();
    let mut h = Hostile::acceptor(c.clone());
    let ping = enc(&Frame::Ping(*b"flooding"));
    h.feed(&ping.repeat(c.max_unproductive_frames as usize));
    assert_eq!(h.conn.state(), State::Open);
    h.feed(&ping);
    let (reason, _) = h.assert_violation(Status::ENHANCE_YOUR_CALM);
    assert!(reason.starts_with("flood of frames that do nothing"), "{reason}");
}

#[test]
fn pings_answered_as_they_come_are_fine() {
    let mut h = Hostile::acceptor(cfg());
    for i in 0..1000u64 {
        h.feed(&enc(&Frame::Ping(i.to_be_bytes())));
        let out = h.transmit();
        assert_eq!(frames(&out), vec![Frame::Pong(i.to_be_bytes())]);
    }
    assert_eq!(h.conn.state(), State::Open);
    assert_eq!(h.conn.open_exchanges(), 0);
}

/// A well-behaved peer pings once per round trip while this side streams bulk data and its
/// driver writes the transmit queue out in part (a socket that is always a little behind). At
/// most one PONG is ever waiting; the flood guard must not fire.
#[test]
fn one_ping_per_round_trip_is_not_a_flood_while_bulk_data_flows() {
    let mut h = Hostile::connected_with(Role::Acceptor, cfg(), &[(param::MAX_CONCURRENT_CALLS, 10_000)]);
    let mut wire = Vec::new();
    for round in 0..50u64 {
        h.feed(&enc(&Frame::Ping(round.to_be_bytes())));
        assert_eq!(h.conn.state(), State::Open, "round {round}: {:?}", h.take());
        h.conn.call(h.now, SINK, &[0u8; 1000], None).unwrap();
        // Write everything but the last 100 bytes: the PONG goes out, the queue never empties.
        let n = h.conn.transmit_data().len() - 100;
        wire.extend_from_slice(&h.conn.transmit_data()[..n]);
        h.conn.transmit_done(n);
        assert!(h.conn.pending_transmit() > 0);
    }
    // All PONGs arrived (the wire holds whole frames up to a partial call at the end).
    let pongs = wire.windows(2).filter(|w| w[0] == ty::PONG && w[1] == 8).count();
    assert!(pongs >= 49);
}

/// A peer that pings and never reads: its PONGs fill the transmit queue, and the first PONG
/// that no longer fits is ENHANCE_YOUR_CALM; what is queued never exceeds the bound.
#[test]
fn pongs_the_peer_never_reads_stay_within_the_transmit_bound() {
    let c = Config { max_tx_buffer: 8192, ..cfg() };
    let mut h = Hostile::acceptor(c.clone());
    let mut max_pending = 0;
    for i in 0..2000u64 {
        h.feed(&enc(&Frame::Ping(i.to_be_bytes())));
        max_pending = max_pending.max(h.conn.pending_transmit());
        if h.conn.state() == State::Closed {
            break;
        }
    }
    assert!(max_pending <= c.max_tx_buffer as usize, "{max_pending}");
    let (reason, _) = h.assert_violation(Status::ENHANCE_YOUR_CALM);
    assert_eq!(reason, "peer does not read: transmit queue full");
}

// ============================================================================ flow control

fn stream_cfg(msgs: u32, bytes: u32, conn: u32) -> Config {
    Config { stream_credit_msgs: msgs, stream_credit_bytes: bytes, conn_credit_bytes: conn, ..cfg() }
}

#[test]
fn stream_data_beyond_message_credit_is_flow_control_error() {
    let mut h = Hostile::acceptor(stream_cfg(2, 1000, 10_000));
    h.feed_frames(&[open(0, false), data(0, b"1"), data(0, b"2")]);
    assert_eq!(h.take().len(), 3);
    h.feed(&enc(&data(0, b"3")));
    let (reason, evs) = h.assert_violation(Status::FLOW_CONTROL_ERROR);
    assert_eq!(reason, "stream data beyond the granted credit");
    assert_eq!(evs, vec![Ev::StreamReset { id: 0, status: Status::UNAVAILABLE }]);
}

#[test]
fn consumed_items_return_exactly_their_credit() {
    let mut h = Hostile::acceptor(stream_cfg(2, 1000, 10_000));
    h.feed_frames(&[open(0, false), data(0, b"1"), data(0, b"22")]);
    assert_eq!(h.take().len(), 3);
    h.conn.stream_consumed(0, 2, 3).unwrap();
    let out = h.transmit();
    assert_eq!(
        frames(&out),
        vec![Frame::StreamCredit { id: 0, msgs: 2, bytes: 3 }, Frame::ConnCredit { bytes: 3 }]
    );
    h.feed_frames(&[data(0, b"3"), data(0, b"4")]);
    assert_eq!(h.take().len(), 2);
    h.feed(&enc(&data(0, b"5")));
    h.assert_violation(Status::FLOW_CONTROL_ERROR);
}

#[test]
fn stream_data_beyond_byte_credit_is_flow_control_error() {
    let mut h = Hostile::acceptor(stream_cfg(64, 1000, 10_000));
    h.feed_frames(&[open(0, false), data(0, &[1; 600]), data(0, &[2; 400])]);
    assert_eq!(h.take().len(), 3, "exactly the window is fine");
    h.feed(&enc(&data(0, b"x")));
    h.assert_violation(Status::FLOW_CONTROL_ERROR);
}

#[test]
fn fragmented_item_beyond_byte_credit_fails_at_its_first_frame() {
    let mut h = Hostile::acceptor(stream_cfg(64, 1000, 10_000));
    h.feed(&enc(&open(0, false)));
    h.take();
    h.feed(&enc(&Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(1001), payload: b"abc" }));
    h.assert_violation(Status::FLOW_CONTROL_ERROR);
}

#[test]
fn stream_data_beyond_connection_credit_is_flow_control_error() {
    let mut h = Hostile::acceptor(stream_cfg(64, 1000, 1500));
    h.feed_frames(&[open(0, false), open(2, false), data(0, &[0; 1000]), data(2, &[0; 500])]);
    assert_eq!(h.take().len(), 4);
    // Stream 2 still has 500 bytes of its own window, but the connection has none.
    assert!(h.transmit().is_empty(), "nothing consumed, no credit returned");
    h.feed(&enc(&data(2, b"x")));
    h.assert_violation(Status::FLOW_CONTROL_ERROR);
}

#[test]
fn stream_credit_overflowing_2_pow_32_is_flow_control_error() {
    for (msgs_over, outbound) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut h = Hostile::acceptor(cfg());
        let id = if outbound {
            let id = h.conn.open_stream(h.now, ECHO, b"", None, false).unwrap();
            let _ = h.transmit();
            id
        } else {
            h.feed(&enc(&open(0, false)));
            h.take();
            0
        };
        let (m0, b0) = h.conn.stream_credit(id).unwrap();
        assert_eq!((m0, b0), (64, 256 * 1024));
        // Up to exactly 2^32-1: fine.
        let (m, b) = if msgs_over { (u32::MAX - 64, 0) } else { (0, u32::MAX - 256 * 1024) };
        h.feed(&enc(&Frame::StreamCredit { id, msgs: m, bytes: b }));
        h.assert_silent();
        let (m, b) = if msgs_over { (1, 0) } else { (0, 1) };
        h.feed(&enc(&Frame::StreamCredit { id, msgs: m, bytes: b }));
        let (reason, _) = h.assert_violation(Status::FLOW_CONTROL_ERROR);
        assert_eq!(reason, "stream credit above 2^32-1");
    }
}

#[test]
fn connection_credit_overflowing_2_pow_32_is_flow_control_error() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&Frame::ConnCredit { bytes: u32::MAX - 1024 * 1024 }));
    h.assert_silent();
    h.feed(&enc(&Frame::ConnCredit { bytes: 1 }));
    let (reason, _) = h.assert_violation(Status::FLOW_CONTROL_ERROR);
    assert_eq!(reason, "connection credit above 2^32-1");
}

// ============================================================================ exchange ids

#[test]
fn exchange_id_reuse_is_a_protocol_error() {
    for second in [call(0, b""), notify(0, b""), open(0, false)] {
        let mut h = Hostile::acceptor(cfg());
        h.feed(&enc(&call(0, b"")));
        h.take();
        h.feed(&enc(&second));
        let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
        assert_eq!(reason, "exchange id reused or not increasing");
    }
    // Reuse of an id whose exchange is already over is still reuse.
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&call(4, b"")));
    h.take();
    h.conn.respond(4, Status::OK, b"").unwrap();
    h.feed(&enc(&call(4, b"")));
    h.assert_violation(Status::PROTOCOL_ERROR);
}

#[test]
fn decreasing_exchange_id_is_a_protocol_error() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[call(10, b""), open(12, false)]);
    assert_eq!(h.take().len(), 2);
    h.feed(&enc(&call(6, b"")));
    h.assert_violation(Status::PROTOCOL_ERROR);
}

#[test]
fn exchange_id_with_wrong_parity_is_a_protocol_error() {
    for (role, id) in [(Role::Acceptor, 1), (Role::Acceptor, 3), (Role::Dialer, 0), (Role::Dialer, 4)] {
        for f in [call(id, b""), notify(id, b""), open(id, false)] {
            let mut h = Hostile::connected_with(role, cfg(), &[]);
            h.feed(&enc(&f));
            let (reason, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
            assert_eq!(reason, "exchange id has the opener's wrong parity");
            assert_eq!(evs, vec![]);
        }
    }
}

#[test]
fn frames_for_ids_never_opened_are_protocol_errors() {
    let cases: Vec<Vec<Frame<'static>>> = vec![
        vec![Frame::Cancel { id: 0 }],
        vec![call(0, b""), Frame::Cancel { id: 2 }],
        vec![data(0, b"x")],
        vec![Frame::StreamFin { id: 2, status: Status::OK }],
        vec![Frame::StreamReset { id: 2, status: Status::OK }],
        vec![Frame::StreamCredit { id: 0, msgs: 1, bytes: 1 }],
        // Our own ids: the acceptor has opened nothing, so id 1 is unknown.
        vec![response(1, Status::OK, b"")],
        vec![Frame::StreamCredit { id: 1, msgs: 1, bytes: 1 }],
        vec![Frame::StreamFin { id: 3, status: Status::OK }],
    ];
    for fs in cases {
        let mut h = Hostile::acceptor(cfg());
        h.feed_frames(&fs);
        let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
        assert_eq!(reason, "frame refers to an exchange that was never opened", "{fs:?}");
    }
}

#[test]
fn frames_for_ids_already_closed_are_ignored() {
    let mut h = Hostile::acceptor(cfg());
    // A call the app answered, a stream both sides ended, one of our calls that was answered.
    h.feed_frames(&[call(0, b""), open(2, true)]);
    assert_eq!(h.take().len(), 2);
    h.conn.respond(0, Status::OK, b"").unwrap();
    h.conn.stream_finish(2, Status::OK).unwrap();
    let ours = h.conn.call(h.now, ECHO, b"", None).unwrap();
    let _ = h.transmit();
    h.feed(&enc(&response(ours, Status::OK, b"r")));
    assert_eq!(h.take().len(), 1);
    assert_eq!(h.conn.open_exchanges(), 0);
    // A skipped id below the highest seen also counts as "over".
    h.feed(&enc(&call(6, b"")));
    h.take();
    h.conn.respond(6, Status::OK, b"").unwrap();
    let _ = h.transmit();
    h.feed_frames(&[
        Frame::Cancel { id: 0 },
        Frame::Cancel { id: 4 },
        Frame::StreamFin { id: 2, status: Status::OK },
        Frame::StreamReset { id: 2, status: Status::CANCELLED },
        Frame::StreamCredit { id: 2, msgs: 5, bytes: 5 },
        response(ours, Status::OK, b"duplicate"),
        Frame::Response {
            flags: flags::MORE,
            id: ours,
            status: Status::OK,
            total_len: Some(10),
            payload: b"12345",
        },
        cont(false, ours, b"67890"),
    ]);
    h.assert_silent();
    assert_eq!(h.conn.open_exchanges(), 0);
    // Data on a finished stream is dropped, but its bytes are handed back to the connection window.
    h.feed(&enc(&data(2, &[0; 100])));
    assert_eq!(h.take(), vec![]);
    let out = h.transmit();
    assert_eq!(frames(&out), vec![Frame::ConnCredit { bytes: 100 }]);
    h.assert_alive();
}

#[test]
fn frames_of_the_wrong_exchange_kind_are_protocol_errors() {
    let cases: Vec<Vec<Frame<'static>>> = vec![
        vec![call(0, b""), data(0, b"x")],
        vec![call(0, b""), Frame::StreamFin { id: 0, status: Status::OK }],
        vec![open(0, false), Frame::Cancel { id: 0 }],
    ];
    for fs in cases {
        let mut h = Hostile::acceptor(cfg());
        h.feed_frames(&fs);
        h.assert_violation(Status::PROTOCOL_ERROR);
    }
    // RESPONSE to one of our streams.
    let mut h = Hostile::acceptor(cfg());
    let id = h.conn.open_stream(h.now, ECHO, b"", None, false).unwrap();
    h.feed(&enc(&response(id, Status::OK, b"")));
    let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "call frame on a stream");
}

#[test]
fn cancel_with_the_local_sides_parity_is_a_protocol_error() {
    let mut h = Hostile::acceptor(cfg());
    let id = h.conn.call(h.now, ECHO, b"", None).unwrap();
    assert_eq!(id % 2, 1);
    h.feed(&enc(&Frame::Cancel { id }));
    let (reason, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "CANCEL for an exchange this side opened");
    assert_eq!(evs, vec![Ev::Failed { id, status: Status::UNAVAILABLE }]);
}

#[test]
fn response_to_an_exchange_the_peer_opened_is_a_protocol_error() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[call(0, b""), response(0, Status::OK, b"")]);
    let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "RESPONSE to an exchange the peer opened");
}

// ============================================================================ exchange rules

#[test]
fn response_payload_for_a_reliable_notification_is_a_protocol_error() {
    let mut h = Hostile::acceptor(cfg());
    let id = h.conn.notify(h.now, SINK, b"n", None).unwrap();
    let _ = h.transmit();
    h.feed(&enc(&response(id, Status::OK, b"x")));
    let (reason, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "RESPONSE to a notification carries a payload");
    assert_eq!(evs, vec![Ev::Failed { id, status: Status::UNAVAILABLE }]);

    // Announcing a payload by total_len is just as wrong.
    let mut h = Hostile::acceptor(cfg());
    let id = h.conn.notify(h.now, SINK, b"n", None).unwrap();
    h.feed(&enc(&Frame::Response {
        flags: flags::MORE,
        id,
        status: Status::OK,
        total_len: Some(2),
        payload: b"",
    }));
    h.assert_violation(Status::PROTOCOL_ERROR);

    // The empty acknowledgement is fine.
    let mut h = Hostile::acceptor(cfg());
    let id = h.conn.notify(h.now, SINK, b"n", None).unwrap();
    h.feed(&enc(&response(id, Status::ACCEPTED, b"")));
    assert_eq!(h.take(), vec![Ev::Response { id, status: Status::ACCEPTED, payload: vec![] }]);
}

#[test]
fn stream_data_after_the_peers_fin_is_a_protocol_error() {
    // FIN flag on STREAM_OPEN.
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&open(0, true)));
    assert_eq!(h.take().len(), 1);
    h.feed(&enc(&data(0, b"late")));
    let (reason, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "STREAM_DATA after the sender ended its direction");
    assert_eq!(evs, vec![Ev::StreamReset { id: 0, status: Status::UNAVAILABLE }]);
    // STREAM_FIN frame.
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[open(0, false), data(0, b"a"), Frame::StreamFin { id: 0, status: Status::OK }]);
    assert_eq!(h.take().len(), 3);
    h.feed(&enc(&data(0, b"late")));
    h.assert_violation(Status::PROTOCOL_ERROR);
    // Second FIN.
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[open(0, true), Frame::StreamFin { id: 0, status: Status::OK }]);
    let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "second STREAM_FIN");
}

#[test]
fn stream_resume_outside_resumption_and_raised_goaway_are_protocol_errors() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&Frame::StreamResume { id: 0, received: 0 }));
    h.assert_violation(Status::PROTOCOL_ERROR);

    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&Frame::GoAway { bound: 5, status: Status::OK, message: b"" }));
    assert_eq!(h.take(), vec![Ev::GoAway { bound: 5, status: Status::OK }]);
    h.feed(&enc(&Frame::GoAway { bound: 7, status: Status::OK, message: b"" }));
    let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "GOAWAY raised its bound");
}

#[test]
fn huge_budget_does_not_overflow_the_clock() {
    let mut h = Hostile::acceptor(cfg());
    let r = Request { budget_us: crate::varint::MAX, ..req(0, 0, None, b"") };
    h.feed(&enc(&Frame::Call(r)));
    let evs = h.take();
    let deadline = T0 + core::time::Duration::from_micros(crate::varint::MAX);
    assert!(matches!(evs[..], [Ev::Request { id: 0, deadline: Some(d), .. }] if d == deadline), "{evs:?}");
    h.conn.handle_timeout(h.now);
    h.conn.respond(0, Status::OK, b"").unwrap();
    // From a clock near its end, the deadline saturates instead of wrapping.
    h.now = Instant::from_micros(u64::MAX - 10);
    h.feed(&enc(&Frame::Call(Request { id: 2, ..r })));
    assert!(matches!(h.take()[..], [Ev::Request { id: 2, .. }]));
}

#[test]
fn flood_of_calls_after_our_goaway_is_refused_and_bounded() {
    let c = Config { max_tx_buffer: 8192, ..cfg() };
    let mut h = Hostile::acceptor(c.clone());
    h.feed(&enc(&call(0, b"keeps the connection draining")));
    h.take();
    h.conn.go_away(h.now, Status::OK, b"").unwrap();
    let _ = h.transmit();
    // Read as they come: each is refused with UNAVAILABLE and nothing is tracked.
    for i in 1..=1000u64 {
        h.feed(&enc(&call(2 * i, b"")));
        let out = h.transmit();
        assert_eq!(frames(&out), vec![response(2 * i, Status::UNAVAILABLE, b"")]);
    }
    assert_eq!(h.take(), vec![]);
    assert_eq!(h.conn.open_exchanges(), 1);
    // Never read: the refusals fill the queue up to its bound, then the peer is cut off.
    for i in 1001..=3000u64 {
        h.feed(&enc(&call(2 * i, b"")));
        assert!(h.conn.pending_transmit() <= c.max_tx_buffer as usize);
        if h.conn.state() == State::Closed {
            break;
        }
    }
    h.assert_violation(Status::ENHANCE_YOUR_CALM);
}

// ============================================================================ fragmentation

#[test]
fn continuation_without_a_message_in_progress_is_a_protocol_error() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&cont(false, 0, b"x")));
    let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "CONTINUATION without a fragmented message in progress");
    // Nor after the message completed.
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[
        Frame::Call(req(flags::MORE, 0, Some(4), b"ab")),
        cont(false, 0, b"cd"),
        cont(false, 0, b"ef"),
    ]);
    let (_, evs) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert!(matches!(&evs[0], Ev::Request { payload, .. } if payload == b"abcd"), "{evs:?}");
}

#[test]
fn continuation_for_another_id_is_a_protocol_error() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[
        call(2, b"small"),
        Frame::Call(req(flags::MORE, 4, Some(10), b"12345")),
        cont(false, 2, b"67890"),
    ]);
    let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
    assert_eq!(reason, "CONTINUATION for another exchange than the message in progress");
}

#[test]
fn fragment_lengths_must_add_up_to_total_len() {
    let too_long = [Frame::Call(req(flags::MORE, 0, Some(10), b"12345")), cont(false, 0, b"678901")];
    let too_long_more = [Frame::Call(req(flags::MORE, 0, Some(10), b"12345")), cont(true, 0, b"678901")];
    let too_short = [Frame::Call(req(flags::MORE, 0, Some(10), b"12345")), cont(false, 0, b"6789")];
    let short_data = [
        open(0, false),
        Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(6), payload: b"ab" },
        cont(true, 0, b"cd"),
        cont(false, 0, b"e"),
    ];
    for fs in [&too_long[..], &too_long_more[..], &too_short[..], &short_data[..]] {
        let mut h = Hostile::acceptor(cfg());
        h.feed_frames(fs);
        let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
        assert_eq!(reason, "fragment lengths do not add up to total_len", "{fs:?}");
    }
}

#[test]
fn second_fragmented_message_while_one_is_in_progress_is_a_protocol_error() {
    for second in [
        Frame::Call(req(flags::MORE, 2, Some(10), b"x")),
        Frame::StreamOpen(req(flags::MORE, 2, Some(10), b"x")),
        Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(10), payload: b"x" },
    ] {
        let mut h = Hostile::acceptor(cfg());
        h.feed_frames(&[open(0, false), Frame::Call(req(flags::MORE, 4, Some(100), b"12345"))]);
        assert_eq!(h.take().len(), 1, "the stream open; the call is still arriving");
        let second = match second {
            Frame::Call(r) => Frame::Call(Request { id: 6, ..r }),
            Frame::StreamOpen(r) => Frame::StreamOpen(Request { id: 6, ..r }),
            f => f,
        };
        h.feed(&enc(&second));
        let (reason, _) = h.assert_violation(Status::PROTOCOL_ERROR);
        assert_eq!(reason, "a fragmented message started before the previous one finished");
    }
}

#[test]
fn other_frames_may_interleave_with_continuations() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[
        open(0, false),
        Frame::Call(req(flags::MORE, 2, Some(9), b"abc")),
        Frame::Ping([1; 8]),
        call(4, b"small"),
        data(0, b"item"),
        cont(true, 2, b"def"),
        Frame::Signal { module: 1, method: 2, payload: b"sig" },
        cont(false, 2, b"ghi"),
    ]);
    let evs = h.take();
    let kinds: Vec<_> = evs
        .iter()
        .map(|e| match e {
            Ev::Request { id, payload, .. } => (*id, payload.clone()),
            Ev::StreamData { id, payload } => (*id, payload.clone()),
            Ev::Signal { payload, .. } => (99, payload.clone()),
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (0, vec![]),
            (4, b"small".to_vec()),
            (0, b"item".to_vec()),
            (99, b"sig".to_vec()),
            (2, b"abcdefghi".to_vec())
        ]
    );
    let out = h.transmit();
    assert_eq!(frames(&out), vec![Frame::Pong([1; 8])]);
}

#[test]
fn total_len_above_max_message_size_is_refused_before_buffering() {
    let c = Config { max_message_size: 1024 * 1024, ..cfg() };
    for total in [1024 * 1024 + 1, 1 << 40, crate::varint::MAX] {
        for f in [
            Frame::Call(req(flags::MORE, 0, Some(total), b"x")),
            Frame::StreamOpen(req(flags::MORE, 0, Some(total), b"x")),
        ] {
            let mut h = Hostile::acceptor(c.clone());
            let before = h.conn.buffer_footprint();
            h.feed(&enc(&f));
            assert!(h.conn.buffer_footprint() < before + 64 * 1024);
            let (reason, evs) = h.assert_violation(Status::LIMIT_EXCEEDED);
            assert_eq!(reason, "message larger than max_message_size");
            assert_eq!(evs, vec![]);
        }
        // A stream item, and a response to one of our calls.
        let mut h = Hostile::acceptor(c.clone());
        h.feed(&enc(&open(0, false)));
        h.take();
        h.feed(&enc(&Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(total), payload: b"x" }));
        h.assert_violation(Status::LIMIT_EXCEEDED);
        let mut h = Hostile::acceptor(c.clone());
        let id = h.conn.call(h.now, ECHO, b"", None).unwrap();
        h.feed(&enc(&Frame::Response {
            flags: flags::MORE,
            id,
            status: Status::OK,
            total_len: Some(total),
            payload: b"x",
        }));
        h.assert_violation(Status::LIMIT_EXCEEDED);
    }
}

#[test]
fn unfragmented_message_above_max_message_size_is_limit_exceeded() {
    // max_message_size below max_frame_size: one frame can carry too much.
    let c = Config { max_message_size: 4096, max_frame_size: 16 * 1024, ..cfg() };
    let mut h = Hostile::acceptor(c);
    h.feed(&enc(&call(0, &[0; 4096])));
    assert_eq!(h.take().len(), 1);
    h.feed(&enc(&call(2, &[0; 4097])));
    h.assert_violation(Status::LIMIT_EXCEEDED);
}

#[test]
fn announced_total_len_does_not_preallocate() {
    // total_len at the limit (4 MiB), but only 10 bytes ever arrive: memory follows what
    // arrived, not what was announced.
    let c = cfg();
    let mut h = Hostile::acceptor(c.clone());
    h.feed(&enc(&Frame::Call(req(flags::MORE, 0, Some(u64::from(c.max_message_size)), b"0123456789"))));
    assert_eq!(h.take(), vec![]);
    assert_eq!(h.conn.open_exchanges(), 1);
    assert!(h.conn.buffer_footprint() < 128 * 1024, "{}", h.conn.buffer_footprint());
    // The app cannot answer a request it has not seen.
    assert!(matches!(h.conn.respond(0, Status::OK, b""), Err(ApiError::WrongState(_))));
}

// ============================================================================ a peer that never reads

#[test]
fn peer_that_never_reads_meets_tx_full_and_the_queue_stays_bounded() {
    let c = Config { max_tx_buffer: 16 * 1024, ..cfg() };
    let bound = c.max_tx_buffer as usize;
    let mut h = Hostile::connected_with(Role::Dialer, c, &[(param::MAX_CONCURRENT_CALLS, 10_000)]);
    let mut calls = 0;
    let err = loop {
        match h.conn.call(h.now, ECHO, &[0u8; 1000], None) {
            Ok(_) => calls += 1,
            Err(e) => break e,
        }
        assert!(h.conn.pending_transmit() <= bound);
        assert!(calls < 1000, "never refused");
    };
    assert_eq!(err, ApiError::TxFull);
    assert!(err.is_backpressure());
    assert!(calls >= 8, "{calls}");
    // Notifications and signals meet the same wall.
    assert_eq!(h.conn.notify(h.now, SINK, &[0u8; 1000], None), Err(ApiError::TxFull));
    assert_eq!(h.conn.signal(SINK, &[0u8; 1000]), Err(ApiError::TxFull));
    // Control frames still fit in the reserve, up to the bound.
    let mut pings = 0;
    while h.conn.ping(h.now).is_ok() {
        pings += 1;
        assert!(h.conn.pending_transmit() <= bound);
    }
    assert!(pings > 100);
    assert_eq!(h.conn.ping(h.now), Err(ApiError::TxFull));
    assert!(h.conn.pending_transmit() <= bound);
    // A message that could never fit is TooLarge, not TxFull.
    assert!(matches!(h.conn.call(h.now, ECHO, &[0; 20_000], None), Err(ApiError::TooLarge { .. })));
    // Draining makes room again.
    let out = h.transmit();
    assert_eq!(frames(&out).len(), calls + pings);
    h.conn.call(h.now, ECHO, &[0u8; 1000], None).unwrap();
}

#[test]
fn stream_sender_meets_no_credit_then_tx_full() {
    let c = Config { max_tx_buffer: 16 * 1024, ..cfg() };
    let mut h = Hostile::connected_with(
        Role::Dialer,
        c.clone(),
        &[
            (param::STREAM_CREDIT_MSGS, 3),
            (param::STREAM_CREDIT_BYTES, 5000),
            (param::CONN_CREDIT_BYTES, 1 << 30),
        ],
    );
    let s = h.conn.open_stream(h.now, ECHO, b"", None, false).unwrap();
    for _ in 0..3 {
        h.conn.stream_send(s, &[1; 100]).unwrap();
    }
    assert_eq!(h.conn.stream_send(s, &[1; 100]), Err(ApiError::NoCredit));
    assert!(ApiError::NoCredit.is_backpressure());
    // The peer grants a lot of credit but never reads: now the queue is the limit.
    h.feed(&enc(&Frame::StreamCredit { id: s, msgs: 1_000_000, bytes: 1 << 30 }));
    assert_eq!(h.take(), vec![Ev::StreamWritable { id: s }]);
    let mut sent = 0u32;
    let err = loop {
        match h.conn.stream_send(s, &[2; 1000]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(h.conn.pending_transmit() <= c.max_tx_buffer as usize);
        assert!(sent < 100);
    };
    assert_eq!(err, ApiError::TxFull);
    // A refused item consumed no credit.
    // (The byte figure is the smaller of the stream's and the connection's window.)
    assert_eq!(h.conn.stream_credit(s), Some((1_000_000 - sent, (1 << 30) - 300 - 1000 * sent)));
}

// ============================================================================ the API side

#[test]
fn calls_beyond_the_peers_limit_are_too_many_calls() {
    let mut h = Hostile::connected_with(
        Role::Dialer,
        cfg(),
        &[(param::MAX_CONCURRENT_CALLS, 2), (param::MAX_CONCURRENT_STREAMS, 1)],
    );
    let a = h.conn.call(h.now, ECHO, b"", None).unwrap();
    let _b = h.conn.notify(h.now, ECHO, b"", None).unwrap();
    assert_eq!(h.conn.call(h.now, ECHO, b"", None), Err(ApiError::TooManyCalls { limit: 2 }));
    assert_eq!(h.conn.notify(h.now, ECHO, b"", None), Err(ApiError::TooManyCalls { limit: 2 }));
    let s = h.conn.open_stream(h.now, ECHO, b"", None, true).unwrap();
    assert_eq!(h.conn.open_stream(h.now, ECHO, b"", None, false), Err(ApiError::TooManyStreams { limit: 1 }));
    // A cancelled call still occupies its slot at the peer until the peer answers.
    h.conn.cancel(a).unwrap();
    assert_eq!(h.conn.call(h.now, ECHO, b"", None), Err(ApiError::TooManyCalls { limit: 2 }));
    h.feed(&enc(&response(a, Status::CANCELLED, b"")));
    assert_eq!(h.take(), vec![], "a cancelled call resolves only once");
    h.conn.call(h.now, ECHO, b"", None).unwrap();
    // The stream frees once both directions ended.
    h.feed(&enc(&Frame::StreamFin { id: s, status: Status::OK }));
    assert_eq!(h.take(), vec![Ev::StreamFin { id: s, status: Status::OK }]);
    h.conn.open_stream(h.now, ECHO, b"", None, false).unwrap();
    // Our own cap applies too.
    let c = Config { max_outbound_calls: 1, ..cfg() };
    let mut h = Hostile::connected_with(Role::Dialer, c, &[]);
    h.conn.call(h.now, ECHO, b"", None).unwrap();
    assert_eq!(h.conn.call(h.now, ECHO, b"", None), Err(ApiError::TooManyCalls { limit: 1 }));
}

#[test]
fn stream_item_larger_than_the_peers_byte_window_is_too_large() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[(param::STREAM_CREDIT_BYTES, 1000)]);
    let s = h.conn.open_stream(h.now, ECHO, b"", None, false).unwrap();
    assert_eq!(h.conn.stream_send(s, &[0; 1001]), Err(ApiError::TooLarge { size: 1001, limit: 1000 }));
    h.conn.stream_send(s, &[0; 1000]).unwrap();
    // Now the window is spent: the same size is back-pressure, not TooLarge.
    assert_eq!(h.conn.stream_send(s, &[0; 1000]), Err(ApiError::NoCredit));
}

#[test]
fn signal_larger_than_one_frame_is_too_large() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[(param::MAX_FRAME_SIZE, 4096)]);
    let _ = h.transmit();
    // SIGNAL body: module (1 byte) + method (1 byte) + payload.
    assert_eq!(h.conn.signal(SINK, &[0; 4095]), Err(ApiError::TooLarge { size: 4095, limit: 4094 }));
    h.conn.signal(SINK, &[0; 4094]).unwrap();
    let big_ids = MethodId::new(u32::MAX, u32::MAX);
    assert_eq!(h.conn.signal(big_ids, &[0; 4094]), Err(ApiError::TooLarge { size: 4094, limit: 4080 }));
    let out = h.transmit();
    assert_eq!(frames(&out).len(), 1);
}

#[test]
fn large_messages_respect_the_peers_frame_size() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[(param::MAX_FRAME_SIZE, 4096)]);
    let big: Vec<u8> = (0..50_000u32).map(|i| i as u8).collect();
    let id = h.conn.call(h.now, ECHO, &big, None).unwrap();
    let out = h.transmit();
    let mut got = Vec::new();
    let mut rest = &out[..];
    while !rest.is_empty() {
        let Ok(Decoded::Frame(f, n)) = Frame::decode(rest, 4096) else {
            panic!("frame above the peer's limit")
        };
        match f {
            Frame::Call(r) => {
                assert_eq!((r.id, r.total_len), (id, Some(50_000)));
                got.extend_from_slice(r.payload);
            }
            Frame::Continuation { id: i, payload, .. } => {
                assert_eq!(i, id);
                got.extend_from_slice(payload);
            }
            f => panic!("{f:?}"),
        }
        rest = &rest[n..];
    }
    assert_eq!(got, big);
}

#[test]
fn message_above_the_peers_max_message_size_is_too_large() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[(param::MAX_MESSAGE_SIZE, 5000)]);
    assert_eq!(
        h.conn.call(h.now, ECHO, &[0; 5001], None),
        Err(ApiError::TooLarge { size: 5001, limit: 5000 })
    );
    assert_eq!(
        h.conn.open_stream(h.now, ECHO, &[0; 5001], None, false),
        Err(ApiError::TooLarge { size: 5001, limit: 5000 })
    );
    h.feed(&enc(&call(1, b"")));
    h.take();
    assert_eq!(
        h.conn.respond(1, Status::OK, &[0; 5001]),
        Err(ApiError::TooLarge { size: 5001, limit: 5000 })
    );
    h.conn.respond(1, Status::OK, &[0; 5000]).unwrap();
}

#[test]
fn api_before_the_handshake_is_not_connected() {
    for role in [Role::Dialer, Role::Acceptor] {
        let mut h = Hostile::raw(role, cfg());
        let now = h.now;
        assert_eq!(h.conn.call(now, ECHO, b"", None), Err(ApiError::NotConnected));
        assert_eq!(h.conn.notify(now, ECHO, b"", None), Err(ApiError::NotConnected));
        assert_eq!(h.conn.open_stream(now, ECHO, b"", None, false), Err(ApiError::NotConnected));
        assert_eq!(h.conn.signal(ECHO, b""), Err(ApiError::NotConnected));
        assert_eq!(h.conn.ping(now), Err(ApiError::NotConnected));
        assert_eq!(h.conn.go_away(now, Status::OK, b""), Err(ApiError::NotConnected));
        assert!(h.transmit().is_empty(), "nothing but HELLO before the handshake");
    }
}

#[test]
fn api_after_close_is_closed() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&open(0, false)));
    h.take();
    h.conn.close(h.now, Status::OK, b"bye");
    h.poll();
    let now = h.now;
    assert_eq!(h.conn.call(now, ECHO, b"", None), Err(ApiError::Closed));
    assert_eq!(h.conn.notify(now, ECHO, b"", None), Err(ApiError::Closed));
    assert_eq!(h.conn.open_stream(now, ECHO, b"", None, false), Err(ApiError::Closed));
    assert_eq!(h.conn.signal(ECHO, b""), Err(ApiError::Closed));
    assert_eq!(h.conn.ping(now), Err(ApiError::Closed));
    assert_eq!(h.conn.respond(0, Status::OK, b""), Err(ApiError::Closed));
    assert_eq!(h.conn.cancel(0), Err(ApiError::Closed));
    assert_eq!(h.conn.stream_send(0, b""), Err(ApiError::Closed));
    assert_eq!(h.conn.stream_finish(0, Status::OK), Err(ApiError::Closed));
    assert_eq!(h.conn.stream_reset(0, Status::OK), Err(ApiError::Closed));
    // After a peer-caused close as well.
    let mut h = Hostile::acceptor(cfg());
    h.feed(&[0x7f, 0]);
    h.poll();
    assert_eq!(h.conn.call(h.now, ECHO, b"", None), Err(ApiError::Closed));
}

// ============================================================================ fragments that straddle a state change

#[test]
fn call_cancelled_while_arriving_is_delivered_then_cancelled() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[Frame::Call(req(flags::MORE, 0, Some(6), b"abc")), Frame::Cancel { id: 0 }]);
    assert_eq!(h.take(), vec![], "nothing to report for a request the app has not seen");
    h.feed(&enc(&cont(false, 0, b"def")));
    let evs = h.take();
    assert!(
        matches!(&evs[..], [Ev::Request { id: 0, payload, .. }, Ev::Cancelled { id: 0, status: Status::CANCELLED }] if payload == b"abcdef"),
        "{evs:?}"
    );
    h.conn.respond(0, Status::OK, b"x").unwrap();
    assert_eq!(frames(&h.transmit()), vec![response(0, Status::CANCELLED, b"")]);
    assert_eq!(h.conn.open_exchanges(), 0);
}

#[test]
fn call_deadline_passing_while_arriving_is_delivered_then_cancelled() {
    let mut h = Hostile::acceptor(cfg());
    let r = Request { budget_us: 1_000, ..req(flags::MORE, 0, Some(6), b"abc") };
    h.feed(&enc(&Frame::Call(r)));
    h.now = T0 + ms(5);
    h.conn.handle_timeout(h.now);
    h.poll();
    assert_eq!(h.take(), vec![]);
    h.feed(&enc(&cont(false, 0, b"def")));
    let evs = h.take();
    assert!(
        matches!(
            &evs[..],
            [Ev::Request { id: 0, .. }, Ev::Cancelled { id: 0, status: Status::DEADLINE_EXCEEDED }]
        ),
        "{evs:?}"
    );
}

/// The app resets a stream while one of the peer's items is still arriving in fragments: SPEC
/// §7.4.3 row 4 discards received items not yet consumed (an item is received at its first frame,
/// §7), so that item must not be delivered after the reset.
#[test]
fn item_arriving_across_a_local_reset_is_discarded() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[
        open(0, false),
        Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(6), payload: b"abc" },
    ]);
    assert_eq!(h.take().len(), 1);
    h.conn.stream_reset(0, Status::CANCELLED).unwrap();
    let out = h.transmit();
    assert!(frames(&out).contains(&Frame::StreamReset { id: 0, status: Status::CANCELLED }));
    h.feed(&enc(&cont(false, 0, b"def")));
    assert_eq!(h.take(), vec![], "no item after the app reset the stream");
}

/// The peer resets a stream whose STREAM_OPEN is still arriving in fragments. SPEC §7: "Events for
/// an exchange whose opening message has not been delivered yet are reported to the application
/// after the opening message" — so either Request then StreamReset, or (the initial payload being
/// "completed and then discarded", §7.4.3) nothing at all and no slot left behind.
#[test]
fn peer_reset_of_a_stream_still_opening_is_consistent() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[
        Frame::StreamOpen(req(flags::MORE, 0, Some(6), b"abc")),
        Frame::StreamReset { id: 0, status: Status::CANCELLED },
        cont(false, 0, b"def"),
    ]);
    let evs = h.take();
    let ok_silent = evs.is_empty() && h.conn.open_exchanges() == 0;
    let ok_ordered = matches!(&evs[..], [Ev::Request { id: 0, .. }, Ev::StreamReset { id: 0, .. }]);
    assert!(ok_silent || ok_ordered, "{evs:?}, {} open", h.conn.open_exchanges());
}

/// The deadline of a peer's stream passes while its STREAM_OPEN is still arriving: the reset must
/// not be reported before the request (SPEC §7, as for calls, §7.1.2).
#[test]
fn stream_deadline_passing_while_opening_is_reported_after_the_request() {
    let mut h = Hostile::acceptor(cfg());
    let r = Request { budget_us: 1_000, ..req(flags::MORE, 0, Some(6), b"abc") };
    h.feed(&enc(&Frame::StreamOpen(r)));
    h.now = T0 + ms(5);
    h.conn.handle_timeout(h.now);
    h.poll();
    h.feed(&enc(&cont(false, 0, b"def")));
    let evs = h.take();
    assert!(
        matches!(
            &evs[..],
            [Ev::Request { id: 0, .. }, Ev::StreamReset { id: 0, status: Status::DEADLINE_EXCEEDED }]
        ),
        "{evs:?}"
    );
}

// ============================================================================ packet transports

fn packet_cfg() -> Config {
    Config { transport: crate::Transport::Packet { max_datagram: 1200 }, ..cfg() }
}

#[test]
fn datagram_ending_inside_a_frame_is_truncated() {
    let mut h = Hostile::connected_with(Role::Acceptor, packet_cfg(), &[(param::MAX_DATAGRAM_SIZE, 1200)]);
    let f = enc(&call(0, b"abcdef"));
    assert_eq!(h.conn.handle_input(h.now, &f[..f.len() - 1]), f.len() - 1);
    h.assert_malformed(DecodeError::Truncated);
}

#[test]
fn datagram_larger_than_max_datagram_is_limit_exceeded() {
    let mut h = Hostile::connected_with(Role::Acceptor, packet_cfg(), &[(param::MAX_DATAGRAM_SIZE, 1200)]);
    let mut dgram = Vec::new();
    for i in 0..200u64 {
        dgram.extend_from_slice(&enc(&Frame::Ping(i.to_be_bytes())));
    }
    assert!(dgram.len() > 1200);
    let _ = h.conn.handle_input(h.now, &dgram);
    h.assert_violation(Status::LIMIT_EXCEEDED);
}

/// A peer's stream runs out of deadline on both clocks: our timer reports it (SPEC §7.4.3 row 15),
/// then the opener's RESET(DEADLINE_EXCEEDED) arrives (row 9: R is still OPEN, so it may be reported
/// once more). Either way the handler's release sends exactly one terminal and frees the slot.
#[test]
fn stream_deadline_then_the_openers_reset_is_released_once() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&Frame::StreamOpen(Request { budget_us: 1_000, ..req(0, 0, None, b"") })));
    assert_eq!(h.take().len(), 1);
    h.now = T0 + ms(1);
    h.conn.handle_timeout(h.now);
    h.poll();
    assert_eq!(h.take(), vec![Ev::StreamReset { id: 0, status: Status::DEADLINE_EXCEEDED }]);
    assert!(h.transmit().is_empty(), "the responder answers when its handler lets go");
    h.feed(&enc(&Frame::StreamReset { id: 0, status: Status::DEADLINE_EXCEEDED }));
    let evs = h.take();
    assert!(
        evs.is_empty() || evs == vec![Ev::StreamReset { id: 0, status: Status::DEADLINE_EXCEEDED }],
        "{evs:?}"
    );
    assert_eq!(h.conn.open_exchanges(), 1);
    h.conn.stream_reset(0, Status::DEADLINE_EXCEEDED).unwrap();
    assert_eq!(frames(&h.transmit()), vec![Frame::StreamReset { id: 0, status: Status::DEADLINE_EXCEEDED }]);
    assert_eq!(h.conn.open_exchanges(), 0);
}

#[test]
fn call_deadline_is_reported_once_when_the_callers_cancel_follows() {
    let mut h = Hostile::acceptor(cfg());
    h.feed(&enc(&Frame::Call(Request { budget_us: 1_000, ..req(0, 0, None, b"") })));
    assert_eq!(h.take().len(), 1);
    h.now = T0 + ms(1);
    h.conn.handle_timeout(h.now);
    h.poll();
    assert_eq!(h.take(), vec![Ev::Cancelled { id: 0, status: Status::DEADLINE_EXCEEDED }]);
    h.feed(&enc(&Frame::Cancel { id: 0 }));
    assert_eq!(h.take(), vec![]);
    h.conn.respond(0, Status::OK, b"late").unwrap();
    assert_eq!(frames(&h.transmit()), vec![response(0, Status::DEADLINE_EXCEEDED, b"")]);
}

// ============================================================================ SPEC.md rules beyond the brief

#[test]
fn signal_larger_than_max_message_size_is_limit_exceeded() {
    // SPEC §7.3: a SIGNAL payload above the receiver's max_message_size is LIMIT_EXCEEDED.
    let c = Config { max_message_size: 4096, max_frame_size: 16 * 1024, ..cfg() };
    let mut h = Hostile::acceptor(c);
    h.feed(&enc(&Frame::Signal { module: 1, method: 1, payload: &[0; 4096] }));
    assert_eq!(h.take().len(), 1);
    h.feed(&enc(&Frame::Signal { module: 1, method: 1, payload: &[0; 4097] }));
    let (reason, _) = h.assert_violation(Status::LIMIT_EXCEEDED);
    assert_eq!(reason, "SIGNAL larger than max_message_size");
}

#[test]
fn inconsistent_resume_flag_in_the_dialers_hello_is_a_protocol_error() {
    // SPEC §5.5: RESUME with an empty session, or a session without RESUME.
    for (fl, session) in [(crate::frame::Hello::RESUME, &b""[..]), (0, &b"token"[..])] {
        let mut h = Hostile::raw(Role::Acceptor, cfg());
        h.feed(&hello_session(1, 1, fl, session, &[]));
        h.assert_violation(Status::PROTOCOL_ERROR);
    }
    // Consistent: the acceptor, which does not resume, answers with a new session (RESUME clear).
    let mut h = Hostile::raw(Role::Acceptor, cfg());
    h.feed(&hello_session(1, 1, crate::frame::Hello::RESUME, b"token", &[]));
    assert_eq!(h.take(), vec![Ev::Connected]);
    let out = h.transmit();
    assert!(matches!(frames(&out)[..], [Frame::Hello(Hello { flags: 0, .. })]), "{:?}", frames(&out));
    assert!(h.conn.peer().unwrap().resume);
}

#[test]
fn acceptor_confirming_a_resumption_never_asked_for_is_a_protocol_error() {
    let mut h = Hostile::raw(Role::Dialer, cfg());
    h.feed(&hello_session(1, 1, crate::frame::Hello::RESUME, b"made-up", &[]));
    h.assert_violation(Status::PROTOCOL_ERROR);
}

/// SPEC §5.5: "The dialer closes the connection with PROTOCOL_ERROR if the acceptor's HELLO has
/// RESUME set although the dialer did not request resumption, or has RESUME set with a session
/// different from the one requested."
#[test]
fn acceptor_resuming_another_session_than_requested_is_a_protocol_error() {
    let mut h = Hostile::raw_with_session(Role::Dialer, cfg(), b"tok-1");
    h.feed(&hello_session(1, 1, crate::frame::Hello::RESUME, b"tok-2", &[]));
    h.assert_violation(Status::PROTOCOL_ERROR);
}

#[test]
fn acceptor_resuming_the_requested_session_or_starting_a_new_one_is_accepted() {
    for (fl, session) in [(crate::frame::Hello::RESUME, &b"tok-1"[..]), (0, &b"fresh"[..]), (0, &b""[..])] {
        let mut h = Hostile::raw_with_session(Role::Dialer, cfg(), b"tok-1");
        h.feed(&hello_session(1, 1, fl, session, &[]));
        assert_eq!(h.take(), vec![Ev::Connected], "{fl} {session:?}");
        assert_eq!(h.conn.peer().unwrap().resume, fl != 0);
    }
}

#[test]
fn opening_checks_run_in_spec_order_after_goaway() {
    // SPEC §6.3: size (3) before the GOAWAY refusal (4) before the concurrency limit (5).
    let c = Config { max_concurrent_calls: 1, max_message_size: 4096, ..cfg() };
    let mut h = Hostile::acceptor(c.clone());
    h.feed(&enc(&call(0, b"")));
    h.take();
    h.conn.go_away(h.now, Status::OK, b"").unwrap();
    let _ = h.transmit();
    // Beyond the concurrency limit, but refused by GOAWAY first: not an error.
    h.feed(&enc(&call(2, b"")));
    assert_eq!(frames(&h.transmit()), vec![response(2, Status::UNAVAILABLE, b"")]);
    h.feed(&enc(&open(4, false)));
    assert_eq!(frames(&h.transmit()), vec![Frame::StreamReset { id: 4, status: Status::UNAVAILABLE }]);
    assert_eq!(h.take(), vec![]);
    // A refused fragmented open is consumed to its end and discarded.
    h.feed_frames(&[Frame::Call(req(flags::MORE, 6, Some(6), b"abc")), cont(false, 6, b"def")]);
    assert_eq!(frames(&h.transmit()), vec![response(6, Status::UNAVAILABLE, b"")]);
    assert_eq!(h.take(), vec![]);
    assert_eq!(h.conn.open_exchanges(), 1);
    // The message size is checked before the refusal.
    h.feed(&enc(&Frame::Call(req(flags::MORE, 8, Some(4097), b"x"))));
    h.assert_violation(Status::LIMIT_EXCEEDED);
}

#[test]
fn eof_after_whole_frames_delivers_them_then_reports_the_partial_one() {
    let mut h = Hostile::acceptor(cfg());
    let mut bytes = enc(&call(0, b"whole"));
    bytes.extend_from_slice(&enc(&call(2, b"partial"))[..5]);
    h.feed(&bytes);
    h.conn.handle_eof(h.now);
    let evs = h.assert_malformed(DecodeError::Truncated);
    assert!(matches!(&evs[0], Ev::Request { id: 0, payload, .. } if payload == b"whole"), "{evs:?}");
    assert_eq!(evs[1], Ev::Cancelled { id: 0, status: Status::UNAVAILABLE });
}

#[test]
fn stream_data_or_fin_while_the_same_streams_message_is_in_progress_is_a_protocol_error() {
    let cases: Vec<Vec<Frame<'static>>> = vec![
        // The initial payload is still arriving.
        vec![Frame::StreamOpen(req(flags::MORE, 0, Some(6), b"abc")), data(0, b"x")],
        vec![
            Frame::StreamOpen(req(flags::MORE, 0, Some(6), b"abc")),
            Frame::StreamFin { id: 0, status: Status::OK },
        ],
        // An item is still arriving.
        vec![
            open(0, false),
            Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(6), payload: b"a" },
            data(0, b"x"),
        ],
        vec![
            open(0, false),
            Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(6), payload: b"a" },
            Frame::StreamFin { id: 0, status: Status::OK },
        ],
    ];
    for fs in cases {
        let mut h = Hostile::acceptor(cfg());
        h.feed_frames(&fs);
        h.assert_violation(Status::PROTOCOL_ERROR);
    }
    // Another stream's data may interleave.
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[
        open(0, false),
        open(2, false),
        Frame::StreamData { flags: flags::MORE, id: 0, total_len: Some(6), payload: b"abc" },
        data(2, b"other"),
        cont(false, 0, b"def"),
    ]);
    let evs = h.take();
    assert_eq!(
        evs[2..],
        [
            Ev::StreamData { id: 2, payload: b"other".to_vec() },
            Ev::StreamData { id: 0, payload: b"abcdef".to_vec() }
        ]
    );
}

/// SPEC §7.1.1: on the first frame of a fragmented RESPONSE the caller frees its concurrency slot
/// and stops the deadline timer (state RECEIVING); the call then resolves with that response.
#[test]
fn fragmented_response_stops_the_callers_deadline() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[]);
    let id = h.conn.call(h.now, ECHO, b"q", Some(T0 + ms(100))).unwrap();
    let _ = h.transmit();
    h.now = T0 + ms(50);
    h.feed(&enc(&Frame::Response {
        flags: flags::MORE,
        id,
        status: Status::OK,
        total_len: Some(6),
        payload: b"abc",
    }));
    h.now = T0 + ms(150);
    h.conn.handle_timeout(h.now);
    h.poll();
    assert_eq!(h.take(), vec![], "the response is arriving: no deadline any more");
    h.feed(&enc(&cont(false, id, b"def")));
    assert_eq!(h.take(), vec![Ev::Response { id, status: Status::OK, payload: b"abcdef".to_vec() }]);
    assert!(!frames(&h.transmit()).iter().any(|f| matches!(f, Frame::Cancel { .. })));
}

#[test]
fn fragmented_response_frees_the_callers_slot_at_its_first_frame() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[(param::MAX_CONCURRENT_CALLS, 1)]);
    let id = h.conn.call(h.now, ECHO, b"q", None).unwrap();
    h.feed(&enc(&Frame::Response {
        flags: flags::MORE,
        id,
        status: Status::OK,
        total_len: Some(6),
        payload: b"abc",
    }));
    h.conn.call(h.now, ECHO, b"next", None).unwrap();
}

#[test]
fn cancel_while_the_response_arrives_does_not_drop_it() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[]);
    let id = h.conn.call(h.now, ECHO, b"q", None).unwrap();
    let _ = h.transmit();
    h.feed(&enc(&Frame::Response {
        flags: flags::MORE,
        id,
        status: Status::OK,
        total_len: Some(6),
        payload: b"abc",
    }));
    let _ = h.conn.cancel(id);
    h.feed(&enc(&cont(false, id, b"def")));
    assert_eq!(h.take(), vec![Ev::Response { id, status: Status::OK, payload: b"abcdef".to_vec() }]);
}

#[test]
fn connection_end_while_a_response_arrives_fails_the_call_once() {
    let mut h = Hostile::connected_with(Role::Dialer, cfg(), &[]);
    let id = h.conn.call(h.now, ECHO, b"q", None).unwrap();
    h.feed(&enc(&Frame::Response {
        flags: flags::MORE,
        id,
        status: Status::OK,
        total_len: Some(6),
        payload: b"abc",
    }));
    h.feed(&[0x7f, 0]);
    let evs = h.assert_malformed(DecodeError::UnknownFrameType(0x7f));
    assert_eq!(evs, vec![Ev::Failed { id, status: Status::UNAVAILABLE }]);
}

/// `stream_consumed` documents "consuming on a stream that already ended is a no-op". After the
/// application reset a stream (or its deadline did), consuming an item it was given before is
/// refused with WrongState while the stream's slot waits for the peer's terminal, and accepted once
/// the slot is gone: the same call fails or succeeds depending on network timing.
#[test]
fn consuming_after_a_reset_is_a_no_op() {
    let mut h = Hostile::acceptor(cfg());
    h.feed_frames(&[open(0, false), data(0, b"item")]);
    assert_eq!(h.take().len(), 2);
    h.conn.stream_reset(0, Status::CANCELLED).unwrap();
    assert_eq!(h.conn.stream_consumed(0, 1, 4), Ok(()));
}

#[test]
fn connection_end_during_an_undelivered_request_reports_nothing_for_it() {
    let mut h = Hostile::acceptor(cfg());
    let first = Request {
        flags: flags::MORE,
        id: 0,
        module: 1,
        method: 1,
        budget_us: 0,
        total_len: Some(10),
        payload: b"abc",
    };
    h.feed(&enc(&Frame::Call(first)));
    assert!(h.take().is_empty(), "the request is still arriving");
    assert_eq!(h.conn.open_exchanges(), 1);
    h.feed(&[0x7f, 0x00]); // a malformed frame ends the connection
    let evs = h.take();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(matches!(evs[0], Ev::Closed(_)), "{evs:?}");
    assert_eq!(h.conn.open_exchanges(), 0);
}

#[test]
fn exchange_ids_run_out_with_a_specific_error_and_the_last_id_still_works() {
    let mut p = super::pair::Pair::connected();
    p.b.echo = true;
    let now = p.now;
    // The dialer's last id is 2^62-2 (even, the largest varint of its parity).
    p.a.conn.test_set_next_id(crate::varint::MAX - 1);
    let last = p.a.conn.call(now, ECHO, b"last", None).expect("the last id is usable");
    assert_eq!(last, crate::varint::MAX - 1);
    assert_eq!(p.a.conn.call(now, ECHO, b"one more", None), Err(ApiError::IdsExhausted));
    assert_eq!(ApiError::IdsExhausted.status(), Status::UNAVAILABLE);
    p.drive();
    let evs = p.a.take();
    assert!(
        matches!(evs.as_slice(), [Ev::Response { id, status: Status::OK, .. }] if id == &last),
        "{evs:?}"
    );
    // A peer that opens anything after the highest id has necessarily reused one.
    let reused = crate::frame::Frame::Call(crate::frame::Request {
        flags: 0,
        id: crate::varint::MAX - 1,
        module: 1,
        method: 1,
        budget_us: 0,
        total_len: None,
        payload: b"",
    });
    let mut buf = [0u8; 64];
    let n = reused.encode(&mut buf).unwrap();
    let _ = p.b.conn.handle_input(now, &buf[..n]);
    p.drive();
    let evs = p.b.take();
    assert!(
        matches!(
            evs.last(),
            Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
        ),
        "{evs:?}"
    );
    assert_eq!(p.b.conn.open_exchanges(), 0);
}
