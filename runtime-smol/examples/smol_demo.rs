//! A server and two clients on loopback: a typed call each way, a broadcast to every client,
//! and a server-streaming subscription.
//!
//! ```text
//! cargo run -p tandem-smol --example smol_demo [tcp://127.0.0.1:0 | unix:///tmp/demo.sock | unix+seqpacket:///tmp/demo.sock]
//! ```

use core::time::Duration;

use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use tandem_smol::tandem_core::typed::{Streaming, Unary};
use tandem_smol::{Client, ClientConfig, Deadline, Handlers, Server, ServerConfig};

/// A greeting request.
#[derive(Serialize, Deserialize, Debug)]
struct Hello {
    from: String,
}

/// Served by the server: greets the caller.
const GREET: Unary<Hello, String> = Unary::new(1, 1);
/// Served by every client: reports its load (the server calls all of them).
const LOAD: Unary<(), u32> = Unary::new(2, 1);
/// Served by the server: `n` ticks.
const TICKS: Streaming<u32, (), u64> = Streaming::new(1, 2);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "tcp://127.0.0.1:0".into());
    smol::block_on(async {
        let server_router = Handlers::new()
            .unary(&GREET, |ctx, h: Hello| async move {
                Ok(format!("hello {}, I see you as {:?}", h.from, ctx.peer_name()))
            })
            .streaming(&TICKS, |_ctx, n: u32, _up, mut down| async move {
                for i in 0..u64::from(n) {
                    down.send(&i).await.map_err(|e| e.status())?;
                }
                Ok(())
            });
        let server = Server::bind(&addr, ServerConfig::new("demo-server"), server_router)?;
        let addr = server.local_addr().to_string();
        println!("listening on {addr}");

        let mut clients = Vec::new();
        for (name, load) in [("alice", 3u32), ("bob", 7)] {
            let router = Handlers::new().unary(&LOAD, move |_ctx, ()| async move { Ok(load) });
            clients.push(Client::connect(&addr, ClientConfig::new(name), router).await?);
        }

        let alice = &clients[0];
        println!("{}", alice.call(&GREET, &Hello { from: "alice".into() }, Duration::from_secs(1)).await?);
        let ticks: Vec<u64> =
            alice.subscribe(&TICKS, &5, Deadline::None).await?.map(|t| t.unwrap_or(u64::MAX)).collect().await;
        println!("ticks: {ticks:?}");

        // Both sides are equal: the server calls its clients.
        for (peer, load) in server.call_all(&LOAD, &(), Duration::from_secs(1)).await {
            println!("{} reports load {}", peer.name(), load?);
        }
        println!("server stats for bob: {:?}", server.peer("bob").map(|p| p.stats().calls_opened));

        server.shutdown(Duration::from_secs(1)).await;
        println!("shut down");
        Ok(())
    })
}
