//! What the tandem runtimes share, I/O included. Not for applications: use `tandem-smol`
//! (async) or `tandem-std` (blocking), which re-export the types here that are part of their
//! API.
//!
//! The protocol lives in [`tandem_core`]: a sans-IO [`Connection`](tandem_core::Connection)
//! per connection and a sans-IO [`Endpoint`](tandem_core::endpoint::Endpoint) /
//! [`Dialer`](tandem_core::endpoint::Dialer) for every decision about many connections. This
//! crate holds everything a runtime needs around them that is neither a socket, a timer, a
//! thread nor a task: each connection's shared state behind its mutex and the glue that turns
//! the core's events into API results ([`engine`]), the server hub around the endpoint
//! ([`hub`], [`open`]), the client's dialer glue ([`session`]), the handler registry and its
//! dispatch decisions ([`handlers`]), the byte pump between a socket and the core ([`pump`]),
//! TLS for `tls://`, written once as a sans-IO layer inside the pump ([`tls`]),
//! the API types whose behaviour does not depend on the runtime, and the I/O threads that
//! drive every socket of both runtimes ([`threads`]: sockets, one driver per connection around
//! its [`engine::Engine`], the listeners), generic over the runtime's handler signatures and a
//! [`threads::Dispatch`] that says where a started handler runs. It uses no executor: every
//! wait of the API is a future that registers a `core::task::Waker`, and a time limit is a
//! timer the runtime supplies ([`clock::SleepUntil`]). `RUNTIMES.md` says which crate
//! implements which part of the public API.
//!
//! # The API types are async-first
//!
//! [`Peer`], [`PendingCall`], [`StateWatch`], [`Ctx`] and the stream handles wait through
//! `async fn`s and `Future` / `Stream` / `Sink` impls, written once here. tandem-smol
//! re-exports them as they are; a blocking runtime wraps each in a type of its own whose
//! waiting methods `block_on` the future (same names, same semantics). The rest —
//! [`Error`], [`CallError`], [`Deadline`], [`LinkState`], [`ServerStats`],
//! [`PeerCredentials`], [`InlineCtx`], the config structs ([`configs!`]) and their defaults —
//! is re-exported by both unchanged.
//!
//! # What a runtime provides
//!
//! The sockets, each connection's driver and a server's listener are [`threads`]' (below, what
//! they do); a runtime starts them ([`threads::transport::connect`] and
//! [`threads::driver::spawn`] for a client, [`threads::transport::Listener::bind`] and
//! [`threads::listen::start`] for a server) and provides:
//!
//! * **Dispatch**: a [`threads::Dispatch`], which receives each started handler
//!   ([`handlers::Started`]) after the turn that started it.
//! * **Handler execution**: its handler signatures as a [`handlers::HandlerFns`], registered
//!   in a [`handlers::Registry`]; each [`Started`](handlers::Started) job runs the handler with
//!   the request's deadline current ([`deadline::Scoped`] around each poll of a future,
//!   [`deadline::enter`] around a blocking call), catches a panic (INTERNAL), and reports its
//!   [`Outcome`] with [`Done::finish`](handlers::Done::finish) (status bodies when negotiated).
//! * **A timer**: a [`clock::SleepUntil`], given to [`hub::Hub::new`] and [`open::dial`].
//! * **The public types** that differ: `Client`, `Server`, `Handlers` (its signatures), and —
//!   in a blocking runtime — the wrappers of the async-first types above.
//!
//! What [`threads`] does for every connection: a driver runs the loop of [`engine::Engine`]
//! (its module documentation lists one turn), woken by the connection's waker
//! ([`conn::Inner::set_driver`]: every API call that queued something wakes it), by its
//! socket's readiness, and by [`Engine::next_timeout`](engine::Engine::next_timeout); after
//! each turn it hands the started handlers to the dispatch and applies the endpoint's actions;
//! on a client, it dials reconnection attempts (non-blocking connects) when
//! [`Engine::redial`](engine::Engine::redial) says so. A server's listener calls
//! [`open::accept`] for each transport (UDP: [`open::datagram`] for each datagram, and
//! [`hub::Hub::poll_resubmitted`]) until the hub stops.
//!
//! # How a blocking runtime uses this crate
//!
//! tandem-std (a bounded handler pool, blocking callers) needs, on top of [`threads`]:
//!
//! 1. **`block_on`**: polls a future on the calling thread with a waker that unparks it;
//!    between polls it parks (it does not spin: on a 2-core machine spinning delayed the I/O
//!    threads the answer needs). Its
//!    [`SleepUntil`](clock::SleepUntil) returns a future that records its instant in a
//!    thread-local that `block_on` reads after each poll to park with
//!    `std::thread::park_timeout` until the earliest one, and is ready once it has passed —
//!    no timer thread is needed, because every shared future that has a time limit is polled
//!    by `block_on` on the waiting thread. (`futures_lite::future::block_on` also works, given
//!    a timer that wakes wakers.)
//! 2. **Helping**: before it parks, `block_on` calls [`threads::io::help`], which runs the
//!    turn of a connection the thread just woke (its request to write) if its I/O thread has
//!    not yet: one thread hand-off fewer per call (its [`threads::Dispatch::CALLERS_HELP`] is
//!    true).
//! 3. **The handler pool**: `Started` jobs go to the pool's queue; a pool thread runs the
//!    handler under [`deadline::enter`] and `catch_unwind`, and calls `done.finish(outcome)`.
//!    Cancellation stays a flag the handler polls (`ctx.is_cancelled()`), or blocks on
//!    (`block_on(ctx.cancelled())`). Signals count against `max_concurrent_calls` as here.
//! 4. **The public wrappers**: `Peer` (each waiting method is `block_on(self.0.method(..))`,
//!    the others delegate), `PendingCall` (`wait(self) = block_on(self.0)`), `StateWatch`
//!    (`changed()` blocks), `StreamSender`/`RawSender` (`send` blocks), `StreamReceiver` /
//!    `RawReceiver` (`recv` blocks; `Iterator`), `Ctx` (holding its own `Peer`; `cancelled()`
//!    blocks); `Client` and `Server` as tandem-smol's, with `hub::Hub`'s async operations in
//!    `block_on`. `Error`, `CallError`, `Deadline`, `LinkState`, `ServerStats`,
//!    `PeerCredentials`, `InlineCtx` are re-exported as they are; `ServerConfig` and
//!    `ClientConfig` come from [`configs!`] with `workers` / `max_workers` as its fields.
//! 5. **Declared services**: a flavor implementing `tandem_core::typed::rt::BlockingRuntime`
//!    with its own `Ctx` and stream wrappers, [`service::Incoming`], [`HandlerError`] and
//!    [`Outcome`] (each helper: [`service::decode_request`], run the handler,
//!    [`service::finish`]), `Handlers::serve` through [`handlers::Registry::try_service`], and
//!    `BlockingCaller` for its `Peer` (each operation `block_on` of the shared one). tandem-std
//!    does all of this (`Blocking`).
//!
//! # Layering
//!
//! Each file imports only files of a lower layer (no import cycles):
//!
//! | layer | files |
//! | --- | --- |
//! | 0 | `error`, `clock`, `state` ([`LinkState`], [`PeerCredentials`], [`ServerStats`], why a transport failed), `auth` (state), `udp`, `relay` (an I/O thread's batch of wake-ups, relayed), `outcome` (what a handler answers), `dynamic` (values from schemas) |
//! | 1 | `deadline` (clock), `config` (error), `tls`: TLS configurations and the sans-IO session (error), `conn`: one connection's shared state (clock, state, auth), `unix`: socket files and credentials (error, state), `introspect`: the introspection service (outcome) |
//! | 2 | `stream` (conn, error), `pump` (conn, clock, tls, state) |
//! | 3 | `peer` (conn, stream, deadline, clock, error, state, relay) |
//! | 4 | `ctx` (peer, conn, clock, state), `hub`: the server's endpoint and connections (peer, conn, udp, state, clock, deadline, error) |
//! | 5 | `handlers` (ctx, peer, stream, conn, outcome, introspect), `service`: the [`Async`] flavor of declared services and [`Peer`] as their caller (outcome, ctx, peer, stream, error, deadline), `session`: link to the hub or dialer (hub, conn, state, clock) |
//! | 6 | `events` (handlers, session, hub, conn, clock), `open` (session, hub, peer, conn, udp, state, clock, error) |
//! | 7 | `engine` (open, events, session, handlers, hub, conn, clock) |
//! | 8 | `threads`: the I/O threads, sockets, drivers and listeners (engine, open, hub, handlers, pump, session, tls, conn, udp, unix, state, error; its own layering inside) |
//! | 9 | `mesh`: a mesh of peers, SPEC.md §16 (threads, hub, peer, conn, auth, clock, deadline, error) |

