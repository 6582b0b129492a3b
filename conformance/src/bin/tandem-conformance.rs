//! The tandem conformance runner.
//!
//! ```text
//! tandem-conformance run --connect ADDR [options]   # the runner dials the implementation under test
//! tandem-conformance run --listen ADDR [options]    # the implementation dials the runner
//! tandem-conformance self-test [options]            # both runtimes of this repository, every transport
//! tandem-conformance serve --runtime std|smol ADDR             # expose the test service (Appendix A)
//! tandem-conformance serve --runtime std|smol --connect ADDR   # dial ADDR again and again, serving it
//! tandem-conformance list                           # every case with its requirement
//!
//! options: --case ID (repeatable)  --section N (repeatable)  --timeout SECS (per case, default 40)
//!          --json FILE  --junit FILE  --verbose (print the frames of passing cases too)
//!          --auth (run: the implementation serves the test service in authenticating mode,
//!          SPEC.md Appendix A.5, and only the authentication cases run; serve: serve it so)
//!          --tls-ca FILE  --tls-cert FILE  --tls-key FILE (PEM; for tls:// addresses, below)
//! ```
//!
//! ADDR is `tcp://HOST:PORT`, `tls://HOST:PORT`, `unix:///PATH`, `unix+seqpacket:///PATH` or
//! `udp://HOST:PORT`. Over `tls://` (TLS 1.3, ALPN `tandem/1`, SPEC.md §3.9): `run --connect`
//! needs `--tls-ca` (the CA of the implementation's certificate; the server name checked is
//! the address's host) and presents `--tls-cert`/`--tls-key` as its client certificate if
//! given; `run --listen` needs `--tls-cert`/`--tls-key` (the runner's server certificate) and,
//! with `--tls-ca`, accepts client certificates of that CA; `serve` needs
//! `--tls-cert`/`--tls-key` and, with `--tls-ca`, requires client certificates of that CA;
//! `serve --connect` trusts `--tls-ca` and presents `--tls-cert`/`--tls-key` if given. Over
//! `udp://` only the datagram-mode cases (§14 and §9.6) run; on every other transport they are
//! skipped. §13 cases are skipped when the implementation's HELLO carries no session token.
//! `serve --runtime core tcp://ADDR` serves the §13 subset of the test service from a server
//! driving `tandem_core::Connection` directly, with session resumption. The exit status is 0
//! when no case failed, 1 when one did, 2 on a usage error.

#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use tandem_conformance::cases;
use tandem_conformance::runner::{self, CaseResult, Options};
use tandem_conformance::selftest::{self, Runtime};
use tandem_conformance::suite::Role;
use tandem_conformance::tls::TlsSettings;
use tandem_core::addr::Address;

const USAGE: &str = "usage:
  tandem-conformance run (--connect ADDR | --listen ADDR) [--case ID]... [--section N]... [--timeout SECS] [--auth] [TLS] [--json FILE] [--junit FILE] [--verbose]
  tandem-conformance self-test [--case ID]... [--section N]... [--json FILE] [--junit FILE] [--verbose]
  tandem-conformance serve --runtime std|smol [--auth] [TLS] ADDR
  tandem-conformance serve --runtime core tcp://HOST:PORT     (session resumption, §13 subset of the service)
  tandem-conformance serve --runtime std|smol [TLS] --connect ADDR
  tandem-conformance list
ADDR: tcp://HOST:PORT, tls://HOST:PORT, unix:///PATH, unix+seqpacket:///PATH or udp://HOST:PORT
TLS (PEM files, for tls:// addresses): --tls-ca FILE  --tls-cert FILE --tls-key FILE
  run --connect tls://…: --tls-ca required (the CA of the implementation's certificate); --tls-cert/--tls-key: client certificate
  run --listen tls://…: --tls-cert/--tls-key required (the runner's server certificate); --tls-ca: accept client certificates of it
  serve tls://…: --tls-cert/--tls-key required; --tls-ca: require client certificates of it (mutual TLS)
  serve --connect tls://…: --tls-ca required; --tls-cert/--tls-key: client certificate";

struct Args {
    connect: Option<String>,
    listen: Option<String>,
    runtime: Option<String>,
    positional: Vec<String>,
    opts: Options,
    json: Option<String>,
    junit: Option<String>,
    verbose: bool,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        connect: None,
        listen: None,
        runtime: None,
        positional: Vec::new(),
        opts: Options::default(),
        json: None,
        junit: None,
        verbose: false,
        tls_ca: None,
        tls_cert: None,
        tls_key: None,
    };
    while let Some(x) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match x.as_str() {
            "--connect" => a.connect = Some(val("--connect")?),
            "--listen" => a.listen = Some(val("--listen")?),
            "--runtime" => a.runtime = Some(val("--runtime")?),
            "--case" => a.opts.cases.push(val("--case")?),
            "--section" => a.opts.sections.push(val("--section")?),
            "--timeout" => {
                let s: u64 = val("--timeout")?.parse().map_err(|_| "--timeout needs seconds".to_string())?;
                a.opts.timeout = Duration::from_secs(s);
            }
            "--json" => a.json = Some(val("--json")?),
            "--junit" => a.junit = Some(val("--junit")?),
            "--verbose" | "-v" => a.verbose = true,
            "--auth" => a.opts.auth = true,
            "--tls-ca" => a.tls_ca = Some(val("--tls-ca")?),
            "--tls-cert" => a.tls_cert = Some(val("--tls-cert")?),
            "--tls-key" => a.tls_key = Some(val("--tls-key")?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            _ => a.positional.push(x),
        }
    }
    a.opts.tls = TlsSettings::from_files(a.tls_ca.as_deref(), a.tls_cert.as_deref(), a.tls_key.as_deref())
        .map_err(|e| e.to_string())?;
    Ok(a)
}

