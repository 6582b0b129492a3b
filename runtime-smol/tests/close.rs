//! Every close says why: whenever the core ends a connection for a reason the peer caused, the
//! peer receives the CLOSE frame with that status before the transport ends (SPEC.md §7.8,
//! §12.1). Each case is a raw peer (`tandem_testkit::wire::RawPeer`) speaking frames over a real
//! TCP or Unix socket to a tandem-smol server.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_smol::tandem_core::frame::{Decoded, Frame, Hello, Params};
use tandem_smol::{Config, EndpointConfig, Handlers, MethodId, Server, ServerConfig, Status};
use tandem_testkit::wire::{call, encode, stream_open, Got, RawPeer};

const T: Duration = Duration::from_secs(10);
/// Answers with its request.
const ECHO: u32 = 1;
/// Waits until cancelled.
const WAIT: u32 = 2;
/// Stream: holds both halves, reads nothing, until reset.
const HOLD: u32 = 3;
/// Unary: starts a graceful shutdown of the connection (GOAWAY), then answers.
const GOAWAY: u32 = 4;
const MODULE: u32 = 9;

fn m(method: u32) -> MethodId {
    MethodId::new(MODULE, method)
}

fn router() -> Handlers {
    Handlers::new()
        .raw_unary(m(ECHO), |_ctx, b| async move { Ok(b) })
        .raw_unary(m(WAIT), |ctx, _| async move {
            ctx.cancelled().await;
            Err(Status::CANCELLED)
        })
        .raw_streaming(m(HOLD), |ctx, _init, rx, tx| async move {
            let _keep = (rx, tx);
            ctx.cancelled().await;
            Err(Status::CANCELLED)
        })
        .raw_unary(m(GOAWAY), |ctx, _| {
            ctx.peer().go_away();
            async { Ok(Vec::new()) }
        })
}

/// Small limits and fast timers, so that every limit is reached at once.
fn config() -> Config {
    Config {
        max_frame_size: 16384,
        max_message_size: 4096,
        max_concurrent_calls: 4,
        max_concurrent_streams: 2,
        stream_credit_msgs: 4,
        handshake_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        keepalive_interval: Duration::ZERO,
        drain_timeout: Duration::from_millis(300),
        ..Config::default()
    }
}

struct Srv {
    server: Option<Server>,
    addr: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            smol::block_on(s.shutdown(Duration::from_millis(100)));
        }
    }
}

fn serve(transport: &str, config: Config, resumption: bool) -> Srv {
    let (url, dir) = match transport {
        "tcp" => ("tcp://127.0.0.1:0".to_string(), None),
        _ => {
            let dir = tempfile::tempdir().unwrap();
            (format!("unix://{}", dir.path().join("s.sock").display()), Some(dir))
        }
    };
    let endpoint = EndpointConfig { resume: resumption, ..EndpointConfig::default() };
    let config = ServerConfig { connection: config, endpoint, ..ServerConfig::new("server") };
    let server = Server::bind(&url, config, router()).unwrap();
    let addr = server.local_addr().to_string();
    Srv { server: Some(server), addr, _dir: dir }
}

fn peer(srv: &Srv) -> RawPeer {
    let mut p = RawPeer::connect(&srv.addr).unwrap();
    p.hello("attacker", &[]).unwrap();
    p.expect_hello(T).unwrap();
    p
}

/// Reads until CLOSE and checks its status, then that the transport ends.
fn expect_close(p: &mut RawPeer, status: Status, case: &str) {
    match p.expect_close(T) {
        Ok((st, msg)) => assert_eq!(st, status, "{case}: CLOSE({st}) \"{msg}\", expected {status}"),
        Err(got) => panic!("{case}: no CLOSE({status}) before {got:?}"),
    }
    match p.recv(T) {
        Got::Eof | Got::Failed(_) => {}
        other => panic!("{case}: after CLOSE the transport should end, got {other:?}"),
    }
}

/// Runs `case` over TCP and over a Unix socket, with resumption on (the default).
fn both(name: &str, expected: Status, attack: impl Fn(&mut RawPeer)) {
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        let mut p = peer(&srv);
        attack(&mut p);
        expect_close(&mut p, expected, &format!("{name} ({transport})"));
    }
}

#[test]
fn first_frame_not_hello() {
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        let mut p = RawPeer::connect(&srv.addr).unwrap();
        p.send(&Frame::Ping(*b"12345678")).unwrap();
        expect_close(&mut p, Status::PROTOCOL_ERROR, &format!("PING first ({transport})"));
    }
}

