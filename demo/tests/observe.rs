//! Observability in both runtimes (issue 18): an `Observer` on the server and on the client sees
//! the peer arrive with its authenticated identity and address, every exchange finish with its
//! declared method path, side, kind and status, and the peer leave; `in_flight()` lists a call
//! while a handler holds it, on both ends, with its method and the time left before its
//! deadline; `MetricsObserver` feeds a Prometheus exporter per-method counters and latencies.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tandem_std::{ExchangeKind, Finished, InFlight, Observer, PeerEvent, Side, Status};

const T: Duration = Duration::from_secs(5);

tandem_core::service! {
    /// A watched service.
    pub service watched = 71 {
        /// Answers its argument; fails (INVALID_ARGUMENT) for a negative one.
        unary check(i64) -> i64 = 1;
        /// Answers once the test releases it.
        unary hold(u32) -> u32 = 2;
    }
}

/// Records what it is told, one line per event.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn wait_for(&self, line: &str) -> bool {
        let end = Instant::now() + T;
        while Instant::now() < end {
            if self.lines().iter().any(|l| l == line) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

fn status_name(s: Status) -> &'static str {
    s.info().map_or("?", |(n, ..)| n)
}

impl Observer for Log {
    fn connected(&self, p: &PeerEvent<'_>) {
        let id = p.identity.map(|i| i.to_string());
        let line = format!("connected {} {id:?} remote={} resumed={}", p.name, p.remote.is_some(), p.resumed);
        self.0.lock().unwrap().push(line);
    }
    fn disconnected(&self, p: &PeerEvent<'_>, _: &tandem_std::ConnectionError) {
        self.0.lock().unwrap().push(format!("disconnected {}", p.name));
    }
    fn finished(&self, e: &Finished<'_>) {
        assert!(e.duration < T, "{e:?}");
        let line = format!("{} {} {} {}", e.side.as_str(), e.kind.as_str(), e.method, status_name(e.status));
        self.0.lock().unwrap().push(line);
    }
}

fn token_authenticator() -> Arc<dyn tandem_std::Authenticator> {
    Arc::new(|r: &tandem_std::AuthRequest<'_>| match r.auth {
        b"alice's token" => Ok(tandem_std::PeerIdentity::new("id:alice")),
        _ => Err(tandem_std::AuthRefusal::unauthenticated("unknown token")),
    })
}

/// `in_flight` on one end: exactly the held call, on `side`, with a deadline.
fn holds_one(list: &[InFlight], side: Side) -> bool {
    matches!(list, [x] if x.side == side && x.kind == ExchangeKind::Call
        && x.method.to_string() == "watched.hold" && x.deadline.is_some_and(|d| d <= T) && x.age < T)
}

