//! The runtime's clock (the core's [`Instant`] as microseconds since the first use) and its
//! randomness (the operating system's CSPRNG through `getrandom`). (Layer 0.)

use core::time::Duration;
use std::sync::OnceLock;

use tandem_core::endpoint::TOKEN_LEN;
use tandem_core::Instant;

fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// Now, on the core's clock.
pub(crate) fn now() -> Instant {
    from_std(std::time::Instant::now())
}

/// A std instant on the core's clock (instants before the clock's start are its start).
pub(crate) fn from_std(t: std::time::Instant) -> Instant {
    Instant::from_micros(u64::try_from(t.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX))
}

/// The core instant `t` on the std clock (`None`: too far away to represent).
pub(crate) fn to_std(t: Instant) -> Option<std::time::Instant> {
    epoch().checked_add(Duration::from_micros(t.as_micros()))
}

/// A new session token (SPEC.md §13.1): 16 bytes from the OS CSPRNG, `None` if it failed (the
/// connection is then offered no resumption rather than a guessable token).
pub(crate) fn token() -> Option<[u8; TOKEN_LEN]> {
    let mut t = [0u8; TOKEN_LEN];
    match getrandom::fill(&mut t) {
        Ok(()) => Some(t),
        Err(e) => {
            tracing::error!(error = %e, "the OS random source failed: no session token, no resumption");
            None
        }
    }
}

/// A seed for the reconnection jitter (not a secret: the clock is a fine fallback).
pub(crate) fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return now().as_micros() ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(b)
}
