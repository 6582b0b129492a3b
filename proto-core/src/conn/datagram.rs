//! Datagram mode (SPEC.md §14): tandem over an unreliable, unordered datagram service (UDP).
//!
//! One [`Connection`] is one *association* (one remote address); the runtime demultiplexes
//! datagrams by source address and creates an acceptor association only for a datagram whose
//! first frame is HELLO. Everything here is reached through small hooks in the other `conn`
//! files, each marked `datagram mode`:
//!
//! * receive: a datagram is decoded whole before any frame is processed, and dropped whole on
//!   any decode error, oversize, or (before the peer's HELLO) a first frame other than
//!   HELLO/CLOSE ([`Stats::datagrams_dropped`](crate::Stats::datagrams_dropped));
//! * every decoded frame first passes [`Connection::dgram_frame`], which implements the
//!   duplicate window, the reply cache rows, CANCEL, ACK, stream refusal and the HELLO copies;
//! * send: one datagram per `poll_transmit`, no fragmentation, streams refused locally;
//! * timers: RFC 6298 retransmission of HELLO (dialer), CALL/NOTIFY and CANCEL, PING expiry,
//!   and the CLOSE linger (answer at most once per RTO for 3·RTO).
//!
//! The reply cache, retained requests and ACK batching are the shared session machinery of
//! `session.rs`, always present in datagram mode.

use super::Connection;
#[cfg(feature = "datagram")]
use super::State;
use crate::config::Transport;

impl Connection<'_> {
    /// Whether this connection runs in datagram mode (SPEC.md §14).
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn is_datagram(&self) -> bool {
        matches!(self.config.transport, Transport::Datagram { .. })
    }

    /// Whether a closed datagram-mode association is still answering stray datagrams with its
    /// CLOSE (SPEC.md §14.8); `is_finished` waits for this to end.
    pub(super) fn dgram_lingering(&self) -> bool {
        #[cfg(feature = "datagram")]
        if let Some(d) = &self.dgram {
            return self.state == State::Closed && d.close_at.is_some() && !d.linger_done;
        }
        false
    }

    /// `poll_transmit` hook: how many bytes of `data` form the next datagram.
    pub(in crate::conn) fn dgram_datagram_len(&self, data: &[u8], buf: usize) -> usize {
        let peer_max = match self.peer.max_datagram_size {
            0 => crate::config::DEFAULT_MAX_DATAGRAM,
            m => m,
        };
        super::whole_frames(data, buf.min(peer_max as usize))
    }

    /// The largest frame body we may send in datagram mode: one frame in one datagram of
    /// the peer's `max_datagram_size`.
    pub(in crate::conn) fn dgram_frame_limit(&self) -> usize {
        let peer_max = match self.peer.max_datagram_size {
            0 => crate::config::DEFAULT_MAX_DATAGRAM,
            m => m,
        };
        (self.peer.max_frame_size as usize)
            .min((peer_max as usize).saturating_sub(crate::frame::MAX_HEADER_LEN))
    }
}

#[cfg(feature = "datagram")]
pub(crate) use super::datagram_parts::Retx;
#[cfg(feature = "datagram")]
pub(crate) use imp::DgramState;

/// The RTO after these RTT samples (ms), for tests of the RFC 6298 arithmetic.
#[cfg(all(test, feature = "datagram"))]
pub(crate) fn rtt_for_tests(samples_ms: &[u64]) -> core::time::Duration {
    let mut r = super::datagram_parts::Rtt::new();
    for &s in samples_ms {
        r.sample_us(s * 1000);
    }
    r.rto()
}

#[cfg(feature = "datagram")]
mod imp {
    use core::time::Duration;

