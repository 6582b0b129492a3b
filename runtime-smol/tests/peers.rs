//! Many peers: call one, call all, stale-peer replacement, dead-peer detection, and a
//! garbage-sending peer that is disconnected without disturbing the others.

mod common;
use core::time::Duration;
use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use tandem_smol::tandem_core::{Config, Connection, Event, Identity, Instant, Role};
use tandem_smol::{
    CallError, Client, ClientConfig, ConnectionError, Deadline, EndpointConfig, Handlers, Server,
    ServerConfig, Status,
};

#[test]
fn many_peers_call_one_and_call_all() {
    run(T * 2, async {
        let dir = tempfile::tempdir().unwrap();
        for addr in addresses(dir.path()) {
            let (log, _log_rx) = async_channel::unbounded();
            let server = Server::bind(&addr, ServerConfig::new("server"), router(log.clone())).unwrap();
            let addr = server.local_addr().to_string();
            let mut clients = Vec::new();
            for i in 0..8 {
                let name = format!("node-{i}");
                clients.push(
                    Client::connect(&addr, ClientConfig::new(name), router(log.clone())).await.unwrap(),
                );
            }
            // Anonymous peers are served but not tracked (nor replaced by each other).
            let anon1 = Client::connect(&addr, ClientConfig::new(""), Handlers::new()).await.unwrap();
            let anon2 = Client::connect(&addr, ClientConfig::new(""), Handlers::new()).await.unwrap();
            assert_eq!(anon1.call(&ECHO, &"a".into(), Deadline::None).await.unwrap(), ":a");
            assert!(!anon1.is_closed() && !anon2.is_closed());
            let names: Vec<String> = (0..8).map(|i| format!("node-{i}")).collect();
            assert_eq!(server.peers().iter().map(|p| p.name().to_string()).collect::<Vec<_>>(), names);
            // Call one by name.
            let p = server.peer("node-3").unwrap();
            assert_eq!(p.call(&ECHO, &"x".into(), Deadline::None).await.unwrap(), "server:x");
            assert!(server.peer("nobody").is_none());
            // Call all: one result per peer.
            let results = server.call_all(&ADD, &Add { a: 1, b: 1 }, T).await;
            assert_eq!(results.len(), 8);
            for ((peer, r), want) in results.into_iter().zip(&names) {
                assert_eq!(peer.name(), want);
                assert_eq!(r, Ok(2));
            }
            // One peer leaves: call_all reports the rest.
            clients.remove(0).close();
            within(T, async {
                while server.peer("node-0").is_some() {
                    async_io::Timer::after(Duration::from_millis(2)).await;
                }
            })
            .await;
            let results = server.call_all(&ECHO, &"y".into(), Deadline::None).await;
            assert_eq!(results.len(), 7);
            assert!(results.iter().all(|(n, r)| r.as_deref() == Ok("server:y") && n.name() != "node-0"));
            server.shutdown(T).await;
        }
    });
}

#[test]
fn reconnecting_peer_replaces_its_stale_connection() {
    run(T, async {
        let (log, _log_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router(log.clone())).unwrap();
        let addr = server.local_addr().to_string();
        let old = Client::connect(&addr, ClientConfig::new("twin"), router(log.clone())).await.unwrap();
        let old_handle = server.peer("twin").unwrap();
        // A call pending on the old connection (the handler waits until cancelled).
        let slow = tandem_smol::Handlers::new().unary(&SLOW, |ctx, v: u64| async move {
            ctx.cancelled().await;
            Ok(v)
        });
        drop(old);
        let old = Client::connect(&addr, ClientConfig::new("twin"), slow.clone()).await.unwrap();
        let stale = server.peer("twin").unwrap();
        let pending = stale.call(&SLOW, &1, Deadline::None);
        let new = async {
            async_io::Timer::after(Duration::from_millis(50)).await;
            Client::connect(&addr, ClientConfig::new("twin"), router(log.clone())).await.unwrap()
        };
        let (result, new) = futures_lite::future::zip(pending, new).await;
        assert_eq!(result, Err(CallError::from(Status::UNAVAILABLE)));
        assert_eq!(within(T, old.closed()).await.status(), Status::UNAVAILABLE);
        assert!(old_handle.is_closed() && stale.is_closed());
        let current = server.peer("twin").unwrap();
        assert!(!current.same_connection(&stale));
        assert_eq!(current.call(&ADD, &Add { a: 1, b: 2 }, Deadline::None).await, Ok(3));
        assert_eq!(
            server.peers().iter().map(|p| p.name().to_string()).collect::<Vec<_>>(),
            vec!["twin".to_string()]
        );
        drop(new);
        server.shutdown(T).await;
    });
}

/// HELLO bytes of a dialer named `name`.
fn hello(name: &str, config: Config) -> Vec<u8> {
    let me = Identity { name: name.as_bytes(), ..Identity::default() };
    let mut c = Connection::new(Role::Dialer, config, me, Instant::ZERO).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = c.poll_transmit(Instant::ZERO, &mut buf);
    buf.truncate(n);
    buf
}

/// Reads until EOF or error; panics after `T`.
fn expect_disconnect(mut s: TcpStream) {
    s.set_read_timeout(Some(T)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("peer was not disconnected")
            }
            Err(_) => return,
        }
    }
}

