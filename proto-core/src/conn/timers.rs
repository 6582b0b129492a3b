//! Deadlines: handshake, idle, keepalive, drain and per-exchange (SPEC.md §5, §7.5–§7.7).
//!
//! All timers are derived from state; there is no timer table to keep in sync.
//! `handle_timeout` may be called early, late or repeatedly: it acts only on what is due.

use super::{Connection, Kind, Pending, State};
use crate::error::ConnectionError;
use crate::frame::Frame;
use crate::status::Status;
use crate::time::Instant;

impl Connection<'_> {
    /// The instant at which [`handle_timeout`](Self::handle_timeout) must be called, or `None`
    /// if no timer is running (the connection is closed).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            // --- datagram mode: a closed association lingers to repeat its CLOSE (SPEC.md §14.8)
            #[cfg(feature = "datagram")]
            return self.dgram_closed_timeout();
            #[cfg(not(feature = "datagram"))]
            return None;
        }
        let mut t = Instant::MAX;
        if self.state == State::Handshake || self.resuming {
            t = t.min(self.started + self.config.handshake_timeout);
        }
        if self.state == State::Suspended {
            t = t.min(self.grace_deadline);
        } else if self.state != State::Handshake {
            if !self.config.idle_timeout.is_zero() {
                t = t.min(self.last_recv + self.config.idle_timeout);
            }
            if !self.config.keepalive_interval.is_zero() && self.ping_out.is_none() {
                t = t.min(self.last_recv.max(self.ping_blocked) + self.config.keepalive_interval);
            }
        }
        t = t.min(self.drain_deadline);
        #[cfg(feature = "datagram")]
        if let Some(a) = self.sess.as_ref().and_then(|s| s.acks.deadline()) {
            // ACKs wait for a transport.
            if self.state != State::Suspended && !self.resuming {
                t = t.min(a);
            }
        }
        for (_, s) in self.slots.iter() {
            t = t.min(s.deadline);
            // --- datagram mode: the exchange's retransmission timer (SPEC.md §14.4)
            #[cfg(feature = "datagram")]
            if let Some(r) = &s.retx {
                t = t.min(r.next);
            }
        }
        // --- datagram mode: retransmission and PING timers (SPEC.md §14.4, §14.8)
        #[cfg(feature = "datagram")]
        if let Some(d) = self.dgram_deadline() {
            t = t.min(d);
        }
        (t != Instant::MAX).then_some(t)
    }

    /// Acts on every timer due at `now`: handshake and idle timeouts close the connection,
    /// keepalive sends PING, expired exchanges are failed or cancelled.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            // --- datagram mode: end of the CLOSE linger (SPEC.md §14.8)
            #[cfg(feature = "datagram")]
            self.dgram_closed_timer(now);
            return;
        }
        // --- datagram mode: retransmissions, PING expiry (SPEC.md §14.4, §14.8)
        #[cfg(feature = "datagram")]
        self.dgram_on_timeout(now);
        if self.state == State::Handshake || self.resuming {
            if now >= self.started + self.config.handshake_timeout {
                self.fail(now, ConnectionError::HandshakeTimeout);
            }
            if self.state == State::Handshake {
                return;
            }
        }
        #[cfg(feature = "resume")]
        if self.state == State::Suspended {
            if now >= self.grace_deadline {
                self.expire_session();
                return;
            }
            self.expire_due(now);
            return;
        }
        if !self.config.idle_timeout.is_zero() && now >= self.last_recv + self.config.idle_timeout {
            self.fail(now, ConnectionError::IdleTimeout);
            return;
        }
        if now >= self.drain_deadline {
            self.fail(now, ConnectionError::DrainTimeout);
            return;
        }
        if !self.config.keepalive_interval.is_zero()
            && self.ping_out.is_none()
            && now >= self.last_recv.max(self.ping_blocked) + self.config.keepalive_interval
            && self.ping(now).is_err()
        {
            // A full transmit queue only delays the keepalive (the idle timeout still applies);
            // move the timer forward so the driver does not spin on a deadline in the past.
            self.ping_blocked = now;
        }
        self.flush_acks(now, false);
        self.expire_due(now);
    }

    /// Expires every exchange whose deadline has passed.
    fn expire_due(&mut self, now: Instant) {
        for i in 0..self.slots.capacity_hint() {
            let due = self.slots.get(i).is_some_and(|s| s.deadline <= now);
            if due {
                if let Err(e) = self.expire(i) {
                    self.fail(now, e);
                    return;
                }
            }
        }
    }

    #[cfg(feature = "resume")]
    /// While suspended, bounds how long our open exchanges wait (`suspended_call_timeout`):
    /// each one's deadline becomes the earlier of its own and `from + timeout`.
    pub(super) fn bound_suspended_wait(&mut self, from: Instant) {
        let t = self.config.suspended_call_timeout;
        if t.is_zero() {
            return;
        }
        let until = from + t;
        for i in 0..self.slots.capacity_hint() {
            if let Some(s) = self.slots.get_mut(i) {
                if s.outbound && !s.resolved && !s.s.we_reset && until < s.deadline {
                    s.deadline = until;
                    s.suspend_wait = true;
                }
            }
        }
    }

    #[cfg(feature = "resume")]
    /// After a resumption: exchanges that were only waiting get their own deadline back.
    pub(super) fn unbound_suspended_wait(&mut self) {
        for i in 0..self.slots.capacity_hint() {
            if let Some(s) = self.slots.get_mut(i) {
                if s.suspend_wait {
                    s.suspend_wait = false;
                    if !s.resolved && !s.s.we_reset {
                        s.deadline = s.opened_deadline;
                    }
                }
            }
        }
    }

    fn expire(&mut self, i: usize) -> Result<(), ConnectionError> {
        let Some(s) = self.slots.get_mut(i) else { return Ok(()) };
        s.deadline = Instant::MAX;
        if s.kind == Kind::Stream && s.s.sent_terminal && s.s.recv_terminal {
            // Both directions are over: the stream has its outcome (SPEC.md §7.4.3 row 13) and
            // is kept only for resumption's bookkeeping (a held terminal, STREAM_RESUME owed).
            // A deadline can no longer change it; reporting one would resolve it twice.
            s.suspend_wait = false;
            return Ok(());
        }
        let (id, kind, outbound) = (s.id, s.kind, s.outbound);
        // Waiting too long on a suspended session is UNAVAILABLE, not a deadline (SPEC.md §13.2).
        let dl: Status = if core::mem::take(&mut s.suspend_wait) {
            Status::UNAVAILABLE
        } else {
            Status::DEADLINE_EXCEEDED
        };
        match (kind, outbound) {
            (Kind::Stream, true) => {
                if let Some(p) = self.partial.as_mut().filter(|p| p.id == id) {
                    p.deliver = false;
                }
                let Some(s) = self.slots.get_mut(i) else { return Ok(()) };
                let send = !s.s.we_reset;
                s.s.sent_terminal = true;
                s.s.we_reset = true;
                s.s.blocked = false;
                let returned = core::mem::take(&mut s.s.unconsumed_bytes);
                let no_grant = core::mem::take(&mut s.s.no_grant_bytes);
                s.s.no_grant_msgs = 0;
                s.s.unconsumed_msgs = 0;
                // SPEC.md §10.7: returned credit must reach the peer even if nothing else is
                // consumed later.
                self.return_unconsumed(returned, no_grant);
                if send {
                    self.send_terminal(i, true, dl).map_err(|_| ConnectionError::Violation {
                        status: Status::ENHANCE_YOUR_CALM,
                        reason: "peer does not read: transmit queue full",
                    })?;
                }
                self.set_pending(i, Pending::Reset(dl));
                self.settle(i);
            }
            (Kind::Stream, false) if s.assembling => s.cancelled = Some(dl),
            (Kind::Stream, false) => self.set_pending(i, Pending::Reset(dl)),
            (_, true) => {
                if !s.resolved {
                    s.resolved = true;
                    if s.s.on_wire {
                        self.push_control(&Frame::Cancel { id })?;
                    }
                    self.set_pending(i, Pending::Failed(dl));
                }
            }
            (_, false) => {
                if s.cancelled.is_none() {
                    s.cancelled = Some(dl);
                    if !s.assembling {
                        self.set_pending(i, Pending::Cancelled(dl));
                    }
                }
            }
        }
        Ok(())
    }
}
