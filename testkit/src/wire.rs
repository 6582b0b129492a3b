//! A raw peer over a real socket (TCP or Unix stream): frames are encoded and decoded with the
//! core's codec ([`tandem_core::frame`]) and written exactly as the test says — a hostile peer
//! is one that sends what a correct implementation never would, or stays within every limit
//! while doing as much damage as it can.
//!
//! ```no_run
//! use std::time::Duration;
//! use tandem_testkit::wire::{RawPeer, Got};
//! use tandem_core::frame::Frame;
//!
//! let mut p = RawPeer::connect("tcp://127.0.0.1:7400").unwrap();
//! p.hello("attacker", &[]).unwrap();
//! let server_hello = p.expect_hello(Duration::from_secs(2)).unwrap();
//! p.send(&Frame::Ping(*b"pingpong")).unwrap();
//! match p.recv(Duration::from_secs(1)) {
//!     Got::Frame(f) => println!("{:?}", f.frame()),
//!     other => println!("{other:?}"),
//! }
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use tandem_core::config::PeerLimits;
use tandem_core::frame::{Decoded, Frame, Hello, Params, Request};
use tandem_core::Status;

/// Largest frame body the raw peer accepts from the other side.
const MAX_BODY: usize = 16 << 20;

enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Sock {
    fn try_clone(&self) -> io::Result<Sock> {
        Ok(match self {
            Sock::Tcp(s) => Sock::Tcp(s.try_clone()?),
            Sock::Unix(s) => Sock::Unix(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_read_timeout(t),
            Sock::Unix(s) => s.set_read_timeout(t),
        }
    }
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_write_timeout(t),
            Sock::Unix(s) => s.set_write_timeout(t),
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A received frame, kept encoded (decode it with [`OwnedFrame::frame`]).
#[derive(Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    bytes: Vec<u8>,
}

impl OwnedFrame {
    /// The decoded frame.
    pub fn frame(&self) -> Frame<'_> {
        match Frame::decode(&self.bytes, MAX_BODY) {
            Ok(Decoded::Frame(f, _)) => f,
            _ => unreachable!("an OwnedFrame decoded once already"),
        }
    }

    /// The frame's type byte.
    pub fn ty(&self) -> u8 {
        self.bytes[0]
    }

    /// The frame's encoded bytes (header and body).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl core::fmt::Debug for OwnedFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.frame())
    }
}

/// What one [`RawPeer::recv`] produced.
#[derive(Debug)]
pub enum Got {
    /// One complete frame.
    Frame(OwnedFrame),
    /// The other side closed the transport (end of stream).
    Eof,
    /// The other side's bytes do not decode (a bug in the implementation under test).
    Bad(String),
    /// Nothing complete arrived in time.
    Timeout,
    /// The transport failed (connection reset and the like).
    Failed(io::ErrorKind),
}

/// One raw transport connection to an implementation under test.
pub struct RawPeer {
    sock: Sock,
    /// Received bytes; those before `start` are already returned as frames.
    buf: Vec<u8>,
    start: usize,
    eof: bool,
}

/// Encodes `f` into a new vector.
pub fn encode(f: &Frame<'_>) -> Vec<u8> {
    let mut out = vec![0u8; f.encoded_len()];
    let n = f.encode(&mut out).expect("encode into encoded_len bytes");
    out.truncate(n);
    out
}

/// A CALL frame (no deadline, not fragmented).
pub fn call(id: u64, module: u32, method: u32, payload: &[u8]) -> Vec<u8> {
    encode(&Frame::Call(Request { flags: 0, id, module, method, budget_us: 0, total_len: None, payload }))
}

/// A STREAM_OPEN frame (no deadline, not fragmented).
pub fn stream_open(id: u64, module: u32, method: u32, fin: bool, payload: &[u8]) -> Vec<u8> {
    let flags = if fin { tandem_core::frame::flags::FIN } else { 0 };
    encode(&Frame::StreamOpen(Request { flags, id, module, method, budget_us: 0, total_len: None, payload }))
}

