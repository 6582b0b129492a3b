//! WebSocket (`ws://`, SPEC.md §3.10) beyond the exchange suite (which runs over `ws://` and
//! `wss://` in tests/exchanges.rs): what a hostile or mistaken peer gets (a wrong path, a
//! missing subprotocol, a slow upgrade request, a text message, an oversize message), the errors
//! a client is told, a tandem server sharing its port with an HTTP server by path
//! (`Server::serve_websocket`), and a session resumed across WebSocket reconnects. The blocking
//! twin of tandem-smol's `tests/websocket.rs`.

mod common;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, wait_until, T};
use tandem_std::tandem_core::addr::Address;
use tandem_std::tandem_core::typed::Unary;
use tandem_std::{Client, ClientConfig, Error, Handlers, LinkState, Server, ServerConfig, Status};
use tandem_testkit::proxy::TcpProxy;
use tandem_testkit::ws;
use tungstenite::{Bytes, Message};

/// Sleeps the given milliseconds, counts its runs, answers the argument.
const WORK: Unary<u64, u64> = Unary::new(1, 1);

fn handlers(runs: &Arc<AtomicU32>) -> Handlers {
    let runs = runs.clone();
    Handlers::new().unary(&WORK, move |_, ms| {
        runs.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(ms));
        Ok(ms)
    })
}

fn server(addr: &str, config: ServerConfig) -> (Server, Arc<AtomicU32>) {
    let runs = Arc::default();
    (Server::bind(addr, config, handlers(&runs)).unwrap(), runs)
}

/// The status of an encoded CLOSE frame.
fn close_status(bytes: &[u8]) -> Option<Status> {
    use tandem_std::tandem_core::frame::{Decoded, Frame};
    match Frame::decode(bytes, 1 << 20) {
        Ok(Decoded::Frame(Frame::Close { status, .. }, _)) => Some(status),
        _ => None,
    }
}

fn sock(server: &Server) -> SocketAddr {
    let Address::WebSocket { host_port, .. } = server.local_addr() else { panic!("a ws:// server") };
    host_port.parse().unwrap()
}

fn connect_err(addr: &str) -> Error {
    Client::connect(addr, ClientConfig::new("c"), Handlers::new()).expect_err("the connection must fail")
}

#[test]
fn a_wrong_path_gets_404_and_the_client_is_told() {
    bounded(20, || {
        let (s, _) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let answer = ws::upgrade_answer(sock(&s), "/other", true);
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        assert!(answer.contains("serves WebSocket on /rpc"), "{answer}");
        let e = connect_err(&format!("ws://{}/other", sock(&s)));
        let m = e.to_string();
        assert!(matches!(e, Error::WebSocket { .. }), "{e:?}");
        assert!(m.contains("404") && m.contains("path"), "{m}");
        // The right path works.
        let c = Client::connect(&format!("ws://{}/rpc", sock(&s)), ClientConfig::new("c"), Handlers::new())
            .unwrap();
        assert_eq!(c.call(&WORK, &0, T), Ok(0));
        s.shutdown(T);
    });
}

#[test]
fn an_upgrade_without_the_subprotocol_is_refused_with_a_reason() {
    bounded(20, || {
        let (s, _) = server("ws://127.0.0.1:0/", ServerConfig::new("s"));
        let answer = ws::upgrade_answer(sock(&s), "/", false);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("Sec-WebSocket-Protocol: tandem/1"), "{answer}");
        // With it: 101, selecting tandem/1.
        let answer = ws::upgrade_answer(sock(&s), "/", true);
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("sec-websocket-protocol: tandem/1"), "{answer}");
        // A server that does not select it: the client says so.
        let e = connect_err(&format!("ws://{}/", ws::fake_server(false, None)));
        assert!(e.to_string().contains("subprotocol tandem/1"), "{e}");
    });
}

