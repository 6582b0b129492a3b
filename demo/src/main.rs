//! `cargo run -p tandem-demo`: servers and clients of both runtimes on loopback, every
//! exchange type in both directions over TCP, Unix stream and SEQPACKET sockets, and a
//! summary table. Exits with status 1 if any check failed.

use std::io::Write;
use std::time::Instant;
use tandem_demo::harness::{
    check_resumption, check_tls_identity, check_udp, run_pair, Caller, Row, Runtime, Transport, EXTRA_PEERS,
};
use tandem_demo::{Exchange, RTT_SAMPLES, STREAM_ITEMS};

/// Client runtime, server runtime.
const PAIRS: [(Runtime, Runtime); 4] = [
    (Runtime::Std, Runtime::Std),
    (Runtime::Smol, Runtime::Smol),
    (Runtime::Std, Runtime::Smol),
    (Runtime::Smol, Runtime::Std),
];

fn cell_width(x: Exchange) -> usize {
    x.label().len().max(4)
}

fn print_header() {
    let mut line = format!("{:<7}{:<7}{:<10}{:<8}", "client", "server", "transport", "caller");
    for x in Exchange::ALL {
        line += &format!(" {:<w$}", x.label(), w = cell_width(x));
    }
    line += "  rtt µs";
    println!("{line}");
    println!("{}", "─".repeat(line.chars().count()));
}

fn print_row(row: &Row, first_of_pair: bool) {
    let (client, server, transport) = if first_of_pair {
        (row.client.name(), row.server.name(), row.transport.name())
    } else {
        ("", "", "")
    };
    let caller = match row.caller {
        Caller::Client => "client",
        Caller::Server => "server",
    };
    let mut line = format!("{client:<7}{server:<7}{transport:<10}{caller:<8}");
    for x in Exchange::ALL {
        let cell = match row.report.checks.iter().find(|(e, _)| *e == x) {
            Some((_, Ok(()))) => "ok",
            Some((_, Err(_))) => "FAIL",
            None => "·",
        };
        line += &format!(" {cell:<w$}", w = cell_width(x));
    }
    match row.report.rtt {
        Some(d) => line += &format!("  {:>6}", d.as_micros()),
        None => line += &format!("  {:>6}", "—"),
    }
    println!("{line}");
}

fn main() {
    let started = Instant::now();
    let dir = match tempfile::Builder::new().prefix("tandem-demo-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary directory for the Unix sockets: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "tandem demo: clients and servers of both runtimes (std → std, smol → smol, std → smol, smol → std) \
         × tcp, unix, seqpacket, tls (mutual) × both directions, on loopback"
    );
    println!();
    print_header();
    let mut rows = Vec::new();
    for (client, server) in PAIRS {
        for transport in Transport::ALL {
            let pair = run_pair(client, server, transport, dir.path());
            for (i, row) in pair.iter().enumerate() {
                print_row(row, i == 0);
            }
            let _ = std::io::stdout().flush();
            rows.extend(pair);
        }
    }
    println!();
    println!(
        "session resumption over tcp, through a proxy that cuts the connection while a call is in flight \
         (the client reconnects, the session resumes, the call completes once):"
    );
    let mut resumption_failures = Vec::new();
    for (client, server) in PAIRS {
        let (outcome, took) = check_resumption(client, server);
        let pair = format!("{} → {}", client.name(), server.name());
        match &outcome {
            Ok(()) => println!(
                "  {pair:<12} ok: handler ran once, reply delivered once, a call made during the outage \
                 completed ({} ms)",
                took.as_millis()
            ),
            Err(e) => {
                println!("  {pair:<12} FAIL: {e}");
                resumption_failures.push(format!("resumption {pair}: {e}"));
            }
        }
        let _ = std::io::stdout().flush();
    }
    println!();
    println!(
        "datagram mode over udp (calls both ways, a deadline, 100 sequential calls; no streams over UDP):"
    );
    for (client, server) in PAIRS {
        let (outcome, rtt) = check_udp(client, server);
        let pair = format!("{} → {}", client.name(), server.name());
        match &outcome {
            Ok(()) => println!(
                "  {pair:<12} ok: rtt {}",
                rtt.map_or_else(|| "-".to_string(), |d| format!("{} µs", d.as_micros()))
            ),
            Err(e) => {
                println!("  {pair:<12} FAIL: {e}");
                resumption_failures.push(format!("udp {pair}: {e}"));
            }
        }
        let _ = std::io::stdout().flush();
    }
    println!();
    println!(
        "identity over tls:// (mutual TLS, certificates made at start-up; the authenticator maps a client \
         certificate to an identity and holds it to the name it claims):"
    );
    for (client, server) in PAIRS {
        let (outcome, refusal) = check_tls_identity(client, server);
        let pair = format!("{} → {}", client.name(), server.name());
        match &outcome {
            Ok(()) => println!(
                "  {pair:<12} ok: alice is cn:alice, calls both ways; an impostor with mallory's certificate \
                 claiming \"alice\" was refused"
            ),
            Err(e) => {
                println!("  {pair:<12} FAIL: {e}");
                resumption_failures.push(format!("tls identity {pair}: {e}"));
            }
        }
        let _ = std::io::stdout().flush();
        if let (Some(why), (Runtime::Std, Runtime::Std)) = (refusal, (client, server)) {
            println!("  {:<12} the impostor's error: {why}", "");
        }
    }
    let checks: usize = rows.iter().map(|r| r.report.checks.len()).sum::<usize>() + 3 * PAIRS.len();
    let failures: Vec<(&Row, Exchange, &str)> =
        rows.iter().flat_map(|r| r.failures().into_iter().map(move |(x, e)| (r, x, e))).collect();
    println!();
    let credit = tandem_core::Config::default().stream_credit_msgs;
    for line in [
        "caller: who opens the exchanges · unary: call with a deadline · deadline: a 50 ms deadline passes \
         (DEADLINE_EXCEEDED)"
            .to_string(),
        "cancel / s-cancel: the caller cancels a call / a stream and the remote handler sees it · notify: \
         acknowledged notification"
            .to_string(),
        format!(
            "signal: unacknowledged notification · s-stream, c-stream, bidi: {STREAM_ITEMS} items (each way \
             for bidi), credit window {credit}"
        ),
        format!(
            "200KiB: one message fragmented over many frames · call-all: the server calls {} peers at once · \
             shutdown: graceful,",
            EXTRA_PEERS + 1
        ),
        format!("the call in flight completes · rtt: median of {RTT_SAMPLES} sequential unary calls"),
    ] {
        println!("{line}");
    }
    println!();
    for (row, x, e) in &failures {
        println!(
            "FAIL {} client → {} server over {}, {} calls, {}: {e}",
            row.client.name(),
            row.server.name(),
            row.transport.name(),
            match row.caller {
                Caller::Client => "client",
                Caller::Server => "server",
            },
            x.label()
        );
    }
    for f in &resumption_failures {
        println!("FAIL {f}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(dir);
    let failed = failures.len() + resumption_failures.len();
    if failed == 0 {
        println!("all {checks} checks passed in {elapsed:.1} s");
    } else {
        println!("{failed} of {checks} checks FAILED ({elapsed:.1} s)");
        std::process::exit(1);
    }
}
