//! [`Peer`]: a handle on one connection, for calling, notifying and opening streams toward the
//! other side.

use crate::clock;
use crate::conn::{CallSlot, Inner, Shared};
use crate::error::CallError;
use crate::stream::{self, RawReceiver, RawSender, StreamReceiver, StreamSender};
use crate::transport::PeerCredentials;
use core::time::Duration;
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tandem_core::typed::{self, CodecError, Notification, Streaming, Unary};
use tandem_core::{ApiError, Connection, ConnectionError, Instant, MethodId, Stats, Status};

/// How long a caller waiting for its call's outcome spins (yielding) before it parks.
const SPIN: Duration = Duration::from_micros(50);

/// One connected peer. Cheap to clone; every clone drives the same connection.
///
/// Both ends of a connection are equal: a client calls the server through a `Peer`, and a
/// server (or a handler, via [`Ctx::peer`](crate::Ctx::peer)) calls the client the same way.
///
/// Timeouts (`impl Into<Option<Duration>>`: a `Duration` or `None`) travel with the request, so
/// the remote handler sees them as its deadline; when one passes the call fails with
/// DEADLINE_EXCEEDED and the remote handler is cancelled.
#[derive(Clone)]
pub struct Peer {
    shared: Arc<Shared>,
}

impl core::fmt::Debug for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Peer").field("conn", &self.shared.id).field("name", &self.name()).finish()
    }
}

/// Encodes `value` into this thread's reusable buffer and hands the bytes to `f` (no
/// allocation per call in steady state).
fn with_encoded<T: Serialize, R>(
    value: &T,
    f: impl FnOnce(&[u8]) -> Result<R, CallError>,
) -> Result<R, CallError> {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    /// Larger buffers are not kept between calls.
    const KEEP: usize = 64 * 1024;
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            typed::encode_into_vec(value, &mut buf).map_err(CallError::Encode)?;
            let r = f(&buf);
            if buf.capacity() > KEEP {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => f(&typed::encode_vec(value).map_err(CallError::Encode)?),
    })
}

