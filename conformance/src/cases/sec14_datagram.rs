//! §14 Datagram mode (UDP): played as raw datagrams over `udp://`; the runner skips these cases
//! on every other transport (and the other cases over `udp://`). Each sending step of the runner
//! is exactly one datagram.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, fatal, ignored, listen, listen_code, Ans, Step, Want, V1};

/// The duplicate window W of SPEC.md §14.5.
pub(crate) const WINDOW: u64 = 1024;

/// An id of the runner's parity that puts id 0 (and 2) below the implementation's window.
const ABOVE_WINDOW: u64 = 2 * (WINDOW + 76);

const DROPPED: &str = "If any frame has a decode error (§3.3, including `Truncated` and `FrameTooLarge`) ... the whole datagram is dropped";
const IGNORED: &str = "It ignores STREAM_DATA, STREAM_FIN, STREAM_RESET, STREAM_CREDIT, STREAM_RESUME and CONN_CREDIT received over UDP";

/// PING `data` followed, in the same datagram, by `rest`: the datagram the implementation must
/// drop whole (no PONG), after which the association must still work.
pub(crate) fn ping_then(data: [u8; 8], rest: &[u8]) -> Vec<u8> {
    [e(Frame::Ping(data)), rest.to_vec()].concat()
}

/// A datagram of exactly `size` bytes: a PING then one extension frame as padding.
pub(crate) fn padded_ping(data: [u8; 8], size: usize) -> Vec<u8> {
    let mut d = e(Frame::Ping(data));
    // Extension frame 0x80: type, varint length, body.
    let room = size.saturating_sub(d.len());
    let mut body = room.saturating_sub(3);
    loop {
        let mut len = Vec::new();
        put_varint(&mut len, body as u64);
        let total = 1 + len.len() + body;
        if total == room {
            d.push(0x80);
            d.extend_from_slice(&len);
            d.resize(d.len() + body, 0);
            return d;
        }
        if total > room {
            body -= total - room;
        } else {
            body += room - total;
        }
    }
}

/// The datagram just sent was dropped whole: no PONG for `data`, and the association still
/// answers a PING.
fn dropped(data: &'static [u8; 8]) -> Vec<Step> {
    vec![Absent("PONG for a PING in a datagram that must be dropped whole", Want::Pong(*data), Q), Alive]
}

/// A CALL of SINK cut two bytes short.
fn cut_call() -> Vec<u8> {
    let mut cl = call(0, method::SINK, b"never");
    cl.truncate(cl.len() - 2);
    cl
}

