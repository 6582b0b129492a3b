//! The standard test service (SPEC.md Appendix A), served by both runtimes.
//!
//! Every method lives in module [`MODULE`]; payloads are raw bytes with the byte-exact layouts
//! of Appendix A (integers are fixed-width big-endian), so that an implementation in any language
//! can expose the same service. State (sink counters, recorded notifications, observed
//! cancellations) is kept per peer *name* (the `name` of the caller's HELLO): the runner gives
//! every case a fresh name, so cases never see each other's state.
//!
//! This is code people copy, so it shows how a service facing hostile peers keeps its promises:
//!
//! * **Bounded state** ([`State`]): at most [`MAX_PEER_NAMES`] names, each with at most
//!   [`MAX_RECORDS_PER_NAME`] records of at most [`MAX_RECORD_BYTES_PER_NAME`] bytes in all; the
//!   oldest are forgotten first (SPEC.md A.1). A peer that churns names, or cancels a million
//!   SLEEPs, cannot grow the service.
//! * **Streams produced as credit allows** ([`Count`]): COUNT builds one item at a time, right
//!   before sending it, so a peer that asks for a huge stream and never reads costs one item; the
//!   handler stops as soon as the stream is reset or the connection is gone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tandem_core::{Config, MethodId, Status};

/// The module id of the test service.
pub const MODULE: u32 = 100;

/// Method ids of the test service (SPEC.md A.2).
pub mod method {
    /// Unary: the response is the request.
    pub const ECHO: u32 = 1;
    /// Unary: counts calls and bytes; empty response.
    pub const SINK: u32 = 2;
    /// Unary: the sink's counters for the caller (u64 calls, u64 bytes).
    pub const SINK_STATS: u32 = 3;
    /// Server-streaming: `n` (u32) items, then STREAM_FIN(OK).
    pub const COUNT: u32 = 4;
    /// Notification (NOTIFY or SIGNAL): records the payload.
    pub const RECORD: u32 = 5;
    /// Unary: everything recorded for the caller.
    pub const RECORDED: u32 = 6;
    /// Unary: sleeps `ms` (u32) unless cancelled; records what it observed.
    pub const SLEEP: u32 = 7;
    /// Unary: opens an exchange back toward the caller and reports its outcome.
    pub const CALLBACK: u32 = 8;
    /// Bidirectional stream: echoes every item; FIN(OK) after the opener's FIN.
    pub const BIDI: u32 = 9;
    /// Unary: the implementation sends GOAWAY on this connection, then answers.
    pub const GOAWAY: u32 = 10;
    /// Unary: answers with the status given in the request (u32), empty payload.
    pub const STATUS: u32 = 11;
    /// Stream: waits until reset, cancelled or 10 s; records what it observed.
    pub const HOLD_STREAM: u32 = 12;
    /// Unary with the schema key [`KEYED_KEY`](super::KEYED_KEY): the response is the request.
    pub const KEYED: u32 = 13;
    /// Unary: answers the status given in the request (u32) with a status body: the rest of
    /// the request as its message, the 4 status bytes as its details.
    pub const FAIL: u32 = 14;
    /// NOTIFY: as FAIL, for a notification.
    pub const FAIL_NOTIFY: u32 = 15;
}

/// The schema key of KEYED (SPEC.md A.2): the ASCII bytes `KEYED-v1`.
pub const KEYED_KEY: tandem_core::SchemaKey = tandem_core::SchemaKey(*b"KEYED-v1");

/// Record entries written by the service itself (SPEC.md A.3).
pub mod entry {
    /// SLEEP saw its call cancelled (CANCEL or responder deadline).
    pub const SLEEP_CANCELLED: &[u8] = b"sleep:cancelled";
    /// SLEEP ran to its end without seeing a cancellation.
    pub const SLEEP_DONE: &[u8] = b"sleep:done";
    /// HOLD_STREAM saw its stream reset or its deadline.
    pub const HOLD_CANCELLED: &[u8] = b"hold:cancelled";
    /// HOLD_STREAM waited 10 s without seeing a reset.
    pub const HOLD_DONE: &[u8] = b"hold:done";
}

