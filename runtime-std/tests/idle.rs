//! Idle connections cost no thread and little memory (issue 12): the I/O threads wait on every
//! socket of the process, so 1,000 idle connections add no thread at all (both ends in this
//! process), and 10,000 idle connections cost the server at most 16 KiB of live heap each.
//! The resident-memory figure (RSS from `/proc/self/statm`) is an ignored test, since RSS also
//! counts what the allocator keeps:
//! `cargo test --release -p tandem-std --test idle -- --ignored --nocapture`.
//!
//! Both need more open files than the usual soft limit of 1,024: the tests raise it as far as
//! the hard limit allows, and skip (saying so) when it cannot be raised far enough.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use tandem_std::tandem_core::frame::{Frame, Hello, Params};
use tandem_std::{Client, ClientConfig, Handlers, MethodId, Server, ServerConfig};

#[global_allocator]
static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;

/// The tests count this process's threads and heap: they take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

const ECHO: MethodId = MethodId::new(1, 1);

/// Raises the open-files limit to at least `want` if the hard limit allows; false if not.
fn open_files(want: u64) -> bool {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return false };
    if soft >= want {
        return true;
    }
    // Root may raise the hard limit too.
    if setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)).is_ok() {
        return true;
    }
    if hard >= want && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() {
        return true;
    }
    eprintln!(
        "SKIPPED: this test needs {want} open files; the limit is {soft} (hard {hard}) and cannot be raised \
         (raise it with `ulimit -n {want}` to run it)"
    );
    false
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn server(dir: &tempfile::TempDir) -> Server {
    let mut config = ServerConfig::new("idle-server");
    // Idle for the whole test: no keepalive traffic to measure.
    config.connection.keepalive_interval = Duration::from_secs(600);
    config.connection.idle_timeout = Duration::from_secs(1200);
    let addr = format!("unix://{}", dir.path().join("idle.sock").display());
    let handlers = Handlers::new().raw_unary(ECHO, |_, b| Ok(b));
    Server::bind(&addr, config, handlers).unwrap()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_thousand_idle_connections_add_no_thread() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    if !open_files(2 * 1000 + 500) {
        return;
    }
    common::bounded(300, || {
        let dir = tempfile::tempdir().unwrap();
        let server = server(&dir);
        let addr = server.local_addr().to_string();
        // The first connection starts the process's I/O threads; its call starts a handler
        // thread of the server's pool.
        let first = Client::connect(&addr, ClientConfig::new("first"), Handlers::new()).unwrap();
        first.call_raw(ECHO, b"hi", Duration::from_secs(5)).unwrap();
        let before = threads();
        let clients: Vec<Client> = (0..1000)
            .map(|i| Client::connect(&addr, ClientConfig::new(format!("idle-{i}")), Handlers::new()).unwrap())
            .collect();
        wait_for("every connection", || server.stats().connections == 1001);
        std::thread::sleep(Duration::from_millis(500));
        let after = threads();
        println!(
            "threads: {before} with one connection, {after} with 1,001 (both ends in this process; \
             the I/O threads: {})",
            std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
        );
        assert!(after <= before + 4, "{after} threads with 1,001 connections, {before} with one");
        // They all still work.
        for c in clients.iter().step_by(100) {
            assert_eq!(c.call_raw(ECHO, b"still", Duration::from_secs(5)).unwrap(), b"still");
        }
        drop(clients);
        server.shutdown(Duration::from_secs(1));
    });
}

/// `n` raw connections that complete the handshake and then stay idle; each holds only its
/// socket here (4 bytes in the vector), so the live heap they add is the server's.
fn raw_idle(addr: &str, n: usize) -> Vec<UnixStream> {
    let path = addr.trim_start_matches("unix://");
    let mut buf = [0u8; 4096];
    (0..n)
        .map(|i| {
            // Unique across client processes: a repeated name would replace the first peer.
            let name = format!("raw-{}-{i}", std::process::id());
            let hello = Hello {
                min_version: 1,
                max_version: 1,
                flags: 0,
                name: name.as_bytes(),
                auth: b"",
                session: b"",
                params: Params::EMPTY,
            };
            let mut s = UnixStream::connect(path).unwrap();
            s.write_all(&tandem_testkit::wire::encode(&Frame::Hello(hello))).unwrap();
            // The server's HELLO (its first frame; one read is enough on a local socket).
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let got = s.read(&mut buf).unwrap();
            assert!(got > 0 && buf[0] == 0x01, "expected the server's HELLO");
            s
        })
        .collect()
}

