//! Moving bytes between a transport and the core, for any socket API: the runtime passes a
//! non-blocking read or write as a closure returning `Poll` (`Pending`: it would block; an
//! async runtime's `poll_read`, or a blocking runtime's non-blocking socket with `WouldBlock`
//! mapped to `Pending`).
//!
//! Reading: on a byte stream, each turn first reads into a small stack buffer, so that waiting
//! for input reserves nothing in the core (an idle connection keeps no receive buffer); only
//! when that read fills it (more is coming) does the pump read straight into the core's buffer,
//! and so do the following rounds, without the small read, until one finds the socket empty
//! (bulk input costs no extra system call or copy per round).
//! On packet transports (SEQPACKET, UDP) every read is one whole packet, at most one per round
//! (its frames are drained before the next); a read may return a packet's real length when it
//! did not fit (`MSG_TRUNC`), which the core then refuses as too large. End of stream and read errors end the input.
//! Writing: what the core queued, until the socket would block; a failed write means the peer
//! is gone and everything queued from then on is dropped.
//!
//! TLS (`tls://`): the connection's [`TlsSession`] sits between the socket closures and the
//! above, which then moves plaintext; every write also flushes what TLS has to send even when
//! the core has nothing (handshake messages, alerts). When the handshake completes the pump
//! records the peer's certificates for the authenticator; a TLS failure ends the input and is
//! recorded for `peer::connected`'s error. On a plaintext byte stream, a first read that is a
//! TLS record is recorded as such (the peer expects TLS), and one that is an HTTP response too
//! (the peer is a WebSocket endpoint).
//! (Layer 2: imports `conn`, `clock`, `tls`, `state`.)

use core::task::Poll;
use std::io::{self, IoSlice, IoSliceMut};

use tandem_core::{DirectRead, Transport};

use crate::clock::now;
use crate::conn::Inner;
use crate::state::TransportFailure;
use crate::tls::TlsSession;

/// Socket reads per round (on a byte stream, after the small read).
const READS: usize = 8;
/// The small first read of each round on a byte stream.
const SMALL_READ: usize = 1024;
/// Most pieces of queued bytes handed to one vectored write.
const PIECES: usize = 16;
/// Stream items of at least this many bytes are read straight into their own buffer
/// (`Connection::direct_offer`) instead of into the core's and then copied.
const DIRECT_MIN: usize = 16 * 1024;
/// After an item received directly, the next read takes at most this much — the next frame's
/// header and a little more — so that a following large item is received directly too.
const HEADER_READ: usize = 64;
/// An item received directly grows its buffer with what arrives (doubling, from this much), so
/// that a frame's header alone never makes the runtime allocate its whole announced size.
const DIRECT_FIRST: usize = 16 * 1024;

/// A connection's I/O state between the socket and the core.
#[derive(Debug)]
pub struct Pump {
    id: u64,
    /// Packet transports: the datagram being sent, and its length (0: none).
    datagram: Vec<u8>,
    datagram_len: usize,
    /// 0 on a byte stream.
    max_datagram: usize,
    eof: bool,
    broken: bool,
    /// Bytes read that the core's receive buffer had no room for yet (rare: it was full of
    /// unprocessed frames); offered again before anything else is read.
    pending: Vec<u8>,
    /// `tls://`: the TLS session between the socket and the core.
    tls: Option<Box<TlsSession>>,
    /// Nothing was read from this transport yet.
    first: bool,
    /// Byte stream: the last small read came back full and no round since found the socket
    /// empty at once — data is streaming in, so rounds read straight into the core's buffer
    /// (one system call and one copy fewer per round).
    bulk: bool,
    /// Byte stream: the stream item whose payload is being read straight into its buffer.
    direct: Option<DirectItem>,
    /// Byte stream: an item received directly just completed; the next read is short.
    after_direct: bool,
}

/// A stream item being received directly: its buffer (grown as the payload arrives) and how
/// much of the payload is in.
#[derive(Debug)]
struct DirectItem {
    buf: Vec<u8>,
    got: usize,
    len: usize,
}

