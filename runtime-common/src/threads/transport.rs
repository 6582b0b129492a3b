//! Sockets: TCP, Unix stream, Unix SEQPACKET and UDP, connected or listening, and serial
//! lines (ttys carrying datagram mode), all
//! non-blocking, and the `Transport` trait through which a connection's driver reads and
//! writes one. No protocol logic, no waiting here: the I/O threads wait on readiness. (Layer 0 of [`threads`](super).)

use core::task::{Context, Poll, Waker};
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::io_error;
use crate::open::TransportInfo;
use crate::serial::{open_tty, SerialPort};
use crate::state::TransportFailure;
use crate::tandem_core::addr::Address;
use crate::udp::Inbox;
use crate::unix::{peer_credentials, prepare_path, seqpacket_socket, transient_udp, PathGuard};
use crate::Error;
use nix::sys::socket::{recv, MsgFlags};
use socket2::{Domain, SockAddr, Type};

/// Readiness a transport waits for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Interest {
    pub(crate) read: bool,
    pub(crate) write: bool,
}

impl core::ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, o: Interest) {
        self.read |= o.read;
        self.write |= o.write;
    }
}

/// A connected transport as a connection's driver uses it: reads and writes that never block
/// (`WouldBlock` instead), one whole packet per call on packet transports.
///
/// The I/O loop knows transports only through this trait, so that a TLS session (rustls)
/// can wrap a [`Socket`] later without touching it: such a wrapper reads and writes records on
/// the socket inside `read`/`write`, and says through [`blocked`](Self::blocked) which readiness
/// it waits for when that is not the direction of the call (a read that must first flush a
/// record waits for writability).
pub(crate) trait Transport: Send + 'static {
    /// Reads what is there; `Ok(0)` at the end of the stream; `WouldBlock` when nothing is.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Reads what is there into `bufs`, in order (one system call on the plain stream
    /// sockets; otherwise into the first non-empty slice only).
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        match bufs.iter_mut().find(|b| !b.is_empty()) {
            Some(buf) => self.read(buf),
            None => Ok(0),
        }
    }
    /// Writes what fits; `WouldBlock` when nothing does.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Writes what fits of `bufs`, in order (one system call on the plain stream sockets;
    /// otherwise the first non-empty slice only); `WouldBlock` when nothing does.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        self.write(first)
    }
    /// After `read` (`reading`) or `write` returned `WouldBlock`: the readiness to wait for.
    fn blocked(&self, reading: bool) -> Interest {
        Interest { read: reading, write: !reading }
    }
    /// Ends our sending direction (after what was written).
    fn shutdown_write(&mut self);
    /// The descriptor whose readiness to wait for (`None`: a UDP association, whose datagrams
    /// arrive through its inbox and wake the waker given to [`attach`](Self::attach)).
    fn fd(&self) -> Option<BorrowedFd<'_>>;
    /// The waker of the connection's driver (once it runs on an I/O thread).
    fn attach(&mut self, _waker: &Waker) {}
    /// The remote IP address and port (TCP and UDP).
    fn remote_addr(&self) -> Option<SocketAddr>;
    /// Whether this is UDP or a serial line (datagram mode: nothing to shut down or drain when
    /// closing).
    fn is_udp(&self) -> bool;
    /// Whether a read that returned less than its buffer (or `WouldBlock`) left nothing to
    /// read until the next readiness event: true for the plain stream sockets (TCP, Unix
    /// stream), whose edge-triggered registration reports every arrival of data after it; false
    /// where the transport buffers data of its own (WebSocket) or reads whole packets.
    fn short_read_drains(&self) -> bool {
        false
    }
    /// Writes out what the transport itself still holds (a WebSocket message the socket did not
    /// take whole); `WouldBlock` while some remains (then [`blocked`](Self::blocked)`(false)`
    /// says what to wait for). Called after every round of writes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Once, why the transport failed below tandem (a WebSocket upgrade refused, TLS under
    /// `wss://`), for `peer::connected`'s error.
    fn take_failure(&mut self) -> Option<TransportFailure> {
        None
    }
    /// Once, when the peer broke the rules of the transport itself (a WebSocket text message):
    /// what it did. The connection is then closed with PROTOCOL_ERROR (not merely lost: a
    /// session is not resumed after it).
    fn take_violation(&mut self) -> Option<String> {
        None
    }
    /// Once, when a TLS handshake inside the transport (`wss://`) is done: the peer's
    /// certificates (DER, its own first), for the authenticator.
    fn take_peer_certificates(&mut self) -> Option<Vec<Vec<u8>>> {
        None
    }
}

