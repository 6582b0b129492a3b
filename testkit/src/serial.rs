//! Serial lines for tests: pseudo-terminal pairs ([`Pty`]) that a runtime opens by path as
//! `serial:///dev/pts/N`, and a [`Relay`] thread that copies bytes between two byte lines (pty
//! masters, a QEMU UART's Unix socket) while flipping bits in, dropping and duplicating bytes
//! at a seeded rate for a bounded time, counting what it did.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::termios::{self, SetArg};

/// A pseudo-terminal pair: the runtime opens the slave by [`path`](Self::path); the test holds
/// the master (non-blocking) and keeps a slave descriptor open, so that the line does not hang
/// up between two opens.
///
/// The slave starts in raw mode, as a UART is: a new pty is in the terminal's cooked mode, which
/// echoes what arrives (control bytes as `^X`, so without a frame delimiter) until the program
/// that opens the slave configures it; a peer that speaks first then got its own frame back,
/// mangled, glued in front of the program's first answer, which was lost (a dialer's HELLO
/// answered only at its second retransmission, 3 s late and without an RTT sample).
#[derive(Debug)]
pub struct Pty {
    /// The master side, non-blocking.
    pub master: File,
    /// The slave's path (`/dev/pts/N`).
    pub path: PathBuf,
    _slave: OwnedFd,
}

impl Pty {
    /// Opens a pair.
    pub fn open() -> io::Result<Pty> {
        let p = nix::pty::openpty(None, None)?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", p.slave.as_raw_fd()))?;
        let mut t = termios::tcgetattr(&p.slave)?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(&p.slave, SetArg::TCSANOW, &t)?;
        let master = File::from(p.master);
        set_nonblocking(&master)?;
        Ok(Pty { master, path, _slave: p.slave })
    }

    /// `serial://` address of the slave at `baud`.
    pub fn address(&self, baud: u32) -> String {
        format!("serial://{}?baud={baud}", self.path.display())
    }
}

/// Makes a descriptor non-blocking.
pub fn set_nonblocking(f: &impl AsRawFd) -> io::Result<()> {
    let flags = fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?;
    fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// How a [`Relay`] damages the bytes it carries.
#[derive(Clone, Copy, Debug)]
pub struct Noise {
    /// Seed of the generator (xorshift64; non-zero).
    pub seed: u64,
    /// Chance per byte, in millionths, of each damage: one bit flipped, the byte dropped, the
    /// byte sent twice.
    pub per_million: u32,
    /// Only the first `budget` bytes of each direction are exposed to damage. `u64::MAX`:
    /// no limit.
    pub budget: u64,
    /// Only bytes read within `window` of the first byte the relay carried are exposed to
    /// damage; after it the line is clean. This, not the `budget`, bounds a test's time: while
    /// every exchange waits out its retransmission backoff the line is quiet and no budget is
    /// spent, so a byte budget lets the same exchange be damaged attempt after attempt, each
    /// wait twice the last. With a window, an exchange whose attempts were all damaged is
    /// retransmitted once more after the window at the latest one interval after its last
    /// attempt, and as the interval doubles from the initial RTO (SPEC.md §14.4) that interval
    /// is at most the time since the exchange began plus the initial RTO: every exchange ends
    /// within 2·`window` + initial RTO of the first byte. `Duration::MAX`: no limit.
    pub window: Duration,
}

impl Noise {
    /// No damage.
    pub const CLEAN: Noise = Noise { seed: 1, per_million: 0, budget: 0, window: Duration::ZERO };
}

/// What a relay did, per kind of damage and in total.
#[derive(Debug, Default)]
pub struct Counts {
    /// Bytes read from either side.
    pub bytes: AtomicU64,
    /// Bytes with one bit flipped.
    pub flipped: AtomicU64,
    /// Bytes dropped.
    pub dropped: AtomicU64,
    /// Bytes sent twice.
    pub duplicated: AtomicU64,
}

impl Counts {
    /// Bytes damaged (flipped, dropped or duplicated).
    pub fn damaged(&self) -> u64 {
        self.flipped.load(Ordering::Relaxed)
            + self.dropped.load(Ordering::Relaxed)
            + self.duplicated.load(Ordering::Relaxed)
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes relayed: {} flipped, {} dropped, {} duplicated",
            self.bytes.load(Ordering::Relaxed),
            self.flipped.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.duplicated.load(Ordering::Relaxed)
        )
    }
}

/// A byte line a relay reads and writes without blocking (`WouldBlock` when nothing is there).
pub trait Line: Read + Write + Send + 'static {}
impl<T: Read + Write + Send + 'static> Line for T {}

