//! One API, two runtimes (RUNTIMES.md): this test reads the sources of tandem-std and
//! tandem-smol (with the `tandem-runtime` types tandem-smol re-exports as they are) and fails
//! when a public name at either crate's root, or a public method of one of the shared API types,
//! exists in one runtime and not in the other — unless it is one of the differences that
//! blocking versus async forces, each listed below with its reason and in RUNTIMES.md.
//!
//! It reads source text (`pub use` lists, `impl` blocks and their `pub fn` / `pub async fn`
//! items), not the compiler's view: signatures are compared by RUNTIMES.md's table and by the
//! tests that run the same scenarios in both runtimes, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Public names only one runtime has, with the reason blocking vs async forces it.
const ONLY_STD: &[(&str, &str)] = &[
    ("PoolStats", "the std handler pool's gauges (smol runs handlers on the user's executor)"),
    ("Ctx::blocking", "parks a pool worker around blocking work (smol: the executor's blocking pool)"),
    ("Server::handler_pool", "the std handler pool's gauges"),
    ("Client::handler_pool", "the std handler pool's gauges"),
    ("PendingCall::wait", "blocks for the outcome (smol: PendingCall is a Future, awaited)"),
    ("Blocking", "the flavor of declared services with blocking handlers (smol: Async)"),
    ("MemberWatch::changed_within", "a bounded blocking wait (smol: race changed() with any timer)"),
    ("Completions", "one thread blocking on many calls at once (smol: the executor awaits many calls)"),
];
const ONLY_SMOL: &[(&str, &str)] = &[
    ("Spawner", "async handlers run on an executor the user chooses"),
    ("SmolSpawner", "the default executor"),
    ("Task", "what a Spawner runs"),
    ("Async", "the flavor of declared services with async handlers (std: Blocking)"),
    ("PendingCall::poll_into", "wait_into as a poll, for a caller's own future or set (std: Completions)"),
];

/// The API types whose methods both runtimes must share.
const TYPES: &[&str] = &[
    "Client",
    "Mesh",
    "MemberWatch",
    "Server",
    "Handlers",
    "Ctx",
    "Peer",
    "PendingCall",
    "StateWatch",
    "RawSender",
    "RawReceiver",
    "StreamSender",
    "StreamReceiver",
];

fn read_dir(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

/// The names a crate root exports with `pub use` (the last path segment, or the `as` alias).
fn root_names(lib: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stmt = String::new();
    for line in lib.lines() {
        let t = line.trim();
        if stmt.is_empty() && !t.starts_with("pub use ") {
            if let Some(rest) = t.strip_prefix("pub mod ") {
                names.insert(rest.trim_end_matches(';').to_string());
            }
            continue;
        }
        stmt.push_str(t);
        stmt.push(' ');
        if !t.ends_with(';') {
            continue;
        }
        let body = stmt.trim().trim_start_matches("pub use ").trim_end_matches(';').to_string();
        stmt.clear();
        let items: Vec<String> = match (body.find('{'), body.rfind('}')) {
            (Some(a), Some(b)) => body[a + 1..b].split(',').map(str::to_string).collect(),
            _ => vec![body.clone()],
        };
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let name = match item.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => item.rsplit("::").next().unwrap().trim(),
            };
            if name != "*" && name != "self" {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// `Type::method` for every `pub fn` / `pub async fn` in an inherent `impl` block of `types`.
fn methods(files: &[String], types: &[&str]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for src in files {
        let mut current: Option<String> = None;
        for line in src.lines() {
            if line.starts_with("impl") {
                // `impl<T> Name<T> {`, not `impl Trait for Name`.
                current = (!line.contains(" for ")).then(|| {
                    let head = line.trim_start_matches("impl").trim();
                    let head = if head.starts_with('<') {
                        head.split_once("> ").map_or(head, |x| x.1)
                    } else {
                        head
                    };
                    head.split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap_or("").to_string()
                });
                continue;
            }
            if line.starts_with('}') {
                current = None;
                continue;
            }
            let Some(ty) = current.as_deref().filter(|t| types.contains(t)) else { continue };
            let t = line.trim_start();
            let indent = line.len() - t.len();
            let rest = t.strip_prefix("pub async fn ").or_else(|| t.strip_prefix("pub fn "));
            if let (4, Some(rest)) = (indent, rest) {
                let name = rest.split(['(', '<']).next().unwrap();
                out.insert(format!("{ty}::{name}"));
            }
        }
    }
    out
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn surfaces() -> (BTreeSet<String>, BTreeSet<String>) {
    let std_files = read_dir(&root().join("runtime-std/src"));
    let smol_files = read_dir(&root().join("runtime-smol/src"));
    let mut common = read_dir(&root().join("runtime-common/src"));
    common.extend(read_dir(&root().join("runtime-common/src/mesh")));
    let lib = |crate_dir: &str| std::fs::read_to_string(root().join(crate_dir).join("src/lib.rs")).unwrap();
    let mut std_api = root_names(&lib("runtime-std"));
    let mut smol_api = root_names(&lib("runtime-smol"));
    std_api.extend(methods(&std_files, TYPES));
    // tandem-smol re-exports tandem-runtime's API types as they are; its own are Client,
    // Server, Handlers.
    let smol_all: Vec<String> = smol_files.into_iter().chain(common).collect();
    let std_has_own: BTreeSet<&str> = TYPES.iter().copied().collect();
    smol_api.extend(methods(&smol_all, &std_has_own.into_iter().collect::<Vec<_>>()));
    (std_api, smol_api)
}

#[test]
fn both_runtimes_expose_the_same_names_and_methods() {
    let (std_api, smol_api) = surfaces();
    assert!(std_api.contains("Peer::call") && smol_api.contains("Peer::call"), "the parser found no methods");
    let allowed = |list: &[(&str, &str)], name: &str| list.iter().any(|(n, _)| *n == name);
    let mut problems = BTreeMap::new();
    for n in std_api.difference(&smol_api) {
        if !allowed(ONLY_STD, n) {
            problems.insert(n.clone(), "tandem-std only");
        }
    }
    for n in smol_api.difference(&std_api) {
        if !allowed(ONLY_SMOL, n) {
            problems.insert(n.clone(), "tandem-smol only");
        }
    }
    assert!(
        problems.is_empty(),
        "public items in one runtime and not the other (add the counterpart, or list the difference with its \
         reason here and in RUNTIMES.md if blocking vs async forces it):\n{problems:#?}"
    );
    // The allowed differences are real (a stale entry is removed).
    for (n, _) in ONLY_STD {
        assert!(std_api.contains(*n) && !smol_api.contains(*n), "ONLY_STD lists {n}, which is not std-only");
    }
    for (n, _) in ONLY_SMOL {
        assert!(
            smol_api.contains(*n) && !std_api.contains(*n),
            "ONLY_SMOL lists {n}, which is not smol-only"
        );
    }
}

#[test]
fn runtimes_md_names_every_root_item() {
    let doc = std::fs::read_to_string(root().join("RUNTIMES.md")).unwrap();
    let (std_api, smol_api) = surfaces();
    let missing: Vec<_> = std_api
        .union(&smol_api)
        .filter(|n| !n.contains("::"))
        .filter(|n| !doc.contains(&format!("`{n}")) && !doc.contains(&format!("{n}`")))
        .collect();
    assert!(missing.is_empty(), "public items RUNTIMES.md does not mention: {missing:?}");
}
