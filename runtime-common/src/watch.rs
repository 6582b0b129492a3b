//! [`StateWatch`]: the link state of a connection as it changes, made by
//! [`Peer::watch_state`](crate::Peer::watch_state). (Layer 2: imports `conn`, `state`.)

use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::Arc;

use futures_core::Stream;
use futures_lite::future::poll_fn;

use crate::conn::{wait_on, Shared};
use crate::state::LinkState;

/// The link state of a connection as it changes ([`Peer::watch_state`](crate::Peer::watch_state)); also a
/// `futures_core::Stream` of the changes, ending after `Closed`.
///
/// A watch, not a log: a reader that falls behind sees the latest state (the `failures` count
/// of [`LinkState::Suspended`] still counts every failed attempt). It does not keep the
/// connection open.
pub struct StateWatch {
    shared: Arc<Shared>,
    seen: u64,
    done: bool,
}

impl core::fmt::Debug for StateWatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StateWatch").field("conn", &self.shared.id).field("state", &self.current()).finish()
    }
}

impl StateWatch {
    /// A watch of `shared`'s link state that has seen version `seen`.
    pub(crate) fn new(shared: Arc<Shared>, seen: u64) -> Self {
        StateWatch { shared, seen, done: false }
    }

    /// The state now.
    pub fn current(&self) -> LinkState {
        self.shared.lock().link
    }

    /// Waits for the next change (since the watch was made or the last change it returned) and
    /// returns the new state; `None` once `Closed` was returned.
    pub async fn changed(&mut self) -> Option<LinkState> {
        poll_fn(|cx| self.poll_change(cx)).await
    }

    fn poll_change(&mut self, cx: &mut Context<'_>) -> Poll<Option<LinkState>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut inner = self.shared.lock();
        if inner.link_version == self.seen {
            if matches!(inner.link, LinkState::Closed(_)) {
                self.done = true;
                return Poll::Ready(None);
            }
            wait_on(&mut inner.state_waiters, cx);
            return Poll::Pending;
        }
        self.seen = inner.link_version;
        self.done = matches!(inner.link, LinkState::Closed(_));
        Poll::Ready(Some(inner.link))
    }
}

impl Stream for StateWatch {
    type Item = LinkState;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkState>> {
        self.get_mut().poll_change(cx)
    }
}
