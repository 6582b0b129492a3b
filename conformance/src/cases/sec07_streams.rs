//! §7.4–§7.5 Exchanges: streams, deadlines.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, listen, Ans, End, Items};

const NOT_OPEN: &str = "R ≠ OPEN | STREAM_DATA received | Close the connection with PROTOCOL_ERROR";
const DURING_ITEM: &str = "the sender of that message MUST NOT send STREAM_DATA or STREAM_FIN for the same stream; receiving either is a PROTOCOL_ERROR";

fn hold(fin: bool) -> Vec<u8> {
    stream(0, method::HOLD_STREAM, b"", fin)
}

/// The first frame of a fragmented item on stream 0: MORE, `total` bytes in all, `chunk` first.
fn item_first(chunk: &[u8], total: u64) -> Frame<'_> {
    Frame::StreamData { flags: MORE, id: 0, total_len: Some(total), payload: chunk }
}

fn sleep_with_budget(p: &[u8], budget_us: u64) -> Vec<u8> {
    e(Frame::Call(Request { budget_us, ..req(0, method::SLEEP, p) }))
}

pub(super) fn cases() -> Vec<Case> {
    vec![
        // §7.4 Streams
        listen(
            "7.4/1",
            "the acceptor opens a server-streaming COUNT on the dialer",
            "Once connected the peers are equal: either may open exchanges of every kind",
            vec![Open, Send(stream(1, method::COUNT, &count_init(5, None), true)), Stream(1, Items::Count(5), End::FinOk)],
        ),
        dial(
            "7.4/2",
            "COUNT with n = 0: STREAM_FIN OK at once",
            "client-streaming is a responder that sends no items and ends with STREAM_FIN(result)",
            vec![
                Open,
                Send(stream(0, method::COUNT, &count_init(0, None), true)),
                Stream(0, Items::Exactly(vec![]), End::FinOk),
            ],
        ),
        dial(
            "7.4/3",
            "a stream to an unknown method is reset with UNKNOWN_METHOD",
            "An application that does not handle the method ends the stream at once with STREAM_RESET(UNKNOWN_MODULE) or STREAM_RESET(UNKNOWN_METHOD)",
            vec![Open, Send(stream(0, 99, b"", true)), Stream(0, Items::Any, End::Status(Status::UNKNOWN_METHOD))],
        ),
        dial(
            "7.4/4",
            "a stream to an unknown module is reset with UNKNOWN_MODULE",
            "ends the stream at once with STREAM_RESET(UNKNOWN_MODULE)",
            vec![
                Open,
                Send(e(Frame::StreamOpen(Request { flags: FIN, module: 99, ..req(0, 1, b"") }))),
                Stream(0, Items::Any, End::Status(Status::UNKNOWN_MODULE)),
            ],
        ),
        dial(
            "7.4/5",
            "STREAM_DATA after the opener's STREAM_FIN",
            NOT_OPEN,
            vec![Open, Send(hold(false)), Send(enc(&[Frame::StreamFin { id: 0, status: OK }, item(0, b"x")])), Close(PE)],
        ),
        dial(
            "7.4/6",
            "STREAM_DATA after STREAM_OPEN with FIN",
            "The FIN flag means the opener will send no items: its direction is ended from the start",
            vec![Open, Send(hold(true)), Send(e(item(0, b"x"))), Close(PE)],
        ),
        dial(
            "7.4/7",
            "a second STREAM_FIN",
            "R ≠ OPEN | STREAM_FIN received | Close the connection with PROTOCOL_ERROR",
            vec![
                Open,
                Send(hold(false)),
                Send(enc(&[Frame::StreamFin { id: 0, status: OK }, Frame::StreamFin { id: 0, status: OK }])),
                Close(PE),
            ],
        ),
        dial(
            "7.4/8",
            "a second STREAM_RESET is ignored",
            "R = RESET_RECEIVED | STREAM_RESET received | Ignore",
            vec![
                Open,
                Send(hold(false)),
                Send(enc(&[
                    Frame::StreamReset { id: 0, status: Status::CANCELLED },
                    Frame::StreamReset { id: 0, status: Status::CANCELLED },
                ])),
                Alive,
            ],
        ),
        dial(
            "7.4/9",
            "an opener STREAM_FIN with a non-OK status is not an error",
            "a receiver MUST NOT treat another value as an error and delivers it unchanged",
            vec![
                Open,
                Send(stream(0, method::BIDI, b"", false)),
                Send(e(Frame::StreamFin { id: 0, status: Status::ABORTED })),
                Stream(0, Items::Any, End::Any),
                Alive,
            ],
        ),
        dial(
            "7.4/10",
            "STREAM_DATA while an item of the same stream is being reassembled",
            DURING_ITEM,
            vec![Open, Send(hold(false)), Send(enc(&[item_first(b"abc", 10), item(0, b"x")])), Close(PE)],
        ),
        dial(
            "7.4/11",
            "STREAM_FIN while an item of the same stream is being reassembled",
            "receiving either is a PROTOCOL_ERROR",
            vec![
                Open,
                Send(hold(false)),
                Send(enc(&[item_first(b"abc", 10), Frame::StreamFin { id: 0, status: OK }])),
                Close(PE),
            ],
        ),
        dial(
            "7.4/12",
            "STREAM_RESET while an item is being reassembled, then the item completes",
            "STREAM_RESET may be sent meanwhile; the fragmented message is still completed (§9.3) and then discarded",
            vec![
                Open,
                Send(hold(false)),
                Send(enc(&[
                    item_first(b"abc", 6),
                    Frame::StreamReset { id: 0, status: Status::CANCELLED },
                    cont(0, b"def", false),
                ])),
                Alive,
            ],
        ),
        dial(
            "7.4/13",
            "the implementation opens a stream; the runner answers items and STREAM_FIN",
            "Both directions are flow-controlled (§10)",
            vec![
                Open,
                Callback(kind::STREAM, 2000, b"init".into()),
                Opened(kind::STREAM),
                Answer(vec![Ans::Data(b"i1".into()), Ans::Data(b"i2".into()), Ans::Fin(OK)]),
                // CALLBACK reports the items the runner sent, as RECORDED lists entries.
                CallbackAnswersWith(OK, records(&[b"i1", b"i2"])),
            ],
        ),
        dial_code(
            "7.4/14",
            "the opener's direction of the implementation's stream ends (FIN flag or STREAM_FIN OK)",
            "The opener's STREAM_FIN status MUST be OK",
            opener_direction_ends,
        ),
        dial(
            "7.4/15",
            "a responder STREAM_RESET reaches the implementation's application",
            "deliver \"reset\" with st",
            vec![
                Open,
                Callback(kind::STREAM, 2000, vec![]),
                Opened(kind::STREAM),
                Answer(vec![Ans::Reset(Status::ABORTED)]),
                CallbackAnswers(Status::ABORTED),
            ],
        ),
        dial(
            "7.4/16",
            "a responder STREAM_FIN with an error status reaches the application",
            "The responder's status is the stream's result (OK, or an error such as FAILED or INVALID_ARGUMENT)",
            vec![
                Open,
                Callback(kind::STREAM, 2000, vec![]),
                Opened(kind::STREAM),
                Answer(vec![Ans::Fin(Status::INVALID_ARGUMENT)]),
                CallbackAnswers(Status::INVALID_ARGUMENT),
            ],
        ),
        dial_code("7.4/17", "STREAM_DATA from the responder after its STREAM_FIN", NOT_OPEN, data_after_responder_fin),
        dial_code(
            "7.4/18",
            "the implementation's stream deadline resets the stream",
            "opener, any | local deadline expires | ... send STREAM_RESET(DEADLINE_EXCEEDED)",
            stream_deadline,
        ),
        dial(
            "7.4/19",
            "the responder's deadline ends HOLD_STREAM",
            "responder, any | responder deadline expires | Tell the application \"reset, DEADLINE_EXCEEDED\"",
            vec![
                Open,
                Send(e(Frame::StreamOpen(Request { budget_us: 100_000, ..req(0, method::HOLD_STREAM, b"") }))),
                Stream(0, Items::Any, End::Any),
                Recorded(entry::HOLD_CANCELLED.into()),
            ],
        ),
        dial(
            "7.4/20",
            "the runner's STREAM_RESET of a stream it opened is answered with the responder's terminal",
            "a responder when its application releases the stream",
            vec![
                Open,
                Send(stream(0, method::BIDI, b"", false)),
                Send(e(Frame::StreamReset { id: 0, status: Status::CANCELLED })),
                Stream(0, Items::Any, End::Any),
            ],
        ),
        // HOLD_STREAM as responder for a stream the implementation opens is not available: the
        // implementation's CALLBACK stream finishes its direction at once, so S ≠ OPEN.
        dial(
            "7.4/21",
            "an opener receiving STREAM_RESET while its direction is open answers STREAM_RESET(CANCELLED)",
            "If S = OPEN: an **opener** sends STREAM_RESET(CANCELLED) at once",
            vec![Open, Skip("the test service's streams toward the runner end their direction at once; no stream with S = OPEN at the implementation can be created")],
        ),
        // §7.5 Deadlines
        dial_code(
            "7.5/1",
            "the implementation's CALL carries budget_us within its timeout",
            "A caller with an absolute local deadline D sends `budget_us` = D − (time of sending) ... at least 1",
            budget_within_timeout,
        ),
        dial_code("7.5/2", "a call without a timeout carries budget_us 0", "0 means \"no deadline\"", no_timeout_no_budget),
        dial(
            "7.5/3",
            "the responder deadline replaces the response with DEADLINE_EXCEEDED",
            "A call's or notification's later response is replaced by RESPONSE(DEADLINE_EXCEEDED, empty)",
            vec![
                Open,
                Send(sleep_with_budget(&[0, 0, 0x13, 0x88], 100_000)),
                ReplyWith(0, Status::DEADLINE_EXCEEDED, vec![]),
            ],
        ),
        dial(
            "7.5/4",
            "the handler observes the responder deadline",
            "On expiry at the responder: the application is told (status DEADLINE_EXCEEDED) so that it stops working",
            vec![
                Open,
                Send(sleep_with_budget(&[0, 0, 0x13, 0x88], 100_000)),
                Replied(0),
                Recorded(entry::SLEEP_CANCELLED.into()),
            ],
        ),
        // The payload 00 says that SLEEP was not cancelled.
        dial(
            "7.5/5",
            "a call that finishes within its budget is answered normally",
            "0 = no deadline (§7.5)",
            vec![Open, Send(sleep_with_budget(&be(20), 2_000_000)), ReplyWith(0, OK, vec![0])],
        ),
        dial(
            "7.5/6",
            "budget_us 1 (a deadline already passed) is answered DEADLINE_EXCEEDED",
            "a deadline that has already passed is sent as 1",
            vec![Open, Send(sleep_with_budget(&be(2000), 1)), Reply(0, Status::DEADLINE_EXCEEDED)],
        ),
    ]
}

