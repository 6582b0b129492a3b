//! Session resumption through the C API (feature `resume`), called from Rust exactly as C
//! calls it: a dialer and an acceptor made by `tandem_conn_init_session` in caller memory of
//! `tandem_conn_session_memory_size` bytes lose their transport with calls in flight both
//! ways; the dialer reconnects, the acceptor's fresh connection reports
//! `TANDEM_EVENT_KIND_RESUME_REQUESTED` with the token, `tandem_conn_resume_from` moves the
//! transport into the session, and every call completes exactly once. A second loss is then
//! answered with `tandem_conn_decline_resume`: the dialer's calls fail UNAVAILABLE and a new
//! session starts. Also: the sizes mirror the core's `const fn`s, and the boundary checks.
//!
//! `cargo test -p tandem-c` runs it with the core's state on the heap (the dev-dependencies bring
//! `alloc`); `cargo test -p tandem-noalloc-tests --features full --test c_resume_api` runs it
//! with the core built without an allocator, the session in the connection's memory.

// Calling the C API means raw pointers: every block says why it is sound. (That package denies
// `unsafe` workspace-wide; this file is tandem-c's test, where FFI calls are the point.)
#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};

use tandem_c::*;
use tandem_core::{Config, Status, Storage};

const TOKEN: &[u8] = b"an-unguessable-16+byte-token";

fn config() -> TandemConfig {
    let mut c = MaybeUninit::<TandemConfig>::uninit();
    // SAFETY: a valid pointer to writable memory for one config.
    assert_eq!(unsafe { tandem_config_default(c.as_mut_ptr()) }, TandemResult::Ok);
    // SAFETY: initialised just above.
    unsafe { c.assume_init() }
}

/// A connection in caller memory (a heap block freed after `tandem_conn_free`).
struct Conn {
    block: *mut [u8],
    ptr: *mut TandemConn,
}

impl Conn {
    /// `token` Some: `tandem_conn_init_session`; None: plain `tandem_conn_init`.
    fn new(c: &TandemConfig, role: u32, token: Option<&[u8]>, now: u64) -> Conn {
        let mut size = 0;
        // SAFETY: valid config and out pointer.
        let r = unsafe {
            match token {
                Some(_) => tandem_conn_session_memory_size(c, &mut size),
                None => tandem_conn_memory_size(c, &mut size),
            }
        };
        assert_eq!(r, TandemResult::Ok);
        let block = Box::into_raw(vec![0u8; size].into_boxed_slice());
        let mut ptr = null_mut();
        // SAFETY: `size` writable bytes used by nothing else until `tandem_conn_free` (drop);
        // the token is readable for the call.
        let r = unsafe {
            match token {
                Some(t) => tandem_conn_init_session(
                    block.cast(),
                    size,
                    c,
                    role,
                    if t.is_empty() { null() } else { t.as_ptr() },
                    t.len(),
                    now,
                    &mut ptr,
                ),
                None => tandem_conn_init(block.cast(), size, c, role, now, &mut ptr),
            }
        };
        assert_eq!(r, TandemResult::Ok);
        Conn { block, ptr }
    }

