//! The simulated world: one server endpoint, 2–3 client endpoints, one byte-stream connection per
//! client, a fake clock, seeded links and faults, and an application on each end of each
//! connection. The driver always advances to whichever source is due first: a scheduled
//! application or fault action, a link delivery, or a connection timer.

use super::ledger::{Epoch, Ex, XKind};
use super::link::{Link, LinkParams};
use super::rng::{digest, Rng, TraceHash};
use std::collections::{BTreeMap, VecDeque};
use tandem_core::{
    ApiError, Config, Connection, ConnectionError, Identity, Instant, MethodId, RequestKind, Role, State,
    Status,
};

const CALL_ECHO: MethodId = MethodId::new(1, 1);
const CALL_FAIL: MethodId = MethodId::new(1, 2);
/// The responder answers only once told the call was cancelled (always sent with a deadline).
const CALL_NEVER: MethodId = MethodId::new(1, 3);
const NOTE: MethodId = MethodId::new(2, 1);
const SIG: MethodId = MethodId::new(3, 1);
/// Server-streaming: the opener half-closes, the responder sends items then FIN.
const S_SERVER: MethodId = MethodId::new(4, 1);
/// Client-streaming: the opener sends items then FIN; the responder then finishes with a status.
const S_CLIENT: MethodId = MethodId::new(4, 2);
const S_BIDI: MethodId = MethodId::new(4, 3);
/// The responder holds the stream until it is reset or its deadline passes.
const S_HOLD: MethodId = MethodId::new(4, 4);

/// Hard cap on driver iterations per scenario (livelock guard).
const MAX_STEPS: u64 = 2_000_000;
/// Iterations at one instant before the driver declares livelock.
const MAX_SAME_INSTANT: u64 = 20_000;
/// Simulated time allowed after the end of the active phase to reach quiescence.
const SETTLE_LIMIT_US: u64 = 60_000_000;

fn us(t: Instant) -> u64 {
    t.as_micros()
}

fn at(t: u64) -> Instant {
    Instant::from_micros(t)
}

/// An owned [`Event`].
use tandem_core::OwnedEvent as Ev;

/// The words an event folds into the trace hash.
trait Trace {
    fn trace(&self) -> [u64; 4];
}

impl Trace for Ev {
    fn trace(&self) -> [u64; 4] {
        let st = |s: &Status| u64::from(s.0);
        match self {
            Ev::Connected => [1, 0, 0, 0],
            Ev::Request { id, kind, method, deadline, payload } => {
                let k = match kind {
                    RequestKind::Call => 0,
                    RequestKind::Notify => 1,
                    RequestKind::Stream { half_closed } => 2 + u64::from(*half_closed),
                };
                let m = (u64::from(method.module) << 32) | u64::from(method.method);
                [2 | k << 8, *id, m ^ deadline.map_or(0, us), digest(payload)]
            }
            Ev::Signal { payload, .. } => [3, 0, 0, digest(payload)],
            Ev::Response { id, status, payload } => [4, *id, st(status), digest(payload)],
            Ev::Failed { id, status } => [5, *id, st(status), 0],
            Ev::Cancelled { id, status } => [6, *id, st(status), 0],
            Ev::StreamData { id, payload } => [7, *id, 0, digest(payload)],
            Ev::StreamFin { id, status } => [8, *id, st(status), 0],
            Ev::StreamReset { id, status } => [9, *id, st(status), 0],
            Ev::StreamWritable { id } => [10, *id, 0, 0],
            Ev::GoAway { bound, status } => [11, *bound, st(status), 0],
            Ev::ResumeRequested { token } => [13, 0, 0, digest(token)],
            Ev::AuthRequested { name, auth } => [14, 0, digest(name), digest(auth)],
            Ev::Closed(e) => [12, u64::from(e.status().0), 0, digest(format!("{e:?}").as_bytes())],
        }
    }
}

/// A request the application was handed and has not answered yet.
struct InReq {
    method: MethodId,
    payload: Vec<u8>,
    cancelled: Option<Status>,
}

/// The application's view of one stream at one end.
struct SApp {
    opener: bool,
    to_send: VecDeque<Vec<u8>>,
    blocked: bool,
    /// This side ended its direction (FIN, reset, FIN on open, or released by a reset).
    end_sent: bool,
    peer_fin: bool,
    peer_reset: bool,
    /// Finish only after the peer finished (client-streaming responders).
    wait_peer_fin: bool,
    /// Never finish on its own (S_HOLD responders).
    hold: bool,
    finish_status: Status,
    /// A release (after a peer reset or deadline) is scheduled.
    release_scheduled: bool,
}

/// One end of one connection, with its application.
struct End {
    conn: Connection<'static>,
    connected: bool,
    closed: bool,
    /// This side closed its transport (it reads nothing more).
    transport_closed: bool,
    pending: BTreeMap<u64, InReq>,
    streams: BTreeMap<u64, SApp>,
    deferred: VecDeque<(u64, u32)>,
    open_bound: usize,
    footprint_bound: usize,
    /// `conn.poll_timeout()` as of the last pump (every input and action is followed by one).
    timeout: Option<Instant>,
}

/// A live connection between client `pair` and the server.
struct Live {
    epoch: usize,
    ends: [End; 2],
    /// links[i] carries bytes written by end i.
    links: [Link; 2],
    /// Transport generation: bumped when a resumed session gets a new transport, so that faults
    /// scheduled for the old one do not hit the new one.
    gen: u32,
    /// Acceptor side of a resumption attempt: the fresh connection that receives the dialer's
    /// resuming HELLO until the session takes its transport over.
    fresh: Option<Connection<'static>>,
    /// A resumption attempt is scheduled.
    resume_pending: bool,
}

#[derive(Clone, Copy, Debug)]
enum Act {
    Tick,
    Respond {
        ep: usize,
        side: usize,
        id: u64,
    },
    Consume {
        ep: usize,
        side: usize,
    },
    Release {
        ep: usize,
        side: usize,
        id: u64,
    },
    Abort {
        ep: usize,
        side: usize,
        id: u64,
    },
    Kill,
    GoAway {
        side: usize,
    },
    Eof {
        ep: usize,
        side: usize,
        gen: u32,
    },
    Reconnect,
    /// The dialer of a suspended session reconnects (SPEC.md §13.3).
    Resume {
        ep: usize,
    },
}

struct PairSlot {
    /// The server offers session resumption on this pair's connections.
    resumable: bool,
    cfg: [Config; 2],
    links: [LinkParams; 2],
    /// Boxed: the driver takes it out and puts it back on every step.
    live: Option<Box<Live>>,
    conns: u32,
}

/// Outcome of one scenario.
pub struct Outcome {
    pub counts: BTreeMap<&'static str, u64>,
    pub hash: u64,
    pub violations: Vec<String>,
    pub steps: u64,
    pub epochs: usize,
    pub exchanges: usize,
}

pub struct Sim {
    seed: u64,
    rng: Rng,
    now: Instant,
    hash: TraceHash,
    pairs: Vec<PairSlot>,
    epochs: Vec<Epoch>,
    sched: BTreeMap<(u64, u64), (usize, Act)>,
    seq: u64,
    violations: Vec<String>,
    t_end: Instant,
    settle: bool,
    /// A partition may outlast the idle timeout: IDLE_TIMEOUT closes are legitimate.
    long_partition: bool,
    buf: Vec<u8>,
    steps: u64,
    /// Print every event and action (`SIM_TRACE=1` with `replay`).
    verbose: bool,
    /// Coverage counters: what happened, summed over scenarios by the test.
    pub counts: BTreeMap<&'static str, u64>,
}

