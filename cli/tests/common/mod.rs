//! The CLI's end-to-end harness: servers of both runtimes started in-process on any transport
//! (the robot arm of `tandem_testkit::arm`, declared with introspection; the conformance
//! crate's standard test service, raw and without introspection), and the built `tandem`
//! binary run against them.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_std::{AuthRefusal, AuthRequest, Authenticator, HandlerError, PeerIdentity, Status};
use tandem_testkit::arm::{arm, ArmError, Move};
use tandem_testkit::pki::Ca;

/// Generous bound for anything a test waits for.
pub const T: Duration = Duration::from_secs(10);

/// Which runtime serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rt {
    /// tandem-std.
    Std,
    /// tandem-smol.
    Smol,
}

/// Both runtimes.
pub const RUNTIMES: [Rt; 2] = [Rt::Std, Rt::Smol];

/// The transports the CLI is tested over.
pub const TRANSPORTS: [&str; 5] = ["tcp", "unix", "seqpacket", "udp", "tls"];

/// The arm's handlers, the same on both runtimes: log lines and beeps go to `events`.
mod arm_std {
    use super::*;
    use tandem_std::{Blocking, Ctx, StreamReceiver, StreamSender};

    pub struct Arm(pub Mutex<Sender<String>>);

    impl arm::BlockingServer<Blocking> for Arm {
        fn double(&self, _: Ctx, x: i64) -> Result<i64, HandlerError> {
            x.checked_mul(2)
                .ok_or_else(|| HandlerError::new(Status::OUT_OF_RANGE, format!("{x} × 2 overflows")))
        }
        fn go(&self, _: Ctx, m: Move) -> Result<Move, HandlerError<ArmError>> {
            super::go(m)
        }
        fn log(&self, _: Ctx, line: String) -> Result<(), HandlerError> {
            let _ = self.0.lock().unwrap().send(format!("log {line}"));
            Ok(())
        }
        fn beep(&self, _: Ctx, tone: u8) -> Result<(), HandlerError> {
            let _ = self.0.lock().unwrap().send(format!("beep {tone}"));
            Ok(())
        }
        fn count(&self, _: Ctx, n: u32, mut items: StreamSender<u32>) -> Result<(), HandlerError> {
            for i in 0..n {
                items.send(&i)?;
            }
            Ok(())
        }
        fn sum(&self, _: Ctx, start: u64, items: StreamReceiver<u64>) -> Result<u64, HandlerError> {
            let mut total = start;
            for x in items {
                total += x?;
            }
            Ok(total)
        }
        fn shout(
            &self,
            _: Ctx,
            _: (),
            lines: StreamReceiver<String>,
            mut out: StreamSender<String>,
        ) -> Result<(), HandlerError> {
            for l in lines {
                out.send(&l?.to_uppercase())?;
            }
            Ok(())
        }
    }
}

mod arm_smol {
    use super::*;
    use tandem_smol::{Async, Ctx, StreamReceiver, StreamSender};

    pub struct Arm(pub Mutex<Sender<String>>);

    impl arm::Server<Async> for Arm {
        async fn double(&self, _: Ctx, x: i64) -> Result<i64, HandlerError> {
            x.checked_mul(2)
                .ok_or_else(|| HandlerError::new(Status::OUT_OF_RANGE, format!("{x} × 2 overflows")))
        }
        async fn go(&self, _: Ctx, m: Move) -> Result<Move, HandlerError<ArmError>> {
            super::go(m)
        }
        async fn log(&self, _: Ctx, line: String) -> Result<(), HandlerError> {
            let _ = self.0.lock().unwrap().send(format!("log {line}"));
            Ok(())
        }
        async fn beep(&self, _: Ctx, tone: u8) -> Result<(), HandlerError> {
            let _ = self.0.lock().unwrap().send(format!("beep {tone}"));
            Ok(())
        }
        async fn count(&self, _: Ctx, n: u32, mut items: StreamSender<u32>) -> Result<(), HandlerError> {
            for i in 0..n {
                items.send(&i).await?;
            }
            Ok(())
        }
        async fn sum(&self, _: Ctx, start: u64, mut items: StreamReceiver<u64>) -> Result<u64, HandlerError> {
            let mut total = start;
            while let Some(x) = items.recv().await? {
                total += x;
            }
            Ok(total)
        }
        async fn shout(
            &self,
            _: Ctx,
            _: (),
            mut lines: StreamReceiver<String>,
            mut out: StreamSender<String>,
        ) -> Result<(), HandlerError> {
            while let Some(l) = lines.recv().await? {
                out.send(&l.to_uppercase()).await?;
            }
            Ok(())
        }
    }
}

