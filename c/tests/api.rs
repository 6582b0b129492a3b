//! The C API called from Rust exactly as C calls it (raw pointers, caller-owned memory): two
//! connections made by `tandem_conn_init` talk to each other, and every check at the boundary
//! (NULL, sizes, alignment, freed handles, aliasing arguments, invalid configurations) returns
//! its code. Runs under Miri too (`cargo +nightly miri test -p tandem-c --test api`), which
//! checks the library's unsafe code against Rust's aliasing rules.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};

use tandem_c::*;
use tandem_core::Status;

/// Caller-owned memory holding one connection, at `offset` bytes into a heap block (to try
/// every alignment).
struct Conn {
    block: *mut [MaybeUninit<u8>],
    ptr: *mut TandemConn,
}

fn config(streams: bool) -> TandemConfig {
    let mut c = MaybeUninit::<TandemConfig>::uninit();
    // SAFETY: a valid pointer to writable memory for one config.
    assert_eq!(unsafe { tandem_config_default(c.as_mut_ptr()) }, TandemResult::Ok);
    // SAFETY: initialised just above.
    let mut c = unsafe { c.assume_init() };
    if streams {
        c.max_concurrent_streams = 4;
        c.max_outbound_streams = 4;
    }
    c
}

fn memory_size(c: &TandemConfig) -> usize {
    let mut n = 0;
    // SAFETY: valid config and out pointer.
    assert_eq!(unsafe { tandem_conn_memory_size(c, &mut n) }, TandemResult::Ok);
    n
}

impl Conn {
    fn new(c: &TandemConfig, role: u32, offset: usize) -> Conn {
        let size = memory_size(c);
        let block = Box::into_raw(vec![MaybeUninit::<u8>::uninit(); size + offset].into_boxed_slice());
        let mut ptr = null_mut();
        // SAFETY: `size` writable bytes at `offset` into the block, used by nothing else until
        // `tandem_conn_free` (in `drop`).
        let r =
            unsafe { tandem_conn_init(block.cast::<u8>().add(offset).cast(), size, c, role, 0, &mut ptr) };
        assert_eq!(r, TandemResult::Ok, "init at offset {offset}");
        Conn { block, ptr }
    }

