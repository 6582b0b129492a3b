//! Deadlines inherited by the calls a handler makes (issue 12, item 7), explicit deadlines
//! overriding them, and a handler telling a cancellation from an expired deadline: the blocking
//! twin of tandem-smol's `tests/deadlines.rs`.

mod common;
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;
use std::time::Duration;

use common::{bounded, T};
use tandem_std::tandem_core::typed::Unary;
use tandem_std::{CallError, Client, ClientConfig, Deadline, Handlers, Server, ServerConfig, Status};

/// Served by the client: the deadline it sees, in ms from now (`None`: no deadline).
const REMAINING: Unary<(), Option<u64>> = Unary::new(1, 1);
/// Served by the client: waits until cancelled, then reports why on a channel.
const WAIT: Unary<(), ()> = Unary::new(1, 2);
/// Served by the server: calls REMAINING back with the deadline named by the request.
const RELAY: Unary<u8, Option<u64>> = Unary::new(2, 1);
/// Served by the server: calls WAIT back with the inherited deadline; answers its outcome.
const RELAY_WAIT: Unary<(), u32> = Unary::new(2, 2);

fn server_handlers() -> Handlers {
    Handlers::new()
        .unary(&RELAY, |ctx, how: u8| {
            let deadline = match how {
                0 => Deadline::Inherit,
                1 => Deadline::None,
                _ => Deadline::after(Duration::from_secs(30)),
            };
            ctx.peer().call(&REMAINING, &(), deadline).map_err(|e| e.status())
        })
        .unary(&RELAY_WAIT, |ctx, ()| {
            // Deadline::Inherit is the default of every call made while the handler runs.
            let r = ctx.peer().call(&WAIT, &(), Deadline::default());
            Ok(r.err().map_or(0, |e| e.status().0))
        })
}

fn client_handlers(reasons: Sender<Option<Status>>) -> Handlers {
    let reasons = Mutex::new(reasons);
    Handlers::new()
        .unary(&REMAINING, |ctx, ()| {
            let now = std::time::Instant::now();
            Ok(ctx.deadline().map(|d| d.saturating_duration_since(now).as_millis() as u64))
        })
        .unary(&WAIT, move |ctx, ()| {
            ctx.wait_cancelled(T * 2);
            let _ = reasons.lock().unwrap().send(ctx.cancel_reason());
            Ok(())
        })
}

#[test]
fn calls_from_a_handler_inherit_the_remaining_budget_unless_overridden() {
    bounded(30, || {
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), server_handlers()).unwrap();
        let (reasons, _r) = channel();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("client"), client_handlers(reasons)).unwrap();
        // Inherited: the inner call carries what is left of the outer one's 2 s.
        let left = client.call(&RELAY, &0, Duration::from_secs(2)).unwrap().expect("a deadline");
        assert!(left > 0 && left <= 2000, "{left} ms");
        // The outer call has no deadline: neither has the inner one.
        assert_eq!(client.call(&RELAY, &0, Deadline::None), Ok(None));
        // Explicit deadlines override: none at all, or a longer one.
        assert_eq!(client.call(&RELAY, &1, Duration::from_secs(2)), Ok(None));
        let left = client.call(&RELAY, &2, Duration::from_secs(2)).unwrap().expect("a deadline");
        assert!(left > 20_000, "{left} ms");
        // Outside any handler, Inherit means no deadline.
        let back = server.peer("client").unwrap();
        assert_eq!(back.call(&REMAINING, &(), Deadline::Inherit), Ok(None));
        drop(back);
        server.shutdown(T);
    });
}

#[test]
fn a_handler_tells_an_expired_deadline_from_a_cancellation() {
    bounded(30, || {
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), server_handlers()).unwrap();
        let (reasons, reasons_rx) = channel();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("client"), client_handlers(reasons)).unwrap();
        // The outer call's 300 ms run out while the inner call waits: the inner call (which
        // inherited them) fails DEADLINE_EXCEEDED and its handler learns why.
        let start = std::time::Instant::now();
        let r = client.call(&RELAY_WAIT, &(), Duration::from_millis(300));
        assert_eq!(r, Err(CallError::from(Status::DEADLINE_EXCEEDED)));
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
        assert_eq!(reasons_rx.recv_timeout(T).unwrap(), Some(Status::DEADLINE_EXCEEDED));
        // A call the caller gives up on: the handler sees CANCELLED.
        let back = server.peer("client").unwrap();
        let call = back.start_call(&WAIT, &(), Deadline::None).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        call.cancel();
        assert_eq!(reasons_rx.recv_timeout(T).unwrap(), Some(Status::CANCELLED));
        // The connection ends under a running handler: UNAVAILABLE.
        let _call = back.start_call(&WAIT, &(), Deadline::None).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        client.close();
        assert_eq!(reasons_rx.recv_timeout(T).unwrap(), Some(Status::UNAVAILABLE));
        drop((back, _call));
        server.shutdown(T);
    });
}
