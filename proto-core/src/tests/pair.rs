//! A `Pair` of connections (dialer `a`, acceptor `b`) joined by an in-memory wire, with a fake
//! clock and seeded re-chunking of the byte stream. `drive` moves bytes and collects events until
//! nothing changes, and panics (printing the seed) if that never happens: livelock is a bug.

use crate::{Config, Connection, Identity, Instant, MethodId, RequestKind, Role, SchemaKey, Status};
use core::time::Duration;
use std::vec::Vec;

/// An owned copy of an [`Event`](crate::Event).
pub(crate) use crate::event::OwnedEvent as Ev;

/// Small deterministic PRNG (xorshift64*), so failures replay from their seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// One endpoint and the events it produced.
pub(crate) struct Node {
    pub(crate) conn: Connection<'static>,
    pub(crate) events: Vec<Ev>,
    /// Bytes written by this node's transmit, not yet delivered.
    pub(crate) wire: Vec<u8>,
    /// Echo every call and acknowledge every notification as it arrives.
    pub(crate) echo: bool,
    /// The schema key of every request and signal received, in order
    /// ([`Connection::request_key`]).
    pub(crate) keys: Vec<Option<SchemaKey>>,
}

impl Node {
    fn new(role: Role, cfg: Config, name: &str, now: Instant) -> Self {
        Self::with_session(role, cfg, name, b"", now)
    }

    /// A node whose identity carries `session` (an acceptor offering resumption).
    pub(crate) fn with_session(role: Role, cfg: Config, name: &str, session: &[u8], now: Instant) -> Self {
        let id = Identity { name: name.as_bytes(), auth: b"token", session };
        Node {
            conn: Connection::new(role, cfg, id, now).expect("valid config"),
            events: Vec::new(),
            wire: Vec::new(),
            echo: false,
            keys: Vec::new(),
        }
    }

    /// Removes and returns all collected events.
    pub(crate) fn take(&mut self) -> Vec<Ev> {
        core::mem::take(&mut self.events)
    }

    /// Removes and returns the ids and payloads of requests received.
    pub(crate) fn requests(&mut self) -> Vec<(u64, RequestKind, Vec<u8>)> {
        let mut out = Vec::new();
        self.events.retain(|e| match e {
            Ev::Request { id, kind, payload, .. } => {
                out.push((*id, *kind, payload.clone()));
                false
            }
            _ => true,
        });
        out
    }

    /// Drains events into `events`; returns how many there were.
    pub(crate) fn poll(&mut self, now: Instant) -> usize {
        let mut n = 0;
        let mut answers = Vec::new();
        while let Some(e) = self.conn.poll_event(now) {
            n += 1;
            let ev = Ev::from(e);
            if let Ev::Request { .. } | Ev::Signal { .. } = ev {
                self.keys.push(self.conn.request_key());
            }
            if self.echo {
                if let Ev::Request { id, kind: RequestKind::Call, payload, .. } = &ev {
                    answers.push((*id, payload.clone()));
                    continue;
                }
                if let Ev::Request { id, kind: RequestKind::Notify, .. } = &ev {
                    answers.push((*id, Vec::new()));
                    continue;
                }
            }
            self.events.push(ev);
            // Respond between events so that responses interleave with input, like a real driver.
            for (id, body) in answers.drain(..) {
                self.conn.respond(id, Status::OK, &body).expect("echo respond");
            }
        }
        for (id, body) in answers.drain(..) {
            self.conn.respond(id, Status::OK, &body).expect("echo respond");
        }
        n
    }
}

/// Two connected cores and a fake clock.
pub(crate) struct Pair {
    pub(crate) now: Instant,
    pub(crate) a: Node,
    pub(crate) b: Node,
    pub(crate) rng: Rng,
    pub(crate) seed: u64,
    /// Largest chunk delivered per `handle_input` (random sizes up to it); `usize::MAX` = whole.
    pub(crate) max_chunk: usize,
    /// Stop delivering bytes to `b` (it "never reads").
    pub(crate) b_deaf: bool,
    /// Stop delivering bytes to `a`.
    pub(crate) a_deaf: bool,
}

