//! The request digest that ties a retransmission to its original (SPEC.md §13.5), shared by
//! datagram mode and session resumption, with or without an allocator.

use crate::event::MethodId;

/// A digest of a request: SHA-256 over (frame type, module, method, payload), truncated to 128
/// bits (SPEC.md §13.5). Never sent on the wire.
pub(crate) type Digest = [u8; 16];

/// The digest of an opening frame's request (`budget_us` and flags other than FIN excluded).
pub(crate) fn request_digest(ty: u8, method: MethodId, payload: &[u8]) -> Digest {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update([ty]);
    h.update(method.module.to_be_bytes());
    h.update(method.method.to_be_bytes());
    h.update((payload.len() as u64).to_be_bytes());
    h.update(payload);
    let full = h.finalize();
    let mut d = [0u8; 16];
    d.copy_from_slice(&full[..16]);
    d
}
