//! The mesh's decisions, one rule per test, with a fake clock.

use super::*;
use alloc::string::ToString;
use alloc::vec;

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

type M = Mesh<u32>;

fn names(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| alloc::format!("node-{i}").into_bytes()).collect()
}

fn mesh(me: &[u8], all: &[Vec<u8>], seed: u64) -> M {
    let members = all.iter().enumerate().map(|(i, n)| (n.clone(), i as u32));
    Mesh::new(me, 0, members, MeshConfig::default(), seed).unwrap()
}

fn actions(m: &mut M) -> Vec<Action<u32>> {
    core::iter::from_fn(|| m.poll_action()).collect()
}

fn dials_of(m: &mut M) -> Vec<(DialId, Vec<u8>)> {
    actions(m)
        .into_iter()
        .filter_map(|a| match a {
            Action::Dial { dial, name, .. } => Some((dial, name)),
            _ => None,
        })
        .collect()
}

fn closes_of(acts: &[Action<u32>]) -> Vec<(ConnId, Status, &'static str)> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Close { conn, status, reason } => Some((*conn, *status, *reason)),
            _ => None,
        })
        .collect()
}

/// A pair (dialer, acceptor) of names.
fn pair() -> (Vec<u8>, Vec<u8>) {
    let (a, b) = (b"alpha".to_vec(), b"beta".to_vec());
    if dials(&a, &b) {
        (a, b)
    } else {
        (b, a)
    }
}

#[test]
fn the_dialer_rule_is_antisymmetric_deterministic_and_balanced() {
    // FNV-1a test vectors (the published ones), so that other languages can check theirs.
    assert_eq!(fnv1a64(&[]), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(&[b"foo"]), 0xdcb2_7518_fed9_d577);
    assert_eq!(fnv1a64(&[b"fo", b"o"]), fnv1a64(&[b"foo"]));
    // The SPEC.md §16.2 examples.
    assert_eq!(fnv1a64(&[b"alpha", b"beta"]), 0xa4ad_70cb_18fd_4fe1);
    assert_eq!(fnv1a64(&[b"beta", b"alpha"]), 0x07e8_5a5c_1e7c_7419);
    assert!(dials(b"beta", b"alpha") && !dials(b"alpha", b"beta"));
    assert_eq!(fnv1a64(&[b"node-0", b"node-1"]), 0x60ec_29d8_ce43_0336);
    assert_eq!(fnv1a64(&[b"node-1", b"node-0"]), 0xa90b_9181_8437_3c9e);
    assert!(dials(b"node-0", b"node-1"));
    assert!(!dials(b"x", b"x"));
    let all = names(16);
    let mut dialed_by = vec![0usize; all.len()];
    let mut larger_dials = false;
    for (i, a) in all.iter().enumerate() {
        for b in &all {
            if a != b {
                assert_ne!(dials(a, b), dials(b, a), "{a:?} / {b:?}: exactly one dials");
                if dials(a, b) {
                    dialed_by[i] += 1;
                    larger_dials |= a > b;
                }
            }
        }
    }
    assert!(larger_dials, "not simply the smaller name");
    // Balanced: nobody dials all 15 others, nobody none (with these names).
    assert!(dialed_by.iter().all(|&n| n > 0 && n < 15), "{dialed_by:?}");
}

#[test]
fn simultaneous_start_converges_on_one_connection_per_pair() {
    let all = names(5);
    let mut meshes: Vec<M> = all.iter().enumerate().map(|(i, n)| mesh(n, &all, i as u64)).collect();
    // Every node's dials, all at once.
    let pending: Vec<(usize, DialId, Vec<u8>)> = (0..meshes.len())
        .flat_map(|i| dials_of(&mut meshes[i]).into_iter().map(move |(d, n)| (i, d, n)))
        .collect();
    assert_eq!(pending.len(), 10, "one dial per pair");
    for (next, (i, dial, name)) in (100u64..).zip(pending) {
        let j = all.iter().position(|n| *n == name).unwrap();
        let conn = ConnId(next);
        assert_eq!(meshes[j].inbound(ms(5), conn, &all[i]), Verdict::Accept);
        meshes[i].dial_succeeded(ms(6), dial, conn, &all[j]);
    }
    for i in 0..5 {
        assert_eq!(meshes[i].connections(), 4);
        for j in 0..5 {
            if i != j {
                let c = meshes[i].connection(&all[j]).expect("connected");
                assert_eq!(meshes[j].connection(&all[i]), Some(c), "both ends hold the same connection");
                let dialed =
                    matches!(meshes[i].state(&all[j]), Some(MemberState::Connected { dialed: true, .. }));
                assert_eq!(dialed, dials(&all[i], &all[j]));
            }
        }
        assert_eq!(meshes[i].poll_timeout(), None);
        assert!(closes_of(&actions(&mut meshes[i])).is_empty());
    }
}

