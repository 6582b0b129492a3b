//! [`Options`]: who this side is, what it serves and how its connections are configured.

use core::time::Duration;

use tandem_core::Config;

use crate::router::Router;

/// Default largest SEQPACKET datagram: 64 KiB.
pub const DEFAULT_MAX_DATAGRAM: u32 = 64 * 1024;
/// Default largest UDP datagram: 1200 bytes (fits every IPv6 path without fragmentation).
pub const DEFAULT_MAX_UDP_DATAGRAM: u32 = 1200;
/// Default time allowed for connecting (transport and handshake): 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default delay before the first reconnection attempt of a suspended session: 10 ms.
pub const DEFAULT_RECONNECT_INITIAL: Duration = Duration::from_millis(10);
/// Default longest delay between reconnection attempts: 2 s.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(2);
/// Default growth factor of the reconnection delay: 2.
pub const DEFAULT_RECONNECT_MULTIPLIER: f64 = 2.0;
/// Default random spread of each reconnection delay: ±50 %.
pub const DEFAULT_RECONNECT_JITTER: f64 = 0.5;
/// Default most sessions a server keeps suspended (waiting for their client) at once: 1024.
pub const DEFAULT_MAX_SUSPENDED_SESSIONS: usize = 1024;
/// Default most UDP associations (remote addresses) a server serves at once: 1024.
pub const DEFAULT_MAX_ASSOCIATIONS: usize = 1024;

/// How a client retries a suspended session (see [`Options::reconnect_backoff`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Backoff {
    pub(crate) initial: Duration,
    pub(crate) max: Duration,
    pub(crate) multiplier: f64,
    pub(crate) jitter: f64,
}

impl Backoff {
    /// The delay before attempt `n` (0-based), before jitter: `initial · multiplier^n`, capped.
    pub(crate) fn delay(&self, attempt: u32, random: f64) -> Duration {
        let base = self.initial.as_secs_f64() * self.multiplier.powi(attempt.min(64) as i32);
        let base = base.min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter * (2.0 * random - 1.0);
        let d = (base * spread).clamp(0.0, self.max.as_secs_f64().max(base));
        // Never 0: a refused connection fails at once, and attempts must not spin.
        Duration::try_from_secs_f64(d).unwrap_or(self.max).max(Duration::from_millis(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jitters_within_bounds() {
        let b = Options::new("x").backoff;
        assert_eq!(b.delay(0, 0.5), DEFAULT_RECONNECT_INITIAL);
        assert_eq!(b.delay(1, 0.5), DEFAULT_RECONNECT_INITIAL * 2);
        assert_eq!(b.delay(40, 0.5), DEFAULT_RECONNECT_MAX);
        assert_eq!(b.delay(u32::MAX, 0.5), DEFAULT_RECONNECT_MAX);
        assert_eq!(b.delay(0, 0.0), DEFAULT_RECONNECT_INITIAL / 2);
        assert!(b.delay(0, 0.999) <= DEFAULT_RECONNECT_INITIAL * 3 / 2);
        assert!(b.delay(40, 0.999) <= DEFAULT_RECONNECT_MAX);
        let z = Options::new("x").reconnect_backoff(Duration::ZERO, Duration::ZERO, f64::NAN).backoff;
        assert_eq!(z.delay(3, 0.3), Duration::from_millis(1));
        let j = Options::new("x").reconnect_jitter(7.0).backoff;
        assert_eq!(j.jitter, 1.0);
    }
}

/// Settings shared by [`connect`](crate::connect) and [`Server::bind`](crate::Server::bind).
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) name: String,
    pub(crate) config: Config,
    pub(crate) router: Router,
    pub(crate) remove_stale_socket: bool,
    /// `None`: the transport's default (SEQPACKET 64 KiB, UDP 1200 bytes).
    pub(crate) max_datagram: Option<u32>,
    pub(crate) connect_timeout: Duration,
    pub(crate) resumption: bool,
    pub(crate) backoff: Backoff,
    pub(crate) max_suspended_sessions: usize,
    pub(crate) max_associations: usize,
}

impl Options {
    /// Options for an endpoint announcing itself as `name` (a server tracks peers by name),
    /// serving nothing, with the core's default [`Config`].
    pub fn new(name: impl Into<String>) -> Self {
        Options {
            name: name.into(),
            config: Config::default(),
            router: Router::new(),
            remove_stale_socket: false,
            max_datagram: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            resumption: true,
            backoff: Backoff {
                initial: DEFAULT_RECONNECT_INITIAL,
                max: DEFAULT_RECONNECT_MAX,
                multiplier: DEFAULT_RECONNECT_MULTIPLIER,
                jitter: DEFAULT_RECONNECT_JITTER,
            },
            max_suspended_sessions: DEFAULT_MAX_SUSPENDED_SESSIONS,
            max_associations: DEFAULT_MAX_ASSOCIATIONS,
        }
    }

