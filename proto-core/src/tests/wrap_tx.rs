//! The transmit queue of a byte stream wraps around in its buffer (a bip buffer): a driver that
//! writes part of [`transmit_data`](crate::Connection::transmit_data) at a time, and one that
//! uses [`poll_transmit`](crate::Connection::poll_transmit) with a small buffer, must still put
//! every byte on the wire once and in order, whatever the queue's two regions look like.

use super::pair::{Ev, Pair, Rng, SINK};
use crate::{Config, RequestKind};
use std::vec::Vec;

/// Streams `items` random-sized items from `a` to `b` through a small transmit queue, the
/// transport taking a random part of what is offered each time (`poll_buf`: through
/// `poll_transmit` with a buffer of that size, else `transmit_data`/`transmit_done`).
fn stream_through_a_small_queue(seed: u64, poll_buf: Option<usize>) {
    let ca = Config { max_tx_buffer: 8192, ..Config::default() };
    let mut p = Pair::connected_with(ca, Config::default());
    let sid = p.a.conn.open_stream(p.now, SINK, b"", None, false).unwrap();
    p.drive();
    assert_eq!(p.b.requests(), vec![(sid, RequestKind::Stream { half_closed: false }, Vec::new())]);
    let mut rng = Rng::new(seed);
    let (mut sent, mut got) = (Vec::<Vec<u8>>::new(), Vec::<Vec<u8>>::new());
    let mut buf = vec![0u8; poll_buf.unwrap_or(0)];
    let mut wire = Vec::new();
    for round in 0..3000u32 {
        // Queue items while the queue takes them.
        loop {
            let len = 1 + rng.below(1500) as usize;
            let item: Vec<u8> = (0..len).map(|i| (round as usize * 7 + i) as u8).collect();
            if p.a.conn.stream_send(sid, &item).is_err() {
                break;
            }
            sent.push(item);
        }
        // The transport takes a random part.
        let take = 1 + rng.below(3000) as usize;
        match poll_buf {
            Some(_) => {
                let mut left = take;
                while left > 0 {
                    let k = buf.len().min(left);
                    let n = p.a.conn.poll_transmit(p.now, &mut buf[..k]);
                    if n == 0 {
                        break;
                    }
                    wire.extend_from_slice(&buf[..n]);
                    left -= n;
                }
            }
            None => {
                let mut left = take;
                while left > 0 {
                    let d = p.a.conn.transmit_data();
                    if d.is_empty() {
                        break;
                    }
                    let n = d.len().min(left).min(1 + rng.below(d.len() as u64) as usize);
                    wire.extend_from_slice(&d[..n]);
                    p.a.conn.transmit_done(n);
                    left -= n;
                }
            }
        }
        let n = p.b.conn.handle_input(p.now, &wire);
        wire.drain(..n);
        p.b.poll(p.now);
        for e in p.b.take() {
            if let Ev::StreamData { id, payload } = e {
                assert_eq!(id, sid);
                p.b.conn.stream_consumed(sid, 1, payload.len() as u32).unwrap();
                got.push(payload);
            }
        }
        p.drive_b_to_a();
        p.a.poll(p.now);
        p.a.take();
    }
    assert!(sent.len() > 1000, "seed {seed}: only {} items sent", sent.len());
    // Everything written so far arrived whole and in order.
    assert!(got.len() <= sent.len());
    assert_eq!(got[..], sent[..got.len()], "seed {seed}");
    assert!(
        sent.len() - got.len() < 20,
        "seed {seed}: {} of {} items still queued",
        sent.len() - got.len(),
        sent.len()
    );
}

#[test]
fn a_stream_through_a_wrapping_transmit_queue_arrives_in_order_via_transmit_data() {
    for seed in 1..=4 {
        stream_through_a_small_queue(seed, None);
    }
}

#[test]
fn a_stream_through_a_wrapping_transmit_queue_arrives_in_order_via_poll_transmit() {
    for (seed, size) in [(5, 1), (6, 700), (7, 4096), (8, 20_000)] {
        stream_through_a_small_queue(seed, Some(size));
    }
}
