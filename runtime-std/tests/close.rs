//! Every close says why: for each reason a peer can make the server close its connection, a
//! raw peer over TCP and over a Unix socket receives the CLOSE frame with the status SPEC.md
//! names (§7.8, §12.1), then end of file — never a bare end of file or a reset, even when it
//! read nothing for a while before (slow reader, ping flood), as long as it starts reading
//! within [`CLOSE_LINGER`].

mod common;

use common::bounded;
use std::time::{Duration, Instant};
use tandem_std::tandem_core::frame::{flags, Frame, Hello, Params, Request};
use tandem_std::{Config, Handlers, MethodId, Peer, Server, ServerConfig, Status};
use tandem_testkit::wire::{self, Got, RawPeer};

/// Answers with as many bytes as the request's first four bytes (little endian) say.
const BIG: MethodId = MethodId::new(1, 1);
/// Waits until cancelled (at most 10 s).
const HOLD: MethodId = MethodId::new(1, 2);
/// A stream that waits until cancelled (at most 10 s).
const HOLD_STREAM: MethodId = MethodId::new(1, 3);

/// Long enough for any CLOSE in these tests (timers are at most a few hundred ms).
const WAIT: Duration = Duration::from_secs(5);
/// How long a closed connection may take to hand its final frames to the socket (SPEC.md
/// §7.8.1; `tandem_runtime::engine`).
const CLOSE_LINGER: Duration = Duration::from_secs(1);

fn handlers() -> Handlers {
    Handlers::new()
        .raw_unary(BIG, |_, req| {
            let n = req.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or_default()));
            Ok(vec![7u8; n as usize])
        })
        .raw_unary(HOLD, |ctx, _| {
            ctx.wait_cancelled(Duration::from_secs(10));
            Ok(Vec::new())
        })
        .raw_streaming(HOLD_STREAM, |ctx, _, _rx, _tx| {
            ctx.wait_cancelled(Duration::from_secs(10));
            Ok(())
        })
}

fn config() -> Config {
    Config {
        max_concurrent_calls: 4,
        max_concurrent_streams: 4,
        stream_credit_msgs: 2,
        stream_credit_bytes: 4096,
        conn_credit_bytes: 8192,
        handshake_timeout: Duration::from_millis(300),
        drain_timeout: Duration::from_millis(300),
        max_tx_buffer: 16 * 1024,
        ..Config::default()
    }
}

/// Runs `case` against a fresh server over TCP and over a Unix socket.
fn each_transport(name: &str, cfg: impl Fn() -> ServerConfig, case: impl Fn(&Server, &str)) {
    let dir = tempfile::tempdir().unwrap();
    let unix = format!("unix://{}", dir.path().join("s.sock").display());
    for addr in ["tcp://127.0.0.1:0", unix.as_str()] {
        let server = Server::bind(addr, cfg(), handlers()).unwrap();
        let addr = server.local_addr().to_string();
        eprintln!("{name} over {addr}");
        case(&server, &addr);
        server.shutdown(Duration::from_millis(100));
    }
}

fn server_config() -> ServerConfig {
    ServerConfig { connection: config(), ..ServerConfig::new("close-test") }
}

/// A raw peer that completed the handshake.
fn connected(addr: &str, name: &str) -> RawPeer {
    let mut p = RawPeer::connect(addr).unwrap();
    p.hello(name, &[]).unwrap();
    p.expect_hello(WAIT).unwrap();
    p
}

/// The CLOSE must arrive with `want`, and then the end of the transport.
fn expect_close(p: &mut RawPeer, want: Status) -> String {
    expect_close_then(p, want, false)
}

/// The CLOSE must arrive with `want`, then the end of the transport — or, with `flooded` (the
/// peer sent more than the server drains after its CLOSE: `CLOSE_DRAIN`, 1 MiB), a reset.
fn expect_close_then(p: &mut RawPeer, want: Status, flooded: bool) -> String {
    let (status, message) = match p.expect_close(WAIT) {
        Ok(c) => c,
        Err(got) => panic!("expected CLOSE({want}), got {got:?} (the peer was not told why)"),
    };
    assert_eq!(status, want, "CLOSE status (message {message:?})");
    match p.recv(WAIT) {
        Got::Eof => {}
        Got::Failed(std::io::ErrorKind::ConnectionReset) if flooded => {}
        other => panic!("after CLOSE({want}) expected the end of the transport, got {other:?}"),
    }
    message
}

