//! The C API proven from C: `examples/echo_server.c`, compiled here with the system C compiler
//! (`$CC`, else `cc`) against `libtandem_c.a` and `include/tandem.h`, serves part of the test
//! service (SPEC.md Appendix A) over a Unix SEQPACKET socket to a tandem-std client.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tandem_conformance::service::{method, MODULE};
use tandem_std::{Client, ClientConfig, Handlers, MethodId, Status};

const T: Duration = Duration::from_secs(10);

fn m(method: u32) -> MethodId {
    MethodId::new(MODULE, method)
}

/// Compiles the example once per test run; returns the executable's path.
fn echo_server() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| common::compile("echo_server"))
}

/// A running echo_server on its own socket; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("echo.sock");
        let mut child =
            Command::new(echo_server()).arg(&path).stdin(Stdio::null()).spawn().expect("start echo_server");
        let start = Instant::now();
        while !path.exists() {
            if let Some(st) = child.try_wait().expect("try_wait") {
                panic!("echo_server exited at start-up: {st}");
            }
            assert!(start.elapsed() < T, "echo_server did not listen within {T:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
        Server { child, addr: format!("unix+seqpacket://{}", path.display()), _dir: dir }
    }

    fn connect(&self, name: &str, handlers: Handlers) -> Client {
        Client::connect(&self.addr, ClientConfig::new(name), handlers).expect("connect to echo_server")
    }

    /// Panics if the server died (a crash in the C program or the library).
    fn assert_alive(&mut self) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            panic!("echo_server exited: {st}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic bytes of length `n` (a different pattern per `seed`).
fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn echo_many_sizes() {
    let mut server = Server::start();
    let client = server.connect("sizes", Handlers::new());
    assert_eq!(client.name(), "tandem-c-echo");
    // Around the frame size (4096: a body of 4096 minus the call's header is the last
    // single-frame request), multi-frame messages, and the announced maximum.
    let edges = [
        0, 1, 2, 100, 1000, 4000, 4085, 4086, 4087, 4096, 4097, 8192, 12_000, 16_384, 30_000, 65_535, 65_536,
    ];
    for (i, &n) in edges.iter().enumerate() {
        let req = pattern(n, i as u32);
        let resp =
            client.call_raw(m(method::ECHO), &req, T).unwrap_or_else(|e| panic!("ECHO of {n} bytes: {e}"));
        assert_eq!(resp, req, "ECHO of {n} bytes");
    }
    let calls = if cfg!(debug_assertions) { 300 } else { 2000 };
    let mut x: u32 = 7;
    for i in 0..calls {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        // Mostly small, sometimes up to the limit.
        let n = if i % 10 == 0 { (x >> 8) as usize % 65_537 } else { (x >> 8) as usize % 600 };
        let req = pattern(n, i);
        assert_eq!(client.call_raw(m(method::ECHO), &req, T).expect("ECHO"), req, "call {i}: {n} bytes");
    }
    // Above the server's announced max_message_size: refused before it is sent.
    let err = client.call_raw(m(method::ECHO), &vec![0; 65_537], T).expect_err("65537 bytes");
    assert_eq!(err.status(), Status::TOO_LARGE, "{err}");
    assert_eq!(client.call_raw(m(method::ECHO), b"still here", T).expect("ECHO after"), b"still here");
    server.assert_alive();
}

#[test]
fn concurrent_callers() {
    let mut server = Server::start();
    let client = server.connect("concurrent", Handlers::new());
    let per_thread = if cfg!(debug_assertions) { 60 } else { 300 };
    std::thread::scope(|s| {
        for t in 0..8u32 {
            let client = &client;
            s.spawn(move || {
                for i in 0..per_thread {
                    let req = pattern((t as usize * 997 + i as usize * 131) % 9000, t * 1000 + i);
                    assert_eq!(client.call_raw(m(method::ECHO), &req, T).expect("ECHO"), req);
                }
            });
        }
    });
    server.assert_alive();
}

#[test]
fn error_statuses() {
    let mut server = Server::start();
    let client = server.connect("statuses", Handlers::new());
    let status = |method: MethodId, req: &[u8]| match client.call_raw(method, req, T) {
        Ok(resp) => (Status::OK, resp),
        Err(e) => (e.status(), Vec::new()),
    };
    // STATUS answers the status it is given.
    assert_eq!(status(m(method::STATUS), &0u32.to_be_bytes()), (Status::OK, Vec::new()));
    for st in [Status::INVALID_ARGUMENT, Status::NOT_FOUND, Status::FAILED, Status(1000)] {
        assert_eq!(status(m(method::STATUS), &st.0.to_be_bytes()).0, st);
    }
    assert_eq!(status(m(method::STATUS), b"abc").0, Status::BAD_PAYLOAD);
    assert_eq!(status(m(99), b"").0, Status::UNKNOWN_METHOD);
    assert_eq!(status(MethodId::new(7, 1), b"").0, Status::UNKNOWN_MODULE);
    // A notification to a unary method, and a call to a notification.
    let e = client.notify_raw(m(method::ECHO), b"x", T).expect_err("NOTIFY to ECHO");
    assert_eq!(e.status(), Status::UNIMPLEMENTED);
    assert_eq!(status(m(method::RECORD), b"x").0, Status::UNIMPLEMENTED);
    server.assert_alive();
}

#[test]
fn notifications_and_signals_are_recorded() {
    let mut server = Server::start();
    let client = server.connect("recorder", Handlers::new());
    client.notify_raw(m(method::RECORD), b"first", T).expect("NOTIFY RECORD");
    client.notify_raw(m(method::RECORD), b"", T).expect("empty NOTIFY RECORD");
    client.signal_raw(m(method::RECORD), b"signalled").expect("SIGNAL RECORD");
    client.notify_raw(m(method::RECORD), &[7; 1024], T).expect("1024-byte NOTIFY");
    let e = client.notify_raw(m(method::RECORD), &[7; 1025], T).expect_err("too large to record");
    assert_eq!(e.status(), Status::TOO_LARGE);
    let got = client.call_raw(m(method::RECORDED), b"", T).expect("RECORDED");
    let mut want = Vec::new();
    for r in [&b"first"[..], b"", b"signalled", &[7; 1024]] {
        want.extend_from_slice(&(r.len() as u32).to_be_bytes());
        want.extend_from_slice(r);
    }
    assert_eq!(got, want);
    // Records are kept per peer name: a second connection with another name sees none, one with
    // the same name sees them.
    drop(client);
    let other = server.connect("someone-else", Handlers::new());
    assert_eq!(other.call_raw(m(method::RECORDED), b"", T).expect("RECORDED"), b"");
    drop(other);
    let again = server.connect("recorder", Handlers::new());
    assert_eq!(again.call_raw(m(method::RECORDED), b"", T).expect("RECORDED"), want);
    server.assert_alive();
}

/// CALLBACK's request: kind, module, method, timeout, payload.
fn callback(kind: u8, method: MethodId, timeout_ms: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&method.module.to_be_bytes());
    v.extend_from_slice(&method.method.to_be_bytes());
    v.extend_from_slice(&timeout_ms.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// CALLBACK's answer: the inner status and payload.
fn inner(resp: &[u8]) -> (Status, &[u8]) {
    assert!(resp.len() >= 4, "CALLBACK answer too short: {resp:?}");
    (Status(u32::from_be_bytes([resp[0], resp[1], resp[2], resp[3]])), &resp[4..])
}

#[test]
fn calls_from_c_back_to_the_client() {
    let mut server = Server::start();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let tx2 = tx.clone();
    let handlers = Handlers::new()
        .raw_unary(m(method::ECHO), |_, b| Ok(b))
        .raw_unary(m(method::STATUS), |_, _| Err(Status::PERMISSION_DENIED))
        .raw_unary(m(method::SLEEP), |_, _| {
            std::thread::sleep(Duration::from_millis(2000));
            Ok(Vec::new())
        })
        .raw_notification(m(method::RECORD), move |_, b| {
            let _ = tx.send(b);
            Ok(())
        })
        .raw_notification(m(method::SINK), move |_, b| {
            let _ = tx2.send(b);
            Err(Status::ABORTED)
        });
    let client = server.connect("callback", handlers);
    let cb = |kind, method, payload: &[u8]| {
        client.call_raw(m(method::CALLBACK), &callback(kind, method, 5000, payload), T).expect("CALLBACK")
    };
    // A call from C: answered by the client's ECHO, with sizes up to several frames.
    for n in [0, 5, 4000, 20_000] {
        let p = pattern(n, n as u32);
        let resp = cb(0, m(method::ECHO), &p);
        assert_eq!(inner(&resp), (Status::OK, &p[..]), "{n} bytes");
    }
    assert_eq!(inner(&cb(0, m(method::STATUS), b"")).0, Status::PERMISSION_DENIED);
    assert_eq!(inner(&cb(0, m(77), b"")).0, Status::UNKNOWN_METHOD);
    // A notification from C, acknowledged by the client's handler (and its status passed on).
    assert_eq!(inner(&cb(1, m(method::RECORD), b"note")), (Status::OK, &b""[..]));
    assert_eq!(rx.recv_timeout(T).expect("notification"), b"note");
    assert_eq!(inner(&cb(1, m(method::SINK), b"refused")).0, Status::ABORTED);
    assert_eq!(rx.recv_timeout(T).expect("notification"), b"refused");
    // A signal from C.
    assert_eq!(inner(&cb(2, m(method::RECORD), b"sig")).0, Status::OK);
    assert_eq!(rx.recv_timeout(T).expect("signal"), b"sig");
    // Streams are not served by the C program: refused locally.
    assert_eq!(inner(&cb(3, m(method::ECHO), b"")).0, Status::UNIMPLEMENTED);
    // A deadline set from C passes (the C program's timer loop: poll_timeout, handle_timeout).
    let started = Instant::now();
    let resp =
        client.call_raw(m(method::CALLBACK), &callback(0, m(method::SLEEP), 200, b""), T).expect("CALLBACK");
    assert_eq!(inner(&resp).0, Status::DEADLINE_EXCEEDED);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the 200 ms deadline took {:?}",
        started.elapsed()
    );
    server.assert_alive();
}

#[test]
fn serves_one_connection_after_another() {
    let mut server = Server::start();
    for i in 0..5u32 {
        let client = server.connect(&format!("round-{i}"), Handlers::new());
        let req = pattern(100 + i as usize, i);
        assert_eq!(client.call_raw(m(method::ECHO), &req, T).expect("ECHO"), req);
        client.shutdown(Duration::from_secs(2));
    }
    server.assert_alive();
}
