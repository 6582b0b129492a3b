//! The checks of the two plain-bytes fuzz targets, `frame_roundtrip` and `handshake`.
//!
//! This file is shared, not copied: the fuzz crate compiles it as `tandem_fuzz::checks`, and
//! `proto-core/tests/fuzz_corpus.rs` includes it with `#[path]` to replay the checked-in corpora
//! on stable Rust. It may use only `std` and `tandem_core`. Every check panics on a violation.

use core::time::Duration;
use tandem_core::frame::{Decoded, Frame};
use tandem_core::{Config, Connection, Event, Identity, Instant, Role, Slot, State, Status, Transport};

/// Frame-size limits every input is decoded with.
const LIMITS: [usize; 8] = [0, 1, 8, 63, 64, 4096, 65536, usize::MAX];

/// Decodes `data` as a sequence of frames under several `max_body` limits. Whenever a frame
/// decodes: re-encoding gives exactly the consumed bytes, `encoded_len` matches, decoding the
/// body alone gives the same frame, every strict prefix is `Incomplete`, and the result does not
/// depend on the limit as long as the body fits it.
pub fn frame_roundtrip(data: &[u8]) {
    let mut out = vec![0u8; data.len() + 16];
    // What the largest limit decoded at offset 0, to compare the other limits against.
    let reference = Frame::decode(data, usize::MAX);
    for &max in &LIMITS {
        let mut off = 0;
        let mut frames = 0;
        while off < data.len() && frames < 64 {
            let buf = &data[off..];
            match Frame::decode(buf, max) {
                Ok(Decoded::Frame(f, n)) => {
                    frames += 1;
                    check_frame(&f, buf, n, max, &mut out);
                    if off == 0 {
                        // A larger limit must decode the very same frame.
                        assert_eq!(reference, Ok(Decoded::Frame(f, n)), "limit {max} changed the frame");
                    }
                    off += n;
                }
                Ok(Decoded::Incomplete(need)) => {
                    assert!(need > buf.len(), "Incomplete({need}) for a {}-byte buffer", buf.len());
                    if off == 0 {
                        assert_eq!(
                            reference,
                            Ok(Decoded::Incomplete(need)),
                            "limit {max} changed Incomplete"
                        );
                    }
                    break;
                }
                Err(e) => {
                    let _ = e.status();
                    let _ = e.to_string();
                    if let tandem_core::frame::DecodeError::FrameTooLarge { len, max: m } = e {
                        assert_eq!(m, max);
                        assert!(len > max as u64, "FrameTooLarge with len {len} <= max {max}");
                    } else if off == 0 {
                        assert_eq!(reference, Err(e), "limit {max} changed the error");
                    }
                    break;
                }
            }
        }
    }
}

fn check_frame(f: &Frame<'_>, buf: &[u8], n: usize, max: usize, out: &mut [u8]) {
    assert!(n >= 2 && n <= buf.len(), "consumed {n} of {}", buf.len());
    let consumed = &buf[..n];
    assert_eq!(f.encoded_len(), n, "encoded_len differs from the bytes consumed: {f:?}");
    assert_eq!(f.ty(), consumed[0], "ty() differs from the type byte");
    assert!(f.body_len() <= max, "body {} above the limit {max}", f.body_len());
    let w = f.encode(&mut out[..n]).expect("encode into encoded_len bytes");
    assert_eq!(w, n);
    assert_eq!(&out[..n], consumed, "re-encoding differs from the input: {f:?}");
    assert_eq!(f.encode(&mut out[..n - 1]), None, "encode into a short buffer must fail");
    let (t, body, hlen) =
        Frame::peek_header(consumed, max).expect("header decoded").expect("header complete");
    assert_eq!((t, hlen + body), (consumed[0], n));
    assert_eq!(Frame::decode_body(t, &consumed[hlen..]), Ok(*f), "decode_body disagrees with decode");
    // Every strict prefix is incomplete, asking for more than it has.
    for k in (0..n).step_by((n / 16).max(1)).chain([n - 1]) {
        match Frame::decode(&consumed[..k], max) {
            Ok(Decoded::Incomplete(need)) => {
                assert!(need > k && need <= n, "prefix {k} of {n}: Incomplete({need})")
            }
            other => panic!("prefix {k} of a {n}-byte frame decoded as {other:?}"),
        }
    }
}

