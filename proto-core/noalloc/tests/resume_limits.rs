//! Session resumption with the session state in caller buffers (`with_session_storage`, SPEC.md
//! §13), against the core built without an allocator: undersized buffers are refused naming the
//! buffer; an acceptor offers a token exactly when it has a token and the buffers; a declined
//! resumption starts a new session in the same buffers; the grace period ends the session; a
//! full reply cache answers REPLY_EVICTED and a full retained buffer refuses with RetainFull (for
//! stream items too), as SPEC.md says. Under `cargo test --workspace` the core has `alloc` and
//! the state lives on the heap; the tests that depend on which say so.

use core::time::Duration;

use tandem_core::{
    ApiError, Config, Connection, ConnectionError, Event, Identity, Instant, MethodId, Role, SessionStorage,
    Slot, State, Status, Storage, StorageBuffer, StorageError,
};

const M: MethodId = MethodId::new(3, 4);
const TOKEN: &[u8] = b"an-unguessable-16+byte-token";

fn config() -> Config {
    Config {
        max_outbound_calls: 4,
        max_outbound_streams: 1,
        max_concurrent_calls: 4,
        max_concurrent_streams: 1,
        max_tx_buffer: 16 * 1024,
        reply_cache_entries: 2,
        reply_cache_bytes: 1024,
        max_retained_bytes: 100,
        session_grace: Duration::from_secs(2),
        ..Config::default()
    }
}

/// Leaked buffers sized by the `const fn`s (each test builds a handful).
fn parts(c: &Config) -> (Storage<'static>, SessionStorage<'static>) {
    let slots: Vec<Option<Slot>> = (0..Storage::slots_len(c)).map(|_| None).collect();
    (
        Storage {
            rx: vec![0; Storage::rx_len(c)].leak(),
            tx: vec![0; Storage::tx_len(c)].leak(),
            reassembly: vec![0; Storage::reassembly_len(c)].leak(),
            slots: slots.leak(),
        },
        SessionStorage {
            replies: vec![0; Storage::session_replies_len(c)].leak(),
            retained: vec![0; Storage::session_retained_len(c)].leak(),
        },
    )
}

fn conn(role: Role, c: &Config, token: &'static [u8]) -> Connection<'static> {
    let (s, d) = parts(c);
    let me = Identity { name: b"dev", session: token, ..Identity::default() };
    Connection::with_session_storage(role, c.clone(), me, s, d, Instant::ZERO)
        .expect("sized by the const fns")
}

/// Moves every byte both ways until nothing moves; returns the events of (a, b), as text.
fn drive(a: &mut Connection<'_>, b: &mut Connection<'_>, now: Instant) -> (Vec<String>, Vec<String>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..100 {
        let n = a.poll_transmit(now, &mut buf);
        let mut off = 0;
        while off < n {
            off += b.handle_input(now, &buf[off..n]);
            eb.extend(events(b, now));
        }
        let m = b.poll_transmit(now, &mut buf);
        let mut off = 0;
        while off < m {
            off += a.handle_input(now, &buf[off..m]);
            ea.extend(events(a, now));
        }
        ea.extend(events(a, now));
        eb.extend(events(b, now));
        if n == 0 && m == 0 {
            break;
        }
    }
    (ea, eb)
}

fn events(c: &mut Connection<'_>, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(e) = c.poll_event(now) {
        out.push(match e {
            Event::Request { id, payload, .. } => format!("Request({id}, {payload:?})"),
            Event::Response { id, status, payload } => format!("Response({id}, {status:?}, {payload:?})"),
            e => format!("{e:?}"),
        });
    }
    out
}

fn pair(c: &Config) -> (Connection<'static>, Connection<'static>) {
    let (mut a, mut b) = (conn(Role::Dialer, c, b""), conn(Role::Acceptor, c, TOKEN));
    let (ea, eb) = drive(&mut a, &mut b, Instant::ZERO);
    assert_eq!((ea, eb), (vec!["Connected".to_string()], vec!["Connected".to_string()]));
    assert!(a.is_resumable() && b.is_resumable());
    assert_eq!(a.session_token(), TOKEN);
    (a, b)
}

