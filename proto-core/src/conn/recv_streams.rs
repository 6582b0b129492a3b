//! Inbound stream frames (SPEC.md §7.4, §10): STREAM_DATA, STREAM_FIN, STREAM_RESET and
//! STREAM_CREDIT. Without the `streams` feature no stream is ever open (SPEC.md §7.4.7): those
//! frames are checked against the ids (§6.4), counted as unproductive and ignored.

use super::recv::{protocol, violation, R};
use super::{Connection, Partial};
use crate::event::MethodId;
use crate::frame::{flags, ty};
use crate::status::Status;
#[cfg(not(feature = "streams"))]
use crate::time::Instant;
#[cfg(feature = "streams")]
use {
    super::recv::range_in,
    super::{Pending, Raw},
    crate::config::MAX_CREDIT,
    crate::error::ConnectionError,
    crate::frame::Frame,
    crate::time::Instant,
};

/// The reassembly record of a stream item (or, without streams, of one that is discarded).
fn item_partial(id: u64, fl: u8, size: u64, got: usize) -> Partial {
    Partial {
        ty: ty::STREAM_DATA,
        id,
        total: size as usize,
        got,
        flags: fl,
        method: MethodId::new(0, 0),
        status: Status::OK,
        deliver: false,
        retx: false,
        key: None,
    }
}

impl Connection<'_> {
    /// The checks every STREAM_DATA gets first: its size (§9.2) and the one-message rule (§9.3).
    fn check_item(&self, fl: u8, id: u64, size: u64) -> Result<(), crate::error::ConnectionError> {
        let more = fl & flags::MORE != 0;
        if size > self.config.max_message_size as u64 || (more && size > self.reasm_max as u64) {
            return Err(violation(Status::LIMIT_EXCEEDED, "stream item larger than max_message_size"));
        }
        if self.partial.is_some_and(|p| p.id == id) {
            return Err(protocol("STREAM_DATA while an item of the same stream is still being reassembled"));
        }
        Ok(())
    }

    /// Whether a STREAM_DATA frame without MORE of `size` payload bytes would be accepted as
    /// an item of an open stream now (read-only: [`on_stream_data`](Self::on_stream_data)
    /// still checks and accounts it when it is complete). Direct receive is offered only then.
    pub(super) fn direct_acceptable(&self, fl: u8, id: u64, size: u64) -> bool {
        if !crate::config::STREAMS || self.check_item(fl, id, size).is_err() {
            return false;
        }
        let Ok(Some(i)) = self.lookup(id, true) else { return false };
        self.slots.get(i).is_some_and(|s| {
            !s.s.recv_terminal
                && !s.s.we_reset
                && s.s.recv_msgs > 0
                && u64::from(s.s.recv_bytes) >= size
                && self.conn_recv >= size
        })
    }

    /// Without streams: any stream frame (SPEC.md §7.4.7). Its id must have been opened (by a
    /// STREAM_OPEN we refused) and not be a call's; the first frame of a fragmented item is
    /// followed to its end and discarded (§9.3).
    #[cfg(not(feature = "streams"))]
    pub(super) fn ignore_stream_frame(
        &mut self,
        now: Instant,
        id: u64,
        data: Option<(u8, Option<u64>, &[u8])>,
    ) -> R {
        self.unproductive(now)?;
        if let Some((fl, total, payload)) = data {
            let size = total.unwrap_or(payload.len() as u64);
            self.check_item(fl, id, size)?;
            self.lookup(id, true)?;
            if fl & flags::MORE != 0 {
                self.begin_partial(item_partial(id, fl, size, payload.len()), payload)?;
            }
            return Ok(None);
        }
        self.lookup(id, true)?;
        Ok(None)
    }

    /// Without streams no stream waits for credit.
    #[cfg(not(feature = "streams"))]
    pub(super) fn wake_blocked(&mut self) {}

    #[cfg(feature = "streams")]
    pub(super) fn on_stream_data(
        &mut self,
        fl: u8,
        id: u64,
        total: Option<u64>,
        payload: &[u8],
        base: &[u8],
    ) -> R {
        let size = total.unwrap_or(payload.len() as u64);
        let more = fl & flags::MORE != 0;
        let mut partial = item_partial(id, fl, size, payload.len());
        self.check_item(fl, id, size)?;
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

    #[cfg(feature = "streams")]
    fn take_conn_credit(&mut self, size: u64) -> Result<(), ConnectionError> {
        if self.conn_recv < size {
            return Err(violation(Status::FLOW_CONTROL_ERROR, "stream data beyond the connection credit"));
        }
        self.conn_recv -= size;
        Ok(())
    }

    #[cfg(feature = "streams")]
    pub(super) fn on_stream_end(&mut self, id: u64, status: Status, reset: bool) -> R {
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

    #[cfg(feature = "streams")]
    pub(super) fn on_stream_credit(&mut self, id: u64, msgs: u32, bytes: u32) -> R {
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
    #[cfg(feature = "streams")]
    pub(super) fn wake_blocked(&mut self) {
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
}
