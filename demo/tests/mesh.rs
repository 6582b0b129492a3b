//! One mesh of tandem-std and tandem-smol nodes over TCP (SPEC.md §16): the nodes of both
//! runtimes follow the same rules, so they form one mesh with exactly one connection per pair,
//! call each other both ways, and heal after a node restarts.

use std::time::{Duration, Instant};

use tandem_core::typed::Unary;
use tandem_std::MemberState;

const WHO: Unary<(), String> = Unary::new(21, 1);
const T: Duration = Duration::from_secs(5);

enum Node {
    Std(tandem_std::Mesh),
    Smol(tandem_smol::Mesh),
}

/// Starts node `i`; `Err` with the error's debug text (e.g. `AddrInUse`: a reserved port was
/// taken by another socket in between).
fn start(i: usize, members: &[(String, String)]) -> Result<Node, String> {
    let (name, addr) = members[i].clone();
    if i % 2 == 0 {
        let me = name.clone();
        let h = tandem_std::Handlers::new().unary(&WHO, move |_, ()| Ok(me.clone()));
        let mut o = tandem_std::MeshOptions::new(
            &name,
            addr,
            tandem_std::ServerConfig::new(&name),
            tandem_std::ClientConfig::new(&name),
        );
        o.members = members.to_vec();
        tandem_std::Mesh::start(o, h).map(Node::Std).map_err(|e| format!("{e:?}"))
    } else {
        let me = name.clone();
        let h = tandem_smol::Handlers::new().unary(&WHO, move |_, ()| {
            let me = me.clone();
            async move { Ok(me) }
        });
        let mut o = tandem_smol::MeshOptions::new(
            &name,
            addr,
            tandem_smol::ServerConfig::new(&name),
            tandem_smol::ClientConfig::new(&name),
        );
        o.members = members.to_vec();
        tandem_smol::Mesh::start(o, h).map(Node::Smol).map_err(|e| format!("{e:?}"))
    }
}

fn view(n: &Node) -> (Vec<tandem_std::MemberInfo>, (usize, usize), usize) {
    match n {
        Node::Std(m) => (m.members(), m.connections(), m.server_stats().connections),
        Node::Smol(m) => (m.members(), m.connections(), m.server_stats().connections),
    }
}

fn converged(nodes: &[Node]) {
    let until = Instant::now() + T;
    loop {
        let ok = nodes.iter().all(|n| {
            let (ms, (dialed, accepted), server) = view(n);
            let dialers = ms.iter().filter(|m| m.dialer).count();
            ms.iter().all(|m| matches!(m.state, MemberState::Connected { dialed, .. } if dialed == m.dialer))
                && (dialed, accepted) == (dialers, ms.len() - dialers)
                && server == accepted
        });
        if ok {
            return;
        }
        assert!(Instant::now() < until, "the mesh did not converge");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn call_all(n: &Node) -> Vec<(String, String)> {
    let r = match n {
        Node::Std(m) => m.call_all(&WHO, &(), T),
        Node::Smol(m) => smol::block_on(m.call_all(&WHO, &(), T)),
    };
    r.into_iter().map(|(member, r)| (member, r.unwrap())).collect()
}

/// Four members on ports reserved by binding port 0 and releasing it, started together. A port
/// can be taken by another socket between its release and the node's bind (the ephemeral range
/// is shared with every outgoing connection of the machine's parallel tests): then all nodes are
/// stopped and the mesh starts again on new ports.
fn start_mesh() -> (Vec<(String, String)>, Vec<Node>) {
    for _ in 0..5 {
        let members: Vec<(String, String)> = (0..4)
            .map(|i| {
                let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
                (format!("mixed-{i}"), format!("tcp://127.0.0.1:{port}"))
            })
            .collect();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let m = members.clone();
                std::thread::spawn(move || start(i, &m))
            })
            .collect();
        let started: Vec<Result<Node, String>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        if let Some(e) = started.iter().find_map(|r| r.as_ref().err()) {
            assert!(e.contains("AddrInUse"), "a node did not start: {e}");
            continue;
        }
        return (members, started.into_iter().map(Result::unwrap).collect());
    }
    panic!("five attempts found a reserved port taken");
}

#[test]
fn std_and_smol_nodes_form_one_mesh_over_tcp() {
    let (members, mut nodes) = start_mesh();
    converged(&nodes);
    for n in &nodes {
        for (member, answer) in call_all(n) {
            assert_eq!(member, answer);
        }
    }
    // A smol node stops at once and comes back: both runtimes' nodes take it in again.
    drop(nodes.remove(1));
    // The listening socket closes on its I/O thread right after the drop: wait for the port.
    let until = Instant::now() + T;
    let restarted = loop {
        match start(1, &members) {
            Ok(node) => break node,
            Err(e) if e.contains("AddrInUse") && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("the stopped node did not start again: {e}"),
        }
    };
    nodes.insert(1, restarted);
    converged(&nodes);
    for n in &nodes {
        assert_eq!(call_all(n).len(), 3);
    }
}
