//! Datagram mode (SPEC.md §14): two cores joined by a lossy datagram link with a fake clock, and
//! a scripted hostile peer that writes raw datagrams.

use crate::frame::{self, Decoded, Frame, Request};
use crate::tests::pair::{Ev, Rng};
use crate::{
    ApiError, Config, Connection, ConnectionError, Identity, Instant, MethodId, RequestKind, Role, State,
    Status, Transport,
};
use core::time::Duration;
use std::collections::BTreeMap;
use std::vec::Vec;

const M: MethodId = MethodId { module: 1, method: 1 };

fn dcfg() -> Config {
    Config { transport: Transport::Datagram { max_datagram: 1200 }, ..Config::default() }
}

fn conn(role: Role, cfg: Config, now: Instant) -> Connection<'static> {
    let id = Identity { name: b"n", auth: b"", session: b"" };
    Connection::new(role, cfg, id, now).expect("valid datagram config")
}

fn enc(frames: &[Frame<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        let mut b = vec![0u8; f.encoded_len()];
        let n = f.encode(&mut b).expect("encode");
        out.extend_from_slice(&b[..n]);
    }
    out
}

/// Every datagram `c` has queued, one per `poll_transmit` (frames still unprocessed are
/// processed first by draining events, which are discarded).
fn out(c: &mut Connection<'_>, now: Instant) -> Vec<Vec<u8>> {
    while c.poll_event(now).is_some() {}
    let mut v = Vec::new();
    let mut buf = [0u8; 1200];
    loop {
        let n = c.poll_transmit(now, &mut buf);
        if n == 0 {
            return v;
        }
        v.push(buf[..n].to_vec());
    }
}

/// The frames of a datagram, owned enough to assert on: (type, id, status).
fn frames_of(d: &[u8]) -> Vec<(u8, u64, Status)> {
    let mut v = Vec::new();
    let mut off = 0;
    while off < d.len() {
        let Ok(Decoded::Frame(f, n)) = Frame::decode(&d[off..], 1 << 24) else { panic!("bad datagram") };
        v.push(match f {
            Frame::Response { id, status, .. } => (frame::ty::RESPONSE, id, status),
            Frame::StreamReset { id, status } => (frame::ty::STREAM_RESET, id, status),
            Frame::Close { status, .. } => (frame::ty::CLOSE, 0, status),
            Frame::Call(r) => (frame::ty::CALL, r.id, Status::OK),
            Frame::Notify(r) => (frame::ty::NOTIFY, r.id, Status::OK),
            Frame::Cancel { id } => (frame::ty::CANCEL, id, Status::OK),
            Frame::Hello(_) => (frame::ty::HELLO, 0, Status::OK),
            Frame::Ack(_) => (frame::ty::ACK, 0, Status::OK),
            Frame::Ping(_) => (frame::ty::PING, 0, Status::OK),
            Frame::Pong(_) => (frame::ty::PONG, 0, Status::OK),
            _ => (0, 0, Status::OK),
        });
        off += n;
    }
    v
}

fn all_frames(ds: &[Vec<u8>]) -> Vec<(u8, u64, Status)> {
    ds.iter().flat_map(|d| frames_of(d)).collect()
}

fn events(c: &mut Connection<'_>, now: Instant) -> Vec<Ev> {
    let mut v = Vec::new();
    while let Some(e) = c.poll_event(now) {
        v.push(Ev::from(e));
    }
    v
}

fn feed(c: &mut Connection<'_>, now: Instant, d: &[u8]) {
    let n = c.handle_input(now, d);
    assert_eq!(n, d.len(), "a datagram is taken whole");
}

fn call(id: u64, payload: &[u8]) -> Frame<'_> {
    Frame::Call(Request { flags: 0, id, module: 1, method: 1, budget_us: 0, total_len: None, payload })
}

/// An acceptor `b` driven by a hand-written dialer: returns (b, now) after a valid handshake.
fn scripted_acceptor(cfg: Config) -> (Connection<'static>, Instant, Vec<u8>) {
    let now = Instant::from_millis(1000);
    let mut dialer = conn(Role::Dialer, dcfg(), now);
    let hello = out(&mut dialer, now).remove(0);
    let mut b = conn(Role::Acceptor, cfg, now);
    feed(&mut b, now, &hello);
    assert_eq!(events(&mut b, now), vec![Ev::Connected]);
    let _ = out(&mut b, now);
    (b, now, hello)
}

// ---------------------------------------------------------------- the lossy link

/// Two datagram-mode cores and a seeded link that drops, duplicates, reorders and delays.
pub(crate) struct Net {
    pub(crate) now: Instant,
    pub(crate) a: Connection<'static>,
    pub(crate) b: Connection<'static>,
    pub(crate) rng: Rng,
    pub(crate) seed: u64,
    /// (deliver at, sequence, to b?, datagram)
    inflight: Vec<(Instant, u64, bool, Vec<u8>)>,
    seq: u64,
    /// Per mille: drop, duplicate.
    pub(crate) drop: u64,
    pub(crate) dup: u64,
    /// Maximum one-way delay (random in 1..=this) in ms: reordering comes from the spread.
    pub(crate) delay_ms: u64,
    pub(crate) ev_a: Vec<Ev>,
    pub(crate) ev_b: Vec<Ev>,
    /// Requests the b side's handler saw, by id: must never exceed 1.
    pub(crate) handled_b: BTreeMap<u64, u32>,
    /// b answers requests it receives (echo).
    pub(crate) echo: bool,
}

