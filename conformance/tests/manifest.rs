//! The suite's cases against the checked-in manifest `conformance/cases.txt`.
//!
//! Implementers track cases by id (`5.3/2`): a case renamed, renumbered or lost breaks their
//! tracking silently, so this test fails on any difference between the suite and the manifest —
//! an id, its section, a title, the requirement quoted, the mode (who dials), the transports, a
//! fixed skip reason, or the order. The manifest has one tab-separated line per case under a
//! comment header. After a deliberate change (a new case, a requirement quoted anew), regenerate
//! it and review the diff:
//!
//! ```text
//! TANDEM_UPDATE_MANIFEST=1 cargo test -p tandem-conformance --test manifest
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use tandem_conformance::cases;
use tandem_conformance::suite::{Case, Role};

const HEADER: &str = "\
# The cases of the tandem conformance suite, one per line, in the order they run, tab-separated:
# id, section, mode (connect: the runner dials; listen: the implementation dials), transports
# (stream: TCP, Unix and SEQPACKET; udp: udp:// only; stream+session: needs session resumption),
# title, the requirement quoted from SPEC.md, and (a 7th field) the reason a case is always skipped.
# conformance/tests/manifest.rs fails when the suite differs from this file. Ids never change
# meaning: a new case takes the next number of its section. Regenerate after a deliberate change,
# and review the diff:
#   TANDEM_UPDATE_MANIFEST=1 cargo test -p tandem-conformance --test manifest
";

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases.txt")
}

fn line(c: &Case) -> String {
    let mode = match c.role {
        Role::RunnerDials => "connect",
        Role::RunnerAccepts => "listen",
    };
    let transports = if c.udp_only() {
        "udp"
    } else if c.section == "13" || c.section.starts_with("13.") {
        "stream+session"
    } else {
        "stream"
    };
    let skip = c.skip.as_deref().map(|s| format!("\t{s}")).unwrap_or_default();
    format!("{}\t{}\t{mode}\t{transports}\t{}\t{}{skip}", c.id, c.section, c.title, c.requirement)
}

fn current() -> String {
    let mut out = String::from(HEADER);
    for c in cases::all() {
        let _ = writeln!(out, "{}", line(&c));
    }
    out
}

/// The ids listed in a manifest.
fn ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_cases_are_the_ones_of_the_manifest() {
    let now = current();
    if std::env::var_os("TANDEM_UPDATE_MANIFEST").is_some() {
        std::fs::write(path(), &now).expect("write conformance/cases.txt");
        return;
    }
    let file = std::fs::read_to_string(path()).expect("conformance/cases.txt");
    if file == now {
        return;
    }
    let (had, has) = (ids(&file), ids(&now));
    let lost: Vec<_> = had.difference(&has).collect();
    let new: Vec<_> = has.difference(&had).collect();
    let first = file.lines().zip(now.lines()).position(|(a, b)| a != b).unwrap_or(0);
    panic!(
        "the suite differs from conformance/cases.txt\n  ids lost: {lost:?}\n  ids new: {new:?}\n  \
         first differing line {}:\n    manifest: {:?}\n    suite:    {:?}\nIf the change is deliberate, \
         regenerate the manifest and review its diff:\n  TANDEM_UPDATE_MANIFEST=1 cargo test -p \
         tandem-conformance --test manifest",
        first + 1,
        file.lines().nth(first).unwrap_or(""),
        now.lines().nth(first).unwrap_or("")
    );
}

#[test]
fn the_counts_are_those_of_the_manifest() {
    // 628 cases in all, 43 of them over udp:// only: the manifest pins the per-transport counts.
    let file = std::fs::read_to_string(path()).expect("conformance/cases.txt");
    let rows: Vec<Vec<&str>> =
        file.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('\t').collect()).collect();
    let all = cases::all();
    assert_eq!(rows.len(), all.len());
    let udp = rows.iter().filter(|r| r[3] == "udp").count();
    assert_eq!(udp, all.iter().filter(|c| c.udp_only()).count());
    let listen = rows.iter().filter(|r| r[2] == "listen").count();
    assert_eq!(listen, all.iter().filter(|c| c.role == Role::RunnerAccepts).count());
}

#[test]
fn ids_are_unique_and_hand_written_cases_are_numbered_from_1_in_their_section() {
    let all = cases::all();
    let mut seen = BTreeSet::new();
    let mut numbers: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for c in &all {
        assert!(seen.insert(c.id.as_str()), "duplicate case id {}", c.id);
        let (section, rest) = c.id.split_once('/').expect("an id is SECTION/…");
        assert_eq!(section, c.section, "{}: the id starts with its section", c.id);
        if let Ok(n) = rest.parse::<u32>() {
            numbers.entry(section).or_default().push(n);
        } else {
            assert!(
                rest.starts_with("invalid/"),
                "{}: SECTION/N, or SECTION/VECTOR-ID for a vector case",
                c.id
            );
        }
    }
    for (section, mut ns) in numbers {
        ns.sort_unstable();
        let want: Vec<u32> = (1..=ns.len() as u32).collect();
        assert_eq!(ns, want, "§{section}: hand-written cases are numbered 1, 2, … without gaps");
    }
}

#[test]
fn the_suite_runs_in_spec_order() {
    // Sections in SPEC.md order (the hand-written cases, then the vector cases), cases of a
    // section in the order of their numbers: the order of every report.
    let all = cases::handwritten();
    let key = |id: &str| -> Vec<u32> {
        let (s, n) = id.split_once('/').expect("SECTION/N");
        s.split('.').chain([n]).map(|x| x.parse().expect("numbers")).collect()
    };
    for w in all.windows(2) {
        assert!(key(&w[0].id) < key(&w[1].id), "{} comes before {}", w[0].id, w[1].id);
    }
}
