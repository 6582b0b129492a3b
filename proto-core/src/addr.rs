//! Transport addresses as users write them: `tcp://127.0.0.1:7400`, `tls://example.com:7400`,
//! `unix:///run/app.sock`, `unix+seqpacket:///run/app.sock`, `udp://127.0.0.1:7400`,
//! `ws://127.0.0.1:7400/rpc`, `wss://example.com:443/rpc`,
//! `serial:///dev/ttyUSB0?baud=115200`. Parsing only; the runtimes open the sockets and ttys.

use alloc::string::{String, ToString};
use core::fmt;
use core::str::FromStr;
use std::path::PathBuf;

/// Where to listen or connect.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// TCP, `host:port` (IPv6 hosts in brackets: `[::1]:7400`).
    Tcp(String),
    /// Unix stream socket at a filesystem path.
    Unix(PathBuf),
    /// Unix SEQPACKET socket at a filesystem path (one message per packet).
    UnixSeqpacket(PathBuf),
    /// UDP, `host:port` (datagram mode, SPEC.md §14; served by both runtimes).
    Udp(String),
    /// TLS 1.3 over TCP, `host:port` (SPEC.md §3.9): a client checks the server's certificate
    /// against `host` and sends it as the TLS server name (SNI) when it is a DNS name.
    Tls(String),
    /// WebSocket (SPEC.md §3.10), `ws://host:port/path`, or with `tls` `wss://host:port/path`
    /// (WebSocket over TLS 1.3 as in §3.9). `path` starts with `/` (`/` when the address has
    /// none); a server serves only that path (others get HTTP 404).
    WebSocket {
        /// `wss://`: TLS under the WebSocket.
        tls: bool,
        /// `host:port` (IPv6 hosts in brackets).
        host_port: String,
        /// The HTTP request target of the upgrade, from its `/`.
        path: String,
    },
    /// A serial line (a tty: UART, USB CDC-ACM, a pseudo-terminal) carrying datagram mode in
    /// the serial framing of SPEC.md §14.9, written `serial:///dev/ttyUSB0?baud=115200` (the
    /// baud rate defaults to [`DEFAULT_BAUD`] when `?baud=` is left out). Point to point: a
    /// client dials the device on the line; a server answers the one peer on the line.
    Serial {
        /// The tty's path.
        path: PathBuf,
        /// Bits per second.
        baud: u32,
    },
}

/// The baud rate of a `serial://` address without `?baud=`: 115200.
pub const DEFAULT_BAUD: u32 = 115_200;

impl Address {
    /// The host of a `tcp://`, `tls://`, `udp://`, `ws://` or `wss://` address, without brackets around an IPv6
    /// address (`None` on Unix sockets).
    pub fn host(&self) -> Option<&str> {
        match self {
            Address::Tcp(hp)
            | Address::Udp(hp)
            | Address::Tls(hp)
            | Address::WebSocket { host_port: hp, .. } => {
                let host = hp.rsplit_once(':').map_or(hp.as_str(), |(h, _)| h);
                Some(host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host))
            }
            Address::Unix(_) | Address::UnixSeqpacket(_) | Address::Serial { .. } => None,
        }
    }
}

/// An address string could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid address {:?}: {}; expected tcp://HOST:PORT, tls://HOST:PORT, unix:///PATH, unix+seqpacket:///PATH, udp://HOST:PORT, ws://HOST:PORT/PATH, wss://HOST:PORT/PATH or serial:///DEV?baud=N",
            self.input, self.reason
        )
    }
}

