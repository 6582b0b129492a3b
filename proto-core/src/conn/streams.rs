//! The stream half of the API: sending items, finishing, resetting, and returning credit as the
//! application consumes what it received (SPEC.md §7.4, §10).

use super::{Connection, Kind, Pending, State};
use crate::config::MAX_CREDIT;
use crate::error::ApiError;
use crate::frame::Frame;
use crate::status::Status;
use crate::time::Instant;

impl Connection<'_> {
    /// Sends one item on a stream. Refused with [`ApiError::NoCredit`] when the peer has not
    /// granted room for it (an [`Event::StreamWritable`](crate::Event::StreamWritable) follows
    /// when it does), and with [`ApiError::TooLarge`] when it exceeds the peer's per-stream
    /// byte window (it could never be sent). Without `alloc`, in a resumable session, also with
    /// [`ApiError::RetainFull`] when the caller's retained buffer has no room to keep the item
    /// until the peer confirms it (SPEC.md §11, §13.7); a `StreamWritable` follows when room
    /// comes back.
    pub fn stream_send(&mut self, id: u64, item: &[u8]) -> Result<(), ApiError> {
        self.send_item(
            id,
            item,
            #[cfg(feature = "alloc")]
            None,
        )
    }

    /// [`stream_send`](Self::stream_send) of an item the application shares rather than lends:
    /// on a byte stream the item is sent from `item` itself and, in a resumable session, kept
    /// as the item's retained copy until the peer confirms it (SPEC.md §13.7) — the core
    /// copies none of it, whether `item` is sent once or, say, the same buffer to many peers.
    /// The connection holds a reference until then; `item` must not change meanwhile (an
    /// `Arc` gives no way to, short of `Arc::get_mut`, which then fails). Elsewhere (packet
    /// transports, an item larger than one frame) it is copied as by `stream_send`. Same
    /// errors as `stream_send`.
    #[cfg(feature = "alloc")]
    pub fn stream_send_shared(
        &mut self,
        id: u64,
        item: &alloc::sync::Arc<alloc::vec::Vec<u8>>,
    ) -> Result<(), ApiError> {
        self.send_item(id, item, Some(item))
    }

    fn send_item(
        &mut self,
        id: u64,
        item: &[u8],
        #[cfg(feature = "alloc")] shared: Option<&alloc::sync::Arc<alloc::vec::Vec<u8>>>,
    ) -> Result<(), ApiError> {
        let i = self.find_stream(id)?;
        let conn_send = self.conn_send;
        let limit = (self.peer.stream_credit_bytes as usize).min(self.peer.max_message_size as usize);
        let s = self.slots.get_mut(i).ok_or(ApiError::UnknownId(id))?;
        if s.s.sent_terminal {
            return Err(ApiError::WrongState("this side already finished or reset the stream"));
        }
        if s.s.peer_reset {
            return Err(ApiError::WrongState("the peer reset the stream"));
        }
        if item.len() > limit {
            return Err(ApiError::TooLarge { size: item.len(), limit });
        }
        let len = item.len() as u64;
        let held = s.s.await_resume || (s.outbound && !s.s.on_wire);
        if self.state == State::Suspended || held {
            // No transport, or the peer's STREAM_RESUME has not arrived: wait (§13.7).
            s.s.blocked = true;
            return Err(ApiError::NoCredit);
        }
        if s.s.send_msgs == 0 || u64::from(s.s.send_bytes) < len || conn_send < len {
            s.s.blocked = true;
            self.stats.credit_stalls += 1;
            return Err(ApiError::NoCredit);
        }
        // Without `alloc`, a resumable session keeps the item in the caller's retained buffer
        // until the peer confirms it (SPEC.md §13.7): no room, no send (a StreamWritable
        // follows when room comes back and the stream has credit).
        #[cfg(feature = "resume")]
        if !self.item_fits(item.len()) {
            if let Some(s) = self.slots.get_mut(i) {
                s.s.blocked = true;
            }
            let limit = self.sess.as_ref().map_or(0, |s| s.outbox.max_bytes());
            return Err(ApiError::RetainFull { limit });
        }
        // In a resumable session the item's frame is written once, into its retained copy,
        // and sent from there (`splice.rs`); otherwise it is copied into the transmit queue.
        #[cfg(feature = "alloc")]
        let spliced = match shared {
            Some(a) => self.push_shared_item(id, a)?,
            None => self.push_spliced_item(id, item)?,
        };
        #[cfg(not(feature = "alloc"))]
        let spliced = false;
        if !spliced {
            self.push_message(id, item, |more, total_len, chunk| Frame::StreamData {
                flags: more,
                id,
                total_len,
                payload: chunk,
            })?;
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.s.send_msgs -= 1;
            s.s.send_bytes -= len as u32;
            s.s.sent_items += 1;
        }
        self.conn_send -= len;
        #[cfg(feature = "resume")]
        if !spliced {
            self.retain_item(id, item);
        }
        Ok(())
    }

    /// Ends this side's direction of a stream. For a responder, `status` is the stream's result;
    /// an opener sends OK.
    pub fn stream_finish(&mut self, id: u64, status: Status) -> Result<(), ApiError> {
        let i = self.find_stream(id)?;
        let s = self.slots.get(i).ok_or(ApiError::UnknownId(id))?;
        if s.s.sent_terminal {
            return Err(ApiError::WrongState("this side already finished or reset the stream"));
        }
        self.send_terminal(i, false, status)?;
        if let Some(s) = self.slots.get_mut(i) {
            s.s.sent_terminal = true;
            if !s.outbound {
                s.deadline = Instant::MAX;
            }
        }
        self.settle(i);
        Ok(())
    }

    /// Ends a stream abruptly in both directions: the peer is asked to stop, and items still
    /// arriving are discarded. A responder calls this (or `stream_finish`) to release a stream
    /// the peer reset.
    pub fn stream_reset(&mut self, id: u64, status: Status) -> Result<(), ApiError> {
        let i = self.find_stream(id)?;
        let s = self.slots.get(i).ok_or(ApiError::UnknownId(id))?;
        if s.s.we_reset {
            return Ok(());
        }
        let send = !(s.s.sent_terminal && s.s.recv_terminal);
        if send {
            self.send_terminal(i, true, status)?;
        }
        let (mut returned, mut no_grant) = (0, 0);
        if let Some(p) = self.partial.as_mut().filter(|p| p.id == id) {
            p.deliver = false;
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.s.sent_terminal = true;
            s.s.we_reset = true;
            s.s.blocked = false;
            s.deadline = Instant::MAX;
            returned = s.s.unconsumed_bytes;
            no_grant = core::mem::take(&mut s.s.no_grant_bytes);
            s.s.no_grant_msgs = 0;
            s.s.unconsumed_bytes = 0;
            s.s.unconsumed_msgs = 0;
            if s.pending == Pending::Writable {
                s.pending = Pending::None;
                self.pending_slots = self.pending_slots.saturating_sub(1);
            }
        }
        self.return_unconsumed(returned, no_grant);
        self.settle(i);
        Ok(())
    }

    /// Returns flow-control credit for stream items the application has taken: `items` items
    /// totalling `bytes` bytes, as delivered by [`Event::StreamData`](crate::Event::StreamData).
    /// Credit is sent back in batches. Consuming on a stream that already ended is a no-op.
    pub fn stream_consumed(&mut self, id: u64, items: u32, bytes: u32) -> Result<(), ApiError> {
        let Some(i) = self.slots.find(id, |s| s.id == id) else {
            let ours = id % 2 == self.next_id % 2;
            let known = if ours { id < self.next_id } else { self.peer_high.is_some_and(|h| id <= h) };
            return if known { Ok(()) } else { Err(ApiError::UnknownId(id)) };
        };
        let s = self.slots.get_mut(i).ok_or(ApiError::UnknownId(id))?;
        if s.kind != Kind::Stream {
            return Err(ApiError::WrongState("not a stream"));
        }
        if s.s.we_reset {
            // Reset by this side: everything delivered was already returned to the window.
            return Ok(());
        }
        if items > s.s.unconsumed_msgs || bytes > s.s.unconsumed_bytes {
            return Err(ApiError::WrongState("consumed more stream data than was delivered"));
        }
        s.s.unconsumed_msgs -= items;
        s.s.unconsumed_bytes -= bytes;
        // Items delivered before a resumption were paid for by the window restart (§13.4).
        let (old_m, old_b) = (items.min(s.s.no_grant_msgs), bytes.min(s.s.no_grant_bytes));
        s.s.no_grant_msgs -= old_m;
        s.s.no_grant_bytes -= old_b;
        s.s.grant_msgs += items - old_m;
        s.s.grant_bytes += bytes - old_b;
        self.flush_stream_grant(i);
        self.conn_unconsumed = self.conn_unconsumed.saturating_sub(u64::from(bytes));
        let old = u64::from(bytes).min(self.conn_no_grant);
        self.conn_no_grant -= old;
        self.conn_grant += u64::from(bytes) - old;
        self.flush_conn_grant();
        Ok(())
    }

    /// Sends STREAM_CREDIT for slot `i` when half a window has been consumed, or when the
    /// application has caught up (otherwise a peer whose next item is larger than its remaining
    /// credit would wait forever). If the transmit queue is full, `grant_retry` makes
    /// `poll_transmit` try again once it has drained.
    pub(super) fn flush_stream_grant(&mut self, i: usize) {
        let (init_m, init_b) = (self.config.stream_credit_msgs, self.config.stream_credit_bytes);
        let Some(s) = self.slots.get(i) else { return };
        let due = s.s.grant_msgs > 0
            && !s.s.recv_terminal
            && (s.s.unconsumed_msgs == 0 || s.s.grant_msgs * 2 >= init_m || s.s.grant_bytes * 2 >= init_b);
        if !due {
            return;
        }
        let (id, m, b) = (s.id, s.s.grant_msgs, s.s.grant_bytes);
        if self.push(&Frame::StreamCredit { id, msgs: m, bytes: b }, true).is_err() {
            self.grant_retry = true;
            return;
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.s.recv_msgs = (u64::from(s.s.recv_msgs) + u64::from(m)).min(MAX_CREDIT) as u32;
            s.s.recv_bytes = (u64::from(s.s.recv_bytes) + u64::from(b)).min(MAX_CREDIT) as u32;
            s.s.grant_msgs = 0;
            s.s.grant_bytes = 0;
        }
    }

    /// Retries credit grants that did not fit the transmit queue earlier.
    pub(super) fn retry_grants(&mut self) {
        if !self.grant_retry {
            return;
        }
        self.grant_retry = false;
        for i in 0..self.slots.capacity_hint() {
            self.flush_stream_grant(i);
        }
        self.flush_conn_grant();
    }

    /// Sends CONN_CREDIT when half the connection window is consumed, or everything delivered
    /// has been consumed. Retried by `poll_transmit` if the transmit queue is full.
    pub(super) fn flush_conn_grant(&mut self) {
        if self.conn_grant == 0 || self.state == State::Closed {
            return;
        }
        let due =
            self.conn_grant * 2 >= u64::from(self.config.conn_credit_bytes) || self.conn_unconsumed == 0;
        if !due {
            return;
        }
        let bytes = self.conn_grant.min(MAX_CREDIT) as u32;
        if self.push(&Frame::ConnCredit { bytes }, true).is_ok() {
            self.conn_recv += u64::from(bytes);
            self.conn_grant -= u64::from(bytes);
        } else {
            self.grant_retry = true;
        }
    }
}
