//! The `conn_frames` target: one connection past a valid handshake, fed structured frames from a
//! scripted peer (every frame type, ids near the valid ones, random flags, lengths and statuses)
//! interleaved with local API actions and timer jumps.

use crate::actions::{apply, Action};
use crate::checks::{configs, footprint_bound, slot_capacity};
use crate::track::{length, status, Tracker, PAYLOAD};
use arbitrary::Arbitrary;
use core::time::Duration;
use tandem_core::config::param;
use tandem_core::frame::{flags, Ack, Decoded, Frame, Hello, Params, Request};
use tandem_core::{varint, Config, Connection, Identity, Instant, Role, State, Transport};

/// Announced peer limits (each `None` is left at its default).
#[derive(Arbitrary, Debug)]
pub struct PeerHello {
    max_frame_size: Option<u8>,
    max_message_size: Option<u16>,
    max_concurrent_calls: Option<u8>,
    max_concurrent_streams: Option<u8>,
    stream_credit_msgs: Option<u8>,
    stream_credit_bytes: Option<u16>,
    conn_credit_extra: Option<u16>,
    max_datagram: Option<u16>,
    unknown_param: bool,
}

/// Which exchange id a frame refers to.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum IdSel {
    /// The next id the peer may open.
    PeerNext,
    /// A gap: the next id plus 2k.
    PeerSkip(u8),
    /// One the peer already opened.
    PeerRecent(u8),
    /// One this side opened.
    OwnRecent(u8),
    /// The id this side will open next (never opened yet).
    OwnNext,
    /// The exchange of the last fragmented message the peer started.
    LastMore,
    /// Any small id.
    Small(u8),
    /// The largest id.
    Huge,
}

/// A message body: payload length and fragmentation.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Msg {
    len: u8,
    /// Set MORE with total_len = len + extra (extra 0 is an invalid total).
    more: Option<u8>,
    /// Flags byte as sent, unmasked (usually None: valid flags).
    raw_flags: Option<u8>,
}

/// An opening frame's fields.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Req {
    id: IdSel,
    fin: bool,
    module: u8,
    method: u8,
    budget_ms: u8,
    msg: Msg,
}

/// One frame from the scripted peer.
#[derive(Arbitrary, Debug)]
pub enum FrameSpec {
    /// A second HELLO.
    Hello,
    /// CLOSE.
    Close { status: u8, msg: u8 },
    /// GOAWAY.
    GoAway { bound: IdSel, status: u8 },
    /// PING.
    Ping(u8),
    /// PONG, usually answering our PING number `seq`.
    Pong(u8),
    /// ACK of some ids.
    Ack(IdSel, u8),
    /// CALL.
    Call(Req),
    /// NOTIFY.
    Notify(Req),
    /// STREAM_OPEN.
    StreamOpen(Req),
    /// SIGNAL.
    Signal(u8, u8),
    /// RESPONSE.
    Response { id: IdSel, status: u8, msg: Msg },
    /// CANCEL.
    Cancel(IdSel),
    /// STREAM_DATA.
    StreamData(IdSel, Msg),
    /// STREAM_FIN.
    StreamFin(IdSel, u8),
    /// STREAM_RESET.
    StreamReset(IdSel, u8),
    /// STREAM_CREDIT.
    StreamCredit { id: IdSel, msgs: u8, bytes: u8 },
    /// CONN_CREDIT.
    ConnCredit(u8),
    /// STREAM_RESUME.
    StreamResume(IdSel, u8),
    /// CONTINUATION.
    Continuation { id: IdSel, more: bool, len: u8 },
    /// An extension frame.
    Extension(u8, u8),
    /// Raw bytes.
    Raw(Vec<u8>),
}

/// One step of the script.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// The peer sends frames (coalesced into one read).
    Recv(Vec<FrameSpec>),
    /// A local API action.
    Api(Action),
    /// `poll_transmit` with a buffer of this size (0: drain everything).
    Transmit(u16),
    /// Advance the clock by this many milliseconds (times 16) and fire timers.
    Advance(u8),
    /// Advance to the next timer.
    AdvanceToTimer,
    /// End of file from the peer.
    Eof,
}

/// The whole input.
#[derive(Arbitrary, Debug)]
pub struct Input {
    dialer: bool,
    /// The configuration (`configs`, modulo 4); bit 2: a resumable session; bit 3: stream
    /// payloads received directly (`Connection::direct_offer`); bits 4–5: the size of the
    /// reads the peer's bytes arrive in (whole, 1, 13 or 200 bytes), cutting frames.
    config: u8,
    peer: PeerHello,
    ops: Vec<Op>,
}

