//! The I/O threads: a small fixed set of threads, shared by every connection, listener and UDP
//! socket of the process, each waiting on the readiness of its sockets with one
//! poller (`poller.rs`) and running the turn of each task that is ready, woken (its
//! [`Waker`]) or due (the earliest timeout of its tasks is the poll timeout). Nothing here
//! knows the protocol. (Layer 1 of [`threads`](super): imports `transport`, `poller`; the
//! crate's `relay`.)
//!
//! **Why our own thin poller rather than `mio`.** `Poller` (`poller.rs`: epoll through
//! `nix` on Linux, the `polling` crate elsewhere) registers any descriptor, so the sockets stay
//! std's and socket2's own types (mio wants its own socket types, or `SourceFd` wrappers); it
//! has the cross-thread wake-up built in (`Poller::notify`); and on Linux one wait is one
//! `epoll_wait` (`poller.rs` says why `polling` itself is not used there).
//!
//! Threads: `available_parallelism()` clamped to 1..=4, started on first use and never ended
//! (like a runtime's reactor), shared by both runtimes' connections. A new task goes to the
//! thread with the fewest tasks.
//!
//! The waiters that a thread's turns resolve are woken once its batch of turns is over
//! (`wake_later`): an executor that sleeps is then woken once per batch, not once per answer
//! (the first waiter that runs wakes the rest from its own thread: `relay`).

use core::task::Waker;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Wake;
use std::time::{Duration, Instant};

use super::poller::{Events, Poller};
use super::slots::{trim, trim_heap, Slots};
use crate::relay;

use super::transport::Interest;

/// Work the I/O threads run: a connection's driver, a listener, a UDP server socket.
pub(crate) trait Task: Send {
    /// One turn. `cx.fired`: a readiness event arrived for the task's registered descriptor
    /// since its last turn (oneshot mode: that descriptor is disarmed until re-armed). With
    /// edge-triggered readiness a turn must go on until the operation it waits for would
    /// block (or return [`Next::Again`]).
    fn turn(&mut self, cx: &Cx<'_>) -> Next;
}

/// What a task's turn learns about its run.
pub(crate) struct Cx<'a> {
    pub(crate) io: &'a Arc<Io>,
    pub(crate) key: usize,
    pub(crate) waker: &'a Waker,
    pub(crate) fired: bool,
    /// Set by the task: a readiness event reporting only writability is dropped (see
    /// [`Cx::write_idle`]).
    write_idle: &'a AtomicBool,
}

impl Cx<'_> {
    /// Says whether the task waits for its descriptor to become writable. With edge-triggered
    /// readiness a socket reports writability after every read of the peer's, so a task that
    /// is not waiting to write would be woken — and would read the socket for nothing — once
    /// per message it sends; a task that says it is idle (`true`) is not. A turn starts with
    /// `false` (every event counts while it runs: it may block on a write); set it at the end
    /// of a turn that left nothing waiting for writability, on an edge-triggered registration
    /// only (oneshot ones must see every event to be re-armed).
    pub(crate) fn write_idle(&self, idle: bool) {
        self.write_idle.store(idle, Ordering::SeqCst);
    }
}

/// What a task wants after its turn.
pub(crate) enum Next {
    /// Nothing until readiness, a wake-up or this instant.
    Wait(Option<Instant>),
    /// More work right away (after the other ready tasks had their turn).
    Again,
    /// The task is over: it is dropped.
    Done,
}

/// One I/O thread, as other threads reach it.
pub(crate) struct Io {
    poller: Poller,
    inbox: Mutex<Inbox>,
    tasks: AtomicUsize,
}

#[derive(Default)]
struct Inbox {
    /// Tasks woken (or run by a helper) since the thread last looked.
    woken: Vec<usize>,
    /// New tasks, and whether waking threads may help them.
    new: Vec<(Box<dyn Task>, bool)>,
    /// `Some(until)` while the thread waits in the poller (`until`: its timeout, `None`: none);
    /// only then does a wake-up need `Poller::notify`.
    sleeping: Option<Option<Instant>>,
}

static THREADS: OnceLock<Vec<Arc<Io>>> = OnceLock::new();

