//! §7.6–§7.8 The connection's own exchanges: ping, keepalive and idle timeout; GOAWAY and drain;
//! CLOSE and connection errors.

use std::time::Instant;

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, listen, listen_code, Ans, Step, Want};

const NO_ANSWER: &str = "A peer that receives CLOSE ... does not answer with a CLOSE of its own";
const BELOW_BOUND: &str =
    "Every exchange the receiver opened with id **< bound** reached the sender and is processed normally";

fn goaway(bound: u64) -> Vec<u8> {
    e(Frame::GoAway { bound, status: OK, message: b"" })
}

/// A call in flight (SLEEP `ms` as id 0), then the GOAWAY method (id 2): the implementation sends
/// GOAWAY and drains.
fn draining(ms: u32) -> Vec<Step> {
    vec![Open, Send(sleep(0, ms)), Send(call(2, method::GOAWAY, b"")), Expect(Want::GoAway)]
}

pub(super) fn cases() -> Vec<Case> {
    vec![
        // §7.6 Ping, keepalive and idle timeout
        listen(
            "7.6/1",
            "the dialer answers the acceptor's PING",
            "A peer that receives PING(data) MUST answer with PONG(data)",
            vec![Open, Alive],
        ),
        listen_code(
            "7.6/2",
            "the dialer sends keepalive PINGs",
            "A peer whose own `keepalive_interval_ms` K is not 0 sends a PING",
            keepalive_ping,
        ),
        listen_code(
            "7.6/3",
            "the dialer closes with IDLE_TIMEOUT when nothing arrives",
            "closes the connection with IDLE_TIMEOUT when I milliseconds have passed since it last received any bytes",
            dialer_idle_timeout,
        ),
        dial_code(
            "7.6/4",
            "many PINGs are each answered, or the peer is told to calm down",
            "If a PING arrives while `max_queued_pongs` ... PONGs are queued, the peer closes the connection with ENHANCE_YOUR_CALM",
            many_pings,
        ),
        dial_code(
            "7.6/5",
            "the implementation sends a keepalive PING when the runner is silent",
            "A peer whose own `keepalive_interval_ms` K is not 0 sends a PING when K milliseconds have passed since it last received any bytes",
            keepalive_ping,
        ),
        dial_code(
            "7.6/6",
            "the implementation closes with IDLE_TIMEOUT when nothing arrives",
            "A peer whose own `idle_timeout_ms` I is not 0 closes the connection with IDLE_TIMEOUT (in a resumable session it may instead just drop the transport: §13.2)",
            acceptor_idle_timeout,
        ),
        dial_code(
            "7.6/7",
            "answered keepalives keep an idle connection open past the idle timeout",
            "A peer SHOULD configure K < I ... so that its own keepalive PING gets an answer before its idle timer fires",
            keepalives_keep_it_open,
        ),
        dial(
            "7.6/8",
            "PING is answered while draining",
            "PING and PONG may be sent only after the handshake (§5.2), including while draining (§7.7)",
            [draining(500), vec![Alive]].concat(),
        ),
        dial_code(
            "7.6/9",
            "100 PINGs in one write are all answered",
            "a receiver MUST answer every PING of a burst of up to **1,000** PINGs, however they arrive (one write or many)",
            a_burst_of_pings,
        ),
        // §7.7 GOAWAY and drain
        listen(
            "7.7/1",
            "GOAWAY from the acceptor: the dialer's calls below the bound still complete",
            BELOW_BOUND,
            vec![
                Open,
                Callback(kind::CALL, 2000, vec![]),
                Opened(kind::CALL),
                Answer(vec![Ans::GoAway(2)]),
                Answer(vec![Ans::Response(OK, b"fine".into())]),
                CallbackAnswersWith(OK, b"fine".into()),
            ],
        ),
        dial(
            "7.7/2",
            "GOAWAY from the implementation: bound = highest received id + 2",
            "The sender sets `bound` to the highest id it has received in an opening frame from the receiver plus 2",
            vec![
                Open,
                Send(call(0, method::ECHO, b"")),
                Replied(0),
                Send(call(2, method::GOAWAY, b"")),
                Expect(Want::GoAwayBound(4)),
            ],
        ),
        dial(
            "7.7/3",
            "after GOAWAY a new CALL is refused with RESPONSE(UNAVAILABLE)",
            "a CALL or NOTIFY with RESPONSE(UNAVAILABLE, empty payload)",
            [draining(500), vec![Send(call(4, method::ECHO, b"")), Reply(4, Status::UNAVAILABLE)]].concat(),
        ),
        dial(
            "7.7/4",
            "after GOAWAY a new STREAM_OPEN is refused with STREAM_RESET(UNAVAILABLE)",
            "a STREAM_OPEN with STREAM_RESET(UNAVAILABLE)",
            [
                draining(500),
                vec![
                    Send(stream(4, method::COUNT, &be(1), true)),
                    Expect(Want::ResetFirst(4, Status::UNAVAILABLE)),
                ],
            ]
            .concat(),
        ),
        dial(
            "7.7/5",
            "after GOAWAY the exchanges in flight finish, then CLOSE(OK)",
            "When no exchange is open at it in either direction, sends CLOSE(OK, empty message)",
            [draining(300), vec![Reply(0, OK), Close(OK)]].concat(),
        ),
        dial(
            "7.7/6",
            "the drain timeout ends a GOAWAY with CLOSE(DEADLINE_EXCEEDED)",
            "If exchanges are still open when its **drain timeout** ... expires, closes the connection with CLOSE(DEADLINE_EXCEEDED)",
            [draining(60_000), vec![CloseWithin(&[Status::DEADLINE_EXCEEDED], 35_000)]].concat(),
        ),
        dial(
            "7.7/7",
            "the implementation does not open exchanges after receiving GOAWAY",
            "MUST NOT open new exchanges on this connection (local error \"going away\")",
            vec![
                Open,
                Send(goaway(1)),
                Callback(kind::CALL, 500, vec![]),
                Replied(0),
                Absent("CALL from the implementation", Want::Call, Q),
            ],
        ),
        dial(
            "7.7/8",
            "GOAWAY refusing the implementation's open call resolves it UNAVAILABLE",
            "Resolves every exchange it opened with id ≥ bound at once as UNAVAILABLE",
            vec![
                Open,
                Callback(kind::CALL, 3000, vec![]),
                Opened(kind::CALL),
                Answer(vec![Ans::GoAway(0)]),
                CallbackAnswers(Status::UNAVAILABLE),
                Answer(vec![Ans::Response(Status::UNAVAILABLE, vec![])]),
                Alive,
            ],
        ),
        dial(
            "7.7/9",
            "a later GOAWAY with a greater bound",
            "A later GOAWAY MUST NOT carry a greater `bound` than an earlier one from the same peer; a receiver that sees a greater value closes the connection with PROTOCOL_ERROR",
            vec![Open, Send([goaway(1), goaway(5)].concat()), Close(PE)],
        ),
        dial(
            "7.7/10",
            "a later GOAWAY with the same bound is accepted",
            "A peer MAY send GOAWAY more than once",
            vec![
                Open,
                Send(enc(&[
                    Frame::GoAway { bound: 1, status: OK, message: b"" },
                    Frame::GoAway { bound: 1, status: Status::ENHANCE_YOUR_CALM, message: b"again" },
                ])),
                Alive,
            ],
        ),
        dial(
            "7.7/11",
            "the implementation answers calls opened below the bound after receiving GOAWAY",
            "Continues all other exchanges (ids < bound, and all exchanges opened by the GOAWAY sender) normally",
            vec![Open, Send(sleep(0, 200)), Send(goaway(1)), Reply(0, OK)],
        ),
        dial(
            "7.7/12",
            "a GOAWAY bound of the receiver's wrong parity is not an error",
            "A `bound` of the other parity is not an error: the receiver MUST NOT close the connection for it",
            vec![Open, Send(sleep(0, 200)), Send(goaway(2)), Reply(0, OK), Alive],
        ),
        // §7.8 CLOSE and connection errors
        listen(
            "7.8/1",
            "CLOSE(OK) from the acceptor ends the connection without an answer",
            NO_ANSWER,
            vec![Open, Send(e(Frame::Close { status: OK, message: b"" })), Eof],
        ),
        dial(
            "7.8/2",
            "CLOSE with an unknown status ends the connection",
            "An unknown status in CLOSE still ends the connection",
            vec![Open, Send(e(Frame::Close { status: Status(1000), message: b"" })), Eof],
        ),
        dial(
            "7.8/3",
            "bytes after a CLOSE are ignored",
            "ignores any bytes that follow the CLOSE, and closes the transport",
            vec![Open, Send([e(Frame::Close { status: OK, message: b"" }), vec![0x07, 0x00, 0x00, 0x00]].concat()), Eof],
        ),
        dial(
            "7.8/4",
            "after a connection error: CLOSE, then the transport ends",
            "send CLOSE with the status given by this document ... close the transport",
            vec![Open, Send(vec![0x07, 0x01, 0x00]), Close(FEE), Ended],
        ),
        dial_code(
            "7.8/5",
            "frames after a fatal error in the same write are not acted upon",
            "stop processing input from the connection (no later frame is acted upon)",
            nothing_after_a_fatal_error,
        ),
        dial(
            "7.8/6",
            "the implementation's open calls resolve UNAVAILABLE when the runner closes",
            "its own calls and notifications fail with UNAVAILABLE",
            vec![
                Open,
                Callback(kind::CALL, 3000, vec![]),
                Opened(kind::CALL),
                Send(e(Frame::Close { status: Status::UNAVAILABLE, message: b"runner closes" })),
                Eof,
            ],
        ),
        // §7.9 Dispatch: module, method and exchange kind
        dial(
            "7.9/1",
            "STREAM_OPEN to a unary method is answered STREAM_RESET(UNIMPLEMENTED)",
            "UNIMPLEMENTED (21): the method is served, but as another kind of exchange",
            vec![
                Open,
                Send(stream(0, method::ECHO, b"", true)),
                Expect(Want::Reset(0, Status::UNIMPLEMENTED)),
                Alive,
            ],
        ),
        dial(
            "7.9/2",
            "a CALL to a stream method is answered UNIMPLEMENTED",
            "a CALL or NOTIFY to a method served as a stream",
            vec![Open, Send(call(0, method::COUNT, &count_init(1, None))), Reply(0, Status::UNIMPLEMENTED), Alive],
        ),
        dial(
            "7.9/3",
            "a CALL to a method served as a notification is answered UNIMPLEMENTED",
            "a CALL to a method served only as a notification (NOTIFY and SIGNAL)",
            vec![Open, Send(call(0, method::RECORD, b"x")), Reply(0, Status::UNIMPLEMENTED), Alive],
        ),
        dial(
            "7.9/4",
            "a NOTIFY to a unary method is answered UNIMPLEMENTED",
            "one served as a call accepts only CALL",
            vec![Open, Send(notify(0, method::ECHO, b"")), Reply(0, Status::UNIMPLEMENTED), Alive],
        ),
    ]
}