/// Starts an exchange: retries on back-pressure until `timeout`, then registers it with
/// `register` under the same lock, so that no event for it can be missed.
pub(crate) fn start(
    shared: &Shared,
    timeout: Option<Duration>,
    mut open: impl FnMut(&mut Connection<'static>, Instant, Option<Instant>) -> Result<u64, ApiError>,
    register: impl FnOnce(&mut Inner, u64),
) -> Result<u64, CallError> {
    let deadline = timeout.map(|t| clock::now() + t);
    let mut g = shared.lock();
    let id = loop {
        if g.finished {
            // The driver is gone; nothing queued now would ever be sent.
            return Err(CallError::Refused(ApiError::Closed));
        }
        let now = clock::now();
        match open(&mut g.conn, now, deadline) {
            Ok(id) => break id,
            // A limit of 0 (the peer allows no such exchange): no slot can ever free up, so
            // refuse at once rather than wait (SPEC.md §10.5).
            Err(ApiError::TooManyCalls { limit: 0 } | ApiError::TooManyStreams { limit: 0 }) => {
                return Err(CallError::Status(Status::RESOURCE_EXHAUSTED));
            }
            Err(e) if e.is_backpressure() => {
                if deadline.is_some_and(|d| now >= d) {
                    return Err(CallError::Status(Status::DEADLINE_EXCEEDED));
                }
                g = if e == ApiError::TxFull {
                    shared.wait_tx(g)
                } else {
                    // Another exchange must end first; any event may be it.
                    let wait = deadline.map_or(Duration::from_millis(100), |d| d - now);
                    shared.wait_timeout(g, wait)
                };
            }
            Err(e) => return Err(CallError::Refused(e)),
        }
    };
    register(&mut g, id);
    shared.check_timer(&g);
    drop(g);
    shared.flush();
    Ok(id)
}

impl Peer {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Peer { shared }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The name the peer gave in its HELLO.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// The peer process's credentials (uid, gid, pid) on a Unix socket; `None` over TCP.
    pub fn credentials(&self) -> Option<PeerCredentials> {
        self.shared.creds
    }

    /// The connection's counters (bytes, frames, calls, round-trip time, …).
    pub fn stats(&self) -> Stats {
        self.shared.lock().conn.stats()
    }

    /// Exchanges (calls, notifications, streams, both directions) the connection still tracks:
    /// zero when it is quiet.
    pub fn open_exchanges(&self) -> usize {
        self.shared.lock().conn.open_exchanges()
    }

    /// Answers kept in the session's reply cache for the peer's retransmissions (SPEC.md
    /// §13): `(entries, payload bytes)`. Zero once the peer acknowledged everything.
    pub fn reply_cache_len(&self) -> (usize, usize) {
        self.shared.lock().conn.reply_cache_len()
    }

    /// Whether the session is suspended: its transport was lost and it waits to be resumed.
    pub fn is_suspended(&self) -> bool {
        self.shared.lock().conn.state() == tandem_core::State::Suspended
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.shared.lock().closed
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// Whether the peer sent GOAWAY: new exchanges are refused, open ones finish.
    pub fn is_going_away(&self) -> bool {
        self.shared.lock().going_away
    }

    // ------------------------------------------------------------------ calls

    /// Calls `method` and waits for its response.
    pub fn call<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        self.start_call(method, req, timeout)?.wait()
    }

    /// Sends a call and returns at once; [`PendingCall::wait`] for the response or
    /// [`PendingCall::cancel`] it. Dropping it cancels the call too.
    pub fn start_call<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<PendingCall<Resp>, CallError>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        let timeout = timeout.into();
        with_encoded(req, |bytes| self.start(method.id(), bytes, timeout, false, |v| typed::decode(&v)))
    }

    /// Calls `method` with raw bytes and waits for the raw response.
    pub fn call_raw(
        &self,
        method: MethodId,
        req: &[u8],
        timeout: impl Into<Option<Duration>>,
    ) -> Result<Vec<u8>, CallError> {
        self.start_call_raw(method, req, timeout)?.wait()
    }

    /// Calls `method` with raw bytes and waits for the raw response, which replaces the
    /// contents of `out`. The fast path: with `out` reused from call to call, a steady stream
    /// of calls performs no heap allocation in this runtime (the buffer `out` held goes back to
    /// the connection for the next response).
    pub fn call_raw_into(
        &self,
        method: MethodId,
        req: &[u8],
        timeout: impl Into<Option<Duration>>,
        out: &mut Vec<u8>,
    ) -> Result<(), CallError> {
        self.start_call_raw(method, req, timeout)?.wait_into(out)
    }

    /// Sends a raw call and returns at once.
    pub fn start_call_raw(
        &self,
        method: MethodId,
        req: &[u8],
        timeout: impl Into<Option<Duration>>,
    ) -> Result<PendingCall<Vec<u8>>, CallError> {
        self.start(method, req, timeout.into(), false, Ok)
    }

    /// Sends a reliable notification and waits for the peer's acknowledgement: `Ok` when its
    /// handler accepted it, otherwise the status it (or the runtime) gave.
    pub fn notify<T>(
        &self,
        method: &Notification<T>,
        value: &T,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<(), CallError>
    where
        T: Serialize + DeserializeOwned,
    {
        let timeout = timeout.into();
        with_encoded(value, |bytes| self.start(method.id(), bytes, timeout, true, |_| Ok(())))?.wait()
    }

    /// Sends a reliable notification with a raw payload and waits for the acknowledgement.
    pub fn notify_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        timeout: impl Into<Option<Duration>>,
    ) -> Result<(), CallError> {
        self.start(method, payload, timeout.into(), true, |_| Ok(()))?.wait()
    }

    /// Sends an unreliable notification: once, never acknowledged (it must fit one frame).
    pub fn signal<T>(&self, method: &Notification<T>, value: &T) -> Result<(), CallError>
    where
        T: Serialize + DeserializeOwned,
    {
        with_encoded(value, |bytes| self.signal_raw(method.id(), bytes))
    }

    /// Sends an unreliable notification with a raw payload.
    pub fn signal_raw(&self, method: MethodId, payload: &[u8]) -> Result<(), CallError> {
        let mut g = self.shared.lock();
        loop {
            match g.conn.signal(method, payload) {
                Ok(()) => break,
                Err(ApiError::TxFull) => g = self.shared.wait_tx(g),
                Err(e) => return Err(CallError::Refused(e)),
            }
        }
        drop(g);
        self.shared.flush();
        Ok(())
    }

    fn start<R>(
        &self,
        method: MethodId,
        payload: &[u8],
        timeout: Option<Duration>,
        notify: bool,
        decode: fn(Vec<u8>) -> Result<R, CodecError>,
    ) -> Result<PendingCall<R>, CallError> {
        let id = start(
            &self.shared,
            timeout,
            |conn, now, deadline| {
                if notify {
                    conn.notify(now, method, payload, deadline)
                } else {
                    conn.call(now, method, payload, deadline)
                }
            },
            |g, id| {
                g.calls.insert(id, CallSlot::default());
            },
        )?;
        tracing::trace!(conn = self.shared.id, id, ?method, "call sent");
        Ok(PendingCall { shared: Arc::clone(&self.shared), id, done: false, decode })
    }

    // ------------------------------------------------------------------ streams

    /// Opens a stream with its initial value; returns the sender of `Up` items and the
    /// receiver of `Down` items. Dropping the sender finishes this direction; dropping both
    /// before the stream ended cancels it.
    #[allow(clippy::type_complexity)]
    pub fn open_stream<I, U, D>(
        &self,
        method: &Streaming<I, U, D>,
        init: &I,
        timeout: impl Into<Option<Duration>>,
    ) -> Result<(StreamSender<U>, StreamReceiver<D>), CallError>
    where
        I: Serialize + DeserializeOwned,
        U: Serialize + DeserializeOwned,
        D: Serialize + DeserializeOwned,
    {
        let timeout = timeout.into();
        let (tx, rx) = with_encoded(init, |bytes| self.open_stream_raw(method.id(), bytes, timeout))?;
        Ok((StreamSender::from_raw(tx), StreamReceiver::from_raw(rx)))
    }

    /// Opens a stream with a raw initial payload.
    pub fn open_stream_raw(
        &self,
        method: MethodId,
        init: &[u8],
        timeout: impl Into<Option<Duration>>,
    ) -> Result<(RawSender, RawReceiver), CallError> {
        stream::open(&self.shared, method, init, timeout.into())
    }

    // ------------------------------------------------------------------ ending

    /// Starts a graceful shutdown of this connection (GOAWAY): no new exchanges from either
    /// side, open ones finish, then the connection closes (or after `Config::drain_timeout`).
    pub fn go_away(&self) {
        let mut g = self.shared.lock();
        if let Err(e) = g.conn.go_away(clock::now(), Status::OK, b"going away") {
            tracing::debug!(conn = self.shared.id, "go_away: {e}");
        }
        self.shared.pump_now(&mut g);
        drop(g);
        // Never block here (a server closes stale connections from a driver thread): the
        // driver writes whatever the socket does not take now.
        self.shared.flush_out();
        self.shared.wake_driver();
    }

    /// Closes the connection now with `status` and a message: every open exchange fails with
    /// UNAVAILABLE.
    pub fn close_with(&self, status: Status, message: &str) {
        let mut g = self.shared.lock();
        g.conn.close(clock::now(), status, message.as_bytes());
        self.shared.pump_now(&mut g);
        drop(g);
        // Never block here (a server closes stale connections from a driver thread): the
        // driver writes whatever the socket does not take now.
        self.shared.flush_out();
        self.shared.wake_driver();
    }

    /// Closes the connection now (CLOSE with OK).
    pub fn close(&self) {
        self.close_with(Status::OK, "");
    }

    /// Waits until the connection has ended and its socket is shut; false on timeout.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        let mut g = self.shared.lock();
        while !g.finished {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self.shared.wait_timeout(g, left);
        }
        true
    }

    /// Whether two handles drive the same connection.
    pub fn same_connection(&self, other: &Peer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// A call in flight. [`wait`](Self::wait) for its outcome or [`cancel`](Self::cancel) it;
/// dropping it cancels it.
pub struct PendingCall<R> {
    shared: Arc<Shared>,
    id: u64,
    done: bool,
    decode: fn(Vec<u8>) -> Result<R, CodecError>,
}

impl<R> core::fmt::Debug for PendingCall<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PendingCall").field("id", &self.id).finish()
    }
}

