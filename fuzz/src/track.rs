//! What an application observes on one connection, checked against the core's promises
//! (`Event` docs): every call or notification this side opened resolves exactly once (a
//! `Response`, a `Failed`, or a successful `cancel`), nothing follows `Closed`, and `Closed`
//! comes only after every exchange was resolved.

use std::collections::HashMap;
use tandem_core::{Connection, DirectRead, Event, RequestKind, State, Status};

/// One call or reliable notification this side opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    /// No outcome yet.
    Open,
    /// `Response` or `Failed` delivered.
    Resolved,
    /// Settled by a successful `cancel`.
    Cancelled,
}

/// One stream this side opened.
#[derive(Clone, Copy, Debug, Default)]
pub struct OutStream {
    /// `StreamFin` seen.
    pub fin: bool,
    /// `StreamReset` seen.
    pub reset: bool,
    /// This side finished or reset it.
    pub ended: bool,
}

/// Event bookkeeping for one connection.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Outbound calls and notifications: id → (is notify, state).
    pub calls: HashMap<u64, (bool, CallState)>,
    /// Outbound streams.
    pub streams: HashMap<u64, OutStream>,
    /// Inbound calls/notifications delivered and not yet answered: (id, is notify).
    pub in_calls: Vec<(u64, bool)>,
    /// Inbound streams delivered and not yet released by this side.
    pub in_streams: Vec<u64>,
    /// Every inbound stream ever delivered.
    pub all_in_streams: std::collections::HashSet<u64>,
    /// Stream items delivered and not yet consumed, per stream: (items, bytes).
    pub unconsumed: HashMap<u64, (u32, u32)>,
    /// Highest inbound request id delivered.
    pub last_request: Option<u64>,
    /// Every id this side opened, in order.
    pub own_ids: Vec<u64>,
    /// Ids of the streams this side opened, in order.
    pub stream_ids: Vec<u64>,
    /// Every request id the peer opened, in order.
    pub peer_ids: Vec<u64>,
    /// `Connected` seen.
    pub connected: bool,
    /// `Closed` seen.
    pub closed: bool,
    /// Events seen.
    pub events: usize,
    /// Stream payloads of at least this many bytes are received directly when the connection
    /// offers them (`Connection::direct_offer`), as the runtimes do; `None`: every byte goes
    /// through the receive buffer.
    pub direct: Option<usize>,
    /// The direct item being received.
    pub direct_item: Option<Vec<u8>>,
    /// Items that arrived by direct receive.
    pub direct_items: u64,
}

impl Tracker {
    /// Records a call or notification this side just opened.
    pub fn opened_call(&mut self, id: u64, notify: bool) {
        assert!(!self.closed, "opened {id} after Closed");
        if let Some(&last) = self.own_ids.last() {
            assert!(id > last, "id {id} not above the previous {last}");
            assert_eq!(id % 2, last % 2, "id {id} changed parity");
        }
        self.own_ids.push(id);
        assert!(self.calls.insert(id, (notify, CallState::Open)).is_none(), "id {id} reused");
    }

    /// Records a stream this side just opened.
    pub fn opened_stream(&mut self, id: u64) {
        if let Some(&last) = self.own_ids.last() {
            assert!(id > last, "id {id} not above the previous {last}");
        }
        self.own_ids.push(id);
        self.stream_ids.push(id);
        self.streams.insert(id, OutStream::default());
    }

    /// Records a successful `cancel` of a call or notification.
    pub fn cancelled(&mut self, id: u64) {
        if let Some((_, st)) = self.calls.get_mut(&id) {
            assert_eq!(*st, CallState::Open, "cancel({id}) succeeded on a settled call");
            *st = CallState::Cancelled;
        }
    }

    /// Records a successful `respond`.
    pub fn responded(&mut self, id: u64) {
        self.in_calls.retain(|&(i, _)| i != id);
    }

    /// Records a successful `stream_finish` / `stream_reset` (or `cancel` of a stream).
    pub fn released(&mut self, id: u64) {
        self.in_streams.retain(|&i| i != id);
        if let Some(s) = self.streams.get_mut(&id) {
            s.ended = true;
        }
    }