#[test]
fn undecodable_frame() {
    // Frame type 0x07 is unassigned in the control range (SPEC.md §3.3).
    both("unknown frame type", Status::FRAME_ENCODING_ERROR, |p| p.send_bytes(&[0x07, 0x01, 0x00]).unwrap());
}

#[test]
fn frame_above_max_frame_size() {
    // A CALL whose Length (4-byte varint, 1 MiB) is above the announced 16 KiB.
    both("oversized frame", Status::FRAME_TOO_LARGE, |p| {
        p.send_bytes(&[0x10, 0x80, 0x10, 0x00, 0x00]).unwrap()
    });
}

#[test]
fn id_of_the_wrong_parity() {
    both("odd id from the dialer", Status::PROTOCOL_ERROR, |p| {
        p.send_bytes(&call(1, MODULE, ECHO, b"x")).unwrap()
    });
}

#[test]
fn more_concurrent_calls_than_announced() {
    both("fifth call of four", Status::LIMIT_EXCEEDED, |p| {
        let mut b = Vec::new();
        for i in 0..5 {
            b.extend(call(i * 2, MODULE, WAIT, b""));
        }
        p.send_bytes(&b).unwrap();
    });
}

#[test]
fn message_above_max_message_size() {
    both("5000-byte call", Status::LIMIT_EXCEEDED, |p| {
        p.send_bytes(&call(0, MODULE, ECHO, &[0; 5000])).unwrap()
    });
}

#[test]
fn stream_items_beyond_the_window() {
    both("fifth item on a window of four", Status::FLOW_CONTROL_ERROR, |p| {
        let mut b = stream_open(0, MODULE, HOLD, false, b"");
        for _ in 0..5 {
            b.extend(encode(&Frame::StreamData { flags: 0, id: 0, total_len: None, payload: b"i" }));
        }
        p.send_bytes(&b).unwrap();
    });
}

#[test]
fn handshake_not_completed_in_time() {
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        // Nothing at all.
        let mut p = RawPeer::connect(&srv.addr).unwrap();
        expect_close(&mut p, Status::HANDSHAKE_TIMEOUT, &format!("silent dialer ({transport})"));
        // Half a HELLO.
        let mut p = RawPeer::connect(&srv.addr).unwrap();
        let frame = encode(&Frame::Hello(Hello {
            min_version: 1,
            max_version: 1,
            flags: 0,
            name: b"half",
            auth: b"",
            session: b"",
            params: Params::EMPTY,
        }));
        p.send_bytes(&frame[..frame.len() / 2]).unwrap();
        expect_close(&mut p, Status::HANDSHAKE_TIMEOUT, &format!("half a HELLO ({transport})"));
    }
}

#[test]
fn idle_timeout_without_resumption() {
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), false);
        let mut p = peer(&srv);
        let start = Instant::now();
        expect_close(&mut p, Status::IDLE_TIMEOUT, &format!("silent peer ({transport})"));
        assert!(start.elapsed() >= Duration::from_millis(500), "closed before the idle timeout");
    }
}

#[test]
fn idle_timeout_with_resumption_suspends_and_says_nothing() {
    // SPEC.md §13.2: a peer whose idle timer fires believes the transport dead and suspends the
    // session; it MAY send CLOSE(IDLE_TIMEOUT), the reference implementation sends nothing.
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        let mut p = peer(&srv);
        match p.recv(T) {
            Got::Eof | Got::Failed(_) => {}
            other => panic!("idle peer with a resumable session ({transport}): {other:?}"),
        }
        assert_eq!(srv.server.as_ref().unwrap().stats().suspended_sessions, 1);
    }
}

#[test]
fn drain_not_completed_in_time() {
    both("stream kept open after GOAWAY", Status::DEADLINE_EXCEEDED, |p| {
        // A stream the peer never ends, then a call that makes the server go away: the drain
        // cannot complete.
        let mut b = stream_open(0, MODULE, HOLD, false, b"");
        b.extend(call(2, MODULE, GOAWAY, b""));
        p.send_bytes(&b).unwrap();
    });
}

#[test]
fn oversized_hello_fields() {
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        let mut p = RawPeer::connect(&srv.addr).unwrap();
        // A name above the 255 bytes a HELLO field may hold (SPEC.md §5.2): a decode error.
        p.hello_with(&[b'n'; 300], b"", b"", 0, &[]).unwrap();
        expect_close(&mut p, Status::FRAME_ENCODING_ERROR, &format!("300-byte name ({transport})"));
    }
}

