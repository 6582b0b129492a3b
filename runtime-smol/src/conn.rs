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
use crate::shared::{now, Inner, Shared};
use crate::transport::{self, Socket};

/// Creates the connection for `socket` and spawns its driver. The returned handle keeps it
/// open; with `keep`, the driver holds a handle too (server side: the connection lives until
/// it is closed, not until handles are dropped).
pub(crate) fn start(
    socket: Socket,
    role: Role,
    options: &Options,
    server: Option<Arc<ServerShared>>,
    label: &str,
) -> Result<Peer, Error> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let mut config = options.config.clone();
    config.transport = if socket.is_packet() {
        Transport::Packet { max_datagram: options.max_datagram }
    } else {
        Transport::Stream
    };
    let me = Identity { name: options.name.as_bytes(), ..Identity::default() };
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
    });
    if let Some(server) = &shared.server {
        server.register(&shared);
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

/// Connects to `addr` (`tcp://host:port`, `unix:///path`, `unix+seqpacket:///path`) and
/// completes the handshake. The returned [`Peer`] calls the server; `options.router` serves the
/// server's calls to this side.
pub async fn connect(addr: &str, options: Options) -> Result<Peer, Error> {
    let address: Address = addr.parse()?;
    let attempt = async {
        let socket = transport::connect(&address).await?;
        let peer = start(socket, Role::Dialer, &options, None, addr)?;
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
