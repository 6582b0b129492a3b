//! One direction of a simulated byte-stream transport (TCP semantics while it lives): bytes are
//! re-chunked at random boundaries, delayed by latency + jitter, paced by a bandwidth limit and
//! held back by partitions, but always delivered in order and without loss. Killing the link drops
//! everything in flight; closing it delivers end-of-file after the last byte.

use super::rng::Rng;
use std::collections::VecDeque;
use tandem_core::Instant;

/// Shape of one link.
#[derive(Clone, Debug)]
pub struct LinkParams {
    pub latency_us: u64,
    pub jitter_us: u64,
    /// Bytes per second; 0 = unlimited.
    pub bandwidth: u64,
    /// Largest chunk handed to the receiver at once.
    pub max_chunk: usize,
    /// Time windows `[start, end)` during which nothing is delivered (held, then delivered).
    pub partitions: Vec<(Instant, Instant)>,
}

pub struct Chunk {
    pub at: Instant,
    pub data: Vec<u8>,
}

pub struct Link {
    pub p: LinkParams,
    pub rng: Rng,
    pub q: VecDeque<Chunk>,
    /// Delivery time of the last chunk queued (deliveries never reorder).
    last_at: Instant,
    /// When the bottleneck is free to serialize the next byte.
    free_at: Instant,
    /// The sender closed its side: EOF follows the last chunk.
    pub fin: Option<Instant>,
    /// The connection was killed: nothing more is carried.
    pub cut: bool,
    /// Bytes ever delivered.
    pub delivered: u64,
}

impl Link {
    pub fn new(p: LinkParams, rng: Rng) -> Self {
        Link {
            p,
            rng,
            q: VecDeque::new(),
            last_at: Instant::ZERO,
            free_at: Instant::ZERO,
            fin: None,
            cut: false,
            delivered: 0,
        }
    }

    fn hold(&self, t: Instant) -> Instant {
        let mut t = t;
        // Windows may overlap or chain; apply until stable.
        loop {
            let mut moved = false;
            for &(s, e) in &self.p.partitions {
                if t >= s && t < e {
                    t = e;
                    moved = true;
                }
            }
            if !moved {
                return t;
            }
        }
    }

    /// The sender wrote `data` at `now`.
    pub fn send(&mut self, now: Instant, data: &[u8]) {
        if self.cut || self.fin.is_some() {
            return;
        }
        let mut off = 0;
        while off < data.len() {
            let rest = data.len() - off;
            let n = if self.rng.chance(1, 4) {
                rest.min(self.p.max_chunk)
            } else {
                rest.min(1 + self.rng.below(self.p.max_chunk as u64) as usize)
            };
            let ser = (n as u64 * 1_000_000).checked_div(self.p.bandwidth).unwrap_or(0);
            let start = self.free_at.max(now);
            self.free_at = Instant::from_micros(start.as_micros() + ser);
            let jitter = self.rng.below(self.p.jitter_us + 1);
            let t = Instant::from_micros(self.free_at.as_micros() + self.p.latency_us + jitter);
            let t = self.hold(t).max(self.last_at);
            self.last_at = t;
            self.q.push_back(Chunk { at: t, data: data[off..off + n].to_vec() });
            off += n;
        }
    }

    /// The sender closed its side of the transport at `now`: EOF after the last byte.
    pub fn close(&mut self, now: Instant) {
        if self.cut || self.fin.is_some() {
            return;
        }
        let t = Instant::from_micros(now.as_micros() + self.p.latency_us);
        let t = self.hold(t).max(self.last_at);
        self.last_at = t;
        self.fin = Some(t);
    }

    /// Kill: bytes in flight are lost, nothing more is carried.
    pub fn kill(&mut self) {
        self.cut = true;
        self.q.clear();
        self.fin = None;
    }

    /// When something (a chunk, or EOF) is next due at the receiver.
    pub fn next_due(&self) -> Option<Instant> {
        match self.q.front() {
            Some(c) => Some(c.at),
            None => self.fin,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }
}
