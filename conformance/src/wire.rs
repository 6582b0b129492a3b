//! The runner's raw peer: frames written and read with the reference codec over a real socket,
//! every frame logged in decoded form.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};
use tandem_core::addr::Address;
use tandem_core::frame::{DecodeError, Decoded, Frame};
use tandem_core::Status;

use crate::tls::{TlsClient, TlsSettings, TlsStream};

/// Largest SEQPACKET datagram the runner reads.
const MAX_PACKET: usize = 1 << 20;

enum Sock {
    Tcp(TcpStream),
    Unix(UnixStream),
    Seq(Socket),
    /// A UDP socket and, for an association accepted on the runner's shared listening socket,
    /// the peer (datagrams from other sources are ignored; the socket itself stays unconnected so
    /// that the next association can come from another address).
    Udp(UdpSocket, Option<std::net::SocketAddr>),
    /// TLS on TCP (`tls://`, SPEC.md §3.9), either side.
    Tls(Box<TlsStream>),
    /// WebSocket (`ws://`, SPEC.md §3.10), either side: one binary message per send.
    Ws(Box<crate::ws::Ws>),
}

/// What reading produced.
#[derive(Debug)]
pub enum Recv {
    /// One complete frame (its encoded bytes).
    Frame(Owned),
    /// The peer closed the transport.
    Eof,
    /// The bytes from the peer do not decode.
    Bad(DecodeError),
    /// Nothing complete arrived in time.
    Timeout,
    /// The transport failed (reset, …).
    Failed(String),
}

/// A received frame, kept encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    /// The frame's bytes (header and body).
    pub bytes: Vec<u8>,
}

impl Owned {
    /// The decoded frame.
    pub fn frame(&self) -> Frame<'_> {
        match Frame::decode(&self.bytes, usize::MAX >> 1) {
            Ok(Decoded::Frame(f, _)) => f,
            _ => unreachable!("an Owned frame decoded once already"),
        }
    }
}

/// The shared log of frames exchanged in one case.
pub type Log = Arc<Mutex<Vec<String>>>;

/// One transport connection of the runner.
pub struct Wire {
    sock: Sock,
    buf: Vec<u8>,
    /// Largest body accepted from the peer.
    pub limit: usize,
    log: Log,
    start: Instant,
    eof: bool,
}

fn hex(b: &[u8], max: usize) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().take(max).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{x:02x}");
    }
    if b.len() > max {
        let _ = write!(s, " … ({} bytes)", b.len());
    }
    s
}

