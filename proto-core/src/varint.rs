//! Variable-length integers (QUIC style, canonical).
//!
//! The two most significant bits of the first byte give the encoded length (1, 2, 4 or 8 bytes);
//! the other bits hold the value, big-endian. Unlike QUIC, tandem requires the **shortest**
//! encoding: a decoder rejects a longer one, so every value has exactly one encoding.

use crate::frame::DecodeError;

/// Largest value a varint can carry: 2^62 - 1.
pub const MAX: u64 = (1 << 62) - 1;

/// Number of bytes the canonical encoding of `v` takes (1, 2, 4 or 8).
///
/// Values above [`MAX`] are not encodable; callers check with [`MAX`] first.
#[inline]
pub const fn len(v: u64) -> usize {
    if v < (1 << 6) {
        1
    } else if v < (1 << 14) {
        2
    } else if v < (1 << 30) {
        4
    } else {
        8
    }
}

/// Writes `v` at the start of `out` and returns the number of bytes written.
///
/// # Panics
/// Never on valid use: callers size `out` with [`len`] and guarantee `v <= MAX`; this is checked
/// with `debug_assert!` only, since every call site is internal.
#[inline]
pub fn encode(v: u64, out: &mut [u8]) -> usize {
    debug_assert!(v <= MAX);
    match len(v) {
        1 => {
            out[0] = v as u8;
            1
        }
        2 => {
            out[..2].copy_from_slice(&((v as u16) | 0x4000).to_be_bytes());
            2
        }
        4 => {
            out[..4].copy_from_slice(&((v as u32) | 0x8000_0000).to_be_bytes());
            4
        }
        _ => {
            out[..8].copy_from_slice(&(v | 0xC000_0000_0000_0000).to_be_bytes());
            8
        }
    }
}

/// Reads one varint from the start of `buf`.
///
/// Returns the value and the number of bytes used, [`DecodeError::Truncated`] if `buf` ends
/// inside the varint, or [`DecodeError::NonCanonicalVarint`] if a shorter encoding exists.
#[inline]
pub fn decode(buf: &[u8]) -> Result<(u64, usize), DecodeError> {
    let first = *buf.first().ok_or(DecodeError::Truncated)?;
    if first < 0x40 {
        // One byte: most ids, lengths, flags and statuses of small messages.
        return Ok((u64::from(first), 1));
    }
    let n = 1usize << (first >> 6);
    if buf.len() < n {
        return Err(DecodeError::Truncated);
    }
    let mut v = u64::from(first & 0x3F);
    for b in &buf[1..n] {
        v = (v << 8) | u64::from(*b);
    }
    if n > 1 && len(v) != n {
        return Err(DecodeError::NonCanonicalVarint);
    }
    Ok((v, n))
}

/// Like [`decode`], but only the length prefix: how many bytes the varint at the start of `buf`
/// occupies, or `None` if `buf` is empty.
#[inline]
pub fn peek_len(buf: &[u8]) -> Option<usize> {
    buf.first().map(|b| 1usize << (b >> 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::quickcheck;

    #[test]
    fn boundaries() {
        for (v, n) in [
            (0u64, 1usize),
            (63, 1),
            (64, 2),
            (16383, 2),
            (16384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (MAX, 8),
        ] {
            let mut b = [0u8; 8];
            assert_eq!(encode(v, &mut b), n, "value {v}");
            assert_eq!(decode(&b[..n]), Ok((v, n)));
            assert_eq!(decode(&b[..n - 1]), Err(DecodeError::Truncated));
        }
    }

    #[test]
    fn rfc9000_examples() {
        assert_eq!(
            decode(&[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c]),
            Ok((151_288_809_941_952_652, 8))
        );
        assert_eq!(decode(&[0x9d, 0x7f, 0x3e, 0x7d]), Ok((494_878_333, 4)));
        assert_eq!(decode(&[0x7b, 0xbd]), Ok((15_293, 2)));
        assert_eq!(decode(&[0x25]), Ok((37, 1)));
    }

    #[test]
    fn rejects_non_canonical() {
        // RFC 9000 shows 37 encoded in two bytes; tandem forbids it.
        assert_eq!(decode(&[0x40, 0x25]), Err(DecodeError::NonCanonicalVarint));
        assert_eq!(decode(&[0x80, 0, 0, 5]), Err(DecodeError::NonCanonicalVarint));
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
    }

    quickcheck! {
        fn roundtrip(v: u64) -> bool {
            let v = v & MAX;
            let mut b = [0u8; 8];
            let n = encode(v, &mut b);
            n == len(v) && decode(&b[..n]) == Ok((v, n)) && peek_len(&b) == Some(n)
        }
    }
}
