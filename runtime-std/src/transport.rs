//! Sockets: connecting to and listening on an [`Address`]. Nothing here knows the protocol.
//!
//! Every socket is non-blocking; the driver waits with `poll(2)` for input and, when a write
//! did not complete, for writability (no other thread ever waits on a socket).

use crate::error::Error;
use socket2::{Domain, SockAddr, Socket as RawSocket, Type};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tandem_core::addr::Address;

/// The credentials of the process at the other end of a Unix socket (`SO_PEERCRED`), taken
/// when the connection was established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCredentials {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id.
    pub pid: i32,
}

/// A connected socket of any supported kind.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// Unix SEQPACKET: one read or write is one packet.
    Packet(RawSocket),
    /// A connected UDP socket (dialer): one read or write is one datagram.
    Udp(UdpSocket),
    /// One association on a server's shared UDP socket: writes go to `peer`; reads never
    /// happen here (the server's receive thread demultiplexes datagrams by source address).
    UdpPeer(Arc<UdpSocket>, SocketAddr),
}

impl Socket {
    /// Whether each read/write is one datagram.
    pub(crate) fn is_packet(&self) -> bool {
        !matches!(self, Socket::Tcp(_) | Socket::Unix(_))
    }

    /// Whether this is UDP (datagram mode, SPEC.md §14).
    pub(crate) fn is_datagram(&self) -> bool {
        matches!(self, Socket::Udp(_) | Socket::UdpPeer(..))
    }

    /// Whether the driver reads this socket itself (not a server's UDP association).
    pub(crate) fn is_readable(&self) -> bool {
        !matches!(self, Socket::UdpPeer(..))
    }

    /// Reads once (one datagram on a packet socket).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => (&*s).read(buf),
            Socket::Unix(s) => (&*s).read(buf),
            Socket::Packet(s) => (&*s).read(buf),
            Socket::Udp(s) => s.recv(buf),
            Socket::UdpPeer(..) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Writes once (one whole datagram on a packet socket).
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => (&*s).write(buf),
            Socket::Unix(s) => (&*s).write(buf),
            Socket::Packet(s) => (&*s).write(buf),
            Socket::Udp(s) => s.send(buf),
            Socket::UdpPeer(s, to) => s.send_to(buf, to),
        }
    }

    /// Shuts the socket down in both directions; errors (already closed) are ignored.
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Both),
            Socket::Unix(s) => s.shutdown(Shutdown::Both),
            Socket::Packet(s) => s.shutdown(Shutdown::Both),
            // UDP has nothing to shut; a server association must leave the shared socket alone.
            Socket::Udp(_) | Socket::UdpPeer(..) => Ok(()),
        };
    }

    /// Shuts the sending direction (the peer reads end of file after what was sent); errors
    /// are ignored. Nothing to do for UDP.
    pub(crate) fn shutdown_write(&self) {
        let _ = match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Write),
            Socket::Unix(s) => s.shutdown(Shutdown::Write),
            Socket::Packet(s) => s.shutdown(Shutdown::Write),
            Socket::Udp(_) | Socket::UdpPeer(..) => Ok(()),
        };
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.set_nonblocking(true),
            Socket::Unix(s) => s.set_nonblocking(true),
            Socket::Packet(s) => s.set_nonblocking(true),
            Socket::Udp(s) => s.set_nonblocking(true),
            Socket::UdpPeer(..) => Ok(()),
        }
    }

    /// The peer's credentials, on Unix sockets.
    pub(crate) fn peer_credentials(&self) -> Option<PeerCredentials> {
        let fd = match self {
            Socket::Tcp(_) | Socket::Udp(_) | Socket::UdpPeer(..) => return None,
            Socket::Unix(s) => s.as_fd(),
            Socket::Packet(s) => s.as_fd(),
        };
        let c = nix::sys::socket::getsockopt(&fd, nix::sys::socket::sockopt::PeerCredentials).ok()?;
        Some(PeerCredentials { uid: c.uid(), gid: c.gid(), pid: c.pid() })
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
            Socket::Packet(s) => s.as_fd(),
            Socket::Udp(s) => s.as_fd(),
            Socket::UdpPeer(s, _) => s.as_fd(),
        }
    }
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { context: what, source }
}

