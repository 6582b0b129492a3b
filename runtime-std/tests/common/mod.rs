//! Shared test protocol and helpers: methods declared once, handlers for both sides, and a
//! watchdog so that a bug fails a test instead of hanging CI.

#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tandem_std::{Ctx, Handlers, Notification, Status, Streaming, Unary};

/// Generous bound for one exchange; tests normally finish in milliseconds.
pub const T: Duration = Duration::from_secs(5);

pub const ADD: Unary<(u32, u32), u32> = Unary::new(1, 1);
/// Always fails with NOT_FOUND.
pub const MISSING: Unary<String, u32> = Unary::new(1, 2);
/// Returns a value that cannot be encoded.
pub const UNENCODABLE: Unary<(), Unencodable> = Unary::new(1, 3);
/// Waits until cancelled (at most 5 s), then records that it saw the cancellation.
pub const WAIT_CANCEL: Unary<(), ()> = Unary::new(1, 4);
/// Who is at the other end of the connection: name and, on Unix sockets, uid and pid.
pub const WHOAMI: Unary<(), (String, Option<(u32, i32)>)> = Unary::new(1, 5);
/// Sleeps for the given milliseconds, then answers.
pub const SLEEP: Unary<u64, u64> = Unary::new(1, 6);
/// Returns its argument (large payloads exercise fragmentation).
pub const ECHO: Unary<Vec<u8>, Vec<u8>> = Unary::new(1, 7);
/// Calls ADD back on the caller's side of the connection and returns its answer.
pub const RELAY: Unary<(u32, u32), u32> = Unary::new(1, 8);
/// Its handler panics.
pub const PANIC: Unary<(), ()> = Unary::new(1, 9);
/// Records the string (reliable or unreliable); "reject" is refused with INVALID_ARGUMENT.
pub const LOG: Notification<String> = Notification::new(2, 1);
/// Bidirectional: every Up item is answered with the running sum (init is the start value).
pub const SUM: Streaming<u64, u64, u64> = Streaming::new(3, 1);
/// Server-streaming: sends 0..n, then ends OK.
pub const COUNT: Streaming<u32, (), u32> = Streaming::new(3, 2);
/// Waits until the stream is cancelled, then records it.
pub const STREAM_WAIT: Streaming<(), (), ()> = Streaming::new(3, 3);

/// A type whose serialization always fails (to provoke ENCODE_FAILED).
#[derive(Debug, Deserialize)]
pub struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this type refuses to be encoded"))
    }
}

/// What a side's handlers observed.
#[derive(Default)]
pub struct Seen {
    pub log: Mutex<Option<Sender<String>>>,
    pub cancelled: AtomicBool,
    pub stream_cancelled: AtomicBool,
}

impl Seen {
    pub fn new() -> (Arc<Seen>, std::sync::mpsc::Receiver<String>) {
        let (tx, rx) = channel();
        let seen = Seen { log: Mutex::new(Some(tx)), ..Seen::default() };
        (Arc::new(seen), rx)
    }
}

impl Seen {
    pub fn note(&self, msg: &str) {
        if let Some(tx) = self.log.lock().unwrap().as_ref() {
            let _ = tx.send(msg.to_string());
        }
    }
}

fn wait_until_cancelled(ctx: &Ctx) -> bool {
    let end = Instant::now() + T;
    while Instant::now() < end {
        if ctx.is_cancelled() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// The full set of test handlers; both servers and clients register them.
pub fn handlers(name: &str, seen: &Arc<Seen>) -> Handlers {
    let (s1, s2, s3) = (Arc::clone(seen), Arc::clone(seen), Arc::clone(seen));
    let name = name.to_string();
    Handlers::new()
        .unary(&ADD, |_, (a, b)| a.checked_add(b).ok_or(Status::OUT_OF_RANGE))
        .unary(&MISSING, |_, _| Err(Status::NOT_FOUND))
        .unary(&UNENCODABLE, |_, ()| Ok(Unencodable))
        .unary(&ECHO, |_, v| Ok(v))
        .unary(&PANIC, |_, ()| panic!("this handler panics (expected by the test)"))
        .unary(&RELAY, |ctx, req| ctx.peer().call(&ADD, &req, T).map_err(|e| e.status()))
        .unary(&WAIT_CANCEL, move |ctx, ()| {
            s1.note("started");
            if wait_until_cancelled(&ctx) {
                s1.cancelled.store(true, Ordering::SeqCst);
            }
            Ok(())
        })
        .unary(&WHOAMI, move |ctx, ()| {
            let creds = ctx.credentials().map(|c| (c.uid, c.pid));
            Ok((format!("{name} sees {}", ctx.peer_name()), creds))
        })
        .unary(&SLEEP, |_, ms| {
            std::thread::sleep(Duration::from_millis(ms));
            Ok(ms)
        })
        .notification(&LOG, move |_, msg: String| {
            if msg == "reject" {
                return Err(Status::INVALID_ARGUMENT);
            }
            s2.note(&msg);
            Ok(())
        })
        .streaming(&SUM, |_, start, mut rx, mut tx| {
            let mut sum = start;
            while let Some(x) = rx.recv().map_err(|e| e.status())? {
                sum += x;
                tx.send(&sum).map_err(|e| e.status())?;
            }
            Ok(())
        })
        .streaming(&COUNT, |_, n, _rx, mut tx| {
            for i in 0..n {
                tx.send(&i).map_err(|e| e.status())?;
            }
            Ok(())
        })
        .streaming(&STREAM_WAIT, move |ctx, (), _rx, _tx| {
            s3.note("stream started");
            if wait_until_cancelled(&ctx) {
                s3.stream_cancelled.store(true, Ordering::SeqCst);
            }
            Ok(())
        })
}

/// Waits (at most [`T`]) until `cond` holds.
#[allow(dead_code)] // not every test file uses it
pub fn wait_until(mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < end, "timed out");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `f` on a thread and fails the test if it takes longer than `secs`.
pub fn bounded<F: FnOnce() + Send + 'static>(secs: u64, f: F) {
    let (tx, rx) = channel();
    let h = std::thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            // The closure panicked: surface its message.
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(_) => panic!("test did not finish within {secs} s (hung?)"),
    }
}

/// Exchanges open on the connection, either way.
pub fn open_exchanges(p: &tandem_std::Peer) -> u32 {
    let s = p.stats();
    s.calls_open_inbound + s.calls_open_outbound + s.streams_open_inbound + s.streams_open_outbound
}

/// Polls `cond` until it holds or `T` passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}
