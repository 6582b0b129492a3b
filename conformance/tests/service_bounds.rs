//! The standard test service under hostile peers, over real sockets, on both runtimes: what it
//! keeps per peer name is bounded (SPEC.md A.1), and COUNT produces items as credit allows and
//! stops when its peer leaves. Live heap is measured with a counting allocator.
//!
//! Before the service bounded its state, every cancelled SLEEP left a `sleep:cancelled` record
//! behind (about 58 bytes a call, forever), and COUNT built all n × size items before sending
//! the first.

#[global_allocator]
static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;

use std::time::{Duration, Instant};

use tandem_conformance::selftest::{Runtime, Server};
use tandem_conformance::service::{method, MODULE};
use tandem_core::frame::Frame;
use tandem_testkit::heap::{self, Churn};
use tandem_testkit::wire::{call, encode, stream_open, Got, RawPeer};

const WAIT: Duration = Duration::from_secs(5);

/// The live heap is process-wide: the tests of this file run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Cycles per churn. Debug: 4,000 cycles, so that the ~58 bytes a cycle the unbounded store
/// kept (232 KB) exceed the 64 KiB bound more than three times over.
fn cycles() -> u64 {
    if cfg!(debug_assertions) {
        4_000
    } else {
        50_000
    }
}

fn settled() -> i64 {
    heap::settled(512, Duration::from_secs(3))
}

fn connect(addr: &str, name: &str) -> RawPeer {
    let mut p = RawPeer::connect(addr).expect("connect");
    p.hello(name, &[]).expect("hello");
    p.expect_hello(WAIT).expect("server hello");
    p
}

