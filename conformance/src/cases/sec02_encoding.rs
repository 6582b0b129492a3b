//! §2 Integer and field encoding: varints, bounded integers, byte strings, flags, fixed fields,
//! payloads.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, fatal};

pub(super) fn cases() -> Vec<Case> {
    vec![
        fatal(
            "2.2/1",
            "a CALL whose id is a non-canonical varint",
            "A receiver MUST reject any varint whose value would fit a shorter form",
            vec![0x10, 0x06, 0x00, 0x40, 0x00, 0x41, 0x00, 0x00],
            FEE,
        ),
        fatal(
            "2.2/2",
            "a frame Length in a longer form than needed",
            "The rule applies to every varint, including the frame Length",
            vec![0x04, 0x40, 0x08, 1, 2, 3, 4, 5, 6, 7, 8],
            FEE,
        ),
        fatal(
            "2.3/1",
            "a RESPONSE status above 2^32-1",
            "a larger value is the decode error `ValueOutOfRange` (connection-fatal)",
            vec![0x13, 0x0a, 0x00, 0x01, 0xc0, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
            FEE,
        ),
        dial(
            "2.4/1",
            "a CLOSE message that is not UTF-8 is accepted as a CLOSE",
            "a receiver MUST NOT reject a frame because such a field is not valid UTF-8",
            vec![Open, Send(e(Frame::Close { status: OK, message: &[0xff, 0xfe, 0x80] })), Eof],
        ),
        fatal(
            "2.5/1",
            "FIN on a CALL",
            "FIN on any type other than STREAM_OPEN) is the decode error `InvalidFlags`",
            vec![0x10, 0x05, 0x02, 0x00, 0x64, 0x01, 0x00],
            FEE,
        ),
        fatal(
            "2.5/2",
            "a reserved flag bit on STREAM_DATA",
            "Reserved; MUST be zero",
            vec![0x19, 0x02, 0x04, 0x00],
            FEE,
        ),
        fatal(
            "2.6/1",
            "a PING with 7 data bytes",
            "PING and PONG data: `fixed(8)`",
            vec![0x04, 0x07, 1, 2, 3, 4, 5, 6, 7],
            FEE,
        ),
        dial(
            "2.7/1",
            "a CALL with an empty payload (rest field of length 0)",
            "A `rest` field ... takes every byte that remains in the body, possibly none",
            vec![Open, Echo(vec![])],
        ),
    ]
}
