//! Async runtime for the tandem protocol, on `async-io` sockets and timers and any executor
//! (smol's by default).
//!
//! The protocol lives in [`tandem_core`]: a sans-IO [`Connection`](tandem_core::Connection) per
//! connection, and the sans-IO [`Endpoint`](tandem_core::endpoint::Endpoint) (server) and
//! [`Dialer`](tandem_core::endpoint::Dialer) (client) for every decision about many
//! connections — admission, the name registry and replacement of a stale peer, session tokens
//! and resumption, the session memory budget, UDP associations, the reconnection schedule.
//! This crate only owns sockets, timers, wake-ups and tasks: per connection one driver task
//! reads the socket into the core, acts on its events (starting handler tasks, completing calls
//! and streams, reporting to the endpoint or dialer), writes what the core queued, and sleeps
//! until the socket, an API call or a timeout wakes it. `RUNTIMES.md` lists its public API next
//! to tandem-std's, which is the same except where blocking versus async forces a difference.
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
//! * **Executors**: drivers, accept loops and handlers run on a [`Spawner`]
//!   ([`SmolSpawner`] by default); a tokio application passes its own, and its handlers may use
//!   tokio's timers and I/O. The crate does not depend on tokio.
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
//! Each file imports only files of a lower layer (no import cycles):
//!
//! | layer | files |
//! | --- | --- |
//! | 0 | `error`, `clock`, `spawner` |
//! | 1 | `deadline` (clock), `transport` (error), `config` (spawner) |
//! | 2 | `conn`: one connection's shared state, [`LinkState`], the counted handle (clock, transport) |
//! | 3 | `stream` (conn, error), `hub`: the server's endpoint behind a mutex (conn, transport, clock) |
//! | 4 | `peer` (conn, stream, deadline, clock, error, transport), `session`: link to the hub or dialer (hub, conn, transport, clock, error) |
//! | 5 | `ctx` (peer, conn, clock, transport) |
//! | 6 | `handlers` (ctx, peer, stream, conn, deadline, spawner) |
//! | 7 | `events` (handlers, session, hub, conn, clock, spawner) |
//! | 8 | `driver` (events, session, handlers, hub, conn, transport, clock, spawner) |
//! | 9 | `server`, `client` (driver and everything below) |
//!
//! # Example
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//! use tandem_smol::{Client, ClientConfig, Handlers, Server, ServerConfig, Unary};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Add { a: u32, b: u32 }
//!
//! /// Declared once, shared by both ends.
//! const ADD: Unary<Add, u32> = Unary::new(1, 1);
//!
//! smol::block_on(async {
//!     let handlers = Handlers::new().unary(&ADD, |_ctx, req: Add| async move { Ok(req.a + req.b) });
//!     let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), handlers)?;
//!
//!     let addr = server.local_addr().to_string();
//!     let client = Client::connect(&addr, ClientConfig::new("client"), Handlers::new()).await?;
//!     let sum = client.call(&ADD, &Add { a: 2, b: 3 }, Duration::from_secs(1)).await?;
//!     assert_eq!(sum, 5);
//!
//!     server.shutdown(Duration::from_secs(1)).await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! A method's types are checked at compile time: calling `ADD` with anything but its request
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
mod clock;
mod config;
mod conn;
mod ctx;
mod deadline;
mod driver;
mod error;
mod events;
mod handlers;
mod hub;
mod peer;
mod server;
mod session;
mod spawner;
mod stream;
mod transport;

pub use client::Client;
pub use config::{
    ClientConfig, ServerConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DATAGRAM, DEFAULT_UDP_MAX_DATAGRAM,
};
pub use conn::LinkState;
pub use ctx::{Ctx, InlineCtx};
pub use deadline::Deadline;
pub use error::{CallError, Error};
pub use handlers::Handlers;
pub use peer::{Peer, PendingCall, StateWatch};
pub use server::{Server, ServerStats};
pub use spawner::{SmolSpawner, Spawner, Task};
pub use stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};
pub use tandem_core;
pub use tandem_core::addr::Address;
pub use tandem_core::endpoint::{EndpointConfig, EndpointStats, ReconnectPolicy};
pub use tandem_core::typed::{Notification, Streaming, Unary};
pub use tandem_core::{Config, ConnectionError, MethodId, Stats, Status};
pub use transport::PeerCredentials;
