//! What each end's application does with the events of its connection, and the checks of every
//! event against the ledger.

use super::*;

impl Sim {
    pub(super) fn on_event(&mut self, p: usize, live: &mut Live, side: usize, ev: Ev) {
        let ep = live.epoch;
        let now = self.now;
        let tag = format!("pair {p} conn #{} side {side}", self.epochs[ep].number);
        let opener_of = |id: u64| (id % 2) as usize; // dialer (side 0) ids are even
        match ev {
            Ev::Connected => {
                // A declined resumption reports the new session it was offered.
                if live.ends[side].connected && !(side == 0 && self.epochs[ep].declined) {
                    self.violation(format!("{tag}: Connected twice"));
                }
                live.ends[side].connected = true;
                self.epochs[ep].connected[side] = true;
            }
            Ev::Request { id, kind, method, deadline, payload } => {
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: request {id} that was never opened"));
                    return;
                };
                x.seen += 1;
                let seen = x.seen;
                let same = x.opener == 1 - side
                    && x.payload == digest(&payload)
                    && x.method == method
                    && match kind {
                        RequestKind::Call => x.kind == XKind::Call,
                        RequestKind::Notify => x.kind == XKind::Notify,
                        RequestKind::Stream { half_closed } => {
                            x.kind == XKind::Stream && half_closed == x.half_close
                        }
                    };
                let has_dl = x.deadline.is_some();
                let refused = x.goaway_refused;
                if seen > 1 {
                    self.violation(format!("{tag}: handler saw request {id} twice"));
                }
                if !same {
                    self.violation(format!("{tag}: request {id} differs from what was sent"));
                }
                if refused {
                    self.violation(format!("{tag}: request {id} was refused by GOAWAY yet delivered"));
                }
                if deadline.is_some() != has_dl {
                    self.violation(format!("{tag}: request {id} deadline {deadline:?}, sent with {has_dl}"));
                }
                match kind {
                    RequestKind::Call | RequestKind::Notify => {
                        live.ends[side].pending.insert(id, InReq { method, payload, cancelled: None });
                        if method != CALL_NEVER {
                            let delay = match self.rng.below(10) {
                                0..=3 => 0,
                                4..=7 => self.rng.range(1, 30_000),
                                _ => self.rng.range(50_000, 600_000),
                            };
                            if delay == 0 {
                                self.respond(p, live, side, id);
                            } else {
                                self.schedule_in(delay, p, Act::Respond { ep, side, id });
                            }
                        }
                    }
                    RequestKind::Stream { half_closed } => {
                        let peer = &self.epochs[ep].cfg[1 - side];
                        let max_item = (peer.stream_credit_bytes as usize).min(5000);
                        let n = match method {
                            S_SERVER => self.rng.below(8),
                            S_BIDI => self.rng.below(6),
                            _ => 0,
                        };
                        let to_send: VecDeque<Vec<u8>> = (0..n).map(|_| self.item(max_item)).collect();
                        let sa = SApp {
                            opener: false,
                            to_send,
                            blocked: false,
                            end_sent: false,
                            peer_fin: half_closed,
                            peer_reset: false,
                            wait_peer_fin: method == S_CLIENT || (method == S_BIDI && self.rng.chance(1, 2)),
                            hold: method == S_HOLD,
                            finish_status: if self.rng.chance(1, 8) { Status::FAILED } else { Status::OK },
                            release_scheduled: false,
                        };
                        live.ends[side].streams.insert(id, sa);
                        if self.rng.chance(1, 12) {
                            let d = self.rng.below(100_000);
                            self.schedule_in(d, p, Act::Abort { ep, side, id });
                        }
                    }
                }
            }
            Ev::Signal { method, payload } => {
                if method != SIG || payload.len() < 8 {
                    self.violation(format!("{tag}: malformed signal"));
                    return;
                }
                let seq = u64::from_le_bytes(payload[..8].try_into().expect("8 bytes"));
                if !self.epochs[ep].sig_got[side].insert(seq) {
                    self.violation(format!("{tag}: signal {seq} delivered twice"));
                }
                if !self.epochs[ep].sig_sent[1 - side].contains(&seq) {
                    self.violation(format!("{tag}: signal {seq} never sent"));
                }
            }
            Ev::Response { id, status, payload } => {
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: response to unknown exchange {id}"));
                    return;
                };
                x.resolved += 1;
                x.resolved_how.push("response");
                let (r, cancelled, exp, opener, seen) =
                    (x.resolved, x.cancelled_by_opener, x.expected, x.opener, x.seen);
                if opener != side || x.kind == XKind::Stream {
                    self.violation(format!("{tag}: response {id} at the wrong end"));
                }
                if r > 1 {
                    self.violation(format!(
                        "{tag}: exchange {id} resolved twice (Response {status:?} after {:?})",
                        self.epochs[ep].ex[&id].resolved_how
                    ));
                }
                if cancelled {
                    self.violation(format!("{tag}: exchange {id} got a Response after cancel()"));
                }
                if seen != 1 {
                    self.violation(format!(
                        "{tag}: exchange {id} answered but its handler saw it {seen} times"
                    ));
                }
                let shed = self.epochs[ep].shed;
                match exp {
                    Some(e) if e == (status, digest(&payload)) => {}
                    // Its answer was shed from the reply cache before the retransmission came
                    // (the endpoint's memory budget, SPEC.md §13.6).
                    _ if status == Status::REPLY_EVICTED && shed => self.count("reply evicted"),
                    Some(e) => self.violation(format!(
                        "{tag}: exchange {id} response ({status:?}, {} bytes) differs from the handler's answer ({:?})",
                        payload.len(),
                        e.0
                    )),
                    None => self.violation(format!("{tag}: exchange {id} got Response {status:?} the handler never sent")),
                }
            }
            Ev::Failed { id, status } => {
                let closed = live.ends[side].conn.state() == State::Closed;
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: Failed for unknown exchange {id}"));
                    return;
                };
                x.resolved += 1;
                x.resolved_how.push("failed");
                let (r, dl, cancelled) = (x.resolved, x.deadline, x.cancelled_by_opener);
                if r > 1 {
                    self.violation(format!(
                        "{tag}: exchange {id} resolved twice (Failed {status:?} after {:?})",
                        self.epochs[ep].ex[&id].resolved_how
                    ));
                }
                if cancelled {
                    self.violation(format!("{tag}: exchange {id} Failed after cancel()"));
                }
                self.check_abort_status(&tag, ep, side, id, status, dl, closed);
            }
            Ev::Cancelled { id, status } => {
                let closed = live.ends[side].conn.state() == State::Closed;
                let Some(req) = live.ends[side].pending.get_mut(&id) else {
                    self.violation(format!("{tag}: Cancelled({status:?}) for {id}, which awaits no answer"));
                    return;
                };
                let ok = match status {
                    Status::CANCELLED => true,
                    Status::DEADLINE_EXCEEDED => {
                        self.epochs[ep].ex.get(&id).is_some_and(|x| x.deadline.is_some())
                    }
                    Status::UNAVAILABLE => closed || self.epochs[ep].declined,
                    _ => false,
                };
                if !ok {
                    self.violation(format!("{tag}: request {id} Cancelled with unexpected {status:?}"));
                }
                if req.cancelled.is_none() {
                    req.cancelled = Some(status);
                    if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                        x.handler_cancel.get_or_insert(status);
                    }
                }
                if closed {
                    live.ends[side].pending.remove(&id);
                } else {
                    let d = self.rng.below(20_000);
                    self.schedule_in(d, p, Act::Respond { ep, side, id });
                }
            }
            Ev::StreamData { id, payload } => {
                let d = if opener_of(id) == side { 1 } else { 0 };
                let cfg = &self.epochs[ep].cfg[side];
                let (init_m, init_b) =
                    (u64::from(cfg.stream_credit_msgs), u64::from(cfg.stream_credit_bytes));
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: StreamData on unknown stream {id}"));
                    return;
                };
                let dir = &mut x.dirs[d];
                let bad_after = dir.recv_fin || dir.recv_reset > 0 || dir.recv_local_reset;
                let expect = dir.sent.get(dir.got).copied();
                dir.got += 1;
                dir.got_bytes += payload.len() as u64;
                let over = dir.got as u64 > init_m + dir.consumed_items + dir.slack_items
                    || dir.got_bytes > init_b + dir.consumed_bytes + dir.slack_bytes;
                let got = dir.got;
                if bad_after {
                    self.violation(format!("{tag}: stream {id} item delivered after its end or a reset"));
                }
                if expect != Some(digest(&payload)) {
                    self.violation(format!(
                        "{tag}: stream {id} item #{got} out of order, duplicated or corrupt"
                    ));
                }
                if over {
                    self.violation(format!(
                        "{tag}: stream {id}: more items/bytes delivered than the credit granted"
                    ));
                }
                live.ends[side].deferred.push_back((id, payload.len() as u32));
                if self.settle || self.rng.chance(1, 3) {
                    self.consume(p, live, side);
                } else if self.rng.chance(1, 2) {
                    let d = self.rng.range(1, 40_000);
                    self.schedule_in(d, p, Act::Consume { ep, side });
                }
            }
            Ev::StreamFin { id, status } => {
                let d = if opener_of(id) == side { 1 } else { 0 };
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: StreamFin on unknown stream {id}"));
                    return;
                };
                let dir = &mut x.dirs[d];
                let prev = (dir.recv_fin, dir.recv_reset, dir.recv_local_reset);
                dir.recv_fin = true;
                let complete = dir.got == dir.sent.len() && dir.fin_status == Some(status);
                let (got, sent, fs) = (dir.got, dir.sent.len(), dir.fin_status);
                let mut resolve = false;
                if d == 1 {
                    x.opener_peer_fin = true;
                    resolve = x.opener_end && !x.opener_local_reset;
                }
                if prev.0 || prev.1 > 0 || prev.2 {
                    self.violation(format!("{tag}: stream {id} StreamFin after its end ({prev:?})"));
                }
                if !complete {
                    self.violation(format!(
                        "{tag}: stream {id} FIN({status:?}) after {got} of {sent} items (sender finished with {fs:?})"
                    ));
                }
                if resolve {
                    self.resolve_stream(&tag, ep, id, "fin");
                }
                if let Some(sa) = live.ends[side].streams.get_mut(&id) {
                    sa.peer_fin = true;
                    if sa.end_sent {
                        live.ends[side].streams.remove(&id);
                    }
                }
            }
            Ev::StreamReset { id, status } => {
                let closed = live.ends[side].conn.state() == State::Closed;
                let opener = opener_of(id) == side;
                let d = if opener { 1 } else { 0 };
                let Some(x) = self.epochs[ep].ex.get_mut(&id) else {
                    self.violation(format!("{tag}: StreamReset on unknown stream {id}"));
                    return;
                };
                let dl = x.deadline;
                // A responder's own deadline is reported as a reset but leaves its receiving half
                // open until the application releases the stream (SPEC.md §7.4.3 row 15): items
                // in flight may still be delivered.
                if opener || status != Status::DEADLINE_EXCEEDED {
                    x.dirs[d].recv_reset += 1;
                }
                if opener {
                    let prior = (x.opener_local_reset, x.opener_peer_reset, x.resolved);
                    x.opener_peer_reset = true;
                    x.opener_end = true;
                    x.dirs[0].sender_reset = true;
                    if prior.0 || prior.1 {
                        let how = x.resolved_how.clone();
                        self.violation(format!(
                            "{tag}: stream {id}: StreamReset({status:?}) after the stream was already resolved ({how:?}) [double terminal]"
                        ));
                    }
                    if prior.2 == 0 {
                        self.resolve_stream(&tag, ep, id, "reset");
                    } else if !(prior.0 || prior.1) {
                        let how = self.epochs[ep].ex[&id].resolved_how.clone();
                        self.violation(format!(
                            "{tag}: stream {id}: StreamReset({status:?}) after resolution {how:?}"
                        ));
                    }
                    if status == Status::UNAVAILABLE || status == Status::DEADLINE_EXCEEDED {
                        self.check_abort_status(&tag, ep, side, id, status, dl, closed);
                    }
                    live.ends[side].streams.remove(&id);
                } else {
                    if status == Status::DEADLINE_EXCEEDED && dl.is_none() {
                        self.violation(format!("{tag}: stream {id} reset by a deadline it never had"));
                    }
                    if let Some(sa) = live.ends[side].streams.get_mut(&id) {
                        sa.peer_reset = true;
                        sa.blocked = false;
                        if closed {
                            live.ends[side].streams.remove(&id);
                        } else if !sa.end_sent && !sa.release_scheduled {
                            sa.release_scheduled = true;
                            let d = self.rng.below(30_000);
                            self.schedule_in(d, p, Act::Release { ep, side, id });
                        } else if sa.end_sent {
                            live.ends[side].streams.remove(&id);
                        }
                    } else if !closed && status != Status::UNAVAILABLE {
                        // Tolerated: the deadline and the opener's reset may both be reported
                        // to a responder (SPEC.md §7.4.3 rows 9 and 15).
                    }
                }
            }
            Ev::StreamWritable { id } => {
                if let Some(sa) = live.ends[side].streams.get_mut(&id) {
                    sa.blocked = false;
                }
            }
            Ev::AuthRequested { .. } => {
                self.violation(format!("{tag}: AuthRequested without Config::authenticate"));
            }
            Ev::ResumeRequested { .. } => {
                self.violation(format!("{tag}: ResumeRequested on a connection that offers no resumption"));
            }
            Ev::GoAway { bound, status } => {
                let mut msgs = Vec::new();
                let epo = &mut self.epochs[ep];
                if epo.goaway_bound[side].is_some_and(|b| bound > b) {
                    msgs.push(format!("{tag}: GOAWAY bound raised"));
                }
                epo.goaway_bound[side] = Some(bound);
                if bound % 2 != side as u64 {
                    msgs.push(format!("{tag}: GOAWAY bound {bound} has the wrong parity"));
                }
                let _ = status;
                let mut unresolved = Vec::new();
                for (id, x) in epo.ex.range_mut(bound..) {
                    if x.opener == side {
                        x.goaway_refused = true;
                        if x.resolved == 0 {
                            unresolved.push(*id);
                        }
                    }
                }
                if !unresolved.is_empty() {
                    msgs.push(format!(
                        "{tag}: GOAWAY({bound}) left excluded exchanges unresolved: {unresolved:?}"
                    ));
                }
                for m in msgs {
                    self.violation(m);
                }
            }
            Ev::Closed(e) => {
                live.ends[side].closed = true;
                self.epochs[ep].closed[side] = true;
                let killed = self.epochs[ep].killed;
                let goaway = self.epochs[ep].goaway;
                let killed = killed || (self.epochs[ep].lost && goaway);
                let x = &self.epochs[ep];
                let (replaced, half_open) = (x.replaced, x.half_open);
                // The client closes after a declined resumption or giving up; the server closes
                // a connection its endpoint replaced.
                let own_unavailable = if side == 0 { x.declined || x.gave_up } else { replaced };
                let ok = match e {
                    ConnectionError::LocallyClosed { status: Status::UNAVAILABLE } => own_unavailable,
                    ConnectionError::PeerClosed { status: Status::UNAVAILABLE } => side == 0 && replaced,
                    ConnectionError::SessionEvicted => side == 1 && x.evicted,
                    // A half-open kill: the server is not told; its timers find out.
                    ConnectionError::IdleTimeout | ConnectionError::HandshakeTimeout if half_open => true,
                    ConnectionError::TransportClosed => killed,
                    // The transport ended inside a frame (SPEC.md §3.8).
                    ConnectionError::Malformed(tandem_core::frame::DecodeError::Truncated) => killed,
                    ConnectionError::PeerClosed { status: Status::OK }
                    | ConnectionError::LocallyClosed { status: Status::OK } => goaway,
                    ConnectionError::IdleTimeout => self.long_partition,
                    // A lost session whose other end gave up on it (its grace period ended, or
                    // it never completed the handshake and started anew).
                    ConnectionError::SessionExpired => killed || self.epochs[ep].lost,
                    ConnectionError::PeerClosed { status: Status::SESSION_EXPIRED } => self.epochs[ep].lost,
                    ConnectionError::PeerClosed { status: Status::IDLE_TIMEOUT } => self.long_partition,
                    _ => false,
                };
                if !ok {
                    self.violation(format!(
                        "{tag}: connection closed unexpectedly: {e:?} (killed {killed}, goaway {goaway})"
                    ));
                }
                if live.ends[side].conn.open_exchanges() != 0 {
                    self.violation(format!(
                        "{tag}: {} exchanges still tracked after Closed",
                        live.ends[side].conn.open_exchanges()
                    ));
                }
                let unresolved: Vec<u64> = self.epochs[ep]
                    .ex
                    .iter()
                    .filter(|(_, x)| x.opener == side && x.resolved == 0)
                    .map(|(id, _)| *id)
                    .collect();
                if !unresolved.is_empty() {
                    self.violation(format!("{tag}: Closed with exchanges never resolved: {unresolved:?}"));
                }
                let end = &mut live.ends[side];
                end.pending.clear();
                end.streams.clear();
                end.deferred.clear();
                let _ = now;
            }
        }
    }

    /// A Failed / StreamReset at the initiator with DEADLINE_EXCEEDED or UNAVAILABLE must be
    /// justified: by its deadline, by the connection closing, or by a GOAWAY excluding it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_abort_status(
        &mut self,
        tag: &str,
        ep: usize,
        side: usize,
        id: u64,
        status: Status,
        dl: Option<Instant>,
        closed: bool,
    ) {
        match status {
            Status::DEADLINE_EXCEEDED => {
                if !dl.is_some_and(|d| self.now >= d) {
                    self.violation(format!(
                        "{tag}: exchange {id} DEADLINE_EXCEEDED before its deadline {dl:?}"
                    ));
                }
            }
            Status::UNAVAILABLE => {
                if !closed {
                    self.epochs[ep].unavail.push((side, id));
                }
            }
            Status::REPLY_EVICTED if self.epochs[ep].shed => self.count("reply evicted"),
            s => self.violation(format!("{tag}: exchange {id} failed with unexpected {s:?}")),
        }
    }

    pub(super) fn resolve_stream(&mut self, tag: &str, ep: usize, id: u64, how: &'static str) {
        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
        x.resolved += 1;
        x.resolved_how.push(how);
        if x.resolved > 1 {
            let h = x.resolved_how.clone();
            self.violation(format!("{tag}: stream {id} resolved twice ({h:?})"));
        }
    }
}
