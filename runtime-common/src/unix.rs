//! Unix socket helpers both runtimes need around their listeners and connections: the socket
//! file of a listener (refused when it exists, removed when stale and asked to, removed on
//! shutdown) and the credentials of the process at the other end. No I/O loop here: each
//! runtime makes its own sockets non-blocking and waits on them its own way. (Layer 1: imports
//! `error`, `state`.)

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Type};

use crate::error::{io_error, Error};
use crate::state::PeerCredentials;

/// A new (blocking) Unix SEQPACKET socket.
pub fn seqpacket_socket() -> io::Result<socket2::Socket> {
    socket2::Socket::new(Domain::UNIX, Type::SEQPACKET, None)
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

/// Before listening on the Unix socket `path`: refuses a path that exists
/// ([`Error::PathInUse`]), unless `remove_stale` is set and it is a socket nobody answers on,
/// which is then removed. A file that is not a socket is never removed.
pub fn prepare_path(path: &Path, packet: bool, remove_stale: bool) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    if !remove_stale {
        return Err(Error::PathInUse { path: path.to_path_buf(), live: false });
    }
    if !meta.file_type().is_socket() {
        let context = format!(
            "cannot listen on {}: the path exists and is not a socket (never removed)",
            path.display()
        );
        return Err(io_error(context, io::ErrorKind::AlreadyExists.into()));
    }
    if is_live(path, packet) {
        return Err(Error::PathInUse { path: path.to_path_buf(), live: true });
    }
    tracing::info!(path = %path.display(), "removing stale socket file");
    std::fs::remove_file(path)
        .map_err(|e| io_error(format!("cannot remove stale socket {}", path.display()), e))
}

/// Removes a listener's Unix socket file when dropped (the server stopped).
#[derive(Debug)]
pub struct PathGuard(pub PathBuf);

impl Drop for PathGuard {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => tracing::debug!(path = %self.0.display(), "removed socket file"),
            Err(e) => tracing::debug!(path = %self.0.display(), error = %e, "could not remove socket file"),
        }
    }
}

/// The credentials of the process at the other end of a Unix socket (Linux and Android;
/// `None` elsewhere).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_credentials<F: std::os::fd::AsFd>(fd: &F) -> Option<PeerCredentials> {
    use nix::sys::socket::{getsockopt, sockopt};
    let c = getsockopt(fd, sockopt::PeerCredentials).ok()?;
    Some(PeerCredentials { uid: c.uid(), gid: c.gid(), pid: c.pid() })
}

/// The credentials of the process at the other end of a Unix socket (Linux and Android;
/// `None` elsewhere).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer_credentials<F: std::os::fd::AsFd>(_fd: &F) -> Option<PeerCredentials> {
    None
}

/// Whether a UDP receive or send error only reports an earlier loss (ICMP port unreachable and
/// the like): the protocol retransmits, so the socket stays usable.
pub fn transient_udp(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
    )
}
