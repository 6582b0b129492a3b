//! Where connections come from: a server's accepted transport or UDP association (admitted by
//! its [`Hub`]'s endpoint), a client's dialed transport (with its [`Dialer`]). Each gives a
//! [`NewConnection`] for the runtime to drive with an [`Engine`](crate::engine::Engine).
//! (Layer 6: imports `session`, `hub`, `peer`, `conn`, `udp`, `state`, `clock`, `error`.)

use core::sync::atomic::{AtomicU64, Ordering};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tandem_core::endpoint::{ConnId, Dialer, ReconnectPolicy, Route, TOKEN_LEN};
use tandem_core::{Config, Connection, Identity, Role};

use crate::clock::{self, now, SleepUntil};
use crate::conn::Shared;
use crate::error::Error;
use crate::hub::{self, Hub};
use crate::peer::{self, Peer};
use crate::session::{Link, Redial};
use crate::state::PeerCredentials;
use crate::udp::{Inbox, HELLO};

/// What a connected transport tells about the other side.
#[derive(Clone, Copy, Debug, Default)]
pub struct TransportInfo {
    /// Its IP address and port (TCP and UDP).
    pub remote: Option<SocketAddr>,
    /// Its process's credentials (Unix sockets).
    pub creds: Option<PeerCredentials>,
    /// Over `udp://` or `serial://` (datagram mode: no sessions).
    pub udp: bool,
}

/// A connection that exists and waits for its driver.
pub struct NewConnection {
    /// The connection (`id` for logs; `lock` for the driver).
    pub shared: Arc<Shared>,
    pub(crate) link: Link,
}

impl core::fmt::Debug for NewConnection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NewConnection").field("conn", &self.shared.id).finish_non_exhaustive()
    }
}

/// Server: a transport was accepted (`label`, e.g. its remote address, for logs). Admits it
/// through the endpoint and creates its connection, or refuses it (`None`: close it at once;
/// the refusal is logged and counted in [`ServerStats`](crate::ServerStats)).
pub fn accept(hub: &Arc<Hub>, transport: TransportInfo, label: &str) -> Option<NewConnection> {
    match hub.accept() {
        Ok(a) => start(hub, a.id, a.token, transport, None),
        Err(refusal) => {
            tracing::warn!(remote = %label, "{refusal}");
            None
        }
    }
}

/// Server, UDP: a datagram arrived from `from` (or was resubmitted,
/// [`Hub::poll_resubmitted`]). Delivers it to its association, or — a HELLO from a new address,
/// admitted by the endpoint — creates the association, whose driver the runtime starts on the
/// returned inbox (its datagrams) and the server's socket (replies to `from`).
pub fn datagram(
    hub: &Arc<Hub>,
    from: SocketAddr,
    data: Vec<u8>,
) -> Option<(NewConnection, Arc<Mutex<Inbox>>)> {
    let is_hello = data.first() == Some(&HELLO);
    match hub.route(from, is_hello) {
        (Route::Existing(_), Some(inbox)) => {
            inbox.lock().unwrap_or_else(|e| e.into_inner()).push(data);
            None
        }
        (Route::Existing(_), None) => None,
        (Route::New(id), _) => {
            let inbox = Arc::new(Mutex::new(Inbox::default()));
            inbox.lock().unwrap_or_else(|e| e.into_inner()).push(data);
            let transport = TransportInfo { remote: Some(from), creds: None, udp: true };
            let c = start(hub, id, None, transport, Some((from, inbox.clone())))?;
            Some((c, inbox))
        }
        (Route::Drop, _) => {
            tracing::trace!(%from, "datagram from an unknown address is not a HELLO: dropped");
            None
        }
        (Route::Full, _) => {
            tracing::warn!(
                %from,
                "too many UDP associations (EndpointConfig::max_associations) or connections: HELLO dropped"
            );
            None
        }
    }
}

/// Creates the connection of an admitted transport or association and registers it.
fn start(
    hub: &Arc<Hub>,
    id: ConnId,
    token: Option<[u8; TOKEN_LEN]>,
    transport: TransportInfo,
    udp: Option<(SocketAddr, Arc<Mutex<Inbox>>)>,
) -> Option<NewConnection> {
    let TransportInfo { remote, creds, .. } = transport;
    let session = token.as_ref().map_or(&[][..], |t| &t[..]);
    let me = Identity { name: hub.name.as_bytes(), session, ..Identity::default() };
    let conn = match Connection::new(Role::Acceptor, hub.connection.clone(), me, now()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a connection");
            hub::apply(hub.closed(id, udp.as_ref().map(|u| u.0), false));
            return None;
        }
    };
    let shared = Shared::new(conn, remote, creds, id.0, hub.sleep);
    shared.set_observer(hub.observer());
    tracing::debug!(conn = id.0, ?remote, "transport accepted");
    let (addr, inbox) = match udp {
        Some((a, i)) => (Some(a), Some(i)),
        None => (None, None),
    };
    hub.register(id, shared.clone(), inbox);
    Some(NewConnection { shared, link: Link::Acceptor { hub: hub.clone(), id, udp: addr } })
}

/// Client: a transport to the server is connected. Creates the connection named `name`
/// (presenting `auth` in its HELLO, SPEC.md §5.6) with
/// `connection` (see [`connection_config`](crate::config::connection_config)), reconnecting
/// per `reconnect` when `resume` is on (never over UDP, which has no sessions); its waits use
/// the runtime's `sleep`. Returns it and the first handle on it; once the driver runs,
/// [`peer::connected`] waits for the handshake.
pub fn dial(
    name: &str,
    auth: &[u8],
    connection: Config,
    transport: TransportInfo,
    resume: bool,
    reconnect: ReconnectPolicy,
    sleep: SleepUntil,
) -> Result<(NewConnection, Peer), Error> {
    let TransportInfo { remote, creds, udp } = transport;
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let me = Identity { name: name.as_bytes(), auth, ..Identity::default() };
    let conn = Connection::new(Role::Dialer, connection, me, now())?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let shared = Shared::new(conn, remote, creds, id, sleep);
    tracing::debug!(conn = id, ?remote, "transport connected");
    let dialer = Dialer::new(reconnect, clock::seed());
    // No resumption over UDP (SPEC.md §14.1).
    let link = Link::Dialer(Box::new(Redial::new(dialer, resume && !udp)));
    let peer = peer::from_shared(shared.clone());
    Ok((NewConnection { shared, link }, peer))
}
