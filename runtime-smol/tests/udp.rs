//! `udp://` (datagram mode, SPEC.md §14) on real loopback sockets, including a lossy proxy.

mod common;

use core::time::Duration;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};

use async_io::Async;
use common::{router, run, within, Add, ADD, COUNT, ECHO, LOG, T};
use futures_lite::FutureExt;
use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::{
    CallError, Client, ClientConfig, Deadline, EndpointConfig, Error, Handlers, Server, ServerConfig, Status,
};

/// Counts how often it ran per request value, answers the value doubled.
const COUNTED: Unary<u32, u32> = Unary::new(9, 1);

#[test]
fn every_exchange_but_streams_works_both_ways() {
    run(T, async {
        let (log_tx, log) = async_channel::unbounded();
        let server =
            Server::bind("udp://127.0.0.1:0", ServerConfig::new("server"), router(log_tx.clone())).unwrap();
        let addr = server.local_addr().to_string();
        assert!(addr.starts_with("udp://127.0.0.1:"), "{addr}");
        let (client_log_tx, client_log) = async_channel::unbounded();
        let peer = Client::connect(&addr, ClientConfig::new("client"), router(client_log_tx)).await.unwrap();

        // Unary, errors, reliable and unreliable notifications toward the server.
        assert_eq!(peer.call(&ADD, &Add { a: 20, b: 22 }, T).await, Ok(42));
        assert_eq!(peer.call(&ECHO, &"hi".to_string(), Deadline::None).await, Ok("client:hi".to_string()));
        assert_eq!(
            peer.call(&common::FAIL, &Status::NOT_FOUND.0, Deadline::None).await,
            Err(CallError::from(Status::NOT_FOUND))
        );
        let e = peer.call(&common::MISSING_METHOD, &1, Deadline::None).await.unwrap_err();
        assert_eq!((e.status(), e.message()), (Status::UNKNOWN_METHOD, Some("module 1 has no method 99")));
        peer.notify(&LOG, &"note".to_string(), T).await.unwrap();
        assert_eq!(within(T, log.recv()).await.unwrap(), "note");
        assert_eq!(
            peer.notify(&LOG, &"reject".to_string(), Deadline::None).await,
            Err(CallError::from(Status::INVALID_ARGUMENT))
        );
        peer.signal(&LOG, &"signal".to_string()).await.unwrap();
        assert_eq!(within(T, log.recv()).await.unwrap(), "signal");

        // The server calls back.
        let back = server.wait_for_peer("client", T).await.unwrap();
        assert_eq!(back.call(&ECHO, &"back".to_string(), T).await, Ok("server:back".to_string()));
        back.notify(&LOG, &"to client".to_string(), T).await.unwrap();
        assert_eq!(within(T, client_log.recv()).await.unwrap(), "to client");
        back.signal(&LOG, &"signal to client".to_string()).await.unwrap();
        assert_eq!(within(T, client_log.recv()).await.unwrap(), "signal to client");

        // Streams are refused locally over UDP, either way.
        let e = peer.open_stream(&COUNT, &(0, 3), Deadline::None).await.unwrap_err();
        assert_eq!(e.status(), Status::UNIMPLEMENTED, "{e}");
        assert!(matches!(e.kind(), tandem_smol::ErrorKind::Refused(_)), "{e:?}");
        let e = back.subscribe(&COUNT, &(0, 3), Deadline::None).await.unwrap_err();
        assert_eq!(e.status(), Status::UNIMPLEMENTED, "{e}");

        // One association, and no session resumption over UDP (no token, nothing resumed).
        let stats = server.stats();
        assert_eq!((stats.associations, stats.connections, stats.endpoint.resumptions), (1, 1, 0));
        server.shutdown(T).await;
        let _ = log_tx;
    });
}

