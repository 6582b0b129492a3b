//! TLS on TCP (`tls://host:port`, SPEC.md §3.9), written once for both runtimes: the
//! configurations users give ([`TlsServerConfig`], [`TlsClientConfig`]), and [`TlsSession`], a
//! sans-IO rustls connection that the [`Pump`](crate::pump::Pump) puts between the socket's
//! non-blocking read and write closures and the core. TLS 1.3 only, ALPN `tandem/1`, the
//! server name (SNI) from the address's host; crypto from `ring`. (Layer 1: imports `error`.)
//!
//! The session never blocks and owns no socket: [`TlsSession::read`] reads TLS records from
//! the socket closure, decrypts them and hands out plaintext; [`TlsSession::write`] encrypts
//! plaintext and writes records (handshake messages and alerts included) until the socket
//! would block. rustls bounds its buffers (a record is at most 16 KiB; at most 64 KiB of
//! output waits), so a peer cannot grow them.

use core::fmt;
use core::task::Poll;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tandem_core::addr::Address;

use crate::error::Error;

/// The application protocol (ALPN) a tandem TLS connection negotiates.
pub const ALPN: &[u8] = b"tandem/1";
/// The application protocol (ALPN) under `wss://`: WebSocket runs over HTTP/1.1 (SPEC.md
/// §3.10), so that TLS-terminating proxies and other WebSocket peers interoperate.
pub const ALPN_WEBSOCKET: &[u8] = b"http/1.1";

/// Socket reads per [`TlsSession::read`] that yield no plaintext before it lets the driver
/// turn (a peer sending records without application data must not hold the thread).
const RAW_READS: usize = 16;

/// rustls' `ring` provider: TLS 1.3 suites (AES-GCM, ChaCha20-Poly1305), X25519 and NIST
/// curves. rustls 0.23.48 deprecated it because it has no post-quantum hybrid key exchange
/// (X25519MLKEM768 comes with aws-lc-rs); we keep it for the build reasons in Cargo.toml and
/// state the consequence in SPEC.md §3.9.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(what: impl fmt::Display) -> Error {
    Error::TlsConfig { reason: what.to_string() }
}

fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("{what}: not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(config_error(format!("{what}: no CERTIFICATE block found in the PEM")));
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        config_error(format!(
            "private key: no usable PRIVATE KEY block in the PEM (PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| config_error(format!("cannot read the {what} {}: {e}", path.display())))
}

fn root_store(certs: Vec<CertificateDer<'static>>, what: &str) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add(c).map_err(|e| config_error(format!("{what}: not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// A server's TLS settings (`ServerConfig::tls`, required by a `tls://` address): its
/// certificate chain and private key, and, for mutual TLS, the CA its clients' certificates
/// must chain to. The certificates a client presents reach the authenticator
/// ([`AuthRequest::peer_certificates`](crate::AuthRequest::peer_certificates)).
///
/// ```
/// # fn f(cert_pem: &[u8], key_pem: &[u8], clients_ca_pem: &[u8]) -> Result<(), tandem_runtime::Error> {
/// use tandem_runtime::tls::TlsServerConfig;
/// let tls = TlsServerConfig::from_pem(cert_pem, key_pem)?.require_client_certs(clients_ca_pem)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsServerConfig {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    /// Clients' CA, and whether a certificate is required.
    clients: Option<(Arc<RootCertStore>, bool)>,
    built: Arc<rustls::ServerConfig>,
    /// The same, negotiating ALPN `http/1.1` (`wss://`).
    websocket: Arc<rustls::ServerConfig>,
}

impl TlsServerConfig {
    /// From PEM text: `cert_chain` (the server's certificate first, then its intermediates)
    /// and `key` (PKCS#8, PKCS#1 or SEC1). Fails if either does not parse or the key does not
    /// match the certificate.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Self, Error> {
        let chain = certs_from_pem(cert_chain, "server certificate chain")?;
        let key = Arc::new(key_from_pem(key)?);
        Self::build(chain, key, None)
    }

    /// From PEM files (see [`from_pem`](Self::from_pem)).
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        let chain = read_file(cert_chain.as_ref(), "certificate chain")?;
        let key = read_file(key.as_ref(), "private key")?;
        Self::from_pem(&chain, &key)
    }

    /// Mutual TLS: every client must present a certificate chaining to a CA of `ca_pem`;
    /// a client without one fails the TLS handshake ("certificate required").
    pub fn require_client_certs(self, ca_pem: &[u8]) -> Result<Self, Error> {
        self.client_certs(ca_pem, true)
    }

    /// Mutual TLS where a certificate is optional: a client may present one (it must then
    /// chain to a CA of `ca_pem`) or none; the authenticator sees which.
    pub fn accept_client_certs(self, ca_pem: &[u8]) -> Result<Self, Error> {
        self.client_certs(ca_pem, false)
    }

    fn client_certs(self, ca_pem: &[u8], required: bool) -> Result<Self, Error> {
        let roots = root_store(certs_from_pem(ca_pem, "client CA")?, "client CA")?;
        Self::build(self.chain, self.key, Some((Arc::new(roots), required)))
    }

    fn build(
        chain: Vec<CertificateDer<'static>>,
        key: Arc<PrivateKeyDer<'static>>,
        clients: Option<(Arc<RootCertStore>, bool)>,
    ) -> Result<Self, Error> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error)?;
        let builder = match &clients {
            None => builder.with_no_client_auth(),
            Some((roots, required)) => {
                let v = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
                let v = if *required { v } else { v.allow_unauthenticated() };
                builder.with_client_cert_verifier(v.build().map_err(config_error)?)
            }
        };
        let mut config = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| config_error(format!("server certificate and key: {e}")))?;
        let mut websocket = config.clone();
        config.alpn_protocols = vec![ALPN.to_vec()];
        websocket.alpn_protocols = vec![ALPN_WEBSOCKET.to_vec()];
        Ok(TlsServerConfig { chain, key, clients, built: Arc::new(config), websocket: Arc::new(websocket) })
    }

    /// A new server-side session, for an accepted connection.
    pub fn session(&self) -> Result<TlsSession, Error> {
        let c = rustls::ServerConnection::new(self.built.clone()).map_err(config_error)?;
        Ok(TlsSession::new(c.into()))
    }

    /// A new server-side session for an accepted `wss://` connection (ALPN `http/1.1`).
    pub fn websocket_session(&self) -> Result<TlsSession, Error> {
        let c = rustls::ServerConnection::new(self.websocket.clone()).map_err(config_error)?;
        Ok(TlsSession::new(c.into()))
    }
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("TlsServerConfig")
            .field("chain", &self.chain.len())
            .field(
                "client_certs",
                &self.clients.as_ref().map(|(_, req)| if *req { "required" } else { "optional" }),
            )
            .finish_non_exhaustive()
    }
}

/// The server's TLS settings for `address`: `Some` for `tls://` and `wss://` (which need
/// `ServerConfig::tls`), `None` otherwise (where `ServerConfig::tls` must be unset, so that a
/// server meant to speak TLS never serves in clear by mistake).
pub fn server_tls(
    address: &Address,
    tls: Option<&TlsServerConfig>,
) -> Result<Option<TlsServerConfig>, Error> {
    let wants = matches!(address, Address::Tls(_) | Address::WebSocket { tls: true, .. });
    match (wants, tls) {
        (true, Some(t)) => Ok(Some(t.clone())),
        (true, None) => Err(config_error(format!(
            "{address} needs a certificate and key: set ServerConfig::tls (TlsServerConfig::from_pem_files)"
        ))),
        (false, Some(_)) => Err(config_error(format!(
            "ServerConfig::tls is set but {address} is not a tls:// address (nor wss://): listen on tls://HOST:PORT or wss://HOST:PORT/PATH (or unset ServerConfig::tls)"
        ))),
        (_, None) => Ok(None),
    }
}

