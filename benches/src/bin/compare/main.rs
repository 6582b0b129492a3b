//! End-to-end comparison of tandem against a raw-socket floor and peer RPC libraries, on
//! loopback, in one invocation.
//!
//! ```text
//! cargo run --release -p tandem-benches --bin compare -- [--quick] [--json out.json] [--markdown FILE]
//! cargo run --release -p tandem-benches --features peers --bin compare -- --json out.json --markdown BENCHMARKS.md --firmware
//! cargo run --release -p tandem-benches --bin compare -- --from-json out.json --markdown BENCHMARKS.md
//! # the firmware sizes alone, measured again into an existing JSON
//! cargo run --release -p tandem-benches --bin compare -- --from-json out.json --firmware --json out.json --markdown BENCHMARKS.md
//! ```
//!
//! **Layout.** The parent process only orchestrates. Every measurement runs in a child process
//! (this binary re-executed with `--child ROW MODE KIND`), one row at a time, and every child
//! has the same layout: client and server in the same process, the server on its own thread
//! (raw, tandem-std's I/O threads, tokio runtime for the peers) or executor (smol's global
//! executor), one connection. Rows run round-robin, `--rounds` times, alternating the unpinned
//! and the pinned mode (the child re-executed under `taskset -c 0`, so the whole process and all
//! its threads share CPU 0), so that machine drift hits every row alike; the figures reported are
//! the medians over rounds. Each child also measures the raw-socket floor of its own transport
//! (ping-pong RTT, pipelined calls/s, bulk GB/s) right before its row, so the ratio to the floor
//! is taken within one process and cancels drift.
//!
//! **Figures.** Sequential unary round trip of a 32-byte echo (p50/p99/p99.9); pipelined calls per
//! second with 1, 16, 64 and 256 calls in flight; stream throughput with 64 KiB items; the CPU
//! time (user + system, every thread of the process: `getrusage(RUSAGE_SELF)`) per sequential
//! call, per call at 64 in flight and per GB streamed, so that no latency is bought with
//! busy-waiting unseen; heap
//! allocations per call in steady state (a counting global allocator, all threads); resident
//! memory per idle connection (RSS delta from `/proc/self/statm` over 1,000 and 10,000
//! connections, both ends in the process, so the figure covers one client end and one server end);
//! many connections (1,000 connections, one call in flight on each: calls/s, p50/p99, CPU per
//! call; `--no-many` skips it).
//!
//! The peer libraries (tarpc on tokio with its bincode serde transport, tonic gRPC with hand-written
//! prost messages and service) are compiled only with the `peers` cargo feature.
//!
//! **TLS rows** (`tls`): tandem-std, tandem-smol and tonic over TLS 1.3 on loopback TCP, the
//! server authenticated by a certificate made at start-up (rcgen; ECDSA P-256), rustls with the
//! ring provider on every side. Their floor is raw TCP without encryption, so the ratio shows
//! what TLS and the library cost together; the goals table does not judge them.