impl<R> PendingCall<R> {
    /// The call's exchange id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Waits for the outcome: the decoded response, or the status the call ended with.
    pub fn wait(mut self) -> Result<R, CallError> {
        let (status, body) = self.outcome(None);
        if status.is_ok() {
            (self.decode)(body).map_err(CallError::Decode)
        } else {
            Err(CallError::Status(status))
        }
    }

    /// Waits until the outcome arrives and takes it. With `swap`: the response body is
    /// swapped into it under the same lock, and its previous buffer kept for a later response.
    fn outcome(&mut self, mut swap: Option<&mut Vec<u8>>) -> (Status, Vec<u8>) {
        self.done = true;
        let mut spun = false;
        loop {
            let mut g = self.shared.lock();
            match g.calls.get_mut(&self.id) {
                None => return (Status::CANCELLED, Vec::new()),
                Some(slot) => match slot.result.take() {
                    Some(mut r) => {
                        g.calls.remove(&self.id);
                        if let Some(out) = swap.take() {
                            core::mem::swap(out, &mut r.1);
                            g.give_back(core::mem::take(&mut r.1));
                        }
                        return r;
                    }
                    // Parks only after spinning (below); then the driver must wake it.
                    None if spun => slot.waiter = Some(std::thread::current()),
                    None => {}
                },
            }
            let seen = self.shared.pumped.load(Ordering::Acquire);
            drop(g);
            if !spun {
                // Spin-then-park: a fast answer usually arrives within a few microseconds,
                // and waiting for it here saves the wake-up of this thread (as expensive as a
                // whole round trip on a loaded or virtualised machine). Yielding lets the
                // connection's driver run if it shares this CPU.
                spun = true;
                let until = std::time::Instant::now() + SPIN;
                while self.shared.pumped.load(Ordering::Acquire) == seen && std::time::Instant::now() < until
                {
                    std::thread::yield_now();
                }
                continue;
            }
            // Woken by the event that resolves this call (spurious wake-ups loop). A handler
            // waiting here is parked: its worker runs other handlers meanwhile.
            let _parked = crate::pool::parked();
            std::thread::park();
        }
    }

