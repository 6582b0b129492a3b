//! Session resumption corner cases found by the deterministic fault simulator's soak
//! (`proto-core/tests/sim.rs`): each test names the seed that found it.

use super::pair::{ms, Ev, ECHO};
use super::resume::{attach, lose_transport, responses, resumable, resumable_with, resume};
use crate::frame::Frame;
use crate::{Config, ConnectionError, Status};

/// A call whose fragmented RESPONSE was cut by the loss is not counted again (SPEC.md §13.4):
/// another call took the freed slot meanwhile, and the caller must stay within the peer's
/// `max_concurrent_calls` (found by the 1,000,000-scenario soak, seed 188844).
#[test]
fn a_response_cut_by_the_loss_does_not_take_its_slot_again() {
    let ca = Config { max_frame_size: 4096, ..Config::default() };
    let cb = Config { max_concurrent_calls: 1, ..Config::default() };
    let mut p = resumable_with(ca, cb);
    let now = p.now;
    let big = p.a.conn.call(now, ECHO, b"big", None).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    p.b.conn.respond(big, Status::OK, &[7u8; 10_000]).unwrap();
    // Only the first frame of the RESPONSE reaches the caller.
    let mut buf = vec![0u8; 1 << 16];
    let n = p.b.conn.poll_transmit(now, &mut buf);
    let mut off = 0;
    loop {
        let (t, body, hlen) = Frame::peek_header(&buf[off..n], usize::MAX).unwrap().unwrap();
        off += hlen + body;
        if t == crate::frame::ty::RESPONSE {
            break;
        }
    }
    assert!(off < n, "the RESPONSE is fragmented");
    let mut fed = 0;
    while fed < off {
        fed += p.a.conn.handle_input(now, &buf[fed..off]);
        p.a.poll(now);
    }
    assert_eq!(p.a.conn.stats().calls_open_outbound, 0, "the first frame freed the slot");
    let other = p.a.conn.call(now, ECHO, b"other", None).unwrap();
    assert_eq!(p.a.conn.stats().calls_open_outbound, 1);
    lose_transport(&mut p);
    assert_eq!(p.a.conn.stats().calls_open_outbound, 1, "never above the peer's limit of 1");
    resume(&mut p);
    p.drive();
    for (id, _, _) in p.b.requests() {
        p.b.conn.respond(id, Status::OK, b"o").unwrap();
    }
    p.drive();
    let mut got = responses(&mut p.a);
    got.sort();
    assert_eq!(got, vec![(big, Status::OK, vec![7u8; 10_000]), (other, Status::OK, b"o".to_vec())]);
    assert_eq!(p.a.conn.stats().calls_open_outbound, 0);
    p.assert_quiet();
}

/// Both directions of a stream are over, but its terminal is held for the resumption (SPEC.md
/// §7.4.6, §13.7): its deadline passing meanwhile changes nothing — no second outcome (found by
/// the soak, seed 367969).
#[test]
fn a_deadline_after_both_terminals_reports_nothing() {
    let mut p = resumable();
    let now = p.now;
    let id = p.a.conn.open_stream(now, crate::MethodId::new(4, 3), b"s", Some(now + ms(300)), false).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    p.b.conn.stream_finish(id, Status::OK).unwrap();
    p.drive();
    assert!(p.a.take().contains(&Ev::StreamFin { id, status: Status::OK }));
    lose_transport(&mut p);
    // Our direction ends while suspended: the FIN is held until after STREAM_RESUME.
    p.a.conn.stream_finish(id, Status::OK).unwrap();
    p.advance(ms(400));
    assert_eq!(p.a.take(), vec![], "no StreamReset(DEADLINE_EXCEEDED) after the stream's outcome");
    resume(&mut p);
    p.drive();
    assert_eq!(p.a.take(), vec![]);
    assert_eq!(p.a.conn.open_exchanges(), 0, "freed once the held FIN went out");
}

