//! The `serial` section: the serial-link framing of SPEC.md §14.9 (COBS, CRC-32C), produced by
//! `tandem_core::serial` and checked against it as it is recorded.
//!
//! * `crc`: the CRC's parameters, its check value and a few checksums;
//! * `frames`: datagrams and their exact serial frames (what an encoder writes);
//! * `streams`: byte strings as a receiver reads them — good and bad frames, extra delimiters,
//!   noise — with the datagrams it must deliver and the frames it must drop, by reason.

use serde::Serialize;
use tandem_core::frame::Frame;
use tandem_core::serial::{self, Decoder, SerialStats};

use super::generator::pattern;
use super::json::to_hex;

/// The decoder limit (`max_datagram_size`) of every stream that does not give one.
pub const SERIAL_MAX_DATAGRAM: usize = 1200;

/// The `serial` section.
#[derive(Clone, Debug, Serialize)]
pub struct Serial {
    /// The spec section (`14.9`).
    pub spec: &'static str,
    /// The delimiter byte (0).
    pub delimiter: u8,
    /// [`SERIAL_MAX_DATAGRAM`].
    pub default_max_datagram: usize,
    /// The CRC.
    pub crc: Crc,
    /// Datagrams and their frames.
    pub frames: Vec<SerialFrame>,
    /// Received byte strings and what a receiver makes of them.
    pub streams: Vec<SerialStream>,
}

/// The CRC's parameters (the Rocksoft model), lower-case hex.
#[derive(Clone, Debug, Serialize)]
pub struct Crc {
    /// `CRC-32C`.
    pub name: &'static str,
    /// 32.
    pub width: u32,
    /// The polynomial, normal form.
    pub poly: String,
    /// The initial value.
    pub init: String,
    /// Input bytes reflected.
    pub refin: bool,
    /// Output reflected.
    pub refout: bool,
    /// Final XOR.
    pub xorout: String,
    /// The CRC of the ASCII bytes `123456789`.
    pub check: String,
    /// How the CRC follows the datagram: `little-endian`.
    pub byte_order: &'static str,
    /// Data and their CRC values.
    pub examples: Vec<CrcExample>,
}

/// One checksum.
#[derive(Clone, Debug, Serialize)]
pub struct CrcExample {
    /// The data, hex.
    pub data: String,
    /// Its CRC as a number, hex (8 digits).
    pub crc: String,
}

/// A datagram and its frame.
#[derive(Clone, Debug, Serialize)]
pub struct SerialFrame {
    /// `serial/frame/<case>`.
    pub id: String,
    /// The section.
    pub spec: &'static str,
    /// What it shows.
    pub description: String,
    /// The datagram, hex.
    pub datagram: String,
    /// The complete frame, delimiter included, hex.
    pub wire: String,
}

/// What a receiver reads, and what it must make of it.
#[derive(Clone, Debug, Serialize)]
pub struct SerialStream {
    /// `serial/stream/<case>`.
    pub id: String,
    /// The section.
    pub spec: &'static str,
    /// What it shows.
    pub description: String,
    /// The receiver's `max_datagram_size`.
    pub max_datagram: usize,
    /// Every byte read, hex.
    pub wire: String,
    /// The datagrams delivered, in order, hex.
    pub datagrams: Vec<String>,
    /// The frames dropped, by reason (empty frames are not counted).
    pub dropped: Dropped,
}

/// Dropped frames by reason (SPEC.md §14.9.4).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Dropped {
    /// The delimiter came inside a COBS block.
    pub bad_cobs: u64,
    /// Decodes to more than `max_datagram + 4` bytes.
    pub too_long: u64,
    /// Decodes to fewer than 5 bytes.
    pub too_short: u64,
    /// The CRC does not match.
    pub bad_crc: u64,
}

impl Dropped {
    const NONE: Dropped = Dropped { bad_cobs: 0, too_long: 0, too_short: 0, bad_crc: 0 };

