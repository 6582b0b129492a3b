//! The scenario framework: a case, its context (a raw peer plus helpers), and outcomes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_core::addr::Address;
use tandem_core::frame::{flags, Decoded, Frame, Hello, Params, Request};
use tandem_core::{MethodId, Status};

use crate::service::{self, method, MODULE};
use crate::wire::{describe, Listener, Log, Owned, Recv, Wire};

/// How long the runner waits for an answer that should come at once.
pub const T: Duration = Duration::from_secs(5);
/// How long the runner watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// Who opens the transport connection in a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The runner dials the implementation (`run --connect`).
    RunnerDials,
    /// The implementation dials the runner (`run --listen`).
    RunnerAccepts,
}

/// Why a case did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fail {
    /// The implementation did something else than required.
    Failed {
        /// What the case required.
        expected: String,
        /// What happened.
        actual: String,
    },
    /// The case does not apply.
    Skipped(String),
}

/// The result type of case bodies.
pub type R<T = ()> = Result<T, Fail>;

/// A failure.
pub fn fail<T>(expected: impl Into<String>, actual: impl Into<String>) -> R<T> {
    Err(Fail::Failed { expected: expected.into(), actual: actual.into() })
}

/// A skip.
pub fn skip<T>(reason: impl Into<String>) -> R<T> {
    Err(Fail::Skipped(reason.into()))
}

/// The body of a case.
pub type Body = Arc<dyn Fn(&mut Ctx) -> R + Send + Sync>;

/// One scenario.
#[derive(Clone)]
pub struct Case {
    /// Stable id, `SECTION/N`.
    pub id: String,
    /// The SPEC.md section the case checks.
    pub section: String,
    /// One line saying what is done.
    pub title: String,
    /// The requirement, quoted from SPEC.md.
    pub requirement: String,
    /// Who dials.
    pub role: Role,
    /// Set when the case is always skipped (unimplemented parts of the protocol).
    pub skip: Option<String>,
    /// The scripted exchange.
    pub body: Body,
}

impl Case {
    /// Whether the case plays datagram mode and runs only against a `udp://` address (§14, and
    /// §9.6 which forbids fragmentation over UDP). Every other case needs a byte-stream or
    /// SEQPACKET transport.
    pub fn udp_only(&self) -> bool {
        self.section == "14" || self.section.starts_with("14.") || self.section == "9.6"
    }
}

/// Where the implementation under test is.
#[derive(Clone)]
pub enum Target {
    /// The runner dials this address.
    Dial(Address),
    /// The runner dials this `tls://` address with this TLS configuration.
    DialTls(Address, crate::tls::TlsClient),
    /// The runner accepts connections here.
    Listen(Arc<Listener>),
}

impl Target {
    /// Whether the implementation is reached over UDP.
    pub fn is_udp(&self) -> bool {
        match self {
            Target::Dial(a) => matches!(a, Address::Udp(_)),
            Target::DialTls(..) => false,
            Target::Listen(l) => matches!(l.local_addr(), Address::Udp(_)),
        }
    }
}

/// The implementation's parameters (from its HELLO), with defaults filled in.
#[derive(Clone, Debug, Default)]
pub struct PeerParams {
    pairs: Vec<(u64, u64)>,
}

impl PeerParams {
    /// The value of parameter `id`.
    pub fn get(&self, id: u64) -> u64 {
        if let Some(&(_, v)) = self.pairs.iter().find(|(k, _)| *k == id) {
            return v;
        }
        match id {
            1 => 65536,
            2 => 4194304,
            3 | 4 => 100,
            5 => 64,
            6 => 262144,
            7 => 1048576,
            8 => 10000,
            9 => 30000,
            11 => 1024,
            12 => 4194304,
            _ => 0,
        }
    }
}

/// The runner's state in one case.
pub struct Ctx {
    /// Where the implementation is.
    pub target: Target,
    /// The log of this case.
    pub log: Log,
    /// The HELLO name the runner uses (unique per case and connection set).
    pub name: String,
    /// The connection, once open.
    pub w: Option<Wire>,
    /// The implementation's parameters.
    pub peer: PeerParams,
    /// The parameters the runner announced.
    pub mine: Vec<(u64, u64)>,
    /// Whether the runner dialed (even ids) or accepted (odd ids).
    pub dialer: bool,
    next_id: u64,
    /// Answer PINGs automatically while waiting.
    pub auto_pong: bool,
    /// Frames received but not yet matched by an expectation.
    stash: Vec<Owned>,
    /// The implementation's last HELLO.
    pub peer_hello: Option<Owned>,
    /// The implementation runs the test service in authenticating mode (SPEC.md Appendix A.5):
    /// the runner's HELLOs carry alice's credentials.
    pub auth_mode: bool,
}

