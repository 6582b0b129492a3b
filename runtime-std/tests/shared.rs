//! Stream items sent from a buffer the caller shares (`RawSender::send_shared`): the items
//! arrive whole and in order, mixed with lent ones, over TCP and Unix stream sockets, and the
//! connection lets go of the buffer once the items are written and confirmed — whether the
//! session is resumable (the buffer is the retained copy) or not. Typed items whose encoding
//! reaches 4 KiB go the same way.

mod common;

use common::*;
use std::sync::Arc;
use tandem_std::{Client, ClientConfig, Handlers, MethodId, Server, ServerConfig, Streaming};

const ECHO_ITEMS: MethodId = MethodId::new(40, 1);
/// Typed items: from 4 KiB encoded, `StreamSender::send` shares its encoding.
const ECHO_TYPED: Streaming<(), Vec<u8>, Vec<u8>> = Streaming::new(40, 2);

fn echo_items(addr: &str, resumable: bool) {
    let handlers = Handlers::new().raw_streaming(ECHO_ITEMS, |_, _, mut rx, mut tx| {
        let mut item = Vec::new();
        while rx.recv_into(&mut item).map_err(|e| e.status())? {
            tx.send(&item).map_err(|e| e.status())?;
        }
        Ok(())
    });
    let mut sc = ServerConfig::new("srv");
    sc.endpoint.resume = resumable;
    let server = Server::bind(addr, sc, handlers).unwrap();
    let client =
        Client::connect(&server.local_addr().to_string(), ClientConfig::new("cli"), Handlers::new()).unwrap();
    let (mut tx, mut rx) = client.open_stream_raw(ECHO_ITEMS, b"", T).unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(item) = rx.recv().unwrap() {
            got.push(item);
        }
        got
    });
    // One buffer sent over and over, fresh ones, and lent items between them; sizes from one
    // byte to several reads' worth.
    let again = Arc::new((0..70_000u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
    let mut sent = Vec::new();
    for i in 0..300usize {
        let len = [1, 100, 4096, 20_000, 65_000][i % 5] + i;
        let fresh: Vec<u8> = (0..len).map(|k| (k + i) as u8).collect();
        match i % 3 {
            0 => tx.send_shared(&again).unwrap(),
            1 => tx.send_shared(&Arc::new(fresh.clone())).unwrap(),
            _ => tx.send(&fresh).unwrap(),
        }
        sent.push(if i % 3 == 0 { again.to_vec() } else { fresh });
    }
    tx.finish().unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "the echoed items differ");
    // Written, echoed, confirmed: the connection holds no reference any more.
    wait_until(|| Arc::strong_count(&again) == 1);
}

#[test]
fn shared_items_over_tcp_in_a_resumable_session() {
    bounded(60, || echo_items("tcp://127.0.0.1:0", true));
}

#[test]
fn shared_items_over_tcp_without_resumption() {
    bounded(60, || echo_items("tcp://127.0.0.1:0", false));
}

#[test]
fn shared_items_over_unix() {
    bounded(60, || {
        let dir = tempfile::tempdir().unwrap();
        echo_items(&format!("unix://{}/s.sock", dir.path().display()), true);
    });
}

#[test]
fn typed_items_around_the_sharing_size_arrive_whole() {
    bounded(60, || {
        let handlers = Handlers::new().streaming(&ECHO_TYPED, |_, (), mut rx, mut tx| {
            while let Some(x) = rx.recv().map_err(|e| e.status())? {
                tx.send(&x).map_err(|e| e.status())?;
            }
            Ok(())
        });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("srv"), handlers).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("cli"), Handlers::new())
                .unwrap();
        let (mut tx, mut rx) = client.open_stream(&ECHO_TYPED, &(), T).unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(item) = rx.recv().unwrap() {
                got.push(item);
            }
            got
        });
        // Encoded lengths (a varint length, then the bytes) on both sides of 4,096.
        let sent: Vec<Vec<u8>> =
            (0..200usize).map(|i| vec![i as u8; [10, 4092, 4093, 4094, 50_000][i % 5]]).collect();
        for x in &sent {
            tx.send(x).unwrap();
        }
        tx.finish().unwrap();
        assert!(reader.join().unwrap() == sent, "the echoed items differ");
    });
}
