//! The project's own servers (both runtimes) exposing the test service, dialers that connect to a
//! runner in `--listen` mode, and the self-test that plays the whole suite against them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tandem_core::addr::Address;

use crate::runner::{self, CaseResult, Options, Outcome};
use crate::service::{self, State, SERVER_NAME};
use crate::suite::{Case, Role, Target};
use crate::tls::TlsSettings;
use crate::wire::Listener;

/// The two runtimes of this repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `tandem-std`.
    Std,
    /// `tandem-smol`.
    Smol,
}

impl Runtime {
    /// `std` or `smol`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Std => "std",
            Runtime::Smol => "smol",
        }
    }
    /// Parses `std` or `smol`.
    pub fn parse(s: &str) -> Option<Runtime> {
        match s {
            "std" => Some(Runtime::Std),
            "smol" => Some(Runtime::Smol),
            _ => None,
        }
    }
}

/// A running test-service server.
pub enum Server {
    /// Blocking runtime.
    Std(tandem_std::Server),
    /// Async runtime.
    Smol(tandem_smol::Server),
}

impl Server {
    /// Starts the test service on `addr` (a stale Unix socket file is replaced).
    pub fn start(rt: Runtime, addr: &str) -> Result<Server, String> {
        Server::start_with(rt, addr, true)
    }

    /// Like [`start`](Self::start); with `resumption` false the server offers no session token
    /// (its runtimes offer one by default), so the §13 cases are skipped against it.
    pub fn start_with(rt: Runtime, addr: &str, resumption: bool) -> Result<Server, String> {
        Server::start_opts(rt, addr, resumption, false)
    }

    /// Like [`start_with`](Self::start_with); with `auth` the service runs in authenticating
    /// mode (SPEC.md Appendix A.5, [`service::authenticator`]).
    pub fn start_opts(rt: Runtime, addr: &str, resumption: bool, auth: bool) -> Result<Server, String> {
        Server::start_tls(rt, addr, resumption, auth, None)
    }

