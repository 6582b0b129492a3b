//! Session resumption (SPEC.md §13): transport loss, reconnection, retransmission, reply cache,
//! ACK, STREAM_RESUME, grace period — and the attacks on them.

use super::pair::{ms, Ev, Node, Pair, ECHO, SINK};
use crate::frame::{Frame, Request};
use crate::{
    ApiError, Config, Connection, ConnectionError, Event, Identity, RequestKind, Role, State, Status,
};
use std::vec::Vec;

const TOKEN: &[u8] = b"session-token-0123456789";

/// A connected pair whose acceptor offers resumption.
pub(super) fn resumable_with(ca: Config, cb: Config) -> Pair {
    let mut p = Pair::with_configs(ca, cb.clone(), 7);
    p.b = Node::with_session(Role::Acceptor, cb, "server", TOKEN, p.now);
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::Connected]);
    assert_eq!(p.b.take(), vec![Ev::Connected]);
    assert!(p.a.conn.is_resumable() && p.b.conn.is_resumable());
    assert_eq!(p.a.conn.session_token(), TOKEN);
    p
}

pub(super) fn resumable() -> Pair {
    resumable_with(Config::default(), Config::default())
}

/// Both ends lose the transport: bytes in flight are gone, both see end of file.
pub(super) fn lose_transport(p: &mut Pair) {
    let mut sink = vec![0u8; 1 << 20];
    while p.a.conn.poll_transmit(p.now, &mut sink) > 0 {}
    while p.b.conn.poll_transmit(p.now, &mut sink) > 0 {}
    p.a.wire.clear();
    p.b.wire.clear();
    p.a.conn.handle_eof(p.now);
    p.b.conn.handle_eof(p.now);
    p.drive();
    assert_eq!(p.a.conn.state(), State::Suspended, "dialer suspends");
    assert_eq!(p.b.conn.state(), State::Suspended, "acceptor suspends");
    assert!(p.a.conn.needs_transport());
}

/// The dialer reconnects; the acceptor's application moves the new transport into the session.
pub(super) fn resume(p: &mut Pair) {
    let before = p.a.conn.stats().resumptions;
    attach(p);
    p.drive();
    assert_eq!(p.a.conn.state(), State::Open);
    assert_eq!(p.b.conn.state(), State::Open);
    assert_eq!(p.a.conn.stats().resumptions, before + 1);
}

/// The first half of [`resume`]: the dialer's resuming HELLO reaches the acceptor, whose
/// application resumes the session; nothing has been delivered to the dialer yet.
pub(super) fn attach(p: &mut Pair) {
    let now = p.now;
    p.a.conn.reconnect(now).expect("reconnect");
    let mut fresh = Connection::new(
        Role::Acceptor,
        p.b.conn.config().clone(),
        Identity { name: b"server", auth: b"token", session: b"another-token-for-new" },
        now,
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let n = p.a.conn.poll_transmit(now, &mut buf);
    assert!(n > 0, "resuming HELLO");
    assert_eq!(fresh.handle_input(now, &buf[..n]), n);
    match fresh.poll_event(now) {
        Some(Event::ResumeRequested { token }) => assert_eq!(token, TOKEN),
        e => panic!("expected ResumeRequested, got {e:?}"),
    }
    assert!(fresh.poll_event(now).is_none());
    p.b.conn.resume_from(now, &mut fresh).expect("resume_from");
    assert!(fresh.is_finished(), "the fresh connection hands its transport over");
    assert_eq!(fresh.poll_transmit(now, &mut buf), 0, "and sends nothing");
}

pub(super) fn responses(n: &mut Node) -> Vec<(u64, Status, Vec<u8>)> {
    let mut out = Vec::new();
    n.events.retain(|e| match e {
        Ev::Response { id, status, payload } => {
            out.push((*id, *status, payload.clone()));
            false
        }
        _ => true,
    });
    out
}

#[test]
fn a_reply_lost_with_the_transport_comes_from_the_cache_and_the_handler_runs_once() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"once", None).unwrap();
    p.drive();
    let reqs = p.b.requests();
    assert_eq!(reqs.len(), 1);
    p.b.conn.respond(id, Status::OK, b"done").unwrap();
    // The response is queued but the transport dies before it is written.
    lose_transport(&mut p);
    assert_eq!(p.b.conn.reply_cache_len(), (1, 4));
    resume(&mut p);
    assert_eq!(responses(&mut p.a), vec![(id, Status::OK, b"done".to_vec())]);
    assert!(p.b.requests().is_empty(), "the handler did not run again");
    assert_eq!(p.b.conn.stats().retransmissions_received, 1);
    p.advance(ms(150));
    assert_eq!(p.b.conn.reply_cache_len(), (0, 0), "the ACK trimmed the cache");
    assert_eq!(p.a.conn.retained_requests(), (0, 0));
    p.assert_quiet();
}

