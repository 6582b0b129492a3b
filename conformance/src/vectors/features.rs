//! Frames of the optional features (SPEC.md §5.8): HELLO announcing them, keyed opening frames
//! and SIGNAL_KEYED (§4.7, §4.12, §4.21, §7.10), RESPONSEs with status bodies (§8.7), and the
//! malformed forms of the new fields.

use tandem_core::frame::{flags, ty, DecodeError, Frame};
use tandem_core::{SchemaKey, Status};

use super::generator::{cat, fr, req, Gen, HelloSpec, HELLO_DEFAULT};

const K: SchemaKey = SchemaKey([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);

pub(super) fn valid_feature_frames(g: &mut Gen) {
    g.hello(
        "frame/hello/features",
        "5.8",
        "Dialer HELLO announcing both optional features: parameter 13 (features) = 3, schema_keys and error_details (SPEC.md §5.8 example).",
        HelloSpec { params: &[(13, 3)], ..HELLO_DEFAULT },
        Some("01 0d 54 4e 44 4d 01 01 00 00 00 00 01 0d 03"),
    );
    g.hello(
        "frame/hello/features-unknown-bits",
        "5.8",
        "HELLO announcing feature bits this revision does not assign (0x3ffffffffffffffc, every reserved bit): legal, ignored.",
        HelloSpec { params: &[(13, 0x3fff_ffff_ffff_fffc)], ..HELLO_DEFAULT },
        None,
    );
    g.example(
        "frame/call/keyed",
        "4.7",
        "CALL id 4, module 1, method 2, KEY with key 0123456789abcdef, no deadline, payload \"hi\" (SPEC.md §4.7 example).",
        Frame::Keyed { ty: ty::CALL, key: K, req: req(0, 4, 1, 2, 0, None, b"hi") },
        "10 0f 04 04 01 02 01 23 45 67 89 ab cd ef 00 68 69",
    );
    g.ok(
        "frame/call/keyed-fragmented-first",
        "4.7",
        "First frame of a keyed 6-byte request: MORE|KEY, the key before budget_us, total_len 6, chunk \"abc\".",
        Frame::Keyed { ty: ty::CALL, key: K, req: req(flags::MORE, 0, 1, 1, 0, Some(6), b"abc") },
    );
    g.example(
        "frame/notify/keyed",
        "4.8",
        "NOTIFY id 2, module 5, method 1, KEY 0123456789abcdef, payload 2a (SPEC.md §4.8 example).",
        Frame::Keyed { ty: ty::NOTIFY, key: K, req: req(0, 2, 5, 1, 0, None, &[0x2a]) },
        "11 0e 04 02 05 01 01 23 45 67 89 ab cd ef 00 2a",
    );
    g.example(
        "frame/stream-open/keyed-fin",
        "4.12",
        "STREAM_OPEN id 1, module 2, method 3, FIN|KEY (0x06), key 0123456789abcdef, payload \"q\" (SPEC.md §4.12 example).",
        Frame::Keyed { ty: ty::STREAM_OPEN, key: K, req: req(flags::FIN, 1, 2, 3, 0, None, b"q") },
        "18 0e 06 01 02 03 01 23 45 67 89 ab cd ef 00 71",
    );
    g.example(
        "frame/signal-keyed/example",
        "4.21",
        "SIGNAL_KEYED module 7, method 1, key 0123456789abcdef, payload \"x\" (SPEC.md §4.21 example).",
        Frame::SignalKeyed { module: 7, method: 1, key: K, payload: b"x" },
        "15 0b 07 01 01 23 45 67 89 ab cd ef 78",
    );
    g.ok(
        "frame/signal-keyed/empty",
        "4.21",
        "SIGNAL_KEYED module 0, method 0, key 0000000000000000, empty payload: the key is fixed(8), the payload may be empty.",
        Frame::SignalKeyed { module: 0, method: 0, key: SchemaKey([0; 8]), payload: b"" },
    );
    g.example(
        "frame/call/keyed-drift",
        "7.10.4",
        "CALL id 0 to example.double (module 1, method 1) with the key of its i64 declaration ce530b2231f82416 and payload 09 (-5 in postcard) (SPEC.md §7.10.4 example).",
        Frame::Keyed {
            ty: ty::CALL,
            key: SchemaKey([0xce, 0x53, 0x0b, 0x22, 0x31, 0xf8, 0x24, 0x16]),
            req: req(0, 0, 1, 1, 0, None, &[0x09]),
        },
        "10 0e 04 00 01 01 ce 53 0b 22 31 f8 24 16 00 09",
    );
    g.example(
        "frame/response/schema-mismatch",
        "7.10.4",
        "RESPONSE id 0, SCHEMA_MISMATCH (26), no status body (SPEC.md §7.10.4 example).",
        Frame::Response { flags: 0, id: 0, status: Status::SCHEMA_MISMATCH, total_len: None, payload: b"" },
        "13 03 00 00 1a",
    );
    g.example(
        "frame/response/status-body",
        "8.7",
        "RESPONSE id 4, NOT_FOUND (14), status body: message \"no vehicle 7\", no details (SPEC.md §4.10 and §8.7 example).",
        Frame::Response { flags: 0, id: 4, status: Status::NOT_FOUND, total_len: None, payload: b"\x0cno vehicle 7" },
        "13 10 00 04 0e 0c 6e 6f 20 76 65 68 69 63 6c 65 20 37",
    );
    g.example(
        "frame/response/application-error",
        "8.7",
        "RESPONSE id 4, APPLICATION_ERROR (27), status body: empty message, details 01 07 (SPEC.md §8.7 example).",
        Frame::Response {
            flags: 0,
            id: 4,
            status: Status::APPLICATION_ERROR,
            total_len: None,
            payload: &[0x00, 0x01, 0x07],
        },
        "13 06 00 04 1b 00 01 07",
    );
}

pub(super) fn invalid_feature_frames(g: &mut Gen) {
    use DecodeError::*;
    g.bad(
        "invalid/call/key-truncated",
        "4.7",
        "CALL with KEY whose body ends after 7 of the key's 8 bytes.",
        fr(ty::CALL, &cat(&[&[flags::KEY, 0x00, 0x01, 0x01], &K.0[..7]])),
        Truncated,
    );
    g.bad(
        "invalid/stream-open/key-no-budget",
        "4.12",
        "STREAM_OPEN with KEY: id, module, method and the key, then nothing (budget_us missing).",
        fr(ty::STREAM_OPEN, &cat(&[&[flags::KEY, 0x01, 0x02, 0x03], &K.0])),
        Truncated,
    );
    g.bad(
        "invalid/signal-keyed/key-truncated",
        "4.21",
        "SIGNAL_KEYED whose body ends after 3 of the key's 8 bytes.",
        fr(ty::SIGNAL_KEYED, &[0x07, 0x01, 0x01, 0x23, 0x45]),
        Truncated,
    );
    g.bad(
        "invalid/signal-keyed/empty",
        "4.21",
        "SIGNAL_KEYED with an empty body.",
        fr(ty::SIGNAL_KEYED, b""),
        Truncated,
    );
    g.bad(
        "invalid/response/key",
        "2.5",
        "RESPONSE with KEY (0x04): KEY is allowed on CALL, NOTIFY and STREAM_OPEN only.",
        fr(ty::RESPONSE, &[flags::KEY, 0x04, 0x00]),
        InvalidFlags(0x04),
    );
    g.bad(
        "invalid/stream-data/key",
        "2.5",
        "STREAM_DATA with KEY (0x04).",
        fr(ty::STREAM_DATA, &[flags::KEY, 0x01, 0x61]),
        InvalidFlags(0x04),
    );
    g.bad(
        "invalid/call/keyed-total-len",
        "9.2",
        "Keyed CALL with MORE whose total_len 2 equals its chunk's length: the key does not count as payload.",
        fr(ty::CALL, &cat(&[&[flags::KEY | flags::MORE, 0x00, 0x01, 0x01], &K.0, &[0x00, 0x02, 0x61, 0x62]])),
        InvalidLength,
    );
}
