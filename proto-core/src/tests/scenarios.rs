//! Every exchange type end to end between two cores, plus the failure paths.

use super::pair::{ms, Ev, Pair, ECHO, SINK};
use crate::{ApiError, Config, ConnectionError, Event, RequestKind, State, Status};

#[test]
fn handshake_exchanges_identity_and_limits() {
    let cb = Config { max_concurrent_calls: 7, ..Config::default() };
    let p = Pair::connected_with(Config::default(), cb);
    let peer = p.a.conn.peer().unwrap();
    assert_eq!(peer.version, 1);
    assert_eq!(peer.name, b"server");
    assert_eq!(peer.auth, b"token");
    assert_eq!(peer.limits.max_concurrent_calls, 7);
    assert_eq!(p.b.conn.peer().unwrap().name, b"client");
    assert_eq!(p.a.conn.state(), State::Open);
    assert_eq!(p.b.conn.state(), State::Open);
}

#[test]
fn unary_call_both_directions() {
    let mut p = Pair::connected();
    p.b.echo = true;
    p.a.echo = true;
    let now = p.now;
    let c1 = p.a.conn.call(now, ECHO, b"from client", None).unwrap();
    let c2 = p.b.conn.call(now, ECHO, b"from server", None).unwrap();
    assert_eq!(c1 % 2, 0, "dialer ids are even");
    assert_eq!(c2 % 2, 1, "acceptor ids are odd");
    p.drive();
    assert_eq!(
        p.a.take(),
        vec![Ev::Response { id: c1, status: Status::OK, payload: b"from client".to_vec() }]
    );
    assert_eq!(
        p.b.take(),
        vec![Ev::Response { id: c2, status: Status::OK, payload: b"from server".to_vec() }]
    );
    p.assert_quiet();
}

#[test]
fn many_pipelined_calls_with_random_chunking() {
    for seed in 0..20 {
        let mut p = Pair::connected();
        p.seed = seed;
        p.rng = super::pair::Rng::new(seed);
        p.max_chunk = 1 + (seed as usize * 7) % 40;
        p.b.echo = true;
        let now = p.now;
        let ids: Vec<u64> =
            (0..50u32).map(|i| p.a.conn.call(now, ECHO, &i.to_be_bytes(), None).unwrap()).collect();
        p.drive();
        let evs = p.a.take();
        assert_eq!(evs.len(), 50, "seed {seed}");
        for (i, id) in ids.iter().enumerate() {
            assert!(
                evs.contains(&Ev::Response {
                    id: *id,
                    status: Status::OK,
                    payload: (i as u32).to_be_bytes().to_vec()
                }),
                "seed {seed}: missing response {i}"
            );
        }
        p.assert_quiet();
    }
}

#[test]
fn megabyte_messages_are_fragmented_and_reassembled() {
    let mut p = Pair::connected();
    p.max_chunk = 10_000;
    p.b.echo = true;
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let id = p.a.conn.call(p.now, ECHO, &big, None).unwrap();
    // A small call queued behind the big one still completes.
    let small = p.a.conn.call(p.now, ECHO, b"x", None).unwrap();
    p.drive();
    let evs = p.a.take();
    assert_eq!(evs.len(), 2);
    assert!(evs.contains(&Ev::Response { id, status: Status::OK, payload: big.clone() }));
    assert!(evs.contains(&Ev::Response { id: small, status: Status::OK, payload: b"x".to_vec() }));
    assert!(p.a.conn.stats().frames_sent > 40, "3 MB in 64 KiB frames");
    p.assert_quiet();
}

#[test]
fn message_above_peer_limit_is_refused_locally() {
    let cb = Config { max_message_size: 10_000, ..Config::default() };
    let mut p = Pair::connected_with(Config::default(), cb);
    let err = p.a.conn.call(p.now, ECHO, &[0u8; 10_001], None).unwrap_err();
    assert_eq!(err, ApiError::TooLarge { size: 10_001, limit: 10_000 });
    p.a.conn.call(p.now, ECHO, &[0u8; 10_000], None).unwrap();
}

#[test]
fn reliable_and_unreliable_notifications() {
    let mut p = Pair::connected();
    let now = p.now;
    let n = p.a.conn.notify(now, SINK, b"reliable", None).unwrap();
    p.a.conn.signal(SINK, b"unreliable").unwrap();
    p.drive();
    let reqs = p.b.requests();
    assert_eq!(reqs, vec![(n, RequestKind::Notify, b"reliable".to_vec())]);
    assert_eq!(p.b.take(), vec![Ev::Signal { method: SINK, payload: b"unreliable".to_vec() }]);
    // A notification's acknowledgement carries no payload.
    assert_eq!(
        p.b.conn.respond(n, Status::OK, b"nope"),
        Err(ApiError::WrongState("a notification's acknowledgement carries no payload"))
    );
    p.b.conn.respond(n, Status::ACCEPTED, b"").unwrap();
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::Response { id: n, status: Status::ACCEPTED, payload: vec![] }]);
    p.assert_quiet();
}

