//! The hostile-peer suite's attacks (issue 10; SPEC.md §12.5), each one a function that plays a
//! hostile peer over a real socket against a server and reports what it observed. The runtimes'
//! `tests/hostile.rs` start a server serving [`TARGET_MODULE`] with their own API, run each
//! attack while a legitimate client of theirs measures its latency on another connection, and
//! assert the outcome, the latency and the heap.
//!
//! The server under attack serves, in module [`TARGET_MODULE`]:
//!
//! | method | kind | behaviour |
//! | --- | --- | --- |
//! | [`ECHO`] | unary | answers OK with the request |
//! | [`HOLD`] | unary | waits until cancelled (or 10 s), then answers |
//! | [`HOLD_STREAM`] | stream | neither reads nor sends; waits until reset (or 10 s) |
//! | [`NOTE`] | notification / signal | drops the payload (NOTIFY answered OK) |

use std::io;
use std::time::{Duration, Instant};

use tandem_core::config::{param, PeerLimits};
use tandem_core::frame::{flags, Frame, Request};
use tandem_core::Status;

use crate::wire::{call, encode, stream_open, Got, RawPeer};

/// The module the attacked server serves.
pub const TARGET_MODULE: u32 = 7;
/// Unary: the response is the request.
pub const ECHO: u32 = 1;
/// Unary: waits until cancelled or 10 s.
pub const HOLD: u32 = 2;
/// Stream: waits until reset or 10 s, reading and sending nothing.
pub const HOLD_STREAM: u32 = 3;
/// Notification or signal: dropped.
pub const NOTE: u32 = 4;

/// What an attack observed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Frames (or connections, for connection floods) the attacker sent.
    pub sent: u64,
    /// Frames it read back.
    pub received: u64,
    /// The CLOSE the server sent, if any (status and message).
    pub close: Option<(Status, String)>,
    /// The transport ended (EOF or reset) — with or without a CLOSE first.
    pub ended: bool,
    /// Free-form details for the test's failure message.
    pub notes: Vec<String>,
}

impl Outcome {
    fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// The CLOSE status, if one arrived.
    pub fn close_status(&self) -> Option<Status> {
        self.close.as_ref().map(|c| c.0)
    }

    fn see(&mut self, got: &Got) -> bool {
        match got {
            Got::Frame(f) => {
                self.received += 1;
                if let Frame::Close { status, message } = f.frame() {
                    self.close = Some((status, String::from_utf8_lossy(message).into_owned()));
                }
                true
            }
            Got::Eof | Got::Failed(_) => {
                self.ended = true;
                false
            }
            Got::Bad(e) => {
                self.ended = true;
                self.note(format!("undecodable bytes from the server: {e}"));
                false
            }
            Got::Timeout => false,
        }
    }

    /// Reads whatever is left for up to `d`, recording a CLOSE and the end of the transport.
    fn drain(&mut self, p: &mut RawPeer, d: Duration) {
        let end = Instant::now() + d;
        while !self.ended {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let got = p.recv(left);
            if !self.see(&got) && matches!(got, Got::Timeout) {
                return;
            }
        }
    }
}

/// Connects, sends a HELLO as `name` and returns the peer with the limits the server announced.
pub fn connect(addr: &str, name: &str) -> io::Result<(RawPeer, PeerLimits)> {
    let mut p = RawPeer::connect(addr)?;
    // A generous receive window, so that the server's own sends are never what limits it.
    p.hello(name, &[(param::STREAM_CREDIT_MSGS, 1024), (param::CONN_CREDIT_BYTES, 1 << 30)])?;
    let limits = p.expect_hello(Duration::from_secs(5))?;
    Ok((p, limits))
}

