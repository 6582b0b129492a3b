//! Benchmarks for the tandem protocol. This crate is not published.
//!
//! What is here:
//!
//! * **Criterion micro-benchmarks** of `tandem-core` (`benches/core.rs`, run with
//!   `cargo bench -p tandem-benches`): frame encoding and decoding, one unary exchange between
//!   two cores in memory (alone and pipelined), stream chunk throughput, and the decoder on a
//!   buffer of many coalesced frames.
//! * **An allocation test** (`tests/alloc.rs`, run by `cargo test`): after warm-up, steady
//!   unary calls and stream items between two cores with owned storage perform no heap
//!   allocation.
//!
//! * **The end-to-end comparison** (`src/bin/compare/`, run with
//!   `cargo run --release -p tandem-benches [--features peers] --bin compare -- --help`): both
//!   runtimes over TCP and Unix sockets against a raw-socket floor and, with the `peers` feature,
//!   `tarpc` and `tonic`: unary RTT percentiles, pipelined calls per second, stream throughput,
//!   allocations per call and resident memory per idle connection, unpinned and pinned to one
//!   CPU. `BENCHMARKS.md` at the repository root is generated from its output.
//! * **The firmware size probe** (`firmware-size/`, its own workspace): the code size the core
//!   adds to a thumbv7em image (`compare --firmware` builds and measures it).
//!
//! This library holds the in-memory drivers both share. Two [`Connection`]s are joined by a
//! [`Pair`]: a "socket" that is just a scratch buffer, moved with
//! [`poll_transmit`](Connection::poll_transmit) and [`handle_input`](Connection::handle_input),
//! and a fake clock that never moves (no timer ever fires, so keepalive and timeouts stay out of
//! the measurements). Every driver here reuses buffers allocated up front, so once warmed up the
//! drivers themselves never allocate: whatever allocation is seen is the core's.

#![forbid(unsafe_code)]

pub use tandem_core;

use tandem_core::frame::{Ack, Frame, Hello, Params, Request};
use tandem_core::{
    ApiError, Config, Connection, Event, Identity, Instant, MethodId, RequestKind, Role, Status,
};

/// A connection with owned, growable storage ([`Connection::new`]).
pub type Conn = Connection<'static>;

/// The method every unary benchmark calls: the server echoes the payload.
pub const ECHO: MethodId = MethodId::new(1, 1);
/// The method every stream benchmark opens: the server consumes the items.
pub const SINK: MethodId = MethodId::new(1, 2);
/// Size of the scratch buffer standing in for the socket: what one `poll_transmit` can return.
pub const WIRE_BUF: usize = 64 * 1024;

/// Moves everything `from` has queued into `to`, as a socket would, and returns the number of
/// bytes moved.
///
/// `drain` is the receiving application: it must drain `to`'s events with
/// [`poll_event`](Connection::poll_event). It runs whenever `to`'s receive buffer is full (the
/// core parses lazily, so it only makes room as events are drained) and once at the end. Frames
/// `to` queues in reply (responses, credit) stay queued for the other direction.
///
/// # Panics
///
/// If `to` accepts no bytes even after `drain` ran (the application did not drain its events).
pub fn transfer(
    from: &mut Conn,
    to: &mut Conn,
    now: Instant,
    wire: &mut [u8],
    mut drain: impl FnMut(&mut Conn),
) -> usize {
    let mut moved = 0;
    loop {
        let n = from.poll_transmit(now, wire);
        if n == 0 {
            break;
        }
        moved += n;
        let mut off = 0;
        let mut stalled = false;
        while off < n {
            let k = to.handle_input(now, &wire[off..n]);
            off += k;
            if k == 0 {
                assert!(!stalled, "receiver accepts no input: its events were not drained");
                stalled = true;
            } else {
                stalled = false;
            }
            if off < n {
                drain(to);
            }
        }
    }
    drain(to);
    moved
}

/// Two connected cores joined in memory: `client` dialed, `server` accepted.
pub struct Pair {
    /// The dialer.
    pub client: Conn,
    /// The acceptor.
    pub server: Conn,
    /// The fake clock; it never advances unless a caller moves it.
    pub now: Instant,
    wire: Vec<u8>,
}

