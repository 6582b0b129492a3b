//! Authentication (SPEC.md §5.6): the server's authenticator accepts or refuses each peer,
//! handlers see the identity, names belong to identities, and resumption is authenticated again.
//! The blocking twin of tandem-smol's `tests/auth.rs`.

mod common;
use std::sync::Arc;

use common::{bounded, wait_until, T};
use tandem_std::tandem_core::typed::Unary;
use tandem_std::{
    AuthRefusal, AuthRequest, Authenticator, Client, ClientConfig, Credentials, Error, Handlers,
    PeerIdentity, Server, ServerConfig, Status,
};

/// Answers the caller's identity as the server saw it.
const WHOAMI: Unary<(), Option<String>> = Unary::new(1, 1);

fn authenticator() -> Arc<dyn Authenticator> {
    Arc::new(|r: &AuthRequest<'_>| match r.auth {
        b"alice-token" => Ok(PeerIdentity::new("alice")),
        b"mallory-token" => Ok(PeerIdentity::new("mallory")),
        b"" => Err(AuthRefusal::unauthenticated("no token: set ClientConfig::auth")),
        _ => Err(AuthRefusal::unauthenticated("unknown token")),
    })
}

fn server() -> Server {
    let mut config = ServerConfig::new("server");
    config.authenticator = Some(authenticator());
    let handlers = Handlers::new().unary(&WHOAMI, |ctx, ()| Ok(ctx.identity().map(|i| i.to_string())));
    Server::bind("tcp://127.0.0.1:0", config, handlers).unwrap()
}

fn client_config(name: &str, token: &str) -> ClientConfig {
    let mut c = ClientConfig::new(name);
    c.auth = Credentials::token(token);
    c
}

#[test]
fn a_peer_with_wrong_credentials_is_refused_with_the_servers_reason() {
    bounded(60, || {
        let server = server();
        let addr = server.local_addr().to_string();
        let e = Client::connect(&addr, client_config("sensor", "guess"), Handlers::new()).unwrap_err();
        match &e {
            Error::Refused { status: Status::UNAUTHENTICATED, message } => {
                assert_eq!(message, "unknown token")
            }
            other => panic!("expected a refusal with UNAUTHENTICATED, got {other:?}"),
        }
        assert!(e.to_string().contains("refused") && e.to_string().contains("unknown token"), "{e}");
        let e = Client::connect(&addr, ClientConfig::new("sensor"), Handlers::new()).unwrap_err();
        assert!(
            matches!(&e, Error::Refused { status: Status::UNAUTHENTICATED, message } if message.contains("ClientConfig::auth"))
        );
        // Nothing is kept of the attempts.
        wait_until(|| server.stats().connections == 0);
        assert!(server.peers().is_empty());
        // The raw wire view: the CLOSE carries the authenticator's message.
        tandem_testkit::auth::wrong_credentials_are_refused(&addr);
        server.shutdown(T);
    });
}

#[test]
fn handlers_see_the_identity_and_names_belong_to_identities() {
    bounded(60, || {
        let server = server();
        let addr = server.local_addr().to_string();
        let alice = Client::connect(&addr, client_config("sensor", "alice-token"), Handlers::new()).unwrap();
        assert_eq!(alice.call(&WHOAMI, &(), T), Ok(Some("alice".to_string())));
        let seen = server.wait_for_peer("sensor", T).unwrap();
        assert_eq!(seen.identity().map(PeerIdentity::as_str), Some("alice"));
        // Mallory authenticates, but the name is alice's: refused, alice untouched.
        let e =
            Client::connect(&addr, client_config("sensor", "mallory-token"), Handlers::new()).unwrap_err();
        assert!(
            matches!(&e, Error::Refused { status: Status::PERMISSION_DENIED, message } if message.contains("another identity")),
            "{e:?}"
        );
        assert_eq!(alice.call(&WHOAMI, &(), T), Ok(Some("alice".to_string())));
        assert!(server.peer("sensor").unwrap().same_connection(&seen));
        assert_eq!(server.stats().endpoint.name_conflicts, 1);
        // Under a name of her own she is served.
        let mallory = Client::connect(&addr, client_config("m", "mallory-token"), Handlers::new()).unwrap();
        assert_eq!(mallory.call(&WHOAMI, &(), T), Ok(Some("mallory".to_string())));
        // Alice again, from a new connection: her old one is replaced.
        let alice2 = Client::connect(&addr, client_config("sensor", "alice-token"), Handlers::new()).unwrap();
        wait_until(|| alice.is_closed());
        assert_eq!(alice2.call(&WHOAMI, &(), T), Ok(Some("alice".to_string())));
        server.shutdown(T);
    });
}

#[test]
fn resumption_is_authenticated_again_and_bound_to_the_identity() {
    bounded(60, || {
        let server = server();
        let addr = server.local_addr().to_string();
        tandem_testkit::auth::resumption_is_bound_to_the_identity(&addr);
        server.shutdown(T);
    });
}

#[test]
fn without_an_authenticator_peers_are_unauthenticated() {
    bounded(60, || {
        let handlers = Handlers::new().unary(&WHOAMI, |ctx, ()| Ok(ctx.identity().map(|i| i.to_string())));
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("server"), handlers).unwrap();
        let addr = server.local_addr().to_string();
        // Credentials are sent but nobody checks them; the name is a claim.
        let c = Client::connect(&addr, client_config("sensor", "anything"), Handlers::new()).unwrap();
        assert_eq!(c.call(&WHOAMI, &(), T), Ok(None));
        server.shutdown(T);
    });
}