#[test]
fn several_clients_share_the_server_socket() {
    run(T, async {
        let (log_tx, _log) = async_channel::unbounded();
        let server = Server::bind("udp://127.0.0.1:0", ServerConfig::new("server"), router(log_tx)).unwrap();
        let addr = server.local_addr().to_string();
        let mut tasks = Vec::new();
        for c in 0..4u32 {
            let addr = addr.clone();
            tasks.push(smol::spawn(async move {
                let (tx, _rx) = async_channel::unbounded();
                let peer =
                    Client::connect(&addr, ClientConfig::new(format!("c{c}")), router(tx)).await.unwrap();
                for i in 0..50u32 {
                    assert_eq!(peer.call(&ADD, &Add { a: c, b: i }, T).await, Ok(c + i));
                }
                assert_eq!(peer.call(&ECHO, &"x".to_string(), T).await, Ok(format!("c{c}:x")));
                peer
            }));
        }
        let mut peers = Vec::new();
        for t in tasks {
            peers.push(within(T, t).await);
        }
        assert_eq!(
            server.peers().iter().map(|p| p.name().to_string()).collect::<Vec<_>>(),
            vec!["c0", "c1", "c2", "c3"]
        );
        let all = server.call_all(&ECHO, &"all".to_string(), T).await;
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|(_, r)| r.is_ok()), "{all:?}");
        // A client that closes is forgotten.
        let gone = peers.pop().unwrap();
        gone.close();
        drop(gone);
        common::wait_until(|| server.peer("c3").is_none()).await;
        server.shutdown(T).await;
    });
}

#[test]
fn associations_beyond_the_limit_are_dropped_and_counted() {
    run(T, async {
        let (log_tx, _log) = async_channel::unbounded();
        let server = Server::bind(
            "udp://127.0.0.1:0",
            ServerConfig {
                endpoint: EndpointConfig { max_associations: 1, ..EndpointConfig::default() },
                ..ServerConfig::new("server")
            },
            router(log_tx),
        )
        .unwrap();
        let addr = server.local_addr().to_string();
        let first = Client::connect(&addr, ClientConfig::new("first"), Handlers::new()).await.unwrap();
        let config =
            ClientConfig { connect_timeout: Duration::from_millis(400), ..ClientConfig::new("second") };
        let e = Client::connect(&addr, config, Handlers::new()).await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(server.stats().endpoint.dropped_hellos >= 1);
        assert_eq!(first.call(&ADD, &Add { a: 1, b: 1 }, T).await, Ok(2));
        server.shutdown(T).await;
    });
}

#[test]
fn a_new_client_from_the_same_address_supersedes_the_old_association() {
    run(T, async {
        let (log_tx, _log) = async_channel::unbounded();
        let server = Server::bind("udp://127.0.0.1:0", ServerConfig::new("server"), router(log_tx)).unwrap();
        let addr = server.local_addr().to_string();
        // Both clients reach the server from the same address, through a proxy socket.
        let proxy = LossyProxy::start(server_addr(&server), 0, 0.0);
        let first = Client::connect(&proxy.url(), ClientConfig::new("first"), Handlers::new()).await.unwrap();
        assert_eq!(first.call(&ADD, &Add { a: 1, b: 1 }, T).await, Ok(2));
        let second =
            Client::connect(&proxy.url(), ClientConfig::new("second"), Handlers::new()).await.unwrap();
        assert_eq!(second.call(&ECHO, &"x".to_string(), T).await, Ok("second:x".to_string()));
        common::wait_until(|| server.peer("first").is_none()).await;
        assert!(server.peer("second").is_some());
        let _ = addr;
        server.shutdown(T).await;
    });
}

fn server_addr(server: &Server) -> SocketAddr {
    server.local_addr().to_string().trim_start_matches("udp://").parse().unwrap()
}

/// A UDP proxy that drops, duplicates and reorders a seeded fraction of datagrams. Every
/// client (any source address) is forwarded from the one upstream socket, so all clients
/// appear to the server as one address.
struct LossyProxy {
    addr: SocketAddr,
    _task: smol::Task<()>,
}

