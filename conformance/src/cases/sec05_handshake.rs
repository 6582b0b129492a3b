//! §5 Handshake: the HELLO sequence, what may come before it, version negotiation, parameters,
//! flags and session token, names and rejection, the handshake timeout.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, fatal, first, listen, listen_code, Ans, Offer, Params, Want, V1};

const ILLEGAL: &str = "A known parameter whose value is outside its legal values is a PROTOCOL_ERROR";
const IGNORE_UNKNOWN: &str =
    "A receiver MUST ignore parameters whose id it does not know, whatever their value";
const FIRST_FRAME: &str =
    "The first frame a peer receives MUST be HELLO or CLOSE. Any other frame type ... is a PROTOCOL_ERROR";
const NO_COMMON: &str = "No common version: the acceptor sends CLOSE(INCOMPATIBLE_VERSION)";
const CHOSEN: &str = "Otherwise its HELLO carries min_version = max_version = v";
const ACCEPTOR_CHOICE: &str = "The acceptor's HELLO MUST have min_version = max_version = v with min_d ≤ v ≤ max_d. Otherwise the dialer closes the connection with PROTOCOL_ERROR";
const NO_ANSWER: &str = "A peer that receives CLOSE ... does not answer with a CLOSE of its own";
const RESERVED_FLAG: &str =
    "A HELLO with a reserved flag bit set does not decode (`InvalidFlags`, §3.3): FRAME_ENCODING_ERROR";
const TIMEOUT: &str =
    "If the peer is not connected (§5.1) when it expires, the peer closes the connection with HANDSHAKE_TIMEOUT";

/// A HELLO from the runner as acceptor, sent after the implementation's HELLO; it must make the
/// implementation close with `status`.
fn bad_acceptor_hello(id: &str, title: &str, requirement: &str, bytes: Vec<u8>, status: Status) -> Case {
    listen(id, title, requirement, vec![Connect, PeerHello, Send(bytes), Close(status)])
}

