//! Compares tshark's decoding (`tshark -T json --no-duplicate-keys`, with tandem.lua loaded)
//! with the sender log, frame by frame and field by field, on both legs of every connection
//! and in both directions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

/// Fields the sender cannot know (frame numbers of the capture).
const IGNORED: [&str; 2] = ["tandem.fragment_of", "tandem.reassembled.first_in"];
/// Expert infos that a correct capture must not raise.
const FORBIDDEN_EXPERTS: [&str; 3] =
    ["tandem.malformed", "tandem.protocol_violation", "tandem.datagram_dropped"];

/// Frame types each transport's exchanges must have produced (the check is not vacuous).
const REQUIRED_TCP: [&str; 13] = [
    "HELLO",
    "CALL",
    "NOTIFY",
    "SIGNAL",
    "RESPONSE",
    "CANCEL",
    "STREAM_OPEN",
    "STREAM_DATA",
    "STREAM_FIN",
    "STREAM_RESET",
    "STREAM_CREDIT",
    "CONTINUATION",
    "CLOSE",
];
const REQUIRED_UDP: [&str; 8] = ["HELLO", "CALL", "NOTIFY", "SIGNAL", "RESPONSE", "CANCEL", "ACK", "CLOSE"];

/// One tandem frame as tshark decoded it.
struct Decoded {
    packet: String,
    fields: Vec<(String, String)>,
    experts: Vec<String>,
}

fn walk(v: &Value, key: &str, d: &mut Decoded) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "_ws.expert" {
                    collect_experts(child, d);
                } else if !k.starts_with("_ws") {
                    walk(child, k, d);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| walk(x, key, d)),
        Value::String(s) if !IGNORED.contains(&key) => d.fields.push((key.to_string(), s.clone())),
        _ => {}
    }
}

fn collect_experts(v: &Value, d: &mut Decoded) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k.starts_with("tandem.") {
                    let msg = m.get("_ws.expert.message").and_then(Value::as_str).unwrap_or("");
                    d.experts.push(format!("{k}: {msg}"));
                }
                collect_experts(child, d);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_experts(x, d)),
        _ => {}
    }
}

/// Anything in a packet that says a dissector failed: a Lua error (an expert info whose
/// message starts "Lua Error") or a malformed-packet item of another dissector.
fn lua_errors(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k.starts_with("_ws.malformed") || k.starts_with("_ws.lua.error") {
                    out.push(format!("{k}: {child}"));
                }
                lua_errors(child, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| lua_errors(x, out)),
        Value::String(s) if s.contains("Lua Error") => out.push(s.clone()),
        _ => {}
    }
}

fn port(layer: &Value, key: &str) -> Option<u16> {
    layer.get(key)?.as_str()?.parse().ok()
}

/// Decoded frames by (transport, source port, destination port), in capture order.
fn index(tshark: &Value, problems: &mut Vec<String>) -> HashMap<(String, u16, u16), Vec<Decoded>> {
    let mut map: HashMap<(String, u16, u16), Vec<Decoded>> = HashMap::new();
    for p in tshark.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let layers = &p["_source"]["layers"];
        let number = layers["frame"]["frame.number"].as_str().unwrap_or("?").to_string();
        let mut errs = Vec::new();
        lua_errors(layers, &mut errs);
        for e in errs {
            problems.push(format!("packet {number}: {e}"));
        }
        let (transport, src, dst) = if let Some(t) = layers.get("tcp") {
            ("tcp", port(t, "tcp.srcport"), port(t, "tcp.dstport"))
        } else if let Some(u) = layers.get("udp") {
            ("udp", port(u, "udp.srcport"), port(u, "udp.dstport"))
        } else {
            continue;
        };
        let (Some(src), Some(dst)) = (src, dst) else { continue };
        let objs: Vec<&Value> = match layers.get("tandem") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            _ => continue,
        };
        let list = map.entry((transport.to_string(), src, dst)).or_default();
        for o in objs {
            let mut d = Decoded { packet: number.clone(), fields: Vec::new(), experts: Vec::new() };
            walk(o, "", &mut d);
            list.push(d);
        }
    }
    map
}

fn grouped(fields: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut m: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in fields {
        m.entry(k.as_str()).or_default().push(v.as_str());
    }
    m
}

