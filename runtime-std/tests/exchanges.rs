//! Every exchange type over every transport, in both directions, over real loopback sockets.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Duration;
use tandem_std::{CallError, Client, ClientConfig, MethodId, Peer, Server, ServerConfig, Status};

/// `r` with its error reduced to the status (refusals and panics also carry a message).
fn st<T>(r: Result<T, CallError>) -> Result<T, Status> {
    r.map_err(|e| e.status())
}

/// Runs every check from `p` toward a side whose handlers record into `remote`/`log`.
fn check_side(p: &Peer, remote: &Seen, log: &Receiver<String>, whoami: &str, uid: Option<u32>) {
    // Unary: success, handler statuses, runtime statuses.
    assert_eq!(p.call(&ADD, &(2, 3), T), Ok(5));
    assert_eq!(st(p.call(&ADD, &(u32::MAX, 1), T)), Err(Status::OUT_OF_RANGE));
    assert_eq!(st(p.call(&MISSING, &"x".to_string(), T)), Err(Status::NOT_FOUND));
    assert_eq!(st(p.call_raw(MethodId::new(99, 1), b"", T)), Err(Status::UNKNOWN_MODULE));
    assert_eq!(st(p.call_raw(MethodId::new(1, 99), b"", T)), Err(Status::UNKNOWN_METHOD));
    assert_eq!(st(p.call_raw(ADD.id(), &[0xff, 0xff, 0xff], T)), Err(Status::BAD_PAYLOAD));
    // Refusals say why (a status body: both ends negotiate `error_details` by default).
    let e = p.call_raw(ADD.id(), &[0xff, 0xff, 0xff], T).unwrap_err();
    assert_eq!(e.message(), Some("the request does not decode as (u32, u32), the request type of 1/1 here"));
    assert_eq!(p.call(&UNENCODABLE, &(), T).unwrap_err(), CallError::from(Status::ENCODE_FAILED));
    assert_eq!(st(p.notify_raw(ADD.id(), b"", T)), Err(Status::UNIMPLEMENTED));
    let raw = tandem_std::tandem_core::typed::encode_vec(&(40u32, 2u32)).unwrap();
    assert_eq!(
        p.call_raw(ADD.id(), &raw, T),
        Ok(tandem_std::tandem_core::typed::encode_vec(&42u32).unwrap())
    );
    // A panicking handler is answered INTERNAL; the connection and the worker survive.
    assert_eq!(st(p.call(&PANIC, &(), T)), Err(Status::INTERNAL));
    // The handler calls back over the same connection while the call is open.
    assert_eq!(p.call(&RELAY, &(20, 22), T), Ok(42));
    // A message larger than a frame (and than a SEQPACKET packet) is fragmented.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(p.call(&ECHO, &big, T).as_ref(), Ok(&big));

    // Notifications: reliable (acknowledged with the handler's status) and unreliable.
    assert_eq!(p.notify(&LOG, &"hello".to_string(), T), Ok(()));
    assert_eq!(log.recv_timeout(T).unwrap(), "hello");
    assert_eq!(st(p.notify(&LOG, &"reject".to_string(), T)), Err(Status::INVALID_ARGUMENT));
    p.signal(&LOG, &"fire and forget".to_string()).unwrap();
    assert_eq!(log.recv_timeout(T).unwrap(), "fire and forget");

    // Bidirectional stream, in lock step.
    let (mut tx, mut rx) = p.open_stream(&SUM, &10, T).unwrap();
    for i in 1..=5u64 {
        tx.send(&i).unwrap();
        assert_eq!(rx.recv(), Ok(Some(10 + i * (i + 1) / 2)));
    }
    drop(tx);
    assert_eq!(rx.recv(), Ok(None));

    // Both directions far beyond the credit window (64 items by default), concurrently.
    let (mut tx, rx) = p.open_stream(&SUM, &0, T).unwrap();
    let up = std::thread::spawn(move || {
        for i in 0..1000u64 {
            tx.send(&i).unwrap();
        }
    });
    let sums: Vec<u64> = rx.map(Result::unwrap).collect();
    up.join().unwrap();
    assert_eq!(sums.len(), 1000);
    assert_eq!(sums.last(), Some(&(999 * 1000 / 2)));

    // Responder-only stream: the opener finishes its direction at once.
    let (tx, rx) = p.open_stream(&COUNT, &500, T).unwrap();
    drop(tx);
    assert_eq!(rx.map(Result::unwrap).collect::<Vec<_>>(), (0..500).collect::<Vec<_>>());

    // Explicit cancel reaches the remote handler.
    remote.cancelled.store(false, Ordering::SeqCst);
    let pending = p.start_call(&WAIT_CANCEL, &(), T).unwrap();
    assert_eq!(log.recv_timeout(T).unwrap(), "started");
    pending.cancel();
    eventually("remote handler sees the cancel", || remote.cancelled.load(Ordering::SeqCst));

    // So does dropping the pending call.
    remote.cancelled.store(false, Ordering::SeqCst);
    let pending = p.start_call(&WAIT_CANCEL, &(), T).unwrap();
    assert_eq!(log.recv_timeout(T).unwrap(), "started");
    drop(pending);
    eventually("remote handler sees the dropped call", || remote.cancelled.load(Ordering::SeqCst));

    // A timeout fails the call and reaches the remote handler too.
    remote.cancelled.store(false, Ordering::SeqCst);
    assert_eq!(st(p.call(&WAIT_CANCEL, &(), Duration::from_millis(50))), Err(Status::DEADLINE_EXCEEDED));
    assert_eq!(log.recv_timeout(T).unwrap(), "started");
    eventually("remote handler sees the deadline", || remote.cancelled.load(Ordering::SeqCst));

    // Cancelling a stream reaches its handler.
    let (_tx, rx) = p.open_stream(&STREAM_WAIT, &(), T).unwrap();
    assert_eq!(log.recv_timeout(T).unwrap(), "stream started");
    rx.cancel();
    eventually("stream handler sees the cancel", || remote.stream_cancelled.load(Ordering::SeqCst));

    // Dropping both handles of an unfinished stream cancels it.
    remote.stream_cancelled.store(false, Ordering::SeqCst);
    let handles = p.open_stream(&STREAM_WAIT, &(), T).unwrap();
    assert_eq!(log.recv_timeout(T).unwrap(), "stream started");
    drop(handles);
    eventually("stream handler sees the drop", || remote.stream_cancelled.load(Ordering::SeqCst));

    // A stream's deadline ends it on both sides (1 s: long enough for the handler to start on
    // a loaded machine, whose log line this waits for).
    remote.stream_cancelled.store(false, Ordering::SeqCst);
    let (_tx, mut rx) = p.open_stream(&STREAM_WAIT, &(), Duration::from_millis(1000)).unwrap();
    assert_eq!(log.recv_timeout(T).unwrap(), "stream started");
    assert_eq!(rx.recv(), Err(CallError::from(Status::DEADLINE_EXCEEDED)));
    eventually("stream handler sees the deadline", || remote.stream_cancelled.load(Ordering::SeqCst));

    // Who is calling: name from HELLO, credentials on Unix sockets.
    let (who, creds) = p.call(&WHOAMI, &(), T).unwrap();
    assert_eq!(who, whoami);
    match uid {
        Some(uid) => assert_eq!(creds, Some((uid, std::process::id() as i32))),
        None => assert_eq!(creds, None),
    }

    // Everything ended: the connection tracks nothing any more.
    eventually("no exchange left open", || open_exchanges(p) == 0);
    let stats = p.stats();
    assert!(stats.calls_opened >= 10 && stats.streams_opened >= 5, "{stats:?}");
    assert!(stats.bytes_sent > 300_000 && stats.bytes_received > 300_000, "{stats:?}");
    assert_eq!((stats.calls_open_outbound, stats.protocol_errors), (0, 0), "{stats:?}");
}

