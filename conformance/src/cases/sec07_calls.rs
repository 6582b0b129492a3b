//! §7.1–§7.3 Exchanges: unary calls, reliable notifications, signals.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, ignored, Ans, Want};

pub(super) fn cases() -> Vec<Case> {
    vec![
        // §7.1 Unary call
        dial(
            "7.1/1",
            "a CALL to an unknown module is answered UNKNOWN_MODULE",
            "UNKNOWN_MODULE (3) | exchange | unknown module",
            vec![Open, Send(e(Frame::Call(Request { module: 99, ..req(0, 1, b"") }))), Reply(0, Status::UNKNOWN_MODULE)],
        ),
        dial(
            "7.1/2",
            "a CALL to an unknown method is answered UNKNOWN_METHOD",
            "UNKNOWN_METHOD (4) | exchange | unknown method",
            vec![Open, Send(call(0, 99, b"")), Reply(0, Status::UNKNOWN_METHOD)],
        ),
        dial(
            "7.1/3",
            "concurrent calls are answered independently",
            "either peer may, at any time and concurrently, open *exchanges*",
            vec![Open, Send(sleep(0, 300)), Send(call(2, method::ECHO, b"fast")), Replied(2), Reply(0, OK)],
        ),
        dial(
            "7.1/4",
            "the implementation calls the runner and gets its response",
            "Once connected the peers are equal: either may open exchanges of every kind",
            vec![
                Open,
                Callback(kind::CALL, 2000, b"ping".into()),
                OpenedCall(b"ping".into()),
                Answer(vec![Ans::Response(OK, b"pong".into())]),
                CallbackAnswersWith(OK, b"pong".into()),
            ],
        ),
        dial_code(
            "7.1/5",
            "the implementation reassembles a fragmented RESPONSE",
            "A message whose frame would exceed the receiver's frame limit ... is split",
            fragmented_response,
        ),
        dial(
            "7.1/6",
            "the caller's local deadline sends CANCEL and resolves DEADLINE_EXCEEDED",
            "OPEN | deadline timer expires | Resolve DEADLINE_EXCEEDED at once; send CANCEL(id)",
            vec![
                Open,
                Callback(kind::CALL, 200, vec![]),
                Opened(kind::CALL),
                Expect(Want::Cancel),
                CallbackAnswers(Status::DEADLINE_EXCEEDED),
                Answer(vec![Ans::Response(Status::CANCELLED, vec![])]),
                Alive,
            ],
        ),
        dial(
            "7.1/7",
            "a CANCEL twice for the same call yields one RESPONSE",
            "CANCELLED(r) | CANCEL received, or deadline expires | Nothing",
            vec![
                Open,
                Send(sleep(0, 5000)),
                Send(vec![0x14, 0x01, 0x00, 0x14, 0x01, 0x00]),
                Reply(0, Status::CANCELLED),
                Absent("a second RESPONSE", Want::Response, Q),
            ],
        ),
        dial(
            "7.1/8",
            "the handler observes the CANCEL",
            "Tell the application the call was cancelled (status CANCELLED)",
            vec![
                Open,
                Send(sleep(0, 5000)),
                Pause(50),
                Send(vec![0x14, 0x01, 0x00]),
                Replied(0),
                Recorded(entry::SLEEP_CANCELLED.into()),
            ],
        ),
        dial(
            "7.1/9",
            "a CANCEL while the request is being reassembled",
            "If a CANCEL arrives while the request is still being reassembled, the responder tells the application about the cancellation right after delivering the request. It MAY instead answer RESPONSE(CANCELLED, empty)",
            vec![
                Open,
                Send(e(call_first(0, method::SLEEP, b"\x00\x00", 8))),
                Send(vec![0x14, 0x01, 0x00]),
                Send(e(cont(0, b"\x13\x88\x00\x00\x00\x00", false))),
                Reply(0, Status::CANCELLED),
            ],
        ),
        dial(
            "7.1/10",
            "the responder slot rule: a cancelled call still completes with a RESPONSE",
            "The responder MUST eventually send a RESPONSE for every call it accepted",
            vec![
                Open,
                Send(sleep(0, 5000)),
                Send(sleep(2, 5000)),
                Send(sleep(4, 5000)),
                Send(vec![0x14, 0x01, 0x00, 0x14, 0x01, 0x02, 0x14, 0x01, 0x04]),
                Replied(0),
                Replied(2),
                Replied(4),
            ],
        ),
        dial(
            "7.1/11",
            "the implementation's RESPONSE after its CANCEL frees the slot silently",
            "CANCEL_SENT | RESPONSE received (first frame) | Free the slot. The response is not delivered",
            vec![
                Open,
                Callback(kind::CALL, 150, vec![]),
                Opened(kind::CALL),
                Expect(Want::AnyCancel),
                CallbackAnswered,
                Answer(vec![Ans::Chunked(OK, b"ab".into(), b"cd".into())]),
                Alive,
            ],
        ),
        // §7.2 Reliable notification
        dial(
            "7.2/1",
            "NOTIFY to an unknown method is answered UNKNOWN_METHOD with an empty payload",
            "The status tells the notifier the outcome of delivery ... (UNKNOWN_MODULE, UNKNOWN_METHOD",
            vec![Open, Send(notify(0, 99, b"")), ReplyWith(0, Status::UNKNOWN_METHOD, vec![])],
        ),
        dial(
            "7.2/2",
            "the implementation sends NOTIFY and accepts ACCEPTED",
            "OK (delivered and accepted by the application), ACCEPTED (accepted for later processing)",
            vec![
                Open,
                Callback(kind::NOTIFY, 2000, b"n".into()),
                Opened(kind::NOTIFY),
                Answer(vec![Ans::Response(Status::ACCEPTED, vec![])]),
                CallbackAnswers(Status::ACCEPTED),
            ],
        ),
        dial(
            "7.2/3",
            "a RESPONSE with a payload to the implementation's NOTIFY",
            "a RESPONSE to a NOTIFY with a non-empty payload, or with MORE set, is a PROTOCOL_ERROR at the notifier",
            vec![
                Open,
                Callback(kind::NOTIFY, 2000, b"n".into()),
                Opened(kind::NOTIFY),
                Answer(vec![Ans::Response(OK, b"x".into())]),
                Close(PE),
            ],
        ),
        dial(
            "7.2/4",
            "a NOTIFY with a deadline that passes is answered DEADLINE_EXCEEDED",
            "It follows the state machines of §7.1 exactly (… deadlines …)",
            vec![
                Open,
                Send(e(Frame::Call(Request { budget_us: 100_000, ..req(0, method::SLEEP, &[0, 0, 0x13, 0x88]) }))),
                Reply(0, Status::DEADLINE_EXCEEDED),
            ],
        ),
        // §7.3 Unreliable notification (SIGNAL)
        ignored(
            "7.3/1",
            "SIGNAL to an unknown module is dropped silently",
            "Dropping is not an error and is never reported to the sender",
            e(Frame::Signal { module: 99, method: 1, payload: b"x" }),
        ),
        dial(
            "7.3/2",
            "the implementation sends a SIGNAL",
            "A peer MAY send SIGNAL at any time after it is connected",
            vec![Open, Callback(kind::SIGNAL, 0, b"sig".into()), Expect(Want::Signal(7, 1, b"sig")), CallbackAnswered],
        ),
        dial(
            "7.3/3",
            "SIGNAL after GOAWAY is still delivered",
            "including after GOAWAY was sent or received",
            vec![
                Open,
                Send(e(Frame::GoAway { bound: 1, status: OK, message: b"" })),
                Send(e(Frame::Signal { module: MODULE, method: method::RECORD, payload: b"after-goaway" })),
                Recorded(b"after-goaway".into()),
            ],
        ),
        dial_code(
            "7.3/4",
            "a SIGNAL payload above max_message_size",
            "A receiver that gets a SIGNAL payload larger than its `max_message_size` closes the connection with LIMIT_EXCEEDED",
            signal_above_max_message_size,
        ),
    ]
}

