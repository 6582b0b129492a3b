//! An acceptor that authenticates before its HELLO (SPEC.md §5.6, `Config::authenticate`).

use super::pair::{ms, Ev, Pair, ECHO};
use crate::frame::{Frame, Request};
use crate::{ApiError, Config, ConnectionError, State, Status};

fn auth_pair() -> Pair {
    let cb = Config { authenticate: true, handshake_timeout: ms(1000), ..Config::default() };
    Pair::with_configs(Config::default(), cb, 3)
}

#[test]
fn the_acceptor_says_nothing_until_the_application_accepts() {
    let mut p = auth_pair();
    p.drive();
    assert_eq!(p.b.take(), vec![Ev::AuthRequested { name: b"client".to_vec(), auth: b"token".to_vec() }]);
    assert_eq!(p.a.take(), vec![], "no HELLO yet");
    assert_eq!(p.b.conn.state(), State::Handshake);
    assert_eq!(p.b.conn.peer().map(|x| x.name), Some(&b"client"[..]));
    p.b.conn.accept_peer(p.now).unwrap();
    assert_eq!(
        p.b.conn.accept_peer(p.now),
        Err(ApiError::WrongState("accept_peer answers Event::AuthRequested, once"))
    );
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::Connected]);
    assert_eq!(p.b.take(), vec![Ev::Connected]);
    let id = p.a.conn.call(p.now, ECHO, b"hi", None).unwrap();
    p.b.echo = true;
    p.drive();
    assert!(p
        .a
        .take()
        .iter()
        .any(|e| matches!(e, Ev::Response { id: x, status: Status::OK, .. } if *x == id)));
}

#[test]
fn a_refused_peer_gets_close_with_the_status_and_message_and_nothing_else() {
    let mut p = auth_pair();
    p.drive();
    assert!(matches!(p.b.take()[..], [Ev::AuthRequested { .. }]));
    p.b.conn.close(p.now, Status::UNAUTHENTICATED, b"unknown token: ask the operator for one");
    let mut buf = vec![0u8; 4096];
    let n = p.b.conn.poll_transmit(p.now, &mut buf);
    match Frame::decode(&buf[..n], 4096) {
        Ok(crate::frame::Decoded::Frame(Frame::Close { status, message }, len)) => {
            assert_eq!(status, Status::UNAUTHENTICATED);
            assert_eq!(message, b"unknown token: ask the operator for one");
            assert_eq!(len, n, "the CLOSE is all that is sent");
        }
        other => panic!("expected CLOSE, got {other:?}"),
    }
    assert_eq!(p.a.conn.handle_input(p.now, &buf[..n]), n);
    let evs: Vec<Ev> = core::iter::from_fn(|| p.a.conn.poll_event(p.now).map(Ev::from)).collect();
    assert_eq!(evs, vec![Ev::Closed(ConnectionError::PeerClosed { status: Status::UNAUTHENTICATED })]);
    assert_eq!(p.a.conn.close_message(), b"unknown token: ask the operator for one");
}

#[test]
fn frames_while_the_application_decides_are_a_protocol_error() {
    let mut p = auth_pair();
    p.drive();
    assert!(matches!(p.b.take()[..], [Ev::AuthRequested { .. }]));
    let call = Frame::Call(Request {
        flags: 0,
        id: 0,
        module: ECHO.module,
        method: ECHO.method,
        budget_us: 0,
        total_len: None,
        payload: b"early",
    });
    let mut b = vec![0u8; call.encoded_len()];
    call.encode(&mut b).unwrap();
    let _ = p.b.conn.handle_input(p.now, &b);
    let evs: Vec<Ev> = core::iter::from_fn(|| p.b.conn.poll_event(p.now).map(Ev::from)).collect();
    assert!(
        matches!(
            evs.last(),
            Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
        ),
        "{evs:?}"
    );
}

#[test]
fn an_application_that_never_decides_runs_into_the_handshake_timeout() {
    let mut p = auth_pair();
    p.drive();
    assert!(matches!(p.b.take()[..], [Ev::AuthRequested { .. }]));
    p.advance(ms(1001));
    assert!(matches!(p.b.take().last(), Some(Ev::Closed(ConnectionError::HandshakeTimeout))));
    assert!(p.b.conn.poll_event(p.now).is_none());
}
