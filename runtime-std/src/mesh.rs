//! [`Mesh`]: a node of a mesh of peers (SPEC.md §16), blocking. A [`Server`] whose gate is the
//! shared `tandem_runtime::mesh::MeshCore` (which drives the sans-IO mesh on the I/O threads),
//! and client connections dialed on short-lived threads when the core asks. (Layer 8: imports
//! `server`, `client`, `handlers`, `config`, `api`, `block`.)

use core::time::Duration;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::hub::Gate;
use tandem_runtime::mesh::{DialDone, DialFn, MemberInfo, MemberState, MeshCore, MeshStats, NotConnected};
use tandem_runtime::tandem_core::addr::Address;
use tandem_runtime::tandem_core::typed::Unary;
use tandem_runtime::tandem_core::MethodId;
use tandem_runtime::{peer, CallError, Deadline, Error, ServerStats};

use crate::api::Peer;
use crate::block::{block_on, sleep_until};
use crate::client::Client;
use crate::config::{ClientConfig, ServerConfig};
use crate::handlers::Handlers;
use crate::server::Server;

/// What a node of a mesh is (see `tandem_runtime::mesh::MeshOptions`): its name, its listening
/// address, the members, and the [`ServerConfig`] and [`ClientConfig`] of the connections it
/// accepts and dials.
pub type MeshOptions = tandem_runtime::mesh::MeshOptions<ServerConfig, ClientConfig>;

/// A node of a mesh of peers (SPEC.md §16): it keeps exactly one connection with every other
/// member, dialed by the one of the two the dialer rule names, redialed with backoff when lost,
/// and used in both directions: [`peer`](Self::peer) calls, notifies and opens streams toward a
/// member whichever side dialed; every connection is served by the node's [`Handlers`].
///
/// Inbound connections are judged after the server's authenticator and before its HELLO:
/// non-members are refused with PERMISSION_DENIED, a member this node dials itself with
/// FAILED_PRECONDITION, and a member's newer connection replaces its older one. With an
/// authenticator (`ServerConfig::authenticator`), a member's name is what the authenticator
/// proved (the identity must equal the HELLO name); without one, the HELLO name is trusted: a
/// mesh without authentication is for trusted networks only.
///
/// ```
/// use std::time::Duration;
/// use tandem_std::{ClientConfig, Handlers, Mesh, MeshOptions, ServerConfig};
///
/// let dir = std::env::temp_dir().join(format!("tandem-mesh-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let addr = |n: &str| format!("unix://{}", dir.join(n).display());
/// let names = ["a", "b"];
/// let nodes: Vec<Mesh> = names
///     .iter()
///     .map(|n| {
///         let mut o = MeshOptions::new(*n, addr(n), ServerConfig::new(*n), ClientConfig::new(*n));
///         for m in names {
///             o = o.member(m, addr(m));
///         }
///         let echo = Handlers::new().raw_unary(tandem_std::MethodId::new(1, 1), |_, req| Ok(req));
///         Mesh::start(o, echo).unwrap()
///     })
///     .collect();
/// let b = nodes[0].wait_for_peer("b", Duration::from_secs(5)).unwrap();
/// assert_eq!(b.call_raw(tandem_std::MethodId::new(1, 1), b"hi", Duration::from_secs(5)).unwrap(), b"hi");
/// for n in nodes {
///     n.shutdown(Duration::from_millis(100));
/// }
/// ```
pub struct Mesh {
    core: Arc<MeshCore>,
    server: Option<Server>,
}

impl core::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mesh").field("core", &self.core).finish()
    }
}

