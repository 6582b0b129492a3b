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
//! **Temporary: a heap.** Datagram mode (reply cache, duplicate window, retained requests) needs
//! the core's `alloc` feature until it runs on caller `Storage` (issue 17, deliverable 2): this
//! image gives the core a fixed 32 KiB heap through `embedded-alloc`. Everything else is static.
//!
//! The UART is driven through its registers directly (see [`uart`]): the board's peripheral
//! access crate (`lm3s6965`) describes only its interrupts, and no maintained HAL covers this
//! chip; two registers (data, flags) and two writes at start are all a polled UART needs.

#![no_std]
#![no_main]

use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::entry;
use tandem_core::serial::{self, Decoder};
use tandem_core::typed::{CoreCtx, CoreError, Dispatcher};
use tandem_core::{Connection, Identity, Instant, Role, State, Status};
use tandem_qemu_service::{device, Add, Chunk, DeviceError, Totals, DEVICE_CONFIG, MAX_DATAGRAM};

mod uart;

/// TEMPORARY (see the crate documentation): the core's heap.
#[global_allocator]
static HEAP: embedded_alloc::LlffHeap = embedded_alloc::LlffHeap::empty();
const HEAP_SIZE: usize = 32 * 1024;

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
    {
        static mut HEAP_MEM: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
        // SAFETY: called once, before anything allocates; the memory is static and only the heap
        // uses it.
        unsafe { HEAP.init(addr_of_mut!(HEAP_MEM) as usize, HEAP_SIZE) }
    }
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
    let mut rx = [0u8; 64];
    loop {
        // One association after another: when the host closes this one, wait for the next HELLO.
        let Ok(mut conn) = Connection::new(Role::Acceptor, DEVICE_CONFIG, me, clock.now()) else { halt() };
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
