//! WebSocket (`ws://`, SPEC.md §3.10) beyond the exchange suite (which runs over `ws://` and
//! `wss://` in tests/exchanges.rs): what a hostile or mistaken peer gets (a wrong path, a
//! missing subprotocol, a slow upgrade request, a text message, an oversize message), the errors
//! a client is told, a tandem server sharing its port with an HTTP server by path
//! (`Server::serve_websocket`), and a session resumed across WebSocket reconnects. The async
//! twin of tandem-std's `tests/websocket.rs` (the blocking raw peers run on smol's blocking
//! pool).

mod common;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{run, wait_until, T};
use smol::Timer;
use tandem_smol::tandem_core::addr::Address;
use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::{Client, ClientConfig, Error, Handlers, LinkState, Server, ServerConfig, Status};
use tandem_testkit::proxy::TcpProxy;
use tandem_testkit::ws;
use tungstenite::{Bytes, Message};

/// Sleeps the given milliseconds, counts its runs, answers the argument.
const WORK: Unary<u64, u64> = Unary::new(1, 1);

fn handlers(runs: &Arc<AtomicU32>) -> Handlers {
    let runs = runs.clone();
    Handlers::new().unary(&WORK, move |_, ms| {
        runs.fetch_add(1, Ordering::SeqCst);
        async move {
            Timer::after(Duration::from_millis(ms)).await;
            Ok(ms)
        }
    })
}

fn server(addr: &str, config: ServerConfig) -> (Server, Arc<AtomicU32>) {
    let runs = Arc::default();
    (Server::bind(addr, config, handlers(&runs)).unwrap(), runs)
}

/// The status of an encoded CLOSE frame.
fn close_status(bytes: &[u8]) -> Option<Status> {
    use tandem_smol::tandem_core::frame::{Decoded, Frame};
    match Frame::decode(bytes, 1 << 20) {
        Ok(Decoded::Frame(Frame::Close { status, .. }, _)) => Some(status),
        _ => None,
    }
}

fn sock(server: &Server) -> SocketAddr {
    let Address::WebSocket { host_port, .. } = server.local_addr() else { panic!("a ws:// server") };
    host_port.parse().unwrap()
}

async fn connect_err(addr: &str) -> Error {
    Client::connect(addr, ClientConfig::new("c"), Handlers::new())
        .await
        .expect_err("the connection must fail")
}

async fn connect(addr: &str) -> Client {
    Client::connect(addr, ClientConfig::new("c"), Handlers::new()).await.unwrap()
}

#[test]
fn a_wrong_path_gets_404_and_the_client_is_told() {
    run(T * 2, async {
        let (s, _) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let at = sock(&s);
        let answer = smol::unblock(move || ws::upgrade_answer(at, "/other", true)).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        assert!(answer.contains("serves WebSocket on /rpc"), "{answer}");
        let e = connect_err(&format!("ws://{at}/other")).await;
        let m = e.to_string();
        assert!(matches!(e, Error::WebSocket { .. }), "{e:?}");
        assert!(m.contains("404") && m.contains("path"), "{m}");
        let c = connect(&format!("ws://{at}/rpc")).await;
        assert_eq!(c.call(&WORK, &0, T).await, Ok(0));
        s.shutdown(T).await;
    });
}

#[test]
fn an_upgrade_without_the_subprotocol_is_refused_with_a_reason() {
    run(T * 2, async {
        let (s, _) = server("ws://127.0.0.1:0/", ServerConfig::new("s"));
        let at = sock(&s);
        let answer = smol::unblock(move || ws::upgrade_answer(at, "/", false)).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("Sec-WebSocket-Protocol: tandem/1"), "{answer}");
        let answer = smol::unblock(move || ws::upgrade_answer(at, "/", true)).await;
        assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
        let e = connect_err(&format!("ws://{}/", ws::fake_server(false, None))).await;
        assert!(e.to_string().contains("subprotocol tandem/1"), "{e}");
    });
}

#[test]
fn a_slow_upgrade_request_is_bounded_by_the_handshake_timeout() {
    run(T * 3, async {
        let mut config = ServerConfig::new("s");
        config.connection.handshake_timeout = Duration::from_millis(500);
        let (s, _) = server("ws://127.0.0.1:0/rpc", config);
        let at = sock(&s);
        let took = smol::unblock(move || ws::slowloris(at, Duration::from_secs(8)))
            .await
            .expect("the server must close a slow upgrade");
        assert!(took < Duration::from_secs(5), "{took:?}");
        wait_until(|| s.stats().connections == 0).await;
    });
}

#[test]
fn a_text_message_fails_the_connection_and_says_so() {
    run(T * 3, async {
        let (s, _) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let at = sock(&s);
        let ended = smol::unblock(move || {
            let mut raw = ws::client(at, "/rpc");
            raw.send(Message::text("hello")).unwrap();
            let close = ws::next_binary(&mut raw, T);
            (close, ws::ends_within(&mut raw, T))
        })
        .await;
        let (close, ended) = ended;
        // CLOSE(PROTOCOL_ERROR = 64) with the reason, then the end.
        let close = close.expect("a CLOSE frame");
        assert_eq!(close_status(&close), Some(Status::PROTOCOL_ERROR), "{close:?}");
        assert!(String::from_utf8_lossy(&close).contains("text message"), "{close:?}");
        assert!(ended, "the server must end the connection");
        wait_until(|| s.stats().connections == 0).await;
        let e = connect_err(&format!("ws://{}/", ws::fake_server(true, Some(Message::text("hi"))))).await;
        let m = e.to_string();
        assert!(matches!(e, Error::WebSocket { .. }) && m.contains("text message"), "{m}");
    });
}

