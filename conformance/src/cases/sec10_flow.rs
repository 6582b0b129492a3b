//! §10 Flow control and concurrency: per-stream and connection credit, consuming and checking it,
//! concurrency limits, the largest item, returning credit.

use std::time::Instant;

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, fatal, End, Items, Want};

const WINDOW_MAX: &str = "if any window would then exceed **2^32-1**";

fn hold() -> Vec<u8> {
    stream(0, method::HOLD_STREAM, b"", false)
}

fn count(id: u64, n: u32) -> Vec<u8> {
    stream(id, method::COUNT, &count_init(n, None), true)
}

pub(super) fn cases() -> Vec<Case> {
    vec![
        // §10.2 Per-stream credit
        dial(
            "10.2/1",
            "the implementation respects the runner's per-stream item window",
            "A sender MUST NOT send the first frame of an item unless item window ≥ 1",
            vec![
                OpenWith(&[(5, 2)]),
                Send(count(0, 6)),
                Expect(Want::StreamData),
                Expect(Want::StreamData),
                Absent("a third item without credit", Want::StreamData, Q),
                Send(e(Frame::StreamCredit { id: 0, msgs: 4, bytes: 100 })),
                Stream(0, Items::Count(4), End::FinOk),
            ],
        ),
        dial(
            "10.2/2",
            "the implementation respects the runner's per-stream byte window",
            "byte window ≥ L",
            vec![
                OpenWith(&[(6, 10), (7, 10000)]),
                Send(count(0, 6)),
                Expect(Want::StreamData),
                Expect(Want::StreamData),
                Absent("an item beyond the byte window of 10", Want::StreamData, Q),
                Send(e(Frame::StreamCredit { id: 0, msgs: 0, bytes: 100 })),
                Stream(0, Items::Count(4), End::FinOk),
            ],
        ),
        // §10.3 Connection credit
        dial(
            "10.3/1",
            "the implementation respects the runner's connection window across streams",
            "connection window ≥ L",
            vec![
                OpenWith(&[(6, 8), (7, 8)]),
                Send(count(0, 2)),
                Send(count(2, 2)),
                Expect(Want::StreamData),
                Expect(Want::StreamData),
                Absent("an item beyond the connection window of 8", Want::StreamData, Q),
                Send(e(Frame::ConnCredit { bytes: 8 })),
                Expect(Want::StreamData),
                Expect(Want::StreamData),
            ],
        ),
        dial(
            "10.3/2",
            "connection credit of an item for a closed stream is returned",
            "Every STREAM_DATA item consumes connection credit, including items ... for a stream that is already closed at the receiver ... The receiver MUST return the connection credit of every discarded item",
            vec![
                Open,
                Send(count(0, 0)),
                Stream(0, Items::Any, End::FinOk),
                Send(e(item(0, &bigbuf(100)))),
                ConnCreditBack(100),
            ],
        ),
        dial(
            "10.3/3",
            "connection credit of an item for a stream refused by GOAWAY is returned",
            "STREAM_DATA for it still consumes and returns connection credit (§10.3)",
            vec![
                Open,
                Send(sleep(0, 1000)),
                Send(call(2, method::GOAWAY, b"")),
                Expect(Want::GoAway),
                Send(enc(&[Frame::StreamOpen(req(4, method::BIDI, b"")), item(4, &bigbuf(50))])),
                ConnCreditBack(50),
            ],
        ),
        // §10.4 Consuming and checking credit
        dial_code(
            "10.4/1",
            "an item beyond the implementation's item window",
            "An item that exceeds the stream item window ... is a FLOW_CONTROL_ERROR",
            beyond_item_window,
        ),
        dial_code(
            "10.4/2",
            "an item beyond the implementation's byte window",
            "An item that exceeds ... the stream byte window ... is a FLOW_CONTROL_ERROR",
            beyond_byte_window,
        ),
        dial_code(
            "10.4/3",
            "items beyond the implementation's connection window",
            "An item that exceeds ... the connection window is a FLOW_CONTROL_ERROR",
            beyond_connection_window,
        ),
        dial(
            "10.4/4",
            "STREAM_CREDIT raising an item window above 2^32-1",
            "if any window would then exceed **2^32-1**, it closes the connection with FLOW_CONTROL_ERROR",
            vec![Open, Send(hold()), Send(e(Frame::StreamCredit { id: 0, msgs: u32::MAX, bytes: 0 })), Close(FCE)],
        ),
        dial(
            "10.4/5",
            "STREAM_CREDIT raising a byte window above 2^32-1",
            WINDOW_MAX,
            vec![Open, Send(hold()), Send(e(Frame::StreamCredit { id: 0, msgs: 0, bytes: u32::MAX })), Close(FCE)],
        ),
        fatal(
            "10.4/6",
            "CONN_CREDIT raising the connection window above 2^32-1",
            "On receiving STREAM_CREDIT or CONN_CREDIT ... if any window would then exceed **2^32-1**",
            e(Frame::ConnCredit { bytes: u32::MAX }),
            FCE,
        ),
        dial(
            "10.4/7",
            "STREAM_CREDIT on a stream whose sending direction has ended is still checked",
            "This check is made for every STREAM_CREDIT on an open stream, even one whose sending direction has already ended",
            vec![
                Open,
                Send(hold()),
                Send(e(Frame::StreamFin { id: 0, status: OK })),
                Send(e(Frame::StreamCredit { id: 0, msgs: u32::MAX, bytes: 0 })),
                Close(FCE),
            ],
        ),
        dial_code(
            "10.4/8",
            "items exactly filling the implementation's windows are accepted",
            "Every value that a peer announces is a promise: the peer MUST accept all traffic that stays within its announced limits",
            filling_the_item_window,
        ),
        dial(
            "10.4/9",
            "an item of length 0 consumes one item and no bytes",
            "An item of length 0 consumes 1 item and 0 bytes",
            vec![
                Open,
                Send(stream(0, method::BIDI, b"", false)),
                Send(enc(&[item(0, b""), Frame::StreamFin { id: 0, status: OK }])),
                Stream(0, Items::Exactly(vec![vec![]]), End::FinOk),
            ],
        ),
        // §10.5 Concurrency limits
        dial_code(
            "10.5/1",
            "one call beyond max_concurrent_calls",
            "A responder that receives an opening frame while its count for that kind already equals its limit closes the connection with LIMIT_EXCEEDED",
            one_call_too_many,
        ),
        dial_code(
            "10.5/2",
            "exactly max_concurrent_calls calls are accepted",
            "the peer MUST accept all traffic that stays within its announced limits",
            calls_at_the_limit,
        ),
        dial_code(
            "10.5/3",
            "one stream beyond max_concurrent_streams",
            "Beyond its `max_concurrent_streams` it closes the connection with LIMIT_EXCEEDED",
            one_stream_too_many,
        ),
        dial_code(
            "10.5/4",
            "notifications count against max_concurrent_calls",
            "Calls plus reliable notifications the peer may have open toward it at once",
            notify_beyond_the_call_limit,
        ),
        dial_code(
            "10.5/5",
            "a stream finished in both directions frees its slot",
            "A peer frees the stream ... when it has both sent and received a terminal",
            finished_streams_free_their_slots,
        ),
        dial(
            "10.5/6",
            "the implementation does not call a runner announcing max_concurrent_calls 0",
            "0: the peer may not call it",
            vec![
                OpenWith(&[(3, 0)]),
                Callback(kind::CALL, 300, vec![]),
                Absent("CALL toward a peer that allows none", Want::Call, 500),
                CallbackRefused,
            ],
        ),
        dial(
            "10.5/7",
            "the implementation does not open streams toward a runner announcing max_concurrent_streams 0",
            "0: the peer may not open streams",
            vec![
                OpenWith(&[(4, 0)]),
                Callback(kind::STREAM, 300, vec![]),
                Absent("STREAM_OPEN toward a peer that allows none", Want::StreamOpen, 500),
                CallbackRefused,
            ],
        ),
        dial(
            "10.5/8",
            "CALLBACK with no deadline toward a runner announcing max_concurrent_calls 0 is answered at once",
            "It MUST NOT wait for a slot that can never come — a limit of 0 — whatever `timeout_ms` ... it answers CALLBACK with OK, the inner status and an empty inner payload",
            vec![
                OpenWith(&[(3, 0)]),
                Callback(kind::CALL, 0, vec![]),
                Absent("CALL toward a peer that allows none", Want::Call, 300),
                CallbackRefused,
            ],
        ),
        // §10.6 The largest item
        dial(
            "10.6/1",
            "an item larger than the runner's stream_credit_bytes is refused locally",
            "A sender MUST refuse such an item locally (TOO_LARGE)",
            vec![
                OpenWith(&[(6, 16)]),
                Send(stream(0, method::COUNT, &count_init(1, Some(100)), true)),
                Stream(0, Items::Exactly(vec![]), End::NotOk),
            ],
        ),
        dial(
            "10.6/2",
            "an item larger than the runner's max_message_size is refused locally",
            "as well as an item longer than the receiver's `max_message_size`",
            vec![
                OpenWith(&[(2, 4096), (6, 100_000), (7, 100_000)]),
                Send(stream(0, method::COUNT, &count_init(1, Some(5000)), true)),
                Stream(0, Items::Exactly(vec![]), End::NotOk),
            ],
        ),
        // §10.7 When to return credit
        dial_code(
            "10.7/1",
            "the implementation returns credit as BIDI consumes items",
            "When the application has consumed every item delivered on a stream, the receiver MUST send all credit pending",
            stream_credit_returned,
        ),
        dial_code(
            "10.7/2",
            "the implementation returns connection credit for consumed items",
            "for each consumed item 1 item and L bytes on the stream (STREAM_CREDIT) and L bytes on the connection (CONN_CREDIT)",
            connection_credit_returned,
        ),
    ]
}

