//! Memory the connection works in: caller-provided slices (no allocator) or, with the `alloc`
//! feature, vectors that grow on demand up to the bound set by [`Config`](crate::Config).
//!
//! Either way every buffer and table has a fixed maximum, so a peer can never make the core use
//! more memory than its configuration allows.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

/// Backing memory: borrowed (fixed) or owned (grows up to a limit).
pub(crate) enum Store<'a, T> {
    Borrowed(&'a mut [T]),
    #[cfg(feature = "alloc")]
    Owned(Vec<T>),
}

impl<T> Default for Store<'_, T> {
    fn default() -> Self {
        Store::Borrowed(&mut [])
    }
}

impl<T> Store<'_, T> {
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Store::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Store::Owned(v) => v,
        }
    }
    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Store::Borrowed(s) => s,
            #[cfg(feature = "alloc")]
            Store::Owned(v) => v,
        }
    }
}

impl<T: Default + Clone> Store<'_, T> {
    /// Makes at least `want` elements available, growing owned storage up to `max`.
    /// Returns the resulting length (which may be smaller than `want`).
    fn reserve(&mut self, want: usize, max: usize) -> usize {
        #[cfg(not(feature = "alloc"))]
        let _ = (want, max);
        match self {
            Store::Borrowed(s) => s.len(),
            #[cfg(feature = "alloc")]
            Store::Owned(v) => {
                let want = want.min(max);
                if v.len() < want {
                    // Grow geometrically so a stream of small growths stays amortised O(1).
                    let target = want.max(v.len().saturating_mul(2)).min(max);
                    v.resize(target, T::default());
                }
                v.len()
            }
        }
    }

    /// Gives memory back when an owned buffer is empty and larger than `keep`.
    fn shrink(&mut self, keep: usize) {
        #[cfg(feature = "alloc")]
        if let Store::Owned(v) = self {
            if v.len() > keep {
                v.truncate(keep);
                v.shrink_to_fit();
            }
        }
        #[cfg(not(feature = "alloc"))]
        let _ = keep;
    }
}

/// A FIFO of bytes: append at the tail, consume from the head, compact on demand.
///
/// A *wrapping* queue (the transmit queue of a byte stream, see [`ByteQueue::wrapping`]) is a
/// bip buffer: when the tail reaches the end of the store and there is room before the head,
/// appends go to a second region at the start of the store instead of moving the queued bytes
/// down (a queue that is never empty, as under a steady stream, would otherwise be copied once
/// more on almost every append). [`data`](ByteQueue::data) is then the first region only; the
/// second becomes the first when it has been consumed. Whatever is appended with one
/// [`spare`](ByteQueue::spare) and [`commit`](ByteQueue::commit) stays contiguous.
pub(crate) struct ByteQueue<'a> {
    store: Store<'a, u8>,
    head: usize,
    tail: usize,
    /// Upper bound for owned growth.
    max: usize,
    /// Bip buffer mode (see above).
    wrap: bool,
    /// Wrapping: the second region `[0, second)` is in use (appends go there).
    two: bool,
    second: usize,
}

/// Size an owned queue shrinks back to in `release_memory`: nothing, so that an idle
/// connection holds no buffer memory (it grows again, geometrically, when traffic resumes).
const KEEP: usize = 0;

impl Default for ByteQueue<'_> {
    fn default() -> Self {
        ByteQueue::new(Store::default(), 0)
    }
}

impl<'a> ByteQueue<'a> {
    pub(crate) fn new(store: Store<'a, u8>, max: usize) -> Self {
        ByteQueue { store, head: 0, tail: 0, max, wrap: false, two: false, second: 0 }
    }

    /// This queue wraps around (a bip buffer, see the type's documentation) rather than moving
    /// its bytes down when its tail reaches the end: only for a queue whose reader takes
    /// [`data`](Self::data) again after consuming it.
    pub(crate) fn wrapping(mut self) -> Self {
        self.wrap = true;
        self
    }