fn go(m: Move) -> Result<Move, HandlerError<ArmError>> {
    match m.x {
        x if x > 100 => Err(HandlerError::App(ArmError::Blocked { at: 100 })),
        x if x < 0 => Err(HandlerError::new(Status::INVALID_ARGUMENT, "negative x")),
        _ => Ok(Move { x: m.x + 1, y: m.y }),
    }
}

/// What a server serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The robot arm, with introspection.
    Arm,
    /// The conformance test service (SPEC.md Appendix A): raw methods on module 100, no
    /// introspection.
    Conformance,
}

/// Server options beyond the transport.
#[derive(Clone, Default)]
pub struct Opts {
    /// Accept only HELLOs whose `auth` is this token.
    pub token: Option<&'static str>,
    /// TLS: require a client certificate from this CA, known by its DER.
    pub client_ca: Option<(String, Vec<u8>)>,
}

/// A running server and what a client needs to reach it.
pub struct Served {
    /// The address to give the CLI.
    pub addr: String,
    /// Options to give the CLI before the subcommand (`--ca FILE` over TLS).
    pub conn: Vec<String>,
    /// The arm's log lines and beeps.
    pub events: Receiver<String>,
    /// Files of this server (sockets, certificates).
    pub dir: tempfile::TempDir,
    /// The TLS CA, when over TLS.
    pub ca: Option<Arc<Ca>>,
    server: Option<Server>,
}

enum Server {
    Std(tandem_std::Server),
    Smol(tandem_smol::Server),
}

impl Served {
    /// Stops the server at once: its connections end.
    pub fn kill(&mut self) {
        self.server = None;
    }

    /// Waits (up to 60 s, for loaded machines) until the server has at least one connection
    /// past its handshake.
    pub fn wait_for_connection(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let connections = match &self.server {
                Some(Server::Std(s)) => s.stats().connections,
                Some(Server::Smol(s)) => s.stats().connections,
                None => panic!("the server was killed"),
            };
            if connections > 0 {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "no connection reached the server in 60 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// A path in this server's directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn token_authenticator(token: &'static str) -> Arc<dyn Authenticator> {
    Arc::new(move |r: &AuthRequest<'_>| {
        if r.auth == token.as_bytes() {
            Ok(PeerIdentity::new("operator"))
        } else {
            Err(AuthRefusal::unauthenticated("wrong token for this server"))
        }
    })
}

fn cert_authenticator(der: Vec<u8>) -> Arc<dyn Authenticator> {
    Arc::new(move |r: &AuthRequest<'_>| match r.peer_certificates.first() {
        Some(c) if *c == der => Ok(PeerIdentity::new("operator")),
        Some(_) => Err(AuthRefusal::permission_denied("unknown certificate")),
        None => Err(AuthRefusal::unauthenticated("a client certificate is required")),
    })
}

