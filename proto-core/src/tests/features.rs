//! The `streams` and `fragmentation` features (SPEC.md §7.4.7, §9.7), from the side of a full
//! build (these unit tests build the core with every feature): the headroom a peer without
//! fragmentation leaves covers every message header, and a full peer never fragments toward such
//! a peer. The builds without them are tested in `proto-core/noalloc/tests/lean.rs`.

use super::limits::{frames, Hostile};
use crate::config::{param, UNFRAGMENTED_HEADROOM};
use crate::frame::{flags, ty, Frame, Request};
use crate::{Config, MethodId, Role, SchemaKey, Status};

/// The largest non-payload part of every message frame — a keyed CALL with every varint at its
/// 8-byte maximum, a RESPONSE, a STREAM_DATA — fits the headroom.
#[test]
fn headroom_covers_every_message_header() {
    let big = crate::varint::MAX;
    let req = Request {
        flags: 0,
        id: big,
        module: u32::MAX,
        method: u32::MAX,
        budget_us: big,
        total_len: None,
        payload: &[],
    };
    let key = Some(SchemaKey([0xff; 8]));
    let fs = [
        Frame::open(ty::CALL, key, req),
        Frame::open(ty::NOTIFY, key, req),
        Frame::open(ty::STREAM_OPEN, key, Request { flags: flags::FIN, ..req }),
        Frame::Response { flags: 0, id: big, status: Status(u32::MAX), total_len: None, payload: &[] },
        Frame::StreamData { flags: 0, id: big, total_len: None, payload: &[] },
    ];
    let worst = fs.iter().map(Frame::body_len).max().unwrap();
    assert_eq!(worst, 41);
    assert!(worst <= UNFRAGMENTED_HEADROOM as usize);
}

/// Toward a peer that announced `max_message_size` + 64 ≤ `max_frame_size` (what a peer without
/// fragmentation announces), the largest message — keyed, with a deadline — goes in one frame.
#[test]
fn no_fragments_toward_a_peer_without_fragmentation() {
    let peer = [
        (param::MAX_FRAME_SIZE, 4096 + u64::from(UNFRAGMENTED_HEADROOM)),
        (param::MAX_MESSAGE_SIZE, 4096),
        (param::FEATURES, 3),
    ];
    let mut h = Hostile::connected_with(Role::Dialer, Config::default(), &peer);
    let payload = vec![5u8; 4096];
    let deadline = Some(h.now + core::time::Duration::from_secs(3600));
    let key = Some(SchemaKey([1; 8]));
    let m = MethodId::new(u32::MAX, u32::MAX);
    h.conn.open_keyed(h.now, crate::RequestKind::Call, m, key, &payload, deadline).unwrap();
    let out = h.transmit();
    let f = frames(&out);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        matches!(f[0], Frame::Keyed { req: Request { flags: 0, total_len: None, .. }, .. }),
        "{:?}",
        f[0]
    );
    // One byte more than the peer accepts is refused locally, as before.
    let too_big = vec![5u8; 4097];
    assert!(h.conn.call(h.now, MethodId::new(1, 1), &too_big, None).is_err());
}
