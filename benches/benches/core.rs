//! Criterion micro-benchmarks of `tandem-core`: frames, unary exchanges, streams and coalesced
//! input, all in memory with a fake clock. Run with `cargo bench -p tandem-benches`.

#![forbid(unsafe_code)]

use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;
use tandem_benches::tandem_core::config::MAX_FRAME_SIZE;
use tandem_benches::tandem_core::frame::{Decoded, Frame};
use tandem_benches::tandem_core::Config;
use tandem_benches::{sample_frames, Coalesced, Streaming, Unary};

/// Encode and decode one frame of each type (plus CALL/RESPONSE with a 64 KiB payload).
fn frames(c: &mut Criterion) {
    let samples = sample_frames();
    let mut enc = c.benchmark_group("frame_encode");
    let mut out = vec![0u8; 128 * 1024];
    for (name, f) in &samples {
        enc.throughput(Throughput::Bytes(f.encoded_len() as u64));
        enc.bench_function(*name, |b| b.iter(|| black_box(black_box(f).encode(&mut out))));
    }
    enc.finish();

    let mut dec = c.benchmark_group("frame_decode");
    for (name, f) in &samples {
        let mut bytes = vec![0u8; f.encoded_len()];
        f.encode(&mut bytes).expect("sized");
        assert_eq!(Frame::decode(&bytes, MAX_FRAME_SIZE as usize), Ok(Decoded::Frame(*f, bytes.len())));
        dec.throughput(Throughput::Bytes(bytes.len() as u64));
        dec.bench_function(*name, |b| {
            b.iter(|| black_box(Frame::decode(black_box(&bytes), MAX_FRAME_SIZE as usize)))
        });
    }
    dec.finish();
}

/// Full unary exchanges between two cores: 1, 16 and 64 calls of 32 bytes per round.
fn unary(c: &mut Criterion) {
    let mut g = c.benchmark_group("unary_32B");
    for calls in [1usize, 16, 64] {
        let mut u = Unary::new(32);
        for _ in 0..100 {
            u.round(calls);
        }
        g.throughput(Throughput::Elements(calls as u64));
        g.bench_with_input(BenchmarkId::new("calls_per_round", calls), &calls, |b, &calls| {
            b.iter(|| u.round(calls))
        });
    }
    g.finish();
}

/// Stream items of 64 KiB from client to server, the server consuming as it goes; 16 items
/// (1 MiB) per iteration. With the default 64 KiB `max_frame_size` each item is one
/// STREAM_DATA frame plus a small CONTINUATION (reassembled); with 1 MiB frames it is one frame.
fn stream(c: &mut Criterion) {
    const ITEM: usize = 64 * 1024;
    const ITEMS: u64 = 16;
    let mut g = c.benchmark_group("stream_64KiB_items");
    g.throughput(Throughput::Bytes(ITEMS * ITEM as u64));
    let configs = [
        ("default_frame_size", Config::default()),
        ("1MiB_frame_size", Config { max_frame_size: 1 << 20, ..Config::default() }),
    ];
    for (name, config) in configs {
        let mut s = Streaming::new(ITEM, config);
        s.send_items(ITEMS);
        g.bench_function(name, |b| b.iter(|| s.send_items(ITEMS)));
    }
    g.finish();
}

/// 1,000 CALL frames of 32 bytes, back to back in one buffer: fed to an acceptor, and decoded
/// raw with `Frame::decode`.
fn coalesced(c: &mut Criterion) {
    const CALLS: usize = 1000;
    let mut g = c.benchmark_group("coalesced_1000_calls");
    let mut bench = Coalesced::new(CALLS, 32);
    let len = bench.prepare();
    g.throughput(Throughput::Bytes(len as u64));

    // Raw decoding: no connection, just the frame decoder over the buffer.
    let input = bench.input().to_vec();
    g.bench_function("frame_decode_loop", |b| {
        b.iter(|| {
            let buf = black_box(&input[..]);
            let (mut off, mut n) = (0, 0);
            while off < buf.len() {
                match Frame::decode(&buf[off..], MAX_FRAME_SIZE as usize) {
                    Ok(Decoded::Frame(f, used)) => {
                        black_box(f);
                        off += used;
                        n += 1;
                    }
                    other => panic!("decode: {other:?}"),
                }
            }
            assert_eq!(n, CALLS);
        })
    });

    // The acceptor's path: handle_input + poll_event, answering each call as it is delivered
    // (so at most one call is open at a time) or leaving all 1,000 open until the round ends.
    for (name, respond) in [("connection_respond_each", true), ("connection_no_respond", false)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    bench.prepare();
                    let t = std::time::Instant::now();
                    let n = bench.feed(respond);
                    timed += t.elapsed();
                    assert_eq!(n, CALLS);
                    bench.finish();
                }
                timed
            })
        });
    }
    g.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, written out: the macros generate an
// undocumented `pub fn`, which the workspace's `missing_docs = "deny"` rejects.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    frames(&mut c);
    unary(&mut c);
    stream(&mut c);
    coalesced(&mut c);
    c.final_summary();
}
