//! Cancellation, deadlines, connection loss, graceful shutdown, flow control, credentials.

mod common;
use core::time::Duration;
use std::io::Read;

use async_io::Timer;
use common::*;
use futures_lite::FutureExt;
use tandem_smol::tandem_core::typed::Unary;
use tandem_smol::tandem_core::{Config, Connection, Identity, Instant, Role};
use tandem_smol::{
    CallError, Client, ClientConfig, ConnectionError, Deadline, Handlers, Server, ServerConfig, Status,
};

/// SLOW reports on `seen` when its handler observes cancellation.
fn slow_router(seen: async_channel::Sender<&'static str>) -> Handlers {
    Handlers::new().unary(&SLOW, move |ctx, v: u64| {
        let seen = seen.clone();
        async move {
            if v == 0 {
                // Wait for cancellation, then report it.
                ctx.cancelled().await;
                assert!(ctx.is_cancelled());
                let _ = seen.try_send("cancelled");
                return Err(Status::CANCELLED);
            }
            Timer::after(Duration::from_millis(v)).await;
            Ok(v)
        }
    })
}

/// `call_raw_into` (which waits on its call without a `PendingCall` of its own): the answer
/// lands in the caller's buffer, a failure names the method and carries the handler's
/// message (the buffer emptied), and dropping the future mid-call cancels the handler.
#[test]
fn call_raw_into_answers_fails_with_the_message_and_cancels_when_dropped() {
    use tandem_smol::tandem_core::MethodId;
    use tandem_smol::Outcome;
    const ECHO: MethodId = MethodId::new(40, 1);
    const FAIL: MethodId = MethodId::new(40, 2);
    const HOLD: MethodId = MethodId::new(40, 3);
    run(T, async {
        let (seen, seen_rx) = async_channel::unbounded();
        let handlers = Handlers::new()
            .raw_unary(ECHO, |_, req| async move { Ok(req) })
            .raw_unary_outcome(FAIL, |_, _| async {
                Outcome::failed(Status::NOT_FOUND, "no such thing", Vec::new())
            })
            .raw_unary(HOLD, move |ctx, _| {
                let seen = seen.clone();
                async move {
                    ctx.cancelled().await;
                    let _ = seen.try_send("cancelled");
                    Err(Status::CANCELLED)
                }
            });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), handlers).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let peer = client.peer();
        let mut out = b"old".to_vec();
        peer.call_raw_into(ECHO, b"hello", T, &mut out).await.unwrap();
        assert_eq!(out, b"hello");
        let e = peer.call_raw_into(FAIL, b"x", T, &mut out).await.unwrap_err();
        assert_eq!((e.status(), e.message()), (Status::NOT_FOUND, Some("no such thing")));
        assert!(e.to_string().starts_with("40/2 on \"server\""), "the error names the method and peer: {e}");
        assert!(out.is_empty(), "emptied on an error");
        let r = peer
            .call_raw_into(HOLD, b"x", Deadline::None, &mut out)
            .or(async {
                wait_until(|| server.peer("client").is_some_and(|p| p.stats().calls_open_inbound == 1)).await;
                Err(CallError::from(Status::UNKNOWN))
            })
            .await;
        assert_eq!(r, Err(CallError::from(Status::UNKNOWN)), "the call's future was dropped");
        assert_eq!(within(T, seen_rx.recv()).await.unwrap(), "cancelled");
        within(T, async {
            while peer.stats().calls_open_outbound != 0 {
                Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        peer.call_raw_into(ECHO, b"again", T, &mut out).await.unwrap();
        assert_eq!(out, b"again");
        server.shutdown(T).await;
    });
}

#[test]
fn dropping_a_call_future_cancels_the_remote_handler_both_directions() {
    run(T, async {
        let (seen, seen_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), slow_router(seen.clone()))
                .unwrap();
        let client = Client::connect(
            &server.local_addr().to_string(),
            ClientConfig::new("client"),
            slow_router(seen.clone()),
        )
        .await
        .unwrap();
        let back = server.peer("client").unwrap();
        for (caller, callee) in [(client.peer(), &back), (&back, client.peer())] {
            let call = caller.call(&SLOW, &0, Deadline::None);
            let r = call
                .or(async {
                    // Once the handler runs, give up on the call: its future is dropped.
                    wait_until(|| callee.stats().calls_open_inbound == 1).await;
                    Err(CallError::from(Status::UNKNOWN))
                })
                .await;
            assert_eq!(
                r,
                Err(CallError::from(Status::UNKNOWN)),
                "the timer won; the call future was dropped"
            );
            assert_eq!(within(T, seen_rx.recv()).await.unwrap(), "cancelled");
            // Both tables empty again.
            within(T, async {
                while caller.stats().calls_open_outbound != 0 {
                    Timer::after(Duration::from_millis(2)).await;
                }
            })
            .await;
            // The connection is fine.
            assert_eq!(caller.call(&SLOW, &1, T).await, Ok(1));
        }
        drop(back);
        server.shutdown(T).await;
    });
}

