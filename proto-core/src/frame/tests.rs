//! Tests of the frame codec against the wire contract (SPEC.md §3–§4, design notes).
//!
//! * Hand-checked bytes for every frame type, derived from the layout table, not from the encoder.
//! * Every malformed form is rejected with its specific [`DecodeError`].
//! * quickcheck properties over [`OwnedFrame`], an owned description of a frame that generates every
//!   variant with values concentrated on edge cases. It is `pub(crate)` so that other test modules
//!   of the crate can reuse it (`crate::frame::tests::OwnedFrame`).
//!
//! Besides [`Frame::encode`], this module has its own *reference encoder* ([`OwnedFrame::fields`]),
//! written from the layout table: it checks the encoder independently and lets the tests rewrite
//! single fields (a longer varint, an out-of-range value) anywhere in any frame.

use super::*;
use quickcheck::{Arbitrary, Gen, QuickCheck};

// ---------------------------------------------------------------------------------------------
// Owned frames and the generator
// ---------------------------------------------------------------------------------------------

/// Owned form of [`Request`] (CALL, NOTIFY, STREAM_OPEN).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedRequest {
    pub(crate) flags: u8,
    pub(crate) id: u64,
    pub(crate) module: u32,
    pub(crate) method: u32,
    pub(crate) budget_us: u64,
    pub(crate) total_len: Option<u64>,
    pub(crate) payload: Vec<u8>,
}

impl OwnedRequest {
    fn view(&self) -> Request<'_> {
        Request {
            flags: self.flags,
            id: self.id,
            module: self.module,
            method: self.method,
            budget_us: self.budget_us,
            total_len: self.total_len,
            payload: &self.payload,
        }
    }

    fn from_view(r: &Request<'_>) -> Self {
        OwnedRequest {
            flags: r.flags,
            id: r.id,
            module: r.module,
            method: r.method,
            budget_us: r.budget_us,
            total_len: r.total_len,
            payload: r.payload.to_vec(),
        }
    }
}

/// HELLO parameters or ACK ranges: the `(u64, u64)` pairs and their wire encoding as produced by
/// [`Params::encode_into`] / [`Ack::encode_into`] (so only valid lists can be built).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OwnedPairs {
    pairs: Vec<(u64, u64)>,
    raw: Vec<u8>,
}

impl OwnedPairs {
    /// HELLO parameters; `None` if [`Params::encode_into`] refuses them.
    pub(crate) fn params(pairs: &[(u64, u64)]) -> Option<Self> {
        let mut buf = vec![0u8; pairs.len() * 16];
        let p = Params::encode_into(pairs, &mut buf)?;
        assert_eq!(p.len(), pairs.len());
        assert!(p.iter().eq(pairs.iter().copied()));
        Some(OwnedPairs { pairs: pairs.to_vec(), raw: p.raw().to_vec() })
    }

    /// ACK ranges; `None` if [`Ack::encode_into`] refuses them.
    pub(crate) fn ack(ranges: &[(u64, u64)]) -> Option<Self> {
        let mut buf = vec![0u8; ranges.len() * 16];
        let a = Ack::encode_into(ranges, &mut buf)?;
        assert_eq!(a.len(), ranges.len());
        assert!(a.iter().eq(ranges.iter().copied()));
        Some(OwnedPairs { pairs: ranges.to_vec(), raw: a.raw.to_vec() })
    }

    /// The pairs, in order.
    pub(crate) fn pairs(&self) -> &[(u64, u64)] {
        &self.pairs
    }

    fn as_params(&self) -> Params<'_> {
        Params { count: self.pairs.len(), raw: &self.raw }
    }

    fn as_ack(&self) -> Ack<'_> {
        Ack { count: self.pairs.len(), raw: &self.raw }
    }
}

/// An owned description of one [`Frame`]; [`OwnedFrame::frame`] gives the borrowed view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OwnedFrame {
    Hello {
        min_version: u32,
        max_version: u32,
        flags: u64,
        name: Vec<u8>,
        auth: Vec<u8>,
        session: Vec<u8>,
        params: OwnedPairs,
    },
    Close {
        status: Status,
        message: Vec<u8>,
    },
    GoAway {
        bound: u64,
        status: Status,
        message: Vec<u8>,
    },
    Ping([u8; 8]),
    Pong([u8; 8]),
    Ack(OwnedPairs),
    Call(OwnedRequest),
    Notify(OwnedRequest),
    Signal {
        module: u32,
        method: u32,
        payload: Vec<u8>,
    },
    SignalKeyed {
        module: u32,
        method: u32,
        key: [u8; 8],
        payload: Vec<u8>,
    },
    Keyed {
        ty: u8,
        key: [u8; 8],
        req: OwnedRequest,
    },
    Response {
        flags: u8,
        id: u64,
        status: Status,
        total_len: Option<u64>,
        payload: Vec<u8>,
    },
    Cancel {
        id: u64,
    },
    StreamOpen(OwnedRequest),
    StreamData {
        flags: u8,
        id: u64,
        total_len: Option<u64>,
        payload: Vec<u8>,
    },
    StreamFin {
        id: u64,
        status: Status,
    },
    StreamReset {
        id: u64,
        status: Status,
    },
    StreamCredit {
        id: u64,
        msgs: u32,
        bytes: u32,
    },
    ConnCredit {
        bytes: u32,
    },
    StreamResume {
        id: u64,
        received: u64,
    },
    Continuation {
        flags: u8,
        id: u64,
        payload: Vec<u8>,
    },
    Extension {
        ty: u8,
        body: Vec<u8>,
    },
}

impl OwnedFrame {
    /// The borrowed frame.
    pub(crate) fn frame(&self) -> Frame<'_> {
        match self {
            OwnedFrame::Hello { min_version, max_version, flags, name, auth, session, params } => {
                Frame::Hello(Hello {
                    min_version: *min_version,
                    max_version: *max_version,
                    flags: *flags,
                    name,
                    auth,
                    session,
                    params: params.as_params(),
                })
            }
            OwnedFrame::Close { status, message } => Frame::Close { status: *status, message },
            OwnedFrame::GoAway { bound, status, message } => {
                Frame::GoAway { bound: *bound, status: *status, message }
            }
            OwnedFrame::Ping(d) => Frame::Ping(*d),
            OwnedFrame::Pong(d) => Frame::Pong(*d),
            OwnedFrame::Ack(a) => Frame::Ack(a.as_ack()),
            OwnedFrame::Call(r) => Frame::Call(r.view()),
            OwnedFrame::Notify(r) => Frame::Notify(r.view()),
            OwnedFrame::Signal { module, method, payload } => {
                Frame::Signal { module: *module, method: *method, payload }
            }
            OwnedFrame::SignalKeyed { module, method, key, payload } => {
                Frame::SignalKeyed { module: *module, method: *method, key: SchemaKey(*key), payload }
            }
            OwnedFrame::Keyed { ty, key, req } => {
                Frame::Keyed { ty: *ty, key: SchemaKey(*key), req: req.view() }
            }
            OwnedFrame::Response { flags, id, status, total_len, payload } => {
                Frame::Response { flags: *flags, id: *id, status: *status, total_len: *total_len, payload }
            }
            OwnedFrame::Cancel { id } => Frame::Cancel { id: *id },
            OwnedFrame::StreamOpen(r) => Frame::StreamOpen(r.view()),
            OwnedFrame::StreamData { flags, id, total_len, payload } => {
                Frame::StreamData { flags: *flags, id: *id, total_len: *total_len, payload }
            }
            OwnedFrame::StreamFin { id, status } => Frame::StreamFin { id: *id, status: *status },
            OwnedFrame::StreamReset { id, status } => Frame::StreamReset { id: *id, status: *status },
            OwnedFrame::StreamCredit { id, msgs, bytes } => {
                Frame::StreamCredit { id: *id, msgs: *msgs, bytes: *bytes }
            }
            OwnedFrame::ConnCredit { bytes } => Frame::ConnCredit { bytes: *bytes },
            OwnedFrame::StreamResume { id, received } => Frame::StreamResume { id: *id, received: *received },
            OwnedFrame::Continuation { flags, id, payload } => {
                Frame::Continuation { flags: *flags, id: *id, payload }
            }
            OwnedFrame::Extension { ty, body } => Frame::Extension { ty: *ty, body },
        }
    }

    /// The owned copy of a decoded frame.
    pub(crate) fn from_frame(f: &Frame<'_>) -> Self {
        match *f {
            Frame::Hello(h) => OwnedFrame::Hello {
                min_version: h.min_version,
                max_version: h.max_version,
                flags: h.flags,
                name: h.name.to_vec(),
                auth: h.auth.to_vec(),
                session: h.session.to_vec(),
                params: OwnedPairs { pairs: h.params.iter().collect(), raw: h.params.raw().to_vec() },
            },
            Frame::Close { status, message } => OwnedFrame::Close { status, message: message.to_vec() },
            Frame::GoAway { bound, status, message } => {
                OwnedFrame::GoAway { bound, status, message: message.to_vec() }
            }
            Frame::Ping(d) => OwnedFrame::Ping(d),
            Frame::Pong(d) => OwnedFrame::Pong(d),
            Frame::Ack(a) => OwnedFrame::Ack(OwnedPairs { pairs: a.iter().collect(), raw: a.raw.to_vec() }),
            Frame::Call(r) => OwnedFrame::Call(OwnedRequest::from_view(&r)),
            Frame::Notify(r) => OwnedFrame::Notify(OwnedRequest::from_view(&r)),
            Frame::Signal { module, method, payload } => {
                OwnedFrame::Signal { module, method, payload: payload.to_vec() }
            }
            Frame::SignalKeyed { module, method, key, payload } => {
                OwnedFrame::SignalKeyed { module, method, key: key.0, payload: payload.to_vec() }
            }
            Frame::Keyed { ty, key, req } => {
                OwnedFrame::Keyed { ty, key: key.0, req: OwnedRequest::from_view(&req) }
            }
            Frame::Response { flags, id, status, total_len, payload } => {
                OwnedFrame::Response { flags, id, status, total_len, payload: payload.to_vec() }
            }
            Frame::Cancel { id } => OwnedFrame::Cancel { id },
            Frame::StreamOpen(r) => OwnedFrame::StreamOpen(OwnedRequest::from_view(&r)),
            Frame::StreamData { flags, id, total_len, payload } => {
                OwnedFrame::StreamData { flags, id, total_len, payload: payload.to_vec() }
            }
            Frame::StreamFin { id, status } => OwnedFrame::StreamFin { id, status },
            Frame::StreamReset { id, status } => OwnedFrame::StreamReset { id, status },
            Frame::StreamCredit { id, msgs, bytes } => OwnedFrame::StreamCredit { id, msgs, bytes },
            Frame::ConnCredit { bytes } => OwnedFrame::ConnCredit { bytes },
            Frame::StreamResume { id, received } => OwnedFrame::StreamResume { id, received },
            Frame::Continuation { flags, id, payload } => {
                OwnedFrame::Continuation { flags, id, payload: payload.to_vec() }
            }
            Frame::Extension { ty, body } => OwnedFrame::Extension { ty, body: body.to_vec() },
        }
    }

    /// The canonical encoding, via [`Frame::encode`].
    pub(crate) fn encode(&self) -> Vec<u8> {
        enc(&self.frame())
    }

    /// The type code.
    pub(crate) fn ty(&self) -> u8 {
        self.frame().ty()
    }

    /// The "rest of body" byte string (payload or extension body), if the type has one.
    fn rest_mut(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            OwnedFrame::Call(r)
            | OwnedFrame::Notify(r)
            | OwnedFrame::StreamOpen(r)
            | OwnedFrame::Keyed { req: r, .. } => Some(&mut r.payload),
            OwnedFrame::Signal { payload, .. }
            | OwnedFrame::SignalKeyed { payload, .. }
            | OwnedFrame::Response { payload, .. }
            | OwnedFrame::StreamData { payload, .. }
            | OwnedFrame::Continuation { payload, .. } => Some(payload),
            OwnedFrame::Extension { body, .. } => Some(body),
            _ => None,
        }
    }

    /// Length of the "rest of body" field (0 for types without one).
    fn rest_len(&self) -> usize {
        rest_of(&self.frame()).map_or(0, <[u8]>::len)
    }

    /// total_len when MORE is set.
    fn total_len(&self) -> Option<u64> {
        match self {
            OwnedFrame::Call(r)
            | OwnedFrame::Notify(r)
            | OwnedFrame::StreamOpen(r)
            | OwnedFrame::Keyed { req: r, .. } => r.total_len,
            OwnedFrame::Response { total_len, .. } | OwnedFrame::StreamData { total_len, .. } => *total_len,
            _ => None,
        }
    }

    /// The body as a list of fields, written from the layout table (the reference encoder).
    fn fields(&self) -> Vec<Field> {
        let mut f = Vec::new();
        fn bytes(f: &mut Vec<Field>, b: &[u8]) {
            f.push(var(b.len() as u64));
            f.push(Field::Raw(b.to_vec()));
        }
        fn request(f: &mut Vec<Field>, r: &OwnedRequest, key: Option<&[u8; 8]>) {
            f.push(Field::U8(r.flags | if key.is_some() { flags::KEY } else { 0 }));
            f.push(var(r.id));
            f.push(var32(r.module));
            f.push(var32(r.method));
            f.extend(key.map(|k| Field::Raw(k.to_vec())));
            f.push(var(r.budget_us));
            f.extend(r.total_len.map(var));
            f.push(Field::Raw(r.payload.clone()));
        }
        match self {
            OwnedFrame::Hello { min_version, max_version, flags, name, auth, session, params } => {
                f.push(Field::Raw(b"TNDM".to_vec()));
                f.push(var32(*min_version));
                f.push(var32(*max_version));
                f.push(var(*flags));
                bytes(&mut f, name);
                bytes(&mut f, auth);
                bytes(&mut f, session);
                f.push(var(params.pairs().len() as u64));
                for &(id, v) in params.pairs() {
                    f.push(var(id));
                    f.push(var(v));
                }
            }
            OwnedFrame::Close { status, message } => {
                f.push(var32(status.0));
                bytes(&mut f, message);
            }
            OwnedFrame::GoAway { bound, status, message } => {
                f.push(var(*bound));
                f.push(var32(status.0));
                bytes(&mut f, message);
            }
            OwnedFrame::Ping(d) | OwnedFrame::Pong(d) => f.push(Field::Raw(d.to_vec())),
            OwnedFrame::Ack(a) => {
                f.push(var(a.pairs().len() as u64));
                for &(first, n) in a.pairs() {
                    f.push(var(first));
                    f.push(var(n));
                }
            }
            OwnedFrame::Call(r) | OwnedFrame::Notify(r) | OwnedFrame::StreamOpen(r) => {
                request(&mut f, r, None)
            }
            OwnedFrame::Keyed { key, req, .. } => request(&mut f, req, Some(key)),
            OwnedFrame::Signal { module, method, payload } => {
                f.push(var32(*module));
                f.push(var32(*method));
                f.push(Field::Raw(payload.clone()));
            }
            OwnedFrame::SignalKeyed { module, method, key, payload } => {
                f.push(var32(*module));
                f.push(var32(*method));
                f.push(Field::Raw(key.to_vec()));
                f.push(Field::Raw(payload.clone()));
            }
            OwnedFrame::Response { flags, id, status, total_len, payload } => {
                f.push(Field::U8(*flags));
                f.push(var(*id));
                f.push(var32(status.0));
                f.extend(total_len.map(var));
                f.push(Field::Raw(payload.clone()));
            }
            OwnedFrame::Cancel { id } => f.push(var(*id)),
            OwnedFrame::StreamData { flags, id, total_len, payload } => {
                f.push(Field::U8(*flags));
                f.push(var(*id));
                f.extend(total_len.map(var));
                f.push(Field::Raw(payload.clone()));
            }
            OwnedFrame::StreamFin { id, status } | OwnedFrame::StreamReset { id, status } => {
                f.push(var(*id));
                f.push(var32(status.0));
            }
            OwnedFrame::StreamCredit { id, msgs, bytes } => {
                f.push(var(*id));
                f.push(var32(*msgs));
                f.push(var32(*bytes));
            }
            OwnedFrame::ConnCredit { bytes } => f.push(var32(*bytes)),
            OwnedFrame::StreamResume { id, received } => {
                f.push(var(*id));
                f.push(var(*received));
            }
            OwnedFrame::Continuation { flags, id, payload } => {
                f.push(Field::U8(*flags));
                f.push(var(*id));
                f.push(Field::Raw(payload.clone()));
            }
            OwnedFrame::Extension { body, .. } => f.push(Field::Raw(body.clone())),
        }
        f
    }
}

