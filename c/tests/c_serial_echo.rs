//! The C API over a serial line, proven from C: `examples/serial_echo_server.c`, compiled here
//! with the system C compiler, serves ECHO of the test service in datagram mode with the serial
//! framing (SPEC.md §14.9) on a pseudo-terminal; a tandem-std client calls it over `serial://`
//! on another pty, through a relay that flips, drops and duplicates bytes; every call is
//! answered, and the C program reports that it executed each exactly once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tandem_conformance::service::{method, MODULE};
use tandem_std::{Client, ClientConfig, Handlers, MethodId, Status};
use tandem_testkit::serial::{Noise, Pty, Relay};

/// Kills the C program when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_c_program_serves_echo_over_a_noisy_serial_line_exactly_once() {
    let exe = common::compile("serial_echo_server");
    let (host, dev) = (Pty::open().unwrap(), Pty::open().unwrap());
    let mut child = Command::new(&exe)
        .arg(&dev.path)
        .arg("115200")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start serial_echo_server");
    let stdout = child.stdout.take().unwrap();
    let _server = Running(child);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let noise = Noise { seed: 0x853C_49E6_748F_EA9B, per_million: 250, budget: 15_000 };
    let relay = Relay::start(host.master.try_clone().unwrap(), dev.master.try_clone().unwrap(), noise);

    let mut config = ClientConfig::new("host");
    config.connection.handshake_timeout = Duration::from_secs(60);
    config.connect_timeout = Duration::from_secs(60);
    let client =
        Client::connect(&host.address(115_200), config, Handlers::new()).expect("connect over serial://");
    let echo = MethodId::new(MODULE, method::ECHO);
    // Four callers at once, so that the retransmission waits overlap.
    const CALLERS: usize = 4;
    const CALLS: usize = 60;
    std::thread::scope(|s| {
        for t in 0..CALLERS {
            let (client, relay) = (&client, &relay);
            s.spawn(move || {
                for i in (t..CALLS).step_by(CALLERS) {
                    let body: Vec<u8> = (0..(i * 53) % 300).map(|k| (k * 7 + i) as u8).collect();
                    // Generous: a frame damaged again and again waits out an exponential
                    // backoff (the interval doubles after every retransmission, SPEC.md §14.4), and runs have
                    // taken up to 30 s.
                    let got = client.call_raw(echo, &body, Duration::from_secs(180));
                    assert_eq!(
                        got.as_deref(),
                        Ok(&body[..]),
                        "call {i}; {}; client: {} retransmissions",
                        relay.counts(),
                        client.stats().retransmissions
                    );
                }
            });
        }
    });
    // A method the C program does not serve: answered, not dropped.
    let e = client.call_raw(MethodId::new(MODULE, 99), b"", Duration::from_secs(60)).unwrap_err();
    assert_eq!(e.status(), Status::UNKNOWN_METHOD);
    let retx = client.stats().retransmissions;
    client.shutdown(Duration::from_secs(2));
    // The association ended (CLOSE): the C program reports what it executed.
    let report = lines.recv_timeout(Duration::from_secs(30)).expect("the C program's report");
    eprintln!("{}; client: {retx} retransmissions; C program: {report}", relay.counts());
    assert!(
        report.starts_with(&format!("served {CALLS} echo calls,")),
        "every call executed exactly once: {report}"
    );
    assert!(relay.counts().damaged() > 0 && retx > 0, "{}; {retx}", relay.counts());
}
