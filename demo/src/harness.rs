//! Servers and clients of either runtime behind one blocking interface, and the checks that
//! need a whole server: calling every peer at once, replacing a stale connection, graceful
//! shutdown. The smol ends are driven with `smol::block_on`; their connections run on smol's
//! global executor, so both runtimes live side by side in one process.

use crate::{
    ensure, fresh_tag, smol_end, std_end, CallerReport, Exchange, Hold, Journal, Outcome, Who, HOLD, T, WHO,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_core::{ConnectionError, Status};

/// Which runtime an end runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// [`tandem_std`]: blocking, threads.
    Std,
    /// [`tandem_smol`]: async, on smol.
    Smol,
}

impl Runtime {
    /// `"std"` or `"smol"` (what [`WHO`] answers).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Std => "std",
            Runtime::Smol => "smol",
        }
    }
}

/// A transport, i.e. an address scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// `tcp://127.0.0.1:0`.
    Tcp,
    /// `unix:///PATH`.
    Unix,
    /// `unix+seqpacket:///PATH`.
    Seqpacket,
    /// `tls://127.0.0.1:0`: mutual TLS, peers authenticated by their certificates
    /// ([`crate::tls`]).
    Tls,
}

impl Transport {
    /// Every transport.
    pub const ALL: [Transport; 4] = [Transport::Tcp, Transport::Unix, Transport::Seqpacket, Transport::Tls];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Unix => "unix",
            Transport::Seqpacket => "seqpacket",
            Transport::Tls => "tls",
        }
    }

    /// An address to listen on: loopback with any port, or a socket `stem.sock` in `dir`.
    pub fn listen_address(self, dir: &Path, stem: &str) -> String {
        let path = dir.join(format!("{stem}.sock"));
        match self {
            Transport::Tcp => "tcp://127.0.0.1:0".into(),
            Transport::Unix => format!("unix://{}", path.display()),
            Transport::Seqpacket => format!("unix+seqpacket://{}", path.display()),
            Transport::Tls => "tls://127.0.0.1:0".into(),
        }
    }
}

enum ServerKind {
    Std(tandem_std::Server),
    Smol(tandem_smol::Server),
}

/// A listening server of either runtime, serving the whole protocol.
pub struct ServerEnd {
    /// Its runtime.
    pub runtime: Runtime,
    /// What its handlers observed.
    pub journal: Arc<Journal>,
    addr: String,
    server: ServerKind,
}

enum ClientKind {
    Std(tandem_std::Client),
    Smol(tandem_smol::Client),
}

/// A client of either runtime connected to a server, serving the whole protocol too.
pub struct ClientEnd {
    /// Its runtime.
    pub runtime: Runtime,
    /// The name it announced.
    pub name: String,
    /// What its handlers observed.
    pub journal: Arc<Journal>,
    client: ClientKind,
}

/// Name of the server ends (what clients see in HELLO).
pub const SERVER_NAME: &str = "hub";

