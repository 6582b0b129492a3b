//! TLS between the two runtimes (SPEC.md §3.9): a tandem-std client with a tandem-smol server
//! and the reverse, over `tls://` with mutual TLS — the client's certificate reaches the other
//! runtime's authenticator and handlers — and calls in both directions; then the failure a
//! client of one runtime reports for the other's certificate (a wrong host name).

use std::sync::Arc;
use std::time::Duration;

use tandem_core::typed::Unary;
use tandem_testkit::pki::Ca;

/// Answers the caller's identity as the server's authenticator gave it.
const WHOAMI: Unary<(), Option<String>> = Unary::new(1, 1);
/// The client's answer when the server calls back.
const PING: Unary<u32, u32> = Unary::new(2, 1);
const T: Duration = Duration::from_secs(5);

struct Pki {
    ca: Ca,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
    client_der: Vec<u8>,
}

fn pki(hosts: &[&str]) -> Pki {
    let ca = Ca::new("cross-runtime CA");
    let (server, client) = (ca.server(hosts), ca.client("alice"));
    Pki {
        server_cert: server.cert_pem,
        server_key: server.key_pem,
        client_cert: client.cert_pem,
        client_key: client.key_pem,
        client_der: client.der,
        ca,
    }
}

macro_rules! server_parts {
    ($rt:ident, $p:expr) => {{
        let der = $p.client_der.clone();
        let mut config = $rt::ServerConfig::new("server");
        config.tls = Some(
            $rt::TlsServerConfig::from_pem($p.server_cert.as_bytes(), $p.server_key.as_bytes())
                .unwrap()
                .require_client_certs($p.ca.pem.as_bytes())
                .unwrap(),
        );
        config.authenticator =
            Some(Arc::new(move |r: &$rt::AuthRequest<'_>| match r.peer_certificates.first() {
                Some(c) if *c == der => Ok($rt::PeerIdentity::new("cn:alice")),
                _ => Err($rt::AuthRefusal::permission_denied("unknown certificate")),
            }));
        config
    }};
}

macro_rules! client_config {
    ($rt:ident, $p:expr) => {{
        let mut c = $rt::ClientConfig::new("client");
        c.tls = $rt::TlsClientConfig::new()
            .trust_ca_pem($p.ca.pem.as_bytes())
            .unwrap()
            .without_system_roots()
            .client_cert_pem($p.client_cert.as_bytes(), $p.client_key.as_bytes())
            .unwrap();
        c
    }};
}

fn port(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn std_client_smol_server_over_mutual_tls() {
    let p = pki(&["localhost"]);
    let handlers = tandem_smol::Handlers::new()
        .unary(&WHOAMI, |ctx, ()| async move { Ok(ctx.identity().map(|i| i.to_string())) });
    let server =
        tandem_smol::Server::bind("tls://127.0.0.1:0", server_parts!(tandem_smol, p), handlers).unwrap();
    let addr = format!("tls://localhost:{}", port(&server.local_addr().to_string()));
    let client_handlers = tandem_std::Handlers::new().unary(&PING, |_, n| Ok(n + 1));
    let client = tandem_std::Client::connect(&addr, client_config!(tandem_std, p), client_handlers).unwrap();
    assert_eq!(client.call(&WHOAMI, &(), T), Ok(Some("cn:alice".to_string())));
    smol::block_on(async {
        let peer = server.wait_for_peer("client", T).await.expect("the client is tracked");
        assert_eq!(peer.identity().map(|i| i.as_str().to_string()), Some("cn:alice".to_string()));
        assert_eq!(peer.call(&PING, &41, T).await, Ok(42));
    });
    // The smol server's certificate names "localhost" only: a std client dialing another name
    // is told so.
    let other = format!("tls://127.0.0.1:{}", port(&server.local_addr().to_string()));
    let e = tandem_std::Client::connect(&other, client_config!(tandem_std, p), tandem_std::Handlers::new())
        .expect_err("must fail");
    assert!(
        matches!(e, tandem_std::Error::Tls { .. }) && e.to_string().contains("not valid for name"),
        "{e}"
    );
}

#[test]
fn smol_client_std_server_over_mutual_tls() {
    let p = pki(&["localhost"]);
    let handlers =
        tandem_std::Handlers::new().unary(&WHOAMI, |ctx, ()| Ok(ctx.identity().map(|i| i.to_string())));
    let server =
        tandem_std::Server::bind("tls://127.0.0.1:0", server_parts!(tandem_std, p), handlers).unwrap();
    let addr = format!("tls://localhost:{}", port(&server.local_addr().to_string()));
    smol::block_on(async {
        let client_handlers = tandem_smol::Handlers::new().unary(&PING, |_, n| async move { Ok(n + 1) });
        let client = tandem_smol::Client::connect(&addr, client_config!(tandem_smol, p), client_handlers)
            .await
            .unwrap();
        assert_eq!(client.call(&WHOAMI, &(), T).await, Ok(Some("cn:alice".to_string())));
        let peer = blocking_wait(&server);
        assert_eq!(peer.identity().map(|i| i.as_str().to_string()), Some("cn:alice".to_string()));
        let answer = smol::unblock(move || peer.call(&PING, &41, T)).await;
        assert_eq!(answer, Ok(42));
        let other = format!("tls://127.0.0.1:{}", port(&server.local_addr().to_string()));
        let e = tandem_smol::Client::connect(
            &other,
            client_config!(tandem_smol, p),
            tandem_smol::Handlers::new(),
        )
        .await
        .expect_err("must fail");
        assert!(
            matches!(e, tandem_smol::Error::Tls { .. }) && e.to_string().contains("not valid for name"),
            "{e}"
        );
    });
}

fn blocking_wait(server: &tandem_std::Server) -> tandem_std::Peer {
    server.wait_for_peer("client", T).expect("the client is tracked")
}