impl Net {
    pub(crate) fn new(seed: u64, drop: u64, dup: u64, delay_ms: u64) -> Self {
        Self::with_config(dcfg(), seed, drop, dup, delay_ms)
    }

    pub(crate) fn with_config(cfg: Config, seed: u64, drop: u64, dup: u64, delay_ms: u64) -> Self {
        let now = Instant::from_millis(1000);
        Net {
            now,
            a: conn(Role::Dialer, cfg.clone(), now),
            b: conn(Role::Acceptor, cfg, now),
            rng: Rng::new(seed),
            seed,
            inflight: Vec::new(),
            seq: 0,
            drop,
            dup,
            delay_ms,
            ev_a: Vec::new(),
            ev_b: Vec::new(),
            handled_b: BTreeMap::new(),
            echo: true,
        }
    }

    fn send_all(&mut self) {
        for to_b in [true, false] {
            let c = if to_b { &mut self.a } else { &mut self.b };
            for d in out(c, self.now) {
                let copies = if self.rng.below(1000) < self.drop {
                    0
                } else if self.rng.below(1000) < self.dup {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let delay = 1 + self.rng.below(self.delay_ms.max(1));
                    self.seq += 1;
                    self.inflight.push((self.now + Duration::from_millis(delay), self.seq, to_b, d.clone()));
                }
            }
        }
    }

    fn poll_events(&mut self) {
        self.ev_a.extend(events(&mut self.a, self.now));
        let evb = events(&mut self.b, self.now);
        for e in evb {
            if let Ev::Request { id, kind, payload, .. } = &e {
                *self.handled_b.entry(*id).or_default() += 1;
                if self.echo {
                    let body = if *kind == RequestKind::Call { payload.clone() } else { Vec::new() };
                    let _ = self.b.respond(*id, Status::OK, &body);
                }
            }
            self.ev_b.push(e);
        }
    }

    /// One step: deliver what is due, else advance the clock to the next delivery or timer.
    /// Returns false when nothing is left to happen.
    pub(crate) fn step(&mut self) -> bool {
        self.poll_events();
        self.send_all();
        let mut due: Vec<_> = self.inflight.iter().filter(|x| x.0 <= self.now).cloned().collect();
        if !due.is_empty() {
            due.sort_by_key(|x| (x.0, x.1));
            self.inflight.retain(|x| x.0 > self.now);
            for (_, _, to_b, d) in due {
                let c = if to_b { &mut self.b } else { &mut self.a };
                let _ = c.handle_input(self.now, &d);
                self.poll_events();
            }
            return true;
        }
        let next_msg = self.inflight.iter().map(|x| x.0).min();
        let t = [next_msg, self.a.poll_timeout(), self.b.poll_timeout()].into_iter().flatten().min();
        let Some(t) = t else { return false };
        self.now = self.now.max(t);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        true
    }

    /// Steps until `done` holds (or `max` steps pass: then panics with the seed).
    pub(crate) fn run_until(&mut self, max: usize, mut done: impl FnMut(&mut Net) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            if !self.step() {
                break;
            }
        }
        assert!(done(self), "seed {}: condition not reached", self.seed);
    }

    pub(crate) fn connect(&mut self) {
        self.run_until(10_000, |n| n.a.state() == State::Open && n.b.state() == State::Open);
        self.poll_events();
        self.ev_a.retain(|e| *e != Ev::Connected);
        self.ev_b.retain(|e| *e != Ev::Connected);
    }
}

// ---------------------------------------------------------------- configuration

#[test]
fn datagram_config_announces_param_10_and_no_streams() {
    let c = dcfg();
    let p = c.params();
    assert!(p.contains(&(10, 1200)));
    assert!(p.contains(&(4, 0)), "SPEC.md §14.7: max_concurrent_streams = 0 over UDP");
    let bad = Config { transport: Transport::Datagram { max_datagram: 1199 }, ..Config::default() };
    assert_eq!(bad.validate().unwrap_err().field, "transport.max_datagram");
}

// ---------------------------------------------------------------- handshake (§14.3)