/// Reads frames until `n` frames matching `done` arrived.
fn await_frames(p: &mut RawPeer, mut n: u64, done: impl Fn(&Frame<'_>) -> bool) {
    while n > 0 {
        match p.recv(WAIT) {
            Got::Frame(f) if done(&f.frame()) => n -= 1,
            Got::Frame(_) => {}
            other => panic!("while waiting for {n} more frames: {other:?}"),
        }
    }
}

/// `cycles` times, in batches of 8 (half the announced `max_concurrent_calls`): SLEEP(10 s)
/// then CANCEL; waits for each batch's answers.
fn sleep_cancel(p: &mut RawPeer, first_id: &mut u64, cycles: u64) {
    let mut left = cycles;
    while left > 0 {
        let k = left.min(8);
        let mut bytes = Vec::new();
        for j in 0..k {
            let id = *first_id + 2 * j;
            bytes.extend(call(id, MODULE, method::SLEEP, &10_000u32.to_be_bytes()));
            bytes.extend(encode(&Frame::Cancel { id }));
        }
        p.send_bytes(&bytes).expect("send");
        await_frames(p, k, |f| matches!(f, Frame::Response { .. }));
        *first_id += 2 * k;
        left -= k;
    }
}

/// `cycles` times, in batches of 4: HOLD_STREAM opened, then reset by the opener; waits for the
/// service's terminals.
fn hold_reset(p: &mut RawPeer, first_id: &mut u64, cycles: u64) {
    let mut left = cycles;
    while left > 0 {
        let k = left.min(4);
        let mut bytes = Vec::new();
        for j in 0..k {
            let id = *first_id + 2 * j;
            bytes.extend(stream_open(id, MODULE, method::HOLD_STREAM, false, b""));
            bytes.extend(encode(&Frame::StreamReset { id, status: tandem_core::Status::CANCELLED }));
        }
        p.send_bytes(&bytes).expect("send");
        await_frames(p, k, |f| matches!(f, Frame::StreamReset { .. } | Frame::StreamFin { .. }));
        *first_id += 2 * k;
        left -= k;
    }
}

#[test]
fn cancelled_sleeps_and_reset_holds_do_not_grow_the_service() {
    let _serial = serial();
    for rt in [Runtime::Smol, Runtime::Std] {
        let server = Server::start(rt, "tcp://127.0.0.1:0").expect("server");
        let addr = server.addr().to_string();
        type Churner = fn(&mut RawPeer, &mut u64, u64);
        let kinds: [(&'static str, &'static str, Churner); 2] = [
            ("SLEEP + CANCEL", "service SLEEP + CANCEL", sleep_cancel),
            ("HOLD_STREAM + reset", "service HOLD_STREAM + reset", hold_reset),
        ];
        for (name, what, churn) in kinds {
            let mut p = connect(&addr, &format!("hostile-{}-{name}", rt.name()));
            let mut id = 0;
            churn(&mut p, &mut id, 500); // warm-up: tables and records at their working size
            let before = settled();
            churn(&mut p, &mut id, cycles());
            let after = settled();
            // The peer leaves (its session is suspended, the service's records stay).
            drop(p);
            let expired = settled();
            let c = Churn { what, cycles: cycles(), before, after, expired };
            println!("{}:", rt.name());
            c.assert_within(64 * 1024);
        }
        server.stop();
    }
}

#[test]
fn many_peer_names_do_not_grow_the_service() {
    let _serial = serial();
    for rt in [Runtime::Smol, Runtime::Std] {
        let server = Server::start_with(rt, "tcp://127.0.0.1:0", false).expect("server");
        let addr = server.addr().to_string();
        let record = |name: &str| {
            let mut p = connect(&addr, name);
            p.send(&Frame::Notify(tandem_conformance::suite::req(0, method::RECORD, &[b'r'; 100])))
                .expect("send");
            await_frames(&mut p, 1, |f| matches!(f, Frame::Response { .. }));
        };
        for i in 0..400 {
            record(&format!("warm-{i}"));
        }
        let before = settled();
        let n = if cfg!(debug_assertions) { 1_500 } else { 5_000 };
        for i in 0..n {
            record(&format!("churn-{i}"));
        }
        let after = settled();
        let c = Churn { what: "service: new peer name + RECORD", cycles: n, before, after, expired: after };
        println!("{}:", rt.name());
        // Each name costs ~300 bytes while kept; 1,500 names unbounded would be ~450 KB.
        c.assert_within(96 * 1024);
        server.stop();
    }
}

#[test]
fn count_builds_items_only_as_credit_allows_and_stops_when_the_peer_leaves() {
    let _serial = serial();
    for rt in [Runtime::Smol, Runtime::Std] {
        // No resumption: the connection ends when the attacker's socket does.
        let server = Server::start_with(rt, "tcp://127.0.0.1:0", false).expect("server");
        let addr = server.addr().to_string();
        let before = settled();
        // Eight streams (every announced slot) of 4,000 items of 4 KiB (16 MB each, which the
        // service used to build up front), never read.
        let mut p = connect(&addr, &format!("count-{}", rt.name()));
        let mut init = 4000u32.to_be_bytes().to_vec();
        init.extend_from_slice(&4096u32.to_be_bytes());
        let mut bytes = Vec::new();
        for i in 0..8 {
            bytes.extend(stream_open(i * 2, MODULE, method::COUNT, true, &init));
        }
        p.send_bytes(&bytes).expect("send");
        std::thread::sleep(Duration::from_millis(500));
        let held = settled();
        assert!(
            held - before < 4 << 20,
            "{}: 8 unread COUNT streams of 4 KiB items hold {} bytes (bound 4 MiB)",
            rt.name(),
            held - before
        );
        drop(p);
        let end = Instant::now() + Duration::from_secs(10);
        let left = loop {
            let now = settled();
            if now - before < 256 * 1024 || Instant::now() > end {
                break now;
            }
        };
        println!(
            "{}: COUNT ×8 unread: {} B held while the attacker stays, {} B after it left",
            rt.name(),
            held - before,
            left - before
        );
        assert!(
            left - before < 256 * 1024,
            "{}: the COUNT handlers still hold {} bytes after their peer left",
            rt.name(),
            left - before
        );
        server.stop();
    }
}
