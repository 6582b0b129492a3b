//! Valid frames of SPEC.md §4.12–§4.20: streams, CONTINUATION, extension frames; frames at the
//! Length varint boundaries (§3.1) and the fragmentation example of §9.4.

use tandem_core::frame::{flags, Frame};
use tandem_core::{varint, Status};

use super::generator::{pattern, req, Gen, MAXV, U32};

pub(super) fn valid_stream_frames(g: &mut Gen) {
    // STREAM_OPEN, §4.12.
    g.example(
        "frame/stream-open/fin",
        "4.12",
        "Stream 1, module 2, method 3, FIN on STREAM_OPEN, initial payload \"q\" (SPEC.md §4.12 example).",
        Frame::StreamOpen(req(flags::FIN, 1, 2, 3, 0, None, b"q")),
        "18 06 02 01 02 03 00 71",
    );
    g.ok(
        "frame/stream-open/plain",
        "4.12",
        "STREAM_OPEN without flags and with an empty initial payload.",
        Frame::StreamOpen(req(0, 0, 1, 1, 0, None, b"")),
    );
    g.ok(
        "frame/stream-open/more-fin",
        "4.12",
        "STREAM_OPEN with MORE and FIN both set (allowed): total_len 5, chunk \"ab\".",
        Frame::StreamOpen(req(flags::MORE | flags::FIN, 2, 9, 9, 250_000, Some(5), b"ab")),
    );
    g.ok(
        "frame/stream-open/more",
        "4.12",
        "STREAM_OPEN with MORE only: total_len 64 (2-byte varint), empty first chunk.",
        Frame::StreamOpen(req(flags::MORE, 4, 1, 2, 0, Some(64), b"")),
    );

    // STREAM_DATA, §4.13.
    g.example(
        "frame/stream-data/example",
        "4.13",
        "Item \"abc\" on stream 1 (SPEC.md §4.13 example).",
        Frame::StreamData { flags: 0, id: 1, total_len: None, payload: b"abc" },
        "19 05 00 01 61 62 63",
    );
    g.example(
        "frame/stream-data/fragmented-first",
        "4.13",
        "First frame of the 5-byte item \"abcde\": MORE, total_len 5, chunk \"ab\" (SPEC.md §4.13 example).",
        Frame::StreamData { flags: flags::MORE, id: 1, total_len: Some(5), payload: b"ab" },
        "19 05 01 01 05 61 62",
    );
    g.ok(
        "frame/stream-data/empty",
        "4.13",
        "An empty item on stream 3.",
        Frame::StreamData { flags: 0, id: 3, total_len: None, payload: b"" },
    );
    let big = pattern(16384);
    g.ok(
        "frame/stream-data/large-16384",
        "4.13",
        "A 16384-byte item (bytes i mod 251): body 16386 bytes, so the Length is a 4-byte varint.",
        Frame::StreamData { flags: 0, id: 5, total_len: None, payload: &big },
    );

    // STREAM_FIN, §4.14 .. STREAM_RESUME, §4.18.
    g.example(
        "frame/stream-fin/ok",
        "4.14",
        "Stream 1 finished with OK (SPEC.md §4.14 example).",
        Frame::StreamFin { id: 1, status: Status::OK },
        "1a 02 01 00",
    );
    g.ok(
        "frame/stream-fin/max",
        "4.14",
        "STREAM_FIN with id 2^62-1 and status 2^32-1.",
        Frame::StreamFin { id: MAXV, status: Status(U32) },
    );
    g.example(
        "frame/stream-reset/cancelled",
        "4.15",
        "Stream 1 reset with CANCELLED (8) (SPEC.md §4.15 example).",
        Frame::StreamReset { id: 1, status: Status::CANCELLED },
        "1b 02 01 08",
    );
    g.ok(
        "frame/stream-reset/reply-evicted",
        "4.15",
        "STREAM_RESET with REPLY_EVICTED (25) on stream 16383 (2-byte id).",
        Frame::StreamReset { id: 16383, status: Status::REPLY_EVICTED },
    );
    g.example(
        "frame/stream-credit/example",
        "4.16",
        "Stream 1: 16 more items and 65536 more bytes (SPEC.md §4.16 example).",
        Frame::StreamCredit { id: 1, msgs: 16, bytes: 65536 },
        "1c 06 01 10 80 01 00 00",
    );
    g.ok(
        "frame/stream-credit/zero",
        "4.16",
        "STREAM_CREDIT with both increments 0 (allowed).",
        Frame::StreamCredit { id: 0, msgs: 0, bytes: 0 },
    );
    g.ok(
        "frame/stream-credit/max",
        "4.16",
        "STREAM_CREDIT with id 2^62-1 and both increments 2^32-1.",
        Frame::StreamCredit { id: MAXV, msgs: U32, bytes: U32 },
    );
    g.example(
        "frame/conn-credit/example",
        "4.17",
        "1048576 more bytes (SPEC.md §4.17 example).",
        Frame::ConnCredit { bytes: 1_048_576 },
        "1d 04 80 10 00 00",
    );
    g.ok("frame/conn-credit/zero", "4.17", "CONN_CREDIT of 0 bytes.", Frame::ConnCredit { bytes: 0 });
    g.ok("frame/conn-credit/max", "4.17", "CONN_CREDIT of 2^32-1 bytes.", Frame::ConnCredit { bytes: U32 });
    g.example(
        "frame/stream-resume/example",
        "4.18",
        "Stream 1, three items received (SPEC.md §4.18 example).",
        Frame::StreamResume { id: 1, received: 3 },
        "1e 02 01 03",
    );
    g.ok(
        "frame/stream-resume/max",
        "4.18",
        "STREAM_RESUME with id and received_items 2^62-1.",
        Frame::StreamResume { id: MAXV, received: MAXV },
    );

    // CONTINUATION, §4.19.
    g.example(
        "frame/continuation/last",
        "4.19",
        "Last chunk \"def\" of a message of exchange 0 (SPEC.md §4.19 example).",
        Frame::Continuation { flags: 0, id: 0, payload: b"def" },
        "20 05 00 00 64 65 66",
    );
    g.ok(
        "frame/continuation/more-empty",
        "4.19",
        "CONTINUATION with MORE and an empty chunk (allowed).",
        Frame::Continuation { flags: flags::MORE, id: 7, payload: b"" },
    );
    g.example(
        "frame/continuation/response-last",
        "4.10",
        "Last chunk \"!!\" of the fragmented response of call 4 (SPEC.md §4.10 example).",
        Frame::Continuation { flags: 0, id: 4, payload: b"!!" },
        "20 04 00 04 21 21",
    );

    // Extensions, §4.20.
    g.example(
        "frame/extension/0x80",
        "4.20",
        "Extension type 0x80 with body 01 02: decodes (and is skipped by receivers that do not implement it) (SPEC.md §4.20 example).",
        Frame::Extension { ty: 0x80, body: &[1, 2] },
        "80 02 01 02",
    );
    g.ok(
        "frame/extension/0xff-empty",
        "3.5",
        "Extension type 0xff with an empty body.",
        Frame::Extension { ty: 0xff, body: b"" },
    );
    g.ok(
        "frame/extension/0xc0",
        "3.5",
        "Extension type 0xc0 whose body would be malformed as any v1 frame (a lone non-canonical varint prefix): extension bodies are not parsed.",
        Frame::Extension { ty: 0xc0, body: &[0x40] },
    );
}

