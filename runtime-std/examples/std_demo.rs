//! A complete tour on loopback: a server and two clients exchange every kind of message.
//!
//! ```text
//! cargo run -p tandem-std --example std_demo
//! ```

use serde::{Deserialize, Serialize};
use std::time::Duration;
use tandem_std::{
    Client, ClientConfig, Handlers, Notification, Server, ServerConfig, Status, Streaming, Unary,
};

/// The protocol, declared once and shared by both sides.
mod proto {
    use super::*;

    #[derive(Serialize, Deserialize, Debug)]
    pub struct Reading {
        pub sensor: String,
        pub celsius: f32,
    }

    /// Server: the average of some numbers.
    pub const AVERAGE: Unary<Vec<f64>, f64> = Unary::new(1, 1);
    /// Server: a reading to store (reliable or fire-and-forget).
    pub const REPORT: Notification<Reading> = Notification::new(1, 2);
    /// Server: stream numbers up, get running totals down.
    pub const TOTALS: Streaming<(), i64, i64> = Streaming::new(1, 3);
    /// Client: the server asks each client for its status.
    pub const STATUS: Unary<(), String> = Unary::new(2, 1);
}
use proto::*;

const T: Duration = Duration::from_secs(5);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server_handlers = Handlers::new()
        .unary(&AVERAGE, |ctx, xs: Vec<f64>| {
            if xs.is_empty() {
                return Err(Status::INVALID_ARGUMENT);
            }
            println!("server: {} asks for an average", ctx.peer_name());
            Ok(xs.iter().sum::<f64>() / xs.len() as f64)
        })
        .notification(&REPORT, |ctx, r: Reading| {
            println!("server: {} reports {} = {} °C", ctx.peer_name(), r.sensor, r.celsius);
            Ok(())
        })
        .streaming(&TOTALS, |_, (), mut up, mut down| {
            let mut total = 0;
            while let Some(x) = up.recv().map_err(|e| e.status())? {
                total += x;
                down.send(&total).map_err(|e| e.status())?;
            }
            Ok(())
        });
    let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("hub"), server_handlers)?;
    let addr = server.local_addr().to_string();
    println!("server listening on {addr}");

    let clients: Vec<Client> = ["kitchen", "garage"]
        .into_iter()
        .map(|name| {
            let handlers = Handlers::new().unary(&STATUS, move |_, ()| Ok(format!("{name}: all good")));
            Client::connect(&addr, ClientConfig::new(name), handlers)
        })
        .collect::<Result<_, _>>()?;
    let kitchen = &clients[0];

    // Unary call, and a call the handler refuses.
    println!("average = {}", kitchen.call(&AVERAGE, &vec![1.0, 2.0, 4.5], T)?);
    println!("empty average: {}", kitchen.call(&AVERAGE, &vec![], T).unwrap_err());

    // Reliable (acknowledged) and unreliable notifications.
    kitchen.notify(&REPORT, &Reading { sensor: "oven".into(), celsius: 180.0 }, T)?;
    kitchen.signal(&REPORT, &Reading { sensor: "fridge".into(), celsius: 4.0 })?;

    // A bidirectional stream with flow control.
    let (mut up, down) = kitchen.open_stream(&TOTALS, &(), T)?;
    let sender = std::thread::spawn(move || {
        for x in 1..=5 {
            up.send(&x).unwrap();
        }
    });
    let totals: Vec<i64> = down.collect::<Result<_, _>>()?;
    sender.join().unwrap();
    println!("running totals = {totals:?}");

    // The server calls its clients: one by name, then all at once.
    let garage = server.wait_for_peer("garage", T).ok_or("garage did not connect")?;
    println!("garage says: {}", garage.call(&STATUS, &(), T)?);
    for (peer, status) in server.call_all(&STATUS, &(), T) {
        println!("{} says: {}", peer.name(), status?);
    }
    println!("kitchen connection: {:?}", kitchen.stats());

    for c in clients {
        c.shutdown(T);
    }
    server.shutdown(T);
    Ok(())
}
