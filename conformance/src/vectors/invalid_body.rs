//! Invalid bodies: first-frame lengths (§9.2), ACK ranges (§4.6), byte-string caps (§2.4, §4.2,
//! §4.3), exact consumption (§3.6: truncated fields, trailing bytes) and the order in which
//! several defects are reported (§3.3).

use tandem_core::frame::{ty, DecodeError};

use super::document::DEFAULT_MAX_FRAME_SIZE;
use super::generator::{cat, fr, pattern, v, vw, Gen, MAXV, U32P1};
use super::invalid_hello::hello_body;

pub(super) fn invalid_messages(g: &mut Gen) {
    use DecodeError::*;
    // total_len ≤ payload length on first frames.
    let il = |g: &mut Gen, id: &str, desc: &str, t: u8, body: Vec<u8>| {
        g.bad(id, "9.2", desc, fr(t, &body), InvalidLength)
    };
    il(
        g,
        "invalid/call/total-len-equal",
        "CALL with MORE, total_len 3 and a 3-byte payload (must be greater).",
        ty::CALL,
        cat(&[&[1, 0, 1, 1, 0, 3], b"abc"]),
    );
    il(
        g,
        "invalid/call/total-len-less",
        "CALL with MORE, total_len 2 and a 3-byte payload.",
        ty::CALL,
        cat(&[&[1, 0, 1, 1, 0, 2], b"abc"]),
    );
    il(
        g,
        "invalid/call/total-len-zero-empty",
        "CALL with MORE, total_len 0 and an empty payload.",
        ty::CALL,
        vec![1, 0, 1, 1, 0, 0],
    );
    il(
        g,
        "invalid/notify/total-len-equal",
        "NOTIFY with MORE, total_len 1 and a 1-byte payload.",
        ty::NOTIFY,
        vec![1, 2, 5, 1, 0, 1, 0x2a],
    );
    il(
        g,
        "invalid/response/total-len-equal",
        "RESPONSE with MORE, total_len 2 and payload \"ok\".",
        ty::RESPONSE,
        cat(&[&[1, 4, 0, 2], b"ok"]),
    );
    il(
        g,
        "invalid/stream-open/total-len-zero",
        "STREAM_OPEN with MORE|FIN, total_len 0, payload \"q\".",
        ty::STREAM_OPEN,
        cat(&[&[3, 1, 2, 3, 0, 0], b"q"]),
    );
    il(
        g,
        "invalid/stream-data/total-len-less",
        "STREAM_DATA with MORE, total_len 1, payload \"ab\".",
        ty::STREAM_DATA,
        cat(&[&[1, 1, 1], b"ab"]),
    );
    il(
        g,
        "invalid/stream-data/total-len-64-of-64",
        "STREAM_DATA with MORE, total_len 64 and a 64-byte payload.",
        ty::STREAM_DATA,
        cat(&[&[1, 1], &v(64), &pattern(64)]),
    );
    // Missing total_len (MORE set, body ends).
    g.bad(
        "invalid/call/more-no-total-len",
        "3.6",
        "CALL with MORE whose body ends after budget_us: total_len missing.",
        fr(ty::CALL, &[1, 0, 1, 1, 0]),
        Truncated,
    );
    g.bad(
        "invalid/response/more-total-len-cut",
        "3.6",
        "RESPONSE with MORE whose total_len is a 2-byte varint cut after one byte.",
        fr(ty::RESPONSE, &[1, 4, 0, 0x40]),
        Truncated,
    );
    // ACK.
    let ack = |g: &mut Gen, id: &str, desc: &str, body: Vec<u8>, err: DecodeError| {
        g.bad(id, "4.6", desc, fr(ty::ACK, &body), err)
    };
    ack(g, "invalid/ack/empty-range", "ACK range (4, 0): n = 0.", vec![1, 4, 0], InvalidLength);
    ack(
        g,
        "invalid/ack/empty-range-after-valid",
        "ACK ranges (0, 1), (2, 0).",
        vec![2, 0, 1, 2, 0],
        InvalidLength,
    );
    ack(
        g,
        "invalid/ack/overflow-max-id",
        "ACK range (2^62-1, 2): last id 2^62+1 exceeds 2^62-1.",
        cat(&[&[1], &v(MAXV), &[2]]),
        InvalidLength,
    );
    ack(
        g,
        "invalid/ack/overflow-wide",
        "ACK range (0, 2^61+1): last id 2^62 exceeds 2^62-1.",
        cat(&[&[1, 0], &v((1 << 61) + 1)]),
        InvalidLength,
    );
    ack(
        g,
        "invalid/ack/overflow-huge-n",
        "ACK range (1, 2^62-1): 2(n-1) overflows 64 bits.",
        cat(&[&[1, 1], &v(MAXV)]),
        InvalidLength,
    );
    let mut r65 = v(65);
    for i in 0..65u64 {
        r65.extend(v(i * 2));
        r65.push(1);
    }
    ack(g, "invalid/ack/65-ranges", "ACK count 65 (cap 64) with 65 valid ranges.", r65, FieldTooLong);
    ack(
        g,
        "invalid/ack/count-max-varint",
        "ACK count 2^62-1 with no ranges: FieldTooLong as soon as the count is read.",
        v(MAXV),
        FieldTooLong,
    );
    ack(g, "invalid/ack/range-cut", "ACK count 2 with one range.", vec![2, 0, 3], Truncated);
    ack(g, "invalid/ack/n-missing", "ACK count 1, first_id 0 and no n.", vec![1, 0], Truncated);
    ack(g, "invalid/ack/no-count", "ACK with an empty body.", vec![], Truncated);
    ack(g, "invalid/ack/trailing", "ACK (0, 1) followed by one more byte.", vec![1, 0, 1, 0], TrailingBytes);
    // Byte-string caps on CLOSE / GOAWAY.
    let m1025 = cat(&[&v(1025), &pattern(1025)]);
    g.bad(
        "invalid/close/message-1025",
        "4.2",
        "CLOSE message of 1025 bytes (cap 1024).",
        fr(ty::CLOSE, &cat(&[&[0], &m1025])),
        FieldTooLong,
    );
    g.bad(
        "invalid/close/message-length-only",
        "2.4",
        "CLOSE message length 1025 and no message bytes: FieldTooLong before Truncated.",
        fr(ty::CLOSE, &cat(&[&[0], &v(1025)])),
        FieldTooLong,
    );
    g.bad(
        "invalid/goaway/message-1025",
        "4.3",
        "GOAWAY message of 1025 bytes (cap 1024).",
        fr(ty::GOAWAY, &cat(&[&[6, 0], &m1025])),
        FieldTooLong,
    );
    g.bad(
        "invalid/close/message-cut",
        "2.4",
        "CLOSE message length 5 with 3 bytes.",
        fr(ty::CLOSE, &cat(&[&[0, 5], b"bye"])),
        Truncated,
    );
}

