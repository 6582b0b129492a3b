//! The protocol on the blocking runtime ([`tandem_std`]): its handlers, and the caller-side
//! checks of every exchange type.

use crate::{
    big_message, ensure, fresh_tag, median, CallerReport, Exchange, Hold, Journal, Outcome, Who, COUNT, ECHO,
    HOLD, HOLD_STREAM, NOTE, PING, RTT_SAMPLES, RUNNING, STREAM_ITEMS, SUM, T, WHO,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tandem_std::{CallError, Ctx, Handlers, Peer, Status};

/// Waits until the exchange is cancelled or `millis` pass (parked: the handler's pool worker
/// serves others meanwhile); true when cancelled.
fn hold(ctx: &Ctx, millis: u64) -> bool {
    ctx.wait_cancelled(Duration::from_millis(millis))
}

/// Every method of the protocol, served by the endpoint `name`, recording into `journal`.
pub fn handlers(name: &str, journal: &Arc<Journal>) -> Handlers {
    let who = Who { name: name.to_string(), runtime: "std".into() };
    let (j1, j2, j3) = (Arc::clone(journal), Arc::clone(journal), Arc::clone(journal));
    Handlers::new()
        .unary(&PING, |_, n| Ok(n))
        .unary(&WHO, move |_, ()| Ok(who.clone()))
        .unary(&ECHO, |_, bytes| Ok(bytes))
        .unary(&HOLD, move |ctx, h: Hold| {
            j1.record(format!("started:{}", h.tag));
            if hold(&ctx, h.millis) {
                j1.record(format!("cancelled:{}", h.tag));
                return Err(Status::CANCELLED);
            }
            Ok(())
        })
        .notification(&NOTE, move |_, note| {
            j2.record(note);
            Ok(())
        })
        .streaming(&COUNT, |_, n, _up, mut down| {
            for i in 0..n {
                down.send(&i).map_err(|e| e.status())?;
            }
            Ok(())
        })
        .streaming(&SUM, |_, (), mut up, mut down| {
            let mut sum = 0u64;
            while let Some(x) = up.recv().map_err(|e| e.status())? {
                sum += u64::from(x);
            }
            down.send(&sum).map_err(|e| e.status())
        })
        .streaming(&RUNNING, |_, start, mut up, mut down| {
            let mut total = start;
            while let Some(x) = up.recv().map_err(|e| e.status())? {
                total += x;
                down.send(&total).map_err(|e| e.status())?;
            }
            Ok(())
        })
        .streaming(&HOLD_STREAM, move |ctx, h: Hold, _up, _down| {
            j3.record(format!("started:{}", h.tag));
            if hold(&ctx, h.millis) {
                j3.record(format!("cancelled:{}", h.tag));
            }
            Ok(())
        })
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
    let n = p.call(&PING, &42, T).map_err(failed)?;
    ensure(n == 42, || format!("PING answered {n}"))
}

/// The median of [`RTT_SAMPLES`] sequential calls.
pub fn round_trip(p: &Peer) -> Result<Duration, String> {
    let mut samples = Vec::with_capacity(RTT_SAMPLES);
    for i in 0..RTT_SAMPLES as u64 {
        let t = Instant::now();
        let n = p.call(&PING, &i, T).map_err(failed)?;
        samples.push(t.elapsed());
        ensure(n == i, || format!("PING {i} answered {n}"))?;
    }
    median(samples).ok_or_else(|| "no samples".into())
}

/// A call whose deadline passes fails with DEADLINE_EXCEEDED; the handler sees it.
pub fn deadline(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("deadline");
    let r = p.call(&HOLD, &Hold { tag: tag.clone(), millis: 10_000 }, Duration::from_millis(50));
    ensure(r.as_ref().is_err_and(|e| e.status() == Status::DEADLINE_EXCEEDED), || format!("got {r:?}"))?;
    saw_cancel(remote, &tag)
}

/// A call cancelled while its handler runs: the handler sees it.
pub fn cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("cancel");
    let pending = p.start_call(&HOLD, &Hold { tag: tag.clone(), millis: 10_000 }, T).map_err(failed)?;
    started(remote, &tag)?;
    pending.cancel();
    saw_cancel(remote, &tag)
}

/// A reliable notification is acknowledged once the handler ran.
pub fn notify(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("note");
    p.notify(&NOTE, &tag, T).map_err(failed)?;
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
    let (up, down) = p.open_stream(&COUNT, &STREAM_ITEMS, T).map_err(failed)?;
    drop(up); // nothing to send: finish this direction
    let got: Vec<u32> = down.collect::<Result<_, _>>().map_err(failed)?;
    ensure(got == (0..STREAM_ITEMS).collect::<Vec<_>>(), || format!("got {} items, not 0..n", got.len()))
}

/// Client-streaming beyond the credit window.
pub fn client_stream(p: &Peer) -> Outcome {
    let (mut up, mut down) = p.open_stream(&SUM, &(), T).map_err(failed)?;
    for i in 0..STREAM_ITEMS {
        up.send(&i).map_err(failed)?;
    }
    drop(up);
    let sum = down.recv().map_err(failed)?;
    let want = u64::from(STREAM_ITEMS) * u64::from(STREAM_ITEMS - 1) / 2;
    ensure(sum == Some(want), || format!("sum {sum:?}, want {want}"))?;
    let end = down.recv().map_err(failed)?;
    ensure(end.is_none(), || format!("unexpected item {end:?} after the sum"))
}

/// Both directions beyond the credit window at once (the sender runs on its own thread).
pub fn bidi(p: &Peer) -> Outcome {
    let (mut up, down) = p.open_stream(&RUNNING, &1000, T).map_err(failed)?;
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
    let back = p.call(&ECHO, &big, T).map_err(failed)?;
    ensure(back == big, || format!("echo of {} bytes came back as {} different bytes", big.len(), back.len()))
}

/// A stream cancelled by its opener: the handler sees it.
pub fn stream_cancel(p: &Peer, remote: &Journal) -> Outcome {
    let tag = fresh_tag("stream-cancel");
    let (up, down) =
        p.open_stream(&HOLD_STREAM, &Hold { tag: tag.clone(), millis: 10_000 }, T).map_err(failed)?;
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
