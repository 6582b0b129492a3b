//! Sockets: TCP (also under `tls://`: TLS runs in the pump), Unix stream, Unix SEQPACKET and UDP, connected or listening, all driven
//! through `async-io`'s reactor. No protocol logic here. (Layer 0.)

use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use socket2::{Domain, SockAddr, Type};
use tandem_runtime::error::io_error;
use tandem_runtime::open::TransportInfo;
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::udp::Inbox;
use tandem_runtime::{Error, PeerCredentials};

/// A connected socket.
pub(crate) enum Socket {
    Tcp(Async<TcpStream>),
    Unix(Async<UnixStream>),
    /// Unix SEQPACKET: every read and write is one whole packet.
    Packet(Async<socket2::Socket>),
    /// A connected UDP socket (dialer): every read and write is one datagram.
    Udp(Async<UdpSocket>),
    /// One association of a UDP server: datagrams from `peer` arrive through `inbox` (the
    /// server's receive task demultiplexes them); writes go out on the shared socket.
    Assoc(Assoc),
}

/// A server-side UDP association's end of the shared socket.
pub(crate) struct Assoc {
    pub(crate) socket: Arc<Async<UdpSocket>>,
    pub(crate) peer: SocketAddr,
    pub(crate) inbox: Arc<Mutex<Inbox>>,
}

impl Drop for Assoc {
    fn drop(&mut self) {
        self.inbox.lock().unwrap_or_else(|e| e.into_inner()).close();
    }
}

/// Whether a UDP receive error only reports an earlier loss (ICMP port unreachable and the
/// like): the protocol retransmits, so the socket stays usable.
fn transient_udp(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}

