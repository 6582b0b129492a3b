//! Fair handler capacity (issue 10): peers that each stay within the limits the server
//! announces, holding every call and stream slot with slow handlers and unread streams, must
//! not take the handler capacity another client needs. An unrelated client's calls keep a p99
//! latency under 50 ms during the attack, and the server answers new calls within a second
//! after the attackers leave.
//!
//! Before the fair pool, 8 connections × 16 slow calls took every worker and the unrelated
//! client completed no call at all until the attackers' sessions expired.
//!
//! The attackers are raw peers (frames written directly, nothing read); the unrelated client
//! is a `tandem_std::Client`. Timing bounds are generous for a loaded 2-core machine: a probe
//! call normally takes well under a millisecond.

mod common;

use common::bounded;
use std::time::{Duration, Instant};
use tandem_std::tandem_core::frame::{Frame, Request};
use tandem_std::{Client, ClientConfig, Config, Handlers, MethodId, PoolStats, Server, ServerConfig};
use tandem_testkit::wire::RawPeer;

/// Echo, run on the handler pool (not inline: the pool is what is under test).
const ECHO: MethodId = MethodId::new(1, 1);
/// Sleeps 10 s unless cancelled, the right way (`Ctx::wait_cancelled`: the worker is released).
const SLEEP: MethodId = MethodId::new(1, 2);
/// Sleeps 5 s with `thread::sleep`: blocks its thread, invisible to the runtime.
const SLEEP_BLOCKING: MethodId = MethodId::new(1, 3);
/// Stream: sends items until cancelled (waits for credit the attacker never gives).
const PRODUCE: MethodId = MethodId::new(2, 1);
/// Stream: waits for items that never come.
const CONSUME: MethodId = MethodId::new(2, 2);

const CALLS: u32 = 16;
const STREAMS: u32 = 8;
/// Probe calls measured during the attack.
const PROBES: usize = 400;
/// The p99 bound of the issue.
const P99: Duration = Duration::from_millis(50);
/// How soon after the attackers leave a new client must be answered.
const RECOVERY: Duration = Duration::from_secs(1);

fn handlers() -> Handlers {
    Handlers::new()
        .raw_unary(ECHO, |_, b| Ok(b))
        .raw_unary(SLEEP, |ctx, _| {
            ctx.wait_cancelled(Duration::from_secs(10));
            Ok(Vec::new())
        })
        .raw_unary(SLEEP_BLOCKING, |_, _| {
            std::thread::sleep(Duration::from_secs(5));
            Ok(Vec::new())
        })
        .raw_streaming(PRODUCE, |ctx, _, _rx, mut tx| {
            while !ctx.is_cancelled() {
                tx.send(&[7u8; 64]).map_err(|e| e.status())?;
            }
            Ok(())
        })
        .raw_streaming(CONSUME, |_, _, mut rx, _tx| {
            while rx.recv().map_err(|e| e.status())?.is_some() {}
            Ok(())
        })
}

/// The limits of the conformance test service (SPEC.md Appendix A.4): 16 calls and 8 streams
/// per peer; everything else default (16 workers, 1024 threads at most).
fn server() -> Server {
    let connection =
        Config { max_concurrent_calls: CALLS, max_concurrent_streams: STREAMS, ..Config::default() };
    let config = ServerConfig { connection, ..ServerConfig::new("fair") };
    Server::bind("tcp://127.0.0.1:0", config, handlers()).unwrap()
}

fn request(id: u64, m: MethodId) -> Request<'static> {
    Request { flags: 0, id, module: m.module, method: m.method, budget_us: 0, total_len: None, payload: b"" }
}