/// Both sides lose the transport (bytes in flight are gone).
fn cut(a: &mut Connection<'_>, b: &mut Connection<'_>, now: Instant) {
    let mut sink = vec![0u8; 64 * 1024];
    while a.poll_transmit(now, &mut sink) > 0 {}
    while b.poll_transmit(now, &mut sink) > 0 {}
    a.handle_eof(now);
    b.handle_eof(now);
    assert_eq!((events(a, now), events(b, now)), (vec![], vec![]), "a suspension reports nothing");
    assert_eq!((a.state(), b.state()), (State::Suspended, State::Suspended));
}

/// The dialer reconnects to a fresh acceptor connection (plain `with_storage`: it needs no
/// session buffers); returns it after its ResumeRequested.
fn reconnect(a: &mut Connection<'_>, c: &Config, now: Instant) -> Connection<'static> {
    a.reconnect(now).expect("reconnect");
    let (s, _) = parts(c);
    let me = Identity { name: b"fresh", session: b"fresh-token", ..Identity::default() };
    let mut f = Connection::with_storage(Role::Acceptor, c.clone(), me, s, now).expect("fresh");
    let mut buf = vec![0u8; 4096];
    let n = a.poll_transmit(now, &mut buf);
    assert_eq!(f.handle_input(now, &buf[..n]), n);
    assert_eq!(events(&mut f, now), vec![format!("ResumeRequested {{ token: {TOKEN:?} }}")]);
    f
}

#[test]
fn undersized_session_buffers_are_refused_naming_the_buffer() {
    let c = config();
    assert_eq!(
        Storage::session_replies_len(&c),
        1024 + 2 * Storage::RECORD_HEADER + 8 * Storage::owed_answers(&c)
    );
    assert_eq!(Storage::session_retained_len(&c), 100 + (4 + 1) * Storage::RECORD_HEADER);
    let me = Identity { session: TOKEN, ..Identity::default() };
    let (s, d) = parts(&c);
    let short = SessionStorage { replies: &mut d.replies[1..], retained: d.retained };
    let err = Connection::with_session_storage(Role::Acceptor, c.clone(), me, s, short, Instant::ZERO).err();
    let needed = Storage::session_replies_len(&c);
    assert_eq!(
        err,
        Some(StorageError::TooSmall { buffer: StorageBuffer::Replies, given: needed - 1, needed })
    );
    let (s, d) = parts(&c);
    let short = SessionStorage { replies: d.replies, retained: &mut d.retained[..10] };
    let err = Connection::with_session_storage(Role::Dialer, c.clone(), me, s, short, Instant::ZERO).err();
    let needed = Storage::session_retained_len(&c);
    assert_eq!(err, Some(StorageError::TooSmall { buffer: StorageBuffer::Retained, given: 10, needed }));
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("session_retained_len") && text.contains("max_outbound_streams"), "{text}");
    // No buffers at all: refused the same way, not silently without resumption.
    let (s, _) = parts(&c);
    let none = SessionStorage::default();
    let err = Connection::with_session_storage(Role::Acceptor, c, me, s, none, Instant::ZERO).err();
    assert!(matches!(err, Some(StorageError::TooSmall { buffer: StorageBuffer::Replies, given: 0, .. })));
}

