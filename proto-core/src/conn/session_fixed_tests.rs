//! Unit tests of `session_fixed.rs` (the fixed-capacity session structures), beside it.

use super::*;

#[test]
fn reply_cache_evicts_oldest_by_entries_and_bytes() {
    let mut buf = [0u8; 10 + 3 * RECORD_HEADER];
    let mut c = ReplyCache::new(3, 10, &mut buf);
    let d = [0; 16];
    assert!(c.insert(1, d, Status::OK, b"aaaa"));
    assert!(c.insert(3, d, Status::OK, b"bbbb"));
    assert!(c.insert(5, d, Status::OK, b"cccc"));
    assert!(c.get(1).is_none() && c.get(3).is_some() && c.get(5).is_some());
    assert_eq!((c.len(), c.bytes(), c.evicted), (2, 8, 1));
    assert!(!c.insert(7, d, Status::OK, &[0; 11]));
    assert_eq!(c.len(), 2);
    assert!(c.insert(7, d, Status::OK, b""));
    assert!(c.insert(9, d, Status::OK, b""));
    assert_eq!(c.len(), 3);
    assert!(c.get(3).is_none());
    assert_eq!(c.get(5).map(|r| r.payload), Some(&b"cccc"[..]));
}

#[test]
fn reply_cache_compacts_around_acknowledged_entries() {
    let mut buf = [0u8; 100 + 4 * RECORD_HEADER];
    let mut c = ReplyCache::new(4, 100, &mut buf);
    for round in 0..1000u64 {
        let id = 2 * round;
        let payload = [round as u8; 25];
        assert!(c.insert(id, [round as u8; 16], Status(round as u32), &payload));
        if round % 3 != 0 {
            c.remove_range(id, id);
        }
        let r = c.get(id);
        assert_eq!(r.is_some(), round % 3 == 0);
        assert!(c.len() <= 4 && c.bytes() <= 100);
    }
    // The last few kept entries are intact.
    let r = c.get(2 * 999).unwrap();
    assert_eq!((r.status, r.payload, r.digest), (Status(999), &[999u64 as u8; 25][..], [999u64 as u8; 16]));
}

#[test]
fn outbox_refuses_beyond_bytes_and_buffer() {
    let mut buf = [0u8; 50 + 2 * RECORD_HEADER];
    let mut o = Outbox::new(50, &mut buf);
    let m = MethodId::new(7, 9);
    assert!(o.has_room(30));
    o.insert(0, 0x10, m, false, Some(SchemaKey([1; 8])), &[5; 30]);
    assert!(!o.has_room(21) && o.has_room(20));
    o.insert(2, 0x11, m, false, None, &[6; 20]);
    assert!(!o.has_room(0), "two records fill the buffer");
    let r = o.get(0).unwrap();
    assert_eq!((r.ty, r.method, r.key, r.payload), (0x10, m, Some(SchemaKey([1; 8])), &[5; 30][..]));
    o.remove(0);
    assert!(o.has_room(30));
    o.insert(4, 0x10, m, false, None, &[7; 30]);
    assert_eq!(o.get(2).unwrap().payload, &[6; 20][..]);
    assert_eq!(o.get(4).unwrap().payload, &[7; 30][..]);
    assert_eq!((o.len(), o.bytes()), (2, 50));
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
    assert!(q.deadline().is_none());
    for k in 0..200u64 {
        q.push(Instant::ZERO, 4 * k);
    }
    assert_eq!(q.deadline(), Some(Instant::ZERO));
    // Only the newest ACK_CAP ids are kept; each is its own range (step 4).
    let n = q.take_ranges(&mut out);
    assert_eq!(n, MAX_ACK_RANGES.min(ACK_CAP));
    assert_eq!(out[0], (4 * (200 - ACK_CAP as u64), 1));
    assert_eq!(q.deadline().is_some(), ACK_CAP > MAX_ACK_RANGES);
}

