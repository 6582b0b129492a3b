//! `with_core` with session resumption (SPEC.md §13) when built with the core's `resume` feature
//! (`--features resume`), so that the same image with and without it shows what resumption costs:
//! the session keeps its reply cache, retained requests and unconfirmed stream items in static
//! buffers (`Connection::with_session_storage`), its token comes from the device's random number
//! generator, and when its transport is lost the next transport's resuming HELLO, received by a
//! fresh connection, is moved into the session with `resume_from`. Without the feature it is
//! `with_core` (no token, no resumption).

#![no_std]
#![no_main]

use core::ptr::addr_of_mut;
use tandem_core::{Config, Connection, Event, Identity, Instant, RequestKind, Role, Status};
use tandem_core::{Slot, Storage};
use tandem_firmware_size::{micros, uart_read, uart_write};

/// `with_core`'s configuration, with a small reply cache and retained bytes.
const CONFIG: Config = Config {
    max_frame_size: 4096,
    max_message_size: 4096,
    max_concurrent_calls: 4,
    max_concurrent_streams: 2,
    max_outbound_calls: 1,
    max_outbound_streams: 1,
    max_tx_buffer: 8192,
    reply_cache_entries: 8,
    reply_cache_bytes: 2048,
    max_retained_bytes: 2048,
    ..Config::DEFAULT
};

static mut RX: [u8; Storage::rx_len(&CONFIG)] = [0; Storage::rx_len(&CONFIG)];
static mut TX: [u8; Storage::tx_len(&CONFIG)] = [0; Storage::tx_len(&CONFIG)];
static mut REASM: [u8; Storage::reassembly_len(&CONFIG)] = [0; Storage::reassembly_len(&CONFIG)];
static mut SLOTS: [Option<Slot>; Storage::slots_len(&CONFIG)] = [const { None }; Storage::slots_len(&CONFIG)];

#[cfg(feature = "resume")]
mod session {
    use super::CONFIG;
    use tandem_core::{Config, Slot, Storage};
    pub static mut REPLIES: [u8; Storage::session_replies_len(&CONFIG)] = [0; Storage::session_replies_len(&CONFIG)];
    pub static mut RETAINED: [u8; Storage::session_retained_len(&CONFIG)] =
        [0; Storage::session_retained_len(&CONFIG)];
    /// The fresh connection only carries a resuming HELLO: small frames suffice.
    pub const FRESH: Config = Config { max_frame_size: 4096, max_message_size: 4096, max_tx_buffer: 4096, ..CONFIG };
    pub static mut F_RX: [u8; Storage::rx_len(&FRESH)] = [0; Storage::rx_len(&FRESH)];
    pub static mut F_TX: [u8; Storage::tx_len(&FRESH)] = [0; Storage::tx_len(&FRESH)];
    pub static mut F_REASM: [u8; Storage::reassembly_len(&FRESH)] = [0; Storage::reassembly_len(&FRESH)];
    pub static mut F_SLOTS: [Option<Slot>; Storage::slots_len(&FRESH)] = [const { None }; Storage::slots_len(&FRESH)];
}

/// The device's hardware random number generator (a volatile read here; a real image reads its
/// TRNG peripheral): the session token must be unguessable (SPEC.md §13.2).
#[cfg(feature = "resume")]
fn trng(out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = (micros() >> (i % 8)) as u8;
    }
}

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
    let now = |t: u64| Instant::from_micros(t);
    #[cfg(feature = "resume")]
    let token = {
        let mut t = [0u8; 16];
        trng(&mut t);
        t
    };
    #[cfg(feature = "resume")]
    let me = Identity { name: b"fw", session: &token, ..Identity::default() };
    #[cfg(not(feature = "resume"))]
    let me = Identity { name: b"fw", ..Identity::default() };
    #[cfg(feature = "resume")]
    let made = {
        // SAFETY: as above.
        let session = unsafe {
            tandem_core::SessionStorage {
                replies: &mut *addr_of_mut!(session::REPLIES),
                retained: &mut *addr_of_mut!(session::RETAINED),
            }
        };
        Connection::with_session_storage(Role::Acceptor, CONFIG, me, storage, session, now(micros()))
    };
    #[cfg(not(feature = "resume"))]
    let made = Connection::with_storage(Role::Acceptor, CONFIG, me, storage, now(micros()));
    let Ok(mut conn) = made else {
        panic!("Connection::with_session_storage refused CONFIG or its storage");
    };
    #[cfg(feature = "resume")]
    let mut fresh: Option<Connection<'static>> = None;
    let mut buf = [0u8; 256];
    let mut out = [0u8; 256];
    let mut reply = [0u8; 256];
    loop {
        let t = now(micros());
        let n = uart_read(&mut buf);
        // The session lost its transport: a new one arrived; a fresh connection hears it first.
        #[cfg(feature = "resume")]
        if conn.needs_transport() {
            if fresh.is_none() {
                // SAFETY: the fresh connection's statics are used by one connection at a time
                // (the previous one was dropped below).
                let storage = unsafe {
                    Storage {
                        rx: &mut *addr_of_mut!(session::F_RX),
                        tx: &mut *addr_of_mut!(session::F_TX),
                        reassembly: &mut *addr_of_mut!(session::F_REASM),
                        slots: &mut *addr_of_mut!(session::F_SLOTS),
                    }
                };
                let me = Identity { name: b"fw", session: &token, ..Identity::default() };
                fresh = Connection::with_storage(Role::Acceptor, session::FRESH, me, storage, t).ok();
            }
            if let Some(f) = fresh.as_mut() {
                let _ = f.handle_input(t, &buf[..n]);
                let mut resume = false;
                while let Some(ev) = f.poll_event(t) {
                    if let Event::ResumeRequested { token: asked } = ev {
                        resume = asked == token;
                    }
                }
                if resume && conn.resume_from(t, f).is_ok() {
                    fresh = None;
                } else {
                    let _ = f.decline_resume(t);
                }
                let k = fresh.as_mut().map_or(0, |f| f.poll_transmit(t, &mut out));
                uart_write(&out[..k]);
            }
            conn.handle_timeout(t);
            continue;
        }
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