pub(super) fn invalid_consumption(g: &mut Gen) {
    use DecodeError::*;
    let ping_body = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let t = |g: &mut Gen, id: &str, desc: &str, ty: u8, body: Vec<u8>, err: DecodeError| {
        g.bad(id, "3.6", desc, fr(ty, &body), err)
    };
    // Truncated bodies (complete frames whose fields run past the body).
    t(
        g,
        "invalid/ping/7-bytes",
        "PING with a 7-byte body (SPEC.md §3.6 example).",
        ty::PING,
        ping_body[..7].to_vec(),
        Truncated,
    );
    t(g, "invalid/pong/empty", "PONG with an empty body.", ty::PONG, vec![], Truncated);
    t(g, "invalid/call/flags-only", "CALL body holding only the flags byte.", ty::CALL, vec![0], Truncated);
    t(g, "invalid/call/empty", "CALL with an empty body.", ty::CALL, vec![], Truncated);
    t(
        g,
        "invalid/call/id-cut",
        "CALL whose id is a 2-byte varint cut after one byte (SPEC.md §2.8: 40 as the last byte of a body).",
        ty::CALL,
        vec![0, 0x40],
        Truncated,
    );
    t(g, "invalid/call/no-budget", "CALL body ends after method.", ty::CALL, vec![0, 4, 1, 2], Truncated);
    t(g, "invalid/signal/empty", "SIGNAL with an empty body.", ty::SIGNAL, vec![], Truncated);
    t(g, "invalid/signal/no-method", "SIGNAL with a module and no method.", ty::SIGNAL, vec![7], Truncated);
    t(
        g,
        "invalid/response/no-status",
        "RESPONSE with flags and id only.",
        ty::RESPONSE,
        vec![0, 4],
        Truncated,
    );
    t(g, "invalid/cancel/empty", "CANCEL with an empty body.", ty::CANCEL, vec![], Truncated);
    t(
        g,
        "invalid/cancel/id-cut",
        "CANCEL whose id is an 8-byte varint cut to 4 bytes.",
        ty::CANCEL,
        vec![0xc0, 0, 0, 0],
        Truncated,
    );
    t(g, "invalid/close/empty", "CLOSE with an empty body.", ty::CLOSE, vec![], Truncated);
    t(
        g,
        "invalid/close/no-message",
        "CLOSE with a status and no message length.",
        ty::CLOSE,
        vec![0],
        Truncated,
    );
    t(g, "invalid/goaway/no-status", "GOAWAY with a bound only.", ty::GOAWAY, vec![6], Truncated);
    t(
        g,
        "invalid/stream-open/no-method",
        "STREAM_OPEN body ends after module.",
        ty::STREAM_OPEN,
        vec![2, 1, 2],
        Truncated,
    );
    t(
        g,
        "invalid/stream-data/flags-only",
        "STREAM_DATA with flags and no id.",
        ty::STREAM_DATA,
        vec![0],
        Truncated,
    );
    t(g, "invalid/stream-fin/no-status", "STREAM_FIN with an id only.", ty::STREAM_FIN, vec![1], Truncated);
    t(
        g,
        "invalid/stream-reset/empty",
        "STREAM_RESET with an empty body.",
        ty::STREAM_RESET,
        vec![],
        Truncated,
    );
    t(
        g,
        "invalid/stream-credit/no-bytes",
        "STREAM_CREDIT with id and msgs only.",
        ty::STREAM_CREDIT,
        vec![1, 16],
        Truncated,
    );
    t(g, "invalid/conn-credit/empty", "CONN_CREDIT with an empty body.", ty::CONN_CREDIT, vec![], Truncated);
    t(
        g,
        "invalid/stream-resume/no-received",
        "STREAM_RESUME with an id only.",
        ty::STREAM_RESUME,
        vec![1],
        Truncated,
    );
    t(
        g,
        "invalid/continuation/empty",
        "CONTINUATION with an empty body.",
        ty::CONTINUATION,
        vec![],
        Truncated,
    );
    // Trailing bytes on every frame type without a `rest` field.
    t(
        g,
        "invalid/ping/9-bytes",
        "PING with a 9-byte body (SPEC.md §3.6 example).",
        ty::PING,
        cat(&[&ping_body, &[9]]),
        TrailingBytes,
    );
    t(
        g,
        "invalid/pong/9-bytes",
        "PONG with a 9-byte body.",
        ty::PONG,
        cat(&[&ping_body, &[9]]),
        TrailingBytes,
    );
    t(
        g,
        "invalid/close/trailing",
        "CLOSE OK, empty message, then one byte.",
        ty::CLOSE,
        vec![0, 0, 0],
        TrailingBytes,
    );
    t(
        g,
        "invalid/goaway/trailing",
        "GOAWAY 6, OK, empty message, then one byte.",
        ty::GOAWAY,
        vec![6, 0, 0, 0xff],
        TrailingBytes,
    );
    t(g, "invalid/cancel/trailing", "CANCEL id 4 then one byte.", ty::CANCEL, vec![4, 0], TrailingBytes);
    t(
        g,
        "invalid/stream-fin/trailing",
        "STREAM_FIN (1, OK) then one byte.",
        ty::STREAM_FIN,
        vec![1, 0, 0],
        TrailingBytes,
    );
    t(
        g,
        "invalid/stream-reset/trailing",
        "STREAM_RESET (1, CANCELLED) then two bytes.",
        ty::STREAM_RESET,
        vec![1, 8, 0, 0],
        TrailingBytes,
    );
    t(
        g,
        "invalid/stream-credit/trailing",
        "STREAM_CREDIT (1, 16, 65536) then one byte.",
        ty::STREAM_CREDIT,
        cat(&[&[1, 16], &v(65536), &[0]]),
        TrailingBytes,
    );
    t(
        g,
        "invalid/conn-credit/trailing",
        "CONN_CREDIT 1048576 then one byte.",
        ty::CONN_CREDIT,
        cat(&[&v(1_048_576), &[0]]),
        TrailingBytes,
    );
    t(
        g,
        "invalid/stream-resume/trailing",
        "STREAM_RESUME (1, 3) then one byte.",
        ty::STREAM_RESUME,
        vec![1, 3, 3],
        TrailingBytes,
    );
}

