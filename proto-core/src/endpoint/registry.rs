//! Peers by name: which connection answers to a name.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::ConnId;

/// Names → connections. A name maps to one connection at a time; the newest registration wins.
#[derive(Debug, Default)]
pub(super) struct Names {
    map: BTreeMap<Vec<u8>, ConnId>,
}

impl Names {
    /// Registers `name` for `id`; returns the connection that had it before (if another).
    pub fn insert(&mut self, name: &[u8], id: ConnId) -> Option<ConnId> {
        self.map.insert(name.to_vec(), id).filter(|&old| old != id)
    }

    /// The connection registered under `name`.
    pub fn get(&self, name: &[u8]) -> Option<ConnId> {
        self.map.get(name).copied()
    }

    /// Unregisters `name` if it still belongs to `id`.
    pub fn remove(&mut self, name: &[u8], id: ConnId) {
        if self.map.get(name) == Some(&id) {
            self.map.remove(name);
        }
    }

    /// Every registration, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], ConnId)> {
        self.map.iter().map(|(k, v)| (k.as_slice(), *v))
    }
}
