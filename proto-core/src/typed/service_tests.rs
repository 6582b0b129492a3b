//! [`service!`](crate::service) and the core's [`Dispatcher`]: declarations, keys, and a service
//! served by the core alone to a caller that declared it differently.

use postcard_schema::Schema;
use serde::{Deserialize, Serialize};
use std::string::String;
use std::vec::Vec;

use super::{decode, method_key, CoreCtx, CoreError, Dispatcher, ItemSink, MethodKind, NoError};
use crate::frame::{Decoded, Frame};
use crate::status::StatusBody;
use crate::{Config, Connection, Event, Identity, Instant, RequestKind, Role, Status};

#[derive(Serialize, Deserialize, Schema, Debug, PartialEq, Clone)]
pub struct Move {
    pub x: i32,
    pub y: i32,
}

#[derive(Serialize, Deserialize, Schema, Debug, PartialEq)]
pub enum ArmError {
    Blocked { at: i32 },
    Busy,
}

crate::service! {
    /// A robot arm.
    pub service arm = 7 {
        /// Doubles a number.
        unary double(i64) -> i64 = 1;
        /// Moves; fails with a typed error.
        unary go(Move) -> Move | ArmError = 2;
        /// Logged reliably.
        notify log(String) = 3;
        /// Fire and forget.
        signal beep(u8) = 4;
        /// Counts up to n.
        server_stream count(u32) -> u32 = 5;
        /// Sums items.
        client_stream sum((), u64) -> u64 = 6;
        /// Echoes items.
        bidi echo((), String) -> String = 7;
    }
}

/// The same service as another build declared it: `double` on `u64`, `Move` with a field
/// renamed.
mod drifted {
    use super::*;

    #[derive(Serialize, Deserialize, Schema, Debug, PartialEq, Clone)]
    pub struct Move {
        pub x: i32,
        pub z: i32,
    }

    crate::service! {
        pub service arm = 7 {
            unary double(u64) -> u64 = 1;
            unary go(Move) -> Move | ArmError = 2;
            notify log(String) = 3;
        }
    }
}

#[test]
fn declarations_carry_ids_paths_keys_docs_and_schemas() {
    assert_eq!((arm::NAME, arm::MODULE), ("arm", 7));
    assert_eq!(arm::double.id(), crate::MethodId::new(7, 1));
    assert_eq!(arm::double.path(), "arm.double");
    assert_eq!(arm::double.key(), Some(method_key::<(i64, i64, NoError)>("arm.double")));
    assert_eq!(arm::log.key(), Some(method_key::<(String,)>("arm.log")));
    assert_eq!(arm::count.key(), Some(method_key::<(u32, (), u32)>("arm.count")));
    let def = arm::DEF;
    assert_eq!(def.doc, " A robot arm.\n");
    let kinds: Vec<_> = def.methods.iter().map(|m| (m.name, m.id.method, m.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("double", 1, MethodKind::Unary),
            ("go", 2, MethodKind::Unary),
            ("log", 3, MethodKind::Notify),
            ("beep", 4, MethodKind::Signal),
            ("count", 5, MethodKind::ServerStream),
            ("sum", 6, MethodKind::ClientStream),
            ("echo", 7, MethodKind::Bidi),
        ]
    );
    let go = def.method(2).unwrap();
    assert_eq!(go.doc, " Moves; fails with a typed error.\n");
    assert_eq!(go.request, Move::SCHEMA);
    assert_eq!(go.response, Some(Move::SCHEMA));
    assert_eq!(go.error, Some(ArmError::SCHEMA));
    assert_eq!(def.method(1).unwrap().error, None, "no error declared");
    let sum = def.method(6).unwrap();
    assert_eq!((sum.up, sum.down), (Some(u64::SCHEMA), Some(u64::SCHEMA)));
    assert_eq!(def.method(5).unwrap().up, None, "a server stream takes no items");
}

#[test]
fn type_drift_changes_the_key() {
    assert_ne!(arm::double.key(), drifted::arm::double.key(), "i64 against u64");
    assert_ne!(arm::go.key(), drifted::arm::go.key(), "a renamed field");
    assert_eq!(arm::log.key(), drifted::arm::log.key(), "same declaration, same key");
    // The key covers the path too: the same types under another name differ.
    assert_ne!(
        method_key::<(i64, i64, NoError)>("arm.double"),
        method_key::<(i64, i64, NoError)>("arm.triple")
    );
}