/// A connected socket, non-blocking.
pub enum Socket {
    /// TCP (also under `tls://`).
    Tcp(TcpStream),
    /// A Unix stream socket.
    Unix(UnixStream),
    /// Unix SEQPACKET: every read and write is one whole packet.
    Packet(socket2::Socket),
    /// A connected UDP socket (dialer): every read and write is one datagram.
    Udp(UdpSocket),
    /// One association of a UDP server: datagrams from `peer` arrive through `inbox` (the
    /// server's receive task demultiplexes them); writes go out on the shared socket.
    Assoc(Assoc),
    /// A serial line (`serial://`): one datagram per read and write, in serial frames.
    Serial(SerialPort),
}

/// Largest datagram a serial line's receiver decodes on a host (its buffer: 64 KiB); the
/// connection then drops anything beyond the `max_datagram_size` it announced (SPEC.md §14.2).
pub(crate) const SERIAL_MAX_DATAGRAM: usize = 65_535;

/// A server-side UDP association's end of the shared socket.
pub struct Assoc {
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) peer: SocketAddr,
    pub(crate) inbox: Arc<Mutex<Inbox>>,
    pub(crate) waker: Option<Waker>,
}

impl Drop for Assoc {
    fn drop(&mut self) {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).close();
    }
}

/// A UDP send: a datagram the socket cannot take now is dropped, as the network may drop it
/// (the protocol retransmits); only a hard error breaks the transport.
fn udp_send(s: &UdpSocket, to: Option<SocketAddr>, buf: &[u8]) -> io::Result<usize> {
    let r = match to {
        Some(a) => s.send_to(buf, a),
        None => s.send(buf),
    };
    match r {
        Ok(_) => Ok(buf.len().max(1)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || transient_udp(&e) => {
            tracing::trace!(error = %e, "UDP send failed: datagram dropped");
            Ok(buf.len().max(1))
        }
        Err(e) => Err(e),
    }
}

impl Transport for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
            // The real length of a packet that did not fit, so that it is refused as too large
            // rather than read truncated.
            Socket::Packet(s) => Ok(recv(s.as_fd().as_raw_fd(), buf, MsgFlags::MSG_TRUNC)?),
            Socket::Udp(s) => loop {
                match s.recv(buf) {
                    // An empty datagram is not an end of stream: UDP has none.
                    Ok(0) => continue,
                    Err(e) if transient_udp(&e) => continue,
                    r => return r,
                }
            },
            Socket::Assoc(a) => {
                let Some(w) = &a.waker else { return Err(io::ErrorKind::WouldBlock.into()) };
                match a
                    .inbox
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .poll_read(&mut Context::from_waker(w), buf)
                {
                    Poll::Ready(n) => Ok(n),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
            Socket::Serial(p) => p.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
            Socket::Packet(s) => s.write(buf),
            Socket::Udp(s) => udp_send(s, None, buf),
            Socket::Assoc(a) => udp_send(&a.socket, Some(a.peer), buf),
            Socket::Serial(p) => p.write(buf),
        }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        if let [buf] = bufs {
            // One buffer (nearly every read): `recv`, without `readv`'s iovec to copy in.
            return self.read(buf);
        }
        match self {
            Socket::Tcp(s) => s.read_vectored(bufs),
            Socket::Unix(s) => s.read_vectored(bufs),
            // Packet transports: one whole datagram per read (the pump gives one buffer).
            _ => match bufs.iter_mut().find(|b| !b.is_empty()) {
                Some(buf) => self.read(buf),
                None => Ok(0),
            },
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_vectored(bufs),
            Socket::Unix(s) => s.write_vectored(bufs),
            // Packet transports: one datagram per write (the pump hands them one at a time).
            _ => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
                self.write(first)
            }
        }
    }

    fn shutdown_write(&mut self) {
        let r = match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Write),
            Socket::Unix(s) => s.shutdown(Shutdown::Write),
            Socket::Packet(s) => s.shutdown(Shutdown::Write),
            Socket::Udp(_) | Socket::Assoc(_) | Socket::Serial(_) => Ok(()),
        };
        if let Err(e) = r {
            tracing::trace!(error = %e, "shutdown(write) failed");
        }
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        Some(match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
            Socket::Packet(s) => s.as_fd(),
            Socket::Udp(s) => s.as_fd(),
            Socket::Assoc(_) => return None,
            Socket::Serial(p) => return p.fd(),
        })
    }

    fn attach(&mut self, waker: &Waker) {
        if let Socket::Assoc(a) = self {
            a.waker = Some(waker.clone());
        }
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.peer_addr().ok(),
            Socket::Udp(s) => s.peer_addr().ok(),
            Socket::Assoc(a) => Some(a.peer),
            Socket::Unix(_) | Socket::Packet(_) | Socket::Serial(_) => None,
        }
    }

    fn is_udp(&self) -> bool {
        matches!(self, Socket::Udp(_) | Socket::Assoc(_) | Socket::Serial(_))
    }
    fn short_read_drains(&self) -> bool {
        matches!(self, Socket::Tcp(_) | Socket::Unix(_))
    }
}

