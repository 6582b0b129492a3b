//! The server's many-connection logic is the core's real `Endpoint`: every server connection is
//! admitted by it, reports to it what happens (connected, suspended, memory, closed), and its
//! decisions (resume or decline, replace, evict, shed) are carried out here. The endpoint-level
//! invariants are checked after every step.

use super::*;
use tandem_core::endpoint::{Refusal, Resume, TOKEN_LEN};

/// Most endpoint actions carried out in one step before the driver declares a livelock.
const MAX_ACTIONS_PER_STEP: u32 = 1_000;

impl Sim {
    /// Admits a server connection for pair `p` (a new connection, or the fresh connection of a
    /// reconnection attempt). Returns its id and the session token it announces; `None`: the
    /// endpoint refused it (the dialer's attempt fails).
    pub(super) fn admit(&mut self, p: usize) -> Option<(ConnId, Vec<u8>)> {
        let mut token = [0u8; TOKEN_LEN];
        for c in token.chunks_mut(8) {
            c.copy_from_slice(&self.rng.next().to_le_bytes());
        }
        let offer = self.pairs[p].resumable.then_some(token);
        self.ep_dirty = true;
        match self.ep.accept_with(self.now, offer) {
            Ok(a) => Some((a.id, a.token.map(|t| t.to_vec()).unwrap_or_default())),
            Err(Refusal::TooManyConnections { .. }) => {
                self.count("endpoint refused: connections");
                None
            }
            Err(Refusal::TooManyHandshakes { .. }) => {
                self.count("endpoint refused: handshakes");
                None
            }
        }
    }

    /// Reports what happened to the server end of `live` to the endpoint, as a runtime does after
    /// every turn of a connection's loop.
    pub(super) fn track_server(&mut self, p: usize, live: &mut Live) {
        let Some(id) = live.ends[1].id else { return };
        let e = &mut live.ends[1];
        if e.told.gone {
            return;
        }
        if e.closed {
            e.told.gone = true;
            self.ep_dirty = true;
            self.ep.closed(id);
            return;
        }
        if e.connected && !e.told.connected {
            e.told.connected = true;
            let name = e.conn.peer().map(|x| x.name.to_vec()).unwrap_or_default();
            if name != self.pairs[p].name {
                self.violation(format!("pair {p}: the server sees the client's name as {name:?}"));
            }
            self.ep_dirty = true;
            self.ep.connected(id, &name, None);
            self.newcomers.push(id);
        }
        let e = &mut live.ends[1];
        let state = e.conn.state();
        if state == State::Suspended && !e.told.suspended {
            e.told.suspended = true;
            let since = e.conn.suspended_since().unwrap_or(self.now);
            self.ep_dirty = true;
            self.ep.suspended(id, since);
        } else if state != State::Suspended && e.told.suspended {
            e.told.suspended = false;
            self.ep_dirty = true;
            self.ep.unsuspended(id);
        }
        let e = &mut live.ends[1];
        let mem = e.conn.session_memory();
        if e.told.mem != Some(mem) {
            e.told.mem = Some(mem);
            self.ep.session_memory(id, mem);
        }
    }

    /// Feeds the fresh connection of a reconnection attempt; returns the bytes taken.
    pub(super) fn feed_fresh(&mut self, p: usize, live: &mut Live, data: &[u8]) -> usize {
        let Some(f) = live.fresh.as_mut() else { return 0 };
        let n = f.conn.handle_input(self.now, data);
        self.hash.words(&[us(self.now), 310, p as u64, n as u64]);
        self.pump_fresh(p, live);
        n
    }

