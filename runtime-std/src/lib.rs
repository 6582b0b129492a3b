//! Blocking runtime for the tandem protocol: real sockets and threads around the sans-IO
//! [`tandem_core`].
//!
//! * **Transports**: TCP (`tcp://HOST:PORT`, `TCP_NODELAY` on), Unix stream sockets
//!   (`unix:///PATH`) and Unix SEQPACKET sockets (`unix+seqpacket:///PATH`, one frame batch per
//!   packet) and UDP (`udp://HOST:PORT`, datagram mode, SPEC.md §14: one frame per datagram,
//!   the core retransmits; the server demultiplexes one socket into associations by source
//!   address; streams are refused with UNIMPLEMENTED).
//! * **Session resumption** (SPEC.md §13, on by default over TCP and Unix sockets): when the
//!   transport is lost the session is suspended, the client reconnects by itself with capped
//!   exponential backoff ([`Reconnect`]) and in-flight calls complete exactly once; callers
//!   only see latency. See [`ClientConfig::resume`] and [`ServerConfig::resume`].
//!   On Unix sockets the peer's uid, gid and pid are available to handlers
//!   ([`Ctx::credentials`]).
//! * **Typed API**: methods are declared once with [`tandem_core::typed`] (`Unary<Req, Resp>`,
//!   `Notification<T>`, `Streaming<Init, Up, Down>`) and shared by both ends; calling with the
//!   wrong types does not compile. [`Handlers`] registers what a side serves (raw byte-level
//!   handlers too); [`Peer`] calls, notifies, signals and opens streams.
//! * **Both sides are equal**: a [`Client`] registers handlers too, and a [`Server`] calls its
//!   peers by name ([`Server::peer`]) or all at once ([`Server::call_all`]).
//! * **Threads**: each connection has one driver thread that runs the core's loop (read →
//!   feed → events → write → sleep until input or the core's next timeout); handlers run on a
//!   bounded worker pool, except quick unary handlers registered with
//!   [`Handlers::raw_unary_inline`], which run on the driver thread itself; callers block on
//!   their own thread (spinning briefly before they park).
//! * **Allocation-free fast path**: an inline handler answering [`Peer::call_raw_into`] (or
//!   [`PendingCall::wait_into`]) performs no heap allocation per call in steady state; stream
//!   items likewise with [`RawReceiver::recv_into`]. Idle connections give their buffers back. The runtime holds no protocol
//!   logic: deadlines, cancellation, flow control, keepalive and GOAWAY all come from the core.
//! * **Diagnostics**: connection and call lifecycle events go to [`tracing`] (silent unless a
//!   subscriber is installed); [`Peer::stats`] returns the core's counters.
//!
//! ## Example
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//! use tandem_std::{Client, ClientConfig, Handlers, Server, ServerConfig, Unary};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Add { a: u32, b: u32 }
//!
//! // Declared once, used by both sides.
//! const ADD: Unary<Add, u32> = Unary::new(1, 1);
//!
//! let handlers = Handlers::new().unary(&ADD, |_ctx, req: Add| Ok(req.a + req.b));
//! let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("calc"), handlers)?;
//!
//! let addr = server.local_addr().to_string();
//! let client = Client::connect(&addr, ClientConfig::new("me"), Handlers::new())?;
//! let sum = client.call(&ADD, &Add { a: 2, b: 3 }, Duration::from_secs(5))?;
//! assert_eq!(sum, 5);
//!
//! client.shutdown(Duration::from_secs(1));
//! server.shutdown(Duration::from_secs(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Errors
//!
//! Setting up returns [`Error`] (bad address, busy socket path, unsupported transport, failed
//! handshake). An exchange returns [`CallError`]: usually [`CallError::Status`] with the status
//! the exchange ended with — the remote handler's, the remote runtime's (UNKNOWN_MODULE,
//! UNKNOWN_METHOD, BAD_PAYLOAD, ENCODE_FAILED, …), or a local one (DEADLINE_EXCEEDED,
//! CANCELLED, UNAVAILABLE when the connection was lost or replaced).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cancel;
mod client;
mod clock;
mod conn;
mod dispatch;
mod driver;
mod error;
mod handlers;
mod peer;
mod pool;
mod server;
mod stream;
mod transport;

pub use client::{Client, ClientConfig, Reconnect, DEFAULT_CLIENT_WORKERS, DEFAULT_MAX_DATAGRAM};
pub use driver::CLOSE_LINGER;
pub use error::{CallError, Error};
pub use handlers::{Ctx, Handlers, InlineCtx};
pub use peer::{Peer, PendingCall};
pub use pool::{PoolStats, IDLE_THREAD_KEEPALIVE};
pub use server::{
    Server, ServerConfig, DEFAULT_MAX_ASSOCIATIONS, DEFAULT_MAX_HANDLER_THREADS, DEFAULT_MAX_HANDSHAKING,
    DEFAULT_MAX_QUEUED_SIGNALS, DEFAULT_MAX_SUSPENDED_SESSIONS, DEFAULT_SERVER_WORKERS,
    DEFAULT_UDP_MAX_DATAGRAM,
};
pub use stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};
pub use tandem_core;
pub use tandem_core::addr::Address;
pub use tandem_core::typed::{Notification, Streaming, Unary};
pub use tandem_core::{Config, ConnectionError, MethodId, Stats, Status};
pub use transport::PeerCredentials;
