//! Benchmarks for the tandem protocol. This crate is not published.
//!
//! **Status: not implemented yet.** This crate currently contains nothing but
//! a re-export of [`tandem_core`]; there are no benchmarks yet, and it does
//! not yet depend on `criterion` or on the peer libraries named below.
//!
//! When implemented, this crate will hold:
//!
//! * **Criterion micro-benchmarks** of `tandem-core`: frame encoding and
//!   decoding, and the per-call cost of the state machine.
//! * **An end-to-end comparison**, measured side by side in one run: unary
//!   call latency, pipelined small-call throughput and stream bandwidth for
//!   tandem against a raw-socket baseline and against the peer libraries
//!   `tarpc` and `tonic`.

#![forbid(unsafe_code)]

pub use tandem_core;
