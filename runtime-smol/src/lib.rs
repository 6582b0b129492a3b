//! Async runtime for the tandem protocol: async handlers and API on any executor (smol's by
//! default), sockets on the I/O threads it shares with tandem-std.
//!
//! The protocol lives in [`tandem_core`]: a sans-IO [`Connection`](tandem_core::Connection) per
//! connection, and the sans-IO [`Endpoint`](tandem_core::endpoint::Endpoint) (server) and
//! [`Dialer`](tandem_core::endpoint::Dialer) (client) for every decision about many
//! connections — admission, the name registry and replacement of a stale peer, session tokens
//! and resumption, the session memory budget, UDP associations, the reconnection schedule.
//! Everything around them that is not I/O — each connection's shared state and the glue from
//! the core's events to the API, the server hub, the dialer glue, handler dispatch, and the
//! API types — is `tandem-runtime`'s, shared with tandem-std, and so are the sockets: every
//! connection, listener and reconnection attempt of the process is driven by a few I/O threads
//! (`tandem_runtime::threads`, the number of cores, at most 4, started on first use) that wait
//! on the readiness of their sockets (epoll/kqueue) and run, for each connection that is
//! readable, writable, woken by an API call or due, one turn of the shared engine: read into
//! the core, act on its events (inline handlers run right there; completed calls and streams
//! wake the tasks that wait on them), write what the core queued. This crate owns the async
//! face: handler tasks, spawned on a [`Spawner`], the async [`Client`] and [`Server`], and the
//! deadline timer. The types it re-exports from `tandem-runtime` are its own API:
//! `RUNTIMES.md` lists it next to tandem-std's, which is the same except where blocking versus
//! async forces a difference.
//!
//! * **Transports**: `tcp://host:port`, `unix:///path`, `unix+seqpacket:///path` and
//!   `udp://host:port` ([`Client::connect`], [`Server::bind`]). Over UDP (datagram mode, SPEC.md
//!   §14) the core retransmits calls and notifications until answered and drops duplicates;
//!   streams are refused (UNIMPLEMENTED).
//! * **Sessions** (SPEC.md §13), on by default on the other transports: a client whose transport
//!   is lost reconnects by itself ([`ReconnectPolicy`]) and its calls in flight complete exactly
//!   once; calls waiting on a suspended session fail UNAVAILABLE after
//!   `Config::suspended_call_timeout`; the server keeps a suspended session for
//!   `Config::session_grace`, within `EndpointConfig::session_memory_budget` over all sessions.
//!   [`Peer::watch_state`] reports each step as a [`LinkState`].
//! * **Typed API**: methods are declared once with [`typed`](tandem_core::typed) types and
//!   shared by both ends; [`Handlers`] serve them with async handlers, a [`Peer`] calls them.
//!   Stream senders wait for flow-control credit (and are `futures_sink::Sink`s); receivers are
//!   `futures_core::Stream`s that return credit as items are taken.
//! * **Deadlines**: every exchange takes a [`Deadline`]; by default a call made from a handler
//!   carries the remaining budget of the request being handled. A handler tells a cancellation
//!   from an expired deadline with [`Ctx::cancel_reason`].
//! * **Executors**: handlers run on a [`Spawner`] ([`SmolSpawner`] by default); a tokio
//!   application passes its own, and its handlers may use tokio's timers and I/O. The crate
//!   does not depend on tokio. Connections need no executor: they run on the I/O threads.
//! * **Allocation-free fast path**: an inline handler ([`Handlers::raw_unary_inline`])
//!   answering [`Peer::call_raw_into`] performs no heap allocation per call in steady state,
//!   on either side.
//! * **Copy-free sending**: [`RawSender::send_shared`] sends a stream item from the caller's
//!   `Arc<Vec<u8>>` (on TCP and Unix stream sockets, with or without TLS): tandem copies none
//!   of it, and in a resumable session that buffer is the retained copy; typed items of 4 KiB or
//!   more, and items given to the `Sink`, are handed over the same way. (tandem-std: the same,
//!   blocking.)
//! * **Lifetime**: a connection lives while any handle to it exists ([`Client`], [`Peer`],
//!   stream handles, [`PendingCall`]s) or while its server tracks it; dropping the last handle
//!   shuts it down gracefully.
//! * **Closing says why**: when a connection ends for a reason this side detects, the peer
//!   receives the CLOSE frame with that status before the transport ends (SPEC.md §7.8): its
//!   driver gives the final frames 1 s to reach the socket, then ends its sending direction and
//!   waits up to 200 ms, reading and dropping at most 1 MiB, for the peer to close its own.
//!
//! Lifecycle events are logged with `tracing` (silent unless a subscriber is installed);
//! [`Peer::stats`] and [`Server::stats`] return counters.
//!
//! # Layering
//!
//! Each file imports only files of a lower layer (no import cycles), and anything of
//! `tandem-runtime` (which has its own layering):
//!
//! | layer | files |
//! | --- | --- |
//! | 0 | `spawner` (the [`Spawner`] and the timer) |
//! | 1 | `config` (spawner), `handlers`: async signatures, handler tasks and their dispatch to the spawner (spawner) |
//! | 2 | `server`, `client` (handlers, config, spawner) |
//!
//! # Example
//!
//! A service is declared once (`service!`, from `tandem_core`), in a crate both ends depend on:
//! its module id, its methods of every kind, their types (serde and postcard-schema's
//! `Schema`) and doc comments. The server implements the generated `Server<Async>` trait and
//! registers it in one call; the client calls through the generated `Client`. Every request
//! carries its method's schema key, and a server whose declaration differs refuses it with
//! SCHEMA_MISMATCH before decoding anything (SPEC.md §7.10).
//!
//! ```
//! use postcard_schema::Schema;
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//! use tandem_smol::{Async, Client, ClientConfig, Ctx, HandlerError, Handlers, Server, ServerConfig, Status};
//!
//! #[derive(Serialize, Deserialize, Schema)]
//! pub struct Add { pub a: u32, pub b: u32 }
//!
//! #[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
//! pub enum CalcError { Overflow }
//!
//! tandem_smol::service! {
//!     /// A calculator.
//!     pub service calc = 1 {
//!         /// Adds two numbers.
//!         unary add(Add) -> u32 | CalcError = 1;
//!     }
//! }
//!
//! struct Calc;
//!
//! impl calc::Server<Async> for Calc {
//!     async fn add(&self, _ctx: Ctx, req: Add) -> Result<u32, HandlerError<CalcError>> {
//!         req.a.checked_add(req.b).ok_or(HandlerError::App(CalcError::Overflow))
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     smol::block_on(async {
//!         let handlers = Handlers::new().serve(calc::Serve(Calc));
//!         let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), handlers)?;
//!
//!         let addr = server.local_addr().to_string();
//!         let client = Client::connect(&addr, ClientConfig::new("client"), Handlers::new()).await?;
//!         let calc = calc::Client::new(client.peer().clone()).with_deadline(Duration::from_secs(1));
//!         assert_eq!(calc.add(&Add { a: 2, b: 3 }).await?, 5);
//!         // The application error arrives as the declared type.
//!         let e = calc.add(&Add { a: u32::MAX, b: 1 }).await.unwrap_err();
//!         assert_eq!((e.status(), e.app()), (Status::APPLICATION_ERROR, Some(&CalcError::Overflow)));
//!
//!         server.shutdown(Duration::from_secs(1)).await;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! A method declared but not implemented does not compile:
//!
//! ```compile_fail
//! # use tandem_smol::{Async, Ctx, HandlerError};
//! tandem_smol::service! {
//!     /// Two methods.
//!     pub service two = 2 {
//!         /// One.
//!         unary one(u32) -> u32 = 1;
//!         /// Two.
//!         unary two(u32) -> u32 = 2;
//!     }
//! }
//! struct OnlyOne;
//! impl two::Server<Async> for OnlyOne {
//!     async fn one(&self, _: Ctx, x: u32) -> Result<u32, HandlerError> { Ok(x) }
//! }
//! # fn main() {}
//! ```
//!
//! Nor do two methods with the same id (the error names both):
//!
//! ```compile_fail
//! tandem_smol::service! {
//!     /// Clashing ids.
//!     pub service clash = 3 {
//!         /// One.
//!         unary one(u32) -> u32 = 1;
//!         /// Also one.
//!         unary uno(u32) -> u32 = 1;
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Methods can also be declared by hand (`Unary::new(module, method)`, `Notification`,
//! `Streaming`) and served one by one (`Handlers::unary`, …) or on raw bytes: such a
//! declaration carries no schema key unless made with `Unary::keyed`, and is not checked.
//! A method's types are checked at compile time: calling it with anything but its request
//! type does not compile.
//!
//! ```compile_fail
//! # use tandem_smol::{Deadline, Unary};
//! # const ADD: Unary<(u32, u32), u32> = Unary::new(1, 1);
//! # async fn f(peer: tandem_smol::Peer) {
//! let sum: u32 = peer.call(&ADD, &"two and three", Deadline::None).await.unwrap();
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod config;
mod handlers;
mod mesh;
mod server;
mod spawner;

pub use client::Client;
pub use config::{ClientConfig, ServerConfig};
pub use handlers::Handlers;
pub use mesh::{MemberWatch, Mesh, MeshOptions};
pub use server::Server;
pub use spawner::{SmolSpawner, Spawner, Task};
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
    Async, AuthRefusal, AuthRequest, Authenticator, CallError, Credentials, Ctx, Deadline, Error, ErrorKind,
    ExchangeKind, Finished, HandlerError, InFlight, InlineCtx, LinkState, Observer, Outcome, Peer,
    PeerCredentials, PeerEvent, PeerIdentity, PendingCall, RawReceiver, RawSender, RegistrationError,
    ServerStats, Side, StateWatch, StreamReceiver, StreamSender, TlsClientConfig, TlsServerConfig,
    DEFAULT_CONNECTION, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DATAGRAM, DEFAULT_UDP_MAX_DATAGRAM,
};
