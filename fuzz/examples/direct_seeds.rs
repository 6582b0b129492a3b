//! Writes seeds of `corpus/conn_frames/` and `corpus/pair_schedule/` that reach direct receive
//! (`Connection::direct_offer`: stream payloads read straight into the item's own buffer).
//! libFuzzer reaches it in about one input in a thousand; these seeds start every run (CI's
//! included) from inputs that do, and `proto-core/tests/fuzz_corpus.rs` checks that the
//! corpora still reach it under `cargo test`.
//!
//!     cd fuzz && cargo run --release --example direct_seeds
//!
//! Inputs are pseudo-random bytes from a fixed seed, decoded as each target's structured
//! input, run through the target's own checks, and kept when at least one item arrived
//! directly: the same seeds on every machine.

use arbitrary::{Arbitrary, Unstructured};
use std::fs;
use std::path::Path;
use tandem_fuzz::{conn_frames, pair};

/// Seeds kept per target.
const WANT: usize = 6;
/// Inputs tried per target at most.
const TRIES: u64 = 3_000_000;

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
        _ => pair::Input::arbitrary_take_rest(u).ok().map(|i| pair::run(&i)),
    }
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in ["conn_frames", "pair_schedule"] {
        let mut state = 0x9e37_79b9_7f4a_7c15;
        let (mut kept, mut tried) = (0, 0);
        while kept < WANT && tried < TRIES {
            tried += 1;
            let len = 64 + (next(&mut state) % 2_000) as usize;
            let data: Vec<u8> = (0..len).map(|_| next(&mut state) as u8).collect();
            if let Some(n @ 1..) = direct_items(target, &data) {
                let path = corpus.join(target).join(format!("seed-direct-{kept}"));
                fs::write(&path, &data).expect("write a seed");
                println!("{}: {len} bytes, {n} items received directly", path.display());
                kept += 1;
            }
        }
        println!("{target}: {kept} seeds in {tried} inputs");
    }
}
