//! The mesh of peers (SPEC.md §16) in tandem-std: five nodes in one process started at once,
//! every pair calling, streaming and notifying both ways over exactly one connection; a member
//! killed and restarted while the others call it (each request executed at most once, the member
//! rejoins); members added and removed at run time; the watch of a member's state; the mesh's
//! refusals on the wire; a mesh over tls:// with client certificates proving the names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use tandem_std::{
    ClientConfig, Error, Handlers, MemberState, Mesh, MeshConfig, MeshOptions, Notification, ServerConfig,
    Status, Streaming, Unary,
};

const T: Duration = Duration::from_secs(5);
/// Who answers, and who the caller is on that connection.
const WHO: Unary<(), (String, String)> = Unary::new(9, 1);
/// Executes request `id` once: counted per id on the callee; answers the callee's name.
const EXEC: Unary<u64, String> = Unary::new(9, 2);
/// Streams `n` items: the callee's name, `n` times.
const NAMES: Streaming<u32, (), String> = Streaming::new(9, 3);
/// Executes request `id` after 300 ms (counted per id like EXEC); answers it.
const SLOW: Unary<u64, u64> = Unary::new(9, 5);
/// A reliable notification, counted by the callee.
const POKE: Notification<String> = Notification::new(9, 4);

type Counts = Arc<Mutex<HashMap<u64, u32>>>;

fn dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tandem-std-mesh-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn addr(dir: &Path, name: &str) -> String {
    format!("unix://{}", dir.join(name).display())
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node-{i}")).collect()
}

