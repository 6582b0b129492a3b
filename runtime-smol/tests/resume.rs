//! Session resumption (SPEC.md §13) over real loopback TCP, through an in-test proxy that can
//! cut every connection and refuse new ones (an outage).

mod common;

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use core::time::Duration;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{run, wait_until, within, Add, ADD, T};
use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::{
    CallError, Client, ClientConfig, Config, ConnectionError, Deadline, EndpointConfig, Handlers, LinkState,
    ReconnectPolicy, Server, ServerConfig, Status,
};

/// Blocks in its handler until released; counts its runs.
const GATE: Unary<u32, u32> = Unary::new(7, 1);

/// A stream socket the proxy can forward (TCP or Unix).
trait Sock: Read + Write + Send + Sized + 'static {
    fn dup(&self) -> Self;
    fn kill(&self);
}

impl Sock for TcpStream {
    fn dup(&self) -> Self {
        self.try_clone().unwrap()
    }
    fn kill(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Sock for UnixStream {
    fn dup(&self) -> Self {
        self.try_clone().unwrap()
    }
    fn kill(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Sock for socket2::Socket {
    fn dup(&self) -> Self {
        self.try_clone().unwrap()
    }
    fn kill(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

type Kill = Box<dyn Fn() + Send>;

/// A proxy: forwards every connection to its target; `cut` closes them all; while
/// `blocked`, new connections are closed at once.
struct Proxy {
    url: String,
    target: Arc<Mutex<SocketAddr>>,
    conns: Arc<Mutex<Vec<Kill>>>,
    blocked: Arc<AtomicBool>,
}

impl Proxy {
    /// A TCP proxy to `target`.
    fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("tcp://{}", listener.local_addr().unwrap());
        let target = Arc::new(Mutex::new(target));
        let t = target.clone();
        Proxy::serve(
            url,
            target,
            std::iter::from_fn(move || listener.accept().ok().map(|(s, _)| s)),
            move || {
                let up = TcpStream::connect(*t.lock().unwrap()).ok()?;
                let _ = up.set_nodelay(true);
                Some(up)
            },
        )
    }

    /// A Unix stream proxy at `path` to the Unix socket `target`.
    fn unix(path: &Path, target: PathBuf) -> Proxy {
        let listener = UnixListener::bind(path).unwrap();
        let url = format!("unix://{}", path.display());
        let unused = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], 0))));
        Proxy::serve(
            url,
            unused,
            std::iter::from_fn(move || listener.accept().ok().map(|(s, _)| s)),
            move || UnixStream::connect(&target).ok(),
        )
    }

    /// A Unix SEQPACKET proxy at `path` to `target` (every packet forwarded whole).
    fn seqpacket(path: &Path, target: PathBuf) -> Proxy {
        use socket2::{Domain, SockAddr, Socket, Type};
        let listener = Socket::new(Domain::UNIX, Type::SEQPACKET, None).unwrap();
        listener.bind(&SockAddr::unix(path).unwrap()).unwrap();
        listener.listen(16).unwrap();
        let url = format!("unix+seqpacket://{}", path.display());
        let unused = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], 0))));
        Proxy::serve(
            url,
            unused,
            std::iter::from_fn(move || listener.accept().ok().map(|(s, _)| s)),
            move || {
                let up = Socket::new(Domain::UNIX, Type::SEQPACKET, None).ok()?;
                up.connect(&SockAddr::unix(&target).ok()?).ok()?;
                Some(up)
            },
        )
    }

    fn serve<S: Sock>(
        url: String,
        target: Arc<Mutex<SocketAddr>>,
        incoming: impl Iterator<Item = S> + Send + 'static,
        connect: impl Fn() -> Option<S> + Send + 'static,
    ) -> Proxy {
        let conns = Arc::new(Mutex::new(Vec::<Kill>::new()));
        let blocked = Arc::new(AtomicBool::new(false));
        let (c, b) = (conns.clone(), blocked.clone());
        std::thread::spawn(move || {
            for down in incoming {
                if b.load(Ordering::SeqCst) {
                    down.kill();
                    continue;
                }
                let Some(up) = connect() else {
                    down.kill();
                    continue;
                };
                {
                    let (d, u) = (down.dup(), up.dup());
                    c.lock().unwrap().push(Box::new(move || {
                        d.kill();
                        u.kill();
                    }));
                }
                pipe(down.dup(), up.dup());
                pipe(up, down);
            }
        });
        Proxy { url, target, conns, blocked }
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    /// Closes every proxied connection (both ends).
    fn cut(&self) {
        for kill in self.conns.lock().unwrap().drain(..) {
            kill();
        }
    }

    fn block(&self, yes: bool) {
        self.blocked.store(yes, Ordering::SeqCst);
    }
}

