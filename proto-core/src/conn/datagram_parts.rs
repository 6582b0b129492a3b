//! Datagram mode's building blocks (SPEC.md §14): the RFC 6298 round-trip estimator, the
//! duplicate window, the retransmission timer of one reliably sent frame, and the copies of our
//! HELLO and CLOSE. The connection logic that uses them is `datagram.rs`.

use core::time::Duration;

use crate::frame::MAX_REASON_LEN;
use crate::time::Instant;

/// The duplicate window: W = 1024 ids of the peer's parity (SPEC.md §14.5).
pub(crate) const WINDOW: u64 = 1024;
/// RFC 6298 clock granularity G.
const G: Duration = Duration::from_millis(1);
/// Initial RTO.
pub(crate) const RTO_INITIAL: Duration = Duration::from_secs(1);
/// Lower clamp of the RTO.
pub(crate) const RTO_MIN: Duration = Duration::from_millis(200);
/// Upper clamp of the RTO and of every backed-off interval.
pub(crate) const RTO_MAX: Duration = Duration::from_secs(60);

/// RFC 6298 round-trip estimator (SPEC.md §14.4).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
}

impl Rtt {
    pub(crate) fn new() -> Self {
        Rtt { srtt: None, rttvar: Duration::ZERO, rto: RTO_INITIAL }
    }

    /// Adds a sample R (never from a retransmitted frame: Karn's rule is the caller's).
    pub(crate) fn sample(&mut self, r: Duration) {
        let srtt = match self.srtt {
            None => {
                self.rttvar = r / 2;
                r
            }
            Some(s) => {
                let diff = if s > r { s - r } else { r - s };
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                (s * 7 + r) / 8
            }
        };
        self.srtt = Some(srtt);
        self.rto = (srtt + G.max(self.rttvar * 4)).clamp(RTO_MIN, RTO_MAX);
    }

    /// The current retransmission timeout.
    pub(crate) fn rto(&self) -> Duration {
        self.rto
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
    /// Current interval (doubles after each retransmission, capped at 60 s).
    pub(crate) interval: Duration,
    /// Retransmitted at least once (no RTT sample then: Karn).
    pub(crate) again: bool,
}

impl Retx {
    pub(crate) fn new(now: Instant, rto: Duration) -> Self {
        Retx { sent: now, next: now + rto, interval: rto, again: false }
    }
    pub(crate) fn fired(&mut self, now: Instant) {
        self.again = true;
        self.interval = (self.interval * 2).min(RTO_MAX);
        self.next = now + self.interval;
    }
}
