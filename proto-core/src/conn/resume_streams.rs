//! Session resumption of streams (SPEC.md §13.7): STREAM_RESUME, the retransmission of
//! unconfirmed items, and their retention — on the heap with `alloc`, else in the caller's
//! retained buffer (`SessionStorage`), where an item that does not fit is refused. The rest of
//! resumption is in `resume.rs`.

use super::{Connection, Pending};
use crate::error::ConnectionError;
use crate::frame::Frame;
use crate::status::Status;

type R = Result<Option<super::Raw>, ConnectionError>;

const fn protocol(reason: &'static str) -> ConnectionError {
    ConnectionError::Violation { status: Status::PROTOCOL_ERROR, reason }
}

impl Connection<'_> {
    /// STREAM_RESUME(id, k) from the peer (SPEC.md §13.7).
    pub(super) fn on_stream_resume(&mut self, id: u64, k: u64) -> R {
        if !self.resumed {
            return Err(protocol("STREAM_RESUME outside a resumed session"));
        }
        let Some(i) = self.lookup(id, true)? else {
            self.answer_or_owe(id, true)?;
            return Ok(None);
        };
        let Some(s) = self.slots.get(i) else { return Ok(None) };
        if s.s.resume_recv {
            return Err(protocol("second STREAM_RESUME for a stream"));
        }
        if k > s.s.sent_items + u64::from(s.s.term_sent) {
            return Err(protocol("STREAM_RESUME counts more items than were sent"));
        }
        let (carried, reply) = (s.s.carried, !s.s.resume_sent);
        if let Some(s) = self.slots.get_mut(i) {
            s.s.resume_recv = true;
        }
        if !carried {
            // New on this transport for us (its STREAM_OPEN had not arrived before the loss):
            // nothing was sent before; answer with our count once.
            if reply {
                let k2 = self.slots.get(i).map_or(0, |s| s.s.recv_items + u64::from(s.s.recv_terminal));
                self.push_control(&Frame::StreamResume { id, received: k2 })?;
                if let Some(s) = self.slots.get_mut(i) {
                    s.s.resume_sent = true;
                }
            }
            return Ok(None);
        }
        // Drop what the peer has; retransmit the rest (as the transmit queue allows), then the
        // terminal.
        let confirmed = self.slots.get(i).map_or(0, |s| s.s.confirmed);
        if let Some(sess) = self.sess.as_mut() {
            sess.drop_items(id, usize::try_from(k.saturating_sub(confirmed)).unwrap_or(usize::MAX));
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.s.confirmed = s.s.confirmed.max(k);
            s.s.resend_next = s.s.confirmed;
            s.s.resume_k = k;
            s.s.resending = true;
        }
        if !self.resend_stream(i) {
            self.resend_streams = true;
        }
        Ok(None)
    }

    /// Retransmits stream `i`'s items after STREAM_RESUME, then its terminal, then lets it send
    /// again. False if the transmit queue filled up first.
    pub(super) fn resend_stream(&mut self, i: usize) -> bool {
        loop {
            let Some(s) = self.slots.get(i) else { return true };
            let (id, next, upto, confirmed) =
                (s.id, s.s.resend_next.max(s.s.confirmed), s.s.items_at_resume, s.s.confirmed);
            if next >= upto {
                break;
            }
            // The session state is set aside while the item is queued (pushing a frame never
            // touches it; nothing is copied).
            let Some(sess) = self.sess.take() else { break };
            let Some(item) = sess.item(id, (next - confirmed) as usize) else {
                self.sess = Some(sess);
                break;
            };
            let len = item.len() as u64;
            // Retransmitted items consume the restarted windows like any other (§13.4): wait
            // for credit when other streams used it first.
            let credit =
                self.slots.get(i).is_some_and(|s| s.s.send_msgs > 0 && u64::from(s.s.send_bytes) >= len);
            let pushed = credit
                && self.conn_send >= len
                && self
                    .push_message(id, item, |more, total_len, chunk| Frame::StreamData {
                        flags: more,
                        id,
                        total_len,
                        payload: chunk,
                    })
                    .is_ok();
            self.sess = Some(sess);
            if !pushed {
                return false;
            }
            if let Some(s) = self.slots.get_mut(i) {
                s.s.send_msgs -= 1;
                s.s.send_bytes -= len as u32;
                s.s.resend_next = next + 1;
            }
            self.conn_send -= len;
            self.stats.retransmissions += 1;
        }
        let Some(s) = self.slots.get_mut(i) else { return true };
        let k = s.s.resume_k;
        // A STREAM_RESET is always sent again (it is idempotent, and may have followed a FIN the
        // peer counted); a FIN only if the peer did not count it.
        let resend = match s.s.term {
            Some((true, _)) => true,
            Some((false, _)) => !s.s.open_fin && (s.s.term_pending || s.s.term_no >= k),
            None => false,
        };
        if resend {
            s.s.term_pending = true;
        }
        s.s.resending = false;
        s.s.await_resume = false;
        self.flush_stream_terminal(i);
        let wake = self.slots.get_mut(i).is_some_and(|s| core::mem::take(&mut s.s.blocked));
        if wake {
            self.set_pending(i, Pending::Writable);
        }
        let done = !self.slots.get(i).is_some_and(|s| s.s.term_pending);
        self.settle(i);
        done
    }

    /// Sends STREAM_RESUME for carried-over stream `i`; false if the transmit queue is full.
    pub(super) fn send_stream_resume(&mut self, i: usize, id: u64) -> bool {
        let k = self.slots.get(i).map_or(0, |s| s.s.recv_items + u64::from(s.s.recv_terminal));
        if self.push(&Frame::StreamResume { id, received: k }, true).is_err() {
            return false;
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.s.resume_sent = true;
        }
        self.settle(i);
        true
    }

    /// Records that `n` more of our items on stream `i` are known received (item credit came
    /// back, SPEC.md §13.7) and drops their retained copies.
    #[cfg_attr(not(feature = "streams"), allow(dead_code))]
    pub(super) fn confirm_items(&mut self, i: usize, n: u32) {
        let Some(s) = self.slots.get_mut(i) else { return };
        let before = s.s.confirmed;
        s.s.confirmed = (s.s.confirmed + u64::from(n)).min(s.s.sent_items);
        let gone = (s.s.confirmed - before) as usize;
        let id = s.id;
        let dropped = self.sess.as_mut().map_or(0, |sess| sess.drop_items(id, gone));
        if dropped > 0 {
            self.wake_retain_blocked();
        }
    }

    /// Keeps a copy of an item just sent on stream `id` (the caller checked
    /// [`item_fits`](Self::item_fits)).
    pub(super) fn retain_item(&mut self, id: u64, item: &[u8]) {
        if let Some(sess) = self.sess.as_mut() {
            let _ = sess.retain_item(id, item);
        }
    }

    /// Whether an item of `len` bytes can be retained for a resumption: always with `alloc`
    /// (the peer's credit bounds the items), else while the caller's retained buffer has room
    /// (SPEC.md §11: requests and unconfirmed items share it and `max_retained_bytes`).
    pub(super) fn item_fits(&self, len: usize) -> bool {
        #[cfg(feature = "alloc")]
        let _ = len;
        #[cfg(feature = "alloc")]
        return true;
        #[cfg(not(feature = "alloc"))]
        return self.sess.as_ref().map_or(true, |s| s.outbox.item_room(len));
    }

    /// Without `alloc`: room came back in the retained buffer; streams refused with
    /// [`ApiError::RetainFull`](crate::ApiError::RetainFull) that have credit may send again.
    pub(super) fn wake_retain_blocked(&mut self) {
        #[cfg(not(feature = "alloc"))]
        for i in 0..self.slots.capacity_hint() {
            let (conn_send, open) = (self.conn_send, self.state == super::State::Open);
            let Some(s) = self.slots.get_mut(i) else { continue };
            // Only streams that could send now (not held for STREAM_RESUME or their opening).
            let held = s.s.await_resume || (s.outbound && !s.s.on_wire);
            if s.kind == super::Kind::Stream
                && s.s.blocked
                && !held
                && open
                && s.s.send_msgs > 0
                && conn_send > 0
            {
                s.s.blocked = false;
                self.set_pending(i, Pending::Writable);
            }
        }
    }
}
