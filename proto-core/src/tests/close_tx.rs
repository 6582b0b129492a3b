//! A connection that gives up its transmit queue to close (the peer does not read) must still
//! put its CLOSE at a frame boundary on the wire: the transport may already have taken part of
//! the frame at the head of the queue, and what follows those bytes is read as the rest of it.

use super::limits::{call, enc, frames, Hostile};
use crate::frame::Frame;
use crate::{Config, State, Status};
use std::vec::Vec;

/// Floods refused calls (each owed a control frame) until the connection closes.
fn flood_until_closed(h: &mut Hostile, first_id: u64) {
    for i in 0..10_000u64 {
        h.feed(&enc(&call(first_id + 2 * i, b"")));
        if h.conn.state() == State::Closed {
            return;
        }
    }
    panic!("the connection never gave up on a peer that does not read");
}

/// The closing connection's last bytes, after `wire` (what the transport already took).
fn finish_wire(h: &mut Hostile, mut wire: Vec<u8>) -> Vec<u8> {
    wire.extend(h.transmit());
    wire
}

#[test]
fn close_after_a_half_sent_frame_completes_that_frame_first() {
    // Every split of the head frame: after its first byte, in its header, in its body, and at
    // its very end (no split).
    for taken in [1usize, 2, 3, 4, 0] {
        let c = Config { max_tx_buffer: 8192, ..Config::default() };
        let mut h = Hostile::acceptor(c);
        // A call left open keeps the connection draining after our GOAWAY; from then on every
        // new call is refused with a control frame.
        h.feed(&enc(&call(0, b"open")));
        h.take();
        h.conn.go_away(h.now, Status::OK, b"").unwrap();
        let mut wire = h.transmit();
        h.feed(&enc(&call(2, b"")));
        // The transport takes `taken` bytes of the refusal and then nothing more.
        let head = h.conn.transmit_data().to_vec();
        assert!(head.len() > 4, "{head:?}");
        wire.extend_from_slice(&head[..taken]);
        h.conn.transmit_done(taken);
        flood_until_closed(&mut h, 4);
        h.poll();
        let wire = finish_wire(&mut h, wire);
        // Whole frames (`frames` panics on a partial one), CLOSE last.
        let f = frames(&wire);
        match f.last() {
            Some(Frame::Close { status, .. }) => assert_eq!(*status, Status::ENHANCE_YOUR_CALM),
            other => panic!("split after {taken}: expected CLOSE last, got {other:?}"),
        }
        if taken > 0 {
            // The refusal the transport had begun is on the wire whole, right before the CLOSE
            // (every frame queued after it was given up).
            assert!(matches!(f[f.len() - 2], Frame::Response { id: 2, .. }), "{f:?}");
        }
    }
}