impl Socket {
    /// What the socket tells about the other side.
    pub fn info(&self) -> TransportInfo {
        let creds = match self {
            Socket::Unix(s) => peer_credentials(s),
            Socket::Packet(s) => peer_credentials(s),
            _ => None,
        };
        TransportInfo { remote: self.remote_addr(), creds, udp: self.is_udp() }
    }

    /// The remote address for logs (`"unknown"` without one).
    pub(crate) fn remote_addr_label(&self) -> String {
        self.remote_addr().map_or_else(|| "unknown".into(), |a| a.to_string())
    }

    fn nonblocking(self) -> io::Result<Socket> {
        match &self {
            Socket::Tcp(s) => s.set_nonblocking(true)?,
            Socket::Unix(s) => s.set_nonblocking(true)?,
            Socket::Packet(s) => s.set_nonblocking(true)?,
            Socket::Udp(s) => s.set_nonblocking(true)?,
            Socket::Assoc(_) | Socket::Serial(_) => {}
        }
        Ok(self)
    }
}

/// The socket addresses of a `host:port`.
pub(crate) fn resolve(host_port: &str) -> io::Result<Vec<SocketAddr>> {
    let v: Vec<_> = host_port.to_socket_addrs()?.collect();
    if v.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address"));
    }
    Ok(v)
}

fn udp_for(to: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any)?;
    s.connect(to)?;
    Ok(s)
}

