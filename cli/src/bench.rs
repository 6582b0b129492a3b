//! `tandem bench`: one connection, `-c N` threads each making one blocking call at a time (N
//! calls in flight), for `-d` or `-n` calls; latency percentiles, a text histogram and calls
//! per second. Latencies go to an HDR histogram (3 significant digits, bounded memory whatever
//! the number of calls); a progress line is drawn on stderr when it is a terminal.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tandem_std::tandem_core::typed::MethodKind;
use tandem_std::{CallError, MethodId, Peer, SchemaKey};

use crate::commands::{decode_answer, encode_arg};
use crate::conn;
use crate::fail::{self, Failure, Outcome};
use crate::schema::{self, parse_hex, parse_ids, parse_key};
use crate::{BenchArgs, ConnArgs, Progress};

/// Longest latency recorded exactly (longer ones count as this).
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// What one thread measured.
struct Tally {
    latencies: Histogram<u64>,
    errors: BTreeMap<String, u64>,
    first_error: Option<CallError>,
}

/// The call each thread makes.
#[derive(Clone)]
struct Target {
    peer: Peer,
    id: MethodId,
    key: Option<SchemaKey>,
    payload: Arc<[u8]>,
    deadline: Duration,
}

impl Target {
    fn call(&self) -> Result<Vec<u8>, CallError> {
        match self.key {
            Some(k) => self.peer.call_raw_keyed(self.id, k, &self.payload, self.deadline),
            None => self.peer.call_raw(self.id, &self.payload, self.deadline),
        }
    }
}

/// Shared by the threads: when to stop and how many calls are done.
struct Run {
    stop: AtomicBool,
    done: AtomicU64,
    budget: Option<AtomicU64>,
    end: Instant,
}

impl Run {
    /// Whether another call may start (claiming it from the budget).
    fn another(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.end {
            return false;
        }
        match &self.budget {
            None => true,
            Some(b) => b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1)).is_ok(),
        }
    }
}

fn worker(target: Target, run: Arc<Run>) -> Tally {
    let mut t = Tally { latencies: histogram(), errors: BTreeMap::new(), first_error: None };
    while run.another() {
        let started = Instant::now();
        let r = target.call();
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        match r {
            Ok(_) => t.latencies.saturating_record(ns),
            Err(e) => {
                *t.errors.entry(e.status().name().to_string()).or_default() += 1;
                t.first_error.get_or_insert(e);
            }
        }
        run.done.fetch_add(1, Ordering::Relaxed);
    }
    t
}

