//! One mesh scenario: N nodes, each with the core's real `endpoint::mesh::Mesh`, over a simulated
//! network of byte-stream connections (see `sim_mesh.rs` for the model and the invariants).

#[path = "checks.rs"]
mod checks;

use crate::rng::{Rng, TraceHash};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tandem_core::endpoint::mesh::{self, dials, Action, DialId, MemberState, Mesh, MeshConfig, Verdict};
use tandem_core::endpoint::ConnId;
use tandem_core::{Instant, Status};

/// Idle timeout: a connection whose bytes cannot get through for this long dies at each end
/// (keepalive PINGs unanswered), each end on its own, within `DEATH_JITTER_MS` after.
pub const IDLE_MS: u64 = 2_000;
const DEATH_JITTER_MS: u64 = 300;
/// A dial (connect and HELLO exchange) not completed after this fails.
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Faults (kills, partitions, membership changes) happen before this.
pub const HORIZON_MS: u64 = 20_000;
/// Quiescence is checked this long after the horizon: longer than idle detection, the largest
/// backoff and a dial together.
pub const SETTLE_MS: u64 = 12_000;
const MAX_STEPS: usize = 60_000;

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Dialer side before the acceptor's HELLO arrived.
    Handshaking,
    Open,
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Msg {
    /// Connect + the dialer's HELLO.
    Syn,
    /// The acceptor's HELLO.
    Hello,
    /// CLOSE instead of the acceptor's HELLO.
    Refuse(Status),
    /// CLOSE on an established connection, then the transport closes.
    Close(Status),
    /// The transport was reset (the process there is gone).
    Rst,
}

#[derive(Debug)]
struct Conn {
    /// [dialer, acceptor] nodes.
    nodes: [usize; 2],
    /// The incarnation of each node its end belongs to.
    inc: [u32; 2],
    ends: [End; 2],
    dial: DialId,
    /// The last arrival scheduled towards each end (a byte stream delivers in order).
    last: [u64; 2],
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Start(usize),
    Kill {
        node: usize,
        crash: bool,
    },
    Deliver {
        conn: u64,
        side: usize,
        msg: Msg,
    },
    /// An end's idle timeout: `force` (the bytes did not get through) or only if the other
    /// end is gone by then.
    Death {
        conn: u64,
        side: usize,
        force: bool,
    },
    DialTimeout(u64),
    PartitionStart(usize),
    Tick {
        node: usize,
        inc: u32,
    },
    Add {
        node: usize,
        member: usize,
    },
    Remove {
        node: usize,
        member: usize,
    },
}

struct Node {
    name: Vec<u8>,
    mesh: Option<Mesh<u32>>,
    inc: u32,
    /// Host down (nothing answers) rather than process gone (connects are reset).
    crashed: bool,
    tick_at: Option<Instant>,
}

/// A partition: `a` cut from `b` (or from everyone), on `[s, e)` ms.
#[derive(Clone, Copy, Debug)]
struct Partition {
    a: usize,
    b: Option<usize>,
    s: u64,
    e: u64,
}

/// The result of one scenario.
#[derive(Debug, Default)]
pub struct Outcome {
    pub hash: u64,
    pub violations: Vec<String>,
    pub steps: usize,
    pub nodes: usize,
    pub counts: BTreeMap<&'static str, u64>,
}

/// A scenario in progress.
pub struct Sim {
    rng: Rng,
    now: Instant,
    nodes: Vec<Node>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    events: BTreeMap<(Instant, u64), Ev>,
    seq: u64,
    parts: Vec<Partition>,
    /// Membership plan: initial members, and (node, from ms) joins / (node, from ms) leaves.
    initial: BTreeSet<usize>,
    join: Option<(usize, u64)>,
    leave: Option<(usize, u64)>,
    /// A leaver that keeps running with its old membership (it dials and is refused).
    stale_leaver: bool,
    config: MeshConfig,
    /// Nodes whose mesh was told something since the last check.
    touched: Vec<bool>,
    trace: TraceHash,
    out: Outcome,
}