impl ServerEnd {
    /// Listens on `addr` with the given runtime.
    pub fn start(runtime: Runtime, addr: &str) -> Result<ServerEnd, String> {
        let journal = Arc::new(Journal::default());
        let server = match runtime {
            Runtime::Std => {
                let handlers = std_end::handlers(SERVER_NAME, &journal);
                let mut config = tandem_std::ServerConfig::new(SERVER_NAME);
                if addr.starts_with("tls://") {
                    crate::secure_server!(tandem_std, config);
                }
                ServerKind::Std(tandem_std::Server::bind(addr, config, handlers).map_err(|e| e.to_string())?)
            }
            Runtime::Smol => {
                let handlers = smol_end::router(SERVER_NAME, &journal);
                let mut config = tandem_smol::ServerConfig::new(SERVER_NAME);
                if addr.starts_with("tls://") {
                    crate::secure_server!(tandem_smol, config);
                }
                ServerKind::Smol(
                    tandem_smol::Server::bind(addr, config, handlers).map_err(|e| e.to_string())?,
                )
            }
        };
        let addr = match &server {
            ServerKind::Std(s) => s.local_addr().to_string(),
            ServerKind::Smol(s) => s.local_addr().to_string(),
        };
        Ok(ServerEnd { runtime, journal, addr, server })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Connects a client of `runtime` named `name`, and waits until the server tracks it.
    pub fn connect(&self, runtime: Runtime, name: &str) -> Result<ClientEnd, String> {
        self.connect_via(runtime, name, &self.addr.clone())
    }

    /// Like [`connect`](Self::connect), through another address (a proxy in front of it).
    pub fn connect_via(&self, runtime: Runtime, name: &str, addr: &str) -> Result<ClientEnd, String> {
        let client = open_client(runtime, name, name, addr)?;
        ensure(self.wait_for_peer(name), || format!("the server does not track {name}"))?;
        Ok(client)
    }

    /// The identity the server's authenticator gave its peer `name` (`None`: no such peer, or
    /// an unauthenticated one).
    pub fn peer_identity(&self, name: &str) -> Option<String> {
        match &self.server {
            ServerKind::Std(s) => s.peer(name)?.identity().map(|i| i.to_string()),
            ServerKind::Smol(s) => s.peer(name)?.identity().map(|i| i.to_string()),
        }
    }

    /// Waits up to [`T`] until a peer named `name` is connected.
    pub fn wait_for_peer(&self, name: &str) -> bool {
        match &self.server {
            ServerKind::Std(s) => s.wait_for_peer(name, T).is_some(),
            ServerKind::Smol(s) => smol::block_on(s.wait_for_peer(name, T)).is_some(),
        }
    }

    /// The names of the connected peers, sorted.
    pub fn peer_names(&self) -> Vec<String> {
        match &self.server {
            ServerKind::Std(s) => s.peers().iter().map(|p| p.name().to_string()).collect(),
            ServerKind::Smol(s) => s.peers().iter().map(|p| p.name().to_string()).collect(),
        }
    }

    /// Runs every per-caller check from the server toward its peer `name`, whose handlers
    /// record into `remote`.
    pub fn checks_toward(&self, name: &str, remote: &Journal) -> CallerReport {
        let missing = || CallerReport {
            checks: Exchange::PER_CALLER.iter().map(|&x| (x, Err(format!("no peer named {name}")))).collect(),
            rtt: None,
        };
        match &self.server {
            ServerKind::Std(s) => {
                s.wait_for_peer(name, T).map_or_else(missing, |p| std_end::checks(&p, remote))
            }
            ServerKind::Smol(s) => smol::block_on(async {
                match s.wait_for_peer(name, T).await {
                    Some(p) => smol_end::checks(&p, remote).await,
                    None => missing(),
                }
            }),
        }
    }

    /// Calls [`WHO`] on the peer `name`.
    pub fn call_who(&self, name: &str) -> Result<Who, Status> {
        match &self.server {
            ServerKind::Std(s) => {
                s.peer(name).ok_or(Status::NOT_FOUND)?.call(&WHO, &(), T).map_err(|e| e.status())
            }
            ServerKind::Smol(s) => {
                let p = s.peer(name).ok_or(Status::NOT_FOUND)?;
                smol::block_on(p.call(&WHO, &(), T)).map_err(|e| e.status())
            }
        }
    }

    /// Calls [`HOLD`] on the peer `name`.
    pub fn call_hold(&self, name: &str, hold: &Hold, timeout: Duration) -> Result<(), Status> {
        match &self.server {
            ServerKind::Std(s) => {
                s.peer(name).ok_or(Status::NOT_FOUND)?.call(&HOLD, hold, timeout).map_err(|e| e.status())
            }
            ServerKind::Smol(s) => {
                let p = s.peer(name).ok_or(Status::NOT_FOUND)?;
                smol::block_on(p.call(&HOLD, hold, timeout)).map_err(|e| e.status())
            }
        }
    }

    /// Calls [`WHO`] on every connected peer at once: one result per peer, by name.
    pub fn call_all_who(&self) -> Vec<(String, Result<Who, Status>)> {
        let all = match &self.server {
            ServerKind::Std(s) => s
                .call_all(&WHO, &(), T)
                .into_iter()
                .map(|(p, r)| (p.name().to_string(), r.map_err(|e| e.status())))
                .collect(),
            ServerKind::Smol(s) => smol::block_on(s.call_all(&WHO, &(), T))
                .into_iter()
                .map(|(p, r)| (p.name().to_string(), r.map_err(|e| e.status())))
                .collect::<Vec<_>>(),
        };
        let mut all = all;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Graceful shutdown: GOAWAY to every peer, up to `grace` for exchanges in flight.
    pub fn shutdown(self, grace: Duration) {
        match self.server {
            ServerKind::Std(s) => s.shutdown(grace),
            ServerKind::Smol(s) => smol::block_on(s.shutdown(grace)),
        }
    }
}

/// A client of `runtime` named `name` connected to `addr`; on `tls://` it presents the
/// certificate issued to `cert_name` (an impostor when that is not `name`).
pub fn open_client(runtime: Runtime, name: &str, cert_name: &str, addr: &str) -> Result<ClientEnd, String> {
    let journal = Arc::new(Journal::default());
    let tls = addr.starts_with("tls://");
    let client = match runtime {
        Runtime::Std => {
            let handlers = std_end::handlers(name, &journal);
            let mut config = tandem_std::ClientConfig::new(name);
            if tls {
                crate::secure_client!(tandem_std, config, cert_name);
            }
            ClientKind::Std(tandem_std::Client::connect(addr, config, handlers).map_err(|e| e.to_string())?)
        }
        Runtime::Smol => {
            let mut config =
                tandem_smol::ClientConfig { connect_timeout: T, ..tandem_smol::ClientConfig::new(name) };
            if tls {
                crate::secure_client!(tandem_smol, config, cert_name);
            }
            let connect = tandem_smol::Client::connect(addr, config, smol_end::router(name, &journal));
            ClientKind::Smol(smol::block_on(connect).map_err(|e| e.to_string())?)
        }
    };
    Ok(ClientEnd { runtime, name: name.to_string(), journal, client })
}

impl ClientEnd {
    /// Runs every per-caller check from this client toward the server, whose handlers record
    /// into `remote`.
    pub fn checks(&self, remote: &Journal) -> CallerReport {
        match &self.client {
            ClientKind::Std(c) => std_end::checks(c, remote),
            ClientKind::Smol(p) => smol::block_on(smol_end::checks(p, remote)),
        }
    }

    /// Calls [`WHO`] on the server.
    pub fn call_who(&self) -> Result<Who, Status> {
        match &self.client {
            ClientKind::Std(c) => c.call(&WHO, &(), T).map_err(|e| e.status()),
            ClientKind::Smol(p) => smol::block_on(p.call(&WHO, &(), T)).map_err(|e| e.status()),
        }
    }

    /// Calls [`HOLD`] on the server.
    pub fn call_hold(&self, hold: &Hold, timeout: Duration) -> Result<(), Status> {
        match &self.client {
            ClientKind::Std(c) => c.call(&HOLD, hold, timeout).map_err(|e| e.status()),
            ClientKind::Smol(p) => smol::block_on(p.call(&HOLD, hold, timeout)).map_err(|e| e.status()),
        }
    }

    /// Waits up to `timeout` for the connection to end; why it ended, if it did.
    pub fn wait_closed(&self, timeout: Duration) -> Option<ConnectionError> {
        match &self.client {
            ClientKind::Std(c) => {
                let end = Instant::now() + timeout;
                while !c.is_closed() && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(2));
                }
                c.close_reason()
            }
            ClientKind::Smol(p) => smol::block_on(smol_end::within(timeout, p.closed())),
        }
    }
}

