//! Tests of `conformance/vectors/frames.json`.
//!
//! `checked_in_file_is_current` compares the file with what the code generates. The other tests
//! read the file as plain JSON, the way an implementation in another language would use it: they
//! build each frame from its JSON description (not from the generator), and check that the
//! reference decoder and encoder agree with the bytes.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tandem_conformance::vectors;
use tandem_core::frame::{Ack, DecodeError, Decoded, Frame, Hello, Params, Request};
use tandem_core::{varint, SchemaKey, Status};

fn load() -> Value {
    let path = vectors::checked_in_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}; generate it with `{}`", path.display(), vectors::REGENERATE)
    });
    serde_json::from_str(&text).expect("frames.json is JSON")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')), "bad hex {s:?}");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key].as_array().unwrap_or_else(|| panic!("{key} is not a list"))
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} is not an unsigned integer in {v}"))
}

fn u32f(v: &Value, key: &str) -> u32 {
    u32::try_from(u(v, key)).unwrap_or_else(|_| panic!("{key} exceeds 2^32-1 in {v}"))
}

fn bytes(v: &Value, key: &str) -> Vec<u8> {
    unhex(s(v, key))
}

/// SPEC.md §8.1 names, checked against the numeric value.
fn status(v: &Value, key: &str) -> Status {
    let o = &v[key];
    let st = Status(u32f(o, "value"));
    let expected_name = st.info().map(|i| i.0);
    assert_eq!(o["name"].as_str(), expected_name, "status name of {o}");
    st
}

fn total_len(v: &Value, flags: u64) -> Option<u64> {
    let t = v["total_len"].as_u64();
    assert_eq!(t.is_some(), flags & 1 != 0, "total_len is present iff MORE: {v}");
    if t.is_none() {
        assert!(v["total_len"].is_null(), "total_len is a number or null: {v}");
    }
    t
}

fn check_flag_names(v: &Value, names: &[(u64, &str)]) {
    let flags = u(v, "flags");
    let expect: Vec<&str> = names.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect();
    let got: Vec<&str> = list(v, "flag_names").iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(got, expect, "flag_names of {v}");
}

/// The keys each frame type must have, in wire order (SPEC.md §4 names).
fn keys_of(ty: &str) -> &'static [&'static str] {
    const MSG: &[&str] =
        &["flags", "flag_names", "id", "module", "method", "budget_us", "total_len", "payload"];
    match ty {
        "HELLO" => &[
            "magic",
            "min_version",
            "max_version",
            "flags",
            "flag_names",
            "name",
            "auth",
            "session",
            "param_count",
            "params",
        ],
        "CLOSE" => &["status", "message"],
        "GOAWAY" => &["bound", "status", "message"],
        "PING" | "PONG" => &["data"],
        "ACK" => &["count", "ranges"],
        "CALL" | "NOTIFY" | "STREAM_OPEN" => MSG,
        "SIGNAL" => &["module", "method", "payload"],
        "SIGNAL_KEYED" => &["module", "method", "key", "payload"],
        "RESPONSE" => &["flags", "flag_names", "id", "status", "total_len", "payload"],
        "CANCEL" => &["id"],
        "STREAM_DATA" => &["flags", "flag_names", "id", "total_len", "payload"],
        "STREAM_FIN" | "STREAM_RESET" => &["id", "status"],
        "STREAM_CREDIT" => &["id", "msgs", "bytes"],
        "CONN_CREDIT" => &["bytes"],
        "STREAM_RESUME" => &["id", "received_items"],
        "CONTINUATION" => &["flags", "flag_names", "id", "payload"],
        "EXTENSION" => &["body"],
        other => panic!("unknown frame type name {other:?}"),
    }
}

/// SPEC.md §15.1, written out independently of the generator.
const TYPES: &[(u8, &str)] = &[
    (0x01, "HELLO"),
    (0x02, "CLOSE"),
    (0x03, "GOAWAY"),
    (0x04, "PING"),
    (0x05, "PONG"),
    (0x06, "ACK"),
    (0x10, "CALL"),
    (0x11, "NOTIFY"),
    (0x12, "SIGNAL"),
    (0x13, "RESPONSE"),
    (0x14, "CANCEL"),
    (0x15, "SIGNAL_KEYED"),
    (0x18, "STREAM_OPEN"),
    (0x19, "STREAM_DATA"),
    (0x1A, "STREAM_FIN"),
    (0x1B, "STREAM_RESET"),
    (0x1C, "STREAM_CREDIT"),
    (0x1D, "CONN_CREDIT"),
    (0x1E, "STREAM_RESUME"),
    (0x20, "CONTINUATION"),
];

