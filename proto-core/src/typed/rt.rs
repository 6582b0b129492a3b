//! What a runtime provides so that the code [`service!`](crate::service) generates runs on it.
//!
//! A service declaration generates, besides its method declarations, handler traits and clients
//! that are generic over the runtime: the async handler trait `Server<R: AsyncRuntime>` and the
//! async `Client<P: AsyncCaller>`, the blocking `BlockingServer<R: BlockingRuntime>` and
//! `BlockingClient<P: BlockingCaller>`, and the no-allocator `CoreServer` served by
//! [`Dispatcher`](super::Dispatcher). A runtime implements the traits of this module once, for a
//! marker type (tandem-smol: `tandem_smol::Async`) and for its peer handle; the generated code
//! only calls them. Nothing here allocates, so the declarations compile in firmware too.
//!
//! Registration: the generated `Serve<S>` wrapper implements [`AsyncService`] (when `S`
//! implements the async trait) and [`BlockingService`]; a runtime's handler set registers
//! every method of [`AsyncService::DEF`] and calls [`AsyncService::serve`] for each request,
//! after the dispatch decisions of SPEC.md §7.9 and the schema key check of §7.10.

use core::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NoError, Notification, ServiceDef, Streaming, Unary};

/// The types and typed helpers of an async runtime, used by the generated `Server` traits.
///
/// `Incoming` is one request of a registered method (its method id, context, payload and, for
/// a stream, the handles on it); `Outcome` what the runtime answers with. Each helper decodes
/// the request as the method's type (a payload that does not decode is answered BAD_PAYLOAD
/// with a message naming the method), runs the handler `f` and turns its result into the
/// outcome (an application error `E` becomes APPLICATION_ERROR with `E` as details, SPEC.md
/// §8.7).
pub trait AsyncRuntime: Sized + 'static {
    /// A handler's context.
    type Ctx: Send + 'static;
    /// The items a stream handler receives.
    type Receiver<T: DeserializeOwned + Send + 'static>: Send + 'static;
    /// The items a stream handler sends.
    type Sender<T: Serialize + Send + 'static>: Send + 'static;
    /// A handler's error: a status with a message and details, or the application error `E`.
    type Error<E: Send + 'static>: Send + 'static;
    /// One request of a registered method.
    type Incoming: Send + 'static;
    /// The answer to it.
    type Outcome: Send + 'static;

    /// The method id a request addresses.
    fn method(incoming: &Self::Incoming) -> u32;

    /// Serves a unary method.
    fn unary<Req, Resp, E, F, Fut>(
        incoming: Self::Incoming,
        method: &'static Unary<Req, Resp, E>,
        f: F,
    ) -> impl Future<Output = Self::Outcome> + Send
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Self::Ctx, Req) -> Fut + Send,
        Fut: Future<Output = Result<Resp, Self::Error<E>>> + Send;

    /// Serves a notification (reliable or signal).
    fn notify<T, F, Fut>(
        incoming: Self::Incoming,
        method: &'static Notification<T>,
        f: F,
    ) -> impl Future<Output = Self::Outcome> + Send
    where
        T: DeserializeOwned + Send + 'static,
        F: FnOnce(Self::Ctx, T) -> Fut + Send,
        Fut: Future<Output = Result<(), Self::Error<NoError>>> + Send;

    /// Serves a server-streaming method: the handler sends items, its result ends the stream.
    fn server_stream<Init, Down, F, Fut>(
        incoming: Self::Incoming,
        method: &'static Streaming<Init, (), Down>,
        f: F,
    ) -> impl Future<Output = Self::Outcome> + Send
    where
        Init: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(Self::Ctx, Init, Self::Sender<Down>) -> Fut + Send,
        Fut: Future<Output = Result<(), Self::Error<NoError>>> + Send;

    /// Serves a client-streaming method: the handler reads items and returns the response,
    /// which is sent as the stream's one item before its end.
    fn client_stream<Init, Up, Resp, F, Fut>(
        incoming: Self::Incoming,
        method: &'static Streaming<Init, Up, Resp>,
        f: F,
    ) -> impl Future<Output = Self::Outcome> + Send
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: FnOnce(Self::Ctx, Init, Self::Receiver<Up>) -> Fut + Send,
        Fut: Future<Output = Result<Resp, Self::Error<NoError>>> + Send;

    /// Serves a bidirectional stream.
    fn bidi<Init, Up, Down, F, Fut>(
        incoming: Self::Incoming,
        method: &'static Streaming<Init, Up, Down>,
        f: F,
    ) -> impl Future<Output = Self::Outcome> + Send
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(Self::Ctx, Init, Self::Receiver<Up>, Self::Sender<Down>) -> Fut + Send,
        Fut: Future<Output = Result<(), Self::Error<NoError>>> + Send;

    /// The answer to a method id the service does not serve as this flavor (never reached for
    /// registered methods: the registry refuses them first).
    fn unimplemented(incoming: Self::Incoming) -> Self::Outcome;
}

