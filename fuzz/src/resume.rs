//! Fuzz harness for session resumption (SPEC.md §13): the fuzzer's bytes are a program of
//! operations — calls and notifications, the handler's answers, cancellations, partial deliveries
//! in each direction, transport losses, resumptions (or declines) and clock jumps — played on a
//! dialer and an acceptor that offers resumption, and checked after every step against a model:
//!
//! * a handler never sees the same request twice, and sees it as sent;
//! * an exchange resolves at most once, and a RESPONSE carries exactly what the handler answered
//!   (or REPLY_EVICTED, never someone else's reply);
//! * the reply cache and the retained requests stay within their configured bounds;
//! * between two correct peers no connection ever fails with a protocol error;
//! * at the end, after the session is resumed and everything answered, every exchange resolved
//!   exactly once and, once acknowledged, the reply cache and retained requests are empty.
//!
//! Plain `&[u8]` input (no `arbitrary`), so `proto-core/tests/fuzz_corpus.rs` replays the corpus
//! through this very file on stable Rust.

use std::collections::{BTreeMap, VecDeque};
use tandem_core::{
    ApiError, Config, Connection, ConnectionError, Event, Identity, Instant, MethodId, Role, State, Status,
};

const TOKEN: &[u8] = b"fuzz-session-token-0123456789ab";
const ECHO: MethodId = MethodId::new(1, 1);

/// What a run did, for the corpus replay's coverage assertions.
#[derive(Debug, Default, Clone, Copy)]
pub struct ResumeOutcome {
    /// Sessions resumed on a new transport.
    pub resumptions: u32,
    /// Requests the handler saw.
    pub handled: u32,
    /// Retransmitted requests answered without running the handler.
    pub replayed: u64,
    /// Exchanges resolved with REPLY_EVICTED.
    pub evicted: u32,
}

struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }
    fn byte(&mut self) -> u8 {
        self.next().unwrap_or(0)
    }
}

#[derive(Default)]
struct Model {
    /// Every exchange the dialer opened: its request payload, whether it is a notification.
    sent: BTreeMap<u64, (Vec<u8>, bool)>,
    /// Times the handler saw each request.
    handled: BTreeMap<u64, u32>,
    /// What the handler answered.
    answered: BTreeMap<u64, Vec<u8>>,
    /// Outcomes at the dialer.
    resolved: BTreeMap<u64, u32>,
    /// Requests waiting for the handler's answer.
    pending: VecDeque<u64>,
    /// Exchanges the dialer cancelled (they resolve at `cancel`).
    cancelled: BTreeMap<u64, ()>,
    out: ResumeOutcome,
}

struct World {
    now: Instant,
    a: Connection<'static>,
    b: Connection<'static>,
    /// Bytes written by a (to b) and by b (to a), not yet delivered.
    ab: Vec<u8>,
    ba: Vec<u8>,
    cfg: Config,
    m: Model,
    /// Both ends are attached to the same live transport. A runtime drops the socket as soon as
    /// its side of it suspends or closes, so the other side then sees the end of the stream.
    linked: bool,
}

fn config(sel: u8) -> Config {
    Config {
        reply_cache_entries: [0, 1, 3, 1024][usize::from(sel & 3)],
        reply_cache_bytes: [64, 4096, 1 << 20, 4 << 20][usize::from((sel >> 2) & 3)],
        max_retained_bytes: [256, 1 << 20][usize::from((sel >> 4) & 1)],
        session_grace: core::time::Duration::from_millis([200, 5_000][usize::from((sel >> 5) & 1)]),
        max_frame_size: 4096,
        max_concurrent_calls: 8,
        ..Config::default()
    }
}

impl World {
    fn new(sel: u8) -> World {
        let cfg = config(sel);
        let now = Instant::from_millis(1_000);
        let a =
            Connection::new(Role::Dialer, cfg.clone(), Identity { name: b"a", auth: b"", session: b"" }, now)
                .expect("valid config");
        let b = Connection::new(
            Role::Acceptor,
            cfg.clone(),
            Identity { name: b"b", auth: b"", session: TOKEN },
            now,
        )
        .expect("valid config");
        World { now, a, b, ab: Vec::new(), ba: Vec::new(), cfg, m: Model::default(), linked: true }
    }

