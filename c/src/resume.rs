//! Session resumption (SPEC.md §13) without an allocator, with the `resume` feature: a
//! connection whose memory also holds the session's reply cache, retained requests and owed
//! answers (`tandem_conn_session_memory_size`, `tandem_conn_init_session`), and the calls that
//! move a session to a new transport (`tandem_conn_reconnect` for a dialer; for an acceptor
//! `TANDEM_EVENT_KIND_RESUME_REQUESTED`, `tandem_conn_resume_from` and
//! `tandem_conn_decline_resume`).

use tandem_core::{Instant, Storage};

use crate::conn::{bytes, convert, init_in, with_conn, TandemConn};
use crate::guard;
use crate::types::*;

/// Writes to `*replies` and `*retained` the bytes a resumable session keeps for `config`, the
/// core's `Storage::session_replies_len` and `Storage::session_retained_len` (both are part of
/// `tandem_conn_session_memory_size`; this says what they are made of):
///
/// * `replies`: `reply_cache_bytes + 32 * reply_cache_entries + 8 * (max_concurrent_calls +
///   max_concurrent_streams + 16)` — the reply cache (SPEC.md 13.6) and the answers owed to the
///   peer's retransmissions while the transmit buffer is full (at most `max_concurrent_calls +
///   max_concurrent_streams + 16`; a peer that makes more wait is closed with
///   ENHANCE_YOUR_CALM, SPEC.md 13.5);
/// * `retained`: `max_retained_bytes + 32 * (max_outbound_calls + max_outbound_streams)` — our
///   requests kept until answered, and unconfirmed stream items (SPEC.md 13.5, 13.7).
///
/// Returns `TANDEM_RESULT_OK`, what `tandem_config_check` would return for an invalid
/// configuration, or `TANDEM_RESULT_NULL_POINTER`.
///
/// # Safety
///
/// `config` as for `tandem_config_check`; `replies` and `retained` must point to writable
/// `size_t`s.
#[no_mangle]
pub unsafe extern "C" fn tandem_session_storage_size(
    config: *const TandemConfig,
    replies: *mut usize,
    retained: *mut usize,
) -> TandemResult {
    if config.is_null() || replies.is_null() || retained.is_null() {
        return TandemResult::NullPointer;
    }
    guard(|| {
        // SAFETY: non-NULL; valid (with `name`/`auth`) by the contract.
        match unsafe { convert(&*config, true) } {
            Ok((c, _, _)) => {
                // SAFETY: non-NULL and writable by the contract.
                unsafe {
                    replies.write(Storage::session_replies_len(&c));
                    retained.write(Storage::session_retained_len(&c));
                }
                TandemResult::Ok
            }
            Err(r) => r.code,
        }
    })
    .unwrap_or(TandemResult::Panicked)
}

/// Writes to `*size` how many bytes `tandem_conn_init_session` needs for `config`: what
/// `tandem_conn_memory_size` says plus the session's state (`tandem_session_storage_size`).
///
/// # Safety
///
/// As `tandem_conn_memory_size`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_session_memory_size(
    config: *const TandemConfig,
    size: *mut usize,
) -> TandemResult {
    // SAFETY: the caller's contract is this function's.
    unsafe { crate::conn::memory_size(config, size, true) }
}

/// Creates the connection of a resumable session (SPEC.md 13) in the caller's memory (at least
/// `tandem_conn_session_memory_size` bytes), like `tandem_conn_init` otherwise.
///
/// An acceptor passes the session token it offers (`token_len` at most 64 bytes; make it
/// unguessable, at least 16 random bytes: whoever presents it takes the session over); the
/// token is copied. Every connection it accepts is made this way, each with a new token: a
/// dialer that resumes an older session arrives on such a new connection
/// (`TANDEM_EVENT_KIND_RESUME_REQUESTED`), which becomes a new session if the resumption is
/// declined; an acceptor without a token reports no resumption request. The session is resumable when the dialer's connection was made with this
/// function too (`tandem_conn_is_resumable` after `TANDEM_EVENT_KIND_CONNECTED`). A dialer
/// passes no token (NULL, 0): it learns the acceptor's in the handshake.
///
/// A resumable connection that loses its transport (`tandem_conn_recv_eof`, or a transport
/// error) is `TANDEM_STATE_SUSPENDED` instead of closed: its exchanges wait. A dialer then
/// opens a new transport and calls `tandem_conn_reconnect`; an acceptor waits for the dialer
/// (`TANDEM_EVENT_KIND_RESUME_REQUESTED` on a new connection). Either way the session ends if
/// no resumption happens within the grace period (30 s; `tandem_conn_poll_timeout` includes
/// it), and the exchanges fail with UNAVAILABLE.
///
/// Returns as `tandem_conn_init`; `TANDEM_RESULT_INVALID_CONFIG` for a token over 64 bytes.
///
/// # Safety
///
/// As `tandem_conn_init`; `token` must point to `token_len` readable bytes (or be NULL with
/// `token_len` 0).
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_init_session(
    mem: *mut core::ffi::c_void,
    mem_len: usize,
    config: *const TandemConfig,
    role: u32,
    token: *const u8,
    token_len: usize,
    now_ms: u64,
    out: *mut *mut TandemConn,
) -> TandemResult {
    // SAFETY: by the contract `token` points to `token_len` readable bytes for this call (the
    // core copies them).
    let token = match unsafe { bytes(token, token_len) } {
        Ok(t) => t,
        Err(e) => return e,
    };
    if token.len() > tandem_core::frame::MAX_SESSION_LEN {
        return TandemResult::InvalidConfig;
    }
    // SAFETY: forwarded contract.
    unsafe { init_in(mem, mem_len, config, role, Some(token), now_ms, out) }
}

