//! What a handler knows about the exchange it serves: [`Ctx`], and [`InlineCtx`] for inline
//! handlers. (Layer 4: imports `peer`, `conn`, `clock`, `state`.)

use std::net::SocketAddr;
use std::sync::Arc;

use tandem_core::{Instant, MethodId, Status};

use crate::auth::PeerIdentity;
use crate::clock::to_std;
use crate::conn::{CancelToken, Shared};
use crate::peer::Peer;
use crate::state::PeerCredentials;

/// The context of one inbound exchange, handed (owned) to its handler.
pub struct Ctx {
    peer: Peer,
    method: MethodId,
    deadline: Option<Instant>,
    token: Arc<CancelToken>,
}

impl core::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ctx")
            .field("peer", &self.peer.name())
            .field("method", &self.method)
            .field("cancelled", &self.cancel_reason())
            .finish()
    }
}

impl Ctx {
    pub(crate) fn new(
        peer: Peer,
        method: MethodId,
        deadline: Option<Instant>,
        token: Arc<CancelToken>,
    ) -> Self {
        Ctx { peer, method, deadline, token }
    }

    /// The connection the request came from: the handler may call the peer back over it.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The peer's name from its HELLO: a claim, unless the server has an authenticator (then
    /// the name belongs to [`identity`](Self::identity), SPEC.md §5.6).
    pub fn peer_name(&self) -> &str {
        self.peer.name()
    }

    /// The identity the server's authenticator gave the peer; `None` without an authenticator
    /// (the peer is unauthenticated) and on the client side.
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.peer.identity()
    }

    /// The peer process's credentials, on Unix sockets.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.peer.credentials()
    }

    /// The peer's IP address and port (TCP and UDP).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.peer.remote_addr()
    }

    /// The method being served.
    pub fn method(&self) -> MethodId {
        self.method
    }

    /// When the caller stops waiting, if it set a deadline. Calls this handler makes carry the
    /// remaining budget by default ([`Deadline::Inherit`](crate::Deadline::Inherit)).
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline.and_then(to_std)
    }

    /// Whether the exchange was cancelled: the result will not be delivered.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when the exchange is cancelled (see [`cancel_reason`](Self::cancel_reason)).
    /// An async runtime also drops the handler's future at its next await after the
    /// cancellation; a blocking runtime waits on this in its own `cancelled()`.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// Waits until the exchange is cancelled or `timeout` has passed, and returns whether it
    /// was cancelled: how a handler sleeps, or holds a request open, while staying responsive
    /// to cancellation (a blocking runtime also releases the handler's pool worker meanwhile).
    pub async fn wait_cancelled(&self, timeout: core::time::Duration) -> bool {
        if self.is_cancelled() {
            return true;
        }
        let Some(at) = std::time::Instant::now().checked_add(timeout) else {
            self.cancelled().await;
            return true;
        };
        let sleep = (self.peer.shared().sleep)(at);
        let cancelled = async {
            self.cancelled().await;
            true
        };
        futures_lite::future::or(cancelled, async {
            sleep.await;
            false
        })
        .await
            || self.is_cancelled()
    }

    /// Why the exchange was cancelled, once it is: CANCELLED (the caller cancelled),
    /// DEADLINE_EXCEEDED (its deadline passed) or UNAVAILABLE (the connection ended).
    pub fn cancel_reason(&self) -> Option<Status> {
        self.token.reason()
    }
}

/// What an inline unary handler (`Handlers::raw_unary_inline`) knows about the request. Unlike [`Ctx`] it offers no [`Peer`]: an inline handler runs in the
/// connection's driver while it holds the connection, so it cannot call over it.
pub struct InlineCtx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) method: MethodId,
    pub(crate) deadline: Option<Instant>,
}

impl core::fmt::Debug for InlineCtx<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InlineCtx").field("peer", &self.peer_name()).field("method", &self.method).finish()
    }
}

impl InlineCtx<'_> {
    /// The peer's name from its HELLO (a claim unless the server authenticates its peers).
    pub fn peer_name(&self) -> &str {
        self.shared.name()
    }

    /// The identity the server's authenticator gave the peer (see [`Ctx::identity`]).
    pub fn identity(&self) -> Option<&PeerIdentity> {
        self.shared.identity()
    }

    /// The peer process's credentials, on Unix sockets.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.shared.creds
    }

    /// The peer's IP address and port (TCP and UDP).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The method being served.
    pub fn method(&self) -> MethodId {
        self.method
    }

    /// When the caller stops waiting, if it set a deadline.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline.and_then(to_std)
    }
}