#[test]
fn deadline_fails_the_call_and_cancels_the_handler() {
    run(T, async {
        let (seen, seen_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), slow_router(seen)).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let start = std::time::Instant::now();
        let r = client.call(&SLOW, &0, Duration::from_millis(100)).await;
        assert_eq!(r, Err(CallError::from(Status::DEADLINE_EXCEEDED)));
        assert!(start.elapsed() >= Duration::from_millis(90));
        assert_eq!(within(T, seen_rx.recv()).await.unwrap(), "cancelled");
        server.shutdown(T).await;
    });
}

#[test]
fn graceful_shutdown_lets_in_flight_calls_finish() {
    run(T, async {
        let (seen, _seen_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), slow_router(seen)).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let in_flight = client.call(&SLOW, &300, Deadline::None);
        let stop = async {
            wait_until(|| server.peer("client").is_some_and(|p| p.stats().calls_open_inbound == 1)).await;
            server.shutdown(Duration::from_secs(3)).await;
        };
        let (r, ()) = futures_lite::future::zip(in_flight, stop).await;
        assert_eq!(r, Ok(300));
        assert!(client.closed().await.is_graceful());
        // After GOAWAY nothing new can start.
        assert_eq!(client.call(&SLOW, &1, Deadline::None).await, Err(CallError::from(Status::UNAVAILABLE)));
    });
}

#[test]
fn shutdown_grace_period_ends_stuck_calls_with_unavailable() {
    run(T, async {
        let (seen, seen_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), slow_router(seen)).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let stuck = client.call(&SLOW, &0, Deadline::None);
        let stop = async {
            wait_until(|| server.peer("client").is_some_and(|p| p.stats().calls_open_inbound == 1)).await;
            let t = std::time::Instant::now();
            server.shutdown(Duration::from_millis(200)).await;
            t.elapsed()
        };
        let (r, took) = futures_lite::future::zip(stuck, stop).await;
        assert_eq!(r, Err(CallError::from(Status::UNAVAILABLE)));
        assert!(took < Duration::from_secs(2), "{took:?}");
        // The stuck handler was told.
        assert_eq!(within(T, seen_rx.recv()).await.unwrap(), "cancelled");
        assert_eq!(within(T, client.closed()).await.status(), Status::UNAVAILABLE);
    });
}

#[test]
fn connection_loss_fails_every_pending_call_with_unavailable() {
    run(T, async {
        // A fake server that completes the handshake, takes the calls, then drops the socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp://{}", listener.local_addr().unwrap());
        let fake = blocking::unblock(move || {
            use std::io::Write;
            let (mut s, _) = listener.accept().unwrap();
            let me = Identity { name: b"flaky", ..Identity::default() };
            let mut c = Connection::new(Role::Acceptor, Config::default(), me, Instant::ZERO).unwrap();
            let mut buf = vec![0u8; 65536];
            let mut requests = 0;
            while requests < 3 {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                assert_eq!(c.handle_input(Instant::ZERO, &buf[..n]), n);
                while let Some(ev) = c.poll_event(Instant::ZERO) {
                    if matches!(ev, tandem_smol::tandem_core::Event::Request { .. }) {
                        requests += 1;
                    }
                }
                let m = c.poll_transmit(Instant::ZERO, &mut buf);
                s.write_all(&buf[..m]).unwrap();
            }
            // Dropping the socket without CLOSE: the connection is lost.
        });
        let peer = Client::connect(&addr, ClientConfig::new("client"), Handlers::new()).await.unwrap();
        let (a, n) = ("a".to_string(), "n".to_string());
        let calls = futures_lite::future::zip(
            futures_lite::future::zip(
                peer.call(&ADD, &Add { a: 1, b: 1 }, Deadline::None),
                peer.call(&ECHO, &a, Deadline::None),
            ),
            peer.notify(&LOG, &n, Deadline::None),
        );
        let ((a, b), c) = within(T, futures_lite::future::zip(calls, fake)).await.0;
        let unavailable = CallError::from(Status::UNAVAILABLE);
        assert_eq!((a, b, c), (Err(unavailable.clone()), Err(unavailable.clone()), Err(unavailable)));
        assert_eq!(peer.closed().await, ConnectionError::TransportClosed);
    });
}

