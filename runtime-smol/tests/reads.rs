//! The driver's reads over plain stream sockets (TCP, Unix stream): a turn skips the socket
//! read when the last one was short or would block and no readiness event arrived since. These
//! tests drive input of every size around the read buffers (1 KiB for the first read of a
//! turn, the core's receive buffer after), several replies per read and replies split over
//! reads, from many concurrent callers on one connection, while a stream flows from the
//! server: nothing may be left unread in the socket.

mod common;

use common::*;
use core::time::Duration;
use tandem_smol::{Client, ClientConfig, Deadline, Server, ServerConfig};

const T: Duration = Duration::from_secs(10);

fn mixed_reads(addr: &str) {
    run(T * 6, async move {
        let (log, _log_rx) = async_channel::unbounded();
        let server = Server::bind(addr, ServerConfig::new("srv"), router(log)).unwrap();
        let client = Client::connect(
            &server.local_addr().to_string(),
            ClientConfig::new("cli"),
            tandem_smol::Handlers::new(),
        )
        .await
        .unwrap();
        let peer = client.peer().clone();
        let n = if cfg!(debug_assertions) { 40 } else { 200 };
        let mut tasks: Vec<_> = (0..6usize)
            .map(|t| {
                let p = peer.clone();
                smol::spawn(async move {
                    for i in 0..n {
                        // Sizes across the 1 KiB first read, and far beyond it now and then.
                        let len = match i % 10 {
                            9 => 70_000 + t,
                            8 => 4096 + i,
                            _ => 1000 + (i * 7 + t * 13) % 60,
                        };
                        let s: String = (0..len).map(|k| (b'a' + ((k + t + i) % 26) as u8) as char).collect();
                        let r = p.call(&ECHO, &s, Deadline::after(T)).await.unwrap();
                        assert_eq!(r, format!("cli:{s}"), "task {t} call {i}");
                        let sum = p.call(&ADD, &Add { a: t as u32, b: i as u32 }, Deadline::after(T)).await;
                        assert_eq!(sum.unwrap(), (t + i) as u32);
                    }
                })
            })
            .collect();
        // Meanwhile the server streams to the client, item after item.
        let p = peer.clone();
        tasks.push(smol::spawn(async move {
            for _ in 0..4 {
                let mut rx = p.subscribe(&COUNT, &(0, 500), Deadline::after(T)).await.unwrap();
                let mut next = 0;
                while let Some(x) = rx.recv().await.unwrap() {
                    assert_eq!(x, next);
                    next += 1;
                }
                assert_eq!(next, 500);
            }
        }));
        for t in tasks {
            t.await;
        }
        assert_eq!(client.stats().calls_open_outbound, 0);
    });
}

#[test]
fn tcp_replies_of_every_size_to_concurrent_callers_while_a_stream_flows() {
    mixed_reads("tcp://127.0.0.1:0");
}

#[test]
fn unix_replies_of_every_size_to_concurrent_callers_while_a_stream_flows() {
    let dir = tempfile::tempdir().unwrap();
    mixed_reads(&format!("unix://{}/r.sock", dir.path().display()));
}
