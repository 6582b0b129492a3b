//! `serial://` (datagram mode over the serial framing, SPEC.md §14.9) on pseudo-terminals, as
//! in tandem-std's `tests/serial.rs`: a relay that flips, drops and duplicates bytes between the
//! client's pty and the server's, every call answered exactly once; the next peer on a line;
//! errors that say what is wrong.

mod common;

use core::time::Duration;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{router, run, within, Add, ADD, LOG, T};
use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::{Client, ClientConfig, Handlers, Server, ServerConfig};
use tandem_testkit::serial::{Noise, Pty, Relay};

/// The relay damages bytes for this long after the first one, then the line is clean: a call
/// ends within 2·window + initial RTO (SPEC.md §14.4's doubling backoff; `Noise::window`),
/// far inside its 60 s deadline, however often its attempts were damaged.
const NOISE_WINDOW: Duration = Duration::from_secs(5);

/// Answers its argument; counts how often it ran for each request tag.
const TAGGED: Unary<(u32, Vec<u8>), (u32, Vec<u8>)> = Unary::new(9, 1);

type Runs = Arc<Mutex<HashMap<u32, u32>>>;

fn device(runs: &Runs, log: async_channel::Sender<String>) -> Handlers {
    let runs = runs.clone();
    router(log).unary(&TAGGED, move |_ctx, (tag, body): (u32, Vec<u8>)| {
        *runs.lock().unwrap().entry(tag).or_default() += 1;
        async move { Ok((tag, body)) }
    })
}

#[test]
fn serial_calls_complete_exactly_once_through_a_damaging_relay() {
    run(Duration::from_secs(120), async {
        let (host, dev) = (Pty::open().unwrap(), Pty::open().unwrap());
        let noise =
            Noise { seed: 0x2545_F491_4F6C_DD1D, per_million: 300, budget: 20_000, window: NOISE_WINDOW };
        let relay = Relay::start(host.master.try_clone().unwrap(), dev.master.try_clone().unwrap(), noise);
        let runs = Runs::default();
        let (log_tx, log) = async_channel::unbounded();
        // The handshake too may need several retransmissions (1 s, 2 s, 4 s, …): generous timeouts.
        let mut config = ServerConfig::new("device");
        config.connection.handshake_timeout = Duration::from_secs(60);
        let server = Server::bind(&dev.address(115_200), config, device(&runs, log_tx)).unwrap();
        assert_eq!(server.local_addr().to_string(), dev.address(115_200));
        let mut config = ClientConfig::new("host");
        config.connection.handshake_timeout = Duration::from_secs(60);
        config.connect_timeout = Duration::from_secs(60);
        let client = Client::connect(&host.address(115_200), config, Handlers::new()).await.unwrap();
        const CALLS: u32 = 100;
        let calls: Vec<_> = (0..CALLS)
            .map(|tag| {
                let client = client.clone();
                let body: Vec<u8> =
                    (0..(tag as usize * 37) % 200).map(|k| (k + tag as usize) as u8).collect();
                smol::spawn(async move {
                    (tag, body.clone(), client.call(&TAGGED, &(tag, body), Duration::from_secs(60)).await)
                })
            })
            .collect();
        for c in calls {
            let (tag, body, r) = c.await;
            assert_eq!(r, Ok((tag, body)), "call {tag}");
        }
        for i in 0..10 {
            client.notify(&LOG, &format!("n{i}"), Duration::from_secs(60)).await.unwrap();
        }
        let mut notes = Vec::new();
        for _ in 0..10 {
            notes.push(within(Duration::from_secs(60), log.recv()).await.unwrap());
        }
        notes.sort();
        notes.dedup();
        assert_eq!(notes.len(), 10, "a notification delivered twice");
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), CALLS as usize, "every request ran");
        assert!(runs.values().all(|&n| n == 1), "a handler ran twice: {runs:?}");
        let stats = client.stats();
        eprintln!("{}; client: {} retransmissions", relay.counts(), stats.retransmissions);
        assert!(relay.counts().damaged() > 0 && stats.retransmissions > 0, "{} {stats:?}", relay.counts());
        client.close();
        server.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_serial_server_answers_the_next_peer_after_the_first_has_gone() {
    run(Duration::from_secs(60), async {
        let (host, dev) = (Pty::open().unwrap(), Pty::open().unwrap());
        let _relay =
            Relay::start(host.master.try_clone().unwrap(), dev.master.try_clone().unwrap(), Noise::CLEAN);
        let runs = Runs::default();
        let (log_tx, _log) = async_channel::unbounded();
        let server =
            Server::bind(&dev.address(115_200), ServerConfig::new("device"), device(&runs, log_tx)).unwrap();
        for round in 0..2u32 {
            let name = format!("host{round}");
            let client = Client::connect(&host.address(115_200), ClientConfig::new(name), Handlers::new())
                .await
                .unwrap();
            assert_eq!(
                client.call(&TAGGED, &(round, vec![1, 2, 3]), T * 2).await,
                Ok((round, vec![1, 2, 3]))
            );
            assert_eq!(client.call(&ADD, &Add { a: round, b: 1 }, T * 2).await, Ok(round + 1));
            client.shutdown(Duration::from_secs(1)).await;
        }
        assert_eq!(runs.lock().unwrap().len(), 2);
        server.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn serial_errors_say_what_is_wrong() {
    run(T, async {
        let e = Client::connect("serial:///nonexistent/ttyUSB9", ClientConfig::new("c"), Handlers::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ttyUSB9"), "{e}");
        let pty = Pty::open().unwrap();
        let e = Client::connect(&pty.address(12_345), ClientConfig::new("c"), Handlers::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("12345") && e.contains("115200"), "{e}");
        let e = Server::bind("serial://", ServerConfig::new("s"), Handlers::new()).unwrap_err().to_string();
        assert!(e.contains("missing tty path"), "{e}");
    });
}
