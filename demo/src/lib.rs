//! The demo's protocol, declared once and shared by every end: a small "protocol crate".
//!
//! A tandem application declares each method once, as a typed constant (module, method, and
//! the request, response or item types), in a crate that servers and clients of any runtime
//! depend on. Calling a method with the wrong types does not compile, and the blocking
//! ([`tandem_std`]) and async ([`tandem_smol`]) runtimes interoperate because they speak the
//! same wire protocol with the same declarations:
//!
//! ```
//! use tandem_demo::{Who, PING, WHO};
//!
//! // The server side (blocking runtime) serves PING and WHO …
//! let handlers = tandem_std::Handlers::new()
//!     .unary(&PING, |_ctx, n: u64| Ok(n))
//!     .unary(&WHO, |_ctx, ()| Ok(Who { name: "hub".into(), runtime: "std".into() }));
//! let server = tandem_std::Server::bind("tcp://127.0.0.1:0", tandem_std::ServerConfig::new("hub"), handlers)?;
//! let addr = server.local_addr().to_string();
//!
//! // … and an async client calls them with the same declarations.
//! smol::block_on(async {
//!     let config = tandem_smol::ClientConfig::new("me");
//!     let client = tandem_smol::Client::connect(&addr, config, tandem_smol::Handlers::new()).await?;
//!     assert_eq!(client.call(&PING, &7, tandem_smol::Deadline::None).await?, 7);
//!     assert_eq!(client.call(&WHO, &(), std::time::Duration::from_secs(5)).await?.runtime, "std");
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! server.shutdown(std::time::Duration::from_secs(1));
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! Besides the declarations, the crate holds what the demo (`cargo run -p tandem-demo`) and
//! the cross-runtime tests share: the handlers of both runtimes ([`std_end`], [`smol_end`]),
//! which record what they observe in a [`Journal`], the caller-side checks of every exchange
//! type, and the [`harness`] that starts servers and clients of either runtime.

#![forbid(unsafe_code)]

use postcard_schema::Schema;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tandem_core::typed::{Notification, Streaming, Unary};

pub mod harness;
pub mod proxy;
pub mod smol_end;
pub mod std_end;
pub mod tls;

/// The answer to [`WHO`]: which endpoint and which runtime served the call.
#[derive(Serialize, Deserialize, Schema, Clone, Debug, PartialEq, Eq)]
pub struct Who {
    /// The endpoint's name (the one it announced in HELLO).
    pub name: String,
    /// `"std"` or `"smol"`.
    pub runtime: String,
}

/// The request of [`HOLD`] and the initial value of [`HOLD_STREAM`].
#[derive(Serialize, Deserialize, Schema, Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Names this exchange in the handler's [`Journal`] (`started:TAG`, `cancelled:TAG`).
    pub tag: String,
    /// How long the handler works before answering, unless cancelled first.
    pub millis: u64,
}

/// The module all the demo's methods live in.
pub const MODULE: u32 = 40;

tandem_core::service! {
    /// The demo's protocol: every kind of exchange, declared once for every end (tandem-smol's
    /// end implements `demo::Server<Async>` and calls through `demo::Client`; tandem-std's
    /// implements `demo::BlockingServer<Blocking>` and calls through `demo::BlockingClient`).
    pub service demo = 40 {
        /// Answers its argument (round-trip time measurements).
        unary ping(u64) -> u64 = 1;
        /// Who served the call.
        unary who(()) -> Who = 2;
        /// Answers its argument; a large one is fragmented into many frames (and packets).
        unary echo(Vec<u8>) -> Vec<u8> = 3;
        /// Records `started:TAG`, works for `millis` and answers, or records `cancelled:TAG` as
        /// soon as it sees the call cancelled (by the caller, its deadline or a lost connection).
        unary hold(Hold) -> () = 4;
        /// The handler records the string (sent reliably, or as a signal).
        notify note(String) = 5;
        /// The responder sends `0..n`.
        server_stream count(u32) -> u32 = 6;
        /// The opener sends numbers, the responder answers their sum once at the end.
        client_stream sum((), u32) -> u64 = 7;
        /// Every number from the opener is answered with the running total (starting from the
        /// initial value).
        bidi running(u64, u64) -> u64 = 8;
        /// Records `started:TAG`, then waits until the stream is cancelled and records
        /// `cancelled:TAG`.
        bidi hold_stream(Hold, ()) -> () = 9;
    }
}

/// Unary: answers its argument (round-trip time measurements).
pub const PING: Unary<u64, u64> = demo::ping;
/// Unary: who served the call.
pub const WHO: Unary<(), Who> = demo::who;
/// Unary: answers its argument; a large one is fragmented into many frames (and packets).
pub const ECHO: Unary<Vec<u8>, Vec<u8>> = demo::echo;
/// Unary: records `started:TAG`, works for `millis` and answers, or records `cancelled:TAG`
/// as soon as it sees the call cancelled (by the caller, its deadline or a lost connection).
pub const HOLD: Unary<Hold, ()> = demo::hold;
/// Notification: the handler records the string (sent reliably or as a signal).
pub const NOTE: Notification<String> = demo::note;
/// Server-streaming: the responder sends `0..n`.
pub const COUNT: Streaming<u32, (), u32> = demo::count;
/// Client-streaming: the opener sends numbers, the responder answers their sum once at the end.
pub const SUM: Streaming<(), u32, u64> = demo::sum;
/// Bidirectional: every number from the opener is answered with the running total (starting
/// from the initial value).
pub const RUNNING: Streaming<u64, u64, u64> = demo::running;
/// Streaming: records `started:TAG`, then waits until the stream is cancelled and records
/// `cancelled:TAG`.
pub const HOLD_STREAM: Streaming<Hold, (), ()> = demo::hold_stream;

