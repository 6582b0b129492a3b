//! The transport gating of the datagram-mode cases, and the runner's UDP plumbing end to end
//! against a minimal fake UDP acceptor (this repository has no datagram-mode implementation yet,
//! so the §14 requirements themselves cannot be verified here).

use std::net::UdpSocket;
use std::time::Duration;

use tandem_conformance::cases;
use tandem_conformance::runner::{self, Options, Outcome};
use tandem_conformance::selftest::{Runtime, Server};
use tandem_conformance::suite::{hello_bytes, Role};
use tandem_core::frame::{Decoded, Frame};

#[test]
fn datagram_cases_are_skipped_with_the_reason_on_a_byte_stream() {
    let server = Server::start(Runtime::Std, "tcp://127.0.0.1:0").expect("std server");
    let all = cases::all();
    let opts = Options { sections: vec!["14".into(), "9.6".into()], ..Options::default() };
    let results = runner::run(&server.addr(), Role::RunnerDials, &all, &opts);
    assert!(results.len() >= 40, "{} cases", results.len());
    for r in &results {
        assert_eq!(r.outcome, Outcome::Skipped(cases::NEEDS_UDP.into()), "{}", r.id);
    }
    server.stop();
}

#[test]
fn byte_stream_cases_are_skipped_with_the_reason_over_udp() {
    let all = cases::all();
    let opts = Options { cases: vec!["5.3/1".into(), "13.3/1".into(), "7.1/1".into()], ..Options::default() };
    let addr = "udp://127.0.0.1:9".parse().expect("address");
    let results = runner::run(&addr, Role::RunnerDials, &all, &opts);
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r.outcome, Outcome::Skipped(cases::NEEDS_STREAM.into()), "{}", r.id);
    }
}

/// A fake acceptor that ignores the first HELLO of each peer (so the runner must retransmit)
/// and answers the next ones with a fixed HELLO and PINGs with PONGs; anything else is dropped.
fn fake_acceptor() -> String {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = s.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut seen = std::collections::HashSet::new();
        let mut b = vec![0u8; 65536];
        let hello = hello_bytes(1, 1, 0, b"fake-udp", b"", &[(3, 16), (4, 0)]);
        while let Ok((n, from)) = s.recv_from(&mut b) {
            let mut d = &b[..n];
            let mut out = Vec::new();
            while let Ok(Decoded::Frame(f, k)) = Frame::decode(d, 65536) {
                match f {
                    Frame::Hello(_) if seen.insert(from) => {}
                    Frame::Hello(_) => out.extend_from_slice(&hello),
                    Frame::Ping(p) => {
                        out.extend_from_slice(&tandem_conformance::wire::encode(&Frame::Pong(p)))
                    }
                    _ => {}
                }
                d = &d[k..];
            }
            if !out.is_empty() {
                let _ = s.send_to(&out, from);
            }
        }
    });
    format!("udp://{addr}")
}

#[test]
fn the_runner_retransmits_its_hello_over_udp_and_plays_datagram_cases() {
    let addr = fake_acceptor().parse().expect("address");
    let all = cases::all();
    // 14.1/2 (empty session, RESUME clear) and 14.2/1 (two PINGs in one datagram) need only
    // HELLO and PING; they pass only if the runner's UDP handshake survived the dropped HELLO.
    let opts = Options { cases: vec!["14.1/2".into(), "14.2/1".into()], ..Options::default() };
    let results = runner::run(&addr, Role::RunnerDials, &all, &opts);
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.outcome, Outcome::Passed, "{}", runner::text(std::slice::from_ref(r), true));
        assert!(
            r.log.iter().filter(|l| l.contains("→ HELLO")).count() >= 2,
            "HELLO retransmitted: {:?}",
            r.log
        );
    }
    // A case whose requirement the fake does not meet fails with the reason, it does not hang.
    let opts =
        Options { cases: vec!["14.5/1".into()], timeout: Duration::from_secs(30), ..Options::default() };
    let results = runner::run(&addr, Role::RunnerDials, &all, &opts);
    assert!(matches!(results[0].outcome, Outcome::Failed { .. }), "{:?}", results[0].outcome);
}
