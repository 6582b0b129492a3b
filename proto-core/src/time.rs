//! Time as the caller sees it: a monotonic instant in microseconds, passed into every input.
//!
//! The core never reads a clock. Runtimes convert their monotonic clock (e.g. the elapsed time
//! since a fixed `std::time::Instant`); tests use a fake clock that they advance by hand.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an arbitrary epoch chosen by the caller.
///
/// It must never go backwards across calls to one connection; the core tolerates a stale `now`
/// (it treats time as not having advanced) but never panics on one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(0);
    /// The far future: used for "never".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `us` microseconds after the epoch.
    pub const fn from_micros(us: u64) -> Self {
        Instant(us)
    }

    /// An instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1000))
    }

    /// Microseconds since the epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        micros_to_duration(self.0.saturating_sub(earlier.0))
    }

    /// `self` plus `us` microseconds, saturating at [`Instant::MAX`] (no `Duration` arithmetic:
    /// the core's own timers on small targets).
    #[cfg_attr(not(feature = "datagram"), allow(dead_code))]
    pub(crate) const fn plus_us(self, us: u64) -> Instant {
        Instant(self.0.saturating_add(us))
    }

    /// Microseconds from `earlier` to `self`, zero if `earlier` is later.
    #[cfg_attr(not(feature = "datagram"), allow(dead_code))]
    pub(crate) const fn micros_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX)))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

/// `Duration::from_micros(us)`. On 64-bit targets that is the standard constructor (a
/// multiplication by the divisor's inverse); elsewhere see [`micros_to_duration_narrow`].
#[cfg(target_pointer_width = "64")]
#[inline]
pub(crate) fn micros_to_duration(us: u64) -> Duration {
    Duration::from_micros(us)
}

/// `Duration::from_micros(us)`.
#[cfg(not(target_pointer_width = "64"))]
#[inline]
pub(crate) fn micros_to_duration(us: u64) -> Duration {
    micros_to_duration_narrow(us)
}

/// `Duration::from_micros(us)` without a 64-bit division: on a 32-bit device that division is
/// a library routine of nearly 900 bytes, and this is the only place the core needs it. The
/// seconds are `(us / 64) / 15625`, computed by long division in 16-bit digits (each step
/// divides a number below 2^30 by 15625 in `u32`). On 64-bit hosts the loop costs more than the
/// standard constructor (1.7 % of a pipelined call's CPU in the runtimes' profile), so it is
/// used only on narrower targets — and by the test that compares the two everywhere.
#[cfg_attr(target_pointer_width = "64", allow(dead_code))]
pub(crate) fn micros_to_duration_narrow(us: u64) -> Duration {
    const D: u32 = 15_625; // 1_000_000 / 64
    let n = us >> 6;
    let (mut q, mut r) = (0u64, 0u32);
    for shift in [48u32, 32, 16, 0] {
        let cur = (r << 16) | ((n >> shift) as u32 & 0xffff);
        q = (q << 16) | u64::from(cur / D);
        r = cur % D;
    }
    // us - q·10^6 < 10^6: the microseconds within the second.
    let sub = (us - q * 1_000_000) as u32;
    Duration::new(q, sub * 1000)
}

#[cfg(test)]
mod tests {
    use super::{micros_to_duration, micros_to_duration_narrow};
    use core::time::Duration;

    #[test]
    fn micros_to_duration_is_from_micros() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let edges =
            [0, 1, 63, 64, 999_999, 1_000_000, 1_000_001, u64::from(u32::MAX), u64::MAX - 1, u64::MAX];
        for us in edges.into_iter().chain((0..100_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x >> (x % 64)
        })) {
            assert_eq!(micros_to_duration_narrow(us), Duration::from_micros(us), "{us}");
            assert_eq!(micros_to_duration(us), Duration::from_micros(us), "{us}");
        }
    }
}
