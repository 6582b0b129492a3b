//! What the simulator knows about every exchange of one connection, from both ends at once: the
//! ground truth the invariants are checked against.

use std::collections::{BTreeMap, BTreeSet};
use tandem_core::{Config, Instant, MethodId, Status};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XKind {
    Call,
    Notify,
    Stream,
}

/// One direction of a stream (index 0: opener → responder, 1: responder → opener).
#[derive(Debug, Default)]
pub struct Dir {
    /// Digests of the items the sender's `stream_send` accepted, in order.
    pub sent: Vec<u64>,
    pub sent_bytes: u64,
    /// Items delivered to the receiver (a prefix of `sent`).
    pub got: usize,
    pub got_bytes: u64,
    /// The sender finished its direction with this status (FIN, or FIN on open).
    pub fin_status: Option<Status>,
    /// The sender reset the stream.
    pub sender_reset: bool,
    /// The receiver saw StreamFin / StreamReset.
    pub recv_fin: bool,
    pub recv_reset: u32,
    /// The receiver reset the stream itself: nothing more may be delivered to it.
    pub recv_local_reset: bool,
    /// Items the receiver's application consumed (before any local reset): the credit it may
    /// have granted back.
    pub consumed_items: u64,
    pub consumed_bytes: u64,
    /// Credit a session resumption handed out again (SPEC.md §13.4): what was sent and not yet
    /// consumed at each restart of the windows.
    pub slack_items: u64,
    pub slack_bytes: u64,
}

#[derive(Debug)]
pub struct Ex {
    pub opener: usize,
    pub kind: XKind,
    pub method: MethodId,
    pub payload: u64,
    pub deadline: Option<Instant>,
    pub half_close: bool,
    /// Times the exchange resolved at its initiator (must end at exactly 1).
    pub resolved: u32,
    pub resolved_how: Vec<&'static str>,
    /// Times the responder's application was handed the request (must stay ≤ 1).
    pub seen: u32,
    pub cancelled_by_opener: bool,
    /// The responder's application was told the request was cancelled, with this status.
    pub handler_cancel: Option<Status>,
    /// What the initiator must receive, as fixed by the responder's `respond`.
    pub expected: Option<(Status, u64)>,
    /// The opener's GOAWAY bound excluded this exchange.
    pub goaway_refused: bool,
    pub dirs: [Dir; 2],
    /// Opener: reset or cancelled the stream itself.
    pub opener_local_reset: bool,
    /// Opener: saw the responder's terminal (StreamFin or StreamReset).
    pub opener_peer_fin: bool,
    pub opener_peer_reset: bool,
    /// Opener: its own direction has ended.
    pub opener_end: bool,
}

impl Ex {
    pub fn new(
        opener: usize,
        kind: XKind,
        method: MethodId,
        payload: u64,
        deadline: Option<Instant>,
    ) -> Self {
        Ex {
            opener,
            kind,
            method,
            payload,
            deadline,
            half_close: false,
            resolved: 0,
            resolved_how: Vec::new(),
            seen: 0,
            cancelled_by_opener: false,
            handler_cancel: None,
            expected: None,
            goaway_refused: false,
            dirs: [Dir::default(), Dir::default()],
            opener_local_reset: false,
            opener_peer_fin: false,
            opener_peer_reset: false,
            opener_end: false,
        }
    }
}

/// Everything about one connection (one "epoch" of a client–server pair).
pub struct Epoch {
    pub pair: usize,
    pub number: u32,
    pub cfg: [Config; 2],
    pub ex: BTreeMap<u64, Ex>,
    pub killed: bool,
    /// A resumable session lost its transport (it must come back, nothing may be lost).
    pub lost: bool,
    /// Times the session was resumed on a new transport.
    pub resumed: u32,
    /// The client asked to resume the session and was offered a new one (then closed).
    pub declined: bool,
    /// The server's endpoint closed the server's end: a newer connection took its name.
    pub replaced: bool,
    /// The server's endpoint evicted the suspended session (too many, or the memory budget).
    pub evicted: bool,
    /// The server's endpoint had cached answers shed (the memory budget).
    pub shed: bool,
    /// A transport was killed half-open (only the client was told).
    pub half_open: bool,
    /// The client's dialer gave up reconnecting and closed the connection.
    pub gave_up: bool,
    pub goaway: bool,
    /// Closed for any reason before the scenario ended.
    pub ended: bool,
    pub connected: [bool; 2],
    pub closed: [bool; 2],
    /// Signal sequence numbers sent by side i / received by side i.
    pub sig_sent: [BTreeSet<u64>; 2],
    pub sig_got: [BTreeSet<u64>; 2],
    /// GOAWAY bound received by side i.
    pub goaway_bound: [Option<u64>; 2],
    /// UNAVAILABLE outcomes reported while the connection was still up: each must be justified
    /// by a GOAWAY bound the side received.
    pub unavail: Vec<(usize, u64)>,
}