#[test]
fn an_oversize_message_is_refused_before_it_is_buffered() {
    run(T * 3, async {
        let config = ServerConfig { max_datagram: 4096, ..ServerConfig::new("s") };
        let (s, _) = server("ws://127.0.0.1:0/rpc", config);
        let at = sock(&s);
        let ended = smol::unblock(move || {
            let mut raw = ws::client(at, "/rpc");
            let _ = raw.send(Message::Binary(Bytes::from(vec![1u8; 100_000])));
            // Refused from the message's header, as SEQPACKET refuses an oversize packet.
            let close = ws::next_binary(&mut raw, T).expect("a CLOSE frame");
            assert_eq!(close_status(&close), Some(Status::LIMIT_EXCEEDED), "{close:?}");
            ws::ends_within(&mut raw, T)
        })
        .await;
        assert!(ended, "the server must end the connection");
        wait_until(|| s.stats().connections == 0).await;
        let c = connect(&format!("ws://{at}/rpc")).await;
        assert_eq!(c.call(&WORK, &0, T).await, Ok(0));
        s.shutdown(T).await;
    });
}

#[test]
fn a_server_shares_its_port_with_an_http_server_by_path() {
    run(T * 3, async {
        let (s, runs) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let s = Arc::new(s);
        let tandem = s.clone();
        let http = ws::http_server("/rpc", move |stream, head| tandem.serve_websocket(stream, head).unwrap());
        let health = smol::unblock(move || ws::http_get(http, "/health")).await;
        assert!(health.ends_with("\r\n\r\nok"), "{health}");
        let c = connect(&format!("ws://{http}/rpc")).await;
        assert_eq!(c.call(&WORK, &1, T).await, Ok(1));
        let other = smol::unblock(move || ws::http_get(http, "/nope")).await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let tcp = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("t"), Handlers::new()).unwrap();
        let stream = std::net::TcpStream::connect(http).unwrap();
        let e = tcp.serve_websocket(stream, b"").unwrap_err().to_string();
        assert!(e.contains("ws://") && e.contains("port 0"), "{e}");
    });
}

#[test]
fn a_session_resumes_across_websocket_reconnects_and_calls_in_flight_complete_once() {
    run(T * 4, async {
        let (s, runs) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let proxy = TcpProxy::start(sock(&s));
        let c = connect(&format!("ws://{}/rpc", proxy.addr())).await;
        assert_eq!(c.call(&WORK, &0, T).await, Ok(0));
        for round in 0..2u64 {
            let calls: Vec<_> = (0..4u64)
                .map(|i| {
                    let c = c.peer().clone();
                    smol::spawn(async move { c.call(&WORK, &(300 + i), T).await })
                })
                .collect();
            Timer::after(Duration::from_millis(100)).await;
            proxy.cut();
            for (i, h) in calls.into_iter().enumerate() {
                assert_eq!(h.await, Ok(300 + i as u64), "round {round}");
            }
            wait_until(|| matches!(c.state(), LinkState::Connected { resumed: true })).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 9);
        assert_eq!(s.stats().connections, 1);
        s.shutdown(T).await;
    });
}

#[test]
fn a_session_resumes_across_an_nginx_restart() {
    run(T * 8, async {
        let (s, runs) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let backend = sock(&s);
        let mut nginx = smol::unblock(move || tandem_testkit::nginx::Nginx::start(backend, "/rpc")).await;
        let c = connect(&format!("ws://{}/rpc", nginx.addr())).await;
        assert_eq!(c.call(&WORK, &0, T).await, Ok(0));
        // A call in flight while nginx dies and comes back on the same port.
        let slow = {
            let c = c.peer().clone();
            smol::spawn(async move { c.call(&WORK, &500, Duration::from_secs(20)).await })
        };
        Timer::after(Duration::from_millis(100)).await;
        nginx.kill();
        wait_until(|| matches!(c.state(), LinkState::Suspended { .. })).await;
        let nginx = smol::unblock(move || {
            nginx.start_again();
            nginx
        })
        .await;
        assert_eq!(slow.await, Ok(500));
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while !matches!(c.state(), LinkState::Connected { resumed: true }) {
            assert!(std::time::Instant::now() < end, "not resumed: {:?}", c.state());
            Timer::after(Duration::from_millis(20)).await;
        }
        assert_eq!(c.call(&WORK, &1, T).await, Ok(1));
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(s.stats().connections, 1);
        s.shutdown(T).await;
        drop(nginx);
    });
}

#[test]
fn mixing_up_ws_and_tcp_says_so() {
    run(T * 2, async {
        // A ws:// client at a tcp:// server.
        let tcp = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("t"), Handlers::new()).unwrap();
        let Address::Tcp(at) = tcp.local_addr() else { panic!("tcp") };
        let e = connect_err(&format!("ws://{at}/rpc")).await;
        let m = e.to_string();
        assert!(matches!(e, Error::WebSocket { .. }) && m.contains("speak WebSocket"), "{m}");
        // A tcp:// client at a ws:// server.
        let (s, _) = server("ws://127.0.0.1:0/rpc", ServerConfig::new("s"));
        let e = connect_err(&format!("tcp://{}", sock(&s))).await;
        let m = e.to_string();
        assert!(
            matches!(e, Error::PeerSpeaksHttp { .. })
                && m.contains("answered in HTTP")
                && m.contains("ws://"),
            "{m}"
        );
    });
}