fn short(v: &[&str]) -> String {
    let s = format!("{v:?}");
    if s.len() > 160 {
        format!("{}… ({} chars)", &s[..s.char_indices().take(150).last().map_or(0, |(i, _)| i)], s.len())
    } else {
        s
    }
}

/// What [`compare`] found.
pub struct Report {
    /// Frames compared (over both legs).
    pub frames: usize,
    /// Fields compared.
    pub fields: usize,
    /// Frames per type in the log (one leg).
    pub types: BTreeMap<String, usize>,
    /// Every difference, readable.
    pub problems: Vec<String>,
}

/// Compares the log lines with tshark's JSON.
pub fn compare(log: &[Value], tshark: &Value) -> Report {
    let mut problems = Vec::new();
    let actual = index(tshark, &mut problems);
    let mut report = Report { frames: 0, fields: 0, types: BTreeMap::new(), problems: Vec::new() };
    let mut seen_types: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for conn in log.iter().filter(|l| l["kind"] == "conn") {
        let id = conn["conn"].as_u64().unwrap_or(0);
        let transport = conn["transport"].as_str().unwrap_or("?").to_string();
        let frames: Vec<&Value> =
            log.iter().filter(|l| l["kind"] == "frame" && l["conn"].as_u64() == Some(id)).collect();
        for f in &frames {
            let ty = f["type"].as_str().unwrap_or("?").to_string();
            *report.types.entry(format!("{transport} {ty}")).or_default() += 1;
            seen_types.entry(transport.clone()).or_default().insert(ty);
        }
        for (leg_no, leg) in conn["legs"].as_array().into_iter().flatten().enumerate() {
            let (Some(a), Some(b)) = (leg[0].as_u64(), leg[1].as_u64()) else { continue };
            let leg_name = if leg_no == 0 { "client↔relay" } else { "relay↔server" };
            for (dir, src, dst) in [("c2s", a, b), ("s2c", b, a)] {
                let want: Vec<&&Value> = frames.iter().filter(|f| f["dir"] == dir).collect();
                let empty = Vec::new();
                let got = actual.get(&(transport.clone(), src as u16, dst as u16)).unwrap_or(&empty);
                let here = format!("{transport} conn {id} {leg_name} ({src}→{dst}) {dir}");
                if want.len() != got.len() {
                    problems.push(format!(
                        "{here}: the sender logged {} frames, tshark decoded {}",
                        want.len(),
                        got.len()
                    ));
                }
                for (i, (w, g)) in want.iter().zip(got).enumerate() {
                    report.frames += 1;
                    let wf: Vec<(String, String)> =
                        serde_json::from_value(w["fields"].clone()).unwrap_or_default();
                    let (we, ge) = (grouped(&wf), grouped(&g.fields));
                    let ty = w["type"].as_str().unwrap_or("?");
                    for k in we.keys().chain(ge.keys()).collect::<BTreeSet<_>>() {
                        report.fields += 1;
                        let (x, y) =
                            (we.get(k).cloned().unwrap_or_default(), ge.get(k).cloned().unwrap_or_default());
                        if x != y {
                            problems.push(format!(
                                "{here} frame #{i} ({ty}, packet {}): {k}: sender {} ≠ tshark {}",
                                g.packet,
                                short(&x),
                                short(&y)
                            ));
                        }
                    }
                    for e in &g.experts {
                        if FORBIDDEN_EXPERTS.iter().any(|f| e.starts_with(&format!("{f}:"))) {
                            problems.push(format!(
                                "{here} frame #{i} ({ty}, packet {}): expert info {e}",
                                g.packet
                            ));
                        }
                    }
                }
            }
        }
    }
    for (transport, required) in [("tcp", &REQUIRED_TCP[..]), ("udp", &REQUIRED_UDP[..])] {
        let seen = seen_types.get(transport).cloned().unwrap_or_default();
        let missing: Vec<_> = required.iter().filter(|t| !seen.contains(**t)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "the {transport} exchanges produced no {missing:?} frame: the check would be vacuous"
            ));
        }
    }
    if report.frames == 0 {
        problems.push("no frame was compared".into());
    }
    report.problems = problems;
    report
}
