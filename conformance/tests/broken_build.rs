//! CONFORMANCE.md says a failure names the broken rule. This test proves it on a deliberately
//! broken implementation: our std runtime behind a proxy that breaks exactly one rule of SPEC.md
//! (§7.7.1: a GOAWAY's `bound` is the highest id received plus 2 — the proxy adds 2 more, so the
//! server claims to process an exchange it never saw). The suite must fail §7.7 cases and nothing
//! else.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use tandem_conformance::cases;
use tandem_conformance::runner::{self, Options, Outcome};
use tandem_conformance::selftest::{Runtime, Server};
use tandem_conformance::suite::Role;
use tandem_core::addr::Address;
use tandem_core::frame::{Decoded, Frame};

/// Copies bytes from `from` to `to`, raising every complete GOAWAY frame's bound by 2.
fn pump(mut from: TcpStream, mut to: TcpStream, break_goaway: bool) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let mut passthrough = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !break_goaway || passthrough {
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut used = 0;
        loop {
            match Frame::decode(&pending[used..], usize::MAX) {
                Ok(Decoded::Frame(Frame::GoAway { bound, status, message }, len)) => {
                    let f = Frame::GoAway { bound: bound + 2, status, message };
                    let mut b = vec![0u8; f.encoded_len()];
                    f.encode(&mut b);
                    out.extend_from_slice(&b);
                    used += len;
                }
                Ok(Decoded::Frame(_, len)) => {
                    out.extend_from_slice(&pending[used..used + len]);
                    used += len;
                }
                Ok(Decoded::Incomplete(_)) => break,
                Err(_) => {
                    // Not frames (any more): forward everything untouched from here on.
                    out.extend_from_slice(&pending[used..]);
                    used = pending.len();
                    passthrough = true;
                    break;
                }
            }
        }
        pending.drain(..used);
        if to.write_all(&out).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A TCP proxy in front of `server`; returns its address.
fn proxy(server: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
    let addr = listener.local_addr().expect("addr").to_string();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(upstream) = TcpStream::connect(&server) else { continue };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (c2, u2) = (client.try_clone().expect("clone"), upstream.try_clone().expect("clone"));
            thread::spawn(move || pump(client, upstream, false));
            thread::spawn(move || pump(u2, c2, true));
        }
    });
    addr
}

#[test]
fn the_suite_pinpoints_a_deliberately_broken_rule() {
    let server = Server::start(Runtime::Std, "tcp://127.0.0.1:0").expect("start the std test service");
    let Address::Tcp(real) = server.addr() else { panic!("tcp") };
    let broken: Address = format!("tcp://{}", proxy(real)).parse().expect("address");
    let all = cases::all();
    // Every exchange rule (§7) runs through the broken peer; only §7.7 may fail.
    let opts = Options { sections: vec!["7".into()], timeout: Duration::from_secs(20), ..Options::default() };
    let results = runner::run(&broken, Role::RunnerDials, &all, &opts);
    server.stop();
    let failed: Vec<_> = results.iter().filter(|r| matches!(r.outcome, Outcome::Failed { .. })).collect();
    let report = runner::text(&results, false);
    assert!(!failed.is_empty(), "the broken GOAWAY rule went unnoticed:\n{report}");
    for r in &failed {
        assert!(
            r.section.starts_with("7.7"),
            "case {} (section {}) failed, but only §7.7 is broken:\n{report}",
            r.id,
            r.section
        );
    }
    let (passed, _, _) = runner::counts(&results);
    assert!(passed > 40, "the rest of section 7 still passes through the proxy:\n{report}");
    println!(
        "broken GOAWAY rule pinpointed by: {}",
        failed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
    );
}
