//! Checks the Wireshark dissector `tools/wireshark/tandem.lua` against real traffic; driven by
//! `tools/wireshark/test.sh`, which captures loopback with dumpcap and decodes with tshark.
//!
//! ```text
//! tandem-wireshark-check traffic --log LOG --ports PORTS --go GO
//!     Binds a tandem-std server over TCP and one over UDP (datagram mode), each behind a
//!     recording relay; writes the ports to capture to PORTS ("tcp 1234" lines); waits until
//!     the file GO exists (the capture is running); runs the exchanges (unary, failing with a
//!     status body, keyed, notifications, a signal, a cancelled call, a fragmented message,
//!     streams with credit, FIN and RESET, a call from the server) and writes every frame
//!     each side sent to LOG (JSON lines).
//! tandem-wireshark-check compare --log LOG --tshark JSON
//!     Compares tshark's `-T json --no-duplicate-keys` output with LOG field by field; exits 1
//!     with a readable list of differences.
//! tandem-wireshark-check vectors-pcap --vectors FRAMES.json --out PCAP --fuzz-out PCAP
//!     Writes the conformance frame vectors as a capture (one UDP datagram each), and a
//!     capture of their mutants over UDP and TCP (hostile input: tshark must show no Lua error).
//! tandem-wireshark-check vectors-check --vectors FRAMES.json --tshark JSON
//!     Checks tshark's decoding of that capture: valid vectors with their fields and no
//!     malformed expert info, invalid ones reported malformed with their §3.3 error.
//! ```

mod compare;
mod expect;
mod log;
mod relay;
mod traffic;
mod vectors;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:\n  tandem-wireshark-check traffic --log LOG --ports PORTS --go GO\n  tandem-wireshark-check compare --log LOG --tshark JSON\n  tandem-wireshark-check vectors-pcap --vectors FRAMES.json --out PCAP --fuzz-out PCAP\n  tandem-wireshark-check vectors-check --vectors FRAMES.json --tshark JSON";

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn vectors_pcap(args: &[String]) -> Result<(), String> {
    let (vectors, out) = (read_json(&arg(args, "--vectors")?)?, arg(args, "--out")?);
    let pcap = vectors::write_pcap(&vectors)?;
    std::fs::write(&out, pcap).map_err(|e| format!("{}: {e}", out.display()))?;
    let fuzz = arg(args, "--fuzz-out")?;
    let pcap = vectors::write_fuzz_pcap(&vectors)?;
    std::fs::write(&fuzz, pcap).map_err(|e| format!("{}: {e}", fuzz.display()))
}

fn vectors_check(args: &[String]) -> Result<bool, String> {
    let (vectors, tshark) = (read_json(&arg(args, "--vectors")?)?, read_json(&arg(args, "--tshark")?)?);
    let (n, problems) = vectors::check(&vectors, &tshark);
    if problems.is_empty() {
        let _ = writeln!(
            std::io::stdout(),
            "ok: {n} conformance frame vectors decoded as specified (valid ones field by field, invalid ones with their decode error)"
        );
        return Ok(true);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "MISMATCH: {} of {n} vectors:", problems.len());
    for p in &problems {
        let _ = writeln!(out, "  {p}");
    }
    Ok(false)
}

fn arg(args: &[String], name: &str) -> Result<PathBuf, String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .ok_or_else(|| format!("missing {name}\n{USAGE}"))
}

fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn traffic(args: &[String]) -> Result<(), String> {
    let (log_path, ports_path, go) = (arg(args, "--log")?, arg(args, "--ports")?, arg(args, "--go")?);
    let prepared = traffic::Prepared::bind()?;
    let ports: String = prepared.ports()?.iter().map(|(t, p)| format!("{t} {p}\n")).collect();
    write_atomically(&ports_path, &ports)?;
    traffic::wait_for(&go, Duration::from_secs(60))?;
    let (tcp, udp) = prepared.run()?;
    let mut lines = log::tcp_lines(0, &tcp)?;
    lines.extend(log::udp_lines(1, &udp)?);
    let mut text = String::new();
    for l in &lines {
        text += &l.to_string();
        text.push('\n');
    }
    write_atomically(&log_path, &text)?;
    let frames = lines.iter().filter(|l| l["kind"] == "frame").count();
    let _ = writeln!(
        std::io::stdout(),
        "logged {frames} frames (TCP: {} + {} bytes, UDP: {} + {} datagrams)",
        tcp.c2s.len(),
        tcp.s2c.len(),
        udp.c2s.len(),
        udp.s2c.len()
    );
    Ok(())
}

fn compare(args: &[String]) -> Result<bool, String> {
    let (log_path, json_path) = (arg(args, "--log")?, arg(args, "--tshark")?);
    let log_text = std::fs::read_to_string(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log: Vec<serde_json::Value> = log_text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let json_text =
        std::fs::read_to_string(&json_path).map_err(|e| format!("{}: {e}", json_path.display()))?;
    let tshark: serde_json::Value = serde_json::from_str(&json_text)
        .map_err(|e| format!("{}: not tshark JSON: {e}", json_path.display()))?;
    let report = compare::compare(&log, &tshark);
    let types: Vec<String> = report.types.iter().map(|(t, n)| format!("{t}×{n}")).collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "frame types logged: {}", types.join(" "));
    if report.problems.is_empty() {
        let _ = writeln!(
            out,
            "ok: {} frames and {} fields decoded by tshark as the senders logged them",
            report.frames, report.fields
        );
        return Ok(true);
    }
    let _ =
        writeln!(out, "MISMATCH: {} differences ({} frames compared):", report.problems.len(), report.frames);
    for p in report.problems.iter().take(60) {
        let _ = writeln!(out, "  {p}");
    }
    if report.problems.len() > 60 {
        let _ = writeln!(out, "  … and {} more", report.problems.len() - 60);
    }
    Ok(false)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("traffic") => traffic(&args).map(|()| true),
        Some("compare") => compare(&args),
        Some("vectors-pcap") => vectors_pcap(&args).map(|()| true),
        Some("vectors-check") => vectors_check(&args),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tandem-wireshark-check: {e}");
            ExitCode::from(2)
        }
    }
}