/// CALLBACK exchange kinds (first byte of the request).
pub mod kind {
    /// A unary call.
    pub const CALL: u8 = 0;
    /// A reliable notification.
    pub const NOTIFY: u8 = 1;
    /// A signal.
    pub const SIGNAL: u8 = 2;
    /// A stream (the service's own direction ends with FIN at once).
    pub const STREAM: u8 = 3;
}

/// The connection configuration the test service uses (SPEC.md A.4): small windows and limits
/// so that the runner can reach them quickly, fast timers.
pub fn config() -> Config {
    Config {
        max_frame_size: 4096,
        max_message_size: 65536,
        max_concurrent_calls: 16,
        max_concurrent_streams: 8,
        stream_credit_msgs: 4,
        stream_credit_bytes: 4096,
        conn_credit_bytes: 16384,
        keepalive_interval: Duration::from_millis(1000),
        idle_timeout: Duration::from_millis(3000),
        handshake_timeout: Duration::from_millis(1000),
        drain_timeout: Duration::from_millis(3000),
        // A small reply cache, so that the §13/§14 eviction cases need few calls (Appendix A.3).
        reply_cache_entries: 32,
        ..Config::default()
    }
}

/// [`config`] for a service listening on or dialing `addr`: over UDP the handshake timeout is 5 s,
/// since a lost HELLO is retransmitted only after the initial retransmission timeout of 1 s
/// (SPEC.md §14.4, Appendix A.3).
pub fn config_for(addr: &str) -> Config {
    let mut c = config();
    if addr.starts_with("udp://") {
        c.handshake_timeout = Duration::from_secs(5);
    }
    c
}

/// [`config_for`] for tandem-std, which does not check schema keys nor send status bodies
/// yet (it has not adopted tandem-runtime's handler registry): it announces no optional feature
/// (SPEC.md §5.8), so the runner skips the §7.10 and §8.7 cases against it instead of finding
/// a feature announced and not honoured.
pub fn std_config_for(addr: &str) -> Config {
    Config { features: tandem_core::Features::NONE, ..config_for(addr) }
}

/// The HELLO name of the test service.
pub const SERVER_NAME: &str = "tandem-conformance-service";

/// Most peer names whose state [`State`] keeps: a new name beyond it evicts the name used least
/// recently (its sink counters and records are forgotten). The conformance runner reads a case's
/// state back within that case, long before 256 newer names have appeared.
pub const MAX_PEER_NAMES: usize = 256;
/// Most records kept per name; a new record beyond it evicts the oldest. No conformance case
/// needs more than a handful.
pub const MAX_RECORDS_PER_NAME: usize = 64;
/// Most record bytes (payload lengths added up) kept per name; a new record beyond it evicts the
/// oldest records until the rest fits (the newest record is always kept, and it is at most
/// `max_message_size` = 64 KiB). With [`MAX_PEER_NAMES`], the service keeps at most about
/// 256 × (16 KiB + 64 KiB + 64 records' overhead) ≈ 21 MiB however peers behave, and RECORDED's
/// answer always fits a 64 KiB message when records are small.
pub const MAX_RECORD_BYTES_PER_NAME: usize = 16 * 1024;

#[derive(Default)]
struct PeerState {
    calls: u64,
    bytes: u64,
    records: VecDeque<Vec<u8>>,
    /// Sum of the lengths of `records`.
    record_bytes: usize,
    /// When this name was last used ([`Names::clock`]), for eviction.
    used: u64,
}

#[derive(Default)]
struct Names {
    peers: HashMap<String, PeerState>,
    /// Counts uses: a logical clock for "least recently used".
    clock: u64,
}

