//! The dialer's side of a connection's life: connecting, losing the transport, trying again with
//! capped, jittered exponential backoff, and what to do when the session cannot be resumed.
//! Sans-IO: the runtime dials when [`Dialer::attempt_due`] says so and reports what happened.

use core::time::Duration;

use crate::time::Instant;

/// How a dialer reconnects. Every field has a documented default.
#[derive(Clone, Debug, PartialEq)]
pub struct ReconnectPolicy {
    /// Delay before the first attempt after a loss. Default 10 ms.
    pub initial: Duration,
    /// Largest delay between attempts. Default 2 s.
    pub max: Duration,
    /// Factor by which the delay grows after each failed attempt (≥ 1). Default 2.
    pub multiplier: f64,
    /// Each delay is multiplied by a random factor in `1 ± jitter` (0..=1), so that many
    /// clients do not reconnect in lockstep. Default 0.5.
    pub jitter: f64,
    /// When the session cannot be resumed (the acceptor declined: it restarted, or the session
    /// expired or was evicted), continue with the fresh session it offered (true) or close
    /// (false). Exchanges of the old session fail UNAVAILABLE either way. Default true.
    pub fresh_session: bool,
    /// Give up after this many failed attempts in a row (`None`: keep trying for as long as the
    /// session lives, that is its grace period). Default `None`.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(2),
            multiplier: 2.0,
            jitter: 0.5,
            fresh_session: true,
            max_attempts: None,
        }
    }
}

/// Where a dialer's link is, as its application sees it (a runtime publishes every change).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Dialing and handshaking; `attempt` counts from 1 (the first connect, or the reconnection
    /// attempts since the last loss).
    Connecting {
        /// Attempt number.
        attempt: u32,
    },
    /// Connected; `resumed` when this transport resumed the session (rather than starting it).
    Connected {
        /// Whether a session was resumed on this transport.
        resumed: bool,
    },
    /// The transport was lost at `since`; the session is suspended and the next attempt is due
    /// at `next` after `failures` failed attempts.
    Suspended {
        /// When the transport was lost.
        since: Instant,
        /// Failed attempts since then.
        failures: u32,
        /// When the next attempt starts.
        next: Instant,
    },
    /// Over: the session ended and no new one will be opened.
    Closed,
}

/// A dialer's link lifecycle and reconnection schedule.
#[derive(Clone, Debug)]
pub struct Dialer {
    policy: ReconnectPolicy,
    state: LinkState,
    /// Delay before the next attempt, before jitter.
    delay: Duration,
    /// xorshift64* state for the jitter (not for anything secret).
    rng: u64,
}

impl Dialer {
    /// A dialer whose first connection attempt is in progress. `seed` feeds the jitter (any
    /// value; the runtime passes a random one so that clients differ).
    pub fn new(policy: ReconnectPolicy, seed: u64) -> Self {
        let delay = policy.initial;
        Dialer { policy, state: LinkState::Connecting { attempt: 1 }, delay, rng: seed | 1 }
    }

    /// The policy.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Where the link is.
    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The handshake completed on the current transport (`resumed`: it resumed the session).
    pub fn connected(&mut self, resumed: bool) {
        if self.state == LinkState::Closed {
            return;
        }
        self.state = LinkState::Connected { resumed };
        self.delay = self.policy.initial;
    }

    /// The transport was lost at `now` and the session is suspended: the next attempt is
    /// scheduled. Returns when it is due.
    pub fn lost(&mut self, now: Instant) -> Option<Instant> {
        match self.state {
            LinkState::Closed => None,
            LinkState::Suspended { next, .. } => Some(next),
            LinkState::Connecting { attempt } if attempt > 1 => self.attempt_failed(now),
            _ => {
                self.delay = self.policy.initial;
                let next = now + self.jittered();
                self.state = LinkState::Suspended { since: now, failures: 0, next };
                Some(next)
            }
        }
    }

    /// When the runtime must call [`attempt_due`](Self::attempt_due) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            LinkState::Suspended { next, .. } => Some(next),
            _ => None,
        }
    }

    /// Whether a reconnection attempt starts now: if so, the state is
    /// [`LinkState::Connecting`] and the runtime dials (then reports [`connected`](Self::connected)
    /// or [`attempt_failed`](Self::attempt_failed)).
    pub fn attempt_due(&mut self, now: Instant) -> bool {
        match self.state {
            LinkState::Suspended { next, failures, since } if now >= next => {
                let _ = since;
                self.state = LinkState::Connecting { attempt: failures + 1 };
                true
            }
            _ => false,
        }
    }

    /// The attempt in progress failed (connect refused, timed out, handshake failed). Schedules
    /// the next one, or closes when `max_attempts` is reached (returns `None` then).
    pub fn attempt_failed(&mut self, now: Instant) -> Option<Instant> {
        let failures = match self.state {
            LinkState::Connecting { attempt } => attempt,
            LinkState::Suspended { failures, .. } => failures + 1,
            LinkState::Connected { .. } => 1,
            LinkState::Closed => return None,
        };
        if self.policy.max_attempts.is_some_and(|m| failures >= m) {
            self.state = LinkState::Closed;
            return None;
        }
        let since = match self.state {
            LinkState::Suspended { since, .. } => since,
            _ => now,
        };
        self.delay = self.delay.mul_f64(self.policy.multiplier.max(1.0)).min(self.policy.max);
        let next = now + self.jittered();
        self.state = LinkState::Suspended { since, failures, next };
        Some(next)
    }

    /// The acceptor would not resume the session (declined, or the session expired here).
    /// Returns whether to continue with a fresh session, per
    /// [`ReconnectPolicy::fresh_session`]; otherwise the link is closed.
    pub fn not_resumed(&mut self) -> bool {
        if self.policy.fresh_session && self.state != LinkState::Closed {
            true
        } else {
            self.state = LinkState::Closed;
            false
        }
    }

    /// The session ended for good (closed by either side, or given up).
    pub fn closed(&mut self) {
        self.state = LinkState::Closed;
    }

    /// The current delay with jitter applied; never zero (no spinning on refused connects).
    fn jittered(&mut self) -> Duration {
        let j = self.policy.jitter.clamp(0.0, 1.0);
        let unit = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + j * (2.0 * unit - 1.0);
        self.delay.mul_f64(factor.max(0.0)).max(Duration::from_millis(1))
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