/// Whether the connection's session can be resumed after a transport loss: the acceptor
/// offered a token and both sides keep the state (both made with `tandem_conn_init_session`).
/// False for an invalid handle.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_is_resumable(conn: *mut TandemConn) -> bool {
    let mut yes = false;
    // SAFETY: forwarded contract.
    let _ = unsafe {
        with_conn(conn, true, |h| {
            yes = h.conn.is_resumable();
            TandemResult::Ok
        })
    };
    yes
}

/// Dialer: resumes the session on a new transport (SPEC.md 13.3). Queues a resuming HELLO:
/// send what `tandem_conn_poll_transmit` gives on the **new** transport and feed this
/// connection its bytes. Exchanges in flight are retransmitted once the acceptor agrees
/// (`TANDEM_STATE_OPEN` again); if it starts a new session instead, they fail with UNAVAILABLE
/// and `TANDEM_EVENT_KIND_CONNECTED` follows.
///
/// Allowed while `TANDEM_STATE_SUSPENDED`, and while open when the caller has decided the old
/// transport is dead. Returns `TANDEM_RESULT_WRONG_STATE` for an acceptor, a session that is
/// not resumable, or one that is ending.
///
/// # Safety
///
/// `conn` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_reconnect(conn: *mut TandemConn, now_ms: u64) -> TandemResult {
    let f = |h: &mut TandemConn| match h.conn.reconnect(Instant::from_millis(now_ms)) {
        Ok(()) => TandemResult::Ok,
        Err(e) => e.into(),
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, f) }
}

/// Acceptor: after `fresh` — a new connection on a new transport, made by
/// `tandem_conn_init_session` with a new token (an acceptor without a token treats every
/// dialer as a new session and never reports the request) — reported `TANDEM_EVENT_KIND_RESUME_REQUESTED` with the token of the session
/// `conn` holds, moves that transport into `conn` (SPEC.md 13.3). Afterwards `fresh` is
/// finished: free it, and give the new transport's bytes to `conn` from now on (and what
/// `conn`'s `tandem_conn_poll_transmit` gives to it). An old transport `conn` still had is
/// abandoned without CLOSE: close it.
///
/// Returns `TANDEM_RESULT_WRONG_STATE` if the token differs, the session is over or ending,
/// or the dialer's parameters changed (then `fresh` is closed with PROTOCOL_ERROR when the
/// dialer broke SPEC.md 13.4); `TANDEM_RESULT_INVALID_ARGUMENT` if both handles are the same.
///
/// # Safety
///
/// `conn` and `fresh` must be live handles with no other call on either running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_resume_from(
    conn: *mut TandemConn,
    now_ms: u64,
    fresh: *mut TandemConn,
) -> TandemResult {
    if core::ptr::eq(conn, fresh) {
        return TandemResult::InvalidArgument;
    }
    let outer = |h: &mut TandemConn| {
        let inner = |f: &mut TandemConn| match h.conn.resume_from(Instant::from_millis(now_ms), &mut f.conn) {
            Ok(()) => TandemResult::Ok,
            Err(e) => e.into(),
        };
        // SAFETY: forwarded contract; `fresh` is not `conn` (checked above), so this is the only
        // reference to it while `h` refers to `conn`.
        unsafe { with_conn(fresh, false, inner) }
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(conn, false, outer) }
}

/// Acceptor: answers `TANDEM_EVENT_KIND_RESUME_REQUESTED` on `fresh` with a new session
/// (SPEC.md 13.3 step 3; for an unknown or expired token): the dialer's old exchanges fail with
/// UNAVAILABLE, and `fresh` continues as a new connection (`TANDEM_EVENT_KIND_CONNECTED`
/// follows).
///
/// # Safety
///
/// `fresh` must be a live handle with no other call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_decline_resume(fresh: *mut TandemConn, now_ms: u64) -> TandemResult {
    let f = |h: &mut TandemConn| match h.conn.decline_resume(Instant::from_millis(now_ms)) {
        Ok(()) => TandemResult::Ok,
        Err(e) => e.into(),
    };
    // SAFETY: forwarded contract.
    unsafe { with_conn(fresh, false, f) }
}