/// A request (CALL, NOTIFY or STREAM_OPEN) with defaults.
pub fn req(id: u64, m: u32, payload: &[u8]) -> Request<'_> {
    Request { flags: 0, id, module: MODULE, method: m, budget_us: 0, total_len: None, payload }
}

/// The runner's HELLO.
pub fn hello<'a>(
    min: u32,
    max: u32,
    flags: u64,
    name: &'a [u8],
    session: &'a [u8],
    params: Params<'a>,
) -> Frame<'a> {
    Frame::Hello(Hello { min_version: min, max_version: max, flags, name, auth: b"", session, params })
}

/// Encodes HELLO parameters.
pub fn params_bytes(pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + pairs.len() * 16];
    let n = Params::encode_into(pairs, &mut buf).map(|p| p.raw().len()).unwrap_or(0);
    buf.truncate(n);
    buf
}

/// Encodes a dialer's HELLO for version 1 carrying `auth` (SPEC.md §5.6).
pub fn hello_auth_bytes(name: &[u8], auth: &[u8], session: &[u8], flags: u64) -> Vec<u8> {
    crate::wire::encode(&Frame::Hello(Hello {
        min_version: 1,
        max_version: 1,
        flags,
        name,
        auth,
        session,
        params: Params::EMPTY,
    }))
}

/// Encodes a complete HELLO frame from parts (bypassing checks, for malformed variants).
pub fn hello_bytes(
    min: u32,
    max: u32,
    flags: u64,
    name: &[u8],
    session: &[u8],
    pairs: &[(u64, u64)],
) -> Vec<u8> {
    let mut buf = vec![0u8; 8 + pairs.len() * 16];
    let params = Params::encode_into(pairs, &mut buf).expect("params encode");
    crate::wire::encode(&hello(min, max, flags, name, session, params))
}

fn io<T>(r: std::io::Result<T>) -> R<T> {
    r.or_else(|e| fail("to write to the transport", format!("write failed: {e}")))
}

impl Ctx {
    /// A context for one case.
    pub fn new(target: Target, log: Log, name: String) -> Ctx {
        let dialer = matches!(target, Target::Dial(_) | Target::DialTls(..));
        Ctx {
            target,
            log,
            name,
            w: None,
            peer: PeerParams::default(),
            mine: Vec::new(),
            dialer,
            next_id: if dialer { 0 } else { 1 },
            auto_pong: true,
            stash: Vec::new(),
            peer_hello: None,
            auth_mode: false,
        }
    }

    /// The connection.
    pub fn w(&mut self) -> &mut Wire {
        self.w.as_mut().expect("connection opened")
    }

    /// Opens the transport (dial or accept) without handshaking.
    pub fn transport(&mut self) -> R {
        let w = match &self.target {
            Target::Dial(a) => Wire::connect(a, self.log.clone()),
            Target::DialTls(a, tls) => Wire::connect_tls(a, tls, self.log.clone()),
            Target::Listen(l) => l.accept(Duration::from_secs(5), self.log.clone()),
        };
        match w {
            Ok(w) => {
                self.w = Some(w);
                Ok(())
            }
            Err(e) => fail("a transport connection to the implementation", e.to_string()),
        }
    }

    /// Logs a line.
    pub fn note(&self, s: impl AsRef<str>) {
        if let Some(w) = &self.w {
            w.note(s);
        }
    }

    /// Dials and completes the handshake with the runner's default parameters.
    pub fn open(&mut self) -> R {
        self.open_with(&[])
    }