fn text(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

fn st(s: Status) -> String {
    match s.info() {
        Some((n, _, _)) => format!("{n}({})", s.0),
        None => format!("status {}", s.0),
    }
}

fn payload(p: &[u8], total: Option<u64>) -> String {
    let t = total.map(|t| format!(" total_len={t}")).unwrap_or_default();
    format!("{t} payload=[{}]", hex(p, 24))
}

fn fl(flags: u8) -> String {
    let mut v = Vec::new();
    if flags & 1 != 0 {
        v.push("MORE");
    }
    if flags & 2 != 0 {
        v.push("FIN");
    }
    if flags & 4 != 0 {
        v.push("KEY");
    }
    if v.is_empty() {
        String::new()
    } else {
        format!(" {}", v.join("|"))
    }
}

/// A one-line description of a frame.
pub fn describe(f: &Frame<'_>) -> String {
    match f {
        Frame::Hello(h) => {
            let params: Vec<String> = h.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "HELLO v{}..{} flags={} name={} auth=[{}] session=[{}] params{{{}}}",
                h.min_version,
                h.max_version,
                h.flags,
                text(h.name),
                hex(h.auth, 8),
                hex(h.session, 8),
                params.join(",")
            )
        }
        Frame::Close { status, message } => format!("CLOSE {} {}", st(*status), text(message)),
        Frame::GoAway { bound, status, message } => {
            format!("GOAWAY bound={bound} {} {}", st(*status), text(message))
        }
        Frame::Ping(d) => format!("PING [{}]", hex(d, 8)),
        Frame::Pong(d) => format!("PONG [{}]", hex(d, 8)),
        Frame::Ack(a) => format!("ACK {:?}", a.iter().collect::<Vec<_>>()),
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => format!(
            "{} id={}{} method={}/{} budget_us={}{}",
            match f {
                Frame::Call(_) => "CALL",
                Frame::Notify(_) => "NOTIFY",
                _ => "STREAM_OPEN",
            },
            r.id,
            fl(r.flags),
            r.module,
            r.method,
            r.budget_us,
            payload(r.payload, r.total_len)
        ),
        Frame::Keyed { ty, key, req: r } => format!(
            "{} id={}{} method={}/{} key={key} budget_us={}{}",
            match *ty {
                tandem_core::frame::ty::CALL => "CALL",
                tandem_core::frame::ty::NOTIFY => "NOTIFY",
                _ => "STREAM_OPEN",
            },
            r.id,
            fl(r.flags | 4),
            r.module,
            r.method,
            r.budget_us,
            payload(r.payload, r.total_len)
        ),
        Frame::Signal { module, method, payload: p } => {
            format!("SIGNAL method={module}/{method}{}", payload(p, None))
        }
        Frame::SignalKeyed { module, method, key, payload: p } => {
            format!("SIGNAL_KEYED method={module}/{method} key={key}{}", payload(p, None))
        }
        Frame::Response { flags, id, status, total_len, payload: p } => {
            format!("RESPONSE id={id}{} {}{}", fl(*flags), st(*status), payload(p, *total_len))
        }
        Frame::Cancel { id } => format!("CANCEL id={id}"),
        Frame::StreamData { flags, id, total_len, payload: p } => {
            format!("STREAM_DATA id={id}{}{}", fl(*flags), payload(p, *total_len))
        }
        Frame::StreamFin { id, status } => format!("STREAM_FIN id={id} {}", st(*status)),
        Frame::StreamReset { id, status } => format!("STREAM_RESET id={id} {}", st(*status)),
        Frame::StreamCredit { id, msgs, bytes } => format!("STREAM_CREDIT id={id} msgs={msgs} bytes={bytes}"),
        Frame::ConnCredit { bytes } => format!("CONN_CREDIT bytes={bytes}"),
        Frame::StreamResume { id, received } => format!("STREAM_RESUME id={id} received={received}"),
        Frame::Continuation { flags, id, payload: p } => {
            format!("CONTINUATION id={id}{}{}", fl(*flags), payload(p, None))
        }
        Frame::Extension { ty, body } => format!("EXTENSION type=0x{ty:02x} body=[{}]", hex(body, 16)),
    }
}

/// Encodes a frame.
pub fn encode(f: &Frame<'_>) -> Vec<u8> {
    let mut out = vec![0; f.encoded_len()];
    let n = f.encode(&mut out).expect("encoded_len is enough");
    out.truncate(n);
    out
}

/// Describes raw bytes as the frames they decode to (up to the first error).
pub fn describe_bytes(b: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rest = b;
    while !rest.is_empty() {
        match Frame::decode(rest, usize::MAX >> 1) {
            Ok(Decoded::Frame(f, n)) => {
                parts.push(describe(&f));
                rest = &rest[n..];
            }
            Ok(Decoded::Incomplete(_)) => {
                parts.push(format!("incomplete frame [{}]", hex(rest, 24)));
                break;
            }
            Err(e) => {
                parts.push(format!("undecodable [{}] ({e:?})", hex(rest, 24)));
                break;
            }
        }
    }
    parts.join(" + ")
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// A listening socket of the runner (`run --listen`).
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix stream.
    Unix(UnixListener, PathBuf),
    /// Unix SEQPACKET.
    Seq(Socket, PathBuf),
    /// UDP (datagram mode, SPEC.md §14): one socket; each accepted "connection" is an association
    /// with the source address of the next datagram.
    Udp(UdpSocket),
    /// TLS on TCP: each accepted connection does the TLS handshake (server side) first.
    Tls(TcpListener, Arc<rustls::ServerConfig>),
    /// WebSocket: each accepted connection upgrades on this path first.
    Ws(TcpListener, String),
}