#[test]
fn a_slow_upgrade_request_is_bounded_by_the_handshake_timeout() {
    bounded(20, || {
        let mut config = ServerConfig::new("s");
        config.connection.handshake_timeout = Duration::from_millis(500);
        let (s, _) = server("ws://127.0.0.1:0/rpc", config);
        let took =
            ws::slowloris(sock(&s), Duration::from_secs(8)).expect("the server must close a slow upgrade");
        assert!(took < Duration::from_secs(5), "{took:?}");
        wait_until(|| s.stats().connections == 0);
    });
}

#[test]
fn a_text_message_fails_the_connection_and_says_so() {
    bounded(20, || {
        // Toward a server: the connection ends.
        let (s, _) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let mut raw = ws::client(sock(&s), "/rpc");
        raw.send(Message::text("hello")).unwrap();
        // CLOSE(PROTOCOL_ERROR = 64) with the reason, then the end.
        let close = ws::next_binary(&mut raw, T).expect("a CLOSE frame");
        assert_eq!(close_status(&close), Some(Status::PROTOCOL_ERROR), "{close:?}");
        assert!(String::from_utf8_lossy(&close).contains("text message"), "{close:?}");
        assert!(ws::ends_within(&mut raw, T), "the server must end the connection");
        wait_until(|| s.stats().connections == 0);
        // Toward a client: the error names the text message.
        let e = connect_err(&format!("ws://{}/", ws::fake_server(true, Some(Message::text("hi")))));
        let m = e.to_string();
        assert!(matches!(e, Error::WebSocket { .. }) && m.contains("text message"), "{m}");
    });
}

#[test]
fn an_oversize_message_is_refused_before_it_is_buffered() {
    bounded(20, || {
        let config = ServerConfig { max_datagram: 4096, ..ServerConfig::new("s") };
        let (s, _) = server("ws://127.0.0.1:0/rpc", config);
        let mut raw = ws::client(sock(&s), "/rpc");
        // Announced as 64 MiB in its header; only its first bytes are sent.
        let _ = raw.send(Message::Binary(Bytes::from(vec![1u8; 100_000])));
        // Refused from the message's header, as SEQPACKET refuses an oversize packet.
        let close = ws::next_binary(&mut raw, T).expect("a CLOSE frame");
        assert_eq!(close_status(&close), Some(Status::LIMIT_EXCEEDED), "{close:?}");
        assert!(ws::ends_within(&mut raw, T), "the server must end the connection");
        wait_until(|| s.stats().connections == 0);
        // Others are served as before.
        let c = Client::connect(&format!("ws://{}/rpc", sock(&s)), ClientConfig::new("c"), Handlers::new())
            .unwrap();
        assert_eq!(c.call(&WORK, &0, T), Ok(0));
        s.shutdown(T);
    });
}

#[test]
fn a_server_shares_its_port_with_an_http_server_by_path() {
    bounded(20, || {
        // Bound on port 0 only to name its path: it serves what the HTTP server hands over.
        let (s, runs) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let s = Arc::new(s);
        let tandem = s.clone();
        let http = ws::http_server("/rpc", move |stream, head| tandem.serve_websocket(stream, head).unwrap());
        assert!(ws::http_get(http, "/health").ends_with("\r\n\r\nok"));
        let c =
            Client::connect(&format!("ws://{http}/rpc"), ClientConfig::new("c"), Handlers::new()).unwrap();
        assert_eq!(c.call(&WORK, &1, T), Ok(1));
        assert!(ws::http_get(http, "/health").ends_with("\r\n\r\nok"));
        assert!(ws::http_get(http, "/nope").starts_with("HTTP/1.1 404"));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // A server that is not on ws:// cannot take one, and says why.
        let tcp = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("t"), Handlers::new()).unwrap();
        let stream = std::net::TcpStream::connect(http).unwrap();
        let e = tcp.serve_websocket(stream, b"").unwrap_err().to_string();
        assert!(e.contains("ws://") && e.contains("port 0"), "{e}");
    });
}

