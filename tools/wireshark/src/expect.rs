//! What the dissector must show for each recorded frame: the frame decoded by the core's codec
//! (`tandem_core::frame`), written as the `tandem.*` fields of tandem.lua with the values
//! `tshark -T json` prints (decimal integers, `0x..` for hex fields, `aa:bb` for bytes, `0`/`1`
//! for flags). Fragmented messages (SPEC.md §9) are reassembled per direction, and a non-OK
//! RESPONSE's status body (§8.7) is expected when both HELLOs announced `error_details`.

use tandem_core::frame::{ty, Decoded, Frame};
use tandem_core::status::StatusBody;
use tandem_core::Status;

/// Largest body the recorder decodes (the largest legal `max_frame_size`, SPEC.md §5.4).
const MAX_BODY: usize = 16 << 20;

/// One expected frame: its type and its fields in dissector order.
#[derive(Clone, Debug)]
pub struct Expected {
    /// The type byte.
    pub ty: u8,
    /// `(field, value)` pairs; a field may repeat (HELLO parameters, ACK ranges).
    pub fields: Vec<(String, String)>,
}

/// The message in progress of one direction (§9.3).
#[derive(Default)]
pub struct Fragments {
    first: Option<(u8, Status, u64, Vec<u8>)>,
}

/// Splits a byte stream into whole frames (each `&[u8]` holds header and body).
pub fn split_stream(mut bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match Frame::decode(bytes, MAX_BODY) {
            Ok(Decoded::Frame(_, n)) => {
                out.push(&bytes[..n]);
                bytes = &bytes[n..];
            }
            Ok(Decoded::Incomplete(_)) => {
                return Err(format!("the recorded stream ends inside a frame ({} bytes left)", bytes.len()))
            }
            Err(e) => return Err(format!("a recorded frame does not decode: {e}")),
        }
    }
    Ok(out)
}

