//! The server's bounds on what peers can make it hold: connections in the handshake
//! (`EndpointConfig::max_handshaking`), signal handlers (`max_concurrent_calls`), handler
//! threads (`max_workers`, and the limits announced to fit it), and the memory of connections
//! in the handshake.

mod common;

use common::bounded;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_std::tandem_core::frame::Frame;
use tandem_std::{Client, ClientConfig, Config, Handlers, MethodId, Server, ServerConfig};
use tandem_testkit::wire::RawPeer;

#[global_allocator]
static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;

const ECHO: MethodId = MethodId::new(1, 1);
const SLOW_LOG: MethodId = MethodId::new(1, 2);

fn handlers() -> Handlers {
    handlers_counting(Arc::default())
}

/// The test handlers; `runs` counts the runs of the slow notification handler.
fn handlers_counting(runs: Arc<AtomicUsize>) -> Handlers {
    Handlers::new().raw_unary(ECHO, |_, b| Ok(b)).raw_notification(SLOW_LOG, move |ctx, _| {
        runs.fetch_add(1, Ordering::SeqCst);
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
        config.endpoint.max_handshaking = 8;
        config.connection.handshake_timeout = Duration::from_millis(500);
        let server = Server::bind("tcp://127.0.0.1:0", config, handlers()).unwrap();
        let addr = server.local_addr().to_string();
        // A client connected before the flood keeps being served during it.
        let client = Client::connect(&addr, ClientConfig::new("regular"), Handlers::new()).unwrap();
        let base = threads();
        // 100 connections that never send their HELLO: beyond the 8 in the handshake, the
        // server refuses them at once (closed, counted).
        let stuck: Vec<_> = (0..100).map(|_| RawPeer::connect(&addr).unwrap()).collect();
        let end = Instant::now() + Duration::from_secs(5);
        while server.stats().endpoint.refused_handshakes < 92 {
            assert!(
                Instant::now() < end,
                "the server did not refuse handshakes beyond the limit: {:?}",
                server.stats()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        for _ in 0..20 {
            let stats = server.stats();
            assert!(stats.handshaking <= 8, "{stats:?}");
            let t = threads();
            // No thread per connection: the I/O threads wait on all of them.
            assert!(t <= base + 2, "{t} threads (before the flood: {base})");
            let start = Instant::now();
            client.call_raw(ECHO, b"still here", Duration::from_secs(5)).unwrap();
            assert!(start.elapsed() < Duration::from_secs(1));
            std::thread::sleep(Duration::from_millis(20));
        }
        // The 8 stuck handshakes time out (HANDSHAKE_TIMEOUT).
        let end = Instant::now() + Duration::from_secs(10);
        while server.stats().handshaking > 0 {
            assert!(Instant::now() < end, "handshakes never timed out");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(stuck);
        // New clients are accepted again.
        let late = Client::connect(&addr, ClientConfig::new("late"), Handlers::new()).unwrap();
        assert_eq!(late.call_raw(ECHO, b"hi", Duration::from_secs(5)).unwrap(), b"hi");
        late.shutdown(Duration::from_secs(1));
        client.shutdown(Duration::from_secs(1));
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn signal_handlers_are_bounded() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    bounded(60, || {
        let mut config = ServerConfig::new("bounded");
        config.connection.max_concurrent_calls = 16;
        let runs = Arc::new(AtomicUsize::new(0));
        let server = Server::bind("tcp://127.0.0.1:0", config, handlers_counting(runs.clone())).unwrap();
        let addr = server.local_addr().to_string();
        let mut p = RawPeer::connect(&addr).unwrap();
        p.hello("signaller", &[]).unwrap();
        p.expect_hello(Duration::from_secs(5)).unwrap();
        // 5,000 signals to a handler that takes 200 ms each: at most `max_concurrent_calls`
        // signal handlers run (or wait in the pool) at once; the others are dropped, as a lost
        // datagram would be.
        let frame = tandem_testkit::wire::encode(&Frame::Signal { module: 1, method: 2, payload: &[0; 512] });
        let burst: Vec<u8> = (0..5000).flat_map(|_| frame.iter().copied()).collect();
        p.send_bytes(&burst).unwrap();
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            let s = server.handler_pool();
            assert!(s.queued + s.running + s.parked <= 16, "{s:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
        let ran = runs.load(Ordering::SeqCst);
        assert!((16..1000).contains(&ran), "{ran} of 5,000 signals ran");
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn announced_limits_fit_the_thread_cap() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    bounded(60, || {
        let mut config = ServerConfig::new("small");
        config.workers = 4;
        config.max_workers = 34;
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
        let stream = client.open_stream_raw(ECHO, b"x", tandem_std::Deadline::None);
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
        while server.stats().handshaking < 100 {
            assert!(Instant::now() < end, "only {} connections in the handshake", server.stats().handshaking);
            std::thread::sleep(Duration::from_millis(5));
        }
        let per = (tandem_testkit::heap::settled(256, Duration::from_secs(2)) - base) / 100;
        println!("live heap per connection in the handshake: {per} B");
        // I/O buffers start small and grow only with traffic (they once held 128 KiB from the
        // start).
        assert!(per < 16 * 1024, "{per} bytes per connection in the handshake");
        drop(stuck);
        server.shutdown(Duration::from_secs(1));
    });
}
