//! The serial framing's C functions from Rust: frames in, datagrams out, damage counted, and
//! the refusals (small buffers, bad handles, aliasing) that C callers get.

use tandem_c::*;

fn encode(d: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; tandem_serial_encoded_len(d.len())];
    let mut n = 0;
    // SAFETY: valid pointers and lengths.
    let r = unsafe { tandem_serial_encode(d.as_ptr(), d.len(), out.as_mut_ptr(), out.len(), &mut n) };
    assert_eq!(r, TandemResult::Ok);
    out.truncate(n);
    out
}

/// Pushes `bytes` through the decoder; returns the datagrams it delivered.
fn push_all(dec: *mut TandemSerialDecoder, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut off = 0;
    while off < bytes.len() {
        let (mut used, mut p, mut len) = (0usize, core::ptr::null(), 0usize);
        // SAFETY: a live decoder; valid pointers.
        let r = unsafe {
            tandem_serial_decoder_push(
                dec,
                bytes[off..].as_ptr(),
                bytes.len() - off,
                &mut used,
                &mut p,
                &mut len,
            )
        };
        assert_eq!(r, TandemResult::Ok);
        off += used;
        if !p.is_null() {
            // SAFETY: the decoder's datagram, valid until the next call on it.
            got.push(unsafe { core::slice::from_raw_parts(p, len) }.to_vec());
        }
    }
    got
}

#[test]
fn frames_round_trip_and_damage_is_dropped_and_counted() {
    // SPEC.md §14.9.1's example.
    assert_eq!(encode(b"123456789"), b"\x0e123456789\x83\x92\x06\xe3\x00");
    assert_eq!(tandem_serial_encoded_len(1200), 1210);
    let mut mem = vec![0u8; tandem_serial_decoder_memory_size(100)];
    let mut dec = core::ptr::null_mut();
    // Misaligned on purpose: any alignment works.
    // SAFETY: valid memory and out-pointer.
    let r = unsafe { tandem_serial_decoder_init(mem[1..].as_mut_ptr().cast(), mem.len() - 1, 100, &mut dec) };
    assert_eq!(r, TandemResult::BufferTooSmall, "one byte short");
    // SAFETY: as above.
    let r = unsafe { tandem_serial_decoder_init(mem.as_mut_ptr().cast(), mem.len(), 100, &mut dec) };
    assert_eq!(r, TandemResult::Ok);
    let mut wire = vec![0x42, 0x00];
    wire.extend(encode(b"first"));
    let mut bad = encode(b"damaged");
    bad[3] ^= 0x10;
    wire.extend(bad);
    wire.extend(encode(&[7u8; 101])); // too long for this decoder
    wire.extend(encode(b"last"));
    assert_eq!(push_all(dec, &wire), vec![b"first".to_vec(), b"last".to_vec()]);
    let mut st = TandemSerialStats::default();
    // SAFETY: a live decoder.
    assert_eq!(unsafe { tandem_serial_decoder_stats(dec, &mut st) }, TandemResult::Ok);
    // 0x42 announced a 65-byte block that a delimiter cut: bad COBS.
    assert_eq!((st.frames, st.bad_crc, st.too_long, st.bad_cobs, st.too_short), (2, 1, 1, 1, 0), "{st:?}");
    assert_eq!(st.bytes, wire.len() as u64);
}

#[test]
fn refusals() {
    let d = [1u8, 2, 3];
    let mut out = [0u8; 16];
    let mut n = 0;
    // SAFETY: valid pointers; `out` is too short on purpose.
    let r = unsafe { tandem_serial_encode(d.as_ptr(), 3, out.as_mut_ptr(), 8, &mut n) };
    assert_eq!(r, TandemResult::BufferTooSmall);
    // SAFETY: an empty datagram.
    let r = unsafe { tandem_serial_encode(d.as_ptr(), 0, out.as_mut_ptr(), 16, &mut n) };
    assert_eq!(r, TandemResult::InvalidArgument);
    // SAFETY: NULL output.
    let r = unsafe { tandem_serial_encode(d.as_ptr(), 3, core::ptr::null_mut(), 16, &mut n) };
    assert_eq!(r, TandemResult::NullPointer);
    // SAFETY: `out` overlaps the datagram.
    let r = unsafe { tandem_serial_encode(out.as_ptr(), 3, out.as_mut_ptr(), 16, &mut n) };
    assert_eq!(r, TandemResult::InvalidArgument);
    // Not a decoder: zeroed, aligned memory has no marker.
    let mut fake = vec![0u64; 64];
    let mut st = TandemSerialStats::default();
    // SAFETY: readable, aligned memory.
    let r = unsafe { tandem_serial_decoder_stats(fake.as_mut_ptr().cast(), &mut st) };
    assert_eq!(r, TandemResult::BadHandle);
    // SAFETY: NULL handle.
    let r = unsafe { tandem_serial_decoder_stats(core::ptr::null_mut(), &mut st) };
    assert_eq!(r, TandemResult::NullPointer);
    let mut mem = [0u8; 64];
    let mut dec = core::ptr::null_mut();
    // SAFETY: valid memory; max_datagram 0 is refused.
    let r = unsafe { tandem_serial_decoder_init(mem.as_mut_ptr().cast(), 64, 0, &mut dec) };
    assert_eq!(r, TandemResult::InvalidArgument);
}