/// Connects to `addr` (blocking, on the caller's thread, by `deadline`); returns the socket,
/// non-blocking, and the addresses `addr` resolved to (where reconnection attempts go).
pub fn connect(addr: &Address, deadline: Instant) -> Result<(Socket, Vec<SocketAddr>), Error> {
    let ctx = || format!("cannot connect to {addr}");
    let timeout = || Error::Timeout { addr: addr.to_string() };
    let (socket, addrs) = match addr {
        Address::Tcp(host_port)
        | Address::Tls(host_port)
        | Address::Udp(host_port)
        | Address::WebSocket { host_port, .. } => {
            let addrs = resolve(host_port).map_err(|e| io_error(ctx(), e))?;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
            let mut socket = None;
            for a in &addrs {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .filter(|d| !d.is_zero())
                    .ok_or_else(timeout)?;
                let r = match addr {
                    Address::Tcp(_) | Address::Tls(_) | Address::WebSocket { .. } => {
                        TcpStream::connect_timeout(a, left).and_then(|s| {
                            s.set_nodelay(true)?;
                            Ok(Socket::Tcp(s))
                        })
                    }
                    _ => udp_for(*a).map(Socket::Udp),
                };
                match r {
                    Ok(s) => {
                        socket = Some(s);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(timeout()),
                    Err(e) => last = e,
                }
            }
            (socket.ok_or_else(|| io_error(ctx(), last))?, addrs)
        }
        Address::Unix(path) => {
            (Socket::Unix(UnixStream::connect(path).map_err(|e| io_error(ctx(), e))?), Vec::new())
        }
        Address::UnixSeqpacket(path) => {
            let s = seqpacket_socket().map_err(|e| io_error(ctx(), e))?;
            let sa = SockAddr::unix(path).map_err(|e| io_error(ctx(), e))?;
            s.connect(&sa).map_err(|e| io_error(ctx(), e))?;
            (Socket::Packet(s), Vec::new())
        }
        Address::Serial { path, baud } => {
            let tty = open_tty(path, *baud).map_err(|e| io_error(ctx(), e))?;
            (Socket::Serial(SerialPort::new(tty, SERIAL_MAX_DATAGRAM, None)), Vec::new())
        }
    };
    Ok((socket.nonblocking().map_err(|e| io_error(ctx(), e))?, addrs))
}

/// Connects to a Unix socket (`unix://`, `unix+seqpacket://`) without blocking: a local connect
/// completes at once or fails (with `WouldBlock` when the listener's backlog is full), so an
/// async caller may do it on its executor's thread. Returns the socket, non-blocking.
pub fn connect_local(addr: &Address) -> Result<Socket, Error> {
    let ctx = || format!("cannot connect to {addr}");
    if !matches!(addr, Address::Unix(_) | Address::UnixSeqpacket(_)) {
        let e = io::Error::new(io::ErrorKind::Unsupported, "not a Unix socket address");
        return Err(io_error(ctx(), e));
    }
    let c = start_connect(addr, None).map_err(|e| io_error(ctx(), e))?;
    match c.poll_done() {
        Poll::Ready(Ok(())) => c.into_socket().map_err(|e| io_error(ctx(), e)),
        Poll::Ready(Err(e)) => Err(io_error(ctx(), e)),
        Poll::Pending => Err(io_error(ctx(), io::ErrorKind::WouldBlock.into())),
    }
}

/// A reconnection attempt's transport: a non-blocking connect, complete once its socket is
/// writable.
pub(crate) struct Connecting {
    socket: socket2::Socket,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Tcp,
    Unix,
    Packet,
    Udp,
}

/// Starts connecting to `addr` (at `to`, one of the addresses it resolved to, for TCP and UDP)
/// without blocking.
pub(crate) fn start_connect(addr: &Address, to: Option<SocketAddr>) -> io::Result<Connecting> {
    let no_addr = || io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
    let (domain, ty, kind, sa) = match addr {
        Address::Tcp(_) | Address::Tls(_) | Address::WebSocket { .. } => {
            let to = to.ok_or_else(no_addr)?;
            (Domain::for_address(to), Type::STREAM, Kind::Tcp, SockAddr::from(to))
        }
        Address::Udp(_) => {
            let s = udp_for(to.ok_or_else(no_addr)?)?;
            s.set_nonblocking(true)?;
            return Ok(Connecting { socket: socket2::Socket::from(s), kind: Kind::Udp });
        }
        Address::Unix(p) => (Domain::UNIX, Type::STREAM, Kind::Unix, SockAddr::unix(p)?),
        Address::UnixSeqpacket(p) => (Domain::UNIX, Type::SEQPACKET, Kind::Packet, SockAddr::unix(p)?),
        // Datagram mode never reconnects (no sessions, SPEC.md §14.1).
        Address::Serial { .. } => {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "a serial line is not redialed"))
        }
    };
    let socket = socket2::Socket::new(domain, ty, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&sa) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINPROGRESS as i32) => {}
        Err(e) => return Err(e),
    }
    Ok(Connecting { socket, kind })
}

