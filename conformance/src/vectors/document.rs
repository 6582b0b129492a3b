//! The vector document: its constants and the types of its parts, serialized as
//! `conformance/vectors/frames.json`.

use serde::Serialize;

use super::json::Json;

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
    /// The serial-link framing (SPEC.md §14.9).
    pub serial: super::Serial,
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
