//! Running scenarios against an implementation, and reporting (text, JSON, JUnit).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_core::addr::Address;

use crate::cases::{NEEDS_STREAM, NEEDS_UDP};
use crate::suite::{Case, Ctx, Fail, Role, Target};
use crate::tls::TlsSettings;
use crate::wire::Listener;

/// The outcome of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The implementation behaved as required.
    Passed,
    /// It did not.
    Failed {
        /// What the case required.
        expected: String,
        /// What happened.
        actual: String,
    },
    /// The case did not apply.
    Skipped(String),
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// Case id (`5.3/2`).
    pub id: String,
    /// SPEC.md section.
    pub section: String,
    /// What the case does.
    pub title: String,
    /// The requirement quoted from SPEC.md.
    pub requirement: String,
    /// Result.
    pub outcome: Outcome,
    /// The frames exchanged, decoded.
    pub log: Vec<String>,
    /// How long it took.
    pub duration: Duration,
}

/// Which cases to run and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only these case ids (empty: all).
    pub cases: Vec<String>,
    /// Only these sections and their subsections (empty: all).
    pub sections: Vec<String>,
    /// Per-case time limit.
    pub timeout: Duration,
    /// The implementation runs the test service in authenticating mode (SPEC.md Appendix A.5):
    /// only the authentication cases run, the runner presenting the service's credentials.
    pub auth: bool,
    /// The runner's TLS settings, for `tls://` addresses (`--tls-ca`, `--tls-cert`,
    /// `--tls-key`; see [`TlsSettings`]).
    pub tls: TlsSettings,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cases: Vec::new(),
            sections: Vec::new(),
            timeout: Duration::from_secs(40),
            auth: false,
            tls: TlsSettings::default(),
        }
    }
}

impl Options {
    /// Whether `c` passes the filters: with no filter every case; otherwise the cases named by
    /// `--case` and those of the `--section`s (and their subsections).
    pub fn selects(&self, c: &Case) -> bool {
        (self.cases.is_empty() && self.sections.is_empty())
            || self.cases.contains(&c.id)
            || self.sections.iter().any(|s| c.section == *s || c.section.starts_with(&format!("{s}.")))
    }
}

static NAMES: AtomicU64 = AtomicU64::new(0);

fn fresh_name() -> String {
    format!("conformance-{}-{}", std::process::id(), NAMES.fetch_add(1, Ordering::Relaxed))
}

/// Runs the cases of `role` that `opts` selects against `addr` (dialed, or listened on).
pub fn run(addr: &Address, role: Role, cases: &[Case], opts: &Options) -> Vec<CaseResult> {
    let selected: Vec<&Case> = cases.iter().filter(|c| c.role == role && opts.selects(c)).collect();
    match target(addr, role, &opts.tls) {
        Ok(target) => run_target(&target, &selected, opts),
        Err(e) => {
            let what = match role {
                Role::RunnerDials => format!("to dial {addr}"),
                Role::RunnerAccepts => format!("to listen on {addr}"),
            };
            let o = Outcome::Failed { expected: what, actual: e.to_string() };
            selected.iter().map(|c| result(c, o.clone(), Vec::new(), Duration::ZERO)).collect()
        }
    }
}

/// The target for `addr` in `role`: the address to dial (with its TLS configuration over
/// `tls://`), or a bound listener. Fails on a TLS setting that is missing or unusable, or when
/// the address cannot be bound.
pub fn target(addr: &Address, role: Role, tls: &TlsSettings) -> std::io::Result<Target> {
    match (role, addr) {
        (Role::RunnerDials, Address::Tls(_)) => Ok(Target::DialTls(addr.clone(), tls.client(addr)?)),
        (Role::RunnerDials, _) => Ok(Target::Dial(addr.clone())),
        (Role::RunnerAccepts, _) => Ok(Target::Listen(Arc::new(Listener::bind_with(addr, tls)?))),
    }
}