pub(super) fn cases() -> Vec<Case> {
    let mut v = vec![
        // §14.1 Associations
        dial(
            "14.1/1",
            "a first datagram that is not a HELLO creates no association and is dropped",
            "a datagram from an address with no association creates one only if its first frame is a HELLO; other datagrams from unknown addresses are dropped",
            vec![
                Connect,
                Send(e(Frame::Ping(*b"nohello!"))),
                Absent("any answer to a datagram without HELLO", Want::Any, Q),
                Forget,
                Open,
                Alive,
            ],
        ),
        dial_code(
            "14.1/2",
            "the acceptor's HELLO over UDP has an empty session token and RESUME clear",
            "Sessions and resumption (§13) are not used: the acceptor sends an empty session token, and the dialer never sets RESUME",
            no_session_over_udp,
        ),
        // §14.2 Datagrams and invalid input
        dial(
            "14.2/1",
            "two frames in one datagram are both processed",
            "Each datagram carries one or more whole frames",
            vec![
                Open,
                Send(enc(&[Frame::Ping(*b"first!!!"), Frame::Ping(*b"second!!")])),
                Expect(Want::Pong(*b"first!!!")),
                Expect(Want::Pong(*b"second!!")),
            ],
        ),
        dial(
            "14.2/2",
            "a datagram with an undecodable frame after a PING is dropped whole; the association continues",
            "If any frame has a decode error (§3.3 ...) ... the whole datagram is dropped — none of its frames is processed — and the connection continues",
            [vec![Open, Send(ping_then(*b"drop-me1", &[0x08, 0x01, 0x00]))], dropped(b"drop-me1")].concat(),
        ),
        dial(
            "14.2/3",
            "a datagram ending inside a frame is dropped whole (Truncated)",
            DROPPED,
            [vec![Open, Send(ping_then(*b"drop-me2", &cut_call()))], dropped(b"drop-me2"), vec![SinkCalls(0)]].concat(),
        ),
        dial_code(
            "14.2/4",
            "a datagram with a frame above max_frame_size is dropped whole (FrameTooLarge)",
            DROPPED,
            frame_above_limit,
        ),
        dial_code(
            "14.2/5",
            "a datagram above the implementation's max_datagram_size is dropped whole",
            "If ... the datagram exceeds the receiver's `max_datagram_size`, the whole datagram is dropped",
            datagram_above_limit,
        ),
        dial_code(
            "14.2/6",
            "a datagram of exactly max_datagram_size bytes is processed",
            "Each datagram ... MUST NOT exceed the receiver's `max_datagram_size` (default 1200 on UDP)",
            datagram_at_limit,
        ),
        ignored("14.2/7", "an empty datagram is ignored", "Empty datagrams are ignored", vec![]),
        fatal(
            "14.2/8",
            "a protocol violation found after decoding is still fatal: RESPONSE for an id the implementation never used",
            "Violations of protocol rules found after decoding remain connection-fatal ... (A RESPONSE for an id of the receiver's own parity that it has never used is still a PROTOCOL_ERROR",
            e(Frame::Response { flags: 0, id: 41, status: OK, total_len: None, payload: b"" }),
            PE,
        ),
        // §14.3 Handshake
        dial_code(
            "14.3/1",
            "a byte-identical copy of the dialer's HELLO is answered with a byte-identical HELLO",
            "The acceptor answers every copy of the dialer's HELLO with its own HELLO (byte-identical each time)",
            hello_copy_answered,
        ),
        dial(
            "14.3/2",
            "a repeated HELLO after calls is not a second HELLO: the association and its reply cache survive",
            "A byte-identical repetition of the dialer's HELLO is not a \"second HELLO\" (§5.2)",
            vec![
                Open,
                Send(call(0, method::SINK, b"a")),
                ReplyWith(0, OK, vec![]),
                Hello(V1),
                Expect(Want::Hello),
                Send(call(0, method::SINK, b"a")),
                ReplyWith(0, OK, vec![]),
                SinkCalls(1),
            ],
        ),
        dial_code(
            "14.3/3",
            "a different HELLO from the same address starts a new association (ids start over)",
            "A *different* HELLO from the same address ends the old association (its exchanges resolve UNAVAILABLE) and starts a new one",
            different_hello,
        ),
        listen_code(
            "14.3/4",
            "the implementation as dialer retransmits its HELLO byte-identically until answered",
            "The dialer retransmits its HELLO (byte-identical copies) on the retransmission timer of §14.4 until it receives the acceptor's HELLO or CLOSE",
            dialer_hello_retransmitted,
        ),
        listen(
            "14.3/5",
            "the dialer ignores a byte-identical copy of the acceptor's HELLO",
            "The dialer ignores byte-identical copies of the acceptor's HELLO",
            vec![Open, Hello(V1), Alive],
        ),
        listen(
            "14.3/6",
            "a different second HELLO from the acceptor is a PROTOCOL_ERROR",
            "The dialer ignores byte-identical copies of the acceptor's HELLO; a different one is a PROTOCOL_ERROR",
            vec![Open, Send(hello_bytes(1, 1, 0, b"another-acceptor-name", b"", &[])), Close(PE)],
        ),
        // §14.4 Retransmission
        dial_code(
            "14.4/1",
            "the implementation retransmits an unanswered CALL with the same id, method and payload",
            "CALL, NOTIFY | its RESPONSE arrives ... A retransmitted CALL or NOTIFY carries the original id, module, method and payload, and `budget_us` = the remaining budget (≥ 1)",
            call_retransmitted,
        ),
        dial(
            "14.4/2",
            "after its deadline, the implementation retransmits CANCEL until the RESPONSE arrives",
            "CANCEL | the RESPONSE of the cancelled exchange arrives",
            vec![
                Open,
                Callback(kind::CALL, 300, b"late".into()),
                Opened(kind::CALL),
                Expect(Want::Cancel),
                Expect(Want::Cancel),
                Answer(vec![Ans::Response(Status::CANCELLED, vec![])]),
                CallbackAnswers(Status::DEADLINE_EXCEEDED),
            ],
        ),
        dial_code(
            "14.4/3",
            "beyond max_concurrent_calls over UDP: RESPONSE(RESOURCE_EXHAUSTED), not a connection error",
            "Over UDP an opening frame that would exceed the responder's `max_concurrent_calls` is not a connection error: the responder answers RESPONSE(RESOURCE_EXHAUSTED, empty)",
            beyond_the_call_limit,
        ),
        ignored(
            "14.4/4",
            "an ACK naming an id the implementation has not seen opened is dropped silently",
            "a RESPONSE, STREAM_* or ACK frame naming an id that the receiver has not yet seen opened by the other peer (it may have overtaken its opening frame) is dropped silently instead of being a PROTOCOL_ERROR",
            vec![0x06, 0x03, 0x01, 0x3c, 0x01],
        ),
        // §14.5 Duplicate detection and the reply cache
        dial(
            "14.5/1",
            "a duplicate CALL is answered from the reply cache; the handler runs once",
            "X seen or below the window, RESPONSE in the reply cache | resend the cached RESPONSE",
            vec![
                Open,
                Send(call(0, method::SINK, b"dup")),
                ReplyWith(0, OK, vec![]),
                Send(call(0, method::SINK, b"dup")),
                ReplyWith(0, OK, vec![]),
                SinkCalls(1),
            ],
        ),
        dial(
            "14.5/2",
            "a duplicate of a call still running is ignored: one RESPONSE, one run",
            "X in the window, seen, exchange still open | ignore (the RESPONSE will come when the application responds)",
            vec![
                Open,
                Send(sleep(0, 500)),
                Send(sleep(0, 500)),
                ReplyWith(0, OK, vec![0]),
                Absent("a second RESPONSE id=0", Want::ResponseTo(0), Q),
                RecordedTimes(entry::SLEEP_DONE.into(), 1),
            ],
        ),
        dial(
            "14.5/3",
            "calls arriving out of order inside the window are new exchanges",
            "X > H, or X in the window and not seen | new exchange: mark X seen ... and process it normally",
            vec![
                Open,
                Send(call(4, method::SINK, b"4")),
                ReplyWith(4, OK, vec![]),
                Send(call(2, method::SINK, b"2")),
                ReplyWith(2, OK, vec![]),
                SinkCalls(2),
            ],
        ),
        dial(
            "14.5/4",
            "a call below the window that is not cached: RESPONSE(REPLY_EVICTED), never run",
            "X in the window, seen, not open, not cached; or X below the window and not cached | RESPONSE(REPLY_EVICTED, empty)",
            vec![
                Open,
                Send(call(ABOVE_WINDOW, method::ECHO, b"")),
                Replied(ABOVE_WINDOW),
                Send(call(0, method::SINK, b"old")),
                ReplyWith(0, Status::REPLY_EVICTED, vec![]),
                SinkCalls(0),
            ],
        ),
        dial(
            "14.5/5",
            "a duplicate with another payload is a PROTOCOL_ERROR",
            "A duplicate whose digest (§13.5) differs from the original's is a PROTOCOL_ERROR",
            vec![Open, Send(call(0, method::ECHO, b"one")), Replied(0), Send(call(0, method::ECHO, b"two")), Close(PE)],
        ),
        dial(
            "14.5/6",
            "CANCEL before its CALL: RESPONSE(CANCELLED) at once, and the CALL arriving later never runs",
            "if X is above H or in the window and not seen, the responder marks X seen, records RESPONSE(CANCELLED, empty) in its reply cache and sends it — the request will never run, even if its CALL arrives later",
            vec![
                Open,
                Send(e(Frame::Cancel { id: 0 })),
                ReplyWith(0, Status::CANCELLED, vec![]),
                Send(call(0, method::SINK, b"late")),
                ReplyWith(0, Status::CANCELLED, vec![]),
                SinkCalls(0),
            ],
        ),
        dial(
            "14.5/7",
            "CANCEL of a running call cancels it as usual",
            "A CANCEL for id X: if the exchange is open, it is cancelled as usual (§7.1.2)",
            vec![
                Open,
                Send(sleep(0, 3000)),
                Absent("RESPONSE", Want::Response, 50),
                Send(e(Frame::Cancel { id: 0 })),
                Reply(0, Status::CANCELLED),
                Recorded(entry::SLEEP_CANCELLED.into()),
            ],
        ),
        dial(
            "14.5/8",
            "CANCEL of an answered call resends the cached RESPONSE",
            "if its RESPONSE is cached, the cached RESPONSE is resent",
            vec![
                Open,
                Send(call(0, method::ECHO, b"kept")),
                ReplyWith(0, OK, b"kept".into()),
                Send(e(Frame::Cancel { id: 0 })),
                ReplyWith(0, OK, b"kept".into()),
            ],
        ),
        dial(
            "14.5/9",
            "CANCEL below the window, not cached: RESPONSE(REPLY_EVICTED)",
            "if X is below the window and not cached, it answers RESPONSE(REPLY_EVICTED)",
            vec![
                Open,
                Send(call(ABOVE_WINDOW, method::ECHO, b"")),
                Replied(ABOVE_WINDOW),
                Send(e(Frame::Cancel { id: 2 })),
                ReplyWith(2, Status::REPLY_EVICTED, vec![]),
            ],
        ),
        // §14.6 ACK
        dial(
            "14.6/1",
            "ACK trims the reply cache: a later duplicate gets REPLY_EVICTED",
            "A caller acknowledges received RESPONSEs with ACK (§4.6) so that the responder can trim its cache",
            vec![
                Open,
                Send(call(0, method::SINK, b"a")),
                ReplyWith(0, OK, vec![]),
                Send(vec![0x06, 0x03, 0x01, 0x00, 0x01]),
                Alive,
                Send(call(0, method::SINK, b"a")),
                ReplyWith(0, Status::REPLY_EVICTED, vec![]),
                SinkCalls(1),
            ],
        ),
        dial_code(
            "14.6/2",
            "beyond reply_cache_entries the oldest reply is evicted: its duplicate gets REPLY_EVICTED",
            "The reply cache (§13.6 rules) is mandatory in datagram mode: every RESPONSE sent is cached, bounded by the announced `reply_cache_entries` and `reply_cache_bytes`, evicted oldest first",
            oldest_reply_evicted,
        ),
        // §14.7 No fragmentation, no streams
        dial(
            "14.7/1",
            "STREAM_OPEN over UDP is answered STREAM_RESET(UNIMPLEMENTED)",
            "A peer that receives STREAM_OPEN over UDP answers STREAM_RESET(id, UNIMPLEMENTED), whatever its `max_concurrent_streams`, keeps no state, and the id is closed",
            vec![
                Open,
                Send(stream(0, method::COUNT, &be(2), false)),
                Expect(Want::Reset(0, Status::UNIMPLEMENTED)),
                Absent("STREAM_DATA", Want::StreamData, Q),
                Alive,
            ],
        ),
    ];
    for (id, name, bytes) in [
        ("14.7/2", "STREAM_DATA", e(item(0, b"x"))),
        ("14.7/3", "STREAM_FIN", e(Frame::StreamFin { id: 0, status: OK })),
        ("14.7/4", "STREAM_RESET", e(Frame::StreamReset { id: 0, status: Status::CANCELLED })),
        ("14.7/5", "STREAM_CREDIT", e(Frame::StreamCredit { id: 1, msgs: 1, bytes: 1 })),
        ("14.7/6", "STREAM_RESUME", e(Frame::StreamResume { id: 0, received: 0 })),
        ("14.7/7", "CONN_CREDIT", e(Frame::ConnCredit { bytes: 1000 })),
    ] {
        v.push(ignored(id, &format!("{name} over UDP is ignored"), IGNORED, bytes));
    }
    v.extend([
        // §14.8 SIGNAL, PING, GOAWAY and CLOSE over UDP
        dial(
            "14.8/1",
            "a SIGNAL datagram is processed once",
            "SIGNAL is sent once, in one datagram; it is never retransmitted and never acknowledged",
            vec![
                Open,
                Send(e(Frame::Signal { module: MODULE, method: method::RECORD, payload: b"sig" })),
                Recorded(b"sig".into()),
            ],
        ),
        dial(
            "14.8/2",
            "CLOSE from the runner ends the association: a later CALL is not answered",
            "A peer that receives CLOSE ends the association at once",
            vec![
                Open,
                Send(e(Frame::Close { status: OK, message: b"" })),
                Send(call(0, method::ECHO, b"after close")),
                Absent("RESPONSE after CLOSE", Want::Response, Q),
            ],
        ),
        dial_code(
            "14.8/3",
            "after its CLOSE the implementation answers later datagrams with the same CLOSE, if at all",
            "A peer that has sent CLOSE SHOULD answer further datagrams of the association with the same CLOSE (at most once per RTO) for 3·RTO",
            same_close_again,
        ),
    ]);
    v
}