/// Starts `service` on runtime `rt` over `transport` (`tcp`, `unix`, `seqpacket`, `udp` or `tls`).
pub fn serve(rt: Rt, service: Service, transport: &str, opts: Opts) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let bind = match transport {
        "tcp" => "tcp://127.0.0.1:0".to_string(),
        "unix" => format!("unix://{}", dir.path().join("s.sock").display()),
        "seqpacket" => format!("unix+seqpacket://{}", dir.path().join("p.sock").display()),
        "udp" => "udp://127.0.0.1:0".to_string(),
        "tls" => "tls://127.0.0.1:0".to_string(),
        other => panic!("unknown transport {other}"),
    };
    let mut conn = Vec::new();
    let (mut tls, mut ca) = (None, None);
    if transport == "tls" {
        let authority = Arc::new(Ca::new("cli test CA"));
        let leaf = authority.server(&["localhost"]);
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &authority.pem).unwrap();
        conn = vec!["--ca".to_string(), ca_file.display().to_string()];
        let mut config =
            tandem_std::TlsServerConfig::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
        if let Some((client_ca, _)) = &opts.client_ca {
            config = config.require_client_certs(client_ca.as_bytes()).unwrap();
        }
        tls = Some(config);
        ca = Some(authority);
    }
    let authenticator = match (&opts.token, &opts.client_ca) {
        (Some(t), _) => Some(token_authenticator(t)),
        (None, Some((_, der))) => Some(cert_authenticator(der.clone())),
        _ => None,
    };
    let (events, events_rx) = channel();
    let state = tandem_conformance::service::State::default();
    let server = match rt {
        Rt::Std => {
            let mut config = tandem_std::ServerConfig::new("arm");
            let handlers = match service {
                Service::Arm => {
                    tandem_std::Handlers::new().serve(arm::Serve(arm_std::Arm(Mutex::new(events))))
                }
                Service::Conformance => {
                    config.name = "conformance".into();
                    config.connection = tandem_conformance::service::config_for(&bind);
                    tandem_conformance::service::std_service(&state).introspection(false)
                }
            };
            (config.tls, config.authenticator) = (tls, authenticator);
            Server::Std(tandem_std::Server::bind(&bind, config, handlers).unwrap())
        }
        Rt::Smol => {
            let mut config = tandem_smol::ServerConfig::new("arm");
            let handlers = match service {
                Service::Arm => {
                    tandem_smol::Handlers::new().serve(arm::Serve(arm_smol::Arm(Mutex::new(events))))
                }
                Service::Conformance => {
                    config.name = "conformance".into();
                    config.connection = tandem_conformance::service::config_for(&bind);
                    tandem_conformance::service::smol_service(&state).introspection(false)
                }
            };
            (config.tls, config.authenticator) = (tls, authenticator);
            Server::Smol(tandem_smol::Server::bind(&bind, config, handlers).unwrap())
        }
    };
    let local = match &server {
        Server::Std(s) => s.local_addr().to_string(),
        Server::Smol(s) => s.local_addr().to_string(),
    };
    // Over TLS the certificate names `localhost`.
    let addr = if transport == "tls" { local.replace("127.0.0.1", "localhost") } else { local };
    Served { addr, conn, events: events_rx, dir, ca, server: Some(server) }
}

/// What a run of the CLI did.
#[derive(Debug)]
pub struct Run {
    /// Its exit status.
    pub code: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{self:#?}");
        &self.stdout
    }

    /// Asserts the exit code `code` and a one-line error that contains each of `parts`.
    pub fn fails(&self, code: i32, parts: &[&str]) {
        assert_eq!(self.code, code, "{self:#?}");
        assert_eq!(self.stderr.lines().count(), 1, "one line: {self:#?}");
        assert!(self.stderr.starts_with("tandem: "), "{self:#?}");
        for p in parts {
            assert!(self.stderr.contains(p), "expected {p:?} in: {self:#?}");
        }
    }
}

/// Runs the CLI with `args`, `stdin` as its standard input.
pub fn tandem_in(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tandem");
    let mut input = child.stdin.take().unwrap();
    let text = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the CLI with `args` and an empty standard input.
pub fn tandem(args: &[&str]) -> Run {
    tandem_in(args, "")
}

/// Runs `tandem <served.conn…> <args…>`: `args[0]` is the subcommand, then `ADDR` is inserted.
pub fn at(s: &Served, command: &str, rest: &[&str]) -> Run {
    at_in(s, command, rest, "")
}

/// [`at`] with a standard input.
pub fn at_in(s: &Served, command: &str, rest: &[&str], stdin: &str) -> Run {
    let mut args: Vec<&str> = s.conn.iter().map(String::as_str).collect();
    args.push(command);
    args.push(&s.addr);
    args.extend_from_slice(rest);
    tandem_in(&args, stdin)
}
