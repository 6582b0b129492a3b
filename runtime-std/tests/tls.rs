//! TLS on TCP (`tls://`, SPEC.md §3.9) with certificates made at test time: a valid chain, the
//! failures a client must be told about (unknown CA, expired, wrong host name, client
//! certificate required and missing, plaintext against TLS both ways), mutual TLS whose client
//! certificate reaches the authenticator and so the handlers, and a tandem session resumed on a
//! new TLS connection; PEM files loaded from disk (a missing file named in the error); a dialer
//! offering only another ALPN name refused. The blocking twin of tandem-smol's `tests/tls.rs`
//! (the last two exercise code the runtimes share, so they live here only).

mod common;
use std::sync::Arc;

use common::{bounded, wait_until, T};
use tandem_std::tandem_core::typed::Unary;
use tandem_std::{
    Client, ClientConfig, Credentials, Error, Handlers, LinkState, Server, ServerConfig, TlsClientConfig,
    TlsServerConfig,
};
use tandem_testkit::pki::{by_certificate, Ca, Leaf};
use tandem_testkit::proxy::TcpProxy;

/// Answers the caller's identity as the server's authenticator gave it.
const WHOAMI: Unary<(), Option<String>> = Unary::new(1, 1);

fn handlers() -> Handlers {
    Handlers::new().unary(&WHOAMI, |ctx, ()| Ok(ctx.identity().map(|i| i.to_string())))
}

fn server(tls: TlsServerConfig, authenticator: Option<Arc<dyn tandem_std::Authenticator>>) -> Server {
    let mut config = ServerConfig::new("server");
    config.tls = Some(tls);
    config.authenticator = authenticator;
    Server::bind("tls://127.0.0.1:0", config, handlers()).unwrap()
}

fn port(server: &Server) -> u16 {
    server.local_addr().to_string().rsplit(':').next().unwrap().parse().unwrap()
}

fn client_config(trust: &Ca) -> ClientConfig {
    let mut c = ClientConfig::new("client");
    c.tls = TlsClientConfig::new().trust_ca_pem(trust.pem.as_bytes()).unwrap().without_system_roots();
    c
}

fn server_tls(leaf: &Leaf) -> TlsServerConfig {
    TlsServerConfig::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap()
}

fn connect_err(addr: &str, config: ClientConfig) -> Error {
    Client::connect(addr, config, Handlers::new()).expect_err("the connection must fail")
}

#[test]
fn a_valid_chain_connects_and_calls() {
    bounded(20, || {
        let ca = Ca::new("test CA");
        let server = server(server_tls(&ca.server(&["localhost"])), None);
        assert!(server.local_addr().to_string().starts_with("tls://127.0.0.1:"));
        let addr = format!("tls://localhost:{}", port(&server));
        let client = Client::connect(&addr, client_config(&ca), Handlers::new()).unwrap();
        assert_eq!(client.call(&WHOAMI, &(), T), Ok(None));
        // A second client: both served.
        let other = Client::connect(&addr, client_config(&ca), Handlers::new()).unwrap();
        assert_eq!(other.call(&WHOAMI, &(), T), Ok(None));
        server.shutdown(T);
    });
}

#[test]
fn certificate_failures_say_what_is_wrong() {
    bounded(30, || {
        let ca = Ca::new("test CA");
        let stranger = Ca::new("another CA");
        // Unknown CA.
        let s = server(server_tls(&stranger.server(&["localhost"])), None);
        let e = connect_err(&format!("tls://localhost:{}", port(&s)), client_config(&ca));
        let m = e.to_string();
        assert!(matches!(e, Error::Tls { .. }), "{e:?}");
        assert!(m.contains("TLS handshake with tls://localhost:") && m.contains("UnknownIssuer"), "{m}");
        // Expired.
        let s = server(server_tls(&ca.expired_server(&["localhost"])), None);
        let m = connect_err(&format!("tls://localhost:{}", port(&s)), client_config(&ca)).to_string();
        assert!(m.contains("expired"), "{m}");
        // Wrong host name: the certificate is for another host.
        let s = server(server_tls(&ca.server(&["db.example"])), None);
        let m = connect_err(&format!("tls://localhost:{}", port(&s)), client_config(&ca)).to_string();
        assert!(m.contains("not valid for name") && m.contains("localhost"), "{m}");
        // The server's side kept nothing of the failed attempts.
        wait_until(|| s.stats().connections == 0);
    });
}

