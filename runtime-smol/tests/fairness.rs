//! Fair handler capacity: peers that each stay within the limits the server announced, holding
//! every call slot with slow handlers and every stream slot with streams they never read, must
//! not take the capacity an unrelated client needs. Its unary calls keep a p99 latency under
//! 50 ms, and once the attackers have gone the server answers new calls within a second.
//!
//! The attackers are raw peers (`tandem_testkit::wire::RawPeer`) over real TCP sockets: they
//! never read the socket at all, so they return no stream credit and leave every answer queued.

use std::time::{Duration, Instant};

use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::{Client, ClientConfig, Config, Handlers, MethodId, Server, ServerConfig, Status};
use tandem_testkit::wire::{call, stream_open, RawPeer};

const MODULE: u32 = 5;
/// Unary: waits 60 s unless cancelled.
const SLOW: u32 = 1;
/// Stream: sends 1 KiB items forever, as credit allows.
const FOREVER: u32 = 2;
/// Unary: the legitimate client's call.
const ECHO: Unary<u64, u64> = Unary::new(MODULE, 3);

const ATTACKERS: usize = 8;
const CALLS: u32 = 16;
const STREAMS: u32 = 8;
const SAMPLES: usize = 500;
const T: Duration = Duration::from_secs(10);

fn router() -> Handlers {
    Handlers::new()
        .raw_unary(MethodId::new(MODULE, SLOW), |ctx, _| async move {
            let sleep = async {
                smol::Timer::after(Duration::from_secs(60)).await;
            };
            futures_lite::future::or(sleep, ctx.cancelled()).await;
            Ok(Vec::new())
        })
        .raw_streaming(MethodId::new(MODULE, FOREVER), |_ctx, _init, _rx, mut tx| async move {
            let item = vec![1u8; 1024];
            loop {
                tx.send(&item).await.map_err(|e| e.status())?;
            }
        })
        .unary(&ECHO, |_ctx, v: u64| async move { Ok::<_, Status>(v) })
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99).div_ceil(100) - 1]
}

#[test]
fn attackers_within_their_limits_do_not_starve_another_client() {
    let config = Config {
        max_concurrent_calls: CALLS,
        max_concurrent_streams: STREAMS,
        session_grace: Duration::from_secs(2),
        ..Config::default()
    };
    let server = Server::bind(
        "tcp://127.0.0.1:0",
        ServerConfig { connection: config, ..ServerConfig::new("server") },
        router(),
    )
    .unwrap();
    let addr = server.local_addr().to_string();
    let client =
        smol::block_on(Client::connect(&addr, ClientConfig::new("client"), Handlers::new())).unwrap();
    // Warm up the client's connection.
    for i in 0..20 {
        smol::block_on(client.call(&ECHO, &i, T)).unwrap();
    }

    // Every attacker holds all its call slots and all its stream slots.
    let mut attackers = Vec::new();
    for a in 0..ATTACKERS {
        let mut p = RawPeer::connect(&addr).unwrap();
        p.hello(&format!("attacker-{a}"), &[]).unwrap();
        p.expect_hello(T).unwrap();
        let mut b = Vec::new();
        for i in 0..u64::from(CALLS) {
            b.extend(call(2 * i, MODULE, SLOW, b""));
        }
        for i in 0..u64::from(STREAMS) {
            b.extend(stream_open(2 * (u64::from(CALLS) + i), MODULE, FOREVER, true, b""));
        }
        p.send_bytes(&b).unwrap();
        attackers.push(p);
    }
    // Until the server runs every attacker's handlers.
    let end = Instant::now() + T;
    while server.peers().iter().filter(|p| p.name().starts_with("attacker")).count() < ATTACKERS
        || server.peers().iter().filter(|p| p.name().starts_with("attacker")).any(|p| {
            let s = p.stats();
            // Every slot held, and every stream stalled on credit.
            s.calls_open_inbound < CALLS
                || s.streams_open_inbound < STREAMS
                || s.credit_stalls < u64::from(STREAMS)
        })
    {
        assert!(Instant::now() < end, "the attackers' calls never all ran");
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut lat = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES as u64 {
        let t = Instant::now();
        assert_eq!(smol::block_on(client.call(&ECHO, &i, T)).unwrap(), i);
        lat.push(t.elapsed());
    }
    let p = p99(lat.clone());
    println!(
        "fairness (smol): {ATTACKERS} attackers × {CALLS} slow calls + {STREAMS} unread streams; \
         client p50 {:?}, p99 {p:?}, max {:?} over {SAMPLES} calls",
        {
            let mut v = lat.clone();
            v.sort();
            v[v.len() / 2]
        },
        lat.iter().max().unwrap()
    );
    assert!(p < Duration::from_millis(50), "p99 {p:?} under attack");

    // The attackers leave (their sessions are suspended, then expire): new calls are answered
    // at once.
    drop(attackers);
    let t = Instant::now();
    smol::block_on(client.call(&ECHO, &7, T)).unwrap();
    let first = t.elapsed();
    let fresh =
        smol::block_on(Client::connect(&addr, ClientConfig::new("newcomer"), Handlers::new())).unwrap();
    smol::block_on(fresh.call(&ECHO, &8, T)).unwrap();
    let newcomer = t.elapsed();
    println!("fairness (smol): after the attackers left: next call {first:?}, new client's first call {newcomer:?}");
    assert!(newcomer < Duration::from_secs(1), "{newcomer:?} to serve a new client after the attack");
    smol::block_on(server.shutdown(Duration::from_millis(200)));
}