/// A thread that copies bytes both ways between two non-blocking lines, damaging them as its
/// [`Noise`] says. Stopped (and joined) when dropped.
pub struct Relay {
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Starts relaying between `a` and `b` (both non-blocking).
    pub fn start(a: impl Line, b: impl Line, noise: Noise) -> Relay {
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("serial-relay".into())
            .spawn(move || run(Box::new(a), Box::new(b), noise, &c, &s))
            .expect("spawn the relay thread");
        Relay { counts, stop, thread: Some(thread) }
    }

    /// What it did so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Direction {
    pending: Vec<u8>,
    budget: u64,
}

fn run(mut a: Box<dyn Line>, mut b: Box<dyn Line>, noise: Noise, counts: &Counts, stop: &AtomicBool) {
    let mut rng = noise.seed.max(1);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut dirs = [
        Direction { pending: Vec::new(), budget: noise.budget },
        Direction { pending: Vec::new(), budget: noise.budget },
    ];
    let mut buf = [0u8; 4096];
    // When the first byte was read: the noise window starts there.
    let mut first: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut moved = false;
        for (d, dir) in dirs.iter_mut().enumerate() {
            let (from, to): (&mut dyn Line, &mut dyn Line) =
                if d == 0 { (&mut *a, &mut *b) } else { (&mut *b, &mut *a) };
            // A line whose other end is gone (EIO on a pty, end of a socket) just stays quiet.
            if let Ok(n @ 1..) = from.read(&mut buf) {
                moved = true;
                counts.bytes.fetch_add(n as u64, Ordering::Relaxed);
                let noisy = first.get_or_insert_with(Instant::now).elapsed() < noise.window;
                for &byte in &buf[..n] {
                    if !noisy || dir.budget == 0 || noise.per_million == 0 {
                        dir.pending.push(byte);
                        continue;
                    }
                    dir.budget = dir.budget.saturating_sub(1);
                    let p = u64::from(noise.per_million);
                    match next() % 1_000_000 {
                        r if r < p => {
                            counts.flipped.fetch_add(1, Ordering::Relaxed);
                            dir.pending.push(byte ^ (1 << (next() % 8)));
                        }
                        r if r < 2 * p => {
                            counts.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        r if r < 3 * p => {
                            counts.duplicated.fetch_add(1, Ordering::Relaxed);
                            dir.pending.extend([byte, byte]);
                        }
                        _ => dir.pending.push(byte),
                    }
                }
            }
            if !dir.pending.is_empty() {
                if let Ok(n @ 1..) = to.write(&dir.pending) {
                    dir.pending.drain(..n);
                    moved = true;
                }
            }
        }
        if !moved {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::net::UnixStream;

    /// Reads what arrives on `from` until it has been quiet for 200 ms.
    fn drain(from: &mut UnixStream) -> Vec<u8> {
        from.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (mut got, mut buf) = (Vec::new(), [0u8; 4096]);
        while let Ok(n @ 1..) = from.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[test]
    fn a_pty_neither_echoes_nor_holds_back_what_arrives_before_a_program_configures_it() {
        let mut pty = Pty::open().unwrap();
        // A frame with control bytes (cooked mode: ERASE, CR) before anyone opened the
        // slave's path.
        let frame = [0x06, 0x10, 0x01, 0x02, 0x7f, 0x0d, 0x00];
        pty.master.write_all(&frame).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let mut echo = [0u8; 64];
        let back = pty.master.read(&mut echo);
        assert!(
            matches!(&back, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "the line echoed: {back:?} {:02x?}",
            &echo[..*back.as_ref().unwrap_or(&0)]
        );
        let mut slave = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
            .open(&pty.path)
            .unwrap();
        let mut got = [0u8; 64];
        let n = slave.read(&mut got).expect("the bytes are there to read, unedited");
        assert_eq!(&got[..n], &frame);
    }

    #[test]
    fn the_relay_damages_bytes_only_within_its_window() {
        let ((mut a, a_relay), (b_relay, mut b)) = (UnixStream::pair().unwrap(), UnixStream::pair().unwrap());
        a_relay.set_nonblocking(true).unwrap();
        b_relay.set_nonblocking(true).unwrap();
        let window = Duration::from_millis(300);
        let noise = Noise { seed: 7, per_million: 50_000, budget: u64::MAX, window };
        let relay = Relay::start(a_relay, b_relay, noise);
        let sent: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        a.write_all(&sent).unwrap();
        assert_ne!(drain(&mut b), sent, "damaged within the window");
        let damaged = relay.counts().damaged();
        assert!(damaged > 0);
        std::thread::sleep(window);
        a.write_all(&sent).unwrap();
        assert_eq!(drain(&mut b), sent, "clean after the window");
        assert_eq!(relay.counts().damaged(), damaged);
    }
}