/// **Rapid cancel**: opens HOLD calls and cancels each at once, as fast as the rules allow
/// (never more open than `max_concurrent_calls`; a slot frees when its RESPONSE arrives), for
/// `d`. The server must keep serving everyone, and keep nothing per cancelled call.
pub fn rapid_cancel(addr: &str, d: Duration) -> io::Result<Outcome> {
    let (mut p, limits) = connect(addr, "attacker-rapid-cancel")?;
    let mut o = Outcome::default();
    let max = limits.max_concurrent_calls.max(1) as u64;
    let mut next = 0u64;
    let mut open = 0u64;
    let end = Instant::now() + d;
    while Instant::now() < end && !o.ended {
        while open < max {
            let mut batch = call(next, TARGET_MODULE, HOLD, b"");
            batch.extend(encode(&Frame::Cancel { id: next }));
            p.send_bytes(&batch)?;
            o.sent += 2;
            next += 2;
            open += 1;
        }
        // Wait for slots to come back (each cancelled call is answered).
        match p.recv(Duration::from_secs(2)) {
            Got::Timeout => {
                o.note(format!("no RESPONSE within 2 s with {open} calls open"));
                break;
            }
            got => {
                if let Got::Frame(f) = &got {
                    if let Frame::Response { .. } = f.frame() {
                        open -= 1;
                    }
                }
                o.see(&got);
            }
        }
    }
    o.note(format!("{} calls opened and cancelled", next / 2));
    Ok(o)
}

/// **Rapid reset**: opens HOLD_STREAM streams and resets each at once, never more open than
/// `max_concurrent_streams`, for `d`. A stream's slot frees when the server's terminal arrives.
pub fn rapid_reset(addr: &str, d: Duration) -> io::Result<Outcome> {
    let (mut p, limits) = connect(addr, "attacker-rapid-reset")?;
    let mut o = Outcome::default();
    let max = limits.max_concurrent_streams.max(1) as u64;
    let mut next = 0u64;
    let mut open = 0u64;
    let end = Instant::now() + d;
    while Instant::now() < end && !o.ended {
        while open < max {
            let mut batch = stream_open(next, TARGET_MODULE, HOLD_STREAM, false, b"");
            batch.extend(encode(&Frame::StreamReset { id: next, status: Status::CANCELLED }));
            p.send_bytes(&batch)?;
            o.sent += 2;
            next += 2;
            open += 1;
        }
        match p.recv(Duration::from_secs(2)) {
            Got::Timeout => {
                o.note(format!("no terminal within 2 s with {open} streams open"));
                break;
            }
            got => {
                if let Got::Frame(f) = &got {
                    if let Frame::StreamReset { .. } | Frame::StreamFin { .. } = f.frame() {
                        open -= 1;
                    }
                }
                o.see(&got);
            }
        }
    }
    o.note(format!("{} streams opened and reset", next / 2));
    Ok(o)
}

/// **Ping flood, reading**: sends PINGs in bursts of `burst` and reads the PONGs before the next
/// burst, for `d`, as fast as it can. Every PING of a burst is answered (SPEC.md §7.6); beyond
/// the receiver's budget of frames that do nothing (§12.5; 10,000 per second in the reference
/// implementation) the flood is closed with ENHANCE_YOUR_CALM.
pub fn ping_flood_reading(addr: &str, burst: usize, d: Duration) -> io::Result<Outcome> {
    let (mut p, _) = connect(addr, "attacker-ping-reading")?;
    let mut o = Outcome::default();
    let end = Instant::now() + d;
    let mut seq = 0u64;
    while Instant::now() < end && !o.ended {
        let mut batch = Vec::new();
        for _ in 0..burst {
            batch.extend(encode(&Frame::Ping(seq.to_be_bytes())));
            seq += 1;
        }
        if p.send_bytes(&batch).is_err() {
            o.ended = true;
            break;
        }
        o.sent += burst as u64;
        let mut pongs = 0;
        while pongs < burst && !o.ended {
            let got = p.recv(Duration::from_secs(2));
            if let Got::Frame(f) = &got {
                if let Frame::Pong(_) = f.frame() {
                    pongs += 1;
                }
            }
            if !o.see(&got) && matches!(got, Got::Timeout) {
                o.note(format!("only {pongs} of {burst} PONGs within 2 s"));
                break;
            }
        }
    }
    o.drain(&mut p, Duration::from_millis(200));
    Ok(o)
}