/// Writes `batches` from another thread without reading, until the server stops reading (no
/// progress for 300 ms: it closed the connection and waits for us to read its CLOSE) or the
/// batches run out; returns the writing thread's stop flag.
fn flood_until_server_stops_reading(
    p: &RawPeer,
    batches: impl Iterator<Item = Vec<u8>> + Send + 'static,
) -> Arc<AtomicBool> {
    let mut w = p.try_clone().unwrap();
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (wr, st) = (written.clone(), stop.clone());
    std::thread::spawn(move || {
        for b in batches {
            if st.load(Ordering::Relaxed) || w.send_bytes(&b).is_err() {
                return;
            }
            wr.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    });
    let end = Instant::now() + T;
    let (mut last, mut since) = (0, Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = written.load(Ordering::Relaxed);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_millis(300) {
            return stop;
        }
        assert!(Instant::now() < end, "the server kept reading the flood for {T:?} ({now} bytes)");
    }
}

#[test]
fn ping_flood_while_not_reading() {
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        let mut p = peer(&srv);
        let batch: Vec<u8> = (0..1000).flat_map(|_| encode(&Frame::Ping(*b"flooding"))).collect();
        let stop = flood_until_server_stops_reading(&p, std::iter::repeat(batch));
        // The server has given up on us; stop flooding and read what it says (within its linger
        // time).
        stop.store(true, Ordering::Relaxed);
        expect_close(&mut p, Status::ENHANCE_YOUR_CALM, &format!("PING flood ({transport})"));
    }
}

#[test]
fn slow_reader_owed_a_control_frame() {
    // The peer does not read: the answers to its calls fill the socket and the server's transmit
    // queue; then the server owes it control frames (refusals of new calls after GOAWAY) that no
    // longer fit the room kept for them. It closes with ENHANCE_YOUR_CALM (SPEC.md §12.1); the
    // CLOSE must reach the peer intact when it reads again, although the queue it gave up held
    // a frame already half written to the socket.
    for transport in ["tcp", "unix"] {
        let cfg = Config {
            max_concurrent_calls: 4096,
            max_tx_buffer: 8192,
            drain_timeout: Duration::from_secs(30),
            ..config()
        };
        let srv = serve(transport, cfg, true);
        let mut p = peer(&srv);
        let mut id = 0u64;
        let mut next = move || {
            id += 2;
            id
        };
        let mut batches = Vec::new();
        // 500 answers of 4,000 bytes: more than the socket buffers hold while the peer does not
        // read.
        for _ in 0..10 {
            batches.push((0..50).flat_map(|_| call(next(), MODULE, ECHO, &[7; 4000])).collect::<Vec<u8>>());
        }
        // A stream held open keeps the connection draining after GOAWAY, which the next call
        // asks for.
        let mut b = stream_open(next(), MODULE, HOLD, false, b"");
        b.extend(call(next(), MODULE, GOAWAY, b""));
        batches.push(b);
        // Then (once the GOAWAY handler has run) 3,000 calls that the server must refuse
        // (UNAVAILABLE), each answer a control frame: far more than the room kept for them.
        let pause = std::iter::once_with(|| {
            std::thread::sleep(Duration::from_millis(200));
            Vec::new()
        });
        let refused = pause
            .chain((0..30).map(move |_| (0..100).flat_map(|_| call(next(), MODULE, ECHO, b"")).collect()));
        let stop = flood_until_server_stops_reading(&p, batches.into_iter().chain(refused));
        stop.store(true, Ordering::Relaxed);
        expect_close(&mut p, Status::ENHANCE_YOUR_CALM, &format!("slow reader ({transport})"));
    }
}

#[test]
fn a_newer_connection_with_the_same_name_replaces_the_old_one() {
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        let mut old = peer(&srv);
        // The same name again (a client that restarted, or one that pretends to be it).
        let _new = peer(&srv);
        expect_close(&mut old, Status::UNAVAILABLE, &format!("replaced connection ({transport})"));
    }
}

