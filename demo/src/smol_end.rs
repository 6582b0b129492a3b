//! The protocol on the async runtime ([`tandem_smol`]): its router, and the caller-side checks
//! of every exchange type.

use crate::{
    big_message, demo, ensure, fresh_tag, median, CallerReport, Exchange, Hold, Journal, Outcome, Who, NOTE,
    RTT_SAMPLES, STREAM_ITEMS, T,
};
use futures_lite::future::{self, FutureExt};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_smol::{
    Async, CallError, Ctx, Deadline, HandlerError, Handlers, Peer, Status, StreamReceiver, StreamSender,
};

/// Awaits `f` for at most `limit`; `None` when it took longer.
pub async fn within<F: Future>(limit: Duration, f: F) -> Option<F::Output> {
    async { Some(f.await) }
        .or(async {
            smol::Timer::after(limit).await;
            None
        })
        .await
}

/// Waits until the exchange is cancelled or `millis` pass; true when cancelled.
async fn hold(ctx: &Ctx, millis: u64) -> bool {
    async {
        ctx.cancelled().await;
        true
    }
    .or(async {
        smol::Timer::after(Duration::from_millis(millis)).await;
        false
    })
    .await
}

/// The demo's service on tandem-smol: every handler, recording into the journal.
struct Demo {
    who: Who,
    journal: Arc<Journal>,
}

impl demo::Server<Async> for Demo {
    async fn ping(&self, _: Ctx, n: u64) -> Result<u64, HandlerError> {
        Ok(n)
    }

    async fn who(&self, _: Ctx, (): ()) -> Result<Who, HandlerError> {
        Ok(self.who.clone())
    }

    async fn echo(&self, _: Ctx, bytes: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        Ok(bytes)
    }

    async fn hold(&self, ctx: Ctx, h: Hold) -> Result<(), HandlerError> {
        self.journal.record(format!("started:{}", h.tag));
        if hold(&ctx, h.millis).await {
            self.journal.record(format!("cancelled:{}", h.tag));
            return Err(Status::CANCELLED.into());
        }
        Ok(())
    }

    async fn note(&self, _: Ctx, note: String) -> Result<(), HandlerError> {
        self.journal.record(note);
        Ok(())
    }

    async fn count(&self, _: Ctx, n: u32, mut down: StreamSender<u32>) -> Result<(), HandlerError> {
        for i in 0..n {
            down.send(&i).await?;
        }
        Ok(())
    }

    async fn sum(&self, _: Ctx, (): (), mut up: StreamReceiver<u32>) -> Result<u64, HandlerError> {
        let mut sum = 0u64;
        while let Some(x) = up.recv().await? {
            sum += u64::from(x);
        }
        Ok(sum)
    }

    async fn running(
        &self,
        _: Ctx,
        start: u64,
        mut up: StreamReceiver<u64>,
        mut down: StreamSender<u64>,
    ) -> Result<(), HandlerError> {
        let mut total = start;
        while let Some(x) = up.recv().await? {
            total += x;
            down.send(&total).await?;
        }
        Ok(())
    }

    async fn hold_stream(
        &self,
        ctx: Ctx,
        h: Hold,
        _up: StreamReceiver<()>,
        _down: StreamSender<()>,
    ) -> Result<(), HandlerError> {
        self.journal.record(format!("started:{}", h.tag));
        if hold(&ctx, h.millis).await {
            self.journal.record(format!("cancelled:{}", h.tag));
        }
        Ok(())
    }
}

/// Every method of the protocol, served by the endpoint `name`, recording into `journal`: the
/// declared service registered in one call.
pub fn router(name: &str, journal: &Arc<Journal>) -> Handlers {
    let who = Who { name: name.to_string(), runtime: "smol".into() };
    Handlers::new().serve(demo::Serve(Demo { who, journal: Arc::clone(journal) }))
}

/// The typed client of the demo's service on `p`.
fn client(p: &Peer) -> demo::Client<Peer> {
    demo::Client::new(p.clone())
}

fn failed(e: CallError) -> String {
    e.to_string()
}

async fn started(remote: &Journal, tag: &str) -> Outcome {
    ensure(remote.recorded(&format!("started:{tag}"), T).await, || "the remote handler never started".into())
}

async fn saw_cancel(remote: &Journal, tag: &str) -> Outcome {
    ensure(remote.recorded(&format!("cancelled:{tag}"), T).await, || {
        "the remote handler did not see the cancellation".into()
    })
}

/// Unary call with a deadline.
pub async fn unary(p: &Peer) -> Outcome {
    let n = client(p).with_deadline(T).ping(&42).await.map_err(failed)?;
    ensure(n == 42, || format!("PING answered {n}"))
}

/// The median of [`RTT_SAMPLES`] sequential calls.
pub async fn round_trip(p: &Peer) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for i in 0..RTT_SAMPLES as u64 {
        let t = Instant::now();
        let n = p.call(&demo::ping, &i, T).await.map_err(failed)?;
        samples.push(t.elapsed());
        ensure(n == i, || format!("PING {i} answered {n}"))?;
    }
    median(samples).ok_or_else(|| "no samples".into())
}

/// A call whose deadline passes fails with DEADLINE_EXCEEDED; the handler sees it.
pub async fn deadline(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("deadline");
    let hold = Hold { tag: tag.clone(), millis: 10_000 };
    let r = client(p).with_deadline(Duration::from_millis(50)).hold(&hold).await;
    ensure(r.as_ref().is_err_and(|e| e.status() == Status::DEADLINE_EXCEEDED), || format!("got {r:?}"))?;
    saw_cancel(remote, &tag).await
}