use serde_json::{json, Map, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod children;
#[cfg(feature = "peers")]
mod peers;
mod raw;
mod tandem_rows;
mod tls;

use children::{child_idle, child_many, child_profile, child_profile_many, remove_socket_files};
use raw::{RawIdle, RawRow};

// ------------------------------------------------------------------ counting allocator

/// Forwards to [`System`], counting allocations (all threads) while [`COUNT`] is on.
struct Counting;

static COUNT: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Whether [`LIVE`] is kept (idle runs only): bytes allocated minus bytes freed.
static TRACK: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

fn track(delta: i64) {
    if TRACK.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System` (a correct `GlobalAlloc`)
// and returns its result unchanged; the only addition is a relaxed load and increment of two
// atomics, which neither allocate nor panic.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNT.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        track(layout.size() as i64);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if COUNT.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        track(layout.size() as i64);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as i64));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNT.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        track(new_size as i64 - layout.size() as i64);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations (including reallocations, all threads) made while `f` runs.
fn count_allocs(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.load(Ordering::SeqCst);
    COUNT.store(true, Ordering::SeqCst);
    f();
    COUNT.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst) - before
}

// ------------------------------------------------------------------ shared definitions

/// Size of a unary request and of its reply.
pub const MSG: usize = 32;
/// Size of one stream item and of one raw bulk write.
pub const ITEM: usize = 64 * 1024;
/// The in-flight depths of the pipelined figure.
pub const DEPTHS: [usize; 4] = [1, 16, 64, 256];

/// Loopback transport of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP over 127.0.0.1 with `TCP_NODELAY`.
    Tcp,
    /// Unix stream socket.
    Unix,
    /// TLS 1.3 (rustls, ring, server-authenticated with a certificate made at start-up) over TCP
    /// with `TCP_NODELAY`. Its floor is raw TCP (no encryption), so that the ratio shows what
    /// TLS and the library cost together over the bare wire.
    Tls,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Unix => "unix",
            Transport::Tls => "tls",
        }
    }
}

/// A fresh Unix socket path for this process.
pub fn unix_path(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("tandem-compare-{}-{tag}-{n}.sock", std::process::id()))
}

/// Sizes of one child's run.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Sequential round trips timed for the RTT percentiles.
    pub rtt_samples: usize,
    /// Sequential calls over which allocations are counted.
    pub alloc_calls: usize,
    /// How long each pipelined depth runs.
    pub pipe_time: Duration,
    /// Stream items (64 KiB) per stream measurement.
    pub stream_items: usize,
}

impl Sizes {
    fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                rtt_samples: 3_000,
                alloc_calls: 500,
                pipe_time: Duration::from_millis(150),
                stream_items: 1_024,
            }
        } else {
            Sizes {
                rtt_samples: 20_000,
                alloc_calls: 2_000,
                pipe_time: Duration::from_millis(600),
                stream_items: 8_192,
            }
        }
    }
}

/// What every row implements: one connection, set up, to an echo server (and a sink for
/// streams).
pub trait Row {
    /// One sequential 32-byte echo call.
    fn call(&mut self);
    /// Runs `depth` calls in flight for `time`; returns the number of calls completed and the
    /// time it took.
    fn pipelined(&mut self, depth: usize, time: Duration) -> (u64, Duration);
    /// Sends `items` items of 64 KiB to the server, which consumes them; returns the time until
    /// the server confirmed the end. `None` when the library has no streams.
    fn stream(&mut self, items: usize) -> Option<Duration>;
}

/// Many connections to one server, one call in flight on each.
pub trait Many {
    /// Opens `n` connections.
    fn open(&mut self, n: usize);
    /// Keeps one sequential 32-byte echo call in flight on every connection for `time`;
    /// returns the latency of every call completed.
    fn run(&mut self, time: Duration) -> Vec<Duration>;
}

/// Connections of the many-connections figure.
pub const MANY: usize = 1_000;

/// Resident idle connections of one row, opened on demand.
pub trait Idle {
    /// Opens `n` more connections and waits until both ends are set up.
    fn open(&mut self, n: usize);
}

// ------------------------------------------------------------------ the rows

/// Every row: library and transport.
fn all_rows() -> Vec<(&'static str, Transport)> {
    let mut rows = Vec::new();
    for lib in ["raw", "tandem-std", "tandem-smol"] {
        rows.push((lib, Transport::Tcp));
        rows.push((lib, Transport::Unix));
    }
    if cfg!(feature = "peers") {
        for lib in ["tarpc", "tonic"] {
            rows.push((lib, Transport::Tcp));
            rows.push((lib, Transport::Unix));
        }
    }
    // TLS rows (tarpc has no TLS transport of its own; raw TLS is not a floor: see `Tls`).
    for lib in ["tandem-std", "tandem-smol"] {
        rows.push((lib, Transport::Tls));
    }
    if cfg!(feature = "peers") {
        rows.push(("tonic", Transport::Tls));
    }
    rows
}

fn make_row(lib: &str, t: Transport) -> Box<dyn Row> {
    match lib {
        "raw" => Box::new(RawRow::new(t)),
        "tandem-std" => Box::new(tandem_rows::StdRow::new(t)),
        "tandem-smol" => Box::new(tandem_rows::SmolRow::new(t)),
        #[cfg(feature = "peers")]
        "tarpc" => Box::new(peers::TarpcRow::new(t)),
        #[cfg(feature = "peers")]
        "tonic" => Box::new(peers::TonicRow::new(t)),
        other => panic!("unknown row {other} (peers need `--features peers`)"),
    }
}

fn make_idle(lib: &str, t: Transport) -> Box<dyn Idle> {
    match lib {
        "raw" => Box::new(RawIdle::new(t)),
        "tandem-std" => Box::new(tandem_rows::StdIdle::new(t)),
        "tandem-smol" => Box::new(tandem_rows::SmolIdle::new(t)),
        #[cfg(feature = "peers")]
        "tarpc" => Box::new(peers::TarpcIdle::new(t)),
        #[cfg(feature = "peers")]
        "tonic" => Box::new(peers::TonicIdle::new(t)),
        other => panic!("unknown row {other} (peers need `--features peers`)"),
    }
}

fn make_many(lib: &str, t: Transport) -> Box<dyn Many> {
    match lib {
        "tandem-std" => Box::new(tandem_rows::StdMany::new(t)),
        "tandem-smol" => Box::new(tandem_rows::SmolMany::new(t)),
        #[cfg(feature = "peers")]
        "tarpc" => Box::new(peers::TarpcMany::new(t)),
        #[cfg(feature = "peers")]
        "tonic" => Box::new(peers::TonicMany::new(t)),
        other => panic!("no many-connections row for {other} (peers need `--features peers`)"),
    }
}

/// Whether a row has the many-connections figure (the RPC libraries on TCP and Unix).
fn has_many(lib: &str, t: Transport) -> bool {
    lib != "raw" && t != Transport::Tls
}

/// Connection counts of the idle figure.
fn idle_counts(_lib: &str) -> &'static [usize] {
    &[1_000, 10_000]
}

// ------------------------------------------------------------------ measurements (child)

fn percentiles(mut v: Vec<Duration>) -> Value {
    v.sort();
    let at = |q: f64| {
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1e6
    };
    json!({ "p50_us": at(0.50), "p99_us": at(0.99), "p999_us": at(0.999) })
}

/// User plus system CPU time of the whole process so far (every thread: client, server, I/O
/// threads, executors), from `getrusage(RUSAGE_SELF)`.
fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let d = |t: nix::sys::time::TimeVal| {
        Duration::new(t.tv_sec().max(0) as u64, (t.tv_usec().max(0) as u32).min(999_999) * 1_000)
    };
    d(u.user_time()) + d(u.system_time())
}

fn rtt(row: &mut dyn Row, samples: usize) -> Value {
    for _ in 0..samples / 10 + 100 {
        row.call();
    }
    let mut v = Vec::with_capacity(samples);
    let cpu = cpu_time();
    for _ in 0..samples {
        let t = Instant::now();
        row.call();
        v.push(t.elapsed());
    }
    let cpu = cpu_time().saturating_sub(cpu);
    let mut p = percentiles(v);
    p["cpu_us_per_call"] = json!(cpu.as_secs_f64() * 1e6 / samples as f64);
    p
}

/// Calls per second at each depth of [`DEPTHS`], and (`cpu_us_64`) the process's CPU time per
/// call at depth 64.
fn pipelined(row: &mut dyn Row, time: Duration) -> Value {
    let mut m = Map::new();
    for d in DEPTHS {
        row.pipelined(d, time / 4); // warm-up
        let cpu = cpu_time();
        let (n, t) = row.pipelined(d, time);
        let cpu = cpu_time().saturating_sub(cpu);
        m.insert(d.to_string(), json!(n as f64 / t.as_secs_f64()));
        if d == 64 && n > 0 {
            m.insert("cpu_us_64".into(), json!(cpu.as_secs_f64() * 1e6 / n as f64));
        }
    }
    Value::Object(m)
}

fn gbps(items: usize, t: Duration) -> f64 {
    (items * ITEM) as f64 / t.as_secs_f64() / 1e9
}

/// Stream throughput in GB/s and (`cpu_s_per_gb`) the process's CPU seconds per GB moved.
fn stream(row: &mut dyn Row, items: usize) -> (Value, Value) {
    if row.stream(items / 8).is_none() {
        return (Value::Null, Value::Null);
    }
    let cpu = cpu_time();
    match row.stream(items) {
        Some(t) => {
            let cpu = cpu_time().saturating_sub(cpu);
            let gb = (items * ITEM) as f64 / 1e9;
            (json!(gbps(items, t)), json!(cpu.as_secs_f64() / gb))
        }
        None => (Value::Null, Value::Null),
    }
}

/// One child's perf run: the raw floor of the transport, then the row.
fn child_perf(lib: &str, t: Transport, sizes: Sizes) -> Value {
    let mut floor = RawRow::new(t);
    let floor_rtt = rtt(&mut floor, sizes.rtt_samples);
    let floor_pipe = pipelined(&mut floor, sizes.pipe_time);
    let (floor_stream, floor_stream_cpu) = stream(&mut floor, sizes.stream_items);
    drop(floor);

    let mut row = make_row(lib, t);
    let row_rtt = rtt(row.as_mut(), sizes.rtt_samples);
    let calls = sizes.alloc_calls;
    let allocs = count_allocs(|| {
        for _ in 0..calls {
            row.call();
        }
    });
    let row_pipe = pipelined(row.as_mut(), sizes.pipe_time);
    let (row_stream, row_stream_cpu) = stream(row.as_mut(), sizes.stream_items);
    // Ratios to the floor measured in this same process, taken here so that the median over
    // rounds is a median of in-run ratios (drift between children cancels).
    let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => Value::Null,
    };
    let ratios = json!({
        "rtt_p50": r(row_rtt["p50_us"].as_f64(), floor_rtt["p50_us"].as_f64()),
        "rtt_p99": r(row_rtt["p99_us"].as_f64(), floor_rtt["p99_us"].as_f64()),
        "pipelined_64": r(row_pipe["64"].as_f64(), floor_pipe["64"].as_f64()),
        "stream": r(row_stream.as_f64(), floor_stream.as_f64()),
    });
    json!({
        "floor_ratio": ratios,
        "floor": {
            "rtt": floor_rtt, "pipelined": floor_pipe, "stream_gbps": floor_stream,
            "stream_cpu_s_per_gb": floor_stream_cpu,
        },
        "rtt": row_rtt,
        "allocs_per_call": allocs as f64 / calls as f64,
        "pipelined": row_pipe,
        "stream_gbps": row_stream,
        "stream_cpu_s_per_gb": row_stream_cpu,
    })
}

// ------------------------------------------------------------------ orchestration (parent)

struct Args {
    quick: bool,
    rounds: usize,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
    from_json: Option<PathBuf>,
    firmware: bool,
    only: Option<String>,
    no_pin: bool,
    no_idle: bool,
    no_many: bool,
}

fn usage() -> ! {
    print_usage();
    std::process::exit(2)
}

fn print_usage() {
    eprintln!(
        "usage: compare [--quick] [--rounds N] [--json FILE] [--markdown FILE] [--from-json FILE]\n\
         \x20              [--firmware] [--only SUBSTRING] [--no-pin] [--no-idle] [--no-many]\n\
         \n\
         --only SUBSTRING  only the rows whose `lib/transport` contains it, e.g. `--only tandem-std`\n\
         \x20                 (both transports of tandem-std) or `--only tandem-std/tcp`\n\
         --no-pin          only unpinned runs (by default every row also runs under `taskset -c 0`)\n\
         --no-idle         skip the idle-connection memory figure\n\
         --no-many         skip the many-connections figure (1,000 connections, a call in flight on each)\n\
         --quick           fewer samples, one round\n\
         --firmware        also measure the firmware images (benches/firmware-size, every core configuration);\n\
         \x20                 with --from-json FILE only they are measured again, replacing FILE's firmware figures\n\
         \n\
         (see BENCHMARKS.md and the module documentation of benches/src/bin/compare/main.rs)"
    );
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Args {
    let mut a = Args {
        quick: false,
        rounds: 0,
        json: None,
        markdown: None,
        from_json: None,
        firmware: false,
        only: None,
        no_pin: false,
        no_idle: false,
        no_many: false,
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--quick" => a.quick = true,
            "--rounds" => a.rounds = it.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| usage()),
            "--json" => a.json = Some(it.next().unwrap_or_else(|| usage()).into()),
            "--markdown" => a.markdown = Some(it.next().unwrap_or_else(|| usage()).into()),
            "--from-json" => a.from_json = Some(it.next().unwrap_or_else(|| usage()).into()),
            "--firmware" => a.firmware = true,
            "--only" => a.only = Some(it.next().unwrap_or_else(|| usage())),
            "--no-pin" => a.no_pin = true,
            "--no-idle" => a.no_idle = true,
            "--no-many" => a.no_many = true,
            "--help" | "-h" => {
                print_usage();
                std::process::exit(0)
            }
            _ => usage(),
        }
    }
    if a.rounds == 0 {
        a.rounds = if a.quick { 1 } else { 3 };
    }
    a
}

fn transport_of(s: &str) -> Transport {
    match s {
        "tcp" => Transport::Tcp,
        "unix" => Transport::Unix,
        "tls" => Transport::Tls,
        _ => usage(),
    }
}

/// Runs one child; returns its JSON line.
fn run_child(lib: &str, t: Transport, pinned: bool, kind: &str, quick: bool) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(["--child", lib, t.name(), kind]);
    if quick {
        cmd.arg("--quick");
    }
    let out = cmd.output().map_err(|e| format!("spawn: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{}: {}", out.status, err.lines().last().unwrap_or("")));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or("no output")?;
    serde_json::from_str(line).map_err(|e| format!("bad child output: {e}"))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Median over rounds of every numeric leaf (same shape in every round); strings are kept.
fn merge(runs: &[Value]) -> Value {
    match runs.first() {
        None => Value::Null,
        Some(Value::Object(first)) => {
            let mut m = Map::new();
            for k in first.keys() {
                let sub: Vec<Value> = runs.iter().filter_map(|r| r.get(k).cloned()).collect();
                m.insert(k.clone(), merge(&sub));
            }
            Value::Object(m)
        }
        Some(Value::Number(_)) => {
            median(runs.iter().filter_map(Value::as_f64).collect()).map_or(Value::Null, |x| json!(x))
        }
        Some(other) => other.clone(),
    }
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0);
    let virt = Command::new("systemd-detect-virt")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty());
    json!({
        "cpu": cpu, "cpus": cpus, "mem_gib": mem as f64 / 1048576.0, "kernel": kernel, "rustc": rustc,
        "virt": virt, "commit": commit,
    })
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some("--child") {
        let lib = argv.get(1).cloned().unwrap_or_else(|| usage());
        let t = transport_of(argv.get(2).map_or("", String::as_str));
        let kind = argv.get(3).cloned().unwrap_or_else(|| usage());
        let sizes = Sizes::new(argv.iter().any(|a| a == "--quick"));
        let v = match kind.as_str() {
            "perf" => child_perf(&lib, t, sizes),
            "idle" => child_idle(&lib, t),
            "many" => child_many(&lib, t, sizes.rtt_samples < 20_000),
            "profile-many" => child_profile_many(&lib, t),
            k if k.starts_with("profile-") => child_profile(&lib, t, k),
            _ => usage(),
        };
        println!("{v}");
        remove_socket_files();
        // Servers and runtimes are not shut down: the process ends here.
        std::process::exit(0);
    }
    let args = parse_args(argv.into_iter());
    let mut result: Value = if let Some(p) = &args.from_json {
        serde_json::from_str(&std::fs::read_to_string(p).expect("read json")).expect("parse json")
    } else {
        measure(&args)
    };
    if args.from_json.is_some() && args.firmware {
        // Only the firmware sizes are measured again (firmware.rs).
        result["firmware"] = firmware::measure();
    }
    print!("{}", report::text(&result));
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&result).expect("json")).expect("write json");
        eprintln!("wrote {}", p.display());
    }
    if let Some(p) = &args.markdown {
        report::write_markdown(p, &result);
        eprintln!("wrote the generated section of {}", p.display());
    }
}

fn measure(args: &Args) -> Value {
    let rows: Vec<_> = all_rows()
        .into_iter()
        .filter(|(lib, t)| {
            args.only.as_ref().map_or(true, |o| format!("{lib}/{}", t.name()).contains(o.as_str()))
        })
        .collect();
    let modes: &[bool] = if args.no_pin { &[false] } else { &[false, true] };
    let mode_name = |p: bool| if p { "pinned" } else { "unpinned" };
    let mut perf: Vec<Vec<Vec<Value>>> = vec![vec![Vec::new(); modes.len()]; rows.len()];
    let mut errors = Vec::new();
    let started = Instant::now();
    for round in 0..args.rounds {
        for (i, (lib, t)) in rows.iter().enumerate() {
            for (j, &pinned) in modes.iter().enumerate() {
                eprint!(
                    "[{:>5.0}s] round {}/{} {lib}/{} {} … ",
                    started.elapsed().as_secs_f64(),
                    round + 1,
                    args.rounds,
                    t.name(),
                    mode_name(pinned)
                );
                match run_child(lib, *t, pinned, "perf", args.quick) {
                    Ok(v) => {
                        eprintln!("ok");
                        perf[i][j].push(v);
                    }
                    Err(e) => {
                        eprintln!("FAILED: {e}");
                        errors.push(format!("{lib}/{} {} perf: {e}", t.name(), mode_name(pinned)));
                    }
                }
            }
        }
    }
    let mut out_rows = Vec::new();
    for (i, (lib, t)) in rows.iter().enumerate() {
        for (j, &pinned) in modes.iter().enumerate() {
            let mut r = Map::new();
            r.insert("lib".into(), json!(lib));
            r.insert("transport".into(), json!(t.name()));
            r.insert("mode".into(), json!(mode_name(pinned)));
            r.insert("rounds".into(), json!(perf[i][j].len()));
            r.insert("perf".into(), merge(&perf[i][j]));
            r.insert("perf_rounds".into(), Value::Array(perf[i][j].clone()));
            if !args.no_idle {
                eprint!(
                    "[{:>5.0}s] idle {lib}/{} {} … ",
                    started.elapsed().as_secs_f64(),
                    t.name(),
                    mode_name(pinned)
                );
                match run_child(lib, *t, pinned, "idle", args.quick) {
                    Ok(v) => {
                        eprintln!("ok");
                        r.insert("idle_bytes_per_conn".into(), v);
                    }
                    Err(e) => {
                        eprintln!("FAILED: {e}");
                        errors.push(format!("{lib}/{} {} idle: {e}", t.name(), mode_name(pinned)));
                    }
                }
            }
            if !args.no_many && has_many(lib, *t) {
                eprint!(
                    "[{:>5.0}s] many {lib}/{} {} … ",
                    started.elapsed().as_secs_f64(),
                    t.name(),
                    mode_name(pinned)
                );
                match run_child(lib, *t, pinned, "many", args.quick) {
                    Ok(v) => {
                        eprintln!("ok");
                        r.insert("many".into(), v);
                    }
                    Err(e) => {
                        eprintln!("FAILED: {e}");
                        errors.push(format!("{lib}/{} {} many: {e}", t.name(), mode_name(pinned)));
                    }
                }
            }
            out_rows.push(Value::Object(r));
        }
    }
    let firmware = if args.firmware { firmware::measure() } else { Value::Null };
    let cmdline: Vec<String> = std::env::args().skip(1).collect();
    json!({
        "machine": machine(),
        "args": cmdline.join(" "),
        "quick": args.quick,
        "rounds": args.rounds,
        "pinning": "pinned rows re-execute this binary under `taskset -c 0` (util-linux): the whole process, every thread, on CPU 0",
        "sizes": format!("{:?}", Sizes::new(args.quick)),
        "rows": out_rows,
        "firmware": firmware,
        "errors": errors,
        "seconds": started.elapsed().as_secs_f64(),
    })
}

mod firmware;
mod report;