    fn event(&self, now: u64) -> Ev {
        let mut e = MaybeUninit::<TandemEvent>::uninit();
        // SAFETY: live handle, writable event.
        assert_eq!(unsafe { tandem_conn_poll_event(self.ptr, now, e.as_mut_ptr()) }, TandemResult::Ok);
        // SAFETY: initialised by the call above.
        let e = unsafe { e.assume_init() };
        let payload = if e.payload_len == 0 {
            Vec::new()
        } else {
            // SAFETY: the library's promise: `payload_len` bytes valid until the next poll.
            unsafe { std::slice::from_raw_parts(e.payload, e.payload_len) }.to_vec()
        };
        Ev { raw: e, payload }
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

/// An event with its payload copied.
struct Ev {
    raw: TandemEvent,
    payload: Vec<u8>,
}

/// Moves bytes both ways until neither side has anything to send; returns the events each side
/// reported meanwhile. `a` reads through `tandem_conn_input`, `b` through the zero-copy
/// `tandem_conn_recv_buffer` / `tandem_conn_recv_commit`.
fn pump(a: &Conn, b: &Conn, now: u64) -> (Vec<Ev>, Vec<Ev>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut moved = false;
        for (from, to, events) in [(a, b, &mut ea), (b, a, &mut eb)] {
            loop {
                let e = from.event(now);
                if e.raw.kind == TandemEventKind::None {
                    break;
                }
                events.push(e);
            }
            let mut n = 0;
            // SAFETY: live handle, `buf` is ours (outside the connection's memory).
            let r = unsafe { tandem_conn_poll_transmit(from.ptr, now, buf.as_mut_ptr(), buf.len(), &mut n) };
            assert_eq!(r, TandemResult::Ok);
            if n == 0 {
                continue;
            }
            moved = true;
            if std::ptr::eq(to, b) {
                let (mut p, mut cap) = (null_mut(), 0);
                // SAFETY: live handle; the offered `cap` bytes at `p` are written before the
                // next call, which is the commit.
                unsafe {
                    assert_eq!(tandem_conn_recv_buffer(to.ptr, &mut p, &mut cap), TandemResult::Ok);
                    assert!(cap >= n, "receive buffer of {cap} for {n} bytes");
                    std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
                    assert_eq!(tandem_conn_recv_commit(to.ptr, now, n), TandemResult::Ok);
                }
            } else {
                let mut taken = 0;
                // SAFETY: live handle, `buf` readable.
                let r = unsafe { tandem_conn_input(to.ptr, now, buf.as_ptr(), n, &mut taken) };
                assert_eq!(r, TandemResult::Ok);
                assert_eq!(taken, n);
            }
        }
        if !moved {
            // The events of the last round were collected above.
            return (ea, eb);
        }
    }
}

fn kinds(evs: &[Ev]) -> Vec<TandemEventKind> {
    evs.iter().map(|e| e.raw.kind).collect()
}

fn connected_pair(streams: bool) -> (Conn, Conn) {
    let c = config(streams);
    let dialer = Conn::new(&c, TANDEM_ROLE_DIALER, 0);
    let acceptor = Conn::new(&c, TANDEM_ROLE_ACCEPTOR, 3);
    let (ed, ea) = pump(&dialer, &acceptor, 1);
    assert_eq!(kinds(&ed), [TandemEventKind::Connected]);
    assert_eq!(kinds(&ea), [TandemEventKind::Connected]);
    (dialer, acceptor)
}

#[test]
fn exchanges_between_two_c_api_connections() {
    let (d, a) = connected_pair(true);
    // A call, answered with the request's own payload pointer (valid across respond).
    let mut id = 0;
    // SAFETY: live handle, readable payload, writable id.
    let r = unsafe { tandem_conn_call(d.ptr, 2, 100, 1, b"hello".as_ptr(), 5, 0, &mut id) };
    assert_eq!(r, TandemResult::Ok);
    let mut ev = MaybeUninit::<TandemEvent>::uninit();
    let mut tx = vec![0u8; 16 * 1024];
    let mut n = 0;
    // SAFETY: live handles; buffers ours.
    unsafe {
        assert_eq!(tandem_conn_poll_transmit(d.ptr, 2, tx.as_mut_ptr(), tx.len(), &mut n), TandemResult::Ok);
        let mut taken = 0;
        assert_eq!(tandem_conn_input(a.ptr, 2, tx.as_ptr(), n, &mut taken), TandemResult::Ok);
        assert_eq!(tandem_conn_poll_event(a.ptr, 2, ev.as_mut_ptr()), TandemResult::Ok);
    }
    // SAFETY: initialised by poll_event.
    let req = unsafe { ev.assume_init() };
    assert_eq!(req.kind, TandemEventKind::Request);
    assert_eq!(req.request_kind, TandemRequestKind::Call);
    assert_eq!((req.module, req.method, req.deadline_ms), (100, 1, TANDEM_NO_DEADLINE));
    // SAFETY: the event's payload, passed straight back as the response.
    let r = unsafe { tandem_conn_respond(a.ptr, req.id, TANDEM_STATUS_OK, req.payload, req.payload_len) };
    assert_eq!(r, TandemResult::Ok);
    let (ed, ea) = pump(&d, &a, 3);
    assert!(ea.is_empty());
    assert_eq!(kinds(&ed), [TandemEventKind::Response]);
    assert_eq!((ed[0].raw.id, ed[0].raw.status, &ed[0].payload[..]), (id, TANDEM_STATUS_OK, &b"hello"[..]));

    // A notification refused with a status, a signal, and a call with a deadline.
    let mut nid = 0;
    let mut cid = 0;
    // SAFETY: live handles, readable payloads, writable ids.
    unsafe {
        assert_eq!(tandem_conn_notify(d.ptr, 4, 100, 5, b"n".as_ptr(), 1, 0, &mut nid), TandemResult::Ok);
        assert_eq!(tandem_conn_signal(d.ptr, 100, 5, b"s".as_ptr(), 1), TandemResult::Ok);
        assert_eq!(tandem_conn_call(d.ptr, 4, 100, 7, null(), 0, 1000, &mut cid), TandemResult::Ok);
    }
    let (_, ea) = pump(&d, &a, 4);
    assert_eq!(kinds(&ea), [TandemEventKind::Request, TandemEventKind::Signal, TandemEventKind::Request]);
    assert_eq!(ea[0].raw.request_kind, TandemRequestKind::Notify);
    assert_eq!((&ea[1].payload[..], ea[1].raw.module, ea[1].raw.method), (&b"s"[..], 100, 5));
    assert_eq!(ea[2].raw.deadline_ms, 1004);
    // SAFETY: live handle.
    let r = unsafe { tandem_conn_respond(a.ptr, ea[0].raw.id, TANDEM_STATUS_ABORTED, null(), 0) };
    assert_eq!(r, TandemResult::Ok);
    // The call's deadline passes: the dialer's timer says when.
    let (ed, _) = pump(&d, &a, 5);
    assert_eq!(kinds(&ed), [TandemEventKind::Response]);
    assert_eq!((ed[0].raw.id, ed[0].raw.status), (nid, TANDEM_STATUS_ABORTED));
    let mut at = 0;
    // SAFETY: live handle, writable deadline.
    assert_eq!(unsafe { tandem_conn_poll_timeout(d.ptr, &mut at) }, TandemResult::Ok);
    assert!(at <= 1004, "next timeout {at}");
    // SAFETY: live handle.
    assert_eq!(unsafe { tandem_conn_handle_timeout(d.ptr, 1004) }, TandemResult::Ok);
    let (ed, ea) = pump(&d, &a, 1004);
    assert_eq!(kinds(&ed), [TandemEventKind::Failed]);
    assert_eq!((ed[0].raw.id, ed[0].raw.status), (cid, TANDEM_STATUS_DEADLINE_EXCEEDED));
    assert_eq!(kinds(&ea), [TandemEventKind::Cancelled]);
    // SAFETY: live handle: the cancelled request is still answered, which frees it.
    let r = unsafe { tandem_conn_respond(a.ptr, ea[0].raw.id, TANDEM_STATUS_OK, null(), 0) };
    assert_eq!(r, TandemResult::Ok);

    // A stream: opened with a payload, one item, finished both ways.
    let mut sid = 0;
    // SAFETY: live handles, readable payloads.
    unsafe {
        assert_eq!(
            tandem_conn_open_stream(d.ptr, 6, 100, 9, b"init".as_ptr(), 4, 0, 0, &mut sid),
            TandemResult::Ok
        );
        assert_eq!(tandem_conn_stream_send(d.ptr, sid, b"item".as_ptr(), 4), TandemResult::Ok);
        assert_eq!(tandem_conn_stream_finish(d.ptr, sid, TANDEM_STATUS_OK), TandemResult::Ok);
    }
    let (_, ea) = pump(&d, &a, 6);
    assert_eq!(
        kinds(&ea),
        [TandemEventKind::Request, TandemEventKind::StreamData, TandemEventKind::StreamFin]
    );
    assert_eq!(ea[0].raw.request_kind, TandemRequestKind::Stream);
    assert_eq!((&ea[0].payload[..], &ea[1].payload[..]), (&b"init"[..], &b"item"[..]));
    let rid = ea[0].raw.id;
    // SAFETY: live handle.
    unsafe {
        assert_eq!(tandem_conn_stream_consumed(a.ptr, rid, 1, 4), TandemResult::Ok);
        assert_eq!(tandem_conn_stream_send(a.ptr, rid, b"back".as_ptr(), 4), TandemResult::Ok);
        assert_eq!(tandem_conn_stream_finish(a.ptr, rid, TANDEM_STATUS_OK), TandemResult::Ok);
    }
    let (ed, _) = pump(&d, &a, 7);
    assert_eq!(kinds(&ed), [TandemEventKind::StreamData, TandemEventKind::StreamFin]);
    assert_eq!(&ed[0].payload[..], b"back");

    // Misuse comes back as codes, and the connection carries on.
    // SAFETY: live handles.
    unsafe {
        assert_eq!(tandem_conn_respond(a.ptr, 12345, TANDEM_STATUS_OK, null(), 0), TandemResult::UnknownId);
        assert_eq!(
            tandem_conn_respond(d.ptr, 7, TANDEM_STATUS_OK, b"x".as_ptr(), 0),
            TandemResult::UnknownId
        );
        assert_eq!(tandem_conn_cancel(d.ptr, 999), TandemResult::UnknownId);
        assert_eq!(tandem_conn_call(d.ptr, 8, 1, 1, null(), 3, 0, &mut id), TandemResult::NullPointer);
        assert_eq!(tandem_conn_call(d.ptr, 8, 1, 1, null(), 0, 0, null_mut()), TandemResult::NullPointer);
        let big = vec![0u8; 20_000];
        assert_eq!(
            tandem_conn_call(d.ptr, 8, 1, 1, big.as_ptr(), big.len(), 0, &mut id),
            TandemResult::TooLarge
        );
        let mut name = null();
        let mut len = 0;
        assert_eq!(tandem_conn_peer_name(d.ptr, &mut name, &mut len), TandemResult::Ok);
        assert_eq!(len, 0, "the default config announces no name");
        let mut st = MaybeUninit::uninit();
        assert_eq!(tandem_conn_state(d.ptr, st.as_mut_ptr()), TandemResult::Ok);
        assert_eq!(st.assume_init(), TandemState::Open);
    }

    // GOAWAY with nothing in flight: no new exchanges, and the connection ends gracefully.
    // SAFETY: live handle; message readable.
    unsafe {
        assert_eq!(tandem_conn_go_away(a.ptr, 8, TANDEM_STATUS_OK, b"bye".as_ptr(), 3), TandemResult::Ok);
        // Nothing is in flight, so the draining connection is already closed.
        assert_eq!(tandem_conn_call(a.ptr, 8, 1, 1, null(), 0, 0, &mut id), TandemResult::Closed);
    }
    let (ed, ea) = pump(&d, &a, 8);
    assert_eq!(kinds(&ed), [TandemEventKind::GoAway, TandemEventKind::Closed]);
    assert_eq!(kinds(&ea), [TandemEventKind::Closed]);
    // SAFETY: live handles.
    unsafe {
        assert!(tandem_conn_is_finished(d.ptr));
        assert!(tandem_conn_is_finished(a.ptr));
        assert_eq!(tandem_conn_call(d.ptr, 9, 1, 1, null(), 0, 0, &mut id), TandemResult::Closed);
    }
}

#[test]
fn close_reaches_the_peer() {
    let (d, a) = connected_pair(false);
    let mut id = 0;
    // SAFETY: live handles; message readable.
    unsafe {
        assert_eq!(tandem_conn_call(d.ptr, 2, 100, 1, null(), 0, 0, &mut id), TandemResult::Ok);
        assert_eq!(
            tandem_conn_close(d.ptr, 2, TANDEM_STATUS_PERMISSION_DENIED, b"done".as_ptr(), 4),
            TandemResult::Ok
        );
    }
    let (ed, ea) = pump(&d, &a, 3);
    // The call in flight fails before the connection's last event.
    assert_eq!(kinds(&ed), [TandemEventKind::Failed, TandemEventKind::Closed]);
    assert_eq!((ed[0].raw.id, ed[0].raw.status), (id, TANDEM_STATUS_UNAVAILABLE));
    assert_eq!((ed[1].raw.blame, ed[1].raw.status), (TandemBlame::Local, TANDEM_STATUS_PERMISSION_DENIED));
    assert_eq!(*kinds(&ea).last().unwrap(), TandemEventKind::Closed);
    let last = ea.last().unwrap();
    assert_eq!((last.raw.blame, last.raw.status), (TandemBlame::PeerClosed, TANDEM_STATUS_PERMISSION_DENIED));
    // SAFETY: live handles.
    unsafe {
        assert!(tandem_conn_is_finished(d.ptr));
        assert!(tandem_conn_is_finished(a.ptr));
    }
}

#[test]
fn memory_size_alignment_and_too_small() {
    let c = config(false);
    let size = memory_size(&c);
    assert!(size > 4105 + 16384 + 16384, "{size}");
    // Every alignment of the memory works (the library aligns inside it).
    for offset in 0..16 {
        let d = Conn::new(&c, TANDEM_ROLE_DIALER, offset);
        let a = Conn::new(&c, TANDEM_ROLE_ACCEPTOR, 15 - offset);
        let (ed, _) = pump(&d, &a, 1);
        assert_eq!(kinds(&ed), [TandemEventKind::Connected]);
    }
    let mut block = vec![0u8; size];
    let mut out = null_mut();
    // SAFETY: `size - 1` writable bytes of ours.
    let r =
        unsafe { tandem_conn_init(block.as_mut_ptr().cast(), size - 1, &c, TANDEM_ROLE_DIALER, 0, &mut out) };
    assert_eq!(r, TandemResult::BufferTooSmall);
    assert!(out.is_null(), "nothing written on failure");
    // SAFETY: as above, with bad arguments.
    unsafe {
        let p = block.as_mut_ptr().cast();
        assert_eq!(tandem_conn_init(p, size, &c, 2, 0, &mut out), TandemResult::InvalidArgument);
        assert_eq!(tandem_conn_init(null_mut(), size, &c, 0, 0, &mut out), TandemResult::NullPointer);
        assert_eq!(tandem_conn_init(p, size, null(), 0, 0, &mut out), TandemResult::NullPointer);
        assert_eq!(tandem_conn_init(p, size, &c, 0, 0, null_mut()), TandemResult::NullPointer);
        assert_eq!(tandem_conn_memory_size(&c, null_mut()), TandemResult::NullPointer);
        assert_eq!(tandem_config_default(null_mut()), TandemResult::NullPointer);
    }
    // Bigger limits ask for more memory.
    let mut big = c;
    big.max_message_size *= 4;
    assert!(memory_size(&big) >= size + 3 * 16384);
}

#[test]
fn bad_handles_are_refused() {
    let c = config(false);
    let conn = Conn::new(&c, TANDEM_ROLE_DIALER, 0);
    let mut zeroed = vec![0u64; 4096];
    let mut n = 0;
    let mut buf = [0u8; 16];
    // SAFETY: every pointer is NULL, our own memory, or a live handle.
    unsafe {
        let fake = zeroed.as_mut_ptr().cast::<TandemConn>();
        assert_eq!(
            tandem_conn_poll_transmit(null_mut(), 0, buf.as_mut_ptr(), 16, &mut n),
            TandemResult::NullPointer
        );
        assert_eq!(tandem_conn_poll_transmit(fake, 0, buf.as_mut_ptr(), 16, &mut n), TandemResult::BadHandle);
        let misaligned = conn.ptr.cast::<u8>().add(1).cast::<TandemConn>();
        assert_eq!(tandem_conn_handle_timeout(misaligned, 0), TandemResult::BadHandle);
        assert!(tandem_conn_is_finished(null_mut()));
        assert!(tandem_conn_is_finished(fake));
        assert!(!tandem_conn_is_finished(conn.ptr));
        assert_eq!(tandem_conn_poll_transmit(conn.ptr, 0, null_mut(), 16, &mut n), TandemResult::NullPointer);
        assert_eq!(
            tandem_conn_poll_transmit(conn.ptr, 0, buf.as_mut_ptr(), 16, null_mut()),
            TandemResult::NullPointer
        );
        assert_eq!(tandem_conn_poll_event(conn.ptr, 0, null_mut()), TandemResult::NullPointer);
        assert_eq!(tandem_conn_poll_timeout(conn.ptr, null_mut()), TandemResult::NullPointer);
        let (mut name, mut len) = (null(), 0);
        assert_eq!(tandem_conn_peer_name(conn.ptr, &mut name, &mut len), TandemResult::NotConnected);
    }
    // A freed handle: its memory is still ours, and the library knows it is dead.
    let ptr = conn.ptr;
    let block = conn.block;
    std::mem::forget(conn);
    // SAFETY: live handle, freed once; then the dead handle (memory still allocated) is refused.
    unsafe {
        assert_eq!(tandem_conn_free(ptr), TandemResult::Ok);
        assert_eq!(tandem_conn_free(ptr), TandemResult::BadHandle);
        assert_eq!(tandem_conn_handle_timeout(ptr, 0), TandemResult::BadHandle);
        assert!(tandem_conn_is_finished(ptr));
        drop(Box::from_raw(block));
    }
}

#[test]
fn arguments_aliasing_the_connection_are_refused() {
    let (d, a) = connected_pair(false);
    let mut id = 0;
    // SAFETY: live handle, readable payload.
    let r = unsafe { tandem_conn_call(d.ptr, 2, 100, 1, b"abc".as_ptr(), 3, 0, &mut id) };
    assert_eq!(r, TandemResult::Ok);
    let mut tx = vec![0u8; 4096];
    let mut n = 0;
    let mut taken = 0;
    let mut ev = MaybeUninit::<TandemEvent>::uninit();
    // SAFETY: live handles; `tx` is ours; then pointers into the connection's own memory, which
    // the library must refuse without touching them.
    unsafe {
        assert_eq!(tandem_conn_poll_transmit(d.ptr, 2, tx.as_mut_ptr(), tx.len(), &mut n), TandemResult::Ok);
        assert_eq!(tandem_conn_input(a.ptr, 2, tx.as_ptr(), n, &mut taken), TandemResult::Ok);
        assert_eq!(tandem_conn_poll_event(a.ptr, 2, ev.as_mut_ptr()), TandemResult::Ok);
        let req = ev.assume_init();
        assert_eq!(req.payload_len, 3);
        // Input from the connection's own receive buffer.
        assert_eq!(tandem_conn_input(a.ptr, 2, req.payload, 3, &mut taken), TandemResult::InvalidArgument);
        // A payload that is the handle itself.
        let own = a.ptr.cast::<u8>().cast_const();
        assert_eq!(tandem_conn_respond(a.ptr, req.id, 0, own, 8), TandemResult::InvalidArgument);
        // A transmit buffer inside the connection (something is queued: the answer below).
        assert_eq!(tandem_conn_respond(a.ptr, req.id, 0, req.payload, 3), TandemResult::Ok);
        let inside = a.ptr.cast::<u8>();
        assert_eq!(tandem_conn_poll_transmit(a.ptr, 2, inside, 64, &mut n), TandemResult::InvalidArgument);
        // A commit without an offer, and one larger than the offer.
        assert_eq!(tandem_conn_recv_commit(a.ptr, 2, 1), TandemResult::InvalidArgument);
        let (mut p, mut cap) = (null_mut(), 0);
        assert_eq!(tandem_conn_recv_buffer(a.ptr, &mut p, &mut cap), TandemResult::Ok);
        assert_eq!(tandem_conn_recv_commit(a.ptr, 2, cap + 1), TandemResult::InvalidArgument);
        assert_eq!(tandem_conn_recv_buffer(a.ptr, &mut p, &mut cap), TandemResult::Ok);
        assert_eq!(tandem_conn_recv_commit(a.ptr, 2, 0), TandemResult::Ok);
    }
    // The refused calls changed nothing: the answer arrives.
    let (ed, _) = pump(&d, &a, 3);
    assert_eq!(kinds(&ed), [TandemEventKind::Response]);
    assert_eq!(&ed[0].payload[..], b"abc");
}

#[test]
fn timers_close_a_silent_connection() {
    let c = config(false);
    let d = Conn::new(&c, TANDEM_ROLE_DIALER, 0);
    let mut at = 0;
    // SAFETY: live handle.
    unsafe {
        assert_eq!(tandem_conn_poll_timeout(d.ptr, &mut at), TandemResult::Ok);
        assert_eq!(at, 10_000, "the handshake timeout");
        assert_eq!(tandem_conn_handle_timeout(d.ptr, at - 1), TandemResult::Ok);
    }
    assert_eq!(d.event(at - 1).raw.kind, TandemEventKind::None);
    // SAFETY: live handle.
    assert_eq!(unsafe { tandem_conn_handle_timeout(d.ptr, at) }, TandemResult::Ok);
    let e = d.event(at);
    assert_eq!(
        (e.raw.kind, e.raw.status, e.raw.blame),
        (TandemEventKind::Closed, TANDEM_STATUS_HANDSHAKE_TIMEOUT, TandemBlame::Transport)
    );
}

#[test]
fn config_check_names_the_field() {
    let check = |c: &TandemConfig| {
        let mut msg = [0xffu8; 160];
        // SAFETY: valid config, writable message buffer.
        let r = unsafe { tandem_config_check(c, msg.as_mut_ptr(), msg.len()) };
        let text =
            CStr::from_bytes_until_nul(&msg).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        (r, text)
    };
    let ok = config(false);
    assert_eq!(check(&ok).0, TandemResult::Ok);
    let mut c = ok;
    c.max_frame_size = 100;
    let (r, text) = check(&c);
    assert_eq!(r, TandemResult::InvalidConfig);
    assert_eq!(text, "invalid config: `max_frame_size` must be between 4096 and 16777216");
    let mut c = ok;
    c.transport = 9;
    assert_eq!(check(&c).0, TandemResult::InvalidArgument);
    // Datagram mode, with its reply cache and retained requests in the connection's memory.
    c.transport = TANDEM_TRANSPORT_DATAGRAM;
    c.max_datagram = 1200;
    assert_eq!(check(&c).0, TandemResult::Ok);
    let mut c = ok;
    c.transport = TANDEM_TRANSPORT_PACKET;
    c.max_datagram = 1000;
    assert!(check(&c).1.contains("transport.max_datagram"));
    let long = [b'n'; 300];
    let mut c = ok;
    c.name = long.as_ptr();
    c.name_len = 256;
    assert_eq!(
        check(&c),
        (TandemResult::InvalidConfig, "invalid config: `name_len` must be at most 255".into())
    );
    c.name_len = 255;
    assert_eq!(check(&c).0, TandemResult::Ok);
    c.name = null();
    assert_eq!(check(&c).0, TandemResult::NullPointer);
    // init and memory_size refuse what check refuses.
    let mut bad = ok;
    bad.max_tx_buffer = 10;
    let mut n = 0;
    // SAFETY: valid pointers.
    assert_eq!(unsafe { tandem_conn_memory_size(&bad, &mut n) }, TandemResult::InvalidConfig);
    // A short message buffer gets a truncated, NUL-terminated message.
    let mut msg = [0xffu8; 10];
    // SAFETY: valid config, writable 10 bytes.
    assert_eq!(unsafe { tandem_config_check(&bad, msg.as_mut_ptr(), 10) }, TandemResult::InvalidConfig);
    assert_eq!(&msg, b"invalid c\0");
    // SAFETY: a NULL config.
    assert_eq!(unsafe { tandem_config_check(null(), null_mut(), 0) }, TandemResult::NullPointer);
}

#[test]
fn every_result_has_a_message_and_a_status() {
    let mut seen = std::collections::HashSet::new();
    for (i, r) in TandemResult::ALL.iter().enumerate() {
        assert_eq!(*r as u32, i as u32, "codes are numbered in order");
        // SAFETY: the library returns static NUL-terminated strings.
        let msg = unsafe { CStr::from_ptr(tandem_result_message(i as u32)) }.to_str().expect("UTF-8");
        assert!(!msg.is_empty() && seen.insert(msg.to_owned()), "{r:?}: {msg}");
    }
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(tandem_result_message(999)) };
    assert_eq!(unknown.to_str(), Ok("unknown tandem_result value"));
    assert_eq!(tandem_result_status(TandemResult::Ok as u32), TANDEM_STATUS_OK);
    assert_eq!(tandem_result_status(TandemResult::TxFull as u32), TANDEM_STATUS_RESOURCE_EXHAUSTED);
    assert_eq!(tandem_result_status(TandemResult::Closed as u32), TANDEM_STATUS_UNAVAILABLE);
    assert_eq!(tandem_result_status(TandemResult::TooLarge as u32), TANDEM_STATUS_TOO_LARGE);
    assert_eq!(tandem_result_status(TandemResult::UnknownId as u32), TANDEM_STATUS_FAILED_PRECONDITION);
    assert_eq!(tandem_result_status(999), TANDEM_STATUS_INTERNAL);
}

