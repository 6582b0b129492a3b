//! Blocking runtime for the tandem protocol: std sockets, a few I/O threads for every
//! connection of the process, and a fair, bounded pool of handler threads.
//!
//! The protocol lives in [`tandem_core`]: a sans-IO [`Connection`](tandem_core::Connection) per
//! connection, and the sans-IO [`Endpoint`](tandem_core::endpoint::Endpoint) (server) and
//! [`Dialer`](tandem_core::endpoint::Dialer) (client) for every decision about many
//! connections. Everything around them that is not I/O — each connection's shared state and the
//! glue from the core's events to the API, the server hub, the dialer glue, handler dispatch,
//! and the API types — is `tandem-runtime`'s, shared with tandem-smol. This crate owns sockets,
//! the I/O threads, the handler pool and the blocking face of the API: the same names, types,
//! errors and semantics as tandem-smol, with operations that wait blocking the calling thread
//! (`RUNTIMES.md` lists both side by side).
//!
//! * **Transports**: `tcp://host:port`, `unix:///path`, `unix+seqpacket:///path` and
//!   `udp://host:port` ([`Client::connect`], [`Server::bind`]). Over UDP (datagram mode, SPEC.md
//!   §14) the core retransmits calls and notifications until answered and drops duplicates;
//!   streams are refused (UNIMPLEMENTED).
//! * **Sessions** (SPEC.md §13), on by default on the other transports: a client whose transport
//!   is lost reconnects by itself ([`ReconnectPolicy`]) and its calls in flight complete exactly
//!   once; the server keeps a suspended session for `Config::session_grace`, within
//!   `EndpointConfig::session_memory_budget` over all sessions. [`Peer::watch_state`] reports
//!   each step as a [`LinkState`].
//! * **Typed API**: a service is declared once ([`service!`]) and shared by both ends; the
//!   server implements its `BlockingServer<`[`Blocking`]`>` trait and registers it in one call
//!   ([`Handlers::serve`]), the client calls through its `BlockingClient`. Every request carries
//!   its method's schema key, checked before decoding (SPEC.md §7.10); handlers fail with a
//!   message or the method's typed application error ([`HandlerError`]); the introspection
//!   service lists what is served. Methods can also be declared and served one by one
//!   ([`Unary`], [`Handlers::unary`], raw bytes). Stream senders block for flow-control credit;
//!   receivers are also `Iterator`s.
//! * **Deadlines**: every exchange takes a [`Deadline`]; by default a call made from a handler
//!   carries the remaining budget of the request being handled.
//! * **Lifetime**: a connection lives while any handle to it exists ([`Client`], [`Peer`],
//!   stream handles, [`PendingCall`]s) or while its server tracks it; dropping the last handle
//!   shuts it down gracefully.
//! * **Closing says why**: when a connection ends for a reason this side detects, the peer
//!   receives the CLOSE frame with that status before the transport ends (SPEC.md §7.8): the
//!   final frames get 1 s to reach the socket, then the sending direction is shut and the peer
//!   gets 200 ms (at most 1 MiB read and dropped) to close its own.
//! * **Allocation-free fast path**: an inline handler ([`Handlers::raw_unary_inline`])
//!   answering [`Peer::call_raw_into`] performs no heap allocation per call in steady state,
//!   on either side; stream items likewise with [`RawReceiver::recv_into`].
//! * **Copy-free sending**: [`RawSender::send_shared`] sends a stream item from the caller's
//!   `Arc<Vec<u8>>` (on TCP and Unix stream sockets, with or without TLS): tandem copies none
//!   of it, and in a resumable session that buffer is the retained copy; typed items of 4 KiB or
//!   more are handed over the same way. (tandem-smol: the same, awaited.)
//!
//! # Threads
//!
//! * **I/O threads**: a small fixed set (the number of cores, at most 4), shared by every
//!   server and client of the process (tandem-smol's too: they are `tandem-runtime`'s) and
//!   started on first use. Each waits on the readiness of
//!   its sockets (epoll on Linux, kqueue through the `polling` crate elsewhere), and runs for each connection that
//!   is readable, writable, woken by an API call or due (its earliest protocol timer is the
//!   poll timeout) one turn of the shared engine: read into the core, act on its events, write
//!   what it queued. Listening sockets and reconnection attempts (non-blocking connects) are
//!   waited on the same way. An idle connection costs no thread and a few KiB of memory.
//! * **Handler pool**: handlers run on a pool of threads (see below); inline handlers on the
//!   I/O thread.
//! * **Callers** block on their own thread: they park until the connection wakes them (no
//!   spinning: on few cores it delays the I/O threads the answer needs). Timeouts need no timer
//!   thread: the waiting thread parks until its earliest deadline.
//! * **Many calls, one thread**: [`Completions`] holds calls in flight on any connections and
//!   returns each with its tag as it completes, so that one thread can keep a call going on
//!   each of thousands of connections (a thread per call would spend most of its time being
//!   woken and parked). tandem-smol needs no counterpart: its executor does this.
//!
//! # Handler capacity
//!
//! A blocking handler API means that a handler which waits holds a thread while it waits. A
//! fixed pool of threads would let peers that stay within the limits the server announces
//! take all of them with slow calls or streams they never read. The pool shared by a server's
//! connections prevents that:
//!
//! * **Fair queuing.** Each connection has its own queue of requests; the pool takes them
//!   round-robin, one per connection per turn.
//! * **Waiting releases the worker.** [`ServerConfig::workers`] bounds the handlers *running*.
//!   A handler that waits inside the runtime — a stream's `send` waiting for credit or `recv`
//!   for an item, a call it made waiting for its answer, [`Ctx::wait_cancelled`], or anything
//!   wrapped in [`Ctx::blocking`] — is *parked*: it stops counting, and the next request starts
//!   on another thread.
//! * **A peer with nothing running is served at once**, on an extra thread if every worker is
//!   busy (CPU-bound handlers, or handlers blocking outside the runtime with `thread::sleep`).
//! * **Bounded.** Threads never exceed [`ServerConfig::max_workers`]; a peer holds at most the
//!   `max_concurrent_calls + max_concurrent_streams` it was announced (the core enforces it),
//!   and the server announces less if one peer's slots would not fit next to the workers.
//!   [`Server::handler_pool`] counts.
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
//!     // Produces items as the peer grants credit (`send` parks while there is none).
//!     .raw_streaming(MethodId::new(1, 2), |_ctx, init, _rx, mut tx| {
//!         for i in 0..init.first().copied().unwrap_or(0) {
//!             tx.send(&[i]).map_err(|e| e.status())?;
//!         }
//!         Ok(())
//!     })
//!     // Blocks outside the runtime (I/O, another library): tell the pool.
//!     .raw_unary(MethodId::new(1, 3), |ctx, req| {
//!         Ok(ctx.blocking(|| std::fs::read(String::from_utf8_lossy(&req).as_ref()).unwrap_or_default()))
//!     });
//! # let _ = handlers;
//! ```
//!
//! # Example
//!
//! ```
//! use postcard_schema::Schema;
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//! use tandem_std::{Blocking, Client, ClientConfig, Ctx, HandlerError, Handlers, Server, ServerConfig, Status};
//!
//! #[derive(Serialize, Deserialize, Schema)]
//! pub struct Add { pub a: u32, pub b: u32 }
//!
//! #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
//! pub enum CalcError { Overflow }
//!
//! tandem_std::service! {
//!     /// A calculator, declared once for both ends.
//!     pub service calc = 1 {
//!         /// Adds two numbers.
//!         unary add(Add) -> u32 | CalcError = 1;
//!     }
//! }
//!
//! struct Calc;
//!
//! impl calc::BlockingServer<Blocking> for Calc {
//!     fn add(&self, _ctx: Ctx, req: Add) -> Result<u32, HandlerError<CalcError>> {
//!         req.a.checked_add(req.b).ok_or(HandlerError::App(CalcError::Overflow))
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let handlers = Handlers::new().serve(calc::Serve(Calc));
//!     let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), handlers)?;
//!
//!     let addr = server.local_addr().to_string();
//!     let client = Client::connect(&addr, ClientConfig::new("client"), Handlers::new())?;
//!     let calc = calc::BlockingClient::new(client.peer().clone()).with_deadline(Duration::from_secs(1));
//!     assert_eq!(calc.add(&Add { a: 2, b: 3 })?, 5);
//!     // The application error arrives as the declared type.
//!     let e = calc.add(&Add { a: u32::MAX, b: 1 }).unwrap_err();
//!     assert_eq!((e.status(), e.app()), (Status::APPLICATION_ERROR, Some(&CalcError::Overflow)));
//!
//!     client.shutdown(Duration::from_secs(1));
//!     server.shutdown(Duration::from_secs(1));
//!     Ok(())
//! }
//! ```
//!
//! # Layering
//!
//! Each file imports only files of a lower layer (no import cycles), and anything of
//! `tandem-runtime` (which has its own layering):
//!
//! | layer | files |
//! | --- | --- |
//! | 0 | `pool` (the handler pool), `config` |
//! | 1 | `block` (`block_on`, the timer; pool) |
//! | 2 | `api`: the blocking API types (block) |
//! | 3 | `ctx`: a handler's [`Ctx`] (api, block, pool) |
//! | 4 | `service`: the [`Blocking`] flavor of declared services, [`Peer`] as their caller (ctx, api) |
//! | 5 | `handlers`: blocking signatures, [`Handlers::serve`], handler jobs and their dispatch to the pool (service, ctx, api, pool) |
//! | 6 | `server`, `client` (handlers, pool, config, api, block) |
//!
//! The I/O threads, the sockets and each connection's driver are `tandem_runtime::threads`',
//! shared with tandem-smol: this crate gives them its handler signatures and a dispatch that
//! submits started handlers to the pool.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod block;
mod client;
mod completions;
mod config;
mod ctx;
mod handlers;
mod mesh;
mod pool;
mod server;
mod service;

