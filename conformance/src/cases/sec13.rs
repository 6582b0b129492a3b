//! §13 session resumption. Every case needs an implementation that offers resumption (a
//! non-empty session token in its HELLO) and is skipped otherwise.

use super::*;

/// Why §13 cases are skipped against an implementation that offers no session token.
pub const NO_TOKEN: &str = "the implementation's HELLO carries an empty session token: it does not offer session resumption (SPEC.md §5.5, §13.2)";

const SE: Status = Status::SESSION_EXPIRED;

/// Opens a connection and returns the session token (skips when there is none).
fn ropen(c: &mut Ctx) -> R<Vec<u8>> {
    c.open()?;
    let t = c.peer_session();
    if t.is_empty() {
        return skip(NO_TOKEN);
    }
    if c.p(11) == 0 || c.p(12) == 0 {
        return skip("the implementation keeps no reply cache (reply_cache_entries or reply_cache_bytes 0): exactly-once is not offered (SPEC.md §5.4)");
    }
    Ok(t)
}

/// Dials again and sends a resuming HELLO (RESUME, `token`, `params`) followed by `extra`;
/// returns the implementation's answer: its HELLO's (flags, session), or the status of its CLOSE.
fn resume_with(
    c: &mut Ctx,
    token: &[u8],
    params: &[(u64, u64)],
    extra: &[u8],
) -> R<Result<(u64, Vec<u8>), Status>> {
    c.lose_transport();
    c.transport()?;
    let mut h = hello_bytes(1, 1, 1, c.name.as_bytes(), token, params);
    h.extend_from_slice(extra);
    c.send_bytes(&h)?;
    let o = c.expect("the acceptor's HELLO (or CLOSE) answering the resuming HELLO", T, |f| {
        matches!(f, Frame::Hello(_) | Frame::Close { .. })
    })?;
    match o.frame() {
        Frame::Hello(h) => {
            let r = (h.flags, h.session.to_vec());
            c.take_hello(&o)?;
            Ok(Ok(r))
        }
        Frame::Close { status, .. } => Ok(Err(status)),
        f => fail("HELLO or CLOSE", describe(&f)),
    }
}

/// Loses the transport and resumes the session named by `token`; requires RESUME and the token.
fn resume(c: &mut Ctx, token: &[u8]) -> R {
    let mine = c.mine.clone();
    resume_extra(c, token, &mine, &[])
}

fn resume_extra(c: &mut Ctx, token: &[u8], params: &[(u64, u64)], extra: &[u8]) -> R {
    match resume_with(c, token, params, extra)? {
        Err(st) => {
            fail("HELLO with RESUME (the session is within its grace period)", format!("CLOSE {st:?}"))
        }
        Ok((fl, _)) if fl & 1 == 0 => fail(
            "HELLO with RESUME set (the session is within its grace period)",
            "HELLO with RESUME clear: a new session",
        ),
        Ok((_, s)) if s != token => fail(
            format!("HELLO with RESUME and the requested token {token:02x?}"),
            format!("HELLO with RESUME and token {s:02x?}"),
        ),
        Ok(_) => Ok(()),
    }
}

/// Requires that resuming `token` gives a new session (RESUME clear) or CLOSE(SESSION_EXPIRED).
fn refused(c: &mut Ctx, token: &[u8]) -> R {
    let mine = c.mine.clone();
    match resume_with(c, token, &mine, &[])? {
        Err(SE) => Ok(()),
        Err(st) => {
            fail("HELLO with RESUME clear (a new session) or CLOSE SESSION_EXPIRED", format!("CLOSE {st:?}"))
        }
        Ok((fl, _)) if fl & 1 != 0 => {
            fail("HELLO with RESUME clear (a new session) or CLOSE SESSION_EXPIRED", "HELLO with RESUME set")
        }
        Ok(_) => c.call_ok(method::ECHO, b"new session").map(drop),
    }
}

fn sink_calls(c: &mut Ctx) -> R<u64> {
    let p = c.call_ok(method::SINK_STATS, b"")?;
    match p.get(..8) {
        Some(b) => Ok(u64::from_be_bytes(b.try_into().unwrap_or_default())),
        None => fail("SINK_STATS: u64 calls, u64 bytes", format!("{p:02x?}")),
    }
}