#[test]
fn an_acceptor_offers_a_token_exactly_with_a_token_and_buffers() {
    let c = config();
    // Buffers, no token: no resumption.
    let (mut a, mut b) = (conn(Role::Dialer, &c, b""), conn(Role::Acceptor, &c, b""));
    drive(&mut a, &mut b, Instant::ZERO);
    assert!(a.session_token().is_empty() && !a.is_resumable() && !b.is_resumable());
    assert_eq!(
        a.reconnect(Instant::ZERO),
        Err(ApiError::WrongState("the session is not resumable (the acceptor gave no token)"))
    );
    // A token and buffers: resumption.
    let (a, b) = pair(&c);
    assert!(a.is_resumable() && b.is_resumable());
    // A token but no session buffers (`with_storage`): without `alloc` the token is not sent.
    let (s, _) = parts(&c);
    let me = Identity { session: TOKEN, ..Identity::default() };
    let mut b = Connection::with_storage(Role::Acceptor, c.clone(), me, s, Instant::ZERO).unwrap();
    let mut a = conn(Role::Dialer, &c, b"");
    drive(&mut a, &mut b, Instant::ZERO);
    let heap = !b.session_token().is_empty();
    assert_eq!(a.is_resumable(), heap, "with `alloc` the state goes on the heap instead");
    assert_eq!(a.session_token().is_empty(), !heap);
}

#[test]
fn calls_survive_a_cut_and_the_full_reply_cache_answers_reply_evicted() {
    let c = config();
    let (mut a, mut b) = pair(&c);
    let now = Instant::ZERO;
    let ids: Vec<u64> = (0..3u8).map(|k| a.call(now, M, &[k; 8], None).unwrap()).collect();
    let (_, eb) = drive(&mut a, &mut b, now);
    assert_eq!(eb.len(), 3);
    for (k, id) in ids.iter().enumerate() {
        b.respond(*id, Status::OK, &[k as u8 + 10; 4]).unwrap();
    }
    // The answers are lost with the transport; the cache (2 entries) kept the newest two.
    cut(&mut a, &mut b, now);
    assert_eq!(b.reply_cache_len(), (2, 8));
    assert_eq!(b.stats().replies_evicted, 1);
    let mut f = reconnect(&mut a, &c, now);
    b.resume_from(now, &mut f).expect("resume_from");
    assert!(f.is_finished());
    let (ea, eb) = drive(&mut a, &mut b, now);
    assert!(eb.is_empty(), "no handler runs again: {eb:?}");
    assert_eq!(
        ea,
        vec![
            format!("Response({}, REPLY_EVICTED(25), [])", ids[0]),
            format!("Response({}, OK(0), [11, 11, 11, 11])", ids[1]),
            format!("Response({}, OK(0), [12, 12, 12, 12])", ids[2]),
        ]
    );
    assert_eq!(a.retained_requests(), (0, 0));
    assert_eq!(a.stats().resumptions, 1);
}

#[test]
fn the_full_retained_buffer_refuses_calls_and_stream_items_with_retain_full() {
    let c = config();
    let (mut a, mut b) = pair(&c);
    let now = Instant::ZERO;
    a.call(now, M, &[1; 60], None).unwrap();
    assert_eq!(a.call(now, M, &[2; 41], None), Err(ApiError::RetainFull { limit: 100 }));
    let id = a.open_stream(now, M, &[3; 20], None, false).unwrap();
    assert_eq!(a.retained_requests(), (2, 80));
    drive(&mut a, &mut b, now);
    // Items are kept until the peer confirms them; without `alloc` they share the buffer.
    a.stream_send(id, &[4; 15]).unwrap();
    let r = a.stream_send(id, &[5; 10]);
    let heap = r.is_ok();
    if !heap {
        assert_eq!(r, Err(ApiError::RetainFull { limit: 100 }));
        // The acceptor consumes the item: its credit confirms it, room comes back, and the
        // stream is told it may send again.
        let (ea, eb) = drive(&mut a, &mut b, now);
        assert_eq!(eb, vec![format!("StreamData {{ id: {id}, payload: {:?} }}", [4u8; 15])]);
        assert!(ea.is_empty());
        b.stream_consumed(id, 1, 15).unwrap();
        let (ea, _) = drive(&mut a, &mut b, now);
        assert_eq!(ea, vec![format!("StreamWritable {{ id: {id} }}")]);
        a.stream_send(id, &[5; 10]).expect("room again");
    }
    // A cut: the unconfirmed item is retransmitted after STREAM_RESUME, exactly once.
    cut(&mut a, &mut b, now);
    let mut f = reconnect(&mut a, &c, now);
    b.resume_from(now, &mut f).unwrap();
    let (_, eb) = drive(&mut a, &mut b, now);
    let want = if heap {
        vec![
            format!("StreamData {{ id: {id}, payload: {:?} }}", [4u8; 15]),
            format!("StreamData {{ id: {id}, payload: {:?} }}", [5u8; 10]),
        ]
    } else {
        vec![format!("StreamData {{ id: {id}, payload: {:?} }}", [5u8; 10])]
    };
    assert_eq!(eb, want);
}

