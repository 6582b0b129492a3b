//! The cases not yet moved to their section's module (temporary, during the reshaping).
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_core::frame::{flags, ty, Decoded, Frame, Request};
use tandem_core::{MethodId, Status};

use crate::service::{entry, kind, method, MODULE};
use crate::suite::{fail, hello_bytes, req, skip, Case, Ctx, Fail, Role, QUIET, R, T};
use crate::wire::{describe, encode, Recv};

const PE: Status = Status::PROTOCOL_ERROR;
const FEE: Status = Status::FRAME_ENCODING_ERROR;
const FTL: Status = Status::FRAME_TOO_LARGE;
const FCE: Status = Status::FLOW_CONTROL_ERROR;
const LIM: Status = Status::LIMIT_EXCEEDED;

#[path = "sec13.rs"]
mod sec13;
#[path = "sec14.rs"]
mod sec14;

/// A method of the runner itself (the implementation calls it back).
const RUNNER_METHOD: MethodId = MethodId::new(7, 1);

fn be(x: u32) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

struct B {
    cases: Vec<Case>,
    n: BTreeMap<String, usize>,
}

impl B {
    fn add(
        &mut self,
        role: Role,
        sec: &str,
        title: &str,
        quote: &str,
        skip: Option<&str>,
        body: crate::suite::Body,
    ) {
        let k = self.n.entry(sec.to_string()).or_insert(0);
        *k += 1;
        self.cases.push(Case {
            id: format!("{sec}/{k}"),
            section: sec.to_string(),
            title: title.to_string(),
            requirement: quote.to_string(),
            role,
            skip: skip.map(str::to_string),
            body,
        });
    }
    /// A case where the runner dials.
    fn d(&mut self, sec: &str, title: &str, quote: &str, f: impl Fn(&mut Ctx) -> R + Send + Sync + 'static) {
        self.add(Role::RunnerDials, sec, title, quote, None, Arc::new(f));
    }
    /// A case where the implementation dials.
    fn a(&mut self, sec: &str, title: &str, quote: &str, f: impl Fn(&mut Ctx) -> R + Send + Sync + 'static) {
        self.add(Role::RunnerAccepts, sec, title, quote, None, Arc::new(f));
    }
    /// A case that is always skipped.
    fn s(&mut self, sec: &str, title: &str, quote: &str, reason: &str) {
        self.add(Role::RunnerDials, sec, title, quote, Some(reason), Arc::new(|_| Ok(())));
    }
    /// After the handshake, `bytes` must end the connection with `status`.
    fn fatal(&mut self, sec: &str, title: &str, quote: &str, bytes: Vec<u8>, status: Status) {
        self.d(sec, title, quote, move |c| {
            c.open()?;
            c.send_bytes(&bytes)?;
            c.expect_close(status)
        });
    }
    /// `bytes` as the first frame must end the connection with `status`.
    fn first(&mut self, sec: &str, title: &str, quote: &str, bytes: Vec<u8>, status: Status) {
        self.d(sec, title, quote, move |c| {
            c.transport()?;
            c.send_bytes(&bytes)?;
            c.expect_close(status)
        });
    }
    /// After the handshake, `bytes` must be ignored (the connection stays usable).
    fn ignored(&mut self, sec: &str, title: &str, quote: &str, bytes: Vec<u8>) {
        self.d(sec, title, quote, move |c| {
            c.open()?;
            c.send_bytes(&bytes)?;
            c.alive()
        });
    }
}

fn e(f: Frame<'_>) -> Vec<u8> {
    encode(&f)
}

fn call(id: u64, m: u32, p: &[u8]) -> Vec<u8> {
    e(Frame::Call(req(id, m, p)))
}

fn expect_call(c: &mut Ctx) -> R<(u64, u32, u32, u64, Vec<u8>)> {
    let o = c.expect("CALL from the implementation", T, |f| matches!(f, Frame::Call(_)))?;
    if let Frame::Call(r) = o.frame() {
        let p = match r.total_len {
            Some(t) => c.reassemble(r.id, r.payload, t)?,
            None => r.payload.to_vec(),
        };
        return Ok((r.id, r.module, r.method, r.budget_us, p));
    }
    unreachable!()
}

