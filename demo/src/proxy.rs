//! A TCP proxy that can cut every connection through it at once: the demo's way of losing the
//! transport in the middle of a call, so that session resumption (SPEC.md §13) has something to
//! do. Blocking, a thread per direction; loopback only.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// A running proxy from a loopback port to an upstream TCP address.
pub struct Proxy {
    local: SocketAddr,
    open: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

impl Proxy {
    /// Starts forwarding from a fresh loopback port to `upstream` (`tcp://host:port`).
    pub fn start(upstream: &str) -> io::Result<Proxy> {
        let target: SocketAddr = upstream
            .strip_prefix("tcp://")
            .unwrap_or(upstream)
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{upstream}: {e}")))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let local = listener.local_addr()?;
        let open = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (o, s, a) = (open.clone(), stop.clone(), accepted.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::Acquire) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else { continue };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                a.fetch_add(1, Ordering::AcqRel);
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { continue };
                if let Ok(mut g) = o.lock() {
                    g.push(c2);
                    g.push(s2);
                }
                let (Ok(c3), Ok(s3)) = (client.try_clone(), server.try_clone()) else { continue };
                thread::spawn(move || pipe(client, server));
                thread::spawn(move || pipe(s3, c3));
            }
        });
        Ok(Proxy { local, open, stop, accepted })
    }

    /// The address to connect to instead of the upstream one.
    pub fn address(&self) -> String {
        format!("tcp://{}", self.local)
    }

    /// Connections accepted so far (a resumption makes a new one).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::Acquire)
    }

    /// Cuts every connection through the proxy, both sides, as a network failure would (no
    /// tandem CLOSE is sent: the peers just see their sockets end). Returns how many were cut.
    pub fn cut_all(&self) -> usize {
        let Ok(mut g) = self.open.lock() else { return 0 };
        let n = g.len() / 2;
        for s in g.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.cut_all();
        // Wake the accept loop so that it sees the stop flag.
        let _ = TcpStream::connect(self.local);
    }
}
