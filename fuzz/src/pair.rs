//! The `pair_schedule` target: two connected cores; the input chooses the application actions on
//! each side and the I/O schedule (how much each side writes per call, how the bytes are split on
//! delivery, delivery delayed, end of file, timer jumps). An epilogue then drains everything and
//! answers every request: afterwards every call resolved exactly once and both tables are empty.

use crate::actions::{apply, Action};
use crate::checks::{configs, footprint_bound, slot_capacity};
use crate::track::Tracker;
use arbitrary::Arbitrary;
use core::time::Duration;
use std::collections::VecDeque;
use tandem_core::frame::{Decoded, Frame};
use tandem_core::{ApiError, Config, Connection, Identity, Instant, Role, State, Status};

/// One step of the schedule. `b` selects the acceptor side, else the dialer.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// An application action on one side.
    App { b: bool, action: Action },
    /// One side's `poll_transmit` into its wire, with a buffer of `cap` bytes (0: everything).
    Transmit { b: bool, cap: u16 },
    /// Delivers up to `chunk` bytes (one datagram on packets) of the other side's wire to `b`.
    Deliver { b: bool, chunk: u16 },
    /// Transmit and deliver everything, both ways, once.
    Flush,
    /// Side `b`'s transport write half closes: its later output is lost, and the other side
    /// sees end of file once the bytes already written have been delivered.
    Eof { b: bool },
    /// Advance the clock by this many milliseconds (times 16) and fire timers on both sides.
    Advance(u8),
    /// Advance to the earlier of the two sides' timers.
    AdvanceToTimer,
}

/// The whole input.
#[derive(Arbitrary, Debug)]
pub struct Input {
    packet: bool,
    small_a: bool,
    small_b: bool,
    steps: Vec<Step>,
}

struct Node {
    c: Connection<'static>,
    cfg: Config,
    t: Tracker,
    /// Bytes (stream) or datagrams (packet) this node wrote, not yet delivered.
    wire: VecDeque<Vec<u8>>,
    /// Write half closed (explicitly, or because the connection finished).
    write_closed: bool,
    /// End of file was delivered to this node.
    eof_seen: bool,
    /// Partial frame bytes already delivered to the other side, to check framing.
    check: Vec<u8>,
    close_sent: bool,
}

struct Pair {
    now: Instant,
    packet: bool,
    nodes: [Node; 2],
    scratch: Vec<u8>,
}

impl Node {
    fn new(role: Role, cfg: Config, now: Instant) -> Self {
        let me = Identity { name: if role == Role::Dialer { b"a" } else { b"b" }, ..Identity::default() };
        Node {
            c: Connection::new(role, cfg.clone(), me, now).expect("valid config"),
            cfg,
            t: Tracker::default(),
            wire: VecDeque::new(),
            write_closed: false,
            eof_seen: false,
            check: Vec::new(),
            close_sent: false,
        }
    }

    fn check(&self) {
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
        let sum =
            (s.calls_open_outbound + s.calls_open_inbound + s.streams_open_outbound + s.streams_open_inbound)
                as usize;
        // A call whose response is still arriving is tracked but no longer counted (SPEC §7.1.1).
        assert!(sum <= c.open_exchanges(), "per-kind counters above the table size: {s:?}");
        self.t.check_final(c);
    }
}

impl Pair {
    fn drain(&mut self, i: usize) -> bool {
        let before = self.nodes[i].t.events;
        let n = &mut self.nodes[i];
        n.t.drain(&mut n.c, self.now);
        n.t.events != before
    }

