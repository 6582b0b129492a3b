//! The protocol on the async runtime ([`tandem_smol`]): its router, and the caller-side checks
//! of every exchange type.

use crate::{
    big_message, ensure, fresh_tag, median, CallerReport, Exchange, Hold, Journal, Outcome, Who, COUNT, ECHO,
    HOLD, HOLD_STREAM, NOTE, PING, RTT_SAMPLES, RUNNING, STREAM_ITEMS, SUM, T, WHO,
};
use futures_lite::future::{self, FutureExt};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_smol::{CallError, Ctx, Deadline, Handlers, Peer, Status};

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

/// Every method of the protocol, served by the endpoint `name`, recording into `journal`.
pub fn router(name: &str, journal: &Arc<Journal>) -> Handlers {
    let who = Who { name: name.to_string(), runtime: "smol".into() };
    let (j1, j2, j3) = (Arc::clone(journal), Arc::clone(journal), Arc::clone(journal));
    Handlers::new()
        .unary(&PING, |_, n| async move { Ok(n) })
        .unary(&WHO, move |_, ()| future::ready(Ok(who.clone())))
        .unary(&ECHO, |_, bytes| async move { Ok(bytes) })
        .unary(&HOLD, move |ctx, h: Hold| {
            let journal = Arc::clone(&j1);
            async move {
                journal.record(format!("started:{}", h.tag));
                if hold(&ctx, h.millis).await {
                    journal.record(format!("cancelled:{}", h.tag));
                    return Err(Status::CANCELLED);
                }
                Ok(())
            }
        })
        .notification(&NOTE, move |_, note| {
            j2.record(note);
            future::ready(Ok(()))
        })
        .streaming(&COUNT, |_, n, _up, mut down| async move {
            for i in 0..n {
                down.send(&i).await.map_err(|e| e.status())?;
            }
            Ok(())
        })
        .streaming(&SUM, |_, (), mut up, mut down| async move {
            let mut sum = 0u64;
            while let Some(x) = up.recv().await.map_err(|e| e.status())? {
                sum += u64::from(x);
            }
            down.send(&sum).await.map_err(|e| e.status())
        })
        .streaming(&RUNNING, |_, start, mut up, mut down| async move {
            let mut total = start;
            while let Some(x) = up.recv().await.map_err(|e| e.status())? {
                total += x;
                down.send(&total).await.map_err(|e| e.status())?;
            }
            Ok(())
        })
        .streaming(&HOLD_STREAM, move |ctx, h: Hold, _up, _down| {
            let journal = Arc::clone(&j3);
            async move {
                journal.record(format!("started:{}", h.tag));
                if hold(&ctx, h.millis).await {
                    journal.record(format!("cancelled:{}", h.tag));
                }
                Ok(())
            }
        })
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
    let n = p.call(&PING, &42, T).await.map_err(failed)?;
    ensure(n == 42, || format!("PING answered {n}"))
}

/// The median of [`RTT_SAMPLES`] sequential calls.
pub async fn round_trip(p: &Peer) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for i in 0..RTT_SAMPLES as u64 {
        let t = Instant::now();
        let n = p.call(&PING, &i, T).await.map_err(failed)?;
        samples.push(t.elapsed());
        ensure(n == i, || format!("PING {i} answered {n}"))?;
    }
    median(samples).ok_or_else(|| "no samples".into())
}

/// A call whose deadline passes fails with DEADLINE_EXCEEDED; the handler sees it.
pub async fn deadline(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("deadline");
    let hold = Hold { tag: tag.clone(), millis: 10_000 };
    let r = p.call(&HOLD, &hold, Duration::from_millis(50)).await;
    ensure(r == Err(CallError::from(Status::DEADLINE_EXCEEDED)), || format!("got {r:?}"))?;
    saw_cancel(remote, &tag).await
}

/// A call cancelled (its future dropped) while its handler runs: the handler sees it.
pub async fn cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("cancel");
    let hold = Hold { tag: tag.clone(), millis: 10_000 };
    // Whichever finishes first: the call (a failure), or the handler starting, after which
    // the call's future is dropped, which cancels it.
    let call =
        async { Err(format!("the call ended before it was cancelled: {:?}", p.call(&HOLD, &hold, T).await)) };
    call.or(started(remote, &tag)).await?;
    saw_cancel(remote, &tag).await
}

/// A reliable notification is acknowledged once the handler ran.
pub async fn notify(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("note");
    p.notify(&NOTE, &tag, T).await.map_err(failed)?;
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
    let mut down = p.subscribe(&COUNT, &STREAM_ITEMS, Deadline::None).await.map_err(failed)?;
    let mut got = Vec::new();
    while let Some(item) = down.recv().await.map_err(failed)? {
        got.push(item);
    }
    ensure(got == (0..STREAM_ITEMS).collect::<Vec<_>>(), || format!("got {} items, not 0..n", got.len()))
}

/// Client-streaming beyond the credit window.
pub async fn client_stream(p: &Peer) -> Outcome {
    let (mut up, mut down) = p.open_stream(&SUM, &(), Deadline::None).await.map_err(failed)?;
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
    let (mut up, mut down) = p.open_stream(&RUNNING, &1000, Deadline::None).await.map_err(failed)?;
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
    let back = p.call(&ECHO, &big, T).await.map_err(failed)?;
    ensure(back == big, || format!("echo of {} bytes came back as {} different bytes", big.len(), back.len()))
}

/// A stream abandoned by its opener (both handles dropped): the handler sees the cancellation.
pub async fn stream_cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("stream-cancel");
    let handles = p
        .open_stream(&HOLD_STREAM, &Hold { tag: tag.clone(), millis: 10_000 }, Deadline::None)
        .await
        .map_err(failed)?;
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