fn every_exchange(addr: &str, uid: Option<u32>) {
    every_exchange_with(addr, uid, ServerConfig::new("srv"), ClientConfig::new("cli"), &mut |s| {
        s.local_addr().to_string()
    });
}

/// [`every_exchange`] with these configurations, the client dialing what `dial` says for the
/// server (a certificate's host name, a proxy in front of it).
fn every_exchange_with(
    addr: &str,
    uid: Option<u32>,
    server_config: ServerConfig,
    client_config: ClientConfig,
    dial: &mut dyn FnMut(&Server) -> String,
) {
    let (server_seen, server_log) = Seen::new();
    let server = Server::bind(addr, server_config, handlers("srv", &server_seen)).unwrap();
    let target = dial(&server);
    let (client_seen, client_log) = Seen::new();
    let client = Client::connect(&target, client_config, handlers("cli", &client_seen)).unwrap();
    assert_eq!(client.name(), "srv");

    // Client → server.
    check_side(&client, &server_seen, &server_log, "srv sees cli", uid);
    // Server → client, over the same connection.
    let back = server.wait_for_peer("cli", T).expect("the server tracks the client by name");
    check_side(&back, &client_seen, &client_log, "cli sees srv", uid);

    client.shutdown(T);
    server.shutdown(T);
}

fn my_uid(dir: &tempfile::TempDir) -> Option<u32> {
    Some(std::fs::metadata(dir.path()).unwrap().uid())
}

#[test]
fn tcp_every_exchange_both_directions() {
    bounded(20, || every_exchange("tcp://127.0.0.1:0", None));
}