    /// Side `i` writes into its wire through a `cap`-byte buffer (0: until empty).
    fn transmit(&mut self, i: usize, cap: u16) -> bool {
        let cap = if cap == 0 { self.scratch.len() } else { usize::from(cap) };
        let mut moved = false;
        for _ in 0..100_000 {
            let n = self.nodes[i].c.poll_transmit(self.now, &mut self.scratch[..cap]);
            if n == 0 {
                break;
            }
            moved = true;
            let node = &mut self.nodes[i];
            if !node.write_closed {
                // Every byte written must continue a valid frame sequence.
                node.check.extend_from_slice(&self.scratch[..n]);
                let mut off = 0;
                loop {
                    match Frame::decode(&node.check[off..], usize::MAX) {
                        Ok(Decoded::Frame(f, k)) => {
                            assert!(!node.close_sent, "{f:?} written after CLOSE");
                            node.close_sent |= matches!(f, Frame::Close { .. });
                            off += k;
                        }
                        Ok(Decoded::Incomplete(_)) => break,
                        Err(e) => panic!("side {i} wrote bytes that do not decode: {e:?}"),
                    }
                }
                node.check.drain(..off);
                if self.packet {
                    assert!(node.check.is_empty(), "datagram of side {i} ends inside a frame");
                    node.wire.push_back(self.scratch[..n].to_vec());
                } else {
                    match node.wire.back_mut() {
                        Some(last) if last.len() < 4096 => last.extend_from_slice(&self.scratch[..n]),
                        _ => node.wire.push_back(self.scratch[..n].to_vec()),
                    }
                }
            }
            if cap != self.scratch.len() {
                break;
            }
        }
        moved
    }

    /// Delivers up to `chunk` bytes (or one datagram) of the other side's wire to side `i`.
    fn deliver(&mut self, i: usize, chunk: usize) -> bool {
        let j = 1 - i;
        let mut moved = false;
        let mut budget = chunk.max(1);
        while budget > 0 {
            let Some(front) = self.nodes[j].wire.front_mut() else { break };
            let take = if self.packet { front.len() } else { front.len().min(budget) };
            let data: Vec<u8> = front[..take].to_vec();
            let mut off = 0;
            let mut stalls = 0;
            while off < data.len() {
                let node = &mut self.nodes[i];
                let n = node.t.input(&mut node.c, self.now, &data[off..]);
                off += n;
                moved |= n > 0;
                self.drain(i);
                if n == 0 {
                    stalls += 1;
                    assert!(stalls < 2, "side {i}: handle_input stalled after a full drain");
                } else {
                    stalls = 0;
                }
            }
            let front = self.nodes[j].wire.front_mut().expect("still there");
            front.drain(..take);
            if front.is_empty() {
                self.nodes[j].wire.pop_front();
            }
            budget = budget.saturating_sub(take);
            if self.packet {
                break;
            }
        }
        self.deliver_eof(i);
        moved
    }