/// `peers` raw connections, each opening `per_peer` exchanges with `open` and reading nothing.
fn attack(
    addr: &str,
    peers: usize,
    per_peer: u32,
    open: impl Fn(u64, u32) -> Frame<'static>,
) -> Vec<RawPeer> {
    (0..peers)
        .map(|i| {
            let mut p = RawPeer::connect(addr).unwrap();
            p.hello(&format!("attacker-{i}"), &[]).unwrap();
            p.expect_hello(Duration::from_secs(5)).unwrap();
            for n in 0..per_peer {
                p.send(&open(u64::from(n) * 2, n)).unwrap();
            }
            p
        })
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Measures `PROBES` sequential calls of an unrelated client; returns (p50, p99, max).
fn probe(addr: &str, name: &str) -> (Duration, Duration, Duration) {
    let client = Client::connect(addr, ClientConfig::new(name), Handlers::new()).unwrap();
    let mut lat = Vec::with_capacity(PROBES);
    for i in 0..PROBES {
        let t = Instant::now();
        let back = client.call_raw(ECHO, &(i as u32).to_le_bytes(), Duration::from_secs(30)).unwrap();
        lat.push(t.elapsed());
        assert_eq!(back, (i as u32).to_le_bytes());
    }
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p).div_ceil(100) - 1];
    (pct(50), pct(99), lat[lat.len() - 1])
}

/// After the attackers have gone: a new client connects and is answered within `RECOVERY`.
fn recovery(addr: &str) -> Duration {
    let t = Instant::now();
    let client = Client::connect(addr, ClientConfig::new("after"), Handlers::new()).unwrap();
    client.call_raw(ECHO, b"hi", Duration::from_secs(30)).unwrap();
    let took = t.elapsed();
    client.shutdown(Duration::from_secs(1));
    took
}

fn scenario(
    what: &str,
    attackers: usize,
    per_peer: u32,
    open: impl Fn(u64, u32) -> Frame<'static>,
    holding: impl Fn(&PoolStats) -> bool,
) {
    let server = server();
    let addr = server.local_addr().to_string();
    let peers = attack(&addr, attackers, per_peer, open);
    // Every attacking exchange admitted and its handler started (parked or running).
    wait_until("the attack to hold its slots", || holding(&server.handler_pool()));
    let (p50, p99, max) = probe(&addr, "probe");
    let during = server.handler_pool();
    eprintln!(
        "{what}: {attackers} peers × {per_peer}: probe p50 {p50:?}, p99 {p99:?}, max {max:?} over {PROBES} calls; \
         pool during the attack: {during:?}"
    );
    assert!(p99 < P99, "{what}: the unrelated client's p99 is {p99:?} (bound {P99:?}); pool {during:?}");
    assert!(during.threads <= ServerConfig::new("").max_workers);
    drop(peers);
    let took = recovery(&addr);
    eprintln!("{what}: a new client was answered {took:?} after the attackers left");
    assert!(took < RECOVERY, "{what}: a new client waited {took:?} after the attackers left");
    server.shutdown(Duration::from_millis(100));
}

#[test]
fn slow_calls_holding_every_slot_do_not_starve_other_clients() {
    bounded(120, || {
        // 8 connections × 16 calls to a handler that waits 10 s (the right way).
        let n = 8 * CALLS as usize;
        scenario("slow calls", 8, CALLS, |id, _| Frame::Call(request(id, SLEEP)), |s| s.parked >= n);
    });
}

#[test]
fn blocking_handlers_holding_every_slot_do_not_starve_other_clients() {
    bounded(120, || {
        // The same with `thread::sleep`, which the pool cannot see: the attackers' calls fill
        // the 16 workers (the rest wait in their connections' queues), and the probe, whose
        // connection has nothing running, is served on an extra thread.
        let n = 8 * CALLS as usize;
        let blocking = |id, _| Frame::Call(request(id, SLEEP_BLOCKING));
        scenario("blocking calls", 8, CALLS, blocking, |s| s.running >= 16 && s.running + s.queued >= n);
    });
}

#[test]
fn unread_streams_holding_every_slot_do_not_starve_other_clients() {
    bounded(120, || {
        // 10 connections × 8 streams never given credit nor items: half of the handlers wait
        // for credit, half for an item.
        let open = |id, n: u32| {
            let m = if n % 2 == 0 { PRODUCE } else { CONSUME };
            Frame::StreamOpen(request(id, m))
        };
        let n = 10 * STREAMS as usize;
        scenario("unread streams", 10, STREAMS, open, |s| s.parked >= n);
    });
}
