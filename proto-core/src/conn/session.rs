//! The memory behind exactly-once delivery (SPEC.md §13 resumption, §14 datagram mode): the
//! responder's reply cache, the caller's retained requests, pending acknowledgements, and the
//! request digest that ties a retransmission to its original.
//!
//! Every structure here is bounded by a [`Config`](crate::Config) value, so a peer can never
//! make it grow past what the configuration allows. Needs the `alloc` feature; without it,
//! datagram mode uses `session_fixed.rs`, the same interface over caller buffers.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;

pub(crate) use super::digest::{request_digest, Digest};
use crate::event::MethodId;
use crate::frame::MAX_ACK_RANGES;
use crate::status::Status;
use crate::time::Instant;
use core::time::Duration;

/// Spare payload buffers, so that steady traffic reuses memory instead of allocating per
/// exchange. Bounded: at most `POOL_MAX` buffers of at most `POOL_BUF_MAX` bytes, and at most
/// `POOL_BYTES` in all, are kept.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    spare: Vec<Vec<u8>>,
    /// The capacity of `spare`'s buffers, summed.
    bytes: usize,
}

/// Enough buffers for 64 calls in flight plus the replies awaiting their ACK (up to 16 more,
/// SPEC.md §13.6): with 64 kept, that pipeline freed and allocated ~30 buffers per 2,000 calls.
const POOL_MAX: usize = 128;
const POOL_BUF_MAX: usize = 64 * 1024;
/// The bound the pool had when it kept 64 buffers of any size up to `POOL_BUF_MAX`.
const POOL_BYTES: usize = 64 * POOL_BUF_MAX;

impl Pool {
    /// A buffer holding a copy of `data`.
    pub fn copy(&mut self, data: &[u8]) -> Vec<u8> {
        let mut v = match self.spare.pop() {
            Some(v) => {
                self.bytes -= v.capacity();
                v
            }
            None => Vec::new(),
        };
        v.clear();
        v.extend_from_slice(data);
        v
    }
    pub fn give_back(&mut self, v: Vec<u8>) {
        let cap = v.capacity();
        if self.spare.len() < POOL_MAX && cap <= POOL_BUF_MAX && self.bytes + cap <= POOL_BYTES {
            self.bytes += cap;
            self.spare.push(v);
        }
    }
    /// Bytes held by spare buffers.
    pub fn held(&self) -> usize {
        self.bytes + self.spare.capacity() * core::mem::size_of::<Vec<u8>>()
    }
    /// Frees every spare buffer; returns the bytes freed.
    pub fn clear(&mut self) -> usize {
        let held = self.held();
        self.spare = Vec::new();
        self.bytes = 0;
        held
    }
}

/// Slack over [`POOL_BUF_MAX`] for an item kept with its frame header
/// ([`SessionState::retain_frame`]), so that a 64 KiB item's buffer is still recycled.
const FRAME_SLACK: usize = super::splice::PAD;

/// A stream item kept until the peer confirms it: `buf[start..]` is the item. `buf` is shared
/// with the transmit path when it holds the item's whole encoded frame (`start` is then the
/// header's length) and that frame is still being sent.
#[derive(Debug)]
pub(crate) struct RetainedItem {
    buf: Arc<Vec<u8>>,
    start: usize,
}

/// Most buffers an [`ItemPool`] keeps.
const ITEM_POOL_MAX: usize = 64;

/// Spare buffers for stream items; only buffers nothing else shares are kept, and no more of
/// them than the pool has lent out: items sent from the caller's own buffer
/// (`stream_send_shared`) come back here too once confirmed, and a pool that kept those would
/// fill up to [`ITEM_POOL_MAX`] buffers that it never hands out again (measured: 64 buffers of
/// 40 KiB at each end of a connection streaming typed items, ~4 MiB per end while busy).
#[derive(Debug, Default)]
pub(crate) struct ItemPool {
    spare: Vec<Arc<Vec<u8>>>,
    /// Buffers handed out by `take` and not given back yet (approximately: a buffer of the
    /// caller's given back while one of ours is out takes its place).
    lent: usize,
}

