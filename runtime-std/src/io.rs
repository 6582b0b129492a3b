//! The I/O threads: a small fixed set of threads, shared by every connection, listener and UDP
//! socket of the process, each waiting on the readiness of its sockets with one
//! [`Poller`](polling::Poller) and running the turn of each [`Task`] that is ready, woken (its
//! [`Waker`]) or due (the earliest timeout of its tasks is the poll timeout). Nothing here
//! knows the protocol. (Layer 1: imports `transport`.)
//!
//! **Why `polling` rather than `mio`.** `polling` registers any descriptor, so the sockets stay
//! std's and socket2's own types (mio wants its own socket types, or `SourceFd` wrappers);
//! it has the cross-thread wake-up built in (`Poller::notify`; mio needs a `Waker`
//! registration); its default oneshot mode fits a loop that re-arms exactly the readiness a
//! turn found missing; and it is already what `async-io`, hence tandem-smol, runs on, so both
//! runtimes wait on the same, well-kept code. Its price is one `unsafe` call, see
//! [`Registered`].
//!
//! Threads: `available_parallelism()` clamped to 1..=4, started on first use and never ended
//! (like a runtime's reactor). A new task goes to the thread with the fewest tasks.

use core::task::Waker;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Wake;
use std::time::{Duration, Instant};

use polling::{Event, Events, Poller};
use slab::Slab;

use crate::transport::Interest;

/// Work the I/O threads run: a connection's driver, a listener, a UDP server socket.
pub(crate) trait Task: Send {
    /// One turn. `cx.fired`: a readiness event arrived for the task's registered descriptor
    /// since its last turn (oneshot: that descriptor is disarmed until re-armed).
    fn turn(&mut self, cx: &Cx<'_>) -> Next;
}

/// What a task's turn learns about its run.
pub(crate) struct Cx<'a> {
    pub(crate) io: &'a Arc<Io>,
    pub(crate) key: usize,
    pub(crate) waker: &'a Waker,
    pub(crate) fired: bool,
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
    woken: Vec<usize>,
    new: Vec<Box<dyn Task>>,
}

fn threads() -> &'static [Arc<Io>] {
    static THREADS: OnceLock<Vec<Arc<Io>>> = OnceLock::new();
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

/// Runs `task` on the I/O thread with the fewest tasks.
pub(crate) fn spawn(task: Box<dyn Task>) {
    let io =
        threads().iter().min_by_key(|io| io.tasks.load(Ordering::Relaxed)).expect("at least one I/O thread");
    io.tasks.fetch_add(1, Ordering::Relaxed);
    lock(&io.inbox).new.push(task);
    let _ = io.poller.notify();
}

fn lock(m: &Mutex<Inbox>) -> std::sync::MutexGuard<'_, Inbox> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// The I/O thread this thread is (its address), to skip the notification of a wake-up
    /// from its own loop.
    static CURRENT: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// Wakes one task: queues its key on its thread and notifies the poller (unless the thread
/// wakes its own task, which it sees before it polls again).
struct TaskWaker {
    io: Arc<Io>,
    key: usize,
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        lock(&self.io.inbox).woken.push(self.key);
        if CURRENT.with(|c| c.get()) != Arc::as_ptr(&self.io) as usize {
            let _ = self.io.poller.notify();
        }
    }
}

struct Slot {
    task: Box<dyn Task>,
    waker: Arc<TaskWaker>,
    as_waker: Waker,
    deadline: Option<Instant>,
    fired: bool,
    scheduled: bool,
}