#[test]
fn caller_cancel_reaches_the_handler_and_frees_both_sides() {
    let mut p = Pair::connected();
    let id = p.a.conn.call(p.now, ECHO, b"slow", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    p.a.conn.cancel(id).unwrap();
    assert_eq!(p.a.conn.cancel(id), Err(ApiError::WrongState("the call is already resolved")));
    p.drive();
    assert_eq!(p.b.take(), vec![Ev::Cancelled { id, status: Status::CANCELLED }]);
    // The caller keeps its slot until the final response arrives.
    assert_eq!(p.a.conn.open_exchanges(), 1);
    p.b.conn.respond(id, Status::OK, b"late result").unwrap();
    p.drive();
    assert!(p.a.take().is_empty(), "a cancelled call produces no further event");
    p.assert_quiet();
}

#[test]
fn caller_deadline_fails_the_call_and_cancels_the_handler() {
    let mut p = Pair::connected();
    let deadline = p.now + ms(50);
    let id = p.a.conn.call(p.now, ECHO, b"q", Some(deadline)).unwrap();
    p.drive();
    let r = p.b.take();
    let Ev::Request { deadline: Some(d), .. } = &r[0] else { panic!("{r:?}") };
    assert_eq!(*d, deadline, "budget travels relative; no latency in this pair");
    p.advance(ms(50));
    assert_eq!(p.a.take(), vec![Ev::Failed { id, status: Status::DEADLINE_EXCEEDED }]);
    let b = p.b.take();
    assert_eq!(b.len(), 1);
    assert!(matches!(b[0], Ev::Cancelled { id: i, .. } if i == id), "{b:?}");
    p.b.conn.respond(id, Status::OK, b"too late").unwrap();
    p.drive();
    assert!(p.a.take().is_empty());
    p.assert_quiet();
}

#[test]
fn responder_deadline_turns_the_answer_into_deadline_exceeded() {
    let mut p = Pair::connected();
    // The caller's own timer is later than the budget it sends would suggest: simulate a
    // caller with a slow clock by letting only the responder's timer fire.
    let id = p.a.conn.call(p.now, ECHO, b"q", Some(p.now + ms(100))).unwrap();
    p.drive();
    p.b.take();
    p.now = p.now + ms(100);
    p.b.conn.handle_timeout(p.now);
    p.drive();
    assert_eq!(p.b.take(), vec![Ev::Cancelled { id, status: Status::DEADLINE_EXCEEDED }]);
    p.b.conn.respond(id, Status::OK, b"late").unwrap();
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::Response { id, status: Status::DEADLINE_EXCEEDED, payload: vec![] }]);
    p.assert_quiet();
}

#[test]
fn bidirectional_stream_with_credit_exhaustion_and_half_close() {
    let ca = Config { stream_credit_msgs: 4, ..Config::default() };
    let mut p = Pair::connected_with(ca, Config::default());
    let now = p.now;
    let sid = p.a.conn.open_stream(now, ECHO, b"init", None, false).unwrap();
    p.drive();
    assert_eq!(p.b.requests(), vec![(sid, RequestKind::Stream { half_closed: false }, b"init".to_vec())]);
    // The server may send 4 items (the client's window), then must wait.
    for i in 0..4u8 {
        p.b.conn.stream_send(sid, &[i]).unwrap();
    }
    assert_eq!(p.b.conn.stream_send(sid, &[4]), Err(ApiError::NoCredit));
    p.drive();
    let items: Vec<Ev> = p.a.take();
    assert_eq!(items.len(), 4);
    for (i, e) in items.iter().enumerate() {
        assert_eq!(*e, Ev::StreamData { id: sid, payload: vec![i as u8] });
    }
    // Consuming returns credit; the blocked sender is told it may write again.
    p.a.conn.stream_consumed(sid, 4, 4).unwrap();
    p.drive();
    assert_eq!(p.b.take(), vec![Ev::StreamWritable { id: sid }]);
    p.b.conn.stream_send(sid, &[4]).unwrap();
    // Client half-closes; server still sends, then finishes with a status.
    p.a.conn.stream_send(sid, b"up").unwrap();
    p.a.conn.stream_finish(sid, Status::OK).unwrap();
    p.drive();
    assert_eq!(
        p.b.take(),
        vec![
            Ev::StreamData { id: sid, payload: b"up".to_vec() },
            Ev::StreamFin { id: sid, status: Status::OK }
        ]
    );
    assert_eq!(p.a.take(), vec![Ev::StreamData { id: sid, payload: vec![4] }]);
    p.b.conn.stream_finish(sid, Status::OK).unwrap();
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::StreamFin { id: sid, status: Status::OK }]);
    p.assert_quiet();
}

