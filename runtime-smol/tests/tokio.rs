//! tandem-smol under tokio (issue 12, item 5): a server and a client whose drivers and handlers
//! run on a tokio runtime through a `Spawner` written here; the handlers use tokio's timer. The
//! crate itself does not depend on tokio (a dev-dependency of this test only). Stream senders
//! are `futures_sink::Sink`s and receivers `futures_core::Stream`s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tandem_smol::tandem_core::typed::{Streaming, Unary};
use tandem_smol::{Client, ClientConfig, Handlers, Server, ServerConfig, Spawner, Status, Task};

/// Sleeps the given milliseconds with tokio's timer, answers whether it ran inside tokio.
const NAP: Unary<u64, bool> = Unary::new(1, 1);
/// Doubles every item, pausing with tokio's timer.
const DOUBLE: Streaming<(), u32, u32> = Streaming::new(1, 2);

#[derive(Debug)]
struct Tokio(tokio::runtime::Handle);

impl Spawner for Tokio {
    fn spawn(&self, task: Task) {
        self.0.spawn(task);
    }
}

fn handlers() -> Handlers {
    Handlers::new()
        .unary(&NAP, |_ctx, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(tokio::runtime::Handle::try_current().is_ok())
        })
        .streaming(&DOUBLE, |_ctx, (), mut rx, mut tx| async move {
            while let Some(v) = rx.recv().await.map_err(|e| e.status())? {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tx.send(&(v * 2)).await.map_err(|e| e.status())?;
            }
            Ok::<(), Status>(())
        })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_call_on_tokio() {
    let spawner: Arc<dyn Spawner> = Arc::new(Tokio(tokio::runtime::Handle::current()));
    let config = ServerConfig { spawner: spawner.clone(), ..ServerConfig::new("server") };
    let server = Server::bind("tcp://127.0.0.1:0", config, handlers()).unwrap();
    let addr = server.local_addr().to_string();
    let config = ClientConfig { spawner, ..ClientConfig::new("client") };
    let client = Client::connect(&addr, config, handlers()).await.unwrap();

    // Handlers on both sides sleep with tokio's timer, concurrently.
    let start = Instant::now();
    let calls: Vec<_> = (0..8).map(|_| client.call(&NAP, &100, Duration::from_secs(5))).collect();
    for r in futures_util::future::join_all(calls).await {
        assert_eq!(r, Ok(true), "the handler ran on tokio");
    }
    assert!(start.elapsed() < Duration::from_secs(2), "handlers ran one at a time: {:?}", start.elapsed());
    let back = server.wait_for_peer("client", Duration::from_secs(5)).await.unwrap();
    assert_eq!(back.call(&NAP, &10, Duration::from_secs(5)).await, Ok(true));

    // A stream driven through Sink and Stream.
    let (mut tx, rx) = client.open_stream(&DOUBLE, &(), Duration::from_secs(5)).await.unwrap();
    let send = async move {
        for i in 0..100u32 {
            SinkExt::send(&mut tx, i).await?;
        }
        tx.close().await
    };
    let (sent, got) = futures_util::future::join(send, rx.collect::<Vec<_>>()).await;
    sent.unwrap();
    let got: Vec<u32> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, (0..100).map(|i| i * 2).collect::<Vec<_>>());

    server.shutdown(Duration::from_secs(2)).await;
    assert!(client.closed().await.is_graceful());
}

#[test]
fn server_and_client_run_on_a_tokio_runtime_with_tokio_timers_in_handlers() {
    serve_and_call_on_tokio();
}
