//! Datagram mode's building blocks (SPEC.md §14): the RFC 6298 round-trip estimator, the
//! duplicate window, the retransmission timer of one reliably sent frame, and the copies of our
//! HELLO and CLOSE. The connection logic that uses them is `datagram.rs`.

use core::time::Duration;

use crate::frame::MAX_REASON_LEN;
use crate::time::Instant;

/// The duplicate window: W = 1024 ids of the peer's parity (SPEC.md §14.5).
pub(crate) const WINDOW: u64 = 1024;
// Times in microseconds (u64): the estimator runs on every acknowledged request, and u64
// arithmetic on microseconds is what a 32-bit device does cheaply (no `Duration`
// normalisation of seconds and nanoseconds, no 64-bit divisions but by powers of two).
/// RFC 6298 clock granularity G: 1 ms.
const G_US: u64 = 1_000;
/// Initial RTO: 1 s.
pub(crate) const RTO_INITIAL_US: u64 = 1_000_000;
/// Lower clamp of the RTO: 200 ms.
pub(crate) const RTO_MIN_US: u64 = 200_000;
/// Upper clamp of the RTO and of every backed-off interval: 60 s.
pub(crate) const RTO_MAX_US: u64 = 60_000_000;

/// RFC 6298 round-trip estimator (SPEC.md §14.4), in microseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rtt {
    srtt: Option<u64>,
    rttvar: u64,
    rto: u64,
}

impl Rtt {
    pub(crate) fn new() -> Self {
        Rtt { srtt: None, rttvar: 0, rto: RTO_INITIAL_US }
    }

    /// Adds a sample R in microseconds (never from a retransmitted frame: Karn's rule is the
    /// caller's). A sample is capped at 2^40 µs (12.7 days), far beyond any real round trip, so
    /// that `7·SRTT` and `4·RTTVAR` never overflow.
    pub(crate) fn sample_us(&mut self, r: u64) {
        let r = r.min(1 << 40);
        let srtt = match self.srtt {
            None => {
                self.rttvar = r / 2;
                r
            }
            Some(s) => {
                let diff = s.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                (s * 7 + r) / 8
            }
        };
        self.srtt = Some(srtt);
        self.rto = (srtt + G_US.max(self.rttvar * 4)).clamp(RTO_MIN_US, RTO_MAX_US);
    }

    /// The current retransmission timeout in microseconds.
    pub(crate) fn rto_us(&self) -> u64 {
        self.rto
    }

    /// The current retransmission timeout.
    pub(crate) fn rto(&self) -> Duration {
        crate::time::micros_to_duration(self.rto)
    }
}

/// Where an id lies relative to the duplicate window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pos {
    /// Above H (or nothing seen yet).
    Above,
    /// Inside the window; whether it was seen.
    In(bool),
    /// Below the window.
    Below,
}

/// H and the seen-set of the W ids H, H−2, …, H−2(W−1), as a ring bitmap.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    high: Option<u64>,
    bits: [u64; (WINDOW / 64) as usize],
}

impl Window {
    pub(crate) fn new() -> Self {
        Window { high: None, bits: [0; (WINDOW / 64) as usize] }
    }
    fn bit(id: u64) -> (usize, u64) {
        let k = (id / 2) % WINDOW;
        ((k / 64) as usize, 1 << (k % 64))
    }
    pub(crate) fn high(&self) -> Option<u64> {
        self.high
    }
    pub(crate) fn pos(&self, id: u64) -> Pos {
        match self.high {
            Some(h) if id <= h => {
                if (h - id) / 2 < WINDOW {
                    let (w, m) = Self::bit(id);
                    Pos::In(self.bits[w] & m != 0)
                } else {
                    Pos::Below
                }
            }
            _ => Pos::Above,
        }
    }
    /// Marks `id` seen, advancing H (and clearing the ids that enter the window) if above.
    pub(crate) fn mark(&mut self, id: u64) {
        match self.high {
            Some(h) if id <= h => {}
            Some(h) if (id - h) / 2 < WINDOW => {
                let mut x = h + 2;
                while x < id {
                    let (w, m) = Self::bit(x);
                    self.bits[w] &= !m;
                    x += 2;
                }
                self.high = Some(id);
            }
            _ => {
                self.bits = [0; (WINDOW / 64) as usize];
                self.high = Some(id);
            }
        }
        if self.pos(id) != Pos::Below {
            let (w, m) = Self::bit(id);
            self.bits[w] |= m;
        }
    }
    /// Ids marked seen (for tests: at most W).
    pub(crate) fn seen_count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }
}

/// Our HELLO, at most 1200 bytes on a datagram transport (SPEC.md §4.1).
pub(crate) const HELLO_MAX: usize = 1200;
/// Our CLOSE: header, status and a reason of at most `MAX_REASON_LEN` bytes.
pub(crate) const CLOSE_MAX: usize = MAX_REASON_LEN + 32;

/// A copy of one of our frames: a vector with `alloc`, an inline array of `N` bytes without.
#[derive(Debug)]
pub(crate) struct Bytes<const N: usize> {
    #[cfg(feature = "alloc")]
    v: alloc::vec::Vec<u8>,
    #[cfg(not(feature = "alloc"))]
    buf: [u8; N],
    #[cfg(not(feature = "alloc"))]
    len: usize,
}

impl<const N: usize> Bytes<N> {
    pub(crate) fn new() -> Self {
        #[cfg(feature = "alloc")]
        return Bytes { v: alloc::vec::Vec::new() };
        #[cfg(not(feature = "alloc"))]
        return Bytes { buf: [0; N], len: 0 };
    }
    pub(crate) fn get(&self) -> &[u8] {
        #[cfg(feature = "alloc")]
        return &self.v;
        #[cfg(not(feature = "alloc"))]
        return &self.buf[..self.len];
    }
    /// Stores what `write` puts into a buffer of `n` bytes (nothing if `n` exceeds `N`).
    pub(crate) fn fill(&mut self, n: usize, write: impl FnOnce(&mut [u8]) -> usize) {
        #[cfg(feature = "alloc")]
        {
            let _ = N;
            self.v.clear();
            self.v.resize(n, 0);
            let k = write(&mut self.v);
            self.v.truncate(k);
        }
        #[cfg(not(feature = "alloc"))]
        {
            self.len = if n <= N { write(&mut self.buf[..n]).min(n) } else { 0 };
        }
    }
    pub(crate) fn set(&mut self, b: &[u8]) {
        self.fill(b.len(), |buf| {
            buf.copy_from_slice(b);
            b.len()
        });
    }
}

/// Retransmission timer of one reliably sent frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retx {
    /// First transmission (for the RTT sample).
    pub(crate) sent: Instant,
    /// Next retransmission.
    pub(crate) next: Instant,
    /// Current interval in microseconds (doubles after each retransmission, capped at 60 s).
    pub(crate) interval_us: u64,
    /// Retransmitted at least once (no RTT sample then: Karn).
    pub(crate) again: bool,
}

impl Retx {
    pub(crate) fn new(now: Instant, rto_us: u64) -> Self {
        Retx { sent: now, next: now.plus_us(rto_us), interval_us: rto_us, again: false }
    }
    pub(crate) fn fired(&mut self, now: Instant) {
        self.again = true;
        self.interval_us = (self.interval_us * 2).min(RTO_MAX_US);
        self.next = now.plus_us(self.interval_us);
    }
}
