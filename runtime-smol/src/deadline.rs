//! [`Deadline`]: when an exchange gives up, and the inherited deadline of a handler's calls.
//! (Layer 1: imports `clock`.)
//!
//! While a handler's future is polled, the deadline of the request it serves is the "current
//! deadline" of the thread (a scope set around each poll, as `tokio::task_local!` does), so a
//! call made from the handler with [`Deadline::Inherit`] carries the remaining budget of the
//! request being handled. Tasks the handler spawns itself run outside the scope.

use core::cell::Cell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use tandem_core::Instant;

use crate::clock;

/// When an exchange (call, notification or stream) stops waiting: its deadline travels with
/// the request, and the remote handler is cancelled with DEADLINE_EXCEEDED when it passes.
///
/// A `Duration` converts into [`Deadline::after`], so `peer.call(&M, &req, Duration::from_secs(1))`
/// reads naturally.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Deadline {
    /// The default: inside a handler, the deadline of the request being handled (none if it
    /// has none); anywhere else, none.
    #[default]
    Inherit,
    /// No deadline, even inside a handler whose request has one.
    None,
    /// This long from when the exchange starts.
    After(Duration),
    /// At this instant.
    At(std::time::Instant),
}

impl Deadline {
    /// `d` from when the exchange starts.
    pub const fn after(d: Duration) -> Self {
        Deadline::After(d)
    }

    /// At `t`.
    pub const fn at(t: std::time::Instant) -> Self {
        Deadline::At(t)
    }

    /// The deadline on the core's clock, resolved now.
    pub(crate) fn resolve(self) -> Option<Instant> {
        match self {
            Deadline::Inherit => CURRENT.with(Cell::get).flatten(),
            Deadline::None => None,
            Deadline::After(d) => Some(clock::now() + d),
            Deadline::At(t) => Some(clock::from_std(t)),
        }
    }
}

impl From<Duration> for Deadline {
    fn from(d: Duration) -> Self {
        Deadline::After(d)
    }
}

thread_local! {
    /// The deadline of the request whose handler is being polled on this thread (outer `None`:
    /// no handler is being polled).
    static CURRENT: Cell<Option<Option<Instant>>> = const { Cell::new(None) };
}

/// Restores the previous current deadline, also when the poll panics.
struct Restore(Option<Option<Instant>>);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// A handler's future with the deadline of its request set as the current one while it is
/// polled.
pub(crate) struct Scoped<F> {
    deadline: Option<Instant>,
    fut: F,
}

impl<F> Scoped<F> {
    pub(crate) fn new(deadline: Option<Instant>, fut: F) -> Self {
        Scoped { deadline, fut }
    }
}

impl<F: Future + Unpin> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self.deadline))));
        Pin::new(&mut self.fut).poll(cx)
    }
}