impl Io {
    fn run(self: Arc<Self>) {
        CURRENT.with(|c| c.set(Arc::as_ptr(&self) as usize));
        let mut tasks: Slab<Slot> = Slab::new();
        let mut timers: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
        let mut events = Events::new();
        let (mut ready, mut again, mut inbox) = (Vec::new(), Vec::new(), Inbox::default());
        loop {
            let timeout = if ready.is_empty() {
                timers.peek().map(|Reverse((t, _))| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            events.clear();
            if let Err(e) = self.poller.wait(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(error = %e, "I/O thread: poll failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let schedule = |slot: &mut Slot, key: usize, ready: &mut Vec<usize>| {
                if !core::mem::replace(&mut slot.scheduled, true) {
                    ready.push(key);
                }
            };
            for ev in events.iter() {
                if let Some(slot) = tasks.get_mut(ev.key) {
                    slot.fired = true;
                    schedule(slot, ev.key, &mut ready);
                }
            }
            {
                let mut shared = lock(&self.inbox);
                core::mem::swap(&mut inbox.woken, &mut shared.woken);
                core::mem::swap(&mut inbox.new, &mut shared.new);
            }
            for key in inbox.woken.drain(..) {
                if let Some(slot) = tasks.get_mut(key) {
                    slot.waker.queued.store(false, Ordering::Release);
                    schedule(slot, key, &mut ready);
                }
            }
            for task in inbox.new.drain(..) {
                let entry = tasks.vacant_entry();
                let key = entry.key();
                let waker = Arc::new(TaskWaker { io: self.clone(), key, queued: AtomicBool::new(false) });
                let as_waker = Waker::from(waker.clone());
                entry.insert(Slot { task, waker, as_waker, deadline: None, fired: false, scheduled: true });
                ready.push(key);
            }
            let now = Instant::now();
            while let Some(&Reverse((t, key))) = timers.peek() {
                if t > now {
                    break;
                }
                timers.pop();
                if let Some(slot) = tasks.get_mut(key).filter(|s| s.deadline == Some(t)) {
                    slot.deadline = None;
                    schedule(slot, key, &mut ready);
                }
            }
            for key in ready.drain(..) {
                let Some(slot) = tasks.get_mut(key) else { continue };
                slot.scheduled = false;
                let cx =
                    Cx { io: &self, key, waker: &slot.as_waker, fired: core::mem::take(&mut slot.fired) };
                let task = &mut slot.task;
                let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.turn(&cx)))
                    .unwrap_or_else(|_| {
                        tracing::error!(key, "an I/O task panicked (a bug): dropping it");
                        Next::Done
                    });
                match next {
                    Next::Done => {
                        drop(tasks.remove(key));
                        self.tasks.fetch_sub(1, Ordering::Relaxed);
                    }
                    Next::Again => {
                        slot.scheduled = true;
                        again.push(key);
                    }
                    Next::Wait(at) => {
                        if at != slot.deadline {
                            slot.deadline = at;
                            if let Some(t) = at {
                                timers.push(Reverse((t, key)));
                            }
                        }
                    }
                }
            }
            core::mem::swap(&mut ready, &mut again);
            if timers.len() > 2 * tasks.len() + 64 {
                // Entries of timeouts that moved since: drop them.
                timers.retain(|Reverse((t, key))| tasks.get(*key).is_some_and(|s| s.deadline == Some(*t)));
            }
            if tasks.is_empty() && tasks.capacity() > 64 {
                tasks.shrink_to_fit();
            }
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
    armed: Interest,
}

impl<S: Source> Registered<S> {
    /// Registers `source` for the task of `cx` (no readiness armed yet).
    pub(crate) fn new(source: S, cx: &Cx<'_>) -> io::Result<Self> {
        if let Some(fd) = source.source_fd() {
            // SAFETY: `Poller::add` requires that the descriptor be removed from the poller
            // before it is closed. `source` owns the descriptor and closes it only when
            // dropped; it is reachable only through this `Registered`, which removes the
            // descriptor from the poller first in `Drop` and in `into_inner` (the only ways
            // `source` leaves it), and `source_fd` returns the same descriptor for as long as
            // `source` lives.
            #[allow(unsafe_code)]
            unsafe {
                cx.io.poller.add(&fd, Event::none(cx.key))?;
            }
        }
        Ok(Registered { source: Some(source), io: cx.io.clone(), key: cx.key, armed: Interest::default() })
    }

    pub(crate) fn get(&self) -> &S {
        self.source.as_ref().expect("present until dropped")
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        self.source.as_mut().expect("present until dropped")
    }

    /// A readiness event arrived: the descriptor is disarmed (oneshot).
    pub(crate) fn fired(&mut self) {
        self.armed = Interest::default();
    }

    /// Waits for `want` too: what is armed stays armed until its event arrives (re-arms the
    /// descriptor only when that adds anything).
    pub(crate) fn arm(&mut self, mut want: Interest) {
        want |= self.armed;
        if want == self.armed {
            return;
        }
        let Some(fd) = self.source.as_ref().and_then(S::source_fd) else { return };
        let ev = Event::new(self.key, want.read, want.write);
        match self.io.poller.modify(fd, ev) {
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