fn expect_open(c: &mut Ctx, what: &str, pred: impl Fn(&Frame<'_>) -> bool) -> R<(u64, u8)> {
    let o = c.expect(what, T, pred)?;
    match o.frame() {
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => Ok((r.id, r.flags)),
        f => fail(what, describe(&f)),
    }
}

fn status_is(what: &str, got: Status, want: Status) -> R {
    if got == want {
        Ok(())
    } else {
        fail(format!("{what} {want:?}"), format!("{got:?}"))
    }
}

/// Reads the items and the terminal of the implementation's direction of stream `id`.
fn drain_stream(c: &mut Ctx, id: u64, t: Duration) -> R<(Vec<Vec<u8>>, Frame<'static>)> {
    let mut items = Vec::new();
    loop {
        let o = c.expect(&format!("STREAM_DATA or a terminal on stream {id}"), t, |f| match f {
            Frame::StreamData { id: x, .. }
            | Frame::StreamFin { id: x, .. }
            | Frame::StreamReset { id: x, .. } => *x == id,
            _ => false,
        })?;
        match o.frame() {
            Frame::StreamData { total_len, payload, .. } => {
                let p = match total_len {
                    Some(t) => c.reassemble(id, payload, t)?,
                    None => payload.to_vec(),
                };
                items.push(p);
            }
            Frame::StreamFin { id, status } => return Ok((items, Frame::StreamFin { id, status })),
            Frame::StreamReset { id, status } => return Ok((items, Frame::StreamReset { id, status })),
            _ => unreachable!(),
        }
    }
}

fn open_stream(c: &mut Ctx, m: u32, init: &[u8], fin: bool) -> R<u64> {
    let id = c.id();
    let mut r = req(id, m, init);
    if fin {
        r.flags = flags::FIN;
    }
    c.send_msg(ty::STREAM_OPEN, r)?;
    Ok(id)
}

fn count_init(n: u32, size: Option<u32>) -> Vec<u8> {
    let mut v = be(n);
    if let Some(s) = size {
        v.extend_from_slice(&be(s));
    }
    v
}

fn fin_ok(f: &Frame<'_>) -> R {
    match f {
        Frame::StreamFin { status: Status::OK, .. } => Ok(()),
        f => fail("STREAM_FIN OK", describe(f)),
    }
}

fn bigbuf(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The handwritten scenarios, in SPEC.md order.
pub fn handwritten() -> Vec<Case> {
    let mut b = B { cases: Vec::new(), n: BTreeMap::new() };
    sec8_9(&mut b);
    sec10_11(&mut b);
    sec12_15(&mut b);
    b.cases
}

fn sec8_9(b: &mut B) {
    for (st, title) in [
        (13u32, "INVALID_ARGUMENT"),
        (25, "REPLY_EVICTED"),
        (26, "reserved 26"),
        (65536, "application-defined 65536"),
        (u32::MAX, "2^32-1"),
    ] {
        b.d(
            "8.1",
            &format!("the application's status {title} reaches the caller unchanged"),
            "A receiver MUST accept any status value 0..=2^32-1",
            move |c| {
                c.open()?;
                let (s, _) = c.call(method::STATUS, &be(st))?;
                status_is("RESPONSE", s, Status(st))
            },
        );
    }
    for (st, title) in
        [(64u32, "PROTOCOL_ERROR (64, a connection status)"), (127, "reserved connection status 127")]
    {
        b.d(
            "8.2",
            &format!("RESPONSE with {title} is not a connection error"),
            "A receiver that gets one MUST NOT treat it as a connection error; it delivers it unchanged",
            move |c| {
                c.open()?;
                let id = c.callback(kind::CALL, RUNNER_METHOD, 2000, b"")?;
                let (cid, ..) = expect_call(c)?;
                c.send(&[Frame::Response {
                    flags: 0,
                    id: cid,
                    status: Status(st),
                    total_len: None,
                    payload: b"",
                }])?;
                let (s, _) = c.callback_result(id)?;
                status_is("inner status", s, Status(st))
            },
        );
    }
    b.d("8.2", "STREAM_FIN with a connection status is delivered, not fatal", "RESPONSE, STREAM_FIN and STREAM_RESET carry exchange statuses ... MUST NOT treat it as a connection error", |c| {
        c.open()?;
        let id = c.callback(kind::STREAM, RUNNER_METHOD, 2000, b"")?;
        let (sid, _) = expect_open(c, "STREAM_OPEN", |f| matches!(f, Frame::StreamOpen(_)))?;
        c.send(&[Frame::StreamFin { id: sid, status: Status::FLOW_CONTROL_ERROR }])?;
        let (s, _) = c.callback_result(id)?;
        status_is("inner status", s, Status::FLOW_CONTROL_ERROR)
    });
    for st in [100_000u32, 74] {
        b.d(
            "8.4",
            &format!("an unknown status {st} in a RESPONSE is preserved"),
            "A value it does not know MUST be preserved unchanged",
            move |c| {
                c.open()?;
                let id = c.callback(kind::CALL, RUNNER_METHOD, 2000, b"")?;
                let (cid, ..) = expect_call(c)?;
                c.send(&[Frame::Response {
                    flags: 0,
                    id: cid,
                    status: Status(st),
                    total_len: None,
                    payload: b"",
                }])?;
                let (s, _) = c.callback_result(id)?;
                status_is("inner status", s, Status(st))
            },
        );
    }
    b.d(
        "8.4",
        "an unknown status in STREAM_RESET is preserved",
        "A value it does not know MUST be preserved unchanged",
        |c| {
            c.open()?;
            let id = c.callback(kind::STREAM, RUNNER_METHOD, 2000, b"")?;
            let (sid, _) = expect_open(c, "STREAM_OPEN", |f| matches!(f, Frame::StreamOpen(_)))?;
            c.send(&[Frame::StreamReset { id: sid, status: Status(70_000) }])?;
            let (s, _) = c.callback_result(id)?;
            status_is("inner status", s, Status(70_000))
        },
    );

    b.d(
        "9.1",
        "the implementation fragments a response larger than the runner's max_frame_size",
        "A sender MUST fragment a message whose single frame would exceed the receiver's frame limit",
        |c| {
            c.open_with(&[(1, 4096)])?;
            let big = bigbuf(10_000);
            let (s, p) = c.call(method::ECHO, &big)?;
            status_is("RESPONSE", s, Status::OK)?;
            if p == big {
                Ok(())
            } else {
                fail("the 10000 bytes echoed", format!("{} bytes", p.len()))
            }
        },
    );
    b.d(
        "9.1",
        "a 64 KiB request in many CONTINUATIONs is reassembled",
        "every frame respects the frame limit",
        |c| {
            c.open()?;
            let n = (c.p(2) as usize).min(65536);
            let big = bigbuf(n);
            let (s, p) = c.call(method::ECHO, &big)?;
            status_is("RESPONSE", s, Status::OK)?;
            if p == big {
                Ok(())
            } else {
                fail(format!("{n} bytes echoed"), format!("{} bytes", p.len()))
            }
        },
    );
    b.d("9.2", "a first frame whose total_len exceeds max_message_size", "A message larger than the receiver's `max_message_size` ... closes the connection with LIMIT_EXCEEDED, on the first frame, before buffering anything", |c| {
        c.open()?;
        let t = c.p(2) + 1;
        c.send(&[Frame::Call(Request { flags: flags::MORE, total_len: Some(t), ..req(0, method::ECHO, b"abc") })])?;
        c.expect_close(LIM)
    });
    b.d(
        "9.2",
        "a fragmented message with an empty first chunk",
        "The first frame's payload MAY be empty",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request { flags: flags::MORE, total_len: Some(2), ..req(0, method::ECHO, b"") }),
                Frame::Continuation { flags: 0, id: 0, payload: b"ok" },
            ])?;
            let (_, p) = c.response(0)?;
            if p == b"ok" {
                Ok(())
            } else {
                fail("\"ok\"", format!("{p:02x?}"))
            }
        },
    );
    b.d(
        "9.3",
        "a first frame with MORE while another message is in progress",
        "first frame with MORE | a message is already in progress | PROTOCOL_ERROR",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(6),
                    ..req(0, method::ECHO, b"abc")
                }),
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(6),
                    ..req(2, method::ECHO, b"abc")
                }),
            ])?;
            c.expect_close(PE)
        },
    );
    b.fatal(
        "9.3",
        "CONTINUATION without a message in progress",
        "CONTINUATION | no message in progress | PROTOCOL_ERROR",
        vec![0x20, 0x02, 0x00, 0x00],
        PE,
    );
    b.d(
        "9.3",
        "CONTINUATION with another id",
        "CONTINUATION | its id differs from the message in progress | PROTOCOL_ERROR",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(6),
                    ..req(0, method::ECHO, b"abc")
                }),
                Frame::Continuation { flags: 0, id: 2, payload: b"def" },
            ])?;
            c.expect_close(PE)
        },
    );
    b.d(
        "9.3",
        "CONTINUATION chunks exceeding total_len",
        "bytes received so far (including this chunk) > `total_len` | PROTOCOL_ERROR",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(6),
                    ..req(0, method::ECHO, b"abc")
                }),
                Frame::Continuation { flags: flags::MORE, id: 0, payload: b"defg" },
            ])?;
            c.expect_close(PE)
        },
    );
    b.d(
        "9.3",
        "a last CONTINUATION that leaves the message short",
        "CONTINUATION with MORE clear | bytes received ≠ `total_len` | PROTOCOL_ERROR",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(6),
                    ..req(0, method::ECHO, b"abc")
                }),
                Frame::Continuation { flags: 0, id: 0, payload: b"d" },
            ])?;
            c.expect_close(PE)
        },
    );
    b.d(
        "9.3",
        "empty CONTINUATION chunks with MORE are accepted",
        "append; the message stays in progress (a chunk may be empty)",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(4),
                    ..req(0, method::ECHO, b"ab")
                }),
                Frame::Continuation { flags: flags::MORE, id: 0, payload: b"" },
                Frame::Continuation { flags: flags::MORE, id: 0, payload: b"" },
                Frame::Continuation { flags: 0, id: 0, payload: b"cd" },
            ])?;
            let (_, p) = c.response(0)?;
            if p == b"abcd" {
                Ok(())
            } else {
                fail("\"abcd\"", format!("{p:02x?}"))
            }
        },
    );
    b.d(
        "9.3",
        "unfragmented frames interleaved between CONTINUATIONs",
        "Other frames MAY be interleaved between the CONTINUATIONs",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(6),
                    ..req(0, method::ECHO, b"abc")
                }),
                Frame::Call(req(2, method::ECHO, b"mid")),
                Frame::Ping(*b"interlv!"),
                Frame::Continuation { flags: 0, id: 0, payload: b"def" },
            ])?;
            let (_, p2) = c.response(2)?;
            let (_, p0) = c.response(0)?;
            if p2 == b"mid" && p0 == b"abcdef" {
                Ok(())
            } else {
                fail("\"mid\" and \"abcdef\"", format!("{p2:02x?} {p0:02x?}"))
            }
        },
    );
    b.d(
        "9.3",
        "a fragmented request of a cancelled call is still completed",
        "A fragmented message, once started, MUST be completed, even if its exchange is cancelled",
        |c| {
            c.open()?;
            c.send(&[
                Frame::Call(Request {
                    flags: flags::MORE,
                    total_len: Some(6),
                    ..req(0, method::ECHO, b"abc")
                }),
                Frame::Cancel { id: 0 },
                Frame::Continuation { flags: 0, id: 0, payload: b"def" },
            ])?;
            c.response(0)?;
            c.alive()
        },
    );
    b.d("9.3", "a fragmented message for a closed id is validated and discarded", "a message whose exchange ... was already closed when the first frame arrived (§6.4) is still in progress", |c| {
        c.open()?;
        let id = open_stream(c, method::COUNT, &count_init(0, None), true)?;
        drain_stream(c, id, T)?;
        c.send(&[Frame::StreamData { flags: flags::MORE, id, total_len: Some(4), payload: b"ab" }, Frame::Continuation { flags: 0, id, payload: b"cd" }])?;
        c.alive()
    });
    b.d(
        "9.3",
        "a fragmented STREAM_OPEN initial payload and a fragmented item",
        "Messages that may be fragmented: ... STREAM_OPEN initial payloads and STREAM_DATA items",
        |c| {
            c.open()?;
            let id = c.id();
            c.send(&[
                Frame::StreamOpen(Request {
                    flags: flags::MORE,
                    total_len: Some(4),
                    ..req(id, method::BIDI, b"in")
                }),
                Frame::Continuation { flags: 0, id, payload: b"it" },
            ])?;
            c.send(&[
                Frame::StreamData { flags: flags::MORE, id, total_len: Some(5), payload: b"abc" },
                Frame::Continuation { flags: 0, id, payload: b"de" },
                Frame::StreamFin { id, status: Status::OK },
            ])?;
            let (items, end) = drain_stream(c, id, T)?;
            if items != vec![b"abcde".to_vec()] {
                return fail("the item \"abcde\"", format!("{items:02x?}"));
            }
            fin_ok(&end)
        },
    );
    b.fatal("9.2", "a first frame whose total_len does not exceed its payload", "It MUST be greater than the number of payload bytes in the first frame; otherwise the frame is the decode error `InvalidLength`", e(Frame::Call(Request { flags: flags::MORE, total_len: Some(2), ..req(0, method::ECHO, b"abc") })), FEE);
}

