//! The handler pool: threads that run request handlers, shared by every connection of a server
//! (or by a client's one connection), scheduled fairly between connections. (Layer 0.)
//!
//! # Design
//!
//! A blocking handler API means a handler that waits holds a thread while it waits. A plain
//! fixed pool therefore lets a peer that stays within its announced limits take every thread
//! with slow handlers or streams it never reads (issue 10: 8 connections × 16 slow calls starved
//! every other client for 30 s). This pool prevents that with three rules:
//!
//! 1. **Fair queuing.** Every connection has its own queue (a [`Lane`]). Workers take jobs from
//!    the lanes round-robin, one job per turn, so a connection with a long backlog delays
//!    another connection's request by at most one job per backlogged connection, not by the
//!    whole backlog.
//! 2. **Waiting releases the worker (managed blocking).** `workers` bounds the handlers
//!    *running*. A handler that waits inside the runtime — for stream credit or an item, for
//!    the answer to a call it made, for transmit-queue room, anything that waits through
//!    `block_on`, [`Ctx::wait_cancelled`](crate::Ctx::wait_cancelled) or
//!    [`Ctx::blocking`](crate::Ctx::blocking) — is *parked*: it stops counting as running, and
//!    the pool starts the next job on another thread (an idle one, or a new one). When it stops
//!    waiting it runs on; the running count may then exceed `workers` briefly, which only stops
//!    new jobs from starting until it is back under.
//! 3. **A peer with nothing running is served at once.** When `workers` handlers are running
//!    (say, CPU-bound ones, or handlers that block outside the runtime with `thread::sleep`),
//!    a job from a connection that has no handler running still starts, on an extra thread.
//!    So no set of peers can make another peer's request wait for their handlers to finish.
//!
//! Threads are bounded: the pool never has more than `max_threads` (a hard cap; see
//! [`ServerConfig::max_workers`](crate::ServerConfig::max_workers)), and the handlers of one
//! connection are bounded by the limits the server announces to it
//! (`max_concurrent_calls + max_concurrent_streams`, enforced by the core), plus its running
//! signal handlers (at most `max_concurrent_calls`, `tandem_runtime::handlers`). At the cap,
//! jobs wait in their lanes (still round-robin); the first time the pool hits it a warning is
//! logged, and every time is counted ([`PoolStats::cap_hits`]). Threads beyond `workers` that
//! stay idle for [`IDLE_THREAD_KEEPALIVE`] (1 s) exit.
//!
//! Nothing here knows sockets or the protocol: a lane is a queue of closures, filled by the
//! I/O threads that drive the connections.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// A unit of work: one handler run. Called with `true` when the pool refuses it (shut down):
/// the job must then only report that it did not run.
pub(crate) type Job = Box<dyn FnOnce(bool) + Send + 'static>;

/// How long a thread beyond `workers` stays idle before it exits.
pub(crate) const IDLE_THREAD_KEEPALIVE: Duration = Duration::from_secs(1);

/// A snapshot of a handler pool's counters ([`Server::handler_pool`](crate::Server::handler_pool),
/// [`Client::handler_pool`](crate::Client::handler_pool)). tandem-std only: tandem-smol runs
/// handlers on the executor its application chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Threads alive now (running, parked or idle).
    pub threads: usize,
    /// Handlers running now (not parked).
    pub running: usize,
    /// Handlers parked now: waiting inside the runtime, their worker released.
    pub parked: usize,
    /// Jobs queued, waiting for a thread.
    pub queued: usize,
    /// Most threads alive at once so far.
    pub peak_threads: usize,
    /// Times a job could not start because the pool was at its thread cap.
    pub cap_hits: u64,
}

/// Limits of one pool.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolLimits {
    /// Handlers running at once (parked ones excluded); at least 1.
    pub(crate) workers: usize,
    /// Hard cap on threads; at least `workers`.
    pub(crate) max_threads: usize,
}