    /// Events as (kind, id, status, payload).
    fn events(&self, now: u64) -> Vec<(TandemEventKind, u64, u32, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let mut e = MaybeUninit::<TandemEvent>::uninit();
            // SAFETY: live handle, writable event.
            assert_eq!(unsafe { tandem_conn_poll_event(self.ptr, now, e.as_mut_ptr()) }, TandemResult::Ok);
            // SAFETY: initialised by the call above.
            let e = unsafe { e.assume_init() };
            if e.kind == TandemEventKind::None {
                return out;
            }
            let p = if e.payload_len == 0 {
                Vec::new()
            } else {
                // SAFETY: valid until the next poll, by the library's promise.
                unsafe { std::slice::from_raw_parts(e.payload, e.payload_len) }.to_vec()
            };
            out.push((e.kind, e.id, e.status, p));
        }
    }

    fn transmit(&self, now: u64) -> Vec<u8> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0;
        // SAFETY: live handle; `buf` is ours.
        let r = unsafe { tandem_conn_poll_transmit(self.ptr, now, buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(r, TandemResult::Ok);
        buf.truncate(n);
        buf
    }

    fn input(&self, now: u64, data: &[u8]) {
        let mut off = 0;
        while off < data.len() {
            let mut taken = 0;
            // SAFETY: live handle; `data` is ours.
            let r = unsafe {
                tandem_conn_input(self.ptr, now, data[off..].as_ptr(), data.len() - off, &mut taken)
            };
            assert_eq!(r, TandemResult::Ok);
            assert!(taken > 0, "input stalled");
            off += taken;
        }
    }

    fn state(&self) -> TandemState {
        let mut s = TandemState::Closed;
        // SAFETY: live handle, writable state.
        assert_eq!(unsafe { tandem_conn_state(self.ptr, &mut s) }, TandemResult::Ok);
        s
    }

    fn call(&self, now: u64, payload: &[u8]) -> u64 {
        let mut id = 0;
        // SAFETY: live handle; payload is ours.
        let r = unsafe { tandem_conn_call(self.ptr, now, 7, 1, payload.as_ptr(), payload.len(), 0, &mut id) };
        assert_eq!(r, TandemResult::Ok);
        id
    }

    fn respond(&self, id: u64, payload: &[u8]) {
        // SAFETY: live handle; payload is ours.
        let r = unsafe { tandem_conn_respond(self.ptr, id, Status::OK.0, payload.as_ptr(), payload.len()) };
        assert_eq!(r, TandemResult::Ok);
    }

    fn eof(&self, now: u64) {
        // SAFETY: live handle.
        assert_eq!(unsafe { tandem_conn_eof(self.ptr, now) }, TandemResult::Ok);
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // SAFETY: live handle; afterwards the block is ours again and is freed once.
        unsafe {
            assert_eq!(tandem_conn_free(self.ptr), TandemResult::Ok);
            drop(Box::from_raw(self.block));
        }
    }
}

type Events = Vec<(TandemEventKind, u64, u32, Vec<u8>)>;

/// Moves bytes both ways until nothing moves; the events of each side.
fn pump(a: &Conn, b: &Conn, now: u64) -> (Events, Events) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        ea.extend(a.events(now));
        eb.extend(b.events(now));
        let x = a.transmit(now);
        b.input(now, &x);
        let y = b.transmit(now);
        a.input(now, &y);
        if x.is_empty() && y.is_empty() {
            ea.extend(a.events(now));
            eb.extend(b.events(now));
            break;
        }
    }
    (ea, eb)
}

fn kinds(e: &Events) -> Vec<TandemEventKind> {
    e.iter().map(|e| e.0).collect()
}

/// Both sides lose the transport; what was in flight is gone.
fn cut(a: &Conn, b: &Conn, now: u64) {
    a.transmit(now);
    b.transmit(now);
    a.eof(now);
    b.eof(now);
    assert!(a.events(now).is_empty() && b.events(now).is_empty(), "a suspension reports nothing");
    assert_eq!((a.state(), b.state()), (TandemState::Suspended, TandemState::Suspended));
}

/// The dialer reconnects; a fresh acceptor connection (`tandem_conn_init_session`, a new token)
/// reads its HELLO and reports the request.
fn reconnect(a: &Conn, c: &TandemConfig, now: u64) -> Conn {
    // SAFETY: live handle.
    assert_eq!(unsafe { tandem_conn_reconnect(a.ptr, now) }, TandemResult::Ok);
    // Every connection an acceptor of resumable sessions accepts is made this way, with a new
    // token: it becomes that new session if the resumption is declined.
    let f = Conn::new(c, TANDEM_ROLE_ACCEPTOR, Some(b"another-unguessable-token"), now);
    f.input(now, &a.transmit(now));
    let ev = f.events(now);
    assert_eq!(kinds(&ev), vec![TandemEventKind::ResumeRequested]);
    assert_eq!(ev[0].3, TOKEN, "the token is the event's payload");
    f
}

