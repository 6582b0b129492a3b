//! The endpoint's decisions, one rule per test, with a fake clock.

use super::*;
use crate::time::Instant;
use core::time::Duration;

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn tok(b: u8) -> [u8; TOKEN_LEN] {
    [b; TOKEN_LEN]
}

fn actions(ep: &mut Endpoint) -> Vec<Action> {
    core::iter::from_fn(|| ep.poll_action()).collect()
}

fn mem(held: usize) -> SessionMemory {
    SessionMemory { held, sheddable: held }
}

#[test]
fn admission_is_bounded_by_connections_and_handshakes() {
    let cfg = EndpointConfig { max_connections: 3, max_handshaking: 2, ..EndpointConfig::default() };
    let mut ep = Endpoint::new(cfg);
    let a = ep.accept(ms(0), tok(1)).unwrap();
    let b = ep.accept(ms(0), tok(2)).unwrap();
    assert_eq!(ep.accept(ms(0), tok(3)), Err(Refusal::TooManyHandshakes { limit: 2 }));
    ep.connected(a.id, b"a", None);
    assert_eq!(ep.handshaking(), 1);
    let c = ep.accept(ms(0), tok(3)).unwrap();
    ep.connected(c.id, b"c", None);
    assert_eq!(ep.accept(ms(0), tok(4)), Err(Refusal::TooManyConnections { limit: 3 }));
    ep.closed(b.id);
    assert_eq!((ep.handshaking(), ep.connections()), (0, 2));
    assert!(ep.accept(ms(0), tok(5)).is_ok());
    let s = ep.stats();
    assert_eq!((s.refused_handshakes, s.refused_connections), (1, 1));
    assert!(Refusal::TooManyHandshakes { limit: 2 }.to_string().contains("max_handshaking"));
}

#[test]
fn tokens_are_offered_only_with_resumption_and_never_twice() {
    let mut ep = Endpoint::new(EndpointConfig { resume: false, ..EndpointConfig::default() });
    assert_eq!(ep.accept(ms(0), tok(1)).unwrap().token, None);
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap();
    assert_eq!(a.token, Some(tok(1)));
    ep.connected(a.id, b"a", None);
    // The caller's randomness repeated (it must not, but if it does) gives no token at all
    // rather than two sessions under one token.
    assert_eq!(ep.accept(ms(0), tok(1)).unwrap().token, None);
}

#[test]
fn a_peer_reconnecting_under_its_name_replaces_its_live_connection() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    ep.connected(a, b"sensor", None);
    let b = ep.accept(ms(0), tok(2)).unwrap().id;
    ep.connected(b, b"sensor", None);
    assert_eq!(ep.peer(b"sensor"), Some(b));
    assert_eq!(
        actions(&mut ep),
        vec![Action::Close {
            id: a,
            status: Status::UNAVAILABLE,
            reason: "replaced by a newer connection with the same name"
        }]
    );
    // The replaced connection closing does not take the name from its successor.
    ep.closed(a);
    assert_eq!(ep.peer(b"sensor"), Some(b));
    assert_eq!(ep.stats().replaced, 1);
}

#[test]
fn a_suspended_session_is_not_replaced_and_takes_its_name_back_when_resumed() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    ep.connected(a, b"sensor", None);
    ep.suspended(a, ms(10));
    let b = ep.accept(ms(20), tok(2)).unwrap().id;
    ep.connected(b, b"sensor", None);
    assert_eq!(actions(&mut ep), vec![], "SPEC.md §13.3: a new session does not end a suspended one");
    assert_eq!(ep.peer(b"sensor"), Some(b));
    let c = ep.accept(ms(30), tok(3)).unwrap().id;
    assert_eq!(ep.resume_requested(c, &tok(1), None), Resume::Into(a));
    ep.resumed(a, c);
    assert_eq!(ep.peer(b"sensor"), Some(a));
    assert_eq!(ep.suspended_sessions(), 0);
    assert_eq!(ep.connections(), 2, "the fresh transport is retired");
}

