//! §6 Exchange identifiers: id spaces and parity, allocation, opening frames, frames that refer
//! to an existing id, exhaustion.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, fatal, listen, never, Ans, End, Items, Want};

const PARITY: &str = "The id has the peer parity (the sender's own parity). Otherwise: PROTOCOL_ERROR";
const NEVER_OPENED: &str = "X is not opened (\"never opened\") | PROTOCOL_ERROR";

pub(super) fn cases() -> Vec<Case> {
    vec![
        // §6.1 Id spaces and parity
        listen(
            "6.1/1",
            "the acceptor (runner) calls the dialer with odd ids",
            "the **acceptor** uses **odd** ids: 1, 3, 5, …",
            vec![Open, Echo(b"from the acceptor".into())],
        ),
        listen(
            "6.1/2",
            "a CALL with the dialer's parity from the acceptor",
            PARITY,
            vec![Open, Send(call(0, method::ECHO, b"")), Close(PE)],
        ),
        fatal("6.1/3", "a CALL with the acceptor's parity from the dialer", PARITY, call(1, method::ECHO, b""), PE),
        fatal(
            "6.1/4",
            "a STREAM_OPEN with the acceptor's parity from the dialer",
            PARITY,
            stream(3, method::BIDI, b"", false),
            PE,
        ),
        dial_code(
            "6.1/5",
            "the acceptor uses odd ids, starting at 1",
            "the **acceptor** uses **odd** ids: 1, 3, 5, …",
            acceptor_ids_are_odd,
        ),
        // §6.2 Allocation
        dial_code(
            "6.2/1",
            "the implementation's ids increase across CALL, NOTIFY and STREAM_OPEN",
            "A peer's opening ids MUST be strictly increasing in the order its opening frames are sent",
            ids_increase_across_kinds,
        ),
        dial(
            "6.2/2",
            "gaps in the dialer's ids are allowed",
            "Gaps are permitted",
            vec![Open, Send(call(0, method::ECHO, b"")), Replied(0), Send(call(10, method::ECHO, b"")), Replied(10)],
        ),
        // §6.3 Receiving an opening frame
        dial(
            "6.3/1",
            "a CALL reusing the id of a finished call",
            "(\"id reuse\", including an id equal to a previous one ...): PROTOCOL_ERROR",
            vec![Open, Send(call(0, method::ECHO, b"")), Replied(0), Send(call(0, method::ECHO, b"")), Close(PE)],
        ),
        dial(
            "6.3/2",
            "an id that goes backwards",
            "an id that goes backwards: PROTOCOL_ERROR",
            vec![Open, Send(call(4, method::ECHO, b"")), Replied(4), Send(call(2, method::ECHO, b"")), Close(PE)],
        ),
        dial(
            "6.3/3",
            "a STREAM_OPEN reusing a CALL's id (one id space)",
            "Each peer has one id space shared by its CALL, NOTIFY and STREAM_OPEN frames",
            vec![
                Open,
                Send(call(0, method::ECHO, b"")),
                Replied(0),
                Send(stream(0, method::BIDI, b"", false)),
                Close(PE),
            ],
        ),
        dial(
            "6.3/4",
            "a NOTIFY reusing the id of an open call",
            "The id is greater than every id previously received in an opening frame",
            vec![Open, Send(sleep(0, 1000)), Send(notify(0, method::RECORD, b"")), Close(PE)],
        ),
        dial(
            "6.3/5",
            "a skipped id is closed: CANCEL for it is ignored",
            "Ids skipped by the sender (gaps) and ids of refused exchanges are *closed*",
            vec![Open, Send(call(4, method::ECHO, b"")), Replied(4), Send(vec![0x14, 0x01, 0x02]), Alive],
        ),
        // §6.4 Frames that refer to an existing id
        listen(
            "6.4/1",
            "a RESPONSE for an id the dialer never opened",
            NEVER_OPENED,
            vec![Open, Send(vec![0x13, 0x03, 0x00, 0x08, 0x00]), Close(PE)],
        ),
        fatal(
            "6.4/2",
            "RESPONSE for an id the implementation never opened",
            NEVER_OPENED,
            vec![0x13, 0x03, 0x00, 0x01, 0x00],
            PE,
        ),
        fatal(
            "6.4/3",
            "RESPONSE with the dialer's own parity",
            "RESPONSE | own parity ... A violation is a PROTOCOL_ERROR",
            vec![0x13, 0x03, 0x00, 0x00, 0x00],
            PE,
        ),
        fatal(
            "6.4/4",
            "CANCEL with the acceptor's parity",
            "CANCEL | peer parity ... A violation is a PROTOCOL_ERROR",
            vec![0x14, 0x01, 0x01],
            PE,
        ),
        fatal(
            "6.4/5",
            "CANCEL for a call never opened",
            "A peer cannot answer, cancel or send data on an exchange that has not been opened",
            vec![0x14, 0x01, 0x08],
            PE,
        ),
        fatal("6.4/6", "STREAM_DATA for a stream never opened", NEVER_OPENED, vec![0x19, 0x03, 0x00, 0x06, 0x61], PE),
        fatal("6.4/7", "STREAM_FIN for a stream never opened", NEVER_OPENED, vec![0x1a, 0x02, 0x06, 0x00], PE),
        fatal("6.4/8", "STREAM_RESET for a stream never opened", NEVER_OPENED, vec![0x1b, 0x02, 0x06, 0x08], PE),
        fatal(
            "6.4/9",
            "STREAM_CREDIT for a stream never opened (acceptor parity)",
            NEVER_OPENED,
            vec![0x1c, 0x03, 0x05, 0x01, 0x01],
            PE,
        ),
        dial(
            "6.4/10",
            "STREAM_DATA for an open call",
            "a stream frame for a call or notification ... PROTOCOL_ERROR",
            vec![Open, Send(sleep(0, 1000)), Send(vec![0x19, 0x03, 0x00, 0x00, 0x61]), Close(PE)],
        ),
        dial(
            "6.4/11",
            "CANCEL for an open stream",
            "RESPONSE or CANCEL for a stream ... PROTOCOL_ERROR",
            vec![Open, Send(stream(0, method::HOLD_STREAM, b"", false)), Send(vec![0x14, 0x01, 0x00]), Close(PE)],
        ),
        dial(
            "6.4/12",
            "CANCEL for a finished call is ignored",
            "X is opened but closed at the receiver ... ignore the frame silently",
            vec![Open, CallOk(method::ECHO, vec![]), Send(vec![0x14, 0x01, 0x00]), Alive],
        ),
        dial(
            "6.4/13",
            "STREAM_CREDIT and STREAM_RESET for a finished stream are ignored",
            "a STREAM_CREDIT can cross the sender's STREAM_FIN",
            vec![
                Open,
                Send(stream(0, method::COUNT, &count_init(1, None), true)),
                Stream(0, Items::Any, End::FinOk),
                Send(enc(&[
                    Frame::StreamCredit { id: 0, msgs: 1, bytes: 4 },
                    Frame::StreamReset { id: 0, status: Status::CANCELLED },
                ])),
                Alive,
            ],
        ),
        dial(
            "6.4/14",
            "a RESPONSE for the implementation's cancelled call is ignored",
            "a CANCEL can cross the RESPONSE it was meant to prevent",
            vec![
                Open,
                Callback(kind::CALL, 200, vec![]),
                Opened(kind::CALL),
                Expect(Want::AnyCancel),
                CallbackAnswered,
                Answer(vec![Ans::Response(OK, b"late".into())]),
                Alive,
            ],
        ),
        // §6.5 Exhaustion
        never(
            "6.5/1",
            "the dialer's last id 2^62-2 may be used once",
            "The dialer's last id is 2^62-2, the acceptor's is 2^62-1",
            "not observable from the wire within a test's time: exhausting an id space is local behaviour (§6.5)",
        ),
        dial(
            "6.5/2",
            "a CALL with the dialer's last id 2^62-2 is answered",
            "The largest id is 2^62-1. The dialer's last id is 2^62-2",
            vec![Open, Send(call((1 << 62) - 2, method::ECHO, b"last")), Reply((1 << 62) - 2, OK)],
        ),
    ]
}