impl ItemPool {
    /// An empty buffer nothing else shares (recycled if possible).
    pub fn take(&mut self) -> Arc<Vec<u8>> {
        self.lent = self.lent.saturating_add(1);
        let mut a = self.spare.pop().unwrap_or_default();
        if let Some(v) = Arc::get_mut(&mut a) {
            v.clear();
            return a;
        }
        Arc::default()
    }
    /// Keeps `a` for reuse when it is the last holder of its buffer (otherwise just drops this
    /// holder: the other one gives the buffer back later) and one lent buffer is still out.
    pub fn give_back(&mut self, mut a: Arc<Vec<u8>>) {
        let Some(v) = Arc::get_mut(&mut a) else { return };
        if self.lent == 0 {
            return;
        }
        self.lent -= 1;
        if v.capacity() <= POOL_BUF_MAX + FRAME_SLACK && self.spare.len() < ITEM_POOL_MAX {
            self.spare.push(a);
        }
    }
    /// Bytes held by spare buffers.
    pub fn held(&self) -> usize {
        self.spare.iter().map(|a| a.capacity()).sum::<usize>()
            + self.spare.capacity() * core::mem::size_of::<Arc<Vec<u8>>>()
    }
    /// Frees every spare buffer; returns the bytes freed.
    pub fn clear(&mut self) -> usize {
        let held = self.held();
        self.spare = Vec::new();
        held
    }
}

/// One cached answer.
#[derive(Clone, Debug)]
pub(crate) struct CachedReply {
    id: u64,
    /// Digest of the request it answers.
    pub digest: Digest,
    /// Its status.
    pub status: Status,
    /// Its payload (empty for notifications and refusals).
    pub payload: Vec<u8>,
    /// Removed (acknowledged, replaced or evicted); dropped from the queue lazily.
    dead: bool,
}

/// The responder's bounded reply cache (SPEC.md §13.6): entries and payload bytes are capped,
/// eviction is oldest-first in insertion order, acknowledged entries are removed.
///
/// Entries live in one queue in insertion order (lookups scan it: it holds at most
/// `reply_cache_entries` live entries, and lookups happen only for retransmissions and ACKs), and
/// payload buffers are recycled, so a steady flow of answers and ACKs allocates nothing.
#[derive(Debug, Default)]
pub(crate) struct ReplyCache {
    queue: VecDeque<CachedReply>,
    live: usize,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    pool: Pool,
    /// Entries dropped to make room (not acknowledged first).
    pub evicted: u64,
    /// The highest id ever inserted since the last reset: no entry has a higher one.
    highest: Option<u64>,
}

impl ReplyCache {
    /// A cache holding at most `max_entries` answers and `max_bytes` payload bytes.
    pub fn new(max_entries: u32, max_bytes: u32) -> Self {
        ReplyCache { max_entries: max_entries as usize, max_bytes: max_bytes as usize, ..Default::default() }
    }

    /// Empties the cache in place (a new session), as `new` would leave it; its memory is
    /// kept for reuse (spare buffers, bounded by the pool).
    pub fn reset(&mut self) {
        while let Some(e) = self.queue.pop_front() {
            self.pool.give_back(e.payload);
        }
        (self.live, self.bytes, self.evicted, self.highest) = (0, 0, 0, None);
    }

    /// Number of cached answers.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Total payload bytes cached.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Memory the cache holds: payloads, per-entry bookkeeping, and spare buffers.
    pub fn footprint(&self) -> usize {
        self.bytes + self.queue.capacity() * core::mem::size_of::<CachedReply>() + self.pool.held()
    }