/// A call cancelled (its future dropped) while its handler runs: the handler sees it.
pub async fn cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("cancel");
    let hold = Hold { tag: tag.clone(), millis: 10_000 };
    // Whichever finishes first: the call (a failure), or the handler starting, after which
    // the call's future is dropped, which cancels it.
    let call = async {
        Err(format!(
            "the call ended before it was cancelled: {:?}",
            client(p).with_deadline(T).hold(&hold).await
        ))
    };
    call.or(started(remote, &tag)).await?;
    saw_cancel(remote, &tag).await
}

/// A reliable notification is acknowledged once the handler ran.
pub async fn notify(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("note");
    client(p).with_deadline(T).note(&tag).await.map_err(failed)?;
    ensure(remote.contains(&tag), || "acknowledged before the handler ran".into())
}

/// A signal reaches the handler (nobody acknowledges it).
pub async fn signal(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("signal");
    p.signal(&NOTE, &tag).await.map_err(failed)?;
    ensure(remote.recorded(&tag, T).await, || "the signal never arrived".into())
}

/// Server-streaming beyond the credit window.
pub async fn server_stream(p: &Peer) -> Outcome {
    let mut down = client(p).count(&STREAM_ITEMS).await.map_err(failed)?;
    let mut got = Vec::new();
    while let Some(item) = down.recv().await.map_err(failed)? {
        got.push(item);
    }
    ensure(got == (0..STREAM_ITEMS).collect::<Vec<_>>(), || format!("got {} items, not 0..n", got.len()))
}

/// Client-streaming beyond the credit window.
pub async fn client_stream(p: &Peer) -> Outcome {
    let (mut up, mut down) = client(p).sum(&()).await.map_err(failed)?;
    for i in 0..STREAM_ITEMS {
        up.send(&i).await.map_err(failed)?;
    }
    up.finish().map_err(failed)?;
    let sum = down.recv().await.map_err(failed)?;
    let want = u64::from(STREAM_ITEMS) * u64::from(STREAM_ITEMS - 1) / 2;
    ensure(sum == Some(want), || format!("sum {sum:?}, want {want}"))?;
    let end = down.recv().await;
    ensure(end == Ok(None), || format!("unexpected {end:?} after the sum"))
}

/// Both directions beyond the credit window at once (sending and receiving concurrently).
pub async fn bidi(p: &Peer) -> Outcome {
    let (mut up, mut down) = client(p).with_deadline(Deadline::None).running(&1000).await.map_err(failed)?;
    let send = async move {
        for i in 0..u64::from(STREAM_ITEMS) {
            up.send(&i).await?;
        }
        Ok::<_, CallError>(())
    };
    let receive = async {
        let mut totals = Vec::new();
        while let Some(t) = down.recv().await? {
            totals.push(t);
        }
        Ok::<_, CallError>(totals)
    };
    let (sent, totals) = future::zip(send, receive).await;
    sent.map_err(failed)?;
    let totals = totals.map_err(failed)?;
    let n = u64::from(STREAM_ITEMS);
    ensure(totals.len() == STREAM_ITEMS as usize && totals.last() == Some(&(1000 + n * (n - 1) / 2)), || {
        format!("{} totals, last {:?}", totals.len(), totals.last())
    })
}

/// A message larger than a frame and a SEQPACKET packet.
pub async fn fragmented(p: &Peer) -> Outcome {
    let big = big_message();
    let back = client(p).with_deadline(T).echo(&big).await.map_err(failed)?;
    ensure(back == big, || format!("echo of {} bytes came back as {} different bytes", big.len(), back.len()))
}

/// A stream abandoned by its opener (both handles dropped): the handler sees the cancellation.
pub async fn stream_cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("stream-cancel");
    let handles = client(p).hold_stream(&Hold { tag: tag.clone(), millis: 10_000 }).await.map_err(failed)?;
    started(remote, &tag).await?;
    drop(handles);
    saw_cancel(remote, &tag).await
}

/// Runs one check with a bound on its duration.
async fn bounded(f: impl Future<Output = Outcome>) -> Outcome {
    within(T * 2, f).await.unwrap_or_else(|| Err(format!("did not finish within {:?}", T * 2)))
}

/// Runs every per-caller check from `p` toward the end whose handlers record into `remote`.
pub async fn checks(p: &Peer, remote: &Journal) -> CallerReport {
    let checks = vec![
        (Exchange::Unary, bounded(unary(p)).await),
        (Exchange::Deadline, bounded(deadline(p, remote)).await),
        (Exchange::Cancel, bounded(cancel(p, remote)).await),
        (Exchange::Notify, bounded(notify(p, remote)).await),
        (Exchange::Signal, bounded(signal(p, remote)).await),
        (Exchange::ServerStream, bounded(server_stream(p)).await),
        (Exchange::ClientStream, bounded(client_stream(p)).await),
        (Exchange::Bidi, bounded(bidi(p)).await),
        (Exchange::Fragmented, bounded(fragmented(p)).await),
        (Exchange::StreamCancel, bounded(stream_cancel(p, remote)).await),
    ];
    let rtt = within(T * 2, round_trip(p)).await.and_then(Result::ok);
    CallerReport { checks, rtt }
}
