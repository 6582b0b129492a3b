//! Serial links (SPEC.md §14.9): datagram mode over a byte line that loses, corrupts and
//! duplicates bytes — a UART, RS-485, USB-CDC.
//!
//! Each **serial frame** carries exactly one datagram of datagram mode (SPEC.md §14):
//!
//! ```text
//! COBS( datagram ‖ CRC-32C(datagram), 4 bytes little-endian ) ‖ 0x00
//! ```
//!
//! The delimiter 0x00 never occurs inside a COBS-encoded frame, so a receiver that lost its
//! place (a dropped, inserted or corrupted byte) finds the next frame at the next 0x00. The CRC
//! drops what COBS cannot see. Every guarantee beyond "a frame that arrives is intact" —
//! retransmission, duplicate suppression, exactly-once answers — comes from datagram mode, which
//! already works over a network that loses, duplicates and reorders whole datagrams; a serial
//! line is such a network once its frames are checked.
//!
//! This module is sans-IO like the rest of the core: [`encode`] writes one frame into a caller
//! buffer, and a [`Decoder`] consumes bytes in whatever chunks the line delivers and yields
//! whole, checked datagrams, dropping and counting ([`SerialStats`]) the frames that are
//! corrupted, cut short or too long. A driver moves datagrams between it and a
//! [`Connection`](crate::Connection) configured with
//! [`Transport::Datagram`](crate::Transport::Datagram):
//!
//! ```
//! use tandem_core::serial::{self, Decoder};
//! # let line_bytes: &[u8] = &[];
//! # let mut deliver = |_datagram: &[u8]| {};
//! // Receiving: a buffer for the largest datagram accepted plus its CRC.
//! let mut decoder = Decoder::new([0u8; serial::buffer_len(1200)]);
//! let mut input = line_bytes;
//! while !input.is_empty() {
//!     let (used, datagram) = decoder.push(input);
//!     if let Some(d) = datagram {
//!         deliver(d); // e.g. `conn.handle_input(now, d)`, then drain `poll_event`
//!     }
//!     input = &input[used..];
//! }
//! // Sending: each datagram from `poll_transmit` becomes one frame.
//! let mut wire = [0u8; serial::encoded_len(1200)];
//! let n = serial::encode(b"one datagram", &mut wire).unwrap();
//! assert_eq!(wire[n - 1], serial::DELIMITER);
//! ```
//!
//! **Why COBS** (Consistent Overhead Byte Stuffing): at most one byte of overhead per 254, a
//! delimiter that cannot occur inside a frame (unlike SLIP or HDLC escaping, whose worst case
//! doubles the frame), and resynchronisation at the very next frame. It is what postcard-rpc
//! uses on serial links. The encoding and the byte-level decoding state machine are the `cobs`
//! crate's (already a dependency of postcard); its buffer-less `DecoderState` lets this module
//! own the buffer, bound a frame's size and skip the rest of an oversized frame without storing it.
//!
//! **Why CRC-32C** (Castagnoli, reflected polynomial 0x82F63B78, as in iSCSI, SCTP and ext4): a
//! datagram is up to `max_datagram_size` bytes, 1200 by default and often several KiB. A 16-bit
//! CRC lets one corrupted frame in 65,536 through, and a frame that passes its CRC is believed by
//! the protocol; on a noisy line carrying millions of frames that is not rare enough. CRC-32C
//! detects all errors of up to 5 bits in frames up to 655 bytes and all 3-bit errors (Hamming
//! distance 4) up to 2^31 bits, better than the IEEE CRC-32 at these lengths, and lets one
//! corrupted frame in 2^32 through. It is computed bitwise (the `crc` crate's `NoTable`): no
//! 1 KiB table in a firmware image, and still far faster than any serial line.

use cobs::{DecodeResult, DecoderState};

#[cfg(test)]
mod tests;

/// The frame delimiter: the byte COBS removes from the encoded frame.
pub const DELIMITER: u8 = 0x00;

/// Length of the CRC that follows the datagram inside a frame, in bytes.
pub const CRC_LEN: usize = 4;