impl Mesh {
    /// Starts the node: listens on `options.listen` and dials the members it is the dialer of
    /// (in the background: this returns once listening). `handlers` serve every mesh
    /// connection. Fails on an invalid name, address or configuration, or when the address
    /// cannot be listened on.
    pub fn start(options: MeshOptions, handlers: Handlers) -> Result<Mesh, Error> {
        let MeshOptions { name, listen, members, server, client, mesh } = options;
        let client = ClientConfig { name: name.clone(), ..client };
        let dial = dialer(client, handlers.clone());
        let core = MeshCore::new(&name, &listen, &members, mesh, dial, sleep_until)?;
        let config = ServerConfig { name: name.clone(), ..server };
        let gate: Arc<dyn Gate> = core.clone();
        let server = Server::bind_gated(&listen, config, handlers, Some(gate))?;
        core.start();
        tracing::info!(mesh = %name, addr = %server.local_addr(), "mesh node started");
        Ok(Mesh { core, server: Some(server) })
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The address this node listens on.
    pub fn local_addr(&self) -> &Address {
        self.server().local_addr()
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("the server lives until the mesh is dropped")
    }

    /// The connection to member `name`, whichever side dialed it; [`NotConnected`] says why
    /// there is none.
    pub fn peer(&self, name: &str) -> Result<Peer, NotConnected> {
        self.core.peer(name).map(Peer)
    }

    /// Blocks until member `name` is connected, for at most `timeout`.
    pub fn wait_for_peer(&self, name: &str, timeout: Duration) -> Result<Peer, NotConnected> {
        block_on(self.core.wait_for_peer(name, timeout)).map(Peer)
    }

    /// Calls `method` on every member at once; one result per member, in name order. A member
    /// that is not connected gets UNAVAILABLE at once, with the reason; the others are bounded
    /// by `deadline`.
    pub fn call_all<Req, Resp>(
        &self,
        method: &Unary<Req, Resp>,
        req: &Req,
        deadline: impl Into<Deadline>,
    ) -> Vec<(String, Result<Resp, CallError>)>
    where
        Req: Serialize + DeserializeOwned,
        Resp: Serialize + DeserializeOwned,
    {
        block_on(self.core.call_all(method, req, deadline))
    }

    /// [`call_all`](Self::call_all) on raw bytes.
    pub fn call_all_raw(
        &self,
        method: MethodId,
        payload: &[u8],
        deadline: impl Into<Deadline>,
    ) -> Vec<(String, Result<Vec<u8>, CallError>)> {
        block_on(self.core.call_all_raw(method, payload, deadline))
    }

    /// Every member with its state and connection, in name order.
    pub fn members(&self) -> Vec<MemberInfo> {
        self.core.members()
    }

    /// The mesh connections this node holds: (dialed, accepted).
    pub fn connections(&self) -> (usize, usize) {
        self.core.connections()
    }

    /// The mesh's counters.
    pub fn stats(&self) -> MeshStats {
        self.core.stats()
    }

    /// The server's gauges and counters (every accepted connection, mesh or not).
    pub fn server_stats(&self) -> ServerStats {
        self.server().stats()
    }

    /// Adds a member (or changes a member's address: the next dial uses it).
    pub fn add_member(&self, name: &str, addr: &str) -> Result<(), Error> {
        self.core.add_member(name, addr)
    }

    /// Removes a member: its connection closes with CLOSE(OK) and it is refused from now on.
    /// Returns whether it was a member.
    pub fn remove_member(&self, name: &str) -> bool {
        self.core.remove_member(name)
    }

    /// A watch of member `name`'s state changes.
    pub fn watch(&self, name: &str) -> MemberWatch {
        MemberWatch(self.core.watch(name))
    }

    /// Graceful shutdown: stops dialing and accepting, sends GOAWAY on every mesh connection,
    /// lets exchanges in flight finish for up to `grace`, then closes what remains. Blocks
    /// until done.
    pub fn shutdown(mut self, grace: Duration) {
        let dialed = self.core.stop();
        for p in &dialed {
            p.go_away();
        }
        if let Some(s) = self.server.take() {
            s.shutdown(grace);
        }
        block_on(async {
            for p in &dialed {
                peer::shutdown(p, Duration::from_millis(100)).await;
            }
        });
    }
}

impl Drop for Mesh {
    /// Stops at once: every mesh connection is closed (UNAVAILABLE on the accepted ones, as a
    /// dropped [`Server`] does, and on the dialed ones).
    fn drop(&mut self) {
        for p in self.core.stop() {
            p.close_with(
                tandem_runtime::tandem_core::Status::UNAVAILABLE,
                tandem_runtime::mesh::REASON_STOPPING,
            );
        }
    }
}

/// A member's state changes ([`Mesh::watch`]); [`changed`](Self::changed) blocks.
#[derive(Debug)]
pub struct MemberWatch(tandem_runtime::mesh::MemberWatch);

impl MemberWatch {
    /// The member's state now (`None`: not a member).
    pub fn current(&self) -> Option<MemberState> {
        self.0.current()
    }

    /// Blocks until the next state change and returns it, in order; `None` once the node has
    /// stopped.
    pub fn changed(&mut self) -> Option<MemberState> {
        block_on(self.0.changed())
    }

    /// [`changed`](Self::changed) for at most `timeout`: `None` when nothing changed meanwhile
    /// or the node stopped.
    pub fn changed_within(&mut self, timeout: Duration) -> Option<MemberState> {
        let at = std::time::Instant::now() + timeout;
        block_on(futures_lite::future::or(self.0.changed(), async {
            sleep_until(at).await;
            None
        }))
    }
}

/// Dials on a short-lived thread per attempt (at most one attempt per member at a time): a
/// blocking [`Client::connect`] bounded by `client.connect_timeout`.
fn dialer(client: ClientConfig, handlers: Handlers) -> DialFn {
    Box::new(move |addr: Address, done: DialDone| {
        let (config, handlers) = (client.clone(), handlers.clone());
        // If the thread cannot start, `done` is dropped with the closure: the dial fails.
        let spawned = std::thread::Builder::new().name("tandem-mesh-dial".into()).spawn(move || {
            done.finish(Client::connect(&addr.to_string(), config, handlers).map(|c| c.peer().0.clone()));
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a mesh dial thread");
        }
    })
}
