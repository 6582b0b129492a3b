//! Driving a connection: inputs, outputs, actions and getters.
//!
//! The loop of a driver (see `c/examples/echo_server.c`): after every input (`tandem_conn_input`
//! or `tandem_conn_recv_buffer` + `tandem_conn_recv_commit`, `tandem_conn_eof`,
//! `tandem_conn_handle_timeout`) and every action, drain `tandem_conn_poll_event` until it
//! returns `TANDEM_EVENT_KIND_NONE`, then `tandem_conn_poll_transmit` until it returns 0 bytes,
//! then ask `tandem_conn_poll_timeout` when to call back.

use tandem_core::{Blame, Event, Instant, MethodId, RequestKind, Status};

use crate::conn::{bytes, with_conn, TandemConn};
use crate::types::*;

fn now(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Writes `v` to `out`.
///
/// # Safety
///
/// `out` must be non-NULL and valid for a write of `T`.
unsafe fn put<T>(out: *mut T, v: T) {
    // SAFETY: forwarded contract; `write` does not read or drop the old value.
    unsafe { out.write(v) }
}

/// A static, NUL-terminated sentence describing `result` (never NULL; unknown values get a
/// sentence saying so).
#[no_mangle]
pub extern "C" fn tandem_result_message(result: u32) -> *const core::ffi::c_char {
    match TandemResult::ALL.get(result as usize) {
        Some(r) => r.message().as_ptr(),
        None => c"unknown tandem_result value".as_ptr(),
    }
}

/// The protocol status (`TANDEM_STATUS_*`) that describes a refused action, so that an
/// application can report it to its own caller: UNAVAILABLE for a closed or draining connection,
/// RESOURCE_EXHAUSTED for back-pressure, TOO_LARGE for a size limit, FAILED_PRECONDITION for
/// misuse, INTERNAL for library errors, OK for `TANDEM_RESULT_OK`.
#[no_mangle]
pub extern "C" fn tandem_result_status(result: u32) -> u32 {
    use TandemResult as R;
    let status = match TandemResult::ALL.get(result as usize) {
        Some(R::Ok) => Status::OK,
        Some(R::NotConnected | R::Closed | R::GoingAway | R::IdsExhausted) => Status::UNAVAILABLE,
        Some(
            R::TooManyCalls | R::TooManyStreams | R::TxFull | R::NoCredit | R::RetainFull | R::WindowFull,
        ) => Status::RESOURCE_EXHAUSTED,
        Some(R::TooLarge | R::FieldTooLong) => Status::TOO_LARGE,
        Some(R::UnknownId | R::WrongState) => Status::FAILED_PRECONDITION,
        Some(R::Unsupported) => Status::UNIMPLEMENTED,
        Some(R::InvalidArgument | R::NullPointer | R::InvalidConfig | R::BufferTooSmall) => {
            Status::INVALID_ARGUMENT
        }
        Some(R::BadHandle | R::Panicked | R::Poisoned) | None => Status::INTERNAL,
    };
    status.0
}

// ---------------------------------------------------------------------------------- inputs

/// Copies bytes received from the transport into the connection; writes to `*taken` how many
/// it took. Fewer than `len` means the receive buffer is full: drain `tandem_conn_poll_event`,
/// then offer the rest again. On a packet transport `data` is one whole datagram, taken
/// entirely or not at all. `data` must not point into the connection's memory
/// (`TANDEM_RESULT_INVALID_ARGUMENT`).
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `data` must point to `len`
/// readable bytes (or be NULL with `len` 0); `taken` must point
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_input(
    conn: *mut TandemConn,
    now_ms: u64,
    data: *const u8,
    len: usize,
    taken: *mut usize,
) -> TandemResult {
    if taken.is_null() {
        return TandemResult::NullPointer;
    }
    let f = |h: &mut TandemConn| {
        if !h.outside(data, len) {
            return TandemResult::InvalidArgument;
        }
        // SAFETY: `data` holds `len` readable bytes (the contract) outside the connection's
        // memory (checked above), so the slice does not alias the buffers the connection
        // writes.
        let data = match unsafe { bytes(data, len) } {
            Ok(d) => d,
            Err(e) => return e,
        };
        let n = h.conn.handle_input(now(now_ms), data);
        // SAFETY: non-NULL, writable by the contract.
        unsafe { put(taken, n) };
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

/// Zero-copy input: writes to `*buf` and `*len` where the connection's free receive space is
/// (`*len` may be 0 when it is full of unprocessed frames: drain `tandem_conn_poll_event`
/// first). Read from the transport straight into it (on a packet transport: one datagram), then
/// call `tandem_conn_recv_commit` with the number of bytes read, before any other call on the
/// connection (any other call withdraws the offer).
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `buf` and `len` must point
/// to a writable `uint8_t *` and `size_t`. Only the `*len` bytes at `*buf` may be written, and
/// only until the next call on the connection.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_recv_buffer(
    conn: *mut TandemConn,
    buf: *mut *mut u8,
    len: *mut usize,
) -> TandemResult {
    if buf.is_null() || len.is_null() {
        return TandemResult::NullPointer;
    }
    let f = |h: &mut TandemConn| {
        let spare = h.conn.recv_buffer();
        let (p, n) = (spare.as_mut_ptr(), spare.len());
        h.recv_offered = n;
        // SAFETY: both non-NULL and writable by the contract. The pointer handed out is
        // derived from the receive buffer's own `&mut` borrow; C writes through it only until
        // its next call (the contract), and `tandem_conn_recv_commit` reads what it wrote
        // through the connection, after that pointer's last use.
        unsafe {
            put(buf, p);
            put(len, n);
        }
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

/// Accepts `n` bytes just written into the buffer `tandem_conn_recv_buffer` offered.
/// `n` 0 is allowed (nothing read). Returns `TANDEM_RESULT_INVALID_ARGUMENT` when `n` exceeds
/// the offer or no offer is pending.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_recv_commit(
    conn: *mut TandemConn,
    now_ms: u64,
    n: usize,
) -> TandemResult {
    let f = |h: &mut TandemConn| {
        let offered = core::mem::take(&mut h.recv_offered);
        if n > offered {
            return TandemResult::InvalidArgument;
        }
        h.conn.recv_commit(now(now_ms), n);
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, true, f) }
}

/// The transport reached end of file (the peer closed its side, `recv` returned 0). Frames
/// already received are still delivered; then the connection closes.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_eof(conn: *mut TandemConn, now_ms: u64) -> TandemResult {
    let f = |h: &mut TandemConn| {
        h.conn.handle_eof(now(now_ms));
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

/// Runs the timers due at `now_ms` (keepalive, idle and handshake timeouts, deadlines). Call it
/// when the time `tandem_conn_poll_timeout` gave is reached; an early call does nothing.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_handle_timeout(conn: *mut TandemConn, now_ms: u64) -> TandemResult {
    let f = |h: &mut TandemConn| {
        h.conn.handle_timeout(now(now_ms));
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

// ---------------------------------------------------------------------------------- outputs

/// Writes the next event to `*event` (`kind` `TANDEM_EVENT_KIND_NONE` when there is nothing to
/// report until new input, a timeout or an action). See `tandem_event` for how long its payload
/// stays valid.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `event` must point to a
/// writable `tandem_event`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_poll_event(
    conn: *mut TandemConn,
    now_ms: u64,
    event: *mut TandemEvent,
) -> TandemResult {
    if event.is_null() {
        return TandemResult::NullPointer;
    }
    let f = |h: &mut TandemConn| {
        let now = now(now_ms);
        loop {
            let Some(e) = h.conn.poll_event(now) else {
                // SAFETY: non-NULL, writable by the contract.
                unsafe { put(event, TandemEvent::NONE) };
                return TandemResult::Ok;
            };
            if let Some(ev) = to_c(e) {
                // SAFETY: as above. The payload pointer is derived from a shared borrow of the
                // connection's receive or reassembly buffer, whose bytes stay unchanged until
                // the next input or event poll (documented on `tandem_event`; the actions and
                // `poll_transmit` never write those buffers), so C may read it until then and
                // pass it back to an action.
                unsafe { put(event, ev) };
                return TandemResult::Ok;
            }
            // Authentication requests (and resumption requests without the `resume` feature):
            // this API does not offer them (`authenticate` is off); should the core raise one,
            // refuse rather than leave the handshake hanging.
            h.conn.close(now, Status::UNIMPLEMENTED, b"not offered by this peer");
        }
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

/// The C form of an event; `None` for the requests this API never enables.
fn to_c(e: Event<'_>) -> Option<TandemEvent> {
    let mut c = TandemEvent::NONE;
    let payload = |c: &mut TandemEvent, p: &[u8]| {
        c.payload = if p.is_empty() { core::ptr::null() } else { p.as_ptr() };
        c.payload_len = p.len();
    };
    let method = |c: &mut TandemEvent, m: MethodId| {
        c.module = m.module;
        c.method = m.method;
    };
    match e {
        Event::Connected => c.kind = TandemEventKind::Connected,
        Event::Request { id, kind, method: m, deadline, payload: p } => {
            c.kind = TandemEventKind::Request;
            c.request_kind = match kind {
                RequestKind::Call => TandemRequestKind::Call,
                RequestKind::Notify => TandemRequestKind::Notify,
                RequestKind::Stream { half_closed: false } => TandemRequestKind::Stream,
                RequestKind::Stream { half_closed: true } => TandemRequestKind::StreamHalfClosed,
            };
            c.id = id;
            method(&mut c, m);
            // Rounded down: the handler sees the budget end no later than it does.
            c.deadline_ms = deadline.map_or(TANDEM_NO_DEADLINE, |d| d.as_micros() / 1000);
            payload(&mut c, p);
        }
        Event::Signal { method: m, payload: p } => {
            c.kind = TandemEventKind::Signal;
            method(&mut c, m);
            payload(&mut c, p);
        }
        Event::Response { id, status, payload: p } => {
            c.kind = TandemEventKind::Response;
            c.id = id;
            c.status = status.0;
            payload(&mut c, p);
        }
        Event::Failed { id, status } => (c.kind, c.id, c.status) = (TandemEventKind::Failed, id, status.0),
        Event::Cancelled { id, status } => {
            (c.kind, c.id, c.status) = (TandemEventKind::Cancelled, id, status.0)
        }
        Event::StreamData { id, payload: p } => {
            c.kind = TandemEventKind::StreamData;
            c.id = id;
            payload(&mut c, p);
        }
        Event::StreamFin { id, status } => {
            (c.kind, c.id, c.status) = (TandemEventKind::StreamFin, id, status.0)
        }
        Event::StreamReset { id, status } => {
            (c.kind, c.id, c.status) = (TandemEventKind::StreamReset, id, status.0)
        }
        Event::StreamWritable { id } => (c.kind, c.id) = (TandemEventKind::StreamWritable, id),
        Event::GoAway { bound, status } => {
            (c.kind, c.id, c.status) = (TandemEventKind::GoAway, bound, status.0)
        }
        Event::Closed(err) => {
            c.kind = TandemEventKind::Closed;
            c.status = err.status().0;
            c.blame = match err.blame() {
                Blame::PeerInvalidBytes => TandemBlame::PeerInvalidBytes,
                Blame::PeerBrokeRule => TandemBlame::PeerBrokeRule,
                Blame::PeerIncompatible => TandemBlame::PeerIncompatible,
                Blame::PeerClosed => TandemBlame::PeerClosed,
                Blame::Transport => TandemBlame::Transport,
                Blame::Local => TandemBlame::Local,
            };
        }
        #[cfg(feature = "resume")]
        Event::ResumeRequested { token } => {
            c.kind = TandemEventKind::ResumeRequested;
            payload(&mut c, token);
        }
        #[cfg(not(feature = "resume"))]
        Event::ResumeRequested { .. } => return None,
        Event::AuthRequested { .. } => return None,
    }
    Some(c)
}

/// Copies queued outbound bytes into `buf` (capacity `cap`) and writes their number to
/// `*written`; 0 when nothing is queued. Send them in order. On a packet transport each call
/// gives one datagram of whole frames (`buf` must hold `max_datagram` bytes). `buf` must not
/// point into the connection's memory (`TANDEM_RESULT_INVALID_ARGUMENT`).
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `buf` must point to `cap`
/// writable bytes (or be NULL with `cap` 0); `written` must
/// point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_poll_transmit(
    conn: *mut TandemConn,
    now_ms: u64,
    buf: *mut u8,
    cap: usize,
    written: *mut usize,
) -> TandemResult {
    if written.is_null() || (buf.is_null() && cap > 0) {
        return TandemResult::NullPointer;
    }
    if cap > isize::MAX as usize {
        return TandemResult::InvalidArgument;
    }
    let f = |h: &mut TandemConn| {
        // Only as many bytes as are queued can be written: the slice handed to the core is no
        // longer (the result is the same: it takes at most what is queued), so that only those
        // need initialising.
        let len = cap.min(h.conn.pending_transmit());
        if !h.outside(buf, len) {
            return TandemResult::InvalidArgument;
        }
        let out: &mut [u8] = if len == 0 {
            &mut []
        } else {
            // SAFETY: non-NULL, `len <= cap` writable bytes (the contract) outside the
            // connection's memory (checked above), so no alias of its buffers; zeroed first
            // so the slice is initialised.
            unsafe {
                buf.write_bytes(0, len);
                core::slice::from_raw_parts_mut(buf, len)
            }
        };
        let n = h.conn.poll_transmit(now(now_ms), out);
        // SAFETY: non-NULL, writable by the contract.
        unsafe { put(written, n) };
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

/// Writes to `*deadline_ms` when to call `tandem_conn_handle_timeout` next, in milliseconds on
/// the caller's clock (rounded up), or `TANDEM_NO_DEADLINE` when no timer is running.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running; `deadline_ms` must point to
/// a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_poll_timeout(
    conn: *mut TandemConn,
    deadline_ms: *mut u64,
) -> TandemResult {
    if deadline_ms.is_null() {
        return TandemResult::NullPointer;
    }
    let f = |h: &mut TandemConn| {
        let at = match h.conn.poll_timeout() {
            Some(t) if t != Instant::MAX => t.as_micros().div_ceil(1000),
            _ => TANDEM_NO_DEADLINE,
        };
        // SAFETY: non-NULL, writable by the contract.
        unsafe { put(deadline_ms, at) };
        TandemResult::Ok
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}