struct Harness {
    c: Connection<'static>,
    cfg: Config,
    t: Tracker,
    now: Instant,
    peer_parity: u64,
    /// Next id the peer may open; ids it opened.
    peer_next: u64,
    peer_ids: Vec<u64>,
    last_more: u64,
    /// Everything the connection transmitted, decoded as it goes.
    wire: Vec<u8>,
    wire_closed: bool,
    peer_max_frame: usize,
    peer_max_dgram: usize,
    scratch: Vec<u8>,
    packet: bool,
    /// Largest read the peer's bytes arrive in (byte streams).
    chunk: usize,
}

fn params(p: &PeerHello, packet: bool) -> Vec<(u64, u64)> {
    let mut v = Vec::new();
    if let Some(b) = p.max_frame_size {
        v.push((param::MAX_FRAME_SIZE, [4096, 4097, 8192, 65536, 16 * 1024 * 1024][usize::from(b % 5)]));
    }
    if let Some(m) = p.max_message_size {
        v.push((param::MAX_MESSAGE_SIZE, 4096 + u64::from(m)));
    }
    if let Some(n) = p.max_concurrent_calls {
        v.push((param::MAX_CONCURRENT_CALLS, u64::from(n % 6)));
    }
    if let Some(n) = p.max_concurrent_streams {
        v.push((param::MAX_CONCURRENT_STREAMS, u64::from(n % 6)));
    }
    let mut credit_bytes = 256 * 1024;
    if let Some(n) = p.stream_credit_msgs {
        v.push((param::STREAM_CREDIT_MSGS, 1 + u64::from(n % 8)));
    }
    if let Some(n) = p.stream_credit_bytes {
        credit_bytes = 1 + u64::from(n);
        v.push((param::STREAM_CREDIT_BYTES, credit_bytes));
    }
    if let Some(n) = p.conn_credit_extra {
        v.push((param::CONN_CREDIT_BYTES, credit_bytes + u64::from(n)));
    }
    if packet {
        if let Some(d) = p.max_datagram {
            v.push((param::MAX_DATAGRAM_SIZE, 1200 + u64::from(d)));
        }
    }
    if p.unknown_param {
        v.push((63, 12345));
    }
    v
}

/// Runs one input.
/// Runs one input through every check; returns how many stream items the connection received
/// directly (so that a corpus can be shown to reach direct receive).
pub fn run(input: &Input) -> u64 {
    let cfg = configs(usize::from(input.config));
    let packet = matches!(cfg.transport, Transport::Packet { .. });
    let role = if input.dialer { Role::Dialer } else { Role::Acceptor };
    let now = Instant::from_millis(1_000);
    // Some inputs run a resumable session (SPEC.md §13): the acceptor offers a token, so the
    // connection retains requests and stream items (sent from their retained copy) and ACKs.
    let resumable = input.config & 4 != 0;
    let token: &[u8] = if resumable { b"fuzz-frames-session-token-00000" } else { b"" };
    let mine = if input.dialer { b"" } else { token };
    let c = Connection::new(
        role,
        cfg.clone(),
        Identity { name: b"under-test", session: mine, ..Identity::default() },
        now,
    )
    .expect("valid config");
    let pairs = params(&input.peer, packet);
    let mut pbuf = [0u8; 256];
    let ps = Params::encode_into(&pairs, &mut pbuf).expect("params fit");
    let hello = Frame::Hello(Hello {
        min_version: 1,
        max_version: 1,
        flags: 0,
        name: b"peer",
        auth: b"",
        session: if input.dialer { token } else { b"" },
        params: ps,
    });
    let lim = tandem_core::PeerLimits::from_params(pairs.iter().copied()).expect("legal params");
    let mut h = Harness {
        c,
        cfg: cfg.clone(),
        t: Tracker { direct: (input.config & 8 != 0).then_some(1), ..Tracker::default() },
        now,
        peer_parity: if input.dialer { 1 } else { 0 },
        peer_next: if input.dialer { 1 } else { 0 },
        peer_ids: Vec::new(),
        last_more: 0,
        wire: Vec::new(),
        wire_closed: false,
        peer_max_frame: lim.max_frame_size as usize,
        peer_max_dgram: if lim.max_datagram_size == 0 { usize::MAX } else { lim.max_datagram_size as usize },
        scratch: vec![0u8; 70_000 + 64],
        packet,
        chunk: [usize::MAX, 1, 13, 200][usize::from(input.config >> 4) & 3],
    };
    // Our HELLO goes out before the peer's arrives (dialer) or after (acceptor).
    h.transmit(0);
    let mut hb = [0u8; 512];
    let n = hello.encode(&mut hb).expect("hello fits");
    h.feed(&hb[..n]);
    h.transmit(0);
    assert!(h.t.connected, "a valid HELLO did not connect");
    assert!(matches!(h.c.state(), State::Open), "state {:?} after the handshake", h.c.state());
    let lim_seen = h.c.peer().expect("peer").limits;
    assert_eq!(lim_seen, lim, "peer limits differ from the HELLO");

    for op in input.ops.iter().take(200) {
        h.op(op);
        h.check();
    }
    // Every timer fires eventually: an hour later the connection is closed and all resolved.
    h.transmit(0);
    h.advance(Duration::from_secs(3600));
    h.transmit(0);
    if resumable && h.c.state() == State::Suspended {
        // A dialer's session waits for the application to reconnect: end it.
        assert!(h.c.evict_suspended_session());
        h.t.drain(&mut h.c, h.now);
        h.transmit(0);
    }
    assert_eq!(h.c.state(), State::Closed, "an hour of silence did not close the connection");
    h.t.check_final(&h.c);
    assert!(h.c.is_finished(), "closed and drained but not finished");
    h.t.direct_items
}

