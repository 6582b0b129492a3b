//! §5.6 authentication by the acceptor, and §13.3's rule that a session resumes only under its
//! identity: the cases of the test service's authenticating mode (SPEC.md Appendix A.5), run
//! with `tandem-conformance run --auth` (and only then).

use tandem_core::frame::Hello;

use super::kit::*;
use super::script::dial_code;
use crate::service::{AUTH_ALICE, AUTH_BOB};

/// Ids of the cases that run only in authenticating mode (and, in that mode, only they run).
pub const AUTH_CASES: [&str; 6] = ["5.6/3", "5.6/4", "5.6/5", "5.6/6", "13.3/6", "13.3/7"];

/// Why the cases of [`AUTH_CASES`] are skipped without `--auth`.
pub const NEEDS_AUTH: &str =
    "needs the test service in authenticating mode (SPEC.md Appendix A.5): run with --auth";

/// Why the other cases are skipped with `--auth`.
pub const NOT_IN_AUTH_MODE: &str =
    "not run in authenticating mode (--auth): run the suite without it against the plain test service";

const REFUSE: &str = "A refused peer receives CLOSE(UNAUTHENTICATED) or CLOSE(PERMISSION_DENIED) with a human-readable message as its only frame";
const NAMES: &str = "a newcomer under the name of a live or suspended connection of **another** identity is refused with CLOSE(PERMISSION_DENIED) before the acceptor's HELLO, and the holder is left untouched";
const RESUME: &str = "the session is resumed only if the identity is the one that opened it; otherwise the resumption is declined (a new session under the newcomer's identity, subject to the rule on names)";

pub(super) fn cases() -> Vec<Case> {
    vec![
        dial_code(
            "5.6/3",
            "an authenticating acceptor refuses unknown credentials before its HELLO",
            REFUSE,
            |c| refused(c, b"not-a-valid-token", Status::UNAUTHENTICATED),
        ),
        dial_code("5.6/4", "an authenticating acceptor refuses a HELLO without credentials", REFUSE, |c| {
            refused(c, b"", Status::UNAUTHENTICATED)
        }),
        dial_code(
            "5.6/5",
            "an authenticated dialer is answered with HELLO and served",
            "An accepted peer is given an **identity** by the acceptor's application",
            |c| {
                c.open()?;
                c.call_ok(method::ECHO, b"authenticated").map(drop)
            },
        ),
        dial_code(
            "5.6/6",
            "another identity cannot take a live peer's name; the holder keeps working",
            NAMES,
            name_taken,
        ),
    ]
}

pub(super) fn resumption_cases() -> Vec<Case> {
    vec![
        dial_code(
            "13.3/6",
            "a session token does not resume another identity's session",
            RESUME,
            foreign_token,
        ),
        dial_code(
            "13.3/7",
            "another identity presenting a suspended session's token under its name is refused",
            NAMES,
            foreign_token_under_the_name,
        ),
    ]
}

/// A HELLO with `auth` as the first frame; the only answer must be CLOSE(`status`).
fn refused(c: &mut Ctx, auth: &[u8], status: Status) -> R {
    c.transport()?;
    let h = crate::suite::hello_auth_bytes(c.name.as_bytes(), auth, b"", 0);
    c.send_bytes(&h)?;
    only_close(c, status)
}

/// The next frame is CLOSE(`status`), not HELLO.
fn only_close(c: &mut Ctx, status: Status) -> R {
    match c.w().recv(T) {
        Recv::Frame(o) => match o.frame() {
            Frame::Close { status: s, .. } if s == status => Ok(()),
            f => fail(format!("CLOSE({status:?}) as the only frame"), describe(&f)),
        },
        Recv::Eof => fail(format!("CLOSE({status:?})"), "the transport was closed without CLOSE"),
        other => fail(format!("CLOSE({status:?})"), format!("{other:?}")),
    }
}

/// A second connection of the case, authenticated with `auth`, under `name`, resuming `token`
/// if given. Returns it with the acceptor's answer (its HELLO), or the failure.
fn second(c: &Ctx, name: &[u8], auth: &[u8], token: &[u8]) -> R<Ctx> {
    let mut c2 = Ctx::new(c.target.clone(), c.log.clone(), String::from_utf8_lossy(name).into_owned());
    c2.auth_mode = true;
    c2.transport()?;
    let flags = if token.is_empty() { 0 } else { Hello::RESUME };
    let h = crate::suite::hello_auth_bytes(name, auth, token, flags);
    c2.send_bytes(&h)?;
    Ok(c2)
}

fn name_taken(c: &mut Ctx) -> R {
    c.open()?;
    let name = c.name.clone();
    let mut bob = second(c, name.as_bytes(), AUTH_BOB, b"")?;
    only_close(&mut bob, Status::PERMISSION_DENIED)?;
    // The holder is untouched.
    c.call_ok(method::ECHO, b"still here").map(drop)
}

/// Alice opens a session and loses the transport; the session is suspended.
fn suspended_session(c: &mut Ctx) -> R<Vec<u8>> {
    c.open()?;
    let token = c.peer_session();
    if token.is_empty() {
        return skip(NO_TOKEN);
    }
    c.lose_transport();
    Ok(token)
}

fn foreign_token(c: &mut Ctx) -> R {
    let token = suspended_session(c)?;
    // Bob, under a name of his own, with alice's token: a fresh session, not hers.
    let bob_name = format!("{}-bob", c.name);
    let mut bob = second(c, bob_name.as_bytes(), AUTH_BOB, &token)?;
    let h = bob.expect("HELLO with RESUME clear (a new session)", T, |f| matches!(f, Frame::Hello(_)))?;
    match h.frame() {
        Frame::Hello(h) if h.flags & Hello::RESUME == 0 && h.session != &token[..] => {}
        f => return fail("HELLO with RESUME clear and another token", describe(&f)),
    }
    // Alice resumes her session.
    let name = c.name.clone();
    let mut alice = second(c, name.as_bytes(), AUTH_ALICE, &token)?;
    let h = alice.expect("HELLO with RESUME set", T, |f| matches!(f, Frame::Hello(_)))?;
    match h.frame() {
        Frame::Hello(h) if h.flags & Hello::RESUME != 0 => Ok(()),
        f => fail("HELLO with RESUME set (alice resumes her own session)", describe(&f)),
    }
}

fn foreign_token_under_the_name(c: &mut Ctx) -> R {
    let token = suspended_session(c)?;
    let name = c.name.clone();
    let mut bob = second(c, name.as_bytes(), AUTH_BOB, &token)?;
    only_close(&mut bob, Status::PERMISSION_DENIED)
}