    fn deliver_eof(&mut self, i: usize) {
        let j = 1 - i;
        if self.nodes[j].write_closed && self.nodes[j].wire.is_empty() && !self.nodes[i].eof_seen {
            self.nodes[i].eof_seen = true;
            self.nodes[i].c.handle_eof(self.now);
            self.drain(i);
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        for i in 0..2 {
            self.nodes[i].c.handle_timeout(self.now);
            self.drain(i);
        }
    }

    fn flush(&mut self) -> bool {
        let mut moved = false;
        for i in 0..2 {
            moved |= self.drain(i);
            moved |= self.transmit(i, 0);
        }
        for i in 0..2 {
            while !self.nodes[1 - i].wire.is_empty() {
                moved |= self.deliver(i, usize::MAX);
            }
            self.deliver_eof(i);
        }
        moved
    }

    fn step(&mut self, s: &Step) {
        let side = |b: bool| usize::from(b);
        match s {
            Step::App { b, action } => {
                let n = &mut self.nodes[side(*b)];
                apply(&mut n.c, &mut n.t, self.now, *action);
                self.drain(side(*b));
            }
            Step::Transmit { b, cap } => {
                self.transmit(side(*b), *cap);
            }
            Step::Deliver { b, chunk } => {
                self.deliver(side(*b), usize::from(*chunk));
            }
            Step::Flush => {
                self.flush();
            }
            Step::Eof { b } => self.nodes[side(*b)].write_closed = true,
            Step::Advance(ms) => self.advance(Duration::from_millis(u64::from(*ms) * 16)),
            Step::AdvanceToTimer => {
                let t = self.nodes.iter().filter_map(|n| n.c.poll_timeout()).min();
                if let Some(t) = t {
                    let d = t.saturating_duration_since(self.now);
                    self.advance(d);
                }
            }
        }
    }

    /// What a well-behaved application does at the end: answer every request, finish every
    /// stream, consume every item. Returns whether anything succeeded.
    fn settle_app(&mut self, i: usize) -> bool {
        let n = &mut self.nodes[i];
        let mut moved = false;
        let ok =
            |r: &Result<(), ApiError>| matches!(r, Ok(()) | Err(ApiError::UnknownId(_) | ApiError::Closed));
        for (id, notify) in n.t.in_calls.clone() {
            let r = n.c.respond(id, Status::OK, if notify { b"" } else { b"ok" });
            if ok(&r) {
                n.t.responded(id);
                moved = true;
            }
        }
        let unconsumed: Vec<(u64, (u32, u32))> = n.t.unconsumed.iter().map(|(k, v)| (*k, *v)).collect();
        for (id, (items, bytes)) in unconsumed {
            if items > 0 || bytes > 0 {
                let _ = n.c.stream_consumed(id, items, bytes);
                moved = true;
            }
            n.t.unconsumed.remove(&id);
        }
        let mut streams: Vec<u64> = n.t.in_streams.clone();
        streams.extend(n.t.stream_ids.iter().filter(|id| n.t.streams.get(id).is_some_and(|s| !s.ended)));
        for id in streams {
            let mut r = n.c.stream_finish(id, Status::OK);
            if let Err(ApiError::WrongState(_)) = r {
                r = n.c.stream_reset(id, Status::CANCELLED);
            }
            if ok(&r) {
                n.t.released(id);
                moved = true;
            }
        }
        moved
    }

    /// A finished connection's transport is closed by its driver: the other side sees EOF.
    fn close_finished(&mut self) {
        for i in 0..2 {
            if self.nodes[i].c.is_finished() {
                self.nodes[i].write_closed = true;
            }
        }
    }

    fn epilogue(&mut self) {
        for round in 0.. {
            assert!(round < 200, "epilogue did not settle (livelock)");
            let mut moved = false;
            for i in 0..2 {
                moved |= self.drain(i);
                moved |= self.settle_app(i);
            }
            moved |= self.flush();
            self.close_finished();
            for i in 0..2 {
                if self.nodes[1 - i].write_closed && !self.nodes[i].eof_seen {
                    self.deliver_eof(i);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            n.check();
            assert_eq!(
                n.c.open_exchanges(),
                0,
                "side {i} ({:?}) still tracks exchanges after the epilogue",
                n.c.state()
            );
            assert_eq!(n.c.pending_transmit(), 0, "side {i} still has bytes queued");
            for (id, (_, st)) in &n.t.calls {
                assert_ne!(*st, crate::track::CallState::Open, "side {i}: call {id} never resolved");
            }
        }
        // With both sides still open, the connection is quiet and usable.
        if self.nodes.iter().all(|n| n.c.state() == State::Open) {
            for n in &self.nodes {
                assert!(n.t.in_calls.is_empty() && n.t.in_streams.is_empty());
            }
        }
    }
}

/// Runs one input.
/// Runs one input through every check; returns how many stream items the two sides received
/// directly (so that a corpus can be shown to reach direct receive).
pub fn run(input: &Input) -> u64 {
    let now = Instant::from_millis(1_000);
    let pick = |small: bool| configs(usize::from(small) + if input.packet { 2 } else { 0 });
    let mut p = Pair {
        now,
        packet: input.packet,
        nodes: [
            Node::new(Role::Dialer, pick(input.small_a), now),
            Node::new(Role::Acceptor, pick(input.small_b), now),
        ],
        scratch: vec![0u8; 70_000],
    };
    // Half the inputs (by the parity of their step count, independent of everything else)
    // receive stream payloads directly, as the runtimes do (`Connection::direct_offer`).
    if input.steps.len() & 1 == 0 {
        for n in &mut p.nodes {
            n.t.direct = Some(1);
        }
    }
    // Handshake.
    p.flush();
    p.flush();
    for n in &p.nodes {
        assert!(n.t.connected, "the pair did not connect");
    }
    for s in input.steps.iter().take(256) {
        p.step(s);
        for n in &p.nodes {
            n.check();
        }
    }
    p.epilogue();
    p.nodes.iter().map(|n| n.t.direct_items).sum()
}
