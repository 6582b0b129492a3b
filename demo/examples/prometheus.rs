//! Per-method metrics of a tandem server, exported to Prometheus.
//!
//! ```text
//! cargo run -p tandem-demo --example prometheus            # serves http://127.0.0.1:9898/metrics for 60 s
//! cargo run -p tandem-demo --example prometheus -- --once  # prints the metrics once and exits
//! ```
//!
//! A tandem-std server with `MetricsObserver` (the runtimes' `metrics` feature) answers a
//! declared service while a client calls it; the `metrics` facade's Prometheus recorder
//! (`metrics-exporter-prometheus`) keeps per-method counters by status and latency summaries,
//! rendered here at `/metrics` by a few lines of std networking (the exporter's own HTTP
//! listener needs tokio; any HTTP server will do).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

tandem_core::service! {
    /// An inventory.
    pub service inventory = 72 {
        /// How many of an item are in stock; NOT_FOUND for an unknown item.
        unary count(String) -> u32 = 1;
        /// Reserves one; FAILED_PRECONDITION when none is left.
        unary reserve(String) -> u32 = 2;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let once = std::env::args().any(|a| a == "--once");
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    let stock = Arc::new(std::sync::Mutex::new(3u32));
    let s2 = stock.clone();
    let handlers = tandem_std::Handlers::new()
        .unary(&inventory::count, move |_, item: String| match item.as_str() {
            "bolt" => Ok(*stock.lock().unwrap()),
            _ => Err(tandem_std::Status::NOT_FOUND),
        })
        .unary(&inventory::reserve, move |_, _item: String| {
            let mut n = s2.lock().unwrap();
            if *n == 0 {
                return Err(tandem_std::Status::FAILED_PRECONDITION);
            }
            *n -= 1;
            Ok(*n)
        });
    let mut config = tandem_std::ServerConfig::new("inventory");
    config.observer = Some(Arc::new(tandem_std::MetricsObserver::default()));
    let server = tandem_std::Server::bind("tcp://127.0.0.1:0", config, handlers)?;
    let client = tandem_std::Client::connect(
        &server.local_addr().to_string(),
        tandem_std::ClientConfig::new("shop"),
        tandem_std::Handlers::new(),
    )?;
    for i in 0..100 {
        let _ = client.call(&inventory::count, &"bolt".to_string(), T);
        if i % 10 == 0 {
            let _ = client.call(&inventory::count, &"nut".to_string(), T);
            let _ = client.call(&inventory::reserve, &"bolt".to_string(), T);
        }
    }
    if once {
        print!("{}", prometheus.render());
        return Ok(());
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:9898")?;
    listener.set_nonblocking(true)?;
    println!("metrics at http://127.0.0.1:9898/metrics for 60 s (Prometheus: a scrape job for that target)");
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        match listener.accept() {
            Ok((mut s, _)) => {
                s.set_nonblocking(false)?;
                s.set_read_timeout(Some(Duration::from_secs(1)))?;
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req);
                let body = prometheus.render();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // Keep some traffic going so the figures move between scrapes.
                let _ = client.call(&inventory::count, &"bolt".to_string(), T);
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