// --- generator helpers ---

const VARINT_EDGES: [u64; 12] = [
    0,
    1,
    63,
    64,
    16383,
    16384,
    (1 << 30) - 1,
    1 << 30,
    1 << 32,
    (1 << 32) - 1,
    varint::MAX - 1,
    varint::MAX,
];
const U32_EDGES: [u32; 10] = [0, 1, 63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30, u32::MAX - 1, u32::MAX];
/// Payload lengths are at most this (16384 so that 2-/4-byte length boundaries are reachable).
const MAX_GEN_PAYLOAD: usize = 16384;

fn below(g: &mut Gen, n: u64) -> u64 {
    u64::arbitrary(g) % n
}

fn coin(g: &mut Gen, one_in: u64) -> bool {
    below(g, one_in) == 0
}

fn pick<T: Copy>(g: &mut Gen, xs: &[T]) -> T {
    *g.choose(xs).expect("non-empty")
}

/// A varint value (≤ 2^62-1): edge values, small values, or random in a random length class.
fn gen_varint(g: &mut Gen) -> u64 {
    match below(g, 4) {
        0 => pick(g, &VARINT_EDGES),
        1 => below(g, 64),
        2 => {
            let bits = pick(g, &[6u32, 14, 30, 62]);
            u64::arbitrary(g) & ((1u64 << bits) - 1)
        }
        _ => u64::arbitrary(g) & varint::MAX,
    }
}

fn gen_u32(g: &mut Gen) -> u32 {
    match below(g, 4) {
        0 => pick(g, &U32_EDGES),
        1 => below(g, 64) as u32,
        2 => {
            let bits = pick(g, &[6u32, 14, 30, 32]);
            (u64::arbitrary(g) & ((1u64 << bits) - 1)) as u32
        }
        _ => u32::arbitrary(g),
    }
}

fn gen_status(g: &mut Gen) -> Status {
    if coin(g, 2) {
        pick(g, Status::ALL).0
    } else {
        Status(gen_u32(g))
    }
}

fn gen_len(g: &mut Gen, cap: usize) -> usize {
    match below(g, 12) {
        0 => cap,
        1 | 2 => pick(g, &[0usize, 1, 63, 64, 255, 256, 1024, 16383, 16384]).min(cap),
        3 => 0,
        _ => below(g, g.size().min(cap) as u64 + 1) as usize,
    }
}

fn gen_bytes(g: &mut Gen, cap: usize) -> Vec<u8> {
    let n = gen_len(g, cap);
    if coin(g, 4) {
        vec![pick(g, &[0x00u8, 0x40, 0x80, 0xC0, 0xFF]); n]
    } else {
        (0..n).map(|_| u8::arbitrary(g)).collect()
    }
}

/// A total_len valid for a MORE frame carrying `payload` bytes: in (payload, 2^62-1].
fn gen_total(g: &mut Gen, payload: usize) -> u64 {
    let p = payload as u64;
    match below(g, 4) {
        0 => p + 1,
        1 => varint::MAX,
        2 => p + 1 + below(g, 1 << 16),
        _ => p + 1 + below(g, varint::MAX - p),
    }
}

fn gen_msg(g: &mut Gen, allowed: u8) -> (u8, Option<u64>, Vec<u8>) {
    let payload = gen_bytes(g, MAX_GEN_PAYLOAD);
    let more = allowed & flags::MORE != 0 && coin(g, 2);
    let fin = allowed & flags::FIN != 0 && coin(g, 2);
    let fl = if more { flags::MORE } else { 0 } | if fin { flags::FIN } else { 0 };
    let total = more.then(|| gen_total(g, payload.len()));
    (fl, total, payload)
}

fn gen_request(g: &mut Gen, allowed: u8) -> OwnedRequest {
    let (flags, total_len, payload) = gen_msg(g, allowed);
    OwnedRequest {
        flags,
        id: gen_varint(g),
        module: gen_u32(g),
        method: gen_u32(g),
        budget_us: gen_varint(g),
        total_len,
        payload,
    }
}

fn gen_count(g: &mut Gen, cap: usize) -> usize {
    match below(g, 6) {
        0 => cap,
        1 => 0,
        2 => 1,
        _ => below(g, cap as u64 + 1) as usize,
    }
}

fn gen_params(g: &mut Gen) -> OwnedPairs {
    let n = gen_count(g, MAX_PARAMS);
    let known = coin(g, 2);
    let mut ids: Vec<u64> = Vec::with_capacity(n);
    let mut tries = 0;
    while ids.len() < n {
        let id = if tries > 4 * n {
            u64::arbitrary(g) & varint::MAX
        } else if known && !coin(g, 4) {
            // Mostly the documented ids 1..=12, some unknown ones.
            1 + below(g, 12)
        } else {
            gen_varint(g)
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
        tries += 1;
    }
    ids.sort_unstable();
    let pairs: Vec<(u64, u64)> = ids.into_iter().map(|id| (id, gen_varint(g))).collect();
    OwnedPairs::params(&pairs).expect("valid params")
}

fn gen_ack(g: &mut Gen) -> OwnedPairs {
    let n = gen_count(g, MAX_ACK_RANGES);
    let ranges: Vec<(u64, u64)> = (0..n)
        .map(|_| {
            let count = match below(g, 5) {
                0 => 1,
                1 => 1 << 61,
                2 => 1 + below(g, 1 << 61),
                _ => 1 + below(g, 100),
            };
            let max_first = varint::MAX - 2 * (count - 1);
            let first = match below(g, 4) {
                0 => max_first,
                1 => 0,
                2 => pick(g, &VARINT_EDGES).min(max_first),
                _ => below(g, max_first + 1),
            };
            (first, count)
        })
        .collect();
    OwnedPairs::ack(&ranges).expect("valid ranges")
}

fn gen_opaque8(g: &mut Gen) -> [u8; 8] {
    match below(g, 3) {
        0 => [0; 8],
        1 => [0xFF; 8],
        _ => core::array::from_fn(|_| u8::arbitrary(g)),
    }
}

impl Arbitrary for OwnedFrame {
    fn arbitrary(g: &mut Gen) -> Self {
        match below(g, 23) {
            0 => OwnedFrame::Hello {
                min_version: gen_u32(g),
                max_version: gen_u32(g),
                flags: pick(g, &[0, Hello::RESUME]),
                name: gen_bytes(g, MAX_NAME_LEN),
                auth: gen_bytes(g, MAX_AUTH_LEN),
                session: gen_bytes(g, MAX_SESSION_LEN),
                params: gen_params(g),
            },
            1 => OwnedFrame::Close { status: gen_status(g), message: gen_bytes(g, MAX_REASON_LEN) },
            2 => OwnedFrame::GoAway {
                bound: gen_varint(g),
                status: gen_status(g),
                message: gen_bytes(g, MAX_REASON_LEN),
            },
            3 => OwnedFrame::Ping(gen_opaque8(g)),
            4 => OwnedFrame::Pong(gen_opaque8(g)),
            5 => OwnedFrame::Ack(gen_ack(g)),
            6 => OwnedFrame::Call(gen_request(g, flags::MORE)),
            7 => OwnedFrame::Notify(gen_request(g, flags::MORE)),
            8 => OwnedFrame::Signal {
                module: gen_u32(g),
                method: gen_u32(g),
                payload: gen_bytes(g, MAX_GEN_PAYLOAD),
            },
            9 => {
                let (flags, total_len, payload) = gen_msg(g, flags::MORE);
                OwnedFrame::Response { flags, id: gen_varint(g), status: gen_status(g), total_len, payload }
            }
            10 => OwnedFrame::Cancel { id: gen_varint(g) },
            11 => OwnedFrame::StreamOpen(gen_request(g, flags::MORE | flags::FIN)),
            12 => {
                let (flags, total_len, payload) = gen_msg(g, flags::MORE);
                OwnedFrame::StreamData { flags, id: gen_varint(g), total_len, payload }
            }
            13 => OwnedFrame::StreamFin { id: gen_varint(g), status: gen_status(g) },
            14 => OwnedFrame::StreamReset { id: gen_varint(g), status: gen_status(g) },
            15 => OwnedFrame::StreamCredit { id: gen_varint(g), msgs: gen_u32(g), bytes: gen_u32(g) },
            16 => OwnedFrame::ConnCredit { bytes: gen_u32(g) },
            17 => OwnedFrame::StreamResume { id: gen_varint(g), received: gen_varint(g) },
            18 => {
                let (flags, _, payload) = gen_msg(g, flags::MORE);
                OwnedFrame::Continuation { flags, id: gen_varint(g), payload }
            }
            19 => OwnedFrame::SignalKeyed {
                module: gen_u32(g),
                method: gen_u32(g),
                key: gen_opaque8(g),
                payload: gen_bytes(g, MAX_GEN_PAYLOAD),
            },
            20 | 21 => {
                let t = pick(g, &[ty::CALL, ty::NOTIFY, ty::STREAM_OPEN]);
                let allowed = if t == ty::STREAM_OPEN { flags::MORE | flags::FIN } else { flags::MORE };
                OwnedFrame::Keyed { ty: t, key: gen_opaque8(g), req: gen_request(g, allowed) }
            }
            _ => OwnedFrame::Extension {
                ty: match below(g, 3) {
                    0 => ty::EXTENSION_MIN,
                    1 => 0xFF,
                    _ => 0x80 | u8::arbitrary(g),
                },
                body: gen_bytes(g, MAX_GEN_PAYLOAD),
            },
        }
    }

    /// Shrinks the payload (a shorter payload keeps MORE's total_len valid) and zeroes simple
    /// numeric fields.
    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let mut out = Vec::new();
        if self.rest_len() > 0 {
            for keep in [0, self.rest_len() / 2] {
                let mut s = self.clone();
                s.rest_mut().expect("has rest").truncate(keep);
                out.push(s);
            }
        }
        match self {
            OwnedFrame::Cancel { id } if *id != 0 => out.push(OwnedFrame::Cancel { id: id / 2 }),
            OwnedFrame::Call(r) | OwnedFrame::Notify(r) | OwnedFrame::StreamOpen(r)
                if r.id != 0 || r.module != 0 || r.method != 0 || r.budget_us != 0 =>
            {
                let mut s = self.clone();
                if let OwnedFrame::Call(r) | OwnedFrame::Notify(r) | OwnedFrame::StreamOpen(r) = &mut s {
                    r.id = 0;
                    r.module = 0;
                    r.method = 0;
                    r.budget_us = 0;
                }
                out.push(s);
            }
            _ => {}
        }
        Box::new(out.into_iter())
    }
}

// ---------------------------------------------------------------------------------------------
// Reference encoder (from the layout table) and field rewriting
// ---------------------------------------------------------------------------------------------

/// One field of a frame body.
#[derive(Clone, Debug)]
enum Field {
    /// A flags byte.
    U8(u8),
    /// A varint written in `width` bytes (1, 2, 4 or 8); `u32_field` marks fields whose value
    /// must fit 32 bits.
    Var { v: u64, width: usize, u32_field: bool },
    /// Raw bytes (magic, opaque bytes, payload, the bytes of a `bytes` field).
    Raw(Vec<u8>),
}

/// Shortest varint width, written from the rule (not from `varint::len`).
fn canon_width(v: u64) -> usize {
    match v {
        0..=0x3F => 1,
        0x40..=0x3FFF => 2,
        0x4000..=0x3FFF_FFFF => 4,
        _ => 8,
    }
}

