//! §5.8 Optional features, §7.10 Schema keys, §8.7 Status bodies, §15.8 the introspection
//! module: what a peer does with parameter 13, keyed opening frames, SIGNAL_KEYED and status
//! bodies. The cases that need a feature skip when the implementation does not announce it.

use tandem_core::frame::ty;
use tandem_core::{SchemaKey, StatusBody};

use super::kit::*;
use super::script::{dial_code, never};
use crate::service::KEYED_KEY;

const FEATURES: u64 = 13;
const BOTH: &[(u64, u64)] = &[(FEATURES, 3)];

const NOT_NEGOTIATED: &str = "Without negotiation a peer MUST NOT set KEY or send SIGNAL_KEYED; a receiver that did not negotiate `schema_keys` and receives either closes the connection with PROTOCOL_ERROR.";
const NO_NEW_THING: &str = "A peer MUST NOT use a feature toward the other (send a frame or field that the feature introduces) unless it was negotiated.";
const EQUAL: &str = "equal keys, or no key in the request, or no key in the responder's declaration (a method served on raw bytes): the request is processed";
const DIFFERENT: &str = "different keys: the exchange is refused with SCHEMA_MISMATCH (26)";
const BODY: &str = "With `error_details` negotiated (§5.8), the payload of a RESPONSE whose status is not OK is a **status body**";
const INTROSPECTION: &str = "4294967040 (0xFFFFFF00) | the introspection service (Appendix B)";

/// §5.8 (added to the handshake's cases).
pub(super) fn handshake_cases() -> Vec<Case> {
    vec![
        dial_code(
            "5.8/1",
            "toward a peer that announces no features, a failed RESPONSE carries no status body",
            NO_NEW_THING,
            no_body_without_features,
        ),
        dial_code(
            "5.8/2",
            "unknown feature bits are ignored",
            "Unknown bits are ignored, whatever their value",
            unknown_feature_bits,
        ),
    ]
}

/// §7.10.
pub(super) fn cases() -> Vec<Case> {
    vec![
        dial_code(
            "7.10/1",
            "a CALL with the KEY flag toward a peer that did not negotiate schema_keys is a PROTOCOL_ERROR",
            NOT_NEGOTIATED,
            key_without_negotiation,
        ),
        dial_code(
            "7.10/2",
            "SIGNAL_KEYED toward a peer that did not negotiate schema_keys is a PROTOCOL_ERROR",
            NOT_NEGOTIATED,
            signal_keyed_without_negotiation,
        ),
        dial_code("7.10/3", "a keyed CALL with the method's key is processed", EQUAL, keyed_with_right_key),
        dial_code(
            "7.10/4",
            "a keyed CALL with another key is refused SCHEMA_MISMATCH, naming both keys",
            DIFFERENT,
            keyed_with_wrong_key,
        ),
        dial_code("7.10/5", "a CALL without a key to a keyed method is processed", EQUAL, unkeyed_to_keyed),
        dial_code("7.10/6", "a keyed CALL to a method served without a key is processed", EQUAL, keyed_to_raw),
        dial_code(
            "7.10/7",
            "the kind is checked before the key: a keyed STREAM_OPEN to a unary method is UNIMPLEMENTED",
            "The responder checks a key against the key of its own declaration of the method **before it decodes the payload**, after the dispatch checks of §7.9",
            keyed_stream_wrong_key,
        ),
    ]
}

/// §8.7.
pub(super) fn status_cases() -> Vec<Case> {
    vec![
        dial_code(
            "8.7/1",
            "a failed call's RESPONSE carries the status body (message, details)",
            BODY,
            fail_body,
        ),
        dial_code(
            "8.7/2",
            "a failed NOTIFY's RESPONSE carries the status body",
            "A RESPONSE to a NOTIFY may carry one (§7.2).",
            fail_notify_body,
        ),
    ]
}