/// Reads the first byte of a `handshake` input: which side, configuration and behaviour.
#[derive(Clone, Copy, Debug)]
pub struct HandshakeSetup {
    /// The connection under test is the dialer (else the acceptor).
    pub dialer: bool,
    /// Index into [`configs`].
    pub config: usize,
    /// The dialer asks to resume a session (non-empty session token).
    pub resume: bool,
    /// Answer requests as they arrive.
    pub answer: bool,
    /// Signal end of file after the last byte.
    pub eof: bool,
}

impl HandshakeSetup {
    /// Decodes the setup byte.
    pub fn from_byte(b: u8) -> Self {
        HandshakeSetup {
            dialer: b & 1 != 0,
            config: usize::from(b >> 1) % 4,
            resume: b & 0x08 != 0,
            answer: b & 0x10 != 0,
            eof: b & 0x20 != 0,
        }
    }
}

/// The configurations the connection-level targets run with: default, small (tight limits and
/// timers), and two packet transports.
pub fn configs(i: usize) -> Config {
    let small = Config {
        max_frame_size: 4096,
        max_message_size: 4096,
        max_concurrent_calls: 2,
        max_concurrent_streams: 2,
        stream_credit_msgs: 2,
        stream_credit_bytes: 64,
        conn_credit_bytes: 128,
        keepalive_interval: Duration::from_millis(1000),
        idle_timeout: Duration::from_millis(3000),
        handshake_timeout: Duration::from_millis(2000),
        drain_timeout: Duration::from_millis(2000),
        max_unproductive_frames: 20,
        max_outbound_calls: 3,
        max_outbound_streams: 2,
        max_tx_buffer: 8192,
        ..Config::default()
    };
    match i % 4 {
        0 => Config::default(),
        1 => small,
        2 => Config { transport: Transport::Packet { max_datagram: 1200 }, ..small },
        _ => Config { transport: Transport::Packet { max_datagram: 65536 }, ..Config::default() },
    }
}

/// Upper bound on what a connection with `c` may ever hold in its buffers and tables.
pub fn footprint_bound(c: &Config) -> usize {
    let rx = (c.max_frame_size as usize + 9).max(match c.transport {
        Transport::Packet { max_datagram } | Transport::Datagram { max_datagram } => max_datagram as usize,
        Transport::Stream => 0,
    });
    rx + c.max_tx_buffer as usize
        + c.max_message_size as usize
        + slot_capacity(c) * core::mem::size_of::<Option<Slot>>()
}

/// The number of exchanges a connection with `c` can track at once, both directions.
pub fn slot_capacity(c: &Config) -> usize {
    [c.max_concurrent_calls, c.max_concurrent_streams, c.max_outbound_calls, c.max_outbound_streams]
        .iter()
        .map(|&n| n as usize)
        .sum()
}

/// Chunk sizes a schedule byte selects (its low 5 bits).
const CHUNKS: [usize; 32] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 20, 24, 32, 48, 64, 100, 128, 200, 256, 512, 1000, 1024,
    1200, 2048, 4096, 8192, 16384, 65536,
];

/// What a handshake run observed, for the caller's own checks.
#[derive(Debug, Default)]
pub struct HandshakeOutcome {
    /// `Event::Connected` was seen.
    pub connected: bool,
    /// `Event::Closed` was seen.
    pub closed: bool,
    /// Number of events seen.
    pub events: usize,
}

