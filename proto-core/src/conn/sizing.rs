//! How large each buffer of a [`Storage`] must be for a given [`Config`], computed by `const fn`s
//! so that firmware sizes its `static` arrays from the same `const` configuration it passes to
//! [`Connection::with_storage`](crate::Connection::with_storage), and the compiler, not a trial
//! run, gets the numbers right:
//!
//! ```
//! use tandem_core::{Config, Connection, Identity, Instant, Role, Slot, Storage};
//!
//! const CONFIG: Config = Config {
//!     max_frame_size: 4096,
//!     max_message_size: 4096,
//!     max_concurrent_calls: 4,
//!     max_concurrent_streams: 2,
//!     max_outbound_calls: 1,
//!     max_outbound_streams: 1,
//!     max_tx_buffer: 8192,
//!     ..Config::DEFAULT
//! };
//! let mut rx = [0u8; Storage::rx_len(&CONFIG)];
//! let mut tx = [0u8; Storage::tx_len(&CONFIG)];
//! let mut reassembly = [0u8; Storage::reassembly_len(&CONFIG)];
//! let mut slots = [const { None::<Slot> }; Storage::slots_len(&CONFIG)];
//! let storage = Storage { rx: &mut rx, tx: &mut tx, reassembly: &mut reassembly, slots: &mut slots };
//! let me = Identity { name: b"fw", ..Identity::default() };
//! let conn = Connection::with_storage(Role::Acceptor, CONFIG, me, storage, Instant::ZERO);
//! assert!(conn.is_ok());
//! ```
//!
//! The formulas (also in SPEC.md §11 and the README's firmware section):
//!
//! | buffer | length |
//! | --- | --- |
//! | `rx` | `max_frame_size + 9` (the largest frame header, SPEC.md §3.1); on a packet or datagram transport at least `max_datagram` |
//! | `tx` | `max_tx_buffer` |
//! | `reassembly` | `max_message_size`; 0 in datagram mode (no fragmentation, SPEC.md §14.7) and without the `fragmentation` feature (§9.7) |
//! | `slots` | `max_concurrent_calls + max_concurrent_streams + max_outbound_calls + max_outbound_streams`; in datagram mode and without the `streams` feature (no streams) `max_concurrent_calls + max_outbound_calls` |
//! | `replies` ([`DatagramStorage`]) | datagram mode: `reply_cache_bytes + 32 × reply_cache_entries`; otherwise 0 |
//! | `retained` ([`DatagramStorage`]) | datagram mode: `max_retained_bytes + 32 × max_outbound_calls`; otherwise 0 |
//! | `replies` ([`SessionStorage`], resumption) | `reply_cache_bytes + 32 × reply_cache_entries + 8 × (max_concurrent_calls + max_concurrent_streams + 16)`; in datagram mode as `replies` above |
//! | `retained` ([`SessionStorage`], resumption) | `max_retained_bytes + 32 × (max_outbound_calls + max_outbound_streams)` |
//!
//! (32 bytes per entry is [`Storage::RECORD_HEADER`]: id, length, digest and status of a cached
//! answer, or type, method and schema key of a retained request. A resumable session without
//! `alloc` also keeps its unconfirmed stream items in `retained`, 32 bytes + the item each,
//! counted against `max_retained_bytes` like the requests; when they do not fit, `stream_send`
//! returns [`ApiError::RetainFull`](crate::ApiError::RetainFull). Give `retained` more than the
//! formula, or raise `max_retained_bytes`, for more items in flight.)

use core::fmt;

use super::{Slot, Storage};
use crate::config::{Config, ConfigError, Transport};
use crate::frame::MAX_HEADER_LEN;
#[cfg(doc)]
use crate::Connection;

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// Buffers for datagram mode's exactly-once state without an allocator (SPEC.md §14.4–§14.5),
/// handed to [`Connection::with_datagram_storage`]: the reply cache and the retained requests.
/// Size them with [`Storage::replies_len`] and [`Storage::retained_len`]; both are 0 (and the
/// default, empty buffers fit) outside datagram mode.
#[derive(Debug, Default)]
pub struct DatagramStorage<'a> {
    /// The reply cache: answers kept for the peer's retransmissions (SPEC.md §14.5), at most
    /// `reply_cache_entries` answers and `reply_cache_bytes` payload bytes.
    pub replies: &'a mut [u8],
    /// Our requests kept until answered, to retransmit them (SPEC.md §14.4), at most
    /// `max_retained_bytes` payload bytes (beyond it `call` returns
    /// [`ApiError::RetainFull`](crate::ApiError::RetainFull)).
    pub retained: &'a mut [u8],
}