    use super::super::datagram_parts::{Bytes, Pos, Retx, Rtt, Window, CLOSE_MAX, HELLO_MAX, WINDOW};
    #[cfg(feature = "alloc")]
    use super::super::session::SessionState;
    use super::super::session::{request_digest, Digest};
    use super::super::{Connection, Kind, Raw, State};
    use crate::config::{Role, Transport, VERSION};
    use crate::error::{ApiError, ConnectionError};
    use crate::event::{MethodId, SchemaKey};
    use crate::frame::{flags, ty, Ack, Decoded, Frame, Hello, Request};
    use crate::status::Status;
    use crate::time::Instant;

    /// Received SIGNALs remembered to drop network duplicates (SPEC.md §14.8).
    const SIGNAL_MEMORY: usize = 32;
    /// Digest recorded for a request known only from its CANCEL: matches any retransmission.
    const UNKNOWN_DIGEST: Digest = [0; 16];

    type R = Result<Option<Raw>, ConnectionError>;

    /// Digest of a whole HELLO frame, to recognise its copies without keeping it.
    fn hello_digest(raw: &[u8]) -> Digest {
        request_digest(ty::HELLO, MethodId { module: 0, method: 0 }, raw)
    }

    const fn protocol(reason: &'static str) -> ConnectionError {
        ConnectionError::Violation { status: Status::PROTOCOL_ERROR, reason }
    }

    /// Everything datagram mode keeps beyond the session state.
    #[derive(Debug)]
    pub(crate) struct DgramState {
        pub(crate) rtt: Rtt,
        pub(crate) window: Window,
        /// Our HELLO datagram, byte for byte (dialer: retransmitted; acceptor: re-answered).
        /// (Our reliably sent requests keep their timers in their slots.)
        hello_mine: Bytes<HELLO_MAX>,
        /// Digest of the peer's HELLO frame, to recognise its copies.
        hello_peer: Digest,
        /// Dialer in the handshake: the HELLO retransmission timer.
        hello_retx: Option<Retx>,
        /// Recently received SIGNALs: (digest, when).
        signals: [(Digest, Instant); SIGNAL_MEMORY],
        signals_len: usize,
        signals_next: usize,
        /// Latest `now` seen by any input (the core has no clock).
        now: Instant,
        /// The CLOSE we sent, and when: answered at most once per RTO for 3·RTO.
        close_frame: Bytes<CLOSE_MAX>,
        pub(crate) close_at: Option<Instant>,
        close_answered: Instant,
        pub(crate) linger_done: bool,
    }

    impl<'a> Connection<'a> {
        /// Construction hook: in datagram mode, sets up the session state (reply cache,
        /// outbox, ACKs: allocated with `alloc`, else `sess`, built by the constructor from the
        /// caller's storage), announces an empty session token, and arms the dialer's HELLO timer.
        pub(in crate::conn) fn dgram_init(&mut self, now: Instant, sess: Option<super::super::SessBox<'a>>) {
            if !self.is_datagram() {
                // A stream transport: without `alloc`, the caller's session buffers wait for a
                // resumable session (`with_session_storage`).
                #[cfg(all(feature = "resume", not(feature = "alloc")))]
                {
                    self.sess_spare = sess;
                }
                #[cfg(not(all(feature = "resume", not(feature = "alloc"))))]
                let _ = sess;
                return;
            }
            #[cfg(feature = "alloc")]
            let sess = sess.or_else(|| Some(alloc::boxed::Box::new(SessionState::new(&self.config))));
            self.sess = sess;
            let rtt = Rtt::new();
            let state = DgramState {
                rtt,
                window: Window::new(),
                hello_mine: Bytes::new(),
                hello_peer: [0; 16],
                hello_retx: None,
                signals: [([0; 16], Instant::ZERO); SIGNAL_MEMORY],
                signals_len: 0,
                signals_next: 0,
                now,
                close_frame: Bytes::new(),
                close_at: None,
                close_answered: Instant::ZERO,
                linger_done: false,
            };
            #[cfg(feature = "alloc")]
            let state = alloc::boxed::Box::new(state);
            self.dgram = Some(state);
            // SPEC.md §14.1: no sessions; the dialer never sets RESUME, the acceptor sends an
            // empty token.
            self.me.2.set(&[]);
            if self.role == Role::Dialer {
                self.tx_clear();
                self.send_hello(VERSION, VERSION, false);
                if let Some(d) = self.dgram.as_mut() {
                    d.hello_mine.set(self.tx.data());
                    d.hello_retx = Some(Retx::new(now, rtt.rto_us()));
                }
            }
        }