/// §15.8.
pub(super) fn registry_cases() -> Vec<Case> {
    vec![
        dial_code(
            "15.8/1",
            "the introspection module answers `services` with a list, or UNKNOWN_MODULE",
            INTROSPECTION,
            introspection_services,
        ),
        never(
            "15.8/2",
            "an application serves no method in the reserved module range",
            "An application MUST NOT serve its own methods in the reserved range",
            "what an application serves is not observable from the wire",
        ),
    ]
}

fn needs(c: &Ctx, bits: u64, what: &str) -> R {
    if c.p(FEATURES) & bits == bits {
        Ok(())
    } else {
        skip(format!("the implementation does not announce {what} (HELLO parameter 13 = {})", c.p(FEATURES)))
    }
}

fn keyed_call(id: u64, m: u32, key: SchemaKey, payload: &[u8]) -> Vec<u8> {
    encode(&Frame::Keyed { ty: ty::CALL, key, req: req(id, m, payload) })
}

fn fail_request(status: Status, message: &[u8]) -> Vec<u8> {
    let mut b = status.0.to_be_bytes().to_vec();
    b.extend_from_slice(message);
    b
}

fn no_body_without_features(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.id();
    c.send_bytes(&call(id, method::FAIL, &fail_request(Status::NOT_FOUND, b"missing")))?;
    expect_resp(c, id, Status::NOT_FOUND, b"")
}

fn unknown_feature_bits(c: &mut Ctx) -> R {
    c.open_with(&[(FEATURES, 0x3fff_ffff_ffff_fffc)])?;
    let id = c.id();
    c.send_bytes(&call(id, method::FAIL, &fail_request(Status::NOT_FOUND, b"missing")))?;
    // No feature was negotiated: no status body, and no KEY may be used.
    expect_resp(c, id, Status::NOT_FOUND, b"")
}

fn key_without_negotiation(c: &mut Ctx) -> R {
    c.open()?;
    let id = c.id();
    c.send_bytes(&keyed_call(id, method::ECHO, KEYED_KEY, b"x"))?;
    c.expect_close(PE)
}

fn signal_keyed_without_negotiation(c: &mut Ctx) -> R {
    c.open()?;
    c.send(&[Frame::SignalKeyed { module: MODULE, method: method::RECORD, key: KEYED_KEY, payload: b"s" }])?;
    c.expect_close(PE)
}

fn keyed_with_right_key(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    needs(c, 1, "schema_keys")?;
    let id = c.id();
    c.send_bytes(&keyed_call(id, method::KEYED, KEYED_KEY, b"same"))?;
    expect_resp(c, id, OK, b"same")
}

fn keyed_with_wrong_key(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    needs(c, 1, "schema_keys")?;
    let wrong = SchemaKey(*b"OTHER-v2");
    let id = c.id();
    c.send_bytes(&keyed_call(id, method::KEYED, wrong, b"x"))?;
    let (st, body) = c.response(id)?;
    status_is("RESPONSE status", st, Status::SCHEMA_MISMATCH)?;
    if c.p(FEATURES) & 2 == 0 {
        return Ok(());
    }
    let Some(b) = StatusBody::decode(&body) else {
        return fail("a status body (SPEC.md §8.7)", format!("{body:02x?}"));
    };
    let msg = String::from_utf8_lossy(b.message);
    let (ours, theirs) = (KEYED_KEY.to_string(), wrong.to_string());
    if !(msg.contains(&ours) && msg.contains(&theirs)) {
        return fail(format!("a message naming both keys {ours} and {theirs}"), format!("{msg:?}"));
    }
    Ok(())
}

fn unkeyed_to_keyed(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    needs(c, 1, "schema_keys")?;
    let id = c.id();
    c.send_bytes(&call(id, method::KEYED, b"plain"))?;
    expect_resp(c, id, OK, b"plain")
}

fn keyed_to_raw(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    needs(c, 1, "schema_keys")?;
    let id = c.id();
    c.send_bytes(&keyed_call(id, method::ECHO, SchemaKey(*b"ANY-KEY!"), b"raw"))?;
    expect_resp(c, id, OK, b"raw")
}