/// The `features` parameter (13) of a HELLO frame, or `None` if `raw` is not a HELLO.
pub fn hello_features(raw: &[u8]) -> Option<u64> {
    match Frame::decode(raw, MAX_BODY) {
        Ok(Decoded::Frame(Frame::Hello(h), _)) => Some(h.params.get(13).unwrap_or(0)),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

fn flag(f: u8, bit: u8) -> String {
    (if f & bit != 0 { "1" } else { "0" }).to_string()
}

const PARAM_NAMES: [&str; 14] = [
    "",
    "max_frame_size",
    "max_message_size",
    "max_concurrent_calls",
    "max_concurrent_streams",
    "stream_credit_msgs",
    "stream_credit_bytes",
    "conn_credit_bytes",
    "keepalive_interval_ms",
    "idle_timeout_ms",
    "max_datagram_size",
    "reply_cache_entries",
    "reply_cache_bytes",
    "features",
];

/// The frame type's name as SPEC.md §4 gives it (and tandem.lua shows it).
pub fn type_name(t: u8) -> String {
    let n = match t {
        ty::HELLO => "HELLO",
        ty::CLOSE => "CLOSE",
        ty::GOAWAY => "GOAWAY",
        ty::PING => "PING",
        ty::PONG => "PONG",
        ty::ACK => "ACK",
        ty::CALL => "CALL",
        ty::NOTIFY => "NOTIFY",
        ty::SIGNAL => "SIGNAL",
        ty::RESPONSE => "RESPONSE",
        ty::CANCEL => "CANCEL",
        ty::SIGNAL_KEYED => "SIGNAL_KEYED",
        ty::STREAM_OPEN => "STREAM_OPEN",
        ty::STREAM_DATA => "STREAM_DATA",
        ty::STREAM_FIN => "STREAM_FIN",
        ty::STREAM_RESET => "STREAM_RESET",
        ty::STREAM_CREDIT => "STREAM_CREDIT",
        ty::CONN_CREDIT => "CONN_CREDIT",
        ty::STREAM_RESUME => "STREAM_RESUME",
        ty::CONTINUATION => "CONTINUATION",
        t if t >= 0x80 => return format!("extension 0x{t:02x}"),
        t => return format!("unassigned 0x{t:02x}"),
    };
    n.to_string()
}

struct Out(Vec<(String, String)>);

impl Out {
    fn put(&mut self, k: &str, v: impl ToString) {
        self.0.push((format!("tandem.{k}"), v.to_string()));
    }
    fn status(&mut self, s: Status) {
        self.put("status", s.0);
        // tandem.lua names the statuses of SPEC.md §8.1; the core's table is the same (a test of
        // the core checks it against SPEC.md).
        let name = match s.info() {
            Some((n, _, _)) => n.to_string(),
            None if s.0 >= 65536 => format!("application-defined ({})", s.0),
            None if (64..=127).contains(&s.0) => format!("reserved connection status ({})", s.0),
            None => format!("reserved ({})", s.0),
        };
        self.put("status_name", name);
    }
    fn flags(&mut self, t: u8, f: u8) {
        self.put("flags", format!("0x{f:02x}"));
        self.put("flags.more", flag(f, 0x01));
        if t == ty::STREAM_OPEN {
            self.put("flags.fin", flag(f, 0x02));
        }
        if matches!(t, ty::CALL | ty::NOTIFY | ty::STREAM_OPEN) {
            self.put("flags.key", flag(f, 0x04));
        }
    }
    fn status_body(&mut self, payload: &[u8]) {
        if let Some(b) = StatusBody::decode(payload) {
            self.put("status_body.message", String::from_utf8_lossy(b.message));
            self.put("status_body.details", hex(b.details));
        }
    }
}

/// The fields of one whole frame `raw`. `frags` is the direction's message in progress;
/// `error_details` says whether both HELLOs announced that feature.
pub fn expected(raw: &[u8], frags: &mut Fragments, error_details: bool) -> Result<Expected, String> {
    let (t, blen, hlen) = match Frame::peek_header(raw, MAX_BODY) {
        Ok(Some(h)) => h,
        _ => return Err("not a whole frame".into()),
    };
    let f = match Frame::decode(raw, MAX_BODY) {
        Ok(Decoded::Frame(f, _)) => f,
        other => return Err(format!("does not decode: {other:?}")),
    };
    let body = &raw[hlen..hlen + blen];
    let mut o = Out(Vec::new());
    o.put("type", format!("0x{t:02x}"));
    o.put("type_name", type_name(t));
    o.put("length", blen);
    let mut done: Option<(u8, Status, Vec<u8>)> = None;
    match f {
        Frame::Hello(h) => {
            o.put("hello.magic", hex(b"TNDM"));
            o.put("hello.min_version", h.min_version);
            o.put("hello.max_version", h.max_version);
            o.put("hello.flags", format!("0x{:016x}", h.flags));
            o.put("hello.flags.resume", if h.flags & 1 != 0 { "1" } else { "0" });
            o.put("hello.name", String::from_utf8_lossy(h.name));
            o.put("hello.auth", hex(h.auth));
            o.put("hello.session", hex(h.session));
            o.put("hello.param_count", h.params.len());
            for (id, v) in h.params.iter() {
                let name = PARAM_NAMES.get(id as usize).filter(|n| !n.is_empty());
                let name = name.map_or(format!("unknown parameter {id}"), |n| n.to_string());
                o.put("hello.param", format!("{name} = {v}"));
                o.put("hello.param.id", id);
                o.put("hello.param.value", v);
            }
        }
        Frame::Close { status, message } => {
            o.status(status);
            o.put("message", String::from_utf8_lossy(message));
        }
        Frame::GoAway { bound, status, message } => {
            o.put("bound", bound);
            o.status(status);
            o.put("message", String::from_utf8_lossy(message));
        }
        Frame::Ping(d) | Frame::Pong(d) => o.put("data", hex(&d)),
        Frame::Ack(a) => {
            o.put("ack.count", a.len());
            for (first, n) in a.iter() {
                o.put("ack.range", format!("{first} ×{n}"));
                o.put("ack.first_id", first);
                o.put("ack.n", n);
            }
        }
        Frame::Call(r) | Frame::Notify(r) | Frame::StreamOpen(r) | Frame::Keyed { req: r, .. } => {
            let key = match f {
                Frame::Keyed { key, .. } => Some(key),
                _ => None,
            };
            o.flags(t, body[0]);
            o.put("id", r.id);
            o.put("module", r.module);
            o.put("method", r.method);
            if let Some(k) = key {
                o.put("key", hex(&k.0));
            }
            o.put("budget_us", r.budget_us);
            if let Some(total) = r.total_len {
                o.put("total_len", total);
                frags.first = Some((t, Status::OK, total, r.payload.to_vec()));
            }
            o.put("payload", hex(r.payload));
        }
        Frame::Signal { module, method, payload } => {
            o.put("module", module);
            o.put("method", method);
            o.put("payload", hex(payload));
        }
        Frame::SignalKeyed { module, method, key, payload } => {
            o.put("module", module);
            o.put("method", method);
            o.put("key", hex(&key.0));
            o.put("payload", hex(payload));
        }
        Frame::Response { flags, id, status, total_len, payload } => {
            o.flags(t, flags);
            o.put("id", id);
            o.status(status);
            if let Some(total) = total_len {
                o.put("total_len", total);
                frags.first = Some((t, status, total, payload.to_vec()));
            }
            o.put("payload", hex(payload));
            if error_details && !status.is_ok() && total_len.is_none() && !payload.is_empty() {
                o.status_body(payload);
            }
        }
        Frame::Cancel { id } => o.put("id", id),
        Frame::StreamData { flags, id, total_len, payload } => {
            o.flags(t, flags);
            o.put("id", id);
            if let Some(total) = total_len {
                o.put("total_len", total);
                frags.first = Some((t, Status::OK, total, payload.to_vec()));
            }
            o.put("payload", hex(payload));
        }
        Frame::StreamFin { id, status } | Frame::StreamReset { id, status } => {
            o.put("id", id);
            o.status(status);
        }
        Frame::StreamCredit { id, msgs, bytes } => {
            o.put("id", id);
            o.put("msgs", msgs);
            o.put("bytes", bytes);
        }
        Frame::ConnCredit { bytes } => o.put("bytes", bytes),
        Frame::StreamResume { id, received } => {
            o.put("id", id);
            o.put("received_items", received);
        }
        Frame::Continuation { flags, id, payload } => {
            o.flags(t, flags);
            o.put("id", id);
            o.put("payload", hex(payload));
            let Some((first_ty, status, total, mut data)) = frags.first.take() else {
                return Err(format!("CONTINUATION for id {id} with no message in progress"));
            };
            data.extend_from_slice(payload);
            if flags & 0x01 != 0 {
                frags.first = Some((first_ty, status, total, data));
            } else if data.len() as u64 == total {
                done = Some((first_ty, status, data));
            } else {
                return Err(format!(
                    "fragmented message of id {id}: {} bytes, total_len {total}",
                    data.len()
                ));
            }
        }
        Frame::Extension { body, .. } => {
            if !body.is_empty() {
                o.put("extension_body", hex(body));
            }
        }
    }
    if let Some((first_ty, status, data)) = done {
        o.put("reassembled", hex(&data));
        o.put("reassembled.length", data.len());
        if error_details && first_ty == ty::RESPONSE && !status.is_ok() {
            o.status_body(&data);
        }
    }
    Ok(Expected { ty: t, fields: o.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragmented_call_is_reassembled_on_its_last_continuation() {
        // SPEC.md §4.7: "abcdef" as "abc" + "def".
        let first = [0x10, 0x09, 0x01, 0x00, 0x01, 0x01, 0x00, 0x06, 0x61, 0x62, 0x63];
        let last = [0x20, 0x05, 0x00, 0x00, 0x64, 0x65, 0x66];
        let mut frags = Fragments::default();
        let a = expected(&first, &mut frags, false).unwrap();
        assert!(a.fields.contains(&("tandem.total_len".into(), "6".into())));
        assert!(a.fields.contains(&("tandem.flags.more".into(), "1".into())));
        let b = expected(&last, &mut frags, false).unwrap();
        assert!(b.fields.contains(&("tandem.reassembled".into(), "61:62:63:64:65:66".into())));
        assert!(frags.first.is_none());
    }

    #[test]
    fn a_status_body_is_expected_only_with_error_details() {
        // SPEC.md §4.10: NOT_FOUND with the message "no vehicle 7".
        let raw = [
            0x13, 0x10, 0x00, 0x04, 0x0e, 0x0c, 0x6e, 0x6f, 0x20, 0x76, 0x65, 0x68, 0x69, 0x63, 0x6c, 0x65,
            0x20, 0x37,
        ];
        let with = expected(&raw, &mut Fragments::default(), true).unwrap();
        assert!(with.fields.contains(&("tandem.status_name".into(), "NOT_FOUND".into())));
        assert!(with.fields.contains(&("tandem.status_body.message".into(), "no vehicle 7".into())));
        let without = expected(&raw, &mut Fragments::default(), false).unwrap();
        assert!(!without.fields.iter().any(|(k, _)| k.starts_with("tandem.status_body")));
    }

    #[test]
    fn a_stream_is_split_into_frames_and_a_cut_one_is_an_error() {
        let two = [0x04, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x1d, 0x04, 0x80, 0x10, 0x00, 0x00];
        assert_eq!(split_stream(&two).unwrap().len(), 2);
        assert!(split_stream(&two[..12]).is_err());
    }
}
