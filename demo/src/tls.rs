//! `tls://` in the demo: mutual TLS with certificates made when the demo starts (rcgen, through
//! `tandem_testkit::pki`; no key material is stored anywhere), and an authenticator that gives
//! each peer the identity its client certificate names and holds it to the name it claims in
//! HELLO, so that no peer can take another's name (SPEC.md §3.8, §3.9).
//!
//! The same few lines configure either runtime; a deployment would load its PEM files with
//! `TlsServerConfig::from_pem_files` and `TlsClientConfig::trust_ca_pem_file`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use tandem_testkit::pki::{Ca, Leaf};

/// The demo's certificate authority, its server certificate, and one client certificate per
/// name (issued on first use).
pub struct DemoPki {
    ca: Ca,
    server: Leaf,
    clients: Mutex<HashMap<String, Leaf>>,
}

/// The process's PKI, made on first use.
pub fn pki() -> &'static DemoPki {
    static PKI: OnceLock<DemoPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::new("tandem demo CA");
        let server = ca.server(&["localhost", "127.0.0.1"]);
        DemoPki { ca, server, clients: Mutex::new(HashMap::new()) }
    })
}

impl DemoPki {
    /// The CA certificate (PEM) both ends trust.
    pub fn ca_pem(&self) -> &[u8] {
        self.ca.pem.as_bytes()
    }

    /// The server's certificate chain and key (PEM).
    pub fn server(&self) -> (&[u8], &[u8]) {
        (self.server.cert_pem.as_bytes(), self.server.key_pem.as_bytes())
    }

    /// The client certificate issued to `name` (its subject's common name).
    pub fn client(&self, name: &str) -> Leaf {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.entry(name.to_string()).or_insert_with(|| self.ca.client(name)).clone()
    }

    /// The name a certificate (DER) was issued to, if this PKI issued it.
    ///
    /// A real authenticator parses the verified certificate's subject (rustls already checked
    /// the chain); the demo knows every certificate it issued.
    pub fn owner(&self, der: &[u8]) -> Option<String> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.iter().find(|(_, leaf)| leaf.der == der).map(|(name, _)| name.clone())
    }
}

/// The identity the authenticator gives the holder of `name`'s certificate.
pub fn identity_of(name: &str) -> String {
    format!("cn:{name}")
}

/// The authenticator's decision: the certificate must be one the demo issued, to the name the
/// peer claims.
pub fn decide(claimed: &str, certificates: &[Vec<u8>]) -> Result<String, (bool, String)> {
    let Some(cert) = certificates.first() else {
        return Err((true, "a client certificate is required on tls://".into()));
    };
    match pki().owner(cert) {
        None => Err((false, "this client certificate was not issued by the demo CA".into())),
        Some(owner) if owner != claimed => {
            Err((false, format!("the certificate belongs to {owner:?}; it cannot connect as {claimed:?}")))
        }
        Some(owner) => Ok(identity_of(&owner)),
    }
}

/// Sets up a server configuration of either runtime for `tls://`: the demo's certificate,
/// client certificates required, and [`decide`] as the authenticator.
#[macro_export]
macro_rules! secure_server {
    ($rt:ident, $config:expr) => {{
        let pki = $crate::tls::pki();
        let (cert, key) = pki.server();
        let tls = $rt::TlsServerConfig::from_pem(cert, key)
            .and_then(|t| t.require_client_certs(pki.ca_pem()))
            .map_err(|e| e.to_string())?;
        $config.tls = Some(tls);
        $config.authenticator = Some(::std::sync::Arc::new(|r: &$rt::AuthRequest<'_>| {
            match $crate::tls::decide(r.name, r.peer_certificates) {
                Ok(id) => Ok($rt::PeerIdentity::new(id)),
                Err((true, why)) => Err($rt::AuthRefusal::unauthenticated(why)),
                Err((false, why)) => Err($rt::AuthRefusal::permission_denied(why)),
            }
        }));
    }};
}

/// Sets up a client configuration of either runtime for `tls://`: trust the demo's CA (and
/// nothing else) and present the certificate issued to `$cert_name`.
#[macro_export]
macro_rules! secure_client {
    ($rt:ident, $config:expr, $cert_name:expr) => {{
        let pki = $crate::tls::pki();
        let leaf = pki.client($cert_name);
        $config.tls = $rt::TlsClientConfig::new()
            .trust_ca_pem(pki.ca_pem())
            .map(|t| t.without_system_roots())
            .and_then(|t| t.client_cert_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()))
            .map_err(|e| e.to_string())?;
    }};
}
