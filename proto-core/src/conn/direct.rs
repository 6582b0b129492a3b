//! Direct receive of stream items (byte streams): the payload of a large STREAM_DATA frame is
//! read by the runtime straight into the buffer that becomes the item, instead of into the
//! receive buffer and then copied out of it.
//!
//! Nothing of this is visible on the wire: the frame is the same, and it is checked and
//! accounted exactly as if it had arrived through [`Connection::recv_buffer`] — once it is
//! complete. Until then only its header has been looked at, without changing any state; a
//! transport lost in the middle of the payload therefore loses the frame as it would lose a
//! partial frame in the receive buffer (a resumed session's STREAM_RESUME asks for it again).
//!
//! The protocol, for the runtime, is on [`Connection::direct_offer`].

use super::{Connection, State};
use crate::config::Transport;
use crate::frame::{flags, ty, Frame};
use crate::time::Instant;

/// The head of a STREAM_DATA frame that may be received directly (see
/// [`Connection::direct_offer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectOffer<'c> {
    /// The stream the item is for.
    pub stream: u64,
    /// The whole payload's length: the size of the item.
    pub len: usize,
    /// The payload bytes already received: the item's first bytes, to copy before
    /// [`Connection::direct_begin`].
    pub received: &'c [u8],
}

/// What a direct read completed (see [`Connection::direct_read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectRead {
    /// This many payload bytes are still to come; read them into the item's buffer.
    More(usize),
    /// The payload is complete and is the next item of this stream: deliver it as an
    /// [`Event::StreamData`](crate::Event::StreamData) of this stream would be delivered.
    Item(u64),
    /// The payload is complete but is no item: the stream was reset by us or is over (its
    /// credit is already given back), or the frame broke a rule and the connection failed
    /// ([`poll_event`](Connection::poll_event) reports it). Drop the buffer.
    Dropped,
}

/// A STREAM_DATA frame whose payload is being received directly.
#[derive(Debug, Clone, Copy)]
pub(super) struct Direct {
    #[cfg_attr(not(feature = "streams"), allow(dead_code))]
    flags: u8,
    id: u64,
    len: usize,
    got: usize,
}

