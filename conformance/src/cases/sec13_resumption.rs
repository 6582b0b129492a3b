//! §13 Session resumption. Every case needs an implementation that offers resumption (a non-empty
//! session token in its HELLO, [`Step::Resumable`]) and is skipped otherwise.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, End, Items, Step, Want};

/// Resumable session; stream 0 (COUNT of `n` items, the opener's direction left open) fully
/// received; then the transport is lost and the session resumed.
fn count_then_resume(n: u32) -> Vec<Step> {
    vec![
        Resumable,
        Send(stream(0, method::COUNT, &count_init(n, None), false)),
        Stream(0, Items::Any, End::FinOk),
        Resume,
    ]
}

/// Resumable session; stream 0 (HOLD_STREAM) open, then the transport lost and the session resumed.
fn hold_then_resume() -> Vec<Step> {
    vec![Resumable, Send(stream(0, method::HOLD_STREAM, b"", false)), Alive, Resume]
}

pub(super) fn cases() -> Vec<Case> {
    vec![
        // §13.2 Session lifetime
        dial(
            "13.2/1",
            "CLOSE ends the session: resuming it afterwards gives a new session or SESSION_EXPIRED",
            "A resumable session ends when: CLOSE is sent or received on its current connection, with any status except IDLE_TIMEOUT",
            vec![Resumable, CallOk(method::ECHO, b"x".into()), Send(e(Frame::Close { status: OK, message: b"" })), Refused],
        ),
        dial(
            "13.2/2",
            "CLOSE(IDLE_TIMEOUT) does not end the session: it can be resumed",
            "a peer closing with IDLE_TIMEOUT believes the transport is dead; the session survives the close",
            vec![
                Resumable,
                CallOk(method::ECHO, b"x".into()),
                Send(e(Frame::Close { status: Status::IDLE_TIMEOUT, message: b"" })),
                Resume,
                CallOk(method::ECHO, b"after".into()),
            ],
        ),
        dial(
            "13.2/3",
            "GOAWAY ends the session when its connection ends: resuming gives a new session or SESSION_EXPIRED",
            "GOAWAY has been sent or received on it (the session then ends when that connection ends, however it ends)",
            vec![Resumable, Send(call(0, method::GOAWAY, b"")), Expect(Want::GoAway), Replied(0), Refused],
        ),
        dial(
            "13.2/4",
            "a handler keeps running while the transport is lost; its response is delivered after resumption",
            "During it, exchanges stay open and are not resolved: handlers keep running at the responder and their responses are kept (§13.6)",
            vec![
                Resumable,
                Send(sleep(0, 300)),
                Absent("RESPONSE before the transport is dropped", Want::Response, 50),
                Resume,
                Pause(400),
                Send(sleep(0, 300)),
                ReplyWith(0, OK, vec![0]),
                RecordedTimes(entry::SLEEP_DONE.into(), 1),
            ],
        ),
        // §13.3 Resuming a session
        dial(
            "13.3/1",
            "after a transport loss, HELLO with RESUME and the token resumes the session",
            "If it names a session that has not ended ... the acceptor resumes it ... It replies with HELLO with RESUME set and the same token",
            vec![Resumable, CallOk(method::ECHO, b"before".into()), Resume, CallOk(method::ECHO, b"after".into())],
        ),
        dial(
            "13.3/2",
            "an unknown token gives a new session (RESUME clear) or CLOSE(SESSION_EXPIRED)",
            "Otherwise (unknown or ended session, or no resumption support) it replies with HELLO with RESUME clear: a new session ... It MAY instead send CLOSE(SESSION_EXPIRED)",
            vec![Resumable, RefusedToken(b"no-such-session-token-at-all-xyz".into())],
        ),
        dial_code(
            "13.3/3",
            "a wrong token neither resumes nor ends the real session, which can still be resumed",
            "The acceptor looks the token up. If it names a session that has not ended ... Otherwise ... a new session",
            wrong_token,
        ),
        dial_code(
            "13.3/4",
            "frames sent right after the resuming HELLO are not processed before the acceptor's HELLO",
            "The acceptor MUST NOT send any frame before it has received the dialer's HELLO, and MUST NOT send any frame other than CLOSE before its own HELLO (§5.2)",
            frames_right_after_the_resuming_hello,
        ),
        dial(
            "13.3/5",
            "the session can be resumed more than once",
            "Within the grace period the dialer opens a new transport connection and sends HELLO with RESUME set",
            vec![
                Resumable,
                Resume,
                CallOk(method::ECHO, be(0)),
                Resume,
                CallOk(method::ECHO, be(1)),
                Resume,
                CallOk(method::ECHO, be(2)),
            ],
        ),
        // §13.4 What carries over
        dial_code(
            "13.4/1",
            "a resuming HELLO with different parameters is a PROTOCOL_ERROR",
            "Each peer MUST send in the resuming HELLO exactly the parameters (ids and values) it sent in its HELLO on the session's first connection. A peer that sees different parameters closes the connection with PROTOCOL_ERROR",
            other_parameters,
        ),
        dial_code(
            "13.4/2",
            "the acceptor's resumed HELLO repeats the parameters of its first HELLO",
            "Each peer MUST send in the resuming HELLO exactly the parameters (ids and values) it sent in its HELLO on the session's first connection",
            same_parameters,
        ),
        // Id 0 is a retransmission after the resumption, not a new call: answered from the cache.
        dial(
            "13.4/3",
            "ids carry over: a new call after resumption uses an id above every id used",
            "each peer continues allocating above every id it used in the session, and remembers the highest id received from the other",
            vec![
                Resumable,
                CallOk(method::ECHO, b"a".into()),
                CallOk(method::ECHO, b"b".into()),
                Resume,
                CallOk(method::ECHO, b"c".into()),
                Send(call(0, method::ECHO, b"a")),
                ReplyWith(0, OK, b"a".into()),
            ],
        ),
        dial_code(
            "13.4/4",
            "a resuming HELLO with other parameters leaves the session suspended: a correct one still resumes it",
            "an **acceptor** closes only the *new* connection: the suspended session is not affected ... and can still be resumed by a correct HELLO",
            refused_parameters_leave_the_session,
        ),
        dial_code(
            "13.4/5",
            "a RESPONSE cut by the loss: the retransmitted CALL is answered whole from the cache",
            "A call in RECEIVING (§7.1.1) whose RESPONSE was still being reassembled when the transport was lost goes back to OPEN ... and is retransmitted like any unanswered call",
            cut_response_answered_again,
        ),
        // §13.5 Retransmission of calls and notifications
        dial(
            "13.5/1",
            "a retransmitted CALL is answered from the reply cache; the handler does not run twice",
            "a RESPONSE for this id is in the reply cache | resend the cached RESPONSE unchanged; the handler is not run",
            vec![
                Resumable,
                Send(call(0, method::SINK, b"once")),
                ReplyWith(0, OK, vec![]),
                Resume,
                Send(call(0, method::SINK, b"once")),
                ReplyWith(0, OK, vec![]),
                SinkCalls(1),
            ],
        ),
        dial(
            "13.5/2",
            "a call whose request never arrived (id above the highest received) runs once",
            "An opening frame with an id greater than the highest received is a new exchange: the original never arrived, and the handler runs for the first time",
            vec![
                Resumable,
                CallOk(method::ECHO, b"x".into()),
                Resume,
                Send(call(2, method::SINK, b"late")),
                ReplyWith(2, OK, vec![]),
                Send(call(2, method::SINK, b"late")),
                ReplyWith(2, OK, vec![]),
                SinkCalls(1),
            ],
        ),
        dial(
            "13.5/3",
            "a retransmission with a different payload is a PROTOCOL_ERROR",
            "the responder compares a digest of the retransmitted request ... if they differ, it closes the connection with PROTOCOL_ERROR",
            vec![
                Resumable,
                Send(call(0, method::ECHO, b"original")),
                Replied(0),
                Resume,
                Send(call(0, method::ECHO, b"another")),
                Close(PE),
            ],
        ),
        dial(
            "13.5/4",
            "a retransmission of another method is a PROTOCOL_ERROR",
            "a digest of the retransmitted request — a function of frame type, module, method and payload ... if they differ, it closes the connection with PROTOCOL_ERROR",
            vec![
                Resumable,
                Send(call(0, method::ECHO, b"same")),
                Replied(0),
                Resume,
                Send(call(0, method::SINK, b"same")),
                Close(PE),
            ],
        ),
        dial(
            "13.5/5",
            "a retransmission as NOTIFY of what was a CALL is a PROTOCOL_ERROR",
            "a digest of the retransmitted request — a function of frame type, module, method and payload",
            vec![
                Resumable,
                Send(call(0, method::RECORD, b"r")),
                Replied(0),
                Resume,
                Send(notify(0, method::RECORD, b"r")),
                Close(PE),
            ],
        ),
        dial(
            "13.5/6",
            "a retransmission with another budget_us is the same request",
            "a digest ... excluding `budget_us`",
            vec![
                Resumable,
                Send(call(0, method::ECHO, b"budget")),
                Replied(0),
                Resume,
                Send(e(Frame::Call(Request { budget_us: 4_000_000, ..req(0, method::ECHO, b"budget") }))),
                ReplyWith(0, OK, b"budget".into()),
            ],
        ),
        dial(
            "13.5/7",
            "a retransmission of a call still running is ignored: one RESPONSE, handler run once",
            "the exchange is still open (its handler is running) | ignore the duplicate; the RESPONSE will be sent when the application responds",
            vec![
                Resumable,
                Send(sleep(0, 600)),
                Resume,
                Send(sleep(0, 600)),
                ReplyWith(0, OK, vec![0]),
                Absent("a second RESPONSE for the call", Want::ResponseTo(0), Q),
                RecordedTimes(entry::SLEEP_DONE.into(), 1),
            ],
        ),
        dial(
            "13.5/8",
            "a retransmitted id below the highest received that never arrived: REPLY_EVICTED",
            "otherwise (evicted, never received, refused) | send RESPONSE(REPLY_EVICTED, empty payload)",
            vec![
                Resumable,
                Send(call(2, method::ECHO, b"two")),
                Replied(2),
                Resume,
                Send(call(0, method::SINK, b"zero")),
                ReplyWith(0, Status::REPLY_EVICTED, vec![]),
                SinkCalls(0),
            ],
        ),
        dial(
            "13.5/9",
            "a retransmitted NOTIFY is answered from the cache and recorded once",
            "resend the cached RESPONSE unchanged; the handler is not run",
            vec![
                Resumable,
                Send(notify(0, method::RECORD, b"once")),
                Replied(0),
                Resume,
                Send(notify(0, method::RECORD, b"once")),
                ReplyWith(0, OK, vec![]),
                RecordedTimes(b"once".into(), 1),
            ],
        ),
        dial_code(
            "13.5/10",
            "the implementation retransmits its own unanswered CALL after resumption, with its id",
            "After the resumed handshake, before opening any new exchange, each peer (both the dialer and the acceptor): retransmits, in increasing id order, the opening message of every call and notification it opened that has not received its RESPONSE",
            own_call_retransmitted,
        ),
        // §13.6 Reply cache and ACK
        dial(
            "13.6/1",
            "ACK removes the entry: a later retransmission is answered REPLY_EVICTED",
            "The responder removes the acknowledged entries ... a later retransmission of an evicted request is answered with REPLY_EVICTED",
            vec![
                Resumable,
                Send(call(0, method::SINK, b"x")),
                Replied(0),
                Send(ack(&[0])),
                Alive,
                Resume,
                Send(call(0, method::SINK, b"x")),
                ReplyWith(0, Status::REPLY_EVICTED, vec![]),
                SinkCalls(1),
            ],
        ),
        dial(
            "13.6/2",
            "a refusal is cached like any RESPONSE",
            "Every RESPONSE is cached, including refusals and CANCELLED ones",
            vec![
                Resumable,
                Send(call(0, method::STATUS, &be(5))),
                ReplyWith(0, Status(5), vec![]),
                Resume,
                Send(call(0, method::STATUS, &be(5))),
                ReplyWith(0, Status(5), vec![]),
            ],
        ),
        dial(
            "13.6/3",
            "an ACK naming an id the runner never used is a PROTOCOL_ERROR",
            "an ACK naming an id of the receiver's parity, or an id the sender never used, is a PROTOCOL_ERROR (§6.4) in a connection where ACK is processed",
            vec![Resumable, CallOk(method::ECHO, b"x".into()), Send(ack(&[400])), Close(PE)],
        ),
        dial(
            "13.6/4",
            "an ACK naming an id of the implementation's parity is a PROTOCOL_ERROR",
            "an ACK naming an id of the receiver's parity ... is a PROTOCOL_ERROR (§6.4) in a connection where ACK is processed",
            vec![Resumable, CallOk(method::ECHO, b"x".into()), Send(ack(&[1])), Close(PE)],
        ),
        dial(
            "13.6/5",
            "acknowledging an id twice (no longer in the cache) is ignored",
            "acknowledged ids not in the cache are ignored",
            vec![Resumable, Send(call(0, method::ECHO, b"x")), Replied(0), Send(ack(&[0])), Send(ack(&[0, 0])), Alive],
        ),
        dial_code(
            "13.6/6",
            "beyond reply_cache_entries the oldest reply is evicted: its retransmission gets REPLY_EVICTED",
            "When adding an entry would exceed either bound, the peer evicts entries oldest first ... a later retransmission of an evicted request is answered with REPLY_EVICTED",
            oldest_reply_evicted,
        ),
        // §13.7 Streams: STREAM_RESUME
        dial(
            "13.7/1",
            "STREAM_RESUME on a connection that did not resume a session is a PROTOCOL_ERROR",
            "received outside a connection that resumed a session ... | PROTOCOL_ERROR",
            vec![Resumable, Send(stream(0, method::HOLD_STREAM, b"", false)), Alive, Send(stream_resume(0, 0)), Close(PE)],
        ),
        dial(
            "13.7/2",
            "STREAM_RESUME for an id never opened is a PROTOCOL_ERROR",
            "id never opened (§6.4) | PROTOCOL_ERROR",
            vec![Resumable, CallOk(method::ECHO, b"x".into()), Resume, Send(stream_resume(40, 0)), Close(PE)],
        ),
        dial(
            "13.7/3",
            "STREAM_RESUME for a stream closed at the implementation: STREAM_RESET(REPLY_EVICTED)",
            "stream closed at the receiver | send STREAM_RESET(id, REPLY_EVICTED)",
            vec![
                Resumable,
                Send(stream(0, method::COUNT, &count_init(1, None), true)),
                Stream(0, Items::Any, End::FinOk),
                Alive,
                Resume,
                Send(stream_resume(0, 2)),
                Expect(Want::Reset(0, Status::REPLY_EVICTED)),
            ],
        ),
        dial(
            "13.7/4",
            "a retransmitted STREAM_OPEN for a stream that ended: STREAM_RESET(REPLY_EVICTED)",
            "otherwise → reply STREAM_RESET(id, REPLY_EVICTED) (the stream ended at the responder and its outcome is lost)",
            vec![
                Resumable,
                Send(stream(0, method::COUNT, &count_init(1, None), true)),
                Stream(0, Items::Any, End::FinOk),
                Alive,
                Resume,
                Send(stream(0, method::COUNT, &count_init(1, None), true)),
                Expect(Want::Reset(0, Status::REPLY_EVICTED)),
            ],
        ),
        // The runner announces both items received, so nothing is retransmitted.
        dial(
            "13.7/5",
            "after resumption the implementation sends STREAM_RESUME counting the runner's items received",
            "each peer sends STREAM_RESUME(id, received_items) for every stream open at it that was carried over ... received_items counts the items of the other peer's direction received plus 1 if that direction's terminal was received",
            vec![
                Resumable,
                Send(stream(0, method::BIDI, b"", false)),
                Send(enc(&[item(0, b"a"), item(0, b"b")])),
                Expect(Want::Item(b"b")),
                Resume,
                Expect(Want::StreamResume(0, 2)),
                Send(stream_resume(0, 2)),
                Send(e(Frame::StreamFin { id: 0, status: OK })),
                Stream(0, Items::Exactly(vec![]), End::FinOk),
            ],
        ),
        dial(
            "13.7/6",
            "STREAM_RESUME(k) makes the implementation retransmit its items numbered ≥ k, then the terminal",
            "stream open; otherwise | drop retained items numbered < k; retransmit, in order, the items numbered ≥ k and then the terminal if one was sent and its number is ≥ k",
            vec![
                Resumable,
                Send(stream(0, method::COUNT, &count_init(3, None), false)),
                Stream(0, Items::Count(3), End::FinOk),
                Resume,
                Send(stream_resume(0, 1)),
                Stream(0, Items::Exactly(vec![be(1), be(2)]), End::FinOk),
                Send(e(Frame::StreamFin { id: 0, status: OK })),
                Alive,
            ],
        ),
        dial(
            "13.7/7",
            "STREAM_RESUME counting every item and the terminal: nothing is retransmitted",
            "drop retained items numbered < k; retransmit ... the items numbered ≥ k and then the terminal if one was sent and its number is ≥ k",
            [
                count_then_resume(2),
                vec![
                    Send(stream_resume(0, 3)),
                    Absent("STREAM_DATA or a terminal on the stream", Want::OnStream(0), Q),
                    Send(e(Frame::StreamFin { id: 0, status: OK })),
                    Alive,
                ],
            ]
            .concat(),
        ),
        dial(
            "13.7/8",
            "STREAM_RESUME counting more than the implementation sent is a PROTOCOL_ERROR",
            "stream open; k > number of items plus terminal the receiver has sent in its direction | PROTOCOL_ERROR",
            [hold_then_resume(), vec![Send(stream_resume(0, 5)), Close(PE)]].concat(),
        ),
        dial(
            "13.7/9",
            "a second STREAM_RESUME for the same stream is a PROTOCOL_ERROR",
            "or a second time for the same stream on this connection | PROTOCOL_ERROR",
            [hold_then_resume(), vec![Send(stream_resume(0, 0)), Alive, Send(stream_resume(0, 0)), Close(PE)]].concat(),
        ),
        dial(
            "13.7/10",
            "no item on a carried-over stream before the runner's STREAM_RESUME; then every item again",
            "A peer MUST NOT send STREAM_DATA or a terminal on a carried-over stream before it has received the other peer's STREAM_RESUME (or a STREAM_RESET) for it",
            [
                count_then_resume(3),
                vec![
                    Absent("STREAM_DATA or a terminal before the runner's STREAM_RESUME", Want::OnStream(0), Q),
                    Send(stream_resume(0, 0)),
                    Stream(0, Items::Exactly(vec![be(0), be(1), be(2)]), End::FinOk),
                    Send(e(Frame::StreamFin { id: 0, status: OK })),
                    Alive,
                ],
            ]
            .concat(),
        ),
        dial_code(
            "13.7/11",
            "a terminal produced while suspended is held, then sent after STREAM_RESUME (never REPLY_EVICTED)",
            "A terminal counts as **sent** when it has been handed to a transport ... the stream stays open (and its slot taken) until the held terminal goes out after the resumption",
            held_terminal_sent_after_resume,
        ),
        // §13.8 Example
        dial(
            "13.8/1",
            "the example: retransmitted CALL answered from the cache, then ACK",
            "retransmitted CALL 4 ... cached RESPONSE; the handler does not run again ... ACK id 4; the acceptor drops the cache entry",
            vec![
                Resumable,
                Send(call(0, method::ECHO, b"")),
                Replied(0),
                Send(call(2, method::ECHO, b"")),
                Replied(2),
                Send(call(4, method::ECHO, b"hi")),
                Replied(4),
                Resume,
                Send(call(4, method::ECHO, b"hi")),
                ReplyWith(4, OK, b"hi".into()),
                Send(vec![0x06, 0x03, 0x01, 0x04, 0x01]),
                Alive,
            ],
        ),
    ]
}

