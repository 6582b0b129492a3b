//! The protocol on the blocking runtime ([`tandem_std`]): its service, and the caller-side
//! checks of every exchange type.

use crate::{
    big_message, demo, ensure, fresh_tag, median, CallerReport, Exchange, Hold, Journal, Outcome, Who, NOTE,
    RTT_SAMPLES, STREAM_ITEMS, T,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_std::{
    Blocking, CallError, Ctx, HandlerError, Handlers, Peer, Status, StreamReceiver, StreamSender,
};

/// Waits until the exchange is cancelled or `millis` pass (parked: the handler's pool worker
/// serves others meanwhile); true when cancelled.
fn hold(ctx: &Ctx, millis: u64) -> bool {
    ctx.wait_cancelled(Duration::from_millis(millis))
}

/// The demo's service on tandem-std: every handler, recording into the journal.
struct Demo {
    who: Who,
    journal: Arc<Journal>,
}

impl demo::BlockingServer<Blocking> for Demo {
    fn ping(&self, _: Ctx, n: u64) -> Result<u64, HandlerError> {
        Ok(n)
    }

    fn who(&self, _: Ctx, (): ()) -> Result<Who, HandlerError> {
        Ok(self.who.clone())
    }

    fn echo(&self, _: Ctx, bytes: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        Ok(bytes)
    }

    fn hold(&self, ctx: Ctx, h: Hold) -> Result<(), HandlerError> {
        self.journal.record(format!("started:{}", h.tag));
        if hold(&ctx, h.millis) {
            self.journal.record(format!("cancelled:{}", h.tag));
            return Err(Status::CANCELLED.into());
        }
        Ok(())
    }

    fn note(&self, _: Ctx, note: String) -> Result<(), HandlerError> {
        self.journal.record(note);
        Ok(())
    }

    fn count(&self, _: Ctx, n: u32, mut down: StreamSender<u32>) -> Result<(), HandlerError> {
        for i in 0..n {
            down.send(&i)?;
        }
        Ok(())
    }

    fn sum(&self, _: Ctx, (): (), up: StreamReceiver<u32>) -> Result<u64, HandlerError> {
        let mut sum = 0u64;
        for x in up {
            sum += u64::from(x?);
        }
        Ok(sum)
    }

    fn running(
        &self,
        _: Ctx,
        start: u64,
        up: StreamReceiver<u64>,
        mut down: StreamSender<u64>,
    ) -> Result<(), HandlerError> {
        let mut total = start;
        for x in up {
            total += x?;
            down.send(&total)?;
        }
        Ok(())
    }

    fn hold_stream(
        &self,
        ctx: Ctx,
        h: Hold,
        _up: StreamReceiver<()>,
        _down: StreamSender<()>,
    ) -> Result<(), HandlerError> {
        self.journal.record(format!("started:{}", h.tag));
        if hold(&ctx, h.millis) {
            self.journal.record(format!("cancelled:{}", h.tag));
        }
        Ok(())
    }
}

/// Every method of the protocol, served by the endpoint `name`, recording into `journal`: the
/// declared service registered in one call.
pub fn handlers(name: &str, journal: &Arc<Journal>) -> Handlers {
    let who = Who { name: name.to_string(), runtime: "std".into() };
    Handlers::new().serve(demo::Serve(Demo { who, journal: Arc::clone(journal) }))
}

/// The typed client of the demo's service on `p`.
fn client(p: &Peer) -> demo::BlockingClient<Peer> {
    demo::BlockingClient::new(p.clone())
}

fn failed(e: CallError) -> String {
    e.to_string()
}

fn started(remote: &Journal, tag: &str) -> Outcome {
    ensure(remote.wait_for(&format!("started:{tag}"), T), || "the remote handler never started".into())
}

fn saw_cancel(remote: &Journal, tag: &str) -> Outcome {
    ensure(remote.wait_for(&format!("cancelled:{tag}"), T), || {
        "the remote handler did not see the cancellation".into()
    })
}

/// Unary call with a deadline.
pub fn unary(p: &Peer) -> Outcome {
    let n = client(p).with_deadline(T).ping(&42).map_err(failed)?;
    ensure(n == 42, || format!("PING answered {n}"))
}

/// The median of [`RTT_SAMPLES`] sequential calls.
pub fn round_trip(p: &Peer) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for i in 0..RTT_SAMPLES as u64 {
        let t = Instant::now();
        let n = p.call(&demo::ping, &i, T).map_err(failed)?;
        samples.push(t.elapsed());
        ensure(n == i, || format!("PING {i} answered {n}"))?;
    }
    median(samples).ok_or_else(|| "no samples".into())
}

