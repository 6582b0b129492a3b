//! The connection drivers' protocol timers: one thread for the whole process that wakes a
//! driver when its earliest timeout is due. (Layer 0.)
//!
//! Why not `async_io::Timer`: while any async-io timer is registered, every turn of the
//! async-io reactor splits its timer map (`BTreeMap::split_off`), which allocates, and a
//! process with open connections always has their keep-alive timers registered, so every
//! socket event cost allocations (about four per unary call, both ends). An [`Alarm`] is
//! armed only when a driver's timeout moves *earlier* (traffic moves keep-alive and idle
//! timeouts later on every exchange; an alarm that rings early costs the driver one turn in
//! which nothing is due, then it is armed at the real instant), and ringing it neither
//! allocates nor touches the reactor. In steady state the timer thread sleeps.

use core::task::Waker;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;

/// Stale entries (of alarms re-armed earlier, rung, or dropped) tolerated in the heap beyond the
/// number of armed alarms before they are swept out: a sweep costs a pass over the heap, so it
/// runs only once the stale entries outnumber the live ones (amortised O(1) per arming).
const SWEEP_SLACK: usize = 1024;

/// Alarms currently armed (each has one live entry in the heap).
static ARMED: AtomicUsize = AtomicUsize::new(0);

/// A driver's alarm: rings (wakes the registered waker) at the instant it was last armed for.
pub(crate) struct Alarm {
    /// The instant it is armed for (`None`: disarmed or rung).
    at: Mutex<Option<Instant>>,
    waker: Mutex<Option<Waker>>,
    rung: AtomicBool,
}

impl Drop for Alarm {
    fn drop(&mut self) {
        if lock(&self.at).is_some() {
            ARMED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

struct Entry {
    at: Instant,
    alarm: Weak<Alarm>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// The timer thread's state: alarms by instant (earliest first), possibly stale.
struct Clock {
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    changed: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn clock() -> &'static Clock {
    static CLOCK: OnceLock<&'static Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let clock: &'static Clock =
            Box::leak(Box::new(Clock { heap: Mutex::new(BinaryHeap::new()), changed: Condvar::new() }));
        std::thread::Builder::new()
            .name("tandem-smol-timers".into())
            .spawn(move || clock.run())
            .expect("cannot start tandem-smol's timer thread");
        clock
    })
}

impl Clock {
    fn run(&self) {
        let mut heap = lock(&self.heap);
        loop {
            let now = Instant::now();
            while let Some(Reverse(top)) = heap.peek() {
                if top.at > now {
                    break;
                }
                let Some(Reverse(e)) = heap.pop() else { break };
                if let Some(alarm) = e.alarm.upgrade() {
                    alarm.ring_if_armed_for(e.at);
                }
            }
            heap = match heap.peek() {
                Some(Reverse(top)) => {
                    let wait = top.at.saturating_duration_since(Instant::now());
                    self.changed.wait_timeout(heap, wait).unwrap_or_else(|e| e.into_inner()).0
                }
                None => self.changed.wait(heap).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }
}

impl Alarm {
    /// A disarmed alarm.
    pub(crate) fn new() -> Arc<Alarm> {
        Arc::new(Alarm { at: Mutex::new(None), waker: Mutex::new(None), rung: AtomicBool::new(false) })
    }

    /// Arms it for `at` when that is earlier than the instant it is armed for (or it is not
    /// armed); a later instant leaves it as it is (it rings early, harmlessly).
    pub(crate) fn arm(self: &Arc<Self>, at: Instant) {
        {
            let mut armed = lock(&self.at);
            match *armed {
                Some(a) if a <= at => return,
                Some(_) => {}
                None => {
                    ARMED.fetch_add(1, Ordering::Relaxed);
                }
            }
            *armed = Some(at);
        }
        let clock = clock();
        let mut heap = lock(&clock.heap);
        if heap.len() > 2 * ARMED.load(Ordering::Relaxed) + SWEEP_SLACK {
            heap.retain(|Reverse(e)| e.alarm.upgrade().is_some_and(|a| *lock(&a.at) == Some(e.at)));
        }
        let earliest = heap.peek().map_or(true, |Reverse(top)| at < top.at);
        heap.push(Reverse(Entry { at, alarm: Arc::downgrade(self) }));
        drop(heap);
        if earliest {
            clock.changed.notify_one();
        }
    }

    /// Registers the task to wake (cloning the waker only when it changed), and whether the
    /// alarm rang since the last call.
    pub(crate) fn poll(&self, waker: &Waker) -> bool {
        {
            let mut w = lock(&self.waker);
            if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *w = Some(waker.clone());
            }
        }
        self.rung.swap(false, Ordering::AcqRel)
    }

    fn ring_if_armed_for(&self, at: Instant) {
        {
            let mut armed = lock(&self.at);
            if *armed != Some(at) {
                return; // re-armed earlier since, or already rung
            }
            *armed = None;
            ARMED.fetch_sub(1, Ordering::Relaxed);
        }
        self.rung.store(true, Ordering::Release);
        if let Some(w) = lock(&self.waker).as_ref() {
            w.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    fn wait_until(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    #[test]
    fn an_alarm_rings_once_at_its_instant_and_moves_only_earlier() {
        let (count, w) = waker();
        let alarm = Alarm::new();
        assert!(!alarm.poll(&w));
        alarm.arm(Instant::now() + Duration::from_secs(3600));
        // A later instant leaves it armed for the earlier one; an earlier one moves it.
        alarm.arm(Instant::now() + Duration::from_secs(7200));
        alarm.arm(Instant::now() + Duration::from_millis(20));
        assert!(wait_until(|| count.0.load(Ordering::SeqCst) >= 1), "the alarm never rang");
        assert!(alarm.poll(&w), "the ring is reported once");
        assert!(!alarm.poll(&w), "and only once");
        // Rung, it is disarmed: the next arming takes any instant.
        alarm.arm(Instant::now() + Duration::from_millis(10));
        assert!(wait_until(|| count.0.load(Ordering::SeqCst) >= 2), "the re-armed alarm never rang");
    }

    #[test]
    fn stale_entries_are_swept_so_the_heap_stays_proportional_to_armed_alarms() {
        let far = Instant::now() + Duration::from_secs(3600);
        let alarms: Vec<_> = (0..3000).map(|_| Alarm::new()).collect();
        // Each alarm armed, then moved earlier four times: four stale entries each.
        for step in 0..5u64 {
            for a in &alarms {
                a.arm(far - Duration::from_secs(step));
            }
        }
        let len = lock(&clock().heap).len();
        let armed = ARMED.load(Ordering::SeqCst);
        assert!(len <= 2 * armed + SWEEP_SLACK + 1, "{len} heap entries for {armed} armed alarms");
        drop(alarms);
        // Dropped alarms are no longer counted as armed.
        assert!(ARMED.load(Ordering::SeqCst) < 3000, "{}", ARMED.load(Ordering::SeqCst));
    }
}