    /// Drains the fresh connection's events: a resumption request goes to the endpoint, which
    /// says which session takes the transport over, or to decline (the fresh connection then
    /// continues as a new session). Its output goes onto the current transport.
    pub(super) fn pump_fresh(&mut self, p: usize, live: &mut Live) {
        let now = self.now;
        loop {
            let Some(f) = live.fresh.as_mut() else { return };
            let Some(e) = f.conn.poll_event(now) else { break };
            let ev = Ev::from(e);
            let mut words = vec![us(now), 410, p as u64];
            words.extend_from_slice(&ev.trace());
            self.hash.words(&words);
            if self.verbose {
                println!("{:>10} pair {p} fresh {:?}: {ev:?}", us(now), f.id);
            }
            match ev {
                Ev::ResumeRequested { token } => {
                    if self.resume_requested(p, live, &token) {
                        return; // the session took the transport over
                    }
                }
                Ev::Connected => {
                    let f = live.fresh.as_mut().expect("fresh");
                    f.told.connected = true;
                    let (id, name) = (f.id, f.conn.peer().map(|x| x.name.to_vec()).unwrap_or_default());
                    self.ep_dirty = true;
                    self.ep.connected(id, &name, None);
                    self.newcomers.push(id);
                }
                Ev::Closed(err) => {
                    let f = live.fresh.as_mut().expect("fresh");
                    f.told.gone = true;
                    let id = f.id;
                    self.ep_dirty = true;
                    self.ep.closed(id);
                    // A fresh connection ends with its transport, or with the dialer's CLOSE
                    // after a declined resumption; never with a protocol error.
                    if matches!(err, ConnectionError::Violation { .. }) {
                        self.violation(format!("pair {p}: fresh connection closed: {err:?}"));
                    }
                }
                other => self.violation(format!("pair {p}: fresh connection: unexpected {other:?}")),
            }
        }
        let Some(f) = live.fresh.as_mut() else { return };
        loop {
            let n = f.conn.poll_transmit(now, &mut self.buf);
            if n == 0 {
                break;
            }
            live.links[1].send(now, &self.buf[..n]);
        }
        f.timeout = f.conn.poll_timeout();
        // A declined fresh connection is a session like any other: it may be suspended too.
        let suspended = f.conn.state() == State::Suspended;
        if !f.told.gone && suspended != f.told.suspended {
            f.told.suspended = suspended;
            self.ep_dirty = true;
            match f.conn.suspended_since() {
                Some(since) => self.ep.suspended(f.id, since),
                None => self.ep.unsuspended(f.id),
            }
        }
        if f.conn.is_finished() {
            if !f.told.gone {
                self.violation(format!("pair {p}: fresh connection finished without Closed"));
                self.ep_dirty = true;
                self.ep.closed(f.id);
            }
            live.links[1].close(now);
            live.fresh = None;
        }
    }

    /// The endpoint's answer to a resuming HELLO, carried out. Returns whether the session took
    /// the transport over.
    fn resume_requested(&mut self, p: usize, live: &mut Live, token: &[u8]) -> bool {
        let now = self.now;
        let fid = live.fresh.as_ref().expect("fresh").id;
        let session = live.ends[1].id;
        let own = live.ends[1].conn.session_token() == token;
        self.ep_dirty = true;
        match self.ep.resume_requested(fid, token, None) {
            Resume::Into(sid) => {
                if Some(sid) != session || !own {
                    self.violation(format!(
                        "pair {p}: the endpoint resumes session {sid:?}, not the one whose token was sent ({session:?})"
                    ));
                    return false;
                }
                let mut fresh = live.fresh.take().expect("fresh");
                match live.ends[1].conn.resume_from(now, &mut fresh.conn) {
                    Ok(()) => {
                        self.ep_dirty = true;
                        self.ep.resumed(sid, fid);
                        let gen = live.gen;
                        let end = &mut live.ends[1];
                        end.gen = gen;
                        end.transport_closed = false;
                        let ep = &mut self.epochs[live.epoch];
                        ep.resumed += 1;
                        // The windows restart (SPEC.md §13.4): what was sent and not yet consumed
                        // no longer counts against them.
                        for x in ep.ex.values_mut() {
                            for dir in x.dirs.iter_mut() {
                                dir.slack_items += (dir.sent.len() as u64)
                                    .saturating_sub(dir.consumed_items + dir.slack_items);
                                dir.slack_bytes +=
                                    dir.sent_bytes.saturating_sub(dir.consumed_bytes + dir.slack_bytes);
                            }
                        }
                        self.count("resumed");
                        self.hash.words(&[us(now), 701, p as u64]);
                        self.pump(p, live, 1);
                        return true;
                    }
                    Err(e) => {
                        // The session is ending (GOAWAY) or already closed here: a new session.
                        self.count("resumption declined: session ending");
                        if !matches!(e, ApiError::Closed | ApiError::GoingAway) {
                            self.violation(format!("pair {p}: resume_from refused: {e:?}"));
                        }
                        live.fresh = Some(fresh);
                    }
                }
            }
            Resume::Decline => {
                self.count("resumption declined by the endpoint");
                if own && !live.ends[1].told.gone {
                    self.violation(format!(
                        "pair {p}: the endpoint declined to resume session {session:?}, which it still holds"
                    ));
                }
            }
        }
        let f = live.fresh.as_mut().expect("fresh");
        if let Err(e) = f.conn.decline_resume(now) {
            self.violation(format!("pair {p}: decline_resume: {e:?}"));
        }
        false
    }