/// Keys listed in SPEC.md §7.10.4, recomputed.
#[test]
fn spec_key_examples() {
    let hex = |k: crate::SchemaKey| std::format!("{k}");
    let spec = include_str!("../../../SPEC.md");
    let all: Vec<_> = [
        ("example.add", hex(method_key::<((u32, u32), u32, NoError)>("example.add"))),
        ("example.double (i64)", hex(method_key::<(i64, i64, NoError)>("example.double"))),
        ("example.double (u64)", hex(method_key::<(u64, u64, NoError)>("example.double"))),
        ("example.log", hex(method_key::<(String,)>("example.log"))),
    ]
    .into_iter()
    .collect();
    for (path, key) in &all {
        std::println!("{path}: {key}");
    }
    for (path, key) in all {
        std::println!("{path}: {key}");
        assert!(spec.contains(&key), "SPEC.md §7.10.4 lacks the key of {path}: {key}");
    }
}

// ---- the core alone ---------------------------------------------------------------------------

/// The arm, served by the core dispatcher.
#[derive(Default)]
struct Arm {
    logged: Vec<String>,
    beeps: u32,
}

impl arm::CoreServer for Arm {
    fn double(&mut self, _: &CoreCtx, x: i64) -> Result<i64, CoreError> {
        x.checked_mul(2).ok_or(CoreError::Status { status: Status::OUT_OF_RANGE, message: "overflow" })
    }
    fn go(&mut self, _: &CoreCtx, m: Move) -> Result<Move, CoreError<ArmError>> {
        if m.x > 100 {
            return Err(CoreError::App(ArmError::Blocked { at: 100 }));
        }
        Ok(Move { x: m.x + 1, y: m.y })
    }
    fn log(&mut self, _: &CoreCtx, s: String) -> Result<(), CoreError> {
        self.logged.push(s);
        Ok(())
    }
    fn beep(&mut self, _: &CoreCtx, _: u8) -> Result<(), CoreError> {
        self.beeps += 1;
        Ok(())
    }
    fn count(&mut self, _: &CoreCtx, n: u32, items: &mut ItemSink<'_, '_, u32>) -> Result<(), CoreError> {
        for i in 0..n {
            items.send(&i).map_err(|_| Status::RESOURCE_EXHAUSTED)?;
        }
        Ok(())
    }
}

struct Wire {
    now: Instant,
    client: Connection<'static>,
    server: Connection<'static>,
    arm: arm::Serve<Arm>,
    req: Vec<u8>,
    reply: Vec<u8>,
    /// Events the client saw.
    got: Vec<crate::OwnedEvent>,
}

impl Wire {
    fn new() -> Self {
        let now = Instant::ZERO;
        let me = |n: &'static str| Identity { name: n.as_bytes(), ..Identity::default() };
        let client = Connection::new(Role::Dialer, Config::default(), me("tool"), now).unwrap();
        let server = Connection::new(Role::Acceptor, Config::default(), me("arm"), now).unwrap();
        let mut w = Wire {
            now,
            client,
            server,
            arm: arm::Serve(Arm::default()),
            req: std::vec![0; 4096],
            reply: std::vec![0; 4096],
            got: Vec::new(),
        };
        w.run();
        w.got.clear();
        w
    }

    fn run(&mut self) {
        let mut buf = std::vec![0u8; 1 << 16];
        for _ in 0..8 {
            loop {
                let n = self.client.poll_transmit(self.now, &mut buf);
                if n == 0 {
                    break;
                }
                assert_eq!(self.server.handle_input(self.now, &buf[..n]), n);
            }
            let mut d = Dispatcher::new(&mut self.req, &mut self.reply);
            d.drive(&mut self.server, self.now, &mut self.arm, |_| {});
            loop {
                let n = self.server.poll_transmit(self.now, &mut buf);
                if n == 0 {
                    break;
                }
                assert_eq!(self.client.handle_input(self.now, &buf[..n]), n);
            }
            while let Some(e) = self.client.poll_event(self.now) {
                self.got.push(e.into());
            }
        }
    }