/// Tasks on the I/O threads now, process-wide: the driver of every connection of either
/// runtime until it has finished (one that is closing, lingering after its CLOSE (SPEC.md §14.8)
/// or draining its socket still counts), every listener and UDP server socket. A diagnostic:
/// e.g. a test that closed connections waits for it to come down before it measures memory.
pub fn tasks() -> usize {
    THREADS.get().map_or(0, |t| t.iter().map(|io| io.tasks.load(Ordering::Relaxed)).sum())
}

fn threads() -> &'static [Arc<Io>] {
    THREADS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        (0..n)
            .map(|i| {
                let io = Arc::new(Io {
                    poller: Poller::new()
                        .expect("cannot create an epoll/kqueue instance for tandem's I/O threads"),
                    inbox: Mutex::default(),
                    tasks: AtomicUsize::new(0),
                });
                let me = io.clone();
                std::thread::Builder::new()
                    .name(format!("tandem-io-{i}"))
                    .spawn(move || me.run())
                    .expect("cannot start tandem's I/O thread");
                io
            })
            .collect()
    })
}

/// Runs `task` on the I/O thread with the fewest tasks. `helped`: threads outside the I/O
/// threads that wake it remember it to run its turn themselves in [`help`].
pub(crate) fn spawn(task: Box<dyn Task>, helped: bool) {
    let io =
        threads().iter().min_by_key(|io| io.tasks.load(Ordering::Relaxed)).expect("at least one I/O thread");
    io.tasks.fetch_add(1, Ordering::Relaxed);
    lock(&io.inbox).new.push((task, helped));
    let _ = io.poller.notify();
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Io {
    /// Tells the thread to look at task `key`: woken, or run by a helper whose next timeout is
    /// `at`. Notifies the poller only if the thread sleeps and must wake earlier than it would.
    fn tell(&self, key: usize, at: Option<Option<Instant>>) {
        let mut ib = lock(&self.inbox);
        ib.woken.push(key);
        let notify = match (ib.sleeping, at) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(until), Some(at)) => at.is_some_and(|a| until.map_or(true, |u| a < u)),
        };
        drop(ib);
        if notify {
            let _ = self.poller.notify();
        }
    }
}

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;
/// Running, and woken meanwhile: it runs again after this turn.
const REWOKEN: u8 = 3;
const DONE: u8 = 4;

/// A task as every thread reaches it: its I/O thread runs its turns, and so may a thread that
/// woke it and is about to block ([`help`]), whichever claims it first.
struct Cell {
    io: Arc<Io>,
    key: usize,
    state: AtomicU8,
    /// A readiness event arrived since the last turn.
    fired: AtomicBool,
    /// The task does not wait for writability ([`Cx::write_idle`]).
    write_idle: AtomicBool,
    /// Threads outside the I/O threads that wake it may run its turns ([`help`]).
    helped: bool,
    task: Mutex<Option<Box<dyn Task>>>,
    /// The timeout a helper's turn asked for, for the I/O thread's timers.
    help_at: Mutex<Option<Option<Instant>>>,
}

thread_local! {
    /// The I/O thread this thread is (its address; 0: none).
    static CURRENT: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
    /// Tasks this (non-I/O) thread woke and may run itself before it blocks.
    static HELP: RefCell<Vec<Arc<Cell>>> = const { RefCell::new(Vec::new()) };
}

/// Most tasks a thread remembers to help.
const HELP_MAX: usize = 4;

thread_local! {
    /// On an I/O thread: the wakers of the waiters its turns resolved since it last woke them
    /// ([`wake_later`]).
    static DEFERRED: RefCell<Vec<Waker>> = const { RefCell::new(Vec::new()) };
}

/// Most wakers an I/O thread holds back before it wakes them ([`wake_later`]).
const DEFER_MAX: usize = 64;

/// Wakes `waker` — on an I/O thread, once its current batch of turns is over (or
/// [`DEFER_MAX`] wakers are held), elsewhere at once. Why: waking a task of an executor that
/// sleeps costs a system call and a context switch (smol's `block_on`, a parked thread); the
/// replies one batch of turns resolves then wake that executor once and find all their tasks
/// ready, instead of waking it once per reply — with 1,000 connections each answering a call
/// at a time, the executor otherwise parks and is unparked (`futex`) for nearly every reply.
/// A waiter is delayed by at most the rest of the batch, which is bounded (each ready task
/// gets one turn per batch, each turn at most `ROUNDS` rounds).
pub(crate) fn wake_later(waker: Waker) {
    if CURRENT.with(|c| c.get()) == 0 {
        return waker.wake();
    }
    let full = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        d.push(waker);
        d.len() >= DEFER_MAX
    });
    if full {
        wake_deferred();
    }
}