#[test]
fn status_constants_match_the_core() {
    let ours = [
        ("OK", TANDEM_STATUS_OK),
        ("ACCEPTED", TANDEM_STATUS_ACCEPTED),
        ("FAILED", TANDEM_STATUS_FAILED),
        ("UNKNOWN_MODULE", TANDEM_STATUS_UNKNOWN_MODULE),
        ("UNKNOWN_METHOD", TANDEM_STATUS_UNKNOWN_METHOD),
        ("BAD_REQUEST", TANDEM_STATUS_BAD_REQUEST),
        ("BAD_PAYLOAD", TANDEM_STATUS_BAD_PAYLOAD),
        ("ENCODE_FAILED", TANDEM_STATUS_ENCODE_FAILED),
        ("CANCELLED", TANDEM_STATUS_CANCELLED),
        ("DEADLINE_EXCEEDED", TANDEM_STATUS_DEADLINE_EXCEEDED),
        ("RESOURCE_EXHAUSTED", TANDEM_STATUS_RESOURCE_EXHAUSTED),
        ("TOO_LARGE", TANDEM_STATUS_TOO_LARGE),
        ("UNAVAILABLE", TANDEM_STATUS_UNAVAILABLE),
        ("INVALID_ARGUMENT", TANDEM_STATUS_INVALID_ARGUMENT),
        ("NOT_FOUND", TANDEM_STATUS_NOT_FOUND),
        ("ALREADY_EXISTS", TANDEM_STATUS_ALREADY_EXISTS),
        ("PERMISSION_DENIED", TANDEM_STATUS_PERMISSION_DENIED),
        ("UNAUTHENTICATED", TANDEM_STATUS_UNAUTHENTICATED),
        ("FAILED_PRECONDITION", TANDEM_STATUS_FAILED_PRECONDITION),
        ("ABORTED", TANDEM_STATUS_ABORTED),
        ("OUT_OF_RANGE", TANDEM_STATUS_OUT_OF_RANGE),
        ("UNIMPLEMENTED", TANDEM_STATUS_UNIMPLEMENTED),
        ("INTERNAL", TANDEM_STATUS_INTERNAL),
        ("DATA_LOSS", TANDEM_STATUS_DATA_LOSS),
        ("UNKNOWN", TANDEM_STATUS_UNKNOWN),
        ("REPLY_EVICTED", TANDEM_STATUS_REPLY_EVICTED),
        ("SCHEMA_MISMATCH", TANDEM_STATUS_SCHEMA_MISMATCH),
        ("APPLICATION_ERROR", TANDEM_STATUS_APPLICATION_ERROR),
        ("PROTOCOL_ERROR", TANDEM_STATUS_PROTOCOL_ERROR),
        ("FRAME_ENCODING_ERROR", TANDEM_STATUS_FRAME_ENCODING_ERROR),
        ("FRAME_TOO_LARGE", TANDEM_STATUS_FRAME_TOO_LARGE),
        ("FLOW_CONTROL_ERROR", TANDEM_STATUS_FLOW_CONTROL_ERROR),
        ("LIMIT_EXCEEDED", TANDEM_STATUS_LIMIT_EXCEEDED),
        ("INCOMPATIBLE_VERSION", TANDEM_STATUS_INCOMPATIBLE_VERSION),
        ("IDLE_TIMEOUT", TANDEM_STATUS_IDLE_TIMEOUT),
        ("HANDSHAKE_TIMEOUT", TANDEM_STATUS_HANDSHAKE_TIMEOUT),
        ("ENHANCE_YOUR_CALM", TANDEM_STATUS_ENHANCE_YOUR_CALM),
        ("SESSION_EXPIRED", TANDEM_STATUS_SESSION_EXPIRED),
    ];
    let core: Vec<(&str, u32)> = Status::ALL.iter().map(|(s, name, _, _)| (*name, s.0)).collect();
    assert_eq!(ours.to_vec(), core, "c/src/status.rs must list every status of tandem_core::Status::ALL");
}
