//! Many peers, broadcast, stale-peer replacement, dead and hostile peers, graceful shutdown.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tandem_std::tandem_core::{Config, Connection, Event, Identity, Role};
use tandem_std::{CallError, Client, ClientConfig, Handlers, Server, ServerConfig, Status};

fn server(addr: &str) -> Server {
    let (seen, _) = Seen::new();
    Server::bind(addr, ServerConfig::new("hub"), handlers("hub", &seen)).unwrap()
}

fn client(server: &Server, name: &str) -> Client {
    let (seen, _) = Seen::new();
    Client::connect(&server.local_addr().to_string(), ClientConfig::new(name), handlers(name, &seen)).unwrap()
}

#[test]
fn many_peers_call_one_and_call_all() {
    bounded(20, || {
        let server = server("tcp://127.0.0.1:0");
        let clients: Vec<Client> = (0..5).map(|i| client(&server, &format!("node-{i}"))).collect();
        for i in 0..5 {
            assert!(server.wait_for_peer(&format!("node-{i}"), T).is_some());
        }
        assert_eq!(server.peers().len(), 5);

        // One peer by name.
        let (who, _) = server.peer("node-3").unwrap().call(&WHOAMI, &(), T).unwrap();
        assert_eq!(who, "node-3 sees hub");

        // All at once: one result per peer, by name.
        let all = server.call_all(&WHOAMI, &(), T);
        let names: Vec<_> = all.iter().map(|(p, _)| p.name().to_string()).collect();
        assert_eq!(names, (0..5).map(|i| format!("node-{i}")).collect::<Vec<_>>());
        for (peer, r) in all {
            assert_eq!(r.unwrap().0, format!("{} sees hub", peer.name()));
        }
        // Per-peer failures are reported per peer.
        for (_, r) in server.call_all(&MISSING, &"k".to_string(), T) {
            assert_eq!(r, Err(CallError::from(Status::NOT_FOUND)));
        }

        // A peer that leaves is forgotten.
        let mut clients = clients;
        drop(clients.remove(0));
        eventually("node-0 removed", || server.peer("node-0").is_none());
        assert_eq!(server.call_all(&ADD, &(1, 1), T).len(), 4);
    });
}

#[test]
fn reconnect_under_same_name_replaces_stale_connection() {
    bounded(20, || {
        let dir = tempfile::tempdir().unwrap();
        let server = server(&format!("unix://{}/hub.sock", dir.path().display()));
        let old = client(&server, "dup");
        let old_peer = server.wait_for_peer("dup", T).unwrap();
        // A call in flight on the old connection, held by a handler that waits for cancellation.
        let pending = old_peer.start_call(&WAIT_CANCEL, &(), T).unwrap();

        let new = client(&server, "dup");
        eventually("the new connection is registered", || {
            server.peer("dup").is_some_and(|p| !p.same_connection(&old_peer))
        });
        // The stale connection is closed and its pending call fails with UNAVAILABLE.
        assert_eq!(pending.wait(), Err(CallError::from(Status::UNAVAILABLE)));
        eventually("the old connection closes", || old_peer.is_closed());
        eventually("the old client sees the close", || old.is_closed());
        assert_eq!(old.call(&ADD, &(1, 2), T).unwrap_err().status(), Status::UNAVAILABLE);
        // The new connection works in both directions.
        assert_eq!(new.call(&ADD, &(1, 2), T), Ok(3));
        assert_eq!(server.peer("dup").unwrap().call(&ADD, &(2, 2), T), Ok(4));
        assert_eq!(server.peers().len(), 1);
    });
}

/// A tandem peer that completes the handshake and then goes silent (never answers PING).
fn zombie(addr: &str, name: &str) -> TcpStream {
    let mut sock = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    let me = Identity { name: name.as_bytes(), ..Identity::default() };
    let now = tandem_std::tandem_core::Instant::ZERO;
    let mut conn = Connection::new(Role::Dialer, Config::default(), me, now).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = conn.poll_transmit(now, &mut buf);
    sock.write_all(&buf[..n]).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    loop {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "server closed during the handshake");
        assert_eq!(conn.handle_input(now, &buf[..n]), n);
        while let Some(ev) = conn.poll_event(now) {
            if ev == Event::Connected {
                return sock;
            }
        }
    }
}