        /// The current RTO (SPEC.md §14.4), in datagram mode.
        pub fn datagram_rto(&self) -> Option<Duration> {
            self.dgram.as_ref().map(|d| d.rtt.rto())
        }

        /// Datagram mode: `(H, ids marked seen in the window, retransmission timers)`, for
        /// monitoring and tests (all bounded: the seen-set by W = 1024, the timers by our open
        /// calls).
        pub fn datagram_tables(&self) -> Option<(Option<u64>, u32, usize)> {
            let timers = self.slots.iter().filter(|(_, s)| s.retx.is_some()).count();
            self.dgram.as_ref().map(|d| (d.window.high(), d.window.seen_count(), timers))
        }

        fn dgram_drop(&mut self) {
            self.stats.datagrams_dropped += 1;
        }

        /// `handle_input` hook: a datagram larger than we accept is dropped whole.
        pub(in crate::conn) fn dgram_oversize(&mut self) {
            self.dgram_drop();
        }

        /// `recv_commit` hook: the datagram of `n` bytes just committed at `start` is decoded
        /// whole; any decode error, oversize, or (before the peer's HELLO) a first frame other
        /// than HELLO or CLOSE drops it whole (SPEC.md §14.2–§14.3).
        pub(in crate::conn) fn dgram_commit(&mut self, now: Instant, start: usize, n: usize) {
            self.stats.bytes_received += n as u64;
            if let Some(d) = self.dgram.as_mut() {
                d.now = d.now.max(now);
            }
            let max = match self.config.transport {
                Transport::Datagram { max_datagram } => max_datagram as usize,
                _ => usize::MAX,
            };
            let limit = self.recv_frame_limit_dgram();
            let data = &self.rx.data()[start..];
            let mut ok = n <= max && !data.is_empty();
            let mut off = 0;
            while ok && off < data.len() {
                match Frame::decode(&data[off..], limit) {
                    Ok(Decoded::Frame(f, len)) => {
                        if off == 0
                            && self.state == State::Handshake
                            && !matches!(f, Frame::Hello(_) | Frame::Close { .. })
                        {
                            ok = false;
                        }
                        off += len;
                    }
                    _ => ok = false,
                }
            }
            if !ok {
                self.rx.truncate(start);
                self.dgram_drop();
                return;
            }
            self.last_recv = self.last_recv.max(now);
        }

        fn recv_frame_limit_dgram(&self) -> usize {
            if self.state == State::Handshake {
                crate::config::MIN_FRAME_SIZE as usize
            } else {
                self.config.max_frame_size as usize
            }
        }

        /// Queues bytes that are already whole encoded frames (our HELLO or CLOSE copies).
        fn push_raw(&mut self, bytes: &[u8]) -> bool {
            let n = bytes.len();
            if self.tx.len() + n > self.tx.capacity_max() {
                return false;
            }
            let buf = self.tx.spare(n);
            if buf.len() < n {
                return false;
            }
            buf[..n].copy_from_slice(bytes);
            self.tx.commit(n);
            self.tx_queued += n as u64;
            self.stats.frames_sent += 1;
            true
        }

        /// Resends the cached RESPONSE for `id` (the cache is set aside meanwhile: pushing a
        /// frame never touches it, and nothing is copied).
        // The payload is a `Vec` with `alloc` (borrowed here), a slice without.
        #[allow(clippy::needless_borrow)]
        fn dgram_answer_cached(&mut self, id: u64) {
            let Some(sess) = self.sess.take() else { return };
            if let Some(c) = sess.cache.get(id) {
                self.dgram_answer(id, c.status, &c.payload);
            }
            self.sess = Some(sess);
        }

