//! Stream handles: senders that wait for flow-control credit (also `futures_sink::Sink`s), and
//! receivers that are `futures_core::Stream`s returning credit as items are taken. Each keeps
//! its connection open. (Layer 2: imports `conn`, `error`.)

use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{ready, Context, Poll};
use std::sync::Arc;

use futures_core::Stream;
use futures_lite::future::poll_fn;
use futures_sink::Sink;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::typed::{decode, encode_vec, MethodLabel};
use tandem_core::{ApiError, Status};

use crate::conn::{wait_on, Handle};
use crate::error::{CallError, ErrorKind};

/// An item to send: lent (copied by the connection) or shared (sent from the caller's buffer).
#[derive(Clone, Copy)]
enum Item<'a> {
    Lent(&'a [u8]),
    Shared(&'a Arc<Vec<u8>>),
}

/// An item the sender owns: small ones are lent to the connection (copied into the transmit
/// queue, or the retained copy, with other frames), larger ones shared (sent from the buffer).
enum Owned {
    Lent(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

/// From this size an item the sender owns (`Sink::start_send`, a typed item once encoded) is
/// shared with the connection instead of copied: below it, the copy costs less than a buffer
/// and a write piece of its own.
const SHARE_FROM: usize = 4096;

impl Owned {
    fn new(item: Vec<u8>) -> Self {
        if item.len() >= SHARE_FROM {
            Owned::Shared(Arc::new(item))
        } else {
            Owned::Lent(item)
        }
    }

    fn item(&self) -> Item<'_> {
        match self {
            Owned::Lent(v) => Item::Lent(v),
            Owned::Shared(a) => Item::Shared(a),
        }
    }
}

/// Sends raw items on one stream.
pub struct RawSender {
    h: Handle,
    id: u64,
    label: MethodLabel,
    /// An item accepted by [`Sink::start_send`] (or a typed item encoded) and not yet taken
    /// by the connection; shared from [`SHARE_FROM`] bytes.
    pending: Option<Owned>,
}

impl core::fmt::Debug for RawSender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawSender").field("conn", &self.h.shared().id).field("id", &self.id).finish()
    }
}

impl RawSender {
    pub(crate) fn new(h: Handle, id: u64, label: MethodLabel) -> Self {
        RawSender { h, id, label, pending: None }
    }

    /// An error of this stream, naming its method and peer.
    fn err(&self, kind: ErrorKind) -> CallError {
        CallError::new(kind).with_context(self.label, self.h.shared().name())
    }

    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends one item, waiting while the peer has granted no credit for it. Fails with the
    /// stream's status once it was reset (CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE, …).
    pub async fn send(&mut self, item: &[u8]) -> Result<(), CallError> {
        poll_fn(|cx| {
            ready!(self.poll_pending(cx))?;
            self.poll_send(cx, Item::Lent(item))
        })
        .await
    }

    /// Sends one item the caller shares instead of lends, as [`send`](Self::send) does
    /// otherwise: on byte streams (TCP and Unix stream sockets, with or without TLS) the
    /// connection writes the item from `item` itself (TLS encrypts from it), and in a resumable
    /// session keeps that buffer (not a copy) as the item's retained copy until the peer
    /// confirms it — no copy of the payload in tandem. The same
    /// buffer can be sent again, on this stream or others (the same item to many peers). The
    /// connection holds a reference until the item is written and confirmed
    /// (`Arc::strong_count` falls back); the buffer cannot change meanwhile. Elsewhere
    /// (WebSocket, SEQPACKET and UDP, serial lines; items larger than one frame) it is copied,
    /// as by `send`.
    pub async fn send_shared(&mut self, item: &Arc<Vec<u8>>) -> Result<(), CallError> {
        poll_fn(|cx| {
            ready!(self.poll_pending(cx))?;
            self.poll_send(cx, Item::Shared(item))
        })
        .await
    }

