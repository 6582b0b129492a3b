//! Bad addresses, unsupported transports and busy socket paths give clear errors; socket files
//! are cleaned up.

mod common;

use common::*;
use std::os::unix::net::UnixListener;
use tandem_std::{Client, ClientConfig, Error, Handlers, Server, ServerConfig};

fn bind_err(addr: &str, cfg: ServerConfig) -> String {
    Server::bind(addr, cfg, Handlers::new()).unwrap_err().to_string()
}

fn connect_err(addr: &str) -> String {
    Client::connect(addr, ClientConfig::new("c"), Handlers::new()).unwrap_err().to_string()
}

#[test]
fn bad_addresses_say_what_is_wrong() {
    bounded(10, || {
        let e = connect_err("127.0.0.1:80");
        assert!(e.contains("missing scheme") && e.contains("tcp://HOST:PORT"), "{e}");
        let e = connect_err("tcp://127.0.0.1");
        assert!(e.contains("missing :PORT"), "{e}");
        let e = bind_err("sctp://x:1", ServerConfig::new("s"));
        assert!(e.contains("unknown scheme"), "{e}");
        // UDP is supported; an unresolvable host names the address.
        let e = bind_err("udp://no-such-host.invalid:1", ServerConfig::new("s"));
        assert!(e.contains("cannot listen on udp://no-such-host.invalid:1"), "{e}");
        // Nobody listens: the error names the address.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = connect_err(&format!("tcp://127.0.0.1:{port}"));
        assert!(e.contains(&format!("cannot connect to tcp://127.0.0.1:{port}")), "{e}");
        let e = connect_err("unix:///nonexistent/dir/x.sock");
        assert!(e.contains("cannot connect to unix:///nonexistent/dir/x.sock"), "{e}");
        // A TCP port in use.
        let server = Server::bind("tcp://127.0.0.1:0", ServerConfig::new("s"), Handlers::new()).unwrap();
        let e = bind_err(&server.local_addr().to_string(), ServerConfig::new("s"));
        assert!(e.starts_with(&format!("cannot listen on {}", server.local_addr())), "{e}");
        // An invalid connection config is caught before listening.
        let mut cfg = ServerConfig::new("s");
        cfg.connection.max_frame_size = 1;
        let e = bind_err("tcp://127.0.0.1:0", cfg);
        assert!(e.contains("max_frame_size"), "{e}");
    });
}

#[test]
fn busy_socket_paths_are_refused_and_stale_ones_can_be_removed() {
    bounded(10, || {
        let dir = tempfile::tempdir().unwrap();
        for scheme in ["unix", "unix+seqpacket"] {
            let path = dir.path().join(format!("{}.sock", scheme.replace('+', "-")));
            let addr = format!("{scheme}://{}", path.display());

            // A live server owns the path: refused, with or without the option.
            let server = Server::bind(&addr, ServerConfig::new("s"), Handlers::new()).unwrap();
            let e = bind_err(&addr, ServerConfig::new("s"));
            assert!(e.contains(&path.display().to_string()) && e.contains("unlink_stale_socket"), "{e}");
            let mut unlink = ServerConfig::new("s");
            unlink.unlink_stale_socket = true;
            let e = bind_err(&addr, unlink.clone());
            assert!(e.contains("already listening"), "{e}");

            // A clean shutdown removes the socket file.
            server.shutdown(T);
            assert!(!path.exists(), "socket file left behind");

            // A stale socket (its server died without cleaning up).
            drop(UnixListener::bind(&path).unwrap());
            assert!(path.exists());
            let e = Server::bind(&addr, ServerConfig::new("s"), Handlers::new()).unwrap_err();
            assert!(matches!(e, Error::PathInUse { live: false, .. }), "{e}");
            let server = Server::bind(&addr, unlink.clone(), Handlers::new()).unwrap();
            let c = Client::connect(&addr, ClientConfig::new("c"), Handlers::new()).unwrap();
            assert_eq!(c.name(), "s");
            drop(c);
            drop(server);
            assert!(!path.exists(), "socket file left behind after drop");

            // Not a socket: never removed.
            std::fs::write(&path, b"data").unwrap();
            let e = bind_err(&addr, unlink);
            assert!(e.contains("is not a socket"), "{e}");
            assert_eq!(std::fs::read(&path).unwrap(), b"data");
            std::fs::remove_file(&path).unwrap();
        }
    });
}

#[test]
fn handshake_with_a_non_tandem_server_fails_clearly() {
    bounded(10, || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("tcp://{}", l.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            use std::io::Write;
            let (mut s, _) = l.accept().unwrap();
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
        });
        let e = connect_err(&addr);
        assert!(e.starts_with("connection closed during the handshake"), "{e}");
        t.join().unwrap();
    });
}