#[test]
fn a_restarted_dialer_replaces_its_stale_connection() {
    let (d, a) = pair();
    let all = vec![d.clone(), a.clone()];
    let mut acc = mesh(&a, &all, 1);
    assert_eq!(acc.state(&d), Some(MemberState::Awaiting));
    assert_eq!(acc.inbound(ms(0), ConnId(1), &d), Verdict::Accept);
    actions(&mut acc);
    // The dialer restarted: its old connection is half-open here; it dials again.
    let mut dialer = mesh(&d, &all, 2);
    let (dial, _) = dials_of(&mut dialer)[0].clone();
    assert_eq!(acc.inbound(ms(10), ConnId(2), &d), Verdict::Accept);
    let acts = actions(&mut acc);
    assert_eq!(closes_of(&acts), vec![(ConnId(1), Status::UNAVAILABLE, REASON_REPLACED)]);
    assert_eq!(acc.connection(&d), Some(ConnId(2)));
    assert_eq!(acc.connections(), 1);
    dialer.dial_succeeded(ms(11), dial, ConnId(9), &a);
    assert_eq!(dialer.connection(&a), Some(ConnId(9)));
    // The old connection's end arrives later: nothing changes.
    acc.closed(ms(20), ConnId(1));
    assert_eq!(acc.connection(&d), Some(ConnId(2)));
    assert_eq!(acc.stats().replaced, 1);
    // The same connection reported twice is not a replacement.
    assert_eq!(acc.inbound(ms(21), ConnId(2), &d), Verdict::Accept);
    assert!(closes_of(&actions(&mut acc)).is_empty());
}

#[test]
fn non_members_and_the_wrong_dialer_are_refused() {
    let (d, a) = pair();
    let all = vec![d.clone(), a.clone()];
    let mut acc = mesh(&a, &all, 1);
    let mut dialer = mesh(&d, &all, 2);
    let refuse_nm = Verdict::Refuse { status: Status::PERMISSION_DENIED, reason: REASON_NOT_MEMBER };
    assert_eq!(acc.inbound(ms(0), ConnId(1), b"stranger"), refuse_nm);
    assert_eq!(acc.inbound(ms(0), ConnId(2), &a), refuse_nm, "its own name");
    assert_eq!(acc.inbound(ms(0), ConnId(3), b""), refuse_nm, "anonymous");
    let wrong = Verdict::Refuse { status: Status::FAILED_PRECONDITION, reason: REASON_WRONG_DIALER };
    assert_eq!(dialer.inbound(ms(0), ConnId(4), &a), wrong);
    assert_eq!((acc.connections(), dialer.connections()), (0, 0));
    assert_eq!(acc.stats().refused_non_members, 3);
    assert_eq!(dialer.stats().refused_wrong_dialer, 1);
    // A refusal leaves the dialer's attempt untouched.
    assert!(matches!(dialer.state(&a), Some(MemberState::Dialing { attempt: 1 })));
}

