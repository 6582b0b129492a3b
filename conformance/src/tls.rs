//! The runner over `tls://` (SPEC.md §3.9): its TLS settings ([`TlsSettings`]: the CA it
//! trusts, its optional client certificate, and, for `run --listen tls://…`, its server
//! certificate) and the blocking rustls streams the [`Wire`](crate::wire::Wire) reads and
//! writes frames through. TLS 1.3 only, ALPN `tandem/1`, the server name (SNI) from the
//! address's host, crypto from `ring` — as the runtimes of this repository.
//!
//! The runner is blocking, so it uses rustls' own blocking adapter ([`rustls::StreamOwned`])
//! over a `TcpStream`; the socket's read timeout bounds every read as over `tcp://`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, RootCertStore, ServerConnection, StreamOwned};
use tandem_core::addr::Address;

/// The application protocol (ALPN) of tandem over TLS (SPEC.md §3.9).
pub const ALPN: &[u8] = b"tandem/1";

/// The runner's TLS settings, as PEM text (`--tls-ca`, `--tls-cert`, `--tls-key`).
///
/// * Dialing `tls://` (`run --connect`): `ca` is required (the CA the implementation's server
///   certificate chains to; the system's roots are not used, a conformance run tests against a
///   known certificate); `cert` and `key`, if given, are the client certificate the runner
///   presents to an implementation that asks for one (mutual TLS).
/// * Listening on `tls://` (`run --listen`): `cert` and `key` are required (the runner's
///   server certificate, for the host the implementation dials); `ca`, if given, is the CA of
///   client certificates the runner then accepts (optional for the implementation).
#[derive(Clone, Default)]
pub struct TlsSettings {
    /// CA certificates, PEM.
    pub ca: Option<Vec<u8>>,
    /// The runner's certificate chain (its certificate first), PEM.
    pub cert: Option<Vec<u8>>,
    /// The private key of `cert`, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<Vec<u8>>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("ca", &self.ca.is_some())
            .field("cert", &self.cert.is_some())
            .field("key", &self.key.is_some())
            .finish()
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// rustls' `ring` provider (the runtimes' choice; see runtime-common/Cargo.toml).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{what}: not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(bad(format!("{what}: no CERTIFICATE block in the PEM")));
    }
    Ok(certs)
}

fn key(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| bad(format!("--tls-key: no usable PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1): {e}")))
}

fn roots(pem: &[u8]) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for c in certs(pem, "--tls-ca")? {
        roots.add(c).map_err(|e| bad(format!("--tls-ca: not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

impl TlsSettings {
    /// Reads the PEM files named by `--tls-ca`, `--tls-cert` and `--tls-key`.
    pub fn from_files(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> io::Result<TlsSettings> {
        let read = |p: Option<&str>, what: &str| -> io::Result<Option<Vec<u8>>> {
            p.map(|p| std::fs::read(p).map_err(|e| io::Error::new(e.kind(), format!("{what} {p}: {e}"))))
                .transpose()
        };
        Ok(TlsSettings {
            ca: read(ca, "--tls-ca")?,
            cert: read(cert, "--tls-cert")?,
            key: read(key, "--tls-key")?,
        })
    }

    /// Whether any setting is given.
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }

    fn cert_and_key(&self) -> io::Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
        match (&self.cert, &self.key) {
            (None, None) => Ok(None),
            (Some(c), Some(k)) => Ok(Some((certs(c, "--tls-cert")?, key(k)?))),
            _ => Err(bad("--tls-cert and --tls-key go together: give both or neither")),
        }
    }

    /// The configuration for dialing `addr` (a `tls://` address).
    pub fn client(&self, addr: &Address) -> io::Result<TlsClient> {
        let Some(ca) = &self.ca else {
            return Err(bad(format!(
                "{addr}: the runner needs --tls-ca FILE (the CA certificate, PEM, that the implementation's server certificate chains to)"
            )));
        };
        let host = addr.host().unwrap_or_default().to_string();
        let name = ServerName::try_from(host)
            .map_err(|e| bad(format!("{addr}: the host is not a valid TLS server name: {e}")))?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots(ca)?);
        let mut config = match self.cert_and_key()? {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(format!("--tls-cert/--tls-key: {e}")))?,
        };
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(TlsClient { config: Arc::new(config), name })
    }

    /// The configuration for accepting on a `tls://` address.
    pub fn server(&self) -> io::Result<Arc<rustls::ServerConfig>> {
        let Some((chain, key)) = self.cert_and_key()? else {
            return Err(bad(
                "listening on tls:// needs the runner's server certificate: --tls-cert FILE --tls-key FILE (PEM)",
            ));
        };
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| bad(e.to_string()))?;
        let builder = match &self.ca {
            None => builder.with_no_client_auth(),
            Some(ca) => builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| bad(format!("--tls-ca: {e}")))?,
            ),
        };
        let mut config =
            builder.with_single_cert(chain, key).map_err(|e| bad(format!("--tls-cert/--tls-key: {e}")))?;
        config.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Arc::new(config))
    }
}