/// **Ping flood, not reading**: writes PINGs without reading anything until the server closes
/// (the write fails) or `max` PINGs are sent, then reads what arrived. The server must close
/// with ENHANCE_YOUR_CALM (its CLOSE can only be seen if its socket buffer had room for it).
pub fn ping_flood_not_reading(addr: &str, max: u64) -> io::Result<Outcome> {
    let (mut p, _) = connect(addr, "attacker-ping-deaf")?;
    let mut o = Outcome::default();
    let chunk: Vec<u8> = (0..64u64).flat_map(|i| encode(&Frame::Ping(i.to_be_bytes()))).collect();
    p.set_write_timeout(Some(Duration::from_secs(5)))?;
    while o.sent < max {
        if p.send_bytes(&chunk).is_err() {
            o.note("write failed: the server closed or stopped reading");
            break;
        }
        o.sent += 64;
    }
    o.drain(&mut p, Duration::from_secs(5));
    Ok(o)
}

/// **Tiny-frame flood**: a stream of the smallest frames there are — empty extension frames
/// (type 0x80, which receivers skip, SPEC.md §3.5) — for `d`, written in 64 KiB batches while
/// the attacker reads whatever comes back. Each frame must cost the server bounded work; the
/// connection may live on or be closed with ENHANCE_YOUR_CALM.
pub fn tiny_frame_flood(addr: &str, d: Duration) -> io::Result<Outcome> {
    let (mut p, _) = connect(addr, "attacker-tiny-frames")?;
    let mut o = Outcome::default();
    let batch: Vec<u8> = [0x80u8, 0x00].repeat(32 * 1024);
    p.set_write_timeout(Some(Duration::from_secs(5)))?;
    let end = Instant::now() + d;
    while Instant::now() < end && !o.ended {
        if p.send_bytes(&batch).is_err() {
            o.ended = true;
            break;
        }
        o.sent += 32 * 1024;
        loop {
            let got = p.recv(Duration::from_millis(1));
            if !o.see(&got) {
                break;
            }
        }
    }
    o.drain(&mut p, Duration::from_millis(500));
    Ok(o)
}

/// **Slow reader**: calls ECHO with `size`-byte requests, up to `max_concurrent_calls` at a time
/// as their answers come back, but never reads: answers pile up in the server's transmit queue.
/// Runs for `d`, then reads what arrived. The server must bound what it queues (its transmit
/// queue) and keep serving others.
pub fn slow_reader(addr: &str, size: usize, d: Duration) -> io::Result<Outcome> {
    let (mut p, limits) = connect(addr, "attacker-slow-reader")?;
    let mut o = Outcome::default();
    let size = size.min(limits.max_message_size as usize).min(limits.max_frame_size as usize - 64);
    let payload = vec![0x5Au8; size];
    p.set_write_timeout(Some(Duration::from_millis(200)))?;
    let end = Instant::now() + d;
    let mut next = 0u64;
    // Without reading there is no telling which calls were answered: open exactly the limit.
    for _ in 0..limits.max_concurrent_calls {
        if Instant::now() >= end || p.send_bytes(&call(next, TARGET_MODULE, ECHO, &payload)).is_err() {
            break;
        }
        next += 2;
        o.sent += 1;
    }
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    o.drain(&mut p, Duration::from_secs(2));
    Ok(o)
}