/// The CRC: CRC-32C (Castagnoli), `crc::CRC_32_ISCSI`: width 32, polynomial 0x1EDC6F41
/// (reflected 0x82F63B78), initial value 0xFFFFFFFF, input and output reflected, final XOR
/// 0xFFFFFFFF. Sent little-endian after the datagram.
pub const CRC: crc::Crc<u32, crc::NoTable> = crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISCSI);

/// The CRC of the ASCII bytes `123456789` (the catalogue's check value): 0xE3069283.
pub const CRC_CHECK: u32 = 0xE306_9283;

/// The CRC of `datagram` as it is sent.
pub fn crc(datagram: &[u8]) -> u32 {
    CRC.checksum(datagram)
}

/// The largest number of bytes [`encode`] writes for a datagram of `datagram_len` bytes:
/// the datagram and its CRC, one COBS code byte per 254 bytes plus one, and the delimiter.
pub const fn encoded_len(datagram_len: usize) -> usize {
    let body = datagram_len + CRC_LEN;
    body + body / 254 + 1 + 1
}

/// The [`Decoder`] buffer that accepts datagrams of up to `max_datagram` bytes: the datagram
/// and its CRC.
pub const fn buffer_len(max_datagram: usize) -> usize {
    max_datagram + CRC_LEN
}

/// Why [`encode`] wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// An empty datagram: there is nothing to send (a receiver would drop the frame).
    Empty,
    /// `out` is shorter than [`encoded_len`] of the datagram's length.
    BufferTooSmall {
        /// `encoded_len(datagram.len())`.
        needed: usize,
    },
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::Empty => f.write_str("serial framing: an empty datagram is not sent"),
            EncodeError::BufferTooSmall { needed } => write!(
                f,
                "serial framing: the output buffer is too small for this frame; give it \
                 serial::encoded_len(datagram.len()) = {needed} bytes"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// Writes one serial frame carrying `datagram` into `out`: COBS of the datagram followed by its
/// CRC (4 bytes, little-endian), then the delimiter. Returns the frame's length.
///
/// `out` must hold the worst case, [`encoded_len`]`(datagram.len())` bytes, whatever the
/// datagram's bytes (a frame is often a few bytes shorter).
pub fn encode(datagram: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    if datagram.is_empty() {
        return Err(EncodeError::Empty);
    }
    let needed = encoded_len(datagram.len());
    if out.len() < needed {
        // Checked up front: the `cobs` encoder is only exact when it has room for its worst case.
        return Err(EncodeError::BufferTooSmall { needed });
    }
    let too_small = EncodeError::BufferTooSmall { needed };
    let check = crc(datagram).to_le_bytes();
    let mut enc = cobs::CobsEncoder::new(&mut out[..needed - 1]);
    enc.push(datagram).map_err(|_| too_small)?;
    enc.push(&check).map_err(|_| too_small)?;
    let n = enc.finalize();
    *out.get_mut(n).ok_or(too_small)? = DELIMITER;
    Ok(n + 1)
}

/// What a [`Decoder`] has seen: frames delivered, and frames dropped by reason.
///
/// Runs of delimiters (empty frames) are not counted: a sender may send extra delimiters, for
/// instance one before a frame after the line was idle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SerialStats {
    /// Frames delivered: whole, within the size limit, CRC correct.
    pub frames: u64,
    /// Frames dropped because their CRC did not match: corrupted bytes, or bytes lost at a
    /// point that COBS cannot notice.
    pub bad_crc: u64,
    /// Frames dropped because they are not valid COBS: a delimiter arrived before the block a
    /// code byte announced was complete (the frame was cut short, or a code byte corrupted).
    pub bad_cobs: u64,
    /// Frames dropped because they decode to fewer than `CRC_LEN + 1` bytes: no datagram.
    pub too_short: u64,
    /// Frames dropped because they decode to more than the decoder's buffer holds (a datagram
    /// larger than its `max_datagram`, or two frames run together by a lost delimiter). The
    /// rest of such a frame is skipped up to the next delimiter without being stored.
    pub too_long: u64,
    /// Bytes that arrived (delimiters included).
    pub bytes: u64,
}

