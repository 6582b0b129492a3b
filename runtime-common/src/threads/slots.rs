//! The table of an I/O thread's tasks by key, which gives its memory back after a burst.
//! (Layer 0 of [`threads`](super): imports no other file of the crate.)
//!
//! A new value takes the **lowest** free key, so the keys in use stay packed at the bottom and
//! the table shrinks again once a burst of tasks (e.g. a thousand connections closing at once,
//! or UDP associations lingering after their CLOSE) has ended. `slab::Slab`, used before,
//! reuses the key freed last and shrinks only past its last value in use: a task started during
//! a burst keeps its high key, and with it the whole table, for as long as it lives — and an
//! I/O thread that always has a task (a listener) never shrank its table at all.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Capacity (in entries) below which the table and its free list are never shrunk.
const KEEP: usize = 64;

/// Values by key (`usize`), keys reused lowest first.
pub(crate) struct Slots<T> {
    entries: Vec<Option<T>>,
    /// Free keys, lowest on top. Keys at or beyond `entries.len()` are stale (the table was
    /// truncated past them): skipped when met, dropped when they are many.
    free: BinaryHeap<Reverse<usize>>,
    len: usize,
}

impl<T> Slots<T> {
    pub(crate) fn new() -> Self {
        Slots { entries: Vec::new(), free: BinaryHeap::new(), len: 0 }
    }

    /// Values in the table.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        self.entries.get(key)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        self.entries.get_mut(key)?.as_mut()
    }

    /// Inserts the value `make` returns for its key (the lowest free one); returns the key.
    pub(crate) fn insert(&mut self, make: impl FnOnce(usize) -> T) -> usize {
        let key = loop {
            match self.free.pop() {
                Some(Reverse(k)) if k < self.entries.len() => break k,
                Some(_) => continue,
                None => {
                    self.entries.push(None);
                    break self.entries.len() - 1;
                }
            }
        };
        self.entries[key] = Some(make(key));
        self.len += 1;
        key
    }

    /// Removes the value of `key`; the table is truncated past its last value in use and
    /// shrunk once it is mostly empty ([`trim`]).
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let value = self.entries.get_mut(key)?.take()?;
        self.len -= 1;
        if key + 1 == self.entries.len() {
            while matches!(self.entries.last(), Some(None)) {
                self.entries.pop();
            }
        } else {
            self.free.push(Reverse(key));
        }
        if self.free.len() > 2 * self.entries.len() + KEEP {
            let end = self.entries.len();
            self.free.retain(|Reverse(k)| *k < end);
        }
        trim(&mut self.entries, 0);
        trim_heap(&mut self.free, 0);
        Some(value)
    }

    /// Memory held, in entries (for tests).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.entries.capacity() + self.free.capacity()
    }
}

/// Shrinks a list to `keep` entries (at least its length and [`KEEP`]) once its capacity is
/// more than twice that: the I/O thread's lists (ready and woken tasks, timers) keep their
/// capacity from one batch to the next, and must not keep the size of one burst for good.
/// `keep` is what the list may need in steady state, so that trimming never makes a steady
/// state allocate (a list trimmed below its working size would grow again, and again).
pub(crate) fn trim<T>(v: &mut Vec<T>, keep: usize) {
    let keep = keep.max(v.len()).max(KEEP);
    if v.capacity() > 2 * keep {
        v.shrink_to(keep);
    }
}

/// [`trim`] for a binary heap (the I/O thread's timers).
pub(crate) fn trim_heap<T: Ord>(h: &mut BinaryHeap<T>, keep: usize) {
    let keep = keep.max(h.len()).max(KEEP);
    if h.capacity() > 2 * keep {
        h.shrink_to(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_reused_lowest_first() {
        let mut s = Slots::new();
        let keys: Vec<usize> = (0..5).map(|i| s.insert(|k| (k, i))).collect();
        assert_eq!(keys, [0, 1, 2, 3, 4]);
        assert_eq!(s.remove(3), Some((3, 3)));
        assert_eq!(s.remove(1), Some((1, 1)));
        assert_eq!(s.remove(1), None, "already removed");
        assert_eq!(s.get(1), None);
        assert_eq!(s.insert(|k| (k, 10)), 1, "the lowest free key");
        assert_eq!(s.insert(|k| (k, 11)), 3);
        assert_eq!(s.insert(|k| (k, 12)), 5);
        assert_eq!(s.len(), 6);
        assert_eq!(s.get_mut(3).map(|v| v.1), Some(11));
    }

    #[test]
    fn a_burst_does_not_size_the_table_for_good() {
        let mut s = Slots::new();
        let first = s.insert(|k| k);
        // A burst: 10,000 values, then all gone but one started in the middle of it.
        let burst: Vec<usize> = (0..10_000).map(|_| s.insert(|k| k)).collect();
        let kept = s.insert(|k| k);
        assert!(s.capacity() >= 10_000);
        for k in burst {
            s.remove(k);
        }
        assert_eq!(s.len(), 2);
        // The value started mid-burst keeps its key (1 + 10,000) and the table up to it...
        assert_eq!(s.get(kept), Some(&kept));
        s.remove(kept);
        // ...and once it is gone the table shrinks, free list included.
        assert!(s.capacity() <= 4 * KEEP, "{} entries kept", s.capacity());
        assert_eq!(s.get(first), Some(&first));
        // New values take the lowest keys again.
        assert_eq!(s.insert(|k| k), 1);
        assert_eq!(s.insert(|k| k), 2);
    }

    #[test]
    fn a_value_kept_at_a_low_key_does_not_keep_the_table() {
        let mut s = Slots::new();
        let burst: Vec<usize> = (0..10_000).map(|_| s.insert(|k| k)).collect();
        // Everything but the first value ends, in a scrambled order (7,919 is prime to 9,999:
        // every index once).
        for i in 0..9_999 {
            assert!(s.remove(burst[1 + (i * 7_919) % 9_999]).is_some());
        }
        assert_eq!(s.len(), 1);
        assert!(s.capacity() <= 4 * KEEP, "{} entries kept", s.capacity());
    }

    #[test]
    fn lists_and_heaps_are_trimmed_once_mostly_empty() {
        let mut v: Vec<u32> = (0..10_000).collect();
        v.truncate(10);
        trim(&mut v, 0);
        assert!(v.capacity() <= 2 * KEEP);
        let mut small: Vec<u32> = Vec::with_capacity(2 * KEEP);
        trim(&mut small, 0);
        assert_eq!(small.capacity(), 2 * KEEP, "not trimmed below twice KEEP: no back and forth");
        let mut h: BinaryHeap<u32> = (0..10_000).collect();
        while h.len() > 3 {
            h.pop();
        }
        trim_heap(&mut h, 0);
        assert!(h.capacity() <= 2 * KEEP);
        assert_eq!(h.into_sorted_vec(), [0, 1, 2]);
    }

    #[test]
    fn trimming_keeps_the_working_size() {
        // A list whose steady state needs up to 500 entries is trimmed to 500 after a burst,
        // not below: filling it to its working size again allocates nothing.
        let mut v: Vec<u32> = (0..10_000).collect();
        v.clear();
        trim(&mut v, 500);
        let cap = v.capacity();
        assert!((500..1000).contains(&cap), "{cap}");
        v.extend(0..500);
        assert_eq!(v.capacity(), cap);
        v.clear();
        trim(&mut v, 500);
        assert_eq!(v.capacity(), cap, "nothing to give back");
    }
}
