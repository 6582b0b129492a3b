//! `serial://` (datagram mode over the serial framing, SPEC.md §14.9) on pseudo-terminals: a
//! client and a server on two ptys joined by a relay that flips, drops and duplicates bytes,
//! every call answered exactly once; a server that answers the next peer on its line after the
//! first has gone; errors that say what is wrong.

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_std::tandem_core::typed::Unary;
use tandem_std::{Client, ClientConfig, Handlers, Server, ServerConfig};
use tandem_testkit::serial::{Noise, Pty, Relay};

/// The relay damages bytes for this long after the first one, then the line is clean: a call
/// ends within 2·window + initial RTO (SPEC.md §14.4's doubling backoff; `Noise::window`),
/// far inside its 60 s deadline, however often its attempts were damaged.
const NOISE_WINDOW: Duration = Duration::from_secs(5);

/// Answers its argument; counts how often it ran for each request tag.
const TAGGED: Unary<(u32, Vec<u8>), (u32, Vec<u8>)> = Unary::new(9, 1);

type Runs = Arc<Mutex<HashMap<u32, u32>>>;

fn device(runs: &Runs, seen: &Arc<Seen>) -> Handlers {
    let runs = runs.clone();
    handlers("device", seen).unary(&TAGGED, move |_, (tag, body): (u32, Vec<u8>)| {
        *runs.lock().unwrap().entry(tag).or_default() += 1;
        Ok((tag, body))
    })
}

#[test]
fn serial_calls_complete_exactly_once_through_a_damaging_relay() {
    bounded(120, || {
        let (host, dev) = (Pty::open().unwrap(), Pty::open().unwrap());
        let noise =
            Noise { seed: 0x9E37_79B9_7F4A_7C15, per_million: 300, budget: 20_000, window: NOISE_WINDOW };
        let relay = Relay::start(host.master.try_clone().unwrap(), dev.master.try_clone().unwrap(), noise);
        let runs = Runs::default();
        let (seen, log) = Seen::new();
        let server =
            Server::bind(&dev.address(115_200), ServerConfig::new("device"), device(&runs, &seen)).unwrap();
        assert_eq!(server.local_addr().to_string(), dev.address(115_200));
        let client =
            Client::connect(&host.address(115_200), ClientConfig::new("host"), Handlers::new()).unwrap();
        const THREADS: u32 = 4;
        const CALLS: u32 = 25;
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let client = client.clone();
                std::thread::spawn(move || {
                    for i in 0..CALLS {
                        let tag = t * 1000 + i;
                        let body: Vec<u8> =
                            (0..(tag as usize * 37) % 200).map(|k| (k + i as usize) as u8).collect();
                        let r = client.call(&TAGGED, &(tag, body.clone()), Duration::from_secs(60));
                        assert_eq!(r, Ok((tag, body)), "call {tag}");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Reliable notifications, each delivered once.
        for i in 0..10 {
            client.notify(&LOG, &format!("n{i}"), Duration::from_secs(60)).unwrap();
        }
        let mut notes: Vec<String> =
            (0..10).map(|_| log.recv_timeout(Duration::from_secs(60)).unwrap()).collect();
        notes.sort();
        notes.dedup();
        assert_eq!(notes.len(), 10);
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), (THREADS * CALLS) as usize, "every request ran");
        assert!(runs.values().all(|&n| n == 1), "a handler ran twice: {runs:?}");
        let stats = client.stats();
        eprintln!("{}; client: {} retransmissions", relay.counts(), stats.retransmissions);
        assert!(relay.counts().damaged() > 0 && stats.retransmissions > 0, "{} {stats:?}", relay.counts());
        client.shutdown(Duration::from_secs(1));
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn a_serial_server_answers_the_next_peer_after_the_first_has_gone() {
    bounded(60, || {
        let (host, dev) = (Pty::open().unwrap(), Pty::open().unwrap());
        let _relay =
            Relay::start(host.master.try_clone().unwrap(), dev.master.try_clone().unwrap(), Noise::CLEAN);
        let runs = Runs::default();
        let (seen, _log) = Seen::new();
        let server =
            Server::bind(&dev.address(115_200), ServerConfig::new("device"), device(&runs, &seen)).unwrap();
        for round in 0..2u32 {
            let client = Client::connect(
                &host.address(115_200),
                ClientConfig::new(format!("host{round}")),
                Handlers::new(),
            )
            .unwrap();
            assert_eq!(client.call(&TAGGED, &(round, vec![1, 2, 3]), T * 2), Ok((round, vec![1, 2, 3])));
            assert_eq!(client.call(&ADD, &(round, 1), T * 2), Ok(round + 1));
            client.shutdown(Duration::from_secs(1));
        }
        assert_eq!(runs.lock().unwrap().len(), 2);
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn serial_errors_say_what_is_wrong() {
    let e =
        Client::connect("serial:///nonexistent/ttyUSB9?baud=115200", ClientConfig::new("c"), Handlers::new())
            .unwrap_err()
            .to_string();
    assert!(e.contains("/nonexistent/ttyUSB9"), "{e}");
    let pty = Pty::open().unwrap();
    let e = Client::connect(&pty.address(12_345), ClientConfig::new("c"), Handlers::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("12345") && e.contains("115200"), "{e}");
    let e =
        Server::bind("serial://?baud=9600", ServerConfig::new("s"), Handlers::new()).unwrap_err().to_string();
    assert!(e.contains("missing tty path"), "{e}");
    let e = Server::bind("serial:///dev/ttyS0?baud=fast", ServerConfig::new("s"), Handlers::new())
        .unwrap_err()
        .to_string();
    assert!(e.contains("baud"), "{e}");
}
