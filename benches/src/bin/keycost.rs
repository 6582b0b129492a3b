//! What schema keys cost a unary call (SPEC.md §7.10): the round trip of a typed call on
//! tandem-smol over TCP loopback, with the method's key (a declared method, checked by the
//! server's registry before the request is decoded) and without (the same method declared by
//! hand, unchecked), interleaved in many rounds so that both see the same machine.
//!
//! ```text
//! cargo run --release -p tandem-benches --bin keycost [-- ROUNDS CALLS_PER_ROUND]
//! ```
//!
//! Prints the median and mean per-call round trip of each, and the difference.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use tandem_smol::{Async, Client, ClientConfig, Ctx, HandlerError, Handlers, Server, ServerConfig, Unary};

tandem_smol::service! {
    /// What the measurement calls.
    pub service bench = 5 {
        /// Adds one.
        unary inc(u64) -> u64 = 1;
    }
}

struct Bench;

impl bench::Server<Async> for Bench {
    async fn inc(&self, _ctx: Ctx, x: u64) -> Result<u64, HandlerError> {
        Ok(x + 1)
    }
}

/// The same method as declared by hand: no key travels, nothing is checked.
const UNKEYED: Unary<u64, u64> = Unary::new(5, 1);

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    smol::block_on(async {
        let handlers = Handlers::new().serve(bench::Serve(Bench));
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("bench"), handlers).expect("bind");
        let addr = server.local_addr().to_string();
        let client =
            Client::connect(&addr, ClientConfig::new("client"), Handlers::new()).await.expect("connect");
        let keyed = bench::Client::new(client.peer().clone()).with_deadline(Duration::from_secs(5));
        // Warm up both paths.
        for i in 0..2000u64 {
            assert_eq!(keyed.inc(&i).await, Ok(i + 1));
            assert_eq!(client.call(&UNKEYED, &i, Duration::from_secs(5)).await, Ok(i + 1));
        }
        let (mut with_key, mut without) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        for r in 0..rounds {
            // Alternate which goes first, so that neither always follows the other.
            for pass in 0..2 {
                let keyed_now = (r + pass) % 2 == 0;
                let t = Instant::now();
                for i in 0..calls as u64 {
                    let got = if keyed_now {
                        keyed.inc(&i).await
                    } else {
                        client
                            .call(&UNKEYED, &i, Duration::from_secs(5))
                            .await
                            .map_err(|e| e.map_app(|e| match e {}))
                    };
                    assert_eq!(got, Ok(i + 1));
                }
                let per_call = t.elapsed().as_secs_f64() * 1e6 / calls as f64;
                if keyed_now {
                    with_key.push(per_call);
                } else {
                    without.push(per_call);
                }
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (mk, mu) = (mean(&with_key), mean(&without));
        let (dk, du) = (median(&mut with_key), median(&mut without));
        println!("unary round trip, tandem-smol, TCP loopback, {rounds} rounds x {calls} calls each way");
        println!("  with the schema key (checked): median {dk:.2} us, mean {mk:.2} us");
        println!("  without a key:                 median {du:.2} us, mean {mu:.2} us");
        println!(
            "  difference: median {:+.2}% , mean {:+.2}%",
            (dk / du - 1.0) * 100.0,
            (mk / mu - 1.0) * 100.0
        );
        server.shutdown(Duration::from_secs(1)).await;
    });
}
