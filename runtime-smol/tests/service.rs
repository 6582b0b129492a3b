//! Declared services (`tandem_smol::service!`): every method kind generated and called in both
//! directions, schema drift refused with the method named, typed application errors,
//! duplicate registrations refused, and introspection of a running server.

mod common;

use common::{run, within, T};
use futures_lite::StreamExt;
use tandem_smol::dynamic::{self, Value};
use tandem_smol::introspect::{introspection, MethodSchema};
use tandem_smol::tandem_core::typed::MethodKind;
use tandem_smol::{
    Async, Client, ClientConfig, Ctx, HandlerError, Handlers, Peer, Server, ServerConfig, Status,
    StreamReceiver, StreamSender,
};

use tandem_testkit::arm::{arm, drifted, ArmError, Move};

/// Serves the arm; every log line and beep goes to `events`.
struct Arm {
    events: async_channel::Sender<String>,
}

impl arm::Server<Async> for Arm {
    async fn double(&self, _ctx: Ctx, x: i64) -> Result<i64, HandlerError> {
        x.checked_mul(2).ok_or_else(|| HandlerError::new(Status::OUT_OF_RANGE, format!("{x} × 2 overflows")))
    }
    async fn go(&self, _ctx: Ctx, m: Move) -> Result<Move, HandlerError<ArmError>> {
        match m.x {
            x if x > 100 => Err(HandlerError::App(ArmError::Blocked { at: 100 })),
            x if x < 0 => {
                Err(HandlerError::new(Status::INVALID_ARGUMENT, "negative x").with_details(vec![7]))
            }
            _ => Ok(Move { x: m.x + 1, y: m.y }),
        }
    }
    async fn log(&self, _ctx: Ctx, line: String) -> Result<(), HandlerError> {
        if line.is_empty() {
            return Err(HandlerError::new(Status::INVALID_ARGUMENT, "an empty line"));
        }
        self.events.send(format!("log {line}")).await.map_err(|_| Status::UNAVAILABLE)?;
        Ok(())
    }
    async fn beep(&self, _ctx: Ctx, tone: u8) -> Result<(), HandlerError> {
        let _ = self.events.send(format!("beep {tone}")).await;
        Ok(())
    }
    async fn count(&self, _ctx: Ctx, n: u32, mut items: StreamSender<u32>) -> Result<(), HandlerError> {
        for i in 0..n {
            items.send(&i).await?;
        }
        Ok(())
    }
    async fn sum(&self, _ctx: Ctx, start: u64, mut items: StreamReceiver<u64>) -> Result<u64, HandlerError> {
        let mut total = start;
        while let Some(x) = items.recv().await? {
            total += x;
        }
        Ok(total)
    }
    async fn shout(
        &self,
        _ctx: Ctx,
        _: (),
        mut lines: StreamReceiver<String>,
        mut out: StreamSender<String>,
    ) -> Result<(), HandlerError> {
        while let Some(l) = lines.recv().await? {
            out.send(&l.to_uppercase()).await?;
        }
        Ok(())
    }
}

fn arm_handlers(events: async_channel::Sender<String>) -> Handlers {
    Handlers::new().serve(arm::Serve(Arm { events }))
}

/// Calls every method of the arm on `peer` and checks the answers; `events` receives what
/// the serving side's `log` and `beep` saw.
async fn exercise(peer: &Peer, events: &async_channel::Receiver<String>) {
    let arm = arm::Client::new(peer.clone()).with_deadline(T);
    assert_eq!(arm.double(&-5).await, Ok(-10));
    assert_eq!(arm.go(&Move { x: 1, y: 2 }).await, Ok(Move { x: 2, y: 2 }));
    arm.log(&"hello".into()).await.unwrap();
    assert_eq!(within(T, events.recv()).await.unwrap(), "log hello");
    arm.beep(&3).await.unwrap();
    assert_eq!(within(T, events.recv()).await.unwrap(), "beep 3");
    let items: Vec<u32> = within(T, arm.count(&5).await.unwrap().map(Result::unwrap).collect()).await;
    assert_eq!(items, [0, 1, 2, 3, 4]);
    let (mut tx, mut rx) = arm.sum(&100).await.unwrap();
    for i in 1..=10 {
        tx.send(&i).await.unwrap();
    }
    tx.finish().unwrap();
    assert_eq!(within(T, rx.recv()).await, Ok(Some(155)));
    assert_eq!(within(T, rx.recv()).await, Ok(None));
    let (mut tx, mut rx) = arm.shout(&()).await.unwrap();
    for w in ["a", "b"] {
        tx.send(&w.to_string()).await.unwrap();
        assert_eq!(within(T, rx.recv()).await, Ok(Some(w.to_uppercase())));
    }
    drop(tx);
    assert_eq!(within(T, rx.recv()).await, Ok(None));
}

