//! Declared services on an async runtime: [`Async`], the runtime flavor the code of
//! `tandem_core::service!` runs on ([`AsyncRuntime`]), with its [`Incoming`] requests and
//! [`HandlerError`]; and [`Peer`] as the caller of the generated clients ([`AsyncCaller`]).
//! (Layer 5: imports `outcome`, `ctx`, `peer`, `stream`, `error`, `deadline`.)
//!
//! tandem-smol re-exports these as they are. A blocking runtime implements
//! `tandem_core::typed::rt::BlockingRuntime` and `BlockingCaller` for its own types the same
//! way (tandem-std: `Blocking`), with [`Incoming`] ([`Incoming::into_parts`]), [`HandlerError`]
//! and [`Outcome`] as they are here, and the steps that do not depend on blocking versus async
//! shared: [`decode_request`], [`finish`], [`response_item`], [`send_failed`], [`unimplemented()`].

use core::fmt;
use core::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tandem_core::typed::rt::{AsyncCaller, AsyncRuntime};
use tandem_core::typed::{decode, encode_vec, MethodLabel, NoError, Notification, Streaming, Unary};
use tandem_core::Status;

use crate::ctx::Ctx;
use crate::deadline::Deadline;
use crate::error::CallError;
use crate::outcome::{bad_payload, Outcome};
use crate::peer::Peer;
use crate::stream::{RawReceiver, RawSender, StreamReceiver, StreamSender};

/// A handler's failure: the method's typed application error (APPLICATION_ERROR, the error as
/// the status body's details), or a status with a message and optional details (SPEC.md §8.7).
/// `?` converts a [`Status`] and a [`CallError`] (a call the handler made failed: its status,
/// and its `Display` as the message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandlerError<E = NoError> {
    /// The method's application error.
    App(E),
    /// A status (not OK), a message for the caller and opaque details.
    Status {
        /// The status.
        status: Status,
        /// A human-readable message (at most 1024 bytes are sent).
        message: String,
        /// Opaque details.
        details: Vec<u8>,
    },
}

impl<E> HandlerError<E> {
    /// A failure with `status` and `message`.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        HandlerError::Status { status, message: message.into(), details: Vec::new() }
    }

    /// The same failure with opaque `details` (ignored for an application error).
    pub fn with_details(self, details: Vec<u8>) -> Self {
        match self {
            HandlerError::Status { status, message, .. } => HandlerError::Status { status, message, details },
            app => app,
        }
    }

    /// The status the caller sees.
    pub fn status(&self) -> Status {
        match self {
            HandlerError::App(_) => Status::APPLICATION_ERROR,
            HandlerError::Status { status, .. } => *status,
        }
    }
}

impl<E: Serialize> HandlerError<E> {
    /// What the runtime answers with.
    pub fn into_outcome(self) -> Outcome {
        match self {
            HandlerError::App(e) => match encode_vec(&e) {
                Ok(details) => Outcome::failed(Status::APPLICATION_ERROR, String::new(), details),
                Err(_) => {
                    Outcome::failed(Status::ENCODE_FAILED, "the application error does not encode", vec![])
                }
            },
            HandlerError::Status { status, message, details } => Outcome::failed(status, message, details),
        }
    }
}

impl<E> From<Status> for HandlerError<E> {
    fn from(status: Status) -> Self {
        HandlerError::Status { status, message: String::new(), details: Vec::new() }
    }
}

impl<E, F: fmt::Debug> From<CallError<F>> for HandlerError<E> {
    fn from(e: CallError<F>) -> Self {
        HandlerError::Status { status: e.status(), message: e.to_string(), details: Vec::new() }
    }
}

impl<E: fmt::Debug> fmt::Display for HandlerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandlerError::App(e) => write!(f, "application error {e:?}"),
            HandlerError::Status { status, message, .. } if message.is_empty() => write!(f, "{status}"),
            HandlerError::Status { status, message, .. } => write!(f, "{status}: {message}"),
        }
    }
}

impl<E: fmt::Debug> std::error::Error for HandlerError<E> {}

/// The async runtime flavor of tandem-runtime's types: implement a declared service's
/// `Server<Async>` (`async fn` handlers taking [`Ctx`], [`StreamReceiver`] and [`StreamSender`],
/// failing with [`HandlerError`]) and register its `Serve` wrapper.
#[derive(Clone, Copy, Debug, Default)]
pub struct Async;

/// One request of a registered service method, as [`Async`]'s helpers serve it.
#[derive(Debug)]
pub struct Incoming {
    method: u32,
    ctx: Ctx,
    payload: Vec<u8>,
    stream: Option<(RawReceiver, RawSender)>,
}

