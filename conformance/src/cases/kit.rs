//! Shared helpers of the case modules: frame builders for tables, and the checks that code cases
//! (and the script interpreter) are made of.

pub(crate) use std::time::Duration;

pub(crate) use tandem_core::frame::{flags, ty, Frame, Request};
pub(crate) use tandem_core::{MethodId, Status};

pub(crate) use crate::service::{entry, kind, method, MODULE};
pub(crate) use crate::suite::{fail, hello_bytes, req, skip, Case, Ctx, Fail, QUIET, R, T};
pub(crate) use crate::wire::{describe, encode, Recv};
pub(crate) use tandem_core::frame::{flags::FIN, flags::MORE};

/// [`QUIET`] in milliseconds: how long a script watches for something that must not happen.
pub(crate) const Q: u64 = QUIET.as_millis() as u64;

pub(crate) const OK: Status = Status::OK;
pub(crate) const PE: Status = Status::PROTOCOL_ERROR;
pub(crate) const FEE: Status = Status::FRAME_ENCODING_ERROR;
pub(crate) const FTL: Status = Status::FRAME_TOO_LARGE;
pub(crate) const FCE: Status = Status::FLOW_CONTROL_ERROR;
pub(crate) const LIM: Status = Status::LIMIT_EXCEEDED;

/// A method of the runner itself (the implementation calls it back).
pub(crate) const RUNNER_METHOD: MethodId = MethodId::new(7, 1);

/// `x` as 4 big-endian bytes (the test service's u32).
pub(crate) fn be(x: u32) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

/// One frame, encoded.
pub(crate) fn e(f: Frame<'_>) -> Vec<u8> {
    encode(&f)
}

/// Frames back to back, encoded (sent as one transport write).
pub(crate) fn enc(frames: &[Frame<'_>]) -> Vec<u8> {
    frames.iter().flat_map(encode).collect()
}

/// A CALL of the test service.
pub(crate) fn call(id: u64, m: u32, p: &[u8]) -> Vec<u8> {
    e(Frame::Call(req(id, m, p)))
}

/// A NOTIFY of the test service.
pub(crate) fn notify(id: u64, m: u32, p: &[u8]) -> Vec<u8> {
    e(Frame::Notify(req(id, m, p)))
}

/// A STREAM_OPEN of the test service (`fin`: the opener sends no items).
pub(crate) fn stream(id: u64, m: u32, init: &[u8], fin: bool) -> Vec<u8> {
    e(Frame::StreamOpen(Request { flags: if fin { FIN } else { 0 }, ..req(id, m, init) }))
}

/// The first frame of a fragmented CALL: MORE, `total` bytes in all, `chunk` first.
pub(crate) fn call_first<'a>(id: u64, m: u32, chunk: &'a [u8], total: u64) -> Frame<'a> {
    Frame::Call(Request { flags: MORE, total_len: Some(total), ..req(id, m, chunk) })
}

/// A CONTINUATION of message `id` (`more`: more chunks follow).
pub(crate) fn cont(id: u64, payload: &[u8], more: bool) -> Frame<'_> {
    Frame::Continuation { flags: if more { MORE } else { 0 }, id, payload }
}

/// A STREAM_DATA item on stream `id`.
pub(crate) fn item(id: u64, payload: &[u8]) -> Frame<'_> {
    Frame::StreamData { flags: 0, id, total_len: None, payload }
}

/// A SLEEP call of `ms` milliseconds.
pub(crate) fn sleep(id: u64, ms: u32) -> Vec<u8> {
    call(id, method::SLEEP, &be(ms))
}