impl Names {
    /// The state of `peer`, created if new (evicting the least recently used name when
    /// [`MAX_PEER_NAMES`] are kept already).
    fn get(&mut self, peer: &str) -> &mut PeerState {
        self.clock += 1;
        let clock = self.clock;
        if !self.peers.contains_key(peer) && self.peers.len() >= MAX_PEER_NAMES {
            // O(names), but only when a new name arrives while the table is full.
            if let Some(oldest) = self.peers.iter().min_by_key(|(_, s)| s.used).map(|(n, _)| n.clone()) {
                self.peers.remove(&oldest);
            }
        }
        let s = self.peers.entry(peer.to_string()).or_default();
        s.used = clock;
        s
    }
}

/// Per-peer-name state shared by the handlers of one service instance, bounded by
/// [`MAX_PEER_NAMES`], [`MAX_RECORDS_PER_NAME`] and [`MAX_RECORD_BYTES_PER_NAME`].
#[derive(Default, Clone)]
pub struct State {
    names: Arc<Mutex<Names>>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn sink(&self, peer: &str, n: usize) {
        let mut g = self.lock();
        let s = g.get(peer);
        s.calls += 1;
        s.bytes += n as u64;
    }
    pub(crate) fn stats(&self, peer: &str) -> Vec<u8> {
        let g = self.lock();
        let (c, b) = g.peers.get(peer).map(|s| (s.calls, s.bytes)).unwrap_or((0, 0));
        let mut out = c.to_be_bytes().to_vec();
        out.extend_from_slice(&b.to_be_bytes());
        out
    }
    /// Appends a record for `peer`, forgetting its oldest records beyond the bounds.
    pub fn record(&self, peer: &str, bytes: &[u8]) {
        let mut g = self.lock();
        let s = g.get(peer);
        s.records.push_back(bytes.to_vec());
        s.record_bytes += bytes.len();
        while s.records.len() > MAX_RECORDS_PER_NAME
            || (s.record_bytes > MAX_RECORD_BYTES_PER_NAME && s.records.len() > 1)
        {
            let Some(old) = s.records.pop_front() else { break };
            s.record_bytes -= old.len();
        }
    }
    /// Every record kept for `peer`, encoded as RECORDED answers them.
    pub fn recorded(&self, peer: &str) -> Vec<u8> {
        let g = self.lock();
        let mut out = Vec::new();
        if let Some(s) = g.peers.get(peer) {
            for r in &s.records {
                out.extend_from_slice(&(r.len() as u32).to_be_bytes());
                out.extend_from_slice(r);
            }
        }
        out
    }
    /// Peer names kept now (at most [`MAX_PEER_NAMES`]).
    pub fn names(&self) -> usize {
        self.lock().peers.len()
    }
    /// Records kept now, over every name.
    pub fn records(&self) -> usize {
        self.lock().peers.values().map(|s| s.records.len()).sum()
    }
}

/// Splits a RECORDED response into its entries.
pub fn parse_recorded(mut b: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
        out.push(b.get(4..4 + n)?.to_vec());
        b = &b[4 + n..];
    }
    Some(out)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A parsed CALLBACK request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// [`kind`].
    pub kind: u8,
    /// Method to open toward the caller.
    pub method: MethodId,
    /// Timeout of the exchange in ms (0: none).
    pub timeout_ms: u32,
    /// Request, notification, signal or initial payload.
    pub payload: Vec<u8>,
}

impl Callback {
    /// Encodes the request (SPEC.md A.2, CALLBACK).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.kind];
        out.extend_from_slice(&self.method.module.to_be_bytes());
        out.extend_from_slice(&self.method.method.to_be_bytes());
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }
    /// Decodes a request.
    pub fn decode(b: &[u8]) -> Option<Callback> {
        Some(Callback {
            kind: *b.first()?,
            method: MethodId::new(u32_at(b, 1)?, u32_at(b, 5)?),
            timeout_ms: u32_at(b, 9)?,
            payload: b.get(13..)?.to_vec(),
        })
    }
    fn timeout(&self) -> Option<Duration> {
        (self.timeout_ms > 0).then(|| Duration::from_millis(u64::from(self.timeout_ms)))
    }
}