#[test]
fn dialer_retransmits_byte_identical_hello_and_acceptor_answers_every_copy() {
    let now = Instant::from_millis(1000);
    let mut a = conn(Role::Dialer, dcfg(), now);
    let h1 = out(&mut a, now);
    assert_eq!(h1.len(), 1);
    let t = a.poll_timeout().expect("HELLO timer");
    assert_eq!(t, now + Duration::from_secs(1), "initial RTO is 1 s");
    a.handle_timeout(t);
    let h2 = out(&mut a, t);
    assert_eq!(h1, h2, "retransmitted HELLO is byte-identical");
    // Backoff: the next one is 2 s later.
    assert_eq!(a.poll_timeout(), Some(t + Duration::from_secs(2)));
    assert_eq!(a.stats().retransmissions, 1);

    let mut b = conn(Role::Acceptor, dcfg(), now);
    feed(&mut b, t, &h1[0]);
    assert_eq!(events(&mut b, t), vec![Ev::Connected]);
    let r1 = out(&mut b, t);
    feed(&mut b, t, &h2[0]);
    let r2 = out(&mut b, t);
    assert_eq!(r1, r2, "acceptor answers each copy with the same HELLO");
    // The dialer connects on the first, ignores the copy.
    feed(&mut a, t, &r1[0]);
    assert_eq!(events(&mut a, t), vec![Ev::Connected]);
    feed(&mut a, t, &r2[0]);
    assert!(events(&mut a, t).is_empty());
    assert_eq!(a.state(), State::Open);
}

#[test]
fn different_hello_supersedes_the_acceptors_association() {
    let (mut b, now, _) = scripted_acceptor(dcfg());
    feed(&mut b, now, &enc(&[call(0, b"x")]));
    assert!(matches!(events(&mut b, now)[..], [Ev::Request { id: 0, .. }]));
    let mut other = conn(Role::Dialer, Config { keepalive_interval: Duration::from_secs(3), ..dcfg() }, now);
    let h = out(&mut other, now).remove(0);
    feed(&mut b, now, &h);
    let ev = events(&mut b, now);
    assert_eq!(
        ev,
        vec![Ev::Cancelled { id: 0, status: Status::UNAVAILABLE }, Ev::Closed(ConnectionError::Superseded)]
    );
    assert!(out(&mut b, now).is_empty(), "no CLOSE: it would kill the new association");
}

#[test]
fn different_acceptor_hello_is_a_protocol_error_for_the_dialer() {
    let now = Instant::from_millis(1000);
    let mut a = conn(Role::Dialer, dcfg(), now);
    let h = out(&mut a, now).remove(0);
    let mut b1 = conn(Role::Acceptor, dcfg(), now);
    let mut b2 = conn(Role::Acceptor, Config { max_concurrent_calls: 7, ..dcfg() }, now);
    feed(&mut b1, now, &h);
    feed(&mut b2, now, &h);
    feed(&mut a, now, &out(&mut b1, now)[0]);
    feed(&mut a, now, &out(&mut b2, now)[0]);
    let ev = events(&mut a, now);
    assert!(matches!(
        ev.last(),
        Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
    ));
}

#[test]
fn datagrams_before_the_hello_are_dropped_without_error() {
    let now = Instant::from_millis(1000);
    let mut a = conn(Role::Dialer, dcfg(), now);
    let _ = out(&mut a, now);
    feed(&mut a, now, &enc(&[Frame::Ping([0; 8])]));
    assert_eq!(a.state(), State::Handshake);
    assert_eq!(a.stats().datagrams_dropped, 1);
    assert!(events(&mut a, now).is_empty());
}

// ---------------------------------------------------------------- invalid datagrams (§14.2)

#[test]
fn a_decode_error_drops_the_whole_datagram_and_the_connection_continues() {
    let (mut b, now, _) = scripted_acceptor(dcfg());
    let mut d = enc(&[call(0, b"x")]);
    d.extend_from_slice(&[0x10, 0x05, 0x00]); // truncated CALL
    feed(&mut b, now, &d);
    assert!(events(&mut b, now).is_empty(), "the valid CALL in front is not processed either");
    assert_eq!(b.stats().datagrams_dropped, 1);
    // Oversize.
    let big = vec![0u8; 1201];
    feed(&mut b, now, &big);
    assert_eq!(b.stats().datagrams_dropped, 2);
    // Empty datagrams are ignored (not counted).
    feed(&mut b, now, &[]);
    assert_eq!(b.stats().datagrams_dropped, 2);
    feed(&mut b, now, &enc(&[call(0, b"x")]));
    assert!(matches!(events(&mut b, now)[..], [Ev::Request { id: 0, .. }]));
    assert_eq!(b.state(), State::Open);
}

// ---------------------------------------------------------------- RTO (§14.4)

#[test]
fn rto_follows_rfc_6298() {
    use crate::conn::datagram::rtt_for_tests as rtt;
    // First sample 100 ms: SRTT 100, RTTVAR 50, RTO = 100 + 200 = 300 ms.
    assert_eq!(rtt(&[100]), Duration::from_millis(300));
    // Tiny samples clamp to 200 ms.
    assert_eq!(rtt(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), Duration::from_millis(200));
    // Huge samples clamp to 60 s.
    assert_eq!(rtt(&[100_000]), Duration::from_secs(60));
    // Second sample 200 ms: RTTVAR = 3/4·50 + 1/4·100 = 62.5, SRTT = 112.5, RTO = 362.5 ms.
    assert_eq!(rtt(&[100, 200]), Duration::from_micros(362_500));
    // G = 1 ms dominates when RTTVAR is zero... after many equal samples RTTVAR decays.
    let mut s = vec![1000u64; 200];
    s[0] = 1000;
    assert_eq!(rtt(&s), Duration::from_millis(1001));
}

