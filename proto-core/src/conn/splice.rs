//! Stream items sent from their retained copy (with `alloc`, in a resumable session on a byte
//! stream). A resumable session keeps every stream item until the peer confirms it (SPEC.md
//! §13.7); instead of copying the item into the transmit queue as well, the item's whole
//! encoded frame is written once into the retained buffer, and the transmit queue refers to it
//! at the frame boundary where it belongs (a *splice*). The driver then reads it from there
//! ([`transmit_data`](Connection::transmit_data), [`transmit_pieces`](Connection::transmit_pieces)),
//! so an item costs one copy in the core instead of two. On the wire nothing changes: the
//! frames go out in the order they were queued.
//!
//! The buffer is shared (`Arc`) between the retained item and the splice, because either may
//! be dropped first: the item when the peer confirms it or the stream ends, the splice when it
//! is written or the queue is cleared. Whoever drops last returns it to the item pool.
//!
//! The transmit queue's length for its capacity check counts the splices' unsent bytes, so
//! backpressure ([`ApiError::TxFull`]) is the same as when the items were copied in.
//!
//! An item the application shares ([`Connection::stream_send_shared`]) is spliced without any
//! copy: the splice carries the frame's header itself, followed by the application's buffer
//! (kept as the retained copy too, in a resumable session).

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Connection, State};
use crate::config::Transport;
use crate::error::ApiError;
use crate::frame::Frame;
use crate::varint;

/// Where the payload begins in a spliced frame's buffer (its header just before).
pub(crate) const PAD: usize = 64;

/// Frames queued by reference to a retained buffer, in queue order.
#[derive(Debug, Default)]
pub(crate) struct Spliced {
    q: VecDeque<Splice>,
    /// Sum of the splices' `gap`s: the bytes of `tx` queued before the last splice.
    gaps: usize,
    /// Unsent bytes of the splices.
    bytes: usize,
}

#[derive(Debug)]
struct Splice {
    /// Bytes of `tx` to send before this frame (after the previous splice).
    gap: usize,
    /// The frame's header when it is not in `buf` (a shared item): `head[hoff..hlen]` is sent
    /// before `buf[off..]`.
    head: [u8; HEAD],
    hlen: u8,
    hoff: u8,
    /// The frame (or, after `head`, its payload) is `buf[off..]` (`off`: bytes already sent).
    buf: Arc<Vec<u8>>,
    off: usize,
}

/// Room for a STREAM_DATA header: type, body length and id varints (1 + 8 + 8 bytes).
const HEAD: usize = 24;

impl Splice {
    /// Its unsent bytes.
    fn left(&self) -> usize {
        usize::from(self.hlen - self.hoff) + self.buf.len() - self.off
    }

    /// The next unsent piece: the rest of the header, then of the buffer.
    fn piece(&self) -> &[u8] {
        if self.hoff < self.hlen {
            return &self.head[usize::from(self.hoff)..usize::from(self.hlen)];
        }
        self.buf.get(self.off..).unwrap_or(&[])
    }

    /// Whether the transport has taken part of it.
    fn begun(&self) -> bool {
        self.hoff > 0 || self.off > 0
    }
}

impl Spliced {
    /// Memory of the queue itself (the buffers belong to the retained items).
    pub(crate) fn footprint(&self) -> usize {
        self.q.capacity() * core::mem::size_of::<Splice>()
    }

    /// Its counters agree with its entries and with `tx_len`, the transmit queue's length.
    pub(crate) fn check(&self, tx_len: usize) -> Result<(), &'static str> {
        let gaps: usize = self.q.iter().map(|s| s.gap).sum();
        if self.q.iter().any(|s| s.hoff > s.hlen || s.off > s.buf.len()) {
            return Err("a splice's sent bytes exceed its frame");
        }
        let bytes: usize = self.q.iter().map(Splice::left).sum();
        if gaps != self.gaps || bytes != self.bytes || gaps > tx_len {
            return Err("splice counters differ from the spliced frames or the transmit queue");
        }
        if self.q.iter().any(|s| s.left() == 0) {
            return Err("a spliced frame sent whole is still queued");
        }
        Ok(())
    }

    pub(crate) fn release_memory(&mut self) {
        if self.q.is_empty() {
            self.q = VecDeque::new();
        }
    }
}