impl Harness {
    fn check(&mut self) {
        let c = &self.c;
        if let Err(e) = c.check_invariants() {
            panic!("core invariant broken: {e}");
        }
        assert!(c.open_exchanges() <= slot_capacity(&self.cfg), "{} exchanges open", c.open_exchanges());
        assert!(
            c.pending_transmit() <= self.cfg.max_tx_buffer as usize,
            "{} bytes queued",
            c.pending_transmit()
        );
        assert!(c.buffer_footprint() <= footprint_bound(&self.cfg), "footprint {}", c.buffer_footprint());
        let s = c.stats();
        let peer = c.peer().map(|p| p.limits).unwrap_or_default();
        assert!(s.calls_open_inbound <= self.cfg.max_concurrent_calls, "{s:?}");
        assert!(s.streams_open_inbound <= self.cfg.max_concurrent_streams, "{s:?}");
        assert!(s.calls_open_outbound <= peer.max_concurrent_calls.min(self.cfg.max_outbound_calls), "{s:?}");
        assert!(
            s.streams_open_outbound <= peer.max_concurrent_streams.min(self.cfg.max_outbound_streams),
            "{s:?}"
        );
        let sum =
            (s.calls_open_outbound + s.calls_open_inbound + s.streams_open_outbound + s.streams_open_inbound)
                as usize;
        // A call whose response is still arriving is tracked but no longer counted (SPEC §7.1.1).
        assert!(sum <= c.open_exchanges(), "per-kind counters above the table size: {s:?}");
        self.t.check_final(c);
    }

    fn drain(&mut self) {
        self.t.drain(&mut self.c, self.now);
    }

    /// Delivers `bytes` as the peer's transmission (one datagram on a packet transport), in
    /// reads of at most `self.chunk` bytes on a byte stream.
    fn feed(&mut self, bytes: &[u8]) {
        let mut off = 0;
        let mut stalls = 0;
        while off < bytes.len() {
            let end = if self.packet { bytes.len() } else { bytes.len().min(off.saturating_add(self.chunk)) };
            let n = self.t.input(&mut self.c, self.now, &bytes[off..end]);
            off += n;
            self.drain();
            if n == 0 {
                stalls += 1;
                assert!(stalls < 2, "handle_input stalled after a full drain (state {:?})", self.c.state());
            } else {
                stalls = 0;
            }
        }
        self.drain();
    }