/// 13.3/3: the session's token with its last byte changed is refused; the real one still resumes.
fn wrong_token(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    c.call_ok(method::ECHO, b"x")?;
    let mut wrong = t.clone();
    if let Some(l) = wrong.last_mut() {
        *l ^= 0x5a;
    }
    refused(c, &wrong)?;
    resume(c, &t)?;
    c.call_ok(method::ECHO, b"after").map(drop)
}

/// 13.3/4: a CALL in the same write as the resuming HELLO is either processed after the
/// acceptor's HELLO, or refused as a §5.2 violation; never answered before that HELLO.
fn frames_right_after_the_resuming_hello(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    c.call_ok(method::ECHO, b"x")?;
    let id = c.id();
    let extra = call(id, method::ECHO, b"early");
    c.lose_transport();
    c.transport()?;
    let mut h = hello_bytes(1, 1, 1, c.name.as_bytes(), &t, &c.mine.clone());
    h.extend_from_slice(&extra);
    c.send_bytes(&h)?;
    let first = loop {
        match c.w().recv(T) {
            Recv::Frame(o) => match o.frame() {
                Frame::Ping(_) => continue,
                _ => break o,
            },
            r => return fail("the acceptor's HELLO or CLOSE", format!("{r:?}")),
        }
    };
    match first.frame() {
        Frame::Close { status: PE, .. } => Ok(()),
        Frame::Hello(h) if h.flags & 1 != 0 && h.session == t.as_slice() => expect_resp(c, id, OK, b"early"),
        f => fail("HELLO with RESUME and the same token first (or CLOSE PROTOCOL_ERROR, §5.2)", describe(&f)),
    }
}