        /// Queues a RESPONSE without payload or a resent cached one. In datagram mode a full
        /// transmit queue drops it (the caller retransmits) instead of failing the connection.
        fn dgram_answer(&mut self, id: u64, status: Status, payload: &[u8]) {
            let _ = self.push(&Frame::Response { flags: 0, id, status, total_len: None, payload }, true);
        }

        /// `parse_one` hook: every decoded frame passes here first. `Some` means handled.
        pub(in crate::conn) fn dgram_frame(
            &mut self,
            now: Instant,
            f: Frame<'_>,
            raw: &[u8],
            base: &[u8],
        ) -> Option<R> {
            self.dgram.as_ref()?;
            match f {
                Frame::Hello(h) => Some(self.dgram_hello(now, h, raw, base)),
                Frame::Continuation { .. } => {
                    Some(Err(protocol("CONTINUATION in datagram mode: fragmentation is forbidden over UDP")))
                }
                Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) | Frame::Keyed { req: r, .. }
                    if r.flags & flags::MORE != 0 =>
                {
                    Some(Err(protocol(
                        "fragmented message in datagram mode: fragmentation is forbidden over UDP",
                    )))
                }
                Frame::Response { flags: fl, .. } if fl & flags::MORE != 0 => Some(Err(protocol(
                    "fragmented message in datagram mode: fragmentation is forbidden over UDP",
                ))),
                Frame::Call(r) => Some(self.dgram_request(now, ty::CALL, r, None, base)),
                Frame::Notify(r) => Some(self.dgram_request(now, ty::NOTIFY, r, None, base)),
                Frame::StreamOpen(r) => Some(self.dgram_stream_open(r)),
                Frame::Keyed { ty: t, key, req } => Some(match self.check_keys_negotiated() {
                    Err(e) => Err(e),
                    Ok(()) if t == ty::STREAM_OPEN => self.dgram_stream_open(req),
                    Ok(()) => self.dgram_request(now, t, req, Some(key), base),
                }),
                Frame::StreamData { .. }
                | Frame::StreamFin { .. }
                | Frame::StreamReset { .. }
                | Frame::StreamCredit { .. }
                | Frame::StreamResume { .. }
                | Frame::ConnCredit { .. } => Some(Ok(None)),
                Frame::Cancel { id } => self.dgram_cancel(id),
                Frame::Ack(a) => Some(self.dgram_ack(a)),
                Frame::Response { id, .. } => self.dgram_response(id),
                Frame::Pong(p) => {
                    if let Some((seq, sent)) = self.ping_out {
                        if seq.to_be_bytes() == p {
                            if let Some(d) = self.dgram.as_mut() {
                                d.rtt.sample_us(now.micros_since(sent));
                            }
                        }
                    }
                    None
                }
                Frame::Signal { module, method, payload }
                | Frame::SignalKeyed { module, method, payload, .. } => {
                    let dg = request_digest(ty::SIGNAL, MethodId { module, method }, payload);
                    let d = self.dgram.as_mut()?;
                    let fresh = d.rtt.rto_us() * 3;
                    let dup = d.signals[..d.signals_len]
                        .iter()
                        .any(|&(x, at)| x == dg && now.micros_since(at) < fresh);
                    if dup {
                        return Some(Ok(None));
                    }
                    let k = d.signals_next;
                    d.signals[k] = (dg, now);
                    d.signals_next = (k + 1) % SIGNAL_MEMORY;
                    d.signals_len = (d.signals_len + 1).min(SIGNAL_MEMORY);
                    None
                }
                _ => None,
            }
        }

