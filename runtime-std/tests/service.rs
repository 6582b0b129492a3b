//! Declared services (`tandem_std::service!`) on the blocking runtime: every method kind
//! generated and called in both directions, schema drift refused with the method named, typed
//! application errors and status bodies, a peer without error details, duplicate registrations
//! refused, and introspection of a running server. The blocking twin of tandem-smol's
//! `tests/service.rs`: same declarations, same assertions.

mod common;

use common::{bounded, T};
use std::sync::mpsc::{channel, Receiver, Sender};
use tandem_std::dynamic::{self, Value};
use tandem_std::introspect::{introspection, MethodSchema};
use tandem_std::tandem_core::typed::MethodKind;
use tandem_std::{
    Blocking, Client, ClientConfig, Ctx, HandlerError, Handlers, Peer, Server, ServerConfig, Status,
    StreamReceiver, StreamSender,
};

use tandem_testkit::arm::{arm, drifted, ArmError, Move};

/// Serves the arm; every log line and beep goes to `events`.
struct Arm {
    events: Sender<String>,
}

impl arm::BlockingServer<Blocking> for Arm {
    fn double(&self, _ctx: Ctx, x: i64) -> Result<i64, HandlerError> {
        x.checked_mul(2).ok_or_else(|| HandlerError::new(Status::OUT_OF_RANGE, format!("{x} × 2 overflows")))
    }
    fn go(&self, _ctx: Ctx, m: Move) -> Result<Move, HandlerError<ArmError>> {
        match m.x {
            x if x > 100 => Err(HandlerError::App(ArmError::Blocked { at: 100 })),
            x if x < 0 => {
                Err(HandlerError::new(Status::INVALID_ARGUMENT, "negative x").with_details(vec![7]))
            }
            _ => Ok(Move { x: m.x + 1, y: m.y }),
        }
    }
    fn log(&self, _ctx: Ctx, line: String) -> Result<(), HandlerError> {
        if line.is_empty() {
            return Err(HandlerError::new(Status::INVALID_ARGUMENT, "an empty line"));
        }
        self.events.send(format!("log {line}")).map_err(|_| Status::UNAVAILABLE)?;
        Ok(())
    }
    fn beep(&self, _ctx: Ctx, tone: u8) -> Result<(), HandlerError> {
        let _ = self.events.send(format!("beep {tone}"));
        Ok(())
    }
    fn count(&self, _ctx: Ctx, n: u32, mut items: StreamSender<u32>) -> Result<(), HandlerError> {
        for i in 0..n {
            items.send(&i)?;
        }
        Ok(())
    }
    fn sum(&self, _ctx: Ctx, start: u64, items: StreamReceiver<u64>) -> Result<u64, HandlerError> {
        let mut total = start;
        for x in items {
            total += x?;
        }
        Ok(total)
    }
    fn shout(
        &self,
        _ctx: Ctx,
        _: (),
        lines: StreamReceiver<String>,
        mut out: StreamSender<String>,
    ) -> Result<(), HandlerError> {
        for l in lines {
            out.send(&l?.to_uppercase())?;
        }
        Ok(())
    }
}

fn arm_handlers(events: Sender<String>) -> Handlers {
    Handlers::new().serve(arm::Serve(Arm { events }))
}

/// Calls every method of the arm on `peer` and checks the answers; `events` receives what
/// the serving side's `log` and `beep` saw.
fn exercise(peer: &Peer, events: &Receiver<String>) {
    let arm = arm::BlockingClient::new(peer.clone()).with_deadline(T);
    assert_eq!(arm.double(&-5), Ok(-10));
    assert_eq!(arm.go(&Move { x: 1, y: 2 }), Ok(Move { x: 2, y: 2 }));
    arm.log(&"hello".into()).unwrap();
    assert_eq!(events.recv_timeout(T).unwrap(), "log hello");
    arm.beep(&3).unwrap();
    assert_eq!(events.recv_timeout(T).unwrap(), "beep 3");
    let items: Vec<u32> = arm.count(&5).unwrap().map(Result::unwrap).collect();
    assert_eq!(items, [0, 1, 2, 3, 4]);
    let (mut tx, mut rx) = arm.sum(&100).unwrap();
    for i in 1..=10 {
        tx.send(&i).unwrap();
    }
    tx.finish().unwrap();
    assert_eq!(rx.recv(), Ok(Some(155)));
    assert_eq!(rx.recv(), Ok(None));
    let (mut tx, mut rx) = arm.shout(&()).unwrap();
    for w in ["a", "b"] {
        tx.send(&w.to_string()).unwrap();
        assert_eq!(rx.recv(), Ok(Some(w.to_uppercase())));
    }
    drop(tx);
    assert_eq!(rx.recv(), Ok(None));
}

/// A server serving the arm (its events go to the receiver) and a client `name` on it.
fn serve_arm(name: &str, config: Option<ClientConfig>) -> (Server, Client, Receiver<String>) {
    let (events, rx) = channel();
    let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), arm_handlers(events)).unwrap();
    let addr = server.local_addr().to_string();
    let config = config.unwrap_or_else(|| ClientConfig::new(name));
    let client = Client::connect(&addr, config, Handlers::new()).unwrap();
    (server, client, rx)
}

