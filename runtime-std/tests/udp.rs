//! UDP (datagram mode, SPEC.md §14) over real loopback sockets: every exchange but streams,
//! many clients on one server socket, and a lossy network in between.

mod common;

use common::*;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tandem_std::{CallError, Client, ClientConfig, Handlers, Server, ServerConfig, Status};

fn udp_server(seen: &Arc<Seen>) -> Server {
    Server::bind("udp://127.0.0.1:0", ServerConfig::new("hub"), handlers("hub", seen)).unwrap()
}

#[test]
fn udp_unary_notifications_signals_and_callbacks() {
    bounded(30, || {
        let (server_seen, server_log) = Seen::new();
        let server = udp_server(&server_seen);
        let addr = server.local_addr().to_string();
        assert!(addr.starts_with("udp://"), "{addr}");
        let (client_seen, client_log) = Seen::new();
        let client = Client::connect(&addr, ClientConfig::new("c"), handlers("c", &client_seen)).unwrap();
        // Unary, with handler and runtime statuses.
        assert_eq!(client.call(&ADD, &(2, 3), T), Ok(5));
        assert_eq!(client.call(&MISSING, &"x".into(), T), Err(CallError::from(Status::NOT_FOUND)));
        assert_eq!(client.call(&ECHO, &vec![7u8; 300], T), Ok(vec![7u8; 300]));
        // Reliable notification (acknowledged) and its refusal; unreliable signal.
        assert_eq!(client.notify(&LOG, &"hello".to_string(), T), Ok(()));
        assert_eq!(server_log.recv_timeout(T).unwrap(), "hello");
        assert_eq!(
            client.notify(&LOG, &"reject".to_string(), T),
            Err(CallError::from(Status::INVALID_ARGUMENT))
        );
        client.signal(&LOG, &"signal".to_string()).unwrap();
        assert_eq!(server_log.recv_timeout(T).unwrap(), "signal");
        // Callbacks both directions: the server calls the client, and a handler calls back.
        let peer = server.wait_for_peer("c", T).unwrap();
        assert_eq!(peer.call(&ADD, &(10, 1), T), Ok(11));
        assert_eq!(client.call(&RELAY, &(4, 4), T), Ok(8));
        assert_eq!(peer.notify(&LOG, &"to client".to_string(), T), Ok(()));
        assert_eq!(client_log.recv_timeout(T).unwrap(), "to client");
        // Streams are refused locally over UDP.
        let r = client.open_stream(&SUM, &0, T).map(|_| ());
        assert_eq!(r.map_err(|e| e.status()), Err(Status::UNIMPLEMENTED));
        let r = peer.open_stream(&COUNT, &3, T).map(|_| ());
        assert_eq!(r.map_err(|e| e.status()), Err(Status::UNIMPLEMENTED));
        client.shutdown(Duration::from_secs(1));
        eventually("association removed", || server.stats().associations == 0);
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn udp_many_clients() {
    bounded(60, || {
        let (seen, _log) = Seen::new();
        let server = udp_server(&seen);
        let addr = server.local_addr().to_string();
        let threads: Vec<_> = (0..8)
            .map(|c| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let client =
                        Client::connect(&addr, ClientConfig::new(format!("c{c}")), Handlers::new()).unwrap();
                    for i in 0..100u32 {
                        assert_eq!(client.call(&ADD, &(c, i), T), Ok(c + i));
                    }
                    client.shutdown(Duration::from_secs(1));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        eventually("associations removed", || server.stats().associations == 0);
        server.shutdown(Duration::from_secs(1));
    });
}

#[test]
fn udp_associations_are_bounded() {
    bounded(30, || {
        let (seen, _log) = Seen::new();
        let mut cfg = ServerConfig::new("hub");
        cfg.endpoint.max_associations = 1;
        let server = Server::bind("udp://127.0.0.1:0", cfg, handlers("hub", &seen)).unwrap();
        let addr = server.local_addr().to_string();
        let first = Client::connect(&addr, ClientConfig::new("first"), Handlers::new()).unwrap();
        let mut cfg = ClientConfig::new("second");
        cfg.connection.handshake_timeout = Duration::from_millis(300);
        let second = Client::connect(&addr, cfg, Handlers::new());
        assert!(second.is_err(), "a second association was admitted");
        assert!(server.stats().endpoint.dropped_hellos > 0);
        assert_eq!(first.call(&ADD, &(1, 1), T), Ok(2));
        server.shutdown(Duration::from_secs(1));
    });
}

/// A UDP relay between one client and the server that drops, duplicates and delays
/// (reorders) a seeded fraction of datagrams in both directions.
fn lossy_proxy(server: SocketAddr, seed: u64) -> (SocketAddr, Arc<AtomicBool>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            // xorshift64*
            rng ^= rng >> 12;
            rng ^= rng << 25;
            rng ^= rng >> 27;
            rng.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100
        };
        let mut client: Option<SocketAddr> = None;
        let mut held: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        let mut buf = [0u8; 2048];
        while !stop2.load(Ordering::Acquire) {
            let Ok((n, from)) = sock.recv_from(&mut buf) else {
                for (d, to) in held.drain(..) {
                    let _ = sock.send_to(&d, to);
                }
                continue;
            };
            let to = if from == server {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                client = Some(from);
                server
            };
            let d = buf[..n].to_vec();
            match next() {
                0..=14 => {}                   // dropped
                15..=24 => held.push((d, to)), // delayed: reordered
                25..=32 => {
                    let _ = sock.send_to(&d, to); // duplicated
                    let _ = sock.send_to(&d, to);
                }
                _ => {
                    let _ = sock.send_to(&d, to);
                    if held.len() > 3 {
                        for (d, to) in held.drain(..) {
                            let _ = sock.send_to(&d, to);
                        }
                    }
                }
            }
        }
    });
    (addr, stop)
}

#[test]
fn udp_lossy_network_every_call_completes_exactly_once() {
    bounded(90, || {
        let runs: Arc<Mutex<HashMap<Vec<u8>, u32>>> = Arc::default();
        let r2 = Arc::clone(&runs);
        let handlers = Handlers::new().unary(&ECHO, move |_, v: Vec<u8>| {
            *r2.lock().unwrap().entry(v.clone()).or_default() += 1;
            Ok(v)
        });
        let server = Server::bind("udp://127.0.0.1:0", ServerConfig::new("hub"), handlers).unwrap();
        let server_addr: SocketAddr =
            server.local_addr().to_string().trim_start_matches("udp://").parse().unwrap();
        let mut stops = Vec::new();
        let threads: Vec<_> = (0..3u64)
            .map(|c| {
                let (proxy, stop) = lossy_proxy(server_addr, 0x5eed + c);
                stops.push(stop);
                std::thread::spawn(move || {
                    let mut cfg = ClientConfig::new(format!("c{c}"));
                    // HELLO retransmission backs off from 1 s: leave room for a few losses.
                    cfg.connection.handshake_timeout = Duration::from_secs(30);
                    let client = Client::connect(&format!("udp://{proxy}"), cfg, Handlers::new()).unwrap();
                    for i in 0..60 {
                        let payload = format!("client {c} call {i}").into_bytes();
                        let r = client.call(&ECHO, &payload, Duration::from_secs(30));
                        assert_eq!(
                            r.as_ref(),
                            Ok(&payload),
                            "client {c} call {i}: {:?} {:?}",
                            client.close_reason(),
                            client.stats()
                        );
                    }
                    client.shutdown(Duration::from_millis(200));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let runs = runs.lock().unwrap();
        assert_eq!(runs.len(), 180);
        assert!(runs.values().all(|n| *n == 1), "a handler ran twice");
        for s in stops {
            s.store(true, Ordering::Release);
        }
        drop(runs);
        server.shutdown(Duration::from_secs(1));
    });
}
