//! Blocking runtime for the tandem protocol, built on `std` only.
//!
//! **Status: not implemented yet.** This crate currently contains nothing but
//! a re-export of [`tandem_core`]; none of the API described below exists.
//!
//! When implemented, this crate will hold:
//!
//! * **Transports** over `std::net` and `std::os::unix` sockets: TCP and Unix
//!   stream sockets (byte-stream framing), and UDP and Unix `SOCK_SEQPACKET`
//!   sockets (one message per datagram).
//! * **A thin driver loop** per connection, run on threads: read the socket,
//!   feed the bytes or datagrams and the current monotonic time to
//!   `tandem-core`, act on the events it emits, write the bytes it emits, and
//!   sleep until the core's next timeout. It holds no protocol logic of its
//!   own; all of that lives in `tandem-core`.
//! * **A typed API**: calls, notifications and streams described once by
//!   module/method IDs and serde request and response types (encoded with
//!   postcard), shared by both ends.
//! * **A worker pool** of threads that runs incoming request handlers.

#![forbid(unsafe_code)]

pub use tandem_core;