/// 6.1/5: two calls back from the implementation (the acceptor) have odd, increasing ids.
fn acceptor_ids_are_odd(c: &mut Ctx) -> R {
    c.open()?;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = c.callback(kind::CALL, RUNNER_METHOD, 2000, b"")?;
        let (cid, ..) = expect_call(c)?;
        ids.push(cid);
        answer_ok(c, cid)?;
        c.callback_result(id)?;
    }
    if ids[0] % 2 == 1 && ids[1] % 2 == 1 && ids[1] > ids[0] {
        Ok(())
    } else {
        fail("odd, increasing ids", format!("{ids:?}"))
    }
}

/// 6.2/1: a CALL, a NOTIFY and a STREAM_OPEN from the implementation, in that order, have
/// increasing ids.
fn ids_increase_across_kinds(c: &mut Ctx) -> R {
    c.open()?;
    let a = c.callback(kind::CALL, RUNNER_METHOD, 2000, b"")?;
    let (i1, ..) = expect_call(c)?;
    answer_ok(c, i1)?;
    c.callback_result(a)?;
    let n = c.callback(kind::NOTIFY, RUNNER_METHOD, 2000, b"")?;
    let (i2, _) = expect_open(c, "NOTIFY", |f| matches!(f, Frame::Notify(_)))?;
    answer_ok(c, i2)?;
    c.callback_result(n)?;
    let s = c.callback(kind::STREAM, RUNNER_METHOD, 2000, b"")?;
    let (i3, _) = expect_open(c, "STREAM_OPEN", |f| matches!(f, Frame::StreamOpen(_)))?;
    c.send(&[Frame::StreamFin { id: i3, status: OK }])?;
    c.callback_result(s)?;
    if i1 < i2 && i2 < i3 {
        Ok(())
    } else {
        fail("increasing ids", format!("{i1}, {i2}, {i3}"))
    }
}
