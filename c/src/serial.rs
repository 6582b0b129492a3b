//! The serial framing of SPEC.md §14.9 for C (`tandem_serial_*`): datagrams of datagram mode
//! carried over a byte line (a UART, a USB CDC-ACM port) as `COBS(datagram ‖ CRC-32C) ‖ 0x00`
//! frames. `tandem_serial_encode` turns one datagram from `tandem_conn_poll_transmit` into one
//! frame; a decoder, in memory the caller provides like a connection, turns the bytes read from
//! the line into checked datagrams for `tandem_conn_input`, dropping and counting damaged frames
//! and resynchronising at the next delimiter. No allocation; available in every build.

use core::mem::{align_of, size_of};

use tandem_core::serial::{self, Decoder, EncodeError};

use crate::conn::bytes;
use crate::guard;
use crate::types::TandemResult;

/// Written at the start of a live decoder ("TANDEMS1").
const MAGIC: u64 = u64::from_be_bytes(*b"TANDEMS1");

/// A serial-frame decoder: opaque to C. It lives in memory the caller gave to
/// `tandem_serial_decoder_init`, its buffer right after it.
pub struct TandemSerialDecoder {
    magic: u64,
    /// `'static` stands for "while the caller keeps the memory" (the contract of
    /// `tandem_serial_decoder_init`); the slice never leaves this struct.
    dec: Decoder<&'static mut [u8]>,
}

/// What a decoder has seen (SPEC.md §14.9.4): frames delivered, frames dropped by reason, bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TandemSerialStats {
    /// Frames delivered: whole, within the size limit, CRC correct.
    pub frames: u64,
    /// Frames dropped: CRC mismatch.
    pub bad_crc: u64,
    /// Frames dropped: not valid COBS (cut short, or a code byte damaged).
    pub bad_cobs: u64,
    /// Frames dropped: fewer than 5 decoded bytes.
    pub too_short: u64,
    /// Frames dropped: longer than the decoder's `max_datagram` (+ CRC).
    pub too_long: u64,
    /// Bytes consumed (delimiters included).
    pub bytes: u64,
}

/// The largest number of bytes `tandem_serial_encode` writes for a datagram of `datagram_len`
/// bytes: `datagram_len + 4` (the CRC), one COBS byte per 254 plus one, and the delimiter
/// (1210 for 1200). `SIZE_MAX` if that overflows.
#[no_mangle]
pub extern "C" fn tandem_serial_encoded_len(datagram_len: usize) -> usize {
    if datagram_len > isize::MAX as usize / 2 {
        return usize::MAX;
    }
    serial::encoded_len(datagram_len)
}

/// Writes one serial frame carrying `datagram` (`len` bytes, at least 1) into `out` and its
/// length to `*written`. `out_cap` must be at least `tandem_serial_encoded_len(len)`.
///
/// Returns `TANDEM_RESULT_OK`; `TANDEM_RESULT_BUFFER_TOO_SMALL`; `TANDEM_RESULT_INVALID_ARGUMENT`
/// (an empty datagram, or `out` overlapping `datagram`); `TANDEM_RESULT_NULL_POINTER`.
///
/// # Safety
///
/// `datagram` must point to `len` readable bytes, `out` to `out_cap` writable bytes, `written`
/// to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tandem_serial_encode(
    datagram: *const u8,
    len: usize,
    out: *mut u8,
    out_cap: usize,
    written: *mut usize,
) -> TandemResult {
    if datagram.is_null() || out.is_null() || written.is_null() {
        return TandemResult::NullPointer;
    }
    if len == 0 || out_cap > isize::MAX as usize {
        return TandemResult::InvalidArgument;
    }
    let (d, o) = (datagram as usize, out as usize);
    if d < o.saturating_add(out_cap) && o < d.saturating_add(len) {
        return TandemResult::InvalidArgument;
    }
    guard(|| {
        // SAFETY: non-NULL, `len` readable bytes by the contract (checked against isize::MAX).
        let data = match unsafe { bytes(datagram, len) } {
            Ok(d) => d,
            Err(e) => return e,
        };
        // SAFETY: non-NULL, `out_cap` writable bytes by the contract, disjoint from `data`
        // (checked above); zeroed first so that the slice is initialised.
        let out = unsafe {
            out.write_bytes(0, out_cap);
            core::slice::from_raw_parts_mut(out, out_cap)
        };
        match serial::encode(data, out) {
            Ok(n) => {
                // SAFETY: non-NULL, writable by the contract.
                unsafe { written.write(n) };
                TandemResult::Ok
            }
            Err(EncodeError::BufferTooSmall { .. }) => TandemResult::BufferTooSmall,
            Err(EncodeError::Empty) => TandemResult::InvalidArgument,
        }
    })
    .unwrap_or(TandemResult::Panicked)
}

