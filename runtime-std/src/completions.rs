//! [`Completions`]: one thread waiting on many calls at once, across any number of
//! connections, and taking each as it completes. (Layer 2: imports `api`, `pool`.)
//!
//! A caller that keeps one call in flight on each of many connections would otherwise need a
//! thread per connection, each woken and parked once per call: with 1,000 connections that is
//! most of the process's time spent in the scheduler. Here every call has a waker of its own
//! that queues its slot and unparks the one waiting thread; that thread also takes over an I/O
//! thread's batch of wake-ups (`tandem_runtime::relay`), so the answers of one batch are taken
//! without a context switch each.

use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Wake;
use std::thread::{self, Thread, ThreadId};
use std::time::{Duration, Instant};

use tandem_runtime::relay;
use tandem_runtime::tandem_core::typed::NoError;
use tandem_runtime::threads::io;
use tandem_runtime::CallError;

use crate::api::PendingCall;
use crate::pool;

/// The slots whose calls were woken, and the thread to unpark when the first one is queued.
#[derive(Default)]
struct Ready {
    slots: Vec<u32>,
    thread: Option<Thread>,
}

/// One slot's waker (made once per slot and reused by every call it holds: waiting allocates
/// nothing in steady state).
struct SlotWake {
    index: u32,
    /// Queued and not yet polled: a second wake-up meanwhile queues nothing more.
    queued: AtomicBool,
    ready: Arc<Mutex<Ready>>,
}

fn lock(ready: &Mutex<Ready>) -> MutexGuard<'_, Ready> {
    // Nothing panics while holding it; if something did, the list is still a list.
    ready.lock().unwrap_or_else(|e| e.into_inner())
}

impl Wake for SlotWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let thread = {
            let mut r = lock(&self.ready);
            r.slots.push(self.index);
            // Only the first slot queued unparks: the waiter takes the whole list each time it
            // runs, so while the list is not empty it has not parked on it.
            if r.slots.len() == 1 {
                r.thread.clone()
            } else {
                None
            }
        };
        if let Some(t) = thread {
            t.unpark();
        }
    }
}

struct Slot<T, R, E> {
    call: Option<(PendingCall<R, E>, T)>,
    wake: Arc<SlotWake>,
    waker: Waker,
}

/// Calls in flight, each with a tag of the caller's, waited on together by one thread: the
/// blocking runtime's answer to "a task per connection". [`push`](Self::push) a started call
/// ([`Peer::start_call`](crate::Peer::start_call), [`Peer::start_call_raw`](crate::Peer::start_call_raw))
/// with its tag; [`wait`](Self::wait) (or [`wait_into`](Self::wait_into) for raw calls) returns
/// the tag and outcome of whichever call completes next.
///
/// The calls may be on any connections, and the set may move between threads. Waiting
/// allocates nothing in steady state (each slot's waker is made once and reused). Dropping the
/// set cancels the calls still in it, as dropping a [`PendingCall`] does. tandem-smol has no
/// counterpart: an async caller awaits many calls with its executor (a task per call, or
/// `futures`' `FuturesUnordered`).
///
/// ```no_run
/// use tandem_std::{Client, ClientConfig, Completions, Deadline, Handlers, MethodId};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// const ECHO: MethodId = MethodId::new(1, 1);
/// let clients = (0..100)
///     .map(|i| Client::connect("tcp://127.0.0.1:7000", ClientConfig::new(format!("c{i}")), Handlers::new()))
///     .collect::<Result<Vec<_>, _>>()?;
/// // One call in flight on every connection, from this one thread.
/// let mut calls = Completions::new();
/// for (i, c) in clients.iter().enumerate() {
///     calls.push(c.start_call_raw(ECHO, b"ping", Deadline::None)?, i);
/// }
/// let mut answer = Vec::new();
/// for _ in 0..10_000 {
///     let (i, outcome) = calls.wait_into(&mut answer).expect("a call is in flight");
///     outcome?;
///     // Next call on the connection that just answered.
///     calls.push(clients[i].start_call_raw(ECHO, b"ping", Deadline::None)?, i);
/// }
/// # Ok(())
/// # }
/// ```
pub struct Completions<T, R = Vec<u8>, E = NoError> {
    slots: Vec<Slot<T, R, E>>,
    free: Vec<u32>,
    /// Slots to poll, taken from `ready` (and new calls, polled first to register their waker).
    queue: VecDeque<u32>,
    ready: Arc<Mutex<Ready>>,
    /// The thread `ready` unparks (set by the first wait on each thread).
    waiter: Option<ThreadId>,
    len: usize,
}

impl<T, R, E> core::fmt::Debug for Completions<T, R, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Completions").field("in_flight", &self.len).finish()
    }
}

impl<T, R, E> Default for Completions<T, R, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, R, E> Completions<T, R, E> {
    /// An empty set.
    pub fn new() -> Self {
        Completions {
            slots: Vec::new(),
            free: Vec::new(),
            queue: VecDeque::new(),
            ready: Arc::new(Mutex::new(Ready::default())),
            waiter: None,
            len: 0,
        }
    }