fn var(v: u64) -> Field {
    Field::Var { v, width: canon_width(v), u32_field: false }
}

fn var32(v: u32) -> Field {
    Field::Var { v: v.into(), width: canon_width(v.into()), u32_field: true }
}

/// Appends `v` as a varint of exactly `width` bytes (possibly non-canonical).
fn put_var(out: &mut Vec<u8>, v: u64, width: usize) {
    let (tag, bits) = match width {
        1 => (0u64, 6),
        2 => (1, 14),
        4 => (2, 30),
        8 => (3, 62),
        _ => unreachable!("varint width {width}"),
    };
    assert!(v < 1u64 << bits, "{v} does not fit a {width}-byte varint");
    let x = (tag << (8 * width - 2)) | v;
    out.extend_from_slice(&x.to_be_bytes()[8 - width..]);
}

fn write_fields(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Field::U8(b) => out.push(*b),
            Field::Var { v, width, .. } => put_var(&mut out, *v, *width),
            Field::Raw(b) => out.extend_from_slice(b),
        }
    }
    out
}

/// `type | length | body` with a length varint of `width` bytes.
fn frame_bytes_w(t: u8, body: &[u8], width: usize) -> Vec<u8> {
    let mut out = vec![t];
    put_var(&mut out, body.len() as u64, width);
    out.extend_from_slice(body);
    out
}

fn frame_bytes(t: u8, body: &[u8]) -> Vec<u8> {
    frame_bytes_w(t, body, canon_width(body.len() as u64))
}

// ---------------------------------------------------------------------------------------------
// Check helpers
// ---------------------------------------------------------------------------------------------

fn enc(f: &Frame<'_>) -> Vec<u8> {
    let mut out = vec![0u8; f.encoded_len()];
    assert_eq!(f.encode(&mut out), Some(out.len()), "{f:?}");
    out
}

/// The frame with its "rest of body" field replaced by `p`.
fn with_rest<'a>(f: Frame<'a>, p: &'a [u8]) -> Frame<'a> {
    match f {
        Frame::Call(r) => Frame::Call(Request { payload: p, ..r }),
        Frame::Notify(r) => Frame::Notify(Request { payload: p, ..r }),
        Frame::StreamOpen(r) => Frame::StreamOpen(Request { payload: p, ..r }),
        Frame::Signal { module, method, .. } => Frame::Signal { module, method, payload: p },
        Frame::SignalKeyed { module, method, key, .. } => {
            Frame::SignalKeyed { module, method, key, payload: p }
        }
        Frame::Keyed { ty, key, req } => Frame::Keyed { ty, key, req: Request { payload: p, ..req } },
        Frame::Response { flags, id, status, total_len, .. } => {
            Frame::Response { flags, id, status, total_len, payload: p }
        }
        Frame::StreamData { flags, id, total_len, .. } => {
            Frame::StreamData { flags, id, total_len, payload: p }
        }
        Frame::Continuation { flags, id, .. } => Frame::Continuation { flags, id, payload: p },
        Frame::Extension { ty, .. } => Frame::Extension { ty, body: p },
        other => panic!("{other:?} has no rest-of-body field"),
    }
}

fn rest_of<'a>(f: &Frame<'a>) -> Option<&'a [u8]> {
    match *f {
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) | Frame::Keyed { req: r, .. } => {
            Some(r.payload)
        }
        Frame::Signal { payload, .. }
        | Frame::SignalKeyed { payload, .. }
        | Frame::Response { payload, .. }
        | Frame::StreamData { payload, .. }
        | Frame::Continuation { payload, .. } => Some(payload),
        Frame::Extension { body, .. } => Some(body),
        _ => None,
    }
}

/// Encode/decode round trip, sizes, limits and the reference encoder. Returns the encoding.
fn check_roundtrip(f: &Frame<'_>) -> Vec<u8> {
    let bytes = enc(f);
    let n = bytes.len();
    assert_eq!(n, f.encoded_len());
    assert_eq!(n, 1 + canon_width(f.body_len() as u64) + f.body_len());

    // A buffer one byte short is refused; a longer one gets the same bytes and nothing more.
    let mut short = vec![0u8; n - 1];
    assert_eq!(f.encode(&mut short), None, "{f:?}");
    assert_eq!(f.encode(&mut []), None);
    let mut long = vec![0xA5u8; n + 4];
    assert_eq!(f.encode(&mut long), Some(n));
    assert_eq!(&long[..n], &bytes[..]);
    assert_eq!(&long[n..], &[0xA5; 4]);

    // Header.
    let (t, blen, hlen) = Frame::peek_header(&bytes, usize::MAX).unwrap().unwrap();
    assert_eq!((t, blen, hlen + blen), (f.ty(), f.body_len(), n));

    // Decoding, with limits at and just below the body length.
    assert_eq!(Frame::decode(&bytes, usize::MAX), Ok(Decoded::Frame(*f, n)));
    assert_eq!(Frame::decode(&bytes, blen), Ok(Decoded::Frame(*f, n)));
    if blen > 0 {
        assert_eq!(
            Frame::decode(&bytes, blen - 1),
            Err(DecodeError::FrameTooLarge { len: blen as u64, max: blen - 1 })
        );
    }
    assert_eq!(Frame::decode_body(t, &bytes[hlen..]), Ok(*f));

    // Bytes after the frame belong to the next one.
    let mut more = bytes.clone();
    more.extend_from_slice(&[0xFF, 0x00, 0x13]);
    assert_eq!(Frame::decode(&more, usize::MAX), Ok(Decoded::Frame(*f, n)));

    // The reference encoder agrees, and the owned copy is faithful.
    let o = OwnedFrame::from_frame(f);
    assert_eq!(o.frame(), *f);
    assert_eq!(frame_bytes(o.ty(), &write_fields(&o.fields())), bytes, "reference encoding of {f:?}");
    bytes
}

/// Every strict prefix: `decode` asks for more (never an error, never more than the frame), and
/// `decode_body` gives `Truncated` until the fixed fields are complete, then the same frame with a
/// shorter rest-of-body field.
fn check_prefixes(f: &Frame<'_>, bytes: &[u8]) {
    let n = bytes.len();
    for k in 0..n {
        match Frame::decode(&bytes[..k], usize::MAX) {
            Ok(Decoded::Incomplete(need)) => {
                assert!(need > k && need <= n, "prefix {k}/{n}: Incomplete({need}) for {f:?}")
            }
            other => panic!("prefix {k}/{n} of {f:?}: {other:?}"),
        }
        // Same with the exact limit: the length check passes as soon as the header is readable.
        assert!(matches!(Frame::decode(&bytes[..k], f.body_len()), Ok(Decoded::Incomplete(_))));
    }
    let hlen = n - f.body_len();
    let body = &bytes[hlen..];
    let rest = rest_of(f);
    let fixed = body.len() - rest.map_or(0, <[u8]>::len);
    // Every prefix that cuts a fixed field; of a long payload, only a sample.
    let step = (body.len() / 40).max(1);
    for k in (0..body.len()).filter(|&k| k < fixed + 70 || (k - fixed) % step == 0) {
        let r = Frame::decode_body(f.ty(), &body[..k]);
        if k < fixed {
            assert_eq!(r, Err(DecodeError::Truncated), "body prefix {k}/{} of {f:?}", body.len());
        } else {
            let p = rest.expect("only rest-of-body frames decode from a strict prefix");
            assert_eq!(r, Ok(with_rest(*f, &p[..k - fixed])), "body prefix {k}/{}", body.len());
        }
    }
}

/// Bytes after the last field: `TrailingBytes`, except where the last field is the rest of the
/// body (then it is longer payload, and `InvalidLength` if that reaches MORE's total_len).
fn check_trailing(o: &OwnedFrame) {
    let f = o.frame();
    let body = write_fields(&o.fields());
    for extra in [&[0u8][..], &[0xFF], &[0x40, 0x00], &[1, 2, 3, 4, 5, 6, 7, 8, 9]] {
        let mut b = body.clone();
        b.extend_from_slice(extra);
        let r = Frame::decode_body(o.ty(), &b);
        match rest_of(&f) {
            None => assert_eq!(r, Err(DecodeError::TrailingBytes), "{f:?} + {extra:?}"),
            Some(p) => {
                let new_len = (p.len() + extra.len()) as u64;
                if o.total_len().is_some_and(|t| t <= new_len) {
                    assert_eq!(r, Err(DecodeError::InvalidLength));
                } else {
                    let fixed = body.len() - p.len();
                    assert_eq!(r, Ok(with_rest(f, &b[fixed..])));
                }
            }
        }
        // Through `decode`, with the length prefix covering the extra bytes.
        let fb = frame_bytes(o.ty(), &b);
        assert_eq!(Frame::decode(&fb, usize::MAX).map(|_| ()), r.map(|_| ()));
    }
}

/// Each varint (and the length prefix), written longer than necessary, is `NonCanonicalVarint`.
fn check_noncanonical(o: &OwnedFrame) {
    let fields = o.fields();
    let t = o.ty();
    for (i, fld) in fields.iter().enumerate() {
        let Field::Var { v, width, u32_field } = *fld else { continue };
        for w in [2, 4, 8].into_iter().filter(|&w| w > width) {
            let mut fs = fields.clone();
            fs[i] = Field::Var { v, width: w, u32_field };
            let body = write_fields(&fs);
            assert_eq!(
                Frame::decode_body(t, &body),
                Err(DecodeError::NonCanonicalVarint),
                "field {i} ({v}) in {w} bytes, {o:?}"
            );
            assert_eq!(
                Frame::decode(&frame_bytes(t, &body), usize::MAX),
                Err(DecodeError::NonCanonicalVarint)
            );
        }
    }
    let body = write_fields(&fields);
    for w in [2, 4, 8].into_iter().filter(|&w| w > canon_width(body.len() as u64)) {
        let fb = frame_bytes_w(t, &body, w);
        assert_eq!(
            Frame::decode(&fb, usize::MAX),
            Err(DecodeError::NonCanonicalVarint),
            "length in {w} bytes"
        );
        // Reported as soon as the header is there.
        assert_eq!(Frame::decode(&fb[..1 + w], usize::MAX), Err(DecodeError::NonCanonicalVarint));
        assert_eq!(Frame::peek_header(&fb, usize::MAX), Err(DecodeError::NonCanonicalVarint));
    }
}

/// Each u32 field given a value above u32::MAX is `ValueOutOfRange`.
fn check_u32_ranges(o: &OwnedFrame) {
    let fields = o.fields();
    for (i, fld) in fields.iter().enumerate() {
        let Field::Var { u32_field: true, .. } = *fld else { continue };
        for bad in [1u64 << 32, (1 << 32) + 1, 1 << 40, varint::MAX] {
            let mut fs = fields.clone();
            fs[i] = var(bad);
            let body = write_fields(&fs);
            assert_eq!(
                Frame::decode_body(o.ty(), &body),
                Err(DecodeError::ValueOutOfRange),
                "field {i}, {o:?}"
            );
        }
    }
}

/// Everything above for one frame.
fn check_all(o: &OwnedFrame) {
    let f = o.frame();
    let bytes = check_roundtrip(&f);
    assert_eq!(o.encode(), bytes);
    assert_eq!(&OwnedFrame::from_frame(&f), o);
    check_prefixes(&f, &bytes);
    check_trailing(o);
    check_noncanonical(o);
    check_u32_ranges(o);
}

/// `check_all` plus the exact expected bytes.
fn check_exact(o: &OwnedFrame, expected: &[u8]) {
    assert_eq!(o.encode(), expected, "encoding of {o:?}");
    assert_eq!(Frame::decode(expected, usize::MAX), Ok(Decoded::Frame(o.frame(), expected.len())));
    check_all(o);
}

fn req(
    flags: u8,
    id: u64,
    module: u32,
    method: u32,
    budget_us: u64,
    total_len: Option<u64>,
    payload: &[u8],
) -> OwnedRequest {
    OwnedRequest { flags, id, module, method, budget_us, total_len, payload: payload.to_vec() }
}

fn params(pairs: &[(u64, u64)]) -> OwnedPairs {
    OwnedPairs::params(pairs).expect("valid params")
}

fn ack(ranges: &[(u64, u64)]) -> OwnedPairs {
    OwnedPairs::ack(ranges).expect("valid ranges")
}

fn hello(name: &[u8], auth: &[u8], session: &[u8], p: &[(u64, u64)]) -> OwnedFrame {
    OwnedFrame::Hello {
        min_version: 1,
        max_version: 1,
        flags: 0,
        name: name.to_vec(),
        auth: auth.to_vec(),
        session: session.to_vec(),
        params: params(p),
    }
}

/// A HELLO body built by hand without any validation.
fn raw_hello_body(flags: u64, name: &[u8], auth: &[u8], session: &[u8], pairs: &[(u64, u64)]) -> Vec<u8> {
    let mut b = b"TNDM".to_vec();
    put_var(&mut b, 1, 1);
    put_var(&mut b, 1, 1);
    put_var(&mut b, flags, canon_width(flags));
    for s in [name, auth, session] {
        put_var(&mut b, s.len() as u64, canon_width(s.len() as u64));
        b.extend_from_slice(s);
    }
    put_var(&mut b, pairs.len() as u64, canon_width(pairs.len() as u64));
    for &(id, v) in pairs {
        put_var(&mut b, id, canon_width(id));
        put_var(&mut b, v, canon_width(v));
    }
    b
}

/// An ACK body built by hand without any validation.
fn raw_ack_body(ranges: &[(u64, u64)]) -> Vec<u8> {
    let mut b = Vec::new();
    put_var(&mut b, ranges.len() as u64, canon_width(ranges.len() as u64));
    for &(first, n) in ranges {
        put_var(&mut b, first, canon_width(first));
        put_var(&mut b, n, canon_width(n));
    }
    b
}

const MAX62: u64 = (1 << 62) - 1;
const FF8: [u8; 8] = [0xFF; 8];

