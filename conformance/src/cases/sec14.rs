//! §14 datagram mode (and §9.6, no fragmentation over UDP): played as raw datagrams over
//! `udp://`; the runner skips these cases on every other transport (and the other cases over
//! `udp://`). Each `send`/`send_bytes` of the runner is exactly one datagram.

use super::*;

/// Why §14 cases are skipped on other transports.
pub const NEEDS_UDP: &str = "datagram mode (SPEC.md §14): runs only against a udp:// address";

/// The duplicate window W of SPEC.md §14.5.
pub const WINDOW: u64 = 1024;

/// An id of the runner's parity that puts id 0 (and 2) below the implementation's window.
const ABOVE_WINDOW: u64 = 2 * (WINDOW + 76);

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

/// PING `data` followed, in the same datagram, by `rest`: the datagram the implementation must
/// drop whole (no PONG), after which the association must still work.
pub fn ping_then(data: [u8; 8], rest: &[u8]) -> Vec<u8> {
    let mut d = e(Frame::Ping(data));
    d.extend_from_slice(rest);
    d
}

/// A datagram of exactly `size` bytes: a PING then one extension frame as padding.
pub fn padded_ping(data: [u8; 8], size: usize) -> Vec<u8> {
    let mut d = e(Frame::Ping(data));
    // Extension frame 0x80: type, varint length, body.
    let room = size.saturating_sub(d.len());
    let mut body = room.saturating_sub(3);
    loop {
        let mut len = Vec::new();
        super::sec13::put_varint(&mut len, body as u64);
        let total = 1 + len.len() + body;
        if total == room {
            d.push(0x80);
            d.extend_from_slice(&len);
            d.resize(d.len() + body, 0);
            return d;
        }
        if total > room {
            body -= total - room;
        } else {
            body += room - total;
        }
    }
}

/// Requires that the datagram just sent was dropped whole: no PONG for `data`, and the
/// association still answers a PING.
fn dropped(c: &mut Ctx, data: [u8; 8]) -> R {
    c.none("PONG for a PING in a datagram that must be dropped whole", QUIET, |f| *f == Frame::Pong(data))?;
    c.alive()
}

/// The SLEEP call of `ms` milliseconds as one datagram.
fn sleep(id: u64, ms: u32) -> Vec<u8> {
    call(id, method::SLEEP, &be(ms))
}

