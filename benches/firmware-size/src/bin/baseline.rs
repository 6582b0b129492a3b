//! The firmware without tandem: echoes the UART's bytes back (what a hand-rolled protocol
//! would start from).

#![no_std]
#![no_main]

use tandem_firmware_size::{micros, uart_read, uart_write};

/// Entry point (the reset handler a real image's vector table would name).
#[no_mangle]
pub extern "C" fn _start() -> ! {
    let mut buf = [0u8; 256];
    loop {
        let _ = micros();
        let n = uart_read(&mut buf);
        uart_write(&buf[..n]);
    }
}