/// **Stuck handshakes**: opens `n` connections and sends nothing (or half a HELLO), holding
/// them for `hold`. The server must bound them (handshake timeout, and a bound on connections
/// in the handshake) and keep serving others. Returns how many connections it opened and how
/// many the server had closed by the end.
pub fn stuck_handshakes(addr: &str, n: usize, hold: Duration) -> io::Result<Outcome> {
    let mut o = Outcome::default();
    let mut peers = Vec::with_capacity(n);
    let hello = {
        let mut p = Vec::new();
        let mut pbuf = [0u8; 8];
        let params = tandem_core::frame::Params::encode_into(&[], &mut pbuf)
            .unwrap_or(tandem_core::frame::Params::EMPTY);
        p.extend(encode(&Frame::Hello(tandem_core::frame::Hello {
            min_version: 1,
            max_version: 1,
            flags: 0,
            name: b"stuck",
            auth: b"",
            session: b"",
            params,
        })));
        p
    };
    for i in 0..n {
        match RawPeer::connect(addr) {
            Ok(mut p) => {
                if i % 2 == 1 {
                    // Half a HELLO: the server is left waiting for the rest.
                    let _ = p.send_bytes(&hello[..hello.len() / 2]);
                }
                peers.push(p);
                o.sent += 1;
            }
            Err(e) => {
                o.note(format!("connect {i} failed: {e}"));
                break;
            }
        }
    }
    std::thread::sleep(hold);
    // Every one must be closed by now, give or take the time to notice: up to 3 s more in all.
    let end = Instant::now() + Duration::from_secs(3);
    let mut closed = 0u64;
    for p in &mut peers {
        let left = end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        if let (_, true) = p.drain_for(left) {
            closed += 1;
        }
    }
    o.received = closed;
    o.note(format!("{} connections opened, {closed} closed by the server after {hold:?}", peers.len()));
    Ok(o)
}

/// **Oversized HELLO fields**: a HELLO whose name, auth and session lengths exceed the limits
/// (255, 1024, 64 bytes; SPEC.md §4.1). The server must close with FRAME_ENCODING_ERROR.
pub fn oversized_hello(addr: &str) -> io::Result<Outcome> {
    let mut p = RawPeer::connect(addr)?;
    let mut o = Outcome::default();
    // Hand-built body: magic, versions, flags, then a 300-byte name (over 255).
    let mut body = b"TNDM".to_vec();
    body.extend([1, 1, 0]); // min_version 1, max_version 1, flags 0 (one-byte varints)
    body.extend([0x41, 0x2C]); // name length 300 (2-byte varint)
    body.extend([b'n'; 300]);
    body.extend([0, 0, 0]); // auth, session, params: empty
    let mut frame = vec![0x01];
    frame.extend(varint(body.len() as u64));
    frame.extend(body);
    p.send_bytes(&frame)?;
    o.sent = 1;
    o.drain(&mut p, Duration::from_secs(3));
    Ok(o)
}

/// **Fragments that never complete**: opens a fragmented ECHO call announcing `total` bytes,
/// sends the first fragment and then nothing but PINGs (so the idle timeout does not end it)
/// for `d`. The server must hold at most one message in reassembly per connection, bounded by
/// `max_message_size`, and serve others.
pub fn never_completing_fragments(addr: &str, d: Duration) -> io::Result<Outcome> {
    let (mut p, limits) = connect(addr, "attacker-fragments")?;
    let mut o = Outcome::default();
    let total = u64::from(limits.max_message_size);
    let first = vec![1u8; 1024];
    p.send(&Frame::Call(Request {
        flags: flags::MORE,
        id: 0,
        module: TARGET_MODULE,
        method: ECHO,
        budget_us: 0,
        total_len: Some(total),
        payload: &first,
    }))?;
    o.sent = 1;
    let end = Instant::now() + d;
    let mut seq = 0u64;
    while Instant::now() < end && !o.ended {
        p.send(&Frame::Ping(seq.to_be_bytes()))?;
        seq += 1;
        o.sent += 1;
        let got = p.recv(Duration::from_millis(200));
        o.see(&got);
        // Keepalive pace, within the rules: PINGs answered in lock step on a fast loopback
        // exceed the unproductive-frame budget (10,000/s, SPEC.md §12.5) and are rightly closed
        // as a flood, which is not what this attack is about.
        std::thread::sleep(Duration::from_millis(1));
    }
    o.drain(&mut p, Duration::from_millis(200));
    Ok(o)
}

