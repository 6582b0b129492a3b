//! The mesh across processes, in tandem-smol (the scenario of tandem-std's tests/mesh_procs.rs): four node processes (this test binary, run again as the ignored
//! test `mesh_node_process`) and the test itself as a fifth member, `ctl`, that reads every
//! node's connection table through a call. The nodes call each other all the time, each call
//! with a request id unique across processes; one node is killed with SIGKILL and restarted
//! while the others call it. Checked: no request id runs twice (the nodes log every execution
//! and every completed call to files that survive the kill), every completed call ran, no node
//! ever holds two connections with one member, and the restarted node rejoins (exactly one
//! connection per pair at both ends, calls to it complete again).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_smol::{ClientConfig, Handlers, MemberState, Mesh, MeshConfig, MeshOptions, ServerConfig, Unary};

/// Executes request `id`: logged by the callee as `exec <id>`; answers the callee's name.
const EXEC: Unary<u64, String> = Unary::new(9, 2);
/// The node's connection table: per member (name, connected, connection id, this node
/// dials it), then (dialed, accepted) mesh connections and the server's live connections.
type Table = (Vec<(String, bool, Option<u64>, bool)>, (usize, usize), usize);
const TABLE: Unary<(), Table> = Unary::new(9, 3);

const NODES: usize = 4;
const T: Duration = Duration::from_secs(10);

fn addr(dir: &Path, name: &str) -> String {
    format!("unix://{}", dir.join(format!("{name}.sock")).display())
}

fn all_names() -> Vec<String> {
    let mut v: Vec<String> = (0..NODES).map(|i| format!("node-{i}")).collect();
    v.push("ctl".into());
    v
}

fn options(dir: &Path, me: &str) -> MeshOptions {
    let mut o = MeshOptions::new(me, addr(dir, me), ServerConfig::new(me), ClientConfig::new(me));
    o.server.unlink_stale_socket = true;
    o.client.connect_timeout = Duration::from_secs(2);
    o.mesh = MeshConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..MeshConfig::default()
    };
    for m in all_names() {
        o = o.member(m.clone(), addr(dir, &m));
    }
    o
}

fn table(mesh: &Mesh) -> Table {
    let members = mesh
        .members()
        .into_iter()
        .map(|m| (m.name, matches!(m.state, MemberState::Connected { .. }), m.connection, m.dialer))
        .collect();
    (members, mesh.connections(), mesh.server_stats().connections)
}