fn pipe<S: Sock>(mut from: S, mut to: S) {
    std::thread::spawn(move || {
        // Holds the largest SEQPACKET datagram, so that packets are forwarded whole.
        let mut buf = vec![0u8; 128 * 1024];
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
        to.kill();
        from.kill();
    });
}

/// A router with ADD and GATE; GATE counts its runs and waits for `release`.
fn gate_router(runs: Arc<AtomicUsize>, release: async_channel::Receiver<()>) -> Handlers {
    Handlers::new().unary(&ADD, |_ctx, r: Add| async move { Ok(r.a + r.b) }).unary(
        &GATE,
        move |_ctx, x: u32| {
            let runs = runs.clone();
            let release = release.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let _ = release.recv().await;
                Ok(x + 1)
            }
        },
    )
}

fn tcp_addr(server: &Server) -> SocketAddr {
    server.local_addr().to_string().trim_start_matches("tcp://").parse().unwrap()
}

fn fast_client(name: &str) -> ClientConfig {
    let reconnect = ReconnectPolicy {
        initial: Duration::from_millis(5),
        max: Duration::from_millis(50),
        ..ReconnectPolicy::default()
    };
    ClientConfig { reconnect, ..ClientConfig::new(name) }
}

#[test]
fn killed_transport_mid_call_is_resumed_and_the_reply_arrives_once() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = async_channel::unbounded();
        let server = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig::new("server"),
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        let proxy = Proxy::start(tcp_addr(&server));
        let peer = Client::connect(&proxy.url(), fast_client("client"), Handlers::new()).await.unwrap();
        assert_eq!(server.stats().connections, 1);

        let p = peer.clone();
        let gated = smol::spawn(async move { p.call(&GATE, &41, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;

        // Outage: every connection cut, reconnection attempts refused for a while.
        proxy.block(true);
        proxy.cut();
        wait_until(|| server.stats().suspended_sessions == 1).await;
        assert!(matches!(server.peer("client").unwrap().state(), LinkState::Suspended { .. }));
        // A call made during the outage, and the handler answering while suspended.
        let p = peer.clone();
        let during = smol::spawn(async move { p.call(&ADD, &Add { a: 2, b: 3 }, T).await });
        release_tx.send(()).await.unwrap();
        async_io::Timer::after(Duration::from_millis(100)).await;
        proxy.block(false);

        assert_eq!(within(T, gated).await, Ok(42));
        assert_eq!(within(T, during).await, Ok(5));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran exactly once");
        assert!(peer.stats().resumptions >= 1, "{:?}", peer.stats());
        assert!(peer.stats().suspensions >= 1, "{:?}", peer.stats());
        assert!(!peer.is_closed());
        assert_eq!(server.stats().suspended_sessions, 0);
        // Still usable, and the server still knows one session.
        assert_eq!(peer.call(&ADD, &Add { a: 1, b: 1 }, T).await, Ok(2));
        assert_eq!(server.stats().connections, 1);
        assert_eq!(
            server.peers().iter().map(|p| p.name().to_string()).collect::<Vec<_>>(),
            vec!["client".to_string()]
        );
        server.shutdown(T).await;
    });
}

#[test]
fn repeated_cuts_are_survived() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = async_channel::unbounded();
        let server = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig::new("server"),
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        let proxy = Proxy::start(tcp_addr(&server));
        let peer = Client::connect(&proxy.url(), fast_client("client"), Handlers::new()).await.unwrap();
        let p = peer.clone();
        let gated = smol::spawn(async move { p.call(&GATE, &1, Deadline::None).await });
        for i in 0..5u32 {
            proxy.cut();
            let sum = within(T, peer.call(&ADD, &Add { a: i, b: 1 }, T)).await;
            assert_eq!(sum, Ok(i + 1));
        }
        release_tx.send(()).await.unwrap();
        assert_eq!(within(T, gated).await, Ok(2));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        server.shutdown(T).await;
    });
}

