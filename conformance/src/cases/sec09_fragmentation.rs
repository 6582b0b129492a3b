//! §9 Messages larger than a frame: fragmentation, the first frame, CONTINUATION and the
//! one-message rule; §9.6, no fragmentation in datagram mode (those two cases run over `udp://`
//! only).

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, fatal, End, Items};

const UDP: &str = "A receiver that gets a frame with the MORE flag set, or a CONTINUATION, over UDP closes the connection with PROTOCOL_ERROR";

/// The first frame of "abc" + "def" as CALL `id` (ECHO).
fn abc(id: u64) -> Frame<'static> {
    call_first(id, method::ECHO, b"abc", 6)
}

pub(super) fn cases() -> Vec<Case> {
    vec![
        // §9.1 When and what
        dial(
            "9.1/1",
            "the implementation fragments a response larger than the runner's max_frame_size",
            "A sender MUST fragment a message whose single frame would exceed the receiver's frame limit",
            vec![OpenWith(&[(1, 4096)]), Echo(bigbuf(10_000))],
        ),
        dial_code(
            "9.1/2",
            "a 64 KiB request in many CONTINUATIONs is reassembled",
            "every frame respects the frame limit",
            large_request,
        ),
        // §9.2 The first frame
        dial_code(
            "9.2/1",
            "a first frame whose total_len exceeds max_message_size",
            "A message larger than the receiver's `max_message_size` ... closes the connection with LIMIT_EXCEEDED, on the first frame, before buffering anything",
            total_len_above_max_message_size,
        ),
        dial(
            "9.2/2",
            "a fragmented message with an empty first chunk",
            "The first frame's payload MAY be empty",
            vec![
                Open,
                Send(enc(&[call_first(0, method::ECHO, b"", 2), cont(0, b"ok", false)])),
                RepliedWith(0, b"ok".into()),
            ],
        ),
        fatal(
            "9.2/3",
            "a first frame whose total_len does not exceed its payload",
            "It MUST be greater than the number of payload bytes in the first frame; otherwise the frame is the decode error `InvalidLength`",
            e(call_first(0, method::ECHO, b"abc", 2)),
            FEE,
        ),
        // §9.3 CONTINUATION frames and the one-message rule
        dial(
            "9.3/1",
            "a first frame with MORE while another message is in progress",
            "first frame with MORE | a message is already in progress | PROTOCOL_ERROR",
            vec![Open, Send(enc(&[abc(0), abc(2)])), Close(PE)],
        ),
        fatal(
            "9.3/2",
            "CONTINUATION without a message in progress",
            "CONTINUATION | no message in progress | PROTOCOL_ERROR",
            vec![0x20, 0x02, 0x00, 0x00],
            PE,
        ),
        dial(
            "9.3/3",
            "CONTINUATION with another id",
            "CONTINUATION | its id differs from the message in progress | PROTOCOL_ERROR",
            vec![Open, Send(enc(&[abc(0), cont(2, b"def", false)])), Close(PE)],
        ),
        dial(
            "9.3/4",
            "CONTINUATION chunks exceeding total_len",
            "bytes received so far (including this chunk) > `total_len` | PROTOCOL_ERROR",
            vec![Open, Send(enc(&[abc(0), cont(0, b"defg", true)])), Close(PE)],
        ),
        dial(
            "9.3/5",
            "a last CONTINUATION that leaves the message short",
            "CONTINUATION with MORE clear | bytes received ≠ `total_len` | PROTOCOL_ERROR",
            vec![Open, Send(enc(&[abc(0), cont(0, b"d", false)])), Close(PE)],
        ),
        dial(
            "9.3/6",
            "empty CONTINUATION chunks with MORE are accepted",
            "append; the message stays in progress (a chunk may be empty)",
            vec![
                Open,
                Send(enc(&[
                    call_first(0, method::ECHO, b"ab", 4),
                    cont(0, b"", true),
                    cont(0, b"", true),
                    cont(0, b"cd", false),
                ])),
                RepliedWith(0, b"abcd".into()),
            ],
        ),
        dial(
            "9.3/7",
            "unfragmented frames interleaved between CONTINUATIONs",
            "Other frames MAY be interleaved between the CONTINUATIONs",
            vec![
                Open,
                Send(enc(&[
                    abc(0),
                    Frame::Call(req(2, method::ECHO, b"mid")),
                    Frame::Ping(*b"interlv!"),
                    cont(0, b"def", false),
                ])),
                RepliedWith(2, b"mid".into()),
                RepliedWith(0, b"abcdef".into()),
            ],
        ),
        dial(
            "9.3/8",
            "a fragmented request of a cancelled call is still completed",
            "A fragmented message, once started, MUST be completed, even if its exchange is cancelled",
            vec![Open, Send(enc(&[abc(0), Frame::Cancel { id: 0 }, cont(0, b"def", false)])), Replied(0), Alive],
        ),
        dial(
            "9.3/9",
            "a fragmented message for a closed id is validated and discarded",
            "a message whose exchange ... was already closed when the first frame arrived (§6.4) is still in progress",
            vec![
                Open,
                Send(stream(0, method::COUNT, &count_init(0, None), true)),
                Stream(0, Items::Any, End::Any),
                Send(enc(&[
                    Frame::StreamData { flags: MORE, id: 0, total_len: Some(4), payload: b"ab" },
                    cont(0, b"cd", false),
                ])),
                Alive,
            ],
        ),
        dial(
            "9.3/10",
            "a fragmented STREAM_OPEN initial payload and a fragmented item",
            "Messages that may be fragmented: ... STREAM_OPEN initial payloads and STREAM_DATA items",
            vec![
                Open,
                Send(enc(&[
                    Frame::StreamOpen(Request { flags: MORE, total_len: Some(4), ..req(0, method::BIDI, b"in") }),
                    cont(0, b"it", false),
                ])),
                Send(enc(&[
                    Frame::StreamData { flags: MORE, id: 0, total_len: Some(5), payload: b"abc" },
                    cont(0, b"de", false),
                    Frame::StreamFin { id: 0, status: OK },
                ])),
                Stream(0, Items::Exactly(vec![b"abcde".into()]), End::FinOk),
            ],
        ),
        dial(
            "9.3/11",
            "a second first frame with MORE and an oversized total_len during reassembly: LIMIT_EXCEEDED",
            "A second first frame with MORE that arrives while another message is being reassembled and whose `total_len` exceeds `max_message_size` is therefore LIMIT_EXCEEDED",
            vec![
                Open,
                Send(enc(&[call_first(0, method::ECHO, b"ab", 4), call_first(2, method::ECHO, b"cd", 1 << 30)])),
                Close(LIM),
            ],
        ),
        // §9.6 Datagram mode
        fatal("9.6/1", "a CALL with MORE over UDP is a PROTOCOL_ERROR", UDP, e(call_first(0, method::ECHO, b"part", 8)), PE),
        fatal("9.6/2", "a CONTINUATION over UDP is a PROTOCOL_ERROR", UDP, e(cont(0, b"rest", false)), PE),
    ]
}

/// 9.1/2: an ECHO of max_message_size bytes (at most 64 KiB), fragmented to the implementation's
/// max_frame_size.
fn large_request(c: &mut Ctx) -> R {
    c.open()?;
    let n = (c.p(2) as usize).min(65536);
    let big = bigbuf(n);
    let (s, p) = c.call(method::ECHO, &big)?;
    status_is("RESPONSE", s, OK)?;
    bigbuf_eq(&format!("{n} bytes echoed"), &p, &big)
}

/// 9.2/1: a first frame announcing max_message_size + 1 bytes.
fn total_len_above_max_message_size(c: &mut Ctx) -> R {
    c.open()?;
    let t = c.p(2) + 1;
    c.send(&[call_first(0, method::ECHO, b"abc", t)])?;
    c.expect_close(LIM)
}