/// **Session churn**: `n` times, connects, completes the handshake, makes one ECHO call and
/// drops the transport without CLOSE (a resumable session is then suspended at the server and
/// expires after its grace period).
pub fn session_churn(addr: &str, n: usize) -> io::Result<Outcome> {
    let mut o = Outcome::default();
    for i in 0..n {
        let (mut p, _) = connect(addr, &format!("churn-{i}"))?;
        p.send_bytes(&call(0, TARGET_MODULE, ECHO, b"x"))?;
        loop {
            match p.recv(Duration::from_secs(5)) {
                Got::Frame(f) if matches!(f.frame(), Frame::Response { .. }) => break,
                Got::Frame(_) => {}
                other => {
                    o.note(format!("session {i}: {other:?}"));
                    return Ok(o);
                }
            }
        }
        o.sent += 1;
    }
    Ok(o)
}

/// **Reply-cache flood over many suspended sessions**: `sessions` times, connects, makes
/// `calls` ECHO calls of `size` bytes each and never acknowledges them (so every answer stays
/// cached), then drops the transport: the server keeps each session suspended with a full
/// reply cache. The server's session memory budget must hold the total.
pub fn reply_cache_flood(addr: &str, sessions: usize, calls: usize, size: usize) -> io::Result<Outcome> {
    let mut o = Outcome::default();
    let payload = vec![0xA5u8; size];
    for s in 0..sessions {
        let (mut p, limits) = connect(addr, &format!("cache-flood-{s}"))?;
        let per_batch = limits.max_concurrent_calls.max(1) as usize;
        let mut id = 0u64;
        let mut left = calls;
        while left > 0 {
            let n = left.min(per_batch);
            let mut batch = Vec::new();
            for _ in 0..n {
                batch.extend(call(id, TARGET_MODULE, ECHO, &payload));
                id += 2;
            }
            p.send_bytes(&batch)?;
            let mut got = 0;
            while got < n {
                match p.recv(Duration::from_secs(5)) {
                    Got::Frame(f) => {
                        if let Frame::Response { .. } = f.frame() {
                            got += 1;
                        }
                    }
                    other => {
                        o.note(format!("session {s}: {other:?}"));
                        return Ok(o);
                    }
                }
            }
            left -= n;
            o.sent += n as u64;
        }
    }
    Ok(o)
}