#[test]
fn a_declined_resumption_starts_a_new_session_in_the_same_buffers() {
    let c = config();
    let (mut a, mut b) = pair(&c);
    let now = Instant::ZERO;
    let old = a.call(now, M, &[7; 30], None).unwrap();
    drive(&mut a, &mut b, now);
    cut(&mut a, &mut b, now);
    assert_eq!(a.retained_requests(), (1, 30));
    // The acceptor lost the session (say it rebooted): a new acceptor with a new token and its
    // own buffers declines; the dialer's old exchanges fail UNAVAILABLE.
    #[allow(clippy::drop_non_drop)] // without `alloc` a Connection has no Drop: `b` is just gone
    drop(b);
    a.reconnect(now).unwrap();
    let mut b2 = conn(Role::Acceptor, &c, b"a-second-unguessable-token");
    let mut buf = vec![0u8; 4096];
    let n = a.poll_transmit(now, &mut buf);
    assert_eq!(b2.handle_input(now, &buf[..n]), n);
    assert!(matches!(b2.poll_event(now), Some(Event::ResumeRequested { token: TOKEN })));
    b2.decline_resume(now).unwrap();
    let (ea, eb) = drive(&mut a, &mut b2, now);
    assert_eq!(ea, vec!["Connected".to_string(), format!("Failed {{ id: {old}, status: UNAVAILABLE(12) }}")]);
    assert_eq!(eb, vec!["Connected".to_string()]);
    // The dialer's buffers were reset in place: empty, and the new session resumes.
    assert_eq!((a.retained_requests(), a.session_token()), ((0, 0), &b"a-second-unguessable-token"[..]));
    assert!(a.is_resumable() && b2.is_resumable());
    let id = a.call(now, M, &[8; 100], None).expect("the whole max_retained_bytes is free again");
    drive(&mut a, &mut b2, now);
    b2.respond(id, Status::OK, b"ok").unwrap();
    cut(&mut a, &mut b2, now);
    a.reconnect(now).unwrap();
    let (s, _) = parts(&c);
    let me = Identity { session: b"x", ..Identity::default() };
    let mut f = Connection::with_storage(Role::Acceptor, c.clone(), me, s, now).unwrap();
    let n = a.poll_transmit(now, &mut buf);
    assert_eq!(f.handle_input(now, &buf[..n]), n);
    assert!(matches!(f.poll_event(now), Some(Event::ResumeRequested { .. })));
    b2.resume_from(now, &mut f).unwrap();
    let (ea, _) = drive(&mut a, &mut b2, now);
    assert_eq!(ea, vec![format!("Response({id}, OK(0), [111, 107])")]);
}

#[test]
fn the_session_expires_after_the_grace_period() {
    let c = config();
    let (mut a, mut b) = pair(&c);
    let now = Instant::ZERO;
    let id = a.call(now, M, b"late", None).unwrap();
    drive(&mut a, &mut b, now);
    cut(&mut a, &mut b, now);
    let later = now + Duration::from_millis(2001);
    for conn in [&mut a, &mut b] {
        assert!(conn.poll_timeout().is_some_and(|t| t <= later));
        conn.handle_timeout(later);
    }
    assert_eq!(
        events(&mut a, later),
        vec![
            format!("Failed {{ id: {id}, status: UNAVAILABLE(12) }}"),
            format!("Closed({:?})", ConnectionError::SessionExpired)
        ]
    );
    assert_eq!(
        events(&mut b, later),
        vec![
            format!("Cancelled {{ id: {id}, status: UNAVAILABLE(12) }}"),
            format!("Closed({:?})", ConnectionError::SessionExpired)
        ]
    );
    assert_eq!(a.reconnect(later), Err(ApiError::Closed));
}