/// Session resumption (SPEC.md §13): a client of `client` reaches a server of `server` through a
/// [`Proxy`](crate::proxy::Proxy) that cuts the connection while a call is in flight. The client
/// reconnects by itself, the session resumes, and the call completes with its answer, its
/// handler having run once and never been told of a cancellation; a call made during the outage
/// completes too. Returns the outcome and how long the interrupted call took.
pub fn check_resumption(client: Runtime, server: Runtime) -> (Outcome, Duration) {
    let started = Instant::now();
    let outcome = (|| {
        let srv = ServerEnd::start(server, "tcp://127.0.0.1:0")?;
        let proxy = crate::proxy::Proxy::start(srv.addr()).map_err(|e| format!("proxy: {e}"))?;
        let name = fresh_tag("resumer");
        let cli = srv.connect_via(client, &name, &proxy.address())?;
        let tag = fresh_tag("resume");
        let hold = Hold { tag: tag.clone(), millis: 300 };
        std::thread::scope(|s| {
            let call = s.spawn(|| cli.call_hold(&hold, T));
            ensure(srv.journal.wait_for(&format!("started:{tag}"), T), || {
                "the handler never started".into()
            })?;
            let cut = proxy.cut_all();
            ensure(cut >= 1, || "the proxy had no connection to cut".into())?;
            // Made while the transport is down: it waits for the resumption.
            let during = cli.call_who();
            let r = call.join().map_err(|_| "the calling thread panicked".to_string())?;
            ensure(r == Ok(()), || format!("the interrupted call ended with {r:?}"))?;
            let want = Who { name: SERVER_NAME.into(), runtime: server.name().into() };
            ensure(during.as_ref() == Ok(&want), || {
                format!("the call made during the outage got {during:?}")
            })?;
            let runs = srv.journal.count(&format!("started:{tag}"));
            ensure(runs == 1, || format!("the handler ran {runs} times"))?;
            ensure(!srv.journal.contains(&format!("cancelled:{tag}")), || {
                "the handler was told its call was cancelled".into()
            })?;
            ensure(proxy.accepted() >= 2, || "the client never reconnected".into())
        })
    })();
    (outcome, started.elapsed())
}

