//! Unit tests of `session.rs`: the digest, the reply cache, the outbox and the item pool.

use super::*;

/// The pool keeps what it lent and got back, not the caller's own buffers of shared items.
#[test]
fn the_item_pool_keeps_only_buffers_it_lent() {
    let mut p = ItemPool::default();
    p.give_back(Arc::new(alloc::vec![0u8; 1000]));
    assert_eq!(p.spare.len(), 0, "a caller's buffer, nothing lent");
    let mut a = p.take();
    Arc::get_mut(&mut a).expect("unique").extend_from_slice(&[1; 1000]);
    let shared = Arc::clone(&a);
    p.give_back(a);
    assert_eq!(p.spare.len(), 0, "still held by the transmit path");
    p.give_back(shared);
    assert_eq!(p.spare.len(), 1, "the last holder gives it back");
    let b = p.take();
    assert!(b.is_empty() && b.capacity() >= 1000, "recycled, emptied");
    p.give_back(b);
    p.give_back(Arc::new(alloc::vec![0u8; 1000]));
    assert_eq!(p.spare.len(), 1, "no more than was lent");
}

#[test]
fn digest_separates_fields() {
    let m = MethodId::new(1, 2);
    let d = request_digest(0x10, m, b"hi");
    assert_eq!(d, request_digest(0x10, m, b"hi"));
    assert_ne!(d, request_digest(0x11, m, b"hi"));
    assert_ne!(d, request_digest(0x10, MethodId::new(1, 3), b"hi"));
    assert_ne!(d, request_digest(0x10, m, b"ho"));
}

#[test]
fn reply_cache_evicts_oldest_by_entries_and_bytes() {
    let mut c = ReplyCache::new(3, 10);
    let d = [0; 16];
    assert!(c.insert(1, d, Status::OK, b"aaaa"));
    assert!(c.insert(3, d, Status::OK, b"bbbb"));
    // 4 + 4 + 4 > 10: the oldest (1) goes.
    assert!(c.insert(5, d, Status::OK, b"cccc"));
    assert!(c.get(1).is_none() && c.get(3).is_some() && c.get(5).is_some());
    assert_eq!((c.len(), c.bytes(), c.evicted), (2, 8, 1));
    // An entry larger than the byte cap is not cached and evicts nothing.
    assert!(!c.insert(7, d, Status::OK, &[0; 11]));
    assert_eq!(c.len(), 2);
    assert!(c.insert(7, d, Status::OK, b""));
    assert!(c.insert(9, d, Status::OK, b""));
    // Three entries at most.
    assert_eq!(c.len(), 3);
    assert!(c.get(3).is_none());
}

/// The searches skipped for new ids (above every one held) change nothing: an id cached
/// again, in or out of order, replaces its entry; a retained request is found wherever it
/// sits, and the queue stays sorted.
#[test]
fn ids_below_the_highest_are_still_found_and_replaced() {
    let mut c = ReplyCache::new(10, 100);
    let d = [0; 16];
    for (id, p) in [(5, &b"a"[..]), (3, b"b"), (5, b"cc"), (3, b""), (9, b"d")] {
        assert!(c.insert(id, d, Status::OK, p));
    }
    assert_eq!((c.len(), c.bytes()), (3, 3));
    assert_eq!(c.get(5).map(|e| &e.payload[..]), Some(&b"cc"[..]));
    c.reset();
    assert!(c.insert(1, d, Status::OK, b"e") && c.insert(1, d, Status::OK, b"f"));
    assert_eq!((c.len(), c.bytes()), (1, 1));

    let mut o = Outbox::new(100);
    let m = MethodId::new(1, 1);
    for id in [7, 3, 11, 5, 11, 1] {
        o.insert(id, 0x10, m, false, None, &[id as u8]);
    }
    let ids: alloc::vec::Vec<u64> = o.queue.iter().map(|e| e.0).collect();
    assert_eq!(ids, [1, 3, 5, 7, 11]);
    assert_eq!(o.bytes(), 5);
    for id in [1, 7, 3] {
        assert_eq!(o.get(id).map(|r| r.payload[0]), Some(id as u8));
        o.remove(id);
        assert!(o.get(id).is_none());
    }
    assert_eq!((o.next_from(0), o.next_from(6), o.next_from(12)), (Some(5), Some(11), None));
}

#[test]
fn reply_cache_order_trail_stays_bounded_under_acks() {
    let mut c = ReplyCache::new(1000, 1 << 20);
    for id in 0..100_000u64 {
        c.insert(id, [0; 16], Status::OK, b"x");
        c.remove(id);
    }
    assert_eq!(c.len(), 0);
    assert!(c.queue.len() <= 18, "queue grew to {}", c.queue.len());
}

#[test]
fn shedding_frees_spare_buffers_then_the_oldest_answers() {
    let mut c = ReplyCache::new(100, 1 << 20);
    for id in 0..10u64 {
        assert!(c.insert(2 * id, [0; 16], Status::OK, &[7; 1000]));
    }
    // Acknowledged answers leave their buffers in the pool: memory, but no answer lost.
    c.remove(0);
    c.remove(2);
    let before = c.footprint();
    assert!(before >= 10_000);
    let freed = c.shed(1);
    assert!(freed >= 2000, "the two spare buffers go first: {freed}");
    assert_eq!(c.len(), 8, "no answer evicted while spare buffers covered the request");
    let freed = c.shed(2500);
    assert!(freed >= 2500);
    assert_eq!(c.len(), 5, "the three oldest answers evicted");
    assert!(c.get(4).is_none() && c.get(8).is_none() && c.get(10).is_some());
    assert_eq!(c.evicted, 3);
    c.shed(usize::MAX);
    assert_eq!((c.len(), c.bytes()), (0, 0));
    assert_eq!(c.footprint(), 0, "nothing held once everything is shed");
}

#[test]
fn an_empty_outbox_gives_its_queue_back() {
    let mut o = Outbox::new(1 << 20);
    for id in 0..100u64 {
        o.insert(id, 0, MethodId::new(1, 1), false, None, b"x");
    }
    assert_eq!(o.release_if_empty(), 0, "requests still retained: kept");
    for id in 0..100u64 {
        o.remove(id);
    }
    assert!(o.release_if_empty() >= 100 * core::mem::size_of::<(u64, Retained)>());
    o.pool.clear();
    assert_eq!(o.footprint(), 0, "nothing held once the burst of requests is answered");
}

#[test]
fn ack_queue_builds_ranges() {
    let mut q = AckQueue::default();
    for id in [0u64, 2, 4, 10, 4] {
        q.push(Instant::ZERO, id);
    }
    let mut out = [(0, 0); MAX_ACK_RANGES];
    let n = q.take_ranges(&mut out);
    assert_eq!(&out[..n], &[(0, 3), (10, 1)]);
    assert!(q.is_empty() && q.deadline().is_none());
    for k in 0..200u64 {
        q.push(Instant::ZERO, 4 * k);
    }
    assert_eq!(q.deadline(), Some(Instant::ZERO));
    assert_eq!(q.take_ranges(&mut out), MAX_ACK_RANGES);
    assert!(!q.is_empty());
}
