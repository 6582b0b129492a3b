//! Invalid HELLO bodies (SPEC.md §4.1, §5.3–§5.5): magic, flags, field caps, parameter order,
//! truncation.

use tandem_core::frame::{ty, DecodeError};

use super::generator::{cat, fr, pattern, v, vw, Gen, MAXV};

pub(super) fn hello_body(flags: &[u8], name: &[u8], auth: &[u8], session: &[u8], params: &[u8]) -> Vec<u8> {
    cat(&[b"TNDM", &[1, 1], flags, name, auth, session, params])
}

pub(super) fn invalid_hello(g: &mut Gen) {
    use DecodeError::*;
    let e: &[u8] = &[0];
    let h = |g: &mut Gen, id: &str, spec: &'static str, desc: &str, body: Vec<u8>, err: DecodeError| {
        g.bad(id, spec, desc, fr(ty::HELLO, &body), err)
    };
    // Magic.
    h(
        g,
        "invalid/hello/bad-magic-tndn",
        "5.3",
        "HELLO whose magic is TNDN.",
        cat(&[b"TNDN", &[1, 1, 0, 0, 0, 0, 0]]),
        BadMagic,
    );
    h(
        g,
        "invalid/hello/bad-magic-lowercase",
        "5.3",
        "HELLO whose magic is tndm (lower case).",
        cat(&[b"tndm", &[1, 1, 0, 0, 0, 0, 0]]),
        BadMagic,
    );
    h(g, "invalid/hello/bad-magic-zeros", "5.3", "HELLO whose body is 11 zero bytes.", vec![0; 11], BadMagic);
    h(
        g,
        "invalid/hello/bad-magic-http",
        "5.3",
        "HELLO type byte followed by \"HTTP/1.1 ...\" text.",
        b"HTTP/1.1 400".to_vec(),
        BadMagic,
    );
    h(
        g,
        "invalid/hello/magic-cut",
        "3.6",
        "HELLO body of 2 bytes (TN): the fixed(4) magic runs past the body, Truncated before any comparison.",
        b"TN".to_vec(),
        Truncated,
    );
    // Flags (a varint).
    h(
        g,
        "invalid/hello/flag-0x02",
        "5.5",
        "HELLO with reserved flag bit 0x02.",
        hello_body(&[2], e, e, e, e),
        InvalidFlags(2),
    );
    h(
        g,
        "invalid/hello/flags-resume-and-0x20",
        "5.5",
        "HELLO with flags 0x21 (RESUME plus a reserved bit).",
        hello_body(&[0x21], e, e, e, e),
        InvalidFlags(0x21),
    );
    h(
        g,
        "invalid/hello/flags-max-varint",
        "5.5",
        "HELLO with flags 2^62-1.",
        hello_body(&v(MAXV), e, e, e, e),
        InvalidFlags(MAXV),
    );
    // Field caps.
    let name256 = cat(&[&v(256), &[b'n'; 256]]);
    h(
        g,
        "invalid/hello/name-256",
        "4.1",
        "HELLO name of 256 bytes (cap 255).",
        hello_body(&[0], &name256, e, e, e),
        FieldTooLong,
    );
    h(g, "invalid/hello/name-length-only", "3.3", "HELLO name length 256 with no name bytes: FieldTooLong as soon as the length is read, not Truncated.", hello_body(&[0], &v(256), &[], &[], &[]), FieldTooLong);
    h(
        g,
        "invalid/hello/name-length-max-varint",
        "4.1",
        "HELLO name length 2^62-1.",
        hello_body(&[0], &v(MAXV), &[], &[], &[]),
        FieldTooLong,
    );
    let auth1025 = cat(&[&v(1025), &pattern(1025)]);
    h(
        g,
        "invalid/hello/auth-1025",
        "4.1",
        "HELLO auth of 1025 bytes (cap 1024).",
        hello_body(&[0], e, &auth1025, e, e),
        FieldTooLong,
    );
    let session65 = cat(&[&v(65), &[0x5a; 65]]);
    h(
        g,
        "invalid/hello/session-65",
        "4.1",
        "HELLO session of 65 bytes (cap 64).",
        hello_body(&[0], e, e, &session65, e),
        FieldTooLong,
    );
    let mut p65 = v(65);
    for i in 0..65u64 {
        p65.extend(v(i));
        p65.push(0);
    }
    h(
        g,
        "invalid/hello/65-parameters",
        "5.4",
        "HELLO param_count 65 (cap 64), with 65 well-ordered pairs.",
        hello_body(&[0], e, e, e, &p65),
        FieldTooLong,
    );
    h(
        g,
        "invalid/hello/param-count-max-varint",
        "5.4",
        "HELLO param_count 2^62-1 and no pairs: FieldTooLong as soon as the count is read.",
        hello_body(&[0], e, e, e, &v(MAXV)),
        FieldTooLong,
    );
    // Parameter order.
    h(
        g,
        "invalid/hello/param-duplicate",
        "5.4",
        "HELLO listing parameter 1 twice.",
        hello_body(&[0], e, e, e, &cat(&[&[2], &[1], &vw(65536, 4), &[1], &vw(65536, 4)])),
        ParamOrder,
    );
    h(
        g,
        "invalid/hello/param-decreasing",
        "5.4",
        "HELLO listing parameter 8 before parameter 1.",
        hello_body(&[0], e, e, e, &cat(&[&[2, 8], &vw(5000, 2), &[1], &vw(65536, 4)])),
        ParamOrder,
    );
    h(
        g,
        "invalid/hello/param-zero-twice",
        "5.4",
        "HELLO listing the reserved id 0 twice.",
        hello_body(&[0], e, e, e, &[2, 0, 0, 0, 0]),
        ParamOrder,
    );
    h(
        g,
        "invalid/hello/param-decreasing-long-ids",
        "5.4",
        "HELLO listing extension id 2^62-1 before extension id 16384.",
        hello_body(&[0], e, e, e, &cat(&[&[2], &v(MAXV), &[0], &v(16384), &[0]])),
        ParamOrder,
    );
    let mut p64 = v(64);
    for i in 0..63u64 {
        p64.extend(v(i + 1));
        p64.push(0);
    }
    p64.extend(v(63));
    p64.push(0);
    h(
        g,
        "invalid/hello/param-last-of-64-duplicate",
        "5.4",
        "HELLO with 64 parameters, ids 1..=63 then 63 again: the 64th pair breaks the order.",
        hello_body(&[0], e, e, e, &p64),
        ParamOrder,
    );
    // Truncation inside HELLO.
    h(
        g,
        "invalid/hello/magic-only",
        "3.6",
        "HELLO body TNDM only: min_version missing.",
        b"TNDM".to_vec(),
        Truncated,
    );
    h(
        g,
        "invalid/hello/name-cut",
        "3.6",
        "HELLO name length 3 with 2 name bytes at the end of the body.",
        hello_body(&[0], &[3, b'c', b'l'], &[], &[], &[]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/params-cut",
        "3.6",
        "HELLO param_count 2 with only one pair.",
        hello_body(&[0], e, e, e, &[2, 3, 16]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/param-value-missing",
        "3.6",
        "HELLO param_count 1, id 3 and no value.",
        hello_body(&[0], e, e, e, &[1, 3]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/no-param-count",
        "3.6",
        "HELLO body ends after the session field.",
        hello_body(&[0], e, e, e, &[]),
        Truncated,
    );
    h(
        g,
        "invalid/hello/trailing",
        "3.6",
        "HELLO with one byte after the last parameter.",
        hello_body(&[0], e, e, e, &[1, 3, 16, 0]),
        TrailingBytes,
    );
}
