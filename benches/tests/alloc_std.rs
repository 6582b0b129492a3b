//! runtime-std's fast path does not allocate in steady state: after warm-up, a sequential unary
//! call over a real socket (a [`tandem_std::Client`] calling a [`tandem_std::Server`] in this
//! process, through `call_raw_into` to a `raw_unary_inline` echo handler) performs zero heap
//! allocations, counted on **every thread** (caller, the I/O threads, workers), both ends.
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
        let mut calls = |n: usize| {
            for _ in 0..n {
                client.call_raw_into(ECHO, &req, tandem_std::Deadline::None, &mut back).expect("call");
                assert_eq!(back, req);
            }
        };
        // Warm-up: buffers, tables and spare response buffers reach their working size.
        calls(1000);
        // A connection idle for 250 ms gives its buffers back (an idle connection holds little
        // memory), so a round during which a loaded machine deschedules the test that long
        // allocates them again: such a round is measured again (at most three rounds), and one
        // round must be clean.
        let mut counts = Vec::new();
        for _ in 0..3 {
            COUNTING.store(true, Ordering::SeqCst);
            calls(2000);
            COUNTING.store(false, Ordering::SeqCst);
            counts.push(ALLOCATIONS.swap(0, Ordering::SeqCst));
            if counts.last() == Some(&0) {
                break;
            }
        }
        assert_eq!(
            counts.last(),
            Some(&0),
            "{addr}: allocations in rounds of 2000 calls after warm-up (all threads, both ends): {counts:?}"
        );
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
