//! A peer built without the core's `streams` and `fragmentation` features (SPEC.md §7.4.7,
//! §9.7), over a byte stream, driven by hand-made frames: what it announces, what it answers
//! and refuses, and that refusals leave the connection open.
//!
//! `cargo test -p tandem-noalloc-tests --test lean` builds the core exactly as this package names
//! it (`serial` only: no streams, no fragmentation, no allocator). Under `cargo test --workspace`
//! the other members' features are unified in, and each test checks the full build's behaviour
//! instead (`tandem_core::config::STREAMS`, `FRAGMENTATION` say which build runs).

use tandem_core::config::{param, FRAGMENTATION, STREAMS, UNFRAGMENTED_HEADROOM};
use tandem_core::frame::{flags, Decoded, Frame, Hello, Params, Request};
use tandem_core::{
    ApiError, Config, Connection, ConnectionError, Event, Identity, Instant, MethodId, RequestKind, Role,
    Slot, Status, Storage,
};

const M: MethodId = MethodId::new(3, 4);

/// Frames and messages small enough for a build without fragmentation: every message fits one
/// frame with [`UNFRAGMENTED_HEADROOM`] to spare.
fn config() -> Config {
    Config {
        max_frame_size: 4096 + UNFRAGMENTED_HEADROOM,
        max_message_size: 4096,
        max_concurrent_calls: 4,
        max_concurrent_streams: 4,
        max_outbound_calls: 4,
        max_outbound_streams: 4,
        max_tx_buffer: 256 * 1024,
        ..Config::default()
    }
}

/// An acceptor in leaked caller storage sized by the core's `const fn`s.
fn acceptor(c: Config) -> Connection<'static> {
    let slots: Vec<Option<Slot>> = (0..Storage::slots_len(&c)).map(|_| None).collect();
    let storage = Storage {
        rx: vec![0; Storage::rx_len(&c)].leak(),
        tx: vec![0; Storage::tx_len(&c)].leak(),
        reassembly: vec![0; Storage::reassembly_len(&c)].leak(),
        slots: slots.leak(),
    };
    let me = Identity { name: b"dev", ..Identity::default() };
    Connection::with_storage(Role::Acceptor, c, me, storage, Instant::ZERO)
        .expect("storage sized by the const fns")
}

fn encode(f: &Frame<'_>) -> Vec<u8> {
    let mut out = vec![0u8; f.encoded_len()];
    assert_eq!(f.encode(&mut out), Some(out.len()));
    out
}

/// Every frame `c` has queued, decoded and copied out as `(type, id-ish, status, payload)`.
#[derive(Debug, PartialEq, Eq)]
enum Out {
    Hello { max_message_size: Option<u64>, max_concurrent_streams: Option<u64> },
    Response { id: u64, status: Status, payload: Vec<u8> },
    StreamReset { id: u64, status: Status },
    Close { status: Status },
    Other,
}

fn sent(c: &mut Connection<'_>) -> Vec<Out> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = c.poll_transmit(Instant::ZERO, &mut buf);
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
    }
    let mut out = Vec::new();
    let mut off = 0;
    while let Ok(Decoded::Frame(f, n)) = Frame::decode(&bytes[off..], 1 << 20) {
        out.push(match f {
            Frame::Hello(h) => Out::Hello {
                max_message_size: h.params.get(param::MAX_MESSAGE_SIZE),
                max_concurrent_streams: h.params.get(param::MAX_CONCURRENT_STREAMS),
            },
            Frame::Response { id, status, payload, .. } => {
                Out::Response { id, status, payload: payload.to_vec() }
            }
            Frame::StreamReset { id, status } => Out::StreamReset { id, status },
            Frame::Close { status, .. } => Out::Close { status },
            _ => Out::Other,
        });
        off += n;
    }
    assert_eq!(off, bytes.len(), "the connection queued a partial frame");
    out
}

/// A request delivered: id, kind, payload.
type Req = (u64, RequestKind, Vec<u8>);