#[test]
fn server_streaming_with_half_closed_open() {
    let mut p = Pair::connected();
    let sid = p.a.conn.open_stream(p.now, ECHO, b"give me 3", None, true).unwrap();
    assert!(p.a.conn.stream_send(sid, b"x").is_err(), "opener half-closed at open");
    p.drive();
    assert_eq!(p.b.requests()[0].1, RequestKind::Stream { half_closed: true });
    for i in 0..3u8 {
        p.b.conn.stream_send(sid, &[i; 80_000]).unwrap(); // 3 × 80 kB fits the 256 KiB window
    }
    p.b.conn.stream_finish(sid, Status::OK).unwrap();
    p.drive();
    let evs = p.a.take();
    assert_eq!(evs.len(), 4);
    assert_eq!(evs[3], Ev::StreamFin { id: sid, status: Status::OK });
    p.assert_quiet();
}

#[test]
fn stream_reset_by_opener_is_answered_when_the_handler_lets_go() {
    let mut p = Pair::connected();
    let sid = p.a.conn.open_stream(p.now, ECHO, b"", None, false).unwrap();
    p.drive();
    p.b.requests();
    p.a.conn.cancel(sid).unwrap();
    p.drive();
    assert_eq!(p.b.take(), vec![Ev::StreamReset { id: sid, status: Status::CANCELLED }]);
    assert_eq!(p.b.conn.stream_send(sid, b"x"), Err(ApiError::WrongState("the peer reset the stream")));
    assert_eq!(p.b.conn.open_exchanges(), 1, "responder slot held until its handler lets go");
    p.b.conn.stream_reset(sid, Status::CANCELLED).unwrap();
    p.drive();
    assert!(p.a.take().is_empty(), "the opener asked for the reset; no event");
    p.assert_quiet();
}

#[test]
fn stream_reset_by_responder_reaches_opener() {
    let mut p = Pair::connected();
    let sid = p.a.conn.open_stream(p.now, ECHO, b"", None, false).unwrap();
    p.drive();
    p.b.requests();
    p.b.conn.stream_reset(sid, Status::INTERNAL).unwrap();
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::StreamReset { id: sid, status: Status::INTERNAL }]);
    p.assert_quiet();
}

#[test]
fn stream_deadline_resets_both_sides() {
    let mut p = Pair::connected();
    let sid = p.a.conn.open_stream(p.now, ECHO, b"", Some(p.now + ms(20)), false).unwrap();
    p.drive();
    p.b.requests();
    p.advance(ms(20));
    assert_eq!(p.a.take(), vec![Ev::StreamReset { id: sid, status: Status::DEADLINE_EXCEEDED }]);
    let b = p.b.take();
    assert!(b.iter().all(|e| matches!(e, Ev::StreamReset { .. })), "{b:?}");
    p.b.conn.stream_reset(sid, Status::CANCELLED).unwrap();
    p.drive();
    p.assert_quiet();
}

#[test]
fn keepalive_pings_keep_an_idle_connection_alive_and_measure_rtt() {
    let mut p = Pair::connected();
    for _ in 0..10 {
        p.advance(ms(10_000));
    }
    assert_eq!(p.a.conn.state(), State::Open);
    assert!(p.a.conn.stats().pings_sent >= 3);
    assert!(p.a.conn.stats().rtt.is_some());
}

#[test]
fn silent_peer_is_detected_by_the_idle_timeout() {
    let mut p = Pair::connected();
    let id = p.a.conn.call(p.now, ECHO, b"?", None).unwrap();
    p.a_deaf = true; // nothing from b reaches a any more
    p.advance(ms(30_000));
    let evs = p.a.take();
    assert_eq!(
        evs,
        vec![Ev::Failed { id, status: Status::UNAVAILABLE }, Ev::Closed(ConnectionError::IdleTimeout)]
    );
    assert_eq!(p.a.conn.state(), State::Closed);
}

#[test]
fn go_away_lets_in_flight_work_finish_then_closes() {
    let mut p = Pair::connected();
    let id = p.a.conn.call(p.now, ECHO, b"in flight", None).unwrap();
    p.drive();
    let reqs = p.b.requests();
    p.b.conn.go_away(p.now, Status::OK, b"restarting").unwrap();
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::GoAway { bound: id + 2, status: Status::OK }]);
    assert_eq!(p.a.conn.call(p.now, ECHO, b"new", None), Err(ApiError::GoingAway));
    p.b.conn.respond(reqs[0].0, Status::OK, b"done").unwrap();
    p.drive();
    let evs = p.a.take();
    assert_eq!(evs[0], Ev::Response { id, status: Status::OK, payload: b"done".to_vec() });
    assert_eq!(evs[1], Ev::Closed(ConnectionError::PeerClosed { status: Status::OK }));
    assert_eq!(p.b.take(), vec![Ev::Closed(ConnectionError::LocallyClosed { status: Status::OK })]);
    assert!(p.a.conn.is_finished() && p.b.conn.is_finished());
}