impl Sim {
    pub fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let n = rng.range(3, 7) as usize;
        let names = random_names(&mut rng, n);
        let config = MeshConfig {
            initial_backoff: Duration::from_millis(rng.range(20, 200)),
            max_backoff: Duration::from_millis(rng.range(500, 5_000)),
            multiplier: if rng.chance(1, 8) { 1 } else { rng.range(2, 3) as u32 },
            jitter_percent: rng.range(0, 100) as u8,
            stable_after: Duration::from_millis(rng.range(0, 1_500)),
            ..MeshConfig::default()
        };
        let nodes = names
            .into_iter()
            .map(|name| Node { name, mesh: None, inc: 0, crashed: false, tick_at: None })
            .collect();
        let mut sim = Sim {
            rng,
            now: Instant::ZERO,
            nodes,
            conns: BTreeMap::new(),
            next_conn: 1,
            events: BTreeMap::new(),
            seq: 0,
            parts: Vec::new(),
            initial: (0..n).collect(),
            join: None,
            leave: None,
            stale_leaver: false,
            config,
            touched: vec![false; n],
            trace: TraceHash::default(),
            out: Outcome { nodes: n, ..Outcome::default() },
        };
        sim.plan();
        sim
    }

    /// Draws the scenario's faults.
    fn plan(&mut self) {
        let n = self.nodes.len();
        let r = &mut self.rng;
        // A joiner (not an initial member) and a leaver, in some scenarios.
        if n > 3 && r.chance(1, 3) {
            let j = r.below(n as u64) as usize;
            self.initial.remove(&j);
            self.join = Some((j, r.range(500, HORIZON_MS - 4_000)));
        }
        if r.chance(1, 3) {
            let l = (0..n).find(|&i| Some(i) != self.join.map(|j| j.0) && r.chance(1, 2)).unwrap_or(0);
            if Some(l) != self.join.map(|j| j.0) {
                self.leave = Some((l, r.range(500, HORIZON_MS - 4_000)));
                self.stale_leaver = r.chance(1, 3);
            }
        }
        // Start: all at once (simultaneous dials), or staggered.
        let spread = if r.chance(1, 2) { 0 } else { r.range(1, 3_000) };
        let starts: Vec<(usize, u64)> = self.initial.iter().map(|&i| (i, r.below(spread + 1))).collect();
        for (i, t) in starts {
            self.schedule(at(t), Ev::Start(i));
        }
        if let Some((j, t)) = self.join {
            self.schedule(at(t), Ev::Start(j));
            for x in 0..n {
                let d = self.rng.below(2_000);
                self.schedule(at(t + d), Ev::Add { node: x, member: j });
            }
        }
        if let Some((l, t)) = self.leave {
            for x in 0..n {
                let d = self.rng.below(2_000);
                self.schedule(at(t + d), Ev::Remove { node: x, member: l });
            }
            if !self.stale_leaver {
                let d = self.rng.below(2_000);
                self.schedule(at(t + d), Ev::Kill { node: l, crash: false });
            }
        }
        // Kills and restarts.
        for _ in 0..self.rng.below(4) {
            let node = self.rng.below(n as u64) as usize;
            let t = self.rng.range(100, HORIZON_MS - 1_000);
            let crash = self.rng.chance(1, 3);
            let back = (t + self.rng.range(0, 5_000)).min(HORIZON_MS);
            self.schedule(at(t), Ev::Kill { node, crash });
            self.schedule(at(back), Ev::Start(node));
        }
        // Partitions: shorter than the idle timeout (connections survive, bytes are held) or
        // clearly longer (connections die at both ends).
        for _ in 0..self.rng.below(5) {
            let a = self.rng.below(n as u64) as usize;
            let b = if self.rng.chance(1, 3) { None } else { Some(self.rng.below(n as u64) as usize) };
            let len = if self.rng.chance(1, 2) {
                self.rng.range(50, IDLE_MS - 200)
            } else {
                self.rng.range(IDLE_MS + DEATH_JITTER_MS + 200, 8_000)
            };
            let s = self.rng.range(0, HORIZON_MS - len);
            if b != Some(a) {
                self.parts.push(Partition { a, b, s, e: s + len });
                self.schedule(at(s), Ev::PartitionStart(self.parts.len() - 1));
            }
        }
    }

    /// Whether the operator's plan has `i` in the mesh at `ms`.
    fn planned(&self, i: usize, ms: u64) -> bool {
        let joined = self.initial.contains(&i) || self.join.is_some_and(|(j, t)| j == i && ms >= t);
        joined && !self.leave.is_some_and(|(l, t)| l == i && ms >= t)
    }

    fn schedule(&mut self, t: Instant, ev: Ev) {
        self.seq += 1;
        self.events.insert((t, self.seq), ev);
    }

    fn count(&mut self, k: &'static str) {
        *self.out.counts.entry(k).or_default() += 1;
    }

    fn violation(&mut self, v: String) {
        if self.out.violations.len() < 20 {
            self.out.violations.push(format!("t={} ms: {v}", self.now.as_micros() / 1000));
        }
    }

    fn ms(&self) -> u64 {
        self.now.as_micros() / 1000
    }

    fn cut(&self, x: usize, y: usize, ms: u64) -> Option<u64> {
        self.parts
            .iter()
            .filter(|p| {
                ms >= p.s
                    && ms < p.e
                    && (p.a == x && p.b.map_or(true, |b| b == y) || p.a == y && p.b.map_or(true, |b| b == x))
            })
            .map(|p| p.e)
            .max()
    }

    fn latency(&mut self) -> u64 {
        self.rng.range(1, 40)
    }

    /// Sends `msg` on `conn` towards end `side`: delayed by latency, held by partitions; held
    /// longer than the idle timeout, it is lost and both ends die of their timeouts.
    fn send(&mut self, conn: u64, side: usize, msg: Msg) {
        let Some(c) = self.conns.get(&conn) else { return };
        let (from, to, last) = (c.nodes[1 - side], c.nodes[side], c.last[side]);
        let sent = self.ms();
        let mut arrive = (sent + self.latency()).max(last);
        while let Some(e) = self.cut(from, to, arrive) {
            arrive = e + self.latency();
        }
        let limit = if msg == Msg::Syn { CONNECT_TIMEOUT_MS } else { IDLE_MS };
        if arrive - sent > limit {
            self.count("held_too_long");
            if msg != Msg::Syn {
                for s in 0..2 {
                    let d = self.rng.below(DEATH_JITTER_MS);
                    self.schedule(at(sent + IDLE_MS + d), Ev::Death { conn, side: s, force: true });
                }
            }
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last[side] = arrive;
        }
        self.schedule(at(arrive), Ev::Deliver { conn, side, msg });
    }

    /// Whether end `side` of `conn` is alive (its node runs the incarnation it belongs to).
    fn end(&self, conn: u64, side: usize) -> End {
        match self.conns.get(&conn) {
            Some(c)
                if self.nodes[c.nodes[side]].inc == c.inc[side]
                    && self.nodes[c.nodes[side]].mesh.is_some() =>
            {
                c.ends[side]
            }
            _ => End::Gone,
        }
    }

    fn set_end(&mut self, conn: u64, side: usize, e: End) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.ends[side] = e;
            if c.ends == [End::Gone, End::Gone] {
                self.conns.remove(&conn);
            }
        }
    }

    pub fn run(mut self) -> Outcome {
        let end = at(HORIZON_MS + SETTLE_MS);
        while let Some((&(t, seq), &ev)) = self.events.iter().next() {
            if t > end {
                break;
            }
            self.events.remove(&(t, seq));
            self.now = t;
            self.out.steps += 1;
            if self.out.steps > MAX_STEPS {
                self.violation(format!("more than {MAX_STEPS} steps: livelock"));
                break;
            }
            self.trace.words(&[t.as_micros(), ev_code(&ev)]);
            self.step(ev);
            self.check();
            if !self.out.violations.is_empty() {
                break;
            }
        }
        self.now = end;
        if self.out.violations.is_empty() {
            self.quiescence();
        }
        self.out.hash = self.trace.0;
        self.out
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Start(i) => self.start(i),
            Ev::Kill { node, crash } => self.kill(node, crash),
            Ev::Deliver { conn, side, msg } => self.deliver(conn, side, msg),
            Ev::Death { conn, side, force } => {
                if self.end(conn, side) != End::Gone && (force || self.end(conn, 1 - side) == End::Gone) {
                    self.count("idle_deaths");
                    self.lose(conn, side);
                }
            }
            Ev::DialTimeout(conn) => {
                if self.end(conn, 0) == End::Handshaking {
                    self.count("dial_timeouts");
                    self.lose(conn, 0);
                    self.send(conn, 1, Msg::Rst);
                }
            }
            Ev::PartitionStart(p) => {
                let Partition { a, b, s, e } = self.parts[p];
                self.count("partitions");
                if e - s <= IDLE_MS {
                    return;
                }
                let crossing: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| {
                        (c.nodes[0] == a || c.nodes[1] == a)
                            && b.map_or(true, |b| c.nodes[0] == b || c.nodes[1] == b)
                    })
                    .map(|(&id, _)| id)
                    .collect();
                for conn in crossing {
                    for side in 0..2 {
                        let d = self.rng.below(DEATH_JITTER_MS);
                        self.schedule(at(s + IDLE_MS + d), Ev::Death { conn, side, force: true });
                    }
                }
            }
            Ev::Tick { node, inc } => {
                if self.nodes[node].inc == inc && self.nodes[node].tick_at == Some(self.now) {
                    self.nodes[node].tick_at = None;
                    let now = self.now;
                    if let Some(m) = self.nodes[node].mesh.as_mut() {
                        m.tick(now);
                    }
                    self.drain(node);
                }
            }
            Ev::Add { node, member } => {
                let name = self.nodes[member].name.clone();
                if let Some(m) = self.nodes[node].mesh.as_mut() {
                    m.add_member(&name, member as u32).expect("valid member");
                    self.drain(node);
                }
            }
            Ev::Remove { node, member } => {
                let name = self.nodes[member].name.clone();
                if let Some(m) = self.nodes[node].mesh.as_mut() {
                    if m.remove_member(&name) {
                        self.count("removals");
                    }
                    self.drain(node);
                }
            }
        }
    }

    fn start(&mut self, i: usize) {
        let ms = self.ms();
        if self.nodes[i].mesh.is_some() || !self.planned(i, ms) {
            return;
        }
        let members: Vec<(Vec<u8>, u32)> = (0..self.nodes.len())
            .filter(|&j| self.planned(j, ms))
            .map(|j| (self.nodes[j].name.clone(), j as u32))
            .collect();
        let seed = self.rng.next();
        let node = &mut self.nodes[i];
        node.inc += 1;
        node.crashed = false;
        node.tick_at = None;
        node.mesh =
            Some(Mesh::new(&node.name, i as u32, members, self.config.clone(), seed).expect("valid mesh"));
        self.count("starts");
        self.drain(i);
    }

    fn kill(&mut self, i: usize, crash: bool) {
        if self.nodes[i].mesh.is_none() {
            return;
        }
        self.count(if crash { "crashes" } else { "kills" });
        let ends: Vec<(u64, usize)> = self
            .conns
            .iter()
            .flat_map(|(&id, c)| (0..2).filter(move |&s| c.nodes[s] == i).map(move |s| (id, s)))
            .filter(|&(id, s)| self.end(id, s) != End::Gone)
            .collect();
        let node = &mut self.nodes[i];
        node.mesh = None;
        node.crashed = crash;
        node.inc += 1;
        for (conn, side) in ends {
            self.set_end(conn, side, End::Gone);
            if self.end(conn, 1 - side) == End::Gone {
                continue;
            }
            if crash {
                // Nothing answers: the other end learns from its timers (a dialer still in its
                // handshake too: the acceptor's HELLO may be on its way).
                let d = self.rng.below(DEATH_JITTER_MS);
                self.schedule(at(self.ms() + IDLE_MS + d), Ev::Death { conn, side: 1 - side, force: false });
            } else {
                self.send(conn, 1 - side, Msg::Rst);
            }
        }
    }

    /// End `side` of `conn` is lost (reset, closed by the peer, timed out): tell its mesh.
    fn lose(&mut self, conn: u64, side: usize) {
        let state = self.end(conn, side);
        let Some(c) = self.conns.get(&conn) else { return };
        let (node, dial) = (c.nodes[side], c.dial);
        self.set_end(conn, side, End::Gone);
        let now = self.now;
        let Some(m) = self.nodes[node].mesh.as_mut() else { return };
        match state {
            End::Handshaking => m.dial_failed(now, dial),
            End::Open => m.closed(now, ConnId(conn)),
            End::Gone => return,
        }
        self.drain(node);
    }

    fn deliver(&mut self, conn: u64, side: usize, msg: Msg) {
        let Some(c) = self.conns.get(&conn) else { return };
        let (node, other) = (c.nodes[side], c.nodes[1 - side]);
        let receiver_alive = self.nodes[node].mesh.is_some();
        if msg == Msg::Syn {
            if !receiver_alive {
                if self.nodes[node].crashed {
                    return; // the dialer's timeout fires
                }
                self.count("connects_reset");
                self.send(conn, 0, Msg::Rst);
                return;
            }
            let inc = self.nodes[node].inc;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.inc[1] = inc;
                c.ends[1] = End::Open;
            }
            let dialer_name = self.nodes[other].name.clone();
            let now = self.now;
            let verdict =
                self.nodes[node].mesh.as_mut().expect("alive").inbound(now, ConnId(conn), &dialer_name);
            self.trace.words(&[conn, matches!(verdict, Verdict::Accept) as u64]);
            match verdict {
                Verdict::Accept => {
                    if !dials(&dialer_name, &self.nodes[node].name) {
                        self.violation(format!(
                            "{} accepted a connection from {}, which is not the pair's dialer",
                            self.label(node),
                            self.label(other)
                        ));
                    }
                    self.count("accepted");
                    self.send(conn, 0, Msg::Hello);
                }
                Verdict::Refuse { status, reason } => {
                    self.check_refusal(node, other, status, reason);
                    self.set_end(conn, 1, End::Gone);
                    self.send(conn, 0, Msg::Refuse(status));
                }
            }
            self.drain(node);
            return;
        }
        match self.end(conn, side) {
            End::Gone => {
                // Nobody home: a crashed host stays silent (the sender's timers notice), a new
                // process resets.
                if matches!(msg, Msg::Hello) && self.end(conn, 1 - side) != End::Gone {
                    if self.nodes[node].crashed {
                        let d = self.rng.below(DEATH_JITTER_MS);
                        self.schedule(
                            at(self.ms() + IDLE_MS + d),
                            Ev::Death { conn, side: 1 - side, force: false },
                        );
                    } else {
                        self.send(conn, 1 - side, Msg::Rst);
                    }
                }
            }
            End::Handshaking => match msg {
                Msg::Hello => {
                    self.set_end(conn, 0, End::Open);
                    let (dial, peer, now) =
                        (self.conns[&conn].dial, self.nodes[other].name.clone(), self.now);
                    self.nodes[node].mesh.as_mut().expect("alive").dial_succeeded(
                        now,
                        dial,
                        ConnId(conn),
                        &peer,
                    );
                    self.count("established");
                    self.drain(node);
                }
                _ => {
                    self.count("dials_refused_or_reset");
                    self.lose(conn, side);
                }
            },
            End::Open => {
                if matches!(msg, Msg::Close(_) | Msg::Rst | Msg::Refuse(_)) {
                    if let Msg::Close(s) = msg {
                        self.trace.word(u64::from(s.0));
                    }
                    self.lose(conn, side);
                }
            }
        }
    }

    fn check_refusal(&mut self, node: usize, dialer: usize, status: Status, reason: &str) {
        let name = self.nodes[dialer].name.clone();
        let member = self.nodes[node].mesh.as_ref().is_some_and(|m| m.is_member(&name));
        let ok = match reason {
            mesh::REASON_NOT_MEMBER => {
                self.count("refused_non_member");
                status == Status::PERMISSION_DENIED && !member
            }
            _ => false,
        };
        if !ok {
            self.violation(format!(
                "{} refused {} with {status:?} ({reason}): only non-members are refused here",
                self.label(node),
                self.label(dialer)
            ));
        }
    }

    /// Carries out the actions of node `i`'s mesh and re-arms its timer.
    fn drain(&mut self, i: usize) {
        self.touched[i] = true;
        loop {
            let Some(m) = self.nodes[i].mesh.as_mut() else { return };
            let Some(a) = m.poll_action() else { break };
            match a {
                Action::Dial { dial, name: _, addr } => {
                    let to = addr as usize;
                    let id = self.next_conn;
                    self.next_conn += 1;
                    let inc = self.nodes[i].inc;
                    self.conns.insert(
                        id,
                        Conn {
                            nodes: [i, to],
                            inc: [inc, 0],
                            ends: [End::Handshaking, End::Gone],
                            dial,
                            last: [0; 2],
                        },
                    );
                    self.count("dials");
                    self.trace.words(&[1, i as u64, to as u64, dial.0]);
                    self.schedule(at(self.ms() + CONNECT_TIMEOUT_MS), Ev::DialTimeout(id));
                    self.send(id, 1, Msg::Syn);
                }
                Action::Close { conn, status, reason } => {
                    let conn = conn.0;
                    let side = match self.conns.get(&conn) {
                        Some(c) if c.nodes[0] == i && c.inc[0] == self.nodes[i].inc => 0,
                        Some(c) if c.nodes[1] == i && c.inc[1] == self.nodes[i].inc => 1,
                        _ => {
                            self.violation(format!(
                                "{} closes connection {conn}, which it does not hold",
                                self.label(i)
                            ));
                            continue;
                        }
                    };
                    let expected = match reason {
                        mesh::REASON_REPLACED => Status::UNAVAILABLE,
                        mesh::REASON_REMOVED | mesh::REASON_UNWANTED => Status::OK,
                        _ => Status(u32::MAX),
                    };
                    if status != expected {
                        self.violation(format!("{} closes {conn} with {status:?}: {reason}", self.label(i)));
                    }
                    self.count(match reason {
                        mesh::REASON_REPLACED => "replaced",
                        mesh::REASON_REMOVED => "closed_removed",
                        _ => "closed_unwanted",
                    });
                    self.trace.words(&[2, i as u64, conn, u64::from(status.0)]);
                    self.set_end(conn, side, End::Gone);
                    if self.end(conn, 1 - side) != End::Gone {
                        self.send(conn, 1 - side, Msg::Close(status));
                    }
                }
                Action::State { name, state } => {
                    self.trace.words(&[3, i as u64, crate::rng::digest(&name), state_code(&state)]);
                    if let MemberState::Backoff { next, .. } = state {
                        let d = next.saturating_duration_since(self.now);
                        if d > self.config.max_backoff || d < Duration::from_millis(1) {
                            self.violation(format!(
                                "{} backs off {d:?}, outside [1 ms, {:?}]",
                                self.label(i),
                                self.config.max_backoff
                            ));
                        }
                    }
                }
            }
        }
        let Some(m) = self.nodes[i].mesh.as_ref() else { return };
        if let Some(t) = m.poll_timeout() {
            if self.nodes[i].tick_at != Some(t) {
                self.nodes[i].tick_at = Some(t);
                let inc = self.nodes[i].inc;
                self.schedule(t.max(self.now), Ev::Tick { node: i, inc });
            }
        }
    }

    fn label(&self, i: usize) -> String {
        format!("node {i} ({})", String::from_utf8_lossy(&self.nodes[i].name))
    }
}

