//! # tandem-core
//!
//! The tandem protocol (see `SPEC.md` at the repository root) as a sans-IO state machine:
//! no sockets, no clock, no threads, no allocator required. It consumes bytes and the current
//! time and produces events, outbound bytes and the next instant at which it wants to be called.
//!
//! Every exchange type lives here: unary calls with deadlines and cancellation, reliable and
//! unreliable notifications, flow-controlled streams with half-close and reset, keepalive,
//! go-away, and fragmentation of messages larger than a frame. Once connected both peers are
//! equal: either side may call, notify or open streams.
//!
//! ## The driver loop
//!
//! A runtime (or a test) drives a [`Connection`] like this, and holds no protocol logic of its own:
//!
//! 1. read transport bytes into [`Connection::recv_buffer`], then [`Connection::recv_commit`]
//!    (on a byte stream, a large stream item's payload may instead be read straight into the
//!    item's own buffer: [`Connection::direct_offer`], after the drain of step 2);
//! 2. drain [`Connection::poll_event`] and act on each [`Event`] (answer requests, complete calls);
//! 3. drain [`Connection::poll_transmit`] into the transport (or, on a byte stream, write
//!    straight from the connection's buffers: [`Connection::transmit_pieces`] with a vectored
//!    write, or [`Connection::transmit_data`], then [`Connection::transmit_done`]; in a
//!    resumable session stream items are sent from their retained copy that way, without
//!    the copy into `poll_transmit`'s buffer);
//! 4. sleep until input arrives or [`Connection::poll_timeout`], then call
//!    [`Connection::handle_timeout`] and go to 1.
//!
//! ```
//! use tandem_core::{Config, Connection, Event, Identity, Instant, MethodId, Role, Status};
//!
//! const ECHO: MethodId = MethodId::new(1, 1);
//! let now = Instant::ZERO;
//! let me = |name: &'static str| Identity { name: name.as_bytes(), ..Identity::default() };
//! let mut client = Connection::new(Role::Dialer, Config::default(), me("client"), now).unwrap();
//! let mut server = Connection::new(Role::Acceptor, Config::default(), me("server"), now).unwrap();
//!
//! // Stands in for a socket: moves everything `from` has queued into `to`.
//! fn wire(from: &mut Connection, to: &mut Connection, now: Instant) {
//!     let mut buf = [0u8; 4096];
//!     loop {
//!         let n = from.poll_transmit(now, &mut buf);
//!         if n == 0 { break; }
//!         assert_eq!(to.handle_input(now, &buf[..n]), n);
//!     }
//! }
//!
//! let mut call = None;
//! let mut answer = None;
//! for _round in 0..4 {
//!     wire(&mut client, &mut server, now);
//!     // The server's application: echo every request.
//!     while let Some(ev) = server.poll_event(now) {
//!         if let Event::Request { id, method: ECHO, payload, .. } = ev {
//!             let body = payload.to_vec();
//!             server.respond(id, Status::OK, &body).unwrap();
//!         }
//!     }
//!     wire(&mut server, &mut client, now);
//!     // The client's application: call once connected, then wait for the answer.
//!     while let Some(ev) = client.poll_event(now) {
//!         match ev {
//!             Event::Connected => call = Some(client.call(now, ECHO, b"hello", None).unwrap()),
//!             Event::Response { id, status, payload } => answer = Some((id, status, payload.to_vec())),
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(answer, Some((call.unwrap(), Status::OK, b"hello".to_vec())));
//! ```
//!
//! Events are produced lazily: bytes handed in are parsed as [`Connection::poll_event`] is
//! drained, so always drain events after input, before transmitting.
//!
//! ## Memory
//!
//! With the `alloc` feature, `Connection::new` grows its buffers on demand up to the bounds in
//! [`Config`]. Without it, [`Connection::with_storage`] works only in caller-provided
//! [`Storage`], so firmware can place everything in `static` memory. Either way a peer can never
//! make the connection use more memory than its configuration allows.
//!
//! ## Features
//!
//! * `alloc`: `Connection::new` with growable, bounded buffers.
//! * `std` (implies `alloc`): `std::error::Error` implementations.
//! * `std` also adds `addr::Address`, the `tcp://`, `unix://`, `unix+seqpacket://` address parser.
//! * `typed`: `typed` method declarations with serde/postcard payloads (no_std, no alloc needed).
//! * `datagram` (implied by `alloc` and `serial`): datagram mode (SPEC.md §14), over UDP or a
//!   serial line. Without `alloc` its reply cache and retained requests live in caller buffers
//!   ([`Connection::with_datagram_storage`], [`DatagramStorage`]).
//! * `resume` (implied by `alloc`; brings `datagram`): session resumption on stream transports
//!   (SPEC.md §13: [`Connection::reconnect`], [`Connection::resume_from`], STREAM_RESUME).
//!   Without `alloc` the session's reply cache, retained requests and unconfirmed stream items
//!   live in caller buffers ([`Connection::with_session_storage`], [`SessionStorage`]); firmware
//!   that needs no resumption leaves the feature out and offers none (an empty session token).
//! * `serial`: the `serial` framing (SPEC.md §14.9) that carries datagram mode over a UART or
//!   USB-CDC line: COBS-delimited frames checked by CRC-32C (no_std, no alloc needed).
//! * `streams` (default): streams (SPEC.md §7.4, §10). Without it the peer announces
//!   `max_concurrent_streams` = 0, answers a STREAM_OPEN with STREAM_RESET(UNIMPLEMENTED) and
//!   carries on, and [`Connection::open_stream`] returns [`ApiError::Unsupported`] (SPEC.md
//!   §7.4.7); [`config::STREAMS`] says which build this is.
//! * `fragmentation` (default): messages larger than a frame (SPEC.md §9). Without it every
//!   message must fit one frame — [`Config::validate`] requires `max_message_size` +
//!   [`config::UNFRAGMENTED_HEADROOM`] ≤ the frame limit on byte streams — no reassembly buffer
//!   is needed, a fragmented message received is LIMIT_EXCEEDED (SPEC.md §9.7), and a message
//!   larger than the peer's frame is refused with [`ApiError::TooLarge`]; see
//!   [`config::FRAGMENTATION`].
//!
//! `streams` and `fragmentation` are default features: a firmware image that needs neither
//! (datagram mode over a serial line never uses them) leaves them out with
//! `default-features = false` and saves their code (BENCHMARKS.md, firmware size). Apart from
//! those two, which change what the peer announces and refuses as SPEC.md says, no feature
//! changes protocol behaviour.