/// What one read of a direct item did.
enum Step {
    /// Bytes came in (or a read was interrupted): go on.
    Progress,
    /// The socket has nothing now.
    Blocked,
    /// The input ended (end of stream, or a failed read).
    Ended,
}

impl Pump {
    /// The pump of a connection (its transport kind is the core's configuration).
    pub fn new(id: u64, inner: &Inner) -> Self {
        let max_datagram = match inner.conn.config().transport {
            Transport::Stream => 0,
            Transport::Packet { max_datagram } | Transport::Datagram { max_datagram } => {
                max_datagram as usize
            }
        };
        Pump {
            id,
            datagram: vec![0; max_datagram],
            datagram_len: 0,
            max_datagram,
            eof: false,
            broken: false,
            pending: Vec::new(),
            tls: None,
            first: true,
            bulk: false,
            direct: None,
            after_direct: false,
        }
    }

    /// The largest packet (0 on a byte stream).
    pub fn max_packet(&self) -> usize {
        self.max_datagram
    }

    /// The input has ended (end of stream, or a read or write failed).
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// A write failed: the peer is gone.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// A new transport replaces the old one (a resumed session, or a client's reconnection):
    /// `pending` are bytes already read from it, `tls` its TLS session on `tls://`.
    pub fn install(&mut self, pending: Vec<u8>, tls: Option<Box<TlsSession>>) {
        self.eof = false;
        self.broken = false;
        self.first = pending.is_empty();
        self.bulk = false;
        self.direct = None;
        self.after_direct = false;
        self.pending = pending;
        self.datagram_len = 0;
        self.tls = tls;
    }

    /// Whether the transport speaks TLS (`tls://`).
    pub fn has_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The TLS session, handed over with the transport.
    pub fn take_tls(&mut self) -> Option<Box<TlsSession>> {
        self.tls.take()
    }

    /// The connection has ended: on TLS, sends close_notify (one non-blocking attempt: the
    /// socket is closed next either way).
    pub fn finish(&mut self, mut write: impl FnMut(&[u8]) -> Poll<io::Result<usize>>) {
        if let Some(tls) = self.tls.as_mut() {
            if !self.broken {
                tls.close();
                let _ = tls.flush(&mut write);
            }
        }
    }

