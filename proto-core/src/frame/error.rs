//! [`DecodeError`]: why bytes could not be decoded as a frame, and the CLOSE status each reason
//! gets (SPEC.md §3.3).

use crate::status::Status;
use core::fmt;

/// Why bytes could not be decoded as a frame. Every variant is connection-fatal on a byte
/// stream (SPEC.md §3.3); the CLOSE status is given by [`DecodeError::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ends inside a field (within a frame whose length said it was complete, or a
    /// datagram that ends mid-frame).
    Truncated,
    /// A varint used a longer encoding than necessary.
    NonCanonicalVarint,
    /// A varint's value does not fit the field (u32 fields, limits).
    ValueOutOfRange,
    /// The body has bytes left after its last field.
    TrailingBytes,
    /// A type code in `0x00..=0x7F` that v1 does not define.
    UnknownFrameType(u8),
    /// The length prefix exceeds the receiver's limit.
    FrameTooLarge {
        /// The length prefix as sent.
        len: u64,
        /// The receiver's limit.
        max: usize,
    },
    /// Flag bits that are undefined for this frame type are set.
    InvalidFlags(u64),
    /// HELLO does not start with `TNDM`.
    BadMagic,
    /// A name, auth, session, reason, parameter or ACK list exceeds its cap.
    FieldTooLong,
    /// HELLO parameters are not in strictly increasing id order (covers duplicates).
    ParamOrder,
    /// A MORE frame's total_len is not larger than the payload it carries, or an ACK range is
    /// empty or overflows the id space.
    InvalidLength,
}

impl DecodeError {
    /// The status a receiver puts in its CLOSE frame for this error.
    pub fn status(self) -> Status {
        match self {
            DecodeError::FrameTooLarge { .. } => Status::FRAME_TOO_LARGE,
            _ => Status::FRAME_ENCODING_ERROR,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("frame truncated: a field runs past the end"),
            DecodeError::NonCanonicalVarint => f.write_str("varint not in its shortest encoding"),
            DecodeError::ValueOutOfRange => f.write_str("varint value out of range for its field"),
            DecodeError::TrailingBytes => f.write_str("frame body has trailing bytes"),
            DecodeError::UnknownFrameType(t) => write!(f, "unknown frame type 0x{t:02x}"),
            DecodeError::FrameTooLarge { len, max } => {
                write!(f, "frame length {len} exceeds the limit of {max} bytes")
            }
            DecodeError::InvalidFlags(b) => write!(f, "invalid flags 0x{b:02x} for this frame type"),
            DecodeError::BadMagic => f.write_str("HELLO magic is not \"TNDM\": not a tandem peer"),
            DecodeError::FieldTooLong => f.write_str("a length-limited field exceeds its cap"),
            DecodeError::ParamOrder => f.write_str("HELLO parameters not in increasing id order"),
            DecodeError::InvalidLength => f.write_str("inconsistent length field"),
        }
    }
}