/// Datagram mode (SPEC.md §14): a client of `client` talks to a server of `server` over UDP on
/// loopback: calls both ways, a call whose deadline passes, and 100 sequential calls, whose
/// median round trip is returned. (Streams are not available over UDP, §14.7.)
pub fn check_udp(client: Runtime, server: Runtime) -> (Outcome, Option<Duration>) {
    let mut rtt = None;
    let outcome = (|| {
        let srv = ServerEnd::start(server, "udp://127.0.0.1:0")?;
        let name = fresh_tag("udp");
        let cli = srv.connect(client, &name)?;
        let want = Who { name: SERVER_NAME.into(), runtime: server.name().into() };
        let got = cli.call_who();
        ensure(got.as_ref() == Ok(&want), || format!("client → server call got {got:?}"))?;
        let back = srv.call_who(&name);
        let me = Who { name: name.clone(), runtime: client.name().into() };
        ensure(back.as_ref() == Ok(&me), || format!("server → client call got {back:?}"))?;
        let tag = fresh_tag("udp-deadline");
        let late = cli.call_hold(&Hold { tag, millis: 2_000 }, Duration::from_millis(50));
        ensure(late == Err(Status::DEADLINE_EXCEEDED), || format!("a call past its deadline got {late:?}"))?;
        let mut samples = Vec::new();
        for _ in 0..100 {
            let t = Instant::now();
            let r = cli.call_who();
            samples.push(t.elapsed());
            ensure(r.is_ok(), || format!("a sequential call failed: {r:?}"))?;
        }
        rtt = crate::median(samples);
        Ok(())
    })();
    (outcome, rtt)
}

