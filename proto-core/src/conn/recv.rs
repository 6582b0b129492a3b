//! Inbound frames: validation against the state machines and limits (SPEC.md §5–§10).

use super::{Connection, Kind, Partial, Pending, Raw, Slot, Src, State};
use crate::config::Features;
use crate::config::{Role, MAX_CREDIT, MIN_FRAME_SIZE};
use crate::error::ConnectionError;
use crate::event::{MethodId, RequestKind, SchemaKey};
use crate::frame::{self, flags, ty, Decoded, Frame, Request};
use crate::status::Status;
use crate::time::Instant;

/// A CANCEL received less than this (or the smoothed RTT, if larger) before the exchange's
/// deadline is reported as DEADLINE_EXCEEDED (SPEC.md §7.5).
const DEADLINE_CANCEL_MARGIN_US: u64 = 10_000;

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
pub(super) fn range_in(outer: &[u8], inner: &[u8]) -> Src {
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
                        self.record_rtt(now.as_micros().saturating_sub(sent.as_micros()));
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
            #[cfg(feature = "streams")]
            Frame::StreamData { flags, id, total_len, payload } => {
                self.on_stream_data(flags, id, total_len, payload, base)
            }
            #[cfg(feature = "streams")]
            Frame::StreamFin { id, status } => self.on_stream_end(id, status, false),
            #[cfg(feature = "streams")]
            Frame::StreamReset { id, status } => self.on_stream_end(id, status, true),
            #[cfg(feature = "streams")]
            Frame::StreamCredit { id, msgs, bytes } => {
                if msgs == 0 && bytes == 0 {
                    self.unproductive(now)?;
                }
                self.on_stream_credit(id, msgs, bytes)
            }
            // --- a build without streams: no stream is ever open (SPEC.md §7.4.7)
            #[cfg(not(feature = "streams"))]
            Frame::StreamData { flags, id, total_len, payload } => {
                self.ignore_stream_frame(now, id, Some((flags, total_len, payload)))
            }
            #[cfg(not(feature = "streams"))]
            Frame::StreamFin { id, .. } | Frame::StreamReset { id, .. } | Frame::StreamCredit { id, .. } => {
                self.ignore_stream_frame(now, id, None)
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
        // A build without streams refuses every STREAM_OPEN, keeping no state (SPEC.md §7.4.7).
        if kind == Kind::Stream && !crate::config::STREAMS {
            return refuse(self, Status::UNIMPLEMENTED);
        }
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
        let deadline = if r.budget_us == 0 { Instant::MAX } else { now.plus_us(r.budget_us) };
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
    pub(super) fn note_response(&mut self, id: u64) {
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
        // In microseconds: no 64-bit division (see `time::micros_to_duration`).
        let srtt = self.stats.srtt.unwrap_or_default();
        let srtt_us =
            srtt.as_secs().saturating_mul(1_000_000).saturating_add(u64::from(srtt.subsec_micros()));
        let margin = srtt_us.max(DEADLINE_CANCEL_MARGIN_US);
        let Some(i) = self.lookup(id, false)? else { return Ok(None) };
        let Some(s) = self.slots.get_mut(i) else { return Ok(None) };
        if s.cancelled.is_none() {
            let reason = if s.deadline != Instant::MAX
                && s.deadline.as_micros().saturating_sub(now.as_micros()) <= margin
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
}

pub(super) fn request_kind(kind: Kind, fl: u8) -> RequestKind {
    match kind {
        Kind::Call => RequestKind::Call,
        Kind::Notify => RequestKind::Notify,
        Kind::Stream => RequestKind::Stream { half_closed: fl & flags::FIN != 0 },
    }
}