/// 7.4/14: the implementation's stream toward the runner either carries FIN on STREAM_OPEN or
/// is followed by STREAM_FIN(OK).
fn opener_direction_ends(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.callback(kind::STREAM, RUNNER_METHOD, 2000, b"")?;
    let o = c.expect("STREAM_OPEN", T, |f| matches!(f, Frame::StreamOpen(_)))?;
    let (sid, fin) = match o.frame() {
        Frame::StreamOpen(r) => (r.id, r.flags & FIN != 0),
        _ => unreachable!(),
    };
    if !fin {
        let o = c.expect(
            "STREAM_FIN from the opener",
            T,
            |f| matches!(f, Frame::StreamFin { id, .. } if *id == sid),
        )?;
        if !matches!(o.frame(), Frame::StreamFin { status: Status::OK, .. }) {
            return fail("STREAM_FIN OK", describe(&o.frame()));
        }
    }
    c.send(&[Frame::StreamFin { id: sid, status: OK }])?;
    c.callback_result(id)?;
    Ok(())
}

/// 7.4/17: STREAM_FIN then STREAM_DATA on the implementation's stream. The stream may already be
/// freed at the implementation (both terminals exchanged): then the frame is for a closed id and
/// ignored (§6.4); otherwise PROTOCOL_ERROR.
fn data_after_responder_fin(c: &mut Ctx) -> R {
    c.open()?;
    c.callback(kind::STREAM, RUNNER_METHOD, 2000, b"")?;
    let (sid, _) = expect_open(c, "STREAM_OPEN", |f| matches!(f, Frame::StreamOpen(_)))?;
    c.send(&[Frame::StreamFin { id: sid, status: OK }, item(sid, b"x")])?;
    match c.quiet(QUIET) {
        Ok(()) => c.alive(),
        Err(_) => Ok(()),
    }
}

