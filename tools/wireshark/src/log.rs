//! The sender log: one JSON object per line. A `conn` line gives a connection's transport and
//! the ports of its two legs; a `frame` line gives one frame one side sent on it, with the
//! fields tandem.lua must show (see [`crate::expect`]).

use serde_json::{json, Value};

use crate::expect::{expected, hello_features, split_stream, type_name, Fragments};
use crate::relay::{Legs, TcpRecord, UdpRecord};

/// Direction names in the log: client to server and back.
pub const DIRS: [&str; 2] = ["c2s", "s2c"];

fn conn_line(conn: usize, transport: &str, legs: Legs) -> Value {
    json!({
        "kind": "conn",
        "conn": conn,
        "transport": transport,
        // [client-side port, server-side port] of each leg; c2s frames go from the first.
        "legs": [[legs.client, legs.relay_in], [legs.relay_out, legs.server]],
    })
}

/// Whether both directions' first frames are HELLOs announcing `error_details` (§5.8).
fn error_details(first: [Option<&[u8]>; 2]) -> bool {
    first.iter().all(|f| f.and_then(hello_features).is_some_and(|v| v & 2 != 0))
}

fn frame_lines(
    conn: usize,
    dir: &str,
    frames: &[(Option<usize>, &[u8])],
    details: bool,
) -> Result<Vec<Value>, String> {
    let mut frags = Fragments::default();
    let mut out = Vec::new();
    for (index, (datagram, raw)) in frames.iter().enumerate() {
        let e = expected(raw, &mut frags, details)
            .map_err(|m| format!("conn {conn} {dir} frame {index}: {m}"))?;
        out.push(json!({
            "kind": "frame",
            "conn": conn,
            "dir": dir,
            "index": index,
            "datagram": datagram,
            "type": type_name(e.ty),
            "fields": e.fields,
        }));
    }
    Ok(out)
}

/// The log lines of a TCP connection.
pub fn tcp_lines(conn: usize, rec: &TcpRecord) -> Result<Vec<Value>, String> {
    let c2s = split_stream(&rec.c2s).map_err(|e| format!("conn {conn} c2s: {e}"))?;
    let s2c = split_stream(&rec.s2c).map_err(|e| format!("conn {conn} s2c: {e}"))?;
    let details = error_details([c2s.first().copied(), s2c.first().copied()]);
    let mut out = vec![conn_line(conn, "tcp", rec.legs)];
    for (dir, frames) in DIRS.iter().zip([c2s, s2c]) {
        let frames: Vec<_> = frames.into_iter().map(|f| (None, f)).collect();
        out.extend(frame_lines(conn, dir, &frames, details)?);
    }
    Ok(out)
}

/// The log lines of a UDP association.
pub fn udp_lines(conn: usize, rec: &UdpRecord) -> Result<Vec<Value>, String> {
    let mut split = Vec::new();
    for datagrams in [&rec.c2s, &rec.s2c] {
        let mut frames = Vec::new();
        for (i, d) in datagrams.iter().enumerate() {
            // Each datagram holds whole frames (SPEC.md §3.7).
            let parts = split_stream(d).map_err(|e| format!("conn {conn} datagram {i}: {e}"))?;
            frames.extend(parts.into_iter().map(|f| (Some(i), f)));
        }
        split.push(frames);
    }
    let details = error_details([split[0].first().map(|f| f.1), split[1].first().map(|f| f.1)]);
    let mut out = vec![conn_line(conn, "udp", rec.legs)];
    for (dir, frames) in DIRS.iter().zip(&split) {
        out.extend(frame_lines(conn, dir, frames, details)?);
    }
    Ok(out)
}
