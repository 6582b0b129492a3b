//! Fuzz harnesses for tandem-core. Each `fuzz_targets/*.rs` binary is a thin wrapper around one
//! function here, so the logic can also be replayed outside libFuzzer.

pub mod actions;
pub mod checks;
pub mod conn_frames;
pub mod pair;
pub mod resume;
pub mod serial;
pub mod track;