#[test]
fn every_method_kind_is_generated_and_called_in_both_directions() {
    run(T * 3, async {
        let (server_events, server_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), arm_handlers(server_events)).unwrap();
        let (client_events, client_rx) = async_channel::unbounded();
        let addr = server.local_addr().to_string();
        let client =
            Client::connect(&addr, ClientConfig::new("tool"), arm_handlers(client_events)).await.unwrap();
        // Client to server, then server to client over the same connection.
        exercise(client.peer(), &server_rx).await;
        let back = server.wait_for_peer("tool", T).await.expect("the client is connected");
        exercise(&back, &client_rx).await;
        server.shutdown(T).await;
    });
}

#[test]
fn failures_carry_messages_details_and_typed_application_errors() {
    run(T * 2, async {
        let (events, _rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), arm_handlers(events)).unwrap();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("tool"), Handlers::new()).await.unwrap();
        let arm = arm::Client::new(client.peer().clone());
        // The typed application error arrives as the declared type.
        let e = arm.go(&Move { x: 500, y: 0 }).await.unwrap_err();
        assert_eq!(e.status(), Status::APPLICATION_ERROR);
        assert_eq!(e.app(), Some(&ArmError::Blocked { at: 100 }));
        assert_eq!(
            e.to_string(),
            "arm.go on \"arm\": APPLICATION_ERROR (27): application error: Blocked { at: 100 }"
        );
        // A status with a message and details.
        let e = arm.go(&Move { x: -1, y: 0 }).await.unwrap_err();
        assert_eq!(
            (e.status(), e.message(), e.details(), e.app()),
            (Status::INVALID_ARGUMENT, Some("negative x"), &[7][..], None)
        );
        let e = arm.double(&i64::MAX).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("arm.double on \"arm\": OUT_OF_RANGE (20): out of range: {} × 2 overflows", i64::MAX)
        );
        // A notification refused with a message (a status body on a NOTIFY's answer).
        let e = arm.log(&String::new()).await.unwrap_err();
        assert_eq!((e.status(), e.message()), (Status::INVALID_ARGUMENT, Some("an empty line")));
        server.shutdown(T).await;
    });
}

#[test]
fn a_peer_without_error_details_gets_statuses_alone() {
    run(T * 2, async {
        let (events, _rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), arm_handlers(events)).unwrap();
        let addr = server.local_addr().to_string();
        let mut config = ClientConfig::new("old");
        config.connection.features = tandem_smol::tandem_core::Features::SCHEMA_KEYS;
        let client = Client::connect(&addr, config, Handlers::new()).await.unwrap();
        let arm = arm::Client::new(client.peer().clone());
        let e = arm.go(&Move { x: 500, y: 0 }).await.unwrap_err();
        assert_eq!((e.status(), e.app(), e.message()), (Status::APPLICATION_ERROR, None, None));
        let e = arm.log(&String::new()).await.unwrap_err();
        assert_eq!((e.status(), e.message()), (Status::INVALID_ARGUMENT, None));
        assert_eq!(arm.double(&4).await, Ok(8));
        server.shutdown(T).await;
    });
}

#[test]
fn type_drift_is_refused_before_decoding_with_the_method_and_both_keys() {
    run(T * 2, async {
        let (events, events_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), arm_handlers(events)).unwrap();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("drifted"), Handlers::new()).await.unwrap();
        let old = drifted::arm::Client::new(client.peer().clone());
        // The case: -5 × 2 on u64 against i64 would have answered Ok(9).
        let e = old.double(&5).await.unwrap_err();
        assert_eq!(e.status(), Status::SCHEMA_MISMATCH);
        let (theirs, ours) = (arm::double.key().unwrap(), drifted::arm::double.key().unwrap());
        let msg = e.message().expect("a message");
        assert!(
            msg.contains("arm.double")
                && msg.contains(&theirs.to_string())
                && msg.contains(&ours.to_string()),
            "{msg}"
        );
        assert!(e.to_string().starts_with("arm.double on \"arm\": SCHEMA_MISMATCH"), "{e}");
        // A renamed struct field.
        let e = old.go(&drifted::Move { x: 1, z: 2 }).await.unwrap_err();
        assert_eq!(e.status(), Status::SCHEMA_MISMATCH);
        assert!(e.message().unwrap().contains("arm.go"), "{e}");
        // A drifted signal is dropped (it cannot be answered); the next good one arrives.
        old.beep(&300).await.unwrap();
        let good = arm::Client::new(client.peer().clone());
        good.beep(&1).await.unwrap();
        assert_eq!(within(T, events_rx.recv()).await.unwrap(), "beep 1");
        // A hand-written declaration without a key is not checked (raw control).
        let raw = tandem_smol::Unary::<i64, i64>::new(70, 1);
        assert_eq!(client.call(&raw, &21, T).await, Ok(42));
        server.shutdown(T).await;
    });
}

#[test]
fn duplicate_methods_and_modules_are_refused_when_the_handler_set_is_built() {
    let (events, _rx) = async_channel::unbounded();
    let e = arm_handlers(events.clone()).try_serve(arm::Serve(Arm { events: events.clone() })).unwrap_err();
    assert_eq!(
        e.to_string(),
        "module 70 is served by two services: arm and arm; give each service its own module id"
    );
    let raw = Handlers::new().raw_unary(arm::double.id(), |_, b| async move { Ok(b) });
    let e = raw.try_serve(arm::Serve(Arm { events })).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("70/1 is registered twice: a unary handler and `arm.double`"), "{text}");
}

