//! Direct receive of stream payloads (`conn/direct.rs`) where it differs from a plain replay
//! (`rechunk.rs` shows it changes nothing on valid traffic): what is offered and what is not,
//! a transport lost or ended mid-payload, a stream reset meanwhile, a payload that trickles in.

use super::limits::enc;
use super::pair::{Ev, Pair, SINK};
use super::resume::{lose_transport, resumable, resume, stream_items};
use crate::frame::{flags, Frame};
use crate::{Config, ConnectionError, DirectRead, State, Status, Transport};
use core::time::Duration;
use std::vec::Vec;

/// A stream from `a` to `b`, open on both sides.
fn open_stream(p: &mut Pair) -> u64 {
    let id = p.a.conn.open_stream(p.now, SINK, b"", None, false).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    id
}

/// What `a` has queued, taken off it without delivering.
fn queued(p: &mut Pair) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = p.a.conn.poll_transmit(p.now, &mut buf);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// `b` takes the first `k` bytes of `wire` into its receive buffer and drains its events.
fn input(p: &mut Pair, wire: &[u8], k: usize) {
    assert_eq!(p.b.conn.handle_input(p.now, &wire[..k]), k);
    p.b.poll(p.now);
}

/// `b` begins the direct receive offered now; returns the item's buffer so far.
fn begin(p: &mut Pair, len: usize) -> Vec<u8> {
    let offer = p.b.conn.direct_offer(1).expect("offered");
    assert_eq!(offer.len, len);
    let buf = offer.received.to_vec();
    assert_eq!(p.b.conn.direct_begin(1), len - buf.len());
    buf
}

#[test]
fn an_item_is_offered_only_when_it_would_be_accepted() {
    let mut p = Pair::connected();
    let id = open_stream(&mut p);
    let item = vec![7u8; 10_000];
    let head = |f: &Frame<'_>| {
        let v = enc(f);
        v[..v.len() - 9_000].to_vec()
    };
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "fragment",
            head(&Frame::StreamData { flags: flags::MORE, id, total_len: Some(20_000), payload: &item }),
        ),
        // Ids the peer never opened, or that are ours: the normal path fails the connection.
        ("unknown id", head(&Frame::StreamData { flags: 0, id: id + 2, total_len: None, payload: &item })),
        ("call id", head(&Frame::StreamData { flags: 0, id: 1, total_len: None, payload: &item })),
        (
            "header only",
            enc(&Frame::StreamData { flags: 0, id, total_len: None, payload: &item })[..3].to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        let mut q = Pair::connected();
        let id2 = open_stream(&mut q);
        assert_eq!(id2, id);
        input(&mut q, &bytes, bytes.len());
        assert_eq!(q.b.conn.direct_offer(1), None, "{what}");
        assert_eq!(q.b.conn.direct_begin(1), 0, "{what}");
        assert_eq!(q.b.conn.direct_remaining(), None, "{what}");
    }
    // Below the caller's minimum, or complete: not offered either.
    let frame = enc(&Frame::StreamData { flags: 0, id, total_len: None, payload: &item });
    input(&mut p, &frame, 100);
    assert_eq!(p.b.conn.direct_offer(20_000), None, "below the minimum");
    let offer = p.b.conn.direct_offer(10_000).expect("offered at its size");
    assert_eq!((offer.stream, offer.len), (id, 10_000));
    assert_eq!(p.b.conn.direct_offer(10_001), None);
    // The credit bounds what a peer can make us allocate before sending it.
    let mut q =
        Pair::connected_with(Config::default(), Config { stream_credit_bytes: 9_999, ..Config::default() });
    let id = open_stream(&mut q);
    let frame = enc(&Frame::StreamData { flags: 0, id, total_len: None, payload: &item });
    input(&mut q, &frame, 100);
    assert_eq!(q.b.conn.direct_offer(1), None, "beyond the stream's credit");
    // A stream we reset: its data is discarded, never offered.
    let mut q = Pair::connected();
    let id = open_stream(&mut q);
    q.b.conn.stream_reset(id, Status::CANCELLED).unwrap();
    input(&mut q, &frame, 100);
    assert_eq!(q.b.conn.direct_offer(1), None, "reset by us");
}

#[test]
fn a_packet_transport_is_never_offered_a_direct_payload() {
    let cfg = Config { transport: Transport::Packet { max_datagram: 1 << 16 }, ..Config::default() };
    let mut p = Pair::connected_with(cfg.clone(), cfg);
    let id = open_stream(&mut p);
    let frame = enc(&Frame::StreamData { flags: 0, id, total_len: None, payload: &[1; 5000] });
    // A datagram must hold whole frames: a cut one is refused, never offered.
    let _ = p.b.conn.handle_input(p.now, &frame[..100]);
    assert_eq!(p.b.conn.direct_offer(1), None);
}

