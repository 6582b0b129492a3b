//! Sockets: TCP, Unix stream and Unix SEQPACKET, connected or listening, all driven through
//! `async-io`'s reactor. No protocol logic here.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use socket2::{Domain, SockAddr, Type};
use tandem_core::addr::Address;

use crate::error::Error;

/// Credentials of the process at the other end of a Unix socket (`SO_PEERCRED`), taken when
/// the connection was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Process id.
    pub pid: i32,
}

/// A connected socket.
pub(crate) enum Socket {
    Tcp(Async<TcpStream>),
    Unix(Async<UnixStream>),
    /// Unix SEQPACKET: every read and write is one whole packet.
    Packet(Async<socket2::Socket>),
}

impl Socket {
    pub(crate) fn is_packet(&self) -> bool {
        matches!(self, Socket::Packet(_))
    }

    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            Socket::Tcp(s) => Pin::new(&mut &*s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(&mut &*s).poll_read(cx, buf),
            Socket::Packet(s) => Pin::new(&mut &*s).poll_read(cx, buf),
        }
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            Socket::Tcp(s) => Pin::new(&mut &*s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(&mut &*s).poll_write(cx, buf),
            Socket::Packet(s) => Pin::new(&mut &*s).poll_write(cx, buf),
        }
    }

    /// Ends our direction (FIN after everything written), so that the peer reads our last
    /// frames before it sees the end.
    pub(crate) fn shutdown_write(&self) {
        let r = match self {
            Socket::Tcp(s) => s.get_ref().shutdown(std::net::Shutdown::Write),
            Socket::Unix(s) => s.get_ref().shutdown(std::net::Shutdown::Write),
            Socket::Packet(s) => s.get_ref().shutdown(std::net::Shutdown::Write),
        };
        if let Err(e) = r {
            tracing::trace!(error = %e, "shutdown(write) failed");
        }
    }

    /// The peer's credentials (Unix sockets on Linux/Android only).
    pub(crate) fn credentials(&self) -> Option<Credentials> {
        match self {
            Socket::Tcp(_) => None,
            Socket::Unix(s) => peer_credentials(s.get_ref()),
            Socket::Packet(s) => peer_credentials(s.get_ref()),
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_credentials<F: std::os::fd::AsFd>(fd: &F) -> Option<Credentials> {
    use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
    let c = getsockopt(fd, PeerCredentials).ok()?;
    Some(Credentials { uid: c.uid(), gid: c.gid(), pid: c.pid() })
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_credentials<F: std::os::fd::AsFd>(_fd: &F) -> Option<Credentials> {
    None
}

fn seqpacket_socket() -> io::Result<socket2::Socket> {
    socket2::Socket::new(Domain::UNIX, Type::SEQPACKET, None)
}

/// Opens a connection to `addr`; returns the socket and a label for logs.
pub(crate) async fn connect(addr: &Address) -> Result<Socket, Error> {
    let ctx = || format!("cannot connect to {addr}");
    match addr {
        Address::Tcp(host_port) => {
            let addrs = smol::net::resolve(host_port.as_str()).await.map_err(|e| Error::io(ctx(), e))?;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "host name resolved to no address");
            for a in addrs {
                match Async::<TcpStream>::connect(a).await {
                    Ok(s) => {
                        s.get_ref().set_nodelay(true).map_err(|e| Error::io(ctx(), e))?;
                        return Ok(Socket::Tcp(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(Error::io(ctx(), last))
        }
        Address::Unix(path) => {
            let s = Async::<UnixStream>::connect(path).await.map_err(|e| Error::io(ctx(), e))?;
            Ok(Socket::Unix(s))
        }
        Address::UnixSeqpacket(path) => {
            // Connecting a local socket does not wait on the network; do it blocking, then
            // hand the socket to the reactor (which makes it non-blocking).
            let s = seqpacket_socket().map_err(|e| Error::io(ctx(), e))?;
            let sa = SockAddr::unix(path).map_err(|e| Error::io(ctx(), e))?;
            s.connect(&sa).map_err(|e| Error::io(ctx(), e))?;
            Ok(Socket::Packet(Async::new(s).map_err(|e| Error::io(ctx(), e))?))
        }
        Address::Udp(_) => Err(Error::UdpNotImplemented),
    }
}

/// A listening socket.
pub(crate) enum Listener {
    Tcp(Async<TcpListener>),
    Unix(Async<UnixListener>),
    Packet(Async<socket2::Socket>),
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
        .map_err(|e| Error::io(format!("cannot remove stale socket {}", path.display()), e))
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
            Address::Tcp(host_port) => {
                let sa =
                    host_port.to_socket_addrs().map_err(|e| Error::io(ctx(), e))?.next().ok_or_else(
                        || Error::io(ctx(), io::Error::new(io::ErrorKind::NotFound, "no address")),
                    )?;
                let l = Async::<TcpListener>::bind(sa).map_err(|e| Error::io(ctx(), e))?;
                let local = l.get_ref().local_addr().map_err(|e| Error::io(ctx(), e))?;
                Ok((Listener::Tcp(l), Address::Tcp(local.to_string()), None))
            }
            Address::Unix(path) => {
                prepare_path(path, false, remove_stale)?;
                let l = Async::<UnixListener>::bind(path).map_err(|e| Error::io(ctx(), e))?;
                Ok((Listener::Unix(l), addr.clone(), Some(PathGuard(path.clone()))))
            }
            Address::UnixSeqpacket(path) => {
                prepare_path(path, true, remove_stale)?;
                let s = seqpacket_socket().map_err(|e| Error::io(ctx(), e))?;
                let sa = SockAddr::unix(path).map_err(|e| Error::io(ctx(), e))?;
                s.bind(&sa).map_err(|e| Error::io(ctx(), e))?;
                let guard = PathGuard(path.clone());
                s.listen(128).map_err(|e| Error::io(ctx(), e))?;
                let l = Async::new(s).map_err(|e| Error::io(ctx(), e))?;
                Ok((Listener::Packet(l), addr.clone(), Some(guard)))
            }
            Address::Udp(_) => Err(Error::UdpNotImplemented),
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
        }
    }
}