fn callback_reply(status: Status, payload: &[u8]) -> Vec<u8> {
    let mut out = status.0.to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn items_blob(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend_from_slice(&(i.len() as u32).to_be_bytes());
        out.extend_from_slice(i);
    }
    out
}

/// The largest COUNT item the service produces: its own `max_message_size` (SPEC.md A.3). A
/// larger `size` ends the stream with TOO_LARGE before anything is built, whatever limits the
/// opener announced, so that one request cannot make the service allocate 4 GiB.
pub const MAX_COUNT_ITEM: u32 = 65536;

/// The items COUNT sends, produced one at a time (an iterator of `Vec<u8>`): the handler builds an
/// item only when it is about to send it, so memory stays at one item however large `n` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    next: u32,
    n: u32,
    size: Option<u32>,
}

impl Count {
    /// Parses COUNT's initial payload: `n` (u32) and optionally `size` (u32). `Err` is the
    /// stream's terminal status: BAD_PAYLOAD for another layout, TOO_LARGE for a `size` above
    /// [`MAX_COUNT_ITEM`].
    pub fn parse(init: &[u8]) -> Result<Count, Status> {
        if init.len() != 4 && init.len() != 8 {
            return Err(Status::BAD_PAYLOAD);
        }
        let n = u32_at(init, 0).ok_or(Status::BAD_PAYLOAD)?;
        let size = if init.len() == 8 { u32_at(init, 4) } else { None };
        if size.is_some_and(|s| s > MAX_COUNT_ITEM) {
            return Err(Status::TOO_LARGE);
        }
        Ok(Count { next: 0, n, size })
    }

    /// Item `i`: `u32` i without a size, otherwise `size` bytes of value i mod 256.
    pub fn item(&self, i: u32) -> Vec<u8> {
        match self.size {
            None => i.to_be_bytes().to_vec(),
            Some(s) => vec![(i % 256) as u8; s as usize],
        }
    }
}

impl Iterator for Count {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        if self.next >= self.n {
            return None;
        }
        let item = self.item(self.next);
        self.next += 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.n - self.next) as usize;
        (left, Some(left))
    }
}

/// The `auth` bytes the test service accepts in authenticating mode (SPEC.md Appendix A.5), as
/// identity `alice`.
pub const AUTH_ALICE: &[u8] = b"conformance-alice";
/// The `auth` bytes the test service accepts in authenticating mode, as identity `bob`.
pub const AUTH_BOB: &[u8] = b"conformance-bob";

/// The test service's authenticator in authenticating mode (SPEC.md Appendix A.5): `alice` and
/// `bob` by their tokens; anything else UNAUTHENTICATED.
pub fn authenticator() -> std::sync::Arc<dyn tandem_smol::Authenticator> {
    use tandem_smol::{AuthRefusal, AuthRequest, PeerIdentity};
    std::sync::Arc::new(|r: &AuthRequest<'_>| match r.auth {
        AUTH_ALICE => Ok(PeerIdentity::new("alice")),
        AUTH_BOB => Ok(PeerIdentity::new("bob")),
        _ => Err(AuthRefusal::unauthenticated(
            "unknown credentials (the test service accepts conformance-alice and conformance-bob)",
        )),
    })
}

fn m(method: u32) -> MethodId {
    MethodId::new(MODULE, method)
}