#[test]
fn a_session_resumes_across_websocket_reconnects_and_calls_in_flight_complete_once() {
    bounded(30, || {
        let (s, runs) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let proxy = TcpProxy::start(sock(&s));
        let c = Arc::new(
            Client::connect(&format!("ws://{}/rpc", proxy.addr()), ClientConfig::new("c"), Handlers::new())
                .unwrap(),
        );
        assert_eq!(c.call(&WORK, &0, T), Ok(0));
        for round in 0..2u64 {
            let calls: Vec<_> = (0..4u64)
                .map(|i| {
                    let c = c.clone();
                    std::thread::spawn(move || c.call(&WORK, &(300 + i), T))
                })
                .collect();
            std::thread::sleep(Duration::from_millis(100));
            proxy.cut();
            for (i, h) in calls.into_iter().enumerate() {
                assert_eq!(h.join().unwrap(), Ok(300 + i as u64), "round {round}");
            }
            wait_until(|| matches!(c.state(), LinkState::Connected { resumed: true }));
        }
        // Every call ran once: 1 + 2 rounds of 4.
        assert_eq!(runs.load(Ordering::SeqCst), 9);
        assert_eq!(s.stats().connections, 1);
        s.shutdown(T);
    });
}

#[test]
fn a_session_resumes_across_an_nginx_restart() {
    bounded(40, || {
        let (s, runs) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let mut nginx = tandem_testkit::nginx::Nginx::start(sock(&s), "/rpc");
        let c = Arc::new(
            Client::connect(&format!("ws://{}/rpc", nginx.addr()), ClientConfig::new("c"), Handlers::new())
                .unwrap(),
        );
        assert_eq!(c.call(&WORK, &0, T), Ok(0));
        // A call in flight while nginx dies and comes back on the same port.
        let slow = {
            let c = c.clone();
            std::thread::spawn(move || c.call(&WORK, &500, Duration::from_secs(20)))
        };
        std::thread::sleep(Duration::from_millis(100));
        nginx.kill();
        wait_until(|| matches!(c.state(), LinkState::Suspended { .. }));
        nginx.start_again();
        assert_eq!(slow.join().unwrap(), Ok(500));
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while !matches!(c.state(), LinkState::Connected { resumed: true }) {
            assert!(std::time::Instant::now() < end, "not resumed: {:?}", c.state());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(c.call(&WORK, &1, T), Ok(1));
        // Each call ran once; one session, resumed.
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(s.stats().connections, 1);
        s.shutdown(T);
    });
}

#[test]
fn wss_client_certificates_reach_the_authenticator_and_bad_certificates_are_tls_errors() {
    use tandem_std::{TlsClientConfig, TlsServerConfig};
    use tandem_testkit::pki::{by_certificate, Ca};
    bounded(30, || {
        let ca = Ca::new("test CA");
        let alice = ca.client("alice");
        let seen = Arc::default();
        let leaf = ca.server(&["localhost"]);
        let mut config = ServerConfig::new("s");
        config.tls = Some(
            TlsServerConfig::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
                .unwrap()
                .require_client_certs(ca.pem.as_bytes())
                .unwrap(),
        );
        config.authenticator = Some(by_certificate(vec![(alice.der.clone(), "cn:alice")], Arc::clone(&seen)));
        let (s, _) = server("wss://127.0.0.1:0/rpc", config);
        let at = format!("wss://localhost:{}/rpc", sock(&s).port());
        let trust = TlsClientConfig::new().trust_ca_pem(ca.pem.as_bytes()).unwrap().without_system_roots();
        let mut c = ClientConfig::new("alice");
        c.tls = trust.clone().client_cert_pem(alice.cert_pem.as_bytes(), alice.key_pem.as_bytes()).unwrap();
        let client = Client::connect(&at, c, Handlers::new()).unwrap();
        assert_eq!(client.call(&WORK, &0, T), Ok(0));
        assert_eq!(seen.lock().unwrap().as_slice(), ["certs=1 auth= resuming=false"]);
        // Without a client certificate: the TLS handshake under the WebSocket fails, and says so.
        let mut c = ClientConfig::new("nobody");
        c.tls = trust;
        let e = Client::connect(&at, c, Handlers::new()).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Tls { .. }) && m.contains("requires a client certificate"), "{m}");
        // A server certificate this client does not trust.
        let stranger = Ca::new("another CA");
        let mut c = ClientConfig::new("c");
        c.tls = TlsClientConfig::new().trust_ca_pem(stranger.pem.as_bytes()).unwrap().without_system_roots();
        let e = Client::connect(&at, c, Handlers::new()).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Tls { .. }) && m.contains("UnknownIssuer"), "{m}");
        s.shutdown(T);
    });
}

