//! The driver's reads over plain stream sockets (TCP, Unix stream): a turn skips the socket
//! read when the last one was short or would block and no readiness event arrived since. These
//! tests drive input of every size around the read buffers (1 KiB for the first read of a
//! turn, the core's receive buffer after), several replies per read and replies split over
//! reads, from many callers on one connection whose own turns (writing their requests on their
//! threads) interleave with the I/O thread's, while a stream flows from the server: nothing may
//! be left unread in the socket.

mod common;

use common::*;
use std::sync::Arc;
use tandem_std::{Client, ClientConfig, Server, ServerConfig};

fn mixed_reads(addr: &str) {
    let (seen, _) = Seen::new();
    let server = Server::bind(addr, ServerConfig::new("srv"), handlers("srv", &seen)).unwrap();
    let client = Arc::new(
        Client::connect(
            &server.local_addr().to_string(),
            ClientConfig::new("cli"),
            tandem_std::Handlers::new(),
        )
        .unwrap(),
    );
    let n = if cfg!(debug_assertions) { 40 } else { 200 };
    let mut threads: Vec<_> = (0..6usize)
        .map(|t| {
            let c = Arc::clone(&client);
            std::thread::spawn(move || {
                for i in 0..n {
                    // Sizes across the 1 KiB first read, and far beyond it now and then.
                    let len = match i % 10 {
                        9 => 70_000 + t,
                        8 => 4096 + i,
                        _ => 1000 + (i * 7 + t * 13) % 60,
                    };
                    let v: Vec<u8> = (0..len).map(|k| (k + t + i) as u8).collect();
                    assert_eq!(c.call(&ECHO, &v, T).as_ref(), Ok(&v), "thread {t} call {i}");
                    assert_eq!(c.call(&ADD, &(t as u32, i as u32), T), Ok((t + i) as u32));
                }
            })
        })
        .collect();
    // Meanwhile the server streams to the client, item after item.
    let c = Arc::clone(&client);
    threads.push(std::thread::spawn(move || {
        for _ in 0..4 {
            let (tx, mut rx) = c.open_stream(&COUNT, &500, T).unwrap();
            drop(tx);
            let mut next = 0;
            while let Some(x) = rx.recv().unwrap() {
                assert_eq!(x, next);
                next += 1;
            }
            assert_eq!(next, 500);
        }
    }));
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.stats().calls_open_outbound, 0);
}

#[test]
fn tcp_replies_of_every_size_to_concurrent_callers_while_a_stream_flows() {
    bounded(60, || mixed_reads("tcp://127.0.0.1:0"));
}

#[test]
fn unix_replies_of_every_size_to_concurrent_callers_while_a_stream_flows() {
    bounded(60, || {
        let dir = tempfile::tempdir().unwrap();
        mixed_reads(&format!("unix://{}/r.sock", dir.path().display()));
    });
}