/// 7.6/2 and 7.6/5: with PINGs not answered, the implementation sends one within its
/// keepalive_interval_ms (1..=5000) plus 1.5 s.
fn keepalive_ping(c: &mut Ctx) -> R {
    c.open()?;
    let k = c.p(8);
    if k == 0 || k > 5000 {
        return skip(format!("keepalive_interval_ms is {k} (needs 1..=5000)"));
    }
    c.auto_pong = false;
    c.expect("a keepalive PING", Duration::from_millis(k + 1500), |f| matches!(f, Frame::Ping(_)))?;
    Ok(())
}

/// 7.6/3: with PINGs not answered, the dialer closes with IDLE_TIMEOUT within its idle_timeout_ms
/// (1..=5000) plus 1.5 s.
fn dialer_idle_timeout(c: &mut Ctx) -> R {
    c.open()?;
    let i = c.p(9);
    if i == 0 || i > 5000 {
        return skip(format!("idle_timeout_ms is {i} (needs 1..=5000)"));
    }
    c.auto_pong = false;
    c.expect_close_in(&[Status::IDLE_TIMEOUT], Duration::from_millis(i + 1500))
}

/// 7.6/6: the same for the acceptor, which may drop the transport instead when it offered
/// session resumption (§13.2).
fn acceptor_idle_timeout(c: &mut Ctx) -> R {
    c.open()?;
    let i = c.p(9);
    if i == 0 || i > 5000 {
        return skip(format!("idle_timeout_ms is {i} (needs 1..=5000)"));
    }
    c.auto_pong = false;
    c.expect_idle_end(Duration::from_millis(i + 1500))
}