/// A declared service with an async handler, as a runtime registers it (the generated
/// `Serve<S>` implements it when `S` implements the service's `Server<R>`).
pub trait AsyncService<R: AsyncRuntime>: Send + Sync + 'static {
    /// The service's declaration.
    const DEF: &'static ServiceDef;
    /// Runs the handler of the method `incoming` addresses.
    fn serve(&self, incoming: R::Incoming) -> impl Future<Output = R::Outcome> + Send + '_;
}

/// The blocking counterpart of [`AsyncRuntime`]: the helpers run the handler on the calling
/// thread and return its outcome.
pub trait BlockingRuntime: Sized + 'static {
    /// A handler's context.
    type Ctx: Send + 'static;
    /// The items a stream handler receives.
    type Receiver<T: DeserializeOwned + Send + 'static>: Send + 'static;
    /// The items a stream handler sends.
    type Sender<T: Serialize + Send + 'static>: Send + 'static;
    /// A handler's error.
    type Error<E: Send + 'static>: Send + 'static;
    /// One request of a registered method.
    type Incoming: Send + 'static;
    /// The answer to it.
    type Outcome: Send + 'static;

    /// The method id a request addresses.
    fn method(incoming: &Self::Incoming) -> u32;
    /// Serves a unary method.
    fn unary<Req, Resp, E, F>(
        incoming: Self::Incoming,
        method: &'static Unary<Req, Resp, E>,
        f: F,
    ) -> Self::Outcome
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: FnOnce(Self::Ctx, Req) -> Result<Resp, Self::Error<E>>;
    /// Serves a notification.
    fn notify<T, F>(incoming: Self::Incoming, method: &'static Notification<T>, f: F) -> Self::Outcome
    where
        T: DeserializeOwned + Send + 'static,
        F: FnOnce(Self::Ctx, T) -> Result<(), Self::Error<NoError>>;
    /// Serves a server-streaming method.
    fn server_stream<Init, Down, F>(
        incoming: Self::Incoming,
        method: &'static Streaming<Init, (), Down>,
        f: F,
    ) -> Self::Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(Self::Ctx, Init, Self::Sender<Down>) -> Result<(), Self::Error<NoError>>;
    /// Serves a client-streaming method.
    fn client_stream<Init, Up, Resp, F>(
        incoming: Self::Incoming,
        method: &'static Streaming<Init, Up, Resp>,
        f: F,
    ) -> Self::Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        F: FnOnce(Self::Ctx, Init, Self::Receiver<Up>) -> Result<Resp, Self::Error<NoError>>;
    /// Serves a bidirectional stream.
    fn bidi<Init, Up, Down, F>(
        incoming: Self::Incoming,
        method: &'static Streaming<Init, Up, Down>,
        f: F,
    ) -> Self::Outcome
    where
        Init: DeserializeOwned + Send + 'static,
        Up: DeserializeOwned + Send + 'static,
        Down: Serialize + Send + 'static,
        F: FnOnce(
            Self::Ctx,
            Init,
            Self::Receiver<Up>,
            Self::Sender<Down>,
        ) -> Result<(), Self::Error<NoError>>;
    /// See [`AsyncRuntime::unimplemented`].
    fn unimplemented(incoming: Self::Incoming) -> Self::Outcome;
}

/// A declared service with a blocking handler (the generated `Serve<S>` implements it when `S`
/// implements the service's `BlockingServer<R>`).
pub trait BlockingService<R: BlockingRuntime>: Send + Sync + 'static {
    /// The service's declaration.
    const DEF: &'static ServiceDef;
    /// Runs the handler of the method `incoming` addresses.
    fn serve(&self, incoming: R::Incoming) -> R::Outcome;
}

/// What the generated async `Client<P>` calls: a runtime's connection handle (tandem-smol:
/// `Peer`). Each operation sends the method's schema key (SPEC.md §7.10) and reports errors
/// naming the method and the peer.
pub trait AsyncCaller: Send + Sync {
    /// The runtime's deadline (its `Default` is the inherited deadline).
    type Deadline: Clone + Default + Send + Sync;
    /// A failed exchange, with the method's application error type.
    type Error<E: Send + 'static>: Send + 'static;
    /// The sending half of a stream.
    type Sender<T: Serialize + Send + 'static>: Send + 'static;
    /// The receiving half of a stream.
    type Receiver<T: DeserializeOwned + Send + 'static>: Send + 'static;