    /// Dials and completes the handshake announcing `params`.
    pub fn open_with(&mut self, params: &[(u64, u64)]) -> R {
        self.transport()?;
        if self.dialer && self.w().is_udp() {
            // Datagram mode (SPEC.md §14.3): the dialer retransmits its HELLO, byte-identical,
            // until the acceptor's HELLO arrives (every second, five times).
            let h = hello_bytes(1, 1, 0, self.name.as_bytes(), b"", params);
            let mut tries = 0;
            let f = loop {
                tries += 1;
                self.send_bytes(&h)?;
                match self
                    .expect("the acceptor's HELLO", Duration::from_secs(1), |f| matches!(f, Frame::Hello(_)))
                {
                    Ok(f) => break f,
                    Err(Fail::Failed { actual, .. })
                        if tries < 5 && actual.starts_with("nothing matching") => {}
                    Err(e) => return Err(e),
                }
            };
            self.take_hello(&f)?;
        } else if self.dialer && self.auth_mode {
            let mut buf = vec![0u8; 8 + params.len() * 16];
            let p = Params::encode_into(params, &mut buf).expect("params encode");
            let auth = crate::service::AUTH_ALICE;
            let hello = Hello {
                min_version: 1,
                max_version: 1,
                flags: 0,
                name: self.name.as_bytes(),
                auth,
                session: b"",
                params: p,
            };
            self.send_bytes(&crate::wire::encode(&Frame::Hello(hello)))?;
            let f = self.expect("the acceptor's HELLO", T, |f| matches!(f, Frame::Hello(_)))?;
            self.take_hello(&f)?;
        } else if self.dialer {
            let h = hello_bytes(1, 1, 0, self.name.as_bytes(), b"", params);
            self.send_bytes(&h)?;
            let f = self.expect("the acceptor's HELLO", T, |f| matches!(f, Frame::Hello(_)))?;
            self.take_hello(&f)?;
        } else {
            let f = self.expect("the dialer's HELLO", T, |f| matches!(f, Frame::Hello(_)))?;
            self.take_hello(&f)?;
            let h = hello_bytes(1, 1, 0, self.name.as_bytes(), b"", params);
            self.send_bytes(&h)?;
        }
        self.mine = params.to_vec();
        let limit = params.iter().find(|(k, _)| *k == 1).map(|&(_, v)| v).unwrap_or(65536);
        self.w().limit = limit as usize;
        Ok(())
    }

    /// Records the implementation's HELLO parameters.
    pub fn take_hello(&mut self, f: &Owned) -> R {
        if let Frame::Hello(h) = f.frame() {
            self.peer = PeerParams { pairs: h.params.iter().collect() };
            self.peer_hello = Some(f.clone());
            Ok(())
        } else {
            fail("HELLO", describe(&f.frame()))
        }
    }

    /// The session token of the implementation's last HELLO (empty if none).
    pub fn peer_session(&self) -> Vec<u8> {
        match self.peer_hello.as_ref().map(|o| o.frame()) {
            Some(Frame::Hello(h)) => h.session.to_vec(),
            _ => Vec::new(),
        }
    }

    /// Drops the transport without CLOSE (the runner "loses" it) and forgets unmatched frames.
    ///
    /// The runner first ends its sending direction, so that everything it sent is delivered
    /// (dropping a socket with unread data would reset it and could discard frames in flight),
    /// then reads until the implementation closes its side (at most 2 s), then closes.
    pub fn lose_transport(&mut self) {
        if let Some(w) = self.w.as_mut() {
            w.note("→ (transport lost: no CLOSE)");
            w.shutdown_write();
            let end = Instant::now() + Duration::from_secs(2);
            loop {
                let left = end.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match w.recv(left) {
                    Recv::Frame(_) | Recv::Bad(_) => {}
                    Recv::Eof | Recv::Failed(_) | Recv::Timeout => break,
                }
            }
        }
        self.w = None;
        self.stash.clear();
    }

    /// The implementation's parameter `id`.
    pub fn p(&self, id: u64) -> u64 {
        self.peer.get(id)
    }