#[test]
fn graceful_shutdown_whose_grace_runs_out() {
    for transport in ["tcp", "unix"] {
        let cfg = Config { drain_timeout: Duration::from_secs(30), ..config() };
        let mut srv = serve(transport, cfg, true);
        let mut p = peer(&srv);
        // A stream the peer never ends keeps the connection from draining.
        p.send_bytes(&stream_open(0, MODULE, HOLD, false, b"")).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let server = srv.server.take().unwrap();
        let t = std::thread::spawn(move || smol::block_on(server.shutdown(Duration::from_millis(200))));
        let mut goaway = false;
        let end = Instant::now() + T;
        let (status, _) = loop {
            match p.recv(end.saturating_duration_since(Instant::now())) {
                Got::Frame(f) => match f.frame() {
                    Frame::GoAway { .. } => goaway = true,
                    Frame::Close { status, message } => break (status, message.to_vec()),
                    _ => {}
                },
                other => panic!("shutdown ({transport}): no CLOSE before {other:?}"),
            }
        };
        assert!(goaway, "shutdown ({transport}): GOAWAY first");
        assert_eq!(status, Status::UNAVAILABLE, "shutdown ({transport})");
        t.join().unwrap();
    }
}

/// A raw SEQPACKET peer: every frame in its own datagram.
struct Packets(socket2::Socket);

impl Packets {
    fn connect(url: &str) -> Packets {
        let path = url.strip_prefix("unix+seqpacket://").unwrap();
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::SEQPACKET, None).unwrap();
        s.connect(&socket2::SockAddr::unix(path).unwrap()).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        Packets(s)
    }
    fn send(&self, bytes: &[u8]) {
        self.0.send(bytes).unwrap();
    }
    /// The frames of the next datagram (empty at the end of the connection).
    fn recv(&self) -> Vec<Vec<u8>> {
        use std::io::Read;
        let mut buf = vec![0u8; 70 * 1024];
        // One read, one datagram.
        let n = (&self.0).read(&mut buf).unwrap();
        let bytes = &buf[..n];
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            match Frame::decode(rest, 1 << 20) {
                Ok(Decoded::Frame(_, k)) => {
                    out.push(rest[..k].to_vec());
                    rest = &rest[k..];
                }
                other => panic!("undecodable datagram: {other:?}"),
            }
        }
        out
    }
    /// Reads datagrams until CLOSE; returns its status.
    fn expect_close(&self) -> Status {
        loop {
            let frames = self.recv();
            assert!(!frames.is_empty(), "the connection ended without CLOSE");
            for f in frames {
                if let Ok(Decoded::Frame(Frame::Close { status, .. }, _)) = Frame::decode(&f, 1 << 20) {
                    return status;
                }
            }
        }
    }
}

#[test]
fn seqpacket_violations_and_timeouts_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("unix+seqpacket://{}", dir.path().join("p.sock").display());
    let server =
        Server::bind(&url, ServerConfig { connection: config(), ..ServerConfig::new("server") }, router())
            .unwrap();
    // A frame of an unassigned type after the handshake.
    let p = Packets::connect(&url);
    let mut hello = Vec::new();
    let mut pbuf = [0u8; 16];
    let params = Params::encode_into(&[], &mut pbuf).unwrap();
    hello.extend(encode(&Frame::Hello(Hello {
        min_version: 1,
        max_version: 1,
        flags: 0,
        name: b"packets",
        auth: b"",
        session: b"",
        params,
    })));
    p.send(&hello);
    assert!(!p.recv().is_empty(), "server HELLO");
    p.send(&[0x07, 0x01, 0x00]);
    assert_eq!(p.expect_close(), Status::FRAME_ENCODING_ERROR);
    // A dialer that never says HELLO.
    let p = Packets::connect(&url);
    assert_eq!(p.expect_close(), Status::HANDSHAKE_TIMEOUT);
    smol::block_on(server.shutdown(Duration::from_millis(100)));
}

#[test]
fn slow_reader_that_keeps_calling() {
    // The peer does not read the answers: they stay queued at the server, their calls open, and
    // the peer, still calling, opens more calls than the four announced (SPEC.md §10.5). The
    // CLOSE(LIMIT_EXCEEDED) must reach it once it reads again.
    for transport in ["tcp", "unix"] {
        let srv = serve(transport, config(), true);
        let mut p = peer(&srv);
        let mut id = 0u64;
        let calls = std::iter::from_fn(move || {
            let b: Vec<u8> = (0..16)
                .flat_map(|_| {
                    id += 2;
                    call(id, MODULE, ECHO, &[5; 4000])
                })
                .collect();
            Some(b)
        });
        let stop = flood_until_server_stops_reading(&p, calls);
        stop.store(true, Ordering::Relaxed);
        expect_close(&mut p, Status::LIMIT_EXCEEDED, &format!("slow reader calling on ({transport})"));
    }
}