/// Whom a client trusts and which certificate it presents (`ClientConfig::tls`, used by
/// `tls://` addresses). The default trusts the operating system's roots (the
/// distribution's CA bundle; `SSL_CERT_FILE` / `SSL_CERT_DIR` override it) and presents no
/// certificate.
///
/// ```
/// # fn f(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<(), tandem_runtime::Error> {
/// use tandem_runtime::tls::TlsClientConfig;
/// // A private CA only, and a client certificate for mutual TLS:
/// let tls = TlsClientConfig::new().trust_ca_pem(ca_pem)?.without_system_roots().client_cert_pem(cert_pem, key_pem)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsClientConfig {
    system_roots: bool,
    extra: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    /// Built on first use and shared by the clones, so that their connections share rustls'
    /// TLS session cache (a reconnection resumes the TLS session too).
    built: Arc<OnceLock<Result<Arc<rustls::ClientConfig>, String>>>,
}

impl Default for TlsClientConfig {
    fn default() -> Self {
        TlsClientConfig { system_roots: true, extra: Vec::new(), client: None, built: Arc::default() }
    }
}

impl TlsClientConfig {
    /// The default: the system's roots, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also trusts the CA certificates of `ca_pem` (a private CA, a self-signed server).
    pub fn trust_ca_pem(mut self, ca_pem: &[u8]) -> Result<Self, Error> {
        let certs = certs_from_pem(ca_pem, "CA")?;
        root_store(certs.clone(), "CA")?;
        self.extra.extend(certs);
        self.built = Arc::default();
        Ok(self)
    }

    /// Also trusts the CA certificates of the PEM file at `path`.
    pub fn trust_ca_pem_file(self, path: impl AsRef<Path>) -> Result<Self, Error> {
        let pem = read_file(path.as_ref(), "CA file")?;
        self.trust_ca_pem(&pem)
    }

    /// Trusts only the CAs given with [`trust_ca_pem`](Self::trust_ca_pem), not the system's.
    pub fn without_system_roots(mut self) -> Self {
        self.system_roots = false;
        self.built = Arc::default();
        self
    }

    /// Presents this certificate chain (the client's certificate first) and key to a server
    /// that asks for one (mutual TLS).
    pub fn client_cert_pem(mut self, cert_chain: &[u8], key: &[u8]) -> Result<Self, Error> {
        let chain = certs_from_pem(cert_chain, "client certificate chain")?;
        let key = Arc::new(key_from_pem(key)?);
        self.client = Some((chain, key));
        self.built = Arc::default();
        self.rustls()?;
        Ok(self)
    }