/// Buffers for a resumable session's state without an allocator (SPEC.md §13, feature
/// `resume`), handed to [`Connection::with_session_storage`]: the same two buffers as datagram
/// mode's, sized by [`Storage::session_replies_len`] and [`Storage::session_retained_len`].
pub type SessionStorage<'a> = DatagramStorage<'a>;

impl DatagramStorage<'_> {
    /// Checks both buffers against what `config` needs, `replies` first.
    pub fn check(&self, config: &Config) -> Result<(), StorageError> {
        self.check_lens(Storage::replies_len(config), Storage::retained_len(config))
    }

    /// Checks both buffers against what a resumable session needs
    /// ([`Storage::session_replies_len`], [`Storage::session_retained_len`]), `replies` first.
    pub fn check_session(&self, config: &Config) -> Result<(), StorageError> {
        self.check_lens(Storage::session_replies_len(config), Storage::session_retained_len(config))
    }

    fn check_lens(&self, replies: usize, retained: usize) -> Result<(), StorageError> {
        let checks = [
            (StorageBuffer::Replies, self.replies.len(), replies),
            (StorageBuffer::Retained, self.retained.len(), retained),
        ];
        for (buffer, given, needed) in checks {
            if given < needed {
                return Err(StorageError::TooSmall { buffer, given, needed });
            }
        }
        Ok(())
    }
}