    /// Calls a unary method.
    fn unary<'a, Req, Resp, E>(
        &'a self,
        method: &'static Unary<Req, Resp, E>,
        req: &'a Req,
        deadline: Self::Deadline,
    ) -> impl Future<Output = Result<Resp, Self::Error<E>>> + Send + 'a
    where
        Req: Serialize + Sync,
        Resp: DeserializeOwned + Send + 'static,
        E: DeserializeOwned + Send + 'static;
    /// Sends a reliable notification and waits for its acknowledgement.
    fn notify<'a, T>(
        &'a self,
        method: &'static Notification<T>,
        value: &'a T,
        deadline: Self::Deadline,
    ) -> impl Future<Output = Result<(), Self::Error<NoError>>> + Send + 'a
    where
        T: Serialize + Sync;
    /// Sends an unreliable notification (SIGNAL).
    fn signal<'a, T>(
        &'a self,
        method: &'static Notification<T>,
        value: &'a T,
    ) -> impl Future<Output = Result<(), Self::Error<NoError>>> + Send + 'a
    where
        T: Serialize + Sync;
    /// Opens a server-streaming method (the opener's direction ends at once).
    fn server_stream<'a, Init, Down>(
        &'a self,
        method: &'static Streaming<Init, (), Down>,
        init: &'a Init,
        deadline: Self::Deadline,
    ) -> impl Future<Output = Result<Self::Receiver<Down>, Self::Error<NoError>>> + Send + 'a
    where
        Init: Serialize + Sync,
        Down: DeserializeOwned + Send + 'static;
    /// Opens a client-streaming or bidirectional method.
    #[allow(clippy::type_complexity)]
    fn open_stream<'a, Init, Up, Down>(
        &'a self,
        method: &'static Streaming<Init, Up, Down>,
        init: &'a Init,
        deadline: Self::Deadline,
    ) -> impl Future<Output = Result<(Self::Sender<Up>, Self::Receiver<Down>), Self::Error<NoError>>> + Send + 'a
    where
        Init: Serialize + Sync,
        Up: Serialize + Send + 'static,
        Down: DeserializeOwned + Send + 'static;
}

/// What the generated `BlockingClient<P>` calls: a blocking runtime's connection handle.
pub trait BlockingCaller {
    /// The runtime's deadline (its `Default` is the inherited deadline).
    type Deadline: Clone + Default;
    /// A failed exchange, with the method's application error type.
    type Error<E: Send + 'static>;
    /// The sending half of a stream.
    type Sender<T: Serialize + Send + 'static>;
    /// The receiving half of a stream.
    type Receiver<T: DeserializeOwned + Send + 'static>;

    /// Calls a unary method.
    fn unary<Req, Resp, E>(
        &self,
        method: &'static Unary<Req, Resp, E>,
        req: &Req,
        deadline: Self::Deadline,
    ) -> Result<Resp, Self::Error<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned + Send + 'static,
        E: DeserializeOwned + Send + 'static;
    /// Sends a reliable notification and waits for its acknowledgement.
    fn notify<T: Serialize>(
        &self,
        method: &'static Notification<T>,
        value: &T,
        deadline: Self::Deadline,
    ) -> Result<(), Self::Error<NoError>>;
    /// Sends an unreliable notification (SIGNAL).
    fn signal<T: Serialize>(
        &self,
        method: &'static Notification<T>,
        value: &T,
    ) -> Result<(), Self::Error<NoError>>;
    /// Opens a server-streaming method.
    fn server_stream<Init, Down>(
        &self,
        method: &'static Streaming<Init, (), Down>,
        init: &Init,
        deadline: Self::Deadline,
    ) -> Result<Self::Receiver<Down>, Self::Error<NoError>>
    where
        Init: Serialize,
        Down: DeserializeOwned + Send + 'static;
    /// Opens a client-streaming or bidirectional method.
    #[allow(clippy::type_complexity)]
    fn open_stream<Init, Up, Down>(
        &self,
        method: &'static Streaming<Init, Up, Down>,
        init: &Init,
        deadline: Self::Deadline,
    ) -> Result<(Self::Sender<Up>, Self::Receiver<Down>), Self::Error<NoError>>
    where
        Init: Serialize,
        Up: Serialize + Send + 'static,
        Down: DeserializeOwned + Send + 'static;
}
