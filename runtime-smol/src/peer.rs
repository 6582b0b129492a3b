//! [`Peer`]: the handle to one connection, for calling, notifying and streaming toward the
//! other side.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::Arc;

use async_io::Timer;
use futures_lite::future::{poll_fn, FutureExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::typed::{encode_vec, Notification, Streaming, Unary};
use tandem_core::{ApiError, ConnectionError, MethodId, Stats, Status};

use crate::error::CallError;
use crate::shared::{now, wait_on, CallSlot, Shared, StreamEntry};
use crate::stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};
use crate::transport::Credentials;

/// A handle to one connection with a peer. Cheap to clone.
///
/// Both sides are equal once connected: either may call, notify and open streams toward the
/// other. The connection closes when the peer closes it, on [`close`](Self::close) or
/// [`shutdown`](Self::shutdown), or when the last handle (including those held by running
/// handlers and open streams) is dropped. A server keeps a handle for every connected peer.
pub struct Peer {
    pub(crate) shared: Arc<Shared>,
}

impl core::fmt::Debug for Peer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Peer").field("conn", &self.shared.id).field("name", &self.name()).finish()
    }
}

impl Clone for Peer {
    fn clone(&self) -> Self {
        Peer::from_shared(self.shared.clone())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut inner = self.shared.lock();
            if inner.closed.is_none() {
                tracing::debug!(conn = self.shared.id, "last handle dropped: closing");
                inner.conn.close(now(), Status::OK, b"");
                inner.wake_driver();
            }
        }
    }
}

/// Kind of request-response exchange.
#[derive(Clone, Copy)]
enum Kind {
    Call,
    Notify,
}

/// An outbound call waiting for its outcome; dropping it cancels the call.
struct PendingCall<'a> {
    peer: &'a Peer,
    id: u64,
    done: bool,
}

impl Future for PendingCall<'_> {
    type Output = Result<Vec<u8>, CallError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.id;
        let mut inner = self.peer.shared.lock();
        let out = match inner.calls.get_mut(&id) {
            Some(slot) => match slot.result.take() {
                Some(r) => Some(r.map_err(CallError::Status)),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    None
                }
            },
            None => Some(Err(CallError::Status(Status::UNAVAILABLE))),
        };
        match out {
            Some(r) => {
                inner.calls.remove(&id);
                drop(inner);
                self.done = true;
                Poll::Ready(r)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut inner = self.peer.shared.lock();
        inner.calls.remove(&self.id);
        if inner.conn.cancel(self.id).is_ok() {
            tracing::debug!(conn = self.peer.shared.id, id = self.id, "call dropped: cancelled");
            inner.wake_driver();
        }
    }
}