impl Epoch {
    pub fn new(pair: usize, number: u32, cfg: [Config; 2]) -> Self {
        Epoch {
            pair,
            number,
            cfg,
            ex: BTreeMap::new(),
            killed: false,
            lost: false,
            resumed: 0,
            declined: false,
            replaced: false,
            evicted: false,
            shed: false,
            half_open: false,
            gave_up: false,
            goaway: false,
            ended: false,
            connected: [false; 2],
            closed: [false; 2],
            sig_sent: [BTreeSet::new(), BTreeSet::new()],
            sig_got: [BTreeSet::new(), BTreeSet::new()],
            goaway_bound: [None; 2],
            unavail: Vec::new(),
        }
    }

    /// Final checks once the scenario is quiescent; returns violation messages.
    pub fn final_check(&self, out: &mut Vec<String>) {
        let tag = format!("pair {} conn #{}", self.pair, self.number);
        for (id, x) in &self.ex {
            if x.resolved != 1 {
                out.push(format!(
                    "{tag}: exchange {id} ({:?} {:?}) opened by side {} resolved {} times at its initiator ({:?})",
                    x.kind, x.method, x.opener, x.resolved, x.resolved_how
                ));
            }
            if x.seen > 1 {
                out.push(format!("{tag}: exchange {id} delivered {} times to the handler", x.seen));
            }
            if x.goaway_refused && x.seen > 0 {
                out.push(format!("{tag}: exchange {id} was refused by GOAWAY but reached the handler"));
            }
            let survived = !self.ended;
            if survived
                && x.kind == XKind::Notify
                && x.deadline.is_none()
                && !x.cancelled_by_opener
                && x.seen != 1
            {
                out.push(format!(
                    "{tag}: reliable notification {id} delivered {} times on a connection that survived",
                    x.seen
                ));
            }
            if x.kind == XKind::Stream && survived {
                for (d, dir) in x.dirs.iter().enumerate() {
                    let reset = dir.sender_reset || dir.recv_local_reset || dir.recv_reset > 0;
                    let reset = reset || x.dirs[1 - d].sender_reset || x.dirs[1 - d].recv_local_reset;
                    let reset = reset || x.deadline.is_some() || x.goaway_refused;
                    if !reset && dir.fin_status.is_some() && dir.got != dir.sent.len() {
                        out.push(format!(
                            "{tag}: stream {id} direction {d}: {} of {} items delivered on a connection that survived",
                            dir.got,
                            dir.sent.len()
                        ));
                    }
                }
            }
        }
        for i in 0..2 {
            for s in &self.sig_got[i] {
                if !self.sig_sent[1 - i].contains(s) {
                    out.push(format!("{tag}: side {i} received signal {s} that was never sent"));
                }
            }
            // SIGNALs in flight are lost with a transport, even when the session resumes.
            if !self.ended && !self.lost && self.sig_got[i].len() != self.sig_sent[1 - i].len() {
                out.push(format!(
                    "{tag}: side {i} received {} of {} signals on a connection that survived",
                    self.sig_got[i].len(),
                    self.sig_sent[1 - i].len()
                ));
            }
        }
        for &(side, id) in &self.unavail {
            // A declined resumption ends the old session's exchanges UNAVAILABLE (SPEC.md §13.3).
            let ok = self.goaway_bound[side].is_some_and(|b| id >= b) || (side == 0 && self.declined);
            if !ok {
                out.push(format!(
                    "{tag}: side {side} exchange {id} resolved UNAVAILABLE while open, without a GOAWAY excluding it"
                ));
            }
        }
    }
}
