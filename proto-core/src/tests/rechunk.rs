//! Re-chunked replays: a recorded client's bytes fed to a fresh acceptor in chunks of any size,
//! through the receive buffer or by direct receive of stream payloads, always produce the same
//! events, the same output and the same counters.

use super::limits::T0;
use super::pair::{Ev, Rng, ECHO, SINK};
use super::props::{ident, qc};
use crate::{Config, Connection, DirectRead, RequestKind, Role, State, Status};
use quickcheck::TestResult;
use std::vec::Vec;

/// A real client's bytes (from its HELLO on) for a seeded mix of calls, notifications, signals,
/// streams with items, cancels and resets, with messages large enough to be fragmented.
fn record_client(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let now = T0;
    let mut client = Connection::new(Role::Dialer, Config::default(), ident(), now).unwrap();
    let mut server = Connection::new(Role::Acceptor, Config::default(), ident(), now).unwrap();
    let mut rec = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pump = |from: &mut Connection<'_>, to: &mut Connection<'_>, rec: Option<&mut Vec<u8>>| {
        let mut all = Vec::new();
        loop {
            let n = from.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        let mut rest = &all[..];
        while !rest.is_empty() {
            let n = to.handle_input(now, rest);
            rest = &rest[n..];
            while to.poll_event(now).is_some() {}
        }
        if let Some(r) = rec {
            r.extend_from_slice(&all);
        }
    };
    pump(&mut client, &mut server, Some(&mut rec));
    pump(&mut server, &mut client, None);
    assert_eq!(client.state(), State::Open, "seed {seed}");
    let big: Vec<u8> = (0..150_000u32).map(|i| (i % 253) as u8).collect();
    let size = |r: &mut Rng| match r.below(20) {
        0 => 65_000 + r.below(60_000) as usize,
        1..=3 => 100 + r.below(5_000) as usize,
        _ => r.below(100) as usize,
    };
    let mut calls = Vec::new();
    let mut streams = Vec::new();
    let mut pings = 0;
    for _ in 0..(10 + rng.below(40)) {
        match rng.below(12) {
            0..=2 => {
                let n = size(&mut rng);
                if let Ok(id) = client.call(now, ECHO, &big[..n], None) {
                    calls.push(id);
                }
            }
            3 => {
                let _ = client.notify(now, SINK, &big[..rng.below(100) as usize], None);
            }
            4 => client.signal(SINK, &big[..rng.below(200) as usize]).unwrap(),
            5 => {
                let n = size(&mut rng);
                if let Ok(id) = client.open_stream(now, ECHO, &big[..n], None, rng.below(4) == 0) {
                    streams.push(id);
                }
            }
            6..=8 if !streams.is_empty() => {
                let id = streams[rng.below(streams.len() as u64) as usize];
                let n = size(&mut rng).min(100_000);
                let _ = client.stream_send(id, &big[..n]);
            }
            9 if !streams.is_empty() => {
                let id = streams[rng.below(streams.len() as u64) as usize];
                let _ =
                    if rng.below(2) == 0 { client.stream_finish(id, Status::OK) } else { client.cancel(id) };
            }
            10 if !calls.is_empty() => {
                let id = calls[rng.below(calls.len() as u64) as usize];
                let _ = client.cancel(id);
            }
            11 if pings < 3 => {
                pings += 1;
                client.ping(now).unwrap();
            }
            _ => {}
        }
    }
    loop {
        let n = client.poll_transmit(now, &mut buf);
        if n == 0 {
            break;
        }
        rec.extend_from_slice(&buf[..n]);
    }
    rec
}

/// What a replay produced: the events, everything transmitted, the bytes and frames the
/// connection counted as received, and how many items arrived by direct receive.
struct Replay {
    evs: Vec<Ev>,
    out: Vec<u8>,
    received: (u64, u64),
    direct: usize,
}

/// The fixed application of a replay: reacts to `ev`, then records it.
fn react(conn: &mut Connection<'_>, ev: Ev, evs: &mut Vec<Ev>) {
    match &ev {
        Ev::Request { id, kind: RequestKind::Call, payload, .. } => {
            conn.respond(*id, Status::OK, &payload[..payload.len().min(1000)]).unwrap()
        }
        Ev::Request { id, kind: RequestKind::Notify, .. } => {
            conn.respond(*id, Status::ACCEPTED, b"").unwrap()
        }
        Ev::StreamData { id, payload } => conn.stream_consumed(*id, 1, payload.len() as u32).unwrap(),
        Ev::StreamFin { id, .. } => {
            let _ = conn.stream_finish(*id, Status::OK);
        }
        Ev::StreamReset { id, .. } => {
            let _ = conn.stream_reset(*id, Status::CANCELLED);
        }
        _ => {}
    }
    evs.push(ev);
}

fn drain(conn: &mut Connection<'_>, evs: &mut Vec<Ev>, out: &mut Vec<u8>) -> usize {
    let now = T0;
    let mut n = 0;
    while let Some(e) = conn.poll_event(now) {
        let ev = Ev::from(e);
        n += 1;
        react(conn, ev, evs);
    }
    let mut buf = [0u8; 4096];
    loop {
        let k = conn.poll_transmit(now, &mut buf);
        if k == 0 {
            break;
        }
        out.extend_from_slice(&buf[..k]);
    }
    n
}

/// Feeds `bytes` to a fresh acceptor in chunks of `chunk(remaining)` bytes; its application
/// reacts to each event in a fixed way. With `direct: Some(min)`, stream payloads of at least
/// `min` bytes are received directly (`Connection::direct_offer`) whenever they are offered,
/// as the runtimes do: chunks then go into the item until it is complete.
fn replay(bytes: &[u8], mut chunk: impl FnMut(usize) -> usize, direct: Option<usize>) -> Replay {
    let now = T0;
    let mut conn = Connection::new(Role::Acceptor, Config::default(), ident(), now).unwrap();
    let (mut evs, mut out) = (Vec::new(), Vec::new());
    let mut item: Option<Vec<u8>> = None;
    let mut direct_items = 0;
    let mut off = 0;
    while off < bytes.len() {
        let n = chunk(bytes.len() - off).clamp(1, bytes.len() - off);
        let taken = match item.as_mut() {
            Some(buf) => {
                let k = n.min(conn.direct_remaining().expect("a direct payload is pending"));
                buf.extend_from_slice(&bytes[off..off + k]);
                match conn.direct_read(now, k) {
                    DirectRead::More(left) => assert_eq!(left, conn.direct_remaining().unwrap()),
                    DirectRead::Item(id) => {
                        let payload = item.take().expect("pending");
                        direct_items += 1;
                        react(&mut conn, Ev::StreamData { id, payload }, &mut evs);
                    }
                    DirectRead::Dropped => item = None,
                }
                k
            }
            None => conn.handle_input(now, &bytes[off..off + n]),
        };
        off += taken;
        let polled = drain(&mut conn, &mut evs, &mut out);
        if let (Some(min), None) = (direct, &item) {
            if let Some(offer) = conn.direct_offer(min) {
                let (len, mut buf) = (offer.len, offer.received.to_vec());
                assert!(buf.len() < len, "a whole payload is never offered");
                buf.reserve_exact(len - buf.len());
                assert_eq!(conn.direct_begin(min), len - buf.len());
                assert_eq!(conn.recv_buffer().len(), 0, "nothing is read past the payload");
                item = Some(buf);
            }
        }
        assert!(taken > 0 || polled > 0, "stuck");
    }
    drain(&mut conn, &mut evs, &mut out);
    assert!(item.is_none(), "the recording ends between frames");
    let s = conn.stats();
    Replay { evs, out, received: (s.bytes_received, s.frames_received), direct: direct_items }
}

fn assert_same_replay(seed: u64, bytes: &[u8], whole: &Replay, split: &Replay, how: &str) {
    assert_eq!(whole.evs.len(), split.evs.len(), "seed {seed} ({how}): event count differs");
    for (i, (a, b)) in whole.evs.iter().zip(&split.evs).enumerate() {
        assert_eq!(a, b, "seed {seed} ({how}): event {i} differs ({} input bytes)", bytes.len());
    }
    assert!(whole.out == split.out, "seed {seed} ({how}): transmitted bytes differ");
    assert_eq!(whole.received, split.received, "seed {seed} ({how}): received bytes and frames");
}

#[test]
fn chunking_never_changes_events_or_output() {
    fn prop(seed: u64, sizes: Vec<u16>, direct: bool) -> TestResult {
        let bytes = record_client(seed);
        let whole = replay(&bytes, |rest| rest, None);
        assert_eq!(whole.evs.first(), Some(&Ev::Connected), "seed {seed}");
        assert!(
            !whole.evs.iter().any(|e| matches!(e, Ev::Closed(_))),
            "seed {seed}: valid traffic closed the connection: {:?}",
            whole.evs.last()
        );
        let direct = direct.then_some(1);
        // Chunk sizes from quickcheck, cycled; 1-byte chunks among them.
        let mut i = 0;
        let split = replay(
            &bytes,
            |_| {
                let s = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1) as usize;
                i += 1;
                match s % 4 {
                    0 => 1,
                    1 => 1 + s % 16,
                    2 => 1 + s % 4096,
                    _ => 1 + s * 2,
                }
            },
            direct,
        );
        assert_same_replay(seed, &bytes, &whole, &split, "quickcheck sizes");
        let mut rng = Rng::new(seed ^ 0x5EED);
        let random = replay(&bytes, |rest| 1 + rng.below(rest.min(3000) as u64) as usize, direct);
        assert_same_replay(seed, &bytes, &whole, &random, "random sizes");
        TestResult::passed()
    }
    qc(25).quickcheck(prop as fn(u64, Vec<u16>, bool) -> TestResult);
}

