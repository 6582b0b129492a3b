//! Plays every §13 (session resumption) case against the core-driven server of
//! `tandem_conformance::core_server`, which offers resumption, and requires all of them to pass
//! (none skipped): the proof that the §13 cases check what SPEC.md §13 requires of an
//! implementation that resumes sessions correctly.

use std::time::Duration;

use tandem_conformance::cases;
use tandem_conformance::core_server::{CoreServer, KNOWN_CORE_FAILURES};
use tandem_conformance::runner::{self, Options, Outcome};
use tandem_conformance::suite::Role;

#[test]
fn every_section_13_case_passes_against_the_core_server() {
    let server = CoreServer::start("127.0.0.1:0").expect("core server");
    let addr = server.address().parse().expect("address");
    let all = cases::all();
    let opts =
        Options { sections: vec!["13".into()], timeout: Duration::from_secs(20), ..Options::default() };
    let n = all.iter().filter(|c| opts.selects(c)).count();
    assert!(n >= 30, "only {n} §13 cases");
    assert!(all.iter().filter(|c| opts.selects(c)).all(|c| c.role == Role::RunnerDials));
    let results = runner::run(&addr, Role::RunnerDials, &all, &opts);
    println!("{}", runner::text(&results, false));
    assert_eq!(results.len(), n);
    let known = |id: &str| KNOWN_CORE_FAILURES.iter().any(|(k, _)| *k == id);
    // The authentication cases need the test service's authenticating mode, which the core
    // server does not have (tests/auth.rs runs them against both runtimes).
    let auth = |id: &str| cases::AUTH_CASES.contains(&id);
    let bad: Vec<_> = results
        .iter()
        .filter(|r| r.outcome != Outcome::Passed && !known(&r.id) && !auth(&r.id))
        .cloned()
        .collect();
    assert!(bad.is_empty(), "{} of {n} §13 cases did not pass:\n{}", bad.len(), runner::text(&bad, false));
    for (id, why) in KNOWN_CORE_FAILURES {
        let r = results.iter().find(|r| r.id == *id).expect("known failure is a §13 case");
        assert!(
            matches!(r.outcome, Outcome::Failed { .. }),
            "{id} passes now: remove it from KNOWN_CORE_FAILURES ({why})"
        );
    }
}

#[test]
fn section_13_cases_are_skipped_with_the_reason_when_no_token_is_offered() {
    // The runtimes offer resumption by default; this server is told not to.
    let server = tandem_conformance::selftest::Server::start_with(
        tandem_conformance::selftest::Runtime::Std,
        "tcp://127.0.0.1:0",
        false,
    )
    .expect("std server");
    let all = cases::all();
    let opts = Options { cases: vec!["13.3/1".into(), "13.5/1".into()], ..Options::default() };
    let results = runner::run(&server.addr(), Role::RunnerDials, &all, &opts);
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.outcome, Outcome::Skipped(cases::NO_TOKEN.into()), "{}", r.id);
    }
    server.stop();
}