/// Runs cases against an already prepared target.
pub fn run_target(target: &Target, selected: &[&Case], opts: &Options) -> Vec<CaseResult> {
    selected.iter().map(|c| run_one(target, c, opts)).collect()
}

fn result(c: &Case, outcome: Outcome, log: Vec<String>, duration: Duration) -> CaseResult {
    CaseResult {
        id: c.id.clone(),
        section: c.section.clone(),
        title: c.title.clone(),
        requirement: c.requirement.clone(),
        outcome,
        log,
        duration,
    }
}

fn run_one(target: &Target, c: &Case, opts: &Options) -> CaseResult {
    let timeout = opts.timeout;
    if let Some(reason) = &c.skip {
        return result(c, Outcome::Skipped(reason.clone()), Vec::new(), Duration::ZERO);
    }
    let auth_case = crate::cases::AUTH_CASES.contains(&c.id.as_str());
    if auth_case != opts.auth {
        let why = if opts.auth { crate::cases::NOT_IN_AUTH_MODE } else { crate::cases::NEEDS_AUTH };
        return result(c, Outcome::Skipped(why.into()), Vec::new(), Duration::ZERO);
    }
    let udp = target.is_udp();
    if c.udp_only() != udp {
        let why = if udp { NEEDS_STREAM } else { NEEDS_UDP };
        return result(c, Outcome::Skipped(why.into()), Vec::new(), Duration::ZERO);
    }
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let body = c.body.clone();
    let mut ctx = Ctx::new(target.clone(), log.clone(), fresh_name());
    ctx.auth_mode = opts.auth;
    let start = Instant::now();
    let spawned = std::thread::Builder::new().name(format!("case {}", c.id)).spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&mut ctx)));
        let _ = tx.send(r);
    });
    let outcome = match spawned {
        Err(e) => Outcome::Failed { expected: "a thread for the case".into(), actual: e.to_string() },
        Ok(_) => match rx.recv_timeout(timeout) {
            Ok(Ok(Ok(()))) => Outcome::Passed,
            Ok(Ok(Err(Fail::Failed { expected, actual }))) => Outcome::Failed { expected, actual },
            Ok(Ok(Err(Fail::Skipped(r)))) => Outcome::Skipped(r),
            Ok(Err(_)) => {
                Outcome::Failed { expected: "the case to run".into(), actual: "the runner panicked".into() }
            }
            Err(_) => Outcome::Failed {
                expected: format!("the case to finish within {} s", timeout.as_secs()),
                actual: "timed out".into(),
            },
        },
    };
    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    result(c, outcome, log, start.elapsed())
}

/// Passed, failed and skipped counts.
pub fn counts(results: &[CaseResult]) -> (usize, usize, usize) {
    let p = results.iter().filter(|r| r.outcome == Outcome::Passed).count();
    let f = results.iter().filter(|r| matches!(r.outcome, Outcome::Failed { .. })).count();
    (p, f, results.len() - p - f)
}

/// The titles of SPEC.md's sections, by number.
pub fn section_titles() -> BTreeMap<String, String> {
    let spec = include_str!("../../SPEC.md");
    let mut m = BTreeMap::new();
    for line in spec.lines() {
        let t = line.trim_start_matches('#');
        if t.len() == line.len() {
            continue;
        }
        let t = t.trim();
        if let Some((num, title)) = t.split_once(' ') {
            let num = num.trim_end_matches('.');
            if num.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                m.entry(num.to_string()).or_insert_with(|| title.to_string());
            }
        }
    }
    m
}

fn sec_key(s: &str) -> Vec<u32> {
    s.split('.').map(|x| x.parse().unwrap_or(0)).collect()
}

