//! A UDP server's associations (SPEC.md §14): the inbox through which the server's one socket
//! hands each association its datagrams. (Layer 0: imports no other file of the crate.)

use core::task::{Context, Poll, Waker};
use std::collections::VecDeque;

/// First byte of a HELLO frame: a datagram starting with it may open an association.
pub const HELLO: u8 = 0x01;

/// Most datagrams queued for one association before its driver takes them; beyond, they are
/// dropped (as the network may drop them: the protocol retransmits).
pub const ASSOC_INBOX: usize = 256;

/// Datagrams for one server-side UDP association, filled by the server's receive loop
/// ([`open::datagram`](crate::open::datagram)) and read by the association's driver
/// ([`poll_read`](Self::poll_read)).
#[derive(Debug, Default)]
pub struct Inbox {
    queue: VecDeque<Vec<u8>>,
    waker: Option<Waker>,
    /// The association's driver has ended.
    closed: bool,
    /// The last datagram starting with HELLO, kept so that it can be handed to a new
    /// association when this one is superseded (SPEC.md §14.3).
    pub(crate) last_hello: Option<Vec<u8>>,
    /// Datagrams dropped because the queue was full.
    dropped: u64,
}

impl Inbox {
    /// Queues a datagram; false (dropped) when the queue is full or the association is over.
    pub fn push(&mut self, d: Vec<u8>) -> bool {
        if self.closed || self.queue.len() >= ASSOC_INBOX {
            self.dropped += 1;
            return false;
        }
        self.queue.push_back(d);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        true
    }

    /// The next datagram, copied into `buf`; datagrams larger than `buf` (or empty) are not
    /// ours and are dropped. Pending (the waker is kept) while the queue is empty.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<usize> {
        while let Some(d) = self.queue.pop_front() {
            if d.len() > buf.len() || d.is_empty() {
                continue;
            }
            let n = d.len();
            buf[..n].copy_from_slice(&d);
            if d.first() == Some(&HELLO) {
                self.last_hello = Some(d);
            }
            return Poll::Ready(n);
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The association's driver has ended: nothing more is queued.
    pub fn close(&mut self) {
        self.closed = true;
        self.queue.clear();
    }

    /// Datagrams dropped because the queue was full or the association was over.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: std::sync::Arc<Self>) {}
        }
        let waker = Box::leak(Box::new(Waker::from(std::sync::Arc::new(Noop))));
        Context::from_waker(waker)
    }

    #[test]
    fn an_inbox_is_bounded_drops_what_is_not_ours_and_keeps_the_last_hello() {
        let mut inbox = Inbox::default();
        let mut buf = [0u8; 8];
        assert_eq!(inbox.poll_read(&mut cx(), &mut buf), Poll::Pending);
        for i in 0..ASSOC_INBOX {
            assert!(inbox.push(vec![2, i as u8]));
        }
        assert!(!inbox.push(vec![2]), "full");
        assert_eq!(inbox.dropped(), 1);
        for _ in 0..ASSOC_INBOX {
            assert_eq!(inbox.poll_read(&mut cx(), &mut buf), Poll::Ready(2));
        }
        // Too large for the buffer, or empty: not a datagram of ours, skipped.
        inbox.push(vec![3; 9]);
        inbox.push(Vec::new());
        inbox.push(vec![HELLO, 7]);
        assert_eq!(inbox.poll_read(&mut cx(), &mut buf), Poll::Ready(2));
        assert_eq!(&buf[..2], &[HELLO, 7]);
        assert_eq!(inbox.last_hello.as_deref(), Some(&[HELLO, 7][..]));
        inbox.close();
        assert!(!inbox.push(vec![2]), "closed");
        assert_eq!(inbox.poll_read(&mut cx(), &mut buf), Poll::Pending);
    }
}
