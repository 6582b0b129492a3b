//! Connecting: the client configuration from the command line's options, and the connection.

use std::time::{Duration, Instant};

use tandem_std::{Client, ClientConfig, Credentials, Deadline, Handlers, TlsClientConfig};

use crate::fail::{self, Failure, Outcome};
use crate::ConnArgs;

/// The default of `--timeout` for connecting and for each call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `addr` with `tcp://` in front when it names no transport.
pub fn normalize(addr: &str) -> String {
    if addr.contains("://") {
        addr.to_string()
    } else {
        format!("tcp://{addr}")
    }
}

/// The client configuration `args` ask for.
pub fn config(args: &ConnArgs) -> Outcome<ClientConfig> {
    let mut c = ClientConfig::new(args.name.clone());
    // A tool reports a lost connection rather than reconnecting behind the user's back.
    c.resume = false;
    c.connect_timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if let Some(token) = &args.auth {
        c.auth = Credentials::token(token.as_bytes());
    }
    let tls_err = |e: tandem_std::Error| Failure::usage(e.to_string());
    let mut tls = TlsClientConfig::new();
    if let Some(ca) = &args.ca {
        tls = tls.trust_ca_pem_file(ca).map_err(tls_err)?.without_system_roots();
    }
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        tls = tls.client_cert_pem_files(cert, key).map_err(tls_err)?;
    }
    c.tls = tls;
    Ok(c)
}

/// A connection to `addr`, and how long connecting took.
pub fn connect(args: &ConnArgs, addr: &str) -> Outcome<(Client, Duration)> {
    let addr = normalize(addr);
    let config = config(args)?;
    let started = Instant::now();
    let client = Client::connect(&addr, config, Handlers::new()).map_err(|e| fail::connect(&addr, e))?;
    Ok((client, started.elapsed()))
}

/// The deadline of one call or notification.
pub fn call_deadline(args: &ConnArgs) -> Duration {
    args.timeout.unwrap_or(DEFAULT_TIMEOUT)
}

/// The deadline of a stream: `--timeout` when given, otherwise none.
pub fn stream_deadline(args: &ConnArgs) -> Deadline {
    args.timeout.map_or(Deadline::None, Deadline::After)
}
