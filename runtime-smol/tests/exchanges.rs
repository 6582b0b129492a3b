//! Every exchange type over every transport, in both directions.

mod common;
use common::*;
use tandem_smol::{Client, ClientConfig, Server, ServerConfig};

fn both_directions(transport: usize) {
    both_directions_with(transport, ServerConfig::new("server"));
}

fn both_directions_with(transport: usize, server_config: ServerConfig) {
    run(T * 3, async move {
        let dir = tempfile::tempdir().unwrap();
        let addr = addresses(dir.path())[transport].clone();
        let (slog, slog_rx) = async_channel::unbounded();
        let (clog, clog_rx) = async_channel::unbounded();
        let server = Server::bind(&addr, server_config, router(slog)).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), router(clog))
                .await
                .unwrap();
        assert_eq!(client.name(), "server");
        // Client → server.
        exercise(&client, &slog_rx, "client").await;
        // Server → client, over the same connection.
        let back = server.peer("client").expect("server tracks the client by name");
        exercise(&back, &clog_rx, "server").await;
        drop(back);
        server.shutdown(T).await;
        assert!(client.closed().await.is_graceful());
    });
}

#[test]
fn every_exchange_both_directions_tcp() {
    both_directions(0);
}

#[test]
fn every_exchange_both_directions_unix() {
    both_directions(1);
}

#[test]
fn every_exchange_both_directions_seqpacket() {
    both_directions(2);
}

#[test]
fn every_exchange_both_directions_seqpacket_small_datagrams() {
    // The server announces 4 KiB datagrams: large messages cross in many packets each way.
    both_directions_with(2, ServerConfig { max_datagram: 4096, ..ServerConfig::new("server") });
}
