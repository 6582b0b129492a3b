//! Deadlines inherited by the calls a handler makes (issue 12, item 7), explicit deadlines
//! overriding them, and a handler telling a cancellation from an expired deadline.

mod common;
use core::time::Duration;

use common::{run, within, T};
use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::{CallError, Client, ClientConfig, Deadline, Handlers, Server, ServerConfig, Status};

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
        .unary(&RELAY, |ctx, how: u8| async move {
            let deadline = match how {
                0 => Deadline::Inherit,
                1 => Deadline::None,
                _ => Deadline::after(Duration::from_secs(30)),
            };
            ctx.peer().call(&REMAINING, &(), deadline).await.map_err(|e| e.status())
        })
        .unary(&RELAY_WAIT, |ctx, ()| async move {
            // Deadline::Inherit is the default of every call made while the handler runs.
            let r = ctx.peer().call(&WAIT, &(), Deadline::default()).await;
            Ok(r.err().map_or(0, |e| e.status().0))
        })
}

fn client_handlers(reasons: async_channel::Sender<Option<Status>>) -> Handlers {
    Handlers::new()
        .unary(&REMAINING, |ctx, ()| async move {
            let now = std::time::Instant::now();
            Ok(ctx.deadline().map(|d| d.saturating_duration_since(now).as_millis() as u64))
        })
        .unary(&WAIT, move |ctx, ()| {
            let reasons = reasons.clone();
            async move {
                // A cancelled handler is polled once more (here `cancelled()` completes), then
                // dropped at its next await.
                ctx.cancelled().await;
                let _ = reasons.try_send(ctx.cancel_reason());
                Ok(())
            }
        })
}

#[test]
fn calls_from_a_handler_inherit_the_remaining_budget_unless_overridden() {
    run(T * 2, async {
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), server_handlers()).unwrap();
        let (reasons, _r) = async_channel::unbounded();
        let addr = server.local_addr().to_string();
        let client =
            Client::connect(&addr, ClientConfig::new("client"), client_handlers(reasons)).await.unwrap();
        // Inherited: the inner call carries what is left of the outer one's 2 s.
        let left = client.call(&RELAY, &0, Duration::from_secs(2)).await.unwrap().expect("a deadline");
        assert!(left > 0 && left <= 2000, "{left} ms");
        // The outer call has no deadline: neither has the inner one.
        assert_eq!(client.call(&RELAY, &0, Deadline::None).await, Ok(None));
        // Explicit deadlines override: none at all, or a longer one.
        assert_eq!(client.call(&RELAY, &1, Duration::from_secs(2)).await, Ok(None));
        let left = client.call(&RELAY, &2, Duration::from_secs(2)).await.unwrap().expect("a deadline");
        assert!(left > 20_000, "{left} ms");
        // Outside any handler, Inherit means no deadline.
        let back = server.peer("client").unwrap();
        assert_eq!(back.call(&REMAINING, &(), Deadline::Inherit).await, Ok(None));
        server.shutdown(T).await;
    });
}

#[test]
fn a_handler_tells_an_expired_deadline_from_a_cancellation() {
    run(T * 2, async {
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), server_handlers()).unwrap();
        let (reasons, reasons_rx) = async_channel::unbounded();
        let addr = server.local_addr().to_string();
        let client =
            Client::connect(&addr, ClientConfig::new("client"), client_handlers(reasons)).await.unwrap();
        // The outer call's 300 ms run out while the inner call waits: the inner call (which
        // inherited them) fails DEADLINE_EXCEEDED and its handler learns why.
        let start = std::time::Instant::now();
        let r = client.call(&RELAY_WAIT, &(), Duration::from_millis(300)).await;
        assert_eq!(r, Err(CallError::from(Status::DEADLINE_EXCEEDED)));
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
        assert_eq!(within(T, reasons_rx.recv()).await.unwrap(), Some(Status::DEADLINE_EXCEEDED));
        // A call the caller gives up on: the handler sees CANCELLED.
        let back = server.peer("client").unwrap();
        let call = back.start_call(&WAIT, &(), Deadline::None).await.unwrap();
        async_io::Timer::after(Duration::from_millis(50)).await;
        call.cancel();
        assert_eq!(within(T, reasons_rx.recv()).await.unwrap(), Some(Status::CANCELLED));
        // The connection ends under a running handler: UNAVAILABLE.
        let _call = back.start_call(&WAIT, &(), Deadline::None).await.unwrap();
        async_io::Timer::after(Duration::from_millis(50)).await;
        client.close();
        assert_eq!(within(T, reasons_rx.recv()).await.unwrap(), Some(Status::UNAVAILABLE));
        server.shutdown(T).await;
    });
}
