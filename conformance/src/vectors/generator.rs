//! The generator: byte helpers for hand-built input, and [`Gen`], which checks every vector
//! against the reference codec as it records it.

use std::collections::BTreeSet;

use tandem_core::frame::{self, Ack, DecodeError, Frame, Hello, Params, Request};
use tandem_core::varint;

use super::document::{InvalidVector, ValidVector, DEFAULT_MAX_FRAME_SIZE};
use super::json::{decode_complete, error_name, frame_json, status_json, to_hex, unhex};

// Byte helpers for hand-built (invalid) input.

/// Canonical varint.
pub(super) fn v(x: u64) -> Vec<u8> {
    let mut b = [0u8; 8];
    let n = varint::encode(x, &mut b);
    b[..n].to_vec()
}

/// `x` encoded in `width` bytes (1, 2, 4 or 8), canonical or not.
pub(super) fn vw(x: u64, width: usize) -> Vec<u8> {
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
pub(super) fn fr(t: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    out.extend(v(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// Concatenation.
pub(super) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A deterministic, non-repeating-looking payload of `n` bytes.
pub(super) fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// A request (CALL, NOTIFY, STREAM_OPEN) from its fields.
pub(super) fn req<'a>(
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

// The generator.

pub(super) struct Gen {
    pub(super) ids: BTreeSet<String>,
    pub(super) valid: Vec<ValidVector>,
    pub(super) invalid: Vec<InvalidVector>,
}

/// A HELLO described by owned parts (parameters and ranges need an encoding buffer).
pub(super) struct HelloSpec<'a> {
    pub(super) min: u32,
    pub(super) max: u32,
    pub(super) flags: u64,
    pub(super) name: &'a [u8],
    pub(super) auth: &'a [u8],
    pub(super) session: &'a [u8],
    pub(super) params: &'a [(u64, u64)],
}

pub(super) const HELLO_DEFAULT: HelloSpec<'static> =
    HelloSpec { min: 1, max: 1, flags: 0, name: b"", auth: b"", session: b"", params: &[] };

impl Gen {
    pub(super) fn new_id(&mut self, id: &str) {
        assert!(self.ids.insert(id.to_owned()), "duplicate vector id {id}");
    }

    /// A valid vector from a frame value, encoded by the reference encoder. If `spec_hex` is
    /// given (an example printed in SPEC.md), the encoding must equal it.
    pub(super) fn frame(
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

    pub(super) fn ok(&mut self, id: &str, spec: &'static str, description: &str, f: Frame<'_>) {
        self.frame(id, spec, description, f, None);
    }

    pub(super) fn example(
        &mut self,
        id: &str,
        spec: &'static str,
        description: &str,
        f: Frame<'_>,
        spec_hex: &str,
    ) {
        self.frame(id, spec, description, f, Some(spec_hex));
    }

    pub(super) fn hello(
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

    pub(super) fn ack(
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
    pub(super) fn bad_with(
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

    pub(super) fn bad(
        &mut self,
        id: &str,
        spec: &'static str,
        description: &str,
        bytes: Vec<u8>,
        expect: DecodeError,
    ) {
        self.bad_with(id, spec, description, bytes, DEFAULT_MAX_FRAME_SIZE, expect);
    }
}

pub(super) const MAXV: u64 = varint::MAX;
pub(super) const U32: u32 = u32::MAX;
pub(super) const U32P1: u64 = u32::MAX as u64 + 1;