/// Found by the simulator: a resumed session took its name back from the live connection that
/// had registered it meanwhile; when the session ended, the name answered nothing although that
/// connection was still up, and a newcomer replaced only the session, leaving the other one live.
#[test]
fn a_name_falls_back_to_the_live_connection_a_resumed_session_took_it_from() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    ep.connected(a, b"sensor", None);
    ep.suspended(a, ms(10));
    let b = ep.accept(ms(20), tok(2)).unwrap().id;
    ep.connected(b, b"sensor", None);
    let c = ep.accept(ms(30), tok(3)).unwrap().id;
    assert_eq!(ep.resume_requested(c, &tok(1), None), Resume::Into(a));
    ep.resumed(a, c);
    assert_eq!(ep.peer(b"sensor"), Some(a));
    ep.closed(a);
    assert_eq!(ep.peer(b"sensor"), Some(b), "b is still up under the name");
    assert_eq!(ep.peers().collect::<Vec<_>>(), vec![(&b"sensor"[..], b)]);
}

#[test]
fn a_newcomer_replaces_every_live_connection_under_its_name() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    ep.connected(a, b"sensor", None);
    ep.suspended(a, ms(10));
    let b = ep.accept(ms(20), tok(2)).unwrap().id;
    ep.connected(b, b"sensor", None);
    let c = ep.accept(ms(30), tok(3)).unwrap().id;
    ep.resume_requested(c, &tok(1), None);
    ep.resumed(a, c);
    assert_eq!(actions(&mut ep), vec![], "a resumption replaces nobody");
    let d = ep.accept(ms(40), tok(4)).unwrap().id;
    ep.connected(d, b"sensor", None);
    let mut closed: Vec<ConnId> = actions(&mut ep)
        .into_iter()
        .map(|x| match x {
            Action::Close { id, .. } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    closed.sort();
    assert_eq!(closed, vec![a, b], "both live connections under the name go");
    ep.closed(a);
    ep.closed(b);
    assert_eq!(ep.peer(b"sensor"), Some(d));
    assert_eq!(ep.stats().replaced, 2);
}

#[test]
fn a_name_belongs_to_its_identity_another_is_refused_and_the_holder_untouched() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    ep.connected(a, b"sensor", Some(b"alice"));
    let b = ep.accept(ms(0), tok(2)).unwrap().id;
    // The runtime asks before accepting the peer…
    assert!(!ep.name_available(b"sensor", Some(b"mallory"), Some(b)));
    assert!(ep.name_available(b"sensor", Some(b"alice"), Some(b)));
    assert!(ep.name_available(b"other", Some(b"mallory"), Some(b)));
    // …and the endpoint refuses anyway if it did not.
    ep.connected(b, b"sensor", Some(b"mallory"));
    assert!(
        matches!(actions(&mut ep)[..], [Action::Close { id, status: Status::PERMISSION_DENIED, .. }] if id == b),
        "mallory is refused; alice's connection is untouched"
    );
    assert_eq!(ep.peer(b"sensor"), Some(a));
    assert_eq!(ep.stats().name_conflicts, 1);
    ep.closed(b);
    assert_eq!(ep.peer(b"sensor"), Some(a));
    // A suspended holder keeps its name from other identities too.
    ep.suspended(a, ms(1));
    assert!(!ep.name_available(b"sensor", Some(b"mallory"), None));
    ep.unsuspended(a);
    // The same identity replaces its own connection.
    let c = ep.accept(ms(0), tok(3)).unwrap().id;
    ep.connected(c, b"sensor", Some(b"alice"));
    assert!(matches!(actions(&mut ep)[..], [Action::Close { id, .. }] if id == a));
    assert_eq!(ep.peer(b"sensor"), Some(c));
    // Once the holder is gone, the name is free for anyone.
    ep.closed(a);
    ep.closed(c);
    assert!(ep.name_available(b"sensor", Some(b"mallory"), None));
}

#[test]
fn anonymous_peers_are_served_but_not_registered() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    let b = ep.accept(ms(0), tok(2)).unwrap().id;
    ep.connected(a, b"", None);
    ep.connected(b, b"", None);
    assert_eq!(ep.peers().count(), 0);
    assert_eq!(actions(&mut ep), vec![]);
}

#[test]
fn resumption_is_declined_for_unknown_handshaking_or_foreign_sessions() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    let f = ep.accept(ms(0), tok(2)).unwrap().id;
    assert_eq!(ep.resume_requested(f, &tok(1), None), Resume::Decline, "a is still in its handshake");
    ep.connected(a, b"a", Some(b"alice"));
    assert_eq!(ep.resume_requested(f, &tok(9), Some(b"alice")), Resume::Decline, "unknown token");
    assert_eq!(ep.resume_requested(f, &tok(1)[..8], Some(b"alice")), Resume::Decline, "a prefix");
    assert_eq!(ep.resume_requested(f, &tok(1), Some(b"mallory")), Resume::Decline, "another identity");
    assert_eq!(ep.resume_requested(f, &tok(1), None), Resume::Decline, "unauthenticated");
    assert_eq!(ep.resume_requested(f, &tok(1), Some(b"alice")), Resume::Into(a));
    assert_eq!(ep.stats().declined, 5);
    ep.closed(a);
    assert_eq!(ep.resume_requested(f, &tok(1), Some(b"alice")), Resume::Decline, "ended");
}