/// A STREAM_DATA item of the stream `id` as a message (fragmented if needed).
fn data_msg(id: u64, payload: &[u8]) -> Request<'_> {
    Request { flags: 0, id, module: 0, method: 0, budget_us: 0, total_len: None, payload }
}

/// 10.4/1: stream_credit_msgs + 1 empty items in one write.
fn beyond_item_window(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(5);
    if n > 1000 {
        return skip(format!("stream_credit_msgs {n} is too large to exhaust"));
    }
    let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
    let bytes: Vec<u8> = (0..=n).flat_map(|_| e(item(id, b""))).collect();
    c.send_bytes(&bytes)?;
    c.expect_close(FCE)
}

/// 10.4/2: one item of stream_credit_bytes + 1 bytes.
fn beyond_byte_window(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(6) as usize;
    if n > 1 << 20 {
        return skip(format!("stream_credit_bytes {n} is too large"));
    }
    let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
    let big = bigbuf(n + 1);
    c.send_msg(ty::STREAM_DATA, data_msg(id, &big))?;
    c.expect_close(FCE)
}

/// 10.4/3: one full stream window on each of enough streams to exceed the connection window.
fn beyond_connection_window(c: &mut Ctx) -> R {
    c.open()?;
    let (sb, cb, ms) = (c.p(6) as usize, c.p(7) as usize, c.p(4) as usize);
    let streams = cb / sb + 1;
    if streams > ms || cb > 1 << 20 {
        return skip(format!(
            "needs conn_credit_bytes / stream_credit_bytes < max_concurrent_streams ({cb} / {sb}, {ms})"
        ));
    }
    let item = bigbuf(sb);
    for _ in 0..streams {
        let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
        c.send_msg(ty::STREAM_DATA, data_msg(id, &item))?;
    }
    c.expect_close(FCE)
}

