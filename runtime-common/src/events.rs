//! Acting on the core's events: requests go to handler jobs, outcomes to the futures and
//! streams waiting for them, lifecycle events to the session. (Layer 6: imports `handlers`,
//! `session`, `hub`, `conn`, `clock`, `observe`.)

use std::sync::Arc;

use tandem_core::{Event, Features, OwnedEvent as Owned, RequestKind, Role, Status};

use crate::clock::now;
use crate::conn::{Inner, Shared};
use crate::handlers::{HandlerFns, Registry, Request, Started};
use crate::hub::Actions;
use crate::observe::{self, Finished, PeerEvent, Side};
use crate::session::Session;

/// Events handled per call of [`Turn::drain`] before the driver moves on to transmitting.
const EVENTS: usize = 256;

/// What a driver's turn works with, and what it leaves to do once the lock is released.
pub(crate) struct Turn<'a, F: HandlerFns> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) handlers: &'a Registry<F>,
    pub(crate) session: &'a mut Session,
    /// Handler jobs for the runtime to start.
    pub(crate) started: &'a mut Vec<Started<F>>,
    /// Endpoint actions for other connections.
    pub(crate) actions: &'a mut Actions,
    /// Acceptor: the dialer asked to resume this session token.
    pub(crate) resume_token: Option<Vec<u8>>,
}

impl<F: HandlerFns> Turn<'_, F> {
    /// Drains up to [`EVENTS`] events. Returns whether there were any.
    ///
    /// Responses and stream items are copied into spare buffers (`Inner::spare`),
    /// and calls to inline handlers run on the borrowed request: the steady-state fast path
    /// allocates nothing.
    ///
    /// The clock is read once per drain (the core's `now` and the observer's durations): the
    /// events themselves take microseconds. Inline handlers are application code but must be
    /// quick (they hold the I/O thread); the clock is read again after one only when its
    /// duration is observed (see [`Registry::run_inline`]).
    pub(crate) fn drain(&mut self, inner: &mut Inner) -> bool {
        let mut n = 0;
        let mut t = now();
        while n < EVENTS {
            let Some(ev) = inner.conn.poll_event(t) else { break };
            n += 1;
            let ev = match ev {
                Event::Response { id, status: Status::OK, payload } => {
                    let mut b = inner.spare.take();
                    b.extend_from_slice(payload);
                    complete(self.shared, inner, id, Ok(b), t);
                    continue;
                }
                Event::StreamData { id, payload } => {
                    let mut b = inner.spare.take();
                    b.extend_from_slice(payload);
                    inner.stream_item(id, b);
                    continue;
                }
                Event::Request { id, kind: RequestKind::Call, method, deadline, payload } => {
                    match self.handlers.inline_handler(method) {
                        Some(f) => {
                            inner.inline_req.clear();
                            inner.inline_req.extend_from_slice(payload);
                            t = Registry::<F>::run_inline(&*f, self.shared, inner, id, method, deadline, t);
                            continue;
                        }
                        None => Owned::Request {
                            id,
                            kind: RequestKind::Call,
                            method,
                            deadline,
                            payload: payload.to_vec(),
                        },
                    }
                }
                ev => Owned::from(ev),
            };
            self.handle(inner, ev, t);
        }
        n > 0
    }

    /// Acts on one event; `t`: the drain's reading of the clock.
    fn handle(&mut self, inner: &mut Inner, ev: Owned, t: tandem_core::Instant) {
        let conn = self.shared.id;
        match ev {
            Owned::Connected => {
                let name = inner.conn.peer().map(|p| p.name.to_vec()).unwrap_or_default();
                let text = String::from_utf8_lossy(&name).into_owned();
                tracing::info!(conn, peer = %text, "connected");
                let _ = self.shared.name.set(text);
                let first = !inner.connected;
                inner.connected = true;
                self.session.connected(inner, first, &name, self.shared.identity.get(), self.actions);
                inner.wake_state();
                if let Some(o) = self.shared.observer() {
                    o.connected(&peer_event(self.shared, inner, !first));
                }
            }
            // The server's authenticator decides before the HELLO is answered (SPEC.md §5.6).
            Owned::AuthRequested { .. } => {
                if self.session.authenticate(self.shared, inner, false).is_ok() {
                    if let Err(e) = inner.conn.accept_peer(now()) {
                        tracing::debug!(conn, error = %e, "accept_peer refused");
                    }
                }
            }
            Owned::Request { id, kind, method, deadline, payload } => {
                let key = inner.conn.request_key();
                let req = Request { id, kind, method, deadline, key, payload };
                self.handlers.dispatch(self.shared, inner, req, self.started);
            }
            Owned::Signal { method, payload } => {
                let key = inner.conn.request_key();
                self.handlers.dispatch_signal(self.shared, inner, method, key, payload, self.started)
            }
            Owned::Response { id, status, payload } => {
                let r = if status == Status::OK {
                    Ok(payload)
                } else if inner.conn.features().contains(Features::ERROR_DETAILS) {
                    Err((status, payload))
                } else {
                    Err((status, Vec::new()))
                };
                complete(self.shared, inner, id, r, t);
            }
            Owned::Failed { id, status } => complete(self.shared, inner, id, Err((status, Vec::new())), t),
            Owned::Cancelled { id, status } => {
                tracing::debug!(conn, id, %status, "inbound exchange cancelled");
                match inner.inbound.get(&id) {
                    Some(t) => t.cancel(status),
                    // No handler runs for it any more: release it.
                    None => inner.respond(id, status, Vec::new()),
                }
            }
            Owned::StreamData { id, payload } => inner.stream_item(id, payload),
            Owned::StreamFin { id, status } => {
                if let Some(e) = inner.streams.get_mut(&id) {
                    e.fin = Some(status);
                    e.wake_later(&mut inner.wakes);
                }
            }
            Owned::StreamReset { id, status } => {
                tracing::debug!(conn, id, %status, "stream reset");
                let inbound = match inner.streams.get_mut(&id) {
                    Some(e) => {
                        e.reset = Some(status);
                        e.items.clear();
                        e.wake_later(&mut inner.wakes);
                        e.inbound
                    }
                    // The handler already returned: release the stream.
                    None => id % 2 != own_parity(inner),
                };
                if inbound {
                    match inner.inbound.get(&id) {
                        Some(t) => t.cancel(status),
                        None => inner.reset_stream(id, Status::CANCELLED),
                    }
                }
            }
            Owned::StreamWritable { id } => {
                if let Some(w) = inner.streams.get_mut(&id).and_then(|e| e.tx_waker.take()) {
                    inner.wakes.push(w);
                }
            }
            // The driver asks the endpoint and resumes or declines (it owns the socket).
            Owned::ResumeRequested { token } => {
                tracing::debug!(conn, "dialer asks to resume a session");
                self.resume_token = Some(token);
            }
            Owned::GoAway { bound, status } => {
                tracing::info!(conn, bound, %status, "peer is going away");
                inner.wake_state();
            }
            Owned::Closed(e) => {
                if let Some(o) = self.shared.observer() {
                    o.disconnected(&peer_event(self.shared, inner, false), &e);
                }
                inner.on_closed(e);
                self.session.closed();
            }
        }
    }
}

