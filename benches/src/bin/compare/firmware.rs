//! `--firmware`: the code size tandem-core adds to a thumbv7em-none-eabihf image (opt-level "s",
//! LTO, panic = abort). Builds `benches/firmware-size` (its own workspace) once per core
//! configuration of [`BUILDS`] and measures the sections of its images: `baseline` (a UART echo
//! loop), `with_core` (the same loop driving a byte-stream connection in static storage),
//! `with_serial` (a full peer over a serial line: datagram mode, calls and notifications both
//! ways), `with_service` (a declared service through the no-alloc dispatcher) and `with_resume`
//! (`with_core`'s acceptor keeping a resumable session when the build has `resume`). `baseline` and
//! `with_core` of the build without datagram mode make the first table, as before issue 17. What a core
//! feature costs is the difference of one image's `.text` between two builds ([`COSTS`]); where
//! the bytes of the full peer are, by module, comes from its symbol table (`llvm-nm`).
//!
//! With `--from-json FILE --firmware` only this part is measured again and replaces the
//! `firmware` object of FILE (the other figures are kept).

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const TARGET: &str = "thumbv7em-none-eabihf";

/// The issue 17 goal: a full peer in at most 24 KiB of `.text`.
pub const GOAL_TEXT_BYTES: u64 = 24 * 1024;

/// The image the goal is about.
pub const GOAL_IMAGE: &str = "with_serial";

/// Core configurations: (name, features of `benches/firmware-size`, what it is). The first is
/// the full peer; each other one leaves something out.
pub const BUILDS: &[(&str, &str, &str)] = &[
    ("full", "typed,streams,fragmentation,serial", "every feature an image may use"),
    ("no streams", "typed,fragmentation,serial", "`streams` left out"),
    ("no fragmentation", "typed,streams,serial", "`fragmentation` left out"),
    ("lean", "typed,serial", "`streams` and `fragmentation` left out"),
    (
        "lean, compact digest",
        "typed,serial,compact-digest",
        "lean, with SHA-256 rolled (`sha2/force-soft-compact`)",
    ),
    ("no typed", "streams,fragmentation,serial", "`typed` left out"),
    ("datagram, no serial", "typed,streams,fragmentation,datagram", "`datagram` without the serial framing"),
    ("byte streams only", "typed,streams,fragmentation", "no `datagram` (nor `serial`)"),
    (
        "byte streams, resume",
        "typed,streams,fragmentation,resume",
        "session resumption without an allocator (`resume`, which brings `datagram`), no `serial`",
    ),
];

/// What each feature costs: (feature, image, build with it, build without it, note).
pub const COSTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "streams",
        "with_serial",
        "full",
        "no streams",
        "in the full peer over serial (datagram mode never uses them)",
    ),
    ("streams", "with_core", "full", "no streams", "in the byte-stream image that consumes stream items"),
    ("fragmentation", "with_serial", "full", "no fragmentation", "in the full peer over serial"),
    ("fragmentation", "with_core", "full", "no fragmentation", "in the byte-stream image"),
    ("streams + fragmentation", "with_serial", "full", "lean", "both left out of the full peer"),
    (
        "datagram",
        "with_core",
        "datagram, no serial",
        "byte streams only",
        "compiled in, not used (the transport is chosen at run time)",
    ),
    ("serial (beyond datagram)", "with_core", "full", "datagram, no serial", "compiled in, not used"),
    ("typed", "with_serial", "full", "no typed", "compiled in, not used by the image"),
    (
        "resume (beyond datagram)",
        "with_resume",
        "byte streams, resume",
        "datagram, no serial",
        "an acceptor keeping a resumable session in `SessionStorage`",
    ),
    (
        "resume (with the datagram it brings)",
        "with_resume",
        "byte streams, resume",
        "byte streams only",
        "over the same byte-stream image without either",
    ),
    (
        "SHA-256 unrolled (vs compact)",
        "with_serial",
        "lean",
        "lean, compact digest",
        "the image's choice of `sha2` form",
    ),
];

fn sections(elf: &Path) -> Result<Map<String, Value>, String> {
    let out = Command::new("llvm-size")
        .arg("-A")
        .arg(elf)
        .output()
        .or_else(|_| Command::new("size").arg("-A").arg(elf).output())
        .map_err(|e| format!("llvm-size/size: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |name: &str| -> u64 {
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                let n = w.next()?;
                let size = w.next()?.parse::<u64>().ok()?;
                (n == name || n.starts_with(&format!("{name}."))).then_some(size)
            })
            .sum()
    };
    let (t, r, d, b) = (get(".text"), get(".rodata"), get(".data"), get(".bss"));
    let exidx = get(".ARM.exidx") + get(".ARM.extab");
    let mut m = Map::new();
    m.insert("text".into(), json!(t));
    m.insert("rodata".into(), json!(r));
    m.insert("data".into(), json!(d));
    m.insert("bss".into(), json!(b));
    m.insert("flash".into(), json!(t + r + d + exidx));
    Ok(m)
}