#[test]
fn unix_every_exchange_both_directions() {
    bounded(20, || {
        let dir = tempfile::tempdir().unwrap();
        every_exchange(&format!("unix://{}/s.sock", dir.path().display()), my_uid(&dir));
    });
}

#[test]
fn seqpacket_every_exchange_both_directions() {
    bounded(20, || {
        let dir = tempfile::tempdir().unwrap();
        every_exchange(&format!("unix+seqpacket://{}/p.sock", dir.path().display()), my_uid(&dir));
    });
}

#[test]
fn websocket_every_exchange_both_directions() {
    bounded(20, || every_exchange("ws://127.0.0.1:0/rpc", None));
}

#[test]
fn websocket_small_messages_every_exchange_both_directions() {
    // 4 KiB messages: large calls and streams cross in many messages each way.
    let server = ServerConfig { max_datagram: 4096, ..ServerConfig::new("srv") };
    bounded(20, move || {
        every_exchange_with("ws://127.0.0.1:0/", None, server, ClientConfig::new("cli"), &mut |s| {
            s.local_addr().to_string()
        })
    });
}

#[test]
fn websocket_over_tls_every_exchange_both_directions() {
    use tandem_testkit::pki::Ca;
    let ca = Ca::new("test CA");
    let leaf = ca.server(&["localhost"]);
    let mut server = ServerConfig::new("srv");
    server.tls = Some(
        tandem_std::TlsServerConfig::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap(),
    );
    let mut client = ClientConfig::new("cli");
    client.tls =
        tandem_std::TlsClientConfig::new().trust_ca_pem(ca.pem.as_bytes()).unwrap().without_system_roots();
    bounded(30, move || {
        every_exchange_with("wss://127.0.0.1:0/tandem", None, server, client, &mut |s| {
            s.local_addr().to_string().replace("127.0.0.1", "localhost")
        })
    });
}

#[test]
fn websocket_through_nginx_every_exchange_both_directions() {
    // nginx as the WebSocket reverse proxy (tandem_testkit::nginx; fails if nginx is missing).
    bounded(30, || {
        let mut proxy = None;
        every_exchange_with(
            "ws://127.0.0.1:0/rpc",
            None,
            ServerConfig::new("srv"),
            ClientConfig::new("cli"),
            &mut |s| {
                let tandem_std::tandem_core::addr::Address::WebSocket { host_port, .. } = s.local_addr()
                else {
                    panic!("a ws:// server")
                };
                let backend = host_port.parse().unwrap();
                let nginx = tandem_testkit::nginx::Nginx::start(backend, "/rpc");
                let at = format!("ws://{}/rpc", nginx.addr());
                proxy = Some(nginx);
                at
            },
        );
    });
}

