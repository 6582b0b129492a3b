//! Serving the peer's requests: refusing what the runtime cannot serve, handing the rest to
//! the handler pool (or running an inline handler at once), and sending the answers.

use crate::cancel::Cancel;
use crate::conn::{Inner, Shared, StreamSlot, SPARE_CAPACITY};
use crate::handlers::Handler;
use std::sync::Arc;
use tandem_core::{ApiError, Instant, MethodId, RequestKind, Status};

impl Shared {
    /// Answers a request the runtime itself refuses (unknown method, …). Events are handled
    /// without blocking, so when the transmit queue is full the answer waits in
    /// `Inner::refusals` for the driver's next turn.
    pub(crate) fn refuse(&self, g: &mut Inner, id: u64, kind: RequestKind, status: Status) {
        tracing::debug!(conn = self.id, id, %status, "request refused");
        let r = match kind {
            RequestKind::Stream { .. } => g.conn.stream_reset(id, status),
            _ => g.conn.respond(id, status, &[]),
        };
        match r {
            Err(ApiError::TxFull) => g.refusals.push((id, kind, status)),
            Err(e) => tracing::debug!(conn = self.id, id, "cannot refuse request: {e}"),
            Ok(()) => {}
        }
    }

    /// Retries refusals that found the transmit queue full (driver only).
    pub(crate) fn retry_refusals(&self, g: &mut Inner) {
        for (id, kind, status) in core::mem::take(&mut g.refusals) {
            self.refuse(g, id, kind, status);
        }
    }

    pub(crate) fn on_request(
        &self,
        g: &mut Inner,
        id: u64,
        kind: RequestKind,
        method: MethodId,
        deadline: Option<Instant>,
        payload: Vec<u8>,
    ) {
        tracing::trace!(conn = self.id, id, ?method, ?kind, "request");
        let fits = match self.handlers.lookup(method) {
            Err(status) => return self.refuse(g, id, kind, status),
            Ok(h) => matches!(
                (h, kind),
                (Handler::Unary(_) | Handler::Inline(_), RequestKind::Call)
                    | (Handler::Notify(_), RequestKind::Notify)
                    | (Handler::Stream(_), RequestKind::Stream { .. })
            ),
        };
        if !fits {
            return self.refuse(g, id, kind, Status::UNIMPLEMENTED);
        }
        let Some(me) = self.arc() else { return };
        let cancel = Arc::new(Cancel::default());
        if let RequestKind::Stream { half_closed } = kind {
            let slot = StreamSlot {
                fin: half_closed.then_some(Status::OK),
                cancel: Some(Arc::clone(&cancel)),
                handles: 1,
                ..StreamSlot::default()
            };
            g.streams.insert(id, slot);
        } else {
            g.inbound.insert(id, Arc::clone(&cancel));
        }
        let job = Box::new(move || crate::handlers::run(&me, id, method, deadline, payload, cancel));
        if !self.lane.submit(job) {
            g.streams.remove(&id);
            g.inbound.remove(&id);
            self.refuse(g, id, kind, Status::UNAVAILABLE);
        }
    }

    /// Runs an inline unary handler on the request in `g.inline_req` and queues its response.
    pub(crate) fn on_inline(&self, g: &mut Inner, id: u64, method: MethodId, deadline: Option<Instant>) {
        let Ok(Handler::Inline(f)) = self.handlers.lookup(method) else { return };
        tracing::trace!(conn = self.id, id, ?method, "inline request");
        let req = core::mem::take(&mut g.inline_req);
        let mut out = core::mem::take(&mut g.inline_resp);
        let r = crate::handlers::run_inline(self, f, method, deadline, &req, &mut out);
        let (status, body): (Status, &[u8]) = match &r {
            Ok(()) => (Status::OK, &out),
            Err(status) => (*status, &[]),
        };
        match g.conn.respond(id, status, body) {
            Err(ApiError::TxFull) => {
                // No room now: a worker waits for it (the only allocating path).
                let body = body.to_vec();
                let me = self.arc();
                let queued =
                    me.is_some_and(|me| self.lane.submit(Box::new(move || me.respond(id, status, &body))));
                if !queued {
                    g.refusals.push((id, RequestKind::Call, Status::UNAVAILABLE));
                }
            }
            Err(ApiError::TooLarge { size, limit }) => {
                tracing::warn!(conn = self.id, id, size, limit, "response too large");
                let _ = g.conn.respond(id, Status::TOO_LARGE, &[]);
            }
            Err(e) => tracing::debug!(conn = self.id, id, "response not sent: {e}"),
            Ok(()) => {}
        }
        if req.capacity() <= SPARE_CAPACITY {
            g.inline_req = req;
        }
        if out.capacity() <= SPARE_CAPACITY {
            g.inline_resp = out;
        }
    }

    pub(crate) fn on_signal(&self, method: MethodId, payload: Vec<u8>) {
        if !matches!(self.handlers.lookup(method), Ok(Handler::Notify(_))) {
            tracing::debug!(conn = self.id, ?method, "signal for an unknown method dropped");
            return;
        }
        let Some(me) = self.arc() else { return };
        let job = Box::new(move || crate::handlers::run_signal(&me, method, payload));
        if !self.lane.submit_signal(job) {
            tracing::debug!(conn = self.id, ?method, "signal dropped: too many queued on this connection");
        }
    }

    // ------------------------------------------------------------------ answering

    /// A handler finished a call or notification: respond (the core substitutes the
    /// cancellation status if the call was cancelled meanwhile).
    pub(crate) fn respond(&self, id: u64, status: Status, body: &[u8]) {
        let mut g = self.lock();
        g.inbound.remove(&id);
        loop {
            match g.conn.respond(id, status, body) {
                Err(ApiError::TxFull) if g.closed.is_none() => g = self.wait_tx(g),
                Err(ApiError::TooLarge { size, limit }) => {
                    tracing::warn!(conn = self.id, id, size, limit, "response too large");
                    let _ = g.conn.respond(id, Status::TOO_LARGE, &[]);
                    break;
                }
                Err(e) => {
                    tracing::debug!(conn = self.id, id, "response not sent: {e}");
                    break;
                }
                Ok(()) => break,
            }
        }
        drop(g);
        self.flush();
    }

    /// A stream handler returned: end our direction with its result and release the stream.
    pub(crate) fn end_stream(&self, id: u64, result: Status) {
        let mut g = self.lock();
        if let Some(slot) = g.streams.remove(&id) {
            for item in &slot.items {
                let _ = g.conn.stream_consumed(id, 1, item.len() as u32);
            }
            let r = if slot.reset.is_some() {
                g.conn.stream_reset(id, Status::CANCELLED)
            } else if !slot.sent_end {
                g.conn.stream_finish(id, result)
            } else {
                Ok(())
            };
            if let Err(e) = r {
                tracing::debug!(conn = self.id, id, "stream end not sent: {e}");
            }
        }
        self.pump_now(&mut g);
        drop(g);
        self.flush();
    }
}