impl RawPeer {
    /// Connects to `tcp://HOST:PORT` or `unix:///PATH`.
    pub fn connect(addr: &str) -> io::Result<RawPeer> {
        let sock = if let Some(a) = addr.strip_prefix("tcp://") {
            let s = TcpStream::connect(a)?;
            s.set_nodelay(true)?;
            Sock::Tcp(s)
        } else if let Some(p) = addr.strip_prefix("unix://") {
            Sock::Unix(UnixStream::connect(p)?)
        } else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("raw peer cannot dial {addr}")));
        };
        Ok(RawPeer { sock, buf: Vec::new(), start: 0, eof: false })
    }

    /// A second handle on the same transport, with its own (empty) receive buffer: one thread
    /// can write through it (a flood) while another reads, or waits, on the original.
    pub fn try_clone(&self) -> io::Result<RawPeer> {
        Ok(RawPeer { sock: self.sock.try_clone()?, buf: Vec::new(), start: 0, eof: false })
    }

    /// Bounds how long a write may block on a peer that does not read (`None`: forever).
    pub fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(t)
    }

    /// Writes raw bytes (any bytes: a hostile peer need not send valid frames).
    pub fn send_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.sock.write_all(b)
    }

    /// Writes one frame.
    pub fn send(&mut self, f: &Frame<'_>) -> io::Result<()> {
        self.send_bytes(&encode(f))
    }

    /// Sends a dialer's HELLO (version 1 only) with `name` and the given parameters.
    pub fn hello(&mut self, name: &str, params: &[(u64, u64)]) -> io::Result<()> {
        self.hello_with(name.as_bytes(), b"", b"", 0, params)
    }

    /// Sends a HELLO with every field given.
    pub fn hello_with(
        &mut self,
        name: &[u8],
        auth: &[u8],
        session: &[u8],
        flags: u64,
        params: &[(u64, u64)],
    ) -> io::Result<()> {
        let mut pbuf = vec![0u8; 16 + params.len() * 20];
        let params = Params::encode_into(params, &mut pbuf).unwrap_or(Params::EMPTY);
        self.send(&Frame::Hello(Hello { min_version: 1, max_version: 1, flags, name, auth, session, params }))
    }

    /// Waits for the other side's HELLO and returns the limits it announced.
    pub fn expect_hello(&mut self, timeout: Duration) -> io::Result<PeerLimits> {
        match self.recv(timeout) {
            Got::Frame(f) => match f.frame() {
                Frame::Hello(h) => PeerLimits::from_params(h.params.iter())
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "HELLO parameter out of range")),
                other => {
                    Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected HELLO, got {other:?}")))
                }
            },
            other => {
                Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected HELLO, got {other:?}")))
            }
        }
    }

    /// The next frame, waiting up to `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Got {
        let end = Instant::now() + timeout;
        loop {
            match Frame::decode(&self.buf[self.start..], MAX_BODY) {
                Ok(Decoded::Frame(_, n)) => {
                    let bytes = self.buf[self.start..self.start + n].to_vec();
                    // Consumed bytes are dropped lazily, so that reading many small frames
                    // from one large chunk stays linear.
                    self.start += n;
                    if self.start == self.buf.len() {
                        self.buf.clear();
                        self.start = 0;
                    } else if self.start >= 64 * 1024 {
                        self.buf.drain(..self.start);
                        self.start = 0;
                    }
                    return Got::Frame(OwnedFrame { bytes });
                }
                Ok(Decoded::Incomplete(_)) => {}
                Err(e) => return Got::Bad(format!("{e:?}")),
            }
            if self.eof {
                return Got::Eof;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Timeout;
            }
            if let Err(e) = self.sock.set_read_timeout(Some(left)) {
                return Got::Failed(e.kind());
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.sock.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Got::Timeout
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Got::Failed(e.kind()),
            }
        }
    }

    /// Reads (and drops) frames until CLOSE arrives and returns its status and message; `None`
    /// when the transport ended, failed or timed out without one.
    pub fn expect_close(&mut self, timeout: Duration) -> Result<(Status, String), Got> {
        let end = Instant::now() + timeout;
        loop {
            match self.recv(end.saturating_duration_since(Instant::now())) {
                Got::Frame(f) => {
                    if let Frame::Close { status, message } = f.frame() {
                        return Ok((status, String::from_utf8_lossy(message).into_owned()));
                    }
                }
                other => return Err(other),
            }
        }
    }

    /// Reads (and drops) whatever arrives for `d`; returns the number of frames read and whether
    /// the transport ended.
    pub fn drain_for(&mut self, d: Duration) -> (usize, bool) {
        let end = Instant::now() + d;
        let mut n = 0;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (n, false);
            }
            match self.recv(left) {
                Got::Frame(_) => n += 1,
                Got::Timeout => return (n, false),
                _ => return (n, true),
            }
        }
    }
}

/// Calls `module/method` as a dialer (no session), then reads the frames that come back one at
/// a time, pausing `pause` after each, until the RESPONSE to that call arrives; returns how
/// many SIGNAL frames came before it. A peer that reads this slowly fills the other side's
/// socket: a server whose handler floods the caller with signals must then be woken by
/// writability alone, as the caller sends nothing more.
pub fn slow_reader(
    addr: &str,
    module: u32,
    method: u32,
    pause: Duration,
    timeout: Duration,
) -> Result<usize, String> {
    use tandem_core::frame::ty;
    let mut p = RawPeer::connect(addr).map_err(|e| format!("connect: {e}"))?;
    p.hello("slow-reader", &[]).map_err(|e| format!("HELLO: {e}"))?;
    p.expect_hello(timeout).map_err(|e| format!("the server's HELLO: {e}"))?;
    p.send_bytes(&call(0, module, method, &[])).map_err(|e| format!("CALL: {e}"))?;
    let end = Instant::now() + timeout;
    let mut signals = 0;
    loop {
        match p.recv(end.saturating_duration_since(Instant::now())) {
            Got::Frame(f) if f.ty() == ty::SIGNAL => signals += 1,
            Got::Frame(f) if f.ty() == ty::RESPONSE => return Ok(signals),
            Got::Frame(_) => {}
            other => return Err(format!("after {signals} signals: {other:?}")),
        }
        std::thread::sleep(pause);
    }
}