        fn dgram_hello(&mut self, now: Instant, h: Hello<'_>, raw: &[u8], base: &[u8]) -> R {
            if self.state == State::Handshake {
                let before = self.tx.len();
                let out = self.on_frame(now, Frame::Hello(h), base)?;
                if self.state == State::Handshake || self.state == State::Closed {
                    return Ok(out);
                }
                let role = self.role;
                if let Some(d) = self.dgram.as_mut() {
                    d.hello_peer = hello_digest(raw);
                    match role {
                        Role::Acceptor => d.hello_mine.set(self.tx.data().get(before..).unwrap_or(&[])),
                        Role::Dialer => {
                            // Karn: only a HELLO sent once gives an RTT sample.
                            if let Some(t) = d.hello_retx.take() {
                                if !t.again {
                                    d.rtt.sample_us(now.micros_since(t.sent));
                                }
                            }
                        }
                    }
                }
                return Ok(out);
            }
            let same = self.dgram.as_ref().is_some_and(|d| d.hello_peer == hello_digest(raw));
            match (same, self.role) {
                (true, Role::Acceptor) => {
                    // A copy of the dialer's HELLO: answer it with our HELLO again.
                    let _ = self.dgram_push_copy(|d| d.hello_mine.get());
                    Ok(None)
                }
                (true, Role::Dialer) => Ok(None),
                (false, Role::Acceptor) => {
                    // A new association from the same address (the dialer restarted): this one
                    // ends without CLOSE, and the runtime feeds the datagram to a new one.
                    self.tx_clear();
                    self.enter_closed(ConnectionError::Superseded);
                    Ok(None)
                }
                (false, Role::Dialer) => Err(protocol("acceptor sent a different HELLO")),
            }
        }

        /// An opening CALL/NOTIFY in datagram mode: the rows of SPEC.md §14.5.
        fn dgram_request(
            &mut self,
            now: Instant,
            t: u8,
            r: Request<'_>,
            key: Option<SchemaKey>,
            base: &[u8],
        ) -> R {
            if r.id % 2 != self.dgram_peer_parity() {
                return Err(protocol("exchange id has the opener's wrong parity"));
            }
            let method = MethodId { module: r.module, method: r.method };
            let digest = request_digest(t, method, r.payload);
            let Some(d) = self.dgram.as_mut() else { return Ok(None) };
            let pos = d.window.pos(r.id);
            if matches!(pos, Pos::Above | Pos::In(false)) {
                d.window.mark(r.id);
                let high = d.window.high();
                // Concurrency over UDP: a refusal, not a connection error (§14.4).
                if !self.goaway_sent && self.in_calls >= self.config.max_concurrent_calls {
                    self.peer_high = high;
                    if let Some(s) = self.sess.as_mut() {
                        s.cache.insert(r.id, digest, Status::RESOURCE_EXHAUSTED, &[]);
                    }
                    self.dgram_answer(r.id, Status::RESOURCE_EXHAUSTED, &[]);
                    return Ok(None);
                }
                // The common path opens the exchange; its strict-increase check is replaced by
                // the window (§14.4), so it runs with H hidden and H restored afterwards.
                self.peer_high = None;
                let out = self.on_request(now, t, r, key, base);
                self.peer_high = high;
                return out;
            }
            if let Some(i) = self.slots.find(r.id, |s| s.id == r.id && !s.outbound) {
                if self.slots.get(i).is_some_and(|s| s.digest != digest) {
                    return Err(protocol("retransmitted request differs from the original (same id)"));
                }
                // Still running: the RESPONSE comes when the application answers.
                return Ok(None);
            }
            let cached = self.sess.as_ref().and_then(|s| s.cache.get(r.id)).map(|c| c.digest);
            if let Some(dg) = cached {
                if dg != digest && dg != UNKNOWN_DIGEST {
                    return Err(protocol("retransmitted request differs from the original (same id)"));
                }
                self.dgram_answer_cached(r.id);
                return Ok(None);
            }
            // Seen and answered but evicted, or below the window: REPLY_EVICTED (not cached).
            self.dgram_answer(r.id, Status::REPLY_EVICTED, &[]);
            Ok(None)
        }

