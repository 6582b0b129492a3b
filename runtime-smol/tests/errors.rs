//! Bad addresses, unimplemented UDP, busy and stale Unix socket paths give clear errors.

mod common;
use common::*;
use tandem_smol::{Client, ClientConfig, Error, Handlers, Server, ServerConfig};

#[test]
fn bad_addresses_say_what_is_wrong() {
    run(T, async {
        let e = Client::connect("127.0.0.1:80", ClientConfig::new("c"), Handlers::new()).await.unwrap_err();
        assert!(matches!(e, Error::Address(_)));
        let msg = e.to_string();
        assert!(msg.contains("missing scheme") && msg.contains("tcp://HOST:PORT"), "{msg}");
        let e = Server::bind("sctp://x:1", ServerConfig::new("s"), Handlers::new()).unwrap_err().to_string();
        assert!(e.contains("unknown scheme"), "{e}");
        let e = Server::bind("tcp://127.0.0.1:99999", ServerConfig::new("s"), Handlers::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("port"), "{e}");
    });
}

#[test]
fn udp_with_nothing_listening_times_out_naming_the_address() {
    run(T, async {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("udp://127.0.0.1:{port}");
        let config =
            ClientConfig { connect_timeout: std::time::Duration::from_millis(300), ..ClientConfig::new("c") };
        let e = Client::connect(&addr, config, Handlers::new()).await.unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e}");
        assert!(e.to_string().contains(&addr), "{e}");
    });
}

#[test]
fn nothing_listening_names_the_address() {
    run(T, async {
        let dir = tempfile::tempdir().unwrap();
        // A port that was free a moment ago.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("tcp://127.0.0.1:{port}");
        let e =
            Client::connect(&addr, ClientConfig::new("c"), Handlers::new()).await.unwrap_err().to_string();
        assert!(e.contains(&format!("cannot connect to {addr}")), "{e}");
        for scheme in ["unix", "unix+seqpacket"] {
            let addr = format!("{scheme}://{}", dir.path().join("none.sock").display());
            let e = Client::connect(&addr, ClientConfig::new("c"), Handlers::new())
                .await
                .unwrap_err()
                .to_string();
            assert!(e.contains("none.sock") && e.contains("cannot connect"), "{e}");
        }
    });
}

#[test]
fn busy_and_stale_socket_paths() {
    run(T, async {
        let dir = tempfile::tempdir().unwrap();
        for scheme in ["unix", "unix+seqpacket"] {
            let path = dir.path().join(format!("{scheme}.sock"));
            let addr = format!("{scheme}://{}", path.display());
            let server = Server::bind(&addr, ServerConfig::new("s"), Handlers::new()).unwrap();
            assert!(path.exists());
            // Busy: refused, naming the path and the option.
            let e = Server::bind(&addr, ServerConfig::new("s2"), Handlers::new()).unwrap_err();
            assert!(matches!(e, Error::PathInUse { live: false, .. }), "{e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()) && msg.contains("unlink_stale_socket"),
                "{msg}"
            );
            // Even with the option, a live server is not removed.
            let e = Server::bind(
                &addr,
                ServerConfig { unlink_stale_socket: true, ..ServerConfig::new("s2") },
                Handlers::new(),
            )
            .unwrap_err();
            assert!(matches!(e, Error::PathInUse { live: true, .. }), "{e:?}");
            assert!(e.to_string().contains("already listening"), "{e}");
            // The socket still works.
            let c = Client::connect(&addr, ClientConfig::new("c"), Handlers::new()).await.unwrap();
            drop(c);
            // Clean shutdown removes the socket file.
            server.shutdown(T).await;
            assert!(!path.exists(), "socket file left behind");
            // A stale socket (listener gone, file left).
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            assert!(path.exists());
            assert!(matches!(
                Server::bind(&addr, ServerConfig::new("s3"), Handlers::new()),
                Err(Error::PathInUse { live: false, .. })
            ));
            let server = Server::bind(
                &addr,
                ServerConfig { unlink_stale_socket: true, ..ServerConfig::new("s3") },
                Handlers::new(),
            )
            .unwrap();
            let c = Client::connect(&addr, ClientConfig::new("c"), Handlers::new()).await.unwrap();
            assert_eq!(c.name(), "s3");
            drop(c);
            // Dropping the server removes the file too.
            drop(server);
            assert!(!path.exists());
        }
    });
}