#[test]
fn drain_timeout_closes_a_stuck_connection() {
    let mut p = Pair::connected();
    let id = p.a.conn.call(p.now, ECHO, b"never answered", None).unwrap();
    p.drive();
    p.b.requests();
    p.b.conn.go_away(p.now, Status::OK, b"").unwrap();
    p.advance(ms(30_000));
    let evs = p.a.take();
    assert!(evs.contains(&Ev::Failed { id, status: Status::UNAVAILABLE }), "{evs:?}");
    assert!(matches!(p.b.take().last(), Some(Ev::Closed(ConnectionError::DrainTimeout))));
}

#[test]
fn close_resolves_every_exchange_exactly_once() {
    let mut p = Pair::connected();
    let c = p.a.conn.call(p.now, ECHO, b"", None).unwrap();
    let s = p.a.conn.open_stream(p.now, ECHO, b"", None, false).unwrap();
    let inbound = p.b.conn.call(p.now, ECHO, b"", None).unwrap();
    p.drive();
    p.a.take();
    p.a.conn.close(p.now, Status::UNAVAILABLE, b"shutting down");
    let mut evs = Vec::new();
    while let Some(e) = p.a.conn.poll_event(p.now) {
        evs.push(Ev::from(e));
    }
    assert_eq!(evs.len(), 4, "{evs:?}");
    assert!(evs.contains(&Ev::Failed { id: c, status: Status::UNAVAILABLE }));
    assert!(evs.contains(&Ev::StreamReset { id: s, status: Status::UNAVAILABLE }));
    assert!(evs.contains(&Ev::Cancelled { id: inbound, status: Status::UNAVAILABLE }));
    assert_eq!(evs[3], Ev::Closed(ConnectionError::LocallyClosed { status: Status::UNAVAILABLE }));
    assert_eq!(p.a.conn.open_exchanges(), 0);
    p.drive();
    assert_eq!(p.b.conn.close_message(), b"shutting down");
    let b = p.b.take();
    assert_eq!(b.last(), Some(&Ev::Closed(ConnectionError::PeerClosed { status: Status::UNAVAILABLE })));
    assert_eq!(p.b.conn.open_exchanges(), 0);
}

#[test]
fn garbage_is_a_protocol_error_with_close() {
    let mut p = Pair::connected();
    let taken = p.b.conn.handle_input(p.now, &[0x7f, 0x00]);
    assert_eq!(taken, 2);
    let ev = p.b.conn.poll_event(p.now).map(Ev::from);
    assert_eq!(
        ev,
        Some(Ev::Closed(ConnectionError::Malformed(crate::frame::DecodeError::UnknownFrameType(0x7f))))
    );
    p.drive();
    assert_eq!(
        p.a.take(),
        vec![Ev::Closed(ConnectionError::PeerClosed { status: Status::FRAME_ENCODING_ERROR })]
    );
}

#[test]
fn every_status_travels_and_decodes_back() {
    let mut p = Pair::connected();
    for &(status, ..) in Status::ALL.iter().chain(&[(Status(4000), "", crate::status::Scope::Exchange, "")]) {
        let id = p.a.conn.call(p.now, ECHO, b"", None).unwrap();
        p.drive();
        let (rid, ..) = p.b.requests()[0].clone();
        p.b.conn.respond(rid, status, b"detail").unwrap();
        p.drive();
        assert_eq!(p.a.take(), vec![Ev::Response { id, status, payload: b"detail".to_vec() }]);
    }
    // Connection-level statuses travel in CLOSE.
    for &(status, ..) in Status::ALL.iter().filter(|s| s.2 == crate::status::Scope::Connection) {
        let mut q = Pair::connected();
        q.b.conn.close(q.now, status, b"");
        q.drive();
        assert_eq!(q.a.take(), vec![Ev::Closed(ConnectionError::PeerClosed { status })]);
    }
}

#[test]
fn poll_event_returns_borrowed_payload_without_copy() {
    let mut p = Pair::connected();
    p.a.conn.call(p.now, ECHO, b"abc", None).unwrap();
    let mut buf = [0u8; 256];
    let n = p.a.conn.poll_transmit(p.now, &mut buf);
    assert_eq!(p.b.conn.handle_input(p.now, &buf[..n]), n);
    match p.b.conn.poll_event(p.now) {
        Some(Event::Request { payload, .. }) => assert_eq!(payload, b"abc"),
        other => panic!("{other:?}"),
    }
}