#[test]
fn sizes_mirror_the_cores_const_fns() {
    let c = config();
    let (mut replies, mut retained, mut plain, mut session) = (0, 0, 0, 0);
    // SAFETY: valid pointers.
    unsafe {
        assert_eq!(tandem_session_storage_size(&c, &mut replies, &mut retained), TandemResult::Ok);
        assert_eq!(tandem_conn_memory_size(&c, &mut plain), TandemResult::Ok);
        assert_eq!(tandem_conn_session_memory_size(&c, &mut session), TandemResult::Ok);
        assert_eq!(
            tandem_session_storage_size(null(), &mut replies, &mut retained),
            TandemResult::NullPointer
        );
    }
    let core = Config {
        max_concurrent_calls: c.max_concurrent_calls,
        max_concurrent_streams: c.max_concurrent_streams,
        max_outbound_calls: c.max_outbound_calls,
        max_outbound_streams: c.max_outbound_streams,
        reply_cache_entries: c.reply_cache_entries,
        reply_cache_bytes: c.reply_cache_bytes,
        max_retained_bytes: c.max_retained_bytes,
        ..Config::default()
    };
    assert_eq!(replies, Storage::session_replies_len(&core));
    assert_eq!(retained, Storage::session_retained_len(&core));
    // The documented formulas.
    let owed = (c.max_concurrent_calls + c.max_concurrent_streams + 16) as usize;
    assert_eq!(replies, c.reply_cache_bytes as usize + 32 * c.reply_cache_entries as usize + 8 * owed);
    assert_eq!(
        retained,
        c.max_retained_bytes as usize + 32 * (c.max_outbound_calls + c.max_outbound_streams) as usize
    );
    // A stream-transport connection without a session keeps neither.
    assert_eq!(session, plain + replies + retained);
    // Too little memory, a token over 64 bytes.
    let mut mem = vec![0u8; session];
    let mut ptr = null_mut();
    let long = [7u8; 65];
    // SAFETY: `mem` is ours and writable; nothing keeps it after a refused init.
    unsafe {
        let r = tandem_conn_init_session(
            mem.as_mut_ptr().cast(),
            plain,
            &c,
            TANDEM_ROLE_ACCEPTOR,
            TOKEN.as_ptr(),
            TOKEN.len(),
            0,
            &mut ptr,
        );
        assert_eq!(r, TandemResult::BufferTooSmall);
        let r = tandem_conn_init_session(
            mem.as_mut_ptr().cast(),
            session,
            &c,
            TANDEM_ROLE_ACCEPTOR,
            long.as_ptr(),
            long.len(),
            0,
            &mut ptr,
        );
        assert_eq!(r, TandemResult::InvalidConfig);
        let r = tandem_conn_init_session(
            mem.as_mut_ptr().cast(),
            session,
            &c,
            TANDEM_ROLE_ACCEPTOR,
            null(),
            3,
            0,
            &mut ptr,
        );
        assert_eq!(r, TandemResult::NullPointer);
    }
}

