//! Wire-level checks of authentication (SPEC.md §5.6, §13.3) that any runtime's server must
//! pass, given an authenticator that accepts `auth` = `alice-token` as identity `alice`,
//! `mallory-token` as `mallory`, and refuses anything else with UNAUTHENTICATED.

use std::time::Duration;

use tandem_core::frame::{Frame, Hello};
use tandem_core::Status;

use crate::wire::{Got, RawPeer};

const T: Duration = Duration::from_secs(5);

/// The server's answer to a HELLO: `Ok((session token, resumed))` for its HELLO,
/// `Err((status, message))` for a CLOSE.
pub type Answer = Result<(Vec<u8>, bool), (Status, String)>;

/// Sends a HELLO and returns the connection and the server's answer.
pub fn hello(addr: &str, name: &str, auth: &[u8], resume: Option<&[u8]>) -> (RawPeer, Answer) {
    let mut p = RawPeer::connect(addr).expect("connect");
    let (session, flags) = match resume {
        Some(t) => (t, Hello::RESUME),
        None => (&b""[..], 0),
    };
    p.hello_with(name.as_bytes(), auth, session, flags, &[]).expect("send HELLO");
    let answer = match p.recv(T) {
        Got::Frame(f) => match f.frame() {
            Frame::Hello(h) => Ok((h.session.to_vec(), h.flags & Hello::RESUME != 0)),
            Frame::Close { status, message } => Err((status, String::from_utf8_lossy(message).into_owned())),
            other => panic!("expected HELLO or CLOSE, got {other:?}"),
        },
        other => panic!("expected HELLO or CLOSE, got {other:?}"),
    };
    (p, answer)
}

/// A peer without valid credentials gets CLOSE(UNAUTHENTICATED) and nothing else.
pub fn wrong_credentials_are_refused(addr: &str) {
    let (_, r) = hello(addr, "sensor", b"guess", None);
    let (status, message) = r.expect_err("a wrong token must be refused");
    assert_eq!(status, Status::UNAUTHENTICATED, "{message}");
    let (_, r) = hello(addr, "sensor", b"", None);
    assert_eq!(r.expect_err("no token must be refused").0, Status::UNAUTHENTICATED);
}

/// A session token is worth nothing to another identity: mallory, holding alice's token,
/// cannot resume alice's session, nor take her name while it is suspended; alice can.
pub fn resumption_is_bound_to_the_identity(addr: &str) {
    let (alice, r) = hello(addr, "sensor", b"alice-token", None);
    let (token, _) = r.expect("alice is accepted");
    assert!(!token.is_empty(), "the server must offer resumption for this check");
    drop(alice); // transport lost: alice's session is suspended
    std::thread::sleep(Duration::from_millis(200));
    // Mallory with alice's token, under her name: declined, and the name is hers.
    let (_, r) = hello(addr, "sensor", b"mallory-token", Some(&token));
    assert_eq!(r.expect_err("mallory must not resume alice's session").0, Status::PERMISSION_DENIED);
    // Under another name: a fresh session of mallory's own, not alice's.
    let (_m, r) = hello(addr, "mallory", b"mallory-token", Some(&token));
    let (fresh, resumed) = r.expect("mallory gets a session of her own");
    assert!(!resumed && fresh != token, "mallory must not get alice's session");
    // Alice resumes her session.
    let (_a, r) = hello(addr, "sensor", b"alice-token", Some(&token));
    let (_, resumed) = r.expect("alice resumes");
    assert!(resumed, "alice's own token resumes her session");
}
