//! Plays the whole conformance suite against both runtimes of this repository over `tls://`
//! (SPEC.md §3.9), with certificates made at test time (`tandem_testkit::pki`): the runner
//! dials with a client certificate a server that requires one (mutual TLS), and, for the cases
//! where the implementation dials, serves a server certificate the runtime's client checks
//! against the CA alone. Every case that is not skipped must pass (a failing case is retried
//! once, alone), as in `tests/self_test.rs`; the UDP-only cases (§14, §9.6) are skipped.

use std::time::{Duration, Instant};

use tandem_conformance::cases;
use tandem_conformance::runner::{self, Options, Outcome};
use tandem_conformance::selftest::{self, Runtime, TlsPems};
use tandem_testkit::pki::Ca;

fn pems() -> TlsPems {
    let ca = Ca::new("tandem conformance test CA");
    let server = ca.server(&["127.0.0.1", "localhost"]);
    let client = ca.client("conformance-runner");
    TlsPems {
        ca: ca.pem.into_bytes(),
        server_cert: server.cert_pem.into_bytes(),
        server_key: server.key_pem.into_bytes(),
        client_cert: client.cert_pem.into_bytes(),
        client_key: client.key_pem.into_bytes(),
    }
}

#[test]
fn the_suite_passes_over_tls_against_both_runtimes() {
    let start = Instant::now();
    let all = cases::all();
    let opts = Options { timeout: Duration::from_secs(20), ..Options::default() };
    let p = pems();
    let handles: Vec<_> = [Runtime::Std, Runtime::Smol]
        .into_iter()
        .map(|rt| {
            let (all, opts, p) = (all.clone(), opts.clone(), p.clone());
            std::thread::spawn(move || selftest::run_cell_with(rt, "tls", &all, &opts, Some(&p)))
        })
        .collect();
    let cells: Vec<_> = handles.into_iter().map(|h| h.join().expect("cell thread")).collect();
    let mut unexpected = Vec::new();
    for c in &cells {
        let (passed, failed, skipped) = runner::counts(&c.results);
        println!("{} over tls: {passed} passed, {failed} failed, {skipped} skipped", c.runtime.name());
        for r in &c.results {
            if let Outcome::Skipped(why) = &r.outcome {
                println!("  skipped {} ({why})", r.id);
            }
        }
        assert!(passed > 300, "{} over tls: only {passed} cases passed", c.runtime.name());
        for r in &c.results {
            if let Outcome::Failed { .. } = r.outcome {
                let retry = Options { cases: vec![r.id.clone()], ..opts.clone() };
                let again = selftest::run_cell_with(c.runtime, "tls", &all, &retry, Some(&p));
                if again.results.iter().all(|x| !matches!(x.outcome, Outcome::Failed { .. })) {
                    println!(
                        "FLAKY: {} {} over tls failed once, passed on retry:\n{}",
                        r.id,
                        c.runtime.name(),
                        runner::text(std::slice::from_ref(r), false)
                    );
                    continue;
                }
                unexpected.push(format!(
                    "==== {} over tls ====\n{}",
                    c.runtime.name(),
                    runner::text(std::slice::from_ref(r), false)
                ));
            }
        }
    }
    assert!(unexpected.is_empty(), "{} cases failed:\n{}", unexpected.len(), unexpected.join("\n"));
    println!("the suite over tls took {:?}", start.elapsed());
}