/// SPEC.md §15.4.
const PARAMS: &[&str] = &[
    "max_frame_size",
    "max_message_size",
    "max_concurrent_calls",
    "max_concurrent_streams",
    "stream_credit_msgs",
    "stream_credit_bytes",
    "conn_credit_bytes",
    "keepalive_interval_ms",
    "idle_timeout_ms",
    "max_datagram_size",
    "reply_cache_entries",
    "reply_cache_bytes",
    "features",
];

/// Builds the frame that `j` describes, then checks decode and encode against `wire`.
fn check_valid(id: &str, j: &Value, wire: &[u8]) {
    let ty = s(j, "type");
    let code = u8::try_from(u(j, "type_code")).expect("type_code is a byte");
    match TYPES.iter().find(|t| t.1 == ty) {
        Some(&(c, _)) => assert_eq!(code, c, "{id}: type_code of {ty}"),
        None => assert!(ty == "EXTENSION" && code >= 0x80, "{id}: type {ty} / 0x{code:02x}"),
    }
    let mut want: Vec<&str> = vec!["type", "type_code"];
    want.extend(keys_of(ty));
    // A keyed opening frame (SPEC.md §4.7) has one field more, after `method`.
    let keyed = matches!(ty, "CALL" | "NOTIFY" | "STREAM_OPEN") && u(j, "flags") & 4 != 0;
    if keyed {
        want.push("key");
    }
    let got: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    let (mut want_sorted, mut got_sorted) = (want.clone(), got.clone());
    want_sorted.sort_unstable();
    got_sorted.sort_unstable();
    assert_eq!(got_sorted, want_sorted, "{id}: fields of {ty}");

    let msg_flags = [(1, "MORE"), (2, "FIN"), (4, "KEY")];
    // Owned byte strings the frame borrows; each is assigned in the arm that uses it.
    let payload: Vec<u8>;
    let (name, auth, session, message): (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
    let mut pbuf = [0u8; 64 * 16];
    let mut abuf = [0u8; 64 * 16];
    let request = |j: &Value| -> (u8, u64, u32, u32, u64, Option<u64>) {
        let flags = u(j, "flags");
        (
            u8::try_from(flags).unwrap(),
            u(j, "id"),
            u32f(j, "module"),
            u32f(j, "method"),
            u(j, "budget_us"),
            total_len(j, flags),
        )
    };
    let frame: Frame<'_> = match ty {
        "HELLO" => {
            assert_eq!(s(j, "magic"), "544e444d", "{id}: magic");
            check_flag_names(j, &[(1, "RESUME")]);
            name = bytes(j, "name");
            auth = bytes(j, "auth");
            session = bytes(j, "session");
            let pairs: Vec<(u64, u64)> = list(j, "params")
                .iter()
                .map(|p| {
                    let pid = u(p, "id");
                    let known = usize::try_from(pid).ok().filter(|i| (1..=PARAMS.len()).contains(i));
                    assert_eq!(
                        p["name"].as_str(),
                        known.map(|i| PARAMS[i - 1]),
                        "{id}: name of parameter {pid}"
                    );
                    (pid, u(p, "value"))
                })
                .collect();
            assert_eq!(u(j, "param_count"), pairs.len() as u64, "{id}: param_count");
            let params = Params::encode_into(&pairs, &mut pbuf).expect("parameters are encodable");
            Frame::Hello(Hello {
                min_version: u32f(j, "min_version"),
                max_version: u32f(j, "max_version"),
                flags: u(j, "flags"),
                name: &name,
                auth: &auth,
                session: &session,
                params,
            })
        }
        "CLOSE" => {
            message = bytes(j, "message");
            Frame::Close { status: status(j, "status"), message: &message }
        }
        "GOAWAY" => {
            message = bytes(j, "message");
            Frame::GoAway { bound: u(j, "bound"), status: status(j, "status"), message: &message }
        }
        "PING" | "PONG" => {
            let d: [u8; 8] = bytes(j, "data").try_into().expect("8 bytes of data");
            if ty == "PING" {
                Frame::Ping(d)
            } else {
                Frame::Pong(d)
            }
        }
        "ACK" => {
            let ranges: Vec<(u64, u64)> =
                list(j, "ranges").iter().map(|r| (u(r, "first_id"), u(r, "n"))).collect();
            assert_eq!(u(j, "count"), ranges.len() as u64, "{id}: count");
            Frame::Ack(Ack::encode_into(&ranges, &mut abuf).expect("ranges are encodable"))
        }
        "CALL" | "NOTIFY" | "STREAM_OPEN" => {
            check_flag_names(j, &msg_flags);
            payload = bytes(j, "payload");
            let (flags, xid, module, method, budget_us, total_len) = request(j);
            let r = Request {
                flags: flags & !4,
                id: xid,
                module,
                method,
                budget_us,
                total_len,
                payload: &payload,
            };
            let code = match ty {
                "CALL" => 0x10,
                "NOTIFY" => 0x11,
                _ => 0x18,
            };
            if keyed {
                let key = SchemaKey(bytes(j, "key").try_into().expect("an 8-byte key"));
                Frame::Keyed { ty: code, key, req: r }
            } else {
                match ty {
                    "CALL" => Frame::Call(r),
                    "NOTIFY" => Frame::Notify(r),
                    _ => Frame::StreamOpen(r),
                }
            }
        }
        "SIGNAL" => {
            payload = bytes(j, "payload");
            Frame::Signal { module: u32f(j, "module"), method: u32f(j, "method"), payload: &payload }
        }
        "SIGNAL_KEYED" => {
            payload = bytes(j, "payload");
            let key = SchemaKey(bytes(j, "key").try_into().expect("an 8-byte key"));
            Frame::SignalKeyed {
                module: u32f(j, "module"),
                method: u32f(j, "method"),
                key,
                payload: &payload,
            }
        }
        "RESPONSE" => {
            check_flag_names(j, &msg_flags);
            payload = bytes(j, "payload");
            let flags = u(j, "flags");
            Frame::Response {
                flags: u8::try_from(flags).unwrap(),
                id: u(j, "id"),
                status: status(j, "status"),
                total_len: total_len(j, flags),
                payload: &payload,
            }
        }
        "CANCEL" => Frame::Cancel { id: u(j, "id") },
        "STREAM_DATA" => {
            check_flag_names(j, &msg_flags);
            payload = bytes(j, "payload");
            let flags = u(j, "flags");
            Frame::StreamData {
                flags: u8::try_from(flags).unwrap(),
                id: u(j, "id"),
                total_len: total_len(j, flags),
                payload: &payload,
            }
        }
        "STREAM_FIN" => Frame::StreamFin { id: u(j, "id"), status: status(j, "status") },
        "STREAM_RESET" => Frame::StreamReset { id: u(j, "id"), status: status(j, "status") },
        "STREAM_CREDIT" => {
            Frame::StreamCredit { id: u(j, "id"), msgs: u32f(j, "msgs"), bytes: u32f(j, "bytes") }
        }
        "CONN_CREDIT" => Frame::ConnCredit { bytes: u32f(j, "bytes") },
        "STREAM_RESUME" => Frame::StreamResume { id: u(j, "id"), received: u(j, "received_items") },
        "CONTINUATION" => {
            check_flag_names(j, &msg_flags);
            payload = bytes(j, "payload");
            Frame::Continuation {
                flags: u8::try_from(u(j, "flags")).unwrap(),
                id: u(j, "id"),
                payload: &payload,
            }
        }
        "EXTENSION" => {
            payload = bytes(j, "body");
            Frame::Extension { ty: code, body: &payload }
        }
        other => panic!("{id}: unknown type {other}"),
    };

    // Decode the bytes: one frame, every byte consumed, equal to the description.
    match Frame::decode(wire, vectors::DEFAULT_MAX_FRAME_SIZE) {
        Ok(Decoded::Frame(f, n)) => {
            assert_eq!(n, wire.len(), "{id}: the frame does not span the whole input");
            assert_eq!(f, frame, "{id}: decoded frame differs from its JSON description");
        }
        other => panic!("{id}: does not decode: {other:?}"),
    }
    // Encode the description: exactly the bytes.
    let mut out = vec![0u8; frame.encoded_len()];
    assert_eq!(frame.encode(&mut out), Some(wire.len()), "{id}: encoded length");
    assert_eq!(out, wire, "{id}: encoding of the JSON description differs from hex");
}

