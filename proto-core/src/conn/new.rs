//! Constructing a connection: growable buffers bounded by the configuration (`alloc`), or the
//! caller's own storage (no allocator).

use super::{Connection, DatagramStorage, Identity, Inline, Slot, State, Storage, StorageError};
use crate::config::{Config, ConfigError, PeerLimits, Role, Transport};
use crate::frame::{self, MAX_AUTH_LEN, MAX_NAME_LEN, MAX_SESSION_LEN};
use crate::stats::Stats;
use crate::storage::{ByteQueue, Store, Table};
use crate::time::Instant;

/// `Store` for owned memory, or the borrowed slice.
#[cfg(feature = "alloc")]
fn owned<T>() -> Store<'static, T> {
    Store::Owned(alloc::vec::Vec::new())
}

impl<'a> Connection<'a> {
    /// A connection whose buffers grow on demand up to the bounds in `config`.
    ///
    /// A dialer queues its HELLO at once; drain it with `poll_transmit`.
    #[cfg(feature = "alloc")]
    #[cfg_attr(docsrs, doc(cfg(feature = "alloc")))]
    pub fn new(
        role: Role,
        config: Config,
        me: Identity<'_>,
        now: Instant,
    ) -> Result<Connection<'static>, ConfigError> {
        config.validate()?;
        let rx_max = config.max_frame_size as usize + frame::MAX_HEADER_LEN;
        // On a packet transport the receive buffer must hold one whole datagram.
        let rx_max = match config.transport {
            Transport::Packet { max_datagram } => rx_max.max(max_datagram as usize),
            Transport::Datagram { max_datagram } => rx_max.max(max_datagram as usize),
            Transport::Stream => rx_max,
        };
        let tx_max = config.max_tx_buffer as usize;
        // Without fragmentation nothing is ever reassembled (SPEC.md §9.7).
        let reasm_max = if crate::config::FRAGMENTATION { config.max_message_size as usize } else { 0 };
        let tx = tx_queue(ByteQueue::new(owned(), tx_max), &config);
        let slots = (config.max_concurrent_calls as usize)
            .saturating_add(config.max_concurrent_streams as usize)
            .saturating_add(config.max_outbound_calls as usize)
            .saturating_add(config.max_outbound_streams as usize);
        Connection::build(
            role,
            config,
            me,
            now,
            ByteQueue::new(owned(), rx_max),
            tx,
            ByteQueue::new(owned(), reasm_max),
            reasm_max,
            Table::new(owned(), slots),
            None,
        )
    }

    /// A connection working only in the caller's `storage` (no allocator needed).
    ///
    /// Every buffer must be at least as large as `config` needs: size them with
    /// [`Storage::rx_len`], [`Storage::tx_len`], [`Storage::reassembly_len`] and
    /// [`Storage::slots_len`] (`const fn`s, usable for `static` array lengths). Undersized storage
    /// is refused with [`StorageError::TooSmall`](super::StorageError::TooSmall), naming the
    /// buffer, its length and the length needed; an invalid `config` with
    /// [`StorageError::Config`](super::StorageError::Config). A buffer larger than needed is
    /// fine; `tx` beyond [`Storage::tx_len`] is not used, so `max_tx_buffer` means the same as
    /// with [`Connection::new`].
    ///
    /// Datagram mode ([`Transport::Datagram`], also over a serial line) keeps a reply cache and
    /// retained requests: without `alloc` give it their buffers with
    /// [`with_datagram_storage`](Self::with_datagram_storage) (here they are empty, so a
    /// datagram-mode `config` is refused unless its reply cache and retained bytes are 0).
    /// With `alloc` that state grows on the heap, bounded by the same `config`.
    pub fn with_storage(
        role: Role,
        config: Config,
        me: Identity<'_>,
        storage: Storage<'a>,
        now: Instant,
    ) -> Result<Self, StorageError> {
        Self::build_in(
            role,
            config,
            me,
            storage,
            DatagramStorage::default(),
            !cfg!(feature = "alloc"),
            false,
            now,
        )
    }

    /// [`with_storage`](Self::with_storage) for datagram mode (SPEC.md §14, and serial links,
    /// §14.9) without an allocator: `dgram` holds the reply cache and the retained requests,
    /// sized by [`Storage::replies_len`] and [`Storage::retained_len`] from the same `config`
    /// (`reply_cache_entries`, `reply_cache_bytes`, `max_outbound_calls`,
    /// `max_retained_bytes`), so exactly-once delivery needs no heap:
    ///
    /// ```
    /// use tandem_core::{Config, Connection, DatagramStorage, Identity, Instant, Role, Slot, Storage, Transport};
    ///
    /// const CONFIG: Config = Config {
    ///     transport: Transport::Datagram { max_datagram: 1200 },
    ///     max_frame_size: 4096,
    ///     max_message_size: 4096,
    ///     max_concurrent_calls: 4,
    ///     max_outbound_calls: 4,
    ///     max_tx_buffer: 4096,
    ///     reply_cache_entries: 8,
    ///     reply_cache_bytes: 2048,
    ///     max_retained_bytes: 2048,
    ///     ..Config::DEFAULT
    /// };
    /// let mut rx = [0u8; Storage::rx_len(&CONFIG)];
    /// let mut tx = [0u8; Storage::tx_len(&CONFIG)];
    /// let mut slots = [const { None::<Slot> }; Storage::slots_len(&CONFIG)];
    /// let mut replies = [0u8; Storage::replies_len(&CONFIG)];
    /// let mut retained = [0u8; Storage::retained_len(&CONFIG)];
    /// let storage = Storage { rx: &mut rx, tx: &mut tx, reassembly: &mut [], slots: &mut slots };
    /// let dgram = DatagramStorage { replies: &mut replies, retained: &mut retained };
    /// let me = Identity { name: b"fw", ..Identity::default() };
    /// let conn = Connection::with_datagram_storage(Role::Acceptor, CONFIG, me, storage, dgram, Instant::ZERO);
    /// assert!(conn.is_ok());
    /// ```
    ///
    /// Undersized buffers are refused with
    /// [`StorageError::TooSmall`](super::StorageError::TooSmall) naming
    /// [`StorageBuffer::Replies`](super::StorageBuffer::Replies) or
    /// [`StorageBuffer::Retained`](super::StorageBuffer::Retained). On other transports `dgram`
    /// is not used. With `alloc` the buffers are checked the same way, but the state lives on
    /// the heap (bounded by the same `config`), so code written for firmware keeps working when
    /// another crate enables `alloc`.
    pub fn with_datagram_storage(
        role: Role,
        config: Config,
        me: Identity<'_>,
        storage: Storage<'a>,
        dgram: DatagramStorage<'a>,
        now: Instant,
    ) -> Result<Self, StorageError> {
        Self::build_in(role, config, me, storage, dgram, true, false, now)
    }

    /// [`with_datagram_storage`](Self::with_datagram_storage) that also keeps a resumable
    /// session (SPEC.md §13) on a stream or packet transport without an allocator (feature
    /// `resume`): `session` holds the reply cache and the retained requests and stream items,
    /// sized by [`Storage::session_replies_len`] and [`Storage::session_retained_len`]. In
    /// datagram mode it is exactly `with_datagram_storage`.
    ///
    /// An acceptor offers resumption exactly when its [`Identity::session`] token is not empty
    /// (and the buffers are given: [`with_storage`](Self::with_storage) offers none). The core
    /// has no random number generator: the token must be unguessable, at least 16 bytes from a
    /// cryptographically secure source — on firmware the chip's hardware TRNG (or a CSPRNG
    /// seeded from it), never a counter, a serial number or a clock (SPEC.md §13.2). The dialer
    /// needs the buffers too: it keeps its requests and stream items for retransmission.
    ///
    /// ```
    /// use tandem_core::{Config, Connection, Identity, Instant, Role, SessionStorage, Slot, Storage};
    ///
    /// const CONFIG: Config = Config {
    ///     max_frame_size: 4096,
    ///     max_message_size: 4096,
    ///     max_concurrent_calls: 4,
    ///     max_concurrent_streams: 1,
    ///     max_outbound_calls: 2,
    ///     max_outbound_streams: 1,
    ///     max_tx_buffer: 4096,
    ///     reply_cache_entries: 8,
    ///     reply_cache_bytes: 2048,
    ///     max_retained_bytes: 2048,
    ///     ..Config::DEFAULT
    /// };
    /// let mut rx = [0u8; Storage::rx_len(&CONFIG)];
    /// let mut tx = [0u8; Storage::tx_len(&CONFIG)];
    /// let mut reassembly = [0u8; Storage::reassembly_len(&CONFIG)];
    /// let mut slots = [const { None::<Slot> }; Storage::slots_len(&CONFIG)];
    /// let mut replies = [0u8; Storage::session_replies_len(&CONFIG)];
    /// let mut retained = [0u8; Storage::session_retained_len(&CONFIG)];
    /// let storage = Storage { rx: &mut rx, tx: &mut tx, reassembly: &mut reassembly, slots: &mut slots };
    /// let session = SessionStorage { replies: &mut replies, retained: &mut retained };
    /// // 16 bytes from the hardware TRNG in real firmware.
    /// let token = [0x5a; 16];
    /// let me = Identity { name: b"fw", session: &token, ..Identity::default() };
    /// let conn = Connection::with_session_storage(Role::Acceptor, CONFIG, me, storage, session, Instant::ZERO);
    /// assert!(conn.is_ok());
    /// ```
    ///
    /// Undersized buffers are refused with
    /// [`StorageError::TooSmall`](super::StorageError::TooSmall) naming
    /// [`StorageBuffer::Replies`](super::StorageBuffer::Replies) or
    /// [`StorageBuffer::Retained`](super::StorageBuffer::Retained). The buffers are reused in
    /// place for every new session of this connection (after a declined resumption). With
    /// `alloc` they are checked the same way but the state lives on the heap.
    #[cfg(feature = "resume")]
    #[cfg_attr(docsrs, doc(cfg(feature = "resume")))]
    pub fn with_session_storage(
        role: Role,
        config: Config,
        me: Identity<'_>,
        storage: Storage<'a>,
        session: super::SessionStorage<'a>,
        now: Instant,
    ) -> Result<Self, StorageError> {
        Self::build_in(role, config, me, storage, session, true, true, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn build_in(
        role: Role,
        config: Config,
        me: Identity<'_>,
        storage: Storage<'a>,
        dgram: DatagramStorage<'a>,
        check_dgram: bool,
        keep_session: bool,
        now: Instant,
    ) -> Result<Self, StorageError> {
        config.validate()?;
        storage.check(&config)?;
        let datagram = matches!(config.transport, Transport::Datagram { .. });
        if check_dgram {
            dgram.check(&config)?;
        }
        if keep_session && !datagram {
            dgram.check_session(&config)?;
        }
        #[cfg(all(feature = "datagram", not(feature = "alloc")))]
        let sess = (datagram || (keep_session && cfg!(feature = "resume")))
            .then(|| super::session::SessionState::new(&config, dgram.replies, dgram.retained));
        #[cfg(feature = "alloc")]
        let sess = None;
        #[cfg(any(feature = "alloc", not(feature = "datagram")))]
        let _ = dgram;
        let Storage { rx, tx, reassembly, slots } = storage;
        let tx = &mut tx[..Storage::tx_len(&config)];
        let reasm_max = if crate::config::FRAGMENTATION {
            reassembly.len().min(config.max_message_size as usize)
        } else {
            0
        };
        let (rx_len, tx_len, re_len, n) = (rx.len(), tx.len(), reassembly.len(), slots.len());
        let tx = tx_queue(ByteQueue::new(Store::Borrowed(tx), tx_len), &config);
        Ok(Connection::build(
            role,
            config,
            me,
            now,
            ByteQueue::new(Store::Borrowed(rx), rx_len),
            tx,
            ByteQueue::new(Store::Borrowed(reassembly), re_len),
            reasm_max,
            Table::new(Store::Borrowed(slots), n),
            #[cfg(feature = "datagram")]
            sess,
        )?)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        role: Role,
        config: Config,
        me: Identity<'_>,
        now: Instant,
        rx: ByteQueue<'a>,
        tx: ByteQueue<'a>,
        reasm: ByteQueue<'a>,
        reasm_max: usize,
        slots: Table<'a, Slot>,
        #[cfg(feature = "datagram")] sess: Option<super::SessBox<'a>>,
    ) -> Result<Self, ConfigError> {
        if me.name.len() > MAX_NAME_LEN {
            return Err(ConfigError { field: "identity.name", requirement: "at most 255 bytes" });
        }
        if me.auth.len() > MAX_AUTH_LEN {
            return Err(ConfigError { field: "identity.auth", requirement: "at most 1024 bytes" });
        }
        if me.session.len() > MAX_SESSION_LEN {
            return Err(ConfigError { field: "identity.session", requirement: "at most 64 bytes" });
        }
        if let Transport::Packet { .. } | Transport::Datagram { .. } = config.transport {
            // SPEC.md §4.1: on packet transports HELLO must fit 1200 bytes.
            let mut pbuf = [0u8; 128];
            let (params, n) = config.hello_params();
            let params = frame::Params::encode_into(&params[..n], &mut pbuf).unwrap_or(frame::Params::EMPTY);
            let hello = frame::Frame::Hello(frame::Hello {
                min_version: crate::config::VERSION,
                max_version: crate::config::VERSION,
                flags: frame::Hello::RESUME,
                name: me.name,
                auth: me.auth,
                session: me.session,
                params,
            });
            if hello.encoded_len() > 1200 {
                return Err(ConfigError {
                    field: "identity",
                    requirement: "short enough for HELLO to fit 1200 bytes on a packet transport",
                });
            }
        }
        let mut ident = (Inline::new(), Inline::new(), Inline::new());
        ident.0.set(me.name);
        ident.1.set(me.auth);
        ident.2.set(me.session);
        let conn_recv = config.conn_credit_bytes.into();
        let flood = u64::from(config.max_unproductive_frames) * 1_000_000;
        let mut c = Connection {
            role,
            config,
            state: State::Handshake,
            me: ident,
            peer_name: Inline::new(),
            peer_auth: Inline::new(),
            peer_session: Inline::new(),
            peer_resume: false,
            version: 0,
            peer: PeerLimits::default(),
            rx,
            rx_release: 0,
            eof: false,
            rx_error: None,
            direct: None,
            reasm,
            reasm_max,
            partial: None,
            reasm_delivered: false,
            tx,
            tx_head_left: 0,
            #[cfg(feature = "alloc")]
            spliced: Default::default(),
            slots,
            pending_slots: 0,
            next_id: match role {
                Role::Dialer => 0,
                Role::Acceptor => 1,
            },
            peer_high: None,
            out_calls: 0,
            in_calls: 0,
            out_streams: 0,
            in_streams: 0,
            conn_send: 0,
            conn_recv,
            conn_grant: 0,
            conn_unconsumed: 0,
            started: now,
            last_recv: now,
            ping_out: None,
            ping_blocked: Instant::ZERO,
            grant_retry: false,
            ping_seq: 0,
            flood_tokens: flood,
            flood_at: now,
            tx_queued: 0,
            drain_deadline: Instant::MAX,
            goaway_sent: false,
            goaway_recv: None,
            connected_event: false,
            goaway_event: None,
            closed_event: None,
            closed_delivered: false,
            close_msg: Inline::new(),
            stats: Stats::default(),
            #[cfg(feature = "datagram")]
            sess: None,
            #[cfg(all(feature = "resume", not(feature = "alloc")))]
            sess_spare: None,
            session_ending: false,
            grace_deadline: Instant::MAX,
            suspended_at: Instant::ZERO,
            resuming: false,
            resume_request: false,
            auth_request: false,
            resumed: false,
            resend_from: None,
            cut_request: None,
            conn_no_grant: 0,
            resend_streams: false,
            event_key: None,
            #[cfg(feature = "datagram")]
            dgram: None,
        };
        if role == Role::Dialer {
            c.send_hello(crate::config::VERSION, crate::config::VERSION, !c.me.2.get().is_empty());
        }
        // --- datagram mode (SPEC.md §14)
        #[cfg(feature = "datagram")]
        c.dgram_init(now, sess);
        Ok(c)
    }
}

/// The transmit queue: on a byte stream it wraps around (the pump takes
/// [`transmit_data`](Connection::transmit_data) again after each write), so that a queue kept
/// full by a stream is not moved down on every append; packet and datagram transports keep
/// one region (a datagram's frames are taken from it in one piece).
fn tx_queue<'a>(q: ByteQueue<'a>, config: &Config) -> ByteQueue<'a> {
    match config.transport {
        Transport::Stream => q.wrapping(),
        _ => q,
    }
}