    /// Frees at least `want` bytes if it can: spare buffers first, then the oldest answers
    /// (evicted as if the byte bound had been reached, SPEC.md §13.6). Returns the bytes freed.
    pub fn shed(&mut self, want: usize) -> usize {
        let mut freed = self.pool.clear();
        while freed < want && self.live > 0 {
            let before = self.bytes;
            self.trim_front();
            let Some(e) = self.queue.pop_front() else { break };
            self.bytes -= e.payload.len();
            self.live -= 1;
            self.evicted += 1;
            freed += (before - self.bytes) + core::mem::size_of::<CachedReply>();
        }
        if self.live == 0 {
            freed += self.queue.capacity() * core::mem::size_of::<CachedReply>();
            self.queue = VecDeque::new();
        }
        freed
    }

    /// Caches an answer, evicting the oldest entries until it fits. Returns `false` when it is
    /// not cached at all (the cache holds no entries, or the payload alone exceeds the byte cap).
    pub fn insert(&mut self, id: u64, digest: Digest, status: Status, payload: &[u8]) -> bool {
        // An id above every id ever cached is not in the cache: no scan for it (the usual case,
        // answers in order).
        if self.highest.is_some_and(|h| id <= h) {
            self.remove(id);
        }
        self.highest = Some(self.highest.map_or(id, |h| h.max(id)));
        if self.max_entries == 0 || payload.len() > self.max_bytes {
            return false;
        }
        while self.live >= self.max_entries || self.bytes + payload.len() > self.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        let payload = self.pool.copy(payload);
        self.bytes += payload.len();
        self.live += 1;
        self.queue.push_back(CachedReply { id, digest, status, payload, dead: false });
        true
    }

    fn evict_oldest(&mut self) -> bool {
        self.trim_front();
        let Some(e) = self.queue.pop_front() else { return false };
        self.bytes -= e.payload.len();
        self.live -= 1;
        self.pool.give_back(e.payload);
        self.evicted += 1;
        true
    }

    /// Drops removed entries from the front; rebuilds the queue when removed entries elsewhere
    /// outnumber the live ones, so the queue stays within twice the live count.
    fn trim_front(&mut self) {
        while self.queue.front().is_some_and(|e| e.dead) {
            self.queue.pop_front();
        }
        if self.queue.len() > 2 * self.live + 16 {
            self.queue.retain(|e| !e.dead);
        }
    }

    /// The cached answer for `id`, if any.
    pub fn get(&self, id: u64) -> Option<&CachedReply> {
        self.queue.iter().rev().find(|e| !e.dead && e.id == id)
    }

    fn kill(&mut self, i: usize) {
        let Some(e) = self.queue.get_mut(i) else { return };
        if e.dead {
            return;
        }
        e.dead = true;
        let payload = core::mem::take(&mut e.payload);
        self.bytes -= payload.len();
        self.live -= 1;
        self.pool.give_back(payload);
    }

    /// Removes the answer for `id` (acknowledged by the caller).
    pub fn remove(&mut self, id: u64) {
        if let Some(i) = self.queue.iter().rposition(|e| !e.dead && e.id == id) {
            self.kill(i);
            self.trim_front();
        }
    }

    /// Removes the answers for every id in `first..=last` of `first`'s parity (an ACK range;
    /// the work is bounded by the cache size, not by the range's length).
    pub fn remove_range(&mut self, first: u64, last: u64) {
        for i in 0..self.queue.len() {
            let e = &self.queue[i];
            if !e.dead && e.id >= first && e.id <= last && e.id % 2 == first % 2 {
                self.kill(i);
            }
        }
        self.trim_front();
    }
}

/// Everything a connection keeps for exactly-once delivery, allocated when the session turns out
/// to be resumable (or at once in datagram mode).
#[derive(Debug)]
pub(crate) struct SessionState {
    /// Answers we sent, for retransmitted requests.
    pub cache: ReplyCache,
    /// Requests we sent and have not seen answered.
    pub outbox: Outbox,
    /// Answers we received and have not acknowledged.
    pub acks: AckQueue,
    /// Stream items we sent and do not yet know received, per stream, oldest first (§13.7).
    /// Bounded by the peer's credit windows: an item is confirmed when its credit comes back.
    pub items: BTreeMap<u64, VecDeque<RetainedItem>>,
    /// Recycled buffers for `items`.
    pub item_pool: ItemPool,
    /// Answers to retransmitted requests that did not fit the transmit queue yet: `(id, is a
    /// stream)`, sent as it drains.
    pub owed: VecDeque<(u64, bool)>,
}

