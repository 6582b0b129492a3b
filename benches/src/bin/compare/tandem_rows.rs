//! The tandem rows: runtime-std (blocking: every connection end driven by the process's few I/O
//! threads, the caller blocking on its own thread) and runtime-smol (driver tasks on smol's
//! global executor; the caller's futures run on the main thread).

use crate::{unix_path, Idle, Many, Row, Transport, ITEM, MSG};
use std::cell::Cell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_core::{Config, MethodId};

/// The unary echo method.
const ECHO: MethodId = MethodId::new(1, 1);
/// The stream sink: consumes every item, ends OK.
const SINK: MethodId = MethodId::new(1, 2);

/// The runtimes' connection defaults (`DEFAULT_CONNECTION`, the same for both), except that
/// both ends accept 256 calls in flight (the default server limit is 100).
fn config() -> Config {
    Config { max_concurrent_calls: 256, max_outbound_calls: 256, ..tandem_std::DEFAULT_CONNECTION }
}

fn listen_addr(t: Transport, tag: &str) -> (String, Option<PathBuf>) {
    match t {
        Transport::Tcp => ("tcp://127.0.0.1:0".to_string(), None),
        Transport::Tls => ("tls://127.0.0.1:0".to_string(), None),
        Transport::Unix => {
            let p = unix_path(tag);
            (format!("unix://{}", p.display()), Some(p))
        }
    }
}

/// For TLS rows, trust in the rows' CA only; the default (unused) otherwise.
fn std_trust(t: Transport) -> tandem_std::TlsClientConfig {
    if t != Transport::Tls {
        return tandem_std::TlsClientConfig::default();
    }
    let ca = crate::tls::pki().ca_pem.as_bytes();
    tandem_std::TlsClientConfig::new().trust_ca_pem(ca).expect("ca").without_system_roots()
}

/// [`std_trust`] for tandem-smol.
fn smol_trust(t: Transport) -> tandem_smol::TlsClientConfig {
    if t != Transport::Tls {
        return tandem_smol::TlsClientConfig::default();
    }
    let ca = crate::tls::pki().ca_pem.as_bytes();
    tandem_smol::TlsClientConfig::new().trust_ca_pem(ca).expect("ca").without_system_roots()
}

// ------------------------------------------------------------------ tandem-std

fn std_server(t: Transport, tag: &str) -> tandem_std::Server {
    // The echo runs inline on the I/O thread (the zero-allocation, no-hand-off fast path).
    let handlers = tandem_std::Handlers::new()
        .raw_unary_inline(ECHO, |_, b, out| {
            out.extend_from_slice(b);
            Ok(())
        })
        .raw_streaming(SINK, |_, _, mut rx, _tx| {
            let mut item = Vec::new();
            while rx.recv_into(&mut item).map_err(|e| e.status())? {}
            Ok(())
        });
    let (addr, _) = listen_addr(t, tag);
    let cfg = tandem_std::ServerConfig {
        connection: config(),
        tls: (t == Transport::Tls).then(|| {
            let p = crate::tls::pki();
            tandem_std::TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).expect("tls")
        }),
        ..tandem_std::ServerConfig::new("bench-server")
    };
    tandem_std::Server::bind(&addr, cfg, handlers).expect("bind")
}

/// tandem-std: [`tandem_std::Server`] and one [`tandem_std::Client`].
pub struct StdRow {
    _server: tandem_std::Server,
    client: tandem_std::Client,
    msg: Vec<u8>,
    /// The stream item, shared: every item is sent from this one buffer (`send_shared`), as
    /// the raw floor writes one buffer over and over.
    item: Arc<Vec<u8>>,
    /// Responses land here, reused call after call (`call_raw_into`, `wait_into`).
    back: Vec<u8>,
}

