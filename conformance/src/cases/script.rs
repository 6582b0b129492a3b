//! Cases declared as data, and the one interpreter that plays them.
//!
//! Most cases are a *script*: open the connection, send these bytes or frames, then expect this
//! frame, this RESPONSE status, this CLOSE or the end of the transport, each within a time. Such a
//! case is one row of its section's table: the id, a title, the requirement quoted from SPEC.md and
//! a list of [`Step`]s, which [`play`] performs in order. The first step that fails (or decides that
//! the case does not apply) ends the case with that outcome.
//!
//! ```text
//! dial("6.3/2", "an id that goes backwards", "an id that goes backwards: PROTOCOL_ERROR",
//!      vec![Open, Send(call(4, ECHO, b"")), Replied(4), Send(call(2, ECHO, b"")), Close(PE)])
//! ```
//!
//! reads: dial the implementation and complete the handshake; send CALL id 4 (ECHO, empty
//! payload) in one write; wait for the RESPONSE to id 4; send CALL id 2; the implementation must
//! close the connection with CLOSE(PROTOCOL_ERROR) within [`T`].
//!
//! Cases that need a decision on values only known while they run (a loop up to a limit the
//! implementation announced, a comparison between two of its ids) are written as code: a function
//! over [`Ctx`] next to the table, named in the table's row.
//!
//! While the runner waits for a frame it answers PINGs and sets other frames aside (they can be
//! matched by a later step); a CLOSE, the end of the transport or bytes that do not decode fail the
//! step, except in the steps that expect exactly those.

use std::sync::Arc;
use std::time::Duration;

use tandem_core::frame::Frame;
use tandem_core::Status;

use super::kit::{
    bigbuf_eq, drain_stream, expect_call, expect_open, expect_resp, fail, hello_bytes, method,
    recorded_times, refused, resume, ropen, sink_calls, skip, status_is, Case, Ctx, Recv, R, RUNNER_METHOD,
    T,
};
use crate::suite::Role;
use crate::wire::describe;

/// The runner's HELLO in a handshake it writes itself ([`Step::Hello`]); its name is the case's
/// own unique name.
#[derive(Clone, Copy, Debug)]
pub struct Offer {
    /// `min_version`.
    pub min: u32,
    /// `max_version`.
    pub max: u32,
    /// HELLO flags (1 = RESUME).
    pub flags: u64,
    /// The session token.
    pub session: &'static [u8],
    /// The parameters.
    pub params: Params,
}

/// HELLO parameters `(id, value)`, in increasing id order.
pub type Params = &'static [(u64, u64)];

/// The plain HELLO: version 1 only, no flags, no session, no parameters.
pub const V1: Offer = Offer { min: 1, max: 1, flags: 0, session: b"", params: &[] };

/// Which transports a case applies to, beyond the §14 rule of [`Case::udp_only`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP or Unix stream sockets.
    ByteStream,
    /// SEQPACKET (or UDP) sockets: one frame never spans two datagrams.
    Packet,
}

/// A frame the runner sends on the exchange the implementation opened last (its id is known only
/// once the implementation has opened it, see [`Step::Opened`]).
#[derive(Clone, Debug)]
pub enum Ans {
    /// RESPONSE(status, payload).
    Response(Status, Vec<u8>),
    /// RESPONSE(status) with MORE, the first chunk and the total length, then one CONTINUATION
    /// with the rest.
    Chunked(Status, Vec<u8>, Vec<u8>),
    /// STREAM_DATA(payload).
    Data(Vec<u8>),
    /// STREAM_FIN(status).
    Fin(Status),
    /// STREAM_RESET(status).
    Reset(Status),
    /// GOAWAY(OK) whose bound is the id plus this much.
    GoAway(u64),
}

