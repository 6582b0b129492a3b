//! Every subcommand of the built `tandem` binary against a tandem-std and a tandem-smol server
//! over tcp://, unix://, unix+seqpacket://, udp:// and tls:// (certificates made at test time): the methods it
//! learns by introspection are called with JSON and their answers printed as JSON.

mod common;

use common::{at, at_in, serve, Opts, Rt, Service, RUNTIMES, T, TRANSPORTS};

fn each(f: impl Fn(Rt, &str)) {
    for rt in RUNTIMES {
        for transport in TRANSPORTS {
            f(rt, transport);
        }
    }
}

#[test]
fn ping_shows_the_server_its_limits_and_round_trips() {
    each(|rt, transport| {
        let s = serve(rt, Service::Arm, transport, Opts::default());
        let out = at(&s, "ping", &["-n", "3", "--interval", "10ms"]).ok().to_string();
        let ctx = format!("{rt:?} over {transport}:\n{out}");
        assert!(out.starts_with(&format!("connected to {} in ", s.addr)), "{ctx}");
        assert!(out.contains("server \"arm\""), "{ctx}");
        assert!(out.contains("limits: max_frame_size "), "{ctx}");
        assert!(out.contains("max_concurrent_calls "), "{ctx}");
        assert!(out.contains("features: schema_keys, error_details"), "{ctx}");
        assert!(out.contains("round trip 3: "), "{ctx}");
        assert!(out.contains("3 round trips: min "), "{ctx}");
        // The peer's identity: its address, or on a Unix socket its process; over TLS, the
        // verified certificate.
        match transport {
            "unix" | "seqpacket" => assert!(out.contains(&format!("pid {}", std::process::id())), "{ctx}"),
            "tls" => {
                assert!(out.contains("TLS certificate verified for the host name by the CA of --ca"), "{ctx}")
            }
            _ => assert!(out.contains("remote address 127.0.0.1:"), "{ctx}"),
        }
        if transport == "udp" {
            assert!(out.contains("max_datagram_size 1200 bytes"), "{ctx}");
        }
    });
}

#[test]
fn list_and_describe_come_from_introspection() {
    each(|rt, transport| {
        let s = serve(rt, Service::Arm, transport, Opts::default());
        let out = at(&s, "list", &[]).ok().to_string();
        let ctx = format!("{rt:?} over {transport}:\n{out}");
        assert!(out.starts_with("arm (module 70): A robot arm, declared once for both ends.\n"), "{ctx}");
        for line in [
            "  double  unary          Doubles a number.",
            "  go      unary          Moves the arm; refuses beyond x = 100.",
            "  count   server_stream  Counts from 0 to n - 1.",
            "  shout   bidi           Echoes every line, upper-cased.",
            // A first sentence that spans two lines of the doc comment, joined.
            "introspection (module 4294967040): The introspection service (SPEC.md Appendix B): the services, methods and schemas a peer describes.\n",
        ] {
            assert!(out.contains(line), "{line:?} in {ctx}");
        }
        let only = at(&s, "list", &["arm"]).ok().to_string();
        assert!(!only.contains("introspection"), "{only}");

        let out = at(&s, "describe", &["arm.go"]).ok().to_string();
        let ctx = format!("{rt:?} over {transport}:\n{out}");
        assert!(out.starts_with("arm.go (module 70, method 2): unary\n  Moves the arm"), "{ctx}");
        assert!(out.contains("  request:  Move { x: i32, y: i32 }\n"), "{ctx}");
        assert!(out.contains("  response: Move { x: i32, y: i32 }\n"), "{ctx}");
        assert!(out.contains("  error:    ArmError { Blocked { at: i32 } | Busy }\n"), "{ctx}");
        assert!(out.contains("  example:  tandem call ADDR arm.go '{\"x\":0,\"y\":0}'"), "{ctx}");
        assert!(out.contains("  key:      "), "{ctx}");
        let out = at(&s, "describe", &["arm.sum"]).ok().to_string();
        assert!(
            out.contains("client_stream")
                && out.contains("  up:       u64")
                && out.contains("  down:     u64"),
            "{out}"
        );
    });
}

