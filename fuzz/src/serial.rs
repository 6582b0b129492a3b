//! The check of the `serial` fuzz target: the serial-link framing (SPEC.md §14.9) fed arbitrary
//! line bytes.
//!
//! Shared like `checks.rs`: the fuzz crate compiles it as `tandem_fuzz::serial`, and
//! `proto-core/tests/fuzz_corpus.rs` includes it with `#[path]`. Uses only `std` and
//! `tandem_core`; panics on a violation.

use tandem_core::serial::{self, Decoder, SerialStats};

/// What one input did.
#[derive(Clone, Copy, Debug, Default)]
pub struct SerialOutcome {
    /// Datagrams delivered.
    pub frames: u64,
    /// Frames dropped, for every reason.
    pub dropped: u64,
}

/// Input: `max, seed, line bytes…`. A decoder accepting datagrams of `16 + 8·max` bytes reads
/// the line bytes in chunks of 1..=64 bytes picked from `seed`. It must never panic; deliver
/// only non-empty datagrams within its limit, each of which re-encodes to a frame that decodes
/// back to it; count every byte and at most one frame per delimiter; and deliver exactly what a
/// second decoder fed the whole input at once delivers, with the same counters (chunking does
/// not matter). Then the line bytes, taken as one datagram, make a frame that a decoder of
/// exactly that limit returns intact, and one byte less drops as too long.
pub fn serial(data: &[u8]) -> SerialOutcome {
    let [max, seed, line @ ..] = data else { return SerialOutcome::default() };
    let max = 16 + usize::from(*max) * 8;
    let mut chunked = Decoder::new(vec![0u8; serial::buffer_len(max)]);
    let mut whole = Decoder::new(vec![0u8; serial::buffer_len(max)]);
    let mut state = u32::from(*seed) | 1;
    let mut got = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let chunk = (1 + (state >> 16) as usize % 64).min(rest.len());
        let mut input = &rest[..chunk];
        while !input.is_empty() {
            let (used, datagram) = chunked.push(input);
            assert!(used >= 1 && used <= input.len(), "consumed {used} of {}", input.len());
            if let Some(d) = datagram {
                assert!(!d.is_empty() && d.len() <= max, "datagram of {} bytes, limit {max}", d.len());
                assert_eq!(input[used - 1], serial::DELIMITER, "a datagram ends at a delimiter");
                got.push(d.to_vec());
            }
            input = &input[used..];
        }
        rest = &rest[chunk..];
    }
    let mut again = Vec::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (used, datagram) = whole.push(rest);
        again.extend(datagram.map(<[u8]>::to_vec));
        rest = &rest[used..];
    }
    let s = chunked.stats();
    assert_eq!(got, again, "chunking changed what was delivered");
    assert_eq!(s, whole.stats(), "chunking changed the counters");
    assert_eq!(s.frames, got.len() as u64);
    assert_eq!(s.bytes, line.len() as u64);
    let delimiters = line.iter().filter(|&&b| b == serial::DELIMITER).count() as u64;
    assert!(s.frames + s.dropped() <= delimiters, "{s:?} with {delimiters} delimiters");
    for d in &got {
        assert_eq!(roundtrip(d, d.len()), (Some(d.clone()), SerialStats { frames: 1, ..stats_of(d) }));
    }
    if !line.is_empty() {
        let (back, st) = roundtrip(line, line.len());
        assert_eq!(back.as_deref(), Some(line), "{st:?}");
        let (back, st) = roundtrip(line, line.len() - 1);
        assert!(back.is_none() && st.too_long == 1 && st.frames == 0, "{st:?}");
    }
    SerialOutcome { frames: s.frames, dropped: s.dropped() }
}

/// The counters of a clean decode of the frame of `d`, less `frames`.
fn stats_of(d: &[u8]) -> SerialStats {
    let mut wire = vec![0u8; serial::encoded_len(d.len())];
    let n = serial::encode(d, &mut wire).expect("encodes");
    SerialStats { bytes: n as u64, ..SerialStats::default() }
}

/// Encodes `d` and decodes the frame with a limit of `max` bytes.
fn roundtrip(d: &[u8], max: usize) -> (Option<Vec<u8>>, SerialStats) {
    let mut wire = vec![0u8; serial::encoded_len(d.len())];
    let n = serial::encode(d, &mut wire).expect("a non-empty datagram encodes into encoded_len bytes");
    assert!(!wire[..n - 1].contains(&serial::DELIMITER));
    let mut dec = Decoder::new(vec![0u8; serial::buffer_len(max)]);
    let (used, out) = dec.push(&wire[..n]);
    assert_eq!(used, n);
    (out.map(<[u8]>::to_vec), dec.stats())
}
