//! Shared test helpers: method declarations, a router, addresses and bounded waits.
#![allow(dead_code)]

use core::future::Future;
use core::time::Duration;
use std::path::Path;

use async_io::Timer;
use futures_lite::FutureExt;
use serde::{Deserialize, Serialize};
use tandem_smol::tandem_core::typed::{Notification, Streaming, Unary};
use tandem_smol::{Handlers, Status};

/// ADD's request.
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
pub struct Add {
    /// Left operand.
    pub a: u32,
    /// Right operand.
    pub b: u32,
}

/// Adds.
pub const ADD: Unary<Add, u32> = Unary::new(1, 1);
/// Echoes, prefixed with the caller's name.
pub const ECHO: Unary<String, String> = Unary::new(1, 2);
/// Fails with the status given in the request.
pub const FAIL: Unary<u32, ()> = Unary::new(1, 3);
/// Waits until cancelled.
pub const SLOW: Unary<u64, u64> = Unary::new(1, 4);
/// Same module as ADD, not registered: UNKNOWN_METHOD.
pub const MISSING_METHOD: Unary<u32, u32> = Unary::new(1, 99);
/// Unregistered module: UNKNOWN_MODULE.
pub const MISSING_MODULE: Unary<u32, u32> = Unary::new(42, 1);
/// Same id as ECHO but another request type: BAD_PAYLOAD at the server.
pub const ECHO_AS_ADD: Unary<Vec<u64>, String> = Unary::new(1, 2);
/// Same id as ADD, response type that does not match.
pub const ADD_AS_STRING: Unary<Add, String> = Unary::new(1, 1);

/// Forwarded to the router's log channel; "reject" is refused.
pub const LOG: Notification<String> = Notification::new(2, 1);
/// Server-streaming: `n` numbers counting up from the init value.
pub const COUNT: Streaming<(u32, u32), (), u32> = Streaming::new(3, 1);
/// Client-streaming: sums what the opener sends, answers the sum as one item.
pub const SUM: Streaming<(), u32, u64> = Streaming::new(3, 2);
/// Server-streaming that sends two items, then fails with DATA_LOSS.
pub const BROKEN: Streaming<(), (), u32> = Streaming::new(3, 4);
/// Bidirectional: echoes every item doubled.
pub const DOUBLE: Streaming<(), u32, u32> = Streaming::new(3, 3);

/// The router both sides use in tests: ADD, ECHO, FAIL, LOG (forwarded to `log`), COUNT, SUM,
/// DOUBLE.
pub fn router(log: async_channel::Sender<String>) -> Handlers {
    Handlers::new()
        .unary(&ADD, |_ctx, r: Add| async move { Ok(r.a + r.b) })
        .unary(&ECHO, |ctx, s: String| async move { Ok(format!("{}:{s}", ctx.peer_name())) })
        .unary(&FAIL, |_ctx, code: u32| async move { Err::<(), _>(Status(code)) })
        .notification(&LOG, move |_ctx, s: String| {
            let log = log.clone();
            async move {
                if s == "reject" {
                    return Err(Status::INVALID_ARGUMENT);
                }
                log.send(s).await.map_err(|_| Status::INTERNAL)
            }
        })
        .streaming(&COUNT, |_ctx, (start, n): (u32, u32), _rx, mut tx| async move {
            for i in 0..n {
                tx.send(&(start + i)).await.map_err(|e| e.status())?;
            }
            Ok(())
        })
        .streaming(&BROKEN, |_ctx, (), _rx, mut tx| async move {
            tx.send(&1).await.map_err(|e| e.status())?;
            tx.send(&2).await.map_err(|e| e.status())?;
            Err(Status::DATA_LOSS)
        })
        .streaming(&SUM, |_ctx, (), mut rx, mut tx| async move {
            let mut sum = 0u64;
            while let Some(item) = rx.recv().await.map_err(|e| e.status())? {
                sum += u64::from(item);
            }
            tx.send(&sum).await.map_err(|e| e.status())?;
            Ok(())
        })
        .streaming(&DOUBLE, |_ctx, (), mut rx, mut tx| async move {
            while let Some(v) = rx.recv().await.map_err(|e| e.status())? {
                tx.send(&(v * 2)).await.map_err(|e| e.status())?;
            }
            Ok(())
        })
}

/// Runs a test body with a hard time limit, so that a bug cannot hang CI.
pub fn run<F: Future<Output = ()>>(limit: Duration, f: F) {
    smol::block_on(f.or(async {
        Timer::after(limit).await;
        panic!("test timed out after {limit:?}");
    }))
}

/// Awaits `f` for at most `limit`.
pub async fn within<T>(limit: Duration, f: impl Future<Output = T>) -> T {
    f.or(async {
        Timer::after(limit).await;
        panic!("step timed out after {limit:?}");
    })
    .await
}

/// Polls `cond` every 2 ms until it holds; panics after `T`.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    within(T, async {
        while !cond() {
            Timer::after(Duration::from_millis(2)).await;
        }
    })
    .await
}

/// The three transports, as server addresses in `dir`.
pub fn addresses(dir: &Path) -> Vec<String> {
    vec![
        "tcp://127.0.0.1:0".to_string(),
        format!("unix://{}", dir.join("s.sock").display()),
        format!("unix+seqpacket://{}", dir.join("p.sock").display()),
    ]
}