/// Makes the limits announced to every peer ones the pool can honour: a peer holding all its
/// slots (`max_concurrent_calls + max_concurrent_streams`) with parked handlers must fit under
/// the thread cap next to the `workers` that serve everyone else. If it does not, the server
/// (or client) announces less: both limits are lowered in proportion, and a warning says so.
pub(crate) fn fit_announced(config: &mut tandem_runtime::tandem_core::Config, limits: PoolLimits, who: &str) {
    let workers = limits.workers.max(1);
    let room = u64::try_from(limits.max_threads.max(workers) - workers).unwrap_or(u64::MAX).max(1);
    let (calls, streams) = (u64::from(config.max_concurrent_calls), u64::from(config.max_concurrent_streams));
    let slots = calls + streams;
    if slots <= room {
        return;
    }
    let new_calls = if calls == 0 { 0 } else { (calls * room / slots).max(1) };
    let new_streams = (streams * room / slots).min(room - new_calls.min(room));
    tracing::warn!(
        max_workers = limits.max_threads,
        workers,
        calls,
        streams,
        new_calls,
        new_streams,
        "{who}: the handler pool cannot hold one peer's announced max_concurrent_calls + \
         max_concurrent_streams next to its workers; announcing less (raise max_workers to \
         announce the configured limits)"
    );
    config.max_concurrent_calls = u32::try_from(new_calls).unwrap_or(u32::MAX);
    config.max_concurrent_streams = u32::try_from(new_streams).unwrap_or(u32::MAX);
}

/// The pool's owner handle (a server or a client); dropping it does not stop the pool,
/// [`Pool::shutdown`] does.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

/// One connection's queue in the pool. Dropping it lets the pool forget the lane once its
/// queued jobs have run.
pub(crate) struct Lane {
    inner: Arc<Inner>,
    id: u64,
}

struct Inner {
    st: Mutex<State>,
    /// Idle workers wait here.
    work: Condvar,
    name: String,
    limits: PoolLimits,
}

#[derive(Default)]
struct State {
    lanes: HashMap<u64, LaneState>,
    /// Lanes with queued jobs, in round-robin order; stale entries (lanes emptied or gone)
    /// are skipped.
    ready: VecDeque<u64>,
    next_lane: u64,
    /// Jobs running (not parked).
    running: usize,
    parked: usize,
    queued: usize,
    threads: usize,
    idle: usize,
    /// Idle workers notified and not yet awake.
    waking: usize,
    /// Threads started and not yet looking for work.
    starting: usize,
    spawned: u64,
    peak_threads: usize,
    cap_hits: u64,
    cap_warned: bool,
    shutdown: bool,
}

#[derive(Default)]
struct LaneState {
    queue: VecDeque<Job>,
    running: usize,
    parked: usize,
    /// Listed in `State::ready`.
    listed: bool,
    /// The `Lane` handle was dropped: forget the lane once idle.
    closed: bool,
}

impl LaneState {
    fn idle(&self) -> bool {
        self.queue.is_empty() && self.running == 0 && self.parked == 0
    }
}

thread_local! {
    /// The pool and lane of the job this thread runs, and whether it is parked now.
    static CURRENT: RefCell<Option<(Arc<Inner>, u64, bool)>> = const { RefCell::new(None) };
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    inner.st.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// A pool with no threads yet; they start on demand.
    pub(crate) fn new(limits: PoolLimits, name: &str) -> Pool {
        let limits = PoolLimits {
            workers: limits.workers.max(1),
            max_threads: limits.max_threads.max(limits.workers.max(1)),
        };
        let inner = Inner { st: Mutex::default(), work: Condvar::new(), name: name.to_string(), limits };
        Pool { inner: Arc::new(inner) }
    }

    /// A new lane (one per connection).
    pub(crate) fn lane(&self) -> Lane {
        let mut st = lock(&self.inner);
        st.next_lane += 1;
        let id = st.next_lane;
        st.lanes.insert(id, LaneState::default());
        Lane { inner: Arc::clone(&self.inner), id }
    }

    /// Refuses new jobs; threads exit once every queued job has run.
    pub(crate) fn shutdown(&self) {
        lock(&self.inner).shutdown = true;
        self.inner.work.notify_all();
    }

    /// The pool's counters.
    pub(crate) fn stats(&self) -> PoolStats {
        let st = lock(&self.inner);
        PoolStats {
            threads: st.threads,
            running: st.running,
            parked: st.parked,
            queued: st.queued,
            peak_threads: st.peak_threads,
            cap_hits: st.cap_hits,
        }
    }
}