    /// Drains the transmit queue through a buffer of `cap` bytes (0: unlimited) and checks that
    /// everything sent decodes within the peer's limits.
    fn transmit(&mut self, cap: u16) {
        let cap = if cap == 0 { self.scratch.len() } else { usize::from(cap) };
        for _ in 0..100_000 {
            let n = self.c.poll_transmit(self.now, &mut self.scratch[..cap]);
            if n == 0 {
                break;
            }
            if matches!(self.cfg.transport, Transport::Packet { .. }) {
                assert!(n <= self.peer_max_dgram, "datagram of {n} above the peer's max_datagram_size");
                let mut o = 0;
                while o < n {
                    match Frame::decode(&self.scratch[o..n], usize::MAX) {
                        Ok(Decoded::Frame(_, k)) => o += k,
                        other => panic!("datagram does not hold whole frames: {other:?}"),
                    }
                }
            }
            self.wire.extend_from_slice(&self.scratch[..n]);
            if cap != self.scratch.len() {
                break;
            }
        }
        self.check_wire();
    }

    fn check_wire(&mut self) {
        let mut off = 0;
        loop {
            match Frame::decode(&self.wire[off..], self.peer_max_frame.max(4096)) {
                Ok(Decoded::Frame(f, n)) => {
                    assert!(!self.wire_closed, "frame {f:?} sent after CLOSE");
                    if let Frame::Close { .. } = f {
                        self.wire_closed = true;
                    }
                    off += n;
                }
                Ok(Decoded::Incomplete(_)) => break,
                Err(e) => panic!("the connection sent an invalid frame: {e:?}"),
            }
        }
        self.wire.drain(..off);
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        self.c.handle_timeout(self.now);
        self.drain();
    }

    fn peer_id(&self, s: IdSel) -> u64 {
        let pick = |v: &[u64], k: u8| v.get(v.len().saturating_sub(1 + usize::from(k))).copied();
        // Frame::encode requires ids of at most 2^62-1.
        let id = match s {
            IdSel::PeerNext => self.peer_next,
            IdSel::PeerSkip(k) => self.peer_next + 2 * u64::from(k % 8 + 1),
            IdSel::PeerRecent(k) => pick(&self.peer_ids, k % 8).unwrap_or(self.peer_next),
            IdSel::OwnRecent(k) => pick(&self.t.own_ids, k % 8).unwrap_or(1 - self.peer_parity),
            IdSel::OwnNext => self.t.own_ids.last().map_or(1 - self.peer_parity, |l| l + 2),
            IdSel::LastMore => self.last_more,
            IdSel::Small(k) => u64::from(k % 32),
            IdSel::Huge => varint::MAX,
        };
        id.min(varint::MAX)
    }

    fn msg_parts(&self, m: &Msg, allowed: u8) -> (u8, Option<u64>, &'static [u8]) {
        let len = length(m.len);
        let payload = &PAYLOAD[..len];
        let (fl, total) = match m.more {
            Some(extra) => {
                (flags::MORE, Some(len as u64 + u64::from(extra % 64) * (1 + u64::from(extra / 64) * 512)))
            }
            None => (0, None),
        };
        let fl = m.raw_flags.unwrap_or(fl & allowed);
        // total_len is present exactly when MORE is set in the flags as sent.
        let total = if fl & flags::MORE != 0 { Some(total.unwrap_or(len as u64 + 1)) } else { None };
        (fl, total, payload)
    }