#[test]
fn a_required_client_certificate_that_is_missing_fails_the_handshake() {
    bounded(20, || {
        let ca = Ca::new("test CA");
        let tls = server_tls(&ca.server(&["localhost"])).require_client_certs(ca.pem.as_bytes()).unwrap();
        let s = server(tls, None);
        let addr = format!("tls://localhost:{}", port(&s));
        let e = connect_err(&addr, client_config(&ca));
        let m = e.to_string();
        assert!(matches!(e, Error::Tls { .. }), "{e:?}");
        assert!(m.contains("CertificateRequired") && m.contains("client_cert_pem"), "{m}");
        // A certificate from a CA the server does not trust is refused as well.
        let rogue = Ca::new("rogue CA").client("alice");
        let mut c = client_config(&ca);
        c.tls = c.tls.client_cert_pem(rogue.cert_pem.as_bytes(), rogue.key_pem.as_bytes()).unwrap();
        let m = connect_err(&addr, c).to_string();
        assert!(m.contains("TLS handshake") && m.contains("did not accept this client's certificate"), "{m}");
    });
}

#[test]
fn the_client_certificate_reaches_the_authenticator_and_the_handlers() {
    bounded(20, || {
        let ca = Ca::new("test CA");
        let (alice, bob) = (ca.client("alice"), ca.client("bob"));
        let seen = Arc::default();
        let auth = by_certificate(vec![(alice.der.clone(), "cn:alice")], Arc::clone(&seen));
        let tls = server_tls(&ca.server(&["localhost"])).require_client_certs(ca.pem.as_bytes()).unwrap();
        let s = server(tls, Some(auth));
        let addr = format!("tls://localhost:{}", port(&s));
        let mut c = client_config(&ca);
        c.tls = c.tls.client_cert_pem(alice.cert_pem.as_bytes(), alice.key_pem.as_bytes()).unwrap();
        c.auth = Credentials::token("also-a-token");
        let client = Client::connect(&addr, c, Handlers::new()).unwrap();
        assert_eq!(client.call(&WHOAMI, &(), T), Ok(Some("cn:alice".to_string())));
        assert_eq!(seen.lock().unwrap().as_slice(), ["certs=1 auth=also-a-token resuming=false"]);
        // Bob's certificate is valid (same CA) but the authenticator does not know him.
        let mut c = client_config(&ca);
        c.tls = c.tls.client_cert_pem(bob.cert_pem.as_bytes(), bob.key_pem.as_bytes()).unwrap();
        let e = connect_err(&addr, c);
        assert!(matches!(&e, Error::Refused { message, .. } if message == "unknown certificate"), "{e:?}");
        s.shutdown(T);
    });
}

#[test]
fn plaintext_and_tls_do_not_mix_and_say_so() {
    bounded(20, || {
        let ca = Ca::new("test CA");
        // A plaintext client at a TLS server.
        let s = server(server_tls(&ca.server(&["localhost"])), None);
        let e = connect_err(&format!("tcp://127.0.0.1:{}", port(&s)), ClientConfig::new("c"));
        let m = e.to_string();
        assert!(matches!(e, Error::PeerSpeaksTls { .. }), "{e:?}");
        assert!(m.contains("speaks TLS") && m.contains("tls://"), "{m}");
        // A TLS client at a plaintext server.
        let plain = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("plain"), handlers()).unwrap();
        let e = connect_err(&format!("tls://localhost:{}", port(&plain)), client_config(&ca));
        let m = e.to_string();
        assert!(matches!(e, Error::Tls { .. }), "{e:?}");
        assert!(m.contains("does not speak TLS"), "{m}");
    });
}

