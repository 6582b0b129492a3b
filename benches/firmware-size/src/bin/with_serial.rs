//! A full peer over a serial line: datagram mode (SPEC.md §14) in COBS/CRC-32C serial frames
//! (§14.9), no allocator. It answers calls and reliable notifications, and makes its own calls
//! and notifications, with retransmission, the duplicate window and the reply cache in static
//! storage (`Connection::with_datagram_storage`). The difference to `baseline` is what a device
//! speaking tandem over a UART adds; built with tandem-core's `serial` feature.

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;
use tandem_core::serial::{self, Decoder};
use tandem_core::{Config, Connection, DatagramStorage, Event, Identity, Instant, MethodId, Role, Status};
use tandem_core::{Slot, Storage, Transport};
use tandem_firmware_size::{micros, uart_read, uart_write};

/// One 1200-byte datagram per serial frame, a few exchanges, a small reply cache.
const CONFIG: Config = Config {
    transport: Transport::Datagram { max_datagram: MAX_DATAGRAM as u32 },
    max_frame_size: 4096,
    max_message_size: 4096,
    max_concurrent_calls: 4,
    max_outbound_calls: 2,
    max_tx_buffer: 4096,
    reply_cache_entries: 8,
    reply_cache_bytes: 2048,
    max_retained_bytes: 2048,
    ..Config::DEFAULT
};
const MAX_DATAGRAM: usize = 1200;
const PING: MethodId = MethodId::new(1, 1);

static mut RX: [u8; Storage::rx_len(&CONFIG)] = [0; Storage::rx_len(&CONFIG)];
static mut TX: [u8; Storage::tx_len(&CONFIG)] = [0; Storage::tx_len(&CONFIG)];
static mut SLOTS: [Option<Slot>; Storage::slots_len(&CONFIG)] = [const { None }; Storage::slots_len(&CONFIG)];
static mut REPLIES: [u8; Storage::replies_len(&CONFIG)] = [0; Storage::replies_len(&CONFIG)];
static mut RETAINED: [u8; Storage::retained_len(&CONFIG)] = [0; Storage::retained_len(&CONFIG)];
static mut LINE_IN: [u8; serial::buffer_len(MAX_DATAGRAM)] = [0; serial::buffer_len(MAX_DATAGRAM)];
static mut DATAGRAM: [u8; MAX_DATAGRAM] = [0; MAX_DATAGRAM];
static mut LINE_OUT: [u8; serial::encoded_len(MAX_DATAGRAM)] = [0; serial::encoded_len(MAX_DATAGRAM)];

/// Entry point (the reset handler a real image's vector table would name).
#[no_mangle]
pub extern "C" fn _start() -> ! {
    // SAFETY: single-threaded firmware; the statics are borrowed once, here, for ever.
    let (storage, dgram, line_in, datagram, line_out) = unsafe {
        (
            Storage {
                rx: &mut *addr_of_mut!(RX),
                tx: &mut *addr_of_mut!(TX),
                reassembly: &mut [],
                slots: &mut *addr_of_mut!(SLOTS),
            },
            DatagramStorage { replies: &mut *addr_of_mut!(REPLIES), retained: &mut *addr_of_mut!(RETAINED) },
            &mut *addr_of_mut!(LINE_IN),
            &mut *addr_of_mut!(DATAGRAM),
            &mut *addr_of_mut!(LINE_OUT),
        )
    };
    let me = Identity { name: b"fw", ..Identity::default() };
    let now = |t: u64| Instant::from_micros(t);
    let Ok(mut conn) =
        Connection::with_datagram_storage(Role::Acceptor, CONFIG, me, storage, dgram, now(micros()))
    else {
        panic!("Connection::with_datagram_storage refused CONFIG or its storage");
    };
    let mut decoder = Decoder::new(&mut line_in[..]);
    let mut chunk = [0u8; 64];
    let mut reply = [0u8; 256];
    loop {
        let t = now(micros());
        let n = uart_read(&mut chunk);
        let mut input = &chunk[..n];
        while !input.is_empty() {
            let (used, frame) = decoder.push(input);
            if let Some(d) = frame {
                let _ = conn.handle_input(t, d);
            }
            input = &input[used..];
        }
        while let Some(ev) = conn.poll_event(t) {
            match ev {
                Event::Request { id, payload, .. } => {
                    let k = payload.len().min(reply.len());
                    reply[..k].copy_from_slice(&payload[..k]);
                    let _ = conn.respond(id, Status::OK, &reply[..k]);
                }
                Event::Response { payload, .. } if payload.first() == Some(&1) => {
                    let _ = conn.notify(t, PING, &[], None);
                }
                Event::Connected | Event::Response { .. } => {
                    let _ = conn.call(t, PING, b"hi", None);
                }
                _ => {}
            }
        }
        conn.handle_timeout(t);
        loop {
            let k = conn.poll_transmit(t, datagram);
            if k == 0 {
                break;
            }
            if let Ok(m) = serial::encode(&datagram[..k], line_out) {
                uart_write(&line_out[..m]);
            }
        }
    }
}