/// 14.1/2: the acceptor's HELLO has an empty session and RESUME clear.
fn no_session_over_udp(c: &mut Ctx) -> R {
    c.open()?;
    match c.peer_hello.as_ref().map(|o| o.frame()) {
        Some(Frame::Hello(h)) if h.session.is_empty() && h.flags & 1 == 0 => Ok(()),
        Some(f) => fail("HELLO with session=[] and RESUME clear", describe(&f)),
        None => fail("HELLO", "none"),
    }
}

/// 14.2/4: a PING, then a frame header announcing max_frame_size + 1 bytes, in one datagram.
fn frame_above_limit(c: &mut Ctx) -> R {
    c.open()?;
    let mut rest = vec![0x80];
    put_varint(&mut rest, c.peer_frame() as u64 + 1);
    c.send_bytes(&ping_then(*b"drop-me3", &rest))?;
    super::script::play(c, &dropped(b"drop-me3"))
}

/// 14.2/5: a PING padded to max_datagram_size + 1 bytes (default 1200).
fn datagram_above_limit(c: &mut Ctx) -> R {
    c.open()?;
    let max = match c.p(10) {
        0 => 1200,
        m => m as usize,
    };
    if max >= 65507 {
        return skip(format!("max_datagram_size {max} cannot be exceeded by a UDP datagram"));
    }
    c.send_bytes(&padded_ping(*b"drop-me4", max + 1))?;
    super::script::play(c, &dropped(b"drop-me4"))
}