fn progress(run: &Run, started: Instant, total: Duration) {
    let mut err = std::io::stderr().lock();
    while !run.stop.load(Ordering::Relaxed) {
        let t = started.elapsed().min(total);
        let frac = t.as_secs_f64() / total.as_secs_f64().max(1e-9);
        let width = 30;
        let filled = ((frac * width as f64) as usize).min(width);
        let done = run.done.load(Ordering::Relaxed);
        let _ = write!(
            err,
            "\r[{}{}] {:.1}/{:.1} s, {done} calls, {:.0} calls/s\x1b[K",
            "=".repeat(filled),
            " ".repeat(width - filled),
            t.as_secs_f64(),
            total.as_secs_f64(),
            done as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
        let _ = err.flush();
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = write!(err, "\r\x1b[K");
    let _ = err.flush();
}

fn fmt_ns(ns: u64) -> String {
    let ms = ns as f64 / 1e6;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

/// Up to 12 rows of `h` between its minimum and maximum (log-spaced when they differ by more
/// than 4×), each with a bar.
fn text_histogram(h: &Histogram<u64>) -> Vec<String> {
    let (lo, hi) = (h.min().max(1), h.max().max(1));
    let rows = 12usize;
    let log = hi as f64 / lo as f64 > 4.0;
    let edge = |i: usize| -> u64 {
        let f = i as f64 / rows as f64;
        if log {
            (lo as f64 * (hi as f64 / lo as f64).powf(f)) as u64
        } else {
            lo + ((hi - lo) as f64 * f) as u64
        }
    };
    let mut counts = vec![0u64; rows];
    for v in h.iter_recorded() {
        let x = v.value_iterated_to();
        let i = (0..rows).rev().find(|&i| x >= edge(i)).unwrap_or(0);
        counts[i] += v.count_at_value();
    }
    let most = counts.iter().copied().max().unwrap_or(0).max(1);
    (0..rows)
        .filter(|&i| hi > lo || i == 0)
        .map(|i| {
            let bar = "#".repeat(((counts[i] * 40).div_ceil(most)) as usize);
            format!("  {:>10} .. {:>10} | {bar:<40} | {}", fmt_ns(edge(i)), fmt_ns(edge(i + 1)), counts[i])
        })
        .collect()
}

/// `tandem bench`.
pub fn run(c: &ConnArgs, a: &BenchArgs) -> Outcome {
    let (client, _) = conn::connect(c, &a.call.addr)?;
    let peer = client.peer().clone();
    let deadline = conn::call_deadline(c);
    let (target, check, label) = if a.call.raw {
        let key = a.call.schema_key.as_deref().map(parse_key).transpose()?;
        let payload = parse_hex(a.call.arg.as_deref().unwrap_or(""))?;
        let t = Target {
            peer: peer.clone(),
            id: parse_ids(&a.call.method)?,
            key,
            payload: payload.into(),
            deadline,
        };
        (t, None, a.call.method.clone())
    } else {
        let r = schema::resolve(&peer, &a.call.method, deadline)?;
        if r.method.kind != MethodKind::Unary {
            return Err(Failure::usage(format!(
                "{} is a {} method: bench calls unary methods",
                r.path(),
                schema::kind_name(r.method.kind)
            )));
        }
        let payload = encode_arg(&r, a.call.arg.as_deref())?;
        let t =
            Target { peer: peer.clone(), id: r.id(), key: Some(r.key()), payload: payload.into(), deadline };
        let label = r.path();
        (t, Some(r), label)
    };
    // One call first: a method that cannot be called fails here, with its own error.
    let answer = target.call().map_err(|e| fail::call(&peer, &e))?;
    if let Some(r) = &check {
        decode_answer(r, &answer)?;
    }
    let started = Instant::now();
    let run = Arc::new(Run {
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
        budget: a.calls.map(AtomicU64::new),
        end: started + a.duration,
    });
    let workers: Vec<_> = (0..a.concurrency)
        .map(|_| {
            let (t, r) = (target.clone(), run.clone());
            std::thread::spawn(move || worker(t, r))
        })
        .collect();
    let draw = match a.progress {
        Progress::Auto => std::io::stderr().is_terminal(),
        Progress::Always => true,
        Progress::Never => false,
    };
    let bar = draw.then(|| {
        let (r, total) = (run.clone(), a.duration);
        std::thread::spawn(move || progress(&r, started, total))
    });
    let mut total = Tally { latencies: histogram(), errors: BTreeMap::new(), first_error: None };
    for w in workers {
        let t = w.join().map_err(|_| Failure::new(fail::Code::Remote, "a bench thread panicked"))?;
        total.latencies.add(&t.latencies).expect("histograms of the same bounds");
        for (k, n) in t.errors {
            *total.errors.entry(k).or_default() += n;
        }
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }
    let elapsed = started.elapsed();
    run.stop.store(true, Ordering::Relaxed);
    if let Some(b) = bar {
        let _ = b.join();
    }
    let limit = peer.peer_limits().map_or(u32::MAX, |l| l.max_concurrent_calls);
    report(&label, a, limit, &total, elapsed)?;
    client.shutdown(Duration::from_secs(1));
    let failed: u64 = total.errors.values().sum();
    match total.first_error {
        Some(e) if failed > 0 => {
            let mut f = fail::call(&peer, &e);
            f.message = format!(
                "{failed} of {} calls failed; the first: {}",
                failed + total.latencies.len(),
                f.message
            );
            Err(f)
        }
        _ => Ok(()),
    }
}

fn report(label: &str, a: &BenchArgs, limit: u32, t: &Tally, elapsed: Duration) -> Outcome {
    let h = &t.latencies;
    let ok = h.len();
    let failed: u64 = t.errors.values().sum();
    // Beyond the server's limit, calls wait for a slot (and that wait is in their latency).
    let in_flight = if a.concurrency > limit {
        format!("{limit} in flight (-c {} capped by the server's max_concurrent_calls)", a.concurrency)
    } else {
        format!("{} in flight", a.concurrency)
    };
    let mut lines = vec![
        format!("{label} on {}: {in_flight}, {:.2} s", conn::normalize(&a.call.addr), elapsed.as_secs_f64()),
        format!(
            "calls: {ok} ok, {failed} failed, {:.1} calls/s",
            (ok + failed) as f64 / elapsed.as_secs_f64().max(1e-9)
        ),
    ];
    if !t.errors.is_empty() {
        let by: Vec<_> = t.errors.iter().map(|(s, n)| format!("{s} {n}")).collect();
        lines.push(format!("errors: {}", by.join(", ")));
    }
    if ok > 0 {
        lines.push(format!(
            "latency: min {}, p50 {}, p90 {}, p99 {}, p99.9 {}, max {}, mean {}",
            fmt_ns(h.min()),
            fmt_ns(h.value_at_quantile(0.5)),
            fmt_ns(h.value_at_quantile(0.9)),
            fmt_ns(h.value_at_quantile(0.99)),
            fmt_ns(h.value_at_quantile(0.999)),
            fmt_ns(h.max()),
            fmt_ns(h.mean() as u64),
        ));
        lines.push("histogram:".into());
        lines.extend(text_histogram(h));
    }
    let mut out = std::io::stdout().lock();
    for l in lines {
        writeln!(out, "{l}").map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
    }
    Ok(())
}