        fn dgram_peer_parity(&self) -> u64 {
            match self.role {
                Role::Dialer => 1,
                Role::Acceptor => 0,
            }
        }

        /// STREAM_OPEN over UDP: STREAM_RESET(UNIMPLEMENTED), no state; the id is closed (§14.7).
        fn dgram_stream_open(&mut self, r: Request<'_>) -> R {
            if r.id % 2 != self.dgram_peer_parity() {
                return Err(protocol("exchange id has the opener's wrong parity"));
            }
            if let Some(d) = self.dgram.as_mut() {
                if matches!(d.window.pos(r.id), Pos::Above | Pos::In(false)) {
                    d.window.mark(r.id);
                    self.peer_high = d.window.high();
                }
            }
            let _ = self.push(&Frame::StreamReset { id: r.id, status: Status::UNIMPLEMENTED }, true);
            Ok(None)
        }

        /// CANCEL in datagram mode (§14.5). `None`: the exchange is open, cancel it as usual.
        fn dgram_cancel(&mut self, id: u64) -> Option<R> {
            if id % 2 != self.dgram_peer_parity() {
                return Some(Err(protocol("CANCEL for an exchange this side opened")));
            }
            if self.slots.find(id, |s| s.id == id && !s.outbound).is_some() {
                return None;
            }
            if self.sess.as_ref().is_some_and(|s| s.cache.get(id).is_some()) {
                self.dgram_answer_cached(id);
                return Some(Ok(None));
            }
            let d = self.dgram.as_mut()?;
            if matches!(d.window.pos(id), Pos::Above | Pos::In(false)) {
                // The request will never run, even if its CALL arrives later.
                d.window.mark(id);
                self.peer_high = d.window.high();
                if let Some(s) = self.sess.as_mut() {
                    s.cache.insert(id, UNKNOWN_DIGEST, Status::CANCELLED, &[]);
                }
                self.dgram_answer(id, Status::CANCELLED, &[]);
            } else {
                self.dgram_answer(id, Status::REPLY_EVICTED, &[]);
            }
            Some(Ok(None))
        }

        /// ACK in datagram mode: ids above H may have overtaken their opening frame and are
        /// ignored; ids of our own parity are a PROTOCOL_ERROR. Work is bounded by the cache.
        fn dgram_ack(&mut self, a: Ack<'_>) -> R {
            let parity = self.dgram_peer_parity();
            let high = self.dgram.as_ref().and_then(|d| d.window.high());
            for (first, n) in a.iter() {
                if first % 2 != parity {
                    return Err(protocol("ACK names an exchange the peer never opened"));
                }
                let last = first + 2 * (n - 1);
                if let (Some(h), Some(s)) = (high, self.sess.as_mut()) {
                    if first <= h {
                        s.cache.remove_range(first, last.min(h));
                    }
                }
            }
            Ok(None)
        }

        /// A RESPONSE for one of our ids. `None`: our exchange is open, handle it as usual (after
        /// taking an RTT sample if the request was sent once). A duplicate for an exchange
        /// already over is acknowledged again and dropped.
        fn dgram_response(&mut self, id: u64) -> Option<R> {
            if id % 2 == self.dgram_peer_parity() || id >= self.next_id {
                return None;
            }
            let now = self.last_recv;
            match self.slots.find(id, |s| s.id == id && s.outbound) {
                Some(i) => {
                    let s = self.slots.get_mut(i)?;
                    let (resolved, timer) = (s.resolved, s.retx.take());
                    let d = self.dgram.as_mut()?;
                    if let Some(t) = timer {
                        if !t.again && !resolved {
                            d.rtt.sample_us(now.micros_since(t.sent));
                        }
                    }
                    None
                }
                None => {
                    if let Some(s) = self.sess.as_mut() {
                        s.acks.push(now, id);
                    }
                    Some(Ok(None))
                }
            }
        }

