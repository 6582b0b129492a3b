//! Large stream items are read straight into their own buffers (the pump's direct receive,
//! `Connection::direct_offer`): items of every size around the 16 KiB threshold, up to and
//! beyond the largest frame (fragmented items take the receive buffer), both ways at once with
//! calls in between, over TCP, Unix sockets and TLS, must arrive whole and in order; a raw peer
//! that ends its transport in the middle of a large payload affects only its own session.
//! The async twin of tandem-std's `tests/direct.rs`.

mod common;

use common::{run, wait_until};
use core::time::Duration;
use tandem_smol::tandem_core::frame::Frame;
use tandem_smol::tandem_core::typed::{Streaming, Unary};
use tandem_smol::{Client, ClientConfig, Deadline, Handlers, Server, ServerConfig};
use tandem_testkit::pki::Ca;
use tandem_testkit::wire::{self, RawPeer};

const T: Duration = Duration::from_secs(10);

/// Echoes every item back on the same stream.
const ITEMS: Streaming<(), Vec<u8>, Vec<u8>> = Streaming::new(9, 1);
const ECHO: Unary<Vec<u8>, Vec<u8>> = Unary::new(9, 2);

fn handlers() -> Handlers {
    Handlers::new().unary(&ECHO, |_, v: Vec<u8>| async move { Ok(v) }).streaming(
        &ITEMS,
        |_, (), mut rx, mut tx| async move {
            while let Some(item) = rx.recv().await.map_err(|e| e.status())? {
                tx.send(&item).await.map_err(|e| e.status())?;
            }
            Ok(())
        },
    )
}

/// The `i`-th item: sizes around the direct-receive threshold and the frame size.
fn item(i: usize) -> Vec<u8> {
    const SIZES: [usize; 12] =
        [0, 1, 16_380, 16_381, 16_400, 40_000, 65_533, 65_540, 100_000, 262_000, 300_000, 7];
    let len = SIZES[i % SIZES.len()] + i / SIZES.len();
    (0..len).map(|k| (k * 31 + i) as u8).collect()
}

fn round_trip(addr: &str, server: ServerConfig, client: ClientConfig, connect: impl Fn(&Server) -> String) {
    let addr = addr.to_string();
    run(T * 6, async move {
        let server = Server::bind(&addr, server, handlers()).unwrap();
        let client = Client::connect(&connect(&server), client, Handlers::new()).await.unwrap();
        let peer = client.peer().clone();
        let n = if cfg!(debug_assertions) { 60 } else { 240 };
        let (mut tx, mut rx) = peer.open_stream(&ITEMS, &(), Deadline::after(T)).await.unwrap();
        let up = smol::spawn(async move {
            for i in 0..n {
                tx.send(&item(i)).await.unwrap();
            }
        });
        let p = peer.clone();
        let calls = smol::spawn(async move {
            for i in 0..n / 4 {
                let v = item(i * 3 + 1);
                assert_eq!(p.call(&ECHO, &v, Deadline::after(T)).await.as_ref(), Ok(&v), "call {i}");
            }
        });
        let mut got = 0;
        while let Some(echoed) = rx.recv().await.unwrap() {
            let i = got;
            assert!(echoed == item(i), "item {i}: {} bytes back, {} sent", echoed.len(), item(i).len());
            got += 1;
        }
        up.await;
        calls.await;
        assert_eq!(got, n);
        assert_eq!(client.stats().streams_open_outbound, 0);
    });
}

#[test]
fn tcp_items_of_every_size_arrive_whole_and_in_order_both_ways() {
    round_trip("tcp://127.0.0.1:0", ServerConfig::new("srv"), ClientConfig::new("cli"), |s| {
        s.local_addr().to_string()
    });
}

#[test]
fn unix_items_of_every_size_arrive_whole_and_in_order_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("unix://{}/d.sock", dir.path().display());
    round_trip(&addr, ServerConfig::new("srv"), ClientConfig::new("cli"), |s| s.local_addr().to_string());
}

#[test]
fn tls_items_of_every_size_arrive_whole_and_in_order_both_ways() {
    let ca = Ca::new("test CA");
    let leaf = ca.server(&["localhost"]);
    let mut server = ServerConfig::new("srv");
    server.tls = Some(
        tandem_smol::TlsServerConfig::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap(),
    );
    let mut client = ClientConfig::new("cli");
    client.tls =
        tandem_smol::TlsClientConfig::new().trust_ca_pem(ca.pem.as_bytes()).unwrap().without_system_roots();
    round_trip("tls://127.0.0.1:0", server, client, |s| {
        s.local_addr().to_string().replace("127.0.0.1", "localhost")
    });
}

/// A raw peer opens a stream and sends the first part of a large item, then ends its
/// transport: its session is suspended with the item not delivered, and the server serves
/// another client.
#[test]
fn a_transport_ended_mid_payload_affects_only_its_own_session() {
    run(T * 3, async {
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("srv"), handlers()).unwrap();
        let addr = server.local_addr().to_string();
        // The raw peer blocks: it runs on a thread of its own.
        let a = addr.clone();
        std::thread::spawn(move || {
            let mut raw = RawPeer::connect(&a).unwrap();
            raw.hello("cutter", &[]).unwrap();
            raw.expect_hello(T).unwrap();
            raw.send_bytes(&wire::stream_open(0, 9, 1, false, &[])).unwrap();
            let payload = vec![5u8; 200_000];
            let data =
                wire::encode(&Frame::StreamData { flags: 0, id: 0, total_len: None, payload: &payload });
            raw.send_bytes(&data[..50_000]).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        })
        .join()
        .unwrap();
        let client = Client::connect(&addr, ClientConfig::new("cli"), Handlers::new()).await.unwrap();
        let v = item(5);
        assert_eq!(client.peer().call(&ECHO, &v, Deadline::after(T)).await.as_ref(), Ok(&v));
        // The raw peer's HELLO asked for a resumable session: it is suspended, its stream kept
        // for the grace period, the cut item counted as received bytes and never delivered.
        wait_until(|| server.peer("cutter").is_some_and(|p| p.stats().suspensions == 1)).await;
        let s = server.peer("cutter").unwrap().stats();
        assert!(s.bytes_received >= 50_000 && s.frames_received == 2, "{s:?}");
    });
}
