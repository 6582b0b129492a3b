//! Local API actions an application takes on one connection, chosen by the fuzzer, applied with
//! the [`Tracker`] recording what succeeded.

use crate::track::{length, status, Tracker, PAYLOAD};
use arbitrary::Arbitrary;
use core::time::Duration;
use tandem_core::{Connection, Instant, MethodId};

/// One application action.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Action {
    /// `call` / `notify`.
    Call { notify: bool, len: u8, deadline_ms: Option<u8> },
    /// `open_stream`.
    OpenStream { half_close: bool, len: u8, deadline_ms: Option<u8> },
    /// `signal`.
    Signal(u8),
    /// `respond` to the n-th unanswered request (or, for large `pick`, any known id).
    Respond { pick: u8, status: u8, len: u8 },
    /// `stream_send` (even `len`) or `stream_send_shared` (odd).
    StreamSend { pick: u8, len: u8 },
    /// `stream_consumed` of what was delivered (all of it, or one item of at most 7 bytes).
    StreamConsumed { pick: u8, all: bool },
    /// `stream_finish`.
    StreamFinish { pick: u8, status: u8 },
    /// `stream_reset`.
    StreamReset { pick: u8, status: u8 },
    /// `cancel`.
    Cancel { pick: u8 },
    /// `go_away`.
    GoAway { status: u8 },
    /// `close`.
    Close { status: u8 },
    /// `ping`.
    Ping,
    /// `release_memory`.
    Release,
}

fn any_id(t: &Tracker, pick: u8) -> u64 {
    let n = t.own_ids.len() + t.peer_ids.len();
    if n == 0 {
        return u64::from(pick % 4);
    }
    let k = usize::from(pick) % n;
    if k < t.own_ids.len() {
        t.own_ids[k]
    } else {
        t.peer_ids[k - t.own_ids.len()]
    }
}

fn pick_in_call(t: &Tracker, pick: u8) -> u64 {
    if t.in_calls.is_empty() || pick >= 240 {
        return any_id(t, pick);
    }
    t.in_calls[usize::from(pick) % t.in_calls.len()].0
}

fn pick_stream(t: &Tracker, pick: u8) -> u64 {
    let n = t.stream_ids.len() + t.in_streams.len();
    if n == 0 || pick >= 240 {
        return any_id(t, pick);
    }
    let k = usize::from(pick) % n;
    if k < t.stream_ids.len() {
        t.stream_ids[k]
    } else {
        t.in_streams[k - t.stream_ids.len()]
    }
}

/// Applies `a` to `c` at `now`, recording successes in `t`. Refusals (`ApiError`) are fine.
pub fn apply(c: &mut Connection<'_>, t: &mut Tracker, now: Instant, a: Action) {
    let m = MethodId::new(1, 1);
    let deadline = |ms: Option<u8>| ms.map(|v| now + Duration::from_millis(u64::from(v) * 16));
    match a {
        Action::Call { notify, len, deadline_ms } => {
            let payload = &PAYLOAD[..length(len)];
            let dl = deadline(deadline_ms);
            let r = if notify { c.notify(now, m, payload, dl) } else { c.call(now, m, payload, dl) };
            if let Ok(id) = r {
                t.opened_call(id, notify);
            }
        }
        Action::OpenStream { half_close, len, deadline_ms } => {
            if let Ok(id) = c.open_stream(now, m, &PAYLOAD[..length(len)], deadline(deadline_ms), half_close)
            {
                t.opened_stream(id);
            }
        }
        Action::Signal(len) => {
            let _ = c.signal(m, &PAYLOAD[..length(len)]);
        }
        Action::Respond { pick, status: s, len } => {
            let id = pick_in_call(t, pick);
            let notify = t.in_calls.iter().any(|&(i, n)| i == id && n);
            let payload = if notify { &[][..] } else { &PAYLOAD[..length(len)] };
            if c.respond(id, status(s), payload).is_ok() {
                t.responded(id);
            }
        }
        Action::StreamSend { pick, len } => {
            let item = &PAYLOAD[..length(len)];
            // Odd lengths shared (sent from their own buffer), even ones lent (copied).
            let _ = if len % 2 == 1 {
                c.stream_send_shared(pick_stream(t, pick), &std::sync::Arc::new(item.to_vec()))
            } else {
                c.stream_send(pick_stream(t, pick), item)
            };
        }
        Action::StreamConsumed { pick, all } => {
            let id = pick_stream(t, pick);
            let (items, bytes) = t.unconsumed.get(&id).copied().unwrap_or((0, 0));
            let (i, b) = if all { (items, bytes) } else { (items.min(1), bytes.min(7)) };
            if c.stream_consumed(id, i, b).is_ok() {
                if let Some(u) = t.unconsumed.get_mut(&id) {
                    u.0 -= i;
                    u.1 -= b;
                }
            }
        }
        Action::StreamFinish { pick, status: s } => {
            let id = pick_stream(t, pick);
            if c.stream_finish(id, status(s)).is_ok() {
                t.released(id);
            }
        }
        Action::StreamReset { pick, status: s } => {
            let id = pick_stream(t, pick);
            if c.stream_reset(id, status(s)).is_ok() {
                t.released(id);
                t.unconsumed.remove(&id);
            }
        }
        Action::Cancel { pick } => {
            let id = if t.own_ids.is_empty() {
                u64::from(pick)
            } else {
                t.own_ids[usize::from(pick) % t.own_ids.len()]
            };
            if c.cancel(id).is_ok() {
                t.cancelled(id);
                t.released(id);
                t.unconsumed.remove(&id);
            }
        }
        Action::GoAway { status: s } => {
            let _ = c.go_away(now, status(s), b"fuzz");
        }
        Action::Close { status: s } => c.close(now, status(s), b"fuzz close"),
        Action::Ping => {
            let _ = c.ping(now);
        }
        Action::Release => c.release_memory(),
    }
}