#[test]
fn tls_settings_that_cannot_work_are_refused_up_front() {
    let ca = Ca::new("test CA");
    let leaf = ca.server(&["localhost"]);
    let e =
        Server::bind("tls://127.0.0.1:0", ServerConfig::new("s"), Handlers::new()).expect_err("must fail");
    assert!(e.to_string().contains("ServerConfig::tls"), "{e}");
    let mut config = ServerConfig::new("s");
    config.tls = Some(server_tls(&leaf));
    let e = Server::bind("tcp://127.0.0.1:0", config, Handlers::new()).expect_err("must fail");
    assert!(e.to_string().contains("not a tls:// address"), "{e}");
    let e = TlsServerConfig::from_pem(b"not pem", leaf.key_pem.as_bytes()).expect_err("must fail");
    assert!(e.to_string().contains("no CERTIFICATE"), "{e}");
    let other = ca.server(&["localhost"]);
    let e =
        TlsServerConfig::from_pem(leaf.cert_pem.as_bytes(), other.key_pem.as_bytes()).expect_err("must fail");
    assert!(e.to_string().contains("server certificate and key"), "{e}");
    let e = TlsClientConfig::new()
        .without_system_roots()
        .connector(&"tls://h:1".parse().unwrap())
        .expect_err("must fail");
    assert!(e.to_string().contains("trust_ca_pem"), "{e}");
}

#[test]
fn a_session_resumes_on_a_new_tls_connection() {
    bounded(30, || {
        let ca = Ca::new("test CA");
        let alice = ca.client("alice");
        let seen = Arc::default();
        let auth = by_certificate(vec![(alice.der.clone(), "cn:alice")], Arc::clone(&seen));
        let tls = server_tls(&ca.server(&["localhost"])).require_client_certs(ca.pem.as_bytes()).unwrap();
        let s = server(tls, Some(auth));
        let proxy = TcpProxy::start(format!("127.0.0.1:{}", port(&s)).parse().unwrap());
        let mut c = client_config(&ca);
        c.tls = c.tls.client_cert_pem(alice.cert_pem.as_bytes(), alice.key_pem.as_bytes()).unwrap();
        let client =
            Client::connect(&format!("tls://localhost:{}", proxy.addr().port()), c, Handlers::new()).unwrap();
        assert_eq!(client.call(&WHOAMI, &(), T), Ok(Some("cn:alice".to_string())));
        proxy.cut();
        wait_until(|| matches!(client.state(), LinkState::Connected { resumed: true }));
        // The same session, on a new TLS connection, authenticated again by its certificate.
        assert_eq!(client.call(&WHOAMI, &(), T), Ok(Some("cn:alice".to_string())));
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            ["certs=1 auth= resuming=false", "certs=1 auth= resuming=true"]
        );
        assert_eq!(s.stats().connections, 1);
        s.shutdown(T);
    });
}

#[test]
fn a_silent_or_garbage_sending_tls_client_holds_nothing() {
    bounded(20, || {
        use std::io::{Read, Write};
        let ca = Ca::new("test CA");
        let mut config = ServerConfig::new("server");
        config.tls = Some(server_tls(&ca.server(&["localhost"])));
        config.connection.handshake_timeout = std::time::Duration::from_millis(300);
        let s = Server::bind("tls://127.0.0.1:0", config, handlers()).unwrap();
        let at = format!("127.0.0.1:{}", port(&s));
        // Silent: closed by the handshake timeout, which bounds TLS's handshake too.
        let mut silent = std::net::TcpStream::connect(&at).unwrap();
        // Garbage that is not TLS: refused at once, with an alert.
        let mut garbage = std::net::TcpStream::connect(&at).unwrap();
        garbage.write_all(&[0x16, 0x03, 0x03, 0xff, 0xff, 0, 0, 0]).unwrap();
        garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        silent.set_read_timeout(Some(T)).unwrap();
        garbage.set_read_timeout(Some(T)).unwrap();
        // The silent client sees its connection end, with at most a TLS alert (never the tandem
        // CLOSE in clear: TLS holds it until a handshake that never comes).
        let mut heard = Vec::new();
        match silent.read_to_end(&mut heard) {
            Ok(_) => assert!(heard.is_empty() || heard[0] == 0x15, "only an alert: {heard:?}"),
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::WouldBlock, "not disconnected"),
        }
        let mut got = Vec::new();
        let _ = garbage.read_to_end(&mut got);
        assert_eq!(got.first(), Some(&0x15), "a TLS alert record: {got:?}");
        wait_until(|| s.stats().connections == 0);
    });
}

