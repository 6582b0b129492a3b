//! Plays the whole conformance suite against both runtimes of this repository over `tls://`
//! (SPEC.md §3.9), with certificates made at test time (`tandem_testkit::pki`): the runner
//! dials with a client certificate a server that requires one (mutual TLS), and, for the cases
//! where the implementation dials, serves a server certificate the runtime's client checks
//! against the CA alone. Every case that is not skipped must pass (a failing case is retried
//! once, alone), as in `tests/self_test.rs`; the UDP-only cases (§14, §9.6) are skipped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_conformance::cases;
use tandem_conformance::runner::{self, Options, Outcome};
use tandem_conformance::selftest::{self, Runtime, TlsPems};
use tandem_conformance::suite::{Ctx, Role};
use tandem_conformance::tls::TlsSettings;
use tandem_conformance::wire::{Log, Recv};
use tandem_core::addr::Address;
use tandem_core::frame::Frame;
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

fn tls_server(rt: Runtime, p: &TlsPems, require_client_cert: bool) -> selftest::Server {
    let mut tls = tandem_std::TlsServerConfig::from_pem(&p.server_cert, &p.server_key).expect("server TLS");
    if require_client_cert {
        tls = tls.require_client_certs(&p.ca).expect("client CA");
    }
    selftest::Server::start_tls(rt, "tls://127.0.0.1:0", true, false, Some(tls)).expect("server")
}

fn settings(ca: &[u8], client: Option<(&[u8], &[u8])>) -> TlsSettings {
    TlsSettings {
        ca: Some(ca.to_vec()),
        cert: client.map(|(c, _)| c.to_vec()),
        key: client.map(|(_, k)| k.to_vec()),
    }
}

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// A read that times out leaves the TLS stream usable (a partial record stays buffered in
/// rustls); the next exchange works.
#[test]
fn a_timed_out_read_over_tls_leaves_the_connection_usable() {
    let p = pems();
    for rt in [Runtime::Std, Runtime::Smol] {
        let server = tls_server(rt, &p, false);
        let addr = server.addr();
        let target = runner::target(&addr, Role::RunnerDials, &settings(&p.ca, None)).expect("target");
        let mut c = Ctx::new(target, log(), format!("tls-timeout-{}", rt.name()));
        c.open().unwrap_or_else(|e| panic!("{}: handshake over TLS: {e:?}", rt.name()));
        let w = c.w();
        // Whatever the implementation sends right after the handshake (credit, …), then silence.
        let mut quiet = false;
        for _ in 0..20 {
            if let Recv::Timeout = w.recv(Duration::from_millis(150)) {
                quiet = true;
                break;
            }
        }
        assert!(quiet, "{}: the read timed out", rt.name());
        w.send(&[Frame::Ping(*b"tls-ping")]).expect("send");
        let end = Instant::now() + Duration::from_secs(10);
        let pong = loop {
            match w.recv(end.saturating_duration_since(Instant::now())) {
                Recv::Frame(o) if matches!(o.frame(), Frame::Pong(_)) => {
                    break o.frame() == Frame::Pong(*b"tls-ping")
                }
                Recv::Frame(_) => {}
                r => panic!("{}: expected PONG, got {r:?}", rt.name()),
            }
        };
        assert!(pong, "{}: the PONG echoes the PING", rt.name());
        server.stop();
    }
}

fn first_failure(addr: &Address, tls: &TlsSettings) -> String {
    let all = cases::all();
    let opts = Options { cases: vec!["5.1/1".into()], tls: tls.clone(), ..Options::default() };
    let results = runner::run(addr, Role::RunnerDials, &all, &opts);
    assert_eq!(results.len(), 1, "case 5.1/1 exists and runs against the runner-dials role");
    match &results[0].outcome {
        Outcome::Failed { expected, actual } => {
            format!("expected {expected}; actual {actual}; {:?}", results[0].log)
        }
        o => panic!("expected a failure, got {o:?}"),
    }
}

fn refused(addr: &Address, role: Role, tls: &TlsSettings) -> String {
    match runner::target(addr, role, tls) {
        Ok(_) => panic!("{addr} with {tls:?}: accepted"),
        Err(e) => e.to_string(),
    }
}

/// The TLS failures a user can meet are reported, saying what went wrong.
#[test]
fn tls_mistakes_fail_the_cases_with_the_reason() {
    let p = pems();
    let server = tls_server(Runtime::Std, &p, true);
    let addr = server.addr();
    // No --tls-ca.
    let e = refused(&addr, Role::RunnerDials, &TlsSettings::default());
    assert!(e.to_string().contains("--tls-ca"), "{e}");
    // Half a client certificate.
    let half = TlsSettings { cert: Some(p.client_cert.clone()), ..settings(&p.ca, None) };
    let e = refused(&addr, Role::RunnerDials, &half);
    assert!(e.to_string().contains("--tls-key"), "{e}");
    // Listening on tls:// without a server certificate.
    let listen: Address = "tls://127.0.0.1:0".parse().expect("address");
    let e = refused(&listen, Role::RunnerAccepts, &settings(&p.ca, None));
    assert!(e.to_string().contains("--tls-cert"), "{e}");
    // A server certificate from another CA.
    let stranger = Ca::new("someone else");
    let f = first_failure(&addr, &settings(stranger.pem.as_bytes(), None));
    assert!(f.contains("TLS handshake failed") && f.contains("UnknownIssuer"), "{f}");
    // No client certificate for a server that requires one: TLS 1.3 reports it after the
    // client's handshake, on the first read.
    let f = first_failure(&addr, &settings(&p.ca, None));
    assert!(f.contains("CertificateRequired"), "{f}");
    server.stop();
}

/// RFC 8446 §6.1: each party sends close_notify before closing its write side. When the
/// runner ends its direction (close_notify) without CLOSE, the runtime suspends the session
/// (SPEC.md §13) and closes the transport: with its own close_notify, not a bare TCP close.
#[test]
fn a_runtime_closing_a_lost_tls_transport_sends_close_notify() {
    let p = pems();
    for rt in [Runtime::Std, Runtime::Smol] {
        let server = tls_server(rt, &p, false);
        let target =
            runner::target(&server.addr(), Role::RunnerDials, &settings(&p.ca, None)).expect("target");
        let log = log();
        let mut c = Ctx::new(target, log.clone(), format!("tls-close-notify-{}", rt.name()));
        c.open().unwrap_or_else(|e| panic!("{}: handshake over TLS: {e:?}", rt.name()));
        let w = c.w();
        w.shutdown_write();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            match w.recv(end.saturating_duration_since(Instant::now())) {
                Recv::Frame(_) => {}
                Recv::Eof => break,
                r => panic!("{}: expected the end of the transport, got {r:?}", rt.name()),
            }
        }
        let lines = log.lock().expect("log").join("\n");
        assert!(!lines.contains("without TLS close_notify"), "{}: {lines}", rt.name());
        server.stop();
    }
}
