//! tandem's C API: the sans-IO connection of [`tandem_core`] behind a C ABI.
//!
//! Built as a static library (`libtandem_c.a`) with the header `include/tandem.h`, which
//! cbindgen generates from this crate (the documentation below each function is the header's).
//! See `c/README.md` for building, linking, an example and the memory model.
//!
//! # Memory model
//!
//! The library never allocates. The caller asks [`tandem_conn_memory_size`] how many bytes a
//! configuration needs, provides that many (any alignment: a `static` array, a stack buffer,
//! `malloc`), and [`tandem_conn_init`] places everything in it: the connection's state at the
//! first suitably aligned address, then its exchange table, receive, transmit and reassembly
//! buffers. The returned `tandem_conn *` points into that memory; it stays valid until
//! [`tandem_conn_free`], after which the memory is the caller's again. Nothing else may touch
//! that memory meanwhile.
//! In datagram mode (`TANDEM_TRANSPORT_DATAGRAM`, for UDP and serial lines) that memory also
//! holds the reply cache and the retained requests, sized by `reply_cache_entries`,
//! `reply_cache_bytes` and `max_retained_bytes`.
//!
//! # Session resumption
//!
//! With the `resume` feature (on by default; off in a firmware build with
//! `--no-default-features` unless enabled), a connection made by `tandem_conn_init_session` in
//! `tandem_conn_session_memory_size` bytes keeps a resumable session (SPEC.md §13) in that
//! memory too: the reply cache, the retained requests and unconfirmed stream items, and the
//! answers owed to retransmissions (`tandem_session_storage_size` gives the parts). A lost
//! transport suspends it; `tandem_conn_reconnect` (dialer) or
//! `TANDEM_EVENT_KIND_RESUME_REQUESTED` with `tandem_conn_resume_from` /
//! `tandem_conn_decline_resume` (acceptor) continue it on a new transport.
//!
//! # Serial lines
//!
//! [`tandem_serial_encode`] and a [`TandemSerialDecoder`] (caller memory, any build) carry
//! datagram mode over a byte line in the serial framing of SPEC.md §14.9; see
//! `examples/serial_echo_server.c`.
//!
//! # Soundness at the boundary
//!
//! Every function checks its pointers for NULL and lengths against `isize::MAX`, checks that a
//! connection pointer is aligned and carries the live marker `tandem_conn_init` wrote (which
//! catches common mistakes such as a freed or never-initialised handle, though it cannot prove
//! a pointer valid), and reads C's enumerations as plain integers. With the `std` feature every
//! function body runs under [`std::panic::catch_unwind`], so a panic (an internal bug: the core
//! is built to never panic on any input) becomes `TANDEM_RESULT_PANICKED` and poisons the
//! connection instead of unwinding into C; without `std` the `panic-handler` feature routes a
//! panic to the C function `tandem_panic`.
//!
//! # Threads
//!
//! None: a connection is used by one thread at a time (it may move between threads between
//! calls). Different connections are independent.

#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

mod actions;
mod conn;
mod ops;
#[cfg(feature = "resume")]
mod resume;
mod serial;
mod status;
mod types;

pub use actions::*;
pub use conn::*;
pub use ops::*;
#[cfg(feature = "resume")]
pub use resume::*;
pub use serial::*;
pub use status::*;
pub use types::*;

/// Runs `f`, turning a panic into `None` (with `std`; without it a panic never returns here).
#[cfg(feature = "std")]
fn guard<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// Runs `f` (a no_std build cannot catch a panic: it goes to the panic handler, which does not
/// return).
#[cfg(not(feature = "std"))]
fn guard<T>(f: impl FnOnce() -> T) -> Option<T> {
    Some(f())
}

/// The C function a no_std build with the `panic-handler` feature calls on a panic.
#[cfg(feature = "panic-handler")]
mod panic_fn {
    extern "C" {
        /// Only with the `panic-handler` feature (no_std builds): the C program defines this
        /// function, which the library calls on an internal error (a bug) with the Rust source
        /// file (NUL-terminated, possibly truncated) and line. It must not return: reset the
        /// device, or `abort()`.
        pub fn tandem_panic(file: *const core::ffi::c_char, line: u32) -> !;
    }
}

#[cfg(all(not(feature = "std"), feature = "panic-handler", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // The file name is not NUL-terminated: copy a prefix into a NUL-terminated buffer.
    let mut file = [0u8; 64];
    let line = info.location().map_or(0, |l| {
        let n = l.file().len().min(file.len() - 1);
        file[..n].copy_from_slice(&l.file().as_bytes()[..n]);
        l.line()
    });
    // SAFETY: `tandem_panic` is a C function with this signature that the program provides
    // (the contract of the feature); `file` is NUL-terminated and outlives the call.
    unsafe { panic_fn::tandem_panic(file.as_ptr().cast(), line) }
}