/// Events of `c`: requests and the close, if any.
fn events(c: &mut Connection<'_>) -> (Vec<Req>, Option<ConnectionError>) {
    let (mut reqs, mut closed) = (Vec::new(), None);
    while let Some(ev) = c.poll_event(Instant::ZERO) {
        match ev {
            Event::Request { id, kind, payload, .. } => reqs.push((id, kind, payload.to_vec())),
            Event::Closed(e) => closed = Some(e),
            _ => {}
        }
    }
    (reqs, closed)
}

fn feed(c: &mut Connection<'_>, f: &Frame<'_>) {
    let b = encode(f);
    assert_eq!(c.handle_input(Instant::ZERO, &b), b.len());
}

/// An acceptor after the handshake with a hand-made dialer that announced defaults; returns it
/// and the HELLO it answered with.
fn connected() -> (Connection<'static>, Out) {
    let mut c = acceptor(config());
    let mut pbuf = [0u8; 64];
    let params = Params::encode_into(&[], &mut pbuf).unwrap();
    let hello =
        Hello { min_version: 1, max_version: 1, flags: 0, name: b"raw", auth: b"", session: b"", params };
    feed(&mut c, &Frame::Hello(hello));
    let (reqs, closed) = events(&mut c);
    assert!(reqs.is_empty() && closed.is_none());
    let mut out = sent(&mut c);
    assert_eq!(out.len(), 1, "{out:?}");
    (c, out.remove(0))
}

fn request(id: u64, payload: &[u8]) -> Request<'_> {
    Request { flags: 0, id, module: M.module, method: M.method, budget_us: 0, total_len: None, payload }
}

/// What the peer announces: no streams and a message limit that fits one frame without the
/// features; the configured values with them.
#[test]
fn hello_announces_what_the_build_can_receive() {
    let (_, hello) = connected();
    let streams = if STREAMS { 4 } else { 0 };
    assert_eq!(hello, Out::Hello { max_message_size: Some(4096), max_concurrent_streams: Some(streams) });
    assert_eq!(config().params()[3], (param::MAX_CONCURRENT_STREAMS, streams));
}

/// A STREAM_OPEN is refused with STREAM_RESET(UNIMPLEMENTED) and no state; later frames of that
/// stream are ignored, and the connection goes on serving calls. A stream frame for an id that
/// was never opened is still a PROTOCOL_ERROR (SPEC.md §6.4).
#[test]
fn stream_open_is_refused_and_the_connection_carries_on() {
    let (mut c, _) = connected();
    feed(&mut c, &Frame::StreamOpen(request(2, b"open")));
    let (reqs, closed) = events(&mut c);
    assert!(closed.is_none());
    if STREAMS {
        assert_eq!(reqs, vec![(2, RequestKind::Stream { half_closed: false }, b"open".to_vec())]);
        return;
    }
    assert!(reqs.is_empty());
    assert_eq!(sent(&mut c), vec![Out::StreamReset { id: 2, status: Status::UNIMPLEMENTED }]);
    // Items and the end of the refused stream, in flight when it was refused: ignored.
    feed(&mut c, &Frame::StreamData { flags: 0, id: 2, total_len: None, payload: b"item" });
    feed(&mut c, &Frame::StreamCredit { id: 2, msgs: 1, bytes: 10 });
    feed(&mut c, &Frame::StreamFin { id: 2, status: Status::OK });
    feed(&mut c, &Frame::StreamReset { id: 2, status: Status::CANCELLED });
    let (reqs, closed) = events(&mut c);
    assert!(reqs.is_empty() && closed.is_none());
    assert_eq!(sent(&mut c), vec![]);
    // The connection still serves calls.
    feed(&mut c, &Frame::Call(request(4, b"ping")));
    let (reqs, closed) = events(&mut c);
    assert_eq!(reqs, vec![(4, RequestKind::Call, b"ping".to_vec())]);
    assert!(closed.is_none());
    c.respond(4, Status::OK, b"pong").unwrap();
    assert_eq!(sent(&mut c), vec![Out::Response { id: 4, status: Status::OK, payload: b"pong".to_vec() }]);
    // An id never opened: PROTOCOL_ERROR, as in every build.
    feed(&mut c, &Frame::StreamData { flags: 0, id: 40, total_len: None, payload: b"x" });
    let (_, closed) = events(&mut c);
    assert!(
        matches!(closed, Some(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. })),
        "{closed:?}"
    );
}

