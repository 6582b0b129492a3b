//! [`Options`]: who this side is, what it serves and how its connections are configured.

use core::time::Duration;

use tandem_core::Config;

use crate::router::Router;

/// Default largest SEQPACKET datagram: 64 KiB.
pub const DEFAULT_MAX_DATAGRAM: u32 = 64 * 1024;
/// Default time allowed for connecting (transport and handshake): 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings shared by [`connect`](crate::connect) and [`Server::bind`](crate::Server::bind).
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) name: String,
    pub(crate) config: Config,
    pub(crate) router: Router,
    pub(crate) remove_stale_socket: bool,
    pub(crate) max_datagram: u32,
    pub(crate) connect_timeout: Duration,
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
            max_datagram: DEFAULT_MAX_DATAGRAM,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
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

    /// Largest datagram on `unix+seqpacket://` (default [`DEFAULT_MAX_DATAGRAM`]).
    pub fn max_datagram(mut self, bytes: u32) -> Self {
        self.max_datagram = bytes;
        self
    }

    /// Time allowed for [`connect`](crate::connect), transport and handshake together
    /// (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }
}
