//! tandem's QEMU firmware example: a Cortex-M3 image for the `lm3s6965evb` board that QEMU
//! emulates (`qemu-system-arm -machine lm3s6965evb`), serving the declared `device` service
//! (`tandem-qemu-service`) over UART0 in datagram mode with the serial framing (SPEC.md §14.9):
//! unary calls, a stream of chunks the host sends as reliable notifications, exactly once over a
//! line that corrupts, drops and duplicates bytes.
//!
//! The loop: bytes from the UART go through a `serial::Decoder` (COBS, CRC-32C, resynchronisation
//! at the next delimiter); each checked datagram goes to the connection; the `Dispatcher` serves
//! the requests; each datagram the connection sends goes out as one serial frame. When the host
//! closes the association (or it ends otherwise), a new connection waits for the next HELLO.
//!
//! **No allocator.** The connection works in buffers on `main`'s stack, sized from
//! `DEVICE_CONFIG` by the core's `const fn`s: the receive and transmit queues and the exchange
//! table (`Storage`), and datagram mode's reply cache and retained requests (`DatagramStorage`),
//! so exactly-once delivery needs no heap. Each association borrows them anew.
//!
//! The UART is driven through its registers directly (see [`uart`]): the board's peripheral
//! access crate (`lm3s6965`) describes only its interrupts, and no maintained HAL covers this
//! chip; two registers (data, flags) and two writes at start are all a polled UART needs.

#![no_std]
#![no_main]

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use tandem_core::serial::{self, Decoder};
use tandem_core::typed::{CoreCtx, CoreError, Dispatcher};
use tandem_core::{Connection, DatagramStorage, Identity, Instant, Role, Slot, State, Status, Storage};
use tandem_qemu_service::{device, Add, Chunk, DeviceError, Totals, DEVICE_CONFIG, MAX_DATAGRAM};

mod uart;

/// The device's state.
struct Device {
    totals: Totals,
}

impl device::CoreServer for Device {
    fn add(&mut self, _: &CoreCtx, req: Add) -> Result<u32, CoreError<DeviceError>> {
        self.totals.adds += 1;
        req.a.checked_add(req.b).ok_or(CoreError::App(DeviceError::Overflow))
    }

    fn chunk(&mut self, _: &CoreCtx, chunk: Chunk) -> Result<(), CoreError> {
        if chunk.seq == 0 {
            self.totals.chunks = 0;
            self.totals.sum = 0;
        }
        if chunk.seq != self.totals.chunks {
            self.totals.out_of_order += 1;
            return Err(CoreError::Status {
                status: Status::FAILED_PRECONDITION,
                message: "not the next chunk",
            });
        }
        self.totals.chunks += 1;
        self.totals.sum += u64::from(chunk.value);
        Ok(())
    }

    fn totals(&mut self, _: &CoreCtx, (): ()) -> Result<Totals, CoreError> {
        Ok(self.totals)
    }
}

/// A microsecond clock from SysTick (24 bits, counting down at the core clock), extended in
/// software: called far more often than the counter wraps (about once a second).
struct Clock {
    /// Owned so that nothing else reconfigures it.
    _syst: cortex_m::peripheral::SYST,
    last: u32,
    ticks: u64,
}

/// The core clock QEMU's lm3s6965evb runs at after reset (the 12 MHz main oscillator).
const CORE_HZ: u64 = 12_000_000;

impl Clock {
    fn new(mut syst: cortex_m::peripheral::SYST) -> Self {
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(0x00FF_FFFF);
        syst.clear_current();
        syst.enable_counter();
        Clock { _syst: syst, last: cortex_m::peripheral::SYST::get_current(), ticks: 0 }
    }

    fn now(&mut self) -> Instant {
        let cur = cortex_m::peripheral::SYST::get_current();
        // Counting down: elapsed ticks since the last read, modulo the 24-bit range.
        self.ticks += u64::from(self.last.wrapping_sub(cur) & 0x00FF_FFFF);
        self.last = cur;
        Instant::from_micros(self.ticks * 1_000_000 / CORE_HZ)
    }
}

#[entry]
fn main() -> ! {
    let peripherals = cortex_m::Peripherals::take().unwrap_or_else(|| halt());
    let mut clock = Clock::new(peripherals.SYST);
    uart::init();

    let mut decoder = Decoder::new([0u8; serial::buffer_len(MAX_DATAGRAM)]);
    let mut datagram = [0u8; MAX_DATAGRAM];
    let mut frame = [0u8; serial::encoded_len(MAX_DATAGRAM)];
    let mut request = [0u8; 1024];
    let mut reply = [0u8; 1024];
    let mut dispatcher = Dispatcher::new(&mut request, &mut reply);
    let mut service = device::Serve(Device { totals: Totals::default() });
    let me = Identity { name: b"qemu-device", ..Identity::default() };
    // The connection's buffers, sized from the configuration (`with_datagram_storage` cannot
    // refuse them; the service crate's `storage_fits` test builds a connection with them).
    const C: &tandem_core::Config = &DEVICE_CONFIG;
    let mut conn_rx = [0u8; Storage::rx_len(C)];
    let mut conn_tx = [0u8; Storage::tx_len(C)];
    let mut reassembly = [0u8; Storage::reassembly_len(C)];
    let mut slots = [const { None::<Slot> }; Storage::slots_len(C)];
    let mut replies = [0u8; Storage::replies_len(C)];
    let mut retained = [0u8; Storage::retained_len(C)];
    let mut rx = [0u8; 64];
    loop {
        // One association after another: when the host closes this one, wait for the next HELLO.
        let storage =
            Storage { rx: &mut conn_rx, tx: &mut conn_tx, reassembly: &mut reassembly, slots: &mut slots };
        let dgram = DatagramStorage { replies: &mut replies, retained: &mut retained };
        let Ok(mut conn) =
            Connection::with_datagram_storage(Role::Acceptor, DEVICE_CONFIG, me, storage, dgram, clock.now())
        else {
            halt()
        };
        service.0.totals.associations += 1;
        while conn.state() != State::Closed {
            let t = clock.now();
            let n = uart::read(&mut rx);
            let mut input = &rx[..n];
            while !input.is_empty() {
                let (used, d) = decoder.push(input);
                input = &input[used..];
                if let Some(d) = d {
                    // A datagram is taken whole (the dispatcher drained the events before).
                    let _ = conn.handle_input(t, d);
                    dispatcher.drive(&mut conn, t, &mut service, |_| {});
                }
            }
            service.0.totals.frames_dropped = decoder.stats().dropped() as u32;
            conn.handle_timeout(t);
            dispatcher.drive(&mut conn, t, &mut service, |_| {});
            loop {
                let k = conn.poll_transmit(t, &mut datagram);
                if k == 0 {
                    break;
                }
                if let Ok(m) = serial::encode(&datagram[..k], &mut frame) {
                    uart::write(&frame[..m]);
                }
            }
        }
        decoder.reset();
    }
}

/// Stops here (a debugger shows where).
fn halt() -> ! {
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    halt()
}
