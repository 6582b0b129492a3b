//! The transports: bytes delivered from the links, and the pump that drains a connection's events
//! and output after every input, action and timer, reporting each end to its dialer or endpoint.

use super::*;

impl Sim {
    // ------------------------------------------------------------------ transport

    pub(super) fn deliver(&mut self, p: usize, live: &mut Live, dir: usize) {
        let to = 1 - dir;
        let now = self.now;
        // Bytes for the server on the current transport go to the fresh connection while there
        // is one, else to the session if it is on this transport, else nowhere.
        let fresh = to == 1 && live.fresh.is_some();
        let attached = fresh || live.ends[to].gen == live.gen;
        let link = &mut live.links[dir];
        if link.q.front().is_some_and(|c| c.at <= now) {
            let mut chunk = link.q.pop_front().map(|c| c.data).unwrap_or_default();
            if !attached || (!fresh && live.ends[to].transport_closed) {
                return; // the receiver no longer reads
            }
            let mut stalls = 0;
            while !chunk.is_empty() {
                if to == 1 && live.fresh.is_some() {
                    let n = self.feed_fresh(p, live, &chunk);
                    chunk.drain(..n);
                    if n == 0 {
                        stalls += 1;
                        if stalls > 2 {
                            self.violation(format!("pair {p}: the fresh connection takes no bytes"));
                            return;
                        }
                    }
                    continue;
                }
                if live.ends[to].gen != live.gen {
                    break; // the fresh connection declined and went: its transport with it
                }
                let n = live.ends[to].conn.handle_input(now, &chunk);
                live.links[dir].delivered += n as u64;
                self.hash.words(&[us(now), 300, p as u64, dir as u64, n as u64]);
                chunk.drain(..n);
                self.pump(p, live, to);
                if n == 0 {
                    stalls += 1;
                    if stalls > 2 {
                        self.violation(format!(
                            "pair {p} side {to}: receive buffer takes no bytes even after draining events"
                        ));
                        return;
                    }
                }
            }
            return;
        }
        if link.q.is_empty() && link.fin.is_some_and(|t| t <= now) {
            link.fin = None;
            if fresh {
                if let Some(f) = live.fresh.as_mut() {
                    f.conn.handle_eof(now);
                }
                self.pump_fresh(p, live);
            } else if attached && !live.ends[to].transport_closed {
                live.ends[to].conn.handle_eof(now);
                self.hash.words(&[us(now), 301, p as u64, dir as u64]);
                self.pump(p, live, to);
            }
        }
    }