fn sec10_11(b: &mut B) {
    b.d(
        "10.2",
        "the implementation respects the runner's per-stream item window",
        "A sender MUST NOT send the first frame of an item unless item window ≥ 1",
        |c| {
            c.open_with(&[(5, 2)])?;
            let id = open_stream(c, method::COUNT, &count_init(6, None), true)?;
            for _ in 0..2 {
                c.expect("STREAM_DATA", T, |f| matches!(f, Frame::StreamData { .. }))?;
            }
            c.none("a third item without credit", QUIET, |f| matches!(f, Frame::StreamData { .. }))?;
            c.send(&[Frame::StreamCredit { id, msgs: 4, bytes: 100 }])?;
            let (items, end) = drain_stream(c, id, T)?;
            if items.len() != 4 {
                return fail("4 more items", items.len().to_string());
            }
            fin_ok(&end)
        },
    );
    b.d(
        "10.2",
        "the implementation respects the runner's per-stream byte window",
        "byte window ≥ L",
        |c| {
            c.open_with(&[(6, 10), (7, 10000)])?;
            let id = open_stream(c, method::COUNT, &count_init(6, None), true)?;
            for _ in 0..2 {
                c.expect("STREAM_DATA", T, |f| matches!(f, Frame::StreamData { .. }))?;
            }
            c.none("an item beyond the byte window of 10", QUIET, |f| matches!(f, Frame::StreamData { .. }))?;
            c.send(&[Frame::StreamCredit { id, msgs: 0, bytes: 100 }])?;
            let (items, end) = drain_stream(c, id, T)?;
            if items.len() != 4 {
                return fail("4 more items", items.len().to_string());
            }
            fin_ok(&end)
        },
    );
    b.d(
        "10.3",
        "the implementation respects the runner's connection window across streams",
        "connection window ≥ L",
        |c| {
            c.open_with(&[(6, 8), (7, 8)])?;
            let a = open_stream(c, method::COUNT, &count_init(2, None), true)?;
            let b2 = open_stream(c, method::COUNT, &count_init(2, None), true)?;
            for _ in 0..2 {
                c.expect("STREAM_DATA", T, |f| matches!(f, Frame::StreamData { .. }))?;
            }
            c.none("an item beyond the connection window of 8", QUIET, |f| {
                matches!(f, Frame::StreamData { .. })
            })?;
            c.send(&[Frame::ConnCredit { bytes: 8 }])?;
            for _ in 0..2 {
                c.expect("STREAM_DATA", T, |f| matches!(f, Frame::StreamData { .. }))?;
            }
            let _ = (a, b2);
            Ok(())
        },
    );
    b.d("10.3", "connection credit of an item for a closed stream is returned", "Every STREAM_DATA item consumes connection credit, including items ... for a stream that is already closed at the receiver ... The receiver MUST return the connection credit of every discarded item", |c| {
        c.open()?;
        let id = open_stream(c, method::COUNT, &count_init(0, None), true)?;
        let (_, end) = drain_stream(c, id, T)?;
        fin_ok(&end)?;
        let item = bigbuf(100);
        c.send(&[Frame::StreamData { flags: 0, id, total_len: None, payload: &item }])?;
        let mut got = 0u64;
        while got < 100 {
            let o = c.expect("CONN_CREDIT returning the 100 bytes", T, |f| matches!(f, Frame::ConnCredit { .. }))?;
            if let Frame::ConnCredit { bytes } = o.frame() {
                got += u64::from(bytes);
            }
        }
        Ok(())
    });
    b.d(
        "10.3",
        "connection credit of an item for a stream refused by GOAWAY is returned",
        "STREAM_DATA for it still consumes and returns connection credit (§10.3)",
        |c| {
            c.open()?;
            c.send_bytes(&call(0, method::SLEEP, &be(1000)))?;
            c.send_bytes(&call(2, method::GOAWAY, b""))?;
            c.expect("GOAWAY", T, |f| matches!(f, Frame::GoAway { .. }))?;
            let item = bigbuf(50);
            c.send(&[
                Frame::StreamOpen(req(4, method::BIDI, b"")),
                Frame::StreamData { flags: 0, id: 4, total_len: None, payload: &item },
            ])?;
            let mut got = 0u64;
            while got < 50 {
                let o = c.expect("CONN_CREDIT returning the 50 bytes", T, |f| {
                    matches!(f, Frame::ConnCredit { .. })
                })?;
                if let Frame::ConnCredit { bytes } = o.frame() {
                    got += u64::from(bytes);
                }
            }
            Ok(())
        },
    );
    b.d(
        "10.4",
        "an item beyond the implementation's item window",
        "An item that exceeds the stream item window ... is a FLOW_CONTROL_ERROR",
        |c| {
            c.open()?;
            let n = c.p(5);
            if n > 1000 {
                return skip(format!("stream_credit_msgs {n} is too large to exhaust"));
            }
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            let mut bytes = Vec::new();
            for _ in 0..=n {
                bytes.extend(e(Frame::StreamData { flags: 0, id, total_len: None, payload: b"" }));
            }
            c.send_bytes(&bytes)?;
            c.expect_close(FCE)
        },
    );
    b.d(
        "10.4",
        "an item beyond the implementation's byte window",
        "An item that exceeds ... the stream byte window ... is a FLOW_CONTROL_ERROR",
        |c| {
            c.open()?;
            let n = c.p(6) as usize;
            if n > 1 << 20 {
                return skip(format!("stream_credit_bytes {n} is too large"));
            }
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            let big = bigbuf(n + 1);
            c.send_msg(
                ty::STREAM_DATA,
                Request { flags: 0, id, module: 0, method: 0, budget_us: 0, total_len: None, payload: &big },
            )?;
            c.expect_close(FCE)
        },
    );
    b.d("10.4", "items beyond the implementation's connection window", "An item that exceeds ... the connection window is a FLOW_CONTROL_ERROR", |c| {
        c.open()?;
        let (sb, cb, ms) = (c.p(6) as usize, c.p(7) as usize, c.p(4) as usize);
        let streams = cb / sb + 1;
        if streams > ms || cb > 1 << 20 {
            return skip(format!("needs conn_credit_bytes / stream_credit_bytes < max_concurrent_streams ({cb} / {sb}, {ms})"));
        }
        let item = bigbuf(sb);
        for _ in 0..streams {
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            c.send_msg(ty::STREAM_DATA, Request { flags: 0, id, module: 0, method: 0, budget_us: 0, total_len: None, payload: &item })?;
        }
        c.expect_close(FCE)
    });
    b.d(
        "10.4",
        "STREAM_CREDIT raising an item window above 2^32-1",
        "if any window would then exceed **2^32-1**, it closes the connection with FLOW_CONTROL_ERROR",
        |c| {
            c.open()?;
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            c.send(&[Frame::StreamCredit { id, msgs: u32::MAX, bytes: 0 }])?;
            c.expect_close(FCE)
        },
    );
    b.d(
        "10.4",
        "STREAM_CREDIT raising a byte window above 2^32-1",
        "if any window would then exceed **2^32-1**",
        |c| {
            c.open()?;
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            c.send(&[Frame::StreamCredit { id, msgs: 0, bytes: u32::MAX }])?;
            c.expect_close(FCE)
        },
    );
    b.fatal(
        "10.4",
        "CONN_CREDIT raising the connection window above 2^32-1",
        "On receiving STREAM_CREDIT or CONN_CREDIT ... if any window would then exceed **2^32-1**",
        e(Frame::ConnCredit { bytes: u32::MAX }),
        FCE,
    );
    b.d("10.4", "STREAM_CREDIT on a stream whose sending direction has ended is still checked", "This check is made for every STREAM_CREDIT on an open stream, even one whose sending direction has already ended", |c| {
        c.open()?;
        let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
        c.send(&[Frame::StreamFin { id, status: Status::OK }])?;
        c.send(&[Frame::StreamCredit { id, msgs: u32::MAX, bytes: 0 }])?;
        c.expect_close(FCE)
    });
    b.d("10.4", "items exactly filling the implementation's windows are accepted", "Every value that a peer announces is a promise: the peer MUST accept all traffic that stays within its announced limits", |c| {
        c.open()?;
        let n = c.p(5);
        if n > 1000 {
            return skip("stream_credit_msgs too large");
        }
        let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
        let mut bytes = Vec::new();
        for _ in 0..n {
            bytes.extend(e(Frame::StreamData { flags: 0, id, total_len: None, payload: b"" }));
        }
        c.send_bytes(&bytes)?;
        c.alive()
    });
    b.d(
        "10.4",
        "an item of length 0 consumes one item and no bytes",
        "An item of length 0 consumes 1 item and 0 bytes",
        |c| {
            c.open()?;
            let id = open_stream(c, method::BIDI, b"", false)?;
            c.send(&[
                Frame::StreamData { flags: 0, id, total_len: None, payload: b"" },
                Frame::StreamFin { id, status: Status::OK },
            ])?;
            let (items, end) = drain_stream(c, id, T)?;
            if items != vec![Vec::<u8>::new()] {
                return fail("one empty item echoed", format!("{items:02x?}"));
            }
            fin_ok(&end)
        },
    );
    b.d("10.5", "one call beyond max_concurrent_calls", "A responder that receives an opening frame while its count for that kind already equals its limit closes the connection with LIMIT_EXCEEDED", |c| {
        c.open()?;
        let n = c.p(3);
        if n > 256 {
            return skip(format!("max_concurrent_calls {n} is too large"));
        }
        let mut bytes = Vec::new();
        for i in 0..=n {
            bytes.extend(call(i * 2, method::SLEEP, &be(3000)));
        }
        c.send_bytes(&bytes)?;
        c.expect_close(LIM)
    });
    b.d(
        "10.5",
        "exactly max_concurrent_calls calls are accepted",
        "the peer MUST accept all traffic that stays within its announced limits",
        |c| {
            c.open()?;
            let n = c.p(3);
            if n > 256 {
                return skip(format!("max_concurrent_calls {n} is too large"));
            }
            let mut bytes = Vec::new();
            for i in 0..n {
                bytes.extend(call(i * 2, method::SLEEP, &be(100)));
            }
            c.send_bytes(&bytes)?;
            for i in 0..n {
                c.response_in(i * 2, Duration::from_secs(10))?;
            }
            Ok(())
        },
    );
    b.d(
        "10.5",
        "one stream beyond max_concurrent_streams",
        "Beyond its `max_concurrent_streams` it closes the connection with LIMIT_EXCEEDED",
        |c| {
            c.open()?;
            let n = c.p(4);
            if n > 256 {
                return skip(format!("max_concurrent_streams {n} is too large"));
            }
            let mut bytes = Vec::new();
            for i in 0..=n {
                bytes.extend(e(Frame::StreamOpen(req(i * 2, method::HOLD_STREAM, b""))));
            }
            c.send_bytes(&bytes)?;
            c.expect_close(LIM)
        },
    );
    b.d(
        "10.5",
        "notifications count against max_concurrent_calls",
        "Calls plus reliable notifications the peer may have open toward it at once",
        |c| {
            c.open()?;
            let n = c.p(3);
            if n > 256 {
                return skip(format!("max_concurrent_calls {n} is too large"));
            }
            let mut bytes = Vec::new();
            for i in 0..n {
                bytes.extend(call(i * 2, method::SLEEP, &be(3000)));
            }
            bytes.extend(e(Frame::Notify(req(n * 2, method::RECORD, b""))));
            c.send_bytes(&bytes)?;
            c.expect_close(LIM)
        },
    );
    b.d(
        "10.5",
        "a stream finished in both directions frees its slot",
        "A peer frees the stream ... when it has both sent and received a terminal",
        |c| {
            c.open()?;
            let n = c.p(4);
            if n > 64 {
                return skip("max_concurrent_streams too large");
            }
            for _ in 0..n + 2 {
                let id = open_stream(c, method::COUNT, &count_init(0, None), true)?;
                drain_stream(c, id, T)?;
            }
            c.alive()
        },
    );
    b.d(
        "10.5",
        "the implementation does not call a runner announcing max_concurrent_calls 0",
        "0: the peer may not call it",
        |c| {
            c.open_with(&[(3, 0)])?;
            let id = c.callback(kind::CALL, RUNNER_METHOD, 300, b"")?;
            c.none("CALL toward a peer that allows none", Duration::from_millis(500), |f| {
                matches!(f, Frame::Call(_))
            })?;
            let (s, _) = c.callback_result(id)?;
            if s == Status::OK {
                fail("a non-OK inner status", "OK")
            } else {
                Ok(())
            }
        },
    );
    b.d(
        "10.5",
        "the implementation does not open streams toward a runner announcing max_concurrent_streams 0",
        "0: the peer may not open streams",
        |c| {
            c.open_with(&[(4, 0)])?;
            let id = c.callback(kind::STREAM, RUNNER_METHOD, 300, b"")?;
            c.none("STREAM_OPEN toward a peer that allows none", Duration::from_millis(500), |f| {
                matches!(f, Frame::StreamOpen(_))
            })?;
            let (s, _) = c.callback_result(id)?;
            if s == Status::OK {
                fail("a non-OK inner status", "OK")
            } else {
                Ok(())
            }
        },
    );
    b.d(
        "10.6",
        "an item larger than the runner's stream_credit_bytes is refused locally",
        "A sender MUST refuse such an item locally (TOO_LARGE)",
        |c| {
            c.open_with(&[(6, 16)])?;
            let id = open_stream(c, method::COUNT, &count_init(1, Some(100)), true)?;
            let (items, end) = drain_stream(c, id, T)?;
            if !items.is_empty() {
                return fail("no item", format!("{} items", items.len()));
            }
            match end {
                Frame::StreamFin { status: Status::OK, .. } => fail("a non-OK terminal", describe(&end)),
                _ => Ok(()),
            }
        },
    );
    b.d(
        "10.6",
        "an item larger than the runner's max_message_size is refused locally",
        "as well as an item longer than the receiver's `max_message_size`",
        |c| {
            c.open_with(&[(2, 4096), (6, 100_000), (7, 100_000)])?;
            let id = open_stream(c, method::COUNT, &count_init(1, Some(5000)), true)?;
            let (items, end) = drain_stream(c, id, T)?;
            if !items.is_empty() {
                return fail("no item", format!("{} items", items.len()));
            }
            match end {
                Frame::StreamFin { status: Status::OK, .. } => fail("a non-OK terminal", describe(&end)),
                _ => Ok(()),
            }
        },
    );
    b.d("10.7", "the implementation returns credit as BIDI consumes items", "When the application has consumed every item delivered on a stream, the receiver MUST send all credit pending", |c| {
        c.open()?;
        let n = c.p(5) as i64;
        let id = open_stream(c, method::BIDI, b"", false)?;
        let mut window = n;
        let mut sent = 0;
        let total = (3 * n).min(200);
        let end = Instant::now() + Duration::from_secs(5);
        while sent < total {
            if window > 0 {
                c.send(&[Frame::StreamData { flags: 0, id, total_len: None, payload: b"k" }])?;
                window -= 1;
                sent += 1;
                continue;
            }
            if Instant::now() > end {
                return fail(format!("credit for {total} items"), format!("{sent} items sent"));
            }
            let o = c.expect("STREAM_CREDIT", T, |f| matches!(f, Frame::StreamCredit { .. }))?;
            if let Frame::StreamCredit { msgs, .. } = o.frame() {
                window += i64::from(msgs);
            }
        }
        c.send(&[Frame::StreamFin { id, status: Status::OK }])?;
        let (items, _) = drain_stream(c, id, Duration::from_secs(5))?;
        if items.len() as i64 == total { Ok(()) } else { fail(format!("{total} echoes"), items.len().to_string()) }
    });
    b.d("10.7", "the implementation returns connection credit for consumed items", "for each consumed item 1 item and L bytes on the stream (STREAM_CREDIT) and L bytes on the connection (CONN_CREDIT)", |c| {
        c.open()?;
        let cb = c.p(7) as usize;
        if cb > 1 << 20 {
            return skip("conn_credit_bytes too large");
        }
        let sb = (c.p(6) as usize).min(4000);
        let id = open_stream(c, method::BIDI, b"", false)?;
        let item = bigbuf(sb.min(c.peer_frame() - 16));
        let mut conn = cb as i64;
        let mut stream_b = c.p(6) as i64;
        let mut stream_m = c.p(5) as i64;
        let mut sent = 0usize;
        let want = 2 * cb / item.len().max(1) + 1;
        let deadline = Instant::now() + Duration::from_secs(5);
        while sent < want {
            let l = item.len() as i64;
            if conn >= l && stream_b >= l && stream_m >= 1 {
                c.send(&[Frame::StreamData { flags: 0, id, total_len: None, payload: &item }])?;
                conn -= l;
                stream_b -= l;
                stream_m -= 1;
                sent += 1;
                continue;
            }
            if Instant::now() > deadline {
                return fail("credit returned", format!("{sent} of {want} items sent"));
            }
            let o = c.expect("credit", T, |f| matches!(f, Frame::StreamCredit { .. } | Frame::ConnCredit { .. }))?;
            match o.frame() {
                Frame::StreamCredit { msgs, bytes, .. } => {
                    stream_m += i64::from(msgs);
                    stream_b += i64::from(bytes);
                }
                Frame::ConnCredit { bytes } => conn += i64::from(bytes),
                _ => {}
            }
        }
        c.send(&[Frame::StreamReset { id, status: Status::CANCELLED }])?;
        c.alive()
    });

    b.d(
        "11",
        "a message of exactly max_message_size is accepted",
        "the peer MUST accept all traffic that stays within its announced limits",
        |c| {
            c.open()?;
            let n = c.p(2) as usize;
            if n > 1 << 20 {
                return skip(format!("max_message_size {n} is too large to send quickly"));
            }
            let big = bigbuf(n);
            let (s, p) = c.call(method::ECHO, &big)?;
            status_is("RESPONSE", s, Status::OK)?;
            if p.len() == n {
                Ok(())
            } else {
                fail(format!("{n} bytes"), p.len().to_string())
            }
        },
    );
    b.d("11", "a CLOSE message of 1024 bytes is accepted", "CLOSE / GOAWAY `message` | 1024 bytes", |c| {
        c.open()?;
        let m = vec![b'm'; 1024];
        c.send(&[Frame::Close { status: Status::OK, message: &m }])?;
        c.expect_eof_without_close()
    });
    b.fatal("11", "a CLOSE message of 1025 bytes", "CLOSE / GOAWAY `message` | 1024 bytes | fixed | decoder ... `FieldTooLong`, CLOSE FRAME_ENCODING_ERROR", {
        let mut v = vec![0x02, 0x44, 0x04, 0x00, 0x44, 0x01];
        v.extend(vec![b'm'; 1025]);
        v
    }, FEE);
    b.first(
        "11",
        "a HELLO name of 256 bytes",
        "HELLO `name` | 255 bytes | fixed | decoder (§4.1) | `FieldTooLong`",
        {
            let mut body = vec![0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x00, 0x41, 0x00];
            body.extend(vec![b'n'; 256]);
            body.extend_from_slice(&[0, 0, 0]);
            let mut v = vec![0x01, 0x41, body.len() as u8];
            v.extend(body);
            v
        },
        FEE,
    );
    b.first(
        "11",
        "a HELLO session of 65 bytes",
        "HELLO `session` | 64 bytes | fixed | decoder",
        {
            let mut body = vec![0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x01, 0x00, 0x00, 0x40, 0x41];
            body.extend(vec![b's'; 65]);
            body.push(0);
            let mut v = vec![0x01, 0x40, body.len() as u8];
            v.extend(body);
            v
        },
        FEE,
    );
}

