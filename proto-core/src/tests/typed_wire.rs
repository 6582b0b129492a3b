//! Optional features (SPEC.md §5.8): their negotiation in HELLO, schema keys on opening frames
//! and SIGNAL_KEYED (§7.10), and status bodies on failed responses (§8.7).

use super::pair::{Ev, Pair, ECHO};
use crate::frame::{flags, ty, Frame, Request};
use crate::{ApiError, Config, ConnectionError, Features, RequestKind, SchemaKey, Status};
use std::vec::Vec;

const KEY: SchemaKey = SchemaKey([1, 2, 3, 4, 5, 6, 7, 8]);

fn with(features: Features) -> Config {
    Config { features, ..Config::default() }
}

/// The frames `from` has queued, decoded.
fn queued(p: &mut Pair, from_a: bool) -> Vec<Vec<u8>> {
    let node = if from_a { &mut p.a } else { &mut p.b };
    let mut buf = vec![0u8; 64 * 1024];
    let n = node.conn.poll_transmit(p.now, &mut buf);
    node.wire.extend_from_slice(&buf[..n]);
    let mut out = Vec::new();
    let mut rest = &node.wire[..];
    while let Ok(crate::frame::Decoded::Frame(_, len)) = Frame::decode(rest, usize::MAX) {
        out.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    out
}

#[test]
fn features_are_announced_and_intersected() {
    let p = Pair::connected();
    assert_eq!(p.a.conn.features(), Features::ALL);
    assert_eq!(p.a.conn.peer().unwrap().limits.features, Features::ALL);
    // One side without error details: only schema keys are used, by both.
    let p = Pair::connected_with(with(Features::ALL), with(Features::SCHEMA_KEYS));
    assert_eq!(p.a.conn.features(), Features::SCHEMA_KEYS);
    assert_eq!(p.b.conn.features(), Features::SCHEMA_KEYS);
    // Unknown bits are ignored, and kept in what the peer announced.
    let p = Pair::connected_with(with(Features(0x80 | 1)), with(Features::ALL));
    assert_eq!(p.b.conn.peer().unwrap().limits.features, Features(0x81));
    assert_eq!(p.b.conn.features(), Features::SCHEMA_KEYS);
    // A peer that announces nothing (as one that predates parameter 13) gets nothing new.
    let p = Pair::connected_with(with(Features::NONE), with(Features::ALL));
    assert_eq!((p.a.conn.features(), p.b.conn.features()), (Features::NONE, Features::NONE));
}

#[test]
fn hello_carries_parameter_13_only_when_not_empty() {
    let (params, n) = with(Features::ALL).hello_params();
    assert_eq!(params[n - 1], (13, 3));
    let (params, n) = with(Features::NONE).hello_params();
    assert!(params[..n].iter().all(|&(id, _)| id != 13));
}

#[test]
fn keys_travel_with_every_kind_of_opening_when_negotiated() {
    let mut p = Pair::connected();
    p.b.echo = true;
    let now = p.now;
    let id = p.a.conn.open_keyed(now, RequestKind::Call, ECHO, Some(KEY), b"x", None).unwrap();
    let frames = queued(&mut p, true);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0][2], flags::KEY, "flags byte of the CALL");
    p.drive();
    assert_eq!(p.b.keys, vec![Some(KEY)]);
    assert!(matches!(p.a.take()[..], [Ev::Response { id: i, status: Status::OK, .. }] if i == id));
    // Notification, stream (half-closed) and signal.
    p.a.conn.open_keyed(now, RequestKind::Notify, ECHO, Some(KEY), b"n", None).unwrap();
    let s = p.a.conn.open_keyed(now, RequestKind::Stream { half_closed: true }, ECHO, Some(KEY), b"s", None);
    let s = s.unwrap();
    p.a.conn.signal_keyed(ECHO, Some(KEY), b"g").unwrap();
    p.a.conn.call(now, ECHO, b"plain", None).unwrap();
    p.drive();
    assert_eq!(p.b.keys, vec![Some(KEY), Some(KEY), Some(KEY), Some(KEY), None]);
    let evs = p.b.take();
    assert!(evs.iter().any(|e| matches!(e, Ev::Signal { payload, .. } if payload == b"g")));
    p.b.conn.stream_finish(s, Status::OK).unwrap();
    p.drive();
}