/// 7.1/5: a 9000-byte RESPONSE to the implementation's call, fragmented by hand to fit its
/// max_frame_size: the first frame, then CONTINUATIONs of 3000 bytes.
fn fragmented_response(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.callback(kind::CALL, RUNNER_METHOD, 3000, b"")?;
    let (cid, ..) = expect_call(c)?;
    let big = bigbuf(9000);
    let first = 3000.min(c.peer_frame() - 16);
    c.send(&[Frame::Response {
        flags: MORE,
        id: cid,
        status: OK,
        total_len: Some(9000),
        payload: &big[..first],
    }])?;
    let mut at = first;
    while at < 9000 {
        let end = (at + 3000).min(9000);
        c.send(&[cont(cid, &big[at..end], end < 9000)])?;
        at = end;
    }
    let (s, p) = c.callback_result(id)?;
    status_is("inner status", s, OK)?;
    bigbuf_eq("the 9000 bytes", &p, &big)
}

/// 7.3/4: a SIGNAL one byte above max_message_size, in one frame (needs max_frame_size above it).
fn signal_above_max_message_size(c: &mut Ctx) -> R {
    c.open()?;
    let (mf, mm) = (c.p(1) as usize, c.p(2) as usize);
    if mm + 16 > mf {
        return skip(format!("needs max_frame_size > max_message_size (announced {mf} and {mm})"));
    }
    let big = bigbuf(mm + 1);
    c.send(&[Frame::Signal { module: MODULE, method: method::RECORD, payload: &big }])?;
    c.expect_close(LIM)
}