#[test]
fn stream_sender_waits_for_credit_and_slow_reader_bounds_memory() {
    run(T, async {
        let (log, _log_rx) = async_channel::unbounded();
        let config = Config { stream_credit_msgs: 4, ..Config::default() };
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router(log)).unwrap();
        let client = Client::connect(
            &server.local_addr().to_string(),
            ClientConfig { connection: config, ..ClientConfig::new("client") },
            Handlers::new(),
        )
        .await
        .unwrap();
        // Server-streaming: this side sends nothing, so the stream opens half-closed.
        let mut rx = client.subscribe(&COUNT, &(0, 200), Deadline::None).await.unwrap();
        // Read slowly: the server must stall on credit rather than buffer.
        let srv = server.peer("client").unwrap();
        wait_until(|| srv.stats().credit_stalls > 0).await;
        // Stalled on credit: only the granted items were sent.
        assert!(srv.stats().bytes_sent < 1000, "{:?}", srv.stats());
        for i in 0..200u32 {
            assert_eq!(within(T, rx.recv()).await, Ok(Some(i)));
        }
        assert_eq!(within(T, rx.recv()).await, Ok(None));
        drop(srv);
        server.shutdown(T).await;
    });
}

#[test]
fn dropping_stream_handles_resets_the_stream() {
    run(T, async {
        let (seen, seen_rx) = async_channel::unbounded();
        let forever: tandem_smol::tandem_core::typed::Streaming<(), u32, u32> =
            tandem_smol::tandem_core::typed::Streaming::new(9, 9);
        let router = Handlers::new().streaming(&forever, move |ctx, (), _rx, mut tx| {
            let seen = seen.clone();
            async move {
                let mut i = 0;
                loop {
                    if tx.send(&i).await.is_err() || ctx.is_cancelled() {
                        let _ = seen.try_send("stopped");
                        return Ok(());
                    }
                    i += 1;
                }
            }
        });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let (tx, mut rx) = client.open_stream(&forever, &(), Deadline::None).await.unwrap();
        assert_eq!(within(T, rx.recv()).await, Ok(Some(0)));
        drop((tx, rx));
        assert_eq!(within(T, seen_rx.recv()).await.unwrap(), "stopped");
        let srv = server.peer("client").unwrap();
        within(T, async {
            while srv.stats().streams_open_inbound != 0 || client.stats().streams_open_outbound != 0 {
                Timer::after(Duration::from_millis(2)).await;
            }
        })
        .await;
        drop(srv);
        server.shutdown(T).await;
    });
}

#[test]
fn handler_panic_answers_internal_and_the_connection_survives() {
    run(T, async {
        let router = Handlers::new().unary(&ADD, |_ctx, r: Add| async move {
            if r.a == 0 {
                panic!("handler bug (expected by the test)");
            }
            Ok(r.a + r.b)
        });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let r = client.call(&ADD, &Add { a: 0, b: 1 }, Deadline::None).await;
        let e = r.unwrap_err();
        assert_eq!((e.status(), e.message()), (Status::INTERNAL, Some("the handler panicked")));
        assert_eq!(client.call(&ADD, &Add { a: 1, b: 1 }, Deadline::None).await, Ok(2));
        server.shutdown(T).await;
    });
}

#[test]
fn dropping_the_last_handle_closes_the_connection() {
    run(T, async {
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), Handlers::new()).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let srv = server.peer("client").unwrap();
        let other = client.clone();
        drop(client);
        assert!(!other.is_closed());
        drop(other);
        assert!(within(T, srv.closed()).await.is_graceful());
        server.shutdown(T).await;
    });
}

const CREDS: Unary<(), Option<(u32, u32, i32)>> = Unary::new(5, 1);

