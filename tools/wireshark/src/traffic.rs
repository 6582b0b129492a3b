//! Real tandem-std endpoints on loopback, each connection through a recording relay
//! ([`crate::relay`]): a known set of exchanges over TCP and over UDP datagram mode.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use tandem_std::{
    Address, Client, ClientConfig, Handlers, MethodId, Outcome, SchemaKey, Server, ServerConfig, Status,
};

use crate::relay::{TcpRecord, TcpTap, UdpRecord, UdpTap};

/// Generous bound for one exchange on loopback.
const T: Duration = Duration::from_secs(10);

/// Returns its request.
pub const ECHO: MethodId = MethodId::new(1, 1);
/// Fails NOT_FOUND with a message and details (a status body, SPEC.md §8.7).
pub const FAIL: MethodId = MethodId::new(1, 2);
/// Returns its request; declared with a schema key (KEY flag, §7.10).
pub const KEYED: MethodId = MethodId::new(1, 3);
/// Waits until cancelled (at most 10 s).
pub const SLOW: MethodId = MethodId::new(1, 4);
/// A notification; "reject" is refused with INVALID_ARGUMENT.
pub const LOG: MethodId = MethodId::new(2, 1);
/// A stream answering every item with the same item, then ending OK.
pub const MIRROR: MethodId = MethodId::new(3, 1);
/// A stream that waits until it is reset.
pub const HOLD: MethodId = MethodId::new(3, 2);
/// The schema key of [`KEYED`].
pub const KEY: SchemaKey = SchemaKey([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);

/// The message for [`FAIL`].
pub const FAIL_MESSAGE: &str = "no vehicle 7";

fn handlers() -> Handlers {
    Handlers::new()
        .raw_unary(ECHO, |_, req| Ok(req))
        .raw_unary_outcome(FAIL, |_, _| Outcome::failed(Status::NOT_FOUND, FAIL_MESSAGE, vec![1, 7]))
        .raw_unary(KEYED, |_, req| Ok(req))
        .with_key(KEYED, KEY)
        .raw_unary(SLOW, |ctx, _| {
            ctx.wait_cancelled(T);
            Err(Status::CANCELLED)
        })
        .raw_notification(LOG, |_, msg| if msg == b"reject" { Err(Status::INVALID_ARGUMENT) } else { Ok(()) })
        .raw_streaming(MIRROR, |_, _init, mut rx, mut tx| {
            while let Some(item) = rx.recv().map_err(|e| e.status())? {
                tx.send(&item).map_err(|e| e.status())?;
            }
            Ok(())
        })
        .raw_streaming(HOLD, |ctx, _, mut rx, _tx| {
            // Returns when the opener resets its direction (recv fails) or after T.
            let end = Instant::now() + T;
            while Instant::now() < end && !ctx.is_cancelled() {
                if rx.recv().is_err() {
                    break;
                }
            }
            Ok(())
        })
}

fn check<T: std::fmt::Debug + PartialEq>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

fn socket_addr(a: &Address) -> Result<SocketAddr, String> {
    match a {
        Address::Tcp(s) | Address::Udp(s) => s.parse().map_err(|e| format!("{s}: {e}")),
        other => Err(format!("unexpected server address {other}")),
    }
}

/// Both endpoints' connection settings: 4 KiB frames (so messages above it are fragmented,
/// SPEC.md §9), small stream credit (so STREAM_CREDIT flows), a keepalive short enough that a
/// pause shows PING and PONG.
fn tune(c: &mut tandem_std::Config) {
    c.max_frame_size = 4096;
    c.stream_credit_msgs = 4;
    c.keepalive_interval = Duration::from_millis(100);
}

/// The servers and relays, bound; the exchanges run once [`Prepared::run`] is called.
pub struct Prepared {
    tcp_server: Server,
    udp_server: Server,
    tcp_tap: TcpTap,
    udp_tap: UdpTap,
    /// Bound only so that the capture script's probe datagrams (sent until the capture is seen
    /// running) reach an open port; nothing reads them.
    probe: UdpSocket,
}

impl Prepared {
    /// Binds a TCP and a UDP server and their relays on loopback.
    pub fn bind() -> Result<Prepared, String> {
        let mut tcp_cfg = ServerConfig::new("wireshark-server");
        tune(&mut tcp_cfg.connection);
        let tcp_server = Server::bind("tcp://127.0.0.1:0", tcp_cfg, handlers()).map_err(|e| e.to_string())?;
        let mut udp_cfg = ServerConfig::new("wireshark-server");
        udp_cfg.connection.keepalive_interval = Duration::from_millis(100);
        let udp_server = Server::bind("udp://127.0.0.1:0", udp_cfg, handlers()).map_err(|e| e.to_string())?;
        let tcp_tap = TcpTap::bind(socket_addr(tcp_server.local_addr())?).map_err(|e| e.to_string())?;
        let udp_tap = UdpTap::bind(socket_addr(udp_server.local_addr())?).map_err(|e| e.to_string())?;
        let probe = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        Ok(Prepared { tcp_server, udp_server, tcp_tap, udp_tap, probe })
    }

    /// The ports a capture must include: the relays' client-facing ports and the servers',
    /// and the probe port (`probe`, UDP).
    pub fn ports(&self) -> Result<Vec<(&'static str, u16)>, String> {
        Ok(vec![
            ("probe", self.probe.local_addr().map_err(|e| e.to_string())?.port()),
            ("tcp", self.tcp_tap.port()),
            ("tcp", socket_addr(self.tcp_server.local_addr())?.port()),
            ("udp", self.udp_tap.port()),
            ("udp", socket_addr(self.udp_server.local_addr())?.port()),
        ])
    }

    /// Runs the exchanges over TCP, then over UDP, and returns what the relays recorded.
    pub fn run(self) -> Result<(TcpRecord, UdpRecord), String> {
        let tcp_port = self.tcp_tap.port();
        let run = self.tcp_tap.start();
        tcp_exchanges(&format!("tcp://127.0.0.1:{tcp_port}"), &self.tcp_server)?;
        let tcp = run.finish().map_err(|e| format!("TCP relay: {e}"))?;
        self.tcp_server.shutdown(Duration::from_secs(1));

        let udp_port = self.udp_tap.port();
        let run = self.udp_tap.start().map_err(|e| e.to_string())?;
        udp_exchanges(&format!("udp://127.0.0.1:{udp_port}"), &self.udp_server)?;
        // Let the last datagrams (ACK, CLOSE) through before the relay stops.
        std::thread::sleep(Duration::from_millis(300));
        let udp = run.finish().map_err(|e| format!("UDP relay: {e}"))?;
        self.udp_server.shutdown(Duration::from_secs(1));
        Ok((tcp, udp))
    }
}

/// Runs the exchanges common to both transports.
fn unary_and_notifications(client: &Client, big: usize) -> Result<(), String> {
    check("echo", client.call_raw(ECHO, b"hi", T), Ok(b"hi".to_vec()))?;
    let failed = client.call_raw(FAIL, b"", T).map_err(|e| e.status());
    check("failing call", failed, Err(Status::NOT_FOUND))?;
    check("keyed call", client.call_raw_keyed(KEYED, KEY, b"key", T), Ok(b"key".to_vec()))?;
    check("notify", client.notify_raw(LOG, b"hello", T).map_err(|e| e.status()), Ok(()))?;
    let refused = client.notify_raw(LOG, b"reject", T).map_err(|e| e.status());
    check("refused notify", refused, Err(Status::INVALID_ARGUMENT))?;
    client.signal_raw(LOG, b"signal").map_err(|e| format!("signal: {e}"))?;
    let large: Vec<u8> = (0..big).map(|i| (i % 251) as u8).collect();
    check("large echo", client.call_raw(ECHO, &large, T).map_err(|e| e.status()), Ok(large.clone()))?;
    // A cancelled call: CANCEL, then RESPONSE(CANCELLED).
    let pending = client.start_call_raw(SLOW, b"", T).map_err(|e| format!("slow call: {e}"))?;
    std::thread::sleep(Duration::from_millis(20));
    pending.cancel();
    Ok(())
}

fn tcp_exchanges(addr: &str, server: &Server) -> Result<(), String> {
    let mut cfg = ClientConfig::new("wireshark-client");
    tune(&mut cfg.connection);
    cfg.connect_timeout = T;
    let client = Client::connect(addr, cfg, handlers()).map_err(|e| format!("connect {addr}: {e}"))?;
    unary_and_notifications(&client, 10_000)?;

    // A stream both ways: small items, one fragmented (6000 > 4096), more items than the
    // initial credit of 4, then FIN both ways.
    let (mut tx, mut rx) = client.open_stream_raw(MIRROR, b"init", T).map_err(|e| format!("stream: {e}"))?;
    let mut items: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i; 3]).collect();
    items.insert(4, (0..6000).map(|i| (i % 13) as u8).collect());
    for item in &items {
        tx.send(item).map_err(|e| format!("stream send: {e}"))?;
        check("stream item", rx.recv().map_err(|e| e.status()), Ok(Some(item.clone())))?;
    }
    tx.finish().map_err(|e| format!("stream finish: {e}"))?;
    check("stream end", rx.recv().map_err(|e| e.status()), Ok(None))?;

    // A stream the opener resets: STREAM_RESET.
    let (mut tx, rx) = client.open_stream_raw(HOLD, b"", T).map_err(|e| format!("stream: {e}"))?;
    tx.send(b"x").map_err(|e| format!("stream send: {e}"))?;
    tx.reset(Status::CANCELLED);
    rx.cancel();

    // The acceptor opens an exchange too (odd ids, §6.1).
    let peer = server.wait_for_peer("wireshark-client", T).ok_or("the server does not see the client")?;
    check("server→client echo", peer.call_raw(ECHO, b"back", T), Ok(b"back".to_vec()))?;

    // A pause: keepalive PING and PONG.
    std::thread::sleep(Duration::from_millis(250));
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

fn udp_exchanges(addr: &str, server: &Server) -> Result<(), String> {
    let mut cfg = ClientConfig::new("wireshark-client");
    cfg.connection.keepalive_interval = Duration::from_millis(100);
    cfg.connect_timeout = T;
    let client = Client::connect(addr, cfg, handlers()).map_err(|e| format!("connect {addr}: {e}"))?;
    // No fragmentation over UDP (§14.7): the large message fits one 1200-byte datagram.
    unary_and_notifications(&client, 1000)?;
    let peer = server.wait_for_peer("wireshark-client", T).ok_or("the server does not see the client")?;
    check("server→client echo", peer.call_raw(ECHO, b"back", T), Ok(b"back".to_vec()))?;
    // A pause: ACKs (sent within 100 ms, §14.6), keepalive PING and PONG.
    std::thread::sleep(Duration::from_millis(250));
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

/// Waits for `go` to exist (the capture has started), at most `timeout`.
pub fn wait_for(go: &Path, timeout: Duration) -> Result<(), String> {
    let end = Instant::now() + timeout;
    while !go.exists() {
        if Instant::now() > end {
            return Err(format!("{} did not appear within {timeout:?}", go.display()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
