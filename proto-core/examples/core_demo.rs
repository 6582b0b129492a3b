//! Two tandem cores talking in memory, with a fake clock, through every exchange type.
//!
//! Run: `cargo run -p tandem-core --example core_demo`. Exits non-zero if any exchange misbehaves.

use std::process::ExitCode;
use std::time::Duration;
use tandem_core::{
    Config, Connection, ConnectionError, Event, Identity, Instant, MethodId, RequestKind, Role, State, Status,
};

const ECHO: MethodId = MethodId::new(1, 1);
const LOG: MethodId = MethodId::new(1, 2);
const TICKS: MethodId = MethodId::new(2, 1);

/// An owned event, tagged with the side that saw it.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Connected,
    Request { id: u64, kind: RequestKind, method: MethodId, payload: Vec<u8> },
    Signal { payload: Vec<u8> },
    Response { id: u64, status: Status, payload: Vec<u8> },
    Failed { id: u64, status: Status },
    Cancelled { id: u64, status: Status },
    Data { id: u64, payload: Vec<u8> },
    Fin { id: u64, status: Status },
    Reset { id: u64, status: Status },
    Writable { id: u64 },
    GoAway,
    ResumeRequested,
    Closed(ConnectionError),
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Connected => Ev::Connected,
        Event::Request { id, kind, method, payload, .. } => {
            Ev::Request { id, kind, method, payload: payload.to_vec() }
        }
        Event::Signal { payload, .. } => Ev::Signal { payload: payload.to_vec() },
        Event::Response { id, status, payload } => Ev::Response { id, status, payload: payload.to_vec() },
        Event::Failed { id, status } => Ev::Failed { id, status },
        Event::Cancelled { id, status } => Ev::Cancelled { id, status },
        Event::StreamData { id, payload } => Ev::Data { id, payload: payload.to_vec() },
        Event::StreamFin { id, status } => Ev::Fin { id, status },
        Event::StreamReset { id, status } => Ev::Reset { id, status },
        Event::StreamWritable { id } => Ev::Writable { id },
        Event::GoAway { .. } => Ev::GoAway,
        Event::ResumeRequested { .. } | Event::AuthRequested { .. } => Ev::ResumeRequested,
        Event::Closed(e) => Ev::Closed(e),
    }
}

/// Client and server joined by an in-memory "socket".
struct Net {
    now: Instant,
    client: Connection<'static>,
    server: Connection<'static>,
    client_events: Vec<Ev>,
    server_events: Vec<Ev>,
    bytes: u64,
}

impl Net {
    fn new() -> Net {
        let now = Instant::ZERO;
        let id = |n: &'static str| Identity { name: n.as_bytes(), auth: b"demo-secret", session: b"" };
        let config = Config { stream_credit_msgs: 8, ..Config::default() };
        Net {
            now,
            client: Connection::new(Role::Dialer, config.clone(), id("client"), now).expect("config"),
            server: Connection::new(Role::Acceptor, config, id("server"), now).expect("config"),
            client_events: Vec::new(),
            server_events: Vec::new(),
            bytes: 0,
        }
    }

    /// Moves bytes both ways and collects events until nothing changes.
    fn run(&mut self) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut moved = false;
            for dir in 0..2 {
                let (from, to, evs) = if dir == 0 {
                    (&mut self.client, &mut self.server, &mut self.server_events)
                } else {
                    (&mut self.server, &mut self.client, &mut self.client_events)
                };
                loop {
                    let n = from.poll_transmit(self.now, &mut buf);
                    if n == 0 {
                        break;
                    }
                    moved = true;
                    self.bytes += n as u64;
                    let mut off = 0;
                    while off < n {
                        off += to.handle_input(self.now, &buf[off..n]);
                        while let Some(e) = to.poll_event(self.now) {
                            evs.push(own(e));
                        }
                    }
                }
                while let Some(e) = to.poll_event(self.now) {
                    evs.push(own(e));
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) =
            [self.client.poll_timeout(), self.server.poll_timeout()].into_iter().flatten().min()
        {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
            self.run();
        }
        self.now = end;
        self.run();
    }

