//! A cluster of N tandem nodes on loopback, one command:
//!
//! ```text
//! cargo run -p tandem-demo --example cluster -- 5
//! ```
//!
//! Every node is a mesh member (SPEC.md §16) listening on `tcp://127.0.0.1:<port>`, started at
//! the same time as the others with the whole membership; even nodes run on tandem-std
//! (blocking), odd ones on tandem-smol (async). The mesh keeps exactly one connection per pair,
//! dialed by the node the dialer rule names; then every node calls every other (`call_all`),
//! one node is stopped and started again, and the mesh heals. A summary is printed.

use std::time::{Duration, Instant};

use tandem_core::typed::Unary;
use tandem_std::{MemberInfo, MemberState};

/// Who answers, and who called, on that connection.
const WHO: Unary<(), Who> = Unary::new(20, 1);
const T: Duration = Duration::from_secs(5);
/// (callee, caller).
type Who = (String, String);

/// A node of either runtime.
enum Node {
    Std(tandem_std::Mesh),
    Smol(tandem_smol::Mesh),
}

impl Node {
    fn start(i: usize, members: &[(String, String)]) -> Node {
        let (name, addr) = members[i].clone();
        if i % 2 == 0 {
            let me = name.clone();
            let handlers = tandem_std::Handlers::new()
                .unary(&WHO, move |ctx, ()| Ok((me.clone(), ctx.peer_name().to_owned())));
            let mut o = tandem_std::MeshOptions::new(
                &name,
                addr,
                tandem_std::ServerConfig::new(&name),
                tandem_std::ClientConfig::new(&name),
            );
            o.members = members.to_vec();
            Node::Std(tandem_std::Mesh::start(o, handlers).expect("cannot start a node"))
        } else {
            let me = name.clone();
            let handlers = tandem_smol::Handlers::new().unary(&WHO, move |ctx, ()| {
                let r = (me.clone(), ctx.peer().name().to_owned());
                async move { Ok(r) }
            });
            let mut o = tandem_smol::MeshOptions::new(
                &name,
                addr,
                tandem_smol::ServerConfig::new(&name),
                tandem_smol::ClientConfig::new(&name),
            );
            o.members = members.to_vec();
            Node::Smol(tandem_smol::Mesh::start(o, handlers).expect("cannot start a node"))
        }
    }

    fn name(&self) -> &str {
        match self {
            Node::Std(m) => m.name(),
            Node::Smol(m) => m.name(),
        }
    }

    fn runtime(&self) -> &'static str {
        match self {
            Node::Std(_) => "tandem-std",
            Node::Smol(_) => "tandem-smol",
        }
    }

    fn members(&self) -> Vec<MemberInfo> {
        match self {
            Node::Std(m) => m.members(),
            Node::Smol(m) => m.members(),
        }
    }

    fn connections(&self) -> (usize, usize) {
        match self {
            Node::Std(m) => m.connections(),
            Node::Smol(m) => m.connections(),
        }
    }

    fn call_all(&self) -> Vec<(String, Result<Who, tandem_std::CallError>)> {
        match self {
            Node::Std(m) => m.call_all(&WHO, &(), T),
            Node::Smol(m) => smol::block_on(m.call_all(&WHO, &(), T)),
        }
    }

    fn shutdown(self) {
        match self {
            Node::Std(m) => m.shutdown(Duration::from_millis(200)),
            Node::Smol(m) => smol::block_on(m.shutdown(Duration::from_millis(200))),
        }
    }
}

/// Whether every node holds exactly one connection per member, dialed by the pair's dialer.
fn converged(nodes: &[Node]) -> bool {
    nodes.iter().all(|n| {
        let ms = n.members();
        let dialers = ms.iter().filter(|m| m.dialer).count();
        ms.iter().all(|m| matches!(m.state, MemberState::Connected { dialed, .. } if dialed == m.dialer))
            && n.connections() == (dialers, ms.len() - dialers)
    })
}

fn wait_converged(nodes: &[Node]) -> Duration {
    let t = Instant::now();
    while !converged(nodes) {
        assert!(t.elapsed() < Duration::from_secs(30), "the mesh did not converge");
        std::thread::sleep(Duration::from_millis(5));
    }
    t.elapsed()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("no free port").port()
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(5, |a| a.parse().expect("usage: cluster [N ≥ 2]"));
    assert!(n >= 2, "usage: cluster [N ≥ 2]");
    let members: Vec<(String, String)> =
        (0..n).map(|i| (format!("node-{i}"), format!("tcp://127.0.0.1:{}", free_port()))).collect();

    // All nodes at once, one thread each.
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let m = members.clone();
            std::thread::spawn(move || Node::start(i, &m))
        })
        .collect();
    let mut nodes: Vec<Node> =
        threads.into_iter().map(|t| t.join().expect("a node failed to start")).collect();
    let took = wait_converged(&nodes);
    println!(
        "{n} nodes started at once; mesh converged in {took:?}: {} connections for {} pairs",
        connections(&nodes),
        n * (n - 1) / 2
    );
    for node in &nodes {
        let ms = node.members();
        let dials: Vec<&str> = ms.iter().filter(|m| m.dialer).map(|m| m.name.as_str()).collect();
        println!("  {:<8} {:<12} dials {:?}", node.name(), node.runtime(), dials);
    }

    // Every node calls every other.
    let mut calls = 0;
    for node in &nodes {
        for (member, r) in node.call_all() {
            let (callee, caller) = r.unwrap_or_else(|e| panic!("{} → {member}: {e}", node.name()));
            assert_eq!((callee.as_str(), caller.as_str()), (member.as_str(), node.name()));
            calls += 1;
        }
    }
    println!("every pair called both ways: {calls} calls, all answered by the right node");

    // One node stops; the others see it go; it comes back and the mesh heals.
    let victim = n / 2;
    let stopped = nodes.remove(victim);
    let name = stopped.name().to_owned();
    stopped.shutdown();
    std::thread::sleep(Duration::from_millis(100));
    let waiting = nodes
        .iter()
        .filter(|o| {
            o.members().iter().any(|m| m.name == name && !matches!(m.state, MemberState::Connected { .. }))
        })
        .count();
    println!("{name} stopped: {waiting} of {} nodes see it disconnected", nodes.len());
    // Its listening socket closes on an I/O thread just after: wait until the port is free.
    let port = members[victim].1.trim_start_matches("tcp://");
    let t = Instant::now();
    while std::net::TcpListener::bind(port).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "{port} stays in use");
        std::thread::sleep(Duration::from_millis(5));
    }
    nodes.insert(victim, Node::start(victim, &members));
    let took = wait_converged(&nodes);
    println!("{name} restarted: mesh converged again in {took:?}, {} connections", connections(&nodes));
    for node in nodes {
        node.shutdown();
    }
    println!("ok");
}

/// Connections in the whole cluster (each counted at both ends, so halved).
fn connections(nodes: &[Node]) -> usize {
    nodes.iter().map(|n| n.connections().0 + n.connections().1).sum::<usize>() / 2
}