impl Lane {
    /// Queues a job; once the pool is shut down, the job is called with `true` (refused) at
    /// once instead.
    pub(crate) fn submit(&self, job: Job) {
        let inner = &self.inner;
        let mut st = lock(inner);
        let shutdown = st.shutdown;
        let Some(l) = st.lanes.get_mut(&self.id).filter(|_| !shutdown) else {
            drop(st);
            return job(true);
        };
        l.queue.push_back(job);
        let list = !l.listed;
        l.listed = true;
        if list {
            st.ready.push_back(self.id);
        }
        st.queued += 1;
        inner.kick(&mut st);
    }
}

impl Drop for Lane {
    fn drop(&mut self) {
        let mut st = lock(&self.inner);
        if let Some(l) = st.lanes.get_mut(&self.id) {
            l.closed = true;
            if l.idle() {
                st.forget(self.id);
            }
        }
    }
}

impl State {
    /// Whether a job of a lane with `lane_running` handlers running may start now.
    fn may_start(&self, workers: usize, lane_running: usize) -> bool {
        self.running < workers || lane_running == 0 || self.shutdown
    }

    /// Takes the next job, round-robin over the lanes; `None` if no job may start now.
    fn take(&mut self, workers: usize) -> Option<(u64, Job)> {
        // Skip at most one full turn over the listed lanes.
        for _ in 0..self.ready.len() {
            let id = self.ready.pop_front()?;
            let Some(l) = self.lanes.get(&id) else { continue };
            if l.queue.is_empty() {
                if let Some(l) = self.lanes.get_mut(&id) {
                    l.listed = false;
                }
                continue;
            }
            if !self.may_start(workers, l.running) {
                // Not its turn while the pool is full and it has a handler running.
                self.ready.push_back(id);
                continue;
            }
            let l = self.lanes.get_mut(&id)?;
            let job = l.queue.pop_front()?;
            l.running += 1;
            if l.queue.is_empty() {
                l.listed = false;
            } else {
                self.ready.push_back(id);
            }
            self.queued -= 1;
            self.running += 1;
            return Some((id, job));
        }
        None
    }

    /// Whether some queued job may start now.
    fn has_startable(&self, workers: usize) -> bool {
        if self.queued == 0 {
            return false;
        }
        if self.running < workers || self.shutdown {
            return true;
        }
        self.ready.iter().any(|id| self.lanes.get(id).is_some_and(|l| l.running == 0 && !l.queue.is_empty()))
    }

    fn job_done(&mut self, lane: u64) {
        self.running -= 1;
        if let Some(l) = self.lanes.get_mut(&lane) {
            l.running -= 1;
            if l.closed && l.idle() {
                self.forget(lane);
            }
        }
    }

    /// Removes a lane, giving the tables' memory back once they are mostly empty (after a
    /// burst of connections).
    fn forget(&mut self, lane: u64) {
        self.lanes.remove(&lane);
        let (lanes, ready) = (self.lanes.len(), self.ready.len());
        if self.lanes.capacity() > 64 && lanes * 4 < self.lanes.capacity() {
            self.lanes.shrink_to(lanes * 2);
        }
        if self.ready.capacity() > 64 && ready * 4 < self.ready.capacity() {
            self.ready.shrink_to(ready * 2);
        }
    }
}

impl Inner {
    /// Makes sure a thread will look for work if some job may start: wakes an idle worker,
    /// or starts a thread (below the cap). Each worker that takes a job kicks again, so a
    /// burst of jobs wakes as many threads as it needs, one after another (and never more:
    /// while one is on its way, nothing more is woken or started).
    fn kick(self: &Arc<Self>, st: &mut State) {
        let limits = self.limits;
        if st.waking + st.starting > 0 || !st.has_startable(limits.workers) {
            return;
        }
        if st.idle > st.waking {
            st.waking += 1;
            self.work.notify_one();
            return;
        }
        if st.threads >= limits.max_threads {
            st.cap_hits += 1;
            if !st.cap_warned {
                st.cap_warned = true;
                tracing::warn!(
                    pool = %self.name,
                    max_threads = limits.max_threads,
                    parked = st.parked,
                    queued = st.queued,
                    "handler pool at its thread cap: new requests wait for a handler to finish \
                     (raise ServerConfig::max_workers, or lower the announced \
                     max_concurrent_calls/max_concurrent_streams); logged once, counted in PoolStats"
                );
            }
            return;
        }
        st.spawned += 1;
        let me = Arc::clone(self);
        let name = format!("{}-worker-{}", self.name, st.spawned);
        match thread::Builder::new().name(name).spawn(move || me.work()) {
            Ok(_) => {
                st.threads += 1;
                st.starting += 1;
                st.peak_threads = st.peak_threads.max(st.threads);
            }
            Err(e) => tracing::error!(pool = %self.name, "cannot start a handler thread: {e}"),
        }
    }