impl Listener {
    /// Binds `addr` (a stale Unix socket file is removed first). A `tls://` address needs the
    /// runner's server certificate: see [`bind_with`](Self::bind_with).
    pub fn bind(addr: &Address) -> io::Result<Listener> {
        Listener::bind_with(addr, &TlsSettings::default())
    }

    /// Binds `addr`; over `tls://` the runner serves TLS with `tls`'s certificate and key.
    pub fn bind_with(addr: &Address, tls: &TlsSettings) -> io::Result<Listener> {
        match addr {
            Address::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a)?)),
            Address::Unix(p) => {
                let _ = std::fs::remove_file(p);
                Ok(Listener::Unix(UnixListener::bind(p)?, p.clone()))
            }
            Address::UnixSeqpacket(p) => {
                let _ = std::fs::remove_file(p);
                let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
                s.bind(&SockAddr::unix(p)?)?;
                s.listen(64)?;
                Ok(Listener::Seq(s, p.clone()))
            }
            Address::Udp(a) => Ok(Listener::Udp(UdpSocket::bind(a)?)),
            Address::Tls(a) => {
                let config = tls.server()?;
                Ok(Listener::Tls(TcpListener::bind(a)?, config))
            }
            Address::WebSocket { tls: false, host_port, path } => {
                Ok(Listener::Ws(TcpListener::bind(host_port)?, path.clone()))
            }
            Address::WebSocket { tls: true, .. } => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr}: the runner serves ws:// (not wss://)"),
            )),
            Address::Serial { .. } => Err(serial_unsupported(addr)),
        }
    }

    /// The bound address (with the real port for `tcp://…:0`).
    pub fn local_addr(&self) -> Address {
        match self {
            Listener::Tcp(l) => Address::Tcp(l.local_addr().map(|a| a.to_string()).unwrap_or_default()),
            Listener::Unix(_, p) => Address::Unix(p.clone()),
            Listener::Seq(_, p) => Address::UnixSeqpacket(p.clone()),
            Listener::Udp(s) => Address::Udp(s.local_addr().map(|a| a.to_string()).unwrap_or_default()),
            Listener::Tls(l, _) => Address::Tls(l.local_addr().map(|a| a.to_string()).unwrap_or_default()),
            Listener::Ws(l, path) => Address::WebSocket {
                tls: false,
                host_port: l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                path: path.clone(),
            },
        }
    }

    /// Accepts one connection within `timeout`.
    pub fn accept(&self, timeout: Duration, log: Log) -> io::Result<Wire> {
        let end = Instant::now() + timeout;
        loop {
            let r = match self {
                Listener::Tcp(l) => {
                    l.set_nonblocking(true)?;
                    l.accept().map(|(s, _)| {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_nodelay(true);
                        Sock::Tcp(s)
                    })
                }
                Listener::Tls(l, config) => {
                    l.set_nonblocking(true)?;
                    match l.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false)?;
                            s.set_nodelay(true)?;
                            // A failed handshake is reported, not retried: the implementation
                            // must see the runner's certificate (or the case fails saying why).
                            TlsStream::accept(config, s)
                                .map(|t| Sock::Tls(Box::new(t)))
                                .map_err(|e| io::Error::other(format!("accepting over TLS: {e}")))
                        }
                        Err(e) => Err(e),
                    }
                }
                Listener::Ws(l, path) => {
                    l.set_nonblocking(true)?;
                    match l.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false)?;
                            crate::ws::accept(s, path).map(|w| Sock::Ws(Box::new(w)))
                        }
                        Err(e) => Err(e),
                    }
                }
                Listener::Unix(l, _) => {
                    l.set_nonblocking(true)?;
                    l.accept().map(|(s, _)| {
                        let _ = s.set_nonblocking(false);
                        Sock::Unix(s)
                    })
                }
                Listener::Seq(l, _) => {
                    l.set_nonblocking(true)?;
                    l.accept().map(|(s, _)| {
                        let _ = s.set_nonblocking(false);
                        Sock::Seq(s)
                    })
                }
                Listener::Udp(l) => {
                    // The association is with whoever sends the next datagram; it stays queued.
                    l.set_read_timeout(Some(
                        end.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
                    ))?;
                    let mut b = [0u8; 1];
                    match l.peek_from(&mut b) {
                        // Only a datagram whose first frame is a HELLO starts an association
                        // (SPEC.md §14.1); anything else (a finished association's stragglers) is
                        // consumed and dropped.
                        Ok((n, _)) if n == 0 || b[0] != tandem_core::frame::ty::HELLO => {
                            let mut sink = vec![0u8; 65536];
                            let _ = l.recv_from(&mut sink);
                            Err(io::Error::new(io::ErrorKind::WouldBlock, "not a HELLO"))
                        }
                        Ok((_, from)) => Ok(Sock::Udp(l.try_clone()?, Some(from))),
                        // Windows-style "message too long" on peek still names a sender.
                        Err(e) => Err(e),
                    }
                }
            };
            match r {
                Ok(sock) => return Ok(Wire::new(sock, log)),
                Err(e) if is_timeout(&e) && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) if is_timeout(&e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no connection from the implementation",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        match self {
            Listener::Unix(_, p) | Listener::Seq(_, p) => {
                let _ = std::fs::remove_file(p);
            }
            Listener::Tcp(_) | Listener::Udp(_) | Listener::Tls(..) | Listener::Ws(..) => {}
        }
    }
}

