//! Declared services on the blocking runtime: [`Blocking`], the flavor the blocking code of
//! `tandem_core::service!` runs on (`BlockingServer<Blocking>`), and [`Peer`] as the caller of
//! the generated `BlockingClient`. The blocking twins of `tandem_runtime::service`'s `Async`
//! and its `AsyncCaller` for `Peer`: the steps that do not depend on blocking versus async
//! (decoding, outcomes, status bodies) are `tandem_runtime::service`'s. (Layer 4: imports `ctx`,
//! `api`.)

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_runtime::handlers::{typed_receiver, typed_stream};
use tandem_runtime::service::{
    decode_request, finish, not_a_stream, response_item, send_failed, unimplemented, Incoming,
};
use tandem_runtime::tandem_core::typed::rt::{BlockingCaller, BlockingRuntime};
use tandem_runtime::tandem_core::typed::{NoError, Notification, Streaming, Unary};
use tandem_runtime::{CallError, Deadline, HandlerError, Outcome};

use crate::api::{Peer, RawReceiver, RawSender, StreamReceiver, StreamSender};
use crate::ctx::Ctx;

/// The blocking runtime flavor: implement a declared service's `BlockingServer<Blocking>`
/// (blocking handlers taking [`Ctx`], [`StreamReceiver`] and [`StreamSender`], failing with
/// [`HandlerError`]) and register its `Serve` wrapper with
/// [`Handlers::serve`](crate::Handlers::serve). The twin of tandem-smol's `Async`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Blocking;

/// The parts of a request: its context, payload and (for a stream) its handles, as this
/// runtime's types.
fn parts(incoming: Incoming) -> (Ctx, Vec<u8>, Option<(RawReceiver, RawSender)>) {
    let (_, ctx, payload, stream) = incoming.into_parts();
    (Ctx::new(ctx), payload, stream.map(|(rx, tx)| (RawReceiver(rx), RawSender(tx))))
}

/// A stream's raw handles as typed ones; the outcome for a request that is not a stream.
#[allow(clippy::type_complexity)]
fn streams<Up, Down>(
    stream: Option<(RawReceiver, RawSender)>,
) -> Result<(StreamReceiver<Up>, StreamSender<Down>), Outcome>
where
    Up: DeserializeOwned,
    Down: Serialize,
{
    let (rx, tx) = stream.ok_or_else(not_a_stream)?;
    let (rx, tx) = typed_stream(rx.0, tx.0);
    Ok((StreamReceiver(rx), StreamSender(tx)))
}

impl BlockingRuntime for Blocking {
    type Ctx = Ctx;
    type Receiver<T: DeserializeOwned + Send + 'static> = StreamReceiver<T>;
    type Sender<T: Serialize + Send + 'static> = StreamSender<T>;
    type Error<E: Send + 'static> = HandlerError<E>;
    type Incoming = Incoming;
    type Outcome = Outcome;

    fn method(incoming: &Incoming) -> u32 {
        incoming.method()
    }

    fn unary<Req, Resp, E, F>(incoming: Incoming, method: &'static Unary<Req, Resp, E>, f: F) -> Outcome
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Ctx, Req) -> Result<Resp, HandlerError<E>>,
    {
        let (ctx, payload, _) = parts(incoming);
        match decode_request::<Req>(&payload, method.label()) {
            Ok(req) => finish(f(ctx, req)),
            Err(o) => o,
        }
    }

