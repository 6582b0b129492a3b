//! The mesh's loop, a task on the shared I/O threads: notices closed connections, ticks the
//! mesh's timer, applies its actions (close a connection, dial a member, publish a state) and
//! starts the dials, taking the core's lock only for the bookkeeping (never while it locks a
//! connection, closes one or drops a handle: see the lock order in the parent module).

use core::task::{Context, Poll};
use std::sync::Arc;

use futures_lite::future::FutureExt;
use tandem_core::endpoint::mesh::Action;
use tandem_core::endpoint::ConnId;

use super::{DialDone, MeshCore, LOG_LEN};
use crate::clock::{now, to_std};
use crate::peer::Peer;
use crate::threads::io::{Cx, Next, Task};

pub(super) struct MeshTask {
    core: Arc<MeshCore>,
}

impl MeshTask {
    pub(super) fn new(core: Arc<MeshCore>) -> Self {
        MeshTask { core }
    }
}

/// Whether the connection has ended; registers the task's waker otherwise.
fn closed(peer: &Peer, cx: &mut Context<'_>) -> bool {
    let mut f = core::pin::pin!(peer.closed());
    matches!(f.poll(cx), Poll::Ready(_))
}

impl Task for MeshTask {
    fn turn(&mut self, cx: &Cx<'_>) -> Next {
        let core = &self.core;
        let mut task_cx = Context::from_waker(cx.waker);
        // Which connections ended: checked with no lock of the core held.
        let peers: Vec<(ConnId, Peer)> = {
            let mut st = core.lock();
            st.waker = Some(cx.waker.clone());
            st.conns.iter().chain(&st.retired).map(|(id, c)| (*id, c.peer.clone())).collect()
        };
        let gone: Vec<ConnId> =
            peers.iter().filter(|(_, p)| closed(p, &mut task_cx)).map(|(id, _)| *id).collect();
        let mut dropped = Vec::new();
        let mut closes = Vec::new();
        let mut dials = Vec::new();
        let (next, stopped) = {
            let mut st = core.lock();
            let t = now();
            for id in gone {
                st.mesh.closed(t, id);
                dropped.extend(st.conns.remove(&id));
                dropped.extend(st.retired.remove(&id));
            }
            if st.stopped {
                (None, true)
            } else {
                st.mesh.tick(t);
                while let Some(a) = st.mesh.poll_action() {
                    match a {
                        Action::Dial { dial, name, addr } => {
                            st.dialing.insert(dial, String::from_utf8_lossy(&name).into_owned());
                            dials.push((dial, addr));
                        }
                        Action::Close { conn, status, reason } => {
                            if let Some(c) = st.conns.remove(&conn).or_else(|| st.retired.remove(&conn)) {
                                closes.push((c, status, reason));
                            }
                        }
                        Action::State { name, state } => {
                            let name = String::from_utf8_lossy(&name).into_owned();
                            tracing::debug!(mesh = %core.name, member = %name, ?state, "member state");
                            st.seq += 1;
                            let seq = st.seq;
                            st.log.push_back((seq, name, state));
                            if st.log.len() > LOG_LEN {
                                st.log.pop_front();
                            }
                        }
                    }
                }
                (st.mesh.poll_timeout(), false)
            }
        };
        core.changed.notify(usize::MAX);
        for (c, status, reason) in closes {
            tracing::info!(mesh = %core.name, conn = c.peer.name(), %status, reason, "mesh closes a connection");
            c.peer.close_with(status, reason);
        }
        drop(dropped);
        drop(peers);
        if stopped {
            return Next::Done;
        }
        for (dial, addr) in dials {
            let c = core.clone();
            tracing::debug!(mesh = %core.name, %addr, "dialing");
            (core.dial)(addr, DialDone(Some(Box::new(move |r| c.dial_done(dial, r)))));
        }
        Next::Wait(next.and_then(to_std))
    }
}