#[test]
fn session_whose_client_never_returns_expires_and_is_freed() {
    run(T * 3, async {
        let grace = Config { session_grace: Duration::from_millis(300), ..Config::default() };
        let runs = Arc::new(AtomicUsize::new(0));
        let (_release_tx, release_rx) = async_channel::unbounded();
        let server = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig { connection: grace.clone(), ..ServerConfig::new("server") },
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        let proxy = Proxy::start(tcp_addr(&server));
        let peer = Client::connect(
            &proxy.url(),
            ClientConfig { connection: grace, ..fast_client("client") },
            Handlers::new(),
        )
        .await
        .unwrap();
        let p = peer.clone();
        let gated = smol::spawn(async move { p.call(&GATE, &1, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;
        proxy.block(true);
        proxy.cut();
        // The client gives up after its own grace period: UNAVAILABLE, session expired.
        assert_eq!(within(T, gated).await, Err(CallError::from(Status::UNAVAILABLE)));
        assert_eq!(within(T, peer.closed()).await, ConnectionError::SessionExpired);
        // The server forgets the session.
        wait_until(|| server.stats().connections == 0 && server.stats().suspended_sessions == 0).await;
        wait_until(|| server.peer("client").is_none()).await;
        assert_eq!(server.stats().endpoint.evicted_count, 0);
        server.shutdown(T).await;
    });
}

#[test]
fn server_that_no_longer_knows_the_session_fails_pending_calls_unavailable() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (_release_tx, release_rx) = async_channel::unbounded();
        let first = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig::new("server"),
            gate_router(runs.clone(), release_rx.clone()),
        )
        .unwrap();
        let proxy = Proxy::start(tcp_addr(&first));
        let peer = Client::connect(&proxy.url(), fast_client("client"), Handlers::new()).await.unwrap();
        let p = peer.clone();
        let gated = smol::spawn(async move { p.call(&GATE, &1, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;
        // "Restart": the server is gone, a new one (that knows no session) takes over.
        proxy.block(true);
        proxy.cut();
        drop(first);
        let second = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig::new("server"),
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        *proxy.target.lock().unwrap() = tcp_addr(&second);
        proxy.block(false);
        assert_eq!(within(T, gated).await, Err(CallError::from(Status::UNAVAILABLE)));
        // The connection goes on as a new session.
        assert_eq!(within(T, peer.call(&ADD, &Add { a: 3, b: 4 }, T)).await, Ok(7));
        assert!(!peer.is_closed());
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        second.shutdown(T).await;
    });
}

#[test]
fn too_many_suspended_sessions_evict_the_oldest() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (_release_tx, release_rx) = async_channel::unbounded();
        let server = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig {
                endpoint: EndpointConfig { max_suspended_sessions: 0, ..EndpointConfig::default() },
                ..ServerConfig::new("server")
            },
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        let proxy = Proxy::start(tcp_addr(&server));
        let peer = Client::connect(&proxy.url(), fast_client("client"), Handlers::new()).await.unwrap();
        let p = peer.clone();
        let gated = smol::spawn(async move { p.call(&GATE, &1, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;
        proxy.cut();
        assert_eq!(within(T, gated).await, Err(CallError::from(Status::UNAVAILABLE)));
        assert_eq!(server.stats().endpoint.evicted_count, 1);
        assert_eq!(within(T, peer.call(&ADD, &Add { a: 1, b: 2 }, T)).await, Ok(3));
        server.shutdown(T).await;
    });
}

#[test]
fn resumption_off_fails_calls_when_the_transport_is_lost() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (_release_tx, release_rx) = async_channel::unbounded();
        let server = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig {
                endpoint: EndpointConfig { resume: false, ..EndpointConfig::default() },
                ..ServerConfig::new("server")
            },
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        assert_eq!(server.stats().connections, 0);
        let proxy = Proxy::start(tcp_addr(&server));
        let peer = Client::connect(&proxy.url(), fast_client("client"), Handlers::new()).await.unwrap();
        let p = peer.clone();
        let gated = smol::spawn(async move { p.call(&GATE, &1, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;
        proxy.cut();
        assert_eq!(within(T, gated).await, Err(CallError::from(Status::UNAVAILABLE)));
        assert!(within(T, peer.closed()).await == ConnectionError::TransportClosed);
        server.shutdown(T).await;
    });
}

#[test]
fn unix_sessions_are_resumed_too() {
    for packet in [false, true] {
        unix_session_is_resumed(packet);
    }
}

fn unix_session_is_resumed(packet: bool) {
    run(T * 3, async {
        let dir = tempfile::tempdir().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = async_channel::unbounded();
        let path = dir.path().join("s.sock");
        let server = Server::bind(
            &format!("{}://{}", if packet { "unix+seqpacket" } else { "unix" }, path.display()),
            ServerConfig::new("server"),
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        let proxy = if packet {
            Proxy::seqpacket(&dir.path().join("proxy.sock"), path)
        } else {
            Proxy::unix(&dir.path().join("proxy.sock"), path)
        };
        let peer = Client::connect(&proxy.url(), fast_client("client"), Handlers::new()).await.unwrap();
        let p = peer.clone();
        let gated = smol::spawn(async move { p.call(&GATE, &9, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;
        proxy.cut();
        assert_eq!(within(T, peer.call(&ADD, &Add { a: 2, b: 2 }, T)).await, Ok(4));
        release_tx.send(()).await.unwrap();
        assert_eq!(within(T, gated).await, Ok(10));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(peer.stats().resumptions >= 1);
        server.shutdown(T).await;
    });
}

#[test]
fn every_failed_reconnection_attempt_is_visible_in_the_link_state() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (_release_tx, release_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), gate_router(runs, release_rx))
                .unwrap();
        let proxy = Proxy::start(tcp_addr(&server));
        let client = Client::connect(&proxy.url(), fast_client("client"), Handlers::new()).await.unwrap();
        assert_eq!(client.state(), LinkState::Connected { resumed: false });
        let mut watch = client.watch_state();
        // An outage: every attempt is refused until three have failed.
        proxy.block(true);
        proxy.cut();
        let mut seen = Vec::new();
        loop {
            let s = within(T, watch.changed()).await.expect("the connection stays open");
            seen.push(s);
            if let LinkState::Suspended { failures: 3.., .. } = s {
                break;
            }
        }
        proxy.block(false);
        loop {
            let s = within(T, watch.changed()).await.expect("the connection stays open");
            seen.push(s);
            if s == (LinkState::Connected { resumed: true }) {
                break;
            }
        }
        assert!(matches!(seen[0], LinkState::Suspended { failures: 0, next: Some(_), .. }), "{seen:?}");
        // Failures counted one by one, each after an attempt.
        let failures: Vec<u32> = seen
            .iter()
            .filter_map(
                |s| if let LinkState::Suspended { failures, .. } = s { Some(*failures) } else { None },
            )
            .collect();
        assert!(failures.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
        assert!(seen.iter().any(|s| matches!(s, LinkState::Connecting { attempt: 2.. })), "{seen:?}");
        assert_eq!(client.call(&ADD, &Add { a: 1, b: 1 }, T).await, Ok(2));
        client.close();
        assert!(matches!(within(T, watch.changed()).await, Some(LinkState::Closed(_))));
        assert_eq!(watch.changed().await, None);
        server.shutdown(T).await;
    });
}

#[test]
fn with_fresh_session_off_a_session_the_server_cannot_resume_closes() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (_release_tx, release_rx) = async_channel::unbounded();
        let first = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig::new("server"),
            gate_router(runs.clone(), release_rx.clone()),
        )
        .unwrap();
        let proxy = Proxy::start(tcp_addr(&first));
        let mut config = fast_client("client");
        config.reconnect.fresh_session = false;
        let client = Client::connect(&proxy.url(), config, Handlers::new()).await.unwrap();
        let p = client.peer().clone();
        let gated = smol::spawn(async move { p.call(&GATE, &1, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;
        // The server restarts: the new one declines the resumption.
        proxy.block(true);
        proxy.cut();
        drop(first);
        let second =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), gate_router(runs, release_rx))
                .unwrap();
        *proxy.target.lock().unwrap() = tcp_addr(&second);
        proxy.block(false);
        assert_eq!(within(T, gated).await, Err(CallError::from(Status::UNAVAILABLE)));
        let reason = within(T, client.closed()).await;
        assert_eq!(reason.status(), Status::UNAVAILABLE, "{reason:?}");
        assert!(matches!(client.state(), LinkState::Closed(_)));
        second.shutdown(T).await;
    });
}