    /// Calls `m` as the caller declared it; returns the response's status and payload.
    fn call<Req: Serialize, Resp, E>(
        &mut self,
        m: &super::Unary<Req, Resp, E>,
        req: &Req,
    ) -> (Status, Vec<u8>) {
        let body = super::encode_vec(req).unwrap();
        let id = self.client.open_keyed(self.now, RequestKind::Call, m.id(), m.key(), &body, None).unwrap();
        self.run();
        let got = core::mem::take(&mut self.got);
        got.into_iter()
            .find_map(|e| match e {
                crate::OwnedEvent::Response { id: i, status, payload } if i == id => Some((status, payload)),
                _ => None,
            })
            .expect("a response")
    }
}

fn message(body: &[u8]) -> String {
    String::from(core::str::from_utf8(StatusBody::decode(body).expect("a status body").message).unwrap())
}

#[test]
fn the_core_alone_serves_a_declared_service() {
    let mut w = Wire::new();
    let (st, body) = w.call(&arm::double, &-5i64);
    assert_eq!((st, decode::<i64>(&body)), (Status::OK, Ok(-10)));
    let (st, body) = w.call(&arm::go, &Move { x: 1, y: 2 });
    assert_eq!((st, decode::<Move>(&body)), (Status::OK, Ok(Move { x: 2, y: 2 })));
    // A status with a message.
    let (st, body) = w.call(&arm::double, &i64::MAX);
    assert_eq!((st, message(&body).as_str()), (Status::OUT_OF_RANGE, "overflow"));
    // The typed application error arrives as the declared type.
    let (st, body) = w.call(&arm::go, &Move { x: 500, y: 0 });
    assert_eq!(st, Status::APPLICATION_ERROR);
    let b = StatusBody::decode(&body).unwrap();
    assert_eq!(decode::<ArmError>(b.details), Ok(ArmError::Blocked { at: 100 }));
    // Notifications (both ways of sending them) and a server stream.
    let now = w.now;
    let log = arm::log;
    let body = super::encode_vec(&String::from("hello")).unwrap();
    w.client.open_keyed(now, RequestKind::Notify, log.id(), log.key(), &body, None).unwrap();
    w.client.signal_keyed(arm::beep.id(), arm::beep.key(), &[3]).unwrap();
    let s = w.client.open_keyed(
        now,
        RequestKind::Stream { half_closed: true },
        arm::count.id(),
        arm::count.key(),
        &[3],
        None,
    );
    let s = s.unwrap();
    w.run();
    assert_eq!(w.arm.0.logged, ["hello"]);
    assert_eq!(w.arm.0.beeps, 1);
    let items: Vec<_> = w
        .got
        .iter()
        .filter_map(|e| match e {
            crate::OwnedEvent::StreamData { id, payload } if *id == s => {
                Some(decode::<u32>(payload).unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(items, [0, 1, 2]);
    assert!(w
        .got
        .iter()
        .any(|e| matches!(e, crate::OwnedEvent::StreamFin { id, status: Status::OK } if *id == s)));
    // Kinds the core does not serve.
    let r = w.client.open_keyed(
        now,
        RequestKind::Stream { half_closed: false },
        arm::sum.id(),
        arm::sum.key(),
        &[],
        None,
    );
    let r = r.unwrap();
    w.run();
    assert!(w.got.iter().any(
        |e| matches!(e, crate::OwnedEvent::StreamReset { id, status: Status::UNIMPLEMENTED } if *id == r)
    ));
}

#[test]
fn the_core_alone_refuses_drift_before_decoding_and_names_the_method_and_both_keys() {
    let mut w = Wire::new();
    // -5 as u64 would decode as a valid i64 on the other side (zigzag): it is refused instead.
    let (st, body) = w.call(&drifted::arm::double, &5u64);
    assert_eq!(st, Status::SCHEMA_MISMATCH);
    let msg = message(&body);
    let (theirs, ours) = (drifted::arm::double.key().unwrap(), arm::double.key().unwrap());
    assert!(msg.contains("arm.double"), "{msg}");
    assert!(msg.contains(&std::format!("{theirs}")) && msg.contains(&std::format!("{ours}")), "{msg}");
    // A changed struct field.
    let (st, body) = w.call(&drifted::arm::go, &drifted::Move { x: 1, z: 2 });
    assert_eq!(st, Status::SCHEMA_MISMATCH);
    assert!(message(&body).contains("arm.go"));
    // Without a key (a caller that declares nothing) nothing is checked.
    let (st, _) = w.call(&super::Unary::<i64, i64>::new(7, 1), &4);
    assert_eq!(st, Status::OK);
    // Unknown method, wrong kind.
    let (st, body) = w.call(&super::Unary::<i64, i64>::new(7, 99), &4);
    assert_eq!((st, message(&body).as_str()), (Status::UNKNOWN_METHOD, "arm has no method 99"));
    let (st, _) = w.call(&super::Unary::<String, ()>::new(7, 3), &String::new());
    assert_eq!(st, Status::UNIMPLEMENTED);
    let (st, body) = w.call(&super::Unary::<(), ()>::new(7, 1), &());
    assert_eq!(st, Status::BAD_PAYLOAD);
    assert!(message(&body).contains("arm.double"));
}

#[test]
fn the_dispatcher_hands_other_events_to_the_application() {
    let mut w = Wire::new();
    let now = w.now;
    // The server calls the client: its response is an event for the application.
    let id = w.server.call(now, crate::MethodId::new(1, 1), b"x", None).unwrap();
    let mut buf = std::vec![0u8; 4096];
    let n = w.server.poll_transmit(now, &mut buf);
    assert_eq!(w.client.handle_input(now, &buf[..n]), n);
    let Some(Event::Request { id: rid, .. }) = w.client.poll_event(now) else { panic!("request") };
    w.client.respond(rid, Status::OK, b"y").unwrap();
    let n = w.client.poll_transmit(now, &mut buf);
    assert_eq!(w.server.handle_input(now, &buf[..n]), n);
    let mut seen = Vec::new();
    let mut d = Dispatcher::new(&mut w.req, &mut w.reply);
    d.drive(&mut w.server, now, &mut w.arm, |e| seen.push(crate::OwnedEvent::from(e)));
    assert_eq!(seen, [crate::OwnedEvent::Response { id, status: Status::OK, payload: b"y".to_vec() }]);
    let _ = Frame::decode(&[], 0).map(|d| matches!(d, Decoded::Incomplete(_)));
}

// ---- the blocking flavor, on a stand-in runtime ------------------------------------------------

/// A blocking runtime reduced to what the generated code calls: requests are (method, bytes),
/// outcomes (status, bytes); stream methods are not exercised here.
struct Mock;

impl super::rt::BlockingRuntime for Mock {
    type Ctx = ();
    type Receiver<T: serde::de::DeserializeOwned + Send + 'static> = Vec<T>;
    type Sender<T: Serialize + Send + 'static> = Vec<T>;
    type Error<E: Send + 'static> = CoreError<E>;
    type Incoming = (u32, Vec<u8>);
    type Outcome = (Status, Vec<u8>);

    fn method(incoming: &(u32, Vec<u8>)) -> u32 {
        incoming.0
    }
    fn unary<Req, Resp, E, F>(
        incoming: (u32, Vec<u8>),
        _: &'static super::Unary<Req, Resp, E>,
        f: F,
    ) -> (Status, Vec<u8>)
    where
        Req: serde::de::DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce((), Req) -> Result<Resp, CoreError<E>>,
    {
        match decode::<Req>(&incoming.1) {
            Ok(r) => match f((), r) {
                Ok(v) => (Status::OK, super::encode_vec(&v).unwrap()),
                Err(CoreError::App(e)) => (Status::APPLICATION_ERROR, super::encode_vec(&e).unwrap()),
                Err(CoreError::Status { status, .. }) => (status, Vec::new()),
            },
            Err(_) => (Status::BAD_PAYLOAD, Vec::new()),
        }
    }
    fn notify<T, F>(incoming: (u32, Vec<u8>), _: &'static super::Notification<T>, f: F) -> (Status, Vec<u8>)
    where
        T: serde::de::DeserializeOwned + Send + 'static,
        F: FnOnce((), T) -> Result<(), CoreError<NoError>>,
    {
        match decode::<T>(&incoming.1).map(|v| f((), v)) {
            Ok(Ok(())) => (Status::OK, Vec::new()),
            _ => (Status::FAILED, Vec::new()),
        }
    }
    fn server_stream<Init, Down, F>(
        i: (u32, Vec<u8>),
        _: &'static super::Streaming<Init, (), Down>,
        _: F,
    ) -> (Status, Vec<u8>)
    where
        Init: serde::de::DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce((), Init, Vec<Down>) -> Result<(), CoreError<NoError>>,
    {
        Self::unimplemented(i)
    }
    fn client_stream<Init, Up, Resp, F>(
        i: (u32, Vec<u8>),
        _: &'static super::Streaming<Init, Up, Resp>,
        _: F,
    ) -> (Status, Vec<u8>)
    where
        Init: serde::de::DeserializeOwned + Send + 'static,
        Up: serde::de::DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: FnOnce((), Init, Vec<Up>) -> Result<Resp, CoreError<NoError>>,
    {
        Self::unimplemented(i)
    }
    fn bidi<Init, Up, Down, F>(
        i: (u32, Vec<u8>),
        _: &'static super::Streaming<Init, Up, Down>,
        _: F,
    ) -> (Status, Vec<u8>)
    where
        Init: serde::de::DeserializeOwned + Send + 'static,
        Up: serde::de::DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce((), Init, Vec<Up>, Vec<Down>) -> Result<(), CoreError<NoError>>,
    {
        Self::unimplemented(i)
    }
    fn unimplemented(_: (u32, Vec<u8>)) -> (Status, Vec<u8>) {
        (Status::UNIMPLEMENTED, Vec::new())
    }
}

struct BlockingArm;

impl arm::BlockingServer<Mock> for BlockingArm {
    fn double(&self, _: (), x: i64) -> Result<i64, CoreError> {
        Ok(x * 2)
    }
    fn go(&self, _: (), m: Move) -> Result<Move, CoreError<ArmError>> {
        if m.x > 100 {
            return Err(CoreError::App(ArmError::Busy));
        }
        Ok(m)
    }
    fn log(&self, _: (), _: String) -> Result<(), CoreError> {
        Ok(())
    }
    fn beep(&self, _: (), _: u8) -> Result<(), CoreError> {
        Err(Status::FAILED.into())
    }
    fn count(&self, _: (), _: u32, _: Vec<u32>) -> Result<(), CoreError> {
        Ok(())
    }
    fn sum(&self, _: (), _: (), _: Vec<u64>) -> Result<u64, CoreError> {
        Ok(0)
    }
    fn echo(&self, _: (), _: (), _: Vec<String>, _: Vec<String>) -> Result<(), CoreError> {
        Ok(())
    }
}

#[test]
fn the_blocking_flavor_dispatches_every_method_of_the_declaration() {
    use super::rt::BlockingService;
    let s = arm::Serve(BlockingArm);
    let enc = |v: &dyn erased::Enc| v.enc();
    assert_eq!(s.serve((1, enc(&-4i64))), (Status::OK, enc(&-8i64)));
    assert_eq!(s.serve((2, enc(&Move { x: 500, y: 0 }))), (Status::APPLICATION_ERROR, enc(&ArmError::Busy)));
    assert_eq!(s.serve((3, enc(&String::from("x")))), (Status::OK, Vec::new()));
    assert_eq!(s.serve((4, std::vec![1])), (Status::FAILED, Vec::new()));
    assert_eq!(s.serve((1, std::vec![])).0, Status::BAD_PAYLOAD);
    assert_eq!(s.serve((99, std::vec![])).0, Status::UNIMPLEMENTED);
    assert_eq!(<arm::Serve<BlockingArm> as BlockingService<Mock>>::DEF.name, "arm");
}

mod erased {
    pub trait Enc {
        fn enc(&self) -> std::vec::Vec<u8>;
    }
    impl<T: serde::Serialize> Enc for T {
        fn enc(&self) -> std::vec::Vec<u8> {
            crate::typed::encode_vec(self).unwrap()
        }
    }
}