/// Opening a stream is refused locally with `Unsupported` (status UNIMPLEMENTED).
#[test]
fn open_stream_is_unsupported() {
    let (mut c, _) = connected();
    let r = c.open_stream(Instant::ZERO, M, b"", None, false);
    if STREAMS {
        assert!(r.is_ok(), "{r:?}");
    } else {
        let e = r.unwrap_err();
        assert!(matches!(e, ApiError::Unsupported(_)), "{e:?}");
        assert_eq!(e.status(), Status::UNIMPLEMENTED);
        assert!(e.to_string().contains("`streams` feature"), "{e}");
    }
}

/// Without fragmentation the configuration must leave one frame room for every message; the
/// error says what to change.
#[test]
fn config_must_fit_messages_in_one_frame() {
    let tight = Config { max_frame_size: 4096, max_message_size: 4096, ..Config::default() };
    let r = tight.validate();
    if FRAGMENTATION {
        assert_eq!(r, Ok(()));
        assert!(Config::default().validate().is_ok());
    } else {
        let e = r.unwrap_err();
        assert_eq!(e.field, "max_message_size");
        assert!(e.to_string().contains("`fragmentation` feature"), "{e}");
        assert!(Config::default().validate().is_err());
        assert_eq!(Storage::reassembly_len(&config()), 0);
    }
    assert_eq!(config().validate(), Ok(()));
}

/// A fragmented message is LIMIT_EXCEEDED on its first frame (the peer announced limits under
/// which every message fits one frame); a CONTINUATION with no message in progress is
/// PROTOCOL_ERROR. With fragmentation the message is reassembled and delivered.
#[test]
fn fragmented_message_is_refused() {
    let (mut c, _) = connected();
    let first = Request { flags: flags::MORE, total_len: Some(6), ..request(2, b"abc") };
    feed(&mut c, &Frame::Call(first));
    feed(&mut c, &Frame::Continuation { flags: 0, id: 2, payload: b"def" });
    let (reqs, closed) = events(&mut c);
    if FRAGMENTATION {
        assert_eq!(reqs, vec![(2, RequestKind::Call, b"abcdef".to_vec())]);
        assert!(closed.is_none());
    } else {
        assert!(reqs.is_empty());
        assert!(
            matches!(closed, Some(ConnectionError::Violation { status: Status::LIMIT_EXCEEDED, .. })),
            "{closed:?}"
        );
        assert!(sent(&mut c).contains(&Out::Close { status: Status::LIMIT_EXCEEDED }));
    }

    let (mut c, _) = connected();
    feed(&mut c, &Frame::Continuation { flags: 0, id: 2, payload: b"def" });
    let (_, closed) = events(&mut c);
    assert!(
        matches!(closed, Some(ConnectionError::Violation { status: Status::PROTOCOL_ERROR, .. })),
        "{closed:?}"
    );
}

/// A message that does not fit one frame of the peer is refused locally with `TooLarge` (the
/// limit names the largest payload that fits); with fragmentation it is sent in pieces.
#[test]
fn large_message_is_refused_locally_without_fragmentation() {
    // The hand-made dialer announced defaults: 65536-byte frames, 4 MiB messages.
    let (mut c, _) = connected();
    let big = vec![7u8; 70_000];
    let r = c.call(Instant::ZERO, M, &big, None);
    if FRAGMENTATION {
        assert!(r.is_ok(), "{r:?}");
    } else {
        match r {
            Err(ApiError::TooLarge { size, limit }) => {
                assert_eq!(size, 70_000);
                assert!(limit < 65_536 && limit > 65_000, "{limit}");
            }
            other => panic!("{other:?}"),
        }
        // What fits one frame goes.
        assert!(c.call(Instant::ZERO, M, &big[..60_000], None).is_ok());
    }
}
