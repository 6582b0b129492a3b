//! Recording relays on loopback: a client talks to the relay, the relay to the server, and the
//! relay keeps every byte it forwards, per direction (TCP) or per datagram (UDP). The capture
//! then holds two legs (client↔relay and relay↔server) carrying the same frames, and the
//! recording is exactly what each sender wrote.
//!
//! Toward the server, the TCP relay writes in small pieces (`TCP_PIECE` bytes, TCP_NODELAY),
//! so that on that leg frames span several segments; on the client leg the runtime's own
//! coalesced writes put several frames in one segment. The dissector must handle both.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Bytes per write toward the server: not a divisor of any frame size, so frames get split.
const TCP_PIECE: usize = 777;

/// The four ports of one relayed connection: `client`↔`relay_in` and `relay_out`↔`server`.
#[derive(Clone, Copy, Debug)]
pub struct Legs {
    /// The client's port (leg 1, client side).
    pub client: u16,
    /// The relay's port facing the client (leg 1).
    pub relay_in: u16,
    /// The relay's port facing the server (leg 2, client side).
    pub relay_out: u16,
    /// The server's port (leg 2).
    pub server: u16,
}

/// What a TCP relay recorded for one connection.
pub struct TcpRecord {
    /// Its ports.
    pub legs: Legs,
    /// Bytes the client sent, in order.
    pub c2s: Vec<u8>,
    /// Bytes the server sent, in order.
    pub s2c: Vec<u8>,
}

/// A TCP relay accepting one connection.
pub struct TcpTap {
    listener: TcpListener,
    server: SocketAddr,
}

impl TcpTap {
    /// Listens on a free loopback port, to relay to `server`.
    pub fn bind(server: SocketAddr) -> io::Result<TcpTap> {
        Ok(TcpTap { listener: TcpListener::bind("127.0.0.1:0")?, server })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Accepts one connection in the background; [`TcpRun::finish`] returns its recording.
    pub fn start(self) -> TcpRun {
        let handle = thread::spawn(move || -> io::Result<TcpRecord> {
            let (client, caddr) = self.listener.accept()?;
            let server = TcpStream::connect(self.server)?;
            let legs = Legs {
                client: caddr.port(),
                relay_in: client.local_addr()?.port(),
                relay_out: server.local_addr()?.port(),
                server: self.server.port(),
            };
            for s in [&client, &server] {
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
            }
            let (c2, s2) = (client.try_clone()?, server.try_clone()?);
            let up = thread::spawn(move || pipe(client, server, TCP_PIECE));
            let down = thread::spawn(move || pipe(s2, c2, usize::MAX));
            let c2s = up.join().map_err(|_| io::Error::other("relay thread panicked"))??;
            let s2c = down.join().map_err(|_| io::Error::other("relay thread panicked"))??;
            Ok(TcpRecord { legs, c2s, s2c })
        });
        TcpRun { handle }
    }
}

/// A TCP relay at work.
pub struct TcpRun {
    handle: JoinHandle<io::Result<TcpRecord>>,
}

impl TcpRun {
    /// Waits until both directions ended (both endpoints closed) and returns the recording.
    pub fn finish(self) -> io::Result<TcpRecord> {
        self.handle.join().map_err(|_| io::Error::other("relay thread panicked"))?
    }
}

/// Copies `from` to `to` in writes of at most `piece` bytes until the end of `from`, then
/// ends `to`'s direction. Returns every byte copied.
fn pipe(mut from: TcpStream, mut to: TcpStream, piece: usize) -> io::Result<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
            Err(e) => return Err(e),
        };
        seen.extend_from_slice(&buf[..n]);
        for chunk in buf[..n].chunks(piece) {
            if to.write_all(chunk).is_err() {
                // The other end is gone; keep reading so that the recording is complete.
                break;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    Ok(seen)
}

/// What a UDP relay recorded for one association.
pub struct UdpRecord {
    /// Its ports.
    pub legs: Legs,
    /// Datagrams the client sent, in the order the relay forwarded them.
    pub c2s: Vec<Vec<u8>>,
    /// Datagrams the server sent, in order.
    pub s2c: Vec<Vec<u8>>,
}

/// A UDP relay for one association (the first client that sends to it).
pub struct UdpTap {
    front: UdpSocket,
    back: UdpSocket,
    server: SocketAddr,
}

impl UdpTap {
    /// Binds both relay sockets on loopback, to relay to `server`.
    pub fn bind(server: SocketAddr) -> io::Result<UdpTap> {
        let front = UdpSocket::bind("127.0.0.1:0")?;
        let back = UdpSocket::bind("127.0.0.1:0")?;
        back.connect(server)?;
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20)))?;
        }
        Ok(UdpTap { front, back, server })
    }

    /// The port clients send to.
    pub fn port(&self) -> u16 {
        self.front.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Relays in the background until [`UdpRun::finish`].
    pub fn start(self) -> io::Result<UdpRun> {
        let stop = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let relay_in = self.front.local_addr()?.port();
        let relay_out = self.back.local_addr()?.port();
        let server = self.server.port();
        let (f2, b2) = (self.front.try_clone()?, self.back.try_clone()?);
        let (stop1, stop2, client1, client2) = (stop.clone(), stop.clone(), client.clone(), client.clone());
        let (front, back) = (self.front, self.back);
        let up = thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !stop1.load(Ordering::Acquire) {
                let Ok((n, from)) = front.recv_from(&mut buf) else { continue };
                {
                    let mut c = client1.lock().unwrap_or_else(|e| e.into_inner());
                    match *c {
                        None => *c = Some(from),
                        Some(a) if a != from => continue, // one association only
                        Some(_) => {}
                    }
                }
                seen.push(buf[..n].to_vec());
                let _ = back.send(&buf[..n]);
            }
            seen
        });
        let down = thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !stop2.load(Ordering::Acquire) {
                let Ok(n) = b2.recv(&mut buf) else { continue };
                let to = *client2.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(to) = to {
                    seen.push(buf[..n].to_vec());
                    let _ = f2.send_to(&buf[..n], to);
                }
            }
            seen
        });
        Ok(UdpRun { stop, client, up, down, relay_in, relay_out, server })
    }
}

/// A UDP relay at work.
pub struct UdpRun {
    stop: Arc<AtomicBool>,
    client: Arc<Mutex<Option<SocketAddr>>>,
    up: JoinHandle<Vec<Vec<u8>>>,
    down: JoinHandle<Vec<Vec<u8>>>,
    relay_in: u16,
    relay_out: u16,
    server: u16,
}

impl UdpRun {
    /// Stops relaying and returns the recording.
    pub fn finish(self) -> io::Result<UdpRecord> {
        self.stop.store(true, Ordering::Release);
        let c2s = self.up.join().map_err(|_| io::Error::other("relay thread panicked"))?;
        let s2c = self.down.join().map_err(|_| io::Error::other("relay thread panicked"))?;
        let client = self.client.lock().unwrap_or_else(|e| e.into_inner()).map_or(0, |a| a.port());
        let legs = Legs { client, relay_in: self.relay_in, relay_out: self.relay_out, server: self.server };
        Ok(UdpRecord { legs, c2s, s2c })
    }
}