/// Identity over `tls://` with mutual TLS: a client named `alice` presenting alice's
/// certificate is admitted with the identity `cn:alice` and calls both ways work; then an
/// impostor presenting mallory's (valid) certificate while claiming the name `alice` is refused
/// with PERMISSION_DENIED and the server's message, and alice is untouched. Returns the
/// impostor's error as the client saw it.
pub fn check_tls_identity(client: Runtime, server: Runtime) -> (Outcome, Option<String>) {
    let mut refusal = None;
    let outcome = (|| {
        let srv = ServerEnd::start(server, "tls://127.0.0.1:0")?;
        let alice = srv.connect(client, "alice")?;
        let id = srv.peer_identity("alice");
        let want = crate::tls::identity_of("alice");
        ensure(id.as_deref() == Some(want.as_str()), || format!("the server sees alice as {id:?}"))?;
        let got = alice.call_who();
        ensure(got.is_ok(), || format!("alice → server call got {got:?}"))?;
        let back = srv.call_who("alice");
        ensure(back.is_ok(), || format!("server → alice call got {back:?}"))?;
        match open_client(client, "alice", "mallory", srv.addr()) {
            Ok(_) => return Err("an impostor with mallory's certificate connected as alice".into()),
            Err(e) => {
                ensure(e.contains("PERMISSION_DENIED"), || format!("the impostor was refused with: {e}"))?;
                refusal = Some(e);
            }
        }
        let after = alice.call_who();
        ensure(after.is_ok(), || format!("alice's call after the impostor's attempt got {after:?}"))?;
        let id = srv.peer_identity("alice");
        ensure(id.as_deref() == Some(want.as_str()), || format!("after the attempt, alice is {id:?}"))
    })();
    (outcome, refusal)
}

/// The server calls [`WHO`] on all its peers at once; each must answer with its own name
/// and runtime.
pub fn check_call_all(server: &ServerEnd, peers: &[&ClientEnd]) -> Outcome {
    let mut want: Vec<(String, Result<Who, Status>)> = peers
        .iter()
        .map(|c| (c.name.clone(), Ok(Who { name: c.name.clone(), runtime: c.runtime.name().into() })))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let got = server.call_all_who();
    ensure(got == want, || format!("call_all answered {got:?}, want {want:?}"))
}

/// A peer of `runtime` reconnects under the name of a connected one: the server replaces the
/// stale connection, whose pending call fails with UNAVAILABLE and whose handler is told; the
/// new connection works both ways.
pub fn check_replacement(server: &ServerEnd, runtime: Runtime, name: &str) -> Outcome {
    let old = server.connect(runtime, name)?;
    let tag = fresh_tag("stale");
    let hold = Hold { tag: tag.clone(), millis: 10_000 };
    std::thread::scope(|s| {
        // A call from the server, pending on the old connection.
        let pending = s.spawn(|| server.call_hold(name, &hold, T));
        let started = old.journal.wait_for(&format!("started:{tag}"), T);
        let new = server.connect(runtime, name);
        let r = pending.join().unwrap_or(Err(Status::INTERNAL));
        ensure(started, || "the call on the old connection never reached its handler".into())?;
        let new = new?;
        ensure(r == Err(Status::UNAVAILABLE), || {
            format!("the call on the stale connection ended with {r:?}")
        })?;
        ensure(old.journal.wait_for(&format!("cancelled:{tag}"), T), || {
            "the old connection's handler was not told".into()
        })?;
        let reason = old.wait_closed(T);
        ensure(reason.is_some(), || "the old client does not see its connection closed".into())?;
        let who = server.call_who(name);
        let want = Who { name: name.into(), runtime: runtime.name().into() };
        ensure(who.as_ref() == Ok(&want), || format!("the server's call to the new connection: {who:?}"))?;
        let back = new.call_who();
        ensure(back.as_ref().is_ok_and(|w| w.runtime == server.runtime.name()), || {
            format!("the new client's call: {back:?}")
        })?;
        let names = server.peer_names();
        ensure(names.iter().filter(|n| *n == name).count() == 1, || format!("the server's peers: {names:?}"))
    })
}

