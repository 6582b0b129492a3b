//! The conformance frame vectors (`conformance/vectors/frames.json`, 110 valid frames and 201
//! invalid ones, each with the SPEC.md §3.3 decode error it must raise) as a capture: each
//! vector is one UDP datagram on its own conversation, after a HELLO that sets the receiver's
//! frame size limit (the vector's `max_frame_size`; for the pre-handshake vector, a HELLO of
//! the sender instead, so the limit is 4096). tshark must decode every valid vector with its
//! fields and no malformed expert info, and report every invalid one as malformed with the
//! error's name from the spec.

use std::collections::HashMap;

use serde_json::Value;

/// The receiver's port; vector `i` comes from port `FIRST_PORT + i`.
const RECEIVER_PORT: u16 = 7000;
const FIRST_PORT: u16 = 20000;

fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("odd-length hex {s}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("{s}: {e}")))
        .collect()
}

fn colon_hex(s: &str) -> String {
    s.as_bytes().chunks(2).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(":")
}

fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=63 => vec![v as u8],
        64..=16383 => ((v as u16) | 0x4000).to_be_bytes().to_vec(),
        16384..=1073741823 => ((v as u32) | 0x8000_0000).to_be_bytes().to_vec(),
        _ => (v | 0xc000_0000_0000_0000).to_be_bytes().to_vec(),
    }
}

/// A HELLO announcing `max_frame_size` (parameter 1) = `limit`.
fn hello(limit: u64) -> Vec<u8> {
    let mut body = b"TNDM".to_vec();
    body.extend_from_slice(&[1, 1, 0, 0, 0, 0, 1, 1]);
    body.extend(varint(limit));
    let mut f = vec![0x01];
    f.extend(varint(body.len() as u64));
    f.extend(body);
    f
}

/// A classic pcap file (LINKTYPE_IPV4) of UDP datagrams on 127.0.0.1.
struct Pcap(Vec<u8>);

impl Pcap {
    fn new() -> Pcap {
        let mut b = Vec::new();
        b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&4u16.to_le_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&262_144u32.to_le_bytes());
        b.extend_from_slice(&228u32.to_le_bytes()); // LINKTYPE_IPV4
        Pcap(b)
    }

    fn udp(&mut self, n: u32, src: u16, dst: u16, payload: &[u8]) {
        let mut udp = Vec::with_capacity(8 + payload.len());
        udp.extend_from_slice(&src.to_be_bytes());
        udp.extend_from_slice(&dst.to_be_bytes());
        udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(&[0, 0]); // no checksum
        udp.extend_from_slice(payload);
        self.ip(n, 17, &udp);
    }

    /// A TCP segment (PSH, ACK) at sequence number `seq`; checksum left zero (tshark does not
    /// verify it by default).
    fn tcp(&mut self, n: u32, src: u16, dst: u16, seq: u32, payload: &[u8]) {
        let mut tcp = Vec::with_capacity(20 + payload.len());
        tcp.extend_from_slice(&src.to_be_bytes());
        tcp.extend_from_slice(&dst.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&1u32.to_be_bytes());
        tcp.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(payload);
        self.ip(n, 6, &tcp);
    }

    /// An IPv4 packet from and to 127.0.0.1, at second `n` of the capture.
    fn ip(&mut self, n: u32, proto: u8, transport: &[u8]) {
        let total = (20 + transport.len()) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64; // TTL
        ip[9] = proto;
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let sum = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum::<u32>();
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        let len = (20 + transport.len()) as u32;
        self.0.extend_from_slice(&n.to_le_bytes());
        self.0.extend_from_slice(&0u32.to_le_bytes());
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(&ip);
        self.0.extend_from_slice(transport);
    }
}

/// Every vector, valid ones first: `(is_valid, vector)`.
fn all(vectors: &Value) -> Vec<(bool, &Value)> {
    let valid = vectors["valid"].as_array().into_iter().flatten().map(|v| (true, v));
    let invalid = vectors["invalid"].as_array().into_iter().flatten().map(|v| (false, v));
    valid.chain(invalid).collect()
}

/// Writes the capture of every vector.
pub fn write_pcap(vectors: &Value) -> Result<Vec<u8>, String> {
    let default = vectors["default_max_frame_size"].as_u64().unwrap_or(65536);
    let mut pcap = Pcap::new();
    let mut n = 0;
    for (i, (_, v)) in all(vectors).into_iter().enumerate() {
        let port = FIRST_PORT + i as u16;
        let bytes = hex_decode(v["hex"].as_str().unwrap_or(""))?;
        let limit = v["max_frame_size"].as_u64().unwrap_or(default);
        let id = v["id"].as_str().unwrap_or("");
        if id.contains("pre-handshake") {
            pcap.udp(n, port, RECEIVER_PORT, &hello(65536));
        } else {
            pcap.udp(n, RECEIVER_PORT, port, &hello(limit));
        }
        pcap.udp(n + 1, port, RECEIVER_PORT, &bytes);
        n += 2;
    }
    Ok(pcap.0)
}

