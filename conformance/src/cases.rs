//! The scenarios, one module per SPEC.md section (`conformance/src/cases/secNN_*.rs`; the table
//! of modules is in `CONFORMANCE.md`, section 6).
//!
//! Each module's `cases()` is a table with one row per case, in the order of their ids: the id
//! (`SECTION/N`, stable forever), a title, the requirement quoted from SPEC.md and, for most cases,
//! the [`script`] of steps that the runner plays; cases that must decide on values known only at
//! run time name a function written below their module's table. [`from_vectors`] adds one case per
//! invalid frame vector. `conformance/cases.txt` lists every case (`tests/manifest.rs` keeps it
//! and the suite equal).

use std::sync::Arc;

use tandem_core::frame::{Decoded, Frame};

use crate::suite::{skip, Case, Ctx, Role};

mod kit;
pub mod script;
mod sec02_encoding;
mod sec03_framing;
mod sec04_frames;
mod sec05_auth;
mod sec05_handshake;
mod sec06_ids;
mod sec07_calls;
mod sec07_connection;
mod sec07_keys;
mod sec07_streams;
mod sec08_status;
mod sec09_fragmentation;
mod sec10_flow;
mod sec11_limits;
mod sec12_errors;
mod sec13_resumption;
mod sec14_datagram;
mod sec15_registries;

pub use kit::{NEEDS_STREAM, NEEDS_UDP, NO_TOKEN};
pub use sec05_auth::{AUTH_CASES, NEEDS_AUTH, NOT_IN_AUTH_MODE};

/// The hand-written scenarios, in SPEC.md order.
pub fn handwritten() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(sec02_encoding::cases());
    v.extend(sec03_framing::cases());
    v.extend(sec04_frames::cases());
    v.extend(spliced(sec05_handshake::cases(), "5.7", sec05_auth::cases()));
    v.extend(sec07_keys::handshake_cases());
    v.extend(sec06_ids::cases());
    v.extend(sec07_calls::cases());
    v.extend(sec07_streams::cases());
    v.extend(sec07_connection::cases());
    v.extend(sec07_keys::cases());
    v.extend(sec08_status::cases());
    v.extend(sec07_keys::status_cases());
    v.extend(sec09_fragmentation::cases());
    v.extend(sec10_flow::cases());
    v.extend(sec11_limits::cases());
    v.extend(sec12_errors::cases());
    v.extend(spliced(sec13_resumption::cases(), "13.4", sec05_auth::resumption_cases()));
    v.extend(sec14_datagram::cases());
    v.extend(sec15_registries::cases());
    v.extend(sec07_keys::registry_cases());
    v
}

/// `cases` with `more` inserted before the first case of section `before` (keeping SPEC order).
fn spliced(mut cases: Vec<Case>, before: &str, more: Vec<Case>) -> Vec<Case> {
    let at = cases
        .iter()
        .position(|c| c.section == before || c.section.starts_with(&format!("{before}.")))
        .unwrap_or(cases.len());
    cases.splice(at..at, more);
    cases
}

/// Scenarios generated from the invalid frame vectors (`vectors/frames.json`): each input is
/// sent after the handshake and must end the connection with the vector's CLOSE status. Their ids
/// are `SECTION/VECTOR-ID`, for example `3.6/invalid/ping/truncated-7`.
pub fn from_vectors() -> Vec<Case> {
    let doc = crate::vectors::generate();
    let mut cases = Vec::new();
    for v in doc.invalid {
        let Some(bytes) = hex_decode(&v.hex) else { continue };
        let quote = format!("vector {}: {} → {}", v.id, v.description, v.error);
        let body = move |c: &mut Ctx| {
            c.open()?;
            let limit = c.peer_frame();
            let packet = c.w().is_packet();
            let mut want = None;
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                match Frame::decode(rest, limit) {
                    Ok(Decoded::Frame(_, n)) => rest = &rest[n..],
                    Ok(Decoded::Incomplete(_)) if packet => {
                        want = Some(tandem_core::Status::FRAME_ENCODING_ERROR);
                        break;
                    }
                    Ok(Decoded::Incomplete(_)) => {
                        return skip(
                            "the input ends inside a frame: a byte-stream receiver waits for more bytes",
                        );
                    }
                    Err(e) => {
                        want = Some(e.status());
                        break;
                    }
                }
            }
            let Some(want) = want else {
                return skip(format!("the input decodes under the implementation's max_frame_size {limit}"));
            };
            c.send_bytes(&bytes)?;
            c.expect_close(want)
        };
        // Vector cases are named after their vector, which never changes meaning.
        let id = format!("{}/{}", v.spec, v.id);
        let title = format!("vector {}", v.id);
        cases.push(script::case(Role::RunnerDials, &id, &title, &quote, None, Arc::new(body)));
    }
    cases.extend(retired_vectors());
    cases
}

/// Vectors of an earlier revision whose input means something else since the revision that
/// added schema keys (SPEC.md §4.7, §4.21): their cases stay, always skipped, so that no id
/// changes meaning.
const RETIRED_VECTORS: [(&str, &str, &str); 3] = [
    (
        "3.5/invalid/header/unknown-type-0x15",
        "Reserved type 0x15 with an empty body. → UnknownFrameType",
        "type 0x15 is SIGNAL_KEYED since schema keys were added (SPEC.md §4.21): see 3.5/invalid/header/unknown-type-0x16",
    ),
    (
        "2.5/invalid/call/bit-0x04",
        "CALL with reserved bit 0x04. → InvalidFlags",
        "bit 0x04 is KEY since schema keys were added (SPEC.md §2.5, §4.7): see 2.5/invalid/call/bit-0x08",
    ),
    (
        "2.5/invalid/stream-open/bit-0x04",
        "STREAM_OPEN with MORE|FIN|0x04 (0x07). → InvalidFlags",
        "bit 0x04 is KEY since schema keys were added (SPEC.md §2.5, §4.7): see 2.5/invalid/stream-open/bit-0x08",
    ),
];

fn retired_vectors() -> Vec<Case> {
    RETIRED_VECTORS
        .iter()
        .map(|(id, quote, reason)| {
            let vector = id.split_once('/').map_or(*id, |x| x.1);
            script::never(id, &format!("vector {vector}"), &format!("vector {vector}: {quote}"), reason)
        })
        .collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Every scenario: the hand-written ones, then those generated from the frame vectors.
pub fn all() -> Vec<Case> {
    let mut v = handwritten();
    v.extend(from_vectors());
    v
}
