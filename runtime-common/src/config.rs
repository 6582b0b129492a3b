//! The settings both runtimes share: the defaults, the connection configuration for an address,
//! and [`configs!`](crate::configs), which defines a runtime's `ServerConfig` and
//! `ClientConfig` — the common fields, their documentation and defaults, written once here —
//! with the runtime's own executor fields next to them. (Layer 1: imports `error`.)
//!
//! Why a macro: the public API (RUNTIMES.md) has flat structs that users build with struct
//! update syntax, `ServerConfig { spawner, ..ServerConfig::new("s") }` in tandem-smol and
//! `ServerConfig { workers: 4, ..ServerConfig::new("s") }` in tandem-std. A generic
//! `ServerConfig<X>` would move the executor fields one level down (`config.executor.spawner`),
//! and two hand-written structs would copy thirteen documented fields between the runtimes.

use core::time::Duration;

use tandem_core::addr::Address;
use tandem_core::{Config, Transport};

use crate::error::Error;

/// Default largest packet on `unix+seqpacket://`: 64 KiB.
pub const DEFAULT_MAX_DATAGRAM: u32 = 64 * 1024;
/// Default largest datagram on `udp://`: 1200 bytes (no IPv4 or IPv6 path fragments it).
pub const DEFAULT_UDP_MAX_DATAGRAM: u32 = 1200;
/// Default time allowed for connecting (transport and handshake), and for each reconnection
/// attempt's transport: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection configuration both runtimes' `ServerConfig::new` and `ClientConfig::new`
/// start from: the core's defaults ([`Config::DEFAULT`], the wire defaults of SPEC.md §5.4)
/// with frames and flow-control windows sized for throughput, since a runtime's buffers are on
/// the heap and grow only as far as a connection uses them:
///
/// * `max_frame_size` 256 KiB (core default 64 KiB): a 64 KiB stream item or message fits one
///   frame with its header, instead of a first frame and a CONTINUATION reassembled (copied)
///   by the receiver. A connection's receive buffer grows to the largest frame it receives and
///   is released when idle; messages larger than a frame were already reassembled up to
///   `max_message_size` (4 MiB), so a peer cannot make a connection hold more than before.
/// * `stream_credit_bytes` 1 MiB and `conn_credit_bytes` 4 MiB (core defaults 256 KiB and 1 MiB):
///   a stream of 64 KiB items keeps 16 items in flight rather than 4, so the sender rarely
///   waits for STREAM_CREDIT, and fewer credit frames and wake-ups happen per item. It is also
///   what the runtime may hold of a connection's unconsumed stream items (4 MiB).
///
/// Start from it to change one field and keep the others
/// (`Config { max_concurrent_calls: 64, ..DEFAULT_CONNECTION }`); `Config::default()` is the
/// core's (firmware-sized) defaults.
pub const DEFAULT_CONNECTION: Config = Config {
    max_frame_size: 256 * 1024,
    stream_credit_bytes: 1024 * 1024,
    conn_credit_bytes: 4 * 1024 * 1024,
    ..Config::DEFAULT
};

/// `config` with the transport of `addr` (stream, packet of `max_datagram`, or datagram of
/// `udp_max_datagram`), validated.
pub fn connection_config(
    config: &Config,
    addr: &Address,
    max_datagram: u32,
    udp_max_datagram: u32,
) -> Result<Config, Error> {
    let mut c = config.clone();
    c.transport = match addr {
        Address::Udp(_) | Address::Serial { .. } => Transport::Datagram { max_datagram: udp_max_datagram },
        // A WebSocket message is a packet (SPEC.md §3.10).
        Address::UnixSeqpacket(_) | Address::WebSocket { .. } => Transport::Packet { max_datagram },
        _ => Transport::Stream,
    };
    c.validate()?;
    Ok(c)
}

