//! The suite's cases against the checked-in manifest `conformance/cases.txt`.
//!
//! Implementers track cases by id (`5.3/2`): a case renamed, renumbered or lost breaks their
//! tracking silently, so this test fails on any difference between the suite and the manifest —
//! an id, a title, the requirement quoted, the mode (who dials), the transports, a fixed skip
//! reason, or the counts. The manifest is the output of `tandem-conformance list` under a
//! comment header. After a deliberate change (a new case, a requirement quoted anew), regenerate
//! it and review the diff:
//!
//! ```text
//! TANDEM_UPDATE_MANIFEST=1 cargo test -p tandem-conformance --test manifest
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use tandem_conformance::cases;
use tandem_conformance::runner;

const HEADER: &str = "\
# The cases of the tandem conformance suite, as `tandem-conformance list` prints them: id, mode
# (connect: the runner dials; listen: the implementation dials), title, when the case applies,
# and the requirement it quotes from SPEC.md. conformance/tests/manifest.rs fails when the suite
# differs from this file. Ids never change meaning: a new case takes the next number of its
# section. Regenerate after a deliberate change, and review the diff:
#   TANDEM_UPDATE_MANIFEST=1 cargo test -p tandem-conformance --test manifest
";

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases.txt")
}

fn current() -> String {
    let all = cases::all();
    let refs: Vec<_> = all.iter().collect();
    format!("{HEADER}{}", runner::listing(&refs))
}

/// The ids listed in a manifest (the first word of every line that starts a case).
fn ids(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next().filter(|id| id.contains('/')).map(str::to_string))
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