/// Wakes what [`wake_later`] held back on this thread.
fn wake_deferred() {
    // Taken out first: a waker may run code that defers again (it then goes to the new list).
    let Some(mut list) = DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        (!d.is_empty()).then(|| core::mem::take(&mut *d))
    }) else {
        return;
    };
    if list.len() == 1 {
        list.drain(..).for_each(Waker::wake);
    } else {
        // Several: a waiter that runs meanwhile (the first wake-up may switch to its thread)
        // wakes the rest from there (`relay`).
        relay::hand_over(&mut list);
        while let Some(w) = relay::next() {
            w.wake();
        }
    }
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_empty() {
            // Keep the capacity: deferring allocates nothing in steady state.
            *d = list;
        }
    });
}

impl Wake for Cell {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.mark() {
            return;
        }
        // (A wake-up from the task's own I/O thread notifies nothing: that thread is awake.)
        self.io.tell(self.key, None);
        if self.helped && CURRENT.with(|c| c.get()) == 0 {
            HELP.with(|h| {
                let mut h = h.borrow_mut();
                if h.len() < HELP_MAX && !h.iter().any(|c| Arc::ptr_eq(c, self)) {
                    h.push(self.clone());
                }
            });
        }
    }
}

/// What a turn asked for, once the task's state moved on.
struct Ran {
    /// The task wants a turn again now (it is queued).
    again: bool,
    done: bool,
    at: Option<Instant>,
}

impl Cell {
    /// Marks the task queued; true if it was idle (someone must now run it).
    fn mark(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => QUEUED,
                RUNNING => REWOKEN,
                _ => return false,
            };
            match self.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return s == IDLE,
                Err(x) => s = x,
            }
        }
    }

    /// Runs one turn if the task is queued and nobody else claimed it.
    fn run(self: &Arc<Self>) -> Option<Ran> {
        self.state.compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire).ok()?;
        let waker = Waker::from(self.clone());
        let mut task = lock(&self.task);
        let next = match task.as_mut() {
            None => Next::Done,
            Some(t) => {
                // Before anything the turn writes: an event after a write that blocks counts.
                self.write_idle.store(false, Ordering::SeqCst);
                let cx = Cx {
                    io: &self.io,
                    key: self.key,
                    waker: &waker,
                    fired: self.fired.swap(false, Ordering::AcqRel),
                    write_idle: &self.write_idle,
                };
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.turn(&cx))).unwrap_or_else(|_| {
                    tracing::error!(key = self.key, "an I/O task panicked (a bug): dropping it");
                    Next::Done
                })
            }
        };
        if let Next::Done = next {
            *task = None;
            drop(task);
            self.state.store(DONE, Ordering::Release);
            return Some(Ran { again: false, done: true, at: None });
        }
        drop(task);
        let at = match next {
            Next::Wait(at) => at,
            _ => None,
        };
        let again = matches!(next, Next::Again)
            || self.state.compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire).is_err();
        if again {
            self.state.store(QUEUED, Ordering::Release);
        }
        Some(Ran { again, done: false, at })
    }
}

/// Runs the turns of the tasks this thread woke, if their I/O threads have not yet: called by
/// a thread about to block waiting for them (a caller that just queued a request writes it
/// itself instead of waiting for the I/O thread to wake up). Only tasks whose connection's
/// [`Dispatch::CALLERS_HELP`](super::Dispatch::CALLERS_HELP) is true are remembered. Never on
/// an I/O thread (where it does nothing: they remember nothing).
pub fn help() {
    if HELP.with(|h| h.borrow().is_empty()) {
        return;
    }
    let mut cells = HELP.with(|h| core::mem::take(&mut *h.borrow_mut()));
    for cell in cells.drain(..) {
        if let Some(r) = cell.run() {
            // The I/O thread keeps the timers and the table: tell it what the turn asked for.
            let at = if r.again || r.done { None } else { Some(r.at) };
            if at.is_some() {
                *lock(&cell.help_at) = at;
            }
            cell.io.tell(cell.key, at);
        }
    }
    HELP.with(|h| {
        let mut h = h.borrow_mut();
        if h.is_empty() {
            *h = cells;
        }
    });
}

