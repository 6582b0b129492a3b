//! The hostile-peer suite (issue 10; SPEC.md §12.5) against tandem-std: each attack is played
//! by a raw peer speaking the wire directly (`tandem_testkit::attacks`) against a real server,
//! while a legitimate client on another connection measures its latency; each test asserts the
//! CLOSE status where one is due, the legitimate client's p99 and a bound on the live heap.
//! The tests themselves are shared with tandem-smol (`tandem_testkit::hostile_suite!`); this
//! file only provides the server. Run with `--test-threads=1` (the heap counter is
//! process-wide; the suite also serializes itself).

use std::time::Duration;

use tandem_std::tandem_core::Config;
use tandem_std::{Client, ClientConfig, EndpointConfig, Handlers, MethodId, Server, ServerConfig};
use tandem_testkit::attacks::{ECHO, HOLD, HOLD_STREAM, NOTE, TARGET_MODULE};
use tandem_testkit::hostile::{Setup, Target};

#[global_allocator]
static HEAP: tandem_testkit::heap::Counting = tandem_testkit::heap::Counting;

fn m(method: u32) -> MethodId {
    MethodId::new(TARGET_MODULE, method)
}

struct StdTarget {
    server: Server,
    client: Client,
}

impl Target for StdTarget {
    fn addr(&self) -> String {
        self.server.local_addr().to_string()
    }
    fn probe(&self) -> Result<(), String> {
        self.client.call_raw(m(ECHO), b"probe", Duration::from_secs(5)).map(drop).map_err(|e| e.to_string())
    }
    fn sessions_evicted(&self) -> u64 {
        self.server.stats().endpoint.evicted_memory
    }
}

fn target(setup: Setup) -> StdTarget {
    let handlers = Handlers::new()
        .raw_unary(m(ECHO), |_, req| Ok(req))
        // Held until cancelled (at most 10 s), the runtime's way: the handler is parked and its
        // pool worker serves others meanwhile.
        .raw_unary(m(HOLD), |ctx, _| {
            ctx.wait_cancelled(Duration::from_secs(10));
            Ok(Vec::new())
        })
        .raw_streaming(m(HOLD_STREAM), |ctx, _, _rx, _tx| {
            ctx.wait_cancelled(Duration::from_secs(10));
            Ok(())
        })
        .raw_notification(m(NOTE), |_, _| Ok(()));
    let mut config = ServerConfig::new("attacked");
    config.connection = if setup.runtime_defaults {
        Config { session_grace: tandem_testkit::hostile::GRACE, ..tandem_std::DEFAULT_CONNECTION }
    } else {
        tandem_testkit::hostile::config()
    };
    if let Some(b) = setup.budget {
        config.endpoint = EndpointConfig { session_memory_budget: b, ..EndpointConfig::default() };
    }
    let server = Server::bind("tcp://127.0.0.1:0", config, handlers).expect("bind");
    let addr = server.local_addr().to_string();
    let client = Client::connect(&addr, ClientConfig::new("legitimate"), Handlers::new()).expect("connect");
    StdTarget { server, client }
}

tandem_testkit::hostile_suite!(target);
