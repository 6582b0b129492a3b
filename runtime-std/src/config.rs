//! [`ServerConfig`] and [`ClientConfig`]: the settings every runtime has (defined once in
//! `tandem_runtime::configs!`), plus this runtime's handler pool. (Layer 0.)

tandem_runtime::configs! {
    server {
        /// Handlers running at once, shared by all connections (at least 1): about the number
        /// of cores the handlers may keep busy. A handler waiting inside the runtime (stream
        /// credit or items, the answer to a call it made,
        /// [`Ctx::wait_cancelled`](crate::Ctx::wait_cancelled),
        /// [`Ctx::blocking`](crate::Ctx::blocking)) is *parked* and does not count: the pool
        /// runs another handler meanwhile, on another thread (up to
        /// [`max_workers`](Self::max_workers)). Requests beyond it wait in per-connection
        /// queues served round-robin, and a connection with no handler running is served at
        /// once even when all `workers` are busy. Threads start on demand. Default 16.
        workers: usize = 16,
        /// Hard cap on the threads of the handler pool: `workers` plus those running in place
        /// of parked handlers. At the cap new requests wait (round-robin) until a handler
        /// finishes (logged once, counted in [`PoolStats::cap_hits`](crate::PoolStats)). The
        /// pool can serve every peer holding all its announced slots
        /// (`max_concurrent_calls + max_concurrent_streams`) with parked handlers for
        /// `(max_workers − workers) / slots` peers at once; if not even one peer's slots fit,
        /// the server announces less (logged). Default 1024.
        max_workers: usize = 1024,
    }
    client {
        /// Handlers of this client's connection running at once, on the client's own pool
        /// (threads start on demand; parked handlers do not count, as on a server's pool; at
        /// most 1024 threads). Default 4.
        workers: usize = 4,
    }
}