/// Both directions of a stream are over at the opener, its FIN held for the resumption (SPEC.md
/// §7.4.6): when the session then ends, the stream already has its outcome — no
/// StreamReset(UNAVAILABLE) after its StreamFin (found by the soak, seed 66454). The responder,
/// which never received the held FIN, still learns the stream is lost.
#[test]
fn a_session_ending_after_both_terminals_reports_nothing_more_to_the_opener() {
    let cfg = Config { session_grace: ms(500), ..Config::default() };
    let mut p = resumable_with(cfg.clone(), cfg);
    let now = p.now;
    let id = p.a.conn.open_stream(now, crate::MethodId::new(4, 3), b"s", None, false).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    p.b.conn.stream_finish(id, Status::OK).unwrap();
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::StreamFin { id, status: Status::OK }]);
    lose_transport(&mut p);
    p.a.conn.stream_finish(id, Status::OK).unwrap();
    assert_eq!(p.a.conn.open_exchanges(), 1, "kept: its FIN is held");
    p.advance(ms(501));
    assert_eq!(p.a.take(), vec![Ev::Closed(ConnectionError::SessionExpired)]);
    assert_eq!(
        p.b.take(),
        vec![
            Ev::StreamReset { id, status: Status::UNAVAILABLE },
            Ev::Closed(ConnectionError::SessionExpired)
        ]
    );
    assert_eq!(p.a.conn.open_exchanges(), 0);
    p.assert_quiet();
}

/// The same at the responder: the opener's direction ended with the FIN flag of STREAM_OPEN and
/// the responder's FIN is held when the session ends. The responder's application has both
/// terminals and gets nothing more; the opener, which never got the result, gets UNAVAILABLE.
#[test]
fn a_session_ending_after_both_terminals_reports_nothing_more_to_the_responder() {
    let cfg = Config { session_grace: ms(500), ..Config::default() };
    let mut p = resumable_with(cfg.clone(), cfg);
    let now = p.now;
    let id = p.a.conn.open_stream(now, crate::MethodId::new(4, 3), b"s", None, true).unwrap();
    p.drive();
    assert_eq!(p.b.requests().len(), 1);
    lose_transport(&mut p);
    p.b.conn.stream_finish(id, Status::OK).unwrap();
    assert_eq!(p.b.conn.open_exchanges(), 1, "kept: its FIN is held");
    p.advance(ms(501));
    assert_eq!(p.b.take(), vec![Ev::Closed(ConnectionError::SessionExpired)]);
    assert_eq!(
        p.a.take(),
        vec![
            Ev::StreamReset { id, status: Status::UNAVAILABLE },
            Ev::Closed(ConnectionError::SessionExpired)
        ]
    );
    assert_eq!(p.b.conn.open_exchanges(), 0);
    p.assert_quiet();
}

/// A request whose reassembly was cut by the loss counts as never received (SPEC.md §13.4), but
/// its id is the highest received, so a GOAWAY sent before its retransmission arrives carries a
/// bound above it: the GOAWAY promised to process it (§7.7.1). Its retransmission is then
/// processed as a new exchange, not refused, and the drain waits for it (found by the soak,
/// seed 801846).
#[test]
fn a_request_cut_by_the_loss_is_processed_after_a_goaway_that_covers_it() {
    let cb = Config { max_frame_size: 4096, ..Config::default() };
    let mut p = resumable_with(Config::default(), cb);
    let now = p.now;
    let id = p.a.conn.open_stream(now, crate::MethodId::new(4, 3), &[5u8; 10_000], None, false).unwrap();
    // Only the first frame of the fragmented STREAM_OPEN reaches the acceptor.
    let mut buf = vec![0u8; 1 << 16];
    let n = p.a.conn.poll_transmit(now, &mut buf);
    let (_, body, hlen) = Frame::peek_header(&buf[..n], usize::MAX).unwrap().unwrap();
    assert!(hlen + body < n, "the STREAM_OPEN is fragmented");
    let mut fed = 0;
    while fed < hlen + body {
        fed += p.b.conn.handle_input(now, &buf[fed..hlen + body]);
        p.b.poll(now);
    }
    assert_eq!(p.b.take(), vec![]);
    lose_transport(&mut p);
    attach(&mut p);
    // The acceptor shuts down before the retransmission arrives; its bound covers id 0.
    p.b.conn.go_away(p.now, Status::OK, b"").unwrap();
    p.drive();
    assert_eq!(p.a.take(), vec![Ev::GoAway { bound: id + 2, status: Status::OK }]);
    let got = p.b.requests();
    assert_eq!(got.len(), 1, "the retransmission is delivered to the handler");
    assert_eq!((got[0].0, got[0].2.len()), (id, 10_000));
    p.b.conn.stream_finish(id, Status::OK).unwrap();
    p.a.conn.stream_finish(id, Status::OK).unwrap();
    p.drive();
    assert_eq!(
        p.a.take(),
        vec![
            Ev::StreamFin { id, status: Status::OK },
            Ev::Closed(ConnectionError::PeerClosed { status: Status::OK })
        ]
    );
    assert_eq!(
        p.b.take(),
        vec![
            Ev::StreamFin { id, status: Status::OK },
            Ev::Closed(ConnectionError::LocallyClosed { status: Status::OK })
        ]
    );
    p.assert_quiet();
}
