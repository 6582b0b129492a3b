//! The raw-socket floor: a blocking echo / bulk-sink server (one thread per connection) and its
//! client, over TCP (with `TCP_NODELAY`) or a Unix stream socket, and idle socket pairs.

use crate::{unix_path, Idle, Row, Transport, ITEM, MSG};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A blocking socket of either transport.
pub trait Sock: Read + Write + Send {
    /// A second handle on the same socket.
    fn dup(&self) -> Box<dyn Sock>;
    /// Shuts the writing half down (the peer reads end of file).
    fn shutdown_write(&self);
}
impl Sock for TcpStream {
    fn dup(&self) -> Box<dyn Sock> {
        Box::new(self.try_clone().expect("clone"))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}
impl Sock for UnixStream {
    fn dup(&self) -> Box<dyn Sock> {
        Box::new(self.try_clone().expect("clone"))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(std::net::Shutdown::Write);
    }
}

/// The raw server: each accepted connection gets a thread; its first byte picks echo (`E`: every
/// byte read is written back) or bulk sink (`B`: repeatedly, an 8-byte length, that many bytes
/// read and discarded, then a one-byte acknowledgement).
fn raw_serve(mut s: Box<dyn Sock>) {
    let mut mode = [0u8];
    if s.read_exact(&mut mode).is_err() {
        return;
    }
    let mut buf = vec![0u8; 256 * 1024];
    if mode[0] == b'E' {
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    }
    loop {
        let mut len = [0u8; 8];
        if s.read_exact(&mut len).is_err() {
            return;
        }
        let mut left = u64::from_le_bytes(len) as usize;
        while left > 0 {
            let want = left.min(buf.len());
            match s.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= n,
            }
        }
        if s.write_all(b"k").is_err() {
            return;
        }
    }
}

/// A raw listener and a way to dial it.
pub struct RawServer {
    transport: Transport,
    tcp: Option<std::net::SocketAddr>,
    path: Option<PathBuf>,
}

impl RawServer {
    /// Listens and accepts forever on its own thread (one thread per connection).
    pub fn start(transport: Transport) -> RawServer {
        match transport {
            Transport::Tcp | Transport::Tls => {
                let l = TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = l.local_addr().expect("addr");
                std::thread::spawn(move || {
                    for s in l.incoming().flatten() {
                        s.set_nodelay(true).expect("nodelay");
                        std::thread::spawn(move || raw_serve(Box::new(s)));
                    }
                });
                RawServer { transport, tcp: Some(addr), path: None }
            }
            Transport::Unix => {
                let path = unix_path("raw");
                let l = UnixListener::bind(&path).expect("bind");
                std::thread::spawn(move || {
                    for s in l.incoming().flatten() {
                        std::thread::spawn(move || raw_serve(Box::new(s)));
                    }
                });
                RawServer { transport, tcp: None, path: Some(path) }
            }
        }
    }