impl SessionState {
    /// Memory held for exactly-once delivery: reply cache, retained requests, unconfirmed
    /// stream items and spare buffers (what a server-wide session budget counts).
    pub fn footprint(&self) -> usize {
        self.cache.footprint()
            + self.outbox.footprint()
            + self.items.values().flat_map(|q| q.iter()).map(|r| r.buf.capacity()).sum::<usize>()
            + self.item_pool.held()
    }

    /// What [`shed`](Self::shed) could free at most.
    pub fn sheddable(&self) -> usize {
        self.cache.footprint() + self.item_pool.held() + self.outbox.pool.held()
    }

    /// Frees at least `want` bytes if it can without breaking a promise: spare buffers, then
    /// the oldest cached answers. Retained requests and unconfirmed stream items are kept (the
    /// exchanges they belong to are still open). Returns the bytes freed.
    pub fn shed(&mut self, want: usize) -> usize {
        let freed = self.item_pool.clear() + self.outbox.pool.clear() + self.outbox.release_if_empty();
        freed + self.cache.shed(want.saturating_sub(freed))
    }

    /// Empties everything in place for a new session (what `new` gives; memory is kept).
    pub fn reset(&mut self) {
        self.cache.reset();
        self.outbox.reset();
        self.acks = AckQueue::default();
        let ids: alloc::vec::Vec<u64> = self.items.keys().copied().collect();
        for id in ids {
            self.forget_items(id);
        }
        self.owed.clear();
    }

    /// Keeps a copy of an item sent on stream `id` (always: the peer's credit bounds them).
    pub fn retain_item(&mut self, id: u64, item: &[u8]) -> bool {
        let mut buf = self.item_pool.take();
        match Arc::get_mut(&mut buf) {
            Some(v) => v.extend_from_slice(item),
            None => buf = Arc::new(item.to_vec()),
        }
        self.items.entry(id).or_default().push_back(RetainedItem { buf, start: 0 });
        true
    }

    /// Keeps the item on stream `id` whose whole encoded frame is `frame` (`start`: where the
    /// item begins in it), the buffer the transmit queue sends it from (SPEC.md §13.7).
    pub fn retain_frame(&mut self, id: u64, frame: Arc<Vec<u8>>, start: usize) {
        self.items.entry(id).or_default().push_back(RetainedItem { buf: frame, start });
    }

    /// The `k`-th unconfirmed item of stream `id`.
    pub fn item(&self, id: u64, k: usize) -> Option<&[u8]> {
        self.items.get(&id).and_then(|q| q.get(k)).and_then(|r| r.buf.get(r.start..))
    }

    /// Drops the oldest `n` unconfirmed items of stream `id`; returns how many were dropped.
    pub fn drop_items(&mut self, id: u64, n: usize) -> usize {
        let Some(q) = self.items.get_mut(&id) else { return 0 };
        let n = n.min(q.len());
        for r in q.drain(..n) {
            self.item_pool.give_back(r.buf);
        }
        n
    }

    /// Drops every item of stream `id` (the stream is over).
    pub fn forget_items(&mut self, id: u64) {
        if let Some(q) = self.items.remove(&id) {
            for r in q {
                self.item_pool.give_back(r.buf);
            }
        }
    }

    /// Number of answers owed.
    pub fn owed_len(&self) -> usize {
        self.owed.len()
    }

    /// Owes an answer (the caller bounds their number).
    pub fn owe(&mut self, id: u64, stream: bool) -> bool {
        self.owed.push_back((id, stream));
        true
    }

