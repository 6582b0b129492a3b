//! `--raw` against a server without introspection: the conformance crate's standard test service
//! (SPEC.md Appendix A) on tandem-std and tandem-smol, over tcp://, unix://, unix+seqpacket://, udp:// and tls://:
//! calls, notifications, signals, streams and bench by `module.method` with hex payloads, and
//! `ping` showing the limits the service is known to announce (Appendix A.3).

mod common;

use std::time::{Duration, Instant};

use common::{at, at_in, serve, Opts, Rt, Served, Service, RUNTIMES, T, TRANSPORTS};

fn each(f: impl Fn(Rt, &str, &Served)) {
    for rt in RUNTIMES {
        for transport in TRANSPORTS {
            let s = serve(rt, Service::Conformance, transport, Opts::default());
            f(rt, transport, &s);
        }
    }
}

#[test]
fn ping_shows_the_announced_limits() {
    each(|rt, transport, s| {
        let out = at(s, "ping", &["-n", "2", "--interval", "1ms"]).ok().to_string();
        let streams = if transport == "udp" { 0 } else { 8 };
        let limits = format!(
            "limits: max_frame_size 4096, max_message_size 65536, max_concurrent_calls 16, max_concurrent_streams {streams}, \
             stream credit 4 messages / 4096 bytes, connection credit 16384 bytes, keepalive 1000 ms, idle timeout 3000 ms"
        );
        assert!(out.contains(&limits), "{rt:?} over {transport}:\n{out}");
        assert!(out.contains("server \"conformance\""), "{out}");
        assert!(out.contains("2 round trips: "), "{out}");
    });
}

#[test]
fn raw_calls_and_keys() {
    each(|rt, transport, s| {
        let ctx = format!("{rt:?} over {transport}");
        // ECHO.
        assert_eq!(at(s, "call", &["--raw", "100.1", "68 69"]).ok(), "6869\n", "{ctx}");
        assert_eq!(at(s, "call", &["--raw", "100.1"]).ok(), "\n", "{ctx}");
        // KEYED with its key.
        assert_eq!(
            at(s, "call", &["--raw", "100.13", "01", "--schema-key", "4b455945442d7631"]).ok(),
            "01\n",
            "{ctx}"
        );
    });
}

/// Reads RECORDED (100.6) for `name` until it holds `want` (records of another connection
/// may still be on their way).
fn wait_recorded(s: &Served, name: &str, want: &str) {
    let end = Instant::now() + T;
    loop {
        let mut args = s.conn_args();
        args.extend(["--name", name, "call", &s.addr, "--raw", "100.6"]);
        let out = common::tandem(&args);
        let got = out.ok().trim().to_string();
        if got == want {
            return;
        }
        assert!(Instant::now() < end, "RECORDED for {name}: {got}, not {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Served {
    fn conn_args(&self) -> Vec<&str> {
        self.conn.iter().map(String::as_str).collect()
    }
}

#[test]
fn raw_notifications_and_signals() {
    each(|rt, transport, s| {
        let name = format!("notify-{rt:?}-{transport}");
        let mut args = s.conn_args();
        args.extend(["--name", &name, "notify", &s.addr, "--raw", "100.5", "6869"]);
        assert_eq!(common::tandem(&args).ok(), "acknowledged\n");
        // One record: u32 length 2, then "hi".
        wait_recorded(s, &name, "000000026869");
        let mut args = s.conn_args();
        args.extend(["--name", &name, "notify", &s.addr, "--raw", "--signal", "100.5", "21"]);
        assert_eq!(common::tandem(&args).ok(), "sent (a signal: not acknowledged)\n");
        wait_recorded(s, &name, "0000000268690000000121");
    });
}

#[test]
fn raw_streams() {
    each(|rt, transport, s| {
        let ctx = format!("{rt:?} over {transport}");
        if transport == "udp" {
            at(s, "stream", &["--raw", "100.4", "00000002"]).fails(2, &["streams in datagram mode"]);
            return;
        }
        // COUNT: three u32 items.
        assert_eq!(
            at(s, "stream", &["--raw", "100.4", "00000003"]).ok(),
            "00000000\n00000001\n00000002\n",
            "{ctx}"
        );
        // BIDI: stdin's hex lines come back.
        assert_eq!(at_in(s, "stream", &["--raw", "100.9"], "6869\nff00\n").ok(), "6869\nff00\n", "{ctx}");
        // A non-OK terminal: COUNT with items larger than the service allows.
        at(s, "stream", &["--raw", "100.4", "0000000100020000"]).fails(1, &["TOO_LARGE"]);
    });
}

#[test]
fn raw_bench() {
    each(|rt, transport, s| {
        let out = at(s, "bench", &["--raw", "100.1", "6869", "-c", "3", "-n", "60"]).ok().to_string();
        assert!(out.contains("calls: 60 ok, 0 failed"), "{rt:?} over {transport}:\n{out}");
    });
}
