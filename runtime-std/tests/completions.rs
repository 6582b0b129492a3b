//! `Completions`: one thread waits on many calls across many connections and gets each
//! outcome with its own tag — answers, failures, deadlines, timeouts, cancellation on drop,
//! and the set moved to another thread.

mod common;

use common::{bounded, eventually, handlers, open_exchanges, Seen, ADD, MISSING, SLEEP, T, WAIT_CANCEL};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tandem_std::{
    Client, ClientConfig, Completions, Deadline, ErrorKind, Handlers, MethodId, Server, ServerConfig, Status,
};

/// SLEEP's twin answering a `u32`, so that it shares a set with ADD's calls.
const ADD_LATE: tandem_std::Unary<u64, u32> = tandem_std::Unary::new(7, 2);

/// Raw echo, answered on the server's I/O thread.
const RAW_ECHO: MethodId = MethodId::new(7, 1);

fn server(seen: &std::sync::Arc<Seen>) -> Server {
    let h = handlers("srv", seen).unary(&ADD_LATE, |_, ms| {
        std::thread::sleep(Duration::from_millis(ms));
        Ok(0)
    });
    let h = h.raw_unary_inline(RAW_ECHO, |_, req, out| {
        out.extend_from_slice(req);
        Ok(())
    });
    Server::bind("tcp://127.0.0.1:0", ServerConfig::new("srv"), h).unwrap()
}

fn clients(server: &Server, n: usize) -> Vec<Client> {
    let addr = server.local_addr().to_string();
    (0..n)
        .map(|i| Client::connect(&addr, ClientConfig::new(format!("c{i}")), Handlers::new()).unwrap())
        .collect()
}

/// The request of call `k` on connection `i`: unique, so that a mixed-up answer is caught.
fn request(i: usize, k: usize) -> Vec<u8> {
    format!("connection {i} call {k}").into_bytes()
}

#[test]
fn one_thread_keeps_a_call_in_flight_on_every_connection_and_each_answer_has_its_tag() {
    bounded(60, || {
        let (seen, _log) = Seen::new();
        let server = server(&seen);
        let n = if cfg!(debug_assertions) { 40 } else { 200 };
        let rounds = 25;
        let clients = clients(&server, n);
        let mut calls = Completions::new();
        let mut next = vec![0usize; n];
        for (i, c) in clients.iter().enumerate() {
            calls.push(c.start_call_raw(RAW_ECHO, &request(i, 0), T).unwrap(), (i, 0));
        }
        assert_eq!(calls.len(), n);
        let mut answer = Vec::new();
        let mut answered = 0;
        while let Some(((i, k), outcome)) = calls.wait_into(&mut answer) {
            outcome.unwrap();
            assert_eq!(answer, request(i, k), "connection {i} call {k}");
            assert_eq!(next[i], k, "connection {i}: answers in the order of its calls");
            next[i] += 1;
            answered += 1;
            if k + 1 < rounds {
                calls.push(clients[i].start_call_raw(RAW_ECHO, &request(i, k + 1), T).unwrap(), (i, k + 1));
            }
        }
        assert_eq!(answered, n * rounds);
        assert!(calls.is_empty());
        assert!(calls.wait().is_none(), "an empty set has nothing to wait for");
        assert!(next.iter().all(|&k| k == rounds));
    });
}

#[test]
fn typed_calls_failures_and_deadlines_come_back_with_their_tags() {
    bounded(30, || {
        let (seen, _log) = Seen::new();
        let server = server(&seen);
        let c = &clients(&server, 1)[0];
        let mut calls = Completions::new();
        calls.push(c.start_call(&ADD, &(2, 3), T).unwrap(), "add");
        calls.push(c.start_call(&ADD, &(u32::MAX, 1), T).unwrap(), "overflow");
        calls.push(c.start_call(&ADD_LATE, &1_000, Duration::from_millis(100)).unwrap(), "late");
        let mut seen_tags = Vec::new();
        while let Some((tag, outcome)) = calls.wait() {
            match tag {
                "add" => assert_eq!(outcome.unwrap(), 5),
                "overflow" => assert_eq!(outcome.unwrap_err().status(), Status::OUT_OF_RANGE),
                "late" => {
                    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::Status(Status::DEADLINE_EXCEEDED))
                }
                other => panic!("unknown tag {other}"),
            }
            seen_tags.push(tag);
        }
        seen_tags.sort_unstable();
        assert_eq!(seen_tags, ["add", "late", "overflow"]);

        // Calls of another response type go in a set of their own.
        let mut missing = Completions::new();
        missing.push(c.start_call(&MISSING, &"x".to_string(), T).unwrap(), 1u8);
        let (tag, outcome) = missing.wait().unwrap();
        assert_eq!((tag, outcome.unwrap_err().status()), (1, Status::NOT_FOUND));
    });
}

