//! §15 Appendix: registries and reserved ranges (frame types, flag bits, HELLO flags and
//! parameters, protocol versions).

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, fatal, first, ignored, never, Offer, Params, V1};

const RESERVED_TYPE: &str = "A v1 receiver treats every reserved type (0x00, 0x07..=0x0F, 0x16..=0x17, 0x1F, 0x21..=0x7F) as the decode error `UnknownFrameType`";
const EXTENSION: &str = "`0x80`..`0xFF` | extension frames: skipped by receivers that do not implement them";
const RESERVED_BIT: &str = "`0x08`..`0x80` | reserved, MUST be 0 (`InvalidFlags`)";

pub(super) fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    // §15.1 Frame types
    for (id, t) in [
        ("15.1/1", 0x00u8),
        ("15.1/2", 0x08),
        ("15.1/3", 0x0f),
        ("15.1/5", 0x17),
        ("15.1/6", 0x1f),
        ("15.1/7", 0x21),
        ("15.1/8", 0x40),
        ("15.1/9", 0x7f),
    ] {
        v.push(fatal(id, &format!("reserved frame type 0x{t:02x}"), RESERVED_TYPE, vec![t, 0x01, 0x00], FEE));
    }
    for (id, t) in [("15.1/10", 0x81u8), ("15.1/11", 0xc0), ("15.1/12", 0xfe)] {
        let title = format!("extension frame type 0x{t:02x} is skipped");
        v.push(ignored(id, &title, EXTENSION, vec![t, 0x03, 0x01, 0x02, 0x03]));
    }
    v.insert(
        3,
        never(
            "15.1/4",
            "reserved frame type 0x15",
            RESERVED_TYPE,
            "type 0x15 is SIGNAL_KEYED since schema keys were added (SPEC.md §4.21); 15.1/13 checks 0x16",
        ),
    );
    v.push(fatal("15.1/13", "reserved frame type 0x16", RESERVED_TYPE, vec![0x16, 0x01, 0x00], FEE));
    // §15.2 Message frame flag bits
    v.push(never(
        "15.2/1",
        "reserved flag bit 0x04 on CALL",
        RESERVED_BIT,
        "bit 0x04 is KEY since schema keys were added (SPEC.md §2.5, §4.7); 15.2/2 checks 0x08",
    ));
    for (id, bit) in [("15.2/2", 0x08u8), ("15.2/3", 0x40), ("15.2/4", 0x80)] {
        let title = format!("reserved flag bit 0x{bit:02x} on CALL");
        v.push(fatal(id, &title, RESERVED_BIT, vec![0x10, 0x05, bit, 0x00, 0x64, 0x01, 0x00], FEE));
    }
    // §15.3 HELLO flag bits
    v.push(first(
        "15.3/1",
        "HELLO flags with bit 0x80",
        "all other bits | reserved, MUST be 0 (`InvalidFlags`, FRAME_ENCODING_ERROR)",
        vec![0x01, 0x0c, 0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x40, 0x80, 0x00, 0x00, 0x00, 0x00],
        FEE,
    ));
    // §15.4 HELLO parameters
    let unknown: [(&str, Params); 3] =
        [("15.4/1", &[(12, 7)]), ("15.4/2", &[(16383, 7)]), ("15.4/3", &[(1 << 20, 7)])];
    for (id, params) in unknown {
        let title = format!("unknown parameter id {} is ignored", params[0].0);
        let steps = vec![OpenWith(params), CallOk(method::ECHO, vec![])];
        v.push(dial(id, &title, "Receivers ignore every parameter id they do not know", steps));
    }
    // §15.6 Protocol versions
    v.push(dial(
        "15.6/1",
        "protocol version 2 alone is refused",
        "2..=2^32-1 | future versions",
        vec![Connect, Hello(Offer { min: 2, max: 2, ..V1 }), Close(Status::INCOMPATIBLE_VERSION)],
    ));
    v
}