    /// Carries out what the endpoint asked of other connections: close the one a newcomer
    /// replaced, evict a suspended session, shed cached answers.
    pub(super) fn apply_actions(&mut self) {
        let mut n = 0;
        while let Some(a) = self.ep.poll_action() {
            self.ep_dirty = true;
            n += 1;
            if n > MAX_ACTIONS_PER_STEP {
                self.violation(format!("livelock: the endpoint keeps asking ({a:?})"));
                return;
            }
            let id = match a {
                Action::Close { id, .. } | Action::Evict { id, .. } | Action::Shed { id, .. } => id,
            };
            let found = self.pairs.iter().enumerate().find_map(|(p, slot)| {
                slot.lives.iter().enumerate().find_map(|(i, l)| {
                    let fresh = l.fresh.as_ref().is_some_and(|f| f.id == id);
                    (l.ends[1].id == Some(id) || fresh).then_some((p, i, fresh))
                })
            });
            let Some((p, i, fresh)) = found else {
                self.violation(format!("endpoint action {a:?} for a connection the server does not hold"));
                continue;
            };
            let mut live = self.pairs[p].lives.remove(i);
            self.hash.words(&[us(self.now), 800, id.0]);
            if self.verbose {
                println!("{:>10} pair {p}: endpoint {a:?} (fresh: {fresh})", us(self.now));
            }
            let ep = live.epoch;
            let now = self.now;
            let (conn, told) = match live.fresh.as_mut() {
                Some(f) if fresh => (&mut f.conn, &mut f.told),
                _ => (&mut live.ends[1].conn, &mut live.ends[1].told),
            };
            match a {
                Action::Close { status, reason, .. } => {
                    let name = conn.peer().map(|x| x.name.to_vec()).unwrap_or_default();
                    let state = conn.state();
                    conn.close(now, status, reason.as_bytes());
                    if !matches!(state, State::Open | State::Draining)
                        || name.is_empty()
                        || self.ep.peer(&name) == Some(id)
                    {
                        self.violation(format!(
                            "pair {p}: the endpoint replaces {id:?} ({state:?}, name {name:?}) though no newer connection took its name"
                        ));
                    }
                    if !fresh {
                        self.epochs[ep].replaced = true;
                    }
                    self.count("replaced by a newer connection");
                }
                Action::Evict { .. } => {
                    if conn.evict_suspended_session() {
                        if !fresh {
                            self.epochs[ep].evicted = true;
                        }
                        self.count("suspended session evicted");
                    } else {
                        told.mem = None; // report it again
                    }
                }
                Action::Shed { bytes, .. } => {
                    conn.shed_session_memory(bytes);
                    told.mem = None;
                    if !fresh {
                        self.epochs[ep].shed = true;
                    }
                    self.count("session memory shed");
                }
            }
            if fresh {
                self.pump_fresh(p, &mut live);
                self.put_back(p, i, live);
                continue;
            }
            self.pump(p, &mut live, 1);
            self.put_back(p, i, live);
        }
    }