/// Offset of the buffer after the decoder, from the decoder's aligned start.
const BUF_OFF: usize = size_of::<TandemSerialDecoder>();

/// Bytes of memory `tandem_serial_decoder_init` needs for a decoder that accepts datagrams of up
/// to `max_datagram` bytes (including the padding for any alignment of that memory). `SIZE_MAX`
/// if that overflows.
#[no_mangle]
pub extern "C" fn tandem_serial_decoder_memory_size(max_datagram: usize) -> usize {
    if max_datagram > isize::MAX as usize / 2 {
        return usize::MAX;
    }
    BUF_OFF + serial::buffer_len(max_datagram) + align_of::<TandemSerialDecoder>() - 1
}

/// Creates a decoder in the caller's memory `mem` (`mem_len` bytes, any alignment, at least
/// `tandem_serial_decoder_memory_size(max_datagram)`) and writes its handle to `*out`. It
/// accepts datagrams of up to `max_datagram` bytes (the connection's `max_datagram`); longer
/// frames are dropped as too long. The memory is the decoder's until the caller stops using the
/// handle (a decoder holds nothing else: there is no free function).
///
/// Returns `TANDEM_RESULT_OK`; `TANDEM_RESULT_BUFFER_TOO_SMALL`; `TANDEM_RESULT_INVALID_ARGUMENT`
/// (`max_datagram` 0 or absurdly large); `TANDEM_RESULT_NULL_POINTER`.
///
/// # Safety
///
/// `mem` must point to `mem_len` writable bytes that nothing else uses while the handle is used;
/// `out` must point to a writable `tandem_serial_decoder *`.
#[no_mangle]
pub unsafe extern "C" fn tandem_serial_decoder_init(
    mem: *mut core::ffi::c_void,
    mem_len: usize,
    max_datagram: usize,
    out: *mut *mut TandemSerialDecoder,
) -> TandemResult {
    if mem.is_null() || out.is_null() {
        return TandemResult::NullPointer;
    }
    if max_datagram == 0 || max_datagram > isize::MAX as usize / 2 || mem_len > isize::MAX as usize {
        return TandemResult::InvalidArgument;
    }
    if mem_len < tandem_serial_decoder_memory_size(max_datagram) {
        return TandemResult::BufferTooSmall;
    }
    guard(|| {
        let base = mem.cast::<u8>();
        let align = align_of::<TandemSerialDecoder>();
        let pad = (align - base as usize % align) % align;
        let buf_len = serial::buffer_len(max_datagram);
        // SAFETY: `pad + BUF_OFF + buf_len <= mem_len` (the size check above), so the decoder
        // at `start` (aligned by `pad`) and its buffer after it lie inside the caller's memory,
        // disjoint. The buffer is zeroed before a slice is made over it; the caller keeps the
        // memory for the handle's use, which the `'static` stands for.
        unsafe {
            let start = base.add(pad);
            let buf = start.add(BUF_OFF);
            buf.write_bytes(0, buf_len);
            let dec = Decoder::new(core::slice::from_raw_parts_mut(buf, buf_len));
            let handle = start.cast::<TandemSerialDecoder>();
            handle.write(TandemSerialDecoder { magic: MAGIC, dec });
            out.write(handle);
        }
        TandemResult::Ok
    })
    .unwrap_or(TandemResult::Panicked)
}

