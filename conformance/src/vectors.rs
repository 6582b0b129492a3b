//! Generation of the language-neutral frame vectors, `conformance/vectors/frames.json`.
//!
//! Every vector is produced by the reference codec itself: a valid vector is a [`Frame`] value
//! written with [`Frame::encode`] (and read back with [`Frame::decode`]); an invalid vector is a
//! byte string fed to [`Frame::decode`], whose error must be the one the vector intends. A codec
//! change that alters any byte or any outcome therefore changes the generated document, and the
//! test that compares it with the checked-in file fails until the file is regenerated with
//! [`REGENERATE`] (and the change reviewed).
//!
//! The format of the document is described in the crate documentation
//! ([`crate`], section "Frame vectors").

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use tandem_core::config::param;
use tandem_core::frame::{self, flags, ty, Ack, DecodeError, Decoded, Frame, Hello, Params, Request};
use tandem_core::{varint, Status};

/// The value of the document's `format` field. Bumped when the layout of the document changes
/// incompatibly (not when vectors are added).
pub const FORMAT: &str = "tandem-frame-vectors/1";

/// The command that regenerates the checked-in file from the code.
pub const REGENERATE: &str = "cargo run -p tandem-conformance --bin tandem-vectors -- write";

/// The command that checks the checked-in file against the code.
pub const CHECK: &str = "cargo run -p tandem-conformance --bin tandem-vectors -- check";

/// Path of the vector file relative to the `conformance/` crate directory.
pub const FILE: &str = "vectors/frames.json";

/// The frame size limit (`max_frame_size`, SPEC.md §3.4) that decoders use for every vector that
/// does not state another one: the protocol default, 65536.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 65536;

/// Absolute path of the checked-in vector file in this source tree.
pub fn checked_in_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(FILE)
}

/// The whole vector document, exactly as written to [`FILE`].
///
/// Deterministic: the same code always produces the same bytes (pretty-printed JSON with a fixed
/// key order, two-space indentation and a final newline).
pub fn render() -> String {
    render_document(&generate())
}

/// `doc` as written to [`FILE`]; see [`render`].
pub fn render_document(doc: &Document) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("the vector document serializes");
    s.push('\n');
    s
}

/// The vector document; see the crate documentation for the meaning of every field.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    /// [`FORMAT`].
    pub format: &'static str,
    /// The wire protocol version the vectors describe (1).
    pub protocol_version: u32,
    /// What produced the document.
    pub generated_by: &'static str,
    /// [`REGENERATE`].
    pub regenerate: &'static str,
    /// [`CHECK`].
    pub check: &'static str,
    /// The normative document that the `spec` fields cite.
    pub spec: &'static str,
    /// [`DEFAULT_MAX_FRAME_SIZE`].
    pub default_max_frame_size: usize,
    /// Varint encodings (SPEC.md §2.1, §2.2, §2.8).
    pub varints: Varints,
    /// Frames that decode; each with its meaning.
    pub valid: Vec<ValidVector>,
    /// Byte strings that do not decode; each with the decode error it must produce.
    pub invalid: Vec<InvalidVector>,
}

/// The `varints` section.
#[derive(Clone, Debug, Serialize)]
pub struct Varints {
    /// The spec section these cases test.
    pub spec: &'static str,
    /// Canonical encodings: decoding `hex` gives `value`, encoding `value` gives `hex`.
    pub canonical: Vec<VarintCase>,
    /// Over-long encodings of `value`: decoding `hex` MUST fail with `NonCanonicalVarint`.
    pub non_canonical: Vec<VarintCase>,
    /// Encodings cut short: decoding exactly these bytes MUST fail with `Truncated`.
    pub truncated: Vec<TruncatedVarint>,
}

/// One varint and its encoding.
#[derive(Clone, Debug, Serialize)]
pub struct VarintCase {
    /// The value (0..=2^62-1).
    pub value: u64,
    /// The bytes, lower-case hex without separators.
    pub hex: String,
}

/// An encoding that ends before the length its first byte announces.
#[derive(Clone, Debug, Serialize)]
pub struct TruncatedVarint {
    /// The bytes, lower-case hex without separators.
    pub hex: String,
}