#[test]
fn a_request_lost_with_the_transport_runs_after_resumption() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"lost", None).unwrap();
    lose_transport(&mut p);
    assert_eq!(p.a.conn.retained_requests(), (1, 4));
    resume(&mut p);
    let reqs = p.b.requests();
    assert_eq!(reqs, vec![(id, RequestKind::Call, b"lost".to_vec())]);
    p.b.conn.respond(id, Status::OK, b"ok").unwrap();
    p.drive();
    assert_eq!(responses(&mut p.a), vec![(id, Status::OK, b"ok".to_vec())]);
    p.advance(ms(150));
    p.assert_quiet();
}

#[test]
fn a_call_still_running_is_attached_to_not_run_again() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"slow", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    lose_transport(&mut p);
    resume(&mut p);
    assert!(p.b.requests().is_empty(), "the retransmission is ignored while the handler runs");
    p.b.conn.respond(id, Status::OK, b"late").unwrap();
    p.drive();
    assert_eq!(responses(&mut p.a), vec![(id, Status::OK, b"late".to_vec())]);
    p.advance(ms(150));
    p.assert_quiet();
}

#[test]
fn answers_given_while_suspended_reach_the_caller_after_resumption() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"x", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    lose_transport(&mut p);
    p.b.conn.respond(id, Status::OK, b"while away").unwrap();
    resume(&mut p);
    assert_eq!(responses(&mut p.a), vec![(id, Status::OK, b"while away".to_vec())]);
}

#[test]
fn calls_in_both_directions_and_notifications_survive_exactly_once() {
    let mut p = resumable();
    p.a.echo = true;
    p.b.echo = true;
    let now = p.now;
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for k in 0..10u8 {
        mine.push(p.a.conn.call(now, ECHO, &[k], None).unwrap());
        mine.push(p.a.conn.notify(now, SINK, &[], None).unwrap());
        theirs.push(p.b.conn.call(now, ECHO, &[k, k], None).unwrap());
        if k == 4 {
            // Half of them cross before the loss.
            p.drive();
            lose_transport(&mut p);
            resume(&mut p);
        }
    }
    p.drive();
    let got_a: Vec<u64> = responses(&mut p.a).into_iter().map(|r| r.0).collect();
    let got_b: Vec<u64> = responses(&mut p.b).into_iter().map(|r| r.0).collect();
    let mut want_a = mine.clone();
    want_a.sort_unstable();
    let mut sorted_a = got_a.clone();
    sorted_a.sort_unstable();
    assert_eq!(sorted_a, want_a, "each of the dialer's exchanges resolved exactly once");
    let mut sorted_b = got_b.clone();
    sorted_b.sort_unstable();
    assert_eq!(sorted_b, theirs, "each of the acceptor's calls resolved exactly once");
    p.advance(ms(150));
    p.assert_quiet();
    assert_eq!(p.a.conn.reply_cache_len(), (0, 0));
    assert_eq!(p.b.conn.reply_cache_len(), (0, 0));
}

#[test]
fn calls_made_while_suspended_go_out_after_resumption() {
    let mut p = resumable();
    p.b.echo = true;
    lose_transport(&mut p);
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"queued", None).unwrap();
    assert_eq!(p.a.conn.signal(ECHO, b"x"), Err(ApiError::NotConnected));
    resume(&mut p);
    assert_eq!(responses(&mut p.a), vec![(id, Status::OK, b"queued".to_vec())]);
}