/// 7.6/4: 200 PINGs in one write: 200 PONGs, or CLOSE(ENHANCE_YOUR_CALM).
fn many_pings(c: &mut Ctx) -> R {
    c.open()?;
    let bytes: Vec<u8> = (0..200u64).flat_map(|i| e(Frame::Ping(i.to_be_bytes()))).collect();
    c.send_bytes(&bytes)?;
    let mut n = 0;
    let end = Instant::now() + T;
    while n < 200 {
        match c.w().recv(end.saturating_duration_since(Instant::now())) {
            Recv::Frame(o) => match o.frame() {
                Frame::Pong(_) => n += 1,
                Frame::Close { status: Status::ENHANCE_YOUR_CALM, .. } => return Ok(()),
                Frame::Close { .. } => return fail("PONGs or CLOSE ENHANCE_YOUR_CALM", describe(&o.frame())),
                _ => {}
            },
            r => return fail("200 PONGs", format!("{n} PONGs, then {r:?}")),
        }
    }
    Ok(())
}

/// 7.6/9: 100 PINGs in one write; every one is answered with its PONG, in order.
fn a_burst_of_pings(c: &mut Ctx) -> R {
    c.open()?;
    let bytes: Vec<u8> = (0..100u64).flat_map(|i| e(Frame::Ping(i.to_be_bytes()))).collect();
    c.send_bytes(&bytes)?;
    let end = Instant::now() + T;
    let mut next = 0u64;
    while next < 100 {
        match c.w().recv(end.saturating_duration_since(Instant::now())) {
            Recv::Frame(o) => match o.frame() {
                Frame::Pong(d) if d == next.to_be_bytes() => next += 1,
                Frame::Pong(d) => {
                    return fail(format!("PONG {next}"), format!("PONG {}", u64::from_be_bytes(d)))
                }
                f @ Frame::Close { .. } => return fail(format!("PONG {next} of 100"), describe(&f)),
                _ => {}
            },
            r => return fail("100 PONGs", format!("{next} PONGs, then {r:?}")),
        }
    }
    c.alive()
}

