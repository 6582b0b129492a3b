//! A sender whose socket is full waits for it to become writable, and only that wakes it: a
//! driver drops readiness events that report writability alone unless its last turn left
//! bytes it could not write (`Cx::write_idle`). Here a server's handler floods its caller with
//! unreliable notifications (SIGNAL: nothing comes back for them) while the caller, a raw peer,
//! reads slowly and sends nothing more: the server's socket fills again and again, and only
//! writability can move its driver on. A lost write wake-up leaves bytes queued for ever and
//! the caller short of signals and without its response. Measured with that wake-up broken
//! on purpose (write-only events always dropped): the Unix test fails; over TCP the sender was
//! still woken in time by something else, so the TCP test covers only the working path.

use std::time::Duration;
use tandem_std::{Handlers, MethodId, Server, ServerConfig};
use tandem_testkit::wire::slow_reader;

const FLOOD: MethodId = MethodId::new(40, 1);
const BULK: MethodId = MethodId::new(40, 2);
const SIGNALS: usize = 400;
const SIZE: usize = 48 * 1024;

fn a_full_socket_is_woken_by_writability(addr: &str) {
    let handlers = Handlers::new().raw_unary(FLOOD, |ctx, _| {
        let payload = vec![3u8; SIZE];
        for _ in 0..SIGNALS {
            ctx.peer().signal_raw(BULK, &payload).map_err(|e| e.status())?;
        }
        Ok(Vec::new())
    });
    // (The raw peer's HELLO offers no session: no acknowledgements come back either.)
    let server = Server::bind(addr, ServerConfig::new("srv"), handlers).unwrap();
    let addr = server.local_addr().to_string();
    // 19 MiB, read 16 KiB at a time with a pause after each frame: the server waits for room
    // hundreds of times (a fraction of a second in all). Were writability lost, the driver would
    // wait until something else woke it — here only the keepalive, 10 s after the CALL (the
    // raw peer announces the default interval; measured with the wake-up broken on purpose:
    // 9.5 s) —, and the call would not be over in 5 s.
    let got =
        slow_reader(&addr, FLOOD.module, FLOOD.method, Duration::from_micros(50), Duration::from_secs(5));
    assert_eq!(got, Ok(SIGNALS));
}

#[test]
fn tcp_a_sender_with_a_full_socket_is_woken_by_writability() {
    a_full_socket_is_woken_by_writability("tcp://127.0.0.1:0");
}

#[test]
fn unix_a_sender_with_a_full_socket_is_woken_by_writability() {
    let dir = tempfile::tempdir().unwrap();
    a_full_socket_is_woken_by_writability(&format!("unix://{}/w.sock", dir.path().display()));
}