    /// The largest number of bytes this queue can ever hold.
    pub(crate) fn capacity_max(&self) -> usize {
        match &self.store {
            Store::Borrowed(s) => s.len(),
            #[cfg(feature = "alloc")]
            Store::Owned(_) => self.max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tail - self.head + self.second
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The queued bytes (of a wrapping queue: the first region; the rest follows once it has
    /// been consumed).
    pub(crate) fn data(&self) -> &[u8] {
        &self.store.as_slice()[self.head..self.tail]
    }

    /// All queued bytes, in order: the first region, then the second (empty unless wrapped).
    pub(crate) fn regions(&self) -> (&[u8], &[u8]) {
        let s = self.store.as_slice();
        let second = if self.two { &s[..self.second] } else { &[] };
        (&s[self.head..self.tail], second)
    }

    /// Consumes `n` bytes from the head.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        let mut n = n.min(self.len());
        loop {
            let take = n.min(self.tail - self.head);
            self.head += take;
            n -= take;
            if self.head < self.tail {
                return;
            }
            if !self.two {
                self.head = 0;
                self.tail = 0;
                return;
            }
            // The first region is used up: the second takes its place.
            (self.head, self.tail, self.two, self.second) = (0, self.second, false, 0);
            if n == 0 {
                return;
            }
        }
    }

    /// Free space at the tail, at least `want` bytes if possible (wrapping, compacting or
    /// growing). Returns an empty slice if `want` bytes cannot fit even after compaction.
    pub(crate) fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.two {
            if self.head - self.second >= want {
                let (from, to) = (self.second, self.head);
                return &mut self.store.as_mut_slice()[from..to];
            }
            // No room before the first region: make the queue one region again.
            self.compact();
        }
        if self.store.as_slice().len() - self.tail < want {
            if self.wrap && self.head >= want {
                // Room before the head: wrap rather than move the queued bytes down.
                self.two = true;
                self.second = 0;
                let to = self.head;
                return &mut self.store.as_mut_slice()[..to];
            }
            self.compact();
            let need = self.tail.saturating_add(want);
            self.store.reserve(need, self.max);
        }
        let tail = self.tail;
        let s = self.store.as_mut_slice();
        if s.len() - tail < want {
            return &mut [];
        }
        &mut s[tail..]
    }

    /// Free space at the tail without growing: whatever is there after compaction.
    pub(crate) fn spare_any(&mut self, want: usize) -> &mut [u8] {
        self.compact();
        let need = self.tail.saturating_add(want);
        self.store.reserve(need, self.max);
        let tail = self.tail;
        &mut self.store.as_mut_slice()[tail..]
    }

    /// Marks `n` bytes of the spare space as written.
    pub(crate) fn commit(&mut self, n: usize) {
        if self.two {
            self.second = (self.second + n).min(self.head);
        } else {
            self.tail = (self.tail + n).min(self.store.as_slice().len());
        }
    }

    /// Moves the queued bytes to the start of the store, in one region.
    fn compact(&mut self) {
        if self.two {
            // [second region | free | first region]: rotate the first region to the front
            // (no allocation: this works in borrowed storage too).
            let (h, t, b) = (self.head, self.tail, self.second);
            self.store.as_mut_slice()[..t].rotate_left(h);
            // Now [first region | second region | free].
            (self.head, self.tail, self.two, self.second) = (0, t - h + b, false, 0);
            return;
        }
        if self.head > 0 {
            let (h, t) = (self.head, self.tail);
            self.store.as_mut_slice().copy_within(h..t, 0);
            self.tail = t - h;
            self.head = 0;
        }
    }

    /// Keeps only the first `len` queued bytes.
    pub(crate) fn truncate(&mut self, len: usize) {
        let first = self.tail - self.head;
        if len <= first {
            self.tail = self.head + len;
            (self.two, self.second) = (false, 0);
        } else {
            self.second = self.second.min(len - first);
        }
    }

    /// Drops everything (keeping the memory for reuse).
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
        (self.two, self.second) = (false, 0);
    }

    /// Gives back owned memory beyond `KEEP` bytes if the queue is empty.
    pub(crate) fn release_memory(&mut self) {
        if self.is_empty() {
            self.clear();
            self.store.shrink(KEEP);
        }
    }

    /// Bytes of memory currently held.
    pub(crate) fn footprint(&self) -> usize {
        self.store.as_slice().len()
    }
}

/// An entry of a [`Table`]: the key it is stored under.
pub(crate) trait Keyed {
    /// The key (an exchange id).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    fn key(&self) -> u64;
}

/// A table of slots with a fixed maximum number of entries.
pub(crate) struct Table<'a, T> {
    slots: Store<'a, Option<T>>,
    len: usize,
    max: usize,
}

