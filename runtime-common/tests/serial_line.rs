//! `tandem_runtime::serial` over real pseudo-terminals: raw mode, frames through the tty
//! driver, and two datagram-mode cores calling each other exactly once through a relay that
//! flips, drops and duplicates bytes between two pty pairs.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant as StdInstant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::pty::openpty;
use tandem_core::serial as framing;
use tandem_core::{Config, Connection, Event, Identity, Instant, MethodId, Role, State, Status, Transport};
use tandem_runtime::serial::{baud_rate, configure_raw, open_tty, SerialLine};

const M: MethodId = MethodId::new(7, 1);

/// A pty pair: (master, non-blocking; slave, opened by its path with `open_tty`: raw,
/// non-blocking).
fn pty(baud: u32) -> (File, File) {
    let p = openpty(None, None).expect("openpty");
    let path =
        std::fs::read_link(format!("/proc/self/fd/{}", p.slave.as_raw_fd())).expect("the slave's path");
    let slave = open_tty(&path, baud).expect("open_tty");
    let master = File::from(p.master);
    let flags = fcntl(master.as_raw_fd(), FcntlArg::F_GETFL).expect("F_GETFL");
    fcntl(master.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK))
        .expect("F_SETFL");
    (master, slave)
}

/// Reads a datagram, waiting up to 5 s.
fn read_one(line: &mut SerialLine<File>, buf: &mut [u8]) -> usize {
    let t = StdInstant::now();
    loop {
        match line.read_datagram(buf) {
            Ok(n) => return n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && t.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("read_datagram: {e}"),
        }
    }
}

#[test]
fn baud_rates_and_a_refused_one() {
    assert!(baud_rate(115_200).is_some() && baud_rate(9600).is_some());
    assert!(baud_rate(12_345).is_none());
    let (_m, s) = pty(115_200);
    let err = configure_raw(&s, 12_345).unwrap_err();
    assert!(err.to_string().contains("12345") && err.to_string().contains("115200"), "{err}");
    let err = open_tty(std::path::Path::new("/nonexistent/tty"), 115_200).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/tty"), "{err}");
}

#[test]
fn frames_cross_a_pty_in_both_directions_and_noise_is_dropped() {
    let (mut master, slave) = pty(115_200);
    let mut line = SerialLine::new(slave, 1200);
    // Noise, a frame, a corrupted frame, a frame: the line delivers the two good ones.
    let mut wire = vec![0x42, 0x13, 0x00];
    let frame = |d: &[u8]| {
        let mut out = vec![0u8; framing::encoded_len(d.len())];
        let n = framing::encode(d, &mut out).unwrap();
        out.truncate(n);
        out
    };
    wire.extend(frame(b"first"));
    let mut bad = frame(b"damaged on the way");
    bad[4] ^= 0x01;
    wire.extend(bad);
    // Every byte value crosses the tty unchanged in raw mode (no CR/LF mapping, no XON/XOFF).
    let all: Vec<u8> = (0..=255u8).collect();
    wire.extend(frame(&all));
    master.write_all(&wire).unwrap();
    let mut buf = [0u8; 1200];
    let n = read_one(&mut line, &mut buf);
    assert_eq!(&buf[..n], b"first");
    let n = read_one(&mut line, &mut buf);
    assert_eq!(&buf[..n], &all[..]);
    let s = line.stats();
    assert_eq!((s.frames, s.bad_cobs, s.bad_crc), (2, 1, 1), "{s:?}");
    // And back: one frame per datagram on the master side.
    assert_eq!(line.write_datagram(&all).unwrap(), 256);
    std::thread::sleep(Duration::from_millis(50));
    let mut got = vec![0u8; 1024];
    let n = master.read(&mut got).unwrap();
    assert_eq!(&got[..n], &frame(&all)[..]);
}

/// Copies bytes between two pty masters, damaging the first `budget` bytes of each direction
/// (seeded), then carrying the rest intact, so that the test ends in bounded time whatever the
/// retransmission backoff did meanwhile.
struct Relay {
    rng: u64,
    pending: [Vec<u8>; 2],
    damaged: u64,
    budget: [usize; 2],
}

impl Relay {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Moves what `from` has to `to` (direction `d`), flipping, dropping and duplicating bytes.
    fn pump(&mut self, d: usize, from: &mut File, to: &mut File) {
        let mut buf = [0u8; 4096];
        if let Ok(n) = from.read(&mut buf) {
            for &b in &buf[..n] {
                if self.budget[d] == 0 {
                    self.pending[d].push(b);
                    continue;
                }
                self.budget[d] -= 1;
                match self.next() % 1000 {
                    0 => {
                        self.damaged += 1;
                        let bit = self.next() % 8;
                        self.pending[d].push(b ^ (1 << bit));
                    }
                    1 => self.damaged += 1,
                    2 => {
                        self.damaged += 1;
                        self.pending[d].extend([b, b]);
                    }
                    _ => self.pending[d].push(b),
                }
            }
        }
        if !self.pending[d].is_empty() {
            if let Ok(n) = to.write(&self.pending[d]) {
                self.pending[d].drain(..n);
            }
        }
    }
}

