//! The connection handle, the configuration, and how a connection is laid out in the caller's
//! memory: `tandem_config_default`, `tandem_config_check`, `tandem_conn_memory_size`,
//! `tandem_conn_init`, `tandem_conn_free`.

use core::mem::{align_of, size_of};
use core::time::Duration;

use tandem_core::frame::{MAX_AUTH_LEN, MAX_NAME_LEN};
use tandem_core::{
    Config, Connection, DatagramStorage, Features, Identity, Instant, Role, Slot, Storage, Transport,
};

use crate::guard;
use crate::types::*;

/// Written at the start of a live connection, cleared by `tandem_conn_free` ("TANDEMC1").
const MAGIC: u64 = u64::from_be_bytes(*b"TANDEMC1");
/// Replaces `MAGIC` once a call on the connection panicked ("TANDEMC!"). One integer holds both,
/// so that checking a handle reads no field whose bit patterns could be invalid (a `bool`) from
/// memory that may not be a connection.
const POISONED: u64 = u64::from_be_bytes(*b"TANDEMC!");

/// A connection: opaque to C. It lives in memory the caller provided to `tandem_conn_init`, and
/// the `Connection` borrows the rest of that memory (its buffers).
pub struct TandemConn {
    /// `MAGIC`, `POISONED`, or 0 once freed.
    magic: u64,
    /// Bytes `tandem_conn_recv_buffer` last offered (what `tandem_conn_recv_commit` may commit).
    pub(crate) recv_offered: usize,
    /// Addresses of all the memory the connection uses, and of its receive and reassembly
    /// buffers (where event payloads live), to refuse arguments that would alias them.
    mem: Span,
    rx: Span,
    re: Span,
    /// `'static` stands for "until `tandem_conn_free`": the buffers are the caller's memory,
    /// which the caller keeps valid and untouched until then (the contract of
    /// `tandem_conn_init`). The value never leaves this struct, so nothing can observe the
    /// lifetime beyond it.
    pub(crate) conn: Connection<'static>,
}

/// A range of addresses, `start..end`.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn at(p: *const u8, len: usize) -> Span {
        let start = p as usize;
        Span { start, end: start.saturating_add(len) }
    }
    fn overlaps(self, o: Span) -> bool {
        self.start < o.end && o.start < self.end
    }
    fn contains(self, o: Span) -> bool {
        self.start <= o.start && o.end <= self.end
    }
}

impl TandemConn {
    /// Whether `len` bytes at `p` lie outside the connection's memory, so that a slice over
    /// them cannot alias the connection or its buffers.
    pub(crate) fn outside(&self, p: *const u8, len: usize) -> bool {
        len == 0 || !self.mem.overlaps(Span::at(p, len))
    }

    /// Whether `len` bytes at `p` may be read during an action: outside the connection's
    /// memory, or inside its receive or reassembly buffer (an event's payload), which no
    /// action writes.
    pub(crate) fn readable_by_action(&self, p: *const u8, len: usize) -> bool {
        let s = Span::at(p, len);
        self.outside(p, len) || self.rx.contains(s) || self.re.contains(s)
    }
}

/// Where each part of a connection goes, as offsets from the aligned start of the memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    slots_off: usize,
    slots: usize,
    rx_off: usize,
    rx: usize,
    tx_off: usize,
    tx: usize,
    re_off: usize,
    re: usize,
    /// Datagram mode's reply cache and retained requests (0 bytes on other transports).
    replies_off: usize,
    replies: usize,
    retained_off: usize,
    retained: usize,
    /// Bytes from the aligned start to the end of the last buffer.
    end: usize,
}

impl Layout {
    /// Bytes the caller must provide: the layout plus the worst-case padding to align it.
    pub(crate) fn total(&self) -> Option<usize> {
        self.end.checked_add(align_of::<TandemConn>() - 1)
    }
}

fn align_up(n: usize, align: usize) -> Option<usize> {
    Some(n.checked_add(align - 1)? / align * align)
}