/// A node process: serves EXEC (logging each execution) and TABLE, and calls EXEC on every
/// other node in a loop (logging each completed call), until killed, told to stop (a `stop`
/// file) or 60 s have passed.
#[test]
#[ignore = "a node process of mesh_processes_survive_kill_9, started by it"]
fn mesh_node_process() {
    let (Ok(me), Ok(dir)) = (std::env::var("TANDEM_MESH_NODE"), std::env::var("TANDEM_MESH_DIR")) else {
        panic!("run by mesh_processes_survive_kill_9 only");
    };
    let dir = PathBuf::from(dir);
    let open = |what: &str| {
        let path = dir.join(format!("{what}-{me}-{}.log", std::process::id()));
        Arc::new(Mutex::new(std::fs::File::create(path).unwrap()))
    };
    let (exec_log, done_log) = (open("exec"), open("done"));
    let mesh: Arc<Mutex<Option<Arc<Mesh>>>> = Arc::default();
    let m = mesh.clone();
    let handlers = Handlers::new()
        .unary(&EXEC, {
            let me = me.clone();
            move |_, id| {
                writeln!(exec_log.lock().unwrap(), "{id}").unwrap();
                let me = me.clone();
                async move { Ok(me) }
            }
        })
        .unary(&TABLE, move |_, ()| {
            let mesh = m.lock().unwrap().clone();
            let r = mesh.map(|m| table(&m)).ok_or(tandem_smol::Status::UNAVAILABLE);
            async move { r }
        });
    let node = Arc::new(Mesh::start(options(&dir, &me), handlers).unwrap());
    *mesh.lock().unwrap() = Some(node.clone());
    let others: Vec<String> = all_names().into_iter().filter(|n| *n != me && n != "ctl").collect();
    let pid = u64::from(std::process::id());
    let mut seq = 0u64;
    let until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < until && !dir.join("stop").exists() {
        for o in &others {
            seq += 1;
            let id = (pid << 32) | seq;
            if let Ok(p) = node.peer(o) {
                if smol::block_on(p.call(&EXEC, &id, Duration::from_secs(1))).is_ok() {
                    writeln!(done_log.lock().unwrap(), "{id}").unwrap();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The node processes, killed when the test ends however it ends.
struct Procs(HashMap<String, Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.0.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(dir: &Path, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mesh_node_process", "--ignored", "--nocapture", "--test-threads=1"])
        .env("TANDEM_MESH_NODE", name)
        .env("TANDEM_MESH_DIR", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads every node's table; asserts that none holds more than one connection per member;
/// returns whether all are converged (every member connected, one connection each, the
/// server's connections exactly the accepted ones).
fn check(ctl: &Mesh, nodes: &[String]) -> bool {
    let mut converged = true;
    for n in nodes {
        let Ok(p) = ctl.peer(n) else {
            converged = false;
            continue;
        };
        let Ok((members, (dialed, accepted), server)) =
            smol::block_on(p.call(&TABLE, &(), Duration::from_millis(300)))
        else {
            converged = false;
            continue;
        };
        let dialers = members.iter().filter(|m| m.3).count();
        let acceptors = members.len() - dialers;
        assert!(
            dialed <= dialers && accepted <= acceptors,
            "{n} holds two connections with a member: {members:?} ({dialed}, {accepted})"
        );
        converged &= members.iter().all(|m| m.1 && m.2.is_some())
            && dialed == dialers
            && accepted == acceptors
            && server == accepted;
    }
    converged
}

fn wait_converged(ctl: &Mesh, nodes: &[String]) {
    let until = Instant::now() + T;
    while !check(ctl, nodes)
        || !ctl.members().iter().all(|m| matches!(m.state, MemberState::Connected { .. }))
    {
        assert!(Instant::now() < until, "the mesh did not converge");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ids(dir: &Path, what: &str) -> Vec<u64> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with(&format!("{what}-")) {
            let text = std::fs::read_to_string(e.path()).unwrap();
            // A line cut by SIGKILL is ignored.
            v.extend(text.lines().filter_map(|l| l.parse::<u64>().ok()));
        }
    }
    v
}

#[test]
fn mesh_processes_survive_kill_9() {
    let dir = std::env::temp_dir().join(format!("tandem-smol-mesh-procs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let nodes: Vec<String> = all_names().into_iter().filter(|n| n != "ctl").collect();
    let mut procs = Procs(nodes.iter().map(|n| (n.clone(), spawn(&dir, n))).collect());
    let ctl = Mesh::start(options(&dir, "ctl"), Handlers::new()).unwrap();
    wait_converged(&ctl, &nodes);
    std::thread::sleep(Duration::from_millis(300));
    let victim = "node-2";
    let before = ids(&dir, "done").len();
    assert!(before > 0, "no call completed before the kill");
    procs.0.get_mut(victim).unwrap().kill().unwrap();
    procs.0.get_mut(victim).unwrap().wait().unwrap();
    // While it is down, nobody holds two connections with anyone.
    for _ in 0..5 {
        check(&ctl, &nodes);
        std::thread::sleep(Duration::from_millis(40));
    }
    procs.0.insert(victim.into(), spawn(&dir, victim));
    wait_converged(&ctl, &nodes);
    // Calls to the restarted node complete again.
    let victim_execs = |dir: &Path| -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("exec-{victim}-")))
            .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
            .sum()
    };
    let execs = victim_execs(&dir);
    let until = Instant::now() + T;
    while victim_execs(&dir) < execs + 30 {
        assert!(Instant::now() < until, "the restarted node is not called again");
        check(&ctl, &nodes);
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(dir.join("stop"), b"").unwrap();
    for c in procs.0.values_mut() {
        let _ = c.wait();
    }
    // Exactly once: no id ran twice, every completed call ran.
    let exec = ids(&dir, "exec");
    let done = ids(&dir, "done");
    let mut runs: HashMap<u64, u32> = HashMap::new();
    for id in &exec {
        *runs.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "request ids executed twice: {twice:?}");
    let missing: Vec<_> = done.iter().filter(|id| !runs.contains_key(id)).collect();
    assert!(missing.is_empty(), "completed calls that never ran: {missing:?}");
    assert!(done.len() > before, "{} calls completed, {before} before the kill", done.len());
    drop(ctl);
    let _ = std::fs::remove_dir_all(&dir);
}