impl Peer {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        shared.handles.fetch_add(1, Ordering::AcqRel);
        Peer { shared }
    }

    /// The peer's name from its HELLO (a server tracks peers by it).
    pub fn name(&self) -> &str {
        self.shared.info.get().map_or("", |i| i.name.as_str())
    }

    /// The peer process's credentials (uid, gid, pid) on Unix sockets; `None` on TCP.
    pub fn credentials(&self) -> Option<Credentials> {
        self.shared.creds
    }

    /// The connection's counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().conn.stats()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    /// Whether the connection's session is suspended: its transport was lost and it waits
    /// (for at most `Config::session_grace`) for the client to reconnect (SPEC.md §13). Calls
    /// made meanwhile are sent after the resumption.
    pub fn is_suspended(&self) -> bool {
        self.shared.lock().conn.state() == tandem_core::State::Suspended
    }

    /// Whether the two handles refer to the same connection.
    pub fn same_connection(&self, other: &Peer) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Waits until the connection has ended and returns why.
    pub async fn closed(&self) -> ConnectionError {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            match inner.closed {
                Some(e) => Poll::Ready(e),
                None => {
                    wait_on(&mut inner.state_waiters, cx);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Waits for the handshake; fails if the connection closes first.
    pub(crate) async fn connected(&self) -> Result<(), ConnectionError> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            if inner.connected {
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = inner.closed {
                return Poll::Ready(Err(e));
            }
            wait_on(&mut inner.state_waiters, cx);
            Poll::Pending
        })
        .await
    }

    /// Closes the connection at once: exchanges in flight fail with UNAVAILABLE on both sides.
    pub fn close(&self) {
        self.close_with(Status::OK, "closed by the application");
    }

    pub(crate) fn close_with(&self, status: Status, message: &str) {
        let mut inner = self.shared.lock();
        inner.conn.close(now(), status, message.as_bytes());
        inner.wake_driver();
    }

    /// Starts a graceful shutdown (GOAWAY) without waiting: the peer may open nothing new,
    /// exchanges in flight finish, then the connection closes.
    pub fn go_away(&self) {
        let mut inner = self.shared.lock();
        if let Err(e) = inner.conn.go_away(now(), Status::OK, b"shutting down") {
            tracing::debug!(conn = self.shared.id, error = %e, "go_away not sent");
        }
        inner.wake_driver();
    }

    /// Graceful shutdown: sends GOAWAY, lets exchanges in flight finish for up to `grace`, then
    /// closes whatever remains (those fail with UNAVAILABLE).
    pub async fn shutdown(&self, grace: Duration) {
        self.go_away();
        let finished = async {
            self.closed().await;
            true
        }
        .or(async {
            Timer::after(grace).await;
            false
        })
        .await;
        if !finished {
            tracing::info!(conn = self.shared.id, "grace period over: closing");
            self.close_with(Status::UNAVAILABLE, "shutdown grace period over");
        }
    }

    /// Calls a unary method and waits for its response. `timeout` travels with the request as
    /// its deadline; when it passes, the call fails with DEADLINE_EXCEEDED and the remote
    /// handler is cancelled. Dropping the returned future cancels the call.
    pub async fn call<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp, CallError>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        let payload = encode_vec(req).map_err(CallError::Encode)?;
        let bytes = self.exchange(Kind::Call, method.id(), &payload, timeout).await?;
        method.decode_response(&bytes).map_err(CallError::Decode)
    }

    /// [`call`](Self::call) on raw bytes.
    pub async fn call_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, CallError> {
        self.exchange(Kind::Call, method, payload, timeout).await
    }

    /// Sends a reliable notification and waits for the peer's acknowledgement: `Ok(())` when its
    /// handler accepted it, otherwise the status it (or the protocol) answered.
    pub async fn notify<T>(
        &self,
        method: &Notification<T>,
        value: &T,
        timeout: Option<Duration>,
    ) -> Result<(), CallError>
    where
        T: Serialize + DeserializeOwned,
    {
        let payload = encode_vec(value).map_err(CallError::Encode)?;
        self.exchange(Kind::Notify, method.id(), &payload, timeout).await.map(drop)
    }

    /// [`notify`](Self::notify) on raw bytes.
    pub async fn notify_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), CallError> {
        self.exchange(Kind::Notify, method, payload, timeout).await.map(drop)
    }

    /// Sends an unreliable notification (SIGNAL): queued once, never acknowledged, never
    /// retransmitted. It must fit in one frame.
    pub fn signal<T>(&self, method: &Notification<T>, value: &T) -> Result<(), CallError>
    where
        T: Serialize + DeserializeOwned,
    {
        let payload = encode_vec(value).map_err(CallError::Encode)?;
        self.signal_raw(method.id(), &payload)
    }

    /// [`signal`](Self::signal) on raw bytes.
    pub fn signal_raw(&self, method: MethodId, payload: &[u8]) -> Result<(), CallError> {
        let mut inner = self.shared.lock();
        inner.conn.signal(method, payload).map_err(CallError::api)?;
        inner.wake_driver();
        Ok(())
    }

    /// Opens a stream with its initial value. Returns the sender of `Up` items (dropping it or
    /// calling [`StreamSender::finish`] ends this direction) and the receiver of `Down` items,
    /// which ends with the responder's status. Dropping both resets the stream.
    pub async fn open_stream<Init, Up, Down>(
        &self,
        method: &Streaming<Init, Up, Down>,
        init: &Init,
    ) -> Result<(StreamSender<Up>, StreamReceiver<Down>), CallError>
    where
        Init: Serialize + DeserializeOwned,
        Up: Serialize + DeserializeOwned,
        Down: Serialize + DeserializeOwned,
    {
        let payload = encode_vec(init).map_err(CallError::Encode)?;
        let (tx, rx) = self.open_stream_raw(method.id(), &payload).await?;
        Ok((StreamSender::new(tx), StreamReceiver::new(rx)))
    }

    /// Opens a stream on which this side sends nothing but `init` (server streaming): the
    /// stream opens with this direction already finished. Returns the receiver of `Down` items.
    pub async fn subscribe<Init, Up, Down>(
        &self,
        method: &Streaming<Init, Up, Down>,
        init: &Init,
    ) -> Result<StreamReceiver<Down>, CallError>
    where
        Init: Serialize + DeserializeOwned,
        Up: Serialize + DeserializeOwned,
        Down: Serialize + DeserializeOwned,
    {
        let payload = encode_vec(init).map_err(CallError::Encode)?;
        let id = self.open(method.id(), &payload, true).await?;
        Ok(StreamReceiver::new(RawReceiver::new(self.clone(), id)))
    }

    /// [`open_stream`](Self::open_stream) on raw bytes.
    pub async fn open_stream_raw(
        &self,
        method: MethodId,
        init: &[u8],
    ) -> Result<(RawSender, RawReceiver), CallError> {
        let id = self.open(method, init, false).await?;
        Ok((RawSender::new(self.clone(), id), RawReceiver::new(self.clone(), id)))
    }

    /// Opens a stream once there is room for it.
    async fn open(&self, method: MethodId, init: &[u8], half_close: bool) -> Result<u64, CallError> {
        poll_fn(|cx| {
            let mut inner = self.shared.lock();
            match inner.conn.open_stream(now(), method, init, None, half_close) {
                Ok(id) => {
                    let mut entry = StreamEntry::new(false);
                    if half_close {
                        entry.sent_fin = true;
                        entry.tx_alive = false;
                    }
                    inner.streams.insert(id, entry);
                    inner.wake_driver();
                    Poll::Ready(Ok(id))
                }
                Err(e) if e.is_backpressure() => {
                    wait_on(&mut inner.capacity_waiters, cx);
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(CallError::api(e))),
            }
        })
        .await
    }

    async fn exchange(
        &self,
        kind: Kind,
        method: MethodId,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>, CallError> {
        let deadline = timeout.map(|d| now() + d);
        let open = poll_fn(|cx| {
            let mut inner = self.shared.lock();
            let r = match kind {
                Kind::Call => inner.conn.call(now(), method, payload, deadline),
                Kind::Notify => inner.conn.notify(now(), method, payload, deadline),
            };
            match r {
                Ok(id) => {
                    inner.calls.insert(id, CallSlot::default());
                    inner.wake_driver();
                    Poll::Ready(Ok(id))
                }
                // Wait for room: a call to finish, or the transmit queue to drain.
                Err(e) if e.is_backpressure() && e != ApiError::NoCredit => {
                    wait_on(&mut inner.capacity_waiters, cx);
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(CallError::api(e))),
            }
        });
        let id = match timeout {
            None => open.await?,
            Some(d) => {
                open.or(async {
                    Timer::after(d).await;
                    Err(CallError::Status(Status::DEADLINE_EXCEEDED))
                })
                .await?
            }
        };
        PendingCall { peer: self, id, done: false }.await
    }
}
