//! Churn: each kind of short-lived exchange, connection or session, repeated many times over
//! real sockets, must leave the live heap where it was. The counting allocator measures the
//! whole process (server and client both run here), before the churn (after a warm-up), right
//! after it, and once the sessions it left behind have expired (`session_grace` is short here).
//!
//! Bounds: once the connections are idle and the sessions expired the heap must be back within
//! 64 KiB of its baseline ([`BOUND`]); right after the churn, within 256 KiB ([`WORKING`]: busy
//! connections keep the buffers and tables the churn needed until they go idle). Neither depends
//! on the cycle count, only on how much was in flight at once.
//!
//! Cycle counts: 100,000 per kind in release builds. In debug builds 4,000, so that a leak of 50
//! bytes a cycle (4,000 × 50 = 200,000 bytes) would exceed the 64 KiB (65,536-byte) bound three
//! times over. `CHURN_CYCLES` overrides both.
//!
//! Print the report lines (they go into RELIABILITY.md) with
//! `cargo test --release -p tandem-smol --test churn -- --nocapture --test-threads=1`.

#[global_allocator]
static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;

use core::time::Duration;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_channel::{Receiver, Sender};
use futures_lite::future;
use tandem_smol::tandem_core::frame::Frame;
use tandem_smol::tandem_core::typed::{Notification, Streaming, Unary};
use tandem_smol::{
    Client, ClientConfig, Config, Deadline, EndpointConfig, Handlers, Peer, Server, ServerConfig, Status,
};
use tandem_testkit::heap::{self, Churn};
use tandem_testkit::wire::{call, RawPeer};

/// Waits until cancelled; reports its start on the router's channel.
const SLOW: Unary<u32, u32> = Unary::new(1, 1);
/// Echoes.
const ECHO: Unary<u32, u32> = Unary::new(1, 2);
/// Waits until cancelled (or its deadline passes), silently.
const WAIT: Unary<u32, u32> = Unary::new(1, 3);
/// Holds the stream until it is reset (or the connection ends); reports its start.
const HOLD: Streaming<(), u32, u32> = Streaming::new(2, 1);
/// Sums the opener's items, answers the sum, finishes.
const SUM: Streaming<(), u32, u64> = Streaming::new(2, 2);
/// Echoes every item (large ones are received straight into their own buffers).
const BLOBS: Streaming<(), Vec<u8>, Vec<u8>> = Streaming::new(2, 3);
/// Counts notifications and signals.
const NOTE: Notification<u32> = Notification::new(3, 1);

/// A suspended session is kept this long.
const GRACE: Duration = Duration::from_millis(200);
/// Largest growth of the live heap tolerated once the churn's connections have gone idle and its
/// sessions have expired, whatever the cycle count.
const BOUND: i64 = 64 * 1024;
/// Largest growth tolerated right after the churn, while its connections are still busy: their
/// buffers and tables keep the size the churn needed (at most `max_concurrent_calls` exchanges
/// in flight) until they have been idle for 250 ms, then give it back. Also independent of the
/// cycle count.
const WORKING: i64 = 256 * 1024;
/// Upper bound for any single wait.
const T: Duration = Duration::from_secs(10);

fn cycles() -> u64 {
    if let Some(n) = std::env::var("CHURN_CYCLES").ok().and_then(|v| v.parse().ok()) {
        return n;
    }
    if cfg!(debug_assertions) {
        4_000
    } else {
        100_000
    }
}

/// The live heap is process-wide: the tests of this file run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn config() -> Config {
    Config { session_grace: GRACE, ..Config::default() }
}

/// The live heap once it has stopped moving.
fn settled() -> i64 {
    heap::settled(256, Duration::from_secs(5))
}