/// Stream items share the retained log with the requests, are found by their stream and
/// position, dropped oldest first, refused when the bound or the buffer is reached, and
/// leave the request accounting alone; a reset empties everything in place.
#[test]
fn stream_items_share_the_retained_log() {
    let mut buf = [0u8; 40 + 3 * RECORD_HEADER];
    let mut o = Outbox::new(30, &mut buf);
    let m = MethodId::new(1, 2);
    o.insert(4, 0x12, m, true, None, &[1; 10]);
    assert!(o.push_item(4, b"aaaa") && o.push_item(6, b"bb"));
    assert!(!o.push_item(4, b"c"), "the buffer holds 3 records");
    assert_eq!((o.len(), o.bytes()), (1, 10));
    assert_eq!((o.item(4, 0), o.item(4, 1), o.item(6, 0)), (Some(&b"aaaa"[..]), None, Some(&b"bb"[..])));
    assert_eq!(o.next_from(0), Some(4));
    assert_eq!(o.next_from(5), None);
    assert!(o.get(4).is_some_and(|r| r.fin));
    assert_eq!(o.drop_items(4, 5), 1);
    assert!(o.push_item(4, b"cc"));
    assert_eq!(o.drop_items(6, 1), 1);
    assert!(o.push_item(4, b"dd"));
    assert_eq!((o.item(4, 0), o.item(4, 1)), (Some(&b"cc"[..]), Some(&b"dd"[..])));
    assert_eq!(o.drop_items(4, 1), 1);
    assert_eq!(o.item(4, 0), Some(&b"dd"[..]));
    // The byte bound (30) counts requests and items: 12 held.
    assert!(o.item_room(18) && !o.item_room(19));
    o.reset();
    assert_eq!((o.len(), o.bytes(), o.item(4, 0), o.next_from(0)), (0, 0, None, None));
    assert!(o.has_room(30));
}

#[test]
fn owed_answers_and_recent_acks_are_bounded_rings() {
    let config = crate::Config {
        max_concurrent_calls: 10,
        max_concurrent_streams: 6,
        reply_cache_entries: 1,
        reply_cache_bytes: 32,
        ..crate::Config::DEFAULT
    };
    let owed_cap = crate::Storage::owed_answers(&config);
    assert_eq!(owed_cap, 32);
    assert_eq!(crate::Storage::session_replies_len(&config), 32 + 32 + 8 * 32);
    let mut r = [0u8; 32 + 32 + 8 * 32];
    let mut t = [0u8; 64];
    let mut s = SessionState::new(&config, &mut r, &mut t);
    for k in 0..owed_cap as u64 {
        assert!(s.owe(k, k % 2 == 0));
    }
    assert!(!s.owe(99, false), "full");
    for k in 0..owed_cap as u64 {
        assert_eq!(s.owed_front(), Some((k, k % 2 == 0)));
        s.owed_pop();
        assert!(s.owe(100 + k, false), "a ring: room again");
    }
    assert_eq!(s.owed_len(), owed_cap);
    // The ring left the reply cache its own bytes.
    assert!(s.cache.insert(7, [0; 16], Status::OK, &[1; 32]));
    // ACKs sent on the lost transport come back after a resumption: the newest RECENT_CAP.
    let mut out = [(0, 0); MAX_ACK_RANGES];
    for id in 0..(RECENT_CAP as u64 + 10) {
        s.acks.push(Instant::ZERO, 2 * id);
        s.acks.take_ranges(&mut out);
    }
    assert!(s.acks.deadline().is_none());
    s.acks.requeue_recent(Instant::ZERO);
    let n = s.acks.take_ranges(&mut out);
    assert_eq!(&out[..n], &[(20, RECENT_CAP as u64)]);
    s.reset();
    assert_eq!((s.owed_len(), s.owed_front(), s.acks.deadline()), (0, None, None));
}

