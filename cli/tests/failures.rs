//! Every class of failure gets its exit status and a one-line error that says what happened,
//! against both runtimes: no server, not a tandem peer, refused (authentication), TLS, unknown
//! method, schema mismatch, timeout, invalid input (naming the field), an error status from the
//! handler, a lost connection, a method called as the wrong kind, and a server whose
//! introspection lies (deep, oversized or garbage schemas, an answer claiming 2^60 values).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::{at, at_in, serve, tandem, Opts, Rt, Service, RUNTIMES};
use tandem_std::Status;

const NO_SERVER: i32 = 3;
const NOT_TANDEM: i32 = 4;
const REFUSED: i32 = 5;
const TLS: i32 = 6;
const UNKNOWN_METHOD: i32 = 7;
const SCHEMA_MISMATCH: i32 = 8;
const TIMEOUT: i32 = 9;
const INVALID_INPUT: i32 = 10;
const CONNECTION_LOST: i32 = 11;

#[test]
fn no_server() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("tcp://127.0.0.1:{port}");
    tandem(&["ping", &addr]).fails(NO_SERVER, &["no server: nothing answers at", &addr, "refused"]);
    // Without a scheme, tcp:// is meant.
    tandem(&["list", &format!("127.0.0.1:{port}")]).fails(NO_SERVER, &[&addr]);
    let dir = tempfile::tempdir().unwrap();
    let path = format!("unix://{}/none.sock", dir.path().display());
    tandem(&["call", &path, "arm.go", "{}"]).fails(NO_SERVER, &["no server: ", &path, "No such file"]);
}

/// A TCP server that answers every connection with an HTTP error and closes it.
fn http_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    addr
}

/// A TCP server that accepts connections and never says anything.
fn silent_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    addr
}

#[test]
fn not_a_tandem_peer() {
    let addr = http_server();
    tandem(&["ping", &addr]).fails(NOT_TANDEM, &["not a tandem peer: ", &addr, "does not speak tandem"]);
    for rt in RUNTIMES {
        // Plaintext against a TLS server.
        let s = serve(rt, Service::Arm, "tls", Opts::default());
        let plain = s.addr.replace("tls://", "tcp://");
        tandem(&["ping", &plain]).fails(NOT_TANDEM, &["not a tandem peer: ", "speaks TLS", "tls://"]);
    }
}

#[test]
fn a_silent_server_times_out() {
    let addr = silent_server();
    tandem(&["--timeout", "300ms", "ping", &addr])
        .fails(TIMEOUT, &["timeout: no tandem handshake from", &addr]);
}

#[test]
fn refused_by_the_authenticator() {
    for rt in RUNTIMES {
        for transport in ["tcp", "unix"] {
            let s = serve(rt, Service::Arm, transport, Opts { token: Some("sesame"), ..Opts::default() });
            at(&s, "ping", &[])
                .fails(REFUSED, &["refused: ", "UNAUTHENTICATED (17)", "wrong token for this server"]);
            tandem(&["--auth", "guess", "list", &s.addr]).fails(REFUSED, &["UNAUTHENTICATED"]);
            let out = tandem(&["--auth", "sesame", "call", &s.addr, "arm.double", "2"]);
            assert_eq!(out.ok(), "4\n", "{rt:?} over {transport}");
        }
    }
}