fn sec12_15(b: &mut B) {
    b.d(
        "12.1",
        "a fatal error closes with CLOSE naming the status and ends the transport",
        "the detecting peer follows §7.8.2 (CLOSE with the status below, then close the transport)",
        |c| {
            c.open()?;
            c.send_bytes(&call(1, method::ECHO, b""))?;
            c.expect_close(PE)?;
            match c.w().recv(T) {
                Recv::Eof | Recv::Failed(_) => Ok(()),
                r => fail("the end of the transport", format!("{r:?}")),
            }
        },
    );
    b.d(
        "12.2",
        "an exchange error does not end the connection",
        "A receiver MUST NOT close the connection because of an exchange status, whatever its value",
        |c| {
            c.open()?;
            let (s, _) = c.call(method::STATUS, &be(22))?;
            status_is("RESPONSE", s, Status::INTERNAL)?;
            c.call_ok(method::ECHO, b"still")?;
            Ok(())
        },
    );
    b.d(
        "12.5",
        "a thousand tiny extension frames are processed",
        "every frame is processed in bounded time and memory",
        |c| {
            c.open()?;
            let mut bytes = Vec::new();
            for _ in 0..1000 {
                bytes.extend_from_slice(&[0x80, 0x00]);
            }
            c.send_bytes(&bytes)?;
            match c.alive() {
                Ok(()) => Ok(()),
                Err(Fail::Failed { actual, .. }) if actual.contains("ENHANCE_YOUR_CALM") => Ok(()),
                Err(e) => Err(e),
            }
        },
    );

    sec13::sec13(b);
    sec14::sec14(b);

    for t in [0x00u8, 0x08, 0x0f, 0x15, 0x17, 0x1f, 0x21, 0x40, 0x7f] {
        b.fatal("15.1", &format!("reserved frame type 0x{t:02x}"), "A v1 receiver treats every reserved type (0x00, 0x07..=0x0F, 0x15..=0x17, 0x1F, 0x21..=0x7F) as the decode error `UnknownFrameType`", vec![t, 0x01, 0x00], FEE);
    }
    for t in [0x81u8, 0xc0, 0xfe] {
        b.ignored(
            "15.1",
            &format!("extension frame type 0x{t:02x} is skipped"),
            "`0x80`..`0xFF` | extension frames: skipped by receivers that do not implement them",
            vec![t, 0x03, 0x01, 0x02, 0x03],
        );
    }
    for bit in [0x04u8, 0x08, 0x40, 0x80] {
        b.fatal(
            "15.2",
            &format!("reserved flag bit 0x{bit:02x} on CALL"),
            "`0x04`..`0x80` | reserved, MUST be 0 (`InvalidFlags`)",
            vec![0x10, 0x05, bit, 0x00, 0x64, 0x01, 0x00],
            FEE,
        );
    }
    b.first(
        "15.3",
        "HELLO flags with bit 0x80",
        "all other bits | reserved, MUST be 0 (`InvalidFlags`, FRAME_ENCODING_ERROR)",
        vec![0x01, 0x0c, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x40, 0x80, 0x00, 0x00, 0x00, 0x00],
        FEE,
    );
    for id in [12u64, 16383, 1 << 20] {
        b.d(
            "15.4",
            &format!("unknown parameter id {id} is ignored"),
            "Receivers ignore every parameter id they do not know",
            move |c| {
                c.open_with(&[(id, 7)])?;
                c.call_ok(method::ECHO, b"")?;
                Ok(())
            },
        );
    }
    b.d("15.6", "protocol version 2 alone is refused", "2..=2^32-1 | future versions", |c| {
        c.transport()?;
        let h = hello_bytes(2, 2, 0, c.name.as_bytes(), b"", &[]);
        c.send_bytes(&h)?;
        c.expect_close(Status::INCOMPATIBLE_VERSION)
    });
}