#[test]
fn lost_call_is_retransmitted_with_remaining_budget_and_backoff() {
    let mut n = Net::new(1, 0, 0, 10);
    n.connect();
    let rto = n.a.datagram_rto().expect("datagram");
    assert!(rto >= Duration::from_millis(200));
    let t0 = n.now;
    let id = n.a.call(t0, M, b"hello", Some(t0 + Duration::from_secs(100))).expect("call");
    let first = out(&mut n.a, t0);
    assert_eq!(all_frames(&first), vec![(frame::ty::CALL, id, Status::OK)]);
    let t1 = n.a.poll_timeout().expect("retransmission timer");
    assert_eq!(t1, t0 + rto);
    n.a.handle_timeout(t1);
    let again = out(&mut n.a, t1);
    let Ok(Decoded::Frame(Frame::Call(r), _)) = Frame::decode(&again[0], 1 << 20) else { panic!() };
    assert_eq!((r.id, r.payload), (id, &b"hello"[..]));
    assert_eq!(r.budget_us, (Duration::from_secs(100) - rto).as_micros() as u64, "remaining budget");
    let t2 = n.a.poll_timeout().expect("timer");
    assert_eq!(t2, t1 + rto * 2, "interval doubles");
    // Deliver the retransmission; the answer resolves the call once; Karn: no RTT sample.
    feed(&mut n.b, t2, &again[0]);
    n.now = t2;
    n.run_until(1000, |n| n.ev_a.iter().any(|e| matches!(e, Ev::Response { .. })));
    assert_eq!(n.a.datagram_rto(), Some(rto), "no sample from a retransmitted request");
    assert_eq!(n.ev_a, vec![Ev::Response { id, status: Status::OK, payload: b"hello".to_vec() }]);
}

#[test]
fn backoff_is_capped_at_60_seconds() {
    let quiet = Config { keepalive_interval: Duration::ZERO, idle_timeout: Duration::ZERO, ..dcfg() };
    let mut n = Net::with_config(quiet, 2, 0, 0, 10);
    n.connect();
    let id = n.a.call(n.now, M, b"x", None).expect("call");
    let mut t = n.now;
    let mut last = Duration::ZERO;
    for _ in 0..20 {
        let _ = out(&mut n.a, t);
        let next = n.a.poll_timeout().expect("timer");
        last = next.saturating_duration_since(t);
        t = next;
        n.a.handle_timeout(t);
    }
    assert_eq!(last, Duration::from_secs(60));
    assert!(n.a.datagram_tables().is_some_and(|x| x.2 == 1), "one timer for call {id}");
}

#[test]
fn cancel_is_retransmitted_until_the_response() {
    let mut n = Net::new(3, 0, 0, 10);
    n.connect();
    let id = n.a.call(n.now, M, b"x", None).expect("call");
    n.a.cancel(id).expect("cancel");
    let _ = out(&mut n.a, n.now); // CALL and CANCEL lost
    let t = n.a.poll_timeout().expect("timer");
    n.a.handle_timeout(t);
    let d = out(&mut n.a, t);
    assert_eq!(all_frames(&d), vec![(frame::ty::CANCEL, id, Status::OK)]);
    // The responder has never seen the call: it records CANCELLED and answers.
    feed(&mut n.b, t, &d[0]);
    let ans = out(&mut n.b, t);
    assert_eq!(all_frames(&ans), vec![(frame::ty::RESPONSE, id, Status::CANCELLED)]);
    feed(&mut n.a, t, &ans[0]);
    assert!(events(&mut n.a, t).is_empty(), "cancel settled the call; no event");
    assert_eq!(n.a.open_exchanges(), 0);
    assert_eq!(n.a.datagram_tables().map(|x| x.2), Some(0));
    // The late CALL never runs.
    feed(&mut n.b, t, &enc(&[call(id, b"x")]));
    assert!(events(&mut n.b, t).is_empty());
    assert_eq!(all_frames(&out(&mut n.b, t)), vec![(frame::ty::RESPONSE, id, Status::CANCELLED)]);
}

// ---------------------------------------------------------------- concurrency (§14.4)

#[test]
fn over_the_concurrency_limit_is_a_resource_exhausted_response() {
    let (mut b, now, _) = scripted_acceptor(Config { max_concurrent_calls: 1, ..dcfg() });
    feed(&mut b, now, &enc(&[call(0, b"a"), call(2, b"b")]));
    assert_eq!(events(&mut b, now).len(), 1);
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 2, Status::RESOURCE_EXHAUSTED)]);
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.reply_cache_len().0, 1, "the refusal is cached");
    // Its retransmission gets the cached refusal, not a new handler run.
    b.respond(0, Status::OK, b"").expect("respond");
    let _ = out(&mut b, now);
    feed(&mut b, now, &enc(&[call(2, b"b")]));
    assert!(events(&mut b, now).is_empty());
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 2, Status::RESOURCE_EXHAUSTED)]);
}