impl Incoming {
    /// A request for method `method` (of the service the handler set routes it to).
    pub fn new(method: u32, ctx: Ctx, payload: Vec<u8>, stream: Option<(RawReceiver, RawSender)>) -> Self {
        Incoming { method, ctx, payload, stream }
    }

    /// The method id the request addresses.
    pub fn method(&self) -> u32 {
        self.method
    }

    /// Its parts: the method id, the context, the payload and, for a stream, its handles (a
    /// blocking flavor wraps them in its own types).
    pub fn into_parts(self) -> (u32, Ctx, Vec<u8>, Option<(RawReceiver, RawSender)>) {
        (self.method, self.ctx, self.payload, self.stream)
    }

    fn streams(&mut self) -> Result<(RawReceiver, RawSender), Outcome> {
        self.stream.take().ok_or_else(not_a_stream)
    }
}

// The steps of a flavor's helpers that do not depend on blocking versus async: [`Async`] uses
// them, and so does a blocking flavor (tandem-std's `Blocking`), so both answer alike.

/// The request (or a stream's initial value) of `method` decoded as `T`, or the answer to a
/// payload that does not decode (BAD_PAYLOAD, naming the method and the type).
pub fn decode_request<T: DeserializeOwned>(payload: &[u8], method: MethodLabel) -> Result<T, Outcome> {
    decode::<T>(payload).map_err(|_| bad_payload(method, core::any::type_name::<T>()))
}

/// A handler's result as the outcome: OK with the encoded response (ENCODE_FAILED if it does not
/// encode), or [`HandlerError::into_outcome`].
pub fn finish<T: Serialize, E: Serialize>(r: Result<T, HandlerError<E>>) -> Outcome {
    match r {
        Ok(v) => match encode_vec(&v) {
            Ok(b) => Outcome::ok(b),
            Err(_) => Outcome::failed(Status::ENCODE_FAILED, "the response does not encode", vec![]),
        },
        Err(e) => e.into_outcome(),
    }
}

/// A client-streaming handler's response, encoded as the stream's one item (SPEC.md §7.4), or
/// the outcome when it does not encode.
pub fn response_item<T: Serialize>(resp: &T) -> Result<Vec<u8>, Outcome> {
    encode_vec(resp)
        .map_err(|_| Outcome::failed(Status::ENCODE_FAILED, "the response does not encode", vec![]))
}

/// The outcome of a client stream whose response item could not be sent.
pub fn send_failed(e: &CallError) -> Outcome {
    Outcome::failed(e.status(), e.to_string(), vec![])
}

/// The answer to a stream helper called for a request that is not a stream (never reached for
/// registered methods: the registry checks the kind first).
pub fn not_a_stream() -> Outcome {
    Outcome::failed(Status::UNIMPLEMENTED, "not a stream", vec![])
}

/// The answer to a method id a service does not serve (see
/// `tandem_core::typed::rt::AsyncRuntime::unimplemented`).
pub fn unimplemented(method: u32) -> Outcome {
    Outcome::failed(Status::UNIMPLEMENTED, format!("method {method} is not served here"), vec![])
}

impl AsyncRuntime for Async {
    type Ctx = Ctx;
    type Receiver<T: DeserializeOwned + Send + 'static> = StreamReceiver<T>;
    type Sender<T: Serialize + Send + 'static> = StreamSender<T>;
    type Error<E: Send + 'static> = HandlerError<E>;
    type Incoming = Incoming;
    type Outcome = Outcome;

    fn method(incoming: &Incoming) -> u32 {
        incoming.method
    }

