//! Blocking stream handles: a sender that waits for flow-control credit and a receiver that
//! returns credit as items are taken.

use crate::conn::Shared;
use crate::error::CallError;
use core::marker::PhantomData;
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;
use tandem_core::typed;
use tandem_core::{ApiError, Status};

/// An opener's handle was dropped: when it was the last, forget the stream, returning the
/// credit of items nobody will take, and cancel it if it had not ended.
///
/// (A handler's handles are not counted: the runtime ends its stream when the handler
/// returns.)
fn release(shared: &Shared, id: u64) {
    let mut g = shared.lock();
    let Some(s) = g.streams.get_mut(&id) else { return };
    s.handles = s.handles.saturating_sub(1);
    if s.handles > 0 {
        return;
    }
    let over = s.sent_end && (s.fin.is_some() || s.reset.is_some());
    if let Some(s) = g.streams.remove(&id) {
        for item in &s.items {
            let _ = g.conn.stream_consumed(id, 1, item.len() as u32);
        }
    }
    if !over {
        // Both handles dropped before the stream ended: cancel it.
        let _ = g.conn.stream_reset(id, Status::CANCELLED);
    }
    drop(g);
    shared.flush();
}

/// Sends raw items on a stream. See [`StreamSender`] for the typed version.
pub struct RawSender {
    shared: Arc<Shared>,
    id: u64,
    opener: bool,
    done: bool,
}

impl core::fmt::Debug for RawSender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawSender").field("id", &self.id).field("done", &self.done).finish()
    }
}

impl RawSender {
    pub(crate) fn new(shared: Arc<Shared>, id: u64, opener: bool) -> Self {
        RawSender { shared, id, opener, done: false }
    }

    /// The stream's exchange id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Sends one item, waiting while the peer has granted no credit for it (or the transmit
    /// queue is full). Fails with the stream's status if it was reset or the connection lost.
    pub fn send(&mut self, item: &[u8]) -> Result<(), CallError> {
        let shared = &*self.shared;
        let mut g = shared.lock();
        loop {
            match g.streams.get(&self.id) {
                None => return Err(CallError::Status(Status::CANCELLED)),
                Some(s) if s.reset.is_some() => {
                    return Err(CallError::Status(s.reset.unwrap_or(Status::CANCELLED)))
                }
                Some(_) => {}
            }
            match g.conn.stream_send(self.id, item) {
                Ok(()) => break,
                Err(ApiError::NoCredit) => g = shared.wait(g),
                Err(ApiError::TxFull) => g = shared.wait_tx(g),
                Err(ApiError::Closed | ApiError::UnknownId(_)) => {
                    return Err(CallError::Status(Status::UNAVAILABLE))
                }
                Err(e) => return Err(CallError::Refused(e)),
            }
        }
        drop(g);
        shared.flush();
        Ok(())
    }

    /// Ends this side's direction (FIN, status OK). The opener's sender does this when dropped;
    /// a handler's stream ends with the handler's result when it returns.
    pub fn finish(&mut self) -> Result<(), CallError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let mut g = self.shared.lock();
        if let Some(s) = g.streams.get_mut(&self.id) {
            s.sent_end = true;
        }
        let r = g.conn.stream_finish(self.id, Status::OK);
        drop(g);
        self.shared.flush();
        r.map_err(CallError::Refused)
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        if self.opener {
            if !self.done {
                let _ = self.finish();
            }
            release(&self.shared, self.id);
        }
    }
}

/// Receives raw items from a stream. See [`StreamReceiver`] for the typed version.
pub struct RawReceiver {
    shared: Arc<Shared>,
    id: u64,
    opener: bool,
}

impl core::fmt::Debug for RawReceiver {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawReceiver").field("id", &self.id).finish()
    }
}

impl RawReceiver {
    pub(crate) fn new(shared: Arc<Shared>, id: u64, opener: bool) -> Self {
        RawReceiver { shared, id, opener }
    }

    /// The stream's exchange id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The next item, waiting for one; `Ok(None)` when the peer finished its direction with
    /// OK. An error status ends the stream: the responder's failure, DEADLINE_EXCEEDED,
    /// CANCELLED, or UNAVAILABLE when the connection was lost.
    pub fn recv(&mut self) -> Result<Option<Vec<u8>>, CallError> {
        let shared = &*self.shared;
        let mut g = shared.lock();
        loop {
            let Some(s) = g.streams.get_mut(&self.id) else {
                return Err(CallError::Status(Status::CANCELLED));
            };
            if let Some(item) = s.items.pop_front() {
                let _ = g.conn.stream_consumed(self.id, 1, item.len() as u32);
                let credit = g.conn.pending_transmit() > 0;
                drop(g);
                if credit {
                    shared.flush();
                }
                return Ok(Some(item));
            }
            if let Some(st) = s.fin {
                return if st.is_ok() { Ok(None) } else { Err(CallError::Status(st)) };
            }
            if let Some(st) = s.reset {
                return Err(CallError::Status(st));
            }
            g = shared.wait(g);
        }
    }