    /// [`client_cert_pem`](Self::client_cert_pem) from PEM files.
    pub fn client_cert_pem_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let chain = read_file(cert_chain.as_ref(), "client certificate chain")?;
        let key = read_file(key.as_ref(), "client private key")?;
        self.client_cert_pem(&chain, &key)
    }

    fn rustls(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let built = self.built.get_or_init(|| self.build().map(Arc::new).map_err(|e| e.to_string()));
        built.clone().map_err(|reason| Error::TlsConfig { reason })
    }

    fn build(&self) -> Result<rustls::ClientConfig, Error> {
        let mut roots = RootCertStore::empty();
        let mut system_errors = String::new();
        if self.system_roots {
            let found = rustls_native_certs::load_native_certs();
            if let Some(e) = found.errors.first() {
                system_errors = format!(" ({e})");
            }
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        }
        for c in &self.extra {
            roots.add(c.clone()).map_err(|e| config_error(format!("CA: {e}")))?;
        }
        if roots.is_empty() {
            return Err(config_error(if self.system_roots {
                format!("no trusted CA: the system has no root certificates{system_errors}; give one with TlsClientConfig::trust_ca_pem")
            } else {
                "no trusted CA: without_system_roots() needs trust_ca_pem()".to_string()
            }));
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(config_error)?
            .with_root_certificates(roots);
        let mut config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| config_error(format!("client certificate and key: {e}")))?,
        };
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(config)
    }

    /// What a client dialing `address` needs: `Some` for `tls://` and `wss://` (the configuration and the
    /// server name to check), `None` for other addresses.
    pub fn connector(&self, address: &Address) -> Result<Option<TlsConnector>, Error> {
        let (Address::Tls(_) | Address::WebSocket { tls: true, .. }) = address else { return Ok(None) };
        let host = address.host().unwrap_or_default().to_string();
        let name = ServerName::try_from(host)
            .map_err(|e| config_error(format!("{address}: the host is not a valid TLS server name: {e}")))?;
        let mut config = self.rustls()?;
        if let Address::WebSocket { .. } = address {
            // WebSocket runs over HTTP/1.1. The clone shares the TLS session cache.
            let mut c = (*config).clone();
            c.alpn_protocols = vec![ALPN_WEBSOCKET.to_vec()];
            config = Arc::new(c);
        }
        Ok(Some(TlsConnector { config, name, address: address.to_string() }))
    }
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("system_roots", &self.system_roots)
            .field("extra_cas", &self.extra.len())
            .field("client_cert", &self.client.is_some())
            .finish()
    }
}

/// A client's TLS configuration for one server: makes the session of each connection (the
/// first and every reconnection).
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    address: String,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").field("address", &self.address).finish()
    }
}

impl TlsConnector {
    /// A new client-side session (its ClientHello is written on the pump's first write).
    pub fn session(&self) -> Result<TlsSession, Error> {
        let c =
            rustls::ClientConnection::new(self.config.clone(), self.name.clone()).map_err(config_error)?;
        Ok(TlsSession::new(c.into()))
    }
}

/// One connection's TLS state between its socket and the core (see the module
/// documentation). Moves with the socket when a session resumes on it.
pub struct TlsSession {
    conn: rustls::Connection,
    failure: Option<String>,
    /// The handshake's completion was reported ([`handshake_done`](Self::handshake_done)).
    reported: bool,
    /// The socket's input ended.
    eof: bool,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

/// The socket's read closure as an `io::Read` for rustls (`Pending` is `WouldBlock`).
struct RawRead<'a>(&'a mut dyn FnMut(&mut [u8]) -> Poll<io::Result<usize>>);

impl Read for RawRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match (self.0)(buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// The socket's write closure as an `io::Write` for rustls.
struct RawWrite<'a>(&'a mut dyn FnMut(&[u8]) -> Poll<io::Result<usize>>);

