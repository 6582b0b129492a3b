//! Every exchange type over every transport, in both directions.

mod common;
use common::*;
use tandem_smol::{Client, ClientConfig, Server, ServerConfig};

fn both_directions(transport: usize) {
    both_directions_with(transport, ServerConfig::new("server"));
}

fn both_directions_with(transport: usize, server_config: ServerConfig) {
    let dir = tempfile::tempdir().unwrap();
    let addr = addresses(dir.path())[transport].clone();
    both_directions_on(&addr, server_config, ClientConfig::new("client"), None);
}

/// Every exchange both ways over `addr`, the client dialing `host` (a certificate's name)
/// instead of the server's IP address when given.
fn both_directions_on(
    addr: &str,
    server_config: ServerConfig,
    client_config: ClientConfig,
    host: Option<&str>,
) {
    both_directions_via(addr, server_config, client_config, &mut |s| match host {
        Some(host) => s.local_addr().to_string().replace("127.0.0.1", host),
        None => s.local_addr().to_string(),
    });
}

/// Every exchange both ways over `addr`, the client dialing what `dial` says for the server
/// (a proxy in front of it).
fn both_directions_via(
    addr: &str,
    server_config: ServerConfig,
    client_config: ClientConfig,
    dial: &mut dyn FnMut(&Server) -> String,
) {
    run(T * 3, async move {
        let (slog, slog_rx) = async_channel::unbounded();
        let (clog, clog_rx) = async_channel::unbounded();
        let server = Server::bind(addr, server_config, router(slog)).unwrap();
        let target = dial(&server);
        let client = Client::connect(&target, client_config, router(clog)).await.unwrap();
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

#[test]
fn every_exchange_both_directions_websocket() {
    both_directions_on(
        "ws://127.0.0.1:0/rpc",
        ServerConfig::new("server"),
        ClientConfig::new("client"),
        None,
    );
}

#[test]
fn every_exchange_both_directions_websocket_small_messages() {
    // 4 KiB messages: large calls and streams cross in many messages each way.
    let server = ServerConfig { max_datagram: 4096, ..ServerConfig::new("server") };
    both_directions_on("ws://127.0.0.1:0/", server, ClientConfig::new("client"), None);
}

#[test]
fn every_exchange_both_directions_websocket_over_tls() {
    use tandem_testkit::pki::Ca;
    let ca = Ca::new("test CA");
    let leaf = ca.server(&["localhost"]);
    let mut server = ServerConfig::new("server");
    server.tls = Some(
        tandem_smol::TlsServerConfig::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap(),
    );
    let mut client = ClientConfig::new("client");
    client.tls =
        tandem_smol::TlsClientConfig::new().trust_ca_pem(ca.pem.as_bytes()).unwrap().without_system_roots();
    both_directions_on("wss://127.0.0.1:0/tandem", server, client, Some("localhost"));
}

#[test]
fn every_exchange_both_directions_websocket_through_nginx() {
    // nginx as the WebSocket reverse proxy (tandem_testkit::nginx; fails if nginx is missing).
    let mut proxy = None;
    both_directions_via(
        "ws://127.0.0.1:0/rpc",
        ServerConfig::new("server"),
        ClientConfig::new("client"),
        &mut |s| {
            let tandem_smol::tandem_core::addr::Address::WebSocket { host_port, .. } = s.local_addr() else {
                panic!("a ws:// server")
            };
            let nginx = tandem_testkit::nginx::Nginx::start(host_port.parse().unwrap(), "/rpc");
            let at = format!("ws://{}/rpc", nginx.addr());
            proxy = Some(nginx);
            at
        },
    );
}
