//! §11 Limits: every announced limit is a promise, every fixed cap is checked by the decoder.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code, fatal, first};

pub(super) fn cases() -> Vec<Case> {
    vec![
        dial_code(
            "11/1",
            "a message of exactly max_message_size is accepted",
            "the peer MUST accept all traffic that stays within its announced limits",
            message_at_the_limit,
        ),
        dial(
            "11/2",
            "a CLOSE message of 1024 bytes is accepted",
            "CLOSE / GOAWAY `message` | 1024 bytes",
            vec![Open, Send(e(Frame::Close { status: OK, message: &[b'm'; 1024] })), Eof],
        ),
        fatal(
            "11/3",
            "a CLOSE message of 1025 bytes",
            "CLOSE / GOAWAY `message` | 1024 bytes | fixed | decoder ... `FieldTooLong`, CLOSE FRAME_ENCODING_ERROR",
            [&[0x02, 0x44, 0x04, 0x00, 0x44, 0x01][..], &[b'm'; 1025]].concat(),
            FEE,
        ),
        first("11/4", "a HELLO name of 256 bytes", "HELLO `name` | 255 bytes | fixed | decoder (§4.1) | `FieldTooLong`", {
            let mut body = vec![0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x00, 0x41, 0x00];
            body.extend([b'n'; 256]);
            body.extend_from_slice(&[0, 0, 0]);
            [vec![0x01, 0x41, body.len() as u8], body].concat()
        }, FEE),
        first("11/5", "a HELLO session of 65 bytes", "HELLO `session` | 64 bytes | fixed | decoder", {
            let mut body = vec![0x54, 0x4e, 0x44, 0x4d, 0x01, 0x01, 0x01, 0x00, 0x00, 0x40, 0x41];
            body.extend([b's'; 65]);
            body.push(0);
            [vec![0x01, 0x40, body.len() as u8], body].concat()
        }, FEE),
    ]
}

/// 11/1: an ECHO of exactly max_message_size bytes (at most 1 MiB).
fn message_at_the_limit(c: &mut Ctx) -> R {
    c.open()?;
    let n = c.p(2) as usize;
    if n > 1 << 20 {
        return skip(format!("max_message_size {n} is too large to send quickly"));
    }
    let big = bigbuf(n);
    let (s, p) = c.call(method::ECHO, &big)?;
    status_is("RESPONSE", s, OK)?;
    if p.len() == n {
        Ok(())
    } else {
        fail(format!("{n} bytes"), p.len().to_string())
    }
}
