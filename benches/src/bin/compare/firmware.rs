//! `--firmware`: the code size tandem-core adds to a thumbv7em-none-eabihf image (opt-level "s",
//! LTO, panic = abort). Builds `benches/firmware-size` (its own workspace) and compares the
//! sections of its two binaries: `baseline` (a UART echo loop) and `with_core` (the same loop
//! driving a tandem-core connection in static storage).

use serde_json::{json, Map, Value};
use std::path::Path;
use std::process::Command;

const TARGET: &str = "thumbv7em-none-eabihf";

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

fn run() -> Result<Value, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-size");
    let status = Command::new("cargo")
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build of firmware-size failed ({status}); is the {TARGET} target installed?"
        ));
    }
    let bin = dir.join("target").join(TARGET).join("release");
    let base = sections(&bin.join("baseline"))?;
    let with = sections(&bin.join("with_core"))?;
    let d = |k: &str| with[k].as_u64().unwrap_or(0) as i64 - base[k].as_u64().unwrap_or(0) as i64;
    Ok(json!({
        "target": TARGET,
        "profile": "opt-level = \"s\", lto = true, codegen-units = 1, panic = \"abort\"",
        "baseline": base,
        "with_core": with,
        "added_text_bytes": d("text"),
        "added_flash_bytes": d("flash"),
        "added_ram_bytes": d("data") + d("bss"),
    }))
}

/// Builds and measures; an `{"error": …}` object on failure.
pub fn measure() -> Value {
    run().unwrap_or_else(|e| json!({ "error": e }))
}