impl SerialStats {
    /// Frames dropped, for every reason.
    pub const fn dropped(&self) -> u64 {
        self.bad_crc + self.bad_cobs + self.too_short + self.too_long
    }
}

/// Turns the bytes of a serial line, in chunks of any size, into checked datagrams.
///
/// `B` is the buffer a frame is decoded into (`[u8; N]`, `&mut [u8]`, `Vec<u8>`, …), of
/// [`buffer_len`]`(max_datagram)` bytes; nothing else is stored, so memory and work per byte
/// are fixed whatever arrives.
pub struct Decoder<B> {
    buf: B,
    len: usize,
    state: DecoderState,
    /// Skipping the rest of an oversized frame, up to the next delimiter.
    skipping: bool,
    stats: SerialStats,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Decoder<B> {
    /// A decoder that decodes frames into `buf`; it accepts datagrams of up to
    /// `buf.len() - CRC_LEN` bytes.
    pub fn new(buf: B) -> Self {
        Decoder { buf, len: 0, state: DecoderState::Idle, skipping: false, stats: SerialStats::default() }
    }

    /// The largest datagram accepted.
    pub fn max_datagram(&self) -> usize {
        self.buf.as_ref().len().saturating_sub(CRC_LEN)
    }

    /// Counters of frames delivered and dropped.
    pub fn stats(&self) -> SerialStats {
        self.stats
    }

    /// Forgets a partly received frame (for instance after the line was reopened); the next
    /// bytes start a new frame. The counters are kept.
    pub fn reset(&mut self) {
        self.len = 0;
        self.state = DecoderState::Idle;
        self.skipping = false;
    }

    /// Consumes bytes from `input` up to the end of the next good frame and returns how many it
    /// consumed and that frame's datagram, or `(input.len(), None)` if `input` completes no good
    /// frame. Bad frames on the way are dropped and counted. Call again with the rest of
    /// `input`; the datagram stays valid until then.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<&[u8]>) {
        for (i, &b) in input.iter().enumerate() {
            self.stats.bytes += 1;
            if let Some(n) = self.byte(b) {
                return (i + 1, Some(&self.buf.as_ref()[..n]));
            }
        }
        (input.len(), None)
    }

    /// One byte; `Some(datagram length)` when it completes a good frame.
    fn byte(&mut self, b: u8) -> Option<usize> {
        if self.skipping {
            if b == DELIMITER {
                self.skipping = false;
                self.stats.too_long += 1;
            }
            return None;
        }
        match self.state.feed(b) {
            Ok(DecodeResult::NoData) => None,
            Ok(DecodeResult::DataContinue(x)) => {
                let buf = self.buf.as_mut();
                if self.len < buf.len() {
                    buf[self.len] = x;
                    self.len += 1;
                } else {
                    // Too long: skip to the next delimiter (`x` was not one: COBS data bytes
                    // are never 0x00 on the wire).
                    self.len = 0;
                    self.state = DecoderState::Idle;
                    self.skipping = true;
                }
                None
            }
            Ok(DecodeResult::DataComplete) => {
                let n = core::mem::take(&mut self.len);
                self.check(n)
            }
            Err(_) => {
                // The delimiter came inside a block: the decoder is back at a frame start.
                self.len = 0;
                self.stats.bad_cobs += 1;
                None
            }
        }
    }

    /// A frame of `n` decoded bytes has ended: checks its length and CRC.
    fn check(&mut self, n: usize) -> Option<usize> {
        if n < CRC_LEN + 1 {
            self.stats.too_short += 1;
            return None;
        }
        let (datagram, tail) = self.buf.as_ref()[..n].split_at(n - CRC_LEN);
        let sent = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        if crc(datagram) != sent {
            self.stats.bad_crc += 1;
            return None;
        }
        self.stats.frames += 1;
        Some(n - CRC_LEN)
    }
}

impl<B> core::fmt::Debug for Decoder<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decoder")
            .field("pending", &self.len)
            .field("skipping", &self.skipping)
            .field("stats", &self.stats)
            .finish()
    }
}
