//! The serial framing against a textbook COBS encoder, and every way a frame is dropped.

use super::*;
use crate::tests::pair::Rng;

/// COBS as Cheshire and Baker describe it (the "reduced" form: no code byte after a data
/// block of exactly 254 bytes at the end), written independently of the `cobs` crate.
fn reference_cobs(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0;
    let mut code = 1u8;
    for (i, &b) in data.iter().enumerate() {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xFF && i + 1 < data.len() {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out
}

fn frame(datagram: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; encoded_len(datagram.len())];
    let n = encode(datagram, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Feeds `wire` in chunks of random sizes; returns the datagrams delivered.
fn feed<B: AsRef<[u8]> + AsMut<[u8]>>(d: &mut Decoder<B>, wire: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let chunk = (1 + rng.below(40) as usize).min(rest.len());
        let mut input = &rest[..chunk];
        while !input.is_empty() {
            let (used, datagram) = d.push(input);
            assert!(used > 0 && used <= input.len());
            if let Some(x) = datagram {
                got.push(x.to_vec());
            }
            input = &input[used..];
        }
        rest = &rest[chunk..];
    }
    got
}

fn random_datagram(rng: &mut Rng, len: usize) -> Vec<u8> {
    // A third of the bytes zero, so that COBS blocks of every length occur.
    (0..len).map(|_| if rng.below(3) == 0 { 0 } else { rng.next() as u8 }).collect()
}

#[test]
fn crc_is_crc32c_with_its_check_value() {
    assert_eq!(crc(b"123456789"), CRC_CHECK);
    assert_eq!(crc::CRC_32_ISCSI.check, CRC_CHECK);
    assert_eq!(crc::CRC_32_ISCSI.poly, 0x1EDC_6F41);
}

#[test]
fn frames_are_textbook_cobs_of_the_datagram_and_its_crc() {
    let mut rng = Rng::new(7);
    let lens = (1..=600).chain([1016, 1200, 4096]);
    for len in lens {
        for zeros in [false, true] {
            let d: Vec<u8> = if zeros {
                random_datagram(&mut rng, len)
            } else {
                (0..len).map(|i| (i % 255) as u8 + 1).collect()
            };
            let wire = frame(&d);
            let mut body = d.clone();
            body.extend_from_slice(&crc(&d).to_le_bytes());
            let mut expect = reference_cobs(&body);
            expect.push(DELIMITER);
            assert_eq!(wire, expect, "datagram of {len} bytes");
            assert!(wire.len() <= encoded_len(len), "{len}");
            assert!(!wire[..wire.len() - 1].contains(&DELIMITER));
            // Exactly `encoded_len` fits; one byte less is refused, whatever the frame's length.
            let mut exact = vec![0u8; encoded_len(len)];
            assert_eq!(encode(&d, &mut exact), Ok(wire.len()));
            let mut short = vec![0u8; encoded_len(len) - 1];
            assert_eq!(encode(&d, &mut short), Err(EncodeError::BufferTooSmall { needed: encoded_len(len) }));
        }
    }
    assert_eq!(encode(b"", &mut [0u8; 16]), Err(EncodeError::Empty));
    assert_eq!(encode(b"x", &mut []), Err(EncodeError::BufferTooSmall { needed: encoded_len(1) }));
}

#[test]
fn any_chunking_delivers_every_frame() {
    let mut rng = Rng::new(11);
    let mut dec = Decoder::new(vec![0u8; buffer_len(1200)]);
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..300 {
        let len = 1 + rng.below(1200) as usize;
        let d = random_datagram(&mut rng, len);
        wire.extend(frame(&d));
        if rng.below(4) == 0 {
            wire.push(DELIMITER); // extra delimiters are not frames
        }
        sent.push(d);
    }
    assert_eq!(feed(&mut dec, &wire, &mut rng), sent);
    let s = dec.stats();
    assert_eq!((s.frames, s.dropped(), s.bytes), (300, 0, wire.len() as u64));
    // The largest datagram fits exactly; a borrowed buffer works the same.
    let mut buf = [0u8; buffer_len(64)];
    let mut dec = Decoder::new(&mut buf[..]);
    assert_eq!(dec.max_datagram(), 64);
    let d = [0x5Au8; 64];
    assert_eq!(feed(&mut dec, &frame(&d), &mut rng), vec![d.to_vec()]);
}

#[test]
fn a_corrupted_byte_drops_the_frame_and_the_next_one_arrives() {
    let mut rng = Rng::new(3);
    let mut dec = Decoder::new([0u8; buffer_len(256)]);
    let a: Vec<u8> = (1..=100).collect();
    let mut bad = frame(&a);
    bad[50] ^= 0x10; // a data byte, still not zero: COBS is intact, the CRC is not
    let mut wire = bad;
    wire.extend(frame(b"next"));
    assert_eq!(feed(&mut dec, &wire, &mut rng), vec![b"next".to_vec()]);
    assert_eq!(
        dec.stats(),
        SerialStats { frames: 1, bad_crc: 1, bytes: wire.len() as u64, ..SerialStats::default() }
    );
}

#[test]
fn a_frame_cut_short_is_bad_cobs_and_the_receiver_resynchronises() {
    let mut rng = Rng::new(4);
    let mut dec = Decoder::new([0u8; buffer_len(256)]);
    let a: Vec<u8> = (1..=100).collect(); // one COBS block of 100+ bytes
    let whole = frame(&a);
    let mut wire = whole[..30].to_vec(); // the line lost the rest of the frame
    wire.push(DELIMITER); // … but not the delimiter
    wire.extend(frame(b"next"));
    assert_eq!(feed(&mut dec, &wire, &mut rng), vec![b"next".to_vec()]);
    let s = dec.stats();
    assert_eq!((s.frames, s.bad_cobs, s.dropped()), (1, 1, 1));
}

#[test]
fn a_runt_is_too_short() {
    let mut rng = Rng::new(5);
    let mut dec = Decoder::new([0u8; buffer_len(64)]);
    // One byte; and four bytes, which could be a CRC but carry no datagram.
    let mut wire = vec![0x02, 0xAA, 0x00, 0x05, 1, 2, 3, 4, 0x00];
    wire.extend(frame(b"ok"));
    assert_eq!(feed(&mut dec, &wire, &mut rng), vec![b"ok".to_vec()]);
    let s = dec.stats();
    assert_eq!((s.frames, s.too_short, s.dropped()), (1, 2, 2));
}

#[test]
fn an_oversized_frame_is_skipped_without_being_stored() {
    let mut rng = Rng::new(6);
    let mut dec = Decoder::new([0u8; buffer_len(16)]);
    let mut wire = frame(&[9u8; 17]); // one byte over
    wire.extend(frame(&[8u8; 16])); // exactly the limit
    wire.extend([0x33; 10_000]); // line noise without a delimiter
    wire.push(DELIMITER);
    // Two frames whose delimiter was lost run together: too long for this buffer.
    let mut joined = frame(&[1u8; 10]);
    joined.pop();
    joined.extend(frame(&[2u8; 10]));
    wire.extend(joined);
    wire.extend(frame(b"last"));
    let got = feed(&mut dec, &wire, &mut rng);
    assert_eq!(got, vec![vec![8u8; 16], b"last".to_vec()]);
    let s = dec.stats();
    assert_eq!((s.frames, s.too_long, s.dropped()), (2, 3, 3));
}

#[test]
fn garbage_before_the_first_frame_costs_one_frame_at_most() {
    let mut rng = Rng::new(8);
    for seed in 0..200u64 {
        let mut r = Rng::new(seed);
        let mut dec = Decoder::new([0u8; buffer_len(128)]);
        let mut wire: Vec<u8> = (0..r.below(300)).map(|_| r.next() as u8).collect();
        wire.push(DELIMITER);
        wire.extend(frame(b"hello"));
        assert_eq!(feed(&mut dec, &wire, &mut rng), vec![b"hello".to_vec()], "seed {seed}");
    }
}

/// Random damage of every kind: whatever arrives is exactly a subsequence of what was sent
/// (CRC-32C lets nothing else through at this volume), and nothing panics.
#[test]
fn damaged_lines_deliver_only_what_was_sent() {
    let mut rng = Rng::new(12);
    let mut dec = Decoder::new(vec![0u8; buffer_len(300)]);
    let mut sent = Vec::new();
    let mut wire = Vec::new();
    for i in 0..2000u32 {
        let len = 1 + rng.below(400) as usize;
        let mut d = random_datagram(&mut rng, len);
        d[0] = (i % 251) as u8;
        let mut f = frame(&d);
        match rng.below(10) {
            0 => {
                let k = rng.below(f.len() as u64) as usize;
                f[k] ^= 1 << rng.below(8);
            }
            1 => {
                let k = rng.below(f.len() as u64) as usize;
                f.remove(k);
            }
            2 => {
                let k = rng.below(f.len() as u64) as usize;
                let b = f[k];
                f.insert(k, b);
            }
            3 => f.truncate(rng.below(f.len() as u64) as usize),
            _ => {}
        }
        wire.extend(f);
        sent.push(d);
    }
    let got = feed(&mut dec, &wire, &mut rng);
    let mut it = sent.iter();
    for g in &got {
        assert!(it.any(|s| s == g), "delivered a datagram that was not sent, or out of order");
    }
    let s = dec.stats();
    assert!(s.frames as usize == got.len() && s.frames > 600, "{s:?}");
    assert!(s.bad_crc > 0 && s.bad_cobs > 0 && s.too_long > 0, "every kind of damage seen: {s:?}");
}