#[test]
fn a_deadline_passing_while_suspended_fails_once_and_the_cancel_follows_the_resumption() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"x", Some(now + ms(50))).unwrap();
    p.drive();
    let reqs = p.b.requests();
    assert_eq!(reqs.len(), 1);
    lose_transport(&mut p);
    p.advance(ms(60));
    assert_eq!(p.a.take(), vec![Ev::Failed { id, status: Status::DEADLINE_EXCEEDED }]);
    // The server's own copy of the deadline passed too.
    assert_eq!(p.b.take(), vec![Ev::Cancelled { id, status: Status::DEADLINE_EXCEEDED }]);
    p.b.conn.respond(id, Status::OK, b"").unwrap();
    resume(&mut p);
    assert!(p.a.take().is_empty(), "resolved once");
    p.advance(ms(150));
    p.assert_quiet();
}

#[test]
fn an_evicted_reply_is_reported_as_such_and_the_handler_is_not_run_again() {
    let cb = Config { reply_cache_entries: 1, ..Config::default() };
    let mut p = resumable_with(Config::default(), cb);
    let now = p.now;
    let a = p.a.conn.call(now, ECHO, b"a", None).unwrap();
    let b = p.a.conn.call(now, ECHO, b"b", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 2);
    p.b.conn.respond(a, Status::OK, b"A").unwrap();
    p.b.conn.respond(b, Status::OK, b"B").unwrap();
    lose_transport(&mut p);
    assert_eq!(p.b.conn.reply_cache_len().0, 1, "one entry kept: the older was evicted");
    resume(&mut p);
    let mut got = responses(&mut p.a);
    got.sort();
    assert_eq!(got, vec![(a, Status::REPLY_EVICTED, vec![]), (b, Status::OK, b"B".to_vec())]);
    assert!(p.b.requests().is_empty());
}

/// The memory budget's second resort (SPEC.md §13.6): answers shed from a live session's cache
/// are REPLY_EVICTED on retransmission, the newest are kept, and the handler never runs again.
#[test]
fn shedding_session_memory_evicts_the_oldest_answers_only() {
    let mut p = resumable();
    let now = p.now;
    let ids: Vec<u64> = (0..4u8).map(|i| p.a.conn.call(now, ECHO, &[i; 1], None).unwrap()).collect();
    p.drive();
    assert_eq!(p.b.requests().len(), 4);
    for (i, &id) in ids.iter().enumerate() {
        p.b.conn.respond(id, Status::OK, &vec![i as u8; 1000]).unwrap();
    }
    lose_transport(&mut p);
    let mem = p.b.conn.session_memory();
    assert!(mem.held >= 4000 && mem.sheddable >= 4000 && mem.sheddable <= mem.held, "{mem:?}");
    // Ask for a bit more than two answers: the two oldest go.
    let freed = p.b.conn.shed_session_memory(1500);
    assert!(freed >= 1500, "freed {freed}");
    assert_eq!(p.b.conn.reply_cache_len().0, 2);
    assert_eq!(p.b.conn.stats().replies_evicted, 2);
    assert!(p.b.conn.session_memory().held < mem.held);
    resume(&mut p);
    let mut got = responses(&mut p.a);
    got.sort();
    assert_eq!(
        got,
        vec![
            (ids[0], Status::REPLY_EVICTED, vec![]),
            (ids[1], Status::REPLY_EVICTED, vec![]),
            (ids[2], Status::OK, vec![2; 1000]),
            (ids[3], Status::OK, vec![3; 1000]),
        ]
    );
    assert!(p.b.requests().is_empty(), "no handler ran twice");
}

