//! Steady-state traffic does not allocate: after warm-up, a unary exchange between two in-memory
//! cores with owned storage ([`Connection::new`](tandem_benches::tandem_core::Connection::new))
//! performs zero heap allocations on either side, alone or pipelined, and so does a stream of
//! 64 KiB items consumed as they arrive.
//!
//! Only allocation *counts* are asserted, never timing. The counter is a `#[global_allocator]`
//! that forwards to the system allocator and counts per thread, on the thread that enabled
//! counting only, so the harness's other threads (and the other tests) cannot disturb it.

#[macro_use]
mod common;

use std::cell::Cell;
use tandem_benches::tandem_core::Config;
use tandem_benches::{Streaming, Unary};

thread_local! {
    // Whether this thread counts, and how many allocations it counted. Per thread, not one
    // global atomic: the harness runs tests on parallel threads, and one test's deliberate
    // allocations must not show up in another's count. `const` initialisation of types that
    // need no destructor: reading them never allocates nor registers anything, so they are safe
    // to use from inside the allocator.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

counting_allocator!(note);

/// Runs `f` and returns the number of allocations (including reallocations) it made on this
/// thread.
fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn counter_sees_allocations() {
    // The counter itself works: a fresh vector allocates once.
    let n = allocations_in(|| drop(std::hint::black_box(vec![1u8; 64])));
    assert_eq!(n, 1);
}

#[test]
fn steady_state_unary_calls_do_not_allocate() {
    const CALLS: usize = 1000;
    for pipelined in [1, 16, 64] {
        let mut u = Unary::new(32);
        // Warm-up: buffers and the exchange table grow to their working size. That the first
        // round does allocate shows the counter sees the cores' allocations.
        assert!(allocations_in(|| u.round(pipelined)) > 0, "first round allocated nothing?");
        for _ in 0..100 {
            u.round(pipelined);
        }
        let n = allocations_in(|| {
            for _ in 0..CALLS / pipelined {
                u.round(pipelined);
            }
        });
        assert_eq!(n, 0, "{n} allocations in {CALLS} calls ({pipelined} per round) after warm-up");
        // Sanity: every call really completed on both sides.
        let (c, s) = (u.pair.client.stats(), u.pair.server.stats());
        assert_eq!((c.calls_open_outbound, s.calls_open_inbound), (0, 0));
    }
}

#[test]
fn steady_state_unary_calls_in_a_resumable_session_do_not_allocate() {
    // Exactly-once costs memory but no allocations once warm: retained requests and cached
    // answers recycle their buffers, ACKs trim the cache (SPEC.md §13.5–§13.6).
    const CALLS: usize = 2000;
    for pipelined in [1, 16, 64] {
        let mut u = Unary::resumable(32);
        assert!(u.pair.client.is_resumable());
        for _ in 0..200 {
            u.round(pipelined);
        }
        let n = allocations_in(|| {
            for _ in 0..CALLS / pipelined {
                u.round(pipelined);
            }
        });
        assert_eq!(n, 0, "{n} allocations in {CALLS} resumable calls ({pipelined} per round) after warm-up");
        let (cached, _) = u.pair.server.reply_cache_len();
        assert!(cached <= 1024, "reply cache bounded: {cached}");
        assert_eq!(u.pair.client.retained_requests(), (0, 0), "every answered request released");
    }
}

#[test]
fn steady_state_stream_items_do_not_allocate() {
    // 64 KiB items, the receiver consuming as it goes; with the default 64 KiB frame size each
    // item is fragmented and reassembled, with 1 MiB frames it is one frame.
    let configs = [Config::default(), Config { max_frame_size: 1 << 20, ..Config::default() }];
    for config in configs {
        let frame = config.max_frame_size;
        for resumable in [false, true] {
            let mut s = if resumable {
                Streaming::resumable(64 * 1024, config.clone())
            } else {
                Streaming::new(64 * 1024, config.clone())
            };
            assert_eq!(s.pair.client.is_resumable(), resumable);
            for _ in 0..10 {
                s.send_items(16);
            }
            let n = allocations_in(|| {
                for _ in 0..20 {
                    s.send_items(16);
                }
            });
            assert_eq!(
                n, 0,
                "{n} allocations in 320 stream items (max_frame_size {frame}, resumable {resumable}) after warm-up"
            );
        }
    }
}
