//! Session resumption (SPEC.md §13) with the session state in caller storage
//! (`Connection::with_session_storage`): a dialer and an acceptor over a byte-stream "transport"
//! that is cut again and again, losing every byte in flight. The dialer reconnects, a fresh
//! acceptor connection (plain `with_storage`, no session buffers) reports `ResumeRequested`, and
//! the session takes its transport over with `resume_from`. Calls, reliable notifications and
//! stream items in both directions are in flight at each cut. Every call and notification must
//! reach the handler exactly once and complete exactly once with its answer; every stream item
//! must arrive exactly once, in order, and every stream must finish. Many seeded scenarios.
//!
//! Run by `tandem-noalloc-tests` against the core built without `alloc` (the state in the
//! caller's buffers) and by `cargo test -p tandem-core` with it (the same API, the state on the
//! heap): one behaviour either way.

use std::collections::HashMap;

use tandem_core::{
    ApiError, Config, Connection, ConnectionError, Event, Identity, Instant, MethodId, RequestKind, Role,
    SessionStorage, Slot, State, Status, Storage,
};

const CALL: MethodId = MethodId::new(1, 1);
const NOTE: MethodId = MethodId::new(1, 2);
const STREAM: MethodId = MethodId::new(1, 3);
const TOKEN: &[u8] = b"0123456789abcdef-session";

/// SplitMix64: a seed replays bit for bit.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

fn config() -> Config {
    Config {
        max_frame_size: 4096,
        max_message_size: 4096,
        max_concurrent_calls: 8,
        max_concurrent_streams: 2,
        max_outbound_calls: 8,
        max_outbound_streams: 2,
        max_tx_buffer: 16 * 1024,
        reply_cache_entries: 32,
        reply_cache_bytes: 16 * 1024,
        max_retained_bytes: 8 * 1024,
        stream_credit_msgs: 4,
        stream_credit_bytes: 1024,
        ..Config::DEFAULT
    }
}

/// Buffers for one connection, sized by the `const fn`s.
struct Bufs {
    rx: Vec<u8>,
    tx: Vec<u8>,
    reassembly: Vec<u8>,
    slots: Vec<Option<Slot>>,
    replies: Vec<u8>,
    retained: Vec<u8>,
}

impl Bufs {
    fn new(c: &Config) -> Self {
        Bufs {
            rx: vec![0; Storage::rx_len(c)],
            tx: vec![0; Storage::tx_len(c)],
            reassembly: vec![0; Storage::reassembly_len(c)],
            slots: (0..Storage::slots_len(c)).map(|_| None).collect(),
            replies: vec![0; Storage::session_replies_len(c)],
            retained: vec![0; Storage::session_retained_len(c)],
        }
    }
    fn storage(&mut self) -> Storage<'_> {
        Storage {
            rx: &mut self.rx,
            tx: &mut self.tx,
            reassembly: &mut self.reassembly,
            slots: &mut self.slots,
        }
    }
    fn split(&mut self) -> (Storage<'_>, SessionStorage<'_>) {
        (
            Storage {
                rx: &mut self.rx,
                tx: &mut self.tx,
                reassembly: &mut self.reassembly,
                slots: &mut self.slots,
            },
            SessionStorage { replies: &mut self.replies, retained: &mut self.retained },
        )
    }
}

fn session_conn<'a>(role: Role, c: &Config, token: &[u8], b: &'a mut Bufs) -> Connection<'a> {
    let (s, d) = b.split();
    let me = Identity { name: b"node", session: token, ..Identity::default() };
    Connection::with_session_storage(role, c.clone(), me, s, d, Instant::ZERO)
        .expect("sized by the const fns")
}

/// An event with its payload copied out.
#[derive(Debug)]
#[allow(dead_code)] // Some fields are only read through `Debug`, in failure messages.
enum Ev {
    Connected,
    Request(u64, RequestKind, Vec<u8>),
    Response(u64, Status, Vec<u8>),
    Failed(u64, Status),
    Cancelled(u64, Status),
    Data(u64, Vec<u8>),
    Fin(u64, Status),
    Reset(u64, Status),
    Writable,
    ResumeRequested(Vec<u8>),
    Closed(ConnectionError),
    Other,
}

