//! The runtime's clock: core [`Instant`]s are microseconds since a fixed `std::time::Instant`.

use std::sync::OnceLock;
use std::time::Duration;
use tandem_core::Instant;

fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// The current time on the core's clock.
pub(crate) fn now() -> Instant {
    Instant::from_micros(u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// A core instant as a `std::time::Instant`.
pub(crate) fn to_std(t: Instant) -> std::time::Instant {
    epoch() + Duration::from_micros(t.as_micros())
}

/// Time from `now` until `t`, rounded up to whole milliseconds (for `poll(2)`), at least 1 ms.
pub(crate) fn millis_until(now: Instant, t: Instant) -> u64 {
    let us = t.as_micros().saturating_sub(now.as_micros());
    us.div_ceil(1000).max(1)
}
