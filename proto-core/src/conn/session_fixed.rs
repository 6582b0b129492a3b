//! The memory behind exactly-once delivery without an allocator (datagram mode, SPEC.md §14, and
//! with the `resume` feature session resumption, §13): the responder's reply cache and the
//! caller's retained requests (and, when resuming, unconfirmed stream items), each a log of
//! records in a caller-provided byte buffer, and the pending acknowledgements in a fixed array.
//!
//! Same interface and the same observable behaviour as the growable structures of
//! `session.rs` (which the `alloc` build uses): entries and payload bytes are capped by the same
//! [`Config`](crate::Config) values, the reply cache evicts oldest first in insertion order,
//! ACKs remove entries, and a request that does not fit is refused with
//! [`ApiError::RetainFull`](crate::ApiError::RetainFull). The buffers are sized by
//! [`Storage::replies_len`](crate::Storage::replies_len) and
//! [`Storage::retained_len`](crate::Storage::retained_len).
//!
//! A log holds records `id (u64) ‖ payload length (u32) ‖ 20 bytes of metadata ‖ payload`
//! ([`RECORD_HEADER`] bytes of header), appended at the tail in insertion order; removed records
//! are marked dead, dropped from the head as it passes them, and squeezed out by compaction when
//! the tail reaches the end of the buffer. A buffer of `max_bytes + max_entries × RECORD_HEADER`
//! bytes therefore always has room for every entry the bounds allow. Work per operation is
//! bounded by the buffer's size, whatever ids a peer sends.

use crate::event::{MethodId, SchemaKey};
use crate::frame::MAX_ACK_RANGES;
use crate::status::Status;
use crate::time::Instant;
use core::time::Duration;

#[allow(unused_imports)] // `request_digest` is reached through this module.
pub(crate) use super::digest::{request_digest, Digest};

/// Bytes of bookkeeping per record of a reply cache or retained-request log.
pub(crate) const RECORD_HEADER: usize = crate::Storage::RECORD_HEADER;
const META: usize = RECORD_HEADER - 12;
/// Id of a removed record (real ids are at most 2^62 − 1).
const DEAD: u64 = u64::MAX;
/// Marks the record of a stream item (its stream id with this bit set), kept in the retained
/// log beside the requests (never `DEAD`: ids are below 2^62).
#[cfg(feature = "resume")]
const ITEM: u64 = 1 << 63;

/// Records in insertion order in a byte buffer.
struct Log<'a> {
    buf: &'a mut [u8],
    head: usize,
    tail: usize,
    live: usize,
    bytes: usize,
}