/// The test service on the blocking runtime.
pub fn std_service(state: &State) -> tandem_std::Handlers {
    use tandem_std::{CallError, Deadline, Handlers};
    let (s1, s2, s3, s4, s5, s6) =
        (state.clone(), state.clone(), state.clone(), state.clone(), state.clone(), state.clone());
    // tandem-std cannot check keys or send status bodies yet (it announces no feature,
    // `std_config_for`): KEYED echoes, FAIL and FAIL_NOTIFY answer their status alone.
    let fail = |b: &[u8]| match u32_at(b, 0) {
        Some(st) if st != 0 => Status(st),
        _ => Status::BAD_PAYLOAD,
    };
    Handlers::new()
        .raw_unary(m(method::KEYED), |_, b| Ok(b))
        .raw_unary(m(method::FAIL), move |_, b| Err(fail(&b)))
        .raw_notification(m(method::FAIL_NOTIFY), move |_, b| Err(fail(&b)))
        .raw_unary(m(method::ECHO), |_, b| Ok(b))
        .raw_unary(m(method::SINK), move |ctx, b| {
            s1.sink(ctx.peer_name(), b.len());
            Ok(Vec::new())
        })
        .raw_unary(m(method::SINK_STATS), move |ctx, _| Ok(s2.stats(ctx.peer_name())))
        .raw_streaming(m(method::COUNT), |ctx, init, rx, mut tx| {
            // The opener's items are dropped as they arrive (their credit goes straight back).
            drop(rx);
            // One item at a time, built right before it is sent: `send` waits for credit (the
            // handler is parked meanwhile), and fails once the stream is reset or the
            // connection is gone.
            for item in Count::parse(&init)? {
                if ctx.is_cancelled() {
                    return Err(Status::CANCELLED);
                }
                tx.send(&item).map_err(|e| e.status())?;
            }
            tx.finish().map_err(|e| e.status())
        })
        .raw_notification(m(method::RECORD), move |ctx, b| {
            s3.record(ctx.peer_name(), &b);
            Ok(())
        })
        .raw_unary(m(method::RECORDED), move |ctx, _| Ok(s4.recorded(ctx.peer_name())))
        .raw_unary(m(method::SLEEP), move |ctx, b| {
            let ms = u32_at(&b, 0).ok_or(Status::BAD_PAYLOAD)?;
            // Waiting parks the handler: its pool worker serves other requests meanwhile.
            let cancelled = ctx.wait_cancelled(Duration::from_millis(u64::from(ms)));
            s5.record(ctx.peer_name(), if cancelled { entry::SLEEP_CANCELLED } else { entry::SLEEP_DONE });
            Ok(vec![u8::from(cancelled)])
        })
        .raw_unary(m(method::CALLBACK), |ctx, b| {
            let cb = Callback::decode(&b).ok_or(Status::BAD_PAYLOAD)?;
            let p = ctx.peer();
            let st = |r: Result<(), CallError>| r.err().map(|e| e.status()).unwrap_or(Status::OK);
            // The callback's own timeout, not the inherited deadline of this request.
            let deadline = cb.timeout().map_or(Deadline::None, Deadline::after);
            Ok(match cb.kind {
                kind::CALL => match p.call_raw(cb.method, &cb.payload, deadline) {
                    Ok(v) => callback_reply(Status::OK, &v),
                    Err(e) => callback_reply(e.status(), &[]),
                },
                kind::NOTIFY => callback_reply(st(p.notify_raw(cb.method, &cb.payload, deadline)), &[]),
                kind::SIGNAL => callback_reply(st(p.signal_raw(cb.method, &cb.payload)), &[]),
                // The timeout bounds the whole stream.
                kind::STREAM => match p.open_stream_raw(cb.method, &cb.payload, deadline) {
                    Err(e) => callback_reply(e.status(), &[]),
                    Ok((mut tx, mut rx)) => {
                        let _ = tx.finish();
                        let mut items = Vec::new();
                        let status = loop {
                            match rx.recv() {
                                Ok(Some(i)) => items.push(i),
                                Ok(None) => break Status::OK,
                                Err(e) => break e.status(),
                            }
                        };
                        callback_reply(status, &items_blob(&items))
                    }
                },
                _ => return Err(Status::BAD_PAYLOAD),
            })
        })
        .raw_streaming(m(method::BIDI), |_, _init, mut rx, mut tx| {
            while let Some(i) = rx.recv().map_err(|e| e.status())? {
                tx.send(&i).map_err(|e| e.status())?;
            }
            tx.finish().map_err(|e| e.status())
        })
        .raw_unary(m(method::GOAWAY), |ctx, _| {
            ctx.peer().go_away();
            Ok(Vec::new())
        })
        .raw_unary(m(method::STATUS), |_, b| {
            let st = u32_at(&b, 0).ok_or(Status::BAD_PAYLOAD)?;
            if st == 0 {
                Ok(Vec::new())
            } else {
                Err(Status(st))
            }
        })
        .raw_streaming(m(method::HOLD_STREAM), move |ctx, _init, rx, tx| {
            // Keep both halves alive: items are neither read nor discarded.
            let _keep = (rx, tx);
            let cancelled = ctx.wait_cancelled(Duration::from_secs(10));
            s6.record(ctx.peer_name(), if cancelled { entry::HOLD_CANCELLED } else { entry::HOLD_DONE });
            if cancelled {
                Err(Status::CANCELLED)
            } else {
                Ok(())
            }
        })
}