fn events(c: &mut Connection<'_>, now: Instant) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(e) = c.poll_event(now) {
        out.push(match e {
            Event::Connected => Ev::Connected,
            Event::Request { id, kind, payload, .. } => Ev::Request(id, kind, payload.to_vec()),
            Event::Response { id, status, payload } => Ev::Response(id, status, payload.to_vec()),
            Event::Failed { id, status } => Ev::Failed(id, status),
            Event::Cancelled { id, status } => Ev::Cancelled(id, status),
            Event::StreamData { id, payload } => Ev::Data(id, payload.to_vec()),
            Event::StreamFin { id, status } => Ev::Fin(id, status),
            Event::StreamReset { id, status } => Ev::Reset(id, status),
            Event::StreamWritable { .. } => Ev::Writable,
            Event::ResumeRequested { token } => Ev::ResumeRequested(token.to_vec()),
            Event::Closed(e) => Ev::Closed(e),
            _ => Ev::Other,
        });
    }
    out
}

fn answer(payload: &[u8]) -> Vec<u8> {
    payload.iter().rev().map(|b| b ^ 0x5a).collect()
}

/// Item `k` of stream `id` in direction `dir`.
fn item(id: u64, dir: u8, k: u32) -> Vec<u8> {
    let len = 1 + (k as usize * 13 + id as usize) % 60;
    (0..len).map(|i| (k as u8).wrapping_mul(31) ^ (id as u8) ^ dir ^ (i as u8)).collect()
}

/// One stream, as both sides see it.
#[derive(Default)]
struct Strm {
    up_total: u32,
    down_total: u32,
    up_sent: u32,
    up_fin: bool,
    up_recv: u32,
    down_sent: u32,
    down_recv: u32,
    b_got_fin: bool,
    b_finished: bool,
    a_got_fin: bool,
}

#[derive(Default, Debug, Clone, Copy)]
struct Figures {
    scenarios: u64,
    calls: u64,
    notifications: u64,
    streams: u64,
    items: u64,
    cuts: u64,
    resumptions: u64,
    retransmissions: u64,
    /// Streams finished at the acceptor whose FIN was lost with a transport: REPLY_EVICTED at
    /// the dialer (SPEC.md §13.7, "the stream ended at the responder and its outcome is lost").
    outcomes_lost: u64,
    /// `call`, `notify`, `open_stream` and `stream_send` refused with RetainFull (retried).
    retain_full: u64,
    violations: u64,
}

struct Sim<'a> {
    rng: Rng,
    now: Instant,
    cfg: Config,
    a: Connection<'a>,
    b: Connection<'a>,
    /// Bytes written to the transport and not yet read by the other side.
    ab: Vec<u8>,
    ba: Vec<u8>,
    /// Outstanding exchanges of the dialer: id → (is a call, payload).
    open: HashMap<u64, (bool, Vec<u8>)>,
    completed: HashMap<u64, u32>,
    handled: HashMap<u64, u32>,
    /// Requests the acceptor's handler has and not answered yet.
    todo: Vec<(u64, bool, Vec<u8>)>,
    streams: HashMap<u64, Strm>,
    figures: Figures,
    faults: Vec<String>,
}