#[test]
fn wait_timeout_leaves_the_calls_in_the_set() {
    bounded(30, || {
        let (seen, _log) = Seen::new();
        let server = server(&seen);
        let c = &clients(&server, 1)[0];
        let mut calls = Completions::new();
        calls.push(c.start_call(&SLEEP, &300, T).unwrap(), ());
        let start = Instant::now();
        assert!(calls.wait_timeout(Duration::from_millis(50)).is_none(), "not answered yet");
        assert!(start.elapsed() >= Duration::from_millis(50));
        assert_eq!(calls.len(), 1, "the call stays in the set");
        let ((), outcome) = calls.wait_timeout(T).expect("answered within T");
        assert_eq!(outcome.unwrap(), 300);

        let mut raw = Completions::new();
        raw.push(c.start_call_raw(RAW_ECHO, b"x", T).unwrap(), 9);
        let mut out = vec![1, 2, 3];
        let (tag, outcome) = raw.wait_into_timeout(&mut out, T).unwrap();
        assert_eq!((tag, outcome.is_ok(), &out[..]), (9, true, &b"x"[..]));
    });
}

#[test]
fn dropping_the_set_or_cancel_all_cancels_its_calls() {
    bounded(30, || {
        let (seen, log) = Seen::new();
        let server = server(&seen);
        let c = &clients(&server, 1)[0];
        let mut calls = Completions::new();
        calls.push(c.start_call(&WAIT_CANCEL, &(), T).unwrap(), 1);
        assert_eq!(log.recv_timeout(T).unwrap(), "started");
        drop(calls);
        eventually("the handler sees the cancellation", || seen.cancelled.load(Ordering::SeqCst));
        eventually("nothing left open", || open_exchanges(c.peer()) == 0);

        seen.cancelled.store(false, Ordering::SeqCst);
        let mut calls = Completions::new();
        calls.push(c.start_call(&WAIT_CANCEL, &(), T).unwrap(), 2);
        assert_eq!(log.recv_timeout(T).unwrap(), "started");
        calls.cancel_all();
        assert!(calls.is_empty() && calls.wait().is_none());
        eventually("the handler sees the cancellation", || seen.cancelled.load(Ordering::SeqCst));
        // The set is usable again.
        calls.push(c.start_call(&WAIT_CANCEL, &(), Duration::from_millis(50)).unwrap(), 3);
        let (tag, outcome) = calls.wait().unwrap();
        assert_eq!((tag, outcome.unwrap_err().status()), (3, Status::DEADLINE_EXCEEDED));
    });
}

#[test]
fn the_set_moves_between_threads() {
    bounded(30, || {
        let (seen, _log) = Seen::new();
        let server = server(&seen);
        let clients = clients(&server, 4);
        let mut calls = Completions::new();
        let mut out = Vec::new();
        for round in 0..6 {
            for (i, c) in clients.iter().enumerate() {
                calls.push(
                    c.start_call_raw(RAW_ECHO, &request(i, round), Deadline::None).unwrap(),
                    (i, round),
                );
            }
            // Every other round is waited on by another thread (that parks there).
            let (back, got) = std::thread::scope(|s| {
                let wait = |mut calls: Completions<(usize, usize)>, mut out: Vec<u8>| {
                    let mut got = 0;
                    while let Some(((i, k), r)) = calls.wait_into(&mut out) {
                        r.unwrap();
                        assert_eq!(out, request(i, k));
                        got += 1;
                    }
                    (calls, got)
                };
                let taken = std::mem::take(&mut out);
                if round % 2 == 0 {
                    s.spawn(move || wait(calls, taken)).join().unwrap()
                } else {
                    wait(calls, taken)
                }
            });
            calls = back;
            assert_eq!(got, clients.len());
        }
    });
}
