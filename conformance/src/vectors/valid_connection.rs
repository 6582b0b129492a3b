//! Valid frames of SPEC.md §4.1–§4.6: HELLO, CLOSE, GOAWAY, PING, PONG, ACK.

use tandem_core::config::param;
use tandem_core::frame::{self, Frame, Hello};
use tandem_core::Status;

use super::generator::{pattern, Gen, HelloSpec, HELLO_DEFAULT, MAXV, U32};
use super::json::unhex;

pub(super) fn valid_connection_frames(g: &mut Gen) {
    // HELLO, §4.1 (examples) and edge cases.
    g.hello(
        "frame/hello/minimal",
        "4.1",
        "Dialer HELLO: version 1 only, empty name/auth/session, no parameters (SPEC.md §4.1 example).",
        HELLO_DEFAULT,
        Some("01 0b 54 4e 44 4d 01 01 00 00 00 00 00"),
    );
    g.hello(
        "frame/hello/named-two-params",
        "4.1",
        "Dialer \"cli\" announcing max_frame_size 65536 and keepalive_interval_ms 5000 (SPEC.md §4.1 example).",
        HelloSpec { name: b"cli", params: &[(1, 65536), (8, 5000)], ..HELLO_DEFAULT },
        Some("01 16 54 4e 44 4d 01 01 00 03 63 6c 69 00 00 02 01 80 01 00 00 08 53 88"),
    );
    let token = unhex("a0 a1 a2 a3 a4 a5 a6 a7");
    g.hello(
        "frame/hello/acceptor-session",
        "4.1",
        "Acceptor \"srv\" choosing version 1 with session token a0..a7 and max_concurrent_calls 16 (SPEC.md §4.1 example).",
        HelloSpec { name: b"srv", session: &token, params: &[(3, 16)], ..HELLO_DEFAULT },
        Some("01 18 54 4e 44 4d 01 01 00 03 73 72 76 00 08 a0 a1 a2 a3 a4 a5 a6 a7 01 03 10"),
    );
    g.hello(
        "frame/hello/resume",
        "4.1",
        "Dialer resuming session a0..a7: flags RESUME (SPEC.md §4.1 example).",
        HelloSpec {
            flags: Hello::RESUME,
            name: b"cli",
            session: &token,
            params: &[(1, 65536), (8, 5000)],
            ..HELLO_DEFAULT
        },
        Some(
            "01 1e 54 4e 44 4d 01 01 01 03 63 6c 69 00 08 a0 a1 a2 a3 a4 a5 a6 a7 02 01 80 01 00 00 08 53 88",
        ),
    );
    g.hello(
        "frame/hello/every-parameter",
        "5.4",
        "HELLO listing all twelve v1 parameters (ids 1..=12), each with a legal value; value lengths of 1, 2, 4 and 8 bytes.",
        HelloSpec {
            name: b"every",
            auth: b"token",
            params: &[
                (param::MAX_FRAME_SIZE, 16_777_216),
                (param::MAX_MESSAGE_SIZE, 4096),
                (param::MAX_CONCURRENT_CALLS, 0),
                (param::MAX_CONCURRENT_STREAMS, 100),
                (param::STREAM_CREDIT_MSGS, 1),
                (param::STREAM_CREDIT_BYTES, 262_144),
                (param::CONN_CREDIT_BYTES, u32::MAX as u64),
                (param::KEEPALIVE_INTERVAL_MS, 0),
                (param::IDLE_TIMEOUT_MS, MAXV),
                (param::MAX_DATAGRAM_SIZE, 1200),
                (param::REPLY_CACHE_ENTRIES, 1024),
                (param::REPLY_CACHE_BYTES, 4_194_304),
            ],
            ..HELLO_DEFAULT
        },
        None,
    );
    g.hello(
        "frame/hello/unknown-parameters",
        "5.4",
        "HELLO with parameter ids v1 does not assign (0, 14, 16383, 16384, 2^62-1) around a known one: they decode and are kept; receivers ignore them.",
        HelloSpec {
            params: &[(0, 7), (param::MAX_FRAME_SIZE, 4096), (14, 0), (16383, 64), (16384, 16383), (MAXV, MAXV)],
            ..HELLO_DEFAULT
        },
        None,
    );
    g.hello(
        "frame/hello/version-range",
        "5.3",
        "HELLO offering versions 0..=2^32-1: version numbers are varint(u32); version 0 is rejected by the handshake (§5.3), not by the decoder.",
        HelloSpec { min: 0, max: U32, ..HELLO_DEFAULT },
        None,
    );
    g.hello(
        "frame/hello/non-utf8-name",
        "2.4",
        "HELLO whose name ff fe 00 is not UTF-8: byte strings are opaque and MUST NOT be rejected for that.",
        HelloSpec { name: &[0xff, 0xfe, 0x00], auth: &[0x00], ..HELLO_DEFAULT },
        None,
    );
    let name = vec![b'n'; frame::MAX_NAME_LEN];
    let auth = pattern(frame::MAX_AUTH_LEN);
    let session = vec![0x5a; frame::MAX_SESSION_LEN];
    let many: Vec<(u64, u64)> = (0..frame::MAX_PARAMS as u64).map(|i| (MAXV - 63 + i, MAXV)).collect();
    g.hello(
        "frame/hello/largest",
        "3.4",
        "The largest HELLO the decoder accepts: versions 2^32-1, RESUME, name 255 bytes, auth 1024 bytes, session 64 bytes, 64 parameters with 8-byte ids and values (body 2396 bytes).",
        HelloSpec {
            min: U32,
            max: U32,
            flags: Hello::RESUME,
            name: &name,
            auth: &auth,
            session: &session,
            params: &many,
        },
        None,
    );
    assert_eq!(g.valid.last().unwrap().hex.len(), 2 * (1 + 2 + 2396), "largest HELLO body is 2396 bytes");
    let few: Vec<(u64, u64)> = (0..frame::MAX_PARAMS as u64).map(|i| (i, i)).collect();
    g.hello(
        "frame/hello/64-parameters",
        "5.4",
        "HELLO with the maximum of 64 parameters, ids 0..=63 (mostly unknown ids).",
        HelloSpec { params: &few, ..HELLO_DEFAULT },
        None,
    );

    // CLOSE, §4.2.
    g.example(
        "frame/close/graceful",
        "4.2",
        "Graceful close: status OK, empty message (SPEC.md §4.2 example).",
        Frame::Close { status: Status::OK, message: b"" },
        "02 02 00 00",
    );
    g.example(
        "frame/close/protocol-error",
        "4.2",
        "PROTOCOL_ERROR (64, a two-byte varint) with message \"id reuse\" (SPEC.md §4.2 example).",
        Frame::Close { status: Status::PROTOCOL_ERROR, message: b"id reuse" },
        "02 0b 40 40 08 69 64 20 72 65 75 73 65",
    );
    g.example(
        "frame/close/unauthenticated",
        "4.2",
        "UNAUTHENTICATED (17), no message (SPEC.md §4.2 example).",
        Frame::Close { status: Status::UNAUTHENTICATED, message: b"" },
        "02 02 11 00",
    );
    g.example(
        "frame/close/incompatible-version",
        "4.2",
        "INCOMPATIBLE_VERSION (69) with the message the reference implementation sends (SPEC.md §4.2 example).",
        Frame::Close { status: Status::INCOMPATIBLE_VERSION, message: b"supported protocol versions: 1..1" },
        "02 24 40 45 21 73 75 70 70 6f 72 74 65 64 20 70 72 6f 74 6f 63 6f 6c 20 76 65 72 73 69 6f 6e 73 3a 20 31 2e 2e 31",
    );
    let msg = pattern(frame::MAX_REASON_LEN);
    g.ok(
        "frame/close/max-status-max-message",
        "4.2",
        "CLOSE with status 2^32-1 (application-defined, unknown to v1: name null) and a 1024-byte message (the cap).",
        Frame::Close { status: Status(U32), message: &msg },
    );
    let m64 = vec![b'm'; 64];
    g.ok(
        "frame/close/message-64-bytes",
        "2.4",
        "CLOSE whose 64-byte message needs a two-byte length varint (40 40).",
        Frame::Close { status: Status::FRAME_ENCODING_ERROR, message: &m64 },
    );

    // GOAWAY, §4.3.
    g.example(
        "frame/goaway/processed-0-2-4",
        "4.3",
        "Acceptor that processed dialer exchanges 0, 2 and 4: bound 6, OK (SPEC.md §4.3 example).",
        Frame::GoAway { bound: 6, status: Status::OK, message: b"" },
        "03 03 06 00 00",
    );
    g.example(
        "frame/goaway/none-processed",
        "4.3",
        "No exchange processed (bound 0), message \"bye\" (SPEC.md §4.3 example).",
        Frame::GoAway { bound: 0, status: Status::OK, message: b"bye" },
        "03 06 00 00 03 62 79 65",
    );
    g.example(
        "frame/goaway/enhance-your-calm",
        "4.3",
        "Bound 9, reason ENHANCE_YOUR_CALM (72) (SPEC.md §4.3 example).",
        Frame::GoAway { bound: 9, status: Status::ENHANCE_YOUR_CALM, message: b"" },
        "03 04 09 40 48 00",
    );
    g.ok(
        "frame/goaway/max-bound",
        "4.3",
        "GOAWAY with bound 2^62-1 (largest varint) and status 2^32-1.",
        Frame::GoAway { bound: MAXV, status: Status(U32), message: b"x" },
    );

    // PING / PONG, §4.4, §4.5.
    g.example(
        "frame/ping/example",
        "4.4",
        "PING with data 01..08 (SPEC.md §4.4 example).",
        Frame::Ping([1, 2, 3, 4, 5, 6, 7, 8]),
        "04 08 01 02 03 04 05 06 07 08",
    );
    g.ok("frame/ping/zero", "4.4", "PING with eight zero bytes.", Frame::Ping([0; 8]));
    g.ok("frame/ping/ff", "4.4", "PING with eight ff bytes.", Frame::Ping([0xff; 8]));
    g.example(
        "frame/pong/example",
        "4.5",
        "PONG echoing the PING example (SPEC.md §4.5 example).",
        Frame::Pong([1, 2, 3, 4, 5, 6, 7, 8]),
        "05 08 01 02 03 04 05 06 07 08",
    );
    g.ok("frame/pong/ff", "4.5", "PONG with eight ff bytes.", Frame::Pong([0xff; 8]));

    // ACK, §4.6.
    g.ack(
        "frame/ack/example",
        "4.6",
        "ACK of ids 0, 2, 4 and 10: ranges (0, 3) and (10, 1) (SPEC.md §4.6 example).",
        &[(0, 3), (10, 1)],
        Some("06 05 02 00 03 0a 01"),
    );
    g.ack("frame/ack/empty", "4.6", "ACK with no ranges (count 0) decodes.", &[], None);
    g.ack(
        "frame/ack/several-ranges",
        "4.6",
        "ACK with five ranges, unordered and overlapping (allowed), including the largest id 2^62-1 and the widest range (0, 2^61) whose last id is 2^62-2.",
        &[(10, 1), (1, 2), (MAXV, 1), (0, 1 << 61), (4, 2)],
        None,
    );
    let ranges: Vec<(u64, u64)> = (0..frame::MAX_ACK_RANGES as u64).map(|i| (i * 4, 1)).collect();
    g.ack("frame/ack/64-ranges", "4.6", "ACK with the maximum of 64 ranges.", &ranges, None);
}