    /// Checks one event and records it.
    pub fn on_event(&mut self, ev: &Event<'_>) {
        self.events += 1;
        assert!(!self.closed, "event after Closed: {ev:?}");
        match *ev {
            Event::Connected => {
                assert!(!self.connected, "second Connected");
                self.connected = true;
            }
            Event::Closed(e) => {
                let _ = (e.blame(), e.status(), e.to_string());
                for (id, (_, st)) in &self.calls {
                    assert_ne!(*st, CallState::Open, "Closed({e:?}) before call {id} resolved");
                }
                self.closed = true;
            }
            Event::Response { id, status, payload } => {
                let _ = status;
                let Some((notify, st)) = self.calls.get_mut(&id) else {
                    panic!("Response for {id}, which this side never opened as a call");
                };
                assert_eq!(*st, CallState::Open, "Response for call {id} that was already {st:?}");
                assert!(!*notify || payload.is_empty(), "notification {id} acknowledged with a payload");
                *st = CallState::Resolved;
            }
            Event::Failed { id, status } => {
                let Some((_, st)) = self.calls.get_mut(&id) else {
                    panic!("Failed({status:?}) for {id}, which this side never opened as a call");
                };
                assert_eq!(*st, CallState::Open, "Failed({status:?}) for call {id} that was already {st:?}");
                *st = CallState::Resolved;
            }
            Event::Request { id, kind, .. } => {
                assert!(self.connected, "Request before Connected");
                if let Some(last) = self.last_request {
                    assert!(id > last, "request id {id} not above {last}");
                }
                assert!(!self.own_ids.contains(&id), "request {id} has this side's id");
                self.last_request = Some(id);
                self.peer_ids.push(id);
                match kind {
                    RequestKind::Call => self.in_calls.push((id, false)),
                    RequestKind::Notify => self.in_calls.push((id, true)),
                    RequestKind::Stream { .. } => {
                        self.in_streams.push(id);
                        self.all_in_streams.insert(id);
                    }
                }
            }
            Event::Cancelled { id, status } => {
                let delivered = self.in_calls.iter().any(|&(i, _)| i == id);
                assert!(delivered, "Cancelled({status:?}) for {id}, not an unanswered inbound call");
            }
            Event::StreamData { id, payload } => {
                let known = self.streams.contains_key(&id) || self.all_in_streams.contains(&id);
                assert!(known, "StreamData for {id}, not an open stream");
                if let Some(s) = self.streams.get(&id) {
                    assert!(!s.reset && !s.fin, "StreamData on outbound stream {id} after its end ({s:?})");
                }
                let u = self.unconsumed.entry(id).or_default();
                u.0 += 1;
                u.1 += payload.len() as u32;
            }
            Event::StreamFin { id, status } => {
                if let Some(s) = self.streams.get_mut(&id) {
                    assert!(!s.fin && !s.reset, "StreamFin({status:?}) on outbound stream {id} after {s:?}");
                    s.fin = true;
                }
            }
            Event::StreamReset { id, status } => {
                if let Some(s) = self.streams.get_mut(&id) {
                    assert!(!s.reset, "second StreamReset({status:?}) on outbound stream {id}");
                    s.reset = true;
                }
                self.unconsumed.remove(&id);
            }
            Event::StreamWritable { id } => {
                let known = self.streams.contains_key(&id) || self.all_in_streams.contains(&id);
                assert!(known, "StreamWritable for {id}, not an open stream");
            }
            Event::Signal { method, payload } => {
                let _ = (method, payload);
                assert!(self.connected, "Signal before Connected");
            }
            Event::GoAway { bound, status } => {
                let _ = (bound, status);
                assert!(self.connected, "GoAway before Connected");
            }
            Event::AuthRequested { .. } => panic!("AuthRequested without Config::authenticate"),
            Event::ResumeRequested { token } => {
                // Only an acceptor that offers resumption reports it, before Connected.
                let _ = token;
                assert!(!self.connected, "ResumeRequested after Connected");
            }
        }
    }

