//! §3 Framing: frame structure, byte-stream and packet transports, decode errors, the frame size
//! limit, frame types, exact consumption, the end of the transport.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, fatal, first, ignored, listen, Transport};

const PACKET_ONLY: &str = "packet transports only";

pub(super) fn cases() -> Vec<Case> {
    vec![
        dial_code(
            "3.2/1",
            "a CALL written one byte per transport write",
            "receivers MUST NOT depend on how frames are split across reads",
            one_byte_per_write,
        ),
        dial(
            "3.2/2",
            "three CALLs coalesced in one transport write",
            "frames are written back to back, with no padding, separators or alignment",
            vec![
                Open,
                Send([call(0, method::ECHO, b"a"), call(2, method::ECHO, b"b"), call(4, method::ECHO, b"c")].concat()),
                ReplyWith(0, OK, b"a".into()),
                ReplyWith(2, OK, b"b".into()),
                ReplyWith(4, OK, b"c".into()),
            ],
        ),
        dial_code(
            "3.4/1",
            "a frame header whose Length exceeds the announced max_frame_size",
            "A receiver MUST reject a frame whose Length exceeds its current limit, with `FrameTooLarge` ... before buffering the body",
            length_above_limit,
        ),
        first(
            "3.4/2",
            "a HELLO longer than 4096 bytes before the handshake",
            "Until a peer has received the other peer's HELLO, its limit is **MIN_FRAME_SIZE = 4096**",
            vec![0x01, 0x50, 0x01, 0x54, 0x4e, 0x44, 0x4d],
            FTL,
        ),
        dial_code(
            "3.4/3",
            "a CALL whose body is exactly max_frame_size bytes",
            "A receiver MUST reject a frame whose Length exceeds its current limit (a frame at the limit is accepted)",
            body_at_limit,
        ),
        listen(
            "3.4/4",
            "an acceptor HELLO longer than 4096 bytes",
            "Until a peer has received the other peer's HELLO, its limit is **MIN_FRAME_SIZE = 4096**",
            vec![Connect, PeerHello, Send(vec![0x01, 0x50, 0x01, 0x54, 0x4e, 0x44, 0x4d]), Close(FTL)],
        ),
        ignored(
            "3.5/1",
            "an extension frame (0x80) after the handshake is skipped",
            "a receiver that does not implement the type MUST skip the frame silently",
            vec![0x80, 0x02, 0x01, 0x02],
        ),
        ignored(
            "3.5/2",
            "an extension frame 0xff with an empty body is skipped",
            "0x80..=0xFF, extension range ... MUST skip the frame silently",
            vec![0xff, 0x00],
        ),
        ignored(
            "3.5/3",
            "a 4000-byte extension frame is skipped",
            "it discards the body (after the §3.4 size check) and continues with the next frame",
            e(Frame::Extension { ty: 0xa0, body: &bigbuf(4000) }),
        ),
        fatal(
            "3.5/4",
            "reserved frame type 0x07 after the handshake",
            "**0x00..=0x7F, not assigned in v1**: the receiver MUST treat the frame as the decode error `UnknownFrameType`",
            vec![0x07, 0x01, 0x00],
            FEE,
        ),
        listen(
            "3.5/5",
            "an extension frame from the acceptor is skipped by the dialer",
            "a receiver that does not implement the type MUST skip the frame silently",
            vec![Open, Send(vec![0x80, 0x02, 0x01, 0x02]), Alive],
        ),
        fatal(
            "3.6/1",
            "a CANCEL with a trailing byte",
            "If bytes remain after the last field, the error is `TrailingBytes`",
            vec![0x14, 0x02, 0x00, 0x00],
            FEE,
        ),
        fatal(
            "3.6/2",
            "a PING with 9 data bytes",
            "a 9-byte body is `TrailingBytes`",
            vec![0x04, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            FEE,
        ),
        fatal(
            "3.6/3",
            "a STREAM_FIN whose status is cut off",
            "If a field needs more bytes than remain in the body, the error is `Truncated`",
            vec![0x1a, 0x01, 0x00],
            FEE,
        ),
        dial(
            "3.7/1",
            "two CALLs in one SEQPACKET datagram",
            "each datagram carries **one or more whole frames**, back to back",
            vec![
                Open,
                Only(Transport::Packet, PACKET_ONLY),
                Send([call(0, method::ECHO, b"x"), call(2, method::ECHO, b"y")].concat()),
                Replied(0),
                Replied(2),
            ],
        ),
        dial(
            "3.7/2",
            "a SEQPACKET datagram that ends inside a frame",
            "A datagram that ends inside a frame's header or body is the decode error `Truncated`",
            vec![Open, Only(Transport::Packet, PACKET_ONLY), Send(vec![0x10, 0x07, 0x00, 0x00, 0x64]), Close(FEE)],
        ),
        dial_code(
            "3.7/3",
            "a SEQPACKET datagram above the announced max_datagram_size",
            "A datagram longer than the receiver's `max_datagram_size` is a violation of an announced limit: a receiver that can detect it ... closes the connection with LIMIT_EXCEEDED; a receiver whose transport silently truncates the datagram detects `Truncated` instead",
            datagram_above_limit,
        ),
        dial(
            "3.7/4",
            "the implementation's frames fit one datagram each and are never split",
            "A frame never spans two datagrams",
            vec![Open, Only(Transport::Packet, PACKET_ONLY), Echo(bigbuf(3000))],
        ),
        dial(
            "3.8/1",
            "the transport ends at a frame boundary: no CLOSE is sent back",
            "the peer that sees it resolves every open exchange as UNAVAILABLE (§7.8.3) and does not send CLOSE",
            vec![Open, EndInput, Eof],
        ),
        dial_code(
            "3.8/2",
            "complete frames before a transport end inside a frame are processed",
            "the receiver first processes every complete frame before that point, then treats the partial frame as `Truncated`",
            frames_before_a_cut_end,
        ),
        dial_code(
            "3.8/3",
            "in a resumable session, an end inside a frame suspends the session: it can be resumed",
            "In a resumable session (§13.2) an end inside a frame is a lost transport, not a decode error",
            cut_inside_a_frame_suspends,
        ),
    ]
}

/// 3.8/3: half a CALL, then the end of the transport: the session is suspended, not ended by a
/// FRAME_ENCODING_ERROR, so the runner resumes it and calls again.
fn cut_inside_a_frame_suspends(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    if c.w().is_packet() {
        return skip("byte streams only: on a packet transport a datagram holds whole frames (§3.7)");
    }
    c.call_ok(method::ECHO, b"before the cut")?;
    let f = call(1000, method::ECHO, b"cut in the middle of this frame");
    c.send_bytes(&f[..f.len() / 2])?;
    resume(c, &t)?;
    c.call_ok(method::ECHO, b"after the resumption").map(drop)
}

/// 3.2/1: byte streams only; every byte of a CALL in its own write, 2 ms apart.
fn one_byte_per_write(c: &mut Ctx) -> R {
    c.open()?;
    if c.w().is_packet() {
        return skip("byte streams only: on a packet transport a frame never spans two datagrams");
    }
    for x in &call(0, method::ECHO, b"split") {
        c.send_bytes(&[*x])?;
        std::thread::sleep(Duration::from_millis(2));
    }
    let (s, p) = c.response(0)?;
    status_is("RESPONSE", s, OK)?;
    bigbuf_eq("echo", &p, b"split")
}

/// 3.4/1: a CALL header announcing one byte more than the implementation's max_frame_size.
fn length_above_limit(c: &mut Ctx) -> R {
    c.open()?;
    let mut h = vec![ty::CALL];
    put_varint(&mut h, c.peer_frame() as u64 + 1);
    h.extend_from_slice(&[0x00, 0x02]);
    c.send_bytes(&h)?;
    c.expect_close(FTL)
}

/// 3.4/3: an ECHO whose frame body is exactly the implementation's max_frame_size.
fn body_at_limit(c: &mut Ctx) -> R {
    c.open()?;
    let over = Frame::Call(req(0, method::ECHO, b"")).body_len();
    let p = bigbuf(c.peer_frame() - over);
    c.send(&[Frame::Call(req(0, method::ECHO, &p))])?;
    let (s, back) = c.response(0)?;
    status_is("RESPONSE", s, OK)?;
    bigbuf_eq("the payload echoed", &back, &p)
}

/// 3.7/3: extension frames filling one datagram beyond the implementation's max_datagram_size.
fn datagram_above_limit(c: &mut Ctx) -> R {
    c.open()?;
    if !c.w().is_packet() {
        return skip(PACKET_ONLY);
    }
    let max = match c.p(10) {
        0 => 65536,
        n => n as usize,
    };
    if max > 1 << 20 {
        return skip(format!("max_datagram_size {max} is too large to exceed"));
    }
    let body = bigbuf(4000.min(c.peer_frame() - 8));
    let one = e(Frame::Extension { ty: 0x80, body: &body });
    let mut d = Vec::new();
    while d.len() <= max {
        d.extend_from_slice(&one);
    }
    c.send_bytes(&d)?;
    c.expect_close_in(&[LIM, FEE], T)
}

/// 3.8/2: a NOTIFY, then half a CALL, then the end of the transport; a second connection with
/// the same name reads what the NOTIFY recorded.
fn frames_before_a_cut_end(c: &mut Ctx) -> R {
    c.open()?;
    if c.w().is_packet() {
        return skip("byte streams only");
    }
    let mut bytes = notify(0, method::RECORD, b"before-eof");
    bytes.extend_from_slice(&[0x10, 0x07, 0x00]);
    c.send_bytes(&bytes)?;
    std::thread::sleep(Duration::from_millis(50));
    c.w().shutdown_write();
    let _ = c.expect_close_in(&[FEE], T);
    let mut c2 = Ctx::new(c.target.clone(), c.log.clone(), c.name.clone());
    c2.open()?;
    c2.wait_recorded(b"before-eof")
}