/// Runs `n` idle raw connections to `addr` in a child process (this test binary, running
/// [`idle_client_process`]), so that this process holds only the server's ends.
struct Clients(std::process::Child, std::io::BufReader<std::process::ChildStdout>);

impl Clients {
    fn start(addr: &str, n: usize) -> Clients {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["idle_client_process", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("TANDEM_IDLE_CLIENTS", format!("{n} {addr}"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        // From here on `Drop` ends and reaps the child, should this function panic.
        let mut clients = Clients(child, out);
        let mut line = String::new();
        while {
            line.clear();
            clients.1.read_line(&mut line).unwrap() > 0
        } {
            let line = line.trim_end();
            // libtest prints the test's name on the same line first.
            if line.ends_with("READY") {
                return clients;
            }
            assert!(!line.starts_with("SKIPPED") && !line.contains("FAILED"), "client process: {line}");
        }
        panic!("the client process ended before its connections were up");
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        // Closing its stdin ends it.
        drop(self.0.stdin.take());
        // Read what it still prints (a closed pipe would fail its last writes).
        let _ = std::io::copy(&mut self.1, &mut std::io::sink());
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "a helper: the other tests run it in a child process"]
fn idle_client_process() {
    let Ok(spec) = std::env::var("TANDEM_IDLE_CLIENTS") else { return };
    let (n, addr) = spec.split_once(' ').unwrap();
    let n: usize = n.parse().unwrap();
    if !open_files(n as u64 + 500) {
        return;
    }
    let conns = raw_idle(addr, n);
    println!("READY");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(conns);
}

/// The server's live heap and RSS growth for `n` idle connections (clients in a child process).
fn server_cost(n: usize) -> Option<(i64, i64)> {
    if !open_files(n as u64 + 500) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir);
    let addr = server.local_addr().to_string();
    // One connection first: one-off setup (I/O threads, tables) is not counted.
    let warm = Clients::start(&addr, 1);
    wait_for("the first connection", || server.stats().connections == 1);
    let heap_base = tandem_testkit::heap::settled(1024, Duration::from_secs(3));
    let rss_base = rss();
    let clients = Clients::start(&addr, n);
    let end = Instant::now() + Duration::from_secs(120);
    while !(server.stats().connections == n + 1 && server.stats().handshaking == 0) {
        assert!(Instant::now() < end, "timed out waiting for every connection: {:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    // Idle connections give their buffers back after 250 ms without traffic.
    std::thread::sleep(Duration::from_millis(600));
    let heap = tandem_testkit::heap::settled(4096, Duration::from_secs(10)) - heap_base;
    let grown = rss() - rss_base;
    drop((warm, clients));
    wait_for("the connections to end", || server.stats().connections == 0);
    server.shutdown(Duration::from_secs(1));
    Some((heap, grown))
}

#[test]
fn ten_thousand_idle_connections_cost_the_server_at_most_16_kib_each() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    common::bounded(600, || {
        let n = std::env::var("IDLE_N").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
        let Some((heap, _)) = server_cost(n) else { return };
        let per = heap / n as i64;
        println!("live heap of {n} idle connections at the server: {} KiB, {per} B each", heap / 1024);
        assert!(per <= 16 * 1024, "{per} B of live heap per idle connection (bound 16 KiB)");
    });
}

fn rss() -> i64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: i64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
#[ignore = "resident memory depends on the allocator and the build: run it in release, on its own"]
fn ten_thousand_idle_connections_resident_memory() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let n = 10_000;
    let Some((heap, grown)) = server_cost(n) else { return };
    println!(
        "{n} idle connections at the server: RSS +{} KiB, {} B each; live heap +{} KiB, {} B each",
        grown / 1024,
        grown / n as i64,
        heap / 1024,
        heap / n as i64
    );
    assert!(grown / n as i64 <= 16 * 1024, "{} B of resident memory per idle connection", grown / n as i64);
}
