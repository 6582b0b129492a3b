//! Writes the hand-made seeds of `corpus/frame_roundtrip/` and `corpus/handshake/`:
//! frames from the conformance vectors, and the two directions of a recorded session between two
//! real cores (handshake, calls, a notification, a stream, ping, go-away).
//!
//!     cd fuzz && cargo run --example seeds
//!
//! The other files in the corpus directories were found by libFuzzer and minimised with
//! `cargo fuzz cmin`.

use std::fs;
use std::path::Path;
use tandem_core::{Config, Connection, Event, Identity, Instant, MethodId, RequestKind, Role, Status};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// Delivers `data`, draining (and dropping) events whenever the receive buffer is full.
fn feed(c: &mut Connection<'_>, now: Instant, mut data: &[u8]) {
    while !data.is_empty() {
        let n = c.handle_input(now, data);
        data = &data[n..];
        if n == 0 {
            while c.poll_event(now).is_some() {}
        }
    }
}

/// A short session between a dialer and an acceptor; returns (dialer → acceptor, acceptor → dialer).
fn record() -> (Vec<u8>, Vec<u8>) {
    let mut now = Instant::from_millis(1_000);
    let me = |n: &'static [u8]| Identity { name: n, auth: b"tok", session: b"" };
    let mut a = Connection::new(Role::Dialer, Config::default(), me(b"a"), now).expect("config");
    let mut b = Connection::new(Role::Acceptor, Config::default(), me(b"b"), now).expect("config");
    let (mut ab, mut ba) = (Vec::new(), Vec::new());
    let m = MethodId::new(1, 1);
    let mut buf = vec![0u8; 1 << 16];
    for round in 0..12 {
        loop {
            let n = a.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            ab.extend_from_slice(&buf[..n]);
            feed(&mut b, now, &buf[..n]);
        }
        let mut answers = Vec::new();
        while let Some(ev) = b.poll_event(now) {
            match ev {
                Event::Request { id, kind: RequestKind::Call, .. } => answers.push((id, true)),
                Event::Request { id, kind: RequestKind::Notify, .. } => answers.push((id, false)),
                Event::Request { id, kind: RequestKind::Stream { .. }, .. } => {
                    answers.push((id | 1 << 63, false))
                }
                Event::StreamData { id, payload } => {
                    let len = payload.len() as u32;
                    let _ = b.stream_consumed(id, 1, len);
                }
                _ => {}
            }
        }
        for (id, call) in answers {
            if id & 1 << 63 != 0 {
                let id = id & !(1 << 63);
                let _ = b.stream_send(id, b"item-1");
                let _ = b.stream_finish(id, Status::OK);
            } else {
                let _ = b.respond(id, Status::OK, if call { b"pong" } else { b"" });
            }
        }
        loop {
            let n = b.poll_transmit(now, &mut buf);
            if n == 0 {
                break;
            }
            ba.extend_from_slice(&buf[..n]);
            feed(&mut a, now, &buf[..n]);
        }
        while let Some(ev) = a.poll_event(now) {
            if let Event::StreamData { id, payload } = ev {
                let len = payload.len() as u32;
                let _ = a.stream_consumed(id, 1, len);
            }
        }
        match round {
            1 => {
                let _ = a.call(now, m, b"ping", Some(now + core::time::Duration::from_secs(5)));
                let _ = a.notify(now, m, b"note", None);
                let _ = a.signal(m, b"sig");
            }
            2 => {
                let s = a.open_stream(now, m, b"open", None, false).expect("stream");
                let _ = a.stream_send(s, b"data");
                let _ = a.stream_finish(s, Status::OK);
            }
            3 => {
                let big = vec![7u8; 70_000];
                let _ = a.call(now, m, &big, None);
            }
            4 => {
                let _ = a.ping(now);
            }
            6 => {
                let _ = a.go_away(now, Status::OK, b"done");
            }
            _ => {}
        }
        now = now + core::time::Duration::from_millis(5);
    }
    (ab, ba)
}