/// Hostile input for the dissector (the check is only that tshark reports no Lua error): every
/// vector (its first 256 bytes), valid or invalid, cut at every length and with each byte
/// inverted (of the first 64), one UDP datagram each after both HELLOs; and every vector on its own TCP connection
/// after a HELLO, followed by the same mutants back to back (so that frame boundaries fall
/// anywhere), cut into segments of 1, 2, 3, … 97 bytes.
pub fn write_fuzz_pcap(vectors: &Value) -> Result<Vec<u8>, String> {
    let mut pcap = Pcap::new();
    for (i, (_, v)) in all(vectors).into_iter().enumerate() {
        let n = i as u32;
        let mut bytes = hex_decode(v["hex"].as_str().unwrap_or(""))?;
        // The large vectors (fragments of §9.4) add time, not cases: their first 256 bytes.
        bytes.truncate(256);
        let head = bytes.len().min(64);
        let mut mutants: Vec<Vec<u8>> = (1..head).map(|k| bytes[..k].to_vec()).collect();
        for k in 0..head {
            let mut m = bytes.clone();
            m[k] ^= 0xff;
            mutants.push(m);
        }
        let (uport, tport) = (FIRST_PORT + 1000 + i as u16, FIRST_PORT + 2000 + i as u16);
        pcap.udp(n, uport, RECEIVER_PORT, &hello(65536));
        pcap.udp(n, RECEIVER_PORT, uport, &hello(65536));
        for m in &mutants {
            pcap.udp(n, uport, RECEIVER_PORT, m);
        }
        let mut stream = hello(65536);
        stream.extend_from_slice(&bytes);
        for m in &mutants {
            stream.extend_from_slice(m);
        }
        let (mut seq, mut size, mut at) = (2u32, 1usize, 0usize);
        while at < stream.len() {
            let end = (at + size).min(stream.len());
            pcap.tcp(n, tport, RECEIVER_PORT, seq, &stream[at..end]);
            seq = seq.wrapping_add((end - at) as u32);
            at = end;
            size = size % 97 + 1;
        }
    }
    Ok(pcap.0)
}

/// The vector fields tandem.lua shows under another name: `(vector key, dissector field, hex)`.
const FIELDS: [(&str, &str, bool); 20] = [
    ("id", "tandem.id", false),
    ("module", "tandem.module", false),
    ("method", "tandem.method", false),
    ("status", "tandem.status", false),
    ("budget_us", "tandem.budget_us", false),
    ("total_len", "tandem.total_len", false),
    ("bound", "tandem.bound", false),
    ("msgs", "tandem.msgs", false),
    ("bytes", "tandem.bytes", false),
    ("received_items", "tandem.received_items", false),
    ("min_version", "tandem.hello.min_version", false),
    ("max_version", "tandem.hello.max_version", false),
    ("param_count", "tandem.hello.param_count", false),
    ("count", "tandem.ack.count", false),
    ("payload", "tandem.payload", true),
    ("key", "tandem.key", true),
    ("data", "tandem.data", true),
    ("auth", "tandem.hello.auth", true),
    ("session", "tandem.hello.session", true),
    ("magic", "tandem.hello.magic", true),
];

fn value_text(v: &Value, hex: bool) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if hex => Some(colon_hex(s)),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// What one decoded packet holds: its fields (flattened) and its tandem expert infos.
fn packet_fields(layers: &Value) -> (Vec<(String, String)>, Vec<String>) {
    fn walk(v: &Value, key: &str, f: &mut Vec<(String, String)>, e: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(msg) = m.get("_ws.expert.message").and_then(Value::as_str) {
                    let name = m.keys().find(|k| k.starts_with("tandem.")).cloned().unwrap_or_default();
                    e.push(format!("{name}: {msg}"));
                }
                for (k, c) in m {
                    walk(c, k, f, e);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, f, e)),
            Value::String(s) if key.starts_with("tandem.") => f.push((key.to_string(), s.clone())),
            _ => {}
        }
    }
    let (mut f, mut e) = (Vec::new(), Vec::new());
    if let Some(t) = layers.get("tandem") {
        walk(t, "", &mut f, &mut e);
    }
    (f, e)
}