impl<'a> Log<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Log { buf, head: 0, tail: 0, live: 0, bytes: 0 }
    }

    /// Forgets every record (the buffer is reused as is).
    #[cfg(feature = "resume")]
    fn clear(&mut self) {
        (self.head, self.tail, self.live, self.bytes) = (0, 0, 0, 0);
    }

    fn id(&self, pos: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[pos..pos + 8]);
        u64::from_le_bytes(b)
    }

    fn len_at(&self, pos: usize) -> usize {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.buf[pos + 8..pos + 12]);
        u32::from_le_bytes(b) as usize
    }

    fn next(&self, pos: usize) -> usize {
        pos + RECORD_HEADER + self.len_at(pos)
    }

    fn meta(&self, pos: usize) -> &[u8] {
        &self.buf[pos + 12..pos + RECORD_HEADER]
    }

    fn payload(&self, pos: usize) -> &[u8] {
        &self.buf[pos + RECORD_HEADER..self.next(pos)]
    }

    /// The live record for `id`.
    fn find(&self, id: u64) -> Option<usize> {
        let mut pos = self.head;
        while pos < self.tail {
            if self.id(pos) == id {
                return Some(pos);
            }
            pos = self.next(pos);
        }
        None
    }

    fn kill(&mut self, pos: usize) {
        if self.id(pos) == DEAD {
            return;
        }
        self.bytes -= self.len_at(pos);
        self.live -= 1;
        self.buf[pos..pos + 8].copy_from_slice(&DEAD.to_le_bytes());
    }

    fn trim_head(&mut self) {
        while self.head < self.tail && self.id(self.head) == DEAD {
            self.head = self.next(self.head);
        }
        if self.head >= self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Removes the oldest live record; false if there is none.
    fn pop_oldest(&mut self) -> bool {
        self.trim_head();
        if self.head >= self.tail {
            return false;
        }
        self.kill(self.head);
        self.trim_head();
        true
    }

    /// Whether a record with `len` payload bytes fits (after compaction).
    fn room(&self, len: usize) -> bool {
        (self.live + 1) * RECORD_HEADER + self.bytes + len <= self.buf.len()
    }

    /// Moves the live records to the front, in order.
    fn compact(&mut self) {
        let (mut pos, mut w) = (self.head, 0);
        while pos < self.tail {
            let next = self.next(pos);
            if self.id(pos) != DEAD {
                self.buf.copy_within(pos..next, w);
                w += next - pos;
            }
            pos = next;
        }
        self.head = 0;
        self.tail = w;
    }

    fn append(&mut self, id: u64, meta: &[u8; META], payload: &[u8]) -> bool {
        let need = RECORD_HEADER + payload.len();
        if self.tail + need > self.buf.len() {
            self.compact();
        }
        if self.tail + need > self.buf.len() || u32::try_from(payload.len()).is_err() {
            return false;
        }
        let t = self.tail;
        self.buf[t..t + 8].copy_from_slice(&id.to_le_bytes());
        self.buf[t + 8..t + 12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        self.buf[t + 12..t + RECORD_HEADER].copy_from_slice(meta);
        self.buf[t + RECORD_HEADER..t + need].copy_from_slice(payload);
        self.tail += need;
        self.live += 1;
        self.bytes += payload.len();
        true
    }
}

/// One cached answer, borrowed from the cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CachedReply<'c> {
    /// Digest of the request it answers.
    pub digest: Digest,
    /// Its status.
    pub status: Status,
    /// Its payload (empty for notifications and refusals).
    pub payload: &'c [u8],
}

/// The responder's bounded reply cache (SPEC.md §13.6) in a caller buffer.
pub(crate) struct ReplyCache<'a> {
    log: Log<'a>,
    max_entries: usize,
    max_bytes: usize,
    /// Entries dropped to make room (not acknowledged first).
    pub evicted: u64,
}

impl<'a> ReplyCache<'a> {
    /// A cache holding at most `max_entries` answers and `max_bytes` payload bytes in `buf`.
    pub fn new(max_entries: u32, max_bytes: u32, buf: &'a mut [u8]) -> Self {
        ReplyCache {
            log: Log::new(buf),
            max_entries: max_entries as usize,
            max_bytes: max_bytes as usize,
            evicted: 0,
        }
    }

    /// Empties the cache in place (a new session in the same buffer), as `new` would leave it.
    #[cfg(feature = "resume")]
    pub fn reset(&mut self) {
        self.log.clear();
        self.evicted = 0;
    }

    /// Number of cached answers.
    pub fn len(&self) -> usize {
        self.log.live
    }

    /// Total payload bytes cached.
    pub fn bytes(&self) -> usize {
        self.log.bytes
    }

    /// Caches an answer, evicting the oldest entries until it fits. Returns `false` when it is
    /// not cached at all (the cache holds no entries, or the payload alone exceeds the byte cap).
    pub fn insert(&mut self, id: u64, digest: Digest, status: Status, payload: &[u8]) -> bool {
        self.remove(id);
        if self.max_entries == 0 || payload.len() > self.max_bytes {
            return false;
        }
        while self.log.live >= self.max_entries
            || self.log.bytes + payload.len() > self.max_bytes
            || !self.log.room(payload.len())
        {
            if !self.log.pop_oldest() {
                break;
            }
            self.evicted += 1;
        }
        let mut meta = [0u8; META];
        meta[..16].copy_from_slice(&digest);
        meta[16..].copy_from_slice(&status.0.to_le_bytes());
        self.log.append(id, &meta, payload)
    }

