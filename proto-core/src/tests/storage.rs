//! Caller-provided storage (`Connection::with_storage`): the `Storage::*_len` sizes, the refusal
//! of each undersized buffer, and two connections running in exactly the sizes computed.

use super::pair::ECHO;
use crate::config::DEFAULT_MAX_DATAGRAM;
use crate::{
    ApiError, Config, Connection, Event, Identity, Instant, Role, Slot, State, Status, Storage,
    StorageBuffer, StorageError, Transport,
};

/// A small firmware-like configuration, usable in `const` items.
const SMALL: Config = Config {
    max_frame_size: 4096,
    max_message_size: 6000,
    max_concurrent_calls: 2,
    max_concurrent_streams: 1,
    max_outbound_calls: 2,
    max_outbound_streams: 1,
    max_tx_buffer: 8192,
    ..Config::DEFAULT
};

// Sized at compile time from the same constant.
const RX: usize = Storage::rx_len(&SMALL);
const TX: usize = Storage::tx_len(&SMALL);
const REASM: usize = Storage::reassembly_len(&SMALL);
const SLOTS: usize = Storage::slots_len(&SMALL);

/// Owned buffers of chosen sizes, lent to `with_storage`.
struct Bufs {
    rx: Vec<u8>,
    tx: Vec<u8>,
    re: Vec<u8>,
    slots: Vec<Option<Slot>>,
}

impl Bufs {
    fn new(rx: usize, tx: usize, re: usize, slots: usize) -> Self {
        Bufs { rx: vec![0; rx], tx: vec![0; tx], re: vec![0; re], slots: (0..slots).map(|_| None).collect() }
    }
    fn exact(c: &Config) -> Self {
        Self::new(Storage::rx_len(c), Storage::tx_len(c), Storage::reassembly_len(c), Storage::slots_len(c))
    }
    fn storage(&mut self) -> Storage<'_> {
        Storage { rx: &mut self.rx, tx: &mut self.tx, reassembly: &mut self.re, slots: &mut self.slots }
    }
    fn connect(&mut self, role: Role, c: &Config) -> Result<Connection<'_>, StorageError> {
        let me = Identity { name: b"fw", ..Identity::default() };
        Connection::with_storage(role, c.clone(), me, self.storage(), Instant::ZERO)
    }
}

#[test]
fn config_default_is_the_const_default() {
    assert_eq!(Config::default(), Config::DEFAULT);
}

#[test]
fn sizes_follow_the_documented_formulas() {
    assert_eq!(RX, 4096 + 9);
    assert_eq!(TX, 8192);
    assert_eq!(REASM, 6000);
    assert_eq!(SLOTS, 2 + 1 + 2 + 1);
    let d = Config::default();
    assert_eq!(Storage::rx_len(&d), 65536 + 9);
    assert_eq!(Storage::tx_len(&d), 8 * 1024 * 1024);
    assert_eq!(Storage::reassembly_len(&d), 4 * 1024 * 1024);
    assert_eq!(Storage::slots_len(&d), 100 + 100 + 256 + 100);
    // A packet transport: at least one whole datagram.
    let p = Config { transport: Transport::Packet { max_datagram: 70_000 }, ..SMALL };
    assert_eq!(Storage::rx_len(&p), 70_000);
    let p = Config { transport: Transport::Packet { max_datagram: 1200 }, ..SMALL };
    assert_eq!(Storage::rx_len(&p), 4096 + 9);
    // Datagram mode: no fragmentation, no streams.
    let g = Config { transport: Transport::Datagram { max_datagram: 9000 }, ..SMALL };
    assert_eq!(Storage::rx_len(&g), 9000);
    assert_eq!(Storage::reassembly_len(&g), 0);
    assert_eq!(Storage::slots_len(&g), 2 + 2);
    let all = RX + TX + REASM + SLOTS * core::mem::size_of::<Option<Slot>>();
    assert_eq!(Storage::bytes_len(&SMALL), all);
}

/// Each buffer one short of its size is refused, naming that buffer, its length and the length
/// needed; at exactly the size the connection is built.
#[test]
fn each_undersized_buffer_is_refused_with_its_name_and_sizes() {
    assert!(Bufs::exact(&SMALL).connect(Role::Dialer, &SMALL).is_ok());
    let cases = [
        (StorageBuffer::Rx, Bufs::new(RX - 1, TX, REASM, SLOTS), RX),
        (StorageBuffer::Tx, Bufs::new(RX, TX - 1, REASM, SLOTS), TX),
        (StorageBuffer::Reassembly, Bufs::new(RX, TX, REASM - 1, SLOTS), REASM),
        (StorageBuffer::Slots, Bufs::new(RX, TX, REASM, SLOTS - 1), SLOTS),
    ];
    for (buffer, mut bufs, needed) in cases {
        let err = bufs.connect(Role::Acceptor, &SMALL).err().expect("refused");
        assert_eq!(err, StorageError::TooSmall { buffer, given: needed - 1, needed }, "{buffer:?}");
        let text = err.to_string();
        assert!(text.starts_with(buffer.name()), "{text}");
        assert!(
            text.contains(&format!("{} ", needed - 1)) && text.contains(&format!("needs {needed}")),
            "{text}"
        );
        assert!(text.contains("(&config)") && text.contains("lower"), "says what to do: {text}");
    }
    let err = Bufs::new(100, TX, REASM, SLOTS).connect(Role::Dialer, &SMALL).err().unwrap();
    assert_eq!(
        err.to_string(),
        "storage.rx holds 100 bytes but this Config needs 4105: size it with `Storage::rx_len(&config)`, \
         or lower max_frame_size (and max_datagram) in the Config"
    );
    let err = Bufs::new(RX, TX, REASM, 1).connect(Role::Dialer, &SMALL).err().unwrap();
    assert!(err.to_string().starts_with("storage.slots holds 1 entries but this Config needs 6"), "{err}");
    // The defaults need far more than a firmware buffer: refused, not silently reduced.
    let err = Bufs::exact(&SMALL).connect(Role::Dialer, &Config::default()).err().unwrap();
    assert!(matches!(err, StorageError::TooSmall { buffer: StorageBuffer::Rx, .. }), "{err}");
    // An invalid configuration is reported as such.
    let bad = Config { max_frame_size: 10, ..SMALL };
    let err = Bufs::exact(&SMALL).connect(Role::Dialer, &bad).err().unwrap();
    assert!(matches!(err, StorageError::Config(e) if e.field == "max_frame_size"), "{err}");
}