        /// `open` hook, before anything is queued: streams are refused, and the id must stay
        /// within 2·(W−1) of our lowest unanswered one (§14.5).
        pub(in crate::conn) fn dgram_check_open(&mut self, now: Instant, kind: Kind) -> Result<(), ApiError> {
            let Some(d) = self.dgram.as_mut() else { return Ok(()) };
            d.now = d.now.max(now);
            if kind == Kind::Stream {
                return Err(ApiError::Unsupported("streams in datagram mode (SPEC.md §14.7)"));
            }
            let lowest = self.slots.iter().filter(|(_, s)| s.outbound).map(|(_, s)| s.id).min();
            if let Some(l) = lowest {
                if self.next_id > l + 2 * (WINDOW - 1) {
                    return Err(ApiError::WindowFull { lowest: l });
                }
            }
            Ok(())
        }

        /// `open` hook, after the request is queued: start its retransmission timer.
        pub(in crate::conn) fn dgram_opened(&mut self, now: Instant, id: u64) {
            let Some(d) = self.dgram.as_ref() else { return };
            let rto = d.rtt.rto_us();
            if let Some(i) = self.slots.find(id, |s| s.id == id && s.outbound) {
                if let Some(s) = self.slots.get_mut(i) {
                    s.retx = Some(Retx::new(now, rto));
                }
            }
        }

        /// `push_close` hook: remember the CLOSE to answer stray datagrams with it (§14.8).
        pub(in crate::conn) fn dgram_note_close(&mut self, f: &Frame<'_>) {
            let Some(d) = self.dgram.as_mut() else { return };
            d.close_frame.fill(f.encoded_len(), |buf| f.encode(buf).unwrap_or(0));
            d.close_at = Some(d.now);
            d.close_answered = d.now;
        }

        /// Closed association, datagram arrived: answer with our CLOSE at most once per RTO,
        /// for 3·RTO after closing.
        pub(in crate::conn) fn dgram_closed_input(&mut self, now: Instant) {
            let Some(d) = self.dgram.as_mut() else { return };
            let Some(at) = d.close_at else { return };
            let rto = d.rtt.rto_us();
            if d.linger_done || now >= at.plus_us(rto * 3) {
                d.linger_done = true;
                return;
            }
            if now < d.close_answered.plus_us(rto) {
                return;
            }
            d.close_answered = now;
            self.dgram_push_copy(|d| d.close_frame.get());
        }

        /// Queues one of our kept frames again (the state is set aside meanwhile: pushing a
        /// frame never touches it, and nothing is copied). Whether it fitted.
        fn dgram_push_copy(&mut self, which: impl FnOnce(&DgramState) -> &[u8]) -> bool {
            let Some(d) = self.dgram.take() else { return false };
            let ok = self.push_raw(which(&d));
            self.dgram = Some(d);
            ok
        }

        /// Closed association: when its linger ends (`None` if there is none).
        pub(in crate::conn) fn dgram_closed_timeout(&self) -> Option<Instant> {
            let d = self.dgram.as_ref()?;
            if d.linger_done {
                return None;
            }
            d.close_at.map(|at| at.plus_us(d.rtt.rto_us() * 3))
        }

        /// Closed association: the linger timer.
        pub(in crate::conn) fn dgram_closed_timer(&mut self, now: Instant) {
            if let Some(d) = self.dgram.as_mut() {
                if d.close_at.is_some_and(|at| now >= at.plus_us(d.rtt.rto_us() * 3)) {
                    d.linger_done = true;
                }
            }
        }

