//! Session resumption (SPEC.md §13): surviving the loss of the transport with exactly-once
//! execution. Needs the `resume` feature (which `alloc` brings): the reply cache, retained
//! requests and unconfirmed stream items live in [`SessionState`](super::session::SessionState),
//! on the heap with `alloc`, else in the caller's buffers
//! ([`Connection::with_session_storage`]), reset in place for each new session.
//!
//! The connection object *is* the session. When its transport is lost it becomes
//! [`State::Suspended`] instead of closing: exchanges stay open, handlers keep running, answers
//! go to the reply cache, deadlines keep running. The dialer then calls
//! [`Connection::reconnect`] on a new transport; the acceptor, seeing
//! [`Event::ResumeRequested`](crate::Event::ResumeRequested) on a fresh connection, moves that
//! transport into the session with [`Connection::resume_from`]. After the resumed handshake each
//! side retransmits its unanswered openings in id order (§13.5) and resumes its streams with
//! STREAM_RESUME (§13.7).

use super::{Connection, Kind, Pending, Raw, State};
use crate::config::{Role, VERSION};
use crate::error::{ApiError, ConnectionError};
use crate::event::MethodId;
use crate::frame::{self, ty, DecodeError, Frame, Request};
use crate::status::Status;
use crate::time::Instant;

type R = Result<Option<Raw>, ConnectionError>;

const fn protocol(reason: &'static str) -> ConnectionError {
    ConnectionError::Violation { status: Status::PROTOCOL_ERROR, reason }
}

