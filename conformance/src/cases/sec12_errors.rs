//! §12 Error handling summary: connection-fatal errors, exchange-level outcomes, defences.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, dial_code};

pub(super) fn cases() -> Vec<Case> {
    vec![
        dial(
            "12.1/1",
            "a fatal error closes with CLOSE naming the status and ends the transport",
            "the detecting peer follows §7.8.2 (CLOSE with the status below, then close the transport)",
            vec![Open, Send(call(1, method::ECHO, b"")), Close(PE), Ended],
        ),
        dial(
            "12.1/2",
            "STREAM_DATA above both max_message_size and the stream credit: LIMIT_EXCEEDED",
            "An item both above `max_message_size` and beyond the credit is therefore LIMIT_EXCEEDED",
            vec![
                Open,
                Send(stream(0, method::BIDI, b"", false)),
                Send(e(Frame::StreamData { flags: MORE, id: 0, total_len: Some(1 << 30), payload: b"x" })),
                Close(LIM),
            ],
        ),
        dial(
            "12.2/1",
            "an exchange error does not end the connection",
            "A receiver MUST NOT close the connection because of an exchange status, whatever its value",
            vec![
                Open,
                CallIs(method::STATUS, be(22), Status::INTERNAL),
                CallOk(method::ECHO, b"still".into()),
            ],
        ),
        dial_code(
            "12.5/1",
            "a thousand tiny extension frames are processed",
            "every frame is processed in bounded time and memory",
            tiny_frames,
        ),
    ]
}

/// 12.5/1: 1000 empty extension frames in one write; the connection still works, or the
/// implementation told the runner to calm down.
fn tiny_frames(c: &mut Ctx) -> R {
    c.open()?;
    c.send_bytes(&[0x80, 0x00].repeat(1000))?;
    match c.alive() {
        Ok(()) => Ok(()),
        Err(Fail::Failed { actual, .. }) if actual.contains("ENHANCE_YOUR_CALM") => Ok(()),
        Err(e) => Err(e),
    }
}