/// The TLS configuration `serve` gives the runtime's server on a `tls://` address.
fn serve_tls(a: &Args, addr: &str) -> Result<Option<tandem_std::TlsServerConfig>, String> {
    if !addr.starts_with("tls://") {
        if a.opts.tls.is_set() {
            return Err(format!("--tls-ca/--tls-cert/--tls-key apply to tls:// addresses only, not {addr}"));
        }
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&a.opts.tls.cert, &a.opts.tls.key) else {
        return Err(format!(
            "serving {addr} needs the server's certificate: --tls-cert FILE --tls-key FILE (PEM)"
        ));
    };
    let mut tls = tandem_std::TlsServerConfig::from_pem(cert, key).map_err(|e| e.to_string())?;
    if let Some(ca) = &a.opts.tls.ca {
        tls = tls.require_client_certs(ca).map_err(|e| e.to_string())?;
    }
    Ok(Some(tls))
}

/// The TLS configuration `serve --connect` dials a `tls://` address with.
fn dial_tls(a: &Args, addr: &str) -> Result<tandem_std::TlsClientConfig, String> {
    let mut tls = tandem_std::TlsClientConfig::new();
    if !addr.starts_with("tls://") {
        return Ok(tls);
    }
    let Some(ca) = &a.opts.tls.ca else {
        return Err(format!("dialing {addr} needs --tls-ca FILE (the CA of the runner's certificate, PEM)"));
    };
    tls = tls.trust_ca_pem(ca).map_err(|e| e.to_string())?.without_system_roots();
    match (&a.opts.tls.cert, &a.opts.tls.key) {
        (Some(c), Some(k)) => tls = tls.client_cert_pem(c, k).map_err(|e| e.to_string())?,
        (None, None) => {}
        _ => return Err("--tls-cert and --tls-key go together".into()),
    }
    Ok(tls)
}

fn reports(a: &Args, results: &[CaseResult], name: &str) -> Result<(), String> {
    if let Some(f) = &a.json {
        let text = serde_json::to_string_pretty(&runner::json(results)).map_err(|e| e.to_string())?;
        std::fs::write(f, text + "\n").map_err(|e| format!("{f}: {e}"))?;
    }
    if let Some(f) = &a.junit {
        std::fs::write(f, runner::junit(results, name)).map_err(|e| format!("{f}: {e}"))?;
    }
    Ok(())
}

