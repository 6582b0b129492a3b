//! Peers by name: which connection answers to a name.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::ConnId;

/// Names → connections. A name answers with its newest registration; the older ones are kept
/// underneath (a suspended session that a newcomer overshadowed, a live connection that a
/// resumed session took the name back from) so that the name falls back to them when the newer
/// one leaves, and so that a newcomer can replace every live connection under its name.
#[derive(Debug, Default)]
pub(super) struct Names {
    /// Name → registrations (sequence number → connection), newest last.
    map: BTreeMap<Vec<u8>, BTreeMap<u64, ConnId>>,
    /// Connection → the sequence number of its registration.
    seq_of: BTreeMap<ConnId, u64>,
    next_seq: u64,
}

impl Names {
    /// Registers `name` for `id` as its newest registration (again, if it had one); returns the
    /// connection that answered to the name before (if another).
    pub fn insert(&mut self, name: &[u8], id: ConnId) -> Option<ConnId> {
        let before = self.get(name);
        self.remove(name, id);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.map.entry(name.to_vec()).or_default().insert(seq, id);
        self.seq_of.insert(id, seq);
        before.filter(|&old| old != id)
    }

    /// The connection that answers to `name`: its newest registration.
    pub fn get(&self, name: &[u8]) -> Option<ConnId> {
        self.map.get(name).and_then(|r| r.values().next_back().copied())
    }

    /// Every connection registered under `name` other than `id`, oldest first.
    pub fn others(&self, name: &[u8], id: ConnId) -> Vec<ConnId> {
        self.map.get(name).map_or_else(Vec::new, |r| r.values().copied().filter(|&o| o != id).collect())
    }

    /// Unregisters `id` from `name` (the name falls back to its previous registration).
    pub fn remove(&mut self, name: &[u8], id: ConnId) {
        let Some(seq) = self.seq_of.remove(&id) else { return };
        if let Some(r) = self.map.get_mut(name) {
            r.remove(&seq);
            if r.is_empty() {
                self.map.remove(name);
            }
        }
    }

    /// Every name with the connection that answers to it, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], ConnId)> {
        self.map.iter().filter_map(|(k, r)| r.values().next_back().map(|v| (k.as_slice(), *v)))
    }
}
