//! The applications on both ends: what they open, answer, consume and finish.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ the applications

    pub(super) fn payload(&mut self, max: usize) -> Vec<u8> {
        let n = match self.rng.below(25) {
            0 => self.rng.range(4000, 7000) as usize,
            1..=2 => self.rng.range(100, 2000) as usize,
            _ => self.rng.below(48) as usize,
        };
        self.bytes(n.min(max))
    }

    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        for c in v.chunks_mut(8) {
            let w = self.rng.next().to_le_bytes();
            c.copy_from_slice(&w[..c.len()]);
        }
        v
    }

    pub(super) fn deadline(&mut self, force: bool) -> Option<Instant> {
        (force || self.rng.chance(1, 4)).then(|| at(us(self.now) + self.rng.range(2_000, 400_000)))
    }

    /// One random application operation on a random end of pair `p`.
    pub(super) fn tick(&mut self, p: usize) {
        let Some(i) = self.current(p) else { return };
        let mut live = self.pairs[p].lives.remove(i);
        let side = self.rng.below(2) as usize;
        if live.ends[side].connected && !live.ends[side].closed {
            self.operate(p, &mut live, side);
            self.pump(p, &mut live, side);
        }
        self.put_back(p, i, live);
    }

    pub(super) fn open_ok(&mut self, what: &str, p: usize, side: usize, e: ApiError) {
        let ok = matches!(
            e,
            ApiError::TooManyCalls { .. }
                | ApiError::TooManyStreams { .. }
                | ApiError::TxFull
                | ApiError::GoingAway
                | ApiError::Closed
                | ApiError::TooLarge { .. }
                | ApiError::RetainFull { .. }
                | ApiError::NotConnected
        );
        if !ok {
            self.violation(format!("pair {p} side {side}: {what} refused: {e:?}"));
        }
    }

    pub(super) fn register(&mut self, p: usize, ep: usize, id: u64, x: Ex) {
        if self.epochs[ep].ex.insert(id, x).is_some() {
            self.violation(format!("pair {p}: exchange id {id} handed out twice"));
        }
    }

    pub(super) fn operate(&mut self, p: usize, live: &mut Live, side: usize) {
        let now = self.now;
        let ep = live.epoch;
        match self.rng.below(100) {
            0..=24 => {
                let method =
                    [CALL_ECHO, CALL_ECHO, CALL_ECHO, CALL_FAIL, CALL_NEVER][self.rng.below(5) as usize];
                let payload = self.payload(usize::MAX);
                let dl = self.deadline(method == CALL_NEVER);
                match live.ends[side].conn.call(now, method, &payload, dl) {
                    Ok(id) => {
                        self.register(p, ep, id, Ex::new(side, XKind::Call, method, digest(&payload), dl))
                    }
                    Err(e) => self.open_ok("call", p, side, e),
                }
            }
            25..=34 => {
                let payload = self.payload(usize::MAX);
                let dl = if self.rng.chance(1, 3) { self.deadline(false) } else { None };
                match live.ends[side].conn.notify(now, NOTE, &payload, dl) {
                    Ok(id) => {
                        self.register(p, ep, id, Ex::new(side, XKind::Notify, NOTE, digest(&payload), dl))
                    }
                    Err(e) => self.open_ok("notify", p, side, e),
                }
            }
            35..=42 => {
                let seq = self.rng.next() >> 1;
                let mut payload = seq.to_le_bytes().to_vec();
                payload.extend(self.payload(200));
                match live.ends[side].conn.signal(SIG, &payload) {
                    Ok(()) => {
                        self.epochs[ep].sig_sent[side].insert(seq);
                    }
                    Err(e) => self.open_ok("signal", p, side, e),
                }
            }
            43..=69 => {
                let method = [S_SERVER, S_CLIENT, S_BIDI, S_BIDI, S_HOLD][self.rng.below(5) as usize];
                let payload = self.payload(6000);
                let half = method == S_SERVER || (method == S_HOLD && self.rng.chance(1, 2));
                let dl = self.deadline(method == S_HOLD);
                let items = if method == S_SERVER || method == S_HOLD { 0 } else { self.rng.below(8) };
                let peer = &self.epochs[ep].cfg[1 - side];
                let max_item = (peer.stream_credit_bytes as usize).min(5000);
                let to_send: VecDeque<Vec<u8>> = (0..items).map(|_| self.item(max_item)).collect();
                match live.ends[side].conn.open_stream(now, method, &payload, dl, half) {
                    Ok(id) => {
                        let mut x = Ex::new(side, XKind::Stream, method, digest(&payload), dl);
                        x.half_close = half;
                        if half {
                            x.dirs[0].fin_status = Some(Status::OK);
                            x.opener_end = true;
                        }
                        self.register(p, ep, id, x);
                        live.ends[side].streams.insert(
                            id,
                            SApp {
                                opener: true,
                                to_send,
                                blocked: false,
                                end_sent: half,
                                peer_fin: false,
                                peer_reset: false,
                                wait_peer_fin: false,
                                hold: false,
                                finish_status: Status::OK,
                                release_scheduled: false,
                            },
                        );
                    }
                    Err(e) => self.open_ok("open_stream", p, side, e),
                }
            }
            70..=78 => {
                // The caller cancels one of its calls or notifications.
                let ids: Vec<u64> = self.epochs[ep]
                    .ex
                    .iter()
                    .filter(|(_, x)| x.opener == side && x.kind != XKind::Stream && x.resolved == 0)
                    .map(|(id, _)| *id)
                    .collect();
                if ids.is_empty() {
                    return;
                }
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                match live.ends[side].conn.cancel(id) {
                    Ok(()) => {
                        self.count("cancel call");
                        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                        x.cancelled_by_opener = true;
                        x.resolved += 1;
                        x.resolved_how.push("cancel");
                    }
                    // The response's first fragment is in: it will be reported.
                    Err(ApiError::WrongState(_) | ApiError::TxFull) => {}
                    Err(e) => self.violation(format!("pair {p} side {side}: cancel({id}): {e:?}")),
                }
            }
            79..=86 => {
                // The opener cancels (resets) one of its streams.
                let ids: Vec<u64> =
                    live.ends[side].streams.iter().filter(|s| s.1.opener).map(|s| *s.0).collect();
                if ids.is_empty() {
                    return;
                }
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                let r = if self.rng.chance(1, 2) {
                    live.ends[side].conn.cancel(id)
                } else {
                    live.ends[side].conn.stream_reset(id, Status::CANCELLED)
                };
                match r {
                    Ok(()) => {
                        self.count("opener reset stream");
                        live.ends[side].streams.remove(&id);
                        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                        x.opener_local_reset = true;
                        x.dirs[0].sender_reset = true;
                        x.dirs[1].recv_local_reset = true;
                        x.resolved += 1;
                        x.resolved_how.push("opener reset");
                    }
                    Err(ApiError::TxFull) => {}
                    Err(e) => {
                        self.violation(format!("pair {p} side {side}: reset of own stream {id}: {e:?}"))
                    }
                }
            }
            87..=91 => {
                // A responder aborts one of the streams it serves.
                let ids: Vec<u64> = live.ends[side]
                    .streams
                    .iter()
                    .filter(|s| !s.1.opener && !s.1.end_sent)
                    .map(|s| *s.0)
                    .collect();
                if let Some(&id) = ids.first() {
                    let d = self.rng.below(50_000);
                    self.schedule_in(d, p, Act::Abort { ep, side, id });
                }
            }
            _ => self.consume(p, live, side),
        }
    }

    pub(super) fn item(&mut self, max: usize) -> Vec<u8> {
        let n = match self.rng.below(12) {
            0 => max,
            1..=2 => self.rng.range(0, max as u64) as usize,
            _ => self.rng.below(64).min(max as u64) as usize,
        };
        self.bytes(n)
    }

    pub(super) fn respond(&mut self, p: usize, live: &mut Live, side: usize, id: u64) {
        let ep = live.epoch;
        let Some(req) = live.ends[side].pending.get(&id) else { return };
        if req.method == CALL_NEVER && req.cancelled.is_none() {
            return;
        }
        let (status, body): (Status, Vec<u8>) = if self.rng.chance(1, 20) {
            // The responder gives up.
            ([Status::UNAVAILABLE, Status::CANCELLED][self.rng.below(2) as usize], Vec::new())
        } else {
            match req.method {
                NOTE => (Status::OK, Vec::new()),
                CALL_FAIL => (Status::FAILED, b"no such thing".to_vec()),
                _ => (Status::OK, req.payload.iter().rev().copied().collect()),
            }
        };
        let cancelled = req.cancelled;
        match live.ends[side].conn.respond(id, status, &body) {
            Ok(()) => {
                live.ends[side].pending.remove(&id);
                let expected = match cancelled {
                    Some(st) => (st, digest(b"")),
                    None => (status, digest(&body)),
                };
                if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                    x.expected = Some(expected);
                }
            }
            Err(ApiError::TxFull) => {
                let d = self.rng.range(100, 5_000);
                self.schedule_in(d, p, Act::Respond { ep, side, id });
            }
            Err(ApiError::Closed) => {
                live.ends[side].pending.remove(&id);
            }
            Err(ApiError::TooLarge { .. }) if !body.is_empty() => {
                // The answer does not fit: answer TOO_LARGE instead (SPEC.md §7.1.2).
                if let Some(r) = live.ends[side].pending.get_mut(&id) {
                    r.method = NOTE;
                }
                match live.ends[side].conn.respond(id, Status::TOO_LARGE, b"") {
                    Ok(()) => {
                        live.ends[side].pending.remove(&id);
                        let expected = (cancelled.unwrap_or(Status::TOO_LARGE), digest(b""));
                        if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                            x.expected = Some(expected);
                        }
                    }
                    Err(ApiError::TxFull) => {
                        let d = self.rng.range(100, 5_000);
                        self.schedule_in(d, p, Act::Respond { ep, side, id });
                    }
                    Err(e) => {
                        self.violation(format!("pair {p} side {side}: respond({id}, TOO_LARGE): {e:?}"))
                    }
                }
            }
            Err(e) => self.violation(format!("pair {p} side {side}: respond({id}): {e:?}")),
        }
    }

    pub(super) fn consume(&mut self, p: usize, live: &mut Live, side: usize) {
        let ep = live.epoch;
        while let Some((id, n)) = live.ends[side].deferred.pop_front() {
            match live.ends[side].conn.stream_consumed(id, 1, n) {
                Ok(()) => {
                    let d = if (id % 2) as usize == side { 1 } else { 0 };
                    if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                        let dir = &mut x.dirs[d];
                        if !dir.recv_local_reset {
                            dir.consumed_items += 1;
                            dir.consumed_bytes += u64::from(n);
                        }
                    }
                }
                Err(e) => {
                    if live.ends[side].conn.state() != State::Closed {
                        self.violation(format!("pair {p} side {side}: stream_consumed({id}, 1, {n}): {e:?}"));
                    }
                }
            }
        }
    }

    /// Responder: `release` ends a stream the peer reset (or whose deadline passed); otherwise
    /// aborts it on its own initiative.
    pub(super) fn release(&mut self, p: usize, live: &mut Live, side: usize, id: u64, after_reset: bool) {
        let ep = live.epoch;
        let Some(sa) = live.ends[side].streams.get_mut(&id) else { return };
        if sa.end_sent {
            return;
        }
        let finish = after_reset && self.rng.chance(1, 3);
        let r = if finish {
            live.ends[side].conn.stream_finish(id, Status::CANCELLED)
        } else {
            let st = if after_reset { Status::CANCELLED } else { Status::FAILED };
            live.ends[side].conn.stream_reset(id, st)
        };
        match r {
            Ok(()) => {
                self.count(if after_reset { "responder release" } else { "responder abort" });
                let sa = live.ends[side].streams.get_mut(&id).expect("present");
                sa.end_sent = true;
                let done = sa.peer_fin || sa.peer_reset;
                if done {
                    live.ends[side].streams.remove(&id);
                }
                if let Some(x) = self.epochs[ep].ex.get_mut(&id) {
                    if finish {
                        x.dirs[1].fin_status = Some(Status::CANCELLED);
                    } else {
                        x.dirs[1].sender_reset = true;
                        x.dirs[0].recv_local_reset = true;
                    }
                }
                if !finish && !done {
                    // Our reset is answered by the opener's reset, which the core swallows: we
                    // are done with the stream.
                    live.ends[side].streams.remove(&id);
                }
            }
            Err(ApiError::TxFull) => {
                let act =
                    if after_reset { Act::Release { ep, side, id } } else { Act::Abort { ep, side, id } };
                let d = self.rng.range(100, 5_000);
                self.schedule_in(d, p, act);
            }
            Err(ApiError::Closed) => {}
            Err(e) => self.violation(format!("pair {p} side {side}: release of stream {id}: {e:?}")),
        }
    }

    /// Sends what credit allows on every stream, and finishes streams whose plan is done.
    pub(super) fn progress(&mut self, p: usize, live: &mut Live, side: usize) {
        let ep = live.epoch;
        if live.ends[side].closed {
            return;
        }
        let ids: Vec<u64> = live.ends[side].streams.keys().copied().collect();
        for id in ids {
            loop {
                let end = &mut live.ends[side];
                let Some(sa) = end.streams.get_mut(&id) else { break };
                if sa.end_sent || sa.peer_reset || sa.blocked {
                    break;
                }
                let d = if sa.opener { 0 } else { 1 };
                if let Some(item) = sa.to_send.front() {
                    match end.conn.stream_send(id, item) {
                        Ok(()) => {
                            let item = sa.to_send.pop_front().expect("front");
                            let recv_cfg = &self.epochs[ep].cfg[1 - side];
                            let (m, b) = (
                                u64::from(recv_cfg.stream_credit_msgs),
                                u64::from(recv_cfg.stream_credit_bytes),
                            );
                            let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                            let dir = &mut x.dirs[d];
                            dir.sent.push(digest(&item));
                            dir.sent_bytes += item.len() as u64;
                            let over = dir.sent.len() as u64 > m + dir.consumed_items + dir.slack_items
                                || dir.sent_bytes > b + dir.consumed_bytes + dir.slack_bytes;
                            let msg = over.then(|| format!(
                                "pair {p} side {side}: stream {id}: sent beyond the credit the receiver granted ({} items / {} bytes, consumed {} / {})",
                                dir.sent.len(), dir.sent_bytes, dir.consumed_items, dir.consumed_bytes
                            ));
                            if let Some(m) = msg {
                                self.violation(m);
                            }
                            continue;
                        }
                        Err(ApiError::NoCredit) => {
                            sa.blocked = true;
                            *self.counts.entry("no credit").or_default() += 1;
                        }
                        Err(ApiError::TooLarge { .. }) => {
                            sa.to_send.pop_front();
                            continue;
                        }
                        Err(ApiError::TxFull) => {}
                        Err(e) => self.violation(format!("pair {p} side {side}: stream_send({id}): {e:?}")),
                    }
                    break;
                }
                if sa.hold || (sa.wait_peer_fin && !sa.peer_fin) {
                    break;
                }
                let status = if sa.opener { Status::OK } else { sa.finish_status };
                match end.conn.stream_finish(id, status) {
                    Ok(()) => {
                        sa.end_sent = true;
                        let (opener, peer_done) = (sa.opener, sa.peer_fin || sa.peer_reset);
                        if peer_done {
                            end.streams.remove(&id);
                        }
                        let x = self.epochs[ep].ex.get_mut(&id).expect("registered");
                        x.dirs[d].fin_status = Some(status);
                        if opener {
                            x.opener_end = true;
                            if x.opener_peer_fin {
                                let tag = format!("pair {p} side {side}");
                                self.resolve_stream(&tag, ep, id, "finish");
                            }
                        }
                    }
                    Err(ApiError::TxFull) => {}
                    Err(e) => self.violation(format!("pair {p} side {side}: stream_finish({id}): {e:?}")),
                }
                break;
            }
        }
    }
}
