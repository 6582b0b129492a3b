//! Type drift between the two runtimes (issue 14): a client whose declaration of a method
//! differs from the server's (`i64` against `u64`, a renamed struct field) is refused with
//! SCHEMA_MISMATCH naming the method and both keys, before anything is decoded — std client
//! against a smol server and smol client against a std server.

use std::time::Duration;

use postcard_schema::Schema;
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(5);

/// The server's move.
#[derive(Serialize, Deserialize, Schema, Debug, Clone, PartialEq)]
pub struct Move {
    /// Across.
    pub x: i32,
    /// Up.
    pub y: i32,
}

tandem_core::service! {
    /// The server's declaration.
    pub service arm = 70 {
        /// Doubles a number.
        unary double(i64) -> i64 = 1;
        /// Moves the arm.
        unary go(Move) -> Move = 2;
    }
}

mod drifted {
    use super::*;

    /// An older move: its second field was renamed.
    #[derive(Serialize, Deserialize, Schema, Debug, Clone, PartialEq)]
    pub struct Move {
        /// Across.
        pub x: i32,
        /// Up, under its old name.
        pub z: i32,
    }

    tandem_core::service! {
        /// An older client's declaration: other types under the same ids.
        pub service arm = 70 {
            unary double(u64) -> u64 = 1;
            unary go(Move) -> Move = 2;
        }
    }
}

struct Arm;
impl arm::BlockingServer<tandem_std::Blocking> for Arm {
    fn double(&self, _: tandem_std::Ctx, v: i64) -> Result<i64, tandem_std::HandlerError> {
        Ok(v * 2)
    }
    fn go(&self, _: tandem_std::Ctx, m: Move) -> Result<Move, tandem_std::HandlerError> {
        Ok(m)
    }
}
impl arm::Server<tandem_smol::Async> for Arm {
    async fn double(&self, _: tandem_smol::Ctx, v: i64) -> Result<i64, tandem_smol::HandlerError> {
        Ok(v * 2)
    }
    async fn go(&self, _: tandem_smol::Ctx, m: Move) -> Result<Move, tandem_smol::HandlerError> {
        Ok(m)
    }
}

/// The error of a drifted call names the method and both keys.
fn check(status: tandem_core::Status, message: Option<&str>, method: &str, theirs: String, ours: String) {
    assert_eq!(status, tandem_core::Status::SCHEMA_MISMATCH);
    let msg = message.expect("a message (error details are negotiated)");
    assert!(msg.contains(method) && msg.contains(&theirs) && msg.contains(&ours), "{msg}");
}

#[test]
fn a_std_client_with_a_drifted_declaration_is_refused_by_a_smol_server() {
    let server = tandem_smol::Server::bind(
        "tcp://127.0.0.1:0",
        tandem_smol::ServerConfig::new("arm"),
        tandem_smol::Handlers::new().serve(arm::Serve(Arm)),
    )
    .unwrap();
    let addr = server.local_addr().to_string();
    let client =
        tandem_std::Client::connect(&addr, tandem_std::ClientConfig::new("old"), tandem_std::Handlers::new())
            .unwrap();
    let old = drifted::arm::BlockingClient::new(client.peer().clone()).with_deadline(T);
    let e = old.double(&5).unwrap_err();
    let (theirs, ours) =
        (arm::double.key().unwrap().to_string(), drifted::arm::double.key().unwrap().to_string());
    check(e.status(), e.message(), "arm.double", theirs, ours);
    let e = old.go(&drifted::Move { x: 1, z: 2 }).unwrap_err();
    let (theirs, ours) = (arm::go.key().unwrap().to_string(), drifted::arm::go.key().unwrap().to_string());
    check(e.status(), e.message(), "arm.go", theirs, ours);
    // The matching declaration works.
    let good = arm::BlockingClient::new(client.peer().clone()).with_deadline(T);
    assert_eq!(good.double(&-5).unwrap(), -10);
    drop((old, good, client));
    smol::block_on(server.shutdown(T));
}

#[test]
fn a_smol_client_with_a_drifted_declaration_is_refused_by_a_std_server() {
    let server = tandem_std::Server::bind(
        "tcp://127.0.0.1:0",
        tandem_std::ServerConfig::new("arm"),
        tandem_std::Handlers::new().serve(arm::Serve(Arm)),
    )
    .unwrap();
    let addr = server.local_addr().to_string();
    smol::block_on(async {
        let client = tandem_smol::Client::connect(
            &addr,
            tandem_smol::ClientConfig::new("old"),
            tandem_smol::Handlers::new(),
        )
        .await
        .unwrap();
        let old = drifted::arm::Client::new(client.peer().clone()).with_deadline(T);
        let e = old.double(&5).await.unwrap_err();
        let (theirs, ours) =
            (arm::double.key().unwrap().to_string(), drifted::arm::double.key().unwrap().to_string());
        check(e.status(), e.message(), "arm.double", theirs, ours);
        let e = old.go(&drifted::Move { x: 1, z: 2 }).await.unwrap_err();
        let (theirs, ours) =
            (arm::go.key().unwrap().to_string(), drifted::arm::go.key().unwrap().to_string());
        check(e.status(), e.message(), "arm.go", theirs, ours);
        let good = arm::Client::new(client.peer().clone()).with_deadline(T);
        assert_eq!(good.double(&-5).await.unwrap(), -10);
    });
    server.shutdown(T);
}