#[test]
fn silent_peer_is_detected_by_the_idle_timeout() {
    run(T, async {
        let config = Config {
            keepalive_interval: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(600),
            ..Config::default()
        };
        let server =
            // Without resumption: a resumable session would be suspended, not ended (see
            // tests/resume.rs).
            Server::bind("tcp://127.0.0.1:0", ServerConfig { connection: config.clone(), endpoint: EndpointConfig { resume: false, ..EndpointConfig::default() }, ..ServerConfig::new("server") }, Handlers::new())
                .unwrap();
        let addr = server.local_addr().to_string();
        let sock_addr = addr.trim_start_matches("tcp://").to_string();
        // A live client answers keepalives and stays.
        let live = Client::connect(
            &addr,
            ClientConfig { connection: config.clone(), ..ClientConfig::new("live") },
            Handlers::new(),
        )
        .await
        .unwrap();
        // A zombie says HELLO, then never reads or writes again.
        let zombie = blocking::unblock(move || {
            let mut s = TcpStream::connect(sock_addr).unwrap();
            s.write_all(&hello("zombie", Config::default())).unwrap();
            s
        })
        .await;
        assert!(server.wait_for_peer("zombie", T).await.is_some());
        let start = std::time::Instant::now();
        within(T, async {
            while server.peer("zombie").is_some() {
                async_io::Timer::after(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(start.elapsed() >= Duration::from_millis(400), "{:?}", start.elapsed());
        // The live peer survived several keepalive rounds.
        assert!(!live.is_closed());
        assert!(live.stats().pings_sent > 0 || server.peer("live").unwrap().stats().pings_sent > 0);
        drop(zombie);
        server.shutdown(T).await;
    });
}

#[test]
fn client_detects_dead_server_and_fails_pending_calls() {
    run(T, async {
        // A fake server: completes the handshake, then goes silent.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp://{}", listener.local_addr().unwrap());
        let fake = blocking::unblock(move || {
            let (mut s, _) = listener.accept().unwrap();
            let me = Identity { name: b"mute", ..Identity::default() };
            let mut c = Connection::new(Role::Acceptor, Config::default(), me, Instant::ZERO).unwrap();
            let mut buf = vec![0u8; 65536];
            while c.peer().is_none() {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                assert_eq!(c.handle_input(Instant::ZERO, &buf[..n]), n);
                while let Some(ev) = c.poll_event(Instant::ZERO) {
                    assert!(matches!(ev, Event::Connected));
                }
            }
            let n = c.poll_transmit(Instant::ZERO, &mut buf);
            s.write_all(&buf[..n]).unwrap();
            s
        });
        let config = Config {
            keepalive_interval: Duration::from_millis(50),
            idle_timeout: Duration::from_millis(250),
            ..Config::default()
        };
        let peer = Client::connect(
            &addr,
            ClientConfig { connection: config, ..ClientConfig::new("client") },
            Handlers::new(),
        )
        .await
        .unwrap();
        let _fake = fake.await;
        let r = within(T, peer.call(&ADD, &Add { a: 1, b: 1 }, Deadline::None)).await;
        assert_eq!(r, Err(CallError::from(Status::UNAVAILABLE)));
        assert_eq!(peer.closed().await, ConnectionError::IdleTimeout);
        // New calls fail at once.
        assert_eq!(
            peer.call(&ADD, &Add { a: 1, b: 1 }, Deadline::None).await,
            Err(CallError::from(Status::UNAVAILABLE))
        );
    });
}

#[test]
fn garbage_peer_is_disconnected_without_disturbing_others() {
    run(T, async {
        let (log, _log_rx) = async_channel::unbounded();
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router(log)).unwrap();
        let addr = server.local_addr().to_string();
        let good = Client::connect(&addr, ClientConfig::new("good"), Handlers::new()).await.unwrap();
        let sock_addr = addr.trim_start_matches("tcp://").to_string();
        let a2 = sock_addr.clone();
        // Garbage before any HELLO.
        let g1 = blocking::unblock(move || {
            let mut s = TcpStream::connect(a2).unwrap();
            s.write_all(&[0xff; 64]).unwrap();
            expect_disconnect(s);
        });
        // A valid HELLO, then garbage.
        let g2 = blocking::unblock(move || {
            let mut s = TcpStream::connect(sock_addr).unwrap();
            let mut bytes = hello("evil", Config::default());
            bytes.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02]);
            s.write_all(&bytes).unwrap();
            expect_disconnect(s);
        });
        let calls = async {
            for i in 0..50u32 {
                assert_eq!(good.call(&ADD, &Add { a: i, b: 1 }, T).await, Ok(i + 1));
            }
        };
        futures_lite::future::zip(futures_lite::future::zip(g1, g2), calls).await;
        assert!(server.peer("evil").is_none());
        assert_eq!(
            server.peers().iter().map(|p| p.name().to_string()).collect::<Vec<_>>(),
            vec!["good".to_string()]
        );
        assert!(!good.is_closed());
        server.shutdown(T).await;
    });
}

#[test]
fn peer_limits_are_what_the_other_side_announced() {
    run(T, async {
        let mut config = ServerConfig::new("hub");
        config.connection = Config { max_concurrent_calls: 7, max_frame_size: 8192, ..Config::default() };
        let (log, _log_rx) = async_channel::unbounded();
        let server = Server::bind("tcp://127.0.0.1:0", config, router(log)).unwrap();
        let mut c = ClientConfig::new("limits");
        c.connection = Config { max_concurrent_streams: 3, ..Config::default() };
        let client = Client::connect(&server.local_addr().to_string(), c, Handlers::new()).await.unwrap();
        let l = client.peer_limits().expect("the server's HELLO has arrived");
        assert_eq!((l.max_concurrent_calls, l.max_frame_size), (7, 8192));
        assert_eq!(l.features, tandem_smol::Features::ALL);
        let peer = server.wait_for_peer("limits", T).await.unwrap();
        assert_eq!(peer.peer_limits().unwrap().max_concurrent_streams, 3);
    });
}
