//! The I/O threads' readiness wait: on Linux (and Android) epoll directly, through `nix`'s safe
//! wrappers; elsewhere the `polling` crate (kqueue, event ports). Nothing here knows tasks or
//! the protocol. (Layer 0 of [`threads`](super), beside `transport`.)
//!
//! **Why not `polling` on Linux too.** Every `polling::Poller::wait` costs five system calls on
//! Linux: it arms a `timerfd` for the timeout (`timerfd_settime` and an `epoll_ctl`), waits
//! (`epoll_pwait`), then clears its notification `eventfd` and re-arms it (`read`, `epoll_ctl`)
//! — whether or not a timeout was given or a notification arrived. An I/O thread waits two or
//! three times per unary round trip (the server's turn, the client's turn, the sleep), so those
//! were a dozen system calls per call out of ~24, against 4 for a raw socket ping-pong
//! (measured with `strace -c -f` on `compare --child tandem-std tcp profile-rtt`). Here a wait
//! is one `epoll_wait` with a millisecond timeout (rounded up: the I/O threads' timers are
//! protocol timers — heartbeats, idle, retransmission, drain — for which a millisecond is
//! fine; the API's deadlines are timed by the waiting callers, not here), the notification
//! `eventfd` is registered edge-triggered once and read only after it fired.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

pub(crate) use imp::{Events, Poller};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use super::*;
    use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
    use nix::sys::eventfd::{EfdFlags, EventFd};

    /// The key of the notification `eventfd` (task keys are table indices, far below it).
    const NOTIFY: u64 = u64::MAX;

    /// Most events one wait returns (the others stay ready for the next wait).
    const BATCH: usize = 1024;

    /// One epoll instance and its notification `eventfd`.
    pub(crate) struct Poller {
        epoll: Epoll,
        notify: EventFd,
    }

    /// The events of one wait: the keys of the ready descriptors.
    pub(crate) struct Events {
        list: Vec<EpollEvent>,
        len: usize,
    }

    impl Events {
        pub(crate) fn new() -> Self {
            Events { list: vec![EpollEvent::empty(); BATCH], len: 0 }
        }

        pub(crate) fn clear(&mut self) {
            self.len = 0;
        }

        /// The keys of the descriptors that were ready (not the notification), each with
        /// whether writability was all it reported (no data, hang-up or error).
        pub(crate) fn keys(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
            self.list[..self.len]
                .iter()
                .filter(|e| e.data() != NOTIFY)
                .map(|e| (e.data() as usize, e.events() == EpollFlags::EPOLLOUT))
        }
    }

    impl Poller {
        pub(crate) fn new() -> io::Result<Self> {
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
            let notify = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
            epoll.add(&notify, EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, NOTIFY))?;
            Ok(Poller { epoll, notify })
        }

        /// epoll reports edges of both directions: nothing is ever re-armed.
        pub(crate) fn supports_edge(&self) -> bool {
            true
        }

        /// Registers `fd` under `key`, edge-triggered, readable and writable. The caller
        /// removes it ([`Self::delete`]) before closing it (otherwise the epoll instance keeps
        /// a stale entry until every duplicate of the descriptor is closed).
        pub(crate) fn add_edge(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
            let flags =
                EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLET;
            Ok(self.epoll.add(fd, EpollEvent::new(flags, key as u64))?)
        }

        /// Registers `fd` with nothing armed (unused on Linux: every descriptor is edge).
        pub(crate) fn add_oneshot(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
            Ok(self.epoll.add(fd, EpollEvent::new(EpollFlags::EPOLLONESHOT, key as u64))?)
        }

        /// Arms a oneshot registration for `read` / `write`.
        pub(crate) fn modify(
            &self,
            fd: BorrowedFd<'_>,
            key: usize,
            read: bool,
            write: bool,
        ) -> io::Result<()> {
            let mut flags = EpollFlags::EPOLLONESHOT;
            if read {
                flags |= EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
            }
            if write {
                flags |= EpollFlags::EPOLLOUT;
            }
            Ok(self.epoll.modify(fd, &mut EpollEvent::new(flags, key as u64))?)
        }

        pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
            Ok(self.epoll.delete(fd)?)
        }

        /// Wakes the current or next [`Self::wait`].
        pub(crate) fn notify(&self) -> io::Result<()> {
            match self.notify.write(1) {
                // The counter is full: a wake-up is pending anyway.
                Ok(_) | Err(nix::errno::Errno::EAGAIN) => Ok(()),
                Err(e) => Err(e.into()),
            }
        }

        /// Waits until a registered descriptor is ready, [`Self::notify`] is called, or
        /// `timeout` passes (rounded up to a millisecond; `None`: no timeout).
        pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
            let ms = match timeout {
                None => EpollTimeout::NONE,
                Some(t) if t.is_zero() => EpollTimeout::ZERO,
                Some(t) => {
                    let ms = t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128);
                    EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
                }
            };
            events.len = 0;
            events.len = self.epoll.wait(&mut events.list, ms)?;
            if events.list[..events.len].iter().any(|e| e.data() == NOTIFY) {
                // Edge-triggered: reset the counter so that it never fills up.
                let _ = self.notify.read();
            }
            Ok(())
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use super::*;
    use polling::{Event, PollMode};

    /// `polling`'s poller (kqueue, event ports, …).
    pub(crate) struct Poller(polling::Poller);

    /// The events of one wait.
    pub(crate) struct Events(polling::Events);

    impl Events {
        pub(crate) fn new() -> Self {
            Events(polling::Events::new())
        }

        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }

        /// The keys of the descriptors that were ready, each with whether writability was all
        /// it reported (never said here: `polling` registrations are oneshot, every event counts).
        pub(crate) fn keys(&self) -> impl Iterator<Item = (usize, bool)> + '_ {
            self.0.iter().map(|e| (e.key, false))
        }
    }

    impl Poller {
        pub(crate) fn new() -> io::Result<Self> {
            polling::Poller::new().map(Poller)
        }

        pub(crate) fn supports_edge(&self) -> bool {
            self.0.supports_edge()
        }

        #[allow(unsafe_code)]
        pub(crate) fn add_edge(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
            // SAFETY: `Poller::add` requires that the descriptor be removed from the poller
            // before it is closed: the only caller, `io::Registered`, owns the descriptor's
            // source and deletes the descriptor before the source is dropped or handed out.
            unsafe { self.0.add_with_mode(&fd, Event::all(key), PollMode::Edge) }
        }

        #[allow(unsafe_code)]
        pub(crate) fn add_oneshot(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
            // SAFETY: as in `add_edge`.
            unsafe { self.0.add(&fd, Event::none(key)) }
        }

        pub(crate) fn modify(
            &self,
            fd: BorrowedFd<'_>,
            key: usize,
            read: bool,
            write: bool,
        ) -> io::Result<()> {
            self.0.modify(fd, Event::new(key, read, write))
        }

        pub(crate) fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
            self.0.delete(fd)
        }

        pub(crate) fn notify(&self) -> io::Result<()> {
            self.0.notify()
        }

        pub(crate) fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
            self.0.wait(&mut events.0, timeout).map(|_| ())
        }
    }
}
