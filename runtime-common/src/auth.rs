//! Authentication (SPEC.md §5.6): what a client presents in its HELLO (`auth`), the
//! authenticator a server installs, and the identity it yields, which handlers see and the name
//! registry keys on. (Layer 0: imports `state`.)

use core::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use tandem_core::Status;

use crate::state::PeerCredentials;

/// The identity an [`Authenticator`] gave a peer: what handlers see
/// ([`Ctx::identity`](crate::Ctx::identity), [`Peer::identity`](crate::Peer::identity)) and what
/// the server's name registry keys on: a live peer is replaced by a newcomer under its name only
/// when the newcomer has the same identity, and a session resumes only into the identity that
/// opened it. Without an authenticator no peer has one (`None`): every name is a claim.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerIdentity(Arc<str>);

impl PeerIdentity {
    /// An identity named `id` (a user, a service account, a certificate subject, …).
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        PeerIdentity(id.into())
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerIdentity({:?})", &*self.0)
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything known about a connecting peer when its HELLO arrives, for an [`Authenticator`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct AuthRequest<'a> {
    /// The name the peer announced (a claim; not unique, not verified).
    pub name: &'a str,
    /// The HELLO's `auth` bytes (empty if the client sent none).
    pub auth: &'a [u8],
    /// The peer's uid/gid/pid, from the kernel, on Unix sockets.
    pub credentials: Option<PeerCredentials>,
    /// The peer's address on TCP and UDP.
    pub remote_addr: Option<SocketAddr>,
    /// The HELLO asks to resume a session: the identity must be the session's (or the
    /// resumption is declined and a fresh session starts under this identity).
    pub resuming: bool,
    /// On `tls://` with client certificates (`TlsServerConfig::require_client_certs` or
    /// `accept_client_certs`): the chain the client presented, DER-encoded, its own
    /// certificate first. rustls has already verified it against the configured CA (chain,
    /// validity dates, key usage), so the authenticator only maps it to an identity: by its
    /// subject or a SAN (parse the DER with an X.509 parser such as `x509-parser`), or by a
    /// fingerprint of the DER. Empty when the client presented none, and on other transports.
    pub peer_certificates: &'a [Vec<u8>],
}

/// Why an [`Authenticator`] refused a peer: the status and message of the CLOSE the peer
/// receives (and nothing else: no handler runs, no state is kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRefusal {
    /// UNAUTHENTICATED (credentials missing or invalid) or PERMISSION_DENIED (valid, not
    /// allowed).
    pub status: Status,
    /// Shown in the client's error (at most the CLOSE message's 1,024 bytes are sent).
    pub message: String,
}

impl AuthRefusal {
    /// UNAUTHENTICATED: the credentials are missing or wrong.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        AuthRefusal { status: Status::UNAUTHENTICATED, message: message.into() }
    }

    /// PERMISSION_DENIED: the peer is who it says, and is not allowed in.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        AuthRefusal { status: Status::PERMISSION_DENIED, message: message.into() }
    }
}

/// Decides who may connect (`ServerConfig::authenticator`). Runs in the connection's driver
/// when the peer's HELLO arrives, before the server answers it, and again on a resuming HELLO:
/// keep it quick (a table lookup, a signature check), not a network round trip. Closures
/// `Fn(&AuthRequest<'_>) -> Result<PeerIdentity, AuthRefusal>` implement it.
pub trait Authenticator: Send + Sync + 'static {
    /// Accepts the peer as an identity, or refuses it.
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<PeerIdentity, AuthRefusal>;
}

impl<F> Authenticator for F
where
    F: Fn(&AuthRequest<'_>) -> Result<PeerIdentity, AuthRefusal> + Send + Sync + 'static,
{
    fn authenticate(&self, request: &AuthRequest<'_>) -> Result<PeerIdentity, AuthRefusal> {
        self(request)
    }
}

/// What a client sends as its HELLO's `auth` (`ClientConfig::auth`).
#[derive(Clone, Default)]
pub enum Credentials {
    /// Nothing (the default): the server's authenticator, if any, sees empty `auth`.
    #[default]
    None,
    /// These bytes (a token, a password), at most 1,024.
    Static(Vec<u8>),
    /// Bytes produced by a function, called once per [`Client::connect`](crate) (the
    /// resuming HELLOs of that connection carry the same bytes).
    Callback(Arc<dyn Fn() -> Vec<u8> + Send + Sync>),
}

impl Credentials {
    /// A static token.
    pub fn token(bytes: impl Into<Vec<u8>>) -> Self {
        Credentials::Static(bytes.into())
    }

    /// The bytes for a new connection's HELLO.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Credentials::None => Vec::new(),
            Credentials::Static(b) => b.clone(),
            Credentials::Callback(f) => f(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret itself.
        f.write_str(match self {
            Credentials::None => "Credentials::None",
            Credentials::Static(_) => "Credentials::Static(..)",
            Credentials::Callback(_) => "Credentials::Callback(..)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_authenticate_and_secrets_stay_out_of_debug() {
        let a: Arc<dyn Authenticator> = Arc::new(|r: &AuthRequest<'_>| {
            if r.auth == b"s3cret" {
                Ok(PeerIdentity::new(format!("user:{}", r.name)))
            } else {
                Err(AuthRefusal::unauthenticated("wrong token"))
            }
        });
        let req = |auth| AuthRequest {
            name: "n",
            auth,
            credentials: None,
            remote_addr: None,
            resuming: false,
            peer_certificates: &[],
        };
        assert_eq!(a.authenticate(&req(b"s3cret")).unwrap().as_str(), "user:n");
        assert_eq!(a.authenticate(&req(b"x")).unwrap_err().status, Status::UNAUTHENTICATED);
        let c = Credentials::token("s3cret");
        assert_eq!(c.bytes(), b"s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        let n = std::sync::atomic::AtomicU32::new(0);
        let n = Arc::new(n);
        let n2 = n.clone();
        let cb = Credentials::Callback(Arc::new(move || {
            n2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            b"t".to_vec()
        }));
        assert_eq!(cb.bytes(), b"t");
        assert_eq!(n.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
