//! Stream handles: a sender that waits for flow-control credit, and a receiver that is a
//! `futures_core::Stream` returning credit as items are taken.

use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;
use futures_lite::future::poll_fn;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::typed::{decode, encode_vec};
use tandem_core::{ApiError, Status};

use crate::error::CallError;
use crate::peer::Peer;
use crate::shared::wait_on;

/// Sends raw items on one stream.
#[derive(Debug)]
pub struct RawSender {
    peer: Peer,
    id: u64,
}

impl RawSender {
    pub(crate) fn new(peer: Peer, id: u64) -> Self {
        RawSender { peer, id }
    }

    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends one item, waiting while the peer has granted no credit for it. Fails with the
    /// stream's status once it was reset (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE, …).
    pub async fn send(&mut self, item: &[u8]) -> Result<(), CallError> {
        let id = self.id;
        poll_fn(|cx| {
            let mut inner = self.peer.shared.lock();
            let Some(e) = inner.streams.get(&id) else {
                return Poll::Ready(Err(CallError::Status(Status::CANCELLED)));
            };
            if let Some(st) = e.reset {
                return Poll::Ready(Err(CallError::Status(st)));
            }
            if e.sent_fin {
                return Poll::Ready(Err(CallError::Rejected(ApiError::WrongState(
                    "stream already finished",
                ))));
            }
            match inner.conn.stream_send(id, item) {
                Ok(()) => {
                    inner.wake_driver();
                    Poll::Ready(Ok(()))
                }
                Err(ApiError::NoCredit) => {
                    if let Some(e) = inner.streams.get_mut(&id) {
                        e.tx_waker = Some(cx.waker().clone());
                    }
                    // Woken by Event::StreamWritable once the peer grants credit.
                    Poll::Pending
                }
                Err(ApiError::TxFull) => {
                    wait_on(&mut inner.capacity_waiters, cx);
                    inner.wake_driver();
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(CallError::api(e))),
            }
        })
        .await
    }

    /// Ends this direction of the stream (with OK). Also done when the sender is dropped by
    /// the opener; for a responder, the handler's return ends it with the returned status.
    pub fn finish(&mut self) {
        let mut inner = self.peer.shared.lock();
        let Some(e) = inner.streams.get_mut(&self.id) else { return };
        if e.sent_fin || e.reset.is_some() {
            return;
        }
        e.sent_fin = true;
        inner.finish_stream(self.id, Status::OK);
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        let mut inner = self.peer.shared.lock();
        let Some(e) = inner.streams.get_mut(&self.id) else { return };
        e.tx_alive = false;
        let (inbound, rx_alive, sent_fin, reset, fin) = (e.inbound, e.rx_alive, e.sent_fin, e.reset, e.fin);
        if inbound {
            return;
        }
        if !rx_alive {
            inner.streams.remove(&self.id);
        }
        if sent_fin || reset.is_some() {
            return;
        }
        if rx_alive || fin.is_some() {
            inner.finish_stream(self.id, Status::OK);
            if let Some(e) = inner.streams.get_mut(&self.id) {
                e.sent_fin = true;
            }
        } else {
            // Neither half is wanted any more.
            inner.reset_stream(self.id, Status::CANCELLED);
        }
    }
}

/// Receives raw items from one stream; a `futures_core::Stream` of `Result<Vec<u8>, CallError>`.
///
/// It ends (`None`) when the other side finishes its direction with OK; a non-OK finish or a
/// reset is reported as one `Err` item first.
#[derive(Debug)]
pub struct RawReceiver {
    peer: Peer,
    id: u64,
}

impl RawReceiver {
    pub(crate) fn new(peer: Peer, id: u64) -> Self {
        RawReceiver { peer, id }
    }

    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next item; `None` at the end of the stream.
    pub async fn recv(&mut self) -> Option<Result<Vec<u8>, CallError>> {
        poll_fn(|cx| self.poll_item(cx)).await
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>, CallError>>> {
        let id = self.id;
        let mut inner = self.peer.shared.lock();
        let Some(e) = inner.streams.get_mut(&id) else { return Poll::Ready(None) };
        if let Some(item) = e.items.pop_front() {
            let _ = inner.conn.stream_consumed(id, 1, item.len() as u32);
            inner.wake_driver();
            return Poll::Ready(Some(Ok(item)));
        }
        if e.rx_done {
            return Poll::Ready(None);
        }
        let end = match (e.fin, e.reset) {
            (Some(st), _) | (None, Some(st)) => st,
            (None, None) => {
                e.rx_waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
        };
        e.rx_done = true;
        Poll::Ready(if end.is_ok() { None } else { Some(Err(CallError::Status(end))) })
    }
}

impl Stream for RawReceiver {
    type Item = Result<Vec<u8>, CallError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_item(cx)
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        let mut inner = self.peer.shared.lock();
        inner.discard_items(self.id);
        let Some(e) = inner.streams.get_mut(&self.id) else { return };
        e.rx_alive = false;
        let (inbound, tx_alive, sent_fin, reset, fin) = (e.inbound, e.tx_alive, e.sent_fin, e.reset, e.fin);
        if inbound || tx_alive {
            return;
        }
        inner.streams.remove(&self.id);
        if reset.is_none() && !(sent_fin && fin.is_some()) {
            // Neither half is wanted any more.
            inner.reset_stream(self.id, Status::CANCELLED);
        }
    }
}

/// Sends typed `T` items on a stream (see [`RawSender`]).
#[derive(Debug)]
pub struct StreamSender<T> {
    raw: RawSender,
    _t: PhantomData<fn(T)>,
}

impl<T: Serialize + DeserializeOwned> StreamSender<T> {
    pub(crate) fn new(raw: RawSender) -> Self {
        StreamSender { raw, _t: PhantomData }
    }

    /// Sends one item, waiting for flow-control credit.
    pub async fn send(&mut self, item: &T) -> Result<(), CallError> {
        let bytes = encode_vec(item).map_err(CallError::Encode)?;
        self.raw.send(&bytes).await
    }

    /// Ends this direction of the stream.
    pub fn finish(&mut self) {
        self.raw.finish()
    }

    /// The untyped sender.
    pub fn into_raw(self) -> RawSender {
        self.raw
    }
}

/// Receives typed `T` items from a stream (see [`RawReceiver`]); a `futures_core::Stream`.
#[derive(Debug)]
pub struct StreamReceiver<T> {
    raw: RawReceiver,
    _t: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> StreamReceiver<T> {
    pub(crate) fn new(raw: RawReceiver) -> Self {
        StreamReceiver { raw, _t: PhantomData }
    }

    /// The next item; `None` at the end of the stream.
    pub async fn recv(&mut self) -> Option<Result<T, CallError>> {
        poll_fn(|cx| self.poll_typed(cx)).await
    }

    fn poll_typed(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, CallError>>> {
        self.raw.poll_item(cx).map(|o| o.map(|r| r.and_then(|b| decode(&b).map_err(CallError::Decode))))
    }

    /// The untyped receiver.
    pub fn into_raw(self) -> RawReceiver {
        self.raw
    }
}

impl<T: DeserializeOwned> Stream for StreamReceiver<T> {
    type Item = Result<T, CallError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_typed(cx)
    }
}