/// A frame the runner waits for.
#[derive(Clone, Debug)]
pub enum Want {
    /// Any frame.
    Any,
    /// HELLO.
    Hello,
    /// HELLO; it must choose this version (min_version = max_version = it) and, if given, have
    /// exactly these flags.
    Chosen(u32, Option<u64>),
    /// PONG with exactly these 8 bytes.
    Pong([u8; 8]),
    /// GOAWAY, any bound.
    GoAway,
    /// GOAWAY; its bound must be this.
    GoAwayBound(u64),
    /// CANCEL for the exchange the implementation opened last.
    Cancel,
    /// Any CANCEL.
    AnyCancel,
    /// Any RESPONSE.
    Response,
    /// The RESPONSE to this id.
    ResponseTo(u64),
    /// A CALL from the implementation.
    Call,
    /// A STREAM_OPEN from the implementation.
    StreamOpen,
    /// Any STREAM_DATA.
    StreamData,
    /// STREAM_DATA carrying exactly this payload.
    Item(&'static [u8]),
    /// STREAM_RESUME for this stream; its `received_items` must be this.
    StreamResume(u64, u64),
    /// STREAM_DATA or a terminal (STREAM_FIN, STREAM_RESET) on this stream.
    OnStream(u64),
    /// STREAM_RESET on this stream; its status must be this.
    Reset(u64, Status),
    /// The first STREAM_DATA or terminal on this stream; it must be STREAM_RESET with this status.
    ResetFirst(u64, Status),
    /// A SIGNAL; it must carry exactly this module, method and payload.
    Signal(u32, u32, &'static [u8]),
}

/// What the items of a stream must be ([`Step::Stream`]).
#[derive(Clone, Debug)]
pub enum Items {
    /// Anything.
    Any,
    /// Exactly these, in order.
    Exactly(Vec<Vec<u8>>),
    /// This many.
    Count(usize),
}

/// How a stream must end ([`Step::Stream`]).
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// Any terminal.
    Any,
    /// STREAM_FIN(OK).
    FinOk,
    /// A terminal other than STREAM_FIN(OK).
    NotOk,
    /// STREAM_FIN or STREAM_RESET with this status.
    Status(Status),
}

/// One step of a scripted case. Each sending step is one transport write (one datagram on a packet
/// transport); each waiting step waits at most [`T`] (5 s) unless it says
/// otherwise.
#[derive(Clone, Debug)]
pub enum Step {
    // The connection.
    /// Open the transport and complete the handshake; the runner announces no parameter.
    Open,
    /// Open the transport and complete the handshake announcing these parameters.
    OpenWith(Params),
    /// Open the transport only: dial, or accept the implementation's connection.
    Connect,
    /// Send the runner's own HELLO (with the case's name).
    Hello(Offer),
    /// Wait for the implementation's HELLO and take its parameters.
    PeerHello,
    /// End the runner's sending direction (the implementation reads the end of the transport).
    EndInput,
    /// Forget the connection without closing anything (datagram mode: a new association follows).
    Forget,
    /// Session resumption (§13): open a connection and keep the implementation's session token;
    /// the case is skipped if it offers none, or keeps no reply cache.
    Resumable,
    /// Lose the transport (no CLOSE), dial again and resume the session: the implementation must
    /// answer HELLO with RESUME and the same token.
    Resume,
    /// Lose the transport, dial again and try to resume the session: the implementation must
    /// answer with a new session (RESUME clear, and an ECHO then works) or CLOSE(SESSION_EXPIRED).
    Refused,
    /// The same with this token instead of the session's.
    RefusedToken(Vec<u8>),

    // Sending.
    /// These bytes: one or more frames, possibly malformed on purpose.
    Send(Vec<u8>),
    /// These frames, on the exchange the implementation opened last.
    Answer(Vec<Ans>),
    /// A CALLBACK request (SPEC.md A.2): the implementation opens an exchange of this kind
    /// (`service::kind`) toward the runner's method 7/1 with this timeout (ms, 0: none) and payload.
    Callback(u8, u32, Vec<u8>),
    /// Wait this many milliseconds.
    Pause(u64),