#[test]
fn dead_peer_is_detected_and_its_calls_fail() {
    bounded(20, || {
        let (seen, _) = Seen::new();
        let mut cfg = ServerConfig::new("hub");
        cfg.connection.keepalive_interval = Duration::from_millis(50);
        cfg.connection.idle_timeout = Duration::from_millis(200);
        // Without resumption a dead peer's session ends at once (with it, it would wait
        // `session_grace` for the peer to come back: see tests/fault.rs).
        cfg.endpoint.resume = false;
        let server = Server::bind("tcp://127.0.0.1:0", cfg, handlers("hub", &seen)).unwrap();
        let live = client(&server, "alive");
        let _sock = zombie(&server.local_addr().to_string(), "zombie");
        let z = server.wait_for_peer("zombie", T).unwrap();
        let started = std::time::Instant::now();
        let r = z.call(&ADD, &(1, 1), T);
        assert_eq!(r, Err(CallError::from(Status::UNAVAILABLE)));
        assert!(started.elapsed() < Duration::from_secs(2), "detected after {:?}", started.elapsed());
        assert_eq!(z.close_reason(), Some(tandem_std::ConnectionError::IdleTimeout));
        eventually("zombie removed", || server.peer("zombie").is_none());
        // The live peer answers keepalives and stays.
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(live.call(&ADD, &(1, 1), T), Ok(2));
        assert!(server.peer("alive").is_some());
        assert!(live.stats().pings_sent > 0 || server.peer("alive").unwrap().stats().pings_sent > 0);
    });
}

/// Reads until the server closes the socket; fails if it does not within `T`.
fn expect_closed_by_server(mut sock: TcpStream) {
    sock.set_read_timeout(Some(T)).unwrap();
    let mut rest = Vec::new();
    // The server sends at most a CLOSE frame, then shuts the socket.
    sock.read_to_end(&mut rest).expect("the server should close the connection");
    assert!(rest.len() < 1024, "unexpected reply of {} bytes", rest.len());
}

#[test]
fn garbage_senders_are_disconnected_without_disturbing_others() {
    bounded(20, || {
        let (seen, _) = Seen::new();
        let mut cfg = ServerConfig::new("hub");
        cfg.connection.handshake_timeout = Duration::from_millis(200);
        let server = Server::bind("tcp://127.0.0.1:0", cfg, handlers("hub", &seen)).unwrap();
        let addr = server.local_addr().to_string();
        let tcp = addr.trim_start_matches("tcp://").to_string();
        let good = client(&server, "good");
        let pending = good.start_call(&SLEEP, &100, T).unwrap();

        // Bytes that are not a frame at all: refused at once.
        let mut bad = TcpStream::connect(&tcp).unwrap();
        bad.write_all(&[0xff; 64]).unwrap();
        expect_closed_by_server(bad);

        // Another protocol whose bytes look like the start of a long frame: the handshake
        // timeout ends it.
        let mut http = TcpStream::connect(&tcp).unwrap();
        http.write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").unwrap();
        expect_closed_by_server(http);

        // A peer that completes the handshake, then sends garbage.
        let mut z = zombie(&addr, "corrupt");
        let zp = server.wait_for_peer("corrupt", T).unwrap();
        z.write_all(&[0xff; 32]).unwrap();
        expect_closed_by_server(z);
        eventually("the corrupt peer is closed", || zp.is_closed());
        let reason = zp.close_reason().unwrap();
        assert_eq!(reason.blame(), tandem_std::tandem_core::Blame::PeerInvalidBytes, "{reason}");
        eventually("the corrupt peer is forgotten", || server.peer("corrupt").is_none());

        // The well-behaved peer never noticed.
        assert_eq!(pending.wait(), Ok(100));
        assert_eq!(good.call(&ADD, &(2, 2), T), Ok(4));
        assert_eq!(server.peers().len(), 1);
        assert_eq!(good.stats().protocol_errors, 0);
    });
}

