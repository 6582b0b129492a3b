//! The JSON form of the vectors: frames as objects with their fields in wire order, names of
//! types, parameters, statuses and decode errors.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use tandem_core::config::param;
use tandem_core::frame::{self, flags, ty, DecodeError, Decoded, Frame, Hello, Request};
use tandem_core::Status;

/// A JSON value whose objects keep their keys in insertion order (wire order for frames).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A non-negative integer (up to 2^62-1 in this document).
    Num(u64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, keys in this order.
    Obj(Vec<(&'static str, Json)>),
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Num(n) => s.serialize_u64(*n),
            Json::Str(t) => s.serialize_str(t),
            Json::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Json::Obj(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

/// The name SPEC.md §3.3 gives a decode error (the variant name of [`DecodeError`]).
pub fn error_name(e: &DecodeError) -> &'static str {
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

/// Decodes `input` as one complete frame, the way the vectors define it: the input is everything
/// there is (a whole datagram, or a byte stream up to its end), so a frame whose header or body
/// would extend past the end is `Truncated` (SPEC.md §3.7, §3.8). Returns the frame and the number
/// of bytes it occupied.
pub fn decode_complete(input: &[u8], max_frame_size: usize) -> Result<(Frame<'_>, usize), DecodeError> {
    match Frame::decode(input, max_frame_size)? {
        Decoded::Frame(f, n) => Ok((f, n)),
        Decoded::Incomplete(_) => Err(DecodeError::Truncated),
    }
}

/// The registered name of a frame type code (SPEC.md §15.1): `Some("CALL")` for 0x10,
/// `Some("EXTENSION")` for 0x80..=0xFF, `None` for a reserved code.
pub fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        ty::HELLO => "HELLO",
        ty::CLOSE => "CLOSE",
        ty::GOAWAY => "GOAWAY",
        ty::PING => "PING",
        ty::PONG => "PONG",
        ty::ACK => "ACK",
        ty::CALL => "CALL",
        ty::NOTIFY => "NOTIFY",
        ty::SIGNAL => "SIGNAL",
        ty::RESPONSE => "RESPONSE",
        ty::CANCEL => "CANCEL",
        ty::SIGNAL_KEYED => "SIGNAL_KEYED",
        ty::STREAM_OPEN => "STREAM_OPEN",
        ty::STREAM_DATA => "STREAM_DATA",
        ty::STREAM_FIN => "STREAM_FIN",
        ty::STREAM_RESET => "STREAM_RESET",
        ty::STREAM_CREDIT => "STREAM_CREDIT",
        ty::CONN_CREDIT => "CONN_CREDIT",
        ty::STREAM_RESUME => "STREAM_RESUME",
        ty::CONTINUATION => "CONTINUATION",
        c if c >= ty::EXTENSION_MIN => "EXTENSION",
        _ => return None,
    })
}

/// The name of a HELLO parameter id (SPEC.md §5.4, §15.4), or `None` for an id v1 does not assign.
pub fn param_name(id: u64) -> Option<&'static str> {
    Some(match id {
        param::MAX_FRAME_SIZE => "max_frame_size",
        param::MAX_MESSAGE_SIZE => "max_message_size",
        param::MAX_CONCURRENT_CALLS => "max_concurrent_calls",
        param::MAX_CONCURRENT_STREAMS => "max_concurrent_streams",
        param::STREAM_CREDIT_MSGS => "stream_credit_msgs",
        param::STREAM_CREDIT_BYTES => "stream_credit_bytes",
        param::CONN_CREDIT_BYTES => "conn_credit_bytes",
        param::KEEPALIVE_INTERVAL_MS => "keepalive_interval_ms",
        param::IDLE_TIMEOUT_MS => "idle_timeout_ms",
        param::MAX_DATAGRAM_SIZE => "max_datagram_size",
        param::REPLY_CACHE_ENTRIES => "reply_cache_entries",
        param::REPLY_CACHE_BYTES => "reply_cache_bytes",
        param::FEATURES => "features",
        _ => return None,
    })
}

/// Lower-case hex without separators.
pub fn to_hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[usize::from(x >> 4)] as char);
        s.push(DIGITS[usize::from(x & 15)] as char);
    }
    s
}

/// Parses hex digits, ignoring spaces (`"10 07 00"`). Panics on anything else: only used on
/// literals in this module.
pub(super) fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|c| *c != b' ').collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).expect("hex digit"))
        .collect()
}

pub(super) fn status_json(s: Status) -> Json {
    Json::Obj(vec![
        ("value", Json::Num(s.0.into())),
        ("name", s.info().map_or(Json::Null, |i| Json::Str(i.0.into()))),
    ])
}

pub(super) fn hex_json(b: &[u8]) -> Json {
    Json::Str(to_hex(b))
}

pub(super) fn flag_names(f: u8) -> Json {
    let mut names = Vec::new();
    if f & flags::MORE != 0 {
        names.push(Json::Str("MORE".into()));
    }
    if f & flags::FIN != 0 {
        names.push(Json::Str("FIN".into()));
    }
    if f & flags::KEY != 0 {
        names.push(Json::Str("KEY".into()));
    }
    Json::Arr(names)
}