impl Storage<'_> {
    /// Bytes of bookkeeping per entry of the reply cache and of the retained requests in a
    /// [`DatagramStorage`] (id, payload length, and the request digest and status of an
    /// answer, or the type, method and schema key of a request).
    pub const RECORD_HEADER: usize = 32;

    /// Bytes [`DatagramStorage::replies`] needs: in datagram mode `reply_cache_bytes +
    /// RECORD_HEADER × reply_cache_entries` (every answer the bounds allow, with its
    /// bookkeeping); 0 on other transports.
    pub const fn replies_len(config: &Config) -> usize {
        match config.transport {
            Transport::Datagram { .. } => (config.reply_cache_bytes as usize)
                .saturating_add((config.reply_cache_entries as usize).saturating_mul(Self::RECORD_HEADER)),
            _ => 0,
        }
    }

    /// Bytes [`DatagramStorage::retained`] needs: in datagram mode `max_retained_bytes +
    /// RECORD_HEADER × max_outbound_calls` (every request we may have open, with its
    /// bookkeeping); 0 on other transports.
    pub const fn retained_len(config: &Config) -> usize {
        match config.transport {
            Transport::Datagram { .. } => (config.max_retained_bytes as usize)
                .saturating_add((config.max_outbound_calls as usize).saturating_mul(Self::RECORD_HEADER)),
            _ => 0,
        }
    }

    /// Bytes [`SessionStorage::replies`](DatagramStorage::replies) needs for a resumable
    /// session (SPEC.md §13, [`Connection::with_session_storage`]): `reply_cache_bytes +
    /// RECORD_HEADER × reply_cache_entries +` [`session_owed_len`](Self::session_owed_len)
    /// (the reply cache, and the answers owed to retransmissions while the transmit queue is
    /// full); in datagram mode [`replies_len`](Self::replies_len).
    pub const fn session_replies_len(config: &Config) -> usize {
        match config.transport {
            Transport::Datagram { .. } => Self::replies_len(config),
            _ => (config.reply_cache_bytes as usize)
                .saturating_add((config.reply_cache_entries as usize).saturating_mul(Self::RECORD_HEADER))
                .saturating_add(Self::session_owed_len(config)),
        }
    }

    /// How many answers to retransmitted requests may wait for room in the transmit queue of a
    /// resumed connection (SPEC.md §13.5): `max_concurrent_calls + max_concurrent_streams +
    /// 16`, every exchange the peer may have open towards us plus slack. A peer that makes one
    /// more wait (it retransmits more than it can have open and does not read) is closed with
    /// ENHANCE_YOUR_CALM. The same bound with and without `alloc`.
    pub const fn owed_answers(config: &Config) -> usize {
        (config.max_concurrent_calls as usize)
            .saturating_add(config.max_concurrent_streams as usize)
            .saturating_add(16)
    }

    /// Bytes of [`SessionStorage::replies`](DatagramStorage::replies) (its front) that hold the
    /// owed answers of a resumable session: `8 ×` [`owed_answers`](Self::owed_answers); 0 in
    /// datagram mode (which owes none).
    pub const fn session_owed_len(config: &Config) -> usize {
        match config.transport {
            Transport::Datagram { .. } => 0,
            _ => Self::owed_answers(config).saturating_mul(8),
        }
    }

    /// Bytes [`SessionStorage::retained`](DatagramStorage::retained) needs for a resumable
    /// session: `max_retained_bytes + RECORD_HEADER × (max_outbound_calls +
    /// max_outbound_streams)` (every request we may have open, with its bookkeeping); in
    /// datagram mode (no streams) [`retained_len`](Self::retained_len). Unconfirmed stream items
    /// share this buffer (32 bytes + the item each, within `max_retained_bytes`).
    pub const fn session_retained_len(config: &Config) -> usize {
        let opens = match config.transport {
            Transport::Datagram { .. } => config.max_outbound_calls as usize,
            _ => (config.max_outbound_calls as usize).saturating_add(config.max_outbound_streams as usize),
        };
        (config.max_retained_bytes as usize).saturating_add(opens.saturating_mul(Self::RECORD_HEADER))
    }

    /// Bytes `rx` needs: one whole frame of `config.max_frame_size` with the largest header
    /// (`max_frame_size + 9`), and on a packet or datagram transport at least one whole datagram
    /// of `max_datagram` bytes.
    pub const fn rx_len(config: &Config) -> usize {
        let frame = config.max_frame_size as usize + MAX_HEADER_LEN;
        match config.transport {
            Transport::Stream => frame,
            Transport::Packet { max_datagram } | Transport::Datagram { max_datagram } => {
                max(frame, max_datagram as usize)
            }
        }
    }

    /// Bytes `tx` needs: `config.max_tx_buffer`, the most the connection queues for sending
    /// (beyond it API calls return [`ApiError::TxFull`](crate::ApiError::TxFull)). Bytes past
    /// this length are not used.
    pub const fn tx_len(config: &Config) -> usize {
        config.max_tx_buffer as usize
    }

    /// Bytes `reassembly` needs: `config.max_message_size`, the largest message the connection
    /// announces it accepts, which may arrive split into frames (SPEC.md §9). Datagram mode
    /// forbids fragmentation (SPEC.md §14.7), and a build without the `fragmentation` feature
    /// never reassembles (§9.7), so there it needs none.
    pub const fn reassembly_len(config: &Config) -> usize {
        match config.transport {
            Transport::Datagram { .. } => 0,
            _ if !crate::config::FRAGMENTATION => 0,
            _ => config.max_message_size as usize,
        }
    }

    /// Entries `slots` needs: one per exchange open at once in either direction,
    /// `max_concurrent_calls + max_concurrent_streams + max_outbound_calls +
    /// max_outbound_streams` (streams do not exist in datagram mode, SPEC.md §14.7, nor in a
    /// build without the `streams` feature, §7.4.7). Each entry is `size_of::<Option<Slot>>()`
    /// bytes.
    pub const fn slots_len(config: &Config) -> usize {
        let calls = config.max_concurrent_calls as usize + config.max_outbound_calls as usize;
        match config.transport {
            Transport::Datagram { .. } => calls,
            _ if !crate::config::STREAMS => calls,
            _ => calls + config.max_concurrent_streams as usize + config.max_outbound_streams as usize,
        }
    }

    /// Total bytes of memory a [`Storage`] for `config` occupies (the four buffers together),
    /// plus, in datagram mode, its [`DatagramStorage`].
    pub const fn bytes_len(config: &Config) -> usize {
        Self::rx_len(config)
            + Self::tx_len(config)
            + Self::reassembly_len(config)
            + Self::slots_len(config) * core::mem::size_of::<Option<Slot>>()
            + Self::replies_len(config)
            + Self::retained_len(config)
    }

    /// Checks every buffer against what `config` needs, first `rx`, then `tx`, `reassembly`
    /// and `slots`.
    pub fn check(&self, config: &Config) -> Result<(), StorageError> {
        let checks = [
            (StorageBuffer::Rx, self.rx.len(), Self::rx_len(config)),
            (StorageBuffer::Tx, self.tx.len(), Self::tx_len(config)),
            (StorageBuffer::Reassembly, self.reassembly.len(), Self::reassembly_len(config)),
            (StorageBuffer::Slots, self.slots.len(), Self::slots_len(config)),
        ];
        for (buffer, given, needed) in checks {
            if given < needed {
                return Err(StorageError::TooSmall { buffer, given, needed });
            }
        }
        Ok(())
    }
}

