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