/// 14.2/6: a PING padded to exactly max_datagram_size bytes is answered.
fn datagram_at_limit(c: &mut Ctx) -> R {
    c.open()?;
    let max = match c.p(10) {
        0 => 1200,
        m => (m as usize).min(65507),
    };
    c.send_bytes(&padded_ping(*b"fits-max", max))?;
    c.expect("PONG", T, |f| *f == Frame::Pong(*b"fits-max")).map(drop)
}

/// 14.3/1: the runner's HELLO again, byte for byte: the same HELLO comes back.
fn hello_copy_answered(c: &mut Ctx) -> R {
    c.open()?;
    let first = c.peer_hello.clone();
    let h = hello_bytes(1, 1, 0, c.name.as_bytes(), b"", &c.mine.clone());
    c.send_bytes(&h)?;
    let again = c.expect("the acceptor's HELLO again", T, |f| matches!(f, Frame::Hello(_)))?;
    if Some(&again) != first.as_ref() {
        return fail(first.map(|o| describe(&o.frame())).unwrap_or_default(), describe(&again.frame()));
    }
    c.alive()
}

/// 14.3/3: after ECHO "old" as id 0, a HELLO with another name starts a new association, where
/// id 0 is a new call (in the old one ECHO "new" as id 0 would be a digest mismatch).
fn different_hello(c: &mut Ctx) -> R {
    c.open()?;
    c.send_bytes(&call(0, method::ECHO, b"old"))?;
    expect_resp(c, 0, OK, b"old")?;
    let h = hello_bytes(1, 1, 0, format!("{}-2", c.name).as_bytes(), b"", &c.mine.clone());
    c.send_bytes(&h)?;
    c.expect("the acceptor's HELLO for the new association", T, |f| matches!(f, Frame::Hello(_)))?;
    c.send_bytes(&call(0, method::ECHO, b"new"))?;
    expect_resp(c, 0, OK, b"new")
}