/// The layout for a checked configuration, or `None` when it does not fit the address space.
///
/// The buffer sizes are the core's (`Storage::rx_len`, `tx_len`, `reassembly_len`,
/// `slots_len`, `replies_len`, `retained_len`; for a resumable session (`session`)
/// `session_replies_len` and `session_retained_len`), so `Connection::with_datagram_storage`
/// (`with_session_storage`) accepts them; the exchange table's entry count is
/// summed here with checked arithmetic, since four `u32` limits can overflow a 32-bit `usize`
/// (a test compares it with `Storage::slots_len`).
pub(crate) fn layout(config: &Config, session: bool) -> Option<Layout> {
    // Validated: at most 16 MiB + 9 bytes, and `u32`s.
    let rx = Storage::rx_len(config);
    let tx = Storage::tx_len(config);
    let re = Storage::reassembly_len(config);
    let slots = (config.max_concurrent_calls as usize)
        .checked_add(config.max_concurrent_streams as usize)?
        .checked_add(config.max_outbound_calls as usize)?
        .checked_add(config.max_outbound_streams as usize)?;
    let slots_off = align_up(size_of::<TandemConn>(), align_of::<Option<Slot>>())?;
    let rx_off = slots_off.checked_add(slots.checked_mul(size_of::<Option<Slot>>())?)?;
    let tx_off = rx_off.checked_add(rx)?;
    let re_off = tx_off.checked_add(tx)?;
    let (replies, retained) = if session {
        (Storage::session_replies_len(config), Storage::session_retained_len(config))
    } else {
        (Storage::replies_len(config), Storage::retained_len(config))
    };
    let replies_off = re_off.checked_add(re)?;
    let retained_off = replies_off.checked_add(replies)?;
    let end = retained_off.checked_add(retained)?;
    // Slices may not exceed isize::MAX bytes.
    if end > isize::MAX as usize / 2 {
        return None;
    }
    Some(Layout {
        slots_off,
        slots,
        rx_off,
        rx,
        tx_off,
        tx,
        re_off,
        re,
        replies_off,
        replies,
        retained_off,
        retained,
        end,
    })
}

/// Why a configuration was refused: the code, and the field and rule for `tandem_config_check`.
pub(crate) struct Refusal {
    pub(crate) code: TandemResult,
    pub(crate) field: &'static str,
    pub(crate) requirement: &'static str,
}

fn refuse(code: TandemResult, field: &'static str, requirement: &'static str) -> Refusal {
    Refusal { code, field, requirement }
}

