//! Serial lines (SPEC.md §14.9) for the runtimes: a tty opened in raw mode at a baud rate, and
//! [`SerialLine`], which turns its bytes into the datagrams of datagram mode and back with the
//! core's framing (`tandem_core::serial`: COBS, CRC-32C). (Layer 0: imports no other file of the
//! crate.)
//!
//! A runtime reads and writes a `SerialLine` the way it reads and writes a connected UDP socket:
//! [`read_datagram`](SerialLine::read_datagram) returns one whole, checked datagram (or
//! `WouldBlock`), [`write_datagram`](SerialLine::write_datagram) sends one. Bad frames are
//! dropped and counted ([`SerialLine::stats`]); a datagram the line cannot take now is dropped as
//! a network would drop it, and datagram mode retransmits.
//!
//! Termios through `nix` (already a dependency of this crate for Unix sockets; well kept, and the
//! `term` feature is thin bindings): `cfmakeraw` (no echo, no line editing, no CR/LF mapping, no
//! signals, 8 data bits), no parity, one stop bit, no flow control, `CLOCAL | CREAD`, `VMIN = 1`,
//! `VTIME = 0`, and the baud rate. The `serialport` crate would add port enumeration (and libudev)
//! that a transport does not need.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::Waker;

use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg, SpecialCharacterIndices};
use tandem_core::serial::{self, Decoder, SerialStats};

/// Bytes read from the line at a time.
const READ_CHUNK: usize = 4096;

/// The termios speed for `baud` bits per second; `None` for a rate the system does not name.
pub fn baud_rate(baud: u32) -> Option<BaudRate> {
    use BaudRate::*;
    Some(match baud {
        1200 => B1200,
        2400 => B2400,
        4800 => B4800,
        9600 => B9600,
        19_200 => B19200,
        38_400 => B38400,
        57_600 => B57600,
        115_200 => B115200,
        230_400 => B230400,
        460_800 => B460800,
        500_000 => B500000,
        576_000 => B576000,
        921_600 => B921600,
        1_000_000 => B1000000,
        1_152_000 => B1152000,
        1_500_000 => B1500000,
        2_000_000 => B2000000,
        2_500_000 => B2500000,
        3_000_000 => B3000000,
        3_500_000 => B3500000,
        4_000_000 => B4000000,
        _ => return None,
    })
}

/// Puts the terminal `fd` in raw mode (8N1, no flow control, a read returns as soon as one byte
/// is there) at `baud` bits per second.
pub fn configure_raw(fd: impl AsFd, baud: u32) -> io::Result<()> {
    let speed = baud_rate(baud).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("baud rate {baud} is not one the system supports (for instance 9600, 115200, 921600)"),
        )
    })?;
    let mut t = termios::tcgetattr(fd.as_fd())?;
    termios::cfmakeraw(&mut t);
    t.control_flags &=
        !(ControlFlags::PARENB | ControlFlags::CSTOPB | ControlFlags::CRTSCTS | ControlFlags::CSIZE);
    t.control_flags |= ControlFlags::CS8 | ControlFlags::CLOCAL | ControlFlags::CREAD;
    // VMIN 1, VTIME 0: a read waits for one byte, so that on a non-blocking descriptor "no byte
    // yet" is EAGAIN and 0 means what it means on any file, the end (a hang-up). (VMIN 0 would
    // make an empty read return 0.)
    t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    termios::cfsetspeed(&mut t, speed)?;
    termios::tcsetattr(fd.as_fd(), SetArg::TCSANOW, &t)?;
    Ok(())
}

/// Opens the tty at `path` for reading and writing, non-blocking, without making it the
/// controlling terminal, in raw mode at `baud`.
pub fn open_tty(path: &Path, baud: u32) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open serial line {}: {e}", path.display())))?;
    configure_raw(&f, baud).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot configure serial line {}: {e}", path.display()))
    })?;
    Ok(f)
}

/// A byte line carrying datagrams in serial frames (SPEC.md §14.9). `F` is the line, in
/// non-blocking mode (a [`File`] from [`open_tty`]).
#[derive(Debug)]
pub struct SerialLine<F> {
    io: F,
    decoder: Decoder<Vec<u8>>,
    rx: Vec<u8>,
    rx_pos: usize,
    rx_len: usize,
    /// The frame being written, and how much of it is out.
    tx: Vec<u8>,
    tx_pos: usize,
    /// Datagrams dropped because the line had not taken the previous frame yet.
    tx_dropped: u64,
}

impl<F: Read + Write> SerialLine<F> {
    /// A line whose receiver accepts datagrams of up to `max_datagram` bytes (the
    /// connection's `max_datagram`).
    pub fn new(io: F, max_datagram: usize) -> Self {
        SerialLine {
            io,
            decoder: Decoder::new(vec![0; serial::buffer_len(max_datagram)]),
            rx: vec![0; READ_CHUNK],
            rx_pos: 0,
            rx_len: 0,
            tx: Vec::new(),
            tx_pos: 0,
            tx_dropped: 0,
        }
    }

