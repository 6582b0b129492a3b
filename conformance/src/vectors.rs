//! Generation of the language-neutral frame vectors, `conformance/vectors/frames.json`.
//!
//! Every vector is produced by the reference codec itself: a valid vector is a
//! [`Frame`](tandem_core::frame::Frame) value written with `Frame::encode` (and read back with
//! `Frame::decode`); an invalid vector is a byte string fed to `Frame::decode`, whose error must
//! be the one the vector intends. A codec change that alters any byte or any outcome therefore
//! changes the generated document, and the test that compares it with the checked-in file fails
//! until the file is regenerated with [`REGENERATE`] (and the change reviewed).
//!
//! The format of the document is described in the crate documentation
//! ([`crate`], section "Frame vectors").
//!
//! The vectors are declared in one file per area, in the order of the document: valid frames in
//! `vectors/valid_connection.rs` (§4.1–§4.6: HELLO, CLOSE, GOAWAY, PING, PONG, ACK),
//! `valid_exchange.rs` (§4.7–§4.11) and `valid_stream.rs` (§4.12–§4.20, Length boundaries, the
//! §9.4 example); invalid inputs in `invalid_encoding.rs` (frame header, §2.2 varints and §2.3
//! bounds in every field of every type, §2.5 flags), `invalid_hello.rs` (§4.1, §5.3–§5.5) and
//! `invalid_body.rs` (§9.2 lengths, ACK ranges, caps, §3.6 exact consumption, §3.3 order). Each
//! vector is one call: `g.ok(id, spec, description, frame)` (or `g.example(…, hex)` for a frame
//! printed in SPEC.md, checked against it) and `g.bad(id, spec, description, bytes, error)`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use tandem_core::frame::DecodeError;
use tandem_core::varint;

mod document;
mod features;
mod generator;
mod invalid_body;
mod invalid_encoding;
mod invalid_hello;
mod json;
mod serial;
mod valid_connection;
mod valid_exchange;
mod valid_stream;

pub use document::{
    Document, InvalidVector, TruncatedVarint, ValidVector, VarintCase, Varints, CHECK,
    DEFAULT_MAX_FRAME_SIZE, FILE, FORMAT, REGENERATE,
};
use generator::{v, vw, Gen, MAXV};
pub use json::{decode_complete, error_name, param_name, to_hex, type_name, Json};
pub use serial::{
    frame as serial_frame, receive as serial_receive, Crc, CrcExample, Dropped, Serial, SerialFrame,
    SerialStream, SERIAL_MAX_DATAGRAM,
};

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

/// Builds the whole document from the code. Panics if the codec does not behave as a vector
/// intends (that is a codec change to review, or a wrong vector).
pub fn generate() -> Document {
    let mut g = Gen { ids: BTreeSet::new(), valid: Vec::new(), invalid: Vec::new() };
    valid_connection::valid_connection_frames(&mut g);
    valid_exchange::valid_exchange_frames(&mut g);
    features::valid_feature_frames(&mut g);
    valid_stream::valid_stream_frames(&mut g);
    valid_stream::valid_lengths(&mut g);
    invalid_encoding::invalid_header(&mut g);
    invalid_encoding::invalid_fields(&mut g);
    features::invalid_feature_frames(&mut g);
    invalid_hello::invalid_hello(&mut g);
    invalid_body::invalid_messages(&mut g);
    invalid_body::invalid_consumption(&mut g);
    invalid_body::invalid_order(&mut g);
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
        serial: serial::serial_vectors(),
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
