//! The shared crate driven by a minimal blocking-style runtime of its own, with no executor and
//! no socket: two connection ends (a server end admitted by a `Hub`, a client end from
//! `open::dial`) exchange bytes through in-memory pipes, each turned by the engine sequence
//! the crate documents, with synchronous handlers run on the calling thread under
//! `deadline::enter`. It proves that the engine, the pump, the hub, the dialer glue, the
//! registry's dispatch decisions and the async-first API types work without any async runtime.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tandem_runtime::clock::Sleep;
use tandem_runtime::config::connection_config;
use tandem_runtime::engine::Engine;
use tandem_runtime::handlers::{HandlerFns, Job, Registry, Started};
use tandem_runtime::hub::Hub;
use tandem_runtime::open::{self, NewConnection, TransportInfo};
use tandem_runtime::pump::Pump;
use tandem_runtime::tandem_core::endpoint::{EndpointConfig, ReconnectPolicy};
use tandem_runtime::tandem_core::typed::{Notification, Unary};
use tandem_runtime::tandem_core::{Config, MethodId, Status};
use tandem_runtime::{deadline, peer, CallError, Ctx, Deadline, LinkState, Peer, PendingCall};

type UnaryFn = dyn Fn(&Ctx, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync;
type NotifyFn = dyn Fn(&Ctx, &[u8]) -> Result<(), Status> + Send + Sync;

/// Blocking handler signatures.
struct SyncFns;

impl HandlerFns for SyncFns {
    type Unary = Arc<UnaryFn>;
    type Notify = Arc<NotifyFn>;
    type Stream = Arc<NotifyFn>;
}

fn unary(f: impl Fn(&Ctx, &[u8]) -> Result<Vec<u8>, Status> + Send + Sync + 'static) -> Arc<UnaryFn> {
    Arc::new(f)
}

/// Runs a started handler on this thread, as a pool thread would.
fn run(job: Started<SyncFns>) {
    let (Job { ctx, payload, done }, result) = match job {
        Started::Unary(f, job) => {
            let r = {
                let _scope = deadline::enter(job.done.deadline());
                f(&job.ctx, &job.payload)
            };
            (job, r)
        }
        Started::Notify(f, job) => {
            let r = {
                let _scope = deadline::enter(job.done.deadline());
                f(&job.ctx, &job.payload).map(|()| Vec::new())
            };
            (job, r)
        }
        Started::Stream(_, job, rx, tx) => {
            drop((rx, tx));
            (job, Err(Status::UNIMPLEMENTED))
        }
    };
    drop((ctx, payload));
    match result {
        Ok(body) => done.complete(Status::OK, body),
        Err(status) => done.complete(status, Vec::new()),
    }
}

/// The timer of this runtime: never fires (no test here waits for one).
fn never(_: std::time::Instant) -> Sleep {
    Box::pin(core::future::pending())
}

fn noop_waker() -> Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    Waker::from(Arc::new(Noop))
}

type Pipe = Arc<Mutex<VecDeque<u8>>>;

/// One connection end: its engine and pump, reading `rx`, writing `tx`.
struct End {
    engine: Option<Engine<SyncFns>>,
    pump: Pump,
    rx: Pipe,
    tx: Pipe,
}

impl End {
    fn new(conn: NewConnection, handlers: Registry<SyncFns>, rx: Pipe, tx: Pipe) -> Self {
        let pump = Pump::new(conn.shared.id, &conn.shared.lock());
        End { engine: Some(Engine::new(conn, handlers)), pump, rx, tx }
    }

    /// One driver turn, as the engine's documentation lists it.
    fn turn(&mut self) {
        let Some(engine) = self.engine.as_mut() else { return };
        let shared = engine.shared().clone();
        let mut inner = shared.lock();
        inner.set_driver(&noop_waker());
        assert!(engine.begin(&mut inner).is_none(), "no resumption here");
        let mut worked = false;
        for _ in 0..16 {
            let mut progress = engine.handle_timers(&mut inner);
            // A vectored read, as a socket's `readv`: the slices filled in order.
            progress |= self.pump.read(&mut inner, |bufs| {
                let mut q = self.rx.lock().unwrap();
                if q.is_empty() {
                    return Poll::Pending;
                }
                let mut n = 0;
                for buf in bufs.iter_mut() {
                    let k = buf.len().min(q.len());
                    for (b, x) in buf.iter_mut().zip(q.drain(..k)) {
                        *b = x;
                    }
                    n += k;
                }
                Poll::Ready(Ok(n))
            });
            progress |= engine.process(&mut inner, || None);
            progress |= self.pump.write(&mut inner, |data| {
                self.tx.lock().unwrap().extend(data);
                Poll::Ready(Ok(data.len()))
            });
            if !progress {
                break;
            }
            worked = true;
        }
        engine.track(&mut inner);
        engine.end_turn(&mut inner, worked);
        let finished = engine.finished(&mut inner, false);
        drop(inner);
        let jobs: Vec<_> = engine.started().collect();
        for j in jobs {
            run(j);
        }
        engine.apply_actions();
        if finished {
            self.engine.take().unwrap().end();
        }
    }
}