impl Connection<'_> {
    /// Queues stream item `payload` of stream `id` as one STREAM_DATA frame written into a
    /// buffer that is also kept as the item's retained copy. `Ok(false)`: not possible here
    /// (no resumable session, not a byte stream, or the item needs more than one frame); the
    /// caller copies it the ordinary way.
    pub(super) fn push_spliced_item(&mut self, id: u64, payload: &[u8]) -> Result<bool, ApiError> {
        if self.sess.is_none() {
            return Ok(false);
        }
        let Some((head, hlen, n)) = self.splice_header(id, payload)? else { return Ok(false) };
        let Some(sess) = self.sess.as_mut() else { return Ok(false) };
        let mut buf = sess.item_pool.take();
        let Some(v) = Arc::get_mut(&mut buf) else { return Ok(false) };
        // The header ends at `PAD` (a cache line into the buffer), so that the payload is
        // copied to the same alignment as the caller's bytes usually have: right after an
        // unaligned header, the copy measured nearly twice as slow (BENCHMARKS.md, issue 15).
        let off = PAD - hlen;
        v.reserve_exact(off + n);
        v.resize(off, 0);
        v.extend_from_slice(&head[..hlen]);
        v.extend_from_slice(payload);
        debug_assert_eq!(v.len(), off + n);
        sess.retain_frame(id, Arc::clone(&buf), PAD);
        self.queue_splice(Splice { gap: 0, head: [0; HEAD], hlen: 0, hoff: 0, buf, off }, n);
        Ok(true)
    }

    /// Queues stream item `item` of stream `id` as one STREAM_DATA frame sent from `item`
    /// itself (its header carried by the splice), kept as the item's retained copy in a
    /// resumable session. `Ok(false)`: not possible here (not a byte stream, an empty item, or
    /// one that needs more than one frame); the caller copies it the ordinary way.
    pub(super) fn push_shared_item(&mut self, id: u64, item: &Arc<Vec<u8>>) -> Result<bool, ApiError> {
        if item.is_empty() {
            return Ok(false);
        }
        let Some((head, hlen, n)) = self.splice_header(id, item)? else { return Ok(false) };
        if let Some(sess) = self.sess.as_mut() {
            sess.retain_frame(id, Arc::clone(item), 0);
        }
        let buf = Arc::clone(item);
        self.queue_splice(Splice { gap: 0, head, hlen: hlen as u8, hoff: 0, buf, off: 0 }, n);
        Ok(true)
    }

    /// The header of `payload`'s STREAM_DATA frame on stream `id` (type, body length, fields:
    /// `head[..hlen]`) and the whole frame's length `n`, once the transmit queue has room for
    /// it. `Ok(None)`: it cannot be spliced here (not a byte stream, no transport, more than
    /// one frame).
    fn splice_header(&self, id: u64, payload: &[u8]) -> Result<Option<([u8; HEAD], usize, usize)>, ApiError> {
        if !matches!(self.config.transport, Transport::Stream) || self.state == State::Suspended {
            return Ok(None);
        }
        let f = Frame::StreamData { flags: 0, id, total_len: None, payload };
        if f.body_len() > self.send_frame_limit() {
            return Ok(None);
        }
        let n = f.encoded_len();
        let cap = self.app_tx_capacity();
        if n > cap {
            return Err(ApiError::TooLarge { size: n, limit: cap });
        }
        if self.tx_total() + n > cap {
            return Err(ApiError::TxFull);
        }
        // The frame without its payload, then its body length corrected.
        let mut empty = [0u8; HEAD];
        let e = Frame::StreamData { flags: 0, id, total_len: None, payload: &[] }.encode(&mut empty);
        let Some(e) = e else { return Ok(None) };
        let Ok(Some((_, fields, h0))) = Frame::peek_header(&empty[..e], usize::MAX) else { return Ok(None) };
        let mut head = [0u8; HEAD];
        head[0] = empty[0];
        let l = varint::encode((fields + payload.len()) as u64, &mut head[1..9]);
        let hlen = 1 + l + (e - h0);
        if hlen > HEAD || hlen > PAD || hlen + payload.len() != n {
            return Ok(None);
        }
        head[1 + l..hlen].copy_from_slice(&empty[h0..e]);
        Ok(Some((head, hlen, n)))
    }

    /// Queues `s` (`gap` set here) at the end of the transmit queue; `n`: its frame's length.
    fn queue_splice(&mut self, mut s: Splice, n: usize) {
        s.gap = self.tx.len() - self.spliced.gaps;
        self.spliced.gaps += s.gap;
        self.spliced.bytes += n;
        self.spliced.q.push_back(s);
        self.tx_queued += n as u64;
        self.stats.frames_sent += 1;
    }

    /// Bytes queued for transmission: the transmit queue and the splices.
    pub(super) fn tx_total(&self) -> usize {
        self.tx.len() + self.spliced.bytes
    }

    /// Empties the transmit queue and drops the splices.
    pub(super) fn tx_clear(&mut self) {
        self.tx.clear();
        self.drop_splices(0);
    }

    /// Drops the splices from index `keep` on.
    fn drop_splices(&mut self, keep: usize) {
        while self.spliced.q.len() > keep {
            let Some(s) = self.spliced.q.pop_back() else { break };
            self.spliced.gaps -= s.gap;
            self.spliced.bytes -= s.left();
            self.give_back_frame(s.buf);
        }
    }

    fn give_back_frame(&mut self, buf: Arc<Vec<u8>>) {
        if let Some(sess) = self.sess.as_mut() {
            sess.item_pool.give_back(buf);
        }
    }

    /// Drops every queued frame not yet begun on the transport (see `clear_tx`): a splice the
    /// transport has taken part of stays, at the head.
    pub(super) fn clear_tx_spliced(&mut self) {
        let begun = self.spliced.q.front().is_some_and(|s| s.gap == 0 && s.begun());
        if begun {
            // The head frame is that splice: nothing of `tx` before it is left unsent.
            self.tx.truncate(0);
            self.drop_splices(1);
        } else {
            self.tx.truncate(self.tx_head_left);
            self.drop_splices(0);
        }
    }

    /// The next piece of queued bytes: up to the next splice of `tx`, or the splice itself.
    pub(super) fn tx_piece(&self) -> &[u8] {
        match self.spliced.q.front() {
            Some(s) if s.gap == 0 => s.piece(),
            Some(s) => {
                let d = self.tx.data();
                &d[..d.len().min(s.gap)]
            }
            None => self.tx.data(),
        }
    }

    /// Marks `n` bytes of [`tx_piece`](Self::tx_piece) as sent (at most its length).
    pub(super) fn tx_advance(&mut self, n: usize) {
        if let Some(s) = self.spliced.q.front_mut() {
            if s.gap == 0 {
                let n = n.min(s.piece().len());
                if s.hoff < s.hlen {
                    s.hoff += n as u8;
                } else {
                    s.off += n;
                }
                self.spliced.bytes -= n;
                if s.left() == 0 {
                    if let Some(s) = self.spliced.q.pop_front() {
                        self.give_back_frame(s.buf);
                    }
                }
                return;
            }
            let n = n.min(s.gap).min(self.tx.data().len());
            s.gap -= n;
            self.spliced.gaps -= n;
            self.consume_tx(n);
            return;
        }
        let n = n.min(self.tx.data().len());
        self.consume_tx(n);
    }

    /// The queued bytes in order, as up to `out.len()` slices (for a vectored write); returns
    /// how many were filled. Byte streams only; what [`transmit_data`](Self::transmit_data)
    /// returns is the first of them.
    pub fn transmit_pieces<'s>(&'s self, out: &mut [&'s [u8]]) -> usize {
        let mut w = Pieces { out, k: 0 };
        let (mut r1, mut r2) = self.tx.regions();
        for s in &self.spliced.q {
            w.take_tx(s.gap, &mut r1, &mut r2);
            w.put(&s.head[usize::from(s.hoff)..usize::from(s.hlen)]);
            w.put(s.buf.get(s.off..).unwrap_or(&[]));
        }
        w.take_tx(usize::MAX, &mut r1, &mut r2);
        w.k
    }
}

/// Fills a slice of pieces, ignoring empty ones and what does not fit.
struct Pieces<'o, 's> {
    out: &'o mut [&'s [u8]],
    k: usize,
}

impl<'s> Pieces<'_, 's> {
    fn put(&mut self, p: &'s [u8]) {
        if let (false, Some(slot)) = (p.is_empty(), self.out.get_mut(self.k)) {
            *slot = p;
            self.k += 1;
        }
    }

    /// The next `n` bytes of the transmit queue's two regions.
    fn take_tx(&mut self, mut n: usize, r1: &mut &'s [u8], r2: &mut &'s [u8]) {
        for r in [r1, r2] {
            let (a, b) = r.split_at(n.min(r.len()));
            n -= a.len();
            self.put(a);
            *r = b;
        }
    }
}