    /// The next id the runner opens.
    pub fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 2;
        id
    }

    /// Sends frames in one write.
    pub fn send(&mut self, frames: &[Frame<'_>]) -> R {
        let b: Vec<u8> = frames.iter().flat_map(|f| crate::wire::encode(f)).collect();
        self.send_bytes(&b)
    }

    /// Sends raw bytes in one write. Opening frames of the runner's parity found in them
    /// advance the runner's next id.
    pub fn send_bytes(&mut self, b: &[u8]) -> R {
        let mut rest = b;
        while let Ok(Decoded::Frame(f, n)) = Frame::decode(rest, usize::MAX >> 1) {
            if let Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) = f {
                if r.id % 2 == self.next_id % 2 && r.id >= self.next_id {
                    self.next_id = r.id.saturating_add(2);
                }
            }
            rest = &rest[n..];
        }
        let r = self.w().send_bytes(b);
        io(r)
    }

    /// Waits for a frame matching `pred`; PINGs are answered, other frames are skipped. A
    /// CLOSE, the end of the transport or undecodable bytes fail the case.
    pub fn expect(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Frame<'_>) -> bool) -> R<Owned> {
        if let Some(i) = self.stash.iter().position(|o| pred(&o.frame())) {
            return Ok(self.stash.remove(i));
        }
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.w().recv(left) {
                Recv::Frame(o) => {
                    let f = o.frame();
                    if pred(&f) {
                        return Ok(o);
                    }
                    match f {
                        Frame::Ping(d) if self.auto_pong => self.send(&[Frame::Pong(d)])?,
                        Frame::Close { .. } => return fail(what, describe(&f)),
                        _ => self.stash.push(o.clone()),
                    }
                }
                Recv::Eof => return fail(what, "the transport was closed"),
                Recv::Failed(e) => return fail(what, format!("transport error: {e}")),
                Recv::Bad(e) => return fail(what, format!("bytes that do not decode: {e:?}")),
                Recv::Timeout => {
                    return fail(what, format!("nothing matching within {} ms", timeout.as_millis()))
                }
            }
        }
    }

    /// Waits for CLOSE with `status` (any other frame before it is skipped).
    pub fn expect_close(&mut self, status: Status) -> R {
        self.expect_close_in(&[status], T)
    }

    /// Waits for CLOSE with one of `statuses`.
    pub fn expect_close_in(&mut self, statuses: &[Status], timeout: Duration) -> R {
        let names: Vec<String> = statuses.iter().map(|s| format!("{s:?}")).collect();
        let what = format!("CLOSE {}", names.join(" or "));
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.w().recv(left) {
                Recv::Frame(o) => {
                    if let Frame::Close { status, .. } = o.frame() {
                        if statuses.contains(&status) {
                            return Ok(());
                        }
                        return fail(what, describe(&o.frame()));
                    }
                    if let Frame::Ping(d) = o.frame() {
                        if self.auto_pong {
                            let _ = self.w().send(&[Frame::Pong(d)]);
                        }
                    }
                }
                Recv::Eof => return fail(what, "the transport was closed without CLOSE"),
                Recv::Failed(e) => return fail(what, format!("transport error without CLOSE: {e}")),
                Recv::Bad(e) => return fail(what, format!("bytes that do not decode: {e:?}")),
                Recv::Timeout => return fail(what, format!("no CLOSE within {} ms", timeout.as_millis())),
            }
        }
    }

    /// Waits for the implementation to give up on an idle connection: CLOSE(IDLE_TIMEOUT), or —
    /// when its HELLO offered session resumption — the end of the transport without CLOSE (the
    /// session is suspended, not ended: SPEC.md §13.2 makes the CLOSE optional then).
    pub fn expect_idle_end(&mut self, timeout: Duration) -> R {
        if self.peer_session().is_empty() {
            return self.expect_close_in(&[Status::IDLE_TIMEOUT], timeout);
        }
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.w().recv(left) {
                Recv::Frame(o) => match o.frame() {
                    Frame::Close { status: Status::IDLE_TIMEOUT, .. } => return Ok(()),
                    Frame::Close { .. } => {
                        return fail("CLOSE IDLE_TIMEOUT or the end of the transport", describe(&o.frame()))
                    }
                    _ => {}
                },
                Recv::Eof | Recv::Failed(_) => return Ok(()),
                Recv::Bad(e) => {
                    return fail(
                        "CLOSE IDLE_TIMEOUT or the end of the transport",
                        format!("undecodable bytes: {e:?}"),
                    )
                }
                Recv::Timeout => {
                    return fail(
                        "CLOSE IDLE_TIMEOUT or the end of the transport",
                        format!("the connection stayed open for {} ms", timeout.as_millis()),
                    )
                }
            }
        }
    }

    /// Requires the transport to end without any CLOSE from the implementation (frames other than
    /// CLOSE are tolerated).
    pub fn expect_eof_without_close(&mut self) -> R {
        let end = Instant::now() + T;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.w().recv(left) {
                Recv::Frame(o) => {
                    if let Frame::Close { .. } = o.frame() {
                        return fail("the transport closed without a CLOSE in answer", describe(&o.frame()));
                    }
                }
                Recv::Eof | Recv::Failed(_) => return Ok(()),
                Recv::Bad(e) => return fail("the end of the transport", format!("undecodable bytes: {e:?}")),
                Recv::Timeout => return fail("the end of the transport", "the transport stayed open"),
            }
        }
    }

    /// Requires that nothing fatal (CLOSE, end of transport) happens for `d`; PINGs are answered.
    pub fn quiet(&mut self, d: Duration) -> R {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.w().recv(left) {
                Recv::Frame(o) => match o.frame() {
                    Frame::Close { .. } => return fail("the connection to stay open", describe(&o.frame())),
                    Frame::Ping(d) if self.auto_pong => self.send(&[Frame::Pong(d)])?,
                    _ => self.stash.push(o.clone()),
                },
                Recv::Timeout => return Ok(()),
                Recv::Eof => return fail("the connection to stay open", "the transport was closed"),
                Recv::Failed(e) => return fail("the connection to stay open", e),
                Recv::Bad(e) => {
                    return fail("the connection to stay open", format!("undecodable bytes: {e:?}"))
                }
            }
        }
    }

    /// Requires that no frame matching `pred` arrives for `d` (and the connection stays open).
    pub fn none(&mut self, what: &str, d: Duration, pred: impl Fn(&Frame<'_>) -> bool) -> R {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.w().recv(left) {
                Recv::Frame(o) => {
                    let f = o.frame();
                    if pred(&f) {
                        return fail(format!("no {what}"), describe(&f));
                    }
                    match f {
                        Frame::Close { .. } => return fail("the connection to stay open", describe(&f)),
                        Frame::Ping(d) if self.auto_pong => self.send(&[Frame::Pong(d)])?,
                        _ => self.stash.push(o.clone()),
                    }
                }
                Recv::Timeout => return Ok(()),
                Recv::Eof => return fail("the connection to stay open", "the transport was closed"),
                Recv::Failed(e) => return fail("the connection to stay open", e),
                Recv::Bad(e) => {
                    return fail("the connection to stay open", format!("undecodable bytes: {e:?}"))
                }
            }
        }
    }

    /// Checks that the connection still works: PING is answered by its PONG.
    pub fn alive(&mut self) -> R {
        let data = *b"alive?!\x01";
        self.send(&[Frame::Ping(data)])?;
        self.expect("PONG answering the runner's PING (the connection must still be usable)", T, |f| {
            *f == Frame::Pong(data)
        })?;
        Ok(())
    }

    /// The largest body the runner may send to the implementation.
    pub fn peer_frame(&self) -> usize {
        self.p(1) as usize
    }

    /// Sends a message (CALL, NOTIFY, STREAM_OPEN or STREAM_DATA), fragmented to fit the
    /// implementation's frame limit.
    pub fn send_msg(&mut self, ty: u8, r: Request<'_>) -> R {
        let max = self.peer_frame();
        let whole = msg_frame(ty, r, r.payload, None, r.flags);
        if whole.body_len() <= max {
            return self.send(&[whole]);
        }
        let total = r.payload.len() as u64;
        let overhead = msg_frame(ty, r, &[], Some(total), r.flags | flags::MORE).body_len();
        let n = max.saturating_sub(overhead).min(r.payload.len() - 1);
        let first = msg_frame(ty, r, &r.payload[..n], Some(total), r.flags | flags::MORE);
        let mut frames = vec![crate::wire::encode(&first)];
        let mut at = n;
        while at < r.payload.len() {
            let room = max - 12;
            let end = (at + room).min(r.payload.len());
            let more = if end < r.payload.len() { flags::MORE } else { 0 };
            frames.push(crate::wire::encode(&Frame::Continuation {
                flags: more,
                id: r.id,
                payload: &r.payload[at..end],
            }));
            at = end;
        }
        if self.w().is_packet() {
            for f in frames {
                self.send_bytes(&f)?;
            }
            Ok(())
        } else {
            let all: Vec<u8> = frames.concat();
            self.send_bytes(&all)
        }
    }

    /// Receives the rest of a message whose first frame had MORE; returns the whole payload.
    pub fn reassemble(&mut self, id: u64, first: &[u8], total: u64) -> R<Vec<u8>> {
        let mut out = first.to_vec();
        loop {
            let o = self.expect(&format!("CONTINUATION of message {id}"), T, |f| {
                matches!(f, Frame::Continuation { .. })
            })?;
            if let Frame::Continuation { flags: fl, id: cid, payload } = o.frame() {
                if cid != id {
                    return fail(format!("CONTINUATION id={id}"), describe(&o.frame()));
                }
                out.extend_from_slice(payload);
                if fl & flags::MORE == 0 {
                    if out.len() as u64 != total {
                        return fail(format!("{total} bytes in all"), format!("{}", out.len()));
                    }
                    return Ok(out);
                }
            }
        }
    }

    /// Waits for the RESPONSE to `id`; returns (status, payload) with the payload reassembled.
    pub fn response(&mut self, id: u64) -> R<(Status, Vec<u8>)> {
        self.response_in(id, T)
    }

    /// [`response`](Self::response) with a timeout.
    pub fn response_in(&mut self, id: u64, t: Duration) -> R<(Status, Vec<u8>)> {
        let o = self.expect(
            &format!("RESPONSE id={id}"),
            t,
            |f| matches!(f, Frame::Response { id: x, .. } if *x == id),
        )?;
        if let Frame::Response { status, total_len, payload, .. } = o.frame() {
            let p = match total_len {
                Some(t) => self.reassemble(id, payload, t)?,
                None => payload.to_vec(),
            };
            return Ok((status, p));
        }
        unreachable!()
    }

    /// Calls a method of the test service and waits for its response.
    pub fn call(&mut self, m: u32, payload: &[u8]) -> R<(Status, Vec<u8>)> {
        let id = self.id();
        self.send_msg(tandem_core::frame::ty::CALL, req(id, m, payload))?;
        self.response(id)
    }

    /// Calls and requires OK.
    pub fn call_ok(&mut self, m: u32, payload: &[u8]) -> R<Vec<u8>> {
        let (s, p) = self.call(m, payload)?;
        if s != Status::OK {
            return fail(format!("RESPONSE OK to method {MODULE}/{m}"), format!("{s:?}"));
        }
        Ok(p)
    }

    /// What the test service recorded for this runner's name.
    pub fn recorded(&mut self) -> R<Vec<Vec<u8>>> {
        let p = self.call_ok(method::RECORDED, b"")?;
        service::parse_recorded(&p)
            .map_or_else(|| fail("a well-formed RECORDED answer", format!("{p:02x?}")), Ok)
    }

    /// Waits until the service has recorded `entry`.
    pub fn wait_recorded(&mut self, entry: &[u8]) -> R {
        let end = Instant::now() + T;
        loop {
            let r = self.recorded()?;
            if r.iter().any(|e| e == entry) {
                return Ok(());
            }
            if Instant::now() >= end {
                let got: Vec<String> = r.iter().map(|e| String::from_utf8_lossy(e).into_owned()).collect();
                return fail(
                    format!("the record {:?}", String::from_utf8_lossy(entry)),
                    format!("records {got:?}"),
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a CALLBACK request (without waiting for its response); returns its id.
    pub fn callback(&mut self, kind: u8, m: MethodId, timeout_ms: u32, payload: &[u8]) -> R<u64> {
        let id = self.id();
        let body = service::Callback { kind, method: m, timeout_ms, payload: payload.to_vec() }.encode();
        self.send_msg(tandem_core::frame::ty::CALL, req(id, method::CALLBACK, &body))?;
        Ok(id)
    }

    /// Waits for the CALLBACK response: (status of the inner exchange, payload).
    pub fn callback_result(&mut self, id: u64) -> R<(Status, Vec<u8>)> {
        let (s, p) = self.response(id)?;
        if s != Status::OK || p.len() < 4 {
            return fail("RESPONSE OK to CALLBACK with a status", format!("{s:?} {p:02x?}"));
        }
        Ok((Status(u32::from_be_bytes([p[0], p[1], p[2], p[3]])), p[4..].to_vec()))
    }
}

/// A message frame of type `ty` carrying `payload`.
pub fn msg_frame<'a>(ty: u8, r: Request<'a>, payload: &'a [u8], total: Option<u64>, fl: u8) -> Frame<'a> {
    use tandem_core::frame::ty as t;
    let rq = Request { flags: fl, total_len: total, payload, ..r };
    match ty {
        t::CALL => Frame::Call(rq),
        t::NOTIFY => Frame::Notify(rq),
        t::STREAM_OPEN => Frame::StreamOpen(rq),
        t::STREAM_DATA => Frame::StreamData { flags: fl, id: r.id, total_len: total, payload },
        _ => unreachable!("not a message type"),
    }
}