/// Event bookkeeping shared by the driving loop.
struct Watch {
    out: HandshakeOutcome,
    answer: bool,
    to_answer: Vec<(u64, bool)>,
}

impl Watch {
    fn drain(&mut self, c: &mut Connection<'_>, now: Instant) {
        for _ in 0..10_000 {
            let Some(ev) = c.poll_event(now) else { return };
            self.out.events += 1;
            assert!(!self.out.closed, "event after Closed: {ev:?}");
            match ev {
                Event::Connected => {
                    assert!(!self.out.connected, "second Connected");
                    self.out.connected = true;
                }
                Event::Closed(e) => {
                    let _ = (e.blame(), e.status(), e.to_string());
                    self.out.closed = true;
                }
                ref other => {
                    assert!(self.out.connected, "{other:?} before Connected");
                    if let Event::Request { id, kind, .. } = *other {
                        if self.answer {
                            self.to_answer.push((id, kind == tandem_core::RequestKind::Notify));
                        }
                    }
                }
            }
            if self.out.closed {
                assert_eq!(c.state(), State::Closed, "Closed event but state {:?}", c.state());
            }
        }
        panic!("poll_event did not run dry after 10000 events");
    }

    fn answer(&mut self, c: &mut Connection<'_>) {
        for (id, notify) in self.to_answer.drain(..) {
            let body: &[u8] = if notify { b"" } else { b"ok" };
            let _ = c.respond(id, Status::OK, body);
        }
    }
}

fn check_bounds(c: &Connection<'_>, cfg: &Config) {
    if let Err(e) = c.check_invariants() {
        panic!("core invariant broken: {e}");
    }
    assert!(c.open_exchanges() <= slot_capacity(cfg), "{} exchanges open", c.open_exchanges());
    assert!(c.pending_transmit() <= cfg.max_tx_buffer as usize, "{} bytes queued", c.pending_transmit());
    let fp = c.buffer_footprint();
    assert!(fp <= footprint_bound(cfg), "footprint {fp} above {}", footprint_bound(cfg));
    let s = c.stats();
    let sum =
        (s.calls_open_outbound + s.calls_open_inbound + s.streams_open_outbound + s.streams_open_inbound)
            as usize;
    // A call whose response is still arriving is tracked but no longer counted (SPEC §7.1.1).
    assert!(sum <= c.open_exchanges(), "per-kind counters above the table size: {s:?}");
}

/// Drains transmit into `sink` with a buffer of `cap` bytes (a short write if smaller).
fn transmit(c: &mut Connection<'_>, now: Instant, cap: usize, sink: &mut usize) {
    let mut buf = [0u8; 16 * 1024];
    let cap = cap.clamp(1, buf.len());
    for _ in 0..100_000 {
        let before = c.pending_transmit();
        let n = c.poll_transmit(now, &mut buf[..cap]);
        if n == 0 {
            return;
        }
        assert!(n <= cap && n <= before, "poll_transmit returned {n} (cap {cap}, queued {before})");
        *sink += n;
    }
    panic!("poll_transmit never ran dry");
}

