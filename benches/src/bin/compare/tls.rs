//! Certificates for the TLS rows: a CA and a server certificate for `localhost` and `127.0.0.1`,
//! made once per process at start-up (rcgen, through `tandem_testkit::pki`; no key material
//! is stored anywhere).

use std::sync::OnceLock;

/// The PEM texts every TLS row uses.
pub struct BenchPki {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

/// This process's certificates (made on first use).
pub fn pki() -> &'static BenchPki {
    static PKI: OnceLock<BenchPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = tandem_testkit::pki::Ca::new("tandem compare CA");
        let leaf = ca.server(&["localhost", "127.0.0.1"]);
        BenchPki { ca_pem: ca.pem.clone(), cert_pem: leaf.cert_pem, key_pem: leaf.key_pem }
    })
}
