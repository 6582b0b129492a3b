//! The standard test service (SPEC.md Appendix A): the appendix's byte examples agree with the
//! codec, and both runtimes serve the same answers.

use tandem_conformance::service::{self, method, Callback, MODULE};
use tandem_conformance::suite::req;
use tandem_conformance::wire::encode;
use tandem_core::frame::Frame;
use tandem_core::{MethodId, Status};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn appendix_examples_match_the_codec() {
    let spec = include_str!("../../SPEC.md");
    let appendix = &spec[spec.find("## Appendix A.").expect("Appendix A exists")..];
    let echo = hex(&encode(&Frame::Call(req(0, method::ECHO, b"hi"))));
    let answer = hex(&encode(&Frame::Response {
        flags: 0,
        id: 0,
        status: Status::OK,
        total_len: None,
        payload: b"hi",
    }));
    let sleep = hex(&encode(&Frame::Call(req(2, method::SLEEP, &5000u32.to_be_bytes()))));
    let notify = hex(&encode(&Frame::Notify(req(4, method::RECORD, b""))));
    for ex in [echo, answer, sleep, notify] {
        assert!(appendix.contains(&format!("`{ex}`")), "Appendix A lacks the example `{ex}`");
    }
    assert_eq!(MODULE, 100);
}

#[test]
fn callback_request_layout() {
    let cb = Callback { kind: 3, method: MethodId::new(7, 1), timeout_ms: 300, payload: b"x".to_vec() };
    let b = cb.encode();
    assert_eq!(hex(&b), "03 00 00 00 07 00 00 00 01 00 00 01 2c 78");
    assert_eq!(Callback::decode(&b), Some(cb));
}

#[test]
fn count_items_layout() {
    assert_eq!(service::count_items(&2u32.to_be_bytes()), Some(vec![vec![0, 0, 0, 0], vec![0, 0, 0, 1]]));
    let mut init = 2u32.to_be_bytes().to_vec();
    init.extend_from_slice(&3u32.to_be_bytes());
    assert_eq!(service::count_items(&init), Some(vec![vec![0; 3], vec![1; 3]]));
    assert_eq!(service::count_items(b"abc"), None);
}

#[test]
fn both_runtimes_serve_the_service() {
    for rt in [tandem_conformance::selftest::Runtime::Std, tandem_conformance::selftest::Runtime::Smol] {
        let server = tandem_conformance::selftest::Server::start(rt, "tcp://127.0.0.1:0").expect("server");
        let addr = server.addr().to_string();
        let client = tandem_std::Client::connect(
            &addr,
            tandem_std::ClientConfig::new("svc-test"),
            tandem_std::Handlers::new(),
        )
        .expect("connect");
        let t = std::time::Duration::from_secs(5);
        let m = |x| MethodId::new(MODULE, x);
        assert_eq!(client.call_raw(m(method::ECHO), b"abc", t).unwrap(), b"abc");
        client.call_raw(m(method::SINK), b"12345", t).unwrap();
        let stats = client.call_raw(m(method::SINK_STATS), b"", t).unwrap();
        assert_eq!(stats, [1u64.to_be_bytes(), 5u64.to_be_bytes()].concat(), "{}", rt.name());
        client.notify_raw(m(method::RECORD), b"r1", t).unwrap();
        let rec = client.call_raw(m(method::RECORDED), b"", t).unwrap();
        assert_eq!(service::parse_recorded(&rec), Some(vec![b"r1".to_vec()]));
        let st = client.call_raw(m(method::STATUS), &13u32.to_be_bytes(), t);
        assert_eq!(st.unwrap_err().status(), Status::INVALID_ARGUMENT);
        assert_eq!(client.call_raw(m(99), b"", t).unwrap_err().status(), Status::UNKNOWN_METHOD);
        client.shutdown(std::time::Duration::from_millis(200));
        server.stop();
    }
}

#[test]
fn case_ids_are_unique_and_sections_exist() {
    let all = tandem_conformance::cases::all();
    let titles = tandem_conformance::runner::section_titles();
    let mut seen = std::collections::HashSet::new();
    for c in &all {
        assert!(seen.insert(c.id.clone()), "duplicate case id {}", c.id);
        assert!(c.id.starts_with(&format!("{}/", c.section)), "{} is not in its section {}", c.id, c.section);
        assert!(titles.contains_key(&c.section), "{}: SPEC.md has no section {}", c.id, c.section);
        assert!(!c.requirement.is_empty(), "{} quotes no requirement", c.id);
    }
    assert!(all.len() >= 150);
}