    /// A worker thread's life.
    fn work(self: Arc<Self>) {
        let workers = self.limits.workers;
        let mut st = lock(&self);
        st.starting -= 1;
        loop {
            if let Some((lane, job)) = st.take(workers) {
                self.kick(&mut st);
                drop(st);
                CURRENT.with(|c| *c.borrow_mut() = Some((Arc::clone(&self), lane, false)));
                // Handlers are wrapped in catch_unwind by the caller; this is a second line.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(false)));
                CURRENT.with(|c| *c.borrow_mut() = None);
                st = lock(&self);
                st.job_done(lane);
                continue;
            }
            if st.shutdown && st.queued == 0 {
                break;
            }
            // Threads beyond `workers` (not counting parked ones) leave when idle for long.
            let excess = st.threads - st.parked > workers;
            st.idle += 1;
            let (g, timeout) = if excess {
                let (g, r) =
                    self.work.wait_timeout(st, IDLE_THREAD_KEEPALIVE).unwrap_or_else(|e| e.into_inner());
                (g, r.timed_out())
            } else {
                (self.work.wait(st).unwrap_or_else(|e| e.into_inner()), false)
            };
            st = g;
            st.idle -= 1;
            st.waking = st.waking.saturating_sub(1);
            if timeout && st.threads - st.parked > workers && !st.has_startable(workers) {
                break;
            }
        }
        st.threads -= 1;
        if st.cap_warned && st.threads < self.limits.max_threads / 2 {
            // Warn again if the cap is reached in a later episode.
            st.cap_warned = false;
        }
    }

    fn park(self: &Arc<Self>, lane: u64) {
        let mut st = lock(self);
        st.running -= 1;
        st.parked += 1;
        if let Some(l) = st.lanes.get_mut(&lane) {
            l.running -= 1;
            l.parked += 1;
        }
        self.kick(&mut st);
    }

    fn unpark(&self, lane: u64) {
        let mut st = lock(self);
        st.running += 1;
        st.parked -= 1;
        if let Some(l) = st.lanes.get_mut(&lane) {
            l.running += 1;
            l.parked -= 1;
        }
    }
}

/// While alive, the current handler is parked (see the module docs). Created by
/// [`parked`]; a no-op outside a pool thread, or when already parked.
pub(crate) struct Parked(Option<(Arc<Inner>, u64)>);

/// Marks the current thread's handler as waiting until the guard is dropped, so that the pool
/// can run other handlers meanwhile. Use around every wait that may last (condition
/// variables, `thread::park`, blocking I/O); not needed around short critical sections.
pub(crate) fn parked() -> Parked {
    let cur = CURRENT.with(|c| match c.borrow_mut().as_mut() {
        Some((inner, lane, parked)) if !*parked => {
            *parked = true;
            Some((Arc::clone(inner), *lane))
        }
        _ => None,
    });
    if let Some((inner, lane)) = &cur {
        inner.park(*lane);
    }
    Parked(cur)
}