/// 7.6/7: the runner answers PINGs and sends nothing else for the idle timeout plus 0.5 s.
fn keepalives_keep_it_open(c: &mut Ctx) -> R {
    c.open()?;
    let (k, i) = (c.p(8), c.p(9));
    if i == 0 || i > 5000 || k == 0 || k >= i {
        return skip(format!("needs 0 < keepalive ({k}) < idle timeout ({i}) ≤ 5000"));
    }
    c.quiet(Duration::from_millis(i + 500))?;
    c.alive()
}

/// 7.8/5: a reserved frame type then a SIGNAL in the same write; a second connection with the
/// same name finds the SIGNAL not recorded.
fn nothing_after_a_fatal_error(c: &mut Ctx) -> R {
    c.open()?;
    let mut bytes = vec![0x07, 0x01, 0x00];
    bytes.extend(e(Frame::Signal { module: MODULE, method: method::RECORD, payload: b"after-error" }));
    c.send_bytes(&bytes)?;
    c.expect_close(FEE)?;
    let mut c2 = Ctx::new(c.target.clone(), c.log.clone(), c.name.clone());
    c2.open()?;
    std::thread::sleep(Duration::from_millis(100));
    let r = c2.recorded()?;
    if r.iter().any(|x| x == b"after-error") {
        fail("the SIGNAL after the error not delivered", "it was recorded")
    } else {
        Ok(())
    }
}