impl Connection<'_> {
    // ------------------------------------------------------------------ losing the transport

    /// A transport-level end of a resumable session suspends it instead of closing it
    /// (SPEC.md §13.2). Returns whether it did.
    pub(super) fn try_suspend(&mut self, now: Instant, e: &ConnectionError) -> bool {
        if !self.is_resumable() || self.session_ending || self.state == State::Closed {
            return false;
        }
        let lost = match e {
            ConnectionError::TransportClosed | ConnectionError::IdleTimeout => true,
            // A resuming handshake that does not complete is a failed attempt, not the end.
            ConnectionError::HandshakeTimeout => self.resuming,
            ConnectionError::Malformed(DecodeError::Truncated) => self.eof,
            ConnectionError::PeerClosed { status } => *status == Status::IDLE_TIMEOUT,
            _ => false,
        };
        if lost {
            self.suspend(now);
        }
        lost
    }

    fn suspend(&mut self, now: Instant) {
        if self.state != State::Suspended {
            self.grace_deadline = now + self.config.session_grace;
            self.suspended_at = now;
            self.stats.suspensions += 1;
        }
        self.state = State::Suspended;
        self.reset_transport();
        self.bound_suspended_wait(self.suspended_at);
    }

    /// Forgets everything tied to the transport (SPEC.md §13.4 "not carried over").
    fn reset_transport(&mut self) {
        self.rx.clear();
        self.rx_release = 0;
        self.direct = None;
        self.eof = false;
        self.rx_error = None;
        self.tx_clear();
        self.tx_head_left = 0;
        self.ping_out = None;
        self.grant_retry = false;
        self.resuming = false;
        self.resume_request = false;
        self.resumed = false;
        self.resend_from = None;
        self.reasm_delivered = false;
        if let Some(p) = self.partial.take() {
            self.cut_partial(p);
        }
        self.reasm.clear();
        // No transport, nothing to buffer: a suspended session holds no transport buffers
        // (they grow again on demand after a resumption).
        self.rx.release_memory();
        self.tx.release_memory();
        self.reasm.release_memory();
    }

    /// A fragmented message cut by the loss is not received; it will be retransmitted whole.
    fn cut_partial(&mut self, p: super::Partial) {
        let Some(i) = self.slots.find(p.id, |s| s.id == p.id) else { return };
        match p.ty {
            ty::CALL | ty::NOTIFY | ty::STREAM_OPEN if p.deliver && !p.retx => {
                // The application never saw the request: forget it; its retransmission is new.
                self.free_slot(i);
                self.cut_request = Some(p.id);
            }
            ty::RESPONSE if p.deliver => {
                // The response will come again: the call is back to waiting for it, still
                // uncounted (SPEC.md §13.4: the responder does not count its retransmission,
                // so neither side counts it; counting it again could exceed the peer's limit).
                if let Some(s) = self.slots.get_mut(i) {
                    s.assembling = false;
                    if !s.resolved {
                        s.deadline = s.opened_deadline;
                    }
                }
            }
            ty::STREAM_DATA if p.deliver => {
                if let Some(s) = self.slots.get_mut(i) {
                    s.s.unconsumed_msgs = s.s.unconsumed_msgs.saturating_sub(1);
                    s.s.unconsumed_bytes = s.s.unconsumed_bytes.saturating_sub(p.total as u32);
                }
                self.conn_unconsumed = self.conn_unconsumed.saturating_sub(p.total as u64);
            }
            _ => {}
        }
    }

    /// Grace period over: the session ends, every exchange resolves UNAVAILABLE.
    pub(super) fn expire_session(&mut self) {
        self.session_ending = true;
        self.tx_clear();
        self.tx_head_left = 0;
        self.enter_closed(ConnectionError::SessionExpired);
    }

    // ------------------------------------------------------------------ dialer

    /// Dialer: resumes the session on a new transport (SPEC.md §13.3). Queues HELLO with
    /// RESUME and the session token; write `poll_transmit`'s output to the **new** transport
    /// and feed its bytes to this connection.
    ///
    /// Allowed while [`State::Suspended`] (after `handle_eof` on a resumable session), and
    /// while open when the driver has decided the old transport is dead. Errors: not a dialer,
    /// the session is not resumable (the acceptor gave no token) or is ending.
    #[cfg_attr(docsrs, doc(cfg(feature = "resume")))]
    pub fn reconnect(&mut self, now: Instant) -> Result<(), ApiError> {
        if self.role != Role::Dialer {
            return Err(ApiError::WrongState("only the dialer resumes a session"));
        }
        match self.state {
            State::Closed => return Err(ApiError::Closed),
            State::Handshake => return Err(ApiError::NotConnected),
            _ if !self.is_resumable() => {
                return Err(ApiError::WrongState("the session is not resumable (the acceptor gave no token)"))
            }
            _ if self.session_ending => return Err(ApiError::GoingAway),
            _ => {}
        }
        self.suspend(now);
        self.resuming = true;
        self.started = now;
        self.send_hello(VERSION, VERSION, true);
        Ok(())
    }

    /// Dialer: the acceptor's HELLO after a resuming HELLO.
    pub(super) fn on_resume_answer(&mut self, now: Instant, h: frame::Hello<'_>) -> R {
        let confirmed = h.flags & frame::Hello::RESUME != 0;
        if h.min_version != h.max_version || h.min_version != self.version {
            return Err(protocol("acceptor changed the protocol version of a resumed session"));
        }
        self.resuming = false;
        if confirmed {
            if h.session != self.peer_session.get() {
                return Err(protocol("acceptor confirmed a resumption of another session than requested"));
            }
            let limits = crate::config::PeerLimits::from_params(h.params.iter())
                .map_err(|_| protocol("HELLO parameter out of its legal range"))?;
            if limits != self.peer {
                return Err(protocol(
                    "acceptor resumed the session with different parameters (SPEC.md §13.4)",
                ));
            }
            self.peer_name.set(h.name);
            self.peer_auth.set(h.auth);
            self.resumed_ok(now);
            return Ok(None);
        }
        // A new session (SPEC.md §13.3 step 4): everything of the old one is UNAVAILABLE.
        let limits = crate::config::PeerLimits::from_params(h.params.iter())
            .map_err(|_| protocol("HELLO parameter out of its legal range"))?;
        for i in 0..self.slots.capacity_hint() {
            self.abort_slot(i, Status::UNAVAILABLE);
        }
        self.peer = limits;
        self.peer_name.set(h.name);
        self.peer_auth.set(h.auth);
        self.peer_session.set(h.session);
        self.peer_resume = false;
        self.peer_high = None;
        self.cut_request = None;
        self.grace_deadline = Instant::MAX;
        self.restart_credit();
        self.restart_session(!h.session.is_empty());
        self.state = State::Open;
        self.last_recv = now;
        self.connected_event = true;
        Ok(None)
    }

    // ------------------------------------------------------------------ acceptor

    /// Acceptor: a resuming HELLO arrived and we offer resumption; the application decides.
    pub(super) fn on_resume_request(&mut self) -> R {
        self.resume_request = true;
        Ok(Some(Raw::ResumeRequested))
    }

    /// Acceptor: moves the transport of `fresh` — a new connection that reported
    /// [`Event::ResumeRequested`](crate::Event::ResumeRequested) with this session's token —
    /// into this session (SPEC.md §13.3 step 2). Afterwards `fresh` is finished (drop it) and
    /// this connection speaks on `fresh`'s transport: the driver moves the socket over. If this
    /// session still had a transport, it is abandoned without CLOSE; close that socket.
    ///
    /// Refused (`fresh` is then closed with PROTOCOL_ERROR when the dialer broke §13.4) if the
    /// token differs, the session is over or ending, or the dialer's parameters changed.
    #[cfg_attr(docsrs, doc(cfg(feature = "resume")))]
    pub fn resume_from(&mut self, now: Instant, fresh: &mut Connection<'_>) -> Result<(), ApiError> {
        if self.role != Role::Acceptor || fresh.role != Role::Acceptor || !fresh.resume_request {
            return Err(ApiError::WrongState(
                "resume_from takes a fresh acceptor connection whose dialer asked to resume",
            ));
        }
        if !self.is_resumable() || fresh.peer_session.get() != self.me.2.get() {
            return Err(ApiError::WrongState("the dialer asked to resume another session"));
        }
        match self.state {
            State::Closed => return Err(ApiError::Closed),
            State::Handshake => return Err(ApiError::NotConnected),
            _ if self.session_ending => return Err(ApiError::GoingAway),
            _ => {}
        }
        if fresh.peer != self.peer {
            fresh.resume_request = false;
            fresh.fail(now, protocol("dialer resumed the session with different parameters (SPEC.md §13.4)"));
            return Err(ApiError::WrongState("the dialer's parameters differ from its first HELLO"));
        }
        self.suspend(now);
        // Whatever the dialer sent after its HELLO belongs to this session now.
        fresh.release_rx();
        let pending = fresh.rx.data();
        let buf = self.rx.spare(pending.len());
        let n = buf.len().min(pending.len());
        buf[..n].copy_from_slice(&pending[..n]);
        self.rx.commit(n);
        self.peer_name.set(fresh.peer_name.get());
        self.peer_auth.set(fresh.peer_auth.get());
        self.peer_resume = true;
        // `fresh` is done: it sends nothing and reports nothing more.
        fresh.rx.clear();
        fresh.tx_clear();
        fresh.resume_request = false;
        fresh.state = State::Closed;
        fresh.closed_event = Some(ConnectionError::LocallyClosed { status: Status::OK });
        fresh.closed_delivered = true;
        self.send_hello(VERSION, VERSION, true);
        self.resumed_ok(now);
        Ok(())
    }

    /// Acceptor: answers a resumption request with a new session (SPEC.md §13.3 step 3): the
    /// dialer resolves its old exchanges UNAVAILABLE. `fresh` then continues as a normal new
    /// connection ([`Event::Connected`](crate::Event::Connected) follows).
    #[cfg_attr(docsrs, doc(cfg(feature = "resume")))]
    pub fn decline_resume(&mut self, now: Instant) -> Result<(), ApiError> {
        if !self.resume_request {
            return Err(ApiError::WrongState("no resumption was requested on this connection"));
        }
        self.resume_request = false;
        self.peer_resume = false;
        self.send_hello(self.version, self.version, false);
        self.state = State::Open;
        self.last_recv = now;
        self.connected_event = true;
        self.restart_session(!self.me.2.get().is_empty() && self.can_keep_session());
        Ok(())
    }

    /// Starts the state of a new session, empty: reset in place (the caller's buffers without
    /// `alloc`, the heap box kept for reuse with it), or none if the session is not resumable.
    pub(super) fn restart_session(&mut self, resumable: bool) {
        #[cfg(feature = "alloc")]
        match (self.sess.as_mut(), resumable) {
            (Some(s), true) => s.reset(),
            (None, true) => {
                self.sess = Some(alloc::boxed::Box::new(super::session::SessionState::new(&self.config)))
            }
            (_, false) => self.sess = None,
        }
        #[cfg(not(feature = "alloc"))]
        {
            let Some(mut s) = self.sess.take().or_else(|| self.sess_spare.take()) else { return };
            s.reset();
            if resumable {
                self.sess = Some(s);
            } else {
                self.sess_spare = Some(s);
            }
        }
    }

    // ------------------------------------------------------------------ after the handshake

    /// Both sides, once the resumed handshake completed: restart the windows, then retransmit
    /// (SPEC.md §13.4–§13.5).
    fn resumed_ok(&mut self, now: Instant) {
        self.unbound_suspended_wait();
        self.state = State::Open;
        self.grace_deadline = Instant::MAX;
        self.last_recv = now;
        self.resumed = true;
        self.stats.resumptions += 1;
        self.restart_credit();
        if let Some(sess) = self.sess.as_mut() {
            sess.acks.requeue_recent(now);
        }
        let initiator = self.role;
        for i in 0..self.slots.capacity_hint() {
            let Some(s) = self.slots.get_mut(i) else { continue };
            if s.kind != Kind::Stream {
                continue;
            }
            // Carried over: every stream the peer may know (ours whose STREAM_OPEN went out).
            let carried = !s.outbound || s.s.on_wire;
            s.s.await_resume = carried;
            s.s.carried = carried;
            s.s.resending = false;
            s.s.resume_sent = false;
            s.s.resume_recv = false;
            s.s.items_at_resume = if carried { s.s.sent_items } else { 0 };
        }
        let _ = initiator;
        self.resend_from = Some(0);
        self.pump_resend(now);
    }

    /// All credit windows restart at their initial values (SPEC.md §13.4).
    fn restart_credit(&mut self) {
        self.conn_send = self.peer.conn_credit_bytes.into();
        self.conn_recv = self.config.conn_credit_bytes.into();
        self.conn_grant = 0;
        self.conn_no_grant = self.conn_unconsumed;
        let (pm, pb) = (self.peer.stream_credit_msgs, self.peer.stream_credit_bytes);
        let (m, b) = (self.config.stream_credit_msgs, self.config.stream_credit_bytes);
        for i in 0..self.slots.capacity_hint() {
            if let Some(s) = self.slots.get_mut(i) {
                if s.kind == Kind::Stream {
                    s.s.send_msgs = pm;
                    s.s.send_bytes = pb;
                    s.s.recv_msgs = m;
                    s.s.recv_bytes = b;
                    s.s.grant_msgs = 0;
                    s.s.grant_bytes = 0;
                    s.s.no_grant_msgs = s.s.unconsumed_msgs;
                    s.s.no_grant_bytes = s.s.unconsumed_bytes;
                }
            }
        }
    }

    /// Retransmits our unanswered openings in id order, as far as the transmit queue allows;
    /// called again as it drains. When done, sends STREAM_RESUME for the carried-over streams
    /// and the terminals that waited for their STREAM_OPEN.
    pub(super) fn pump_resend(&mut self, now: Instant) {
        while let Some(from) = self.resend_from {
            if self.state == State::Closed || self.state == State::Suspended {
                self.resend_from = None;
                return;
            }
            let Some(sess) = self.sess.as_ref() else {
                self.resend_from = None;
                return;
            };
            let Some(id) = sess.outbox.next_from(from) else { break };
            let Some(i) = self.slots.find(id, |s| s.id == id && s.outbound) else {
                if let Some(sess) = self.sess.as_mut() {
                    sess.outbox.remove(id);
                }
                continue;
            };
            if !self.resend_one(now, i, id) {
                return;
            }
            self.resend_from = Some(id + 1);
        }
        if self.resend_from.take().is_none() {
            return;
        }
        // Openings are all out: resume the carried-over streams.
        for i in 0..self.slots.capacity_hint() {
            let Some(s) = self.slots.get(i) else { continue };
            if s.kind != Kind::Stream {
                continue;
            }
            let (id, carried, sent) = (s.id, s.s.carried, s.s.resume_sent);
            if carried && !sent {
                if !self.send_stream_resume(i, id) {
                    self.resend_streams = true;
                }
            } else if !carried {
                self.flush_stream_terminal(i);
            }
        }
    }

    /// Retransmits one opening (and its CANCEL if it was cancelled). False if the transmit
    /// queue is full: try again later.
    // The payload is a `Vec` with `alloc` (borrowed here), a slice without.
    #[allow(clippy::needless_borrow)]
    fn resend_one(&mut self, now: Instant, i: usize, id: u64) -> bool {
        let Some(s) = self.slots.get(i) else { return true };
        // The budget is what is left of the original deadline, even if it already passed here
        // (then the CANCEL follows at once).
        let (kind, resolved, deadline) = (s.kind, s.resolved, s.opened_deadline);
        // The session state is set aside while the request is queued (pushing a frame never
        // touches it; nothing is copied).
        let Some(sess) = self.sess.take() else { return true };
        let Some(r) = sess.outbox.get(id) else {
            self.sess = Some(sess);
            return true;
        };
        let budget_us = if deadline == Instant::MAX {
            0
        } else {
            deadline.as_micros().saturating_sub(now.as_micros()).clamp(1, crate::varint::MAX)
        };
        let fin = if r.fin { frame::flags::FIN } else { 0 };
        let method: MethodId = r.method;
        let (rty, key) = (r.ty, self.key_to_send(r.key));
        let payload: &[u8] = &r.payload;
        let res = self.push_message(id, payload, |more, total_len, chunk| {
            let q = Request {
                flags: more | fin,
                id,
                module: method.module,
                method: method.method,
                budget_us,
                total_len,
                payload: chunk,
            };
            Frame::open(rty, key, q)
        });
        self.sess = Some(sess);
        match res {
            Ok(()) => {}
            Err(crate::ApiError::TxFull) => return false,
            Err(_) => {
                // It can never be sent (the queue is smaller than the message): fail it here.
                self.abort_slot(i, Status::TOO_LARGE);
                return true;
            }
        }
        self.stats.retransmissions += 1;
        if let Some(s) = self.slots.get_mut(i) {
            s.s.on_wire = true;
        }
        if kind == Kind::Stream {
            let became_writable = match self.slots.get_mut(i) {
                Some(s) => {
                    s.s.on_wire = true;
                    s.s.term_sent |= s.s.open_fin;
                    core::mem::take(&mut s.s.blocked)
                }
                None => false,
            };
            if became_writable {
                self.set_pending(i, Pending::Writable);
            }
        } else if resolved {
            let _ = self.push(&Frame::Cancel { id }, true);
        }
        true
    }

    // ------------------------------------------------------------------ retransmitted requests

    /// Whether an opening frame with `id` is a retransmission (SPEC.md §13.5).
    pub(super) fn is_retransmission(&mut self, id: u64) -> bool {
        if self.cut_request == Some(id) {
            self.cut_request = None;
            return false;
        }
        self.resumed && self.peer_high.is_some_and(|h| id <= h)
    }

    /// A retransmitted opening: answered from the open exchange, the reply cache, or with
    /// REPLY_EVICTED; the handler never runs again.
    pub(super) fn on_retransmitted(&mut self, t: u8, r: Request<'_>) -> R {
        self.stats.retransmissions_received += 1;
        let method = MethodId { module: r.module, method: r.method };
        if r.flags & frame::flags::MORE != 0 {
            // Compared in u64 before any conversion: on a 32-bit target a peer-supplied length
            // above 4 GiB would otherwise wrap into a small, accepted one.
            let total = r.total_len.unwrap_or(0);
            if total > self.reasm_max as u64 {
                return Err(ConnectionError::Violation {
                    status: Status::LIMIT_EXCEEDED,
                    reason: "message larger than max_message_size",
                });
            }
            let total = total as usize;
            let p = super::Partial {
                ty: t,
                id: r.id,
                total,
                got: r.payload.len(),
                flags: r.flags,
                method,
                status: Status::OK,
                deliver: true,
                retx: true,
                key: None,
            };
            self.begin_partial(p, r.payload)?;
            return Ok(None);
        }
        self.answer_retransmission(t, r.id, method, r.payload)?;
        Ok(None)
    }

    pub(super) fn answer_retransmission(
        &mut self,
        t: u8,
        id: u64,
        method: MethodId,
        payload: &[u8],
    ) -> Result<(), ConnectionError> {
        let d = super::session::request_digest(t, method, payload);
        let differs = || protocol("retransmitted request differs from the original (id reused)");
        if let Some(i) = self.slots.find(id, |s| s.id == id && !s.outbound) {
            let same_kind =
                self.slots.get(i).is_some_and(|s| (s.kind == Kind::Stream) == (t == ty::STREAM_OPEN));
            if !same_kind || self.slots.get(i).is_some_and(|s| !s.assembling && s.digest != d) {
                return Err(differs());
            }
            // Still running: the answer comes when the application gives it.
            return Ok(());
        }
        let cached = self.sess.as_ref().and_then(|s| s.cache.get(id)).map(|c| c.digest);
        if cached.is_some_and(|cd| cd != d) {
            return Err(differs());
        }
        self.answer_or_owe(id, t == ty::STREAM_OPEN)
    }

    /// Answers a retransmission that is no longer open now, or once the transmit queue drains.
    pub(super) fn answer_or_owe(&mut self, id: u64, stream: bool) -> Result<(), ConnectionError> {
        if !self.send_answer(id, stream) {
            // The transmit queue is full: answer as it drains. A peer can have at most its open
            // exchanges to retransmit; more is abuse (SPEC.md §13.5). The same bound in both
            // builds; without `alloc` the ring is in the caller's `replies` buffer.
            let cap = crate::Storage::owed_answers(&self.config);
            let Some(sess) = self.sess.as_mut() else { return Ok(()) };
            if sess.owed_len() >= cap || !sess.owe(id, stream) {
                return Err(ConnectionError::Violation {
                    status: Status::ENHANCE_YOUR_CALM,
                    reason: "more retransmitted requests than the peer can have open",
                });
            }
            self.resend_streams = true;
        }
        Ok(())
    }

    /// Sends the answer to a retransmitted request that is no longer open: the cached
    /// RESPONSE, or REPLY_EVICTED. False if the transmit queue is full.
    // The payload is a `Vec` with `alloc` (borrowed here), a slice without.
    #[allow(clippy::needless_borrow)]
    fn send_answer(&mut self, id: u64, stream: bool) -> bool {
        if stream {
            return self.push(&Frame::StreamReset { id, status: Status::REPLY_EVICTED }, true).is_ok();
        }
        // The cache is set aside while the answer is queued (pushing a frame never touches it;
        // nothing is copied).
        let Some(sess) = self.sess.take() else { return true };
        let ok = match sess.cache.get(id) {
            None => {
                let f = Frame::Response {
                    flags: 0,
                    id,
                    status: Status::REPLY_EVICTED,
                    total_len: None,
                    payload: &[],
                };
                self.push(&f, true).is_ok()
            }
            Some(c) => {
                let (status, payload): (Status, &[u8]) = (c.status, &c.payload);
                self.push_message(id, payload, |more, total_len, chunk| Frame::Response {
                    flags: more,
                    id,
                    status,
                    total_len,
                    payload: chunk,
                })
                .is_ok()
            }
        };
        self.sess = Some(sess);
        ok
    }

    /// Sends what waited for room in the transmit queue: answers to retransmissions, then
    /// stream retransmissions after STREAM_RESUME.
    pub(super) fn pump_streams(&mut self) {
        while let Some((id, stream)) = self.sess.as_ref().and_then(|s| s.owed_front()) {
            if !self.send_answer(id, stream) {
                return;
            }
            if let Some(s) = self.sess.as_mut() {
                s.owed_pop();
            }
        }
        let mut busy = false;
        for i in 0..self.slots.capacity_hint() {
            let Some(s) = self.slots.get(i) else { continue };
            if s.kind != Kind::Stream {
                continue;
            }
            if s.s.carried && !s.s.resume_sent && self.resend_from.is_none() {
                let id = s.id;
                busy |= !self.send_stream_resume(i, id);
            } else if s.s.resending {
                busy |= !self.resend_stream(i);
            } else if s.s.term_pending {
                self.flush_stream_terminal(i);
                busy |= self.slots.get(i).is_some_and(|s| s.s.term_pending && !s.s.await_resume);
            }
        }
        self.resend_streams = busy;
    }
}