fn wait(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + T;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn std_observer_sees_peers_and_exchanges_and_in_flight_lists_a_held_call() {
    let (server_log, client_log) = (Arc::new(Log::default()), Arc::new(Log::default()));
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(held);
    let handlers = tandem_std::Handlers::new()
        .unary(&watched::check, |_, v: i64| if v < 0 { Err(Status::INVALID_ARGUMENT) } else { Ok(v) })
        .unary(&watched::hold, move |_, v: u32| {
            let _ = held.lock().unwrap().recv_timeout(T);
            Ok(v)
        });
    let mut config = tandem_std::ServerConfig::new("server");
    config.authenticator = Some(token_authenticator());
    config.observer = Some(server_log.clone());
    let server = tandem_std::Server::bind("tcp://127.0.0.1:0", config, handlers).unwrap();
    let mut c = tandem_std::ClientConfig::new("alice");
    c.auth = tandem_std::Credentials::token(&b"alice's token"[..]);
    c.observer = Some(client_log.clone());
    let client =
        tandem_std::Client::connect(&server.local_addr().to_string(), c, tandem_std::Handlers::new())
            .unwrap();
    assert!(
        server_log.wait_for(r#"connected alice Some("id:alice") remote=true resumed=false"#),
        "{:?}",
        server_log.lines()
    );
    assert_eq!(client.call(&watched::check, &2, T), Ok(2));
    assert_eq!(client.call(&watched::check, &-1, T).map_err(|e| e.status()), Err(Status::INVALID_ARGUMENT));
    std::thread::scope(|s| {
        let call = s.spawn(|| client.call(&watched::hold, &7, T));
        let peer = server.wait_for_peer("alice", T).unwrap();
        assert!(wait(|| holds_one(&peer.in_flight(), Side::Served)), "{:?}", peer.in_flight());
        assert!(holds_one(&client.peer().in_flight(), Side::Called), "{:?}", client.peer().in_flight());
        release.send(()).unwrap();
        assert_eq!(call.join().unwrap(), Ok(7));
        assert!(wait(|| peer.in_flight().is_empty()), "{:?}", peer.in_flight());
    });
    assert!(client.peer().in_flight().is_empty());
    for line in [
        "served call watched.check OK",
        "served call watched.check INVALID_ARGUMENT",
        "served call watched.hold OK",
    ] {
        assert!(server_log.wait_for(line), "{line}: {:?}", server_log.lines());
    }
    for line in [
        "called call watched.check OK",
        "called call watched.check INVALID_ARGUMENT",
        "called call watched.hold OK",
    ] {
        assert!(client_log.wait_for(line), "{line}: {:?}", client_log.lines());
    }
    client.shutdown(Duration::from_secs(1));
    assert!(server_log.wait_for("disconnected alice"), "{:?}", server_log.lines());
    server.shutdown(Duration::from_secs(1));
}

#[test]
fn smol_observer_sees_peers_and_exchanges_and_in_flight_lists_a_held_call() {
    let (server_log, client_log) = (Arc::new(Log::default()), Arc::new(Log::default()));
    let release = Arc::new(event_listener::Event::new());
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (r2, f2) = (release.clone(), released.clone());
    let handlers = tandem_smol::Handlers::new()
        .unary(&watched::check, |_, v: i64| async move {
            if v < 0 {
                Err(Status::INVALID_ARGUMENT)
            } else {
                Ok(v)
            }
        })
        .unary(&watched::hold, move |_, v: u32| {
            let (release, released) = (r2.clone(), f2.clone());
            async move {
                while !released.load(std::sync::atomic::Ordering::SeqCst) {
                    let l = release.listen();
                    if released.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    l.await;
                }
                Ok(v)
            }
        });
    let mut config = tandem_smol::ServerConfig::new("server");
    config.authenticator = Some(token_authenticator());
    config.observer = Some(server_log.clone());
    let server = tandem_smol::Server::bind("tcp://127.0.0.1:0", config, handlers).unwrap();
    let mut c = tandem_smol::ClientConfig::new("alice");
    c.auth = tandem_smol::Credentials::token(&b"alice's token"[..]);
    c.observer = Some(client_log.clone());
    smol::block_on(async {
        let client =
            tandem_smol::Client::connect(&server.local_addr().to_string(), c, tandem_smol::Handlers::new())
                .await
                .unwrap();
        assert!(
            server_log.wait_for(r#"connected alice Some("id:alice") remote=true resumed=false"#),
            "{:?}",
            server_log.lines()
        );
        assert_eq!(client.call(&watched::check, &2, T).await, Ok(2));
        assert_eq!(
            client.call(&watched::check, &-1, T).await.map_err(|e| e.status()),
            Err(Status::INVALID_ARGUMENT)
        );
        let pending = client.start_call(&watched::hold, &7, T).await.unwrap();
        let peer = server.wait_for_peer("alice", T).await.unwrap();
        assert!(wait(|| holds_one(&peer.in_flight(), Side::Served)), "{:?}", peer.in_flight());
        assert!(holds_one(&client.peer().in_flight(), Side::Called), "{:?}", client.peer().in_flight());
        released.store(true, std::sync::atomic::Ordering::SeqCst);
        release.notify(usize::MAX);
        assert_eq!(pending.await, Ok(7));
        assert!(wait(|| peer.in_flight().is_empty()), "{:?}", peer.in_flight());
        assert!(client.peer().in_flight().is_empty());
        client.shutdown(Duration::from_secs(1)).await;
    });
    for line in [
        "served call watched.check OK",
        "served call watched.check INVALID_ARGUMENT",
        "served call watched.hold OK",
    ] {
        assert!(server_log.wait_for(line), "{line}: {:?}", server_log.lines());
    }
    for line in [
        "called call watched.check OK",
        "called call watched.check INVALID_ARGUMENT",
        "called call watched.hold OK",
    ] {
        assert!(client_log.wait_for(line), "{line}: {:?}", client_log.lines());
    }
    assert!(server_log.wait_for("disconnected alice"), "{:?}", server_log.lines());
}

/// The process's Prometheus recorder (installed once: a recorder is global).
fn prometheus() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("install the recorder")
    })
}

#[test]
fn metrics_observer_feeds_per_method_counters_and_latencies_to_prometheus() {
    let handle = prometheus();
    let handlers = tandem_std::Handlers::new().unary(&watched::check, |_, v: i64| {
        if v < 0 {
            Err(Status::INVALID_ARGUMENT)
        } else {
            Ok(v)
        }
    });
    let mut config = tandem_std::ServerConfig::new("metered");
    config.observer = Some(Arc::new(tandem_std::MetricsObserver::default()));
    let server = tandem_std::Server::bind("tcp://127.0.0.1:0", config, handlers).unwrap();
    let client = tandem_std::Client::connect(
        &server.local_addr().to_string(),
        tandem_std::ClientConfig::new("meter-reader"),
        tandem_std::Handlers::new(),
    )
    .unwrap();
    for v in 0..10 {
        assert_eq!(client.call(&watched::check, &v, T), Ok(v));
    }
    assert!(client.call(&watched::check, &-1, T).is_err());
    let text = handle.render();
    let line = |status: &str| {
        text.lines().find(|l| {
            l.starts_with("tandem_exchanges_total{")
                && l.contains(r#"method="watched.check""#)
                && l.contains(r#"side="served""#)
                && l.contains(&format!(r#"status="{status}""#))
        })
    };
    assert!(line("OK").is_some_and(|l| l.ends_with(" 10")), "{text}");
    assert!(line("INVALID_ARGUMENT").is_some_and(|l| l.ends_with(" 1")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("tandem_exchange_duration_seconds")
                && l.contains(r#"method="watched.check""#)),
        "{text}"
    );
    assert!(text.contains("tandem_peers_connected"), "{text}");
    client.shutdown(Duration::from_secs(1));
    server.shutdown(Duration::from_secs(1));
}