#![cfg_attr(not(feature = "std"), no_std)]
// docs.rs builds with `--cfg docsrs` (Cargo.toml): items behind a feature say which.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The documentation links to items of every feature (docs.rs builds with all of them, where each
// link resolves); a build without `alloc` lacks some of their items (`datagram`, `resume`, the
// heap constructors), and its links to them stay plain text instead of failing `cargo doc` for a
// firmware crate.
#![cfg_attr(not(feature = "alloc"), allow(rustdoc::broken_intra_doc_links))]
// Nothing in the core may reach for std by accident (tests may).
#![cfg_attr(not(test), warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core))]

#[cfg(feature = "alloc")]
extern crate alloc;

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod addr;
#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub mod budget;
pub mod config;
mod conn;
#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub mod endpoint;
pub mod error;
pub mod event;
pub mod frame;
#[cfg(feature = "serial")]
#[cfg_attr(docsrs, doc(cfg(feature = "serial")))]
pub mod serial;
pub mod stats;
pub mod status;
mod storage;
pub mod time;
#[cfg(feature = "typed")]
#[cfg_attr(docsrs, doc(cfg(feature = "typed")))]
pub mod typed;
pub mod varint;

pub use config::{Config, ConfigError, Features, PeerLimits, Role, Transport};
pub use conn::{
    Connection, DatagramStorage, DirectOffer, DirectRead, Identity, Peer, SessionMemory, SessionStorage,
    Slot, State, Storage, StorageBuffer, StorageError,
};
pub use error::{ApiError, Blame, ConnectionError};
#[cfg(feature = "alloc")]
#[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
pub use event::OwnedEvent;
pub use event::{Event, MethodId, RequestKind, SchemaKey};
pub use stats::Stats;
pub use status::{Status, StatusBody};
pub use time::Instant;

#[cfg(test)]
mod tests;