#[test]
fn call_converts_json_both_ways() {
    each(|rt, transport| {
        let s = serve(rt, Service::Arm, transport, Opts::default());
        let ctx = format!("{rt:?} over {transport}");
        assert_eq!(at(&s, "call", &["arm.go", r#"{"x": 1, "y": -7}"#]).ok(), "{\"x\":2,\"y\":-7}\n", "{ctx}");
        assert_eq!(at(&s, "call", &["arm.double", "-21"]).ok(), "-42\n", "{ctx}");
        // Numbers name the method too.
        assert_eq!(at(&s, "call", &["70.1", "4"]).ok(), "8\n", "{ctx}");
    });
}

#[test]
fn notify_and_signal_reach_the_handler() {
    each(|rt, transport| {
        let s = serve(rt, Service::Arm, transport, Opts::default());
        let ctx = format!("{rt:?} over {transport}");
        assert_eq!(at(&s, "notify", &["arm.log", r#""hello""#]).ok(), "acknowledged\n", "{ctx}");
        assert_eq!(s.events.recv_timeout(T).unwrap(), "log hello", "{ctx}");
        assert_eq!(at(&s, "notify", &["arm.beep", "3"]).ok(), "sent (a signal: not acknowledged)\n", "{ctx}");
        assert_eq!(s.events.recv_timeout(T).unwrap(), "beep 3", "{ctx}");
    });
}

#[test]
fn streams_print_json_lines_and_send_stdin() {
    each(|rt, transport| {
        let s = serve(rt, Service::Arm, transport, Opts::default());
        let ctx = format!("{rt:?} over {transport}");
        if transport == "udp" {
            // Datagram mode has no streams (SPEC.md §14.7): refused before anything is sent.
            at(&s, "stream", &["arm.count", "3"]).fails(2, &["usage: ", "arm.count"]);
            return;
        }
        assert_eq!(at(&s, "stream", &["arm.count", "3"]).ok(), "0\n1\n2\n", "{ctx}");
        assert_eq!(at_in(&s, "stream", &["arm.sum", "100"], "1\n\n2\n3\n").ok(), "106\n", "{ctx}");
        let out = at_in(&s, "stream", &["arm.shout"], "\"a\"\n\"bc\"\n").ok().to_string();
        assert_eq!(out, "\"A\"\n\"BC\"\n", "{ctx}");
    });
}

#[test]
fn bench_reports_percentiles_a_histogram_and_the_rate() {
    each(|rt, transport| {
        let s = serve(rt, Service::Arm, transport, Opts::default());
        let out =
            at(&s, "bench", &["arm.double", "21", "-c", "4", "-n", "200", "-d", "60s"]).ok().to_string();
        let ctx = format!("{rt:?} over {transport}:\n{out}");
        assert!(out.starts_with(&format!("arm.double on {}: 4 in flight, ", s.addr)), "{ctx}");
        assert!(out.contains("calls: 200 ok, 0 failed, "), "{ctx}");
        assert!(out.contains("latency: min ") && out.contains(", p99 ") && out.contains(", p99.9 "), "{ctx}");
        let rows: Vec<_> = out.lines().skip_while(|l| *l != "histogram:").skip(1).collect();
        assert!(!rows.is_empty(), "{ctx}");
        // Every call is in one row of the histogram.
        let counted: u64 =
            rows.iter().map(|r| r.rsplit("| ").next().unwrap().trim().parse::<u64>().unwrap()).sum();
        assert_eq!(counted, 200, "{ctx}");
    });
}

#[test]
fn bench_stops_after_its_duration() {
    let s = serve(Rt::Std, Service::Arm, "tcp", Opts::default());
    let started = std::time::Instant::now();
    let out = at(&s, "bench", &["arm.double", "1", "-c", "2", "-d", "300ms"]).ok().to_string();
    assert!(started.elapsed() < T, "{out}");
    assert!(out.contains(" 0 failed, "), "{out}");
}

#[test]
fn bench_draws_progress_and_says_when_the_server_caps_it() {
    let s = serve(Rt::Smol, Service::Conformance, "tcp", Opts::default());
    let args = ["--raw", "100.1", "00", "-c", "20", "-d", "400ms", "--progress", "always"];
    let run = at(&s, "bench", &args);
    let out = run.ok();
    // The conformance service announces max_concurrent_calls 16 (SPEC.md Appendix A.3).
    assert!(out.contains(": 16 in flight (-c 20 capped by the server's max_concurrent_calls), "), "{out}");
    assert!(run.stderr.contains("\r[") && run.stderr.contains(" calls/s"), "{run:?}");
    // The line is cleared at the end.
    assert!(run.stderr.ends_with("\r\x1b[K"), "{run:?}");
    let quiet = at(&s, "bench", &["--raw", "100.1", "00", "-n", "10", "--progress", "never"]);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""), "{quiet:?}");
}

#[test]
fn a_reader_that_stops_early_ends_the_stream_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let s = serve(Rt::Std, Service::Arm, "tcp", Opts::default());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["stream", &s.addr, "arm.count", "4000000000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "0");
    // Like `| head -1`: the reader goes away.
    drop(lines);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