    /// The methods this side serves (the peer may call them once connected).
    pub fn router(mut self, router: Router) -> Self {
        self.router = router;
        self
    }

    /// Protocol limits and timers (keepalive, idle timeout, drain timeout, …). Its `transport`
    /// is set by the runtime from the address.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Listening on a Unix socket path that exists: remove it first when nothing answers on it
    /// (a stale socket left by a crash). Default: refuse to start.
    pub fn remove_stale_socket(mut self, yes: bool) -> Self {
        self.remove_stale_socket = yes;
        self
    }

    /// Largest datagram on `unix+seqpacket://` (default [`DEFAULT_MAX_DATAGRAM`]) and on
    /// `udp://` (default [`DEFAULT_MAX_UDP_DATAGRAM`]); at least 1200 bytes.
    pub fn max_datagram(mut self, bytes: u32) -> Self {
        self.max_datagram = Some(bytes);
        self
    }

    /// The largest datagram for a packet transport (`udp`: UDP, otherwise SEQPACKET).
    pub(crate) fn datagram_size(&self, udp: bool) -> u32 {
        self.max_datagram.unwrap_or(if udp { DEFAULT_MAX_UDP_DATAGRAM } else { DEFAULT_MAX_DATAGRAM })
    }

    /// Session resumption (SPEC.md §13) on stream and SEQPACKET transports, on by default
    /// (never on `udp://`). A server with it offers every connection a session token and
    /// keeps a suspended session for `Config::session_grace` after its transport is lost; a
    /// client with it reconnects by itself (see [`reconnect_backoff`](Self::reconnect_backoff))
    /// and its calls in flight complete exactly once. Off: a lost transport ends the
    /// connection and its calls fail with UNAVAILABLE.
    pub fn resumption(mut self, on: bool) -> Self {
        self.resumption = on;
        self
    }

    /// How a client retries a suspended session: the first attempt waits `initial` (default
    /// [`DEFAULT_RECONNECT_INITIAL`]), each failed attempt multiplies the wait by `multiplier`
    /// (default [`DEFAULT_RECONNECT_MULTIPLIER`], at least 1) up to `max` (default
    /// [`DEFAULT_RECONNECT_MAX`]). Each attempt may take [`connect_timeout`](Self::connect_timeout).
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration, multiplier: f64) -> Self {
        self.backoff.initial = initial;
        self.backoff.max = max.max(initial);
        self.backoff.multiplier = if multiplier.is_finite() { multiplier.max(1.0) } else { 1.0 };
        self
    }

    /// Random spread of each reconnection wait, as a fraction: 0.5 (the default,
    /// [`DEFAULT_RECONNECT_JITTER`]) waits between 50 % and 150 % of the nominal delay, so
    /// that clients cut off together do not come back together. Clamped to 0..=1.
    pub fn reconnect_jitter(mut self, fraction: f64) -> Self {
        self.backoff.jitter = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
        self
    }

    /// Server: the most sessions kept suspended at once (default
    /// [`DEFAULT_MAX_SUSPENDED_SESSIONS`]). A session suspended beyond this limit is ended at
    /// once (logged as a warning, counted by [`Server::sessions_dropped`](crate::Server::sessions_dropped));
    /// its client gets a new session when it comes back and its old calls fail UNAVAILABLE.
    pub fn max_suspended_sessions(mut self, n: usize) -> Self {
        self.max_suspended_sessions = n;
        self
    }

    /// Server on `udp://`: the most associations (remote addresses) served at once (default
    /// [`DEFAULT_MAX_ASSOCIATIONS`]). Beyond it, HELLOs from new addresses are dropped and
    /// counted by [`Server::hellos_dropped`](crate::Server::hellos_dropped).
    pub fn max_associations(mut self, n: usize) -> Self {
        self.max_associations = n;
        self
    }

    /// Time allowed for [`connect`](crate::connect), transport and handshake together
    /// (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
}