pub(super) fn cases() -> Vec<Case> {
    let mut v = vec![
        // §5.1 Sequence
        dial(
            "5.1/1",
            "the acceptor sends nothing before the dialer's HELLO",
            "The **acceptor** sends nothing until it has received the dialer's first frame",
            vec![Connect, Absent("frame before the runner's HELLO", Want::Any, Q), Hello(V1), PeerHello],
        ),
        dial(
            "5.1/2",
            "the acceptor's HELLO states version 1..1, no RESUME",
            "its HELLO carries min_version = max_version = v",
            vec![Connect, Hello(V1), Expect(Want::Chosen(1, Some(0)))],
        ),
        dial_code(
            "5.1/3",
            "the acceptor's HELLO parameters are within their legal values",
            ILLEGAL,
            acceptor_parameters_are_legal,
        ),
        dial(
            "5.1/4",
            "the acceptor is connected after its HELLO: a call right after the handshake works",
            "The acceptor is **connected** as soon as it has sent its HELLO",
            vec![Connect, Hello(V1), PeerHello, CallOk(method::ECHO, b"1".into())],
        ),
        listen_code(
            "5.1/5",
            "the dialer sends HELLO first, offering a range that contains version 1",
            "Immediately after the transport connection is established, the **dialer** sends its HELLO",
            dialer_hello_comes_first,
        ),
        listen(
            "5.1/6",
            "the dialer sends nothing else before the acceptor's HELLO",
            "Between sending its HELLO and receiving the acceptor's HELLO, the dialer MUST NOT send any frame other than CLOSE",
            vec![Connect, PeerHello, Absent("frame before the acceptor's HELLO", Want::Any, Q)],
        ),
        listen(
            "5.1/7",
            "frames sent by the acceptor right after its HELLO are processed",
            "It MAY send other frames immediately after its HELLO (in the same transport write), for example a CALL",
            vec![
                Connect,
                PeerHello,
                Send([runner_hello(1, 1, 0, b"", &[]), call(1, method::ECHO, b"hi")].concat()),
                ReplyWith(1, OK, b"hi".into()),
            ],
        ),
        listen_code(
            "5.1/8",
            "the dialer uses even ids, starting at 0",
            "the **dialer** uses **even** ids: 0, 2, 4, …",
            dialer_ids_are_even,
        ),
        listen_code("5.1/9", "the dialer's HELLO parameters are within their legal values", ILLEGAL, dialer_parameters_are_legal),
    ];

    // §5.2 What may be sent and received before the handshake completes
    let not_first: [(&str, &str, Vec<u8>); 17] = [
        ("5.2/1", "PING", vec![0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("5.2/2", "PONG", vec![0x05, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("5.2/3", "CALL", call(0, method::ECHO, b"")),
        ("5.2/4", "NOTIFY", notify(0, method::RECORD, b"")),
        ("5.2/5", "SIGNAL", vec![0x12, 0x03, 0x07, 0x01, 0x78]),
        ("5.2/6", "RESPONSE", vec![0x13, 0x03, 0x00, 0x01, 0x00]),
        ("5.2/7", "CANCEL", vec![0x14, 0x01, 0x00]),
        ("5.2/8", "GOAWAY", vec![0x03, 0x03, 0x01, 0x00, 0x00]),
        ("5.2/9", "ACK", vec![0x06, 0x03, 0x01, 0x00, 0x01]),
        ("5.2/10", "STREAM_OPEN", stream(0, method::BIDI, b"", false)),
        ("5.2/11", "STREAM_DATA", vec![0x19, 0x02, 0x00, 0x00]),
        ("5.2/12", "STREAM_FIN", vec![0x1a, 0x02, 0x00, 0x00]),
        ("5.2/13", "STREAM_RESET", vec![0x1b, 0x02, 0x00, 0x08]),
        ("5.2/14", "STREAM_CREDIT", vec![0x1c, 0x03, 0x00, 0x01, 0x01]),
        ("5.2/15", "CONN_CREDIT", vec![0x1d, 0x01, 0x01]),
        ("5.2/16", "CONTINUATION", vec![0x20, 0x02, 0x00, 0x00]),
        ("5.2/17", "extension frame 0x80", vec![0x80, 0x02, 0x01, 0x02]),
    ];
    for (id, name, bytes) in not_first {
        v.push(first(id, &format!("{name} as the first frame"), FIRST_FRAME, bytes, PE));
    }
    v.extend([
        dial(
            "5.2/18",
            "CLOSE as the first frame ends the connection without an answer",
            "A CLOSE received as the first frame ends the connection",
            vec![Connect, Send(vec![0x02, 0x02, 0x00, 0x00]), Eof],
        ),
        fatal(
            "5.2/19",
            "a second HELLO after the handshake",
            "A second HELLO from the same peer, at any time, is a PROTOCOL_ERROR",
            vec![0x01, 0x0b, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00],
            PE,
        ),
        // Only the request line: the implementation must not wait for a 1364-byte "frame".
        first(
            "5.2/20",
            "an HTTP request instead of HELLO",
            "an HTTP client's `GET ` (first byte `0x47`) is closed with PROTOCOL_ERROR immediately",
            b"GET / HTTP/1.1\r\n".to_vec(),
            PE,
        ),
        first(
            "5.2/21",
            "an unassigned frame type (0x07) as the first frame is rejected from its first byte",
            "the receiver MUST detect it from the **first byte alone**",
            vec![0x07, 0x01, 0x00],
            PE,
        ),
        bad_acceptor_hello(
            "5.2/22",
            "a PING from the acceptor before its HELLO",
            "The first frame a peer receives MUST be HELLO or CLOSE",
            vec![0x04, 0x08, 0, 0, 0, 0, 0, 0, 0, 0],
            PE,
        ),
        listen(
            "5.2/23",
            "a second HELLO from the acceptor",
            "A second HELLO from the same peer, at any time, is a PROTOCOL_ERROR",
            vec![Open, Send(runner_hello(1, 1, 0, b"", &[])), Close(PE)],
        ),
        // §5.3 Magic and version negotiation
        dial(
            "5.3/1",
            "a dialer offering versions 2..3 is refused",
            NO_COMMON,
            vec![Connect, Hello(Offer { min: 2, max: 3, ..V1 }), Close(Status::INCOMPATIBLE_VERSION)],
        ),
        dial(
            "5.3/2",
            "a dialer offering min_version > max_version (3..2) is refused",
            NO_COMMON,
            vec![Connect, Hello(Offer { min: 3, max: 2, ..V1 }), Close(Status::INCOMPATIBLE_VERSION)],
        ),
        dial(
            "5.3/3",
            "a dialer offering version 0 only is refused",
            NO_COMMON,
            vec![Connect, Hello(Offer { min: 0, max: 0, ..V1 }), Close(Status::INCOMPATIBLE_VERSION)],
        ),
        dial(
            "5.3/4",
            "a dialer offering 1..5 gets version 1",
            CHOSEN,
            vec![Connect, Hello(Offer { min: 1, max: 5, ..V1 }), Expect(Want::Chosen(1, None))],
        ),
        dial(
            "5.3/5",
            "a dialer offering 0..1 gets version 1",
            CHOSEN,
            vec![Connect, Hello(Offer { min: 0, max: 1, ..V1 }), Expect(Want::Chosen(1, None))],
        ),
        dial(
            "5.3/6",
            "a dialer offering 1..4294967295 gets version 1",
            CHOSEN,
            vec![Connect, Hello(Offer { min: 1, max: u32::MAX, ..V1 }), Expect(Want::Chosen(1, None))],
        ),
        first(
            "5.3/7",
            "a HELLO with bad magic",
            "a HELLO whose body does not start with `54 4e 44 4d` is the decode error `BadMagic`",
            vec![0x01, 0x0b, 0x54, 0x4e, 0x44, 0x4e, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00],
            FEE,
        ),
        bad_acceptor_hello("5.3/8", "an acceptor HELLO choosing version 2", ACCEPTOR_CHOICE, runner_hello(2, 2, 0, b"", &[]), PE),
        bad_acceptor_hello(
            "5.3/9",
            "an acceptor HELLO choosing the range 1..2 (min ≠ max)",
            ACCEPTOR_CHOICE,
            runner_hello(1, 2, 0, b"", &[]),
            PE,
        ),
        bad_acceptor_hello("5.3/10", "an acceptor HELLO choosing version 0", ACCEPTOR_CHOICE, runner_hello(0, 0, 0, b"", &[]), PE),
        listen(
            "5.3/11",
            "CLOSE(INCOMPATIBLE_VERSION) from the acceptor ends the connection without an answer",
            NO_ANSWER,
            vec![
                Connect,
                PeerHello,
                Send(e(Frame::Close {
                    status: Status::INCOMPATIBLE_VERSION,
                    message: b"supported protocol versions: 7..7",
                })),
                Eof,
            ],
        ),
        bad_acceptor_hello(
            "5.3/12",
            "an acceptor HELLO with bad magic",
            "a HELLO whose body does not start with `54 4e 44 4d` is the decode error `BadMagic` (CLOSE FRAME_ENCODING_ERROR)",
            vec![0x01, 0x0b, 0x54, 0x4e, 0x44, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00],
            FEE,
        ),
    ]);

    // §5.4 Parameters: legal HELLOs are accepted, illegal ones refused.
    let accepted: [(&str, &str, Params); 7] = [
        ("5.4/1", "unknown parameter 13", &[(13, 5)]),
        ("5.4/2", "reserved parameter 0", &[(0, 1)]),
        ("5.4/3", "extension parameter 16384 with value 2^62-1", &[(16384, u64::MAX >> 2)]),
        (
            "5.4/4",
            "max_frame_size and max_message_size at their largest",
            &[(1, 16777216), (2, u32::MAX as u64)],
        ),
        ("5.4/5", "max_frame_size and max_message_size at their smallest", &[(1, 4096), (2, 4096)]),
        ("5.4/6", "conn_credit_bytes equal to stream_credit_bytes", &[(6, 1000), (7, 1000)]),
        ("5.4/7", "keepalive and idle timeout off", &[(8, 0), (9, 0)]),
    ];
    for (id, what, params) in accepted {
        let steps = vec![OpenWith(params), CallOk(method::ECHO, b"p".into())];
        v.push(dial(id, &format!("a HELLO with {what} is accepted"), IGNORE_UNKNOWN, steps));
    }
    let refused: [(&str, &str, Params); 9] = [
        ("5.4/8", "max_frame_size 4095", &[(1, 4095)]),
        ("5.4/9", "max_frame_size 16777217", &[(1, 16777217)]),
        ("5.4/10", "max_message_size 4095", &[(2, 4095)]),
        ("5.4/11", "stream_credit_msgs 0", &[(5, 0)]),
        ("5.4/12", "stream_credit_bytes 0", &[(6, 0)]),
        ("5.4/13", "stream_credit_bytes 2000000 with the default conn_credit_bytes", &[(6, 2_000_000)]),
        ("5.4/14", "conn_credit_bytes below stream_credit_bytes", &[(6, 5000), (7, 4999)]),
        ("5.4/15", "max_message_size 2^32", &[(2, 1 << 32)]),
        ("5.4/16", "max_concurrent_calls 2^32", &[(3, 1 << 32)]),
    ];
    for (id, what, params) in refused {
        let steps = vec![Connect, Hello(Offer { params, ..V1 }), Close(PE)];
        v.push(dial(id, &format!("a HELLO with {what} is refused"), ILLEGAL, steps));
    }
    v.extend([
        bad_acceptor_hello(
            "5.4/17",
            "an acceptor HELLO with max_frame_size 100 is refused",
            ILLEGAL,
            runner_hello(1, 1, 0, b"", &[(1, 100)]),
            PE,
        ),
        listen(
            "5.4/18",
            "the dialer respects the acceptor's max_frame_size of 4096",
            "A sender MUST NOT send a frame whose body exceeds the limit the receiver announced",
            vec![
                OpenWith(&[(1, 4096)]),
                Callback(kind::CALL, 3000, bigbuf(9000)),
                OpenedWith(kind::CALL, bigbuf(9000)),
                Answer(vec![Ans::Response(OK, vec![])]),
                CallbackAnswered,
            ],
        ),
        bad_acceptor_hello(
            "5.4/19",
            "an acceptor HELLO with parameters out of order",
            "a HELLO whose ids are not strictly increasing ... is the decode error `ParamOrder` (CLOSE FRAME_ENCODING_ERROR)",
            vec![0x01, 0x0f, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x02, 0x05, 0x01, 0x03, 0x01],
            FEE,
        ),
        bad_acceptor_hello(
            "5.4/20",
            "an acceptor HELLO with conn_credit_bytes below stream_credit_bytes",
            "MUST be ≥ the (effective) stream_credit_bytes of the same HELLO",
            runner_hello(1, 1, 0, b"", &[(6, 5000), (7, 4000)]),
            PE,
        ),
        listen(
            "5.4/21",
            "an acceptor HELLO with unknown parameters is accepted",
            IGNORE_UNKNOWN,
            vec![OpenWith(&[(13, 1), (16384, 99)]), CallOk(method::ECHO, b"u".into())],
        ),
        // §5.5 Flags and session token
        dial(
            "5.5/1",
            "HELLO with RESUME and an empty session",
            "A dialer HELLO with RESUME set and an empty session ... is a PROTOCOL_ERROR",
            vec![Connect, Hello(Offer { flags: 1, ..V1 }), Close(PE)],
        ),
        dial(
            "5.5/2",
            "HELLO with a session token but RESUME clear",
            "or with a non-empty session and RESUME clear, is a PROTOCOL_ERROR",
            vec![Connect, Hello(Offer { session: b"abcdefgh", ..V1 }), Close(PE)],
        ),
        dial_code(
            "5.5/3",
            "HELLO resuming an unknown session gets a new session or SESSION_EXPIRED",
            "An acceptor that cannot or will not resume the requested session replies with RESUME clear ... it MAY instead send CLOSE(SESSION_EXPIRED)",
            unknown_session,
        ),
        first(
            "5.5/4",
            "a HELLO with the reserved flag bit 0x02",
            RESERVED_FLAG,
            vec![0x01, 0x0b, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00],
            FEE,
        ),
        bad_acceptor_hello(
            "5.5/5",
            "an acceptor HELLO with RESUME although none was requested",
            "The dialer closes the connection with PROTOCOL_ERROR if the acceptor's HELLO has RESUME set although the dialer did not request resumption",
            runner_hello(1, 1, 1, b"tok", &[]),
            PE,
        ),
        bad_acceptor_hello(
            "5.5/6",
            "an acceptor HELLO with the reserved flag bit 0x02",
            RESERVED_FLAG,
            vec![0x01, 0x0b, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00],
            FEE,
        ),
        dial(
            "5.5/7",
            "no common version and an inconsistent RESUME flag: INCOMPATIBLE_VERSION comes first",
            "Order of the HELLO checks ... 2. version negotiation (§5.3): the acceptor's INCOMPATIBLE_VERSION ... 3. the RESUME flag against the session token",
            vec![Connect, Hello(Offer { min: 2, max: 2, flags: 1, ..V1 }), Close(Status::INCOMPATIBLE_VERSION)],
        ),
        dial(
            "5.5/8",
            "no common version and an illegal parameter: INCOMPATIBLE_VERSION comes first",
            "Order of the HELLO checks ... 2. version negotiation (§5.3) ... 4. the parameters (§5.4): PROTOCOL_ERROR",
            vec![Connect, Hello(Offer { min: 2, max: 3, params: &[(1, 10)], ..V1 }), Close(Status::INCOMPATIBLE_VERSION)],
        ),
        dial(
            "5.5/9",
            "an inconsistent RESUME flag and an illegal parameter: PROTOCOL_ERROR for the flag",
            "Order of the HELLO checks ... 3. the RESUME flag against the session token (above): PROTOCOL_ERROR; 4. the parameters",
            vec![Connect, Hello(Offer { flags: 1, params: &[(1, 10)], ..V1 }), Close(PE)],
        ),
        // §5.6 Name, authentication and rejection by the application
        dial(
            "5.6/1",
            "a HELLO name that is not UTF-8 is accepted",
            "The protocol attaches no meaning to it",
            vec![Connect, Send(hello_bytes(1, 1, 0, &[0xff, 0xfe, 0x00], b"", &[])), PeerHello],
        ),
        listen(
            "5.6/2",
            "an acceptor that rejects the dialer with CLOSE(UNAUTHENTICATED) after its HELLO",
            "either peer's application MAY refuse the peer by closing the connection with CLOSE(UNAUTHENTICATED)",
            vec![
                Connect,
                PeerHello,
                Send(
                    [
                        runner_hello(1, 1, 0, b"", &[]),
                        e(Frame::Close { status: Status::UNAUTHENTICATED, message: b"who are you" }),
                    ]
                    .concat(),
                ),
                Eof,
            ],
        ),
        // §5.7 Handshake timeout
        dial(
            "5.7/1",
            "a dialer that sends nothing is closed with HANDSHAKE_TIMEOUT",
            TIMEOUT,
            vec![Connect, CloseWithin(&[Status::HANDSHAKE_TIMEOUT], 12_000)],
        ),
        dial_code(
            "5.7/2",
            "a dialer that sends half a HELLO is closed with HANDSHAKE_TIMEOUT",
            "Each peer runs a local handshake timer, default **10 s**",
            half_a_hello,
        ),
        listen(
            "5.7/3",
            "an acceptor that never answers: the dialer gives up with HANDSHAKE_TIMEOUT",
            TIMEOUT,
            vec![Connect, PeerHello, CloseWithin(&[Status::HANDSHAKE_TIMEOUT], 12_000)],
        ),
    ]);
    v
}

/// 5.1/3: every parameter the acceptor announced is within its legal values (§5.4).
fn acceptor_parameters_are_legal(c: &mut Ctx) -> R {
    c.open()?;
    let p = |i| c.p(i);
    let ok = (4096..=16777216).contains(&p(1))
        && p(2) >= 4096
        && p(2) <= u32::MAX as u64
        && p(5) >= 1
        && p(5) <= u32::MAX as u64
        && p(6) >= 1
        && p(6) <= u32::MAX as u64
        && p(7) >= p(6)
        && p(7) <= u32::MAX as u64
        && p(3) <= u32::MAX as u64
        && p(4) <= u32::MAX as u64
        && (p(10) == 0 || p(10) >= 1200);
    if ok {
        Ok(())
    } else {
        fail("legal parameter values", format!("{:?}", c.peer))
    }
}

/// 5.1/9: every parameter the dialer announced is within its legal values (§5.4).
fn dialer_parameters_are_legal(c: &mut Ctx) -> R {
    c.open()?;
    let p = |i| c.p(i);
    let ok = (4096..=16777216).contains(&p(1))
        && (4096..=u32::MAX as u64).contains(&p(2))
        && (1..=u32::MAX as u64).contains(&p(5))
        && (1..=u32::MAX as u64).contains(&p(6))
        && p(7) >= p(6)
        && p(7) <= u32::MAX as u64;
    if ok {
        Ok(())
    } else {
        fail("legal parameter values", format!("{:?}", c.peer))
    }
}

/// 5.1/5: the very first frame is a HELLO whose range contains 1, without RESUME or session.
fn dialer_hello_comes_first(c: &mut Ctx) -> R {
    c.transport()?;
    let o = c.expect("the dialer's HELLO", T, |_| true)?;
    match o.frame() {
        Frame::Hello(h)
            if h.min_version <= 1 && h.max_version >= 1 && h.flags == 0 && h.session.is_empty() =>
        {
            Ok(())
        }
        f => fail("HELLO offering 1, RESUME clear, empty session", describe(&f)),
    }
}

/// 5.1/8: the implementation, as dialer, calls the runner back with an even id.
fn dialer_ids_are_even(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.callback(kind::CALL, RUNNER_METHOD, 2000, b"x")?;
    let (cid, ..) = expect_call(c)?;
    answer_ok(c, cid)?;
    c.callback_result(id)?;
    if cid % 2 == 0 {
        Ok(())
    } else {
        fail("an even id", cid.to_string())
    }
}

/// 5.5/3: a HELLO with RESUME and a token the implementation never issued.
fn unknown_session(c: &mut Ctx) -> R {
    c.transport()?;
    let h = hello_bytes(1, 1, 1, c.name.as_bytes(), b"unknown-session", &[]);
    c.send_bytes(&h)?;
    let r =
        c.expect("HELLO with RESUME clear, or CLOSE(SESSION_EXPIRED)", T, |f| matches!(f, Frame::Hello(_)));
    match r {
        Ok(o) => match o.frame() {
            Frame::Hello(h) if h.flags & 1 == 0 => Ok(()),
            f => fail("HELLO with RESUME clear", describe(&f)),
        },
        Err(Fail::Failed { actual, .. }) if actual.contains("SESSION_EXPIRED") => Ok(()),
        Err(e) => Err(e),
    }
}

/// 5.7/2: half a HELLO; over a packet transport that datagram is `Truncated` at once (§3.7).
fn half_a_hello(c: &mut Ctx) -> R {
    c.transport()?;
    c.send_bytes(&[0x01, 0x0b, 0x54, 0x4e])?;
    if c.w().is_packet() {
        return c.expect_close(FEE);
    }
    c.expect_close_in(&[Status::HANDSHAKE_TIMEOUT], Duration::from_secs(12))
}