    fn frame_bytes(&mut self, spec: &FrameSpec, out: &mut Vec<u8>) {
        let mut buf = [0u8; 512];
        let f = match spec {
            FrameSpec::Hello => Frame::Hello(Hello {
                min_version: 1,
                max_version: 1,
                flags: 0,
                name: b"",
                auth: b"",
                session: b"",
                params: Params::EMPTY,
            }),
            FrameSpec::Close { status: s, msg } => {
                Frame::Close { status: status(*s), message: &PAYLOAD[..length(*msg).min(1024)] }
            }
            FrameSpec::GoAway { bound, status: s } => {
                Frame::GoAway { bound: self.peer_id(*bound), status: status(*s), message: b"bye" }
            }
            FrameSpec::Ping(d) => Frame::Ping(u64::from(*d).to_be_bytes()),
            FrameSpec::Pong(d) => Frame::Pong(u64::from(*d % 8).to_be_bytes()),
            FrameSpec::Ack(id, n) => {
                let first = self.peer_id(*id).min(varint::MAX - 1024);
                match Ack::encode_into(&[(first, u64::from(*n % 16) + 1)], &mut buf) {
                    Some(a) => Frame::Ack(a),
                    None => return,
                }
            }
            FrameSpec::Call(r) | FrameSpec::Notify(r) | FrameSpec::StreamOpen(r) => {
                let id = self.peer_id(r.id);
                let allowed = if matches!(spec, FrameSpec::StreamOpen(_)) {
                    flags::MORE | flags::FIN
                } else {
                    flags::MORE
                };
                let (mut fl, total_len, payload) = self.msg_parts(&r.msg, allowed);
                if r.fin && r.msg.raw_flags.is_none() {
                    fl |= flags::FIN & allowed;
                }
                if id % 2 == self.peer_parity && id >= self.peer_next {
                    self.peer_next = id + 2;
                    self.peer_ids.push(id);
                }
                if fl & flags::MORE != 0 {
                    self.last_more = id;
                }
                let req = Request {
                    flags: fl,
                    id,
                    module: u32::from(r.module % 4),
                    method: u32::from(r.method % 4),
                    budget_us: u64::from(r.budget_ms) * 16_000,
                    total_len,
                    payload,
                };
                match spec {
                    FrameSpec::Call(_) => Frame::Call(req),
                    FrameSpec::Notify(_) => Frame::Notify(req),
                    _ => Frame::StreamOpen(req),
                }
            }
            FrameSpec::Signal(m, len) => {
                Frame::Signal { module: u32::from(*m), method: 1, payload: &PAYLOAD[..length(*len)] }
            }
            FrameSpec::Response { id, status: s, msg } => {
                let id = self.peer_id(*id);
                let (fl, total_len, payload) = self.msg_parts(msg, flags::MORE);
                if fl & flags::MORE != 0 {
                    self.last_more = id;
                }
                Frame::Response { flags: fl, id, status: status(*s), total_len, payload }
            }
            FrameSpec::Cancel(id) => Frame::Cancel { id: self.peer_id(*id) },
            FrameSpec::StreamData(id, msg) => {
                let id = self.peer_id(*id);
                let (fl, total_len, payload) = self.msg_parts(msg, flags::MORE);
                if fl & flags::MORE != 0 {
                    self.last_more = id;
                }
                Frame::StreamData { flags: fl, id, total_len, payload }
            }
            FrameSpec::StreamFin(id, s) => Frame::StreamFin { id: self.peer_id(*id), status: status(*s) },
            FrameSpec::StreamReset(id, s) => Frame::StreamReset { id: self.peer_id(*id), status: status(*s) },
            FrameSpec::StreamCredit { id, msgs, bytes } => {
                Frame::StreamCredit { id: self.peer_id(*id), msgs: credit(*msgs), bytes: credit(*bytes) }
            }
            FrameSpec::ConnCredit(b) => Frame::ConnCredit { bytes: credit(*b) },
            FrameSpec::StreamResume(id, n) => {
                Frame::StreamResume { id: self.peer_id(*id), received: u64::from(*n) }
            }
            FrameSpec::Continuation { id, more, len } => Frame::Continuation {
                flags: if *more { flags::MORE } else { 0 },
                id: self.peer_id(*id),
                payload: &PAYLOAD[..length(*len)],
            },
            FrameSpec::Extension(t, len) => Frame::Extension { ty: t | 0x80, body: &PAYLOAD[..length(*len)] },
            FrameSpec::Raw(b) => {
                let b = &b[..b.len().min(64)];
                out.extend_from_slice(b);
                return;
            }
        };
        let start = out.len();
        out.resize(start + f.encoded_len(), 0);
        let n = f.encode(&mut out[start..]).expect("sized");
        debug_assert_eq!(start + n, out.len());
    }

    fn op(&mut self, op: &Op) {
        match op {
            Op::Recv(frames) => {
                let mut out = Vec::new();
                for f in frames.iter().take(8) {
                    self.frame_bytes(f, &mut out);
                }
                if !out.is_empty() {
                    self.feed(&out);
                }
            }
            Op::Api(a) => apply(&mut self.c, &mut self.t, self.now, *a),
            Op::Transmit(cap) => self.transmit(*cap),
            Op::Advance(ms) => self.advance(Duration::from_millis(u64::from(*ms) * 16)),
            Op::AdvanceToTimer => {
                if let Some(t) = self.c.poll_timeout() {
                    let d = t.saturating_duration_since(self.now);
                    self.advance(d);
                }
            }
            Op::Eof => self.c.handle_eof(self.now),
        }
        self.drain();
    }
}

fn credit(b: u8) -> u32 {
    match b {
        0..=249 => u32::from(b) * 3,
        250 => 4096,
        251 => 65536,
        252 => 1 << 20,
        253 => u32::MAX / 2,
        254 => u32::MAX - 1,
        _ => u32::MAX,
    }
}
