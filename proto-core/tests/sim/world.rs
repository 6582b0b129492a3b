//! The simulated world: one server (its connections admitted, resumed, replaced and evicted by
//! the core's `Endpoint`), 2–3 clients (each reconnecting on its `Dialer`'s timers), byte-stream
//! connections over seeded links with faults, a fake clock, and an application on each end of
//! each connection. The driver always advances to whichever source is due first: a scheduled
//! application or fault action, a link delivery, a connection timer, or a dialer timer.
//! `app.rs`: the applications; `events.rs`: their events checked against the ledger;
//! `transport.rs`: delivery and the pump; `peers.rs`: faults and the dialer; `server.rs`: the
//! endpoint and its invariants.

use super::ledger::{Epoch, Ex, XKind};
use super::link::{Link, LinkParams};
use super::rng::{digest, Rng, TraceHash};
use std::collections::{BTreeMap, VecDeque};
use tandem_core::endpoint::{Action, ConnId, Dialer, Endpoint, EndpointConfig, LinkState, ReconnectPolicy};
use tandem_core::{
    ApiError, Config, Connection, ConnectionError, Identity, Instant, MethodId, RequestKind, Role,
    SessionMemory, State, Status,
};

mod app;
mod events;
mod peers;
mod server;
mod transport;

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
    /// Server side: the connection's id at the endpoint.
    id: Option<ConnId>,
    /// Server side: what the endpoint was told about it.
    told: Told,
    /// The generation of the transport this end is on (`Live::gen`: the current one).
    gen: u32,
}

/// What the server told its endpoint about one connection.
#[derive(Clone, Copy, Default)]
struct Told {
    connected: bool,
    suspended: bool,
    gone: bool,
    mem: Option<SessionMemory>,
}

/// The acceptor side of a reconnection attempt: the fresh server connection that receives the
/// dialer's resuming HELLO until the endpoint decides (resume the session, or decline).
struct Fresh {
    conn: Connection<'static>,
    id: ConnId,
    told: Told,
    timeout: Option<Instant>,
}

/// A client–server connection of pair `p` (the client end may have closed while the server end
/// lives on: a half-open connection, or a session waiting for its grace period).
struct Live {
    epoch: usize,
    ends: [End; 2],
    /// links[i] carries bytes written by end i.
    links: [Link; 2],
    /// Transport generation: bumped when a resumed session gets a new transport, so that faults
    /// scheduled for the old one do not hit the new one.
    gen: u32,
    fresh: Option<Fresh>,
    /// The client's `reconnect` is under way on the current transport (resumed or declined
    /// once the acceptor's HELLO arrives).
    resuming: bool,
    /// The client's `stats().resumptions` when the attempt started.
    resumptions: u64,
    /// The current transport was killed half-open: the server was not told.
    half_open: bool,
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
    Kill {
        half_open: bool,
    },
    GoAway {
        side: usize,
    },
    Eof {
        ep: usize,
        side: usize,
        gen: u32,
    },
    /// The client's transport connect attempt ends (`ok`: connected; otherwise refused).
    Dialed {
        ok: bool,
    },
    /// A client that gave up (its dialer closed) is started anew by its application.
    NewClient,
}