    fn of(s: SerialStats) -> Dropped {
        Dropped { bad_cobs: s.bad_cobs, too_long: s.too_long, too_short: s.too_short, bad_crc: s.bad_crc }
    }
}

/// The frame of `datagram`.
pub fn frame(datagram: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; serial::encoded_len(datagram.len())];
    let n = serial::encode(datagram, &mut out).expect("a non-empty datagram");
    out.truncate(n);
    out
}

/// What the reference decoder, limit `max`, makes of `wire`.
pub fn receive(wire: &[u8], max: usize) -> (Vec<Vec<u8>>, SerialStats) {
    let mut d = Decoder::new(vec![0u8; serial::buffer_len(max)]);
    let mut got = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let (used, datagram) = d.push(rest);
        got.extend(datagram.map(<[u8]>::to_vec));
        rest = &rest[used..];
    }
    (got, d.stats())
}

struct SerialGen {
    frames: Vec<SerialFrame>,
    streams: Vec<SerialStream>,
}

impl SerialGen {
    fn frame(&mut self, id: &str, description: &str, datagram: &[u8]) -> Vec<u8> {
        let wire = frame(datagram);
        assert_eq!(receive(&wire, datagram.len()).0, vec![datagram.to_vec()], "{id}");
        self.frames.push(SerialFrame {
            id: format!("serial/frame/{id}"),
            spec: "14.9.1",
            description: description.into(),
            datagram: to_hex(datagram),
            wire: to_hex(&wire),
        });
        wire
    }

    fn stream(
        &mut self,
        id: &str,
        description: &str,
        max: usize,
        wire: &[u8],
        want: &[&[u8]],
        dropped: Dropped,
    ) {
        let (got, stats) = receive(wire, max);
        assert_eq!(got, want.iter().map(|d| d.to_vec()).collect::<Vec<_>>(), "{id}: datagrams");
        assert_eq!(Dropped::of(stats), dropped, "{id}: dropped frames");
        self.streams.push(SerialStream {
            id: format!("serial/stream/{id}"),
            spec: "14.9.4",
            description: description.into(),
            max_datagram: max,
            wire: to_hex(wire),
            datagrams: want.iter().map(|d| to_hex(d)).collect(),
            dropped,
        });
    }
}

/// A datagram of `len` non-zero bytes whose CRC has no zero byte either, so that the whole frame
/// body is one run without zeros (the variant is the smallest that works).
fn zero_free(len: usize) -> Vec<u8> {
    (0u8..=255)
        .map(|k| (0..len).map(|i| ((i + usize::from(k)) % 255) as u8 + 1).collect::<Vec<u8>>())
        .find(|d| !serial::crc(d).to_le_bytes().contains(&0))
        .expect("some variant has a CRC without zero bytes")
}

