//! Relaying an I/O thread's batch of wake-ups to the first waiter that runs. (Layer 0.)
//!
//! An I/O thread wakes the waiters its batch of turns resolved once the batch is over
//! (`threads::io::wake_later`). With many connections each answering one call, that is many
//! waiters, often all tasks of one executor whose thread is parked. Waking the first unparks
//! that thread, and on one CPU the kernel switches to it at once (wake-up preemption), while
//! the I/O thread still holds the rest of the list: the executor runs the one task, finds
//! nothing else, parks again, and the I/O thread wakes the next — two context switches per
//! waiter. So the I/O thread puts its list here (`hand_over`) and wakes from it one waiter at
//! a time (`next`); a waiter that runs meanwhile on another thread takes what is left
//! (`take_over`) and wakes it from its own thread: on a single-threaded executor, its own
//! tasks, with no system call. Every waiter is woken exactly once, by one thread or the other.
//! This is the connection relay (`conn::Inner::take_relay`) across connections.

use core::task::Waker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The waiters handed over and not woken yet (all I/O threads share it: any thread may wake
/// any waiter).
static HANDED: Mutex<VecDeque<Waker>> = Mutex::new(VecDeque::new());
/// Whether [`HANDED`] may hold waiters (read without the lock by [`take_over`]).
static PENDING: AtomicBool = AtomicBool::new(false);

std::thread_local! {
    /// The buffer [`take_over`] swaps in for the one it takes (kept: no allocation per batch).
    static SPARE: core::cell::Cell<VecDeque<Waker>> = const { core::cell::Cell::new(VecDeque::new()) };
    /// This thread waits by parking ([`parks_to_wait`]): it takes nothing over.
    static PARKS: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Says that the calling thread waits by parking itself (a blocking runtime's `block_on`),
/// so that it never takes over an I/O thread's wake-ups: the waiters of such a runtime are
/// threads too, each needing a wake-up of its own wherever it comes from, and a caller thread
/// that woke hundreds of others before going on with its own call would only delay it
/// (measured: 1,000 connections of tandem-std, one CPU, −20 % calls/s).
pub fn parks_to_wait() {
    PARKS.with(|p| p.set(true));
}

/// Runs `f` with the calling thread taking wake-ups over even if it [`parks_to_wait`]: for a
/// blocking runtime's thread that waits on many calls at once (tandem-std's `Completions`),
/// whose waiters are its own calls, as an executor's are its own tasks.
pub fn taking_over<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            PARKS.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(PARKS.with(|p| p.replace(false)));
    f()
}

fn handed() -> MutexGuard<'static, VecDeque<Waker>> {
    // A waker that panicked cannot leave the queue half-updated: use it as it is.
    HANDED.lock().unwrap_or_else(|e| e.into_inner())
}

/// Offers `wakers` (emptied) to be woken by whichever thread gets to them first; the caller
/// then wakes them with [`next`] until it returns `None`.
pub(crate) fn hand_over(wakers: &mut Vec<Waker>) {
    let mut h = handed();
    h.extend(wakers.drain(..));
    PENDING.store(!h.is_empty(), Ordering::Release);
}

/// The next waiter handed over, to wake with no lock held; `None` once all were taken.
pub(crate) fn next() -> Option<Waker> {
    let mut h = handed();
    let w = h.pop_front();
    if h.is_empty() {
        PENDING.store(false, Ordering::Release);
    }
    w
}

/// Wakes every waiter handed over and not yet woken. Called by a waiter that polls a call
/// (never while holding a lock: a waker may run anything). Costs one atomic load when there
/// is nothing to take.
pub(crate) fn take_over() {
    if !PENDING.load(Ordering::Acquire) || PARKS.with(core::cell::Cell::get) {
        return;
    }
    let mut mine = SPARE.with(core::cell::Cell::take);
    {
        let mut h = handed();
        core::mem::swap(&mut *h, &mut mine);
        PENDING.store(false, Ordering::Release);
    }
    for w in mine.drain(..) {
        w.wake();
    }
    SPARE.with(|s| s.set(mine));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::task::Wake;

    /// The tests share the process's one relay: one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A thread that parks to wait takes nothing over, except inside `taking_over`, after
    /// which (even if it panicked there) it parks to wait again.
    #[test]
    fn a_parking_thread_takes_over_only_inside_taking_over() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        std::thread::spawn(|| {
            parks_to_wait();
            let count = Arc::new(Count(AtomicUsize::new(0)));
            let mut list = vec![Waker::from(count.clone())];
            hand_over(&mut list);
            take_over();
            let woken = || count.0.load(Ordering::SeqCst);
            assert_eq!(woken(), 0, "a thread that parks to wait took over");
            let caught = std::panic::catch_unwind(|| taking_over(|| panic!("inside taking_over")));
            assert!(caught.is_err());
            assert!(PARKS.with(core::cell::Cell::get), "restored after a panic");
            taking_over(take_over);
            assert_eq!(woken(), 1);
            assert!(PARKS.with(core::cell::Cell::get), "restored");
        })
        .join()
        .expect("the test thread");
    }

    /// Each waiter is woken exactly once, whether the handing thread or a taking one gets to
    /// it (threads race on the same queue).
    #[test]
    fn every_waiter_is_woken_once() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let counts: Vec<Arc<Count>> = (0..2_000).map(|_| Arc::new(Count(AtomicUsize::new(0)))).collect();
        let mut list: Vec<Waker> = counts.iter().map(|c| Waker::from(c.clone())).collect();
        std::thread::scope(|s| {
            let takers: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        for _ in 0..1_000 {
                            take_over();
                            std::thread::yield_now();
                        }
                    })
                })
                .collect();
            for chunk in list.chunks_mut(100) {
                let mut v = chunk.to_vec();
                hand_over(&mut v);
                assert!(v.is_empty(), "hand_over empties the list");
                while let Some(w) = next() {
                    w.wake();
                }
            }
            for t in takers {
                t.join().expect("taker");
            }
        });
        list.clear();
        for (i, c) in counts.iter().enumerate() {
            assert_eq!(c.0.load(Ordering::SeqCst), 1, "waiter {i}");
        }
    }
}