#[test]
fn a_session_resumes_through_the_c_api_and_a_declined_one_starts_anew() {
    let c = config();
    let mut now = 0;
    let a = Conn::new(&c, TANDEM_ROLE_DIALER, Some(b""), now);
    let b = Conn::new(&c, TANDEM_ROLE_ACCEPTOR, Some(TOKEN), now);
    let (ea, eb) = pump(&a, &b, now);
    assert_eq!(
        (kinds(&ea), kinds(&eb)),
        (vec![TandemEventKind::Connected], vec![TandemEventKind::Connected])
    );
    // SAFETY: live handles.
    assert!(unsafe { tandem_conn_is_resumable(a.ptr) && tandem_conn_is_resumable(b.ptr) });

    // Calls both ways; the acceptor's answers and the dialer's request are lost with the
    // transport.
    let ids: Vec<u64> = (0..3u8).map(|k| a.call(now, &[k; 5])).collect();
    let (_, eb) = pump(&a, &b, now);
    assert_eq!(eb.iter().filter(|e| e.0 == TandemEventKind::Request).count(), 3);
    for (k, id) in ids.iter().enumerate() {
        b.respond(*id, &[k as u8 + 10; 3]);
    }
    let back = b.call(now, b"from the acceptor");
    cut(&a, &b, now);
    // SAFETY: live handle. An acceptor cannot reconnect.
    assert_eq!(unsafe { tandem_conn_reconnect(b.ptr, now) }, TandemResult::WrongState);

    now += 500;
    let f = reconnect(&a, &c, now);
    // SAFETY: live handles; the same handle twice is refused.
    unsafe {
        assert_eq!(tandem_conn_resume_from(b.ptr, now, b.ptr), TandemResult::InvalidArgument);
        assert_eq!(tandem_conn_resume_from(b.ptr, now, f.ptr), TandemResult::Ok);
        assert!(tandem_conn_is_finished(f.ptr));
    }
    drop(f);
    let (ea, eb) = pump(&a, &b, now);
    // Every answer arrives exactly once (from the reply cache), and the acceptor's call is
    // retransmitted to the dialer's handler.
    let mut got: Vec<(u64, Vec<u8>)> =
        ea.iter().filter(|e| e.0 == TandemEventKind::Response).map(|e| (e.1, e.3.clone())).collect();
    got.sort();
    let want: Vec<(u64, Vec<u8>)> =
        ids.iter().enumerate().map(|(k, id)| (*id, vec![k as u8 + 10; 3])).collect();
    assert_eq!(got, want, "{:?}", kinds(&ea));
    let req: Vec<_> = ea.iter().filter(|e| e.0 == TandemEventKind::Request).collect();
    assert_eq!(req.len(), 1);
    assert_eq!((req[0].1, req[0].3.as_slice()), (back, &b"from the acceptor"[..]));
    a.respond(back, b"done");
    let (_, eb2) = pump(&a, &b, now);
    let eb: Vec<_> = eb.into_iter().chain(eb2).collect();
    assert_eq!(
        eb.iter()
            .filter(|e| e.0 == TandemEventKind::Response)
            .map(|e| (e.1, e.3.clone()))
            .collect::<Vec<_>>(),
        vec![(back, b"done".to_vec())]
    );
    assert!(eb.iter().all(|e| e.0 != TandemEventKind::Request), "no handler runs twice");
    assert_eq!((a.state(), b.state()), (TandemState::Open, TandemState::Open));

    // A second loss, declined this time: the dialer's open call fails UNAVAILABLE and a new
    // session starts on the fresh connection.
    let lost = a.call(now, b"lost");
    cut(&a, &b, now);
    now += 500;
    let f = reconnect(&a, &c, now);
    // SAFETY: live handle.
    assert_eq!(unsafe { tandem_conn_decline_resume(f.ptr, now) }, TandemResult::Ok);
    let (ea, ef) = pump(&a, &f, now);
    assert!(
        ea.iter().any(|e| e.0 == TandemEventKind::Failed && e.1 == lost && e.2 == Status::UNAVAILABLE.0),
        "{:?}",
        kinds(&ea)
    );
    assert!(kinds(&ea).contains(&TandemEventKind::Connected), "{:?}", kinds(&ea));
    assert_eq!(kinds(&ef), vec![TandemEventKind::Connected]);
    // The old session at the acceptor ends after its grace period (30 s).
    now += 31_000;
    // SAFETY: live handle.
    assert_eq!(unsafe { tandem_conn_handle_timeout(b.ptr, now) }, TandemResult::Ok);
    let eb = b.events(now);
    assert!(kinds(&eb).contains(&TandemEventKind::Closed), "{:?}", kinds(&eb));
}