impl Pair {
    /// Two cores with the same `config`, handshake completed (both `Connected` events taken).
    pub fn new(config: Config) -> Pair {
        Pair::with_configs(config.clone(), config)
    }

    /// Two cores with their own configurations, handshake completed.
    ///
    /// # Panics
    ///
    /// If a configuration is invalid or the handshake does not complete.
    pub fn with_configs(client: Config, server: Config) -> Pair {
        Pair::build(client, server, b"")
    }

    /// Two cores whose session is resumable (the server offers a session token, SPEC.md §13):
    /// the client retains its requests, the server caches its answers, ACKs trim the cache.
    pub fn resumable(config: Config) -> Pair {
        Pair::build(config.clone(), config, b"bench-session-token-0123456789")
    }

    fn build(client: Config, server: Config, token: &'static [u8]) -> Pair {
        let now = Instant::ZERO;
        let me = |name: &'static str| Identity { name: name.as_bytes(), ..Identity::default() };
        let server_id = Identity { session: token, ..me("bench-server") };
        let mut p = Pair {
            client: Connection::new(Role::Dialer, client, me("bench-client"), now).expect("client config"),
            server: Connection::new(Role::Acceptor, server, server_id, now).expect("server config"),
            now,
            wire: vec![0; WIRE_BUF],
        };
        let (mut c, mut s) = (0, 0);
        p.client_to_server(|conn| s += expect_connected(conn, now));
        p.server_to_client(|conn| c += expect_connected(conn, now));
        assert_eq!((c, s), (1, 1), "handshake did not complete");
        p
    }

    /// [`transfer`] from client to server; `drain` drains the server's events.
    pub fn client_to_server(&mut self, drain: impl FnMut(&mut Conn)) -> usize {
        transfer(&mut self.client, &mut self.server, self.now, &mut self.wire, drain)
    }

    /// [`transfer`] from server to client; `drain` drains the client's events.
    pub fn server_to_client(&mut self, drain: impl FnMut(&mut Conn)) -> usize {
        transfer(&mut self.server, &mut self.client, self.now, &mut self.wire, drain)
    }
}

fn expect_connected(conn: &mut Conn, now: Instant) -> usize {
    let mut n = 0;
    while let Some(ev) = conn.poll_event(now) {
        match ev {
            Event::Connected => n += 1,
            other => panic!("unexpected event during the handshake: {other:?}"),
        }
    }
    n
}

/// Server application: answers every call with its own payload (copied through `scratch`, whose
/// capacity should hold the largest payload so that no allocation happens). Returns the number
/// of calls answered.
///
/// # Panics
///
/// On any event other than a call request, or if `respond` fails.
pub fn echo_requests(conn: &mut Conn, now: Instant, scratch: &mut Vec<u8>) -> usize {
    let mut n = 0;
    while let Some(ev) = conn.poll_event(now) {
        match ev {
            Event::Request { id, kind: RequestKind::Call, payload, .. } => {
                scratch.clear();
                scratch.extend_from_slice(payload);
                conn.respond(id, Status::OK, scratch).expect("respond");
                n += 1;
            }
            other => panic!("echo server: unexpected event {other:?}"),
        }
    }
    n
}

/// Client application: takes every response and returns how many arrived.
///
/// # Panics
///
/// On any event other than a successful response.
pub fn take_responses(conn: &mut Conn, now: Instant) -> usize {
    let mut n = 0;
    while let Some(ev) = conn.poll_event(now) {
        match ev {
            Event::Response { status: Status::OK, payload, .. } => {
                core::hint::black_box(payload);
                n += 1;
            }
            other => panic!("client: unexpected event {other:?}"),
        }
    }
    n
}

