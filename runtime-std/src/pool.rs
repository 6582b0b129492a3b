//! A fixed set of worker threads that run request handlers.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A bounded pool: `size` threads take jobs from one queue. The queue itself is bounded by the
/// connection limits (each job is one inbound exchange the core admitted).
pub(crate) struct Pool {
    tx: Mutex<Option<Sender<Job>>>,
}

impl Pool {
    /// Starts `size` (at least 1) workers named after `name`.
    pub(crate) fn new(size: usize, name: &str) -> Arc<Pool> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size.max(1) {
            let rx = Arc::clone(&rx);
            let spawned = thread::Builder::new().name(format!("{name}-worker-{i}")).spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!("cannot start worker thread: {e}");
            }
        }
        Arc::new(Pool { tx: Mutex::new(Some(tx)) })
    }

    /// Queues a job; returns false if the pool is shut down.
    pub(crate) fn submit(&self, job: Job) -> bool {
        match self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        }
    }

    /// Lets the workers exit once the queue is empty.
    pub(crate) fn shutdown(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            // Handlers are wrapped in catch_unwind by the caller; this is a second line.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}