fn handlers(me: &str, counts: Counts) -> Handlers {
    let me = me.to_owned();
    let me2 = me.clone();
    let me3 = me.clone();
    Handlers::new()
        .unary(&WHO, move |ctx, ()| Ok((me.clone(), ctx.peer_name().to_owned())))
        .unary(&EXEC, {
            let counts = counts.clone();
            move |_, id| {
                *counts.lock().unwrap().entry(id).or_default() += 1;
                Ok(me2.clone())
            }
        })
        .unary(&SLOW, move |_, id| {
            std::thread::sleep(Duration::from_millis(300));
            *counts.lock().unwrap().entry(id).or_default() += 1;
            Ok(id)
        })
        .streaming(&NAMES, move |_, n, _up, mut down| {
            for _ in 0..n {
                down.send(&me3).map_err(|e| e.status())?;
            }
            Ok(())
        })
        .notification(&POKE, |ctx, from| {
            assert_eq!(from, ctx.peer_name());
            POKES.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
}

/// POKE notifications served.
static POKES: AtomicU64 = AtomicU64::new(0);

fn options(dir: &Path, me: &str, members: &[String]) -> MeshOptions {
    let mut o = MeshOptions::new(me, addr(dir, me), ServerConfig::new(me), ClientConfig::new(me));
    o.server.unlink_stale_socket = true;
    o.client.connect_timeout = Duration::from_secs(2);
    o.mesh = MeshConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..MeshConfig::default()
    };
    for m in members {
        o = o.member(m.clone(), addr(dir, m));
    }
    o
}

/// Waits until every node holds exactly one connection per member, dialed by the pair's dialer
/// — at both ends — and no other connection.
fn converged(nodes: &[&Mesh], timeout: Duration) {
    let until = Instant::now() + timeout;
    loop {
        let ok = nodes.iter().all(|n| {
            let ms = n.members();
            let all = ms
                .iter()
                .all(|m| matches!(m.state, MemberState::Connected { dialed, .. } if dialed == m.dialer));
            let dialers = ms.iter().filter(|m| m.dialer).count();
            let (dialed, accepted) = n.connections();
            all && dialed == dialers
                && accepted == ms.len() - dialers
                && n.server_stats().connections == accepted
        });
        if ok {
            return;
        }
        assert!(
            Instant::now() < until,
            "the mesh did not converge: {:#?}",
            nodes
                .iter()
                .map(|n| (n.name(), n.members(), n.connections(), n.server_stats().connections))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts every node at once (one thread each, released together).
fn start_all(dir: &Path, all: &[String], counts: &Counts) -> Vec<Mesh> {
    let barrier = Arc::new(Barrier::new(all.len()));
    let threads: Vec<_> = all
        .iter()
        .map(|me| {
            let (dir, all, me, counts, b) =
                (dir.to_owned(), all.to_vec(), me.clone(), counts.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                Mesh::start(options(&dir, &me, &all), handlers(&me, counts)).unwrap()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn five_nodes_started_at_once_call_every_pair_both_ways_over_one_connection() {
    let d = dir("five");
    let all = names(5);
    let counts = Counts::default();
    let nodes = start_all(&d, &all, &counts);
    let refs: Vec<&Mesh> = nodes.iter().collect();
    converged(&refs, T);
    for a in &nodes {
        for b in &all {
            if b == a.name() {
                continue;
            }
            let p = a.peer(b).unwrap();
            let (callee, caller) = p.call(&WHO, &(), T).unwrap();
            assert_eq!((callee.as_str(), caller.as_str()), (b.as_str(), a.name()));
            // Streams and notifications too, whichever side dialed.
            let mut rx = p.subscribe(&NAMES, &3, T).unwrap();
            let mut items = Vec::new();
            while let Some(x) = rx.recv().unwrap() {
                items.push(x);
            }
            assert_eq!(items, vec![b.clone(); 3]);
            p.notify(&POKE, &a.name().to_owned(), T).unwrap();
        }
        let results = a.call_all(&WHO, &(), T);
        assert_eq!(results.len(), 4);
        for (member, r) in results {
            assert_eq!(r.unwrap().0, member);
        }
    }
    assert_eq!(POKES.load(Ordering::SeqCst), 20);
    // Still exactly one connection per pair after all that traffic, and nothing was replaced.
    converged(&refs, T);
    for n in &nodes {
        assert_eq!(n.stats().replaced, 0, "{}", n.name());
        assert_eq!(n.stats().refused_wrong_dialer, 0, "{}", n.name());
    }
    for n in nodes {
        n.shutdown(Duration::from_millis(200));
    }
}

#[test]
fn a_killed_member_restarts_and_rejoins_and_no_request_runs_twice() {
    let d = dir("kill");
    let all = names(4);
    let counts = Counts::default();
    let mut nodes: Vec<Option<Mesh>> = start_all(&d, &all, &counts).into_iter().map(Some).collect();
    converged(&nodes.iter().flatten().collect::<Vec<_>>(), T);
    let victim = all[2].clone();
    let next_id = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done: Arc<Mutex<Vec<u64>>> = Arc::default();
    // The other nodes keep calling the victim, each call with a fresh request id.
    let callers: Vec<_> = [0usize, 1, 3]
        .iter()
        .map(|&i| {
            let node = Arc::new(nodes[i].take().unwrap());
            let (victim, next_id, completed, failed, stop) =
                (victim.clone(), next_id.clone(), completed.clone(), failed.clone(), stop.clone());
            let done = done.clone();
            let n = node.clone();
            let t = std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let id = next_id.fetch_add(1, Ordering::SeqCst);
                    match n.peer(&victim) {
                        Ok(p) => match p.call(&EXEC, &id, Duration::from_secs(2)) {
                            Ok(who) => {
                                assert_eq!(who, victim);
                                completed.fetch_add(1, Ordering::SeqCst);
                                done.lock().unwrap().push(id);
                            }
                            Err(e) => {
                                assert!(
                                    matches!(e.status(), Status::UNAVAILABLE | Status::DEADLINE_EXCEEDED),
                                    "unexpected failure: {e}"
                                );
                                failed.fetch_add(1, Ordering::SeqCst);
                            }
                        },
                        Err(e) => {
                            assert_eq!(e.member, victim);
                            assert!(!e.to_string().is_empty());
                            failed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            });
            (node, t)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let before = completed.load(Ordering::SeqCst);
    assert!(before > 0, "no call completed before the kill");
    // Kill: dropped at once (its connections close), then restarted under the same name.
    drop(nodes[2].take());
    std::thread::sleep(Duration::from_millis(200));
    let restarted = Mesh::start(options(&d, &victim, &all), handlers(&victim, counts.clone())).unwrap();
    let mut refs: Vec<&Mesh> = callers.iter().map(|(n, _)| &**n).collect();
    refs.push(&restarted);
    converged(&refs, T);
    let after = completed.load(Ordering::SeqCst);
    let until = Instant::now() + T;
    while completed.load(Ordering::SeqCst) < after + 50 {
        assert!(Instant::now() < until, "calls to the restarted member do not complete");
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    let nodes: Vec<Mesh> = callers
        .into_iter()
        .map(|(n, t)| {
            t.join().unwrap();
            Arc::try_unwrap(n).unwrap()
        })
        .collect();
    // Exactly once: no request id executed twice; every completed call executed.
    let counts = counts.lock().unwrap();
    assert!(counts.values().all(|&c| c == 1), "a request ran twice");
    let executed = counts.len() as u64;
    let completed = completed.load(Ordering::SeqCst);
    assert!(executed >= completed, "{executed} executions for {completed} completed calls");
    let done = done.lock().unwrap();
    assert_eq!(done.len() as u64, completed);
    assert!(done.iter().all(|id| counts.get(id) == Some(&1)), "a completed call that did not run once");
    assert!(failed.load(Ordering::SeqCst) > 0, "the kill was not noticed");
    let mut refs: Vec<&Mesh> = nodes.iter().collect();
    refs.push(&restarted);
    converged(&refs, T);
}

#[test]
fn members_are_added_and_removed_at_run_time_and_watched() {
    let d = dir("members");
    let counts = Counts::default();
    let (a, b, c) = ("alpha".to_string(), "beta".to_string(), "gamma".to_string());
    let na = Mesh::start(options(&d, &a, std::slice::from_ref(&b)), handlers(&a, counts.clone())).unwrap();
    let nb = Mesh::start(options(&d, &b, std::slice::from_ref(&a)), handlers(&b, counts.clone())).unwrap();
    let mut watch_c = na.watch(&c);
    converged(&[&na, &nb], T);
    // gamma joins: known to alpha and beta only once they add it.
    let nc = Mesh::start(options(&d, &c, &[a.clone(), b.clone()]), handlers(&c, counts.clone())).unwrap();
    na.add_member(&c, &addr(&d, &c)).unwrap();
    nb.add_member(&c, &addr(&d, &c)).unwrap();
    converged(&[&na, &nb, &nc], T);
    // The watch saw gamma arrive and connect.
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(MemberState::Connected { .. })) {
        seen.push(watch_c.changed_within(T).expect("no Connected state for gamma"));
    }
    assert_eq!(na.peer(&c).unwrap().call(&WHO, &(), T).unwrap().0, c);
    // gamma is killed: alpha sees it disconnected, then connected again once it is back.
    let mut watch = na.watch(&c);
    drop(nc);
    let s = watch.changed_within(T).expect("no state change after the kill");
    assert!(!matches!(s, MemberState::Connected { .. }), "{s:?}");
    assert!(na.peer(&c).is_err());
    let nc = Mesh::start(options(&d, &c, &[a.clone(), b.clone()]), handlers(&c, counts.clone())).unwrap();
    loop {
        match watch.changed_within(T).expect("gamma did not reconnect") {
            MemberState::Connected { .. } => break,
            MemberState::Removed => panic!("removed"),
            _ => {}
        }
    }
    converged(&[&na, &nb, &nc], T);
    // Removed by alpha: the connection closes, the watch says Removed, gamma is refused by
    // alpha from now on (its other pair stays).
    assert!(na.remove_member(&c));
    loop {
        if watch.changed_within(T).expect("no Removed state") == MemberState::Removed {
            break;
        }
    }
    let err = na.peer(&c).unwrap_err();
    assert!(err.to_string().contains("not a member"), "{err}");
    let until = Instant::now() + T;
    while nc
        .members()
        .iter()
        .find(|m| m.name == a)
        .is_some_and(|m| matches!(m.state, MemberState::Connected { .. }))
    {
        assert!(Instant::now() < until, "gamma still connected to alpha");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(!matches!(
        nc.members().iter().find(|m| m.name == a).unwrap().state,
        MemberState::Connected { .. }
    ));
    assert!(nb.peer(&c).is_ok());
    let results = na.call_all(&WHO, &(), T);
    assert_eq!(results.len(), 1);
    // call_all on gamma: alpha answers for itself and fails fast for the missing pair.
    let results = nc.call_all(&WHO, &(), T);
    let by: HashMap<_, _> = results.into_iter().collect();
    assert!(by[&b].is_ok());
    let e = by[&a].as_ref().unwrap_err();
    assert_eq!(e.status(), Status::UNAVAILABLE);
    assert!(e.message().is_some_and(|m| m.contains(&a)), "{e}");
}

#[test]
fn the_mesh_refuses_non_members_and_wrong_dialers_on_the_wire() {
    let d = dir("refuse");
    let counts = Counts::default();
    let (a, b) = ("alpha".to_string(), "beta".to_string());
    // beta dials alpha (SPEC.md §16.2): alpha refuses alpha→beta... and strangers.
    let na = Mesh::start(options(&d, &a, std::slice::from_ref(&b)), handlers(&a, counts.clone())).unwrap();
    let stranger = tandem_std::Client::connect(&addr(&d, &a), ClientConfig::new("mallory"), Handlers::new())
        .expect_err("a non-member must be refused");
    match stranger {
        Error::Refused { status, message } => {
            assert_eq!(status, Status::PERMISSION_DENIED);
            assert_eq!(message, tandem_core::endpoint::mesh::REASON_NOT_MEMBER);
        }
        e => panic!("{e}"),
    }
    assert!(tandem_core::endpoint::mesh::dials(b"beta", b"alpha"));
    // A client named beta is beta's dial: accepted. One named alpha at beta's … is alpha's own
    // name: refused. A member that should be dialed by alpha would be FAILED_PRECONDITION: make
    // alpha know "zeta", which alpha dials (checked), and let "zeta" dial alpha.
    let zeta = (0..1000)
        .map(|i| format!("z{i}"))
        .find(|z| tandem_core::endpoint::mesh::dials(b"alpha", z.as_bytes()))
        .unwrap();
    na.add_member(&zeta, &addr(&d, &zeta)).unwrap();
    let e = tandem_std::Client::connect(&addr(&d, &a), ClientConfig::new(zeta.as_str()), Handlers::new())
        .expect_err("the wrong dialer must be refused");
    match e {
        Error::Handshake(tandem_std::ConnectionError::PeerClosed { status }) => {
            assert_eq!(status, Status::FAILED_PRECONDITION)
        }
        e => panic!("{e}"),
    }
    let me = tandem_std::Client::connect(&addr(&d, &a), ClientConfig::new("alpha"), Handlers::new())
        .expect_err("its own name must be refused");
    assert!(matches!(me, Error::Refused { status: Status::PERMISSION_DENIED, .. }), "{me}");
    let st = na.stats();
    assert_eq!((st.refused_non_members, st.refused_wrong_dialer), (2, 1));

    // The node at a member's address announces another name: the dialer closes the connection
    // (PERMISSION_DENIED) and keeps redialing; the member is never connected.
    let omega = (0..1000)
        .map(|i| format!("o{i}"))
        .find(|o| tandem_core::endpoint::mesh::dials(b"alpha", o.as_bytes()))
        .unwrap();
    let impostor = (0..1000)
        .map(|i| format!("i{i}"))
        .find(|n| !tandem_core::endpoint::mesh::dials(n.as_bytes(), b"alpha"))
        .unwrap();
    let mut o = options(&d, &impostor, std::slice::from_ref(&a));
    o.listen = addr(&d, &omega);
    let ni = Mesh::start(o, handlers(&impostor, counts.clone())).unwrap();
    na.add_member(&omega, &addr(&d, &omega)).unwrap();
    let until = Instant::now() + T;
    while na.stats().wrong_names < 2 {
        assert!(Instant::now() < until, "alpha did not notice the wrong name: {:?}", na.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(na.peer(&omega).is_err());
    // The impostor itself accepts alpha (alpha is its member and the designated dialer), so
    // between alpha's redials it briefly holds a connection; each is closed by alpha once it
    // sees the wrong name, and the impostor then no longer holds one.
    while ni.peer(&a).is_ok() {
        assert!(Instant::now() < until, "the impostor kept a connection alpha closed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A mesh over tls:// with mutual authentication: every node presents a client certificate for
/// its name, the authenticator maps it to the identity, and the mesh judges that identity. A
/// node whose certificate proves another name than its HELLO claims is refused.
#[test]
fn a_mesh_over_tls_proves_names_with_client_certificates() {
    use tandem_std::{TlsClientConfig, TlsServerConfig};
    use tandem_testkit::pki::{by_certificate, Ca};
    const NAMES: [&str; 3] = ["tls-0", "tls-1", "tls-2"];
    let ca = Ca::new("mesh CA");
    let server_leaf = ca.server(&["localhost"]);
    let leaves: Vec<_> = NAMES.iter().map(|n| ca.client(n)).collect();
    let known: Vec<(Vec<u8>, &'static str)> =
        leaves.iter().zip(NAMES).map(|(l, n)| (l.der.clone(), n)).collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let counts = Counts::default();
    let client_tls = |leaf: &tandem_testkit::pki::Leaf| {
        TlsClientConfig::new()
            .trust_ca_pem(ca.pem.as_bytes())
            .unwrap()
            .without_system_roots()
            .client_cert_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
            .unwrap()
    };
    let nodes: Vec<Mesh> = NAMES
        .iter()
        .zip(&leaves)
        .map(|(name, leaf)| {
            let mut server = ServerConfig::new(*name);
            server.tls = Some(
                TlsServerConfig::from_pem(server_leaf.cert_pem.as_bytes(), server_leaf.key_pem.as_bytes())
                    .unwrap()
                    .require_client_certs(ca.pem.as_bytes())
                    .unwrap(),
            );
            server.authenticator = Some(by_certificate(known.clone(), seen.clone()));
            let mut client = ClientConfig::new(*name);
            client.tls = client_tls(leaf);
            let mut o = MeshOptions::new(*name, "tls://127.0.0.1:0", server, client);
            o.mesh = MeshConfig {
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                ..MeshConfig::default()
            };
            Mesh::start(o, handlers(name, counts.clone())).unwrap()
        })
        .collect();
    let port = |m: &Mesh| m.local_addr().to_string().rsplit(':').next().unwrap().to_owned();
    for a in &nodes {
        for b in &nodes {
            if a.name() != b.name() {
                a.add_member(b.name(), &format!("tls://localhost:{}", port(b))).unwrap();
            }
        }
    }
    let refs: Vec<&Mesh> = nodes.iter().collect();
    converged(&refs, T);
    for a in &nodes {
        for (member, r) in a.call_all(&WHO, &(), T) {
            let (callee, caller) = r.unwrap();
            assert_eq!((callee.as_str(), caller.as_str()), (member.as_str(), a.name()));
        }
    }
    // Every accepted mesh connection was authenticated by its certificate.
    assert!(seen.lock().unwrap().iter().all(|s| s.starts_with("certs=1")));
    assert!(!seen.lock().unwrap().is_empty());
    // tls-1's certificate with the HELLO name tls-0, at the third node: refused before its
    // HELLO (the name is not the proven identity), before the dialer rule is even asked.
    let mut liar = ClientConfig::new("tls-0");
    liar.tls = client_tls(&leaves[1]);
    let target = nodes.iter().find(|n| n.name() != "tls-0" && n.name() != "tls-1").unwrap();
    let e = tandem_std::Client::connect(&format!("tls://localhost:{}", port(target)), liar, Handlers::new())
        .expect_err("a certificate for another name must be refused");
    match e {
        Error::Refused { status, message } => {
            assert_eq!(status, Status::PERMISSION_DENIED);
            assert!(message.contains("not the identity"), "{message}");
        }
        e => panic!("{e}"),
    }
    converged(&refs, T);
}

/// Session resumption applies to mesh connections: the transport of a pair's connection is cut
/// (a proxy between them) while calls run both ways; the session resumes on a new transport, the
/// calls complete exactly once, and the mesh never saw the connection go (same connection at
/// both ends, nothing lost).
#[test]
fn a_cut_transport_resumes_as_the_same_mesh_connection() {
    let counts = Counts::default();
    let start = |name: &str| {
        let mut o =
            MeshOptions::new(name, "tcp://127.0.0.1:0", ServerConfig::new(name), ClientConfig::new(name));
        o.mesh = MeshConfig {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            ..MeshConfig::default()
        };
        Mesh::start(o, handlers(name, counts.clone())).unwrap()
    };
    let (x, y) = (start("x"), start("y"));
    let (dialer, acceptor) = if tandem_core::endpoint::mesh::dials(b"x", b"y") { (&x, &y) } else { (&y, &x) };
    let target = acceptor.local_addr().to_string();
    let proxy = tandem_testkit::proxy::TcpProxy::start(target.trim_start_matches("tcp://").parse().unwrap());
    dialer.add_member(acceptor.name(), &format!("tcp://{}", proxy.addr())).unwrap();
    acceptor.add_member(dialer.name(), &dialer.local_addr().to_string()).unwrap();
    converged(&[&x, &y], T);
    let ids = |m: &Mesh| m.members()[0].connection.unwrap();
    let (before_d, before_a) = (ids(dialer), ids(acceptor));
    let (pd, pa) = (dialer.peer(acceptor.name()).unwrap(), acceptor.peer(dialer.name()).unwrap());
    let (r1, r2) = std::thread::scope(|s| {
        let a = s.spawn(|| pd.call(&SLOW, &1, T).unwrap());
        let b = s.spawn(|| pa.call(&SLOW, &2, T).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        proxy.cut();
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(r1, 1);
    assert_eq!(r2, 2);
    assert_eq!(counts.lock().unwrap().get(&1), Some(&1));
    assert_eq!(counts.lock().unwrap().get(&2), Some(&1));
    assert_eq!((ids(dialer), ids(acceptor)), (before_d, before_a), "the mesh connection changed");
    assert_eq!((dialer.stats().lost, acceptor.stats().lost), (0, 0));
    assert_eq!((dialer.stats().established, acceptor.stats().established), (1, 1));
    assert!(pd.stats().resumptions >= 1, "{:?}", pd.stats());
}

/// The mesh over WebSocket (`ws://`, as MinIO's grid runs): three nodes dial each other by
/// their `ws://host:port/path` addresses, one connection per pair, calls both ways.
#[test]
fn a_mesh_over_websocket() {
    let counts = Counts::default();
    let names = ["ws-0", "ws-1", "ws-2"];
    let nodes: Vec<Mesh> = names
        .iter()
        .map(|n| {
            let mut o =
                MeshOptions::new(*n, "ws://127.0.0.1:0/mesh", ServerConfig::new(*n), ClientConfig::new(*n));
            o.mesh = MeshConfig {
                initial_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                ..MeshConfig::default()
            };
            Mesh::start(o, handlers(n, counts.clone())).unwrap()
        })
        .collect();
    for a in &nodes {
        for b in &nodes {
            if a.name() != b.name() {
                a.add_member(b.name(), &b.local_addr().to_string()).unwrap();
            }
        }
    }
    let refs: Vec<&Mesh> = nodes.iter().collect();
    converged(&refs, T);
    for a in &nodes {
        for (member, r) in a.call_all(&WHO, &(), T) {
            let (callee, caller) = r.unwrap();
            assert_eq!((callee.as_str(), caller.as_str()), (member.as_str(), a.name()));
        }
    }
}