    /// Drains every event of `c` into the tracker, answering nothing.
    pub fn drain(&mut self, c: &mut Connection<'_>, now: tandem_core::Instant) {
        for _ in 0..100_000 {
            match c.poll_event(now) {
                Some(ev) => self.on_event(&ev),
                None => {
                    if self.closed {
                        assert_eq!(c.state(), State::Closed);
                    }
                    self.offer_direct(c);
                    return;
                }
            }
        }
        panic!("poll_event did not run dry");
    }

    /// Offers transport bytes as a runtime does: into the payload of the item being received
    /// directly, if there is one, otherwise into the receive buffer. Returns how many were
    /// taken (fewer than offered: drain, then offer the rest).
    pub fn input(&mut self, c: &mut Connection<'_>, now: tandem_core::Instant, data: &[u8]) -> usize {
        if self.direct_item.is_some() && c.direct_remaining().is_none() {
            // The transport it was on is gone (suspended, resumed): the partial item too.
            self.direct_item = None;
        }
        let Some(buf) = self.direct_item.as_mut() else { return c.handle_input(now, data) };
        let rest = c.direct_remaining().expect("checked above");
        assert!(rest > 0, "a pending direct payload lacks nothing");
        let k = data.len().min(rest);
        buf.extend_from_slice(&data[..k]);
        match c.direct_read(now, k) {
            DirectRead::More(left) => assert_eq!(left, rest - k),
            DirectRead::Item(id) => {
                let payload = self.direct_item.take().expect("pending");
                self.direct_items += 1;
                self.on_event(&Event::StreamData { id, payload: &payload });
            }
            DirectRead::Dropped => self.direct_item = None,
        }
        k
    }

    /// After a full drain: begins the direct receive the connection offers, if any.
    fn offer_direct(&mut self, c: &mut Connection<'_>) {
        let Some(min) = self.direct else { return };
        if self.direct_item.is_some() {
            return;
        }
        if let Some(offer) = c.direct_offer(min) {
            assert!(offer.len >= min && offer.received.len() < offer.len, "{offer:?}");
            let (len, item) = (offer.len, offer.received.to_vec());
            let rest = c.direct_begin(min);
            assert_eq!(rest, len - item.len(), "direct_begin disagrees with the offer");
            assert!(c.recv_buffer().is_empty(), "the receive buffer is open during a direct payload");
            self.direct_item = Some(item);
        }
    }

    /// After the connection closed and its events were drained: every call resolved exactly
    /// once, and the table is empty.
    pub fn check_final(&self, c: &Connection<'_>) {
        if c.state() == State::Closed {
            assert!(self.closed, "state Closed without Event::Closed");
            assert_eq!(c.open_exchanges(), 0, "closed connection still tracks exchanges");
        }
        if self.closed {
            for (id, (_, st)) in &self.calls {
                assert_ne!(*st, CallState::Open, "call {id} never resolved");
            }
        }
    }
}

/// Maps a fuzzer byte to a status: known codes mostly, sometimes unknown ones.
pub fn status(b: u8) -> Status {
    match b {
        0..=25 => Status(b.into()),
        26..=40 => Status(64 + u32::from(b - 26)),
        41..=250 => Status(u32::from(b) % 26),
        251 => Status(1000),
        252 => Status(0x3fff),
        253 => Status(0x4000),
        254 => Status(u32::MAX - 1),
        _ => Status(u32::MAX),
    }
}

/// Maps a fuzzer byte to a payload length: small mostly, sometimes around the limits.
pub fn length(b: u8) -> usize {
    const BIG: [usize; 16] =
        [255, 256, 1000, 1191, 1200, 2048, 4086, 4087, 4096, 4097, 8192, 16384, 65527, 65536, 65537, 70000];
    if b < 240 {
        usize::from(b % 80)
    } else {
        BIG[usize::from(b - 240)]
    }
}

/// Payload bytes for any length [`length`] returns.
pub static PAYLOAD: [u8; 70_000] = [0x5a; 70_000];