    fn server_requests(&mut self) -> Vec<(u64, RequestKind, Vec<u8>)> {
        let mut out = Vec::new();
        self.server_events.retain(|e| match e {
            Ev::Request { id, kind, payload, .. } => {
                out.push((*id, *kind, payload.clone()));
                false
            }
            _ => true,
        });
        out
    }
}

struct Report {
    rows: Vec<(String, String, String, bool)>,
}

impl Report {
    fn row(&mut self, what: &str, dir: &str, ok: bool, outcome: String) {
        self.rows.push((what.into(), dir.into(), outcome, ok));
    }
}

fn main() -> ExitCode {
    let mut r = Report { rows: Vec::new() };
    let mut n = Net::new();

    // Handshake.
    n.run();
    let ok = n.client_events == [Ev::Connected] && n.server_events == [Ev::Connected];
    let peer = n.server.peer().map(|p| String::from_utf8_lossy(p.name).into_owned()).unwrap_or_default();
    r.row("handshake", "both", ok, format!("v1, server sees peer {peer:?}"));
    n.client_events.clear();
    n.server_events.clear();

    // Unary call, client → server.
    let id = n.client.call(n.now, ECHO, b"hello", None).expect("call");
    n.run();
    for (rid, _, body) in n.server_requests() {
        n.server.respond(rid, Status::OK, &body).expect("respond");
    }
    n.run();
    let ok = n
        .client_events
        .drain(..)
        .any(|e| e == Ev::Response { id, status: Status::OK, payload: b"hello".to_vec() });
    r.row("unary call", "client → server", ok, "OK \"hello\" echoed".into());

    // Unary call, server → client (both sides equal).
    let id = n.server.call(n.now, ECHO, b"ping from server", None).expect("call");
    n.run();
    let reqs: Vec<_> = n.client_events.drain(..).collect();
    for e in reqs {
        if let Ev::Request { id, payload, .. } = e {
            n.client.respond(id, Status::OK, &payload).expect("respond");
        }
    }
    n.run();
    let ok = n
        .server_events
        .drain(..)
        .any(|e| matches!(e, Ev::Response { id: i, status: Status::OK, .. } if i == id));
    r.row("unary call", "server → client", ok, "OK".into());

    // A 3 MiB call: fragmented into frames of the peer's max_frame_size and reassembled.
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 253) as u8).collect();
    let frames_before = n.client.stats().frames_sent;
    let id = n.client.call(n.now, ECHO, &big, None).expect("call");
    n.run();
    for (rid, _, body) in n.server_requests() {
        n.server.respond(rid, Status::OK, &body[..16]).expect("respond");
    }
    n.run();
    let frames = n.client.stats().frames_sent - frames_before;
    let ok = n
        .client_events
        .drain(..)
        .any(|e| matches!(e, Ev::Response { id: i, status: Status::OK, .. } if i == id));
    r.row("large call (3 MiB)", "client → server", ok, format!("OK, sent as {frames} frames"));

    // Reliable notification: acknowledged with a status.
    let id = n.client.notify(n.now, LOG, b"disk almost full", None).expect("notify");
    n.run();
    for (rid, kind, _) in n.server_requests() {
        assert_eq!(kind, RequestKind::Notify);
        n.server.respond(rid, Status::ACCEPTED, b"").expect("ack");
    }
    n.run();
    let ok = n
        .client_events
        .drain(..)
        .any(|e| e == Ev::Response { id, status: Status::ACCEPTED, payload: vec![] });
    r.row("reliable notification", "client → server", ok, "acknowledged ACCEPTED".into());

    // Unreliable notification.
    n.server.signal(LOG, b"fire and forget").expect("signal");
    n.run();
    let ok = n.client_events.drain(..).any(|e| e == Ev::Signal { payload: b"fire and forget".to_vec() });
    r.row("unreliable notification", "server → client", ok, "delivered once, no ack".into());

    // Stream: the server sends 40 items through an 8-item window; the client returns credit.
    let sid = n.client.open_stream(n.now, TICKS, b"40", None, false).expect("open");
    n.run();
    n.server_requests();
    let (mut sent, mut got, mut stalls) = (0u32, 0u32, 0u32);
    while got < 40 {
        while sent < 40 {
            match n.server.stream_send(sid, &sent.to_be_bytes()) {
                Ok(()) => sent += 1,
                Err(_) => {
                    stalls += 1;
                    break;
                }
            }
        }
        n.run();
        let items: Vec<_> = n.client_events.drain(..).collect();
        for e in items {
            if let Ev::Data { id, payload } = e {
                assert_eq!(payload, got.to_be_bytes());
                got += 1;
                n.client.stream_consumed(id, 1, payload.len() as u32).expect("consume");
            }
        }
        n.run();
        n.server_events.retain(|e| !matches!(e, Ev::Writable { .. }));
    }
    n.client.stream_send(sid, b"thanks").expect("up");
    n.client.stream_finish(sid, Status::OK).expect("fin");
    n.server.stream_finish(sid, Status::OK).expect("fin");
    n.run();
    let ok = n.client_events.contains(&Ev::Fin { id: sid, status: Status::OK })
        && n.server_events.contains(&Ev::Data { id: sid, payload: b"thanks".to_vec() })
        && n.client.open_exchanges() == 0;
    r.row(
        "stream (bidirectional)",
        "server → client",
        ok,
        format!("{got} items in order, {stalls} credit stalls, both halves closed"),
    );
    n.client_events.clear();
    n.server_events.clear();

    // Cancellation by the caller reaches the handler.
    let id = n.client.call(n.now, ECHO, b"slow", None).expect("call");
    n.run();
    let rid = n.server_requests()[0].0;
    n.client.cancel(id).expect("cancel");
    n.run();
    let saw = n.server_events.drain(..).any(|e| e == Ev::Cancelled { id: rid, status: Status::CANCELLED });
    n.server.respond(rid, Status::OK, b"ignored").expect("respond");
    n.run();
    let ok = saw && n.client_events.is_empty() && n.client.open_exchanges() == 0;
    r.row("cancellation", "client → server", ok, "handler saw CANCELLED; slot freed".into());

    // Deadline: the server never answers; the client's call fails after 50 ms.
    let id = n.client.call(n.now, ECHO, b"late", Some(n.now + Duration::from_millis(50))).expect("call");
    n.run();
    let rid = n.server_requests()[0].0;
    n.advance(Duration::from_millis(50));
    let ok = n.client_events.drain(..).any(|e| e == Ev::Failed { id, status: Status::DEADLINE_EXCEEDED });
    n.server.respond(rid, Status::OK, b"").expect("respond");
    n.run();
    n.server_events.clear();
    r.row("deadline", "client → server", ok, "DEADLINE_EXCEEDED after 50 ms".into());

    // Keepalive: a quiet minute, pings keep it alive and measure the round trip.
    n.advance(Duration::from_secs(60));
    let s = n.client.stats();
    let ok = n.client.state() == State::Open && s.pings_sent > 0;
    r.row(
        "keepalive",
        "both",
        ok,
        format!("{} pings in 60 s idle, connection open", s.pings_sent + n.server.stats().pings_sent),
    );

    // Go-away: in-flight work finishes, then the connection closes cleanly.
    let id = n.client.call(n.now, ECHO, b"last", None).expect("call");
    n.run();
    let rid = n.server_requests()[0].0;
    n.server.go_away(n.now, Status::OK, b"maintenance").expect("goaway");
    n.run();
    n.server.respond(rid, Status::OK, b"done").expect("respond");
    n.run();
    let ok = n.client_events.contains(&Ev::Response { id, status: Status::OK, payload: b"done".to_vec() })
        && n.client_events.contains(&Ev::Closed(ConnectionError::PeerClosed { status: Status::OK }))
        && n.client.is_finished();
    r.row("go-away", "server → client", ok, "in-flight call finished, then CLOSE(OK)".into());

    println!("tandem-core demo: two sans-IO endpoints in memory, fake clock\n");
    println!("{:<26} {:<17} {:<6} detail", "exchange", "direction", "result");
    let mut failed = 0;
    for (what, dir, outcome, ok) in &r.rows {
        println!("{what:<26} {dir:<17} {:<6} {outcome}", if *ok { "ok" } else { "FAIL" });
        failed += usize::from(!ok);
    }
    println!(
        "\n{} bytes crossed the wire; {} of {} exchanges ok",
        n.bytes,
        r.rows.len() - failed,
        r.rows.len()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
