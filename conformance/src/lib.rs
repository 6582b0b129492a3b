//! Conformance suite for implementations of the tandem protocol.
//!
//! Two parts:
//!
//! * **Frame vectors** ([`vectors`], `conformance/vectors/frames.json`): language-neutral frame
//!   encodings and decode errors (below).
//! * **Scenarios and the runner** (`tandem-conformance` binary; [`cases`], [`suite`], [`runner`]):
//!   scripted exchanges played over a real socket against an implementation that exposes the
//!   standard test service of SPEC.md Appendix A ([`service`]). The runner is a raw peer built on
//!   the reference codec ([`wire`]); every case has a stable id tied to a SPEC.md section
//!   (`5.3/2`), the requirement it checks, and an outcome (passed, failed with expected vs actual
//!   and the decoded frames, or skipped with a reason). [`selftest`] plays the suite against both
//!   runtimes of this repository over every transport. See `CONFORMANCE.md` at the repository
//!   root.
//!
//! ```text
//! tandem-conformance run --connect tcp://127.0.0.1:7000     # the runner dials the implementation
//! tandem-conformance run --listen unix:///tmp/runner.sock   # the implementation dials the runner
//! tandem-conformance self-test                              # std and smol × tcp, unix, seqpacket, udp
//! tandem-conformance serve --runtime std tcp://127.0.0.1:7000
//! ```
//!
//! # Frame vectors
//!
//! `conformance/vectors/frames.json` lists exact frame bytes together with their decoded meaning,
//! and malformed byte strings together with the decode error each must produce. It is generated
//! from the reference codec (`tandem_core::frame`) and checked in:
//!
//! ```text
//! cargo run -p tandem-conformance --bin tandem-vectors -- write   # regenerate
//! cargo run -p tandem-conformance --bin tandem-vectors -- check   # non-zero exit if stale
//! ```
//!
//! `cargo test -p tandem-conformance` fails when the checked-in file differs from what the code
//! generates, and also checks the file the way an implementation in another language would
//! (`tests/vectors.rs`).
//!
//! ## Conventions
//!
//! * Byte strings (`hex`, payloads, names, …) are lower-case hexadecimal without separators; the
//!   empty string is `""`.
//! * Integers are JSON numbers. Ids, `budget_us`, `total_len`, HELLO parameter ids and values and
//!   ACK ranges go up to 2^62-1 = 4611686018427387903, beyond the 2^53 that a double represents
//!   exactly: parse them as unsigned 64-bit integers (in JavaScript, with a BigInt-aware parser).
//! * `spec` is a section number of `SPEC.md` (`"4.7"`); every value is a heading there.
//! * Keys appear in a fixed order (frame fields in wire order), but a reader should not depend on
//!   the order of keys in an object.
//!
//! ## Top level
//!
//! | key | meaning |
//! | --- | --- |
//! | `format` | `"tandem-frame-vectors/1"`; changes only if the layout of this document changes incompatibly |
//! | `protocol_version` | the wire protocol version described, `1` |
//! | `generated_by`, `regenerate`, `check`, `spec` | provenance: what wrote the file, the commands above, the normative document |
//! | `default_max_frame_size` | `65536`; the decoder's frame size limit for vectors that do not give one |
//! | `varints` | varint encodings, below |
//! | `valid` | list of frames that decode |
//! | `invalid` | list of inputs that must fail to decode |
//! | `serial` | the serial-link framing of SPEC.md §14.9, below |
//!
//! ## `varints`
//!
//! * `canonical`: `{value, hex}` pairs at every length boundary (0, 63/64, 16383/16384,
//!   2^30-1/2^30, 2^62-1) plus the RFC 9000 examples. Decoding `hex` gives `value` and consumes
//!   every byte; encoding `value` gives `hex`.
//! * `non_canonical`: `{value, hex}` where `hex` is a longer-than-necessary encoding of `value`.
//!   Decoding it MUST fail with `NonCanonicalVarint` (SPEC.md §2.2).
//! * `truncated`: `{hex}` whose first byte announces more bytes than follow. Decoding exactly these
//!   bytes MUST fail with `Truncated`.
//!
//! ## `valid` vectors
//!
//! | key | meaning |
//! | --- | --- |
//! | `id` | stable identifier, `frame/<type>/<case>`; ids never change meaning |
//! | `spec` | the section that defines what the vector tests |
//! | `description` | one sentence for humans |
//! | `hex` | one complete frame: Type, Length, Body |
//! | `frame` | its meaning, below |
//!
//! A conforming decoder, with the limit `default_max_frame_size`, decodes `hex` into exactly one
//! frame that consumes every byte and whose fields equal `frame`; a conforming encoder writes that
//! frame as exactly `hex` (the encoding is canonical, so it is unique).
//!
//! `frame` always has `type` (the name of SPEC.md §15.1, e.g. `"CALL"`, or `"EXTENSION"` for
//! 0x80..=0xFF) and `type_code` (the type byte as a number), followed by the fields of the type's
//! layout table in SPEC.md §4, in wire order, named as there:
//!
//! | `type` | fields |
//! | --- | --- |
//! | `HELLO` | `magic` (always `"544e444d"`), `min_version`, `max_version`, `flags`, `flag_names`, `name`, `auth`, `session`, `param_count`, `params` |
//! | `CLOSE` | `status`, `message` |
//! | `GOAWAY` | `bound`, `status`, `message` |
//! | `PING`, `PONG` | `data` (8 bytes) |
//! | `ACK` | `count`, `ranges` (list of `{first_id, n}`) |
//! | `CALL`, `NOTIFY`, `STREAM_OPEN` | `flags`, `flag_names`, `id`, `module`, `method`, `budget_us`, `total_len`, `payload` |
//! | `SIGNAL` | `module`, `method`, `payload` |
//! | `RESPONSE` | `flags`, `flag_names`, `id`, `status`, `total_len`, `payload` |
//! | `CANCEL` | `id` |
//! | `STREAM_DATA` | `flags`, `flag_names`, `id`, `total_len`, `payload` |
//! | `STREAM_FIN`, `STREAM_RESET` | `id`, `status` |
//! | `STREAM_CREDIT` | `id`, `msgs`, `bytes` |
//! | `CONN_CREDIT` | `bytes` |
//! | `STREAM_RESUME` | `id`, `received_items` |
//! | `CONTINUATION` | `flags`, `flag_names`, `id`, `payload` |
//! | `EXTENSION` | `body` (the whole body, uninterpreted) |
//!
//! * `flags` is the numeric flags field; `flag_names` lists the bits set by name (`"MORE"`,
//!   `"FIN"`; for HELLO `"RESUME"`), low bit first. It is redundant with `flags`.
//! * `total_len` is `null` when MORE is clear (the field is then absent from the wire).
//! * A status is `{value, name}`: the numeric code and its name from SPEC.md §8.1, or `name: null`
//!   for a value v1 does not assign (such values decode; applications treat them as `UNKNOWN`).
//! * `params` lists HELLO parameters in wire order as `{id, name, value}`, `name` being the name
//!   of SPEC.md §5.4 or `null` for an id v1 does not assign (such parameters decode and are
//!   ignored by receivers). `param_count` and `count` (ACK) repeat the list lengths, as on the wire.
//!
//! ## `invalid` vectors
//!
//! | key | meaning |
//! | --- | --- |
//! | `id` | stable identifier, `invalid/<type or area>/<case>` |
//! | `spec` | the section that requires the error (`3.3` for the order-of-detection cases) |
//! | `description` | what is wrong |
//! | `hex` | the complete input |
//! | `max_frame_size` | the decoder's frame size limit for this input |
//! | `error` | the decode error of SPEC.md §3.3: `NonCanonicalVarint`, `FrameTooLarge`, `UnknownFrameType`, `Truncated`, `ValueOutOfRange`, `InvalidFlags`, `BadMagic`, `FieldTooLong`, `ParamOrder`, `InvalidLength` or `TrailingBytes` |
//! | `close_status` | `{value, name}` of the CLOSE the error leads to on a byte stream: `FRAME_ENCODING_ERROR` (65), or `FRAME_TOO_LARGE` (66) for `FrameTooLarge` |
//!
//! `hex` is *everything there is*, like one datagram or a byte stream that ends after it: a frame
//! whose header or body extends past the end of `hex` is `Truncated` (SPEC.md §3.7, §3.8), even
//! though a byte-stream reader would normally just wait for more bytes. Where several defects are
//! present the expected error is the first in the order of SPEC.md §3.3 (length encoding, then
//! length against `max_frame_size` — before the body is needed — then type, then fields in layout
//! order, then trailing bytes); the vectors under `invalid/order/` test that order.
//!
//! ## `serial`
//!
//! The framing of datagram mode on a serial line (SPEC.md §14.9): `COBS(datagram ‖ CRC-32C) ‖ 00`.
//!
//! | key | meaning |
//! | --- | --- |
//! | `spec`, `delimiter`, `default_max_datagram` | `"14.9"`, `0`, `1200` |
//! | `crc` | `{name, width, poly, init, refin, refout, xorout, check, byte_order, examples}`: the CRC-32C parameters (hex numbers), its check value, `"little-endian"` (the CRC's byte order after the datagram), and `{data, crc}` checksums |
//! | `frames` | `{id, spec, description, datagram, wire}`: an encoder writes `datagram` as exactly `wire` (delimiter included); a decoder reads `wire` back as `datagram` |
//! | `streams` | `{id, spec, description, max_datagram, wire, datagrams, dropped}`: a receiver with that `max_datagram_size` that reads `wire` (in any chunks) delivers exactly `datagrams`, in order, and drops the frames counted in `dropped` = `{bad_cobs, too_long, too_short, bad_crc}` (SPEC.md §14.9.4) |

#![forbid(unsafe_code)]

pub use tandem_core;

pub mod cases;
pub mod core_server;
pub mod runner;
pub mod selftest;
pub mod service;
pub mod suite;
pub mod tls;
pub mod vectors;
pub mod wire;
pub mod ws;
