//! §8 Status codes: every value reaches the application unchanged, whatever its scope.

use super::kit::*;
use super::script::Step::*;
use super::script::{dial, Ans, Step};

const ANY_VALUE: &str = "A receiver MUST accept any status value 0..=2^32-1";
const NOT_FATAL: &str =
    "A receiver that gets one MUST NOT treat it as a connection error; it delivers it unchanged";
const PRESERVED: &str = "A value it does not know MUST be preserved unchanged";

/// The runner answers the implementation's call (through CALLBACK) with `status`; the
/// implementation's application must see exactly that status.
fn answered_with(status: Status) -> Vec<Step> {
    vec![
        Open,
        Callback(kind::CALL, 2000, vec![]),
        Opened(kind::CALL),
        Answer(vec![Ans::Response(status, vec![])]),
        CallbackAnswers(status),
    ]
}

/// The same with a terminal of the runner on the implementation's stream.
fn stream_ended_with(terminal: Ans, status: Status) -> Vec<Step> {
    vec![
        Open,
        Callback(kind::STREAM, 2000, vec![]),
        Opened(kind::STREAM),
        Answer(vec![terminal]),
        CallbackAnswers(status),
    ]
}

pub(super) fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    // §8.1 Status table: the STATUS method answers with the status it is given.
    for (id, st, what) in [
        ("8.1/1", 13u32, "INVALID_ARGUMENT"),
        ("8.1/2", 25, "REPLY_EVICTED"),
        ("8.1/3", 26, "reserved 26"),
        ("8.1/4", 65536, "application-defined 65536"),
        ("8.1/5", u32::MAX, "2^32-1"),
    ] {
        let title = format!("the application's status {what} reaches the caller unchanged");
        v.push(dial(id, &title, ANY_VALUE, vec![Open, CallIs(method::STATUS, be(st), Status(st))]));
    }
    // §8.2 Where each scope may appear
    for (id, st, what) in [
        ("8.2/1", 64u32, "PROTOCOL_ERROR (64, a connection status)"),
        ("8.2/2", 127, "reserved connection status 127"),
    ] {
        let title = format!("RESPONSE with {what} is not a connection error");
        v.push(dial(id, &title, NOT_FATAL, answered_with(Status(st))));
    }
    v.push(dial(
        "8.2/3",
        "STREAM_FIN with a connection status is delivered, not fatal",
        "RESPONSE, STREAM_FIN and STREAM_RESET carry exchange statuses ... MUST NOT treat it as a connection error",
        stream_ended_with(Ans::Fin(FCE), FCE),
    ));
    // §8.4 Unknown status values
    for (id, st) in [("8.4/1", 100_000u32), ("8.4/2", 74)] {
        let title = format!("an unknown status {st} in a RESPONSE is preserved");
        v.push(dial(id, &title, PRESERVED, answered_with(Status(st))));
    }
    v.push(dial(
        "8.4/3",
        "an unknown status in STREAM_RESET is preserved",
        PRESERVED,
        stream_ended_with(Ans::Reset(Status(70_000)), Status(70_000)),
    ));
    v
}