impl Drop for Wire {
    /// A UDP association the runner accepted ends with CLOSE(OK), so that the implementation
    /// dials again for the next case (SPEC.md A.4) instead of keeping the association.
    fn drop(&mut self) {
        if let Sock::Udp(s, Some(to)) = &self.sock {
            let close = encode(&Frame::Close { status: Status::OK, message: b"" });
            let _ = s.send_to(&close, *to);
        }
    }
}

impl Wire {
    fn new(sock: Sock, log: Log) -> Wire {
        Wire { sock, buf: Vec::new(), limit: 4096, log, start: Instant::now(), eof: false }
    }

    /// Connects to `addr` over TLS (a `tls://` address): TCP, then the TLS handshake.
    pub fn connect_tls(addr: &Address, tls: &TlsClient, log: Log) -> io::Result<Wire> {
        let Address::Tls(a) = addr else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} is not a tls:// address"),
            ));
        };
        let s = TcpStream::connect(a)?;
        s.set_nodelay(true)?;
        let t = TlsStream::connect(tls, s)?;
        Ok(Wire::new(Sock::Tls(Box::new(t)), log))
    }

    /// Connects to `addr` (`tls://` needs [`connect_tls`](Self::connect_tls)).
    pub fn connect(addr: &Address, log: Log) -> io::Result<Wire> {
        let sock = match addr {
            Address::Tcp(a) => {
                let s = TcpStream::connect(a)?;
                s.set_nodelay(true)?;
                Sock::Tcp(s)
            }
            Address::Unix(p) => Sock::Unix(UnixStream::connect(p)?),
            Address::UnixSeqpacket(p) => {
                let s = Socket::new(Domain::UNIX, Type::SEQPACKET, None)?;
                s.connect(&SockAddr::unix(p)?)?;
                Sock::Seq(s)
            }
            Address::Udp(a) => {
                let to = a
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
                let s = UdpSocket::bind(if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
                s.connect(to)?;
                Sock::Udp(s, None)
            }
            Address::Tls(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{addr}: dialing tls:// needs the runner's TLS settings (--tls-ca)"),
                ))
            }
            Address::WebSocket { .. } => Sock::Ws(Box::new(crate::ws::connect(addr)?)),
            Address::Serial { .. } => return Err(serial_unsupported(addr)),
        };
        Ok(Wire::new(sock, log))
    }

    /// Whether this is a packet transport.
    pub fn is_packet(&self) -> bool {
        matches!(self.sock, Sock::Seq(_) | Sock::Udp(..) | Sock::Ws(_))
    }

    /// Whether this is a UDP association (datagram mode, SPEC.md §14).
    pub fn is_udp(&self) -> bool {
        matches!(self.sock, Sock::Udp(..))
    }

    /// Appends a line to the case log.
    pub fn note(&self, line: impl AsRef<str>) {
        let t = self.start.elapsed();
        let line = format!("{:>6.1}ms {}", t.as_secs_f64() * 1000.0, line.as_ref());
        self.log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    }

    /// Sends bytes as one transport write (one datagram on SEQPACKET).
    pub fn send_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.note(format!("→ {}", describe_bytes(b)));
        let r = match &mut self.sock {
            Sock::Tcp(s) => s.write_all(b),
            Sock::Unix(s) => s.write_all(b),
            Sock::Tls(s) => s.write_all(b).and_then(|()| s.flush()),
            Sock::Seq(s) => s.send(b).map(drop),
            Sock::Ws(s) => crate::ws::send(s, b),
            Sock::Udp(s, None) => s.send(b).map(drop),
            Sock::Udp(s, Some(to)) => s.send_to(b, *to).map(drop),
        };
        if let Err(e) = &r {
            self.note(format!("   (write failed: {e})"));
        }
        r
    }

    /// Sends frames in one transport write.
    pub fn send(&mut self, frames: &[Frame<'_>]) -> io::Result<()> {
        let mut b = Vec::new();
        for f in frames {
            b.extend_from_slice(&encode(f));
        }
        self.send_bytes(&b)
    }

    /// Shuts down the runner's sending direction (byte streams) or closes (SEQPACKET).
    pub fn shutdown_write(&mut self) {
        self.note("→ (end of transport)");
        let _ = match &mut self.sock {
            Sock::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Sock::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Sock::Tls(s) => s.shutdown_write(),
            Sock::Seq(s) => s.shutdown(std::net::Shutdown::Write),
            Sock::Ws(s) => crate::ws::shutdown_write(s),
            Sock::Udp(..) => Ok(()),
        };
    }

    fn read_some(&mut self, timeout: Duration) -> io::Result<usize> {
        let t = Some(timeout.max(Duration::from_millis(1)));
        match &mut self.sock {
            Sock::Tcp(s) => {
                s.set_read_timeout(t)?;
                let mut b = [0u8; 65536];
                let n = s.read(&mut b)?;
                self.buf.extend_from_slice(&b[..n]);
                Ok(n)
            }
            Sock::Unix(s) => {
                s.set_read_timeout(t)?;
                let mut b = [0u8; 65536];
                let n = s.read(&mut b)?;
                self.buf.extend_from_slice(&b[..n]);
                Ok(n)
            }
            Sock::Tls(s) => {
                s.tcp().set_read_timeout(t)?;
                let mut b = [0u8; 65536];
                let n = match s.read(&mut b) {
                    Ok(n) => n,
                    // The TCP connection ended without TLS close_notify: still the end of the
                    // transport (the log says how it ended).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        self.note("← (TCP closed without TLS close_notify)");
                        return Ok(0);
                    }
                    Err(e) => return Err(e),
                };
                self.buf.extend_from_slice(&b[..n]);
                Ok(n)
            }
            Sock::Ws(s) => crate::ws::recv(s, timeout.max(Duration::from_millis(1)), &mut self.buf),
            Sock::Seq(s) => {
                s.set_read_timeout(t)?;
                let mut b = vec![0u8; MAX_PACKET];
                let n = (&*s).read(&mut b)?;
                self.buf.extend_from_slice(&b[..n]);
                Ok(n)
            }
            Sock::Udp(s, peer) => {
                s.set_read_timeout(t)?;
                let mut b = vec![0u8; 65536];
                let n = match peer {
                    None => s.recv(&mut b)?,
                    Some(p) => {
                        let (n, from) = s.recv_from(&mut b)?;
                        if from != *p {
                            // Another association's datagram (a stale one): not ours.
                            return Err(io::Error::new(io::ErrorKind::WouldBlock, "other source"));
                        }
                        n
                    }
                };
                if n == 0 {
                    self.note("← (empty datagram)");
                    // An empty datagram is not the end of anything (SPEC.md §14.2).
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "empty datagram"));
                }
                self.buf.extend_from_slice(&b[..n]);
                Ok(n)
            }
        }
    }

    /// Reads the next frame, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Recv {
        let end = Instant::now() + timeout;
        loop {
            match Frame::decode(&self.buf, self.limit) {
                Ok(Decoded::Frame(_, n)) => {
                    let bytes: Vec<u8> = self.buf.drain(..n).collect();
                    let o = Owned { bytes };
                    self.note(format!("← {}", describe(&o.frame())));
                    return Recv::Frame(o);
                }
                Ok(Decoded::Incomplete(_)) if self.is_udp() && !self.buf.is_empty() => {
                    // A datagram holds whole frames only (SPEC.md §14.2).
                    self.note(format!("← datagram ending inside a frame [{}]", hex(&self.buf, 24)));
                    self.buf.clear();
                    return Recv::Bad(DecodeError::Truncated);
                }
                Ok(Decoded::Incomplete(_)) => {}
                Err(e) => {
                    self.note(format!("← undecodable [{}]: {e:?}", hex(&self.buf, 24)));
                    self.buf.clear();
                    return Recv::Bad(e);
                }
            }
            if self.eof {
                return Recv::Eof;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Recv::Timeout;
            }
            match self.read_some(left) {
                Ok(0) => {
                    self.eof = true;
                    if !self.buf.is_empty() {
                        self.note(format!("← end of transport inside a frame [{}]", hex(&self.buf, 24)));
                    } else {
                        self.note("← (end of transport)");
                    }
                }
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.note(format!("← (transport error: {e})"));
                    self.eof = true;
                    return Recv::Failed(e.to_string());
                }
            }
        }
    }
}