#[test]
fn oversized_seqpacket_datagram_is_refused() {
    bounded(20, || {
        use socket2::{Domain, SockAddr, Socket, Type};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        let server = server(&format!("unix+seqpacket://{}", path.display()));
        let good = client(&server, "good");
        let raw = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        raw.connect(&SockAddr::unix(&path).unwrap()).unwrap();
        raw.set_read_timeout(Some(T)).unwrap();
        // One byte more than the 64 KiB the server accepts.
        raw.send(&vec![0u8; 64 * 1024 + 1]).unwrap();
        // The server answers with CLOSE (LIMIT_EXCEEDED), then ends the connection.
        let mut buf = [0u8; 2048];
        let n = (&raw).read(&mut buf).expect("the server should answer");
        use tandem_std::tandem_core::frame::{Decoded, Frame};
        match Frame::decode(&buf[..n], 4096) {
            Ok(Decoded::Frame(Frame::Close { status, .. }, _)) => {
                assert_eq!(status, Status::LIMIT_EXCEEDED)
            }
            other => panic!("expected CLOSE, got {other:?}"),
        }
        assert_eq!((&raw).read(&mut buf).expect("the server should close"), 0);
        assert_eq!(good.call(&ADD, &(1, 2), T), Ok(3));
    });
}

#[test]
fn graceful_shutdown_lets_in_flight_calls_finish() {
    bounded(20, || {
        let server = server("tcp://127.0.0.1:0");
        let c = client(&server, "c");
        let pending = c.start_call(&SLEEP, &200, T).unwrap();
        let on_server = server.wait_for_peer("c", T).unwrap();
        // GOAWAY refuses calls the server has not seen yet: wait until this one arrived.
        eventually("the call reaches the server", || on_server.stats().calls_open_inbound == 1);
        drop(on_server);
        let closer = std::thread::spawn(move || server.shutdown(T));
        // Once GOAWAY arrived, new calls are refused (safe to retry elsewhere); the one in
        // flight completes.
        eventually("GOAWAY arrives", || {
            c.call(&ADD, &(1, 1), T).map_err(|e| e.status()) == Err(Status::UNAVAILABLE)
        });
        assert_eq!(pending.wait(), Ok(200));
        closer.join().unwrap();
        eventually("the client sees the close", || c.is_closed());
        assert!(c.close_reason().unwrap().is_graceful(), "{:?}", c.close_reason());
    });
}

#[test]
fn connection_loss_fails_pending_calls_with_unavailable() {
    bounded(20, || {
        let server = server("tcp://127.0.0.1:0");
        let c = client(&server, "c");
        let pending = c.start_call(&WAIT_CANCEL, &(), T).unwrap();
        let stream = c.open_stream(&STREAM_WAIT, &(), T).unwrap();
        server.wait_for_peer("c", T).unwrap().close_with(Status::UNAVAILABLE, "test kills it");
        assert_eq!(pending.wait(), Err(CallError::from(Status::UNAVAILABLE)));
        let (_tx, mut rx) = stream;
        assert_eq!(rx.recv().unwrap_err().status(), Status::UNAVAILABLE);
        eventually("the client sees the close", || c.is_closed());
        assert_eq!(c.call(&ADD, &(1, 1), T).unwrap_err().status(), Status::UNAVAILABLE);
    });
}

#[test]
fn client_without_handlers_answers_unknown_module() {
    bounded(20, || {
        let server = server("tcp://127.0.0.1:0");
        let _c =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("bare"), Handlers::new())
                .unwrap();
        let p = server.wait_for_peer("bare", T).unwrap();
        assert_eq!(p.call(&ADD, &(1, 1), T).map_err(|e| e.status()), Err(Status::UNKNOWN_MODULE));
    });
}

#[test]
fn peer_limits_are_what_the_other_side_announced() {
    bounded(20, || {
        let mut config = ServerConfig::new("hub");
        config.connection = Config { max_concurrent_calls: 7, max_frame_size: 8192, ..Config::default() };
        let (seen, _) = Seen::new();
        let server = Server::bind("tcp://127.0.0.1:0", config, handlers("hub", &seen)).unwrap();
        let mut c = ClientConfig::new("limits");
        c.connection = Config { max_concurrent_streams: 3, ..Config::default() };
        let client = Client::connect(&server.local_addr().to_string(), c, Handlers::new()).unwrap();
        let l = client.peer_limits().expect("the server's HELLO has arrived");
        assert_eq!((l.max_concurrent_calls, l.max_frame_size), (7, 8192));
        assert_eq!(l.features, tandem_std::Features::ALL);
        let peer = server.wait_for_peer("limits", T).unwrap();
        assert_eq!(peer.peer_limits().unwrap().max_concurrent_streams, 3);
    });
}