/// The unary benchmark: a connected [`Pair`] whose server echoes, and a call payload.
pub struct Unary {
    /// The two cores.
    pub pair: Pair,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl Unary {
    /// A connected pair (default configuration) and a `payload_len`-byte payload.
    pub fn new(payload_len: usize) -> Unary {
        Unary::on(Pair::new(Config::default()), payload_len)
    }

    /// The same over a resumable session (reply cache, retained requests, ACKs).
    pub fn resumable(payload_len: usize) -> Unary {
        Unary::on(Pair::resumable(Config::default()), payload_len)
    }

    fn on(pair: Pair, payload_len: usize) -> Unary {
        Unary {
            pair,
            payload: (0..payload_len).map(|i| i as u8).collect(),
            scratch: Vec::with_capacity(payload_len),
        }
    }

    /// One round of `calls` pipelined calls: the client issues them all, their bytes cross to
    /// the server, which answers each as it is delivered, and the responses cross back to the
    /// client, which takes them all. With `calls == 1` this is one full unary exchange.
    ///
    /// # Panics
    ///
    /// If a call is refused or not every call is answered within the round.
    pub fn round(&mut self, calls: usize) {
        let now = self.pair.now;
        for _ in 0..calls {
            self.pair.client.call(now, ECHO, &self.payload, None).expect("call");
        }
        let mut served = 0;
        let scratch = &mut self.scratch;
        self.pair.client_to_server(|s| served += echo_requests(s, now, scratch));
        let mut answered = 0;
        self.pair.server_to_client(|c| answered += take_responses(c, now));
        assert_eq!((served, answered), (calls, calls), "round incomplete");
    }
}

/// The stream benchmark: the client opened a stream on a connected [`Pair`] and sends items;
/// the server consumes each as it is delivered.
pub struct Streaming {
    /// The two cores.
    pub pair: Pair,
    /// The stream's id.
    pub id: u64,
    item: Vec<u8>,
}

impl Streaming {
    /// A connected pair with `config` on both sides, a stream opened by the client and
    /// accepted by the server, and an `item_len`-byte item.
    ///
    /// # Panics
    ///
    /// If the stream cannot be opened.
    pub fn new(item_len: usize, config: Config) -> Streaming {
        Streaming::on(Pair::new(config), item_len)
    }

    /// The same over a resumable session: every item is retained until its credit confirms
    /// it (SPEC.md §13.7), and is sent from that retained copy.
    ///
    /// # Panics
    ///
    /// If the stream cannot be opened.
    pub fn resumable(item_len: usize, config: Config) -> Streaming {
        Streaming::on(Pair::resumable(config), item_len)
    }

    fn on(mut pair: Pair, item_len: usize) -> Streaming {
        let now = pair.now;
        let id = pair.client.open_stream(now, SINK, b"", None, false).expect("open_stream");
        let mut opened = 0;
        pair.client_to_server(|s| {
            while let Some(ev) = s.poll_event(now) {
                match ev {
                    Event::Request { kind: RequestKind::Stream { .. }, .. } => opened += 1,
                    other => panic!("stream server: unexpected event {other:?}"),
                }
            }
        });
        assert_eq!(opened, 1, "stream not delivered");
        Streaming { pair, id, item: (0..item_len).map(|i| i as u8).collect() }
    }

    /// Length of one item in bytes.
    pub fn item_len(&self) -> usize {
        self.item.len()
    }