pub(super) fn sec14(b: &mut B) {
    // §14.1 associations
    b.d(
        "14.1",
        "a first datagram that is not a HELLO creates no association and is dropped",
        "a datagram from an address with no association creates one only if its first frame is a HELLO; other datagrams from unknown addresses are dropped",
        |c| {
            c.transport()?;
            c.send(&[Frame::Ping(*b"nohello!")])?;
            c.none("any answer to a datagram without HELLO", QUIET, |_| true)?;
            c.w = None;
            c.open()?;
            c.alive()
        },
    );
    b.d(
        "14.1",
        "the acceptor's HELLO over UDP has an empty session token and RESUME clear",
        "Sessions and resumption (§13) are not used: the acceptor sends an empty session token, and the dialer never sets RESUME",
        |c| {
            c.open()?;
            match c.peer_hello.as_ref().map(|o| o.frame()) {
                Some(Frame::Hello(h)) if h.session.is_empty() && h.flags & 1 == 0 => Ok(()),
                Some(f) => fail("HELLO with session=[] and RESUME clear", describe(&f)),
                None => fail("HELLO", "none"),
            }
        },
    );

    // §14.2 datagrams and invalid input
    b.d(
        "14.2",
        "two frames in one datagram are both processed",
        "Each datagram carries one or more whole frames",
        |c| {
            c.open()?;
            let mut d = e(Frame::Ping(*b"first!!!"));
            d.extend_from_slice(&e(Frame::Ping(*b"second!!")));
            c.send_bytes(&d)?;
            c.expect("PONG first!!!", T, |f| *f == Frame::Pong(*b"first!!!"))?;
            c.expect("PONG second!!", T, |f| *f == Frame::Pong(*b"second!!")).map(drop)
        },
    );
    b.d(
        "14.2",
        "a datagram with an undecodable frame after a PING is dropped whole; the association continues",
        "If any frame has a decode error (§3.3 ...) ... the whole datagram is dropped — none of its frames is processed — and the connection continues",
        |c| {
            c.open()?;
            c.send_bytes(&ping_then(*b"drop-me1", &[0x08, 0x01, 0x00]))?;
            dropped(c, *b"drop-me1")
        },
    );
    b.d(
        "14.2",
        "a datagram ending inside a frame is dropped whole (Truncated)",
        "If any frame has a decode error (§3.3, including `Truncated` and `FrameTooLarge`) ... the whole datagram is dropped",
        |c| {
            c.open()?;
            let mut cl = call(0, method::SINK, b"never");
            cl.truncate(cl.len() - 2);
            c.send_bytes(&ping_then(*b"drop-me2", &cl))?;
            dropped(c, *b"drop-me2")?;
            let n = sink_calls(c)?;
            if n != 0 {
                return fail("SINK never run", format!("{n} calls"));
            }
            Ok(())
        },
    );
    b.d(
        "14.2",
        "a datagram with a frame above max_frame_size is dropped whole (FrameTooLarge)",
        "If any frame has a decode error (§3.3, including `Truncated` and `FrameTooLarge`) ... the whole datagram is dropped",
        |c| {
            c.open()?;
            let limit = c.peer_frame() as u64;
            let mut rest = vec![0x80];
            super::sec13::put_varint(&mut rest, limit + 1);
            c.send_bytes(&ping_then(*b"drop-me3", &rest))?;
            dropped(c, *b"drop-me3")
        },
    );
    b.d(
        "14.2",
        "a datagram above the implementation's max_datagram_size is dropped whole",
        "If ... the datagram exceeds the receiver's `max_datagram_size`, the whole datagram is dropped",
        |c| {
            c.open()?;
            let max = match c.p(10) {
                0 => 1200,
                m => m as usize,
            };
            if max >= 65507 {
                return skip(format!("max_datagram_size {max} cannot be exceeded by a UDP datagram"));
            }
            c.send_bytes(&padded_ping(*b"drop-me4", max + 1))?;
            dropped(c, *b"drop-me4")
        },
    );
    b.d(
        "14.2",
        "a datagram of exactly max_datagram_size bytes is processed",
        "Each datagram ... MUST NOT exceed the receiver's `max_datagram_size` (default 1200 on UDP)",
        |c| {
            c.open()?;
            let max = match c.p(10) {
                0 => 1200,
                m => (m as usize).min(65507),
            };
            c.send_bytes(&padded_ping(*b"fits-max", max))?;
            c.expect("PONG", T, |f| *f == Frame::Pong(*b"fits-max")).map(drop)
        },
    );
    b.d("14.2", "an empty datagram is ignored", "Empty datagrams are ignored", |c| {
        c.open()?;
        c.send_bytes(&[])?;
        c.alive()
    });
    b.d(
        "14.2",
        "a protocol violation found after decoding is still fatal: RESPONSE for an id the implementation never used",
        "Violations of protocol rules found after decoding remain connection-fatal ... (A RESPONSE for an id of the receiver's own parity that it has never used is still a PROTOCOL_ERROR",
        |c| {
            c.open()?;
            c.send(&[Frame::Response { flags: 0, id: 41, status: Status::OK, total_len: None, payload: b"" }])?;
            c.expect_close(PE)
        },
    );

    // §14.3 handshake
    b.d(
        "14.3",
        "a byte-identical copy of the dialer's HELLO is answered with a byte-identical HELLO",
        "The acceptor answers every copy of the dialer's HELLO with its own HELLO (byte-identical each time)",
        |c| {
            c.open()?;
            let first = c.peer_hello.clone();
            let h = hello_bytes(1, 1, 0, c.name.as_bytes(), b"", &c.mine.clone());
            c.send_bytes(&h)?;
            let again = c.expect("the acceptor's HELLO again", T, |f| matches!(f, Frame::Hello(_)))?;
            if Some(&again) != first.as_ref() {
                return fail(
                    first.map(|o| describe(&o.frame())).unwrap_or_default(),
                    describe(&again.frame()),
                );
            }
            c.alive()
        },
    );
    b.d(
        "14.3",
        "a repeated HELLO after calls is not a second HELLO: the association and its reply cache survive",
        "A byte-identical repetition of the dialer's HELLO is not a \"second HELLO\" (§5.2)",
        |c| {
            c.open()?;
            c.send_bytes(&call(0, method::SINK, b"a"))?;
            expect_resp(c, 0, Status::OK, b"")?;
            let h = hello_bytes(1, 1, 0, c.name.as_bytes(), b"", &c.mine.clone());
            c.send_bytes(&h)?;
            c.expect("the acceptor's HELLO again", T, |f| matches!(f, Frame::Hello(_)))?;
            c.send_bytes(&call(0, method::SINK, b"a"))?;
            expect_resp(c, 0, Status::OK, b"")?;
            let n = sink_calls(c)?;
            if n != 1 {
                return fail("SINK counted once", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.3",
        "a different HELLO from the same address starts a new association (ids start over)",
        "A *different* HELLO from the same address ends the old association (its exchanges resolve UNAVAILABLE) and starts a new one",
        |c| {
            c.open()?;
            c.send_bytes(&call(0, method::ECHO, b"old"))?;
            expect_resp(c, 0, Status::OK, b"old")?;
            let h = hello_bytes(1, 1, 0, format!("{}-2", c.name).as_bytes(), b"", &c.mine.clone());
            c.send_bytes(&h)?;
            c.expect("the acceptor's HELLO for the new association", T, |f| matches!(f, Frame::Hello(_)))?;
            // In the old association id 0 was ECHO "old": a different request with id 0 would be
            // a digest mismatch there; in the new one it is a new call.
            c.send_bytes(&call(0, method::ECHO, b"new"))?;
            expect_resp(c, 0, Status::OK, b"new")
        },
    );
    b.a(
        "14.3",
        "the implementation as dialer retransmits its HELLO byte-identically until answered",
        "The dialer retransmits its HELLO (byte-identical copies) on the retransmission timer of §14.4 until it receives the acceptor's HELLO or CLOSE",
        |c| {
            c.transport()?;
            let first = c.expect("the dialer's HELLO", T, |f| matches!(f, Frame::Hello(_)))?;
            let again = c.expect("a retransmission of the dialer's HELLO", T, |f| matches!(f, Frame::Hello(_)))?;
            if again != first {
                return fail(describe(&first.frame()), describe(&again.frame()));
            }
            c.take_hello(&first)?;
            let h = hello_bytes(1, 1, 0, c.name.as_bytes(), b"", &[]);
            c.send_bytes(&h)?;
            c.alive()
        },
    );
    b.a(
        "14.3",
        "the dialer ignores a byte-identical copy of the acceptor's HELLO",
        "The dialer ignores byte-identical copies of the acceptor's HELLO",
        |c| {
            c.open()?;
            let h = hello_bytes(1, 1, 0, c.name.as_bytes(), b"", &[]);
            c.send_bytes(&h)?;
            c.alive()
        },
    );
    b.a(
        "14.3",
        "a different second HELLO from the acceptor is a PROTOCOL_ERROR",
        "The dialer ignores byte-identical copies of the acceptor's HELLO; a different one is a PROTOCOL_ERROR",
        |c| {
            c.open()?;
            let h = hello_bytes(1, 1, 0, b"another-acceptor-name", b"", &[]);
            c.send_bytes(&h)?;
            c.expect_close(PE)
        },
    );

    // §14.4 retransmission
    b.d(
        "14.4",
        "the implementation retransmits an unanswered CALL with the same id, method and payload",
        "CALL, NOTIFY | its RESPONSE arrives ... A retransmitted CALL or NOTIFY carries the original id, module, method and payload, and `budget_us` = the remaining budget (≥ 1)",
        |c| {
            c.open()?;
            let cb = c.callback(kind::CALL, RUNNER_METHOD, 8000, b"again")?;
            let (id, m, me, budget, p) = expect_call(c)?;
            let (id2, m2, me2, budget2, p2) = expect_call(c)?;
            if (id2, m2, me2, &p2) != (id, m, me, &p) {
                return fail(format!("CALL id={id} {m}/{me} {p:02x?}"), format!("CALL id={id2} {m2}/{me2} {p2:02x?}"));
            }
            if budget2 == 0 || budget2 > budget {
                return fail(format!("budget_us in 1..={budget}"), format!("{budget2}"));
            }
            c.send(&[Frame::Response { flags: 0, id, status: Status::OK, total_len: None, payload: b"ok" }])?;
            let (s, p) = c.callback_result(cb)?;
            status_is("inner status", s, Status::OK)?;
            if p != b"ok" {
                return fail("inner payload ok", format!("{p:02x?}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.4",
        "after its deadline, the implementation retransmits CANCEL until the RESPONSE arrives",
        "CANCEL | the RESPONSE of the cancelled exchange arrives",
        |c| {
            c.open()?;
            let cb = c.callback(kind::CALL, RUNNER_METHOD, 300, b"late")?;
            let (id, ..) = expect_call(c)?;
            c.expect("CANCEL", T, |f| *f == Frame::Cancel { id })?;
            c.expect("CANCEL retransmitted", T, |f| *f == Frame::Cancel { id })?;
            c.send(&[Frame::Response {
                flags: 0,
                id,
                status: Status::CANCELLED,
                total_len: None,
                payload: b"",
            }])?;
            let (s, _) = c.callback_result(cb)?;
            status_is("inner status", s, Status::DEADLINE_EXCEEDED)
        },
    );
    b.d(
        "14.4",
        "beyond max_concurrent_calls over UDP: RESPONSE(RESOURCE_EXHAUSTED), not a connection error",
        "Over UDP an opening frame that would exceed the responder's `max_concurrent_calls` is not a connection error: the responder answers RESPONSE(RESOURCE_EXHAUSTED, empty)",
        |c| {
            c.open()?;
            let n = c.p(3);
            if n == 0 || n > 64 {
                return skip(format!("max_concurrent_calls {n} (needs 1..=64)"));
            }
            for _ in 0..n {
                let id = c.id();
                c.send_bytes(&sleep(id, 1000))?;
            }
            let extra = c.id();
            c.send_bytes(&sleep(extra, 1000))?;
            expect_resp(c, extra, Status::RESOURCE_EXHAUSTED, b"")?;
            c.alive()
        },
    );
    b.d(
        "14.4",
        "an ACK naming an id the implementation has not seen opened is dropped silently",
        "a RESPONSE, STREAM_* or ACK frame naming an id that the receiver has not yet seen opened by the other peer (it may have overtaken its opening frame) is dropped silently instead of being a PROTOCOL_ERROR",
        |c| {
            c.open()?;
            c.send_bytes(&[0x06, 0x03, 0x01, 0x3c, 0x01])?;
            c.alive()
        },
    );

    // §14.5 duplicate detection
    b.d(
        "14.5",
        "a duplicate CALL is answered from the reply cache; the handler runs once",
        "X seen or below the window, RESPONSE in the reply cache | resend the cached RESPONSE",
        |c| {
            c.open()?;
            c.send_bytes(&call(0, method::SINK, b"dup"))?;
            expect_resp(c, 0, Status::OK, b"")?;
            c.send_bytes(&call(0, method::SINK, b"dup"))?;
            expect_resp(c, 0, Status::OK, b"")?;
            let n = sink_calls(c)?;
            if n != 1 {
                return fail("SINK counted once", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.5",
        "a duplicate of a call still running is ignored: one RESPONSE, one run",
        "X in the window, seen, exchange still open | ignore (the RESPONSE will come when the application responds)",
        |c| {
            c.open()?;
            c.send_bytes(&sleep(0, 500))?;
            c.send_bytes(&sleep(0, 500))?;
            expect_resp(c, 0, Status::OK, &[0])?;
            c.none("a second RESPONSE id=0", QUIET, |f| matches!(f, Frame::Response { id: 0, .. }))?;
            let r = c.recorded()?;
            let n = r.iter().filter(|e| e.as_slice() == entry::SLEEP_DONE).count();
            if n != 1 {
                return fail("one sleep:done", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.5",
        "calls arriving out of order inside the window are new exchanges",
        "X > H, or X in the window and not seen | new exchange: mark X seen ... and process it normally",
        |c| {
            c.open()?;
            c.send_bytes(&call(4, method::SINK, b"4"))?;
            expect_resp(c, 4, Status::OK, b"")?;
            c.send_bytes(&call(2, method::SINK, b"2"))?;
            expect_resp(c, 2, Status::OK, b"")?;
            let n = sink_calls(c)?;
            if n != 2 {
                return fail("SINK counted twice", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.5",
        "a call below the window that is not cached: RESPONSE(REPLY_EVICTED), never run",
        "X in the window, seen, not open, not cached; or X below the window and not cached | RESPONSE(REPLY_EVICTED, empty)",
        |c| {
            c.open()?;
            c.send_bytes(&call(ABOVE_WINDOW, method::ECHO, b""))?;
            c.response(ABOVE_WINDOW)?;
            c.send_bytes(&call(0, method::SINK, b"old"))?;
            expect_resp(c, 0, Status::REPLY_EVICTED, b"")?;
            let n = sink_calls(c)?;
            if n != 0 {
                return fail("SINK never run", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.5",
        "a duplicate with another payload is a PROTOCOL_ERROR",
        "A duplicate whose digest (§13.5) differs from the original's is a PROTOCOL_ERROR",
        |c| {
            c.open()?;
            c.send_bytes(&call(0, method::ECHO, b"one"))?;
            c.response(0)?;
            c.send_bytes(&call(0, method::ECHO, b"two"))?;
            c.expect_close(PE)
        },
    );
    b.d(
        "14.5",
        "CANCEL before its CALL: RESPONSE(CANCELLED) at once, and the CALL arriving later never runs",
        "if X is above H or in the window and not seen, the responder marks X seen, records RESPONSE(CANCELLED, empty) in its reply cache and sends it — the request will never run, even if its CALL arrives later",
        |c| {
            c.open()?;
            c.send(&[Frame::Cancel { id: 0 }])?;
            expect_resp(c, 0, Status::CANCELLED, b"")?;
            c.send_bytes(&call(0, method::SINK, b"late"))?;
            expect_resp(c, 0, Status::CANCELLED, b"")?;
            let n = sink_calls(c)?;
            if n != 0 {
                return fail("SINK never run", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.5",
        "CANCEL of a running call cancels it as usual",
        "A CANCEL for id X: if the exchange is open, it is cancelled as usual (§7.1.2)",
        |c| {
            c.open()?;
            c.send_bytes(&sleep(0, 3000))?;
            c.none("RESPONSE", Duration::from_millis(50), |f| matches!(f, Frame::Response { .. }))?;
            c.send(&[Frame::Cancel { id: 0 }])?;
            let (s, _) = c.response(0)?;
            status_is("RESPONSE", s, Status::CANCELLED)?;
            c.wait_recorded(entry::SLEEP_CANCELLED)
        },
    );
    b.d(
        "14.5",
        "CANCEL of an answered call resends the cached RESPONSE",
        "if its RESPONSE is cached, the cached RESPONSE is resent",
        |c| {
            c.open()?;
            c.send_bytes(&call(0, method::ECHO, b"kept"))?;
            expect_resp(c, 0, Status::OK, b"kept")?;
            c.send(&[Frame::Cancel { id: 0 }])?;
            expect_resp(c, 0, Status::OK, b"kept")
        },
    );
    b.d(
        "14.5",
        "CANCEL below the window, not cached: RESPONSE(REPLY_EVICTED)",
        "if X is below the window and not cached, it answers RESPONSE(REPLY_EVICTED)",
        |c| {
            c.open()?;
            c.send_bytes(&call(ABOVE_WINDOW, method::ECHO, b""))?;
            c.response(ABOVE_WINDOW)?;
            c.send(&[Frame::Cancel { id: 2 }])?;
            expect_resp(c, 2, Status::REPLY_EVICTED, b"")
        },
    );

    // §14.6 ACK
    b.d(
        "14.6",
        "ACK trims the reply cache: a later duplicate gets REPLY_EVICTED",
        "A caller acknowledges received RESPONSEs with ACK (§4.6) so that the responder can trim its cache",
        |c| {
            c.open()?;
            c.send_bytes(&call(0, method::SINK, b"a"))?;
            expect_resp(c, 0, Status::OK, b"")?;
            c.send_bytes(&[0x06, 0x03, 0x01, 0x00, 0x01])?;
            c.alive()?;
            c.send_bytes(&call(0, method::SINK, b"a"))?;
            expect_resp(c, 0, Status::REPLY_EVICTED, b"")?;
            let n = sink_calls(c)?;
            if n != 1 {
                return fail("SINK counted once", format!("{n}"));
            }
            Ok(())
        },
    );
    b.d(
        "14.6",
        "beyond reply_cache_entries the oldest reply is evicted: its duplicate gets REPLY_EVICTED",
        "The reply cache (§13.6 rules) is mandatory in datagram mode: every RESPONSE sent is cached, bounded by the announced `reply_cache_entries` and `reply_cache_bytes`, evicted oldest first",
        |c| {
            c.open()?;
            // 0: nothing is cached, so even the first reply is gone.
            let n = c.p(11);
            if n > 1000 {
                return skip(format!("reply_cache_entries {n} is too large to fill quickly (needs ≤ 1000)"));
            }
            c.send_bytes(&call(0, method::SINK, b"oldest"))?;
            expect_resp(c, 0, Status::OK, b"")?;
            let _ = c.id();
            for _ in 0..n {
                let id = c.id();
                c.send_bytes(&call(id, method::ECHO, b""))?;
                c.response(id)?;
            }
            c.send_bytes(&call(0, method::SINK, b"oldest"))?;
            expect_resp(c, 0, Status::REPLY_EVICTED, b"")
        },
    );

    // §14.7 no streams
    b.d(
        "14.7",
        "STREAM_OPEN over UDP is answered STREAM_RESET(UNIMPLEMENTED)",
        "A peer that receives STREAM_OPEN over UDP answers STREAM_RESET(id, UNIMPLEMENTED), whatever its `max_concurrent_streams`, keeps no state, and the id is closed",
        |c| {
            c.open()?;
            c.send(&[Frame::StreamOpen(req(0, method::COUNT, &be(2)))])?;
            let o = c.expect("STREAM_RESET id=0", T, |f| matches!(f, Frame::StreamReset { id: 0, .. }))?;
            match o.frame() {
                Frame::StreamReset { status: Status::UNIMPLEMENTED, .. } => {}
                f => return fail("STREAM_RESET UNIMPLEMENTED", describe(&f)),
            }
            c.none("STREAM_DATA", QUIET, |f| matches!(f, Frame::StreamData { .. }))?;
            c.alive()
        },
    );
    let ignored: [(&str, Vec<u8>); 6] = [
        ("STREAM_DATA", e(Frame::StreamData { flags: 0, id: 0, total_len: None, payload: b"x" })),
        ("STREAM_FIN", e(Frame::StreamFin { id: 0, status: Status::OK })),
        ("STREAM_RESET", e(Frame::StreamReset { id: 0, status: Status::CANCELLED })),
        ("STREAM_CREDIT", e(Frame::StreamCredit { id: 1, msgs: 1, bytes: 1 })),
        ("STREAM_RESUME", e(Frame::StreamResume { id: 0, received: 0 })),
        ("CONN_CREDIT", e(Frame::ConnCredit { bytes: 1000 })),
    ];
    for (name, bytes) in ignored {
        b.d(
            "14.7",
            &format!("{name} over UDP is ignored"),
            "It ignores STREAM_DATA, STREAM_FIN, STREAM_RESET, STREAM_CREDIT, STREAM_RESUME and CONN_CREDIT received over UDP",
            move |c| {
                c.open()?;
                c.send_bytes(&bytes)?;
                c.alive()
            },
        );
    }

    // §14.8 SIGNAL, PING, GOAWAY and CLOSE
    b.d(
        "14.8",
        "a SIGNAL datagram is processed once",
        "SIGNAL is sent once, in one datagram; it is never retransmitted and never acknowledged",
        |c| {
            c.open()?;
            c.send(&[Frame::Signal { module: MODULE, method: method::RECORD, payload: b"sig" }])?;
            c.wait_recorded(b"sig")
        },
    );
    b.d(
        "14.8",
        "CLOSE from the runner ends the association: a later CALL is not answered",
        "A peer that receives CLOSE ends the association at once",
        |c| {
            c.open()?;
            c.send(&[Frame::Close { status: Status::OK, message: b"" }])?;
            c.send_bytes(&call(0, method::ECHO, b"after close"))?;
            c.none("RESPONSE after CLOSE", QUIET, |f| matches!(f, Frame::Response { .. }))
        },
    );
    b.d(
        "14.8",
        "after its CLOSE the implementation answers later datagrams with the same CLOSE, if at all",
        "A peer that has sent CLOSE SHOULD answer further datagrams of the association with the same CLOSE (at most once per RTO) for 3·RTO",
        |c| {
            c.open()?;
            c.send(&[Frame::Response { flags: 0, id: 41, status: Status::OK, total_len: None, payload: b"" }])?;
            let close = c.expect("CLOSE", T, |f| matches!(f, Frame::Close { .. }))?;
            c.send(&[Frame::Ping(*b"closed?!")])?;
            match c.w().recv(QUIET) {
                Recv::Timeout => Ok(()),
                Recv::Frame(o) if o == close => Ok(()),
                Recv::Frame(o) => fail(describe(&close.frame()), describe(&o.frame())),
                Recv::Eof | Recv::Failed(_) => Ok(()),
                Recv::Bad(e) => fail("the same CLOSE or nothing", format!("{e:?}")),
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_core::frame::Decoded;

    fn frames(mut d: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while !d.is_empty() {
            match Frame::decode(d, usize::MAX >> 1) {
                Ok(Decoded::Frame(f, n)) => {
                    out.push(describe(&f));
                    d = &d[n..];
                }
                other => {
                    out.push(format!("{other:?}"));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn padded_datagrams_have_the_exact_size_and_decode_to_a_ping_and_an_extension() {
        for size in [1200usize, 1201, 1500, 16383, 16384, 16385, 65507] {
            let d = padded_ping(*b"12345678", size);
            assert_eq!(d.len(), size);
            let f = frames(&d);
            assert_eq!(f.len(), 2, "{size}: {f:?}");
            assert!(f[0].starts_with("PING"), "{f:?}");
            assert!(f[1].starts_with("EXTENSION type=0x80"), "{f:?}");
        }
    }

    #[test]
    fn datagrams_that_must_be_dropped_whole_start_with_a_valid_ping_then_fail_to_decode() {
        let mut cl = call(0, method::SINK, b"never");
        cl.truncate(cl.len() - 2);
        let mut big = vec![0x80];
        super::super::sec13::put_varint(&mut big, 4097);
        for (rest, err) in
            [(vec![0x08, 0x01, 0x00], "UnknownFrameType"), (cl, "Truncated"), (big, "FrameTooLarge")]
        {
            let d = ping_then(*b"drop-me!", &rest);
            let Ok(Decoded::Frame(Frame::Ping(p), n)) = Frame::decode(&d, 4096) else { panic!("PING first") };
            assert_eq!(&p, b"drop-me!");
            let r = Frame::decode(&d[n..], 4096);
            let got = match r {
                Err(e) => format!("{e:?}"),
                Ok(Decoded::Incomplete(_)) => "Truncated".to_string(),
                Ok(x) => panic!("decodes: {x:?}"),
            };
            assert!(got.starts_with(err), "{got} vs {err}");
        }
    }

    #[test]
    fn the_ids_used_to_leave_the_window_put_0_and_2_below_it() {
        // Window: H, H-2, …, H-2(W-1).
        let lowest = ABOVE_WINDOW - 2 * (WINDOW - 1);
        assert!(lowest > 2 && ABOVE_WINDOW % 2 == 0);
    }

    #[test]
    fn the_ack_datagrams_are_the_ones_of_the_spec() {
        // §4.6 layout: count 1, (first_id, n).
        assert_eq!(frames(&[0x06, 0x03, 0x01, 0x00, 0x01]), vec!["ACK [(0, 1)]".to_string()]);
        assert_eq!(frames(&[0x06, 0x03, 0x01, 0x3c, 0x01]), vec!["ACK [(60, 1)]".to_string()]);
    }
}
