//! Plays the whole conformance suite against both runtimes of this repository over `ws://`
//! (SPEC.md §3.10): the runner dials the runtime's server over WebSocket and, for the cases
//! where the implementation dials, serves WebSocket itself (`tandem_conformance::ws`). Every
//! case that is not skipped must pass (a failing case is retried once, alone), as in
//! `tests/self_test.rs`; WebSocket is a packet transport, so the byte-stream-only cases and the
//! UDP-only cases (§14, §9.6) are skipped.

use std::time::{Duration, Instant};

use tandem_conformance::cases;
use tandem_conformance::runner::{self, Options, Outcome};
use tandem_conformance::selftest::{self, Runtime};

#[test]
fn the_suite_passes_over_websocket_against_both_runtimes() {
    let start = Instant::now();
    let all = cases::all();
    let opts = Options { timeout: Duration::from_secs(20), ..Options::default() };
    let handles: Vec<_> = [Runtime::Std, Runtime::Smol]
        .into_iter()
        .map(|rt| {
            let (all, opts) = (all.clone(), opts.clone());
            std::thread::spawn(move || selftest::run_cell_with(rt, "ws", &all, &opts, None))
        })
        .collect();
    let cells: Vec<_> = handles.into_iter().map(|h| h.join().expect("cell thread")).collect();
    let mut unexpected = Vec::new();
    for c in &cells {
        let (passed, failed, skipped) = runner::counts(&c.results);
        println!("{} over ws: {passed} passed, {failed} failed, {skipped} skipped", c.runtime.name());
        for r in &c.results {
            if let Outcome::Skipped(why) = &r.outcome {
                println!("  skipped {} ({why})", r.id);
            }
        }
        assert!(passed > 300, "{} over ws: only {passed} cases passed", c.runtime.name());
        for r in &c.results {
            if let Outcome::Failed { .. } = r.outcome {
                let retry = Options { cases: vec![r.id.clone()], ..opts.clone() };
                let again = selftest::run_cell_with(c.runtime, "ws", &all, &retry, None);
                if again.results.iter().all(|x| !matches!(x.outcome, Outcome::Failed { .. })) {
                    println!(
                        "FLAKY: {} {} over ws failed once, passed on retry:\n{}",
                        r.id,
                        c.runtime.name(),
                        runner::text(std::slice::from_ref(r), false)
                    );
                    continue;
                }
                unexpected.push(format!(
                    "==== {} over ws ====\n{}",
                    c.runtime.name(),
                    runner::text(std::slice::from_ref(r), false)
                ));
            }
        }
    }
    assert!(unexpected.is_empty(), "{} cases failed:\n{}", unexpected.len(), unexpected.join("\n"));
    println!("the suite over ws took {:?}", start.elapsed());
}