pub(super) fn opt(v: Option<u64>) -> Json {
    v.map_or(Json::Null, Json::Num)
}

/// The JSON meaning of a frame, fields in wire order, named as in SPEC.md §4.
pub(super) fn frame_json(f: &Frame<'_>) -> Json {
    let code = f.ty();
    let mut o: Vec<(&'static str, Json)> = vec![
        ("type", Json::Str(type_name(code).expect("assigned type").into())),
        ("type_code", Json::Num(code.into())),
    ];
    let n = Json::Num;
    let request = |o: &mut Vec<(&'static str, Json)>, r: &Request<'_>, key: Option<&[u8]>| {
        let fl = r.flags | if key.is_some() { flags::KEY } else { 0 };
        o.push(("flags", n(fl.into())));
        o.push(("flag_names", flag_names(fl)));
        o.push(("id", n(r.id)));
        o.push(("module", n(r.module.into())));
        o.push(("method", n(r.method.into())));
        if let Some(k) = key {
            o.push(("key", hex_json(k)));
        }
        o.push(("budget_us", n(r.budget_us)));
        o.push(("total_len", opt(r.total_len)));
        o.push(("payload", hex_json(r.payload)));
    };
    match f {
        Frame::Hello(h) => {
            o.push(("magic", hex_json(&frame::MAGIC)));
            o.push(("min_version", n(h.min_version.into())));
            o.push(("max_version", n(h.max_version.into())));
            o.push(("flags", n(h.flags)));
            let resume = if h.flags & Hello::RESUME != 0 { vec![Json::Str("RESUME".into())] } else { vec![] };
            o.push(("flag_names", Json::Arr(resume)));
            o.push(("name", hex_json(h.name)));
            o.push(("auth", hex_json(h.auth)));
            o.push(("session", hex_json(h.session)));
            o.push(("param_count", n(h.params.len() as u64)));
            let params = h
                .params
                .iter()
                .map(|(id, value)| {
                    Json::Obj(vec![
                        ("id", n(id)),
                        ("name", param_name(id).map_or(Json::Null, |s| Json::Str(s.into()))),
                        ("value", n(value)),
                    ])
                })
                .collect();
            o.push(("params", Json::Arr(params)));
        }
        Frame::Close { status, message } => {
            o.push(("status", status_json(*status)));
            o.push(("message", hex_json(message)));
        }
        Frame::GoAway { bound, status, message } => {
            o.push(("bound", n(*bound)));
            o.push(("status", status_json(*status)));
            o.push(("message", hex_json(message)));
        }
        Frame::Ping(d) | Frame::Pong(d) => o.push(("data", hex_json(d))),
        Frame::Ack(a) => {
            o.push(("count", n(a.len() as u64)));
            let ranges = a
                .iter()
                .map(|(first_id, count)| Json::Obj(vec![("first_id", n(first_id)), ("n", n(count))]))
                .collect();
            o.push(("ranges", Json::Arr(ranges)));
        }
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => request(&mut o, r, None),
        Frame::Keyed { key, req, .. } => request(&mut o, req, Some(&key.0)),
        Frame::Signal { module, method, payload } => {
            o.push(("module", n((*module).into())));
            o.push(("method", n((*method).into())));
            o.push(("payload", hex_json(payload)));
        }
        Frame::SignalKeyed { module, method, key, payload } => {
            o.push(("module", n((*module).into())));
            o.push(("method", n((*method).into())));
            o.push(("key", hex_json(&key.0)));
            o.push(("payload", hex_json(payload)));
        }
        Frame::Response { flags, id, status, total_len, payload } => {
            o.push(("flags", n((*flags).into())));
            o.push(("flag_names", flag_names(*flags)));
            o.push(("id", n(*id)));
            o.push(("status", status_json(*status)));
            o.push(("total_len", opt(*total_len)));
            o.push(("payload", hex_json(payload)));
        }
        Frame::Cancel { id } => o.push(("id", n(*id))),
        Frame::StreamData { flags, id, total_len, payload } => {
            o.push(("flags", n((*flags).into())));
            o.push(("flag_names", flag_names(*flags)));
            o.push(("id", n(*id)));
            o.push(("total_len", opt(*total_len)));
            o.push(("payload", hex_json(payload)));
        }
        Frame::StreamFin { id, status } | Frame::StreamReset { id, status } => {
            o.push(("id", n(*id)));
            o.push(("status", status_json(*status)));
        }
        Frame::StreamCredit { id, msgs, bytes } => {
            o.push(("id", n(*id)));
            o.push(("msgs", n((*msgs).into())));
            o.push(("bytes", n((*bytes).into())));
        }
        Frame::ConnCredit { bytes } => o.push(("bytes", n((*bytes).into()))),
        Frame::StreamResume { id, received } => {
            o.push(("id", n(*id)));
            o.push(("received_items", n(*received)));
        }
        Frame::Continuation { flags, id, payload } => {
            o.push(("flags", n((*flags).into())));
            o.push(("flag_names", flag_names(*flags)));
            o.push(("id", n(*id)));
            o.push(("payload", hex_json(payload)));
        }
        Frame::Extension { body, .. } => o.push(("body", hex_json(body))),
    }
    Json::Obj(o)
}