impl std::error::Error for AddressError {}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        let err = |reason| AddressError { input: s.to_string(), reason };
        let (scheme, rest) = s.split_once("://").ok_or_else(|| err("missing scheme"))?;
        let host_port = |rest: &str| -> Result<String, AddressError> {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| err("missing :PORT"))?;
            if host.is_empty() {
                return Err(err("missing host"));
            }
            port.parse::<u16>().map_err(|_| err("port is not a number in 0..=65535"))?;
            Ok(rest.to_string())
        };
        let path = |rest: &str| -> Result<PathBuf, AddressError> {
            if rest.is_empty() {
                return Err(err("missing socket path"));
            }
            Ok(PathBuf::from(rest))
        };
        match scheme {
            "tcp" => Ok(Address::Tcp(host_port(rest)?)),
            "udp" => Ok(Address::Udp(host_port(rest)?)),
            "tls" => Ok(Address::Tls(host_port(rest)?)),
            "unix" => Ok(Address::Unix(path(rest)?)),
            "unix+seqpacket" => Ok(Address::UnixSeqpacket(path(rest)?)),
            "ws" | "wss" => {
                let (hp, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                // An HTTP request target: visible ASCII, no fragment.
                if path.bytes().any(|b| !(0x21..0x7f).contains(&b) || b == b'#') {
                    return Err(err(
                        "the path must be visible ASCII without spaces or '#' (percent-encode the rest)",
                    ));
                }
                Ok(Address::WebSocket {
                    tls: scheme == "wss",
                    host_port: host_port(hp)?,
                    path: path.to_string(),
                })
            }
            "serial" => {
                let (dev, query) = rest.split_once('?').unwrap_or((rest, ""));
                if dev.is_empty() {
                    return Err(err("missing tty path (serial:///dev/ttyUSB0?baud=115200)"));
                }
                let mut baud = DEFAULT_BAUD;
                for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                    match kv.split_once('=') {
                        Some(("baud", v)) => {
                            baud = v.parse().ok().filter(|&b| b > 0).ok_or_else(|| {
                                err("baud is not a positive number of bits per second (e.g. ?baud=115200)")
                            })?;
                        }
                        _ => return Err(err("unknown serial option; the only one is ?baud=N")),
                    }
                }
                Ok(Address::Serial { path: PathBuf::from(dev), baud })
            }
            _ => Err(err("unknown scheme")),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "tcp://{a}"),
            Address::Udp(a) => write!(f, "udp://{a}"),
            Address::Tls(a) => write!(f, "tls://{a}"),
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::UnixSeqpacket(p) => write!(f, "unix+seqpacket://{}", p.display()),
            Address::WebSocket { tls, host_port, path } => {
                write!(f, "{}://{host_port}{path}", if *tls { "wss" } else { "ws" })
            }
            Address::Serial { path, baud } => write!(f, "serial://{}?baud={baud}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in [
            "tcp://127.0.0.1:7400",
            "tcp://[::1]:1",
            "unix:///run/app.sock",
            "unix+seqpacket:///tmp/x",
            "udp://localhost:9",
            "tls://example.com:7400",
            "tls://[::1]:7400",
            "ws://127.0.0.1:80/",
            "ws://[::1]:7400/rpc",
            "wss://example.com:443/tandem/v1?x=1",
            "serial:///dev/ttyUSB0?baud=115200",
            "serial:///dev/pts/7?baud=9600",
        ] {
            let a: Address = s.parse().unwrap();
            assert_eq!(a.to_string(), s);
        }
    }

    #[test]
    fn hosts_lose_their_port_and_brackets() {
        let host = |s: &str| s.parse::<Address>().unwrap().host().map(str::to_string);
        assert_eq!(host("tls://example.com:7400").as_deref(), Some("example.com"));
        assert_eq!(host("tls://[::1]:7400").as_deref(), Some("::1"));
        assert_eq!(host("tcp://127.0.0.1:1").as_deref(), Some("127.0.0.1"));
        assert_eq!(host("unix:///x"), None);
        assert_eq!(host("wss://[::1]:443/rpc").as_deref(), Some("::1"));
    }

    #[test]
    fn websocket_addresses_have_a_path() {
        let a: Address = "ws://h:1".parse().unwrap();
        assert_eq!(a, Address::WebSocket { tls: false, host_port: "h:1".into(), path: "/".into() });
        assert_eq!(a.to_string(), "ws://h:1/");
        let a: Address = "wss://h:2/a/b".parse().unwrap();
        assert_eq!(a, Address::WebSocket { tls: true, host_port: "h:2".into(), path: "/a/b".into() });
        let e = "ws://h:1/a b".parse::<Address>().unwrap_err().to_string();
        assert!(e.contains("visible ASCII") && e.contains("ws://HOST:PORT/PATH"), "{e}");
        assert!("ws://h/rpc".parse::<Address>().unwrap_err().to_string().contains("missing :PORT"));
        assert!("wss://:1/".parse::<Address>().unwrap_err().to_string().contains("missing host"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = "127.0.0.1:80".parse::<Address>().unwrap_err().to_string();
        assert!(e.contains("missing scheme") && e.contains("tcp://HOST:PORT"), "{e}");
        assert!("tcp://host:99999".parse::<Address>().unwrap_err().to_string().contains("port"));
        assert!("sctp://x:1".parse::<Address>().unwrap_err().to_string().contains("unknown scheme"));
        assert!("unix://".parse::<Address>().unwrap_err().to_string().contains("path"));
        assert!("tls://host".parse::<Address>().unwrap_err().to_string().contains("missing :PORT"));
    }

    #[test]
    fn serial_addresses_have_a_path_and_a_baud_rate() {
        let a: Address = "serial:///dev/ttyACM0".parse().unwrap();
        assert_eq!(a, Address::Serial { path: "/dev/ttyACM0".into(), baud: DEFAULT_BAUD });
        assert_eq!(a.to_string(), "serial:///dev/ttyACM0?baud=115200");
        assert_eq!(a.host(), None);
        let e = |s: &str| s.parse::<Address>().unwrap_err().to_string();
        assert!(e("serial://").contains("missing tty path"), "{}", e("serial://"));
        assert!(e("serial://?baud=9600").contains("missing tty path"));
        for bad in ["fast", "0", "-1", ""] {
            let m = e(&format!("serial:///dev/ttyS0?baud={bad}"));
            assert!(m.contains("baud is not a positive number") && m.contains("?baud=115200"), "{m}");
        }
        assert!(e("serial:///dev/ttyS0?parity=even").contains("the only one is ?baud=N"));
    }
}