#[test]
fn every_method_kind_is_generated_and_called_in_both_directions() {
    bounded(30, || {
        let (server_events, server_rx) = channel();
        let server =
            Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), arm_handlers(server_events)).unwrap();
        let (client_events, client_rx) = channel();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("tool"), arm_handlers(client_events)).unwrap();
        // Client to server, then server to client over the same connection.
        exercise(client.peer(), &server_rx);
        let back = server.wait_for_peer("tool", T).expect("the client is connected");
        exercise(&back, &client_rx);
        server.shutdown(T);
    });
}

#[test]
fn failures_carry_messages_details_and_typed_application_errors() {
    bounded(20, || {
        let (server, client, _rx) = serve_arm("tool", None);
        let arm = arm::BlockingClient::new(client.peer().clone());
        // The typed application error arrives as the declared type.
        let e = arm.go(&Move { x: 500, y: 0 }).unwrap_err();
        assert_eq!(e.status(), Status::APPLICATION_ERROR);
        assert_eq!(e.app(), Some(&ArmError::Blocked { at: 100 }));
        assert_eq!(
            e.to_string(),
            "arm.go on \"arm\": APPLICATION_ERROR (27): application error: Blocked { at: 100 }"
        );
        // A status with a message and details.
        let e = arm.go(&Move { x: -1, y: 0 }).unwrap_err();
        assert_eq!(
            (e.status(), e.message(), e.details(), e.app()),
            (Status::INVALID_ARGUMENT, Some("negative x"), &[7][..], None)
        );
        let e = arm.double(&i64::MAX).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("arm.double on \"arm\": OUT_OF_RANGE (20): out of range: {} × 2 overflows", i64::MAX)
        );
        // A notification refused with a message (a status body on a NOTIFY's answer).
        let e = arm.log(&String::new()).unwrap_err();
        assert_eq!((e.status(), e.message()), (Status::INVALID_ARGUMENT, Some("an empty line")));
        server.shutdown(T);
    });
}

#[test]
fn a_peer_without_error_details_gets_statuses_alone() {
    bounded(20, || {
        let mut config = ClientConfig::new("old");
        config.connection.features = tandem_std::tandem_core::Features::SCHEMA_KEYS;
        let (server, client, _rx) = serve_arm("old", Some(config));
        let arm = arm::BlockingClient::new(client.peer().clone());
        let e = arm.go(&Move { x: 500, y: 0 }).unwrap_err();
        assert_eq!((e.status(), e.app(), e.message()), (Status::APPLICATION_ERROR, None, None));
        let e = arm.log(&String::new()).unwrap_err();
        assert_eq!((e.status(), e.message()), (Status::INVALID_ARGUMENT, None));
        assert_eq!(arm.double(&4), Ok(8));
        server.shutdown(T);
    });
}

#[test]
fn type_drift_is_refused_before_decoding_with_the_method_and_both_keys() {
    bounded(20, || {
        let (server, client, events_rx) = serve_arm("drifted", None);
        let old = drifted::arm::BlockingClient::new(client.peer().clone());
        // The case: -5 × 2 on u64 against i64 would have answered Ok(9).
        let e = old.double(&5).unwrap_err();
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
        let e = old.go(&drifted::Move { x: 1, z: 2 }).unwrap_err();
        assert_eq!(e.status(), Status::SCHEMA_MISMATCH);
        assert!(e.message().unwrap().contains("arm.go"), "{e}");
        // A drifted notification is refused too; nothing reaches the handler.
        let e = old.log(&b"hello".to_vec()).unwrap_err();
        assert_eq!(e.status(), Status::SCHEMA_MISMATCH);
        // A drifted signal is dropped (it cannot be answered); the next good one arrives.
        old.beep(&300).unwrap();
        let good = arm::BlockingClient::new(client.peer().clone());
        good.beep(&1).unwrap();
        assert_eq!(events_rx.recv_timeout(T).unwrap(), "beep 1");
        // A hand-written declaration without a key is not checked (raw control).
        let raw = tandem_std::Unary::<i64, i64>::new(70, 1);
        assert_eq!(client.call(&raw, &21, T), Ok(42));
        server.shutdown(T);
    });
}

#[test]
fn a_declared_method_registered_by_hand_is_checked_too() {
    bounded(20, || {
        // `Handlers::unary` / `notification` with the declarations the macro generated: their
        // keys are checked as `serve` checks them.
        let handlers = Handlers::new()
            .unary(&arm::double, |_, x: i64| Ok(x * 2))
            .notification(&arm::log, |_, _line: String| Ok(()));
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), handlers).unwrap();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("drifted"), Handlers::new()).unwrap();
        assert_eq!(client.call(&arm::double, &-4, T), Ok(-8));
        let old = drifted::arm::BlockingClient::new(client.peer().clone());
        assert_eq!(old.double(&5).unwrap_err().status(), Status::SCHEMA_MISMATCH);
        assert_eq!(old.log(&vec![1]).unwrap_err().status(), Status::SCHEMA_MISMATCH);
        // The error names the method of the declaration.
        let e = client.call_raw(arm::double.id(), &[0xff; 11], T).unwrap_err();
        assert_eq!(e.status(), Status::BAD_PAYLOAD);
        assert!(e.message().unwrap().contains("arm.double"), "{e}");
        server.shutdown(T);
    });
}