#[test]
fn too_many_suspended_sessions_evict_the_oldest() {
    let cfg = EndpointConfig { max_suspended_sessions: 2, ..EndpointConfig::default() };
    let mut ep = Endpoint::new(cfg);
    let ids: Vec<ConnId> = (0..3u8)
        .map(|i| {
            let id = ep.accept(ms(0), tok(i)).unwrap().id;
            ep.connected(id, &[b'p', i], None);
            id
        })
        .collect();
    ep.suspended(ids[1], ms(5));
    ep.suspended(ids[0], ms(7));
    assert_eq!(actions(&mut ep), vec![]);
    ep.suspended(ids[2], ms(9));
    assert_eq!(actions(&mut ep), vec![Action::Evict { id: ids[1], reason: EvictReason::TooManySuspended }]);
    assert_eq!(ep.suspended_sessions(), 2);
    assert_eq!(ep.stats().evicted_count, 1);
}

#[test]
fn the_memory_budget_evicts_suspended_sessions_oldest_first_then_sheds() {
    let cfg = EndpointConfig { session_memory_budget: 1000, ..EndpointConfig::default() };
    let mut ep = Endpoint::new(cfg);
    let ids: Vec<ConnId> = (0..3u8)
        .map(|i| {
            let id = ep.accept(ms(0), tok(i)).unwrap().id;
            ep.connected(id, &[b'p', i], None);
            id
        })
        .collect();
    ep.session_memory(ids[0], mem(400));
    ep.suspended(ids[1], ms(3));
    ep.session_memory(ids[1], mem(400));
    ep.suspended(ids[2], ms(2));
    ep.session_memory(ids[2], mem(400));
    // 1200 > 1000: the session suspended first (ids[2], at 2 ms) goes.
    assert_eq!(actions(&mut ep), vec![Action::Evict { id: ids[2], reason: EvictReason::MemoryBudget }]);
    ep.closed(ids[2]);
    ep.session_memory(ids[0], mem(900));
    assert_eq!(actions(&mut ep), vec![Action::Evict { id: ids[1], reason: EvictReason::MemoryBudget }]);
    ep.closed(ids[1]);
    ep.session_memory(ids[0], mem(1500));
    assert_eq!(actions(&mut ep), vec![Action::Shed { id: ids[0], bytes: 500 }]);
    // Asked once; not again until it reports.
    ep.session_memory(ids[0], mem(1500));
    assert_eq!(actions(&mut ep), vec![Action::Shed { id: ids[0], bytes: 500 }]);
    ep.session_memory(ids[0], mem(990));
    assert_eq!(actions(&mut ep), vec![]);
    let s = ep.stats();
    assert_eq!((s.evicted_memory, s.sheds), (2, 2));
}

#[test]
fn actions_for_a_connection_that_closed_are_dropped() {
    let mut ep = Endpoint::new(EndpointConfig::default());
    let a = ep.accept(ms(0), tok(1)).unwrap().id;
    ep.connected(a, b"x", None);
    let b = ep.accept(ms(0), tok(2)).unwrap().id;
    ep.connected(b, b"x", None);
    ep.closed(a);
    assert_eq!(actions(&mut ep), vec![]);
}

#[test]
fn datagrams_route_by_address_and_only_a_hello_opens_an_association() {
    let cfg = EndpointConfig { max_associations: 1, ..EndpointConfig::default() };
    let mut ep = Endpoint::new(cfg);
    let x = PeerAddr([1; 18]);
    let y = PeerAddr([2; 18]);
    assert_eq!(ep.route_datagram(ms(0), x, false), Route::Drop);
    let Route::New(id) = ep.route_datagram(ms(0), x, true) else { panic!("HELLO opens") };
    assert_eq!(ep.route_datagram(ms(0), x, false), Route::Existing(id));
    assert_eq!(ep.route_datagram(ms(0), y, true), Route::Full);
    assert_eq!(ep.stats().dropped_hellos, 1);
    ep.association_closed(&x);
    assert_eq!((ep.associations(), ep.connections()), (0, 0));
    assert!(matches!(ep.route_datagram(ms(0), y, true), Route::New(_)));
}

