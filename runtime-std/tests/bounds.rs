//! The server's bounds on what peers can make it hold: connections in the handshake
//! (`max_handshaking`), queued signals (`max_queued_signals`), handler threads
//! (`max_handler_threads`, and the limits announced to fit it).

mod common;

use common::bounded;
use std::time::{Duration, Instant};
use tandem_core::frame::Frame;
use tandem_core::{Config, MethodId};
use tandem_std::{Client, ClientConfig, Handlers, Server, ServerConfig};
use tandem_testkit::wire::RawPeer;

#[global_allocator]
static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;

const ECHO: MethodId = MethodId::new(1, 1);
const SLOW_LOG: MethodId = MethodId::new(1, 2);

fn handlers() -> Handlers {
    Handlers::new().raw_unary(ECHO, |_, b| Ok(b.to_vec())).raw_notification(SLOW_LOG, |ctx, _| {
        ctx.wait_cancelled(Duration::from_millis(200));
        Ok(())
    })
}

/// The tests count this process's threads: they take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Threads of this process now.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn stuck_handshakes_are_bounded() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    bounded(60, || {
        let mut config = ServerConfig::new("bounded");
        config.max_handshaking = 8;
        config.connection.handshake_timeout = Duration::from_millis(500);
        let server = Server::bind("tcp://127.0.0.1:0", config, handlers()).unwrap();
        let addr = server.local_addr().to_string();
        // A client connected before the flood keeps being served during it.
        let client = Client::connect(&addr, ClientConfig::new("regular"), Handlers::new()).unwrap();
        let base = threads();
        // 100 connections that never send their HELLO.
        let stuck: Vec<_> = (0..100).map(|_| RawPeer::connect(&addr).unwrap()).collect();
        let end = Instant::now() + Duration::from_secs(5);
        while server.accept_pauses() == 0 {
            assert!(Instant::now() < end, "the server never paused accepting");
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..20 {
            assert!(server.handshaking() <= 8, "{} connections in the handshake", server.handshaking());
            let t = threads();
            // One driver thread per connection in the handshake, nothing for the rest.
            assert!(t <= base + 8 + 2, "{t} threads (before the flood: {base})");
            let start = Instant::now();
            client.call_raw(ECHO, b"still here", Duration::from_secs(5)).unwrap();
            assert!(start.elapsed() < Duration::from_secs(1));
            std::thread::sleep(Duration::from_millis(20));
        }
        // Stuck handshakes time out (HANDSHAKE_TIMEOUT), eight at a time, and the server
        // accepts the next ones from the backlog (pausing again at eight).
        let end = Instant::now() + Duration::from_secs(10);
        while server.accept_pauses() < 2 {
            assert!(server.handshaking() <= 8);
            assert!(Instant::now() < end, "accepting never resumed after handshake timeouts");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The stuck peers leave; what is left of them ends as soon as it is accepted.
        drop(stuck);
        let end = Instant::now() + Duration::from_secs(30);
        while server.handshaking() > 0 {
            assert!(Instant::now() < end, "handshakes never drained");
            std::thread::sleep(Duration::from_millis(10));
        }
        // New clients are accepted again.
        let late = Client::connect(&addr, ClientConfig::new("late"), Handlers::new()).unwrap();
        assert_eq!(late.call_raw(ECHO, b"hi", Duration::from_secs(5)).unwrap(), b"hi");
        late.shutdown(Duration::from_secs(1));
        client.shutdown(Duration::from_secs(1));
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn queued_signals_are_bounded() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    bounded(60, || {
        let mut config = ServerConfig::new("bounded");
        config.max_queued_signals = 16;
        let server = Server::bind("tcp://127.0.0.1:0", config, handlers()).unwrap();
        let addr = server.local_addr().to_string();
        let mut p = RawPeer::connect(&addr).unwrap();
        p.hello("signaller", &[]).unwrap();
        p.expect_hello(Duration::from_secs(5)).unwrap();
        // 5,000 signals to a handler that takes 200 ms each.
        let frame = tandem_testkit::wire::encode(&Frame::Signal { module: 1, method: 2, payload: &[0; 512] });
        let burst: Vec<u8> = (0..5000).flat_map(|_| frame.iter().copied()).collect();
        p.send_bytes(&burst).unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while server.handler_pool().dropped_signals < 4000 {
            let s = server.handler_pool();
            assert!(s.queued <= 16, "{s:?}");
            assert!(Instant::now() < end, "signals were not dropped: {s:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        let s = server.handler_pool();
        assert!(s.queued <= 16 && s.dropped_signals <= 5000, "{s:?}");
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn announced_limits_fit_the_thread_cap() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    bounded(60, || {
        let mut config = ServerConfig::new("small");
        config.workers = 4;
        config.max_handler_threads = 34;
        config.connection =
            Config { max_concurrent_calls: 40, max_concurrent_streams: 20, ..Config::default() };
        let server = Server::bind("tcp://127.0.0.1:0", config, handlers()).unwrap();
        let mut p = RawPeer::connect(&server.local_addr().to_string()).unwrap();
        p.hello("looker", &[]).unwrap();
        let limits = p.expect_hello(Duration::from_secs(5)).unwrap();
        // 30 threads beside the 4 workers: 40 + 20 slots would not fit, so the server
        // announces 20 + 10 (the same proportions).
        assert_eq!((limits.max_concurrent_calls, limits.max_concurrent_streams), (20, 10));
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn exchanges_toward_a_zero_limit_are_refused_at_once() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    bounded(60, || {
        let mut config = ServerConfig::new("closed-door");
        config.connection.max_concurrent_calls = 0;
        config.connection.max_concurrent_streams = 0;
        let server = Server::bind("tcp://127.0.0.1:0", config, handlers()).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("c"), Handlers::new())
                .unwrap();
        // No slot can ever free up (SPEC.md §10.5): refused at once, not after the timeout.
        let start = Instant::now();
        let call = client.call_raw(ECHO, b"x", Duration::from_secs(30));
        assert_eq!(call.unwrap_err().status(), tandem_std::Status::RESOURCE_EXHAUSTED);
        let stream = client.open_stream_raw(ECHO, b"x", None);
        assert_eq!(stream.unwrap_err().status(), tandem_std::Status::RESOURCE_EXHAUSTED);
        assert!(start.elapsed() < Duration::from_secs(5));
        client.shutdown(Duration::from_secs(1));
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn connections_in_the_handshake_hold_little_memory() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    bounded(60, || {
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("frugal"), handlers()).unwrap();
        let addr = server.local_addr().to_string();
        let base = tandem_testkit::heap::settled(256, Duration::from_secs(2));
        let stuck: Vec<_> = (0..100).map(|_| RawPeer::connect(&addr).unwrap()).collect();
        let end = Instant::now() + Duration::from_secs(10);
        while server.handshaking() < 100 {
            assert!(Instant::now() < end, "only {} connections in the handshake", server.handshaking());
            std::thread::sleep(Duration::from_millis(5));
        }
        let per = (tandem_testkit::heap::settled(256, Duration::from_secs(2)) - base) / 100;
        println!("live heap per connection in the handshake: {per} B");
        // I/O buffers start small (4 KiB each way) and grow only with traffic; before, each
        // connection held 128 KiB of them from the start.
        assert!(per < 24 * 1024, "{per} bytes per connection in the handshake");
        drop(stuck);
        server.shutdown(Duration::from_secs(1));
    });
}
