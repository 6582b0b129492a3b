//! The cases not yet moved to their section's module (temporary, during the reshaping).
#![allow(dead_code, unused_imports)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_core::frame::{flags, ty, Decoded, Frame, Request};
use tandem_core::{MethodId, Status};

use crate::service::{entry, kind, method, MODULE};
use crate::suite::{fail, hello_bytes, req, skip, Case, Ctx, Fail, Role, QUIET, R, T};
use crate::wire::{describe, encode, Recv};

const PE: Status = Status::PROTOCOL_ERROR;
const FEE: Status = Status::FRAME_ENCODING_ERROR;
const FTL: Status = Status::FRAME_TOO_LARGE;
const FCE: Status = Status::FLOW_CONTROL_ERROR;
const LIM: Status = Status::LIMIT_EXCEEDED;

#[path = "sec13.rs"]
mod sec13;
#[path = "sec14.rs"]
mod sec14;

/// A method of the runner itself (the implementation calls it back).
const RUNNER_METHOD: MethodId = MethodId::new(7, 1);

fn be(x: u32) -> Vec<u8> {
    x.to_be_bytes().to_vec()
}

struct B {
    cases: Vec<Case>,
    n: BTreeMap<String, usize>,
}

impl B {
    fn add(
        &mut self,
        role: Role,
        sec: &str,
        title: &str,
        quote: &str,
        skip: Option<&str>,
        body: crate::suite::Body,
    ) {
        let k = self.n.entry(sec.to_string()).or_insert(0);
        *k += 1;
        self.cases.push(Case {
            id: format!("{sec}/{k}"),
            section: sec.to_string(),
            title: title.to_string(),
            requirement: quote.to_string(),
            role,
            skip: skip.map(str::to_string),
            body,
        });
    }
    /// A case where the runner dials.
    fn d(&mut self, sec: &str, title: &str, quote: &str, f: impl Fn(&mut Ctx) -> R + Send + Sync + 'static) {
        self.add(Role::RunnerDials, sec, title, quote, None, Arc::new(f));
    }
    /// A case where the implementation dials.
    fn a(&mut self, sec: &str, title: &str, quote: &str, f: impl Fn(&mut Ctx) -> R + Send + Sync + 'static) {
        self.add(Role::RunnerAccepts, sec, title, quote, None, Arc::new(f));
    }
    /// A case that is always skipped.
    fn s(&mut self, sec: &str, title: &str, quote: &str, reason: &str) {
        self.add(Role::RunnerDials, sec, title, quote, Some(reason), Arc::new(|_| Ok(())));
    }
    /// After the handshake, `bytes` must end the connection with `status`.
    fn fatal(&mut self, sec: &str, title: &str, quote: &str, bytes: Vec<u8>, status: Status) {
        self.d(sec, title, quote, move |c| {
            c.open()?;
            c.send_bytes(&bytes)?;
            c.expect_close(status)
        });
    }
    /// `bytes` as the first frame must end the connection with `status`.
    fn first(&mut self, sec: &str, title: &str, quote: &str, bytes: Vec<u8>, status: Status) {
        self.d(sec, title, quote, move |c| {
            c.transport()?;
            c.send_bytes(&bytes)?;
            c.expect_close(status)
        });
    }
    /// After the handshake, `bytes` must be ignored (the connection stays usable).
    fn ignored(&mut self, sec: &str, title: &str, quote: &str, bytes: Vec<u8>) {
        self.d(sec, title, quote, move |c| {
            c.open()?;
            c.send_bytes(&bytes)?;
            c.alive()
        });
    }
}

fn e(f: Frame<'_>) -> Vec<u8> {
    encode(&f)
}

fn call(id: u64, m: u32, p: &[u8]) -> Vec<u8> {
    e(Frame::Call(req(id, m, p)))
}

fn expect_call(c: &mut Ctx) -> R<(u64, u32, u32, u64, Vec<u8>)> {
    let o = c.expect("CALL from the implementation", T, |f| matches!(f, Frame::Call(_)))?;
    if let Frame::Call(r) = o.frame() {
        let p = match r.total_len {
            Some(t) => c.reassemble(r.id, r.payload, t)?,
            None => r.payload.to_vec(),
        };
        return Ok((r.id, r.module, r.method, r.budget_us, p));
    }
    unreachable!()
}

fn expect_open(c: &mut Ctx, what: &str, pred: impl Fn(&Frame<'_>) -> bool) -> R<(u64, u8)> {
    let o = c.expect(what, T, pred)?;
    match o.frame() {
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => Ok((r.id, r.flags)),
        f => fail(what, describe(&f)),
    }
}

fn status_is(what: &str, got: Status, want: Status) -> R {
    if got == want {
        Ok(())
    } else {
        fail(format!("{what} {want:?}"), format!("{got:?}"))
    }
}

/// Reads the items and the terminal of the implementation's direction of stream `id`.
fn drain_stream(c: &mut Ctx, id: u64, t: Duration) -> R<(Vec<Vec<u8>>, Frame<'static>)> {
    let mut items = Vec::new();
    loop {
        let o = c.expect(&format!("STREAM_DATA or a terminal on stream {id}"), t, |f| match f {
            Frame::StreamData { id: x, .. }
            | Frame::StreamFin { id: x, .. }
            | Frame::StreamReset { id: x, .. } => *x == id,
            _ => false,
        })?;
        match o.frame() {
            Frame::StreamData { total_len, payload, .. } => {
                let p = match total_len {
                    Some(t) => c.reassemble(id, payload, t)?,
                    None => payload.to_vec(),
                };
                items.push(p);
            }
            Frame::StreamFin { id, status } => return Ok((items, Frame::StreamFin { id, status })),
            Frame::StreamReset { id, status } => return Ok((items, Frame::StreamReset { id, status })),
            _ => unreachable!(),
        }
    }
}

fn open_stream(c: &mut Ctx, m: u32, init: &[u8], fin: bool) -> R<u64> {
    let id = c.id();
    let mut r = req(id, m, init);
    if fin {
        r.flags = flags::FIN;
    }
    c.send_msg(ty::STREAM_OPEN, r)?;
    Ok(id)
}

fn count_init(n: u32, size: Option<u32>) -> Vec<u8> {
    let mut v = be(n);
    if let Some(s) = size {
        v.extend_from_slice(&be(s));
    }
    v
}

fn fin_ok(f: &Frame<'_>) -> R {
    match f {
        Frame::StreamFin { status: Status::OK, .. } => Ok(()),
        f => fail("STREAM_FIN OK", describe(f)),
    }
}

fn bigbuf(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The handwritten scenarios, in SPEC.md order.
pub fn handwritten() -> Vec<Case> {
    let mut b = B { cases: Vec::new(), n: BTreeMap::new() };
    sec12_15(&mut b);
    b.cases
}

fn sec12_15(b: &mut B) {
    sec13::sec13(b);
    sec14::sec14(b);
}