// ---------------------------------------------------------------- duplicate window (§14.5)

#[test]
fn duplicate_window_rows() {
    let (mut b, now, _) = scripted_acceptor(Config { reply_cache_entries: 2, ..dcfg() });
    // Reordered: 4 before 0 and 2 — all new.
    feed(&mut b, now, &enc(&[call(4, b"c")]));
    feed(&mut b, now, &enc(&[call(0, b"a")]));
    feed(&mut b, now, &enc(&[call(2, b"b")]));
    assert_eq!(events(&mut b, now).len(), 3);
    // Seen and still open: ignored.
    feed(&mut b, now, &enc(&[call(2, b"b")]));
    assert!(events(&mut b, now).is_empty());
    assert!(out(&mut b, now).is_empty());
    // Answer all; the cache keeps 2 entries: 0 evicted.
    for id in [0, 2, 4] {
        b.respond(id, Status::OK, b"r").expect("respond");
    }
    let _ = out(&mut b, now);
    assert_eq!(b.reply_cache_len(), (2, 2));
    // Cached: resent.
    feed(&mut b, now, &enc(&[call(4, b"c")]));
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 4, Status::OK)]);
    // Seen, not open, evicted: REPLY_EVICTED; the handler does not run.
    feed(&mut b, now, &enc(&[call(0, b"a")]));
    assert!(events(&mut b, now).is_empty());
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 0, Status::REPLY_EVICTED)]);
    // Far above: the window moves; 0 is now below it and not cached.
    feed(&mut b, now, &enc(&[call(6 + 2 * 1024, b"z")]));
    assert_eq!(events(&mut b, now).len(), 1);
    feed(&mut b, now, &enc(&[call(6, b"never seen, below the window")]));
    assert!(events(&mut b, now).is_empty(), "below the window: never run");
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 6, Status::REPLY_EVICTED)]);
    // Still cached below the window (4): resent.
    feed(&mut b, now, &enc(&[call(4, b"c")]));
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 4, Status::OK)]);
    let (h, seen, _) = b.datagram_tables().expect("datagram");
    assert_eq!(h, Some(6 + 2 * 1024));
    assert!(seen <= 1024);
}

#[test]
fn a_duplicate_with_another_digest_is_a_protocol_error() {
    for cached in [false, true] {
        let (mut b, now, _) = scripted_acceptor(dcfg());
        feed(&mut b, now, &enc(&[call(0, b"a")]));
        let _ = events(&mut b, now);
        if cached {
            b.respond(0, Status::OK, b"").expect("respond");
        }
        feed(&mut b, now, &enc(&[call(0, b"DIFFERENT")]));
        let ev = events(&mut b, now);
        assert!(
            matches!(
                ev.last(),
                Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
            ),
            "cached={cached}: {ev:?}"
        );
    }
}

#[test]
fn cancel_rows() {
    let (mut b, now, _) = scripted_acceptor(dcfg());
    // Open: cancelled as usual.
    feed(&mut b, now, &enc(&[call(0, b"a")]));
    let _ = events(&mut b, now);
    feed(&mut b, now, &enc(&[Frame::Cancel { id: 0 }]));
    assert_eq!(events(&mut b, now), vec![Ev::Cancelled { id: 0, status: Status::CANCELLED }]);
    b.respond(0, Status::OK, b"ignored").expect("respond");
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 0, Status::CANCELLED)]);
    // Cached: resent.
    feed(&mut b, now, &enc(&[Frame::Cancel { id: 0 }]));
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 0, Status::CANCELLED)]);
    // Above H, unseen: recorded CANCELLED; its CALL later is a duplicate.
    feed(&mut b, now, &enc(&[Frame::Cancel { id: 8 }]));
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 8, Status::CANCELLED)]);
    feed(&mut b, now, &enc(&[call(8, b"late")]));
    assert!(events(&mut b, now).is_empty());
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 8, Status::CANCELLED)]);
    // Below the window, not cached: REPLY_EVICTED.
    feed(&mut b, now, &enc(&[call(8 + 2 * 2000, b"far")]));
    let _ = events(&mut b, now);
    let _ = out(&mut b, now);
    feed(&mut b, now, &enc(&[Frame::Cancel { id: 2 }]));
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::RESPONSE, 2, Status::REPLY_EVICTED)]);
    // Own parity: PROTOCOL_ERROR.
    feed(&mut b, now, &enc(&[Frame::Cancel { id: 1 }]));
    assert!(matches!(events(&mut b, now).last(), Some(Ev::Closed(ConnectionError::Violation { .. }))));
}

