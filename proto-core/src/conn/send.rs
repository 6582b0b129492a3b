//! Actions: the application opens, answers, cancels and ends exchanges; frames are queued for
//! `poll_transmit` (SPEC.md §7, §9, §10).

use super::{Connection, Kind, Pending, Slot, State};
use crate::config::{Features, Transport};
use crate::error::{ApiError, ConnectionError};
use crate::event::{MethodId, RequestKind, SchemaKey};
use crate::frame::{self, flags, Frame, Hello, Params, Request, MAX_REASON_LEN};
use crate::status::Status;
use crate::time::Instant;
use crate::varint;

/// Transmit space kept free for control frames (PONG, CANCEL, credit, RESET, CLOSE), so that
/// back-pressure on application data never blocks the protocol's own progress: 4 KiB, or a
/// quarter of a smaller transmit buffer.
const CONTROL_RESERVE: usize = 4096;

impl<'a> Connection<'a> {
    // ------------------------------------------------------------------ opening exchanges

    /// Sends a unary call and returns its id. The outcome arrives as [`Event::Response`] or
    /// [`Event::Failed`](crate::Event::Failed) (or is settled by [`cancel`](Self::cancel)).
    ///
    /// `deadline` (on our clock) travels as a relative budget; when it passes, the call fails
    /// with DEADLINE_EXCEEDED and the peer is told to stop.
    ///
    /// [`Event::Response`]: crate::Event::Response
    pub fn call(
        &mut self,
        now: Instant,
        method: MethodId,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<u64, ApiError> {
        self.open(now, Kind::Call, method, None, payload, deadline, false)
    }

    /// Sends a reliable notification: the peer acknowledges it with a status
    /// ([`Event::Response`](crate::Event::Response) with an empty payload), or it fails like a call.
    pub fn notify(
        &mut self,
        now: Instant,
        method: MethodId,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<u64, ApiError> {
        self.open(now, Kind::Notify, method, None, payload, deadline, false)
    }

    /// Opens a stream with an initial payload and returns its id. With `half_close`, this side
    /// sends nothing more (a server-streaming call).
    pub fn open_stream(
        &mut self,
        now: Instant,
        method: MethodId,
        payload: &[u8],
        deadline: Option<Instant>,
        half_close: bool,
    ) -> Result<u64, ApiError> {
        self.open(now, Kind::Stream, method, None, payload, deadline, half_close)
    }

    /// Opens an exchange of any kind — [`call`](Self::call), [`notify`](Self::notify) or
    /// [`open_stream`](Self::open_stream) (`half_closed`: the opener sends no items) — carrying
    /// the method's schema `key` (SPEC.md §7.10). The key is sent only when both peers
    /// announced `schema_keys` ([`features`](Self::features)); otherwise this is the unkeyed
    /// opening.
    pub fn open_keyed(
        &mut self,
        now: Instant,
        kind: RequestKind,
        method: MethodId,
        key: Option<SchemaKey>,
        payload: &[u8],
        deadline: Option<Instant>,
    ) -> Result<u64, ApiError> {
        let (k, half) = match kind {
            RequestKind::Call => (Kind::Call, false),
            RequestKind::Notify => (Kind::Notify, false),
            RequestKind::Stream { half_closed } => (Kind::Stream, half_closed),
        };
        self.open(now, k, method, key, payload, deadline, half)
    }

    /// Sends an unreliable notification (SIGNAL): once, never acknowledged. It must fit one frame.
    pub fn signal(&mut self, method: MethodId, payload: &[u8]) -> Result<(), ApiError> {
        self.signal_keyed(method, None, payload)
    }

    /// [`signal`](Self::signal) carrying the method's schema `key` (a SIGNAL_KEYED frame, SPEC.md
    /// §4.21) when both peers announced `schema_keys`; otherwise a plain SIGNAL.
    pub fn signal_keyed(
        &mut self,
        method: MethodId,
        key: Option<SchemaKey>,
        payload: &[u8],
    ) -> Result<(), ApiError> {
        self.check_open(true)?;
        let (module, m) = (method.module, method.method);
        let f = match self.key_to_send(key) {
            Some(key) => Frame::SignalKeyed { module, method: m, key, payload },
            None => Frame::Signal { module, method: m, payload },
        };
        let limit = self.send_frame_limit();
        if f.body_len() > limit {
            return Err(ApiError::TooLarge {
                size: payload.len(),
                limit: limit.saturating_sub(f.body_len() - payload.len()),
            });
        }
        self.push(&f, false)
    }

    fn check_open(&self, allow_draining: bool) -> Result<(), ApiError> {
        match self.state {
            // Suspended: opening calls is allowed (they wait in `open`); anything that needs
            // the transport now is not.
            State::Handshake | State::Suspended => Err(ApiError::NotConnected),
            State::Open => Ok(()),
            State::Draining if allow_draining => Ok(()),
            State::Draining => Err(ApiError::GoingAway),
            State::Closed => Err(ApiError::Closed),
        }
    }

    /// The key an opening carries: only when `schema_keys` was negotiated (SPEC.md §5.8).
    pub(super) fn key_to_send(&self, key: Option<SchemaKey>) -> Option<SchemaKey> {
        key.filter(|_| self.features().contains(Features::SCHEMA_KEYS))
    }

    /// Whether a RESPONSE with `status` may carry a status body (SPEC.md §8.7).
    pub(super) fn status_body_allowed(&self, status: Status) -> bool {
        status != Status::OK && self.features().contains(Features::ERROR_DETAILS)
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        now: Instant,
        kind: Kind,
        method: MethodId,
        key: Option<SchemaKey>,
        payload: &[u8],
        deadline: Option<Instant>,
        half_close: bool,
    ) -> Result<u64, ApiError> {
        if self.state != State::Suspended {
            self.check_open(false)?;
        }
        // --- datagram mode: no streams, ids within the peer's duplicate window (SPEC.md §14)
        #[cfg(feature = "datagram")]
        self.dgram_check_open(now, kind)?;
        if kind == Kind::Stream && !crate::config::STREAMS {
            return Err(ApiError::Unsupported(
                "streams: tandem-core is built without its `streams` feature (SPEC.md §7.4.7)",
            ));
        }
        if kind == Kind::Stream {
            let limit = self.peer.max_concurrent_streams.min(self.config.max_outbound_streams);
            if self.out_streams >= limit {
                return Err(ApiError::TooManyStreams { limit });
            }
        } else {
            let limit = self.peer.max_concurrent_calls.min(self.config.max_outbound_calls);
            if self.out_calls >= limit {
                return Err(ApiError::TooManyCalls { limit });
            }
        }
        self.check_message_size(payload.len())?;
        let id = self.next_id;
        if id > varint::MAX {
            return Err(ApiError::IdsExhausted);
        }
        if !self.slots.has_room() {
            let limit = self.slots.len() as u32;
            return Err(if kind == Kind::Stream {
                ApiError::TooManyStreams { limit }
            } else {
                ApiError::TooManyCalls { limit }
            });
        }
        #[cfg(feature = "datagram")]
        if let Some(sess) = &self.sess {
            if !sess.outbox.has_room(payload.len()) {
                return Err(ApiError::RetainFull { limit: sess.outbox.max_bytes() });
            }
        }
        let budget_us =
            deadline.map_or(0, |d| d.as_micros().saturating_sub(now.as_micros()).clamp(1, varint::MAX));
        let fin = if half_close && kind == Kind::Stream { flags::FIN } else { 0 };
        let (module, m) = (method.module, method.method);
        // Suspended, or still retransmitting after a resumption: the opening goes out later, in
        // id order, from the retained copy (SPEC.md §13.5).
        // Only a resumable session is ever suspended (`resume`), so without it the deferred
        // path and its size computation are left out of the image.
        let deferred =
            cfg!(feature = "resume") && (self.state == State::Suspended || self.resend_from.is_some());
        let ty = match kind {
            Kind::Call => frame::ty::CALL,
            Kind::Notify => frame::ty::NOTIFY,
            Kind::Stream => frame::ty::STREAM_OPEN,
        };
        // While suspended the peer's features are those of the session (SPEC.md §13.4).
        let wire_key = self.key_to_send(key);
        let make = |more, total_len, chunk| {
            let r =
                Request { flags: more | fin, id, module, method: m, budget_us, total_len, payload: chunk };
            Frame::open(ty, wire_key, r)
        };
        if deferred {
            // It will be sent later: it must be sendable then.
            let need = self.message_len(id, payload, make);
            let cap = self.app_tx_capacity();
            if need > cap {
                return Err(ApiError::TooLarge {
                    size: payload.len(),
                    limit: cap.saturating_sub(need - payload.len()),
                });
            }
        } else {
            self.push_message(id, payload, make)?;
        }
        let local_deadline = deadline.unwrap_or(Instant::MAX);
        let mut slot = Slot::new(id, kind, true, local_deadline);
        slot.s.on_wire = !deferred;
        if kind == Kind::Stream {
            slot.s.send_msgs = self.peer.stream_credit_msgs;
            slot.s.send_bytes = self.peer.stream_credit_bytes;
            slot.s.recv_msgs = self.config.stream_credit_msgs;
            slot.s.recv_bytes = self.config.stream_credit_bytes;
            slot.s.sent_terminal = half_close;
            slot.s.on_wire = !deferred;
            if half_close {
                slot.s.term = Some((false, Status::OK));
                slot.s.open_fin = true;
                slot.s.term_sent = !deferred;
            }
            self.out_streams += 1;
            self.stats.streams_opened += 1;
        } else {
            self.out_calls += 1;
            self.stats.calls_opened += 1;
        }
        if self.state == State::Suspended && !self.config.suspended_call_timeout.is_zero() {
            let until = now + self.config.suspended_call_timeout;
            if until < slot.deadline {
                slot.deadline = until;
                slot.suspend_wait = true;
            }
        }
        // Room was checked above, so this cannot fail.
        let _ = self.slots.insert(id, slot);
        #[cfg(feature = "datagram")]
        if let Some(sess) = self.sess.as_mut() {
            sess.outbox.insert(id, ty, method, fin != 0, key, payload);
        }
        // --- datagram mode: retransmit until answered (SPEC.md §14.4)
        #[cfg(feature = "datagram")]
        self.dgram_opened(now, id);
        self.next_id += 2;
        Ok(id)
    }

    fn check_message_size(&self, size: usize) -> Result<(), ApiError> {
        let limit = (self.peer.max_message_size as usize).min(self.app_tx_capacity());
        if size > limit {
            return Err(ApiError::TooLarge { size, limit });
        }
        Ok(())
    }

    // ------------------------------------------------------------------ answering

    /// Answers a call or reliable notification the peer opened. A notification's payload must be
    /// empty, except a status body (SPEC.md §8.7) with a non-OK status when `error_details` was
    /// negotiated ([`features`](Self::features)). If the peer cancelled the call or its deadline
    /// passed, the status is replaced by CANCELLED / DEADLINE_EXCEEDED and the payload dropped.
    /// Releases the exchange.
    pub fn respond(&mut self, id: u64, status: Status, payload: &[u8]) -> Result<(), ApiError> {
        if self.state == State::Closed {
            return Err(ApiError::Closed);
        }
        let i = self.find(id)?;
        let s = self.slots.get(i).ok_or(ApiError::UnknownId(id))?;
        if s.outbound {
            return Err(ApiError::WrongState("respond answers exchanges the peer opened; this one is ours"));
        }
        if s.kind == Kind::Stream {
            return Err(ApiError::WrongState("streams end with stream_finish or stream_reset"));
        }
        if s.assembling {
            return Err(ApiError::WrongState("the request has not been delivered yet"));
        }
        let (status, payload) = match s.cancelled {
            Some(st) => (st, &[][..]),
            None => (status, payload),
        };
        if s.kind == Kind::Notify && !payload.is_empty() && !self.status_body_allowed(status) {
            return Err(ApiError::WrongState("a notification's acknowledgement carries no payload"));
        }
        self.check_message_size(payload.len())?;
        self.push_message(id, payload, |more, total_len, chunk| Frame::Response {
            flags: more,
            id,
            status,
            total_len,
            payload: chunk,
        })?;
        self.cache_reply(i, status, payload);
        self.free_slot(i);
        Ok(())
    }

    /// In a session, keeps the answer to the peer's exchange in slot `i` for its retransmissions.
    pub(super) fn cache_reply(&mut self, i: usize, status: Status, payload: &[u8]) {
        #[cfg(feature = "datagram")]
        if let (Some(sess), Some(s)) = (self.sess.as_mut(), self.slots.get(i)) {
            sess.cache.insert(s.id, s.digest, status, payload);
        }
        #[cfg(not(feature = "datagram"))]
        let _ = (i, status, payload);
    }

    /// Sends pending ACKs (SPEC.md §13.6): when due at `now`, or whenever `piggyback` (other
    /// frames are about to be written anyway). ACKs are never retransmitted; if the transmit
    /// queue is full they wait.
    pub(super) fn flush_acks(&mut self, now: Instant, piggyback: bool) {
        #[cfg(feature = "datagram")]
        loop {
            let Some(sess) = self.sess.as_mut() else { return };
            match sess.acks.deadline() {
                Some(t) if piggyback || t <= now => {}
                _ => return,
            }
            if matches!(self.state, State::Handshake | State::Closed) {
                return;
            }
            let mut ranges = [(0u64, 0u64); frame::MAX_ACK_RANGES];
            let n = sess.acks.take_ranges(&mut ranges);
            let mut buf = [0u8; frame::MAX_ACK_RANGES * 16];
            let Some(ack) = frame::Ack::encode_into(&ranges[..n], &mut buf) else { return };
            if self.push(&Frame::Ack(ack), true).is_err() {
                return;
            }
        }
        #[cfg(not(feature = "datagram"))]
        let _ = (now, piggyback);
    }

    /// Cancels an exchange this side opened. A call or notification is settled at once (no
    /// event will follow for it) and the peer is told to stop; a stream is reset with CANCELLED.
    pub fn cancel(&mut self, id: u64) -> Result<(), ApiError> {
        if self.state == State::Closed {
            return Err(ApiError::Closed);
        }
        let i = self.find(id)?;
        let s = self.slots.get(i).ok_or(ApiError::UnknownId(id))?;
        if !s.outbound {
            return Err(ApiError::WrongState(
                "cancel is for exchanges this side opened; respond with CANCELLED",
            ));
        }
        if s.kind == Kind::Stream {
            return self.stream_reset(id, Status::CANCELLED);
        }
        if s.resolved {
            return Err(ApiError::WrongState("the call is already resolved"));
        }
        if s.assembling {
            return Err(ApiError::WrongState("the response is already arriving; it will be reported"));
        }
        // An opening not sent yet (suspended session) is followed by its CANCEL when it goes
        // out after the resumption (SPEC.md §13.5).
        if self.slots.get(i).is_some_and(|s| s.s.on_wire) {
            self.push(&Frame::Cancel { id }, true)?;
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.resolved = true;
            s.deadline = Instant::MAX;
            if s.pending != Pending::None {
                s.pending = Pending::None;
                self.pending_slots = self.pending_slots.saturating_sub(1);
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ streams

    fn find(&self, id: u64) -> Result<usize, ApiError> {
        self.slots.find(id, |s| s.id == id).ok_or(ApiError::UnknownId(id))
    }

    pub(super) fn find_stream(&self, id: u64) -> Result<usize, ApiError> {
        if self.state == State::Closed {
            return Err(ApiError::Closed);
        }
        let i = self.find(id)?;
        match self.slots.get(i) {
            Some(s) if s.kind == Kind::Stream => Ok(i),
            _ => Err(ApiError::WrongState("not a stream")),
        }
    }

    // ------------------------------------------------------------------ connection level

    /// Sends a PING now; the PONG updates [`Stats::rtt`](crate::Stats::rtt). Keepalive pings are
    /// sent automatically; this is for measuring on demand.
    pub fn ping(&mut self, now: Instant) -> Result<(), ApiError> {
        self.check_open(true)?;
        self.ping_seq += 1;
        let seq = self.ping_seq;
        self.push(&Frame::Ping(seq.to_be_bytes()), true)?;
        self.ping_out = Some((seq, now));
        self.stats.pings_sent += 1;
        Ok(())
    }

    /// Starts a graceful shutdown: the peer may open nothing new, exchanges in flight finish,
    /// then the connection closes with CLOSE(OK) — or with DEADLINE_EXCEEDED status after
    /// `Config::drain_timeout`.
    pub fn go_away(&mut self, now: Instant, status: Status, message: &[u8]) -> Result<(), ApiError> {
        self.check_open(true)?;
        if self.goaway_sent {
            return Ok(());
        }
        if message.len() > MAX_REASON_LEN {
            return Err(ApiError::FieldTooLong("message"));
        }
        // SPEC.md §7.7.1: past the last id the bound saturates at 2^62-1, which excludes nothing.
        let bound = self.peer_high.map_or(self.peer_parity_base(), |h| (h + 2).min(crate::varint::MAX));
        self.push(&Frame::GoAway { bound, status, message }, true)?;
        self.goaway_sent = true;
        self.session_ending = true;
        self.state = State::Draining;
        self.drain_deadline = now + self.config.drain_timeout;
        self.check_drained();
        Ok(())
    }

    fn peer_parity_base(&self) -> u64 {
        1 - (self.next_id % 2)
    }

    /// Closes the connection at once: CLOSE(status, message) is queued after whatever is already
    /// queued, every open exchange resolves (UNAVAILABLE), and [`Event::Closed`] follows.
    ///
    /// [`Event::Closed`]: crate::Event::Closed
    pub fn close(&mut self, _now: Instant, status: Status, message: &[u8]) {
        if self.state == State::Closed {
            return;
        }
        self.push_close(status, message);
        self.enter_closed(ConnectionError::LocallyClosed { status });
    }

    // ------------------------------------------------------------------ encoding

    /// Transmit bytes application frames may use.
    pub(super) fn app_tx_capacity(&self) -> usize {
        let cap = self.tx.capacity_max();
        cap - CONTROL_RESERVE.min(cap / 4)
    }

    /// Largest frame body we may send.
    pub(super) fn send_frame_limit(&self) -> usize {
        let peer = self.peer.max_frame_size as usize;
        match self.config.transport {
            Transport::Stream => peer,
            Transport::Packet { max_datagram } => {
                let mut d = max_datagram;
                if self.peer.max_datagram_size != 0 {
                    d = d.min(self.peer.max_datagram_size);
                }
                peer.min((d as usize).saturating_sub(frame::MAX_HEADER_LEN))
            }
            // --- datagram mode: one frame in one datagram (SPEC.md §14.7)
            Transport::Datagram { .. } => self.dgram_frame_limit(),
        }
    }

    /// Sends our terminal of stream `i` (STREAM_FIN or STREAM_RESET), or records it to be sent
    /// once the stream may send again (suspended session, waiting for STREAM_RESUME, or its
    /// STREAM_OPEN not out yet). The terminal is kept for retransmission (§13.7).
    pub(super) fn send_terminal(&mut self, i: usize, reset: bool, status: Status) -> Result<(), ApiError> {
        let suspended = self.state == State::Suspended;
        let Some(s) = self.slots.get(i) else { return Ok(()) };
        let (id, held) = (s.id, s.s.await_resume || (s.outbound && !s.s.on_wire));
        if !suspended && !held {
            let f = if reset { Frame::StreamReset { id, status } } else { Frame::StreamFin { id, status } };
            self.push(&f, true)?;
        }
        if let Some(s) = self.slots.get_mut(i) {
            if s.s.term.is_none() || reset {
                s.s.term = Some((reset, status));
                s.s.term_no = s.s.sent_items;
                s.s.open_fin = false;
            }
            s.s.term_pending = suspended || held;
            s.s.term_sent |= !(suspended || held);
        }
        Ok(())
    }

    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    /// Sends a terminal that waited (see [`send_terminal`](Self::send_terminal)), if the stream
    /// may send now.
    pub(super) fn flush_stream_terminal(&mut self, i: usize) {
        let Some(s) = self.slots.get(i) else { return };
        let held = s.s.await_resume || (s.outbound && !s.s.on_wire);
        if !s.s.term_pending || held || self.state == State::Suspended {
            return;
        }
        let (id, term, open_fin) = (s.id, s.s.term, s.s.open_fin);
        let ok = match term {
            Some(_) if open_fin => true,
            Some((true, status)) => self.push(&Frame::StreamReset { id, status }, true).is_ok(),
            Some((false, status)) => self.push(&Frame::StreamFin { id, status }, true).is_ok(),
            None => true,
        };
        if ok {
            if let Some(s) = self.slots.get_mut(i) {
                s.s.term_pending = false;
                s.s.term_sent = true;
            }
            self.settle(i);
        }
    }

    /// Queues one frame. Application frames leave [`CONTROL_RESERVE`] bytes free. While the
    /// session is suspended there is no transport: frames are dropped, and whatever matters is
    /// regenerated from the exchanges' state after the resumption (SPEC.md §13.4–§13.5).
    pub(super) fn push(&mut self, f: &Frame<'_>, control: bool) -> Result<(), ApiError> {
        self.push_sized(f, f.body_len(), control)
    }

    /// [`push`](Self::push) of a frame whose body length (`body`) is already known.
    fn push_sized(&mut self, f: &Frame<'_>, body: usize, control: bool) -> Result<(), ApiError> {
        if self.state == State::Suspended {
            return Ok(());
        }
        self.push_inner(f, body, control)
    }

    fn push_inner(&mut self, f: &Frame<'_>, body: usize, control: bool) -> Result<(), ApiError> {
        let n = 1 + varint::len(body as u64) + body;
        let cap = if control { self.tx.capacity_max() } else { self.app_tx_capacity() };
        if n > cap {
            return Err(ApiError::TooLarge { size: n, limit: cap });
        }
        if self.tx_total() + n > cap {
            return Err(ApiError::TxFull);
        }
        let buf = self.tx.spare(n);
        if buf.len() < n {
            return Err(ApiError::TxFull);
        }
        let written = f.encode_sized(body, buf).unwrap_or(0);
        self.tx.commit(written);
        self.tx_queued += written as u64;
        self.stats.frames_sent += 1;
        Ok(())
    }

    /// Queues a control frame from the receive path; a full queue means the peer is not
    /// reading what we owe it.
    pub(super) fn push_control(&mut self, f: &Frame<'_>) -> Result<(), ConnectionError> {
        self.push(f, true).map_err(|_| ConnectionError::Violation {
            status: Status::ENHANCE_YOUR_CALM,
            reason: "peer does not read: transmit queue full",
        })
    }

    /// Queues a message, split into a first frame and CONTINUATIONs when it exceeds the peer's
    /// frame size. All or nothing: on error nothing was queued.
    /// How a message too large for one frame is split: the payload bytes of its first frame and
    /// of each CONTINUATION.
    fn chunk_sizes<'p>(
        &self,
        id: u64,
        total: u64,
        make: &impl Fn(u8, Option<u64>, &'p [u8]) -> Frame<'p>,
    ) -> (usize, usize) {
        let limit = self.send_frame_limit();
        let first_fixed = make(flags::MORE, Some(total), &[]).body_len();
        let cont_fixed = Frame::Continuation { flags: flags::MORE, id, payload: &[] }.body_len();
        (limit.saturating_sub(first_fixed).max(1), limit.saturating_sub(cont_fixed).max(1))
    }

    /// Bytes `push_message` would queue for this message (all its frames).
    pub(super) fn message_len<'p>(
        &self,
        id: u64,
        payload: &'p [u8],
        make: impl Fn(u8, Option<u64>, &'p [u8]) -> Frame<'p>,
    ) -> usize {
        let whole = make(0, None, payload);
        if whole.body_len() <= self.send_frame_limit() || !crate::config::FRAGMENTATION {
            return whole.encoded_len();
        }
        let total = payload.len() as u64;
        let (first_chunk, chunk) = self.chunk_sizes(id, total, &make);
        let mut need = make(flags::MORE, Some(total), &payload[..first_chunk]).encoded_len();
        let mut rest = payload.len() - first_chunk;
        while rest > 0 {
            let c = rest.min(chunk);
            need += Frame::Continuation { flags: 0, id, payload: &payload[..c] }.encoded_len();
            rest -= c;
        }
        need
    }

    pub(super) fn push_message<'p>(
        &mut self,
        id: u64,
        payload: &'p [u8],
        make: impl Fn(u8, Option<u64>, &'p [u8]) -> Frame<'p>,
    ) -> Result<(), ApiError> {
        let limit = self.send_frame_limit();
        let whole = make(0, None, payload);
        let body = whole.body_len();
        if body <= limit {
            return self.push_sized(&whole, body, false);
        }
        // --- datagram mode, or a build without fragmentation: one frame (SPEC.md §9.6, §9.7)
        if self.is_datagram() || !crate::config::FRAGMENTATION {
            let fixed = whole.body_len() - payload.len();
            return Err(ApiError::TooLarge { size: payload.len(), limit: limit.saturating_sub(fixed) });
        }
        let total = payload.len() as u64;
        let (first_chunk, chunk) = self.chunk_sizes(id, total, &make);
        // The exact encoded size first, so that the message is queued whole or not at all.
        let need = self.message_len(id, payload, &make);
        let cap = self.app_tx_capacity();
        if need > cap {
            return Err(ApiError::TooLarge {
                size: payload.len(),
                limit: cap.saturating_sub(need - payload.len()),
            });
        }
        if self.tx_total() + need > cap {
            return Err(ApiError::TxFull);
        }
        self.push(&make(flags::MORE, Some(total), &payload[..first_chunk]), false)?;
        let mut off = first_chunk;
        while off < payload.len() {
            let end = (off + chunk).min(payload.len());
            let fl = if end < payload.len() { flags::MORE } else { 0 };
            self.push(&Frame::Continuation { flags: fl, id, payload: &payload[off..end] }, false)?;
            off = end;
        }
        Ok(())
    }

    pub(super) fn send_hello(&mut self, min: u32, max: u32, resume: bool) {
        let mut pbuf = [0u8; 128];
        let (params, n) = self.config.hello_params();
        let params = Params::encode_into(&params[..n], &mut pbuf).unwrap_or(Params::EMPTY);
        let (name, auth, mut session) = (self.me.0.clone(), self.me.1.clone(), self.me.2.clone());
        if self.role == crate::config::Role::Dialer && resume && !self.peer_session.get().is_empty() {
            // Resuming: present the acceptor's token (SPEC.md §13.3).
            session = self.peer_session.clone();
        }
        if self.role == crate::config::Role::Acceptor && !self.can_keep_session() {
            // No state to keep (no `resume` feature, or without `alloc` no session buffers from
            // `with_session_storage`): offer no resumption, an empty token (SPEC.md §13.2).
            session.set(&[]);
        }
        let hello = Frame::Hello(Hello {
            min_version: min,
            max_version: max,
            flags: if resume { Hello::RESUME } else { 0 },
            name: name.get(),
            auth: auth.get(),
            session: session.get(),
            params,
        });
        // The transmit queue is empty when HELLO is sent, and HELLO is at most ~1.5 KiB.
        let _ = self.push_inner(&hello, hello.body_len(), true);
    }

    /// Queues CLOSE, dropping queued data if that is the only way to fit it.
    pub(super) fn push_close(&mut self, status: Status, message: &[u8]) {
        let message = &message[..message.len().min(MAX_REASON_LEN)];
        let f = Frame::Close { status, message };
        // --- datagram mode: remember the CLOSE to repeat it (SPEC.md §14.8)
        #[cfg(feature = "datagram")]
        self.dgram_note_close(&f);
        if self.push(&f, true).is_err() {
            // No room: give up what is queued, but finish the frame the transport has already
            // taken part of, so that the CLOSE is read as a frame (SPEC.md §7.8).
            self.clear_tx();
            let _ = self.push(&f, true);
        }
    }
}

/// Without an allocator there are no splices (see `splice.rs`): the transmit queue is all.
#[cfg(not(feature = "alloc"))]
impl Connection<'_> {
    /// Bytes queued for transmission.
    pub(super) fn tx_total(&self) -> usize {
        self.tx.len()
    }

    /// Empties the transmit queue.
    pub(super) fn tx_clear(&mut self) {
        self.tx.clear();
    }

    /// The next piece of queued bytes.
    pub(super) fn tx_piece(&self) -> &[u8] {
        self.tx.data()
    }

    /// Marks `n` bytes of [`tx_piece`](Self::tx_piece) as sent (at most its length).
    pub(super) fn tx_advance(&mut self, n: usize) {
        let n = n.min(self.tx.data().len());
        self.consume_tx(n);
    }

    /// The queued bytes in order, as up to `out.len()` slices (for a vectored write); returns
    /// how many were filled. Byte streams only; what [`transmit_data`](Self::transmit_data)
    /// returns is the first of them.
    pub fn transmit_pieces<'s>(&'s self, out: &mut [&'s [u8]]) -> usize {
        let (r1, r2) = self.tx.regions();
        let mut k = 0;
        for r in [r1, r2] {
            if let (false, Some(slot)) = (r.is_empty(), out.get_mut(k)) {
                *slot = r;
                k += 1;
            }
        }
        k
    }
}