/// The group a `.text` symbol counts in (as `benches/firmware-size/size_by_module.py`).
fn group(name: &str) -> String {
    let conn = name.find("tandem_core::conn::").map(|i| &name[i + "tandem_core::conn::".len()..]);
    let conn_mod = conn.and_then(|rest| {
        let m: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        rest[m.len()..].starts_with("::").then_some(m)
    });
    if name == "_start" {
        "_start (the loop, with what LTO inlined into it)".into()
    } else if let Some(m) = conn_mod.filter(|m| !m.is_empty()) {
        format!("tandem_core::conn::{m}")
    } else if name.contains("tandem_core::frame") {
        "tandem_core::frame".into()
    } else if name.contains("tandem_core::conn::Connection") {
        "tandem_core::conn (mod.rs)".into()
    } else if name.contains("tandem_core::serial") || name.contains("cobs::") || name.contains("crc::") {
        "serial framing (cobs, crc)".into()
    } else if let Some(rest) = name.find("tandem_core::").map(|i| &name[i + "tandem_core::".len()..]) {
        format!("tandem_core::{}", rest.split("::").next().unwrap_or(""))
    } else if name.contains("sha2") {
        "sha2 (request digests)".into()
    } else if name.contains("compiler_builtins") || name.contains("__aeabi") || name.contains("memcmp") {
        "compiler_builtins (memcpy, memmove, memclr, …)".into()
    } else if name.starts_with("core::") {
        "core".into()
    } else {
        "other".into()
    }
}

/// `.text` bytes per group of `elf`'s symbols.
fn modules(elf: &Path) -> Result<BTreeMap<String, u64>, String> {
    let out = Command::new("llvm-nm")
        .args(["--size-sort", "-S", "-C"])
        .arg(elf)
        .output()
        .map_err(|e| format!("llvm-nm: {e}"))?;
    let mut g = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        if parts.len() < 4 || !matches!(parts[2], "t" | "T") {
            continue;
        }
        let size = u64::from_str_radix(parts[1], 16).map_err(|e| format!("llvm-nm size: {e}"))?;
        *g.entry(group(parts[3])).or_insert(0) += size;
    }
    Ok(g)
}

fn build(dir: &Path, features: &str) -> Result<(), String> {
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", TARGET, "--no-default-features", "--features", features])
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of firmware-size --features {features} failed ({status}); is the {TARGET} target installed?"
        ));
    }
    Ok(())
}

fn run() -> Result<Value, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-size");
    let bin = dir.join("target").join(TARGET).join("release");
    let mut builds = Vec::new();
    let mut text: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (name, features, what) in BUILDS {
        eprintln!("firmware-size: building \"{name}\" (--features {features})");
        build(&dir, features)?;
        let mut images = Map::new();
        for image in ["baseline", "with_core", "with_serial", "with_service", "with_resume"] {
            let elf = bin.join(image);
            let wanted = match image {
                "with_serial" => features.contains("serial"),
                "with_service" => features.contains("typed"),
                _ => true,
            };
            if !wanted {
                continue;
            }
            let s = sections(&elf)?;
            text.insert((name.to_string(), image.to_string()), s["text"].as_u64().unwrap_or(0));
            images.insert(image.into(), Value::Object(s));
        }
        let mut b = json!({ "name": name, "features": features, "what": what, "images": images });
        if matches!(*name, "full" | "lean") {
            b["modules"] = json!({ GOAL_IMAGE: modules(&bin.join(GOAL_IMAGE))? });
        }
        builds.push(b);
    }
    // The first table (and the goals row "code size the core adds") keeps its meaning across
    // runs: the byte-stream image `with_core` in the build without datagram mode.
    let stream_only =
        builds.iter().find(|b| b["name"] == "byte streams only").ok_or("no byte-stream build")?;
    let full = stream_only["images"].clone();
    let costs: Vec<Value> = COSTS
        .iter()
        .map(|(feature, image, with, without, note)| {
            let a = text.get(&(with.to_string(), image.to_string())).copied().unwrap_or(0);
            let b = text.get(&(without.to_string(), image.to_string())).copied().unwrap_or(0);
            json!({ "feature": feature, "image": image, "with": with, "without": without,
                "with_text": a, "without_text": b, "bytes": a as i64 - b as i64, "note": note })
        })
        .collect();
    let base = full["baseline"].clone();
    let with = full["with_core"].clone();
    let d = |k: &str| with[k].as_u64().unwrap_or(0) as i64 - base[k].as_u64().unwrap_or(0) as i64;
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    Ok(json!({
        "target": TARGET,
        "profile": "opt-level = \"s\", lto = true, codegen-units = 1, panic = \"abort\"",
        "commit": commit,
        "baseline": base,
        "with_core": with,
        "added_text_bytes": d("text"),
        "added_flash_bytes": d("flash"),
        "added_ram_bytes": d("data") + d("bss"),
        "goal": { "image": GOAL_IMAGE, "build": BUILDS[0].0, "text_limit": GOAL_TEXT_BYTES,
            "text": text.get(&(BUILDS[0].0.to_string(), GOAL_IMAGE.to_string())) },
        "builds": builds,
        "costs": costs,
    }))
}