fn poll_udp_recv(s: &Async<UdpSocket>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    loop {
        match s.get_ref().recv(buf) {
            // An empty datagram is not an end of stream: UDP has none. Skip it.
            Ok(0) => continue,
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match s.poll_readable(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            },
            Err(e) if transient_udp(&e) => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// One SEQPACKET packet; its real length when it did not fit (`MSG_TRUNC`), so that the core
/// refuses it as too large instead of reading it truncated.
fn poll_packet_recv(
    s: &Async<socket2::Socket>,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    use nix::errno::Errno;
    use std::os::fd::AsRawFd;
    loop {
        match nix::sys::socket::recv(s.get_ref().as_raw_fd(), buf, nix::sys::socket::MsgFlags::MSG_TRUNC) {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(Errno::EAGAIN) => match s.poll_readable(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            },
            Err(Errno::EINTR) => continue,
            Err(e) => return Poll::Ready(Err(e.into())),
        }
    }
}

fn poll_udp_send(
    s: &Async<UdpSocket>,
    to: Option<SocketAddr>,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        let r = match to {
            Some(a) => s.get_ref().send_to(buf, a),
            None => s.get_ref().send(buf),
        };
        match r {
            Ok(_) => return Poll::Ready(Ok(buf.len().max(1))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => match s.poll_writable(cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            },
            // Lost like any datagram may be: the protocol retransmits.
            Err(e) if transient_udp(&e) || e.kind() == io::ErrorKind::OutOfMemory => {
                tracing::trace!(error = %e, "UDP send failed: datagram dropped");
                return Poll::Ready(Ok(buf.len().max(1)));
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

impl Socket {
    /// Whether this is a UDP socket (datagram mode, SPEC.md §14).
    pub(crate) fn is_udp(&self) -> bool {
        matches!(self, Socket::Udp(_) | Socket::Assoc(_))
    }

    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Socket::Tcp(s) => Pin::new(&mut &*s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(&mut &*s).poll_read(cx, buf),
            Socket::Packet(s) => poll_packet_recv(s, cx, buf),
            Socket::Udp(s) => poll_udp_recv(s, cx, buf),
            Socket::Assoc(a) => a.inbox.lock().unwrap_or_else(|e| e.into_inner()).poll_read(cx, buf).map(Ok),
        }
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Socket::Tcp(s) => Pin::new(&mut &*s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(&mut &*s).poll_write(cx, buf),
            Socket::Packet(s) => Pin::new(&mut &*s).poll_write(cx, buf),
            Socket::Udp(s) => poll_udp_send(s, None, cx, buf),
            Socket::Assoc(a) => poll_udp_send(&a.socket, Some(a.peer), cx, buf),
        }
    }

    /// Ends our direction (FIN after everything written), so that the peer reads our last
    /// frames before it sees the end.
    pub(crate) fn shutdown_write(&self) {
        let r = match self {
            Socket::Tcp(s) => s.get_ref().shutdown(std::net::Shutdown::Write),
            Socket::Unix(s) => s.get_ref().shutdown(std::net::Shutdown::Write),
            Socket::Packet(s) => s.get_ref().shutdown(std::net::Shutdown::Write),
            Socket::Udp(_) | Socket::Assoc(_) => Ok(()),
        };
        if let Err(e) = r {
            tracing::trace!(error = %e, "shutdown(write) failed");
        }
    }

    /// What the socket tells about the other side.
    pub(crate) fn info(&self) -> TransportInfo {
        TransportInfo { remote: self.remote_addr(), creds: self.credentials(), udp: self.is_udp() }
    }

    /// The remote IP address and port (TCP and UDP; `None` on Unix sockets).
    pub(crate) fn remote_addr(&self) -> Option<SocketAddr> {
        match self {
            Socket::Tcp(s) => s.get_ref().peer_addr().ok(),
            Socket::Udp(s) => s.get_ref().peer_addr().ok(),
            Socket::Assoc(a) => Some(a.peer),
            Socket::Unix(_) | Socket::Packet(_) => None,
        }
    }

    /// The peer's credentials (Unix sockets on Linux/Android only).
    fn credentials(&self) -> Option<PeerCredentials> {
        match self {
            Socket::Tcp(_) | Socket::Udp(_) | Socket::Assoc(_) => None,
            Socket::Unix(s) => peer_credentials(s.get_ref()),
            Socket::Packet(s) => peer_credentials(s.get_ref()),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_credentials<F: std::os::fd::AsFd>(fd: &F) -> Option<PeerCredentials> {
    use nix::sys::socket::{getsockopt, sockopt};
    let c = getsockopt(fd, sockopt::PeerCredentials).ok()?;
    Some(PeerCredentials { uid: c.uid(), gid: c.gid(), pid: c.pid() })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_credentials<F: std::os::fd::AsFd>(_fd: &F) -> Option<PeerCredentials> {
    None
}

fn seqpacket_socket() -> io::Result<socket2::Socket> {
    socket2::Socket::new(Domain::UNIX, Type::SEQPACKET, None)
}

/// Opens a connection to `addr`; returns the socket and a label for logs.
pub(crate) async fn connect(addr: &Address) -> Result<Socket, Error> {
    let ctx = || format!("cannot connect to {addr}");
    match addr {
        Address::Tcp(host_port) | Address::Tls(host_port) => {
            let addrs = smol::net::resolve(host_port.as_str()).await.map_err(|e| io_error(ctx(), e))?;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address");
            for a in addrs {
                match Async::<TcpStream>::connect(a).await {
                    Ok(s) => {
                        s.get_ref().set_nodelay(true).map_err(|e| io_error(ctx(), e))?;
                        return Ok(Socket::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(io_error(ctx(), last))
        }
        Address::Unix(path) => {
            let s = Async::<UnixStream>::connect(path).await.map_err(|e| io_error(ctx(), e))?;
            Ok(Socket::Unix(s))
        }
        Address::UnixSeqpacket(path) => {
            // Connecting a local socket does not wait on the network; do it blocking, then
            // hand the socket to the reactor (which makes it non-blocking).
            let s = seqpacket_socket().map_err(|e| io_error(ctx(), e))?;
            let sa = SockAddr::unix(path).map_err(|e| io_error(ctx(), e))?;
            s.connect(&sa).map_err(|e| io_error(ctx(), e))?;
            Ok(Socket::Packet(Async::new(s).map_err(|e| io_error(ctx(), e))?))
        }
        Address::Udp(host_port) => {
            let addrs = smol::net::resolve(host_port.as_str()).await.map_err(|e| io_error(ctx(), e))?;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address");
            for a in addrs {
                let local: SocketAddr = if a.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = match Async::<UdpSocket>::bind(local) {
                    Ok(s) => s,
                    Err(e) => {
                        last = e;
                        continue;
                    }
                };
                match s.get_ref().connect(a) {
                    Ok(()) => return Ok(Socket::Udp(s)),
                    Err(e) => last = e,
                }
            }
            Err(io_error(ctx(), last))
        }
    }
}

/// A listening socket.
pub(crate) enum Listener {
    Tcp(Async<TcpListener>),
    Unix(Async<UnixListener>),
    Packet(Async<socket2::Socket>),
    /// UDP: one socket for every association, demultiplexed by the server.
    Udp(Arc<Async<UdpSocket>>),
}

/// Removes a Unix socket file when dropped (the listener's clean shutdown).
#[derive(Debug)]
pub(crate) struct PathGuard(pub(crate) PathBuf);

impl Drop for PathGuard {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => tracing::debug!(path = %self.0.display(), "removed socket file"),
            Err(e) => tracing::debug!(path = %self.0.display(), error = %e, "could not remove socket file"),
        }
    }
}

/// Whether something accepts connections on the Unix socket at `path`.
fn is_live(path: &Path, packet: bool) -> bool {
    if packet {
        let Ok(s) = seqpacket_socket() else { return false };
        SockAddr::unix(path).and_then(|a| s.connect(&a)).is_ok()
    } else {
        UnixStream::connect(path).is_ok()
    }
}

/// Refuses an existing socket path, or removes it when `remove_stale` is set and nothing
/// answers on it.
fn prepare_path(path: &Path, packet: bool, remove_stale: bool) -> Result<(), Error> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if !remove_stale {
        return Err(Error::PathInUse { path: path.to_path_buf(), live: false });
    }
    if is_live(path, packet) {
        return Err(Error::PathInUse { path: path.to_path_buf(), live: true });
    }
    tracing::info!(path = %path.display(), "removing stale socket file");
    std::fs::remove_file(path)
        .map_err(|e| io_error(format!("cannot remove stale socket {}", path.display()), e))
}

impl Listener {
    /// Binds and listens. Returns the listener, its actual address (with the real port for
    /// `tcp://host:0`) and, for Unix sockets, the guard that removes the socket file.
    pub(crate) fn bind(
        addr: &Address,
        remove_stale: bool,
    ) -> Result<(Self, Address, Option<PathGuard>), Error> {
        let ctx = || format!("cannot listen on {addr}");
        match addr {
            Address::Tcp(host_port) | Address::Tls(host_port) => {
                let sa =
                    host_port.to_socket_addrs().map_err(|e| io_error(ctx(), e))?.next().ok_or_else(|| {
                        io_error(ctx(), io::Error::new(io::ErrorKind::NotFound, "no address"))
                    })?;
                let l = Async::<TcpListener>::bind(sa).map_err(|e| io_error(ctx(), e))?;
                let local = l.get_ref().local_addr().map_err(|e| io_error(ctx(), e))?;
                let local = match addr {
                    Address::Tls(_) => Address::Tls(local.to_string()),
                    _ => Address::Tcp(local.to_string()),
                };
                Ok((Listener::Tcp(l), local, None))
            }
            Address::Unix(path) => {
                prepare_path(path, false, remove_stale)?;
                let l = Async::<UnixListener>::bind(path).map_err(|e| io_error(ctx(), e))?;
                Ok((Listener::Unix(l), addr.clone(), Some(PathGuard(path.clone()))))
            }
            Address::UnixSeqpacket(path) => {
                prepare_path(path, true, remove_stale)?;
                let s = seqpacket_socket().map_err(|e| io_error(ctx(), e))?;
                let sa = SockAddr::unix(path).map_err(|e| io_error(ctx(), e))?;
                s.bind(&sa).map_err(|e| io_error(ctx(), e))?;
                let guard = PathGuard(path.clone());
                s.listen(128).map_err(|e| io_error(ctx(), e))?;
                let l = Async::new(s).map_err(|e| io_error(ctx(), e))?;
                Ok((Listener::Packet(l), addr.clone(), Some(guard)))
            }
            Address::Udp(host_port) => {
                let sa =
                    host_port.to_socket_addrs().map_err(|e| io_error(ctx(), e))?.next().ok_or_else(|| {
                        io_error(ctx(), io::Error::new(io::ErrorKind::NotFound, "no address"))
                    })?;
                let s = Async::<UdpSocket>::bind(sa).map_err(|e| io_error(ctx(), e))?;
                let local = s.get_ref().local_addr().map_err(|e| io_error(ctx(), e))?;
                Ok((Listener::Udp(Arc::new(s)), Address::Udp(local.to_string()), None))
            }
        }
    }

    /// Waits for the next connection; returns it with a label (the remote address) for logs.
    pub(crate) async fn accept(&self) -> io::Result<(Socket, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept().await?;
                s.get_ref().set_nodelay(true)?;
                Ok((Socket::Tcp(s), a.to_string()))
            }
            Listener::Unix(l) => {
                let (s, _) = l.accept().await?;
                Ok((Socket::Unix(s), "unix".into()))
            }
            Listener::Packet(l) => {
                let (s, _) = l.read_with(|l| l.accept()).await?;
                Ok((Socket::Packet(Async::new(s)?), "unix+seqpacket".into()))
            }
            // The UDP server runs its own receive loop instead (server.rs).
            Listener::Udp(_) => core::future::pending().await,
        }
    }
}