/// The acceptor HELLO of the runner in the cases where the implementation dials (name `runner`).
pub(crate) fn runner_hello(min: u32, max: u32, flags: u64, session: &[u8], params: &[(u64, u64)]) -> Vec<u8> {
    hello_bytes(min, max, flags, b"runner", session, params)
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

/// An ACK of `ids`, one range of one id each.
pub(crate) fn ack(ids: &[u64]) -> Vec<u8> {
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

/// A STREAM_RESUME frame.
pub(crate) fn stream_resume(id: u64, k: u64) -> Vec<u8> {
    e(Frame::StreamResume { id, received: k })
}

/// The initial payload of COUNT: `n` items (of `size` bytes).
pub(crate) fn count_init(n: u32, size: Option<u32>) -> Vec<u8> {
    let mut v = be(n);
    if let Some(s) = size {
        v.extend_from_slice(&be(s));
    }
    v
}

/// `n` bytes `i mod 251`.
pub(crate) fn bigbuf(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Waits for the implementation's CALL; returns (id, module, method, budget_us, whole payload).
pub(crate) fn expect_call(c: &mut Ctx) -> R<(u64, u32, u32, u64, Vec<u8>)> {
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

/// Waits for an opening frame of the implementation matching `pred`; returns (id, flags).
pub(crate) fn expect_open(c: &mut Ctx, what: &str, pred: impl Fn(&Frame<'_>) -> bool) -> R<(u64, u8)> {
    let o = c.expect(what, T, pred)?;
    match o.frame() {
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => Ok((r.id, r.flags)),
        f => fail(what, describe(&f)),
    }
}

/// Requires `got` to be `want`.
pub(crate) fn status_is(what: &str, got: Status, want: Status) -> R {
    if got == want {
        Ok(())
    } else {
        fail(format!("{what} {want:?}"), format!("{got:?}"))
    }
}

/// Sends RESPONSE(OK, empty) for the implementation's exchange `id`.
pub(crate) fn answer_ok(c: &mut Ctx, id: u64) -> R {
    c.send(&[Frame::Response { flags: 0, id, status: Status::OK, total_len: None, payload: b"" }])
}

/// Reads the items and the terminal of the implementation's direction of stream `id`.
pub(crate) fn drain_stream(c: &mut Ctx, id: u64, t: Duration) -> R<(Vec<Vec<u8>>, Frame<'static>)> {
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

/// Opens a stream of the test service with the runner's next id (fragmented if needed).
pub(crate) fn open_stream(c: &mut Ctx, m: u32, init: &[u8], fin: bool) -> R<u64> {
    let id = c.id();
    let mut r = req(id, m, init);
    if fin {
        r.flags = flags::FIN;
    }
    c.send_msg(ty::STREAM_OPEN, r)?;
    Ok(id)
}

/// The calls counted by SINK for this runner's name.
pub(crate) fn sink_calls(c: &mut Ctx) -> R<u64> {
    let p = c.call_ok(method::SINK_STATS, b"")?;
    match p.get(..8) {
        Some(b) => Ok(u64::from_be_bytes(b.try_into().unwrap_or_default())),
        None => fail("SINK_STATS: u64 calls, u64 bytes", format!("{p:02x?}")),
    }
}

/// Waits for RESPONSE `id` and requires its status and payload.
pub(crate) fn expect_resp(c: &mut Ctx, id: u64, st: Status, payload: &[u8]) -> R {
    let (s, p) = c.response(id)?;
    if s != st || p != payload {
        return fail(
            format!("RESPONSE id={id} {st:?} payload={payload:02x?}"),
            format!("{s:?} payload={p:02x?}"),
        );
    }
    Ok(())
}

/// How many times the service recorded `entry` for this runner's name.
pub(crate) fn recorded_times(c: &mut Ctx, entry: &[u8]) -> R<usize> {
    Ok(c.recorded()?.iter().filter(|e| e.as_slice() == entry).count())
}

/// Shows a payload in a failure: its bytes when short, its length otherwise.
pub(crate) fn show(p: &[u8]) -> String {
    if p.len() <= 32 {
        format!("{p:02x?}")
    } else {
        format!("{} bytes", p.len())
    }
}

/// Requires the payload `got` to be `want`.
pub(crate) fn bigbuf_eq(what: &str, got: &[u8], want: &[u8]) -> R {
    if got == want {
        Ok(())
    } else {
        fail(format!("{what} {}", show(want)), show(got))
    }
}

/// Why the cases of §2–§13 are skipped over `udp://`.
pub const NEEDS_STREAM: &str =
    "needs a byte-stream or SEQPACKET transport: over udp:// only the datagram-mode cases (§14, §9.6) run";

/// Why the datagram-mode cases (§14, §9.6) are skipped on other transports.
pub const NEEDS_UDP: &str = "datagram mode (SPEC.md §14): runs only against a udp:// address";

/// Why §13 cases are skipped against an implementation that offers no session token.
pub const NO_TOKEN: &str = "the implementation's HELLO carries an empty session token: it does not offer session resumption (SPEC.md §5.5, §13.2)";

pub(crate) const SE: Status = Status::SESSION_EXPIRED;

/// Opens a connection and returns the session token (skips when there is none).
pub(crate) fn ropen(c: &mut Ctx) -> R<Vec<u8>> {
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
pub(crate) fn resume_with(
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
pub(crate) fn resume(c: &mut Ctx, token: &[u8]) -> R {
    let mine = c.mine.clone();
    match resume_with(c, token, &mine, &[])? {
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
pub(crate) fn refused(c: &mut Ctx, token: &[u8]) -> R {
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

/// Entries as RECORDED (and CALLBACK of a stream) list them: u32 length and bytes, each.
pub(crate) fn records(entries: &[&[u8]]) -> Vec<u8> {
    entries.iter().flat_map(|e| [&(e.len() as u32).to_be_bytes()[..], e].concat()).collect()
}