impl StdRow {
    /// Server, client, connected.
    pub fn new(t: Transport) -> StdRow {
        let server = std_server(t, "std");
        let addr = server.local_addr().to_string();
        let cfg = tandem_std::ClientConfig {
            connection: config(),
            tls: std_trust(t),
            ..tandem_std::ClientConfig::new("bench-client")
        };
        let client = tandem_std::Client::connect(&addr, cfg, tandem_std::Handlers::new()).expect("connect");
        StdRow { _server: server, client, msg: vec![7; MSG], item: Arc::new(vec![9; ITEM]), back: Vec::new() }
    }
}

impl Row for StdRow {
    fn call(&mut self) {
        self.client.call_raw_into(ECHO, &self.msg, tandem_std::Deadline::None, &mut self.back).expect("call");
        debug_assert_eq!(self.back.len(), MSG);
    }

    fn pipelined(&mut self, depth: usize, time: Duration) -> (u64, Duration) {
        let start = Instant::now();
        let mut q = VecDeque::with_capacity(depth);
        let mut n = 0u64;
        for _ in 0..depth {
            q.push_back(
                self.client.start_call_raw(ECHO, &self.msg, tandem_std::Deadline::None).expect("start"),
            );
        }
        while start.elapsed() < time {
            for _ in 0..64 {
                q.pop_front().expect("pending").wait_into(&mut self.back).expect("call");
                n += 1;
                q.push_back(
                    self.client.start_call_raw(ECHO, &self.msg, tandem_std::Deadline::None).expect("start"),
                );
            }
        }
        for p in q {
            p.wait_into(&mut self.back).expect("call");
            n += 1;
        }
        (n, start.elapsed())
    }

    fn stream(&mut self, items: usize) -> Option<Duration> {
        let start = Instant::now();
        let (mut tx, mut rx) =
            self.client.open_stream_raw(SINK, b"", tandem_std::Deadline::None).expect("open");
        for _ in 0..items {
            tx.send_shared(&self.item).expect("send");
        }
        tx.finish().expect("finish");
        while rx.recv().expect("recv").is_some() {}
        Some(start.elapsed())
    }
}

/// Idle tandem-std connections (clients with one handler worker each).
pub struct StdIdle {
    t: Transport,
    server: tandem_std::Server,
    clients: Vec<tandem_std::Client>,
}

impl StdIdle {
    /// The server.
    pub fn new(t: Transport) -> StdIdle {
        StdIdle { t, server: std_server(t, "std-idle"), clients: Vec::new() }
    }
}