    async fn unary<Req, Resp, E, F, Fut>(
        incoming: Incoming,
        method: &'static Unary<Req, Resp, E>,
        f: F,
    ) -> Outcome
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Ctx, Req) -> Fut + Send,
        Fut: Future<Output = Result<Resp, HandlerError<E>>> + Send,
    {
        let req = match decode_request::<Req>(&incoming.payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        finish(f(incoming.ctx, req).await)
    }

    async fn notify<T, F, Fut>(incoming: Incoming, method: &'static Notification<T>, f: F) -> Outcome
    where
        T: DeserializeOwned + Send + 'static,
        F: FnOnce(Ctx, T) -> Fut + Send,
        Fut: Future<Output = Result<(), HandlerError<NoError>>> + Send,
    {
        let v = match decode_request::<T>(&incoming.payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        finish(f(incoming.ctx, v).await)
    }

    async fn server_stream<Init, Down, F, Fut>(
        mut incoming: Incoming,
        method: &'static Streaming<Init, (), Down>,
        f: F,
    ) -> Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(Ctx, Init, StreamSender<Down>) -> Fut + Send,
        Fut: Future<Output = Result<(), HandlerError<NoError>>> + Send,
    {
        let init = match decode_request::<Init>(&incoming.payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let (_rx, tx) = match incoming.streams() {
            Ok(s) => s,
            Err(o) => return o,
        };
        finish(f(incoming.ctx, init, StreamSender::new(tx)).await)
    }

    async fn client_stream<Init, Up, Resp, F, Fut>(
        mut incoming: Incoming,
        method: &'static Streaming<Init, Up, Resp>,
        f: F,
    ) -> Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: FnOnce(Ctx, Init, StreamReceiver<Up>) -> Fut + Send,
        Fut: Future<Output = Result<Resp, HandlerError<NoError>>> + Send,
    {
        let init = match decode_request::<Init>(&incoming.payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let (rx, tx) = match incoming.streams() {
            Ok(s) => s,
            Err(o) => return o,
        };
        match f(incoming.ctx, init, StreamReceiver::new(rx)).await {
            // The response is the stream's one item, before its end (SPEC.md §7.4).
            Ok(resp) => {
                let bytes = match response_item(&resp) {
                    Ok(b) => b,
                    Err(o) => return o,
                };
                let mut tx = tx;
                match tx.send(&bytes).await {
                    Ok(()) => Outcome::ok(Vec::new()),
                    Err(e) => send_failed(&e),
                }
            }
            Err(e) => e.into_outcome(),
        }
    }

    async fn bidi<Init, Up, Down, F, Fut>(
        mut incoming: Incoming,
        method: &'static Streaming<Init, Up, Down>,
        f: F,
    ) -> Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(Ctx, Init, StreamReceiver<Up>, StreamSender<Down>) -> Fut + Send,
        Fut: Future<Output = Result<(), HandlerError<NoError>>> + Send,
    {
        let init = match decode_request::<Init>(&incoming.payload, method.label()) {
            Ok(v) => v,
            Err(o) => return o,
        };
        let (rx, tx) = match incoming.streams() {
            Ok(s) => s,
            Err(o) => return o,
        };
        finish(f(incoming.ctx, init, StreamReceiver::new(rx), StreamSender::new(tx)).await)
    }

    fn unimplemented(incoming: Incoming) -> Outcome {
        unimplemented(incoming.method)
    }
}

impl AsyncCaller for Peer {
    type Deadline = Deadline;
    type Error<E: Send + 'static> = CallError<E>;
    type Sender<T: Serialize + Send + 'static> = StreamSender<T>;
    type Receiver<T: DeserializeOwned + Send + 'static> = StreamReceiver<T>;

    fn unary<'a, Req, Resp, E>(
        &'a self,
        method: &'static Unary<Req, Resp, E>,
        req: &'a Req,
        deadline: Deadline,
    ) -> impl Future<Output = Result<Resp, CallError<E>>> + Send + 'a
    where
        Req: Serialize + Sync,
        Resp: DeserializeOwned + Send + 'static,
        E: DeserializeOwned + Send + 'static,
    {
        self.call(method, req, deadline)
    }

    fn notify<'a, T>(
        &'a self,
        method: &'static Notification<T>,
        value: &'a T,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(), CallError>> + Send + 'a
    where
        T: Serialize + Sync,
    {
        Peer::notify(self, method, value, deadline)
    }

    fn signal<'a, T>(
        &'a self,
        method: &'static Notification<T>,
        value: &'a T,
    ) -> impl Future<Output = Result<(), CallError>> + Send + 'a
    where
        T: Serialize + Sync,
    {
        Peer::signal(self, method, value)
    }

    fn server_stream<'a, Init, Down>(
        &'a self,
        method: &'static Streaming<Init, (), Down>,
        init: &'a Init,
        deadline: Deadline,
    ) -> impl Future<Output = Result<StreamReceiver<Down>, CallError>> + Send + 'a
    where
        Init: Serialize + Sync,
        Down: DeserializeOwned + Send + 'static,
    {
        self.subscribe(method, init, deadline)
    }

    fn open_stream<'a, Init, Up, Down>(
        &'a self,
        method: &'static Streaming<Init, Up, Down>,
        init: &'a Init,
        deadline: Deadline,
    ) -> impl Future<Output = Result<(StreamSender<Up>, StreamReceiver<Down>), CallError>> + Send + 'a
    where
        Init: Serialize + Sync,
        Up: Serialize + Send + 'static,
        Down: DeserializeOwned + Send + 'static,
    {
        Peer::open_stream(self, method, init, deadline)
    }
}
