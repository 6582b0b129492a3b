//! experiment
#[global_allocator]
static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;

use core::time::Duration;
use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::{connect, Config, Options, Router, Server};
use tandem_testkit::heap;

const SLOW: Unary<u32, u32> = Unary::new(1, 4);

#[test]
fn exp_cancel() {
    smol::block_on(async {
        let (tx, rx) = async_channel::unbounded::<()>();
        let router = Router::new().unary(&SLOW, move |ctx, _x: u32| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(()).await;
                ctx.cancelled().await;
                Ok(0)
            }
        });
        let cfg = Config { session_grace: Duration::from_millis(200), ..Config::default() };
        let server = Server::bind("tcp://127.0.0.1:0", Options::new("s").router(router).config(cfg.clone())).unwrap();
        let addr = server.local_addr().to_string();
        let peer = connect(&addr, Options::new("c").config(cfg.clone())).await.unwrap();
        let round = |n: usize| {
            let peer = peer.clone();
            let rx = rx.clone();
            async move {
                for _ in 0..n {
                    let call = peer.call(&SLOW, &1, None);
                    let _ = futures_lite::future::or(async { Some(call.await) }, async { smol::future::yield_now().await; None }).await;
                    while rx.try_recv().is_ok() {}
                }
            }
        };
        round(1000).await;
        let b = blocking::unblock(|| heap::settled(256, Duration::from_secs(2))).await;
        round(20000).await;
        let a = blocking::unblock(|| heap::settled(256, Duration::from_secs(2))).await;
        println!("before {b} after {a} per cycle {}", (a - b) as f64 / 20000.0);
        drop(peer);
        smol::Timer::after(Duration::from_secs(1)).await;
        let e = blocking::unblock(|| heap::settled(256, Duration::from_secs(2))).await;
        println!("expired {e} per cycle {}", (e - b) as f64 / 20000.0);
        drop(server);
    });
}

fn raw_round(addr: &str, n: u64, batch: u64, name: &str) {
    use tandem_testkit::wire::{RawPeer, Got, call};
    use tandem_smol::tandem_core::frame::Frame;
    let mut p = RawPeer::connect(addr).unwrap();
    p.hello(name, &[]).unwrap();
    p.expect_hello(Duration::from_secs(2)).unwrap();
    let mut id = 0u64;
    let mut left = n;
    while left > 0 {
        let k = batch.min(left);
        let mut bytes = Vec::new();
        for j in 0..k {
            bytes.extend(call(id + 2 * j, 1, 4, &[1]));
            bytes.extend(tandem_testkit::wire::encode(&Frame::Cancel { id: id + 2 * j }));
        }
        p.send_bytes(&bytes).unwrap();
        let mut got = 0;
        while got < k {
            match p.recv(Duration::from_secs(5)) {
                Got::Frame(f) => if let Frame::Response { .. } = f.frame() { got += 1 },
                other => panic!("{other:?}"),
            }
        }
        id += 2 * k;
        left -= k;
    }
}

#[test]
fn exp_raw_cancel() {
    smol::block_on(async {
        let router = Router::new().unary(&SLOW, move |ctx, _x: u32| {
            async move {
                ctx.cancelled().await;
                Ok(0)
            }
        });
        let cfg = Config { session_grace: Duration::from_millis(200), ..Config::default() };
        let server = Server::bind("tcp://127.0.0.1:0", Options::new("s").router(router).config(cfg.clone())).unwrap();
        let addr = server.local_addr().to_string();
        let a2 = addr.clone();
        blocking::unblock(move || raw_round(&a2, 1000, 8, "w")).await;
        let b = blocking::unblock(|| heap::settled(256, Duration::from_secs(2))).await;
        let a2 = addr.clone();
        blocking::unblock(move || raw_round(&a2, 20000, 8, "x")).await;
        let a = blocking::unblock(|| heap::settled(256, Duration::from_secs(2))).await;
        println!("raw before {b} after {a} per cycle {}", (a - b) as f64 / 20000.0);
        smol::Timer::after(Duration::from_secs(1)).await;
        let e = blocking::unblock(|| heap::settled(256, Duration::from_secs(2))).await;
        println!("raw expired {e} per cycle {}", (e - b) as f64 / 20000.0);
        drop(server);
    });
}