impl<'a, T> Table<'a, T> {
    pub(crate) fn new(mut slots: Store<'a, Option<T>>, max: usize) -> Self {
        #[cfg(not(feature = "alloc"))]
        let _ = max;
        // Borrowed slots may hold entries of an earlier connection that used the same memory
        // (firmware reuses its `static` storage): the table starts empty.
        slots.as_mut_slice().iter_mut().for_each(|s| *s = None);
        let max = match &slots {
            Store::Borrowed(s) => s.len(),
            #[cfg(feature = "alloc")]
            Store::Owned(_) => max,
        };
        Table { slots, len: 0, max }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether one more entry fits.
    pub(crate) fn has_room(&self) -> bool {
        self.len < self.max
    }

    /// One past the highest slot index in use or ever allocated: iterate `0..capacity_hint()`
    /// with `get` to visit every entry while mutating the table.
    pub(crate) fn capacity_hint(&self) -> usize {
        self.slots.as_slice().len()
    }

    /// Inserts `t` under `key` (which must be `t.key()`), returning its slot index, or gives it
    /// back if the table is full.
    ///
    /// Slots are placed by key (open addressing with linear probing from its home, see
    /// [`Table::home`]), and owned storage is kept at most half full, so [`Table::find`] usually
    /// succeeds at the first probe. When owned storage grows, the entries already in it move to
    /// their homes under the new size (in place: no allocation beyond the growth itself). Left
    /// where the smaller table put them, they would sit in the homes of later keys and push every
    /// later entry along — a displacement that lasts as long as the table never empties: 10–13
    /// probes per lookup were measured with 64 calls in flight before this was done.
    /// Growing moves entries: an index returned earlier is valid only until the next insert.
    pub(crate) fn insert(&mut self, key: u64, t: T) -> Result<usize, T>
    where
        T: Keyed,
    {
        if self.len >= self.max {
            return Err(t);
        }
        #[cfg(feature = "alloc")]
        if let Store::Owned(v) = &mut self.slots {
            if (self.len + 1) * 2 > v.len() && v.len() < self.max {
                let target = (v.len() * 2).max(8).min(self.max);
                let old = v.len();
                v.resize_with(target, || None);
                Self::rehome(v, old);
            }
        }
        let slots = self.slots.as_mut_slice();
        match Self::free_from(slots, key) {
            Some(i) => {
                slots[i] = Some(t);
                self.len += 1;
                Ok(i)
            }
            None => Err(t),
        }
    }

    /// Moves the entries of the first `old` slots to their homes under the table's new size
    /// (or the first free slot after it). Taking an entry out before placing it again means it
    /// lands at its home or earlier in its probe order than before: never further.
    #[cfg(feature = "alloc")]
    fn rehome(slots: &mut [Option<T>], old: usize)
    where
        T: Keyed,
    {
        for i in 0..old {
            let Some(t) = slots[i].take() else { continue };
            // Never `None`: the slot just emptied is free.
            let j = Self::free_from(slots, t.key()).unwrap_or(i);
            slots[j] = Some(t);
        }
    }

    /// The first free slot in `key`'s probe order, if any.
    fn free_from(slots: &[Option<T>], key: u64) -> Option<usize> {
        let n = slots.len();
        if n == 0 {
            return None;
        }
        let mut i = Self::home(key, n);
        for _ in 0..n {
            if slots[i].is_none() {
                return Some(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        None
    }

    /// Where `key`'s probes start in a table of `n` slots. Ids of one side step by 2: the
    /// parity bit is dropped so consecutive ids get adjacent homes, and the peer's ids start
    /// half a table away from ours, so that two windows of ids in flight (each side's) do not
    /// share homes. The modulo is taken in `usize` (truncating the id on 32-bit targets first):
    /// any home is correct, since lookups probe every slot; on a 32-bit device this avoids a
    /// 64-bit division per lookup.
    fn home(key: u64, n: usize) -> usize {
        let h = ((key >> 1) as usize) % n + if key & 1 == 1 { n / 2 } else { 0 };
        if h >= n {
            h - n
        } else {
            h
        }
    }

    /// The slot holding `key` (for which `is` returns true), probing from its home position.
    pub(crate) fn find(&self, key: u64, is: impl Fn(&T) -> bool) -> Option<usize> {
        let slots = self.slots.as_slice();
        let n = slots.len();
        if n == 0 || self.len == 0 {
            return None;
        }
        let mut i = Self::home(key, n);
        for _ in 0..n {
            if slots[i].as_ref().is_some_and(&is) {
                return Some(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        None
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.slots.as_slice().get(i).and_then(Option::as_ref)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.slots.as_mut_slice().get_mut(i).and_then(Option::as_mut)
    }

    pub(crate) fn position(&self, mut f: impl FnMut(&T) -> bool) -> Option<usize> {
        self.slots.as_slice().iter().position(|s| s.as_ref().is_some_and(&mut f))
    }

    pub(crate) fn remove(&mut self, i: usize) -> Option<T> {
        let t = self.slots.as_mut_slice().get_mut(i)?.take();
        if t.is_some() {
            self.len -= 1;
            if self.len == 0 {
                // Keep the capacity (steady-state calls must not allocate), but restart at index 0.
                #[cfg(feature = "alloc")]
                if let Store::Owned(v) = &mut self.slots {
                    v.clear();
                }
            }
        }
        t
    }

    /// Gives back owned memory if the table is empty.
    pub(crate) fn release_memory(&mut self) {
        #[cfg(feature = "alloc")]
        if let Store::Owned(v) = &mut self.slots {
            if self.len == 0 {
                v.clear();
                v.shrink_to_fit();
            }
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots.as_slice().iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|t| (i, t)))
    }

    pub(crate) fn footprint(&self) -> usize {
        core::mem::size_of_val(self.slots.as_slice())
    }
}

#[cfg(test)]
mod table_tests {
    use super::{Keyed, Store, Table};
    use std::collections::BTreeMap;

    #[derive(Debug, PartialEq)]
    struct E(u64);

    impl Keyed for E {
        fn key(&self) -> u64 {
            self.0
        }
    }

    fn owned(max: usize) -> Table<'static, E> {
        Table::new(Store::Owned(std::vec::Vec::new()), max)
    }

    fn at_home(t: &Table<'_, E>, key: u64) -> bool {
        let n = t.capacity_hint();
        t.find(key, |e| e.0 == key) == Some(Table::<E>::home(key, n))
    }

    /// A window of calls in flight that never empties, growing the table from 8 slots to 128
    /// on the way: every entry sits at its home, so every lookup takes one probe (before entries
    /// were moved when the table grew, they took 10–13).
    #[test]
    fn entries_sit_at_their_homes_after_growth_with_calls_always_in_flight() {
        let mut t = owned(1024);
        let mut next = 0u64;
        let mut live = std::collections::VecDeque::new();
        for round in 0..2000u64 {
            // Up to 64 in flight, answered in order.
            if live.len() < 64 {
                t.insert(next, E(next)).unwrap();
                live.push_back(next);
                next += 2;
            }
            if round % 3 == 2 {
                let k = live.pop_front().unwrap();
                let i = t.find(k, |e| e.0 == k).unwrap();
                assert_eq!(t.remove(i), Some(E(k)));
            }
            for &k in &live {
                assert!(at_home(&t, k), "id {k} displaced in a table of {}", t.capacity_hint());
            }
        }
        assert_eq!(t.capacity_hint(), 128);
    }

    /// Both sides' windows of ids (even ours, odd the peer's) fit side by side without sharing
    /// homes.
    #[test]
    fn the_two_sides_ids_do_not_share_homes() {
        let mut t = owned(1024);
        for k in 0..32u64 {
            t.insert(2 * k, E(2 * k)).unwrap();
            t.insert(2 * k + 1, E(2 * k + 1)).unwrap();
        }
        for k in 0..64u64 {
            assert!(at_home(&t, k), "id {k}");
        }
    }

    /// Random inserts and removals against a model: every entry is found, removed ones are
    /// not, growth never loses one; fixed (borrowed) storage too.
    #[test]
    fn a_table_holds_exactly_what_was_inserted() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut fixed: std::vec::Vec<Option<E>> = (0..16).map(|_| None).collect();
        let tables = [owned(40), Table::new(Store::Borrowed(&mut fixed[..]), 0)];
        for mut t in tables {
            let mut model = BTreeMap::new();
            for _ in 0..20_000 {
                let k = rand(200);
                if let Some(i) = t.find(k, |e| e.0 == k) {
                    assert!(model.contains_key(&k));
                    if rand(2) == 0 {
                        assert_eq!(t.remove(i), Some(E(k)));
                        model.remove(&k);
                    }
                } else {
                    assert!(!model.contains_key(&k), "{k} lost");
                    match t.insert(k, E(k)) {
                        Ok(_) => drop(model.insert(k, ())),
                        Err(_) => assert_eq!(t.len(), model.len()),
                    }
                }
                assert_eq!(t.len(), model.len());
                // Iteration sees every entry.
                let mut seen: std::vec::Vec<u64> = t.iter().map(|(_, e)| e.0).collect();
                seen.sort_unstable();
                assert!(seen.iter().copied().eq(model.keys().copied()), "iteration missed an entry");
            }
            for k in model.keys() {
                assert!(t.find(*k, |e| e.0 == *k).is_some(), "{k} lost");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ByteQueue, Store};
    use std::collections::VecDeque;

    /// Appends `bytes` as one piece, as the connection queues a frame.
    fn push(q: &mut ByteQueue<'_>, bytes: &[u8]) -> bool {
        let buf = q.spare(bytes.len());
        if buf.len() < bytes.len() {
            return false;
        }
        buf[..bytes.len()].copy_from_slice(bytes);
        q.commit(bytes.len());
        true
    }

    /// Takes up to `n` bytes the way a driver does: `data`, `consume`, again.
    fn pop(q: &mut ByteQueue<'_>, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < n && !q.is_empty() {
            let d = q.data();
            assert!(!d.is_empty(), "data() is empty while {} bytes are queued", q.len());
            let k = d.len().min(n - out.len());
            out.extend_from_slice(&d[..k]);
            q.consume(k);
        }
        out
    }

    #[test]
    fn a_wrapping_queue_appends_before_its_head_instead_of_moving_its_bytes() {
        let mut store = [0u8; 100];
        let mut q = ByteQueue::new(Store::Borrowed(&mut store), 100).wrapping();
        assert!(push(&mut q, &[1; 60]));
        assert_eq!(pop(&mut q, 50), vec![1; 50]);
        // 10 queued at 50..60; 40 free at the end, 50 before the head: 45 go to the start.
        assert!(push(&mut q, &[2; 45]));
        assert_eq!((q.len(), q.data(), q.two, q.second), (55, &[1u8; 10][..], true, 45));
        // 5 bytes of room remain before the head: a 10-byte piece makes it one region again.
        assert!(push(&mut q, &[3; 10]));
        assert!(!q.two);
        let mut want = vec![1; 10];
        want.extend_from_slice(&[2; 45]);
        want.extend_from_slice(&[3; 10]);
        assert_eq!(q.data(), &want[..]);
        assert_eq!(pop(&mut q, 100), want);
        assert!(q.is_empty());
    }

    #[test]
    fn a_piece_never_straddles_the_two_regions_and_consume_crosses_them() {
        let mut store = [0u8; 64];
        let mut q = ByteQueue::new(Store::Borrowed(&mut store), 64).wrapping();
        assert!(push(&mut q, &[1; 40]));
        q.consume(30);
        assert!(push(&mut q, &[2; 20]));
        assert!(push(&mut q, &[3; 25]), "25 bytes fit before the head (30 free there)");
        assert!(q.two);
        // One consume over both regions (what `truncate`/`consume` callers may do).
        q.consume(10 + 20 + 5);
        assert_eq!(q.data(), &[3u8; 20][..]);
        assert_eq!(q.len(), 20);
    }

    #[test]
    fn truncate_and_clear_keep_a_wrapped_queue_consistent() {
        let mut store = [0u8; 32];
        let mut q = ByteQueue::new(Store::Borrowed(&mut store), 32).wrapping();
        assert!(push(&mut q, &[1; 24]));
        q.consume(20);
        assert!(push(&mut q, &[2; 16]));
        assert!(q.two);
        q.truncate(10);
        assert_eq!((q.len(), q.second), (10, 6));
        q.truncate(3);
        assert_eq!((q.len(), q.two, q.data()), (3, false, &[1u8; 3][..]));
        q.clear();
        assert!(q.is_empty() && q.data().is_empty());
        assert!(push(&mut q, &[5; 32]));
    }

    /// Random appends and consumes against a `VecDeque`, wrapping or not, in borrowed and owned
    /// storage: the bytes come out in order and nothing appended whole is refused while it fits.
    #[test]
    fn a_queue_is_a_fifo_under_random_use() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        for case in 0..4 {
            let mut backing = [0u8; 256];
            let store =
                if case % 2 == 0 { Store::Borrowed(&mut backing[..]) } else { Store::Owned(Vec::new()) };
            let q = ByteQueue::new(store, 256);
            let mut q = if case < 2 { q.wrapping() } else { q };
            let mut model = VecDeque::new();
            let mut next = 0u8;
            let mut wrapped = 0;
            for _ in 0..20_000 {
                wrapped += usize::from(q.two);
                if rnd(2) == 0 {
                    let n = 1 + rnd(90);
                    let piece: Vec<u8> = (0..n)
                        .map(|_| {
                            next = next.wrapping_add(1);
                            next
                        })
                        .collect();
                    let fits = model.len() + n <= 256;
                    assert_eq!(
                        push(&mut q, &piece),
                        fits,
                        "case {case}: {n} bytes with {} queued",
                        model.len()
                    );
                    if fits {
                        model.extend(piece);
                    }
                } else {
                    let n = rnd(120);
                    let got = pop(&mut q, n);
                    let want: Vec<u8> = model.drain(..n.min(model.len())).collect();
                    assert_eq!(got, want, "case {case}");
                }
                assert_eq!(q.len(), model.len());
            }
            assert_eq!(wrapped > 1000, case < 2, "case {case}: wrapped in {wrapped} steps");
        }
    }
}