    fn notify<T, F>(incoming: Incoming, method: &'static Notification<T>, f: F) -> Outcome
    where
        T: DeserializeOwned + Send + 'static,
        F: FnOnce(Ctx, T) -> Result<(), HandlerError<NoError>>,
    {
        let (ctx, payload, _) = parts(incoming);
        match decode_request::<T>(&payload, method.label()) {
            Ok(v) => finish(f(ctx, v)),
            Err(o) => o,
        }
    }

    fn server_stream<Init, Down, F>(
        incoming: Incoming,
        method: &'static Streaming<Init, (), Down>,
        f: F,
    ) -> Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(Ctx, Init, StreamSender<Down>) -> Result<(), HandlerError<NoError>>,
    {
        let (ctx, payload, stream) = parts(incoming);
        let init = match decode_request::<Init>(&payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        match streams::<(), Down>(stream) {
            Ok((_rx, tx)) => finish(f(ctx, init, tx)),
            Err(o) => o,
        }
    }

    fn client_stream<Init, Up, Resp, F>(
        incoming: Incoming,
        method: &'static Streaming<Init, Up, Resp>,
        f: F,
    ) -> Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: FnOnce(Ctx, Init, StreamReceiver<Up>) -> Result<Resp, HandlerError<NoError>>,
    {
        let (ctx, payload, stream) = parts(incoming);
        let init = match decode_request::<Init>(&payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let (rx, mut tx) = match stream {
            Some(s) => s,
            None => return not_a_stream(),
        };
        match f(ctx, init, StreamReceiver(typed_receiver(rx.0))) {
            // The response is the stream's one item, before its end (SPEC.md §7.4).
            Ok(resp) => match response_item(&resp) {
                Ok(bytes) => match tx.send(&bytes) {
                    Ok(()) => Outcome::ok(Vec::new()),
                    Err(e) => send_failed(&e),
                },
                Err(o) => o,
            },
            Err(e) => e.into_outcome(),
        }
    }

    fn bidi<Init, Up, Down, F>(
        incoming: Incoming,
        method: &'static Streaming<Init, Up, Down>,
        f: F,
    ) -> Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(Ctx, Init, StreamReceiver<Up>, StreamSender<Down>) -> Result<(), HandlerError<NoError>>,
    {
        let (ctx, payload, stream) = parts(incoming);
        let init = match decode_request::<Init>(&payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        match streams::<Up, Down>(stream) {
            Ok((rx, tx)) => finish(f(ctx, init, rx, tx)),
            Err(o) => o,
        }
    }

    fn unimplemented(incoming: Incoming) -> Outcome {
        unimplemented(incoming.method())
    }
}

/// The generated `BlockingClient<Peer>` calls through these: each is the blocking
/// [`Peer`] operation of the same name (which sends the method's schema key).
impl BlockingCaller for Peer {
    type Deadline = Deadline;
    type Error<E: Send + 'static> = CallError<E>;
    type Sender<T: Serialize + Send + 'static> = StreamSender<T>;
    type Receiver<T: DeserializeOwned + Send + 'static> = StreamReceiver<T>;

    fn unary<Req, Resp, E>(
        &self,
        method: &'static Unary<Req, Resp, E>,
        req: &Req,
        deadline: Deadline,
    ) -> Result<Resp, CallError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned + Send + 'static,
        E: DeserializeOwned + Send + 'static,
    {
        self.call(method, req, deadline)
    }

    fn notify<T: Serialize>(
        &self,
        method: &'static Notification<T>,
        value: &T,
        deadline: Deadline,
    ) -> Result<(), CallError> {
        Peer::notify(self, method, value, deadline)
    }

    fn signal<T: Serialize>(&self, method: &'static Notification<T>, value: &T) -> Result<(), CallError> {
        Peer::signal(self, method, value)
    }

    fn server_stream<Init, Down>(
        &self,
        method: &'static Streaming<Init, (), Down>,
        init: &Init,
        deadline: Deadline,
    ) -> Result<StreamReceiver<Down>, CallError>
    where
        Init: Serialize,
        Down: DeserializeOwned + Send + 'static,
    {
        self.subscribe(method, init, deadline)
    }

    fn open_stream<Init, Up, Down>(
        &self,
        method: &'static Streaming<Init, Up, Down>,
        init: &Init,
        deadline: Deadline,
    ) -> Result<(StreamSender<Up>, StreamReceiver<Down>), CallError>
    where
        Init: Serialize,
        Up: Serialize + Send + 'static,
        Down: DeserializeOwned + Send + 'static,
    {
        Peer::open_stream(self, method, init, deadline)
    }
}
