//! What the C programs' tests share: finding the static library `cargo test` built and compiling
//! an example against it with the system C compiler.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory cargo put this test's dependencies in (`target/<profile>`), where the
/// static library of this crate was built along with its rlib.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash>
    exe.parent().and_then(Path::parent).expect("test binary under target/<profile>/deps").to_path_buf()
}

/// The static library `cargo test` built for this test: under `deps/` with its hash (the copy
/// at `target/<profile>/libtandem_c.a` exists only after a `cargo build` of the crate, and may
/// be stale), the newest one.
fn static_library() -> PathBuf {
    let dir = profile_dir();
    let newest = std::fs::read_dir(dir.join("deps"))
        .expect("target/<profile>/deps")
        .flatten()
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("libtandem_c-") && n.ends_with(".a")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, p)| p);
    newest.unwrap_or_else(|| {
        panic!(
            "no libtandem_c-*.a under {}: build the crate first (cargo build -p tandem-c)",
            dir.join("deps").display()
        )
    })
}

/// Compiles `examples/<name>.c` with the system C compiler against the library and the header;
/// returns the executable's path.
pub fn compile(name: &str) -> PathBuf {
    let lib = static_library();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-I"])
        .arg(dir.join("include"))
        .arg(dir.join(format!("examples/{name}.c")))
        .arg(&lib)
        // What `cargo rustc --crate-type staticlib -- --print native-static-libs` lists.
        .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the C compiler `{cc}` ({e}): install one (Debian: apt-get install gcc) or set CC"
            )
        });
    assert!(status.success(), "compiling examples/{name}.c with `{cc}` failed ({status})");
    out
}