#[test]
fn duplicate_methods_and_modules_are_refused_when_the_handler_set_is_built() {
    let (events, _rx) = channel();
    let e = arm_handlers(events.clone()).try_serve(arm::Serve(Arm { events: events.clone() })).unwrap_err();
    assert_eq!(
        e.to_string(),
        "module 70 is served by two services: arm and arm; give each service its own module id"
    );
    let raw = Handlers::new().raw_unary(arm::double.id(), |_, b| Ok(b));
    let e = raw.try_serve(arm::Serve(Arm { events })).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("70/1 is registered twice: a unary handler and `arm.double`"), "{text}");
}

#[test]
#[should_panic(expected = "module 70 is served by two services: arm and arm")]
fn serve_panics_naming_both_services() {
    let (events, _rx) = channel();
    let _ = arm_handlers(events.clone()).serve(arm::Serve(Arm { events }));
}

#[test]
fn introspection_lists_a_running_server_and_a_request_is_encoded_from_its_schema_alone() {
    bounded(20, || {
        let (server, client, events) = serve_arm("tool", None);
        let intro = introspection::BlockingClient::new(client.peer().clone()).with_deadline(T);
        let services = intro.services(&()).unwrap();
        let names: Vec<_> = services.iter().map(|s| (s.name.as_str(), s.module)).collect();
        assert_eq!(names, [("arm", 70), ("introspection", introspection::MODULE)]);
        assert_eq!(services[0].doc, " A robot arm, declared once for both ends.\n");
        let methods = intro.methods(&70).unwrap();
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
        let e = intro.methods(&71).unwrap_err();
        assert_eq!(e.status(), Status::NOT_FOUND);

        // A tool that knows nothing of `Move`: it encodes a request from the schema it was
        // given, calls with the key it was given, and decodes the answer the same way.
        let MethodSchema { request, response, error, .. } = intro.schema(&(70, 2)).unwrap();
        assert!(error.is_some());
        let value = Value::Struct(vec![("x".into(), Value::Int(41)), ("y".into(), Value::Int(-3))]);
        let bytes = dynamic::encode(&request, &value).unwrap();
        let key = tandem_std::SchemaKey(methods[1].key);
        let id = tandem_std::MethodId::new(70, 2);
        let answer = client.peer().call_raw_keyed(id, key, &bytes, T).unwrap();
        let got = dynamic::decode(&response.unwrap(), &answer).unwrap();
        assert_eq!(got, Value::Struct(vec![("x".into(), Value::Int(42)), ("y".into(), Value::Int(-3))]));
        // The same call with another method's key is refused before anything is decoded.
        let wrong = tandem_std::SchemaKey(methods[0].key);
        let e = client.peer().call_raw_keyed(id, wrong, &bytes, T).unwrap_err();
        assert_eq!(e.status(), Status::SCHEMA_MISMATCH);
        // Notifications, signals and streams carry their keys the same way, checked alike.
        let (peer, key) = (client.peer(), |i: usize| tandem_std::SchemaKey(methods[i].key));
        let log = tandem_std::MethodId::new(70, 3);
        peer.notify_raw_keyed(log, key(2), b"\x05keyed", T).unwrap();
        assert_eq!(events.recv_timeout(T).unwrap(), "log keyed");
        assert_eq!(
            peer.notify_raw_keyed(log, wrong, b"\x01x", T).unwrap_err().status(),
            Status::SCHEMA_MISMATCH
        );
        peer.signal_raw_keyed(tandem_std::MethodId::new(70, 4), key(3), &[5]).unwrap();
        assert_eq!(events.recv_timeout(T).unwrap(), "beep 5");
        let count = tandem_std::MethodId::new(70, 5);
        let (up, mut rx) = peer.open_stream_raw_keyed(count, key(4), &[2], T).unwrap();
        assert_eq!(rx.by_ref().map(Result::unwrap).collect::<Vec<_>>(), [vec![0], vec![1]]);
        let (tx, mut rx) = peer.open_stream_raw_keyed(count, wrong, &[2], T).unwrap();
        assert_eq!(rx.recv().unwrap_err().status(), Status::SCHEMA_MISMATCH);
        drop((tx, rx, up));
        server.shutdown(T);
    });
}

#[test]
fn introspection_can_be_turned_off() {
    bounded(20, || {
        let (events, _rx) = channel();
        let handlers = arm_handlers(events).introspection(false);
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("arm"), handlers).unwrap();
        let addr = server.local_addr().to_string();
        let client = Client::connect(&addr, ClientConfig::new("tool"), Handlers::new()).unwrap();
        let intro = introspection::BlockingClient::new(client.peer().clone()).with_deadline(T);
        assert_eq!(intro.services(&()).unwrap_err().status(), Status::UNKNOWN_MODULE);
        server.shutdown(T);
    });
}