impl Drop for Parked {
    fn drop(&mut self) {
        if let Some((inner, lane)) = self.0.take() {
            inner.unpark(lane);
            CURRENT.with(|c| {
                if let Some((_, _, parked)) = c.borrow_mut().as_mut() {
                    *parked = false;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::channel;
    use std::time::Instant;

    fn pool(workers: usize, max_threads: usize) -> Pool {
        Pool::new(PoolLimits { workers, max_threads }, "test")
    }

    #[test]
    fn lanes_are_served_round_robin() {
        let p = pool(1, 1);
        let (a, b) = (p.lane(), p.lane());
        let (tx, rx) = channel();
        // Hold the only worker until both lanes have queued their jobs.
        let (go_tx, go_rx) = channel::<()>();
        let (started_tx, started_rx) = channel::<()>();
        a.submit(Box::new(move |_| {
            started_tx.send(()).unwrap();
            let _ = go_rx.recv();
        }));
        started_rx.recv().unwrap();
        for i in 0..3 {
            let tx = tx.clone();
            a.submit(Box::new(move |_| tx.send(("a", i)).unwrap()));
        }
        for i in 0..3 {
            let tx = tx.clone();
            b.submit(Box::new(move |_| tx.send(("b", i)).unwrap()));
        }
        go_tx.send(()).unwrap();
        let order: Vec<_> = (0..6).map(|_| rx.recv().unwrap().0).collect();
        assert_eq!(order, ["a", "b", "a", "b", "a", "b"], "one job per lane per turn");
        p.shutdown();
    }

    #[test]
    fn a_lane_with_nothing_running_starts_beyond_workers() {
        let p = pool(1, 4);
        let (a, b) = (p.lane(), p.lane());
        let (release_tx, release_rx) = channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let r = Arc::clone(&release_rx);
        a.submit(Box::new(move |_| {
            let _ = r.lock().unwrap().recv();
        }));
        // A second job of `a` must wait (the pool is full and `a` has one running) ...
        let (tx, rx) = channel();
        let t = tx.clone();
        a.submit(Box::new(move |_| t.send("a2").unwrap()));
        // ... while `b`, with nothing running, starts at once on an extra thread.
        b.submit(Box::new(move |_| tx.send("b").unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "b");
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "a2 waits for a's first job");
        release_tx.send(()).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "a2");
        p.shutdown();
    }

    #[test]
    fn parked_handlers_release_their_worker_up_to_the_cap() {
        let p = pool(2, 6);
        let lane = p.lane();
        let started = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        for _ in 0..8 {
            let (s, r) = (Arc::clone(&started), Arc::clone(&release_rx));
            lane.submit(Box::new(move |_| {
                s.fetch_add(1, Ordering::SeqCst);
                let _p = parked();
                let _ = r.lock().unwrap().recv();
            }));
        }
        let end = Instant::now() + Duration::from_secs(5);
        while started.load(Ordering::SeqCst) < 6 && Instant::now() < end {
            thread::sleep(Duration::from_millis(1));
        }
        thread::sleep(Duration::from_millis(50));
        assert_eq!(started.load(Ordering::SeqCst), 6, "parked handlers free workers, up to max_threads");
        let s = p.stats();
        assert_eq!((s.threads, s.parked, s.queued), (6, 6, 2));
        assert!(s.cap_hits > 0);
        for _ in 0..8 {
            release_tx.send(()).unwrap();
        }
        let end = Instant::now() + Duration::from_secs(5);
        while (started.load(Ordering::SeqCst) < 8 || p.stats().queued > 0) && Instant::now() < end {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(started.load(Ordering::SeqCst), 8);
        p.shutdown();
    }

    #[test]
    fn a_shut_down_pool_refuses_jobs_at_once() {
        let p = pool(1, 1);
        let lane = p.lane();
        p.shutdown();
        let (tx, rx) = channel();
        lane.submit(Box::new(move |refused| tx.send(refused).unwrap()));
        assert_eq!(rx.try_recv(), Ok(true), "called at once, refused");
    }

    #[test]
    fn excess_threads_exit_when_idle() {
        let p = pool(1, 8);
        let lanes: Vec<_> = (0..4).map(|_| p.lane()).collect();
        let (release_tx, release_rx) = channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        for l in &lanes {
            let r = Arc::clone(&release_rx);
            l.submit(Box::new(move |_| {
                let _ = r.lock().unwrap().recv();
            }));
        }
        let end = Instant::now() + Duration::from_secs(5);
        while p.stats().running < 4 && Instant::now() < end {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(p.stats().threads, 4);
        for _ in 0..4 {
            release_tx.send(()).unwrap();
        }
        let end = Instant::now() + IDLE_THREAD_KEEPALIVE * 5;
        while p.stats().threads > 1 && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(p.stats().threads, 1, "threads beyond `workers` exit after the keepalive");
        drop(lanes);
        p.shutdown();
    }
}