impl LossyProxy {
    fn start(server: SocketAddr, seed: u64, fault: f64) -> LossyProxy {
        let front = Async::<UdpSocket>::bind(([127, 0, 0, 1], 0)).unwrap();
        let back = Async::<UdpSocket>::bind(([127, 0, 0, 1], 0)).unwrap();
        back.get_ref().connect(server).unwrap();
        let addr = front.get_ref().local_addr().unwrap();
        let task = smol::spawn(async move {
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut client: Option<SocketAddr> = None;
            // One held datagram per direction (reordering), sent after the next one.
            let mut held: [Option<Vec<u8>>; 2] = [None, None];
            let mut a = vec![0u8; 65536];
            let mut b = vec![0u8; 65536];
            loop {
                let (dir, data) =
                    async { front.recv_from(&mut a).await.map(|(n, from)| (0, a[..n].to_vec(), Some(from))) }
                        .or(async { back.recv(&mut b).await.map(|n| (1, b[..n].to_vec(), None)) })
                        .await
                        .map(|(d, v, from)| {
                            if let Some(f) = from {
                                client = Some(f);
                            }
                            (d, v)
                        })
                        .unwrap_or((2, Vec::new()));
                if dir == 2 {
                    continue;
                }
                let send = |d: &[u8]| {
                    let _ = if dir == 0 {
                        back.get_ref().send(d)
                    } else {
                        match client {
                            Some(c) => front.get_ref().send_to(d, c),
                            None => Ok(0),
                        }
                    };
                };
                let r = next();
                if r < fault {
                    continue; // dropped
                }
                if r < 2.0 * fault {
                    send(&data); // duplicated
                    send(&data);
                } else if r < 3.0 * fault && held[dir].is_none() {
                    held[dir] = Some(data); // reordered: goes after the next one
                    continue;
                } else {
                    send(&data);
                }
                if let Some(h) = held[dir].take() {
                    send(&h);
                }
            }
        });
        LossyProxy { addr, _task: task }
    }

    fn url(&self) -> String {
        format!("udp://{}", self.addr)
    }
}

#[test]
fn lossy_network_every_call_completes_exactly_once() {
    run(T * 6, async {
        let runs: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
        let r = runs.clone();
        let (log_tx, log) = async_channel::unbounded();
        let router = router(log_tx).unary(&COUNTED, move |_ctx, x: u32| {
            let r = r.clone();
            async move {
                *r.lock().unwrap().entry(x).or_default() += 1;
                Ok(x * 2)
            }
        });
        let server = Server::bind("udp://127.0.0.1:0", ServerConfig::new("server"), router).unwrap();
        for seed in [1u64, 2, 3] {
            let proxy = LossyProxy::start(server_addr(&server), seed, 0.1);
            let peer =
                Client::connect(&proxy.url(), ClientConfig::new(format!("lossy{seed}")), Handlers::new())
                    .await
                    .unwrap();
            let base = seed as u32 * 1000;
            let mut calls = Vec::new();
            for i in 0..100u32 {
                let p = peer.clone();
                calls.push(smol::spawn(async move { p.call(&COUNTED, &(base + i), T * 2).await }));
            }
            for (i, c) in calls.into_iter().enumerate() {
                assert_eq!(within(T * 3, c).await, Ok((base + i as u32) * 2), "seed {seed} call {i}");
            }
            for i in 0..20u32 {
                peer.notify(&LOG, &format!("n{seed}-{i}"), T * 2).await.unwrap();
            }
            let stats = peer.stats();
            assert!(stats.calls_opened >= 100, "{stats:?}");
            peer.close();
        }
        let runs = runs.lock().unwrap().clone();
        assert_eq!(runs.len(), 300);
        assert!(runs.values().all(|n| *n == 1), "a handler ran twice: {runs:?}");
        // Every reliable notification delivered exactly once.
        let mut notes = Vec::new();
        while let Ok(n) = log.try_recv() {
            notes.push(n);
        }
        notes.sort();
        let before = notes.len();
        notes.dedup();
        assert_eq!(before, notes.len(), "a notification was delivered twice");
        assert_eq!(notes.len(), 60);
        server.shutdown(T).await;
    });
}

#[test]
fn udp_datagram_size_is_validated() {
    run(T, async {
        let e = Server::bind(
            "udp://127.0.0.1:0",
            ServerConfig { max_datagram: 100, udp_max_datagram: 100, ..ServerConfig::new("s") },
            Handlers::new(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
        assert!(e.to_string().contains("max_datagram"), "{e}");
        let e = Client::connect(
            "udp://127.0.0.1:9",
            ClientConfig { max_datagram: 100, udp_max_datagram: 100, ..ClientConfig::new("c") },
            Handlers::new(),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("max_datagram"), "{e}");
    });
}
