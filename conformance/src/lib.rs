//! Conformance suite for implementations of the tandem protocol.
//!
//! **Status: not implemented yet.** This crate currently contains nothing but
//! a re-export of [`tandem_core`]; there are no vectors, scenarios or runner
//! yet.
//!
//! When implemented, this crate will hold, for use by *any* implementation
//! (not only this one):
//!
//! * **Language-neutral test vectors** in JSON: exact frame bytes together
//!   with their decoded meaning, including malformed input and the error each
//!   must produce.
//! * **Scripted scenarios**: sequences of frames to send and frames expected
//!   back, covering every exchange type, fault and limit described in
//!   `SPEC.md`.
//! * **A runner binary** that plays those scenarios against an implementation
//!   reachable over TCP or a Unix socket and reports each case as pass or
//!   fail, by the `SPEC.md` section it tests.

#![forbid(unsafe_code)]

pub use tandem_core;