/// 14.3/4: the dialer's first HELLO comes again, identical, before the runner answers.
fn dialer_hello_retransmitted(c: &mut Ctx) -> R {
    c.transport()?;
    let first = c.expect("the dialer's HELLO", T, |f| matches!(f, Frame::Hello(_)))?;
    let again = c.expect("a retransmission of the dialer's HELLO", T, |f| matches!(f, Frame::Hello(_)))?;
    if again != first {
        return fail(describe(&first.frame()), describe(&again.frame()));
    }
    c.take_hello(&first)?;
    let h = hello_bytes(1, 1, 0, c.name.as_bytes(), b"", &[]);
    c.send_bytes(&h)?;
    c.alive()
}

/// 14.4/1: the implementation's CALL (8 s timeout) left unanswered comes again with the same id,
/// method and payload and a budget no larger than before.
fn call_retransmitted(c: &mut Ctx) -> R {
    c.open()?;
    let cb = c.callback(kind::CALL, RUNNER_METHOD, 8000, b"again")?;
    let (id, m, me, budget, p) = expect_call(c)?;
    let (id2, m2, me2, budget2, p2) = expect_call(c)?;
    if (id2, m2, me2, &p2) != (id, m, me, &p) {
        return fail(
            format!("CALL id={id} {m}/{me} {p:02x?}"),
            format!("CALL id={id2} {m2}/{me2} {p2:02x?}"),
        );
    }
    if budget2 == 0 || budget2 > budget {
        return fail(format!("budget_us in 1..={budget}"), format!("{budget2}"));
    }
    c.send(&[Frame::Response { flags: 0, id, status: OK, total_len: None, payload: b"ok" }])?;
    let (s, p) = c.callback_result(cb)?;
    status_is("inner status", s, OK)?;
    bigbuf_eq("inner payload", &p, b"ok")
}