/// Resolves `host:port` to its first socket address.
pub(crate) fn resolve(hp: &str, addr: &Address) -> Result<SocketAddr, Error> {
    hp.to_socket_addrs().map_err(io_err(format!("cannot resolve {addr}")))?.next().ok_or_else(|| Error::Io {
        context: format!("cannot resolve {addr}"),
        source: io::ErrorKind::NotFound.into(),
    })
}

/// Binds the server's UDP socket.
pub(crate) fn bind_udp(addr: &Address) -> Result<UdpSocket, Error> {
    let Address::Udp(hp) = addr else { return Err(Error::Unsupported("not a udp:// address")) };
    let sa = resolve(hp, addr)?;
    let s = UdpSocket::bind(sa).map_err(io_err(format!("cannot listen on {addr}")))?;
    s.set_nonblocking(true).map_err(io_err(format!("cannot make the socket on {addr} non-blocking")))?;
    Ok(s)
}

/// Connects to `addr` (TCP with `TCP_NODELAY`).
pub(crate) fn connect(addr: &Address) -> Result<Socket, Error> {
    connect_timeout(addr, None)
}

/// Connects to `addr`, giving up on a TCP connection attempt after `timeout`.
pub(crate) fn connect_timeout(
    addr: &Address,
    timeout: impl Into<Option<std::time::Duration>>,
) -> Result<Socket, Error> {
    let timeout = timeout.into();
    let s = match addr {
        Address::Tcp(hp) => {
            let s = match timeout {
                None => TcpStream::connect(hp.as_str()),
                Some(t) => hp.to_socket_addrs().and_then(|mut it| {
                    let mut last = io::Error::from(io::ErrorKind::NotFound);
                    for sa in it.by_ref() {
                        match TcpStream::connect_timeout(&sa, t) {
                            Ok(s) => return Ok(s),
                            Err(e) => last = e,
                        }
                    }
                    Err(last)
                }),
            }
            .map_err(io_err(format!("cannot connect to {addr}")))?;
            s.set_nodelay(true).map_err(io_err(format!("cannot set TCP_NODELAY on {addr}")))?;
            Socket::Tcp(s)
        }
        Address::Unix(p) => {
            Socket::Unix(UnixStream::connect(p).map_err(io_err(format!("cannot connect to {addr}")))?)
        }
        Address::UnixSeqpacket(p) => {
            let s = seqpacket(addr)?;
            let sa = SockAddr::unix(p).map_err(io_err(format!("bad socket path in {addr}")))?;
            s.connect(&sa).map_err(io_err(format!("cannot connect to {addr}")))?;
            Socket::Packet(s)
        }
        Address::Udp(hp) => {
            let to = resolve(hp, addr)?;
            let any: SocketAddr = if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
            let s = UdpSocket::bind(any).map_err(io_err(format!("cannot create a UDP socket for {addr}")))?;
            s.connect(to).map_err(io_err(format!("cannot connect to {addr}")))?;
            Socket::Udp(s)
        }
    };
    s.set_nonblocking().map_err(io_err(format!("cannot make the socket to {addr} non-blocking")))?;
    Ok(s)
}

fn seqpacket(addr: &Address) -> Result<RawSocket, Error> {
    RawSocket::new(Domain::UNIX, Type::SEQPACKET, None)
        .map_err(io_err(format!("cannot create a SEQPACKET socket for {addr}")))
}

/// A listening socket of any supported kind.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
    Packet(RawSocket, PathBuf),
}