    /// The cached answer for `id`, if any.
    pub fn get(&self, id: u64) -> Option<CachedReply<'_>> {
        let pos = self.log.find(id)?;
        let meta = self.log.meta(pos);
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&meta[..16]);
        let mut st = [0u8; 4];
        st.copy_from_slice(&meta[16..20]);
        Some(CachedReply { digest, status: Status(u32::from_le_bytes(st)), payload: self.log.payload(pos) })
    }

    /// Removes the answer for `id` (acknowledged by the caller).
    pub fn remove(&mut self, id: u64) {
        if let Some(pos) = self.log.find(id) {
            self.log.kill(pos);
            self.log.trim_head();
        }
    }

    /// Removes the answers for every id in `first..=last` of `first`'s parity (an ACK range;
    /// the work is bounded by the cache size, not by the range's length).
    pub fn remove_range(&mut self, first: u64, last: u64) {
        let mut pos = self.log.head;
        while pos < self.log.tail {
            let id = self.log.id(pos);
            if id != DEAD && id >= first && id <= last && id % 2 == first % 2 {
                self.log.kill(pos);
            }
            pos = self.log.next(pos);
        }
        self.log.trim_head();
    }
}

/// A request the caller keeps until it is answered, borrowed from the outbox.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retained<'c> {
    /// Frame type (CALL, NOTIFY or STREAM_OPEN).
    pub ty: u8,
    /// The addressed method.
    pub method: MethodId,
    /// FIN flag of a STREAM_OPEN (the only flag that survives a retransmission).
    #[cfg_attr(not(feature = "resume"), allow(dead_code))]
    pub fin: bool,
    /// The schema key it was opened with.
    pub key: Option<SchemaKey>,
    /// The request payload.
    pub payload: &'c [u8],
}

/// The caller's retained requests, bounded in bytes, in a caller buffer. With `resume`, the
/// unconfirmed items of our streams (SPEC.md §13.7) share the buffer and the byte bound.
pub(crate) struct Outbox<'a> {
    log: Log<'a>,
    max_bytes: usize,
    /// Stream item records among the log's records, and their payload bytes.
    #[cfg(feature = "resume")]
    items: (usize, usize),
}

impl<'a> Outbox<'a> {
    /// An outbox holding at most `max_bytes` of request payload in `buf`.
    pub fn new(max_bytes: u32, buf: &'a mut [u8]) -> Self {
        Outbox {
            log: Log::new(buf),
            max_bytes: max_bytes as usize,
            #[cfg(feature = "resume")]
            items: (0, 0),
        }
    }

    /// Forgets every request and item in place (a new session in the same buffer).
    #[cfg(feature = "resume")]
    pub fn reset(&mut self) {
        self.log.clear();
        #[cfg(feature = "resume")]
        {
            self.items = (0, 0);
        }
    }

    /// Whether a request of `len` bytes fits now.
    pub fn has_room(&self, len: usize) -> bool {
        self.log.bytes + len <= self.max_bytes && self.log.room(len)
    }

    /// The byte cap.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Keeps a copy of a request. The caller checked [`has_room`](Self::has_room).
    pub fn insert(
        &mut self,
        id: u64,
        ty: u8,
        method: MethodId,
        fin: bool,
        key: Option<SchemaKey>,
        payload: &[u8],
    ) {
        self.remove(id);
        let mut meta = [0u8; META];
        meta[0] = ty;
        meta[1] = u8::from(fin);
        meta[2] = u8::from(key.is_some());
        meta[3..11].copy_from_slice(&key.map_or([0; 8], |k| k.0));
        meta[11..15].copy_from_slice(&method.module.to_le_bytes());
        meta[15..19].copy_from_slice(&method.method.to_le_bytes());
        let _ = self.log.append(id, &meta, payload);
    }

    /// The retained request `id`.
    pub fn get(&self, id: u64) -> Option<Retained<'_>> {
        let pos = self.log.find(id)?;
        let m = self.log.meta(pos);
        let u32_at = |i: usize| u32::from_le_bytes([m[i], m[i + 1], m[i + 2], m[i + 3]]);
        let mut key = [0u8; 8];
        key.copy_from_slice(&m[3..11]);
        Some(Retained {
            ty: m[0],
            fin: m[1] != 0,
            method: MethodId { module: u32_at(11), method: u32_at(15) },
            key: (m[2] != 0).then_some(SchemaKey(key)),
            payload: self.log.payload(pos),
        })
    }

    /// Forgets request `id` (answered, or the exchange is over).
    pub fn remove(&mut self, id: u64) {
        if let Some(pos) = self.log.find(id) {
            self.log.kill(pos);
            self.log.trim_head();
        }
    }

    /// Number of retained requests.
    pub fn len(&self) -> usize {
        #[cfg(feature = "resume")]
        return self.log.live - self.items.0;
        #[cfg(not(feature = "resume"))]
        return self.log.live;
    }

    /// Total payload bytes retained.
    pub fn bytes(&self) -> usize {
        #[cfg(feature = "resume")]
        return self.log.bytes - self.items.1;
        #[cfg(not(feature = "resume"))]
        return self.log.bytes;
    }
}