/// The fixed structures behave exactly like the growable ones of `session.rs` (which the
/// `alloc` build uses and the rest of the test suite exercises): the same operations give
/// the same answers, counts, bytes and evictions, whatever the order and the sizes.
#[cfg(feature = "alloc")]
#[test]
fn fixed_structures_match_the_growable_ones() {
    use super::super::session as heap;
    fn prop(entries: u8, max_bytes: u16, ops: Vec<(u8, u8, u8)>) -> bool {
        let (entries, max_bytes) = (u32::from(entries % 9), u32::from(max_bytes % 600));
        let mut buf = alloc::vec![0u8; crate::Storage::replies_len(&crate::Config {
            transport: crate::Transport::Datagram { max_datagram: 1200 },
            reply_cache_entries: entries,
            reply_cache_bytes: max_bytes,
            ..crate::Config::DEFAULT
        })];
        let mut fixed = ReplyCache::new(entries, max_bytes, &mut buf);
        let mut grow = heap::ReplyCache::new(entries, max_bytes);
        let mut obuf = alloc::vec![0u8; max_bytes as usize + 8 * RECORD_HEADER];
        let mut ofixed = Outbox::new(max_bytes, &mut obuf);
        let mut ogrow = heap::Outbox::new(max_bytes);
        for (op, id, len) in ops {
            let (id, len) = (u64::from(id % 24), usize::from(len));
            let payload: alloc::vec::Vec<u8> = (0..len).map(|k| (k as u8) ^ (id as u8)).collect();
            match op % 6 {
                5 if len % 4 == 0 => {
                    // A new session in the same memory (after a declined resumption).
                    fixed.reset();
                    grow.reset();
                    ofixed.reset();
                    ogrow.reset();
                }
                0 | 1 => {
                    let d = [id as u8; 16];
                    let st = Status(u32::from(op));
                    if fixed.insert(id, d, st, &payload) != grow.insert(id, d, st, &payload) {
                        return false;
                    }
                }
                2 => {
                    fixed.remove(id);
                    grow.remove(id);
                }
                3 => {
                    let last = id + 2 * (len % 5) as u64;
                    fixed.remove_range(id, last);
                    grow.remove_range(id, last);
                }
                _ => {
                    // The outbox: at most 8 requests, as the slots bound them.
                    let len = len % 200;
                    let payload = &payload[..len];
                    let room = ofixed.has_room(len) && ofixed.len() < 8;
                    if room && ogrow.has_room(len) {
                        let m = MethodId::new(op.into(), id as u32);
                        ofixed.insert(id, op, m, op % 2 == 0, None, payload);
                        ogrow.insert(id, op, m, op % 2 == 0, None, payload);
                    } else if ofixed.len() < 8 && ogrow.has_room(len) != ofixed.has_room(len) {
                        return false;
                    }
                    if len % 3 == 0 {
                        ofixed.remove(id);
                        ogrow.remove(id);
                    }
                }
            }
            for k in 0..24u64 {
                let (a, b) = (fixed.get(k), grow.get(k));
                let same = match (a, b) {
                    (None, None) => true,
                    (Some(a), Some(b)) => {
                        a.digest == b.digest && a.status == b.status && a.payload == &b.payload[..]
                    }
                    _ => false,
                };
                let osame = match (ofixed.get(k), ogrow.get(k)) {
                    (None, None) => true,
                    (Some(a), Some(b)) => {
                        a.ty == b.ty && a.method == b.method && a.fin == b.fin && a.payload == &b.payload[..]
                    }
                    _ => false,
                };
                if !same || !osame {
                    return false;
                }
            }
            if (fixed.len(), fixed.bytes(), fixed.evicted) != (grow.len(), grow.bytes(), grow.evicted)
                || (ofixed.len(), ofixed.bytes()) != (ogrow.len(), ogrow.bytes())
            {
                return false;
            }
        }
        true
    }
    quickcheck::QuickCheck::new()
        .tests(if cfg!(debug_assertions) { 300 } else { 2000 })
        .quickcheck(prop as fn(u8, u16, Vec<(u8, u8, u8)>) -> bool);
}
