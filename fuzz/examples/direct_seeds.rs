//! Picks seeds for `corpus/conn_frames/` or `corpus/pair_schedule/` that reach direct receive
//! (`Connection::direct_offer`: stream payloads read straight into the item's own buffer),
//! from the inputs of a libFuzzer run. libFuzzer reaches it in about one input in a thousand
//! (pseudo-random bytes: one in millions); these seeds start every run (CI's included) from
//! inputs that do, and `proto-core/tests/fuzz_corpus.rs` checks under `cargo test` that the
//! corpora still reach it.
//!
//!     cd fuzz
//!     cargo +nightly fuzz run -s none conn_frames /tmp/cf corpus/conn_frames -- -max_total_time=120
//!     cargo run --release --example direct_seeds -- conn_frames /tmp/cf
//!
//! Every input of the directories is run through the target's own checks; of those that
//! received at least one item directly, the smallest `WANT` are written as
//! `corpus/TARGET/seed-direct-N` (replacing earlier ones of that name). With `--random N`
//! instead of directories, N pseudo-random inputs from a fixed seed are tried (the same on
//! every machine): slow, but it finds a first input to start a libFuzzer run from
//! (`cargo fuzz run conn_frames /tmp/cf /tmp/first`), whose descendants often keep reaching it.

use arbitrary::{Arbitrary, Unstructured};
use std::fs;
use std::path::Path;
use tandem_fuzz::{conn_frames, pair};

/// Seeds kept per target.
const WANT: usize = 8;

/// xorshift64*: a fixed, portable sequence (nothing here protects anything).
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn direct_items(target: &str, data: &[u8]) -> Option<u64> {
    let u = Unstructured::new(data);
    match target {
        "conn_frames" => conn_frames::Input::arbitrary_take_rest(u).ok().map(|i| conn_frames::run(&i)),
        "pair_schedule" => pair::Input::arbitrary_take_rest(u).ok().map(|i| pair::run(&i)),
        other => panic!("unknown target {other}: conn_frames or pair_schedule"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((target, dirs)) = args.split_first() else {
        eprintln!("usage: direct_seeds conn_frames|pair_schedule DIR...");
        std::process::exit(2);
    };
    let mut found = Vec::new();
    let mut tried = 0;
    if dirs.first().map(String::as_str) == Some("--random") {
        let n: u64 = dirs.get(1).and_then(|n| n.parse().ok()).expect("--random N");
        let mut state = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..n {
            tried += 1;
            let len = 64 + (next(&mut state) % 2_000) as usize;
            let data: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
            if let Some(n @ 1..) = direct_items(target, &data) {
                found.push((data.len(), n, data));
            }
        }
    }
    for dir in dirs.iter().filter(|d| !d.starts_with("--") && d.parse::<u64>().is_err()) {
        for entry in fs::read_dir(dir).expect("read an input directory") {
            let data = fs::read(entry.expect("a directory entry").path()).expect("read an input");
            tried += 1;
            if let Some(n @ 1..) = direct_items(target, &data) {
                found.push((data.len(), n, data));
            }
        }
    }
    found.sort();
    found.dedup_by(|a, b| a.2 == b.2);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    for (i, (len, n, data)) in found.iter().take(WANT).enumerate() {
        let path = corpus.join(format!("seed-direct-{i}"));
        fs::write(&path, data).expect("write a seed");
        println!("{}: {len} bytes, {n} items received directly", path.display());
    }
    println!("{target}: {} of {tried} inputs reach direct receive", found.len());
}