/// 13.4/1: the resuming HELLO announces max_concurrent_calls 5, which the first one did not.
/// Refused at once (CLOSE instead of HELLO), or after the acceptor's HELLO.
fn other_parameters(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    c.call_ok(method::ECHO, b"x")?;
    match resume_with(c, &t, &[(3, 5)], &[])? {
        Err(PE) => Ok(()),
        Err(st) => fail("CLOSE PROTOCOL_ERROR", format!("CLOSE {st:?}")),
        Ok(_) => c.expect_close(PE),
    }
}

/// 13.4/4: a resuming HELLO with another `max_concurrent_calls` is refused with PROTOCOL_ERROR;
/// the session stays suspended, and resuming it with the right parameters works.
fn refused_parameters_leave_the_session(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    c.call_ok(method::ECHO, b"x")?;
    match resume_with(c, &t, &[(3, 5)], &[])? {
        Err(PE) => {}
        Err(st) => return fail("CLOSE PROTOCOL_ERROR", format!("CLOSE {st:?}")),
        Ok(_) => c.expect_close(PE)?,
    }
    resume(c, &t)?;
    c.call_ok(method::ECHO, b"still the same session").map(drop)
}

/// 13.4/5: the runner announces the smallest frame (4096) and calls ECHO with 6,000 bytes, so the
/// RESPONSE comes in two frames; it loses the transport after the first, resumes, retransmits
/// the CALL with its id and gets the whole RESPONSE (from the reply cache).
fn cut_response_answered_again(c: &mut Ctx) -> R {
    c.open_with(&[(1, 4096)])?;
    let t = c.peer_session();
    if t.is_empty() {
        return skip(NO_TOKEN);
    }
    if c.p(11) == 0 || c.p(12) == 0 {
        return skip("the implementation keeps no reply cache: exactly-once is not offered (SPEC.md §5.4)");
    }
    let payload: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    let request =
        enc(&[call_first(0, method::ECHO, &payload[..3000], 6000), cont(0, &payload[3000..], false)]);
    c.send_bytes(&request)?;
    c.expect(
        "the first frame of the RESPONSE (MORE set)",
        T,
        |f| matches!(f, Frame::Response { id: 0, flags: fl, .. } if fl & MORE != 0),
    )?;
    resume(c, &t)?;
    c.send_bytes(&request)?;
    expect_resp(c, 0, OK, &payload)
}