/// One buffer of a [`Storage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageBuffer {
    /// [`Storage::rx`], sized by [`Storage::rx_len`].
    Rx,
    /// [`Storage::tx`], sized by [`Storage::tx_len`].
    Tx,
    /// [`Storage::reassembly`], sized by [`Storage::reassembly_len`].
    Reassembly,
    /// [`Storage::slots`], sized by [`Storage::slots_len`].
    Slots,
    /// [`DatagramStorage::replies`], sized by [`Storage::replies_len`].
    Replies,
    /// [`DatagramStorage::retained`], sized by [`Storage::retained_len`].
    Retained,
}

impl StorageBuffer {
    /// The field's name, `storage.rx` … `dgram.replies`, `dgram.retained`.
    pub const fn name(self) -> &'static str {
        match self {
            StorageBuffer::Rx => "storage.rx",
            StorageBuffer::Tx => "storage.tx",
            StorageBuffer::Reassembly => "storage.reassembly",
            StorageBuffer::Slots => "storage.slots",
            StorageBuffer::Replies => "dgram.replies",
            StorageBuffer::Retained => "dgram.retained",
        }
    }

    /// The `const fn` that computes its size.
    const fn sizer(self) -> &'static str {
        match self {
            StorageBuffer::Rx => "Storage::rx_len",
            StorageBuffer::Tx => "Storage::tx_len",
            StorageBuffer::Reassembly => "Storage::reassembly_len",
            StorageBuffer::Slots => "Storage::slots_len",
            StorageBuffer::Replies => {
                "Storage::replies_len (Storage::session_replies_len for a resumable session)"
            }
            StorageBuffer::Retained => {
                "Storage::retained_len (Storage::session_retained_len for a resumable session)"
            }
        }
    }

    /// The `Config` fields that set its size, the ones to lower instead of growing the buffer.
    const fn fields(self) -> &'static str {
        match self {
            StorageBuffer::Rx => "max_frame_size (and max_datagram)",
            StorageBuffer::Tx => "max_tx_buffer",
            StorageBuffer::Reassembly => "max_message_size",
            StorageBuffer::Slots => {
                "max_concurrent_calls, max_concurrent_streams, max_outbound_calls, max_outbound_streams"
            }
            StorageBuffer::Replies => "reply_cache_bytes, reply_cache_entries",
            StorageBuffer::Retained => {
                "max_retained_bytes, max_outbound_calls (and max_outbound_streams in a session)"
            }
        }
    }

    /// What its length counts.
    const fn unit(self) -> &'static str {
        match self {
            StorageBuffer::Slots => "entries",
            _ => "bytes",
        }
    }
}

/// Why [`Connection::with_storage`](crate::Connection::with_storage) refused to build a
/// connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The configuration itself is invalid.
    Config(ConfigError),
    /// A buffer is smaller than the configuration needs.
    TooSmall {
        /// Which buffer.
        buffer: StorageBuffer,
        /// Its length (bytes, or entries for `slots`).
        given: usize,
        /// The length the configuration needs (see the `Storage::*_len` functions).
        needed: usize,
    },
}

impl From<ConfigError> for StorageError {
    fn from(e: ConfigError) -> Self {
        StorageError::Config(e)
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Config(e) => e.fmt(f),
            StorageError::TooSmall { buffer, given, needed } => write!(
                f,
                "{} holds {given} {unit} but this Config needs {needed}: size it with \
                 `{}(&config)`, or lower {} in the Config",
                buffer.name(),
                buffer.sizer(),
                buffer.fields(),
                unit = buffer.unit(),
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Config(e) => Some(e),
            StorageError::TooSmall { .. } => None,
        }
    }
}
