//! runtime-smol's fast path does not allocate in steady state either: after warm-up, a
//! sequential unary call over a real socket (a [`tandem_smol::Client`] calling a
//! [`tandem_smol::Server`] in this process, through `call_raw_into` to a `raw_unary_inline` echo
//! handler, awaited in `smol::block_on`) performs zero heap allocations, counted on **every
//! thread** (the caller, the shared I/O threads, smol's executor and async-io's reactor), both
//! ends, as runtime-std's (`alloc_std.rs`); with 64 calls in flight, at most 8 in 2,000 calls.
//!
//! This holds because tandem-smol drives its sockets on the I/O threads it shares with
//! tandem-std (`tandem_runtime::threads`), whose turns reuse their buffers, rather than through
//! async-io's reactor, whose every turn collected the wakers it woke into a fresh `Vec` (about
//! two allocations per call before). Its own test binary (one test, nothing else running in the
//! process while it counts), since the counter is process-wide. Only allocation counts are
//! asserted, never timing.

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tandem_benches::tandem_core::MethodId;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

fn note() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

counting_allocator!(note);

const ECHO: MethodId = MethodId::new(1, 1);
/// Calls per measured round.
const CALLS: u64 = 2000;

#[test]
fn smol_steady_state_unary_calls_do_not_allocate() {
    for addr in ["tcp://127.0.0.1:0".to_string(), format!("unix://{}", socket_path().display())] {
        let handlers = tandem_smol::Handlers::new().raw_unary_inline(ECHO, |_, req, out| {
            out.extend_from_slice(req);
            Ok(())
        });
        let server =
            tandem_smol::Server::bind(&addr, tandem_smol::ServerConfig::new("alloc-server"), handlers)
                .expect("bind");
        let addr = server.local_addr().to_string();
        let client = smol::block_on(tandem_smol::Client::connect(
            &addr,
            tandem_smol::ClientConfig::new("alloc-client"),
            tandem_smol::Handlers::new(),
        ))
        .expect("connect");
        let req = [7u8; 32];
        let mut back = Vec::new();
        // `depth` calls in flight, as the benchmark's pipelined row: each answered call is
        // replaced by a new one (the queue's capacity is reserved up front).
        let mut queue = std::collections::VecDeque::with_capacity(64);
        let mut calls = |n: u64, depth: u64| {
            smol::block_on(async {
                let start = || client.start_call_raw(ECHO, &req, tandem_smol::Deadline::None);
                for _ in 0..depth {
                    queue.push_back(start().await.expect("call"));
                }
                for i in 0..n {
                    queue.pop_front().expect("in flight").wait_into(&mut back).await.expect("call");
                    assert_eq!(back, req);
                    if i + depth < n {
                        queue.push_back(start().await.expect("call"));
                    }
                }
            })
        };
        for depth in [1, 64] {
            // Warm-up: buffers, tables and spare response buffers reach their working size.
            calls(if depth == 1 { 1000 } else { 10_000 }, depth);
            common::assert_steady_state(&addr, CALLS, depth, &COUNTING, &ALLOCATIONS, || calls(CALLS, depth));
        }
        smol::block_on(client.shutdown(Duration::from_secs(1)));
        smol::block_on(server.shutdown(Duration::from_secs(1)));
    }
    // Sanity: the counter sees allocations made on another thread.
    COUNTING.store(true, Ordering::SeqCst);
    std::thread::spawn(|| drop(std::hint::black_box(vec![1u8; 64]))).join().expect("join");
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > 0, "the counter saw nothing");
}

fn socket_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tandem-alloc-smol-{}.sock", std::process::id()))
}
