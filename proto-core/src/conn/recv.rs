//! Inbound frames: validation against the state machines and limits (SPEC.md §5–§10).

use super::{Connection, Kind, Partial, Pending, Raw, Slot, Src, State};
use crate::config::Features;
use crate::config::{Role, MAX_CREDIT, MIN_FRAME_SIZE};
use crate::error::ConnectionError;
use crate::event::{MethodId, RequestKind, SchemaKey};
use crate::frame::{self, flags, ty, Decoded, Frame, Request};
use crate::status::Status;
use crate::time::Instant;
use core::time::Duration;

/// A CANCEL received less than this (or the smoothed RTT, if larger) before the exchange's
/// deadline is reported as DEADLINE_EXCEEDED (SPEC.md §7.5).
const DEADLINE_CANCEL_MARGIN: Duration = Duration::from_millis(10);

/// Result of parsing one frame from the receive buffer.
pub(super) enum Outcome {
    /// No complete frame buffered.
    NeedMore,
    /// A frame of this many bytes was handled; no event.
    Done(usize),
    /// A frame of this many bytes produced an event whose payload may point into it.
    Event(usize, Raw),
}

pub(super) type R = Result<Option<Raw>, ConnectionError>;

pub(super) const fn violation(status: Status, reason: &'static str) -> ConnectionError {
    ConnectionError::Violation { status, reason }
}

pub(super) const fn protocol(reason: &'static str) -> ConnectionError {
    violation(Status::PROTOCOL_ERROR, reason)
}

/// Range of `inner` within `outer` (both from the same buffer).
fn range_in(outer: &[u8], inner: &[u8]) -> Src {
    if inner.is_empty() {
        return Src::Empty;
    }
    let start = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    if start.checked_add(inner.len()).is_some_and(|end| end <= outer.len()) {
        Src::Rx(start, start + inner.len())
    } else {
        Src::Empty
    }
}