impl Listener {
    /// Binds `addr`. A Unix socket path that exists is refused unless `unlink_stale` is set and
    /// the path is a socket nobody listens on.
    pub(crate) fn bind(addr: &Address, unlink_stale: bool) -> Result<Listener, Error> {
        let l = match addr {
            Address::Tcp(hp) => {
                let sa = hp
                    .to_socket_addrs()
                    .map_err(io_err(format!("cannot resolve {addr}")))?
                    .next()
                    .ok_or_else(|| Error::Io {
                        context: format!("cannot resolve {addr}"),
                        source: io::ErrorKind::NotFound.into(),
                    })?;
                Listener::Tcp(TcpListener::bind(sa).map_err(io_err(format!("cannot listen on {addr}")))?)
            }
            Address::Unix(p) => {
                prepare_path(p, addr, unlink_stale)?;
                let l = UnixListener::bind(p).map_err(io_err(format!("cannot listen on {addr}")))?;
                Listener::Unix(l, p.clone())
            }
            Address::UnixSeqpacket(p) => {
                prepare_path(p, addr, unlink_stale)?;
                let s = seqpacket(addr)?;
                let sa = SockAddr::unix(p).map_err(io_err(format!("bad socket path in {addr}")))?;
                s.bind(&sa).map_err(io_err(format!("cannot listen on {addr}")))?;
                s.listen(128).map_err(io_err(format!("cannot listen on {addr}")))?;
                Listener::Packet(s, p.clone())
            }
            Address::Udp(_) => return Err(Error::Unsupported("a UDP server has no listener (bind_udp)")),
        };
        let nb = match &l {
            Listener::Tcp(s) => s.set_nonblocking(true),
            Listener::Unix(s, _) => s.set_nonblocking(true),
            Listener::Packet(s, _) => s.set_nonblocking(true),
        };
        nb.map_err(io_err(format!("cannot make the listener on {addr} non-blocking")))?;
        Ok(l)
    }

    /// The address actually bound (the real port for `tcp://…:0`).
    pub(crate) fn local_addr(&self) -> Address {
        match self {
            Listener::Tcp(s) => Address::Tcp(s.local_addr().map(|a| a.to_string()).unwrap_or_default()),
            Listener::Unix(_, p) => Address::Unix(p.clone()),
            Listener::Packet(_, p) => Address::UnixSeqpacket(p.clone()),
        }
    }

    /// Accepts one connection; `WouldBlock` when none is waiting.
    pub(crate) fn accept(&self) -> io::Result<Socket> {
        let s = match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Socket::Tcp(s)
            }
            Listener::Unix(l, _) => Socket::Unix(l.accept()?.0),
            Listener::Packet(l, _) => Socket::Packet(l.accept()?.0),
        };
        s.set_nonblocking()?;
        Ok(s)
    }

    /// The socket file to remove on shutdown.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Listener::Tcp(_) => None,
            Listener::Unix(_, p) | Listener::Packet(_, p) => Some(p),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(s) => s.as_fd(),
            Listener::Unix(s, _) => s.as_fd(),
            Listener::Packet(s, _) => s.as_fd(),
        }
    }
}

/// Refuses an existing path, or removes it when it is a stale socket and `unlink_stale` is set.
fn prepare_path(p: &Path, addr: &Address, unlink_stale: bool) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(p) else { return Ok(()) };
    if !unlink_stale || !meta.file_type().is_socket() {
        return Err(Error::PathInUse { path: p.to_path_buf(), is_socket: meta.file_type().is_socket() });
    }
    // Still live? Then it is not stale: refuse rather than steal another server's path.
    let live = match addr {
        Address::UnixSeqpacket(_) => seqpacket(addr)
            .ok()
            .and_then(|s| SockAddr::unix(p).ok().map(|a| s.connect(&a).is_ok()))
            .unwrap_or(false),
        _ => UnixStream::connect(p).is_ok(),
    };
    if live {
        return Err(Error::Io {
            context: format!("cannot listen on {addr}: another server is listening on that socket"),
            source: io::ErrorKind::AddrInUse.into(),
        });
    }
    std::fs::remove_file(p).map_err(io_err(format!("cannot remove the stale socket {}", p.display())))
}