/// 13.7/11: HOLD_STREAM with a 300 ms deadline; the transport is lost at once and the deadline
/// passes while the session is suspended, so the implementation's terminal is produced then and
/// held. After the resumption and the runner's STREAM_RESUME it arrives — never REPLY_EVICTED.
fn held_terminal_sent_after_resume(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    let open = e(Frame::StreamOpen(Request { budget_us: 300_000, ..req(0, method::HOLD_STREAM, b"") }));
    c.send_bytes(&open)?;
    c.call_ok(method::ECHO, b"the stream is open")?;
    c.lose_transport();
    std::thread::sleep(Duration::from_millis(800));
    resume(c, &t)?;
    c.send_bytes(&stream_resume(0, 0))?;
    let o = c.expect("the implementation's terminal on stream 0", T, |f| {
        matches!(f, Frame::StreamFin { id: 0, .. } | Frame::StreamReset { id: 0, .. })
    })?;
    if let Frame::StreamReset { status: Status::REPLY_EVICTED, .. } = o.frame() {
        return fail("the held terminal (any status but REPLY_EVICTED)", describe(&o.frame()));
    }
    c.send_bytes(&e(Frame::StreamReset { id: 0, status: Status::CANCELLED }))?;
    c.alive()
}

fn params_of(c: &Ctx) -> Vec<(u64, u64)> {
    match c.peer_hello.as_ref().map(|o| o.frame()) {
        Some(Frame::Hello(h)) => h.params.iter().collect(),
        _ => Vec::new(),
    }
}

