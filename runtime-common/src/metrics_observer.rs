//! [`MetricsObserver`]: the [`Observer`] that reports through the `metrics` facade (feature
//! `metrics`). (Layer 1: imports `observe`.)

use tandem_core::ConnectionError;

use crate::observe::{Finished, Observer, PeerEvent};

/// Reports peers and exchanges through the [`metrics`] facade, to whatever recorder the
/// application installed (a Prometheus exporter, StatsD, ...):
///
/// | metric | kind | labels |
/// |---|---|---|
/// | `tandem_exchanges_total` | counter | `method`, `side` (`served`/`called`), `kind` (`call`/`notify`/`stream`/`signal`), `status` (`OK`, `DEADLINE_EXCEEDED`, ...) |
/// | `tandem_exchange_duration_seconds` | histogram | `method`, `side`, `kind` |
/// | `tandem_peers_connected` | gauge | — |
/// | `tandem_connections_total` | counter | `resumed` (`true`/`false`) |
/// | `tandem_disconnections_total` | counter | `reason`: the status describing the end (`OK` for a graceful close, `UNAVAILABLE` for a lost transport, `IDLE_TIMEOUT`, ...) |
///
/// `method` is the declared path (`service.method`) when the method was declared, else
/// `module/method` (raw methods, and calls answered by inline handlers on the serving side).
/// Each label set is created once per distinct method and status; recording allocates only as
/// the recorder does.
///
/// Installed in either runtime's `ServerConfig::observer` or `ClientConfig::observer`:
///
/// ```
/// use std::sync::Arc;
/// let observer: Arc<dyn tandem_runtime::Observer> = Arc::new(tandem_runtime::MetricsObserver::default());
/// # drop(observer);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct MetricsObserver {
    _private: (),
}

/// A status's name (`OK`, `DEADLINE_EXCEEDED`, ...; `UNKNOWN_<code>` for codes this version
/// does not know): a bounded label set.
fn status_label(s: tandem_core::Status) -> String {
    match s.info() {
        Some((name, ..)) => name.to_string(),
        None => format!("UNKNOWN_{}", s.0),
    }
}

impl Observer for MetricsObserver {
    fn connected(&self, peer: &PeerEvent<'_>) {
        metrics::gauge!("tandem_peers_connected").increment(1.0);
        metrics::counter!("tandem_connections_total", "resumed" => if peer.resumed { "true" } else { "false" })
            .increment(1);
    }

    fn disconnected(&self, _peer: &PeerEvent<'_>, reason: &ConnectionError) {
        metrics::gauge!("tandem_peers_connected").decrement(1.0);
        let reason = status_label(reason.status());
        metrics::counter!("tandem_disconnections_total", "reason" => reason).increment(1);
    }

    fn finished(&self, e: &Finished<'_>) {
        let method = e.method.to_string();
        metrics::counter!(
            "tandem_exchanges_total",
            "method" => method.clone(),
            "side" => e.side.as_str(),
            "kind" => e.kind.as_str(),
            "status" => status_label(e.status)
        )
        .increment(1);
        metrics::histogram!(
            "tandem_exchange_duration_seconds",
            "method" => method,
            "side" => e.side.as_str(),
            "kind" => e.kind.as_str()
        )
        .record(e.duration.as_secs_f64());
    }
}
