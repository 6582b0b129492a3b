//! §4 Frame catalogue: every frame type, sent as the specification's examples show it.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, fatal, ignored, End, Items, Want};

pub(super) fn cases() -> Vec<Case> {
    vec![
        dial(
            "4.1/1",
            "the HELLO example of the specification (no parameters) is accepted",
            "A dialer offering version 1 only, no name, no auth, new session, all parameters at their defaults",
            vec![Connect, Send(vec![0x01, 0x0b, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00]), PeerHello],
        ),
        dial(
            "4.1/2",
            "the HELLO example named \"cli\" with two parameters is accepted",
            "A dialer named \"cli\" announcing `max_frame_size` = 65536 and `keepalive_interval_ms` = 5000",
            vec![
                Connect,
                Send(vec![
                    0x01, 0x16, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x00, 0x03, 0x63, 0x6c, 0x69, 0x00, 0x00,
                    0x02, 0x01, 0x80, 0x01, 0x00, 0x00, 0x08, 0x53, 0x88,
                ]),
                PeerHello,
            ],
        ),
        dial(
            "4.1/3",
            "a HELLO with a 255-byte name and a 1024-byte auth is accepted",
            "name `bytes(≤255)` ... auth `bytes(≤1024)`",
            vec![
                Connect,
                Send(e(Frame::Hello(tandem_core::frame::Hello {
                    min_version: 1,
                    max_version: 1,
                    flags: 0,
                    name: &[b'n'; 255],
                    auth: &[0xa5; 1024],
                    session: b"",
                    params: tandem_core::frame::Params::EMPTY,
                }))),
                PeerHello,
            ],
        ),
        dial(
            "4.2/1",
            "CLOSE(OK) from the runner ends the connection without a CLOSE in answer",
            "A peer that receives CLOSE ... does not answer with a CLOSE of its own",
            vec![Open, Send(e(Frame::Close { status: OK, message: b"" })), Eof],
        ),
        dial(
            "4.3/1",
            "GOAWAY from the runner is accepted; calls still work below the bound",
            "Every exchange the receiver opened with id **< bound** reached the sender and is processed normally",
            vec![
                Open,
                Send(sleep(0, 100)),
                Send(e(Frame::GoAway { bound: 1, status: OK, message: b"" })),
                Reply(0, OK),
            ],
        ),
        dial(
            "4.4/1",
            "PING is answered with PONG carrying the same 8 bytes",
            "A peer that receives PING(data) MUST answer with PONG(data), with the same 8 bytes",
            vec![Open, Send(vec![0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]), Expect(Want::Pong([1, 2, 3, 4, 5, 6, 7, 8]))],
        ),
        ignored(
            "4.5/1",
            "an unsolicited PONG is ignored",
            "any other PONG is ignored",
            vec![0x05, 0x08, 9, 9, 9, 9, 9, 9, 9, 9],
        ),
        dial(
            "4.6/1",
            "a well-formed ACK is accepted and ignored",
            "A receiver that keeps no reply cache ... MUST accept and ignore a well-formed ACK",
            vec![Open, CallOk(method::ECHO, b"x".into()), Send(vec![0x06, 0x03, 0x01, 0x00, 0x01]), Alive],
        ),
        dial(
            "4.7/1",
            "the CALL example: payload \"hi\" echoed",
            "id 4, module 1, method 2, no deadline, payload \"hi\": `10 07 00 04 01 02 00 68 69`",
            vec![Open, Echo(b"hi".into())],
        ),
        dial(
            "4.7/2",
            "a CALL with a 5 s budget is answered",
            "budget 5 s (5000000 µs)",
            vec![
                Open,
                Send(e(Frame::Call(Request { budget_us: 5_000_000, ..req(0, method::ECHO, b"hi") }))),
                Reply(0, OK),
            ],
        ),
        dial(
            "4.8/1",
            "NOTIFY is answered by a RESPONSE with an empty payload",
            "A reliable notification is a NOTIFY answered by a RESPONSE whose payload is empty",
            vec![Open, Send(notify(0, method::RECORD, b"n1")), ReplyWith(0, OK, vec![]), Recorded(b"n1".into())],
        ),
        dial(
            "4.9/1",
            "SIGNAL is delivered and never answered",
            "A SIGNAL has no id and no state. It is never answered",
            vec![
                Open,
                Send(e(Frame::Signal { module: MODULE, method: method::RECORD, payload: b"s1" })),
                Absent("frame answering the SIGNAL", Want::Response, Q),
                Recorded(b"s1".into()),
            ],
        ),
        dial(
            "4.10/1",
            "RESPONSE to a CALL carries the call's id",
            "the id of the call or notification",
            vec![Open, Send(call(6, method::ECHO, b"z")), Replied(6)],
        ),
        dial(
            "4.11/1",
            "CANCEL of a running call yields RESPONSE(CANCELLED)",
            "cancel call 4: `14 01 04`",
            vec![
                Open,
                Send(sleep(4, 5000)),
                Pause(50),
                Send(vec![0x14, 0x01, 0x04]),
                ReplyWith(4, Status::CANCELLED, vec![]),
            ],
        ),
        dial(
            "4.12/1",
            "STREAM_OPEN with FIN to COUNT: 3 items then STREAM_FIN OK",
            "server-streaming is an opener that sets FIN on STREAM_OPEN",
            vec![
                Open,
                Send(stream(0, method::COUNT, &count_init(3, None), true)),
                Stream(0, Items::Exactly(vec![be(0), be(1), be(2)]), End::FinOk),
            ],
        ),
        dial(
            "4.13/1",
            "STREAM_DATA items are echoed in order by BIDI",
            "Items are delivered in the order sent",
            vec![
                Open,
                Send(stream(0, method::BIDI, b"", false)),
                Send(e(item(0, b"a"))),
                Send(e(item(0, b"bc"))),
                Send(e(item(0, b"def"))),
                Send(e(Frame::StreamFin { id: 0, status: OK })),
                Stream(0, Items::Exactly(vec![b"a".into(), b"bc".into(), b"def".into()]), End::FinOk),
            ],
        ),
        dial(
            "4.14/1",
            "STREAM_FIN from the opener ends its direction; the responder finishes",
            "STREAM_FIN(status) ends the sender's direction after all items sent before it",
            vec![
                Open,
                Send(stream(0, method::BIDI, b"", false)),
                Send(e(Frame::StreamFin { id: 0, status: OK })),
                Stream(0, Items::Exactly(vec![]), End::FinOk),
            ],
        ),
        dial(
            "4.15/1",
            "STREAM_RESET from the opener: the responder sees it and sends its terminal",
            "STREAM_RESET(status) ends the sender's direction ... and asks the receiver to stop sending",
            vec![
                Open,
                Send(stream(0, method::HOLD_STREAM, b"", false)),
                Pause(50),
                Send(e(Frame::StreamReset { id: 0, status: Status::CANCELLED })),
                Stream(0, Items::Any, End::Any),
                Recorded(entry::HOLD_CANCELLED.into()),
            ],
        ),
        dial(
            "4.16/1",
            "STREAM_CREDIT releases items held back by the item window",
            "STREAM_CREDIT(id, msgs, bytes) ... adds `msgs` to the sender's item window",
            vec![
                OpenWith(&[(5, 2)]),
                Send(stream(0, method::COUNT, &count_init(4, None), true)),
                Expect(Want::StreamData),
                Expect(Want::StreamData),
                Absent("STREAM_DATA beyond the item window of 2", Want::StreamData, Q),
                Send(e(Frame::StreamCredit { id: 0, msgs: 2, bytes: 8 })),
                Stream(0, Items::Count(2), End::FinOk),
            ],
        ),
        dial(
            "4.17/1",
            "CONN_CREDIT releases items held back by the connection window",
            "CONN_CREDIT(bytes) from the other peer adds to it",
            vec![
                OpenWith(&[(6, 8), (7, 8)]),
                Send(stream(0, method::COUNT, &count_init(4, None), true)),
                Expect(Want::StreamData),
                Expect(Want::StreamData),
                Send(e(Frame::StreamCredit { id: 0, msgs: 10, bytes: 1000 })),
                Absent("STREAM_DATA beyond the connection window of 8 bytes", Want::StreamData, Q),
                Send(e(Frame::ConnCredit { bytes: 1000 })),
                Stream(0, Items::Count(2), End::FinOk),
            ],
        ),
        fatal(
            "4.18/1",
            "STREAM_RESUME outside a resumed connection",
            "received outside a connection that resumed a session ... PROTOCOL_ERROR",
            vec![0x1e, 0x02, 0x01, 0x03],
            PE,
        ),
        dial(
            "4.19/1",
            "the fragmented CALL example (\"abc\" + \"def\") is reassembled",
            "`10 09 01 00 01 01 00 06 61 62 63` followed by `20 05 00 00 64 65 66`",
            vec![
                Open,
                Send(e(call_first(0, method::ECHO, b"abc", 6))),
                Send(e(cont(0, b"def", false))),
                ReplyWith(0, OK, b"abcdef".into()),
            ],
        ),
        ignored(
            "4.20/1",
            "the extension frame example `80 02 01 02` is skipped",
            "Example of a frame that every v1 receiver skips: `80 02 01 02`",
            vec![0x80, 0x02, 0x01, 0x02],
        ),
    ]
}