pub use api::{Peer, PendingCall, RawReceiver, RawSender, StateWatch, StreamReceiver, StreamSender};
pub use client::Client;
pub use completions::Completions;
pub use config::{ClientConfig, ServerConfig};
pub use ctx::Ctx;
pub use handlers::Handlers;
pub use mesh::{MemberWatch, Mesh, MeshOptions};
pub use pool::PoolStats;
pub use server::Server;
pub use service::Blocking;
pub use tandem_runtime::mesh::{MemberInfo, MemberState, MeshConfig, MeshStats, NotConnected};
pub use tandem_runtime::tandem_core;
pub use tandem_runtime::tandem_core::addr::Address;
pub use tandem_runtime::tandem_core::endpoint::{EndpointConfig, EndpointStats, ReconnectPolicy};
pub use tandem_runtime::tandem_core::service;
pub use tandem_runtime::tandem_core::typed::{NoError, Notification, Streaming, Unary};
pub use tandem_runtime::tandem_core::{
    Config, ConnectionError, Features, MethodId, PeerLimits, SchemaKey, Stats, Status,
};
#[cfg(feature = "metrics")]
#[doc(inline)]
pub use tandem_runtime::MetricsObserver;
pub use tandem_runtime::{dynamic, introspect};
#[doc(inline)]
pub use tandem_runtime::{
    AuthRefusal, AuthRequest, Authenticator, CallError, Credentials, Deadline, Error, ErrorKind,
    ExchangeKind, Finished, HandlerError, InFlight, InlineCtx, LinkState, Observer, Outcome, PeerCredentials,
    PeerEvent, PeerIdentity, RegistrationError, ServerStats, Side, TlsClientConfig, TlsServerConfig,
    DEFAULT_CONNECTION, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DATAGRAM, DEFAULT_UDP_MAX_DATAGRAM,
};
