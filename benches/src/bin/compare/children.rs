//! The child modes other than the main figures (`--child LIB TRANSPORT idle|many|profile-*`):
//! idle memory per connection, the many-connections figure, the profiling runs; and the
//! process-level helpers they share (resident memory, the descriptor limit, socket files).

use super::*;

/// Removes this process's Unix socket files (its servers are never shut down).
pub(crate) fn remove_socket_files() {
    let prefix = format!("tandem-compare-{}-", std::process::id());
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

pub(crate) fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = s.split_whitespace().nth(1).and_then(|x| x.parse().ok()).expect("statm resident");
    pages * page_size()
}

pub(crate) fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |p| p as u64)
}

/// Raises `RLIMIT_NOFILE` as far as allowed (hard limit too, which root may); returns the soft
/// limit in force.
pub(crate) fn raise_nofile(want: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    if soft >= want {
        return soft;
    }
    if setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)).is_ok() {
        return want;
    }
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    getrlimit(Resource::RLIMIT_NOFILE).map_or(soft, |l| l.0)
}

pub(crate) fn child_idle(lib: &str, t: Transport) -> Value {
    let mut out = Map::new();
    let counts = idle_counts(lib);
    let max = *counts.iter().max().expect("counts");
    // Each connection costs two descriptors (both ends in this process), plus slack.
    let limit = raise_nofile(2 * max as u64 + 1_000);
    out.insert("nofile_limit".into(), json!(limit));
    let mut idle = make_idle(lib, t);
    // One connection first, so that one-off setup (executors, pools, buffers) is not counted.
    idle.open(1);
    std::thread::sleep(Duration::from_millis(200));
    let base = rss_bytes();
    TRACK.store(true, Ordering::SeqCst);
    let mut open = 0;
    for &n in counts {
        // Both ends of every connection live in this process: two descriptors each. When the
        // hard limit cannot be raised, as many as fit are opened, and the count is recorded.
        let fit = (limit.saturating_sub(100) / 2) as usize;
        let n_eff = n.min(fit);
        if n_eff < n {
            out.insert(format!("{n}_connections"), json!(n_eff));
        }
        idle.open(n_eff - open);
        open = n_eff;
        std::thread::sleep(Duration::from_millis(500));
        let delta = rss_bytes().saturating_sub(base);
        out.insert(n.to_string(), json!(delta as f64 / n_eff as f64));
        out.insert(format!("{n}_heap"), json!(LIVE.load(Ordering::SeqCst) as f64 / n_eff as f64));
    }
    Value::Object(out)
}

/// A profiling run (`--child LIB TRANSPORT profile-rtt|profile-pipelined|profile-stream`): only
/// the row (no floor), one figure, for 5 s, so that `perf record` sees nothing else:
///
/// ```text
/// perf record -g -- taskset -c 0 target/release/compare --child tandem-smol tcp profile-rtt
/// ```
pub(crate) fn child_profile(lib: &str, t: Transport, what: &str) -> Value {
    let mut row = make_row(lib, t);
    let time = Duration::from_secs(5);
    let start = Instant::now();
    let mut n = 0u64;
    match what {
        "profile-rtt" => {
            while start.elapsed() < time {
                row.call();
                n += 1;
            }
        }
        "profile-pipelined" => n = row.pipelined(64, time).0,
        "profile-stream" => {
            while start.elapsed() < time {
                if row.stream(1024).is_none() {
                    break;
                }
                n += 1024;
            }
        }
        _ => usage(),
    }
    json!({ "what": what, "count": n, "seconds": start.elapsed().as_secs_f64() })
}

/// The many-connections figure: [`MANY`] connections, one call in flight on each; calls per
/// second, latency percentiles, CPU per call.
pub(crate) fn child_many(lib: &str, t: Transport, quick: bool) -> Value {
    raise_nofile(2 * MANY as u64 + 1_000);
    let mut many = make_many(lib, t);
    many.open(MANY);
    let time = Duration::from_millis(if quick { 500 } else { 2_000 });
    many.run(time / 4); // warm-up
    let cpu = cpu_time();
    let start = Instant::now();
    let lat = many.run(time);
    let elapsed = start.elapsed();
    let cpu = cpu_time().saturating_sub(cpu);
    let n = lat.len().max(1);
    let mut v = percentiles(lat);
    v["connections"] = json!(MANY);
    v["calls_per_s"] = json!(n as f64 / elapsed.as_secs_f64());
    v["cpu_us_per_call"] = json!(cpu.as_secs_f64() * 1e6 / n as f64);
    v
}

/// A profiling run of the many-connections figure (`--child LIB TRANSPORT profile-many`):
/// [`MANY`] connections opened, then 5 s of calls; prints the number of calls, so that
/// `perf stat` and `strace -c -f` counts can be divided by it (setup included: 1,000 connects).
pub(crate) fn child_profile_many(lib: &str, t: Transport) -> Value {
    raise_nofile(2 * MANY as u64 + 1_000);
    let mut many = make_many(lib, t);
    many.open(MANY);
    let cpu = cpu_time();
    let start = Instant::now();
    let n = many.run(Duration::from_secs(5)).len();
    let cpu = cpu_time().saturating_sub(cpu);
    json!({
        "what": "profile-many",
        "count": n,
        "seconds": start.elapsed().as_secs_f64(),
        "cpu_us_per_call": cpu.as_secs_f64() * 1e6 / n.max(1) as f64,
    })
}