    /// Drains events, lets the application make progress, drains transmit; until nothing moves.
    pub(super) fn pump(&mut self, p: usize, live: &mut Live, side: usize) {
        for _round in 0..10_000 {
            let mut moved = false;
            loop {
                if side == 0 && live.resuming {
                    self.resume_outcome(p, live);
                }
                let end = &mut live.ends[side];
                let Some(e) = end.conn.poll_event(self.now) else { break };
                let ev = Ev::from(e);
                // The acceptor's answer is read inside poll_event: learn it before its events.
                if side == 0 && live.resuming {
                    self.resume_outcome(p, live);
                }
                let end = &mut live.ends[side];
                if end.closed {
                    self.violation(format!("pair {p} side {side}: event {ev:?} after Closed"));
                }
                let mut words = vec![us(self.now), 400, p as u64, side as u64];
                words.extend_from_slice(&ev.trace());
                self.hash.words(&words);
                moved = true;
                if self.verbose {
                    let ev_s = format!("{ev:?}");
                    let ev_s = if ev_s.len() > 160 { format!("{}…", &ev_s[..160]) } else { ev_s };
                    println!(
                        "{:>10} pair {p} #{} side {side}: {ev_s}",
                        us(self.now),
                        self.epochs[live.epoch].number
                    );
                }
                let kind: &'static str = match &ev {
                    Ev::Connected => "ev connected",
                    Ev::Request { kind: RequestKind::Call, .. } => "ev request call",
                    Ev::Request { kind: RequestKind::Notify, .. } => "ev request notify",
                    Ev::Request { .. } => "ev request stream",
                    Ev::Signal { .. } => "ev signal",
                    Ev::Response { .. } => "ev response",
                    Ev::Failed { status: Status::DEADLINE_EXCEEDED, .. } => "ev failed deadline",
                    Ev::Failed { .. } => "ev failed unavailable",
                    Ev::Cancelled { .. } => "ev cancelled",
                    Ev::StreamData { payload, .. } if payload.len() > 4000 => "ev stream data fragmented",
                    Ev::StreamData { .. } => "ev stream data",
                    Ev::StreamFin { .. } => "ev stream fin",
                    Ev::StreamReset { status: Status::UNAVAILABLE, .. } => "ev stream reset unavailable",
                    Ev::StreamReset { status: Status::DEADLINE_EXCEEDED, .. } => "ev stream reset deadline",
                    Ev::StreamReset { .. } => "ev stream reset",
                    Ev::StreamWritable { .. } => "ev stream writable",
                    Ev::GoAway { .. } => "ev goaway",
                    Ev::ResumeRequested { .. } => "ev resume requested",
                    Ev::AuthRequested { .. } => "ev auth requested",
                    Ev::Closed(ConnectionError::TransportClosed) => "ev closed transport",
                    Ev::Closed(ConnectionError::Malformed(_)) => "ev closed truncated",
                    Ev::Closed(ConnectionError::IdleTimeout) => "ev closed idle",
                    Ev::Closed(_) => "ev closed other",
                };
                self.count(kind);
                self.on_event(p, live, side, ev);
            }
            self.progress(p, live, side);
            loop {
                let end = &mut live.ends[side];
                let n = end.conn.poll_transmit(self.now, &mut self.buf);
                if n == 0 {
                    break;
                }
                self.hash.words(&[us(self.now), 500, p as u64, side as u64, n as u64]);
                // An end whose transport was replaced writes to the old one, which is gone.
                if live.ends[side].gen == live.gen {
                    live.links[side].send(self.now, &self.buf[..n]);
                }
                moved = true;
            }
            let on_link = live.ends[side].gen == live.gen;
            let end = &mut live.ends[side];
            if end.conn.is_finished() && !end.transport_closed {
                end.transport_closed = true;
                if on_link {
                    live.links[side].close(self.now);
                }
            }
            // A suspended session has given up on its transport: close it (the runtime would);
            // the dialer comes back after a backoff.
            let end = &mut live.ends[side];
            if end.conn.needs_transport() && !end.transport_closed {
                end.transport_closed = true;
                if on_link {
                    live.links[side].close(self.now);
                }
                self.epochs[live.epoch].lost = true;
                self.count("suspended");
            }
            if side == 0 {
                self.track_client(p, live);
            } else {
                self.track_server(p, live);
            }
            self.check_bounds(p, live, side);
            if !moved {
                let end = &mut live.ends[side];
                end.timeout = end.conn.poll_timeout();
                return;
            }
        }
        self.violation(format!(
            "pair {p} side {side}: livelock in the driver loop (events/transmit never settle)"
        ));
    }

    pub(super) fn check_bounds(&mut self, p: usize, live: &Live, side: usize) {
        let e = &live.ends[side];
        let ep = &self.epochs[live.epoch];
        let cfg = &ep.cfg[side];
        let mut msgs = Vec::new();
        let open = e.conn.open_exchanges();
        if open > e.open_bound {
            msgs.push(format!("pair {p} side {side}: open_exchanges {open} > bound {}", e.open_bound));
        }
        if let Err(why) = e.conn.check_invariants() {
            msgs.push(format!("pair {p} side {side}: core invariant broken: {why}"));
        }
        let fp = e.conn.buffer_footprint();
        if fp > e.footprint_bound {
            msgs.push(format!("pair {p} side {side}: buffer_footprint {fp} > bound {}", e.footprint_bound));
        }
        let st = e.conn.stats();
        if st.calls_open_inbound > cfg.max_concurrent_calls
            || st.streams_open_inbound > cfg.max_concurrent_streams
        {
            msgs.push(format!(
                "pair {p} side {side}: inbound open calls/streams {}/{} above the announced {}/{}",
                st.calls_open_inbound,
                st.streams_open_inbound,
                cfg.max_concurrent_calls,
                cfg.max_concurrent_streams
            ));
        }
        let peer = &ep.cfg[1 - side];
        if st.calls_open_outbound > peer.max_concurrent_calls.min(cfg.max_outbound_calls)
            || st.streams_open_outbound > peer.max_concurrent_streams.min(cfg.max_outbound_streams)
        {
            msgs.push(format!(
                "pair {p} side {side}: outbound open calls/streams {}/{} above the limits",
                st.calls_open_outbound, st.streams_open_outbound
            ));
        }
        for m in msgs {
            self.violation(m);
        }
    }
}