fn exit(results: &[CaseResult]) -> ExitCode {
    if runner::counts(results).1 == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().unwrap_or_default();
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let all = cases::all();
    match cmd.as_str() {
        "run" => {
            let (addr, role) = match (&a.connect, &a.listen) {
                (Some(c), None) => (c, Role::RunnerDials),
                (None, Some(l)) => (l, Role::RunnerAccepts),
                _ => {
                    eprintln!("run needs exactly one of --connect ADDR and --listen ADDR\n{USAGE}");
                    return ExitCode::from(2);
                }
            };
            let addr: Address = match addr.parse() {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            if a.opts.tls.is_set() && !matches!(addr, Address::Tls(_)) {
                eprintln!(
                    "--tls-ca/--tls-cert/--tls-key apply to tls:// addresses only, not {addr}\n{USAGE}"
                );
                return ExitCode::from(2);
            }
            if matches!(addr, Address::Tls(_)) {
                let usable = match role {
                    Role::RunnerDials => a.opts.tls.client(&addr).map(drop),
                    Role::RunnerAccepts => a.opts.tls.server().map(drop),
                };
                if let Err(e) = usable {
                    eprintln!("{e}\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
            if role == Role::RunnerAccepts {
                println!(
                    "listening on {addr}: the implementation must connect (and reconnect after every case)\n"
                );
            }
            let results = runner::run(&addr, role, &all, &a.opts);
            print!("{}", runner::text(&results, a.verbose));
            if let Err(e) = reports(&a, &results, &format!("tandem conformance {addr}")) {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
            exit(&results)
        }
        "self-test" => {
            let cells = selftest::self_test(&all, &a.opts);
            let mut everything = Vec::new();
            for c in &cells {
                println!("==== {} over {} ====", c.runtime.name(), c.transport);
                print!("{}", runner::text(&c.results, a.verbose));
                println!();
                for r in &c.results {
                    let mut r = r.clone();
                    r.id = format!("{}/{}/{}", c.runtime.name(), c.transport, r.id);
                    everything.push(r);
                }
            }
            let core = selftest::core_cell(&all, &a.opts);
            if !core.results.is_empty() {
                println!("==== core over tcp (§13 session resumption only) ====");
                print!("{}", runner::text(&core.results, a.verbose));
                println!();
                for r in &core.results {
                    let mut r = r.clone();
                    r.id = format!("core/tcp/{}", r.id);
                    everything.push(r);
                }
            }
            println!("passed / failed / skipped per runtime × transport:\n{}", selftest::matrix(&cells));
            let (p, f, s) = runner::counts(&core.results);
            println!("{:<8}{:>24}   (core server, §13 cases only)", "core", format!("{p}P {f}F {s}S"));
            let (p, f, s) = runner::counts(&everything);
            println!("{p} passed, {f} failed, {s} skipped");
            if let Err(e) = reports(&a, &everything, "tandem conformance self-test") {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
            exit(&everything)
        }
        "serve" if a.runtime.as_deref() == Some("core") => {
            let [addr] = a.positional.as_slice() else {
                eprintln!("serve --runtime core needs tcp://HOST:PORT\n{USAGE}");
                return ExitCode::from(2);
            };
            let Some(bind) = addr.strip_prefix("tcp://") else {
                eprintln!("the core server listens on tcp:// only\n{USAGE}");
                return ExitCode::from(2);
            };
            match tandem_conformance::core_server::CoreServer::start(bind) {
                Ok(s) => {
                    println!(
                        "serving the test service (core, with session resumption) on {}; Ctrl-C to stop",
                        s.address()
                    );
                    loop {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        "serve" => {
            let Some(rt) = a.runtime.as_deref().and_then(Runtime::parse) else {
                eprintln!("serve needs --runtime std|smol\n{USAGE}");
                return ExitCode::from(2);
            };
            if let Some(addr) = &a.connect {
                println!(
                    "serving the test service ({}) by dialing {addr} repeatedly; Ctrl-C to stop",
                    rt.name()
                );
                let tls = match dial_tls(&a, addr) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::from(2);
                    }
                };
                let stop = std::sync::atomic::AtomicBool::new(false);
                selftest::dial_loop_tls(rt, addr, tls, &stop);
                return ExitCode::SUCCESS;
            }
            let [addr] = a.positional.as_slice() else {
                eprintln!("serve needs ADDR\n{USAGE}");
                return ExitCode::from(2);
            };
            let tls = match serve_tls(&a, addr) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match selftest::Server::start_tls(rt, addr, true, a.opts.auth, tls) {
                Ok(s) => {
                    println!("serving the test service ({}) on {}; Ctrl-C to stop", rt.name(), s.addr());
                    loop {
                        std::thread::sleep(Duration::from_secs(3600));
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        "list" => {
            for c in all.iter().filter(|c| a.opts.selects(c)) {
                let role = match c.role {
                    Role::RunnerDials => "connect",
                    Role::RunnerAccepts => "listen",
                };
                let mut skip = c.skip.as_deref().map(|s| format!(" [skipped: {s}]")).unwrap_or_default();
                if c.udp_only() {
                    skip.push_str(" [udp:// only]");
                } else if c.section == "13" || c.section.starts_with("13.") {
                    skip.push_str(" [needs session resumption: a session token in the HELLO]");
                }
                println!("{:<10} {:<8} {}{skip}\n           \"{}\"", c.id, role, c.title, c.requirement);
            }
            let sel: Vec<_> = all.iter().filter(|c| a.opts.selects(c)).collect();
            let udp = sel.iter().filter(|c| c.udp_only()).count();
            println!(
                "{} cases ({} over byte streams and SEQPACKET, {udp} over udp:// only)",
                sel.len(),
                sel.len() - udp
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
