//! Replays the checked-in corpus of every fuzz target (`fuzz/corpus/<target>/`: frame_roundtrip,
//! handshake, datagram, resume, serial, conn_frames, pair_schedule) through the targets' own checks, so
//! `cargo test` exercises them on stable Rust without cargo-fuzz or libFuzzer.
//!
//! The checks are not copied: the files of `fuzz/src/` are compiled into this test as modules
//! (at the crate root, so their `crate::` paths resolve as in the fuzz crate), and the two
//! structured targets decode their inputs with the same `arbitrary` rules libFuzzer uses
//! (`Arbitrary::arbitrary_take_rest`).

#[path = "../../fuzz/src/actions.rs"]
mod actions;
#[path = "../../fuzz/src/checks.rs"]
mod checks;
#[path = "../../fuzz/src/conn_frames.rs"]
mod conn_frames;
#[path = "../../fuzz/src/pair.rs"]
mod pair;
#[path = "../../fuzz/src/resume.rs"]
mod resume;
#[path = "../../fuzz/src/serial.rs"]
mod serial;
#[path = "../../fuzz/src/track.rs"]
mod track;

use arbitrary::{Arbitrary, Unstructured};

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let data = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path, data)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// Runs `check` on every file, naming the file that fails.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let files = corpus(target);
    for (path, data) in &files {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(data)));
        if let Err(e) = result {
            let hex: String = data.iter().take(256).map(|b| format!("{b:02x}")).collect();
            eprintln!("{target}: {} failed; input (first 256 bytes): {hex}", path.display());
            std::panic::resume_unwind(e);
        }
    }
    files.len()
}

#[test]
fn frame_roundtrip_corpus() {
    let n = replay("frame_roundtrip", checks::frame_roundtrip);
    assert!(n >= 10, "only {n} frame_roundtrip seeds");
}

#[test]
fn handshake_corpus() {
    let connected = std::cell::Cell::new(0);
    let n = replay("handshake", |data| {
        let out = checks::handshake(data);
        assert!(out.closed && out.events >= 1);
        if out.connected {
            connected.set(connected.get() + 1);
        }
    });
    // The recorded sessions must still complete the handshake: if they stop doing so, the seeds
    // no longer reach past it and need regenerating (`cargo run --example seeds` in fuzz/).
    assert!(connected.get() >= 4, "only {} of {n} handshake seeds connected", connected.get());
}

#[test]
fn datagram_corpus() {
    let requests = std::cell::Cell::new(0);
    let dropped = std::cell::Cell::new(0);
    let n = replay("datagram", |data| {
        let out = checks::datagram(data);
        requests.set(requests.get() + out.requests);
        dropped.set(dropped.get() + out.dropped);
    });
    // The seeds must still reach past the handshake into the window and cache logic.
    assert!(n >= 30, "only {n} datagram seeds");
    assert!(requests.get() >= 30, "datagram seeds delivered only {} requests", requests.get());
    assert!(dropped.get() >= 1, "no datagram seed exercises the whole-datagram drop");
}

#[test]
fn serial_corpus() {
    let total = std::cell::Cell::new(serial::SerialOutcome::default());
    let n = replay("serial", |data| {
        let o = serial::serial(data);
        let mut t = total.get();
        t.frames += o.frames;
        t.dropped += o.dropped;
        total.set(t);
    });
    let t = total.get();
    assert!(n >= 4, "only {n} serial seeds");
    // The seeds must keep reaching both delivered and dropped frames.
    assert!(t.frames >= 10 && t.dropped >= 3, "serial seeds: {t:?}");
}

#[test]
fn setup_byte_covers_every_config() {
    for b in 0..=u8::MAX {
        let s = checks::HandshakeSetup::from_byte(b);
        let _ = (s.dialer, s.resume, s.answer, s.eof);
        let cfg = checks::configs(s.config);
        assert!(cfg.validate().is_ok(), "config {} invalid", s.config);
        assert!(checks::footprint_bound(&cfg) >= checks::slot_capacity(&cfg));
    }
}

#[test]
fn resume_corpus() {
    let total = std::cell::Cell::new(resume::ResumeOutcome::default());
    let n = replay("resume", |data| {
        let o = resume::resume(data);
        let mut t = total.get();
        t.resumptions += o.resumptions;
        t.handled += o.handled;
        t.replayed += o.replayed;
        t.evicted += o.evicted;
        total.set(t);
    });
    let t = total.get();
    assert!(n >= 30, "only {n} resume seeds");
    // The seeds must keep exercising what the target is for.
    assert!(t.resumptions >= 20, "resume seeds resumed only {} sessions", t.resumptions);
    assert!(t.replayed >= 5, "resume seeds replayed only {} answers from the cache", t.replayed);
    assert!(t.handled >= 50, "resume seeds ran only {} handlers", t.handled);
}

/// Decodes a structured target's input the way `fuzz_target!(|input: T| …)` does.
fn structured<'a, T: Arbitrary<'a>>(data: &'a [u8]) -> Option<T> {
    T::arbitrary_take_rest(Unstructured::new(data)).ok()
}

#[test]
fn conn_frames_corpus() {
    let (decoded, direct) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let n = replay("conn_frames", |data| {
        if let Some(input) = structured::<conn_frames::Input>(data) {
            decoded.set(decoded.get() + 1);
            direct.set(direct.get() + conn_frames::run(&input));
        }
    });
    assert!(decoded.get() * 2 >= n, "only {} of {n} conn_frames seeds decode as inputs", decoded.get());
    // The `seed-direct-*` inputs (`fuzz/examples/direct_seeds.rs`) receive stream items directly.
    assert!(direct.get() > 0, "no conn_frames seed reaches direct receive");
}

#[test]
fn pair_schedule_corpus() {
    let (decoded, direct) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    let n = replay("pair_schedule", |data| {
        if let Some(input) = structured::<pair::Input>(data) {
            decoded.set(decoded.get() + 1);
            direct.set(direct.get() + pair::run(&input));
        }
    });
    assert!(decoded.get() * 2 >= n, "only {} of {n} pair_schedule seeds decode as inputs", decoded.get());
    assert!(direct.get() > 0, "no pair_schedule seed reaches direct receive");
}
