//! Invalid inputs: the frame header (§2.2 Length, §3.4 size, §3.5 types, §3.7–§3.8 truncation)
//! and the encoding of every field of every frame type (§2.2 canonical varints, §2.3 bounds,
//! §2.5 flags).

use tandem_core::frame::{flags, ty, DecodeError, Frame};
use tandem_core::varint;

use super::document::DEFAULT_MAX_FRAME_SIZE;
use super::generator::{cat, fr, pattern, v, vw, Gen, MAXV, U32P1};
use super::json::type_name;

pub(super) fn invalid_header(g: &mut Gen) {
    use DecodeError::*;
    let ping_body = [1u8, 2, 3, 4, 5, 6, 7, 8];
    // Non-canonical Length.
    g.bad(
        "invalid/header/length-2-bytes",
        "2.2",
        "PING whose Length 8 is written in two bytes (40 08).",
        cat(&[&[ty::PING], &vw(8, 2), &ping_body]),
        NonCanonicalVarint,
    );
    g.bad(
        "invalid/header/length-8-bytes",
        "2.2",
        "PING whose Length 8 is written in eight bytes.",
        cat(&[&[ty::PING], &vw(8, 8), &ping_body]),
        NonCanonicalVarint,
    );
    g.bad(
        "invalid/header/length-4-bytes-63",
        "2.2",
        "SIGNAL whose Length 63 is written in four bytes.",
        cat(&[&[ty::SIGNAL], &vw(63, 4), &[1, 1], &pattern(61)]),
        NonCanonicalVarint,
    );
    // FrameTooLarge.
    g.bad(
        "invalid/header/too-large-65537",
        "3.4",
        "CALL header with Length 65537, one above the limit 65536; no body follows (the error is due as soon as the header is read).",
        cat(&[&[ty::CALL], &v(65537)]),
        FrameTooLarge { len: 65537, max: DEFAULT_MAX_FRAME_SIZE },
    );
    g.bad_with(
        "invalid/header/too-large-pre-handshake",
        "3.4",
        "HELLO header with Length 4097 decoded with the pre-handshake limit 4096 (MIN_FRAME_SIZE).",
        cat(&[&[ty::HELLO], &v(4097), b"TNDM"]),
        4096,
        FrameTooLarge { len: 4097, max: 4096 },
    );
    g.bad(
        "invalid/header/too-large-max-varint",
        "3.4",
        "Length 2^62-1: FrameTooLarge (never an attempt to buffer it).",
        cat(&[&[ty::STREAM_DATA], &v(MAXV)]),
        FrameTooLarge { len: MAXV, max: DEFAULT_MAX_FRAME_SIZE },
    );
    g.bad(
        "invalid/header/too-large-extension",
        "3.4",
        "Extension frame (0x80) with Length 65537: the limit applies to extension frames too.",
        cat(&[&[0x80], &v(65537)]),
        FrameTooLarge { len: 65537, max: DEFAULT_MAX_FRAME_SIZE },
    );
    g.bad_with(
        "invalid/header/too-large-by-one-small-limit",
        "3.4",
        "PING (8-byte body, complete) decoded with max_frame_size 7.",
        fr(ty::PING, &ping_body),
        7,
        FrameTooLarge { len: 8, max: 7 },
    );
    // UnknownFrameType.
    for t in [0x00u8, 0x07, 0x0f, 0x16, 0x17, 0x1f, 0x21, 0x7f] {
        let id = format!("invalid/header/unknown-type-0x{t:02x}");
        let desc = format!("Reserved type 0x{t:02x} with an empty body.");
        g.bad(&id, "3.5", &desc, fr(t, b""), UnknownFrameType(t));
    }
    g.bad(
        "invalid/header/unknown-type-http-get",
        "5.2",
        "An HTTP client's request \"GET / HTTP/1.1...\" read as a frame: type 0x47 ('G'), Length 45 54 (\"ET\") = 1364, with all 1364 body bytes present (padded with '.').",
        {
            let mut b = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
            b.resize(3 + 1364, b'.');
            b
        },
        UnknownFrameType(0x47),
    );
    // Truncated at the end of the input (header or body incomplete).
    g.bad(
        "invalid/header/type-only",
        "3.7",
        "A lone type byte: the input ends inside the header.",
        vec![ty::PING],
        Truncated,
    );
    g.bad(
        "invalid/header/length-cut",
        "3.7",
        "Type and the first byte of a two-byte Length: the input ends inside the header.",
        vec![ty::SIGNAL, 0x40],
        Truncated,
    );
    g.bad(
        "invalid/header/body-cut",
        "3.8",
        "PING announcing 8 body bytes followed by only 3: the input ends inside the body.",
        cat(&[&[ty::PING, 8], &ping_body[..3]]),
        Truncated,
    );
}

