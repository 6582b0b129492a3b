//! Actions (they queue frames and never block; back-pressure comes back as a result code) and
//! getters.
//!
//! Every payload argument is a pointer and a length: NULL is allowed when the length is 0. It
//! is read during the call only. It may be the payload of the last event (see `tandem_event`),
//! and must not otherwise point into the connection's memory.

use tandem_core::{MethodId, State, Status};

use crate::conn::{bytes, with_conn, TandemConn};
use crate::types::*;

fn now(ms: u64) -> tandem_core::Instant {
    tandem_core::Instant::from_millis(ms)
}

/// `Some(now + timeout)`, or `None` (no deadline) for 0.
fn deadline(now_ms: u64, timeout_ms: u64) -> Option<tandem_core::Instant> {
    (timeout_ms != 0).then(|| now(now_ms.saturating_add(timeout_ms)))
}

fn result(r: Result<(), tandem_core::ApiError>) -> TandemResult {
    r.map_or_else(TandemResult::from, |()| TandemResult::Ok)
}

/// Runs `f` on the connection and the payload `data`/`len`.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `data` must point to `len`
/// readable bytes that are not written during the call (or be NULL with `len` 0).
unsafe fn with_payload(
    conn: *mut TandemConn,
    data: *const u8,
    len: usize,
    f: impl FnOnce(&mut TandemConn, &[u8]) -> TandemResult,
) -> TandemResult {
    let g = |h: &mut TandemConn| {
        if !h.readable_by_action(data, len) {
            return TandemResult::InvalidArgument;
        }
        // SAFETY: the contract: `len` readable bytes not written during the call. They are
        // outside the connection's memory, or (checked just above) inside its receive or
        // reassembly buffer (an event's payload), which no action writes (see `tandem_event`)
        // and which the connection reaches only through its own slices, never through `h`.
        match unsafe { bytes(data, len) } {
            Ok(p) => f(h, p),
            Err(e) => e,
        }
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, g) }
}

/// Opens an exchange with `open` and writes its id to `*id`.
///
/// # Safety
///
/// As `with_payload`; `id` must point to a writable `uint64_t`.
unsafe fn open_with(
    conn: *mut TandemConn,
    data: *const u8,
    len: usize,
    id: *mut u64,
    open: impl FnOnce(&mut TandemConn, &[u8]) -> Result<u64, tandem_core::ApiError>,
) -> TandemResult {
    if id.is_null() {
        return TandemResult::NullPointer;
    }
    let f = |h: &mut TandemConn, p: &[u8]| match open(h, p) {
        Ok(n) => {
            // SAFETY: non-NULL, writable by the contract.
            unsafe { id.write(n) };
            TandemResult::Ok
        }
        Err(e) => e.into(),
    };
    // SAFETY: forwarded contract.
    unsafe { with_payload(conn, data, len, f) }
}

/// Sends a unary call to `module`/`method` and writes its id to `*id`. The outcome arrives as
/// `TANDEM_EVENT_KIND_RESPONSE` or `TANDEM_EVENT_KIND_FAILED` with that id. `timeout_ms` 0
/// means no deadline; otherwise the call fails with DEADLINE_EXCEEDED after that long (and
/// the peer is told to stop).
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `payload` must point to
/// `len` readable bytes (or be NULL with `len` 0); `id` must point to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_call(
    conn: *mut TandemConn,
    now_ms: u64,
    module: u32,
    method: u32,
    payload: *const u8,
    len: usize,
    timeout_ms: u64,
    id: *mut u64,
) -> TandemResult {
    let m = MethodId::new(module, method);
    let f = |h: &mut TandemConn, p: &[u8]| h.conn.call(now(now_ms), m, p, deadline(now_ms, timeout_ms));
    // SAFETY: forwarded contract.
    unsafe { open_with(conn, payload, len, id, f) }
}