/// Borrows `len` bytes at `ptr` (NULL allowed when `len` is 0).
///
/// # Safety
///
/// When `len > 0` and `ptr` is not NULL, `ptr` must point to `len` readable bytes that nothing
/// writes while the returned slice is used.
pub(crate) unsafe fn bytes<'x>(ptr: *const u8, len: usize) -> Result<&'x [u8], TandemResult> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(TandemResult::NullPointer);
    }
    if len > isize::MAX as usize {
        return Err(TandemResult::InvalidArgument);
    }
    // SAFETY: non-NULL, length checked against isize::MAX, and the caller guarantees `len`
    // readable bytes not written meanwhile (the function's contract, passed on to C's).
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// The core configuration and identity a C configuration describes, and its memory layout.
///
/// # Safety
///
/// `name`/`auth` of `c` must point to `name_len`/`auth_len` readable bytes (or be NULL with
/// length 0) for the lifetime `'x`.
pub(crate) unsafe fn convert<'x>(
    c: &TandemConfig,
    session: bool,
) -> Result<(Config, Identity<'x>, Layout), Refusal> {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    let transport = match c.transport {
        TANDEM_TRANSPORT_STREAM => Transport::Stream,
        TANDEM_TRANSPORT_PACKET => Transport::Packet { max_datagram: c.max_datagram },
        TANDEM_TRANSPORT_DATAGRAM => Transport::Datagram { max_datagram: c.max_datagram },
        _ => {
            return Err(refuse(
                TandemResult::InvalidArgument,
                "transport",
                "one of the TANDEM_TRANSPORT_* constants",
            ))
        }
    };
    let config = Config {
        max_frame_size: c.max_frame_size,
        max_message_size: c.max_message_size,
        max_concurrent_calls: c.max_concurrent_calls,
        max_concurrent_streams: c.max_concurrent_streams,
        stream_credit_msgs: c.stream_credit_msgs,
        stream_credit_bytes: c.stream_credit_bytes,
        conn_credit_bytes: c.conn_credit_bytes,
        keepalive_interval: ms(c.keepalive_interval_ms),
        idle_timeout: ms(c.idle_timeout_ms),
        handshake_timeout: ms(c.handshake_timeout_ms),
        drain_timeout: ms(c.drain_timeout_ms),
        max_unproductive_frames: c.max_unproductive_frames,
        reply_cache_entries: c.reply_cache_entries,
        reply_cache_bytes: c.reply_cache_bytes,
        max_retained_bytes: c.max_retained_bytes,
        max_outbound_calls: c.max_outbound_calls,
        max_outbound_streams: c.max_outbound_streams,
        max_tx_buffer: c.max_tx_buffer,
        features: Features(c.features),
        transport,
        ..Config::default()
    };
    config.validate().map_err(|e| refuse(TandemResult::InvalidConfig, e.field, e.requirement))?;
    // SAFETY: the caller guarantees `name` points to `name_len` readable bytes for `'x`.
    let name = unsafe { bytes(c.name, c.name_len) }
        .map_err(|code| refuse(code, "name", "non-NULL when name_len > 0"))?;
    // SAFETY: as for `name`.
    let auth = unsafe { bytes(c.auth, c.auth_len) }
        .map_err(|code| refuse(code, "auth", "non-NULL when auth_len > 0"))?;
    if name.len() > MAX_NAME_LEN {
        return Err(refuse(TandemResult::InvalidConfig, "name_len", "at most 255"));
    }
    if auth.len() > MAX_AUTH_LEN {
        return Err(refuse(TandemResult::InvalidConfig, "auth_len", "at most 1024"));
    }
    let layout = layout(&config, session).ok_or_else(|| {
        refuse(
            TandemResult::InvalidConfig,
            "max_message_size",
            "small enough for the buffers to fit the address space",
        )
    })?;
    Ok((config, Identity { name, auth, session: &[] }, layout))
}

/// Fills `*out` with the default configuration: a byte-stream transport and small buffers
/// fit for a device (frames of 4096 bytes, messages up to 16384, 8 calls each way, no
/// streams: 43,904 bytes in all on x86-64, see `tandem_conn_memory_size`).
///
/// Returns `TANDEM_RESULT_NULL_POINTER` if `out` is NULL.
///
/// # Safety
///
/// `out` must be NULL or point to writable memory for one `tandem_config`.
#[no_mangle]
pub unsafe extern "C" fn tandem_config_default(out: *mut TandemConfig) -> TandemResult {
    if out.is_null() {
        return TandemResult::NullPointer;
    }
    let c = TandemConfig {
        transport: TANDEM_TRANSPORT_STREAM,
        max_datagram: 8192,
        max_frame_size: 4096,
        max_message_size: 16384,
        max_concurrent_calls: 8,
        max_concurrent_streams: 0,
        max_outbound_calls: 8,
        max_outbound_streams: 0,
        max_tx_buffer: 16384,
        stream_credit_msgs: 4,
        stream_credit_bytes: 4096,
        conn_credit_bytes: 16384,
        keepalive_interval_ms: 10_000,
        idle_timeout_ms: 30_000,
        handshake_timeout_ms: 10_000,
        drain_timeout_ms: 30_000,
        max_unproductive_frames: 10_000,
        reply_cache_entries: 32,
        reply_cache_bytes: 8192,
        max_retained_bytes: 8192,
        features: TANDEM_FEATURE_SCHEMA_KEYS | TANDEM_FEATURE_ERROR_DETAILS,
        name: core::ptr::null(),
        name_len: 0,
        auth: core::ptr::null(),
        auth_len: 0,
    };
    // SAFETY: `out` is non-NULL and, by the contract, valid for a write of one config;
    // `write` does not read the (possibly uninitialised) old value.
    unsafe { out.write(c) };
    TandemResult::Ok
}

