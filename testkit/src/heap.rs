//! A counting global allocator: every request goes to [`System`]; the live heap (bytes and
//! blocks allocated and not yet freed, process-wide) and the number of allocations are counted.
//!
//! Install it in a test binary:
//!
//! ```no_run
//! #[global_allocator]
//! static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;
//! ```
//!
//! Without that line the counters stay at zero ([`installed`] tells).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The counting allocator (a unit struct: use it as the `#[global_allocator]` static's value).
pub struct Counting;

// SAFETY: a `GlobalAlloc` impl is unavoidably `unsafe`; this one adds nothing to what it
// forwards. Each method passes its arguments unchanged to the matching method of `System` (a
// correct `GlobalAlloc`) and returns its result unchanged, so every contract of `GlobalAlloc`
// (layout, alignment, ownership of the returned memory) is upheld by `System`. The only extra
// work is updating three atomics, which neither allocates (no recursion into the allocator) nor
// panics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            LIVE_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }
}

fn note_alloc(size: usize) {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(size as i64, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
}

/// Bytes allocated and not yet freed, process-wide (0 if [`Counting`] is not installed).
pub fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Blocks allocated and not yet freed, process-wide.
pub fn live_blocks() -> i64 {
    LIVE_BLOCKS.load(Ordering::Relaxed)
}

/// Allocations (and reallocations) so far, process-wide.
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Whether [`Counting`] is this process's global allocator.
pub fn installed() -> bool {
    let before = allocations();
    let b = std::hint::black_box(Box::new(0u64));
    drop(b);
    allocations() > before
}

/// The live heap once it has stopped moving: samples every `step` until two consecutive
/// samples differ by at most `tolerance` bytes, or `max_wait` has passed (then the last
/// sample). Background threads and tasks free memory a little after the work that used it
/// ends; this waits for them without a fixed sleep.
pub fn settled(tolerance: i64, max_wait: Duration) -> i64 {
    let step = Duration::from_millis(50);
    let end = Instant::now() + max_wait;
    let mut last = live_bytes();
    loop {
        std::thread::sleep(step);
        let now = live_bytes();
        if (now - last).abs() <= tolerance || Instant::now() >= end {
            return now;
        }
        last = now;
    }
}

/// A churn measurement: the live heap before, after the churn, and after the sessions it left
/// behind have expired, with the cycle count, for a report line and an assertion.
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    /// What was churned (for the report).
    pub what: &'static str,
    /// Cycles run.
    pub cycles: u64,
    /// Live bytes before the first cycle (after a warm-up).
    pub before: i64,
    /// Live bytes right after the last cycle (settled).
    pub after: i64,
    /// Live bytes once everything the churn left behind has expired (settled).
    pub expired: i64,
}

impl Churn {
    /// Growth per cycle between `before` and `expired`, in bytes.
    pub fn per_cycle(&self) -> f64 {
        (self.expired - self.before) as f64 / self.cycles.max(1) as f64
    }

    /// Panics unless both the settled heap after the churn and after expiry are within `bound`
    /// bytes of the baseline. Prints a report line either way (`cargo test -- --nocapture`).
    pub fn assert_within(&self, bound: i64) {
        println!("{self}");
        assert!(
            self.after - self.before <= bound,
            "{}: heap grew by {} bytes over {} cycles right after the churn (bound {bound}): {self}",
            self.what,
            self.after - self.before,
            self.cycles
        );
        assert!(
            self.expired - self.before <= bound,
            "{}: heap grew by {} bytes over {} cycles after expiry (bound {bound}, {:.1} B/cycle): {self}",
            self.what,
            self.expired - self.before,
            self.cycles,
            self.per_cycle()
        );
    }
}

impl core::fmt::Display for Churn {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "churn {:<40} {:>7} cycles: live heap {:>9} B before, {:>9} B after ({:+}), {:>9} B after expiry ({:+}; {:+.2} B/cycle)",
            self.what,
            self.cycles,
            self.before,
            self.after,
            self.after - self.before,
            self.expired,
            self.expired - self.before,
            self.per_cycle()
        )
    }
}