    /// The bytes read and not yet taken by the core (handed over with the transport).
    pub fn take_pending(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.pending)
    }

    fn end_input(&mut self, inner: &mut Inner) {
        self.eof = true;
        inner.conn.handle_eof(now());
    }

    /// Reads what the socket has into the core (through TLS on `tls://`). Returns whether
    /// anything happened. `read` is a vectored read (`readv`; a transport without one reads
    /// into the first non-empty slice): an item received directly takes the rest of its
    /// payload and the next frame's header in one system call.
    pub fn read(
        &mut self,
        inner: &mut Inner,
        mut read: impl FnMut(&mut [IoSliceMut<'_>]) -> Poll<io::Result<usize>>,
    ) -> bool {
        let Some(mut tls) = self.tls.take() else { return self.read_from(inner, read, true) };
        let mut socket = |buf: &mut [u8]| read(&mut [IoSliceMut::new(buf)]);
        let progress = self.read_from(
            inner,
            |bufs| match bufs.iter_mut().find(|b| !b.is_empty()) {
                Some(buf) => tls.read(&mut socket, buf),
                None => Poll::Ready(Ok(0)),
            },
            false,
        );
        if let Some(certs) = tls.handshake_done() {
            tracing::debug!(conn = self.id, certificates = certs.len(), "TLS handshake done");
            inner.peer_certificates = Some(certs.into());
        }
        if let (Some(f), None) = (tls.failure(), &inner.transport_failure) {
            tracing::info!(conn = self.id, remote = ?inner.remote, "TLS failed: {f}");
            inner.transport_failure = Some(TransportFailure::Tls(f.to_string()));
        }
        self.tls = Some(tls);
        progress
    }

    fn read_from(
        &mut self,
        inner: &mut Inner,
        mut read: impl FnMut(&mut [IoSliceMut<'_>]) -> Poll<io::Result<usize>>,
        plain: bool,
    ) -> bool {
        if self.eof || inner.conn.state() == tandem_core::State::Closed || inner.conn.needs_transport() {
            return false;
        }
        let mut progress = false;
        if self.max_datagram == 0 && !self.pending.is_empty() {
            let n = inner.conn.handle_input(now(), &self.pending);
            self.pending.drain(..n);
            if !self.pending.is_empty() {
                // Still full: events must be drained first.
                return n > 0;
            }
            self.pending = Vec::new();
        }
        if self.max_datagram == 0 && !self.bulk && !self.direct_ready(inner) {
            let mut small = [0u8; SMALL_READ];
            match read(&mut [IoSliceMut::new(&mut small)]) {
                Poll::Ready(Ok(0)) => {
                    self.end_input(inner);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    // Only before the handshake: a connected session's frames are not looked at.
                    let first = core::mem::take(&mut self.first) && !inner.connected;
                    if first && plain && looks_like_tls(&small[..n]) {
                        tracing::info!(conn = self.id, remote = ?inner.remote, "the peer sent a TLS record on a plaintext connection: it expects tls://");
                        inner.transport_failure = Some(TransportFailure::PeerSpeaksTls);
                    }
                    if first && plain && small[..n].starts_with(b"HTTP/1.") {
                        tracing::info!(conn = self.id, remote = ?inner.remote, "the peer answered in HTTP: it expects ws://");
                        inner.transport_failure = Some(TransportFailure::PeerSpeaksHttp);
                    }
                    let taken = inner.conn.handle_input(now(), &small[..n]);
                    if taken < n {
                        self.pending.extend_from_slice(&small[taken..n]);
                        return true;
                    }
                    if n < SMALL_READ {
                        return true;
                    }
                    // More is coming: the next rounds read straight into the core's buffer.
                    self.bulk = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => return true,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = self.id, error = %e, "read failed: treating as end of stream");
                    self.end_input(inner);
                    return true;
                }
                Poll::Pending => return false,
            }
        }
        for r in 0..READS {
            if self.max_datagram == 0 && self.direct_ready(inner) {
                match self.read_direct(inner, &mut read) {
                    Step::Progress => {
                        progress = true;
                        continue;
                    }
                    Step::Ended => return true,
                    Step::Blocked => {
                        if r == 0 && !progress {
                            self.bulk = false;
                        }
                        break;
                    }
                }
            }
            let buf = inner.conn.recv_buffer();
            // A packet must land whole; otherwise wait until events release the buffer.
            if buf.is_empty() || buf.len() < self.max_datagram {
                break;
            }
            // After an item received directly: only the next frame's header, so that its
            // payload can be received directly too.
            let buf = if core::mem::take(&mut self.after_direct) {
                let n = buf.len().min(HEADER_READ);
                &mut buf[..n]
            } else {
                buf
            };
            let room = buf.len();
            match read(&mut [IoSliceMut::new(buf)]) {
                Poll::Ready(Ok(0)) => {
                    self.end_input(inner);
                    return true;
                }
                Poll::Ready(Ok(n)) if n > room => {
                    // A packet larger than the buffer (the transport reports a packet's real
                    // length, `MSG_TRUNC`): the core refuses it (LIMIT_EXCEEDED on SEQPACKET).
                    let oversized = vec![0u8; n.min(self.max_datagram + 1)];
                    let _ = inner.conn.handle_input(now(), &oversized);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    inner.conn.recv_commit(now(), n);
                    progress = true;
                    if self.max_datagram > 0 {
                        // One datagram per round: its frames are drained before the next.
                        break;
                    }
                }
                // Interrupted, or TLS records without plaintext: another round reads on (the
                // socket has not said it would block, so nothing else would wake the driver).
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => progress = true,
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = self.id, error = %e, "read failed: treating as end of stream");
                    self.end_input(inner);
                    return true;
                }
                Poll::Pending => {
                    if r == 0 && !progress {
                        // Nothing to read at all: the stream paused; waiting goes back to the
                        // small read (an idle connection's buffer can then be released).
                        self.bulk = false;
                    }
                    break;
                }
            }
        }
        progress
    }

    /// Byte stream: whether a stream item is being received directly, starting one if the
    /// core offers it (its payload's first bytes are copied, the rest will be read into it).
    /// A partial item whose transport the core has let go of is dropped.
    fn direct_ready(&mut self, inner: &mut Inner) -> bool {
        if let Some(d) = &self.direct {
            if inner.conn.direct_remaining() == Some(d.len - d.got) {
                return true;
            }
            self.direct = None;
        }
        if !self.pending.is_empty() {
            return false;
        }
        let Some(offer) = inner.conn.direct_offer(DIRECT_MIN) else { return false };
        let (len, have) = (offer.len, offer.received.len());
        // A spare's bytes are initialized: reading into them needs no zeroing.
        let mut buf = inner.spare.take_filled();
        buf.truncate(len);
        let first = have.max(DIRECT_FIRST.min(len));
        if buf.len() < first {
            buf.resize(first, 0);
        }
        buf[..have].copy_from_slice(offer.received);
        let rest = inner.conn.direct_begin(DIRECT_MIN);
        debug_assert_eq!(rest, len - have);
        self.direct = Some(DirectItem { buf, got: have, len });
        true
    }

    /// Reads once into the direct item (at most what its payload still lacks); a completed
    /// item goes to its stream's receiver.
    fn read_direct(
        &mut self,
        inner: &mut Inner,
        read: &mut impl FnMut(&mut [IoSliceMut<'_>]) -> Poll<io::Result<usize>>,
    ) -> Step {
        let Some(d) = self.direct.as_mut() else { return Step::Blocked };
        if d.buf.len() == d.got {
            let grow = d.len.min(d.got.saturating_mul(2).max(DIRECT_FIRST));
            d.buf.resize(grow, 0);
        }
        // Once the buffer reaches the payload's end, the same read takes the beginning of
        // the next frame (on a transport with vectored reads).
        let last = d.buf.len() == d.len;
        let mut head = [0u8; HEADER_READ];
        let room = d.buf.len() - d.got;
        let r = if last {
            read(&mut [IoSliceMut::new(&mut d.buf[d.got..]), IoSliceMut::new(&mut head)])
        } else {
            read(&mut [IoSliceMut::new(&mut d.buf[d.got..])])
        };
        match r {
            Poll::Ready(Ok(0)) => {
                self.end_input(inner);
                Step::Ended
            }
            Poll::Ready(Ok(n)) => {
                let extra = n.saturating_sub(room).min(HEADER_READ);
                let n = n.min(room);
                d.got += n;
                match inner.conn.direct_read(now(), n) {
                    DirectRead::More(_) => {}
                    DirectRead::Item(id) => {
                        let d = self.direct.take().expect("checked above");
                        self.after_direct = true;
                        inner.stream_item(id, d.buf);
                    }
                    DirectRead::Dropped => {
                        let d = self.direct.take().expect("checked above");
                        self.after_direct = true;
                        inner.give_spare(d.buf);
                    }
                }
                if extra > 0 {
                    // The payload is complete (only then does the read reach `head`).
                    let taken = inner.conn.handle_input(now(), &head[..extra]);
                    self.pending.extend_from_slice(&head[taken..extra]);
                }
                Step::Progress
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Step::Progress,
            Poll::Ready(Err(e)) => {
                tracing::debug!(conn = self.id, error = %e, "read failed: treating as end of stream");
                self.end_input(inner);
                Step::Ended
            }
            Poll::Pending => Step::Blocked,
        }
    }

    /// Writes what the core has queued (one whole datagram per write on packet transports;
    /// through TLS on `tls://`, whose own records are flushed too). Returns whether anything
    /// was written.
    pub fn write(
        &mut self,
        inner: &mut Inner,
        mut write: impl FnMut(&[u8]) -> Poll<io::Result<usize>>,
    ) -> bool {
        let Some(mut tls) = self.tls.take() else { return self.write_to(inner, write) };
        let mut progress = self.write_to(inner, |data| tls.write(&mut write, data));
        if !self.broken {
            match tls.flush(&mut write) {
                Poll::Ready(Ok(wrote)) => progress |= wrote,
                Poll::Ready(Err(e)) if e.kind() != io::ErrorKind::Interrupted => {
                    tracing::debug!(conn = self.id, error = %e, "write failed: peer gone");
                    self.broken = true;
                    if !self.eof {
                        self.end_input(inner);
                    }
                    progress = true;
                }
                _ => {}
            }
        }
        self.tls = Some(tls);
        progress
    }

    /// [`write`](Self::write) with a vectored write: on a plain byte stream, what the core
    /// has queued goes out in as few system calls as the socket allows, whatever pieces it
    /// is in (the transmit queue's two regions, stream items sent from their retained copy;
    /// see `Connection::transmit_pieces`). Packet transports and TLS write one piece at a time.
    pub fn write_vectored(
        &mut self,
        inner: &mut Inner,
        mut writev: impl FnMut(&[IoSlice<'_>]) -> Poll<io::Result<usize>>,
    ) -> bool {
        if self.tls.is_some() || self.max_datagram > 0 {
            return self.write(inner, |data| writev(&[IoSlice::new(data)]));
        }
        let mut progress = false;
        loop {
            if self.broken {
                return self.write_to(inner, |_| Poll::Ready(Ok(0))) || progress;
            }
            let mut pieces: [&[u8]; PIECES] = [&[]; PIECES];
            let k = inner.conn.transmit_pieces(&mut pieces);
            if k == 0 {
                return progress;
            }
            let iov: [IoSlice<'_>; PIECES] = core::array::from_fn(|i| IoSlice::new(pieces[i]));
            let r = writev(&iov[..k]);
            match self.wrote(inner, r) {
                Some(0) => progress |= self.broken,
                Some(n) => {
                    progress = true;
                    inner.conn.transmit_done(n);
                }
                None => return progress,
            }
        }
    }

    /// What a write's outcome means: `Some(n)` bytes written (0: interrupted, or failed and the
    /// connection is now broken: the loop goes on either way), `None`: the socket is full.
    fn wrote(&mut self, inner: &mut Inner, r: Poll<io::Result<usize>>) -> Option<usize> {
        match r {
            Poll::Ready(Ok(n)) if n > 0 => Some(n),
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => Some(0),
            Poll::Ready(r) => {
                self.write_failed(inner, r.err());
                Some(0)
            }
            Poll::Pending => None,
        }
    }

    /// A write failed or wrote nothing: the peer is gone.
    fn write_failed(&mut self, inner: &mut Inner, e: Option<io::Error>) {
        let e = e.map(|e| e.to_string()).unwrap_or_else(|| "wrote 0 bytes".into());
        tracing::debug!(conn = self.id, error = %e, "write failed: peer gone");
        self.broken = true;
        if !self.eof {
            self.end_input(inner);
        }
    }

    fn write_to(
        &mut self,
        inner: &mut Inner,
        mut write: impl FnMut(&[u8]) -> Poll<io::Result<usize>>,
    ) -> bool {
        let mut progress = false;
        loop {
            if self.broken {
                // Everything queued is dropped (the queue may hold it in two pieces).
                loop {
                    let n = inner.conn.transmit_data().len();
                    if n == 0 {
                        break;
                    }
                    inner.conn.transmit_done(n);
                }
                self.datagram_len = 0;
                return progress;
            }
            let data = if self.max_datagram > 0 {
                if self.datagram_len == 0 {
                    self.datagram_len = inner.conn.poll_transmit(now(), &mut self.datagram);
                }
                &self.datagram[..self.datagram_len]
            } else {
                inner.conn.transmit_data()
            };
            if data.is_empty() {
                return progress;
            }
            let r = write(data);
            match self.wrote(inner, r) {
                Some(0) => progress |= self.broken,
                Some(n) => {
                    progress = true;
                    if self.max_datagram > 0 {
                        self.datagram_len = 0;
                    } else {
                        inner.conn.transmit_done(n);
                    }
                }
                None => return progress,
            }
        }
    }
}

/// Whether `data` starts like a TLS record (handshake or alert, TLS 1.0–1.3 record versions):
/// never the first bytes of a tandem peer, whose first frame is HELLO (0x01) or CLOSE (0x02).
fn looks_like_tls(data: &[u8]) -> bool {
    matches!(data, [0x15 | 0x16, 0x03, 0x01..=0x04, ..])
}
