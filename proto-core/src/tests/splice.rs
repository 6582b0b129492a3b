//! Stream items of a resumable session go out from their retained copy (`conn/splice.rs`): the
//! transmit queue refers to the item's frame instead of holding a second copy. Whatever part
//! of the queued pieces the transport takes, and wherever a transport loss cuts them, every
//! item must arrive whole, once, and in order, with the other frames in their places.

use super::pair::{Ev, Pair, Rng, ECHO, SINK};
use super::resume::{resumable_with, resume, stream_items as items};
use crate::{Config, State, Status};
use std::sync::Arc;
use std::vec::Vec;

/// The transport takes up to `take` bytes of what `a` has queued, through
/// `transmit_pieces` (at most `max_pieces` per write, as a vectored write) and `transmit_done`.
fn write_some(p: &mut Pair, take: usize, max_pieces: usize, wire: &mut Vec<u8>) {
    let mut left = take;
    while left > 0 {
        let mut pieces: [&[u8]; 8] = [&[]; 8];
        let k = p.a.conn.transmit_pieces(&mut pieces[..max_pieces]);
        if k == 0 {
            break;
        }
        let mut n = 0;
        for piece in &pieces[..k] {
            let t = piece.len().min(left - n);
            wire.extend_from_slice(&piece[..t]);
            n += t;
            if n == left {
                break;
            }
        }
        p.a.conn.transmit_done(n);
        left -= n;
    }
}

/// `b` reads `wire` and consumes the items of stream `id`, returning credit to `a`.
fn deliver(p: &mut Pair, id: u64, wire: &mut Vec<u8>, got: &mut Vec<Vec<u8>>) {
    let n = p.b.conn.handle_input(p.now, wire);
    wire.drain(..n);
    p.b.poll(p.now);
    let fresh = items(&mut p.b, id);
    for item in &fresh {
        p.b.conn.stream_consumed(id, 1, item.len() as u32).unwrap();
    }
    got.extend(fresh);
    p.drive_b_to_a();
    p.a.poll(p.now);
    p.a.events.retain(|e| !matches!(e, Ev::StreamWritable { .. }));
}

#[test]
fn an_item_of_a_resumable_session_is_queued_as_its_own_piece() {
    let mut p = resumable_with(Config::default(), Config::default());
    let id = p.a.conn.open_stream(p.now, SINK, b"", None, false).unwrap();
    p.drive();
    p.b.take();
    // A call's frame in the transmit queue, then an item: two pieces, the item's frame whole.
    p.a.conn.call(p.now, ECHO, b"x", None).unwrap();
    p.a.conn.stream_send(id, b"item").unwrap();
    let mut pieces: [&[u8]; 4] = [&[]; 4];
    assert_eq!(p.a.conn.transmit_pieces(&mut pieces), 2);
    assert!(pieces[1].ends_with(b"item"), "{pieces:?}");
    let total = pieces[0].len() + pieces[1].len();
    assert_eq!(p.a.conn.pending_transmit(), total, "the spliced frame counts as queued");
    assert_eq!(p.a.conn.transmit_data(), pieces[0]);
    p.drive();
    assert_eq!(items(&mut p.b, id), vec![b"item".to_vec()]);
    assert_eq!(p.a.conn.pending_transmit(), 0);
}

#[test]
fn a_shared_item_is_sent_from_the_callers_buffer_and_released_once_confirmed() {
    let mut p = resumable_with(Config::default(), Config::default());
    let id = p.a.conn.open_stream(p.now, SINK, b"", None, false).unwrap();
    p.drive();
    p.b.take();
    p.a.conn.call(p.now, ECHO, b"x", None).unwrap();
    let item = Arc::new(b"shared item".to_vec());
    // The same buffer twice: two frames, both from it.
    p.a.conn.stream_send_shared(id, &item).unwrap();
    p.a.conn.stream_send_shared(id, &item).unwrap();
    assert_eq!(Arc::strong_count(&item), 5, "each send keeps it queued and retained");
    let mut pieces: [&[u8]; 8] = [&[]; 8];
    // The call's frame, then header and item twice.
    assert_eq!(p.a.conn.transmit_pieces(&mut pieces), 5);
    assert_eq!(pieces[2].as_ptr(), item.as_ptr(), "the item is not copied");
    assert_eq!(pieces[4].as_ptr(), item.as_ptr());
    let total: usize = pieces.iter().map(|x| x.len()).sum();
    assert_eq!(p.a.conn.pending_transmit(), total);
    p.drive();
    assert_eq!(items(&mut p.b, id), vec![item.to_vec(), item.to_vec()]);
    for _ in 0..2 {
        p.b.conn.stream_consumed(id, 1, item.len() as u32).unwrap();
    }
    p.drive();
    assert_eq!(Arc::strong_count(&item), 1, "sent and confirmed: the connection let go");
}

#[test]
fn a_shared_item_is_spliced_without_a_resumable_session_too() {
    let mut p = Pair::connected();
    let id = p.a.conn.open_stream(p.now, SINK, b"", None, false).unwrap();
    p.drive();
    p.b.take();
    let item = Arc::new(std::vec![7u8; 5000]);
    p.a.conn.stream_send_shared(id, &item).unwrap();
    let mut pieces: [&[u8]; 4] = [&[]; 4];
    assert_eq!(p.a.conn.transmit_pieces(&mut pieces), 2);
    assert_eq!(pieces[1].as_ptr(), item.as_ptr());
    p.drive();
    assert_eq!(items(&mut p.b, id), vec![item.to_vec()]);
    assert_eq!(Arc::strong_count(&item), 1, "nothing retains it without resumption");
}

