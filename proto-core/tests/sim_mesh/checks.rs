//! The invariants of a mesh scenario: after every step, and at quiescence.

use super::{End, Sim, HORIZON_MS, SETTLE_MS};
use tandem_core::endpoint::mesh::{dials, MemberState};
use tandem_core::endpoint::ConnId;

impl Sim {
    /// The invariants that hold after every step (one pass over the connections).
    pub(super) fn check(&mut self) {
        let n = self.nodes.len();
        let mut found = Vec::new();
        let mut both = vec![0u32; n * n];
        let mut open = vec![0usize; n];
        for (&id, c) in &self.conns {
            let e = [0, 1].map(|s| {
                let node = &self.nodes[c.nodes[s]];
                if node.inc == c.inc[s] && node.mesh.is_some() {
                    c.ends[s]
                } else {
                    End::Gone
                }
            });
            if e == [End::Open, End::Open] {
                both[c.nodes[0].min(c.nodes[1]) * n + c.nodes[0].max(c.nodes[1])] += 1;
            }
            for (side, _) in e.iter().enumerate().filter(|(_, &e)| e == End::Open) {
                let i = c.nodes[side];
                open[i] += 1;
                let peer = &self.nodes[c.nodes[1 - side]].name;
                let m = self.nodes[i].mesh.as_ref().expect("an open end's node runs");
                if m.member_of(ConnId(id)) != Some(peer.as_slice()) {
                    found.push(format!(
                        "{} holds open connection {id} to {} that its mesh does not",
                        self.label(i),
                        self.label(c.nodes[1 - side])
                    ));
                }
            }
        }
        for (k, &count) in both.iter().enumerate() {
            if count > 1 {
                found.push(format!(
                    "{count} connections established between {} and {}",
                    self.label(k / n),
                    self.label(k % n)
                ));
            }
        }
        for (i, &open) in open.iter().enumerate() {
            let Some(m) = self.nodes[i].mesh.as_ref() else { continue };
            if m.connections() > m.len() || m.timers() > m.len() || open != m.connections() {
                found.push(format!(
                    "{}: mesh tracks {} connections and {} timers for {} members; {open} open",
                    self.label(i),
                    m.connections(),
                    m.timers(),
                    m.len()
                ));
            }
            // A member's state names its connection: checked on the nodes this step told
            // something (the others did not change).
            if !std::mem::take(&mut self.touched[i]) {
                continue;
            }
            let m = self.nodes[i].mesh.as_ref().expect("checked above");
            for (name, st) in m.members() {
                if let MemberState::Connected { conn, dialed, .. } = st {
                    let side = usize::from(!dialed);
                    if !self.conns.get(&conn.0).is_some_and(|c| c.nodes[side] == i) {
                        found.push(format!(
                            "{}: {} Connected over {conn:?}, which is not its end",
                            self.label(i),
                            String::from_utf8_lossy(name)
                        ));
                    }
                }
            }
        }
        if self.conns.len() > 4 * n * n {
            found.push(format!("{} connections tracked for {n} nodes: unbounded growth", self.conns.len()));
        }
        for f in found {
            self.violation(f);
        }
    }

    /// At the end, long after the last fault: every pair of live members holds exactly one
    /// connection, the same at both ends, dialed by the designated dialer, and nothing is pending.
    pub(super) fn quiescence(&mut self) {
        let end = HORIZON_MS + SETTLE_MS;
        let live: Vec<usize> =
            (0..self.nodes.len()).filter(|&i| self.planned(i, end) && self.nodes[i].mesh.is_some()).collect();
        let planned = (0..self.nodes.len()).filter(|&i| self.planned(i, end)).count();
        if live.len() != planned {
            self.violation(format!("{} planned members, {} running", planned, live.len()));
        }
        let mut found = Vec::new();
        for &x in &live {
            let m = self.nodes[x].mesh.as_ref().expect("live");
            if m.len() != live.len() - 1 || m.timers() != 0 {
                found.push(format!(
                    "{}: {} members, {} timers at quiescence",
                    self.label(x),
                    m.len(),
                    m.timers()
                ));
            }
            for &y in &live {
                if x >= y {
                    continue;
                }
                let ny = &self.nodes[y].name;
                let nx = &self.nodes[x].name;
                let my = self.nodes[y].mesh.as_ref().expect("live");
                let (cx, cy) = (m.connection(ny), my.connection(nx));
                let est = self
                    .conns
                    .iter()
                    .filter(|(&id, c)| {
                        (c.nodes == [x, y] || c.nodes == [y, x])
                            && self.end(id, 0) == End::Open
                            && self.end(id, 1) == End::Open
                    })
                    .map(|(&id, c)| (id, c.nodes[0]))
                    .collect::<Vec<_>>();
                let designated = if dials(nx, ny) { x } else { y };
                let ok = est.len() == 1 && cx == Some(ConnId(est[0].0)) && cy == cx && est[0].1 == designated;
                if !ok {
                    found.push(format!(
                        "{} / {}: established {est:?}, meshes say {cx:?} / {cy:?} (states {:?} / {:?}), designated dialer node {designated}",
                        self.label(x),
                        self.label(y),
                        m.state(ny),
                        my.state(nx)
                    ));
                }
            }
        }
        // A removed node still running never holds an established connection to a member.
        if let Some((l, _)) = self.leave {
            for (&id, c) in &self.conns {
                if c.nodes.contains(&l) && self.end(id, 0) == End::Open && self.end(id, 1) == End::Open {
                    found.push(format!("removed {} still connected over {id}", self.label(l)));
                }
            }
        }
        for f in found {
            self.violation(f);
        }
        self.count("pairs_checked");
    }
}
