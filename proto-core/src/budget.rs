//! A memory budget for session state shared by many connections (SPEC.md §13.6): the reply
//! caches, retained requests and unconfirmed stream items of every live and suspended session
//! of a server, together, stay within one bound.
//!
//! Each connection's own state is already bounded by its [`Config`](crate::Config)
//! (`reply_cache_bytes`, `max_retained_bytes`, credit windows), but those bounds multiply: a
//! thousand suspended sessions of 4 MiB of reply cache each are 4 GiB. The budget bounds the
//! sum. It is sans-IO bookkeeping: the runtime reports each connection's usage
//! ([`Connection::session_memory`](crate::Connection::session_memory)) after every turn of its
//! loop, asks [`MemoryBudget::next_shed`] what to give up while the sum is over the limit, and
//! applies the answer to the connection it names:
//!
//! 1. **the oldest suspended session is ended**
//!    ([`Connection::evict_suspended_session`](crate::Connection::evict_suspended_session)):
//!    its peer finds the session gone when it reconnects, exactly as if its grace period had
//!    expired;
//! 2. when no session is suspended, **the oldest cached answers** of the session holding the
//!    most sheddable memory are evicted
//!    ([`Connection::shed_session_memory`](crate::Connection::shed_session_memory)): a
//!    retransmission of one is answered REPLY_EVICTED.
//!
//! Retained requests and unconfirmed stream items belong to exchanges still open and are never
//! shed; they stay bounded per connection by the configuration.
//!
//! ```
//! use tandem_core::budget::{MemoryBudget, Shed};
//! use tandem_core::Instant;
//!
//! let mut b = MemoryBudget::new(1000);
//! b.report(1, 600, 600, None);                          // a live session
//! b.report(2, 300, 300, Some(Instant::from_millis(5))); // suspended at 5 ms
//! b.report(3, 300, 300, Some(Instant::from_millis(9))); // suspended later
//! assert_eq!(b.used(), 1200);
//! assert_eq!(b.next_shed(), Some(Shed::EndSession(2)), "the oldest suspended session first");
//! b.forget(2);
//! assert_eq!(b.next_shed(), None, "900 <= 1000");
//! b.report(1, 900, 800, None);
//! assert_eq!(b.next_shed(), Some(Shed::EndSession(3)));
//! b.forget(3);
//! b.report(4, 400, 100, None);
//! // 1300 bytes, nothing suspended: trim the session with the most sheddable memory.
//! assert_eq!(b.next_shed(), Some(Shed::Trim { key: 1, bytes: 300 }));
//! ```

use alloc::collections::{BTreeMap, BTreeSet};

use crate::time::Instant;

/// Default server-wide budget for session state: 64 MiB (a default `reply_cache_bytes` of
/// 4 MiB per session would otherwise allow 4 GiB for 1,024 suspended sessions).
pub const DEFAULT_SESSION_MEMORY_BUDGET: usize = 64 << 20;

/// What to give up next to get back within the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shed {
    /// End this suspended session now
    /// ([`Connection::evict_suspended_session`](crate::Connection::evict_suspended_session)).
    EndSession(u64),
    /// Free this many bytes of this session's sheddable memory
    /// ([`Connection::shed_session_memory`](crate::Connection::shed_session_memory)).
    Trim {
        /// The session.
        key: u64,
        /// Bytes to free.
        bytes: usize,
    },
}

#[derive(Clone, Copy, Debug)]
struct Usage {
    bytes: usize,
    sheddable: usize,
    suspended_since: Option<Instant>,
}