/// A server end (behind `hub`) and a client end, connected through memory.
struct World {
    hub: Arc<Hub>,
    ends: [End; 2],
    client: Peer,
}

impl World {
    fn new(server: Registry<SyncFns>, client: Registry<SyncFns>) -> World {
        let addr = "tcp://127.0.0.1:1".parse().unwrap();
        let config = connection_config(&Config::default(), &addr, 0, 1200).unwrap();
        let hub = Hub::new("server".into(), config.clone(), EndpointConfig::default(), never, None);
        let (up, down): (Pipe, Pipe) = Default::default();
        let accepted = open::accept(&hub, TransportInfo::default(), "memory").expect("admitted");
        let (dialed, peer) = open::dial(
            "client",
            b"",
            config,
            TransportInfo::default(),
            true,
            ReconnectPolicy::default(),
            never,
        )
        .unwrap();
        let ends = [End::new(accepted, server, up.clone(), down.clone()), End::new(dialed, client, down, up)];
        let mut w = World { hub, ends, client: peer.clone() };
        let memory = tandem_runtime::tandem_core::addr::Address::Tcp("memory:0".into());
        w.until(peer::connected(&peer, &memory)).expect("handshake");
        w
    }

    /// Turns both ends until `fut` completes.
    fn until<T>(&mut self, fut: impl Future<Output = T>) -> T {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(fut);
        for _ in 0..1000 {
            if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
                return v;
            }
            for e in &mut self.ends {
                e.turn();
            }
        }
        panic!("no progress after 1000 turns");
    }
}

#[derive(Serialize, Deserialize)]
struct Add {
    a: u32,
    b: u32,
}

const ADD: Unary<Add, u32> = Unary::new(1, 1);
const NOTE: Notification<u32> = Notification::new(1, 2);
const MISSING: Unary<(), ()> = Unary::new(1, 9);
const ELSEWHERE: Unary<(), ()> = Unary::new(2, 1);
const AS_CALL: Unary<u32, ()> = Unary::new(1, 2);
const FAILS: Unary<(), ()> = Unary::new(1, 3);
const INLINE: MethodId = MethodId::new(1, 4);
const PANICS: MethodId = MethodId::new(1, 5);
const WHO: Unary<(), String> = Unary::new(7, 1);

fn server_handlers(notes: Arc<Mutex<Vec<u32>>>) -> Registry<SyncFns> {
    Registry::default()
        .unary(
            ADD.id(),
            unary(|ctx, b| {
                assert_eq!(ctx.peer_name(), "client");
                let r = ADD.decode_request(b).map_err(|e| e.status())?;
                Ok(tandem_runtime::tandem_core::typed::encode_vec(&(r.a + r.b)).unwrap())
            }),
        )
        .notification(NOTE.id(), {
            let f: Arc<NotifyFn> = Arc::new(move |_, b| {
                notes.lock().unwrap().push(NOTE.decode(b).map_err(|e| e.status())?);
                Ok(())
            });
            f
        })
        .unary(FAILS.id(), unary(|_, _| Err(Status::NOT_FOUND)))
        .inline(
            INLINE,
            Arc::new(|cx, b, out| {
                assert_eq!(cx.peer_name(), "client");
                out.extend(b.iter().rev());
                Ok(())
            }),
        )
        .inline(PANICS, Arc::new(|_, _, _| panic!("inline handler panics")))
}

#[test]
fn calls_and_notifications_through_two_engines_with_blocking_handlers() {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let client =
        Registry::default().unary(WHO.id(), unary(|ctx, _| Ok(encode(&ctx.peer_name().to_string()))));
    let mut w = World::new(server_handlers(notes.clone()), client);
    let peer = w.client.clone();
    assert_eq!(peer.state(), LinkState::Connected { resumed: false });
    assert_eq!(w.until(peer.call(&ADD, &Add { a: 2, b: 3 }, Deadline::None)), Ok(5));
    assert_eq!(w.until(peer.notify(&NOTE, &7, Duration::from_secs(5))), Ok(()));
    assert_eq!(*notes.lock().unwrap(), [7]);
    assert_eq!(w.until(peer.call_raw(INLINE, b"abc", Deadline::None)), Ok(b"cba".to_vec()));

    // The hub tracks the client by name; the server calls it back.
    let stats = w.hub.stats();
    assert_eq!((stats.connections, stats.handshaking), (1, 0));
    let back = w.hub.peer("client").expect("registered by name");
    assert_eq!(w.until(back.call(&WHO, &(), Deadline::None)), Ok("server".to_string()));
    assert_eq!(w.hub.peers().len(), 1);
}