/// Datagram mode in exactly its sizes: no reassembly buffer, no stream slots; a handshake and
/// calls in both directions work.
#[test]
fn datagram_mode_needs_no_reassembly_buffer() {
    let g = Config { transport: Transport::Datagram { max_datagram: DEFAULT_MAX_DATAGRAM }, ..SMALL };
    let (mut ba, mut bb) = (Bufs::exact(&g), Bufs::exact(&g));
    assert_eq!((ba.re.len(), ba.slots.len()), (0, 4));
    let mut a = ba.connect(Role::Dialer, &g).unwrap();
    let mut b = bb.connect(Role::Acceptor, &g).unwrap();
    let now = Instant::ZERO;
    let mut answers = 0;
    for _ in 0..3 {
        answers += pass(&mut a, &mut b, now) + pass(&mut b, &mut a, now);
    }
    assert_eq!((a.state(), b.state()), (State::Open, State::Open));
    a.call(now, ECHO, b"ping", None).unwrap();
    b.call(now, ECHO, b"ping", None).unwrap();
    for _ in 0..3 {
        answers += pass(&mut a, &mut b, now) + pass(&mut b, &mut a, now);
    }
    assert_eq!(answers, 2);
}

/// Moves every datagram `from` has queued to `to`, echoing requests; returns the OK responses
/// `to` received.
fn pass(from: &mut Connection, to: &mut Connection, now: Instant) -> usize {
    let mut buf = [0u8; 1200];
    let mut answers = 0;
    loop {
        let n = from.poll_transmit(now, &mut buf);
        if n == 0 {
            return answers;
        }
        assert_eq!(to.handle_input(now, &buf[..n]), n);
        while let Some(e) = to.poll_event(now) {
            match e {
                Event::Request { id, payload, .. } => {
                    let body = payload.to_vec();
                    to.respond(id, Status::OK, &body).unwrap();
                }
                Event::Response { status, payload, .. } => {
                    assert_eq!((status, payload), (Status::OK, &b"ping"[..]));
                    answers += 1;
                }
                _ => {}
            }
        }
    }
}

/// Two connections in exactly the computed sizes: handshake, a fragmented call, the announced
/// message size honoured, and `max_tx_buffer` still the transmit bound when `tx` is larger.
#[test]
fn connections_run_in_exactly_the_computed_sizes() {
    let big_tx = Config { max_message_size: 16_384, ..SMALL };
    let mut ba = Bufs::new(RX, 4 * TX, Storage::reassembly_len(&big_tx), SLOTS);
    let mut bb = Bufs::exact(&big_tx);
    let mut a = ba.connect(Role::Dialer, &big_tx).unwrap();
    let mut b = bb.connect(Role::Acceptor, &big_tx).unwrap();
    let now = Instant::ZERO;
    let mut buf = [0u8; 1024];
    let mut pump = |a: &mut Connection, b: &mut Connection| {
        for _ in 0..50 {
            let n = a.poll_transmit(now, &mut buf);
            let mut off = 0;
            while off < n {
                off += b.handle_input(now, &buf[off..n]);
                while let Some(e) = b.poll_event(now) {
                    if let Event::Request { id, payload, .. } = e {
                        let body = payload.to_vec();
                        b.respond(id, Status::OK, &body).unwrap();
                    }
                }
            }
            let m = b.poll_transmit(now, &mut buf);
            let mut off = 0;
            while off < m {
                off += a.handle_input(now, &buf[off..m]);
                while a.poll_event(now).is_some() {}
            }
        }
    };
    pump(&mut a, &mut b);
    assert_eq!(a.state(), State::Open);
    assert_eq!(a.peer().unwrap().limits.max_message_size, 16_384, "announced as configured");
    assert!(matches!(a.call(now, ECHO, &[0u8; 16_385], None), Err(ApiError::TooLarge { .. })));
    let id = a.call(now, ECHO, &[7u8; 5000], None).unwrap(); // fragmented: frames are 4096 bytes
    pump(&mut a, &mut b);
    assert_eq!(a.open_exchanges(), 0, "call {id} answered");
    // `a`'s tx is four times `max_tx_buffer`, but only `max_tx_buffer` is used: application
    // frames get it less the control reserve (a quarter of 8192).
    let err = a.call(now, ECHO, &[1u8; 7000], None).unwrap_err();
    assert!(matches!(err, ApiError::TooLarge { limit, .. } if limit == 8192 - 2048), "{err:?}");
}