/// Graceful shutdown: a call in flight when the server shuts down completes; the client then
/// sees a graceful close, and new calls fail with UNAVAILABLE.
pub fn check_graceful_shutdown(server: ServerEnd, client: &ClientEnd) -> Outcome {
    let tag = fresh_tag("in-flight");
    let hold = Hold { tag: tag.clone(), millis: 100 };
    let journal = Arc::clone(&server.journal);
    let (started, in_flight, took) = std::thread::scope(|s| {
        let call = s.spawn(|| client.call_hold(&hold, T));
        let started = journal.wait_for(&format!("started:{tag}"), T);
        let t = Instant::now();
        server.shutdown(Duration::from_secs(3));
        (started, call.join().unwrap_or(Err(Status::INTERNAL)), t.elapsed())
    });
    ensure(started, || "the call in flight never reached the server".into())?;
    ensure(in_flight == Ok(()), || format!("the call in flight ended with {in_flight:?}"))?;
    ensure(took < Duration::from_secs(3), || format!("shutdown took {took:?}: not graceful"))?;
    let reason = client.wait_closed(T);
    ensure(reason.is_some_and(|r| r.is_graceful()), || {
        format!("the client's connection ended with {reason:?}")
    })?;
    let after = client.call_who();
    ensure(after == Err(Status::UNAVAILABLE), || format!("a call after shutdown: {after:?}"))
}

/// Who called whom in a [`Row`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The client called the server.
    Client,
    /// The server called the client (and, for call-all, every client).
    Server,
}

/// The checks of one direction of one connection.
#[derive(Debug)]
pub struct Row {
    /// The client's runtime.
    pub client: Runtime,
    /// The server's runtime.
    pub server: Runtime,
    /// The transport.
    pub transport: Transport,
    /// Who called.
    pub caller: Caller,
    /// What the calls found.
    pub report: CallerReport,
}

impl Row {
    /// The checks that failed, with what went wrong.
    pub fn failures(&self) -> Vec<(Exchange, &str)> {
        self.report.checks.iter().filter_map(|(x, o)| o.as_ref().err().map(|e| (*x, e.as_str()))).collect()
    }
}

/// Extra peers connected for the call-all check (besides the main client).
pub const EXTRA_PEERS: usize = 3;

/// A server of `server` runtime and a client of `client` runtime on `transport` (Unix sockets
/// in `dir`): every exchange type from the client, then from the server, then call-all across
/// several peers and a graceful shutdown. Two rows: client → server, server → client.
pub fn run_pair(client: Runtime, server: Runtime, transport: Transport, dir: &Path) -> [Row; 2] {
    let stem = format!("{}-{}-{}", client.name(), server.name(), transport.name());
    let row = |caller, report| Row { client, server, transport, caller, report };
    let setup = ServerEnd::start(server, &transport.listen_address(dir, &stem))
        .and_then(|s| s.connect(client, "client").map(|c| (s, c)));
    let (srv, cli) = match setup {
        Ok(ends) => ends,
        Err(e) => {
            let failed = |list: &[Exchange]| CallerReport {
                checks: list.iter().map(|&x| (x, Err(format!("setup failed: {e}")))).collect(),
                rtt: None,
            };
            let mut down = Exchange::PER_CALLER.to_vec();
            down.extend([Exchange::CallAll, Exchange::Shutdown]);
            return [row(Caller::Client, failed(&Exchange::PER_CALLER)), row(Caller::Server, failed(&down))];
        }
    };
    let up = cli.checks(&srv.journal);
    let mut down = srv.checks_toward(&cli.name, &cli.journal);
    let call_all = (1..=EXTRA_PEERS)
        .map(|i| srv.connect(client, &format!("peer-{i}")))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|extra| {
            let mut all: Vec<&ClientEnd> = extra.iter().collect();
            all.push(&cli);
            check_call_all(&srv, &all)
        });
    down.checks.push((Exchange::CallAll, call_all));
    down.checks.push((Exchange::Shutdown, check_graceful_shutdown(srv, &cli)));
    [row(Caller::Client, up), row(Caller::Server, down)]
}
