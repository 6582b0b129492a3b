//! Async runtime for the tandem protocol, built on `smol` and `async-io`.
//!
//! **Status: not implemented yet.** This crate currently contains nothing but
//! a re-export of [`tandem_core`]; none of the API described below exists,
//! and it does not yet depend on `smol` or `async-io`.
//!
//! When implemented, this crate will hold the async counterpart of
//! `tandem-std`: `async-io` sockets (TCP, Unix stream, UDP, Unix
//! `SOCK_SEQPACKET`) driven by a thin async loop that feeds bytes or
//! datagrams and the current monotonic time to `tandem-core`, acts on the
//! events it emits, writes the bytes it emits, and waits on an `async-io`
//! timer for the core's next timeout; plus async versions of the typed call,
//! notification and stream API. Like the blocking runtime, it holds no
//! protocol logic of its own.

#![forbid(unsafe_code)]

pub use tandem_core;