/// Compares tshark's decoding of [`write_pcap`]'s capture with the vectors. Returns the number
/// of vectors checked and the problems.
pub fn check(vectors: &Value, tshark: &Value) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    // Per source port, the layers of its packets in order.
    let mut by_port: HashMap<u16, Vec<&Value>> = HashMap::new();
    for p in tshark.as_array().into_iter().flatten() {
        let layers = &p["_source"]["layers"];
        let src = layers["udp"]["udp.srcport"].as_str().and_then(|s| s.parse().ok());
        let dst = layers["udp"]["udp.dstport"].as_str().and_then(|s| s.parse::<u16>().ok());
        if let (Some(src), Some(dst)) = (src, dst) {
            let key = if src == RECEIVER_PORT { dst } else { src };
            by_port.entry(key).or_default().push(layers);
        }
    }
    let list = all(vectors);
    for (i, (valid, v)) in list.iter().enumerate() {
        let id = v["id"].as_str().unwrap_or("?");
        let packets = by_port.get(&(FIRST_PORT + i as u16)).cloned().unwrap_or_default();
        let [hello_pkt, vector_pkt] = packets[..] else {
            problems
                .push(format!("{id}: expected 2 packets (HELLO, vector), tshark shows {}", packets.len()));
            continue;
        };
        let (_, hello_experts) = packet_fields(hello_pkt);
        if let Some(e) = hello_experts.iter().find(|e| e.starts_with("tandem.malformed")) {
            problems.push(format!("{id}: the preceding HELLO is reported malformed: {e}"));
        }
        let (fields, experts) = packet_fields(vector_pkt);
        let malformed: Vec<&String> = experts
            .iter()
            .filter(|e| e.starts_with("tandem.malformed") || e.starts_with("tandem.datagram_dropped"))
            .collect();
        if *valid {
            if !malformed.is_empty() {
                problems.push(format!("{id}: valid vector reported as {malformed:?}"));
            }
            let want_type = match v["frame"]["type"].as_str().unwrap_or("?") {
                "EXTENSION" => format!("extension 0x{:02x}", v["frame"]["type_code"].as_u64().unwrap_or(0)),
                t => t.to_string(),
            };
            let got_type: Vec<&str> =
                fields.iter().filter(|(k, _)| k == "tandem.type_name").map(|(_, v)| v.as_str()).collect();
            if got_type != [want_type.as_str()] {
                problems.push(format!("{id}: type {want_type}, tshark shows {got_type:?}"));
            }
            for (key, field, hex) in FIELDS {
                let Some(want) = v["frame"].get(key).and_then(|x| value_text(x, hex)) else { continue };
                let got: Vec<&str> =
                    fields.iter().filter(|(k, _)| k == field).map(|(_, v)| v.as_str()).collect();
                if got != [want.as_str()] {
                    problems.push(format!("{id}: {field}: vector {want:?}, tshark {got:?}"));
                }
            }
            for (list_key, sub) in [("params", ["id", "value"]), ("ranges", ["first_id", "n"])] {
                let Some(items) = v["frame"].get(list_key).and_then(Value::as_array) else { continue };
                for s in sub {
                    let field = match (list_key, s) {
                        ("params", "id") => "tandem.hello.param.id",
                        ("params", _) => "tandem.hello.param.value",
                        (_, "first_id") => "tandem.ack.first_id",
                        _ => "tandem.ack.n",
                    };
                    let want: Vec<String> = items.iter().filter_map(|it| value_text(&it[s], false)).collect();
                    let got: Vec<String> =
                        fields.iter().filter(|(k, _)| k == field).map(|(_, v)| v.clone()).collect();
                    if want != got {
                        problems.push(format!("{id}: {field}: vector {want:?}, tshark {got:?}"));
                    }
                }
            }
        } else {
            let error = v["error"].as_str().unwrap_or("?");
            if !malformed
                .iter()
                .any(|e| e.starts_with("tandem.malformed") && e.contains(&format!(": {error}")))
            {
                problems.push(format!(
                    "{id}: expected a malformed expert info naming {error}, tshark shows {experts:?}"
                ));
            }
        }
    }
    (list.len(), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_canonical_and_the_hello_is_well_formed() {
        assert_eq!(varint(63), [0x3f]);
        assert_eq!(varint(64), [0x40, 0x40]);
        assert_eq!(varint(65536), [0x80, 0x01, 0x00, 0x00]);
        let h = hello(65536);
        match tandem_core::frame::Frame::decode(&h, 65536) {
            Ok(tandem_core::frame::Decoded::Frame(tandem_core::frame::Frame::Hello(h), _)) => {
                assert_eq!(h.params.get(1), Some(65536))
            }
            other => panic!("{other:?}"),
        }
    }
}
