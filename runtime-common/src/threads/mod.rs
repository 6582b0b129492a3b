//! The I/O threads, shared by both runtimes: a small fixed set of threads that wait on the
//! readiness of every socket of the process (epoll on Linux, kqueue through `polling` elsewhere) and run, for each
//! connection that is readable, writable, woken by an API call or due, one turn of its
//! [`Engine`](crate::engine::Engine); listening sockets, UDP server sockets and reconnection
//! attempts (non-blocking connects) are waited on the same way. An idle connection costs no
//! thread, no task and a few KiB of memory, and the fast path (an inline handler answering a
//! call) allocates nothing.
//!
//! The runtimes differ only in where a started handler runs, which they say with a
//! [`Dispatch`]: tandem-std submits it to its fair handler pool, tandem-smol spawns it as a task
//! on the application's executor. Inline handlers run on the I/O thread in both.
//!
//! * `poller`: the readiness wait (epoll; `polling` off Linux).
//! * `slots`: an I/O thread's table of tasks, which shrinks again after a burst.
//! * [`io`]: the threads, their tasks and their timers (no protocol).
//! * [`transport`]: non-blocking std sockets of every transport (TCP — also under `tls://`,
//!   whose TLS runs in the [`pump`](crate::pump) —, Unix stream, Unix SEQPACKET, UDP).
//! * `ws`: WebSocket (`ws://`, `wss://`) as a transport around a TCP socket, its upgrade
//!   run non-blocking on the I/O thread (tungstenite).
//! * [`driver`]: one connection's task: the engine's turn around its socket.
//! * [`listen`]: a server's accept task and UDP receive task.
//!
//! Layering: `transport`, `poller`, `slots` (0), `io` (1: transport, poller, slots), `ws` (1: transport), `driver` (2: io,
//! transport, ws, this module's [`Dispatch`]), `listen` (3: driver, io, transport, ws).

pub mod driver;
pub mod io;
pub mod listen;
mod poller;
mod slots;
pub mod transport;
mod ws;

use crate::handlers::{HandlerFns, Started};

/// Where a connection's started handlers run (everything but inline handlers, which run on the
/// I/O thread during the turn). One value per connection, owned by its driver.
pub trait Dispatch<F: HandlerFns>: Send + 'static {
    /// Whether threads that wake this connection's driver from outside the I/O threads may run
    /// its turn themselves ([`io::help`]) before they block: true for a blocking runtime whose
    /// waiting callers call [`io::help`] before parking (one thread hand-off fewer per call);
    /// false for a runtime whose callers never do (an async executor's threads), so that they
    /// do not keep tasks they never run.
    const CALLERS_HELP: bool;

    /// Starts a handler. Called on the I/O thread after the turn that started it, with no lock
    /// held; must not block.
    fn dispatch(&mut self, started: Started<F>);

    /// The connection has ended and everything that waited on it is resolved.
    fn ended(&mut self) {}
}
