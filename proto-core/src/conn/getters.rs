//! Getters: what the connection is, what it holds, how much memory it uses, and the test-only
//! views (`check_invariants`, `debug_slot`).

use super::{Connection, Kind, Peer, Pending, Role, SessionMemory, Slot, State};
use crate::config::{Config, Features};
use crate::error::ConnectionError;
use crate::event::SchemaKey;
use crate::stats::Stats;
use crate::time::Instant;

impl Connection<'_> {
    // ------------------------------------------------------------------ getters

    /// Which side of the transport this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What the peer announced, once its HELLO has arrived.
    pub fn peer(&self) -> Option<Peer<'_>> {
        (self.version != 0).then(|| Peer {
            version: self.version,
            name: self.peer_name.get(),
            auth: self.peer_auth.get(),
            session: self.peer_session.get(),
            resume: self.peer_resume,
            limits: self.peer,
        })
    }

    /// The optional features both peers announced (SPEC.md §5.8): what this connection may
    /// use toward the peer. Empty until the peer's HELLO has arrived.
    pub fn features(&self) -> Features {
        if self.version == 0 {
            return Features::NONE;
        }
        self.config.features.intersect(self.peer.features).intersect(Features::ALL)
    }

    /// The schema key that came with the request or signal the last
    /// [`poll_event`](Self::poll_event) returned ([`Event::Request`](crate::Event::Request),
    /// [`Event::Signal`](crate::Event::Signal)): `None` when it carried none (or the last event
    /// was of another kind). Read it once the event's payload is no longer borrowed; a
    /// dispatcher compares it with the key of the handler it would run before decoding the
    /// payload (SPEC.md §7.10).
    pub fn request_key(&self) -> Option<SchemaKey> {
        self.event_key
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.calls_open_outbound = self.out_calls;
        s.calls_open_inbound = self.in_calls;
        s.streams_open_outbound = self.out_streams;
        s.streams_open_inbound = self.in_streams;
        #[cfg(feature = "datagram")]
        if let Some(sess) = &self.sess {
            s.replies_evicted = sess.cache.evicted;
            s.replies_cached = u32::try_from(sess.cache.len()).unwrap_or(u32::MAX);
        }
        s
    }

    /// The text of the peer's CLOSE frame (truncated to 256 bytes), if it sent one.
    pub fn close_message(&self) -> &[u8] {
        self.close_msg.get()
    }

    /// Whether the connection is closed and everything it had to say has been transmitted and
    /// reported: the driver may now close the transport and drop the connection.
    pub fn is_finished(&self) -> bool {
        self.state == State::Closed
            && self.tx_total() == 0
            && self.closed_delivered
            && !self.dgram_lingering()
    }

    /// Whether this connection's session can be resumed after a transport loss (SPEC.md §13):
    /// the acceptor offered a session token and both sides keep the state it needs (the
    /// `resume` feature; without `alloc`, session buffers given to
    /// [`with_session_storage`](Self::with_session_storage)).
    pub fn is_resumable(&self) -> bool {
        #[cfg(feature = "resume")]
        return self.sess.is_some() && self.dgram.is_none(); // datagram mode: no sessions (§14.1)
        #[cfg(not(feature = "resume"))]
        return false;
    }

    /// Whether this side can keep a resumable session's state: always with `alloc`; without it,
    /// when the caller gave session buffers (`with_session_storage`, feature `resume`).
    pub(super) fn can_keep_session(&self) -> bool {
        #[cfg(feature = "alloc")]
        return true;
        #[cfg(all(feature = "resume", not(feature = "alloc")))]
        return self.sess.is_some() || self.sess_spare.is_some();
        #[cfg(not(feature = "resume"))]
        return false;
    }

    /// Test support: jump the id allocator (to test exhaustion without 2^61 calls).
    #[cfg(test)]
    pub(crate) fn test_set_next_id(&mut self, id: u64) {
        self.next_id = id;
    }

    /// The internal state of exchange `id`, for tests and debugging (its `Debug` output is not
    /// a stable format).
    #[doc(hidden)]
    pub fn debug_slot(&self, id: u64) -> Option<&Slot> {
        self.slots.find(id, |s| s.id == id).and_then(|i| self.slots.get(i))
    }

    /// Checks the connection's internal bookkeeping (counters against the exchange table), for
    /// test harnesses and fuzzers: `Err` names the broken invariant. A broken invariant is a
    /// bug in the core, never the peer's doing; the connection itself never panics on one.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let pending = (0..self.slots.capacity_hint())
            .filter_map(|i| self.slots.get(i))
            .filter(|s| s.pending != Pending::None)
            .count();
        if pending != self.pending_slots {
            return Err("pending_slots counter differs from the slots with a pending event");
        }
        let count = |k: Kind, out: bool| {
            (0..self.slots.capacity_hint())
                .filter_map(|i| self.slots.get(i))
                .filter(|s| (s.kind == Kind::Stream) == (k == Kind::Stream) && s.outbound == out)
                .count()
        };
        if self.out_streams as usize != count(Kind::Stream, true)
            || self.in_streams as usize != count(Kind::Stream, false)
        {
            return Err("stream counters differ from the exchange table");
        }
        if self.in_calls as usize > count(Kind::Call, false)
            || self.out_calls as usize > count(Kind::Call, true)
        {
            return Err("call counters above the exchange table");
        }
        #[cfg(feature = "alloc")]
        self.spliced.check(self.tx.len())?;
        Ok(())
    }

    /// Whether the session is suspended and waits for a transport: a dialer calls
    /// [`reconnect`](Self::reconnect) on a new one (after a backoff), an acceptor waits for the
    /// dialer to come back.
    pub fn needs_transport(&self) -> bool {
        self.state == State::Suspended && !self.resuming
    }

    /// Whether a HELLO from the peer is still expected on the current transport.
    pub(super) fn awaiting_hello(&self) -> bool {
        self.state == State::Handshake || self.resuming
    }

    /// The session's token: the one the acceptor gave (empty when it offers no resumption, and
    /// before the handshake on the dialer's side).
    pub fn session_token(&self) -> &[u8] {
        match self.role {
            Role::Acceptor if self.can_keep_session() => self.me.2.get(),
            Role::Acceptor => &[],
            Role::Dialer => self.peer_session.get(),
        }
    }

    /// Answers kept in the reply cache for the peer's retransmissions: `(entries, payload bytes)`.
    pub fn reply_cache_len(&self) -> (usize, usize) {
        #[cfg(feature = "datagram")]
        if let Some(s) = &self.sess {
            return (s.cache.len(), s.cache.bytes());
        }
        (0, 0)
    }

    /// Requests kept for retransmission until answered: `(requests, payload bytes)`.
    pub fn retained_requests(&self) -> (usize, usize) {
        #[cfg(feature = "datagram")]
        if let Some(s) = &self.sess {
            return (s.outbox.len(), s.outbox.bytes());
        }
        (0, 0)
    }

    /// Bytes of memory held for exactly-once delivery (SPEC.md §13, §14): the reply cache, the
    /// retained requests, unconfirmed stream items and their spare buffers; 0 when the session is
    /// not resumable and not in datagram mode. What a server-wide session budget
    /// ([`MemoryBudget`](crate::budget::MemoryBudget)) counts.
    pub fn session_memory(&self) -> SessionMemory {
        #[cfg(feature = "alloc")]
        if let Some(s) = &self.sess {
            return SessionMemory {
                held: s.footprint() + core::mem::size_of::<super::session::SessionState>(),
                sheddable: s.sheddable(),
            };
        }
        SessionMemory::default()
    }

    /// Frees at least `want` bytes of session memory if it can without breaking a promise:
    /// spare buffers first, then the oldest answers of the reply cache, exactly as if its byte
    /// bound had been reached (a retransmission of an evicted request is answered
    /// REPLY_EVICTED, SPEC.md §13.6). Retained requests and unconfirmed stream items belong to
    /// open exchanges and are kept. Returns the bytes freed (possibly fewer than `want`).
    pub fn shed_session_memory(&mut self, want: usize) -> usize {
        #[cfg(feature = "alloc")]
        if let Some(s) = &mut self.sess {
            return s.shed(want);
        }
        let _ = want;
        0
    }

    /// Ends a suspended session before its grace period (the local memory budget needs its
    /// memory, SPEC.md §13.6): every exchange resolves UNAVAILABLE, [`Event::Closed`](crate::Event::Closed) reports
    /// [`ConnectionError::SessionEvicted`], nothing is sent (there is no transport). Returns
    /// false, and does nothing, unless the session is suspended.
    pub fn evict_suspended_session(&mut self) -> bool {
        if self.state != State::Suspended {
            return false;
        }
        self.session_ending = true;
        self.tx_clear();
        self.enter_closed(ConnectionError::SessionEvicted);
        true
    }

    /// When the session was suspended (its grace period started), if it is suspended now.
    pub fn suspended_since(&self) -> Option<Instant> {
        (self.state == State::Suspended).then_some(self.suspended_at)
    }

    /// Number of exchanges (calls, notifications, streams, both directions) still tracked.
    pub fn open_exchanges(&self) -> usize {
        self.slots.len()
    }

    /// Bytes waiting in the transmit queue.
    pub fn pending_transmit(&self) -> usize {
        self.tx_total()
    }

    /// Bytes of memory the connection's buffers and tables currently occupy (excluding the
    /// `Connection` struct itself).
    pub fn buffer_footprint(&self) -> usize {
        let f = self.rx.footprint() + self.tx.footprint() + self.reasm.footprint() + self.slots.footprint();
        #[cfg(feature = "alloc")]
        let f = f + self.spliced.footprint();
        f
    }

    /// Returns memory held by empty buffers and tables to the allocator (owned storage only).
    ///
    /// Buffers keep their capacity between messages so that steady-state traffic does not
    /// allocate; a runtime calls this when a connection goes idle to keep idle connections small.
    pub fn release_memory(&mut self) {
        self.release_rx();
        self.rx.release_memory();
        self.tx.release_memory();
        #[cfg(feature = "alloc")]
        self.spliced.release_memory();
        if self.partial.is_none() {
            self.reasm.clear();
            self.reasm.release_memory();
        }
        self.slots.release_memory();
        #[cfg(feature = "alloc")]
        if let Some(s) = &mut self.sess {
            // Spare buffers only: no cached answer is dropped.
            s.shed(0);
        }
    }

    /// Remaining send credit of one of our streams `(items, bytes)`, limited by the connection
    /// credit, or `None` if no such stream is open.
    pub fn stream_credit(&self, id: u64) -> Option<(u32, u32)> {
        let i = self.slots.find(id, |s| s.id == id && s.kind == Kind::Stream)?;
        let s = &self.slots.get(i)?.s;
        Some((s.send_msgs, (s.send_bytes as u64).min(self.conn_send) as u32))
    }
}