/// The decoder behind a handle, if it is one.
///
/// # Safety
///
/// `d` must be NULL or point to memory readable for a `TandemSerialDecoder` that the caller owns
/// and that no other call uses meanwhile.
unsafe fn decoder<'x>(d: *mut TandemSerialDecoder) -> Result<&'x mut TandemSerialDecoder, TandemResult> {
    if d.is_null() {
        return Err(TandemResult::NullPointer);
    }
    if d as usize % align_of::<TandemSerialDecoder>() != 0 {
        return Err(TandemResult::BadHandle);
    }
    // SAFETY: non-NULL, aligned, readable by the contract; `magic` is a plain integer.
    if unsafe { core::ptr::addr_of!((*d).magic).read() } != MAGIC {
        return Err(TandemResult::BadHandle);
    }
    // SAFETY: a live decoder (its marker), used by this call alone (the contract).
    Ok(unsafe { &mut *d })
}

/// Consumes bytes read from the line, up to the end of the next good frame: writes to
/// `*consumed` how many of the `len` bytes it took, and to `*datagram`/`*datagram_len` that
/// frame's datagram (pointing into the decoder's memory, valid until the next call on the
/// decoder) — or NULL and 0 when the bytes completed no good frame. Damaged frames on the way
/// are dropped and counted (`tandem_serial_decoder_stats`). Call again with the rest
/// (`data + *consumed`) until it is all consumed.
///
/// Returns `TANDEM_RESULT_OK`, `TANDEM_RESULT_BAD_HANDLE`, `TANDEM_RESULT_INVALID_ARGUMENT`
/// (`data` inside the decoder's memory) or `TANDEM_RESULT_NULL_POINTER`.
///
/// # Safety
///
/// `dec` must be a handle from `tandem_serial_decoder_init` whose memory is still the decoder's,
/// with no other call on it running; `data` must point to `len` readable bytes (or be NULL with
/// `len` 0); the out-pointers must be writable.
#[no_mangle]
pub unsafe extern "C" fn tandem_serial_decoder_push(
    dec: *mut TandemSerialDecoder,
    data: *const u8,
    len: usize,
    consumed: *mut usize,
    datagram: *mut *const u8,
    datagram_len: *mut usize,
) -> TandemResult {
    if consumed.is_null() || datagram.is_null() || datagram_len.is_null() {
        return TandemResult::NullPointer;
    }
    // SAFETY: forwarded contract.
    let d = match unsafe { decoder(dec) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    guard(|| {
        // SAFETY: `len` readable bytes by the contract.
        let input = match unsafe { bytes(data, len) } {
            Ok(i) => i,
            Err(e) => return e,
        };
        let own = d.dec.max_datagram() + serial::CRC_LEN;
        let (s, e) = (dec as usize, dec as usize + BUF_OFF + own);
        if len > 0 && (data as usize) < e && s < (data as usize).saturating_add(len) {
            return TandemResult::InvalidArgument;
        }
        let (used, got) = d.dec.push(input);
        let (p, n) = got.map_or((core::ptr::null(), 0), |g| (g.as_ptr(), g.len()));
        // SAFETY: non-NULL, writable by the contract.
        unsafe {
            consumed.write(used);
            datagram.write(p);
            datagram_len.write(n);
        }
        TandemResult::Ok
    })
    .unwrap_or(TandemResult::Panicked)
}

/// Writes the decoder's counters to `*out`.
///
/// # Safety
///
/// As for `tandem_serial_decoder_push`; `out` must point to a writable
/// `tandem_serial_stats`.
#[no_mangle]
pub unsafe extern "C" fn tandem_serial_decoder_stats(
    dec: *mut TandemSerialDecoder,
    out: *mut TandemSerialStats,
) -> TandemResult {
    if out.is_null() {
        return TandemResult::NullPointer;
    }
    // SAFETY: forwarded contract.
    let d = match unsafe { decoder(dec) } {
        Ok(d) => d,
        Err(e) => return e,
    };
    let s = d.dec.stats();
    let stats = TandemSerialStats {
        frames: s.frames,
        bad_crc: s.bad_crc,
        bad_cobs: s.bad_cobs,
        too_short: s.too_short,
        too_long: s.too_long,
        bytes: s.bytes,
    };
    // SAFETY: non-NULL, writable by the contract.
    unsafe { out.write(stats) };
    TandemResult::Ok
}