    /// The oldest owed answer.
    pub fn owed_front(&self) -> Option<(u64, bool)> {
        self.owed.front().copied()
    }

    /// Drops the oldest owed answer.
    pub fn owed_pop(&mut self) {
        self.owed.pop_front();
    }

    /// Empty state sized by our configuration.
    pub fn new(config: &crate::Config) -> Self {
        SessionState {
            cache: ReplyCache::new(config.reply_cache_entries, config.reply_cache_bytes),
            outbox: Outbox::new(config.max_retained_bytes),
            acks: AckQueue::default(),
            items: BTreeMap::new(),
            item_pool: ItemPool::default(),
            owed: VecDeque::new(),
        }
    }
}

/// A request the caller keeps until it is answered, to retransmit it with its original id.
#[derive(Clone, Debug)]
pub(crate) struct Retained {
    /// Frame type (CALL, NOTIFY or STREAM_OPEN).
    pub ty: u8,
    /// The addressed method.
    pub method: MethodId,
    /// FIN flag of a STREAM_OPEN (the only flag that survives a retransmission).
    pub fin: bool,
    /// The schema key it was opened with (a retransmission carries it again, SPEC.md §7.10).
    pub key: Option<crate::event::SchemaKey>,
    /// The request payload.
    pub payload: Vec<u8>,
}

/// The caller's retained requests, bounded in bytes. Ids are opened in increasing order, so the
/// queue stays sorted by id; payload buffers are recycled (no allocation in steady state).
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: VecDeque<(u64, Retained)>,
    bytes: usize,
    max_bytes: usize,
    pub pool: Pool,
}

impl Outbox {
    /// An outbox holding at most `max_bytes` of request payload.
    pub fn new(max_bytes: u32) -> Self {
        Outbox { max_bytes: max_bytes as usize, ..Default::default() }
    }

    /// Whether a request of `len` bytes fits now.
    pub fn has_room(&self, len: usize) -> bool {
        self.bytes + len <= self.max_bytes
    }

    /// The byte cap.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn position(&self, id: u64) -> Result<usize, usize> {
        // The usual cases without a search: a new request (above every retained id) and the
        // answer to the oldest one.
        match (self.queue.front(), self.queue.back()) {
            (_, None) => return Err(0),
            (_, Some(b)) if id > b.0 => return Err(self.queue.len()),
            (Some(f), _) if id == f.0 => return Ok(0),
            _ => {}
        }
        self.queue.binary_search_by_key(&id, |e| e.0)
    }

    /// Forgets every request in place (a new session); buffers go to the pool.
    pub fn reset(&mut self) {
        while let Some((_, r)) = self.queue.pop_front() {
            self.pool.give_back(r.payload);
        }
        self.bytes = 0;
    }

    /// Gives the queue's memory back if no request is retained (a burst of requests must not
    /// size it for the session's whole life). Returns the bytes freed.
    pub fn release_if_empty(&mut self) -> usize {
        if !self.queue.is_empty() {
            return 0;
        }
        let freed = self.queue.capacity() * core::mem::size_of::<(u64, Retained)>();
        self.queue = VecDeque::new();
        freed
    }

    /// Keeps a copy of a request. The caller checked [`has_room`](Self::has_room).
    pub fn insert(
        &mut self,
        id: u64,
        ty: u8,
        method: MethodId,
        fin: bool,
        key: Option<crate::event::SchemaKey>,
        payload: &[u8],
    ) {
        self.remove(id);
        let payload = self.pool.copy(payload);
        self.bytes += payload.len();
        let r = Retained { ty, method, fin, key, payload };
        match self.position(id) {
            // The usual case: a new request, above every retained id.
            Err(i) if i == self.queue.len() => self.queue.push_back((id, r)),
            Ok(i) | Err(i) => self.queue.insert(i, (id, r)),
        }
    }

    /// The retained request `id`.
    pub fn get(&self, id: u64) -> Option<&Retained> {
        self.position(id).ok().map(|i| &self.queue[i].1)
    }

    /// Forgets request `id` (answered, or the exchange is over).
    pub fn remove(&mut self, id: u64) {
        if let Ok(i) = self.position(id) {
            if let Some((_, r)) = self.queue.remove(i) {
                self.bytes -= r.payload.len();
                self.pool.give_back(r.payload);
            }
        }
    }

    /// The first retained id at or above `from`.
    pub fn next_from(&self, from: u64) -> Option<u64> {
        let i = match self.position(from) {
            Ok(i) | Err(i) => i,
        };
        self.queue.get(i).map(|e| e.0)
    }

    /// Number of retained requests.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Total payload bytes retained.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Memory held: payload capacity, bookkeeping and spare buffers.
    pub fn footprint(&self) -> usize {
        self.queue.iter().map(|(_, r)| r.payload.capacity()).sum::<usize>()
            + self.queue.capacity() * core::mem::size_of::<(u64, Retained)>()
            + self.pool.held()
    }
}