/// Checks a configuration. On failure, also writes a sentence naming the field at fault and
/// what it must be into `msg` (NUL-terminated, truncated to `msg_cap` bytes) when `msg` is not
/// NULL.
///
/// Returns `TANDEM_RESULT_OK`, `TANDEM_RESULT_INVALID_CONFIG`, `TANDEM_RESULT_INVALID_ARGUMENT`
/// (an unknown transport) or
/// `TANDEM_RESULT_NULL_POINTER`.
///
/// # Safety
///
/// `config` must point to a valid `tandem_config` whose `name`/`auth` point to
/// `name_len`/`auth_len` readable bytes; `msg` must be NULL or point to `msg_cap` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn tandem_config_check(
    config: *const TandemConfig,
    msg: *mut u8,
    msg_cap: usize,
) -> TandemResult {
    if config.is_null() {
        return TandemResult::NullPointer;
    }
    guard(|| {
        // SAFETY: non-NULL; the contract makes it a valid, aligned config for this call.
        let c = unsafe { &*config };
        // SAFETY: the contract covers `name` and `auth`.
        let refusal = match unsafe { convert(c, false) } {
            Ok(_) => return TandemResult::Ok,
            Err(r) => r,
        };
        if !msg.is_null() && msg_cap > 0 && msg_cap <= isize::MAX as usize {
            // SAFETY: non-NULL, `msg_cap` writable bytes by the contract; zeroed before the
            // slice is made, so it is initialised.
            let out = unsafe {
                msg.write_bytes(0, msg_cap);
                core::slice::from_raw_parts_mut(msg, msg_cap)
            };
            let mut w = Writer { out, len: 0 };
            let _ = core::fmt::Write::write_fmt(
                &mut w,
                format_args!("invalid config: `{}` must be {}", refusal.field, refusal.requirement),
            );
        }
        refusal.code
    })
    .unwrap_or(TandemResult::Panicked)
}

/// Writes into a byte buffer, truncating, always leaving a NUL at the end.
struct Writer<'x> {
    out: &'x mut [u8],
    len: usize,
}

impl core::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.out.len().saturating_sub(1 + self.len);
        let n = s.len().min(room);
        self.out[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes to `*size` how many bytes of memory `tandem_conn_init` needs for `config` (including
/// the padding for any alignment of that memory).
///
/// Returns `TANDEM_RESULT_OK`, or what `tandem_config_check` would return for an invalid
/// configuration.
///
/// # Safety
///
/// `config` must point to a valid `tandem_config` (see `tandem_config_check`); `size` must
/// be NULL or point to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_memory_size(
    config: *const TandemConfig,
    size: *mut usize,
) -> TandemResult {
    // SAFETY: the caller's contract is this function's.
    unsafe { memory_size(config, size, false) }
}

/// The memory a connection needs for `config`, with the session's state or without
/// (`tandem_conn_memory_size`, `tandem_conn_session_memory_size`).
///
/// # Safety
///
/// As `tandem_conn_memory_size`.
pub(crate) unsafe fn memory_size(
    config: *const TandemConfig,
    size: *mut usize,
    session: bool,
) -> TandemResult {
    if config.is_null() || size.is_null() {
        return TandemResult::NullPointer;
    }
    guard(|| {
        // SAFETY: non-NULL; valid (with `name` and `auth`) by the contract.
        match unsafe { convert(&*config, session) } {
            Ok((_, _, layout)) => match layout.total() {
                Some(n) => {
                    // SAFETY: non-NULL and writable by the contract.
                    unsafe { size.write(n) };
                    TandemResult::Ok
                }
                None => TandemResult::InvalidConfig,
            },
            Err(r) => r.code,
        }
    })
    .unwrap_or(TandemResult::Panicked)
}

/// Creates a connection in the caller's memory `mem` (`mem_len` bytes, any alignment, at least
/// `tandem_conn_memory_size`; its old contents do not matter) and writes its handle to `*out`.
///
/// `role` is `TANDEM_ROLE_DIALER` (this side opened the transport: its HELLO is queued at once,
/// drain it with `tandem_conn_poll_transmit`) or `TANDEM_ROLE_ACCEPTOR`. `now_ms` is the
/// caller's monotonic clock in milliseconds; every later `now_ms` must not be smaller.
///
/// The memory belongs to the connection until `tandem_conn_free`: do not read, write or free
/// it meanwhile. The configuration and its name and auth bytes are copied and need not
/// outlive this call.
///
/// Returns `TANDEM_RESULT_OK`; `TANDEM_RESULT_BUFFER_TOO_SMALL`; `TANDEM_RESULT_INVALID_CONFIG`
/// (see `tandem_config_check`); `TANDEM_RESULT_INVALID_ARGUMENT` for an unknown role;
/// `TANDEM_RESULT_NULL_POINTER`.
///
/// # Safety
///
/// `mem` must point to `mem_len` writable bytes that nothing else uses until `tandem_conn_free`
/// is called on the handle (nor after it, if they are freed). `config` as for
/// `tandem_config_check`. `out` must point to a writable `tandem_conn *`.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_init(
    mem: *mut core::ffi::c_void,
    mem_len: usize,
    config: *const TandemConfig,
    role: u32,
    now_ms: u64,
    out: *mut *mut TandemConn,
) -> TandemResult {
    // SAFETY: forwarded contract.
    unsafe { init_in(mem, mem_len, config, role, None, now_ms, out) }
}

