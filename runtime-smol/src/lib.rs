//! Async runtime for the tandem protocol on `smol` and `async-io`.
//!
//! The protocol itself lives in [`tandem_core`], a sans-IO state machine; this crate only
//! owns sockets, timers and tasks. Per connection one driver task reads the socket into the
//! core, acts on its events (starting handler tasks, completing calls and streams), writes
//! what the core queued and sleeps until the socket, an API call or the core's next timeout
//! wakes it.
//!
//! * **Transports**: `tcp://host:port`, `unix:///path`, `unix+seqpacket:///path` and
//!   `udp://host:port` ([`connect`], [`Server::bind`]). Over UDP (datagram mode, SPEC.md §14)
//!   the core retransmits calls and notifications until answered and drops duplicates; a UDP
//!   server demultiplexes one socket into associations by source address
//!   ([`Options::max_associations`]); streams are refused (UNIMPLEMENTED).
//! * **Session resumption** (SPEC.md §13), on by default on the other transports
//!   ([`Options::resumption`]): a client whose transport is lost reconnects by itself with
//!   capped, jittered exponential backoff ([`Options::reconnect_backoff`]) and its calls in
//!   flight complete exactly once; the server keeps the suspended session for
//!   `Config::session_grace` ([`Options::max_suspended_sessions`]). A session that expires or
//!   that the server no longer knows fails its pending calls with UNAVAILABLE.
//! * **Typed API**: methods are declared once with [`typed`](tandem_core::typed) types and
//!   shared by both ends; a [`Router`] serves them with async handlers, a [`Peer`] calls them
//!   ([`Peer::call`], [`Peer::notify`], [`Peer::signal`], [`Peer::open_stream`],
//!   [`Peer::subscribe`]). Stream senders wait for flow-control credit; receivers are
//!   `futures_core::Stream`s that return credit as items are taken.
//! * **Both directions**: after the handshake client and server are equal; each may register
//!   handlers and call the other. A [`Server`] tracks its peers by name and can call one or
//!   all of them ([`Server::call_all`]).
//! * **Failure**: dropping a call's future cancels it at the peer ([`Ctx::cancelled`]); a lost
//!   connection fails every pending call with UNAVAILABLE; [`Server::shutdown`] sends GOAWAY and
//!   lets in-flight calls finish within a grace period.
//!
//! * **Closing says why**: when a connection ends for a reason this side detects (a protocol
//!   violation, a limit, a flood, a timeout, a shutdown whose grace ran out), the peer receives
//!   the CLOSE frame with that status before the transport ends (SPEC.md §7.8). Its driver gives
//!   the final frames 1 s to reach the socket (a peer that reads nothing for that long does not
//!   get them), then ends its sending direction and waits up to 200 ms, reading and dropping at
//!   most 1 MiB, for the peer to close its own, so that closing does not reset the connection
//!   under the CLOSE.
//! * **Limits**: at most `Config::max_concurrent_calls` handlers (and as many signal handlers)
//!   and `Config::max_concurrent_streams` stream handlers run per connection; callers beyond
//!   the peer's limits wait for room instead of failing.
//!
//! Lifecycle events are logged with `tracing` (silent unless a subscriber is installed);
//! [`Peer::stats`] returns the connection's counters.
//!
//! # Example
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use tandem_smol::{connect, Options, Router, Server};
//! use tandem_smol::tandem_core::typed::Unary;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Add { a: u32, b: u32 }
//!
//! /// Declared once, shared by both ends.
//! const ADD: Unary<Add, u32> = Unary::new(1, 1);
//!
//! smol::block_on(async {
//!     let router = Router::new().unary(&ADD, |_ctx, req: Add| async move { Ok(req.a + req.b) });
//!     let server = Server::bind("tcp://127.0.0.1:0", Options::new("server").router(router))?;
//!
//!     let addr = server.local_addr().to_string();
//!     let peer = connect(&addr, Options::new("client")).await?;
//!     let sum = peer.call(&ADD, &Add { a: 2, b: 3 }, None).await?;
//!     assert_eq!(sum, 5);
//!
//!     server.shutdown(std::time::Duration::from_secs(1)).await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```

//! A method's types are checked at compile time: calling `ADD` with anything but its request
//! type does not compile.
//!
//! ```compile_fail
//! # use tandem_smol::tandem_core::typed::Unary;
//! # const ADD: Unary<(u32, u32), u32> = Unary::new(1, 1);
//! # async fn f(peer: tandem_smol::Peer) {
//! let sum: u32 = peer.call(&ADD, &"two and three", None).await.unwrap();
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod ctx;
mod driver;
mod error;
mod events;
mod options;
mod peer;
mod router;
mod server;
mod shared;
mod stream;
mod transport;

pub use conn::connect;
pub use ctx::Ctx;
pub use error::{CallError, Error};
pub use options::{
    Options, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ASSOCIATIONS, DEFAULT_MAX_DATAGRAM,
    DEFAULT_MAX_SUSPENDED_SESSIONS, DEFAULT_MAX_UDP_DATAGRAM, DEFAULT_RECONNECT_INITIAL,
    DEFAULT_RECONNECT_JITTER, DEFAULT_RECONNECT_MAX, DEFAULT_RECONNECT_MULTIPLIER,
};
pub use peer::Peer;
pub use router::Router;
pub use server::Server;
pub use stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};
pub use tandem_core;
pub use tandem_core::{Config, ConnectionError, MethodId, Stats, Status};
pub use transport::Credentials;