impl Sim<'_> {
    fn fault(&mut self, what: String) {
        self.figures.violations += 1;
        if self.faults.len() < 10 {
            self.faults.push(what);
        }
    }

    fn a_events(&mut self) {
        for e in events(&mut self.a, self.now) {
            match e {
                Ev::Connected | Ev::Writable | Ev::Other => {}
                Ev::Response(id, status, payload) => {
                    *self.completed.entry(id).or_default() += 1;
                    match self.open.remove(&id) {
                        Some((call, sent)) => {
                            let want = if call { answer(&sent) } else { Vec::new() };
                            if status != Status::OK || payload != want {
                                self.fault(format!("response {id}: {status:?} {payload:?}"));
                            }
                        }
                        None => self.fault(format!("second or unknown response {id}")),
                    }
                }
                Ev::Data(id, payload) => {
                    let k = self.streams.get(&id).map_or(u32::MAX, |s| s.down_recv);
                    if payload != item(id, 2, k) {
                        self.fault(format!("stream {id} down item {k} wrong or out of order"));
                    }
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.down_recv += 1;
                    }
                    self.figures.items += 1;
                    let _ = self.a.stream_consumed(id, 1, payload.len() as u32);
                }
                Ev::Fin(id, status) => {
                    let ok =
                        self.streams.get(&id).is_some_and(|s| s.down_recv == s.down_total && !s.a_got_fin);
                    if !ok || status != Status::OK {
                        self.fault(format!("stream {id} fin {status:?} early or twice"));
                    }
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.a_got_fin = true;
                    }
                }
                Ev::Reset(id, Status::REPLY_EVICTED) => {
                    // SPEC.md §13.7: the acceptor had finished the stream (both terminals) and
                    // freed it; its FIN was lost with the transport, so the outcome is lost.
                    // Only legitimate when the acceptor really had it all.
                    let ok = self.streams.get(&id).is_some_and(|s| {
                        s.b_finished && s.b_got_fin && s.up_recv == s.up_total && !s.a_got_fin
                    });
                    if !ok {
                        self.fault(format!("stream {id} REPLY_EVICTED although still open at the acceptor"));
                    }
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.a_got_fin = true;
                    }
                    self.figures.outcomes_lost += 1;
                }
                e => self.fault(format!("dialer: unexpected {e:?}")),
            }
        }
    }

    fn b_events(&mut self) {
        for e in events(&mut self.b, self.now) {
            match e {
                Ev::Connected | Ev::Writable | Ev::Other => {}
                Ev::Request(id, kind, payload) => {
                    let n = self.handled.entry(id).or_default();
                    *n += 1;
                    if *n > 1 {
                        self.fault(format!("request {id} handled twice"));
                    }
                    match kind {
                        RequestKind::Stream { .. } => {
                            let ok = self
                                .streams
                                .get(&id)
                                .is_some_and(|s| payload == [s.up_total as u8, s.down_total as u8]);
                            if !ok {
                                self.fault(format!("stream {id} opened with {payload:?}"));
                            }
                        }
                        k => self.todo.push((id, k == RequestKind::Call, payload)),
                    }
                }
                Ev::Data(id, payload) => {
                    let k = self.streams.get(&id).map_or(u32::MAX, |s| s.up_recv);
                    if payload != item(id, 1, k) {
                        self.fault(format!("stream {id} up item {k} wrong or out of order"));
                    }
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.up_recv += 1;
                    }
                    self.figures.items += 1;
                    let _ = self.b.stream_consumed(id, 1, payload.len() as u32);
                }
                Ev::Fin(id, _) => {
                    let ok = self.streams.get(&id).is_some_and(|s| s.up_recv == s.up_total && !s.b_got_fin);
                    if !ok {
                        self.fault(format!("stream {id}: FIN before its items, or twice"));
                    }
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.b_got_fin = true;
                    }
                }
                e => self.fault(format!("acceptor: unexpected {e:?}")),
            }
        }
    }

    /// Application work on both sides: new exchanges (while `opening`), answers, stream items.
    fn work(&mut self, opening: bool) {
        let now = self.now;
        if opening && self.open.len() < 6 && self.rng.chance(1, 4) {
            let call = self.rng.chance(3, 4);
            let len = self.rng.below(120) as usize;
            let payload: Vec<u8> = (0..len).map(|_| self.rng.next() as u8).collect();
            let r = if call {
                self.a.call(now, CALL, &payload, None)
            } else {
                self.a.notify(now, NOTE, &payload, None)
            };
            match r {
                Ok(id) => {
                    self.open.insert(id, (call, payload));
                    if call {
                        self.figures.calls += 1;
                    } else {
                        self.figures.notifications += 1;
                    }
                }
                Err(ApiError::RetainFull { .. }) => self.figures.retain_full += 1,
                Err(ApiError::TooManyCalls { .. } | ApiError::TxFull) => {}
                Err(e) => self.fault(format!("call refused: {e:?}")),
            }
        }
        let live = self.streams.values().filter(|s| !(s.a_got_fin && s.b_finished)).count();
        if opening && live < 2 && self.rng.chance(1, 40) {
            let (up, down) = (self.rng.below(12) as u32, self.rng.below(12) as u32);
            match self.a.open_stream(now, STREAM, &[up as u8, down as u8], None, false) {
                Ok(id) => {
                    self.streams.insert(id, Strm { up_total: up, down_total: down, ..Strm::default() });
                    self.figures.streams += 1;
                }
                Err(ApiError::RetainFull { .. }) => self.figures.retain_full += 1,
                Err(ApiError::TooManyStreams { .. } | ApiError::TxFull) => {}
                Err(e) => self.fault(format!("open_stream refused: {e:?}")),
            }
        }
        // The handler answers some of what it has.
        let mut k = 0;
        while k < self.todo.len() {
            if self.rng.chance(1, 3) {
                let (id, call, payload) = self.todo.swap_remove(k);
                let body = if call { answer(&payload) } else { Vec::new() };
                if let Err(e) = self.b.respond(id, Status::OK, &body) {
                    self.fault(format!("respond {id}: {e:?}"));
                }
            } else {
                k += 1;
            }
        }
        // Stream items both ways, as credit and the retained buffer allow.
        let ids: Vec<u64> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(s) = self.streams.get(&id) else { continue };
            let (up_sent, up_total, up_fin) = (s.up_sent, s.up_total, s.up_fin);
            if up_sent < up_total && self.rng.chance(1, 2) {
                match self.a.stream_send(id, &item(id, 1, up_sent)) {
                    Ok(()) => self.streams.get_mut(&id).unwrap().up_sent += 1,
                    Err(ApiError::RetainFull { .. }) => self.figures.retain_full += 1,
                    Err(ApiError::NoCredit | ApiError::TxFull) => {}
                    Err(e) => self.fault(format!("stream_send up {id}: {e:?}")),
                }
            } else if up_sent == up_total && !up_fin {
                match self.a.stream_finish(id, Status::OK) {
                    Ok(()) => self.streams.get_mut(&id).unwrap().up_fin = true,
                    Err(ApiError::TxFull) => {}
                    Err(e) => self.fault(format!("stream_finish up {id}: {e:?}")),
                }
            }
            let s = &self.streams[&id];
            let (opened, down_sent, down_total) = (self.handled.contains_key(&id), s.down_sent, s.down_total);
            if !opened || s.b_finished {
                continue;
            }
            if down_sent < down_total && self.rng.chance(1, 2) {
                match self.b.stream_send(id, &item(id, 2, down_sent)) {
                    Ok(()) => self.streams.get_mut(&id).unwrap().down_sent += 1,
                    Err(ApiError::RetainFull { .. }) => self.figures.retain_full += 1,
                    Err(ApiError::NoCredit | ApiError::TxFull) => {}
                    Err(e) => self.fault(format!("stream_send down {id}: {e:?}")),
                }
            } else if down_sent == down_total && s.b_got_fin {
                match self.b.stream_finish(id, Status::OK) {
                    Ok(()) => self.streams.get_mut(&id).unwrap().b_finished = true,
                    Err(ApiError::TxFull) => {}
                    Err(e) => self.fault(format!("stream_finish down {id}: {e:?}")),
                }
            }
        }
    }

    /// Moves bytes over the live transport: all, or a random prefix (the rest stays in flight).
    fn transfer(&mut self) {
        let now = self.now;
        let mut buf = [0u8; 2048];
        loop {
            let n = self.a.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            self.ab.extend_from_slice(&buf[..n]);
        }
        loop {
            let n = self.b.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            self.ba.extend_from_slice(&buf[..n]);
        }
        let take = if self.rng.chance(1, 2) {
            self.ab.len()
        } else {
            self.rng.below(self.ab.len() as u64 + 1) as usize
        };
        let bytes: Vec<u8> = self.ab.drain(..take).collect();
        let mut off = 0;
        while off < bytes.len() {
            let n = self.b.handle_input(now, &bytes[off..]);
            self.b_events();
            if n == 0 && self.b.state() == State::Closed {
                break;
            }
            off += n;
        }
        let take = if self.rng.chance(1, 2) {
            self.ba.len()
        } else {
            self.rng.below(self.ba.len() as u64 + 1) as usize
        };
        let bytes: Vec<u8> = self.ba.drain(..take).collect();
        let mut off = 0;
        while off < bytes.len() {
            let n = self.a.handle_input(now, &bytes[off..]);
            self.a_events();
            if n == 0 && self.a.state() == State::Closed {
                break;
            }
            off += n;
        }
    }

    fn tick(&mut self, ms: u64) {
        self.now = self.now + core::time::Duration::from_millis(ms);
        for c in [&mut self.a, &mut self.b] {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        self.a_events();
        self.b_events();
    }

    /// The transport dies: what was in flight is lost; either side may or may not notice.
    fn cut(&mut self) {
        self.figures.cuts += 1;
        let mut sink = [0u8; 4096];
        while self.a.poll_transmit(self.now, &mut sink) > 0 {}
        while self.b.poll_transmit(self.now, &mut sink) > 0 {}
        self.ab.clear();
        self.ba.clear();
        if self.rng.chance(1, 2) {
            self.a.handle_eof(self.now);
        }
        if self.rng.chance(1, 2) {
            self.b.handle_eof(self.now);
        }
        self.a_events();
        self.b_events();
    }

    /// The dialer reconnects; a fresh acceptor connection (no session buffers of its own)
    /// reports the resumption request; the session takes its transport over.
    fn reconnect(&mut self, fresh: &mut Bufs) {
        let now = self.now;
        if let Err(e) = self.a.reconnect(now) {
            self.fault(format!("reconnect: {e:?}"));
            return;
        }
        let me = Identity { name: b"fresh", session: b"fresh-unused-token", ..Identity::default() };
        let mut f = Connection::with_storage(Role::Acceptor, self.cfg.clone(), me, fresh.storage(), now)
            .expect("fresh connection");
        let mut buf = [0u8; 2048];
        let n = self.a.poll_transmit(now, &mut buf);
        if f.handle_input(now, &buf[..n]) != n {
            self.fault("fresh connection refused the resuming HELLO".into());
        }
        match events(&mut f, now).as_slice() {
            [Ev::ResumeRequested(t)] if t == TOKEN => {}
            e => self.fault(format!("fresh connection: {e:?}")),
        }
        match self.b.resume_from(now, &mut f) {
            Ok(()) => self.figures.resumptions += 1,
            Err(e) => self.fault(format!("resume_from: {e:?}")),
        }
        if !f.is_finished() {
            self.fault("the fresh connection is not finished after resume_from".into());
        }
    }

    fn done(&self) -> bool {
        self.open.is_empty()
            && self.todo.is_empty()
            && self.streams.values().all(|s| s.a_got_fin && s.b_finished)
            && self.ab.is_empty()
            && self.ba.is_empty()
    }
}