/// The memory budget's first resort (SPEC.md §13.6): a suspended session is ended early; its
/// exchanges resolve UNAVAILABLE, nothing is sent, and only a suspended session can be evicted.
#[test]
fn evicting_a_suspended_session_ends_it_like_an_expiry() {
    let mut p = resumable();
    let now = p.now;
    assert!(!p.b.conn.evict_suspended_session(), "an open session is not evicted");
    assert_eq!(p.b.conn.suspended_since(), None);
    let id = p.a.conn.call(now, ECHO, b"x", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    lose_transport(&mut p);
    assert_eq!(p.b.conn.suspended_since(), Some(now));
    assert!(p.b.conn.evict_suspended_session());
    p.b.poll(now);
    assert_eq!(
        p.b.take(),
        vec![Ev::Cancelled { id, status: Status::UNAVAILABLE }, Ev::Closed(ConnectionError::SessionEvicted)]
    );
    assert_eq!(ConnectionError::SessionEvicted.status(), Status::SESSION_EXPIRED);
    let mut buf = vec![0u8; 4096];
    assert_eq!(p.b.conn.poll_transmit(now, &mut buf), 0, "nothing to send: there is no transport");
    assert!(p.b.conn.is_finished());
}

/// SPEC.md §13.2 `suspended_call_timeout`: a call waits on a suspended session at most this
/// long (from the suspension, or from its opening if opened while suspended), then resolves
/// UNAVAILABLE; its own shorter deadline still wins; after the resumption it is cancelled, and
/// a call that survived the suspension gets its own (absent) deadline back.
#[test]
fn calls_wait_on_a_suspended_session_at_most_suspended_call_timeout() {
    let cfg = Config { suspended_call_timeout: ms(1000), ..Config::default() };
    let mut p = resumable_with(cfg.clone(), cfg);
    let now = p.now;
    let old = p.a.conn.call(now, ECHO, b"old", None).unwrap();
    let short = p.a.conn.call(now, ECHO, b"short", Some(now + ms(300))).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 2);
    lose_transport(&mut p);
    p.advance(ms(500));
    let young = p.a.conn.call(p.now, ECHO, b"young", None).unwrap();
    p.advance(ms(501));
    assert_eq!(
        p.a.take(),
        vec![
            Ev::Failed { id: short, status: Status::DEADLINE_EXCEEDED },
            Ev::Failed { id: old, status: Status::UNAVAILABLE }
        ]
    );
    p.advance(ms(400));
    assert_eq!(p.a.take(), vec![], "the young call has waited 901 ms only");
    resume(&mut p);
    // The old calls are retransmitted and cancelled; the young one goes out for the first time
    // and, now that there is a transport, waits without a bound.
    let fresh = p.b.requests();
    assert_eq!(fresh.iter().map(|r| r.0).collect::<Vec<_>>(), vec![young], "only the young call is new");
    let cancelled: Vec<u64> =
        p.b.take()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Cancelled { id, .. } => Some(id),
                _ => None,
            })
            .collect();
    assert!(cancelled.contains(&old) && cancelled.contains(&short), "{cancelled:?}");
    p.advance(ms(5000));
    assert_eq!(p.a.take(), vec![]);
    for id in [old, short, young] {
        p.b.conn.respond(id, Status::OK, b"late").ok();
    }
    p.drive();
    assert!(responses(&mut p.a).iter().any(|(id, st, _)| *id == young && *st == Status::OK));
}

#[test]
fn the_grace_period_ends_the_session_and_resolves_everything_unavailable() {
    let cfg = Config { session_grace: ms(500), ..Config::default() };
    let mut p = resumable_with(cfg.clone(), cfg);
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"x", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    lose_transport(&mut p);
    p.advance(ms(499));
    assert_eq!(p.a.conn.state(), State::Suspended);
    p.advance(ms(2));
    assert_eq!(
        p.a.take(),
        vec![Ev::Failed { id, status: Status::UNAVAILABLE }, Ev::Closed(ConnectionError::SessionExpired)]
    );
    assert_eq!(
        p.b.take(),
        vec![Ev::Cancelled { id, status: Status::UNAVAILABLE }, Ev::Closed(ConnectionError::SessionExpired)]
    );
    p.b.conn.respond(id, Status::OK, b"").ok();
    assert!(p.a.conn.is_finished() && p.b.conn.is_finished());
    assert_eq!(p.a.conn.reconnect(p.now), Err(ApiError::Closed));
    p.assert_quiet();
}