fn expect_resp(c: &mut Ctx, id: u64, st: Status, payload: &[u8]) -> R {
    let (s, p) = c.response(id)?;
    if s != st || p != payload {
        return fail(
            format!("RESPONSE id={id} {st:?} payload={payload:02x?}"),
            format!("{s:?} payload={p:02x?}"),
        );
    }
    Ok(())
}

fn ack(ids: &[u64]) -> Vec<u8> {
    let mut b = vec![0x06];
    let mut body = Vec::new();
    put_varint(&mut body, ids.len() as u64);
    for &i in ids {
        put_varint(&mut body, i);
        put_varint(&mut body, 1);
    }
    put_varint(&mut b, body.len() as u64);
    b.extend_from_slice(&body);
    b
}

/// Appends a canonical varint (SPEC.md §2.1).
pub(crate) fn put_varint(out: &mut Vec<u8>, v: u64) {
    if v < 64 {
        out.push(v as u8);
    } else if v < 16384 {
        out.extend_from_slice(&((v as u16) | 0x4000).to_be_bytes());
    } else if v < 1 << 30 {
        out.extend_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
    } else {
        out.extend_from_slice(&(v | 0xc000_0000_0000_0000).to_be_bytes());
    }
}

fn stream_resume(id: u64, k: u64) -> Vec<u8> {
    e(Frame::StreamResume { id, received: k })
}