    // Expecting.
    /// A frame; frames before it that do not match are set aside.
    Expect(Want),
    /// No frame matching (described by the text) for this many milliseconds, and no CLOSE.
    Absent(&'static str, Want, u64),
    /// No CLOSE and no end of the transport for this many milliseconds.
    Quiet(u64),
    /// The PING the runner sends now is answered with its PONG: the connection still works.
    Alive,
    /// CLOSE with this status (frames before it are ignored).
    Close(Status),
    /// CLOSE with one of these statuses within this many milliseconds.
    CloseWithin(&'static [Status], u64),
    /// The end of the transport, without a CLOSE from the implementation.
    Eof,
    /// The end of the transport now (after a CLOSE).
    Ended,
    /// The RESPONSE to this id, with any status.
    Replied(u64),
    /// The RESPONSE to this id, with this status.
    Reply(u64, Status),
    /// The RESPONSE to this id, with this status and exactly this payload.
    ReplyWith(u64, Status, Vec<u8>),
    /// The RESPONSE to this id, with any status and exactly this payload.
    RepliedWith(u64, Vec<u8>),
    /// A call of the test service (next id): its RESPONSE must be OK.
    CallOk(u32, Vec<u8>),
    /// A call of the test service (next id): its RESPONSE must have this status.
    CallIs(u32, Vec<u8>, Status),
    /// An ECHO call (next id) of this payload: its RESPONSE must be OK with the same payload.
    Echo(Vec<u8>),
    /// The implementation opens an exchange of this kind (`service::kind`) toward the runner; its
    /// id is kept for [`Step::Answer`] and [`Want::Cancel`].
    Opened(u8),
    /// The same; it must carry exactly this payload (reassembled).
    OpenedWith(u8, Vec<u8>),
    /// The implementation calls the runner's method 7/1 with exactly this payload (reassembled).
    OpenedCall(Vec<u8>),
    /// The RESPONSE to the last CALLBACK is OK and reports the inner exchange's outcome, any.
    CallbackAnswered,
    /// The same; the inner exchange ended with this status.
    CallbackAnswers(Status),
    /// The same; the inner exchange ended with this status and payload.
    CallbackAnswersWith(Status, Vec<u8>),
    /// The same; the inner exchange did not succeed (any status but OK).
    CallbackRefused,
    /// The items and the terminal of the implementation's direction of this stream.
    Stream(u64, Items, End),
    /// The test service recorded this entry for the runner's name (RECORDED, polled).
    Recorded(Vec<u8>),
    /// The test service recorded this entry exactly this many times.
    RecordedTimes(Vec<u8>, usize),
    /// SINK ran exactly this many times for the runner's name (SINK_STATS).
    SinkCalls(u64),
    /// CONN_CREDIT frames returning at least this many bytes in all.
    ConnCreditBack(u64),

    // Applicability.
    /// The case applies to this kind of transport only; skipped with the reason otherwise.
    Only(Transport, &'static str),
    /// The case is skipped with this reason.
    Skip(&'static str),
}

/// A case whose steps the runner plays as the dialer.
pub fn dial(id: &str, title: &str, requirement: &str, steps: Vec<Step>) -> Case {
    scripted(Role::RunnerDials, id, title, requirement, steps)
}

/// A case whose steps the runner plays as the acceptor (the implementation dials).
pub fn listen(id: &str, title: &str, requirement: &str, steps: Vec<Step>) -> Case {
    scripted(Role::RunnerAccepts, id, title, requirement, steps)
}

/// After the handshake, `bytes` must end the connection with CLOSE(`status`).
pub fn fatal(id: &str, title: &str, requirement: &str, bytes: Vec<u8>, status: Status) -> Case {
    dial(id, title, requirement, vec![Step::Open, Step::Send(bytes), Step::Close(status)])
}

/// `bytes` as the first bytes of the connection must end it with CLOSE(`status`).
pub fn first(id: &str, title: &str, requirement: &str, bytes: Vec<u8>, status: Status) -> Case {
    dial(id, title, requirement, vec![Step::Connect, Step::Send(bytes), Step::Close(status)])
}

/// After the handshake, `bytes` must be ignored: the connection stays usable.
pub fn ignored(id: &str, title: &str, requirement: &str, bytes: Vec<u8>) -> Case {
    dial(id, title, requirement, vec![Step::Open, Step::Send(bytes), Step::Alive])
}

/// A case written as code, the runner dialing.
pub fn dial_code(id: &str, title: &str, requirement: &str, body: fn(&mut Ctx) -> R) -> Case {
    case(Role::RunnerDials, id, title, requirement, None, Arc::new(body))
}

/// A case written as code, the implementation dialing.
pub fn listen_code(id: &str, title: &str, requirement: &str, body: fn(&mut Ctx) -> R) -> Case {
    case(Role::RunnerAccepts, id, title, requirement, None, Arc::new(body))
}

/// A case that is always skipped, with `reason`.
pub fn never(id: &str, title: &str, requirement: &str, reason: &str) -> Case {
    case(Role::RunnerDials, id, title, requirement, Some(reason), Arc::new(|_| Ok(())))
}

fn scripted(role: Role, id: &str, title: &str, requirement: &str, steps: Vec<Step>) -> Case {
    case(role, id, title, requirement, None, Arc::new(move |c: &mut Ctx| play(c, &steps)))
}

/// A case: its section is the part of `id` before the first `/`.
pub(crate) fn case(
    role: Role,
    id: &str,
    title: &str,
    requirement: &str,
    skip: Option<&str>,
    body: crate::suite::Body,
) -> Case {
    let section = id.split_once('/').map_or(id, |(s, _)| s);
    Case {
        id: id.to_string(),
        section: section.to_string(),
        title: title.to_string(),
        requirement: requirement.to_string(),
        role,
        skip: skip.map(str::to_string),
        body,
    }
}

/// What a script remembers between its steps.
#[derive(Default)]
struct Regs {
    /// The id of the last CALLBACK the runner sent.
    callback: Option<u64>,
    /// The id of the exchange the implementation opened last.
    peer: Option<u64>,
    /// The session token (§13).
    token: Vec<u8>,
}

impl Regs {
    fn peer(&self) -> R<u64> {
        match self.peer {
            Some(id) => Ok(id),
            None => fail("an exchange opened by the implementation", "none yet"),
        }
    }
    fn callback(&self) -> R<u64> {
        match self.callback {
            Some(id) => Ok(id),
            None => fail("a CALLBACK sent by the runner", "none yet"),
        }
    }
}

/// Plays `steps` against the implementation.
pub fn play(c: &mut Ctx, steps: &[Step]) -> R {
    let mut regs = Regs::default();
    for s in steps {
        step(c, &mut regs, s)?;
    }
    Ok(())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Step {
    /// Whether the step needs an open connection (every step but those that open one, and the
    /// ones that only wait or skip).
    fn needs_connection(&self) -> bool {
        !matches!(
            self,
            Step::Open | Step::OpenWith(_) | Step::Connect | Step::Resumable | Step::Pause(_) | Step::Skip(_)
        )
    }
}

fn step(c: &mut Ctx, regs: &mut Regs, s: &Step) -> R {
    use Step::*;
    if s.needs_connection() && c.w.is_none() {
        // A mistake in the case's table, reported as such rather than as a runner panic.
        return fail(format!("a connection before the step {s:?}"), "none: the script must open one first");
    }
    match s {
        Open => c.open(),
        OpenWith(p) => c.open_with(p),
        Connect => c.transport(),
        Hello(h) => {
            let b = hello_bytes(h.min, h.max, h.flags, c.name.as_bytes(), h.session, h.params);
            c.send_bytes(&b)
        }
        PeerHello => {
            let what = if c.dialer { "the acceptor's HELLO" } else { "the dialer's HELLO" };
            let o = c.expect(what, T, |f| matches!(f, Frame::Hello(_)))?;
            c.take_hello(&o)
        }
        EndInput => {
            c.w().shutdown_write();
            Ok(())
        }
        Forget => {
            c.w = None;
            Ok(())
        }
        Resumable => {
            regs.token = ropen(c)?;
            Ok(())
        }
        Resume => resume(c, &regs.token.clone()),
        Refused => refused(c, &regs.token.clone()),
        RefusedToken(t) => refused(c, t),
        Send(b) => c.send_bytes(b),
        Answer(frames) => answer(c, regs.peer()?, frames),
        Callback(k, timeout_ms, p) => {
            regs.callback = Some(c.callback(*k, RUNNER_METHOD, *timeout_ms, p)?);
            Ok(())
        }
        Pause(n) => {
            std::thread::sleep(ms(*n));
            Ok(())
        }
        Expect(w) => {
            let peer = regs.peer;
            let o = c.expect(&w.describe(peer), T, |f| w.select(f, peer))?;
            w.check(&o.frame(), peer)
        }
        Absent(what, w, n) => {
            let peer = regs.peer;
            c.none(what, ms(*n), |f| w.select(f, peer))
        }
        Quiet(n) => c.quiet(ms(*n)),
        Alive => c.alive(),
        Close(st) => c.expect_close(*st),
        CloseWithin(sts, n) => c.expect_close_in(sts, ms(*n)),
        Eof => c.expect_eof_without_close(),
        Ended => match c.w().recv(T) {
            Recv::Eof | Recv::Failed(_) => Ok(()),
            r => fail("the end of the transport", format!("{r:?}")),
        },
        Replied(id) => c.response(*id).map(drop),
        Reply(id, st) => {
            let (got, _) = c.response(*id)?;
            status_is(&format!("RESPONSE id={id}"), got, *st)
        }
        ReplyWith(id, st, p) => expect_resp(c, *id, *st, p),
        RepliedWith(id, p) => {
            let (_, got) = c.response(*id)?;
            bigbuf_eq(&format!("RESPONSE id={id} payload"), &got, p)
        }
        CallOk(m, p) => c.call_ok(*m, p).map(drop),
        CallIs(m, p, st) => {
            let (got, _) = c.call(*m, p)?;
            status_is("RESPONSE", got, *st)
        }
        Echo(p) => {
            let back = c.call_ok(method::ECHO, p)?;
            bigbuf_eq("the payload echoed", &back, p)
        }
        Opened(k) => {
            regs.peer = Some(opened(c, *k)?.0);
            Ok(())
        }
        OpenedWith(k, want) => {
            let (id, _, p) = opened(c, *k)?;
            regs.peer = Some(id);
            bigbuf_eq("the payload", &p, want)
        }
        OpenedCall(want) => {
            let (id, m, p) = opened(c, crate::service::kind::CALL)?;
            regs.peer = Some(id);
            let rm = (RUNNER_METHOD.module, RUNNER_METHOD.method);
            if let Some((a, b)) = m.filter(|m| *m != rm) {
                return fail(format!("CALL method {}/{}", rm.0, rm.1), format!("CALL method {a}/{b}"));
            }
            bigbuf_eq("the payload", &p, want)
        }
        CallbackAnswered => c.callback_result(regs.callback()?).map(drop),
        CallbackAnswers(st) => {
            let (got, _) = c.callback_result(regs.callback()?)?;
            status_is("inner status", got, *st)
        }
        CallbackAnswersWith(st, p) => {
            let (got, back) = c.callback_result(regs.callback()?)?;
            status_is("inner status", got, *st)?;
            bigbuf_eq("the inner payload", &back, p)
        }
        CallbackRefused => {
            let (got, _) = c.callback_result(regs.callback()?)?;
            if got == Status::OK {
                return fail("a non-OK inner status", "OK");
            }
            Ok(())
        }
        Stream(id, items, end) => stream(c, *id, items, *end),
        Recorded(entry) => c.wait_recorded(entry),
        RecordedTimes(entry, n) => {
            let got = recorded_times(c, entry)?;
            if got != *n {
                let e = String::from_utf8_lossy(entry);
                return fail(format!("the record {e:?} {n} time(s)"), format!("{got} time(s)"));
            }
            Ok(())
        }
        SinkCalls(n) => {
            let got = sink_calls(c)?;
            if got != *n {
                return fail(format!("SINK run {n} time(s)"), format!("{got} time(s)"));
            }
            Ok(())
        }
        ConnCreditBack(n) => {
            let mut got = 0u64;
            while got < *n {
                let what = format!("CONN_CREDIT returning the {n} bytes");
                let o = c.expect(&what, T, |f| matches!(f, Frame::ConnCredit { .. }))?;
                if let Frame::ConnCredit { bytes } = o.frame() {
                    got += u64::from(bytes);
                }
            }
            Ok(())
        }
        Only(t, reason) => {
            let packet = c.w().is_packet();
            if packet != (*t == Transport::Packet) {
                return skip(*reason);
            }
            Ok(())
        }
        Skip(reason) => skip(*reason),
    }
}

/// An exchange the implementation opened: its id, the method of a CALL, the payload of a CALL.
type Opening = (u64, Option<(u32, u32)>, Vec<u8>);

/// Waits for the implementation's opening frame of kind `k`.
fn opened(c: &mut Ctx, k: u8) -> R<Opening> {
    use crate::service::kind;
    match k {
        kind::CALL => {
            let (id, module, m, _, p) = expect_call(c)?;
            Ok((id, Some((module, m)), p))
        }
        kind::NOTIFY => {
            let (id, _) = expect_open(c, "NOTIFY", |f| matches!(f, Frame::Notify(_)))?;
            Ok((id, None, Vec::new()))
        }
        _ => {
            let (id, _) = expect_open(c, "STREAM_OPEN", |f| matches!(f, Frame::StreamOpen(_)))?;
            Ok((id, None, Vec::new()))
        }
    }
}

fn answer(c: &mut Ctx, id: u64, frames: &[Ans]) -> R {
    let mut out: Vec<Frame<'_>> = Vec::new();
    for a in frames {
        match a {
            Ans::Response(status, payload) => {
                out.push(Frame::Response { flags: 0, id, status: *status, total_len: None, payload })
            }
            Ans::Chunked(status, first, rest) => {
                let total = Some((first.len() + rest.len()) as u64);
                let more = tandem_core::frame::flags::MORE;
                out.push(Frame::Response {
                    flags: more,
                    id,
                    status: *status,
                    total_len: total,
                    payload: first,
                });
                out.push(Frame::Continuation { flags: 0, id, payload: rest });
            }
            Ans::Data(payload) => out.push(Frame::StreamData { flags: 0, id, total_len: None, payload }),
            Ans::Fin(status) => out.push(Frame::StreamFin { id, status: *status }),
            Ans::Reset(status) => out.push(Frame::StreamReset { id, status: *status }),
            Ans::GoAway(above) => {
                out.push(Frame::GoAway { bound: id + above, status: Status::OK, message: b"" })
            }
        }
    }
    c.send(&out)
}

fn stream(c: &mut Ctx, id: u64, want: &Items, end: End) -> R {
    let (items, term) = drain_stream(c, id, T)?;
    match want {
        Items::Any => {}
        Items::Exactly(v) if items != *v => return fail(format!("items {v:02x?}"), format!("{items:02x?}")),
        Items::Count(n) if items.len() != *n => {
            return fail(format!("{n} items"), format!("{} items", items.len()))
        }
        _ => {}
    }
    match (end, &term) {
        (End::Any, _) => Ok(()),
        (End::FinOk, Frame::StreamFin { status: Status::OK, .. }) => Ok(()),
        (End::FinOk, f) => fail("STREAM_FIN OK", describe(f)),
        (End::NotOk, Frame::StreamFin { status: Status::OK, .. }) => {
            fail("a non-OK terminal", describe(&term))
        }
        (End::NotOk, _) => Ok(()),
        (End::Status(s), Frame::StreamFin { status, .. } | Frame::StreamReset { status, .. })
            if *status == s =>
        {
            Ok(())
        }
        (End::Status(s), f) => fail(format!("STREAM_RESET {s:?}"), describe(f)),
    }
}

impl Want {
    /// Whether `f` is the frame waited for (`peer`: the id of the implementation's last exchange).
    fn select(&self, f: &Frame<'_>, peer: Option<u64>) -> bool {
        match (self, f) {
            (Want::Any, _) => true,
            (Want::Hello | Want::Chosen(..), Frame::Hello(_)) => true,
            (Want::Pong(d), Frame::Pong(x)) => d == x,
            (Want::GoAway | Want::GoAwayBound(_), Frame::GoAway { .. }) => true,
            (Want::Cancel, Frame::Cancel { id }) => Some(*id) == peer,
            (Want::AnyCancel, Frame::Cancel { .. }) => true,
            (Want::Response, Frame::Response { .. }) => true,
            (Want::ResponseTo(x), Frame::Response { id, .. }) => id == x,
            (Want::Call, Frame::Call(_)) => true,
            (Want::StreamOpen, Frame::StreamOpen(_)) => true,
            (Want::StreamData, Frame::StreamData { .. }) => true,
            (Want::Item(p), Frame::StreamData { payload, .. }) => payload == p,
            (Want::StreamResume(x, _), Frame::StreamResume { id, .. }) => id == x,
            (Want::Reset(x, _), Frame::StreamReset { id, .. }) => id == x,
            (
                Want::OnStream(x) | Want::ResetFirst(x, _),
                Frame::StreamData { id, .. } | Frame::StreamFin { id, .. } | Frame::StreamReset { id, .. },
            ) => id == x,
            (Want::Signal(..), Frame::Signal { .. }) => true,
            _ => false,
        }
    }

    /// Requires the selected frame `f` to be exactly what is wanted.
    fn check(&self, f: &Frame<'_>, peer: Option<u64>) -> R {
        let ok = match (self, f) {
            (Want::GoAwayBound(b), Frame::GoAway { bound, .. }) => bound == b,
            (Want::Chosen(v, fl), Frame::Hello(h)) => {
                h.min_version == *v && h.max_version == *v && fl.map_or(true, |fl| fl == h.flags)
            }
            (Want::Reset(_, s) | Want::ResetFirst(_, s), Frame::StreamReset { status, .. }) => status == s,
            (Want::Reset(..) | Want::ResetFirst(..), _) => false,
            (Want::StreamResume(_, k), Frame::StreamResume { received, .. }) => received == k,
            (Want::Signal(m, me, p), Frame::Signal { module, method, payload }) => {
                (module, method, payload) == (m, me, p)
            }
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            fail(self.describe(peer), describe(f))
        }
    }

    fn describe(&self, peer: Option<u64>) -> String {
        let p = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
        match self {
            Want::Any => "a frame".into(),
            Want::Hello => "HELLO".into(),
            Want::Chosen(v, None) => format!("HELLO v{v}..{v}"),
            Want::Chosen(v, Some(fl)) => format!("HELLO v{v}..{v} flags={fl}"),
            Want::Pong(d) => format!("PONG {d:02x?}"),
            Want::GoAway => "GOAWAY".into(),
            Want::GoAwayBound(b) => format!("GOAWAY bound={b}"),
            Want::Cancel => format!("CANCEL id={p}"),
            Want::AnyCancel => "CANCEL".into(),
            Want::Response => "RESPONSE".into(),
            Want::ResponseTo(id) => format!("RESPONSE id={id}"),
            Want::Call => "CALL".into(),
            Want::StreamOpen => "STREAM_OPEN".into(),
            Want::StreamData => "STREAM_DATA".into(),
            Want::Item(p) => format!("STREAM_DATA {:?}", String::from_utf8_lossy(p)),
            Want::StreamResume(id, k) => format!("STREAM_RESUME id={id} received={k}"),
            Want::OnStream(id) => format!("STREAM_DATA or a terminal on stream {id}"),
            Want::Reset(id, s) | Want::ResetFirst(id, s) => format!("STREAM_RESET id={id} {s:?}"),
            Want::Signal(m, me, payload) => {
                format!("SIGNAL {m}/{me} {:?}", String::from_utf8_lossy(payload))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::suite::{Fail, Target};

    #[test]
    fn a_script_that_uses_a_connection_before_opening_one_fails_with_the_reason() {
        let target = Target::Dial("tcp://127.0.0.1:9".parse().expect("address"));
        let mut c = Ctx::new(target, Arc::new(Mutex::new(Vec::new())), "test".into());
        match play(&mut c, &[Step::Alive]) {
            Err(Fail::Failed { expected, .. }) => assert!(expected.contains("Alive"), "{expected}"),
            r => panic!("{r:?}"),
        }
        assert_eq!(play(&mut c, &[Step::Skip("why")]), Err(Fail::Skipped("why".into())));
    }

    #[test]
    fn wanted_frames_are_selected_by_kind_and_id_then_checked_for_their_content() {
        let reset = Frame::StreamReset { id: 4, status: Status::UNAVAILABLE };
        let data = Frame::StreamData { flags: 0, id: 4, total_len: None, payload: b"x" };
        let other = Frame::StreamReset { id: 6, status: Status::UNAVAILABLE };
        let w = Want::Reset(4, Status::UNAVAILABLE);
        assert!(w.select(&reset, None) && !w.select(&data, None) && !w.select(&other, None));
        assert!(w.check(&reset, None).is_ok());
        assert!(Want::Reset(4, Status::CANCELLED).check(&reset, None).is_err());
        let first = Want::ResetFirst(4, Status::UNAVAILABLE);
        assert!(first.select(&data, None) && first.check(&data, None).is_err());
        let cancel = Frame::Cancel { id: 3 };
        assert!(Want::Cancel.select(&cancel, Some(3)) && !Want::Cancel.select(&cancel, Some(5)));
        assert!(Want::AnyCancel.select(&cancel, None));
        let goaway = Frame::GoAway { bound: 6, status: Status::OK, message: b"" };
        assert!(
            Want::GoAwayBound(4).select(&goaway, None) && Want::GoAwayBound(4).check(&goaway, None).is_err()
        );
    }

    #[test]
    fn a_chosen_version_is_checked_with_or_without_flags() {
        let h = |flags| {
            Frame::Hello(tandem_core::frame::Hello {
                min_version: 1,
                max_version: 1,
                flags,
                name: b"",
                auth: b"",
                session: b"",
                params: tandem_core::frame::Params::EMPTY,
            })
        };
        assert!(Want::Chosen(1, None).check(&h(1), None).is_ok());
        assert!(Want::Chosen(1, Some(0)).check(&h(1), None).is_err());
        assert!(Want::Chosen(1, Some(0)).check(&h(0), None).is_ok());
        assert!(Want::Chosen(2, None).check(&h(0), None).is_err());
    }
}