/// The runner speaks frames on sockets; a serial line's framing (SPEC.md §14.9) is covered by the
/// `serial` vectors instead.
fn serial_unsupported(addr: &Address) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{addr}: the conformance runner does not run over serial lines (their framing is covered by the serial vectors)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Log {
        Arc::new(Mutex::new(Vec::new()))
    }

    /// A plain UDP echo server: every datagram is sent back to its sender, unchanged.
    fn echo() -> Address {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = s.local_addr().expect("addr");
        std::thread::spawn(move || {
            let mut b = vec![0u8; 65536];
            while let Ok((n, from)) = s.recv_from(&mut b) {
                let _ = s.send_to(&b[..n], from);
            }
        });
        Address::Udp(addr.to_string())
    }

    fn frame(r: Recv) -> Frame<'static> {
        match r {
            Recv::Frame(o) => match o.frame() {
                Frame::Ping(d) => Frame::Ping(d),
                Frame::Pong(d) => Frame::Pong(d),
                f => panic!("unexpected {}", describe(&f)),
            },
            r => panic!("expected a frame, got {r:?}"),
        }
    }

    #[test]
    fn a_udp_wire_sends_one_datagram_per_write_and_reads_the_frames_of_each_datagram() {
        let mut w = Wire::connect(&echo(), log()).expect("connect");
        assert!(w.is_udp() && w.is_packet());
        w.send(&[Frame::Ping(*b"one.....")]).expect("send");
        w.send(&[Frame::Ping(*b"two....."), Frame::Pong(*b"three...")]).expect("send");
        let t = Duration::from_secs(5);
        assert_eq!(frame(w.recv(t)), Frame::Ping(*b"one....."));
        assert_eq!(frame(w.recv(t)), Frame::Ping(*b"two....."));
        assert_eq!(frame(w.recv(t)), Frame::Pong(*b"three..."));
    }

    #[test]
    fn a_datagram_ending_inside_a_frame_is_reported_and_does_not_swallow_the_next_one() {
        let mut w = Wire::connect(&echo(), log()).expect("connect");
        let ping = encode(&Frame::Ping(*b"whole..."));
        w.send_bytes(&ping[..5]).expect("send");
        w.send_bytes(&ping).expect("send");
        let t = Duration::from_secs(5);
        assert!(matches!(w.recv(t), Recv::Bad(DecodeError::Truncated)));
        assert_eq!(frame(w.recv(t)), Frame::Ping(*b"whole..."));
    }

    #[test]
    fn an_empty_datagram_is_not_the_end_of_the_association() {
        let mut w = Wire::connect(&echo(), log()).expect("connect");
        w.send_bytes(&[]).expect("send");
        assert!(matches!(w.recv(Duration::from_millis(200)), Recv::Timeout));
        w.send(&[Frame::Ping(*b"after...")]).expect("send");
        assert_eq!(frame(w.recv(Duration::from_secs(5))), Frame::Ping(*b"after..."));
    }

    fn hello() -> Vec<u8> {
        crate::suite::hello_bytes(1, 1, 0, b"peer", b"", &[])
    }

    #[test]
    fn a_udp_listener_accepts_the_sender_of_the_next_hello_datagram() {
        let l = Listener::bind(&Address::Udp("127.0.0.1:0".into())).expect("bind");
        let Address::Udp(at) = l.local_addr() else { panic!("udp") };
        let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
        // A datagram that does not start with HELLO starts no association.
        peer.send_to(&encode(&Frame::Ping(*b"nohello.")), &at).expect("send");
        peer.send_to(&hello(), &at).expect("send");
        let mut w = l.accept(Duration::from_secs(5), log()).expect("accept");
        assert!(matches!(w.recv(Duration::from_secs(5)), Recv::Frame(o) if o.bytes == hello()));
        w.send(&[Frame::Pong(*b"back....")]).expect("send");
        let mut b = [0u8; 64];
        peer.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let n = peer.recv(&mut b).expect("recv");
        assert_eq!(&b[..n], &encode(&Frame::Pong(*b"back...."))[..]);
        drop(w);
        // The next association comes from another address; the first peer's datagrams are not its.
        let other = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let n = peer.recv(&mut b).expect("CLOSE at the end of the association");
        assert_eq!(&b[..n], &encode(&Frame::Close { status: Status::OK, message: b"" })[..]);
        other.send_to(&hello(), &at).expect("send");
        let mut w2 = l.accept(Duration::from_secs(5), log()).expect("accept");
        assert!(matches!(w2.recv(Duration::from_secs(5)), Recv::Frame(o) if o.bytes == hello()));
        peer.send_to(&encode(&Frame::Ping(*b"stale...")), &at).expect("send");
        w2.send(&[Frame::Pong(*b"to-2nd..")]).expect("send");
        other.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let n = other.recv(&mut b).expect("recv");
        assert_eq!(&b[..n], &encode(&Frame::Pong(*b"to-2nd.."))[..]);
        assert!(
            matches!(w2.recv(Duration::from_millis(200)), Recv::Timeout),
            "the stale datagram is ignored"
        );
    }
}