    /// The next whole, checked datagram, copied into `buf`: its length, 0 at the end of the
    /// line (hang-up), or `WouldBlock` when no whole frame has arrived. Bad frames on the way are
    /// dropped and counted; a datagram longer than `buf` is dropped too.
    pub fn read_datagram(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            while self.rx_pos < self.rx_len {
                let (used, datagram) = self.decoder.push(&self.rx[self.rx_pos..self.rx_len]);
                self.rx_pos += used;
                if let Some(d) = datagram.filter(|d| d.len() <= buf.len()) {
                    buf[..d.len()].copy_from_slice(d);
                    return Ok(d.len());
                }
            }
            match self.io.read(&mut self.rx) {
                Ok(n) => {
                    if n == 0 {
                        return Ok(0);
                    }
                    (self.rx_pos, self.rx_len) = (0, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A pty whose other side closed reports EIO: the line has hung up.
                Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `datagram` as one frame. If the line has not yet taken the previous frame the
    /// datagram is dropped (and counted), as a network drops what it cannot carry; datagram mode
    /// retransmits. Returns `datagram.len()` unless the line failed.
    pub fn write_datagram(&mut self, datagram: &[u8]) -> io::Result<usize> {
        if datagram.is_empty() {
            return Ok(0);
        }
        if !self.flush()? {
            self.tx_dropped += 1;
            return Ok(datagram.len());
        }
        self.tx.resize(serial::encoded_len(datagram.len()), 0);
        let n = serial::encode(datagram, &mut self.tx)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.tx.truncate(n);
        self.tx_pos = 0;
        self.flush()?;
        Ok(datagram.len())
    }

    /// Writes what is left of the current frame; true when all of it is out.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.tx_pos < self.tx.len() {
            match self.io.write(&self.tx[self.tx_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.tx_pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Frames received and dropped, by reason.
    pub fn stats(&self) -> SerialStats {
        self.decoder.stats()
    }

    /// Datagrams dropped on sending because the line had not taken the previous frame.
    pub fn tx_dropped(&self) -> u64 {
        self.tx_dropped
    }

    /// The line.
    pub fn get_ref(&self) -> &F {
        &self.io
    }

    /// The line back (a partly received or sent frame is forgotten).
    pub fn into_inner(self) -> F {
        self.io
    }
}

/// Where a server's serial line goes back when the association on it ends: the listening task
/// ([`threads::listen`](crate::threads::listen)) waits on it to answer the next peer.
#[derive(Debug, Default)]
pub struct LineHome {
    /// The tty, once the association that used it has ended.
    pub file: Option<File>,
    /// The listening task, woken when the tty comes back.
    pub waker: Option<Waker>,
}

/// A serial line as a connection's transport (`serial://`): one datagram per read and write,
/// like a connected UDP socket.
///
/// Reads return whole, checked datagrams (`WouldBlock` until one has arrived; `Ok(0)` when the
/// line hung up). A write that finds the previous frame still partly in the tty's buffer
/// returns `WouldBlock`, so the driver waits for writability instead of dropping the datagram;
/// every read first pushes out what is left of a frame, so a frame never waits for the next
/// write. On a server the tty goes back to its [`LineHome`] when the association ends.
#[derive(Debug)]
pub struct SerialPort {
    line: Option<SerialLine<File>>,
    home: Option<Arc<Mutex<LineHome>>>,
}

impl SerialPort {
    /// A port on `file` (from [`open_tty`]) for datagrams of up to `max_datagram` bytes; `home`:
    /// where the tty goes when the port is dropped (a server's line), or `None` (closed).
    pub fn new(file: File, max_datagram: usize, home: Option<Arc<Mutex<LineHome>>>) -> Self {
        SerialPort { line: Some(SerialLine::new(file, max_datagram)), home }
    }

    fn line(&mut self) -> io::Result<&mut SerialLine<File>> {
        self.line.as_mut().ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    /// One whole, checked datagram (see the type's documentation).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let line = self.line()?;
        match line.flush() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        line.read_datagram(buf)
    }

    /// Sends one datagram as one frame, or `WouldBlock` while the previous frame is not out.
    pub fn write(&mut self, datagram: &[u8]) -> io::Result<usize> {
        let line = self.line()?;
        if !line.flush()? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        line.write_datagram(datagram)
    }

    /// The tty, to wait for its readiness.
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.line.as_ref().map(|l| l.get_ref().as_fd())
    }

    /// Frames received and dropped, by reason.
    pub fn stats(&self) -> SerialStats {
        self.line.as_ref().map(|l| l.stats()).unwrap_or_default()
    }
}

impl Drop for SerialPort {
    fn drop(&mut self) {
        if let (Some(line), Some(home)) = (self.line.take(), self.home.take()) {
            let mut h = home.lock().unwrap_or_else(|e| e.into_inner());
            h.file = Some(line.into_inner());
            if let Some(w) = h.waker.take() {
                w.wake();
            }
        }
    }
}
