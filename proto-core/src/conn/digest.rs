//! The request digest that ties a retransmission to its original (SPEC.md §13.5), shared by
//! datagram mode and session resumption, with or without an allocator.

use crate::event::MethodId;

/// A digest of a request: SHA-256 over (frame type, module, method, payload), truncated to 128
/// bits (SPEC.md §13.5). Never sent on the wire.
pub(crate) type Digest = [u8; 16];

/// The digest of an opening frame's request (`budget_us` and flags other than FIN excluded).
pub(crate) fn request_digest(ty: u8, method: MethodId, payload: &[u8]) -> Digest {
    use sha2::{Digest as _, Sha256};
    // One `update` for the fixed-size head (type ‖ module ‖ method ‖ payload length) and one for
    // the payload: each `update` pays the block buffer's bookkeeping.
    let mut head = [0u8; 17];
    head[0] = ty;
    head[1..5].copy_from_slice(&method.module.to_be_bytes());
    head[5..9].copy_from_slice(&method.method.to_be_bytes());
    head[9..17].copy_from_slice(&(payload.len() as u64).to_be_bytes());
    let mut h = Sha256::new();
    h.update(head);
    h.update(payload);
    let full = h.finalize();
    let mut d = [0u8; 16];
    d.copy_from_slice(&full[..16]);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    /// The digest is SPEC.md §13.5's reference function: the first 16 bytes of SHA-256 over
    /// `type ‖ module (u32 BE) ‖ method (u32 BE) ‖ payload length (u64 BE) ‖ payload`, here
    /// computed from the concatenation in one go, for payloads within one block and beyond.
    #[test]
    fn the_digest_is_sha256_over_the_specified_concatenation() {
        for len in [0usize, 1, 38, 39, 47, 48, 100, 1000] {
            let payload: std::vec::Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let method = MethodId::new(0x0102_0304, 0xa0b0_c0d0);
            let mut all = std::vec![0x10u8];
            all.extend_from_slice(&[1, 2, 3, 4, 0xa0, 0xb0, 0xc0, 0xd0]);
            all.extend_from_slice(&(len as u64).to_be_bytes());
            all.extend_from_slice(&payload);
            assert_eq!(request_digest(0x10, method, &payload)[..], Sha256::digest(&all)[..16], "{len}");
        }
    }
}
