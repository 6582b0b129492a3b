//! The subcommands other than `bench`: ping, list, describe, call, notify, stream.

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tandem_std::dynamic;
use tandem_std::introspect::MethodInfo;
use tandem_std::tandem_core::typed::MethodKind;
use tandem_std::{CallError, ErrorKind, Features, MethodId, Peer, RawReceiver, RawSender, SchemaKey, Status};

use crate::conn::{self, normalize};
use crate::fail::{self, Code, Failure, Outcome};
use crate::json::{example, from_json, render, to_json};
use crate::schema::{self, hex, kind_name, parse_hex, parse_ids, parse_key, Resolved};
use crate::{CallArgs, ConnArgs};

/// The module of the round trips of `ping`: reserved (SPEC.md §15.8), so never served; every
/// peer answers a CALL there with UNKNOWN_MODULE (§7.9), whatever it serves.
pub const PING_MODULE: u32 = u32::MAX;

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn print_line(line: &str) -> Outcome {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // Whoever reads stdout has had enough (`tandem stream … | head -1`): stop quietly,
        // as tools killed by SIGPIPE do.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::usage(format!("cannot write to stdout: {e}"))),
    }
}

/// Whether a ping's failure is an answer (UNKNOWN_MODULE is the one expected; any status the
/// peer sent is a round trip), rather than a deadline or a lost connection.
fn answered(peer: &Peer, e: &CallError) -> bool {
    match e.kind() {
        ErrorKind::Status(Status::DEADLINE_EXCEEDED) => false,
        ErrorKind::Status(Status::UNAVAILABLE) => !peer.is_closed(),
        ErrorKind::Status(_) => true,
        _ => false,
    }
}