#[test]
fn unix_peers_see_each_others_credentials() {
    run(T, async {
        let dir = tempfile::tempdir().unwrap();
        let router = Handlers::new()
            .unary(&CREDS, |ctx, ()| async move { Ok(ctx.credentials().map(|c| (c.uid, c.gid, c.pid))) });
        let uid = nix::unistd::getuid().as_raw();
        let gid = nix::unistd::getgid().as_raw();
        let pid = std::process::id() as i32;
        for (i, addr) in addresses(dir.path()).into_iter().enumerate() {
            let server = Server::bind(&addr, ServerConfig::new("server"), router.clone()).unwrap();
            let client = Client::connect(
                &server.local_addr().to_string(),
                ClientConfig::new("client"),
                Handlers::new(),
            )
            .await
            .unwrap();
            let seen = client.call(&CREDS, &(), Deadline::None).await.unwrap();
            if i == 0 {
                assert_eq!(seen, None, "TCP has no peer credentials");
                assert_eq!(client.credentials(), None);
            } else {
                assert_eq!(seen, Some((uid, gid, pid)));
                let c = client.credentials().unwrap();
                assert_eq!((c.uid, c.gid, c.pid), (uid, gid, pid));
            }
            server.shutdown(T).await;
        }
    });
}

#[test]
fn many_concurrent_calls_wait_for_room_instead_of_failing() {
    run(T, async {
        let (log, _log_rx) = async_channel::unbounded();
        // The server runs at most 4 handlers at once for this client; 300 calls are pipelined.
        let config = Config { max_concurrent_calls: 4, ..Config::default() };
        let server = Server::bind(
            "tcp://127.0.0.1:0",
            ServerConfig { connection: config, ..ServerConfig::new("server") },
            router(log),
        )
        .unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let calls = (0..300u32).map(|i| {
            let client = &client;
            async move { client.call(&ADD, &Add { a: i, b: i }, T).await }
        });
        let mut pending: Vec<_> = calls.map(Box::pin).collect();
        let results = within(T, async {
            let mut out = Vec::new();
            // Poll all at once (a tiny join_all).
            futures_lite::future::poll_fn(|cx| {
                let mut i = 0;
                while i < pending.len() {
                    if let core::task::Poll::Ready(r) = pending[i].as_mut().poll(cx) {
                        out.push(r);
                        drop(pending.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
                if pending.is_empty() {
                    core::task::Poll::Ready(())
                } else {
                    core::task::Poll::Pending
                }
            })
            .await;
            out
        })
        .await;
        assert_eq!(results.len(), 300);
        let mut sums: Vec<u32> = results.into_iter().map(|r| r.unwrap()).collect();
        sums.sort_unstable();
        assert_eq!(sums, (0..300).map(|i| 2 * i).collect::<Vec<_>>());
        assert_eq!(client.stats().calls_open_outbound, 0);
        server.shutdown(T).await;
    });
}

const CALLBACK: Unary<u32, u32> = Unary::new(6, 1);

#[test]
fn a_handler_can_call_back_the_caller() {
    run(T, async {
        let (log, _log_rx) = async_channel::unbounded();
        // The server's handler asks the client to add, over the same connection.
        let srv_router = Handlers::new().unary(&CALLBACK, |ctx, x: u32| async move {
            let sum = ctx.peer().call(&ADD, &Add { a: x, b: 100 }, T).await.map_err(|e| e.status())?;
            Ok(sum * 2)
        });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), srv_router).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), router(log))
                .await
                .unwrap();
        assert_eq!(client.call(&CALLBACK, &1, T).await, Ok(202));
        server.shutdown(T).await;
    });
}

/// A response type whose encoding always fails.
#[derive(Debug, PartialEq, serde::Deserialize)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value cannot be encoded"))
    }
}

const UNENCODABLE: Unary<u32, Unencodable> = Unary::new(7, 1);

#[test]
fn unencodable_response_answers_encode_failed() {
    run(T, async {
        let router = Handlers::new().unary(&UNENCODABLE, |_ctx, _x: u32| async move { Ok(Unencodable) });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        let err = client.call(&UNENCODABLE, &1, Deadline::None).await.unwrap_err();
        assert_eq!(err, CallError::from(Status::ENCODE_FAILED));
        // Encoding fails on the caller's side too, before anything is sent.
        let echo: Unary<Unencodable, u32> = Unary::new(7, 2);
        let err = client.call(&echo, &Unencodable, Deadline::None).await.unwrap_err();
        assert!(
            matches!(err.kind(), tandem_smol::ErrorKind::Encode(_)) && err.status() == Status::ENCODE_FAILED,
            "{err:?}"
        );
        assert!(!client.is_closed());
        server.shutdown(T).await;
    });
}