#[test]
fn a_declined_resumption_starts_a_new_session_and_fails_the_old_exchanges() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"x", None).unwrap();
    lose_transport(&mut p);
    p.a.conn.reconnect(now).unwrap();
    let mut fresh = Connection::new(
        Role::Acceptor,
        Config::default(),
        Identity { name: b"server", auth: b"", session: b"new-session-token-abcdef" },
        now,
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let n = p.a.conn.poll_transmit(now, &mut buf);
    let _ = fresh.handle_input(now, &buf[..n]);
    assert!(matches!(fresh.poll_event(now), Some(Event::ResumeRequested { .. })));
    fresh.decline_resume(now).unwrap();
    assert!(matches!(fresh.poll_event(now), Some(Event::Connected)));
    let n = fresh.poll_transmit(now, &mut buf);
    let _ = p.a.conn.handle_input(now, &buf[..n]);
    let mut evs = Vec::new();
    while let Some(e) = p.a.conn.poll_event(now) {
        evs.push(Ev::from(e));
    }
    assert!(evs.contains(&Ev::Failed { id, status: Status::UNAVAILABLE }), "{evs:?}");
    assert!(evs.contains(&Ev::Connected), "{evs:?}");
    assert_eq!(p.a.conn.state(), State::Open);
    assert_eq!(p.a.conn.session_token(), b"new-session-token-abcdef");
    assert_eq!(p.a.conn.retained_requests(), (0, 0));
}

#[test]
fn goaway_ends_the_session_with_its_connection() {
    let mut p = resumable();
    let now = p.now;
    p.b.conn.go_away(now, Status::UNAVAILABLE, b"restart").unwrap();
    p.drive();
    p.a.conn.handle_eof(now);
    p.drive();
    assert_eq!(p.a.conn.state(), State::Closed, "no resumption after GOAWAY");
    assert_eq!(p.a.conn.reconnect(now), Err(ApiError::Closed));
}

#[test]
fn a_protocol_error_ends_the_session_instead_of_suspending_it() {
    let mut p = resumable();
    let now = p.now;
    // PONG-less garbage: an unknown non-extension frame type.
    let _ = p.b.conn.handle_input(now, &[0x7f, 0x00]);
    p.drive();
    assert_eq!(p.b.conn.state(), State::Closed);
}

/// Frames the test writes on the acceptor's behalf into a resumed dialer, or vice versa.
fn frame_bytes(f: &Frame<'_>) -> Vec<u8> {
    let mut b = vec![0u8; f.encoded_len()];
    let n = f.encode(&mut b).unwrap();
    b.truncate(n);
    b
}

#[test]
fn a_retransmission_with_another_body_is_a_protocol_error_never_a_replay() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"original", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    p.b.conn.respond(id, Status::OK, b"secret").unwrap();
    lose_transport(&mut p);
    resume(&mut p);
    responses(&mut p.a);
    // A hostile dialer now reuses the id with a different request.
    let forged = Frame::Call(Request {
        flags: 0,
        id,
        module: ECHO.module,
        method: ECHO.method,
        budget_us: 0,
        total_len: None,
        payload: b"other",
    });
    let mut buf = vec![0u8; 4096];
    while p.b.conn.poll_transmit(now, &mut buf) > 0 {}
    let _ = p.b.conn.handle_input(now, &frame_bytes(&forged));
    let evs: Vec<Ev> = core::iter::from_fn(|| p.b.conn.poll_event(now).map(Ev::from)).collect();
    assert!(
        matches!(
            evs.last(),
            Some(Ev::Closed(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. }))
        ),
        "{evs:?}"
    );
    let n = p.b.conn.poll_transmit(now, &mut buf);
    assert!(!buf[..n].windows(6).any(|w| w == b"secret"), "the cached reply is never sent to the forger");
}

/// A retransmitted fragmented request announcing a `total_len` beyond the message limit is
/// LIMIT_EXCEEDED, however large: the length is compared as the u64 it is on the wire. (On a
/// 32-bit target, 2^32 + 5 converted to `usize` first would have wrapped to 5 and been
/// accepted; CI runs this test on i686.)
#[test]
fn a_retransmission_announcing_a_length_past_4_gib_is_refused_on_every_target() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"original", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    lose_transport(&mut p);
    resume(&mut p);
    let forged = Frame::Call(Request {
        flags: crate::frame::flags::MORE,
        id,
        module: ECHO.module,
        method: ECHO.method,
        budget_us: 0,
        total_len: Some((1u64 << 32) + 5),
        payload: b"abc",
    });
    let mut buf = vec![0u8; 4096];
    while p.b.conn.poll_transmit(now, &mut buf) > 0 {}
    let _ = p.b.conn.handle_input(now, &frame_bytes(&forged));
    let evs: Vec<Ev> = core::iter::from_fn(|| p.b.conn.poll_event(now).map(Ev::from)).collect();
    assert!(
        matches!(
            evs.last(),
            Some(Ev::Closed(ConnectionError::Violation { status: Status::LIMIT_EXCEEDED, .. }))
        ),
        "{evs:?}"
    );
}