/// FAIL and FAIL_NOTIFY (SPEC.md A.2): the status of the request, its message, the status's
/// bytes as details.
fn fail_outcome(b: &[u8]) -> tandem_smol::Outcome {
    match u32_at(b, 0) {
        Some(st) if st != 0 => {
            let message = String::from_utf8_lossy(&b[4..]).into_owned();
            tandem_smol::Outcome::failed(Status(st), message, b[..4].to_vec())
        }
        _ => tandem_smol::Outcome::status(Status::BAD_PAYLOAD, Vec::new()),
    }
}

/// The test service on the async runtime.
pub fn smol_service(state: &State) -> tandem_smol::Handlers {
    use tandem_smol::{CallError, Deadline, Handlers};
    let (s1, s2, s3, s4, s5, s6) =
        (state.clone(), state.clone(), state.clone(), state.clone(), state.clone(), state.clone());
    Handlers::new()
        .raw_unary(m(method::KEYED), |_, b| async move { Ok(b) })
        .with_key(m(method::KEYED), KEYED_KEY)
        .raw_unary_outcome(m(method::FAIL), |_, b| async move { fail_outcome(&b) })
        .raw_notification_outcome(m(method::FAIL_NOTIFY), |_, b| async move { fail_outcome(&b) })
        .raw_unary(m(method::ECHO), |_, b| async move { Ok(b) })
        .raw_unary(m(method::SINK), move |ctx, b| {
            s1.sink(ctx.peer_name(), b.len());
            async move { Ok(Vec::new()) }
        })
        .raw_unary(m(method::SINK_STATS), move |ctx, _| {
            let r = s2.stats(ctx.peer_name());
            async move { Ok(r) }
        })
        .raw_streaming(m(method::COUNT), |_, init, rx, mut tx| async move {
            // The opener's items are dropped as they arrive (their credit goes straight back).
            drop(rx);
            // One item at a time, built right before it is sent: `send` waits for credit, and
            // fails once the stream is reset or the connection is gone (and a cancelled handler
            // is dropped at its next await anyway).
            for item in Count::parse(&init)? {
                tx.send(&item).await.map_err(|e| e.status())?;
            }
            tx.finish().map_err(|e| e.status())
        })
        .raw_notification(m(method::RECORD), move |ctx, b| {
            s3.record(ctx.peer_name(), &b);
            async move { Ok(()) }
        })
        .raw_unary(m(method::RECORDED), move |ctx, _| {
            let r = s4.recorded(ctx.peer_name());
            async move { Ok(r) }
        })
        .raw_unary(m(method::SLEEP), move |ctx, b| {
            let s5 = s5.clone();
            async move {
                let ms = u32_at(&b, 0).ok_or(Status::BAD_PAYLOAD)?;
                let timer = async {
                    smol::Timer::after(Duration::from_millis(u64::from(ms))).await;
                    false
                };
                let cancel = async {
                    ctx.cancelled().await;
                    true
                };
                let cancelled = futures_lite::future::or(cancel, timer).await || ctx.is_cancelled();
                s5.record(
                    ctx.peer_name(),
                    if cancelled { entry::SLEEP_CANCELLED } else { entry::SLEEP_DONE },
                );
                Ok(vec![u8::from(cancelled)])
            }
        })
        .raw_unary(m(method::CALLBACK), |ctx, b| async move {
            let cb = Callback::decode(&b).ok_or(Status::BAD_PAYLOAD)?;
            let p = ctx.peer().clone();
            let st = |r: Result<(), CallError>| r.err().map(|e| e.status()).unwrap_or(Status::OK);
            // The callback's own timeout, not the inherited deadline of this request.
            let deadline = cb.timeout().map_or(Deadline::None, Deadline::after);
            Ok(match cb.kind {
                kind::CALL => match p.call_raw(cb.method, &cb.payload, deadline).await {
                    Ok(v) => callback_reply(Status::OK, &v),
                    Err(e) => callback_reply(e.status(), &[]),
                },
                kind::NOTIFY => callback_reply(st(p.notify_raw(cb.method, &cb.payload, deadline).await), &[]),
                kind::SIGNAL => callback_reply(st(p.signal_raw(cb.method, &cb.payload).await), &[]),
                kind::STREAM => {
                    // The timeout bounds the opening only (waiting for a stream slot).
                    let opened = p.open_stream_raw(cb.method, &cb.payload, Deadline::None);
                    let r = match cb.timeout() {
                        Some(t) => {
                            futures_lite::future::or(opened, async {
                                smol::Timer::after(t).await;
                                Err(CallError::from(Status::DEADLINE_EXCEEDED))
                            })
                            .await
                        }
                        None => opened.await,
                    };
                    match r {
                        Err(e) => callback_reply(e.status(), &[]),
                        Ok((mut tx, mut rx)) => {
                            let _ = tx.finish();
                            let mut items = Vec::new();
                            let status = loop {
                                match rx.recv().await {
                                    Ok(Some(i)) => items.push(i),
                                    Ok(None) => break Status::OK,
                                    Err(e) => break e.status(),
                                }
                            };
                            callback_reply(status, &items_blob(&items))
                        }
                    }
                }
                _ => return Err(Status::BAD_PAYLOAD),
            })
        })
        .raw_streaming(m(method::BIDI), |_, _init, mut rx, mut tx| async move {
            while let Some(i) = rx.recv().await.map_err(|e| e.status())? {
                tx.send(&i).await.map_err(|e| e.status())?;
            }
            tx.finish().map_err(|e| e.status())
        })
        .raw_unary(m(method::GOAWAY), |ctx, _| {
            ctx.peer().go_away();
            async move { Ok(Vec::new()) }
        })
        .raw_unary(m(method::STATUS), |_, b| async move {
            let st = u32_at(&b, 0).ok_or(Status::BAD_PAYLOAD)?;
            if st == 0 {
                Ok(Vec::new())
            } else {
                Err(Status(st))
            }
        })
        .raw_streaming(m(method::HOLD_STREAM), move |ctx, _init, rx, tx| {
            let s6 = s6.clone();
            async move {
                // Keep both halves alive: items are neither read nor discarded.
                let _keep = (rx, tx);
                let timer = async {
                    smol::Timer::after(Duration::from_secs(10)).await;
                    false
                };
                let cancel = async {
                    ctx.cancelled().await;
                    true
                };
                let cancelled = futures_lite::future::or(cancel, timer).await || ctx.is_cancelled();
                s6.record(ctx.peer_name(), if cancelled { entry::HOLD_CANCELLED } else { entry::HOLD_DONE });
                if cancelled {
                    Err(Status::CANCELLED)
                } else {
                    Ok(())
                }
            }
        })
}