    /// Calls in the set (pushed and not yet returned by a wait).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no call is in the set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a call in flight, returned with `tag` once it completes.
    ///
    /// # Panics
    ///
    /// If the set would hold more than `u32::MAX` calls at once.
    pub fn push(&mut self, call: PendingCall<R, E>, tag: T) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).expect("at most u32::MAX calls in one Completions");
                let wake = Arc::new(SlotWake {
                    index: i,
                    queued: AtomicBool::new(false),
                    ready: Arc::clone(&self.ready),
                });
                let waker = Waker::from(Arc::clone(&wake));
                self.slots.push(Slot { call: None, wake, waker });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.call = Some((call, tag));
        // Polled once by the next wait, which registers its waker; a wake-up before that
        // queues nothing more.
        slot.wake.queued.store(true, Ordering::Release);
        self.queue.push_back(index);
        self.len += 1;
    }

    /// Cancels every call in the set (CANCEL goes to each peer) and empties it.
    pub fn cancel_all(&mut self) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.call.take().is_some() {
                self.free.push(i as u32);
            }
        }
        self.queue.clear();
        self.len = 0;
    }

    /// Blocks until a call completes; `None` once the set is empty (or, with `until`, when
    /// it passes). `poll` is the call's own poll, for its kind of outcome.
    fn next<O>(
        &mut self,
        until: Option<Instant>,
        mut poll: impl FnMut(&mut PendingCall<R, E>, &mut Context<'_>) -> Poll<O>,
    ) -> Option<(T, O)> {
        if self.len == 0 {
            return None;
        }
        let me = thread::current();
        if self.waiter != Some(me.id()) {
            self.waiter = Some(me.id());
            lock(&self.ready).thread = Some(me);
        }
        let mut parked = None;
        loop {
            // The calls' polls take over the wake-ups of an I/O thread's batch (see `relay`):
            // they are this thread's own, queued here without a system call.
            let done = relay::taking_over(|| self.poll_queued(&mut poll));
            if done.is_some() {
                return done;
            }
            {
                let mut r = lock(&self.ready);
                self.queue.extend(r.slots.drain(..));
            }
            if !self.queue.is_empty() {
                continue;
            }
            // Runs the turns of the connections this thread just woke (their requests to
            // write) if their I/O threads have not yet, then parks (as a parked handler, if
            // this is a handler pool thread).
            io::help();
            if !lock(&self.ready).slots.is_empty() {
                continue;
            }
            parked.get_or_insert_with(pool::parked);
            match until {
                Some(t) => {
                    let now = Instant::now();
                    if now >= t {
                        return None;
                    }
                    thread::park_timeout(t - now);
                }
                None => thread::park(),
            }
        }
    }

    /// Polls the queued slots until one completes.
    fn poll_queued<O>(
        &mut self,
        poll: &mut impl FnMut(&mut PendingCall<R, E>, &mut Context<'_>) -> Poll<O>,
    ) -> Option<(T, O)> {
        while let Some(i) = self.queue.pop_front() {
            let slot = &mut self.slots[i as usize];
            // Cleared before the poll: a wake-up during or after it queues the slot again.
            slot.wake.queued.store(false, Ordering::Release);
            // An empty slot: a late wake-up of a call already returned or cancelled.
            let Some((call, _)) = slot.call.as_mut() else { continue };
            let mut cx = Context::from_waker(&slot.waker);
            if let Poll::Ready(out) = poll(call, &mut cx) {
                let (_, tag) = slot.call.take().expect("the slot polled holds a call");
                self.free.push(i);
                self.len -= 1;
                return Some((tag, out));
            }
        }
        None
    }
}

impl<T, R, E> Completions<T, R, E> {
    /// Blocks until one of the calls completes, and returns its tag and outcome (the decoded
    /// response, or why the call failed); `None` if the set is empty. The calls' deadlines
    /// bound the wait: a call whose deadline passes completes with `DeadlineExceeded`.
    pub fn wait(&mut self) -> Option<(T, Result<R, CallError<E>>)> {
        self.next(None, |call, cx| core::future::Future::poll(core::pin::Pin::new(&mut call.0), cx))
    }

    /// [`wait`](Self::wait), for at most `timeout`: `None` also when it passes first (the
    /// calls stay in the set; [`is_empty`](Self::is_empty) tells the two apart).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<(T, Result<R, CallError<E>>)> {
        let until = Instant::now() + timeout;
        self.next(Some(until), |call, cx| core::future::Future::poll(core::pin::Pin::new(&mut call.0), cx))
    }
}

impl<T, E> Completions<T, Vec<u8>, E> {
    /// [`wait`](Self::wait) for raw calls, writing the response into `out` (replacing its
    /// contents; emptied on an error), as [`PendingCall::wait_into`] does: with a reused
    /// `out`, no allocation per call.
    pub fn wait_into(&mut self, out: &mut Vec<u8>) -> Option<(T, Result<(), CallError<E>>)> {
        self.next(None, |call, cx| call.0.poll_into(cx, out))
    }

    /// [`wait_into`](Self::wait_into), for at most `timeout` (see
    /// [`wait_timeout`](Self::wait_timeout)).
    pub fn wait_into_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Option<(T, Result<(), CallError<E>>)> {
        let until = Instant::now() + timeout;
        self.next(Some(until), |call, cx| call.0.poll_into(cx, out))
    }
}
