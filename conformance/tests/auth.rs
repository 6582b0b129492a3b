//! The authentication cases (SPEC.md §5.6, §13.3; the test service's authenticating mode,
//! Appendix A.5) against both runtimes of this repository over TCP and Unix sockets; and the
//! rest of the suite skips them without `--auth`.

use std::time::Duration;

use tandem_conformance::cases;
use tandem_conformance::runner::{self, Options, Outcome};
use tandem_conformance::selftest::{temp_addr, Runtime, Server};
use tandem_conformance::suite::Role;

#[test]
fn authentication_cases_pass_against_both_runtimes() {
    let all = cases::all();
    let opts = Options { auth: true, timeout: Duration::from_secs(20), ..Options::default() };
    for rt in [Runtime::Std, Runtime::Smol] {
        for transport in ["tcp", "unix"] {
            let server = Server::start_opts(rt, &temp_addr(transport, "auth"), true, true).unwrap();
            let results = runner::run(&server.addr(), Role::RunnerDials, &all, &opts);
            server.stop();
            let ran: Vec<_> = results.iter().filter(|r| !matches!(r.outcome, Outcome::Skipped(_))).collect();
            assert_eq!(
                ran.len(),
                cases::AUTH_CASES.len(),
                "{} over {transport}: only the auth cases run",
                rt.name()
            );
            let failed: Vec<_> = ran.iter().filter(|r| matches!(r.outcome, Outcome::Failed { .. })).collect();
            assert!(
                failed.is_empty(),
                "{} over {transport}:\n{}",
                rt.name(),
                runner::text(&failed.into_iter().map(|r| (*r).clone()).collect::<Vec<_>>(), true)
            );
        }
    }
}

#[test]
fn without_auth_mode_the_authentication_cases_are_skipped() {
    let all = cases::all();
    let opts =
        Options { cases: cases::AUTH_CASES.iter().map(|s| s.to_string()).collect(), ..Options::default() };
    let server = Server::start_opts(Runtime::Smol, &temp_addr("tcp", "noauth"), true, false).unwrap();
    let results = runner::run(&server.addr(), Role::RunnerDials, &all, &opts);
    server.stop();
    assert_eq!(results.len(), cases::AUTH_CASES.len());
    assert!(results.iter().all(|r| matches!(&r.outcome, Outcome::Skipped(why) if why == cases::NEEDS_AUTH)));
}