#[test]
fn socket_addresses_map_to_distinct_keys() {
    let a: core::net::SocketAddr = "127.0.0.1:7".parse().unwrap();
    let b: core::net::SocketAddr = "127.0.0.1:8".parse().unwrap();
    let c: core::net::SocketAddr = "[::ffff:127.0.0.1]:7".parse().unwrap();
    assert_ne!(PeerAddr::from(a), PeerAddr::from(b));
    assert_eq!(PeerAddr::from(a), PeerAddr::from(c), "IPv4 and its IPv4-mapped form are one peer");
}

// ------------------------------------------------------------------ dialer

#[test]
fn the_dialer_backs_off_exponentially_with_bounded_jitter_and_never_zero() {
    let policy = ReconnectPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1000),
        ..ReconnectPolicy::default()
    };
    for seed in 0..50 {
        let mut d = Dialer::new(policy.clone(), seed);
        d.connected(false);
        let mut now = ms(1000);
        let first = d.lost(now).unwrap();
        let gap = first - now;
        assert!(gap >= Duration::from_millis(50) && gap <= Duration::from_millis(150), "{gap:?}");
        let mut base = 100.0f64;
        for k in 1..10u32 {
            now = d.poll_timeout().unwrap();
            assert!(d.attempt_due(now));
            assert_eq!(d.state(), LinkState::Connecting { attempt: k });
            let next = d.attempt_failed(now).unwrap();
            base = (base * 2.0).min(1000.0);
            let gap = (next - now).as_secs_f64() * 1000.0;
            assert!(gap >= base * 0.5 - 1.0 && gap <= base * 1.5 + 1.0, "attempt {k}: {gap} vs {base}");
            assert!(matches!(d.state(), LinkState::Suspended { failures, .. } if failures == k));
        }
    }
    let mut d = Dialer::new(ReconnectPolicy { initial: Duration::ZERO, jitter: 1.0, ..policy }, 3);
    d.connected(false);
    let now = ms(5);
    assert!(d.lost(now).unwrap() > now, "a zero delay would spin on refused connects");
}

#[test]
fn the_dialer_is_not_due_early_and_resets_after_connecting() {
    let mut d = Dialer::new(ReconnectPolicy::default(), 1);
    assert_eq!(d.state(), LinkState::Connecting { attempt: 1 });
    d.connected(false);
    let t = d.lost(ms(0)).unwrap();
    assert!(!d.attempt_due(ms(0)));
    assert!(d.attempt_due(t));
    d.attempt_failed(t);
    let t2 = d.poll_timeout().unwrap();
    assert!(d.attempt_due(t2));
    d.connected(true);
    assert_eq!(d.state(), LinkState::Connected { resumed: true });
    let t3 = d.lost(t2).unwrap();
    assert!(t3 - t2 <= Duration::from_millis(15), "the backoff starts over after a success");
}

#[test]
fn the_dialer_gives_up_after_max_attempts_and_follows_the_fresh_session_policy() {
    let mut d = Dialer::new(ReconnectPolicy { max_attempts: Some(2), ..ReconnectPolicy::default() }, 9);
    d.connected(false);
    let t = d.lost(ms(0)).unwrap();
    assert!(d.attempt_due(t));
    let t = d.attempt_failed(t).unwrap();
    assert!(d.attempt_due(t));
    assert_eq!(d.attempt_failed(t), None);
    assert_eq!(d.state(), LinkState::Closed);
    assert!(!d.attempt_due(Instant::MAX));

    let mut d = Dialer::new(ReconnectPolicy::default(), 9);
    assert!(d.not_resumed(), "by default a fresh session follows");
    let mut d = Dialer::new(ReconnectPolicy { fresh_session: false, ..ReconnectPolicy::default() }, 9);
    assert!(!d.not_resumed());
    assert_eq!(d.state(), LinkState::Closed);
    d.connected(false);
    assert_eq!(d.state(), LinkState::Closed, "closed stays closed");
}

#[test]
fn a_failed_first_connect_is_retried_like_a_reconnection() {
    let mut d = Dialer::new(ReconnectPolicy::default(), 4);
    let t = d.attempt_failed(ms(0)).unwrap();
    assert!(matches!(d.state(), LinkState::Suspended { failures: 1, .. }));
    assert!(d.attempt_due(t));
    assert_eq!(d.state(), LinkState::Connecting { attempt: 2 });
}