/// `tandem ping`.
pub fn ping(c: &ConnArgs, addr: &str, count: u32, interval: Duration) -> Outcome {
    let (client, took) = conn::connect(c, addr)?;
    let peer = client.peer();
    print_line(&format!("connected to {} in {}: server {:?}", normalize(addr), ms(took), peer.name()))?;
    let mut who = Vec::new();
    if let Some(a) = peer.remote_addr() {
        who.push(format!("remote address {a}"));
    }
    if let Some(cr) = peer.credentials() {
        who.push(format!("process uid {} gid {} pid {}", cr.uid, cr.gid, cr.pid));
    }
    if normalize(addr).starts_with("tls://") {
        let by = if c.ca.is_some() { "the CA of --ca" } else { "the system's roots" };
        who.push(format!("TLS certificate verified for the host name by {by}"));
    }
    if !who.is_empty() {
        print_line(&format!("identity: {}", who.join(", ")))?;
    }
    if let Some(l) = peer.peer_limits() {
        let opt = |v: u64, unit: &str| if v == 0 { "none".to_string() } else { format!("{v} {unit}") };
        print_line(&format!(
            "limits: max_frame_size {}, max_message_size {}, max_concurrent_calls {}, max_concurrent_streams {}, \
             stream credit {} messages / {} bytes, connection credit {} bytes, keepalive {}, idle timeout {}, \
             max_datagram_size {}, reply cache {} entries / {} bytes",
            l.max_frame_size,
            l.max_message_size,
            l.max_concurrent_calls,
            l.max_concurrent_streams,
            l.stream_credit_msgs,
            l.stream_credit_bytes,
            l.conn_credit_bytes,
            opt(l.keepalive_interval_ms, "ms"),
            opt(l.idle_timeout_ms, "ms"),
            opt(l.max_datagram_size.into(), "bytes"),
            l.reply_cache_entries,
            l.reply_cache_bytes,
        ))?;
        let mut f = Vec::new();
        if l.features.contains(Features::SCHEMA_KEYS) {
            f.push("schema_keys");
        }
        if l.features.contains(Features::ERROR_DETAILS) {
            f.push("error_details");
        }
        let unknown = l.features.0 & !Features::ALL.0;
        let other = if unknown != 0 {
            format!(" (and bits {unknown:#x} this tool does not know)")
        } else {
            String::new()
        };
        print_line(&format!("features: {}{other}", if f.is_empty() { "none".into() } else { f.join(", ") }))?;
    }
    let mut rtts = Vec::new();
    for i in 0..count {
        if i > 0 {
            std::thread::sleep(interval);
        }
        let started = Instant::now();
        if let Err(e) = peer.call_raw(MethodId::new(PING_MODULE, 0), &[], conn::call_deadline(c)) {
            if !answered(peer, &e) {
                return Err(fail::call(peer, &e));
            }
        }
        let rtt = started.elapsed();
        print_line(&format!("round trip {}: {}", i + 1, ms(rtt)))?;
        rtts.push(rtt);
    }
    if let (Some(min), Some(max)) = (rtts.iter().min(), rtts.iter().max()) {
        let avg = rtts.iter().sum::<Duration>() / rtts.len() as u32;
        print_line(&format!(
            "{} round trips: min {}, avg {}, max {}",
            rtts.len(),
            ms(*min),
            ms(avg),
            ms(*max)
        ))?;
    }
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

/// The first sentence of a doc comment (its lines joined: a sentence may span several).
fn first_line(doc: &str) -> String {
    let para: Vec<&str> =
        doc.lines().map(str::trim).skip_while(|l| l.is_empty()).take_while(|l| !l.is_empty()).collect();
    let text = para.join(" ");
    match text.find(". ") {
        Some(i) => text[..=i].to_string(),
        None => text,
    }
}

/// `tandem list`.
pub fn list(c: &ConnArgs, addr: &str, only: Option<&str>) -> Outcome {
    let (client, _) = conn::connect(c, addr)?;
    let peer = client.peer();
    let d = conn::call_deadline(c);
    let mut services = schema::services(peer, d)?;
    if let Some(name) = only {
        services = vec![schema::find_service(services, name)?];
    }
    for s in services {
        print_line(&format!("{} (module {}): {}", s.name, s.module, first_line(&s.doc)))?;
        let methods = schema::methods(peer, s.module, d)?;
        let width = methods.iter().map(|m| m.name.len()).max().unwrap_or(0);
        for m in methods {
            print_line(&format!(
                "  {:width$}  {:13}  {}",
                m.name,
                kind_name(m.kind),
                first_line(&m.doc),
                width = width
            ))?;
        }
    }
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

fn example_arg(r: &Resolved) -> String {
    let text = serde_json::to_string(&example(&r.schema.request)).unwrap_or_default();
    if text == "null" {
        String::new()
    } else {
        format!(" '{text}'")
    }
}

fn command_for(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::Unary => "call",
        MethodKind::Notify | MethodKind::Signal => "notify",
        _ => "stream",
    }
}

/// `tandem describe`.
pub fn describe(c: &ConnArgs, addr: &str, spec: &str) -> Outcome {
    let (client, _) = conn::connect(c, addr)?;
    let r = schema::resolve(client.peer(), spec, conn::call_deadline(c))?;
    let m: &MethodInfo = &r.method;
    print_line(&format!(
        "{} (module {}, method {}): {}",
        r.path(),
        r.service.module,
        m.id,
        kind_name(m.kind)
    ))?;
    for line in m.doc.lines().map(str::trim).filter(|l| !l.is_empty()) {
        print_line(&format!("  {line}"))?;
    }
    print_line(&format!("  key:      {}", hex(&m.key)))?;
    let req = match m.kind {
        MethodKind::Unary => "request: ",
        MethodKind::Notify | MethodKind::Signal => "value:   ",
        _ => "initial: ",
    };
    print_line(&format!("  {req} {}", render(&r.schema.request)))?;
    for (label, t) in [
        ("response:", &r.schema.response),
        ("error:   ", &r.schema.error),
        ("up:      ", &r.schema.up),
        ("down:    ", &r.schema.down),
    ] {
        if let Some(t) = t {
            print_line(&format!("  {label} {}", render(t)))?;
        }
    }
    print_line(&format!("  example:  tandem {} ADDR {}{}", command_for(m.kind), r.path(), example_arg(&r)))?;
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

/// The JSON argument encoded as the method's request.
pub fn encode_arg(r: &Resolved, arg: Option<&str>) -> Outcome<Vec<u8>> {
    let text = arg.unwrap_or("null");
    let j: Json = serde_json::from_str(text)
        .map_err(|e| Failure::new(Code::InvalidInput, format!("the request is not JSON ({e}): {text}")))?;
    encode_json(r, &r.schema.request, &j, "request")
}

fn encode_json(
    r: &Resolved,
    schema: &postcard_schema::schema::owned::OwnedNamedType,
    j: &Json,
    what: &str,
) -> Outcome<Vec<u8>> {
    let v = from_json(schema, j).map_err(|e| {
        Failure::new(
            Code::InvalidInput,
            format!("the {what} does not fit {} ({}): {e}", render(schema), r.path()),
        )
    })?;
    dynamic::encode(schema, &v)
        .map_err(|e| Failure::new(Code::InvalidInput, format!("the {what} does not encode: {e}")))
}

fn decode_json(
    schema: Option<&postcard_schema::schema::owned::OwnedNamedType>,
    bytes: &[u8],
    what: &str,
) -> Outcome<String> {
    let Some(schema) = schema else {
        return Err(Failure::new(
            Code::SchemaMismatch,
            format!("the server described no type for the {what}"),
        ));
    };
    let v = dynamic::decode(schema, bytes).map_err(|e| {
        Failure::new(
            Code::SchemaMismatch,
            format!(
                "the {what} ({} bytes: {}) does not decode as {}: {e}",
                bytes.len(),
                hex(bytes),
                render(schema)
            ),
        )
    })?;
    Ok(to_json(&v).to_string())
}

/// A unary method's answer as JSON.
pub fn decode_answer(r: &Resolved, bytes: &[u8]) -> Outcome<String> {
    decode_json(r.schema.response.as_ref(), bytes, "answer")
}

/// A failed typed call, with its application error decoded when the method declares one.
fn typed_failure(peer: &Peer, r: &Resolved, e: &CallError) -> Failure {
    let mut f = named(Some(r), fail::call(peer, e));
    if e.status() == Status::APPLICATION_ERROR {
        if let Some(Ok(app)) = r.schema.error.as_ref().map(|s| decode_json(Some(s), e.details(), "error")) {
            f.message = format!("{}: {app}", f.message);
        }
    } else if !e.details().is_empty() {
        f.message = format!("{} (details {})", f.message, hex(e.details()));
    }
    f
}

fn wrong_kind(r: &Resolved, wanted: &str) -> Failure {
    Failure::usage(format!(
        "{} is a {} method: use `tandem {} ADDR {}`, not `tandem {wanted}`",
        r.path(),
        kind_name(r.method.kind),
        command_for(r.method.kind),
        r.path()
    ))
}

/// `f` naming the method it was about.
fn named(r: Option<&Resolved>, mut f: Failure) -> Failure {
    if let Some(r) = r {
        f.message = format!("{}: {}", r.path(), f.message);
    }
    f
}

fn raw_failure(peer: &Peer, e: &CallError) -> Failure {
    let mut f = fail::call(peer, e);
    if !e.details().is_empty() {
        f.message = format!("{} (details {})", f.message, hex(e.details()));
    }
    f
}

/// The schema key to send: the described method's, or `--schema-key` with `--raw`.
fn key_of(a: &CallArgs, r: Option<&Resolved>) -> Outcome<Option<SchemaKey>> {
    match (r, &a.schema_key) {
        (Some(r), _) => Ok(Some(r.key())),
        (None, Some(k)) => parse_key(k).map(Some),
        (None, None) => Ok(None),
    }
}

/// `tandem call`.
pub fn call(c: &ConnArgs, a: &CallArgs) -> Outcome {
    let (client, _) = conn::connect(c, &a.addr)?;
    let peer = client.peer();
    let d = conn::call_deadline(c);
    if a.raw {
        let id = parse_ids(&a.method)?;
        let payload = parse_hex(a.arg.as_deref().unwrap_or(""))?;
        let answer = match &a.schema_key {
            Some(k) => peer.call_raw_keyed(id, parse_key(k)?, &payload, d),
            None => peer.call_raw(id, &payload, d),
        };
        let answer = answer.map_err(|e| raw_failure(peer, &e))?;
        print_line(&hex(&answer))?;
    } else {
        let r = schema::resolve(peer, &a.method, d)?;
        if r.method.kind != MethodKind::Unary {
            return Err(wrong_kind(&r, "call"));
        }
        let payload = encode_arg(&r, a.arg.as_deref())?;
        let answer =
            peer.call_raw_keyed(r.id(), r.key(), &payload, d).map_err(|e| typed_failure(peer, &r, &e))?;
        print_line(&decode_answer(&r, &answer)?)?;
    }
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

/// `tandem notify`.
pub fn notify(c: &ConnArgs, a: &CallArgs, signal: bool) -> Outcome {
    let (client, _) = conn::connect(c, &a.addr)?;
    let peer = client.peer();
    let d = conn::call_deadline(c);
    let (id, payload, signal, r) = if a.raw {
        (parse_ids(&a.method)?, parse_hex(a.arg.as_deref().unwrap_or(""))?, signal, None)
    } else {
        let r = schema::resolve(peer, &a.method, d)?;
        if !matches!(r.method.kind, MethodKind::Notify | MethodKind::Signal) {
            return Err(wrong_kind(&r, "notify"));
        }
        let signal = signal || r.method.kind == MethodKind::Signal;
        (r.id(), encode_arg(&r, a.arg.as_deref())?, signal, Some(r))
    };
    let key = key_of(a, r.as_ref())?;
    let failure = |e: CallError| named(r.as_ref(), raw_failure(peer, &e));
    if signal {
        match key {
            Some(k) => peer.signal_raw_keyed(id, k, &payload),
            None => peer.signal_raw(id, &payload),
        }
        .map_err(failure)?;
        print_line("sent (a signal: not acknowledged)")?;
    } else {
        match key {
            Some(k) => peer.notify_raw_keyed(id, k, &payload, d),
            None => peer.notify_raw(id, &payload, d),
        }
        .map_err(failure)?;
        print_line("acknowledged")?;
    }
    // Graceful: a signal queued just now still goes out before CLOSE.
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

/// How stream items are read and written: by a schema, or as hex.
#[derive(Clone)]
enum Items {
    Raw,
    Typed(Box<Resolved>),
}

/// Sends stdin's lines as items, then finishes the direction; an invalid line resets the stream
/// after reporting its failure on `failed`.
fn pump_stdin(mut tx: RawSender, items: Items, failed: mpsc::Sender<Failure>) {
    let stdin = std::io::stdin();
    for (n, line) in stdin.lock().lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = failed.send(Failure::new(Code::InvalidInput, format!("cannot read stdin: {e}")));
                tx.reset(Status::CANCELLED);
                return;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let item = match &items {
            Items::Raw => parse_hex(&line),
            Items::Typed(r) => serde_json::from_str::<Json>(&line)
                .map_err(|e| Failure::new(Code::InvalidInput, format!("not JSON ({e}): {line}")))
                .and_then(|j| match &r.schema.up {
                    Some(up) => encode_json(r, up, &j, "item"),
                    None => Err(Failure::usage(format!("{} takes no items", r.path()))),
                }),
        };
        match item {
            Ok(bytes) => {
                if tx.send(&bytes).is_err() {
                    // The stream ended: its receiver reports how.
                    return;
                }
            }
            Err(mut f) => {
                f.message = format!("stdin line {}: {}", n + 1, f.message);
                let _ = failed.send(f);
                tx.reset(Status::CANCELLED);
                return;
            }
        }
    }
    let _ = tx.finish();
}

/// `tandem stream`.
pub fn stream(c: &ConnArgs, a: &CallArgs) -> Outcome {
    let (client, _) = conn::connect(c, &a.addr)?;
    let peer = client.peer();
    let (id, init, items, reads_stdin) = if a.raw {
        (parse_ids(&a.method)?, parse_hex(a.arg.as_deref().unwrap_or(""))?, Items::Raw, true)
    } else {
        let r = schema::resolve(peer, &a.method, conn::call_deadline(c))?;
        let up = match r.method.kind {
            MethodKind::ServerStream => false,
            MethodKind::ClientStream | MethodKind::Bidi => true,
            _ => return Err(wrong_kind(&r, "stream")),
        };
        let init = encode_arg(&r, a.arg.as_deref())?;
        (r.id(), init, Items::Typed(Box::new(r)), up)
    };
    let resolved = match &items {
        Items::Typed(r) => Some(r.as_ref()),
        Items::Raw => None,
    };
    let opened = match key_of(a, resolved)? {
        Some(k) => peer.open_stream_raw_keyed(id, k, &init, conn::stream_deadline(c)),
        None => peer.open_stream_raw(id, &init, conn::stream_deadline(c)),
    };
    let (mut tx, rx) = opened.map_err(|e| named(resolved, raw_failure(peer, &e)))?;
    let (failed_tx, failed) = mpsc::channel();
    if reads_stdin {
        let items = items.clone();
        std::thread::spawn(move || pump_stdin(tx, items, failed_tx));
    } else {
        let _ = tx.finish();
        drop(failed_tx);
    }
    let result = print_items(peer, rx, &items).map_err(|f| named(resolved, f));
    // A bad input line is why the stream was reset: report it rather than the reset.
    if let Ok(f) = failed.try_recv() {
        return Err(f);
    }
    result?;
    client.shutdown(Duration::from_secs(1));
    Ok(())
}

fn print_items(peer: &Peer, mut rx: RawReceiver, items: &Items) -> Outcome {
    loop {
        match rx.recv() {
            Ok(Some(item)) => {
                let line = match items {
                    Items::Raw => hex(&item),
                    Items::Typed(r) => decode_json(r.schema.down.as_ref(), &item, "item")?,
                };
                print_line(&line)?;
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(raw_failure(peer, &e)),
        }
    }
}