#[test]
fn tls_failures_and_client_certificates() {
    for rt in RUNTIMES {
        // A CA that did not sign the server's certificate.
        let s = serve(rt, Service::Arm, "tls", Opts::default());
        let stranger = tandem_testkit::pki::Ca::new("another CA");
        let other_ca = s.file("other.pem");
        std::fs::write(&other_ca, &stranger.pem).unwrap();
        tandem(&["--ca", other_ca.to_str().unwrap(), "ping", &s.addr])
            .fails(TLS, &["TLS: ", "UnknownIssuer"]);
        // A CA file that is not PEM: a usage error.
        let junk = s.file("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        assert_eq!(tandem(&["--ca", junk.to_str().unwrap(), "ping", &s.addr]).code, 2);

        // Mutual TLS: the server requires a client certificate of its CA.
        let clients = tandem_testkit::pki::Ca::new("client CA");
        let leaf = clients.client("operator");
        let opts = Opts { client_ca: Some((clients.pem.clone(), leaf.der.clone())), ..Opts::default() };
        let s = serve(rt, Service::Arm, "tls", opts);
        at(&s, "ping", &[]).fails(TLS, &["TLS: ", "CertificateRequired", "--cert FILE --key FILE"]);
        let (cert, key) = (s.file("client.pem"), s.file("client.key"));
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        let mut args: Vec<&str> = s.conn.iter().map(String::as_str).collect();
        args.extend(["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
        args.extend(["call", &s.addr, "arm.go", r#"{"x":5,"y":5}"#]);
        assert_eq!(tandem(&args).ok(), "{\"x\":6,\"y\":5}\n", "{rt:?}");
    }
}

#[test]
fn unknown_methods() {
    for rt in RUNTIMES {
        let s = serve(rt, Service::Arm, "tcp", Opts::default());
        at(&s, "call", &["arm.nope", "1"])
            .fails(UNKNOWN_METHOD, &["unknown method: ", "service arm has no method `nope`", "double, go"]);
        at(&s, "describe", &["fleet.go"])
            .fails(UNKNOWN_METHOD, &["no service `fleet`", "it describes: arm, introspection"]);
        at(&s, "call", &["--raw", "70.99"]).fails(UNKNOWN_METHOD, &["UNKNOWN_METHOD (4)"]);
        at(&s, "call", &["--raw", "9999.1", "00"]).fails(UNKNOWN_METHOD, &["UNKNOWN_MODULE (3)"]);
        // A server without introspection: the error says how to call it anyway.
        let c = serve(rt, Service::Conformance, "tcp", Opts::default());
        at(&c, "list", &[])
            .fails(UNKNOWN_METHOD, &["does not serve introspection", "--raw MODULE.METHOD HEX"]);
        at(&c, "call", &["echo.echo", "1"]).fails(UNKNOWN_METHOD, &["does not serve introspection"]);
    }
}

#[test]
fn schema_mismatches() {
    for rt in RUNTIMES {
        let c = serve(rt, Service::Conformance, "tcp", Opts::default());
        // KEYED (100.13) checks the key it is sent (SPEC.md Appendix A).
        at(&c, "call", &["--raw", "100.13", "6869", "--schema-key", "0011223344556677"])
            .fails(SCHEMA_MISMATCH, &["schema mismatch: ", "SCHEMA_MISMATCH (26)", "0011223344556677"]);
        assert_eq!(
            at(&c, "call", &["--raw", "100.13", "6869", "--schema-key", "4b455945442d7631"]).ok(),
            "6869\n"
        );
        // COUNT (100.4) is a stream: a CALL to it is UNIMPLEMENTED.
        at(&c, "call", &["--raw", "100.4", "00000001"]).fails(SCHEMA_MISMATCH, &["UNIMPLEMENTED (21)"]);
        let s = serve(rt, Service::Arm, "tcp", Opts::default());
        // Bytes that are not a Move.
        at(&s, "call", &["--raw", "70.2", "ffff"]).fails(SCHEMA_MISMATCH, &["BAD_PAYLOAD (6)"]);
        // A unary method notified.
        at(&s, "notify", &["--raw", "70.1", "02"]).fails(SCHEMA_MISMATCH, &["UNIMPLEMENTED"]);
        // Keys on notifications and streams are checked too.
        at(&s, "notify", &["--raw", "70.3", "00", "--schema-key", "0011223344556677"])
            .fails(SCHEMA_MISMATCH, &["SCHEMA_MISMATCH (26)"]);
        at(&s, "stream", &["--raw", "70.5", "03", "--schema-key", "0011223344556677"])
            .fails(SCHEMA_MISMATCH, &["SCHEMA_MISMATCH (26)"]);
    }
}

#[test]
fn deadlines() {
    for rt in RUNTIMES {
        let c = serve(rt, Service::Conformance, "tcp", Opts::default());
        // SLEEP (100.7) for 5 s, with 300 ms allowed.
        let mut args: Vec<&str> = vec!["--timeout", "300ms", "call", &c.addr];
        args.extend(["--raw", "100.7", "00001388"]);
        tandem(&args).fails(TIMEOUT, &["timeout: ", "DEADLINE_EXCEEDED (9)"]);
    }
}

#[test]
fn invalid_input_names_the_field() {
    for rt in RUNTIMES {
        let s = serve(rt, Service::Arm, "tcp", Opts::default());
        let go = |json: &str| at(&s, "call", &["arm.go", json]);
        go(r#"{"x": "left", "y": 2}"#)
            .fails(INVALID_INPUT, &["invalid input: ", "at `.x`", "expected an integer (i32)"]);
        go(r#"{"x": 1}"#).fails(INVALID_INPUT, &["at `.y`: missing field"]);
        go(r#"{"x": 1, "y": 2, "z": 3}"#)
            .fails(INVALID_INPUT, &["at `.z`: no such field (the fields are: x, y)"]);
        go(r#"{"x": 1, "y": 3000000000}"#).fails(INVALID_INPUT, &["at `.y`: 3000000000 does not fit a i32"]);
        go("{x: 1").fails(INVALID_INPUT, &["the request is not JSON"]);
        at(&s, "notify", &["arm.beep", "300"]).fails(INVALID_INPUT, &["300 does not fit a u8"]);
        at(&s, "call", &["--raw", "70.1", "zz"]).fails(INVALID_INPUT, &["is not hex"]);
        // A bad line on stdin ends the stream and names the line.
        at_in(&s, "stream", &["arm.sum", "0"], "1\n\"two\"\n")
            .fails(INVALID_INPUT, &["stdin line 2", "expected an integer (u64)"]);
    }
}

#[test]
fn error_statuses_from_the_handler() {
    for rt in RUNTIMES {
        let s = serve(rt, Service::Arm, "tcp", Opts::default());
        // The typed application error, decoded from the details with the described schema.
        at(&s, "call", &["arm.go", r#"{"x": 101, "y": 0}"#])
            .fails(1, &["error: arm.go: ", "APPLICATION_ERROR (27)", r#"{"Blocked":{"at":100}}"#]);
        at(&s, "call", &["arm.go", r#"{"x": -1, "y": 0}"#])
            .fails(1, &["INVALID_ARGUMENT (13)", "negative x"]);
        // FAIL (100.14): NOT_FOUND with the message "gone".
        let c = serve(rt, Service::Conformance, "tcp", Opts::default());
        at(&c, "call", &["--raw", "100.14", "0000000e676f6e65"]).fails(1, &["NOT_FOUND (14)", "gone"]);
    }
}

#[test]
fn a_lost_connection() {
    for rt in RUNTIMES {
        let mut c = serve(rt, Service::Conformance, "tcp", Opts::default());
        let addr = c.addr.clone();
        let call = std::thread::spawn(move || tandem(&["call", &addr, "--raw", "100.7", "00001388"]));
        // Once the CLI is connected, give its call time to arrive, then stop the server under
        // it (a fixed sleep alone failed on a loaded machine: the CLI had not connected yet).
        c.wait_for_connection();
        std::thread::sleep(Duration::from_millis(200));
        c.kill();
        call.join().unwrap().fails(CONNECTION_LOST, &["connection lost: ", "UNAVAILABLE"]);
    }
}

#[test]
fn a_method_called_as_the_wrong_kind() {
    let s = serve(Rt::Std, Service::Arm, "tcp", Opts::default());
    at(&s, "call", &["arm.count", "3"])
        .fails(2, &["arm.count is a server_stream method: use `tandem stream"]);
    at(&s, "stream", &["arm.go", "{}"]).fails(2, &["arm.go is a unary method: use `tandem call"]);
    at(&s, "bench", &["arm.log", "\"x\""]).fails(2, &["bench calls unary methods"]);
}

/// A server whose introspection lies (raw handlers on the introspection module): service `evil`
/// on module 1 with `deep` (a schema nested 30,000 levels), `units` (answers 2^60 `()`s in 9
/// bytes), `big` (a schema over the 64 KiB the tool accepts) and `junk` (not a schema).
fn evil_server() -> tandem_std::Server {
    use postcard_schema::schema::owned::OwnedNamedType;
    use postcard_schema::Schema;
    use tandem_std::introspect::{MethodInfo, MethodSchema, ServiceInfo, MODULE};
    use tandem_std::tandem_core::typed::{decode, encode_vec, MethodKind};
    use tandem_std::{Handlers, MethodId, Server, ServerConfig};

    fn deep(levels: usize) -> Vec<u8> {
        // Each level: name "" then DataModel::Option (variant 18); at the bottom name "" and Bool.
        let mut b = [0x00, 0x12].repeat(levels);
        b.extend_from_slice(&[0x00, 0x00]);
        // response, up, down, error: None.
        b.extend_from_slice(&[0, 0, 0, 0]);
        b
    }
    let units = MethodSchema {
        request: OwnedNamedType::from(<()>::SCHEMA),
        response: Some(OwnedNamedType::from(<Vec<()>>::SCHEMA)),
        up: None,
        down: None,
        error: None,
    };
    let units = encode_vec(&units).unwrap();
    let info = |name: &str, id| MethodInfo {
        name: name.into(),
        id,
        kind: MethodKind::Unary,
        key: [0; 8],
        doc: String::new(),
    };
    let methods =
        encode_vec(&vec![info("deep", 1), info("units", 2), info("big", 3), info("junk", 4)]).unwrap();
    let services =
        encode_vec(&vec![ServiceInfo { name: "evil".into(), module: 1, doc: " Lies.\n".into() }]).unwrap();
    let handlers = Handlers::new()
        .introspection(false)
        .raw_unary(MethodId::new(MODULE, 1), move |_, _| Ok(services.clone()))
        .raw_unary(MethodId::new(MODULE, 2), move |_, _| Ok(methods.clone()))
        .raw_unary(MethodId::new(MODULE, 3), move |_, req| {
            Ok(match decode::<(u32, u32)>(&req).map_err(|_| Status::BAD_PAYLOAD)? {
                (1, 1) => deep(30_000),
                (1, 2) => units.clone(),
                (1, 3) => deep(40_000),
                _ => vec![0xff; 16],
            })
        })
        .raw_unary(MethodId::new(1, 2), |_, _| {
            Ok(vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])
        });
    Server::bind("tcp://127.0.0.1:0", ServerConfig::new("evil"), handlers).unwrap()
}

#[test]
fn a_lying_server_cannot_crash_or_exhaust_the_tool() {
    let server = evil_server();
    let addr = server.local_addr().to_string();
    // 30,000 levels of Option: described, not a stack overflow.
    let out = tandem(&["describe", &addr, "evil.deep"]);
    assert!(
        out.ok().contains("request:  Option<Option<Option<"),
        "{}",
        &out.stdout[..200.min(out.stdout.len())]
    );
    tandem(&["describe", &addr, "evil.big"]).fails(SCHEMA_MISMATCH, &["80006 bytes, more than the 65536"]);
    tandem(&["describe", &addr, "evil.junk"]).fails(SCHEMA_MISMATCH, &["does not decode", "Appendix B"]);
    // An answer claiming 2^60 empty values: refused, not built.
    tandem(&["call", &addr, "evil.units"]).fails(SCHEMA_MISMATCH, &["more elements than its bytes can"]);
}