#[test]
fn keys_are_not_sent_without_negotiation() {
    let mut p = Pair::connected_with(with(Features::ERROR_DETAILS), with(Features::ALL));
    p.b.echo = true;
    let now = p.now;
    p.a.conn.open_keyed(now, RequestKind::Call, ECHO, Some(KEY), b"x", None).unwrap();
    p.a.conn.signal_keyed(ECHO, Some(KEY), b"y").unwrap();
    let frames = queued(&mut p, true);
    assert_eq!(frames[0][0], ty::CALL);
    assert_eq!(frames[0][2], 0, "no KEY flag");
    assert_eq!(frames[1][0], ty::SIGNAL);
    p.drive();
    assert_eq!(p.b.keys, vec![None, None]);
}

#[test]
fn a_key_the_receiver_did_not_negotiate_is_a_protocol_error() {
    for keyed in [true, false] {
        let mut p = Pair::connected_with(with(Features::ALL), with(Features::NONE));
        let r =
            Request { flags: 0, id: 0, module: 1, method: 1, budget_us: 0, total_len: None, payload: b"" };
        let f = if keyed {
            Frame::Keyed { ty: ty::CALL, key: KEY, req: r }
        } else {
            Frame::SignalKeyed { module: 1, method: 1, key: KEY, payload: b"" }
        };
        let mut buf = vec![0u8; f.encoded_len()];
        f.encode(&mut buf).unwrap();
        let now = p.now;
        assert_eq!(p.b.conn.handle_input(now, &buf), buf.len());
        p.b.poll(now);
        let closed = p.b.take().into_iter().find_map(|e| match e {
            Ev::Closed(e) => Some(e),
            _ => None,
        });
        assert!(
            matches!(closed, Some(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. })),
            "{closed:?}"
        );
    }
}

#[test]
fn keys_survive_fragmentation() {
    let mut p = Pair::connected();
    let big = vec![7u8; 200_000];
    let now = p.now;
    p.a.conn.open_keyed(now, RequestKind::Call, ECHO, Some(KEY), &big, None).unwrap();
    p.drive();
    assert_eq!(p.b.keys, vec![Some(KEY)]);
    assert!(matches!(&p.b.requests()[..], [(_, RequestKind::Call, b)] if b.len() == big.len()));
}

#[test]
fn a_notification_may_be_refused_with_a_status_body_only_when_error_details_was_negotiated() {
    for features in [Features::ALL, Features::SCHEMA_KEYS] {
        let mut p = Pair::connected_with(with(features), with(Features::ALL));
        let now = p.now;
        let id = p.a.conn.notify(now, ECHO, b"n", None).unwrap();
        p.drive();
        let (rid, _, _) = p.b.requests()[0].clone();
        let body = [0x02, b'n', b'o'];
        let r = p.b.conn.respond(rid, Status::INVALID_ARGUMENT, &body);
        if features == Features::ALL {
            r.unwrap();
            p.drive();
            let got = p.a.take();
            assert!(
                matches!(&got[..], [Ev::Response { id: i, status: Status::INVALID_ARGUMENT, payload }] if *i == id && payload == &body),
                "{got:?}"
            );
            // OK never carries a body.
        } else {
            assert!(matches!(r, Err(ApiError::WrongState(_))), "{r:?}");
            p.b.conn.respond(rid, Status::INVALID_ARGUMENT, &[]).unwrap();
            p.drive();
        }
    }
    let mut p = Pair::connected();
    let now = p.now;
    p.a.conn.notify(now, ECHO, b"n", None).unwrap();
    p.drive();
    let (rid, _, _) = p.b.requests()[0].clone();
    assert!(p.b.conn.respond(rid, Status::OK, &[0x00]).is_err(), "an OK acknowledgement has no body");
}

#[test]
fn a_status_body_on_a_notification_answer_without_negotiation_is_a_protocol_error() {
    let mut p = Pair::connected_with(with(Features::SCHEMA_KEYS), with(Features::ALL));
    let now = p.now;
    let id = p.a.conn.notify(now, ECHO, b"n", None).unwrap();
    p.drive();
    p.b.take();
    let f = Frame::Response { flags: 0, id, status: Status::FAILED, total_len: None, payload: &[0x00] };
    let mut buf = vec![0u8; f.encoded_len()];
    f.encode(&mut buf).unwrap();
    assert_eq!(p.a.conn.handle_input(now, &buf), buf.len());
    p.a.poll(now);
    let evs = p.a.take();
    assert!(
        evs.iter().any(|e| matches!(
            e,
            Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. })
        )),
        "{evs:?}"
    );
}