#[test]
fn backoff_grows_to_its_cap_with_bounded_jitter() {
    let (d, a) = pair();
    let all = vec![d.clone(), a.clone()];
    for seed in 0..50 {
        let mut m = mesh(&d, &all, seed);
        let cfg = m.config().clone();
        let mut now = ms(0);
        let mut base = cfg.initial_backoff;
        let mut delays = Vec::new();
        for attempt in 1..=12u32 {
            let (dial, _) = dials_of(&mut m)[0].clone();
            assert_eq!(m.state(&a), Some(MemberState::Dialing { attempt }));
            m.dial_failed(now, dial);
            base = (base * cfg.multiplier).min(cfg.max_backoff);
            let Some(MemberState::Backoff { failures, next }) = m.state(&a) else { panic!() };
            assert_eq!(failures, attempt);
            let delay = next.saturating_duration_since(now);
            assert!(
                delay <= base && delay >= base / 2,
                "seed {seed} attempt {attempt}: {delay:?} vs {base:?}"
            );
            assert!(delay <= cfg.max_backoff);
            delays.push(delay);
            assert_eq!(m.poll_timeout(), Some(next));
            m.tick(Instant::from_micros(next.as_micros() - 1));
            assert!(dials_of(&mut m).is_empty(), "not before it is due");
            now = next;
            m.tick(now);
            assert_eq!(m.timers(), 0);
        }
        assert!(delays.windows(2).any(|w| w[0] != w[1]), "jittered");
    }
    // Jitter 0 is exact; jitter over 100 is 100; never under 1 ms.
    let mut j = Jitter::new(3);
    assert_eq!(j.draw(Duration::from_millis(40), 0), Duration::from_millis(40));
    for _ in 0..100 {
        assert!(j.draw(Duration::from_millis(40), 200) <= Duration::from_millis(40));
        assert!(j.draw(Duration::from_millis(40), 200) >= Duration::from_millis(1));
    }
    assert_eq!(j.draw(Duration::ZERO, 50), Duration::from_millis(1));
}

#[test]
fn a_lost_connection_is_redialed_and_a_flapping_one_backs_off() {
    let (d, a) = pair();
    let all = vec![d.clone(), a.clone()];
    let mut m = mesh(&d, &all, 7);
    let init = m.config().initial_backoff;
    let (dial, _) = dials_of(&mut m)[0].clone();
    m.dial_succeeded(ms(0), dial, ConnId(1), &a);
    // Lost after a long life: redial after the initial backoff, failures 0.
    m.closed(ms(10_000), ConnId(1));
    let Some(MemberState::Backoff { failures: 0, next }) = m.state(&a) else { panic!() };
    assert!(next.saturating_duration_since(ms(10_000)) <= init);
    m.tick(next);
    // Connections that die at once count as failures: the delay grows.
    let mut now = next;
    let mut last = Duration::ZERO;
    for k in 2..8u64 {
        let (dial, _) = dials_of(&mut m)[0].clone();
        m.dial_succeeded(now, dial, ConnId(k), &a);
        m.closed(now + Duration::from_millis(5), ConnId(k));
        let Some(MemberState::Backoff { next, .. }) = m.state(&a) else { panic!() };
        let delay = next.saturating_duration_since(now + Duration::from_millis(5));
        if k > 4 {
            assert!(delay > init, "flapping must not redial at the initial pace: {delay:?}");
        }
        last = last.max(delay);
        now = next;
        m.tick(now);
    }
    assert!(last <= m.config().max_backoff);
    // The acceptor side waits instead.
    let mut acc = mesh(&a, &all, 8);
    acc.inbound(ms(0), ConnId(5), &d);
    acc.closed(ms(1), ConnId(5));
    assert_eq!(acc.state(&d), Some(MemberState::Awaiting));
    assert_eq!(acc.poll_timeout(), None);
    assert_eq!(acc.stats().lost, 1);
}