/// Items per stream in the checks: several times the default credit window (64 items), so
/// that senders run out of credit and wait for the receiver.
pub const STREAM_ITEMS: u32 = 200;
/// Size of the fragmented message: larger than a frame (64 KiB) and a SEQPACKET packet.
pub const BIG_MESSAGE: usize = 200 * 1024;
/// Bound on any single exchange of the checks; a healthy one takes milliseconds.
pub const T: Duration = Duration::from_secs(5);

/// A recognisable payload of [`BIG_MESSAGE`] bytes.
pub fn big_message() -> Vec<u8> {
    (0..BIG_MESSAGE).map(|i| (i % 251) as u8).collect()
}

/// A string no other check uses, to name an exchange in a [`Journal`].
pub fn fresh_tag(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// What an endpoint's handlers observed (notes received, exchanges started and cancelled), so
/// that a caller in the same process can check that its actions reached the other side.
#[derive(Debug, Default)]
pub struct Journal {
    entries: Mutex<HashMap<String, u32>>,
    changed: Condvar,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, u32>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an entry.
    pub fn record(&self, entry: impl Into<String>) {
        *self.lock().entry(entry.into()).or_default() += 1;
        self.changed.notify_all();
    }

    /// Whether the entry was recorded.
    pub fn contains(&self, entry: &str) -> bool {
        self.lock().contains_key(entry)
    }

    /// How many times the entry was recorded.
    pub fn count(&self, entry: &str) -> u32 {
        self.lock().get(entry).copied().unwrap_or(0)
    }

    /// Blocks until the entry is recorded; false after `timeout`.
    pub fn wait_for(&self, entry: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut g = self.lock();
        while !g.contains_key(entry) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self.changed.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// Waits (asynchronously) until the entry is recorded; false after `timeout`.
    pub async fn recorded(&self, entry: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while !self.contains(entry) {
            if Instant::now() >= end {
                return false;
            }
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        true
    }
}

/// What one check of the demo found: `Ok`, or what went wrong.
pub type Outcome = Result<(), String>;

/// Fails with `what` unless `cond` holds.
pub(crate) fn ensure(cond: bool, what: impl FnOnce() -> String) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

/// The median of some durations (`None` for none).
pub fn median(mut samples: Vec<Duration>) -> Option<Duration> {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied()
}

/// The exchange types the checks cover, in the order of the demo's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Exchange {
    /// A unary call with a deadline, answered in time.
    Unary,
    /// A call whose deadline passes: DEADLINE_EXCEEDED, and the remote handler sees it.
    Deadline,
    /// A call cancelled by the caller: the remote handler sees it.
    Cancel,
    /// A reliable notification: acknowledged once the remote handler ran.
    Notify,
    /// An unreliable notification (signal): never acknowledged, but the handler gets it.
    Signal,
    /// Server-streaming: more items than the credit window.
    ServerStream,
    /// Client-streaming: more items than the credit window, one answer at the end.
    ClientStream,
    /// Bidirectional stream: both directions beyond the credit window at once.
    Bidi,
    /// A message larger than a frame and than a SEQPACKET packet, echoed back.
    Fragmented,
    /// A stream cancelled by its opener: the remote handler sees it.
    StreamCancel,
    /// The server calls every connected peer at once.
    CallAll,
    /// Graceful server shutdown: the call in flight completes, the client sees a clean close.
    Shutdown,
}

impl Exchange {
    /// Every exchange, in column order.
    pub const ALL: [Exchange; 12] = [
        Exchange::Unary,
        Exchange::Deadline,
        Exchange::Cancel,
        Exchange::Notify,
        Exchange::Signal,
        Exchange::ServerStream,
        Exchange::ClientStream,
        Exchange::Bidi,
        Exchange::Fragmented,
        Exchange::StreamCancel,
        Exchange::CallAll,
        Exchange::Shutdown,
    ];

    /// The exchanges one caller runs toward the other end of its connection.
    pub const PER_CALLER: [Exchange; 10] = [
        Exchange::Unary,
        Exchange::Deadline,
        Exchange::Cancel,
        Exchange::Notify,
        Exchange::Signal,
        Exchange::ServerStream,
        Exchange::ClientStream,
        Exchange::Bidi,
        Exchange::Fragmented,
        Exchange::StreamCancel,
    ];

    /// A short column label.
    pub fn label(self) -> &'static str {
        match self {
            Exchange::Unary => "unary",
            Exchange::Deadline => "deadline",
            Exchange::Cancel => "cancel",
            Exchange::Notify => "notify",
            Exchange::Signal => "signal",
            Exchange::ServerStream => "s-stream",
            Exchange::ClientStream => "c-stream",
            Exchange::Bidi => "bidi",
            Exchange::Fragmented => "200KiB",
            Exchange::StreamCancel => "s-cancel",
            Exchange::CallAll => "call-all",
            Exchange::Shutdown => "shutdown",
        }
    }
}

/// The checks one caller ran toward the other end, and its round-trip time.
#[derive(Debug, Default)]
pub struct CallerReport {
    /// One outcome per exchange type.
    pub checks: Vec<(Exchange, Outcome)>,
    /// Median of [`RTT_SAMPLES`] sequential [`PING`] calls, when they all succeeded.
    pub rtt: Option<Duration>,
}

/// Sequential unary calls whose median is reported as the round-trip time.
pub const RTT_SAMPLES: usize = 100;

/// The README's Rust examples (core, std and smol) compile as doctests of this crate, which
/// depends on all three.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