/// **Stream hoarders**: `peers` connections, each opening HOLD_STREAM streams (whose handler
/// never reads) and filling every byte of the connection credit the server announced with items
/// — many 1-byte items on every stream (the most items the per-stream message credit allows,
/// so per-item overhead counts too) and large ones up to each stream's byte credit — then
/// holding them for `hold` and dropping the transports without CLOSE. All of it is within the
/// rules: what the server buffers is bounded by what it announced (`conn_credit_bytes` per
/// connection, plus its per-item bookkeeping), and nothing more. `Outcome::sent` is the number
/// of item bytes sent over all connections.
pub fn stream_hoarders(addr: &str, peers: usize, hold: Duration) -> io::Result<Outcome> {
    let mut o = Outcome::default();
    let mut open = Vec::new();
    for n in 0..peers {
        let (mut p, limits) = connect(addr, &format!("attacker-hoarder-{n}"))?;
        let streams = limits.max_concurrent_streams.min(64) as u64;
        let msgs = limits.stream_credit_msgs as u64;
        let frame_room = (limits.max_frame_size as u64).saturating_sub(64);
        let mut conn = limits.conn_credit_bytes as u64;
        let mut batch = Vec::new();
        // Every stream: all but 4 of its item credit in 1-byte items.
        let tiny = msgs.saturating_sub(4);
        let mut byte_credit = vec![limits.stream_credit_bytes as u64; streams as usize];
        for s in 0..streams {
            let id = 2 * s;
            batch.extend(stream_open(id, TARGET_MODULE, HOLD_STREAM, false, b""));
            for _ in 0..tiny.min(conn) {
                batch.extend(encode(&Frame::StreamData { flags: 0, id, total_len: None, payload: b"h" }));
                conn -= 1;
                byte_credit[s as usize] -= 1;
                o.sent += 1;
            }
        }
        // Then the rest of the connection credit in large items, 4 per stream at most.
        let mut s = 0;
        while conn > 0 && s < streams {
            for _ in 0..msgs.min(4) {
                let size = conn.min(byte_credit[s as usize]).min(frame_room);
                if size == 0 {
                    break;
                }
                let payload = vec![0x5Au8; size as usize];
                batch.extend(encode(&Frame::StreamData {
                    flags: 0,
                    id: 2 * s,
                    total_len: None,
                    payload: &payload,
                }));
                conn -= size;
                byte_credit[s as usize] -= size;
                o.sent += size;
            }
            s += 1;
        }
        p.send_bytes(&batch)?;
        open.push(p);
    }
    o.note(format!("{} item bytes sent over {peers} connections", o.sent));
    // Hold, reading whatever the servers send (PINGs are answered by nobody: the hold is
    // shorter than the keepalive).
    let end = Instant::now() + hold;
    while Instant::now() < end {
        for p in &mut open {
            while let Got::Frame(f) = p.recv(Duration::from_millis(1)) {
                if let Frame::Close { status, message } = f.frame() {
                    o.close = Some((status, String::from_utf8_lossy(message).into_owned()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(o)
}

/// **Large items that never complete**: `peers` connections each open a stream and send the
/// header and first KiB of an item as large as the frame size and the stream's credit allow,
/// then only keep the connection alive (PINGs) for `hold`. A runtime that read such payloads
/// into buffers of their announced size would hold `peers` × 256 KiB for a few bytes each.
pub fn never_completing_items(addr: &str, peers: usize, hold: Duration) -> io::Result<Outcome> {
    let mut o = Outcome::default();
    let mut open = Vec::new();
    for n in 0..peers {
        let (mut p, limits) = connect(addr, &format!("attacker-items-{n}"))?;
        let size = u64::from(limits.max_frame_size).min(u64::from(limits.stream_credit_bytes)) - 16;
        let payload = vec![0xA7u8; size as usize];
        let data = encode(&Frame::StreamData { flags: 0, id: 0, total_len: None, payload: &payload });
        let mut batch = stream_open(0, TARGET_MODULE, HOLD_STREAM, false, b"");
        batch.extend_from_slice(&data[..1024]);
        p.send_bytes(&batch)?;
        o.sent += 1024;
        open.push(p);
    }
    o.note(format!("{peers} items begun, 1 KiB of each sent"));
    let end = Instant::now() + hold;
    let mut seq = 0u64;
    while Instant::now() < end {
        for p in &mut open {
            // A PING only where the item allows one: none fits inside its payload, so the
            // connection stays alive by the idle timeout's grace alone; read what comes.
            while let Got::Frame(f) = p.recv(Duration::from_millis(1)) {
                if let Frame::Close { status, message } = f.frame() {
                    o.close = Some((status, String::from_utf8_lossy(message).into_owned()));
                }
            }
        }
        seq += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    o.note(format!("held for {seq} rounds"));
    Ok(o)
}

fn varint(v: u64) -> Vec<u8> {
    let mut b = [0u8; 8];
    let n = tandem_core::varint::encode(v, &mut b);
    b[..n].to_vec()
}

/// Latency figures of a legitimate client measured during an attack.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    /// Calls measured.
    pub n: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
    /// Calls that failed.
    pub failed: usize,
}
