//! Valid frames of SPEC.md §4.7–§4.11: CALL, NOTIFY, SIGNAL, RESPONSE, CANCEL (and the varint
//! boundaries of their fields, §2.1, §2.3).

use tandem_core::frame::{flags, Frame};
use tandem_core::{varint, Status};

use super::generator::{req, Gen, MAXV, U32};

pub(super) fn valid_exchange_frames(g: &mut Gen) {
    // CALL, §4.7.
    g.example(
        "frame/call/example",
        "4.7",
        "CALL id 4, module 1, method 2, no deadline, payload \"hi\" (SPEC.md §4.7 example).",
        Frame::Call(req(0, 4, 1, 2, 0, None, b"hi")),
        "10 07 00 04 01 02 00 68 69",
    );
    g.example(
        "frame/call/budget",
        "4.7",
        "CALL id 6, module 300, method 2, budget 5 s (5000000 µs), payload \"hi\" (SPEC.md §4.7 example).",
        Frame::Call(req(0, 6, 300, 2, 5_000_000, None, b"hi")),
        "10 0b 00 06 41 2c 02 80 4c 4b 40 68 69",
    );
    g.example(
        "frame/call/zero",
        "4.7",
        "CALL with every field zero and an empty payload (SPEC.md §4.7 example).",
        Frame::Call(req(0, 0, 0, 0, 0, None, b"")),
        "10 05 00 00 00 00 00",
    );
    g.example(
        "frame/call/fragmented-first",
        "4.7",
        "First frame of the 6-byte request \"abcdef\": MORE, total_len 6, chunk \"abc\" (SPEC.md §4.7 example).",
        Frame::Call(req(flags::MORE, 0, 1, 1, 0, Some(6), b"abc")),
        "10 09 01 00 01 01 00 06 61 62 63",
    );
    g.ok(
        "frame/call/max-u32-module",
        "4.7",
        "CALL with module 2^32-1 (largest varint(u32)), method 1.",
        Frame::Call(req(0, 2, U32, 1, 0, None, b"")),
    );
    g.ok(
        "frame/call/max-u32-method",
        "4.7",
        "CALL with method 2^32-1, module 1.",
        Frame::Call(req(0, 2, 1, U32, 0, None, b"")),
    );
    g.ok(
        "frame/call/max-everything",
        "4.7",
        "CALL with id 2^62-1, module and method 2^32-1, budget_us 2^62-1.",
        Frame::Call(req(0, MAXV, U32, U32, MAXV, None, b"z")),
    );
    for (value, label) in [
        (63u64, "63"),
        (64, "64"),
        (16383, "16383"),
        (16384, "16384"),
        ((1 << 30) - 1, "2^30-1"),
        (1 << 30, "2^30"),
    ] {
        let id = format!("frame/call/id-{}", label.replace('^', "pow"));
        let desc = format!("CALL with id {label} ({}-byte varint).", varint::len(value));
        g.ok(&id, "2.1", &desc, Frame::Call(req(0, value, 1, 1, 0, None, b"")));
    }
    for (value, label) in [(63u64, "63"), (64, "64"), (16383, "16383"), (16384, "16384")] {
        let id = format!("frame/call/module-{label}");
        let desc = format!("CALL with module {label} ({}-byte varint).", varint::len(value));
        g.ok(&id, "2.3", &desc, Frame::Call(req(0, 0, value as u32, 0, 0, None, b"")));
    }
    for (value, label) in [((1u64 << 30) - 1, "2pow30-1"), (1 << 30, "2pow30")] {
        let id = format!("frame/call/budget-{label}");
        let desc = format!("CALL with budget_us {value} ({}-byte varint).", varint::len(value));
        g.ok(&id, "4.7", &desc, Frame::Call(req(0, 0, 0, 0, value, None, b"")));
    }
    g.ok(
        "frame/call/more-empty-first-chunk",
        "9.2",
        "First frame with MORE carrying no payload bytes: total_len 1 > 0 is valid.",
        Frame::Call(req(flags::MORE, 8, 1, 1, 0, Some(1), b"")),
    );
    g.ok(
        "frame/call/more-max-total-len",
        "9.2",
        "First frame with total_len 2^62-1: decodes (max_message_size is checked by the protocol, §9.2, not the decoder).",
        Frame::Call(req(flags::MORE, 8, 1, 1, 0, Some(MAXV), b"abc")),
    );

    // NOTIFY, §4.8.
    g.example(
        "frame/notify/example",
        "4.8",
        "NOTIFY id 2, module 5, method 1, payload 2a (SPEC.md §4.8 example).",
        Frame::Notify(req(0, 2, 5, 1, 0, None, &[0x2a])),
        "11 06 00 02 05 01 00 2a",
    );
    g.ok(
        "frame/notify/more",
        "4.8",
        "NOTIFY first frame: MORE, total_len 16384 (4-byte varint), budget 1 µs.",
        Frame::Notify(req(flags::MORE, 10, 2, 3, 1, Some(16384), b"part")),
    );

    // SIGNAL, §4.9.
    g.example(
        "frame/signal/example",
        "4.9",
        "SIGNAL module 7, method 1, payload \"x\" (SPEC.md §4.9 example).",
        Frame::Signal { module: 7, method: 1, payload: b"x" },
        "12 03 07 01 78",
    );
    g.ok(
        "frame/signal/empty",
        "4.9",
        "SIGNAL with module 0, method 0 and an empty payload.",
        Frame::Signal { module: 0, method: 0, payload: b"" },
    );
    g.ok(
        "frame/signal/max-u32",
        "4.9",
        "SIGNAL with module and method 2^32-1.",
        Frame::Signal { module: U32, method: U32, payload: b"sig" },
    );

    // RESPONSE, §4.10.
    g.example(
        "frame/response/ok",
        "4.10",
        "Success for call 4 with payload \"ok\" (SPEC.md §4.10 example).",
        Frame::Response { flags: 0, id: 4, status: Status::OK, total_len: None, payload: b"ok" },
        "13 05 00 04 00 6f 6b",
    );
    g.example(
        "frame/response/notify-ack",
        "4.10",
        "Acknowledgement of notification 2: OK, empty payload (SPEC.md §4.10 example).",
        Frame::Response { flags: 0, id: 2, status: Status::OK, total_len: None, payload: b"" },
        "13 03 00 02 00",
    );
    g.example(
        "frame/response/deadline-exceeded",
        "4.10",
        "DEADLINE_EXCEEDED (9) for call 4 (SPEC.md §4.10 example).",
        Frame::Response { flags: 0, id: 4, status: Status::DEADLINE_EXCEEDED, total_len: None, payload: b"" },
        "13 03 00 04 09",
    );
    g.example(
        "frame/response/fragmented-first",
        "4.10",
        "First frame of the 4-byte response \"ok!!\": MORE, total_len 4, chunk \"ok\" (SPEC.md §4.10 example).",
        Frame::Response { flags: flags::MORE, id: 4, status: Status::OK, total_len: Some(4), payload: b"ok" },
        "13 06 01 04 00 04 6f 6b",
    );
    g.ok(
        "frame/response/application-status",
        "8.4",
        "RESPONSE with the application-defined status 65536 (name null: unknown to v1, treated as UNKNOWN by applications).",
        Frame::Response { flags: 0, id: 1, status: Status(65536), total_len: None, payload: b"" },
    );
    g.ok(
        "frame/response/max-status",
        "4.10",
        "RESPONSE with status 2^32-1 and id 2^62-1.",
        Frame::Response { flags: 0, id: MAXV, status: Status(U32), total_len: None, payload: b"e" },
    );
    g.ok(
        "frame/response/connection-status",
        "4.10",
        "RESPONSE carrying a connection-scope status (PROTOCOL_ERROR): decodes; scope rules are not decode errors (§8.2).",
        Frame::Response { flags: 0, id: 3, status: Status::PROTOCOL_ERROR, total_len: None, payload: b"" },
    );

    // CANCEL, §4.11.
    g.example(
        "frame/cancel/example",
        "4.11",
        "Cancel call 4 (SPEC.md §4.11 example).",
        Frame::Cancel { id: 4 },
        "14 01 04",
    );
    g.ok("frame/cancel/zero", "4.11", "Cancel id 0.", Frame::Cancel { id: 0 });
    g.ok("frame/cancel/max-id", "4.11", "Cancel id 2^62-1 (8-byte varint).", Frame::Cancel { id: MAXV });
}
