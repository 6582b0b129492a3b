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
pub(crate) struct ByteQueue<'a> {
    store: Store<'a, u8>,
    head: usize,
    tail: usize,
    /// Upper bound for owned growth.
    max: usize,
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
        ByteQueue { store, head: 0, tail: 0, max }
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
        self.tail - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tail == self.head
    }

    /// The queued bytes.
    pub(crate) fn data(&self) -> &[u8] {
        &self.store.as_slice()[self.head..self.tail]
    }

    /// Consumes `n` bytes from the head.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.head += n.min(self.len());
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    /// Free space at the tail, at least `want` bytes if possible (compacting and growing).
    /// Returns an empty slice if `want` bytes cannot fit even after compaction.
    pub(crate) fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.store.as_slice().len() - self.tail < want {
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
        self.tail = (self.tail + n).min(self.store.as_slice().len());
    }

    fn compact(&mut self) {
        if self.head > 0 {
            let (h, t) = (self.head, self.tail);
            self.store.as_mut_slice().copy_within(h..t, 0);
            self.tail = t - h;
            self.head = 0;
        }
    }

    /// Keeps only the first `len` queued bytes.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.tail = self.head + len.min(self.len());
    }

    /// Drops everything (keeping the memory for reuse).
    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }

    /// Gives back owned memory beyond `KEEP` bytes if the queue is empty.
    pub(crate) fn release_memory(&mut self) {
        if self.is_empty() {
            self.head = 0;
            self.tail = 0;
            self.store.shrink(KEEP);
        }
    }

    /// Bytes of memory currently held.
    pub(crate) fn footprint(&self) -> usize {
        self.store.as_slice().len()
    }
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

    /// Inserts `t` under `key`, returning its slot index, or gives it back if the table is full.
    ///
    /// Slots are placed by key (open addressing with linear probing from `key / 2`), and owned
    /// storage is kept at most half full, so [`Table::find`] usually succeeds at the first probe.
    pub(crate) fn insert(&mut self, key: u64, t: T) -> Result<usize, T> {
        if self.len >= self.max {
            return Err(t);
        }
        #[cfg(feature = "alloc")]
        if let Store::Owned(v) = &mut self.slots {
            if (self.len + 1) * 2 > v.len() && v.len() < self.max {
                let target = (v.len() * 2).max(8).min(self.max);
                v.resize_with(target, || None);
            }
        }
        let slots = self.slots.as_mut_slice();
        let n = slots.len();
        if n == 0 {
            return Err(t);
        }
        let start = Self::home(key, n);
        for k in 0..n {
            let i = (start + k) % n;
            if slots[i].is_none() {
                slots[i] = Some(t);
                self.len += 1;
                return Ok(i);
            }
        }
        Err(t)
    }

    fn home(key: u64, n: usize) -> usize {
        // Ids of one side step by 2: drop the parity bit so consecutive ids get adjacent homes.
        // The modulo is taken in `usize` (truncating the id on 32-bit targets first): any home
        // is correct, since lookups probe every slot; on a 32-bit device this avoids a 64-bit
        // division per lookup.
        ((key >> 1) as usize) % n
    }

    /// The slot holding `key` (for which `is` returns true), probing from its home position.
    pub(crate) fn find(&self, key: u64, is: impl Fn(&T) -> bool) -> Option<usize> {
        let slots = self.slots.as_slice();
        let n = slots.len();
        if n == 0 || self.len == 0 {
            return None;
        }
        let start = Self::home(key, n);
        (0..n).map(|k| (start + k) % n).find(|&i| slots[i].as_ref().is_some_and(&is))
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