/// The `handshake` target: one connection (acceptor or dialer, chosen by the first byte) is fed
/// the input from its first byte, in chunks and with timer jumps chosen by a schedule.
///
/// Input: `setup (1) | schedule length k (1) | schedule (k) | bytes from the peer (rest)`. Each
/// schedule byte picks a chunk size (low 5 bits) and a timer action (high 3 bits); the schedule
/// repeats. After the last byte: optional EOF, then a jump past every timeout, after which the
/// connection must be closed, every exchange resolved and the table empty.
pub fn handshake(data: &[u8]) -> HandshakeOutcome {
    let setup = HandshakeSetup::from_byte(data.first().copied().unwrap_or(0));
    let k = usize::from(data.get(1).copied().unwrap_or(0)) % 32;
    let rest = data.get(2..).unwrap_or(&[]);
    let (schedule, stream) = rest.split_at(k.min(rest.len()));
    let cfg = configs(setup.config);
    let packet = matches!(cfg.transport, Transport::Packet { .. });
    let role = if setup.dialer { Role::Dialer } else { Role::Acceptor };
    let session: &[u8] = if setup.resume && setup.dialer { b"sess-0123456789abcdef" } else { b"" };
    let me = Identity { name: b"fuzz", auth: b"secret", session };
    let mut now = Instant::from_millis(1_000);
    let mut c = Connection::new(role, cfg.clone(), me, now).expect("valid config");
    let mut w = Watch { out: HandshakeOutcome::default(), answer: setup.answer, to_answer: Vec::new() };
    let mut sent = 0usize;
    let mut was_open = false;

    let mut off = 0;
    let mut step = 0;
    while off < stream.len() && step < 4096 {
        let s = if schedule.is_empty() { 0x1F } else { schedule[step % schedule.len()] };
        step += 1;
        let chunk = CHUNKS[usize::from(s & 0x1F)].min(stream.len() - off);
        let chunk_bytes = &stream[off..off + chunk];
        // Offer the chunk; what is not taken is offered again after draining events.
        let mut taken_total = 0;
        let mut tries = 0;
        while taken_total < chunk {
            tries += 1;
            assert!(tries < 10_000, "handle_input made no progress");
            let taken = c.handle_input(now, &chunk_bytes[taken_total..]);
            assert!(taken <= chunk - taken_total);
            if packet {
                assert!(taken == 0 || taken == chunk, "packet transport took part of a datagram");
            }
            let progress = taken > 0;
            taken_total += taken;
            w.drain(&mut c, now);
            w.answer(&mut c);
            w.drain(&mut c, now);
            check_bounds(&c, &cfg);
            if !progress {
                // After a full drain the receive buffer must have room for at least one byte
                // (a whole datagram on a packet transport) unless the connection is closed.
                let again = c.handle_input(now, &chunk_bytes[taken_total..]);
                assert!(
                    again > 0,
                    "handle_input stalled with {} bytes offered, state {:?}",
                    chunk - taken_total,
                    c.state()
                );
                taken_total += again;
                w.drain(&mut c, now);
            }
        }
        off += chunk;
        transmit(&mut c, now, CHUNKS[usize::from(s.rotate_left(3) & 0x1F)], &mut sent);
        // Timer action.
        let jump = match s >> 5 {
            0..=3 => None,
            4 => Some(Duration::from_millis(1)),
            5 => Some(Duration::from_millis(999)),
            6 => c.poll_timeout().map(|t| t.saturating_duration_since(now)),
            _ => Some(Duration::from_secs(11)),
        };
        if let Some(d) = jump {
            now = now + d;
            c.handle_timeout(now);
            w.drain(&mut c, now);
        }
        check_state(&c, &w, &mut was_open);
        check_bounds(&c, &cfg);
    }
    if setup.eof {
        c.handle_eof(now);
        w.drain(&mut c, now);
        // A resumable session (the acceptor gave a token) is suspended instead (SPEC.md §13.2);
        // its grace period ends it below.
        let suspended = c.state() == State::Suspended && c.is_resumable();
        assert!(w.out.closed || suspended, "EOF neither closed the connection nor suspended its session");
    }
    transmit(&mut c, now, usize::MAX, &mut sent);

    // Past every timeout the connection must be closed and everything resolved.
    for _ in 0..4 {
        now = now + Duration::from_secs(3600);
        c.handle_timeout(now);
        w.drain(&mut c, now);
        w.answer(&mut c);
        transmit(&mut c, now, usize::MAX, &mut sent);
    }
    w.drain(&mut c, now);
    assert_eq!(c.state(), State::Closed, "connection still {:?} an hour after the last byte", c.state());
    assert!(w.out.closed, "closed without an Event::Closed");
    assert_eq!(c.open_exchanges(), 0, "closed connection still tracks exchanges");
    assert_eq!(c.poll_timeout(), None, "closed connection still wants a timer");
    transmit(&mut c, now, usize::MAX, &mut sent);
    assert!(c.is_finished(), "closed, drained connection is not finished");
    // Nothing more after Closed, whatever happens.
    let late = c.handle_input(now, b"\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00");
    assert_eq!(late, 10, "a closed connection swallows input");
    c.handle_timeout(now + Duration::from_secs(1));
    assert!(c.poll_event(now).is_none(), "event after Closed");
    check_bounds(&c, &cfg);
    w.out
}