    fn transmit(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.a.poll_transmit(self.now, &mut buf);
            if n == 0 {
                break;
            }
            self.ab.extend_from_slice(&buf[..n]);
        }
        loop {
            let n = self.b.poll_transmit(self.now, &mut buf);
            if n == 0 {
                break;
            }
            self.ba.extend_from_slice(&buf[..n]);
        }
    }

    /// Drains both sides' events, checking each against the model.
    fn events(&mut self) {
        while let Some(e) = self.a.poll_event(self.now) {
            match e {
                Event::Response { id, status, payload } => {
                    let n = self.m.resolved.entry(id).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "exchange {id} resolved twice");
                    assert!(!self.m.cancelled.contains_key(&id), "cancelled exchange {id} resolved again");
                    match status {
                        Status::OK => {
                            let want = self
                                .m
                                .answered
                                .get(&id)
                                .unwrap_or_else(|| panic!("{id} answered by no handler"));
                            assert_eq!(payload, &want[..], "exchange {id}: someone else's reply");
                        }
                        Status::REPLY_EVICTED => self.m.out.evicted += 1,
                        s => panic!("exchange {id}: unexpected status {s:?}"),
                    }
                }
                Event::Failed { id, status } => {
                    let n = self.m.resolved.entry(id).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "exchange {id} resolved twice");
                    assert!(
                        status == Status::UNAVAILABLE || status == Status::DEADLINE_EXCEEDED,
                        "exchange {id} failed with {status:?}"
                    );
                }
                Event::Closed(e) => check_close(&e),
                Event::Connected => {}
                e => panic!("dialer: unexpected {e:?}"),
            }
        }
        while let Some(e) = self.b.poll_event(self.now) {
            match e {
                Event::Request { id, payload, .. } => {
                    let n = self.m.handled.entry(id).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "handler ran twice for {id}");
                    let (sent, _) = self.m.sent.get(&id).unwrap_or_else(|| panic!("request {id} never sent"));
                    assert_eq!(payload, &sent[..], "request {id} arrived altered");
                    self.m.out.handled += 1;
                    self.m.pending.push_back(id);
                }
                Event::Cancelled { .. } | Event::Connected => {}
                Event::Closed(e) => check_close(&e),
                e => panic!("acceptor: unexpected {e:?}"),
            }
        }
    }

    fn check_bounds(&self) {
        for c in [&self.a, &self.b] {
            if let Err(e) = c.check_invariants() {
                panic!("core invariant broken: {e}");
            }
        }
        let (entries, bytes) = self.b.reply_cache_len();
        assert!(entries <= self.cfg.reply_cache_entries as usize, "reply cache at {entries} entries");
        assert!(bytes <= self.cfg.reply_cache_bytes as usize, "reply cache at {bytes} bytes");
        let (_, retained) = self.a.retained_requests();
        assert!(retained <= self.cfg.max_retained_bytes as usize, "{retained} bytes retained");
    }

    fn deliver(&mut self, to_b: bool, max: usize) {
        let (wire, conn) = if to_b { (&mut self.ab, &mut self.b) } else { (&mut self.ba, &mut self.a) };
        let n = max.min(wire.len());
        let mut off = 0;
        while off < n {
            let took = conn.handle_input(self.now, &wire[off..n]);
            off += took;
            if took == 0 {
                // Receive buffer full: events must be drained first.
                break;
            }
        }
        wire.drain(..off);
        self.events();
    }

    /// What a runtime does when one side leaves the transport (suspended by an idle timeout,
    /// closed by an expired session): it shuts the socket, so the other side sees EOF. Without
    /// this, a dialer would keep writing into an acceptor that swallows everything, which no
    /// real transport does.
    fn cut_if_left(&mut self) {
        let gone = |c: &Connection<'_>| matches!(c.state(), State::Suspended | State::Closed);
        if self.linked && (gone(&self.a) || gone(&self.b)) {
            self.lose_transport();
        }
    }

    fn lose_transport(&mut self) {
        self.linked = false;
        self.transmit();
        self.ab.clear();
        self.ba.clear();
        self.a.handle_eof(self.now);
        self.b.handle_eof(self.now);
        self.events();
    }

    /// The dialer reconnects; the acceptor resumes (or, with `decline`, starts a new session).
    fn resume(&mut self) -> bool {
        if !self.a.needs_transport() {
            return false;
        }
        self.a.reconnect(self.now).expect("a suspended session can reconnect");
        let mut fresh = Connection::new(
            Role::Acceptor,
            self.cfg.clone(),
            Identity { name: b"b", auth: b"", session: b"fresh-token-not-resumed-000" },
            self.now,
        )
        .expect("valid config");
        let mut buf = vec![0u8; 64 * 1024];
        let n = self.a.poll_transmit(self.now, &mut buf);
        let _ = fresh.handle_input(self.now, &buf[..n]);
        match fresh.poll_event(self.now) {
            Some(Event::ResumeRequested { token }) => assert_eq!(token, TOKEN),
            e => panic!("expected a resumption request, got {e:?}"),
        }
        if self.b.state() == State::Closed {
            // The session expired here: a new one (the dialer fails the old exchanges).
            fresh.decline_resume(self.now).expect("decline");
            self.b = fresh;
        } else {
            self.b.resume_from(self.now, &mut fresh).expect("the acceptor resumes its own session");
            assert!(fresh.is_finished());
            self.m.out.resumptions += 1;
        }
        self.ab.clear();
        self.ba.clear();
        self.linked = true;
        self.settle();
        true
    }

    fn settle(&mut self) {
        for _ in 0..64 {
            self.transmit();
            if self.ab.is_empty() && self.ba.is_empty() {
                break;
            }
            self.deliver(true, usize::MAX);
            self.deliver(false, usize::MAX);
        }
        self.events();
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now + core::time::Duration::from_millis(ms);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.events();
    }

    fn respond(&mut self, body: u8) {
        let Some(id) = self.m.pending.pop_front() else { return };
        let notify = self.m.sent.get(&id).is_some_and(|s| s.1);
        let payload = if notify { Vec::new() } else { vec![body; usize::from(body % 40)] };
        match self.b.respond(id, Status::OK, &payload) {
            Ok(()) => {
                self.m.answered.insert(id, payload);
            }
            Err(ApiError::Closed | ApiError::UnknownId(_)) => {}
            Err(e) => panic!("respond({id}): {e:?}"),
        }
    }
}

