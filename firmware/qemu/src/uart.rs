//! UART0 of the LM3S6965 (an ARM PL011 at 0x4000_C000), polled, through its registers.
//!
//! Direct register access: the chip's peripheral access crate (`lm3s6965` on crates.io) only
//! lists interrupts for cortex-m-rt, and no maintained HAL covers this chip; a polled UART needs
//! the data register, the flag register, and the control register set once. The baud rate is the
//! reset value: QEMU's model carries bytes at whatever rate its character device takes them.
//! (On real silicon, UART0's clock and GPIO pins A0/A1 must also be enabled in SYSCTL and GPIO.)

use core::ptr::{read_volatile, write_volatile};

const BASE: usize = 0x4000_C000;
/// Data: a read takes the next received byte, a write queues one to send.
const DR: *mut u32 = BASE as *mut u32;
/// Flags.
const FR: *const u32 = (BASE + 0x18) as *const u32;
/// Line control: FEN (bit 4) enables the 16-byte FIFOs, WLEN (bits 5-6) = 3 for 8 data bits.
const LCRH: *mut u32 = (BASE + 0x2C) as *mut u32;
/// Control: UARTEN (bit 0), TXE (bit 8), RXE (bit 9).
const CR: *mut u32 = (BASE + 0x30) as *mut u32;
/// Receive FIFO empty.
const RXFE: u32 = 1 << 4;
/// Transmit FIFO full.
const TXFF: u32 = 1 << 5;

/// 8N1 with FIFOs, receiver and transmitter enabled.
pub fn init() {
    // SAFETY: UART0's registers, at their documented addresses; only this module touches them
    // and the firmware is single-threaded.
    unsafe {
        write_volatile(LCRH, (3 << 5) | (1 << 4));
        write_volatile(CR, (1 << 0) | (1 << 8) | (1 << 9));
    }
}

/// Takes the bytes received so far (at most `buf.len()`); returns how many.
pub fn read(buf: &mut [u8]) -> usize {
    let mut n = 0;
    // SAFETY: as in `init`.
    unsafe {
        while n < buf.len() && read_volatile(FR) & RXFE == 0 {
            buf[n] = read_volatile(DR) as u8;
            n += 1;
        }
    }
    n
}

/// Sends `bytes`, waiting while the transmit FIFO is full.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: as in `init`.
        unsafe {
            while read_volatile(FR) & TXFF != 0 {}
            write_volatile(DR, u32::from(b));
        }
    }
}