fn check_state(c: &Connection<'_>, w: &Watch, was_open: &mut bool) {
    match c.state() {
        State::Handshake => {
            assert!(!*was_open, "back to Handshake");
            assert!(!w.out.connected, "Connected delivered in Handshake");
        }
        State::Open | State::Draining => {
            *was_open = true;
            assert!(c.peer().is_some(), "connected without a peer");
        }
        // A dialer whose acceptor offered a session token suspends instead of closing. The
        // handshake may have completed and the session been suspended within one step (a
        // chunk that completes HELLO, then a timer jump past the idle timeout): the Connected
        // event is the proof that it was open.
        State::Suspended => assert!(*was_open || w.out.connected, "suspended before the handshake"),
        State::Closed => {}
    }
}

/// What one `datagram` run reached, for the corpus replay's coverage assertions.
#[derive(Debug, Default, Clone, Copy)]
pub struct DatagramOutcome {
    /// Requests the acceptor's handler saw.
    pub requests: usize,
    /// Datagrams the two sides dropped whole.
    pub dropped: u64,
    /// Whether the acceptor closed.
    pub closed: bool,
}

/// The `datagram` target: a datagram-mode dialer and acceptor complete a valid handshake, then
/// the input drives the acceptor as a hostile or lossy peer would.
///
/// Input: a sequence of ops `op (1) | len (1) | body (len)`. The low 3 bits of `op` choose:
/// 0–1 feed `body` to the acceptor as one raw datagram; 2 feed it to the dialer; 3 feed the
/// acceptor a structured frame built from `body` (CALL, NOTIFY, CANCEL, ACK, RESPONSE,
/// STREAM_OPEN, SIGNAL with ids and payload from the bytes); 4 replay a datagram the dialer sent
/// earlier (duplication, reordering); 5 the dialer's application calls or cancels; 6 a timer jump
/// (`body[0]` picks 1 ms .. 2 minutes, or the next timer); 7 deliver everything queued between
/// the two, dropping every `body[0]`-th datagram. The acceptor answers requests at once or later
/// (bit 3 of `op`). After every op: nothing panicked, and the tables stay within their bounds
/// (open exchanges, reply cache entries and bytes, duplicate window ≤ 1024, retransmission
/// timers ≤ open exchanges, retained requests ≤ `max_retained_bytes`, buffers ≤ the footprint
/// bound), and every datagram transmitted fits 1200 bytes.
pub fn datagram(data: &[u8]) -> DatagramOutcome {
    let cfg_a = Config { transport: Transport::Datagram { max_datagram: 1200 }, ..Config::default() };
    let cfg_b = Config {
        transport: Transport::Datagram { max_datagram: 1200 },
        max_concurrent_calls: 8,
        reply_cache_entries: 16,
        reply_cache_bytes: 2048,
        max_tx_buffer: 16 * 1024,
        ..Config::default()
    };
    let me = Identity { name: b"fuzz", auth: b"", session: b"" };
    let mut now = Instant::from_millis(1_000);
    let mut a = Connection::new(Role::Dialer, cfg_a.clone(), me, now).expect("valid config");
    let mut b = Connection::new(Role::Acceptor, cfg_b.clone(), me, now).expect("valid config");
    let mut out = DatagramOutcome::default();
    let mut sent_by_a: Vec<Vec<u8>> = Vec::new();
    let mut pending: Vec<u64> = Vec::new();
    let mut a_calls: Vec<u64> = Vec::new();
    // Handshake over a clean link.
    for _ in 0..4 {
        dgram_deliver(&mut a, &mut b, now, 0, &mut sent_by_a);
        dgram_drain(&mut a, now, &mut Vec::new(), &mut out, false);
        dgram_drain(&mut b, now, &mut pending, &mut out, true);
    }
    assert_eq!((a.state(), b.state()), (State::Open, State::Open), "clean datagram handshake failed");

    let mut off = 0;
    let mut ops = 0;
    while off + 2 <= data.len() && ops < 2048 {
        ops += 1;
        let op = data[off];
        let len = usize::from(data[off + 1]).min(data.len() - off - 2);
        let body = &data[off + 2..off + 2 + len];
        off += 2 + len;
        match op & 7 {
            0 | 1 => {
                let taken = b.handle_input(now, body);
                assert_eq!(taken, body.len(), "a datagram is taken whole");
            }
            2 => {
                let taken = a.handle_input(now, body);
                assert_eq!(taken, body.len(), "a datagram is taken whole");
            }
            3 => {
                let d = dgram_structured(body);
                let _ = b.handle_input(now, &d);
            }
            4 => {
                if !sent_by_a.is_empty() {
                    let k = usize::from(body.first().copied().unwrap_or(0)) % sent_by_a.len();
                    let d = sent_by_a[k].clone();
                    let _ = b.handle_input(now, &d);
                }
            }
            5 => {
                let sel = body.first().copied().unwrap_or(0);
                if sel & 1 == 0 || a_calls.is_empty() {
                    let m = tandem_core::MethodId::new(1, u32::from(sel));
                    let deadline = (sel & 2 != 0).then(|| now + Duration::from_millis(u64::from(sel) * 10));
                    let payload = body.get(1..).unwrap_or(&[]);
                    if let Ok(id) = a.call(now, m, payload, deadline) {
                        a_calls.push(id);
                    }
                } else {
                    let id = a_calls[usize::from(sel) % a_calls.len()];
                    let _ = a.cancel(id);
                }
            }
            6 => {
                let d = match body.first().copied().unwrap_or(0) % 5 {
                    0 => Duration::from_millis(1),
                    1 => Duration::from_millis(150),
                    2 => Duration::from_secs(3),
                    3 => Duration::from_secs(120),
                    _ => b.poll_timeout().map_or(Duration::ZERO, |t| t.saturating_duration_since(now)),
                };
                now = now + d;
                a.handle_timeout(now);
                b.handle_timeout(now);
            }
            _ => {
                let every = usize::from(body.first().copied().unwrap_or(0));
                dgram_deliver(&mut a, &mut b, now, every, &mut sent_by_a);
            }
        }
        dgram_drain(&mut a, now, &mut Vec::new(), &mut out, false);
        dgram_drain(&mut b, now, &mut pending, &mut out, true);
        if op & 8 == 0 {
            for id in pending.drain(..) {
                let _ = b.respond(id, Status::OK, b"r");
            }
        }
        dgram_check(&a, &cfg_a);
        dgram_check(&b, &cfg_b);
    }
    out.dropped = a.stats().datagrams_dropped + b.stats().datagrams_dropped;
    out.closed = b.state() == State::Closed;
    out
}