#[test]
fn stream_resume_outside_a_resumed_transport_is_a_protocol_error() {
    let mut p = resumable();
    let now = p.now;
    let _ = p.b.conn.handle_input(now, &frame_bytes(&Frame::StreamResume { id: 0, received: 0 }));
    let evs: Vec<Ev> = core::iter::from_fn(|| p.b.conn.poll_event(now).map(Ev::from)).collect();
    assert!(matches!(evs.last(), Some(Ev::Closed(ConnectionError::Violation { .. }))), "{evs:?}");
}

#[test]
fn an_ack_naming_ids_never_used_is_a_protocol_error_and_huge_ranges_cost_nothing() {
    let mut p = resumable();
    let now = p.now;
    p.b.echo = true;
    for _ in 0..3 {
        p.a.conn.call(now, ECHO, b"x", None).unwrap();
    }
    p.drive();
    // A range over every id up to the highest used: trimmed in time bounded by the cache.
    let mut ab = [0u8; 32];
    let ok = crate::frame::Ack::encode_into(&[(0, 3)], &mut ab).unwrap();
    let _ = p.b.conn.handle_input(now, &frame_bytes(&Frame::Ack(ok)));
    assert!(p.b.conn.poll_event(now).is_none());
    assert_eq!(p.b.conn.reply_cache_len(), (0, 0));
    let mut ab = [0u8; 32];
    let bad = crate::frame::Ack::encode_into(&[(0, 1u64 << 40)], &mut ab).unwrap();
    let _ = p.b.conn.handle_input(now, &frame_bytes(&Frame::Ack(bad)));
    let evs: Vec<Ev> = core::iter::from_fn(|| p.b.conn.poll_event(now).map(Ev::from)).collect();
    assert!(matches!(evs.last(), Some(Ev::Closed(ConnectionError::Violation { .. }))), "{evs:?}");
}

#[test]
fn reply_cache_flooding_by_a_peer_that_never_acks_stays_within_its_bounds() {
    let cb = Config { reply_cache_entries: 20, reply_cache_bytes: 1000, ..Config::default() };
    let mut p = resumable_with(Config::default(), cb);
    p.b.echo = true;
    // The dialer never acknowledges: its ACK frames are dropped on the way.
    for round in 0..50u8 {
        let now = p.now;
        for _ in 0..10 {
            p.a.conn.call(now, ECHO, &[round; 64], None).unwrap();
        }
        p.drive();
        let (entries, bytes) = p.b.conn.reply_cache_len();
        assert!(entries <= 20 && bytes <= 1000, "cache at {entries} entries / {bytes} bytes");
    }
    let (entries, bytes) = p.b.conn.reply_cache_len();
    assert!(entries > 0 && bytes <= 1000);
}

#[test]
fn retained_requests_are_bounded_and_refused_with_a_specific_error() {
    let ca = Config { max_retained_bytes: 100, ..Config::default() };
    let mut p = resumable_with(ca, Config::default());
    let now = p.now;
    p.a.conn.call(now, ECHO, &[0; 60], None).unwrap();
    assert_eq!(p.a.conn.call(now, ECHO, &[0; 60], None), Err(ApiError::RetainFull { limit: 100 }));
    assert_eq!(ApiError::RetainFull { limit: 100 }.status(), Status::RESOURCE_EXHAUSTED);
}

