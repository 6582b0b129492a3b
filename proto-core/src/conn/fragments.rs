//! Messages larger than a frame (SPEC.md §9): the one message in reassembly and its
//! CONTINUATION frames. Without the `fragmentation` feature nothing is reassembled (§9.7): a
//! first frame with MORE is LIMIT_EXCEEDED (the peer announced limits under which every message
//! fits one frame) and a CONTINUATION is PROTOCOL_ERROR (no message is in progress, §9.3).

use super::recv::{protocol, violation, R};
use super::Connection;
use super::Partial;
use crate::error::ConnectionError;
use crate::status::Status;
#[cfg(feature = "fragmentation")]
use {
    super::recv::request_kind,
    super::{Kind, Pending, Raw, Src},
    crate::frame::{flags, ty},
    crate::time::Instant,
};

#[cfg(not(feature = "fragmentation"))]
impl Connection<'_> {
    /// Without fragmentation: the first frame of a fragmented message (SPEC.md §9.7).
    pub(super) fn begin_partial(&mut self, _p: Partial, _chunk: &[u8]) -> Result<(), ConnectionError> {
        Err(violation(
            Status::LIMIT_EXCEEDED,
            "fragmented message to a peer without fragmentation (every message must fit one frame)",
        ))
    }

    /// Without fragmentation no message is ever in progress (SPEC.md §9.3, §9.7).
    pub(super) fn on_continuation(&mut self, _fl: u8, _id: u64, _chunk: &[u8]) -> R {
        Err(protocol("CONTINUATION without a fragmented message in progress"))
    }
}

#[cfg(feature = "fragmentation")]
impl Connection<'_> {
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

    pub(super) fn on_continuation(&mut self, fl: u8, id: u64, chunk: &[u8]) -> R {
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
