//! Test-only package: runs tandem-core's simulations of datagram mode and of session resumption
//! with the core built without an allocator (`--no-default-features --features serial,resume`,
//! as firmware builds it), so that exactly-once delivery over a damaged serial line and across
//! cut byte streams is proven for the `DatagramStorage`/`SessionStorage` path, not only for the
//! heap-backed one. See `Cargo.toml` for why this is a separate package.
//!
//! ```text
//! cargo test -p tandem-noalloc-tests
//! ```
#![no_std]
#![forbid(unsafe_code)]
