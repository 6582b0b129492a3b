//! The request digest that ties a retransmission to its original (SPEC.md §13.5), shared by
//! datagram mode and session resumption, with or without an allocator.

use crate::event::MethodId;

/// A digest of a request: SHA-256 over (frame type, module, method, payload), truncated to 128
/// bits (SPEC.md §13.5). Never sent on the wire.
pub(crate) type Digest = [u8; 16];

/// The longest payload whose digest input (17 bytes of head, the payload) fits one SHA-256
/// block with its padding (a 0x80 byte and the 8-byte bit length).
const ONE_BLOCK: usize = 64 - 17 - 9;

/// SHA-256's initial hash value (FIPS 180-4 §5.3.3).
const H0: [u32; 8] =
    [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19];

/// The same digest as the streaming path for an input that fits one block: the block is padded
/// here (FIPS 180-4 §5.1.1) and compressed once, without the streaming hasher's buffering and
/// finalisation (a third of the digest's cost for the small requests of a pipelined call).
fn one_block(head: &[u8; 17], payload: &[u8]) -> Digest {
    let len = head.len() + payload.len();
    let mut block = [0u8; 64];
    block[..17].copy_from_slice(head);
    block[17..len].copy_from_slice(payload);
    block[len] = 0x80;
    block[56..].copy_from_slice(&(len as u64 * 8).to_be_bytes());
    let mut state = H0;
    sha2::compress256(&mut state, &[block.into()]);
    let mut d = [0u8; 16];
    for (out, word) in d.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    d
}

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
    if payload.len() <= ONE_BLOCK {
        return one_block(&head, payload);
    }
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
    /// computed from the concatenation in one go, for every payload length up to 100 bytes
    /// (the one-block path ends at 38) and a longer one.
    #[test]
    fn the_digest_is_sha256_over_the_specified_concatenation() {
        for len in (0usize..=100).chain([1000]) {
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