#[test]
fn inline_unary_handlers_answer_and_a_panic_answers_internal() {
    use tandem_smol::tandem_core::MethodId;
    const ECHO: MethodId = MethodId::new(9, 1);
    run(T, async {
        let router = Handlers::new().raw_unary_inline(ECHO, |_ctx, req, out| {
            match req {
                b"panic" => panic!("inline handler bug (expected by the test)"),
                b"fail" => return Err(Status::FAILED),
                _ => out.extend_from_slice(req),
            }
            Ok(())
        });
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router).unwrap();
        let client =
            Client::connect(&server.local_addr().to_string(), ClientConfig::new("client"), Handlers::new())
                .await
                .unwrap();
        assert_eq!(client.call_raw(ECHO, b"hello", Deadline::None).await, Ok(b"hello".to_vec()));
        assert_eq!(
            client.call_raw(ECHO, b"fail", Deadline::None).await,
            Err(CallError::from(Status::FAILED))
        );
        assert_eq!(
            client.call_raw(ECHO, b"panic", Deadline::None).await,
            Err(CallError::from(Status::INTERNAL))
        );
        // The connection survived the panic.
        assert_eq!(client.call_raw(ECHO, b"again", Deadline::None).await, Ok(b"again".to_vec()));
        server.shutdown(T).await;
    });
}

/// A reliable notification is cancelled like a call (SPEC.md §7.3): dropping its future, or its
/// deadline passing, reaches the remote handler, in both directions.
#[test]
fn a_reliable_notification_is_cancelled_at_the_remote_handler() {
    use tandem_smol::tandem_core::typed::Notification;
    const WAIT: Notification<u64> = Notification::new(9, 1);
    fn router(seen: async_channel::Sender<&'static str>) -> Handlers {
        Handlers::new().notification(&WAIT, move |ctx, _: u64| {
            let seen = seen.clone();
            async move {
                // Runs until cancelled, then reports how it ended.
                ctx.cancelled().await;
                let deadline = ctx.cancel_reason() == Some(Status::DEADLINE_EXCEEDED);
                let _ = seen.try_send(if deadline { "deadline" } else { "cancelled" });
                Err(Status::CANCELLED)
            }
        })
    }
    run(T, async {
        let (seen, seen_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), router(seen.clone())).unwrap();
        let client = Client::connect(
            &server.local_addr().to_string(),
            ClientConfig::new("client"),
            router(seen.clone()),
        )
        .await
        .unwrap();
        let back = server.peer("client").unwrap();
        for (caller, callee) in [(client.peer(), &back), (&back, client.peer())] {
            // Dropped once the handler runs.
            let r = caller
                .notify(&WAIT, &0, Deadline::None)
                .or(async {
                    wait_until(|| callee.stats().calls_open_inbound == 1).await;
                    Err(CallError::from(Status::UNKNOWN))
                })
                .await;
            assert_eq!(r, Err(CallError::from(Status::UNKNOWN)));
            assert_eq!(within(T, seen_rx.recv()).await.unwrap(), "cancelled");
            // Its deadline passes: the caller sees DEADLINE_EXCEEDED, the handler is cancelled —
            // with DEADLINE_EXCEEDED when its own timer fires first or the caller's CANCEL comes
            // within the margin before it (SPEC.md §7.5; the core's tests check that rule with a
            // fake clock). On a loaded machine the request's receipt can be delayed by more than
            // the margin, which moves the handler's deadline later, and the CANCEL then reads as
            // CANCELLED; either way the handler ends.
            let r = caller.notify(&WAIT, &0, Duration::from_millis(100)).await;
            assert_eq!(r.unwrap_err().status(), Status::DEADLINE_EXCEEDED);
            let seen = within(T, seen_rx.recv()).await.unwrap();
            assert!(seen == "deadline" || seen == "cancelled", "{seen}");
            wait_until(|| callee.stats().calls_open_inbound == 0).await;
        }
        drop(back);
        server.shutdown(T).await;
    });
}