/// A frame that decodes.
#[derive(Clone, Debug, Serialize)]
pub struct ValidVector {
    /// Stable identifier, `frame/<type>/<case>`.
    pub id: String,
    /// The SPEC.md section that defines what the vector tests (`4.7`).
    pub spec: &'static str,
    /// What the vector shows.
    pub description: String,
    /// The complete frame (type, length, body), lower-case hex without separators.
    pub hex: String,
    /// The decoded meaning.
    pub frame: Json,
}

/// Bytes that do not decode.
#[derive(Clone, Debug, Serialize)]
pub struct InvalidVector {
    /// Stable identifier, `invalid/<type>/<case>`.
    pub id: String,
    /// The SPEC.md section that requires the error.
    pub spec: &'static str,
    /// What is wrong with the bytes.
    pub description: String,
    /// The complete input, lower-case hex without separators.
    pub hex: String,
    /// The decoder's frame size limit for this vector.
    pub max_frame_size: usize,
    /// The `DecodeError` name of SPEC.md §3.3.
    pub error: &'static str,
    /// The status of the CLOSE frame that the error leads to on a byte stream.
    pub close_status: Json,
}

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
fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|c| *c != b' ').collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in {s:?}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(core::str::from_utf8(p).unwrap(), 16).expect("hex digit"))
        .collect()
}

fn status_json(s: Status) -> Json {
    Json::Obj(vec![
        ("value", Json::Num(s.0.into())),
        ("name", s.info().map_or(Json::Null, |i| Json::Str(i.0.into()))),
    ])
}

fn hex_json(b: &[u8]) -> Json {
    Json::Str(to_hex(b))
}

fn flag_names(f: u8) -> Json {
    let mut names = Vec::new();
    if f & flags::MORE != 0 {
        names.push(Json::Str("MORE".into()));
    }
    if f & flags::FIN != 0 {
        names.push(Json::Str("FIN".into()));
    }
    Json::Arr(names)
}

fn opt(v: Option<u64>) -> Json {
    v.map_or(Json::Null, Json::Num)
}

