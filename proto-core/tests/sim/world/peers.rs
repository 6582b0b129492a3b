//! Connections come and go: scheduled faults, and the client's side of reconnection. Each client
//! has the core's real `Dialer`: it dials when the dialer's timer says so (with the jitter seeded
//! from the scenario), reports every connect, handshake, loss and failed attempt to it, and the
//! delays it chooses are checked against its policy. The server side is in `server.rs`.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ scheduled actions

    pub(super) fn act(&mut self, p: usize, act: Act) {
        let target = match act {
            Act::Tick => {
                if !self.settle {
                    self.tick(p);
                    let gap = self.rng.range(300, 12_000);
                    self.schedule_in(gap, p, Act::Tick);
                }
                return;
            }
            Act::Dialed { ok } => return self.dialed(p, ok),
            Act::NewClient => return self.new_client(p),
            Act::Kill { .. } | Act::GoAway { .. } => {
                self.current(p).or_else(|| self.pairs[p].lives.len().checked_sub(1))
            }
            Act::Eof { ep, .. }
            | Act::Respond { ep, .. }
            | Act::Consume { ep, .. }
            | Act::Release { ep, .. }
            | Act::Abort { ep, .. } => self.find(p, ep),
        };
        let Some(i) = target else { return };
        let mut live = self.pairs[p].lives.remove(i);
        let cur = live.epoch;
        match act {
            Act::Kill { half_open } => {
                let ep = &mut self.epochs[cur];
                if !(ep.closed[0] && ep.closed[1]) {
                    let resumable = live.ends[0].conn.is_resumable() && !ep.goaway;
                    if resumable {
                        ep.lost = true;
                    } else {
                        ep.killed = true;
                    }
                    ep.half_open |= half_open;
                    live.half_open = half_open;
                    let open = live.ends[0].conn.open_exchanges() + live.ends[1].conn.open_exchanges();
                    self.count(match (resumable, open > 0) {
                        (true, true) => "kill mid-exchange (resumable)",
                        (true, false) => "kill idle (resumable)",
                        (false, true) => "kill mid-exchange",
                        (false, false) => "kill idle",
                    });
                    if half_open {
                        self.count("kill half-open");
                    }
                    live.links[0].kill();
                    live.links[1].kill();
                    // Side 2: the fresh connection of a reconnection attempt. A half-open kill
                    // tells only the client.
                    let mut told = vec![(0, live.ends[0].gen)];
                    if !half_open {
                        told.push((1, live.ends[1].gen));
                        told.push((2, live.gen));
                    }
                    for (side, gen) in told {
                        let d = self.rng.below(3_000);
                        self.schedule_in(d, p, Act::Eof { ep: cur, side, gen });
                    }
                }
            }
            Act::GoAway { side } => {
                let e = &mut live.ends[side];
                if e.connected && !e.closed {
                    match e.conn.go_away(self.now, Status::OK, b"maintenance") {
                        Ok(()) => {
                            self.epochs[cur].goaway = true;
                            self.count("goaway sent");
                        }
                        Err(ApiError::Closed | ApiError::TxFull | ApiError::NotConnected) => {}
                        Err(err) => self.violation(format!("pair {p} side {side}: go_away: {err:?}")),
                    }
                    self.pump(p, &mut live, side);
                }
            }
            Act::Eof { side: 2, gen, .. } => {
                if gen == live.gen {
                    if let Some(f) = live.fresh.as_mut() {
                        f.conn.handle_eof(self.now);
                        self.pump_fresh(p, &mut live);
                    }
                }
            }
            Act::Eof { side, gen, .. } => {
                if gen == live.ends[side].gen && !live.ends[side].transport_closed {
                    live.ends[side].conn.handle_eof(self.now);
                    self.pump(p, &mut live, side);
                }
            }
            Act::Respond { side, id, .. } => {
                self.respond(p, &mut live, side, id);
                self.pump(p, &mut live, side);
            }
            Act::Consume { side, .. } => {
                self.consume(p, &mut live, side);
                self.pump(p, &mut live, side);
            }
            Act::Release { side, id, .. } => {
                self.release(p, &mut live, side, id, true);
                self.pump(p, &mut live, side);
            }
            Act::Abort { side, id, .. } => {
                self.release(p, &mut live, side, id, false);
                self.pump(p, &mut live, side);
            }
            Act::Tick | Act::Dialed { .. } | Act::NewClient => {}
        }
        self.put_back(p, i, live);
    }

    // ------------------------------------------------------------------ the dialer

    /// The dialer's timer fired.
    pub(super) fn redial(&mut self, p: usize) {
        let now = self.now;
        let d = &mut self.pairs[p].dialer;
        let failures = match d.state() {
            LinkState::Suspended { failures, .. } => failures,
            _ => u32::MAX,
        };
        let due = d.attempt_due(now);
        let st = d.state();
        if due && st != (LinkState::Connecting { attempt: failures.wrapping_add(1) }) {
            self.violation(format!("pair {p}: after {failures} failed attempts the dialer is {st:?}"));
        }
        if !due {
            self.violation(format!("pair {p}: the dialer's timer fired but no attempt is due ({st:?})"));
            self.pairs[p].dialer.closed();
            return;
        }
        self.count("dialer attempt");
        self.dial(p);
    }

    /// Starts connecting a transport (it may be refused: the server is unreachable for a while).
    fn dial(&mut self, p: usize) {
        let slot = &mut self.pairs[p];
        slot.dialing = true;
        let refuse = slot.refuse_pct;
        let latency = slot.links[0].latency_us + slot.links[1].latency_us;
        let ok = self.settle || !self.rng.chance(refuse, 100);
        let d = if ok { self.rng.range(0, latency) } else { self.rng.range(100, 20_000) };
        self.schedule_in(d, p, Act::Dialed { ok });
    }

    /// The transport connect of an attempt ended: a session resumption or a new connection
    /// starts on it, unless it was refused (by the network, or by the server's endpoint).
    fn dialed(&mut self, p: usize, ok: bool) {
        self.pairs[p].dialing = false;
        if !matches!(self.pairs[p].dialer.state(), LinkState::Connecting { .. }) {
            let st = self.pairs[p].dialer.state();
            self.violation(format!("pair {p}: a transport was dialed while the dialer is {st:?}"));
            return;
        }
        let admitted = if ok { self.admit(p) } else { None };
        let Some((id, token)) = admitted else {
            if !ok {
                self.count("connect refused");
            }
            if self.attempt_failed(p) {
                if let Some(i) = self.current(p) {
                    let mut live = self.pairs[p].lives.remove(i);
                    self.give_up(p, &mut live);
                    self.put_back(p, i, live);
                }
            }
            return;
        };
        match self.current(p) {
            Some(i) if self.pairs[p].lives[i].ends[0].conn.needs_transport() => {
                let mut live = self.pairs[p].lives.remove(i);
                self.start_resumption(p, &mut live, id, &token);
                self.put_back(p, i, live);
            }
            Some(_) => {
                self.violation(format!("pair {p}: the dialer dialed while its connection is up"));
                self.ep_dirty = true;
                self.ep.closed(id);
            }
            None => self.connect(p, id, &token),
        }
    }

    /// The attempt under way failed: the dialer schedules the next one (checked against its
    /// policy) or gives up. Returns whether it gave up.
    fn attempt_failed(&mut self, p: usize) -> bool {
        let now = self.now;
        let slot = &mut self.pairs[p];
        slot.backoff = slot.backoff.mul_f64(slot.policy.multiplier.max(1.0)).min(slot.policy.max);
        match slot.dialer.attempt_failed(now) {
            Some(next) => {
                self.count("attempt failed");
                self.check_delay(p, next);
                false
            }
            None => {
                self.count("dialer gave up");
                if !self.settle {
                    let d = self.rng.range(1_000, 30_000);
                    self.schedule_in(d, p, Act::NewClient);
                }
                true
            }
        }
    }

    /// The dialer gave up (or would not continue with a new session): the client's connection
    /// closes (what the runtime does).
    fn give_up(&mut self, p: usize, live: &mut Live) {
        let c = &mut live.ends[0];
        if c.closed {
            return;
        }
        self.epochs[live.epoch].gave_up = true;
        c.conn.close(self.now, Status::UNAVAILABLE, b"gave up reconnecting");
        self.pump(p, live, 0);
    }

    /// A delay the dialer chose: within its policy (the current backoff with at most `jitter`
    /// either way, never under 1 ms, never over `max` with jitter).
    fn check_delay(&mut self, p: usize, next: Instant) {
        let slot = &self.pairs[p];
        let gap = us(next).saturating_sub(us(self.now));
        let j = slot.policy.jitter.clamp(0.0, 1.0);
        let floor = core::time::Duration::from_millis(1);
        let lo = slot.backoff.mul_f64(1.0 - j).max(floor).as_micros() as u64;
        let hi = slot.backoff.mul_f64(1.0 + j).max(floor).as_micros() as u64;
        let cap = slot.policy.max.mul_f64(1.0 + j).max(floor).as_micros() as u64;
        if gap + 2 < lo || gap > hi + 2 || gap > cap + 2 {
            let b = slot.backoff;
            self.violation(format!(
                "pair {p}: the dialer waits {gap} us, outside its policy ({lo}..={hi} us for a backoff of {b:?}, cap {cap} us)"
            ));
        }
        self.hash.words(&[us(self.now), 160, p as u64, gap]);
        if gap > 0 && self.pairs[p].dialer.attempt_due(self.now) {
            self.violation(format!("pair {p}: the dialer's attempt is due before its timer"));
        }
    }

    /// A client whose dialer closed starts anew (a new dialer, a new connection).
    fn new_client(&mut self, p: usize) {
        let slot = &mut self.pairs[p];
        if slot.dialer.state() != LinkState::Closed || slot.dialing {
            return;
        }
        slot.dialer = Dialer::new(slot.policy.clone(), self.rng.next());
        slot.backoff = slot.policy.initial;
        self.count("new client");
        self.dial(p);
    }

    /// Follows the client's connection for its dialer (after every pump of the client's end):
    /// connected, transport lost, handshake failed, closed.
    pub(super) fn track_client(&mut self, p: usize, live: &mut Live) {
        let now = self.now;
        let c = &mut live.ends[0];
        if c.told.gone {
            return;
        }
        let (state, dialing) = (self.pairs[p].dialer.state(), self.pairs[p].dialing);
        if c.closed {
            c.told.gone = true;
            live.resuming = false;
            match state {
                LinkState::Closed | LinkState::Suspended { .. } => {}
                _ if dialing => {} // the attempt under way brings the next connection
                LinkState::Connecting { .. } => {
                    // The handshake of this attempt failed for good.
                    self.attempt_failed(p);
                }
                LinkState::Connected { .. } if self.settle => self.pairs[p].dialer.closed(),
                LinkState::Connected { .. } => self.lost(p, now),
            }
            return;
        }
        if c.connected && !c.told.connected {
            c.told.connected = true;
            let slot = &mut self.pairs[p];
            slot.dialer.connected(false);
            slot.backoff = slot.policy.initial;
        }
        if !live.ends[0].conn.needs_transport() {
            return;
        }
        match self.pairs[p].dialer.state() {
            LinkState::Connected { .. } => self.lost(p, now),
            LinkState::Connecting { .. } if live.resuming && !dialing => {
                // The resuming handshake died with its transport.
                live.resuming = false;
                if self.attempt_failed(p) {
                    self.give_up(p, live);
                }
            }
            _ => {}
        }
    }

    /// The transport of a connected client was lost: the dialer schedules its first attempt.
    fn lost(&mut self, p: usize, now: Instant) {
        let slot = &mut self.pairs[p];
        slot.backoff = slot.policy.initial;
        if let Some(next) = slot.dialer.lost(now) {
            self.check_delay(p, next);
        }
    }

    /// Client, during a resumption attempt: once the acceptor answered, the session is resumed,
    /// or a new one was offered (declined) and the connection closes per the policy.
    pub(super) fn resume_outcome(&mut self, p: usize, live: &mut Live) {
        let c = &mut live.ends[0].conn;
        if !matches!(c.state(), State::Open | State::Draining) {
            return;
        }
        live.resuming = false;
        let resumed = c.stats().resumptions > live.resumptions;
        if self.verbose {
            println!(
                "{:>10} pair {p}: resumption answered: resumed {resumed} ({:?})",
                us(self.now),
                c.stats().resumptions
            );
        }
        let slot = &mut self.pairs[p];
        if resumed {
            slot.dialer.connected(true);
            slot.backoff = slot.policy.initial;
            return;
        }
        let fresh_session = slot.dialer.not_resumed();
        c.close(
            self.now,
            Status::UNAVAILABLE,
            b"session not resumed and ReconnectPolicy::fresh_session is off",
        );
        self.epochs[live.epoch].declined = true;
        self.count("client saw the resumption declined");
        if fresh_session {
            self.violation(format!("pair {p}: the dialer continues with a new session against its policy"));
        }
        if !self.settle {
            let d = self.rng.range(1_000, 30_000);
            self.schedule_in(d, p, Act::NewClient);
        }
    }

    /// The dialer reconnects its suspended session on a new transport; the server's endpoint
    /// admitted a fresh connection (`id`, announcing `token`) that receives the resuming HELLO.
    fn start_resumption(&mut self, p: usize, live: &mut Live, id: ConnId, token: &[u8]) {
        // The server's old transport ends too (the dialer closed its side of it), unless it was
        // killed half-open: then the server learns only from the resumption.
        if !live.half_open
            && live.ends[1].gen == live.gen
            && matches!(live.ends[1].conn.state(), State::Open | State::Draining)
        {
            live.ends[1].conn.handle_eof(self.now);
            self.pump(p, live, 1);
        }
        // A fresh connection of an earlier attempt still waiting on its (half-open) transport
        // goes with it: that transport is dead.
        if let Some(f) = live.fresh.take() {
            if !f.told.gone {
                self.ep_dirty = true;
                self.ep.closed(f.id);
                self.count("fresh dropped with its transport");
            }
        }
        live.gen += 1;
        live.half_open = false;
        live.links = [0, 1].map(|i| {
            let r = self.rng.fork();
            Link::new(self.pairs[p].links[i].clone(), r)
        });
        live.ends[0].gen = live.gen;
        live.ends[0].transport_closed = false;
        let cfg = self.epochs[live.epoch].cfg[1].clone();
        let ident = Identity { name: b"server", auth: b"sim", session: token };
        let conn = Connection::new(Role::Acceptor, cfg, ident, self.now).expect("valid config");
        live.fresh = Some(Fresh { conn, id, told: Told::default(), timeout: None });
        live.resumptions = live.ends[0].conn.stats().resumptions;
        match live.ends[0].conn.reconnect(self.now) {
            Ok(()) => live.resuming = true,
            Err(e) => self.violation(format!("pair {p}: reconnect refused: {e:?}")),
        }
        self.count("resumption attempt");
        self.hash.words(&[us(self.now), 700, p as u64, u64::from(live.gen)]);
        self.pump_fresh(p, live);
        self.pump(p, live, 0);
    }

    /// A new connection of pair `p`: the server's endpoint admitted it as `id` with `token`.
    fn connect(&mut self, p: usize, id: ConnId, token: &[u8]) {
        let slot = &mut self.pairs[p];
        slot.conns += 1;
        let number = slot.conns;
        let cfg = slot.cfg.clone();
        let names: [&[u8]; 2] = [&slot.name.clone(), b"server"];
        let ends = [0, 1].map(|i| {
            let c = &cfg[i];
            let role = if i == 0 { Role::Dialer } else { Role::Acceptor };
            let session = if i == 1 { token } else { b"" };
            let ident = Identity { name: names[i], auth: b"sim", session };
            let slots = (c.max_concurrent_calls
                + c.max_concurrent_streams
                + c.max_outbound_calls
                + c.max_outbound_streams) as usize;
            End {
                conn: Connection::new(role, c.clone(), ident, self.now).expect("valid config"),
                connected: false,
                closed: false,
                transport_closed: false,
                pending: BTreeMap::new(),
                streams: BTreeMap::new(),
                deferred: VecDeque::new(),
                open_bound: slots,
                timeout: None,
                footprint_bound: (c.max_frame_size as usize + 9).max(16 * 1024)
                    + c.max_tx_buffer as usize
                    + c.max_message_size as usize
                    + slots * core::mem::size_of::<Option<tandem_core::Slot>>(),
                id: (i == 1).then_some(id),
                told: Told::default(),
                gen: 0,
            }
        });
        let links = [0, 1].map(|i| {
            let r = self.rng.fork();
            Link::new(self.pairs[p].links[i].clone(), r)
        });
        self.epochs.push(Epoch::new(p, number, cfg));
        let mut live = Box::new(Live {
            epoch: self.epochs.len() - 1,
            ends,
            links,
            gen: 0,
            fresh: None,
            resuming: false,
            resumptions: 0,
            half_open: false,
        });
        self.hash.words(&[us(self.now), 600, p as u64, u64::from(number)]);
        self.pump(p, &mut live, 0);
        self.pump(p, &mut live, 1);
        self.pairs[p].lives.push(live);
    }
}
