//! The same firmware with a tandem-core connection in static storage: bytes from the UART are fed
//! to the core, every request is answered with its payload (unary, notifications, streams items
//! echoed as a response would be), and whatever the core queues goes back to the UART.

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;
use tandem_core::{Config, Connection, Event, Identity, Instant, RequestKind, Role, Status};
use tandem_core::config::{FRAGMENTATION, UNFRAGMENTED_HEADROOM};
use tandem_core::{Slot, Storage};
use tandem_firmware_size::{micros, uart_read, uart_write};

/// The connection's configuration: small frames and messages, a few exchanges at once. Without
/// the core's `fragmentation` every message must fit one frame: the frame limit then leaves
/// room for the largest message header above `max_message_size` (SPEC.md §9.7).
const CONFIG: Config = Config {
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

/// Entry point (the reset handler a real image's vector table would name).
#[no_mangle]
pub extern "C" fn _start() -> ! {
    // SAFETY: single-threaded firmware; the statics are borrowed once, here, for ever.
    let storage = unsafe {
        Storage {
            rx: &mut *addr_of_mut!(RX),
            tx: &mut *addr_of_mut!(TX),
            reassembly: &mut *addr_of_mut!(REASM),
            slots: &mut *addr_of_mut!(SLOTS),
        }
    };
    let config = CONFIG;
    let me = Identity { name: b"fw", ..Identity::default() };
    let now = |t: u64| Instant::from_micros(t);
    // The storage is sized from CONFIG and CONFIG is valid, so this cannot fail (a StorageError
    // would name the buffer and the size it needs; its text is not formatted here, to keep
    // formatting code out of the image).
    let Ok(mut conn) = Connection::with_storage(Role::Acceptor, config, me, storage, now(micros())) else {
        panic!("Connection::with_storage refused CONFIG or its storage");
    };
    let mut buf = [0u8; 256];
    let mut out = [0u8; 256];
    let mut reply = [0u8; 256];
    loop {
        let t = now(micros());
        let n = uart_read(&mut buf);
        let _ = conn.handle_input(t, &buf[..n]);
        while let Some(ev) = conn.poll_event(t) {
            match ev {
                Event::Request { id, kind: RequestKind::Call, payload, .. } => {
                    let k = payload.len().min(reply.len());
                    reply[..k].copy_from_slice(&payload[..k]);
                    let _ = conn.respond(id, Status::OK, &reply[..k]);
                }
                Event::StreamData { id, payload } => {
                    let len = payload.len() as u32;
                    let _ = conn.stream_consumed(id, 1, len);
                }
                _ => {}
            }
        }
        conn.handle_timeout(t);
        let k = conn.poll_transmit(t, &mut out);
        uart_write(&out[..k]);
    }
}
