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
    let all = |init: &[u8]| service::Count::parse(init).map(|c| c.collect::<Vec<_>>());
    assert_eq!(all(&2u32.to_be_bytes()), Ok(vec![vec![0, 0, 0, 0], vec![0, 0, 0, 1]]));
    let mut init = 2u32.to_be_bytes().to_vec();
    init.extend_from_slice(&3u32.to_be_bytes());
    assert_eq!(all(&init), Ok(vec![vec![0; 3], vec![1; 3]]));
    assert_eq!(all(b"abc"), Err(Status::BAD_PAYLOAD));
    // A size above the service's own message limit is refused before anything is built.
    let mut huge = 1u32.to_be_bytes().to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(all(&huge), Err(Status::TOO_LARGE));
    // Items are produced lazily: asking for 2^32-1 items of 64 KiB builds none up front.
    let mut big = u32::MAX.to_be_bytes().to_vec();
    big.extend_from_slice(&service::MAX_COUNT_ITEM.to_be_bytes());
    let mut c = service::Count::parse(&big).unwrap();
    assert_eq!(c.size_hint(), (u32::MAX as usize, Some(u32::MAX as usize)));
    assert_eq!(c.nth(300).map(|i| (i.len(), i[0])), Some((65536, (300 % 256) as u8)));
}

#[test]
fn state_is_bounded_per_name_and_in_names() {
    let st = service::State::default();
    // One name, many records: only the newest MAX_RECORDS_PER_NAME stay, in order.
    for i in 0..1000u32 {
        st.record("a", &i.to_be_bytes());
    }
    let kept = service::parse_recorded(&st.recorded("a")).unwrap();
    assert_eq!(kept.len(), service::MAX_RECORDS_PER_NAME);
    assert_eq!(kept.first().unwrap(), &(1000 - service::MAX_RECORDS_PER_NAME as u32).to_be_bytes());
    assert_eq!(kept.last().unwrap(), &999u32.to_be_bytes());
    // Large records: the byte bound holds, and the newest record is always kept.
    for _ in 0..10 {
        st.record("b", &[7u8; 5000]);
    }
    let kept = service::parse_recorded(&st.recorded("b")).unwrap();
    assert!(kept.iter().map(Vec::len).sum::<usize>() <= service::MAX_RECORD_BYTES_PER_NAME);
    st.record("b", &vec![1u8; 60_000]);
    assert_eq!(service::parse_recorded(&st.recorded("b")).unwrap(), vec![vec![1u8; 60_000]]);
    // Many names: only MAX_PEER_NAMES stay, the least recently used go first.
    for i in 0..2000 {
        st.record(&format!("peer-{i}"), b"x");
        st.record("a", b"still here"); // "a" stays in use
    }
    assert_eq!(st.names(), service::MAX_PEER_NAMES);
    assert!(!st.recorded("a").is_empty());
    assert!(st.recorded("peer-0").is_empty());
    assert!(!st.recorded("peer-1999").is_empty());
    assert!(st.records() <= service::MAX_PEER_NAMES * service::MAX_RECORDS_PER_NAME);
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