/// The runner's client configuration for one `tls://` server.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient").field("server_name", &self.name).finish()
    }
}

/// How long the TLS handshake of one connection may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS connection of the runner, either side.
pub enum TlsStream {
    /// The runner dialed.
    Client(StreamOwned<ClientConnection, TcpStream>),
    /// The runner accepted.
    Server(StreamOwned<ServerConnection, TcpStream>),
}

fn handshake<C, S>(conn: &mut C, sock: &mut TcpStream) -> io::Result<()>
where
    C: std::ops::DerefMut<Target = rustls::ConnectionCommon<S>>,
    S: rustls::SideData,
{
    let end = Instant::now() + HANDSHAKE_TIMEOUT;
    while conn.is_handshaking() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake did not finish in 10 s"));
        }
        sock.set_read_timeout(Some(left))?;
        match conn.complete_io(sock) {
            Ok((0, 0)) if conn.is_handshaking() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the peer closed the connection during the TLS handshake",
                ))
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => {
                // Send the alert rustls queued (if any), so that the peer learns why.
                let _ = conn.write_tls(sock);
                return Err(io::Error::new(e.kind(), format!("TLS handshake failed: {e}")));
            }
        }
    }
    // The client's Finished may still wait in rustls' buffer.
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(())
}

impl TlsStream {
    /// Dials over `sock`: the TLS handshake, within [`HANDSHAKE_TIMEOUT`].
    pub fn connect(client: &TlsClient, mut sock: TcpStream) -> io::Result<TlsStream> {
        let mut conn = ClientConnection::new(client.config.clone(), client.name.clone())
            .map_err(|e| bad(e.to_string()))?;
        handshake(&mut conn, &mut sock)?;
        Ok(TlsStream::Client(StreamOwned::new(conn, sock)))
    }

    /// Accepts on `sock`: the TLS handshake, within [`HANDSHAKE_TIMEOUT`].
    pub fn accept(config: &Arc<rustls::ServerConfig>, mut sock: TcpStream) -> io::Result<TlsStream> {
        let mut conn = ServerConnection::new(config.clone()).map_err(|e| bad(e.to_string()))?;
        handshake(&mut conn, &mut sock)?;
        Ok(TlsStream::Server(StreamOwned::new(conn, sock)))
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            TlsStream::Client(s) => &s.sock,
            TlsStream::Server(s) => &s.sock,
        }
    }

    /// Sends close_notify (TLS's end of the sending direction), then ends the TCP sending
    /// direction. The runner can still read: TLS 1.3 closes each direction on its own.
    pub fn shutdown_write(&mut self) -> io::Result<()> {
        match self {
            TlsStream::Client(s) => {
                s.conn.send_close_notify();
                s.flush()?;
            }
            TlsStream::Server(s) => {
                s.conn.send_close_notify();
                s.flush()?;
            }
        }
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            TlsStream::Client(s) => s.read(buf),
            TlsStream::Server(s) => s.read(buf),
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            TlsStream::Client(s) => s.write(buf),
            TlsStream::Server(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            TlsStream::Client(s) => s.flush(),
            TlsStream::Server(s) => s.flush(),
        }
    }
}
