//! Event plumbing and closing: how parsed frames and pending per-exchange outcomes become
//! [`Event`](crate::Event)s, how slots are settled and freed, and how the connection ends.

use super::{recv, Connection, Kind, Pending, Raw, Src, State};
use crate::error::ConnectionError;
use crate::event::Event;
use crate::frame;
use crate::status::Status;
use crate::time::Instant;

impl Connection<'_> {
    // ------------------------------------------------------------------ event plumbing

    pub(super) fn release_rx(&mut self) {
        if self.rx_release > 0 {
            self.rx.consume(self.rx_release);
            self.rx_release = 0;
        }
        if self.reasm_delivered {
            self.reasm.clear();
            self.reasm_delivered = false;
        }
    }

    pub(super) fn next_raw(&mut self, now: Instant) -> Option<Raw> {
        loop {
            if let Some(r) = self.take_pending() {
                return Some(r);
            }
            if self.state == State::Closed {
                return None;
            }
            let rx = core::mem::take(&mut self.rx);
            let out = self.parse_one(now, rx.data());
            self.rx = rx;
            match out {
                recv::Outcome::NeedMore => {
                    if let Some(e) = self.rx_error.take() {
                        self.fail(now, e);
                        continue;
                    }
                    if self.eof {
                        let e = if self.rx.is_empty() && self.direct.is_none() {
                            ConnectionError::TransportClosed
                        } else {
                            ConnectionError::Malformed(frame::DecodeError::Truncated)
                        };
                        self.fail(now, e);
                        continue;
                    }
                    return None;
                }
                // (A CLOSE that suspended the session already emptied the buffer.)
                recv::Outcome::Done(n) => self.rx.consume(n.min(self.rx.len())),
                recv::Outcome::Event(n, raw) => {
                    self.rx_release = n;
                    return Some(raw);
                }
            }
        }
    }

    pub(super) fn take_pending(&mut self) -> Option<Raw> {
        if self.connected_event {
            self.connected_event = false;
            return Some(Raw::Connected);
        }
        if self.pending_slots > 0 {
            let Some(i) = self.slots.position(|s| s.pending != Pending::None) else {
                // The counter is out of sync with the table: a bug, never a reason to panic on
                // input. Recover; the fuzz and property harnesses catch the desync itself
                // through `check_invariants`.
                self.pending_slots = 0;
                return self.take_pending();
            };
            let slot = self.slots.get_mut(i)?;
            let p = core::mem::replace(&mut slot.pending, Pending::None);
            if let Pending::Reset(_) = p {
                slot.s.reported = true;
            }
            let id = slot.id;
            let free = slot.free_after_event;
            self.pending_slots = self.pending_slots.saturating_sub(1);
            if free {
                self.free_slot(i);
            } else {
                self.settle(i);
            }
            return Some(match p {
                Pending::Failed(status) => Raw::Failed { id, status },
                Pending::Cancelled(status) => Raw::Cancelled { id, status },
                Pending::Reset(status) => Raw::StreamReset { id, status },
                Pending::Writable | Pending::None => Raw::StreamWritable { id },
            });
        }
        if let Some((bound, status)) = self.goaway_event.take() {
            return Some(Raw::GoAway { bound, status });
        }
        if self.state == State::Closed && !self.closed_delivered {
            if let Some(e) = self.closed_event {
                self.closed_delivered = true;
                return Some(Raw::Closed(e));
            }
        }
        None
    }

    pub(super) fn materialize(&self, raw: Raw) -> Event<'_> {
        let src = |s: Src| -> &[u8] {
            match s {
                Src::Empty => &[],
                Src::Rx(a, b) => &self.rx.data()[a..b],
                #[cfg(feature = "fragmentation")]
                Src::Reasm => self.reasm.data(),
            }
        };
        match raw {
            Raw::Connected => Event::Connected,
            Raw::Request { id, kind, method, deadline, src: s, .. } => {
                Event::Request { id, kind, method, deadline, payload: src(s) }
            }
            Raw::Signal { method, src: s, .. } => Event::Signal { method, payload: src(s) },
            Raw::Response { id, status, src: s } => Event::Response { id, status, payload: src(s) },
            Raw::Failed { id, status } => Event::Failed { id, status },
            Raw::Cancelled { id, status } => Event::Cancelled { id, status },
            Raw::StreamData { id, src: s } => Event::StreamData { id, payload: src(s) },
            Raw::StreamFin { id, status } => Event::StreamFin { id, status },
            Raw::StreamReset { id, status } => Event::StreamReset { id, status },
            Raw::StreamWritable { id } => Event::StreamWritable { id },
            Raw::GoAway { bound, status } => Event::GoAway { bound, status },
            Raw::ResumeRequested => Event::ResumeRequested { token: self.peer_session.get() },
            Raw::AuthRequested => {
                Event::AuthRequested { name: self.peer_name.get(), auth: self.peer_auth.get() }
            }
            Raw::Closed(e) => Event::Closed(e),
        }
    }

    /// Sets a pending event on slot `i`. Terminal events replace `Writable`.
    pub(super) fn set_pending(&mut self, i: usize, p: Pending) {
        if let Some(s) = self.slots.get_mut(i) {
            if s.pending == Pending::None {
                self.pending_slots += 1;
            }
            if s.pending == Pending::None || s.pending == Pending::Writable {
                s.pending = p;
            }
        }
    }

    /// Frees slot `i` if its exchange is over (streams: both terminals; no event owed).
    pub(super) fn settle(&mut self, i: usize) {
        let Some(s) = self.slots.get(i) else { return };
        // A terminal still waiting to be sent (suspended session) keeps the stream.
        // So does one still retransmitting, waiting to learn what to retransmit, or owing the
        // peer its STREAM_RESUME.
        let busy = s.s.term_pending || s.s.resending || s.s.await_resume || (s.s.carried && !s.s.resume_sent);
        if s.kind == Kind::Stream && s.s.sent_terminal && s.s.recv_terminal && !busy {
            if s.pending == Pending::None {
                self.free_slot(i);
            } else if let Some(s) = self.slots.get_mut(i) {
                s.free_after_event = true;
            }
        }
        self.check_drained();
    }

    pub(super) fn free_slot(&mut self, i: usize) {
        let Some(s) = self.slots.remove(i) else { return };
        #[cfg(feature = "datagram")]
        if let Some(sess) = self.sess.as_mut() {
            if s.outbound {
                sess.outbox.remove(s.id);
            }
            #[cfg(feature = "resume")]
            if s.kind == Kind::Stream {
                sess.forget_items(s.id);
            }
        }
        // Without `alloc` that made room in the retained buffer for blocked streams.
        #[cfg(all(feature = "resume", not(feature = "alloc")))]
        if s.outbound || s.kind == Kind::Stream {
            self.wake_retain_blocked();
        }
        // (Datagram mode: the retransmission timer lived in the slot and went with it.)
        if s.pending != Pending::None {
            self.pending_slots = self.pending_slots.saturating_sub(1);
        }
        match (s.kind, s.outbound) {
            (Kind::Stream, true) => self.out_streams = self.out_streams.saturating_sub(1),
            (Kind::Stream, false) => self.in_streams = self.in_streams.saturating_sub(1),
            // A call whose response is arriving was already uncounted at its first frame.
            (_, true) if !s.uncounted => self.out_calls = self.out_calls.saturating_sub(1),
            (_, true) => {}
            (_, false) => self.in_calls = self.in_calls.saturating_sub(1),
        }
        if s.kind == Kind::Stream && s.s.unconsumed_bytes > 0 {
            // The application will not consume what it has not taken; return it to the
            // connection window.
            self.return_unconsumed(s.s.unconsumed_bytes, s.s.no_grant_bytes);
        }
        self.check_drained();
    }

    /// Returns a stream's delivered-but-unconsumed bytes to the connection window (the stream
    /// ended or was reset), except those delivered before a resumption: the window restart
    /// already paid for them (SPEC.md §13.4).
    pub(super) fn return_unconsumed(&mut self, unconsumed: u32, no_grant: u32) {
        let unconsumed = u64::from(unconsumed);
        let old = unconsumed.min(u64::from(no_grant)).min(self.conn_no_grant);
        self.conn_no_grant -= old;
        self.conn_unconsumed = self.conn_unconsumed.saturating_sub(unconsumed);
        self.conn_grant += unconsumed - old;
        self.flush_conn_grant();
    }

    // ------------------------------------------------------------------ closing

    /// Ends the connection because of `e`: queues CLOSE when we are the one closing, resolves
    /// every exchange with an event, then reports [`Event::Closed`].
    pub(super) fn fail(&mut self, now: Instant, e: ConnectionError) {
        if self.state == State::Closed {
            return;
        }
        #[cfg(feature = "resume")]
        if self.try_suspend(now, &e) {
            return;
        }
        let _ = now;
        if matches!(e, ConnectionError::Malformed(_) | ConnectionError::Violation { .. }) {
            self.stats.protocol_errors += 1;
        }
        let send_close = !matches!(e, ConnectionError::PeerClosed { .. } | ConnectionError::TransportClosed);
        if send_close {
            let msg = e_message(&e);
            self.push_close(e.status(), msg);
        } else {
            self.tx_clear();
            self.tx_head_left = 0;
        }
        self.enter_closed(e);
    }

    pub(super) fn enter_closed(&mut self, e: ConnectionError) {
        self.state = State::Closed;
        self.closed_event = Some(e);
        self.partial = None;
        self.connected_event = false;
        for i in 0..self.slots.capacity_hint() {
            self.abort_slot(i, Status::UNAVAILABLE);
        }
    }

    /// Ends slot `i` because the connection ended or the peer's GOAWAY excluded it: the
    /// application gets exactly one terminal event for the exchange (none if it already has
    /// one, or never saw the exchange), then the slot is freed.
    pub(super) fn abort_slot(&mut self, i: usize, status: Status) {
        let Some(s) = self.slots.get_mut(i) else { return };
        if s.pending == Pending::Writable {
            s.pending = Pending::None;
            self.pending_slots = self.pending_slots.saturating_sub(1);
        }
        if s.pending != Pending::None {
            // An undelivered terminal event stays the one the application sees.
            s.free_after_event = true;
            return;
        }
        let p = match (s.kind, s.outbound) {
            // The application never saw this request: nothing to report.
            (_, false) if s.assembling => Pending::None,
            (Kind::Stream, _) if s.s.reported || s.s.we_reset => Pending::None,
            // Both directions are over (SPEC.md §7.4.3 row 13): the application has the peer's
            // terminal and ended its own direction, so the stream has its outcome. It is kept
            // only for resumption's bookkeeping (a held terminal, STREAM_RESUME owed); the end
            // of the session changes nothing (row 17 is for streams still open).
            (Kind::Stream, _) if s.s.sent_terminal && s.s.recv_terminal => Pending::None,
            (Kind::Stream, _) => Pending::Reset(status),
            (_, true) if s.resolved => Pending::None,
            (_, true) => Pending::Failed(status),
            // Already told to stop (cancelled or expired).
            (_, false) if s.cancelled.is_some() => Pending::None,
            (_, false) => Pending::Cancelled(status),
        };
        if p == Pending::None {
            self.free_slot(i);
        } else {
            self.set_pending(i, p);
            if let Some(s) = self.slots.get_mut(i) {
                s.free_after_event = true;
            }
        }
    }

    /// After GOAWAY: once nothing is open, close gracefully. A request cut by a transport loss
    /// counts as open until its retransmission arrives: the GOAWAY's bound covers it (SPEC.md
    /// §7.7.2 item 4, §13.5); the drain timeout bounds the wait.
    pub(super) fn check_drained(&mut self) {
        let idle = self.slots.len() == 0 && self.cut_request.is_none();
        if self.state == State::Draining && self.goaway_sent && idle {
            self.push_close(Status::OK, b"");
            self.enter_closed(ConnectionError::LocallyClosed { status: Status::OK });
        }
    }
}

pub(super) fn e_message(e: &ConnectionError) -> &'static [u8] {
    match e {
        ConnectionError::Violation { reason, .. } | ConnectionError::Incompatible { reason } => {
            reason.as_bytes()
        }
        ConnectionError::Malformed(_) => b"malformed frame",
        ConnectionError::IdleTimeout => b"idle timeout",
        ConnectionError::HandshakeTimeout => b"handshake timeout",
        ConnectionError::DrainTimeout => b"drain timeout",
        _ => b"",
    }
}