#[test]
fn certificates_and_keys_load_from_pem_files_and_a_missing_file_is_named() {
    bounded(20, || {
        let ca = Ca::new("file CA");
        let (leaf, alice) = (ca.server(&["localhost"]), ca.client("alice"));
        let dir = std::env::temp_dir().join(format!("tandem-tls-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let (cert, key, ca_file) = (
            write("server.pem", &leaf.cert_pem),
            write("server.key", &leaf.key_pem),
            write("ca.pem", &ca.pem),
        );
        let (ccert, ckey) = (write("alice.pem", &alice.cert_pem), write("alice.key", &alice.key_pem));
        let tls = TlsServerConfig::from_pem_files(&cert, &key)
            .unwrap()
            .require_client_certs(ca.pem.as_bytes())
            .unwrap();
        let server =
            server(tls, Some(by_certificate(vec![(alice.der.clone(), "cn:alice")], Default::default())));
        let mut config = ClientConfig::new("alice");
        config.tls = TlsClientConfig::new()
            .trust_ca_pem_file(&ca_file)
            .unwrap()
            .without_system_roots()
            .client_cert_pem_files(&ccert, &ckey)
            .unwrap();
        let client =
            Client::connect(&format!("tls://localhost:{}", port(&server)), config, Handlers::new()).unwrap();
        assert_eq!(client.call(&WHOAMI, &(), T), Ok(Some("cn:alice".into())));
        let missing = dir.join("missing.pem");
        let e = TlsServerConfig::from_pem_files(&missing, &key).expect_err("must fail");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = TlsClientConfig::new().trust_ca_pem_file(&missing).expect_err("must fail");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = TlsClientConfig::new().client_cert_pem_files(&ccert, &missing).expect_err("must fail");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn a_dialer_offering_another_application_protocol_is_refused() {
    use std::io::{Read, Write};
    bounded(20, || {
        let ca = Ca::new("alpn CA");
        let server = server(server_tls(&ca.server(&["localhost"])), None);
        // A plain rustls client that offers only `h2` (SPEC.md §3.9: the acceptor MUST refuse it
        // with `no_application_protocol`), then one that offers `tandem/1` among others.
        let dial = |alpn: Vec<Vec<u8>>| -> std::io::Result<Option<Vec<u8>>> {
            let mut roots = rustls::RootCertStore::empty();
            use rustls::pki_types::pem::PemObject;
            roots.add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap()).unwrap();
            let mut config = rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13])
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = alpn;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
            let sock = std::net::TcpStream::connect(("127.0.0.1", port(&server)))?;
            sock.set_read_timeout(Some(T))?;
            let mut tls = rustls::StreamOwned::new(conn, sock);
            tls.write_all(b"")?;
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock)?;
            }
            let mut byte = [0u8; 1];
            let _ = tls.read(&mut byte);
            Ok(tls.conn.alpn_protocol().map(<[u8]>::to_vec))
        };
        let e = dial(vec![b"h2".to_vec()]).expect_err("the server must refuse h2");
        assert!(e.to_string().contains("NoApplicationProtocol"), "{e}");
        let chosen = dial(vec![b"h2".to_vec(), b"tandem/1".to_vec()]).unwrap();
        assert_eq!(chosen.as_deref(), Some(&b"tandem/1"[..]));
    });
}
