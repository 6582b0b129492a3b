//! Starting connections: the core connection, its shared state and its driver task.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_io::Timer;
use futures_lite::FutureExt;
use tandem_core::addr::Address;
use tandem_core::{Connection, Identity, Role, Transport};

use crate::driver::Driver;
use crate::error::Error;
use crate::options::Options;
use crate::peer::Peer;
use crate::server::ServerShared;
use crate::shared::{now, session_token, Dial, Inner, Shared};
use crate::transport::{self, Socket};

/// Creates the connection for `socket` and spawns its driver. The returned handle keeps it
/// open; with `keep`, the driver holds a handle too (server side: the connection lives until
/// it is closed, not until handles are dropped).
pub(crate) fn start(
    socket: Socket,
    role: Role,
    options: &Options,
    server: Option<Arc<ServerShared>>,
    dial: Option<Dial>,
    label: &str,
) -> Result<Peer, Error> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let mut config = options.config.clone();
    config.transport = if socket.is_udp() {
        Transport::Datagram { max_datagram: options.datagram_size(true) }
    } else if socket.is_packet() {
        Transport::Packet { max_datagram: options.datagram_size(false) }
    } else {
        Transport::Stream
    };
    // An acceptor offers resumption by giving the session a token (never over UDP, §14.1).
    let token = if role == Role::Acceptor && options.resumption && !socket.is_udp() {
        session_token()
    } else {
        Vec::new()
    };
    let me = Identity { name: options.name.as_bytes(), session: &token, ..Identity::default() };
    let conn = Connection::new(role, config, me, now())?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let creds = socket.credentials();
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner::new(conn)),
        router: options.router.clone(),
        handles: AtomicUsize::new(0),
        info: OnceLock::new(),
        creds,
        id,
        server,
        dial,
    });
    if let Some(server) = &shared.server {
        server.register(&shared, &token);
    }
    tracing::debug!(conn = id, ?role, remote = label, ?creds, "transport connected");
    let peer = Peer::from_shared(shared.clone());
    let keep = (role == Role::Acceptor).then(|| peer.clone());
    let driver = Driver::new(shared, socket);
    smol::spawn(async move {
        driver.run().await;
        drop(keep);
    })
    .detach();
    Ok(peer)
}

/// Connects to `addr` (`tcp://host:port`, `unix:///path`, `unix+seqpacket:///path` or
/// `udp://host:port`) and completes the handshake. The returned [`Peer`] calls the server;
/// `options.router` serves the server's calls to this side.
///
/// When the server offers session resumption (stream and SEQPACKET transports, see
/// [`Options::resumption`]) and the transport is lost, the connection reconnects by itself
/// with backoff ([`Options::reconnect_backoff`]); calls in flight complete exactly once after
/// the resumption. If the server no longer knows the session, or it is not resumed within
/// `Config::session_grace`, they fail with UNAVAILABLE.
pub async fn connect(addr: &str, options: Options) -> Result<Peer, Error> {
    let address: Address = addr.parse()?;
    let attempt = async {
        let socket = transport::connect(&address).await?;
        let dial = Dial {
            addr: address.clone(),
            resumption: options.resumption,
            backoff: options.backoff,
            connect_timeout: options.connect_timeout,
        };
        let peer = start(socket, Role::Dialer, &options, None, Some(dial), addr)?;
        peer.connected().await.map_err(Error::Handshake)?;
        Ok(peer)
    };
    let timeout = options.connect_timeout;
    attempt
        .or(async {
            Timer::after(timeout).await;
            Err(Error::Timeout { addr: address.to_string() })
        })
        .await
}
