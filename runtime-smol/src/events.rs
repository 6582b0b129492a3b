//! Acting on the core's events: requests go to handler tasks, outcomes to the futures and
//! streams waiting for them.

use std::sync::Arc;

use tandem_core::{ConnectionError, Status};

use crate::peer::Peer;
use crate::router;
use crate::shared::{now, Inner, PeerInfo, Shared};

/// Events handled per call of [`drain`] before the driver moves on to transmitting.
const EVENTS: usize = 256;

/// Work done once the connection's lock is released.
pub(crate) enum Deferred {
    /// A newer connection from the same peer replaced this one: close it.
    CloseStale(Peer),
}

/// An event with its payload copied out of the connection.
use tandem_core::OwnedEvent as Owned;

/// Drains up to [`EVENTS`] events. Returns whether there were any.
pub(crate) fn drain(shared: &Arc<Shared>, inner: &mut Inner, deferred: &mut Vec<Deferred>) -> bool {
    let mut n = 0;
    while n < EVENTS {
        let Some(ev) = inner.conn.poll_event(now()).map(Owned::from) else { break };
        n += 1;
        handle(shared, inner, ev, deferred);
    }
    n > 0
}

fn complete(inner: &mut Inner, id: u64, result: Result<Vec<u8>, Status>) {
    if let Some(slot) = inner.calls.get_mut(&id) {
        slot.result = Some(result);
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }
}

fn handle(shared: &Arc<Shared>, inner: &mut Inner, ev: Owned, deferred: &mut Vec<Deferred>) {
    let conn = shared.id;
    match ev {
        Owned::Connected => {
            let name =
                inner.conn.peer().map(|p| String::from_utf8_lossy(p.name).into_owned()).unwrap_or_default();
            tracing::info!(conn, peer = %name, "connected");
            let _ = shared.info.set(PeerInfo { name });
            inner.connected = true;
            inner.wake_state();
            if let Some(old) = shared.server.as_ref().and_then(|s| s.on_connected(shared)) {
                deferred.push(Deferred::CloseStale(old));
            }
        }
        Owned::Request { id, kind, method, deadline, payload } => {
            router::dispatch(shared, inner, id, kind, method, deadline, payload);
        }
        // This runtime does not set `Config::authenticate` (yet): never raised.
        Owned::AuthRequested { .. } => {}
        Owned::Signal { method, payload } => router::dispatch_signal(shared, inner, method, payload),
        Owned::Response { id, status, payload } => {
            let r = if status == Status::OK { Ok(payload) } else { Err(status) };
            complete(inner, id, r);
        }
        Owned::Failed { id, status } => complete(inner, id, Err(status)),
        Owned::Cancelled { id, status } => {
            tracing::debug!(conn, id, %status, "inbound exchange cancelled");
            if let Some(t) = inner.inbound.get(&id) {
                t.cancel();
            } else {
                // No handler runs for it any more: release it.
                inner.respond(id, status, Vec::new());
            }
        }
        Owned::StreamData { id, payload } => match inner.streams.get_mut(&id) {
            Some(e) if e.rx_alive && e.reset.is_none() => {
                e.items.push_back(payload);
                if let Some(w) = e.rx_waker.take() {
                    w.wake();
                }
            }
            _ => {
                // Nobody will read it: give the credit back at once.
                let _ = inner.conn.stream_consumed(id, 1, payload.len() as u32);
            }
        },
        Owned::StreamFin { id, status } => {
            if let Some(e) = inner.streams.get_mut(&id) {
                e.fin = Some(status);
                e.wake();
            }
        }
        Owned::StreamReset { id, status } => {
            tracing::debug!(conn, id, %status, "stream reset");
            let inbound = match inner.streams.get_mut(&id) {
                Some(e) => {
                    e.reset = Some(status);
                    e.items.clear();
                    e.wake();
                    e.inbound
                }
                // The handler already returned: release the stream.
                None => id % 2 != own_parity(inner),
            };
            if inbound {
                match inner.inbound.get(&id) {
                    Some(t) => t.cancel(),
                    None => inner.reset_stream(id, Status::CANCELLED),
                }
            }
        }
        Owned::StreamWritable { id } => {
            if let Some(w) = inner.streams.get_mut(&id).and_then(|e| e.tx_waker.take()) {
                w.wake();
            }
        }
        // The driver looks the session up and resumes or declines it (it owns the socket).
        Owned::ResumeRequested { token } => {
            tracing::debug!(conn, "dialer asks to resume a session");
            inner.resume_token = Some(token);
        }
        Owned::GoAway { bound, status } => {
            tracing::info!(conn, bound, %status, "peer is going away");
            inner.wake_state();
        }
        Owned::Closed(e) => on_closed(inner, e),
    }
}

/// Parity of the ids this side opens (dialer even, acceptor odd).
fn own_parity(inner: &Inner) -> u64 {
    match inner.conn.role() {
        tandem_core::Role::Dialer => 0,
        tandem_core::Role::Acceptor => 1,
    }
}

/// The connection ended: resolve everything still waiting on it.
pub(crate) fn on_closed(inner: &mut Inner, e: ConnectionError) {
    if e.is_graceful() {
        tracing::info!(reason = %e, "connection closed");
    } else {
        tracing::warn!(reason = %e, "connection closed");
    }
    inner.closed = Some(e);
    for slot in inner.calls.values_mut() {
        if slot.result.is_none() {
            slot.result = Some(Err(Status::UNAVAILABLE));
        }
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }
    for s in inner.streams.values_mut() {
        if s.reset.is_none() && (s.fin.is_none() || !s.sent_fin) {
            s.reset = Some(Status::UNAVAILABLE);
        }
        s.wake();
    }
    for t in inner.inbound.values() {
        t.cancel();
    }
    inner.backlog.clear();
    inner.wake_state();
    inner.wake_capacity();
}