fn random_names(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-:";
    let style = rng.below(3);
    let mut names: Vec<Vec<u8>> = Vec::new();
    while names.len() < n {
        let name = match style {
            0 => format!("node-{}", names.len() + rng.below(3) as usize * 10).into_bytes(),
            1 => format!("minio{}.example.net:9000", rng.below(100)).into_bytes(),
            _ => (0..rng.range(1, 12)).map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize]).collect(),
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

fn ev_code(ev: &Ev) -> u64 {
    match *ev {
        Ev::Start(i) => 1 << 32 | i as u64,
        Ev::Kill { node, crash } => 2 << 32 | (node as u64) << 1 | crash as u64,
        Ev::Deliver { conn, side, msg } => 3 << 32 ^ conn << 8 ^ (side as u64) << 4 ^ msg_code(msg),
        Ev::Death { conn, side, force } => 4 << 32 ^ conn << 2 ^ (side as u64) << 1 ^ force as u64,
        Ev::DialTimeout(c) => 5 << 32 ^ c,
        Ev::PartitionStart(p) => 6 << 32 | p as u64,
        Ev::Tick { node, inc } => 7 << 32 | (node as u64) << 16 | u64::from(inc),
        Ev::Add { node, member } => 8 << 32 | (node as u64) << 8 | member as u64,
        Ev::Remove { node, member } => 9 << 32 | (node as u64) << 8 | member as u64,
    }
}

fn msg_code(m: Msg) -> u64 {
    match m {
        Msg::Syn => 1,
        Msg::Hello => 2,
        Msg::Refuse(_) => 3,
        Msg::Close(_) => 4,
        Msg::Rst => 5,
    }
}

fn state_code(s: &MemberState) -> u64 {
    match *s {
        MemberState::Dialing { attempt } => 1 << 32 | u64::from(attempt),
        MemberState::Backoff { failures, next } => 2 << 32 ^ u64::from(failures) ^ next.as_micros() << 8,
        MemberState::Awaiting => 3 << 32,
        MemberState::Connected { conn, dialed, .. } => 4 << 32 ^ conn.0 << 1 ^ dialed as u64,
        MemberState::Removed => 5 << 32,
    }
}