fn dgram_check(c: &Connection<'_>, cfg: &Config) {
    check_bounds(c, cfg);
    let (n, bytes) = c.reply_cache_len();
    assert!(n <= cfg.reply_cache_entries as usize, "reply cache holds {n} entries");
    assert!(bytes <= cfg.reply_cache_bytes as usize, "reply cache holds {bytes} bytes");
    let (_, retained) = c.retained_requests();
    assert!(retained <= cfg.max_retained_bytes as usize, "{retained} retained bytes");
    let (_, seen, timers) = c.datagram_tables().expect("datagram mode");
    assert!(seen <= 1024, "duplicate window marks {seen} ids");
    assert!(timers <= c.open_exchanges(), "{timers} timers for {} exchanges", c.open_exchanges());
}

fn dgram_drain(
    c: &mut Connection<'_>,
    now: Instant,
    pending: &mut Vec<u64>,
    out: &mut DatagramOutcome,
    acc: bool,
) {
    let mut guard = 0;
    while let Some(e) = c.poll_event(now) {
        guard += 1;
        assert!(guard < 100_000, "poll_event never returns None");
        if let Event::Request { id, .. } = e {
            if acc {
                out.requests += 1;
                pending.push(id);
            }
        }
    }
}

/// Moves every queued datagram both ways, dropping every `every`-th (0: none).
fn dgram_deliver(
    a: &mut Connection<'_>,
    b: &mut Connection<'_>,
    now: Instant,
    every: usize,
    log: &mut Vec<Vec<u8>>,
) {
    let mut buf = [0u8; 1500];
    // Counts down to the next dropped datagram (`every` = 0: never).
    let mut left = every;
    let mut keep = move || {
        if every == 0 {
            return true;
        }
        left -= 1;
        if left == 0 {
            left = every;
            return false;
        }
        true
    };
    for _ in 0..64 {
        let mut moved = false;
        loop {
            let n = a.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            assert!(n <= 1200, "datagram of {n} bytes exceeds the peer's 1200");
            moved = true;
            if log.len() < 64 {
                log.push(buf[..n].to_vec());
            }
            if keep() {
                let _ = b.handle_input(now, &buf[..n]);
            }
        }
        while b.poll_event(now).is_some() {}
        loop {
            let n = b.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            assert!(n <= 1200, "datagram of {n} bytes exceeds the peer's 1200");
            moved = true;
            if keep() {
                let _ = a.handle_input(now, &buf[..n]);
            }
        }
        while a.poll_event(now).is_some() {}
        if !moved {
            break;
        }
    }
}