/// Defines `ServerConfig` and `ClientConfig` in the invoking runtime: the fields every runtime
/// has (name, connection, endpoint, resume, reconnect, timeouts, datagram sizes: documented
/// here once), then the runtime's own, each given as `doc attributes, name: type = default`.
/// Both get `new(name)`, `Clone` and a `Debug` that shows the common fields. The invoking crate
/// must export `Client` and the `DEFAULT_*` constants at its root (the documentation links
/// to them).
///
/// ```
/// mod blocking {
///     tandem_runtime::configs! {
///         server {
///             /// Handler pool threads.
///             workers: usize = 4,
///         }
///         client {
///             /// Handler pool threads.
///             workers: usize = 1,
///         }
///     }
/// }
/// use blocking::{ClientConfig, ServerConfig};
///
/// let server = ServerConfig { workers: 8, ..ServerConfig::new("server") };
/// assert_eq!(server.max_datagram, tandem_runtime::DEFAULT_MAX_DATAGRAM);
/// let client = ClientConfig::new("client");
/// assert!(client.resume);
/// assert_eq!((client.workers, client.connect_timeout), (1, tandem_runtime::DEFAULT_CONNECT_TIMEOUT));
/// ```
#[macro_export]
macro_rules! configs {
    (
        server { $( $(#[$sm:meta])* $sf:ident : $st:ty = $sd:expr ),* $(,)? }
        client { $( $(#[$cm:meta])* $cf:ident : $ct:ty = $cd:expr ),* $(,)? }
    ) => {
        /// How a server serves its connections. Build with [`ServerConfig::new`], then set
        /// fields.
        #[derive(Clone)]
        pub struct ServerConfig {
            /// The name announced in HELLO.
            pub name: ::std::string::String,
            /// Protocol limits and timers of every connection (keepalive, idle and handshake
            /// timeouts, `session_grace`, `suspended_call_timeout`, …). Its `transport` is set
            /// from the address. Default [`DEFAULT_CONNECTION`](crate::DEFAULT_CONNECTION): the
            /// core's defaults with larger frames and flow-control windows.
            pub connection: $crate::tandem_core::Config,
            /// The many-connection decisions (the core's `Endpoint`): `resume` (offer session
            /// resumption, SPEC.md §13; default true, never over UDP), `max_connections`,
            /// `max_handshaking`, `max_suspended_sessions`, `session_memory_budget` (64 MiB of
            /// reply caches, retained requests and unconfirmed stream items over all sessions;
            /// beyond it the oldest suspended session is evicted, then cached answers shed),
            /// `max_associations` (UDP).
            pub endpoint: $crate::tandem_core::endpoint::EndpointConfig,
            /// A Unix listener whose socket path exists refuses to start; with this set, a
            /// stale socket there (one nobody answers on) is removed first. Default false.
            pub unlink_stale_socket: bool,
            /// Largest packet on `unix+seqpacket://`, and largest WebSocket message on `ws://`
            /// and `wss://`, where a larger one is refused from its header (LIMIT_EXCEEDED)
            /// (default [`DEFAULT_MAX_DATAGRAM`](crate::DEFAULT_MAX_DATAGRAM)).
            pub max_datagram: u32,
            /// Largest datagram on `udp://` and `serial://` (default
            /// [`DEFAULT_UDP_MAX_DATAGRAM`](crate::DEFAULT_UDP_MAX_DATAGRAM); at least 1200).
            pub udp_max_datagram: u32,
            /// Decides who may connect (SPEC.md §5.6): sees each peer's name, HELLO `auth`
            /// bytes, Unix credentials and address, and accepts it as a
            /// [`PeerIdentity`](crate::PeerIdentity) or refuses it (the peer gets that CLOSE and
            /// nothing else). With one, a name belongs to an identity: another identity's
            /// connection under a live or suspended peer's name is refused (PERMISSION_DENIED)
            /// and a session resumes only under the identity that opened it. `None` (the
            /// default): every peer is accepted **unauthenticated** — its name is a claim and a
            /// newcomer under a live peer's name replaces it.
            pub authenticator: ::core::option::Option<::std::sync::Arc<dyn $crate::Authenticator>>,
            /// TLS on `tls://` and `wss://` (required there, refused elsewhere): the certificate chain and
            /// key, and the clients' CA for mutual TLS, whose certificates the authenticator
            /// sees ([`AuthRequest::peer_certificates`](crate::AuthRequest::peer_certificates)).
            /// Default `None`.
            pub tls: ::core::option::Option<$crate::TlsServerConfig>,
            /// Told of every peer's arrival and departure (name, identity, address) and of
            /// every finished exchange (method, status, duration): metrics, audit logs
            /// ([`Observer`](crate::Observer)). Default `None`.
            pub observer: ::core::option::Option<::std::sync::Arc<dyn $crate::Observer>>,
            $( $(#[$sm])* pub $sf: $st, )*
        }

        impl ServerConfig {
            /// Defaults, announcing `name`.
            pub fn new(name: impl ::core::convert::Into<::std::string::String>) -> Self {
                ServerConfig {
                    name: name.into(),
                    connection: $crate::config::DEFAULT_CONNECTION,
                    endpoint: $crate::tandem_core::endpoint::EndpointConfig::default(),
                    unlink_stale_socket: false,
                    max_datagram: $crate::config::DEFAULT_MAX_DATAGRAM,
                    udp_max_datagram: $crate::config::DEFAULT_UDP_MAX_DATAGRAM,
                    authenticator: ::core::option::Option::None,
                    tls: ::core::option::Option::None,
                    observer: ::core::option::Option::None,
                    $( $sf: $sd, )*
                }
            }
        }

        impl ::core::fmt::Debug for ServerConfig {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct("ServerConfig")
                    .field("name", &self.name)
                    .field("connection", &self.connection)
                    .field("endpoint", &self.endpoint)
                    .field("unlink_stale_socket", &self.unlink_stale_socket)
                    .field("max_datagram", &self.max_datagram)
                    .field("udp_max_datagram", &self.udp_max_datagram)
                    .field("authenticator", &self.authenticator.as_ref().map(|_| ".."))
                    .field("tls", &self.tls)
                    .field("observer", &self.observer.is_some())
                    .finish_non_exhaustive()
            }
        }

        /// How a client connects and reconnects. Build with [`ClientConfig::new`], then set
        /// fields.
        #[derive(Clone)]
        pub struct ClientConfig {
            /// The name announced in HELLO; a server tracks its peers by it.
            pub name: ::std::string::String,
            /// Protocol limits and timers (keepalive, idle and handshake timeouts,
            /// `session_grace`, `suspended_call_timeout`, …). Its `transport` is set from the
            /// address. Default [`DEFAULT_CONNECTION`](crate::DEFAULT_CONNECTION).
            pub connection: $crate::tandem_core::Config,
            /// Resume the session when the transport is lost (SPEC.md §13), if the server
            /// offers it: the client reconnects by itself ([`reconnect`](Self::reconnect)) and
            /// calls see only latency. Off: losing the transport closes the connection.
            /// Default true.
            pub resume: bool,
            /// When to reconnect (capped, jittered exponential backoff), whether to continue
            /// with a fresh session when the server cannot resume the old one
            /// (`fresh_session`, default true), and when to give up (`max_attempts`).
            pub reconnect: $crate::tandem_core::endpoint::ReconnectPolicy,
            /// Time allowed for [`Client::connect`](crate::Client::connect) (transport and
            /// handshake) and for each reconnection attempt's transport. Default
            /// [`DEFAULT_CONNECT_TIMEOUT`](crate::DEFAULT_CONNECT_TIMEOUT).
            pub connect_timeout: ::core::time::Duration,
            /// Largest packet on `unix+seqpacket://`, and largest WebSocket message on `ws://`
            /// and `wss://`, where a larger one is refused from its header (LIMIT_EXCEEDED)
            /// (default [`DEFAULT_MAX_DATAGRAM`](crate::DEFAULT_MAX_DATAGRAM)).
            pub max_datagram: u32,
            /// Largest datagram on `udp://` and `serial://` (default
            /// [`DEFAULT_UDP_MAX_DATAGRAM`](crate::DEFAULT_UDP_MAX_DATAGRAM); at least 1200).
            pub udp_max_datagram: u32,
            /// The HELLO's `auth` bytes for the server's authenticator (SPEC.md §5.6): a static
            /// token or a function called once per `connect`. Default none. Sent in clear on
            /// plain TCP: across machines, use `tls://` (or a trusted network).
            pub auth: $crate::Credentials,
            /// TLS on `tls://` and `wss://` addresses: whom to trust (default: the system's root
            /// certificates) and the client certificate for mutual TLS (default none). Ignored
            /// by the other transports.
            pub tls: $crate::TlsClientConfig,
            /// Told of the connection's handshakes and end and of every finished exchange
            /// ([`Observer`](crate::Observer)). Default `None`.
            pub observer: ::core::option::Option<::std::sync::Arc<dyn $crate::Observer>>,
            $( $(#[$cm])* pub $cf: $ct, )*
        }

        impl ClientConfig {
            /// Defaults, announcing `name`.
            pub fn new(name: impl ::core::convert::Into<::std::string::String>) -> Self {
                ClientConfig {
                    name: name.into(),
                    connection: $crate::config::DEFAULT_CONNECTION,
                    resume: true,
                    reconnect: $crate::tandem_core::endpoint::ReconnectPolicy::default(),
                    connect_timeout: $crate::config::DEFAULT_CONNECT_TIMEOUT,
                    max_datagram: $crate::config::DEFAULT_MAX_DATAGRAM,
                    udp_max_datagram: $crate::config::DEFAULT_UDP_MAX_DATAGRAM,
                    auth: $crate::Credentials::None,
                    tls: $crate::TlsClientConfig::default(),
                    observer: ::core::option::Option::None,
                    $( $cf: $cd, )*
                }
            }
        }

        impl ::core::fmt::Debug for ClientConfig {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct("ClientConfig")
                    .field("name", &self.name)
                    .field("connection", &self.connection)
                    .field("resume", &self.resume)
                    .field("reconnect", &self.reconnect)
                    .field("connect_timeout", &self.connect_timeout)
                    .field("max_datagram", &self.max_datagram)
                    .field("udp_max_datagram", &self.udp_max_datagram)
                    .field("auth", &self.auth)
                    .field("tls", &self.tls)
                    .field("observer", &self.observer.is_some())
                    .finish_non_exhaustive()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_connection_defaults_are_valid_and_sized_for_64_kib_items() {
        let tcp: Address = "tcp://127.0.0.1:1".parse().unwrap();
        let c = connection_config(&DEFAULT_CONNECTION, &tcp, 9000, 1300).unwrap();
        // A 64 KiB stream item fits one frame, even on a stream with the largest id.
        let payload = vec![0u8; 64 * 1024];
        let f = tandem_core::frame::Frame::StreamData {
            flags: 0,
            id: u64::MAX >> 2,
            total_len: None,
            payload: &payload,
        };
        assert!(f.body_len() <= c.max_frame_size as usize, "{} > {}", f.body_len(), c.max_frame_size);
        // At least 16 such items in flight per stream, and 4 streams' windows per connection.
        assert!(c.stream_credit_bytes >= 16 * 64 * 1024 && c.stream_credit_msgs >= 16);
        assert!(c.conn_credit_bytes >= 4 * c.stream_credit_bytes);
        // Everything else is the core's default.
        let core = Config {
            max_frame_size: c.max_frame_size,
            stream_credit_bytes: c.stream_credit_bytes,
            conn_credit_bytes: c.conn_credit_bytes,
            ..Config::DEFAULT
        };
        assert_eq!(format!("{:?}", DEFAULT_CONNECTION), format!("{core:?}"));
        // Over UDP (no streams) and SEQPACKET the same defaults validate too.
        let udp: Address = "udp://127.0.0.1:1".parse().unwrap();
        let seq: Address = "unix+seqpacket:///tmp/x.sock".parse().unwrap();
        assert!(connection_config(&DEFAULT_CONNECTION, &udp, 9000, 1300).is_ok());
        assert!(connection_config(&DEFAULT_CONNECTION, &seq, 9000, 1300).is_ok());
    }

    #[test]
    fn the_transport_follows_the_address_and_the_result_is_validated() {
        let c = Config::default();
        let tcp: Address = "tcp://127.0.0.1:1".parse().unwrap();
        let unix: Address = "unix:///tmp/x.sock".parse().unwrap();
        let seq: Address = "unix+seqpacket:///tmp/x.sock".parse().unwrap();
        let udp: Address = "udp://127.0.0.1:1".parse().unwrap();
        assert_eq!(connection_config(&c, &tcp, 9000, 1300).unwrap().transport, Transport::Stream);
        assert_eq!(connection_config(&c, &unix, 9000, 1300).unwrap().transport, Transport::Stream);
        assert_eq!(
            connection_config(&c, &seq, 9000, 1300).unwrap().transport,
            Transport::Packet { max_datagram: 9000 }
        );
        assert_eq!(
            connection_config(&c, &udp, 9000, 1300).unwrap().transport,
            Transport::Datagram { max_datagram: 1300 }
        );
        let bad = Config { max_frame_size: 10, ..Config::default() };
        assert!(matches!(connection_config(&bad, &tcp, 9000, 1300), Err(Error::Config(_))));
    }
}