/// A call whose deadline passes fails with DEADLINE_EXCEEDED; the handler sees it.
pub fn deadline(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("deadline");
    let hold = Hold { tag: tag.clone(), millis: 10_000 };
    let r = client(p).with_deadline(Duration::from_millis(50)).hold(&hold);
    ensure(r.as_ref().is_err_and(|e| e.status() == Status::DEADLINE_EXCEEDED), || format!("got {r:?}"))?;
    saw_cancel(remote, &tag)
}

/// A call cancelled while its handler runs: the handler sees it.
pub fn cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("cancel");
    // The generated client's calls block until answered: a call to cancel is started on the
    // peer itself, with the declaration (the same key travels with it).
    let pending = p.start_call(&demo::hold, &Hold { tag: tag.clone(), millis: 10_000 }, T).map_err(failed)?;
    started(remote, &tag)?;
    pending.cancel();
    saw_cancel(remote, &tag)
}

/// A reliable notification is acknowledged once the handler ran.
pub fn notify(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("note");
    client(p).with_deadline(T).note(&tag).map_err(failed)?;
    ensure(remote.contains(&tag), || "acknowledged before the handler ran".into())
}

/// A signal reaches the handler (nobody acknowledges it).
pub fn signal(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("signal");
    p.signal(&NOTE, &tag).map_err(failed)?;
    ensure(remote.wait_for(&tag, T), || "the signal never arrived".into())
}

/// Server-streaming beyond the credit window.
pub fn server_stream(p: &Peer) -> Outcome {
    let down = client(p).with_deadline(T).count(&STREAM_ITEMS).map_err(failed)?;
    let got: Vec<u32> = down.collect::<Result<_, _>>().map_err(failed)?;
    ensure(got == (0..STREAM_ITEMS).collect::<Vec<_>>(), || format!("got {} items, not 0..n", got.len()))
}

/// Client-streaming beyond the credit window.
pub fn client_stream(p: &Peer) -> Outcome {
    let (mut up, mut down) = client(p).with_deadline(T).sum(&()).map_err(failed)?;
    for i in 0..STREAM_ITEMS {
        up.send(&i).map_err(failed)?;
    }
    up.finish().map_err(failed)?;
    let sum = down.recv().map_err(failed)?;
    let want = u64::from(STREAM_ITEMS) * u64::from(STREAM_ITEMS - 1) / 2;
    ensure(sum == Some(want), || format!("sum {sum:?}, want {want}"))?;
    let end = down.recv().map_err(failed)?;
    ensure(end.is_none(), || format!("unexpected item {end:?} after the sum"))
}

/// Both directions beyond the credit window at once (the sender runs on its own thread).
pub fn bidi(p: &Peer) -> Outcome {
    let (mut up, down) = client(p).with_deadline(T).running(&1000).map_err(failed)?;
    let (sent, totals) = std::thread::scope(|s| {
        let sender = s.spawn(move || (0..u64::from(STREAM_ITEMS)).try_for_each(|i| up.send(&i)));
        let totals = down.collect::<Result<Vec<u64>, _>>();
        (sender.join().unwrap_or(Err(CallError::from(Status::INTERNAL))), totals)
    });
    sent.map_err(failed)?;
    let totals = totals.map_err(failed)?;
    let n = u64::from(STREAM_ITEMS);
    ensure(totals.len() == STREAM_ITEMS as usize && totals.last() == Some(&(1000 + n * (n - 1) / 2)), || {
        format!("{} totals, last {:?}", totals.len(), totals.last())
    })
}

/// A message larger than a frame and a SEQPACKET packet.
pub fn fragmented(p: &Peer) -> Outcome {
    let big = big_message();
    let back = client(p).with_deadline(T).echo(&big).map_err(failed)?;
    ensure(back == big, || format!("echo of {} bytes came back as {} different bytes", big.len(), back.len()))
}

/// A stream cancelled by its opener: the handler sees it.
pub fn stream_cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("stream-cancel");
    let hold = Hold { tag: tag.clone(), millis: 10_000 };
    let (up, down) = client(p).with_deadline(T).hold_stream(&hold).map_err(failed)?;
    started(remote, &tag)?;
    down.cancel();
    drop(up);
    saw_cancel(remote, &tag)
}

/// Runs every per-caller check from `p` toward the end whose handlers record into `remote`.
pub fn checks(p: &Peer, remote: &Journal) -> CallerReport {
    let checks = vec![
        (Exchange::Unary, unary(p)),
        (Exchange::Deadline, deadline(p, remote)),
        (Exchange::Cancel, cancel(p, remote)),
        (Exchange::Notify, notify(p, remote)),
        (Exchange::Signal, signal(p, remote)),
        (Exchange::ServerStream, server_stream(p)),
        (Exchange::ClientStream, client_stream(p)),
        (Exchange::Bidi, bidi(p)),
        (Exchange::Fragmented, fragmented(p)),
        (Exchange::StreamCancel, stream_cancel(p, remote)),
    ];
    CallerReport { checks, rtt: round_trip(p).ok() }
}