#[test]
fn calls_waiting_on_a_suspended_session_fail_after_the_suspended_call_timeout() {
    run(T * 3, async {
        let runs = Arc::new(AtomicUsize::new(0));
        let (_release_tx, release_rx) = async_channel::unbounded();
        let server = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig::new("server"),
            gate_router(runs.clone(), release_rx),
        )
        .unwrap();
        let proxy = Proxy::start(tcp_addr(&server));
        // The default 30 s grace period, but calls wait at most 400 ms on a suspended session.
        let mut config = fast_client("client");
        config.connection.suspended_call_timeout = Duration::from_millis(400);
        assert_eq!(config.connection.session_grace, Duration::from_secs(30));
        let client = Client::connect(&proxy.url(), config, Handlers::new()).await.unwrap();
        let p = client.peer().clone();
        let gated = smol::spawn(async move { p.call(&GATE, &1, Deadline::None).await });
        wait_until(|| runs.load(Ordering::SeqCst) == 1).await;
        // The server is gone for good (killed: nothing answers any more).
        proxy.block(true);
        proxy.cut();
        drop(server);
        let start = std::time::Instant::now();
        // A call in flight, and one made while suspended: both UNAVAILABLE after ~400 ms.
        let during = client.call(&ADD, &Add { a: 1, b: 2 }, Deadline::None);
        assert_eq!(within(T, during).await, Err(CallError::from(Status::UNAVAILABLE)));
        assert_eq!(within(T, gated).await, Err(CallError::from(Status::UNAVAILABLE)));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(5), "{took:?}");
        // The session itself is still suspended, still trying to reconnect.
        assert!(matches!(client.state(), LinkState::Suspended { .. } | LinkState::Connecting { .. }));
        assert!(!client.is_closed());
    });
}