#[test]
fn an_item_received_directly_is_delivered_and_accounted_like_any_other() {
    let mut p = Pair::connected();
    let id = open_stream(&mut p);
    let item: Vec<u8> = (0..30_000u32).map(|i| i as u8).collect();
    p.a.conn.stream_send(id, &item).unwrap();
    p.a.conn.stream_send(id, b"after").unwrap();
    let wire = queued(&mut p);
    let before = p.b.conn.stats();
    input(&mut p, &wire, 500);
    let mut buf = begin(&mut p, item.len());
    assert!(p.b.conn.recv_buffer().is_empty(), "nothing else is read meanwhile");
    assert_eq!(p.b.conn.handle_input(p.now, &wire[500..]), 0);
    let mut off = 500;
    let end = wire.len() - enc(&Frame::StreamData { flags: 0, id, total_len: None, payload: b"after" }).len();
    while off < end {
        let k = 7_000.min(p.b.conn.direct_remaining().unwrap());
        buf.extend_from_slice(&wire[off..off + k]);
        off += k;
        match p.b.conn.direct_read(p.now, k) {
            DirectRead::More(left) => assert_eq!(left, end - off),
            DirectRead::Item(s) => {
                assert_eq!((s, off), (id, end));
                assert_eq!(buf, item);
            }
            DirectRead::Dropped => panic!("dropped"),
        }
    }
    assert_eq!(p.b.conn.direct_remaining(), None);
    let after = p.b.conn.stats();
    assert_eq!(after.bytes_received - before.bytes_received, end as u64);
    assert_eq!(after.frames_received - before.frames_received, 1);
    // Its credit is owed until it is consumed, as for an item delivered by `poll_event`.
    p.b.conn.stream_consumed(id, 1, item.len() as u32).unwrap();
    input(&mut p, &wire[end..], wire.len() - end);
    assert_eq!(stream_items(&mut p.b, id), vec![b"after".to_vec()]);
    p.drive();
    assert_eq!(p.a.conn.state(), State::Open);
    assert_eq!(p.b.conn.state(), State::Open);
}

#[test]
fn an_item_cut_by_a_lost_transport_arrives_once_after_the_resumption() {
    let mut p = resumable();
    let id = open_stream(&mut p);
    let item = vec![0xA5u8; 20_000];
    p.a.conn.stream_send(id, &item).unwrap();
    let wire = queued(&mut p);
    input(&mut p, &wire, 200);
    let mut buf = begin(&mut p, item.len());
    buf.extend_from_slice(&wire[200..8_000]);
    assert!(matches!(p.b.conn.direct_read(p.now, 7_800), DirectRead::More(_)));
    lose_transport(&mut p);
    assert_eq!(p.b.conn.direct_remaining(), None, "the partial item is dropped with the transport");
    assert!(stream_items(&mut p.b, id).is_empty());
    resume(&mut p);
    p.drive();
    assert_eq!(stream_items(&mut p.b, id), vec![item], "retransmitted after STREAM_RESUME, once");
}

/// A connected pair whose `b` is receiving a 20,000-byte item of a new stream directly, the
/// first bytes of its payload in; returns the stream.
fn item_begun(p: &mut Pair) -> u64 {
    let id = open_stream(p);
    p.a.conn.stream_send(id, &[3; 20_000]).unwrap();
    let wire = queued(p);
    input(p, &wire, 200);
    let _ = begin(p, 20_000);
    id
}

#[test]
fn an_end_of_file_mid_payload_is_a_truncated_frame() {
    let mut p = Pair::connected();
    item_begun(&mut p);
    assert!(matches!(p.b.conn.direct_read(p.now, 1_000), DirectRead::More(_)));
    p.b.conn.handle_eof(p.now);
    p.b.poll(p.now);
    assert_eq!(
        p.b.take().last(),
        Some(&Ev::Closed(ConnectionError::Malformed(crate::frame::DecodeError::Truncated)))
    );
}

#[test]
fn a_stream_reset_during_the_payload_drops_the_item_and_restores_the_credit() {
    let mut p = Pair::connected();
    let id = item_begun(&mut p);
    p.b.conn.stream_reset(id, Status::CANCELLED).unwrap();
    let rest = p.b.conn.direct_remaining().unwrap();
    assert_eq!(p.b.conn.direct_read(p.now, rest), DirectRead::Dropped);
    p.drive();
    assert!(stream_items(&mut p.b, id).is_empty());
    assert_eq!(p.b.conn.state(), State::Open);
    // The connection window is whole again: a new stream can send its full credit.
    let id2 = open_stream(&mut p);
    for _ in 0..4 {
        p.a.conn.stream_send(id2, &[1; 60_000]).unwrap();
    }
    p.drive();
    assert_eq!(stream_items(&mut p.b, id2).len(), 4);
}

#[test]
fn a_payload_that_trickles_in_keeps_the_connection_alive() {
    let cfg = Config { idle_timeout: Duration::from_secs(1), ..Config::default() };
    let mut p = Pair::connected_with(cfg.clone(), cfg);
    let id = open_stream(&mut p);
    p.a.conn.stream_send(id, &[9; 10_000]).unwrap();
    let wire = queued(&mut p);
    input(&mut p, &wire, 100);
    let mut buf = begin(&mut p, 10_000);
    let mut off = 100;
    // 100 bytes every 400 ms: 40 s for the item, the idle timeout is 1 s. Only `b` runs its
    // timers (its keepalive PINGs are not answered: `a` is not driven).
    while off < wire.len() {
        p.now = p.now + Duration::from_millis(400);
        p.b.conn.handle_timeout(p.now);
        assert_eq!(p.b.conn.state(), State::Open, "at {off}");
        let k = 100.min(wire.len() - off);
        buf.extend_from_slice(&wire[off..off + k]);
        off += k;
        let r = p.b.conn.direct_read(p.now, k);
        assert_eq!(r == DirectRead::Item(id), off == wire.len(), "{r:?} at {off}");
    }
    assert_eq!(buf, vec![9; 10_000]);
}