    /// Hands the item kept by the `Sink` to the connection.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        let Some(item) = self.pending.take() else { return Poll::Ready(Ok(())) };
        let r = self.poll_send(cx, item.item());
        if r.is_pending() {
            self.pending = Some(item);
        }
        r
    }

    fn poll_send(&self, cx: &mut Context<'_>, item: Item<'_>) -> Poll<Result<(), CallError>> {
        let id = self.id;
        let mut inner = self.h.shared().lock();
        let Some(e) = inner.streams.get(&id) else {
            drop(inner);
            return Poll::Ready(Err(self.err(ErrorKind::Status(Status::CANCELLED))));
        };
        if let Some(st) = e.reset {
            drop(inner);
            return Poll::Ready(Err(self.err(ErrorKind::Status(st))));
        }
        if e.sent_fin {
            drop(inner);
            let e = ApiError::WrongState("stream already finished");
            return Poll::Ready(Err(self.err(ErrorKind::Refused(e))));
        }
        let sent = match item {
            Item::Lent(item) => inner.conn.stream_send(id, item),
            Item::Shared(item) => inner.conn.stream_send_shared(id, item),
        };
        match sent {
            Ok(()) => {
                inner.wake_driver();
                Poll::Ready(Ok(()))
            }
            Err(ApiError::NoCredit) => {
                if let Some(e) = inner.streams.get_mut(&id) {
                    // Woken by Event::StreamWritable once the peer grants credit.
                    e.tx_waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Err(ApiError::TxFull) => {
                wait_on(&mut inner.capacity_waiters, cx);
                inner.wake_driver();
                Poll::Pending
            }
            Err(e) => {
                drop(inner);
                Poll::Ready(Err(CallError::api(e).with_context(self.label, self.h.shared().name())))
            }
        }
    }

    /// Ends this direction of the stream with OK (also done when the opener's sender is
    /// dropped; a responder's direction ends with the handler's result when it returns).
    /// Finishing twice is a no-op; a stream already reset reports its status.
    pub fn finish(&mut self) -> Result<(), CallError> {
        let mut inner = self.h.shared().lock();
        let Some(e) = inner.streams.get_mut(&self.id) else {
            drop(inner);
            return Err(self.err(ErrorKind::Status(Status::UNAVAILABLE)));
        };
        if let Some(st) = e.reset {
            drop(inner);
            return Err(self.err(ErrorKind::Status(st)));
        }
        if !e.sent_fin {
            e.sent_fin = true;
            inner.finish_stream(self.id, Status::OK);
        }
        Ok(())
    }

    /// Ends the whole stream abruptly with `status` (STREAM_RESET): the peer's receiver reports
    /// it, its handler (if it opened toward us) is cancelled.
    pub fn reset(&mut self, status: Status) {
        let mut inner = self.h.shared().lock();
        let Some(e) = inner.streams.get_mut(&self.id) else { return };
        if e.reset.is_some() {
            return;
        }
        e.reset = Some(status);
        e.items.clear();
        e.wake();
        inner.reset_stream(self.id, status);
    }
}

impl Sink<Vec<u8>> for RawSender {
    type Error = CallError;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.get_mut().poll_pending(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), CallError> {
        let this = self.get_mut();
        if this.pending.is_some() {
            return Err(
                this.err(ErrorKind::Refused(ApiError::WrongState("Sink::start_send before poll_ready")))
            );
        }
        this.pending = Some(Owned::new(item));
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        self.get_mut().poll_pending(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Poll::Ready(this.finish())
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        let mut inner = self.h.shared().lock();
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
/// It ends when the other side finishes its direction with OK; a non-OK finish or a reset is
/// reported as one error first.
pub struct RawReceiver {
    h: Handle,
    id: u64,
    label: MethodLabel,
}

impl core::fmt::Debug for RawReceiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawReceiver").field("conn", &self.h.shared().id).field("id", &self.id).finish()
    }
}

impl RawReceiver {
    pub(crate) fn new(h: Handle, id: u64, label: MethodLabel) -> Self {
        RawReceiver { h, id, label }
    }

    /// An error of this stream, naming its method and peer.
    fn err(&self, kind: ErrorKind) -> CallError {
        CallError::new(kind).with_context(self.label, self.h.shared().name())
    }

    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next item; `Ok(None)` at the end of the stream (the sender finished with OK), an
    /// error once if it ended otherwise (`Ok(None)` after that).
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        poll_fn(|cx| self.poll_item(cx)).await.transpose()
    }

    /// [`recv`](Self::recv) into `out` (replacing its contents): `Ok(true)` with an item,
    /// `Ok(false)` at the end. The buffer `out` held goes back to the connection for a later
    /// item, so reusing `out` makes a steady flow of items allocation-free.
    pub async fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<bool, CallError> {
        match poll_fn(|cx| self.poll_item(cx)).await {
            Some(Ok(mut item)) => {
                core::mem::swap(out, &mut item);
                self.h.shared().lock().give_spare(item);
                Ok(true)
            }
            Some(Err(e)) => {
                out.clear();
                Err(e)
            }
            None => {
                out.clear();
                Ok(false)
            }
        }
    }

    /// Stops receiving: the stream is reset (CANCELLED) toward the peer, whose handler (if it
    /// serves this stream) is cancelled.
    pub fn cancel(self) {
        let mut inner = self.h.shared().lock();
        let Some(e) = inner.streams.get_mut(&self.id) else { return };
        if e.reset.is_none() && !(e.fin.is_some() && e.sent_fin) {
            e.reset = Some(Status::CANCELLED);
            e.wake();
            inner.reset_stream(self.id, Status::CANCELLED);
        }
    }

    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Vec<u8>, CallError>>> {
        let id = self.id;
        let mut inner = self.h.shared().lock();
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
        drop(inner);
        Poll::Ready(if end.is_ok() { None } else { Some(Err(self.err(ErrorKind::Status(end)))) })
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
        let mut inner = self.h.shared().lock();
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

/// Sends typed `T` items on a stream (see [`RawSender`]); also a `futures_sink::Sink<T>`.
pub struct StreamSender<T> {
    raw: RawSender,
    _t: PhantomData<fn(T)>,
}

impl<T> core::fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T: Serialize> StreamSender<T> {
    pub(crate) fn new(raw: RawSender) -> Self {
        StreamSender { raw, _t: PhantomData }
    }

    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.raw.id
    }

    /// Sends one item, waiting for flow-control credit.
    pub async fn send(&mut self, item: &T) -> Result<(), CallError> {
        let bytes = encode_vec(item).map_err(|e| self.raw.err(ErrorKind::Encode(e)))?;
        // The encoding is ours: a large one is handed over rather than copied.
        match Owned::new(bytes) {
            Owned::Shared(a) => self.raw.send_shared(&a).await,
            Owned::Lent(v) => self.raw.send(&v).await,
        }
    }

    /// Ends this direction of the stream (see [`RawSender::finish`]).
    pub fn finish(&mut self) -> Result<(), CallError> {
        self.raw.finish()
    }

    /// Resets the stream (see [`RawSender::reset`]).
    pub fn reset(&mut self, status: Status) {
        self.raw.reset(status)
    }
}

impl<T: Serialize> Sink<T> for StreamSender<T> {
    type Error = CallError;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Pin::new(&mut self.get_mut().raw).poll_ready(cx)
    }
    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), CallError> {
        let this = self.get_mut();
        let bytes = encode_vec(&item).map_err(|e| this.raw.err(ErrorKind::Encode(e)))?;
        Pin::new(&mut this.raw).start_send(bytes)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Pin::new(&mut self.get_mut().raw).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CallError>> {
        Pin::new(&mut self.get_mut().raw).poll_close(cx)
    }
}

/// Receives typed `T` items from a stream (see [`RawReceiver`]); a `futures_core::Stream`.
pub struct StreamReceiver<T> {
    raw: RawReceiver,
    _t: PhantomData<fn() -> T>,
}

impl<T> core::fmt::Debug for StreamReceiver<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T: DeserializeOwned> StreamReceiver<T> {
    pub(crate) fn new(raw: RawReceiver) -> Self {
        StreamReceiver { raw, _t: PhantomData }
    }

    /// The stream's id on this connection.
    pub fn id(&self) -> u64 {
        self.raw.id
    }

    /// The next item; `Ok(None)` at the end of the stream (see [`RawReceiver::recv`]).
    pub async fn recv(&mut self) -> Result<Option<T>, CallError> {
        poll_fn(|cx| self.poll_typed(cx)).await.transpose()
    }

    /// Stops receiving (see [`RawReceiver::cancel`]).
    pub fn cancel(self) {
        self.raw.cancel()
    }

    fn poll_typed(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, CallError>>> {
        let raw = &mut self.raw;
        raw.poll_item(cx)
            .map(|o| o.map(|r| r.and_then(|b| decode(&b).map_err(|e| raw.err(ErrorKind::Decode(e))))))
    }
}

impl<T: DeserializeOwned> Stream for StreamReceiver<T> {
    type Item = Result<T, CallError>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_typed(cx)
    }
}