/// One field of a hand-built frame body: a varint, a `varint(u32)` or raw bytes.
#[derive(Clone, Copy)]
enum F {
    /// A varint field: its name (as in SPEC.md §4) and value.
    V(&'static str, u64),
    /// A `varint(u32)` field: its name and value.
    U(&'static str, u64),
    /// Bytes that are not a varint (flags, magic, string contents, payload).
    B(&'static [u8]),
}

/// A valid body for every v1 frame type, field by field, with every varint position present.
const TEMPLATES: &[(u8, &str, &[F])] = &[
    (
        ty::HELLO,
        "hello",
        &[
            F::B(b"TNDM"),
            F::U("min_version", 1),
            F::U("max_version", 1),
            F::V("flags", 1),
            F::V("name length", 3),
            F::B(b"cli"),
            F::V("auth length", 0),
            F::V("session length", 1),
            F::B(&[0xa0]),
            F::V("param_count", 1),
            F::V("param id", 3),
            F::V("param value", 16),
        ],
    ),
    (ty::CLOSE, "close", &[F::U("status", 64), F::V("message length", 2), F::B(b"hi")]),
    (ty::GOAWAY, "goaway", &[F::V("bound", 6), F::U("status", 0), F::V("message length", 0)]),
    (ty::ACK, "ack", &[F::V("count", 1), F::V("first_id", 0), F::V("n", 3)]),
    (
        ty::CALL,
        "call",
        &[
            F::B(&[flags::MORE]),
            F::V("id", 4),
            F::U("module", 300),
            F::U("method", 2),
            F::V("budget_us", 5_000_000),
            F::V("total_len", 6),
            F::B(b"abc"),
        ],
    ),
    (
        ty::NOTIFY,
        "notify",
        &[
            F::B(&[flags::MORE]),
            F::V("id", 2),
            F::U("module", 5),
            F::U("method", 1),
            F::V("budget_us", 0),
            F::V("total_len", 2),
            F::B(&[0x2a]),
        ],
    ),
    (ty::SIGNAL, "signal", &[F::U("module", 7), F::U("method", 1), F::B(b"x")]),
    (
        ty::RESPONSE,
        "response",
        &[F::B(&[flags::MORE]), F::V("id", 4), F::U("status", 9), F::V("total_len", 4), F::B(b"ok")],
    ),
    (ty::CANCEL, "cancel", &[F::V("id", 16384)]),
    (
        ty::STREAM_OPEN,
        "stream-open",
        &[
            F::B(&[flags::MORE | flags::FIN]),
            F::V("id", 1),
            F::U("module", 2),
            F::U("method", 3),
            F::V("budget_us", 0),
            F::V("total_len", 5),
            F::B(b"ab"),
        ],
    ),
    (
        ty::STREAM_DATA,
        "stream-data",
        &[F::B(&[flags::MORE]), F::V("id", 1), F::V("total_len", 5), F::B(b"ab")],
    ),
    (ty::STREAM_FIN, "stream-fin", &[F::V("id", 1), F::U("status", 0)]),
    (ty::STREAM_RESET, "stream-reset", &[F::V("id", 1), F::U("status", 8)]),
    (ty::STREAM_CREDIT, "stream-credit", &[F::V("id", 1), F::U("msgs", 16), F::U("bytes", 65536)]),
    (ty::CONN_CREDIT, "conn-credit", &[F::U("bytes", 1_048_576)]),
    (ty::STREAM_RESUME, "stream-resume", &[F::V("id", 1), F::V("received_items", 3)]),
    (ty::CONTINUATION, "continuation", &[F::B(&[0]), F::V("id", 0), F::B(b"def")]),
];

/// The body of `fields`, with field `i` replaced by `replace(i)` where that returns bytes.
fn template_body(fields: &[F], replace: impl Fn(usize, u64) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        match *f {
            F::B(b) => body.extend_from_slice(b),
            F::V(_, x) | F::U(_, x) => body.extend(replace(i, x).unwrap_or_else(|| v(x))),
        }
    }
    body
}

pub(super) fn invalid_fields(g: &mut Gen) {
    use DecodeError::*;
    // Every varint position of every frame type, non-canonical; every varint(u32) position
    // holding 2^32.
    for &(t, slug, fields) in TEMPLATES {
        let name = type_name(t).unwrap();
        let body = template_body(fields, |_, _| None);
        assert!(Frame::decode_body(t, &body).is_ok(), "template for {name} does not decode");
        for (i, f) in fields.iter().enumerate() {
            let (F::V(field, x) | F::U(field, x)) = *f else { continue };
            let width = varint::len(x) * 2;
            let body = template_body(fields, |j, x| (j == i).then(|| vw(x, width)));
            g.bad(
                &format!("invalid/{slug}/non-canonical-{}", field.replace([' ', '_'], "-")),
                "2.2",
                &format!(
                    "{name} whose {field} {x} is written in {width} bytes instead of {}.",
                    varint::len(x)
                ),
                fr(t, &body),
                NonCanonicalVarint,
            );
            if let F::U(..) = f {
                let body = template_body(fields, |j, _| (j == i).then(|| v(U32P1)));
                g.bad(
                    &format!("invalid/{slug}/{}-2pow32", field.replace([' ', '_'], "-")),
                    "2.3",
                    &format!("{name} whose varint(u32) field {field} holds 2^32 (c0 00 00 01 00 00 00 00)."),
                    fr(t, &body),
                    ValueOutOfRange,
                );
            }
        }
    }
    g.bad(
        "invalid/notify/module-max-varint",
        "2.3",
        "NOTIFY whose module holds 2^62-1.",
        fr(ty::NOTIFY, &cat(&[&[0, 2], &v(MAXV), &[1, 0]])),
        ValueOutOfRange,
    );

    // InvalidFlags on message frames.
    let fl = |g: &mut Gen, id: &str, desc: &str, t: u8, body: Vec<u8>| {
        let f = body[0];
        g.bad(id, "2.5", desc, fr(t, &body), InvalidFlags(f.into()))
    };
    fl(
        g,
        "invalid/call/fin",
        "CALL with FIN (0x02): FIN is allowed on STREAM_OPEN only.",
        ty::CALL,
        vec![2, 4, 1, 2, 0],
    );
    fl(g, "invalid/call/bit-0x08", "CALL with reserved bit 0x08.", ty::CALL, vec![8, 4, 1, 2, 0]);
    fl(
        g,
        "invalid/notify/fin-key",
        "NOTIFY with FIN and KEY (0x06): FIN is allowed on STREAM_OPEN only.",
        ty::NOTIFY,
        vec![6, 2, 5, 1, 0],
    );
    fl(g, "invalid/notify/bit-0x80", "NOTIFY with reserved bit 0x80.", ty::NOTIFY, vec![0x80, 2, 5, 1, 0]);
    fl(g, "invalid/response/fin", "RESPONSE with FIN.", ty::RESPONSE, vec![2, 4, 0]);
    fl(
        g,
        "invalid/stream-open/bit-0x08",
        "STREAM_OPEN with MORE|FIN|KEY|0x08 (0x0f).",
        ty::STREAM_OPEN,
        vec![0x0f, 1, 2, 3, 0, 5],
    );
    fl(
        g,
        "invalid/stream-open/all-bits",
        "STREAM_OPEN with flags 0xff.",
        ty::STREAM_OPEN,
        vec![0xff, 1, 2, 3, 0],
    );
    fl(g, "invalid/stream-data/fin", "STREAM_DATA with FIN.", ty::STREAM_DATA, vec![2, 1, 0x61]);
    fl(g, "invalid/continuation/fin", "CONTINUATION with FIN.", ty::CONTINUATION, vec![2, 0, 0x64]);
    fl(
        g,
        "invalid/continuation/bit-0x40",
        "CONTINUATION with MORE and reserved bit 0x40.",
        ty::CONTINUATION,
        vec![0x41, 0],
    );
}