    /// The endpoint's view agrees with the server's connections, after every step.
    pub(super) fn check_endpoint(&mut self) {
        if !std::mem::take(&mut self.ep_dirty) {
            return;
        }
        let cfg = self.ep.config().clone();
        let (mut conns, mut handshaking, mut suspended) = (0usize, 0usize, 0usize);
        let mut open: BTreeMap<Vec<u8>, Vec<ConnId>> = BTreeMap::new();
        let mut names: BTreeMap<ConnId, Vec<u8>> = BTreeMap::new();
        for l in self.pairs.iter().flat_map(|s| &s.lives) {
            let e = &l.ends[1];
            if let (Some(id), false) = (e.id, e.told.gone) {
                conns += 1;
                handshaking += usize::from(!e.told.connected);
                let st = e.conn.state();
                suspended += usize::from(st == State::Suspended);
                let name = e.conn.peer().map(|x| x.name.to_vec()).unwrap_or_default();
                if e.told.connected && matches!(st, State::Open | State::Draining) && !name.is_empty() {
                    open.entry(name.clone()).or_default().push(id);
                }
                names.insert(id, name);
            }
            if let Some(f) = l.fresh.as_ref().filter(|f| !f.told.gone) {
                conns += 1;
                handshaking += usize::from(!f.told.connected);
                suspended += usize::from(f.conn.state() == State::Suspended);
                let name = f.conn.peer().map(|x| x.name.to_vec()).unwrap_or_default();
                if f.told.connected && f.conn.state() == State::Open && !name.is_empty() {
                    open.entry(name.clone()).or_default().push(f.id);
                }
                names.insert(f.id, name);
            }
        }
        let mut msgs = Vec::new();
        let ep = &self.ep;
        if (ep.connections(), ep.handshaking(), ep.suspended_sessions()) != (conns, handshaking, suspended) {
            msgs.push(format!(
                "endpoint tracks {}/{}/{} connections/handshaking/suspended, the server has {conns}/{handshaking}/{suspended}",
                ep.connections(),
                ep.handshaking(),
                ep.suspended_sessions()
            ));
        }
        if conns > cfg.max_connections
            || handshaking > cfg.max_handshaking
            || suspended > cfg.max_suspended_sessions
        {
            msgs.push(format!(
                "{conns}/{handshaking}/{suspended} connections/handshaking/suspended above the endpoint's limits"
            ));
        }
        // The registry names only connections that are there, under the name they announced.
        for (name, id) in ep.peers() {
            if names.get(&id).map(Vec::as_slice) != Some(name) {
                msgs.push(format!(
                    "registry: {name:?} names {id:?}, which is gone or announced another name"
                ));
            }
        }
        // After a newcomer registered (and the endpoint's closes were carried out), it is the
        // only live connection under its name.
        for id in std::mem::take(&mut self.newcomers) {
            let Some(name) = names.get(&id).filter(|n| !n.is_empty()) else { continue };
            let others: Vec<ConnId> =
                open.get(name).into_iter().flatten().copied().filter(|&o| o != id).collect();
            if !others.is_empty() && open.get(name).is_some_and(|v| v.contains(&id)) {
                msgs.push(format!("name {name:?}: {id:?} registered, yet {others:?} still live under it"));
            }
        }
        // A live connection under a name keeps the name registered (the name may answer with a
        // suspended session that registered later, SPEC.md §13.3, but never with nothing).
        for (name, ids) in &open {
            if ep.peer(name).is_none() {
                msgs.push(format!("registry: {name:?} lost while {ids:?} are live under it"));
            }
        }
        for m in msgs {
            self.violation(m);
        }
    }

    /// At quiescence: every session is either in the endpoint's table (and up) or resolved.
    pub(super) fn final_endpoint_check(&self, v: &mut Vec<String>) {
        if self.ep.suspended_sessions() != 0 {
            v.push(format!(
                "endpoint: {} sessions still suspended at quiescence",
                self.ep.suspended_sessions()
            ));
        }
        let up = self.pairs.iter().flat_map(|s| &s.lives).filter(|l| !l.ends[1].told.gone).count();
        if self.ep.connections() != up {
            v.push(format!("endpoint: {} connections tracked, {up} up at quiescence", self.ep.connections()));
        }
        let s = self.ep.stats();
        let resumed: u32 = self.epochs.iter().map(|e| e.resumed).sum();
        if s.resumptions != u64::from(resumed) {
            v.push(format!("endpoint: {} resumptions counted, {resumed} happened", s.resumptions));
        }
        let n = |k: &str| self.counts.get(k).copied().unwrap_or(0);
        if s.replaced != n("replaced by a newer connection") {
            v.push(format!(
                "endpoint: {} replacements counted, {} carried out",
                s.replaced,
                n("replaced by a newer connection")
            ));
        }
        if s.evicted_count + s.evicted_memory < n("suspended session evicted") {
            v.push(format!(
                "endpoint: {} evictions counted, more carried out",
                s.evicted_count + s.evicted_memory
            ));
        }
    }
}