/// 10.4/8: exactly stream_credit_msgs empty items in one write.
fn filling_the_item_window(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(5);
    if n > 1000 {
        return skip("stream_credit_msgs too large");
    }
    let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
    let bytes: Vec<u8> = (0..n).flat_map(|_| e(item(id, b""))).collect();
    c.send_bytes(&bytes)?;
    c.alive()
}

/// 10.5/1: max_concurrent_calls + 1 SLEEP calls in one write.
fn one_call_too_many(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(3);
    if n > 256 {
        return skip(format!("max_concurrent_calls {n} is too large"));
    }
    let bytes: Vec<u8> = (0..=n).flat_map(|i| sleep(i * 2, 3000)).collect();
    c.send_bytes(&bytes)?;
    c.expect_close(LIM)
}

/// 10.5/2: exactly max_concurrent_calls SLEEP calls in one write, all answered.
fn calls_at_the_limit(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(3);
    if n > 256 {
        return skip(format!("max_concurrent_calls {n} is too large"));
    }
    let bytes: Vec<u8> = (0..n).flat_map(|i| sleep(i * 2, 100)).collect();
    c.send_bytes(&bytes)?;
    for i in 0..n {
        c.response_in(i * 2, Duration::from_secs(10))?;
    }
    Ok(())
}