    /// Cancels the call: the peer is told to stop (its handler sees
    /// [`Ctx::is_cancelled`](crate::Ctx::is_cancelled)) and its answer is ignored.
    pub fn cancel(mut self) {
        self.cancel_now();
    }

    fn cancel_now(&mut self) {
        self.done = true;
        let mut g = self.shared.lock();
        let unresolved = g.calls.remove(&self.id).is_some_and(|c| c.result.is_none());
        if unresolved {
            if let Err(e) = g.conn.cancel(self.id) {
                tracing::debug!(conn = self.shared.id, id = self.id, "cancel: {e}");
            }
            tracing::debug!(conn = self.shared.id, id = self.id, "call cancelled");
        }
        drop(g);
        if unresolved {
            self.shared.flush();
        }
    }
}

impl PendingCall<Vec<u8>> {
    /// Waits for the outcome like [`wait`](Self::wait), but puts the response into `out`
    /// (replacing its contents; emptied on an error status). The buffer `out` held is given to
    /// the connection to receive a later response, so reusing `out` from call to call makes
    /// steady-state calls allocation-free.
    pub fn wait_into(mut self, out: &mut Vec<u8>) -> Result<(), CallError> {
        out.clear();
        let (status, _) = self.outcome(Some(out));
        if status.is_ok() {
            Ok(())
        } else {
            out.clear();
            Err(CallError::Status(status))
        }
    }
}

impl<R> Drop for PendingCall<R> {
    fn drop(&mut self) {
        if !self.done {
            self.cancel_now();
        }
    }
}