#[test]
fn resuming_with_different_parameters_is_refused() {
    let mut p = resumable();
    let now = p.now;
    lose_transport(&mut p);
    // A dialer that comes back announcing other limits.
    let mut liar = Connection::new(
        Role::Dialer,
        Config { max_concurrent_calls: 3, ..Config::default() },
        Identity { name: b"client", auth: b"token", session: TOKEN },
        now,
    )
    .unwrap();
    let mut fresh = Connection::new(Role::Acceptor, Config::default(), Identity::default(), now).unwrap();
    let mut fresh2 = Connection::new(
        Role::Acceptor,
        Config::default(),
        Identity { name: b"", auth: b"", session: b"fresh-token-0000000000" },
        now,
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let n = liar.poll_transmit(now, &mut buf);
    // An acceptor that offers no resumption answers with a new session at once.
    let _ = fresh.handle_input(now, &buf[..n]);
    assert!(matches!(fresh.poll_event(now), Some(Event::Connected)));
    let _ = fresh2.handle_input(now, &buf[..n]);
    assert!(matches!(fresh2.poll_event(now), Some(Event::ResumeRequested { .. })));
    assert!(p.b.conn.resume_from(now, &mut fresh2).is_err());
    assert_eq!(fresh2.state(), State::Closed);
    assert_eq!(p.b.conn.state(), State::Suspended, "the session is untouched");
}

#[test]
fn frames_before_the_acceptor_decides_are_a_protocol_error() {
    let mut p = resumable();
    lose_transport(&mut p);
    let now = p.now;
    p.a.conn.reconnect(now).unwrap();
    let mut fresh = Connection::new(
        Role::Acceptor,
        Config::default(),
        Identity { name: b"", auth: b"", session: b"fresh-token-0000000000" },
        now,
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = p.a.conn.poll_transmit(now, &mut buf);
    n += frame_bytes(&Frame::Ping([0; 8])).iter().enumerate().map(|(i, &b)| buf[n + i] = b).count();
    let _ = fresh.handle_input(now, &buf[..n]);
    assert!(matches!(fresh.poll_event(now), Some(Event::ResumeRequested { .. })));
    assert!(matches!(fresh.poll_event(now), Some(Event::Closed(ConnectionError::Violation { .. }))));
}

#[test]
fn a_failed_reconnection_attempt_leaves_the_session_suspended() {
    let mut p = resumable();
    lose_transport(&mut p);
    let now = p.now;
    p.a.conn.reconnect(now).unwrap();
    assert!(!p.a.conn.needs_transport());
    // The new transport dies before the acceptor answers.
    p.a.conn.handle_eof(now);
    assert!(p.a.conn.poll_event(now).is_none());
    assert_eq!(p.a.conn.state(), State::Suspended);
    assert!(p.a.conn.needs_transport());
    // So does an attempt that never gets an answer.
    p.a.conn.reconnect(now).unwrap();
    let t = p.a.conn.poll_timeout().unwrap();
    p.a.conn.handle_timeout(t);
    assert!(p.a.conn.poll_event(t).is_none());
    assert!(p.a.conn.needs_transport());
    p.now = t;
    resume(&mut p);
}

// ------------------------------------------------------------------ streams

/// The stream items `n` received on `id` (taken out of its events).
pub(super) fn stream_items(n: &mut Node, id: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    n.events.retain(|e| match e {
        Ev::StreamData { id: i, payload } if *i == id => {
            out.push(payload.clone());
            false
        }
        _ => true,
    });
    out
}

#[test]
fn stream_items_cross_a_resumption_complete_in_order_without_duplicates() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.open_stream(now, ECHO, b"open", None, false).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    let mut got_b = Vec::new();
    let mut got_a = Vec::new();
    let mut sent = 0u8;
    for phase in 0..3 {
        for _ in 0..5 {
            p.a.conn.stream_send(id, &[sent]).unwrap();
            p.b.conn.stream_send(id, &[sent, sent]).unwrap();
            sent += 1;
        }
        // Part of what was sent arrives before the loss (cut inside a frame); the rest is lost
        // with the transport.
        let mut buf = vec![0u8; 13 + 3 * phase];
        let n = p.a.conn.poll_transmit(p.now, &mut buf);
        let _ = p.b.conn.handle_input(p.now, &buf[..n]);
        p.b.poll(p.now);
        let n = p.b.conn.poll_transmit(p.now, &mut buf);
        let _ = p.a.conn.handle_input(p.now, &buf[..n]);
        p.a.poll(p.now);
        let fresh_b = stream_items(&mut p.b, id);
        let fresh_a = stream_items(&mut p.a, id);
        // The applications consume what they got, returning credit (which confirms items).
        p.b.conn.stream_consumed(id, fresh_b.len() as u32, fresh_b.len() as u32).unwrap();
        p.a.conn.stream_consumed(id, fresh_a.len() as u32, 2 * fresh_a.len() as u32).unwrap();
        got_b.extend(fresh_b);
        got_a.extend(fresh_a);
        if phase < 2 {
            lose_transport(&mut p);
            resume(&mut p);
        }
        let fresh_b = stream_items(&mut p.b, id);
        let fresh_a = stream_items(&mut p.a, id);
        p.b.conn.stream_consumed(id, fresh_b.len() as u32, fresh_b.len() as u32).unwrap();
        p.a.conn.stream_consumed(id, fresh_a.len() as u32, 2 * fresh_a.len() as u32).unwrap();
        got_b.extend(fresh_b);
        got_a.extend(fresh_a);
    }
    p.drive();
    got_b.extend(stream_items(&mut p.b, id));
    got_a.extend(stream_items(&mut p.a, id));
    let want_b: Vec<Vec<u8>> = (0..sent).map(|k| vec![k]).collect();
    let want_a: Vec<Vec<u8>> = (0..sent).map(|k| vec![k, k]).collect();
    assert_eq!(got_b, want_b, "opener → responder items");
    assert_eq!(got_a, want_a, "responder → opener items");
    p.a.conn.stream_finish(id, Status::OK).unwrap();
    p.b.conn.stream_finish(id, Status::OK).unwrap();
    p.drive();
    lose_transport(&mut p);
    resume(&mut p);
    p.advance(ms(150));
    p.a.take();
    p.b.take();
    p.assert_quiet();
}

#[test]
fn a_stream_finished_while_suspended_finishes_after_resumption() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.open_stream(now, ECHO, b"", None, false).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    lose_transport(&mut p);
    assert_eq!(p.b.conn.stream_send(id, b"x"), Err(ApiError::NoCredit));
    p.b.conn.stream_finish(id, Status::OK).unwrap();
    p.a.conn.stream_finish(id, Status::OK).unwrap();
    resume(&mut p);
    let evs = p.a.take();
    assert!(evs.contains(&Ev::StreamFin { id, status: Status::OK }), "{evs:?}");
    assert!(p.b.take().contains(&Ev::StreamFin { id, status: Status::OK }));
    p.advance(ms(150));
    p.assert_quiet();
}