/// `tandem_conn_init`, or with `session` (this side's token: the acceptor's offer, the
/// dialer's empty) the connection of a resumable session (`with_session_storage`).
///
/// # Safety
///
/// As `tandem_conn_init`.
pub(crate) unsafe fn init_in(
    mem: *mut core::ffi::c_void,
    mem_len: usize,
    config: *const TandemConfig,
    role: u32,
    session: Option<&[u8]>,
    now_ms: u64,
    out: *mut *mut TandemConn,
) -> TandemResult {
    if mem.is_null() || config.is_null() || out.is_null() {
        return TandemResult::NullPointer;
    }
    let role = match role {
        TANDEM_ROLE_DIALER => Role::Dialer,
        TANDEM_ROLE_ACCEPTOR => Role::Acceptor,
        _ => return TandemResult::InvalidArgument,
    };
    if mem_len > isize::MAX as usize {
        return TandemResult::InvalidArgument;
    }
    guard(|| {
        // SAFETY: non-NULL; valid by the contract.
        let c = unsafe { &*config };
        // SAFETY: the contract covers `name` and `auth`; they are copied by `with_storage`.
        let (config, mut me, l) = match unsafe { convert(c, session.is_some()) } {
            Ok(v) => v,
            Err(r) => return r.code,
        };
        let base = mem.cast::<u8>();
        let align = align_of::<TandemConn>();
        let pad = (align - base as usize % align) % align;
        match l.total() {
            Some(total) if total <= mem_len => {}
            _ => return TandemResult::BufferTooSmall,
        }
        // SAFETY: `pad + l.end <= (align - 1) + l.end = total <= mem_len`, so every offset
        // below stays inside the caller's `mem_len` bytes.
        let start = unsafe { base.add(pad) };
        // SAFETY: each region is inside `mem` (above), the regions are disjoint (consecutive
        // offsets from `layout`), and `slots_off` is a multiple of `Option<Slot>`'s alignment
        // from an address aligned for `TandemConn`, whose alignment is at least as large (it
        // contains the `Connection`, whose `Table<Slot>` fields have at least `Slot`'s
        // alignment; asserted by a test). Every byte is initialised before a slice is made
        // over it (`&mut [u8]` over uninitialised memory would be undefined), and the caller
        // guarantees nothing else uses this memory until `tandem_conn_free`, which is what the
        // `'static` of the slices stands for (they never leave the handle).
        let (storage, dgram) = unsafe {
            let slots = start.add(l.slots_off).cast::<Option<Slot>>();
            for i in 0..l.slots {
                slots.add(i).write(None);
            }
            let rx = start.add(l.rx_off);
            let tx = start.add(l.tx_off);
            let re = start.add(l.re_off);
            let replies = start.add(l.replies_off);
            let retained = start.add(l.retained_off);
            rx.write_bytes(0, l.rx);
            tx.write_bytes(0, l.tx);
            re.write_bytes(0, l.re);
            replies.write_bytes(0, l.replies);
            retained.write_bytes(0, l.retained);
            let storage = Storage {
                rx: core::slice::from_raw_parts_mut(rx, l.rx),
                tx: core::slice::from_raw_parts_mut(tx, l.tx),
                reassembly: core::slice::from_raw_parts_mut(re, l.re),
                slots: core::slice::from_raw_parts_mut(slots, l.slots),
            };
            let dgram = DatagramStorage {
                replies: core::slice::from_raw_parts_mut(replies, l.replies),
                retained: core::slice::from_raw_parts_mut(retained, l.retained),
            };
            (storage, dgram)
        };
        let now = Instant::from_millis(now_ms);
        #[cfg(feature = "resume")]
        let built = match session {
            Some(token) => {
                me.session = token;
                Connection::with_session_storage(role, config, me, storage, dgram, now)
            }
            None => Connection::with_datagram_storage(role, config, me, storage, dgram, now),
        };
        #[cfg(not(feature = "resume"))]
        let built = {
            let _ = &mut me;
            Connection::with_datagram_storage(role, config, me, storage, dgram, now)
        };
        let conn = match built {
            Ok(conn) => conn,
            // The layout sized every buffer for this config, so only a rule of the core this
            // crate does not know of can land here.
            Err(_) => return TandemResult::InvalidConfig,
        };
        let handle = start.cast::<TandemConn>();
        // SAFETY: `start` is aligned for `TandemConn` (`pad`), and its
        // `size_of::<TandemConn>()` bytes lie before `slots_off`, inside `mem`, disjoint from
        // the buffers the connection borrows. `out` is writable by the contract.
        unsafe {
            handle.write(TandemConn {
                magic: MAGIC,
                recv_offered: 0,
                mem: Span::at(start, l.end),
                rx: Span::at(start.add(l.rx_off), l.rx),
                re: Span::at(start.add(l.re_off), l.re),
                conn,
            });
            out.write(handle);
        }
        TandemResult::Ok
    })
    .unwrap_or(TandemResult::Panicked)
}