fn check_close(e: &ConnectionError) {
    assert!(
        !matches!(e, ConnectionError::Malformed(_) | ConnectionError::Violation { .. }),
        "a correct peer was closed for a protocol error: {e:?}"
    );
}

/// Plays `data` as a program; panics on any violated invariant.
pub fn resume(data: &[u8]) -> ResumeOutcome {
    let mut bytes = Bytes { data, pos: 0 };
    let mut w = World::new(bytes.byte());
    w.settle();
    assert!(w.a.is_resumable(), "the acceptor offered a token");
    let mut steps = 0;
    while let Some(op) = bytes.next() {
        steps += 1;
        if steps > 400 {
            break;
        }
        let arg = bytes.byte();
        match op % 10 {
            0 | 1 => {
                let notify = op % 10 == 1;
                let payload = vec![arg; usize::from(arg % 50)];
                let r = if notify {
                    w.a.notify(w.now, ECHO, &[], None)
                } else {
                    let dl = (arg & 0x80 != 0)
                        .then(|| w.now + core::time::Duration::from_millis(u64::from(arg % 64)));
                    w.a.call(w.now, ECHO, &payload, dl)
                };
                match r {
                    Ok(id) => {
                        w.m.sent.insert(id, (if notify { Vec::new() } else { payload }, notify));
                    }
                    Err(
                        ApiError::TooManyCalls { .. }
                        | ApiError::RetainFull { .. }
                        | ApiError::NotConnected
                        | ApiError::Closed
                        | ApiError::TxFull,
                    ) => {}
                    Err(e) => panic!("call refused: {e:?}"),
                }
            }
            2 => w.respond(arg),
            3 => {
                w.transmit();
                w.deliver(true, usize::from(arg) * 4);
            }
            4 => {
                w.transmit();
                w.deliver(false, usize::from(arg) * 4);
            }
            5 => w.lose_transport(),
            6 => {
                let _ = w.resume();
            }
            7 => w.advance(u64::from(arg)),
            8 => {
                let open: Vec<u64> =
                    w.m.sent
                        .keys()
                        .copied()
                        .filter(|id| !w.m.resolved.contains_key(id) && !w.m.cancelled.contains_key(id))
                        .collect();
                if let Some(&id) = open.get(usize::from(arg) % open.len().max(1)) {
                    if w.a.cancel(id).is_ok() {
                        w.m.cancelled.insert(id, ());
                        *w.m.resolved.entry(id).or_default() += 1;
                    }
                }
            }
            _ => w.settle(),
        }
        w.cut_if_left();
        w.check_bounds();
        if w.a.state() == State::Closed && w.b.state() == State::Closed {
            break;
        }
    }
    // Quiesce: bring the session back, answer everything, let ACKs flow.
    for _ in 0..8 {
        if w.a.state() == State::Suspended {
            if w.a.needs_transport() {
                w.resume();
            } else {
                w.settle();
            }
        }
        while !w.m.pending.is_empty() {
            w.respond(7);
        }
        w.settle();
        w.advance(150);
        w.cut_if_left();
        w.settle();
    }
    w.check_bounds();
    w.m.out.replayed = w.b.stats().retransmissions_received;
    if w.a.state() != State::Closed {
        for id in w.m.sent.keys() {
            assert_eq!(
                w.m.resolved.get(id).copied().unwrap_or(0),
                1,
                "exchange {id} not resolved exactly once"
            );
        }
        assert_eq!(w.a.open_exchanges(), 0, "dialer still tracks exchanges");
        assert_eq!(w.a.retained_requests(), (0, 0), "requests still retained");
        if w.b.state() != State::Closed {
            assert_eq!(w.b.reply_cache_len(), (0, 0), "reply cache not emptied by the ACKs");
        }
    }
    w.m.out
}
