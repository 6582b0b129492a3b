//! A request's cancellation flag: set by the connection (CANCEL, a passed deadline, a reset
//! stream, a lost connection), read by the handler, and waited on by
//! [`Ctx::wait_cancelled`](crate::Ctx::wait_cancelled).

use crate::pool;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request's cancellation flag.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    flag: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Cancel {
    /// Cancels: sets the flag and wakes every waiter.
    pub(crate) fn set(&self) {
        self.flag.store(true, Ordering::Release);
        // Taken after the store: a waiter that saw the flag clear under the lock is waiting by
        // the time this notification goes out.
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.cond.notify_all();
    }

    /// Whether the request was cancelled.
    pub(crate) fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Waits until cancelled or `timeout` passed; returns whether cancelled. The handler is
    /// parked meanwhile (its worker runs other handlers).
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        if self.is_set() {
            return true;
        }
        let end = Instant::now().checked_add(timeout);
        let _parked = pool::parked();
        let mut g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.is_set() {
                return true;
            }
            let left = match end {
                Some(end) => end.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return false;
            }
            g = self.cond.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}