/// The server's connection to the peer named `name`, once it exists.
fn server_side(server: &Server, name: &str) -> Peer {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(p) = server.peer(name) {
            return p;
        }
        assert!(Instant::now() < end, "the server never saw {name}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether the server has closed its connection to `name` (holding no handle on it: a
/// handle would keep the connection's descriptor open).
fn closed_at_server(server: &Server, name: &str) -> bool {
    server.peer(name).as_ref().map_or(true, Peer::is_closed)
}

fn request(id: u64, m: MethodId, payload: &[u8]) -> Request<'_> {
    Request { flags: 0, id, module: m.module, method: m.method, budget_us: 0, total_len: None, payload }
}

#[test]
fn first_frame_not_hello_is_a_protocol_error() {
    bounded(60, || {
        each_transport("PING first", server_config, |_, addr| {
            let mut p = RawPeer::connect(addr).unwrap();
            p.send(&Frame::Ping(*b"12345678")).unwrap();
            expect_close(&mut p, Status::PROTOCOL_ERROR);
        });
    });
}

#[test]
fn undecodable_hello_is_a_frame_encoding_error() {
    bounded(60, || {
        each_transport("bad magic", server_config, |_, addr| {
            let mut p = RawPeer::connect(addr).unwrap();
            // HELLO type, 8-byte body that does not start with the magic.
            p.send_bytes(&[0x01, 8, b'N', b'O', b'P', b'E', 0, 1, 1, 0]).unwrap();
            expect_close(&mut p, Status::FRAME_ENCODING_ERROR);
        });
    });
}

#[test]
fn oversized_frame_before_the_handshake_is_frame_too_large() {
    bounded(60, || {
        each_transport("5000-byte HELLO", server_config, |_, addr| {
            let mut p = RawPeer::connect(addr).unwrap();
            // A HELLO claiming a 5000-byte body: above the 4096 limit before the handshake.
            let mut frame = vec![0x01];
            let mut len = [0u8; 8];
            let n = tandem_std::tandem_core::varint::encode(5000, &mut len);
            frame.extend_from_slice(&len[..n]);
            frame.extend_from_slice(&[0u8; 16]);
            p.send_bytes(&frame).unwrap();
            expect_close(&mut p, Status::FRAME_TOO_LARGE);
        });
    });
}

#[test]
fn no_common_version_is_incompatible_version() {
    bounded(60, || {
        each_transport("version 2..3", server_config, |_, addr| {
            let mut p = RawPeer::connect(addr).unwrap();
            let hello = Hello {
                min_version: 2,
                max_version: 3,
                flags: 0,
                name: b"future",
                auth: b"",
                session: b"",
                params: Params::EMPTY,
            };
            p.send(&Frame::Hello(hello)).unwrap();
            expect_close(&mut p, Status::INCOMPATIBLE_VERSION);
        });
    });
}

#[test]
fn reused_exchange_id_is_a_protocol_error() {
    bounded(60, || {
        each_transport("id reuse", server_config, |_, addr| {
            let mut p = connected(addr, "reuser");
            p.send(&Frame::Call(request(0, HOLD, b""))).unwrap();
            p.send(&Frame::Call(request(0, HOLD, b""))).unwrap();
            expect_close(&mut p, Status::PROTOCOL_ERROR);
        });
    });
}

#[test]
fn more_calls_than_announced_is_limit_exceeded() {
    bounded(60, || {
        each_transport("5 calls, 4 announced", server_config, |_, addr| {
            let mut p = connected(addr, "greedy");
            for i in 0..5 {
                p.send(&Frame::Call(request(2 * i, HOLD, b""))).unwrap();
            }
            expect_close(&mut p, Status::LIMIT_EXCEEDED);
        });
    });
}

#[test]
fn message_above_the_announced_size_is_limit_exceeded() {
    bounded(60, || {
        each_transport("oversized message", server_config, |_, addr| {
            let mut p = connected(addr, "bloated");
            let total = u64::from(config().max_message_size) + 1;
            let r = Request { flags: flags::MORE, total_len: Some(total), ..request(0, BIG, &[0; 100]) };
            p.send(&Frame::Call(r)).unwrap();
            expect_close(&mut p, Status::LIMIT_EXCEEDED);
        });
    });
}

#[test]
fn stream_items_beyond_credit_are_a_flow_control_error() {
    bounded(60, || {
        each_transport("3 items, credit 2", server_config, |_, addr| {
            let mut p = connected(addr, "pushy");
            p.send(&Frame::StreamOpen(request(0, HOLD_STREAM, b""))).unwrap();
            for _ in 0..3 {
                p.send(&Frame::StreamData { flags: 0, id: 0, total_len: None, payload: b"x" }).unwrap();
            }
            expect_close(&mut p, Status::FLOW_CONTROL_ERROR);
        });
    });
}

#[test]
fn ping_flood_while_not_reading_is_enhance_your_calm() {
    bounded(120, || {
        each_transport("ping flood", server_config, |server, addr| {
            let mut p = connected(addr, "flooder");
            server_side(server, "flooder");
            // PINGs in batches, reading nothing, until the server has closed: its PONGs fill
            // the socket buffers, then more than `max_queued_pongs` wait in its queue.
            let batch: Vec<u8> =
                (0..2000u64).flat_map(|i| wire::encode(&Frame::Ping(i.to_le_bytes()))).collect();
            let end = Instant::now() + Duration::from_secs(30);
            let mut closed_at: Option<Instant> = None;
            loop {
                assert!(Instant::now() < end, "the server never closed the flooding connection");
                if p.send_bytes(&batch).is_err() {
                    break;
                }
                // The flooder does not notice the close at once: it goes on for a while, and
                // only then reads. Input arriving after the close must not make the server's
                // socket reset the connection before the CLOSE is out.
                if closed_at.is_none() && closed_at_server(server, "flooder") {
                    closed_at = Some(Instant::now());
                }
                if closed_at.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
                    break;
                }
            }
            let message = expect_close_then(&mut p, Status::ENHANCE_YOUR_CALM, true);
            assert!(!message.is_empty());
        });
    });
}