fn rand_config(rng: &mut Rng, keepalive_ms: u64) -> Config {
    let stream_credit_bytes = [1024, 3000, 4096, 8192, 12_000][rng.below(5) as usize];
    let conn_credit_bytes = stream_credit_bytes * rng.range(1, 3) as u32;
    Config {
        max_frame_size: if rng.chance(3, 4) { 4096 } else { 16 * 1024 },
        max_message_size: 32 * 1024,
        max_concurrent_calls: rng.range(2, 8) as u32,
        max_concurrent_streams: rng.range(1, 5) as u32,
        stream_credit_msgs: rng.range(1, 4) as u32,
        stream_credit_bytes,
        conn_credit_bytes,
        keepalive_interval: core::time::Duration::from_millis(keepalive_ms),
        idle_timeout: core::time::Duration::from_millis(keepalive_ms * 4 + 1500),
        drain_timeout: core::time::Duration::from_secs(15),
        max_outbound_calls: if rng.chance(1, 4) { rng.range(1, 4) as u32 } else { 256 },
        max_outbound_streams: if rng.chance(1, 4) { rng.range(1, 3) as u32 } else { 100 },
        max_tx_buffer: [8192, 16 * 1024, 64 * 1024][rng.below(3) as usize],
        session_grace: core::time::Duration::from_millis(rng.range(1_000, 5_000)),
        ..Config::default()
    }
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let start = Instant::from_millis(1_000);
        let active_ms = rng.range(100, 300);
        let t_end = at(us(start) + active_ms * 1000);
        let long_partition = rng.chance(1, 25);
        let ka = rng.range(100, 500);
        let server_cfg = rand_config(&mut rng, ka);
        let clients = rng.range(2, 3) as usize;
        let mut sim = Sim {
            seed,
            rng,
            now: start,
            hash: TraceHash::default(),
            pairs: Vec::new(),
            epochs: Vec::new(),
            sched: BTreeMap::new(),
            seq: 0,
            violations: Vec::new(),
            t_end,
            settle: false,
            long_partition,
            buf: vec![0; 64 * 1024],
            steps: 0,
            verbose: std::env::var_os("SIM_TRACE").is_some(),
            counts: BTreeMap::new(),
        };
        if sim.verbose {
            println!(
                "seed {seed}: {clients} clients, active until {}, long partitions {long_partition}",
                us(t_end)
            );
        }
        for p in 0..clients {
            let ka = sim.rng.range(100, 500);
            let ccfg = rand_config(&mut sim.rng, ka);
            let idle = ccfg.idle_timeout.min(server_cfg.idle_timeout).as_micros() as u64;
            let mut links = Vec::new();
            for _ in 0..2 {
                let mut partitions = Vec::new();
                for _ in 0..sim.rng.below(3) {
                    let s = us(start) + sim.rng.below(active_ms * 1000);
                    let len = if sim.long_partition && sim.rng.chance(1, 2) {
                        idle + sim.rng.range(100_000, 500_000)
                    } else {
                        sim.rng.range(5_000, 300_000)
                    };
                    partitions.push((at(s), at(s + len)));
                }
                links.push(LinkParams {
                    latency_us: sim.rng.range(0, 20_000),
                    jitter_us: sim.rng.range(0, 5_000),
                    bandwidth: if sim.rng.chance(1, 2) { 0 } else { sim.rng.range(200_000, 5_000_000) },
                    max_chunk: [8, 100, 100, 1500, 1500, 65_536, 65_536][sim.rng.below(7) as usize],
                    partitions,
                });
            }
            let links = [links[0].clone(), links[1].clone()];
            if sim.verbose {
                println!("pair {p}: links {links:?}\n  client {ccfg:?}\n  server {server_cfg:?}");
            }
            let resumable = sim.rng.chance(1, 2);
            sim.pairs.push(PairSlot {
                resumable,
                cfg: [ccfg, server_cfg.clone()],
                links,
                live: None,
                conns: 0,
            });
            // Faults: kills and go-aways at random points of the active phase.
            for _ in 0..sim.rng.below(3) {
                let t = us(start) + 20_000 + sim.rng.below(active_ms * 1000 - 20_000);
                sim.schedule_at(at(t), p, Act::Kill);
            }
            if sim.rng.chance(1, 5) {
                let t = us(start) + 5_000 + sim.rng.below(active_ms * 900);
                let side = sim.rng.below(2) as usize;
                sim.schedule_at(at(t), p, Act::GoAway { side });
            }
            let t = at(us(start) + sim.rng.below(3_000));
            sim.schedule_at(t, p, Act::Reconnect);
            let t = at(us(start) + sim.rng.range(1_000, 10_000));
            sim.schedule_at(t, p, Act::Tick);
        }
        sim
    }

    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn violation(&mut self, msg: String) {
        if self.violations.len() < 50 {
            self.violations.push(format!("t={}us: {msg}", us(self.now)));
        }
    }

    fn schedule_at(&mut self, t: Instant, pair: usize, act: Act) {
        self.seq += 1;
        self.sched.insert((us(t), self.seq), (pair, act));
    }

    fn schedule_in(&mut self, delay_us: u64, pair: usize, act: Act) {
        let t = at(us(self.now) + delay_us);
        self.schedule_at(t, pair, act);
    }

    // ------------------------------------------------------------------ the driver

    pub fn run(mut self) -> Outcome {
        let mut same_instant = 0u64;
        let mut last = self.now;
        loop {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.violation("livelock: step limit reached".into());
                break;
            }
            if !self.settle && self.now >= self.t_end {
                self.enter_settle();
            }
            if self.settle && self.quiescent() {
                break;
            }
            let Some(next) = self.next_due() else {
                if self.settle {
                    self.violation("nothing left to run but not quiescent".into());
                } else {
                    self.now = self.t_end;
                    continue;
                }
                break;
            };
            let next = if !self.settle && next > self.t_end { self.t_end } else { next };
            if us(next) > us(self.t_end) + SETTLE_LIMIT_US {
                let what = self.describe_busy();
                self.violation(format!("not quiescent 60 s after faults stopped: {what}"));
                break;
            }
            self.now = self.now.max(next);
            if self.now == last {
                same_instant += 1;
                if same_instant > MAX_SAME_INSTANT {
                    let what = self.describe_busy();
                    self.violation(format!("livelock: no progress of time ({what})"));
                    break;
                }
            } else {
                same_instant = 0;
                last = self.now;
            }
            self.run_due();
        }
        if std::env::var_os("SIM_DEBUG").is_some() {
            for p in &self.pairs {
                if let Some(l) = &p.live {
                    for (k, e) in l.ends.iter().enumerate() {
                        for id in 0..64u64 {
                            if let Some(sl) = e.conn.debug_slot(id) {
                                println!("side {k} slot {sl:?}");
                            }
                        }
                    }
                }
            }
        }
        self.finish()
    }

    fn next_due(&self) -> Option<Instant> {
        let mut t: Option<Instant> = self.sched.keys().next().map(|k| at(k.0));
        let mut min = |x: Instant| t = Some(t.map_or(x, |y| y.min(x)));
        for p in &self.pairs {
            let Some(l) = &p.live else { continue };
            for i in 0..2 {
                if let Some(d) = l.links[i].next_due() {
                    min(d);
                }
                if let Some(d) = l.ends[i].timeout {
                    min(d);
                }
            }
        }
        t
    }

    /// Runs one due source (the first in a fixed order), so that everything happening at one
    /// instant is ordered deterministically.
    fn run_due(&mut self) {
        let now = us(self.now);
        if let Some((&k, _)) = self.sched.iter().next() {
            if k.0 <= now {
                let (pair, act) = self.sched.remove(&k).unwrap_or((0, Act::Tick));
                self.hash.words(&[now, 100, pair as u64]);
                if self.verbose && !matches!(act, Act::Tick) {
                    println!("{now:>10} pair {pair}: {act:?}");
                }
                self.act(pair, act);
                return;
            }
        }
        for p in 0..self.pairs.len() {
            let Some(mut live) = self.pairs[p].live.take() else { continue };
            let mut did = false;
            for dir in 0..2 {
                if live.links[dir].next_due().is_some_and(|t| t <= self.now) {
                    self.deliver(p, &mut live, dir);
                    did = true;
                    break;
                }
            }
            if !did {
                for side in 0..2 {
                    let e = &mut live.ends[side];
                    if e.timeout.is_some_and(|t| t <= self.now) {
                        e.conn.handle_timeout(self.now);
                        self.hash.words(&[now, 200, p as u64, side as u64]);
                        self.pump(p, &mut live, side);
                        did = true;
                        break;
                    }
                }
            }
            self.put_back(p, live);
            if did {
                return;
            }
        }
    }

    fn put_back(&mut self, p: usize, live: Box<Live>) {
        let both_closed = live.ends[0].closed && live.ends[1].closed;
        if both_closed {
            let ep = &mut self.epochs[live.epoch];
            ep.ended = true;
            if self.now < self.t_end {
                let d = self.rng.range(1_000, 30_000);
                self.schedule_in(d, p, Act::Reconnect);
            }
        } else {
            self.pairs[p].live = Some(live);
        }
    }

    fn enter_settle(&mut self) {
        self.settle = true;
        // Faults and new work stop; outstanding work is answered and drained.
        let keys: Vec<(u64, u64)> = self
            .sched
            .iter()
            .filter(|(_, (_, a))| matches!(a, Act::Tick | Act::Kill | Act::GoAway { .. }))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            self.sched.remove(&k);
        }
        let now = self.now;
        for p in 0..self.pairs.len() {
            for l in self.pairs[p].links.iter_mut() {
                l.partitions.retain(|&(s, _)| s < now);
            }
            let Some(live) = self.pairs[p].live.as_mut() else { continue };
            for l in live.links.iter_mut() {
                l.p.partitions.retain(|&(s, _)| s < now);
            }
            let ep = live.epoch;
            for side in 0..2 {
                self.schedule_in(0, p, Act::Consume { ep, side });
            }
        }
    }

    fn quiescent(&self) -> bool {
        if !self.sched.is_empty() {
            return false;
        }
        for p in &self.pairs {
            let Some(l) = &p.live else { continue };
            if !l.links[0].is_empty() || !l.links[1].is_empty() {
                return false;
            }
            if l.fresh.is_some() || l.links.iter().any(|k| k.fin.is_some()) {
                return false; // a resumption or an end of transport is under way
            }
            for e in &l.ends {
                if e.closed {
                    return false; // the other end has not closed yet
                }
                if e.conn.state() == State::Suspended {
                    return false; // the session must come back
                }
                if !e.connected
                    || e.conn.open_exchanges() != 0
                    || !e.pending.is_empty()
                    || !e.streams.is_empty()
                    || !e.deferred.is_empty()
                    || e.conn.pending_transmit() != 0
                {
                    return false;
                }
            }
            let ep = &self.epochs[l.epoch];
            if ep.ex.values().any(|x| x.resolved == 0) {
                return false;
            }
        }
        true
    }

    fn describe_busy(&self) -> String {
        let mut s = String::new();
        for (i, p) in self.pairs.iter().enumerate() {
            let Some(l) = &p.live else { continue };
            for (k, e) in l.ends.iter().enumerate() {
                s += &format!(
                    "[pair {i} side {k}: state {:?}, open {}, pending {:?}, streams {:?}, deferred {}, tx {}, link {}] ",
                    e.conn.state(),
                    e.conn.open_exchanges(),
                    e.pending.keys().collect::<Vec<_>>(),
                    e.streams
                        .iter()
                        .map(|(id, s)| (
                            *id,
                            s.to_send.iter().map(|i| i.len()).collect::<Vec<_>>(),
                            s.blocked,
                            s.end_sent,
                            s.peer_fin,
                            s.peer_reset,
                            e.conn.stream_credit(*id)
                        ))
                        .collect::<Vec<_>>(),
                    e.deferred.len(),
                    e.conn.pending_transmit(),
                    l.links[k].q.len(),
                );
            }
            let unresolved: Vec<u64> =
                self.epochs[l.epoch].ex.iter().filter(|x| x.1.resolved == 0).map(|x| *x.0).collect();
            s += &format!("unresolved {unresolved:?}; ");
        }
        s += &format!("sched {}", self.sched.len());
        s
    }

    fn finish(mut self) -> Outcome {
        let mut v = Vec::new();
        // Final state of the connections still up: tables empty, connection usable.
        for (p, slot) in self.pairs.iter().enumerate() {
            let Some(l) = &slot.live else { continue };
            for (k, e) in l.ends.iter().enumerate() {
                if e.conn.open_exchanges() != 0 {
                    v.push(format!(
                        "pair {p} side {k}: {} exchanges still tracked at the end",
                        e.conn.open_exchanges()
                    ));
                }
                if !e.closed && e.conn.state() != State::Open && e.conn.state() != State::Draining {
                    v.push(format!("pair {p} side {k}: ended in state {:?}", e.conn.state()));
                }
            }
        }
        if self.violations.is_empty() {
            for ep in &self.epochs {
                ep.final_check(&mut v);
            }
        }
        for m in v {
            self.violation(format!("final: {m}"));
        }
        let exchanges = self.epochs.iter().map(|e| e.ex.len()).sum();
        for ep in &self.epochs {
            self.hash.words(&[ep.ex.len() as u64, u64::from(ep.killed), u64::from(ep.goaway)]);
        }
        let _ = self.seed;
        Outcome {
            counts: self.counts,
            hash: self.hash.0,
            violations: self.violations,
            steps: self.steps,
            epochs: self.epochs.len(),
            exchanges,
        }
    }

    // ------------------------------------------------------------------ transport

    fn deliver(&mut self, p: usize, live: &mut Live, dir: usize) {
        let to = 1 - dir;
        let now = self.now;
        let link = &mut live.links[dir];
        if link.q.front().is_some_and(|c| c.at <= now) {
            let mut chunk = link.q.pop_front().map(|c| c.data).unwrap_or_default();
            if live.ends[to].transport_closed {
                return; // the receiver no longer reads
            }
            let mut stalls = 0;
            while !chunk.is_empty() {
                if to == 1 && live.fresh.is_some() {
                    let n = self.feed_fresh(p, live, &chunk);
                    chunk.drain(..n);
                    if live.fresh.is_some() {
                        break;
                    }
                    continue;
                }
                let n = live.ends[to].conn.handle_input(now, &chunk);
                live.links[dir].delivered += n as u64;
                self.hash.words(&[us(now), 300, p as u64, dir as u64, n as u64]);
                chunk.drain(..n);
                self.pump(p, live, to);
                if n == 0 {
                    stalls += 1;
                    if stalls > 2 {
                        self.violation(format!(
                            "pair {p} side {to}: receive buffer takes no bytes even after draining events"
                        ));
                        return;
                    }
                }
            }
            return;
        }
        if link.q.is_empty() && link.fin.is_some_and(|t| t <= now) {
            link.fin = None;
            if to == 1 && live.fresh.is_some() {
                live.fresh = None;
            } else if !live.ends[to].transport_closed {
                live.ends[to].conn.handle_eof(now);
                self.hash.words(&[us(now), 301, p as u64, dir as u64]);
                self.pump(p, live, to);
            }
        }
    }

    /// Drains events, lets the application make progress, drains transmit; until nothing moves.
    fn pump(&mut self, p: usize, live: &mut Live, side: usize) {
        for _round in 0..10_000 {
            let mut moved = false;
            loop {
                let end = &mut live.ends[side];
                let Some(e) = end.conn.poll_event(self.now) else { break };
                let ev = Ev::from(e);
                if end.closed {
                    self.violation(format!("pair {p} side {side}: event {ev:?} after Closed"));
                }
                let mut words = vec![us(self.now), 400, p as u64, side as u64];
                words.extend_from_slice(&ev.trace());
                self.hash.words(&words);
                moved = true;
                if self.verbose {
                    let ev_s = format!("{ev:?}");
                    let ev_s = if ev_s.len() > 160 { format!("{}…", &ev_s[..160]) } else { ev_s };
                    println!(
                        "{:>10} pair {p} #{} side {side}: {ev_s}",
                        us(self.now),
                        self.epochs[live.epoch].number
                    );
                }
                let kind: &'static str = match &ev {
                    Ev::Connected => "ev connected",
                    Ev::Request { kind: RequestKind::Call, .. } => "ev request call",
                    Ev::Request { kind: RequestKind::Notify, .. } => "ev request notify",
                    Ev::Request { .. } => "ev request stream",
                    Ev::Signal { .. } => "ev signal",
                    Ev::Response { .. } => "ev response",
                    Ev::Failed { status: Status::DEADLINE_EXCEEDED, .. } => "ev failed deadline",
                    Ev::Failed { .. } => "ev failed unavailable",
                    Ev::Cancelled { .. } => "ev cancelled",
                    Ev::StreamData { payload, .. } if payload.len() > 4000 => "ev stream data fragmented",
                    Ev::StreamData { .. } => "ev stream data",
                    Ev::StreamFin { .. } => "ev stream fin",
                    Ev::StreamReset { status: Status::UNAVAILABLE, .. } => "ev stream reset unavailable",
                    Ev::StreamReset { status: Status::DEADLINE_EXCEEDED, .. } => "ev stream reset deadline",
                    Ev::StreamReset { .. } => "ev stream reset",
                    Ev::StreamWritable { .. } => "ev stream writable",
                    Ev::GoAway { .. } => "ev goaway",
                    Ev::ResumeRequested { .. } => "ev resume requested",
                    Ev::AuthRequested { .. } => "ev auth requested",
                    Ev::Closed(ConnectionError::TransportClosed) => "ev closed transport",
                    Ev::Closed(ConnectionError::Malformed(_)) => "ev closed truncated",
                    Ev::Closed(ConnectionError::IdleTimeout) => "ev closed idle",
                    Ev::Closed(_) => "ev closed other",
                };
                self.count(kind);
                self.on_event(p, live, side, ev);
            }
            self.progress(p, live, side);
            loop {
                let end = &mut live.ends[side];
                let n = end.conn.poll_transmit(self.now, &mut self.buf);
                if n == 0 {
                    break;
                }
                self.hash.words(&[us(self.now), 500, p as u64, side as u64, n as u64]);
                live.links[side].send(self.now, &self.buf[..n]);
                moved = true;
            }
            let end = &mut live.ends[side];
            if end.conn.is_finished() && !end.transport_closed {
                end.transport_closed = true;
                live.links[side].close(self.now);
            }
            // A suspended session has given up on its transport: close it (the runtime would);
            // the dialer comes back after a backoff.
            let end = &mut live.ends[side];
            if end.conn.needs_transport() && !end.transport_closed {
                end.transport_closed = true;
                live.links[side].close(self.now);
                self.epochs[live.epoch].lost = true;
                self.count("suspended");
            }
            if side == 0 && live.ends[0].conn.needs_transport() && !live.resume_pending {
                live.resume_pending = true;
                let d = self.rng.range(500, 40_000);
                let ep = live.epoch;
                self.schedule_in(d, p, Act::Resume { ep });
            }
            self.check_bounds(p, live, side);
            if !moved {
                let end = &mut live.ends[side];
                end.timeout = end.conn.poll_timeout();
                return;
            }
        }
        self.violation(format!(
            "pair {p} side {side}: livelock in the driver loop (events/transmit never settle)"
        ));
    }

    fn check_bounds(&mut self, p: usize, live: &Live, side: usize) {
        let e = &live.ends[side];
        let ep = &self.epochs[live.epoch];
        let cfg = &ep.cfg[side];
        let mut msgs = Vec::new();
        let open = e.conn.open_exchanges();
        if open > e.open_bound {
            msgs.push(format!("pair {p} side {side}: open_exchanges {open} > bound {}", e.open_bound));
        }
        if let Err(why) = e.conn.check_invariants() {
            msgs.push(format!("pair {p} side {side}: core invariant broken: {why}"));
        }
        let fp = e.conn.buffer_footprint();
        if fp > e.footprint_bound {
            msgs.push(format!("pair {p} side {side}: buffer_footprint {fp} > bound {}", e.footprint_bound));
        }
        let st = e.conn.stats();
        if st.calls_open_inbound > cfg.max_concurrent_calls
            || st.streams_open_inbound > cfg.max_concurrent_streams
        {
            msgs.push(format!(
                "pair {p} side {side}: inbound open calls/streams {}/{} above the announced {}/{}",
                st.calls_open_inbound,
                st.streams_open_inbound,
                cfg.max_concurrent_calls,
                cfg.max_concurrent_streams
            ));
        }
        let peer = &ep.cfg[1 - side];
        if st.calls_open_outbound > peer.max_concurrent_calls.min(cfg.max_outbound_calls)
            || st.streams_open_outbound > peer.max_concurrent_streams.min(cfg.max_outbound_streams)
        {
            msgs.push(format!(
                "pair {p} side {side}: outbound open calls/streams {}/{} above the limits",
                st.calls_open_outbound, st.streams_open_outbound
            ));
        }
        for m in msgs {
            self.violation(m);
        }
    }

    // ------------------------------------------------------------------ scheduled actions

    fn act(&mut self, p: usize, act: Act) {
        match act {
            Act::Reconnect => {
                if self.pairs[p].live.is_none() {
                    self.connect(p);
                }
                return;
            }
            Act::Tick => {
                if !self.settle {
                    self.tick(p);
                    let gap = self.rng.range(300, 12_000);
                    self.schedule_in(gap, p, Act::Tick);
                }
                return;
            }
            _ => {}
        }
        let Some(mut live) = self.pairs[p].live.take() else { return };
        let cur = live.epoch;
        match act {
            Act::Kill => {
                let ep = &mut self.epochs[cur];
                if !(ep.closed[0] && ep.closed[1]) {
                    let resumable = live.ends[0].conn.is_resumable() && !ep.goaway;
                    if resumable {
                        ep.lost = true;
                    } else {
                        ep.killed = true;
                    }
                    let open = live.ends[0].conn.open_exchanges() + live.ends[1].conn.open_exchanges();
                    self.count(match (resumable, open > 0) {
                        (true, true) => "kill mid-exchange (resumable)",
                        (true, false) => "kill idle (resumable)",
                        (false, true) => "kill mid-exchange",
                        (false, false) => "kill idle",
                    });
                    live.links[0].kill();
                    live.links[1].kill();
                    let gen = live.gen;
                    for side in 0..2 {
                        let d = self.rng.below(3_000);
                        self.schedule_in(d, p, Act::Eof { ep: cur, side, gen });
                    }
                }
            }
            Act::GoAway { side } => {
                let e = &mut live.ends[side];
                if e.connected && !e.closed {
                    match e.conn.go_away(self.now, Status::OK, b"maintenance") {
                        Ok(()) => {
                            self.epochs[cur].goaway = true;
                            self.count("goaway sent");
                        }
                        Err(ApiError::Closed | ApiError::TxFull | ApiError::NotConnected) => {}
                        Err(err) => self.violation(format!("pair {p} side {side}: go_away: {err:?}")),
                    }
                    self.pump(p, &mut live, side);
                }
            }
            Act::Eof { ep, side, gen } if ep == cur && gen == live.gen => {
                if side == 1 && live.fresh.is_some() {
                    // The resumption attempt's transport died before the session took it over.
                    live.fresh = None;
                } else {
                    live.ends[side].conn.handle_eof(self.now);
                    self.pump(p, &mut live, side);
                }
            }
            Act::Resume { ep } if ep == cur => {
                live.resume_pending = false;
                if live.ends[0].conn.needs_transport() {
                    self.start_resumption(p, &mut live);
                }
            }
            Act::Respond { ep, side, id } if ep == cur => {
                self.respond(p, &mut live, side, id);
                self.pump(p, &mut live, side);
            }
            Act::Consume { ep, side } if ep == cur => {
                self.consume(p, &mut live, side);
                self.pump(p, &mut live, side);
            }
            Act::Release { ep, side, id } if ep == cur => {
                self.release(p, &mut live, side, id, true);
                self.pump(p, &mut live, side);
            }
            Act::Abort { ep, side, id } if ep == cur => {
                self.release(p, &mut live, side, id, false);
                self.pump(p, &mut live, side);
            }
            _ => {}
        }
        self.put_back(p, live);
    }

    /// The dialer reconnects its suspended session on a new transport; the acceptor side gets a
    /// fresh connection that will hand the transport over to the session.
    fn start_resumption(&mut self, p: usize, live: &mut Live) {
        let ep = live.epoch;
        // The acceptor's old transport ends (the dialer closed its side of it). Whatever the
        // acceptor writes in answer (a CLOSE after a session-ending error, say) goes to the old
        // transport, which is gone: never onto the new links.
        if matches!(live.ends[1].conn.state(), State::Open | State::Draining) {
            live.ends[1].conn.handle_eof(self.now);
            self.pump(p, live, 1);
        }
        while live.ends[1].conn.poll_transmit(self.now, &mut self.buf) > 0 {}
        live.gen += 1;
        live.links = [0, 1].map(|i| {
            let r = self.rng.fork();
            Link::new(self.pairs[p].links[i].clone(), r)
        });
        for e in live.ends.iter_mut() {
            e.transport_closed = false;
        }
        let cfg = self.epochs[ep].cfg[1].clone();
        let id = Identity { name: b"server", auth: b"sim", session: b"fresh-token-for-a-new-session" };
        live.fresh = Some(Connection::new(Role::Acceptor, cfg, id, self.now).expect("valid config"));
        if let Err(e) = live.ends[0].conn.reconnect(self.now) {
            self.violation(format!("pair {p}: reconnect refused: {e:?}"));
        }
        self.count("resumption attempt");
        self.hash.words(&[us(self.now), 700, p as u64, u64::from(live.gen)]);
        self.pump(p, live, 0);
    }

    /// Feeds the acceptor's fresh connection; on its resumption request, moves the transport into
    /// the session. Returns the bytes taken.
    fn feed_fresh(&mut self, p: usize, live: &mut Live, data: &[u8]) -> usize {
        let now = self.now;
        let Some(fresh) = live.fresh.as_mut() else { return 0 };
        let n = fresh.handle_input(now, data);
        let mut request = false;
        while let Some(e) = fresh.poll_event(now) {
            match e {
                tandem_core::Event::ResumeRequested { .. } => request = true,
                other => {
                    let msg = format!("pair {p}: fresh acceptor connection: unexpected {other:?}");
                    self.violation(msg);
                }
            }
        }
        if request {
            let mut fresh = live.fresh.take().expect("fresh");
            match live.ends[1].conn.resume_from(now, &mut fresh) {
                Ok(()) => {
                    let ep = &mut self.epochs[live.epoch];
                    ep.resumed += 1;
                    // The windows restart (SPEC.md §13.4): what was sent and not yet consumed
                    // no longer counts against them.
                    for x in ep.ex.values_mut() {
                        for dir in x.dirs.iter_mut() {
                            dir.slack_items +=
                                (dir.sent.len() as u64).saturating_sub(dir.consumed_items + dir.slack_items);
                            dir.slack_bytes +=
                                dir.sent_bytes.saturating_sub(dir.consumed_bytes + dir.slack_bytes);
                        }
                    }
                    self.count("resumed");
                    self.hash.words(&[us(now), 701, p as u64]);
                    self.pump(p, live, 1);
                }
                Err(ApiError::Closed | ApiError::GoingAway) => {
                    // The session already ended here (grace period over, or GOAWAY): tell the
                    // dialer (SPEC.md §13.3 step 3).
                    self.count("resumption refused");
                    fresh.close(now, Status::SESSION_EXPIRED, b"session ended");
                    loop {
                        let n = fresh.poll_transmit(now, &mut self.buf);
                        if n == 0 {
                            break;
                        }
                        live.links[1].send(now, &self.buf[..n]);
                    }
                    live.links[1].close(now);
                    live.ends[1].transport_closed = true;
                }
                Err(e) => {
                    self.violation(format!("pair {p}: the acceptor could not resume the session: {e:?}"))
                }
            }
        }
        n
    }

    fn connect(&mut self, p: usize) {
        let slot = &mut self.pairs[p];
        slot.conns += 1;
        let number = slot.conns;
        let cfg = slot.cfg.clone();
        let cname = format!("client{p}");
        let names: [&[u8]; 2] = [cname.as_bytes(), b"server"];
        let token = format!("sim-session-{p}-{number}-0123456789");
        let session: &[u8] = if slot.resumable { token.as_bytes() } else { b"" };
        let mk = |role: Role, cfg: &Config, name: &[u8], now: Instant| {
            let session = if role == Role::Acceptor { session } else { b"" };
            let id = Identity { name, auth: b"sim", session };
            Connection::new(role, cfg.clone(), id, now).expect("valid config")
        };
        let ends = [0, 1].map(|i| {
            let c = &cfg[i];
            let role = if i == 0 { Role::Dialer } else { Role::Acceptor };
            let slots = (c.max_concurrent_calls
                + c.max_concurrent_streams
                + c.max_outbound_calls
                + c.max_outbound_streams) as usize;
            End {
                conn: mk(role, c, names[i], self.now),
                connected: false,
                closed: false,
                transport_closed: false,
                pending: BTreeMap::new(),
                streams: BTreeMap::new(),
                deferred: VecDeque::new(),
                open_bound: slots,
                timeout: None,
                footprint_bound: (c.max_frame_size as usize + 9).max(16 * 1024)
                    + c.max_tx_buffer as usize
                    + c.max_message_size as usize
                    + slots * core::mem::size_of::<Option<tandem_core::Slot>>(),
            }
        });
        let links = [0, 1].map(|i| {
            let r = self.rng.fork();
            Link::new(self.pairs[p].links[i].clone(), r)
        });
        self.epochs.push(Epoch::new(p, number, cfg));
        let mut live = Box::new(Live {
            epoch: self.epochs.len() - 1,
            ends,
            links,
            gen: 0,
            fresh: None,
            resume_pending: false,
        });
        self.hash.words(&[us(self.now), 600, p as u64, u64::from(number)]);
        self.pump(p, &mut live, 0);
        self.pump(p, &mut live, 1);
        self.pairs[p].live = Some(live);
    }

    // ------------------------------------------------------------------ the applications

    fn payload(&mut self, max: usize) -> Vec<u8> {
        let n = match self.rng.below(25) {
            0 => self.rng.range(4000, 7000) as usize,
            1..=2 => self.rng.range(100, 2000) as usize,
            _ => self.rng.below(48) as usize,
        };
        self.bytes(n.min(max))
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        for c in v.chunks_mut(8) {
            let w = self.rng.next().to_le_bytes();
            c.copy_from_slice(&w[..c.len()]);
        }
        v
    }

    fn deadline(&mut self, force: bool) -> Option<Instant> {
        (force || self.rng.chance(1, 4)).then(|| at(us(self.now) + self.rng.range(2_000, 400_000)))
    }

    /// One random application operation on a random end of pair `p`.
    fn tick(&mut self, p: usize) {
        let Some(mut live) = self.pairs[p].live.take() else { return };
        let side = self.rng.below(2) as usize;
        if live.ends[side].connected && !live.ends[side].closed {
            self.operate(p, &mut live, side);
            self.pump(p, &mut live, side);
        }
        self.put_back(p, live);
    }

    fn open_ok(&mut self, what: &str, p: usize, side: usize, e: ApiError) {
        let ok = matches!(
            e,
            ApiError::TooManyCalls { .. }
                | ApiError::TooManyStreams { .. }
                | ApiError::TxFull
                | ApiError::GoingAway
                | ApiError::Closed
                | ApiError::TooLarge { .. }
                | ApiError::RetainFull { .. }
                | ApiError::NotConnected
        );
        if !ok {
            self.violation(format!("pair {p} side {side}: {what} refused: {e:?}"));
        }
    }

    fn register(&mut self, p: usize, ep: usize, id: u64, x: Ex) {
        if self.epochs[ep].ex.insert(id, x).is_some() {
            self.violation(format!("pair {p}: exchange id {id} handed out twice"));
        }
    }

    fn operate(&mut self, p: usize, live: &mut Live, side: usize) {
        let now = self.now;
        let ep = live.epoch;
        match self.rng.below(100) {
            0..=24 => {
                let method =
                    [CALL_ECHO, CALL_ECHO, CALL_ECHO, CALL_FAIL, CALL_NEVER][self.rng.below(5) as usize];
                let payload = self.payload(usize::MAX);
                let dl = self.deadline(method == CALL_NEVER);
                match live.ends[side].conn.call(now, method, &payload, dl) {
                    Ok(id) => {
                        self.register(p, ep, id, Ex::new(side, XKind::Call, method, digest(&payload), dl))
                    }
                    Err(e) => self.open_ok("call", p, side, e),
                }
            }
            25..=34 => {
                let payload = self.payload(usize::MAX);
                let dl = if self.rng.chance(1, 3) { self.deadline(false) } else { None };
                match live.ends[side].conn.notify(now, NOTE, &payload, dl) {
                    Ok(id) => {
                        self.register(p, ep, id, Ex::new(side, XKind::Notify, NOTE, digest(&payload), dl))
                    }
                    Err(e) => self.open_ok("notify", p, side, e),
                }
            }
            35..=42 => {
                let seq = self.rng.next() >> 1;
                let mut payload = seq.to_le_bytes().to_vec();
                payload.extend(self.payload(200));
                match live.ends[side].conn.signal(SIG, &payload) {
                    Ok(()) => {
                        self.epochs[ep].sig_sent[side].insert(seq);
                    }
                    Err(e) => self.open_ok("signal", p, side, e),
                }
            }
            43..=69 => {
                let method = [S_SERVER, S_CLIENT, S_BIDI, S_BIDI, S_HOLD][self.rng.below(5) as usize];
                let payload = self.payload(6000);
                let half = method == S_SERVER || (method == S_HOLD && self.rng.chance(1, 2));
                let dl = self.deadline(method == S_HOLD);
                let items = if method == S_SERVER || method == S_HOLD { 0 } else { self.rng.below(8) };
                let peer = &self.epochs[ep].cfg[1 - side];
                let max_item = (peer.stream_credit_bytes as usize).min(5000);
                let to_send: VecDeque<Vec<u8>> = (0..items).map(|_| self.item(max_item)).collect();
                match live.ends[side].conn.open_stream(now, method, &payload, dl, half) {
                    Ok(id) => {
                        let mut x = Ex::new(side, XKind::Stream, method, digest(&payload), dl);
                        x.half_close = half;
                        if half {
                            x.dirs[0].fin_status = Some(Status::OK);
                            x.opener_end = true;
                        }
                        self.register(p, ep, id, x);
                        live.ends[side].streams.insert(
                            id,
                            SApp {
                                opener: true,
                                to_send,
                                blocked: false,
                                end_sent: half,
                                peer_fin: false,
                                peer_reset: false,
                                wait_peer_fin: false,
                                hold: false,
                                finish_status: Status::OK,
                                release_scheduled: false,
                            },
                        );
                    }
                    Err(e) => self.open_ok("open_stream", p, side, e),
                }
            }
            70..=78 => {
                // The caller cancels one of its calls or notifications.
                let ids: Vec<u64> = self.epochs[ep]
                    .ex
                    .iter()
                    .filter(|(_, x)| x.opener == side && x.kind != XKind::Stream && x.resolved == 0)
                    .map(|(id, _)| *id)
                    .collect();
                if ids.is_empty() {
                    return;
                }
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                match live.ends[side].conn.cancel(id) {
                    Ok(()) => {
                        self.count("cancel call");
                        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                        x.cancelled_by_opener = true;
                        x.resolved += 1;
                        x.resolved_how.push("cancel");
                    }
                    // The response's first fragment is in: it will be reported.
                    Err(ApiError::WrongState(_) | ApiError::TxFull) => {}
                    Err(e) => self.violation(format!("pair {p} side {side}: cancel({id}): {e:?}")),
                }
            }
            79..=86 => {
                // The opener cancels (resets) one of its streams.
                let ids: Vec<u64> =
                    live.ends[side].streams.iter().filter(|s| s.1.opener).map(|s| *s.0).collect();
                if ids.is_empty() {
                    return;
                }
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                let r = if self.rng.chance(1, 2) {
                    live.ends[side].conn.cancel(id)
                } else {
                    live.ends[side].conn.stream_reset(id, Status::CANCELLED)
                };
                match r {
                    Ok(()) => {
                        self.count("opener reset stream");
                        live.ends[side].streams.remove(&id);
                        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                        x.opener_local_reset = true;
                        x.dirs[0].sender_reset = true;
                        x.dirs[1].recv_local_reset = true;
                        x.resolved += 1;
                        x.resolved_how.push("opener reset");
                    }
                    Err(ApiError::TxFull) => {}
                    Err(e) => {
                        self.violation(format!("pair {p} side {side}: reset of own stream {id}: {e:?}"))
                    }
                }
            }
            87..=91 => {
                // A responder aborts one of the streams it serves.
                let ids: Vec<u64> = live.ends[side]
                    .streams
                    .iter()
                    .filter(|s| !s.1.opener && !s.1.end_sent)
                    .map(|s| *s.0)
                    .collect();
                if let Some(&id) = ids.first() {
                    let d = self.rng.below(50_000);
                    self.schedule_in(d, p, Act::Abort { ep, side, id });
                }
            }
            _ => self.consume(p, live, side),
        }
    }

    fn item(&mut self, max: usize) -> Vec<u8> {
        let n = match self.rng.below(12) {
            0 => max,
            1..=2 => self.rng.range(0, max as u64) as usize,
            _ => self.rng.below(64).min(max as u64) as usize,
        };
        self.bytes(n)
    }

    fn on_event(&mut self, p: usize, live: &mut Live, side: usize, ev: Ev) {
        let ep = live.epoch;
        let now = self.now;
        let tag = format!("pair {p} conn #{} side {side}", self.epochs[ep].number);
        let opener_of = |id: u64| (id % 2) as usize; // dialer (side 0) ids are even
        match ev {
            Ev::Connected => {
                if live.ends[side].connected {
                    self.violation(format!("{tag}: Connected twice"));
                }
                live.ends[side].connected = true;
                self.epochs[ep].connected[side] = true;
            }
            Ev::Request { id, kind, method, deadline, payload } => {
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: request {id} that was never opened"));
                    return;
                };
                x.seen += 1;
                let seen = x.seen;
                let same = x.opener == 1 - side
                    && x.payload == digest(&payload)
                    && x.method == method
                    && match kind {
                        RequestKind::Call => x.kind == XKind::Call,
                        RequestKind::Notify => x.kind == XKind::Notify,
                        RequestKind::Stream { half_closed } => {
                            x.kind == XKind::Stream && half_closed == x.half_close
                        }
                    };
                let has_dl = x.deadline.is_some();
                let refused = x.goaway_refused;
                if seen > 1 {
                    self.violation(format!("{tag}: handler saw request {id} twice"));
                }
                if !same {
                    self.violation(format!("{tag}: request {id} differs from what was sent"));
                }
                if refused {
                    self.violation(format!("{tag}: request {id} was refused by GOAWAY yet delivered"));
                }
                if deadline.is_some() != has_dl {
                    self.violation(format!("{tag}: request {id} deadline {deadline:?}, sent with {has_dl}"));
                }
                match kind {
                    RequestKind::Call | RequestKind::Notify => {
                        live.ends[side].pending.insert(id, InReq { method, payload, cancelled: None });
                        if method != CALL_NEVER {
                            let delay = match self.rng.below(10) {
                                0..=3 => 0,
                                4..=7 => self.rng.range(1, 30_000),
                                _ => self.rng.range(50_000, 600_000),
                            };
                            if delay == 0 {
                                self.respond(p, live, side, id);
                            } else {
                                self.schedule_in(delay, p, Act::Respond { ep, side, id });
                            }
                        }
                    }
                    RequestKind::Stream { half_closed } => {
                        let peer = &self.epochs[ep].cfg[1 - side];
                        let max_item = (peer.stream_credit_bytes as usize).min(5000);
                        let n = match method {
                            S_SERVER => self.rng.below(8),
                            S_BIDI => self.rng.below(6),
                            _ => 0,
                        };
                        let to_send: VecDeque<Vec<u8>> = (0..n).map(|_| self.item(max_item)).collect();
                        let sa = SApp {
                            opener: false,
                            to_send,
                            blocked: false,
                            end_sent: false,
                            peer_fin: half_closed,
                            peer_reset: false,
                            wait_peer_fin: method == S_CLIENT || (method == S_BIDI && self.rng.chance(1, 2)),
                            hold: method == S_HOLD,
                            finish_status: if self.rng.chance(1, 8) { Status::FAILED } else { Status::OK },
                            release_scheduled: false,
                        };
                        live.ends[side].streams.insert(id, sa);
                        if self.rng.chance(1, 12) {
                            let d = self.rng.below(100_000);
                            self.schedule_in(d, p, Act::Abort { ep, side, id });
                        }
                    }
                }
            }
            Ev::Signal { method, payload } => {
                if method != SIG || payload.len() < 8 {
                    self.violation(format!("{tag}: malformed signal"));
                    return;
                }
                let seq = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                if !self.epochs[ep].sig_got[side].insert(seq) {
                    self.violation(format!("{tag}: signal {seq} delivered twice"));
                }
                if !self.epochs[ep].sig_sent[1 - side].contains(&seq) {
                    self.violation(format!("{tag}: signal {seq} never sent"));
                }
            }
            Ev::Response { id, status, payload } => {
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: response to unknown exchange {id}"));
                    return;
                };
                x.resolved += 1;
                x.resolved_how.push("response");
                let (r, cancelled, exp, opener, seen) =
                    (x.resolved, x.cancelled_by_opener, x.expected, x.opener, x.seen);
                if opener != side || x.kind == XKind::Stream {
                    self.violation(format!("{tag}: response {id} at the wrong end"));
                }
                if r > 1 {
                    self.violation(format!(
                        "{tag}: exchange {id} resolved twice (Response {status:?} after {:?})",
                        self.epochs[ep].ex[&id].resolved_how
                    ));
                }
                if cancelled {
                    self.violation(format!("{tag}: exchange {id} got a Response after cancel()"));
                }
                if seen != 1 {
                    self.violation(format!(
                        "{tag}: exchange {id} answered but its handler saw it {seen} times"
                    ));
                }
                match exp {
                    Some(e) if e == (status, digest(&payload)) => {}
                    Some(e) => self.violation(format!(
                        "{tag}: exchange {id} response ({status:?}, {} bytes) differs from the handler's answer ({:?})",
                        payload.len(),
                        e.0
                    )),
                    None => self.violation(format!("{tag}: exchange {id} got Response {status:?} the handler never sent")),
                }
            }
            Ev::Failed { id, status } => {
                let closed = live.ends[side].conn.state() == State::Closed;
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: Failed for unknown exchange {id}"));
                    return;
                };
                x.resolved += 1;
                x.resolved_how.push("failed");
                let (r, dl, cancelled) = (x.resolved, x.deadline, x.cancelled_by_opener);
                if r > 1 {
                    self.violation(format!(
                        "{tag}: exchange {id} resolved twice (Failed {status:?} after {:?})",
                        self.epochs[ep].ex[&id].resolved_how
                    ));
                }
                if cancelled {
                    self.violation(format!("{tag}: exchange {id} Failed after cancel()"));
                }
                self.check_abort_status(&tag, ep, side, id, status, dl, closed);
            }
            Ev::Cancelled { id, status } => {
                let closed = live.ends[side].conn.state() == State::Closed;
                let Some(req) = live.ends[side].pending.get_mut(&id) else {
                    self.violation(format!("{tag}: Cancelled({status:?}) for {id}, which awaits no answer"));
                    return;
                };
                let ok = match status {
                    Status::CANCELLED => true,
                    Status::DEADLINE_EXCEEDED => {
                        self.epochs[ep].ex.get(&id).is_some_and(|x| x.deadline.is_some())
                    }
                    Status::UNAVAILABLE => closed,
                    _ => false,
                };
                if !ok {
                    self.violation(format!("{tag}: request {id} Cancelled with unexpected {status:?}"));
                }
                if req.cancelled.is_none() {
                    req.cancelled = Some(status);
                    if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                        x.handler_cancel.get_or_insert(status);
                    }
                }
                if closed {
                    live.ends[side].pending.remove(&id);
                } else {
                    let d = self.rng.below(20_000);
                    self.schedule_in(d, p, Act::Respond { ep, side, id });
                }
            }
            Ev::StreamData { id, payload } => {
                let d = if opener_of(id) == side { 1 } else { 0 };
                let cfg = &self.epochs[ep].cfg[side];
                let (init_m, init_b) =
                    (u64::from(cfg.stream_credit_msgs), u64::from(cfg.stream_credit_bytes));
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: StreamData on unknown stream {id}"));
                    return;
                };
                let dir = &mut x.dirs[d];
                let bad_after = dir.recv_fin || dir.recv_reset > 0 || dir.recv_local_reset;
                let expect = dir.sent.get(dir.got).copied();
                dir.got += 1;
                dir.got_bytes += payload.len() as u64;
                let over = dir.got as u64 > init_m + dir.consumed_items + dir.slack_items
                    || dir.got_bytes > init_b + dir.consumed_bytes + dir.slack_bytes;
                let got = dir.got;
                if bad_after {
                    self.violation(format!("{tag}: stream {id} item delivered after its end or a reset"));
                }
                if expect != Some(digest(&payload)) {
                    self.violation(format!(
                        "{tag}: stream {id} item #{got} out of order, duplicated or corrupt"
                    ));
                }
                if over {
                    self.violation(format!(
                        "{tag}: stream {id}: more items/bytes delivered than the credit granted"
                    ));
                }
                live.ends[side].deferred.push_back((id, payload.len() as u32));
                if self.settle || self.rng.chance(1, 3) {
                    self.consume(p, live, side);
                } else if self.rng.chance(1, 2) {
                    let d = self.rng.range(1, 40_000);
                    self.schedule_in(d, p, Act::Consume { ep, side });
                }
            }
            Ev::StreamFin { id, status } => {
                let d = if opener_of(id) == side { 1 } else { 0 };
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: StreamFin on unknown stream {id}"));
                    return;
                };
                let dir = &mut x.dirs[d];
                let prev = (dir.recv_fin, dir.recv_reset, dir.recv_local_reset);
                dir.recv_fin = true;
                let complete = dir.got == dir.sent.len() && dir.fin_status == Some(status);
                let (got, sent, fs) = (dir.got, dir.sent.len(), dir.fin_status);
                let mut resolve = false;
                if d == 1 {
                    x.opener_peer_fin = true;
                    resolve = x.opener_end && !x.opener_local_reset;
                }
                if prev.0 || prev.1 > 0 || prev.2 {
                    self.violation(format!("{tag}: stream {id} StreamFin after its end ({prev:?})"));
                }
                if !complete {
                    self.violation(format!(
                        "{tag}: stream {id} FIN({status:?}) after {got} of {sent} items (sender finished with {fs:?})"
                    ));
                }
                if resolve {
                    self.resolve_stream(&tag, ep, id, "fin");
                }
                if let Some(sa) = live.ends[side].streams.get_mut(&id) {
                    sa.peer_fin = true;
                    if sa.end_sent {
                        live.ends[side].streams.remove(&id);
                    }
                }
            }
            Ev::StreamReset { id, status } => {
                let closed = live.ends[side].conn.state() == State::Closed;
                let opener = opener_of(id) == side;
                let d = if opener { 1 } else { 0 };
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: StreamReset on unknown stream {id}"));
                    return;
                };
                let dl = x.deadline;
                // A responder's own deadline is reported as a reset but leaves its receiving half
                // open until the application releases the stream (SPEC.md §7.4.3 row 15): items
                // in flight may still be delivered.
                if opener || status != Status::DEADLINE_EXCEEDED {
                    x.dirs[d].recv_reset += 1;
                }
                if opener {
                    let prior = (x.opener_local_reset, x.opener_peer_reset, x.resolved);
                    x.opener_peer_reset = true;
                    x.opener_end = true;
                    x.dirs[0].sender_reset = true;
                    if prior.0 || prior.1 {
                        let how = x.resolved_how.clone();
                        self.violation(format!(
                            "{tag}: stream {id}: StreamReset({status:?}) after the stream was already resolved ({how:?}) [double terminal]"
                        ));
                    }
                    if prior.2 == 0 {
                        self.resolve_stream(&tag, ep, id, "reset");
                    } else if !(prior.0 || prior.1) {
                        let how = self.epochs[ep].ex[&id].resolved_how.clone();
                        self.violation(format!(
                            "{tag}: stream {id}: StreamReset({status:?}) after resolution {how:?}"
                        ));
                    }
                    if status == Status::UNAVAILABLE || status == Status::DEADLINE_EXCEEDED {
                        self.check_abort_status(&tag, ep, side, id, status, dl, closed);
                    }
                    live.ends[side].streams.remove(&id);
                } else {
                    if status == Status::DEADLINE_EXCEEDED && dl.is_none() {
                        self.violation(format!("{tag}: stream {id} reset by a deadline it never had"));
                    }
                    if let Some(sa) = live.ends[side].streams.get_mut(&id) {
                        sa.peer_reset = true;
                        sa.blocked = false;
                        if closed {
                            live.ends[side].streams.remove(&id);
                        } else if !sa.end_sent && !sa.release_scheduled {
                            sa.release_scheduled = true;
                            let d = self.rng.below(30_000);
                            self.schedule_in(d, p, Act::Release { ep, side, id });
                        } else if sa.end_sent {
                            live.ends[side].streams.remove(&id);
                        }
                    } else if !closed && status != Status::UNAVAILABLE {
                        // Tolerated: the deadline and the opener's reset may both be reported
                        // to a responder (SPEC.md §7.4.3 rows 9 and 15).
                    }
                }
            }
            Ev::StreamWritable { id } => {
                if let Some(sa) = live.ends[side].streams.get_mut(&id) {
                    sa.blocked = false;
                }
            }
            Ev::AuthRequested { .. } => {
                self.violation(format!("{tag}: AuthRequested without Config::authenticate"));
            }
            Ev::ResumeRequested { .. } => {
                self.violation(format!("{tag}: ResumeRequested on a connection that offers no resumption"));
            }
            Ev::GoAway { bound, status } => {
                let mut msgs = Vec::new();
                let epo = &mut self.epochs[ep];
                if epo.goaway_bound[side].is_some_and(|b| bound > b) {
                    msgs.push(format!("{tag}: GOAWAY bound raised"));
                }
                epo.goaway_bound[side] = Some(bound);
                if bound % 2 != side as u64 {
                    msgs.push(format!("{tag}: GOAWAY bound {bound} has the wrong parity"));
                }
                let _ = status;
                let mut unresolved = Vec::new();
                for (id, x) in epo.ex.range_mut(bound..) {
                    if x.opener == side {
                        x.goaway_refused = true;
                        if x.resolved == 0 {
                            unresolved.push(*id);
                        }
                    }
                }
                if !unresolved.is_empty() {
                    msgs.push(format!(
                        "{tag}: GOAWAY({bound}) left excluded exchanges unresolved: {unresolved:?}"
                    ));
                }
                for m in msgs {
                    self.violation(m);
                }
            }
            Ev::Closed(e) => {
                live.ends[side].closed = true;
                self.epochs[ep].closed[side] = true;
                let killed = self.epochs[ep].killed;
                let goaway = self.epochs[ep].goaway;
                let killed = killed || (self.epochs[ep].lost && goaway);
                let ok = match e {
                    ConnectionError::TransportClosed => killed,
                    // The transport ended inside a frame (SPEC.md §3.8).
                    ConnectionError::Malformed(tandem_core::frame::DecodeError::Truncated) => killed,
                    ConnectionError::PeerClosed { status: Status::OK }
                    | ConnectionError::LocallyClosed { status: Status::OK } => goaway,
                    ConnectionError::IdleTimeout => self.long_partition,
                    // A lost session whose other end gave up on it (its grace period ended, or
                    // it never completed the handshake and started anew).
                    ConnectionError::SessionExpired => killed || self.epochs[ep].lost,
                    ConnectionError::PeerClosed { status: Status::SESSION_EXPIRED } => self.epochs[ep].lost,
                    ConnectionError::PeerClosed { status: Status::IDLE_TIMEOUT } => self.long_partition,
                    _ => false,
                };
                if !ok {
                    self.violation(format!(
                        "{tag}: connection closed unexpectedly: {e:?} (killed {killed}, goaway {goaway})"
                    ));
                }
                if live.ends[side].conn.open_exchanges() != 0 {
                    self.violation(format!(
                        "{tag}: {} exchanges still tracked after Closed",
                        live.ends[side].conn.open_exchanges()
                    ));
                }
                let unresolved: Vec<u64> = self.epochs[ep]
                    .ex
                    .iter()
                    .filter(|(_, x)| x.opener == side && x.resolved == 0)
                    .map(|(id, _)| *id)
                    .collect();
                if !unresolved.is_empty() {
                    self.violation(format!("{tag}: Closed with exchanges never resolved: {unresolved:?}"));
                }
                let end = &mut live.ends[side];
                end.pending.clear();
                end.streams.clear();
                end.deferred.clear();
                let _ = now;
            }
        }
    }

    /// A Failed / StreamReset at the initiator with DEADLINE_EXCEEDED or UNAVAILABLE must be
    /// justified: by its deadline, by the connection closing, or by a GOAWAY excluding it.
    #[allow(clippy::too_many_arguments)]
    fn check_abort_status(
        &mut self,
        tag: &str,
        ep: usize,
        side: usize,
        id: u64,
        status: Status,
        dl: Option<Instant>,
        closed: bool,
    ) {
        match status {
            Status::DEADLINE_EXCEEDED => {
                if !dl.is_some_and(|d| self.now >= d) {
                    self.violation(format!(
                        "{tag}: exchange {id} DEADLINE_EXCEEDED before its deadline {dl:?}"
                    ));
                }
            }
            Status::UNAVAILABLE => {
                if !closed {
                    self.epochs[ep].unavail.push((side, id));
                }
            }
            s => self.violation(format!("{tag}: exchange {id} failed with unexpected {s:?}")),
        }
    }

    fn resolve_stream(&mut self, tag: &str, ep: usize, id: u64, how: &'static str) {
        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
        x.resolved += 1;
        x.resolved_how.push(how);
        if x.resolved > 1 {
            let h = x.resolved_how.clone();
            self.violation(format!("{tag}: stream {id} resolved twice ({h:?})"));
        }
    }

    fn respond(&mut self, p: usize, live: &mut Live, side: usize, id: u64) {
        let ep = live.epoch;
        let Some(req) = live.ends[side].pending.get(&id) else { return };
        if req.method == CALL_NEVER && req.cancelled.is_none() {
            return;
        }
        let (status, body): (Status, Vec<u8>) = if self.rng.chance(1, 20) {
            // The responder gives up.
            ([Status::UNAVAILABLE, Status::CANCELLED][self.rng.below(2) as usize], Vec::new())
        } else {
            match req.method {
                NOTE => (Status::OK, Vec::new()),
                CALL_FAIL => (Status::FAILED, b"no such thing".to_vec()),
                _ => (Status::OK, req.payload.iter().rev().copied().collect()),
            }
        };
        let cancelled = req.cancelled;
        match live.ends[side].conn.respond(id, status, &body) {
            Ok(()) => {
                live.ends[side].pending.remove(&id);
                let expected = match cancelled {
                    Some(st) => (st, digest(b"")),
                    None => (status, digest(&body)),
                };
                if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                    x.expected = Some(expected);
                }
            }
            Err(ApiError::TxFull) => {
                let d = self.rng.range(100, 5_000);
                self.schedule_in(d, p, Act::Respond { ep, side, id });
            }
            Err(ApiError::Closed) => {
                live.ends[side].pending.remove(&id);
            }
            Err(ApiError::TooLarge { .. }) if !body.is_empty() => {
                // The answer does not fit: answer TOO_LARGE instead (SPEC.md §7.1.2).
                if let Some(r) = live.ends[side].pending.get_mut(&id) {
                    r.method = NOTE;
                }
                match live.ends[side].conn.respond(id, Status::TOO_LARGE, b"") {
                    Ok(()) => {
                        live.ends[side].pending.remove(&id);
                        let expected = (cancelled.unwrap_or(Status::TOO_LARGE), digest(b""));
                        if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                            x.expected = Some(expected);
                        }
                    }
                    Err(ApiError::TxFull) => {
                        let d = self.rng.range(100, 5_000);
                        self.schedule_in(d, p, Act::Respond { ep, side, id });
                    }
                    Err(e) => {
                        self.violation(format!("pair {p} side {side}: respond({id}, TOO_LARGE): {e:?}"))
                    }
                }
            }
            Err(e) => self.violation(format!("pair {p} side {side}: respond({id}): {e:?}")),
        }
    }

    fn consume(&mut self, p: usize, live: &mut Live, side: usize) {
        let ep = live.epoch;
        while let Some((id, n)) = live.ends[side].deferred.pop_front() {
            match live.ends[side].conn.stream_consumed(id, 1, n) {
                Ok(()) => {
                    let d = if (id % 2) as usize == side { 1 } else { 0 };
                    if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                        let dir = &mut x.dirs[d];
                        if !dir.recv_local_reset {
                            dir.consumed_items += 1;
                            dir.consumed_bytes += u64::from(n);
                        }
                    }
                }
                Err(e) => {
                    if live.ends[side].conn.state() != State::Closed {
                        self.violation(format!("pair {p} side {side}: stream_consumed({id}, 1, {n}): {e:?}"));
                    }
                }
            }
        }
    }

    /// Responder: `release` ends a stream the peer reset (or whose deadline passed); otherwise
    /// aborts it on its own initiative.
    fn release(&mut self, p: usize, live: &mut Live, side: usize, id: u64, after_reset: bool) {
        let ep = live.epoch;
        let Some(sa) = live.ends[side].streams.get_mut(&id) else { return };
        if sa.end_sent {
            return;
        }
        let finish = after_reset && self.rng.chance(1, 3);
        let r = if finish {
            live.ends[side].conn.stream_finish(id, Status::CANCELLED)
        } else {
            let st = if after_reset { Status::CANCELLED } else { Status::FAILED };
            live.ends[side].conn.stream_reset(id, st)
        };
        match r {
            Ok(()) => {
                self.count(if after_reset { "responder release" } else { "responder abort" });
                let sa = live.ends[side].streams.get_mut(&id).expect("present");
                sa.end_sent = true;
                let done = sa.peer_fin || sa.peer_reset;
                if done {
                    live.ends[side].streams.remove(&id);
                }
                if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                    if finish {
                        x.dirs[1].fin_status = Some(Status::CANCELLED);
                    } else {
                        x.dirs[1].sender_reset = true;
                        x.dirs[0].recv_local_reset = true;
                    }
                }
                if !finish && !done {
                    // Our reset is answered by the opener's reset, which the core swallows: we
                    // are done with the stream.
                    live.ends[side].streams.remove(&id);
                }
            }
            Err(ApiError::TxFull) => {
                let act =
                    if after_reset { Act::Release { ep, side, id } } else { Act::Abort { ep, side, id } };
                let d = self.rng.range(100, 5_000);
                self.schedule_in(d, p, act);
            }
            Err(ApiError::Closed) => {}
            Err(e) => self.violation(format!("pair {p} side {side}: release of stream {id}: {e:?}")),
        }
    }

    /// Sends what credit allows on every stream, and finishes streams whose plan is done.
    fn progress(&mut self, p: usize, live: &mut Live, side: usize) {
        let ep = live.epoch;
        if live.ends[side].closed {
            return;
        }
        let ids: Vec<u64> = live.ends[side].streams.keys().copied().collect();
        for id in ids {
            loop {
                let end = &mut live.ends[side];
                let Some(sa) = end.streams.get_mut(&id) else { break };
                if sa.end_sent || sa.peer_reset || sa.blocked {
                    break;
                }
                let d = if sa.opener { 0 } else { 1 };
                if let Some(item) = sa.to_send.front() {
                    match end.conn.stream_send(id, item) {
                        Ok(()) => {
                            let item = sa.to_send.pop_front().expect("front");
                            let recv_cfg = &self.epochs[ep].cfg[1 - side];
                            let (m, b) = (
                                u64::from(recv_cfg.stream_credit_msgs),
                                u64::from(recv_cfg.stream_credit_bytes),
                            );
                            let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                            let dir = &mut x.dirs[d];
                            dir.sent.push(digest(&item));
                            dir.sent_bytes += item.len() as u64;
                            let over = dir.sent.len() as u64 > m + dir.consumed_items + dir.slack_items
                                || dir.sent_bytes > b + dir.consumed_bytes + dir.slack_bytes;
                            let msg = over.then(|| format!(
                                "pair {p} side {side}: stream {id}: sent beyond the credit the receiver granted ({} items / {} bytes, consumed {} / {})",
                                dir.sent.len(), dir.sent_bytes, dir.consumed_items, dir.consumed_bytes
                            ));
                            if let Some(m) = msg {
                                self.violation(m);
                            }
                            continue;
                        }
                        Err(ApiError::NoCredit) => {
                            sa.blocked = true;
                            *self.counts.entry("no credit").or_default() += 1;
                        }
                        Err(ApiError::TooLarge { .. }) => {
                            sa.to_send.pop_front();
                            continue;
                        }
                        Err(ApiError::TxFull) => {}
                        Err(e) => self.violation(format!("pair {p} side {side}: stream_send({id}): {e:?}")),
                    }
                    break;
                }
                if sa.hold || (sa.wait_peer_fin && !sa.peer_fin) {
                    break;
                }
                let status = if sa.opener { Status::OK } else { sa.finish_status };
                match end.conn.stream_finish(id, status) {
                    Ok(()) => {
                        sa.end_sent = true;
                        let (opener, peer_done) = (sa.opener, sa.peer_fin || sa.peer_reset);
                        if peer_done {
                            end.streams.remove(&id);
                        }
                        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                        x.dirs[d].fin_status = Some(status);
                        if opener {
                            x.opener_end = true;
                            if x.opener_peer_fin {
                                let tag = format!("pair {p} side {side}");
                                self.resolve_stream(&tag, ep, id, "finish");
                            }
                        }
                    }
                    Err(ApiError::TxFull) => {}
                    Err(e) => self.violation(format!("pair {p} side {side}: stream_finish({id}): {e:?}")),
                }
                break;
            }
        }
    }
}
