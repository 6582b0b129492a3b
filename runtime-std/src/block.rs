//! Waiting from a thread on the futures of `tandem-runtime`: [`block_on`] polls one on the
//! calling thread, parking until its waker unparks the thread, and
//! [`sleep_until`] is the timer it understands (no timer thread). A handler that parks here is
//! parked in the handler pool too: its worker serves other requests meanwhile. (Layer 1:
//! imports `pool`.)

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Wake;
use std::thread::{self, Thread};
use std::time::Instant;

use tandem_runtime::clock::Sleep;
use tandem_runtime::threads::io;

use crate::pool;

/// Unparks the thread that waits in [`block_on`].
struct Notify {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

thread_local! {
    /// This thread's waker (made once: waiting allocates nothing).
    static WAKER: (Arc<Notify>, Waker) = {
        // Its waiters are threads: each is woken by its own wake-up (see `parks_to_wait`).
        tandem_runtime::relay::parks_to_wait();
        let n = Arc::new(Notify { thread: thread::current(), woken: AtomicBool::new(false) });
        (n.clone(), Waker::from(n))
    };
    /// The earliest instant a [`sleep_until`] timer polled by this thread's `block_on` waits
    /// for.
    static TIMER: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `fut` to completion on this thread.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    WAKER.with(|(notify, waker)| {
        let mut cx = Context::from_waker(waker);
        let mut parked = None;
        loop {
            let outer = TIMER.replace(None);
            let polled = fut.as_mut().poll(&mut cx);
            let timer = TIMER.replace(outer);
            if let Poll::Ready(v) = polled {
                return v;
            }
            wait(notify, timer, &mut parked);
        }
    })
}

/// Waits until woken or `timer` passes, parked (as a parked handler, if this is a pool
/// thread). First it runs the turns of the connections it just woke (its request to write)
/// if their I/O threads have not yet: one thread hand-off fewer per call.
///
/// It does not spin: measured on a 2-core machine, spinning (even 10 µs, yielding) delayed the
/// I/O threads that must run for the answer to arrive, and cost more than the wake-up it saves
/// (pipelined calls/s fell several-fold).
fn wait(notify: &Notify, timer: Option<Instant>, parked: &mut Option<pool::Parked>) {
    io::help();
    loop {
        if notify.woken.swap(false, Ordering::AcqRel) {
            return;
        }
        let now = Instant::now();
        if timer.is_some_and(|t| now >= t) {
            return;
        }
        parked.get_or_insert_with(pool::parked);
        match timer {
            Some(t) => thread::park_timeout(t - now),
            None => thread::park(),
        }
    }
}

/// The timer of the shared futures (`tandem_runtime::clock::SleepUntil`): ready once `at` has
/// passed; until then it asks the `block_on` polling it to wake up by `at`.
pub(crate) fn sleep_until(at: Instant) -> Sleep {
    Box::pin(Timer(at))
}

struct Timer(Instant);

impl Future for Timer {
    type Output = ();
    fn poll(self: core::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.0 {
            return Poll::Ready(());
        }
        TIMER.with(|t| t.set(Some(t.get().map_or(self.0, |x| x.min(self.0)))));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_timer_wakes_block_on_without_a_timer_thread() {
        let start = Instant::now();
        block_on(sleep_until(start + Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30));
        // The earliest of two timers wakes the wait; the other is polled again.
        let t = Instant::now();
        let r = block_on(futures_lite::future::or(
            async {
                sleep_until(t + Duration::from_secs(30)).await;
                1
            },
            async {
                sleep_until(t + Duration::from_millis(20)).await;
                2
            },
        ));
        assert_eq!(r, 2);
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn another_thread_wakes_block_on() {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let waiter = thread::spawn(move || {
            block_on(core::future::poll_fn(|cx| {
                if f.load(Ordering::SeqCst) {
                    return Poll::Ready(());
                }
                let w = cx.waker().clone();
                let f = f.clone();
                thread::spawn(move || {
                    thread::sleep(Duration::from_millis(20));
                    f.store(true, Ordering::SeqCst);
                    w.wake();
                });
                Poll::Pending
            }))
        });
        waiter.join().unwrap();
        assert!(flag.load(Ordering::SeqCst));
    }
}
