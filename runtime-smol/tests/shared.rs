//! Stream items sent from a buffer the caller shares (`RawSender::send_shared`): the items
//! arrive whole and in order, mixed with lent ones, over TCP and Unix stream sockets, and the
//! connection lets go of the buffer once the items are written and confirmed — whether the
//! session is resumable (the buffer is the retained copy) or not. Typed items whose encoding
//! reaches 4 KiB go the same way. (tandem-std: the same tests.)

mod common;

use common::*;
use core::time::Duration;
use std::sync::Arc;
use tandem_smol::{Client, ClientConfig, Handlers, MethodId, Server, ServerConfig, Streaming};

const ECHO_ITEMS: MethodId = MethodId::new(40, 1);
/// Typed items: from 4 KiB encoded, `StreamSender::send` shares its encoding.
const ECHO_TYPED: Streaming<(), Vec<u8>, Vec<u8>> = Streaming::new(40, 2);

fn echo_items(addr: &str, resumable: bool) {
    run(Duration::from_secs(60), async move {
        let handlers = Handlers::new().raw_streaming(ECHO_ITEMS, |_, _, mut rx, mut tx| async move {
            let mut item = Vec::new();
            while rx.recv_into(&mut item).await.map_err(|e| e.status())? {
                tx.send(&item).await.map_err(|e| e.status())?;
            }
            Ok(())
        });
        let mut sc = ServerConfig::new("srv");
        sc.endpoint.resume = resumable;
        let server = Server::bind(addr, sc, handlers).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("cli"), Handlers::new())
                .await
                .unwrap();
        let (mut tx, mut rx) = client.open_stream_raw(ECHO_ITEMS, b"", T).await.unwrap();
        let reader = smol::spawn(async move {
            let mut got = Vec::new();
            while let Some(item) = rx.recv().await.unwrap() {
                got.push(item);
            }
            got
        });
        // One buffer sent over and over, fresh ones, and lent items between them; sizes from
        // one byte to several reads' worth.
        let again = Arc::new((0..70_000u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
        let mut sent = Vec::new();
        for i in 0..300usize {
            let len = [1, 100, 4096, 20_000, 65_000][i % 5] + i;
            let fresh: Vec<u8> = (0..len).map(|k| (k + i) as u8).collect();
            match i % 3 {
                0 => tx.send_shared(&again).await.unwrap(),
                1 => tx.send_shared(&Arc::new(fresh.clone())).await.unwrap(),
                _ => tx.send(&fresh).await.unwrap(),
            }
            sent.push(if i % 3 == 0 { again.to_vec() } else { fresh });
        }
        tx.finish().unwrap();
        let got = reader.await;
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "the echoed items differ");
        // Written, echoed, confirmed: the connection holds no reference any more.
        wait_until(|| Arc::strong_count(&again) == 1).await;
    });
}

#[test]
fn shared_items_over_tcp_in_a_resumable_session() {
    echo_items("tcp://127.0.0.1:0", true);
}

#[test]
fn shared_items_over_tcp_without_resumption() {
    echo_items("tcp://127.0.0.1:0", false);
}

#[test]
fn shared_items_over_unix() {
    let dir = tempfile::tempdir().unwrap();
    echo_items(&format!("unix://{}/s.sock", dir.path().display()), true);
}

#[test]
fn typed_items_around_the_sharing_size_arrive_whole() {
    run(Duration::from_secs(60), async move {
        let handlers = Handlers::new().streaming(&ECHO_TYPED, |_, (), mut rx, mut tx| async move {
            while let Some(x) = rx.recv().await.map_err(|e| e.status())? {
                tx.send(&x).await.map_err(|e| e.status())?;
            }
            Ok(())
        });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("srv"), handlers).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("cli"), Handlers::new())
                .await
                .unwrap();
        let (mut tx, mut rx) = client.open_stream(&ECHO_TYPED, &(), T).await.unwrap();
        let reader = smol::spawn(async move {
            let mut got = Vec::new();
            while let Some(item) = rx.recv().await.unwrap() {
                got.push(item);
            }
            got
        });
        // Encoded lengths (a varint length, then the bytes) on both sides of 4,096.
        let sent: Vec<Vec<u8>> =
            (0..200usize).map(|i| vec![i as u8; [10, 4092, 4093, 4094, 50_000][i % 5]]).collect();
        for x in &sent {
            tx.send(x).await.unwrap();
        }
        tx.finish().unwrap();
        assert!(reader.await == sent, "the echoed items differ");
    });
}
