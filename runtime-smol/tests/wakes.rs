//! Waking the callers a driver's turn resolved (`Engine::apply_actions`): the driver wakes the
//! first and leaves the others in the connection's relay, for that first caller to wake from its
//! own thread if it runs at once; whatever it did not take, the driver wakes itself before its
//! turn ends. So a caller must be woken even when the first caller woken never runs again (its
//! executor stopped), and every result must be there for its caller. Across connections, an
//! I/O thread hands the waiters of its batch of turns to whichever waiter runs first
//! (`relay`): every one of them must still be woken, once.

mod common;

use common::*;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::sync::Arc;
use std::task::Wake;

use tandem_smol::{CallError, Client, ClientConfig, Deadline, Handlers, MethodId, Server, ServerConfig};

const ECHO_RAW: MethodId = MethodId::new(9, 1);

/// The waker of an executor that never polls again.
struct Stopped;

impl Wake for Stopped {
    fn wake(self: Arc<Self>) {}
}

type Call = Pin<Box<dyn Future<Output = Result<Vec<u8>, CallError>>>>;

/// A server answering `ECHO_RAW` inline, and its address.
fn echo_server() -> (Server, String) {
    let handlers = Handlers::new().raw_unary_inline(ECHO_RAW, |_ctx, req, out| {
        out.extend_from_slice(req);
        Ok(())
    });
    let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("srv"), handlers).unwrap();
    let addr = server.local_addr().to_string();
    (server, addr)
}

#[test]
fn every_resolved_caller_is_woken_when_the_first_one_woken_never_runs() {
    run(T * 6, async {
        let (_server, addr) = echo_server();
        let client = Client::connect(&addr, ClientConfig::new("cli"), Handlers::new()).await.unwrap();
        let peer = client.peer().clone();
        let stopped = Waker::from(Arc::new(Stopped));
        let rounds = if cfg!(debug_assertions) { 30 } else { 200 };
        for round in 0..rounds {
            // Opened first, so that their answers come first in the turn that reads them: polled
            // once with the waker of an executor that stopped, then left alone.
            let mut stuck: Vec<(u8, Call)> = Vec::new();
            for i in 0..8u8 {
                let p = peer.clone();
                let mut call: Call =
                    Box::pin(async move { p.call_raw(ECHO_RAW, &[round as u8, i], Deadline::None).await });
                match call.as_mut().poll(&mut Context::from_waker(&stopped)) {
                    Poll::Ready(r) => assert_eq!(r.unwrap(), [round as u8, i]),
                    Poll::Pending => stuck.push((i, call)),
                }
            }
            // Callers on running executors, answered in the same turns or later ones.
            let live: Vec<_> = (0..8u8)
                .map(|i| {
                    let p = peer.clone();
                    smol::spawn(
                        async move { p.call_raw(ECHO_RAW, &[round as u8, 100 + i], Deadline::None).await },
                    )
                })
                .collect();
            for (i, task) in live.into_iter().enumerate() {
                assert_eq!(within(T, task).await.unwrap(), [round as u8, 100 + i as u8], "round {round}");
            }
            // The stuck calls were answered too: their results wait for them.
            within(T, async {
                for (i, mut call) in stuck {
                    loop {
                        if let Poll::Ready(r) = call.as_mut().poll(&mut Context::from_waker(&stopped)) {
                            assert_eq!(r.unwrap(), [round as u8, i], "round {round}");
                            break;
                        }
                        async_io::Timer::after(core::time::Duration::from_millis(1)).await;
                    }
                }
            })
            .await;
        }
    });
}

/// Many connections, one call in flight on each, all callers tasks of one single-threaded
/// executor: each batch of turns resolves many callers at once, whose wake-ups the first one to
/// run takes over from the I/O thread. No caller may be left waiting: every call completes,
/// with its own answer.
#[test]
fn callers_of_many_connections_on_one_executor_are_all_woken() {
    let (conns, calls) = if cfg!(debug_assertions) { (64, 20) } else { (200, 100) };
    run(T * 6, async {
        let (_server, addr) = echo_server();
        let mut clients = Vec::new();
        for i in 0..conns {
            let cfg = ClientConfig::new(format!("cli-{i}"));
            clients.push(Client::connect(&addr, cfg, Handlers::new()).await.unwrap());
        }
        let ex = smol::LocalExecutor::new();
        let tasks: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(c, client)| {
                let peer = client.peer().clone();
                ex.spawn(async move {
                    let mut back = Vec::new();
                    for k in 0..calls {
                        let msg = [(c % 251) as u8, (k % 251) as u8];
                        peer.call_raw_into(ECHO_RAW, &msg, Deadline::None, &mut back).await.unwrap();
                        assert_eq!(back, msg, "connection {c}, call {k}");
                    }
                    calls
                })
            })
            .collect();
        let done = within(
            T * 5,
            ex.run(async {
                let mut n = 0;
                for t in tasks {
                    n += t.await;
                }
                n
            }),
        )
        .await;
        assert_eq!(done, conns * calls);
    });
}
