//! The dialer rule (SPEC.md §16.2) and the backoff's jitter.

use core::time::Duration;

/// FNV-1a, 64 bits, over the concatenation of `parts` (offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3): the hash of the dialer rule, simple enough for any language to reproduce.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Whether the member named `me` dials the member named `other` (SPEC.md §16.2): when
/// `(fnv1a64(me ‖ other), me) < (fnv1a64(other ‖ me), other)`. Exactly one of `dials(a, b)` and
/// `dials(b, a)` is true for distinct names; neither for equal ones.
pub fn dials(me: &[u8], other: &[u8]) -> bool {
    let mine = fnv1a64(&[me, other]);
    let theirs = fnv1a64(&[other, me]);
    (mine, me) < (theirs, other)
}

/// The jitter of the backoff: SplitMix64 seeded by the caller (not for anything secret).
#[derive(Clone, Debug)]
pub(super) struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        Jitter(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A delay drawn uniformly from `[base × (100 − percent)/100, base]`, at least 1 ms.
    pub fn draw(&mut self, base: Duration, percent: u8) -> Duration {
        let us = u64::try_from(base.as_micros()).unwrap_or(u64::MAX);
        let spread = (u128::from(us) * u128::from(percent.min(100)) / 100) as u64;
        let lo = us - spread;
        let span = spread.saturating_add(1);
        let us = lo.saturating_add(self.next() % span);
        Duration::from_micros(us).max(Duration::from_millis(1))
    }
}