/// Waits (at most 30 s) until the I/O threads run no more tasks than `own` (the count before
/// the churn began): connections closed by the cycles may still be closing at either end (a
/// closing connection lingers after its CLOSE, longer on a loaded machine), and their buffers
/// are not what the churn measures. Proceeds anyway after 30 s: whatever is left is then
/// measured, and the bound decides.
fn wound_down(own: usize) {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    while tandem_runtime::threads::io::tasks() > own && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Awaits `f` for at most [`T`].
fn within<F: Future>(f: F) -> F::Output {
    smol::block_on(future::or(f, async {
        smol::Timer::after(T).await;
        panic!("step timed out after {T:?}");
    }))
}

/// What a side's handlers report.
#[derive(Clone)]
struct Reports {
    started: Sender<()>,
    notes: Arc<AtomicU64>,
}

fn router(r: &Reports) -> Handlers {
    let (s1, s2, n) = (r.started.clone(), r.started.clone(), r.notes.clone());
    Handlers::new()
        .unary(&SLOW, move |ctx, _: u32| {
            let started = s1.clone();
            async move {
                let _ = started.send(()).await;
                ctx.cancelled().await;
                Err(Status::CANCELLED)
            }
        })
        .unary(&ECHO, |_ctx, v: u32| async move { Ok(v) })
        .unary(&WAIT, |ctx, _: u32| async move {
            ctx.cancelled().await;
            Err(Status::CANCELLED)
        })
        .streaming(&HOLD, move |ctx, (), rx, tx| {
            let started = s2.clone();
            async move {
                let _keep = (rx, tx);
                let _ = started.send(()).await;
                ctx.cancelled().await;
                Err(Status::CANCELLED)
            }
        })
        .streaming(&SUM, |_ctx, (), mut rx, mut tx| async move {
            let mut sum = 0u64;
            while let Some(item) = rx.recv().await.map_err(|e| e.status())? {
                sum += u64::from(item);
            }
            tx.send(&sum).await.map_err(|e| e.status())?;
            Ok(())
        })
        .streaming(&BLOBS, |_ctx, (), mut rx, mut tx| async move {
            while let Some(item) = rx.recv().await.map_err(|e| e.status())? {
                tx.send(&item).await.map_err(|e| e.status())?;
            }
            Ok(())
        })
        .notification(&NOTE, move |_ctx, _: u32| {
            n.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        })
}

/// A server and one connected client; each side's handlers report on their own channel.
struct Fixture {
    server: Server,
    addr: String,
    client: Client,
    /// The client as the server sees it.
    back: Peer,
    server_started: Receiver<()>,
    client_started: Receiver<()>,
    notes: Arc<AtomicU64>,
}

fn reports() -> (Reports, Receiver<()>) {
    let (started, rx) = async_channel::unbounded();
    (Reports { started, notes: Arc::new(AtomicU64::new(0)) }, rx)
}

fn fixture(addr: &str) -> Fixture {
    fixture_with(addr, ServerConfig::new("server"))
}

fn fixture_with(addr: &str, server_config: ServerConfig) -> Fixture {
    let (sr, server_started) = reports();
    let (cr, client_started) = reports();
    let server =
        Server::bind(addr, ServerConfig { connection: config(), ..server_config }, router(&sr)).unwrap();
    let addr = server.local_addr().to_string();
    let client = within(Client::connect(
        &addr,
        ClientConfig { connection: config(), ..ClientConfig::new("client") },
        router(&cr),
    ))
    .unwrap();
    let back = within(server.wait_for_peer("client", T)).unwrap();
    Fixture { server, addr, client, back, server_started, client_started, notes: sr.notes }
}

/// Runs a tenth of [`cycles`] to warm up, lets what they left expire, measures, runs
/// [`cycles`] more, measures right after and once `GRACE` has passed several times over, and
/// checks the heap against [`BOUND`]. `cycle(i)` runs `batch` cycles (numbered from `i`).
fn churn(what: &'static str, batch: u64, cycle: impl FnMut(u64)) -> Churn {
    churn_n(what, cycles(), batch, cycle)
}

/// [`churn`] with `n` measured cycles.
fn churn_n(what: &'static str, n: u64, batch: u64, mut cycle: impl FnMut(u64)) -> Churn {
    let own = tandem_runtime::threads::io::tasks();
    let warm = n / 10;
    for i in (0..warm).step_by(batch as usize) {
        cycle(i);
    }
    std::thread::sleep(GRACE * 3);
    wound_down(own);
    let before = settled();
    for i in (0..n).step_by(batch as usize) {
        cycle(warm + i);
    }
    let after = settled();
    std::thread::sleep(GRACE * 3);
    wound_down(own);
    let expired = settled();
    let c = Churn { what, cycles: n, before, after, expired };
    c.assert_within(WORKING);
    assert!(
        expired - before <= BOUND,
        "{what}: {} bytes kept once idle and expired (bound {BOUND}): {c}",
        expired - before
    );
    c
}

#[test]
fn call_then_cancel() {
    let _serial = serial();
    let f = fixture("tcp://127.0.0.1:0");
    churn("smol call + CANCEL (tcp)", 1, |_| {
        within(async {
            let call = f.client.call(&SLOW, &1, Deadline::None);
            // Once the handler runs, the call's future is dropped: CANCEL.
            let r = future::or(async { Some(call.await) }, async {
                f.server_started.recv().await.unwrap();
                None
            })
            .await;
            assert!(r.is_none(), "SLOW answered before it was cancelled: {r:?}");
        })
    });
    // The CANCEL races the answer: dropped right after the request is queued.
    churn("smol call + CANCEL racing the answer (tcp)", 1, |i| {
        within(async {
            let v = i as u32;
            let call = f.client.call(&ECHO, &v, Deadline::None);
            let _ = future::or(async { Some(call.await) }, async {
                future::yield_now().await;
                None
            })
            .await;
        })
    });
    // The caller's deadline passes: the caller gives up, the responder's handler is cancelled.
    churn("smol call + deadline passed (tcp)", 16, |i| {
        within(async {
            let calls: Vec<_> = (0..16)
                .map(|j| {
                    let c = f.client.clone();
                    let v = (i + j) as u32;
                    smol::spawn(async move { c.call(&WAIT, &v, Duration::from_millis(1)).await })
                })
                .collect();
            for call in calls {
                assert_eq!(call.await.unwrap_err().status(), Status::DEADLINE_EXCEEDED);
            }
        })
    });
    // Every cancellation reached its handler: the connection has no exchange left open.
    within(async {
        while f.back.stats().calls_open_inbound > 0 {
            smol::Timer::after(Duration::from_millis(2)).await;
        }
    });
    drop(f);
}

#[test]
fn stream_open_then_reset_by_either_side() {
    let _serial = serial();
    let f = fixture("tcp://127.0.0.1:0");
    churn("smol stream open + reset by opener (tcp)", 1, |_| {
        within(async {
            let (tx, rx) = f.client.open_stream(&HOLD, &(), Deadline::None).await.unwrap();
            f.server_started.recv().await.unwrap();
            // Dropping both halves resets the stream.
            drop((tx, rx));
        })
    });
    churn("smol stream opened by server + reset (tcp)", 1, |_| {
        within(async {
            let (tx, rx) = f.back.open_stream(&HOLD, &(), Deadline::None).await.unwrap();
            f.client_started.recv().await.unwrap();
            drop((tx, rx));
        })
    });
    churn("smol stream refused: responder resets (tcp)", 1, |_| {
        within(async {
            let missing: Streaming<(), u32, u32> = Streaming::new(2, 99);
            let (_tx, mut rx) = f.client.open_stream(&missing, &(), Deadline::None).await.unwrap();
            let end = rx.recv().await.unwrap_err();
            assert_eq!(end.status(), Status::UNKNOWN_METHOD);
        })
    });
    drop(f);
}

#[test]
fn stream_open_half_close_and_finish() {
    let _serial = serial();
    let f = fixture("tcp://127.0.0.1:0");
    churn("smol stream open + half-close + finish (tcp)", 1, |i| {
        within(async {
            let (mut tx, mut rx) = f.client.open_stream(&SUM, &(), Deadline::None).await.unwrap();
            tx.send(&(i as u32)).await.unwrap();
            tx.send(&1).await.unwrap();
            tx.finish().unwrap();
            assert_eq!(rx.recv().await.unwrap(), Some(i + 1));
            assert_eq!(rx.recv().await.unwrap(), None);
        })
    });
    drop(f);
}

#[test]
fn large_stream_items_received_directly() {
    // 40 KiB items are read straight into their own buffers (direct receive): one echoed whole,
    // the next one reset while it may still be arriving.
    let _serial = serial();
    let f = fixture("tcp://127.0.0.1:0");
    let item = vec![0x42u8; 40 * 1024];
    // The session's pool of item buffers keeps only buffers it lent: before it did, the typed
    // 40 KiB items (sent from their own buffers) filled it with 64 buffers at each end, +8.6 MB
    // right after the churn.
    churn("smol large stream items received directly + reset (tcp)", 1, |_| {
        within(async {
            let (mut tx, mut rx) = f.client.open_stream(&BLOBS, &(), Deadline::None).await.unwrap();
            tx.send(&item).await.unwrap();
            assert_eq!(rx.recv().await.unwrap().map(|v| v.len()), Some(item.len()));
            tx.send(&item).await.unwrap();
            drop((tx, rx));
        })
    });
    drop(f);
}

#[test]
fn notification_and_signal() {
    let _serial = serial();
    let f = fixture("tcp://127.0.0.1:0");
    let c = churn("smol notification + signal (tcp)", 1, |i| {
        within(async {
            f.client.notify(&NOTE, &(i as u32), Deadline::None).await.unwrap();
            f.client.signal(&NOTE, &(i as u32)).await.unwrap();
        })
    });
    // Signals may be dropped when too many handlers run; notifications never are.
    let warm = cycles() / 10;
    assert!(f.notes.load(Ordering::Relaxed) >= c.cycles + warm);
    drop(f);
}

#[test]
fn connect_handshake_and_drop() {
    let _serial = serial();
    // Unix sockets: 100,000 TCP connections would exhaust the ephemeral ports (TIME_WAIT).
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(&format!("unix://{}", dir.path().join("c.sock").display()));
    churn("smol connect + handshake + drop (unix)", 1, |i| {
        within(async {
            let p = Client::connect(
                &f.addr,
                ClientConfig { connection: config(), ..ClientConfig::new(format!("c{}", i % 64)) },
                Handlers::new(),
            )
            .await
            .unwrap();
            assert_eq!(p.call(&ECHO, &7, Deadline::None).await.unwrap(), 7);
            // The last handle: CLOSE(OK), the session ends.
            drop(p);
        })
    });
    // Every connection ended at the server.
    within(async {
        while f.server.stats().connections > 1 {
            smol::Timer::after(Duration::from_millis(2)).await;
        }
    });
    drop(f);
}

#[test]
fn resumable_session_suspended_and_expired() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // Room for every session suspended within GRACE at the churn's pace (a few thousand a
    // second in release builds), so that each one is suspended and then expires.
    let endpoint = EndpointConfig { max_suspended_sessions: 100_000, ..EndpointConfig::default() };
    let opts = ServerConfig { endpoint, ..ServerConfig::new("server") };
    let f = fixture_with(&format!("unix://{}", dir.path().join("s.sock").display()), opts);
    // A raw peer: HELLO, a call whose answer it never reads, then the transport ends without
    // CLOSE. The server suspends the session (its answer in the reply cache) for GRACE, then
    // expires it.
    let mut most_suspended = 0;
    let c = churn("smol session suspended + expired (unix)", 1, |i| {
        most_suspended = most_suspended.max(f.server.stats().suspended_sessions);
        let mut p = RawPeer::connect(&f.addr).unwrap();
        p.hello(&format!("r{}", i % 64), &[]).unwrap();
        p.expect_hello(T).unwrap();
        p.send_bytes(&call(0, 1, 2, &tandem_smol::tandem_core::typed::encode_vec(&9u32).unwrap())).unwrap();
        // Wait for the answer, so that the session has something in its reply cache.
        match p.recv(T) {
            tandem_testkit::wire::Got::Frame(fr) => {
                assert!(matches!(fr.frame(), Frame::Response { .. }), "{fr:?}")
            }
            other => panic!("{other:?}"),
        }
        drop(p);
    });
    println!("  (at most {most_suspended} sessions suspended at once during the churn)");
    assert!(most_suspended > 0 && c.cycles > 0, "no session was ever suspended");
    within(async {
        while f.server.stats().connections > 1 || f.server.stats().suspended_sessions > 0 {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(
        f.server.stats().endpoint.evicted_count,
        0,
        "the suspended sessions expired; none was refused"
    );
    drop(f);
}

#[test]
fn waiting_for_the_connection_to_close_in_a_select_loop() {
    let _serial = serial();
    let f = fixture("tcp://127.0.0.1:0");
    // A select loop: every round waits for the connection to close *or* something else, which
    // wins. Each round polls a new `closed()` future once; the connection stays up throughout.
    let round = || {
        within(async {
            let closed = async {
                f.client.closed().await;
                false
            };
            let other = async {
                future::yield_now().await;
                true
            };
            assert!(future::or(closed, other).await);
        })
    };
    // No I/O: cheap enough for 100,000 rounds in every build (a waker kept per round, 16 bytes,
    // would be 1.6 MB).
    let n = 100_000;
    for _ in 0..1000 {
        round();
    }
    let before = settled();
    for _ in 0..n {
        round();
    }
    let after = settled();
    let c = Churn { what: "smol closed() polled in a select loop", cycles: n, before, after, expired: after };
    c.assert_within(BOUND);
    drop(f);
}

/// Datagram mode (SPEC.md §14) over UDP, with reply caches bounded to 64 answers (the cache is
/// bounded by design; what must come back is everything else a call leaves behind: retained
/// requests, retransmission timers, duplicate window, acknowledgements).
#[test]
fn udp_calls_cancels_and_associations() {
    let _serial = serial();
    let small = Config { reply_cache_entries: 64, ..config() };
    let (sr, _server_started) = reports();
    let server = Server::bind(
        "udp://127.0.0.1:0",
        ServerConfig { connection: small.clone(), ..ServerConfig::new("server") },
        router(&sr),
    )
    .unwrap();
    let addr = server.local_addr().to_string();
    let (cr, _client_started) = reports();
    let client = within(Client::connect(
        &addr,
        ClientConfig { connection: small.clone(), ..ClientConfig::new("client") },
        router(&cr),
    ))
    .unwrap();
    churn("smol udp: call + call CANCELled", 1, |i| {
        within(async {
            assert_eq!(client.call(&ECHO, &(i as u32), Deadline::None).await.unwrap(), i as u32);
            let call = client.call(&WAIT, &1, Deadline::None);
            // Dropped once the request is queued: CANCEL.
            let _ = future::or(async { Some(call.await) }, async {
                future::yield_now().await;
                None
            })
            .await;
        })
    });
    // A new association per cycle: socket, HELLO, a call, CLOSE. A closed association lingers
    // in its closing state for a while, so a few hundred coexist during the churn and the
    // server's tables grow to that working size (about 80 KB after roughly 1,000 cycles, then
    // flat): 2,000 associations before the measured churn.
    let association = |i: u64| {
        within(async {
            let c = Client::connect(&addr, ClientConfig::new("passer-by"), Handlers::new()).await.unwrap();
            assert_eq!(c.call(&ECHO, &(i as u32), Deadline::None).await.unwrap(), i as u32);
            c.shutdown(Duration::from_secs(5)).await;
        })
    };
    for i in 0..2_000 {
        association(i);
    }
    // 3,000 cycles in both builds, as tandem-std's: enough that a leak of 50 bytes per cycle
    // exceeds the bound. (At 100,000 release cycles the associations still closing right after
    // the churn hold about 1.3 MB, all given back once they have closed: +309 B after expiry.)
    churn_n("smol udp: association + call + close", 3_000, 1, association);
    drop((client, server));
}