    /// Moves `items` items from client to server. The client sends while it has credit; the
    /// server consumes each item as it is delivered ([`Connection::stream_consumed`]); the credit
    /// it returns flows back to the client; repeat until all have arrived.
    ///
    /// # Panics
    ///
    /// If the transfer stops making progress or an unexpected event arrives.
    pub fn send_items(&mut self, items: u64) {
        let (now, id) = (self.pair.now, self.id);
        let (mut sent, mut received) = (0u64, 0u64);
        while received < items {
            let before = (sent, received);
            while sent < items {
                match self.pair.client.stream_send(id, &self.item) {
                    Ok(()) => sent += 1,
                    Err(ApiError::NoCredit | ApiError::TxFull) => break,
                    Err(e) => panic!("stream_send: {e:?}"),
                }
            }
            self.pair.client_to_server(|s| received += consume_items(s, now));
            self.pair.server_to_client(|c| {
                while let Some(ev) = c.poll_event(now) {
                    match ev {
                        Event::StreamWritable { .. } => {}
                        other => panic!("stream client: unexpected event {other:?}"),
                    }
                }
            });
            assert_ne!(before, (sent, received), "stream transfer stalled");
        }
    }
}

/// Stream receiver application: consumes every item delivered and returns how many.
///
/// # Panics
///
/// On any event other than a stream item.
pub fn consume_items(conn: &mut Conn, now: Instant) -> u64 {
    let mut n = 0;
    while let Some(ev) = conn.poll_event(now) {
        match ev {
            Event::StreamData { id, payload } => {
                let len = u32::try_from(core::hint::black_box(payload).len()).expect("item size");
                conn.stream_consumed(id, 1, len).expect("stream_consumed");
                n += 1;
            }
            other => panic!("stream server: unexpected event {other:?}"),
        }
    }
    n
}

/// The coalesced-input benchmark: many CALL frames reach an acceptor as one buffer, back to
/// back, as when a pipelining client's writes coalesce in the socket.
///
/// The frames are encoded directly (the dialer's side is not involved), with fresh increasing
/// ids every round; what the server sends back is discarded.
pub struct Coalesced {
    /// The two cores, configured so that `calls` calls may be open at once. Only the server is
    /// used after the handshake.
    pub pair: Pair,
    calls: usize,
    next_id: u64,
    payload: Vec<u8>,
    input: Vec<u8>,
    ids: Vec<u64>,
    scratch: Vec<u8>,
}

impl Coalesced {
    /// A connected pair allowing `calls` concurrent calls, with a `payload_len`-byte payload.
    pub fn new(calls: usize, payload_len: usize) -> Coalesced {
        let n = u32::try_from(calls).expect("calls");
        let config = Config { max_concurrent_calls: n, max_outbound_calls: n, ..Config::default() };
        Coalesced {
            pair: Pair::new(config),
            calls,
            next_id: 0,
            payload: (0..payload_len).map(|i| i as u8).collect(),
            input: Vec::new(),
            ids: Vec::with_capacity(calls),
            scratch: Vec::with_capacity(payload_len),
        }
    }

    /// Encodes the next round's input: `calls` CALL frames with fresh ids. Returns its length.
    pub fn prepare(&mut self) -> usize {
        self.input.clear();
        encode_calls_into(&mut self.input, self.next_id, self.calls, &self.payload);
        self.next_id += 2 * self.calls as u64;
        self.input.len()
    }

    /// The prepared input.
    pub fn input(&self) -> &[u8] {
        &self.input
    }

    /// Hands the prepared input to the server (`handle_input`, draining `poll_event` whenever
    /// its receive buffer is full) and returns the number of requests delivered. With
    /// `respond`, the server answers each call as it is delivered; otherwise it only records
    /// the ids, and the calls stay open until [`finish`](Self::finish).
    pub fn feed(&mut self, respond: bool) -> usize {
        let now = self.pair.now;
        let server = &mut self.pair.server;
        let (ids, scratch) = (&mut self.ids, &mut self.scratch);
        let mut delivered = 0;
        let mut drain = |s: &mut Conn| {
            if respond {
                delivered += echo_requests(s, now, scratch);
            } else {
                while let Some(ev) = s.poll_event(now) {
                    match ev {
                        Event::Request { id, payload, .. } => {
                            core::hint::black_box(payload);
                            ids.push(id);
                            delivered += 1;
                        }
                        other => panic!("server: unexpected event {other:?}"),
                    }
                }
            }
        };
        let mut off = 0;
        while off < self.input.len() {
            off += server.handle_input(now, &self.input[off..]);
            drain(server);
        }
        delivered
    }

