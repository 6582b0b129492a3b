//! Datagram mode's bounded state without an allocator: each limit of the reply cache and the
//! retained requests has its specific error or the behaviour SPEC.md specifies when full, and the
//! storage is refused, naming the buffer, when it is too small. Runs against tandem-core built
//! with `serial` only (see this package's Cargo.toml).

use tandem_core::frame::{Decoded, Frame};
use tandem_core::{
    ApiError, Config, Connection, DatagramStorage, Event, Identity, Instant, MethodId, Role, Slot, Status,
    Storage, StorageBuffer, StorageError, Transport,
};

const M: MethodId = MethodId::new(3, 4);

fn config() -> Config {
    Config {
        transport: Transport::Datagram { max_datagram: 1200 },
        max_tx_buffer: 16 * 1024,
        max_outbound_calls: 8,
        reply_cache_entries: 2,
        reply_cache_bytes: 1024,
        max_retained_bytes: 100,
        ..Config::default()
    }
}

/// Buffers sized by the `const fn`s, leaked: each test builds a handful.
fn parts(c: &Config) -> (Storage<'static>, DatagramStorage<'static>) {
    let slots: Vec<Option<Slot>> = (0..Storage::slots_len(c)).map(|_| None).collect();
    (
        Storage {
            rx: vec![0; Storage::rx_len(c)].leak(),
            tx: vec![0; Storage::tx_len(c)].leak(),
            reassembly: vec![0; Storage::reassembly_len(c)].leak(),
            slots: slots.leak(),
        },
        DatagramStorage {
            replies: vec![0; Storage::replies_len(c)].leak(),
            retained: vec![0; Storage::retained_len(c)].leak(),
        },
    )
}

fn conn(role: Role) -> Connection<'static> {
    let c = config();
    let (s, d) = parts(&c);
    let me = Identity { name: b"dev", ..Identity::default() };
    Connection::with_datagram_storage(role, c, me, s, d, Instant::ZERO)
        .expect("storage sized by the const fns")
}

/// Every datagram `from` has queued.
fn drain(from: &mut Connection<'_>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1200];
    loop {
        let n = from.poll_transmit(Instant::ZERO, &mut buf);
        if n == 0 {
            return out;
        }
        out.push(buf[..n].to_vec());
    }
}

fn deliver(to: &mut Connection<'_>, datagrams: &[Vec<u8>]) {
    for d in datagrams {
        assert_eq!(to.handle_input(Instant::ZERO, d), d.len());
    }
}

/// Requests delivered by `c` (ids and payloads); everything else is dropped.
fn requests(c: &mut Connection<'_>) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(ev) = c.poll_event(Instant::ZERO) {
        if let Event::Request { id, payload, .. } = ev {
            out.push((id, payload.to_vec()));
        }
    }
    out
}

/// A connected pair (dialer, acceptor).
fn pair() -> (Connection<'static>, Connection<'static>) {
    let (mut a, mut b) = (conn(Role::Dialer), conn(Role::Acceptor));
    for _ in 0..3 {
        deliver(&mut b, &drain(&mut a));
        requests(&mut b);
        deliver(&mut a, &drain(&mut b));
        requests(&mut a);
    }
    assert_eq!((a.state(), b.state()), (tandem_core::State::Open, tandem_core::State::Open));
    (a, b)
}

/// The RESPONSE frames in `datagrams`: (id, status, payload).
fn responses(datagrams: &[Vec<u8>]) -> Vec<(u64, Status, Vec<u8>)> {
    let mut out = Vec::new();
    for d in datagrams {
        let mut off = 0;
        while let Ok(Decoded::Frame(f, n)) = Frame::decode(&d[off..], 1 << 20) {
            if let Frame::Response { id, status, payload, .. } = f {
                out.push((id, status, payload.to_vec()));
            }
            off += n;
        }
    }
    out
}