/// Every frame in `bytes` (whole frames, as `poll_transmit` gives them).
fn frames(bytes: &[u8]) -> Vec<tandem_core::frame::Frame<'_>> {
    use tandem_core::frame::{Decoded, Frame};
    let (mut out, mut off) = (Vec::new(), 0);
    while off < bytes.len() {
        match Frame::decode(&bytes[off..], 1 << 24) {
            Ok(Decoded::Frame(f, n)) => {
                out.push(f);
                off += n;
            }
            other => panic!("undecodable output at {off}: {other:?}"),
        }
    }
    out
}

/// Feeds one frame, encoded, to `c` (a hostile peer writing raw frames); returns the events
/// (input is parsed as events are polled).
fn inject(c: &mut Connection<'_>, now: Instant, f: &tandem_core::frame::Frame<'_>) -> Vec<String> {
    let mut buf = vec![0u8; f.encoded_len()];
    let n = f.encode(&mut buf).expect("encodes");
    let mut off = 0;
    while off < n {
        let k = c.handle_input(now, &buf[off..n]);
        assert!(k > 0, "input stalled at {off} of {n} bytes (state {:?})", c.state());
        off += k;
    }
    events(c, now)
}

fn call_frame(id: u64) -> tandem_core::frame::Frame<'static> {
    tandem_core::frame::Frame::Call(tandem_core::frame::Request {
        flags: 0,
        id,
        module: M.module,
        method: M.method,
        budget_us: 0,
        total_len: None,
        payload: b"",
    })
}

/// SPEC.md §13.5 and §11: in a resumed connection whose transmit queue is full (the peer does not
/// read), at most `Storage::owed_answers` = `max_concurrent_calls + max_concurrent_streams + 16`
/// answers to retransmissions wait — in the `replies` buffer without `alloc`, on the heap with
/// it, the same bound — and the retransmission that would make one more wait closes the
/// connection with ENHANCE_YOUR_CALM.
#[test]
fn answers_owed_to_retransmissions_are_bounded_by_the_configuration() {
    for (calls, streams) in [(4, 1), (9, 0)] {
        let c = Config {
            max_concurrent_calls: calls,
            max_concurrent_streams: streams,
            max_frame_size: 4096,
            max_tx_buffer: 4096,
            ..config()
        };
        let cap = Storage::owed_answers(&c);
        assert_eq!(cap, (calls + streams + 16) as usize);
        assert_eq!(Storage::session_owed_len(&c), 8 * cap);
        assert_eq!(
            Storage::session_replies_len(&c),
            1024 + 2 * Storage::RECORD_HEADER + Storage::session_owed_len(&c)
        );
        let now = Instant::ZERO;
        let (mut a, mut b) = pair(&c);
        // The hostile dialer opens id 4000 behind its own connection's back (ids may skip), so
        // that every lower id of its parity counts as a retransmission after the resumption.
        assert_eq!(inject(&mut b, now, &call_frame(4000)), vec!["Request(4000, [])".to_string()]);
        b.respond(4000, Status::OK, b"").unwrap();
        cut(&mut a, &mut b, now);
        let mut f = reconnect(&mut a, &c, now);
        b.resume_from(now, &mut f).expect("resume_from");
        drive(&mut a, &mut b, now);
        assert_eq!(b.state(), State::Open);
        // Now it retransmits ids it never sent and never reads: each is answered REPLY_EVICTED
        // while the transmit queue has room, then owed.
        let (mut sent, mut ev) = (0u64, Vec::new());
        while b.state() == State::Open && sent < 2000 {
            ev.extend(inject(&mut b, now, &call_frame(2 * sent)));
            sent += 1;
        }
        let mut out = vec![0u8; 64 * 1024];
        let n = b.poll_transmit(now, &mut out);
        let fs = frames(&out[..n]);
        let answered = fs
            .iter()
            .filter(|f| {
                matches!(f, tandem_core::frame::Frame::Response { status, .. } if *status == Status::REPLY_EVICTED)
            })
            .count() as u64;
        // The violation replaces what was queued by the CLOSE, and nothing follows it (not the
        // owed answers either).
        assert_eq!(answered, 0, "{fs:?}");
        let last = fs.last().copied();
        assert!(
            matches!(last, Some(tandem_core::frame::Frame::Close { status: Status::ENHANCE_YOUR_CALM, .. }))
                && fs.len() == 1,
            "{fs:?}"
        );
        // Where it closed: the answers that fitted the queue (REPLY_EVICTED responses, each
        // as long as it encodes), then exactly `cap` owed, then one more.
        let (mut fitted, mut bytes) = (0u64, 0usize);
        loop {
            let r = tandem_core::frame::Frame::Response {
                flags: 0,
                id: 2 * fitted,
                status: Status::REPLY_EVICTED,
                total_len: None,
                payload: b"",
            };
            if bytes + r.encoded_len() > c.max_tx_buffer as usize {
                break;
            }
            bytes += r.encoded_len();
            fitted += 1;
        }
        assert!(fitted > 100, "{fitted}");
        assert_eq!(sent, fitted + cap as u64 + 1, "closed at exactly the bound");
        ev.extend(events(&mut b, now));
        let ev = ev.join(" ");
        assert!(
            ev.contains("ENHANCE_YOUR_CALM") || ev.contains("EnhanceYourCalm") || ev.contains("72"),
            "{ev}"
        );
    }
}