fn error_name(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated => "Truncated",
        DecodeError::NonCanonicalVarint => "NonCanonicalVarint",
        DecodeError::ValueOutOfRange => "ValueOutOfRange",
        DecodeError::TrailingBytes => "TrailingBytes",
        DecodeError::UnknownFrameType(_) => "UnknownFrameType",
        DecodeError::FrameTooLarge { .. } => "FrameTooLarge",
        DecodeError::InvalidFlags(_) => "InvalidFlags",
        DecodeError::BadMagic => "BadMagic",
        DecodeError::FieldTooLong => "FieldTooLong",
        DecodeError::ParamOrder => "ParamOrder",
        DecodeError::InvalidLength => "InvalidLength",
    }
}

/// (a) The checked-in file is exactly what the code generates.
#[test]
fn checked_in_file_is_current() {
    let path = vectors::checked_in_path();
    let generated = vectors::render();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != generated {
        let line = on_disk.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or_else(
            || {
                format!(
                    "the files differ in length ({} vs {} lines)",
                    on_disk.lines().count(),
                    generated.lines().count()
                )
            },
            |i| format!("first difference at line {}", i + 1),
        );
        panic!(
            "{} is not what the code generates ({line}).\nIf the codec change is intended, regenerate the file and review the diff:\n  {}",
            path.display(),
            vectors::REGENERATE
        );
    }
}