#[cfg(feature = "resume")]
impl Outbox<'_> {
    /// The first retained request id at or above `from` (a scan: the log is in insertion
    /// order, and ids are opened in increasing order but records are re-appended).
    pub fn next_from(&self, from: u64) -> Option<u64> {
        let (mut pos, mut best) = (self.log.head, None::<u64>);
        while pos < self.log.tail {
            let id = self.log.id(pos);
            if id & ITEM == 0 && id >= from && best.map_or(true, |b| id < b) {
                best = Some(id);
            }
            pos = self.log.next(pos);
        }
        best
    }

    /// Whether a stream item of `len` bytes fits now (the byte bound `max_retained_bytes`,
    /// shared with the requests, and the buffer).
    pub fn item_room(&self, len: usize) -> bool {
        self.log.bytes + len <= self.max_bytes && self.log.room(len)
    }

    /// Keeps a copy of an item just sent on stream `id`; false if it does not fit.
    pub fn push_item(&mut self, id: u64, item: &[u8]) -> bool {
        if !self.item_room(item.len()) {
            return false;
        }
        let ok = self.log.append(id | ITEM, &[0; META], item);
        if ok {
            self.items.0 += 1;
            self.items.1 += item.len();
        }
        ok
    }

    /// Position of the `k`-th (from 0) retained item of stream `id`, oldest first.
    fn item_pos(&self, id: u64, mut k: usize) -> Option<usize> {
        let mut pos = self.log.head;
        while pos < self.log.tail {
            if self.log.id(pos) == id | ITEM {
                if k == 0 {
                    return Some(pos);
                }
                k -= 1;
            }
            pos = self.log.next(pos);
        }
        None
    }

    /// The `k`-th (from 0) unconfirmed item of stream `id`.
    pub fn item(&self, id: u64, k: usize) -> Option<&[u8]> {
        self.item_pos(id, k).map(|pos| self.log.payload(pos))
    }

    /// Drops the oldest `n` items of stream `id` (confirmed received); returns how many were
    /// there to drop.
    pub fn drop_items(&mut self, id: u64, n: usize) -> usize {
        let mut done = 0;
        while done < n {
            let Some(pos) = self.item_pos(id, 0) else { break };
            self.items.0 -= 1;
            self.items.1 -= self.log.len_at(pos);
            self.log.kill(pos);
            done += 1;
        }
        self.log.trim_head();
        done
    }
}

/// An ACK is due once this many responses are unacknowledged…
pub(crate) const ACK_THRESHOLD: usize = 16;
/// …or this long after the oldest of them arrived.
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(100);
/// Ids kept at most; beyond it the oldest are dropped (an ACK is only an optimisation: the
/// responder's cache is bounded anyway, and a duplicate RESPONSE is acknowledged again). More
/// than [`ACK_THRESHOLD`] ids wait only while the transmit queue is full.
const ACK_CAP: usize = 64;

/// Acknowledged ids remembered for re-acknowledgement after a resumption, the same in both
/// builds (see [`RECENT_ACKS`](super::RECENT_ACKS)).
#[cfg(feature = "resume")]
const RECENT_CAP: usize = super::RECENT_ACKS;

/// Ids of received RESPONSEs not yet acknowledged (SPEC.md §13.6, §14.6), in a fixed array.
pub(crate) struct AckQueue {
    ids: [u64; ACK_CAP],
    len: usize,
    oldest: Option<Instant>,
    /// Ids acknowledged on the current transport (a ring, `recent.1` of them, the newest
    /// before `recent.2`): sent again after a resumption.
    #[cfg(feature = "resume")]
    recent: ([u64; RECENT_CAP], usize, usize),
}