impl Connecting {
    /// Whether the connection is made (`Pending`: not yet; wait for writability).
    pub(crate) fn poll_done(&self) -> Poll<io::Result<()>> {
        if let Some(e) = self.socket.take_error()? {
            return Poll::Ready(Err(e));
        }
        match self.socket.peer_addr() {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// The connected socket.
    pub(crate) fn into_socket(self) -> io::Result<Socket> {
        Ok(match self.kind {
            Kind::Tcp => {
                let s = TcpStream::from(self.socket);
                s.set_nodelay(true)?;
                Socket::Tcp(s)
            }
            Kind::Unix => Socket::Unix(UnixStream::from(self.socket)),
            Kind::Packet => Socket::Packet(self.socket),
            Kind::Udp => Socket::Udp(UdpSocket::from(self.socket)),
        })
    }

    /// The socket, to wait for its writability.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// A listening socket (non-blocking).
pub enum Listener {
    /// TCP (also under `tls://`).
    Tcp(TcpListener),
    /// A Unix stream socket.
    Unix(UnixListener),
    /// A Unix SEQPACKET socket.
    Packet(socket2::Socket),
    /// TCP under `ws://` or `wss://`: every accepted connection must upgrade on this path.
    WebSocket(TcpListener, String),
    /// UDP: one socket for every association, demultiplexed by the server.
    Udp(UdpSocket),
    /// A serial line (a tty in raw mode): the server answers the one peer on the line, one
    /// association at a time.
    Serial(File),
}

impl Listener {
    /// Binds and listens. Returns the listener, its actual address (with the real port for
    /// `tcp://host:0`) and, for Unix sockets, the guard that removes the socket file.
    pub fn bind(addr: &Address, remove_stale: bool) -> Result<(Self, Address, Option<PathGuard>), Error> {
        let ctx = || format!("cannot listen on {addr}");
        let first = |hp: &str| resolve(hp).map(|v| v[0]).map_err(|e| io_error(ctx(), e));
        let io = |e| io_error(ctx(), e);
        let (l, local, guard) = match addr {
            Address::Tcp(hp) | Address::Tls(hp) => {
                let l = TcpListener::bind(first(hp)?).map_err(io)?;
                let local = l.local_addr().map_err(io)?.to_string();
                let local =
                    if matches!(addr, Address::Tls(_)) { Address::Tls(local) } else { Address::Tcp(local) };
                (Listener::Tcp(l), local, None)
            }
            Address::WebSocket { tls, host_port, path } => {
                let l = TcpListener::bind(first(host_port)?).map_err(io)?;
                let local = l.local_addr().map_err(io)?.to_string();
                let local = Address::WebSocket { tls: *tls, host_port: local, path: path.clone() };
                (Listener::WebSocket(l, path.clone()), local, None)
            }
            Address::Unix(path) => {
                prepare_path(path, false, remove_stale)?;
                let l = UnixListener::bind(path).map_err(io)?;
                (Listener::Unix(l), addr.clone(), Some(PathGuard(path.clone())))
            }
            Address::UnixSeqpacket(path) => {
                prepare_path(path, true, remove_stale)?;
                let s = seqpacket_socket().map_err(io)?;
                s.bind(&SockAddr::unix(path).map_err(io)?).map_err(io)?;
                let guard = PathGuard(path.clone());
                s.listen(128).map_err(io)?;
                (Listener::Packet(s), addr.clone(), Some(guard))
            }
            Address::Udp(hp) => {
                let s = UdpSocket::bind(first(hp)?).map_err(io)?;
                let local = s.local_addr().map_err(io)?;
                (Listener::Udp(s), Address::Udp(local.to_string()), None)
            }
            Address::Serial { path, baud } => {
                (Listener::Serial(open_tty(path, *baud).map_err(io)?), addr.clone(), None)
            }
        };
        match &l {
            Listener::Tcp(s) | Listener::WebSocket(s, _) => s.set_nonblocking(true),
            Listener::Unix(s) => s.set_nonblocking(true),
            Listener::Packet(s) => s.set_nonblocking(true),
            Listener::Udp(s) => s.set_nonblocking(true),
            // Opened non-blocking.
            Listener::Serial(_) => Ok(()),
        }
        .map_err(io)?;
        Ok((l, local, guard))
    }

    /// The next connection (non-blocking), with a label (the remote address) for logs;
    /// `WouldBlock` when none is waiting.
    pub(crate) fn accept(&self) -> io::Result<(Socket, String)> {
        let (s, label) = match self {
            Listener::Tcp(l) | Listener::WebSocket(l, _) => {
                let (s, a) = l.accept()?;
                s.set_nodelay(true)?;
                (Socket::Tcp(s), a.to_string())
            }
            Listener::Unix(l) => (Socket::Unix(l.accept()?.0), "unix".into()),
            Listener::Packet(l) => (Socket::Packet(l.accept()?.0), "unix+seqpacket".into()),
            Listener::Udp(_) | Listener::Serial(_) => return Err(io::ErrorKind::Unsupported.into()),
        };
        Ok((s.nonblocking()?, label))
    }

    /// The listening descriptor.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(s) | Listener::WebSocket(s, _) => s.as_fd(),
            Listener::Unix(s) => s.as_fd(),
            Listener::Packet(s) => s.as_fd(),
            Listener::Udp(s) => s.as_fd(),
            Listener::Serial(f) => f.as_fd(),
        }
    }

    /// The path a `ws://` or `wss://` listener serves.
    pub(crate) fn websocket_path(&self) -> Option<&str> {
        match self {
            Listener::WebSocket(_, path) => Some(path),
            _ => None,
        }
    }
}