impl Idle for StdIdle {
    fn open(&mut self, n: usize) {
        let addr = self.server.local_addr().to_string();
        for _ in 0..n {
            let name = format!("idle-{}", self.clients.len());
            let cfg = tandem_std::ClientConfig {
                workers: 1,
                tls: std_trust(self.t),
                ..tandem_std::ClientConfig::new(name)
            };
            self.clients
                .push(tandem_std::Client::connect(&addr, cfg, tandem_std::Handlers::new()).expect("connect"));
        }
        let end = Instant::now() + Duration::from_secs(60);
        while self.server.peers().len() < self.clients.len() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ------------------------------------------------------------------ tandem-smol

fn smol_server(t: Transport, tag: &str) -> tandem_smol::Server {
    // The echo runs inline in the driver task (no task spawned per request).
    let handlers = tandem_smol::Handlers::new()
        .raw_unary_inline(ECHO, |_ctx, b, out| {
            out.extend_from_slice(b);
            Ok(())
        })
        .raw_streaming(SINK, |_, _, mut rx, _tx| async move {
            // As the tandem-std sink: each item lands in the buffer the previous one was in.
            let mut item = Vec::new();
            while rx.recv_into(&mut item).await.map_err(|e| e.status())? {}
            Ok(())
        });
    let (addr, _) = listen_addr(t, tag);
    let cfg = tandem_smol::ServerConfig {
        connection: config(),
        tls: (t == Transport::Tls).then(|| {
            let p = crate::tls::pki();
            tandem_smol::TlsServerConfig::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).expect("tls")
        }),
        ..tandem_smol::ServerConfig::new("bench-server")
    };
    tandem_smol::Server::bind(&addr, cfg, handlers).expect("bind")
}

/// tandem-smol: [`tandem_smol::Server`] and one [`tandem_smol::Client`].
pub struct SmolRow {
    _server: tandem_smol::Server,
    peer: tandem_smol::Client,
    msg: Vec<u8>,
    /// The stream item, shared, as in [`StdRow`].
    item: Arc<Vec<u8>>,
    /// Responses land here, reused call after call (`call_raw_into`), as in [`StdRow`].
    back: Vec<u8>,
}

impl SmolRow {
    /// Server, client, connected.
    pub fn new(t: Transport) -> SmolRow {
        let server = smol_server(t, "smol");
        let addr = server.local_addr().to_string();
        let cfg = tandem_smol::ClientConfig {
            connection: config(),
            tls: smol_trust(t),
            ..tandem_smol::ClientConfig::new("bench-client")
        };
        let peer = smol::block_on(tandem_smol::Client::connect(&addr, cfg, tandem_smol::Handlers::new()))
            .expect("connect");
        SmolRow { _server: server, peer, msg: vec![7; MSG], item: Arc::new(vec![9; ITEM]), back: Vec::new() }
    }
}

impl Row for SmolRow {
    fn call(&mut self) {
        smol::block_on(self.peer.call_raw_into(ECHO, &self.msg, tandem_smol::Deadline::None, &mut self.back))
            .expect("call");
        debug_assert_eq!(self.back.len(), MSG);
    }

    fn pipelined(&mut self, depth: usize, time: Duration) -> (u64, Duration) {
        let ex = smol::LocalExecutor::new();
        let n = Rc::new(Cell::new(0u64));
        let start = Instant::now();
        let tasks: Vec<_> = (0..depth)
            .map(|_| {
                let (peer, msg, n) = (self.peer.clone(), self.msg.clone(), Rc::clone(&n));
                ex.spawn(async move {
                    // As the tandem-std row: responses land in a reused buffer, and the clock is
                    // read once per batch of calls, not per call.
                    let mut back = Vec::new();
                    while start.elapsed() < time {
                        for _ in 0..16 {
                            let d = tandem_smol::Deadline::None;
                            peer.call_raw_into(ECHO, &msg, d, &mut back).await.expect("call");
                            n.set(n.get() + 1);
                        }
                    }
                })
            })
            .collect();
        smol::block_on(ex.run(async {
            for t in tasks {
                t.await;
            }
        }));
        (n.get(), start.elapsed())
    }