impl Default for AckQueue {
    fn default() -> Self {
        AckQueue {
            ids: [0; ACK_CAP],
            len: 0,
            oldest: None,
            #[cfg(feature = "resume")]
            recent: ([0; RECENT_CAP], 0, 0),
        }
    }
}

impl AckQueue {
    /// Records that the RESPONSE for `id` arrived at `now`.
    pub fn push(&mut self, now: Instant, id: u64) {
        if self.len >= ACK_CAP {
            self.ids.copy_within(1.., 0);
            self.len -= 1;
        }
        self.ids[self.len] = id;
        self.len += 1;
        self.oldest.get_or_insert(now);
    }

    /// When an ACK must be sent, if any is pending.
    pub fn deadline(&self) -> Option<Instant> {
        if self.len >= ACK_THRESHOLD {
            return self.oldest.map(|_| Instant::ZERO);
        }
        self.oldest.map(|t| t + ACK_DELAY)
    }

    /// Takes up to [`MAX_ACK_RANGES`] ranges `(first_id, n)` covering the pending ids (all of
    /// one parity), leaving the rest pending.
    pub fn take_ranges(&mut self, out: &mut [(u64, u64); MAX_ACK_RANGES]) -> usize {
        let ids = &mut self.ids[..self.len];
        // Insertion sort: at most ACK_CAP ids, mostly in order already (responses arrive about
        // in id order), and a few hundred bytes of code where `sort_unstable` brings ~4.5 KiB
        // into a firmware image.
        for i in 1..ids.len() {
            let mut j = i;
            while j > 0 && ids[j - 1] > ids[j] {
                ids.swap(j - 1, j);
                j -= 1;
            }
        }
        // Dedup in place.
        let mut k = 0;
        for i in 0..ids.len() {
            if k == 0 || ids[k - 1] != ids[i] {
                ids[k] = ids[i];
                k += 1;
            }
        }
        self.len = k;
        let (mut n, mut used) = (0, 0);
        for &id in &self.ids[..self.len] {
            if n > 0 && out[n - 1].0 + 2 * out[n - 1].1 == id {
                out[n - 1].1 += 1;
            } else if n == MAX_ACK_RANGES {
                break;
            } else {
                out[n] = (id, 1);
                n += 1;
            }
            used += 1;
        }
        #[cfg(feature = "resume")]
        for i in 0..used {
            let (ring, n, next) = &mut self.recent;
            ring[*next] = self.ids[i];
            *next = (*next + 1) % RECENT_CAP;
            *n = (*n + 1).min(RECENT_CAP);
        }
        self.ids.copy_within(used..self.len, 0);
        self.len -= used;
        if self.len == 0 {
            self.oldest = None;
        }
        n
    }
}

#[cfg(feature = "resume")]
impl AckQueue {
    /// After a resumption: the ACKs sent on the lost transport may never have arrived; send
    /// them again (acknowledging an id no longer cached is harmless).
    pub fn requeue_recent(&mut self, now: Instant) {
        let (ring, n, next) = self.recent;
        if n == 0 {
            return;
        }
        for k in 0..n {
            self.push(now, ring[(next + RECENT_CAP - n + k) % RECENT_CAP]);
        }
        self.recent.1 = 0;
    }
}

/// A FIFO of ids in a caller buffer (8 bytes each, little-endian), `len` of them from `first`.
#[cfg(feature = "resume")]
struct IdRing<'a> {
    buf: &'a mut [u8],
    len: usize,
    first: usize,
}

#[cfg(feature = "resume")]
impl<'a> IdRing<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        IdRing { buf, len: 0, first: 0 }
    }

    fn cap(&self) -> usize {
        self.buf.len() / 8
    }

    fn at(&self, k: usize) -> u64 {
        let p = (self.first + k) % self.cap() * 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.buf[p..p + 8]);
        u64::from_le_bytes(b)
    }

    /// Appends `id`; false when full.
    fn push(&mut self, id: u64) -> bool {
        if self.len >= self.cap() {
            return false;
        }
        let p = (self.first + self.len) % self.cap() * 8;
        self.buf[p..p + 8].copy_from_slice(&id.to_le_bytes());
        self.len += 1;
        true
    }

    fn front(&self) -> Option<u64> {
        (self.len > 0).then(|| self.at(0))
    }

    fn pop(&mut self) {
        if self.len > 0 {
            self.first = (self.first + 1) % self.cap();
            self.len -= 1;
        }
    }
}