/// 10.5/3: max_concurrent_streams + 1 HOLD_STREAMs in one write.
fn one_stream_too_many(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(4);
    if n > 256 {
        return skip(format!("max_concurrent_streams {n} is too large"));
    }
    let bytes: Vec<u8> =
        (0..=n).flat_map(|i| e(Frame::StreamOpen(req(i * 2, method::HOLD_STREAM, b"")))).collect();
    c.send_bytes(&bytes)?;
    c.expect_close(LIM)
}

/// 10.5/4: max_concurrent_calls SLEEP calls and a NOTIFY in one write.
fn notify_beyond_the_call_limit(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(3);
    if n > 256 {
        return skip(format!("max_concurrent_calls {n} is too large"));
    }
    let mut bytes: Vec<u8> = (0..n).flat_map(|i| sleep(i * 2, 3000)).collect();
    bytes.extend(notify(n * 2, method::RECORD, b""));
    c.send_bytes(&bytes)?;
    c.expect_close(LIM)
}

/// 10.5/5: max_concurrent_streams + 2 streams, one after the other, each finished both ways.
fn finished_streams_free_their_slots(c: &mut Ctx) -> R {
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
}

/// 10.7/1: items sent to BIDI as fast as the item window allows, for 3 windows (at most 200):
/// the implementation must keep returning item credit.
fn stream_credit_returned(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(5) as i64;
    let id = open_stream(c, method::BIDI, b"", false)?;
    let mut window = n;
    let mut sent = 0;
    let total = (3 * n).min(200);
    let end = Instant::now() + Duration::from_secs(5);
    while sent < total {
        if window > 0 {
            c.send(&[item(id, b"k")])?;
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
    c.send(&[Frame::StreamFin { id, status: OK }])?;
    let (items, _) = drain_stream(c, id, Duration::from_secs(5))?;
    if items.len() as i64 == total {
        Ok(())
    } else {
        fail(format!("{total} echoes"), items.len().to_string())
    }
}

/// 10.7/2: items sent to BIDI within every window, for twice the connection window: the
/// implementation must return stream and connection credit.
fn connection_credit_returned(c: &mut Ctx) -> R {
    c.open()?;
    let cb = c.p(7) as usize;
    if cb > 1 << 20 {
        return skip("conn_credit_bytes too large");
    }
    let sb = (c.p(6) as usize).min(4000);
    let id = open_stream(c, method::BIDI, b"", false)?;
    let payload = bigbuf(sb.min(c.peer_frame() - 16));
    let mut conn = cb as i64;
    let mut stream_b = c.p(6) as i64;
    let mut stream_m = c.p(5) as i64;
    let mut sent = 0usize;
    let want = 2 * cb / payload.len().max(1) + 1;
    let deadline = Instant::now() + Duration::from_secs(5);
    while sent < want {
        let l = payload.len() as i64;
        if conn >= l && stream_b >= l && stream_m >= 1 {
            c.send(&[item(id, &payload)])?;
            conn -= l;
            stream_b -= l;
            stream_m -= 1;
            sent += 1;
            continue;
        }
        if Instant::now() > deadline {
            return fail("credit returned", format!("{sent} of {want} items sent"));
        }
        let o =
            c.expect("credit", T, |f| matches!(f, Frame::StreamCredit { .. } | Frame::ConnCredit { .. }))?;
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
}