/// Hands an outbound call its outcome (`t`: the clock's reading, for the observer).
fn complete(
    shared: &Shared,
    inner: &mut Inner,
    id: u64,
    result: crate::conn::CallResult,
    t: tandem_core::Instant,
) {
    if let Some(slot) = inner.calls.get_mut(&id) {
        let status = match &result {
            Ok(_) => Status::OK,
            Err((s, _)) => *s,
        };
        let o = slot.opened;
        observe::finished(
            shared.observer(),
            &Finished {
                conn: shared.id,
                peer: shared.name(),
                id,
                method: o.method,
                side: Side::Called,
                kind: o.kind,
                status,
                duration: t.saturating_duration_since(o.at),
            },
        );
        slot.result = Some(result);
        inner.wakes.extend(slot.waker.take());
    }
}

/// The peer as the observer sees it.
fn peer_event<'a>(shared: &'a Shared, inner: &Inner, resumed: bool) -> PeerEvent<'a> {
    PeerEvent {
        conn: shared.id,
        name: shared.name(),
        identity: shared.identity(),
        remote: inner.remote,
        resumed,
    }
}

/// Parity of the ids this side opens (dialer even, acceptor odd).
fn own_parity(inner: &Inner) -> u64 {
    match inner.conn.role() {
        Role::Dialer => 0,
        Role::Acceptor => 1,
    }
}
