//! The runtimes' clock (the core's [`Instant`] as microseconds since the first use), their
//! randomness (the operating system's CSPRNG through `getrandom`), and the one thing this crate
//! asks of a runtime's timers: [`SleepUntil`]. (Layer 0.)

use core::future::Future;
use core::pin::Pin;
use core::time::Duration;
use std::sync::OnceLock;

use tandem_core::endpoint::TOKEN_LEN;
use tandem_core::Instant;

fn epoch() -> std::time::Instant {
    static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

std::thread_local! {
    /// The instant a driver turn on this thread started with (see [`hold`]).
    static HELD: core::cell::Cell<Option<std::time::Instant>> = const { core::cell::Cell::new(None) };
}

/// Now, on the core's clock: within a driver turn (see `hold`), the instant the turn started.
pub fn now() -> Instant {
    from_std(instant())
}

/// Now on the std clock: within a driver turn (see `hold`), the instant the turn started.
pub fn instant() -> std::time::Instant {
    HELD.with(|h| h.get()).unwrap_or_else(std::time::Instant::now)
}

/// Now, read from the system clock even within a driver turn: for durations measured inside one
/// (an inline handler's running time).
pub fn fresh() -> Instant {
    from_std(std::time::Instant::now())
}

/// Reads the clock once for a driver turn: until the returned guard is dropped, [`now`] and
/// [`instant`] on this thread return that reading.
///
/// A turn handles what one wake-up brought (a bounded number of rounds of reading, events and
/// writing) in microseconds, and read the clock up to a dozen times doing it — about a quarter of
/// the ~27 readings of a sequential call's both ends, at ~20 ns each and more right after a
/// context switch. What a turn does is stamped with its start: a timer computed in it is due at
/// most the turn's length early (conservative for deadlines and keepalives), a timer checked in
/// it fires at most the turn's length late. Inline handlers run within a turn and must be quick
/// (they hold the I/O thread); one that is not delays the rest of its turn anyway.
pub(crate) fn hold() -> Held {
    Held(HELD.with(|h| h.replace(Some(std::time::Instant::now()))))
}

/// The guard of [`hold`]: restores what was held before (nothing, outside a turn).
#[must_use = "the clock is held until the guard is dropped"]
pub(crate) struct Held(Option<std::time::Instant>);

impl Drop for Held {
    fn drop(&mut self) {
        HELD.with(|h| h.set(self.0));
    }
}

/// A std instant on the core's clock (instants before the clock's start are its start).
pub fn from_std(t: std::time::Instant) -> Instant {
    Instant::from_micros(u64::try_from(t.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX))
}

/// The core instant `t` on the std clock (`None`: too far away to represent).
pub fn to_std(t: Instant) -> Option<std::time::Instant> {
    epoch().checked_add(Duration::from_micros(t.as_micros()))
}

/// A new session token (SPEC.md §13.1): 16 bytes from the OS CSPRNG, `None` if it failed (the
/// connection is then offered no resumption rather than a guessable token).
pub fn token() -> Option<[u8; TOKEN_LEN]> {
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
pub fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return now().as_micros() ^ u64::from(std::process::id()).rotate_left(32);
    }
    u64::from_le_bytes(b)
}

/// A runtime's timer: completes at (or soon after) the instant it was made for.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How the shared futures wait for an instant (an exchange's deadline while it waits for a
/// slot, a shutdown's grace period, a server's wait for a peer): each runtime passes its own
/// when it creates a connection or a hub. An async runtime returns its timer future
/// (tandem-smol: `async_io::Timer::at`); a blocking runtime returns a future that its
/// `block_on` understands, e.g. one that records its instant in a thread-local which
/// `block_on` parks until (`std::thread::park_timeout`) and that is ready once it has passed.
/// Only waits that have a time limit create one.
pub type SleepUntil = fn(std::time::Instant) -> Sleep;