/// Every type code v1 defines.
const KNOWN_TYPES: [u8; 20] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x18, 0x19, 0x1A, 0x1B, 0x1C,
    0x1D, 0x1E, 0x20,
];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------------------------
// 1. Per frame type: exact bytes and edge cases
// ---------------------------------------------------------------------------------------------

#[test]
fn type_codes_match_the_table() {
    let types = [
        ty::HELLO,
        ty::CLOSE,
        ty::GOAWAY,
        ty::PING,
        ty::PONG,
        ty::ACK,
        ty::CALL,
        ty::NOTIFY,
        ty::SIGNAL,
        ty::RESPONSE,
        ty::CANCEL,
        ty::SIGNAL_KEYED,
        ty::STREAM_OPEN,
        ty::STREAM_DATA,
        ty::STREAM_FIN,
        ty::STREAM_RESET,
        ty::STREAM_CREDIT,
        ty::CONN_CREDIT,
        ty::STREAM_RESUME,
        ty::CONTINUATION,
    ];
    assert_eq!(types, KNOWN_TYPES);
    assert_eq!(ty::EXTENSION_MIN, 0x80);
    assert_eq!((flags::MORE, flags::FIN, flags::KEY), (0x01, 0x02, 0x04));
    assert_eq!(MAGIC, [0x54, 0x4E, 0x44, 0x4D]);
    assert_eq!(
        (MAX_NAME_LEN, MAX_AUTH_LEN, MAX_SESSION_LEN, MAX_REASON_LEN, MAX_PARAMS, MAX_ACK_RANGES),
        (255, 1024, 64, 1024, 64, 64)
    );
    assert_eq!(MAX_HEADER_LEN, 9);
    assert_eq!(varint::MAX, MAX62);
}

#[test]
fn hello_exact_bytes() {
    // min 1, max 1, flags 0, name "ab", auth "", session "", params {1: 65536}.
    check_exact(
        &hello(b"ab", b"", b"", &[(1, 65536)]),
        &[
            0x01, 0x12, // HELLO, body 18
            0x54, 0x4E, 0x44, 0x4D, // "TNDM"
            0x01, 0x01, 0x00, // min, max, flags
            0x02, 0x61, 0x62, 0x00, 0x00, // name "ab", auth "", session ""
            0x01, 0x01, 0x80, 0x01, 0x00, 0x00, // 1 param: id 1 = 65536 (4-byte varint)
        ],
    );
    // Extreme values: min 0, max u32::MAX, RESUME, session "s1", params {12: 2^62-1}.
    let o = OwnedFrame::Hello {
        min_version: 0,
        max_version: u32::MAX,
        flags: Hello::RESUME,
        name: b"n".to_vec(),
        auth: vec![],
        session: b"s1".to_vec(),
        params: params(&[(12, MAX62)]),
    };
    check_exact(
        &o,
        &cat(&[
            &[0x01, 0x1E, 0x54, 0x4E, 0x44, 0x4D, 0x00],
            &[0xC0, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0x01, 0x01, 0x6E, 0x00, 0x02, 0x73, 0x31, 0x01, 0x0C],
            &FF8,
        ]),
    );
    // Everything empty: body is magic + 6 zero-ish bytes.
    check_exact(
        &OwnedFrame::Hello {
            min_version: 0,
            max_version: 0,
            flags: 0,
            name: vec![],
            auth: vec![],
            session: vec![],
            params: params(&[]),
        },
        &[0x01, 0x0B, 0x54, 0x4E, 0x44, 0x4D, 0, 0, 0, 0, 0, 0, 0],
    );
}

#[test]
fn hello_edge_cases() {
    for v in U32_EDGES {
        for (min, max) in [(v, v), (0, v), (v, u32::MAX)] {
            let mut o = hello(b"", b"", b"", &[]);
            if let OwnedFrame::Hello { min_version, max_version, .. } = &mut o {
                *min_version = min;
                *max_version = max;
            }
            check_all(&o);
        }
    }
    for n in [0, 1, 63, 64, 254, 255] {
        check_all(&hello(&vec![b'n'; n], b"", b"", &[]));
    }
    for n in [0, 1, 63, 64, 1023, 1024] {
        check_all(&hello(b"", &vec![0xA7; n], b"", &[]));
    }
    for n in [0, 1, 32, 63, 64] {
        check_all(&hello(b"", b"", &vec![0x5E; n], &[]));
    }
    // All maxima at once.
    let all: Vec<(u64, u64)> = (0..64).map(|i| (i * 1000, MAX62 - i)).collect();
    check_all(&hello(&[0xFF; 255], &[0xFF; 1024], &[0xFF; 64], &all));
    // The documented parameters with their defaults; unknown ids; extreme ids and values.
    let defaults = [
        (1, 65536),
        (2, 4_194_304),
        (3, 100),
        (4, 100),
        (5, 64),
        (6, 262_144),
        (7, 1_048_576),
        (8, 10_000),
        (9, 30_000),
        (10, 0),
        (11, 1024),
        (12, 4_194_304),
    ];
    for p in [
        &defaults[..],
        &[(0, 0)],
        &[(13, 7), (4000, 1), (MAX62, MAX62)],
        &[(63, 63), (64, 64), (16383, 16384)],
    ] {
        check_all(&hello(b"peer", b"token", b"", p));
    }
    let mut o = hello(b"dialer", b"", b"0123456789abcdef", &defaults);
    if let OwnedFrame::Hello { flags, .. } = &mut o {
        *flags = Hello::RESUME;
    }
    check_all(&o);
}

#[test]
fn close_exact_bytes_and_edges() {
    check_exact(
        &OwnedFrame::Close { status: Status::PROTOCOL_ERROR, message: b"bye".to_vec() },
        &[0x02, 0x06, 0x40, 0x40, 0x03, 0x62, 0x79, 0x65],
    );
    check_exact(&OwnedFrame::Close { status: Status::OK, message: vec![] }, &[0x02, 0x02, 0x00, 0x00]);
    // A 64-byte message needs a 2-byte length: body 1 + 2 + 64 = 67.
    check_exact(
        &OwnedFrame::Close { status: Status::OK, message: vec![b'm'; 64] },
        &cat(&[&[0x02, 0x40, 0x43, 0x00, 0x40, 0x40], &[b'm'; 64]]),
    );
    for s in U32_EDGES.into_iter().chain([4000]) {
        for n in [0, 1, 63, 64, 1023, 1024] {
            check_all(&OwnedFrame::Close { status: Status(s), message: vec![0xC3; n] });
        }
    }
}

#[test]
fn goaway_exact_bytes_and_edges() {
    check_exact(
        &OwnedFrame::GoAway { bound: 10, status: Status::OK, message: vec![] },
        &[0x03, 0x03, 0x0A, 0x00, 0x00],
    );
    check_exact(
        &OwnedFrame::GoAway { bound: MAX62, status: Status::UNAVAILABLE, message: b"drain".to_vec() },
        &cat(&[&[0x03, 0x0F], &FF8, &[0x0C, 0x05], b"drain"]),
    );
    for id in VARINT_EDGES {
        for s in [0, 64, u32::MAX] {
            for n in [0, 64, 1024] {
                check_all(&OwnedFrame::GoAway { bound: id, status: Status(s), message: vec![b'g'; n] });
            }
        }
    }
}