    /// Like [`recv`](Self::recv), but puts the item into `out` (replacing its contents) and
    /// returns `Ok(true)`, or `Ok(false)` at the end. The buffer `out` held goes back to the
    /// connection to receive a later item, so reusing `out` saves an allocation per item.
    pub fn recv_into(&mut self, out: &mut Vec<u8>) -> Result<bool, CallError> {
        match self.recv()? {
            Some(mut item) => {
                core::mem::swap(out, &mut item);
                if item.capacity() > 0 {
                    self.shared.lock().give_back(item);
                }
                Ok(true)
            }
            None => {
                out.clear();
                Ok(false)
            }
        }
    }

    /// Cancels the whole stream (RESET with CANCELLED): the peer's handler sees
    /// [`Ctx::is_cancelled`](crate::Ctx::is_cancelled).
    pub fn cancel(self) {
        let mut g = self.shared.lock();
        if let Some(s) = g.streams.get_mut(&self.id) {
            s.reset.get_or_insert(Status::CANCELLED);
            s.sent_end = true;
        }
        let _ = g.conn.stream_reset(self.id, Status::CANCELLED);
        drop(g);
        self.shared.flush();
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        if let Some(s) = g.streams.get_mut(&self.id) {
            s.discard = true;
            let items = core::mem::take(&mut s.items);
            for item in items {
                let _ = g.conn.stream_consumed(self.id, 1, item.len() as u32);
            }
        }
        drop(g);
        if self.opener {
            release(&self.shared, self.id);
        }
    }
}

/// Sends typed items on a stream; dropping the opener's sender finishes its direction.
pub struct StreamSender<T> {
    raw: RawSender,
    buf: Vec<u8>,
    _t: PhantomData<fn(T)>,
}

impl<T> core::fmt::Debug for StreamSender<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.raw.fmt(f)
    }
}

impl<T: Serialize> StreamSender<T> {
    pub(crate) fn from_raw(raw: RawSender) -> Self {
        StreamSender { raw, buf: Vec::new(), _t: PhantomData }
    }

    /// The stream's exchange id.
    pub fn id(&self) -> u64 {
        self.raw.id
    }

    /// Sends one item, waiting for flow-control credit. See [`RawSender::send`].
    pub fn send(&mut self, item: &T) -> Result<(), CallError> {
        self.buf.clear();
        typed::encode_into_vec(item, &mut self.buf).map_err(CallError::Encode)?;
        self.raw.send(&self.buf)
    }

    /// Ends this side's direction. See [`RawSender::finish`].
    pub fn finish(&mut self) -> Result<(), CallError> {
        self.raw.finish()
    }
}

/// Receives typed items from a stream; also an iterator of `Result<T, CallError>`.
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
    pub(crate) fn from_raw(raw: RawReceiver) -> Self {
        StreamReceiver { raw, _t: PhantomData }
    }

    /// The stream's exchange id.
    pub fn id(&self) -> u64 {
        self.raw.id
    }

    /// The next item; `Ok(None)` at a clean end. See [`RawReceiver::recv`].
    pub fn recv(&mut self) -> Result<Option<T>, CallError> {
        match self.raw.recv()? {
            Some(bytes) => typed::decode(&bytes).map(Some).map_err(CallError::Decode),
            None => Ok(None),
        }
    }

    /// Cancels the whole stream. See [`RawReceiver::cancel`].
    pub fn cancel(self) {
        self.raw.cancel()
    }
}

impl<T: DeserializeOwned> Iterator for StreamReceiver<T> {
    type Item = Result<T, CallError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.recv().transpose()
    }
}

/// Opens a stream on `shared` and returns its two opener handles.
pub(crate) fn open(
    shared: &Arc<Shared>,
    method: tandem_core::MethodId,
    init: &[u8],
    timeout: Option<core::time::Duration>,
) -> Result<(RawSender, RawReceiver), CallError> {
    let id = crate::peer::start(
        shared,
        timeout,
        |conn, now, deadline| conn.open_stream(now, method, init, deadline, false),
        |g, id| {
            g.streams.insert(id, crate::conn::StreamSlot { handles: 2, ..Default::default() });
        },
    )?;
    Ok((RawSender::new(Arc::clone(shared), id, true), RawReceiver::new(Arc::clone(shared), id, true)))
}