#[test]
fn caller_keeps_ids_within_the_window_of_its_lowest_unanswered() {
    let cfg = Config { max_outbound_calls: 5000, ..dcfg() };
    let now = Instant::from_millis(1000);
    let mut a = conn(Role::Dialer, cfg.clone(), now);
    let mut b = conn(Role::Acceptor, Config { max_concurrent_calls: 5000, ..dcfg() }, now);
    feed(&mut b, now, &out(&mut a, now)[0]);
    feed(&mut a, now, &out(&mut b, now)[0]);
    let _ = events(&mut a, now);
    let first = a.call(now, M, b"", None).expect("call");
    for _ in 1..1024 {
        a.call(now, M, b"", None).expect("call within the window");
        let _ = out(&mut a, now);
    }
    let e = a.call(now, M, b"", None).unwrap_err();
    assert_eq!(e, ApiError::WindowFull { lowest: first });
    assert_eq!(e.status(), Status::RESOURCE_EXHAUSTED);
    // Once the lowest is answered, the next id is allowed again.
    a.cancel(first).expect("cancel");
    feed(
        &mut a,
        now,
        &enc(&[Frame::Response {
            flags: 0,
            id: first,
            status: Status::CANCELLED,
            total_len: None,
            payload: b"",
        }]),
    );
    assert!(events(&mut a, now).is_empty());
    assert!(a.call(now, M, b"", None).is_ok());
}

// ---------------------------------------------------------------- fragmentation, streams (§14.7)

#[test]
fn no_fragmentation() {
    let mut n = Net::new(5, 0, 0, 10);
    n.connect();
    let e = n.a.call(n.now, M, &[0u8; 1300], None).unwrap_err();
    assert!(matches!(e, ApiError::TooLarge { size: 1300, .. }), "{e:?}");
    assert!(n.a.call(n.now, M, &[0u8; 1100], None).is_ok());
    let (mut b, now, _) = scripted_acceptor(dcfg());
    let more = Frame::Call(Request {
        flags: frame::flags::MORE,
        id: 0,
        module: 1,
        method: 1,
        budget_us: 0,
        total_len: Some(5000),
        payload: b"x",
    });
    feed(&mut b, now, &enc(&[more]));
    assert!(matches!(
        events(&mut b, now).last(),
        Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
    ));
    let (mut b, now, _) = scripted_acceptor(dcfg());
    feed(&mut b, now, &enc(&[Frame::Continuation { flags: 0, id: 0, payload: b"x" }]));
    assert!(matches!(
        events(&mut b, now).last(),
        Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
    ));
}

#[test]
fn streams_are_refused_both_ways() {
    let mut n = Net::new(6, 0, 0, 10);
    n.connect();
    let e = n.a.open_stream(n.now, M, b"", None, false).unwrap_err();
    assert_eq!(e.status(), Status::UNIMPLEMENTED);
    let (mut b, now, _) = scripted_acceptor(dcfg());
    let so = Frame::StreamOpen(Request {
        flags: 0,
        id: 0,
        module: 1,
        method: 1,
        budget_us: 0,
        total_len: None,
        payload: b"",
    });
    feed(&mut b, now, &enc(&[so]));
    assert!(events(&mut b, now).is_empty());
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::STREAM_RESET, 0, Status::UNIMPLEMENTED)]);
    assert_eq!(b.open_exchanges(), 0);
    feed(
        &mut b,
        now,
        &enc(&[
            Frame::StreamData { flags: 0, id: 0, total_len: None, payload: b"x" },
            Frame::StreamFin { id: 0, status: Status::OK },
            Frame::StreamReset { id: 0, status: Status::OK },
            Frame::StreamCredit { id: 99, msgs: 1, bytes: 1 },
            Frame::ConnCredit { bytes: u32::MAX },
        ]),
    );
    assert!(events(&mut b, now).is_empty());
    assert_eq!(b.state(), State::Open);
}

// ---------------------------------------------------------------- SIGNAL, PING, CLOSE (§14.8)

#[test]
fn a_duplicated_signal_is_delivered_once() {
    let (mut b, now, _) = scripted_acceptor(dcfg());
    let s = enc(&[Frame::Signal { module: 1, method: 1, payload: b"s1" }]);
    feed(&mut b, now, &s);
    feed(&mut b, now, &s);
    assert_eq!(events(&mut b, now).len(), 1);
}

#[test]
fn ping_is_outstanding_for_one_rto_only() {
    let mut n = Net::new(7, 0, 0, 10);
    n.connect();
    let t = n.now;
    n.a.ping(t).expect("ping");
    let _ = out(&mut n.a, t); // lost
    let rto = n.a.datagram_rto().expect("rto");
    assert_eq!(n.a.poll_timeout(), Some(t + rto));
    n.a.handle_timeout(t + rto);
    n.a.ping(t + rto).expect("a new ping");
}

