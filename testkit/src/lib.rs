//! Test support shared by the integration tests of `tandem-std` and `tandem-smol` (never
//! published, only a dev-dependency):
//!
//! * [`heap`]: a counting global allocator that tracks the **live** heap (bytes allocated and not
//!   yet freed), for churn tests that show memory back at its baseline after many cycles;
//! * [`wire`]: a raw peer that opens a real socket and speaks frames directly with the core's
//!   codec — a hostile peer for the attack suites;
//! * [`attacks`] and [`hostile`]: the hostile-peer suite — attacks, measurements, and the
//!   [`hostile_suite!`] macro that both runtimes' `tests/hostile.rs` expand;
//! * [`pki`]: certificate authorities and certificates made at test time (TLS tests);
//! * [`proxy`]: a loopback TCP proxy that can cut its connections (resumption over TLS);
//! * [`serial`]: pseudo-terminal pairs and a relay that damages the bytes between two lines
//!   (`serial://` tests, the C serial example, the QEMU device).
//!
//! A test binary installs the allocator with one line and no `unsafe` of its own:
//!
//! ```
//! #[global_allocator]
//! static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;
//!
//! let before = tandem_testkit::heap::live_bytes();
//! let v = vec![0u8; 1000];
//! assert!(tandem_testkit::heap::live_bytes() >= before + 1000);
//! drop(v);
//! ```

#![deny(missing_docs)]

pub mod arm;
pub mod attacks;
pub mod auth;
pub mod heap;
pub mod hostile;
pub mod nginx;
pub mod pki;
pub mod proxy;
pub mod serial;
pub mod wire;
pub mod ws;