#[test]
fn members_are_added_and_removed_at_run_time() {
    let (d, a) = pair();
    let mut m = mesh(&d, core::slice::from_ref(&d), 1);
    assert!(m.is_empty());
    // Added and removed before the runtime drained the dial: it is never started.
    m.add_member(&a, 4).unwrap();
    m.remove_member(&a);
    assert!(!actions(&mut m).iter().any(|x| matches!(x, Action::Dial { .. })));
    m.add_member(&a, 4).unwrap();
    let acts = actions(&mut m);
    assert!(acts.iter().any(|x| matches!(x, Action::Dial { addr: 4, name, .. } if *name == a)));
    assert!(acts
        .iter()
        .any(|x| matches!(x, Action::State { state: MemberState::Dialing { attempt: 1 }, .. })));
    // Removed while dialing: a late success is closed, a late failure ignored.
    let dial = DialId(1);
    assert!(m.remove_member(&a));
    assert!(!m.remove_member(&a));
    assert!(actions(&mut m).contains(&Action::State { name: a.clone(), state: MemberState::Removed }));
    m.dial_succeeded(ms(1), dial, ConnId(3), &a);
    assert_eq!(closes_of(&actions(&mut m)), vec![(ConnId(3), Status::OK, REASON_UNWANTED)]);
    m.dial_failed(ms(1), dial);
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.connections(), 0);
    // Re-added, connected, removed: closed with OK; inbound from it refused.
    m.add_member(&a, 5).unwrap();
    let (dial, _) = dials_of(&mut m)[0].clone();
    m.dial_succeeded(ms(2), dial, ConnId(4), &a);
    assert_eq!(m.member_of(ConnId(4)), Some(a.as_slice()));
    m.remove_member(&a);
    assert_eq!(closes_of(&actions(&mut m)), vec![(ConnId(4), Status::OK, REASON_REMOVED)]);
    assert_eq!((m.connections(), m.timers()), (0, 0));
    m.closed(ms(3), ConnId(4));
    assert!(actions(&mut m).is_empty(), "its end is reported after the close: nothing to do");
    assert!(matches!(
        m.inbound(ms(3), ConnId(5), &a),
        Verdict::Refuse { status: Status::PERMISSION_DENIED, .. }
    ));
    // Removed during a backoff: its timer goes.
    m.add_member(&a, 5).unwrap();
    let (dial, _) = dials_of(&mut m)[0].clone();
    m.dial_failed(ms(4), dial);
    assert_eq!(m.timers(), 1);
    m.remove_member(&a);
    assert_eq!((m.timers(), m.poll_timeout()), (0, None));
    // An acceptor-side member is awaited; a changed address is used by the next dial.
    let mut acc = mesh(&a, core::slice::from_ref(&a), 2);
    acc.add_member(&d, 1).unwrap();
    assert_eq!(actions(&mut acc), vec![Action::State { name: d.clone(), state: MemberState::Awaiting }]);
    acc.add_member(&d, 9).unwrap();
    assert_eq!(acc.member_addr(&d), Some(&9));
    acc.add_member(&a, 1).unwrap();
    assert_eq!(acc.len(), 1, "its own name is not a member");
}

#[test]
fn the_wrong_node_at_a_members_address_is_closed() {
    let (d, a) = pair();
    let mut m = mesh(&d, &[d.clone(), a.clone()], 1);
    let (dial, _) = dials_of(&mut m)[0].clone();
    m.dial_succeeded(ms(0), dial, ConnId(1), b"impostor");
    let acts = actions(&mut m);
    assert_eq!(closes_of(&acts), vec![(ConnId(1), Status::PERMISSION_DENIED, REASON_WRONG_NAME)]);
    assert!(matches!(m.state(&a), Some(MemberState::Backoff { failures: 1, .. })));
    assert_eq!((m.connections(), m.stats().wrong_names), (0, 1));
}

#[test]
fn configuration_mistakes_are_errors_that_say_what_to_do() {
    let cfg = MeshConfig::default();
    assert_eq!(M::new(b"", 0, [], cfg.clone(), 0).unwrap_err(), MeshError::EmptyName);
    let long = vec![b'x'; 256];
    let e = M::new(b"a", 0, [(long, 1)], cfg.clone(), 0).unwrap_err();
    assert_eq!(e, MeshError::NameTooLong { len: 256 });
    assert!(e.to_string().contains("255"));
    let small = MeshConfig { max_members: 2, ..cfg };
    let e = M::new(b"a", 0, names(3).into_iter().map(|n| (n, 1)), small, 0).unwrap_err();
    assert_eq!(e, MeshError::TooManyMembers { limit: 2 });
    assert!(e.to_string().contains("max_members"));
    assert!(MeshError::EmptyName.to_string().contains("non-empty"));
}