/// The JSON meaning of a frame, fields in wire order, named as in SPEC.md §4.
fn frame_json(f: &Frame<'_>) -> Json {
    let code = f.ty();
    let mut o: Vec<(&'static str, Json)> = vec![
        ("type", Json::Str(type_name(code).expect("assigned type").into())),
        ("type_code", Json::Num(code.into())),
    ];
    let n = Json::Num;
    let request = |o: &mut Vec<(&'static str, Json)>, r: &Request<'_>| {
        o.push(("flags", n(r.flags.into())));
        o.push(("flag_names", flag_names(r.flags)));
        o.push(("id", n(r.id)));
        o.push(("module", n(r.module.into())));
        o.push(("method", n(r.method.into())));
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
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => request(&mut o, r),
        Frame::Signal { module, method, payload } => {
            o.push(("module", n((*module).into())));
            o.push(("method", n((*method).into())));
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

// ---------------------------------------------------------------------------------------------
// Byte helpers for hand-built (invalid) input.

/// Canonical varint.
fn v(x: u64) -> Vec<u8> {
    let mut b = [0u8; 8];
    let n = varint::encode(x, &mut b);
    b[..n].to_vec()
}

/// `x` encoded in `width` bytes (1, 2, 4 or 8), canonical or not.
fn vw(x: u64, width: usize) -> Vec<u8> {
    let prefix: u64 = match width {
        1 => 0,
        2 => 1,
        4 => 2,
        8 => 3,
        _ => panic!("varint width {width}"),
    };
    let bits = width * 8 - 2;
    assert!(x < (1u64 << bits), "{x} does not fit {width} bytes");
    let whole = (prefix << (width * 8 - 2)) | x;
    whole.to_be_bytes()[8 - width..].to_vec()
}

/// A frame with a canonical header around `body`.
fn fr(t: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    out.extend(v(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// Concatenation.
fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A deterministic, non-repeating-looking payload of `n` bytes.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn req<'a>(
    flags: u8,
    id: u64,
    module: u32,
    method: u32,
    budget_us: u64,
    total_len: Option<u64>,
    payload: &'a [u8],
) -> Request<'a> {
    Request { flags, id, module, method, budget_us, total_len, payload }
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Gen {
    ids: BTreeSet<String>,
    valid: Vec<ValidVector>,
    invalid: Vec<InvalidVector>,
}

/// A HELLO described by owned parts (parameters and ranges need an encoding buffer).
struct HelloSpec<'a> {
    min: u32,
    max: u32,
    flags: u64,
    name: &'a [u8],
    auth: &'a [u8],
    session: &'a [u8],
    params: &'a [(u64, u64)],
}

const HELLO_DEFAULT: HelloSpec<'static> =
    HelloSpec { min: 1, max: 1, flags: 0, name: b"", auth: b"", session: b"", params: &[] };

impl Gen {
    fn new_id(&mut self, id: &str) {
        assert!(self.ids.insert(id.to_owned()), "duplicate vector id {id}");
    }

    /// A valid vector from a frame value, encoded by the reference encoder. If `spec_hex` is
    /// given (an example printed in SPEC.md), the encoding must equal it.
    fn frame(
        &mut self,
        id: &str,
        spec: &'static str,
        description: &str,
        f: Frame<'_>,
        spec_hex: Option<&str>,
    ) {
        self.new_id(id);
        let mut bytes = vec![0u8; f.encoded_len()];
        let n = f.encode(&mut bytes).expect("buffer sized by encoded_len");
        assert_eq!(n, bytes.len(), "{id}: encode wrote {n} of {} bytes", bytes.len());
        if let Some(h) = spec_hex {
            assert_eq!(to_hex(&bytes), to_hex(&unhex(h)), "{id}: the encoder disagrees with SPEC.md §{spec}");
        }
        match decode_complete(&bytes, DEFAULT_MAX_FRAME_SIZE) {
            Ok((back, used)) => {
                assert_eq!(used, bytes.len(), "{id}: decode used {used} of {} bytes", bytes.len());
                assert_eq!(back, f, "{id}: decode(encode(f)) != f");
            }
            Err(e) => panic!("{id}: the reference decoder rejects its own encoding: {e:?}"),
        }
        self.valid.push(ValidVector {
            id: id.into(),
            spec,
            description: description.into(),
            hex: to_hex(&bytes),
            frame: frame_json(&f),
        });
    }

    fn ok(&mut self, id: &str, spec: &'static str, description: &str, f: Frame<'_>) {
        self.frame(id, spec, description, f, None);
    }

    fn example(&mut self, id: &str, spec: &'static str, description: &str, f: Frame<'_>, spec_hex: &str) {
        self.frame(id, spec, description, f, Some(spec_hex));
    }

    fn hello(
        &mut self,
        id: &str,
        spec: &'static str,
        description: &str,
        h: HelloSpec<'_>,
        spec_hex: Option<&str>,
    ) {
        let mut buf = [0u8; frame::MAX_PARAMS * 16];
        let params = Params::encode_into(h.params, &mut buf).expect("valid parameter list");
        let f = Frame::Hello(Hello {
            min_version: h.min,
            max_version: h.max,
            flags: h.flags,
            name: h.name,
            auth: h.auth,
            session: h.session,
            params,
        });
        self.frame(id, spec, description, f, spec_hex);
    }

    fn ack(
        &mut self,
        id: &str,
        spec: &'static str,
        description: &str,
        ranges: &[(u64, u64)],
        spec_hex: Option<&str>,
    ) {
        let mut buf = [0u8; frame::MAX_ACK_RANGES * 16];
        let a = Ack::encode_into(ranges, &mut buf).expect("valid ACK ranges");
        self.frame(id, spec, description, Frame::Ack(a), spec_hex);
    }

    /// An invalid vector: the reference decoder, limit `max`, must fail on `bytes` with exactly
    /// `expect`.
    fn bad_with(
        &mut self,
        id: &str,
        spec: &'static str,
        description: &str,
        bytes: Vec<u8>,
        max: usize,
        expect: DecodeError,
    ) {
        self.new_id(id);
        match decode_complete(&bytes, max) {
            Err(e) if e == expect => {}
            Err(e) => panic!("{id}: the decoder reports {e:?}, the vector intends {expect:?}"),
            Ok((f, _)) => {
                panic!("{id}: the decoder accepts the bytes ({f:?}), the vector intends {expect:?}")
            }
        }
        self.invalid.push(InvalidVector {
            id: id.into(),
            spec,
            description: description.into(),
            hex: to_hex(&bytes),
            max_frame_size: max,
            error: error_name(&expect),
            close_status: status_json(expect.status()),
        });
    }

    fn bad(&mut self, id: &str, spec: &'static str, description: &str, bytes: Vec<u8>, expect: DecodeError) {
        self.bad_with(id, spec, description, bytes, DEFAULT_MAX_FRAME_SIZE, expect);
    }
}

const MAXV: u64 = varint::MAX;
const U32: u32 = u32::MAX;
const U32P1: u64 = u32::MAX as u64 + 1;

/// Builds the whole document from the code. Panics if the codec does not behave as a vector
/// intends (that is a codec change to review, or a wrong vector).
pub fn generate() -> Document {
    let mut g = Gen { ids: BTreeSet::new(), valid: Vec::new(), invalid: Vec::new() };
    valid_connection_frames(&mut g);
    valid_exchange_frames(&mut g);
    valid_stream_frames(&mut g);
    valid_lengths(&mut g);
    invalid_header(&mut g);
    invalid_fields(&mut g);
    invalid_hello(&mut g);
    invalid_messages(&mut g);
    invalid_consumption(&mut g);
    invalid_order(&mut g);
    Document {
        format: FORMAT,
        protocol_version: tandem_core::config::VERSION,
        generated_by: "tandem_conformance::vectors::generate (conformance/src/vectors.rs), from the \
                       tandem-core codec",
        regenerate: REGENERATE,
        check: CHECK,
        spec: "SPEC.md, tandem wire protocol, version 1",
        default_max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        varints: varints(),
        valid: g.valid,
        invalid: g.invalid,
    }
}

fn varints() -> Varints {
    const CANONICAL: &[u64] = &[
        0,
        1,
        37,
        63,
        64,
        300,
        15293,
        16383,
        16384,
        65536,
        494_878_333,
        (1 << 30) - 1,
        1 << 30,
        u32::MAX as u64,
        1 << 32,
        151_288_809_941_952_652,
        MAXV,
    ];
    let canonical = CANONICAL
        .iter()
        .map(|&value| {
            let b = v(value);
            assert_eq!(varint::decode(&b), Ok((value, b.len())), "canonical varint {value}");
            VarintCase { value, hex: to_hex(&b) }
        })
        .collect();
    // Every boundary value in every longer form, plus the examples of SPEC.md §2.8 (5, 37).
    let mut non_canonical = Vec::new();
    for &value in &[0u64, 5, 37, 63, 64, 16383, 16384, (1 << 30) - 1] {
        for width in [2usize, 4, 8] {
            if width > varint::len(value) {
                let b = vw(value, width);
                assert_eq!(varint::decode(&b), Err(DecodeError::NonCanonicalVarint), "{}", to_hex(&b));
                non_canonical.push(VarintCase { value, hex: to_hex(&b) });
            }
        }
    }
    let truncated = [&[0x40][..], &[0x7f], &[0x80, 0x00, 0x40], &[0xbf, 0xff], &[0xc0], &[0xff; 7]]
        .iter()
        .map(|b| {
            assert_eq!(varint::decode(b), Err(DecodeError::Truncated), "{}", to_hex(b));
            TruncatedVarint { hex: to_hex(b) }
        })
        .collect();
    Varints { spec: "2.8", canonical, non_canonical, truncated }
}

fn valid_connection_frames(g: &mut Gen) {
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
        "HELLO with parameter ids v1 does not assign (0, 13, 16383, 16384, 2^62-1) around a known one: they decode and are kept; receivers ignore them.",
        HelloSpec {
            params: &[(0, 7), (param::MAX_FRAME_SIZE, 4096), (13, 0), (16383, 64), (16384, 16383), (MAXV, MAXV)],
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

fn valid_exchange_frames(g: &mut Gen) {
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

fn valid_stream_frames(g: &mut Gen) {
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
fn valid_lengths(g: &mut Gen) {
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

fn invalid_header(g: &mut Gen) {
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
    for t in [0x00u8, 0x07, 0x0f, 0x15, 0x17, 0x1f, 0x21, 0x7f] {
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

fn invalid_fields(g: &mut Gen) {
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
    fl(g, "invalid/call/bit-0x04", "CALL with reserved bit 0x04.", ty::CALL, vec![4, 4, 1, 2, 0]);
    fl(g, "invalid/notify/bit-0x80", "NOTIFY with reserved bit 0x80.", ty::NOTIFY, vec![0x80, 2, 5, 1, 0]);
    fl(g, "invalid/response/fin", "RESPONSE with FIN.", ty::RESPONSE, vec![2, 4, 0]);
    fl(
        g,
        "invalid/stream-open/bit-0x04",
        "STREAM_OPEN with MORE|FIN|0x04 (0x07).",
        ty::STREAM_OPEN,
        vec![7, 1, 2, 3, 0, 5],
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

fn hello_body(flags: &[u8], name: &[u8], auth: &[u8], session: &[u8], params: &[u8]) -> Vec<u8> {
    cat(&[b"TNDM", &[1, 1], flags, name, auth, session, params])
}

fn invalid_hello(g: &mut Gen) {
    use DecodeError::*;
    let e: &[u8] = &[0];
    let h = |g: &mut Gen, id: &str, spec: &'static str, desc: &str, body: Vec<u8>, err: DecodeError| {
        g.bad(id, spec, desc, fr(ty::HELLO, &body), err)
    };
    // Magic.
    h(
        g,
        "invalid/hello/bad-magic-tndn",
        "5.3",
        "HELLO whose magic is TNDN.",
        cat(&[b"TNDN", &[1, 1, 0, 0, 0, 0, 0]]),
        BadMagic,
    );
    h(
        g,
        "invalid/hello/bad-magic-lowercase",
        "5.3",
        "HELLO whose magic is tndm (lower case).",
        cat(&[b"tndm", &[1, 1, 0, 0, 0, 0, 0]]),
        BadMagic,
    );
    h(g, "invalid/hello/bad-magic-zeros", "5.3", "HELLO whose body is 11 zero bytes.", vec![0; 11], BadMagic);
    h(
        g,
        "invalid/hello/bad-magic-http",
        "5.3",
        "HELLO type byte followed by \"HTTP/1.1 ...\" text.",
        b"HTTP/1.1 400".to_vec(),
        BadMagic,
    );
    h(
        g,
        "invalid/hello/magic-cut",
        "3.6",
        "HELLO body of 2 bytes (TN): the fixed(4) magic runs past the body, Truncated before any comparison.",
        b"TN".to_vec(),
        Truncated,
    );
    // Flags (a varint).
    h(
        g,
        "invalid/hello/flag-0x02",
        "5.5",
        "HELLO with reserved flag bit 0x02.",
        hello_body(&[2], e, e, e, e),
        InvalidFlags(2),
    );
    h(
        g,
        "invalid/hello/flags-resume-and-0x20",
        "5.5",
        "HELLO with flags 0x21 (RESUME plus a reserved bit).",
        hello_body(&[0x21], e, e, e, e),
        InvalidFlags(0x21),
    );
    h(
        g,
        "invalid/hello/flags-max-varint",
        "5.5",
        "HELLO with flags 2^62-1.",
        hello_body(&v(MAXV), e, e, e, e),
        InvalidFlags(MAXV),
    );
    // Field caps.
    let name256 = cat(&[&v(256), &[b'n'; 256]]);
    h(
        g,
        "invalid/hello/name-256",
        "4.1",
        "HELLO name of 256 bytes (cap 255).",
        hello_body(&[0], &name256, e, e, e),
        FieldTooLong,
    );
    h(g, "invalid/hello/name-length-only", "3.3", "HELLO name length 256 with no name bytes: FieldTooLong as soon as the length is read, not Truncated.", hello_body(&[0], &v(256), &[], &[], &[]), FieldTooLong);
    h(
        g,
        "invalid/hello/name-length-max-varint",
        "4.1",
        "HELLO name length 2^62-1.",
        hello_body(&[0], &v(MAXV), &[], &[], &[]),
        FieldTooLong,
    );
    let auth1025 = cat(&[&v(1025), &pattern(1025)]);
    h(
        g,
        "invalid/hello/auth-1025",
        "4.1",
        "HELLO auth of 1025 bytes (cap 1024).",
        hello_body(&[0], e, &auth1025, e, e),
        FieldTooLong,
    );
    let session65 = cat(&[&v(65), &[0x5a; 65]]);
    h(
        g,
        "invalid/hello/session-65",
        "4.1",
        "HELLO session of 65 bytes (cap 64).",
        hello_body(&[0], e, e, &session65, e),
        FieldTooLong,
    );
    let mut p65 = v(65);
    for i in 0..65u64 {
        p65.extend(v(i));
        p65.push(0);
    }
    h(
        g,
        "invalid/hello/65-parameters",
        "5.4",
        "HELLO param_count 65 (cap 64), with 65 well-ordered pairs.",
        hello_body(&[0], e, e, e, &p65),
        FieldTooLong,
    );
    h(
        g,
        "invalid/hello/param-count-max-varint",
        "5.4",
        "HELLO param_count 2^62-1 and no pairs: FieldTooLong as soon as the count is read.",
        hello_body(&[0], e, e, e, &v(MAXV)),
        FieldTooLong,
    );
    // Parameter order.
    h(
        g,
        "invalid/hello/param-duplicate",
        "5.4",
        "HELLO listing parameter 1 twice.",
        hello_body(&[0], e, e, e, &cat(&[&[2], &[1], &vw(65536, 4), &[1], &vw(65536, 4)])),
        ParamOrder,
    );
    h(
        g,
        "invalid/hello/param-decreasing",
        "5.4",
        "HELLO listing parameter 8 before parameter 1.",
        hello_body(&[0], e, e, e, &cat(&[&[2, 8], &vw(5000, 2), &[1], &vw(65536, 4)])),
        ParamOrder,
    );
    h(
        g,
        "invalid/hello/param-zero-twice",
        "5.4",
        "HELLO listing the reserved id 0 twice.",
        hello_body(&[0], e, e, e, &[2, 0, 0, 0, 0]),
        ParamOrder,
    );
    h(
        g,
        "invalid/hello/param-decreasing-long-ids",
        "5.4",
        "HELLO listing extension id 2^62-1 before extension id 16384.",
        hello_body(&[0], e, e, e, &cat(&[&[2], &v(MAXV), &[0], &v(16384), &[0]])),
        ParamOrder,
    );
    let mut p64 = v(64);
    for i in 0..63u64 {
        p64.extend(v(i + 1));
        p64.push(0);
    }
    p64.extend(v(63));
    p64.push(0);
    h(
        g,
        "invalid/hello/param-last-of-64-duplicate",
        "5.4",
        "HELLO with 64 parameters, ids 1..=63 then 63 again: the 64th pair breaks the order.",
        hello_body(&[0], e, e, e, &p64),
        ParamOrder,
    );
    // Truncation inside HELLO.
    h(
        g,
        "invalid/hello/magic-only",
        "3.6",
        "HELLO body TNDM only: min_version missing.",
        b"TNDM".to_vec(),
        Truncated,
    );
    h(
        g,
        "invalid/hello/name-cut",
        "3.6",
        "HELLO name length 3 with 2 name bytes at the end of the body.",
        hello_body(&[0], &[3, b'c', b'l'], &[], &[], &[]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/params-cut",
        "3.6",
        "HELLO param_count 2 with only one pair.",
        hello_body(&[0], e, e, e, &[2, 3, 16]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/param-value-missing",
        "3.6",
        "HELLO param_count 1, id 3 and no value.",
        hello_body(&[0], e, e, e, &[1, 3]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/no-param-count",
        "3.6",
        "HELLO body ends after the session field.",
        hello_body(&[0], e, e, e, &[]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/trailing",
        "3.6",
        "HELLO with one byte after the last parameter.",
        hello_body(&[0], e, e, e, &[1, 3, 16, 0]),
        TrailingBytes,
    );
}

fn invalid_messages(g: &mut Gen) {
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

fn invalid_consumption(g: &mut Gen) {
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
fn invalid_order(g: &mut Gen) {
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
        "Reserved type 0x15 whose body is a non-canonical varint: the body of an unknown type is never parsed.",
        fr(0x15, &vw(1, 2)),
        UnknownFrameType(0x15),
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
