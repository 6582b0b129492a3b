//! Connection-level control frames: HELLO (the handshake and, for an acceptor that
//! authenticates, the decision before its HELLO), CLOSE, GOAWAY, PING/PONG and the budget of
//! frames that do nothing for the application (SPEC.md §5, §7.6–§7.8, §12.5).

use super::recv::{protocol, violation, R};
use super::{Connection, State};
use crate::config::{PeerLimits, Role, VERSION};
use crate::error::ConnectionError;
use crate::frame::Hello;
use crate::status::Status;
use crate::time::Instant;

impl Connection<'_> {
    /// Counts a frame that does nothing for the application against the unproductive-frame
    /// budget (SPEC.md §12.5): a token bucket of `max_unproductive_frames` frames, refilled at
    /// that many per second.
    pub(super) fn unproductive(&mut self, now: Instant) -> Result<(), ConnectionError> {
        let rate = u64::from(self.config.max_unproductive_frames);
        if rate == 0 {
            return Ok(());
        }
        let us = now.as_micros().saturating_sub(self.flood_at.as_micros());
        self.flood_at = self.flood_at.max(now);
        self.flood_tokens = self.flood_tokens.saturating_add(us.saturating_mul(rate)).min(rate * 1_000_000);
        if self.flood_tokens < 1_000_000 {
            return Err(violation(
                Status::ENHANCE_YOUR_CALM,
                "flood of frames that do nothing (PING, extension, zero credit, empty CONTINUATION)",
            ));
        }
        self.flood_tokens -= 1_000_000;
        Ok(())
    }

    /// A round-trip sample of `rtt_us` microseconds (a PONG): the last one and the smoothed
    /// 7/8·SRTT + 1/8·R in `Stats`, computed in microseconds (no 64-bit division).
    pub(super) fn record_rtt(&mut self, rtt_us: u64) {
        let rtt_us = rtt_us.min(1 << 40);
        self.stats.rtt = Some(crate::time::micros_to_duration(rtt_us));
        let srtt_us = match self.stats.srtt {
            None => rtt_us,
            Some(s) => {
                let s_us = (s.as_secs().min(1 << 24) * 1_000_000 + u64::from(s.subsec_micros())).min(1 << 40);
                (s_us * 7 + rtt_us) / 8
            }
        };
        self.stats.srtt = Some(crate::time::micros_to_duration(srtt_us));
    }

    pub(super) fn on_hello(&mut self, h: Hello<'_>) -> R {
        let version = match self.role {
            Role::Acceptor => {
                let v = h.max_version.min(VERSION);
                if h.min_version > h.max_version || v < h.min_version.max(VERSION) {
                    self.push_close(Status::INCOMPATIBLE_VERSION, b"supported protocol versions: 1..1");
                    self.enter_closed(ConnectionError::Incompatible { reason: "no common protocol version" });
                    return Ok(None);
                }
                v
            }
            Role::Dialer => {
                if h.min_version != h.max_version || h.min_version != VERSION {
                    return Err(protocol("acceptor chose a protocol version the dialer did not offer"));
                }
                h.min_version
            }
        };
        let resume = h.flags & Hello::RESUME != 0;
        match self.role {
            Role::Acceptor if resume == h.session.is_empty() => {
                return Err(protocol("HELLO RESUME flag must be set exactly when a session token is given"));
            }
            Role::Dialer if resume && (self.me.2.get().is_empty() || h.session != self.me.2.get()) => {
                return Err(protocol("acceptor confirmed a resumption of another session than requested"));
            }
            _ => {}
        }
        let limits = PeerLimits::from_params(h.params.iter())
            .map_err(|_| protocol("HELLO parameter out of its legal range"))?;
        self.peer = limits;
        self.version = version;
        self.peer_name.set(h.name);
        self.peer_auth.set(h.auth);
        self.peer_session.set(h.session);
        self.peer_resume = resume;
        self.conn_send = limits.conn_credit_bytes.into();
        // SPEC.md §13.2: the session is resumable when the acceptor gave a session token.
        #[cfg(feature = "resume")]
        if self.sess.is_none() && !self.session_token().is_empty() {
            self.restart_session(true);
        }
        #[cfg(feature = "resume")]
        if self.role == Role::Acceptor && resume && !self.me.2.get().is_empty() {
            // We offer resumption: the application looks the token up (SPEC.md §13.3). Without
            // `alloc` this connection needs no session buffers of its own: `resume_from` moves
            // its transport into the session that has them.
            return self.on_resume_request();
        }
        if self.role == Role::Acceptor && self.config.authenticate {
            // The application decides first; nothing but CLOSE goes out before (SPEC.md §5.6).
            self.auth_request = true;
            return Ok(Some(super::Raw::AuthRequested));
        }
        if self.role == Role::Acceptor {
            // A new session (with our token, if we offer resumption).
            self.send_hello(version, version, false);
        }
        self.state = State::Open;
        self.connected_event = true;
        Ok(None)
    }

    pub(super) fn on_close(&mut self, status: Status, message: &[u8]) -> R {
        self.close_msg.set(message);
        // SPEC.md §13.2: CLOSE(IDLE_TIMEOUT) does not end a resumable session.
        #[cfg(feature = "resume")]
        if self.try_suspend(self.last_recv, &ConnectionError::PeerClosed { status }) {
            return Ok(None);
        }
        self.tx_clear();
        self.tx_head_left = 0;
        self.enter_closed(ConnectionError::PeerClosed { status });
        Ok(None)
    }

    pub(super) fn on_goaway(&mut self, bound: u64, status: Status) -> R {
        if let Some(prev) = self.goaway_recv {
            if bound > prev {
                return Err(protocol("GOAWAY raised its bound"));
            }
        }
        self.goaway_recv = Some(bound);
        // SPEC.md §13.2: GOAWAY ends the session with this connection.
        self.session_ending = true;
        if self.state == State::Open {
            self.state = State::Draining;
        }
        // Our exchanges the peer will not process resolve now, as UNAVAILABLE (retryable).
        // A bound of 2^62-1 excludes nothing: no id can follow the last one (SPEC.md §7.7.1).
        for i in 0..self.slots.capacity_hint() {
            if self.slots.get(i).is_some_and(|s| s.outbound && s.id >= bound && bound != crate::varint::MAX) {
                self.abort_slot(i, Status::UNAVAILABLE);
            }
        }
        self.goaway_event = Some((bound, status));
        Ok(None)
    }

    /// Acceptor with [`Config::authenticate`](crate::Config::authenticate), after
    /// [`Event::AuthRequested`](crate::Event::AuthRequested): the application accepts the peer;
    /// our HELLO goes out and [`Event::Connected`](crate::Event::Connected) follows. To refuse
    /// it instead, [`close`](Self::close) with UNAUTHENTICATED or PERMISSION_DENIED and a message:
    /// the peer receives that CLOSE and nothing else.
    pub fn accept_peer(&mut self, now: Instant) -> Result<(), crate::ApiError> {
        if !self.auth_request || self.state == State::Closed {
            return Err(crate::ApiError::WrongState("accept_peer answers Event::AuthRequested, once"));
        }
        self.auth_request = false;
        self.send_hello(self.version, self.version, false);
        self.state = State::Open;
        self.last_recv = now;
        self.connected_event = true;
        Ok(())
    }
}