/// A well-formed frame (or two) built from fuzz bytes, so that the window and cache logic is
/// reached far more often than by random bytes.
fn dgram_structured(body: &[u8]) -> Vec<u8> {
    use tandem_core::frame::{Ack, Request};
    let sel = body.first().copied().unwrap_or(0);
    let raw_id =
        u64::from(u16::from_le_bytes([body.get(1).copied().unwrap_or(0), body.get(2).copied().unwrap_or(0)]));
    // Mostly the dialer's parity (even), sometimes far above, sometimes odd.
    let id = match sel >> 5 {
        0..=4 => raw_id * 2,
        5 => raw_id * 2 + (1 << 40),
        6 => raw_id * 2 + 1,
        _ => (1u64 << 62) - 2 - raw_id * 2,
    };
    let payload = body.get(3..).unwrap_or(&[]);
    let req = Request {
        flags: 0,
        id,
        module: 1,
        method: u32::from(sel & 3),
        budget_us: 0,
        total_len: None,
        payload,
    };
    let mut abuf = [0u8; 64 * 16];
    let f = match sel & 7 {
        0 | 1 => Frame::Call(req),
        2 => Frame::Notify(Request { payload: &[], ..req }),
        3 => Frame::Cancel { id },
        4 => {
            let n = u64::from(body.get(3).copied().unwrap_or(1)).max(1) << (sel >> 5);
            match Ack::encode_into(&[(id, n)], &mut abuf) {
                Some(a) => Frame::Ack(a),
                None => Frame::Cancel { id },
            }
        }
        5 => {
            Frame::Response { flags: 0, id: id | 1, status: Status(u32::from(sel)), total_len: None, payload }
        }
        6 => Frame::StreamOpen(req),
        _ => Frame::Signal { module: 1, method: 1, payload },
    };
    let mut out = vec![0u8; f.encoded_len()];
    let n = f.encode(&mut out).unwrap_or(0);
    out.truncate(n);
    out
}
