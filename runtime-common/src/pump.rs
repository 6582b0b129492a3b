//! Moving bytes between a transport and the core, for any socket API: the runtime passes a
//! non-blocking read or write as a closure returning `Poll` (`Pending`: it would block; an
//! async runtime's `poll_read`, or a blocking runtime's non-blocking socket with `WouldBlock`
//! mapped to `Pending`). (Layer 2: imports `conn`, `clock`.)
//!
//! Reading: on a byte stream, each turn first reads into a small stack buffer, so that waiting
//! for input reserves nothing in the core (an idle connection keeps no receive buffer); only
//! when that read fills it (more is coming) does the pump read straight into the core's buffer.
//! On packet transports (SEQPACKET, UDP) every read is one whole packet, at most one per round
//! (its frames are drained before the next); a read may return a packet's real length when it
//! did not fit (`MSG_TRUNC`), which the core then refuses as too large. End of stream and read errors end the input.
//! Writing: what the core queued, until the socket would block; a failed write means the peer
//! is gone and everything queued from then on is dropped.

use core::task::Poll;
use std::io;

use tandem_core::Transport;

use crate::clock::now;
use crate::conn::Inner;

/// Socket reads per round (on a byte stream, after the small read).
const READS: usize = 8;
/// The small first read of each round on a byte stream.
const SMALL_READ: usize = 1024;

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
        }
    }

    /// The input has ended (end of stream, or a read or write failed).
    pub fn eof(&self) -> bool {
        self.eof
    }

    /// A write failed: the peer is gone.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// A new transport replaces the old one (a resumed session): `pending` are bytes already
    /// read from it.
    pub fn install(&mut self, pending: Vec<u8>) {
        self.eof = false;
        self.broken = false;
        self.pending = pending;
        self.datagram_len = 0;
    }

    /// The bytes read and not yet taken by the core (handed over with the transport).
    pub fn take_pending(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.pending)
    }

    fn end_input(&mut self, inner: &mut Inner) {
        self.eof = true;
        inner.conn.handle_eof(now());
    }

    /// Reads what the socket has into the core. Returns whether anything happened.
    pub fn read(
        &mut self,
        inner: &mut Inner,
        mut read: impl FnMut(&mut [u8]) -> Poll<io::Result<usize>>,
    ) -> bool {
        if self.eof || inner.conn.state() == tandem_core::State::Closed || inner.conn.needs_transport() {
            return false;
        }
        let mut progress = false;
        if self.max_datagram == 0 {
            if !self.pending.is_empty() {
                let n = inner.conn.handle_input(now(), &self.pending);
                self.pending.drain(..n);
                if !self.pending.is_empty() {
                    // Still full: events must be drained first.
                    return n > 0;
                }
                self.pending = Vec::new();
            }
            let mut small = [0u8; SMALL_READ];
            match read(&mut small) {
                Poll::Ready(Ok(0)) => {
                    self.end_input(inner);
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    let taken = inner.conn.handle_input(now(), &small[..n]);
                    if taken < n {
                        self.pending.extend_from_slice(&small[taken..n]);
                        return true;
                    }
                    if n < SMALL_READ {
                        return true;
                    }
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
        for _ in 0..READS {
            let buf = inner.conn.recv_buffer();
            // A packet must land whole; otherwise wait until events release the buffer.
            if buf.is_empty() || buf.len() < self.max_datagram {
                break;
            }
            let room = buf.len();
            match read(buf) {
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
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    tracing::debug!(conn = self.id, error = %e, "read failed: treating as end of stream");
                    self.end_input(inner);
                    return true;
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Writes what the core has queued (one whole datagram per write on packet transports).
    /// Returns whether anything was written.
    pub fn write(
        &mut self,
        inner: &mut Inner,
        mut write: impl FnMut(&[u8]) -> Poll<io::Result<usize>>,
    ) -> bool {
        let mut progress = false;
        loop {
            if self.broken {
                let n = inner.conn.transmit_data().len();
                inner.conn.transmit_done(n);
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
            match write(data) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    progress = true;
                    if self.max_datagram > 0 {
                        self.datagram_len = 0;
                    } else {
                        inner.conn.transmit_done(n);
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(r) => {
                    let e = r.err().map(|e| e.to_string()).unwrap_or_else(|| "wrote 0 bytes".into());
                    tracing::debug!(conn = self.id, error = %e, "write failed: peer gone");
                    self.broken = true;
                    if !self.eof {
                        self.end_input(inner);
                    }
                    progress = true;
                }
                Poll::Pending => return progress,
            }
        }
    }
}