/// Builds and measures; an `{"error": …}` object on failure.
pub fn measure() -> Value {
    run().unwrap_or_else(|e| json!({ "error": e }))
}

/// The tables of the generated section, each with its title: `.text` of every image in every
/// build, what each feature costs, and where the full peer's bytes are. Empty for a JSON from
/// before the per-build measurements.
pub fn tables(fw: &Value) -> Vec<(String, Vec<Vec<String>>)> {
    let Some(builds) = fw.get("builds").and_then(Value::as_array) else { return Vec::new() };
    let images = ["baseline", "with_core", "with_serial", "with_service", "with_resume"];
    let cell = |b: &Value, image: &str| {
        b["images"][image]["text"].as_u64().map_or_else(|| "—".to_string(), |t| t.to_string())
    };
    let mut by_build = vec![{
        let mut h = vec!["build".to_string(), "features of benches/firmware-size".into()];
        h.extend(images.iter().map(|i| format!("`{i}`")));
        h
    }];
    for b in builds {
        let mut row = vec![
            format!("{} ({})", b["name"].as_str().unwrap_or(""), b["what"].as_str().unwrap_or("")),
            format!("`{}`", b["features"].as_str().unwrap_or("")),
        ];
        row.extend(images.iter().map(|i| cell(b, i)));
        by_build.push(row);
    }
    let mut costs = vec![vec![
        "feature".to_string(),
        "image".into(),
        "with (build)".into(),
        "without (build)".into(),
        "costs (.text bytes)".into(),
        "note".into(),
    ]];
    for c in fw["costs"].as_array().into_iter().flatten() {
        let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
        let n = |k: &str| c[k].as_i64().map_or_else(|| "—".to_string(), |v| v.to_string());
        costs.push(vec![
            format!("**{}**", s("feature")),
            format!("`{}`", s("image")),
            format!("{} ({})", n("with_text"), s("with")),
            format!("{} ({})", n("without_text"), s("without")),
            format!("**{}**", n("bytes")),
            s("note"),
        ]);
    }
    let mut out = vec![
        (format!("`.text` bytes of each image, per core configuration ({TARGET})"), by_build),
        ("What each feature costs (`.text` with − without)".to_string(), costs),
    ];
    let (full, lean) = (&builds[0]["modules"][GOAL_IMAGE], builds.iter().find(|b| b["name"] == "lean"));
    let lean = lean.map(|b| &b["modules"][GOAL_IMAGE]);
    if let Some(full) = full.as_object() {
        let mut rows: Vec<(&String, u64)> = full.iter().map(|(k, v)| (k, v.as_u64().unwrap_or(0))).collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut t = vec![vec!["group".to_string(), "full".into(), "lean".into()]];
        let lean_of = |k: &str| lean.and_then(|l| l[k].as_u64()).unwrap_or(0);
        for (k, v) in &rows {
            t.push(vec![k.to_string(), v.to_string(), lean_of(k).to_string()]);
        }
        let total_lean: u64 =
            lean.and_then(Value::as_object).map_or(0, |l| l.values().filter_map(Value::as_u64).sum());
        t.push(vec![
            "**total**".into(),
            rows.iter().map(|r| r.1).sum::<u64>().to_string(),
            total_lean.to_string(),
        ]);
        out.push((format!("Where the `.text` of `{GOAL_IMAGE}` is (symbols grouped by module)"), t));
    }
    out
}