/// Ends the connection's use of its memory: afterwards the memory given to `tandem_conn_init`
/// is the caller's again and the handle must not be used. Frees a poisoned connection too.
///
/// This sends nothing: to end the connection politely, `tandem_conn_close` it and send what
/// `tandem_conn_poll_transmit` returns first.
///
/// # Safety
///
/// `conn` must be NULL or a handle from `tandem_conn_init` that was not freed, with no other
/// call on it running.
#[no_mangle]
pub unsafe extern "C" fn tandem_conn_free(conn: *mut TandemConn) -> TandemResult {
    // SAFETY: forwarded contract.
    if let Err(e) = unsafe { check(conn, true) } {
        return e;
    }
    // SAFETY: `check` found an aligned, live handle; by the contract no other reference to it
    // exists. The value is dropped in place once, and the marker cleared so that a later call
    // with this pointer returns TANDEM_RESULT_BAD_HANDLE while the memory is unchanged.
    let dropped = guard(|| unsafe { core::ptr::drop_in_place(core::ptr::addr_of_mut!((*conn).conn)) });
    // SAFETY: as above; `magic` is a plain integer field, valid to write even after its
    // neighbour was dropped.
    unsafe { core::ptr::addr_of_mut!((*conn).magic).write(0) };
    match dropped {
        Some(()) => TandemResult::Ok,
        None => TandemResult::Panicked,
    }
}

/// Checks that `conn` is an aligned, live handle (and not poisoned, unless `poisoned_ok`).
///
/// # Safety
///
/// `conn` must be NULL or point to memory readable for a `TandemConn` (a handle from
/// `tandem_conn_init`, freed or not, whose memory the caller still owns).
unsafe fn check(conn: *mut TandemConn, poisoned_ok: bool) -> Result<(), TandemResult> {
    if conn.is_null() {
        return Err(TandemResult::NullPointer);
    }
    if conn as usize % align_of::<TandemConn>() != 0 {
        return Err(TandemResult::BadHandle);
    }
    // SAFETY: non-NULL, aligned, readable by the contract; only an integer field (valid for
    // any bits) is read, through a raw pointer (no reference to a possibly freed connection is
    // made).
    let magic = unsafe { core::ptr::addr_of!((*conn).magic).read() };
    match magic {
        MAGIC => Ok(()),
        POISONED if poisoned_ok => Ok(()),
        POISONED => Err(TandemResult::Poisoned),
        _ => Err(TandemResult::BadHandle),
    }
}

