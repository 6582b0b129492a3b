//! runtime-std's fast path does not allocate in steady state: after warm-up, a sequential unary
//! call over a real socket (a [`tandem_std::Client`] calling a [`tandem_std::Server`] in this
//! process, through `call_raw_into` to a `raw_unary_inline` echo handler) performs zero heap
//! allocations, counted on **every thread** (caller, the I/O threads, workers), both ends; with
//! 64 calls in flight (`start_call_raw` + `wait_into`), at most 8 in 2,000 calls (see the test);
//! one thread with a call in flight on each of 16 connections (`Completions::wait_into`), zero.
//!
//! Its own test binary (one test, nothing else running in the process while it counts), since
//! the counter here is process-wide rather than per thread as in `alloc.rs`. Only allocation
//! counts are asserted, never timing.

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

#[test]
fn std_steady_state_unary_calls_do_not_allocate() {
    for addr in ["tcp://127.0.0.1:0".to_string(), format!("unix://{}", socket_path().display())] {
        let handlers = tandem_std::Handlers::new().raw_unary_inline(ECHO, |_, req, out| {
            out.extend_from_slice(req);
            Ok(())
        });
        let server = tandem_std::Server::bind(&addr, tandem_std::ServerConfig::new("alloc-server"), handlers)
            .expect("bind");
        let addr = server.local_addr().to_string();
        let client = tandem_std::Client::connect(
            &addr,
            tandem_std::ClientConfig::new("alloc-client"),
            tandem_std::Handlers::new(),
        )
        .expect("connect");
        let req = [7u8; 32];
        let mut back = Vec::new();
        // `depth` calls in flight, as the benchmark's pipelined row: each answered call is
        // replaced by a new one (the queue's capacity is reserved up front).
        let mut queue = std::collections::VecDeque::with_capacity(64);
        let mut calls = |n: usize, depth: usize| {
            let start = || client.start_call_raw(ECHO, &req, tandem_std::Deadline::None).expect("call");
            for _ in 0..depth {
                queue.push_back(start());
            }
            for i in 0..n {
                queue.pop_front().expect("in flight").wait_into(&mut back).expect("call");
                assert_eq!(back, req);
                if i + depth < n {
                    queue.push_back(start());
                }
            }
        };
        for depth in [1, 64] {
            // Warm-up: buffers, tables and spare response buffers reach their working size.
            calls(if depth == 1 { 1000 } else { 10_000 }, depth);
            common::assert_steady_state(&addr, 2000, depth as u64, &COUNTING, &ALLOCATIONS, || {
                calls(2000, depth)
            });
        }
        // One thread keeping a call in flight on each of 16 connections through a
        // `Completions` set (the many-connections row's way): nothing allocated per call
        // either, the set's wakers made once per slot.
        let clients: Vec<_> = (0..16)
            .map(|i| {
                let cfg = tandem_std::ClientConfig::new(format!("alloc-many-{i}"));
                tandem_std::Client::connect(&addr, cfg, tandem_std::Handlers::new()).expect("connect")
            })
            .collect();
        let mut set = tandem_std::Completions::new();
        let start =
            |i: usize| clients[i].start_call_raw(ECHO, &req, tandem_std::Deadline::None).expect("call");
        for i in 0..clients.len() {
            set.push(start(i), i);
        }
        let mut many = |n: usize| {
            for _ in 0..n {
                let (i, r) = set.wait_into(&mut back).expect("calls in flight");
                r.expect("call");
                assert_eq!(back, req);
                set.push(start(i), i);
            }
        };
        many(10_000);
        common::assert_steady_state(&addr, 2000, 1, &COUNTING, &ALLOCATIONS, || many(2000));
        drop(set);
        for c in clients {
            c.shutdown(Duration::from_secs(1));
        }
        client.shutdown(Duration::from_secs(1));
        server.shutdown(Duration::from_secs(1));
    }
    // Sanity: the counter sees allocations made on another thread.
    COUNTING.store(true, Ordering::SeqCst);
    std::thread::spawn(|| drop(std::hint::black_box(vec![1u8; 64]))).join().expect("join");
    COUNTING.store(false, Ordering::SeqCst);
    assert!(ALLOCATIONS.load(Ordering::SeqCst) > 0, "the counter saw nothing");
}

fn socket_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tandem-alloc-std-{}.sock", std::process::id()))
}