    /// Like [`start_opts`](Self::start_opts); `tls` is the server's TLS configuration, required
    /// by a `tls://` address.
    pub fn start_tls(
        rt: Runtime,
        addr: &str,
        resumption: bool,
        auth: bool,
        tls: Option<tandem_std::TlsServerConfig>,
    ) -> Result<Server, String> {
        let authenticator = auth.then(service::authenticator);
        let state = State::default();
        match rt {
            Runtime::Std => {
                let mut cfg = tandem_std::ServerConfig::new(SERVER_NAME);
                cfg.endpoint.resume = resumption;
                cfg.connection = service::config_for(addr);
                cfg.unlink_stale_socket = true;
                cfg.authenticator = authenticator;
                cfg.tls = tls;
                tandem_std::Server::bind(addr, cfg, service::std_service(&state))
                    .map(Server::Std)
                    .map_err(|e| e.to_string())
            }
            Runtime::Smol => {
                let mut cfg = tandem_smol::ServerConfig::new(SERVER_NAME);
                cfg.endpoint.resume = resumption;
                cfg.connection = service::config_for(addr);
                cfg.unlink_stale_socket = true;
                cfg.authenticator = authenticator;
                cfg.tls = tls;
                tandem_smol::Server::bind(addr, cfg, service::smol_service(&state))
                    .map(Server::Smol)
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The bound address.
    pub fn addr(&self) -> Address {
        match self {
            Server::Std(s) => s.local_addr().clone(),
            Server::Smol(s) => s.local_addr().clone(),
        }
    }

    /// Stops the server.
    pub fn stop(self) {
        match self {
            Server::Std(s) => s.shutdown(Duration::from_millis(200)),
            Server::Smol(s) => smol::block_on(s.shutdown(Duration::from_millis(200))),
        }
    }
}

/// A loop that keeps one connection to `addr` open, serving the test service, and reconnects
/// whenever it ends (how an implementation takes part in `run --listen`).
pub struct Dialer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Dialer {
    /// Starts dialing `addr` with runtime `rt`.
    pub fn start(rt: Runtime, addr: &str) -> Dialer {
        Dialer::start_tls(rt, addr, tandem_std::TlsClientConfig::default())
    }

    /// Starts dialing `addr` with runtime `rt` and, over `tls://`, the TLS configuration `tls`.
    pub fn start_tls(rt: Runtime, addr: &str, tls: tandem_std::TlsClientConfig) -> Dialer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let addr = addr.to_string();
        let thread = std::thread::spawn(move || dial_loop_tls(rt, &addr, tls, &s));
        Dialer { stop, thread: Some(thread) }
    }

    /// Stops the loop.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Dialer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Dials `addr` again and again until `stop` is set.
pub fn dial_loop(rt: Runtime, addr: &str, stop: &AtomicBool) {
    dial_loop_tls(rt, addr, tandem_std::TlsClientConfig::default(), stop)
}

/// [`dial_loop`] with a TLS configuration for a `tls://` address.
pub fn dial_loop_tls(rt: Runtime, addr: &str, tls: tandem_std::TlsClientConfig, stop: &AtomicBool) {
    let state = State::default();
    let tick = Duration::from_millis(20);
    match rt {
        Runtime::Std => {
            while !stop.load(Ordering::SeqCst) {
                let mut cfg = tandem_std::ClientConfig::new("tandem-conformance-dialer");
                cfg.connection = service::config_for(addr);
                cfg.workers = 16;
                cfg.tls = tls.clone();
                match tandem_std::Client::connect(addr, cfg, service::std_service(&state)) {
                    Ok(c) => {
                        while !c.is_closed() && !stop.load(Ordering::SeqCst) {
                            std::thread::sleep(tick);
                        }
                        c.close();
                    }
                    Err(_) => std::thread::sleep(tick),
                }
            }
        }
        Runtime::Smol => smol::block_on(async {
            while !stop.load(Ordering::SeqCst) {
                let mut cfg = tandem_smol::ClientConfig::new("tandem-conformance-dialer");
                cfg.connection = service::config_for(addr);
                cfg.tls = tls.clone();
                match tandem_smol::Client::connect(addr, cfg, service::smol_service(&state)).await {
                    Ok(p) => {
                        while !p.is_closed() && !stop.load(Ordering::SeqCst) {
                            smol::Timer::after(tick).await;
                        }
                        p.close();
                    }
                    Err(_) => {
                        smol::Timer::after(tick).await;
                    }
                }
            }
        }),
    }
}

/// Cases that fail against this repository's runtimes because of known bugs in them (not in the
/// runner), with the reason. The self-test test tolerates these and only these failures.
pub const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn skipped(c: &Case, o: Outcome) -> CaseResult {
    CaseResult {
        id: c.id.clone(),
        section: c.section.clone(),
        title: c.title.clone(),
        requirement: c.requirement.clone(),
        outcome: o,
        log: Vec::new(),
        duration: Duration::ZERO,
    }
}

/// The transports of the self-test matrix.
pub const TRANSPORTS: [&str; 4] = ["tcp", "unix", "unix+seqpacket", "udp"];

/// Certificates for a `tls` cell of the self-test (PEM; `tandem_testkit::pki` makes them in
/// the tests): one CA, a server certificate for `127.0.0.1` (used by the runtimes' servers and
/// by the runner when it listens), and a client certificate the runner presents.
#[derive(Clone)]
pub struct TlsPems {
    /// The CA certificate.
    pub ca: Vec<u8>,
    /// A server certificate for 127.0.0.1 issued by `ca`.
    pub server_cert: Vec<u8>,
    /// Its key.
    pub server_key: Vec<u8>,
    /// A client certificate issued by `ca`.
    pub client_cert: Vec<u8>,
    /// Its key.
    pub client_key: Vec<u8>,
}

static DIRS: AtomicU64 = AtomicU64::new(0);

/// A fresh address of `transport` for a test server (`what` names its socket file).
pub fn temp_addr(transport: &str, what: &str) -> String {
    let n = DIRS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir();
    let path = dir.join(format!("tandem-conf-{}-{n}-{what}.sock", std::process::id()));
    match transport {
        "tcp" => "tcp://127.0.0.1:0".into(),
        "tls" => "tls://127.0.0.1:0".into(),
        "udp" => "udp://127.0.0.1:0".into(),
        "ws" => "ws://127.0.0.1:0/tandem".into(),
        t => format!("{t}://{}", path.display()),
    }
}

/// The results of one cell of the matrix.
pub struct Cell {
    /// Runtime under test.
    pub runtime: Runtime,
    /// Transport scheme.
    pub transport: &'static str,
    /// All results (runner dialing, then the implementation dialing).
    pub results: Vec<CaseResult>,
}

/// Runs the suite against one runtime over one transport.
pub fn run_cell(rt: Runtime, transport: &'static str, cases: &[Case], opts: &Options) -> Cell {
    run_cell_with(rt, transport, cases, opts, None)
}

fn setup_failed(rt: Runtime, transport: &'static str, what: &str, e: String) -> Cell {
    Cell {
        runtime: rt,
        transport,
        results: vec![CaseResult {
            id: "setup".into(),
            section: "0".into(),
            title: what.into(),
            requirement: String::new(),
            outcome: runner::Outcome::Failed { expected: what.into(), actual: e },
            log: Vec::new(),
            duration: Duration::ZERO,
        }],
    }
}

/// Runs the suite against one runtime over one transport; transport `"tls"` needs `tls`: the
/// runtime's server requires a client certificate of the CA (mutual TLS) and the runner
/// presents one; when the runtime dials, it trusts the CA only and the runner serves the
/// server certificate.
pub fn run_cell_with(
    rt: Runtime,
    transport: &'static str,
    cases: &[Case],
    opts: &Options,
    tls: Option<&TlsPems>,
) -> Cell {
    let mut results = Vec::new();
    let (server_tls, dial_opts, listen_opts, dialer_tls) = match (transport, tls) {
        ("tls", None) => return setup_failed(rt, transport, "certificates for tls://", "none given".into()),
        ("tls", Some(p)) => {
            let server = tandem_std::TlsServerConfig::from_pem(&p.server_cert, &p.server_key)
                .and_then(|c| c.require_client_certs(&p.ca));
            let client =
                tandem_std::TlsClientConfig::new().trust_ca_pem(&p.ca).map(|c| c.without_system_roots());
            let (server, client) = match (server, client) {
                (Ok(s), Ok(c)) => (s, c),
                (Err(e), _) | (_, Err(e)) => {
                    return setup_failed(rt, transport, "TLS configurations", e.to_string())
                }
            };
            let mut d = opts.clone();
            d.tls = TlsSettings {
                ca: Some(p.ca.clone()),
                cert: Some(p.client_cert.clone()),
                key: Some(p.client_key.clone()),
            };
            let mut l = opts.clone();
            l.tls =
                TlsSettings { ca: None, cert: Some(p.server_cert.clone()), key: Some(p.server_key.clone()) };
            (Some(server), d, l, client)
        }
        _ => (None, opts.clone(), opts.clone(), tandem_std::TlsClientConfig::default()),
    };
    match Server::start_tls(rt, &temp_addr(transport, "srv"), true, false, server_tls) {
        Ok(server) => {
            results.extend(runner::run(&server.addr(), Role::RunnerDials, cases, &dial_opts));
            server.stop();
        }
        Err(e) => return setup_failed(rt, transport, "start the server", e),
    }
    let listen: Address = temp_addr(transport, "run").parse().expect("valid address");
    let selected: Vec<&Case> =
        cases.iter().filter(|c| c.role == Role::RunnerAccepts && opts.selects(c)).collect();
    if !selected.is_empty() {
        match Listener::bind_with(&listen, &listen_opts.tls) {
            Ok(l) => {
                let addr = l.local_addr().to_string();
                let dialer = Dialer::start_tls(rt, &addr, dialer_tls);
                results.extend(runner::run_target(&Target::Listen(Arc::new(l)), &selected, &listen_opts));
                dialer.stop();
            }
            Err(e) => eprintln!("cannot listen on {listen}: {e}"),
        }
    }
    Cell { runtime: rt, transport, results }
}

/// The §13 (session resumption) cases that `opts` selects, played over TCP against the
/// core-driven server of [`crate::core_server`] (the runtimes do not offer resumption yet).
pub struct CoreCell {
    /// The results (empty when `opts` selects no §13 case).
    pub results: Vec<CaseResult>,
}

/// Runs the "core" row of the self-test: every selected §13 case against the core server.
pub fn core_cell(cases: &[Case], opts: &Options) -> CoreCell {
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|c| (c.section == "13" || c.section.starts_with("13.")) && opts.selects(c))
        .collect();
    if selected.is_empty() {
        return CoreCell { results: Vec::new() };
    }
    match crate::core_server::CoreServer::start("127.0.0.1:0") {
        Ok(s) => {
            let addr: Address = s.address().parse().expect("valid address");
            CoreCell { results: runner::run_target(&Target::Dial(addr), &selected, opts) }
        }
        Err(e) => CoreCell {
            results: selected
                .iter()
                .map(|c| {
                    skipped(c, Outcome::Failed { expected: "the core server".into(), actual: e.to_string() })
                })
                .collect(),
        },
    }
}

/// Runs every cell of the runtime × transport matrix, in parallel.
pub fn self_test(cases: &[Case], opts: &Options) -> Vec<Cell> {
    let cases = Arc::new(cases.to_vec());
    let mut handles = Vec::new();
    for rt in [Runtime::Std, Runtime::Smol] {
        for t in TRANSPORTS {
            let (cases, opts) = (cases.clone(), opts.clone());
            handles.push(std::thread::spawn(move || run_cell(rt, t, &cases, &opts)));
        }
    }
    handles.into_iter().filter_map(|h| h.join().ok()).collect()
}

/// The matrix as text: one row per runtime, one column per transport, `passed/failed/skipped`.
pub fn matrix(cells: &[Cell]) -> String {
    let mut out = format!("{:<8}", "runtime");
    for t in TRANSPORTS {
        out.push_str(&format!("{t:>24}"));
    }
    out.push('\n');
    for rt in [Runtime::Std, Runtime::Smol] {
        out.push_str(&format!("{:<8}", rt.name()));
        for t in TRANSPORTS {
            let cell = cells.iter().find(|c| c.runtime == rt && c.transport == t);
            let s = match cell {
                Some(c) => {
                    let (p, f, s) = runner::counts(&c.results);
                    format!("{p}P {f}F {s}S")
                }
                None => "-".into(),
            };
            out.push_str(&format!("{s:>24}"));
        }
        out.push('\n');
    }
    out
}
