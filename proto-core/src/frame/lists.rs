//! The two lists of varint pairs a frame carries, kept as their validated raw encoding: HELLO
//! parameters ([`Params`], SPEC.md §5.4) and ACK ranges ([`Ack`], SPEC.md §4.6).

use super::{DecodeError, Reader, MAX_ACK_RANGES, MAX_PARAMS};
use crate::varint;
use core::fmt;

/// HELLO parameters, kept as their validated raw encoding so unknown ids survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Params<'a> {
    pub(super) count: usize,
    pub(super) raw: &'a [u8],
}

impl<'a> Params<'a> {
    /// No parameters.
    pub const EMPTY: Params<'static> = Params { count: 0, raw: &[] };

    /// Iterates `(id, value)` pairs in increasing id order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { rest: self.raw }
    }

    /// The value of parameter `id`, if present.
    pub fn get(&self, id: u64) -> Option<u64> {
        self.iter().find(|p| p.0 == id).map(|p| p.1)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded pairs (without the count).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// Encodes `pairs` (which must be in strictly increasing id order, each value ≤ 2^62-1) into
    /// `out` and returns the parameter view over it, or `None` if `out` is too small or the
    /// order is wrong.
    pub fn encode_into<'b>(pairs: &[(u64, u64)], out: &'b mut [u8]) -> Option<Params<'b>> {
        if pairs.len() > MAX_PARAMS {
            return None;
        }
        let mut n = 0;
        let mut last = None;
        for &(id, v) in pairs {
            if last.is_some_and(|l| id <= l) || id > varint::MAX || v > varint::MAX {
                return None;
            }
            last = Some(id);
            if out.len() < n + varint::len(id) + varint::len(v) {
                return None;
            }
            n += varint::encode(id, &mut out[n..]);
            n += varint::encode(v, &mut out[n..]);
        }
        Some(Params { count: pairs.len(), raw: &out[..n] })
    }

    pub(super) fn parse(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = r.varint()?;
        if count > MAX_PARAMS as u64 {
            return Err(DecodeError::FieldTooLong);
        }
        let start = r.buf;
        let mut last = None;
        for _ in 0..count {
            // Each field is checked as it is read (SPEC.md §3.3): the id's order before the value.
            let id = r.varint()?;
            if last.is_some_and(|l| id <= l) {
                return Err(DecodeError::ParamOrder);
            }
            last = Some(id);
            r.varint()?;
        }
        let used = start.len() - r.buf.len();
        Ok(Params { count: count as usize, raw: &start[..used] })
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over HELLO parameters.
#[derive(Clone, Debug)]
pub struct ParamIter<'a> {
    pub(super) rest: &'a [u8],
}

impl Iterator for ParamIter<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        let mut r = Reader { buf: self.rest };
        let id = r.varint().ok()?;
        let v = r.varint().ok()?;
        self.rest = r.buf;
        Some((id, v))
    }
}

/// ACK ranges, kept raw and validated.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ack<'a> {
    pub(super) count: usize,
    pub(super) raw: &'a [u8],
}

impl<'a> Ack<'a> {
    /// Iterates `(first_id, n)`: ids `first_id + 2k` for `k < n`.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { rest: self.raw }
    }
    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether there are no ranges.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// Encodes ranges into `out`; `None` if `out` is too small, a range is empty or overflows.
    pub fn encode_into<'b>(ranges: &[(u64, u64)], out: &'b mut [u8]) -> Option<Ack<'b>> {
        if ranges.len() > MAX_ACK_RANGES {
            return None;
        }
        let mut n = 0;
        for &(first, count) in ranges {
            if count == 0 || !ack_range_ok(first, count) {
                return None;
            }
            if out.len() < n + varint::len(first) + varint::len(count) {
                return None;
            }
            n += varint::encode(first, &mut out[n..]);
            n += varint::encode(count, &mut out[n..]);
        }
        Some(Ack { count: ranges.len(), raw: &out[..n] })
    }
}

pub(super) fn ack_range_ok(first: u64, n: u64) -> bool {
    n >= 1
        && (n - 1).checked_mul(2).and_then(|d| first.checked_add(d)).is_some_and(|last| last <= varint::MAX)
}

impl fmt::Debug for Ack<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