/// The `serial` seeds (input: `max, seed, line bytes…`): the recorded session cut into datagrams
/// and framed (SPEC.md §14.9), clean and damaged, a small limit, and a babbling line.
fn serial_seeds(dir: &Path, session: &[u8]) {
    use tandem_core::serial;
    let frame = |d: &[u8]| {
        let mut out = vec![0u8; serial::encoded_len(d.len())];
        let n = serial::encode(d, &mut out).expect("encodes");
        out.truncate(n);
        out
    };
    let frames: Vec<Vec<u8>> = session.chunks(300).take(12).map(frame).collect();
    let seed = |max: u8, chunking: u8, line: &[u8]| [&[max, chunking][..], line].concat();
    write(dir, "seed-serial-session", &seed(148, 7, &frames.concat()));
    // Damaged: a flipped bit, a frame cut short, a lost delimiter, noise, a duplicated frame.
    let mut damaged = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let mut f = f.clone();
        match i % 6 {
            1 => {
                let mid = f.len() / 2;
                f[mid] ^= 0x08;
            }
            2 => {
                let cut = f.len() / 3;
                f.drain(cut..f.len() - 1);
            }
            3 => {
                f.pop();
            }
            4 => f.splice(0..0, [0x12, 0x00, 0x34, 0x56]).for_each(drop),
            5 => f.extend_from_within(..),
            _ => {}
        }
        damaged.extend(f);
    }
    write(dir, "seed-serial-damaged", &seed(148, 3, &damaged));
    let small = [frame(&[7; 10]), frame(&[8; 17]), frame(&[9; 16]), vec![0x02, 0xaa, 0x00]].concat();
    write(dir, "seed-serial-small-limit", &seed(0, 1, &small));
    let babble = [&[0x55; 3000][..], &[0], &frames[0]].concat();
    write(dir, "seed-serial-babble", &seed(148, 200, &babble));
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    fs::create_dir_all(dir).expect("mkdir");
    fs::write(dir.join(name), data).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let fr = root.join("frame_roundtrip");
    let hs = root.join("handshake");

    // Conformance vectors: one valid frame per type, a few invalid ones.
    let all: String =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/vectors/frames.json"))
            .expect("conformance/vectors/frames.json");
    // Frame vectors only (not the varint cases before them).
    let vectors = &all[all.find("\"valid\": [").expect("valid section")..];
    let mut seen_types = std::collections::HashSet::new();
    let mut invalid = 0;
    for (i, chunk) in vectors.split("\"hex\": \"").enumerate().skip(1) {
        let h = &chunk[..chunk.find('"').expect("closing quote")];
        let bytes = hex(h);
        let is_invalid =
            vectors.split("\"hex\": \"").take(i).last().is_some_and(|prev| prev.contains("\"invalid/"));
        if is_invalid {
            if invalid < 3 && i % 40 == 0 {
                invalid += 1;
                write(&fr, &format!("seed-vector-invalid-{i:03}"), &bytes);
            }
        } else if seen_types.insert(bytes[0]) {
            write(&fr, &format!("seed-vector-{:02x}", bytes[0]), &bytes);
        }
    }

    let (ab, ba) = record();
    serial_seeds(&root.join("serial"), &ab);
    write(&fr, "seed-session-dialer", &ab[..ab.len().min(4096)]);
    write(&fr, "seed-session-acceptor", &ba[..ba.len().min(4096)]);

    // handshake input: setup | k | schedule (k bytes) | stream.
    let ab = &ab[..ab.len().min(8192)];
    let ba = &ba[..ba.len().min(8192)];
    let seeds: [(&str, u8, &[u8], &[u8]); 6] = [
        ("seed-acceptor-whole", 0x10, &[], ab),
        ("seed-acceptor-bytewise", 0x10, &[0x00], ab),
        ("seed-acceptor-small-chunks-timers", 0x12, &[0x03, 0x84, 0x0c, 0xa5, 0x1f], ab),
        ("seed-dialer-whole", 0x11, &[0x1f], ba),
        ("seed-dialer-chunks-eof", 0x31, &[0x07, 0x11, 0xc2], ba),
        ("seed-acceptor-packet", 0x14, &[0x1a], &ab[..ab.len().min(600)]),
    ];
    for (name, setup, schedule, stream) in seeds {
        let mut v = vec![setup, schedule.len() as u8];
        v.extend_from_slice(schedule);
        v.extend_from_slice(stream);
        write(&hs, name, &v);
    }
    println!("seeds written to {}", root.display());
}