/// The text report, like h2spec: grouped by section, failures with details, a final line.
pub fn text(results: &[CaseResult], verbose: bool) -> String {
    let titles = section_titles();
    let mut by: BTreeMap<Vec<u32>, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        by.entry(sec_key(&r.section)).or_default().push(r);
    }
    let mut out = String::new();
    for rs in by.values() {
        let sec = &rs[0].section;
        let _ = writeln!(out, "{sec} {}", titles.get(sec).map(String::as_str).unwrap_or(""));
        for r in rs {
            match &r.outcome {
                Outcome::Passed => {
                    let _ = writeln!(out, "  passed   {} {}", r.id, r.title);
                }
                Outcome::Skipped(why) => {
                    let _ = writeln!(out, "  skipped  {} {} ({why})", r.id, r.title);
                }
                Outcome::Failed { expected, actual } => {
                    let _ = writeln!(out, "  FAILED   {} {}", r.id, r.title);
                    let _ = writeln!(out, "           requirement: {}", r.requirement);
                    let _ = writeln!(out, "           expected: {expected}");
                    let _ = writeln!(out, "           actual:   {actual}");
                    let _ = writeln!(out, "           frames:");
                    for l in &r.log {
                        let _ = writeln!(out, "             {l}");
                    }
                }
            }
            if verbose && r.outcome == Outcome::Passed {
                for l in &r.log {
                    let _ = writeln!(out, "             {l}");
                }
            }
        }
    }
    let (p, f, s) = counts(results);
    let _ = writeln!(out, "\n{p} passed, {f} failed, {s} skipped");
    out
}

/// The JSON report.
pub fn json(results: &[CaseResult]) -> serde_json::Value {
    let (p, f, s) = counts(results);
    let cases: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let (outcome, expected, actual, reason) = match &r.outcome {
                Outcome::Passed => ("passed", None, None, None),
                Outcome::Failed { expected, actual } => ("failed", Some(expected), Some(actual), None),
                Outcome::Skipped(why) => ("skipped", None, None, Some(why)),
            };
            serde_json::json!({
                "id": r.id, "section": r.section, "title": r.title, "requirement": r.requirement,
                "outcome": outcome, "expected": expected, "actual": actual, "reason": reason,
                "frames": r.log, "duration_ms": r.duration.as_millis() as u64,
            })
        })
        .collect();
    serde_json::json!({"format": "tandem-conformance-report/1", "passed": p, "failed": f, "skipped": s, "cases": cases})
}

fn xml(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '&' => "&amp;".into(),
            '"' => "&quot;".into(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => " ".into(),
            c => c.to_string(),
        })
        .collect()
}

/// The JUnit XML report: one test suite per SPEC.md section.
pub fn junit(results: &[CaseResult], name: &str) -> String {
    let mut by: BTreeMap<Vec<u32>, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        by.entry(sec_key(&r.section)).or_default().push(r);
    }
    let (_, f, s) = counts(results);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{f}\" skipped=\"{s}\">",
        xml(name),
        results.len()
    );
    for rs in by.values() {
        let (_, sf, ss) = counts(&rs.iter().map(|r| (*r).clone()).collect::<Vec<_>>());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{sf}\" skipped=\"{ss}\">",
            xml(&rs[0].section),
            rs.len()
        );
        for r in rs {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{} {}\" time=\"{:.3}\">",
                xml(&rs[0].section),
                xml(&r.id),
                xml(&r.title),
                r.duration.as_secs_f64()
            );
            match &r.outcome {
                Outcome::Passed => {}
                Outcome::Skipped(why) => {
                    let _ = write!(out, "<skipped message=\"{}\"/>", xml(why));
                }
                Outcome::Failed { expected, actual } => {
                    let _ = write!(
                        out,
                        "<failure message=\"expected {}; actual {}\">{}\nframes:\n{}</failure>",
                        xml(expected),
                        xml(actual),
                        xml(&r.requirement),
                        xml(&r.log.join("\n"))
                    );
                }
            }
            let _ = writeln!(out, "</testcase>");
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}