/// Whether the core was built with `alloc` (`cargo test --workspace` unifies it in; `cargo test
/// -p tandem-noalloc-tests` does not): only then does an acceptor offer a session token
/// (SPEC.md §13.2: without an allocator it cannot keep a session).
fn core_has_alloc() -> bool {
    // Frames leave room above messages: without `fragmentation` every message fits one frame.
    let c = Config { max_tx_buffer: 8192, max_frame_size: 4160, max_message_size: 4096, ..Config::default() };
    let (s, _) = parts(&c);
    let me = Identity { session: b"token", ..Identity::default() };
    let conn = Connection::with_storage(Role::Acceptor, c, me, s, Instant::ZERO).expect("stream storage");
    !conn.session_token().is_empty()
}

#[test]
fn undersized_datagram_storage_is_refused_naming_the_buffer() {
    let c = config();
    let me = Identity::default();
    // `with_storage` has no DatagramStorage: without an allocator the reply cache does not fit;
    // with one, datagram mode's state lives on the heap.
    let (s, _) = parts(&c);
    let res = Connection::with_storage(Role::Acceptor, c.clone(), me, s, Instant::ZERO);
    let needed = 1024 + 2 * Storage::RECORD_HEADER;
    if core_has_alloc() {
        assert!(res.is_ok(), "with alloc the state is on the heap: {:?}", res.err());
    } else {
        assert_eq!(
            res.err(),
            Some(StorageError::TooSmall { buffer: StorageBuffer::Replies, given: 0, needed }),
            "reply_cache_bytes + 32 x reply_cache_entries"
        );
    }
    let (s, d) = parts(&c);
    let short = DatagramStorage { replies: d.replies, retained: &mut d.retained[1..] };
    let err = Connection::with_datagram_storage(Role::Acceptor, c.clone(), me, s, short, Instant::ZERO).err();
    let needed = 100 + 8 * Storage::RECORD_HEADER;
    assert_eq!(
        err,
        Some(StorageError::TooSmall { buffer: StorageBuffer::Retained, given: needed - 1, needed })
    );
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("dgram.retained") && text.contains("Storage::retained_len"), "{text}");
}

#[test]
fn retained_requests_beyond_max_retained_bytes_are_refused_locally() {
    let (mut a, _b) = pair();
    a.call(Instant::ZERO, M, &[1; 60], None).expect("60 of 100 bytes");
    assert_eq!(a.call(Instant::ZERO, M, &[2; 41], None), Err(ApiError::RetainFull { limit: 100 }));
    a.call(Instant::ZERO, M, &[3; 40], None).expect("exactly 100 bytes");
    assert_eq!(a.retained_requests(), (2, 100));
}

#[test]
fn the_full_reply_cache_evicts_the_oldest_answer_and_answers_it_reply_evicted() {
    let (mut a, mut b) = pair();
    let mut calls = Vec::new();
    for k in 0..3u8 {
        a.call(Instant::ZERO, M, &[k; 10], None).expect("call");
        let d = drain(&mut a);
        deliver(&mut b, &d);
        calls.push(d);
    }
    for (id, payload) in requests(&mut b) {
        let mut answer = payload.clone();
        answer.push(0xAA);
        b.respond(id, Status::OK, &answer).expect("respond");
    }
    // The answers are lost (the caller never acknowledges them): the cache keeps two of three.
    drain(&mut b);
    assert_eq!(b.reply_cache_len().0, 2);
    assert_eq!(b.stats().replies_evicted, 1);
    // Retransmissions: the oldest is REPLY_EVICTED, the newest comes from the cache, unchanged;
    // no handler runs again.
    deliver(&mut b, &calls[0]);
    deliver(&mut b, &calls[2]);
    assert!(requests(&mut b).is_empty(), "a duplicate never reaches the handler");
    let r = responses(&drain(&mut b));
    assert_eq!(r.len(), 2, "{r:?}");
    assert_eq!((r[0].1, r[0].2.as_slice()), (Status::REPLY_EVICTED, &[][..]));
    assert_eq!((r[1].1, r[1].2.as_slice()), (Status::OK, &[2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0xAA][..]));
}