/// 13.4/2: the resumed HELLO's parameters equal the first HELLO's.
fn same_parameters(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    let first = params_of(c);
    resume(c, &t)?;
    let again = params_of(c);
    if first != again {
        return fail(format!("parameters {first:?}"), format!("{again:?}"));
    }
    Ok(())
}

/// 13.5/10: the implementation's CALL (through CALLBACK) is left unanswered across a resumption:
/// it comes again with the same id, method and payload; the runner's CALLBACK is retransmitted
/// too (§13.5), and answering the inner call completes it.
fn own_call_retransmitted(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    let cb = c.callback(kind::CALL, RUNNER_METHOD, 0, b"inner")?;
    let (id, m, me, _, p) = expect_call(c)?;
    resume(c, &t)?;
    let (id2, m2, me2, _, p2) = expect_call(c)?;
    if (id2, m2, me2, &p2) != (id, m, me, &p) {
        return fail(
            format!("CALL id={id} {m}/{me} {p:02x?} again"),
            format!("CALL id={id2} {m2}/{me2} {p2:02x?}"),
        );
    }
    let body = crate::service::Callback {
        kind: kind::CALL,
        method: RUNNER_METHOD,
        timeout_ms: 0,
        payload: b"inner".to_vec(),
    }
    .encode();
    c.send_bytes(&call(cb, method::CALLBACK, &body))?;
    c.send(&[Frame::Response { flags: 0, id, status: OK, total_len: None, payload: b"answer" }])?;
    let (s, p) = c.callback_result(cb)?;
    status_is("inner status", s, OK)?;
    bigbuf_eq("inner payload", &p, b"answer")
}

/// 13.6/6: a SINK call, then reply_cache_entries ECHO calls (as many at once as
/// max_concurrent_calls allows, at most 16): after resumption the SINK call's retransmission is
/// answered REPLY_EVICTED.
fn oldest_reply_evicted(c: &mut Ctx) -> R {
    let t = ropen(c)?;
    let n = c.p(11);
    let conc = c.p(3).clamp(1, 16);
    if n > 2048 {
        return skip(format!("reply_cache_entries {n} is too large to fill quickly (needs ≤ 2048)"));
    }
    let first = c.id();
    c.send_bytes(&call(first, method::SINK, b"oldest"))?;
    c.response(first)?;
    let mut left = n;
    while left > 0 {
        let k = left.min(conc);
        let ids: Vec<u64> = (0..k).map(|_| c.id()).collect();
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| call(id, method::ECHO, b"")).collect();
        c.send_bytes(&bytes)?;
        for id in ids {
            c.response(id)?;
        }
        left -= k;
    }
    resume(c, &t)?;
    c.send_bytes(&call(first, method::SINK, b"oldest"))?;
    expect_resp(c, first, Status::REPLY_EVICTED, b"")
}