#[test]
fn close_is_repeated_at_most_once_per_rto_for_three_rtos() {
    let (mut b, now, _) = scripted_acceptor(dcfg());
    b.close(now, Status::OK, b"bye");
    assert_eq!(all_frames(&out(&mut b, now)), vec![(frame::ty::CLOSE, 0, Status::OK)]);
    let _ = events(&mut b, now);
    assert!(!b.is_finished(), "lingers");
    let rto = b.datagram_rto().expect("rto");
    let ping = enc(&[Frame::Ping([1; 8])]);
    feed(&mut b, now, &ping);
    assert!(out(&mut b, now).is_empty(), "not within one RTO of the last CLOSE");
    feed(&mut b, now + rto, &ping);
    assert_eq!(all_frames(&out(&mut b, now + rto)).len(), 1);
    feed(&mut b, now + rto, &ping);
    assert!(out(&mut b, now + rto).is_empty());
    assert_eq!(b.poll_timeout(), Some(now + rto * 3));
    b.handle_timeout(now + rto * 3);
    feed(&mut b, now + rto * 3, &ping);
    assert!(out(&mut b, now + rto * 3).is_empty());
    assert!(b.is_finished());
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn receiving_close_ends_the_association_at_once() {
    let mut n = Net::new(8, 0, 0, 10);
    n.connect();
    n.a.close(n.now, Status::OK, b"");
    n.run_until(1000, |n| n.b.state() == State::Closed);
    n.poll_events();
    assert!(n.b.is_finished());
}

// ---------------------------------------------------------------- hostile peers

#[test]
fn reply_cache_flooding_stays_within_entries_and_bytes() {
    let (mut b, now, _) =
        scripted_acceptor(Config { reply_cache_entries: 50, reply_cache_bytes: 1000, ..dcfg() });
    let payload = [7u8; 90];
    for k in 0..2000u64 {
        feed(&mut b, now, &enc(&[call(2 * k, b"q")]));
        let _ = events(&mut b, now);
        let _ = b.respond(2 * k, Status::OK, &payload);
        let _ = out(&mut b, now);
        let (n, bytes) = b.reply_cache_len();
        assert!(n <= 50 && bytes <= 1000, "{n} entries, {bytes} bytes");
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.open_exchanges(), 0);
}

#[test]
fn window_abuse_and_ids_far_above_stay_bounded() {
    let (mut b, now, _) = scripted_acceptor(Config { max_concurrent_calls: 4, ..dcfg() });
    let mut rng = Rng::new(99);
    for _ in 0..5000 {
        let id = 2 * rng.below(1 << 40);
        feed(&mut b, now, &enc(&[call(id, b"q")]));
        for e in events(&mut b, now) {
            if let Ev::Request { id, .. } = e {
                b.respond(id, Status::OK, b"").expect("respond");
            }
        }
        let _ = out(&mut b, now);
        let (_, seen, timers) = b.datagram_tables().expect("datagram");
        assert!(seen <= 1024 && timers == 0);
        assert!(b.reply_cache_len().0 <= 1024);
    }
    // The last id of the varint range.
    feed(&mut b, now, &enc(&[call(crate::varint::MAX - 1, b"q")]));
    assert_eq!(b.state(), State::Open);
    assert!(b.open_exchanges() <= 4);
}

#[test]
fn huge_ack_ranges_and_acks_above_h() {
    let (mut b, now, _) = scripted_acceptor(dcfg());
    for k in 0..100u64 {
        feed(&mut b, now, &enc(&[call(2 * k, b"q")]));
        let _ = events(&mut b, now);
        b.respond(2 * k, Status::OK, b"r").expect("respond");
    }
    let _ = out(&mut b, now);
    assert_eq!(b.reply_cache_len().0, 100);
    let mut buf = [0u8; 64 * 16];
    // Ranges covering ids above H (reordering): ignored beyond H, no error.
    let ranges = [(0u64, (crate::varint::MAX - 1) / 2 + 1); 64];
    let ack = frame::Ack::encode_into(&ranges[..], &mut buf).expect("ack");
    feed(&mut b, now, &enc(&[Frame::Ack(ack)]));
    assert!(events(&mut b, now).is_empty());
    assert_eq!(b.reply_cache_len().0, 0);
    assert_eq!(b.state(), State::Open);
    // An ACK of our own parity is a PROTOCOL_ERROR.
    let ack = frame::Ack::encode_into(&[(1, 1)], &mut buf).expect("ack");
    feed(&mut b, now, &enc(&[Frame::Ack(ack)]));
    assert!(matches!(events(&mut b, now).last(), Some(Ev::Closed(ConnectionError::Violation { .. }))));
}

#[test]
fn response_for_an_id_never_used_is_still_a_protocol_error() {
    let (mut b, now, _) = scripted_acceptor(dcfg());
    feed(
        &mut b,
        now,
        &enc(&[Frame::Response { flags: 0, id: 1, status: Status::OK, total_len: None, payload: b"" }]),
    );
    assert!(matches!(
        events(&mut b, now).last(),
        Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
    ));
}

// ---------------------------------------------------------------- lossy pair

#[test]
fn lossy_link_every_call_resolves_exactly_once_and_no_handler_runs_twice() {
    for seed in 0..60u64 {
        let mut n = Net::new(seed, 150, 150, 80);
        n.connect();
        let mut ids = Vec::new();
        let mut rng = Rng::new(seed ^ 0xABCD);
        for k in 0..30u32 {
            let body = k.to_be_bytes();
            let r = if rng.below(3) == 0 {
                n.a.notify(n.now, M, &body, None)
            } else {
                n.a.call(n.now, M, &body, None)
            };
            ids.push(r.unwrap_or_else(|e| panic!("seed {seed}: {e}")));
            if rng.below(4) == 0 {
                n.step();
            }
        }
        n.run_until(1_000_000, |n| {
            n.ev_a.iter().filter(|e| matches!(e, Ev::Response { .. } | Ev::Failed { .. })).count()
                >= ids.len()
        });
        let mut resolved = BTreeMap::new();
        for e in &n.ev_a {
            if let Ev::Response { id, status, .. } = e {
                assert_eq!(*status, Status::OK, "seed {seed}");
                *resolved.entry(*id).or_insert(0) += 1;
            }
        }
        for id in &ids {
            assert_eq!(
                resolved.get(id),
                Some(&1),
                "seed {seed}: id {id} resolved {:?} times",
                resolved.get(id)
            );
        }
        assert!(n.handled_b.values().all(|&c| c == 1), "seed {seed}: a handler ran twice");
        assert_eq!(n.a.open_exchanges(), 0, "seed {seed}");
        assert_eq!(n.a.retained_requests(), (0, 0), "seed {seed}");
        assert_eq!(n.a.datagram_tables().map(|t| t.2), Some(0), "seed {seed}");
    }
}

#[test]
fn the_hello_round_trip_is_an_rtt_sample_unless_retransmitted() {
    // Answered at once: a 40 ms sample gives RTO = 40 + 4·20 = 120 → clamped to 200 ms.
    let now = Instant::from_millis(1000);
    let mut a = conn(Role::Dialer, dcfg(), now);
    let mut b = conn(Role::Acceptor, dcfg(), now);
    let h = out(&mut a, now).remove(0);
    feed(&mut b, now, &h);
    let t = now + Duration::from_millis(40);
    feed(&mut a, t, &out(&mut b, now)[0]);
    assert_eq!(events(&mut a, t), vec![Ev::Connected]);
    assert_eq!(a.datagram_rto(), Some(Duration::from_millis(200)));
    // Retransmitted first: no sample (Karn), RTO stays 1 s.
    let mut a = conn(Role::Dialer, dcfg(), now);
    let mut b = conn(Role::Acceptor, dcfg(), now);
    let _ = out(&mut a, now);
    a.handle_timeout(now + Duration::from_secs(1));
    let h = out(&mut a, now + Duration::from_secs(1)).remove(0);
    feed(&mut b, now, &h);
    let t = now + Duration::from_millis(1040);
    feed(&mut a, t, &out(&mut b, now)[0]);
    assert_eq!(events(&mut a, t), vec![Ev::Connected]);
    assert_eq!(a.datagram_rto(), Some(Duration::from_secs(1)));
}

#[test]
fn acks_trim_the_reply_cache_and_duplicate_responses_are_acknowledged_again() {
    let mut n = Net::new(9, 0, 0, 10);
    n.connect();
    for k in 0..20u32 {
        n.a.call(n.now, M, &k.to_be_bytes(), None).expect("call");
    }
    n.run_until(10_000, |n| n.ev_a.len() == 20);
    // Let the ACK batch (100 ms) go out.
    let until = n.now + Duration::from_millis(500);
    n.run_until(10_000, |n| n.now >= until);
    assert_eq!(n.b.reply_cache_len(), (0, 0), "ACKs emptied the cache");
    assert!(n.handled_b.values().all(|&c| c == 1));
}

#[test]
fn a_retransmitted_request_during_the_handler_is_ignored_then_answered_from_the_cache() {
    let mut n = Net::new(10, 0, 0, 10);
    n.echo = false;
    n.connect();
    let id = n.a.call(n.now, M, b"slow", None).expect("call");
    // Three retransmissions arrive while the handler is still running.
    for _ in 0..3 {
        let t = n.a.poll_timeout().expect("timer");
        n.run_until(10_000, |n| n.now >= t);
    }
    assert_eq!(n.handled_b.get(&id), Some(&1));
    assert!(n.a.stats().retransmissions >= 3);
    n.b.respond(id, Status::OK, b"done").expect("respond");
    n.run_until(10_000, |n| !n.ev_a.is_empty());
    assert_eq!(n.ev_a, vec![Ev::Response { id, status: Status::OK, payload: b"done".to_vec() }]);
}

#[test]
fn a_keyed_call_is_retransmitted_keyed() {
    let mut n = Net::new(5, 0, 0, 10);
    n.connect();
    let t0 = n.now;
    let key = crate::SchemaKey([3; 8]);
    let id = n.a.open_keyed(t0, crate::RequestKind::Call, M, Some(key), b"k", None).expect("call");
    let first = out(&mut n.a, t0);
    let Ok(Decoded::Frame(Frame::Keyed { key: k1, req, .. }, _)) = Frame::decode(&first[0], 1 << 20) else {
        panic!("a keyed CALL")
    };
    assert_eq!((k1, req.id), (key, id));
    let t1 = n.a.poll_timeout().expect("retransmission timer");
    n.a.handle_timeout(t1);
    let again = out(&mut n.a, t1);
    let Ok(Decoded::Frame(Frame::Keyed { key: k2, .. }, _)) = Frame::decode(&again[0], 1 << 20) else {
        panic!("the retransmission is keyed too")
    };
    assert_eq!(k2, key);
}
