//! The `serial` section of `conformance/vectors/frames.json` (SPEC.md §14.9), read as plain JSON
//! the way an implementation in another language would use it: a CRC computed from the listed
//! parameters, a whole-frame COBS decoder and the receiving rules written here from SPEC.md
//! alone, and the reference `tandem_core::serial` encoder and decoder, must all agree with it.

use serde_json::Value;
use tandem_conformance::vectors;
use tandem_core::serial::{self, Decoder};

fn serial_section() -> Value {
    let text = std::fs::read_to_string(vectors::checked_in_path()).expect("frames.json");
    let v: Value = serde_json::from_str(&text).expect("JSON");
    v["serial"].clone()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hex_u32(v: &Value) -> u32 {
    u32::from_str_radix(v.as_str().expect("hex string"), 16).expect("hex u32")
}

/// A bitwise CRC from the Rocksoft parameters (reflected form only, as the section states).
fn crc_from_params(p: &Value, data: &[u8]) -> u32 {
    assert_eq!(p["width"], 32);
    assert_eq!((p["refin"].as_bool(), p["refout"].as_bool()), (Some(true), Some(true)));
    let poly = hex_u32(&p["poly"]).reverse_bits();
    let mut crc = hex_u32(&p["init"]);
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ poly } else { crc >> 1 };
        }
    }
    crc ^ hex_u32(&p["xorout"])
}

/// What one frame (the bytes between two delimiters) is, by the rules of SPEC.md §14.9.4.
#[derive(Debug, PartialEq)]
enum Verdict {
    Datagram(Vec<u8>),
    TooLong,
    BadCobs,
    TooShort,
    BadCrc,
}

fn judge(p: &Value, encoded: &[u8], max: usize) -> Verdict {
    let mut out = Vec::new();
    let mut i = 0;
    while i < encoded.len() {
        let code = usize::from(encoded[i]);
        i += 1;
        for _ in 1..code {
            if i == encoded.len() {
                return if out.len() > max + 4 { Verdict::TooLong } else { Verdict::BadCobs };
            }
            out.push(encoded[i]);
            i += 1;
            if out.len() > max + 4 {
                return Verdict::TooLong;
            }
        }
        if code < 0xff && i < encoded.len() {
            out.push(0);
        }
        if out.len() > max + 4 {
            return Verdict::TooLong;
        }
    }
    if out.len() < 5 {
        return Verdict::TooShort;
    }
    let (d, c) = out.split_at(out.len() - 4);
    if crc_from_params(p, d).to_le_bytes() != c {
        return Verdict::BadCrc;
    }
    Verdict::Datagram(d.to_vec())
}

#[test]
fn crc_parameters_and_examples() {
    let s = serial_section();
    let p = &s["crc"];
    assert_eq!(p["name"], "CRC-32C");
    assert_eq!(p["byte_order"], "little-endian");
    assert_eq!(crc_from_params(p, b"123456789"), hex_u32(&p["check"]));
    assert_eq!(hex_u32(&p["check"]), serial::CRC_CHECK);
    for e in p["examples"].as_array().expect("examples") {
        let data = unhex(e["data"].as_str().unwrap());
        assert_eq!(crc_from_params(p, &data), hex_u32(&e["crc"]), "{e}");
        assert_eq!(serial::crc(&data), hex_u32(&e["crc"]), "{e}");
    }
}

#[test]
fn frames_encode_and_decode() {
    let s = serial_section();
    assert_eq!(s["delimiter"], 0);
    let frames = s["frames"].as_array().expect("frames");
    assert!(frames.len() >= 5);
    for f in frames {
        let id = f["id"].as_str().unwrap();
        let (datagram, wire) = (unhex(f["datagram"].as_str().unwrap()), unhex(f["wire"].as_str().unwrap()));
        assert_eq!(wire.last(), Some(&0), "{id}: ends with the delimiter");
        assert!(!wire[..wire.len() - 1].contains(&0), "{id}: no zero inside");
        assert_eq!(
            judge(&s["crc"], &wire[..wire.len() - 1], datagram.len()),
            Verdict::Datagram(datagram.clone()),
            "{id}"
        );
        assert_eq!(vectors::serial_frame(&datagram), wire, "{id}: the reference encoder writes exactly this");
        let mut d = Decoder::new(vec![0u8; serial::buffer_len(datagram.len())]);
        assert_eq!(d.push(&wire), (wire.len(), Some(&datagram[..])), "{id}");
    }
}

#[test]
fn streams_deliver_and_drop_as_listed() {
    let s = serial_section();
    let streams = s["streams"].as_array().expect("streams");
    assert!(streams.len() >= 10);
    let mut reasons = [0u64; 4];
    for st in streams {
        let id = st["id"].as_str().unwrap();
        let max = st["max_datagram"].as_u64().unwrap() as usize;
        let wire = unhex(st["wire"].as_str().unwrap());
        let want: Vec<Vec<u8>> =
            st["datagrams"].as_array().unwrap().iter().map(|d| unhex(d.as_str().unwrap())).collect();
        let dropped = &st["dropped"];
        let count = |k: &str| dropped[k].as_u64().unwrap();
        let listed = [count("bad_cobs"), count("too_long"), count("too_short"), count("bad_crc")];
        // The rules of SPEC.md alone, one frame between two delimiters at a time. (A stream's
        // last bytes without a delimiter are not a frame yet.)
        let mut got = Vec::new();
        let mut tally = [0u64; 4];
        let ends = wire.iter().rposition(|&b| b == 0).map_or(0, |i| i + 1);
        for chunk in wire[..ends].split(|&b| b == 0).filter(|c| !c.is_empty()) {
            match judge(&s["crc"], chunk, max) {
                Verdict::Datagram(d) => got.push(d),
                Verdict::BadCobs => tally[0] += 1,
                Verdict::TooLong => tally[1] += 1,
                Verdict::TooShort => tally[2] += 1,
                Verdict::BadCrc => tally[3] += 1,
            }
        }
        assert_eq!(got, want, "{id}: datagrams by the rules");
        assert_eq!(tally, listed, "{id}: dropped frames by the rules");
        // The reference decoder, fed one byte at a time.
        let mut d = Decoder::new(vec![0u8; serial::buffer_len(max)]);
        let mut delivered = Vec::new();
        for b in &wire {
            if let (1, Some(x)) = d.push(std::slice::from_ref(b)) {
                delivered.push(x.to_vec());
            }
        }
        let st = d.stats();
        assert_eq!(delivered, want, "{id}: reference decoder");
        assert_eq!([st.bad_cobs, st.too_long, st.too_short, st.bad_crc], listed, "{id}: reference counters");
        for (r, n) in reasons.iter_mut().zip(listed) {
            *r += n;
        }
    }
    assert!(reasons.iter().all(|&n| n > 0), "every reason has a vector: {reasons:?}");
}

#[test]
fn cited_sections_exist() {
    let spec = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../SPEC.md")).expect("SPEC.md");
    let s = serial_section();
    let mut cited = vec![s["spec"].as_str().unwrap().to_string()];
    for list in ["frames", "streams"] {
        cited.extend(s[list].as_array().unwrap().iter().map(|v| v["spec"].as_str().unwrap().to_string()));
    }
    for c in cited {
        assert!(
            spec.lines().any(|l| l.starts_with('#') && l.split_whitespace().nth(1) == Some(c.as_str())),
            "SPEC.md has no heading {c}"
        );
    }
}