/// SPEC.md §13.6: after a resumption the dialer acknowledges again the last 32 ids it
/// acknowledged on the lost transport (with and without `alloc`), no more.
#[test]
fn the_last_32_acknowledged_ids_are_acknowledged_again_after_a_resumption() {
    let c = config();
    let (mut a, mut b) = pair(&c);
    let mut now = Instant::ZERO;
    let mut ids = Vec::new();
    for round in 0..12u8 {
        let batch: Vec<u64> = (0..4u8).map(|k| a.call(now, M, &[round, k], None).unwrap()).collect();
        drive(&mut a, &mut b, now);
        for id in &batch {
            b.respond(*id, Status::OK, b"ok").unwrap();
        }
        drive(&mut a, &mut b, now);
        ids.extend(batch);
        // Past the ACK delay: the ACK for this batch goes out.
        now = now + Duration::from_millis(150);
        let _ = a.poll_timeout();
        a.handle_timeout(now);
        drive(&mut a, &mut b, now);
    }
    assert_eq!(ids.len(), 48);
    assert_eq!(b.reply_cache_len().0, 0, "every answer was acknowledged");
    cut(&mut a, &mut b, now);
    let mut f = reconnect(&mut a, &c, now);
    b.resume_from(now, &mut f).expect("resume_from");
    // The resumed handshake, then what the dialer sends: collect its ACKed ids.
    let mut acked = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..20 {
        now = now + Duration::from_millis(150);
        a.handle_timeout(now);
        b.handle_timeout(now);
        let n = a.poll_transmit(now, &mut buf);
        for fr in frames(&buf[..n]) {
            if let tandem_core::frame::Frame::Ack(ack) = fr {
                for (first, k) in ack.iter() {
                    acked.extend((0..k).map(|j| first + 2 * j));
                }
            }
        }
        assert_eq!(b.handle_input(now, &buf[..n]), n);
        let m = b.poll_transmit(now, &mut buf);
        assert_eq!(a.handle_input(now, &buf[..m]), m);
        events(&mut a, now);
        events(&mut b, now);
    }
    acked.sort_unstable();
    assert_eq!(acked, ids[ids.len() - 32..].to_vec());
}