struct Slot {
    cell: Arc<Cell>,
    deadline: Option<Instant>,
    scheduled: bool,
}

impl Slot {
    fn set_deadline(
        &mut self,
        at: Option<Instant>,
        key: usize,
        timers: &mut BinaryHeap<Reverse<(Instant, usize)>>,
    ) {
        if at != self.deadline {
            self.deadline = at;
            if let Some(t) = at {
                timers.push(Reverse((t, key)));
            }
        }
    }
}

impl Io {
    fn run(self: Arc<Self>) {
        CURRENT.with(|c| c.set(Arc::as_ptr(&self) as usize));
        let mut slots: Slots<Slot> = Slots::new();
        let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
        let mut events = Events::new();
        let (mut ready, mut again, mut inbox) = (Vec::new(), Vec::new(), Inbox::default());
        let schedule = |slot: &mut Slot, key: usize, ready: &mut Vec<usize>| {
            if !core::mem::replace(&mut slot.scheduled, true) {
                ready.push(key);
            }
        };
        loop {
            let mut timeout =
                timers.peek().map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()));
            {
                let mut ib = lock(&self.inbox);
                if ready.is_empty() && ib.woken.is_empty() && ib.new.is_empty() {
                    ib.sleeping = Some(timers.peek().map(|Reverse((t, _))| *t));
                } else {
                    timeout = Some(Duration::ZERO);
                }
            }
            events.clear();
            if let Err(e) = self.poller.wait(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "I/O thread: poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            {
                let mut ib = lock(&self.inbox);
                ib.sleeping = None;
                core::mem::swap(&mut inbox.woken, &mut ib.woken);
                core::mem::swap(&mut inbox.new, &mut ib.new);
            }
            for (key, write_only) in events.keys() {
                if let Some(slot) = slots.get_mut(key) {
                    if write_only && slot.cell.write_idle.load(Ordering::SeqCst) {
                        continue;
                    }
                    slot.cell.fired.store(true, Ordering::Release);
                    if slot.cell.mark() || slot.cell.state.load(Ordering::Acquire) == QUEUED {
                        schedule(slot, key, &mut ready);
                    }
                }
            }
            for key in inbox.woken.drain(..) {
                let Some(slot) = slots.get_mut(key) else { continue };
                let helped = lock(&slot.cell.help_at).take();
                if let Some(at) = helped {
                    slot.set_deadline(at, key, &mut timers);
                }
                match slot.cell.state.load(Ordering::Acquire) {
                    QUEUED => schedule(slot, key, &mut ready),
                    DONE => {
                        slots.remove(key);
                        self.tasks.fetch_sub(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            for (task, helped) in inbox.new.drain(..) {
                let key = slots.insert(|key| {
                    let cell = Arc::new(Cell {
                        io: self.clone(),
                        key,
                        state: AtomicU8::new(QUEUED),
                        fired: AtomicBool::new(false),
                        write_idle: AtomicBool::new(false),
                        helped,
                        task: Mutex::new(Some(task)),
                        help_at: Mutex::new(None),
                    });
                    Slot { cell, deadline: None, scheduled: true }
                });
                ready.push(key);
            }
            let now = Instant::now();
            while let Some(&Reverse((t, key))) = timers.peek() {
                if t > now {
                    break;
                }
                timers.pop();
                if let Some(slot) = slots.get_mut(key).filter(|s| s.deadline == Some(t)) {
                    slot.deadline = None;
                    if slot.cell.mark() || slot.cell.state.load(Ordering::Acquire) == QUEUED {
                        schedule(slot, key, &mut ready);
                    }
                }
            }
            for key in ready.drain(..) {
                let Some(slot) = slots.get_mut(key) else { continue };
                slot.scheduled = false;
                let Some(ran) = slot.cell.run() else { continue };
                if ran.done {
                    slots.remove(key);
                    self.tasks.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
                slot.set_deadline(ran.at, key, &mut timers);
                if ran.again {
                    slot.scheduled = true;
                    again.push(key);
                }
            }
            wake_deferred();
            core::mem::swap(&mut ready, &mut again);
            if timers.len() > 2 * slots.len() + 64 {
                // Entries of timeouts that moved since: drop them.
                timers.retain(|Reverse((t, key))| slots.get(*key).is_some_and(|s| s.deadline == Some(*t)));
            }
            // What a burst of tasks made grow is given back once it is over (the task table
            // shrinks itself as tasks end), down to what the tasks left may need: the timers
            // hold up to the threshold of the `retain` above plus a batch's new entries (twice
            // that is kept), a task is in `ready` or `again` at most once, and is woken about
            // once per batch (or once per turn a helper ran).
            let n = slots.len();
            trim_heap(&mut timers, 2 * (2 * n + 64));
            trim(&mut ready, n);
            trim(&mut again, n);
            trim(&mut inbox.woken, 2 * n);
            trim(&mut inbox.new, 0);
        }
    }
}

/// Something whose descriptor an I/O thread can wait on.
pub(crate) trait Source {
    /// The descriptor (`None`: nothing to register). Must stay the same while registered.
    fn source_fd(&self) -> Option<BorrowedFd<'_>>;
}

/// `source`, registered with the poller of the I/O thread running task `key`: its readiness
/// events go to that task. Deregistered before `source` is dropped or handed out.
pub(crate) struct Registered<S: Source> {
    source: Option<S>,
    io: Arc<Io>,
    key: usize,
    /// Edge-triggered (epoll, kqueue): every readiness change is reported, nothing to re-arm.
    /// Otherwise oneshot: `armed` is what waits now.
    edge: bool,
    armed: Interest,
}

impl<S: Source> Registered<S> {
    /// Registers `source` for the task of `cx`: edge-triggered for both directions where the
    /// poller supports it, else oneshot with nothing armed yet.
    pub(crate) fn new(source: S, cx: &Cx<'_>) -> io::Result<Self> {
        let edge = cx.io.poller.supports_edge();
        if let Some(fd) = source.source_fd() {
            // The poller must forget the descriptor before it is closed: `source` owns the
            // descriptor and closes it only when dropped; it is reachable only through this
            // `Registered`, which removes the descriptor from the poller first in `Drop` and
            // in `into_inner` (the only ways `source` leaves it), and `source_fd` returns the
            // same descriptor for as long as `source` lives.
            if edge {
                cx.io.poller.add_edge(fd, cx.key)?;
            } else {
                cx.io.poller.add_oneshot(fd, cx.key)?;
            }
        }
        Ok(Registered {
            source: Some(source),
            io: cx.io.clone(),
            key: cx.key,
            edge,
            armed: Interest::default(),
        })
    }

    pub(crate) fn get(&self) -> &S {
        self.source.as_ref().expect("present until dropped")
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        self.source.as_mut().expect("present until dropped")
    }

    /// Whether the registration is edge-triggered (both directions, never disarmed).
    pub(crate) fn is_edge(&self) -> bool {
        self.edge
    }

    /// A readiness event arrived: the descriptor is disarmed (oneshot).
    pub(crate) fn fired(&mut self) {
        self.armed = Interest::default();
    }

    /// Waits for `want` too: what is armed stays armed until its event arrives (re-arms the
    /// descriptor only when that adds anything).
    pub(crate) fn arm(&mut self, mut want: Interest) {
        want |= self.armed;
        if self.edge || want == self.armed {
            return;
        }
        let Some(fd) = self.source.as_ref().and_then(S::source_fd) else { return };
        match self.io.poller.modify(fd, self.key, want.read, want.write) {
            Ok(()) => self.armed = want,
            Err(e) => tracing::warn!(error = %e, "cannot wait for readiness"),
        }
    }

    /// Deregisters and hands the source out.
    pub(crate) fn into_inner(mut self) -> S {
        self.deregister();
        self.source.take().expect("present until dropped")
    }

    fn deregister(&mut self) {
        if let Some(fd) = self.source.as_ref().and_then(S::source_fd) {
            let _ = self.io.poller.delete(fd);
        }
    }
}

impl<S: Source> Drop for Registered<S> {
    fn drop(&mut self) {
        if self.source.is_some() {
            self.deregister();
        }
    }
}

/// A waker that does nothing (set as a connection's driver waker while its own turn runs).
pub(crate) fn noop_waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: OnceLock<Waker> = OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop)))
}