#[test]
fn a_close_with_idle_timeout_suspends_the_session_instead_of_ending_it() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.call(now, ECHO, b"x", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    // The acceptor gives up on the transport with CLOSE(IDLE_TIMEOUT).
    let _ =
        p.a.conn
            .handle_input(now, &frame_bytes(&Frame::Close { status: Status::IDLE_TIMEOUT, message: b"" }));
    assert!(p.a.conn.poll_event(now).is_none(), "no exchange resolves");
    assert_eq!(p.a.conn.state(), State::Suspended);
    p.b.conn.handle_eof(now);
    p.drive();
    p.b.conn.respond(id, Status::OK, b"y").unwrap();
    resume(&mut p);
    assert_eq!(responses(&mut p.a), vec![(id, Status::OK, b"y".to_vec())]);
}

#[test]
fn a_keyed_request_is_retransmitted_with_its_key() {
    let mut p = resumable();
    let now = p.now;
    let key = crate::SchemaKey([9; 8]);
    let id = p.a.conn.open_keyed(now, RequestKind::Call, ECHO, Some(key), b"lost", None).unwrap();
    lose_transport(&mut p);
    resume(&mut p);
    assert_eq!(p.b.requests(), vec![(id, RequestKind::Call, b"lost".to_vec())]);
    assert_eq!(p.b.keys, vec![Some(key)], "SPEC.md §7.10: a retransmission carries the key again");
    p.b.conn.respond(id, Status::OK, b"ok").unwrap();
    p.drive();
    assert_eq!(responses(&mut p.a), vec![(id, Status::OK, b"ok".to_vec())]);
}