#[test]
fn closing_after_a_shared_items_header_went_out_finishes_its_frame() {
    // A small transmit queue (4 KiB, 1 KiB of it kept for control frames), filled to the brim
    // by two shared items: a CLOSE with the longest reason does not fit, so queued data goes.
    let ca = Config { max_frame_size: 4096, max_tx_buffer: 4096, ..Config::default() };
    let mut p = resumable_with(ca, Config::default());
    let id = p.a.conn.open_stream(p.now, SINK, b"", None, false).unwrap();
    p.drive();
    p.b.take();
    let first = Arc::new(std::vec![3u8; 1500]);
    p.a.conn.stream_send_shared(id, &first).unwrap();
    let second = (1..1600)
        .rev()
        .map(|n| Arc::new(std::vec![4u8; n]))
        .find(|x| p.a.conn.stream_send_shared(id, x).is_ok());
    let second = second.expect("room for a second item");
    assert!(p.a.conn.pending_transmit() > 3060, "{}", p.a.conn.pending_transmit());
    // The transport takes the first item's header only, then the connection closes: the rest
    // of that frame still goes out (the wire stays framed), the second item does not.
    let mut wire = Vec::new();
    let head = p.a.conn.transmit_data().len();
    assert!(head < 8, "the header is a piece of its own: {head}");
    write_some(&mut p, head, 1, &mut wire);
    p.a.conn.close(p.now, Status::OK, &[b'x'; 1024]);
    write_some(&mut p, usize::MAX, 8, &mut wire);
    assert!(
        wire.len() > head + first.len() && wire.len() < head + first.len() + second.len(),
        "{}",
        wire.len()
    );
    let n = p.b.conn.handle_input(p.now, &wire);
    assert_eq!(n, wire.len());
    p.b.poll(p.now);
    assert_eq!(items(&mut p.b, id), vec![first.to_vec()], "the begun item whole, the other dropped");
    assert_eq!(p.b.conn.state(), State::Closed, "the CLOSE was read after it, not a broken frame");
}

/// Streams random-sized items from `a` to `b`, calls interleaved (frames of the transmit
/// queue between the spliced ones), through a small transmit queue; the transport takes a
/// random part of the pieces each time; with `lose`, the transport is lost every so often
/// wherever the writes stopped (inside a spliced frame too) and the session resumed.
fn stream_through_pieces(seed: u64, lose: bool) {
    let ca = Config { max_tx_buffer: 16 * 1024, ..Config::default() };
    let mut p = resumable_with(ca, Config::default());
    p.b.echo = true;
    let id = p.a.conn.open_stream(p.now, SINK, b"", None, false).unwrap();
    p.drive();
    p.b.take();
    let mut rng = Rng::new(seed);
    let (mut sent, mut got, mut wire) = (Vec::<Vec<u8>>::new(), Vec::new(), Vec::new());
    for round in 0..1500u32 {
        loop {
            if rng.below(4) == 0 && p.a.conn.call(p.now, ECHO, b"c", None).is_err() {
                break;
            }
            let len = 1 + rng.below(3000) as usize;
            let item: Vec<u8> = (0..len).map(|i| (sent.len() * 31 + i) as u8).collect();
            // Lent (copied into its retained buffer) or shared (sent from the caller's own).
            let r = if rng.below(2) == 0 {
                p.a.conn.stream_send(id, &item)
            } else {
                p.a.conn.stream_send_shared(id, &Arc::new(item.clone()))
            };
            if r.is_err() {
                break;
            }
            sent.push(item);
        }
        let take = 1 + rng.below(8000) as usize;
        let max_pieces = 1 + rng.below(8) as usize;
        write_some(&mut p, take, max_pieces, &mut wire);
        if lose && round % 97 == 96 {
            // The transport dies with whatever it had taken; a prefix may have arrived.
            let cut = rng.below(wire.len() as u64 + 1) as usize;
            wire.truncate(cut);
            deliver(&mut p, id, &mut wire, &mut got);
            wire.clear();
            p.a.wire.clear();
            p.b.wire.clear();
            p.a.conn.handle_eof(p.now);
            p.b.conn.handle_eof(p.now);
            // Both notice before anything else is written (the old transport is gone).
            p.a.poll(p.now);
            p.b.poll(p.now);
            p.drive();
            assert_eq!(p.a.conn.state(), State::Suspended, "seed {seed} round {round}");
            assert_eq!(p.a.conn.pending_transmit(), 0, "seed {seed}: a lost transport's queue is dropped");
            resume(&mut p);
            got.extend(items(&mut p.b, id));
            p.b.take();
            p.a.take();
            continue;
        }
        deliver(&mut p, id, &mut wire, &mut got);
        p.a.take();
    }
    // The rest, then everything sent arrived once, whole and in order.
    write_some(&mut p, usize::MAX, 8, &mut wire);
    deliver(&mut p, id, &mut wire, &mut got);
    p.drive();
    got.extend(items(&mut p.b, id));
    assert!(sent.len() > 1000, "seed {seed}: only {} items sent", sent.len());
    assert_eq!(got.len(), sent.len(), "seed {seed}");
    assert!(got == sent, "seed {seed}: items differ");
}

#[test]
fn spliced_items_arrive_whole_and_in_order_through_partial_vectored_writes() {
    for seed in 1..=3 {
        stream_through_pieces(seed, false);
    }
}

#[test]
fn spliced_items_cut_by_transport_losses_arrive_exactly_once_after_resumption() {
    for seed in 11..=13 {
        stream_through_pieces(seed, true);
    }
}