fn keyed_stream_wrong_key(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    needs(c, 1, "schema_keys")?;
    // KEYED is unary: a STREAM_OPEN to it, even with a wrong key, is UNIMPLEMENTED (§7.9 first).
    let id = c.id();
    let r = Request { flags: FIN, ..req(id, method::KEYED, b"") };
    c.send(&[Frame::Keyed { ty: ty::STREAM_OPEN, key: SchemaKey(*b"OTHER-v2"), req: r }])?;
    let o = c.expect("STREAM_RESET", T, |f| matches!(f, Frame::StreamReset { .. }))?;
    match o.frame() {
        Frame::StreamReset { id: rid, status } if rid == id && status == Status::UNIMPLEMENTED => Ok(()),
        f => fail(
            format!("STREAM_RESET id={id} UNIMPLEMENTED (the kind is checked before the key)"),
            describe(&f),
        ),
    }
}

fn check_body(c: &Ctx, body: &[u8], status: Status, message: &[u8]) -> R {
    if c.p(FEATURES) & 2 == 0 {
        return if body.is_empty() { Ok(()) } else { fail("an empty payload", format!("{body:02x?}")) };
    }
    match StatusBody::decode(body) {
        Some(b) if b.message == message && b.details == status.0.to_be_bytes() => Ok(()),
        _ => fail(
            format!(
                "a status body: message {:?}, details {:02x?}",
                String::from_utf8_lossy(message),
                status.0.to_be_bytes()
            ),
            format!("{body:02x?}"),
        ),
    }
}

fn fail_body(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    needs(c, 2, "error_details")?;
    let id = c.id();
    c.send_bytes(&call(id, method::FAIL, &fail_request(Status::NOT_FOUND, b"no vehicle 7")))?;
    let (st, body) = c.response(id)?;
    status_is("RESPONSE status", st, Status::NOT_FOUND)?;
    check_body(c, &body, Status::NOT_FOUND, b"no vehicle 7")
}

fn fail_notify_body(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    needs(c, 2, "error_details")?;
    let id = c.id();
    c.send_bytes(&notify(id, method::FAIL_NOTIFY, &fail_request(Status::FAILED_PRECONDITION, b"not now")))?;
    let (st, body) = c.response(id)?;
    status_is("RESPONSE status", st, Status::FAILED_PRECONDITION)?;
    check_body(c, &body, Status::FAILED_PRECONDITION, b"not now")
}

fn introspection_services(c: &mut Ctx) -> R {
    c.open_with(BOTH)?;
    let id = c.id();
    let r = Request { module: 0xFFFF_FF00, ..req(id, 1, b"") };
    c.send(&[Frame::Call(r)])?;
    let (st, body) = c.response(id)?;
    if st == Status::UNKNOWN_MODULE {
        return skip("the implementation does not serve the introspection service");
    }
    status_is("RESPONSE status", st, OK)?;
    // A postcard Vec<ServiceInfo>: a LEB128 count, then per service a string, a u32 and a string.
    let mut r = &body[..];
    let n = leb(&mut r).ok_or(Fail::Failed { expected: "a list".into(), actual: format!("{body:02x?}") })?;
    for _ in 0..n {
        for field in ["name", "module", "doc"] {
            let ok = if field == "module" {
                leb(&mut r).is_some()
            } else {
                leb(&mut r).and_then(|len| r.get(len as usize..).map(|rest| r = rest)).is_some()
            };
            if !ok {
                return fail(format!("ServiceInfo.{field} (SPEC.md Appendix B)"), format!("{body:02x?}"));
            }
        }
    }
    if r.is_empty() {
        Ok(())
    } else {
        fail("exactly a Vec<ServiceInfo>", format!("{} bytes left over", r.len()))
    }
}

/// A postcard (LEB128) varint.
fn leb(r: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = r.split_first()?;
        *r = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}
