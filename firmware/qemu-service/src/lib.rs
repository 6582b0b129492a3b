//! The service of tandem's QEMU firmware example (`firmware/qemu`), declared once with
//! [`tandem_core::service!`] for both ends: the device image serves it over its UART in datagram
//! mode with the serial framing (SPEC.md §14.9), and the host test (`tests/qemu.rs`) calls it
//! with tandem-std over `serial://`.
//!
//! Datagram mode has no streams (SPEC.md §14.7), so the host streams data to the device as a
//! sequence of reliable notifications ([`device`]'s `chunk`), numbered: the device checks that
//! each chunk is the next one, so a chunk applied twice or skipped shows in [`Totals`].

#![no_std]

use postcard_schema::Schema;
use serde::{Deserialize, Serialize};
use tandem_core::{Config, Transport};

/// The largest datagram the device sends or accepts (SPEC.md §14.2: at least 1200).
pub const MAX_DATAGRAM: usize = 1200;

/// The device's connection configuration: the smallest frame and message limits the core
/// accepts, a few calls at once, no streams (datagram mode has none), no idle timeout and no
/// keepalive (the host may stay away for long), datagram mode. Here rather than in the image so
/// that a host test checks it is valid (`config_is_valid`): the image has no way to say why
/// `Connection::new` refused it.
pub const DEVICE_CONFIG: Config = Config {
    max_frame_size: 4096,
    max_message_size: 4096,
    max_concurrent_calls: 4,
    max_concurrent_streams: 0,
    max_outbound_calls: 1,
    max_outbound_streams: 0,
    max_tx_buffer: 4096,
    reply_cache_entries: 32,
    reply_cache_bytes: 4096,
    max_retained_bytes: 4096,
    idle_timeout: core::time::Duration::ZERO,
    keepalive_interval: core::time::Duration::ZERO,
    transport: Transport::Datagram { max_datagram: MAX_DATAGRAM as u32 },
    ..Config::DEFAULT
};

/// Two numbers to add.
#[derive(Serialize, Deserialize, Schema, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Add {
    /// A tag the device does not read: the host makes each call's request unique.
    pub tag: u32,
    /// First operand.
    pub a: u32,
    /// Second operand.
    pub b: u32,
}

/// Why the device refused an addition.
#[derive(Serialize, Deserialize, Schema, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceError {
    /// The sum does not fit in 32 bits.
    Overflow,
}

/// One piece of the data the host streams to the device.
#[derive(Serialize, Deserialize, Schema, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the stream: 0, 1, 2, … (a new stream starts at 0).
    pub seq: u32,
    /// The data.
    pub value: u32,
}

/// What the device has executed since it booted.
#[derive(Serialize, Deserialize, Schema, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// `add` calls executed (an exactly-once server executes each call once).
    pub adds: u32,
    /// Chunks applied in the current stream.
    pub chunks: u32,
    /// Sum of their values.
    pub sum: u64,
    /// Chunks that were not the next one (applied twice, or one skipped): 0 on a sound link.
    pub out_of_order: u32,
    /// Serial frames the device dropped (bad CRC, bad COBS, too short, too long).
    pub frames_dropped: u32,
    /// Connections (associations) the device has served since it booted.
    pub associations: u32,
}

tandem_core::service! {
    /// A small device on a serial line.
    pub service device = 40 {
        /// Adds two numbers; `Overflow` when the sum does not fit.
        unary add(Add) -> u32 | DeviceError = 1;
        /// One chunk of the stream the host sends; acknowledged (reliable notification).
        notify chunk(Chunk) = 2;
        /// What the device has executed.
        unary totals(()) -> Totals = 3;
    }
}

#[cfg(test)]
mod tests {
    use tandem_core::{Connection, DatagramStorage, Identity, Instant, Role, Slot, Storage};

    use super::DEVICE_CONFIG as C;

    #[test]
    fn config_is_valid() {
        assert_eq!(C.validate(), Ok(()));
    }

    /// The buffers the image sizes with the core's `const fn`s are accepted as they are.
    #[test]
    fn storage_fits() {
        let mut rx = [0u8; Storage::rx_len(&C)];
        let mut tx = [0u8; Storage::tx_len(&C)];
        let mut reassembly = [0u8; Storage::reassembly_len(&C)];
        let mut slots = [const { None::<Slot> }; Storage::slots_len(&C)];
        let mut replies = [0u8; Storage::replies_len(&C)];
        let mut retained = [0u8; Storage::retained_len(&C)];
        let storage = Storage { rx: &mut rx, tx: &mut tx, reassembly: &mut reassembly, slots: &mut slots };
        let dgram = DatagramStorage { replies: &mut replies, retained: &mut retained };
        let me = Identity { name: b"qemu-device", ..Identity::default() };
        let conn = Connection::with_datagram_storage(Role::Acceptor, C, me, storage, dgram, Instant::ZERO);
        assert!(conn.is_ok(), "{:?}", conn.err());
    }
}