/// Upper bound for any single wait in the tests.
pub const T: Duration = Duration::from_secs(5);

/// Runs every exchange type from `peer` toward a side served by [`router`], whose `log`
/// notifications arrive on `log`. `me` is the caller's name as the callee sees it.
pub async fn exercise(peer: &tandem_smol::Peer, log: &async_channel::Receiver<String>, me: &str) {
    use futures_lite::StreamExt;
    use tandem_smol::{CallError, Deadline};

    // Unary: success, handler error, unknown module/method, undecodable request and response.
    assert_eq!(peer.call(&ADD, &Add { a: 20, b: 22 }, T).await, Ok(42));
    assert_eq!(peer.call(&ECHO, &"hi".to_string(), Deadline::None).await, Ok(format!("{me}:hi")));
    let err = peer.call(&FAIL, &Status::NOT_FOUND.0, Deadline::None).await.unwrap_err();
    assert_eq!(err, CallError::from(Status::NOT_FOUND));
    // Refusals say what was refused (SPEC.md §7.9, §8.7) and name the method and the peer.
    let err = peer.call(&MISSING_METHOD, &1, Deadline::None).await.unwrap_err();
    assert_eq!((err.status(), err.message()), (Status::UNKNOWN_METHOD, Some("module 1 has no method 99")));
    assert_eq!(err.peer(), Some(peer.name()));
    assert_eq!(
        err.to_string(),
        format!("1/99 on {:?}: UNKNOWN_METHOD (4): unknown method: module 1 has no method 99", peer.name())
    );
    let err = peer.call(&MISSING_MODULE, &1, Deadline::None).await.unwrap_err();
    assert_eq!(err.status(), Status::UNKNOWN_MODULE);
    let err = peer.call(&ECHO_AS_ADD, &vec![u64::MAX; 3], Deadline::None).await.unwrap_err();
    assert_eq!(err.status(), Status::BAD_PAYLOAD);
    assert!(err.message().is_some_and(|m| m.contains("does not decode")), "{err}");
    let err = peer.call(&ADD_AS_STRING, &Add { a: 1, b: 2 }, Deadline::None).await.unwrap_err();
    assert!(matches!(err.kind(), tandem_smol::ErrorKind::Decode(_)), "{err:?}");
    // A large message (split into frames; several datagrams on SEQPACKET).
    let big = "x".repeat(300_000);
    assert_eq!(peer.call(&ECHO, &big, Deadline::None).await.unwrap().len(), big.len() + me.len() + 1);

    // Reliable notification: acknowledged, or refused with the handler's status.
    peer.notify(&LOG, &"note".to_string(), T).await.unwrap();
    assert_eq!(within(T, log.recv()).await.unwrap(), "note");
    let err = peer.notify(&LOG, &"reject".to_string(), Deadline::None).await.unwrap_err();
    assert_eq!(err, CallError::from(Status::INVALID_ARGUMENT));
    // Unreliable notification.
    peer.signal(&LOG, &"signal".to_string()).await.unwrap();
    assert_eq!(within(T, log.recv()).await.unwrap(), "signal");

    // Server-streaming, long enough to run out of credit several times.
    let (_tx, rx) = peer.open_stream(&COUNT, &(10, 500), Deadline::None).await.unwrap();
    let got: Vec<u32> = within(T, rx.map(|r| r.unwrap()).collect::<Vec<_>>()).await;
    assert_eq!(got, (10..510).collect::<Vec<_>>());
    // The same with a half-closed open, and one that ends with an error status.
    let rx = peer.subscribe(&COUNT, &(0, 3), Deadline::None).await.unwrap();
    assert_eq!(within(T, rx.collect::<Vec<_>>()).await, vec![Ok(0), Ok(1), Ok(2)]);
    let rx = peer.subscribe(&BROKEN, &(), Deadline::None).await.unwrap();
    let got = within(T, rx.collect::<Vec<_>>()).await;
    assert_eq!(got, vec![Ok(1), Ok(2), Err(CallError::from(Status::DATA_LOSS))]);
    // Client-streaming.
    let (mut tx, mut rx) = peer.open_stream(&SUM, &(), Deadline::None).await.unwrap();
    for i in 1..=300u32 {
        tx.send(&i).await.unwrap();
    }
    tx.finish().unwrap();
    assert_eq!(within(T, rx.recv()).await, Ok(Some(45150)));
    assert_eq!(within(T, rx.recv()).await, Ok(None));
    // Bidirectional, in lock step.
    let (mut tx, mut rx) = peer.open_stream(&DOUBLE, &(), Deadline::None).await.unwrap();
    for i in 0..50u32 {
        tx.send(&i).await.unwrap();
        assert_eq!(within(T, rx.recv()).await, Ok(Some(i * 2)));
    }
    drop(tx);
    assert_eq!(within(T, rx.recv()).await, Ok(None));
    // A stream to a method that is not a stream.
    let bad: Streaming<(), (), ()> = Streaming::new(1, 1);
    let (_tx, mut rx) = peer.open_stream(&bad, &(), Deadline::None).await.unwrap();
    assert_eq!(within(T, rx.recv()).await, Err(CallError::from(Status::UNIMPLEMENTED)));
    let stats = peer.stats();
    assert!(stats.calls_opened >= 8 && stats.streams_opened >= 4, "{stats:?}");
}