/// 14.4/3: max_concurrent_calls SLEEP calls (1..=64), one datagram each, then one more.
fn beyond_the_call_limit(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(3);
    if n == 0 || n > 64 {
        return skip(format!("max_concurrent_calls {n} (needs 1..=64)"));
    }
    for _ in 0..n {
        let id = c.id();
        c.send_bytes(&sleep(id, 1000))?;
    }
    let extra = c.id();
    c.send_bytes(&sleep(extra, 1000))?;
    expect_resp(c, extra, Status::RESOURCE_EXHAUSTED, b"")?;
    c.alive()
}

/// 14.6/2: a SINK call as id 0, then reply_cache_entries ECHO calls (0: nothing is cached, so even
/// the first reply is gone): the duplicate of id 0 is answered REPLY_EVICTED.
fn oldest_reply_evicted(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(11);
    if n > 1000 {
        return skip(format!("reply_cache_entries {n} is too large to fill quickly (needs ≤ 1000)"));
    }
    c.send_bytes(&call(0, method::SINK, b"oldest"))?;
    expect_resp(c, 0, OK, b"")?;
    let _ = c.id();
    for _ in 0..n {
        let id = c.id();
        c.send_bytes(&call(id, method::ECHO, b""))?;
        c.response(id)?;
    }
    c.send_bytes(&call(0, method::SINK, b"oldest"))?;
    expect_resp(c, 0, Status::REPLY_EVICTED, b"")
}

