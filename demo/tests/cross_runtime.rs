//! The two runtimes against each other: a tandem-std client with a tandem-smol server and the
//! reverse, over TCP, Unix stream and SEQPACKET sockets, every exchange type in both
//! directions; call-all across a mix of std and smol peers; a peer of one runtime replacing
//! its stale connection on a server of the other; session resumption through a proxy that cuts
//! the connection mid-call, and datagram mode over UDP, in all four pairings.
//!
//! Every exchange is bounded by a timeout, and every test by a watchdog, so that a bug fails
//! the test instead of hanging CI.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;
use tandem_demo::harness::{
    check_call_all, check_replacement, check_resumption, check_udp, run_pair, Caller, ClientEnd, Runtime,
    ServerEnd, Transport,
};
use tandem_demo::Exchange;

/// Runs `f` on its own thread; fails the test if it takes longer than `secs`.
fn bounded<F: FnOnce() + Send + 'static>(secs: u64, f: F) {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {secs} s (hung?)"),
    }
}

/// Every exchange type from the client, then from the server, then call-all and a graceful
/// shutdown, between a `client` and a `server` of the given runtimes.
fn every_exchange(client: Runtime, server: Runtime, transport: Transport) {
    bounded(30, move || {
        let dir = tempfile::tempdir().unwrap();
        let rows = run_pair(client, server, transport, dir.path());
        let mut failures = Vec::new();
        for row in &rows {
            // Nothing skipped: each direction ran every exchange type.
            let ran: Vec<Exchange> = row.report.checks.iter().map(|(x, _)| *x).collect();
            let mut want = Exchange::PER_CALLER.to_vec();
            if row.caller == Caller::Server {
                want.extend([Exchange::CallAll, Exchange::Shutdown]);
            }
            assert_eq!(ran, want);
            assert!(row.report.rtt.is_some(), "{:?} caller: round trips failed", row.caller);
            for (x, e) in row.failures() {
                failures.push(format!("{:?} calls, {}: {e}", row.caller, x.label()));
            }
        }
        assert!(
            failures.is_empty(),
            "{} client → {} server over {}:\n{}",
            client.name(),
            server.name(),
            transport.name(),
            failures.join("\n")
        );
    });
}

#[test]
fn std_client_smol_server_tcp_every_exchange_both_directions() {
    every_exchange(Runtime::Std, Runtime::Smol, Transport::Tcp);
}

#[test]
fn std_client_smol_server_unix_every_exchange_both_directions() {
    every_exchange(Runtime::Std, Runtime::Smol, Transport::Unix);
}

#[test]
fn std_client_smol_server_seqpacket_every_exchange_both_directions() {
    every_exchange(Runtime::Std, Runtime::Smol, Transport::Seqpacket);
}

#[test]
fn smol_client_std_server_tcp_every_exchange_both_directions() {
    every_exchange(Runtime::Smol, Runtime::Std, Transport::Tcp);
}

#[test]
fn smol_client_std_server_unix_every_exchange_both_directions() {
    every_exchange(Runtime::Smol, Runtime::Std, Transport::Unix);
}

#[test]
fn smol_client_std_server_seqpacket_every_exchange_both_directions() {
    every_exchange(Runtime::Smol, Runtime::Std, Transport::Seqpacket);
}

fn server_on(runtime: Runtime, transport: Transport, dir: &Path) -> ServerEnd {
    ServerEnd::start(runtime, &transport.listen_address(dir, "hub")).unwrap()
}

/// Std and smol peers on one server; it calls them all at once, and each answers with its
/// own name and runtime. A peer that leaves is no longer called.
fn call_all_mixed(server: Runtime) {
    bounded(30, move || {
        for transport in Transport::ALL {
            let dir = tempfile::tempdir().unwrap();
            let srv = server_on(server, transport, dir.path());
            let runtimes = [Runtime::Std, Runtime::Smol, Runtime::Smol, Runtime::Std, Runtime::Smol];
            let mut peers: Vec<ClientEnd> = runtimes
                .iter()
                .enumerate()
                .map(|(i, &rt)| srv.connect(rt, &format!("{}-{i}", rt.name())).unwrap())
                .collect();
            let all: Vec<&ClientEnd> = peers.iter().collect();
            check_call_all(&srv, &all).unwrap_or_else(|e| panic!("{}: {e}", transport.name()));
            let gone = peers.remove(1);
            let name = gone.name.clone();
            drop(gone);
            let end = std::time::Instant::now() + Duration::from_secs(5);
            while srv.peer_names().contains(&name) {
                assert!(std::time::Instant::now() < end, "{name} is still tracked after leaving");
                std::thread::sleep(Duration::from_millis(2));
            }
            let rest: Vec<&ClientEnd> = peers.iter().collect();
            check_call_all(&srv, &rest)
                .unwrap_or_else(|e| panic!("{} after a peer left: {e}", transport.name()));
            srv.shutdown(Duration::from_secs(2));
        }
    });
}

#[test]
fn call_all_reaches_a_mix_of_std_and_smol_peers_on_a_std_server() {
    call_all_mixed(Runtime::Std);
}

#[test]
fn call_all_reaches_a_mix_of_std_and_smol_peers_on_a_smol_server() {
    call_all_mixed(Runtime::Smol);
}

/// A peer of `peer` runtime reconnects under its name to a server of `server` runtime.
fn replacement(peer: Runtime, server: Runtime) {
    bounded(30, move || {
        for transport in Transport::ALL {
            let dir = tempfile::tempdir().unwrap();
            let srv = server_on(server, transport, dir.path());
            check_replacement(&srv, peer, "twin").unwrap_or_else(|e| panic!("{}: {e}", transport.name()));
            srv.shutdown(Duration::from_secs(2));
        }
    });
}

#[test]
fn smol_peer_replaces_its_stale_connection_on_a_std_server() {
    replacement(Runtime::Smol, Runtime::Std);
}

#[test]
fn std_peer_replaces_its_stale_connection_on_a_smol_server() {
    replacement(Runtime::Std, Runtime::Smol);
}

const PAIRINGS: [(Runtime, Runtime); 4] = [
    (Runtime::Std, Runtime::Std),
    (Runtime::Smol, Runtime::Smol),
    (Runtime::Std, Runtime::Smol),
    (Runtime::Smol, Runtime::Std),
];

#[test]
fn a_cut_connection_resumes_and_the_call_in_flight_completes_once_in_every_pairing() {
    bounded(120, || {
        for (client, server) in PAIRINGS {
            let (outcome, _) = check_resumption(client, server);
            assert_eq!(outcome, Ok(()), "{} client → {} server", client.name(), server.name());
        }
    });
}

#[test]
fn datagram_mode_works_in_every_pairing() {
    bounded(120, || {
        for (client, server) in PAIRINGS {
            let (outcome, _) = check_udp(client, server);
            assert_eq!(outcome, Ok(()), "{} client → {} server", client.name(), server.name());
        }
    });
}