impl Connection<'_> {
    /// Whether the receive buffer holds nothing but the start of a STREAM_DATA frame whose
    /// payload (at least `min` bytes) may be read straight into the item's own buffer instead
    /// of into [`recv_buffer`](Self::recv_buffer) and then copied out of it. Call it after
    /// [`poll_event`](Self::poll_event) returned `None`. Only on a byte stream; `None` while
    /// a direct payload is pending.
    ///
    /// The runtime then makes a buffer for [`DirectOffer::len`] bytes, copies
    /// [`DirectOffer::received`] to its start, calls [`direct_begin`](Self::direct_begin), and
    /// reads at most [`direct_remaining`](Self::direct_remaining) bytes at a time into the
    /// rest, reporting each read with [`direct_read`](Self::direct_read); its answer at the
    /// end says whether the buffer is an item of a stream.
    ///
    /// Nothing of this is visible on the wire: the frame is checked and accounted exactly as if
    /// it had arrived through the receive buffer, once it is complete. It is offered only when
    /// it would be accepted as it stands (the stream is open for receiving, and the payload is
    /// within its credit and the connection's), so what the runtime allocates is never more
    /// than the credit this end granted; a frame the checks would reject is left to the normal
    /// path. A transport lost before the payload is complete loses the frame, as it would lose
    /// a partial frame in the receive buffer ([`direct_remaining`](Self::direct_remaining)
    /// becomes `None`: drop the partial item).
    ///
    /// ```
    /// use tandem_core::{Config, Connection, DirectRead, Identity, Instant, MethodId, Role};
    ///
    /// let now = Instant::ZERO;
    /// let me = |name: &'static str| Identity { name: name.as_bytes(), ..Identity::default() };
    /// let mut a = Connection::new(Role::Dialer, Config::default(), me("a"), now).unwrap();
    /// let mut b = Connection::new(Role::Acceptor, Config::default(), me("b"), now).unwrap();
    /// // What `from` has queued: the bytes a socket would carry.
    /// fn wire(from: &mut Connection, now: Instant) -> Vec<u8> {
    ///     let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
    ///     loop {
    ///         let n = from.poll_transmit(now, &mut buf);
    ///         if n == 0 { return out; }
    ///         out.extend_from_slice(&buf[..n]);
    ///     }
    /// }
    /// // Reads `bytes` through the receive buffer, draining (here: ignoring) the events.
    /// fn read(to: &mut Connection, now: Instant, bytes: &[u8]) {
    ///     let mut off = 0;
    ///     while off < bytes.len() {
    ///         off += to.handle_input(now, &bytes[off..]);
    ///         while to.poll_event(now).is_some() {}
    ///     }
    /// }
    /// read(&mut b, now, &wire(&mut a, now)); // the handshake
    /// read(&mut a, now, &wire(&mut b, now));
    /// let id = a.open_stream(now, MethodId::new(1, 1), b"", None, false).unwrap();
    /// a.stream_send(id, &[7; 40_000]).unwrap();
    /// let bytes = wire(&mut a, now);
    ///
    /// // A first read brings the stream's opening and the item's first bytes ...
    /// let first = bytes.len() - 39_000;
    /// read(&mut b, now, &bytes[..first]);
    /// let offer = b.direct_offer(16 * 1024).expect("a large item has begun");
    /// assert_eq!((offer.stream, offer.len), (id, 40_000));
    /// let mut item = offer.received.to_vec();
    /// assert_eq!(b.direct_begin(16 * 1024), 39_000);
    /// // ... and the rest is read straight into the item.
    /// item.extend_from_slice(&bytes[first..]);
    /// assert_eq!(b.direct_read(now, 39_000), DirectRead::Item(id));
    /// assert_eq!(item, [7; 40_000]);
    /// ```
    pub fn direct_offer(&mut self, min: usize) -> Option<DirectOffer<'_>> {
        let (head, d) = self.direct_head(min)?;
        let received = &self.rx.data()[head..];
        Some(DirectOffer { stream: d.id, len: d.len, received })
    }

    /// Starts the direct receive of the frame [`direct_offer`](Self::direct_offer) offered:
    /// its header and the payload bytes already received leave the receive buffer (the caller
    /// has copied them), and [`recv_buffer`](Self::recv_buffer) stays empty until the payload
    /// is complete. Returns the number of payload bytes still to come (0: nothing was offered,
    /// nothing changed).
    pub fn direct_begin(&mut self, min: usize) -> usize {
        let Some((head, d)) = self.direct_head(min) else { return 0 };
        let n = self.rx.len();
        self.rx.consume(n);
        self.direct = Some(Direct { got: n - head, ..d });
        d.len - (n - head)
    }

    /// Payload bytes of the direct item still to come, or `None` when no direct receive is
    /// pending (none began, or the transport it was on was lost: drop a partial item).
    pub fn direct_remaining(&self) -> Option<usize> {
        self.direct.map(|d| d.len - d.got)
    }

    /// Accepts `n` payload bytes just read into the direct item (at most
    /// [`direct_remaining`](Self::direct_remaining)). When they complete the payload, the
    /// frame is processed as if it had arrived whole, and the answer says what the item is.
    pub fn direct_read(&mut self, now: Instant, n: usize) -> DirectRead {
        let Some(d) = self.direct.as_mut() else { return DirectRead::Dropped };
        let n = n.min(d.len - d.got);
        d.got += n;
        self.stats.bytes_received += n as u64;
        self.last_recv = self.last_recv.max(now);
        if d.got < d.len {
            return DirectRead::More(d.len - d.got);
        }
        let d = *d;
        self.direct = None;
        if self.state == State::Closed {
            return DirectRead::Dropped;
        }
        self.stats.frames_received += 1;
        self.direct_frame(now, d)
    }

    /// The complete frame, checked and accounted as if it had arrived whole.
    #[cfg(feature = "streams")]
    fn direct_frame(&mut self, now: Instant, d: Direct) -> DirectRead {
        // `total_len` carries the payload's length: without MORE it is the frame's size.
        match self.on_stream_data(d.flags, d.id, Some(d.len as u64), &[], &[]) {
            Ok(Some(_)) => DirectRead::Item(d.id),
            Ok(None) => DirectRead::Dropped,
            Err(e) => {
                self.fail(now, e);
                DirectRead::Dropped
            }
        }
    }

    /// Without streams nothing is offered (`direct_acceptable`).
    #[cfg(not(feature = "streams"))]
    fn direct_frame(&mut self, _now: Instant, _d: Direct) -> DirectRead {
        DirectRead::Dropped
    }

    /// The offered frame: where its payload starts in the receive buffer, and its record.
    fn direct_head(&mut self, min: usize) -> Option<(usize, Direct)> {
        if self.direct.is_some()
            || !matches!(self.config.transport, Transport::Stream)
            || !matches!(self.state, State::Open | State::Draining)
            || self.eof
            || self.rx_error.is_some()
            || self.needs_transport()
            || self.resume_request
            || self.auth_request
            || self.resuming
        {
            return None;
        }
        #[cfg(feature = "datagram")]
        if self.dgram.is_some() {
            return None;
        }
        self.release_rx();
        let data = self.rx.data();
        let (t, body, hlen) = Frame::peek_header(data, self.config.max_frame_size as usize).ok()??;
        if t != ty::STREAM_DATA || data.len() >= hlen + body {
            return None;
        }
        // Without MORE the body is flags, id, payload: what has arrived of it decodes as a
        // frame with a shorter payload.
        let Ok(Frame::StreamData { flags: fl, id, total_len: None, payload }) =
            Frame::decode_body(ty::STREAM_DATA, &data[hlen..])
        else {
            return None;
        };
        let head = data.len() - payload.len();
        let len = hlen + body - head;
        if fl & flags::MORE != 0 || len < min.max(1) || !self.direct_acceptable(fl, id, len as u64) {
            return None;
        }
        Some((head, Direct { flags: fl, id, len, got: 0 }))
    }
}