/// (b) Every valid vector decodes to its description and its description encodes to its bytes.
#[test]
fn valid_vectors_decode_and_encode() {
    let doc = load();
    assert_eq!(s(&doc, "format"), vectors::FORMAT);
    assert_eq!(u(&doc, "protocol_version"), 1);
    assert_eq!(u(&doc, "default_max_frame_size"), 65536);
    let valid = list(&doc, "valid");
    assert!(!valid.is_empty());
    for v in valid {
        let id = s(v, "id");
        check_valid(id, &v["frame"], &unhex(s(v, "hex")));
    }
}

/// (b) Every invalid vector fails to decode with its error and CLOSE status.
#[test]
fn invalid_vectors_fail_with_their_error() {
    let doc = load();
    for v in list(&doc, "invalid") {
        let id = s(v, "id");
        let input = unhex(s(v, "hex"));
        let max = usize::try_from(u(v, "max_frame_size")).unwrap();
        // The input is complete: a frame that needs more bytes is Truncated (SPEC.md §3.7, §3.8).
        let err = match Frame::decode(&input, max) {
            Err(e) => e,
            Ok(Decoded::Incomplete(_)) => DecodeError::Truncated,
            Ok(Decoded::Frame(f, n)) => panic!("{id}: decodes as {f:?} ({n} bytes)"),
        };
        assert_eq!(error_name(&err), s(v, "error"), "{id}: error ({err:?})");
        let close = &v["close_status"];
        let expect_close = if s(v, "error") == "FrameTooLarge" {
            (66, "FRAME_TOO_LARGE")
        } else {
            (65, "FRAME_ENCODING_ERROR")
        };
        assert_eq!((u(close, "value"), s(close, "name")), expect_close, "{id}: close_status");
        assert_eq!(u64::from(err.status().0), expect_close.0, "{id}: DecodeError::status");
    }
}

/// (b) The varint section.
#[test]
fn varint_cases() {
    let doc = load();
    let vs = &doc["varints"];
    for c in list(vs, "canonical") {
        let (value, b) = (u(c, "value"), unhex(s(c, "hex")));
        assert_eq!(varint::decode(&b), Ok((value, b.len())), "{c}");
        let mut out = [0u8; 8];
        let n = varint::encode(value, &mut out);
        assert_eq!(&out[..n], &b[..], "{c}");
    }
    for c in list(vs, "non_canonical") {
        let (value, b) = (u(c, "value"), unhex(s(c, "hex")));
        assert_eq!(varint::decode(&b), Err(DecodeError::NonCanonicalVarint), "{c}");
        // The bytes do carry `value` (QUIC would accept them).
        let raw = b[1..].iter().fold(u64::from(b[0] & 0x3f), |acc, x| (acc << 8) | u64::from(*x));
        assert_eq!(raw, value, "{c}");
        assert!(b.len() > varint::len(value), "{c}");
    }
    for c in list(vs, "truncated") {
        assert_eq!(varint::decode(&unhex(s(c, "hex"))), Err(DecodeError::Truncated), "{c}");
    }
}