    /// A new connection in `mode` (`b'E'` or `b'B'`).
    pub fn dial(&self, mode: u8) -> Box<dyn Sock> {
        let mut s: Box<dyn Sock> = match self.transport {
            Transport::Tcp | Transport::Tls => {
                let s = TcpStream::connect(self.tcp.expect("tcp")).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                Box::new(s)
            }
            Transport::Unix => {
                Box::new(UnixStream::connect(self.path.as_ref().expect("path")).expect("connect"))
            }
        };
        s.write_all(&[mode]).expect("mode");
        s
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The raw floor as a [`Row`]: blocking ping-pong, a writer and a reader thread for pipelining,
/// 64 KiB writes for bulk.
pub struct RawRow {
    server: RawServer,
    echo: Box<dyn Sock>,
    bulk: Box<dyn Sock>,
    msg: [u8; MSG],
    chunk: Vec<u8>,
}

impl RawRow {
    /// Server thread plus an echo and a bulk connection.
    pub fn new(transport: Transport) -> RawRow {
        let server = RawServer::start(transport);
        let echo = server.dial(b'E');
        let bulk = server.dial(b'B');
        RawRow { server, echo, bulk, msg: [7; MSG], chunk: vec![9; ITEM] }
    }
}

impl Row for RawRow {
    fn call(&mut self) {
        self.echo.write_all(&self.msg).expect("write");
        let mut back = [0u8; MSG];
        self.echo.read_exact(&mut back).expect("read");
    }

    fn pipelined(&mut self, depth: usize, time: Duration) -> (u64, Duration) {
        // A fresh connection so that the ping-pong one stays in step.
        let mut w = self.server.dial(b'E');
        let mut r = w.dup();
        let (tokens_tx, tokens_rx) = std::sync::mpsc::sync_channel::<()>(depth);
        let start = Instant::now();
        // The reader takes replies until the echo server closes (after the writer shut its
        // half down), returning one token per reply to the writer.
        let reader = std::thread::spawn(move || {
            let mut got = 0u64;
            let mut back = [0u8; MSG];
            while r.read_exact(&mut back).is_ok() {
                got += 1;
                let _ = tokens_tx.send(());
            }
            got
        });
        let msg = self.msg;
        let mut n = 0u64;
        while start.elapsed() < time {
            for _ in 0..64 {
                if n >= depth as u64 {
                    tokens_rx.recv().expect("token");
                }
                w.write_all(&msg).expect("write");
                n += 1;
            }
        }
        w.shutdown_write();
        let got = reader.join().expect("reader");
        let elapsed = start.elapsed();
        assert_eq!(got, n, "raw pipelined: replies lost");
        (got, elapsed)
    }

    fn stream(&mut self, items: usize) -> Option<Duration> {
        let start = Instant::now();
        self.bulk.write_all(&((items * ITEM) as u64).to_le_bytes()).expect("len");
        for _ in 0..items {
            self.bulk.write_all(&self.chunk).expect("write");
        }
        let mut ack = [0u8];
        self.bulk.read_exact(&mut ack).expect("ack");
        Some(start.elapsed())
    }
}

/// Idle raw connections: connected socket pairs, nothing else.
pub struct RawIdle {
    transport: Transport,
    tcp: Option<TcpListener>,
    unix: Option<(UnixListener, PathBuf)>,
    socks: Vec<Box<dyn Sock>>,
}

impl RawIdle {
    /// A listener; connections are accepted by [`Idle::open`] itself.
    pub fn new(transport: Transport) -> RawIdle {
        match transport {
            Transport::Tcp | Transport::Tls => RawIdle {
                transport,
                tcp: Some(TcpListener::bind("127.0.0.1:0").expect("bind")),
                unix: None,
                socks: Vec::new(),
            },
            Transport::Unix => {
                let path = unix_path("idle");
                let l = UnixListener::bind(&path).expect("bind");
                RawIdle { transport, tcp: None, unix: Some((l, path)), socks: Vec::new() }
            }
        }
    }
}

impl Idle for RawIdle {
    fn open(&mut self, n: usize) {
        for _ in 0..n {
            match self.transport {
                Transport::Tcp | Transport::Tls => {
                    let l = self.tcp.as_ref().expect("tcp");
                    let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
                    let (s, _) = l.accept().expect("accept");
                    self.socks.push(Box::new(c));
                    self.socks.push(Box::new(s));
                }
                Transport::Unix => {
                    let (l, p) = self.unix.as_ref().expect("unix");
                    let c = UnixStream::connect(p).expect("connect");
                    let (s, _) = l.accept().expect("accept");
                    self.socks.push(Box::new(c));
                    self.socks.push(Box::new(s));
                }
            }
        }
    }
}

impl Drop for RawIdle {
    fn drop(&mut self) {
        if let Some((_, p)) = &self.unix {
            let _ = std::fs::remove_file(p);
        }
    }
}