impl Connection<'_> {
    /// Largest frame body accepted right now.
    fn recv_frame_limit(&self) -> usize {
        if self.awaiting_hello() {
            MIN_FRAME_SIZE as usize
        } else {
            self.config.max_frame_size as usize
        }
    }

    pub(super) fn parse_one(&mut self, now: Instant, data: &[u8]) -> Outcome {
        // Reject a peer that is not speaking tandem as soon as its first byte is in, instead of
        // waiting for a frame whose "length" may be anything (SPEC.md §5.2).
        if self.awaiting_hello() && data.first().is_some_and(|&t| t != ty::HELLO && t != ty::CLOSE) {
            self.fail(now, protocol("the first frame must be HELLO"));
            return Outcome::Done(0);
        }
        match Frame::decode(data, self.recv_frame_limit()) {
            Err(e) => {
                self.fail(now, ConnectionError::Malformed(e));
                Outcome::Done(0)
            }
            Ok(Decoded::Incomplete(_)) => Outcome::NeedMore,
            Ok(Decoded::Frame(f, n)) => {
                self.stats.frames_received += 1;
                // --- datagram mode: window, reply cache, relaxed rules (SPEC.md §14)
                #[cfg(feature = "datagram")]
                let handled =
                    self.dgram.is_some().then(|| self.dgram_frame(now, f, &data[..n], data)).flatten();
                #[cfg(feature = "datagram")]
                let out = handled.unwrap_or_else(|| self.on_frame(now, f, data));
                #[cfg(not(feature = "datagram"))]
                let out = self.on_frame(now, f, data);
                match out {
                    Ok(Some(raw)) => Outcome::Event(n, raw),
                    Ok(None) => Outcome::Done(n),
                    Err(e) => {
                        self.fail(now, e);
                        Outcome::Done(n)
                    }
                }
            }
        }
    }

    /// How many bytes of the datagram just committed at `start` are whole frames, and the error
    /// for what follows them, if anything does.
    pub(super) fn check_datagram(&self, start: usize) -> (usize, Option<ConnectionError>) {
        let data = &self.rx.data()[start..];
        if self.awaiting_hello()
            && start == 0
            && data.first().is_some_and(|&t| t != ty::HELLO && t != ty::CLOSE)
        {
            return (0, Some(protocol("the first frame must be HELLO")));
        }
        let mut n = 0;
        while n < data.len() {
            match Frame::peek_header(&data[n..], self.recv_frame_limit()) {
                Ok(Some((_, body, hlen))) if n + hlen + body <= data.len() => n += hlen + body,
                Err(e) => return (n, Some(ConnectionError::Malformed(e))),
                _ => return (n, Some(ConnectionError::Malformed(frame::DecodeError::Truncated))),
            }
        }
        (n, None)
    }

    pub(super) fn on_frame(&mut self, now: Instant, f: Frame<'_>, base: &[u8]) -> R {
        if self.resume_request || self.auth_request {
            // The application has not decided yet: the dialer must wait for our HELLO.
            return match f {
                Frame::Close { status, message } => self.on_close(status, message),
                _ => Err(protocol("frame sent before the resumed handshake completed")),
            };
        }
        #[cfg(feature = "resume")]
        if self.resuming {
            return match f {
                Frame::Hello(h) => self.on_resume_answer(now, h),
                Frame::Close { status, message } => self.on_close(status, message),
                _ => Err(protocol("the first frame must be HELLO")),
            };
        }
        if self.state == State::Handshake {
            return match f {
                Frame::Hello(h) => self.on_hello(h),
                Frame::Close { status, message } => self.on_close(status, message),
                _ => Err(protocol("the first frame must be HELLO")),
            };
        }
        match f {
            Frame::Hello(_) => Err(protocol("second HELLO")),
            Frame::Close { status, message } => self.on_close(status, message),
            Frame::GoAway { bound, status, .. } => self.on_goaway(bound, status),
            Frame::Ping(d) => {
                // Every PING is answered (SPEC.md §7.6). A flood is bounded by the
                // unproductive-frame budget, and a peer that does not read what it caused by the
                // transmit queue (ENHANCE_YOUR_CALM either way).
                self.unproductive(now)?;
                self.push_control(&Frame::Pong(d))?;
                Ok(None)
            }
            Frame::Pong(d) => {
                match self.ping_out {
                    Some((seq, sent)) if seq.to_be_bytes() == d => {
                        self.ping_out = None;
                        self.record_rtt(now.saturating_duration_since(sent));
                    }
                    _ => self.unproductive(now)?,
                }
                Ok(None)
            }
            Frame::Ack(a) => self.on_ack(a),
            Frame::Call(r) => self.on_request(now, ty::CALL, r, None, base),
            Frame::Notify(r) => self.on_request(now, ty::NOTIFY, r, None, base),
            Frame::StreamOpen(r) => self.on_request(now, ty::STREAM_OPEN, r, None, base),
            Frame::Keyed { ty, key, req } => {
                self.check_keys_negotiated()?;
                self.on_request(now, ty, req, Some(key), base)
            }
            Frame::Signal { module, method, payload } => self.on_signal(module, method, None, payload, base),
            Frame::SignalKeyed { module, method, key, payload } => {
                self.check_keys_negotiated()?;
                self.on_signal(module, method, Some(key), payload, base)
            }
            Frame::Response { flags, id, status, total_len, payload } => {
                self.on_response(flags, id, status, total_len, payload, base)
            }
            Frame::Cancel { id } => self.on_cancel(now, id),
            Frame::StreamData { flags, id, total_len, payload } => {
                self.on_stream_data(flags, id, total_len, payload, base)
            }
            Frame::StreamFin { id, status } => self.on_stream_end(id, status, false),
            Frame::StreamReset { id, status } => self.on_stream_end(id, status, true),
            Frame::StreamCredit { id, msgs, bytes } => {
                if msgs == 0 && bytes == 0 {
                    self.unproductive(now)?;
                }
                self.on_stream_credit(id, msgs, bytes)
            }
            Frame::ConnCredit { bytes } => {
                if bytes == 0 {
                    self.unproductive(now)?;
                }
                self.conn_send += u64::from(bytes);
                if self.conn_send > MAX_CREDIT {
                    return Err(violation(Status::FLOW_CONTROL_ERROR, "connection credit above 2^32-1"));
                }
                self.wake_blocked();
                Ok(None)
            }
            #[cfg(feature = "resume")]
            Frame::StreamResume { id, received } => self.on_stream_resume(id, received),
            #[cfg(not(feature = "resume"))]
            Frame::StreamResume { .. } => Err(protocol("STREAM_RESUME outside a resumed session")),
            Frame::Continuation { flags, id, payload } => {
                if payload.is_empty() {
                    self.unproductive(now)?;
                }
                self.on_continuation(flags, id, payload)
            }
            Frame::Extension { .. } => {
                self.unproductive(now)?;
                Ok(None)
            }
        }
    }

    /// A schema key (KEY flag, SIGNAL_KEYED) is allowed only when both peers announced
    /// `schema_keys` (SPEC.md §5.8).
    pub(super) fn check_keys_negotiated(&self) -> Result<(), ConnectionError> {
        if self.features().contains(Features::SCHEMA_KEYS) {
            Ok(())
        } else {
            Err(protocol("schema key sent although schema_keys was not negotiated"))
        }
    }

    fn on_signal(
        &mut self,
        module: u32,
        method: u32,
        key: Option<SchemaKey>,
        payload: &[u8],
        base: &[u8],
    ) -> R {
        if payload.len() > self.config.max_message_size as usize {
            return Err(violation(Status::LIMIT_EXCEEDED, "SIGNAL larger than max_message_size"));
        }
        Ok(Some(Raw::Signal { method: MethodId { module, method }, key, src: range_in(base, payload) }))
    }

    fn peer_parity(&self) -> u64 {
        match self.role {
            Role::Dialer => 1,
            Role::Acceptor => 0,
        }
    }

    /// Validates an id the peer refers to: `Ok(Some(slot))`, `Ok(None)` for an exchange that is
    /// already over (frame ignored), or an error for an id never opened.
    pub(super) fn lookup(&self, id: u64, kind_stream: bool) -> Result<Option<usize>, ConnectionError> {
        let peers = id % 2 == self.peer_parity();
        let opened = if peers { self.peer_high.is_some_and(|h| id <= h) } else { id < self.next_id };
        if !opened {
            return Err(protocol("frame refers to an exchange that was never opened"));
        }
        let Some(i) = self.slots.find(id, |s| s.id == id) else { return Ok(None) };
        let is_stream = self.slots.get(i).is_some_and(|s| s.kind == Kind::Stream);
        if is_stream != kind_stream {
            return Err(protocol(if kind_stream {
                "stream frame on a call"
            } else {
                "call frame on a stream"
            }));
        }
        Ok(Some(i))
    }

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        t: u8,
        r: Request<'_>,
        key: Option<SchemaKey>,
        base: &[u8],
    ) -> R {
        if r.id % 2 != self.peer_parity() {
            return Err(protocol("exchange id has the opener's wrong parity"));
        }
        #[cfg(feature = "resume")]
        let cut = self.cut_request == Some(r.id);
        #[cfg(not(feature = "resume"))]
        let cut = false;
        #[cfg(feature = "resume")]
        if self.is_retransmission(r.id) {
            return self.on_retransmitted(t, r);
        }
        if self.peer_high.is_some_and(|h| r.id <= h) && !cut {
            return Err(protocol("exchange id reused or not increasing"));
        }
        self.peer_high = Some(self.peer_high.map_or(r.id, |h| h.max(r.id)));
        let size = r.total_len.unwrap_or(r.payload.len() as u64);
        if size > self.config.max_message_size as u64
            || (r.total_len.is_some() && size > self.reasm_max as u64)
        {
            return Err(violation(Status::LIMIT_EXCEEDED, "message larger than max_message_size"));
        }
        let kind = match t {
            ty::CALL => Kind::Call,
            ty::NOTIFY => Kind::Notify,
            _ => Kind::Stream,
        };
        let method = MethodId { module: r.module, method: r.method };
        let more = r.flags & flags::MORE != 0;
        let partial = |deliver| Partial {
            ty: t,
            id: r.id,
            total: size as usize,
            got: r.payload.len(),
            flags: r.flags,
            method,
            status: Status::OK,
            deliver,
            retx: false,
            key,
        };
        let refuse = |c: &mut Self, status: Status| -> R {
            #[cfg(feature = "datagram")]
            if let (Some(sess), false, false) = (c.sess.as_mut(), more, kind == Kind::Stream) {
                let d = super::session::request_digest(t, method, r.payload);
                sess.cache.insert(r.id, d, status, &[]);
            }
            if kind == Kind::Stream {
                c.push_control(&Frame::StreamReset { id: r.id, status })?;
            } else {
                c.push_control(&Frame::Response {
                    flags: 0,
                    id: r.id,
                    status,
                    total_len: None,
                    payload: &[],
                })?;
            }
            if more {
                c.begin_partial(partial(false), r.payload)?;
            }
            // A refused retransmission of a request cut by the loss may be the last thing a
            // drain waited for.
            c.check_drained();
            Ok(None)
        };
        // A request cut by the loss is below the bound of any GOAWAY we sent since (its id was
        // the highest received, SPEC.md §7.7.1): we promised to process it, so its
        // retransmission is not refused (§13.5).
        if self.goaway_sent && !cut {
            return refuse(self, Status::UNAVAILABLE);
        }
        let (count, limit) = if kind == Kind::Stream {
            (self.in_streams, self.config.max_concurrent_streams)
        } else {
            (self.in_calls, self.config.max_concurrent_calls)
        };
        if count >= limit {
            if self.resumed {
                // SPEC.md §13.5: after a resumption the peer may count an exchange as over whose
                // end the loss kept from us; refuse the new one instead of failing the session.
                return refuse(self, Status::RESOURCE_EXHAUSTED);
            }
            return Err(violation(Status::LIMIT_EXCEEDED, "more concurrent exchanges than announced"));
        }
        let deadline = if r.budget_us == 0 { Instant::MAX } else { now + Duration::from_micros(r.budget_us) };
        let mut slot = Slot::new(r.id, kind, false, deadline);
        slot.assembling = more;
        #[cfg(feature = "datagram")]
        if self.sess.is_some() && !more {
            slot.digest = super::session::request_digest(t, method, r.payload);
        }
        if kind == Kind::Stream {
            slot.s.send_msgs = self.peer.stream_credit_msgs;
            slot.s.send_bytes = self.peer.stream_credit_bytes;
            slot.s.recv_msgs = self.config.stream_credit_msgs;
            slot.s.recv_bytes = self.config.stream_credit_bytes;
            slot.s.recv_terminal = r.flags & flags::FIN != 0;
        }
        if self.slots.insert(r.id, slot).is_err() {
            // Our own storage is smaller than the limits we announced: not the peer's fault.
            return refuse(self, Status::RESOURCE_EXHAUSTED);
        }
        if kind == Kind::Stream {
            self.in_streams += 1;
            self.stats.streams_opened += 1;
        } else {
            self.in_calls += 1;
            self.stats.calls_accepted += 1;
        }
        if more {
            self.begin_partial(partial(true), r.payload)?;
            return Ok(None);
        }
        Ok(Some(Raw::Request {
            id: r.id,
            kind: request_kind(kind, r.flags),
            method,
            deadline: (deadline != Instant::MAX).then_some(deadline),
            key,
            src: range_in(base, r.payload),
        }))
    }

    fn on_response(
        &mut self,
        fl: u8,
        id: u64,
        status: Status,
        total: Option<u64>,
        payload: &[u8],
        base: &[u8],
    ) -> R {
        if id % 2 == self.peer_parity() {
            return Err(protocol("RESPONSE to an exchange the peer opened"));
        }
        let size = total.unwrap_or(payload.len() as u64);
        let more = fl & flags::MORE != 0;
        let mut partial = Partial {
            ty: ty::RESPONSE,
            id,
            total: size as usize,
            got: payload.len(),
            flags: fl,
            method: MethodId::new(0, 0),
            status,
            deliver: false,
            retx: false,
            key: None,
        };
        if size > self.config.max_message_size as u64 || (more && size > self.reasm_max as u64) {
            return Err(violation(Status::LIMIT_EXCEEDED, "message larger than max_message_size"));
        }
        let Some(i) = self.lookup(id, false)? else {
            if more {
                self.begin_partial(partial, payload)?;
            }
            return Ok(None);
        };
        let (kind, resolved) = self.slots.get(i).map(|s| (s.kind, s.resolved)).unwrap_or((Kind::Call, true));
        // SPEC.md §7.2, §8.7: a notification's answer carries nothing but a status body.
        if kind == Kind::Notify && size != 0 && !self.status_body_allowed(status) {
            return Err(protocol("RESPONSE to a notification carries a payload"));
        }
        if more {
            // The call stays open (and resolvable, e.g. by a closing connection) until the whole
            // response has arrived.
            partial.deliver = true;
            let mut counted = false;
            if let Some(s) = self.slots.get_mut(i) {
                // SPEC.md §7.1.1: the first RESPONSE frame stops the deadline and frees the
                // concurrency slot; the exchange stays tracked until the message is complete.
                s.assembling = true;
                s.deadline = Instant::MAX;
                counted = !core::mem::replace(&mut s.uncounted, true);
            }
            if counted {
                self.out_calls = self.out_calls.saturating_sub(1);
            }
            self.begin_partial(partial, payload)?;
            return Ok(None);
        }
        self.free_slot(i);
        self.note_response(id);
        Ok((!resolved).then(|| Raw::Response { id, status, src: range_in(base, payload) }))
    }

    /// In a session, the RESPONSE for our exchange `id` has fully arrived: acknowledge it.
    fn note_response(&mut self, id: u64) {
        #[cfg(feature = "datagram")]
        if let Some(sess) = self.sess.as_mut() {
            sess.acks.push(self.last_recv, id);
        }
        #[cfg(not(feature = "datagram"))]
        let _ = id;
    }

    /// ACK (SPEC.md §4.6, §13.6): the peer received these answers; drop them from the reply
    /// cache. Without a session there is no cache and a well-formed ACK is ignored.
    fn on_ack(&mut self, a: frame::Ack<'_>) -> R {
        #[cfg(feature = "datagram")]
        if self.sess.is_some() {
            let parity = self.peer_parity();
            let high = self.peer_high;
            for (first, n) in a.iter() {
                // The decoder guarantees n ≥ 1 and no overflow.
                let last = first + 2 * (n - 1);
                if first % 2 != parity || !high.is_some_and(|h| last <= h) {
                    return Err(protocol("ACK names an exchange the peer never opened"));
                }
                if let Some(sess) = self.sess.as_mut() {
                    sess.cache.remove_range(first, last);
                }
            }
        }
        #[cfg(not(feature = "datagram"))]
        let _ = a;
        Ok(None)
    }

    fn on_cancel(&mut self, now: Instant, id: u64) -> R {
        if id % 2 != self.peer_parity() {
            return Err(protocol("CANCEL for an exchange this side opened"));
        }
        // CANCEL carries no reason. One that arrives when this side's deadline is about to pass
        // was driven by the caller's deadline, which passes first by the one-way delay
        // (SPEC.md §7.5): the application is told DEADLINE_EXCEEDED, as if this side's timer
        // had fired first.
        let margin = self.stats.srtt.unwrap_or_default().max(DEADLINE_CANCEL_MARGIN);
        let Some(i) = self.lookup(id, false)? else { return Ok(None) };
        let Some(s) = self.slots.get_mut(i) else { return Ok(None) };
        if s.cancelled.is_none() {
            let reason = if s.deadline != Instant::MAX && s.deadline.saturating_duration_since(now) <= margin
            {
                Status::DEADLINE_EXCEEDED
            } else {
                Status::CANCELLED
            };
            s.cancelled = Some(reason);
            s.deadline = Instant::MAX;
            if !s.assembling {
                self.set_pending(i, Pending::Cancelled(reason));
            }
        }
        Ok(None)
    }

    fn on_stream_data(&mut self, fl: u8, id: u64, total: Option<u64>, payload: &[u8], base: &[u8]) -> R {
        let size = total.unwrap_or(payload.len() as u64);
        let more = fl & flags::MORE != 0;
        let mut partial = Partial {
            ty: ty::STREAM_DATA,
            id,
            total: size as usize,
            got: payload.len(),
            flags: fl,
            method: MethodId::new(0, 0),
            status: Status::OK,
            deliver: false,
            retx: false,
            key: None,
        };
        if size > self.config.max_message_size as u64 || (more && size > self.reasm_max as u64) {
            return Err(violation(Status::LIMIT_EXCEEDED, "stream item larger than max_message_size"));
        }
        if self.partial.is_some_and(|p| p.id == id) {
            return Err(protocol("STREAM_DATA while an item of the same stream is still being reassembled"));
        }
        let Some(i) = self.lookup(id, true)? else {
            // The stream is over on our side; the bytes still count against the connection
            // window, which we restore at once.
            self.take_conn_credit(size)?;
            self.conn_grant += size;
            self.flush_conn_grant();
            if more {
                self.begin_partial(partial, payload)?;
            }
            return Ok(None);
        };
        let conn_recv = self.conn_recv;
        let Some(s) = self.slots.get_mut(i) else { return Ok(None) };
        if s.s.recv_terminal {
            return Err(protocol("STREAM_DATA after the sender ended its direction"));
        }
        if s.s.recv_msgs == 0 || u64::from(s.s.recv_bytes) < size || conn_recv < size {
            return Err(violation(Status::FLOW_CONTROL_ERROR, "stream data beyond the granted credit"));
        }
        if !more {
            s.s.recv_items += 1;
        }
        s.s.recv_msgs -= 1;
        s.s.recv_bytes -= size as u32;
        let discard = s.s.we_reset;
        if !discard {
            s.s.unconsumed_msgs += 1;
            s.s.unconsumed_bytes += size as u32;
            self.conn_unconsumed += size;
        }
        self.conn_recv -= size;
        if discard {
            self.conn_grant += size;
            self.flush_conn_grant();
        }
        partial.deliver = !discard;
        if more {
            self.begin_partial(partial, payload)?;
            return Ok(None);
        }
        Ok((!discard).then(|| Raw::StreamData { id, src: range_in(base, payload) }))
    }

    fn take_conn_credit(&mut self, size: u64) -> Result<(), ConnectionError> {
        if self.conn_recv < size {
            return Err(violation(Status::FLOW_CONTROL_ERROR, "stream data beyond the connection credit"));
        }
        self.conn_recv -= size;
        Ok(())
    }

    fn on_stream_end(&mut self, id: u64, status: Status, reset: bool) -> R {
        let Some(i) = self.lookup(id, true)? else { return Ok(None) };
        if reset && self.slots.get(i).is_some_and(|s| s.s.await_resume) {
            // SPEC.md §13.7 step 3: a STREAM_RESET also ends the wait for STREAM_RESUME; what
            // we held back (our answer to a reset, say) may go now.
            if let Some(s) = self.slots.get_mut(i) {
                s.s.await_resume = false;
                s.s.resending = false;
                // Our terminal may have been lost with the old transport and the peer, having
                // reset, still needs one from us: send it again, as a reset (idempotent).
                if s.s.term.is_some() && !s.s.term_pending && !s.s.open_fin {
                    let st = match s.s.term {
                        Some((true, st)) => st,
                        _ => Status::CANCELLED,
                    };
                    s.s.term = Some((true, st));
                    s.s.term_pending = true;
                }
            }
            self.flush_stream_terminal(i);
        }
        let Some(i) = self.lookup(id, true)? else { return Ok(None) };
        if self.partial.is_some_and(|p| p.id == id) {
            if !reset {
                return Err(protocol("STREAM_FIN inside a fragmented item"));
            }
            if let Some(p) = self.partial.as_mut() {
                p.deliver = false;
            }
        }
        if reset && self.slots.get(i).is_some_and(|s| s.assembling && !s.outbound) {
            // The application never saw this stream: answer for it and forget it.
            if let Some(p) = self.partial.as_mut().filter(|p| p.id == id) {
                p.deliver = false;
            }
            self.push_control(&Frame::StreamReset { id, status: Status::CANCELLED })?;
            self.free_slot(i);
            return Ok(None);
        }
        let Some(s) = self.slots.get_mut(i) else { return Ok(None) };
        if s.s.recv_terminal && !reset {
            return Err(protocol("second STREAM_FIN"));
        }
        if reset && s.s.peer_reset {
            return Ok(None);
        }
        let was_over = s.s.recv_terminal && s.s.sent_terminal;
        s.s.recv_terminal = true;
        // After a resumption, a peer that freed the stream answers REPLY_EVICTED; if both
        // directions had already ended here, the application has its outcome: nothing to report.
        let silent = s.s.we_reset || (reset && status == Status::REPLY_EVICTED && was_over);
        let mut answer = false;
        if reset {
            s.s.peer_reset = true;
            s.deadline = Instant::MAX;
            if s.pending == Pending::Writable {
                s.pending = Pending::None;
                self.pending_slots = self.pending_slots.saturating_sub(1);
            }
            // An opener answers a reset at once; a responder answers when its application lets
            // go of the stream (stream_reset / stream_finish), so its handler's lifetime stays
            // counted against the concurrency limit.
            if s.outbound && !s.s.sent_terminal {
                s.s.sent_terminal = true;
                s.s.we_reset = true;
                answer = true;
            }
        }
        if answer {
            self.send_terminal(i, true, Status::CANCELLED).map_err(|_| {
                violation(Status::ENHANCE_YOUR_CALM, "peer does not read: transmit queue full")
            })?;
        }
        self.settle(i);
        if silent {
            return Ok(None);
        }
        if reset {
            if let Some(s) = self.slots.get_mut(i) {
                s.s.reported = true;
            }
        }
        Ok(Some(if reset { Raw::StreamReset { id, status } } else { Raw::StreamFin { id, status } }))
    }

    fn on_stream_credit(&mut self, id: u64, msgs: u32, bytes: u32) -> R {
        let Some(i) = self.lookup(id, true)? else { return Ok(None) };
        let conn_send = self.conn_send;
        let Some(s) = self.slots.get_mut(i) else { return Ok(None) };
        let m = u64::from(s.s.send_msgs) + u64::from(msgs);
        let b = u64::from(s.s.send_bytes) + u64::from(bytes);
        if m > MAX_CREDIT || b > MAX_CREDIT {
            return Err(violation(Status::FLOW_CONTROL_ERROR, "stream credit above 2^32-1"));
        }
        s.s.send_msgs = m as u32;
        s.s.send_bytes = b as u32;
        #[cfg(feature = "resume")]
        self.confirm_items(i, msgs);
        let Some(s) = self.slots.get_mut(i) else { return Ok(None) };
        if s.s.blocked && s.s.send_msgs > 0 && conn_send > 0 {
            s.s.blocked = false;
            self.set_pending(i, Pending::Writable);
        }
        Ok(None)
    }

    /// Reports `Writable` for every stream that was refused for lack of credit.
    fn wake_blocked(&mut self) {
        for i in 0..self.slots.capacity_hint() {
            let wake = match self.slots.get_mut(i) {
                Some(s) if s.s.blocked && s.s.send_msgs > 0 => {
                    s.s.blocked = false;
                    true
                }
                _ => false,
            };
            if wake {
                self.set_pending(i, Pending::Writable);
            }
        }
    }

    pub(super) fn begin_partial(&mut self, p: Partial, chunk: &[u8]) -> Result<(), ConnectionError> {
        if self.partial.is_some() {
            return Err(protocol("a fragmented message started before the previous one finished"));
        }
        self.reasm.clear();
        if p.deliver {
            self.append_partial(chunk)?;
        }
        self.partial = Some(p);
        Ok(())
    }

    fn append_partial(&mut self, chunk: &[u8]) -> Result<(), ConnectionError> {
        let buf = self.reasm.spare(chunk.len());
        if buf.len() < chunk.len() {
            return Err(violation(Status::LIMIT_EXCEEDED, "message larger than the reassembly buffer"));
        }
        buf[..chunk.len()].copy_from_slice(chunk);
        self.reasm.commit(chunk.len());
        Ok(())
    }

    fn on_continuation(&mut self, fl: u8, id: u64, chunk: &[u8]) -> R {
        let Some(mut p) = self.partial else {
            return Err(protocol("CONTINUATION without a fragmented message in progress"));
        };
        if p.id != id {
            return Err(protocol("CONTINUATION for another exchange than the message in progress"));
        }
        p.got += chunk.len();
        let last = fl & flags::MORE == 0;
        if p.got > p.total || (last && p.got != p.total) {
            return Err(protocol("fragment lengths do not add up to total_len"));
        }
        if p.deliver {
            self.append_partial(chunk)?;
        }
        if !last {
            self.partial = Some(p);
            return Ok(None);
        }
        self.partial = None;
        if p.ty == ty::STREAM_DATA {
            if let Some(s) = self.slots.find(id, |s| s.id == id).and_then(|i| self.slots.get_mut(i)) {
                s.s.recv_items += 1;
            }
        }
        if !p.deliver {
            self.reasm.clear();
            return Ok(None);
        }
        #[cfg(feature = "resume")]
        if p.retx {
            let data = core::mem::take(&mut self.reasm);
            let res = self.answer_retransmission(p.ty, id, p.method, data.data());
            self.reasm = data;
            self.reasm.clear();
            res?;
            return Ok(None);
        }
        self.reasm_delivered = true;
        let raw = match p.ty {
            ty::RESPONSE => {
                let Some(i) = self.slots.find(id, |s| s.id == id && s.outbound) else {
                    self.reasm_delivered = false;
                    self.reasm.clear();
                    return Ok(None);
                };
                let resolved = self.slots.get(i).is_some_and(|s| s.resolved);
                self.free_slot(i);
                self.note_response(id);
                if resolved {
                    self.reasm_delivered = false;
                    self.reasm.clear();
                    return Ok(None);
                }
                Raw::Response { id, status: p.status, src: Src::Reasm }
            }
            ty::STREAM_DATA => Raw::StreamData { id, src: Src::Reasm },
            t => {
                let kind = match t {
                    ty::CALL => Kind::Call,
                    ty::NOTIFY => Kind::Notify,
                    _ => Kind::Stream,
                };
                let Some(i) = self.slots.find(id, |s| s.id == id && !s.outbound) else {
                    self.reasm_delivered = false;
                    self.reasm.clear();
                    return Ok(None);
                };
                let mut deadline = None;
                let mut cancelled = None;
                #[cfg(feature = "datagram")]
                let digest = self
                    .sess
                    .is_some()
                    .then(|| super::session::request_digest(t, p.method, self.reasm.data()));
                if let Some(s) = self.slots.get_mut(i) {
                    #[cfg(feature = "datagram")]
                    if let Some(d) = digest {
                        s.digest = d;
                    }
                    s.assembling = false;
                    deadline = (s.opened_deadline != Instant::MAX).then_some(s.opened_deadline);
                    cancelled = s.cancelled;
                }
                if let Some(st) = cancelled {
                    // Cancelled or expired while still arriving: deliver the request, then that.
                    let p = if kind == Kind::Stream { Pending::Reset(st) } else { Pending::Cancelled(st) };
                    self.set_pending(i, p);
                }
                Raw::Request {
                    id,
                    kind: request_kind(kind, p.flags),
                    method: p.method,
                    deadline,
                    key: p.key,
                    src: Src::Reasm,
                }
            }
        };
        Ok(Some(raw))
    }
}

fn request_kind(kind: Kind, fl: u8) -> RequestKind {
    match kind {
        Kind::Call => RequestKind::Call,
        Kind::Notify => RequestKind::Notify,
        Kind::Stream => RequestKind::Stream { half_closed: fl & flags::FIN != 0 },
    }
}
