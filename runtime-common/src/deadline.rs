//! [`Deadline`]: when an exchange gives up, and the inherited deadline of a handler's calls.
//! (Layer 1: imports `clock`.)
//!
//! While a handler runs, the deadline of the request it serves is the "current deadline" of
//! its thread, so a call made from the handler with [`Deadline::Inherit`] carries the remaining
//! budget of the request being handled. An async runtime sets it around each poll of the
//! handler's future ([`Scoped`], as `tokio::task_local!` does; tasks the handler spawns itself
//! run outside the scope); a blocking runtime sets it for the handler's whole run on its pool
//! thread ([`enter`]).

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

    /// The deadline on the core's clock, resolved now (on this thread, for `Inherit`).
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

/// The scope of a handler's deadline on this thread ([`enter`]): restores the previous
/// current deadline when dropped, also when the handler panics.
#[must_use = "the deadline is current only until the guard is dropped"]
pub struct Scope(Option<Option<Instant>>);

impl Drop for Scope {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl core::fmt::Debug for Scope {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

/// Makes `deadline` (the deadline of the request a handler serves; `None`: it has none) the
/// current deadline of this thread until the returned guard is dropped: exchanges opened with
/// [`Deadline::Inherit`] meanwhile carry it. A blocking runtime enters it around each handler
/// run; an async runtime wraps the handler's future in [`Scoped`].
pub fn enter(deadline: Option<Instant>) -> Scope {
    Scope(CURRENT.with(|c| c.replace(Some(deadline))))
}

/// A handler's future with the deadline of its request set as the current one while it is
/// polled.
#[derive(Debug)]
pub struct Scoped<F> {
    deadline: Option<Instant>,
    fut: F,
}

impl<F> Scoped<F> {
    /// `fut`, polled with `deadline` current.
    pub fn new(deadline: Option<Instant>, fut: F) -> Self {
        Scoped { deadline, fut }
    }
}

impl<F: Future + Unpin> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _scope = enter(self.deadline);
        Pin::new(&mut self.fut).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready<F: Future + Unpin>(mut f: F) -> F::Output {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
        match Pin::new(&mut f).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("not ready"),
        }
    }

    #[test]
    fn inherit_is_none_outside_a_handler_and_the_scope_inside() {
        assert_eq!(Deadline::Inherit.resolve(), None);
        let d = clock::now() + Duration::from_secs(5);
        {
            let _s = enter(Some(d));
            assert_eq!(Deadline::Inherit.resolve(), Some(d));
            // An explicit choice overrides it.
            assert_eq!(Deadline::None.resolve(), None);
            {
                // A nested handler scope (a handler run inline by another) wins, then restores.
                let _inner = enter(None);
                assert_eq!(Deadline::Inherit.resolve(), None);
            }
            assert_eq!(Deadline::Inherit.resolve(), Some(d));
        }
        assert_eq!(Deadline::Inherit.resolve(), None);
    }

    #[test]
    fn a_scoped_future_sees_its_deadline_only_while_polled() {
        let d = clock::now() + Duration::from_secs(1);
        let seen = ready(Scoped::new(Some(d), Box::pin(async { Deadline::Inherit.resolve() })));
        assert_eq!(seen, Some(d));
        assert_eq!(Deadline::Inherit.resolve(), None);
    }

    #[test]
    fn the_scope_is_restored_when_the_handler_panics() {
        let r = std::panic::catch_unwind(|| {
            let _s = enter(Some(clock::now()));
            panic!("handler panicked");
        });
        assert!(r.is_err());
        assert_eq!(Deadline::Inherit.resolve(), None);
    }

    #[test]
    fn after_and_at_resolve_on_the_core_clock() {
        let t = std::time::Instant::now() + Duration::from_millis(300);
        assert_eq!(Deadline::at(t).resolve(), Some(clock::from_std(t)));
        let before = clock::now();
        let r = Deadline::from(Duration::from_millis(300)).resolve().unwrap();
        assert!(r >= before + Duration::from_millis(300) && r <= clock::now() + Duration::from_millis(300));
    }
}