fn scenario(
    seed: u64,
    steps: u32,
    cfg: &Config,
    fresh: &mut Bufs,
    ba: &mut Bufs,
    bb: &mut Bufs,
) -> (Figures, Vec<String>) {
    let cfg = cfg.clone();
    let a = session_conn(Role::Dialer, &cfg, b"", ba);
    let b = session_conn(Role::Acceptor, &cfg, TOKEN, bb);
    let mut sim = Sim {
        rng: Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5DEE_CE66_D1CE_4E5B),
        now: Instant::ZERO,
        cfg,
        a,
        b,
        ab: Vec::new(),
        ba: Vec::new(),
        open: HashMap::new(),
        completed: HashMap::new(),
        handled: HashMap::new(),
        todo: Vec::new(),
        streams: HashMap::new(),
        figures: Figures { scenarios: 1, ..Figures::default() },
        faults: Vec::new(),
    };
    for _ in 0..100 {
        sim.transfer();
    }
    if !(sim.a.is_resumable() && sim.b.is_resumable() && sim.a.session_token() == TOKEN) {
        sim.fault(format!("not resumable: {:?} {:?}", sim.a.state(), sim.b.state()));
        return (sim.figures, sim.faults);
    }
    let mut down = 0u64;
    let mut step = 0u32;
    loop {
        step += 1;
        let opening = step < steps;
        if step > steps + 20_000 {
            sim.fault(format!("not done: {} open, {} unanswered", sim.open.len(), sim.todo.len()));
            break;
        }
        sim.work(opening);
        if down > 0 {
            down -= 1;
            if down == 0 {
                sim.reconnect(fresh);
            }
        } else {
            sim.transfer();
            if opening && sim.rng.chance(1, 60) {
                sim.cut();
                down = 1 + sim.rng.below(30);
            }
        }
        let ms = 1 + sim.rng.below(3);
        sim.tick(ms);
        if !opening && down == 0 && sim.done() {
            break;
        }
    }
    for (id, n) in &sim.completed {
        if *n != 1 {
            sim.faults.push(format!("exchange {id} completed {n} times"));
        }
    }
    let mut ids: Vec<(u64, u32)> = sim.handled.iter().map(|(k, v)| (*k, *v)).collect();
    ids.sort();
    for (id, n) in ids {
        if n != 1 {
            sim.fault(format!("request {id} handled {n} times"));
        }
    }
    sim.figures.retransmissions = sim.a.stats().retransmissions + sim.b.stats().retransmissions;
    (sim.figures, sim.faults)
}