#[test]
#[should_panic(expected = "module 70 is served by two services: arm and arm")]
fn serve_panics_naming_both_services() {
    let (events, _rx) = async_channel::unbounded();
    let _ = arm_handlers(events.clone()).serve(arm::Serve(Arm { events }));
}

#[test]
fn introspection_lists_a_running_server_and_a_request_is_encoded_from_its_schema_alone() {
    run(T * 2, async {
        let (events, events_rx) = async_channel::unbounded();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), arm_handlers(events)).unwrap();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("tool"), Handlers::new()).await.unwrap();
        let intro = introspection::Client::new(client.peer().clone()).with_deadline(T);
        let services = intro.services(&()).await.unwrap();
        let names: Vec<_> = services.iter().map(|s| (s.name.as_str(), s.module)).collect();
        assert_eq!(names, [("arm", 70), ("introspection", introspection::MODULE)]);
        assert_eq!(services[0].doc, " A robot arm, declared once for both ends.\n");
        let methods = intro.methods(&70).await.unwrap();
        let listed: Vec<_> = methods.iter().map(|m| (m.name.as_str(), m.id, m.kind)).collect();
        assert_eq!(
            listed,
            [
                ("double", 1, MethodKind::Unary),
                ("go", 2, MethodKind::Unary),
                ("log", 3, MethodKind::Notify),
                ("beep", 4, MethodKind::Signal),
                ("count", 5, MethodKind::ServerStream),
                ("sum", 6, MethodKind::ClientStream),
                ("shout", 7, MethodKind::Bidi),
            ]
        );
        assert_eq!(methods[1].key, arm::go.key().unwrap().0);
        assert_eq!(methods[1].doc, " Moves the arm; refuses beyond x = 100.\n");
        let e = intro.methods(&71).await.unwrap_err();
        assert_eq!(e.status(), Status::NOT_FOUND);

        // A tool that knows nothing of `Move`: it encodes a request from the schema it was
        // given, calls with the key it was given, and decodes the answer the same way.
        let MethodSchema { request, response, error, .. } = intro.schema(&(70, 2)).await.unwrap();
        assert!(error.is_some());
        let value = Value::Struct(vec![("x".into(), Value::Int(41)), ("y".into(), Value::Int(-3))]);
        let bytes = dynamic::encode(&request, &value).unwrap();
        let key = tandem_smol::SchemaKey(methods[1].key);
        let id = tandem_smol::MethodId::new(70, 2);
        let answer = client.peer().call_raw_keyed(id, key, &bytes, T).await.unwrap();
        let got = dynamic::decode(&response.unwrap(), &answer).unwrap();
        assert_eq!(got, Value::Struct(vec![("x".into(), Value::Int(42)), ("y".into(), Value::Int(-3))]));
        // The same call with another method's key is refused before anything is decoded.
        let wrong = tandem_smol::SchemaKey(methods[0].key);
        let e = client.peer().call_raw_keyed(id, wrong, &bytes, T).await.unwrap_err();
        assert_eq!(e.status(), Status::SCHEMA_MISMATCH);
        // Notifications, signals and streams carry their keys the same way, checked alike.
        let (peer, key) = (client.peer(), |i: usize| tandem_smol::SchemaKey(methods[i].key));
        let log = tandem_smol::MethodId::new(70, 3);
        peer.notify_raw_keyed(log, key(2), b"\x05keyed", T).await.unwrap();
        assert_eq!(within(T, events_rx.recv()).await.unwrap(), "log keyed");
        let e = peer.notify_raw_keyed(log, wrong, b"\x01x", T).await.unwrap_err();
        assert_eq!(e.status(), Status::SCHEMA_MISMATCH);
        peer.signal_raw_keyed(tandem_smol::MethodId::new(70, 4), key(3), &[5]).await.unwrap();
        assert_eq!(within(T, events_rx.recv()).await.unwrap(), "beep 5");
        let count = tandem_smol::MethodId::new(70, 5);
        let (up, mut rx) = peer.open_stream_raw_keyed(count, key(4), &[2], T).await.unwrap();
        assert_eq!(rx.recv().await, Ok(Some(vec![0])));
        assert_eq!(rx.recv().await, Ok(Some(vec![1])));
        assert_eq!(rx.recv().await, Ok(None));
        let (tx, mut rx) = peer.open_stream_raw_keyed(count, wrong, &[2], T).await.unwrap();
        assert_eq!(rx.recv().await.unwrap_err().status(), Status::SCHEMA_MISMATCH);
        drop((tx, rx, up));
        server.shutdown(T).await;
    });
}

#[test]
fn introspection_can_be_turned_off() {
    run(T * 2, async {
        let (events, _rx) = async_channel::unbounded();
        let handlers = arm_handlers(events).introspection(false);
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), handlers).unwrap();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("tool"), Handlers::new()).await.unwrap();
        let intro = introspection::Client::new(client.peer().clone()).with_deadline(T);
        assert_eq!(intro.services(&()).await.unwrap_err().status(), Status::UNKNOWN_MODULE);
        server.shutdown(T).await;
    });
}