        /// The earliest datagram-mode timer beyond the exchanges' own: HELLO retransmission,
        /// PING expiry.
        pub(in crate::conn) fn dgram_deadline(&self) -> Option<Instant> {
            let d = self.dgram.as_ref()?;
            let mut t = Instant::MAX;
            if self.state == State::Handshake {
                if let Some(h) = &d.hello_retx {
                    t = t.min(h.next);
                }
            } else {
                // (The exchanges' retransmission timers are read by `poll_timeout`'s pass over
                // the slots.)
                if let Some((_, sent)) = self.ping_out {
                    t = t.min(sent.plus_us(d.rtt.rto_us()));
                }
            }
            (t != Instant::MAX).then_some(t)
        }

        /// `handle_timeout` hook: retransmits what is due, expires the outstanding PING.
        pub(in crate::conn) fn dgram_on_timeout(&mut self, now: Instant) {
            let Some(d) = self.dgram.as_mut() else { return };
            d.now = d.now.max(now);
            let rto = d.rtt.rto_us();
            if self.state == State::Handshake {
                let due = d.hello_retx.as_ref().is_some_and(|h| h.next <= now);
                if due {
                    if self.dgram_push_copy(|d| d.hello_mine.get()) {
                        self.stats.retransmissions += 1;
                        if let Some(h) = self.dgram.as_mut().and_then(|d| d.hello_retx.as_mut()) {
                            h.fired(now);
                        }
                    } else if let Some(h) = self.dgram.as_mut().and_then(|d| d.hello_retx.as_mut()) {
                        h.next = now.plus_us(rto);
                    }
                }
                return;
            }
            if self.ping_out.is_some_and(|(_, sent)| now >= sent.plus_us(rto)) {
                // §14.8: a PING is outstanding for one RTO at most; the next keepalive sends a new one.
                self.ping_out = None;
            }
            // Due timers in increasing id order (k due of n slots: O(k·n), no allocation).
            let mut after = None;
            loop {
                let due = self
                    .slots
                    .iter()
                    .filter(|(_, s)| s.retx.is_some_and(|r| r.next <= now))
                    .map(|(_, s)| s.id)
                    .filter(|&id| after.map_or(true, |a| id > a))
                    .min();
                let Some(id) = due else { break };
                after = Some(id);
                self.dgram_retransmit(now, id, rto);
            }
        }

        // The retained payload is a `Vec` with `alloc` (borrowed here), a slice without.
        #[allow(clippy::needless_borrow)]
        fn dgram_retransmit(&mut self, now: Instant, id: u64, rto: u64) {
            let Some(i) = self.slots.find(id, |s| s.id == id && s.outbound) else { return };
            let Some(s) = self.slots.get(i) else { return };
            let (resolved, deadline) = (s.resolved, s.deadline);
            let ok = if resolved {
                self.push(&Frame::Cancel { id }, true).is_ok()
            } else {
                let Some(sess) = self.sess.take() else { return };
                let Some(r) = sess.outbox.get(id) else {
                    self.sess = Some(sess);
                    if let Some(s) = self.slots.get_mut(i) {
                        s.retx = None;
                    }
                    return;
                };
                let budget_us = if deadline == Instant::MAX {
                    0
                } else {
                    deadline.as_micros().saturating_sub(now.as_micros()).clamp(1, crate::varint::MAX)
                };
                let req = Request {
                    flags: 0,
                    id,
                    module: r.method.module,
                    method: r.method.method,
                    budget_us,
                    total_len: None,
                    payload: &r.payload,
                };
                let t = if r.ty == ty::NOTIFY { ty::NOTIFY } else { ty::CALL };
                let f = Frame::open(t, self.key_to_send(r.key), req);
                let ok = self.push(&f, true).is_ok();
                self.sess = Some(sess);
                ok
            };
            let Some(t) = self.slots.get_mut(i).and_then(|s| s.retx.as_mut()) else { return };
            if ok {
                t.fired(now);
                self.stats.retransmissions += 1;
            } else {
                // Transmit queue full: try again one RTO later, without backing off.
                t.next = now.plus_us(rto);
            }
        }
    }
}