/// (c) Every `spec` reference is a section heading of SPEC.md.
#[test]
fn spec_sections_exist() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../SPEC.md")).expect("SPEC.md");
    let sections: BTreeSet<String> = spec
        .lines()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| l.trim_start_matches('#').split_whitespace().next())
        .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(|n| n.trim_end_matches('.').to_owned())
        .collect();
    assert!(sections.contains("4.7") && sections.contains("7.4.2"), "section headings parsed: {sections:?}");
    let doc = load();
    let mut refs = vec![("varints".to_owned(), s(&doc["varints"], "spec").to_owned())];
    for v in list(&doc, "valid").iter().chain(list(&doc, "invalid")) {
        refs.push((s(v, "id").to_owned(), s(v, "spec").to_owned()));
    }
    for (id, sec) in refs {
        assert!(sections.contains(&sec), "{id}: spec section {sec} is not a heading of SPEC.md");
    }
}

/// The worked examples of SPEC.md §2.8 are among the varint vectors, with the same bytes.
#[test]
fn spec_varint_examples_are_vectors() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../SPEC.md")).expect("SPEC.md");
    let start = spec.find("### 2.8 ").expect("SPEC.md §2.8");
    let end = start + spec[start..].find("\n## ").expect("end of §2.8");
    let cells =
        |l: &str| -> Vec<String> { l.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect() };
    let code = |c: &str| c.trim_matches('`').replace(' ', "");
    let doc = load();
    let vs = &doc["varints"];
    let in_list = |key: &str, hex: &str, value: Option<u64>| {
        list(vs, key)
            .iter()
            .any(|c| s(c, "hex") == hex && value.map_or(true, |v| c["value"].as_u64() == Some(v)))
    };
    let (mut canonical, mut rejected) = (0, 0);
    for line in spec[start..end].lines().filter(|l| l.starts_with("| ") && !l.starts_with("| ---")) {
        let c = cells(line);
        if let Some(value) = c[0].split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            assert!(
                in_list("canonical", &code(&c[1]), Some(value)),
                "§2.8 row {line:?} is not a canonical vector"
            );
            canonical += 1;
        } else if c[2] == "`NonCanonicalVarint`" {
            assert!(
                in_list("non_canonical", &code(&c[0]), None),
                "§2.8 row {line:?} is not a non_canonical vector"
            );
            rejected += 1;
        } else if c[2] == "`Truncated`" {
            let hex = code(c[0].split(" (").next().unwrap());
            assert!(in_list("truncated", &hex, None), "§2.8 row {line:?} is not a truncated vector");
            rejected += 1;
        }
    }
    assert!(
        canonical >= 10 && rejected >= 5,
        "parsed {canonical} canonical and {rejected} rejected rows of §2.8"
    );
}

/// Coverage: ids are unique and well-formed; every frame type and every decode error appears.
#[test]
fn coverage() {
    let doc = load();
    let mut ids = BTreeSet::new();
    let mut types = BTreeSet::new();
    for v in list(&doc, "valid") {
        assert!(s(v, "id").starts_with("frame/"), "{}", s(v, "id"));
        assert!(ids.insert(s(v, "id").to_owned()), "duplicate id {}", s(v, "id"));
        types.insert(s(&v["frame"], "type").to_owned());
    }
    let mut all_types: BTreeSet<String> = TYPES.iter().map(|t| t.1.to_owned()).collect();
    all_types.insert("EXTENSION".into());
    assert_eq!(types, all_types, "every frame type has a valid vector");

    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for v in list(&doc, "invalid") {
        assert!(s(v, "id").starts_with("invalid/"), "{}", s(v, "id"));
        assert!(ids.insert(s(v, "id").to_owned()), "duplicate id {}", s(v, "id"));
        *errors.entry(s(v, "error").to_owned()).or_default() += 1;
    }
    let all = [
        "NonCanonicalVarint",
        "FrameTooLarge",
        "UnknownFrameType",
        "Truncated",
        "ValueOutOfRange",
        "InvalidFlags",
        "BadMagic",
        "FieldTooLong",
        "ParamOrder",
        "InvalidLength",
        "TrailingBytes",
    ];
    for e in all {
        assert!(errors.get(e).copied().unwrap_or(0) >= 3, "fewer than 3 vectors for {e}: {errors:?}");
    }
    assert_eq!(errors.len(), all.len(), "unexpected error names: {errors:?}");
}