/// Bookkeeping of session memory across connections, keyed by a runtime-chosen `u64` per
/// connection. See the [module docs](self).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: usize,
    sessions: BTreeMap<u64, Usage>,
    /// Suspended sessions by (suspended since, key): the oldest first.
    suspended: BTreeSet<(Instant, u64)>,
    /// Sessions ended or trimmed for the budget so far.
    evicted_sessions: u64,
    trims: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (see [`DEFAULT_SESSION_MEMORY_BUDGET`]).
    pub fn new(limit: usize) -> Self {
        MemoryBudget {
            limit,
            used: 0,
            sessions: BTreeMap::new(),
            suspended: BTreeSet::new(),
            evicted_sessions: 0,
            trims: 0,
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reported in use, all sessions together.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Sessions tracked.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// `(suspended sessions ended, trims)` requested by [`next_shed`](Self::next_shed) and
    /// confirmed with [`shed_done`](Self::shed_done).
    pub fn sheds(&self) -> (u64, u64) {
        (self.evicted_sessions, self.trims)
    }

    /// Records session `key`'s current usage: `bytes` held in all
    /// ([`Connection::session_memory`](crate::Connection::session_memory)), of which
    /// `sheddable` could be given up (the reply cache and spare buffers), and since when it is
    /// suspended (`None` while it has a transport). A usage of 0 that is not suspended forgets
    /// the key.
    pub fn report(&mut self, key: u64, bytes: usize, sheddable: usize, suspended_since: Option<Instant>) {
        self.forget(key);
        if bytes == 0 && suspended_since.is_none() {
            return;
        }
        self.used += bytes;
        if let Some(t) = suspended_since {
            self.suspended.insert((t, key));
        }
        self.sessions.insert(key, Usage { bytes, sheddable: sheddable.min(bytes), suspended_since });
    }

    /// Forgets session `key` (its connection is gone).
    pub fn forget(&mut self, key: u64) {
        if let Some(u) = self.sessions.remove(&key) {
            self.used -= u.bytes;
            if let Some(t) = u.suspended_since {
                self.suspended.remove(&(t, key));
            }
        }
    }

    /// Whether the reported usage is over the limit.
    pub fn is_over(&self) -> bool {
        self.used > self.limit
    }

    /// What to give up next, or `None` when within the limit (or when nothing left can be
    /// shed). The answer does not change until the named session reports again or is
    /// forgotten, so a runtime may ask from any connection and deliver the request to the one
    /// named.
    pub fn next_shed(&self) -> Option<Shed> {
        if !self.is_over() {
            return None;
        }
        if let Some(&(_, key)) = self.suspended.iter().next() {
            return Some(Shed::EndSession(key));
        }
        let over = self.used - self.limit;
        // The session with the most sheddable memory (the lowest key among equals).
        let (&key, u) = self
            .sessions
            .iter()
            .filter(|(_, u)| u.sheddable > 0)
            .max_by(|a, b| a.1.sheddable.cmp(&b.1.sheddable).then(b.0.cmp(a.0)))?;
        Some(Shed::Trim { key, bytes: over.min(u.sheddable) })
    }

    /// Counts a shed the runtime applied (for [`sheds`](Self::sheds)).
    pub fn shed_done(&mut self, shed: Shed) {
        match shed {
            Shed::EndSession(_) => self.evicted_sessions += 1,
            Shed::Trim { .. } => self.trims += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_limit_nothing_is_shed() {
        let mut b = MemoryBudget::new(100);
        b.report(1, 50, 50, None);
        b.report(2, 50, 0, Some(Instant::ZERO));
        assert_eq!(b.used(), 100);
        assert_eq!(b.next_shed(), None);
    }

    #[test]
    fn reports_replace_and_forget_removes() {
        let mut b = MemoryBudget::new(100);
        b.report(1, 80, 80, None);
        b.report(1, 30, 30, None);
        assert_eq!((b.used(), b.sessions()), (30, 1));
        b.report(1, 0, 0, None);
        assert_eq!((b.used(), b.sessions()), (0, 0), "an empty live session is not tracked");
        b.report(2, 0, 0, Some(Instant::ZERO));
        assert_eq!(b.sessions(), 1, "an empty suspended session still is");
        b.forget(2);
        b.forget(7);
        assert_eq!((b.used(), b.sessions()), (0, 0));
    }

    #[test]
    fn suspended_sessions_go_oldest_first_even_when_small() {
        let mut b = MemoryBudget::new(100);
        b.report(1, 1000, 1000, None);
        b.report(2, 10, 10, Some(Instant::from_millis(30)));
        b.report(3, 10, 10, Some(Instant::from_millis(20)));
        b.report(4, 10, 10, Some(Instant::from_millis(20)));
        assert_eq!(b.next_shed(), Some(Shed::EndSession(3)), "oldest; ties by key");
        b.forget(3);
        assert_eq!(b.next_shed(), Some(Shed::EndSession(4)));
        b.forget(4);
        assert_eq!(b.next_shed(), Some(Shed::EndSession(2)));
        b.forget(2);
        assert_eq!(b.next_shed(), Some(Shed::Trim { key: 1, bytes: 900 }));
    }

    #[test]
    fn a_resumed_session_is_no_longer_a_candidate() {
        let mut b = MemoryBudget::new(10);
        b.report(1, 50, 50, Some(Instant::ZERO));
        b.report(1, 50, 50, None);
        assert_eq!(b.next_shed(), Some(Shed::Trim { key: 1, bytes: 40 }));
    }

    #[test]
    fn nothing_sheddable_means_no_endless_loop() {
        let mut b = MemoryBudget::new(10);
        b.report(1, 50, 0, None);
        assert!(b.is_over());
        assert_eq!(b.next_shed(), None, "retained requests alone cannot be shed");
    }

    #[test]
    fn a_runtime_loop_converges() {
        // Simulate sessions whose sheddable memory really goes away when trimmed.
        let mut sizes = [(400usize, 300usize, None), (700, 650, None), (200, 200, Some(Instant::ZERO))];
        let mut b = MemoryBudget::new(600);
        for (k, (bytes, shed, since)) in sizes.iter().enumerate() {
            b.report(k as u64, *bytes, *shed, *since);
        }
        let mut steps = 0;
        while let Some(s) = b.next_shed() {
            steps += 1;
            assert!(steps < 10, "does not converge");
            b.shed_done(s);
            match s {
                Shed::EndSession(k) => b.forget(k),
                Shed::Trim { key, bytes } => {
                    let e = &mut sizes[key as usize];
                    let freed = bytes.min(e.1);
                    e.0 -= freed;
                    e.1 -= freed;
                    b.report(key, e.0, e.1, e.2);
                }
            }
        }
        assert!(b.used() <= 600, "{}", b.used());
        assert_eq!(b.sheds(), (1, 1));
    }
}
