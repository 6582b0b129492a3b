//! Certificates made at test time for the TLS tests (no key material lives in the repository):
//! a CA, server certificates for host names (valid or expired), client certificates with a
//! common name. All keys are ECDSA P-256, generated fresh.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
    /// Its certificate, PEM (what a peer trusts).
    pub pem: String,
}

/// A certificate issued by a [`Ca`] and its key.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER (what an authenticator sees).
    pub der: Vec<u8>,
}

impl Ca {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("generate a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        let pem = cert.pem();
        Ca { cert, key, pem }
    }

    fn issue(&self, mut params: CertificateParams, cn: &str) -> Leaf {
        let key = KeyPair::generate().expect("generate a key");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign the certificate");
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }

    /// A server certificate for `hosts` (DNS names or IP addresses), valid now.
    pub fn server(&self, hosts: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .expect("server parameters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, hosts.first().copied().unwrap_or("server"))
    }

    /// A server certificate for `hosts` that expired in 2021.
    pub fn expired_server(&self, hosts: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
            .expect("server parameters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.issue(params, hosts.first().copied().unwrap_or("server"))
    }

    /// A client certificate whose subject's common name is `cn`.
    pub fn client(&self, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client parameters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, cn)
    }
}

/// An authenticator for the TLS tests: maps a verified client certificate to an identity by its
/// DER (a real authenticator parses the subject), refuses a peer without one (UNAUTHENTICATED)
/// or with an unknown one (PERMISSION_DENIED), and records what it saw in `seen`.
pub fn by_certificate(
    known: Vec<(Vec<u8>, &'static str)>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> std::sync::Arc<dyn tandem_runtime::Authenticator> {
    use tandem_runtime::{AuthRefusal, AuthRequest, PeerIdentity};
    std::sync::Arc::new(move |r: &AuthRequest<'_>| {
        seen.lock().unwrap().push(format!(
            "certs={} auth={} resuming={}",
            r.peer_certificates.len(),
            String::from_utf8_lossy(r.auth),
            r.resuming
        ));
        let Some(cert) = r.peer_certificates.first() else {
            return Err(AuthRefusal::unauthenticated("a client certificate is required"));
        };
        match known.iter().find(|(der, _)| der == cert) {
            Some((_, who)) => Ok(PeerIdentity::new(*who)),
            None => Err(AuthRefusal::permission_denied("unknown certificate")),
        }
    })
}
