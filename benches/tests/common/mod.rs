//! Shared by the allocation tests: a `#[global_allocator]` that forwards every request to
//! [`System`](std::alloc::System) and calls the test's own `note()` on each allocation (the two
//! tests count differently: per thread in `alloc.rs`, process-wide in `alloc_std.rs`).

/// Installs the counting allocator; `$note` is called on every allocation and reallocation and
/// must neither allocate nor panic.
#[macro_export]
macro_rules! counting_allocator {
    ($note:path) => {
        /// Forwards every request to [`System`](std::alloc::System), noting each allocation.
        struct Counting;

        // SAFETY: a `GlobalAlloc` impl is unavoidably `unsafe`; this one adds nothing to what it
        // forwards. Each method passes its arguments unchanged to the matching method of
        // `System` (a correct `GlobalAlloc`) and returns its result unchanged, so every contract
        // of `GlobalAlloc` (layout, alignment, ownership of the returned memory) is upheld by
        // `System`. The only extra work is `$note`, which neither allocates (no recursion into
        // the allocator) nor panics.
        #[allow(unsafe_code)]
        unsafe impl std::alloc::GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
                $note();
                // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
                unsafe { std::alloc::System.alloc(layout) }
            }
            unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
                $note();
                // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
                unsafe { std::alloc::System.alloc_zeroed(layout) }
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
                $note();
                // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
                unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
                // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::dealloc`'s contract.
                unsafe { std::alloc::System.dealloc(ptr, layout) }
            }
        }

        #[global_allocator]
        static GLOBAL: Counting = Counting;
    };
}

/// Measures rounds of `round` (which makes `calls` calls with `depth` in flight) after warm-up,
/// counting allocations through `counting` and `allocations`, and asserts that one round was
/// clean: no allocation for sequential calls, at most 8 with 64 in flight (`addr` names the
/// transport in the failure). Used by the process-wide tests (`alloc_std.rs`, `alloc_smol.rs`).
///
/// A connection idle for 250 ms gives its buffers back, so a round during which a loaded machine
/// deschedules the test that long allocates them again: such a round is measured again (at most
/// three rounds). With 64 in flight a few allocations in thousands of calls remain: buffers and
/// queues reaching a new peak when the two ends' threads interleave unusually (a late ACK lets
/// the reply cache hold more answers than its pool keeps buffers for; a transmit queue reaching
/// a new high) — most rounds of 2,000 calls make none, some 1–6, against ~1,870 before the spare
/// response buffers followed the calls in flight.
#[allow(dead_code)] // `alloc.rs` counts per thread and does not use it
pub fn assert_steady_state(
    addr: &str,
    calls: u64,
    depth: u64,
    counting: &std::sync::atomic::AtomicBool,
    allocations: &std::sync::atomic::AtomicU64,
    mut round: impl FnMut(),
) {
    use std::sync::atomic::Ordering;
    let mut counts = Vec::new();
    for _ in 0..3 {
        counting.store(true, Ordering::SeqCst);
        round();
        counting.store(false, Ordering::SeqCst);
        counts.push(allocations.swap(0, Ordering::SeqCst));
        if counts.last() == Some(&0) {
            break;
        }
    }
    let allowed = if depth == 1 { 0 } else { 8 };
    let best = counts.iter().copied().min().unwrap_or(u64::MAX);
    assert!(
        best <= allowed,
        "{addr}: allocations in rounds of {calls} calls, {depth} in flight, after warm-up \
         (all threads, both ends): {counts:?}, at most {allowed} allowed"
    );
}