/// 7.4/18: a stream the implementation opens with a 200 ms timeout is reset with
/// DEADLINE_EXCEEDED (skipped when it carries no deadline).
fn stream_deadline(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.callback(kind::STREAM, RUNNER_METHOD, 200, b"")?;
    let o = c.expect("STREAM_OPEN", T, |f| matches!(f, Frame::StreamOpen(_)))?;
    let (sid, budget) = match o.frame() {
        Frame::StreamOpen(r) => (r.id, r.budget_us),
        _ => unreachable!(),
    };
    if budget == 0 {
        c.send(&[Frame::StreamFin { id: sid, status: OK }])?;
        let _ = c.callback_result(id);
        return skip("the implementation opened the stream without a deadline (budget_us 0): its API gives streams no deadline");
    }
    let o = c.expect(
        "STREAM_RESET DEADLINE_EXCEEDED",
        T,
        |f| matches!(f, Frame::StreamReset { id, .. } if *id == sid),
    )?;
    match o.frame() {
        Frame::StreamReset { status: Status::DEADLINE_EXCEEDED, .. } => {}
        f => return fail("STREAM_RESET DEADLINE_EXCEEDED", describe(&f)),
    }
    c.callback_result(id)?;
    Ok(())
}

/// 7.5/1: a call the implementation makes with a 2 s timeout carries 1 ≤ budget_us ≤ 2000000.
fn budget_within_timeout(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.callback(kind::CALL, RUNNER_METHOD, 2000, b"")?;
    let (cid, _, _, budget, _) = expect_call(c)?;
    answer_ok(c, cid)?;
    c.callback_result(id)?;
    if (1..=2_000_000).contains(&budget) {
        Ok(())
    } else {
        fail("1 ≤ budget_us ≤ 2000000", budget.to_string())
    }
}

/// 7.5/2: a call the implementation makes without a timeout carries budget_us 0 (skipped when
/// it applies a default deadline).
fn no_timeout_no_budget(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.callback(kind::CALL, RUNNER_METHOD, 0, b"")?;
    let (cid, _, _, budget, _) = expect_call(c)?;
    answer_ok(c, cid)?;
    c.callback_result(id)?;
    if budget == 0 {
        Ok(())
    } else {
        skip(format!("the implementation applies a default deadline (budget_us {budget})"))
    }
}