#[test]
fn calls_complete_exactly_once_through_a_damaging_relay() {
    let (mut m1, s1) = pty(115_200);
    let (mut m2, s2) = pty(115_200);
    let cfg = Config {
        transport: Transport::Datagram { max_datagram: 1200 },
        idle_timeout: Duration::ZERO,
        handshake_timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let id = Identity { name: b"tty", ..Identity::default() };
    let start = StdInstant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as u64);
    let mut conns = [
        Connection::new(Role::Dialer, cfg.clone(), id, now()).unwrap(),
        Connection::new(Role::Acceptor, cfg, id, now()).unwrap(),
    ];
    let mut lines = [SerialLine::new(s1, 1200), SerialLine::new(s2, 1200)];
    let mut relay = Relay {
        rng: 0x9E37_79B9_7F4A_7C15,
        pending: [Vec::new(), Vec::new()],
        damaged: 0,
        budget: [8_000; 2],
    };
    const CALLS: usize = 30;
    // Per side: calls made (id → payload, answers), requests handled (id → times).
    let mut made: [Vec<(u64, Vec<u8>, u32)>; 2] = [Vec::new(), Vec::new()];
    let mut handled: [std::collections::BTreeMap<u64, u32>; 2] = Default::default();
    let mut buf = [0u8; 1200];
    let deadline = start + Duration::from_secs(120);
    loop {
        if StdInstant::now() > deadline {
            let open: Vec<Vec<u64>> =
                made.iter().map(|m| m.iter().filter(|c| c.2 == 0).map(|c| c.0).collect()).collect();
            panic!("not done in 120 s: calls made {:?}, unanswered {open:?}", made.map(|m| m.len()));
        }
        let t = now();
        relay.pump(0, &mut m1, &mut m2);
        relay.pump(1, &mut m2, &mut m1);
        for s in 0..2 {
            while let Ok(n) = lines[s].read_datagram(&mut buf) {
                assert!(n > 0, "the line hung up");
                assert_eq!(conns[s].handle_input(t, &buf[..n]), n, "events were drained");
                while let Some(e) = conns[s].poll_event(t) {
                    match e {
                        Event::Request { id, payload, .. } => {
                            *handled[s].entry(id).or_default() += 1;
                            let body = payload.to_vec();
                            conns[s].respond(id, Status::OK, &body).unwrap();
                        }
                        Event::Response { id, status, payload } => {
                            assert_eq!(status, Status::OK);
                            let c = made[s].iter_mut().find(|c| c.0 == id).expect("a call of ours");
                            assert_eq!(c.1, payload, "the answer to call {id}");
                            c.2 += 1;
                        }
                        Event::Connected | Event::Cancelled { .. } => {}
                        other => panic!("side {s}: {other:?}"),
                    }
                }
            }
            if conns[s].state() == State::Open && made[s].len() < CALLS {
                let i = made[s].len();
                let body: Vec<u8> = (0..(i * 37) % 400).map(|k| (k * 7 + i + s) as u8).collect();
                if let Ok(id) = conns[s].call(t, M, &body, None) {
                    made[s].push((id, body, 0));
                }
            }
            conns[s].handle_timeout(t);
            while let n @ 1.. = conns[s].poll_transmit(t, &mut buf) {
                lines[s].write_datagram(&buf[..n]).unwrap();
            }
            lines[s].flush().unwrap();
        }
        let done = made.iter().all(|m| m.len() == CALLS && m.iter().all(|c| c.2 >= 1));
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for s in 0..2 {
        assert!(made[s].iter().all(|c| c.2 == 1), "side {s}: every call answered exactly once");
        assert_eq!(handled[1 - s].len(), CALLS, "side {}: every request handled", 1 - s);
        assert!(handled[1 - s].values().all(|&n| n == 1), "no handler ran twice");
        assert_ne!(conns[s].state(), State::Closed);
    }
    let dropped: u64 = lines.iter().map(|l| l.stats().dropped()).sum();
    let retx: u64 = conns.iter().map(|c| c.stats().retransmissions).sum();
    eprintln!(
        "{} bytes damaged, {dropped} frames dropped, {retx} retransmissions, {:?}",
        relay.damaged,
        start.elapsed()
    );
    assert!(
        relay.damaged > 0 && dropped > 0 && retx > 0,
        "damage {} dropped {dropped} retx {retx}",
        relay.damaged
    );
}