#[test]
fn mixing_up_ws_and_tcp_says_so() {
    bounded(30, || {
        // A ws:// client at a tcp:// server.
        let tcp = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("t"), Handlers::new()).unwrap();
        let Address::Tcp(at) = tcp.local_addr() else { panic!("tcp") };
        let e = connect_err(&format!("ws://{at}/rpc"));
        let m = e.to_string();
        assert!(matches!(e, Error::WebSocket { .. }) && m.contains("speak WebSocket"), "{m}");
        // A tcp:// client at a ws:// server.
        let mut config = ServerConfig::new("s");
        config.connection.handshake_timeout = Duration::from_millis(500);
        let (s, _) = server("ws://127.0.0.1:0/rpc", config);
        let mut c = ClientConfig::new("c");
        c.connect_timeout = Duration::from_secs(3);
        let e = Client::connect(&format!("tcp://{}", sock(&s)), c, Handlers::new()).unwrap_err();
        let m = e.to_string();
        assert!(
            matches!(e, Error::PeerSpeaksHttp { .. })
                && m.contains("answered in HTTP")
                && m.contains("ws://"),
            "{m}"
        );
    });
}

#[test]
fn many_silent_upgrades_hold_no_thread_and_others_are_served() {
    bounded(30, || {
        let mut config = ServerConfig::new("s");
        config.connection.handshake_timeout = Duration::from_secs(4);
        let (s, _) = server("ws://127.0.0.1:0/rpc", config);
        // 64 peers that send half an upgrade request and then nothing.
        let silent: Vec<_> = (0..64)
            .map(|_| {
                use std::io::Write;
                let mut t = std::net::TcpStream::connect(sock(&s)).unwrap();
                t.write_all(b"GET /rpc HTTP/1.1\r\nHost: x\r\n").unwrap();
                t
            })
            .collect();
        wait_until(|| s.stats().handshaking >= 64);
        // A real client is served meanwhile, long before the silent ones time out.
        let start = std::time::Instant::now();
        let c = Client::connect(&format!("ws://{}/rpc", sock(&s)), ClientConfig::new("c"), Handlers::new())
            .unwrap();
        assert_eq!(c.call(&WORK, &0, T), Ok(0));
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        // The handshake timeout ends every silent one.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while s.stats().connections > 1 {
            assert!(std::time::Instant::now() < end, "{:?}", s.stats());
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(silent);
        s.shutdown(T);
    });
}

#[test]
fn a_websocket_ping_is_answered_with_a_pong() {
    bounded(20, || {
        let (s, _) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let mut raw = ws::client(sock(&s), "/rpc");
        raw.send(Message::Ping(Bytes::from_static(b"are you there"))).unwrap();
        raw.get_mut().set_read_timeout(Some(T)).unwrap();
        loop {
            match raw.read().expect("a pong before anything else ends") {
                Message::Pong(p) => {
                    assert_eq!(&p[..], b"are you there");
                    break;
                }
                Message::Binary(_) => {}
                m => panic!("unexpected {m:?}"),
            }
        }
        drop(raw);
        s.shutdown(T);
    });
}