#[test]
fn slow_reader_exceeding_its_calls_is_told_limit_exceeded() {
    bounded(120, || {
        let cfg = || {
            let mut c = server_config();
            c.connection.max_tx_buffer = 256 * 1024;
            c
        };
        each_transport("slow reader", cfg, |server, addr| {
            // Frames of at most 4 KiB, so that reading one frame frees little room.
            let mut p = RawPeer::connect(addr).unwrap();
            p.hello("slow-reader", &[(tandem_std::tandem_core::config::param::MAX_FRAME_SIZE, 4096)])
                .unwrap();
            p.expect_hello(WAIT).unwrap();
            // Rounds of four calls with 200 KiB answers while the peer reads nothing, until the
            // socket buffers and the transmit queue are full: the answers that do not fit wait
            // at the server, their calls still open.
            let mut id = 0;
            let end = Instant::now() + Duration::from_secs(30);
            let conn = server_side(server, "slow-reader");
            loop {
                for _ in 0..4 {
                    p.send(&Frame::Call(request(id, BIG, &(200u32 << 10).to_le_bytes()))).unwrap();
                    id += 2;
                }
                // A handler has long answered: its call is open only while its answer waits.
                std::thread::sleep(Duration::from_millis(300));
                if common::open_exchanges(&conn) > 0 {
                    break;
                }
                assert!(Instant::now() < end, "the answers never filled the transport");
            }
            // Four more calls while some are still open at the server: beyond the announced
            // limit of four.
            for _ in 0..4 {
                p.send(&Frame::Call(request(id, HOLD, b""))).unwrap();
                id += 2;
            }
            drop(conn);
            while !closed_at_server(server, "slow-reader") {
                assert!(Instant::now() < end, "the server never closed the connection");
                std::thread::sleep(Duration::from_millis(2));
            }
            // Now the peer reads, slowly (a pause after every frame): everything queued before
            // the CLOSE, then the CLOSE. Slow reading keeps the server's socket full to the end,
            // so its CLOSE meets a full socket too and must wait for room (it once did not:
            // runtime-std shut the socket as soon as the core had handed the CLOSE over).
            let end = Instant::now() + WAIT;
            loop {
                match p.recv(end.saturating_duration_since(Instant::now())) {
                    Got::Frame(f) => {
                        if let Frame::Close { status, .. } = f.frame() {
                            assert_eq!(status, Status::LIMIT_EXCEEDED);
                            break;
                        }
                    }
                    other => {
                        panic!("expected CLOSE(LIMIT_EXCEEDED), got {other:?} (the peer was not told why)")
                    }
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            assert!(matches!(p.recv(WAIT), Got::Eof));
        });
    });
}

#[test]
fn silence_during_the_handshake_is_handshake_timeout() {
    bounded(60, || {
        each_transport("no HELLO", server_config, |_, addr| {
            let mut p = RawPeer::connect(addr).unwrap();
            expect_close(&mut p, Status::HANDSHAKE_TIMEOUT);
        });
    });
}

#[test]
fn silence_after_the_handshake_is_idle_timeout() {
    bounded(60, || {
        // Without resumption: a resumable session would be suspended instead (SPEC.md §13.2).
        let cfg = || {
            let mut c = server_config();
            c.endpoint.resume = false;
            c.connection.keepalive_interval = Duration::from_millis(100);
            c.connection.idle_timeout = Duration::from_millis(300);
            c
        };
        each_transport("silent peer", cfg, |_, addr| {
            let mut p = connected(addr, "silent");
            // The server's keepalive PINGs go unanswered.
            expect_close(&mut p, Status::IDLE_TIMEOUT);
        });
    });
}

#[test]
fn exchange_held_past_the_drain_is_deadline_exceeded() {
    bounded(60, || {
        each_transport("drain timeout", server_config, |server, addr| {
            let mut p = connected(addr, "lingerer");
            p.send(&Frame::StreamOpen(request(0, HOLD_STREAM, b""))).unwrap();
            let conn = server_side(server, "lingerer");
            let end = Instant::now() + WAIT;
            while common::open_exchanges(&conn) == 0 {
                assert!(Instant::now() < end, "stream never opened");
                std::thread::sleep(Duration::from_millis(2));
            }
            // GOAWAY; the peer never ends its stream, so the drain times out.
            conn.go_away();
            expect_close(&mut p, Status::DEADLINE_EXCEEDED);
        });
    });
}

#[test]
fn connection_replaced_under_the_same_name_is_told_unavailable() {
    bounded(60, || {
        each_transport("same name twice", server_config, |_, addr| {
            let mut first = connected(addr, "twin");
            let _second = connected(addr, "twin");
            let message = expect_close(&mut first, Status::UNAVAILABLE);
            assert!(message.contains("replaced"), "{message}");
        });
    });
}

#[test]
fn graceful_shutdown_says_goaway_then_close_ok() {
    bounded(60, || {
        let dir = tempfile::tempdir().unwrap();
        let unix = format!("unix://{}", dir.path().join("s.sock").display());
        for addr in ["tcp://127.0.0.1:0", unix.as_str()] {
            let server = Server::bind(addr, server_config(), handlers()).unwrap();
            let mut p = connected(&server.local_addr().to_string(), "polite");
            server_side(&server, "polite");
            let stop = std::thread::spawn(move || server.shutdown(Duration::from_secs(2)));
            match p.recv(WAIT) {
                Got::Frame(f) => assert!(matches!(f.frame(), Frame::GoAway { .. }), "{f:?}"),
                other => panic!("expected GOAWAY, got {other:?}"),
            }
            expect_close(&mut p, Status::OK);
            stop.join().unwrap();
        }
    });
}

#[test]
fn closed_connection_lets_go_of_its_socket_while_handles_remain() {
    bounded(60, || {
        each_transport("flood after close, handle held", server_config, |server, addr| {
            let mut p = connected(addr, "kept");
            // The application keeps a handle on the connection (as a server that remembers
            // its peers would): the socket must close anyway once the connection has.
            let conn = server_side(server, "kept");
            p.send(&Frame::Ping(*b"pingpong")).unwrap();
            // A second HELLO is a protocol error.
            p.hello("kept", &[]).unwrap();
            let end = Instant::now() + WAIT;
            while !conn.is_closed() {
                assert!(Instant::now() < end, "the server never closed the connection");
                std::thread::sleep(Duration::from_millis(2));
            }
            // The peer goes on sending without reading: once CLOSE_LINGER has passed the
            // server's descriptor is closed, so these writes fail instead of blocking forever
            // on a socket nobody reads (it stayed open while a `Peer` handle existed).
            let junk = vec![0x04u8; 64 * 1024];
            let end = Instant::now() + WAIT + CLOSE_LINGER;
            while p.send_bytes(&junk).is_ok() {
                assert!(Instant::now() < end, "the closed connection's socket still takes input");
            }
            assert!(conn.is_closed());
        });
    });
}