/// Many seeded scenarios: every call executes exactly once and completes with its answer, every
/// stream item arrives exactly once and in order, across repeated cuts.
#[test]
fn exactly_once_across_repeated_cuts_with_caller_storage() {
    let total = run(&config(), 0);
    assert!(total.retransmissions > 0 && total.outcomes_lost < total.streams / 10, "{total:?}");
}

/// The same with a retained buffer too small for everything the dialer wants in flight: calls
/// and (without `alloc`) stream items are refused with RetainFull and retried, and nothing is
/// lost or duplicated.
#[test]
fn exactly_once_with_a_tight_retained_buffer() {
    let cfg = Config { max_retained_bytes: 600, ..config() };
    run(&cfg, 1 << 32);
}

fn run(cfg: &Config, seeds: u64) -> Figures {
    let (mut fresh, mut ba, mut bb) = (Bufs::new(cfg), Bufs::new(cfg), Bufs::new(cfg));
    let (count, steps) = if cfg!(debug_assertions) { (60, 1500) } else { (400, 3000) };
    let mut total = Figures::default();
    for seed in seeds..seeds + count {
        let (f, faults) = scenario(seed, steps, cfg, &mut fresh, &mut ba, &mut bb);
        assert!(faults.is_empty(), "seed {seed}: {faults:#?}");
        for (t, x) in [
            (&mut total.scenarios, f.scenarios),
            (&mut total.calls, f.calls),
            (&mut total.notifications, f.notifications),
            (&mut total.streams, f.streams),
            (&mut total.items, f.items),
            (&mut total.cuts, f.cuts),
            (&mut total.resumptions, f.resumptions),
            (&mut total.retransmissions, f.retransmissions),
            (&mut total.outcomes_lost, f.outcomes_lost),
            (&mut total.retain_full, f.retain_full),
            (&mut total.violations, f.violations),
        ] {
            *t += x;
        }
    }
    println!("sim_resume (max_retained_bytes {}): {total:?}", cfg.max_retained_bytes);
    assert_eq!(total.violations, 0);
    assert!(total.cuts > 10 * count && total.resumptions == total.cuts, "{total:?}");
    assert!(total.calls > 100 * count && total.items > 20 * count, "{total:?}");
    total
}