#![deny(missing_docs)]
// `unsafe` only in `threads/poller.rs`, off Linux: registering a descriptor with `polling`'s
// poller (see its `add_edge`; on Linux `nix`'s epoll wrappers are safe).
#![deny(unsafe_code)]

mod auth;
pub mod clock;
pub mod config;
pub mod conn;
mod ctx;
pub mod deadline;
pub mod dynamic;
pub mod engine;
pub mod error;
mod events;
pub mod handlers;
pub mod hub;
pub mod introspect;
pub mod mesh;
#[cfg(feature = "metrics")]
mod metrics_observer;
mod observe;
pub mod open;
mod outcome;
pub mod peer;
pub mod pump;
pub mod relay;
pub mod serial;
pub mod service;
pub mod session;
mod state;
mod stream;
pub mod threads;
pub mod tls;
pub mod udp;
pub mod unix;
mod watch;

pub use auth::{AuthRefusal, AuthRequest, Authenticator, Credentials, PeerIdentity};
pub use config::{
    DEFAULT_CONNECTION, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DATAGRAM, DEFAULT_UDP_MAX_DATAGRAM,
};
pub use ctx::{Ctx, InlineCtx};
pub use deadline::Deadline;
pub use error::{CallError, Error, ErrorKind};
pub use handlers::RegistrationError;
#[cfg(feature = "metrics")]
pub use metrics_observer::MetricsObserver;
pub use observe::{ExchangeKind, Finished, InFlight, Observer, PeerEvent, Side};
pub use outcome::Outcome;
pub use peer::{Peer, PendingCall, StateWatch};
pub use service::{Async, HandlerError};
pub use state::{LinkState, PeerCredentials, ServerStats};
pub use stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};
pub use tandem_core;
pub use tls::{TlsClientConfig, TlsServerConfig};