pub(super) fn sec13(b: &mut B) {
    // §13.2 lifetime
    b.d(
        "13.2",
        "CLOSE ends the session: resuming it afterwards gives a new session or SESSION_EXPIRED",
        "A resumable session ends when: CLOSE is sent or received on its current connection, with any status except IDLE_TIMEOUT",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            c.send(&[Frame::Close { status: Status::OK, message: b"" }])?;
            refused(c, &t)
        },
    );
    b.d(
        "13.2",
        "CLOSE(IDLE_TIMEOUT) does not end the session: it can be resumed",
        "a peer closing with IDLE_TIMEOUT believes the transport is dead; the session survives the close",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            c.send(&[Frame::Close { status: Status::IDLE_TIMEOUT, message: b"" }])?;
            resume(c, &t)?;
            c.call_ok(method::ECHO, b"after").map(drop)
        },
    );
    b.d(
        "13.2",
        "GOAWAY ends the session when its connection ends: resuming gives a new session or SESSION_EXPIRED",
        "GOAWAY has been sent or received on it (the session then ends when that connection ends, however it ends)",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::GOAWAY, b""))?;
            c.expect("GOAWAY", T, |f| matches!(f, Frame::GoAway { .. }))?;
            c.response(id)?;
            refused(c, &t)
        },
    );
    b.d(
        "13.2",
        "a handler keeps running while the transport is lost; its response is delivered after resumption",
        "During it, exchanges stay open and are not resolved: handlers keep running at the responder and their responses are kept (§13.6)",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::SLEEP, &be(300)))?;
            c.none("RESPONSE before the transport is dropped", Duration::from_millis(50), |f| {
                matches!(f, Frame::Response { .. })
            })?;
            resume(c, &t)?;
            std::thread::sleep(Duration::from_millis(400));
            c.send_bytes(&call(id, method::SLEEP, &be(300)))?;
            expect_resp(c, id, Status::OK, &[0])?;
            let r = c.recorded()?;
            let n = r.iter().filter(|e| e.as_slice() == entry::SLEEP_DONE).count();
            if n != 1 {
                return fail("one record sleep:done (the handler ran once)", format!("{n} sleep:done records"));
            }
            Ok(())
        },
    );

    // §13.3 resuming
    b.d(
        "13.3",
        "after a transport loss, HELLO with RESUME and the token resumes the session",
        "If it names a session that has not ended ... the acceptor resumes it ... It replies with HELLO with RESUME set and the same token",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"before")?;
            resume(c, &t)?;
            c.call_ok(method::ECHO, b"after").map(drop)
        },
    );
    b.d(
        "13.3",
        "an unknown token gives a new session (RESUME clear) or CLOSE(SESSION_EXPIRED)",
        "Otherwise (unknown or ended session, or no resumption support) it replies with HELLO with RESUME clear: a new session ... It MAY instead send CLOSE(SESSION_EXPIRED)",
        |c| {
            ropen(c)?;
            refused(c, b"no-such-session-token-at-all-xyz")
        },
    );
    b.d(
        "13.3",
        "a wrong token neither resumes nor ends the real session, which can still be resumed",
        "The acceptor looks the token up. If it names a session that has not ended ... Otherwise ... a new session",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            let mut wrong = t.clone();
            if let Some(l) = wrong.last_mut() {
                *l ^= 0x5a;
            }
            refused(c, &wrong)?;
            resume(c, &t)?;
            c.call_ok(method::ECHO, b"after").map(drop)
        },
    );
    b.d(
        "13.3",
        "frames sent right after the resuming HELLO are not processed before the acceptor's HELLO",
        "The acceptor MUST NOT send any frame before it has received the dialer's HELLO, and MUST NOT send any frame other than CLOSE before its own HELLO (§5.2)",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            let id = c.id();
            let extra = call(id, method::ECHO, b"early");
            // Either processed after the resumed HELLO, or refused as a §5.2 violation; never
            // answered before the acceptor's HELLO.
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
                Frame::Hello(h) if h.flags & 1 != 0 && h.session == t.as_slice() => {
                    expect_resp(c, id, Status::OK, b"early")
                }
                f => fail("HELLO with RESUME and the same token first (or CLOSE PROTOCOL_ERROR, §5.2)", describe(&f)),
            }
        },
    );
    b.d(
        "13.3",
        "the session can be resumed more than once",
        "Within the grace period the dialer opens a new transport connection and sends HELLO with RESUME set",
        |c| {
            let t = ropen(c)?;
            for i in 0..3u32 {
                resume(c, &t)?;
                c.call_ok(method::ECHO, &be(i))?;
            }
            Ok(())
        },
    );

    // §13.4 what carries over
    b.d(
        "13.4",
        "a resuming HELLO with different parameters is a PROTOCOL_ERROR",
        "Each peer MUST send in the resuming HELLO exactly the parameters (ids and values) it sent in its HELLO on the session's first connection. A peer that sees different parameters closes the connection with PROTOCOL_ERROR",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            // Refused at once (CLOSE instead of HELLO), or after the acceptor's HELLO.
            match resume_with(c, &t, &[(3, 5)], &[])? {
                Err(PE) => Ok(()),
                Err(st) => fail("CLOSE PROTOCOL_ERROR", format!("CLOSE {st:?}")),
                Ok(_) => c.expect_close(PE),
            }
        },
    );
    b.d(
        "13.4",
        "the acceptor's resumed HELLO repeats the parameters of its first HELLO",
        "Each peer MUST send in the resuming HELLO exactly the parameters (ids and values) it sent in its HELLO on the session's first connection",
        |c| {
            let t = ropen(c)?;
            let first = params_of(c);
            resume(c, &t)?;
            let again = params_of(c);
            if first != again {
                return fail(format!("parameters {first:?}"), format!("{again:?}"));
            }
            Ok(())
        },
    );
    b.d(
        "13.4",
        "ids carry over: a new call after resumption uses an id above every id used",
        "each peer continues allocating above every id it used in the session, and remembers the highest id received from the other",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"a")?;
            c.call_ok(method::ECHO, b"b")?;
            resume(c, &t)?;
            c.call_ok(method::ECHO, b"c")?;
            // id 0 is now a retransmission, not a new call: answered from the cache
            c.send_bytes(&call(0, method::ECHO, b"a"))?;
            expect_resp(c, 0, Status::OK, b"a")
        },
    );

    // §13.5 retransmission
    b.d(
        "13.5",
        "a retransmitted CALL is answered from the reply cache; the handler does not run twice",
        "a RESPONSE for this id is in the reply cache | resend the cached RESPONSE unchanged; the handler is not run",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::SINK, b"once"))?;
            expect_resp(c, id, Status::OK, b"")?;
            resume(c, &t)?;
            c.send_bytes(&call(id, method::SINK, b"once"))?;
            expect_resp(c, id, Status::OK, b"")?;
            let n = sink_calls(c)?;
            if n != 1 {
                return fail("SINK counted once", format!("{n} calls"));
            }
            Ok(())
        },
    );
    b.d(
        "13.5",
        "a call whose request never arrived (id above the highest received) runs once",
        "An opening frame with an id greater than the highest received is a new exchange: the original never arrived, and the handler runs for the first time",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            resume(c, &t)?;
            let id = c.id();
            c.send_bytes(&call(id, method::SINK, b"late"))?;
            expect_resp(c, id, Status::OK, b"")?;
            c.send_bytes(&call(id, method::SINK, b"late"))?;
            expect_resp(c, id, Status::OK, b"")?;
            let n = sink_calls(c)?;
            if n != 1 {
                return fail("SINK counted once", format!("{n} calls"));
            }
            Ok(())
        },
    );
    b.d(
        "13.5",
        "a retransmission with a different payload is a PROTOCOL_ERROR",
        "the responder compares a digest of the retransmitted request ... if they differ, it closes the connection with PROTOCOL_ERROR",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::ECHO, b"original"))?;
            c.response(id)?;
            resume(c, &t)?;
            c.send_bytes(&call(id, method::ECHO, b"another"))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.5",
        "a retransmission of another method is a PROTOCOL_ERROR",
        "a digest of the retransmitted request — a function of frame type, module, method and payload ... if they differ, it closes the connection with PROTOCOL_ERROR",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::ECHO, b"same"))?;
            c.response(id)?;
            resume(c, &t)?;
            c.send_bytes(&call(id, method::SINK, b"same"))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.5",
        "a retransmission as NOTIFY of what was a CALL is a PROTOCOL_ERROR",
        "a digest of the retransmitted request — a function of frame type, module, method and payload",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::RECORD, b"r"))?;
            c.response(id)?;
            resume(c, &t)?;
            c.send_bytes(&e(Frame::Notify(req(id, method::RECORD, b"r"))))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.5",
        "a retransmission with another budget_us is the same request",
        "a digest ... excluding `budget_us`",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::ECHO, b"budget"))?;
            c.response(id)?;
            resume(c, &t)?;
            let mut r = req(id, method::ECHO, b"budget");
            r.budget_us = 4_000_000;
            c.send_bytes(&e(Frame::Call(r)))?;
            expect_resp(c, id, Status::OK, b"budget")
        },
    );
    b.d(
        "13.5",
        "a retransmission of a call still running is ignored: one RESPONSE, handler run once",
        "the exchange is still open (its handler is running) | ignore the duplicate; the RESPONSE will be sent when the application responds",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::SLEEP, &be(600)))?;
            resume(c, &t)?;
            c.send_bytes(&call(id, method::SLEEP, &be(600)))?;
            expect_resp(c, id, Status::OK, &[0])?;
            c.none("a second RESPONSE for the call", QUIET, |f| matches!(f, Frame::Response { id: x, .. } if *x == id))?;
            let r = c.recorded()?;
            let n = r.iter().filter(|e| e.as_slice() == entry::SLEEP_DONE).count();
            if n != 1 {
                return fail("one record sleep:done", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "13.5",
        "a retransmitted id below the highest received that never arrived: REPLY_EVICTED",
        "otherwise (evicted, never received, refused) | send RESPONSE(REPLY_EVICTED, empty payload)",
        |c| {
            let t = ropen(c)?;
            c.send_bytes(&call(2, method::ECHO, b"two"))?;
            c.response(2)?;
            resume(c, &t)?;
            c.send_bytes(&call(0, method::SINK, b"zero"))?;
            expect_resp(c, 0, Status::REPLY_EVICTED, b"")?;
            let n = sink_calls(c)?;
            if n != 0 {
                return fail("SINK never run", format!("{n} calls"));
            }
            Ok(())
        },
    );
    b.d(
        "13.5",
        "a retransmitted NOTIFY is answered from the cache and recorded once",
        "resend the cached RESPONSE unchanged; the handler is not run",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&e(Frame::Notify(req(id, method::RECORD, b"once"))))?;
            c.response(id)?;
            resume(c, &t)?;
            c.send_bytes(&e(Frame::Notify(req(id, method::RECORD, b"once"))))?;
            expect_resp(c, id, Status::OK, b"")?;
            let r = c.recorded()?;
            let n = r.iter().filter(|e| e.as_slice() == b"once").count();
            if n != 1 {
                return fail("the record once, once", format!("{n} times"));
            }
            Ok(())
        },
    );

    // §13.6 reply cache and ACK
    b.d(
        "13.6",
        "ACK removes the entry: a later retransmission is answered REPLY_EVICTED",
        "The responder removes the acknowledged entries ... a later retransmission of an evicted request is answered with REPLY_EVICTED",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::SINK, b"x"))?;
            c.response(id)?;
            c.send_bytes(&ack(&[id]))?;
            c.alive()?;
            resume(c, &t)?;
            c.send_bytes(&call(id, method::SINK, b"x"))?;
            expect_resp(c, id, Status::REPLY_EVICTED, b"")?;
            let n = sink_calls(c)?;
            if n != 1 {
                return fail("SINK counted once", format!("{n} calls"));
            }
            Ok(())
        },
    );
    b.d(
        "13.6",
        "a refusal is cached like any RESPONSE",
        "Every RESPONSE is cached, including refusals and CANCELLED ones",
        |c| {
            let t = ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::STATUS, &be(5)))?;
            expect_resp(c, id, Status(5), b"")?;
            resume(c, &t)?;
            c.send_bytes(&call(id, method::STATUS, &be(5)))?;
            expect_resp(c, id, Status(5), b"")
        },
    );
    b.d(
        "13.6",
        "an ACK naming an id the runner never used is a PROTOCOL_ERROR",
        "an ACK naming an id of the receiver's parity, or an id the sender never used, is a PROTOCOL_ERROR (§6.4) in a connection where ACK is processed",
        |c| {
            ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            c.send_bytes(&ack(&[400]))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.6",
        "an ACK naming an id of the implementation's parity is a PROTOCOL_ERROR",
        "an ACK naming an id of the receiver's parity ... is a PROTOCOL_ERROR (§6.4) in a connection where ACK is processed",
        |c| {
            ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            c.send_bytes(&ack(&[1]))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.6",
        "acknowledging an id twice (no longer in the cache) is ignored",
        "acknowledged ids not in the cache are ignored",
        |c| {
            ropen(c)?;
            let id = c.id();
            c.send_bytes(&call(id, method::ECHO, b"x"))?;
            c.response(id)?;
            c.send_bytes(&ack(&[id]))?;
            c.send_bytes(&ack(&[id, id]))?;
            c.alive()
        },
    );
    b.d(
        "13.6",
        "beyond reply_cache_entries the oldest reply is evicted: its retransmission gets REPLY_EVICTED",
        "When adding an entry would exceed either bound, the peer evicts entries oldest first ... a later retransmission of an evicted request is answered with REPLY_EVICTED",
        |c| {
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
                let mut bytes = Vec::new();
                let mut ids = Vec::new();
                for _ in 0..k {
                    let id = c.id();
                    ids.push(id);
                    bytes.extend_from_slice(&call(id, method::ECHO, b""));
                }
                c.send_bytes(&bytes)?;
                for id in ids {
                    c.response(id)?;
                }
                left -= k;
            }
            resume(c, &t)?;
            c.send_bytes(&call(first, method::SINK, b"oldest"))?;
            expect_resp(c, first, Status::REPLY_EVICTED, b"")
        },
    );

    // §13.7 streams
    b.d(
        "13.7",
        "STREAM_RESUME on a connection that did not resume a session is a PROTOCOL_ERROR",
        "received outside a connection that resumed a session ... | PROTOCOL_ERROR",
        |c| {
            ropen(c)?;
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            c.alive()?;
            c.send_bytes(&stream_resume(id, 0))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.7",
        "STREAM_RESUME for an id never opened is a PROTOCOL_ERROR",
        "id never opened (§6.4) | PROTOCOL_ERROR",
        |c| {
            let t = ropen(c)?;
            c.call_ok(method::ECHO, b"x")?;
            resume(c, &t)?;
            c.send_bytes(&stream_resume(40, 0))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.7",
        "STREAM_RESUME for a stream closed at the implementation: STREAM_RESET(REPLY_EVICTED)",
        "stream closed at the receiver | send STREAM_RESET(id, REPLY_EVICTED)",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::COUNT, &count_init(1, None), true)?;
            let (_, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            c.alive()?;
            resume(c, &t)?;
            c.send_bytes(&stream_resume(id, 2))?;
            let o = c.expect(
                "STREAM_RESET REPLY_EVICTED",
                T,
                |f| matches!(f, Frame::StreamReset { id: x, .. } if *x == id),
            )?;
            match o.frame() {
                Frame::StreamReset { status: Status::REPLY_EVICTED, .. } => Ok(()),
                f => fail("STREAM_RESET REPLY_EVICTED", describe(&f)),
            }
        },
    );
    b.d(
        "13.7",
        "a retransmitted STREAM_OPEN for a stream that ended: STREAM_RESET(REPLY_EVICTED)",
        "otherwise → reply STREAM_RESET(id, REPLY_EVICTED) (the stream ended at the responder and its outcome is lost)",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::COUNT, &count_init(1, None), true)?;
            let (_, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            c.alive()?;
            resume(c, &t)?;
            let mut r = req(id, method::COUNT, &[0, 0, 0, 1]);
            r.flags = flags::FIN;
            c.send_bytes(&e(Frame::StreamOpen(r)))?;
            let o = c.expect("STREAM_RESET REPLY_EVICTED", T, |f| matches!(f, Frame::StreamReset { id: x, .. } if *x == id))?;
            match o.frame() {
                Frame::StreamReset { status: Status::REPLY_EVICTED, .. } => Ok(()),
                f => fail("STREAM_RESET REPLY_EVICTED", describe(&f)),
            }
        },
    );
    b.d(
        "13.7",
        "after resumption the implementation sends STREAM_RESUME counting the runner's items received",
        "each peer sends STREAM_RESUME(id, received_items) for every stream open at it that was carried over ... received_items counts the items of the other peer's direction received plus 1 if that direction's terminal was received",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::BIDI, b"", false)?;
            c.send(&[
                Frame::StreamData { flags: 0, id, total_len: None, payload: b"a" },
                Frame::StreamData { flags: 0, id, total_len: None, payload: b"b" },
            ])?;
            let _ = c.expect("the echo of item 1", T, |f| matches!(f, Frame::StreamData { payload, .. } if *payload == b"b"))?;
            resume(c, &t)?;
            let o = c.expect("STREAM_RESUME for the stream", T, |f| matches!(f, Frame::StreamResume { id: x, .. } if *x == id))?;
            if let Frame::StreamResume { received, .. } = o.frame() {
                if received != 2 {
                    return fail("STREAM_RESUME received=2", describe(&o.frame()));
                }
            }
            c.send_bytes(&stream_resume(id, 2))?;
            c.send(&[Frame::StreamFin { id, status: Status::OK }])?;
            let (items, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            if !items.is_empty() {
                return fail("no item retransmitted (the runner announced both received)", format!("{items:02x?}"));
            }
            Ok(())
        },
    );
    b.d(
        "13.7",
        "STREAM_RESUME(k) makes the implementation retransmit its items numbered ≥ k, then the terminal",
        "stream open; otherwise | drop retained items numbered < k; retransmit, in order, the items numbered ≥ k and then the terminal if one was sent and its number is ≥ k",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::COUNT, &count_init(3, None), false)?;
            let (items, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            if items.len() != 3 {
                return fail("3 items", format!("{}", items.len()));
            }
            resume(c, &t)?;
            c.send_bytes(&stream_resume(id, 1))?;
            let (again, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            if again != vec![be(1), be(2)] {
                return fail("items 1 and 2 retransmitted", format!("{again:02x?}"));
            }
            c.send(&[Frame::StreamFin { id, status: Status::OK }])?;
            c.alive()
        },
    );
    b.d(
        "13.7",
        "STREAM_RESUME counting every item and the terminal: nothing is retransmitted",
        "drop retained items numbered < k; retransmit ... the items numbered ≥ k and then the terminal if one was sent and its number is ≥ k",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::COUNT, &count_init(2, None), false)?;
            let (_, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            resume(c, &t)?;
            c.send_bytes(&stream_resume(id, 3))?;
            c.none("STREAM_DATA or a terminal on the stream", QUIET, |f| {
                matches!(f, Frame::StreamData { id: x, .. } | Frame::StreamFin { id: x, .. } | Frame::StreamReset { id: x, .. } if *x == id)
            })?;
            c.send(&[Frame::StreamFin { id, status: Status::OK }])?;
            c.alive()
        },
    );
    b.d(
        "13.7",
        "STREAM_RESUME counting more than the implementation sent is a PROTOCOL_ERROR",
        "stream open; k > number of items plus terminal the receiver has sent in its direction | PROTOCOL_ERROR",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            c.alive()?;
            resume(c, &t)?;
            c.send_bytes(&stream_resume(id, 5))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.7",
        "a second STREAM_RESUME for the same stream is a PROTOCOL_ERROR",
        "or a second time for the same stream on this connection | PROTOCOL_ERROR",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::HOLD_STREAM, b"", false)?;
            c.alive()?;
            resume(c, &t)?;
            c.send_bytes(&stream_resume(id, 0))?;
            c.alive()?;
            c.send_bytes(&stream_resume(id, 0))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "13.7",
        "no item on a carried-over stream before the runner's STREAM_RESUME; then every item again",
        "A peer MUST NOT send STREAM_DATA or a terminal on a carried-over stream before it has received the other peer's STREAM_RESUME (or a STREAM_RESET) for it",
        |c| {
            let t = ropen(c)?;
            let id = open_stream(c, method::COUNT, &count_init(3, None), false)?;
            let (_, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            resume(c, &t)?;
            c.none("STREAM_DATA or a terminal before the runner's STREAM_RESUME", QUIET, |f| {
                matches!(f, Frame::StreamData { id: x, .. } | Frame::StreamFin { id: x, .. } | Frame::StreamReset { id: x, .. } if *x == id)
            })?;
            c.send_bytes(&stream_resume(id, 0))?;
            let (again, term) = drain_stream(c, id, T)?;
            fin_ok(&term)?;
            if again != vec![be(0), be(1), be(2)] {
                return fail("items 0, 1 and 2 retransmitted", format!("{again:02x?}"));
            }
            c.send(&[Frame::StreamFin { id, status: Status::OK }])?;
            c.alive()
        },
    );
    b.d(
        "13.5",
        "the implementation retransmits its own unanswered CALL after resumption, with its id",
        "After the resumed handshake, before opening any new exchange, each peer (both the dialer and the acceptor): retransmits, in increasing id order, the opening message of every call and notification it opened that has not received its RESPONSE",
        |c| {
            let t = ropen(c)?;
            let cb = c.callback(kind::CALL, RUNNER_METHOD, 0, b"inner")?;
            let (id, m, me, _, p) = expect_call(c)?;
            resume(c, &t)?;
            let (id2, m2, me2, _, p2) = expect_call(c)?;
            if (id2, m2, me2, &p2) != (id, m, me, &p) {
                return fail(format!("CALL id={id} {m}/{me} {p:02x?} again"), format!("CALL id={id2} {m2}/{me2} {p2:02x?}"));
            }
            // The runner's CALLBACK is unanswered too: retransmit it (§13.5), it is still open.
            let body = crate::service::Callback { kind: kind::CALL, method: RUNNER_METHOD, timeout_ms: 0, payload: b"inner".to_vec() }.encode();
            c.send_bytes(&call(cb, method::CALLBACK, &body))?;
            c.send(&[Frame::Response { flags: 0, id, status: Status::OK, total_len: None, payload: b"answer" }])?;
            let (s, p) = c.callback_result(cb)?;
            status_is("inner status", s, Status::OK)?;
            if p != b"answer" {
                return fail("inner payload answer", format!("{p:02x?}"));
            }
            Ok(())
        },
    );

    // §13.8 example
    b.d(
        "13.8",
        "the example: retransmitted CALL answered from the cache, then ACK",
        "retransmitted CALL 4 ... cached RESPONSE; the handler does not run again ... ACK id 4; the acceptor drops the cache entry",
        |c| {
            let t = ropen(c)?;
            for i in [0u64, 2] {
                c.send_bytes(&call(i, method::ECHO, b""))?;
                c.response(i)?;
            }
            c.send_bytes(&call(4, method::ECHO, b"hi"))?;
            c.response(4)?;
            resume(c, &t)?;
            c.send_bytes(&call(4, method::ECHO, b"hi"))?;
            expect_resp(c, 4, Status::OK, b"hi")?;
            c.send_bytes(&[0x06, 0x03, 0x01, 0x04, 0x01])?;
            c.alive()
        },
    );
}

fn params_of(c: &Ctx) -> Vec<(u64, u64)> {
    match c.peer_hello.as_ref().map(|o| o.frame()) {
        Some(Frame::Hello(h)) => h.params.iter().collect(),
        _ => Vec::new(),
    }
}
