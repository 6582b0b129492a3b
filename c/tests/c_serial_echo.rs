//! The C API over a serial line, proven from C: `examples/serial_echo_server.c`, compiled here
//! with the system C compiler, serves ECHO of the test service in datagram mode with the serial
//! framing (SPEC.md §14.9) on a pseudo-terminal; a tandem-std client calls it over `serial://`
//! on another pty, through a relay that flips, drops and duplicates bytes; every call is
//! answered, and the C program reports that it executed each exactly once.
//!
//! Time: a frame is lost whenever one of its bytes is damaged, and a request whose attempts are
//! all lost waits out the doubling retransmission interval (SPEC.md §14.4): with damage for the
//! whole run (before, the relay's byte budget outlasted the test's traffic) five lost attempts in
//! a row cost a call 1 + 2 + 4 + 8 + 16 = 31 s, and requests whose timers fire together travel
//! (and are lost) together in one larger datagram; runs took 2.4–38 s, and one CI run timed out
//! the four first calls (sent together) at 60 s. The relay now damages only the first seconds
//! of traffic, which bounds every call (see `NOISE`).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_conformance::service::{method, MODULE};
use tandem_std::{Client, ClientConfig, Handlers, MethodId, Status};
use tandem_testkit::serial::{Noise, Pty, Relay};

/// Damage for the first 4 s of traffic (and at most 15,000 bytes each way), about 28 damaged
/// bytes when the test runs at full speed. After the window the line is clean, so a call whose
/// every attempt was damaged is answered at its next retransmission: the interval doubles from
/// the initial RTO (1 s, less once the handshake gave an RTT sample), so that one comes within
/// 2·window + 1 s of the first byte.
const NOISE: Noise =
    Noise { seed: 0x853C_49E6_748F_EA9B, per_million: 250, budget: 15_000, window: Duration::from_secs(4) };

/// What a call may take: the bound above, and a wide margin for a loaded machine.
const CALL_DEADLINE: Duration = Duration::from_secs(2 * 4 + 1 + 50);

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
    let relay = Relay::start(host.master.try_clone().unwrap(), dev.master.try_clone().unwrap(), NOISE);
    let start = Instant::now();

    let mut config = ClientConfig::new("host");
    config.connection.handshake_timeout = Duration::from_secs(60);
    config.connect_timeout = Duration::from_secs(60);
    let client =
        Client::connect(&host.address(115_200), config, Handlers::new()).expect("connect over serial://");
    let echo = MethodId::new(MODULE, method::ECHO);
    // Four callers at once, so that the retransmission waits overlap.
    const CALLERS: usize = 4;
    const CALLS: usize = 60;
    let slowest = std::thread::scope(|s| {
        let callers: Vec<_> = (0..CALLERS)
            .map(|t| {
                let (client, relay) = (&client, &relay);
                s.spawn(move || {
                    let mut slowest = (Duration::ZERO, 0);
                    for i in (t..CALLS).step_by(CALLERS) {
                        let body: Vec<u8> = (0..(i * 53) % 300).map(|k| (k * 7 + i) as u8).collect();
                        let begun = Instant::now();
                        let got = client.call_raw(echo, &body, CALL_DEADLINE);
                        assert_eq!(
                            got.as_deref(),
                            Ok(&body[..]),
                            "call {i} ({} bytes) after {:?}, {:?} into the test; {}; client: {} \
                             retransmissions, SRTT {:?}",
                            body.len(),
                            begun.elapsed(),
                            start.elapsed(),
                            relay.counts(),
                            client.stats().retransmissions,
                            client.stats().srtt
                        );
                        slowest = slowest.max((begun.elapsed(), i));
                    }
                    slowest
                })
            })
            .collect();
        callers.into_iter().map(|c| c.join().unwrap()).max().unwrap()
    });
    // A method the C program does not serve: answered, not dropped.
    let e = client.call_raw(MethodId::new(MODULE, 99), b"", Duration::from_secs(60)).unwrap_err();
    assert_eq!(e.status(), Status::UNKNOWN_METHOD);
    let retx = client.stats().retransmissions;
    client.shutdown(Duration::from_secs(2));
    // The association ended (CLOSE): the C program reports what it executed.
    let report = lines.recv_timeout(Duration::from_secs(30)).expect("the C program's report");
    eprintln!(
        "{}; client: {retx} retransmissions; C program: {report}; slowest call {} took {:?}, all {:?}",
        relay.counts(),
        slowest.1,
        slowest.0,
        start.elapsed()
    );
    assert!(
        report.starts_with(&format!("served {CALLS} echo calls,")),
        "every call executed exactly once: {report}"
    );
    assert!(relay.counts().damaged() > 0 && retx > 0, "{}; {retx}", relay.counts());
}