    /// Answers whatever [`feed`](Self::feed) left open and discards everything the server
    /// queued, so the next round starts from the same state.
    ///
    /// # Panics
    ///
    /// If the server is no longer open or a call cannot be answered.
    pub fn finish(&mut self) {
        let server = &mut self.pair.server;
        for id in self.ids.drain(..) {
            server.respond(id, Status::OK, &self.payload).expect("respond");
        }
        server.transmit_done(server.pending_transmit());
        assert_eq!(server.open_exchanges(), 0, "calls left open");
        assert_eq!(server.state(), tandem_core::State::Open, "server closed");
    }
}

/// Appends `n` CALL frames to `out`, back to back, as a dialer sends them (ids `first_id`,
/// `first_id + 2`, …), each carrying `payload`.
pub fn encode_calls_into(out: &mut Vec<u8>, first_id: u64, n: usize, payload: &[u8]) {
    for i in 0..n as u64 {
        let f = Frame::Call(Request {
            flags: 0,
            id: first_id + 2 * i,
            module: ECHO.module,
            method: ECHO.method,
            budget_us: 0,
            total_len: None,
            payload,
        });
        let start = out.len();
        out.resize(start + f.encoded_len(), 0);
        f.encode(&mut out[start..]).expect("sized");
    }
}

/// A representative small frame of each of the 20 frame types, named by type, with 32-byte
/// payloads where the type carries one; then CALL and RESPONSE with a 64 KiB payload.
///
/// The HELLO parameters, ACK ranges and payloads live in memory leaked once per call (this is
/// meant to be called once per benchmark process).
pub fn sample_frames() -> Vec<(&'static str, Frame<'static>)> {
    let small: &'static [u8] = Box::leak((0..32u8).collect::<Box<[u8]>>());
    let big: &'static [u8] = Box::leak((0..64 * 1024).map(|i| i as u8).collect::<Box<[u8]>>());
    let pbuf: &'static mut [u8] = Box::leak(vec![0u8; 128].into_boxed_slice());
    let params = Params::encode_into(&Config::default().params(), pbuf).expect("params fit");
    let abuf: &'static mut [u8] = Box::leak(vec![0u8; 32].into_boxed_slice());
    let ack = Ack::encode_into(&[(1, 4), (11, 2)], abuf).expect("ack fits");
    let req = |id: u64, payload: &'static [u8]| Request {
        flags: 0,
        id,
        module: 7,
        method: 3,
        budget_us: 250_000,
        total_len: None,
        payload,
    };
    let response = |payload: &'static [u8]| Frame::Response {
        flags: 0,
        id: 1042,
        status: Status::OK,
        total_len: None,
        payload,
    };
    vec![
        (
            "hello",
            Frame::Hello(Hello {
                min_version: 1,
                max_version: 1,
                flags: 0,
                name: b"bench-client",
                auth: b"",
                session: b"",
                params,
            }),
        ),
        ("close", Frame::Close { status: Status::OK, message: b"bye" }),
        ("goaway", Frame::GoAway { bound: 1043, status: Status::OK, message: b"maintenance" }),
        ("ping", Frame::Ping(7u64.to_be_bytes())),
        ("pong", Frame::Pong(7u64.to_be_bytes())),
        ("ack", Frame::Ack(ack)),
        ("call_32B", Frame::Call(req(1042, small))),
        ("notify_32B", Frame::Notify(req(1044, small))),
        ("signal_32B", Frame::Signal { module: 7, method: 3, payload: small }),
        ("response_32B", response(small)),
        ("cancel", Frame::Cancel { id: 1042 }),
        ("stream_open_32B", Frame::StreamOpen(req(1046, small))),
        ("stream_data_32B", Frame::StreamData { flags: 0, id: 1046, total_len: None, payload: small }),
        ("stream_fin", Frame::StreamFin { id: 1046, status: Status::OK }),
        ("stream_reset", Frame::StreamReset { id: 1046, status: Status::CANCELLED }),
        ("stream_credit", Frame::StreamCredit { id: 1046, msgs: 32, bytes: 128 * 1024 }),
        ("conn_credit", Frame::ConnCredit { bytes: 512 * 1024 }),
        ("stream_resume", Frame::StreamResume { id: 1046, received: 12_345 }),
        ("continuation_32B", Frame::Continuation { flags: 0, id: 1042, payload: small }),
        ("extension", Frame::Extension { ty: 0x80, body: small }),
        ("call_64KiB", Frame::Call(req(1042, big))),
        ("response_64KiB", response(big)),
    ]
}