#[test]
fn dispatch_decisions_are_the_registrys() {
    let mut w = World::new(server_handlers(Arc::default()), Registry::default());
    let peer = w.client.clone();
    let status = |r: Result<(), CallError>| r.unwrap_err().status();
    assert_eq!(status(w.until(peer.call(&MISSING, &(), Deadline::None))), Status::UNKNOWN_METHOD);
    assert_eq!(status(w.until(peer.call(&ELSEWHERE, &(), Deadline::None))), Status::UNKNOWN_MODULE);
    // A call to a notification method: the wrong kind.
    assert_eq!(status(w.until(peer.call(&AS_CALL, &1, Deadline::None))), Status::UNIMPLEMENTED);
    assert_eq!(status(w.until(peer.call(&FAILS, &(), Deadline::None))), Status::NOT_FOUND);
    let r = w.until(peer.call_raw(PANICS, b"", Deadline::None));
    assert_eq!(r, Err(CallError::from(Status::INTERNAL)));
    // Undecodable request.
    let r = w.until(peer.call_raw(ADD.id(), b"\xff", Deadline::None));
    assert_eq!(r, Err(CallError::from(Status::BAD_PAYLOAD)));
    // The connection survived all of it.
    assert_eq!(w.until(peer.call(&ADD, &Add { a: 1, b: 1 }, Deadline::None)), Ok(2));
}

#[test]
#[should_panic(expected = "method 1/1 is registered twice")]
fn a_method_registered_twice_is_refused() {
    let _ = Registry::<SyncFns>::default()
        .unary(ADD.id(), unary(|_, _| Ok(Vec::new())))
        .inline(ADD.id(), Arc::new(|_, _, _| Ok(())));
}

#[test]
fn a_call_made_from_a_blocking_handler_inherits_its_deadline() {
    // The server's handler calls the client back with `Deadline::Inherit` (sending it without
    // waiting for the answer: this test runs on one thread); the client's handler reports the
    // deadline it received.
    const RELAY: Unary<(), ()> = Unary::new(3, 1);
    const REPORT: Unary<(), ()> = Unary::new(4, 1);
    let sent: Arc<Mutex<Vec<PendingCall<Vec<u8>>>>> = Arc::default();
    let got: Arc<Mutex<Vec<Option<std::time::Instant>>>> = Arc::default();
    let keep = sent.clone();
    let server = Registry::default().unary(
        RELAY.id(),
        unary(move |ctx, _| {
            let req = encode(&());
            let start = ctx.peer().start_call_raw(REPORT.id(), &req, Deadline::Inherit);
            let waker = noop_waker();
            match pin!(start).poll(&mut Context::from_waker(&waker)) {
                Poll::Ready(Ok(pending)) => keep.lock().unwrap().push(pending),
                other => panic!("not sent at once: {other:?}"),
            }
            Ok(encode(&()))
        }),
    );
    let seen = got.clone();
    let client = Registry::default().unary(
        REPORT.id(),
        unary(move |ctx, _| {
            seen.lock().unwrap().push(ctx.deadline());
            Ok(encode(&()))
        }),
    );
    let mut w = World::new(server, client);
    let peer = w.client.clone();
    let at = std::time::Instant::now() + Duration::from_secs(30);
    assert_eq!(w.until(peer.call(&RELAY, &(), Deadline::at(at))), Ok(()));
    let pending = sent.lock().unwrap().pop().expect("the callback was sent");
    assert_eq!(w.until(pending), Ok(encode(&())));
    let d = got.lock().unwrap()[0].expect("the callback carries a deadline");
    // The same instant, up to the wire's encoding (a remaining budget, taken on arrival).
    assert!(d.max(at) - d.min(at) <= Duration::from_secs(1), "{d:?} vs {at:?}");
}

#[test]
fn closing_one_end_closes_both_and_the_hub_forgets_it() {
    let mut w = World::new(server_handlers(Arc::default()), Registry::default());
    let peer = w.client.clone();
    let mut watch = peer.watch_state();
    let server_side = w.hub.peer("client").unwrap();
    peer.close();
    let s = w.until(watch.changed());
    assert!(matches!(s, Some(LinkState::Closed(_))), "{s:?}");
    assert_eq!(w.until(watch.changed()), None);
    let reason = w.until(server_side.closed());
    assert!(reason.is_graceful(), "{reason}");
    drop(server_side);
    for _ in 0..1000 {
        if w.ends.iter().all(|e| e.engine.is_none()) {
            break;
        }
        w.ends.iter_mut().for_each(End::turn);
    }
    assert!(w.ends.iter().all(|e| e.engine.is_none()), "both drivers finished");
    assert_eq!(w.hub.stats().connections, 0);
    assert!(w.hub.peer("client").is_none());
    assert_eq!(
        w.until(peer.call(&ADD, &Add { a: 1, b: 1 }, Deadline::None)),
        Err(CallError::from(Status::UNAVAILABLE))
    );
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    tandem_runtime::tandem_core::typed::encode_vec(v).unwrap()
}