/// Marks an owed answer to a STREAM_OPEN in the owed ring (ids are below 2^62).
#[cfg(feature = "resume")]
const OWED_STREAM: u64 = 1 << 63;

/// Everything a connection keeps for exactly-once delivery in datagram mode or a resumable
/// session, in caller storage.
pub(crate) struct SessionState<'a> {
    /// Answers we sent, for retransmitted requests.
    pub cache: ReplyCache<'a>,
    /// Requests we sent and have not seen answered (and, resuming, unconfirmed stream items).
    pub outbox: Outbox<'a>,
    /// Answers we received and have not acknowledged.
    pub acks: AckQueue,
    /// Answers to retransmitted requests that did not fit the transmit queue yet (the id, with
    /// [`OWED_STREAM`] for a stream), at most [`Storage::owed_answers`](crate::Storage::owed_answers),
    /// in the front of the `replies` buffer of a resumable session (none in datagram mode).
    #[cfg(feature = "resume")]
    owed: IdRing<'a>,
}

impl<'a> SessionState<'a> {
    /// Empty state sized by our configuration, in the caller's buffers. A resumable session
    /// (not datagram mode) keeps its owed answers in the first
    /// [`Storage::session_owed_len`](crate::Storage::session_owed_len) bytes of `replies`.
    pub fn new(config: &crate::Config, replies: &'a mut [u8], retained: &'a mut [u8]) -> Self {
        #[cfg(feature = "resume")]
        let (owed, replies) =
            replies.split_at_mut(crate::Storage::session_owed_len(config).min(replies.len()));
        SessionState {
            cache: ReplyCache::new(config.reply_cache_entries, config.reply_cache_bytes, replies),
            outbox: Outbox::new(config.max_retained_bytes, retained),
            acks: AckQueue::default(),
            #[cfg(feature = "resume")]
            owed: IdRing::new(owed),
        }
    }

    /// Empties everything in place for a new session (what `new` gives, in the same buffers).
    #[cfg(feature = "resume")]
    pub fn reset(&mut self) {
        self.cache.reset();
        self.outbox.reset();
        self.acks = AckQueue::default();
        self.owed.len = 0;
    }
}

/// Stream items and owed answers (SPEC.md §13.5, §13.7), the interface `resume.rs` uses with
/// either implementation.
#[cfg(feature = "resume")]
impl SessionState<'_> {
    /// Keeps a copy of an item sent on stream `id`; false if the retained buffer is full.
    pub fn retain_item(&mut self, id: u64, item: &[u8]) -> bool {
        self.outbox.push_item(id, item)
    }

    /// The `k`-th unconfirmed item of stream `id`.
    pub fn item(&self, id: u64, k: usize) -> Option<&[u8]> {
        self.outbox.item(id, k)
    }

    /// Drops the oldest `n` unconfirmed items of stream `id`; returns how many were dropped.
    pub fn drop_items(&mut self, id: u64, n: usize) -> usize {
        self.outbox.drop_items(id, n)
    }

    /// Drops every item of stream `id` (the stream is over).
    pub fn forget_items(&mut self, id: u64) {
        self.outbox.drop_items(id, usize::MAX);
    }

    /// Number of answers owed.
    pub fn owed_len(&self) -> usize {
        self.owed.len
    }

    /// Owes an answer; false when the ring (sized for
    /// [`Storage::owed_answers`](crate::Storage::owed_answers)) is full.
    pub fn owe(&mut self, id: u64, stream: bool) -> bool {
        self.owed.push(id | if stream { OWED_STREAM } else { 0 })
    }

    /// The oldest owed answer.
    pub fn owed_front(&self) -> Option<(u64, bool)> {
        self.owed.front().map(|v| (v & !OWED_STREAM, v & OWED_STREAM != 0))
    }

    /// Drops the oldest owed answer.
    pub fn owed_pop(&mut self) {
        self.owed.pop();
    }
}

#[cfg(test)]
#[path = "session_fixed_tests.rs"]
mod tests;