impl Pair {
    pub(crate) fn with_configs(ca: Config, cb: Config, seed: u64) -> Self {
        let now = Instant::from_millis(1_000);
        Pair {
            now,
            a: Node::new(Role::Dialer, ca, "client", now),
            b: Node::new(Role::Acceptor, cb, "server", now),
            rng: Rng::new(seed),
            seed,
            max_chunk: usize::MAX,
            b_deaf: false,
            a_deaf: false,
        }
    }

    /// A pair past the handshake with both `Connected` events consumed.
    pub(crate) fn connected() -> Self {
        Self::connected_with(Config::default(), Config::default())
    }

    pub(crate) fn connected_with(ca: Config, cb: Config) -> Self {
        let mut p = Self::with_configs(ca, cb, 1);
        p.drive();
        assert_eq!(p.a.take(), vec![Ev::Connected], "seed {}", p.seed);
        assert_eq!(p.b.take(), vec![Ev::Connected], "seed {}", p.seed);
        p
    }

    /// Moves `from`'s queued bytes onto its wire, then delivers (a random prefix of) the wire to
    /// `to`. Returns whether anything moved.
    fn transfer(
        from: &mut Node,
        to: &mut Node,
        now: Instant,
        rng: &mut Rng,
        max_chunk: usize,
        deaf: bool,
    ) -> bool {
        let mut moved = false;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = from.conn.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            from.wire.extend_from_slice(&buf[..n]);
            moved = true;
        }
        if deaf {
            return moved;
        }
        while !from.wire.is_empty() {
            let mut n = from.wire.len().min(max_chunk);
            if max_chunk != usize::MAX {
                n = 1 + rng.below(n as u64) as usize;
            }
            let taken = to.conn.handle_input(now, &from.wire[..n]);
            from.wire.drain(..taken);
            if taken > 0 {
                moved = true;
            }
            let polled = to.poll(now);
            if polled > 0 {
                moved = true;
            }
            if taken == 0 && polled == 0 {
                break;
            }
        }
        moved
    }

    /// Moves what `b` transmits to `a` once (one direction only).
    pub(crate) fn drive_b_to_a(&mut self) {
        Self::transfer(&mut self.b, &mut self.a, self.now, &mut self.rng, self.max_chunk, self.a_deaf);
    }

    /// Runs both sides until neither moves bytes nor produces events. Panics on livelock.
    pub(crate) fn drive(&mut self) {
        for _ in 0..10_000 {
            let mut moved = Self::transfer(
                &mut self.a,
                &mut self.b,
                self.now,
                &mut self.rng,
                self.max_chunk,
                self.b_deaf,
            );
            moved |= Self::transfer(
                &mut self.b,
                &mut self.a,
                self.now,
                &mut self.rng,
                self.max_chunk,
                self.a_deaf,
            );
            moved |= self.a.poll(self.now) > 0;
            moved |= self.b.poll(self.now) > 0;
            for c in [&self.a.conn, &self.b.conn] {
                if let Err(e) = c.check_invariants() {
                    panic!("core invariant broken (seed {}): {e}", self.seed);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("livelock: drive did not settle (seed {})", self.seed);
    }

    /// Advances the fake clock by `d`, firing due timers on both sides, then drives.
    pub(crate) fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        // Step through every timer that falls inside the interval, in order.
        loop {
            let next = [self.a.conn.poll_timeout(), self.b.conn.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(t) if t <= target => {
                    self.now = self.now.max(t);
                    self.a.conn.handle_timeout(self.now);
                    self.b.conn.handle_timeout(self.now);
                    self.drive();
                }
                _ => break,
            }
        }
        self.now = target;
        self.a.conn.handle_timeout(self.now);
        self.b.conn.handle_timeout(self.now);
        self.drive();
    }

    /// Asserts both tables are empty (the connection is quiet).
    pub(crate) fn assert_quiet(&self) {
        assert_eq!(self.a.conn.open_exchanges(), 0, "a still tracks exchanges (seed {})", self.seed);
        assert_eq!(self.b.conn.open_exchanges(), 0, "b still tracks exchanges (seed {})", self.seed);
    }
}

pub(crate) const ECHO: MethodId = MethodId::new(1, 1);
pub(crate) const SINK: MethodId = MethodId::new(1, 2);

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