/// Frames with several defects: the first in the order of SPEC.md §3.3 decides.
pub(super) fn invalid_order(g: &mut Gen) {
    use DecodeError::*;
    g.bad(
        "invalid/order/non-canonical-length-before-too-large",
        "3.3",
        "Length 65537 written in 8 bytes (non-canonical and above the limit): NonCanonicalVarint comes first.",
        cat(&[&[ty::CALL], &vw(65537, 8)]),
        NonCanonicalVarint,
    );
    g.bad(
        "invalid/order/too-large-before-unknown-type",
        "3.3",
        "Reserved type 0x07 with Length 65537: FrameTooLarge comes before UnknownFrameType.",
        cat(&[&[0x07], &v(65537)]),
        FrameTooLarge { len: 65537, max: DEFAULT_MAX_FRAME_SIZE },
    );
    g.bad(
        "invalid/order/unknown-type-before-body",
        "3.3",
        "Reserved type 0x16 whose body is a non-canonical varint: the body of an unknown type is never parsed.",
        fr(0x16, &vw(1, 2)),
        UnknownFrameType(0x16),
    );
    g.bad(
        "invalid/order/flags-before-id",
        "3.3",
        "CALL with FIN and a non-canonical id: the flags byte is the first field.",
        fr(ty::CALL, &cat(&[&[2], &vw(4, 2), &[1, 2, 0]])),
        InvalidFlags(2),
    );
    g.bad(
        "invalid/order/out-of-range-before-invalid-length",
        "3.3",
        "CALL with MORE, module 2^32 and total_len 0: ValueOutOfRange (field 3) before InvalidLength (checked last).",
        fr(ty::CALL, &cat(&[&[1, 0], &v(U32P1), &[1, 0, 0], b"abc"])),
        ValueOutOfRange,
    );
    g.bad(
        "invalid/order/bad-magic-before-flags",
        "3.3",
        "HELLO with bad magic and reserved flag bits: BadMagic (field 1).",
        fr(ty::HELLO, &cat(&[b"TNDX", &[1, 1, 2, 0, 0, 0, 0]])),
        BadMagic,
    );
    g.bad(
        "invalid/order/flags-before-name-cap",
        "3.3",
        "HELLO with reserved flag bit 0x02 and a 256-byte name length: InvalidFlags (field 4) before FieldTooLong (field 5).",
        fr(ty::HELLO, &hello_body(&[2], &v(256), &[], &[], &[])),
        InvalidFlags(2),
    );
    g.bad(
        "invalid/order/param-order-before-truncated",
        "3.3",
        "HELLO param_count 3 whose second id is lower than the first, body ending before the third pair: ParamOrder is found first.",
        fr(ty::HELLO, &hello_body(&[0], &[0], &[0], &[0], &[3, 5, 0, 4, 0])),
        ParamOrder,
    );
    g.bad(
        "invalid/order/ack-invalid-length-before-truncated",
        "3.3",
        "ACK count 2 whose first range is empty, body ending before the second range: InvalidLength first.",
        fr(ty::ACK, &[2, 0, 0]),
        InvalidLength,
    );
    g.bad(
        "invalid/order/ack-count-before-ranges",
        "3.3",
        "ACK count 65 followed by an empty range: FieldTooLong (the count) first.",
        fr(ty::ACK, &[0x40, 65, 0, 0]),
        FieldTooLong,
    );
    g.bad(
        "invalid/order/field-too-long-before-trailing",
        "3.3",
        "GOAWAY whose message length 2000 exceeds the cap, body holding only 2 more bytes: FieldTooLong.",
        fr(ty::GOAWAY, &cat(&[&[0, 0], &v(2000), b"ab"])),
        FieldTooLong,
    );
}
