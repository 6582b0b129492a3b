//! `tandem`: a command-line tool that talks to any tandem server (SPEC.md): ping it, list and
//! describe what it serves (introspection, SPEC.md Appendix B), call its methods with JSON,
//! open streams, send notifications, and load it with `bench`. Every transport and security
//! option of the runtimes: `tcp://`, `unix://`, `unix+seqpacket://`, `udp://`, `tls://` with a
//! CA, a client certificate and an authentication token. See README.md for examples.
//!
//! Files: `main` (the command line), `fail` (exit codes, classified errors), `conn` (connecting),
//! `json` (JSON to and from values of a schema), `schema` (introspection: finding a method),
//! `commands` (ping, list, describe, call, notify, stream), `bench`.

#![deny(missing_docs)]

mod bench;
mod commands;
mod conn;
mod fail;
mod json;
mod schema;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str = "Talks to any tandem server: ping, list, describe, call, stream, notify, bench.";

const AFTER: &str = "\
Addresses: tcp://HOST:PORT (the default when no scheme is given), unix:///PATH,
unix+seqpacket:///PATH, udp://HOST:PORT (datagram mode: no streams), tls://HOST:PORT.
Methods are named service.method as introspection lists them (`tandem list ADDR`), or by
numbers module.method; with --raw, by numbers only and without introspection.";

/// The command line.
#[derive(Parser, Debug)]
#[command(name = "tandem", version, about = ABOUT, after_help = format!("{AFTER}\n\n{}", fail::EXIT_CODES))]
pub struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: Command,
}

/// How to connect: options every subcommand takes.
#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// Trust this CA certificate (PEM) for tls:// instead of the system's roots.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Present this client certificate chain (PEM) for mutual TLS (with --key).
    #[arg(long, global = true, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The authentication token sent in HELLO (SPEC.md §5.6); in clear unless over tls://.
    #[arg(long, global = true, value_name = "TOKEN")]
    pub auth: Option<String>,
    /// The name announced in HELLO.
    #[arg(long, global = true, value_name = "NAME", default_value = "tandem-cli")]
    pub name: String,
    /// Time allowed to connect, and for each call or notification (default 10s); a stream's
    /// whole life when given (streams have no deadline by default). E.g. 500ms, 2s, 1m.
    #[arg(long, global = true, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub timeout: Option<Duration>,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Connects, shows what the server announced (name, limits, features, identity) and
    /// measures round trips.
    Ping {
        /// The server's address.
        addr: String,
        /// How many round trips.
        #[arg(short = 'n', long, default_value_t = 4)]
        count: u32,
        /// Time between round trips.
        #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
        interval: Duration,
    },
    /// Lists the services and methods a server describes (introspection).
    List {
        /// The server's address.
        addr: String,
        /// Only this service (name or module number).
        service: Option<String>,
    },
    /// Shows a method's kind, ids, schema key, types and an example request.
    Describe {
        /// The server's address.
        addr: String,
        /// The method: service.method.
        method: String,
    },
    /// Calls a unary method with a JSON request and prints the answer as JSON.
    Call(CallArgs),
    /// Sends a notification (acknowledged; a signal method: best effort, unacknowledged).
    Notify(NotifyArgs),
    /// Opens a stream: prints the server's items as JSON lines; sends stdin's JSON lines as
    /// the upward items when the method takes them.
    Stream(CallArgs),
    /// Calls a unary method repeatedly with N calls in flight and reports latency percentiles,
    /// a histogram and calls per second.
    Bench(BenchArgs),
}

/// A method and its argument.
#[derive(Args, Debug, Clone)]
pub struct CallArgs {
    /// The server's address.
    pub addr: String,
    /// The method: service.method (or module.method numbers); with --raw, module.method.
    pub method: String,
    /// The request (stream: the initial value) as JSON; with --raw, as hex. Omitted: null
    /// (for methods taking `()`), or empty with --raw.
    #[arg(allow_hyphen_values = true)]
    pub arg: Option<String>,
    /// No introspection: the method is module.method, the request and the answer are hex
    /// bytes (stream items: hex lines).
    #[arg(long)]
    pub raw: bool,
    /// With --raw: send this schema key (16 hex digits) with the request (SPEC.md §7.10);
    /// without --raw, the described method's key is always sent.
    #[arg(long, value_name = "HEX", requires = "raw")]
    pub schema_key: Option<String>,
}

/// `tandem notify`.
#[derive(Args, Debug, Clone)]
pub struct NotifyArgs {
    /// The method and its argument.
    #[command(flatten)]
    pub call: CallArgs,
    /// Send a SIGNAL (unacknowledged, best effort) rather than a NOTIFY; implied by a method
    /// declared `signal`.
    #[arg(long)]
    pub signal: bool,
}

/// `tandem bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The method and its argument.
    #[command(flatten)]
    pub call: CallArgs,
    /// Calls in flight.
    #[arg(short = 'c', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// How long to run.
    #[arg(short = 'd', long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Stop after this many calls (whichever comes first with --duration).
    #[arg(short = 'n', long)]
    pub calls: Option<u64>,
    /// A progress line on stderr while it runs: when stderr is a terminal (auto), always or
    /// never.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,
}

/// When `bench` draws its progress line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// When stderr is a terminal.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

fn run(cli: Cli) -> fail::Outcome {
    let c = &cli.conn;
    match cli.command {
        Command::Ping { addr, count, interval } => commands::ping(c, &addr, count, interval),
        Command::List { addr, service } => commands::list(c, &addr, service.as_deref()),
        Command::Describe { addr, method } => commands::describe(c, &addr, &method),
        Command::Call(a) => commands::call(c, &a),
        Command::Notify(a) => commands::notify(c, &a.call, a.signal),
        Command::Stream(a) => commands::stream(c, &a),
        Command::Bench(a) => bench::run(c, &a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Schemas come from the server: a hostile one can nest them deeply, and decoding and
    // walking them recurses. A large stack (reserved, not committed) keeps that from
    // overflowing within the client's message size limit.
    let worker =
        std::thread::Builder::new().name("tandem".into()).stack_size(256 << 20).spawn(move || run(cli));
    let result = match worker.map(|h| h.join()) {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => {
            Err(fail::Failure::new(fail::Code::Remote, "internal error (a panic; please report it)"))
        }
        Err(e) => Err(fail::Failure::usage(format!("cannot start a thread: {e}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("tandem: {f}");
            ExitCode::from(f.code as u8)
        }
    }
}