#[test]
fn one_byte_at_a_time_is_the_same_as_all_at_once() {
    for seed in [3, 17] {
        let bytes = record_client(seed);
        let whole = replay(&bytes, |rest| rest, None);
        assert!(whole.evs.len() > 5, "seed {seed}: {:?}", whole.evs);
        let bytewise = replay(&bytes, |_| 1, None);
        assert_same_replay(seed, &bytes, &whole, &bytewise, "1-byte chunks");
    }
}

/// Direct receive (`conn/direct.rs`) changes nothing observable: the same events in the same
/// order, the same bytes sent, the same counters — whatever the chunking, including the whole
/// recording at once (the receive buffer fills, and a payload cut at its end is offered).
#[test]
fn direct_receive_is_the_same_as_the_receive_buffer() {
    let mut used = 0;
    for seed in 0..40 {
        let bytes = record_client(seed);
        let whole = replay(&bytes, |rest| rest, None);
        for (how, min, sizes) in
            [("whole", 1, 0), ("1-byte", 1, 1), ("mixed", 1, 700), ("min 2000", 2000, 1500)]
        {
            let mut rng = Rng::new(seed);
            let r = replay(
                &bytes,
                |rest| match sizes {
                    0 => rest,
                    1 => 1,
                    n => 1 + rng.below(n) as usize,
                },
                Some(min),
            );
            assert_same_replay(seed, &bytes, &whole, &r, how);
            used += r.direct;
        }
    }
    assert!(used > 100, "direct receive was used for {used} items only");
}