/// The whole section.
pub fn serial_vectors() -> Serial {
    let mut g = SerialGen { frames: Vec::new(), streams: Vec::new() };
    let ascii = g.frame("ascii", "the check string: no zero byte, one COBS block", b"123456789");
    let ping = Frame::Ping([0, 0, 0, 0, 0, 0, 0, 1]);
    let mut pbuf = [0u8; 16];
    let n = ping.encode(&mut pbuf).expect("PING encodes");
    let ping =
        g.frame("ping", "a datagram holding one PING frame: each zero byte becomes a COBS block", &pbuf[..n]);
    g.frame("zeros", "three zero bytes", &[0, 0, 0]);
    g.frame(
        "block-254",
        "250 bytes whose body (with the CRC) is 254 bytes without a zero: one 0xff block, no code after it",
        &zero_free(250),
    );
    g.frame(
        "block-255",
        "251 bytes whose body is 255 bytes without a zero: a 0xff block, then a block of one byte",
        &zero_free(251),
    );
    g.frame("pattern-600", "600 bytes of a pattern with a zero every 251 bytes", &pattern(600));

    let cat = |parts: &[&[u8]]| parts.concat();
    let none = Dropped::NONE;
    let max = SERIAL_MAX_DATAGRAM;
    let (a, p) = (&ascii[..], &ping[..]);
    g.stream("two", "two frames back to back", max, &cat(&[a, p]), &[b"123456789", &pbuf[..n]], none);
    g.stream(
        "extra-delimiters",
        "delimiters before, between and after frames are empty frames: ignored, not counted",
        max,
        &cat(&[&[0, 0], a, &[0], p, &[0, 0, 0]]),
        &[b"123456789", &pbuf[..n]],
        none,
    );
    let mut flipped = ascii.clone();
    flipped[3] ^= 0x04;
    g.stream(
        "bad-crc",
        "a data byte changed (still not zero): valid COBS, wrong CRC; the next frame is delivered",
        max,
        &cat(&[&flipped, p]),
        &[&pbuf[..n]],
        Dropped { bad_crc: 1, ..none },
    );
    g.stream(
        "cut",
        "a frame whose last bytes were lost before its delimiter: the delimiter comes inside a block",
        max,
        &cat(&[&ascii[..6], &[0], p]),
        &[&pbuf[..n]],
        Dropped { bad_cobs: 1, ..none },
    );
    g.stream(
        "noise",
        "noise, then a delimiter, then a frame: the receiver resynchronises at the delimiter",
        max,
        &cat(&[&[0x12, 0x34, 0x56], &[0], a]),
        &[b"123456789"],
        Dropped { bad_cobs: 1, ..none },
    );
    g.stream(
        "runts",
        "frames of one and of four decoded bytes: too short to hold a datagram and its CRC",
        max,
        &cat(&[&[0x02, 0xaa, 0x00, 0x05, 0x01, 0x02, 0x03, 0x04, 0x00], a]),
        &[b"123456789"],
        Dropped { too_short: 2, ..none },
    );
    g.stream(
        "empty-datagram",
        "the frame of an empty datagram (its CRC is 0): four decoded bytes, too short",
        max,
        &cat(&[&[0x01, 0x01, 0x01, 0x01, 0x01, 0x00], a]),
        &[b"123456789"],
        Dropped { too_short: 1, ..none },
    );
    let (d17, d16) = (pattern(17), pattern(16));
    g.stream(
        "too-long",
        "with max_datagram_size 16: a 17-byte datagram is dropped, a 16-byte one delivered",
        16,
        &cat(&[&frame(&d17), &frame(&d16)]),
        &[&d16],
        Dropped { too_long: 1, ..none },
    );
    let mut lost = ascii.clone();
    lost.pop();
    g.stream(
        "lost-delimiter",
        "a lost delimiter runs two frames together: one bad frame, both datagrams lost",
        max,
        &cat(&[&lost, p, a]),
        &[b"123456789"],
        Dropped { bad_crc: 1, ..none },
    );
    g.stream(
        "babble",
        "2000 bytes without a zero (a babbling line) are skipped as one frame too long, without being stored",
        max,
        &cat(&[&[0x55; 2000], &[0], a]),
        &[b"123456789"],
        Dropped { too_long: 1, ..none },
    );

    let examples = [&b"123456789"[..], b"", &[0], &[0xff; 4], &pbuf[..n]]
        .iter()
        .map(|d| CrcExample { data: to_hex(d), crc: format!("{:08x}", serial::crc(d)) })
        .collect();
    let alg = &serial::CRC.algorithm;
    assert_eq!(alg.check, serial::CRC_CHECK);
    Serial {
        spec: "14.9",
        delimiter: serial::DELIMITER,
        default_max_datagram: SERIAL_MAX_DATAGRAM,
        crc: Crc {
            name: "CRC-32C",
            width: u32::from(alg.width),
            poly: format!("{:08x}", alg.poly),
            init: format!("{:08x}", alg.init),
            refin: alg.refin,
            refout: alg.refout,
            xorout: format!("{:08x}", alg.xorout),
            check: format!("{:08x}", alg.check),
            byte_order: "little-endian",
            examples,
        },
        frames: g.frames,
        streams: g.streams,
    }
}
