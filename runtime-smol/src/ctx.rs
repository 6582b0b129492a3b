//! What a handler knows about the exchange it serves.

use std::sync::Arc;

use tandem_core::{Instant, MethodId};

use crate::peer::Peer;
use crate::shared::{to_std, CancelToken};
use crate::transport::Credentials;

/// The context of one inbound exchange, handed to its handler.
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
            .field("cancelled", &self.is_cancelled())
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

    /// The peer's name from its HELLO.
    pub fn peer_name(&self) -> &str {
        self.peer.name()
    }

    /// The peer process's credentials, on Unix sockets.
    pub fn credentials(&self) -> Option<Credentials> {
        self.peer.credentials()
    }

    /// The method being served.
    pub fn method(&self) -> MethodId {
        self.method
    }

    /// When the caller stops waiting, if it set a deadline.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.deadline.and_then(to_std)
    }

    /// Whether the caller cancelled, the deadline passed or the connection was lost: the
    /// result will not be delivered.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when the exchange is cancelled (see [`is_cancelled`](Self::is_cancelled)).
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }
}
