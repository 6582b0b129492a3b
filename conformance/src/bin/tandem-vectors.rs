//! Writes or checks `conformance/vectors/frames.json`.
//!
//! ```text
//! tandem-vectors write   # regenerate the file from the code
//! tandem-vectors check   # exit 1 if the checked-in file differs from what the code generates
//! ```

#![forbid(unsafe_code)]

use std::process::ExitCode;

use tandem_conformance::vectors;

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let path = vectors::checked_in_path();
    match mode.as_str() {
        "write" | "check" => {}
        _ => {
            eprintln!(
                "usage: tandem-vectors write|check\n  write: regenerate {}\n  check: exit 1 if it is stale",
                path.display()
            );
            return ExitCode::from(2);
        }
    }
    let doc = vectors::generate();
    let text = vectors::render_document(&doc);
    let counts = format!(
        "{} valid, {} invalid, {} varint cases",
        doc.valid.len(),
        doc.invalid.len(),
        doc.varints.canonical.len() + doc.varints.non_canonical.len() + doc.varints.truncated.len()
    );
    if mode == "write" {
        if let Err(e) = std::fs::write(&path, &text) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {} ({counts})", path.display());
        return ExitCode::SUCCESS;
    }
    match std::fs::read_to_string(&path) {
        Ok(on_disk) if on_disk == text => {
            println!("{} is up to date ({counts})", path.display());
            ExitCode::SUCCESS
        }
        Ok(_) => {
            eprintln!(
                "{} differs from what the code generates; regenerate it with\n  {}",
                path.display(),
                vectors::REGENERATE
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cannot read {}: {e}; generate it with\n  {}", path.display(), vectors::REGENERATE);
            ExitCode::FAILURE
        }
    }
}