/// Many threads share one connection; a small transmit queue on both sides forces the
/// back-pressure paths (callers and handlers waiting for room).
fn concurrent_callers(addr: &str) {
    let (seen, _) = Seen::new();
    let small_tx = |c: &mut tandem_std::Config| c.max_tx_buffer = 64 * 1024;
    let mut scfg = ServerConfig::new("srv");
    small_tx(&mut scfg.connection);
    let server = Server::bind(addr, scfg, handlers("srv", &seen)).unwrap();
    let mut ccfg = ClientConfig::new("cli");
    small_tx(&mut ccfg.connection);
    let client = std::sync::Arc::new(
        Client::connect(&server.local_addr().to_string(), ccfg, tandem_std::Handlers::new()).unwrap(),
    );
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let c = std::sync::Arc::clone(&client);
            std::thread::spawn(move || {
                for i in 0..200u32 {
                    assert_eq!(c.call(&ADD, &(t, i), T), Ok(t + i));
                }
                // 8 threads × 48 KB in flight do not fit a 64 KiB queue.
                let big = vec![t as u8; 48 * 1024];
                for _ in 0..4 {
                    assert_eq!(c.call(&ECHO, &big, T).map(|v| v == big), Ok(true));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = client.stats();
    assert_eq!(stats.calls_opened, 8 * 204);
    assert_eq!(stats.calls_open_outbound, 0);
}

#[test]
fn tcp_concurrent_callers_and_backpressure() {
    bounded(20, || concurrent_callers("tcp://127.0.0.1:0"));
}

#[test]
fn seqpacket_concurrent_callers_and_backpressure() {
    bounded(20, || {
        let dir = tempfile::tempdir().unwrap();
        concurrent_callers(&format!("unix+seqpacket://{}/p.sock", dir.path().display()));
    });
}

#[test]
fn inline_unary_handlers_and_buffer_reusing_calls() {
    const ECHO: MethodId = MethodId::new(9, 1);
    const SINK: MethodId = MethodId::new(9, 2);
    bounded(60, || {
        let handlers = tandem_std::Handlers::new()
            .raw_unary_inline(ECHO, |ctx, req, out| {
                assert_eq!(ctx.peer_name(), "client");
                assert_eq!(ctx.method(), ECHO);
                match req {
                    b"panic" => panic!("inline handler bug (expected by the test)"),
                    b"fail" => return Err(Status::FAILED),
                    _ => out.extend_from_slice(req),
                }
                Ok(())
            })
            .raw_streaming(SINK, |_, _, mut rx, mut tx| {
                // Echoes the total length of what it received, read with a reused buffer.
                let (mut item, mut total) = (Vec::new(), 0u64);
                while rx.recv_into(&mut item).map_err(|e| e.status())? {
                    total += item.len() as u64;
                }
                tx.send(&total.to_le_bytes()).map_err(|e| e.status())
            });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), handlers).unwrap();
        let client = Client::connect(
            &server.local_addr().to_string(),
            ClientConfig::new("client"),
            tandem_std::Handlers::new(),
        )
        .unwrap();
        let mut out = b"stale".to_vec();
        for i in 0..100u32 {
            let req = i.to_le_bytes();
            client.call_raw_into(ECHO, &req, T, &mut out).unwrap();
            assert_eq!(out, req);
        }
        assert_eq!(st(client.call_raw_into(ECHO, b"fail", T, &mut out)), Err(Status::FAILED));
        assert!(out.is_empty());
        assert_eq!(st(client.call_raw_into(ECHO, b"panic", T, &mut out)), Err(Status::INTERNAL));
        // A notification to an inline unary method is the wrong exchange type.
        assert_eq!(st(client.notify_raw(ECHO, b"x", T)), Err(Status::UNIMPLEMENTED));
        let pending: Vec<_> = (0..32u8).map(|i| client.start_call_raw(ECHO, &[i; 40], T).unwrap()).collect();
        for (i, p) in pending.into_iter().enumerate() {
            p.wait_into(&mut out).unwrap();
            assert_eq!(out, [i as u8; 40]);
        }
        let (mut tx, mut rx) = client.open_stream_raw(SINK, b"", T).unwrap();
        for n in [1usize, 1000, 70_000, 3] {
            tx.send(&vec![5u8; n]).unwrap();
        }
        tx.finish().unwrap();
        let mut got = Vec::new();
        assert!(rx.recv_into(&mut got).unwrap());
        assert_eq!(got, 71_004u64.to_le_bytes());
        assert!(!rx.recv_into(&mut got).unwrap());
        client.shutdown(T);
        server.shutdown(T);
    });
}

/// A reliable notification is cancelled like a call (SPEC.md §7.3): its deadline passing fails
/// the notify with DEADLINE_EXCEEDED and reaches the remote handler, in both directions. (A
/// blocking `notify` cannot be dropped midway; tandem-smol's test also drops the future.)
#[test]
fn a_reliable_notification_is_cancelled_at_the_remote_handler() {
    use tandem_std::tandem_core::typed::Notification;
    use tandem_std::Handlers;
    const WAIT: Notification<u64> = Notification::new(9, 1);
    let router = |tx: std::sync::mpsc::Sender<Option<Status>>| {
        let tx = std::sync::Mutex::new(tx);
        Handlers::new().notification(&WAIT, move |ctx, _: u64| {
            // Runs until cancelled, then reports why.
            ctx.wait_cancelled(T);
            let _ = tx.lock().unwrap().send(ctx.cancel_reason());
            Err(Status::CANCELLED)
        })
    };
    bounded(60, move || {
        let (tx, rx) = std::sync::mpsc::channel::<Option<Status>>();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router(tx.clone())).unwrap();
        let client = Client::connect(
            &server.local_addr().to_string(),
            ClientConfig::new("client"),
            router(tx.clone()),
        )
        .unwrap();
        let back = server.peer("client").unwrap();
        let front = client.peer().clone();
        for (caller, callee) in [(&front, &back), (&back, &front)] {
            let r = caller.notify(&WAIT, &0, Duration::from_millis(100));
            assert_eq!(r.unwrap_err().status(), Status::DEADLINE_EXCEEDED);
            // DEADLINE_EXCEEDED when the handler's own timer fires first or the caller's CANCEL
            // comes within the margin before it (SPEC.md §7.5; the core's tests check that rule
            // with a fake clock). On a loaded machine the request's receipt can be delayed by
            // more than the margin, which moves the handler's deadline later, and the CANCEL then
            // reads as CANCELLED; either way the handler is cancelled.
            let reason = rx.recv_timeout(T).unwrap();
            assert!(matches!(reason, Some(Status::DEADLINE_EXCEEDED | Status::CANCELLED)), "{reason:?}");
            let end = std::time::Instant::now() + T;
            while callee.stats().calls_open_inbound != 0 {
                assert!(std::time::Instant::now() < end, "the notification's slot was not released");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        drop((front, back));
        server.shutdown(T);
    });
}