struct PairSlot {
    /// The server offers session resumption on this pair's connections.
    resumable: bool,
    /// The name the client announces (empty: anonymous; several pairs may share one).
    name: Vec<u8>,
    cfg: [Config; 2],
    links: [LinkParams; 2],
    /// Connections, oldest first; at most one has a client end still open (the last).
    lives: Vec<Box<Live>>,
    conns: u32,
    dialer: Dialer,
    policy: ReconnectPolicy,
    /// The dialer's delay before jitter, as its policy says it must be now.
    backoff: core::time::Duration,
    /// A transport connect is in flight (`Act::Dialed` is scheduled).
    dialing: bool,
    /// Percent of connect attempts that fail (in the active phase).
    refuse_pct: u64,
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
    /// The server's many-connection logic, shared by every pair.
    ep: Endpoint,
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
    /// Server connections registered under their name since the last endpoint check.
    newcomers: Vec<ConnId>,
    /// The endpoint was told something (other than memory) since its last check.
    ep_dirty: bool,
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
        // The server's endpoint: tight limits in some scenarios, so that admission refusals,
        // evictions of suspended sessions and sheds of cached answers happen.
        let tight = rng.chance(1, 3);
        let ep_cfg = EndpointConfig {
            max_connections: if tight { rng.range(3, 6) as usize } else { 64 },
            max_handshaking: if tight { rng.range(1, 3) as usize } else { 64 },
            max_suspended_sessions: if tight { rng.range(1, 2) as usize } else { 64 },
            session_memory_budget: if tight && rng.chance(1, 2) {
                rng.range(4_000, 40_000) as usize
            } else {
                EndpointConfig::default().session_memory_budget
            },
            ..EndpointConfig::default()
        };
        // Names: distinct per client, or (sometimes) one name for all, so that a client replaces
        // another's connection; sometimes anonymous.
        let shared_name = rng.chance(1, 8);
        let mut sim = Sim {
            ep: Endpoint::new(ep_cfg),
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
            newcomers: Vec::new(),
            ep_dirty: false,
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
            let name = match sim.rng.below(10) {
                0 => Vec::new(),
                _ if shared_name => b"client".to_vec(),
                _ => format!("client{p}").into_bytes(),
            };
            let initial = core::time::Duration::from_micros(sim.rng.range(500, 20_000));
            let policy = ReconnectPolicy {
                initial,
                max: initial.max(core::time::Duration::from_micros(sim.rng.range(5_000, 400_000))),
                multiplier: [1.0, 1.5, 2.0, 3.0][sim.rng.below(4) as usize],
                jitter: [0.0, 0.25, 0.5, 1.0][sim.rng.below(4) as usize],
                // A declined resumption closes the connection; the application then starts a new
                // client (one connection object is one session in the ledger).
                fresh_session: false,
                max_attempts: if sim.rng.chance(1, 4) { Some(sim.rng.range(1, 5) as u32) } else { None },
            };
            let refuse_pct = if sim.rng.chance(1, 2) { 0 } else { sim.rng.range(5, 40) };
            let dialer = Dialer::new(policy.clone(), sim.rng.next());
            sim.pairs.push(PairSlot {
                resumable,
                name,
                cfg: [ccfg, server_cfg.clone()],
                links,
                lives: Vec::new(),
                conns: 0,
                dialer,
                backoff: policy.initial,
                policy,
                dialing: false,
                refuse_pct,
            });
            // Faults: kills (some half-open: the server is not told) and go-aways at random
            // points of the active phase.
            for _ in 0..sim.rng.below(3) {
                let t = us(start) + 20_000 + sim.rng.below(active_ms * 1000 - 20_000);
                let half_open = sim.rng.chance(1, 4);
                sim.schedule_at(at(t), p, Act::Kill { half_open });
            }
            if sim.rng.chance(1, 5) {
                let t = us(start) + 5_000 + sim.rng.below(active_ms * 900);
                let side = sim.rng.below(2) as usize;
                sim.schedule_at(at(t), p, Act::GoAway { side });
            }
            // The dialer's first attempt.
            let t = at(us(start) + sim.rng.below(3_000));
            sim.schedule_at(t, p, Act::Dialed { ok: true });
            sim.pairs[p].dialing = true;
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
            self.apply_actions();
            self.check_endpoint();
        }
        if std::env::var_os("SIM_DEBUG").is_some() {
            for l in self.pairs.iter().flat_map(|p| &p.lives) {
                for (k, e) in l.ends.iter().enumerate() {
                    for id in 0..64u64 {
                        if let Some(sl) = e.conn.debug_slot(id) {
                            println!("side {k} slot {sl:?}");
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
            if !p.dialing {
                if let Some(d) = p.dialer.poll_timeout() {
                    min(d);
                }
            }
            for l in &p.lives {
                for i in 0..2 {
                    if let Some(d) = l.links[i].next_due() {
                        min(d);
                    }
                    if let Some(d) = l.ends[i].timeout {
                        min(d);
                    }
                }
                if let Some(d) = l.fresh.as_ref().and_then(|f| f.timeout) {
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
            if !self.pairs[p].dialing && self.pairs[p].dialer.poll_timeout().is_some_and(|t| t <= self.now) {
                self.hash.words(&[now, 150, p as u64]);
                self.redial(p);
                return;
            }
            for i in 0..self.pairs[p].lives.len() {
                let mut live = self.pairs[p].lives.remove(i);
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
                if !did && live.fresh.as_ref().is_some_and(|f| f.timeout.is_some_and(|t| t <= self.now)) {
                    if let Some(f) = live.fresh.as_mut() {
                        f.conn.handle_timeout(self.now);
                    }
                    self.hash.words(&[now, 250, p as u64]);
                    self.pump_fresh(p, &mut live);
                    did = true;
                }
                self.put_back(p, i, live);
                if did {
                    return;
                }
            }
        }
    }

    /// Puts a connection taken out of `pairs[p].lives` back at `i`, unless both ends are over.
    fn put_back(&mut self, p: usize, i: usize, mut live: Box<Live>) {
        let both_closed = live.ends[0].closed && live.ends[1].closed;
        if !both_closed {
            self.pairs[p].lives.insert(i, live);
            return;
        }
        self.epochs[live.epoch].ended = true;
        // The runtime drops a fresh connection with the transport it was answering on.
        if let Some(f) = live.fresh.take() {
            if !f.told.gone {
                self.ep_dirty = true;
                self.ep.closed(f.id);
                self.count("fresh dropped with its transport");
            }
        }
        if let Some(id) = live.ends[1].id {
            if !live.ends[1].told.gone {
                self.violation(format!(
                    "pair {p}: server connection {id:?} dropped without telling the endpoint"
                ));
                self.ep_dirty = true;
                self.ep.closed(id);
            }
        }
    }

    /// Where the connection of epoch `ep` of pair `p` is in `pairs[p].lives`.
    fn find(&self, p: usize, ep: usize) -> Option<usize> {
        self.pairs[p].lives.iter().position(|l| l.epoch == ep)
    }

    /// The pair's connection whose client end is still open (the application works on it).
    fn current(&self, p: usize) -> Option<usize> {
        self.pairs[p].lives.iter().rposition(|l| !l.ends[0].closed)
    }

    fn enter_settle(&mut self) {
        self.settle = true;
        // Faults and new work stop; outstanding work is answered and drained.
        let keys: Vec<(u64, u64)> = self
            .sched
            .iter()
            .filter(|(_, (_, a))| {
                matches!(a, Act::Tick | Act::Kill { .. } | Act::GoAway { .. } | Act::NewClient)
            })
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
            let mut eps = Vec::new();
            for live in self.pairs[p].lives.iter_mut() {
                for l in live.links.iter_mut() {
                    l.p.partitions.retain(|&(s, _)| s < now);
                }
                eps.push(live.epoch);
            }
            for ep in eps {
                for side in 0..2 {
                    self.schedule_in(0, p, Act::Consume { ep, side });
                }
            }
        }
    }

    fn quiescent(&self) -> bool {
        if !self.sched.is_empty() {
            return false;
        }
        for p in &self.pairs {
            if p.dialing || p.dialer.poll_timeout().is_some() {
                return false; // the dialer has an attempt due or under way
            }
            for l in &p.lives {
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
        }
        true
    }

    fn describe_busy(&self) -> String {
        let mut s = String::new();
        for (i, p) in self.pairs.iter().enumerate() {
            s += &format!("[pair {i}: dialer {:?}, dialing {}] ", p.dialer.state(), p.dialing);
            for l in &p.lives {
                for (k, e) in l.ends.iter().enumerate() {
                    s += &format!(
                        "[pair {i} #{} side {k}: state {:?}, open {}, pending {:?}, streams {:?}, deferred {}, tx {}, link {}] ",
                        self.epochs[l.epoch].number,
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
                s += &format!("unresolved {unresolved:?}, fresh {}; ", l.fresh.is_some());
            }
        }
        s += &format!("sched {}", self.sched.len());
        s
    }

    fn finish(mut self) -> Outcome {
        let mut v = Vec::new();
        // Final state of the connections still up: tables empty, connection usable.
        for (p, slot) in self.pairs.iter().enumerate() {
            for l in &slot.lives {
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
        }
        if self.violations.is_empty() {
            for ep in &self.epochs {
                ep.final_check(&mut v);
            }
            self.final_endpoint_check(&mut v);
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
}