/// Sends a reliable notification and writes its id to `*id`: the peer acknowledges it with a
/// status (`TANDEM_EVENT_KIND_RESPONSE`, empty payload), or it fails like a call.
///
/// # Safety
///
/// As `tandem_conn_call`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_notify(
    conn: *mut TandemConn,
    now_ms: u64,
    module: u32,
    method: u32,
    payload: *const u8,
    len: usize,
    timeout_ms: u64,
    id: *mut u64,
) -> TandemResult {
    let m = MethodId::new(module, method);
    let f = |h: &mut TandemConn, p: &[u8]| h.conn.notify(now(now_ms), m, p, deadline(now_ms, timeout_ms));
    // SAFETY: forwarded contract.
    unsafe { open_with(conn, payload, len, id, f) }
}

/// Sends an unreliable notification (SIGNAL): never acknowledged; it must fit one frame.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `payload` must point to
/// `len` readable bytes (or be NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_signal(
    conn: *mut TandemConn,
    module: u32,
    method: u32,
    payload: *const u8,
    len: usize,
) -> TandemResult {
    let m = MethodId::new(module, method);
    // SAFETY: forwarded contract.
    unsafe { with_payload(conn, payload, len, |h, p| result(h.conn.signal(m, p))) }
}

/// Answers the peer's call or notification `id` with `status` (`TANDEM_STATUS_*`) and, for a
/// call, `payload` (a notification's answer carries none: its payload is ignored). Exactly once
/// per request, also after `TANDEM_EVENT_KIND_CANCELLED` (then the payload is dropped).
///
/// With the feature `TANDEM_FEATURE_ERROR_DETAILS` negotiated, the payload of a non-OK answer is
/// a status body (SPEC.md §8.7): empty, or a varint message length, the message, the details.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `payload` must point to
/// `len` readable bytes (or be NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_respond(
    conn: *mut TandemConn,
    id: u64,
    status: u32,
    payload: *const u8,
    len: usize,
) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { with_payload(conn, payload, len, |h, p| result(h.conn.respond(id, Status(status), p))) }
}

/// Gives up our call, notification or stream `id`: it is settled now (no event follows for it)
/// and the peer is told to stop.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_cancel(conn: *mut TandemConn, id: u64) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, |h| result(h.conn.cancel(id))) }
}

/// Opens a stream to `module`/`method` with an initial payload and writes its id to `*id`.
/// With `half_close` non-zero this side sends nothing more (a server-streaming call). Needs
/// `max_outbound_streams` > 0.
///
/// # Safety
///
/// As `tandem_conn_call`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_open_stream(
    conn: *mut TandemConn,
    now_ms: u64,
    module: u32,
    method: u32,
    payload: *const u8,
    len: usize,
    timeout_ms: u64,
    half_close: u8,
    id: *mut u64,
) -> TandemResult {
    let m = MethodId::new(module, method);
    let dl = deadline(now_ms, timeout_ms);
    let f = |h: &mut TandemConn, p: &[u8]| h.conn.open_stream(now(now_ms), m, p, dl, half_close != 0);
    // SAFETY: forwarded contract.
    unsafe { open_with(conn, payload, len, id, f) }
}

/// Sends one item on stream `id`. `TANDEM_RESULT_NO_CREDIT`: wait for
/// `TANDEM_EVENT_KIND_STREAM_WRITABLE`.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `item` must point to `len`
/// readable bytes (or be NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_stream_send(
    conn: *mut TandemConn,
    id: u64,
    item: *const u8,
    len: usize,
) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { with_payload(conn, item, len, |h, p| result(h.conn.stream_send(id, p))) }
}

/// Ends our direction of stream `id` with `status` (for the responder, the stream's result).
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_stream_finish(
    conn: *mut TandemConn,
    id: u64,
    status: u32,
) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, |h| result(h.conn.stream_finish(id, Status(status)))) }
}

/// Ends stream `id` abruptly in both directions with `status` (also how a responder refuses a
/// stream it does not serve, or releases one after `TANDEM_EVENT_KIND_STREAM_RESET`).
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_stream_reset(
    conn: *mut TandemConn,
    id: u64,
    status: u32,
) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, |h| result(h.conn.stream_reset(id, Status(status)))) }
}