    fn stream(&mut self, items: usize) -> Option<Duration> {
        let start = Instant::now();
        smol::block_on(async {
            let (mut tx, mut rx) =
                self.peer.open_stream_raw(SINK, b"", tandem_smol::Deadline::None).await.expect("open");
            for _ in 0..items {
                tx.send_shared(&self.item).await.expect("send");
            }
            tx.finish().expect("finish");
            while rx.recv().await.expect("recv").is_some() {}
        });
        Some(start.elapsed())
    }
}

/// Idle tandem-smol connections.
pub struct SmolIdle {
    t: Transport,
    server: tandem_smol::Server,
    peers: Vec<tandem_smol::Client>,
}

impl SmolIdle {
    /// The server.
    pub fn new(t: Transport) -> SmolIdle {
        SmolIdle { t, server: smol_server(t, "smol-idle"), peers: Vec::new() }
    }
}

impl Idle for SmolIdle {
    fn open(&mut self, n: usize) {
        let addr = self.server.local_addr().to_string();
        smol::block_on(async {
            for _ in 0..n {
                let name = format!("idle-{}", self.peers.len());
                let cfg = tandem_smol::ClientConfig {
                    tls: smol_trust(self.t),
                    ..tandem_smol::ClientConfig::new(name)
                };
                let c = tandem_smol::Client::connect(&addr, cfg, tandem_smol::Handlers::new());
                self.peers.push(c.await.expect("connect"));
            }
        });
        let end = Instant::now() + Duration::from_secs(60);
        while self.server.peers().len() < self.peers.len() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ------------------------------------------------------------------ many connections

/// tandem-std with many connections: one client each, and one thread keeping a sequential
/// call in flight on every connection through a `Completions` set (the blocking API's way to
/// wait on many calls; before it, a thread per connection: see BENCHMARKS.md).
pub struct StdMany {
    t: Transport,
    server: tandem_std::Server,
    clients: Vec<tandem_std::Client>,
}

impl StdMany {
    /// The server.
    pub fn new(t: Transport) -> StdMany {
        StdMany { t, server: std_server(t, "std-many"), clients: Vec::new() }
    }
}

impl Many for StdMany {
    fn open(&mut self, n: usize) {
        let addr = self.server.local_addr().to_string();
        for i in 0..n {
            let cfg = tandem_std::ClientConfig {
                workers: 1,
                tls: std_trust(self.t),
                ..tandem_std::ClientConfig::new(format!("many-{i}"))
            };
            self.clients
                .push(tandem_std::Client::connect(&addr, cfg, tandem_std::Handlers::new()).expect("connect"));
        }
    }

    fn run(&mut self, time: Duration) -> Vec<Duration> {
        let start = Instant::now();
        let (msg, mut back, mut lat) = ([7u8; MSG], Vec::new(), Vec::new());
        let call = |i: usize| {
            let t = Instant::now();
            (self.clients[i].start_call_raw(ECHO, &msg, tandem_std::Deadline::None).expect("call"), (i, t))
        };
        let mut calls = tandem_std::Completions::new();
        for i in 0..self.clients.len() {
            let (p, tag) = call(i);
            calls.push(p, tag);
        }
        while let Some(((i, t), r)) = calls.wait_into(&mut back) {
            r.expect("call");
            let now = Instant::now();
            lat.push(now - t);
            if now - start < time {
                let (p, tag) = call(i);
                calls.push(p, tag);
            }
        }
        lat
    }
}

/// tandem-smol with many connections: one client each, a task per client on one executor.
pub struct SmolMany {
    t: Transport,
    server: tandem_smol::Server,
    clients: Vec<tandem_smol::Client>,
}

impl SmolMany {
    /// The server.
    pub fn new(t: Transport) -> SmolMany {
        SmolMany { t, server: smol_server(t, "smol-many"), clients: Vec::new() }
    }
}

impl Many for SmolMany {
    fn open(&mut self, n: usize) {
        let addr = self.server.local_addr().to_string();
        smol::block_on(async {
            for i in 0..n {
                let cfg = tandem_smol::ClientConfig {
                    tls: smol_trust(self.t),
                    ..tandem_smol::ClientConfig::new(format!("many-{i}"))
                };
                let c = tandem_smol::Client::connect(&addr, cfg, tandem_smol::Handlers::new());
                self.clients.push(c.await.expect("connect"));
            }
        });
    }

    fn run(&mut self, time: Duration) -> Vec<Duration> {
        let ex = smol::LocalExecutor::new();
        let start = Instant::now();
        let tasks: Vec<_> = self
            .clients
            .iter()
            .map(|c| {
                let c = c.peer().clone();
                ex.spawn(async move {
                    let (msg, mut back, mut lat) = ([7u8; MSG], Vec::new(), Vec::new());
                    while start.elapsed() < time {
                        let t = Instant::now();
                        c.call_raw_into(ECHO, &msg, tandem_smol::Deadline::None, &mut back)
                            .await
                            .expect("call");
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        smol::block_on(ex.run(async {
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await);
            }
            all
        }))
    }
}
