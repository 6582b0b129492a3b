//! [`Ctx`], what a blocking handler knows about its exchange: the blocking face of
//! `tandem_runtime::Ctx`. (Layer 3: imports `api`, `block`, `pool`.)

use core::time::Duration;
use std::net::SocketAddr;

use tandem_runtime::tandem_core::{MethodId, Status};
use tandem_runtime::{PeerCredentials, PeerIdentity};

use crate::api::Peer;
use crate::block::block_on;
use crate::pool;

/// The context of one inbound exchange, handed (owned) to its handler.
///
/// A blocking handler cannot be interrupted: when its exchange is cancelled (the caller
/// cancelled, its deadline passed, or the connection ended) [`is_cancelled`](Self::is_cancelled)
/// becomes true and [`cancelled`](Self::cancelled) and [`wait_cancelled`](Self::wait_cancelled)
/// return; a handler that never checks runs to its end and its answer is discarded.
pub struct Ctx {
    inner: tandem_runtime::Ctx,
    peer: Peer,
}

impl core::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Ctx {
    pub(crate) fn new(inner: tandem_runtime::Ctx) -> Self {
        Ctx { peer: Peer(inner.peer().clone()), inner }
    }

    /// The shared context it wraps (to hand a request to a declared service).
    pub(crate) fn into_inner(self) -> tandem_runtime::Ctx {
        self.inner
    }

    /// The connection the request came from: the handler may call the peer back over it.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The peer's name from its HELLO.
    pub fn peer_name(&self) -> &str {
        self.inner.peer_name()
    }

    /// The identity the server's authenticator gave the peer; `None` without an authenticator
    /// (the peer is unauthenticated) and on the client side.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.inner.identity()
    }

    /// The peer process's credentials, on Unix sockets.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.inner.credentials()
    }

    /// The peer's IP address and port (TCP and UDP).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    /// The method being served.
    pub fn method(&self) -> MethodId {
        self.inner.method()
    }

    /// When the caller stops waiting, if it set a deadline. Calls this handler makes carry the
    /// remaining budget by default ([`Deadline::Inherit`](crate::Deadline::Inherit)).
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.inner.deadline()
    }

    /// Whether the exchange was cancelled: stop working, the result will not be delivered.
    pub fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    /// Blocks until the exchange is cancelled (the handler is parked meanwhile).
    pub fn cancelled(&self) {
        block_on(self.inner.cancelled())
    }

    /// Why the exchange was cancelled, once it is: CANCELLED (the caller cancelled),
    /// DEADLINE_EXCEEDED (its deadline passed) or UNAVAILABLE (the connection ended).
    pub fn cancel_reason(&self) -> Option<Status> {
        self.inner.cancel_reason()
    }

    /// Blocks until the exchange is cancelled or `timeout` has passed, and returns whether it
    /// was cancelled. This is how a handler sleeps or holds a request open: unlike
    /// `thread::sleep` it returns at once on cancellation, and meanwhile the handler is parked:
    /// its pool worker serves other requests.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tandem_std::{Handlers, Unary};
    /// const SLEEP: Unary<u64, bool> = Unary::new(1, 1);
    /// let handlers = Handlers::new().unary(&SLEEP, |ctx, ms| {
    ///     // Sleep `ms` unless the caller cancels first; answer whether it did.
    ///     Ok(ctx.wait_cancelled(Duration::from_millis(ms)))
    /// });
    /// ```
    pub fn wait_cancelled(&self, timeout: Duration) -> bool {
        block_on(self.inner.wait_cancelled(timeout))
    }

    /// Runs `f`, which blocks outside the runtime (file or database I/O, `thread::sleep`, a
    /// lock held by a slow thread, another library that waits), with the handler parked
    /// meanwhile: the pool runs other handlers on other threads while `f` waits, so one slow
    /// dependency does not stall every request. Waits inside the runtime park by themselves;
    /// do not wrap CPU-bound work (a parked handler no longer counts against
    /// [`ServerConfig::workers`](crate::ServerConfig::workers)). tandem-std only: an async
    /// handler hands blocking work to its executor's blocking pool instead.
    pub fn blocking<R>(&self, f: impl FnOnce() -> R) -> R {
        let _parked = pool::parked();
        f()
    }
}