/// Returns flow-control credit for `items` items and `bytes` bytes of stream `id` that the
/// application has taken (after `TANDEM_EVENT_KIND_STREAM_DATA`).
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_stream_consumed(
    conn: *mut TandemConn,
    id: u64,
    items: u32,
    bytes: u32,
) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, |h| result(h.conn.stream_consumed(id, items, bytes))) }
}

/// Starts a graceful shutdown: GOAWAY with `status` and a reason `message` (at most 1024
/// bytes); exchanges in flight finish (within `drain_timeout_ms`), no new ones open.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `message` must point to
/// `len` readable bytes (or be NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_go_away(
    conn: *mut TandemConn,
    now_ms: u64,
    status: u32,
    message: *const u8,
    len: usize,
) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { with_payload(conn, message, len, |h, m| result(h.conn.go_away(now(now_ms), Status(status), m))) }
}

/// Closes the connection now: queues CLOSE with `status` and a reason `message` (truncated to
/// 1024 bytes); every open exchange fails. Then `TANDEM_EVENT_KIND_CLOSED` is polled, and the
/// CLOSE frame is sent by `tandem_conn_poll_transmit`. Closing a closed connection does
/// nothing. Free it with `tandem_conn_free` once `tandem_conn_is_finished`.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `message` must point to
/// `len` readable bytes (or be NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_close(
    conn: *mut TandemConn,
    now_ms: u64,
    status: u32,
    message: *const u8,
    len: usize,
) -> TandemResult {
    let f = |h: &mut TandemConn, m: &[u8]| {
        h.conn.close(now(now_ms), Status(status), m);
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_payload(conn, message, len, f) }
}

// ---------------------------------------------------------------------------------- getters

/// Writes the connection's state to `*state`.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `state` must point to a
/// writable `tandem_state`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_state(conn: *mut TandemConn, state: *mut TandemState) -> TandemResult {
    if state.is_null() {
        return TandemResult::NullPointer;
    }
    let f = |h: &mut TandemConn| {
        let s = match h.conn.state() {
            State::Handshake => TandemState::Handshake,
            State::Open => TandemState::Open,
            State::Draining => TandemState::Draining,
            State::Suspended => TandemState::Suspended,
            State::Closed => TandemState::Closed,
        };
        // SAFETY: non-NULL, writable by the contract.
        unsafe { state.write(s) };
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

/// Whether the connection is done: closed, its last event polled and everything queued
/// transmitted. Then close the transport and `tandem_conn_free` it. Also true for a NULL,
/// freed or poisoned handle (nothing more will happen on it).
///
/// # Safety
///
/// `conn` must be NULL or a handle from `tandem_conn_init` (freed or not) whose memory the
/// caller still owns, with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_is_finished(conn: *mut TandemConn) -> bool {
    let mut done = true;
    // SAFETY: forwarded contract.
    let r = unsafe {
        with_conn(conn, false, |h| {
            done = h.conn.is_finished();
            TandemResult::Ok
        })
    };
    r != TandemResult::Ok || done
}

/// Writes to `*name` and `*len` the name the peer announced in its HELLO (valid until
/// `tandem_conn_free`; it does not change). `TANDEM_RESULT_NOT_CONNECTED` before the handshake.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `name` and `len` must point
/// to a writable `const uint8_t *` and `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_peer_name(
    conn: *mut TandemConn,
    name: *mut *const u8,
    len: *mut usize,
) -> TandemResult {
    if name.is_null() || len.is_null() {
        return TandemResult::NullPointer;
    }
    let f = |h: &mut TandemConn| match h.conn.peer() {
        Some(p) => {
            // SAFETY: non-NULL, writable by the contract. The name lives in the connection's
            // state (a fixed array written once, at the handshake), valid until it is freed.
            unsafe {
                name.write(p.name.as_ptr());
                len.write(p.name.len());
            }
            TandemResult::Ok
        }
        None => TandemResult::NotConnected,
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}
