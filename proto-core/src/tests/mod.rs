//! Whole-connection tests: two cores wired together in memory with a fake clock.

mod auth;
mod close_tx;
#[cfg(feature = "alloc")]
mod datagram;
mod direct;
mod features;
mod limits;
pub(crate) mod pair;
mod props;
mod rechunk;
mod resume;
mod resume_soak;
mod scenarios;
#[cfg(feature = "alloc")]
mod splice;
mod storage;
mod typed_wire;
mod wrap_tx;
