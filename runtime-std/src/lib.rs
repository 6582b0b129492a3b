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
//!   fair, bounded pool (see [Handler capacity](#handler-capacity)), except quick unary
//!   handlers registered with [`Handlers::raw_unary_inline`], which run on the driver thread
//!   itself; callers block on their own thread (spinning briefly before they park). Only the
//!   driver ever waits on a socket: a peer that does not read cannot hold a caller or a
//!   handler.
//! * **Every close says why**: when the connection ends on this side (a peer's violation, a
//!   timeout, a limit, a local close), the driver writes the core's CLOSE frame, shuts its
//!   sending direction and reads until the peer closes too, before it closes the socket
//!   (closing with unread input would reset the connection and could destroy the CLOSE):
//!   the last bytes get [`CLOSE_LINGER`] (1 s) to be written, the peer [`CLOSE_DRAIN`]
//!   (200 ms, at most 1 MiB read) to close, as in `tandem-smol` (SPEC.md §7.8.1).
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
//! ## Handler capacity
//!
//! A blocking handler API means that a handler which waits holds a thread while it waits. A
//! fixed pool of threads would let peers that stay within the limits the server announces
//! take all of them with slow calls or streams they never read, and every other client would
//! wait. The pool shared by a server's connections prevents that:
//!
//! * **Fair queuing.** Each connection has its own queue of requests; the pool takes them
//!   round-robin, one per connection per turn.
//! * **Waiting releases the worker.** [`ServerConfig::workers`] bounds the handlers *running*.
//!   A handler that waits inside the runtime — a stream's `send` waiting for credit or `recv`
//!   waiting for an item, a call it made waiting for its answer, [`Ctx::wait_cancelled`], or
//!   anything wrapped in [`Ctx::blocking`] — is *parked*: it stops counting, and the next
//!   request starts on another thread. So streams do not pin workers while they wait, and a
//!   handler that sleeps with `ctx.wait_cancelled(d)` costs a parked thread, not a worker.
//! * **A peer with nothing running is served at once**, on an extra thread if every worker is
//!   busy (CPU-bound handlers, or handlers blocking outside the runtime with `thread::sleep`):
//!   no set of peers can make another peer's request wait for their handlers to finish.
//! * **Bounded.** Threads never exceed [`ServerConfig::max_handler_threads`]; a peer can hold at
//!   most the `max_concurrent_calls + max_concurrent_streams` it was announced (the core
//!   enforces it), plus [`ServerConfig::max_queued_signals`] signals. The server announces
//!   less if one peer's slots would not fit next to the workers; with the defaults (16 workers,
//!   1024 threads, 100 + 100 slots) five peers can hold every slot with parked handlers at
//!   once. At the cap new requests wait their turn ([`Server::handler_pool`] counts it).
//!   Connections in the handshake are bounded by [`ServerConfig::max_handshaking`].
//!
//! Write handlers that wait the runtime's way:
//!
//! ```
//! use std::time::Duration;
//! use tandem_std::{Handlers, MethodId, Status};
//!
//! let handlers = Handlers::new()
//!     // Sleeps unless cancelled: the worker runs other requests meanwhile.
//!     .raw_unary(MethodId::new(1, 1), |ctx, _| {
//!         let cancelled = ctx.wait_cancelled(Duration::from_millis(200));
//!         Ok(vec![u8::from(cancelled)])
//!     })
//!     // Holds a stream open until it is reset or cancelled.
//!     .raw_streaming(MethodId::new(1, 2), |ctx, _init, _rx, _tx| {
//!         ctx.wait_cancelled(Duration::from_secs(10));
//!         if ctx.is_cancelled() { Err(Status::CANCELLED) } else { Ok(()) }
//!     })
//!     // Produces items as the peer grants credit (`send` parks while there is none).
//!     .raw_streaming(MethodId::new(1, 3), |_ctx, init, _rx, tx| {
//!         let n = init.first().copied().unwrap_or(0);
//!         for i in 0..n {
//!             tx.send(&[i]).map_err(|e| e.status())?;
//!         }
//!         Ok(())
//!     })
//!     // Blocks outside the runtime (I/O, another library): tell the pool.
//!     .raw_unary(MethodId::new(1, 4), |ctx, req| {
//!         Ok(ctx.blocking(|| std::fs::read(String::from_utf8_lossy(req).as_ref()).unwrap_or_default()))
//!     });
//! # let _ = handlers;
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
pub use driver::{CLOSE_DRAIN, CLOSE_LINGER};
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