/// Runs `f` on a checked handle under `guard`; a panic poisons the connection. Unless
/// `keep_offer`, forgets the buffer `tandem_conn_recv_buffer` offered.
///
/// # Safety
///
/// `conn` must be NULL or a handle from `tandem_conn_init` that was not freed, with no other
/// call on it running.
pub(crate) unsafe fn with_conn(
    conn: *mut TandemConn,
    keep_offer: bool,
    f: impl FnOnce(&mut TandemConn) -> TandemResult,
) -> TandemResult {
    // SAFETY: forwarded contract.
    if let Err(e) = unsafe { check(conn, false) } {
        return e;
    }
    let r = guard(|| {
        // SAFETY: `check` found an aligned, live, initialised handle, and the contract says no
        // other call (hence no other reference) on it is running: this is the only reference
        // for the duration of `f`.
        let h = unsafe { &mut *conn };
        if !keep_offer {
            h.recv_offered = 0;
        }
        f(h)
    });
    r.unwrap_or_else(|| {
        // SAFETY: the reference made inside the guard is gone (the closure unwound); the
        // handle is still live memory; `magic` is a plain integer.
        unsafe { core::ptr::addr_of_mut!((*conn).magic).write(POISONED) };
        TandemResult::Panicked
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout gives every buffer exactly what the core asks for.
    #[test]
    fn layout_matches_the_cores_storage_sizes() {
        let configs = [
            Config::default(),
            Config { transport: Transport::Packet { max_datagram: 70_000 }, ..Config::default() },
            Config { max_frame_size: 4096, max_outbound_calls: 1, max_tx_buffer: 4096, ..Config::default() },
        ];
        for c in configs {
            c.validate().expect("valid");
            let l = layout(&c, false).expect("layout");
            assert_eq!(
                (l.rx, l.tx, l.re, l.slots),
                (
                    Storage::rx_len(&c),
                    Storage::tx_len(&c),
                    Storage::reassembly_len(&c),
                    Storage::slots_len(&c)
                )
            );
            assert!(l.end >= size_of::<TandemConn>() + Storage::bytes_len(&c));
        }
    }

    #[test]
    fn slot_alignment_fits_the_handle() {
        assert!(align_of::<TandemConn>() >= align_of::<Option<Slot>>());
    }

    /// A panic inside a call (an internal bug; the core has none we know of, so the test makes
    /// one) is caught at the boundary, returned as PANICKED, and poisons the connection.
    #[cfg(feature = "std")]
    #[test]
    fn a_panic_is_caught_and_poisons_the_connection() {
        let mut c = core::mem::MaybeUninit::<TandemConfig>::uninit();
        // SAFETY: writable config; then initialised.
        let c = unsafe {
            assert_eq!(tandem_config_default(c.as_mut_ptr()), TandemResult::Ok);
            c.assume_init()
        };
        let mut size = 0;
        // SAFETY: valid pointers.
        assert_eq!(unsafe { tandem_conn_memory_size(&c, &mut size) }, TandemResult::Ok);
        let mut mem = vec![0u8; size];
        let mut conn = core::ptr::null_mut();
        // SAFETY: `size` writable bytes used by nothing else until the free below.
        let r =
            unsafe { tandem_conn_init(mem.as_mut_ptr().cast(), size, &c, TANDEM_ROLE_DIALER, 0, &mut conn) };
        assert_eq!(r, TandemResult::Ok);
        // SAFETY: a live handle, for every call below.
        unsafe {
            assert_eq!(with_conn(conn, false, |_| panic!("an internal bug")), TandemResult::Panicked);
            assert_eq!(with_conn(conn, false, |_| TandemResult::Ok), TandemResult::Poisoned);
            assert!(crate::tandem_conn_is_finished(conn));
            assert_eq!(tandem_conn_free(conn), TandemResult::Ok);
            assert_eq!(tandem_conn_free(conn), TandemResult::BadHandle);
        }
        drop(mem);
    }
}