/// 14.8/3: a RESPONSE for an id never used makes the implementation CLOSE; a PING after it is
/// answered with the same CLOSE or not at all.
fn same_close_again(c: &mut Ctx) -> R {
    c.open()?;
    c.send(&[Frame::Response { flags: 0, id: 41, status: OK, total_len: None, payload: b"" }])?;
    let close = c.expect("CLOSE", T, |f| matches!(f, Frame::Close { .. }))?;
    c.send(&[Frame::Ping(*b"closed?!")])?;
    match c.w().recv(QUIET) {
        Recv::Timeout => Ok(()),
        Recv::Frame(o) if o == close => Ok(()),
        Recv::Frame(o) => fail(describe(&close.frame()), describe(&o.frame())),
        Recv::Eof | Recv::Failed(_) => Ok(()),
        Recv::Bad(e) => fail("the same CLOSE or nothing", format!("{e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_core::frame::Decoded;

    fn frames(mut d: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !d.is_empty() {
            match Frame::decode(d, usize::MAX >> 1) {
                Ok(Decoded::Frame(f, n)) => {
                    out.push(describe(&f));
                    d = &d[n..];
                }
                other => {
                    out.push(format!("{other:?}"));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn padded_datagrams_have_the_exact_size_and_decode_to_a_ping_and_an_extension() {
        for size in [1200usize, 1201, 1500, 16383, 16384, 16385, 65507] {
            let d = padded_ping(*b"12345678", size);
            assert_eq!(d.len(), size);
            let f = frames(&d);
            assert_eq!(f.len(), 2, "{size}: {f:?}");
            assert!(f[0].starts_with("PING"), "{f:?}");
            assert!(f[1].starts_with("EXTENSION type=0x80"), "{f:?}");
        }
    }

    #[test]
    fn datagrams_that_must_be_dropped_whole_start_with_a_valid_ping_then_fail_to_decode() {
        let mut big = vec![0x80];
        put_varint(&mut big, 4097);
        for (rest, err) in
            [(vec![0x08, 0x01, 0x00], "UnknownFrameType"), (cut_call(), "Truncated"), (big, "FrameTooLarge")]
        {
            let d = ping_then(*b"drop-me!", &rest);
            let Ok(Decoded::Frame(Frame::Ping(p), n)) = Frame::decode(&d, 4096) else { panic!("PING first") };
            assert_eq!(&p, b"drop-me!");
            let r = Frame::decode(&d[n..], 4096);
            let got = match r {
                Err(e) => format!("{e:?}"),
                Ok(Decoded::Incomplete(_)) => "Truncated".to_string(),
                Ok(x) => panic!("decodes: {x:?}"),
            };
            assert!(got.starts_with(err), "{got} vs {err}");
        }
    }

    #[test]
    fn the_ids_used_to_leave_the_window_put_0_and_2_below_it() {
        // Window: H, H-2, …, H-2(W-1).
        let lowest = ABOVE_WINDOW - 2 * (WINDOW - 1);
        assert!(lowest > 2 && ABOVE_WINDOW % 2 == 0);
    }

    #[test]
    fn the_ack_datagrams_are_the_ones_of_the_spec() {
        // §4.6 layout: count 1, (first_id, n).
        assert_eq!(frames(&[0x06, 0x03, 0x01, 0x00, 0x01]), vec!["ACK [(0, 1)]".to_string()]);
        assert_eq!(frames(&[0x06, 0x03, 0x01, 0x3c, 0x01]), vec!["ACK [(60, 1)]".to_string()]);
    }
}
