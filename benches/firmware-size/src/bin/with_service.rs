//! A firmware image that serves a service declared with `tandem_core::service!`, with the core
//! alone and no allocator: the connection, its buffers and the dispatcher's request and reply
//! buffers are static; requests are checked against the methods' schema keys (SPEC.md §7.10)
//! and answered by the `CoreServer` implementation below. Built for `thumbv7em-none-eabihf`
//! by `.ci/run`:
//!
//! ```text
//! cargo build --release --target thumbv7em-none-eabihf --manifest-path benches/firmware-size/Cargo.toml --bin with_service
//! ```

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;
use postcard_schema::Schema;
use serde::{Deserialize, Serialize};
use tandem_core::typed::{CoreCtx, CoreError, Dispatcher, ItemSink};
use tandem_core::config::{FRAGMENTATION, UNFRAGMENTED_HEADROOM};
use tandem_core::{Config, Connection, Identity, Instant, Role, Slot, Status, Storage};
use tandem_firmware_size::{micros, uart_read, uart_write};

/// A sensor reading.
#[derive(Serialize, Deserialize, Schema, Clone, Copy)]
pub struct Reading {
    /// Channel.
    pub channel: u8,
    /// Millivolts.
    pub millivolts: i32,
}

/// Why a channel cannot be read.
#[derive(Serialize, Deserialize, Schema)]
pub enum SensorError {
    /// No such channel.
    NoChannel(u8),
}

tandem_core::service! {
    /// A four-channel sensor.
    pub service sensor = 12 {
        /// Reads one channel.
        unary read(u8) -> Reading | SensorError = 1;
        /// Sets the sampling period in milliseconds; acknowledged.
        notify period(u32) = 2;
        /// The next `n` readings of every channel.
        server_stream sample(u8) -> Reading = 3;
    }
}

/// The device.
struct Sensor {
    period_ms: u32,
    level: i32,
}

impl Sensor {
    fn reading(&mut self, channel: u8) -> Reading {
        self.level = self.level.wrapping_add(17);
        Reading { channel, millivolts: self.level + i32::from(channel) * 1000 }
    }
}

impl sensor::CoreServer for Sensor {
    fn read(&mut self, _: &CoreCtx, channel: u8) -> Result<Reading, CoreError<SensorError>> {
        if channel >= 4 {
            return Err(CoreError::App(SensorError::NoChannel(channel)));
        }
        Ok(self.reading(channel))
    }
    fn period(&mut self, _: &CoreCtx, ms: u32) -> Result<(), CoreError> {
        if ms == 0 {
            return Err(CoreError::Status { status: Status::INVALID_ARGUMENT, message: "a period of 0 ms" });
        }
        self.period_ms = ms;
        Ok(())
    }
    fn sample(&mut self, _: &CoreCtx, n: u8, items: &mut ItemSink<'_, '_, Reading>) -> Result<(), CoreError> {
        for _ in 0..n {
            for channel in 0..4 {
                let r = self.reading(channel);
                // Within the opener's credit (64 items by default); beyond it the stream ends.
                items.send(&r).map_err(|_| Status::RESOURCE_EXHAUSTED)?;
            }
        }
        Ok(())
    }
}

/// The connection's configuration: small frames and messages, a few exchanges at once.
const CONFIG: Config = Config {
    // Without the core's `fragmentation` every message fits one frame (SPEC.md §9.7).
    max_frame_size: if FRAGMENTATION { 4096 } else { 4096 + UNFRAGMENTED_HEADROOM },
    max_message_size: 4096,
    max_concurrent_calls: 4,
    max_concurrent_streams: 2,
    max_outbound_calls: 1,
    max_outbound_streams: 1,
    max_tx_buffer: 8192,
    ..Config::DEFAULT
};

// Every buffer sized from `CONFIG` by the core's `const fn`s: `with_storage` cannot refuse them.
static mut RX: [u8; Storage::rx_len(&CONFIG)] = [0; Storage::rx_len(&CONFIG)];
static mut TX: [u8; Storage::tx_len(&CONFIG)] = [0; Storage::tx_len(&CONFIG)];
static mut REASM: [u8; Storage::reassembly_len(&CONFIG)] = [0; Storage::reassembly_len(&CONFIG)];
static mut SLOTS: [Option<Slot>; Storage::slots_len(&CONFIG)] = [const { None }; Storage::slots_len(&CONFIG)];
static mut REQUEST: [u8; 512] = [0; 512];
static mut REPLY: [u8; 512] = [0; 512];

/// Entry point (the reset handler a real image's vector table would name).
#[no_mangle]
pub extern "C" fn _start() -> ! {
    // SAFETY: single-threaded firmware; the statics are borrowed once, here, for ever.
    let (storage, request, reply) = unsafe {
        let s = Storage {
            rx: &mut *addr_of_mut!(RX),
            tx: &mut *addr_of_mut!(TX),
            reassembly: &mut *addr_of_mut!(REASM),
            slots: &mut *addr_of_mut!(SLOTS),
        };
        (s, &mut *addr_of_mut!(REQUEST), &mut *addr_of_mut!(REPLY))
    };
    let config = CONFIG;
    let me = Identity { name: b"sensor", ..Identity::default() };
    let now = |t: u64| Instant::from_micros(t);
    // The storage is sized from CONFIG and CONFIG is valid, so this cannot fail (a StorageError
    // would name the buffer and the size it needs; its text is not formatted here, to keep
    // formatting code out of the image).
    let Ok(mut conn) = Connection::with_storage(Role::Acceptor, config, me, storage, now(micros())) else {
        panic!("Connection::with_storage refused CONFIG or its storage");
    };
    let mut service = sensor::Serve(Sensor { period_ms: 100, level: 0 });
    let mut dispatcher = Dispatcher::new(request, reply);
    let mut buf = [0u8; 256];
    let mut out = [0u8; 256];
    loop {
        let t = now(micros());
        let n = uart_read(&mut buf);
        let _ = conn.handle_input(t, &buf[..n]);
        // Requests for the sensor are served; this firmware opens no exchange of its own, so
        // every other event is of no interest.
        dispatcher.drive(&mut conn, t, &mut service, |_| {});
        conn.handle_timeout(t);
        let k = conn.poll_transmit(t, &mut out);
        uart_write(&out[..k]);
    }
}