impl Write for RawWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match (self.0)(buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsSession {
    fn new(conn: rustls::Connection) -> Self {
        TlsSession { conn, failure: None, reported: false, eof: false }
    }

    /// Why the session failed (the TLS handshake, a certificate, an alert from the peer, a
    /// peer that does not speak TLS), once it has.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn fail(&mut self, reason: String) -> io::Error {
        io::Error::other(self.failure.get_or_insert(reason).clone())
    }

    /// Once, when the handshake has completed: the certificate chain the peer presented (DER,
    /// its own certificate first; empty if none).
    pub fn handshake_done(&mut self) -> Option<Vec<Vec<u8>>> {
        if self.reported || self.conn.is_handshaking() || self.failure.is_some() {
            return None;
        }
        self.reported = true;
        Some(self.conn.peer_certificates().unwrap_or_default().iter().map(|c| c.to_vec()).collect())
    }

    /// Reads plaintext into `out` (not empty), reading and decrypting what the socket (`raw`)
    /// has. `Ready(Ok(0))`: the input ended. `Pending`: `raw` would block. An error: the
    /// socket's, or the TLS failure ([`failure`](Self::failure)).
    pub fn read(
        &mut self,
        raw: &mut dyn FnMut(&mut [u8]) -> Poll<io::Result<usize>>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(f) = &self.failure {
            return Poll::Ready(Err(io::Error::other(f.clone())));
        }
        for _ in 0..RAW_READS {
            match self.conn.reader().read(out) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket ended without a close_notify: the end of the input all the same
                // (tandem's own CLOSE tells a clean end from a cut one).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(0)),
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.eof {
                return Poll::Ready(Ok(0));
            }
            match self.conn.read_tls(&mut RawRead(raw)) {
                Ok(0) => {
                    self.eof = true;
                    if self.conn.is_handshaking() {
                        let e = self.fail(
                            "the peer closed the connection during the TLS handshake (does it speak TLS on this port, and accept this client?)".into(),
                        );
                        return Poll::Ready(Err(e));
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) => return Poll::Ready(Err(e)),
            }
            if let Err(e) = self.conn.process_new_packets() {
                let reason = describe(
                    &e,
                    self.conn.is_handshaking(),
                    matches!(self.conn, rustls::Connection::Client(_)),
                );
                return Poll::Ready(Err(self.fail(reason)));
            }
        }
        // Records without plaintext: let the driver turn, then come back.
        Poll::Ready(Err(io::ErrorKind::Interrupted.into()))
    }

    /// Takes plaintext (`data`, not empty) to send, writing records to the socket (`raw`);
    /// returns how much was taken. `Pending`: nothing could be taken (the output is full and
    /// `raw` would block, or the handshake is not done).
    pub fn write(
        &mut self,
        raw: &mut dyn FnMut(&[u8]) -> Poll<io::Result<usize>>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(f) = &self.failure {
            return Poll::Ready(Err(io::Error::other(f.clone())));
        }
        if let Poll::Ready(Err(e)) = self.flush(raw) {
            return Poll::Ready(Err(e));
        }
        let n = match self.conn.writer().write(data) {
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if n == 0 {
            return Poll::Pending;
        }
        match self.flush(raw) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(n)),
        }
    }

    /// Writes the records waiting (handshake messages, alerts, encrypted data) until the
    /// socket would block. `Ready(Ok(wrote))`: nothing waits any more.
    pub fn flush(&mut self, raw: &mut dyn FnMut(&[u8]) -> Poll<io::Result<usize>>) -> Poll<io::Result<bool>> {
        let mut wrote = false;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut RawWrite(raw)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => wrote = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(wrote))
    }

    /// Queues a close_notify alert (the connection ends); the next flush sends it. Not after a
    /// TLS failure: rustls has queued the fatal alert that ends the session then (RFC 8446
    /// §6.1: close_notify is owed unless an error alert was sent).
    pub fn close(&mut self) {
        if self.failure.is_none() {
            self.conn.send_close_notify();
        }
    }
}

/// A TLS failure in words that say what to do.
fn describe(e: &rustls::Error, handshaking: bool, client: bool) -> String {
    use rustls::{AlertDescription as A, Error as E, InvalidMessage};
    let hint = match e {
        E::InvalidMessage(InvalidMessage::InvalidContentType) if handshaking => {
            "; the peer does not speak TLS (is it a plaintext tcp:// endpoint?)"
        }
        E::AlertReceived(A::CertificateRequired) if client => {
            "; the server requires a client certificate: set one with TlsClientConfig::client_cert_pem"
        }
        E::AlertReceived(
            A::BadCertificate | A::UnknownCA | A::CertificateExpired | A::CertificateUnknown,
        ) if client => "; the server did not accept this client's certificate",
        E::InvalidCertificate(_) if client => {
            "; the server's certificate is not trusted for this host name (see TlsClientConfig::trust_ca_pem)"
        }
        E::NoCertificatesPresented => "; the client presented no certificate and the server requires one",
        E::NoApplicationProtocol => "; the peer does not offer ALPN tandem/1",
        _ => "",
    };
    format!("{e}{hint}")
}