/// Frames at the Length varint boundaries and the §9.4 example.
pub(super) fn valid_lengths(g: &mut Gen) {
    for (body, label) in [(63usize, "63"), (64, "64"), (16383, "16383"), (16384, "16384")] {
        // SIGNAL module 1, method 1: a body of `body` bytes needs body-2 payload bytes.
        let payload = pattern(body - 2);
        let id = format!("frame/signal/body-{label}");
        let desc = format!(
            "SIGNAL with a {body}-byte body: the Length is a {}-byte varint.",
            varint::len(body as u64)
        );
        g.ok(&id, "3.1", &desc, Frame::Signal { module: 1, method: 1, payload: &payload });
    }
    let message = pattern(10000);
    g.frame(
        "frame/call/fragment-9.4-first",
        "9.4",
        "SPEC.md §9.4: first frame of a 10000-byte request (bytes i mod 251) as call 2 with max_frame_size 4096: MORE, total_len 10000, 4089 payload bytes.",
        Frame::Call(req(flags::MORE, 2, 1, 1, 0, Some(10000), &message[..4089])),
        None,
    );
    assert!(g.valid.last().unwrap().hex.starts_with("1050000102010100671000"));
    g.frame(
        "frame/continuation/fragment-9.4-second",
        "9.4",
        "SPEC.md §9.4: second frame, CONTINUATION with MORE, bytes 4089..8183.",
        Frame::Continuation { flags: flags::MORE, id: 2, payload: &message[4089..8183] },
        None,
    );
    assert!(g.valid.last().unwrap().hex.starts_with("2050000102"));
    g.frame(
        "frame/continuation/fragment-9.4-last",
        "9.4",
        "SPEC.md §9.4: last frame, CONTINUATION without MORE, bytes 8183..10000.",
        Frame::Continuation { flags: 0, id: 2, payload: &message[8183..] },
        None,
    );
    assert!(g.valid.last().unwrap().hex.starts_with("20471b0002"));
}