/// Ids of received RESPONSEs not yet acknowledged (SPEC.md §13.6, §14.6).
#[derive(Debug, Default)]
pub(crate) struct AckQueue {
    ids: Vec<u64>,
    oldest: Option<Instant>,
    /// Ids acknowledged on the current transport, most recent last: an ACK lost with the
    /// transport is sent again after a resumption (bounded by `RECENT_CAP`: only the last ACKs
    /// can still be in flight when a transport dies; older entries are evicted by the cache's own
    /// bounds anyway).
    recent: VecDeque<u64>,
}

/// An ACK is due once this many responses are unacknowledged…
pub(crate) const ACK_THRESHOLD: usize = 16;
/// …or this long after the oldest of them arrived.
pub(crate) const ACK_DELAY: Duration = Duration::from_millis(100);
/// Ids kept at most; beyond it the oldest are dropped (an ACK is only an optimisation).
const ACK_CAP: usize = 1024;
/// Acknowledged ids remembered for re-acknowledgement after a resumption (the same in both
/// builds, [`RECENT_ACKS`](super::RECENT_ACKS)).
const RECENT_CAP: usize = super::RECENT_ACKS;

impl AckQueue {
    /// Records that the RESPONSE for `id` arrived at `now`.
    pub fn push(&mut self, now: Instant, id: u64) {
        if self.ids.len() >= ACK_CAP {
            self.ids.remove(0);
        }
        self.ids.push(id);
        self.oldest.get_or_insert(now);
    }

    /// When an ACK must be sent, if any is pending.
    pub fn deadline(&self) -> Option<Instant> {
        if self.ids.len() >= ACK_THRESHOLD {
            return self.oldest.map(|_| Instant::ZERO);
        }
        self.oldest.map(|t| t + ACK_DELAY)
    }

    /// Whether ids are pending.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Takes up to [`MAX_ACK_RANGES`] ranges `(first_id, n)` covering the pending ids (all of
    /// one parity), leaving the rest pending.
    pub fn take_ranges(&mut self, out: &mut [(u64, u64); MAX_ACK_RANGES]) -> usize {
        self.ids.sort_unstable();
        self.ids.dedup();
        let mut n = 0;
        let mut used = 0;
        for &id in &self.ids {
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
        for id in self.ids.drain(..used) {
            if self.recent.len() >= RECENT_CAP {
                self.recent.pop_front();
            }
            self.recent.push_back(id);
        }
        if self.ids.is_empty() {
            self.oldest = None;
        }
        n
    }

    /// After a resumption: the ACKs sent on the lost transport may never have arrived; send
    /// them again (acknowledging an id no longer cached is harmless).
    pub fn requeue_recent(&mut self, now: Instant) {
        if self.recent.is_empty() {
            return;
        }
        self.ids.extend(self.recent.drain(..));
        let excess = self.ids.len().saturating_sub(ACK_CAP);
        self.ids.drain(..excess);
        self.oldest.get_or_insert(now);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
