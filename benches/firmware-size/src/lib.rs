//! What both firmware images share: a panic handler, an entry point, and a fake "UART" (volatile
//! reads and writes of a static buffer) that the application moves bytes through.

#![no_std]

use core::panic::PanicInfo;
use core::ptr::{addr_of, addr_of_mut};

/// The fake UART's buffer.
static mut UART: [u8; 256] = [0; 256];

/// Reads up to `buf.len()` bytes from the fake UART (volatile: the optimiser must keep it).
pub fn uart_read(buf: &mut [u8]) -> usize {
    let n = buf.len().min(256);
    for (i, b) in buf.iter_mut().take(n).enumerate() {
        // SAFETY: single-threaded firmware; index in bounds.
        *b = unsafe { core::ptr::read_volatile((addr_of!(UART) as *const u8).add(i)) };
    }
    n
}

/// Writes `buf` to the fake UART.
pub fn uart_write(buf: &[u8]) {
    for (i, b) in buf.iter().take(256).enumerate() {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile((addr_of_mut!(UART) as *mut u8).add(i), *b) };
    }
}

/// A monotonic "clock" in microseconds (volatile counter).
pub fn micros() -> u64 {
    static mut T: u64 = 0;
    // SAFETY: as above.
    unsafe {
        let t = core::ptr::read_volatile(addr_of!(T)) + 1000;
        core::ptr::write_volatile(addr_of_mut!(T), t);
        t
    }
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {}
}