#[test]
fn ping_pong_exact_bytes_and_edges() {
    check_exact(&OwnedFrame::Ping([1, 2, 3, 4, 5, 6, 7, 8]), &[0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
    check_exact(&OwnedFrame::Pong([1, 2, 3, 4, 5, 6, 7, 8]), &[0x05, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]);
    for d in [[0; 8], [0xFF; 8], [0x80, 0, 0, 0, 0, 0, 0, 0x01]] {
        check_all(&OwnedFrame::Ping(d));
        check_all(&OwnedFrame::Pong(d));
    }
}

#[test]
fn ack_exact_bytes_and_edges() {
    check_exact(&OwnedFrame::Ack(ack(&[(0, 3), (1, 64)])), &[0x06, 0x06, 0x02, 0x00, 0x03, 0x01, 0x40, 0x40]);
    check_exact(&OwnedFrame::Ack(ack(&[])), &[0x06, 0x01, 0x00]);
    check_exact(&OwnedFrame::Ack(ack(&[(MAX62, 1)])), &cat(&[&[0x06, 0x0A, 0x01], &FF8, &[0x01]]));
    for r in [(0, 1), (MAX62 - 2, 2), (0, 1 << 61), (1, 1 << 61), (63, 16384), (1 << 30, (1 << 30) - 1)] {
        check_all(&OwnedFrame::Ack(ack(&[r])));
    }
    let many: Vec<(u64, u64)> = (0..64).map(|i| (i * 100, 1 + i)).collect();
    check_all(&OwnedFrame::Ack(ack(&many)));
}

#[test]
fn call_exact_bytes_and_edges() {
    // flags 0, id 2, module 7, method 300 (2 bytes), budget 0, payload "hi".
    check_exact(
        &OwnedFrame::Call(req(0, 2, 7, 300, 0, None, b"hi")),
        &[0x10, 0x08, 0x00, 0x02, 0x07, 0x41, 0x2C, 0x00, 0x68, 0x69],
    );
    // MORE with total_len 3 and a 2-byte first chunk.
    check_exact(
        &OwnedFrame::Call(req(flags::MORE, 0, 0, 0, 0, Some(3), b"hi")),
        &[0x10, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00, 0x03, 0x68, 0x69],
    );
    // Maxima: id and budget 2^62-1, module and method u32::MAX, empty payload.
    check_exact(
        &OwnedFrame::Call(req(0, MAX62, u32::MAX, u32::MAX, MAX62, None, b"")),
        &cat(&[
            &[0x10, 0x21, 0x00],
            &FF8,
            &[0xC0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
            &[0xC0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
            &FF8,
        ]),
    );
    request_edges(OwnedFrame::Call, flags::MORE);
}

#[test]
fn notify_exact_bytes_and_edges() {
    // MORE, id 4, module 1, method 2, budget 1_000_000 (4 bytes), total_len 100 (2 bytes), "abc".
    check_exact(
        &OwnedFrame::Notify(req(flags::MORE, 4, 1, 2, 1_000_000, Some(100), b"abc")),
        &[0x11, 0x0D, 0x01, 0x04, 0x01, 0x02, 0x80, 0x0F, 0x42, 0x40, 0x40, 0x64, 0x61, 0x62, 0x63],
    );
    request_edges(OwnedFrame::Notify, flags::MORE);
}

#[test]
fn stream_open_exact_bytes_and_edges() {
    // FIN, id 6, module 1, method 1, budget 0, empty payload.
    check_exact(
        &OwnedFrame::StreamOpen(req(flags::FIN, 6, 1, 1, 0, None, b"")),
        &[0x18, 0x05, 0x02, 0x06, 0x01, 0x01, 0x00],
    );
    // MORE|FIN with total_len 2^62-1.
    check_exact(
        &OwnedFrame::StreamOpen(req(flags::MORE | flags::FIN, 6, 1, 1, 0, Some(MAX62), b"x")),
        &cat(&[&[0x18, 0x0E, 0x03, 0x06, 0x01, 0x01, 0x00], &FF8, b"x"]),
    );
    request_edges(OwnedFrame::StreamOpen, flags::MORE | flags::FIN);
}

/// Edge values in every field of a CALL/NOTIFY/STREAM_OPEN.
fn request_edges(make: fn(OwnedRequest) -> OwnedFrame, allowed: u8) {
    for v in VARINT_EDGES {
        check_all(&make(req(0, v, 1, 1, 0, None, b"p")));
        check_all(&make(req(0, 0, 1, 1, v, None, b"p")));
    }
    for v in U32_EDGES {
        check_all(&make(req(0, 0, v, 0, 0, None, b"")));
        check_all(&make(req(0, 0, 0, v, 0, None, b"")));
    }
    for fl in 0..=allowed {
        if fl & !allowed != 0 {
            continue;
        }
        for n in [0usize, 1, 63, 64, 200] {
            let payload = vec![0x3C; n];
            if fl & flags::MORE != 0 {
                for total in [n as u64 + 1, n as u64 + 64, 16384, 1 << 30, MAX62] {
                    if total > n as u64 {
                        check_all(&make(req(fl, 2, 3, 4, 5, Some(total), &payload)));
                    }
                }
            } else {
                check_all(&make(req(fl, 2, 3, 4, 5, None, &payload)));
            }
        }
    }
}

#[test]
fn large_payload_has_a_four_byte_length() {
    // CALL, MORE, total 70001, 70000-byte payload: body 1+1+1+1+1+4+70000 = 70009 = 0x11179.
    let payload = vec![0x5A; 70_000];
    let o = OwnedFrame::Call(req(flags::MORE, 0, 0, 0, 0, Some(70_001), &payload));
    let bytes = o.encode();
    assert_eq!(
        &bytes[..14],
        &[0x10, 0x80, 0x01, 0x11, 0x79, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x11, 0x71]
    );
    assert_eq!(&bytes[14..], &payload[..]);
    check_all(&o);
    // STREAM_DATA, 70000 bytes: body 70002 = 0x11172.
    let o = OwnedFrame::StreamData { flags: 0, id: 6, total_len: None, payload: payload.clone() };
    let bytes = o.encode();
    assert_eq!(&bytes[..7], &[0x19, 0x80, 0x01, 0x11, 0x72, 0x00, 0x06]);
    assert_eq!(bytes.len(), 7 + 70_000);
    check_all(&o);
    check_all(&OwnedFrame::Extension { ty: 0x80, body: payload.clone() });
    check_all(&OwnedFrame::Signal { module: 1, method: 2, payload: payload.clone() });
    check_all(&OwnedFrame::Response {
        flags: flags::MORE,
        id: 1,
        status: Status::OK,
        total_len: Some(1 << 30),
        payload: payload.clone(),
    });
    check_all(&OwnedFrame::Continuation { flags: 0, id: 2, payload });
}

#[test]
fn signal_exact_bytes_and_edges() {
    check_exact(
        &OwnedFrame::Signal { module: u32::MAX, method: 0, payload: vec![] },
        &[0x12, 0x09, 0xC0, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
    );
    check_exact(
        &OwnedFrame::Signal { module: 64, method: 16384, payload: b"s".to_vec() },
        &[0x12, 0x07, 0x40, 0x40, 0x80, 0x00, 0x40, 0x00, 0x73],
    );
    for a in U32_EDGES {
        for n in [0, 1, 64] {
            check_all(&OwnedFrame::Signal { module: a, method: a, payload: vec![1; n] });
            check_all(&OwnedFrame::Signal { module: 0, method: a, payload: vec![2; n] });
        }
    }
}

#[test]
fn response_exact_bytes_and_edges() {
    check_exact(
        &OwnedFrame::Response {
            flags: 0,
            id: 2,
            status: Status::OK,
            total_len: None,
            payload: b"ok".to_vec(),
        },
        &[0x13, 0x05, 0x00, 0x02, 0x00, 0x6F, 0x6B],
    );
    // MORE, id 3, status OK, total_len 16384 (4 bytes), payload "x".
    check_exact(
        &OwnedFrame::Response {
            flags: flags::MORE,
            id: 3,
            status: Status::OK,
            total_len: Some(16384),
            payload: b"x".to_vec(),
        },
        &[0x13, 0x08, 0x01, 0x03, 0x00, 0x80, 0x00, 0x40, 0x00, 0x78],
    );
    for id in VARINT_EDGES {
        for s in U32_EDGES {
            check_all(&OwnedFrame::Response {
                flags: 0,
                id,
                status: Status(s),
                total_len: None,
                payload: vec![],
            });
        }
    }
    for n in [0usize, 1, 63, 64] {
        for total in [n as u64 + 1, 16383, 16384, (1 << 30) - 1, 1 << 30, MAX62] {
            if total > n as u64 {
                check_all(&OwnedFrame::Response {
                    flags: flags::MORE,
                    id: 1,
                    status: Status::OK,
                    total_len: Some(total),
                    payload: vec![9; n],
                });
            }
        }
    }
}

#[test]
fn cancel_varint_length_boundaries() {
    let cases: [(u64, &[u8]); 9] = [
        (0, &[0x14, 0x01, 0x00]),
        (37, &[0x14, 0x01, 0x25]),
        (63, &[0x14, 0x01, 0x3F]),
        (64, &[0x14, 0x02, 0x40, 0x40]),
        (16383, &[0x14, 0x02, 0x7F, 0xFF]),
        (16384, &[0x14, 0x04, 0x80, 0x00, 0x40, 0x00]),
        ((1 << 30) - 1, &[0x14, 0x04, 0xBF, 0xFF, 0xFF, 0xFF]),
        (1 << 30, &[0x14, 0x08, 0xC0, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00]),
        (MAX62, &[0x14, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
    ];
    for (id, bytes) in cases {
        check_exact(&OwnedFrame::Cancel { id }, bytes);
    }
    for id in VARINT_EDGES {
        check_all(&OwnedFrame::Cancel { id });
    }
}

#[test]
fn stream_data_exact_bytes_and_edges() {
    check_exact(
        &OwnedFrame::StreamData { flags: 0, id: 6, total_len: None, payload: b"z".to_vec() },
        &[0x19, 0x03, 0x00, 0x06, 0x7A],
    );
    check_exact(
        &OwnedFrame::StreamData { flags: flags::MORE, id: 6, total_len: Some(2), payload: b"z".to_vec() },
        &[0x19, 0x04, 0x01, 0x06, 0x02, 0x7A],
    );
    check_exact(
        &OwnedFrame::StreamData { flags: 0, id: 0, total_len: None, payload: vec![] },
        &[0x19, 0x02, 0, 0],
    );
    for id in VARINT_EDGES {
        check_all(&OwnedFrame::StreamData { flags: 0, id, total_len: None, payload: vec![] });
        check_all(&OwnedFrame::StreamData {
            flags: flags::MORE,
            id,
            total_len: Some(id.max(1)),
            payload: vec![],
        });
    }
}

#[test]
fn stream_fin_reset_exact_bytes_and_edges() {
    check_exact(&OwnedFrame::StreamFin { id: 6, status: Status::OK }, &[0x1A, 0x02, 0x06, 0x00]);
    check_exact(&OwnedFrame::StreamReset { id: 7, status: Status::CANCELLED }, &[0x1B, 0x02, 0x07, 0x08]);
    check_exact(
        &OwnedFrame::StreamReset { id: 64, status: Status(u32::MAX) },
        &[0x1B, 0x0A, 0x40, 0x40, 0xC0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    for id in VARINT_EDGES {
        for s in U32_EDGES {
            check_all(&OwnedFrame::StreamFin { id, status: Status(s) });
            check_all(&OwnedFrame::StreamReset { id, status: Status(s) });
        }
    }
}

#[test]
fn stream_credit_exact_bytes_and_edges() {
    // id 6, msgs 64 (2 bytes), bytes 262144 (4 bytes).
    check_exact(
        &OwnedFrame::StreamCredit { id: 6, msgs: 64, bytes: 262_144 },
        &[0x1C, 0x07, 0x06, 0x40, 0x40, 0x80, 0x04, 0x00, 0x00],
    );
    check_exact(
        &OwnedFrame::StreamCredit { id: MAX62, msgs: u32::MAX, bytes: 0 },
        &cat(&[&[0x1C, 0x11], &FF8, &[0xC0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x00]]),
    );
    for id in VARINT_EDGES {
        for v in U32_EDGES {
            check_all(&OwnedFrame::StreamCredit { id, msgs: v, bytes: v });
            check_all(&OwnedFrame::StreamCredit { id, msgs: 0, bytes: v });
        }
    }
}

#[test]
fn conn_credit_exact_bytes_and_edges() {
    check_exact(&OwnedFrame::ConnCredit { bytes: 1_048_576 }, &[0x1D, 0x04, 0x80, 0x10, 0x00, 0x00]);
    check_exact(&OwnedFrame::ConnCredit { bytes: 0 }, &[0x1D, 0x01, 0x00]);
    check_exact(
        &OwnedFrame::ConnCredit { bytes: u32::MAX },
        &[0x1D, 0x08, 0xC0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF],
    );
    for bytes in U32_EDGES {
        check_all(&OwnedFrame::ConnCredit { bytes });
    }
}

#[test]
fn stream_resume_exact_bytes_and_edges() {
    check_exact(
        &OwnedFrame::StreamResume { id: 16383, received: 1 << 30 },
        &[0x1E, 0x0A, 0x7F, 0xFF, 0xC0, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00],
    );
    for id in VARINT_EDGES {
        for received in VARINT_EDGES {
            check_all(&OwnedFrame::StreamResume { id, received });
        }
    }
}

#[test]
fn continuation_exact_bytes_and_edges() {
    check_exact(
        &OwnedFrame::Continuation { flags: 0, id: 2, payload: b"end".to_vec() },
        &[0x20, 0x05, 0x00, 0x02, 0x65, 0x6E, 0x64],
    );
    check_exact(
        &OwnedFrame::Continuation { flags: flags::MORE, id: 2, payload: vec![] },
        &[0x20, 0x02, 0x01, 0x02],
    );
    for id in VARINT_EDGES {
        for fl in [0, flags::MORE] {
            for n in [0, 1, 64] {
                check_all(&OwnedFrame::Continuation { flags: fl, id, payload: vec![7; n] });
            }
        }
    }
}

#[test]
fn extension_exact_bytes_and_edges() {
    check_exact(&OwnedFrame::Extension { ty: 0x80, body: vec![0xDE, 0xAD] }, &[0x80, 0x02, 0xDE, 0xAD]);
    check_exact(&OwnedFrame::Extension { ty: 0xFF, body: vec![] }, &[0xFF, 0x00]);
    // Body-length varint boundaries in the frame header.
    for (n, header) in [
        (63usize, &[0x80u8, 0x3F][..]),
        (64, &[0x80, 0x40, 0x40]),
        (16383, &[0x80, 0x7F, 0xFF]),
        (16384, &[0x80, 0x80, 0x00, 0x40, 0x00]),
    ] {
        let body = vec![0xEE; n];
        check_exact(&OwnedFrame::Extension { ty: 0x80, body: body.clone() }, &cat(&[header, &body]));
    }
    for t in 0x80..=0xFF {
        check_all(&OwnedFrame::Extension { ty: t, body: vec![t; 3] });
    }
}

#[test]
fn header_length_boundaries_beyond_memory() {
    // Lengths 2^30-1 (4 bytes) and 2^30 (8 bytes) are read from the header alone.
    assert_eq!(
        Frame::peek_header(&[0x80, 0xBF, 0xFF, 0xFF, 0xFF], usize::MAX),
        Ok(Some((0x80, (1 << 30) - 1, 5)))
    );
    let h8 = [0x80, 0xC0, 0, 0, 0, 0x40, 0, 0, 0];
    assert_eq!(Frame::peek_header(&h8, usize::MAX), Ok(Some((0x80, 1 << 30, 9))));
    assert_eq!(Frame::decode(&h8, usize::MAX), Ok(Decoded::Incomplete(9 + (1 << 30))));
    assert_eq!(
        Frame::decode(&h8, (1 << 30) - 1),
        Err(DecodeError::FrameTooLarge { len: 1 << 30, max: (1 << 30) - 1 })
    );
}

#[cfg(target_pointer_width = "64")]
#[test]
fn header_with_largest_length() {
    let h = [0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(Frame::peek_header(&h, usize::MAX), Ok(Some((0x10, MAX62 as usize, 9))));
    assert_eq!(Frame::decode(&h, usize::MAX), Ok(Decoded::Incomplete(9 + MAX62 as usize)));
}

/// On 32-bit targets (the crate is built for thumbv7em), a length prefix close to `usize::MAX`
/// passes the `max_body` check when `max_body == usize::MAX`; `hlen + len` must not overflow
/// (`Frame::decode` adds them with `checked_add`). CI runs the core's tests on i686 to reach it.
#[cfg(target_pointer_width = "32")]
#[test]
fn decode_huge_length_on_32_bit_does_not_overflow() {
    let h = [0x10, 0xC0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    let r = Frame::decode(&h, usize::MAX);
    assert!(!matches!(r, Ok(Decoded::Frame(..))), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. Malformed input
// ---------------------------------------------------------------------------------------------

#[test]
fn truncated_bodies() {
    use DecodeError::Truncated;
    // Empty body for every known type except those whose body may be empty (extensions; none of
    // the v1 types has an all-optional body).
    for t in KNOWN_TYPES {
        assert_eq!(Frame::decode_body(t, &[]), Err(Truncated), "type {t:#04x}");
    }
    assert_eq!(Frame::decode_body(ty::PING, &[0; 7]), Err(Truncated));
    assert_eq!(Frame::decode_body(ty::PONG, &[0; 1]), Err(Truncated));
    assert_eq!(Frame::decode_body(ty::HELLO, b"TND"), Err(Truncated));
    assert_eq!(Frame::decode_body(ty::HELLO, b"XY"), Err(Truncated), "magic not even complete");
    assert_eq!(
        Frame::decode_body(ty::CLOSE, &[0x00, 0x05, b'a', b'b']),
        Err(Truncated),
        "message shorter than its length"
    );
    assert_eq!(Frame::decode_body(ty::CANCEL, &[0x40]), Err(Truncated), "2-byte varint cut");
    assert_eq!(
        Frame::decode_body(ty::CANCEL, &[0xC0, 0, 0, 0, 0, 0, 0]),
        Err(Truncated),
        "8-byte varint cut"
    );
    assert_eq!(
        Frame::decode_body(ty::CALL, &[0x01, 0x00, 0x00, 0x00, 0x00]),
        Err(Truncated),
        "MORE without total_len"
    );
    assert_eq!(Frame::decode_body(ty::STREAM_DATA, &[0x01, 0x02]), Err(Truncated), "MORE without total_len");
    assert_eq!(Frame::decode_body(ty::ACK, &[0x02, 0x00, 0x01]), Err(Truncated), "one of two ranges");
    let mut h = raw_hello_body(0, b"", b"", b"", &[(1, 2), (3, 4)]);
    h.truncate(h.len() - 2);
    assert_eq!(Frame::decode_body(ty::HELLO, &h), Err(Truncated), "one of two params");
    // Within a complete frame through `decode` too.
    assert_eq!(Frame::decode(&[0x04, 0x07, 1, 2, 3, 4, 5, 6, 7], usize::MAX), Err(Truncated));
    assert_eq!(Frame::decode(&[0x1A, 0x01, 0x05], usize::MAX), Err(Truncated));
    // Extensions have no fixed fields: every body decodes.
    assert_eq!(Frame::decode_body(0x80, &[]), Ok(Frame::Extension { ty: 0x80, body: &[] }));
}

#[test]
fn trailing_bytes() {
    use DecodeError::TrailingBytes;
    assert_eq!(Frame::decode_body(ty::PING, &[0; 9]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::PONG, &[0; 16]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::CANCEL, &[0x01, 0x00]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::CONN_CREDIT, &[0x01, 0x01]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::CLOSE, &[0x00, 0x01, b'a', b'b']), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::GOAWAY, &[0x00, 0x00, 0x00, 0x00]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::ACK, &[0x00, 0x00]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::ACK, &[0x01, 0x00, 0x01, 0x00]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::STREAM_FIN, &[0x01, 0x00, 0x00]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::STREAM_RESET, &[0x01, 0x00, 0xFF]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::STREAM_CREDIT, &[0x01, 0x00, 0x00, 0x00]), Err(TrailingBytes));
    assert_eq!(Frame::decode_body(ty::STREAM_RESUME, &[0x01, 0x00, 0x00]), Err(TrailingBytes));
    let mut h = raw_hello_body(0, b"", b"", b"", &[(1, 2)]);
    h.push(0);
    assert_eq!(Frame::decode_body(ty::HELLO, &h), Err(TrailingBytes));
    assert_eq!(Frame::decode(&[0x14, 0x02, 0x01, 0x00], usize::MAX), Err(TrailingBytes));
}

#[test]
fn non_canonical_varints() {
    use DecodeError::NonCanonicalVarint as Nc;
    assert_eq!(Frame::decode_body(ty::CANCEL, &[0x40, 0x25]), Err(Nc));
    assert_eq!(Frame::decode_body(ty::CANCEL, &[0x40, 0x00]), Err(Nc));
    assert_eq!(Frame::decode_body(ty::CANCEL, &[0x80, 0x00, 0x3F, 0xFF]), Err(Nc));
    assert_eq!(Frame::decode_body(ty::CANCEL, &[0xC0, 0, 0, 0, 0x3F, 0xFF, 0xFF, 0xFF]), Err(Nc));
    // In the length prefix.
    assert_eq!(Frame::decode(&[0x14, 0x40, 0x01, 0x00], usize::MAX), Err(Nc));
    assert_eq!(Frame::decode(&[0x14, 0x40, 0x01], usize::MAX), Err(Nc), "reported before the body arrives");
    // In a `bytes` length, a param, an ACK range, total_len.
    assert_eq!(Frame::decode_body(ty::CLOSE, &[0x00, 0x40, 0x01, b'a']), Err(Nc));
    let mut h = raw_hello_body(0, b"", b"", b"", &[]);
    h.pop();
    h.extend_from_slice(&[0x01, 0x40, 0x01, 0x00]);
    assert_eq!(Frame::decode_body(ty::HELLO, &h), Err(Nc));
    assert_eq!(Frame::decode_body(ty::ACK, &[0x01, 0x00, 0x40, 0x01]), Err(Nc));
    assert_eq!(Frame::decode_body(ty::STREAM_DATA, &[0x01, 0x00, 0x40, 0x05, b'x']), Err(Nc));
    // And in every varint of every frame type (see check_noncanonical).
    let mut g = Gen::from_size_and_seed(20, 7);
    for _ in 0..300 {
        check_noncanonical(&OwnedFrame::arbitrary(&mut g));
    }
}

#[test]
fn u32_fields_out_of_range() {
    use DecodeError::ValueOutOfRange as Oor;
    let big = [0xC0, 0, 0, 0x01, 0, 0, 0, 0]; // 2^32
    assert_eq!(Frame::decode_body(ty::CONN_CREDIT, &big), Err(Oor));
    assert_eq!(Frame::decode_body(ty::CONN_CREDIT, &FF8), Err(Oor));
    assert_eq!(Frame::decode_body(ty::CLOSE, &cat(&[&big, &[0x00]])), Err(Oor), "status");
    assert_eq!(Frame::decode_body(ty::SIGNAL, &cat(&[&[0x00], &big])), Err(Oor), "method");
    assert_eq!(Frame::decode_body(ty::STREAM_CREDIT, &cat(&[&[0x00, 0x00], &big])), Err(Oor), "bytes");
    // u32::MAX itself is fine.
    assert_eq!(
        Frame::decode_body(ty::CONN_CREDIT, &[0xC0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]),
        Ok(Frame::ConnCredit { bytes: u32::MAX })
    );
    // Every u32 field of every type.
    for o in [
        hello(b"", b"", b"", &[]),
        OwnedFrame::Close { status: Status::OK, message: vec![] },
        OwnedFrame::GoAway { bound: 0, status: Status::OK, message: vec![] },
        OwnedFrame::Call(req(0, 0, 0, 0, 0, None, b"")),
        OwnedFrame::Notify(req(0, 0, 0, 0, 0, None, b"")),
        OwnedFrame::StreamOpen(req(0, 0, 0, 0, 0, None, b"")),
        OwnedFrame::Signal { module: 0, method: 0, payload: vec![] },
        OwnedFrame::Response { flags: 0, id: 0, status: Status::OK, total_len: None, payload: vec![] },
        OwnedFrame::StreamFin { id: 0, status: Status::OK },
        OwnedFrame::StreamReset { id: 0, status: Status::OK },
        OwnedFrame::StreamCredit { id: 0, msgs: 0, bytes: 0 },
        OwnedFrame::ConnCredit { bytes: 0 },
    ] {
        let n = o.fields().iter().filter(|f| matches!(f, Field::Var { u32_field: true, .. })).count();
        assert!(n > 0, "{o:?} has u32 fields");
        check_u32_ranges(&o);
    }
}

#[test]
fn unknown_types_rejected_extensions_skipped() {
    for t in 0x00..=0x7Fu8 {
        let r = Frame::decode_body(t, &[0x00]);
        if KNOWN_TYPES.contains(&t) {
            assert!(!matches!(r, Err(DecodeError::UnknownFrameType(_))), "{t:#04x}: {r:?}");
        } else {
            assert_eq!(r, Err(DecodeError::UnknownFrameType(t)));
            assert_eq!(Frame::decode_body(t, &[]), Err(DecodeError::UnknownFrameType(t)));
            assert_eq!(
                Frame::decode(&[t, 0x02, 0xAB, 0xCD], usize::MAX),
                Err(DecodeError::UnknownFrameType(t))
            );
        }
    }
    for t in 0x80..=0xFFu8 {
        let bytes = [t, 0x03, 0x01, 0x02, 0x03, t];
        // Skippable: the frame is returned whole with its length, and the next one follows.
        assert_eq!(
            Frame::decode(&bytes, usize::MAX),
            Ok(Decoded::Frame(Frame::Extension { ty: t, body: &[1, 2, 3] }, 5))
        );
        assert_eq!(Frame::decode_body(t, &[0xFF; 3]), Ok(Frame::Extension { ty: t, body: &[0xFF; 3] }));
        // Even a body that would be malformed for any known type.
        assert_eq!(Frame::decode_body(t, &[0x40]), Ok(Frame::Extension { ty: t, body: &[0x40] }));
    }
    // A stream with an extension between two frames.
    let stream = [0x14, 0x01, 0x02, 0xC7, 0x02, 0x40, 0x00, 0x14, 0x01, 0x04];
    let mut got = Vec::new();
    let mut pos = 0;
    while let Ok(Decoded::Frame(f, n)) = Frame::decode(&stream[pos..], 64) {
        got.push(f);
        pos += n;
    }
    assert_eq!(pos, stream.len());
    assert_eq!(
        got,
        [
            Frame::Cancel { id: 2 },
            Frame::Extension { ty: 0xC7, body: &[0x40, 0x00] },
            Frame::Cancel { id: 4 }
        ]
    );
}

/// For each flagged type: every flags byte, with a valid rest of the body.
#[test]
fn undefined_flag_bits_rejected() {
    let cases: [(u8, u8, &[u8]); 6] = [
        (ty::CALL, flags::MORE | flags::KEY, &[0x02, 0x07, 0x01, 0x00]),
        (ty::NOTIFY, flags::MORE | flags::KEY, &[0x02, 0x07, 0x01, 0x00]),
        (ty::STREAM_OPEN, flags::MORE | flags::FIN | flags::KEY, &[0x02, 0x07, 0x01, 0x00]),
        (ty::RESPONSE, flags::MORE, &[0x02, 0x00]),
        (ty::STREAM_DATA, flags::MORE, &[0x02]),
        (ty::CONTINUATION, flags::MORE, &[0x02]),
    ];
    for (t, allowed, fixed) in cases {
        for b in 0..=255u8 {
            let mut body = vec![b];
            if allowed & flags::KEY != 0 && b & flags::KEY != 0 && b & !allowed == 0 {
                // id, module, method, then the 8-byte key, then budget_us.
                body.extend_from_slice(&fixed[..3]);
                body.extend_from_slice(&[0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7]);
                body.extend_from_slice(&fixed[3..]);
            } else {
                body.extend_from_slice(fixed);
            }
            if t != ty::CONTINUATION && b & flags::MORE != 0 {
                body.push(0x05); // total_len 5 > payload 2
            }
            body.extend_from_slice(b"ab");
            let r = Frame::decode_body(t, &body);
            if b & !allowed != 0 {
                assert_eq!(r, Err(DecodeError::InvalidFlags(b.into())), "type {t:#04x} flags {b:#04x}");
            } else {
                let f = r.unwrap_or_else(|e| panic!("type {t:#04x} flags {b:#04x}: {e:?}"));
                assert_eq!(enc(&f), frame_bytes(t, &body));
                let fl = match f {
                    Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => r.flags,
                    Frame::Keyed { req, key, .. } => {
                        assert_eq!(key.0, [0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7]);
                        req.flags | flags::KEY
                    }
                    Frame::Response { flags, .. }
                    | Frame::StreamData { flags, .. }
                    | Frame::Continuation { flags, .. } => flags,
                    other => panic!("{other:?}"),
                };
                assert_eq!(fl, b);
            }
        }
    }
}

#[test]
fn fin_only_on_stream_open() {
    for (t, fixed) in [
        (ty::CALL, &[0x02, 0x07, 0x01, 0x00][..]),
        (ty::NOTIFY, &[0x02, 0x07, 0x01, 0x00]),
        (ty::RESPONSE, &[0x02, 0x00]),
        (ty::STREAM_DATA, &[0x02]),
        (ty::CONTINUATION, &[0x02]),
    ] {
        let body = cat(&[&[flags::FIN], fixed]);
        assert_eq!(Frame::decode_body(t, &body), Err(DecodeError::InvalidFlags(0x02)), "{t:#04x}");
        let body = cat(&[&[flags::FIN | flags::MORE], fixed, &[0x05]]);
        assert_eq!(Frame::decode_body(t, &body), Err(DecodeError::InvalidFlags(0x03)), "{t:#04x}");
    }
    assert_eq!(
        Frame::decode_body(ty::STREAM_OPEN, &[0x02, 0x02, 0x07, 0x01, 0x00]),
        Ok(Frame::StreamOpen(Request {
            flags: flags::FIN,
            id: 2,
            module: 7,
            method: 1,
            budget_us: 0,
            total_len: None,
            payload: &[]
        }))
    );
}

/// design.md: HELLO "flags: bit0 RESUME ... other bits must be 0", and `InvalidFlags` is
/// "flag bits that are undefined for this frame type are set".
#[test]
fn hello_undefined_flag_bits_rejected() {
    for fl in [0x02u64, 0x03, 0x80, 1 << 40, MAX62] {
        let body = raw_hello_body(fl, b"", b"", b"", &[]);
        let r = Frame::decode_body(ty::HELLO, &body);
        assert!(matches!(r, Err(DecodeError::InvalidFlags(_))), "flags {fl:#x}: {r:?}");
    }
}

#[test]
fn hello_defined_flags_accepted() {
    for fl in [0, Hello::RESUME] {
        let body = raw_hello_body(fl, b"", b"", b"", &[]);
        assert!(matches!(Frame::decode_body(ty::HELLO, &body), Ok(Frame::Hello(h)) if h.flags == fl));
    }
}

#[test]
fn bad_magic() {
    let good = raw_hello_body(0, b"n", b"", b"", &[(1, 4096)]);
    assert!(Frame::decode_body(ty::HELLO, &good).is_ok());
    for magic in [b"TNDN", b"tndm", b"\0\0\0\0", b"MDNT", b"HTTP"] {
        let mut b = good.clone();
        b[..4].copy_from_slice(magic);
        assert_eq!(Frame::decode_body(ty::HELLO, &b), Err(DecodeError::BadMagic), "{magic:?}");
        assert_eq!(Frame::decode(&frame_bytes(ty::HELLO, &b), usize::MAX), Err(DecodeError::BadMagic));
    }
    // Magic is checked before the rest of the body is looked at.
    assert_eq!(Frame::decode_body(ty::HELLO, b"GET "), Err(DecodeError::BadMagic));
    assert_eq!(Frame::decode_body(ty::HELLO, b"GET / HTTP/1.1\r\n"), Err(DecodeError::BadMagic));
    for i in 0..4 {
        for bit in 0..8 {
            let mut b = good.clone();
            b[i] ^= 1 << bit;
            assert_eq!(Frame::decode_body(ty::HELLO, &b), Err(DecodeError::BadMagic));
        }
    }
}

#[test]
fn fields_too_long() {
    use DecodeError::FieldTooLong as Ftl;
    let hb = |n: &[u8], a: &[u8], s: &[u8]| {
        Frame::decode_body(ty::HELLO, &raw_hello_body(0, n, a, s, &[])).map(|_| ())
    };
    assert_eq!(hb(&[b'n'; 255], b"", b""), Ok(()));
    assert_eq!(hb(&[b'n'; 256], b"", b""), Err(Ftl));
    assert_eq!(hb(b"", &[0; 1024], b""), Ok(()));
    assert_eq!(hb(b"", &[0; 1025], b""), Err(Ftl));
    assert_eq!(hb(b"", b"", &[0; 64]), Ok(()));
    assert_eq!(hb(b"", b"", &[0; 65]), Err(Ftl));
    // The cap is checked on the length, before the bytes (which may not be there).
    let mut b = b"TNDM".to_vec();
    b.extend_from_slice(&[0x01, 0x01, 0x00, 0x41, 0x00]); // name length 256, no bytes
    assert_eq!(Frame::decode_body(ty::HELLO, &b), Err(Ftl));
    let mut b = b"TNDM".to_vec();
    b.extend_from_slice(&[0x01, 0x01, 0x00]);
    b.extend_from_slice(&FF8); // name length 2^62-1
    assert_eq!(Frame::decode_body(ty::HELLO, &b), Err(Ftl));

    for t in [ty::CLOSE, ty::GOAWAY] {
        let prefix: &[u8] = if t == ty::CLOSE { &[0x00] } else { &[0x00, 0x00] };
        let body = |n: usize| {
            let mut b = prefix.to_vec();
            put_var(&mut b, n as u64, canon_width(n as u64));
            b.resize(b.len() + n, b'r');
            b
        };
        assert!(Frame::decode_body(t, &body(1024)).is_ok());
        assert_eq!(Frame::decode_body(t, &body(1025)), Err(Ftl));
        assert_eq!(Frame::decode_body(t, &cat(&[prefix, &[0x44, 0x01]])), Err(Ftl), "length only");
    }

    // 64 params fine, 65 too many (also with nothing after the count, or a huge count).
    let pairs: Vec<(u64, u64)> = (0..65).map(|i| (i, i)).collect();
    assert!(Frame::decode_body(ty::HELLO, &raw_hello_body(0, b"", b"", b"", &pairs[..64])).is_ok());
    assert_eq!(Frame::decode_body(ty::HELLO, &raw_hello_body(0, b"", b"", b"", &pairs)), Err(Ftl));
    let mut b = raw_hello_body(0, b"", b"", b"", &[]);
    b.pop();
    b.extend_from_slice(&[0x40, 0x41]);
    assert_eq!(Frame::decode_body(ty::HELLO, &b), Err(Ftl));
    b.truncate(b.len() - 2);
    b.extend_from_slice(&FF8);
    assert_eq!(Frame::decode_body(ty::HELLO, &b), Err(Ftl));
    assert!(Params::encode_into(&pairs, &mut [0u8; 4096]).is_none());
    assert!(Params::encode_into(&pairs[..64], &mut [0u8; 4096]).is_some());

    // 64 ACK ranges fine, 65 too many.
    let ranges: Vec<(u64, u64)> = (0..65).map(|i| (2 * i, 1)).collect();
    assert!(Frame::decode_body(ty::ACK, &raw_ack_body(&ranges[..64])).is_ok());
    assert_eq!(Frame::decode_body(ty::ACK, &raw_ack_body(&ranges)), Err(Ftl));
    assert_eq!(Frame::decode_body(ty::ACK, &[0x40, 0x41]), Err(Ftl));
    assert_eq!(Frame::decode_body(ty::ACK, &FF8), Err(Ftl));
    assert!(Ack::encode_into(&ranges, &mut [0u8; 4096]).is_none());
    assert!(Ack::encode_into(&ranges[..64], &mut [0u8; 4096]).is_some());
}

#[test]
fn params_out_of_order_or_duplicate() {
    for pairs in [
        &[(2u64, 0u64), (1, 0)][..],
        &[(1, 5), (1, 5)],
        &[(1, 5), (1, 6)],
        &[(0, 0), (5, 0), (5, 1)],
        &[(0, 0), (7, 0), (3, 0)],
        &[(MAX62, 0), (0, 0)],
    ] {
        let body = raw_hello_body(0, b"", b"", b"", pairs);
        assert_eq!(Frame::decode_body(ty::HELLO, &body), Err(DecodeError::ParamOrder), "{pairs:?}");
        assert!(Params::encode_into(pairs, &mut [0u8; 64]).is_none(), "{pairs:?}");
    }
    // Strictly increasing is fine, including unknown and extreme ids.
    let ok = [(0, 0), (1, 1), (64, 2), (MAX62, MAX62)];
    let body = raw_hello_body(0, b"", b"", b"", &ok);
    let Ok(Frame::Hello(h)) = Frame::decode_body(ty::HELLO, &body) else { panic!() };
    assert!(h.params.iter().eq(ok.iter().copied()));
}

#[test]
fn more_total_len_not_above_payload() {
    use DecodeError::InvalidLength as Il;
    // (type, fields between flags and total_len)
    for (t, mid) in [
        (ty::CALL, &[0x02, 0x07, 0x01, 0x00][..]),
        (ty::NOTIFY, &[0x02, 0x07, 0x01, 0x00]),
        (ty::STREAM_OPEN, &[0x02, 0x07, 0x01, 0x00]),
        (ty::RESPONSE, &[0x02, 0x00]),
        (ty::STREAM_DATA, &[0x02]),
    ] {
        for (fl, total, payload, ok) in [
            (flags::MORE, 0u64, &b""[..], false),
            (flags::MORE, 1, b"", true),
            (flags::MORE, 1, b"a", false),
            (flags::MORE, 2, b"abc", false),
            (flags::MORE, 3, b"abc", false),
            (flags::MORE, 4, b"abc", true),
            (flags::MORE, 64, &[0; 64], false),
            (flags::MORE, 65, &[0; 64], true),
        ] {
            let mut body = vec![fl];
            body.extend_from_slice(mid);
            put_var(&mut body, total, canon_width(total));
            body.extend_from_slice(payload);
            let r = Frame::decode_body(t, &body);
            if ok {
                assert!(r.is_ok(), "{t:#04x} total {total} payload {}: {r:?}", payload.len());
            } else {
                assert_eq!(r, Err(Il), "{t:#04x} total {total} payload {}", payload.len());
            }
        }
        // FIN without MORE on STREAM_OPEN has no total_len.
        if t == ty::STREAM_OPEN {
            let body = cat(&[&[flags::FIN], mid, b"xy"]);
            let Ok(Frame::StreamOpen(r)) = Frame::decode_body(t, &body) else { panic!() };
            assert_eq!((r.total_len, r.payload), (None, &b"xy"[..]));
        }
    }
}

#[test]
fn ack_ranges_empty_or_overflowing() {
    use DecodeError::InvalidLength as Il;
    let bad =
        [(0u64, 0u64), (5, 0), (MAX62, 2), (MAX62 - 1, 2), (2, 1 << 61), (0, (1 << 61) + 1), (0, MAX62)];
    for r in bad {
        assert_eq!(Frame::decode_body(ty::ACK, &raw_ack_body(&[r])), Err(Il), "{r:?}");
        assert_eq!(Frame::decode_body(ty::ACK, &raw_ack_body(&[(0, 1), r])), Err(Il), "{r:?} second");
        assert!(Ack::encode_into(&[r], &mut [0u8; 64]).is_none(), "{r:?}");
    }
    let good = [(0u64, 1u64), (MAX62, 1), (MAX62 - 2, 2), (0, 1 << 61), (1, 1 << 61), (MAX62 - 4, 3)];
    for r in good {
        let body = raw_ack_body(&[r]);
        let Ok(Frame::Ack(a)) = Frame::decode_body(ty::ACK, &body) else { panic!("{r:?}") };
        assert_eq!(a.iter().collect::<Vec<_>>(), [r]);
        assert!(Ack::encode_into(&[r], &mut [0u8; 64]).is_some(), "{r:?}");
    }
}

#[test]
fn frame_too_large_as_soon_as_header_is_readable() {
    // STREAM_DATA announcing 65536 body bytes; none of the body has arrived.
    let h = [0x19, 0x80, 0x01, 0x00, 0x00];
    assert_eq!(Frame::decode(&h, 65_535), Err(DecodeError::FrameTooLarge { len: 65_536, max: 65_535 }));
    assert_eq!(Frame::peek_header(&h, 65_535), Err(DecodeError::FrameTooLarge { len: 65_536, max: 65_535 }));
    assert_eq!(Frame::decode(&h, 65_536), Ok(Decoded::Incomplete(5 + 65_536)));
    assert_eq!(Frame::peek_header(&h, 65_536), Ok(Some((0x19, 65_536, 5))));
    // Before the length varint is complete there is nothing to judge yet.
    for k in 0..h.len() {
        assert_eq!(Frame::decode(&h[..k], 0), Ok(Decoded::Incomplete(k + 1)), "{k}");
        assert_eq!(Frame::peek_header(&h[..k], 0), Ok(None));
    }
    // HELLO above the pre-handshake minimum (4096).
    assert_eq!(
        Frame::decode(&[0x01, 0x52, 0x00], 4096),
        Err(DecodeError::FrameTooLarge { len: 4608, max: 4096 })
    );
    // max 0: only empty bodies.
    assert_eq!(Frame::decode(&[0x14, 0x01], 0), Err(DecodeError::FrameTooLarge { len: 1, max: 0 }));
    assert_eq!(
        Frame::decode(&[0xF0, 0x00], 0),
        Ok(Decoded::Frame(Frame::Extension { ty: 0xF0, body: &[] }, 2))
    );
    // Checked before the type: unknown and extension types too.
    assert_eq!(Frame::decode(&[0x00, 0x05], 4), Err(DecodeError::FrameTooLarge { len: 5, max: 4 }));
    assert_eq!(Frame::decode(&[0x99, 0x05], 4), Err(DecodeError::FrameTooLarge { len: 5, max: 4 }));
    // The largest length.
    let h = cat(&[&[0x10], &FF8]);
    assert_eq!(Frame::decode(&h, 16 << 20), Err(DecodeError::FrameTooLarge { len: MAX62, max: 16 << 20 }));
    // With the body present, the error is the same.
    let mut full = vec![0x19, 0x40, 0x41, 0x00, 0x00];
    full.extend_from_slice(&[0; 63]);
    assert_eq!(Frame::decode(&full, 64), Err(DecodeError::FrameTooLarge { len: 65, max: 64 }));
    assert!(matches!(Frame::decode(&full, 65), Ok(Decoded::Frame(Frame::StreamData { .. }, 68))));
}

#[test]
fn incomplete_input() {
    assert_eq!(Frame::decode(&[], usize::MAX), Ok(Decoded::Incomplete(1)));
    assert_eq!(Frame::decode(&[], 0), Ok(Decoded::Incomplete(1)));
    assert_eq!(Frame::peek_header(&[], 0), Ok(None));
    assert_eq!(Frame::decode(&[0x10], usize::MAX), Ok(Decoded::Incomplete(2)));
    assert_eq!(Frame::decode(&[0x10, 0xC0, 0x00], usize::MAX), Ok(Decoded::Incomplete(4)));
    assert_eq!(Frame::decode(&[0x14, 0x01], usize::MAX), Ok(Decoded::Incomplete(3)));
    // Every strict prefix of one frame of each type (see check_prefixes for all generated frames).
    let mut g = Gen::from_size_and_seed(30, 11);
    for _ in 0..400 {
        let o = OwnedFrame::arbitrary(&mut g);
        check_prefixes(&o.frame(), &o.encode());
    }
}

#[test]
fn decode_error_status() {
    let all = [
        DecodeError::Truncated,
        DecodeError::NonCanonicalVarint,
        DecodeError::ValueOutOfRange,
        DecodeError::TrailingBytes,
        DecodeError::UnknownFrameType(0x07),
        DecodeError::FrameTooLarge { len: 70_000, max: 65_536 },
        DecodeError::InvalidFlags(0x04),
        DecodeError::BadMagic,
        DecodeError::FieldTooLong,
        DecodeError::ParamOrder,
        DecodeError::InvalidLength,
    ];
    for e in all {
        let expected = if matches!(e, DecodeError::FrameTooLarge { .. }) {
            Status::FRAME_TOO_LARGE
        } else {
            Status::FRAME_ENCODING_ERROR
        };
        assert_eq!(e.status(), expected, "{e:?}");
        assert!(e.status().is_connection_fatal());
        assert!(!format!("{e}").is_empty());
    }
    assert_eq!(Status::FRAME_ENCODING_ERROR, Status(65));
    assert_eq!(Status::FRAME_TOO_LARGE, Status(66));
    assert_eq!(DecodeError::FrameTooLarge { len: 0, max: 0 }.status(), Status::FRAME_TOO_LARGE);
    assert_eq!(format!("{}", DecodeError::UnknownFrameType(0x07)), "unknown frame type 0x07");
    assert_eq!(format!("{}", DecodeError::InvalidFlags(0x84)), "invalid flags 0x84 for this frame type");
    assert_eq!(
        format!("{}", DecodeError::FrameTooLarge { len: 70_000, max: 65_536 }),
        "frame length 70000 exceeds the limit of 65536 bytes"
    );
}

#[test]
fn params_and_ack_views() {
    assert!(Params::EMPTY.is_empty());
    assert_eq!(Params::EMPTY.len(), 0);
    assert_eq!(Params::EMPTY.iter().next(), None);
    let mut buf = [0u8; 64];
    let p = Params::encode_into(&[(1, 65536), (3, 0), (64, 7)], &mut buf).unwrap();
    assert_eq!((p.len(), p.is_empty()), (3, false));
    assert_eq!((p.get(1), p.get(3), p.get(64), p.get(2)), (Some(65536), Some(0), Some(7), None));
    assert_eq!(p.raw(), &[0x01, 0x80, 0x01, 0x00, 0x00, 0x03, 0x00, 0x40, 0x40, 0x07]);
    assert_eq!(format!("{p:?}"), "{1: 65536, 3: 0, 64: 7}");
    // Too-small output buffer; values or ids above 2^62-1.
    assert!(Params::encode_into(&[(1, 65536)], &mut [0u8; 4]).is_none());
    assert!(Params::encode_into(&[(1, 65536)], &mut [0u8; 5]).is_some());
    assert!(Params::encode_into(&[(1, MAX62 + 1)], &mut [0u8; 64]).is_none());
    assert!(Params::encode_into(&[(MAX62 + 1, 0)], &mut [0u8; 64]).is_none());
    assert!(Params::encode_into(&[], &mut []).is_some_and(|p| p.is_empty()));

    let a = Ack::encode_into(&[(0, 3), (1, 64)], &mut buf).unwrap();
    assert_eq!((a.len(), a.is_empty()), (2, false));
    assert_eq!(a.iter().collect::<Vec<_>>(), [(0, 3), (1, 64)]);
    assert_eq!(format!("{a:?}"), "[(0, 3), (1, 64)]");
    assert!(Ack::encode_into(&[(0, 3), (1, 64)], &mut [0u8; 4]).is_none());
    assert!(Ack::encode_into(&[], &mut []).is_some_and(|a| a.is_empty()));
}

// ---------------------------------------------------------------------------------------------
// 3. Properties
// ---------------------------------------------------------------------------------------------

fn qc(tests: u64) -> QuickCheck {
    QuickCheck::new().tests(tests).max_tests(tests * 10)
}

#[test]
fn generator_covers_every_variant_and_edge() {
    let mut g = Gen::from_size_and_seed(100, 1);
    let mut types = [0usize; 256];
    let (mut more, mut fin, mut resume, mut empty_rest, mut u32_max, mut var_max, mut boundary) =
        (0, 0, 0, 0, 0, 0, [0usize; 6]);
    let (mut max_params, mut max_ranges) = (0, 0);
    for _ in 0..4000 {
        let o = OwnedFrame::arbitrary(&mut g);
        let f = o.frame();
        types[usize::from(f.ty())] += 1;
        let fl = match f {
            Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) => r.flags,
            Frame::Response { flags, .. }
            | Frame::StreamData { flags, .. }
            | Frame::Continuation { flags, .. } => flags,
            Frame::Hello(h) => {
                resume += usize::from(h.flags == Hello::RESUME);
                max_params += usize::from(h.params.len() == MAX_PARAMS);
                0
            }
            Frame::Ack(a) => {
                max_ranges += usize::from(a.len() == MAX_ACK_RANGES);
                0
            }
            _ => 0,
        };
        more += usize::from(fl & flags::MORE != 0);
        fin += usize::from(fl & flags::FIN != 0);
        empty_rest += usize::from(rest_of(&f).is_some_and(<[u8]>::is_empty));
        for fld in o.fields() {
            if let Field::Var { v, u32_field, .. } = fld {
                u32_max += usize::from(u32_field && v == u64::from(u32::MAX));
                var_max += usize::from(v == MAX62);
                for (i, b) in [63, 64, 16383, 16384, (1 << 30) - 1, 1 << 30].into_iter().enumerate() {
                    boundary[i] += usize::from(v == b);
                }
            }
        }
    }
    for t in KNOWN_TYPES {
        assert!(types[usize::from(t)] > 100, "type {t:#04x}: {}", types[usize::from(t)]);
    }
    assert!(types[0x80..].iter().sum::<usize>() > 100);
    assert!(types[0x81..0xFF].iter().sum::<usize>() > 0, "random extension types");
    for t in 0..0x80u8 {
        assert!(KNOWN_TYPES.contains(&t) || types[usize::from(t)] == 0, "{t:#04x}");
    }
    for (name, n) in [
        ("MORE", more),
        ("FIN", fin),
        ("RESUME", resume),
        ("empty payload", empty_rest),
        ("u32::MAX", u32_max),
        ("2^62-1", var_max),
        ("64 params", max_params),
        ("64 ranges", max_ranges),
    ] {
        assert!(n > 10, "{name}: {n}");
    }
    assert!(boundary.iter().all(|&n| n > 10), "{boundary:?}");
}

#[test]
fn prop_decode_encode_roundtrip() {
    fn prop(o: OwnedFrame) -> bool {
        let f = o.frame();
        let bytes = o.encode();
        Frame::decode(&bytes, usize::MAX) == Ok(Decoded::Frame(f, f.encoded_len()))
            && Frame::decode(&bytes, f.body_len()) == Ok(Decoded::Frame(f, bytes.len()))
            && OwnedFrame::from_frame(&f) == o
    }
    qc(2000).quickcheck(prop as fn(OwnedFrame) -> bool);
}

#[test]
fn prop_encoded_len_is_exact() {
    fn prop(o: OwnedFrame) -> bool {
        let f = o.frame();
        let n = f.encoded_len();
        let mut exact = vec![0u8; n];
        let mut short = vec![0u8; n - 1];
        let mut long = vec![0x5Au8; n + 9];
        f.encode(&mut exact) == Some(n)
            && f.encode(&mut short).is_none()
            && f.encode(&mut long) == Some(n)
            && long[..n] == exact[..]
            && long[n..].iter().all(|&b| b == 0x5A)
            && n == 1 + canon_width(f.body_len() as u64) + f.body_len()
    }
    qc(2000).quickcheck(prop as fn(OwnedFrame) -> bool);
}

/// The full battery (reference encoder, prefixes, trailing bytes, every varint widened, every u32
/// field overflowed) on generated frames.
#[test]
fn prop_full_checks() {
    fn prop(o: OwnedFrame) -> bool {
        check_all(&o);
        true
    }
    qc(500).quickcheck(prop as fn(OwnedFrame) -> bool);
}

/// Whatever the input, `decode` does not panic, and what it says is consistent.
fn check_decode_any(bytes: &[u8], max: usize) {
    match Frame::decode(bytes, max) {
        Ok(Decoded::Frame(f, n)) => {
            assert!(n <= bytes.len());
            assert!(f.body_len() <= max);
            assert_eq!(f.encoded_len(), n);
            // Canonical bijection: the consumed bytes are exactly the re-encoding.
            assert_eq!(enc(&f), &bytes[..n], "{f:?}");
            assert_eq!(Frame::decode(&bytes[..n], max), Ok(Decoded::Frame(f, n)));
            assert_eq!(OwnedFrame::from_frame(&f).frame(), f);
        }
        Ok(Decoded::Incomplete(need)) => {
            assert!(need > bytes.len(), "Incomplete({need}) for {} bytes", bytes.len());
            // Progress: with `need` bytes the answer is no longer "need this many".
            if need - bytes.len() <= 1 << 16 {
                let mut padded = bytes.to_vec();
                padded.resize(need, 0);
                match Frame::decode(&padded, max) {
                    Ok(Decoded::Incomplete(n2)) => assert!(n2 > need),
                    Ok(Decoded::Frame(_, n2)) => assert_eq!(n2, need),
                    Err(_) => {}
                }
            }
        }
        Err(e) => {
            // Errors are final: more bytes do not change them.
            let mut more = bytes.to_vec();
            more.extend_from_slice(&[0x00, 0xFF]);
            assert_eq!(Frame::decode(&more, max), Err(e));
            let _ = e.status();
        }
    }
}

/// Whatever the body, `decode_body` does not panic, and a frame it returns re-encodes to it.
fn check_decode_body_any(t: u8, body: &[u8]) {
    if let Ok(f) = Frame::decode_body(t, body) {
        assert_eq!(f.ty(), t);
        assert_eq!(f.body_len(), body.len());
        assert_eq!(enc(&f), frame_bytes(t, body), "{f:?}");
    }
}

#[test]
fn prop_decoder_total_on_arbitrary_bytes() {
    fn prop(bytes: Vec<u8>, max: usize) -> bool {
        for m in [max, max % 256, max % 70_000, usize::MAX, 0, bytes.len()] {
            check_decode_any(&bytes, m);
        }
        if let Some((&t, body)) = bytes.split_first() {
            check_decode_body_any(t, body);
            for t in KNOWN_TYPES {
                check_decode_body_any(t, body);
            }
        }
        true
    }
    qc(3000).quickcheck(prop as fn(Vec<u8>, usize) -> bool);
}

/// Bytes close to valid frames: a valid frame with a few mutations, so that decoding gets deep.
#[derive(Clone, Debug)]
struct Mutant {
    ty: u8,
    body: Vec<u8>,
    bytes: Vec<u8>,
    max: usize,
}

impl Arbitrary for Mutant {
    fn arbitrary(g: &mut Gen) -> Self {
        let o = OwnedFrame::arbitrary(g);
        let mut t = o.ty();
        let mut body = write_fields(&o.fields());
        let interesting = [0x00u8, 0x01, 0x02, 0x03, 0x3F, 0x40, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xFF];
        for _ in 0..1 + below(g, 3) {
            if body.is_empty() {
                body.push(u8::arbitrary(g));
                continue;
            }
            let i = below(g, body.len() as u64) as usize;
            match below(g, 6) {
                0 => body[i] ^= 1 << below(g, 8),
                1 => body[i] = pick(g, &interesting),
                2 => body.truncate(i),
                3 => body.insert(i, pick(g, &interesting)),
                4 => {
                    body.remove(i);
                }
                _ => body.push(u8::arbitrary(g)),
            }
        }
        if coin(g, 5) {
            t = if coin(g, 2) { pick(g, &KNOWN_TYPES) } else { u8::arbitrary(g) };
        }
        let mut bytes = frame_bytes(t, &body);
        if coin(g, 4) {
            // Damage the framing as well.
            let i = below(g, bytes.len() as u64) as usize;
            match below(g, 3) {
                0 => bytes[i] = pick(g, &interesting),
                1 => bytes.truncate(i),
                _ => bytes.extend_from_slice(&frame_bytes(0x14, &[0x01])),
            }
        }
        let max = match below(g, 4) {
            0 => usize::MAX,
            1 => below(g, bytes.len() as u64 + 2) as usize,
            2 => body.len(),
            _ => usize::arbitrary(g),
        };
        Mutant { ty: t, body, bytes, max }
    }
}

#[test]
fn prop_decoder_total_on_mutated_frames() {
    fn prop(m: Mutant) -> bool {
        check_decode_any(&m.bytes, m.max);
        check_decode_any(&m.bytes, usize::MAX);
        check_decode_body_any(m.ty, &m.body);
        true
    }
    qc(5000).quickcheck(prop as fn(Mutant) -> bool);
}

#[test]
fn prop_concatenated_frames_decode_in_order() {
    fn prop(frames: Vec<OwnedFrame>) -> bool {
        let mut stream = Vec::new();
        for o in &frames {
            stream.extend_from_slice(&o.encode());
        }
        let max = frames.iter().map(|o| o.frame().body_len()).max().unwrap_or(0);
        let mut pos = 0;
        for o in &frames {
            match Frame::decode(&stream[pos..], max) {
                Ok(Decoded::Frame(f, n)) => {
                    assert_eq!(f, o.frame());
                    assert_eq!(n, f.encoded_len());
                    pos += n;
                }
                other => panic!("at {pos}: {other:?}"),
            }
        }
        pos == stream.len() && Frame::decode(&stream[pos..], max) == Ok(Decoded::Incomplete(1))
    }
    qc(300).quickcheck(prop as fn(Vec<OwnedFrame>) -> bool);
}

#[test]
fn prop_decode_body_canonical_on_arbitrary_bodies() {
    fn prop(t: u8, body: Vec<u8>) -> bool {
        check_decode_body_any(t, &body);
        for t in KNOWN_TYPES {
            check_decode_body_any(t, &body);
        }
        true
    }
    qc(3000).quickcheck(prop as fn(u8, Vec<u8>) -> bool);
}

// ---------------------------------------------------------------------------------------------
// Schema keys (SPEC.md §4.7, §4.21): the KEY flag and SIGNAL_KEYED
// ---------------------------------------------------------------------------------------------

const K8: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

#[test]
fn keyed_opening_frames_exact_bytes() {
    // CALL id 4, module 1, method 2, key, no deadline, payload "hi" (SPEC.md §4.7 example).
    let r = req(0, 4, 1, 2, 0, None, b"hi");
    check_exact(
        &OwnedFrame::Keyed { ty: ty::CALL, key: K8, req: r.clone() },
        &cat(&[&[0x10, 0x0F, 0x04, 0x04, 0x01, 0x02], &K8, &[0x00, 0x68, 0x69]]),
    );
    check_exact(
        &OwnedFrame::Keyed { ty: ty::NOTIFY, key: K8, req: req(0, 2, 5, 1, 0, None, &[0x2A]) },
        &cat(&[&[0x11, 0x0E, 0x04, 0x02, 0x05, 0x01], &K8, &[0x00, 0x2A]]),
    );
    // STREAM_OPEN with FIN and KEY, fragmented first frame (MORE, total_len 3, chunk "q").
    check_exact(
        &OwnedFrame::Keyed {
            ty: ty::STREAM_OPEN,
            key: K8,
            req: req(flags::MORE | flags::FIN, 1, 2, 3, 0, Some(3), b"q"),
        },
        &cat(&[&[0x18, 0x0F, 0x07, 0x01, 0x02, 0x03], &K8, &[0x00, 0x03, 0x71]]),
    );
    // SIGNAL_KEYED: module 7, method 1, key, payload "x".
    check_exact(
        &OwnedFrame::SignalKeyed { module: 7, method: 1, key: K8, payload: b"x".to_vec() },
        &cat(&[&[0x15, 0x0B, 0x07, 0x01], &K8, &[0x78]]),
    );
    check_all(&OwnedFrame::Keyed {
        ty: ty::CALL,
        key: K8,
        req: req(0, MAX62, u32::MAX, u32::MAX, MAX62, None, b""),
    });
    check_all(&OwnedFrame::SignalKeyed { module: u32::MAX, method: 0, key: FF8, payload: vec![] });
}

#[test]
fn keyed_frames_reject_short_keys_and_keep_the_field_order() {
    // The key is read after `method`: 7 of its 8 bytes and nothing else is Truncated.
    let body = cat(&[&[flags::KEY, 0x00, 0x01, 0x01], &K8[..7]]);
    assert_eq!(Frame::decode_body(ty::CALL, &body), Err(DecodeError::Truncated));
    assert_eq!(Frame::decode_body(ty::SIGNAL_KEYED, &[0x01, 0x01, 1, 2, 3]), Err(DecodeError::Truncated));
    // KEY is not a RESPONSE, STREAM_DATA or CONTINUATION flag.
    for t in [ty::RESPONSE, ty::STREAM_DATA, ty::CONTINUATION] {
        let r = Frame::decode_body(t, &[flags::KEY, 0x00, 0x00]);
        assert_eq!(r, Err(DecodeError::InvalidFlags(0x04)), "{t:#04x}");
    }
    // The first reserved bit after KEY is still refused on every opening frame.
    for t in [ty::CALL, ty::NOTIFY, ty::STREAM_OPEN] {
        let r = Frame::decode_body(t, &[0x08, 0x00, 0x01, 0x01, 0x00]);
        assert_eq!(r, Err(DecodeError::InvalidFlags(0x08)), "{t:#04x}");
    }
    // total_len is compared with the payload, never with the key.
    let body = cat(&[&[flags::KEY | flags::MORE, 0x00, 0x01, 0x01], &K8, &[0x00, 0x02, 0x61, 0x62]]);
    assert_eq!(Frame::decode_body(ty::CALL, &body), Err(DecodeError::InvalidLength));
}

#[test]
fn open_and_opening_are_inverse() {
    let r = Request { flags: 0, id: 2, module: 1, method: 1, budget_us: 0, total_len: None, payload: b"x" };
    for t in [ty::CALL, ty::NOTIFY, ty::STREAM_OPEN] {
        for key in [None, Some(SchemaKey(K8))] {
            let f = Frame::open(t, key, r);
            assert_eq!(f.ty(), t);
            assert_eq!(f.opening(), Some((t, key, r)));
        }
    }
    assert_eq!(Frame::Cancel { id: 1 }.opening(), None);
}
